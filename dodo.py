"""The build: audio -> features -> SVMs -> CNNs -> figures -> report.pdf.

    doit                      build everything (build/report.pdf)
    doit list                 the tasks, each with what it does, in build order
    doit figures              only the figures
    doit data_dir=PATH        use another copy of the data set (or set SER_DATA)
    SER_CONFIG=my.toml doit   with parameters overridden (see ser/config.py)

Each task wraps one function of ``ser.pipeline``. doit re-runs a task when

* a file in its ``file_dep`` changed content: its data files, and the ``ser/``
  modules that function imports, found by ``deps.py`` beside this file (transitively, lazy
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

import dataclasses
import functools
import os
import sys

from doit import get_var
from doit.exceptions import TaskFailed
from doit.tools import config_changed

from ser.errors import ConfigError, SerError, reported
from ser.report.figures import FIGURES
from ser.results import FILES as RESULT_FILES

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

# Set before torch is imported. Idle OpenMP threads sleep instead of spinning:
# with torch on 2 cores beside other work, spinning made an epoch 20x slower.
# The CPU kernels are pinned to AVX2 (oneDNN and ATen): on an AVX-512 machine
# oneDNN's own choice changes the trained weights, so without the pin two
# machines train different networks from the same seeds. (Threads: each
# network task sets torch's thread count itself, ser.config.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

FEATURES_NPZ = CACHE_DIR / "features.npz"
ANCHORS_NPZ = CACHE_DIR / "anchors.npz"
PREDICTIONS_CSV = RESULTS_DIR / "predictions.csv"
# the report's figures, one table (ser.report.figures.FIGURES) for the figure tasks and the report
FIGS = {group: {role: FIGURES_DIR / name for role, name in files.items()} for group, files in FIGURES.items()}
SVM_CONFUSION_FIGS = {r: FIGS["svm"][f"confusion_{r}"] for r in CONFIG.features.readings}
# every results file the build writes (the report reads them all): one table, ser.results.FILES
RESULTS = {key: RESULTS_DIR / f.name for key, f in RESULT_FILES.items()}
DESIGN_STUDY = PROJECT_DIR / "bench" / "design_study_results" / "merged" / "summary.json"


def _data():
    """The data set: its root, clip paths and any error found while looking."""
    from ser.data.dataset import find_data_dir, list_clips
    from ser.data.speakers import SPEAKERS_CSV

    try:
        root = find_data_dir(get_var("data_dir", None))
        csv = [str(root / SPEAKERS_CSV)] if (root / SPEAKERS_CSV).is_file() else []
        return root, [str(c.path) for c in list_clips(root)] + csv, None
    except SerError as exc:
        return None, [], exc


DATA_DIR, WAVS, DATA_ERROR = _data()


def _run(fn, *args, **kwargs):
    """A doit python-action: a SerError fails the task with its message alone."""

    def action():
        if DATA_ERROR is not None:
            return TaskFailed(f"ERROR: {DATA_ERROR}")
        _, error = reported(fn, *args, **kwargs)
        return TaskFailed(error) if error is not None else None

    action.__name__ = getattr(fn, "__name__", "action")
    return (action, [], {})


@functools.lru_cache(maxsize=None)
def _code(fn):
    """What ``fn`` (a ``ser.pipeline`` function) runs: ``deps.Code``."""
    from deps import function_deps

    return function_deps(fn, exclude=["ser.config"])


def _code_files(fn) -> list[str]:
    """The ``ser/`` modules ``fn`` imports, transitively: part of its task's ``file_dep``."""
    return [str(p) for p in _code(fn).files]


SPEAKER_PARAMS = ("speaker_pattern", "max_loso_speakers", "k_folds")
"""The values of ``[data]`` that decide the speakers and the folds (the rest of it is for ``doit data``)."""


def _changed(fn, *params: str, data_dir: bool = False) -> config_changed:
    """The task's one ``config_changed``: the source of ``fn``, the ``CONFIG``
    sections (or top-level values) named in ``params``, the speakers' and
    folds' settings, and the data set's path if the task reads the data set.

    One per task: doit saves every ``config_changed`` under the same key, so a
    second one would make the task stale forever.
    """
    value = {"code": _code(fn).digest, "config": CONFIG.params(*params),
             "speakers": {k: getattr(CONFIG.data, k) for k in SPEAKER_PARAMS}}
    if data_dir:
        value["data_dir"] = str(DATA_DIR)
    return config_changed(value)


def task_card():
    """Data-set card: clips per class and split, speakers (and how they were found), rates, durations, leakage check."""
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
    """SVMs per feature type: the spec's C=10 RBF, and one tuned by cross-validation over speaker folds."""
    from ser import pipeline

    fn = pipeline.build_svm
    return {
        "actions": [_run(fn, FEATURES_NPZ, RESULTS["svm"], CONFIG)],
        "file_dep": [FEATURES_NPZ] + _code_files(fn),
        "targets": [RESULTS["svm"]],
        "uptodate": [_changed(fn, "svm", "features", "seed")],
        "clean": True,
    }


def task_anchors():
    """The field's anchors: eGeMAPSv02 functionals (opensmile) and GE2E embeddings (resemblyzer), each through the SVM protocol."""
    from ser import pipeline

    fn = pipeline.build_anchors
    return {
        "actions": [_run(fn, DATA_DIR, ANCHORS_NPZ, RESULTS["anchors"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [ANCHORS_NPZ, RESULTS["anchors"]],
        "uptodate": [_changed(fn, "anchors", "svm", "runs", "seed", data_dir=True)],
        "clean": True,
    }


def task_cnn1d():
    """1D CNN on the raw waveform: choices by validation over speaker folds, then seeds, tested once."""
    from ser import pipeline

    fn = pipeline.build_cnn1d
    return {
        "actions": [_run(fn, DATA_DIR, MODELS_DIR / "cnn1d", RESULTS["cnn1d"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [RESULTS["cnn1d"]],
        "uptodate": [_changed(fn, "cnn1d", "onset", "runs", data_dir=True)],
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
        "uptodate": [_changed(fn, "mel", "cnn2d", "onset", data_dir=True)],
        "clean": True,
    }


def task_cnn2d():
    """2D CNN on the images: choices by validation over speaker folds, then seeds x augmentation settings, tested once."""
    from ser import pipeline

    fn = pipeline.build_cnn2d
    return {
        "actions": [_run(fn, RESULTS["images"], MODELS_DIR / "cnn2d", RESULTS["cnn2d"], CONFIG)],
        "file_dep": [RESULTS["images"]] + _code_files(fn),
        "targets": [RESULTS["cnn2d"]],
        "uptodate": [_changed(fn, "cnn2d", "runs")],
        "clean": True,
    }


def task_fusion():
    """Combined models: SVM, 1D and 2D CNN (and the anchors) averaged with weights chosen on the training speakers' out-of-fold probabilities."""
    from ser import pipeline

    fn = pipeline.build_fusion
    inputs = [FEATURES_NPZ, ANCHORS_NPZ, RESULTS["svm"], RESULTS["anchors"], RESULTS["cnn1d"], RESULTS["cnn2d"]]
    return {
        "actions": [_run(fn, *inputs, RESULTS["fusion"], CONFIG)],
        "file_dep": inputs + _code_files(fn),
        "targets": [RESULTS["fusion"]],
        "uptodate": [_changed(fn, "fusion", "anchors")],
        "clean": True,
    }


def task_design():
    """The design study's validation tables (bench/design_study.py, training actors only) for the report's appendix."""
    from ser import pipeline

    fn = pipeline.build_design
    return {
        "actions": [_run(fn, DESIGN_STUDY, RESULTS["design"])],
        "file_dep": [DESIGN_STUDY] + _code_files(fn),
        "targets": [RESULTS["design"]],
        "uptodate": [_changed(fn)],
        "clean": True,
    }


def task_summary():
    """Networks against the SVMs per evaluation split, augmentation verdicts, every clip's predictions as CSV."""
    from ser import pipeline

    fn = pipeline.build_summary
    inputs = [RESULTS["svm"], RESULTS["cnn1d"], RESULTS["cnn2d"], RESULTS["anchors"], RESULTS["fusion"]]
    return {
        "actions": [_run(fn, *inputs[:3], RESULTS["summary"], PREDICTIONS_CSV, *inputs[3:])],
        "file_dep": inputs + _code_files(fn),
        "targets": [RESULTS["summary"], PREDICTIONS_CSV],
        "uptodate": [_changed(fn)],
        "clean": True,
    }


def task_figures():
    """Every figure of the report (PNG for spectrograms, SVG for plots) in figures/."""
    from ser import pipeline

    fn = pipeline.figure_mel_examples
    yield {
        "name": "mel_examples",
        "doc": "Mel spectrograms (dB) of one training and one test clip per class (item a).",
        "actions": [_run(fn, DATA_DIR, FIGS["mel_examples"]["mel"], RESULTS["mel_examples"], CONFIG)],
        "file_dep": WAVS + _code_files(fn),
        "targets": [FIGS["mel_examples"]["mel"], RESULTS["mel_examples"]],
        "uptodate": [_changed(fn, "mel", data_dir=True)],
        "clean": True,
    }
    fn = pipeline.figure_svm
    yield {
        "name": "svm",
        "doc": "SVM accuracies with 95% intervals, and confusion matrices (item b).",
        "actions": [_run(fn, RESULTS["svm"], FIGS["svm"]["accuracy"], SVM_CONFUSION_FIGS)],
        "file_dep": [RESULTS["svm"]] + _code_files(fn),
        "targets": list(FIGS["svm"].values()),
        "uptodate": [_changed(fn)],
        "clean": True,
    }
    fn = pipeline.figure_cnn1d
    yield {
        "name": "cnn1d",
        "doc": "1D CNN learning curves (item c) and confusion matrices (item d).",
        "actions": [_run(fn, RESULTS["cnn1d"], FIGS["cnn1d"])],
        "file_dep": [RESULTS["cnn1d"]] + _code_files(fn),
        "targets": list(FIGS["cnn1d"].values()),
        "uptodate": [_changed(fn)],
        "clean": True,
    }
    fn = pipeline.figure_cnn2d
    yield {
        "name": "cnn2d",
        "doc": "Exported images (item e), learning curves (f), confusion matrices (g), augmentation (h).",
        "actions": [_run(fn, RESULTS["images"], RESULTS["cnn2d"], FIGS["cnn2d"], CONFIG)],
        "file_dep": [RESULTS["images"], RESULTS["cnn2d"]] + _code_files(fn),
        "targets": list(FIGS["cnn2d"].values()),
        "uptodate": [_changed(fn, "cnn2d")],
        "clean": True,
    }
    fn = pipeline.figure_summary
    inputs = [RESULTS["svm"], RESULTS["cnn1d"], RESULTS["cnn2d"], RESULTS["anchors"], RESULTS["fusion"]]
    yield {
        "name": "summary",
        "doc": "Every approach with its 95% interval per evaluation split, and accuracy per speaker.",
        "actions": [_run(fn, *inputs[:3], FIGS["summary"], *inputs[3:])],
        "file_dep": inputs + _code_files(fn),
        "targets": list(FIGS["summary"].values()),
        "uptodate": [_changed(fn)],
        "clean": True,
    }


def task_report():
    """Render report/ templates with the results into build/report.html and build/report.pdf."""
    from ser import pipeline
    from ser.report.render import discover_sections

    fn = pipeline.build_report
    sections = discover_sections(REPORT_DIR)
    templates = sorted(str(p) for p in REPORT_DIR.rglob("*") if p.is_file() and p.suffix in (".j2", ".css"))
    results = sorted({*RESULTS.values(), *(RESULTS_DIR / f"{key}.json" for key, _ in sections)})
    figures = [f for group in FIGS.values() for f in group.values()]
    return {
        "actions": [_run(fn, REPORT_DIR, RESULTS_DIR, FIGURES_DIR, BUILD_DIR / "report.html",
                         BUILD_DIR / "report.pdf")],
        "file_dep": templates + results + figures + _code_files(fn),
        "targets": [BUILD_DIR / "report.html", BUILD_DIR / "report.pdf"],
        # the appendix prints every parameter
        "uptodate": [_changed(fn, *(f.name for f in dataclasses.fields(CONFIG)))],
        "clean": True,
    }


def task_data():
    """Build the Train/Test layout from a corpus: doit data --src PATH|URL [--corpus ravdess|emodb|cremad] [--out DIR] [--train LIST] [--test LIST] [--confirm LIST]."""

    def build(src, out, corpus, train, test, confirm):
        from ser.data import corpus as corpora

        if not src:
            return TaskFailed("doit data needs --src: a folder or zip of the corpus' WAV files (for RAVDESS: "
                              "Actor_NN folders, Audio_Speech_Actors_01-24.zip, or its URL)")

        def layout(train, test, confirm):
            c = corpora.get_corpus(corpus)
            if c.name == "ravdess":
                train = train or fmt(CONFIG.data.train_actors)
                test = test or fmt(CONFIG.data.test_actors)
                confirm = confirm or fmt(CONFIG.data.confirm_actors)
            elif not (train and test):
                raise ConfigError(f"doit data --corpus {c.name} needs --train and --test: the speakers of each split "
                                  f"as numbers, e.g. --train 03,08-12 --test 13-16 (files are named like {c.example})")
            return c, corpora.build_layout(src, out, corpus=c.name, train=train, test=test, confirm=confirm)

        made, error = reported(layout, train, test, confirm)
        if error is not None:
            return TaskFailed(error)
        c, done = made
        print(f"data set written to {done['out_dir']}: {done['n_clips']} {c.title} clips {done['per_folder']}")
        print("speakers: " + "; ".join(f"{s} {', '.join(v)}" for s, v in done["speakers"].items()))
        if done["skipped"]:
            print("skipped: " + ", ".join(f"{n} {why}" for why, n in done["skipped"].items()))
        print(f"build the report on it with: doit data_dir={done['out_dir']}")
        return None

    fmt = lambda a: ",".join(str(x) for x in a)  # noqa: E731
    return {
        "actions": [build],
        "params": [
            {"name": "src", "long": "src", "default": "", "help": "the corpus' folder or zip (RAVDESS: also its URL)"},
            {"name": "out", "long": "out", "default": str(PROJECT_DIR / "data" / "EmotionSpeech"),
             "help": "where the layout is written (must not exist or be empty)"},
            {"name": "corpus", "long": "corpus", "default": "ravdess",
             "choices": (("ravdess", "RAVDESS, 03-01-05-01-01-01-12.wav"), ("emodb", "Berlin EmoDB, 03a01Fa.wav"),
                         ("cremad", "CREMA-D, 1001_DFA_ANG_XX.wav")),
             "help": "how the files are named: ravdess (default), emodb or cremad"},
            {"name": "train", "long": "train", "default": "",
             "help": f"training speakers, e.g. 03,08-12 (RAVDESS default: {fmt(CONFIG.data.train_actors)})"},
            {"name": "test", "long": "test", "default": "",
             "help": f"test speakers (RAVDESS default: {fmt(CONFIG.data.test_actors)})"},
            {"name": "confirm", "long": "confirm", "default": "",
             "help": "speakers of an optional Confirm split (default: none)"},
        ],
        "uptodate": [False],
        "verbosity": 2,
    }


def task_predict():
    """Classify new clips with the trained models: doit predict --clips DIR [--out FILE.csv] (not part of the default build)."""

    def run(clips, out):
        from ser.classify import classify

        if not clips:
            return TaskFailed("doit predict needs --clips DIR: a folder of WAV files, or of class folders of WAV files")
        result, error = reported(classify, clips, out)
        if error is not None:
            return TaskFailed(error)
        print(f"written: {out}")
        if result["skipped"]:
            return TaskFailed(f"{len(result['skipped'])} file(s) could not be read and were not classified "
                              f"(listed above); the others are in {out}")
        return None

    return {
        "actions": [run],
        "params": [
            {"name": "clips", "long": "clips", "default": "", "help": "folder of WAV files (or class folders)"},
            {"name": "out", "long": "out", "default": str(BUILD_DIR / "predict.csv"), "help": "CSV written here"},
        ],
        "uptodate": [False],
        "verbosity": 2,
    }
