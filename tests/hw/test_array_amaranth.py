"""MacArray in Amaranth's simulator against golden.fully_connected, every output element."""

import numpy as np
import pytest

from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from sim.amaranth_sim import run_array
from sim.workload import random_workload, worst_case_workload


def _check(config, *, jobs=4, seed=0, in_stall=0.3, out_stall=0.3, zero_points=False):
    work = random_workload(config, seed=seed, jobs=jobs, zero_points=zero_points)
    run = run_array(config, work.jobs, work.params, in_stall=in_stall, out_stall=out_stall,
                    seed=seed)
    np.testing.assert_array_equal(run.outputs, work.expected)
    assert not run.busy_after
    return run


DATAFLOWS = ("output_stationary", "weight_stationary")


def _alternating(cases):
    """Every case on both dataflows; `make test` runs one dataflow per case, alternating, and
    leaves the other to `make test-full` (the cocotb suite covers the same matrix on RTL)."""
    return [pytest.param(dataflow, *case, marks=() if (i + d) % 2 == 0 else pytest.mark.slow)
            for i, case in enumerate(cases) for d, dataflow in enumerate(DATAFLOWS)]


@pytest.mark.parametrize("dataflow,rows,cols", _alternating([(1, 1), (2, 3), (3, 2), (4, 4)]))
def test_random_with_stalls(dataflow, rows, cols):
    config = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow,
                         kmax=None if dataflow == "weight_stationary" else 12)
    _check(config, seed=rows * 10 + cols)


@pytest.mark.parametrize("dataflow,rounding", _alternating([(r,) for r in REQUANT_ROUNDINGS]))
def test_every_rounding_per_channel(dataflow, rounding):
    config = ArrayConfig(rows=2, cols=3, dataflow=dataflow, rounding=rounding, per_channel=True,
                         kmax=None if dataflow == "weight_stationary" else 8)
    _check(config, jobs=3, seed=hash(rounding) % 1000)


@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS[1:])
def test_shift_only_requantizer(rounding):
    config = ArrayConfig(rows=2, cols=2, requant="shift", rounding=rounding, kmax=8)
    _check(config, jobs=3, seed=7)


@pytest.mark.parametrize("dataflow,kind,options", _alternating([
    ("4-bit", dict(act_bits=4, weight_bits=4, out_bits=4)),
    ("unsigned activations", dict(act_signed=False, out_signed=False)),
    ("binary weights", dict(weight_bits=1, weight_kind="binary")),
    ("ternary weights", dict(weight_bits=2, weight_kind="ternary")),
    ("16-bit activations", dict(act_bits=16, weight_bits=4, out_bits=16)),
    ("left shifts", dict(max_left_shift=4, per_channel=True)),
    ("no product register", dict(register_product=False)),
    ("two product registers", dict(product_pipeline=1)),
    ("three product registers", dict(product_pipeline=2)),
]))
def test_precisions(dataflow, kind, options):
    config = ArrayConfig(rows=3, cols=2, dataflow=dataflow,
                         kmax=None if dataflow == "weight_stationary" else 6, **options)
    _check(config, jobs=3, seed=len(kind))


@pytest.mark.parametrize("dataflow,in_hw", _alternating([(False,), (True,)]))
def test_zero_points(dataflow, in_hw):
    config = ArrayConfig(rows=2, cols=3, dataflow=dataflow, act_signed=False, out_signed=False,
                         input_zero_point_in_hw=in_hw, weight_zero_point_in_hw=in_hw,
                         kmax=None if dataflow == "weight_stationary" else 8)
    _check(config, jobs=3, seed=11, zero_points=True)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("bits", [4, 8])
def test_worst_case_operands_do_not_overflow(dataflow, bits):
    """Every operand at its most negative value, K = kmax: the largest possible sum."""
    config = ArrayConfig(rows=2, cols=2, dataflow=dataflow, act_bits=bits, weight_bits=bits,
                         kmax=None if dataflow == "weight_stationary" else 9)
    work = worst_case_workload(config)
    x, w = work.jobs[0]
    peak = int(x[0] @ w[0])
    assert peak.bit_length() + 1 == config.accumulator_bits  # the sum needs every bit
    run = run_array(config, work.jobs, work.params)
    np.testing.assert_array_equal(run.outputs, work.expected)
    assert (run.outputs > 0).all()  # a wrapped accumulator would have come out negative


@pytest.mark.parametrize("lanes", [None, 2, 3])
def test_latency_and_throughput_output_stationary(lanes):
    """Passes exactly as deep as the requantizer needs (rows · row_interval beats) run back to
    back: the input is never refused, each pass's rows come out row_interval cycles apart."""
    config = ArrayConfig(rows=4, cols=3, kmax=16, requant_lanes=lanes)
    groups = -(-config.cols // config.lanes)
    assert config.lanes == (lanes or 1) and config.requant_groups == groups
    work = random_workload(config, seed=5, jobs=3, depth=max(config.rows * groups, 4))
    run = run_array(config, work.jobs, work.params)
    np.testing.assert_array_equal(run.outputs, work.expected)
    jobs = work.jobs
    firsts = run.output_cycles[::config.rows]
    measured = [out - last for out, last in zip(firsts, run.last_accept_cycles, strict=True)]
    assert measured == [run.latency] * len(jobs)
    for p in range(len(jobs)):
        cycles = run.output_cycles[p * config.rows:(p + 1) * config.rows]
        assert np.diff(cycles).tolist() == [groups] * (config.rows - 1)
    assert np.diff(run.accept_cycles).tolist() == [1] * (len(run.accept_cycles) - 1)
    assert run.lasts == [False, False, False, True] * len(jobs)


def test_short_passes_are_paced_by_the_requantizer():
    """Passes shorter than the requantizer needs: backpressure slows the input, exactly."""
    config = ArrayConfig(rows=4, cols=4, kmax=64, requant_lanes=1)
    work = random_workload(config, seed=7, jobs=6, depth=4)
    run = run_array(config, work.jobs, work.params)
    np.testing.assert_array_equal(run.outputs, work.expected)
    # 16 outputs per 4-beat pass through one lane: about 16 cycles per pass in steady state.
    span = run.output_cycles[-1] - run.output_cycles[0]
    assert span >= (len(work.jobs) * config.rows - 1) * config.cols


def test_latency_and_throughput_weight_stationary():
    config = ArrayConfig(rows=3, cols=4, dataflow="weight_stationary")
    work = random_workload(config, seed=6, jobs=2)
    run = run_array(config, work.jobs, work.params)
    np.testing.assert_array_equal(run.outputs, work.expected)
    rows = len(work.expected)
    assert len(run.output_cycles) == len(run.accept_cycles) == rows
    measured = np.subtract(run.output_cycles, run.accept_cycles)
    assert measured.tolist() == [run.latency] * rows
    # Each tile's activations are accepted, and its rows delivered, one per cycle.
    batch = len(work.jobs[0][0])
    assert np.diff(run.output_cycles[:batch]).tolist() == [1] * (batch - 1)


def test_depth_error_flags_a_pass_deeper_than_kmax():
    config = ArrayConfig(rows=1, cols=1, kmax=4)
    x = np.ones((1, 5), np.int64)
    params = dict(bias=[0], multiplier=[1 << 30], shift=[-1], output_zero_point=0,
                  act_min=-128, act_max=127)
    assert not run_array(config, [(x[:, :4], x[:, :4])], params).depth_error
    assert run_array(config, [(x, x)], params).depth_error
