"""Scores and their uncertainty, as plain data for the results files."""
from __future__ import annotations

import math

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows true class, columns predicted class: [n_classes, n_classes]."""
    m = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(m, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return m


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Interval for the mean of ``values`` (Student t): the spread over seeds."""
    from scipy import stats

    v = np.asarray(values, float)
    if len(v) < 2:
        return (float(v.mean()), float(v.mean()))
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return (float(v.mean() - half), float(v.mean() + half))


def scores(y_true, y_pred, class_names) -> dict:
    """Accuracy with its 95% Wilson interval, UAR, per-class recall, confusion.

    Returns plain Python types, ready for JSON.
    """
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    n_classes = len(class_names)
    cm = confusion(y_true, y_pred, n_classes)
    k, n = int(np.trace(cm)), int(cm.sum())
    support = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(n_classes), where=support > 0)
    lo, hi = wilson_interval(k, n)
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n,
        "accuracy_ci95": [lo, hi],
        "uar": float(recall.mean()),
        "recall": {c: float(r) for c, r in zip(class_names, recall)},
        "confusion": cm.tolist(),
        "classes": list(class_names),
    }


def seed_summary(accuracies) -> dict:
    """Mean, standard deviation (ddof=1) and t-interval of per-seed accuracies."""
    a = np.asarray(accuracies, float)
    lo, hi = t_interval(a)
    return {
        "per_seed": a.tolist(),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "mean_ci95": [lo, hi],
    }
