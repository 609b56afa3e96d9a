# amaranth: UnusedElaboratable=no
"""hw.activation.ActivationTable and ActivationLanes in Amaranth's simulator: loaded at run
time, against golden's rounded activations ⌈σ⌋ and against plain table lookups, with random
stalls on both streams; its latency is the documented one."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.fixedpoint_set import FixedPointSet, rounded_activation
from hw.activation import LATENCY, ActivationLanes, ActivationTable, paper_range


def run_table(dut, table, inputs, *, stall=0.3, seed=0):
    """Load ``table`` through ``load``, stream ``inputs``; return outputs and, per output,
    cycles from acceptance of its input to its first valid cycle."""
    rng = random.Random(seed)
    outputs, delays = [], []

    async def bench(ctx):
        for address, value in enumerate(table):
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.addr, address)
            ctx.set(dut.load.payload.data, int(value))
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        accepted, pending, index, cycle, shown = [], 0, 0, 0, None
        while len(outputs) < len(inputs) and cycle < 50 * len(inputs) + 100:
            offer = index < len(inputs) and rng.random() >= stall
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, int(inputs[index]))
            ctx.set(dut.o.ready, rng.random() >= stall)
            if ctx.get(dut.o.valid):
                if shown is None:
                    shown = cycle
                if ctx.get(dut.o.ready):
                    outputs.append(ctx.get(dut.o.payload))
                    delays.append(shown - accepted[pending])
                    pending, shown = pending + 1, None
            if offer and ctx.get(dut.i.ready):
                accepted.append(cycle)
                index += 1
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(outputs), delays


@pytest.mark.parametrize("name,p,s", [("gelu", 3, 2), ("silu", 4, 3), ("relu", 3, 1)])
def test_paper_activations_against_golden(name, p, s):
    qset = FixedPointSet(p, s)
    table = rounded_activation(name, qset.numerators, qset)
    dut = ActivationTable(paper_range(p), p + 1)
    assert dut.entries == (1 << (p + 1)) - 1
    inputs = np.concatenate([qset.numerators, np.random.default_rng(p).choice(
        qset.numerators, 40)])
    outputs, delays = run_table(dut, table, inputs, seed=p)
    np.testing.assert_array_equal(outputs, rounded_activation(name, inputs, qset))
    assert set(delays) == {LATENCY}


@pytest.mark.parametrize("op", ["logistic", "tanh"])
def test_tflite_int8_lookup_activations(op):
    """TFLite's int8 LOGISTIC and TANH (golden.ops, bit-exact with the reference kernels)
    through the same unit: their 256-entry tables, loaded at run time."""
    from golden import ops

    params = dict(input_scale=0.05, input_zero_point=3)
    table = getattr(ops, f"{op}_table")(**params)
    inputs = np.random.default_rng(5).integers(-128, 128, 200)
    outputs, delays = run_table(ActivationTable((-128, 127), 8), table, inputs, seed=5)
    np.testing.assert_array_equal(outputs, getattr(ops, op)(inputs, **params))
    assert set(delays) == {LATENCY}


def test_int8_table_full_rate_and_clamp():
    """A TFLite-style 256-entry int8 table at full rate (no stalls): one output a cycle,
    and inputs beyond a narrower range clamp to its ends."""
    rng = np.random.default_rng(1)
    table = rng.integers(-128, 128, 256)
    dut = ActivationTable((-128, 127), 8)
    inputs = rng.integers(-128, 128, 300)
    outputs, delays = run_table(dut, table, inputs, stall=0.0)
    np.testing.assert_array_equal(outputs, table[inputs + 128])
    assert set(delays) == {LATENCY}

    # (-3, 2) needs a 3-bit input, -4..3: both ends of it lie outside the table
    init = [10, 11, 12, 13, 14, 15]
    narrow = ActivationTable((-3, 2), 8, init=init)
    outputs, _ = run_table(narrow, init, [-4, -3, 0, 2, 3], seed=2)
    assert list(outputs) == [10, 10, 13, 15, 15]


@pytest.mark.parametrize("in_range", [paper_range(7), (-128, 127), paper_range(2)])
def test_verilog_is_lint_clean(tmp_path, in_range):
    from amaranth.back import verilog

    from hw.generate import lint

    path = tmp_path / "act_table.v"
    path.write_text(verilog.convert(ActivationTable(in_range, 8), name="act_table"))
    ok, messages = lint(path, top="act_table")
    assert ok, messages


@pytest.mark.parametrize("kwargs,match", [
    ({"in_range": (3, 2), "out_shape": 8}, "in_range must hold"),
    ({"in_range": (0, 1 << 16), "out_shape": 8}, "in_range must hold"),
    ({"in_range": (0, 3), "out_shape": 8, "init": [0, 1]}, "init must have 4 entries"),
    ({"in_range": (0, 1), "out_shape": 4, "init": [0, 8]}, r"init entries must be in \[-8, 7\]"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ActivationTable(kwargs.pop("in_range"), kwargs.pop("out_shape"), **kwargs)


def test_bad_range_type():
    with pytest.raises(TypeError, match=r"in_range\[0\] must be an integer"):
        ActivationTable((0.5, 3), 8)


def test_lanes_look_up_every_lane_and_bypass_per_row():
    """ActivationLanes, three lanes, one table: each row looked up lane by lane or, with
    ``bypass`` high as it is accepted, passed unchanged; ``last`` travels with its row; random
    stalls on both sides."""
    rng = np.random.default_rng(9)
    table = rng.integers(-8, 8, 16)
    dut = ActivationLanes((-8, 7), 4, 3, bypassable=True)
    rows = rng.integers(-8, 8, (40, 3))
    bypass = rng.integers(0, 2, 40)
    lasts = rng.integers(0, 2, 40)
    stalls = random.Random(3)
    got = []

    async def bench(ctx):
        for address, value in enumerate(table):
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload, {"addr": address, "data": int(value)})
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        index = 0
        while len(got) < len(rows):
            offer = index < len(rows) and stalls.random() >= 0.3
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, {"y": rows[index].tolist(), "last": int(lasts[index])})
                ctx.set(dut.bypass, int(bypass[index]))
            ready = stalls.random() >= 0.3
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                payload = ctx.get(dut.o.payload)
                got.append(([int(payload.y[j]) for j in range(3)], int(payload.last)))
            if offer and ctx.get(dut.i.ready):
                index += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    expected = [(row.tolist() if through else table[row + 8].tolist(), int(last))
                for row, through, last in zip(rows, bypass, lasts, strict=True)]
    assert got == expected
