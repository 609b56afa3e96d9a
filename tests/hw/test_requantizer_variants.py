# amaranth: UnusedElaboratable=no
"""The requantizer's ECP5 build (partial products in MULT18X18D with their output registers)
against its portable build, cycle by cycle in Icarus with the MULT18X18D model; the portable
build is compared with golden/ by tests/hw/test_array_amaranth.py and tests/sim."""

import random
import re

import numpy as np
import pytest
from amaranth.sim import Simulator
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from golden.tflite import INT32_MAX, INT32_MIN, requantize
from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from hw.generate import ports
from hw.requantizer import MULTIPLIER_BITS, Requantizer, pipeline_stages
from sim.amaranth_sim import run_array
from sim.workload import random_workload

from . import test_pe_variants
from .test_pe_variants import RESET_CYCLES, _mismatches, _run_pair, pytestmark  # noqa: F401

INT32 = 1 << 32


def _stimulus(rng, config, cycles):
    """Random beats and parameters, including the int32 extremes and exact halves."""
    acc_bits = config.accumulator_bits
    beats = [{"rst": 1} for _ in range(RESET_CYCLES)]
    for _ in range(cycles):
        acc = rng.choice([rng.getrandbits(acc_bits), 0, 1 << (acc_bits - 1),
                          (1 << (acc_bits - 1)) - 1, rng.getrandbits(12)])
        beats.append({
            "i__valid": rng.random() < 0.8, "o__ready": rng.random() < 0.8,
            "i__payload": acc | rng.getrandbits(2) << acc_bits,
            "bias_read__data": rng.choice([0, rng.getrandbits(32), INT32 - 1]),
            "multiplier_read__data": rng.choice([1 << 30, (1 << 31) - 1,
                                                 rng.getrandbits(31) | 1 << 30]),
            "shift_read__data": rng.randrange(64) if config.max_left_shift else
            (-rng.randrange(32)) & 63,
            "output_zero_point": rng.getrandbits(8), "act_min": 0x80, "act_max": 0x7f,
        })
    return beats


def _split_unknown_as_zero(word, fields):
    """The output FIFO's memory is unknown (x) in Icarus until written: its read data shows
    while ``o.valid`` is low, on both designs alike. Read x as 0 there."""
    return _split_known(re.sub("[xXzZ]", "0", word), fields)


_split_known = test_pe_variants._split


@pytest.mark.parametrize("rounding,max_left_shift", [("double", 0), ("single", 0),
                                                     ("double", 4)])
def test_ecp5_requantizer_equals_portable(tmp_path, monkeypatch, rounding, max_left_shift):
    monkeypatch.setattr(test_pe_variants, "_split", _split_unknown_as_zero)
    config = ArrayConfig(rows=1, cols=1, kmax=64, per_channel=True, rounding=rounding,
                         accumulator_width=32, max_left_shift=max_left_shift)
    ref = Requantizer(config, table_depth=2)
    dut = Requantizer(config, table_depth=2)
    names = {p["name"] for p in ports(ref)}
    assert {"i__payload", "o__ready", "bias_read__data", "shift_read__data"} <= names
    stimulus = _stimulus(random.Random(rounding), config, 400)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus,
                                     dut_platform=ULX3S_85F_Platform(), family="ecp5")
    assert sum(out["o__valid"] for out in ref_trace) > 200
    assert len({out["o__payload"] for out in ref_trace}) > 50   # not a constant output
    assert _mismatches(stimulus, ref_trace, dut_trace) == []



# -- the serial multiply (ArrayConfig.requant_serial_bits) against golden/ -----------------------

def _serial_cases(rng, config, count, rows_per_case):
    """(acc rows, bias per column, M0, shift): acc + bias at the int32 extremes, ±1, 0,
    odd values M0 = 2^30 halves (ties), random; M0 and shift at their extremes."""
    lo, hi = config.shift_range
    for _ in range(count):
        m0 = rng.choice([1 << 30, (1 << 31) - 1, rng.randrange(1 << 30, 1 << 31)])
        shift = rng.choice([lo, 0, hi, -1, rng.randint(lo, hi)])
        bias = [rng.choice([0, rng.randint(-1000, 1000)]) for _ in range(config.cols)]
        # A left shift must keep (acc + bias) · 2^shift in int32 (TFLite's "double").
        v_lo, v_hi = INT32_MIN >> max(shift, 0), INT32_MAX >> max(shift, 0)
        rows = []
        for _ in range(rows_per_case):
            values = [rng.choice([v_lo, v_hi, 0, 1, -1, 2 * rng.randrange(-64, 64) + 1,
                                  rng.randint(v_lo, v_hi)])
                      for _ in range(config.cols)]
            # acc = value − bias, both in int32.
            rows.append([min(max(v, v_lo, INT32_MIN + b), v_hi, INT32_MAX + b) - b
                         for v, b in zip(values, bias, strict=True)])
        yield rows, bias, m0, shift


def _run_requantizer(config, cases, *, seed, out_stall=0.3):
    """Requantize ``cases`` in Amaranth's simulator with a stalling sink, the parameters
    changed between cases once the requantizer is idle; returns the output rows in order and
    the clamp/zero point used."""
    rng = random.Random(seed)
    dut = Requantizer(config)
    out = {"output_zero_point": 3, "act_min": -100, "act_max": 120}
    total = sum(len(rows) for rows, *_ in cases)
    results = []

    async def source(ctx):
        for name, value in out.items():
            ctx.set(getattr(dut, name), value)
        sent = 0
        for rows, bias, m0, shift in cases:
            while len(results) < sent or ctx.get(dut.busy):
                await ctx.tick()
            for j in range(config.requant_channels):
                ctx.set(dut.multiplier[j], m0)
                ctx.set(dut.shift[j], shift)
            for j, b in enumerate(bias):
                ctx.set(dut.bias[j], b)
            for accs in rows:
                ctx.set(dut.i.valid, 1)
                for j, a in enumerate(accs):
                    ctx.set(dut.i.p.acc[j], a)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)
                sent += 1
                for _ in range(rng.choice([0, 0, 1, 5])):
                    await ctx.tick()

    async def sink(ctx):
        while len(results) < total:
            ready = rng.random() >= out_stall
            ctx.set(dut.o.ready, ready)
            valid, row = ctx.get(dut.o.valid), ctx.get(dut.o.p.y)
            await ctx.tick()
            if valid and ready:
                results.append([int(row[j]) for j in range(config.cols)])

    simulator = Simulator(dut)
    simulator.add_clock(1e-6)
    simulator.add_testbench(source)
    simulator.add_testbench(sink)
    simulator.run()
    return results, out


@pytest.mark.parametrize("rounding,bits,left", [
    ("double", 1, 0), ("double", 2, 0), ("double", 3, 4), ("double", 15, 0),
    ("single", 2, 0), ("single", 5, 3),
    *[(rounding, 4, 0) for rounding in REQUANT_ROUNDINGS[2:]],
    # Bit-serial (the rounding shift serial too): every mode, with left shifts.
    *[(rounding, 1, 0) for rounding in REQUANT_ROUNDINGS[1:]], ("double", 1, 4), ("single", 1, 3),
])
def test_serial_multiply_is_bit_exact(rounding, bits, left):
    """Every rounding mode, with and without left shifts, 1 to 15 bits of M0 per cycle,
    against golden.tflite.requantize element by element."""
    config = ArrayConfig(rows=1, cols=2, kmax=64, per_channel=False, rounding=rounding,
                         accumulator_width=32, max_left_shift=left, requant_serial_bits=bits,
                         requant_lanes=1)
    # Bit-serial: 31 product bits, then a right shift of up to 31 ("double"'s second
    # rounding; shift ≥ −31) or 31 − shift ≤ 62 (one rounding).
    bit_serial = 2 * MULTIPLIER_BITS + (0 if rounding == "double" else MULTIPLIER_BITS)
    assert config.requant_beat_interval == (bit_serial if bits == 1 else
                                            -(-MULTIPLIER_BITS // bits))
    rng = random.Random(f"{rounding}{bits}{left}")
    cases = list(_serial_cases(rng, config, 20, 3))
    results, out = _run_requantizer(config, cases, seed=bits)
    expected = [list(requantize(np.array(rows, dtype=np.int64), bias=np.array(bias),
                                multiplier=m0, shift=shift, rounding=rounding, **out))
                for rows, bias, m0, shift in cases]
    expected = [[int(y) for y in row] for rows in expected for row in rows]
    assert results == expected
    assert len({y for row in results for y in row}) > 6      # not a constant output


def test_serial_requantizer_takes_a_beat_every_interval():
    """Its rows come a beat interval per lane group apart, and its stages say so."""
    config = ArrayConfig(rows=1, cols=2, kmax=64, requant_serial_bits=4, requant_lanes=1)
    stages = pipeline_stages(config)
    assert stages.count("partial") == 0 and "serial7" in stages and "serial8" not in stages
    assert Requantizer(config).row_interval == 2 * 8 == config.requant_row_interval
    with pytest.raises(ValueError, match=r"requant_serial_bits must be in \[1, 15\], not 0"):
        ArrayConfig(requant_serial_bits=0)


@pytest.mark.parametrize("dataflow,lanes,bits", [("os", 1, 3), ("os", 2, 1), ("ws", None, 1)])
def test_serial_requantizer_in_the_array_with_stalls(dataflow, lanes, bits):
    """A whole MacArray with the serial multiply, random stalls, against golden/."""
    config = ArrayConfig(rows=2, cols=3, dataflow=dataflow, kmax=None if dataflow == "ws" else 8,
                         per_channel=True, requant_serial_bits=bits, requant_lanes=lanes)
    work = random_workload(config, seed=5, jobs=3)
    run = run_array(config, work.jobs, work.params, in_stall=0.3, out_stall=0.3, seed=5)
    np.testing.assert_array_equal(run.outputs, work.expected)


@pytest.mark.parametrize("lanes,bits", [(1, 4), (2, 1), (3, 2)])
def test_serial_requantizer_timing(lanes, bits):
    """With a serial lane a row takes requant_row_interval cycles (groups × beat interval),
    and its last lane group enters (groups − 1)·beat interval cycles after its first: the
    measured latency is MacArray.latency, which counts that span (hw.requantizer.row_span),
    and the measured row interval is MacArray.row_interval."""
    config = ArrayConfig(rows=2, cols=3, kmax=512, requant_lanes=lanes, requant_serial_bits=bits)
    groups, interval = config.requant_groups, config.requant_beat_interval
    depth = config.rows * config.requant_row_interval + 8      # the requantizer idle at its end
    work = random_workload(config, seed=3, jobs=2, depth=depth)
    run = run_array(config, work.jobs, work.params)
    np.testing.assert_array_equal(run.outputs, work.expected)
    firsts = run.output_cycles[::config.rows]
    measured = [out - last for out, last in zip(firsts, run.last_accept_cycles, strict=True)]
    assert measured == [run.latency] * len(work.jobs)
    for p in range(len(work.jobs)):
        cycles = run.output_cycles[p * config.rows:(p + 1) * config.rows]
        assert np.diff(cycles).tolist() == [groups * interval] * (config.rows - 1)


@pytest.mark.parametrize("bits", [None, 1])
def test_left_shift_beyond_int32_never_wraps(bits):
    """The "double" build's x · 2^shift is int32 in TFLite (undefined beyond it, where golden
    refuses). The serial lane shifts its operand and saturates it, as it does the bias sum;
    the parallel lane reads its product ``shift`` bits further up instead of shifting the
    operand, so it keeps the exact wide product. Neither wraps. Small multipliers keep the
    outputs inside the clamp, so saturating (about ±M0), wrapping (the opposite sign) and
    the exact wide product (up to 1.5 times more) differ. Expected, in Python integers:
    SRDHM, floor((x·2^shift·M0 + 2^30) / 2^31), of the saturated or the exact value."""
    config = ArrayConfig(rows=1, cols=2, kmax=64, rounding="double", accumulator_width=32,
                         max_left_shift=7, requant_serial_bits=bits, requant_lanes=1)
    rng = random.Random(11)
    cases = []
    for shift in (1, 4, 7):
        over = INT32_MAX >> (shift + 1)    # up to 1.5 · 2^31 once shifted
        rows = [[(INT32_MAX >> shift) + 1 + rng.randrange(over),
                 (INT32_MIN >> shift) - 1 - rng.randrange(over)] for _ in range(3)]
        cases.append((rows, [0, 0], rng.randrange(40, 80), shift))
    results, out = _run_requantizer(config, cases, seed=3)
    expected = []
    for rows, _, m0, shift in cases:
        for row in rows:
            scaled = [x << shift for x in row]
            if bits is not None:
                scaled = [min(max(x, INT32_MIN), INT32_MAX) for x in scaled]
            expected.append([
                min(max(((x * m0 + (1 << 30)) >> 31) + out["output_zero_point"],
                        out["act_min"]), out["act_max"]) for x in scaled])
    assert results == expected
    # inside the clamp: positive overflow stays positive, negative stays negative
    assert all(out["act_min"] < row[1] < out["output_zero_point"] < row[0] < out["act_max"]
               for row in results)
