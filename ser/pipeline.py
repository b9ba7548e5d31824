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
    clips = list_clips(data_dir)
    save_json(out_json, _card(clips, class_names(data_dir), str(data_dir), cfg.mel.hop_s))


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


def build_report(report_dir, results_dir, figures_dir, html_path, pdf_path) -> None:
    from .report import write_report

    card = load_json(Path(results_dir) / "data.json")
    meta = {
        "title": "Speech emotion recognition with spectral features and deep learning",
        "subtitle": "Spectral features and SVMs, a 1D CNN on the waveform, and a 2D CNN on mel-spectrogram images",
        "dataset_name": "EmotionSpeech (RAVDESS speech subset)",
        "n_clips": card["n_clips"],
        "classes": card["classes"],
        "data_dir": card["data_dir"],
        "versions": versions(),
    }
    write_report(report_dir, results_dir, html_path, pdf_path, figures_dir, meta)
    say(f"report: {pdf_path}")
