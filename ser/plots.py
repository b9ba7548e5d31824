"""Plot helpers: each takes ``ax=None`` and returns the axes, so the build and
a notebook can both use them. Saving is separate (:func:`save_figure`)."""
from __future__ import annotations

import numpy as np


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 8, "svg.fonttype": "none",
                         "axes.titlesize": 8, "axes.labelsize": 8})
    return plt


def save_figure(fig, path, *, dpi: int = 200) -> None:
    """Save atomically (SVG keeps text as text; PNG at ``dpi``)."""
    from .io import atomic_path

    plt = _mpl()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])
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


def plot_confusion(cm, classes, *, ax=None, title: str = ""):
    """Counts with the row-normalised percentage; rows true, columns predicted."""
    plt = _mpl()
    if ax is None:
        _, ax = plt.subplots(figsize=(2.4, 2.2))
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{100 * frac[i, j]:.0f}%", ha="center", va="center", fontsize=6.5,
                    color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax


def plot_accuracy_bars(labels, groups: dict, *, ax=None, chance: float | None = None, ylabel="test accuracy"):
    """Grouped bars with 95% interval whiskers.

    ``groups`` maps a series name to a list of ``(accuracy, (lo, hi))``, one per label.
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
        ax.axhline(100 * chance, color="gray", ls=":", lw=0.8, label="chance")
    ax.set_xticks(x, labels)
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=n + 1, loc="upper right", frameon=False)
    return ax
