"""golden.quantization: the properties affine quantization promises."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.quantization import (
    QuantParams,
    calibrate,
    choose_qparams,
    dequantize,
    qrange,
    quantize,
)


def test_qrange():
    for bits in range(2, 17):
        assert qrange(bits, True) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        assert qrange(bits, True, narrow_range=True) == (-(2 ** (bits - 1)) + 1,
                                                         2 ** (bits - 1) - 1)
        assert qrange(bits, False) == (0, 2 ** bits - 1)
    with pytest.raises(ValueError, match="bits must be an integer in 2..16; got 17"):
        qrange(17, True)


ranges = st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)).map(sorted)


@settings(max_examples=200, deadline=None)
@given(ranges, st.integers(2, 16), st.booleans(), st.booleans(), st.booleans())
def test_zero_is_exact_and_error_is_at_most_half_a_step(bounds, bits, signed, symmetric,
                                                        narrow):
    lo, hi = bounds
    params = choose_qparams(lo, hi, bits=bits, signed=signed, symmetric=symmetric,
                            narrow_range=narrow)
    assert dequantize(quantize(0.0, params), params) == 0.0
    scale = float(params.scale)
    real = np.linspace(min(lo, 0.0), max(hi, 0.0), 101)
    if symmetric and not signed:
        real = real[real >= (params.qmin - params.zero_point) * scale]
    error = np.abs(dequantize(quantize(real, params), params) - real)
    # S/2 exactly, plus a few ulps of the largest magnitude for the float64 arithmetic
    slack = 8 * np.finfo(np.float64).eps * max(abs(lo), abs(hi), scale)
    assert (error <= scale / 2 + slack).all()


def test_symmetric_zero_points():
    assert int(choose_qparams(-1, 2, symmetric=True).zero_point) == 0
    assert int(choose_qparams(-1, 2, symmetric=True, signed=False).zero_point) == 128
    params = choose_qparams(-3.0, 3.0, symmetric=True, narrow_range=True)
    assert quantize([-3.0, 3.0], params).tolist() == [-127, 127]


def test_asymmetric_parameters_by_hand():
    params = choose_qparams(-1.0, 3.0, bits=8, signed=False)
    assert float(params.scale) == 4.0 / 255
    assert int(params.zero_point) == 64  # 0 − round(−1 / (4/255)) = round(63.75)
    assert quantize([-1.0, 3.0, 10.0, -10.0], params).tolist() == [0, 255, 255, 0]


def test_rounding_ties_go_away_from_zero():
    params = QuantParams(scale=0.5, zero_point=0, bits=8, signed=True)
    assert quantize([0.25, -0.25, 0.75, -0.75], params).tolist() == [1, -1, 2, -2]


def test_per_channel_equals_per_tensor_per_channel():
    rng = np.random.default_rng(0)
    w = rng.normal(0, [[0.1], [1.0], [5.0]], size=(3, 20))
    per_channel = calibrate(w, axis=0, symmetric=True, narrow_range=True)
    q = quantize(w, per_channel)
    for c in range(3):
        alone = calibrate(w[c], symmetric=True, narrow_range=True)
        assert float(alone.scale) == per_channel.scale[c]
        assert quantize(w[c], alone).tolist() == q[c].tolist()
    assert np.abs(q).max(axis=1).tolist() == [127, 127, 127]


def test_percentile_calibration_ignores_outliers():
    data = np.concatenate([np.linspace(-1, 1, 100000), [1000.0]])
    minmax = calibrate(data)
    robust = calibrate(data, method="percentile", percentile=99.9)
    assert float(minmax.scale) > 100 * float(robust.scale)
    assert float(robust.scale) == pytest.approx(2 / 255, rel=0.01)


def test_power_of_two_scales_cover_the_range():
    for lo, hi in [(-1.0, 3.0), (-0.01, 0.02), (0.0, 100.0)]:
        params = choose_qparams(lo, hi, power_of_two=True, symmetric=True)
        exponent = np.log2(float(params.scale))
        assert exponent == np.round(exponent)
        assert float(params.scale) * params.qmax >= max(abs(lo), hi)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="scale must be positive"):
        QuantParams(scale=0.0, zero_point=0)
    with pytest.raises(ValueError, match="zero_point must be in -128..127; got 200"):
        QuantParams(scale=1.0, zero_point=200)
    with pytest.raises(ValueError, match="method must be 'minmax' or 'percentile'"):
        calibrate([1.0], method="kl")
    with pytest.raises(TypeError, match="q must hold integers"):
        dequantize([0.5], QuantParams(scale=1.0, zero_point=0))
