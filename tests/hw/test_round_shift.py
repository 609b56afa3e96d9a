"""The requantizer's rounding-shift unit, exhaustively against Fraction arithmetic."""

import math
from fractions import Fraction

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from golden.rounding import ROUNDING_MODES
from hw.requantizer import round_shift


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
