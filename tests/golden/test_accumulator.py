"""golden.accumulator: exact widths, checked by enumeration and by overflow of one bit fewer."""

import itertools

import pytest

from golden.accumulator import (
    accumulator_bits,
    dot_product_bounds,
    guard_bits,
    operand_range,
    signed_width,
)


def fits(value, width):
    return -(1 << (width - 1)) <= value < (1 << (width - 1))


def test_signed_width_by_enumeration():
    for lo in range(-40, 41):
        for hi in range(lo, 41):
            width = next(w for w in itertools.count(1)
                         if all(fits(v, w) for v in (lo, hi)))
            assert signed_width(lo, hi) == width


@pytest.mark.parametrize("a_bits,a_signed,b_bits,b_signed,zero_point", [
    (2, True, 2, True, 0), (2, False, 3, True, 0), (3, False, 2, True, 2), (2, True, 2, False, 1),
])
def test_bounds_are_attained_by_enumeration(a_bits, a_signed, b_bits, b_signed, zero_point):
    a_range = operand_range(a_bits, a_signed, zero_point)
    b_range = operand_range(b_bits, b_signed)
    products = {a * b for a in range(a_range[0], a_range[1] + 1)
                for b in range(b_range[0], b_range[1] + 1)}
    for depth in range(1, 5):
        sums = {0}  # an accumulator starts at 0 and holds every prefix
        for _ in range(depth):
            sums |= {s + p for s in sums for p in products}
        assert dot_product_bounds(depth, a_range, b_range) == (min(sums), max(sums))
        assert accumulator_bits(depth, a_range, b_range) == signed_width(min(sums), max(sums))


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("depth", [1, 2, 3, 7, 8, 255, 256, 1000, 1024, 4096])
def test_worst_case_fits_and_one_bit_fewer_overflows(bits, depth):
    lo = -(1 << (bits - 1))
    width = accumulator_bits(depth, (lo, -lo - 1), (lo, -lo - 1))
    worst = depth * lo * lo  # every operand at its most negative value
    assert fits(worst, width) and not fits(worst, width - 1)
    # the seeds' 2N+M, M = ⌈log2 K⌉: exact for K a power of two, never narrower than exact
    m = guard_bits(depth)
    assert width <= 2 * bits + m
    if depth & (depth - 1) == 0:
        assert width == 2 * bits + m


def test_guard_bits_is_ceil_log2():
    for depth in range(1, 2049):
        m = guard_bits(depth)
        assert (1 << m) >= depth and (m == 0 or (1 << (m - 1)) < depth)


def test_binary_and_ternary_weights():
    assert operand_range(1, True, kind="binary") == (-1, 1)
    assert operand_range(2, True, kind="ternary") == (-1, 1)
    # int8 × {−1, +1} over 256 terms: |sum| ≤ 256·128 = 2^15, needs 17 bits
    assert accumulator_bits(256, (-128, 127), (-1, 1)) == 17
    with pytest.raises(ValueError, match="zero_point of binary operands must be 0; got 3"):
        operand_range(1, True, 3, kind="binary")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="depth must be ≥ 1; got 0"):
        guard_bits(0)
    with pytest.raises(TypeError, match="depth must be an integer"):
        accumulator_bits(2.5, (0, 1), (0, 1))
    with pytest.raises(ValueError, match="kind must be one of"):
        operand_range(8, True, kind="quaternary")
    with pytest.raises(ValueError, match="lo ≤ hi"):
        signed_width(3, 2)
