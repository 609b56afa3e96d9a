"""cocotb bench: the generated Requantizer against golden.tflite.requantize.

Rows of accumulators (random over the whole accumulator width, plus its extremes, zero and
±1) stream in with random stalls on both sides; every output lane is compared with golden.
Spec: ``seed``, ``rows`` (beats), ``in_stall``, ``out_stall``.
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge

from golden.tflite import INT32_MAX, INT32_MIN, requantize
from hw.config import ArrayConfig
from hw.pe import operand_shape
from hw.requantizer import ResultRow
from hw.systolic import AccumulatorRow

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
from .tb_array import _set_params
from .workload import random_layer


def _accumulators(config, rng, rows):
    bits = config.accumulator_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    # acc + bias must stay in int32 (TFLite's accumulator); the bias is at most ±2000
    lo, hi = max(lo, INT32_MIN + 2000), min(hi, INT32_MAX - 2000)
    acc = rng.integers(lo, hi + 1, size=(rows, config.cols), dtype=np.int64)
    small = rng.integers(-(1 << 12), 1 << 12, size=(rows // 2, config.cols), dtype=np.int64)
    acc[: rows // 2] = small  # most layers' accumulators are small: exercise the ties there
    edges = np.array([lo, hi, 0, 1, -1], dtype=np.int64)
    acc[-1] = np.resize(edges, config.cols)
    acc[-2] = np.resize(edges[::-1], config.cols)
    return acc


@cocotb.test()
async def requantizer_matches_golden(dut):
    spec = load_spec()
    config = ArrayConfig.from_dict(spec["config"])
    rng = np.random.default_rng(spec.get("seed", 0))
    layer = random_layer(config, rng)
    acc = _accumulators(config, rng, spec.get("rows", 64))
    expected = requantize(acc, bias=layer.bias,
                          multiplier=None if config.requant == "shift" else layer.multiplier,
                          shift=layer.shift, output_zero_point=layer.output_zero_point,
                          act_min=layer.act_min, act_max=layer.act_max,
                          rounding=config.rounding)
    in_layout = AccumulatorRow(config.accumulator_bits, config.cols)
    out_layout = ResultRow(operand_shape(*config.out_range), config.cols)

    await start_clock(dut)
    counter = CycleCounter(dut.clk)
    _set_params(dut, config, dict(
        bias=layer.bias.tolist(), multiplier=layer.multiplier.tolist(),
        shift=layer.shift.tolist(), output_zero_point=layer.output_zero_point,
        act_min=layer.act_min, act_max=layer.act_max))
    seeds = random.Random(spec.get("seed", 0))
    driver = StreamDriver(dut, "i", counter, stall=spec.get("in_stall", 0.0),
                          rng=random.Random(seeds.random()))
    sink = StreamSink(dut, "o", counter, stall=spec.get("out_stall", 0.0),
                      rng=random.Random(seeds.random()))
    await reset(dut)
    sink.start()
    beats = [pack(in_layout, {"acc": row.tolist(), "last": int(i == len(acc) - 1)})
             for i, row in enumerate(acc)]
    task = cocotb.start_soon(driver.send_all(beats))
    for _ in range(40 * len(beats) + 100):
        await FallingEdge(dut.clk)
        if len(sink.beats) >= len(beats):
            break
    await task
    await ClockCycles(dut.clk, 16)
    sink.stop()
    rows = [unpack(out_layout, bits) for _, bits in sink.beats]
    got = np.array([[int(r.y[j]) for j in range(config.cols)] for r in rows],
                   dtype=np.int64).reshape(-1, config.cols)
    report = {"rows": len(got), "latency": (sink.beats[0][0] - driver.accepted[0]
                                            if sink.beats and driver.accepted else None)}
    if got.shape != expected.shape:
        report["error"] = f"delivered {len(got)} rows, sent {len(expected)}"
    elif (got != expected).any():
        i, j = np.argwhere(got != expected)[0]
        report["error"] = (f"{int((got != expected).sum())} lanes differ; first row {i} lane "
                           f"{j}: acc {acc[i, j]}, RTL {got[i, j]}, golden {expected[i, j]}")
    save_report(report)
    assert "error" not in report, report["error"]
    assert [int(r.last) for r in rows] == [0] * (len(rows) - 1) + [1]
