# amaranth: UnusedElaboratable=no
"""GemmEngine with its programmable activation table (EngineConfig(activation_table=True)) in
Amaranth's simulator: the seed paper's ⌈σ⌋ and TFLite's int8 LOGISTIC/TANH tables loaded at
run time, against golden's activations of golden's GEMM; reloads and bypass between commands,
random stalls; the latency with the table measured on the built engine; bad commands and
host parameters refused. The engine without the option is left as it was."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from golden import ops
from golden.fixedpoint_set import FixedPointSet, rounded_activation
from golden.layers import fully_connected
from hw.activation import LATENCY, ActivationLanes
from hw.config import ArrayConfig, EngineConfig
from hw.engine import CommandRegister, GemmEngine, engine_layouts, engine_timing
from hw.engine.activation import TableLoader, table_load_layout
from hw.engine.command import ERROR_LATENCY
from hw.host import LayerParams, engine_job, table_beats
from sim.amaranth_sim import run_engine
from sim.gemm import gemm

DATAFLOWS = ("output_stationary", "weight_stationary")


def _array(dataflow, **options):
    return ArrayConfig(rows=2, cols=3, dataflow=dataflow, per_channel=True,
                       kmax=None if dataflow == "weight_stationary" else 4, **options)


def _engine(dataflow, **options):
    return EngineConfig(_array(dataflow, **options), max_k=16, max_n=8, max_m=8,
                        activation_table=True)


def _layer(rng, array, m, k, n, *, act_min=None, act_max=None):
    """Random operands and parameters that spread the outputs over the clamp range; with
    golden's requantized outputs (before any table)."""
    lo, hi = array.act_range
    x = rng.integers(lo, hi + 1, (m, k))
    w = rng.integers(*array.weight_range, (n, k), endpoint=True)
    out_lo, out_hi = array.out_range
    act_min = out_lo if act_min is None else act_min
    act_max = out_hi if act_max is None else act_max
    peak = max(int(np.abs(x @ w.T).max()), 1)
    shift = -max(peak // max(act_max, 1), 1).bit_length() + 1
    params = LayerParams.for_config(array, n=n, bias=rng.integers(-50, 51, n),
                                    multiplier=rng.integers(1 << 30, 1 << 31, n), shift=shift,
                                    output_zero_point=0, act_min=act_min, act_max=act_max)
    y = fully_connected(x, w, params.bias, input_zero_point=0, weight_zero_point=0,
                        output_zero_point=0, multiplier=params.multiplier, shift=params.shift,
                        act_min=act_min, act_max=act_max, rounding=array.rounding)
    return x, w, params, y


@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
@pytest.mark.parametrize("name,p,s", [("gelu", 3, 2), ("silu", 4, 3)])
def test_paper_activation_in_the_engine(dataflow, name, p, s):
    """⌈σ⌋ on Q_{p,s}: (p+1)-bit outputs clamped to ±(2^p − 1), golden's table of the
    2^(p+1) − 1 numerators loaded from −(2^p − 1); each output is golden's ⌈σ⌋ of golden's
    requantized output."""
    qset = FixedPointSet(p, s)
    q = qset.q_max
    array = _array(dataflow, act_bits=p + 1, weight_bits=p + 1, out_bits=p + 1)
    rng = np.random.default_rng(p * 10 + s)
    x, w, params, y = _layer(rng, array, 8, 7, 6, act_min=-q, act_max=q)
    assert len(np.unique(y)) > q        # the outputs cover more than half of the table
    result = gemm(_engine(dataflow, act_bits=p + 1, weight_bits=p + 1, out_bits=p + 1), x, w,
                  bias=params.bias, multiplier=params.multiplier, shift=params.shift,
                  act_min=-q, act_max=q, table=rounded_activation(name, qset.numerators, qset),
                  table_lo=-q, stall=0.3, seed=p)
    np.testing.assert_array_equal(result.y, rounded_activation(name, y, qset))


@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
@pytest.mark.parametrize("op", ["logistic", "tanh"])
def test_tflite_int8_table_in_the_engine(dataflow, op):
    """TFLite's int8 LOGISTIC and TANH (golden.ops, bit-exact with the reference kernels):
    their 256-entry tables over −128..127 in the engine's table."""
    quant = dict(input_scale=0.05, input_zero_point=3)
    array = _array(dataflow)
    x, w, params, y = _layer(np.random.default_rng(len(op)), array, 6, 9, 5)
    result = gemm(_engine(dataflow), x, w, bias=params.bias, multiplier=params.multiplier,
                  shift=params.shift, table=getattr(ops, f"{op}_table")(**quant), stall=0.3,
                  seed=3)
    np.testing.assert_array_equal(result.y, getattr(ops, op)(y, **quant))


@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
def test_reload_and_bypass_between_commands(dataflow):
    """Four commands on one engine, with stalls: table A loaded, the table bypassed (the plain
    requantized outputs), table A used again without loading, table B loaded over it."""
    config = _engine(dataflow)
    array = config.array
    rng = np.random.default_rng(8)
    table_a, table_b = rng.integers(-128, 128, 256), rng.integers(-128, 128, 256)
    work = []
    for table, use_table, lookup in ((table_a, None, table_a), (None, False, None),
                                     (None, True, table_a), (table_b, None, table_b)):
        x, w, params, y = _layer(rng, array, int(rng.integers(1, 6)), int(rng.integers(1, 9)),
                                 int(rng.integers(1, 7)))
        job = engine_job(config, x, w, params, table=table, use_table=use_table)
        work.append((job, y if lookup is None else lookup[y + 128]))
    runs = run_engine(config, [job for job, _ in work], stall=0.3, seed=2)
    for (job, expected), run in zip(work, runs, strict=True):
        np.testing.assert_array_equal(job.outputs(run.rows), expected)
        assert not run.error


@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
def test_latency_counts_the_table(dataflow):
    """One tile, unstalled, after a command that loaded the table: looked up or bypassed, the
    command takes exactly hw.activation.LATENCY cycles more than on the engine without a
    table (whose own cycle count tests/hw/test_engine.py checks against its latency)."""
    config = _engine(dataflow)
    array = config.array
    plain_config = config.replace(activation_table=False)
    plain = engine_timing(plain_config)
    timing = engine_timing(config)
    assert timing.latency == plain.latency + LATENCY
    rows = array.rows
    k = rows if dataflow == "weight_stationary" else 3
    m = 1 if dataflow == "weight_stationary" else rows
    rng = np.random.default_rng(5)
    table = rng.integers(-128, 128, 256)
    x, w, params, y = _layer(rng, array, m, k, array.cols)
    jobs = [engine_job(config, x, w, params, table=table),
            engine_job(config, x, w, params, use_table=True),
            engine_job(config, x, w, params, use_table=False)]
    _, looked_up, bypassed = run_engine(config, jobs)
    np.testing.assert_array_equal(jobs[1].outputs(looked_up.rows), table[y + 128])
    np.testing.assert_array_equal(jobs[2].outputs(bypassed.rows), y)
    (without,) = run_engine(plain_config, [engine_job(plain_config, x, w, params)])
    np.testing.assert_array_equal(without.rows, bypassed.rows)
    assert looked_up.cycles == bypassed.cycles == without.cycles + LATENCY


def test_command_with_too_many_table_loads_is_dropped():
    """4-bit outputs: 16 entries, so ``table_loads`` 16 is valid and 17 sets ``error``."""
    config = _engine("output_stationary", out_bits=4)
    dut = CommandRegister(config, engine_layouts(config)["command"])
    base = dict(m_tiles=1, n_tiles=1, depth=1, output_zero_point=0, act_min=-8, act_max=7,
                use_table=1)
    errors = []

    async def bench(ctx):
        ctx.set(dut.idle, 1)
        for loads in (16, 17):
            ctx.set(dut.command.valid, 1)
            ctx.set(dut.command.payload, {**base, "table_loads": loads})
            await ctx.tick().until(dut.command.ready)
            ctx.set(dut.command.valid, 0)
            await ctx.tick().repeat(ERROR_LATENCY)
            errors.append(ctx.get(dut.error))
            ctx.set(dut.done, 1)
            await ctx.tick().repeat(4)
            ctx.set(dut.done, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert errors == [0, 1]


def test_engine_without_the_option_is_unchanged():
    """No table port, command fields or table logic, the latency of the components alone."""
    off = EngineConfig(_array("output_stationary"), max_k=16, max_n=8, max_m=8)
    assert "activation_table" not in off.to_dict()
    layouts = engine_layouts(off)
    assert "table" not in layouts
    assert [name for name, _ in layouts["command"]] == [
        "m_tiles", "n_tiles", "depth", "output_zero_point", "act_min", "act_max"]
    text = rtlil.convert(GemmEngine(off))
    assert "activation_table" not in text and "table_loader" not in text
    on = rtlil.convert(GemmEngine(off.replace(activation_table=True)))
    assert "activation_table" in on and "table_loader" in on


def test_table_beats_cover_the_output_range():
    """A table over part of the outputs: every output value gets an entry, the nearest end's
    beyond the table; addresses are value − (−128)."""
    array = _array("output_stationary")
    beats = table_beats(array, [5, 6, 7], table_lo=-1)
    assert beats.shape == (256, 2)
    assert list(beats[:, 0]) == list(range(256))
    lookup = dict(zip(beats[:, 0] - 128, beats[:, 1], strict=True))
    assert [lookup[v] for v in (-128, -2, -1, 0, 1, 2, 127)] == [5, 5, 5, 6, 7, 7, 7]


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(table=[1, 2], on=False), ValueError, r"need an engine with an activation table"),
    (dict(table=[0, 200]), ValueError, r"table entries must be in \[-128, 127\], not 200"),
    (dict(table=[0, 1], table_lo=127), ValueError, r"table_lo must be in \[-128, 126\], not 127"),
    (dict(table=np.zeros(257, int)), ValueError, r"table must be 1-D with 1..256 entries"),
    (dict(table=[0.5]), TypeError, r"table"),
    (dict(use_table=1), TypeError, r"use_table must be a bool, not 1"),
])
def test_host_refuses_bad_tables(kwargs, error, match):
    config = _engine("output_stationary")
    if not kwargs.pop("on", True):
        config = config.replace(activation_table=False)
    x, w, params, _ = _layer(np.random.default_rng(0), config.array, 2, 2, 2)
    with pytest.raises(error, match=match):
        engine_job(config, x, w, params, **kwargs)


@pytest.mark.parametrize("args,kwargs,error,match", [
    (((-8, 7), 4, 0), {}, ValueError, r"lanes must be in \[1, 256\], not 0"),
    (((-8, 7), 4, True), {}, TypeError, r"lanes must be an integer, not True"),
    (((-128, 127), 4, 2), dict(bypassable=True), ValueError,
     r"out_shape must be at least 8 bits wide to bypass inputs in \(-128, 127\), not 4"),
])
def test_lanes_refuse_bad_parameters(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ActivationLanes(*args, **kwargs)


@pytest.mark.parametrize("entries,error,match", [
    (0, ValueError, r"entries must be in \[1, 65536\], not 0"),
    (1 << 17, ValueError, r"entries must be in \[1, 65536\], not 131072"),
    (2.0, TypeError, r"entries must be an integer, not 2.0"),
])
def test_table_loader_refuses_bad_entries(entries, error, match):
    with pytest.raises(error, match=match):
        TableLoader(table_load_layout(_array("output_stationary")), entries)


def test_engine_config_refuses_non_bool():
    with pytest.raises(TypeError, match="activation_table must be a bool, not 1"):
        EngineConfig(_array("output_stationary"), activation_table=1)
