"""A plain training loop shared by the 1D and 2D CNNs.

``fit`` takes a model, tensors and a :class:`TrainConfig` and returns the
per-epoch history as plain data. CPU by default, CUDA when present; fixed
seeds and deterministic algorithms, so a re-run gives the same numbers.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    label_smoothing: float = 0.0


def device():
    """CUDA when present, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def environment() -> dict:
    """What, besides the code and the data, makes torch give other numbers:
    its version, the device (and GPU), the CPU kernels it uses and the
    environment variables that pin them (``dodo.py``). Part of a run's cache
    key (:mod:`ser.models.runs`)."""
    import os

    import torch

    from ser.models.runs import PIN_VARS

    dev = device()
    return {"torch": torch.__version__, "device": dev.type,
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "cuda": torch.version.cuda if dev.type == "cuda" else None,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "pins": {k: os.environ.get(k) for k in PIN_VARS}}


def model_arrays(model) -> dict[str, np.ndarray]:
    """A model's ``state_dict`` as numpy arrays (copies on the CPU)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_model_arrays(model, arrays: dict[str, np.ndarray]):
    """``model`` with the weights of :func:`model_arrays`, on :func:`device`."""
    import torch

    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    return model.to(device())


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic kernels."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def evaluate(model, x, y, *, batch_size: int = 64) -> tuple[float, float, np.ndarray]:
    """Mean cross-entropy, accuracy and class probabilities of ``model`` on (x, y).

    ``x`` is a float tensor [n, ...], ``y`` a long tensor [n] (or None).
    """
    import torch
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    model.eval()
    probs = []
    loss_sum = 0.0
    with torch.no_grad():
        for idx in _batches(len(x), batch_size, None):
            logits = model(x[idx].to(dev))
            probs.append(torch.softmax(logits, dim=1).cpu())
            if y is not None:
                loss_sum += F.cross_entropy(logits, y[idx].to(dev), reduction="sum").item()
    p = torch.cat(probs).numpy()
    if y is None:
        return float("nan"), float("nan"), p
    acc = float((p.argmax(1) == y.numpy()).mean())
    return loss_sum / len(x), acc, p


def view_scores(model, xs, y, *, batch_size: int = 64) -> tuple[float, float]:
    """Loss and accuracy of one validation view: the class probabilities of
    the tensors ``xs`` (the same clips in several forms, e.g. shifted copies)
    averaged, the loss the mean of ``-log`` of the true class's averaged
    probability (floored at 1e-12), ``y`` a long tensor [n]."""
    import torch
    import torch.nn.functional as F

    prob = torch.stack([torch.from_numpy(evaluate(model, x, None, batch_size=batch_size)[2]) for x in xs]).mean(0)
    y = torch.as_tensor(y).cpu()
    return float(F.nll_loss(torch.log(prob.clamp_min(1e-12)), y)), float((prob.argmax(1) == y).float().mean())


def fit(
    model,
    x_train,
    y_train,
    cfg: TrainConfig,
    *,
    seed: int,
    x_val=None,
    y_val=None,
    augment: Callable | None = None,
    mix: Callable | None = None,
    log: Callable[[str], None] | None = None,
    label: str = "",
    train_device=None,
    val_views: dict | None = None,
    mix_groups=None,
    deadline: float | None = None,
) -> dict:
    """Train ``model`` with Adam and cross-entropy; return its history.

    Parameters
    ----------
    model : torch.nn.Module
        Initialised by the caller (after :func:`seed_everything`).
    x_train, y_train : torch.Tensor
        Inputs [n, ...] and class indices [n].
    cfg : TrainConfig
    seed : int
        Seeds the batch order and ``augment``'s generator.
    x_val, y_val : torch.Tensor, optional
        Evaluated after every epoch when given.
    augment : callable(x_batch, generator) -> x_batch, optional
        Applied to each training batch (on the CPU, before moving to device).
    mix : callable(x_batch, y_onehot, generator) -> (x_batch, y_soft), optional
        Applied after ``augment`` for augmentations that change the targets
        too (mixup); the loss then uses the soft targets ``y_soft`` [b, classes].
        Training accuracy is still counted against the batch's own labels.
    log : callable(str), optional
        Progress lines, one per epoch (default: stderr).
    train_device : torch.device or str, optional
        Where the model trains (default: :func:`device`, CUDA when present).
    val_views : dict, optional
        ``{name: [x_val tensors]}``, each tensor holding the clips of
        ``y_val`` in one form (e.g. shifted copies): after every epoch a
        view's class probabilities are the mean over its tensors
        (test-time averaging), scored by :func:`view_scores`.
    mix_groups : array-like [shape=(n_train,)], optional
        Each training clip's group (e.g. speaker), passed to ``mix`` as
        ``groups=`` for the batch's clips (``ser.models.augment.mixup``:
        partners from another group).
    deadline : float, optional
        A ``time.time()``: training stops after the epoch that ends past it,
        and the history records ``aborted_at_epoch``.

    Returns
    -------
    dict with lists ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``
    (one value per epoch; the val lists are empty without validation data),
    ``val_proba`` (the validation class probabilities after each epoch, an
    array [shape=(n_epochs, n_val, n_classes)], for ensembles of runs; not
    JSON: the protocol drops it) and ``seconds``; with ``val_views``,
    ``val_views``: ``{name: {"loss": [...], "acc": [...]}}``.
    """
    import torch
    import torch.nn.functional as F

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    dev = device() if train_device is None else torch.device(train_device)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    hist = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    groups = None if mix_groups is None else torch.as_tensor(np.asarray(mix_groups))
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        loss_sum, correct = 0.0, 0
        for idx in _batches(len(x_train), cfg.batch_size, rng):
            xb, yb = x_train[idx], y_train[idx]
            if augment is not None:
                xb = augment(xb, gen)
            target = yb
            if mix is not None:
                n_classes = int(y_train.max()) + 1 if len(y_train) else 1
                kw = {} if mix_groups is None else {"groups": groups[torch.from_numpy(idx)]}
                xb, target = mix(xb, F.one_hot(yb, n_classes).float(), gen, **kw)
            xb, yb, target = xb.to(dev), yb.to(dev), target.to(dev)
            opt.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, target, label_smoothing=cfg.label_smoothing)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        hist["train_loss"].append(loss_sum / len(x_train))
        hist["train_acc"].append(correct / len(x_train))
        msg = f"{label} epoch {epoch + 1}/{cfg.epochs} loss {hist['train_loss'][-1]:.3f} acc {hist['train_acc'][-1]:.3f}"
        if x_val is not None:
            vl, va, p = evaluate(model, x_val, y_val)
            hist["val_loss"].append(vl)
            hist["val_acc"].append(va)
            hist.setdefault("val_proba", []).append(p.astype(np.float32))
            msg += f" | val loss {vl:.3f} acc {va:.3f}"
        for name, xs in (val_views or {}).items():
            vl, va = view_scores(model, xs, y_val)
            scored = hist.setdefault("val_views", {}).setdefault(name, {"loss": [], "acc": []})
            scored["loss"].append(vl)
            scored["acc"].append(va)
            msg += f" | {name} loss {vl:.3f} acc {va:.3f}"
        log(msg)
        if deadline is not None and time.time() > deadline:
            hist["aborted_at_epoch"] = epoch + 1
            break
    hist["seconds"] = time.perf_counter() - t0
    if "val_proba" in hist:
        hist["val_proba"] = np.stack(hist["val_proba"])
    return hist
