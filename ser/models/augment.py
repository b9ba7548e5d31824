"""Batch augmentations for both networks, in torch (no torchvision).

Every function takes a batch ``x`` and a ``torch.Generator`` and returns a new
batch of the same shape; the input is never modified. Image functions take
[shape=(batch, 1, n_freq, n_time)] network inputs (``image_to_input``'s
[-1, 1] scale; row 0 the top of the image); waveform functions take
[shape=(batch, 1, n_samples)]. :func:`make_augment` builds the
``augment(x, generator)`` callback that :func:`ser.models.training.fit` takes from an
:class:`AugmentSpec`, for either network.

Three families:

* image-style (torchvision's RandomHorizontalFlip, RandomVerticalFlip,
  RandomRotation, RandomCrop with padding): a horizontal flip plays the clip
  backwards, a vertical flip swaps low and high frequencies, a rotation tilts
  time into frequency. Meaningful for photographs, not for spectrograms.
* spectrogram-aware: time shift (circular roll along time), time masking and
  frequency masking (SpecAugment, masked with the image's mean), an additive
  offset (a change of the log scale's zero point), and mixing two clips of the
  batch (``mixup``; needs the labels, see :func:`mixup`).
* waveform: a time shift that fills the gap with zeros (nothing wraps
  around), and a random gain in dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ser.errors import ConfigError


def _uniform(n: int, gen, lo: float = 0.0, hi: float = 1.0):
    import torch

    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _randint(n: int, gen, lo: int, hi: int):
    """Integers in [lo, hi] inclusive, shape [n]."""
    import torch

    return torch.randint(lo, hi + 1, (n,), generator=gen)


def hflip(x, gen, p: float = 0.5):
    """Reverse time (columns) of each image with probability ``p``."""
    import torch

    flip = _uniform(len(x), gen) < p
    out = x.clone()
    out[flip] = torch.flip(x[flip], dims=[-1])
    return out


def vflip(x, gen, p: float = 0.5):
    """Reverse frequency (rows) of each image with probability ``p``:
    low bands become high bands."""
    import torch

    flip = _uniform(len(x), gen) < p
    out = x.clone()
    out[flip] = torch.flip(x[flip], dims=[-2])
    return out


def rotate(x, gen, max_deg: float = 10.0):
    """Rotate each image by a uniform angle in [-max_deg, max_deg] degrees about
    its centre (bilinear; corners filled with the image's minimum)."""
    import torch
    import torch.nn.functional as F

    if max_deg <= 0:
        return x.clone()
    n, _, h, w = x.shape
    a = _uniform(n, gen, -max_deg, max_deg) * math.pi / 180
    cos, sin = torch.cos(a), torch.sin(a)
    # affine_grid works in normalised coordinates; scale for the aspect ratio
    # so that the rotation is a rotation in pixels.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(x - lo, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + lo


def random_crop(x, gen, pad: int = 4):
    """torchvision's ``RandomCrop(size, padding=pad)``: pad every side by
    ``pad`` pixels (with the image's minimum) and cut a random window of the
    original size."""
    import torch
    import torch.nn.functional as F

    if pad <= 0:
        return x.clone()
    n, c, h, w = x.shape
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    padded = F.pad(x - lo, (pad, pad, pad, pad)) + lo
    dy = _randint(n, gen, 0, 2 * pad)
    dx = _randint(n, gen, 0, 2 * pad)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
    return out


def time_shift(x, gen, max_cols: int = 5):
    """Roll each image along time by a uniform integer in [-max_cols, max_cols]."""
    import torch

    out = torch.empty_like(x)
    shifts = _randint(len(x), gen, -max_cols, max_cols)
    for i, s in enumerate(shifts.tolist()):
        out[i] = torch.roll(x[i], shifts=s, dims=-1)
    return out


def _mask(x, gen, max_width: int, n_masks: int, dim: int):
    out = x.clone()
    size = x.shape[dim]
    mean = x.mean(dim=(1, 2, 3))
    for _ in range(n_masks):
        widths = _randint(len(x), gen, 0, max_width)
        starts = (_uniform(len(x), gen) * (size - widths + 1)).floor().long()
        for i in range(len(x)):
            a, b = int(starts[i]), int(starts[i] + widths[i])
            if dim == -1:
                out[i, :, :, a:b] = mean[i]
            else:
                out[i, :, a:b, :] = mean[i]
    return out


def time_mask(x, gen, max_cols: int = 6, n_masks: int = 1):
    """SpecAugment time masking: ``n_masks`` bands of 0..max_cols columns set to
    the image's mean."""
    return _mask(x, gen, max_cols, n_masks, -1)


def freq_mask(x, gen, max_rows: int = 15, n_masks: int = 1):
    """SpecAugment frequency masking: ``n_masks`` bands of 0..max_rows rows set
    to the image's mean."""
    return _mask(x, gen, max_rows, n_masks, -2)


def offset(x, gen, max_offset: float = 0.1):
    """Add a uniform constant in [-max_offset, max_offset] to each image.

    In the log domain a gain change is an additive constant; the per-image
    min-max scaling of the export removes it, so this moves the image's grey
    levels instead (a shift of the scale's zero point).
    """
    return x + _uniform(len(x), gen, -max_offset, max_offset).view(-1, 1, 1, 1)


def wave_shift(x, gen, max_samples: int):
    """Shift each waveform by a uniform integer in [-max_samples, max_samples]
    samples; zeros fill the gap, nothing wraps around."""
    return shift_waves(x, _randint(x.shape[0], gen, -max_samples, max_samples).tolist())


def shift_waves(x, shifts):
    """Shift waveform ``i`` by ``shifts[i]`` samples (positive: later, at most
    the clip's length); zeros fill the gap, nothing wraps around. No random
    draw: :func:`wave_shift` draws the shifts, test-time averaging fixes them."""
    import torch

    length = x.shape[-1]
    out = torch.zeros_like(x)
    for i, s in enumerate(int(s) for s in shifts):
        if s >= 0:
            out[i, ..., s:] = x[i, ..., : length - s]
        else:
            out[i, ..., : length + s] = x[i, ..., -s:]
    return out


def gain(x, gen, max_db: float):
    """Multiply each example by a uniform gain in [-max_db, max_db] dB."""
    g = _uniform(len(x), gen, -max_db, max_db)
    return x * (10.0 ** (g / 20.0)).view(len(x), *([1] * (x.dim() - 1)))


def speed_perturb(x, factors):
    """Play waveform ``i`` ``factors[i]`` times as fast (tempo and pitch
    together), by linear interpolation between samples; past the clip's end
    is zero and the length is kept. No random draw (see :func:`speed`)."""
    import torch

    n = x.shape[-1]
    pos = torch.arange(n, device=x.device, dtype=torch.float32).view(1, -1) * factors.to(x.device).view(-1, 1)
    i0 = pos.floor().long()
    w = pos - i0
    a = torch.gather(x[:, 0], 1, i0.clamp(max=n - 1)) * (i0 < n)
    b = torch.gather(x[:, 0], 1, (i0 + 1).clamp(max=n - 1)) * ((i0 + 1) < n)
    return (a * (1 - w) + b * w).unsqueeze(1)


def speed(x, gen, max_change: float):
    """Waveforms [shape=(batch, 1, n_samples)] each played at a uniform speed
    in [1 - max_change, 1 + max_change] (:func:`speed_perturb`)."""
    return speed_perturb(x, 1 + (_uniform(len(x), gen) * 2 - 1) * max_change)


def mixup(x, y_onehot, gen, alpha: float = 0.2, *, groups=None):
    """Mix each example with another of the batch: ``lam*x + (1-lam)*x[perm]``,
    the targets alike, ``lam ~ Beta(alpha, alpha)`` per example (kept >= 0.5
    so that the first clip dominates).

    ``groups`` (optional, [shape=(batch,)], e.g. each example's speaker):
    each example's partner is drawn uniformly among the batch's examples of
    another group (itself when the batch holds no other group), with one
    uniform draw per example instead of the permutation.

    Returns
    -------
    (x_mixed, y_mixed): tensors of ``x``'s and ``y_onehot``'s shapes.
    """
    import torch

    n = len(x)
    lam = _beta(n, alpha, gen)
    lam = torch.maximum(lam, 1 - lam)
    perm = torch.randperm(n, generator=gen) if groups is None else _other_group(torch.as_tensor(groups), gen)
    lx = lam.view(-1, *([1] * (x.dim() - 1)))
    ly = lam.view(-1, 1)
    return lx * x + (1 - lx) * x[perm], ly * y_onehot + (1 - ly) * y_onehot[perm]


def _other_group(groups, gen):
    """For each example, the index of a uniformly drawn example of another group
    (its own index when there is none): one ``torch.rand`` draw per example."""
    import torch

    n = len(groups)
    other = groups.view(-1, 1) != groups.view(1, -1)  # [n, n]
    count = other.sum(1)
    k = (_uniform(n, gen) * count).floor().long().clamp(max=(count - 1).clamp(min=0))
    order = torch.argsort((~other).int(), dim=1, stable=True)  # the other groups' examples first
    return torch.where(count > 0, order[torch.arange(n), k], torch.arange(n))


def _beta(n: int, alpha: float, gen):
    """Beta(alpha, alpha) draws [n] from ``gen`` (Johnk's rejection method)."""
    import torch

    out = torch.empty(n)
    filled = 0
    while filled < n:
        u = torch.rand(2 * n, generator=gen) ** (1 / alpha)
        v = torch.rand(2 * n, generator=gen) ** (1 / alpha)
        ok = (u + v) <= 1
        vals = (u / (u + v))[ok & (u + v > 0)]
        take = min(len(vals), n - filled)
        out[filled : filled + take] = vals[:take]
        filled += take
    return out


@dataclass(frozen=True)
class AugmentSpec:
    """Which augmentations a setting applies, and how strongly (0 = off)."""

    name: str = "none"
    hflip_p: float = 0.0
    vflip_p: float = 0.0
    rotate_deg: float = 0.0
    crop_pad: int = 0
    shift_cols: int = 0
    time_mask_cols: int = 0
    freq_mask_rows: int = 0
    n_masks: int = 1
    offset: float = 0.0
    mixup_alpha: float = 0.0
    shift_samples: int = 0  # waveform: zero-filled shift, +-samples
    gain_db: float = 0.0  # waveform (or any input): random gain, +-dB
    speed: float = 0.0  # waveform: play at a random speed in 1 +- speed (tempo and pitch)


def make_augment(spec: AugmentSpec):
    """The ``augment(x, generator)`` callback for :func:`ser.models.training.fit`, or
    None when ``spec`` turns everything off. Mixup is not part of it (it needs
    the labels): see :func:`mixup`."""
    steps = []
    if spec.hflip_p > 0:
        steps.append(lambda x, g: hflip(x, g, spec.hflip_p))
    if spec.vflip_p > 0:
        steps.append(lambda x, g: vflip(x, g, spec.vflip_p))
    if spec.rotate_deg > 0:
        steps.append(lambda x, g: rotate(x, g, spec.rotate_deg))
    if spec.crop_pad > 0:
        steps.append(lambda x, g: random_crop(x, g, spec.crop_pad))
    if spec.shift_cols > 0:
        steps.append(lambda x, g: time_shift(x, g, spec.shift_cols))
    if spec.time_mask_cols > 0:
        steps.append(lambda x, g: time_mask(x, g, spec.time_mask_cols, spec.n_masks))
    if spec.freq_mask_rows > 0:
        steps.append(lambda x, g: freq_mask(x, g, spec.freq_mask_rows, spec.n_masks))
    if spec.offset > 0:
        steps.append(lambda x, g: offset(x, g, spec.offset))
    if spec.speed > 0:  # before the shift: a slower clip is shifted as played
        steps.append(lambda x, g: speed(x, g, spec.speed))
    if spec.shift_samples > 0:
        steps.append(lambda x, g: wave_shift(x, g, spec.shift_samples))
    if spec.gain_db > 0:
        steps.append(lambda x, g: gain(x, g, spec.gain_db))
    if spec.mixup_alpha < 0:
        raise ConfigError(f"mixup_alpha must be >= 0, got {spec.mixup_alpha}")
    if not steps:
        return None

    def augment(x, gen):
        for step in steps:
            x = step(x, gen)
        return x

    return augment


def make_mix(spec: AugmentSpec):
    """The ``mix(x, y_onehot, generator)`` callback of :func:`ser.models.training.fit`
    for ``spec.mixup_alpha`` > 0, else None. ``fit`` passes ``groups`` (the
    batch's groups, :func:`mixup`) when given ``mix_groups``."""
    if spec.mixup_alpha <= 0:
        return None
    return lambda x, y_onehot, gen, groups=None: mixup(x, y_onehot, gen, spec.mixup_alpha, groups=groups)
