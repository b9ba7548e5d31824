"""Reading WAV files into mono float arrays.

Any PCM (8, 16, 24, 32 bit) or float WAV at any sample rate is accepted.
Several channels are mixed down to mono by averaging them, sample by sample
(the spec's loader interleaved the two channels of a stereo clip instead).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class AudioInfo:
    """What the header of a WAV file says."""

    sr_hz: int
    n_channels: int
    n_samples: int
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sr_hz


def _open_error(path: Path, exc: Exception) -> DataError:
    return DataError(f"{path}: cannot be read as audio ({exc.__class__.__name__}: {exc})")


def audio_info(path: str | Path) -> AudioInfo:
    """Header of a WAV file, without reading its samples."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several unrelated types
        raise _open_error(path, exc) from exc
    if info.frames <= 0:
        raise DataError(f"{path}: holds no audio samples (empty file)")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype))


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file as mono float32 samples in [-1, 1].

    Parameters
    ----------
    path : str or Path
        A WAV file (PCM 8-32 bit or float, any sample rate, any channel count).

    Returns
    -------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
        The channels averaged sample by sample.
    sr_hz : int
        Sample rate in Hz.

    Raises
    ------
    DataError
        Naming the file, when it is missing, not audio, empty or holds
        non-finite samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        data, sr_hz = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise _open_error(path, exc) from exc
    if data.shape[0] == 0:
        raise DataError(f"{path}: holds no audio samples (empty file)")
    y = data.mean(axis=1, dtype=np.float64).astype(np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: holds non-finite samples (NaN or inf)")
    return np.ascontiguousarray(y), int(sr_hz)


def hop_samples(sr_hz: int, hop_s: float) -> int:
    """Hop length in samples, ``int(sr * hop_s)`` as the spec writes it."""
    hop = int(sr_hz * hop_s)
    if hop < 1:
        raise DataError(f"sample rate {sr_hz} Hz gives a hop of {hop} samples for {hop_s} s")
    return hop


def fix_length(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut ``y`` to ``n_samples`` or pad it with zeros at the end."""
    out = np.zeros(n_samples, dtype=y.dtype)
    n = min(n_samples, y.shape[0])
    out[:n] = y[:n]
    return out
