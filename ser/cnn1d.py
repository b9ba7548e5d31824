"""Section 3.1: a 1D CNN on the raw waveform.

The pieces, from data to results:

* :func:`load_waveforms` decodes clips once into a fixed-length array
  (``(n_frames + 1) * hop`` samples, the spec's length), optionally resampled;
* :func:`normalise` scales them (the spec's fixed ``(x*32768 - 1000) / 100``,
  per-clip standardisation, or one scale fitted on the training clips);
* :class:`EmotionSpeechDataset` wraps both as a ``torch`` data set;
* :class:`WaveCNN` is an M5-like network (Dai et al. 2017, "Very deep
  convolutional neural networks for raw waveforms");
* :func:`run_cnn1d` is the build protocol: model selection by
  leave-one-actor-out inside the training actors, final models on all training
  actors for several seeds, one evaluation each on the Test split.

The Test split is read only by :func:`run_cnn1d`, after every choice is made.
"""
from __future__ import annotations

import os
import time
from math import gcd
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .audio import fix_length, hop_samples, read_mono
from .curves import moving_average
from .dataset import folder_clips
from .errors import ConfigError, DataError
from .io import save_json, save_state_dict

NORMALISATIONS = ("spec", "clip_std", "train_rms")


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
                  sr_hz: int | None = None) -> np.ndarray:
    """One clip as mono float32 in [-1, 1], resampled, then cut or zero-padded.

    Parameters
    ----------
    path : str or Path
        A WAV file; several channels are averaged (:func:`ser.audio.read_mono`).
    n_frames, hop_s
        Keep ``(n_frames + 1) * int(sr * hop_s)`` samples, as the spec's data set.
    sr_hz : int, optional
        Resample to this rate first; None keeps the file's rate.

    Returns
    -------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
    """
    y, sr = read_mono(path)
    target = sr if sr_hz is None else int(sr_hz)
    y = resample(y, sr_hz=sr, target_sr_hz=target)
    return fix_length(y, clip_samples(sr_hz=target, n_frames=n_frames, hop_s=hop_s))


def load_waveforms(paths: Sequence, *, n_frames: int = 200, hop_s: float = 0.015,
                   sr_hz: int | None = None) -> np.ndarray:
    """Several clips stacked: np.ndarray [shape=(n_clips, n_samples), dtype=float32].

    All clips must share a sample rate when ``sr_hz`` is None.
    """
    ys = [load_waveform(p, n_frames=n_frames, hop_s=hop_s, sr_hz=sr_hz) for p in paths]
    lengths = {len(y) for y in ys}
    if len(lengths) > 1:
        raise DataError(f"clips give {sorted(lengths)} samples: mixed sample rates, pass sr_hz")
    return np.stack(ys) if ys else np.zeros((0, 0), np.float32)


def normalise(x: np.ndarray, method: str, *, scale: float | None = None) -> np.ndarray:
    """Scale waveforms for the network.

    Parameters
    ----------
    x : np.ndarray [shape=(n_clips, n_samples)]
        Samples in [-1, 1].
    method : {"spec", "clip_std", "train_rms", "none"}
        ``spec``: the spec's ``(s - 1000) / 100`` on int16 sample values
        ``s = x * 32768``; ``clip_std``: each clip to zero mean, unit standard
        deviation (loudness removed); ``train_rms``: divided by one RMS fitted
        on the training clips (``scale``), keeping relative loudness.
    scale : float, optional
        The fitted RMS for ``train_rms`` (see :func:`fit_scale`).
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
    if method == "none":
        return x
    raise ConfigError(f"unknown normalisation {method!r}; expected one of {NORMALISATIONS + ('none',)}")


def fit_scale(x: np.ndarray) -> float:
    """RMS over all samples of the training clips, for ``normalise(..., 'train_rms')``."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# -------------------------------------------------------------------- model



def build_model(n_classes: int, *, sr_hz: int, n_channels: int = 32,
                first_kernel_ms: float = 5.0, first_stride_ms: float = 1.0,
                n_blocks: int = 4, n_hidden: int = 64, dropout: float = 0.5):
    """A :class:`WaveCNN` whose first layer spans ``first_kernel_ms`` at ``sr_hz``."""
    k = max(1, int(round(sr_hz * first_kernel_ms / 1000)))
    s = max(1, int(round(sr_hz * first_stride_ms / 1000)))
    return WaveCNN(n_classes, n_channels=n_channels, first_kernel=k, first_stride=s,
                   n_blocks=n_blocks, n_hidden=n_hidden, dropout=dropout)


try:  # the module stays importable without torch (the build checks for it later)
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    torch = None
    nn = None

if nn is not None:

    class WaveCNN(nn.Module):
        """M5-like 1D CNN on the waveform.

        A wide strided convolution (a learnt filter bank), ``n_blocks - 1``
        small convolutions, each block Conv1d -> BatchNorm -> ReLU ->
        MaxPool1d(4); global average pooling over time; dropout; two fully
        connected layers with dropout between.

        Input [batch, 1, n_samples]; output logits [batch, n_classes].
        """

        def __init__(self, n_classes: int = 4, *, n_channels: int = 32,
                     first_kernel: int = 80, first_stride: int = 16,
                     n_blocks: int = 4, n_hidden: int = 64, dropout: float = 0.5):
            super().__init__()
            blocks = []
            c_in, c = 1, n_channels
            for i in range(n_blocks):
                if i == 0:
                    conv = nn.Conv1d(1, c, first_kernel, stride=first_stride,
                                     padding=first_kernel // 2)
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


def make_augment(*, max_shift: int = 0, gain_db: float = 0.0) -> Callable | None:
    """A batch augmentation for :func:`ser.training.fit`, or None when both are off.

    Each clip is shifted in time by a random whole number of samples in
    ``[-max_shift, max_shift]`` (zeros fill the gap; nothing wraps around) and
    multiplied by a random gain in ``[-gain_db, gain_db]`` dB.
    """
    if max_shift <= 0 and gain_db <= 0:
        return None

    def augment(xb, gen):
        xb = xb.clone()
        n, length = xb.shape[0], xb.shape[-1]
        if max_shift > 0:
            shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen).tolist()
            out = torch.zeros_like(xb)
            for i, s in enumerate(shifts):
                if s >= 0:
                    out[i, ..., s:] = xb[i, ..., : length - s]
                else:
                    out[i, ..., : length + s] = xb[i, ..., -s:]
            xb = out
        if gain_db > 0:
            g = (torch.rand(n, generator=gen) * 2 - 1) * gain_db
            xb = xb * (10.0 ** (g / 20.0)).view(n, *([1] * (xb.dim() - 1)))
        return xb

    return augment


# ------------------------------------------------------------------ data set

if torch is not None:

    class EmotionSpeechDataset(torch.utils.data.Dataset):
        """Clips as fixed-length normalised waveforms, decoded once.

        The spec's data set, made correct: labels follow the class folders in
        alphabetical order (not ``os.listdir`` order), stereo is mixed down
        (not interleaved), any sample rate is accepted (optionally resampled
        to ``sr_hz``), and every clip is read once here, not on every epoch.

        Parameters
        ----------
        source : str, Path or sequence of :class:`ser.dataset.Clip`
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
                from .audio import audio_info

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

def candidates(cfg) -> list[dict]:
    """The settings compared in the validation stage: ``grid_norm`` x ``grid_shift_s``."""
    return [{"norm": n, "shift_s": float(s)} for n in cfg.grid_norm for s in cfg.grid_shift_s]


def model_kwargs(cfg) -> dict:
    return dict(n_channels=cfg.n_channels, first_kernel_ms=cfg.first_kernel_ms,
                first_stride_ms=cfg.first_stride_ms, n_blocks=cfg.n_blocks,
                n_hidden=cfg.n_hidden, dropout=cfg.dropout)


def _train_one(cfg, cand: dict, x_tr, y_tr, *, seed: int, epochs: int, n_classes: int,
               x_val=None, y_val=None, log=None, label=""):
    """Normalise (fitting ``train_rms`` on x_tr only), build, seed and train one model."""
    from .training import TrainConfig, fit, seed_everything

    scale = fit_scale(x_tr) if cand["norm"] == "train_rms" else None
    xt = torch.from_numpy(normalise(x_tr, cand["norm"], scale=scale)).unsqueeze(1)
    xv = None if x_val is None else torch.from_numpy(normalise(x_val, cand["norm"], scale=scale)).unsqueeze(1)
    seed_everything(seed)
    model = build_model(n_classes, sr_hz=cfg.sr_hz, **model_kwargs(cfg))
    tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing)
    augment = make_augment(max_shift=int(round(cand["shift_s"] * cfg.sr_hz)), gain_db=cfg.gain_db)
    hist = fit(model, xt, torch.as_tensor(y_tr), tcfg, seed=seed, x_val=xv,
               y_val=None if y_val is None else torch.as_tensor(y_val),
               augment=augment, log=log, label=label)
    return model, hist, scale


def run_cnn1d(clips, cfg, *, seeds: Sequence[int] | None = None, out_dir,
              results_path=None, log: Callable[[str], None] | None = None) -> dict:
    """The whole 1D CNN protocol; the Test split is touched only in step (c).

    (a) Validation inside the training actors: for every candidate of
        :func:`candidates`, leave-one-actor-out over the training actors
        (``cfg.val_seeds`` seeds each); the candidate with the best smoothed
        mean validation accuracy wins, and the epoch of that maximum is the
        number of epochs for the final models.
    (b) One final model per seed on all training clips, without validation.
    (c) Each final model is evaluated once on the Test split; the seeds'
        averaged softmax probabilities give an extra "ensemble" row.

    Parameters
    ----------
    clips : list of :class:`ser.dataset.Clip`
        Both splits (``list_clips``); Train clips must carry RAVDESS actors.
    cfg : :class:`ser.config.Cnn1dConfig`
    seeds : sequence of int, optional
        Final-model seeds (default ``cfg.seeds``).
    out_dir : path
        Checkpoints ``cnn1d_seed<k>.pt`` (state dicts) go here.
    results_path : path, optional
        Results JSON (default ``<out_dir>/cnn1d.json``), written atomically.
    log : callable(str), optional

    Returns
    -------
    dict, JSON-serialisable (also written to ``results_path``):

    ``classes``       class names, label order (alphabetical folders)
    ``protocol``      one sentence on how the numbers were obtained
    ``input``         sample rate, frames, samples per clip, chosen normalisation
                      (and the ``train_rms`` scale fitted on all training clips)
    ``architecture``  network keyword arguments, parameter count, ``str(model)``
    ``training``      optimiser settings, chosen epochs and augmentation
    ``validation``    folds, rule, every candidate (its params, smoothed score,
                      best epoch, mean val curves, per-fold rows and the fold
                      histories), the chosen one and its epoch count
    ``test``          ``per_seed`` (seed, test loss, :func:`ser.metrics.scores`,
                      checkpoint, train history), ``summary``
                      (:func:`ser.metrics.seed_summary` of the accuracies),
                      ``pooled`` (scores over all seeds' predictions together),
                      ``ensemble`` (scores of the seeds' averaged probabilities)
    ``curves``        ``validation``: train+val histories of the chosen
                      candidate's folds; ``final``: train histories per seed
    ``files``         the results JSON and the checkpoints
    ``seconds``       wall time of loading, validation, final training, test, total
    """
    from .dataset import split_clips
    from .metrics import scores, seed_summary
    from .training import evaluate

    log = log or (lambda s: print(s, flush=True))
    seeds = tuple(cfg.seeds if seeds is None else seeds)
    out_dir = Path(out_dir)
    results_path = Path(results_path) if results_path is not None else out_dir / "cnn1d.json"
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}

    train = split_clips(clips, "Train")
    test = split_clips(clips, "Test")
    if not train or not test:
        raise DataError("run_cnn1d needs clips of both splits (Train and Test)")
    train_actors = [c.actor for c in train]
    if any(a is None for a in train_actors):
        raise DataError("run_cnn1d: training clips need RAVDESS names (actor per clip) for its folds")
    if set(train_actors) & {c.actor for c in test}:
        raise DataError("run_cnn1d: an actor is in both Train and Test")
    names = {c.label: c.class_name for c in clips}
    classes = [names[i] for i in range(len(names))]
    n_classes = len(classes)

    # ---- decode the training clips once
    t0 = time.perf_counter()
    kw = dict(n_frames=cfg.n_frames, hop_s=cfg.hop_s, sr_hz=cfg.sr_hz)
    x_train = load_waveforms([c.path for c in train], **kw)
    y_train = np.array([c.label for c in train])
    actors = np.array(train_actors)
    seconds["load_train"] = time.perf_counter() - t0

    # ---- (a) validation stage: leave one training actor out
    t0 = time.perf_counter()
    folds = sorted(set(train_actors))
    cand_results = []
    for ci, cand in enumerate(candidates(cfg)):
        hists, fold_rows = [], []
        for actor in folds:
            va = actors == actor
            for vs in cfg.val_seeds:
                _, h, _ = _train_one(
                    cfg, cand, x_train[~va], y_train[~va], seed=vs, epochs=cfg.max_epochs,
                    n_classes=n_classes, x_val=x_train[va], y_val=y_train[va],
                    log=lambda s: None, label=f"val {cand} actor {actor}")
                h["fold_actor"], h["seed"] = int(actor), int(vs)
                log(f"cnn1d val {cand} actor {actor} seed {vs}: val acc last "
                    f"{h['val_acc'][-1]:.3f}, best {max(h['val_acc']):.3f} ({h['seconds']:.0f} s)")
                hists.append(h)
                fold_rows.append({"actor": int(actor), "seed": int(vs),
                                  "final_val_acc": h["val_acc"][-1], "best_val_acc": max(h["val_acc"])})
        mean_acc = np.mean([h["val_acc"] for h in hists], axis=0)
        mean_loss = np.mean([h["val_loss"] for h in hists], axis=0)
        sm = moving_average(mean_acc, cfg.smooth_epochs)
        best = int(np.argmax(sm))
        row = {
            "params": cand,
            "score": float(sm[best]),
            "best_epoch": best + 1,
            "val_acc_at_best_epoch": float(mean_acc[best]),
            "val_acc_last_epoch": float(mean_acc[-1]),
            "min_val_loss": float(mean_loss.min()),
            "mean_val_acc": mean_acc.tolist(),
            "mean_val_loss": mean_loss.tolist(),
            "smoothed_val_acc": sm.tolist(),
            "folds": fold_rows,
            "histories": hists,
        }
        cand_results.append(row)
        log(f"cnn1d val {ci + 1}/{len(candidates(cfg))} {cand}: smoothed mean val acc "
            f"{row['score']:.3f} at epoch {row['best_epoch']} (last {row['val_acc_last_epoch']:.3f})")
    chosen_i = int(np.argmax([r["score"] for r in cand_results]))  # first one on ties
    chosen = cand_results[chosen_i]
    cand_final = chosen["params"]
    epochs = int(chosen["best_epoch"])
    seconds["validation"] = time.perf_counter() - t0
    log(f"cnn1d chose {cand_final}, {epochs} epochs (val {chosen['score']:.3f})")

    # ---- (b) final models on all training actors
    t0 = time.perf_counter()
    finals = []
    for seed in seeds:
        model, h, scale = _train_one(cfg, cand_final, x_train, y_train, seed=seed, epochs=epochs,
                                     n_classes=n_classes, log=log, label=f"cnn1d seed {seed}")
        ckpt = out_dir / f"cnn1d_seed{seed}.pt"
        save_state_dict(model, ckpt)
        finals.append((seed, model, h, scale, ckpt))
    seconds["final_training"] = time.perf_counter() - t0

    # ---- (c) the Test split, once per final model
    t0 = time.perf_counter()
    x_test = load_waveforms([c.path for c in test], **kw)
    y_test = np.array([c.label for c in test])
    per_seed, probs = [], []
    for seed, model, h, scale, ckpt in finals:
        xt = torch.from_numpy(normalise(x_test, cand_final["norm"], scale=scale)).unsqueeze(1)
        loss, acc, p = evaluate(model, xt, torch.from_numpy(y_test))
        probs.append(p)
        per_seed.append({"seed": int(seed), "test_loss": loss,
                         "test": scores(y_test, p.argmax(1), classes),
                         "checkpoint": str(ckpt), "train_seconds": h["seconds"],
                         "history": {k: h[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}})
        log(f"cnn1d seed {seed}: test accuracy {acc:.3f}")
    p_mean = np.mean(probs, axis=0)
    pooled_pred = np.concatenate([p.argmax(1) for p in probs])
    ensemble = scores(y_test, p_mean.argmax(1), classes)
    seconds["test"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    log(f"cnn1d test: mean {np.mean([r['test']['accuracy'] for r in per_seed]):.3f}, "
        f"ensemble {ensemble['accuracy']:.3f}, {seconds['total']:.0f} s")

    results = {
        "classes": classes,
        "protocol": (
            "Hyper-parameters chosen by leave-one-actor-out validation inside the training "
            f"actors {folds}; final models trained on all training clips for each seed and "
            "evaluated once on the Test split (actors "
            f"{sorted({c.actor for c in test if c.actor is not None})}). The ensemble row averages "
            "the seeds' softmax probabilities."),
        "input": {"sr_hz": cfg.sr_hz, "n_frames": cfg.n_frames, "hop_s": cfg.hop_s,
                  "n_samples": int(x_train.shape[1]), "duration_s": x_train.shape[1] / cfg.sr_hz,
                  "norm": cand_final["norm"], "train_rms_scale": finals[0][3]},
        "architecture": {"name": "WaveCNN", **model_kwargs(cfg),
                         "n_params": int(sum(p.numel() for p in finals[0][1].parameters())),
                         "text": str(finals[0][1])},
        "training": {"optimizer": "Adam", "loss": "cross-entropy", "lr": cfg.lr,
                     "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay,
                     "label_smoothing": cfg.label_smoothing, "epochs": epochs,
                     "augment": {"shift_s": cand_final["shift_s"], "gain_db": cfg.gain_db},
                     "threads": torch.get_num_threads()},
        "validation": {"scheme": "leave-one-actor-out", "folds": folds,
                       "seeds": list(cfg.val_seeds), "max_epochs": cfg.max_epochs,
                       "smooth_epochs": cfg.smooth_epochs,
                       "rule": "highest centred moving average of the mean validation accuracy; "
                               "its epoch is the final models' epoch count",
                       "candidates": cand_results, "chosen_index": chosen_i,
                       "chosen": cand_final, "chosen_epochs": epochs,
                       "chosen_score": chosen["score"]},
        "test": {
            "seeds": list(seeds),
            "per_seed": per_seed,
            "summary": seed_summary([r["test"]["accuracy"] for r in per_seed]),
            "pooled": scores(np.tile(y_test, len(probs)), pooled_pred, classes),
            "ensemble": ensemble,
        },
        "curves": {"validation": chosen["histories"],
                   "final": [r["history"] for r in per_seed]},
        "files": {"results": str(results_path),
                  "checkpoints": [str(f[4]) for f in finals]},
        "seconds": seconds,
    }
    save_json(results_path, results)
    return results


def load_model(path, cfg, *, n_classes: int = 4):
    """A final model back from its state-dict checkpoint (``weights_only=True``)."""
    model = build_model(n_classes, sr_hz=cfg.sr_hz, **model_kwargs(cfg))
    model.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    return model
