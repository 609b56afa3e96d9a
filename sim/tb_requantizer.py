"""cocotb bench: the generated Requantizer against golden.tflite.requantize.

Rows of accumulators stream in with random stalls on both sides; every output lane is compared
with golden. The accumulators cover the whole legal range of each lane: its extremes (the
accumulator's, or int32's where acc + bias reaches it first), zero and ±1, uniform values,
small values, a dense block around zero, and exact halves. With ``ties`` in the spec,
M0 = 2^30 (a real multiplier of exactly 2^(shift − 1)), and with per-channel parameters the
first two channels use 2^30 and 3·2^29 whatever ``ties`` says; lanes with M0 = 2^30 (or any
lane of a shift-only requantizer) get accumulators that land exactly half way, and one below,
so that every rounding rule is put to the test. The report counts the outputs each other
rounding mode would change: the proof that the bench can tell the modes apart.
Spec: ``seed``, ``rows`` (beats), ``ties``, ``in_stall``, ``out_stall``.
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.tflite import INT32_MAX, INT32_MIN, requantize
from hw.config import REQUANT_ROUNDINGS, ArrayConfig
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
    scoreboard,
    start_clock,
    unpack,
    wait_until,
)
from .tb_array import _set_params
from .workload import random_layer


def _multipliers(config, layer, ties):
    multiplier = layer.multiplier.copy()
    if config.requant == "shift":
        return multiplier
    if ties:
        multiplier[:] = 1 << 30
    if config.per_channel:
        multiplier[:2] = [1 << 30, 3 << 29][:config.cols]
    return multiplier


def _tie_shifts(config, multiplier, shift):
    """Per lane, the total right shift R whose exact halves the bench aims at (0: none):
    M0 = 2^30 makes the real multiplier exactly 2^(shift − 1)."""
    if config.requant == "shift":
        return np.maximum(-shift, 0)
    return np.where(multiplier == 1 << 30, np.maximum(1 - shift, 0), 0)


def _accumulators(config, rng, rows, bias, shift, ties):
    """[rows, cols] accumulators with acc + bias (shifted left, if so) within int32, as
    TFLite requires; lane j's range depends on its bias and left shift."""
    bits = config.accumulator_bits
    left = np.maximum(shift, 0) if config.requant == "multiplier" else np.zeros_like(shift)
    lo = np.maximum(-(1 << (bits - 1)), (INT32_MIN >> left) - bias)
    hi = np.minimum((1 << (bits - 1)) - 1, (INT32_MAX >> left) - bias)
    cols, part = config.cols, rows // 5
    acc = rng.integers(lo, hi + 1, size=(rows, cols), dtype=np.int64)
    # Most layers' accumulators are small, and ties live there.
    acc[:part] = rng.integers(-(1 << 12), 1 << 12, size=(part, cols))
    acc[part:2 * part] = rng.integers(-256, 257, size=(part, cols))
    # acc + bias = odd · 2^(R−1): exactly half way; one less: where rounding twice differs.
    odd = 2 * rng.integers(-8, 8, size=(part, cols)) + 1
    halves = odd << np.maximum(ties - 1, 0)
    halves -= np.where((ties >= 2) & (rng.random((part, cols)) < 0.5), np.sign(odd), 0)
    acc[2 * part:3 * part] = np.where(ties > 0, halves - bias, acc[2 * part:3 * part] % 64)
    edges = np.stack([lo, hi, np.zeros_like(lo), np.ones_like(lo), -np.ones_like(lo)])
    acc[-len(edges):] = edges
    return np.clip(acc, lo, hi)


def _golden(config, layer, multiplier, acc, rounding):
    return requantize(acc, bias=layer.bias,
                      multiplier=None if config.requant == "shift" else multiplier,
                      shift=layer.shift, output_zero_point=layer.output_zero_point,
                      act_min=layer.act_min, act_max=layer.act_max, rounding=rounding)


@cocotb.test()
async def requantizer_matches_golden(dut):
    spec = load_spec()
    config = ArrayConfig.from_dict(spec["config"])
    rng = np.random.default_rng(spec.get("seed", 0))
    layer = random_layer(config, rng)
    multiplier = _multipliers(config, layer, spec.get("ties", False))
    ties = _tie_shifts(config, multiplier, layer.shift)
    acc = _accumulators(config, rng, spec.get("rows", 64), layer.bias, layer.shift, ties)
    expected = _golden(config, layer, multiplier, acc, config.rounding)
    # How many outputs another rounding rule would change: proof that the bench can tell.
    others = [m for m in REQUANT_ROUNDINGS
              if m != config.rounding and not (config.requant == "shift" and m == "double")]
    differs = {m: int((_golden(config, layer, multiplier, acc, m) != expected).sum())
               for m in others}
    in_layout = AccumulatorRow(config.accumulator_bits, config.cols)
    out_layout = ResultRow(operand_shape(*config.out_range), config.cols)

    await start_clock(dut)
    counter = CycleCounter(dut.clk)
    channels = config.requant_channels
    _set_params(dut, config, dict(
        bias=layer.bias.tolist(), multiplier=multiplier[:channels].tolist(),
        shift=layer.shift[:channels].tolist(), output_zero_point=layer.output_zero_point,
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
    finished = await wait_until(dut.clk, lambda: len(sink.beats) >= len(beats) and task.done(),
                                40 * len(beats) + 100)
    await ClockCycles(dut.clk, 16)
    sink.stop()
    task.cancel()
    rows = [unpack(out_layout, bits) for _, bits in sink.beats]
    got = np.array([[int(r.y[j]) for j in range(config.cols)] for r in rows],
                   dtype=np.int64).reshape(-1, config.cols)
    total = acc + layer.bias
    report = {"rows": len(got), "differs": differs,
              # what went in and came out, for the caller's own comparison with golden/
              "accumulators": acc.tolist(), "outputs": got.tolist(),
              "params": {"bias": layer.bias.tolist(), "multiplier": multiplier.tolist(),
                         "shift": layer.shift.tolist(),
                         "output_zero_point": layer.output_zero_point,
                         "act_min": layer.act_min, "act_max": layer.act_max},
              "int32_edges": int(((total == INT32_MIN) | (total == INT32_MAX)).sum()),
              "latency": (sink.beats[0][0] - driver.accepted[0]
                          if sink.beats and driver.accepted else None)}
    error = scoreboard(got, expected, got_lasts=[int(r.last) for r in rows],
                       expected_lasts=[0] * (len(acc) - 1) + [1], inputs=acc)
    if not finished:
        error = f"timed out: {len(driver.accepted)} rows accepted; {error or ''}"
    elif sink.violations:
        error = f"o stream broke the ready/valid rules: {sink.violations[:3]}"
    if error:
        report["error"] = error
    save_report(report)
    assert error is None, error
