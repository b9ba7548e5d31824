"""The build: audio -> features -> SVMs -> CNNs -> figures -> report.pdf.

    doit                      build everything (build/report.pdf)
    doit list                 the tasks, each with what it does
    doit figures              only the figures
    doit data_dir=PATH        use another copy of the data set (or set SER_DATA)

Each task wraps one function of ``ser.pipeline``; its inputs are in
``file_dep``, its outputs in ``targets``, and the parameters it reads in
``config_changed``, so doit re-runs exactly what a change touches.
"""
from __future__ import annotations

import os
import sys

from doit import get_var
from doit.exceptions import TaskFailed
from doit.tools import config_changed

from ser.config import BUILD_DIR, CACHE_DIR, CONFIG, FIGURES_DIR, PROJECT_DIR, REPORT_DIR, RESULTS_DIR
from ser.errors import SerError

DOIT_CONFIG = {
    "default_tasks": ["report"],
    "verbosity": 2,
    "action_string_formatting": "new",
}

SER = PROJECT_DIR / "ser"
# Idle OpenMP threads sleep instead of spinning: with torch on 2 cores beside
# other work, spinning made an epoch 20x slower. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
IMAGES_DIR = BUILD_DIR / "images"
MODELS_DIR = BUILD_DIR / "models"


def _mods(*names: str) -> list[str]:
    """The ser/ modules a task runs (a code change re-runs it)."""
    return [str(SER / f"{n}.py") for n in names]


def _data():
    """The data set: its root, clip paths and any error found while looking."""
    from ser.dataset import find_data_dir, list_clips

    try:
        root = find_data_dir(get_var("data_dir", None))
        return root, [str(c.path) for c in list_clips(root)], None
    except SerError as exc:
        return None, [], exc


DATA_DIR, WAVS, DATA_ERROR = _data()
R = RESULTS_DIR
F = FIGURES_DIR


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


def _data_dep():
    return config_changed({"data_dir": str(DATA_DIR)})


def task_card():
    """Data-set card: clips per class and split, actors, rates, durations, leakage check."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_card, DATA_DIR, R / "data.json", CONFIG)],
        "file_dep": WAVS + _mods("card", "audio", "dataset", "pipeline"),
        "targets": [R / "data.json"],
        "uptodate": [_data_dep(), config_changed(CONFIG.section("mel"))],
        "clean": True,
    }


def task_features():
    """Mel spectrograms (fast, = librosa) and SC/SBW/SBE per band, cached as .npz."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_features, DATA_DIR, CACHE_DIR / "features.npz", R / "features.json", CONFIG)],
        "file_dep": WAVS + _mods("features", "spectro", "extract", "audio", "dataset", "pipeline"),
        "targets": [CACHE_DIR / "features.npz", R / "features.json"],
        "uptodate": [_data_dep(), config_changed(CONFIG.section("mel") + CONFIG.section("features"))],
        "clean": True,
    }


def task_svm():
    """SVMs per feature type: the spec's C=10 RBF, and one tuned by leave-one-actor-out CV."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_svm, CACHE_DIR / "features.npz", R / "svm.json", CONFIG)],
        "file_dep": [CACHE_DIR / "features.npz"] + _mods("svm", "metrics", "pipeline"),
        "targets": [R / "svm.json"],
        "uptodate": [config_changed(CONFIG.section("svm") + str(CONFIG.seed))],
        "clean": True,
    }


def task_figures():
    """Every figure of the report (PNG for spectrograms, SVG for plots) in figures/."""
    from ser import pipeline

    yield {
        "name": "mel_examples",
        "doc": "Mel spectrograms (dB) of one training and one test clip per class (item a).",
        "actions": [_run(pipeline.figure_mel_examples, DATA_DIR, F / "mel_examples.png",
                         R / "mel_examples.json", CONFIG)],
        "file_dep": WAVS + _mods("figures", "plots", "spectro", "audio", "pipeline"),
        "targets": [F / "mel_examples.png", R / "mel_examples.json"],
        "uptodate": [_data_dep(), config_changed(CONFIG.section("mel"))],
        "clean": True,
    }
    conf = {r: F / f"svm_confusion_{r}.svg" for r in CONFIG.features.readings}
    yield {
        "name": "svm",
        "doc": "SVM accuracies with 95% intervals, and confusion matrices (item b).",
        "actions": [_run(pipeline.figure_svm, R / "svm.json", F / "svm_accuracy.svg", conf)],
        "file_dep": [R / "svm.json"] + _mods("figures", "plots", "pipeline"),
        "targets": [F / "svm_accuracy.svg", *conf.values()],
        "clean": True,
    }
    yield {
        "name": "cnn1d",
        "doc": "1D CNN learning curves (item c) and confusion matrices (item d).",
        "actions": [_run(pipeline.figure_cnn1d, R / "cnn1d.json", CNN1D_FIGS)],
        "file_dep": [R / "cnn1d.json"] + _mods("figures", "plots", "curves", "pipeline"),
        "targets": list(CNN1D_FIGS.values()),
        "clean": True,
    }
    yield {
        "name": "cnn2d",
        "doc": "Exported images (item e), learning curves (f), confusion matrices (g), augmentation (h).",
        "actions": [_run(pipeline.figure_cnn2d, R / "images.json", R / "cnn2d.json", CNN2D_FIGS, CONFIG)],
        "file_dep": [R / "images.json", R / "cnn2d.json"] + _mods("figures", "plots", "curves", "plots_images", "pipeline"),
        "targets": list(CNN2D_FIGS.values()),
        "clean": True,
    }


CNN1D_FIGS = {"curves": F / "cnn1d_curves.svg", "confusion": F / "cnn1d_confusion.svg"}
CNN2D_FIGS = {"images": F / "cnn2d_images.png", "curves": F / "cnn2d_curves.svg",
              "confusion": F / "cnn2d_confusion.svg", "augmentation": F / "cnn2d_augmentation.svg"}


def task_cnn1d():
    """1D CNN on the raw waveform: choices by leave-one-actor-out validation, then seeds, tested once."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_cnn1d, DATA_DIR, MODELS_DIR / "cnn1d", R / "cnn1d.json", CONFIG)],
        "file_dep": WAVS + _mods("cnn1d", "training", "metrics", "audio", "dataset", "pipeline"),
        "targets": [R / "cnn1d.json"],
        "uptodate": [_data_dep(), config_changed(CONFIG.section("cnn1d"))],
        "clean": True,
    }


def task_images():
    """Spectrogram images (power-1 mel, log, 0-255) of every clip for the 2D CNN, in build/images/."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_images, DATA_DIR, IMAGES_DIR, R / "images.json", CONFIG)],
        "file_dep": WAVS + _mods("images", "spectro", "audio", "dataset", "pipeline"),
        "targets": [R / "images.json"],
        "uptodate": [_data_dep(), config_changed(CONFIG.section("mel") + CONFIG.section("cnn2d"))],
        "clean": True,
    }


def task_cnn2d():
    """2D CNN on the images: choices by leave-one-actor-out validation, then seeds x augmentation settings, tested once."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_cnn2d, R / "images.json", MODELS_DIR / "cnn2d", R / "cnn2d.json", CONFIG)],
        "file_dep": [R / "images.json"] + _mods("cnn2d", "augment", "images", "training", "metrics", "pipeline"),
        "targets": [R / "cnn2d.json"],
        "uptodate": [config_changed(CONFIG.section("cnn2d"))],
        "clean": True,
    }


def task_summary():
    """Comparisons the report states in words: networks against the SVMs and targets, augmentation verdicts."""
    from ser import pipeline

    return {
        "actions": [_run(pipeline.build_summary, R / "svm.json", R / "cnn1d.json", R / "cnn2d.json",
                         R / "summary.json", CONFIG)],
        "file_dep": [R / "svm.json", R / "cnn1d.json", R / "cnn2d.json"] + _mods("summary", "pipeline"),
        "targets": [R / "summary.json"],
        "uptodate": [config_changed(CONFIG.section("report"))],
        "clean": True,
    }


def task_report():
    """Render report/ templates with the results into build/report.html and build/report.pdf."""
    from ser import pipeline
    from ser.report import discover_sections

    sections = discover_sections(REPORT_DIR)
    templates = [REPORT_DIR / "base.html.j2", REPORT_DIR / "print.css"]
    templates += [REPORT_DIR / name for _, name in sections]
    results = [R / f"{key}.json" for key, _ in sections]
    figures = [F / "mel_examples.png", F / "svm_accuracy.svg"]
    figures += [F / f"svm_confusion_{r}.svg" for r in CONFIG.features.readings]
    figures += list(CNN1D_FIGS.values()) + list(CNN2D_FIGS.values())
    return {
        "actions": [_run(pipeline.build_report, REPORT_DIR, R, F, BUILD_DIR / "report.html",
                         BUILD_DIR / "report.pdf")],
        "file_dep": templates + results + figures + _mods("report", "pipeline"),
        "targets": [BUILD_DIR / "report.html", BUILD_DIR / "report.pdf"],
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
