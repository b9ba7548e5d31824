"""Section 3.1: a 1D CNN on the raw waveform.

The pieces, from data to results:

* :func:`load_waveforms` decodes clips once into a fixed-length array
  (``(n_frames + 1) * hop`` samples, the spec's length), optionally resampled;
* :func:`normalise` scales them (the spec's fixed ``(x*32768 - 1000) / 100``,
  per-clip standardisation, one scale fitted on the training clips, or each
  speaker's own level, :func:`speaker_levels`, carried with the waveforms by
  :class:`SpeakerWaves`);
* :class:`EmotionSpeechDataset` wraps both as a ``torch`` data set;
* :class:`WaveCNN` is an M5-like network (Dai et al. 2017, "Very deep
  convolutional neural networks for raw waveforms");
* :func:`learner` is how this network trains and predicts, and
  :func:`run_cnn1d` hands it to the shared protocol (:mod:`ser.models.protocol`) with
  the candidate settings of :func:`candidates`.

The evaluation splits are read only by :func:`run_cnn1d`, after every choice
is made.
"""
from __future__ import annotations

import os
import time
from math import gcd
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ser.data.audio import fix_length, hop_samples, read_mono
from ser.data.dataset import folder_clips
from ser.errors import ConfigError, DataError

NORMALISATIONS = ("spec", "clip_std", "train_rms", "speaker_rms")
NORM_TEXT = {  # what each normalisation means, in one line (written to the results by describe)
    "spec": "the spec's (s - 1000) / 100 on int16 sample values s",
    "clip_std": "each clip to zero mean and unit standard deviation (its level removed)",
    "train_rms": "divided by one RMS fitted on the training clips of each fit (relative loudness kept)",
    "speaker_rms": "each clip divided by its speaker's RMS level, from that speaker's own clips in the same "
                   "split, no labels (loudness differences within a speaker kept)",
    "none": "samples as read, in [-1, 1]",
}


# --------------------------------------------------------------------- data

def resample(y: np.ndarray, *, sr_hz: int, target_sr_hz: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``), float32 out."""
    if sr_hz == target_sr_hz:
        return y.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(sr_hz), int(target_sr_hz))
    return resample_poly(y, target_sr_hz // g, sr_hz // g).astype(np.float32)


def clip_samples(*, sr_hz: int, n_frames: int, hop_s: float) -> int:
    """Samples kept per clip: ``(n_frames + 1) * int(sr * hop_s)`` as in the spec."""
    return (n_frames + 1) * hop_samples(sr_hz, hop_s)


def load_waveform(path, *, n_frames: int = 200, hop_s: float = 0.015,
                  sr_hz: int | None = None, window: str = "start", onset=None) -> np.ndarray:
    """One clip as mono float32 in [-1, 1], resampled, then cut or zero-padded.

    Parameters
    ----------
    path : str or Path
        A WAV file; several channels are averaged (:func:`ser.data.audio.read_mono`).
    n_frames, hop_s
        Keep ``(n_frames + 1) * int(sr * hop_s)`` samples, as the spec's data set.
    sr_hz : int, optional
        Resample to this rate first; None keeps the file's rate.
    window : {"start", "onset"} or tuple of them
        Where the kept samples begin: the file's start (the spec's data set),
        or the speech onset (:func:`ser.data.audio.window_start`, with ``onset``, a
        :class:`ser.config.OnsetConfig`, found at the file's own rate). A tuple
        gives one row per window, from one decoding.

    Returns
    -------
    y : np.ndarray [shape=(n_samples,) or (len(window), n_samples), dtype=float32]
    """
    from ser.data.audio import window_start

    y, sr = read_mono(path)
    target = sr if sr_hz is None else int(sr_hz)
    starts = [window_start(y, sr, w, onset) for w in ((window,) if isinstance(window, str) else window)]
    y = resample(y, sr_hz=sr, target_sr_hz=target)
    n = clip_samples(sr_hz=target, n_frames=n_frames, hop_s=hop_s)
    rows = [fix_length(y[int(round(s * target / sr)):], n) for s in starts]
    return rows[0] if isinstance(window, str) else np.stack(rows)


def load_waveforms(paths: Sequence, *, n_frames: int = 200, hop_s: float = 0.015,
                   sr_hz: int | None = None, window: str | tuple = "start", onset=None) -> np.ndarray:
    """Several clips stacked: np.ndarray [shape=(n_clips, n_samples)] (or
    [shape=(n_clips, len(window), n_samples)] for a tuple of windows), float32.

    All clips must share a sample rate when ``sr_hz`` is None.
    """
    ys = [load_waveform(p, n_frames=n_frames, hop_s=hop_s, sr_hz=sr_hz, window=window, onset=onset)
          for p in paths]
    lengths = {y.shape[-1] for y in ys}
    if len(lengths) > 1:
        raise DataError(f"clips give {sorted(lengths)} samples: mixed sample rates, pass sr_hz")
    return np.stack(ys) if ys else np.zeros((0, 0), np.float32)


def normalise(x: np.ndarray, method: str, *, scale: float | None = None,
              levels: np.ndarray | None = None) -> np.ndarray:
    """Scale waveforms for the network.

    Parameters
    ----------
    x : np.ndarray [shape=(n_clips, n_samples)]
        Samples in [-1, 1].
    method : {"spec", "clip_std", "train_rms", "speaker_rms", "none"}
        ``spec``: the spec's ``(s - 1000) / 100`` on int16 sample values
        ``s = x * 32768``; ``clip_std``: each clip to zero mean, unit standard
        deviation (loudness removed); ``train_rms``: divided by one RMS fitted
        on the training clips (``scale``), keeping relative loudness;
        ``speaker_rms``: each clip divided by its speaker's level (``levels``),
        keeping the loudness differences between one speaker's clips.
    scale : float, optional
        The fitted RMS for ``train_rms`` (see :func:`fit_scale`).
    levels : np.ndarray [shape=(n_clips,)], optional
        Each clip's speaker level for ``speaker_rms`` (see :func:`speaker_levels`);
        every level must be positive (a DataError otherwise).
    """
    x = np.asarray(x, np.float32)
    if method == "spec":
        return (x * 32768.0 - 1000.0) / 100.0
    if method == "clip_std":
        mu = x.mean(axis=-1, keepdims=True)
        sd = x.std(axis=-1, keepdims=True)
        return (x - mu) / np.maximum(sd, 1e-8)
    if method == "train_rms":
        if scale is None:
            raise ConfigError("normalise 'train_rms' needs the scale fitted on the training clips")
        return x / np.float32(scale)
    if method == "speaker_rms":
        if levels is None:
            raise ConfigError("normalise 'speaker_rms' needs each clip's speaker level (see speaker_levels)")
        levels = np.asarray(levels, np.float32)
        if levels.shape != x.shape[:-1]:
            raise ConfigError(f"normalise 'speaker_rms': levels of shape {levels.shape} for clips of {x.shape}")
        if not np.all(levels > 0):
            raise DataError("normalise 'speaker_rms': a speaker level is 0 or not finite "
                            "(speaker_levels names a silent speaker)")
        return x / levels[..., None]
    if method == "none":
        return x
    raise ConfigError(f"unknown normalisation {method!r}; expected one of {NORMALISATIONS + ('none',)}")


def fit_scale(x: np.ndarray) -> float:
    """RMS over all samples of the training clips, for ``normalise(..., 'train_rms')``."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def speaker_levels(x: np.ndarray, speakers: Sequence) -> np.ndarray:
    """Each clip's speaker level, for ``normalise(..., 'speaker_rms')``.

    A speaker's level is the RMS over all the samples of that speaker's clips
    in ``x``, per window type when ``x`` has a window axis. Only the speaker's
    own audio enters (no labels, no other speaker), so the levels can be
    computed once for every clip of a split before any fold is made: a
    held-out speaker is scaled by their own clips, as a test speaker is.

    Parameters
    ----------
    x : np.ndarray [shape=(n_clips, n_samples) or (n_clips, n_windows, n_samples)]
    speakers : sequence of hashable [shape=(n_clips,)]
        Each clip's speaker, e.g. ``(split, speaker)``.

    Returns
    -------
    levels : np.ndarray [shape=(n_clips,) or (n_clips, n_windows), dtype=float64]
        Clips in the order given.

    Raises
    ------
    DataError
        When a speaker's clips are all silent (level 0) in a window, naming the
        speaker: no floor, which would blow silence up to an arbitrary level.
    """
    x = np.asarray(x)
    speakers = list(speakers)
    if len(speakers) != len(x):
        raise DataError(f"speaker_levels: {len(speakers)} speakers for {len(x)} clips")
    power = np.mean(np.square(x, dtype=np.float64), axis=-1)  # per clip (and window); clips have equal lengths
    rows: dict = {}
    for i, s in enumerate(speakers):
        rows.setdefault(s, []).append(i)
    levels = np.empty_like(power)
    for s, idx in rows.items():
        level = np.sqrt(power[idx].mean(axis=0))
        if not np.all(level > 0):
            raise DataError(f"speaker {s!r}: its {len(idx)} clip(s) are silent in the window, "
                            "so they have no level to scale them by (norm 'speaker_rms')")
        levels[idx] = level
    return levels


class SpeakerWaves:
    """Waveforms and their speakers' levels, indexed together on the clip axis,
    so ``x[train_idx]`` (:mod:`ser.models.protocol`) keeps them aligned.

    Parameters
    ----------
    waves : np.ndarray [shape=(n_clips, n_windows, n_samples)]
    levels : np.ndarray [shape=(n_clips, n_windows)]
        Each clip's speaker level per window (:func:`speaker_levels`).
    """

    def __init__(self, waves: np.ndarray, levels: np.ndarray):
        if np.shape(levels) != np.shape(waves)[:-1]:
            raise DataError(f"SpeakerWaves: levels of shape {np.shape(levels)} "
                            f"for waveforms of shape {np.shape(waves)}")
        self.waves, self.levels = waves, levels

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, idx) -> "SpeakerWaves":
        return SpeakerWaves(self.waves[idx], self.levels[idx])


def clip_speakers(clips) -> list[tuple[str, int]]:
    """Each clip's speaker, ``(split, speaker)``, for :func:`speaker_levels`; a
    DataError naming the clips whose record carries no speaker."""
    missing = [str(c.path) for c in clips if c.speaker is None]
    if missing:
        raise DataError(f"norm 'speaker_rms' needs each clip's speaker, and {len(missing)} clip(s) have no speaker: "
                        + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return [(c.split, c.speaker) for c in clips]


# -------------------------------------------------------------------- model

class WaveCNN(nn.Module):
    """M5-like 1D CNN on the waveform.

    A wide strided convolution (a learnt filter bank), ``n_blocks - 1``
    small convolutions, each block Conv1d -> BatchNorm -> ReLU ->
    MaxPool1d(4); global average pooling over time; dropout; two fully
    connected layers with dropout between.

    Input [batch, 1, n_samples]; output logits [batch, n_classes].

    ``first_layer="sinc"`` replaces the first convolution by a
    :class:`SincConv1d` band-pass bank (``sr_hz`` needed) of the same width,
    stride and channels. The convolution it replaces is still created first,
    so that under one seed every later layer starts from the same weights as
    with ``"conv"`` (the bank itself draws no random number).
    """

    def __init__(self, n_classes: int = 4, *, n_channels: int = 32,
                 first_kernel: int = 80, first_stride: int = 16,
                 n_blocks: int = 4, n_hidden: int = 64, dropout: float = 0.5,
                 first_layer: str = "conv", sr_hz: int | None = None):
        super().__init__()
        if first_layer not in ("conv", "sinc"):
            raise ConfigError(f"first_layer must be 'conv' or 'sinc', got {first_layer!r}")
        if first_layer == "sinc" and not sr_hz:
            raise ConfigError("first_layer 'sinc' needs the input's sample rate (sr_hz)")
        blocks = []
        c_in, c = 1, n_channels
        for i in range(n_blocks):
            if i == 0:
                conv = nn.Conv1d(1, c, first_kernel, stride=first_stride, padding=first_kernel // 2)
                if first_layer == "sinc":
                    conv = SincConv1d(c, first_kernel, stride=first_stride, sr_hz=sr_hz)
            else:
                c = n_channels * 2 ** (i // 2)
                conv = nn.Conv1d(c_in, c, 3, padding=1)
            blocks += [conv, nn.BatchNorm1d(c), nn.ReLU(), nn.MaxPool1d(4, ceil_mode=True)]
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c_in, n_hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(n_hidden, n_classes),
        )

    def forward(self, x):
        h = self.features(x)
        return self.classifier(h.mean(dim=-1))


class SincConv1d(nn.Module):
    """A SincNet-style first layer (Ravanelli & Bengio 2018): ``n_filters``
    Hamming-windowed sinc band-pass filters whose low cut-off and band width
    (two numbers each) are learnt, mel-spaced from 30 Hz to ``sr/2 - 100`` Hz
    at start, each filter scaled to a peak of 1. ``kernel`` is made odd
    (``kernel + 1`` taps when even), padding ``kernel // 2``. Input
    [batch, 1, n_samples], output [batch, n_filters, frames]."""

    def __init__(self, n_filters: int, kernel: int, *, stride: int, sr_hz: int):
        super().__init__()
        k = kernel if kernel % 2 else kernel + 1
        self.k, self.stride, self.sr = k, stride, float(sr_hz)
        self.min_low, self.min_band = 50.0, 50.0
        mel = np.linspace(2595 * np.log10(1 + 30 / 700), 2595 * np.log10(1 + (sr_hz / 2 - 100) / 700), n_filters + 1)
        hz = 700 * (10 ** (mel / 2595) - 1)
        self.low_hz = nn.Parameter(torch.tensor(hz[:-1], dtype=torch.float32).view(-1, 1))
        self.band_hz = nn.Parameter(torch.tensor(np.diff(hz), dtype=torch.float32).view(-1, 1))
        n = (k - 1) / 2
        self.register_buffer("t", torch.arange(-n, n + 1, dtype=torch.float32).view(1, -1) / self.sr)
        self.register_buffer("window", torch.hamming_window(k, periodic=False).view(1, -1))

    def forward(self, x):
        low = self.min_low + self.low_hz.abs()
        high = torch.clamp(low + self.min_band + self.band_hz.abs(), self.min_low, self.sr / 2)

        def lowpass(f):  # ideal low-pass impulse response 2 f sinc(2 f t)
            return 2 * f * torch.special.sinc(2 * f * self.t)

        filt = (lowpass(high) - lowpass(low)) * self.window
        filt = filt / filt.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
        return nn.functional.conv1d(x, filt.unsqueeze(1), stride=self.stride, padding=self.k // 2)


def model_kwargs(cfg) -> dict:
    """The :func:`build_model` arguments of a :class:`ser.config.Cnn1dConfig`."""
    return dict(n_channels=cfg.n_channels, first_kernel_ms=cfg.first_kernel_ms,
                first_stride_ms=cfg.first_stride_ms, n_blocks=cfg.n_blocks,
                n_hidden=cfg.n_hidden, dropout=cfg.dropout)


def build_model(n_classes: int, *, sr_hz: int, n_channels: int = 32,
                first_kernel_ms: float = 5.0, first_stride_ms: float = 1.0,
                n_blocks: int = 4, n_hidden: int = 64, dropout: float = 0.5,
                first_layer: str = "conv") -> WaveCNN:
    """A :class:`WaveCNN` whose first layer spans ``first_kernel_ms`` at ``sr_hz``
    (``first_layer``: a learnt convolution, or ``"sinc"``, a band-pass bank)."""
    k = max(1, int(round(sr_hz * first_kernel_ms / 1000)))
    s = max(1, int(round(sr_hz * first_stride_ms / 1000)))
    return WaveCNN(n_classes, n_channels=n_channels, first_kernel=k, first_stride=s,
                   n_blocks=n_blocks, n_hidden=n_hidden, dropout=dropout, first_layer=first_layer, sr_hz=sr_hz)


def load_model(path, cfg, *, n_classes: int = 4) -> WaveCNN:
    """A final model back from its state-dict checkpoint (``weights_only=True``)."""
    model = build_model(n_classes, sr_hz=cfg.sr_hz, **model_kwargs(cfg))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


# ------------------------------------------------------------------ data set


class EmotionSpeechDataset(torch.utils.data.Dataset):
    """Clips as fixed-length normalised waveforms, decoded once.

    The spec's data set, made correct: labels follow the class folders in
    alphabetical order (not ``os.listdir`` order), stereo is mixed down
    (not interleaved), any sample rate is accepted (optionally resampled
    to ``sr_hz``), and every clip is read once here, not on every epoch.

    Parameters
    ----------
    source : str, Path or sequence of :class:`ser.data.dataset.Clip`
        A split folder ``<split>/<Class>/*.wav``, or clips (their
        ``label`` and ``class_name`` are used).
    n_frames, hop_s
        Each clip is cut or zero-padded to ``(n_frames + 1) * int(sr * hop_s)``
        samples.
    sr_hz : int, optional
        Resample every clip to this rate; None keeps the files' rate
        (which must then be the same for all).
    norm : {"spec", "clip_std", "train_rms", "none"}
        See :func:`normalise`.
    scale : float, optional
        RMS of the training clips, for ``norm="train_rms"``; fitted on this
        data set when None (do that for training data only).
    classes : sequence of str, optional
        Class order for a split folder (default: its folders, sorted).

    Attributes
    ----------
    waveforms : np.ndarray [shape=(n_clips, n_samples), dtype=float32]
        Samples in [-1, 1] before normalisation.
    x : torch.Tensor [shape=(n_clips, 1, n_samples)]
        Normalised network input.
    y : torch.Tensor [shape=(n_clips,), dtype=long]
    """

    def __init__(self, source, *, n_frames: int = 200, hop_s: float = 0.015,
                 sr_hz: int | None = None, norm: str = "clip_std",
                 scale: float | None = None, classes: Sequence[str] | None = None):
        if isinstance(source, (str, os.PathLike)):
            clips = folder_clips(source, classes)
        else:
            clips = list(source)
        if not clips:
            raise DataError("EmotionSpeechDataset: no clips given")
        paths = [c.path for c in clips]
        labels = [c.label for c in clips]
        if classes is None:
            names = {c.label: c.class_name for c in clips}
            classes = [names.get(i, str(i)) for i in range(max(names) + 1)]
        self.paths = [Path(p) for p in paths]
        self.classes = list(classes)
        self.n_frames, self.hop_s, self.norm = n_frames, hop_s, norm
        self.waveforms = load_waveforms(self.paths, n_frames=n_frames, hop_s=hop_s, sr_hz=sr_hz)
        if sr_hz is None:
            from ser.data.audio import audio_info

            sr_hz = audio_info(self.paths[0]).sr_hz
        self.sr_hz = int(sr_hz)
        if norm == "train_rms" and scale is None:
            scale = fit_scale(self.waveforms)
        self.scale = scale
        self.x = torch.from_numpy(normalise(self.waveforms, norm, scale=scale)).unsqueeze(1)
        self.y = torch.tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.x[index], int(self.y[index])


# ------------------------------------------------------------------ protocol

def candidates(cfg) -> dict[str, dict]:
    """The settings compared by validation: ``grid_window`` x ``grid_norm`` x
    ``grid_shift_s``, then ``norm="speaker_rms"`` with each shift at every
    window of ``speaker_norm_windows`` (which must be among ``grid_window``,
    the windows loaded)."""
    unknown = [n for n in cfg.grid_norm if n not in NORM_TEXT]
    if unknown:
        raise ConfigError(f"cnn1d grid_norm: unknown {unknown}; expected some of {tuple(NORM_TEXT)}")
    grid = [(w, n) for w in cfg.grid_window for n in cfg.grid_norm]
    for w in cfg.speaker_norm_windows:
        if w not in cfg.grid_window:
            raise ConfigError(f"cnn1d speaker_norm_windows: window {w!r} is not among grid_window "
                              f"{tuple(cfg.grid_window)}, the windows loaded")
        grid.append((w, "speaker_rms"))
    return {f"window at {w}, {n}, shift ±{float(s):g} s": {"window": w, "norm": n, "shift_s": float(s)}
            for w, n in grid for s in cfg.grid_shift_s}


def learner(cfg, n_classes: int):
    """How the 1D CNN trains and predicts, for :mod:`ser.models.protocol`.

    ``fit`` normalises (fitting the ``train_rms`` scale on its own training
    clips only), seeds, builds and trains one model; the scale travels in the
    returned state. Inputs are waveforms in [-1, 1], one row per window of
    ``cfg.grid_window`` [shape=(n_clips, n_windows, n_samples)]; a candidate
    reads the row of its ``window``. A ``speaker_rms`` candidate needs them
    as :class:`SpeakerWaves`, which carry each clip's speaker level (nothing
    is fitted); the other candidates read the waveforms of either, unchanged.
    """
    import dataclasses

    from ser.models.augment import AugmentSpec, make_augment
    from ser.models.protocol import Learner, Trained
    from ser.models.training import (TrainConfig, environment, evaluate, fit, load_model_arrays, model_arrays,
                           seed_everything)

    def pick(x, params):
        waves = x.waves if isinstance(x, SpeakerWaves) else x
        return waves[:, list(cfg.grid_window).index(params["window"])]

    def levels(x, params):
        if params["norm"] != "speaker_rms":
            return None
        if not isinstance(x, SpeakerWaves):
            raise ConfigError("norm 'speaker_rms' needs the inputs as SpeakerWaves (waveforms with speaker levels)")
        return x.levels[:, list(cfg.grid_window).index(params["window"])]

    def as_input(x, params, scale):
        return torch.from_numpy(normalise(pick(x, params), params["norm"], scale=scale,
                                          levels=levels(x, params))).unsqueeze(1)

    def fit_one(params, x, y, *, seed, epochs, x_val=None, y_val=None, log=None):
        scale = fit_scale(pick(x, params)) if params["norm"] == "train_rms" else None
        seed_everything(seed)
        model = build_model(n_classes, sr_hz=cfg.sr_hz, **model_kwargs(cfg))
        tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                           weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing)
        spec = AugmentSpec(shift_samples=int(round(params["shift_s"] * cfg.sr_hz)), gain_db=cfg.gain_db)
        hist = fit(model, as_input(x, params, scale), torch.as_tensor(y), tcfg, seed=seed,
                   x_val=None if x_val is None else as_input(x_val, params, scale),
                   y_val=None if y_val is None else torch.as_tensor(y_val),
                   augment=make_augment(spec), log=log)
        return Trained(model, {"train_rms_scale": scale}), hist

    def predict(trained, params, x):
        return evaluate(trained.model, as_input(x, params, trained.state["train_rms_scale"]), None)[2]

    def view(x, params):  # what a candidate's fit reads: its window's waveforms (and speaker levels)
        return pick(x, params), levels(x, params)

    def restore(arrays, state):
        return Trained(load_model_arrays(build_model(n_classes, sr_hz=cfg.sr_hz, **model_kwargs(cfg)), arrays),
                       dict(state))

    # the run cache's key (ser.models.runs): the settings a fit reads, not the grid, epochs or seeds
    free = {"max_epochs", "smooth_epochs", "grid_window", "grid_norm", "grid_shift_s", "speaker_norm_windows",
            "val_seeds", "seeds"}
    key = {"net": "WaveCNN", "n_classes": int(n_classes), **environment(),
           "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in free}}
    return Learner(fit=fit_one, predict=predict, key=key, code=("ser.models.cnn1d", "ser.models.training", "ser.models.augment"),
                   view=view, export=lambda t: model_arrays(t.model), restore=restore)


def describe(cfg, n_classes: int) -> dict:
    """Input, network and training settings, for the results file."""
    model = build_model(n_classes, sr_hz=cfg.sr_hz, **model_kwargs(cfg))
    n = clip_samples(sr_hz=cfg.sr_hz, n_frames=cfg.n_frames, hop_s=cfg.hop_s)
    return {
        "input": {"sr_hz": cfg.sr_hz, "n_frames": cfg.n_frames, "hop_s": cfg.hop_s,
                  "n_samples": n, "duration_s": n / cfg.sr_hz, "windows": list(cfg.grid_window),
                  "norms": {m: NORM_TEXT[m] for m in dict.fromkeys(p["norm"] for p in candidates(cfg).values())}},
        "architecture": {"name": "WaveCNN", **model_kwargs(cfg),
                         "n_params": int(sum(p.numel() for p in model.parameters())), "text": str(model)},
        "training": {"optimizer": "Adam", "loss": "cross-entropy", "lr": cfg.lr, "batch_size": cfg.batch_size,
                     "weight_decay": cfg.weight_decay, "label_smoothing": cfg.label_smoothing,
                     "gain_db": cfg.gain_db, "threads": torch.get_num_threads()},
    }


def run_cnn1d(clips, cfg, *, eval_splits: Sequence[str] = ("Test",), onset=None,
              log: Callable[[str], None] | None = None, fold_options: dict | None = None) -> tuple[dict, dict]:
    """The 1D CNN through the shared protocol (:func:`ser.models.protocol.run_protocol`).

    Parameters
    ----------
    clips : list of :class:`ser.data.dataset.Clip`
        Every split (``list_clips``); Train clips must carry RAVDESS speakers.
    cfg : :class:`ser.config.Cnn1dConfig`
        With a ``speaker_rms`` candidate, every clip (all splits) needs an
        speaker, and each split's inputs carry their speakers' levels.
    eval_splits : sequence of str
        The splits scored once by the final models, after every choice.
    onset : :class:`ser.config.OnsetConfig`, optional
        The speech-onset rule for windows at ``"onset"`` (default: its defaults).
    log : callable(str), optional

    Returns
    -------
    (results, trained)
        The protocol's results with this network's ``input``, ``architecture``
        and ``training`` added, and the trained models per candidate.
    """
    import dataclasses

    from ser.config import OnsetConfig
    from ser.data.dataset import check_speaker_disjoint, split_clips, training_speakers
    from ser.models.protocol import EvalSplit, ProtocolConfig, run_protocol

    log = log or (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    train = split_clips(clips, "Train")
    speakers = training_speakers(train)
    check_speaker_disjoint(train, [c for s in eval_splits for c in split_clips(clips, s)])
    classes = sorted({c.class_name for c in clips})
    cands = candidates(cfg)
    by_speaker = any(p["norm"] == "speaker_rms" for p in cands.values())
    if by_speaker:  # before any training: every clip of every split needs its speaker
        clip_speakers([c for s in ("Train", *eval_splits) for c in split_clips(clips, s)])
    kw = dict(n_frames=cfg.n_frames, hop_s=cfg.hop_s, sr_hz=cfg.sr_hz, window=tuple(cfg.grid_window), onset=onset)

    def inputs(cs):  # one split's clips; speaker levels from each speaker's own clips of the split
        x = load_waveforms([c.path for c in cs], **kw)
        return SpeakerWaves(x, speaker_levels(x, clip_speakers(cs))) if by_speaker else x

    x_train = inputs(train)
    y_train = np.array([c.label for c in train])
    load_s = time.perf_counter() - t0

    def load_eval():
        return [EvalSplit(s, inputs(split_clips(clips, s)),
                          np.array([c.label for c in split_clips(clips, s)]),
                          [c.key for c in split_clips(clips, s)], [c.speaker for c in split_clips(clips, s)])
                for s in eval_splits]

    pcfg = ProtocolConfig(max_epochs=cfg.max_epochs, smooth_epochs=cfg.smooth_epochs,
                          val_seeds=tuple(cfg.val_seeds), seeds=tuple(cfg.seeds))
    results, trained = run_protocol(learner(cfg, len(classes)), cands, x_train, y_train, speakers,
                                    classes=classes, load_eval=load_eval, pcfg=pcfg, log=log, name="cnn1d",
                                    train_keys=[c.key for c in train], fold_options=fold_options)
    results["timings_s"]["load_train"] = load_s
    results.update(describe(cfg, len(classes)))
    results["input"]["onset"] = dataclasses.asdict(onset or OnsetConfig())
    return results, trained
