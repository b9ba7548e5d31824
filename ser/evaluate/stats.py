"""Paired evidence for two classifiers scored on the same clips, and error breakdowns.

Two models scored on the same test clips are compared clip by clip: the exact
McNemar test counts the clips only one of them gets right, and the paired
bootstrap resamples clips (the same clips for both models) to give an interval
for the accuracy difference. Both are far sharper than comparing two separate
accuracy intervals, because most clips are right (or wrong) under both models.

Every function takes arrays and returns plain data (floats, ints, lists,
dicts with string keys), ready for JSON.
"""
from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from ser.data.dataset import RAVDESS_NAME

INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}

_CHUNK_ELEMENTS = 2_000_000  # resampled indices held at once (16 MB of int64)


def _vector(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _correct(x, name: str) -> np.ndarray:
    """A 1-D array of booleans (``bool`` or 0/1 values) as ``bool``."""
    a = _vector(x, name)
    if a.dtype != bool:
        if a.size and not (np.issubdtype(a.dtype, np.number) and np.isin(a, (0, 1)).all()):
            raise ValueError(f"{name} must be boolean (True/False or 0/1): is clip i correct")
        a = a.astype(bool)
    return a


def _pair(correct_a, correct_b) -> tuple[np.ndarray, np.ndarray]:
    a = _correct(correct_a, "correct_a")
    b = _correct(correct_b, "correct_b")
    if len(a) != len(b):
        raise ValueError(f"correct_a and correct_b differ in length ({len(a)} != {len(b)})")
    return a, b


def mcnemar_exact(correct_a, correct_b) -> dict:
    """Exact (binomial) two-sided McNemar test of two models on the same clips.

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (n,)
        Whether clip ``i`` is classified correctly by model A / model B.

    Returns
    -------
    dict
        ``{"a_only": n10, "b_only": n01, "p": p}``: the clips only A gets
        right, the clips only B gets right, and the two-sided exact p-value
        ``min(1, 2 P(X <= min(n01, n10)))`` with ``X ~ Binomial(n01 + n10, 1/2)``
        (1.0 when there are no discordant clips).

    Raises
    ------
    ValueError
        When an input is not 1-D, not boolean, or the lengths differ.
    """
    from scipy import stats

    a, b = _pair(correct_a, correct_b)
    a_only = int(np.count_nonzero(a & ~b))
    b_only = int(np.count_nonzero(b & ~a))
    m = a_only + b_only
    p = 1.0 if m == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(a_only, b_only), m, 0.5)))
    return {"a_only": a_only, "b_only": b_only, "p": p}


def _resampled_sums(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of ``d`` over ``n_boot`` resamples (with replacement) of its entries: shape (n_boot,)."""
    n = len(d)
    out = np.empty(n_boot, dtype=np.int64)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = d[idx].sum(axis=1)
    return out


def paired_bootstrap(correct_a, correct_b, *, n_boot: int = 10000, level: float = 0.95, seed: int = 0,
                     strata=None) -> dict:
    """Accuracy difference A minus B with a paired percentile bootstrap interval.

    Each resample draws clips with replacement and scores both models on the
    same drawn clips, so what the two models share (clips both get right or
    both get wrong) does not widen the interval.

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (n,)
        Whether clip ``i`` is classified correctly by model A / model B.
    n_boot : int
        Number of resamples.
    level : float
        Coverage of the interval, in (0, 1).
    seed : int
        Seed of ``np.random.default_rng``; the result is a function of the
        inputs and the seed.
    strata : array_like, shape (n,), optional
        Group label of each clip (e.g. the split). When given, each resample
        draws within every group as many clips as it has, so a pooled
        comparison keeps each group's share.

    Returns
    -------
    dict
        ``{"diff": d, "ci": [lo, hi], "n": n, "n_boot": n_boot, "level": level}``
        with ``d = acc_a - acc_b`` in fraction units (0.078, not 7.8), plus
        ``"strata": {str(label): size}`` (sorted by label) when ``strata`` is given.

    Raises
    ------
    ValueError
        On inputs that are not 1-D or boolean, lengths that differ, no clips,
        ``n_boot < 1`` or ``level`` outside (0, 1).
    """
    a, b = _pair(correct_a, correct_b)
    n = len(a)
    if n == 0:
        raise ValueError("no clips: correct_a and correct_b are empty")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    n_boot = int(n_boot)
    d = a.astype(np.int64) - b.astype(np.int64)  # per clip: +1 only A right, -1 only B right, 0 otherwise
    rng = np.random.default_rng(seed)
    out = {}
    if strata is None:
        sums = _resampled_sums(d, n_boot, rng)
    else:
        s = _vector(strata, "strata")
        if len(s) != n:
            raise ValueError(f"strata differs in length from correct_a ({len(s)} != {n})")
        labels, group = np.unique(s, return_inverse=True)
        sums = np.zeros(n_boot, dtype=np.int64)
        for g in range(len(labels)):
            sums += _resampled_sums(d[group == g], n_boot, rng)
        out["strata"] = {str(lab): int(np.count_nonzero(group == g)) for g, lab in enumerate(labels)}
    diff = float(np.count_nonzero(a) / n - np.count_nonzero(b) / n)
    tail = (1 - level) / 2
    lo, hi = np.quantile(sums / n, [tail, 1 - tail])
    return {"diff": diff, "ci": [float(lo), float(hi)], "n": n, "n_boot": n_boot, "level": float(level), **out}


def compare_paired(y_true, pred_a, pred_b, *, n_boot: int = 10000, level: float = 0.95, seed: int = 0,
                   strata=None) -> dict:
    """Compare two models' predictions on the same clips: accuracies, McNemar, paired bootstrap.

    Parameters
    ----------
    y_true, pred_a, pred_b : array_like, shape (n,)
        True labels and the labels predicted by model A and model B.
    n_boot, level, seed, strata
        As in :func:`paired_bootstrap`.

    Returns
    -------
    dict
        ``{"n", "acc_a", "acc_b", "diff", "ci", "n_boot", "level", "a_only",
        "b_only", "p"}`` (and ``"strata"`` when given): the accuracies, the
        :func:`paired_bootstrap` result (``diff == acc_a - acc_b``) and the
        :func:`mcnemar_exact` result.

    Raises
    ------
    ValueError
        When an array is not 1-D, the lengths differ, or there are no clips.
    """
    y = _vector(y_true, "y_true")
    pa = _vector(pred_a, "pred_a")
    pb = _vector(pred_b, "pred_b")
    if not len(y) == len(pa) == len(pb):
        raise ValueError(f"y_true, pred_a and pred_b differ in length ({len(y)}, {len(pa)}, {len(pb)})")
    ca, cb = pa == y, pb == y
    boot = paired_bootstrap(ca, cb, n_boot=n_boot, level=level, seed=seed, strata=strata)
    n = boot["n"]
    return {"n": n, "acc_a": float(np.count_nonzero(ca) / n), "acc_b": float(np.count_nonzero(cb) / n),
            **boot, **mcnemar_exact(ca, cb)}


def ravdess_factors(key_or_name: str) -> dict | None:
    """The recording factors of a RAVDESS clip, from its name.

    Parameters
    ----------
    key_or_name : str
        A file name ``03-01-EE-II-SS-RR-AA.wav`` or a key ending in one
        (``Test/Angry/03-01-05-02-01-01-05.wav``).

    Returns
    -------
    dict or None
        ``{"intensity": "normal" | "strong", "statement": "Kids are talking by
        the door" | "Dogs are sitting by the door", "speaker": int}``, or None
        when the name is not a RAVDESS name (or has an unknown intensity or
        statement code).
    """
    base = PurePosixPath(str(key_or_name).replace("\\", "/")).name
    m = RAVDESS_NAME.match(base)
    if not m or m.group(4) not in INTENSITIES or m.group(5) not in STATEMENTS:
        return None
    return {"intensity": INTENSITIES[m.group(4)], "statement": STATEMENTS[m.group(5)], "speaker": int(m.group(7))}


def accuracy_by_factor(keys, y_true, y_pred) -> dict | None:
    """Accuracy per intensity and per statement of RAVDESS clips.

    Parameters
    ----------
    keys : sequence of str, length n
        Clip keys or file names (see :func:`ravdess_factors`).
    y_true, y_pred : array_like, shape (n,)
        True and predicted labels.

    Returns
    -------
    dict or None
        ``{"intensity": {level: {"accuracy": a, "n": n, "correct": k}},
        "statement": {...}}`` over the levels present, in sorted order; None
        when any key is not a RAVDESS name.

    Raises
    ------
    ValueError
        When an array is not 1-D or the lengths differ.
    """
    y = _vector(y_true, "y_true")
    p = _vector(y_pred, "y_pred")
    keys = list(keys)
    if not len(keys) == len(y) == len(p):
        raise ValueError(f"keys, y_true and y_pred differ in length ({len(keys)}, {len(y)}, {len(p)})")
    factors = [ravdess_factors(k) for k in keys]
    if any(f is None for f in factors):
        return None
    correct = p == y
    out = {}
    for factor in ("intensity", "statement"):
        values = np.array([f[factor] for f in factors], dtype=object)
        out[factor] = {}
        for v in sorted(set(values)):
            sel = values == v
            k, n = int(np.count_nonzero(correct[sel])), int(np.count_nonzero(sel))
            out[factor][v] = {"accuracy": k / n, "n": n, "correct": k}
    return out
