"""Spectral features of every clip, cached in one ``.npz`` (no pickle).

The cache holds, for every band reading ("hz", "index") and feature kind
(SC, SBW, SBE), a matrix ``X_<reading>_<kind>`` [n_clips, 5 * 200] whose rows
are the clips' 5 x 200 feature matrices with their columns stacked, and the
clips' keys, splits, labels and speakers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ser.data.audio import read_mono
from ser.data.dataset import Clip
from ser.features.spectral import band_features, stack_frames
from ser.io import map_clips
from ser.features.spectro import mel_centres_hz, mel_from_config


def clip_features(path: Path, cfg) -> dict[str, np.ndarray]:
    """Feature vectors of one clip: ``{"<reading>_<kind>": vector [1000]}``."""
    y, sr = read_mono(path)
    S = mel_from_config(y, sr, cfg.mel)
    centres = mel_centres_hz(sr, cfg.mel.n_mels, cfg.mel.fmin_hz, cfg.mel.fmax_hz)
    out = {}
    for reading in cfg.features.readings:
        feats = band_features(S, centres_hz=centres, bands=cfg.features.bands_hz, reading=reading)
        for kind in cfg.features.kinds:
            out[f"{reading}_{kind}"] = stack_frames(feats[kind]).astype(np.float32)
    return out


def extract_features(clips: list[Clip], cfg, *, workers: int | None = None) -> dict[str, np.ndarray]:
    """Features of every clip, as the arrays stored in the cache."""
    rows = map_clips(lambda c: clip_features(c.path, cfg), clips, workers=workers,
                     desc="spectral features")
    arrays = {f"X_{name}": np.stack([r[name] for r in rows]) for name in rows[0]}
    return {**arrays, **clip_columns(clips)}


def clip_columns(clips: list[Clip]) -> dict[str, np.ndarray]:
    """The columns a feature cache stores beside its matrices: every clip's
    key, split, label and speaker (text; "" when the data set has none), and the class names."""
    return {"key": np.array([c.key for c in clips]), "split": np.array([c.split for c in clips]),
            "label": np.array([c.label for c in clips], dtype=np.int64),
            "speaker": np.array(["" if c.speaker is None else str(c.speaker) for c in clips], dtype=str),
            "classes": np.array(sorted({c.class_name for c in clips}))}
