"""golden.ops against line-by-line transliterations of TFLite's reference kernels.

The references loop over Python ints (and numpy float32 scalars where the C++ computes in
float), statement by statement as in tensorflow/lite/kernels/internal/reference/ and the
kernels' Prepare functions; they share no code with golden/ops.py beyond the gemmlowp
transliterations of test_tflite.py. tests/golden/test_oracle.py checks the same functions
against the TFLite interpreter itself when its environment exists.
"""

import ctypes
import ctypes.util
import math
import platform
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import layers, ops
from golden.tflite import conv_multiplier, quantize_multiplier, tflite_multiplier

from .test_tflite import c_div, ref_mbqm_double, ref_quantize_multiplier, ref_rdbpot

f32 = np.float32


def to_f32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


def std_round(value):
    """std::round on a float: half away from zero."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def clamp(value, lo=-128, hi=127):
    return min(max(value, lo), hi)


def padding_before(size, kernel, stride, dilation, padding):
    """TFLite ComputePaddingWithOffset: (output size, padding before)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        out = (size + stride - 1) // stride
    else:
        out = (size - effective + stride) // stride
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2


# -- DEPTHWISE_CONV_2D and grouped CONV_2D ---------------------------------------------------

def ref_conv_pixels(x, f_h, f_w, stride, dilation, padding):
    """The output pixels of a convolution window and the filter taps inside the input:
    (b, oy, ox, [(fy, fx, iy, ix), ...]), with TFLite's padding before."""
    batches, in_h, in_w, _ = x.shape
    out_h, pad_h = padding_before(in_h, f_h, stride, dilation, padding)
    out_w, pad_w = padding_before(in_w, f_w, stride, dilation, padding)
    for b in range(batches):
        for oy in range(out_h):
            for ox in range(out_w):
                taps = [(fy, fx, oy * stride - pad_h + dilation * fy,
                         ox * stride - pad_w + dilation * fx)
                        for fy in range(f_h) for fx in range(f_w)]
                yield b, oy, ox, [t for t in taps if 0 <= t[2] < in_h and 0 <= t[3] < in_w]


def ref_output_shape(x, f_h, f_w, channels, stride, dilation, padding):
    return (x.shape[0], padding_before(x.shape[1], f_h, stride, dilation, padding)[0],
            padding_before(x.shape[2], f_w, stride, dilation, padding)[0], channels)


def ref_depthwise(x, w, bias, zx, zy, m0, shift, lo, hi, stride, dilation, padding):
    """reference_integer_ops::DepthwiseConvPerChannel."""
    _, f_h, f_w, out_c = w.shape
    in_c = x.shape[3]
    mult = out_c // in_c
    out = np.zeros(ref_output_shape(x, f_h, f_w, out_c, stride, dilation, padding), np.int64)
    for b, oy, ox, taps in ref_conv_pixels(x, f_h, f_w, stride, dilation, padding):
        for ic in range(in_c):
            for m in range(mult):
                oc = m + ic * mult
                acc = 0
                for fy, fx, iy, ix in taps:
                    acc += int(w[0, fy, fx, oc]) * (int(x[b, iy, ix, ic]) - zx)
                acc += int(bias[oc])
                acc = ref_mbqm_double(acc, int(m0[oc]), int(shift[oc])) + zy
                out[b, oy, ox, oc] = clamp(acc, lo, hi)
    return out


def ref_grouped_conv(x, w, bias, zx, zy, m0, shift, lo, hi, stride, dilation, padding):
    """reference_integer_ops::ConvPerChannel with groups = C_in / filter channels."""
    out_c, f_h, f_w, f_c = w.shape
    groups = x.shape[3] // f_c
    per_group = out_c // groups
    out = np.zeros(ref_output_shape(x, f_h, f_w, out_c, stride, dilation, padding), np.int64)
    for b, oy, ox, taps in ref_conv_pixels(x, f_h, f_w, stride, dilation, padding):
        for oc in range(out_c):
            group = oc // per_group
            acc = 0
            for fy, fx, iy, ix in taps:
                for ic in range(f_c):
                    acc += int(w[oc, fy, fx, ic]) * (int(x[b, iy, ix, ic + group * f_c]) - zx)
            acc = ref_mbqm_double(acc + int(bias[oc]), int(m0[oc]), int(shift[oc]))
            out[b, oy, ox, oc] = clamp(acc + zy, lo, hi)
    return out


window = dict(
    height=st.integers(1, 7), width=st.integers(1, 7), kh=st.integers(1, 3),
    kw=st.integers(1, 3), stride=st.integers(1, 3), dilation=st.integers(1, 3),
    padding=st.sampled_from(["same", "valid"]), seed=st.integers(0, 2**32 - 1))


def _fits(height, width, kh, kw, dilation, padding):
    return padding == "same" or (height >= (kh - 1) * dilation + 1
                                 and width >= (kw - 1) * dilation + 1)


def _requant_params(rng, channels):
    m0 = rng.integers(1 << 30, 1 << 31, size=channels)
    shift = rng.integers(-12, 2, size=channels)     # positive shifts occur in real models
    return m0, shift


@settings(max_examples=60, deadline=None)
@given(channels=st.integers(1, 4), multiplier=st.integers(1, 3), **window)
def test_depthwise_conv2d_against_the_kernel_loop(channels, multiplier, height, width, kh, kw,
                                                   stride, dilation, padding, seed):
    if not _fits(height, width, kh, kw, dilation, padding):
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(2, height, width, channels))
    w = rng.integers(-127, 128, size=(1, kh, kw, channels * multiplier))
    bias = rng.integers(-2000, 2000, size=channels * multiplier)
    m0, shift = _requant_params(rng, channels * multiplier)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    got = ops.depthwise_conv2d(x, w, bias, input_zero_point=zx, output_zero_point=zy,
                               multiplier=m0, shift=shift, act_min=-100, act_max=120,
                               stride=stride, dilation=dilation, padding=padding,
                               depth_multiplier=multiplier)
    want = ref_depthwise(x, w, bias, zx, zy, m0, shift, -100, 120, stride, dilation, padding)
    assert got.tolist() == want.tolist()


@settings(max_examples=60, deadline=None)
@given(groups=st.integers(1, 3), group_in=st.integers(1, 3), group_out=st.integers(1, 2),
       **window)
def test_grouped_conv2d_against_the_kernel_loop(groups, group_in, group_out, height, width,
                                                kh, kw, stride, dilation, padding, seed):
    if not _fits(height, width, kh, kw, dilation, padding):
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(1, height, width, groups * group_in))
    w = rng.integers(-127, 128, size=(groups * group_out, kh, kw, group_in))
    bias = rng.integers(-2000, 2000, size=groups * group_out)
    m0, shift = _requant_params(rng, groups * group_out)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    got = layers.conv2d(x, w, bias, input_zero_point=zx, weight_zero_point=0,
                        output_zero_point=zy, multiplier=m0, shift=shift, act_min=-128,
                        act_max=127, stride=stride, dilation=dilation, padding=padding)
    want = ref_grouped_conv(x, w, bias, zx, zy, m0, shift, -128, 127, stride, dilation,
                            padding)
    assert got.tolist() == want.tolist()


def test_depthwise_is_a_grouped_convolution_with_one_channel_per_group():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(1, 6, 5, 3))
    w = rng.integers(-127, 128, size=(1, 3, 3, 6))            # depth multiplier 2
    m0, shift = _requant_params(rng, 6)
    args = dict(input_zero_point=4, output_zero_point=-3, multiplier=m0, shift=shift,
                act_min=-128, act_max=127, stride=2, padding="same")
    grouped = w[0].transpose(2, 0, 1)[..., None]                # [C·m, KH, KW, 1]
    assert ops.depthwise_conv2d(x, w, None, **args).tolist() == layers.conv2d(
        x, grouped, None, weight_zero_point=0, **args).tolist()


def test_conv_multiplier_is_the_double_product_even_for_one_filter_scale():
    rng = np.random.default_rng(2)
    differing = 0
    for _ in range(200):
        s_in, s_w, s_out = (to_f32(2.0 ** rng.uniform(-10, 0)) for _ in range(3))
        m0, shift = conv_multiplier(s_in, s_w, s_out)
        assert (int(m0[0]), int(shift[0])) == ref_quantize_multiplier(s_in * s_w / s_out)
        differing += (int(m0[0]), int(shift[0])) != tflite_multiplier(s_in, s_w, s_out)
    assert differing > 0          # FULLY_CONNECTED's float32 product is another multiplier
    m0, shift = conv_multiplier(0.5, [4.0, 0.25], 0.25)          # 8 and 0.5
    assert m0.tolist() == [1 << 30, 1 << 30] and shift.tolist() == [4, 0]


# -- pooling ---------------------------------------------------------------------------------

def ref_pool(x, fh, fw, stride, padding, lo, hi, average):
    """reference_integer_ops::AveragePool / MaxPool."""
    batches, in_h, in_w, depth = x.shape
    out_h, pad_h = padding_before(in_h, fh, stride, 1, padding)
    out_w, pad_w = padding_before(in_w, fw, stride, 1, padding)
    out = np.zeros((batches, out_h, out_w, depth), dtype=np.int64)
    for b in range(batches):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(depth):
                    x0, y0 = ox * stride - pad_w, oy * stride - pad_h
                    xs = range(max(0, -x0), min(fw, in_w - x0))
                    ys = range(max(0, -y0), min(fh, in_h - y0))
                    taps = [int(x[b, y0 + fy, x0 + fx, c]) for fy in ys for fx in xs]
                    if average:
                        acc, n = sum(taps), len(taps)
                        value = c_div(acc + n // 2, n) if acc > 0 else c_div(acc - n // 2, n)
                    else:
                        value = max([-128] + taps)
                    out[b, oy, ox, c] = clamp(value, lo, hi)
    return out


@settings(max_examples=80, deadline=None)
@given(average=st.booleans(), height=st.integers(1, 7), width=st.integers(1, 7),
       fh=st.integers(1, 4), fw=st.integers(1, 4), stride=st.integers(1, 3),
       padding=st.sampled_from(["same", "valid"]), seed=st.integers(0, 2**32 - 1))
def test_pooling_against_the_kernel_loop(average, height, width, fh, fw, stride, padding,
                                         seed):
    if padding == "valid" and (height < fh or width < fw):
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(2, height, width, 3))
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    function = ops.average_pool2d if average else ops.max_pool2d
    got = function(x, filter_size=(fh, fw), stride=stride, padding=padding, act_min=lo,
                   act_max=hi)
    assert got.tolist() == ref_pool(x, fh, fw, stride, padding, lo, hi, average).tolist()


def test_average_pool_ties_go_away_from_zero():
    x = np.array([1, 2, -1, -2]).reshape(1, 2, 2, 1)             # sums 3 and −3 over 2
    got = ops.average_pool2d(x, filter_size=(1, 2), stride=(1, 2))
    assert got.ravel().tolist() == [2, -2]


# -- ADD, MUL --------------------------------------------------------------------------------

def ref_add_params(s1, s2, s_out):
    """add.cc Prepare, with float32 arithmetic spelled out."""
    twice_max = 2 * max(s1, s2)
    out_denominator = to_f32((1 << 20) * s_out)
    return [ref_quantize_multiplier(s1 / twice_max), ref_quantize_multiplier(s2 / twice_max),
            ref_quantize_multiplier(twice_max / out_denominator)]


def ref_add(a, b, z1, z2, zo, params, lo, hi):
    (m1, e1), (m2, e2), (mo, eo) = params
    scaled1 = ref_rdbpot(ref_srdhm_int((a - z1) * (1 << 20), m1), -e1)
    scaled2 = ref_rdbpot(ref_srdhm_int((b - z2) * (1 << 20), m2), -e2)
    raw = ref_rdbpot(ref_srdhm_int(scaled1 + scaled2, mo), -eo) + zo
    return clamp(raw, lo, hi)


def ref_srdhm_int(a, b):
    from .test_tflite import ref_srdhm
    return ref_srdhm(a, b)


def _scales(rng, count, lo=-8, hi=0):
    return [to_f32(2.0 ** rng.uniform(lo, hi)) for _ in range(count)]


def test_add_against_the_kernel_on_every_pair_of_some_codes():
    rng = np.random.default_rng(3)
    codes = np.arange(-128, 128, 5)
    a, b = np.meshgrid(codes, codes)
    for _ in range(20):
        s1, s2, so = _scales(rng, 3)
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
        p = ops.add_params(s1, s2, so)
        params = ref_add_params(s1, s2, so)
        assert [(p.input1_multiplier, p.input1_shift), (p.input2_multiplier, p.input2_shift),
                (p.output_multiplier, p.output_shift)] == params
        got = ops.add(a, b, input1_scale=s1, input1_zero_point=z1, input2_scale=s2,
                      input2_zero_point=z2, output_scale=so, output_zero_point=zo,
                      act_min=-120, act_max=110)
        want = [ref_add(int(u), int(v), z1, z2, zo, params, -120, 110)
                for u, v in zip(a.ravel(), b.ravel(), strict=True)]
        assert got.ravel().tolist() == want


def test_mul_against_the_kernel_and_positive_shifts():
    rng = np.random.default_rng(4)
    codes = np.arange(-128, 128, 3)
    a, b = np.meshgrid(codes, codes)
    shifts = set()
    for _ in range(20):
        s1, s2, so = _scales(rng, 3, -6, 0)
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
        m0, shift = ref_quantize_multiplier(to_f32(to_f32(s1 * s2) / so))
        shifts.add(shift > 0)
        got = ops.mul(a, b, input1_scale=s1, input1_zero_point=z1, input2_scale=s2,
                      input2_zero_point=z2, output_scale=so, output_zero_point=zo)
        want = [clamp(ref_mbqm_double((int(u) - z1) * (int(v) - z2), m0, shift) + zo)
                for u, v in zip(a.ravel(), b.ravel(), strict=True)]
        assert got.ravel().tolist() == want
    assert shifts == {True, False}


def test_add_and_mul_broadcast_like_numpy():
    x1 = np.arange(-12, 12).reshape(1, 2, 3, 4)
    x2 = np.array([5, -7, 9, 100])
    args = dict(input1_scale=0.1, input1_zero_point=1, input2_scale=0.2, input2_zero_point=-3,
                output_scale=0.15, output_zero_point=2)
    for function in (ops.add, ops.mul):
        full = function(x1, np.broadcast_to(x2, x1.shape), **args)
        assert function(x1, x2, **args).tolist() == full.tolist()


# -- MEAN ------------------------------------------------------------------------------------

def ref_mean(x, axes, zi, zo, m0, e):
    """reduce.h QuantizedMeanOrSum (mean): 1/n folded into the multiplier."""
    n = math.prod(x.shape[a] for a in axes)
    shift = min(n.bit_length() - 1, 32, 31 + e)
    multiplier = (m0 << shift) // n
    sums = x.astype(object).sum(axis=tuple(axes))
    return np.vectorize(lambda s: clamp(ref_mbqm_double(int(s) - zi * n, multiplier,
                                                        e - shift) + zo))(sums)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=4, max_size=4),
       axes=st.sets(st.integers(0, 3), min_size=1), seed=st.integers(0, 2**32 - 1))
def test_mean_against_the_kernel(shape, axes, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=shape)
    s_in, s_out = _scales(rng, 2, -8, 0)
    zi, zo = (int(v) for v in rng.integers(-128, 128, size=2))
    m0, e = ref_quantize_multiplier(s_in / s_out)
    got = ops.mean(x, input_scale=s_in, input_zero_point=zi, output_scale=s_out,
                   output_zero_point=zo, axis=sorted(axes), keep_dims=False)
    assert np.asarray(got).tolist() == np.asarray(ref_mean(x, sorted(axes), zi, zo, m0,
                                                           e)).tolist()


# -- PAD, RESHAPE, CONCATENATION -------------------------------------------------------------

def test_pad_reshape_concatenation():
    x = np.arange(-6, 6).reshape(1, 2, 3, 2)
    padded = ops.pad(x, [[0, 0], [1, 0], [0, 2], [0, 0]], pad_value=-5)
    assert padded.shape == (1, 3, 5, 2)
    assert (padded[:, 0] == -5).all() and (padded[:, :, 3:] == -5).all()
    assert padded[:, 1:, :3].tolist() == x.tolist()
    assert ops.reshape(x, [1, -1]).tolist() == [list(range(-6, 6))]
    y = np.full((1, 2, 3, 1), 7)
    assert ops.concatenation([x, y], axis=-1)[..., 2].tolist() == y[..., 0].tolist()


def test_concatenation_requantizes_as_concatenation_with_scaling():
    x = np.arange(-128, 128).reshape(1, 256)
    s_in, z_in, s_out, z_out = to_f32(0.05), 10, to_f32(0.11), -3
    got = ops.concatenation([x, x], axis=1, input_scales=[s_in, s_out],
                            input_zero_points=[z_in, z_out], output_scale=s_out,
                            output_zero_point=z_out)
    scale = f32(s_in) * (f32(1) / f32(s_out))
    bias = f32(-z_in) * scale
    want = [clamp(std_round(float(f32(v) * scale + bias)) + z_out) for v in range(-128, 128)]
    assert got[0, :256].tolist() == want
    assert got[0, 256:].tolist() == x[0].tolist()        # equal parameters: copied


# -- LOGISTIC, TANH, HARD_SWISH: every int8 input --------------------------------------------

CODES = np.arange(-128, 128)


def libm(name):
    """The C library's float ``name`` through ctypes (what TFLite's std::exp/std::tanh on a
    float call), or the correctly rounded value of Python's double function."""
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("m")), name)
    except (OSError, AttributeError, TypeError):
        fallback = {"expf": math.exp, "tanhf": math.tanh}[name]
        return lambda value: to_f32(fallback(value)) if value < 88 else math.inf
    function.restype, function.argtypes = ctypes.c_float, [ctypes.c_float]
    return function


EXPF, TANHF = libm("expf"), libm("tanhf")


def ref_table(transform, s_in, z_in, s_out, z_out):
    """activations.cc PopulateLookupTable<int8_t>, value by value in float32."""
    inverse = f32(1) / f32(s_out)
    table = []
    for q in range(-128, 128):
        dequantized = f32(s_in) * f32(q - z_in)
        rescaled = f32(std_round(float(f32(transform(dequantized)) * inverse)))
        table.append(clamp(int(rescaled + f32(z_out))))
    return table


def ref_sigmoid(value):
    return f32(1) / (f32(1) + f32(EXPF(float(-value))))


def ref_tanh(value):
    return f32(TANHF(float(value)))


@pytest.mark.parametrize("seed", range(6))
def test_logistic_and_tanh_on_every_int8_input(seed):
    rng = np.random.default_rng(seed)
    s_in, z_in = to_f32(2.0 ** rng.uniform(-8, 0)), int(rng.integers(-128, 128))
    got = ops.logistic(CODES, input_scale=s_in, input_zero_point=z_in)
    assert got.tolist() == ref_table(ref_sigmoid, s_in, z_in, 1 / 256, -128)
    got = ops.tanh(CODES, input_scale=s_in, input_zero_point=z_in)
    assert got.tolist() == ref_table(ref_tanh, s_in, z_in, 1 / 128, 0)


@pytest.mark.parametrize("s_in,z_in", [(0.018987477, 47), (0.0065022833, -51)])
def test_tanh_follows_the_c_librarys_tanhf(s_in, z_in):
    """Tables where glibc's tanhf (not correctly rounded) changes a code; the interpreter
    follows tanhf (tests/golden/oracle.py records these two tables)."""
    got = ops.tanh(CODES, input_scale=s_in, input_zero_point=z_in).tolist()
    assert got == ref_table(ref_tanh, s_in, z_in, 1 / 128, 0)
    if ops.LIBM_TANHF is not None and platform.libc_ver()[0] == "glibc":
        correctly_rounded = ref_table(lambda v: to_f32(math.tanh(float(v))), s_in, z_in,
                                      1 / 128, 0)
        assert got != correctly_rounded


def ref_srdhm16(a, b):
    overflow = a == b == -(1 << 15)
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return (1 << 15) - 1 if overflow else c_div(ab + nudge, 1 << 15)


def ref_sat_shift16(value, amount):
    return min(max(value * (1 << amount), -(1 << 15)), (1 << 15) - 1)


def ref_int16_multiplier(m0):
    if m0 >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m0 + (1 << 15)) >> 16


def ref_i16(value):
    return (value + (1 << 15)) % (1 << 16) - (1 << 15)


def ref_rdbpot16(x, exponent):
    """gemmlowp RoundingDivideByPOT<int16_t>, each int16 value wrapped as C does."""
    mask = ref_i16((1 << exponent) - 1)
    remainder = ref_i16(x & mask)
    threshold = ref_i16((mask >> 1) + (1 if x < 0 else 0))
    return ref_i16((x >> exponent) + (1 if remainder > threshold else 0))


def ref_hard_swish(q, s_in, z_in, s_out, z_out):
    """HardSwishPrepare + reference_ops::HardSwish for one int8 value."""
    hires = f32(1.0 / 128.0) * f32(s_in)
    mo, eo = ref_quantize_multiplier(float(hires / f32(s_out)))
    mr, er = ref_quantize_multiplier(float(hires / (f32(3.0) / f32(32768.0))))
    mo, mr = ref_int16_multiplier(mo), ref_int16_multiplier(mr)
    value = (q - z_in) * (1 << 7)
    preshift = ref_srdhm16(value, mo)
    reluish = value
    if er > 0:
        reluish = ref_sat_shift16(reluish, er - 1)
    reluish = ref_srdhm16(reluish, mr)
    if er > 0:
        reluish = ref_sat_shift16(reluish, 1)
    if er < 0:
        reluish = ref_rdbpot16(reluish, -er)
    reluish = (reluish + (1 << 15)) >> 1
    out = ref_i16(ref_rdbpot16(c_div(reluish * preshift, 1 << 15), -eo) + z_out)
    return clamp(out)


@pytest.mark.parametrize("seed", range(16))
def test_hard_swish_on_every_int8_input(seed):
    rng = np.random.default_rng(seed)
    s_in, s_out = (to_f32(2.0 ** rng.uniform(lo, hi)) for lo, hi in ((-10, 2), (-7, 1)))
    s_out = max(s_out, to_f32(s_in / 64))         # HardSwishPrepare needs s_in/s_out < 128
    z_in, z_out = (int(v) for v in rng.integers(-128, 128, size=2))
    got = ops.hard_swish(CODES, input_scale=s_in, input_zero_point=z_in, output_scale=s_out,
                         output_zero_point=z_out)
    assert got.tolist() == [ref_hard_swish(q, s_in, z_in, s_out, z_out) for q in range(-128, 128)]


# -- SOFTMAX ---------------------------------------------------------------------------------

def ref_softmax_row_optimized(row, s_in, beta):
    """PopulateSoftmaxLookupTable + optimized_ops::Softmax (int8 → int8), in float32."""
    scale = -f32(s_in) * f32(beta)
    table = [f32(to_f32(math.exp(float(scale * f32(v))))) for v in range(256)]
    max_val = max(row)
    total = f32(0)
    for v in row:
        total = f32(total + table[max_val - v])
    inverse = f32(1) / f32(total * f32(1 / 256))
    return [clamp(std_round(float(f32(table[max_val - v] * inverse))) - 128) for v in row]


INT32_MIN_, INT32_MAX_ = -(1 << 31), (1 << 31) - 1


def srdhm(a, b):
    from .test_tflite import ref_srdhm
    return ref_srdhm(a, b)


def sat_mul_pot(x, exponent):
    """gemmlowp SaturatingRoundingMultiplyByPOT: a saturating left shift, or RDBPOT."""
    if exponent < 0:
        return ref_rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return INT32_MAX_ if x > threshold else INT32_MIN_ if x < -threshold else x << exponent


def exp_on_interval(a):
    """gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31 raws)."""
    constant_term, one_third = 1895147668, 715827883
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(srdhm(x4_over_4 + x3, one_third) + x2, -1)
    return constant_term + srdhm(constant_term, x + poly)


def exp_on_negative_values(a, integer_bits=5):
    """gemmlowp exp_on_negative_values: FixedPoint<int32, 5> raw → FixedPoint<int32, 0>."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod = (a & mask) - one_quarter
    result = exp_on_interval(sat_mul_pot(a_mod, integer_bits))       # Rescale<0>
    remainder = a_mod - a
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                                 (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    return INT32_MAX_ if a == 0 else result


def one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 raw in, Q0.31 raw out)."""
    total = a + INT32_MAX_                                            # RoundingHalfSum
    half_denominator = c_div(total + (1 if total >= 0 else -1), 2)
    x = 1515870810 + srdhm(half_denominator, -1010580540)            # Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)
        x = x + sat_mul_pot(srdhm(x, one_minus), 2)                   # Rescale<2> of Q4
    return sat_mul_pot(x, 1)                                          # Rescale<0> of Q1


def get_reciprocal(x, integer_digits):
    headroom_plus_one = 32 - x.bit_length()                           # CountLeadingZeros
    shifted = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x(shifted), integer_digits - headroom_plus_one


def ref_softmax_row(row, s_in, beta):
    """SoftmaxPrepare<kReference> + reference_ops::Softmax<int8_t, int8_t>."""
    real = min(float(f32(beta)) * float(f32(s_in)) * (1 << 26), float(INT32_MAX_))
    multiplier, shift = ref_quantize_multiplier(real)
    diff_min = -math.floor((2**5 - 1) * 2.0**26 / 2.0**shift)
    max_in_row = max(row)
    exps, total = [], 0
    for value in row:
        diff = value - max_in_row
        if diff >= diff_min:
            exp = exp_on_negative_values(srdhm(diff * (1 << shift), multiplier))
            total += ref_rdbpot(exp, 12)                              # Rescale<12>
            exps.append(exp)
        else:
            exps.append(None)
    scale, bits_over_unit = get_reciprocal(total, 12)
    out = []
    for exp in exps:
        if exp is None:
            out.append(-128)
        else:
            out.append(clamp(ref_rdbpot(srdhm(scale, exp), bits_over_unit + 31 - 8) - 128))
    return out


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 3), depth=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_softmax_against_the_kernels(rows, depth, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(rows, depth))
    s_in, beta = to_f32(2.0 ** rng.uniform(-8, 1)), to_f32(rng.uniform(0.1, 4))
    got = ops.softmax(x, input_scale=s_in, beta=beta)
    assert got.tolist() == [ref_softmax_row([int(v) for v in row], s_in, beta) for row in x]
    got = ops.softmax(x, input_scale=s_in, beta=beta, kernel="optimized")
    assert got.tolist() == [ref_softmax_row_optimized([int(v) for v in row], s_in, beta)
                            for row in x]


def test_softmax_fixed_point_pieces_bit_for_bit():
    """exp_on_negative_values and GetReciprocal on many raw values: the output codes are
    too coarse to show an error in the last bits of these."""
    from golden.ops import _exp_on_negative_values, _reciprocal
    rng = np.random.default_rng(10)
    raws = np.concatenate([rng.integers(-(1 << 31) + 1, 1, size=3000),
                           rng.integers(-(1 << 26), 1, size=3000), [0, -1, -(1 << 24)]])
    assert _exp_on_negative_values(raws).tolist() == [exp_on_negative_values(int(a))
                                                      for a in raws]
    totals = np.concatenate([rng.integers(1 << 19, 1 << 31, size=3000), [1 << 19, 2**31 - 1]])
    scale, bits = _reciprocal(totals, 12)
    assert list(zip(scale.tolist(), bits.tolist(), strict=True)) == [
        get_reciprocal(int(t), 12) for t in totals]


def test_softmax_kernels_differ_only_near_half_codes():
    # a row of equal values: 1/n exactly, both kernels; 1/3 of 256 = 85.33 → 85
    row = np.zeros((1, 3), dtype=np.int64)
    for kernel in ("reference", "optimized"):
        assert ops.softmax(row, input_scale=0.1, kernel=kernel).tolist() == [[85 - 128] * 3]
    # a large input difference falls below diff_min: exactly −128 in the reference kernel
    big = np.array([[127, -128]])
    assert ops.softmax(big, input_scale=1.0)[0, 1] == -128


# -- QUANTIZE, DEQUANTIZE --------------------------------------------------------------------

def test_quantize_requantize_dequantize():
    rng = np.random.default_rng(9)
    for _ in range(10):
        s, z = to_f32(2.0 ** rng.uniform(-8, 0)), int(rng.integers(-128, 128))
        real = (rng.standard_normal(100) * 150 * s).astype(np.float32)
        real[:6] = ((np.arange(6) - 3 + 0.5) * s).astype(np.float32)        # ties
        got = ops.quantize(real, scale=s, zero_point=z)
        assert got.tolist() == [clamp(std_round(float(f32(v) / f32(s))) + z) for v in real]
        s2, z2 = to_f32(2.0 ** rng.uniform(-8, 0)), int(rng.integers(-128, 128))
        m0, e = ref_quantize_multiplier(s / s2)
        got = ops.requantize_tensor(CODES, input_scale=s, input_zero_point=z, output_scale=s2,
                                    output_zero_point=z2)
        assert got.tolist() == [clamp(ref_mbqm_double(q - z, m0, e) + z2) for q in CODES]
        got = ops.dequantize(CODES, scale=s, zero_point=z)
        assert got.tolist() == [to_f32(s * (q - z)) for q in range(-128, 128)]


# -- bad arguments ---------------------------------------------------------------------------

def test_hard_swish_right_shifts_of_16_or_more_wrap_the_int16_mask():
    # s_in/(128·s_out) < 2^-16: the output exponent is −16 and gemmlowp's int16 mask is −1,
    # so every output is z_out ± 1 (TFLite 2.14 measured the same)
    s_in, s_out = to_f32(0.0014806346), to_f32(0.99688)
    assert ops.hard_swish_params(s_in, s_out).output_exponent == -16
    got = ops.hard_swish(CODES, input_scale=s_in, input_zero_point=-114, output_scale=s_out,
                         output_zero_point=112)
    assert set(got[CODES < -114].tolist()) == {111} and set(got[CODES > -114].tolist()) == {113}


def test_bad_arguments_name_the_parameter():
    x = np.zeros((1, 4, 4, 2), dtype=np.int64)
    requant = dict(input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=0,
                   act_min=-128, act_max=127)
    with pytest.raises(ValueError, match=r"w must have TFLite's depthwise layout"):
        ops.depthwise_conv2d(x, np.zeros((2, 3, 3, 2), np.int64), None, **requant)
    with pytest.raises(ValueError, match="depth_multiplier must be 2"):
        ops.depthwise_conv2d(x, np.zeros((1, 3, 3, 4), np.int64), None, depth_multiplier=3,
                             **requant)
    with pytest.raises(ValueError, match="not a multiple of the input's 2"):
        ops.depthwise_conv2d(x, np.zeros((1, 3, 3, 3), np.int64), None, **requant)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        ops.max_pool2d(x, filter_size=2, stride=0)
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        ops.average_pool2d(x, filter_size=2, stride=1, padding="full")
    with pytest.raises(ValueError, match=r"x must hold values in \[-128, 127\]"):
        ops.max_pool2d(x + 200, filter_size=2, stride=1)
    with pytest.raises(TypeError, match="x must hold integers"):
        ops.logistic(np.zeros(3), input_scale=0.1, input_zero_point=0)
    with pytest.raises(ValueError, match=r"input_zero_point must be in \[-128, 127\], not 300"):
        ops.tanh(np.zeros(3, np.int64), input_scale=0.1, input_zero_point=300)
    with pytest.raises(ValueError, match="input1_scale must be a positive finite float32"):
        ops.add(x, x, input1_scale=0.0, input1_zero_point=0, input2_scale=0.1,
                input2_zero_point=0, output_scale=0.1, output_zero_point=0)
    with pytest.raises(ValueError, match="do not broadcast"):
        ops.mul(x, np.zeros((3,), np.int64), input1_scale=0.1, input1_zero_point=0,
                input2_scale=0.1, input2_zero_point=0, output_scale=0.1, output_zero_point=0)
    with pytest.raises(ValueError, match="act_min must be ≤ act_max"):
        ops.max_pool2d(x, filter_size=2, stride=1, act_min=5, act_max=4)
    with pytest.raises(ValueError, match=r"paddings must have shape \(4, 2\)"):
        ops.pad(x, [[1, 1]], pad_value=0)
    with pytest.raises(ValueError, match="does not hold the 32 elements"):
        ops.reshape(x, [5, -1])
    with pytest.raises(ValueError, match=r"axis must be in \[-4, 3\], not 4"):
        ops.concatenation([x, x], axis=4)
    with pytest.raises(ValueError, match="exponent ≤ 0"):
        ops.hard_swish(np.zeros(2, np.int64), input_scale=1.0, input_zero_point=0,
                       output_scale=1 / 256, output_zero_point=0)
    with pytest.raises(TypeError, match="x must hold floats"):
        ops.quantize(np.zeros(3, np.int64), scale=0.1, zero_point=0)
    with pytest.raises(ValueError, match="real multiplier must be in"):
        ops.add_params(0.1, 0.1, 1e-30)
    with pytest.raises(ValueError, match=r"shift must be a scalar or have shape \(4,\)"):
        layers.conv2d(np.zeros((1, 4, 4, 2), np.int64), np.zeros((4, 1, 1, 1), np.int64),
                      None, weight_zero_point=0, **{**requant, "shift": [0, 0]})
    with pytest.raises(ValueError, match="which must divide the input's 3"):
        layers.conv2d(np.zeros((1, 4, 4, 3), np.int64), np.zeros((2, 1, 1, 2), np.int64),
                      None, weight_zero_point=0, **requant)


def test_quantize_multiplier_of_mul_is_float32_arithmetic():
    # s1·s2/s_out computed in float32, then widened: not the double quotient
    s1, s2, so = to_f32(0.1), to_f32(0.3), to_f32(0.7)
    assert ops.mul_multiplier(s1, s2, so) == quantize_multiplier(
        float(f32(f32(s1) * f32(s2)) / f32(so)))
