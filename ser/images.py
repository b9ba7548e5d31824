"""Mel spectrograms as grey images, and images as network inputs (section 3.2).

The spec saves ``log(X + 1e-9)`` of a magnitude mel spectrogram (``power=1``),
min-max scaled to 0-255, with ``cv.imwrite``. Three choices are made here and
recorded in the results:

* **Floor fix.** With n_mels=3401 and n_fft=16384 about 160 mel filters below
  ~1.1 kHz are narrower than an FFT bin and hold no bin at all: their rows are
  exactly zero, so ``log(X + 1e-9)`` is ``log(1e-9) = -20.7`` there and the
  spec's ``X.min()`` is that constant, not the signal. Frames of digital
  silence (exact zeros, common in actors 2 and 4) do the same. Here the
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

from .errors import ConfigError, DataError

EPS = 1e-9
"""Added before the log, as in the spec's ``spectrogram2image``."""

INTERPOLATIONS = {"area": 3, "linear": 1, "nearest": 0, "cubic": 2}
"""Names for OpenCV's interpolation flags (cv2.INTER_AREA == 3, ...)."""


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
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"expected a 2-D spectrogram (n_mels, n_frames), got shape {X.shape}")
    if np.any(X < 0) or not np.all(np.isfinite(X)):
        raise DataError("spectrogram holds negative or non-finite values")
    L = np.log(X + EPS)
    hi = float(L.max())
    if fix_floor:
        signal = X > 0
        lo = float(L[signal].min()) if signal.any() else hi
    else:
        lo = float(L.min())
    if dynamic_range is not None:
        if dynamic_range <= 0:
            raise ConfigError(f"dynamic_range must be > 0, got {dynamic_range}")
        lo = max(lo, hi - dynamic_range)
    img = scale_to_uint8(L, lo, hi)
    return img[::-1].copy() if low_at_bottom else img


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

    from .io import atomic_path

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
    (:func:`ser.audio.window_start` with ``onset``, a :class:`ser.config.OnsetConfig`).
    """
    from .audio import read_mono, window_start
    from .spectro import mel_from_config

    y, sr_hz = read_mono(path)
    y = y[window_start(y, sr_hz, window, onset):]
    X = mel_from_config(y, sr_hz, mel_cfg, power=1.0, n_frames=n_frames)
    return log_mel_image(X, **image_kwargs)


def image_path(out_root: str | os.PathLike, clip) -> Path:
    """``<out_root>/<Split>/<Class>/<clip stem>.png``."""
    return Path(out_root) / clip.split / clip.class_name / (Path(clip.path).stem + ".png")


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
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Write every clip's image into an image-folder tree ``<out_root>/{Train,Test}/<Class>/``.

    Returns one record per clip (``key``, ``split``, ``class_name``, ``label``,
    ``actor``, ``path``), in :func:`ser.dataset.list_clips` order.
    """
    from .dataset import list_clips
    from .io import map_clips

    clips = list_clips(data_root)
    t0 = time.perf_counter()

    def one(c) -> dict:
        img = clip_image(
            c.path, mel_cfg=mel_cfg, n_frames=n_frames, window=window, onset=onset,
            fix_floor=fix_floor, dynamic_range=dynamic_range, low_at_bottom=low_at_bottom,
        )
        p = image_path(out_root, c)
        write_png(p, img)
        return {"key": c.key, "split": c.split, "class_name": c.class_name,
                "label": c.label, "actor": c.actor, "path": str(p)}

    # Clips over the cores (threads: the FFT, the sparse product and PNG
    # encoding release the GIL), with a progress bar.
    records = map_clips(one, clips, desc="spectrogram images")
    if log:
        log(f"images: {len(records)} written ({time.perf_counter() - t0:.1f} s)")
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
