"""Reading WAV files into mono float arrays.

Any PCM (8, 16, 24, 32 bit) or float WAV at any sample rate is accepted.
Several channels are mixed down to mono by averaging them, sample by sample
(the spec's loader interleaved the two channels of a stereo clip instead).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.errors import DataError


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


def frame_rms(y: np.ndarray, sr_hz: int, *, frame_s: float = 0.02, hop_s: float = 0.01) -> np.ndarray:
    """Short-time RMS: np.ndarray [shape=(n_frames,)], frames of ``frame_s``
    seconds every ``hop_s`` seconds (a clip shorter than a frame is one frame)."""
    win, hop = max(1, int(round(frame_s * sr_hz))), max(1, int(round(hop_s * sr_hz)))
    y = np.asarray(y, np.float64)
    if len(y) < win:
        y = np.pad(y, (0, win - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, win)[::hop]
    return np.sqrt(np.mean(frames * frames, axis=1))


def speech_onset_s(y: np.ndarray, sr_hz: int, *, rel_db: float = -30.0, margin_s: float = 0.1,
                   frame_s: float = 0.02, hop_s: float = 0.01) -> float:
    """Where speech starts, in seconds: the start of the first frame whose
    RMS exceeds the clip's loudest frame by ``rel_db`` dB (so the rule does
    not depend on the recording level), minus ``margin_s``, floored at 0.

    Most clips of the data set open with 0.5-1 s of silence (exact digital
    zeros for some speakers), so a fixed window from the file's start wastes a
    third of itself; from the onset it holds the utterance. A silent clip
    starts at 0.
    """
    rms = frame_rms(y, sr_hz, frame_s=frame_s, hop_s=hop_s)
    if rms.max() <= 0:
        return 0.0
    first = int(np.argmax(rms > rms.max() * 10 ** (rel_db / 20)))
    return max(0.0, first * max(1, int(round(hop_s * sr_hz))) / sr_hz - margin_s)


def voiced_rms(y: np.ndarray, sr_hz: int, *, rel_db: float = -30.0, frame_s: float = 0.02,
               hop_s: float = 0.01) -> float:
    """The clip's level over its speech: the RMS over the frames that
    :func:`speech_onset_s` counts as speech (louder than the loudest frame
    by ``rel_db`` dB), so silence before and after does not lower it; 1e-8
    for a silent clip."""
    rms = frame_rms(y, sr_hz, frame_s=frame_s, hop_s=hop_s)
    voiced = rms > rms.max() * 10 ** (rel_db / 20)
    return float(np.sqrt(np.mean(rms[voiced] ** 2))) if voiced.any() else float(max(rms.max(), 1e-8))


def window_start(y: np.ndarray, sr_hz: int, window: str, onset=None) -> int:
    """First sample of a clip's analysis window: 0 for ``"start"``, the
    speech onset (:func:`speech_onset_s` with the fields of ``onset``, a
    :class:`ser.config.OnsetConfig`) for ``"onset"``."""
    if window == "start":
        return 0
    if window == "onset":
        kw = {} if onset is None else dict(rel_db=onset.rel_db, margin_s=onset.margin_s,
                                           frame_s=onset.frame_s, hop_s=onset.hop_s)
        return int(round(speech_onset_s(y, sr_hz, **kw) * sr_hz))
    from ser.errors import ConfigError

    raise ConfigError(f"window must be 'start' or 'onset', got {window!r}")
