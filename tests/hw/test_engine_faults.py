"""GemmEngine fault campaign in Amaranth's simulator: commands back to back with random shapes
and parameters, random stalls on every stream, illegal commands between legal ones, resets in
the middle of a command. Every legal command that runs to its end is exact against
golden.layers.fully_connected (and its ``last`` flags), every illegal one raises ``error``
``ERROR_LATENCY`` cycles after it is taken and takes no beat, and a reset leaves the engine
ready for the next command with nothing left over.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Shape, Signal
from amaranth.sim import Simulator

from golden.layers import fully_connected
from hw.config import ArrayConfig, EngineConfig
from hw.engine import GemmEngine, engine_layouts
from hw.engine.command import ERROR_LATENCY
from hw.host import LayerParams, engine_job

INPUTS = ("command", "channels", "weights", "activations")
#: Cycles after a segment (and after a reset) in which no result row may appear.
QUIET_CYCLES = 40
#: A command that has not finished this many cycles after its last input beat has hung.
HANG_CYCLES = 4000

CONFIGS = {
    "os": EngineConfig(ArrayConfig(rows=2, cols=2, kmax=3, per_channel=True),
                       max_k=8, max_n=4, max_m=4),
    "ws": EngineConfig(ArrayConfig(rows=2, cols=2, dataflow="weight_stationary",
                                   per_channel=True), max_k=8, max_n=4, max_m=4),
}


@dataclass
class Legal:
    job: object
    expected: np.ndarray
    abort_after: int | None = None      # reset once this many input beats were taken
    rows: list = field(default_factory=list)
    lasts: list = field(default_factory=list)


@dataclass
class Illegal:
    command: dict
    why: str


def _legal(config, rng, *, abort=False):
    """A random GEMM within ``config``'s limits, its job and golden's Y."""
    array = config.array
    m = int(rng.integers(1, config.max_m + 1 if config.weight_stationary else 7))
    k = int(rng.integers(1, config.max_k + 1))
    n = int(rng.integers(1, config.max_n + 1))
    x = rng.integers(-128, 128, (m, k), dtype=np.int64)
    w = rng.integers(-128, 128, (n, k), dtype=np.int64)
    zx, zy = int(rng.integers(-20, 21)), int(rng.integers(-10, 11))
    lo = int(rng.integers(-128, -60))
    hi = int(rng.integers(60, 128))
    params = LayerParams.for_config(
        array, n=n, bias=rng.integers(-2000, 2001, n),
        multiplier=rng.integers(1 << 30, 1 << 31, n), shift=rng.integers(-12, -6, n),
        output_zero_point=zy, act_min=lo, act_max=hi, input_zero_point=zx)
    expected = fully_connected(x, w, params.bias, input_zero_point=zx, weight_zero_point=0,
                               output_zero_point=zy, multiplier=params.multiplier,
                               shift=params.shift, act_min=lo, act_max=hi)
    job = engine_job(config, x, w, params)
    beats = sum(len(job.beats()[name]) for name in INPUTS)
    return Legal(job, expected, int(rng.integers(1, beats + 1)) if abort else None)


def _illegal(config, rng):
    """A command the engine must refuse (docs/engine.md): a shape field zero or beyond the
    buffers, or act_min > act_max; the limits are the configuration's, not the engine's."""
    if config.weight_stationary:
        limits = {"m": config.max_m, "n_tiles": config.max_n_tiles,
                  "k_tiles": config.max_k_tiles}
    else:
        limits = {"m_tiles": None, "n_tiles": config.max_n_tiles, "depth": config.max_k}
    command = {name: 1 for name in limits}
    command.update(output_zero_point=0, act_min=-5, act_max=5)
    layout = engine_layouts(config)["command"]
    choices = [(name, 0) for name in limits]
    for name, limit in limits.items():
        width = Shape.cast(layout[name].shape).width
        if limit is not None and limit + 1 < (1 << width):
            choices.append((name, limit + 1))
    choices.append(("act_min", None))
    name, value = choices[int(rng.integers(len(choices)))]
    if name == "act_min":
        command.update(act_min=6, act_max=5)
        return Illegal(command, "act_min > act_max")
    command[name] = value
    return Illegal(command, f"{name} = {value}")


def _segments(config, rng, count):
    """``count`` segments, each 1–3 legal commands back to back with at most one illegal
    command among them, the last legal one sometimes cut by a reset."""
    segments = []
    for _ in range(count):
        ops = [_legal(config, rng) for _ in range(int(rng.integers(1, 4)))]
        if rng.random() < 0.5:
            ops.insert(int(rng.integers(0, len(ops) + 1)), _illegal(config, rng))
        if rng.random() < 0.4:
            ops.append(_legal(config, rng, abort=True))
        segments.append(ops)
    return segments


def run_campaign(config, segments, *, stall, seed):
    """Drive ``segments`` through one GemmEngine; fill in each legal op's rows. Returns what
    was observed of the illegal commands: (why, error before, error after, beats taken)."""
    rng = np.random.default_rng(seed)
    rst = Signal()
    engine = GemmEngine(config)
    dut = ResetInserter(rst)(engine)
    flagged = []

    async def pulse_reset(ctx):
        ctx.set(rst, 1)
        for name in INPUTS:
            ctx.set(getattr(engine, name).valid, 0)
        await ctx.tick()
        ctx.set(rst, 0)
        assert not ctx.get(engine.error) and not ctx.get(engine.busy)

    async def quiet(ctx, cycles):
        ctx.set(engine.results.ready, 1)
        for _ in range(cycles):
            assert not ctx.get(engine.results.valid), "a result row nobody asked for"
            await ctx.tick()

    async def bench(ctx):
        for ops in segments:
            queues = {name: [] for name in INPUTS}
            for op in ops:
                if isinstance(op, Illegal):
                    queues["command"].append(op)
                    continue
                beats = op.job.beats()
                queues["command"].append(op)
                for name in INPUTS[1:]:
                    queues[name] += [(op, fields) for fields in beats[name]]
            pending = [op for op in ops if isinstance(op, Legal)]
            offering = dict.fromkeys(INPUTS, False)
            taken, idle = 0, 0
            refusing = []   # illegal commands taken, cycles until their error shows
            while pending or queues["command"]:
                current = pending[0] if pending else None
                for name in INPUTS:
                    port = getattr(engine, name)
                    if queues[name] and not offering[name]:
                        offering[name] = rng.random() >= stall
                    ctx.set(port.valid, offering[name])
                    if offering[name]:
                        head = queues[name][0]
                        fields = head.job.command if name == "command" and \
                            isinstance(head, Legal) else head.command if name == "command" \
                            else head[1]
                        ctx.set(port.payload, fields)
                ready = rng.random() >= stall
                ctx.set(engine.results.ready, ready)
                accepted = {name: offering[name] and ctx.get(getattr(engine, name).ready)
                            for name in INPUTS}
                row_valid = ctx.get(engine.results.valid)
                payload = ctx.get(engine.results.payload)
                error_before = ctx.get(engine.error)
                await ctx.tick()
                idle += 1
                for name in INPUTS:
                    if accepted[name]:
                        head = queues[name].pop(0)
                        offering[name] = False
                        idle = 0
                        if isinstance(head, Illegal):   # error shows ERROR_LATENCY later
                            refusing.append([ERROR_LATENCY - 1, head.why, error_before,
                                             any(accepted[name] for name in INPUTS[1:])])
                        elif name != "command" or head is current:
                            taken += 1
                for entry in list(refusing):
                    if entry[0] == 0:
                        refusing.remove(entry)
                        why, before, beat = entry[1:]
                        flagged.append((why, before, ctx.get(engine.error), beat))
                    entry[0] -= 1
                if ready and row_valid:
                    assert current is not None, "a result row nobody asked for"
                    current.rows.append([int(v) for v in payload.y])
                    current.lasts.append(bool(payload.last))
                    idle = 0
                if current is None:
                    continue
                if current.abort_after is not None and taken >= current.abort_after:
                    await pulse_reset(ctx)
                    pending.pop(0)
                    break
                if len(current.rows) == current.job.result_rows:
                    pending.pop(0)
                    taken = 0
                assert idle < HANG_CYCLES, f"the engine hung on {current.job.command}"
            for name in INPUTS:
                ctx.set(getattr(engine, name).valid, 0)
            for countdown, why, before, beat in sorted(refusing):   # the segment's last op
                for _ in range(countdown + 1):
                    await ctx.tick()
                flagged.append((why, before, ctx.get(engine.error), beat))
            await quiet(ctx, QUIET_CYCLES)
            await pulse_reset(ctx)     # clears the sticky error for the next segment
            await quiet(ctx, QUIET_CYCLES)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return flagged


def check_campaign(config, segments, flagged):
    for ops in segments:
        for op in ops:
            if isinstance(op, Legal) and op.abort_after is None:
                np.testing.assert_array_equal(op.job.outputs(np.array(op.rows, np.int64)),
                                              op.expected)
                tile = op.job.m if config.weight_stationary else op.job.rows
                assert op.lasts == ([False] * (tile - 1) + [True]) * (op.job.result_rows
                                                                       // tile)
    illegal = [op.why for ops in segments for op in ops if isinstance(op, Illegal)]
    # every illegal command was taken, flagged at once, and took no beat
    assert [why for why, *_ in flagged] == illegal
    for why, before, after, beat in flagged:
        assert (before, after, beat) == (0, 1, False), why


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("seed", [1])
def test_engine_fault_campaign(dataflow, seed):
    config = CONFIGS[dataflow]
    rng = np.random.default_rng(seed)
    segments = _segments(config, rng, 3)
    flagged = run_campaign(config, segments, stall=0.3, seed=seed)
    check_campaign(config, segments, flagged)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("seed", range(2, 8))
def test_engine_fault_campaign_long(dataflow, seed):
    config = CONFIGS[dataflow]
    rng = np.random.default_rng(seed)
    segments = _segments(config, rng, 6)
    flagged = run_campaign(config, segments, stall=float(rng.choice([0.0, 0.2, 0.6])),
                           seed=seed)
    check_campaign(config, segments, flagged)
