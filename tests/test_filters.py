"""The report's filters (ser/report/filters.py), pinned at their edges.

Each filter turns one number of a results file into the text a reader sees;
these tests pin the text on both sides of every switch of format, and that a
missing number (None or NaN) stops the build instead of printing "nan".
"""
import math

import numpy as np
import pytest

from ser.errors import SerError
from ser.report.filters import num, pct, pct_interval, pvalue, seconds


@pytest.mark.parametrize("x, digits, text", [
    (0.0, 1, "0.0%"),
    (1.0, 1, "100.0%"),
    (1.0, 0, "100%"),
    (0.0, 0, "0%"),
    (0.5468, 1, "54.7%"),
    (0.5468, 0, "55%"),
    (0.125, 2, "12.50%"),
    (0.546875, 3, "54.688%"),
])
def test_pct_prints_a_rate_as_a_percentage_with_the_digits_asked(x, digits, text):
    assert pct(x, digits) == text


def test_pct_defaults_to_one_decimal():
    assert pct(0.25) == "25.0%"


@pytest.mark.parametrize("pair, digits, text", [
    ((0.45, 0.63), 1, "45.0–63.0%"),
    ((0.45, 0.63), 0, "45–63%"),  # digits on the lower bound and on the upper one
    ((0.125, 0.625), 2, "12.50–62.50%"),
    ((0.0, 1.0), 1, "0.0–100.0%"),  # the whole range
    ((0.0, 1.0), 0, "0–100%"),
    ((0.5, 0.5), 1, "50.0–50.0%"),  # equal bounds keep both
    ((0.0, 0.0), 0, "0–0%"),
])
def test_pct_interval_formats_both_bounds_alike_with_one_percent_sign(pair, digits, text):
    assert pct_interval(pair, digits) == text


def test_pct_interval_keeps_the_order_it_is_given():
    assert pct_interval((0.25, 0.75)) == "25.0–75.0%"
    assert pct_interval([0.75, 0.25]) == "75.0–25.0%"  # a list, as JSON gives it


@pytest.mark.parametrize("p, text", [
    (0.0, "< 0.001"),
    (0.000999, "< 0.001"),
    (0.001, "= 0.001"),  # the threshold itself is printed as a value
    (0.00149, "= 0.001"),
    (0.0213, "= 0.021"),
    (0.0999, "= 0.100"),  # below 0.1: three decimals
    (0.1, "= 0.10"),  # from 0.1 on: two
    (0.1049, "= 0.10"),
    (0.31, "= 0.31"),
    (1.0, "= 1.00"),
])
def test_pvalue_below_0_001_is_bounded_below_0_1_three_decimals_then_two(p, text):
    assert pvalue(p) == text


@pytest.mark.parametrize("x, text", [
    (0.0, "0 s"),
    (0.4, "0 s"),
    (59.6, "60 s"),
    (119.4, "119 s"),
    (120.0, "2.0 min"),  # from two minutes on, minutes
    (121.0, "2.0 min"),
    (126.0, "2.1 min"),
    (1276.0, "21.3 min"),
    (3600.0, "60.0 min"),
])
def test_seconds_switch_to_minutes_at_two_minutes(x, text):
    assert seconds(x) == text


@pytest.mark.parametrize("x, digits, text", [
    (0.0, 2, "0"),  # below 1e-2: significant digits
    (0.0099, 2, "0.0099"),
    (0.001234, 2, "0.0012"),
    (-0.005, 2, "-0.005"),
    (0.01, 2, "0.01"),  # from 1e-2 on: fixed decimals
    (0.01, 3, "0.010"),  # (fixed, not significant, digits at 1e-2 itself)
    (0.0123, 2, "0.01"),
    (0.0123, 3, "0.012"),
    (-0.01, 3, "-0.010"),
    (-3.14159, 2, "-3.14"),  # negative numbers by their size
    (3.14159, 2, "3.14"),
    (3.14159, 0, "3"),
    (9999.5, 1, "9999.5"),  # below 1e4: fixed decimals
    (10000.0, 2, "1e+04"),  # from 1e4 on: significant digits
    (12345.0, 3, "1.23e+04"),
    (-12345.0, 2, "-1.2e+04"),
])
def test_num_uses_fixed_decimals_between_1e_2_and_1e4_and_significant_digits_outside(x, digits, text):
    assert num(x, digits) == text


def test_num_defaults_to_two_digits():
    assert num(0.5) == "0.50" and num(0.005) == "0.005"


MISSING = [None, float("nan"), np.float64("nan"), np.float32("nan")]


@pytest.mark.parametrize("x", MISSING, ids=["None", "nan", "np.float64-nan", "np.float32-nan"])
@pytest.mark.parametrize("fmt, what", [(pct, "a percentage"), (num, "a number"), (pvalue, "a p-value"),
                                       (seconds, "a duration")], ids=["pct", "num", "pvalue", "seconds"])
def test_a_missing_number_stops_the_build_saying_what_is_missing(fmt, what, x):
    with pytest.raises(SerError, match=rf"^{what} to print is missing \(None or NaN\)$"):
        fmt(x)


@pytest.mark.parametrize("pair", [(None, 0.5), (0.5, None), (math.nan, 0.5), (0.5, math.nan)])
def test_an_interval_with_a_missing_bound_stops_the_build(pair):
    with pytest.raises(SerError, match=r"^a bound of an interval to print is missing \(None or NaN\)$"):
        pct_interval(pair)
