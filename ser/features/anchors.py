"""Field anchors: two published, pre-trained feature sets, one vector per clip.

They place the build's own features against what the field uses, through the
same SVM protocol:

``"egemaps"``
    the 88 eGeMAPSv02 functionals of openSMILE (Eyben et al. 2016): pitch,
    loudness, jitter, shimmer, formants, spectral slopes and their statistics
    over the clip. Any sample rate is analysed as it is.
``"ge2e"``
    the 256-d GE2E speaker-encoder embedding of Resemblyzer (Wan et al.
    2018): the clip is resampled to 16 kHz, its level raised to -30 dBFS when
    quieter, its long pauses cut by a voice detector (webrtcvad), and the
    L2-normed mean of the embeddings of 1.6 s windows is returned. The LSTM
    weights (17 MB, ``resemblyzer/pretrained.pt``) ship inside the wheel:
    nothing is downloaded. It runs on the CPU unless told otherwise.

``opensmile`` and ``resemblyzer`` are imported inside the functions, so
importing this module stays quick; each extractor is built once per process
and shared by the threads of :func:`anchor_features`.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ser.errors import ConfigError, DataError

EGEMAPS_DIM = 88
GE2E_DIM = 256
GE2E_SR_HZ = 16000  # Resemblyzer's sample rate (resemblyzer.hparams.sampling_rate)

_LOCK = threading.Lock()
_SMILE = None
_ENCODERS: dict[str, object] = {}


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


ANCHORS = {
    "egemaps": {
        "description": "eGeMAPSv02 functionals of openSMILE: 88 statistics of pitch, loudness, "
                       "voice quality, formants and spectral shape over the clip",
        "package": "opensmile",
        "version": _version("opensmile"),
        "licence": "audEERING research licence (non-commercial)",
        "dim": EGEMAPS_DIM,
    },
    "ge2e": {
        "description": "GE2E speaker-encoder embedding of Resemblyzer (3-layer LSTM on 40 mel "
                       "bands at 16 kHz, pre-trained for speaker verification), L2-normed",
        "package": "resemblyzer",
        "version": _version("resemblyzer"),
        "licence": "Apache-2.0",
        "dim": GE2E_DIM,
    },
}


def _mono(y, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise DataError(f"{what}: expected mono samples of shape (n_samples,), got shape {y.shape}")
    if y.size == 0:
        raise DataError(f"{what}: no samples")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{what}: samples hold NaN or inf")
    return y


def _smile():
    """The eGeMAPSv02 functionals extractor, built once per process."""
    global _SMILE
    with _LOCK:
        if _SMILE is None:
            import opensmile

            _SMILE = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                     feature_level=opensmile.FeatureLevel.Functionals)
        return _SMILE


def egemaps_names() -> tuple[str, ...]:
    """The 88 eGeMAPSv02 functional names, in the order of :func:`egemaps_functionals`."""
    return tuple(_smile().feature_names)


def egemaps_functionals(y, *, sr_hz: int) -> np.ndarray:
    """The eGeMAPSv02 functionals of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono samples in [-1, 1]. openSMILE reads them as 16-bit PCM: samples
        beyond full scale are clipped to it (rather than wrapped, as a bare
        cast to int16 would do).
    sr_hz : int
        Sample rate in Hz; analysed as it is (no resampling).

    Returns
    -------
    np.ndarray [shape=(88,), dtype=float32]
        In the order of :func:`egemaps_names`; pitch in semitones from
        27.5 Hz, loudness in sones (Zwicker), durations in seconds.

    Raises
    ------
    DataError
        For samples that are not 1-D or not finite, or a clip too short for
        the functionals (openSMILE returns NaN under about 60 ms).
    """
    y = _mono(y, "eGeMAPS")
    y = np.clip(y, -1.0, 32767 / 32768)
    v = _smile().process_signal(y, int(sr_hz)).to_numpy(dtype=np.float32)[0]
    if v.shape != (EGEMAPS_DIM,):
        raise DataError(f"eGeMAPS: openSMILE returned {v.shape[0]} values, expected {EGEMAPS_DIM}")
    if not np.all(np.isfinite(v)):
        raise DataError(f"eGeMAPS: {len(y) / sr_hz:.3f} s of audio is too short for the "
                        f"functionals (openSMILE returned NaN)")
    return v


def _encoder(device: str):
    """Resemblyzer's VoiceEncoder on ``device``, built once per process and device."""
    with _LOCK:
        if device not in _ENCODERS:
            from resemblyzer import VoiceEncoder

            enc = VoiceEncoder(device=device, verbose=False)
            enc.eval()
            _ENCODERS[device] = enc
        return _ENCODERS[device]


def ge2e_weights_path() -> Path:
    """The file the GE2E weights are read from: ``pretrained.pt`` inside the resemblyzer package."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise ConfigError("resemblyzer is not installed")
    return Path(spec.origin).parent / "pretrained.pt"


def ge2e_embedding(y, *, sr_hz: int, device: str = "cpu") -> np.ndarray:
    """The GE2E speaker-encoder embedding of one clip.

    ``resemblyzer.preprocess_wav`` resamples to 16 kHz, raises the level to
    -30 dBFS when quieter and keeps only what the voice detector (webrtcvad,
    30 ms windows, smoothed) calls speech, with about 0.1 s around it;
    ``embed_utterance`` averages the embeddings of 1.6 s windows taken every
    0.77 s and L2-normalises the mean. On the CPU two calls on the same input give the
    same bits.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono samples in [-1, 1].
    sr_hz : int
        Sample rate of ``y`` in Hz.
    device : str
        Torch device of the encoder ("cpu" unless asked otherwise).

    Returns
    -------
    np.ndarray [shape=(256,), dtype=float32]
        Unit L2 norm, every component >= 0 (the encoder ends in a ReLU).

    Raises
    ------
    DataError
        For samples that are not 1-D or not finite, or a clip in which the
        voice detector finds no speech (silence, faint noise, a clip under
        30 ms): preprocessing leaves no samples, and the encoder would
        otherwise embed zero padding without a word.
    """
    from resemblyzer import preprocess_wav

    y = _mono(y, "GE2E")
    enc = _encoder(device)
    with np.errstate(divide="ignore", invalid="ignore"):  # log10(0) of a silent clip's level
        wav = preprocess_wav(y, source_sr=int(sr_hz))
    if wav.size == 0:
        peak = float(np.max(np.abs(y)))
        raise DataError(f"GE2E: the voice detector found no speech in {len(y) / sr_hz:.2f} s of "
                        f"audio at {sr_hz} Hz (peak {peak:.2g} of full scale)")
    e = np.asarray(enc.embed_utterance(wav.astype(np.float32)), dtype=np.float32)
    if e.shape != (GE2E_DIM,) or not np.all(np.isfinite(e)):
        raise DataError(f"GE2E: the encoder returned shape {e.shape} with non-finite values")
    return e


_EXTRACTORS = {"egemaps": (egemaps_functionals, EGEMAPS_DIM), "ge2e": (ge2e_embedding, GE2E_DIM)}


def anchor_features(paths, kind: str, *, workers: int | None = None, desc: str = "") -> np.ndarray:
    """One anchor vector per clip, rows in the order of ``paths``.

    Each file is read with :func:`ser.data.audio.read_mono` (channels averaged) at
    its own sample rate. Clips run on a thread pool
    (:func:`ser.io.map_clips`); the rows do not depend on ``workers``.

    Parameters
    ----------
    paths : sequence of str or Path
        WAV files.
    kind : {"egemaps", "ge2e"}
    workers : int, optional
        Threads (default: :func:`ser.io.default_workers`).
    desc : str
        Label of the progress bar on stderr; none when empty.

    Returns
    -------
    np.ndarray [shape=(n_clips, dim), dtype=float32]
        ``dim`` is ``ANCHORS[kind]["dim"]`` (88 or 256).

    Raises
    ------
    ConfigError
        For an unknown ``kind``.
    DataError
        Naming the first file (in the order of ``paths``) that cannot be read
        or gives no vector, and why (raised once the pool has finished the
        clips already handed to it).
    """
    from ser.data.audio import read_mono
    from ser.io import map_clips

    if kind not in _EXTRACTORS:
        raise ConfigError(f"unknown anchor kind {kind!r}; expected one of {sorted(_EXTRACTORS)}")
    fn, dim = _EXTRACTORS[kind]
    paths = [Path(p) for p in paths]
    if not paths:
        return np.zeros((0, dim), dtype=np.float32)
    # Build the extractor here, once, so a missing package fails before any clip is read.
    if kind == "egemaps":
        _smile()
    else:
        _encoder("cpu")

    def one(path: Path) -> np.ndarray:
        try:
            y, sr_hz = read_mono(path)
            return fn(y, sr_hz=sr_hz)
        except DataError as exc:
            if str(path) in str(exc):
                raise
            raise DataError(f"{path}: {exc}") from exc
        except Exception as exc:  # the packages raise many unrelated types
            raise DataError(f"{path}: {kind} extraction failed ({exc.__class__.__name__}: {exc})") from exc

    rows = map_clips(one, paths, workers=workers, desc=desc)
    return np.stack(rows).astype(np.float32, copy=False)
