"""Section 3.2: a small 2D CNN on mel-spectrogram images.

The images come from :func:`ser.images.export_images`; :func:`learner` is how
this network trains and predicts, and :func:`run_cnn2d` hands it to the shared
protocol (:mod:`ser.protocol`) with one candidate per augmentation setting.
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

    Input [batch, 1, height, width] (height ``in_height`` for ``head="freq"``;
    any size of at least ``2**(len(widths)-1)`` pixels a side for ``"gap"``),
    output logits [batch, n_classes].
    """

    def __init__(self, n_classes: int, *, widths=(8, 16, 32, 32), dropout: float = 0.5, head: str = "gap",
                 coord: bool = False, in_height: int = 150):
        super().__init__()
        if head not in ("gap", "freq"):
            raise ValueError(f"head must be 'gap' or 'freq', got {head!r}")
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

    def forward(self, x):
        if self.coord:
            x = torch.cat([x, self.coord_ch.expand(x.shape[0], 1, -1, x.shape[-1])], dim=1)
        h = self.features(x)
        h = self.pool(h).flatten(1) if self.head == "gap" else h.mean(dim=-1).flatten(1)
        return self.classifier(self.dropout(h))


def build_model(n_classes: int, *, widths=(8, 16, 32, 32), dropout: float = 0.5, head: str = "gap",
                coord: bool = False, in_height: int = 150) -> Cnn2d:
    return Cnn2d(n_classes, widths=widths, dropout=dropout, head=head, coord=coord, in_height=in_height)


def model_kwargs(cfg) -> dict:
    """The :func:`build_model` arguments of a :class:`ser.config.Cnn2dConfig`."""
    return dict(widths=tuple(cfg.widths), dropout=cfg.dropout, head=cfg.head, coord=cfg.coord,
                in_height=cfg.size_hw[0])


def n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def load_checkpoint(path, cfg=None, n_classes: int = 4) -> Cnn2d:
    """A trained model from a ``state_dict`` file (``weights_only=True``)."""
    from .config import CONFIG

    cfg = cfg or CONFIG.cnn2d
    model = build_model(n_classes, **model_kwargs(cfg))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def load_images(records, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs [shape=(n, 1, height, width)] and labels of image records."""
    from .images import load_inputs

    x = load_inputs(records, size_hw=tuple(cfg.size_hw), interpolation=cfg.interpolation)
    return x, np.array([r["label"] for r in records], dtype=np.int64)


def candidates(cfg) -> dict[str, dict]:
    """One candidate per augmentation setting: ``{name: AugmentSpec fields}``."""
    return {name: dict(fields) for name, fields in cfg.augmentations}


def learner(cfg, n_classes: int):
    """How the 2D CNN trains and predicts, for :mod:`ser.protocol`.

    ``params`` are :class:`ser.augment.AugmentSpec` fields; mixup, when on,
    mixes inputs and targets (:func:`ser.augment.make_mix`).
    """
    from .augment import AugmentSpec, make_augment, make_mix
    from .protocol import Learner, Trained
    from .training import TrainConfig, evaluate, fit, seed_everything

    def fit_one(params, x, y, *, seed, epochs, x_val=None, y_val=None, log=None):
        seed_everything(seed)
        model = build_model(n_classes, **model_kwargs(cfg))
        spec = AugmentSpec(**params)
        tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                           weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing)
        hist = fit(model, torch.from_numpy(x), torch.as_tensor(y), tcfg, seed=seed,
                   x_val=None if x_val is None else torch.from_numpy(x_val),
                   y_val=None if y_val is None else torch.as_tensor(y_val),
                   augment=make_augment(spec), mix=make_mix(spec), log=log)
        return Trained(model), hist

    def predict(trained, params, x):
        return evaluate(trained.model, torch.from_numpy(x), None)[2]

    return Learner(fit=fit_one, predict=predict)


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


def run_cnn2d(image_root: str | os.PathLike, cfg, *, eval_splits: Sequence[str] = ("Test",),
              log: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """The 2D CNN through the shared protocol, on an exported image tree.

    Parameters
    ----------
    image_root : path
        ``<root>/<Split>/<Class>/*.png`` as written by :func:`ser.images.export_images`.
    cfg : :class:`ser.config.Cnn2dConfig`
    eval_splits : sequence of str
        The splits scored once by the final models, after every choice.

    Returns
    -------
    (results, trained), as :func:`ser.cnn1d.run_cnn1d`.
    """
    from .dataset import check_actor_disjoint, image_records, training_actors
    from .protocol import EvalSplit, ProtocolConfig, run_protocol

    log = log or (lambda s: None)
    t0 = time.perf_counter()
    train = image_records(image_root, "Train")
    classes = sorted({r["class_name"] for r in train})
    actors = training_actors(train)
    check_actor_disjoint(train, [r for s in eval_splits for r in image_records(image_root, s, classes=classes)])
    x_train, y_train = load_images(train, cfg)
    load_s = time.perf_counter() - t0

    def load_eval():
        out = []
        for s in eval_splits:
            recs = image_records(image_root, s, classes=classes)
            x, y = load_images(recs, cfg)
            out.append(EvalSplit(s, x, y, [r["key"] for r in recs], [r["actor"] for r in recs]))
        return out

    pcfg = ProtocolConfig(max_epochs=cfg.max_epochs, smooth_epochs=cfg.smooth_epochs,
                          val_seeds=tuple(cfg.val_seeds), seeds=tuple(cfg.seeds))
    results, trained = run_protocol(learner(cfg, len(classes)), candidates(cfg), x_train, y_train, actors,
                                    classes=classes, load_eval=load_eval, pcfg=pcfg, final="all", log=log,
                                    name="cnn2d")
    results["timings_s"]["load_train"] = load_s
    results.update(describe(cfg, len(classes)))
    return results, trained
