"""One function per build step, from input files to output files.

``dodo.py`` wraps each of these in a task; they hold the I/O, while the maths
lives in the modules they call. Every output is written atomically.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .dataset import class_names, list_clips
from .io import load_json, load_npz, save_json, save_npz


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_card(data_dir, out_json, cfg) -> None:
    """Data-set card (clips, actors, sample rates, durations, leakage)."""
    from .card import build_card as _card

    say(f"data set: {data_dir}")
    t0 = time.perf_counter()
    clips = list_clips(data_dir)
    card = _card(clips, class_names(data_dir), str(data_dir), cfg.mel.hop_s)
    card["seconds"] = time.perf_counter() - t0
    save_json(out_json, card)


def feature_facts(cfg, sr_hz: int) -> dict:
    """What the mel basis and the bands look like at one sample rate."""
    from .audio import hop_samples
    from .features import band_bins
    from .spectro import mel_basis, mel_centres_hz

    basis = mel_basis(sr_hz, cfg.mel.n_fft, cfg.mel.n_mels, cfg.mel.fmin_hz, cfg.mel.fmax_hz)
    centres = mel_centres_hz(sr_hz, cfg.mel.n_mels, cfg.mel.fmin_hz, cfg.mel.fmax_hz)
    row_sums = np.asarray(basis.sum(axis=1)).ravel()
    empty = np.flatnonzero(row_sums == 0)
    bands = {}
    for reading in cfg.features.readings:
        rows = []
        for (lo, hi), idx in zip(cfg.features.bands_hz, band_bins(centres, cfg.features.bands_hz, reading)):
            rows.append({
                "band": [lo, hi],
                "n_bins": int(len(idx)),
                "n_empty": int(np.isin(idx, empty).sum()),
                "first_bin": int(idx[0]) if len(idx) else None,
                "last_bin": int(idx[-1]) if len(idx) else None,
                "centre_hz_span": [float(centres[idx[0]]), float(centres[idx[-1]])] if len(idx) else None,
            })
        bands[reading] = rows
    return {
        "sr_hz": sr_hz,
        "hop_samples": hop_samples(sr_hz, cfg.mel.hop_s),
        "fft_bin_hz": sr_hz / cfg.mel.n_fft,
        "n_empty_filters": int(len(empty)),
        "empty_below_hz": float(centres[empty].max()) if len(empty) else 0.0,
        "bands": bands,
    }


def build_features(data_dir, out_npz, out_json, cfg) -> None:
    """Spectral features of every clip (cache) and the facts the report states."""
    import dataclasses

    from .audio import audio_info
    from .extract import extract_features

    say(f"data set: {data_dir}")
    clips = list_clips(data_dir)
    t0 = time.perf_counter()
    arrays = extract_features(clips, cfg)
    seconds = time.perf_counter() - t0
    save_npz(out_npz, **arrays)
    rates = sorted({audio_info(c.path).sr_hz for c in clips})
    save_json(out_json, {
        "mel": dataclasses.asdict(cfg.mel),
        "bands_hz": [list(b) for b in cfg.features.bands_hz],
        "kinds": list(cfg.features.kinds),
        "readings": list(cfg.features.readings),
        "n_clips": len(clips),
        "vector_length": int(arrays[f"X_{cfg.features.readings[0]}_{cfg.features.kinds[0]}"].shape[1]),
        "extract_seconds": seconds,
        "per_rate": [feature_facts(cfg, sr) for sr in rates],
        "zero_energy_fraction": {
            r: float((arrays[f"X_{r}_SBE"] == 0).mean()) for r in cfg.features.readings
        },
    })


def build_svm(features_npz, out_json, cfg) -> None:
    from .svm import run_svms

    t0 = time.perf_counter()
    results = run_svms(load_npz(features_npz), cfg, log=say)
    results["seconds"] = time.perf_counter() - t0
    save_json(out_json, results)


def figure_mel_examples(data_dir, out_png, out_json, cfg) -> None:
    from .figures import mel_examples_figure

    clips = list_clips(data_dir)
    keys = mel_examples_figure(clips, class_names(data_dir), cfg.mel, out_png)
    save_json(out_json, {"clips": keys})


def figure_svm(svm_json, out_bars, out_conf: dict) -> None:
    from .figures import confusion_grid_figure, svm_accuracy_figure

    svm = load_json(svm_json)
    svm_accuracy_figure(svm, out_bars)
    for reading, path in out_conf.items():
        confusion_grid_figure(svm, reading, path)


def versions() -> dict:
    from importlib.metadata import version

    out = {}
    for name in ("numpy", "librosa", "scikit-learn", "torch", "weasyprint"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "not installed"
    return out


def build_report(report_dir, results_dir, figures_dir, html_path, pdf_path, cfg=None) -> None:
    """The PDF and its self-contained HTML twin, with the build's facts for the appendix.

    The data set is named by its folder's name and fingerprint (``data.json``);
    the example clips of item a are read from the folder the card was made
    from, for the HTML's audio players.
    """
    from .config import CONFIG
    from .report import build_facts, write_report

    cfg = CONFIG if cfg is None else cfg
    card = load_json(Path(results_dir) / "data.json")
    examples = Path(results_dir) / "mel_examples.json"
    keys = load_json(examples)["clips"] if examples.is_file() else []
    meta = {
        "title": "Speech emotion recognition with spectral features and deep learning",
        "subtitle": "Spectral features and SVMs, a 1D CNN on the waveform, and a 2D CNN on mel-spectrogram images",
        "dataset_name": "EmotionSpeech (RAVDESS speech subset)",
        "n_clips": card["n_clips"],
        "classes": card["classes"],
        "data_name": card["data_name"],
        "fingerprint": card["fingerprint_sha256"],
        "split_clips": {name: s["n_clips"] for name, s in card["splits"].items()},
        "build": build_facts(results_dir, cfg, Path(report_dir).resolve().parent, card["data_dir"]),
    }
    audio = {k: Path(card["data_dir"]) / k for k in keys}
    write_report(report_dir, results_dir, html_path, pdf_path, figures_dir, meta, audio_clips=audio)
    say(f"report: {pdf_path}")


def _torch_threads(n: int | None = None) -> None:
    import os

    import torch

    torch.set_num_threads(n or max(1, min(os.cpu_count() or 1, 8)))


def build_images(data_dir, out_root, manifest_json, cfg) -> None:
    """Item e's images: every clip's power-1 mel spectrogram through spectrogram2image.

    The tree is written beside ``out_root`` and swapped in whole, so images of
    an earlier data set never mix with the new ones.
    """
    import os
    import shutil
    import tempfile

    from .cnn2d import image_choices
    from .images import export_images

    say(f"data set: {data_dir}")
    out_root = Path(out_root)
    out_root.parent.mkdir(parents=True, exist_ok=True)
    c = cfg.cnn2d
    tmp = Path(tempfile.mkdtemp(dir=out_root.parent, prefix=f".{out_root.name}."))
    try:
        t0 = time.perf_counter()
        records = export_images(data_dir, tmp, mel_cfg=cfg.mel, n_frames=c.n_frames, fix_floor=c.fix_floor,
                                dynamic_range=c.dynamic_range, low_at_bottom=c.low_at_bottom, log=say)
        seconds = time.perf_counter() - t0
        old = out_root.with_name(out_root.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if out_root.exists():
            os.replace(out_root, old)
        os.replace(tmp, out_root)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in records:
        r["path"] = str(out_root / Path(r["path"]).relative_to(tmp))
    save_json(manifest_json, {"root": str(out_root), "choices": image_choices(c), "seconds": seconds,
                              "records": records})


def build_cnn2d(images_json, models_dir, out_json, cfg) -> None:
    """Section 3.2: validation inside the training actors, then seeds x augmentation settings."""
    from .cnn2d import run_cnn2d

    _torch_threads()
    root = load_json(images_json)["root"]
    results = run_cnn2d(root, models_dir, cfg=cfg.cnn2d, log=say)
    save_json(out_json, results)


def figure_cnn2d(images_json, cnn2d_json, out: dict, cfg) -> None:
    """Image grid (item e), learning curves (f), confusion matrices (g), augmentation comparison (h)."""
    from .figures import cnn_confusion_figure, cnn_curves_figure, augmentation_figure
    from .plots import _mpl, save_figure
    from .plots_images import plot_image_grid

    _mpl()
    manifest, res = load_json(images_json), load_json(cnn2d_json)
    fig = plot_image_grid(manifest["records"], low_at_bottom=cfg.cnn2d.low_at_bottom)
    save_figure(fig, out["images"], dpi=200)
    chosen = res["chosen"]
    cnn_curves_figure(res["validation"]["candidates"][chosen]["folds"], res["settings"][chosen]["train_histories"],
                      res["settings"][chosen]["epochs"], out["curves"])
    s = res["settings"][chosen]
    cnn_confusion_figure(s["test_pooled"], s["test_ensemble"], res["classes"], out["confusion"])
    augmentation_figure(res, out["augmentation"])


def build_summary(svm_json, cnn1d_json, cnn2d_json, out_json, cfg) -> None:
    """The comparisons the report states in words (ser.summary)."""
    from .summary import build_summary as _summary

    opt = lambda p: load_json(p) if p is not None and Path(p).is_file() else None  # noqa: E731
    targets = {"cnn1d": cfg.report.target_cnn1d, "cnn2d": cfg.report.target_cnn2d}
    save_json(out_json, _summary(load_json(svm_json), opt(cnn1d_json), opt(cnn2d_json), targets))


def build_cnn1d(data_dir, models_dir, out_json, cfg) -> None:
    """Section 3.1: validation inside the training actors, then seeds, tested once."""
    from .cnn1d import run_cnn1d

    say(f"data set: {data_dir}")
    run_cnn1d(list_clips(data_dir), cfg.cnn1d, out_dir=models_dir, results_path=out_json, log=say)


def figure_cnn1d(cnn1d_json, out: dict) -> None:
    """Learning curves (item c) and confusion matrices (item d) of the 1D CNN."""
    from .figures import cnn_confusion_figure, cnn_curves_figure

    res = load_json(cnn1d_json)
    cnn_curves_figure(res["curves"]["validation"], res["curves"]["final"], res["training"]["epochs"], out["curves"])
    cnn_confusion_figure(res["test"]["pooled"], res["test"]["ensemble"], res["classes"], out["confusion"])
