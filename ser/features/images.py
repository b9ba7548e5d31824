"""Mel spectrograms as grey images, and images as network inputs (section 3.2).

The spec saves ``log(X + 1e-9)`` of a magnitude mel spectrogram (``power=1``),
min-max scaled to 0-255, with ``cv.imwrite``. Three choices are made here and
recorded in the results:

* **Floor fix.** With n_mels=3401 and n_fft=16384 about 160 mel filters below
  ~1.1 kHz are narrower than an FFT bin and hold no bin at all: their rows are
  exactly zero, so ``log(X + 1e-9)`` is ``log(1e-9) = -20.7`` there and the
  spec's ``X.min()`` is that constant, not the signal. Frames of digital
  silence (exact zeros, common in speakers 2 and 4) do the same. Here the
  minimum is taken over the entries that carry signal (``X > 0``); entries
  with ``X == 0`` (empty filters, zero padding, digital silence) are set to
  that minimum. Optionally the range is also cut to ``dynamic_range`` natural
  log units below the maximum (like librosa's ``top_db``), so that a few
  near-silent quantisation-level values do not set the scale.
* **Frames.** The first ``n_frames`` (200, 3 s) frames, zero padded when a clip
  is shorter, so one pixel column is 15 ms in every image; resizing whole
  clips (207-319 frames) to one width would squeeze time by a different
  factor per clip.
* **Orientation.** Row 0 of an image file is its top. Images are flipped so
  that the lowest mel band is the *bottom* row, as in a spectrogram plot
  (``low_at_bottom=True``); the spec's code, without the flip, puts it on top.

**Speaker normalisation** (a candidate input, :func:`speaker_norm_image`).
Each speaker's mean and spread per mel row of ``log(X + 1e-9)``, over the
entries that carry signal in that speaker's own clips of a split (audio only,
never labels), are taken off before the same min-max: a gain per band that is
constant for a speaker (vocal tract, microphone) then drops out. The rule is
the same for a training, a held-out validation and a test speaker, and a
speaker's statistics use only that speaker's clips, so the images can be made
once, before any fold. Entries with ``X == 0`` stay black.

The spec's torchvision transform (``Resize((150, 50))``, ``Grayscale(1)``,
``ToTensor()``, ``Normalize(0.5, 0.5)``) is :func:`image_to_input`, in OpenCV
and numpy: ``cv2.resize`` with ``INTER_AREA`` (pixel-area averaging, the right
filter for a 23x / 4x shrink; torchvision's antialiased bilinear is close to
it), ``/255`` to [0, 1], then ``(v - 0.5) / 0.5`` to [-1, 1].
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ser.errors import ConfigError, DataError

EPS = 1e-9
"""Added before the log, as in the spec's ``spectrogram2image``."""

INTERPOLATIONS = {"area": 3, "linear": 1, "nearest": 0, "cubic": 2}
"""Names for OpenCV's interpolation flags (cv2.INTER_AREA == 3, ...)."""

STD_FLOOR = 1e-3
"""Smallest per-row spread (natural-log units) a speaker's rows are divided by."""

SPEAKER_DIR = "speaker_norm"
"""Sub-folder of an image tree that holds the speaker-normalised images."""


def scale_to_uint8(L: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The spec's ``scale``: ``(L - lo) / (hi - lo) * 255`` cast to uint8.

    Values are clipped to [lo, hi] first; the cast truncates, as the spec's
    ``astype(np.uint8)`` does, so ``hi`` maps to 255 and ``lo`` to 0.
    A constant input (``hi == lo``) gives zeros.
    """
    if not hi > lo:
        return np.zeros(L.shape, dtype=np.uint8)
    v = (np.clip(L, lo, hi) - lo) / (hi - lo) * 255.0
    return v.astype(np.uint8)


def log_mel_image(
    X: np.ndarray,
    *,
    fix_floor: bool = True,
    dynamic_range: float | None = None,
    low_at_bottom: bool = True,
) -> np.ndarray:
    """A magnitude mel spectrogram as a grey image.

    Parameters
    ----------
    X : np.ndarray [shape=(n_mels, n_frames)]
        Mel spectrogram (``power=1``), non-negative, row 0 the lowest band.
    fix_floor : bool
        True: min-max over the entries with ``X > 0`` only, zero entries set to
        that minimum (see the module text). False: the spec's plain min-max.
    dynamic_range : float, optional
        Keep at most this many natural-log units below the maximum (values
        below ``max - dynamic_range`` become 0). None keeps the whole range.
    low_at_bottom : bool
        True: flip rows so that the lowest band is the last (bottom) row.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames), dtype=uint8]
        0 at the minimum, 255 at the maximum.
    """
    L, signal = log_mel(X)
    if not fix_floor:  # the spec: min-max over every entry
        signal = np.ones_like(signal)
    return signal_to_uint8(L, signal, dynamic_range=dynamic_range, low_at_bottom=low_at_bottom)


def log_mel(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(X + 1e-9)`` of a checked mel spectrogram, and where it carries signal.

    Parameters
    ----------
    X : np.ndarray [shape=(n_mels, n_frames)]
        Non-negative and finite (else :class:`DataError`).

    Returns
    -------
    L : np.ndarray [shape=(n_mels, n_frames), dtype=float64]
    signal : np.ndarray [shape=(n_mels, n_frames), dtype=bool]
        ``X > 0``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"expected a 2-D spectrogram (n_mels, n_frames), got shape {X.shape}")
    if np.any(X < 0) or not np.all(np.isfinite(X)):
        raise DataError("spectrogram holds negative or non-finite values")
    return np.log(X + EPS), X > 0


def signal_to_uint8(V: np.ndarray, signal: np.ndarray, *, dynamic_range: float | None = None,
                    low_at_bottom: bool = True) -> np.ndarray:
    """Min-max of ``V`` over the entries ``signal`` to uint8, the others black.

    Parameters
    ----------
    V : np.ndarray [shape=(n_mels, n_frames)]
        Values, row 0 the lowest band.
    signal : np.ndarray [shape=(n_mels, n_frames), dtype=bool]
        The entries the scale is taken over; the rest become 0.
    dynamic_range : float, optional
        Keep at most this many units of ``V`` below the maximum.
    low_at_bottom : bool
        True: flip rows so that the lowest band is the last (bottom) row.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames), dtype=uint8]
        All zeros when no entry is signal or all are equal.
    """
    hi = float(V[signal].max()) if signal.any() else 0.0
    lo = float(V[signal].min()) if signal.any() else hi
    if dynamic_range is not None:
        if dynamic_range <= 0:
            raise ConfigError(f"dynamic_range must be > 0, got {dynamic_range}")
        lo = max(lo, hi - dynamic_range)
    img = scale_to_uint8(np.where(signal, V, lo), lo, hi)
    return img[::-1].copy() if low_at_bottom else img


def log_mel_row_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sufficient statistics per row of ``log(X + 1e-9)`` over the entries with ``X > 0``.

    Parameters
    ----------
    X : np.ndarray [shape=(n_mels, n_frames)]
        Mel spectrogram (``power=1``), row 0 the lowest band.

    Returns
    -------
    counts : np.ndarray [shape=(n_mels,), dtype=int64]
        Entries with signal per row.
    sums, sums_sq : np.ndarray [shape=(n_mels,), dtype=float64]
        Sum and sum of squares of the log values of those entries.
    """
    L, signal = log_mel(X)
    Ls = np.where(signal, L, 0.0)
    return signal.sum(axis=1).astype(np.int64), Ls.sum(axis=1), (Ls * Ls).sum(axis=1)


def speaker_row_stats(stats, *, std_floor: float = STD_FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """One speaker's mean and spread per row, pooled over clips and frames.

    Parameters
    ----------
    stats : sequence of (counts, sums, sums_sq)
        :func:`log_mel_row_stats` of each of the speaker's clips (summed in
        the order given).
    std_floor : float
        The spread is at least this (a row with one value would divide by 0).

    Returns
    -------
    mean_row, std_row : np.ndarray [shape=(n_mels,), dtype=float64]
        Rows without signal in any clip: mean 0, std 1.
    """
    if not len(stats):
        raise DataError("a speaker needs at least one clip for its statistics")
    n = np.zeros_like(stats[0][0], dtype=np.float64)
    s, sq = np.zeros_like(n), np.zeros_like(n)
    for c, s1, sq1 in stats:
        n, s, sq = n + c, s + s1, sq + sq1
    has = n > 0
    per = np.where(has, n, 1.0)  # rows without signal: divided by 1, then set to 0
    mean = np.where(has, s / per, 0.0)
    var = np.where(has, sq / per, 0.0) - mean ** 2
    std = np.where(has, np.maximum(np.sqrt(np.clip(var, 0.0, None)), std_floor), 1.0)
    return mean, std


def speaker_row_stats_by(items, *, std_floor: float = STD_FLOOR) -> dict:
    """:func:`speaker_row_stats` of every speaker.

    Parameters
    ----------
    items : iterable of (speaker, name, (counts, sums, sums_sq))
        One per clip; a speaker's clips are pooled in the order of their
        ``name`` (a file name), so that the sums do not depend on the order
        the clips were listed in.

    Returns
    -------
    dict ``{speaker: (mean_row, std_row)}``
    """
    groups: dict = {}
    for speaker, name, st in items:
        groups.setdefault(speaker, []).append((name, st))
    return {spk: speaker_row_stats([st for _, st in sorted(g, key=lambda t: t[0])], std_floor=std_floor)
            for spk, g in groups.items()}


def speaker_norm_image(X: np.ndarray, mean_row: np.ndarray, std_row: np.ndarray, *,
                       low_at_bottom: bool = True) -> np.ndarray:
    """A mel spectrogram as a grey image, after its speaker's mean and spread per row.

    ``Z = (log(X + 1e-9) - mean_row) / std_row`` on the entries with ``X > 0``,
    then the min-max of :func:`log_mel_image` over those entries; entries with
    ``X == 0`` are black.

    Parameters
    ----------
    X : np.ndarray [shape=(n_mels, n_frames)]
        Mel spectrogram (``power=1``), row 0 the lowest band.
    mean_row, std_row : np.ndarray [shape=(n_mels,)]
        The speaker's :func:`speaker_row_stats`.
    low_at_bottom : bool
        True: flip rows so that the lowest band is the last (bottom) row.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames), dtype=uint8]
    """
    L, signal = log_mel(X)
    mean_row, std_row = np.asarray(mean_row, dtype=np.float64), np.asarray(std_row, dtype=np.float64)
    if mean_row.shape != (L.shape[0],) or std_row.shape != (L.shape[0],):
        raise DataError(f"speaker statistics of shapes {mean_row.shape}, {std_row.shape} do not fit "
                        f"a spectrogram of {L.shape[0]} rows")
    Z = (L - mean_row[:, None]) / std_row[:, None]
    return signal_to_uint8(Z, signal, low_at_bottom=low_at_bottom)


def spectrogram2image(X: np.ndarray, filename: str | os.PathLike, **kwargs) -> np.ndarray:
    """The spec's ``spectrogram2image``: :func:`log_mel_image` written as a PNG.

    The file is written under a temporary name and moved into place. Keyword
    arguments go to :func:`log_mel_image`. Returns the image.
    """
    img = log_mel_image(X, **kwargs)
    write_png(filename, img)
    return img


def write_png(filename: str | os.PathLike, img: np.ndarray) -> None:
    """``cv2.imwrite``, atomically (:func:`ser.io.atomic_path`; the temporary
    name keeps the ``.png`` ending OpenCV picks the format by)."""
    import cv2

    from ser.io import atomic_path

    path = Path(filename)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise DataError(f"{path}: OpenCV could not write the image")


def read_png(filename: str | os.PathLike) -> np.ndarray:
    """A PNG as a grey uint8 image [h, w] (colour images are converted, like
    torchvision's ``Grayscale(1)``)."""
    import cv2

    path = Path(filename)
    if not path.is_file():
        raise DataError(f"{path}: no such image")
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f"{path}: cannot be read as an image")
    return img


def image_to_input(img: np.ndarray, *, size_hw: tuple[int, int] = (150, 50), interpolation: str = "area") -> np.ndarray:
    """The spec's transform: resize, one grey channel, to [0, 1], normalise to [-1, 1].

    Parameters
    ----------
    img : np.ndarray [shape=(h, w) or (h, w, 3), dtype=uint8]
    size_hw : (height, width)
        Output size, torchvision's ``Resize((h, w))`` order.
    interpolation : {"area", "linear", "nearest", "cubic"}

    Returns
    -------
    np.ndarray [shape=(1, height, width), dtype=float32]
        ``(v / 255 - 0.5) / 0.5``.
    """
    import cv2

    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")
    img = np.asarray(img)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    h, w = size_hw
    if img.shape != (h, w):
        img = cv2.resize(img, (w, h), interpolation=INTERPOLATIONS[interpolation])
    v = img.astype(np.float32) / 255.0
    return ((v - 0.5) / 0.5)[None]


def clip_image(path: str | os.PathLike, *, mel_cfg, n_frames: int | None, window: str = "start", onset=None,
               **image_kwargs) -> np.ndarray:
    """Read one WAV and return its image (uint8 [n_mels, n_frames]).

    ``window``: the frames begin at the file's start, or at the speech onset
    (:func:`ser.data.audio.window_start` with ``onset``, a :class:`ser.config.OnsetConfig`).
    """
    return log_mel_image(clip_mel(path, mel_cfg=mel_cfg, n_frames=n_frames, window=window, onset=onset),
                         **image_kwargs)


def clip_mel(path: str | os.PathLike, *, mel_cfg, n_frames: int | None, window: str = "start",
             onset=None) -> np.ndarray:
    """Read one WAV and return the mel spectrogram its image is made of.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)]
        ``power=1``, from the window of :func:`clip_image`.
    """
    from ser.data.audio import read_mono, window_start
    from ser.features.spectro import mel_from_config

    y, sr_hz = read_mono(path)
    y = y[window_start(y, sr_hz, window, onset):]
    return mel_from_config(y, sr_hz, mel_cfg, power=1.0, n_frames=n_frames)


def image_path(out_root: str | os.PathLike, clip) -> Path:
    """``<out_root>/<Split>/<Class>/<clip stem>.png``."""
    return Path(out_root) / clip.split / clip.class_name / (Path(clip.path).stem + ".png")


def speaker_image_path(out_root: str | os.PathLike, clip) -> Path:
    """``<out_root>/speaker_norm/<Split>/<Class>/<clip stem>.png``."""
    return image_path(Path(out_root) / SPEAKER_DIR, clip)


def export_images(
    data_root: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    mel_cfg,
    n_frames: int | None = 200,
    fix_floor: bool = True,
    dynamic_range: float | None = None,
    low_at_bottom: bool = True,
    window: str = "start",
    onset=None,
    speaker_norm: bool = False,
    log: Callable[[str], None] | None = None,
    speaker_pattern: str | None = None,
) -> list[dict]:
    """Write every clip's image into an image-folder tree ``<out_root>/{Train,Test}/<Class>/``.

    ``speaker_norm=True`` also writes each clip's :func:`speaker_norm_image`
    into ``<out_root>/speaker_norm/<Split>/<Class>/`` under the same file name;
    a speaker is (split, speaker) and its statistics come from its clips of that
    split (a first pass over the clips; the images are a second pass, which
    recomputes the mel rather than holding every clip's). Every clip then needs
    an speaker (:class:`DataError` otherwise). ``dynamic_range`` (log units) has
    no meaning for the normalised values and cannot be combined with it.

    Returns one record per clip (``key``, ``split``, ``class_name``, ``label``,
    ``speaker``, ``path``, and ``path_speaker`` with ``speaker_norm``), in
    :func:`ser.data.dataset.list_clips` order.
    """
    from ser.data.dataset import list_clips
    from ser.io import map_clips

    clips = list_clips(data_root, speaker_pattern)
    t0 = time.perf_counter()

    if speaker_norm:
        if dynamic_range is not None:
            raise ConfigError(f"dynamic_range={dynamic_range} (log units) cannot be combined with speaker "
                              "normalisation (the normalised values are in units of the speaker's spread)")
        missing = [c for c in clips if c.speaker is None]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DataError(f"{missing[0].path}{more}: speaker normalisation needs the speaker, and the data set "
                            "declares none; drop the speaker-normalised candidates ([cnn2d] speaker_norm = [])")
    mel_kw = dict(mel_cfg=mel_cfg, n_frames=n_frames, window=window, onset=onset)

    def one(c) -> tuple[dict, tuple | None]:
        X = clip_mel(c.path, **mel_kw)
        p = image_path(out_root, c)
        write_png(p, log_mel_image(X, fix_floor=fix_floor, dynamic_range=dynamic_range,
                                   low_at_bottom=low_at_bottom))
        return ({"key": c.key, "split": c.split, "class_name": c.class_name,
                 "label": c.label, "speaker": c.speaker, "path": str(p)},
                log_mel_row_stats(X) if speaker_norm else None)

    # Clips over the cores (threads: the FFT, the sparse product and PNG
    # encoding release the GIL), with a progress bar.
    done = map_clips(one, clips, desc="spectrogram images")
    records = [r for r, _ in done]
    if speaker_norm:
        norms = speaker_row_stats_by(((c.split, c.speaker), c.path.name, st) for c, (_, st) in zip(clips, done))

        def two(c) -> str:
            p = speaker_image_path(out_root, c)
            write_png(p, speaker_norm_image(clip_mel(c.path, **mel_kw), *norms[(c.split, c.speaker)],
                                            low_at_bottom=low_at_bottom))
            return str(p)

        for r, p in zip(records, map_clips(two, clips, desc="speaker-normalised images")):
            r["path_speaker"] = p
    if log:
        log(f"images: {len(records)} written{' (and speaker-normalised)' if speaker_norm else ''} "
            f"({time.perf_counter() - t0:.1f} s)")
    return records


def load_inputs(records: list[dict], *, size_hw=(150, 50), interpolation: str = "area") -> np.ndarray:
    """Read the images of ``records`` once and apply :func:`image_to_input`.

    Returns
    -------
    np.ndarray [shape=(n, 1, height, width), dtype=float32]
    """
    out = np.empty((len(records), 1, *size_hw), dtype=np.float32)
    for i, r in enumerate(records):
        out[i] = image_to_input(read_png(r["path"]), size_hw=size_hw, interpolation=interpolation)
    return out
