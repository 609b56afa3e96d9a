"""golden.rounding against exact rational reasoning with Fractions."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.rounding import ROUNDING_MODES, round_div, round_shift


def reference(value: Fraction, mode):
    """The mode's definition on an exact rational."""
    lower = math.floor(value)
    frac = value - lower
    if mode == "floor":
        return lower
    if mode == "toward_zero":
        return lower if value >= 0 else math.ceil(value)
    if frac != Fraction(1, 2):
        return lower + (frac > Fraction(1, 2))
    return {
        "half_up": lower + 1,
        "half_away_from_zero": lower + 1 if value > 0 else lower,
        "half_to_even": lower if lower % 2 == 0 else lower + 1,
    }[mode]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_every_small_quotient(mode):
    # every numerator in −64..64 over every divisor 1..16 and every shift 0..6
    xs = np.arange(-64, 65, dtype=np.int64)
    for d in range(1, 17):
        got = round_div(xs, d, mode)
        assert got.tolist() == [reference(Fraction(int(x), d), mode) for x in xs]
    for n in range(7):
        got = round_shift(xs, n, mode)
        assert got.tolist() == [reference(Fraction(int(x), 1 << n), mode) for x in xs]


def test_tie_patterns():
    # x/2 at ±0.5, ±1.5, ±2.5: what each mode's name promises
    ties = np.array([-5, -3, -1, 1, 3, 5], dtype=np.int64)
    expected = {
        "half_away_from_zero": [-3, -2, -1, 1, 2, 3],
        "half_to_even": [-2, -2, 0, 0, 2, 2],
        "half_up": [-2, -1, 0, 1, 2, 3],
        "floor": [-3, -2, -1, 0, 1, 2],
        "toward_zero": [-2, -1, 0, 0, 1, 2],
    }
    for mode, values in expected.items():
        assert round_shift(ties, 1, mode).tolist() == values
        assert round_div(ties, 2, mode).tolist() == values


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 62), (1 << 62)), st.integers(0, 62), st.sampled_from(ROUNDING_MODES))
def test_int64_extremes_and_python_ints(x, n, mode):
    expected = reference(Fraction(x, 1 << n), mode)
    assert round_shift(x, n, mode) == expected
    assert int(round_shift(np.array([x], dtype=np.int64), n, mode)[0]) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 100), 1 << 100), st.integers(1, 1 << 70),
       st.sampled_from(ROUNDING_MODES))
def test_wide_python_ints(x, d, mode):
    assert round_div(x, d, mode) == reference(Fraction(x, d), mode)


def test_per_element_shifts_broadcast():
    x = np.array([7, 7, 7, -7], dtype=np.int64)
    n = np.array([0, 1, 2, 2])
    assert round_shift(x, n, "half_to_even").tolist() == [7, 4, 2, -2]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_monotone_and_within_one(mode):
    xs = np.arange(-1000, 1001, dtype=np.int64)
    got = round_div(xs, 7, mode)
    assert (np.diff(got) >= 0).all()
    assert (np.abs(got * 7 - xs) < 7).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="rounding mode.*'nearest'"):
        round_shift(3, 1, "nearest")
    with pytest.raises(ValueError, match="shift n must be in 0..62; got -1"):
        round_shift(3, -1)
    with pytest.raises(ValueError, match="divisor d must be positive"):
        round_div(3, 0)
    with pytest.raises(TypeError, match="x must be integers"):
        round_shift(np.array([1.5]), 1)
