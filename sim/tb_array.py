"""cocotb bench: a generated MacArray against golden/, every output element.

The spec (:func:`sim.streams.load_spec`) names a configuration, a workload (``workload``:
"random" or "worst_case", ``seed``, ``jobs``, ``zero_points``, ``depth``) and the stall
probabilities of the input and output streams (``in_stall``, ``out_stall``). The bench
rebuilds the workload with :mod:`sim.workload` (golden/ computes the expected rows), drives
it, and the scoreboard compares every delivered row and ``last`` flag, in order, with
golden's; the sink checks the results stream's ready/valid discipline. It reports the cycle
of every transfer so that the caller can check latency and throughput against the manifest.
"""

import json
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.gemm import exact_matmul
from golden.layers import fully_connected
from hw.config import ArrayConfig
from hw.host import LayerParams, encode_weights
from hw.top import stream_layouts

from .streams import (
    CycleCounter,
    StreamDriver,
    StreamSink,
    load_spec,
    pack,
    reset,
    save_report,
    scoreboard,
    start_clock,
    unpack,
    wait_until,
)
from .workload import Workload, random_workload, worst_case_workload


def _set(signal, values):
    """Drive a packed array port: one lane per value, lane 0 at the LSB, lanes of equal width."""
    values = [int(v) for v in values]
    width, extra = divmod(len(signal), len(values))
    assert not extra, f"{len(values)} lanes do not divide {len(signal)} bits of {signal._name}"
    bits = 0
    for lane, value in enumerate(values):
        bits |= (value & ((1 << width) - 1)) << (lane * width)
    signal.value = bits


def _set_params(dut, config, params):
    channels = config.requant_channels
    _set(dut.bias, params["bias"])
    _set(dut.shift, params["shift"][:channels])
    if config.requant == "multiplier":
        _set(dut.multiplier, params["multiplier"][:channels])
    for name in ("output_zero_point", "act_min", "act_max"):
        _set(getattr(dut, name), [params[name]])
    for name in ("input_zero_point", "weight_zero_point"):
        if getattr(config, f"{name}_in_hw"):
            _set(getattr(dut, name), [params[name]])


def _beats(config, layouts, jobs):
    """Packed input beats per stream, in order."""
    if config.weight_stationary:
        weights, activations = [], []
        for x, w in jobs:
            w = encode_weights(w, config)
            weights += [pack(layouts["weights"], {"w": w[:, k].tolist()})
                        for k in range(config.rows)]
            activations += [pack(layouts["activations"],
                                 {"x": x[b].tolist(), "last": int(b == len(x) - 1)})
                            for b in range(len(x))]
        return {"weights": weights, "activations": activations}
    operands = []
    for x, w in jobs:
        w = encode_weights(w, config)
        depth = x.shape[1]
        operands += [pack(layouts["operands"], {"x": x[:, k].tolist(), "w": w[:, k].tolist(),
                                                "last": int(k == depth - 1)})
                     for k in range(depth)]
    return {"operands": operands}


def _worst_case_zero_points(config, jobs):
    """The worst case with zero points subtracted in hardware: raw operands at one end of
    their range and zero points at the other, so that x − Zx and w − Zw are the widest
    differences (N + 1 bits) and every product is the largest, K = kmax (rows for
    weight-stationary). Otherwise as :func:`sim.workload.worst_case_workload`."""
    def operand(raw_range, in_hw, plain):
        return (raw_range[0], raw_range[1]) if in_hw else (plain, 0)

    x_raw, zx = operand(config.act_zero_point_range, config.input_zero_point_in_hw,
                        config.act_range[0] if config.act_signed else config.act_range[1])
    w_raw, zw = operand(config.weight_zero_point_range, config.weight_zero_point_in_hw,
                        config.weight_range[0])
    depth = config.rows if config.weight_stationary else config.kmax
    peak = depth * (x_raw - zx) * (w_raw - zw)
    out_hi = config.out_range[1]
    shift = max(-(abs(peak) // max(out_hi // 2, 1)).bit_length(), config.shift_range[0])
    layer = LayerParams.for_config(
        config, n=config.cols, bias=np.zeros(config.cols, np.int64),
        multiplier=None if config.requant == "shift" else (1 << 31) - 1, shift=shift,
        output_zero_point=0, act_min=config.out_range[0], act_max=out_hi,
        input_zero_point=zx, weight_zero_point=zw)
    x = np.full((config.rows, depth), x_raw, np.int64)
    w = np.full((config.cols, depth), w_raw, np.int64)
    expected = fully_connected(
        x, w, layer.bias, input_zero_point=zx, weight_zero_point=zw, output_zero_point=0,
        multiplier=None if config.requant == "shift" else layer.multiplier, shift=layer.shift,
        act_min=layer.act_min, act_max=layer.act_max, rounding=config.rounding)
    return Workload(config, layer, jobs=[(x, w)] * jobs,
                    expected=np.concatenate([expected] * jobs))


def _peak_accumulator(work):
    """Largest |Σ (x − Zx)(w − Zw)| of the run: how far the accumulators were pushed."""
    zx, zw = work.layer.input_zero_point, work.layer.weight_zero_point
    return max(int(np.abs(exact_matmul(x - zx, (w - zw).T)).max()) for x, w in work.jobs)


def _workload(config, spec):
    if spec.get("workload") == "worst_case":
        if config.input_zero_point_in_hw or config.weight_zero_point_in_hw:
            return _worst_case_zero_points(config, spec.get("jobs", 2))
        return worst_case_workload(config, jobs=spec.get("jobs", 2))
    return random_workload(config, seed=spec.get("seed", 0), jobs=spec.get("jobs", 4),
                           zero_points=spec.get("zero_points", False), depth=spec.get("depth"))


@cocotb.test()
async def array_matches_golden(dut):
    spec = load_spec()
    config = ArrayConfig.from_dict(spec["config"])
    manifest = json.loads((Path(spec["manifest_dir"]) /
                           f"{config.name}.manifest.json").read_text())
    work = _workload(config, spec)
    layouts = stream_layouts(config)
    rng = random.Random(spec.get("seed", 0))

    await start_clock(dut)
    counter = CycleCounter(dut.clk)
    _set_params(dut, config, {k: np.asarray(v).tolist() if np.ndim(v) else v
                              for k, v in work.params.items()})
    drivers = {name: StreamDriver(dut, name, counter, stall=spec.get("in_stall", 0.0),
                                  rng=random.Random(rng.random()))
               for name in layouts if name != "results"}
    sink = StreamSink(dut, "results", counter, stall=spec.get("out_stall", 0.0),
                      rng=random.Random(rng.random()))
    await reset(dut)
    started, first_cycle = time.perf_counter(), counter.now
    sink.start()
    tasks = [cocotb.start_soon(drivers[name].send_all(beats))
             for name, beats in _beats(config, layouts, work.jobs).items()]

    expected = work.expected
    # Generous: every beat and row stalled many times over, plus the pipeline.
    timeout = 64 * (len(expected) + sum(x.size for x, _ in work.jobs)) + 1000
    finished = await wait_until(
        dut.clk, lambda: len(sink.beats) >= len(expected) and all(t.done() for t in tasks),
        timeout)
    wall, cycles = time.perf_counter() - started, counter.now - first_cycle
    # Anything more would be a duplicated row.
    await ClockCycles(dut.clk, 4 * (config.rows + config.cols) + 16)
    sink.stop()
    for task in tasks:
        task.cancel()

    rows = [unpack(layouts["results"], bits) for _, bits in sink.beats]
    got = np.array([[int(row.y[j]) for j in range(config.cols)] for row in rows],
                   dtype=np.int64).reshape(-1, config.cols)
    # One result row per OS array row or WS activation; `last` on a pass's (tile's) final row.
    lasts = [int(row.last) for row in rows]
    expected_lasts = [int(i == len(x) - 1) for x, _ in work.jobs for i in range(len(x))]
    report = {
        "rows": len(got), "expected_rows": len(expected),
        "accepted": {name: driver.accepted for name, driver in drivers.items()},
        "delivered": [edge for edge, _ in sink.beats],
        "lasts": lasts,
        "manifest_latency": manifest["latency_cycles"],
        "depths": [int(x.shape[1]) for x, _ in work.jobs],
        "batches": [int(x.shape[0]) for x, _ in work.jobs],
        "busy_after": int(dut.busy.value),
        "peak_accumulator": _peak_accumulator(work),
        "cycles": cycles, "wall_seconds": wall,
        "outputs": got.tolist(),   # for the caller's own comparison with golden/
    }
    error = scoreboard(got, expected, got_lasts=lasts, expected_lasts=expected_lasts)
    if not finished:
        sent = {name: f"{len(d.accepted)} beats" for name, d in drivers.items()}
        error = f"timed out after {timeout} cycles: accepted {sent}; {error or ''}"
    elif sink.violations:
        error = f"results stream broke the ready/valid rules: {sink.violations[:3]}"
    elif report["busy_after"]:
        error = "busy after all work was delivered"
    if error:
        report["error"] = error
    save_report(report)
    assert error is None, error
