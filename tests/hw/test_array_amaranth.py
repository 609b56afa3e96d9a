"""MacArray in Amaranth's simulator against golden.fully_connected, every output element."""

import numpy as np
import pytest

from golden.layers import fully_connected
from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from hw.host import LayerParams

from .harness import run_array


def _operand(rng, bits, signed, shape, kind="integer"):
    if kind == "binary":
        return rng.choice(np.array([-1, 1], np.int64), size=shape)
    if kind == "ternary":
        return rng.integers(-1, 2, size=shape, dtype=np.int64)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _layer(config, rng, *, zero_points=False):
    """Random but legal run-time parameters for ``config``."""
    n = config.cols
    out_lo, out_hi = config.out_range
    per = config.requant_channels
    if config.requant == "multiplier":
        multiplier = rng.integers(1 << 30, 1 << 31, size=per, dtype=np.int64)
        shift = rng.integers(-12, config.max_left_shift + 1, size=per, dtype=np.int64)
        if not config.max_left_shift:
            shift = -rng.integers(4, 12, size=per, dtype=np.int64)
    else:
        multiplier = None
        shift = -rng.integers(3, 10, size=per, dtype=np.int64)
    act_lo, act_hi = config.act_zero_point_range
    izp = int(rng.integers(act_lo, act_hi + 1)) if zero_points else 0
    wzp = 0
    if zero_points and config.weight_zero_point_in_hw:
        wzp = int(rng.integers(*config.weight_zero_point_range))
    return LayerParams.for_config(
        config, n=n, bias=rng.integers(-2000, 2000, size=n, dtype=np.int64),
        multiplier=multiplier, shift=shift,
        output_zero_point=int(rng.integers(out_lo // 2, out_hi // 2 + 1)),
        act_min=out_lo + 3, act_max=out_hi - 2, input_zero_point=izp, weight_zero_point=wzp)


def _golden(config, layer, x, w):
    return fully_connected(
        x, w, layer.bias, input_zero_point=layer.input_zero_point,
        weight_zero_point=layer.weight_zero_point, output_zero_point=layer.output_zero_point,
        multiplier=None if config.requant == "shift" else layer.multiplier,
        shift=layer.shift, act_min=layer.act_min, act_max=layer.act_max,
        rounding=config.rounding)


def _check(config, *, jobs=4, seed=0, in_stall=0.3, out_stall=0.3, zero_points=False):
    rng = np.random.default_rng(seed)
    layer = _layer(config, rng, zero_points=zero_points)
    # A folded input zero point makes the bias depend on the weights; the bias is a per-layer
    # parameter, so then every job shares one weight matrix (as in a real layer).
    shared_weights = zero_points and not config.input_zero_point_in_hw
    depth = config.rows if config.weight_stationary else int(rng.integers(1, config.kmax + 1))
    w_shared = _operand(rng, config.weight_bits, config.weight_signed, (config.cols, depth),
                        config.weight_kind)
    work, expected = [], []
    for _ in range(jobs):
        if config.weight_stationary:
            k, batch = config.rows, int(rng.integers(1, 5))
        else:
            k = depth if shared_weights else int(rng.integers(1, config.kmax + 1))
            batch = config.rows
        x = _operand(rng, config.act_bits, config.act_signed, (batch, k))
        w = w_shared if shared_weights else _operand(
            rng, config.weight_bits, config.weight_signed, (config.cols, k), config.weight_kind)
        expected.append(_golden(config, layer, x, w))
        work.append((x, w))
    params = dict(bias=layer.hardware_bias(config, w_shared),
                  multiplier=layer.multiplier[:config.requant_channels],
                  shift=layer.shift[:config.requant_channels],
                  output_zero_point=layer.output_zero_point, act_min=layer.act_min,
                  act_max=layer.act_max, input_zero_point=layer.input_zero_point,
                  weight_zero_point=layer.weight_zero_point)
    run = run_array(config, work, params, in_stall=in_stall, out_stall=out_stall, seed=seed)
    np.testing.assert_array_equal(run.outputs, np.concatenate(expected))
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


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
@pytest.mark.parametrize("bits", [4, 8])
def test_worst_case_operands_do_not_overflow(dataflow, bits):
    """Every operand at its most negative value, K = kmax: the largest possible sum."""
    config = ArrayConfig(rows=2, cols=2, dataflow=dataflow, act_bits=bits, weight_bits=bits,
                         requant="shift", rounding="floor",
                         kmax=None if dataflow == "weight_stationary" else 9)
    k = config.kmax
    lo = -(1 << (bits - 1))
    x = np.full((config.rows, k), lo, np.int64)
    w = np.full((config.cols, k), lo, np.int64)
    peak = k * lo * lo
    assert peak.bit_length() + 1 == config.accumulator_bits  # the sum needs every bit
    # Shift the peak just into the int16 output range: any wrap would change the result.
    out_config = config.replace(out_bits=16)
    shift = -max(0, peak.bit_length() - 14)
    params = dict(bias=np.zeros(2, np.int64), multiplier=None, shift=np.array([shift]),
                  output_zero_point=0, act_min=-(1 << 15), act_max=(1 << 15) - 1)
    run = run_array(out_config, [(x, w)], {**params, "multiplier": [0]})
    expected = fully_connected(x, w, None, input_zero_point=0, weight_zero_point=0,
                               output_zero_point=0, multiplier=None, shift=shift,
                               act_min=-(1 << 15), act_max=(1 << 15) - 1, rounding="floor")
    np.testing.assert_array_equal(run.outputs, expected)
    assert (run.outputs > 0).all()


def test_latency_and_throughput_output_stationary():
    config = ArrayConfig(rows=4, cols=3, kmax=16)
    rng = np.random.default_rng(5)
    jobs = [(_operand(rng, 8, True, (4, 8)), _operand(rng, 8, True, (3, 8))) for _ in range(3)]
    params = dict(bias=np.zeros(3, np.int64), multiplier=[1 << 30], shift=[-8],
                  output_zero_point=0, act_min=-128, act_max=127)
    run = run_array(config, jobs, params)
    firsts = run.output_cycles[::config.rows]
    measured = [out - last for out, last in zip(firsts, run.last_accept_cycles, strict=True)]
    assert measured == [run.latency] * len(jobs)
    # Unstalled, each pass's rows come out back to back, one per cycle.
    for p in range(len(jobs)):
        cycles = run.output_cycles[p * config.rows:(p + 1) * config.rows]
        assert np.diff(cycles).tolist() == [1] * (config.rows - 1)
    # With K ≥ pass interval the input is never refused: one beat per cycle.
    assert np.diff(run.accept_cycles).tolist() == [1] * (len(run.accept_cycles) - 1)
    assert run.lasts == [False, False, False, True] * len(jobs)


def test_latency_and_throughput_weight_stationary():
    config = ArrayConfig(rows=3, cols=4, dataflow="weight_stationary")
    rng = np.random.default_rng(6)
    jobs = [(_operand(rng, 8, True, (6, 3)), _operand(rng, 8, True, (4, 3))) for _ in range(2)]
    params = dict(bias=np.zeros(4, np.int64), multiplier=[1 << 30], shift=[-8],
                  output_zero_point=0, act_min=-128, act_max=127)
    run = run_array(config, jobs, params)
    assert len(run.output_cycles) == len(run.accept_cycles) == 12
    measured = np.subtract(run.output_cycles, run.accept_cycles)
    assert measured.tolist() == [run.latency] * 12
    # Each tile's activations are accepted, and its rows delivered, one per cycle.
    assert np.diff(run.output_cycles[:6]).tolist() == [1] * 5


def test_depth_error_flags_a_pass_deeper_than_kmax():
    config = ArrayConfig(rows=1, cols=1, kmax=4)
    x = np.ones((1, 5), np.int64)
    params = dict(bias=[0], multiplier=[1 << 30], shift=[-1], output_zero_point=0,
                  act_min=-128, act_max=127)
    assert not run_array(config, [(x[:, :4], x[:, :4])], params).depth_error
    assert run_array(config, [(x, x)], params).depth_error
