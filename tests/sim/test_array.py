# amaranth: UnusedElaboratable=no
"""Generated Verilog of MacArray on Icarus and Verilator, every output against golden/.

The bench (sim/tb_array.py) scores every output element and ``last`` flag itself and checks
the results stream's ready/valid discipline; these tests pick the configurations and check
what the bench reports about timing against docs/architecture.md and the manifest.
``SIM`` picks the simulator of the matrix (Icarus by default); Verilator runs a representative
subset here and a sweep under ``make test-full``.
"""

import numpy as np
import pytest

from golden.layers import fully_connected
from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from hw.top import OPERAND_REGISTER_LATENCY
from sim.runner import array_design, default_simulator, run, simulator_available
from sim.tb_array import _workload

STALLS = {"in_stall": 0.3, "out_stall": 0.3}
DATAFLOWS = ("output_stationary", "weight_stationary")


def _golden_rows(config, spec):
    """golden/'s result rows for the work the bench drove (rebuilt here from the spec)."""
    work = _workload(config, spec)
    layer = work.layer
    return np.concatenate([fully_connected(
        x, w, layer.bias, input_zero_point=layer.input_zero_point,
        weight_zero_point=layer.weight_zero_point, output_zero_point=layer.output_zero_point,
        multiplier=None if config.requant == "shift" else layer.multiplier, shift=layer.shift,
        act_min=layer.act_min, act_max=layer.act_max, rounding=config.rounding)
        for x, w in work.jobs])


def _run(config, sim=None, **spec):
    """Run the bench; every delivered row must equal golden/'s, compared here."""
    sim = sim or default_simulator()
    if not simulator_available(sim):
        pytest.fail(f"{sim} is not installed; `make` installs Verilator, .ci/run installs Icarus")
    spec = {"seed": 0, "jobs": 3, **spec}
    report = run(array_design(config), "sim.tb_array", spec, sim=sim)
    expected = _golden_rows(config, spec)
    assert report["rows"] == report["expected_rows"] == len(expected) > 0
    np.testing.assert_array_equal(np.array(report["outputs"], np.int64), expected)
    return report


def _config(rows, cols, dataflow="output_stationary", **options):
    if dataflow == "output_stationary":
        options.setdefault("kmax", 16)
    return ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, **options)


def _bits(n):
    return dict(act_bits=n, weight_bits=n, out_bits=n)


# Every size on both dataflows; 8- and 4-bit operands alternate so that each size and each
# dataflow meets both widths.
@pytest.mark.parametrize("rows,cols,dataflow,bits", [
    (1, 1, "output_stationary", 8), (1, 1, "weight_stationary", 4),
    (2, 3, "output_stationary", 4), (2, 3, "weight_stationary", 8),
    (4, 4, "output_stationary", 8), (4, 4, "weight_stationary", 4),
    (8, 8, "output_stationary", 4), (8, 8, "weight_stationary", 8),
])
def test_sizes_with_stalls(rows, cols, dataflow, bits):
    _run(_config(rows, cols, dataflow, **_bits(bits)), seed=rows + cols, **STALLS)


PRECISIONS = {
    "int4": _bits(4),
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


# Each rounding mode per tensor on one dataflow and per channel on the other, alternating.
@pytest.mark.parametrize("rounding,dataflow,per_channel", [
    (rounding, dataflow, (i + d) % 2 == 1)
    for i, rounding in enumerate(REQUANT_ROUNDINGS) for d, dataflow in enumerate(DATAFLOWS)])
def test_every_rounding_mode(rounding, dataflow, per_channel):
    _run(_config(3, 2, dataflow, rounding=rounding, per_channel=per_channel),
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
    _config(2, 2, **_bits(4), kmax=16),
    _config(4, 4, kmax=256),
    _config(2, 3, act_signed=False, kmax=100),
    _config(2, 2, weight_bits=1, weight_kind="binary", kmax=64),
    _config(4, 4, "weight_stationary"),
    _config(3, 2, "weight_stationary", **_bits(4)),
    _config(2, 2, act_signed=False, input_zero_point_in_hw=True, weight_zero_point_in_hw=True,
            kmax=32),
    _config(3, 2, "weight_stationary", **_bits(4), input_zero_point_in_hw=True),
], ids=["int4 K=16", "int8 K=256", "uint8 K=100", "binary K=64", "weight-stationary int8",
        "weight-stationary int4", "zero points in hardware K=32",
        "weight-stationary int4 input zero point in hardware"])
def test_worst_case_operands_do_not_overflow(config):
    """Every operand at its largest-magnitude value (with zero points in hardware: raw value
    and zero point at opposite ends), K = kmax (weight-stationary: K = rows): the
    accumulator's worst case. The bench compares with golden (no wrap) every element."""
    report = _run(config, workload="worst_case", jobs=2, **STALLS)
    (x_lo, x_hi), (w_lo, w_hi) = config.act_range, config.weight_range
    depth = config.rows if config.weight_stationary else config.kmax
    peak = depth * max(abs(x * w) for x in (x_lo, x_hi) for w in (w_lo, w_hi))
    assert report["peak_accumulator"] == peak
    assert peak.bit_length() + 1 == config.accumulator_bits  # the sum needs every bit


def _documented_latency(config):
    """docs/architecture.md, Timing: requantizer pipeline stages 13 (multiplier modes, every
    max_left_shift) or 10 (shift-only);
    PE latency L = 2 with the product register, else 1; the accumulator FIFO 2; a row's lane
    groups G − 1; the requantizer's output FIFO 2; before the grid, the operand registers
    (hw.top.OPERAND_REGISTER_LATENCY)."""
    stages = 10 if config.requant == "shift" else 13
    pe = 1 + config.register_product + config.product_pipeline
    queues = 2 + (config.requant_groups - 1) + 2
    if config.weight_stationary:
        grid = config.rows * pe + config.cols
    else:
        grid = (config.cols - 1) + pe + 1
    return OPERAND_REGISTER_LATENCY + grid + queues + stages, stages


def _mac_array_latency(config):
    """MacArray.latency, read from an array never elaborated (the linter comment on line 1
    keeps Amaranth from warning about it)."""
    from hw.top import MacArray

    return MacArray(config).latency


@pytest.mark.parametrize("rows,cols,depth,options", [
    (4, 4, 8, {}), (8, 8, 16, {}), (2, 3, 5, {}),
    (3, 5, 7, dict(register_product=False, rounding="single")),
], ids=["4x4 K=8", "8x8 K=16", "2x3 K=5", "3x5 K=7 no product register"])
def test_latency_and_throughput_output_stationary(rows, cols, depth, options):
    # A lane per column: the requantizer keeps up with passes of any depth.
    config = _config(rows, cols, kmax=32, requant_lanes=cols, **options)
    report = _run(config, depth=depth, jobs=3)
    latency, stages = _documented_latency(config)
    assert report["manifest_latency"] == _mac_array_latency(config) == latency
    accepted = report["accepted"]["operands"]
    delivered = report["delivered"]
    for p in range(3):
        beats = accepted[p * depth:(p + 1) * depth]
        outputs = delivered[p * rows:(p + 1) * rows]
        # measured latency: last input beat of a pass → its first result row
        assert outputs[0] - beats[-1] == latency
        # unstalled: one result row per cycle, one input beat per cycle (K ≥ pass interval)
        assert np.diff(outputs).tolist() == [1] * (rows - 1)
        assert np.diff(beats).tolist() == [1] * (depth - 1)
    # First input to last output of a pass: K + R + C + requantizer stages, plus the operand
    # registers, the PE product register (when there is one), the result copy and the two
    # FIFOs.
    span = delivered[rows - 1] - accepted[0] + 1
    pe = 1 + config.register_product + config.product_pipeline
    assert span == depth + rows + cols + stages + OPERAND_REGISTER_LATENCY + pe + 3


def test_rows_leave_one_lane_group_per_cycle():
    """One requantizer lane for 4 columns: each row takes 4 cycles, and a pass as deep as
    that (rows · 4 beats) still never refuses an input beat."""
    rows, cols = 3, 4
    config = _config(rows, cols, kmax=32, requant_lanes=1)
    depth = rows * config.requant_groups
    report = _run(config, depth=depth, jobs=3)
    latency, _ = _documented_latency(config)
    assert report["manifest_latency"] == _mac_array_latency(config) == latency
    accepted, delivered = report["accepted"]["operands"], report["delivered"]
    assert np.diff(accepted).tolist() == [1] * (3 * depth - 1)
    for p in range(3):
        outputs = delivered[p * rows:(p + 1) * rows]
        assert outputs[0] - accepted[(p + 1) * depth - 1] == latency
        assert np.diff(outputs).tolist() == [config.requant_groups] * (rows - 1)


@pytest.mark.parametrize("rows,cols,options", [
    (4, 4, {}), (3, 5, dict(register_product=False, requant="shift", rounding="half_up")),
], ids=["4x4", "3x5 no product register, shift-only"])
def test_latency_and_throughput_weight_stationary(rows, cols, options):
    config = _config(rows, cols, "weight_stationary", **options)
    assert config.requant_groups == 1   # the default: a row per cycle
    report = _run(config, jobs=3)
    latency, _ = _documented_latency(config)
    assert report["manifest_latency"] == _mac_array_latency(config) == latency
    accepted = report["accepted"]["activations"]
    delivered = report["delivered"]
    assert np.subtract(delivered, accepted).tolist() == [latency] * len(delivered)
    # within a tile, one activation accepted and one row delivered per cycle
    start = 0
    for batch in report["batches"]:
        tile = slice(start, start + batch)
        assert np.diff(accepted[tile]).tolist() == [1] * (batch - 1)
        assert np.diff(delivered[tile]).tolist() == [1] * (batch - 1)
        start += batch


VERILATOR_CASES = {
    "4x4 weight-stationary int4 per-channel single": _config(
        4, 4, "weight_stationary", **_bits(4), per_channel=True, rounding="single"),
    "8x8 binary weights": _config(8, 8, weight_bits=1, weight_kind="binary"),
    "2x3 unsigned zero points in hardware": _config(2, 3, act_signed=False, out_signed=False,
                                                    input_zero_point_in_hw=True,
                                                    weight_zero_point_in_hw=True),
}


@pytest.mark.parametrize("name", VERILATOR_CASES)
def test_verilator(name):
    config = VERILATOR_CASES[name]
    _run(config, "verilator", seed=5, zero_points=config.input_zero_point_in_hw, **STALLS)
    _run(config, "verilator", workload="worst_case", **STALLS)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS)
@pytest.mark.parametrize("bits", [4, 8])
def test_verilator_full_matrix(bits, rounding, dataflow):
    config = _config(8, 8, dataflow, **_bits(bits), rounding=rounding, per_channel=True)
    _run(config, "verilator", seed=bits, jobs=6, **STALLS)
    _run(config, "verilator", workload="worst_case")


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("seed", range(4))
def test_long_random_runs(seed, dataflow):
    """Many passes of random depth up to kmax = 256 with heavy stalls, per channel."""
    config = _config(4, 4, dataflow, **({"kmax": 256} if dataflow == DATAFLOWS[0] else {}),
                     per_channel=True, rounding=REQUANT_ROUNDINGS[seed % len(REQUANT_ROUNDINGS)])
    _run(config, seed=seed, jobs=12, in_stall=0.5, out_stall=0.6)
