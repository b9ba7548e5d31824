"""The report templates' filters: numbers formatted for a reader, nothing computed.

``pct`` (a rate as a percentage), ``pct_interval`` (an interval of rates),
``num`` (a plain number), ``pvalue`` and ``seconds``. :func:`ser.report.render.make_env`
registers them under these names.
"""
from __future__ import annotations

from ser.errors import SerError


def _present(x, what: str):
    """``x``, or a :class:`SerError` when it is None or NaN (a report never prints 'nan')."""
    if x is None or x != x:  # NaN, of any float type, is the one value unequal to itself
        raise SerError(f"{what} to print is missing (None or NaN)")
    return x


def pct(x, digits: int = 1) -> str:
    """0.5468 -> '54.7%'."""
    x = _present(x, "a percentage")
    return f"{100 * x:.{digits}f}%"


def pct_interval(pair, digits: int = 1) -> str:
    """(0.45, 0.63) -> '45.0–63.0%'."""
    lo, hi = (_present(v, "a bound of an interval") for v in pair)
    return f"{100 * lo:.{digits}f}–{100 * hi:.{digits}f}%"


def num(x, digits: int = 2) -> str:
    x = _present(x, "a number")
    return f"{x:.{digits}g}" if abs(x) < 1e-2 or abs(x) >= 1e4 else f"{x:.{digits}f}"


def pvalue(p: float) -> str:
    """A p-value as a reader wants it: '= 0.020', '= 0.31', '< 0.001'."""
    p = _present(p, "a p-value")
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.1 else f"= {p:.2f}"


def seconds(x) -> str:
    x = _present(x, "a duration")
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"
