"""The portable PE's two-step product (hw.pe.split_multiply) against Python integers, every
operand pair of small signed and unsigned shapes and the extremes of int8 and int16."""

import itertools

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hw.pe import MIN_SPLIT_WEIGHT_BITS, split_multiply


def _values(shape):
    if shape.signed:
        return range(-(1 << (shape.width - 1)), 1 << (shape.width - 1))
    return range(1 << shape.width)


def _run(act_shape, weight_shape, pairs):
    """split_multiply's result for each (activation, weight) of ``pairs``, read one cycle
    after the operands are set (its registered step)."""
    activation, weight = Signal(act_shape), Signal(weight_shape)
    m = Module()
    product = split_multiply(m, activation, weight)
    result = Signal(signed(act_shape.width + weight_shape.width + 1))
    m.d.comb += result.eq(product)
    got = []

    async def testbench(ctx):
        for x, w in pairs:
            ctx.set(activation, x)
            ctx.set(weight, w)
            await ctx.tick()
            got.append(ctx.get(result))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return got


@pytest.mark.parametrize("act_shape, weight_shape", [
    (signed(5), signed(5)), (unsigned(5), signed(5)), (signed(5), unsigned(4)),
    (unsigned(4), unsigned(5)), (signed(3), signed(MIN_SPLIT_WEIGHT_BITS)),
])
def test_every_operand_pair_of_small_shapes(act_shape, weight_shape):
    pairs = list(itertools.product(_values(act_shape), _values(weight_shape)))
    assert _run(act_shape, weight_shape, pairs) == [x * w for x, w in pairs]


@pytest.mark.parametrize("act_shape, weight_shape", [
    (signed(8), signed(8)), (unsigned(8), signed(8)), (signed(16), signed(8)),
])
def test_extremes_of_wide_shapes(act_shape, weight_shape):
    def corners(shape):
        values = _values(shape)
        lo, hi = values[0], values[-1]
        return sorted({lo, lo + 1, -1 if lo < 0 else 1, 0, 1, hi - 1, hi, hi // 3, lo // 5})

    pairs = list(itertools.product(corners(act_shape), corners(weight_shape)))
    assert _run(act_shape, weight_shape, pairs) == [x * w for x, w in pairs]
