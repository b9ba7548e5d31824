"""Design study (issue 9): which design changes make the CNNs generalise across speakers.

Every candidate is judged ONLY by leave-one-actor-out (LOAO) validation inside
the training actors 1-4 (``<data>/Train``). Nothing here lists, reads or
prepares Test/ or Confirm/.

Two steps:

``prepare``  (CPU, where the data is) reads the Train clips once and writes
    compact arrays: the whole 48 kHz waveforms as int16 (the files are 16-bit;
    the one stereo clip's channel mean is rounded to the nearest integer), the
    per-clip speech onset, and the 2D CNN's network inputs (150x50 images made
    with ser.features.images / ser.features.spectro exactly as the build's export does) for two
    windows: the build's first 200 frames, and 200 frames from the speech onset.

``run``  trains every candidate on every fold (held-out actor) x seed and
    writes ``results.json`` and ``tables.md`` (rewritten after every finished
    run, so a time-out leaves the rows done so far). Jobs are ordered by
    expected value: seeds 0 and 1 of every candidate first (in the order of the
    lists below), then an adaptive "combination of the winners", then the
    remaining seeds. 1D runs go to GPU worker processes (``--device cuda``),
    2D runs to single-thread CPU worker processes (the 150x50 network is tiny).

Scores. For a candidate, the validation-accuracy and validation-loss curves
are averaged over its fold x seed runs. Rule "acc": the epoch where the
centred 5-epoch moving average of the mean accuracy curve peaks. Rule "loss":
the epoch where the 5-epoch moving average of the mean validation loss is
lowest. At each rule's epoch the table gives the mean accuracy over runs (and
the smoothed value), the std over the fold x seed runs, its standard error
(std / sqrt(runs)), the per-fold means, and the margin to the baseline with the
standard error of the paired (same fold, same seed) differences.

The training loop mirrors ``ser.models.training.fit`` (Adam, cross-entropy with label
smoothing, batch order from ``np.random.default_rng(seed)``, augmentation draws
from ``torch.Generator().manual_seed(seed)``, model built after
``ser.models.training.seed_everything(seed)``) but evaluates several validation
"views" per epoch (a view averages the softmax over shifted copies: the
test-time averaging candidate). The 2D network and the spectrogram
augmentations are re-implemented here with the build's layer order and random
draws (``ser/models/cnn2d.py``, ``ser/models/augment.py`` at this commit), so that this
script does not depend on modules that are being rewritten.

How it was run for issue 9 (results and reading: bench/design_study_results/README.md)::

    # here, on CPU, Train only (15 s):
    python bench/design_study.py prepare --data ../shared/data/EmotionSpeech \\
        --out /work/main/.design/data
    # on the lent H100 machine (16 cores), ser/ (this commit's) and this script
    # copied beside the data as .design/:
    # run 1, every candidate, seeds 0-3 (241 s):
    cd .design && PYTHONPATH=. python3 design_study.py run --data data --device cuda \\
        --out $OUT --seeds 0 1 2 3 --gpu-workers 12 --budget-s 370 --grace-s 45
    # run 2, bench/design_study_results/run2_plan.json, 1D to 80 epochs (316 s):
    cd .design && PYTHONPATH=. python3 design_study.py run --data data --device cuda \\
        --out $OUT --plan plan2.json --epochs1d 80 --gpu-workers 14 --budget-s 330 --grace-s 30
    # here: both runs merged, 1D curves cut to 50 epochs
    python bench/design_study.py report run1_results.json.gz run2_results.json.gz --out merged

A tiny CPU check of the whole path (a few epochs, a few clips per actor)::

    python bench/design_study.py run --data /tmp/design --device cpu --out /tmp/ds \\
        --epochs1d 2 --epochs2d 2 --seeds 0 --folds 1 2 --clips-per-actor 8 \\
        --cands1d base,a_onset --cands2d base,c_freq
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (_HERE, _HERE.parent):  # .design/ser beside the script, else the repo's ser/
    if (_p / "ser").is_dir():
        sys.path.insert(0, str(_p))
        break

import numpy as np  # noqa: E402

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS in the workers

# --------------------------------------------------------------- settings
HOP_S = 0.015
N_FRAMES = 200  # the 1D window is (n_frames + 1) * hop samples = 3.015 s, as the build
ONSET_REL_DB = -30.0  # a frame is speech when its RMS exceeds max RMS * 10**(-30/20)
ONSET_FRAME_S, ONSET_HOP_S, ONSET_MARGIN_S = 0.02, 0.01, 0.1
TTA_SHIFT_S = 0.125  # test-time averaging: windows shifted by -0.125, 0, +0.125 s
DITHER = 1e-4  # uniform [-1e-4, 1e-4] on the [-1, 1] scale (about 3 LSB of 16 bit)
FLOOR_DB = -50.0  # noise floor relative to the clip's voiced RMS

TRAIN1D = dict(epochs=50, batch_size=32, lr=1e-3, weight_decay=1e-3, label_smoothing=0.1)
TRAIN2D = dict(epochs=60, batch_size=16, lr=2e-3, weight_decay=1e-3, label_smoothing=0.1)

BASE1D = dict(sr=16000, window="start", noise="none", norm="clip_std", shift_s=0.25,
              speed=0.0, gain_db=0.0, mixup=0.0, first="conv")
BASE2D = dict(window="start", rownorm="none", head="gap", coord=False, aug="spectrogram")

# (name, overrides of the baseline, what it tests), ordered by expected value.
CANDS1D = [
    ("base", {}, "baseline: 16 kHz, 3.015 s from the file start, each clip standardised, +-0.25 s shift"),
    ("a_onset", {"window": "onset"}, "window from the speech onset (-30 dB rule, 0.1 s margin)"),
    ("c_voiced", {"norm": "voiced_rms"}, "level set by the RMS over the voiced frames (not the whole clip)"),
    ("d_all", {"speed": 0.05, "gain_db": 6.0, "mixup": 0.3}, "speed +-5%, gain +-6 dB, mixup 0.3 (+shift)"),
    ("b_dither", {"noise": "dither"}, "uniform dither +-1e-4 on every sample (no exact silence)"),
    ("d_speed", {"speed": 0.05}, "speed/pitch perturbation +-5% (+shift)"),
    ("d_mixup", {"mixup": 0.3}, "mixup alpha 0.3 across clips (+shift)"),
    ("d_gain", {"gain_db": 6.0}, "random gain +-6 dB (+shift)"),
    ("b_floor", {"noise": "floor"}, "Gaussian noise floor at -50 dB re the voiced RMS"),
    ("combo_pre", {"window": "onset", "noise": "dither", "norm": "voiced_rms", "speed": 0.05,
                   "gain_db": 6.0, "mixup": 0.3}, "onset window + dither + voiced level + speed, gain and mixup (combined before any result)"),
    ("f_sinc", {"first": "sinc"}, "sinc band-pass first layer (32 learnt bands, 81 taps)"),
    ("f_48k", {"sr": 48000}, "48 kHz input, first layer 5 ms / 1 ms stride held fixed"),
    # added for the second device run, from the first run's winners (c_voiced, b_floor; f_sinc, a_onset close)
    ("combo_vf", {"norm": "voiced_rms", "noise": "floor"}, "voiced level + noise floor (second round)"),
    ("combo_ovf", {"window": "onset", "norm": "voiced_rms", "noise": "floor"}, "onset window + voiced level + noise floor (second round)"),
    ("combo_vd", {"norm": "voiced_rms", "noise": "dither"}, "voiced level + dither (second round)"),
    ("combo_vfs", {"norm": "voiced_rms", "noise": "floor", "first": "sinc"}, "voiced level + noise floor + sinc first layer (second round)"),
]
CANDS2D = [
    ("base", {}, "baseline: first 200 frames, global average pooling, spectrogram augmentation with mixup 0.4"),
    ("a_onset", {"window": "onset"}, "200 frames from the speech onset"),
    ("b_row_img", {"rownorm": "image"}, "each frequency row standardised per image"),
    ("c_freq", {"head": "freq"}, "frequency head: average over time only, frequency x channels to the classifier"),
    ("d_none", {"aug": "none"}, "no augmentation"),
    ("d_mix_actors", {"aug": "spec_mix_actors"}, "spectrogram aug, mixup 0.4 with a clip of another actor"),
    ("b_row_train", {"rownorm": "train"}, "rows standardised by training-fold row statistics"),
    ("c_coord", {"coord": True}, "frequency-coordinate input channel"),
    ("c_freq_coord", {"head": "freq", "coord": True}, "frequency head + coordinate channel"),
    ("combo_pre", {"window": "onset", "rownorm": "image", "head": "freq"},
     "onset window + rows per image + frequency head (combined before any result)"),
    # added for the second device run, from the first run's winners (a_onset, c_freq, c_freq_coord)
    ("combo_afc", {"window": "onset", "head": "freq", "coord": True}, "onset window + frequency head + coordinate channel (second round)"),
    ("combo_af", {"window": "onset", "head": "freq"}, "onset window + frequency head (second round)"),
    ("combo_afc_rt", {"window": "onset", "head": "freq", "coord": True, "rownorm": "train"},
     "onset window + frequency head + coordinate channel + training-fold rows (second round)"),
]


def moving_average(values, width: int) -> np.ndarray:
    """Centred moving average (window shrinks at the ends), as ser.curves.moving_average."""
    v = np.asarray(values, float)
    h = max(0, int(width) // 2)
    return np.array([v[max(0, i - h): i + h + 1].mean() for i in range(len(v))])


# ------------------------------------------------------------------ prepare
def frame_rms(y: np.ndarray, sr_hz: int, *, frame_s: float = ONSET_FRAME_S,
              hop_s: float = ONSET_HOP_S) -> np.ndarray:
    """Short-time RMS: np.ndarray [shape=(n_frames,)], frames of ``frame_s`` every ``hop_s``."""
    win, hop = max(1, int(round(frame_s * sr_hz))), max(1, int(round(hop_s * sr_hz)))
    y = np.asarray(y, np.float64)
    if len(y) < win:
        y = np.pad(y, (0, win - len(y)))
    fr = np.lib.stride_tricks.sliding_window_view(y, win)[::hop]
    return np.sqrt(np.mean(fr * fr, axis=1))


def speech_stats(y: np.ndarray, sr_hz: int, *, rel_db: float = ONSET_REL_DB,
                 margin_s: float = ONSET_MARGIN_S) -> tuple[float, float]:
    """(onset_s, voiced_rms) of one clip.

    ``onset_s``: start of the first frame whose RMS exceeds ``max_rms *
    10**(rel_db/20)``, minus ``margin_s``, floored at 0. ``voiced_rms``: RMS
    over the frames above that threshold.
    """
    rms = frame_rms(y, sr_hz)
    thr = rms.max() * 10 ** (rel_db / 20)
    voiced = rms > thr
    if not voiced.any():
        return 0.0, float(max(rms.max(), 1e-8))
    first = int(np.argmax(voiced))
    onset = max(0.0, first * int(round(ONSET_HOP_S * sr_hz)) / sr_hz - margin_s)
    return float(onset), float(np.sqrt(np.mean(rms[voiced] ** 2)))


def prepare(data_root: Path, out_dir: Path) -> None:
    """Train clips only -> ``<out>/waves.npz`` and ``<out>/images.npz``."""
    from ser.data.audio import read_mono
    from ser.config import CONFIG
    from ser.data.dataset import folder_clips
    from ser.features.images import clip_image, image_to_input, log_mel_image
    from ser.features.spectro import mel_from_config

    train_dir = Path(data_root) / "Train"
    clips = folder_clips(train_dir)
    assert all(c.split == "Train" for c in clips)
    classes = sorted({c.class_name for c in clips}, key=lambda n: [c.class_name for c in clips].index(n))
    cfg = CONFIG.cnn2d
    img_kw = dict(fix_floor=cfg.fix_floor, dynamic_range=cfg.dynamic_range, low_at_bottom=cfg.low_at_bottom)
    waves, onsets, vrms, img_start, img_onset = [], [], [], [], []
    t0 = time.perf_counter()
    for i, c in enumerate(clips):
        y, sr = read_mono(c.path)
        if sr != 48000:
            raise SystemExit(f"{c.path}: {sr} Hz; this study stores 48 kHz waveforms")
        on, vr = speech_stats(y, sr)
        waves.append(np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16))
        onsets.append(on)
        vrms.append(vr)
        img = clip_image(c.path, mel_cfg=CONFIG.mel, n_frames=cfg.n_frames, **img_kw)
        img_start.append(image_to_input(img, size_hw=tuple(cfg.size_hw), interpolation=cfg.interpolation))
        X = mel_from_config(y[int(round(on * sr)):], sr, CONFIG.mel, power=1.0, n_frames=cfg.n_frames)
        img_onset.append(image_to_input(log_mel_image(X, **img_kw), size_hw=tuple(cfg.size_hw),
                                        interpolation=cfg.interpolation))
        if (i + 1) % 16 == 0:
            print(f"prepare: {i + 1}/{len(clips)} clips ({time.perf_counter() - t0:.0f} s)", flush=True)
    lengths = np.array([len(w) for w in waves])
    W = np.zeros((len(waves), lengths.max()), np.int16)
    for i, w in enumerate(waves):
        W[i, : len(w)] = w
    meta = dict(label=np.array([c.label for c in clips]), actor=np.array([c.actor for c in clips]),
                name=np.array([c.path.name for c in clips]), classes=np.array(classes))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "waves.npz", wave48=W, length=lengths, sr=48000,
                        onset_s=np.array(onsets), voiced_rms48=np.array(vrms), **meta)
    np.savez_compressed(out_dir / "images.npz", start=np.stack(img_start).astype(np.float32),
                        onset=np.stack(img_onset).astype(np.float32), **meta)
    print(f"prepare: wrote {out_dir} ({len(clips)} Train clips, actors {sorted(set(meta['actor'].tolist()))}, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)


# ---------------------------------------------------------------- models
def _torch():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    return torch, nn, F


def make_sinc_conv(n_filters: int, kernel: int, *, stride: int, sr_hz: int):
    """A SincNet-style band-pass first layer: ``n_filters`` Hamming-windowed
    sinc band-pass filters with learnt low and high cut-offs (2 numbers each),
    mel-spaced at start. Input [b, 1, n], output [b, n_filters, frames]."""
    torch, nn, F = _torch()

    class SincConv1d(nn.Module):
        def __init__(self):
            super().__init__()
            k = kernel if kernel % 2 else kernel + 1
            self.k, self.stride, self.sr = k, stride, float(sr_hz)
            self.min_low, self.min_band = 50.0, 50.0
            mel = np.linspace(2595 * np.log10(1 + 30 / 700),
                              2595 * np.log10(1 + (sr_hz / 2 - 100) / 700), n_filters + 1)
            hz = 700 * (10 ** (mel / 2595) - 1)
            self.low_hz = nn.Parameter(torch.tensor(hz[:-1], dtype=torch.float32).view(-1, 1))
            self.band_hz = nn.Parameter(torch.tensor(np.diff(hz), dtype=torch.float32).view(-1, 1))
            n = (k - 1) / 2
            t = torch.arange(-n, n + 1, dtype=torch.float32).view(1, -1) / self.sr
            self.register_buffer("t", t)
            self.register_buffer("window", torch.hamming_window(k, periodic=False).view(1, -1))

        def forward(self, x):
            low = self.min_low + self.low_hz.abs()
            high = torch.clamp(low + self.min_band + self.band_hz.abs(), self.min_low, self.sr / 2)

            def lp(f):  # ideal low-pass impulse response 2 f sinc(2 f t)
                return 2 * f * torch.special.sinc(2 * f * self.t)

            filt = (lp(high) - lp(low)) * self.window
            filt = filt / filt.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
            return F.conv1d(x, filt.unsqueeze(1), stride=self.stride, padding=self.k // 2)

    return SincConv1d()


def build_model_1d(p: dict, n_classes: int):
    """ser.models.cnn1d.WaveCNN with the build's sizes; the first layer spans 5 ms
    (stride 1 ms) at the input rate, or is replaced by a sinc band-pass bank."""
    from ser.models.cnn1d import WaveCNN

    sr = int(p["sr"])
    k, s = max(1, int(round(sr * 5 / 1000))), max(1, int(round(sr * 1 / 1000)))
    model = WaveCNN(n_classes, n_channels=32, first_kernel=k, first_stride=s, n_blocks=4,
                    n_hidden=64, dropout=0.5)
    if p["first"] == "sinc":
        model.features[0] = make_sinc_conv(32, k, stride=s, sr_hz=sr)
    elif p["first"] != "conv":
        raise ValueError(p["first"])
    return model


def build_model_2d(p: dict, n_classes: int, *, in_hw=(150, 50), widths=(8, 16, 32, 32), dropout=0.5):
    """ser.models.cnn2d's network (same layers, same creation order, so the same
    initial weights under one seed) with three options: ``rownorm`` at the
    input (per image, or by training-fold row statistics set with
    ``set_row_stats``), ``coord`` (a frequency-coordinate second input channel,
    +1 at the top row to -1 at the bottom) and ``head`` ("gap": global average
    pool; "freq": average over time only, frequency x channels flattened)."""
    torch, nn, F = _torch()

    class Net2d(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 2 if p["coord"] else 1
            for i, w in enumerate(widths):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                if i < len(widths) - 1:
                    layers.append(nn.MaxPool2d(2))
                c = w
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(dropout)
            h = in_hw[0]
            for _ in range(len(widths) - 1):
                h //= 2
            self.classifier = nn.Linear(c * (h if p["head"] == "freq" else 1), n_classes)
            self.register_buffer("row_mu", torch.zeros(1, 1, in_hw[0], 1))
            self.register_buffer("row_sd", torch.ones(1, 1, in_hw[0], 1))
            self.register_buffer("coord_ch", torch.linspace(1, -1, in_hw[0]).view(1, 1, -1, 1))

        def set_row_stats(self, x):
            mu = x.mean(dim=(0, 1, 3), keepdim=True)
            var = x.var(dim=(0, 1, 3), keepdim=True)
            self.row_mu.copy_(mu)
            self.row_sd.copy_(torch.sqrt(var + 1e-2))

        def forward(self, x):
            if p["rownorm"] == "image":
                mu = x.mean(dim=-1, keepdim=True)
                x = (x - mu) / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + 1e-2)
            elif p["rownorm"] == "train":
                x = (x - self.row_mu) / self.row_sd
            if p["coord"]:
                x = torch.cat([x, self.coord_ch.expand(x.shape[0], 1, -1, x.shape[-1])], dim=1)
            h = self.features(x)
            h = self.pool(h).flatten(1) if p["head"] == "gap" else h.mean(dim=-1).flatten(1)
            return self.classifier(self.dropout(h))

    return Net2d()


# --------------------------------------------------------- augmentations
# Random numbers come from the CPU generator in the order ser/models/augment.py and
# ser/models/cnn1d.py draw them; the arithmetic runs on the batch's device.

def _beta(n, alpha, gen):
    """Beta(alpha, alpha) draws [n] (Johnk's method, as ser.models.augment._beta)."""
    torch = _torch()[0]
    out = torch.empty(n)
    filled = 0
    while filled < n:
        u = torch.rand(2 * n, generator=gen) ** (1 / alpha)
        v = torch.rand(2 * n, generator=gen) ** (1 / alpha)
        ok = (u + v) <= 1
        vals = (u / (u + v))[ok & (u + v > 0)]
        take = min(len(vals), n - filled)
        out[filled: filled + take] = vals[:take]
        filled += take
    return out


def shift_zero(x, shifts):
    """Shift each clip [b, 1, n] by ``shifts[i]`` samples, zeros fill the gap
    (ser.models.cnn1d.make_augment's shift, vectorised). ``shifts``: CPU long [b]."""
    torch = _torch()[0]
    n = x.shape[-1]
    src = torch.arange(n, device=x.device).view(1, -1) - shifts.to(x.device).view(-1, 1)
    ok = (src >= 0) & (src < n)
    out = torch.gather(x[:, 0], 1, src.clamp(0, n - 1)) * ok
    return out.unsqueeze(1)


def speed_perturb(x, factors):
    """Play each clip [b, 1, n] ``factors[i]`` times faster (tempo and pitch),
    by linear interpolation; past the end is zero; length kept."""
    torch = _torch()[0]
    n = x.shape[-1]
    pos = torch.arange(n, device=x.device, dtype=torch.float32).view(1, -1) * factors.to(x.device).view(-1, 1)
    i0 = pos.floor().long()
    w = pos - i0
    ok0, ok1 = i0 < n, (i0 + 1) < n
    a = torch.gather(x[:, 0], 1, i0.clamp(max=n - 1)) * ok0
    b = torch.gather(x[:, 0], 1, (i0 + 1).clamp(max=n - 1)) * ok1
    return (a * (1 - w) + b * w).unsqueeze(1)


def make_augment_1d(p: dict):
    max_shift = int(round(p["shift_s"] * p["sr"]))
    speed, gain_db = float(p["speed"]), float(p["gain_db"])
    if max_shift <= 0 and speed <= 0 and gain_db <= 0:
        return None
    torch = _torch()[0]

    def augment(xb, gen):
        n = len(xb)
        if speed > 0:
            xb = speed_perturb(xb, 1 + (torch.rand(n, generator=gen) * 2 - 1) * speed)
        if max_shift > 0:
            xb = shift_zero(xb, torch.randint(-max_shift, max_shift + 1, (n,), generator=gen))
        if gain_db > 0:
            g = (torch.rand(n, generator=gen) * 2 - 1) * gain_db
            xb = xb * (10.0 ** (g / 20.0)).to(xb.device).view(n, 1, 1)
        return xb

    return augment


def make_mix(alpha: float, actors=None):
    """Mixup as ser.models.augment.mixup (lam ~ Beta, kept >= 0.5, partner from a
    permutation of the batch); with ``actors`` (a tensor over the training
    set) the partner is drawn among the batch's clips of another actor."""
    if alpha <= 0:
        return None
    torch = _torch()[0]

    def mix(x, y1h, gen, idx):
        n = len(x)
        lam = _beta(n, alpha, gen)
        lam = torch.maximum(lam, 1 - lam)
        if actors is None:
            partner = torch.randperm(n, generator=gen)
        else:
            a = actors[idx]
            other = a.view(-1, 1) != a.view(1, -1)  # [n, n]
            count = other.sum(1)
            u = torch.rand(n, generator=gen)
            k = (u * count).floor().long().clamp(max=(count - 1).clamp(min=0))
            order = torch.argsort((~other).int(), dim=1, stable=True)  # others first
            partner = torch.where(count > 0, order[torch.arange(n), k], torch.arange(n))
        lam = lam.to(x.device)
        partner = partner.to(x.device)
        lx = lam.view(-1, *([1] * (x.dim() - 1)))
        ly = lam.view(-1, 1)
        return lx * x + (1 - lx) * x[partner], ly * y1h + (1 - ly) * y1h[partner]

    return mix


def make_augment_2d(kind: str):
    """The build's "spectrogram" setting: time shift 5 columns (circular),
    time mask 0-6 columns, frequency mask 0-15 rows (masks take the image's
    mean), as ser.models.augment.make_augment with its draws; None for "none"."""
    if kind == "none":
        return None
    torch = _torch()[0]

    def randint(n, gen, lo, hi):
        return torch.randint(lo, hi + 1, (n,), generator=gen)

    def mask(x, gen, max_width, dim):
        size = x.shape[dim]
        mean = x.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)
        widths = randint(len(x), gen, 0, max_width)
        starts = (torch.rand(len(x), generator=gen) * (size - widths + 1)).floor().long()
        pos = torch.arange(size, device=x.device)
        m = (pos.view(1, -1) >= starts.to(x.device).view(-1, 1)) & \
            (pos.view(1, -1) < (starts + widths).to(x.device).view(-1, 1))
        m = m.view(len(x), 1, 1, size) if dim == -1 else m.view(len(x), 1, size, 1)
        return torch.where(m, mean, x)

    def augment(x, gen):
        n, w = len(x), x.shape[-1]
        s = randint(n, gen, -5, 5).to(x.device)
        src = (torch.arange(w, device=x.device).view(1, -1) - s.view(-1, 1)) % w
        x = torch.gather(x, 3, src.view(n, 1, 1, w).expand_as(x))
        x = mask(x, gen, 6, -1)
        x = mask(x, gen, 15, -2)
        return x

    return augment


# ------------------------------------------------------------- training
def train_curves(model, x_tr, y_tr, views: dict, y_val, *, cfg: dict, seed: int, augment=None,
                 mix=None, deadline: float | None = None) -> dict:
    """ser.models.training.fit's loop, evaluating every view after each epoch.

    ``views``: name -> list of input tensors for the validation clips; a
    view's probabilities are the mean softmax over its tensors.
    Returns per-epoch ``train_loss``, ``train_acc`` and ``val[view]['loss'|'acc']``.
    """
    torch, nn, F = _torch()
    dev = x_tr.device
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    n_classes = int(y_tr.max()) + 1
    hist = {"train_loss": [], "train_acc": [], "val": {v: {"loss": [], "acc": []} for v in views}}
    yv = y_val.to(dev)
    t0 = time.perf_counter()
    for epoch in range(cfg["epochs"]):
        model.train()
        loss_sum = torch.zeros((), device=dev)  # summed on the device: one sync per epoch
        correct = torch.zeros((), device=dev, dtype=torch.long)
        order = rng.permutation(len(x_tr))
        for i in range(0, len(x_tr), cfg["batch_size"]):
            idx = torch.from_numpy(order[i: i + cfg["batch_size"]])
            xb, yb = x_tr[idx.to(dev)], y_tr[idx.to(dev)]
            if augment is not None:
                xb = augment(xb, gen)
            target = yb
            if mix is not None:
                xb, target = mix(xb, F.one_hot(yb, n_classes).float(), gen, idx)
            opt.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, target, label_smoothing=cfg["label_smoothing"])
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
        hist["train_loss"].append(float(loss_sum) / len(x_tr))
        hist["train_acc"].append(int(correct) / len(x_tr))
        model.eval()
        with torch.no_grad():
            for name, xs in views.items():
                prob = torch.stack([torch.softmax(model(x), dim=1) for x in xs]).mean(0)
                hist["val"][name]["loss"].append(float(F.nll_loss(torch.log(prob.clamp_min(1e-12)), yv)))
                hist["val"][name]["acc"].append(float((prob.argmax(1) == yv).float().mean()))
        if deadline is not None and time.time() > deadline:
            hist["aborted_at_epoch"] = epoch + 1
            break
    hist["seconds"] = time.perf_counter() - t0
    return hist


# ---------------------------------------------------------------- workers
_W: dict = {}


def worker_init(cache: str, device: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _W["device"] = device
    _W["cache"] = cache
    _W["d"] = dict(np.load(cache, allow_pickle=False))
    _W["name"] = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"


def _windows_1d(p: dict) -> np.ndarray:
    """The network input of every clip for the 1D settings ``p`` (float32 [n, L])."""
    d, sr = _W["d"], int(p["sr"])
    key = ("win", sr, p["window"], p["noise"], p["norm"])
    if key in _W:
        return _W[key]
    waves, lengths = d[f"wave{sr // 1000}k"], d[f"length{sr // 1000}k"]
    L = (N_FRAMES + 1) * int(sr * HOP_S)
    X = np.zeros((len(waves), L), np.float32)
    vrms = np.zeros(len(waves))
    for i in range(len(waves)):
        y = waves[i, : lengths[i]].astype(np.float32) / 32768.0
        _, vrms[i] = speech_stats(y, sr)
        a = int(round(d["onset_s"][i] * sr)) if p["window"] == "onset" else 0
        seg = y[a: a + L]
        X[i, : len(seg)] = seg
    rng = np.random.default_rng(12345)  # the same noise in every run
    if p["noise"] == "dither":
        X += rng.uniform(-DITHER, DITHER, X.shape).astype(np.float32)
    elif p["noise"] == "floor":
        X += (rng.standard_normal(X.shape) * (vrms * 10 ** (FLOOR_DB / 20))[:, None]).astype(np.float32)
    elif p["noise"] != "none":
        raise ValueError(p["noise"])
    if p["norm"] == "clip_std":
        X = (X - X.mean(1, keepdims=True)) / np.maximum(X.std(1, keepdims=True), 1e-8)
    elif p["norm"] == "voiced_rms":
        X = (X - X.mean(1, keepdims=True)) / np.maximum(vrms, 1e-8)[:, None].astype(np.float32)
    else:
        raise ValueError(p["norm"])
    _W[key] = X.astype(np.float32)
    return _W[key]


def run_job(job: dict) -> dict:
    """One training run: candidate ``job['params']`` on fold ``job['fold']``, seed ``job['seed']``."""
    import torch

    from ser.models.training import seed_everything

    dev = torch.device(_W["device"])
    d = _W["d"]
    p = job["params"]
    sel = d["sel"]
    y_all = torch.as_tensor(d["label"][sel], dtype=torch.long)
    actors = d["actor"][sel]
    va = actors == job["fold"]
    n_classes = int(d["label"].max()) + 1
    if job["net"] == "1d":
        X = torch.from_numpy(_windows_1d(p)[sel]).unsqueeze(1)
        xt, xv = X[~va].to(dev), X[va].to(dev)
        T = int(round(TTA_SHIFT_S * p["sr"]))
        views = {"single": [xv],
                 "tta3": [shift_zero(xv, torch.full((len(xv),), s, dtype=torch.long)) for s in (-T, 0, T)]}
        seed_everything(job["seed"])
        model = build_model_1d(p, n_classes)
        augment, mix = make_augment_1d(p), make_mix(p["mixup"])
        cfg = dict(TRAIN1D, epochs=job["epochs"])
    else:
        X = torch.from_numpy(d["img_" + p["window"]][sel])
        xt, xv = X[~va].to(dev), X[va].to(dev)
        views = {"single": [xv]}
        seed_everything(job["seed"])
        model = build_model_2d(p, n_classes)
        if p["rownorm"] == "train":
            model.set_row_stats(xt.cpu())
        augment = make_augment_2d("none" if p["aug"] == "none" else "spectrogram")
        act_t = torch.as_tensor(actors[~va])
        mix = {"none": None, "spectrogram": make_mix(0.4),
               "spec_mix_actors": make_mix(0.4, actors=act_t)}[p["aug"]]
        cfg = dict(TRAIN2D, epochs=job["epochs"])
    hist = train_curves(model, xt, y_all[~va].to(dev), views, y_all[va], cfg=cfg, seed=job["seed"],
                        augment=augment, mix=mix, deadline=job.get("deadline"))
    return {k: job[k] for k in ("net", "cand", "fold", "seed")} | {"hist": hist, "device": _W["name"]}


# ---------------------------------------------------------------- scoring
def _rule_epochs(mean_acc, mean_loss):
    sa, sl = moving_average(mean_acc, 5), moving_average(mean_loss, 5)
    return int(np.argmax(sa)), int(np.argmin(sl)), sa, sl


def summarise(runs: list[dict], view: str, base_runs: list[dict] | None) -> dict | None:
    """Scores of one candidate (see the module text); None without complete runs."""
    runs = [r for r in runs if "aborted_at_epoch" not in r["hist"]]
    if not runs:
        return None
    A = np.array([r["hist"]["val"][view]["acc"] for r in runs])
    Lo = np.array([r["hist"]["val"][view]["loss"] for r in runs])
    ea, el, sa, sl = _rule_epochs(A.mean(0), Lo.mean(0))
    folds = sorted({r["fold"] for r in runs})
    out = {"n_runs": len(runs), "folds": folds, "seeds": sorted({r["seed"] for r in runs}),
           "mean_val_acc": A.mean(0).round(4).tolist(), "mean_val_loss": Lo.mean(0).round(4).tolist(),
           "seconds_per_run": float(np.mean([r["hist"]["seconds"] for r in runs]))}
    base = None
    if base_runs:
        base_ok = [r for r in base_runs if "aborted_at_epoch" not in r["hist"]]
        if base_ok:
            BA = np.array([r["hist"]["val"]["single"]["acc"] for r in base_ok])
            BL = np.array([r["hist"]["val"]["single"]["loss"] for r in base_ok])
            bea, bel, _, _ = _rule_epochs(BA.mean(0), BL.mean(0))
            base = {"acc": {(r["fold"], r["seed"]): BA[i, bea] for i, r in enumerate(base_ok)},
                    "loss": {(r["fold"], r["seed"]): BA[i, bel] for i, r in enumerate(base_ok)}}
    for rule, e, smooth in (("acc", ea, sa[ea]), ("loss", el, sl[el])):
        per_run = A[:, e]
        sd = float(per_run.std(ddof=1)) if len(per_run) > 1 else float("nan")
        row = {"epoch": e + 1, "acc": float(per_run.mean()), "smoothed": float(smooth),
               "std": sd, "se": sd / math.sqrt(len(per_run)),
               "per_fold": {int(f): float(np.mean([a for a, r in zip(per_run, runs) if r["fold"] == f]))
                            for f in folds}}
        if base is not None:
            pairs = [(a, base[rule][(r["fold"], r["seed"])]) for a, r in zip(per_run, runs)
                     if (r["fold"], r["seed"]) in base[rule]]
            if pairs:
                diff = np.array([a - b for a, b in pairs])
                row["margin"] = float(per_run.mean() - np.mean(list(base[rule].values())))
                row["paired_margin"] = float(diff.mean())
                row["paired_se"] = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        out[rule] = row
    return out


def table_md(net: str, results: dict, cands: list, descr: dict) -> str:
    lines = [f"### {net.upper()} CNN: leave-one-actor-out on training actors 1-4",
             "",
             "| candidate | view | runs | acc-rule: epoch | acc (smoothed) | std | SE | margin (paired SE) "
             "| per-fold A1/A2/A3/A4 | loss-rule: epoch | acc | std | margin (paired SE) | s/run | what |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, d=3):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"

    for name in cands:
        for view, s in results.get(name, {}).items():
            if s is None:
                continue
            a, lo = s["acc"], s["loss"]
            pf = "/".join(f(a["per_fold"].get(k), 2) for k in (1, 2, 3, 4))
            m_a = f"{f(a.get('margin'), 3)} ({f(a.get('paired_se'), 3)})" if "margin" in a else "-"
            m_l = f"{f(lo.get('margin'), 3)} ({f(lo.get('paired_se'), 3)})" if "margin" in lo else "-"
            lines.append(f"| {name} | {view} | {s['n_runs']} | {a['epoch']} | {f(a['acc'])} ({f(a['smoothed'])}) "
                         f"| {f(a['std'])} | {f(a['se'])} | {m_a} | {pf} | {lo['epoch']} | {f(lo['acc'])} "
                         f"| {f(lo['std'])} | {m_l} | {s['seconds_per_run']:.1f} | {descr.get(name, '')} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ run
def load_cache(data_dir: Path, cache: Path, clips_per_actor: int, need48: bool) -> dict:
    """Read the prepared arrays, resample to 16 kHz once, write one npz the workers load."""
    from math import gcd

    from scipy.signal import resample_poly

    w = np.load(data_dir / "waves.npz")
    im = np.load(data_dir / "images.npz")
    assert (w["name"] == im["name"]).all()
    n = len(w["label"])
    sel = np.arange(n)
    if clips_per_actor:
        sel = np.concatenate([np.flatnonzero(w["actor"] == a)[:: max(1, (w["actor"] == a).sum() // clips_per_actor)]
                              [:clips_per_actor] for a in sorted(set(w["actor"].tolist()))])
    W, L = w["wave48"], w["length"]
    g = gcd(48000, 16000)
    w16 = [resample_poly(W[i, : L[i]].astype(np.float64), 16000 // g, 48000 // g) for i in range(n)]
    len16 = np.array([len(x) for x in w16])
    W16 = np.zeros((n, len16.max()), np.int16)
    for i, x in enumerate(w16):
        W16[i, : len(x)] = np.clip(np.round(x), -32768, 32767)
    d = dict(wave16k=W16, length16k=len16, onset_s=w["onset_s"], label=w["label"], actor=w["actor"],
             sel=sel, img_start=im["start"], img_onset=im["onset"])
    if need48:
        d.update(wave48k=W, length48k=L)
    np.savez(cache, **d)
    return d


def run(args) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    t_start = time.time()
    deadline = t_start + args.budget_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_lines = []

    def log(s):
        s = f"[{time.time() - t_start:6.1f}s] {s}"
        print(s, flush=True)
        log_lines.append(s)

    c1 = [c for c in CANDS1D if args.cands1d in ("all",) or c[0] in args.cands1d.split(",")]
    c2 = [c for c in CANDS2D if args.cands2d in ("all",) or c[0] in args.cands2d.split(",")]
    cache = Path(args.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    d = load_cache(Path(args.data), cache, args.clips_per_actor, any(c[1].get("sr") == 48000 for c in c1))
    actors_present = sorted(set(d["actor"][d["sel"]].tolist()))
    folds = [f for f in (args.folds or actors_present) if f in actors_present]
    log(f"data: {len(d['sel'])} Train clips (actors {actors_present}), folds {folds}, seeds {args.seeds}; "
        f"1D {[c[0] for c in c1]}; 2D {[c[0] for c in c2]}")
    import torch

    info = {"torch": torch.__version__, "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "device": args.device}
    if args.device == "cuda":
        info["gpu"] = "(not queried in the parent: CUDA is initialised in the workers only)"

    descr = {"1d": {c[0]: c[2] for c in c1}, "2d": {c[0]: c[2] for c in c2}}
    params = {"1d": {c[0]: BASE1D | c[1] for c in c1}, "2d": {c[0]: BASE2D | c[1] for c in c2}}
    epochs = {"1d": args.epochs1d, "2d": args.epochs2d}
    first_seeds, later_seeds = args.seeds[:2], args.seeds[2:]

    def jobs_for(net, name, seeds, tier, order):
        return [(tier, order, net, name, f, s) for s in seeds for f in folds]

    queue = []
    plan = json.loads(Path(args.plan).read_text()) if args.plan else None
    for k, (net, name, seeds) in enumerate(plan or []):  # [[net, candidate, [seeds]], ...] in priority order
        queue += [(0, k, net, name, f, s) for s in seeds for f in folds]
    for net, cands in (() if plan else (("1d", c1), ("2d", c2))):
        for k, c in enumerate(cands):
            queue += jobs_for(net, c[0], first_seeds, 0, k)
            queue += jobs_for(net, c[0], later_seeds, 2, k)
    runs: dict = {"1d": {}, "2d": {}}
    expected = {(net, name): len(folds) * len(args.seeds) for net in params for name in params[net]}
    if plan:
        params = {net: {n: p for n, p in params[net].items() if any(q[:2] == [net, n] for q in plan)}
                  for net in params}
        expected = {(net, name): len(folds) * sum(len(q[2]) for q in plan if q[:2] == [net, name])
                    for net in params for name in params[net]}
        args.skip += ",combo"
    combo_done = {"1d": "combo" in args.skip, "2d": "combo" in args.skip}

    route = {"1d": "gpu" if args.device == "cuda" and args.gpu_workers > 0 else "cpu",
             "2d": "gpu" if args.device == "cuda" and args.gpu_workers > 0 and args.route2d == "gpu" else "cpu"}
    ctx = mp.get_context("spawn")
    slots = {"gpu": args.gpu_workers, "cpu": args.cpu_workers}

    def new_pool(kind):
        init = (str(cache), "cuda", 1) if kind == "gpu" else (str(cache), "cpu", args.cpu_threads)
        return ProcessPoolExecutor(slots[kind], mp_context=ctx, initializer=worker_init, initargs=init)

    pools = {kind: new_pool(kind) for kind in sorted(set(route.values()))}
    inflight = {}

    def results_now():
        res = {}
        for net in ("1d", "2d"):
            base = runs[net].get("base", [])
            res[net] = {}
            for name in params[net]:
                rs = runs[net].get(name, [])
                views = ["single", "tta3"] if net == "1d" else ["single"]
                res[net][name] = {v: summarise(rs, v, base) for v in views}
        return res

    def write_outputs(final=False):
        res = results_now()
        md = [f"# Design study, issue 9 ({'final' if final else 'partial'}; {time.time() - t_start:.0f} s)", "",
              "LOAO validation on training actors 1-4 only. acc-rule: epoch of the peak of the 5-epoch "
              "moving average of the mean val accuracy; loss-rule: epoch of min smoothed mean val loss. "
              "acc = mean over fold x seed runs at that epoch (smoothed value in brackets); std and "
              "SE = std/sqrt(runs) over the runs; margin = acc - baseline's acc under the same rule "
              "(paired SE over same fold+seed); per-fold = mean over seeds per held-out actor. "
              "View tta3 = softmax averaged over windows shifted by -0.125/0/+0.125 s.", ""]
        for net in ("1d", "2d"):
            md.append(table_md(net, res[net], list(params[net]), descr[net]))
        md.append(f"params: {json.dumps(params)}\n")
        (out / "tables.md").write_text("\n".join(md))
        blob = {"info": info, "args": vars(args), "folds": folds, "params": params, "descr": descr,
                "summary": res, "elapsed_s": time.time() - t_start,
                "runs": {net: {name: [{k: r[k] for k in ("fold", "seed", "device")} |
                                      {"val": r["hist"]["val"], "train_acc": r["hist"]["train_acc"],
                                       "train_loss": r["hist"]["train_loss"], "seconds": r["hist"]["seconds"],
                                       "aborted_at_epoch": r["hist"].get("aborted_at_epoch")}
                                      for r in rs] for name, rs in runs[net].items()} for net in runs}}
        tmp = out / ".results.json.tmp"
        tmp.write_text(json.dumps(blob))
        os.replace(tmp, out / "results.json")

    def maybe_combo(net):
        """Once seeds 0-1 of every single-change candidate are in: merge the winners."""
        if combo_done[net]:
            return
        singles = [n for n in params[net] if n not in ("base", "combo_pre")]
        if any(len(runs[net].get(n, [])) < len(folds) * len(first_seeds) for n in singles + ["base"]):
            return
        combo_done[net] = True
        base = runs[net]["base"]
        scored = {}
        for n in singles:
            s = summarise(runs[net][n], "single", base)
            if s and "margin" in s["acc"] and s["acc"]["margin"] > (0 if args.combo_rule == "any" else s["acc"]["se"]):
                scored[n] = s["acc"]["margin"]
        merged, used = {}, []
        for n in sorted(scored, key=scored.get, reverse=True):  # best first; a later winner may not override
            over = {k: v for k, v in params[net][n].items() if v != (BASE1D if net == "1d" else BASE2D)[k]}
            if all(k not in merged for k in over):
                merged.update(over)
                used.append(n)
            else:  # augmentation settings can add up (speed, gain, mixup)
                new = {k: v for k, v in over.items() if k not in merged}
                if net == "1d" and new and all(k in ("speed", "gain_db", "mixup") for k in over):
                    merged.update(new)
                    used.append(n)
        if len(used) < 2:
            log(f"{net} combo: winners {used or 'none'}: nothing to combine")
            return
        name = "combo_win"
        params[net][name] = (BASE1D if net == "1d" else BASE2D) | merged
        descr[net][name] = "winners " + ", ".join(used) + " (chosen during the run)"
        expected[(net, name)] = len(folds) * len(args.seeds)
        k = len(params[net])
        queue.extend(jobs_for(net, name, first_seeds, 1, k))
        queue.extend(jobs_for(net, name, later_seeds, 2, k))
        log(f"{net} combo {name}: {merged}")

    def submit_more():
        for pool_name in pools:
            while sum(1 for v in inflight.values() if v[1] == pool_name) < slots[pool_name]:
                cands = sorted(j for j in queue if route[j[2]] == pool_name)
                if not cands or time.time() > deadline:
                    return
                j = cands[0]
                queue.remove(j)
                _, _, net, name, fold, seed = j
                job = {"net": net, "cand": name, "fold": fold, "seed": seed, "params": params[net][name],
                       "epochs": epochs[net], "deadline": deadline + args.grace_s}
                try:
                    fut = pools[pool_name].submit(run_job, job)
                except BrokenProcessPool:  # a worker died (e.g. killed): a fresh pool, once per failure
                    log(f"pool {pool_name} broken: starting a new one")
                    pools[pool_name] = new_pool(pool_name)
                    fut = pools[pool_name].submit(run_job, job)
                inflight[fut] = (j, pool_name)

    submit_more()
    last_write = 0.0
    while inflight:
        done, _ = wait(list(inflight), timeout=30, return_when=FIRST_COMPLETED)
        for fut in done:
            j, pool_name = inflight.pop(fut)
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001 - report and go on
                log(f"FAILED {j}: {exc.__class__.__name__}: {exc}")
                continue
            runs[r["net"]].setdefault(r["cand"], []).append(r)
            h = r["hist"]
            log(f"{r['net']} {r['cand']:<14} fold {r['fold']} seed {r['seed']}: val acc last "
                f"{h['val']['single']['acc'][-1]:.3f}, max {max(h['val']['single']['acc']):.3f} "
                f"({h['seconds']:.1f} s, {r['device']}){' ABORTED' if 'aborted_at_epoch' in h else ''}")
            if len(runs[r["net"]][r["cand"]]) == expected.get((r["net"], r["cand"])):
                s = summarise(runs[r["net"]][r["cand"]], "single", runs[r["net"]].get("base"))
                if s:
                    log(f"== {r['net']} {r['cand']}: acc-rule {s['acc']['acc']:.3f} @ {s['acc']['epoch']} "
                        f"(margin {s['acc'].get('margin', float('nan')):+.3f}), loss-rule "
                        f"{s['loss']['acc']:.3f} @ {s['loss']['epoch']}")
            maybe_combo(r["net"])
        submit_more()
        if time.time() - last_write > 10 or not inflight:
            write_outputs()
            last_write = time.time()
    for p in pools.values():
        p.shutdown(cancel_futures=True)
    left = len(queue)
    if left:
        log(f"budget reached: {left} jobs not started: {sorted({(j[2], j[3]) for j in queue})}")
    write_outputs(final=True)
    (out / "log_main.txt").write_text("\n".join(log_lines) + "\n")
    log(f"done in {time.time() - t_start:.0f} s")


def report(args) -> None:
    """Merge the runs of several ``results.json`` files (first copy of a fold x
    seed wins), cut every curve to ``--epochs1d`` / ``--epochs2d`` epochs
    (runs with fewer are left out) and write the tables again."""
    eps = {"1d": args.epochs1d, "2d": args.epochs2d}
    runs: dict = {"1d": {}, "2d": {}}
    descr: dict = {"1d": {c[0]: c[2] for c in CANDS1D}, "2d": {c[0]: c[2] for c in CANDS2D}}
    for path in args.results:
        raw = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            import gzip

            raw = gzip.decompress(raw)
        blob = json.loads(raw)
        for net in ("1d", "2d"):
            for k, v in blob.get("descr", {}).get(net, {}).items():  # the script's own words win
                descr[net].setdefault(k, v)
            for name, rs in blob["runs"].get(net, {}).items():
                have = {(r["fold"], r["seed"]) for r in runs[net].get(name, [])}
                for r in rs:
                    n = len(r["val"]["single"]["acc"])
                    if r.get("aborted_at_epoch") or n < eps[net] or (r["fold"], r["seed"]) in have:
                        continue
                    val = {v: {k: c[: eps[net]] for k, c in vv.items()} for v, vv in r["val"].items()}
                    runs[net].setdefault(name, []).append(
                        {"net": net, "cand": name, "fold": r["fold"], "seed": r["seed"],
                         "hist": {"val": val, "seconds": r["seconds"] * eps[net] / n}})
    order = {"1d": [c[0] for c in CANDS1D], "2d": [c[0] for c in CANDS2D]}
    md = [f"# Design study, issue 9: merged {', '.join(str(p) for p in args.results)}", "",
          f"Curves cut to {eps['1d']} (1D) / {eps['2d']} (2D) epochs. Columns as in the run's tables; "
          "margins against the baseline runs of the same merge. s/run: mean seconds of one run on the "
          "machine that ran it (scaled to the cut), with many runs sharing it.", ""]
    summary = {}
    for net in ("1d", "2d"):
        names = [n for n in order[net] if n in runs[net]] + sorted(set(runs[net]) - set(order[net]))
        views = ["single", "tta3"] if net == "1d" else ["single"]
        summary[net] = {n: {v: summarise(runs[net][n], v, runs[net].get("base")) for v in views} for n in names}
        md.append(table_md(net, summary[net], names, descr[net]))
        wins = [f"{n}/{v} ({rule} rule {s[rule]['margin']:+.3f} > SE {s[rule]['se']:.3f})"
                for n in names for v, s in summary[net][n].items() if s and n != "base"
                for rule in ("acc", "loss") if s[rule].get("margin", 0) > s[rule]["se"]]
        md.append(f"Beat the baseline by more than their own SE: {'; '.join(wins) or 'none'}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text("\n".join(md))
    summary["descriptions"] = {net: {n: descr[net].get(n, n) for n in summary[net]} for net in ("1d", "2d")}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="Train clips -> compact arrays (CPU)")
    pp.add_argument("--data", required=True, help="EmotionSpeech root (only <data>/Train is read)")
    pp.add_argument("--out", required=True)
    pr = sub.add_parser("run", help="train and score every candidate")
    pr.add_argument("--data", required=True, help="the folder prepare wrote")
    pr.add_argument("--out", required=True)
    pr.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    pr.add_argument("--cache", default="/tmp/design_study_cache.npz")
    pr.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    pr.add_argument("--folds", type=int, nargs="*", default=None)
    pr.add_argument("--epochs1d", type=int, default=TRAIN1D["epochs"])
    pr.add_argument("--epochs2d", type=int, default=TRAIN2D["epochs"])
    pr.add_argument("--cands1d", default="all")
    pr.add_argument("--cands2d", default="all")
    pr.add_argument("--skip", default="", help="'combo' to skip the adaptive combination")
    pr.add_argument("--combo-rule", default="se", choices=("se", "any"),
                    help="a winner beats the baseline by more than its SE ('any': by more than 0; checks only)")
    pr.add_argument("--plan", default=None,
                    help="JSON file [[net, candidate, [seeds]], ...]: run exactly these, in this order")
    pr.add_argument("--clips-per-actor", type=int, default=0, help="0: all (tiny checks only)")
    pr.add_argument("--gpu-workers", type=int, default=6)
    pr.add_argument("--cpu-workers", type=int, default=2)
    pr.add_argument("--cpu-threads", type=int, default=1)
    pr.add_argument("--route2d", default="gpu", choices=("cpu", "gpu"),
                    help="with --device cuda: 2D runs on the GPU workers (default) or CPU workers")
    pr.add_argument("--budget-s", type=float, default=1e9, help="start no run after this many seconds")
    pr.add_argument("--grace-s", type=float, default=60.0, help="runs still going this long after the budget stop")
    rp = sub.add_parser("report", help="merge results.json files and write the tables again")
    rp.add_argument("results", nargs="+")
    rp.add_argument("--out", required=True)
    rp.add_argument("--epochs1d", type=int, default=TRAIN1D["epochs"])
    rp.add_argument("--epochs2d", type=int, default=TRAIN2D["epochs"])
    args = ap.parse_args()
    if args.cmd == "report":
        report(args)
    elif args.cmd == "prepare":
        prepare(Path(args.data), Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
