"""cocotb bench: a generated MacArray against golden/, every output element.

The spec (:func:`sim.streams.load_spec`) names a configuration and a workload
(``workload``: "random" or "worst_case", ``seed``, ``jobs``, ``zero_points``) and the stall
probabilities of the input and output streams. The bench rebuilds the workload with
:mod:`sim.workload` (golden/ computes the expected rows), drives it, and the scoreboard
compares every delivered row, in order, with golden's. It reports the cycle of every
transfer so that the caller can check latency and throughput against the manifest.
"""

import json
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge

from hw.config import ArrayConfig
from hw.host import encode_weights
from hw.top import stream_layouts

from .streams import (
    CycleCounter,
    StreamDriver,
    StreamSink,
    load_spec,
    pack,
    reset,
    save_report,
    start_clock,
    unpack,
)
from .workload import random_workload, worst_case_workload


def _set(signal, values, width):
    """Drive a packed array port (one ``width``-bit lane per value, lane 0 at the LSB)."""
    bits = 0
    for lane, value in enumerate(values):
        bits |= (int(value) & ((1 << width) - 1)) << (lane * width)
    signal.value = bits


def _set_params(dut, config, params):
    cols, channels = config.cols, config.requant_channels
    _set(dut.bias, params["bias"], 32)
    _set(dut.shift, params["shift"][:channels], 6)
    if config.requant == "multiplier":
        _set(dut.multiplier, params["multiplier"][:channels], 31)
    out_width = len(dut.act_min)
    for name in ("output_zero_point", "act_min", "act_max"):
        _set(getattr(dut, name), [params[name]], out_width)
    if config.input_zero_point_in_hw:
        _set(dut.input_zero_point, [params["input_zero_point"]], len(dut.input_zero_point))
    if config.weight_zero_point_in_hw:
        _set(dut.weight_zero_point, [params["weight_zero_point"]], len(dut.weight_zero_point))
    assert len(dut.bias) == 32 * cols


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


@cocotb.test()
async def array_matches_golden(dut):
    spec = load_spec()
    config = ArrayConfig.from_dict(spec["config"])
    manifest = json.loads((Path(spec["manifest_dir"]) /
                           f"{config.name}.manifest.json").read_text())
    if spec.get("workload") == "worst_case":
        work = worst_case_workload(config, jobs=spec.get("jobs", 2))
    else:
        work = random_workload(config, seed=spec.get("seed", 0), jobs=spec.get("jobs", 4),
                               zero_points=spec.get("zero_points", False),
                               depth=spec.get("depth"))
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
    timeout = 64 * (len(expected) + sum(x.size for x, _ in work.jobs)) + 1000
    for _ in range(timeout):
        await FallingEdge(dut.clk)
        if len(sink.beats) >= len(expected):
            break
    for task in tasks:
        await task
    wall, cycles = time.perf_counter() - started, counter.now - first_cycle
    # Anything more would be a duplicated row.
    await ClockCycles(dut.clk, 4 * (config.rows + config.cols) + 16)
    sink.stop()

    rows = [unpack(layouts["results"], bits) for _, bits in sink.beats]
    got = np.array([[int(row.y[j]) for j in range(config.cols)] for row in rows],
                   dtype=np.int64).reshape(-1, config.cols)
    report = {
        "rows": len(got), "expected_rows": len(expected),
        "accepted": {name: driver.accepted for name, driver in drivers.items()},
        "delivered": [edge for edge, _ in sink.beats],
        "lasts": [int(row.last) for row in rows],
        "manifest_latency": manifest["latency_cycles"],
        "depths": [int(x.shape[1]) for x, _ in work.jobs],
        "batches": [int(x.shape[0]) for x, _ in work.jobs],
        "busy_after": int(dut.busy.value),
        "cycles": cycles, "wall_seconds": wall,
    }
    if len(got) != len(expected):
        report["error"] = f"delivered {len(got)} rows, golden expects {len(expected)}"
    else:
        mismatches = np.argwhere(got != expected)
        if len(mismatches):
            i, j = mismatches[0]
            report["error"] = (f"{len(mismatches)} of {expected.size} outputs differ; first at "
                               f"row {i} column {j}: RTL {got[i, j]}, golden {expected[i, j]}")
    save_report(report)
    assert "error" not in report, report["error"]
    assert not report["busy_after"], "busy after all work was delivered"
