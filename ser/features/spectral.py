"""Spectral centroid (SC), bandwidth (SBW) and band energy (SBE), by hand.

For one band and one frame, with P_k the mel power of bin k and f_k its
frequency::

    SBE = sum_k P_k
    SC  = sum_k f_k P_k / SBE
    SBW = sum_k (f_k - SC)^2 P_k / SBE

A band with zero energy gives 0 for all three (never NaN or inf): with 3401
mel filters at 48 kHz the filters below ~1.1 kHz that fall between two FFT bins
are empty, so this happens on real data, not only on silence.

Two readings of "band" are offered:

``"hz"``
    a band holds the mel bins whose centre frequency (Hz) lies in
    [low, high]; f_k is that centre frequency in Hz.
``"index"``
    a band is the range of mel-bin indices [low, high] (the spec's
    numbers read as bin numbers); f_k = k.
"""
from __future__ import annotations

import numpy as np

from ser.errors import ConfigError

KINDS = ("SC", "SBW", "SBE")
READINGS = ("hz", "index")


def band_bins(centres_hz: np.ndarray, bands: tuple[tuple[float, float], ...], reading: str) -> list[np.ndarray]:
    """Indices of the mel bins in each band, and the f_k they carry.

    Returns
    -------
    list of np.ndarray [shape=(n_bins_in_band,), dtype=int], one per band.
    """
    n_mels = len(centres_hz)
    out = []
    for lo, hi in bands:
        if reading == "hz":
            idx = np.flatnonzero((centres_hz >= lo) & (centres_hz <= hi))
        elif reading == "index":
            idx = np.arange(int(lo), min(int(hi), n_mels - 1) + 1)
        else:
            raise ConfigError(f"unknown band reading {reading!r}; expected one of {READINGS}")
        out.append(idx)
    return out


def bin_freqs(centres_hz: np.ndarray, reading: str) -> np.ndarray:
    """f_k for every mel bin: centre frequency in Hz, or the bin index."""
    if reading == "hz":
        return np.asarray(centres_hz, dtype=np.float64)
    if reading == "index":
        return np.arange(len(centres_hz), dtype=np.float64)
    raise ConfigError(f"unknown band reading {reading!r}; expected one of {READINGS}")


def band_features(S: np.ndarray, *, centres_hz: np.ndarray, bands, reading: str = "hz") -> dict[str, np.ndarray]:
    """SC, SBW and SBE of every band in every frame.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
        Mel power spectrogram.
    centres_hz : np.ndarray [shape=(n_mels,)]
        Centre frequency of each mel filter.
    bands : sequence of (low, high)
        Bands in Hz (``reading="hz"``) or mel-bin indices (``"index"``).
    reading : {"hz", "index"}

    Returns
    -------
    dict kind -> np.ndarray [shape=(n_bands, n_frames), dtype=float64]
    """
    S = np.asarray(S, dtype=np.float64)
    freqs = bin_freqs(centres_hz, reading)
    n_frames = S.shape[1]
    out = {k: np.zeros((len(bands), n_frames)) for k in KINDS}
    for b, idx in enumerate(band_bins(centres_hz, tuple(bands), reading)):
        P = S[idx]  # [n_bins, n_frames]
        f = freqs[idx][:, None]
        energy = P.sum(axis=0)
        nz = energy > 0
        sc = np.zeros(n_frames)
        sbw = np.zeros(n_frames)
        sc[nz] = (f * P[:, nz]).sum(axis=0) / energy[nz]
        sbw[nz] = (((f - sc[nz]) ** 2) * P[:, nz]).sum(axis=0) / energy[nz]
        out["SC"][b] = sc
        out["SBW"][b] = sbw
        out["SBE"][b] = energy
    return out


def stack_frames(M: np.ndarray) -> np.ndarray:
    """The feature matrix's columns stacked, frame by frame.

    ``[[a1, a2], [b1, b2]] -> [a1, b1, a2, b2]``: np.ndarray [shape=(n_bands * n_frames,)]
    """
    return np.asarray(M).T.reshape(-1)


def feature_facts(cfg, sr_hz: int) -> dict:
    """What the mel basis and the bands look like at one sample rate.

    With the spec's n_mels = 3401 and n_fft = 16384 at 48 kHz, the mel
    filters are narrower than one FFT bin below about 1.1 kHz, and about 160
    of them catch no bin at all: their rows of the basis, and so of every mel
    spectrogram, are exactly zero. ``n_empty_filters`` and ``empty_below_hz``
    count them at ``sr_hz``.
    """
    from ser.data.audio import hop_samples
    from ser.features.spectro import mel_basis, mel_centres_hz

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
