"""Drive a MacArray in Amaranth's simulator: stream drivers with stall knobs and a monitor.

No Verilog and no external simulator: fast unit tests (tests/hw) and the demo use it beside
the cocotb benches, which run the generated Verilog. Jobs and parameters are those of
:class:`sim.workload.Workload`.
"""

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from hw.host import encode_weights
from hw.top import MacArray


@dataclass
class Run:
    outputs: np.ndarray                                   # [rows delivered, cols]
    lasts: list = field(default_factory=list)             # results.last per row
    accept_cycles: list = field(default_factory=list)     # cycle of each accepted operand or
                                                          # activation beat
    last_accept_cycles: list = field(default_factory=list)  # cycle of each accepted last beat
    output_cycles: list = field(default_factory=list)     # cycle of each delivered row
    busy_after: bool = True
    depth_error: bool = False
    latency: int = 0                                      # MacArray.latency of the DUT


def _set_params(ctx, dut, config, bias, multiplier, shift, output_zero_point, act_min, act_max,
                input_zero_point=0, weight_zero_point=0):
    for j in range(config.cols):
        ctx.set(dut.bias[j], int(bias[j]))
    for c in range(config.requant_channels):
        if config.requant == "multiplier":
            ctx.set(dut.multiplier[c], int(multiplier[c]))
        ctx.set(dut.shift[c], int(shift[c]))
    ctx.set(dut.output_zero_point, output_zero_point)
    ctx.set(dut.act_min, act_min)
    ctx.set(dut.act_max, act_max)
    if config.input_zero_point_in_hw:
        ctx.set(dut.input_zero_point, input_zero_point)
    if config.weight_zero_point_in_hw:
        ctx.set(dut.weight_zero_point, weight_zero_point)


def _run(sim, cycle, max_cycles):
    """Advance until the testbenches are done, or ``max_cycles`` have passed."""
    while sim.advance() and cycle[0] < max_cycles:
        pass


def run_array(config, jobs, params, *, in_stall=0.0, out_stall=0.0, seed=0, max_cycles=200_000):
    """Run ``jobs`` through a MacArray.

    Output-stationary job: (x [rows, K], w [cols, K]); weight-stationary job: (x [B, rows],
    w [cols, rows]). ``params`` holds hardware-ready bias (folded), per-channel arrays of
    multiplier/shift (length ``requant_channels``), zero point and clamp. Returns a :class:`Run`.
    """
    rng = random.Random(seed)
    dut = MacArray(config)
    expected_rows = sum(len(x) if config.weight_stationary else config.rows for x, _ in jobs)
    run = Run(outputs=None, latency=dut.latency)
    rows = []
    cycle = [0]

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def stalls(ctx, stream, probability):
        while rng.random() < probability:
            ctx.set(stream.valid, 0)
            await ctx.tick()

    async def send(ctx, stream, fields, record=False):
        ctx.set(stream.valid, 1)
        for name, values in fields.items():
            member = getattr(stream.payload, name)
            if name == "last":
                ctx.set(member, int(values))
            else:
                for lane, value in enumerate(values):
                    ctx.set(member[lane], int(value))
        await ctx.tick().until(stream.ready)
        if record:
            run.accept_cycles.append(cycle[0] - 1)
            if fields.get("last"):
                run.last_accept_cycles.append(cycle[0] - 1)

    async def os_driver(ctx):
        _set_params(ctx, dut, config, **params)
        for x, w in jobs:
            w = encode_weights(w, config)
            k_depth = x.shape[1]
            for k in range(k_depth):
                await stalls(ctx, dut.operands, in_stall)
                await send(ctx, dut.operands, {"x": x[:, k], "w": w[:, k],
                                               "last": k == k_depth - 1}, record=True)
            ctx.set(dut.operands.valid, 0)

    async def ws_weights(ctx):
        _set_params(ctx, dut, config, **params)
        for _, w in jobs:
            w = encode_weights(w, config)
            for k in range(config.rows):
                await stalls(ctx, dut.weights, in_stall)
                await send(ctx, dut.weights, {"w": w[:, k]})
            ctx.set(dut.weights.valid, 0)

    async def ws_activations(ctx):
        for x, _ in jobs:
            for b in range(len(x)):
                await stalls(ctx, dut.activations, in_stall)
                await send(ctx, dut.activations, {"x": x[b], "last": b == len(x) - 1},
                           record=True)
            ctx.set(dut.activations.valid, 0)

    async def monitor(ctx):
        while len(rows) < expected_rows:
            ready = rng.random() >= out_stall
            ctx.set(dut.results.ready, ready)
            *_, valid, payload = await ctx.tick().sample(dut.results.valid, dut.results.payload)
            if ready and valid:
                rows.append([int(payload.y[j]) for j in range(config.cols)])
                run.lasts.append(bool(payload.last))
                run.output_cycles.append(cycle[0] - 1)
        ctx.set(dut.results.ready, 0)
        for _ in range(4 * (config.rows + config.cols) + 16):  # nothing more may come out
            *_, valid = await ctx.tick().sample(dut.results.valid)
            assert not valid, "the array delivered more rows than it was given work for"
        run.busy_after = bool(ctx.get(dut.busy))
        if not config.weight_stationary:
            run.depth_error = bool(ctx.get(dut.depth_error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(clock)
    if config.weight_stationary:
        sim.add_testbench(ws_weights)
        sim.add_testbench(ws_activations)
    else:
        sim.add_testbench(os_driver)
    sim.add_testbench(monitor)
    _run(sim, cycle, max_cycles)
    if len(rows) != expected_rows:
        raise AssertionError(f"got {len(rows)} result rows in {max_cycles} cycles, "
                             f"expected {expected_rows}")
    run.outputs = np.array(rows, dtype=np.int64).reshape(-1, config.cols)
    return run


@dataclass
class EngineRun:
    rows: np.ndarray            # [result rows, cols], in delivery order
    lasts: list
    cycles: int                 # first input beat accepted → last result row delivered
    error: bool                 # the engine's sticky error flag after this command's rows


def run_engine(config, jobs, *, stall=0.0, seed=0, max_cycles=2_000_000):
    """Run ``jobs`` (:class:`hw.host.EngineJob`) through one :class:`hw.engine.GemmEngine` of
    ``config`` in Amaranth's simulator, as consecutive commands; one :class:`EngineRun` each.

    ``stall`` is the probability of an idle cycle before each input beat and of
    ``results.ready`` low in a cycle, independently on every stream. The input streams carry
    every job's beats back to back: the engine takes a job's beats only after its command.
    """
    from hw.engine import GemmEngine

    jobs = list(jobs)
    rng = random.Random(seed)
    dut = GemmEngine(config)
    cycle = [0]
    first_accept = [None] * len(jobs)   # per job: cycle of its first input beat accepted
    deliveries, rows, lasts, errors = [], [], [], []
    cols = config.array.cols

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def send_all(ctx, stream, beats_per_job, record):
        for index, beats in enumerate(beats_per_job):
            for fields in beats:
                while rng.random() < stall:
                    ctx.set(stream.valid, 0)
                    await ctx.tick()
                ctx.set(stream.valid, 1)
                ctx.set(stream.payload, fields)
                await ctx.tick().until(stream.ready)
                accepted = cycle[0] - 1
                if record and (first_accept[index] is None or accepted < first_accept[index]):
                    first_accept[index] = accepted
        ctx.set(stream.valid, 0)

    beats = [job.beats() for job in jobs]

    def stream_driver(name, record):
        async def driver(ctx):
            await send_all(ctx, getattr(dut, name), [job_beats[name] for job_beats in beats],
                           record)
        return driver

    async def monitor(ctx):
        for job in jobs:
            job_rows, job_lasts = [], []
            while len(job_rows) < job.result_rows:
                ready = rng.random() >= stall
                ctx.set(dut.results.ready, ready)
                *_, valid, payload = await ctx.tick().sample(dut.results.valid,
                                                             dut.results.payload)
                if ready and valid:
                    job_rows.append([int(payload.y[j]) for j in range(cols)])
                    job_lasts.append(bool(payload.last))
            deliveries.append(cycle[0] - 1)
            rows.append(job_rows)
            lasts.append(job_lasts)
            errors.append(bool(ctx.get(dut.error)))
        ctx.set(dut.results.ready, 1)
        span = config.array.rows + cols
        for _ in range(4 * span + 16):  # nothing more may come out
            *_, valid = await ctx.tick().sample(dut.results.valid)
            assert not valid, "the engine delivered more rows than the commands ask for"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(clock)
    sim.add_testbench(stream_driver("command", record=False))
    for name in beats[0] if beats else ():   # channels, weights, activations[, table]
        if name != "command":
            sim.add_testbench(stream_driver(name, record=True))
    sim.add_testbench(monitor)
    _run(sim, cycle, max_cycles)
    if len(rows) != len(jobs):
        delivered = sum(map(len, rows))
        raise AssertionError(f"got {len(rows)} of {len(jobs)} commands' results "
                             f"({delivered} rows) in {max_cycles} cycles")
    return [EngineRun(np.array(job_rows, np.int64).reshape(-1, cols), job_lasts,
                      delivered - first + 1, error)
            for job_rows, job_lasts, delivered, first, error in
            zip(rows, lasts, deliveries, first_accept, errors, strict=True)]
