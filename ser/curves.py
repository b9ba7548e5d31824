"""Learning curves of several runs (seeds or folds): mean line with a band.

For any model trained with :func:`ser.training.fit`: pass its histories (dicts
with per-epoch ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``).
Plot helpers take ``ax=None`` and return the axes; saving is the caller's.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

METRICS = ("loss", "acc")


def moving_average(values: Sequence[float], width: int) -> np.ndarray:
    """Centred moving average over ``width`` epochs (the window shrinks at the
    ends), the same length as ``values``."""
    v = np.asarray(values, float)
    h = max(0, int(width) // 2)
    return np.array([v[max(0, i - h): i + h + 1].mean() for i in range(len(v))])


def curve_stats(histories: Sequence[dict], key: str) -> dict | None:
    """Mean, standard deviation, min and max per epoch of ``key`` over runs.

    Runs of different lengths are cut to the shortest. Returns None when no
    run has values for ``key`` (e.g. ``val_loss`` of a run without validation).

    Returns
    -------
    dict with ``epoch`` (1-based), ``mean``, ``std``, ``min``, ``max``, lists of
    the same length, and ``n_runs``.
    """
    runs = [list(h.get(key) or []) for h in histories]
    runs = [r for r in runs if r]
    if not runs:
        return None
    n = min(len(r) for r in runs)
    a = np.asarray([r[:n] for r in runs], float)
    return {
        "epoch": list(range(1, n + 1)),
        "mean": a.mean(0).tolist(),
        "std": (a.std(0, ddof=1) if len(a) > 1 else np.zeros(n)).tolist(),
        "min": a.min(0).tolist(),
        "max": a.max(0).tolist(),
        "n_runs": len(a),
    }


def plot_curve(histories: Sequence[dict], metric: str = "loss", *, ax=None, title: str = "",
               band: str = "std", mark_epoch: int | None = None):
    """Train and validation ``metric`` per epoch: mean over runs, band around it.

    Parameters
    ----------
    histories : sequence of dict
        One per run (seed or fold), as returned by :func:`ser.training.fit`.
    metric : {"loss", "acc"}
    ax : matplotlib axes, optional
    band : {"std", "range"}
        Shade mean +- one standard deviation over runs, or min..max.
    mark_epoch : int, optional
        Draw a vertical line there (e.g. the epoch picked by validation).

    Returns
    -------
    ax
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    if ax is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(3.4, 2.4))
    for split, colour in (("train", "C0"), ("val", "C1")):
        st = curve_stats(histories, f"{split}_{metric}")
        if st is None:
            continue
        ep, mu = np.asarray(st["epoch"]), np.asarray(st["mean"])
        if band == "range":
            lo, hi = np.asarray(st["min"]), np.asarray(st["max"])
        else:
            sd = np.asarray(st["std"])
            lo, hi = mu - sd, mu + sd
        name = "training" if split == "train" else "validation"
        ax.plot(ep, mu, color=colour, lw=1.2, label=f"{name} (mean of {st['n_runs']})")
        if st["n_runs"] > 1:
            ax.fill_between(ep, lo, hi, color=colour, alpha=0.2, lw=0)
    if mark_epoch is not None:
        ax.axvline(mark_epoch, color="0.4", ls="--", lw=0.8, label=f"epoch {mark_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy" if metric == "loss" else "accuracy")
    if metric == "acc":
        ax.set_ylim(0, 1)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_learning_curves(histories: Sequence[dict], *, axes=None, title: str = "",
                         band: str = "std", mark_epoch: int | None = None):
    """Loss and accuracy side by side (:func:`plot_curve` twice); returns the two axes."""
    if axes is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(6.8, 2.4))
    plot_curve(histories, "loss", ax=axes[0], band=band, mark_epoch=mark_epoch,
               title=f"{title} loss".strip())
    plot_curve(histories, "acc", ax=axes[1], band=band, mark_epoch=mark_epoch,
               title=f"{title} accuracy".strip())
    return axes
