"""Fast mel spectrograms that equal ``librosa.feature.melspectrogram``.

librosa builds a dense 3401 x 8193 mel basis on every call and transforms the
whole clip. Here the basis is built once per sample rate and kept sparse (a mel
filter touches a handful of FFT bins), only the frames that are kept are
transformed, and clips are spread over the cores. The result matches librosa's
(centred Hann frames, zero padding, Slaney mel, fmin 0, fmax sr/2).
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

_BASIS_LOCK = threading.Lock()


def mel_basis(sr_hz: int, n_fft: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None):
    """Sparse mel filter bank, librosa's ``filters.mel`` in CSR form.

    Built once per set of arguments, also when several threads ask at once.

    Returns
    -------
    scipy.sparse.csr_matrix [shape=(n_mels, 1 + n_fft // 2), dtype=float32]
    """
    with _BASIS_LOCK:
        return _mel_basis(sr_hz, n_fft, n_mels, fmin_hz, fmax_hz)


@lru_cache(maxsize=8)
def _mel_basis(sr_hz, n_fft, n_mels, fmin_hz, fmax_hz):
    import warnings

    import librosa
    from scipy import sparse

    with warnings.catch_warnings():
        # Filters narrower than an FFT bin are empty (rows of zeros); that is
        # expected with n_mels=3401 and stated in the report.
        warnings.filterwarnings("ignore", message=".*Empty filters.*")
        dense = librosa.filters.mel(sr=sr_hz, n_fft=n_fft, n_mels=n_mels, fmin=fmin_hz, fmax=fmax_hz)
    return sparse.csr_matrix(dense.astype(np.float32))


@lru_cache(maxsize=8)
def mel_centres_hz(sr_hz: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None) -> np.ndarray:
    """Centre frequency (Hz) of each mel filter: np.ndarray [shape=(n_mels,)]."""
    import librosa

    fmax = sr_hz / 2 if fmax_hz is None else fmax_hz
    return librosa.mel_frequencies(n_mels + 2, fmin=fmin_hz, fmax=fmax)[1:-1]


@lru_cache(maxsize=4)
def _hann(n_fft: int) -> np.ndarray:
    from scipy.signal import get_window

    return get_window("hann", n_fft, fftbins=True).astype(np.float32)


def n_frames_of(n_samples: int, hop_length: int) -> int:
    """Frames a centred STFT gives for a clip of ``n_samples``: 1 + n // hop."""
    return 1 + n_samples // hop_length


def stft_power(y: np.ndarray, *, n_fft: int, hop_length: int, n_frames: int | None = None, power: float = 2.0, workers: int = 1) -> np.ndarray:
    """|STFT|**power of the first ``n_frames`` centred Hann frames.

    Frames past the end of the clip (when it is shorter than ``n_frames``)
    are zero columns, as if librosa's result had been zero-padded.

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2, n_frames), dtype=float32]
    """
    from scipy import fft

    y = np.asarray(y, dtype=np.float32)
    available = n_frames_of(len(y), hop_length)
    n_out = available if n_frames is None else n_frames
    n_comp = min(n_out, available)
    half = n_fft // 2
    # Only the samples the kept frames touch are padded and framed.
    stop = min(len(y), (n_comp - 1) * hop_length + half)
    padded = np.zeros((n_comp - 1) * hop_length + n_fft, dtype=np.float32)
    padded[half : half + stop] = y[:stop]
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length][:n_comp]
    spec = fft.rfft(frames * _hann(n_fft), axis=1, workers=workers)
    if power == 2.0:
        mag = spec.real**2 + spec.imag**2
    elif power == 1.0:
        mag = np.abs(spec)
    else:
        mag = np.abs(spec) ** power
    out = np.zeros((half + 1, n_out), dtype=np.float32)
    out[:, :n_comp] = mag.T
    return out


def mel_spectrogram(
    y: np.ndarray,
    *,
    sr_hz: int,
    n_mels: int,
    n_fft: int,
    hop_length: int,
    power: float = 2.0,
    n_frames: int | None = None,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Mel spectrogram of the first ``n_frames`` frames (all when None).

    Equals ``librosa.feature.melspectrogram(y=y, sr=sr_hz, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels, power=power)[:, :n_frames]``, zero
    padded to ``n_frames`` columns when the clip is shorter.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames), dtype=float32]
    """
    basis = mel_basis(sr_hz, n_fft, n_mels, fmin_hz, fmax_hz)
    S = stft_power(y, n_fft=n_fft, hop_length=hop_length, n_frames=n_frames, power=power, workers=workers)
    return np.asarray(basis @ S, dtype=np.float32)


def mel_from_config(y: np.ndarray, sr_hz: int, mel_cfg, *, power: float | None = None, n_frames: int | None | str = "config") -> np.ndarray:
    """:func:`mel_spectrogram` with the parameters of a :class:`~ser.config.MelConfig`.

    ``n_frames="config"`` keeps ``mel_cfg.n_frames``; None keeps the whole clip.
    """
    from ser.data.audio import hop_samples

    return mel_spectrogram(
        y,
        sr_hz=sr_hz,
        n_mels=mel_cfg.n_mels,
        n_fft=mel_cfg.n_fft,
        hop_length=hop_samples(sr_hz, mel_cfg.hop_s),
        power=mel_cfg.power if power is None else power,
        n_frames=mel_cfg.n_frames if n_frames == "config" else n_frames,
        fmin_hz=mel_cfg.fmin_hz,
        fmax_hz=mel_cfg.fmax_hz,
    )
