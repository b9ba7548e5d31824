"""Axes-level plot helpers: each takes ``ax=None`` and returns the axes, so the
build and a notebook can both use them. Saving is separate (:func:`save_figure`);
the report's figures, one function each, are in :mod:`ser.report.figures`.

matplotlib is set up in one place, :func:`_mpl`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ser.data.dataset import SPLITS

METRICS = ("loss", "acc")


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # a fixed hash salt: SVG element ids, and so the file, depend on the figure alone
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 8, "svg.fonttype": "none",
                         "axes.titlesize": 8, "axes.labelsize": 8, "svg.hashsalt": "ser-report"})
    return plt


def save_figure(fig, path, *, dpi: int = 200) -> None:
    """Save atomically (SVG keeps text as text; PNG at ``dpi``).

    Equal figures give equal bytes (no date in the SVG, fixed ids), so doit's
    checksums stop a re-run at the figure when nothing in it changed.
    """
    from ser.io import atomic_path

    plt = _mpl()
    fmt = str(path).rsplit(".", 1)[-1]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)


def plot_mel_db(S_power: np.ndarray, *, sr_hz: int, hop_length: int, fmax_hz: float | None = None,
                ax=None, title: str = "", mark_frame: int | None = None, top_db: float = 80.0):
    """Mel power spectrogram in dB (re. its maximum), time in s, frequency in Hz on a mel axis.

    ``mark_frame`` draws a line where the features stop reading (frame 200).
    """
    import librosa
    import librosa.display

    plt = _mpl()
    if ax is None:
        _, ax = plt.subplots()
    S_db = librosa.power_to_db(S_power, ref=np.max, top_db=top_db)
    img = librosa.display.specshow(S_db, sr=sr_hz, hop_length=hop_length, x_axis="time", y_axis="mel",
                                   fmax=fmax_hz or sr_hz / 2, ax=ax, cmap="magma")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4))
    if mark_frame is not None:
        ax.axvline(mark_frame * hop_length / sr_hz, color="w", ls="--", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, mel scale)")
    return ax, img


def plot_confusion(cm, classes, *, ax=None, title: str = "", xticklabels: bool = True, yticklabels: bool = True):
    """Counts with the row-normalised percentage; rows true, columns predicted.

    Sized to the classes: with more than four, the cell text and the tick
    labels are smaller and the predicted classes' names are slanted.
    ``xticklabels``/``yticklabels`` False leave a panel's class names to its
    neighbours (a grid of matrices names them once per row and column).
    """
    plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(2.4, 2.2))
    cm = np.asarray(cm)
    n = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
    cell_font = 6.5 if n <= 4 else max(4.0, 6.5 * 4.5 / n)
    tick_font = 8 if n <= 4 else 6.5
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{100 * frac[i, j]:.0f}%", ha="center", va="center", fontsize=cell_font,
                    linespacing=1.0 if n > 4 else 1.2, color="white" if frac[i, j] > 0.6 else "black")
    slant = n > 4 and max(len(str(c)) for c in classes) * n > 28
    ax.set_xticks(range(n), classes if xticklabels else [""] * n, rotation=40 if slant else 0,
                  ha="right" if slant else "center", rotation_mode="anchor", fontsize=tick_font)
    ax.set_yticks(range(n), classes if yticklabels else [""] * n, fontsize=tick_font)
    ax.set_xlabel("predicted" if xticklabels else "")
    ax.set_ylabel("true" if yticklabels else "")
    ax.set_title(title)
    return ax


def plot_accuracy_bars(labels, groups: dict, *, ax=None, chance: float | None = None, ylabel="test accuracy",
                       chance_label: str = "chance", legend: bool = True):
    """Grouped bars with 95% interval whiskers.

    ``groups`` maps a series name to a list of ``(accuracy, (lo, hi))``, one per label;
    ``chance`` (a rate) draws a dotted line named ``chance_label``. ``legend``
    False leaves the legend to the caller (one for several panels).
    """
    plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 2.4))
    n = len(groups)
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, (name, vals) in enumerate(groups.items()):
        acc = np.array([v[0] for v in vals])
        lo = np.array([v[1][0] for v in vals])
        hi = np.array([v[1][1] for v in vals])
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, 100 * acc, width, label=name)
        ax.errorbar(pos, 100 * acc, yerr=[100 * (acc - lo), 100 * (hi - acc)], fmt="none", ecolor="k", lw=0.8, capsize=2)
    if chance is not None:
        ax.axhline(100 * chance, color="gray", ls=":", lw=0.8, label=chance_label)
    ax.set_xticks(x, labels)
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_ylim(0, 100)
    if legend:
        ax.legend(fontsize=7, ncol=n + 1, loc="upper right", frameon=False)
    return ax


# ------------------------------------------------------------ learning curves

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
        One per run (seed or fold), as returned by :func:`ser.models.training.fit`.
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
        _, ax = _mpl().subplots(figsize=(3.4, 2.4))
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
        _, axes = _mpl().subplots(1, 2, figsize=(6.8, 2.4))
    plot_curve(histories, "loss", ax=axes[0], band=band, mark_epoch=mark_epoch,
               title=f"{title} loss".strip())
    plot_curve(histories, "acc", ax=axes[1], band=band, mark_epoch=mark_epoch,
               title=f"{title} accuracy".strip())
    return axes


# ------------------------------------------------------- spectrogram images

def example_records(records: Sequence[dict], *, per_class: int = 1) -> dict[tuple[str, str], list[dict]]:
    """The first ``per_class`` records of each (split, class), splits Train then Test.

    ``records`` as :func:`ser.features.images.export_images` or
    :func:`ser.data.dataset.image_records` return them.
    """
    out: dict[tuple[str, str], list[dict]] = {}
    for split in SPLITS:
        for r in records:
            if r["split"] == split:
                lst = out.setdefault((split, r["class_name"]), [])
                if len(lst) < per_class:
                    lst.append(r)
    return out


def plot_image_grid(records: Sequence[dict], *, fig=None, per_class: int = 1, low_at_bottom: bool = True):
    """Grid of exported images: one row per split, one column per class.

    Images are drawn as saved (row 0 at the top), in grey, 0 black to 255
    white; the y label says where the low frequencies are.

    Parameters
    ----------
    records : sequence of dict
        With ``split``, ``class_name`` and ``path`` (the PNG).
    fig : matplotlib figure, optional
    per_class : int
        Images per (split, class); extra ones go in extra rows.
    low_at_bottom : bool
        How the images were exported (for the axis label only).

    Returns
    -------
    fig
    """
    from ser.features.images import read_png

    ex = example_records(records, per_class=per_class)
    splits = [s for s in SPLITS if any(k[0] == s for k in ex)]
    classes = sorted({k[1] for k in ex})
    n_rows = len(splits) * per_class
    many = len(classes) > 4  # the grid keeps to a page's width: narrower panels, two-line titles
    if fig is None:
        fig = _mpl().figure(figsize=(min(1.7, 7.2 / len(classes)) * len(classes), (2.1 if many else 1.9) * n_rows))
    axes = fig.subplots(n_rows, len(classes), squeeze=False, gridspec_kw={"hspace": 0.45})
    for si, split in enumerate(splits):
        for ci, name in enumerate(classes):
            recs = ex.get((split, name), [])
            for k in range(per_class):
                ax = axes[si * per_class + k][ci]
                ax.set_xticks([])
                ax.set_yticks([])
                if k >= len(recs):
                    ax.axis("off")
                    continue
                img = read_png(recs[k]["path"])
                ax.imshow(img, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="antialiased")
                ax.set_title(f"{split}\n{name}" if many else f"{split} / {name}", fontsize="small")
                ax.set_xlabel(f"{img.shape[1]} frames", fontsize="x-small")
                if ci == 0:
                    ax.set_ylabel(f"{img.shape[0]} mel bands\n(low at {'bottom' if low_at_bottom else 'top'})",
                                  fontsize="x-small")
    return fig
