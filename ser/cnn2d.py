"""A small 2D CNN on mel-spectrogram images, and the build protocol around it.

Protocol (:func:`run_cnn2d`), Test touched once at the end:

a. Validation inside the training actors: leave-one-actor-out (train on three
   actors, validate on the fourth) for every augmentation setting, for
   ``max_epochs`` epochs. Each setting's epoch count is the argmax of its mean
   validation-accuracy curve (over folds), smoothed by a moving average. The
   setting with the best smoothed validation accuracy is the chosen one.
b. For every augmentation setting: one model per seed trained on all training
   actors for that setting's epoch count, each evaluated once on Test; the
   seeds' softmax outputs averaged (the seed ensemble) as an extra row.
c. Checkpoints as ``state_dict`` files (``torch.load(..., weights_only=True)``).
d. One JSON-serialisable results dict.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .curves import moving_average
from .errors import DataError
from .io import save_state_dict

_RAVDESS_STEM = re.compile(r"^\d\d-\d\d-\d\d-\d\d-\d\d-\d\d-(\d\d)$")


def _nn():
    import torch.nn as nn

    return nn


def build_model(n_classes: int, *, widths=(8, 16, 32, 32), dropout: float = 0.5):
    """The 2D CNN: blocks of conv 3x3 (no bias) -> batch norm -> ReLU, a 2x2
    max-pool between blocks, then global average pooling, dropout and a linear
    layer.

    Input [batch, 1, height, width] (any size of at least ``2**(len(widths)-1)``
    pixels a side), output logits [batch, n_classes].
    """
    nn = _nn()

    class Cnn2d(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 1
            for i, w in enumerate(widths):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                if i < len(widths) - 1:
                    layers.append(nn.MaxPool2d(2))
                c = w
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(c, n_classes)

        def forward(self, x):
            h = self.pool(self.features(x)).flatten(1)
            return self.classifier(self.dropout(h))

    return Cnn2d()


def n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ----------------------------------------------------------------- data
def image_records(image_root: str | os.PathLike, split: str) -> list[dict]:
    """The images of one split of an image-folder tree ``<root>/<split>/<Class>/*.png``.

    Classes are the folders of ``<root>/Train`` in alphabetical order (as
    torchvision's ``ImageFolder``); the actor comes from the RAVDESS name.
    Returns records (``key``, ``split``, ``class_name``, ``label``, ``actor``,
    ``path``) sorted by class then file name.
    """
    root = Path(image_root)
    train = root / "Train"
    if not train.is_dir():
        raise DataError(f"{train}: missing (expected an image tree <root>/Train/<Class>/*.png)")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for label, name in enumerate(classes):
        d = root / split / name
        if not d.is_dir():
            raise DataError(f"{d}: missing class folder")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
        if not files:
            raise DataError(f"{d}: holds no .png images")
        for p in files:
            m = _RAVDESS_STEM.match(p.stem)
            out.append({"key": f"{split}/{name}/{p.stem}.wav", "split": split, "class_name": name,
                        "label": label, "actor": int(m.group(1)) if m else None, "path": str(p)})
    return out


def _arrays(records, cfg):
    import torch

    from .images import load_inputs

    x = torch.from_numpy(load_inputs(records, size_hw=tuple(cfg.size_hw), interpolation=cfg.interpolation))
    y = torch.tensor([r["label"] for r in records], dtype=torch.long)
    return x, y


# --------------------------------------------------------- augmentation
def augment_specs(cfg) -> dict:
    """``{name: AugmentSpec}`` for the settings in ``cfg.augmentations``."""
    from .augment import AugmentSpec

    return {name: AugmentSpec(name=name, **dict(fields)) for name, fields in cfg.augmentations}


def _callbacks(spec):
    from .augment import make_augment, mixup

    aug = make_augment(spec)
    mix = None
    if spec.mixup_alpha > 0:
        alpha = spec.mixup_alpha

        def mix(x, y_onehot, gen):
            return mixup(x, y_onehot, gen, alpha)

    return aug, mix


def _train_config(cfg, epochs: int):
    from .training import TrainConfig

    return TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing)


def train_one(x, y, cfg, *, spec, epochs: int, seed: int, n_classes: int,
              x_val=None, y_val=None, log=None, label: str = ""):
    """Seed, build and train one model; returns ``(model, history)``."""
    from .training import fit, seed_everything

    seed_everything(seed)
    model = build_model(n_classes, widths=cfg.widths, dropout=cfg.dropout)
    aug, mix = _callbacks(spec)
    hist = fit(model, x, y, _train_config(cfg, epochs), seed=seed, x_val=x_val, y_val=y_val,
               augment=aug, mix=mix, log=log, label=label)
    return model, hist


# ------------------------------------------------------------ protocol
def validate(x, y, actors, cfg, *, spec, log=None) -> dict:
    """Leave-one-actor-out over ``actors`` for one augmentation setting.

    Returns per-fold histories, the mean validation curves, the chosen epoch
    count and the validation accuracy there (mean over folds, and pooled over
    all held-out clips at that epoch is the same number since folds are equal
    in size).
    """
    import torch

    actors = np.asarray(actors)
    n_classes = int(y.max()) + 1
    folds = []
    for a in sorted(set(actors.tolist())):
        held = torch.from_numpy(actors == a)
        _, hist = train_one(x[~held], y[~held], cfg, spec=spec, epochs=cfg.max_epochs, seed=cfg.val_seed,
                            n_classes=n_classes, x_val=x[held], y_val=y[held], log=log,
                            label=f"cnn2d val {spec.name} actor {a}")
        folds.append({"held_out_actor": int(a), "n_val": int(held.sum()), **hist})
    w = np.array([f["n_val"] for f in folds], float)
    mean_acc = np.average([f["val_acc"] for f in folds], axis=0, weights=w)
    mean_loss = np.average([f["val_loss"] for f in folds], axis=0, weights=w)
    sm = moving_average(mean_acc, cfg.smooth_epochs)
    best = int(np.argmax(sm))
    return {
        "folds": folds,
        "mean_val_acc": mean_acc.tolist(),
        "mean_val_loss": mean_loss.tolist(),
        "smoothed_val_acc": sm.tolist(),
        "epochs": best + 1,
        "val_acc_smoothed_at_epochs": float(sm[best]),
        "val_acc_at_epochs": float(mean_acc[best]),
        "per_fold_val_acc_at_epochs": [float(f["val_acc"][best]) for f in folds],
        "val_acc_last": float(mean_acc[-1]),
        "seconds": float(sum(f["seconds"] for f in folds)),
    }


def run_cnn2d(
    image_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    cfg=None,
    seeds: tuple[int, ...] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """The whole section-3.2 protocol on an exported image tree.

    Parameters
    ----------
    image_root : path
        ``<root>/{Train,Test}/<Class>/*.png`` as written by
        :func:`ser.images.export_images`.
    out_dir : path
        Checkpoints go to ``<out_dir>/cnn2d_<setting>_seed<k>.pt``.
    cfg : ser.config.Cnn2dConfig, optional
        Default ``CONFIG.cnn2d``.
    seeds : tuple of int, optional
        Default ``cfg.seeds``.
    log : callable(str), optional

    Returns
    -------
    dict, JSON-serialisable (see the keys' meanings in the code below).
    Test images are read only after every choice is made.
    """
    import torch

    from .config import CONFIG
    from .metrics import scores, seed_summary

    cfg = cfg or CONFIG.cnn2d
    seeds = tuple(seeds if seeds is not None else cfg.seeds)
    log = log or (lambda s: None)
    out_dir = Path(out_dir)
    t_start = time.perf_counter()

    train_rec = image_records(image_root, "Train")
    classes = sorted({r["class_name"] for r in train_rec})
    actors = [r["actor"] for r in train_rec]
    if any(a is None for a in actors):
        raise DataError(f"{image_root}/Train: image names must be RAVDESS names (the actor is needed for validation folds)")
    t0 = time.perf_counter()
    x_tr, y_tr = _arrays(train_rec, cfg)
    t_load_train = time.perf_counter() - t0
    specs = augment_specs(cfg)
    n_classes = len(classes)

    # (a) validation inside the training actors
    validation = {}
    for name, spec in specs.items():
        log(f"cnn2d: validating '{name}' (leave one of actors {sorted(set(actors))} out)")
        validation[name] = validate(x_tr, y_tr, actors, cfg, spec=spec, log=log)
        v = validation[name]
        log(f"cnn2d: '{name}' val acc {v['val_acc_smoothed_at_epochs']:.3f} (smoothed) at {v['epochs']} epochs")
    chosen = max(validation, key=lambda k: validation[k]["val_acc_smoothed_at_epochs"])
    t_val = time.perf_counter() - t_start

    # (b) every setting on all training actors, several seeds; then Test, once
    models: dict[str, list] = {}
    train_hist: dict[str, list] = {}
    t1 = time.perf_counter()
    for name, spec in specs.items():
        models[name], train_hist[name] = [], []
        for s in seeds:
            model, hist = train_one(x_tr, y_tr, cfg, spec=spec, epochs=validation[name]["epochs"], seed=s,
                                    n_classes=n_classes, log=log, label=f"cnn2d {name} seed {s}")
            path = out_dir / f"cnn2d_{name}_seed{s}.pt"
            save_state_dict(model, path)
            models[name].append(model)
            train_hist[name].append({"seed": s, "checkpoint": str(path), **hist})
    t_final_train = time.perf_counter() - t1

    t2 = time.perf_counter()
    test_rec = image_records(image_root, "Test")
    if sorted({r["class_name"] for r in test_rec}) != classes:
        raise DataError(f"{image_root}/Test: class folders differ from Train's {classes}")
    x_te, y_te = _arrays(test_rec, cfg)
    from .training import evaluate

    settings = {}
    for name in specs:
        probs, per_seed = [], []
        for s, model in zip(seeds, models[name]):
            _, acc, p = evaluate(model, x_te, y_te)
            probs.append(p)
            per_seed.append({"seed": s, **scores(y_te.numpy(), p.argmax(1), classes)})
        accs = [r["accuracy"] for r in per_seed]
        y_all = np.tile(y_te.numpy(), len(seeds))
        p_all = np.concatenate([p.argmax(1) for p in probs])
        ens = np.mean(probs, axis=0)
        settings[name] = {
            "augmentation": dict(dict(cfg.augmentations)[name]),
            "epochs": validation[name]["epochs"],
            "val_acc": validation[name]["val_acc_smoothed_at_epochs"],
            "val_acc_unsmoothed": validation[name]["val_acc_at_epochs"],
            "test_acc_per_seed": accs,
            "test_summary": seed_summary(accs),
            "test_per_seed": per_seed,
            "test_pooled": scores(y_all, p_all, classes),
            "test_ensemble": scores(y_te.numpy(), ens.argmax(1), classes),
            "train_histories": train_hist[name],
        }
        log(f"cnn2d: '{name}' test acc {np.mean(accs):.3f} ± {np.std(accs, ddof=1) if len(accs) > 1 else 0:.3f} "
            f"(seeds), ensemble {settings[name]['test_ensemble']['accuracy']:.3f}")
    t_test = time.perf_counter() - t2

    probe = build_model(n_classes, widths=cfg.widths, dropout=cfg.dropout)
    return {
        "classes": classes,
        "n_train": len(train_rec),
        "n_test": len(test_rec),
        "train_actors": sorted(set(actors)),
        "test_actors": sorted({r["actor"] for r in test_rec if r["actor"] is not None}),
        "image": image_choices(cfg),
        "model": {"widths": list(cfg.widths), "dropout": cfg.dropout, "n_parameters": n_parameters(probe),
                  "layers": "per block: conv3x3 (no bias) - batch norm - ReLU, 2x2 max-pool between blocks; "
                            "global average pool - dropout - linear"},
        "training": {"optimizer": "Adam", "loss": "cross-entropy", "batch_size": cfg.batch_size, "lr": cfg.lr,
                     "weight_decay": cfg.weight_decay, "label_smoothing": cfg.label_smoothing,
                     "max_epochs": cfg.max_epochs, "smooth_epochs": cfg.smooth_epochs, "val_seed": cfg.val_seed},
        "seeds": list(seeds),
        "validation": {
            "scheme": "leave-one-actor-out over the training actors; Test not used",
            "candidates": validation,
            "chosen": chosen,
            "rule": "setting with the highest smoothed mean validation accuracy; its epochs = argmax of that curve",
        },
        "chosen": chosen,
        "settings": settings,
        "timings_s": {"load_train_images": t_load_train, "validation": t_val,
                      "final_training": t_final_train, "test": t_test,
                      "total": time.perf_counter() - t_start,
                      "torch_threads": torch.get_num_threads()},
    }


def image_choices(cfg) -> dict:
    """How the images were made, in words and values, for the report."""
    return {
        "n_frames": cfg.n_frames,
        "frames": ("first 200 frames (3.0 s; zero padded when shorter, not needed here: clips have "
                   "207-319 frames): one pixel column is the same 15 ms x 4 in every image; resizing "
                   "whole clips to 50 columns would squeeze time by a different factor per clip")
        if cfg.n_frames else "whole clip resized to the input width",
        "fix_floor": cfg.fix_floor,
        "floor": ("spec bug fixed: ~160 mel filters below ~1.1 kHz are empty (all-zero rows), so the spec's "
                  "min of log(X + 1e-9) is the constant log(1e-9) = -20.7, not the signal; min-max is taken "
                  "over X > 0 and zero entries (empty filters, padding, digital silence) are set to that minimum")
        if cfg.fix_floor else "spec's plain min-max of log(X + 1e-9)",
        "dynamic_range": cfg.dynamic_range,
        "orientation": ("flipped: lowest mel band at the bottom row (image row 0 = highest band), as in a "
                        "spectrogram plot") if cfg.low_at_bottom else "not flipped: lowest mel band at row 0 (top)",
        "size_hw": list(cfg.size_hw),
        "interpolation": f"cv2 INTER_{cfg.interpolation.upper()} (pixel-area averaging: right for shrinking "
                         "3401x200 to 150x50)" if cfg.interpolation == "area" else f"cv2 {cfg.interpolation}",
        "normalise": "grey, /255 to [0, 1], then (v - 0.5) / 0.5 to [-1, 1] (the spec's Normalize(0.5, 0.5))",
    }


def load_checkpoint(path, cfg=None, n_classes: int = 4):
    """A trained model from a ``state_dict`` file (``weights_only=True``)."""
    import torch

    from .config import CONFIG

    cfg = cfg or CONFIG.cnn2d
    model = build_model(n_classes, widths=cfg.widths, dropout=cfg.dropout)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
