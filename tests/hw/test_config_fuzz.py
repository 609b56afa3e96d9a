# amaranth: UnusedElaboratable=no
"""Configuration fuzzing (hypothesis): every valid ArrayConfig / EngineConfig drawn from a wide
space elaborates and is bit-exact on a small random GEMM in Amaranth's simulator (against
golden/, through sim.workload and golden.layers); every invalid one is refused with
ValueError or TypeError naming the parameter and its value, before any hardware exists.

`make test` runs a few examples; the slow variants run many more.
"""

import gc
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden.accumulator import accumulator_bits, operand_range
from golden.layers import fully_connected
from hw.config import (
    MAX_PRODUCT_PIPELINE,
    MAX_REQUANT_SERIAL_BITS,
    REQUANT_ROUNDINGS,
    ArrayConfig,
    EngineConfig,
)
from hw.engine import GemmEngine
from hw.host import LayerParams, engine_job
from sim.amaranth_sim import run_array, run_engine
from sim.workload import random_workload

#: Largest rows/cols drawn (the simulator's time grows with the grid).
MAX_GRID = 3
#: Cycles a small GEMM may take on the engine before it counts as hung (stalls, serial
#: requantizer lanes and every fill and drain included, with a wide margin).
HANG_BASE_CYCLES, HANG_CYCLES_PER_MAC = 20_000, 50
#: Examples per valid-configuration test: in `make test` (the same ones every run), and slow.
FAST_EXAMPLES, LONG_EXAMPLES = 4, 40


@st.composite
def array_configs(draw, *, engine=False):
    """A valid ArrayConfig (for the GEMM engine: no zero points in hardware)."""
    rows, cols = draw(st.integers(1, MAX_GRID)), draw(st.integers(1, MAX_GRID))
    kind = draw(st.sampled_from(["integer", "binary", "ternary"]))
    if kind == "binary":
        weight_bits, weight_signed = 1, draw(st.booleans())
    elif kind == "ternary":
        weight_bits, weight_signed = 2, True
    else:
        weight_bits, weight_signed = draw(st.integers(2, 8)), draw(st.booleans())
    dataflow = draw(st.sampled_from(["output_stationary", "weight_stationary"]))
    ws = dataflow == "weight_stationary"
    requant = draw(st.sampled_from(["multiplier", "shift"]))
    roundings = REQUANT_ROUNDINGS[1:] if requant == "shift" else REQUANT_ROUNDINGS
    values = dict(
        rows=rows, cols=cols, act_bits=draw(st.integers(2, 10)), act_signed=draw(st.booleans()),
        weight_bits=weight_bits, weight_signed=weight_signed, weight_kind=kind,
        dataflow=dataflow, kmax=rows if ws else draw(st.integers(1, 8)),
        input_zero_point_in_hw=False if engine else draw(st.booleans()),
        weight_zero_point_in_hw=False if engine or kind != "integer" else draw(st.booleans()),
        requant=requant, rounding=draw(st.sampled_from(roundings)),
        per_channel=draw(st.booleans()), max_left_shift=draw(st.integers(0, 4)),
        # out_bits ≥ 3: sim.workload.random_layer clamps to [lo + 3, hi − 2], empty at 2 bits
        out_bits=draw(st.integers(3, 10)), out_signed=draw(st.booleans()),
        requant_lanes=draw(st.none() | st.integers(1, cols)),
        requant_serial_bits=draw(st.none() | st.integers(1, MAX_REQUANT_SERIAL_BITS)),
        register_product=(registered := draw(st.booleans())),
        product_pipeline=draw(st.integers(0, MAX_PRODUCT_PIPELINE)) if registered else 0,
    )
    config = ArrayConfig(**values)
    if not ws and draw(st.booleans()):
        config = config.replace(accumulator_width=draw(st.integers(config.accumulator_bits, 32)))
    if draw(st.booleans()):
        config = config.replace(fifo_depth=config.min_fifo_depth + draw(st.integers(0, 3)))
    return config


def _check_array(config, seed):
    work = random_workload(config, seed=seed, jobs=2)
    run = run_array(config, work.jobs, work.params, in_stall=0.2, out_stall=0.2, seed=seed)
    np.testing.assert_array_equal(run.outputs, work.expected)






@st.composite
def engine_configs(draw):
    array = draw(array_configs(engine=True))
    if array.weight_stationary and (array.fifo_depth or array.rows) < array.rows:
        array = array.replace(fifo_depth=None)   # a known bug: test_engine_keeps_a_small_fifo
    return EngineConfig(array, max_k=draw(st.integers(1, 12)), max_n=draw(st.integers(1, 6)),
                        max_m=draw(st.integers(1, 6)))


def _check_engine(config, seed):
    """A random GEMM within the buffers, in the simulator, against golden.fully_connected."""
    array = config.array
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, (config.max_m if config.weight_stationary else 6) + 1))
    k, n = int(rng.integers(1, config.max_k + 1)), int(rng.integers(1, config.max_n + 1))
    a_lo, a_hi = operand_range(array.act_bits, array.act_signed)
    w_lo, w_hi = array.weight_range
    x = rng.integers(a_lo, a_hi + 1, (m, k), dtype=np.int64)
    w = rng.integers(w_lo, w_hi + 1, (n, k), dtype=np.int64)
    if array.weight_kind == "binary":
        w = np.where(w >= 0, 1, -1)
    o_lo, o_hi = array.out_range
    zx = int(rng.integers(a_lo, a_hi + 1))
    peak = max(1, int(np.abs((x - zx) @ w.T).max()))
    shift = -(peak // max(1, o_hi - o_lo)).bit_length()
    multiplier = None if array.requant == "shift" else rng.integers(1 << 30, 1 << 31, n)
    params = LayerParams.for_config(
        array.replace(per_channel=True), n=n, bias=rng.integers(-100, 101, n),
        multiplier=multiplier, shift=np.full(n, shift), output_zero_point=(o_lo + o_hi) // 2,
        act_min=o_lo, act_max=o_hi, input_zero_point=zx)
    job = engine_job(config, x, w, params)
    # a hang fails in seconds, not after run_engine's default two million cycles
    run, = run_engine(config, [job], stall=0.2, seed=seed,
                      max_cycles=HANG_BASE_CYCLES + HANG_CYCLES_PER_MAC * m * k * n)
    expected = fully_connected(x, w, params.bias, input_zero_point=zx, weight_zero_point=0,
                               output_zero_point=params.output_zero_point,
                               multiplier=None if multiplier is None else params.multiplier,
                               shift=params.shift,
                               act_min=o_lo, act_max=o_hi, rounding=array.rounding)
    np.testing.assert_array_equal(job.outputs(run.rows), expected)






@pytest.mark.parametrize("kind", ["array", "engine"])
@pytest.mark.parametrize("examples", [
    pytest.param(FAST_EXAMPLES, id="fast"),
    pytest.param(LONG_EXAMPLES, id="long", marks=pytest.mark.slow),
])
def test_valid_configs_are_bit_exact(kind, examples):
    strategy, check = {"array": (array_configs(), _check_array),
                       "engine": (engine_configs(), _check_engine)}[kind]

    @given(config=strategy, seed=st.integers(0, 2**16))
    @settings(max_examples=examples, deadline=None, derandomize=examples == FAST_EXAMPLES,
              suppress_health_check=[HealthCheck.too_slow])
    def bit_exact(config, seed):
        check(config, seed)

    bit_exact()


def test_engine_keeps_a_small_fifo():
    """Found by the fuzzer: ArrayConfig accepts fifo_depth=3 on a 4-row weight-stationary
    array (min_fifo_depth is 3 there); GemmEngine refused that valid configuration
    ("fifo_depth must be in [5, 65536], not 3") until its requantizer stopped inheriting the
    array's fifo_depth."""
    array = ArrayConfig(rows=4, cols=2, dataflow="weight_stationary", fifo_depth=3)
    assert array.min_fifo_depth == 3
    GemmEngine(EngineConfig(array, max_k=8, max_n=2, max_m=2))


def test_array_runs_with_its_smallest_fifo():
    """Found by the fuzzer (2×3, kmax 7, fifo_depth 2): with fifo_depth = rows the second
    row of a pass found the buffered FIFO full and two passes never finished. The smallest
    fifo_depth is now rows + 1 (refused below, naming the range), and it runs."""
    with pytest.raises(ValueError, match=r"fifo_depth must be in \[3, 65536\], not 2"):
        ArrayConfig(rows=2, cols=2, kmax=8, fifo_depth=2)
    config = ArrayConfig(rows=2, cols=2, kmax=8, fifo_depth=3)
    work = random_workload(config, seed=0, jobs=2)
    try:
        run = run_array(config, work.jobs, work.params, seed=0, max_cycles=3000)
    finally:
        gc.collect()   # the testbenches left waiting by a hang end here, not in the report
    np.testing.assert_array_equal(run.outputs, work.expected)


# -- invalid configurations ---------------------------------------------------------------

#: Integer parameters and their allowed range (docs of ArrayConfig, independent of its code).
INT_RANGES = {"rows": (1, 256), "cols": (1, 256), "act_bits": (2, 16), "out_bits": (2, 16),
              "max_left_shift": (0, 30), "product_pipeline": (0, 2)}
BOOLS = ["act_signed", "weight_signed", "input_zero_point_in_hw", "weight_zero_point_in_hw",
         "per_channel", "out_signed", "register_product"]
CHOICES = ["weight_kind", "dataflow", "requant", "rounding"]
ENGINE_RANGES = {"max_k": (1, 1 << 16), "max_n": (1, 1 << 14), "max_m": (1, 1 << 16)}


def _out_of_range(lo, hi):
    return st.integers(hi + 1, hi + 1000) | st.integers(lo - 1000, lo - 1)


@st.composite
def bad_array_parameters(draw):
    """(name, value): one parameter of an otherwise default ArrayConfig set to a bad value."""
    kind = draw(st.sampled_from(["range", "type", "bool", "choice"]))
    if kind == "range":
        name = draw(st.sampled_from(sorted(INT_RANGES)))
        return name, draw(_out_of_range(*INT_RANGES[name]))
    if kind == "type":
        name = draw(st.sampled_from(sorted(INT_RANGES)))
        return name, draw(st.sampled_from(["4", 4.0, None, True, [4]]))
    if kind == "bool":
        return draw(st.sampled_from(BOOLS)), draw(st.sampled_from([1, 0, "yes", None]))
    return draw(st.sampled_from(CHOICES)), draw(st.text("abcxyz_", min_size=1, max_size=6))


def _assert_names(error, name, value):
    message = str(error.value)
    assert name in message, message
    assert str(value) in message or repr(value) in message, message


@given(bad=bad_array_parameters())
@settings(max_examples=200, deadline=None)
def test_invalid_array_configs_name_the_parameter(bad):
    name, value = bad
    with pytest.raises((ValueError, TypeError)) as error:
        ArrayConfig(**{name: value})
    _assert_names(error, name, value)
    if name in INT_RANGES and isinstance(value, int) and not isinstance(value, bool):
        assert re.search(rf"\[{INT_RANGES[name][0]}, {INT_RANGES[name][1]}\]",
                         str(error.value)), str(error.value)


@given(rows=st.integers(1, 8), kmax=st.integers(1, 64))
@settings(max_examples=50, deadline=None)
def test_weight_stationary_kmax_other_than_rows_is_refused(rows, kmax):
    if kmax == rows:
        assert ArrayConfig(rows=rows, dataflow="weight_stationary", kmax=kmax).kmax == rows
        return
    with pytest.raises(ValueError, match=rf"kmax must be rows \({rows}\).*not {kmax}"):
        ArrayConfig(rows=rows, dataflow="weight_stationary", kmax=kmax)


@given(act_bits=st.integers(2, 16), weight_bits=st.integers(2, 8),
       kmax=st.integers(1, 1 << 20))
@settings(max_examples=100, deadline=None)
def test_kmax_beyond_an_int32_accumulator_is_refused(act_bits, weight_bits, kmax):
    """Accepted exactly when golden says the dot product fits 32 bits."""
    fits = accumulator_bits(kmax, operand_range(act_bits, True),
                            operand_range(weight_bits, True)) <= 32
    if fits:
        ArrayConfig(act_bits=act_bits, weight_bits=weight_bits, kmax=kmax)
        return
    with pytest.raises(ValueError, match=rf"kmax={kmax} needs a \d+-bit accumulator"):
        ArrayConfig(act_bits=act_bits, weight_bits=weight_bits, kmax=kmax)


@given(name=st.sampled_from(sorted(ENGINE_RANGES)), data=st.data())
@settings(max_examples=60, deadline=None)
def test_invalid_engine_configs_name_the_parameter(name, data):
    value = data.draw(_out_of_range(*ENGINE_RANGES[name]) |
                      st.sampled_from(["8", 8.5, None, False]))
    with pytest.raises((ValueError, TypeError)) as error:
        EngineConfig(ArrayConfig(rows=2, cols=2, kmax=4), **{name: value})
    _assert_names(error, name, value)
