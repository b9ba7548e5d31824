"""Section 3.2: a small 2D CNN on mel-spectrogram images.

The images come from :func:`ser.features.images.export_images`; :func:`learner` is how
this network trains and predicts, and :func:`run_cnn2d` hands it to the shared
protocol (:mod:`ser.models.protocol`) with one candidate per augmentation setting.
Final models are trained for every setting (the augmentation experiment of
item h compares them); the setting chosen by validation is the reported one.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn


class Cnn2d(nn.Module):
    """Blocks of conv 3x3 (no bias) -> batch norm -> ReLU, a 2x2 max-pool
    between blocks, then pooling, dropout and a linear layer.

    ``head="gap"`` pools over both axes (global average pooling): the
    classifier no longer knows where in frequency a pattern was.
    ``head="freq"`` averages over time only and hands the classifier every
    frequency row of every channel: where the energy sits in frequency (pitch,
    formants) survives. ``coord=True`` adds a second input channel holding
    each row's position, +1 at the top row to -1 at the bottom, so that even
    the convolutions know which band they look at.

    ``rownorm`` standardises each frequency row at the input: ``"none"``
    (the build), ``"image"`` (by the row's mean and variance in each image,
    +1e-2 under the root) or ``"train"`` (by fixed row statistics, set from
    the training images by :meth:`set_row_stats`; buffers ``row_mu`` and
    ``row_sd``, held only by such a network).

    Input [batch, 1, height, width] (height ``in_height`` for ``head="freq"``;
    any size of at least ``2**(len(widths)-1)`` pixels a side for ``"gap"``),
    output logits [batch, n_classes].
    """

    def __init__(self, n_classes: int, *, widths=(8, 16, 32, 32), dropout: float = 0.5, head: str = "gap",
                 coord: bool = False, in_height: int = 150, rownorm: str = "none"):
        super().__init__()
        if head not in ("gap", "freq"):
            raise ValueError(f"head must be 'gap' or 'freq', got {head!r}")
        if rownorm not in ("none", "image", "train"):
            raise ValueError(f"rownorm must be 'none', 'image' or 'train', got {rownorm!r}")
        self.rownorm = rownorm
        layers, c = [], 2 if coord else 1
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.head, self.coord = head, coord
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        rows = in_height
        for _ in range(len(widths) - 1):
            rows //= 2
        self.classifier = nn.Linear(c * (rows if head == "freq" else 1), n_classes)
        self.register_buffer("coord_ch", torch.linspace(1, -1, in_height).view(1, 1, -1, 1))
        if rownorm == "train":  # no random draw: the layers' initial weights do not depend on rownorm
            self.register_buffer("row_mu", torch.zeros(1, 1, in_height, 1))
            self.register_buffer("row_sd", torch.ones(1, 1, in_height, 1))

    def set_row_stats(self, x) -> None:
        """``rownorm="train"``: each row's mean and standard deviation (+1e-2
        under the root) over the images ``x`` [batch, 1, height, width]."""
        self.row_mu.copy_(x.mean(dim=(0, 1, 3), keepdim=True))
        self.row_sd.copy_(torch.sqrt(x.var(dim=(0, 1, 3), keepdim=True) + 1e-2))

    def forward(self, x):
        if self.rownorm == "image":
            x = (x - x.mean(dim=-1, keepdim=True)) / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + 1e-2)
        elif self.rownorm == "train":
            x = (x - self.row_mu) / self.row_sd
        if self.coord:
            x = torch.cat([x, self.coord_ch.expand(x.shape[0], 1, -1, x.shape[-1])], dim=1)
        h = self.features(x)
        h = self.pool(h).flatten(1) if self.head == "gap" else h.mean(dim=-1).flatten(1)
        return self.classifier(self.dropout(h))


def build_model(n_classes: int, *, widths=(8, 16, 32, 32), dropout: float = 0.5, head: str = "gap",
                coord: bool = False, in_height: int = 150, rownorm: str = "none") -> Cnn2d:
    return Cnn2d(n_classes, widths=widths, dropout=dropout, head=head, coord=coord, in_height=in_height,
                 rownorm=rownorm)


def model_kwargs(cfg) -> dict:
    """The :func:`build_model` arguments of a :class:`ser.config.Cnn2dConfig`."""
    return dict(widths=tuple(cfg.widths), dropout=cfg.dropout, head=cfg.head, coord=cfg.coord,
                in_height=cfg.size_hw[0])


def n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def load_checkpoint(path, cfg=None, n_classes: int = 4) -> Cnn2d:
    """A trained model from a ``state_dict`` file (``weights_only=True``)."""
    from ser.config import CONFIG

    cfg = cfg or CONFIG.cnn2d
    model = build_model(n_classes, **model_kwargs(cfg))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def load_images(records, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs [shape=(n, 1, height, width)] and labels of image records."""
    from ser.features.images import load_inputs

    x = load_inputs(records, size_hw=tuple(cfg.size_hw), interpolation=cfg.interpolation)
    return x, np.array([r["label"] for r in records], dtype=np.int64)


INPUTS = ("raw", "speaker")
"""What a candidate's ``params["input"]`` may name, in the channel order of
the stacked inputs: the exported images, and the speaker-normalised ones."""


def candidates(cfg) -> dict[str, dict]:
    """The settings validation compares: ``{name: params}``.

    One per augmentation setting (``AugmentSpec`` fields), then each setting
    named in ``cfg.speaker_norm`` again on speaker-normalised images, as
    ``"<name>, speaker-normalised"`` with ``params["input"] == "speaker"``.
    """
    from ser.errors import ConfigError

    out = {name: dict(fields) for name, fields in cfg.augmentations}
    unknown = [n for n in cfg.speaker_norm if n not in out]
    if unknown:
        raise ConfigError(f"cnn2d.speaker_norm names {unknown}, which are not augmentation settings {list(out)}")
    for name in cfg.speaker_norm:
        out[f"{name}, speaker-normalised"] = {**out[name], "input": "speaker"}
    return out


def reads_speaker_input(params: dict) -> bool:
    """Whether a candidate reads the speaker-normalised images."""
    return params.get("input", "raw") == "speaker"


def pick_input(x: np.ndarray, params: dict) -> np.ndarray:
    """The input a candidate reads.

    Parameters
    ----------
    x : np.ndarray [shape=(n, n_inputs, height, width)]
        The inputs of :data:`INPUTS` stacked on axis 1 (only the raw images
        when no candidate reads another).
    params : dict
        A candidate's params; ``params["input"]`` (default ``"raw"``) names
        the channel.

    Returns
    -------
    np.ndarray [shape=(n, 1, height, width)]
        ``x`` itself when it holds one channel.
    """
    from ser.errors import ConfigError, DataError

    which = params.get("input", "raw")
    if which not in INPUTS:
        raise ConfigError(f"input must be one of {list(INPUTS)}, got {which!r}")
    ch = INPUTS.index(which)
    if ch >= x.shape[1]:
        raise DataError(f"the candidate reads the {which!r} input, but the inputs hold {x.shape[1]} channel(s)")
    return x if x.shape[1] == 1 else np.ascontiguousarray(x[:, ch:ch + 1])


def learner(cfg, n_classes: int):
    """How the 2D CNN trains and predicts, for :mod:`ser.models.protocol`.

    ``params`` are :class:`ser.models.augment.AugmentSpec` fields and ``"input"``,
    the channel of ``x`` the candidate reads (:func:`pick_input`); mixup,
    when on, mixes inputs and targets (:func:`ser.models.augment.make_mix`).
    """
    import dataclasses

    from ser.models.augment import AugmentSpec, make_augment, make_mix
    from ser.models.protocol import Learner, Trained
    from ser.models.training import (TrainConfig, environment, evaluate, fit, load_model_arrays, model_arrays,
                           seed_everything)

    def fit_one(params, x, y, *, seed, epochs, x_val=None, y_val=None, log=None):
        seed_everything(seed)
        model = build_model(n_classes, **model_kwargs(cfg))
        spec = AugmentSpec(**{k: v for k, v in params.items() if k != "input"})
        tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                           weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing)
        hist = fit(model, torch.from_numpy(pick_input(x, params)), torch.as_tensor(y), tcfg, seed=seed,
                   x_val=None if x_val is None else torch.from_numpy(pick_input(x_val, params)),
                   y_val=None if y_val is None else torch.as_tensor(y_val),
                   augment=make_augment(spec), mix=make_mix(spec), log=log)
        return Trained(model), hist

    def predict(trained, params, x):
        return evaluate(trained.model, torch.from_numpy(pick_input(x, params)), None)[2]

    def restore(arrays, state):
        return Trained(load_model_arrays(build_model(n_classes, **model_kwargs(cfg)), arrays), dict(state))

    # the run cache's key (ser.models.runs): the settings a fit reads, not the candidates, epochs or seeds
    free = {"max_epochs", "smooth_epochs", "val_seeds", "seeds", "augmentations", "speaker_norm"}
    key = {"net": "Cnn2d", "n_classes": int(n_classes), **environment(),
           "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in free}}
    return Learner(fit=fit_one, predict=predict, key=key, code=("ser.models.cnn2d", "ser.models.training", "ser.models.augment"),
                   view=lambda x, params: pick_input(x, params), export=lambda t: model_arrays(t.model),
                   restore=restore)


def describe(cfg, n_classes: int) -> dict:
    """Input, network and training settings, for the results file."""
    return {
        "input": {"size_hw": list(cfg.size_hw), "interpolation": cfg.interpolation},
        "architecture": {"name": "Cnn2d", "widths": list(cfg.widths), "dropout": cfg.dropout, "head": cfg.head,
                         "coord": cfg.coord, "n_params": n_parameters(build_model(n_classes, **model_kwargs(cfg)))},
        "training": {"optimizer": "Adam", "loss": "cross-entropy", "lr": cfg.lr, "batch_size": cfg.batch_size,
                     "weight_decay": cfg.weight_decay, "label_smoothing": cfg.label_smoothing,
                     "threads": torch.get_num_threads()},
    }


def run_cnn2d(records: list[dict], cfg, *, classes: Sequence[str], eval_splits: Sequence[str] = ("Test",),
              log: Callable[[str], None] | None = None, fold_options: dict | None = None) -> tuple[dict, dict]:
    """The 2D CNN through the shared protocol, on the exported images.

    Parameters
    ----------
    records : list of dict
        The image manifest's records (:func:`ser.features.images.export_images`):
        ``key``, ``split``, ``label``, ``speaker``, ``path`` and, when a
        candidate reads speaker-normalised images (``cfg.speaker_norm``),
        ``path_speaker``.
    cfg : :class:`ser.config.Cnn2dConfig`
    classes : sequence of str
        Class names in label order.
    eval_splits : sequence of str
        The splits scored once by the final models, after every choice.
    fold_options : dict, optional
        ``max_loso``, ``k`` and ``seed`` of :func:`ser.data.speakers.speaker_folds`.

    Returns
    -------
    (results, trained), as :func:`ser.models.cnn1d.run_cnn1d`; ``results["input"]["speaker_norm"]``
    says per candidate whether it read speaker-normalised images.
    """
    from ser.data.dataset import check_speaker_disjoint, training_speakers
    from ser.models.protocol import EvalSplit, ProtocolConfig, run_protocol

    log = log or (lambda s: None)
    t0 = time.perf_counter()
    cands = candidates(cfg)
    speaker = any(reads_speaker_input(p) for p in cands.values())
    by_split = {s: [r for r in records if r["split"] == s] for s in ("Train", *eval_splits)}
    train = by_split["Train"]
    speakers = training_speakers(train)
    check_speaker_disjoint(train, [r for s in eval_splits for r in by_split[s]])

    def load(recs):
        # the inputs of INPUTS stacked on axis 1: raw, then (when read) speaker-normalised
        x, y = load_images(recs, cfg)
        if speaker:
            x = np.concatenate([x, load_speaker_images(recs, cfg)], axis=1)
        return x, y

    x_train, y_train = load(train)
    load_s = time.perf_counter() - t0

    def load_eval():
        out = []
        for s in eval_splits:
            x, y = load(by_split[s])
            out.append(EvalSplit(s, x, y, [r["key"] for r in by_split[s]], [r["speaker"] for r in by_split[s]]))
        return out

    pcfg = ProtocolConfig(max_epochs=cfg.max_epochs, smooth_epochs=cfg.smooth_epochs,
                          val_seeds=tuple(cfg.val_seeds), seeds=tuple(cfg.seeds))
    results, trained = run_protocol(learner(cfg, len(classes)), cands, x_train, y_train, speakers,
                                    classes=list(classes), load_eval=load_eval, pcfg=pcfg, final="all", log=log,
                                    name="cnn2d", train_keys=[r["key"] for r in train],
                                    fold_options=fold_options)
    results["timings_s"]["load_train"] = load_s
    results.update(describe(cfg, len(classes)))
    results["input"]["speaker_norm"] = {name: reads_speaker_input(p) for name, p in cands.items()}
    return results, trained


def load_speaker_images(records: list[dict], cfg) -> np.ndarray:
    """The speaker-normalised inputs of ``records`` (image records carrying
    ``path_speaker``, as :func:`ser.features.images.export_images` writes with
    ``speaker_norm=True``; :class:`ser.errors.DataError` otherwise).

    Returns
    -------
    np.ndarray [shape=(n, 1, height, width), dtype=float32]
    """
    from ser.errors import DataError

    missing = [r["key"] for r in records if not r.get("path_speaker")]
    if missing:
        raise DataError(f"{missing[0]}: no speaker-normalised image; speaker-normalised candidates "
                        "(cnn2d.speaker_norm) need the images export_images writes with speaker_norm=True")
    return load_images([{**r, "path": r["path_speaker"]} for r in records], cfg)[0]
