"""The build: audio -> features -> SVMs -> CNNs -> figures -> report.pdf.

    doit                      build everything (build/report.pdf)
    doit list                 the tasks, each with what it does, in build order
    doit figures              only the figures
    doit data_dir=PATH        use another copy of the data set (or set SER_DATA)
    SER_CONFIG=my.toml doit   with parameters overridden (see ser/config.py)

Each task wraps one function of ``ser.pipeline``. doit re-runs a task when

* a file in its ``file_dep`` changed content: its data files, and the ``ser/``
  modules that function imports, found by ``ser.deps`` (transitively, lazy
  imports included) rather than typed;
* its one ``config_changed`` value changed: the parameter sections it reads,
  the data set's path, and the source text of its ``ser.pipeline`` function
  (with the same-module helpers it calls), so that editing one function of
  ``ser/pipeline.py`` re-runs only its task.

``ser/config.py`` is deliberately not a ``file_dep``: its values reach each
task through ``config_changed``, so a changed parameter re-runs only the tasks
that read it (as a file it would re-run everything). A code change in
``ser/config.py`` that keeps every value (the TOML loader, say) re-runs
nothing; ``doit forget`` or ``doit clean`` when that matters. Edits of this
file are not tracked either.
"""
from __future__ import annotations

import functools
import os
import sys

from doit import get_var
from doit.exceptions import TaskFailed
from doit.tools import config_changed

from ser.errors import ConfigError, SerError

try:  # a bad override file ($SER_CONFIG) stops the build with its message alone
    from ser.config import (BUILD_DIR, CACHE_DIR, CONFIG, FIGURES_DIR, IMAGES_DIR, MODELS_DIR, PROJECT_DIR,
                            REPORT_DIR, RESULTS_DIR)
except ConfigError as exc:
    sys.exit(f"ERROR: {exc}")

DOIT_CONFIG = {
    "default_tasks": ["report"],
    "verbosity": 2,
    "action_string_formatting": "new",
    "sort": "definition",  # `doit list` in build order
}

# Idle OpenMP threads sleep instead of spinning: with torch on 2 cores beside
# other work, spinning made an epoch 20x slower. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FEATURES_NPZ = CACHE_DIR / "features.npz"
SVM_CONFUSION_FIGS = {r: FIGURES_DIR / f"svm_confusion_{r}.svg" for r in CONFIG.features.readings}
CNN1D_FIGS = {"curves": FIGURES_DIR / "cnn1d_curves.svg", "confusion": FIGURES_DIR / "cnn1d_confusion.svg"}
CNN2D_FIGS = {"images": FIGURES_DIR / "cnn2d_images.png", "curves": FIGURES_DIR / "cnn2d_curves.svg",
              "confusion": FIGURES_DIR / "cnn2d_confusion.svg",
              "augmentation": FIGURES_DIR / "cnn2d_augmentation.svg"}
# every results file the build writes (the report reads them all)
RESULTS = {key: RESULTS_DIR / f"{key}.json" for key in
           ("data", "features", "svm", "cnn1d", "images", "cnn2d", "summary", "mel_examples")}


def _data():
    """The data set: its root, clip paths and any error found while looking."""
    from ser.dataset import find_data_dir, list_clips

    try:
        root = find_data_dir(get_var("data_dir", None))
        return root, [str(c.path) for c in list_clips(root)], None
    except SerError as exc:
        return None, [], exc


DATA_DIR, WAVS, DATA_ERROR = _data()


def _run(fn, *args, **kwargs):
    """A doit python-action: a SerError fails the task with its message alone."""

    def action():
        if DATA_ERROR is not None:
            return TaskFailed(f"ERROR: {DATA_ERROR}")
        try:
            fn(*args, **kwargs)
        except SerError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return TaskFailed(str(exc))
        return None

    action.__name__ = getattr(fn, "__name__", "action")
    return (action, [], {})


@functools.lru_cache(maxsize=None)
def _code(fn):
    """What ``fn`` (a ``ser.pipeline`` function) runs: ``ser.deps.Code``."""
    from ser.deps import function_deps

    return function_deps(fn, exclude=["ser.config"])


def _code_files(fn) -> list[str]:
    """The ``ser/`` modules ``fn`` imports, transitively: part of its task's ``file_dep``."""
    return [str(p) for p in _code(fn).files]


def _changed(fn, *params: str, data_dir: bool = False) -> config_changed:
    """The task's one ``config_changed``: the source of ``fn``, the ``CONFIG``
    sections (or top-level values) named in ``params``, and the data set's
    path if the task reads the data set.

    One per task: doit saves every ``config_changed`` under the same key, so a
    second one would make the task stale forever.
    """
    value = {"code": _code(fn).digest, "config": CONFIG.params(*params)}
    if data_dir:
        value["data_dir"] = str(DATA_DIR)
    return config_changed(value)


def task_card():
    """Data-set card: clips per class and split, actors, rates, durations, leakage check."""
    from ser import pipeline

    fn = pipeline.build_card
    return {
        "actions": [_run(fn, DATA_DIR, RESULTS["data"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [RESULTS["data"]],
        "uptodate": [_changed(fn, "mel", data_dir=True)],
        "clean": True,
    }


def task_features():
    """Mel spectrograms (fast, = librosa) and SC/SBW/SBE per band, cached as .npz."""
    from ser import pipeline

    fn = pipeline.build_features
    return {
        "actions": [_run(fn, DATA_DIR, FEATURES_NPZ, RESULTS["features"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [FEATURES_NPZ, RESULTS["features"]],
        "uptodate": [_changed(fn, "mel", "features", data_dir=True)],
        "clean": True,
    }


def task_svm():
    """SVMs per feature type: the spec's C=10 RBF, and one tuned by leave-one-actor-out CV."""
    from ser import pipeline

    fn = pipeline.build_svm
    return {
        "actions": [_run(fn, FEATURES_NPZ, RESULTS["svm"], CONFIG)],
        "file_dep": [FEATURES_NPZ] + _code_files(fn),
        "targets": [RESULTS["svm"]],
        "uptodate": [_changed(fn, "svm", "features", "seed")],
        "clean": True,
    }


def task_cnn1d():
    """1D CNN on the raw waveform: choices by leave-one-actor-out validation, then seeds, tested once."""
    from ser import pipeline

    fn = pipeline.build_cnn1d
    return {
        "actions": [_run(fn, DATA_DIR, MODELS_DIR / "cnn1d", RESULTS["cnn1d"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [RESULTS["cnn1d"]],
        "uptodate": [_changed(fn, "cnn1d", data_dir=True)],
        "clean": True,
    }


def task_images():
    """Spectrogram images (power-1 mel, log, 0-255) of every clip for the 2D CNN, in build/images/."""
    from ser import pipeline

    fn = pipeline.build_images
    return {
        "actions": [_run(fn, DATA_DIR, IMAGES_DIR, RESULTS["images"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [RESULTS["images"]],
        "uptodate": [_changed(fn, "mel", "cnn2d", data_dir=True)],
        "clean": True,
    }


def task_cnn2d():
    """2D CNN on the images: choices by leave-one-actor-out validation, then seeds x augmentation settings, tested once."""
    from ser import pipeline

    fn = pipeline.build_cnn2d
    return {
        "actions": [_run(fn, RESULTS["images"], MODELS_DIR / "cnn2d", RESULTS["cnn2d"], CONFIG)],
        "file_dep": [RESULTS["images"]] + _code_files(fn),
        "targets": [RESULTS["cnn2d"]],
        "uptodate": [_changed(fn, "cnn2d")],
        "clean": True,
    }


def task_summary():
    """Comparisons the report states in words: networks against the SVMs and targets, augmentation verdicts."""
    from ser import pipeline

    fn = pipeline.build_summary
    inputs = [RESULTS["svm"], RESULTS["cnn1d"], RESULTS["cnn2d"]]
    return {
        "actions": [_run(fn, *inputs, RESULTS["summary"], CONFIG)],
        "file_dep": inputs + _code_files(fn),
        "targets": [RESULTS["summary"]],
        "uptodate": [_changed(fn, "report")],
        "clean": True,
    }


def task_figures():
    """Every figure of the report (PNG for spectrograms, SVG for plots) in figures/."""
    from ser import pipeline

    fn = pipeline.figure_mel_examples
    yield {
        "name": "mel_examples",
        "doc": "Mel spectrograms (dB) of one training and one test clip per class (item a).",
        "actions": [_run(fn, DATA_DIR, FIGURES_DIR / "mel_examples.png", RESULTS["mel_examples"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [FIGURES_DIR / "mel_examples.png", RESULTS["mel_examples"]],
        "uptodate": [_changed(fn, "mel", data_dir=True)],
        "clean": True,
    }
    fn = pipeline.figure_svm
    yield {
        "name": "svm",
        "doc": "SVM accuracies with 95% intervals, and confusion matrices (item b).",
        "actions": [_run(fn, RESULTS["svm"], FIGURES_DIR / "svm_accuracy.svg", SVM_CONFUSION_FIGS)],
        "file_dep": [RESULTS["svm"]] + _code_files(fn),
        "targets": [FIGURES_DIR / "svm_accuracy.svg", *SVM_CONFUSION_FIGS.values()],
        "uptodate": [_changed(fn)],
        "clean": True,
    }
    fn = pipeline.figure_cnn1d
    yield {
        "name": "cnn1d",
        "doc": "1D CNN learning curves (item c) and confusion matrices (item d).",
        "actions": [_run(fn, RESULTS["cnn1d"], CNN1D_FIGS)],
        "file_dep": [RESULTS["cnn1d"]] + _code_files(fn),
        "targets": list(CNN1D_FIGS.values()),
        "uptodate": [_changed(fn)],
        "clean": True,
    }
    fn = pipeline.figure_cnn2d
    yield {
        "name": "cnn2d",
        "doc": "Exported images (item e), learning curves (f), confusion matrices (g), augmentation (h).",
        "actions": [_run(fn, RESULTS["images"], RESULTS["cnn2d"], CNN2D_FIGS, CONFIG)],
        "file_dep": [RESULTS["images"], RESULTS["cnn2d"]] + _code_files(fn),
        "targets": list(CNN2D_FIGS.values()),
        "uptodate": [_changed(fn, "cnn2d")],
        "clean": True,
    }


def task_report():
    """Render report/ templates with the results into build/report.html and build/report.pdf."""
    from ser import pipeline
    from ser.report import discover_sections

    fn = pipeline.build_report
    sections = discover_sections(REPORT_DIR)
    templates = [REPORT_DIR / "base.html.j2", REPORT_DIR / "print.css"]
    templates += [REPORT_DIR / name for _, name in sections]
    results = sorted({*RESULTS.values(), *(RESULTS_DIR / f"{key}.json" for key, _ in sections)})
    figures = [FIGURES_DIR / "mel_examples.png", FIGURES_DIR / "svm_accuracy.svg", *SVM_CONFUSION_FIGS.values(),
               *CNN1D_FIGS.values(), *CNN2D_FIGS.values()]
    return {
        "actions": [_run(fn, REPORT_DIR, RESULTS_DIR, FIGURES_DIR, BUILD_DIR / "report.html",
                         BUILD_DIR / "report.pdf")],
        "file_dep": templates + results + figures + _code_files(fn),
        "targets": [BUILD_DIR / "report.html", BUILD_DIR / "report.pdf"],
        "uptodate": [_changed(fn)],
        "clean": True,
    }


def task_data():
    """Build the Train/Test layout from a RAVDESS copy: doit data --src PATH|URL [--out DIR] [--train 1-4] [--test 5-8]."""

    def build(src, out, train, test):
        from ser import ravdess

        if not src:
            return TaskFailed("doit data needs --src: a folder of RAVDESS Actor_NN folders, "
                              "Audio_Speech_Actors_01-24.zip, or its URL")
        try:
            done = ravdess.build_layout(src, out, emotions=dict(CONFIG.data.ravdess_emotions), train=train, test=test)
        except SerError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return TaskFailed(str(exc))
        print(f"data set written to {done['out_dir']}: {done['n_clips']} clips {done['per_folder']}")
        print(f"build the report on it with: doit data_dir={done['out_dir']}")
        return None

    fmt = lambda a: ",".join(str(x) for x in a)  # noqa: E731
    return {
        "actions": [build],
        "params": [
            {"name": "src", "long": "src", "default": "", "help": "RAVDESS folder, zip or URL"},
            {"name": "out", "long": "out", "default": str(PROJECT_DIR / "data" / "EmotionSpeech"),
             "help": "where the layout is written (must not exist or be empty)"},
            {"name": "train", "long": "train", "default": fmt(CONFIG.data.train_actors), "help": "training actors"},
            {"name": "test", "long": "test", "default": fmt(CONFIG.data.test_actors), "help": "test actors"},
        ],
        "uptodate": [False],
        "verbosity": 2,
    }
