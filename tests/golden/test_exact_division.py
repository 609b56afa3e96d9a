"""golden.exact_division against Fraction arithmetic: exhaustive on small widths (with narrow
M0 ranges, where the proof's condition is tight), at the edges of the bound, and hypothesis
at the hardware's ranges."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.exact_division import (
    M0_RANGE,
    SHIFT_RANGE,
    exact_divider,
    reciprocal_is_exact,
)


def nearest_away(value):
    """round(value), ties away from zero, of a Fraction."""
    magnitude = (abs(value.numerator) * 2 + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude


def multiply_shift(a, c, k):
    """round(a·c / 2^k), ties away from zero, in Fractions."""
    return nearest_away(Fraction(a * c, 1 << k))


@pytest.mark.parametrize("s", range(1, 41))
def test_exhaustive_small_widths(s):
    """8-bit M0 (c in [2^7, 2^8 − 1], k ≤ 20): every accepted bound divides every
    |a| ≤ bound exactly, and the next bound up is refused or still exact."""
    m0_range, shift_range = (1 << 7, (1 << 8) - 1), (31 - 20, 31 - 1)
    for bound in (0, 1, 7, 63, 255, 1023, 4095):
        try:
            divider = exact_divider(s, bound, m0_range=m0_range, shift_range=shift_range)
        except ValueError:
            continue
        for a in range(-bound, bound + 1):
            expected = nearest_away(Fraction(a, s))
            assert divider(a) == expected, (s, bound, a)
            if divider.multiplier is not None:
                assert multiply_shift(a, divider.multiplier, 31 - divider.shift) == expected


@pytest.mark.parametrize("s", [3, 5, 6, 7, 9, 10, 11, 12, 13, 25, 100])
def test_condition_is_sound_and_first_failure_beyond_it(s):
    """For small k, find by brute force the first |a| where round(a·c/2^k) ≠ round(a/s):
    every bound the condition accepts lies below it."""
    for k in range(3, 14):
        c = -(-(1 << k) // s)
        first_wrong = next((a for a in range(0, 1 << 16)
                            if multiply_shift(a, c, k) != nearest_away(Fraction(a, s))), None)
        largest_accepted = max((b for b in range(0, 1 << 12)
                                if reciprocal_is_exact(s, b, c, k)), default=-1)
        if first_wrong is not None:
            assert largest_accepted < first_wrong, (s, k, largest_accepted, first_wrong)
            # negative accumulators fail symmetrically
            assert (multiply_shift(-first_wrong, c, k)
                    != nearest_away(Fraction(-first_wrong, s)))


def test_condition_rejects_other_constants():
    assert not reciprocal_is_exact(3, 10, 5, 4)        # ⌈16/3⌉ = 6, not 5
    assert reciprocal_is_exact(3, 0, 6, 4)


@pytest.mark.parametrize("s", [3, 6, 7, 10, 127, 1000, 65535, (1 << 31) - 1])
def test_edges_of_the_hardware_range(s):
    bound = (1 << 29) - 1           # every B < 2^29 has a constant (module docstring)
    divider = exact_divider(s, bound)
    assert M0_RANGE[0] <= divider.multiplier <= M0_RANGE[1]
    assert SHIFT_RANGE[0] <= divider.shift <= SHIFT_RANGE[1]
    for a in (0, 1, -1, bound, -bound, bound - 1, -(bound - 1), s // 2, -(s // 2),
              s // 2 + 1, (bound // s) * s + s // 2, -((bound // s) * s + s // 2)):
        if abs(a) <= bound:
            assert divider(a) == nearest_away(Fraction(a, s)), a


def test_powers_of_two_are_shift_only():
    for n in range(0, 31):
        divider = exact_divider(1 << n, 1 << 31)
        assert divider.requant == "shift" and divider.shift == -n
        for a in (-(1 << 31), -3 << max(n - 1, 0), -1, 0, 1, (1 << 31) - 1):
            assert divider(a) == nearest_away(Fraction(a, 1 << n))


def test_refuses_when_no_constant_is_exact():
    with pytest.raises(ValueError, match="bound must be small enough.*s=3"):
        exact_divider(3, 1 << 31)
    with pytest.raises(ValueError, match="s must be ≥ 1, not 0"):
        exact_divider(0, 10)
    with pytest.raises(TypeError, match="bound must be an integer"):
        exact_divider(3, 1.5)
    with pytest.raises(ValueError, match="no k puts"):
        exact_divider(3, 1, m0_range=(1 << 30, (1 << 31) - 1), shift_range=(0, 0))


@settings(max_examples=300, deadline=None)
@given(st.integers(2, (1 << 31) - 1), st.integers(0, (1 << 29) - 1), st.data())
def test_hypothesis_hardware_range(s, bound, data):
    divider = exact_divider(s, bound)
    a = data.draw(st.integers(-bound, bound))
    assert divider(a) == nearest_away(Fraction(a, s))
