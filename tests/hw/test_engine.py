"""GemmEngine in Amaranth's simulator against golden.fully_connected, every output element."""

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import Shape, UnusedElaboratable
from amaranth.sim import Simulator

from golden.accumulator import accumulator_bits
from golden.layers import fully_connected
from hw.config import ArrayConfig
from hw.engine import EngineConfig, GemmEngine, engine_layouts, engine_timing
from hw.engine.command import ERROR_LATENCY, START_LATENCY
from hw.engine.sequencer import ISSUE_CHECK_LATENCY
from hw.host import LayerParams, engine_job
from hw.requantizer import TABLE_LOADED_LATENCY, TABLE_TAKE_LATENCY
from sim.amaranth_sim import run_engine
from sim.workload import random_operand


def _engine(config):
    """The timing of the GemmEngine built from ``config``."""
    return engine_timing(config)


def _golden(array, params, x, w, *, per_tensor=False):
    multiplier = None if array.requant == "shift" else params.multiplier
    shift = params.shift
    if per_tensor:   # one scalar per tensor, as TFLite stores it; the engine gets it N times
        multiplier = None if multiplier is None else int(multiplier[0])
        shift = int(shift[0])
    return fully_connected(
        x, w, params.bias, input_zero_point=params.input_zero_point, weight_zero_point=0,
        output_zero_point=params.output_zero_point, multiplier=multiplier, shift=shift,
        act_min=params.act_min, act_max=params.act_max, rounding=array.rounding)


def _tile_rows(job):
    """Result rows per output tile: ``rows`` (output-stationary) or M (weight-stationary)."""
    return job.m if "k_tiles" in job.command else job.rows


def _expected_lasts(job):
    tile = _tile_rows(job)
    return ([False] * (tile - 1) + [True]) * (job.result_rows // tile)


def _run(config, x, w, params, *, stall=0.0, seed=0, per_tensor=False):
    """Run the GEMM, check every element against golden and the ``last`` flags; the run."""
    job = engine_job(config, x, w, params)
    # fail fast if the engine hangs: generous for stalls, far below run_engine's default
    beats = len(job.activations) + len(job.weights) + job.result_rows
    tiles = -(-job.m // job.rows) * job.n_tiles
    work = tiles * job.k * 8   # output-stationary kmax = 1: every beat a pass of ≤ 8 cycles
    try:
        run, = run_engine(config, [job], stall=stall, seed=seed,
                         max_cycles=(work + beats + 200) * 8)
        hung = None
    except AssertionError as error:
        hung = str(error)
    if hung:   # finalize the testbenches left waiting now, not during pytest's report
        gc.collect()
        pytest.fail(f"the engine hung: {hung}")
    expected = _golden(config.array, params, x, w, per_tensor=per_tensor)
    np.testing.assert_array_equal(job.outputs(run.rows), expected)
    assert run.lasts == _expected_lasts(job)
    return job, run, expected


# -- 1. random shapes, parameters and precisions ---------------------------------------------

def _dims(rng, shape, dataflow):
    """(rows, cols, kmax, M, K, N) of one kind of shape. A pass is ``kmax`` deep
    (output-stationary) or a K tile ``rows`` deep (weight-stationary, kmax = rows)."""
    def draw(lo, hi):
        return int(rng.integers(lo, hi + 1))

    rows, cols = draw(2 if shape in ("ragged", "shallow") else 1, 4), draw(1, 4)
    kmax = rows if dataflow == "weight_stationary" else draw(2 if shape == "shallow" else 1, 8)
    if shape == "ragged":      # M, N beyond and not multiples of the array; K > kmax
        cols = max(cols, 2)
        m = rows * draw(1, 2) + draw(1, rows - 1)
        n = cols * draw(1, 2) + draw(1, cols - 1)
        k = kmax * draw(1, 2) + (draw(1, kmax - 1) if kmax > 1 else draw(1, 4))
    elif shape == "shallow":   # K < kmax: one short pass per tile
        m, k, n = draw(1, 10), draw(1, kmax - 1), draw(1, 10)
    elif shape == "whole_passes":   # K a multiple of kmax
        m, k, n = draw(1, 10), kmax * draw(2, 4), draw(1, 10)
    elif shape == "unit":      # 1×1×1 on any array
        m = k = n = 1
    else:
        m, k, n = draw(1, 12), draw(1, 24), draw(1, 12)
    return rows, cols, kmax, m, k, n


def _random_params(array, rng, x, w, n, *, zero_point):
    """Parameters whose scale puts most outputs inside the range (some clamp)."""
    lo, hi = array.act_zero_point_range
    input_zero_point = int(rng.integers(lo, hi + 1)) if zero_point else 0
    bias = rng.integers(-3000, 3001, size=n, dtype=np.int64)
    acc = (x - input_zero_point) @ w.T + bias
    peak = max(int(np.abs(acc).max()), 1)
    shift = -(peak // 96).bit_length()                 # |acc|·2^shift < 96
    if array.per_channel:
        shift = shift - rng.integers(0, 3, size=n, dtype=np.int64)
        multiplier = rng.integers(1 << 30, 1 << 31, size=n, dtype=np.int64)
    else:
        multiplier = int(rng.integers(1 << 30, 1 << 31))
    out_lo, out_hi = array.out_range
    middle = (out_lo + out_hi) // 2
    return LayerParams.for_config(
        array, n=n, bias=bias, multiplier=None if array.requant == "shift" else multiplier,
        shift=shift, output_zero_point=middle + int(rng.integers(-20, 21)),
        act_min=out_lo + int(rng.integers(0, 41)), act_max=out_hi - int(rng.integers(0, 41)),
        input_zero_point=input_zero_point)


BINARY = dict(weight_kind="binary", weight_bits=1)
UNSIGNED = dict(act_signed=False)
SHIFT = dict(requant="shift")
PER_CHANNEL = dict(per_channel=True)

RANDOM_CASES = [
    # seed, shape, stall, zero point, ArrayConfig options
    (0, "ragged", 0.0, True, dict(rounding="double")),
    (1, "ragged", 0.3, False, dict(PER_CHANNEL, rounding="single")),
    (2, "ragged", 0.6, True, dict(PER_CHANNEL, rounding="half_to_even")),
    (3, "shallow", 0.3, False, dict(rounding="double")),
    (4, "unit", 0.0, True, dict(PER_CHANNEL, rounding="double")),
    (5, "unit", 0.6, False, dict(SHIFT, rounding="half_to_even")),
    (6, "ragged", 0.3, True, dict(SHIFT, **PER_CHANNEL, rounding="single")),
    (7, "ragged", 0.0, True, dict(BINARY, **PER_CHANNEL, rounding="double")),
    (8, "shallow", 0.6, True, dict(UNSIGNED, rounding="single")),
    (9, "whole_passes", 0.3, True, dict(BINARY, **UNSIGNED, **SHIFT, rounding="half_to_even")),
    (10, "any", 0.6, False, dict(PER_CHANNEL, rounding="double")),
    (11, "ragged", 0.3, True, dict(UNSIGNED, out_signed=False, **PER_CHANNEL,
                                   rounding="half_to_even")),
    # serial requantizer lanes (the iCEBreaker's bit-serial one, and 4 bits of M0 a cycle):
    # the accumulator FIFO is sized for their slower drain
    (12, "ragged", 0.3, True, dict(PER_CHANNEL, rounding="double", requant_serial_bits=1,
                                   requant_lanes=1)),
    (13, "shallow", 0.0, False, dict(rounding="single", requant_serial_bits=4)),
    # three product registers per PE (ArrayConfig.product_pipeline): the grid's latency grows
    (14, "ragged", 0.3, True, dict(PER_CHANNEL, rounding="double", product_pipeline=2)),
]


DATAFLOWS = ("output_stationary", "weight_stationary")


@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
@pytest.mark.parametrize("seed,shape,stall,zero_point,options", [
    pytest.param(*case, id=f"{case[0]}-{case[1]}-stall{case[2]}") for case in RANDOM_CASES])
def test_random_gemm(dataflow, seed, shape, stall, zero_point, options):
    rng = np.random.default_rng(seed)
    rows, cols, kmax, m, k, n = _dims(rng, shape, dataflow)
    array = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow,
                        kmax=None if dataflow == "weight_stationary" else kmax, **options)
    assert array.kmax == kmax
    config = EngineConfig(array, max_k=k + int(rng.integers(0, 4)),
                          max_n=n + int(rng.integers(0, cols + 1)),
                          max_m=m + int(rng.integers(0, 3)))
    # the shape is what the case says it is
    if shape == "ragged":
        assert m % rows and n % cols and k > kmax and (kmax == 1 or k % kmax)
    elif shape == "shallow":
        assert k < kmax
    elif shape == "whole_passes":
        assert k % kmax == 0 and k > kmax
    x = random_operand(rng, array.act_bits, array.act_signed, (m, k))
    w = random_operand(rng, array.weight_bits, array.weight_signed, (n, k), array.weight_kind)
    params = _random_params(array, rng, x, w, n, zero_point=zero_point)
    assert (params.input_zero_point != 0) == zero_point
    _, _, expected = _run(config, x, w, params, stall=stall, seed=seed,
                          per_tensor=not array.per_channel)
    assert ((expected > params.act_min) & (expected < params.act_max)).any()


# -- 2. the largest partial sums, exact across many passes ---------------------------------

@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
@pytest.mark.parametrize("options,kmax,depth", [
    # int16 × int8 over 256 products: a full 32-bit partial sum from 64 passes of 4
    (dict(act_bits=16, weight_bits=8, rounding="double"), 4, 256),
    # int8 × int8, 67 passes of 3 (the last one short)
    (dict(requant="shift", rounding="single"), 3, 200),
    # unsigned × binary, one product per pass (weight-stationary: a 1-row array)
    (dict(act_signed=False, **BINARY, rounding="half_to_even"), 1, 300),
], ids=["int16xint8", "int8xint8", "uint8xbinary"])
def test_worst_case_partial_sums_are_exact(dataflow, options, kmax, depth):
    """Every activation at its extreme, weights at both extremes (column 0 most negative,
    column 1 most positive), K = max_k: the partial sum reaches both ends of its range.
    A pass is kmax deep (output-stationary) or a K tile of kmax rows (weight-stationary)."""
    if dataflow == "weight_stationary":
        array = ArrayConfig(rows=kmax, cols=2, dataflow=dataflow, **options)
    else:
        array = ArrayConfig(rows=2, cols=2, kmax=kmax, **options)
    config = EngineConfig(array, max_k=depth, max_n=2, max_m=4)
    x_lo, x_hi = array.act_range
    w_lo, w_hi = array.weight_range
    x_extreme = x_lo if array.act_signed else x_hi   # largest |x·w_lo|
    x = np.full((3, depth), x_extreme, np.int64)     # os: two M tiles, the second ragged
    w = np.array([[w_lo] * depth, [w_hi] * depth], np.int64)
    sums = x[0] @ w.T
    peak = int(np.abs(sums).max())
    assert peak.bit_length() + 1 == config.partial_sum_bits   # the sum needs every bit
    assert config.partial_sum_bits > array.accumulator_bits   # which no single pass has
    # scale the peak to about half the output range, so it is neither lost nor clamped
    out_lo, out_hi = array.out_range
    shift = -(peak // (out_hi // 2)).bit_length()
    params = LayerParams.for_config(
        array, n=2, multiplier=None if array.requant == "shift" else (1 << 31) - 1,
        shift=shift, output_zero_point=0, act_min=out_lo, act_max=out_hi)
    _, _, expected = _run(config, x, w, params, per_tensor=True)
    assert ((expected > out_lo) & (expected < out_hi)).all()
    assert (np.sign(expected[0]) == np.sign(sums)).all() and (expected != 0).all()


# -- 3. last flags ------------------------------------------------------------------------------

@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
def test_last_marks_the_final_row_of_every_tile(dataflow):
    array = ArrayConfig(rows=3, cols=2, dataflow=dataflow, per_channel=True,
                        kmax=None if dataflow == "weight_stationary" else 2)
    config = EngineConfig(array, max_k=8, max_n=8, max_m=8)
    rng = np.random.default_rng(3)
    x = random_operand(rng, 8, True, (8, 5))      # os: 3 M tiles, the last one ragged
    w = random_operand(rng, 8, True, (7, 5))      # 4 N tiles, the last one ragged
    params = _random_params(array, rng, x, w, 7, zero_point=True)
    job, run, _ = _run(config, x, w, params, stall=0.3, seed=3)
    if dataflow == "weight_stationary":           # one tile of all M rows per N tile
        tiles, tile_rows = 4, 8
    else:                                         # one tile per (M tile, N tile)
        tiles, tile_rows = 3 * 4, array.rows
    assert len(run.lasts) == tiles * tile_rows and sum(run.lasts) == tiles
    assert [i for i, last in enumerate(run.lasts) if last] == [
        (tile + 1) * tile_rows - 1 for tile in range(tiles)]


# -- 4. utilization ----------------------------------------------------------------------------

def _cycle_bound(engine, job, kmax):
    """Unstalled: each tile's passes back to back (none shorter than pass_interval), after
    one fill (the first tiles' depth beats load before anything computes) and before one
    drain (latency to the last tile's row 0, then its rows one per row_interval)."""
    passes = [min(kmax, job.k - start) for start in range(0, job.k, kmax)]
    per_tile = sum(max(length, engine.pass_interval) for length in passes)
    tiles = job.command["m_tiles"] * job.command["n_tiles"]
    return tiles * per_tile + job.k + engine.latency + job.rows * engine.row_interval


@pytest.mark.parametrize("kmax,stall", [(32, 0.0), (2, 0.0), (32, 0.3)],
                         ids=["full-passes", "short-passes", "stalled"])
def test_utilization(kmax, stall):
    m = k = n = 32
    array = ArrayConfig(rows=4, cols=4, kmax=kmax, per_channel=True)
    config = EngineConfig(array, max_k=k, max_n=n)
    rng = np.random.default_rng(kmax)
    x = random_operand(rng, 8, True, (m, k))
    w = random_operand(rng, 8, True, (n, k))
    params = _random_params(array, rng, x, w, n, zero_point=True)
    job, run, _ = _run(config, x, w, params, stall=stall, seed=kmax)
    engine = _engine(config)
    bound = _cycle_bound(engine, job, kmax)
    ideal = (m // array.rows) * (n // array.cols) * k
    if stall:   # correct (checked in _run), and stalls only ever add cycles
        assert run.cycles > ideal
    else:
        assert run.cycles <= bound
        assert kmax < engine.pass_interval or (
            bound == ideal + k + engine.latency + array.rows * engine.row_interval and
            m * k * n / (array.rows * array.cols * run.cycles) > 0.95)


# -- 5. the error flag -------------------------------------------------------------------------

def _simulate_commands(config, commands, job, *, watch=8, max_cycles=20_000):
    """Send ``commands`` one after the other, then stream ``job``'s operands.

    For ``watch`` cycles after each command is taken, records ``error``, ``busy`` and whether
    any operand stream is ready. Returns (result rows, their last flags, the watched cycles
    of each command, ``error`` and ``busy`` once the results have drained). Nothing is
    asserted inside the simulation: a broken engine makes the caller's checks fail."""
    dut = GemmEngine(config)
    rows, lasts, watched, after = [], [], [], {}
    cycle = [0]

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def send(ctx, stream, beats):
        for fields in beats:
            ctx.set(stream.valid, 1)
            ctx.set(stream.payload, fields)
            await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def command(ctx):
        for fields in commands:
            await send(ctx, dut.command, [fields])
            seen = []
            for _ in range(watch):
                seen.append(dict(error=ctx.get(dut.error), busy=ctx.get(dut.busy),
                                 taking=any(ctx.get(getattr(dut, name).ready)
                                            for name in ("channels", "weights", "activations"))))
                await ctx.tick()
            watched.append(seen)

    beats = job.beats()

    async def channels(ctx):
        await send(ctx, dut.channels, beats["channels"])

    async def weights(ctx):
        await send(ctx, dut.weights, beats["weights"])

    async def activations(ctx):
        await send(ctx, dut.activations, beats["activations"])

    async def monitor(ctx):
        ctx.set(dut.results.ready, 1)
        while len(rows) < job.result_rows:
            *_, valid, payload = await ctx.tick().sample(dut.results.valid, dut.results.payload)
            if valid:
                rows.append([int(payload.y[j]) for j in range(job.cols)])
                lasts.append(bool(payload.last))
        extra = 0
        for _ in range(4 * (job.rows + job.cols) + 16):   # nothing more may come out
            *_, valid = await ctx.tick().sample(dut.results.valid)
            extra += valid
        after.update(extra_rows=extra, error=ctx.get(dut.error), busy=ctx.get(dut.busy))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(clock)
    for bench in (command, channels, weights, activations, monitor):
        sim.add_testbench(bench)
    while sim.advance() and cycle[0] < max_cycles:
        pass
    # Finalize testbenches left waiting (a broken engine) now, not during pytest's report.
    del sim
    gc.collect()
    assert len(rows) == job.result_rows, f"{len(rows)} of {job.result_rows} result rows"
    return np.array(rows, np.int64), lasts, watched, after


def _small_job(dataflow):
    # Room in the command's fields for one past every limit: output-stationary max_k = 6
    # (depth 7 fits 3 bits) and max_n_tiles = 2 (n_tiles 3 fits 2 bits); weight-stationary
    # max_k_tiles = 2 (k_tiles 3 fits 2 bits) and max_m = 5 (m 6 fits 3 bits).
    if dataflow == "weight_stationary":
        array = ArrayConfig(rows=2, cols=2, dataflow=dataflow, per_channel=True)
        config = EngineConfig(array, max_k=4, max_n=4, max_m=5)
        k = 3
    else:
        array = ArrayConfig(rows=2, cols=2, kmax=3, per_channel=True)
        config = EngineConfig(array, max_k=6, max_n=4)
        k = 5
    rng = np.random.default_rng(5)
    x = random_operand(rng, 8, True, (3, k))
    w = random_operand(rng, 8, True, (3, k))
    params = _random_params(array, rng, x, w, 3, zero_point=True)
    return config, x, w, params, engine_job(config, x, w, params)


BAD_FIELDS = {
    "output_stationary": [("depth", 0), ("depth", "max_k + 1"), ("n_tiles", 0),
                          ("n_tiles", "max_n_tiles + 1"), ("m_tiles", 0),
                          ("act_min", "act_max + 1")],
    "weight_stationary": [("k_tiles", 0), ("k_tiles", "max_k_tiles + 1"), ("n_tiles", 0),
                          ("n_tiles", "max_n_tiles + 1"), ("m", 0), ("m", "max_m + 1"),
                          ("act_min", "act_max + 1")],
}


@pytest.mark.parametrize("dataflow,field,value", [
    pytest.param(dataflow, *bad, id=f"{dataflow[0]}s-{bad[0]}={bad[1]}".replace(" ", ""))
    for dataflow, bads in BAD_FIELDS.items() for bad in bads])
def test_bad_command_sets_error_and_is_dropped(dataflow, field, value):
    config, x, w, params, job = _small_job(dataflow)
    limits = {"max_k + 1": config.max_k + 1, "max_n_tiles + 1": config.max_n_tiles + 1,
              "max_k_tiles + 1": config.max_k_tiles + 1, "max_m + 1": config.max_m + 1,
              "act_max + 1": job.command["act_max"] + 1}
    bad = dict(job.command)
    assert field in bad
    bad[field] = limits.get(value, value)
    field_shape = Shape.cast(engine_layouts(config)["command"].members[field])
    assert field_shape.signed or bad[field] < 1 << field_shape.width   # representable
    rows, lasts, watched, after = _simulate_commands(config, [bad, job.command], job)
    # the bad command is checked once held, raises error and is dropped: the engine is idle
    checking = ERROR_LATENCY - 1
    assert watched[0] == ([dict(error=0, busy=1, taking=False)] * checking +
                          [dict(error=1, busy=0, taking=False)] * (len(watched[0]) - checking))
    # the valid command that follows still computes correctly; error is sticky
    assert watched[1][0]["busy"] and not after["busy"] and after["error"]
    np.testing.assert_array_equal(job.outputs(rows), _golden(config.array, params, x, w))
    assert lasts == _expected_lasts(job) and not after["extra_rows"]


@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
def test_valid_command_leaves_error_low(dataflow):
    config, x, w, params, job = _small_job(dataflow)
    rows, lasts, watched, after = _simulate_commands(config, [job.command], job)
    assert not any(cycle["error"] for cycle in watched[0]) and not after["error"]
    # busy from the cycle after the command; operands are taken from START_LATENCY cycles on
    taking = [cycle["taking"] for cycle in watched[0]]
    assert taking[:START_LATENCY] == [False] * (START_LATENCY - 1) + [True]
    assert watched[0][0]["busy"] and not after["busy"]
    np.testing.assert_array_equal(job.outputs(rows), _golden(config.array, params, x, w))
    assert lasts == _expected_lasts(job) and not after["extra_rows"]


# -- 6. parameter validation, before any hardware ----------------------------------------------

@pytest.mark.parametrize("options,match", [
    (dict(input_zero_point_in_hw=True), r"array\.input_zero_point_in_hw must be False"),
    (dict(weight_zero_point_in_hw=True), r"array\.weight_zero_point_in_hw must be False"),
])
def test_engine_config_rejects_array(options, match):
    with pytest.raises(ValueError, match=match):
        EngineConfig(ArrayConfig(rows=2, cols=2, **options))


@pytest.mark.parametrize("name,value,error,match", [
    ("max_k", 0, ValueError, r"max_k must be in \[1, 65536\], not 0"),
    ("max_k", (1 << 16) + 1, ValueError, r"max_k must be in \[1, 65536\], not 65537"),
    ("max_k", 8.0, TypeError, r"max_k must be an integer, not 8\.0"),
    ("max_k", True, TypeError, r"max_k must be an integer, not True"),
    ("max_n", 0, ValueError, r"max_n must be in \[1, 16384\], not 0"),
    ("max_n", (1 << 14) + 1, ValueError, r"max_n must be in \[1, 16384\], not 16385"),
    ("max_m", 0, ValueError, r"max_m must be in \[1, 65536\], not 0"),
    ("max_m", (1 << 16) + 1, ValueError, r"max_m must be in \[1, 65536\], not 65537"),
])
def test_engine_config_rejects_sizes(name, value, error, match):
    with pytest.raises(error, match=match):
        EngineConfig(ArrayConfig(rows=2, cols=2, kmax=4), **{name: value})


def test_engine_config_rejects_partial_sums_wider_than_int32():
    # int8 × int8 fits 32 bits even at the largest max_k, 2^16: 2^16·2^14 = 2^30
    int8 = ArrayConfig(rows=2, cols=2, kmax=8)
    assert EngineConfig(int8, max_k=1 << 16).partial_sum_bits == 32
    # int16 × int8: up to 511 products stay below 2^31 (511·2^22), 512 reach it
    wide = ArrayConfig(rows=2, cols=2, kmax=16, act_bits=16, weight_bits=8)
    assert EngineConfig(wide, max_k=511).partial_sum_bits == 32
    assert accumulator_bits(512, wide.act_range, wide.weight_range) == 33
    with pytest.raises(ValueError, match=r"max_k=512 needs a 33-bit partial sum"):
        EngineConfig(wide, max_k=512)


def test_engine_config_and_engine_reject_wrong_types():
    with pytest.raises(TypeError, match=r"array must be an ArrayConfig, not \{'rows': 2\}"):
        EngineConfig({"rows": 2})
    with warnings.catch_warnings():   # the half-built engine is never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match=r"config must be an EngineConfig, not ArrayConfig"):
            GemmEngine(ArrayConfig(rows=2, cols=2))
        gc.collect()


def _job_inputs(**changes):
    array = ArrayConfig(rows=2, cols=2, **(dict(kmax=4) | changes.pop("array", {})))
    config = EngineConfig(array, max_k=8, max_n=6, max_m=5)
    params = LayerParams.for_config(array, n=changes.pop("n", 3), multiplier=1 << 30, shift=-8,
                                    output_zero_point=0, act_min=-128, act_max=127)
    x = changes.pop("x", np.zeros((5, 8), np.int64))
    w = changes.pop("w", np.zeros((3, 8), np.int64))
    return config, x, w, params


@pytest.mark.parametrize("changes,error,match", [
    (dict(x=np.zeros((5, 9), np.int64), w=np.zeros((3, 9), np.int64)), ValueError,
     r"K must be in \[1, 8\] for this engine, not 9"),
    (dict(x=np.zeros((5, 0), np.int64), w=np.zeros((3, 0), np.int64)), ValueError,
     r"K must be in \[1, 8\] for this engine, not 0"),
    (dict(n=7, w=np.zeros((7, 8), np.int64)), ValueError,
     r"N must be in \[1, 6\] for this engine, not 7"),
    (dict(x=np.zeros((0, 8), np.int64)), ValueError, r"M must be in \[1, \d+\] .*not 0"),
    (dict(array=dict(dataflow="weight_stationary", kmax=None), x=np.zeros((6, 8), np.int64)),
     ValueError, r"M must be in \[1, 5\] for this engine, not 6"),
    (dict(x=np.full((5, 8), 128)), ValueError, r"x must be in \[-128, 127\], not 128"),
    (dict(x=np.full((5, 8), -129)), ValueError, r"x must be in \[-128, 127\], not -129"),
    (dict(array=dict(act_signed=False), x=np.full((5, 8), -1)), ValueError,
     r"x must be in \[0, 255\], not -1"),
    (dict(w=np.full((3, 8), -129)), ValueError, r"w must be in \[-128, 127\], not -129"),
    (dict(array=BINARY, w=np.zeros((3, 8), np.int64)), ValueError,
     r"w must hold only -1 and \+1 for weight_kind='binary'"),
    (dict(w=np.zeros((3, 7), np.int64)), ValueError, r"w must have K=8 columns like x, not 7"),
    (dict(w=np.zeros(8, np.int64)), ValueError, r"x and w must be 2-D .*not \(5, 8\) and \(8,\)"),
])
def test_engine_job_rejects(changes, error, match):
    config, x, w, params = _job_inputs(**changes)
    with pytest.raises(error, match=match):
        engine_job(config, x, w, params)


# -- 7. consecutive commands on one engine ---------------------------------------------------

@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
def test_consecutive_commands_of_different_shapes(dataflow):
    """Three commands back to back on one engine, each with its own shape and parameters: no
    state (partial sums, weight banks, counters, credits) leaks from one into the next."""
    array = ArrayConfig(rows=3, cols=2, kmax=4 if dataflow == "output_stationary" else None,
                        dataflow=dataflow, per_channel=True)
    config = EngineConfig(array, max_k=16, max_n=8, max_m=12)
    rng = np.random.default_rng(21)
    work = []
    for m, k, n in ((5, 11, 3), (1, 16, 8), (12, 2, 5)):
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int64)
        w = rng.integers(-128, 128, size=(n, k), dtype=np.int64)
        params = _random_params(array, rng, x, w, n, zero_point=True)
        work.append((engine_job(config, x, w, params), _golden(array, params, x, w)))
    runs = run_engine(config, [job for job, _ in work], stall=0.3, seed=4)
    for (job, expected), run in zip(work, runs, strict=True):
        np.testing.assert_array_equal(job.outputs(run.rows), expected)
        assert run.lasts == _expected_lasts(job)
        assert not run.error


@pytest.mark.parametrize("rows,cols,dataflow", [
    (1, 1, "weight_stationary"), (3, 2, "weight_stationary"), (4, 4, "weight_stationary"),
    (1, 1, "output_stationary"), (2, 3, "output_stationary"), (4, 4, "output_stationary"),
])
def test_latency_is_exact(rows, cols, dataflow):
    """One tile, unstalled: its operands load (K beats, all streams at once), its K beats issue
    (output-stationary; weight-stationary issues its one row as the weight tile completes), and
    the rows arrive GemmEngine.latency after the beat that completes them."""
    k = rows if dataflow == "weight_stationary" else 5
    array = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, per_channel=True,
                        kmax=None if dataflow == "weight_stationary" else 8)
    config = EngineConfig(array, max_k=16, max_n=8, max_m=8)
    m = 1 if dataflow == "weight_stationary" else rows
    rng = np.random.default_rng(rows * 10 + cols)
    x = random_operand(rng, 8, True, (m, k))
    w = random_operand(rng, 8, True, (cols, k))
    params = _random_params(array, rng, x, w, cols, zero_point=False)
    _, run, _ = _run(config, x, w, params)
    engine = _engine(config)
    latency = engine.latency
    if dataflow == "weight_stationary":
        # loads k = rows beats, then its row issues once the weight tile (k beats, full a
        # cycle later) and the channel table (its one beat taken TABLE_TAKE_LATENCY cycles
        # after the command starts, loaded TABLE_LOADED_LATENCY cycles later) are both in
        table = TABLE_TAKE_LATENCY + TABLE_LOADED_LATENCY
        assert run.cycles == max(k, table) + latency + 1
    else:      # loads k beats, sees them ISSUE_CHECK_LATENCY later, issues k, rows 0 … R−1
        assert run.cycles == (2 * k + ISSUE_CHECK_LATENCY + latency +
                              (rows - 1) * engine.row_interval)


# -- 8. the host layout is the documented beat order ------------------------------------------

@pytest.mark.parametrize("dataflow", DATAFLOWS, ids=["os", "ws"])
@pytest.mark.parametrize("seed", range(4))
def test_engine_job_beats_follow_docs(dataflow, seed):
    """Every beat of every stream, read back with the order docs/engine.md states, element by
    element in plain Python: x, w and the channel table are where the protocol says."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    m, k, n = (int(v) for v in rng.integers(1, 12, size=3))
    array = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, per_channel=True,
                        kmax=None if dataflow == "weight_stationary" else 4)
    config = EngineConfig(array, max_k=16, max_n=16, max_m=16)
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int64)
    w = rng.integers(-128, 128, size=(n, k), dtype=np.int64)
    params = _random_params(array, rng, x, w, n, zero_point=False)
    job = engine_job(config, x, w, params)

    def x_at(i, kk):
        return int(x[i, kk]) if i < m and kk < k else 0   # padding is zero

    def w_at(j, kk):
        return int(w[j, kk]) if j < n and kk < k else 0

    n_tiles = -(-n // cols)
    beat = 0
    if dataflow == "output_stationary":
        m_tiles = -(-m // rows)
        assert (job.command["m_tiles"], job.command["n_tiles"], job.command["depth"]) == \
            (m_tiles, n_tiles, k)
        for t in range(m_tiles):           # M tile by M tile, k = 0 first, lane i = row i
            for kk in range(k):
                assert [int(v) for v in job.activations[beat]] == \
                    [x_at(t * rows + i, kk) for i in range(rows)]
                beat += 1
        beat = 0
        for t in range(n_tiles):           # N tile by N tile, k = 0 first
            for kk in range(k):
                assert [int(v) for v in job.weights[beat]] == \
                    [w_at(t * cols + j, kk) for j in range(cols)]
                beat += 1
    else:
        k_tiles = -(-k // rows)
        assert (job.command["m"], job.command["n_tiles"], job.command["k_tiles"]) == \
            (m, n_tiles, k_tiles)
        for t in range(k_tiles):           # K tile by K tile, row 0 first, lane = column
            for i in range(m):
                assert [int(v) for v in job.activations[beat]] == \
                    [x_at(i, t * rows + kk) for kk in range(rows)]
                beat += 1
        beat = 0
        for tn in range(n_tiles):          # for each N tile, each K tile, k = 0 first
            for tk in range(k_tiles):
                for kk in range(rows):
                    assert [int(v) for v in job.weights[beat]] == \
                        [w_at(tn * cols + j, tk * rows + kk) for j in range(cols)]
                    beat += 1
    assert beat == len(job.weights)
    for t in range(n_tiles):                # one channel-table beat per N tile
        for j in range(cols):
            channel = t * cols + j
            if channel < n:
                assert int(job.channels["shift"][t][j]) == int(params.shift[channel])
                assert int(job.channels["multiplier"][t][j]) == int(params.multiplier[channel])
                assert int(job.channels["bias"][t][j]) == int(params.bias[channel])
            else:
                assert int(job.channels["multiplier"][t][j]) == 0
