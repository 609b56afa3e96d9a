"""The requantizer and one PE alone, as generated Verilog, against golden/ and exact integers.

``SIM`` picks the simulator (Icarus by default); one requantizer case always runs on
Verilator.
"""

import numpy as np
import pytest

from golden.tflite import requantize
from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from sim.runner import default_simulator, pe_design, requantizer_design, run, simulator_available

STALLS = {"in_stall": 0.3, "out_stall": 0.3}


def _run(design, bench, sim=None, **spec):
    sim = sim or default_simulator()
    if not simulator_available(sim):
        pytest.fail(f"{sim} is not installed; `make` installs Verilator, .ci/run installs Icarus")
    report = run(design, bench, {"seed": 0, **spec}, sim=sim)
    if bench == "sim.tb_requantizer":
        _assert_requantized_by_golden(design.config, report)
    return report


def _assert_requantized_by_golden(config, report):
    """Every output lane equals golden.tflite.requantize of the accumulator that went in."""
    p = report["params"]
    expected = requantize(
        np.array(report["accumulators"], np.int64), bias=np.array(p["bias"], np.int64),
        multiplier=None if config.requant == "shift" else np.array(p["multiplier"], np.int64),
        shift=np.array(p["shift"], np.int64), output_zero_point=p["output_zero_point"],
        act_min=p["act_min"], act_max=p["act_max"], rounding=config.rounding)
    assert report["rows"] == len(expected)
    np.testing.assert_array_equal(np.array(report["outputs"], np.int64), expected)


def _distinguishable(mode, requant="multiplier"):
    """Rounding modes whose results must differ from ``mode``'s somewhere on exact halves.
    TFLite's "single" rounding is half up by definition."""
    same = {"single", "half_up"} if mode in ("single", "half_up") else {mode}
    return [m for m in REQUANT_ROUNDINGS
            if m not in same and not (requant == "shift" and m == "double")]


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS)
def test_requantizer_every_rounding(rounding, per_channel):
    # max_left_shift 0: right shifts only, so that the outputs are not clamped (the left
    # shifts have tests of their own)
    config = ArrayConfig(rows=2, cols=4, kmax=256, rounding=rounding, per_channel=per_channel,
                         max_left_shift=0)
    report = _run(requantizer_design(config), "sim.tb_requantizer", rows=100, ties=True,
                  seed=REQUANT_ROUNDINGS.index(rounding), **STALLS)
    assert report["rows"] == 100
    # The accumulators included exact halves: a requantizer rounding any other way would
    # have been caught.
    assert all(report["differs"][m] > 0 for m in _distinguishable(rounding)), report["differs"]


@pytest.mark.parametrize("options", [
    dict(requant="shift", rounding="half_to_even"),
    dict(requant="shift", rounding="single", max_left_shift=4, per_channel=True),
    dict(max_left_shift=8, per_channel=True),
    dict(out_bits=4, act_bits=4, weight_bits=4),
    dict(out_bits=16, act_bits=16, weight_bits=8, kmax=64),
    dict(out_signed=False, act_signed=False),
], ids=["shift-only", "shift-only with left shifts", "left shifts", "int4 out", "int16 out",
        "uint8 out"])
def test_requantizer_variants(options):
    config = ArrayConfig(rows=2, cols=3, **{"kmax": 256, **options})
    report = _run(requantizer_design(config), "sim.tb_requantizer", rows=80, seed=len(options),
                  **STALLS)
    assert report["rows"] == 80
    if config.requant == "shift":
        assert all(report["differs"][m] > 0
                   for m in _distinguishable(config.rounding, "shift")), report["differs"]


def test_requantizer_int32_edges():
    """A 32-bit accumulator: acc + bias reaches INT32_MIN and INT32_MAX exactly."""
    config = ArrayConfig(rows=2, cols=4, kmax=256, accumulator_width=32, per_channel=True,
                         max_left_shift=0)
    report = _run(requantizer_design(config), "sim.tb_requantizer", rows=60, seed=4, **STALLS)
    assert report["int32_edges"] >= config.cols  # one extreme of every lane at least


def test_requantizer_unstalled_latency_is_the_documented_one():
    # docs/architecture.md: 13 pipeline stages with the multiplier (accumulator, parameter
    # fetch, bias, saturation, partial products, three adder levels, rounding addend, coarse
    # and fine window shift, zero point, clamp) whatever max_left_shift is (a left shift is a
    # shorter right shift), 10 shift-only; + the output FIFO's 2.
    for options, stages in ((dict(rounding="double"), 13),
                            (dict(rounding="double", max_left_shift=0), 13),
                            (dict(rounding="single"), 13),
                            (dict(rounding="floor", requant="shift"), 10)):
        config = ArrayConfig(rows=1, cols=2, kmax=16, **options)
        report = _run(requantizer_design(config), "sim.tb_requantizer", rows=10)
        assert report["latency"] == stages + 2


def test_requantizer_on_verilator():
    """Compared with golden/ lane by lane (in _run), on exact halves that every other
    rounding rule would round differently."""
    config = ArrayConfig(rows=2, cols=8, kmax=256, per_channel=True, rounding="half_to_even")
    report = _run(requantizer_design(config), "sim.tb_requantizer", "verilator", rows=500,
                  ties=True, **STALLS)
    assert report["rows"] == 500
    assert all(report["differs"][m] > 0 for m in _distinguishable(config.rounding)), \
        report["differs"]


def _peak(config):
    """Largest |x·w| over the operand ranges."""
    (x_lo, x_hi), (w_lo, w_hi) = config.act_range, config.weight_range
    return max(abs(x * w) for x in (x_lo, x_hi) for w in (w_lo, w_hi))


@pytest.mark.parametrize("options", [
    dict(kmax=64),
    dict(act_bits=4, weight_bits=4, kmax=1000),
    dict(act_signed=False, kmax=300),
    dict(weight_bits=1, weight_kind="binary", kmax=128),
    dict(weight_bits=2, weight_kind="ternary", kmax=20),
    dict(register_product=False, kmax=33),
    dict(act_bits=16, weight_bits=8, out_bits=16, kmax=256),
], ids=["int8", "int4 K=1000", "uint8", "binary", "ternary", "no product register",
        "int16 x int8"])
def test_output_stationary_pe(options):
    config = ArrayConfig(rows=1, cols=1, **options)
    report = _run(pe_design(config), "sim.tb_pe", passes=5, idle=0.25)
    assert len(report["results"]) == 6
    # the last pass is the worst case: kmax products of the largest magnitude
    assert abs(report["expected"][-1]) == config.kmax * _peak(config)


@pytest.mark.parametrize("options", [
    dict(rows=4),
    dict(rows=3, weight_bits=1, weight_kind="binary", register_product=False),
    dict(rows=8, act_bits=4, weight_bits=4, act_signed=False),
    dict(rows=1, weight_bits=2, weight_kind="ternary"),
], ids=["int8 4 rows", "binary 3 rows, no product register", "uint4 x int4 8 rows",
        "ternary 1 row"])
def test_weight_stationary_pe(options):
    config = ArrayConfig(cols=1, dataflow="weight_stationary", **options)
    report = _run(pe_design(config), "sim.tb_pe", cycles=150, idle=0.2, seed=config.rows)
    assert report["checked"] >= 150
    # the bottom PE's output reached the extreme of its range: every row's largest product
    assert report["peak"] == config.rows * _peak(config)
