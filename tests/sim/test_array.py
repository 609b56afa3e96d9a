"""Generated Verilog of MacArray on Icarus and Verilator, every output against golden/.

The bench (sim/tb_array.py) scores every output element itself; these tests pick the
configurations and check what the bench reports about timing against the manifest.
Icarus runs the whole matrix; Verilator (slower to build, faster to run) a representative
subset, and all of it under ``make test-full``.
"""

import numpy as np
import pytest

from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from sim.runner import array_design, run, simulator_available

STALLS = {"in_stall": 0.3, "out_stall": 0.3}


def _needs(sim):
    if not simulator_available(sim):
        pytest.fail(f"{sim} is not installed; `make` installs Verilator, .ci/run installs Icarus")


def _run(config, sim="icarus", **spec):
    _needs(sim)
    report = run(array_design(config), "sim.tb_array", {"seed": 0, "jobs": 3, **spec}, sim=sim)
    assert report["rows"] == report["expected_rows"] > 0
    return report


def _config(rows, cols, dataflow="output_stationary", **options):
    if dataflow == "output_stationary":
        options.setdefault("kmax", 16)
    return ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, **options)


DATAFLOWS = ("output_stationary", "weight_stationary")


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 3), (4, 4), (8, 8)])
def test_sizes_with_stalls(rows, cols, dataflow):
    _run(_config(rows, cols, dataflow), seed=rows + cols, **STALLS)


PRECISIONS = {
    "int4": dict(act_bits=4, weight_bits=4, out_bits=4),
    "unsigned activations": dict(act_signed=False, out_signed=False),
    "binary weights": dict(weight_bits=1, weight_kind="binary"),
    "ternary weights": dict(weight_bits=2, weight_kind="ternary"),
    "int16 x int4": dict(act_bits=16, weight_bits=4, out_bits=16),
    "per-channel with left shifts": dict(per_channel=True, max_left_shift=3),
}


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_precisions(precision, dataflow):
    _run(_config(2, 3, dataflow, **PRECISIONS[precision]), seed=len(precision), **STALLS)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS)
def test_every_rounding_mode_per_channel(rounding, dataflow):
    _run(_config(3, 2, dataflow, rounding=rounding, per_channel=True),
         seed=REQUANT_ROUNDINGS.index(rounding), **STALLS)


def test_fixed_32_bit_accumulator_is_still_exact():
    """The comparison build of BENCHMARKS.md (accumulators wider than needed) stays correct."""
    _run(_config(2, 3, accumulator_width=32), seed=9, **STALLS)


@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS[1:])
def test_shift_only_requantizer(rounding):
    _run(_config(2, 2, requant="shift", rounding=rounding), seed=3, **STALLS)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("in_hw", [False, True], ids=["folded", "in hardware"])
def test_zero_points(in_hw, dataflow):
    config = _config(2, 3, dataflow, act_signed=False, out_signed=False,
                     input_zero_point_in_hw=in_hw, weight_zero_point_in_hw=in_hw)
    _run(config, seed=11, zero_points=True, **STALLS)


@pytest.mark.parametrize("config", [
    _config(2, 2, act_bits=4, weight_bits=4, kmax=16),
    _config(4, 4, kmax=256),
    _config(2, 3, act_signed=False, kmax=100),
    _config(2, 2, weight_bits=1, weight_kind="binary", kmax=64),
    _config(4, 4, "weight_stationary"),
], ids=["int4 K=16", "int8 K=256", "uint8 K=100", "binary K=64", "weight-stationary"])
def test_worst_case_operands_do_not_overflow(config):
    """Every operand at its largest-magnitude value, K = kmax: the accumulator's worst case.
    The bench compares with golden (no wrap) and the requantized results are positive."""
    _run(config, workload="worst_case", jobs=2)


@pytest.mark.parametrize("rows,cols,depth", [(4, 4, 8), (8, 8, 16), (2, 3, 5)])
def test_latency_and_throughput_output_stationary(rows, cols, depth):
    config = _config(rows, cols, kmax=32)
    report = _run(config, depth=depth, jobs=3)
    accepted = report["accepted"]["operands"]
    delivered = report["delivered"]
    latency = report["manifest_latency"]
    for p in range(3):
        beats = accepted[p * depth:(p + 1) * depth]
        outputs = delivered[p * rows:(p + 1) * rows]
        # manifest latency: last input beat of a pass → its first result row
        assert outputs[0] - beats[-1] == latency
        # unstalled: one result row per cycle, one input beat per cycle (K ≥ pass interval)
        assert np.diff(outputs).tolist() == [1] * (rows - 1)
        assert np.diff(beats).tolist() == [1] * (depth - 1)
    # first input to last output of a pass: K beats, the manifest latency, R rows out
    span = delivered[rows - 1] - accepted[0] + 1
    assert span == depth + latency + rows - 1


def test_latency_and_throughput_weight_stationary():
    config = _config(4, 4, "weight_stationary")
    report = _run(config, jobs=3)
    accepted = report["accepted"]["activations"]
    delivered = report["delivered"]
    assert np.subtract(delivered, accepted).tolist() == [report["manifest_latency"]] * len(
        delivered)
    first_batch = report["batches"][0]
    assert np.diff(delivered[:first_batch]).tolist() == [1] * (first_batch - 1)


VERILATOR_CASES = {
    "4x4 output-stationary": _config(4, 4),
    "4x4 weight-stationary per-channel single": _config(4, 4, "weight_stationary",
                                                        per_channel=True, rounding="single"),
    "8x8 binary weights": _config(8, 8, weight_bits=1, weight_kind="binary"),
    "2x3 unsigned zero points in hardware": _config(2, 3, act_signed=False, out_signed=False,
                                                    input_zero_point_in_hw=True,
                                                    weight_zero_point_in_hw=True),
}


@pytest.mark.parametrize("name", VERILATOR_CASES)
def test_verilator(name):
    config = VERILATOR_CASES[name]
    _run(config, "verilator", seed=5, zero_points=config.input_zero_point_in_hw, **STALLS)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS)
@pytest.mark.parametrize("bits", [4, 8])
def test_verilator_full_matrix(bits, rounding, dataflow):
    config = _config(8, 8, dataflow, act_bits=bits, weight_bits=bits, out_bits=bits,
                     rounding=rounding, per_channel=True)
    _run(config, "verilator", seed=bits, jobs=6, **STALLS)
    _run(config, "verilator", workload="worst_case")
