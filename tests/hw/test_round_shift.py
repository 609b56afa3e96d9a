"""The requantizer's rounding shift and its output window, exhaustively against Fraction and
Python integer arithmetic."""

import math
from fractions import Fraction

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from golden.rounding import ROUNDING_MODES
from hw.requantizer import round_shift, shift_window


def reference(value, amount, mode):
    exact = Fraction(value, 1 << amount)
    floor = math.floor(exact)
    fraction = exact - floor
    if mode == "floor":
        return floor
    if mode == "toward_zero":
        return floor if value >= 0 or fraction == 0 else floor + 1
    if fraction != Fraction(1, 2):
        return floor + (fraction > Fraction(1, 2))
    return {
        "half_up": floor + 1,
        "half_away_from_zero": floor + (value > 0),
        "half_to_even": floor + (floor % 2),
    }[mode]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_every_value_and_shift_of_a_6_bit_input(mode):
    width = 6
    value, amount = Signal(signed(width)), Signal(unsigned(3))
    result = Signal(signed(width + 1))
    m = Module()
    m.d.comb += result.eq(round_shift(value, amount, mode))
    failures = []

    async def testbench(ctx):
        for v in range(-(1 << (width - 1)), 1 << (width - 1)):
            for n in range(width + 1):
                ctx.set(value, v)
                ctx.set(amount, n)
                got = ctx.get(result)
                if got != reference(v, n, mode):
                    failures.append((v, n, got, reference(v, n, mode)))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert not failures, failures[:5]


@pytest.mark.parametrize("width", [1, 3, 8])
def test_shift_window_of_every_value_and_amount(width):
    """shift_window's two steps (coarse, then fine) against Python's floor shift: the low
    ``width`` bits of value >> amount, whether it fits ``width`` signed bits, and the sign,
    for every 8-bit value and every amount of a 4-bit shift (beyond the value's width too)."""
    bits, amount_bits = 8, 4
    value, amount = Signal(signed(bits)), Signal(unsigned(amount_bits))
    low, inside, negative = (Signal(width), Signal(), Signal())
    m = Module()
    window = shift_window(value, amount, width)
    m.d.comb += [low.eq(window[0]), inside.eq(window[1]), negative.eq(window[2])]
    failures = []

    async def testbench(ctx):
        for v in range(-(1 << (bits - 1)), 1 << (bits - 1)):
            for n in range(1 << amount_bits):
                ctx.set(value, v)
                ctx.set(amount, n)
                quotient = v >> n
                expected = (quotient % (1 << width),
                            int(-(1 << (width - 1)) <= quotient < (1 << (width - 1))), int(v < 0))
                got = (ctx.get(low), ctx.get(inside), ctx.get(negative))
                if got != expected:
                    failures.append((v, n, got, expected))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert not failures, failures[:5]
