"""Figures of the exported spectrogram images (report item e).

Learning curves of the 2D CNN use :mod:`ser.curves` (the generic helper for any
``ser.training.fit`` history): e.g. ``plot_learning_curves(result["validation"]
["candidates"][name]["folds"])`` for the validation folds of one setting.
"""
from __future__ import annotations

from typing import Sequence


def example_records(records: Sequence[dict], *, per_class: int = 1) -> dict[tuple[str, str], list[dict]]:
    """The first ``per_class`` records of each (split, class), splits Train then Test.

    ``records`` as :func:`ser.images.export_images` or
    :func:`ser.cnn2d.image_records` return them.
    """
    out: dict[tuple[str, str], list[dict]] = {}
    for split in ("Train", "Test"):
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
    from .images import read_png

    ex = example_records(records, per_class=per_class)
    splits = [s for s in ("Train", "Test") if any(k[0] == s for k in ex)]
    classes = sorted({k[1] for k in ex})
    n_rows = len(splits) * per_class
    if fig is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(1.7 * len(classes), 1.9 * n_rows))
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
                ax.set_title(f"{split} / {name}", fontsize="small")
                ax.set_xlabel(f"{img.shape[1]} frames", fontsize="x-small")
                if ci == 0:
                    ax.set_ylabel(f"{img.shape[0]} mel bands\n(low at {'bottom' if low_at_bottom else 'top'})",
                                  fontsize="x-small")
    return fig
