"""golden.tflite against a line-by-line pure-int transliteration of the C++ reference code.

The references below follow gemmlowp's fixedpoint.h and TFLite's common.cc /
quantization_util.cc statement by statement, with C semantics spelled out (integer division
truncates toward zero, std::round rounds half away from zero), on Python ints.
"""

import math
import random
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.tflite import (
    INT32_MAX,
    INT32_MIN,
    REQUANT_ROUNDINGS,
    activation_range,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    tflite_multiplier,
)

int32s = st.integers(INT32_MIN, INT32_MAX)


def c_div(a, b):
    """C's integer division: truncate toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ref_srdhm(a, b):
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = c_div(ab_64 + nudge, 1 << 31)
    return INT32_MAX if overflow else ab_x2_high32


def ref_rdbpot(x, exponent):
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def ref_mbqm_double(x, m0, shift):
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return ref_rdbpot(ref_srdhm(x * (1 << left_shift), m0), right_shift)


def ref_mbqm_single(x, m0, shift):
    total_shift = 31 - shift
    round_ = 1 << (total_shift - 1)
    return (x * m0 + round_) >> total_shift


def std_round(value: Fraction):
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def ref_quantize_multiplier(real, single_rounding=False):
    """QuantizeMultiplier, with frexp replaced by exact comparisons on the Fraction."""
    if real == 0:
        return 0, 0
    exact = Fraction(real)
    shift = 0
    while abs(exact) / Fraction(2) ** shift >= 1:
        shift += 1
    while abs(exact) / Fraction(2) ** shift < Fraction(1, 2):
        shift -= 1
    q_fixed = std_round(exact / Fraction(2) ** shift * (1 << 31))
    if abs(q_fixed) == 1 << 31:
        q_fixed = c_div(q_fixed, 2)
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if single_rounding and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def to_float32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


# -- gemmlowp primitives ---------------------------------------------------------------------

def test_srdhm_saturates_only_at_int32_min_squared():
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX
    assert saturating_rounding_doubling_high_mul(INT32_MAX, INT32_MAX) == INT32_MAX - 1


def test_srdhm_every_tie_pattern_rounds_toward_plus_infinity():
    # a·b = (2t + 1)·2^30 is an exact tie of a·b / 2^31
    for t in range(-8, 8):
        a, b = (2 * t + 1), 1 << 30
        expected = math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2))
        assert saturating_rounding_doubling_high_mul(a, b) == expected == ref_srdhm(a, b)


@settings(max_examples=500, deadline=None)
@given(int32s, int32s)
def test_srdhm_matches_reference(a, b):
    assert saturating_rounding_doubling_high_mul(a, b) == ref_srdhm(a, b)
    got = saturating_rounding_doubling_high_mul(np.array([a]), np.array([b]))
    assert got.tolist() == [ref_srdhm(a, b)]


def test_rounding_divide_by_pot_every_exponent_and_tie():
    rng = random.Random(1)
    samples = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX] + [
        rng.randint(INT32_MIN, INT32_MAX) for _ in range(200)]
    for exponent in range(32):
        xs = np.array(samples + [(2 * k + 1) << exponent >> 1 for k in range(-4, 4)],
                      dtype=np.int64)
        xs = xs[(xs >= INT32_MIN) & (xs <= INT32_MAX)]
        got = rounding_divide_by_pot(xs, exponent)
        assert got.tolist() == [ref_rdbpot(int(x), exponent) for x in xs]
        # and it is round-half-away-from-zero of the exact quotient
        assert got.tolist() == [std_round(Fraction(int(x), 1 << exponent)) for x in xs]


# -- MultiplyByQuantizedMultiplier -----------------------------------------------------------

def _multipliers(rng, count):
    return [rng.randint(1 << 30, INT32_MAX) for _ in range(count)] + [1 << 30, INT32_MAX]


def test_double_rounding_every_right_shift_on_sampled_accumulators():
    rng = random.Random(2)
    accs = np.array([INT32_MIN, INT32_MAX, -1, 0, 1] +
                    [rng.randint(INT32_MIN, INT32_MAX) for _ in range(60)] +
                    [rng.randint(-(1 << 20), 1 << 20) for _ in range(60)], dtype=np.int64)
    for m0 in _multipliers(rng, 4):
        for shift in range(-31, 1):
            got = multiply_by_quantized_multiplier(accs, m0, shift)
            assert got.tolist() == [ref_mbqm_double(int(a), m0, shift) for a in accs]


def test_double_rounding_left_shifts_and_undefined_overflow():
    m0 = 1518500250  # √2/2·2^31
    for shift in range(1, 8):
        x = (INT32_MAX >> shift)
        assert multiply_by_quantized_multiplier(x, m0, shift) == ref_mbqm_double(x, m0, shift)
        with pytest.raises(ValueError, match=r"x · 2\^shift must be in"):
            multiply_by_quantized_multiplier(x + 1, m0, shift)


def test_single_rounding_every_shift_on_sampled_accumulators():
    rng = random.Random(3)
    accs = [rng.randint(-(1 << 24), 1 << 24) for _ in range(80)] + [-1, 0, 1]
    for m0 in _multipliers(rng, 3):
        for shift in range(-31, 1):
            expected = [ref_mbqm_single(a, m0, shift) for a in accs]
            got = multiply_by_quantized_multiplier(np.array(accs), m0, shift, rounding="single")
            assert got.tolist() == expected
            # single rounding is half up of the exact product
            assert expected == [math.floor(Fraction(a * m0, 1 << (31 - shift)) + Fraction(1, 2))
                                for a in accs]


@pytest.mark.parametrize("mode", REQUANT_ROUNDINGS[2:])
def test_other_modes_round_the_exact_product_once(mode):
    from tests.golden.test_rounding import reference
    rng = random.Random(4)
    for _ in range(300):
        x, m0, shift = rng.randint(INT32_MIN, INT32_MAX), rng.randint(0, INT32_MAX), \
            rng.randint(-31, 0)
        expected = reference(Fraction(x * m0, 1 << (31 - shift)), mode)
        assert multiply_by_quantized_multiplier(x, m0, shift, rounding=mode) == expected


def test_double_and_single_differ_where_the_two_roundings_compound():
    # Search for a case where rounding twice differs from rounding once, and check both.
    rng = random.Random(5)
    found = 0
    for _ in range(20000):
        x, m0, shift = rng.randint(-5000, 5000), rng.randint(1 << 30, INT32_MAX), -rng.randint(1, 8)
        double = multiply_by_quantized_multiplier(x, m0, shift)
        single = multiply_by_quantized_multiplier(x, m0, shift, rounding="single")
        assert double == ref_mbqm_double(x, m0, shift)
        assert single == ref_mbqm_single(x, m0, shift)
        found += double != single
    assert found > 0


# -- QuantizeMultiplier ----------------------------------------------------------------------

def test_seed_worked_example():
    # M = 0.01 = 2^-6 × 0.64. The slide truncates 0.64·2^31 = 1374389534.72 to 1374389534;
    # TFLite (and qmac) round it to 1374389535: half the worst-case multiplier error.
    m0, shift = quantize_multiplier(0.01)
    assert (m0, shift) == (1374389535, -6)
    assert abs(Fraction(m0, 1 << 31) - Fraction(0.64)) < abs(Fraction(1374389534, 1 << 31)
                                                           - Fraction(0.64))
    for rounding in ("double", "single"):
        assert multiply_by_quantized_multiplier(1234, m0, shift, rounding=rounding) == 12


@pytest.mark.parametrize("real", [
    0.0, 1e-300, 2.0 ** -32, 2.0 ** -31, 2.0 ** -33, 0.5, 1.0, 2.0, 3.0, 0.75, 1 - 2.0 ** -40,
    0.5 - 2.0 ** -45, 0.999999999, 1.0000000001, 123.456, 2.0 ** 30, 2.0 ** 31, 2.0 ** 40,
    -0.3, -1.0, 0.1, 1 / 3,
])
def test_quantize_multiplier_edges(real):
    assert quantize_multiplier(real) == ref_quantize_multiplier(real)
    assert quantize_multiplier(real, rounding="single") == ref_quantize_multiplier(real, True)
    m0, shift = quantize_multiplier(real)
    if m0:
        assert (1 << 30) <= abs(m0) < (1 << 31)
        # representation error at most half an ulp of m0
        assert abs(Fraction(m0) * Fraction(2) ** (shift - 31) - Fraction(real)) <= \
            Fraction(2) ** (shift - 32)


def test_quantize_multiplier_named_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0 ** -33) == (0, 0)           # flushed to zero
    assert quantize_multiplier(1.0) == (1 << 30, 1)            # exact power of two
    assert quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)  # m0 rounds up to 2^31
    assert quantize_multiplier(2.0 ** 40, rounding="single") == (INT32_MAX, 30)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1e6, allow_nan=False))
def test_quantize_multiplier_property(real):
    assert quantize_multiplier(real) == ref_quantize_multiplier(real)


def test_quantize_multiplier_arrays_are_per_channel():
    reals = np.array([0.01, 0.5, 0.003, 0.0])
    m0, shift = quantize_multiplier(reals)
    expected = [ref_quantize_multiplier(r) for r in reals]
    assert list(zip(m0.tolist(), shift.tolist(), strict=True)) == expected


def test_tflite_multiplier_per_tensor_uses_a_float32_product():
    rng = random.Random(6)
    differing = 0
    for _ in range(2000):
        s_in, s_w, s_out = (to_float32(rng.uniform(1e-4, 1e-1)) for _ in range(3))
        product32 = to_float32(s_in * s_w)  # exact double product, rounded once to float32
        per_tensor = tflite_multiplier(s_in, s_w, s_out)
        assert per_tensor == ref_quantize_multiplier(product32 / s_out)
        m0, shift = tflite_multiplier(s_in, np.array([s_w]), s_out)
        per_channel = (int(m0[0]), int(shift[0]))
        assert per_channel == ref_quantize_multiplier(s_in * s_w / s_out)
        differing += per_channel != per_tensor
    assert differing > 0  # the two derivations really differ in the last bit sometimes


def test_activation_range():
    scale, zero_point = to_float32(6 / 255), -128
    assert activation_range("none", scale, zero_point) == (-128, 127)
    assert activation_range("relu", scale, zero_point) == (-128, 127)
    relu6 = activation_range("relu6", scale, zero_point)
    assert relu6 == (-128, -128 + std_round(Fraction(to_float32(6 / scale))))
    assert activation_range("relu", 0.1, 5) == (5, 127)
    assert activation_range("relu6", 0.01, 0) == (0, 127)   # 6/0.01 = 600 clipped
    assert activation_range("relu_n1_to_1", 0.25, 0, bits=4) == (-4, 4)
    assert activation_range("relu6", 0.05, 10, bits=8, signed=False) == (10, 130)


# -- requantize ------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.integers(1 << 30, INT32_MAX), st.integers(-20, 0),
       st.sampled_from(REQUANT_ROUNDINGS), st.integers(-10, 10))
def test_requantize_is_monotone_in_the_accumulator(m0, shift, rounding, zero_point):
    acc = np.arange(-3000, 3000, 7, dtype=np.int64) * 1000
    y = requantize(acc, multiplier=m0, shift=shift, output_zero_point=zero_point,
                   act_min=-128, act_max=127, rounding=rounding)
    assert (np.diff(y) >= 0).all()
    assert y.min() >= -128 and y.max() <= 127


@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS)
def test_requantize_per_channel_is_a_loop_of_per_tensor(rounding):
    rng = np.random.default_rng(7)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(9, 5))
    bias = rng.integers(-1000, 1000, size=5)
    m0 = rng.integers(1 << 30, 1 << 31, size=5)
    shift = rng.integers(-15, 1, size=5)
    args = dict(output_zero_point=3, act_min=-100, act_max=90, rounding=rounding)
    y = requantize(acc, bias=bias, multiplier=m0, shift=shift, **args)
    for j in range(5):
        column = requantize(acc[:, j], bias=int(bias[j]), multiplier=int(m0[j]),
                            shift=int(shift[j]), **args)
        assert y[:, j].tolist() == column.tolist()
        if rounding == "double":
            assert column.tolist() == [
                min(max(ref_mbqm_double(int(a) + int(bias[j]), int(m0[j]), int(shift[j])) + 3,
                        -100), 90) for a in acc[:, j]]


@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS[1:])
def test_requantize_shift_only(rounding):
    from tests.golden.test_rounding import reference
    mode = "half_up" if rounding == "single" else rounding
    acc = np.arange(-300, 300, dtype=np.int64)
    for shift in range(-9, 3):
        y = requantize(acc, multiplier=None, shift=shift, output_zero_point=-2,
                       act_min=-1000, act_max=1000, rounding=rounding)
        assert y.tolist() == [max(min(reference(Fraction(int(a)) * Fraction(2) ** shift, mode)
                                      - 2, 1000), -1000) for a in acc]


def test_requantize_refuses_what_tflite_leaves_undefined():
    with pytest.raises(ValueError, match="acc \\+ bias must be in"):
        requantize(np.array([INT32_MAX]), bias=np.array([1]), multiplier=1 << 30, shift=0,
                   output_zero_point=0, act_min=-128, act_max=127)
    with pytest.raises(ValueError, match="act_min must be ≤ act_max"):
        requantize(np.array([1]), multiplier=1 << 30, shift=0, output_zero_point=0,
                   act_min=5, act_max=4)
    with pytest.raises(ValueError, match="rounding='double' needs a multiplier"):
        requantize(np.array([1]), multiplier=None, shift=-1, output_zero_point=0,
                   act_min=-128, act_max=127)
    with pytest.raises(ValueError, match="rounding must be one of"):
        multiply_by_quantized_multiplier(1, 1 << 30, 0, rounding="banker")
    with pytest.raises(ValueError, match="single rounding needs m0 ≥ 0"):
        multiply_by_quantized_multiplier(1, -5, 0, rounding="single")
    with pytest.raises(TypeError, match="acc must hold integers"):
        requantize(np.array([1.5]), multiplier=1 << 30, shift=0, output_zero_point=0,
                   act_min=-128, act_max=127)
