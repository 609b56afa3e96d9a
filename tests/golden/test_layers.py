"""golden.layers against loops over Python ints that follow TFLite's reference kernels.

The references share nothing with golden's code: the accumulation is a plain loop, the
requantization the pure-int transliteration of gemmlowp/TFLite in test_tflite.py, and the
convolution a direct nested loop over output pixels and taps.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.layers import binarize, conv2d, fully_connected, ternarize
from golden.tflite import activation_range

from .test_rounding import reference as round_fraction
from .test_tflite import ref_mbqm_double, ref_mbqm_single


def ref_requantize(acc, multiplier, shift, zero_point, lo, hi, rounding):
    from fractions import Fraction

    if multiplier is None:
        mode = "half_up" if rounding == "single" else rounding
        value = round_fraction(Fraction(acc) * Fraction(2) ** shift, mode)
    elif rounding == "double":
        value = ref_mbqm_double(acc, multiplier, shift)
    elif rounding == "single":
        value = ref_mbqm_single(acc, multiplier, shift)
    else:
        value = round_fraction(Fraction(acc * multiplier) * Fraction(2) ** (shift - 31),
                               rounding)
    return min(max(value + zero_point, lo), hi)


def ref_fully_connected(x, w, bias, zx, zw, zy, multiplier, shift, lo, hi, rounding):
    x, w = x.tolist(), w.tolist()
    out = []
    for row in x:
        out_row = []
        for n, filt in enumerate(w):
            acc = sum((xv - zx) * (wv - (zw[n] if isinstance(zw, list) else zw))
                      for xv, wv in zip(row, filt, strict=True))
            acc += 0 if bias is None else int(bias[n])
            m = None if multiplier is None else (
                int(multiplier[n]) if np.ndim(multiplier) else int(multiplier))
            s = int(shift[n]) if np.ndim(shift) else int(shift)
            out_row.append(ref_requantize(acc, m, s, zy, lo, hi, rounding))
        out.append(out_row)
    return out


def _random_layer(rng, batch, depth, channels, *, x_bits=8, w_bits=8, per_channel=False):
    x = rng.integers(-(1 << (x_bits - 1)), 1 << (x_bits - 1), size=(batch, depth))
    w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), size=(channels, depth))
    size = channels if per_channel else None
    multiplier = rng.integers(1 << 30, 1 << 31, size=size)
    shift = rng.integers(-14, -4, size=size)
    bias = rng.integers(-5000, 5000, size=channels)
    return x, w, bias, multiplier, shift


@pytest.mark.parametrize("rounding", ["double", "single", "half_to_even", "floor",
                                      "toward_zero", "half_up", "half_away_from_zero"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected(rounding, per_channel):
    rng = np.random.default_rng(len(rounding) + per_channel)
    x, w, bias, multiplier, shift = _random_layer(rng, 5, 37, 6, per_channel=per_channel)
    args = dict(input_zero_point=-7, weight_zero_point=0, output_zero_point=4,
                multiplier=multiplier, shift=shift, act_min=-100, act_max=120)
    got = fully_connected(x, w, bias, rounding=rounding, **args)
    assert got.tolist() == ref_fully_connected(x, w, bias, -7, 0, 4, multiplier, shift,
                                               -100, 120, rounding)


def test_per_channel_is_a_loop_of_per_tensor_layers():
    rng = np.random.default_rng(3)
    x, w, bias, multiplier, shift = _random_layer(rng, 4, 20, 5, per_channel=True)
    common = dict(input_zero_point=3, weight_zero_point=0, output_zero_point=-2,
                  act_min=-128, act_max=127)
    y = fully_connected(x, w, bias, multiplier=multiplier, shift=shift, **common)
    for n in range(5):
        column = fully_connected(x, w[n:n + 1], bias[n:n + 1], multiplier=int(multiplier[n]),
                                 shift=int(shift[n]), **common)
        assert column[:, 0].tolist() == y[:, n].tolist()


def test_weight_zero_points_and_no_bias():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(3, 11))
    w = rng.integers(0, 256, size=(4, 11))
    zw = [128, 120, 3, 255]
    got = fully_connected(x, w, None, input_zero_point=130, weight_zero_point=np.array(zw),
                          output_zero_point=10, multiplier=1 << 30, shift=-12, act_min=0,
                          act_max=255)
    assert got.tolist() == ref_fully_connected(x, w, None, 130, zw, 10, 1 << 30, -12, 0, 255,
                                               "double")


@pytest.mark.parametrize("rounding", ["single", "floor", "half_to_even"])
def test_shift_only_layers(rounding):
    rng = np.random.default_rng(5)
    x, w, bias, _, _ = _random_layer(rng, 3, 9, 4)
    got = fully_connected(x, w, bias, input_zero_point=0, weight_zero_point=0,
                          output_zero_point=0, multiplier=None, shift=-7, act_min=-128,
                          act_max=127, rounding=rounding)
    assert got.tolist() == ref_fully_connected(x, w, bias, 0, 0, 0, None, -7, -128, 127,
                                               rounding)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(2, 16), st.integers(1, 24), st.integers(0, 1000))
def test_mixed_precision(w_bits, x_bits, depth, seed):
    """Weights of 1..8 bits (1 = binary {−1, +1}) against activations of 2..16 bits."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << (x_bits - 1)), 1 << (x_bits - 1), size=(2, depth))
    if w_bits == 1:
        w = rng.choice([-1, 1], size=(3, depth))
    else:
        w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), size=(3, depth))
    lo, hi = -(1 << 15), (1 << 15) - 1
    got = fully_connected(x, w, None, input_zero_point=0, weight_zero_point=0,
                          output_zero_point=0, multiplier=1 << 30, shift=-2, act_min=lo,
                          act_max=hi)
    assert got.tolist() == ref_fully_connected(x, w, None, 0, 0, 0, 1 << 30, -2, lo, hi,
                                               "double")


def ref_conv2d(x, w, zx, stride, dilation, padding):
    """Accumulators of a direct NHWC convolution; padded taps hold the zero point."""
    batch, height, width, _ = x.shape
    c_out, kh, kw, _ = w.shape
    eff_h, eff_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if padding == "same":
        oh, ow = -(-height // stride), -(-width // stride)
        top = max((oh - 1) * stride + eff_h - height, 0) // 2
        left = max((ow - 1) * stride + eff_w - width, 0) // 2
    else:
        oh, ow = (height - eff_h) // stride + 1, (width - eff_w) // stride + 1
        top = left = 0
    out = np.zeros((batch, oh, ow, c_out), dtype=object)
    for b in range(batch):
        for i in range(oh):
            for j in range(ow):
                for o in range(c_out):
                    acc = 0
                    for u in range(kh):
                        for v in range(kw):
                            r, c = i * stride + u * dilation - top, j * stride + v * dilation - left
                            if 0 <= r < height and 0 <= c < width:
                                acc += sum((int(x[b, r, c, ch]) - zx) * int(w[o, u, v, ch])
                                           for ch in range(x.shape[3]))
                    out[b, i, j, o] = acc
    return out


@pytest.mark.parametrize("stride,dilation,padding", [
    (1, 1, "valid"), (1, 1, "same"), (2, 1, "same"), (2, 1, "valid"), (1, 2, "same"),
    (3, 2, "same"),
])
def test_conv2d_against_a_direct_loop(stride, dilation, padding):
    rng = np.random.default_rng(stride * 10 + dilation)
    x = rng.integers(-128, 128, size=(2, 7, 6, 3))
    w = rng.integers(-127, 128, size=(4, 3, 2, 3))
    acc = ref_conv2d(x, w, -5, stride, dilation, padding)
    multiplier, shift = 1518500250, -9
    y = conv2d(x, w, None, input_zero_point=-5, weight_zero_point=0, output_zero_point=1,
               multiplier=multiplier, shift=shift, act_min=-128, act_max=127, stride=stride,
               dilation=dilation, padding=padding)
    assert y.shape == acc.shape
    expected = [ref_requantize(int(a), multiplier, shift, 1, -128, 127, "double")
                for a in acc.flat]
    assert y.ravel().tolist() == expected


def test_fused_relu6_is_a_clamp():
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, size=(1, 5, 5, 2))
    w = rng.integers(-127, 128, size=(3, 3, 3, 2))
    scale, zero_point = 6 / 255, -128
    act_min, act_max = activation_range("relu6", scale, zero_point)
    y = conv2d(x, w, None, input_zero_point=0, weight_zero_point=0,
               output_zero_point=zero_point, multiplier=1 << 30, shift=-6, act_min=act_min,
               act_max=act_max, padding="same")
    assert y.min() >= act_min == zero_point and y.max() <= act_max
    assert (y == act_min).any()  # some outputs really were clamped at real 0


def test_binarize_and_ternarize():
    w = np.array([[0.5, -0.2, 0.0, 0.1], [-1.0, 2.0, -3.0, 0.05]])
    q, scale = binarize(w)
    assert q.tolist() == [[1, -1, 1, 1], [-1, 1, -1, 1]]
    assert scale.tolist() == pytest.approx([0.2, 1.5125])
    t, t_scale = ternarize(w)
    # channel 0: mean|w| = 0.2, threshold 0.14 keeps 0.5 and −0.2;
    # channel 1: mean|w| = 1.5125, threshold 1.05875 keeps 2 and −3 only
    assert t.tolist() == [[1, -1, 0, 0], [0, 1, -1, 0]]
    assert t_scale.tolist() == pytest.approx([0.35, 2.5])


def test_bad_shapes_are_named():
    x, w = np.zeros((2, 3), np.int64), np.zeros((4, 5), np.int64)
    common = dict(input_zero_point=0, weight_zero_point=0, output_zero_point=0,
                  multiplier=1 << 30, shift=-1, act_min=-128, act_max=127)
    with pytest.raises(ValueError, match="K differs"):
        fully_connected(x, w, None, **common)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        fully_connected(np.zeros((2, 5), np.int64), w, np.zeros(3, np.int64), **common)
    with pytest.raises(ValueError, match=r"shift must be a scalar or have shape \(4,\)"):
        fully_connected(np.zeros((2, 5), np.int64), w, None, **{**common, "shift": [1, 2]})
    with pytest.raises(TypeError, match="x must hold integers"):
        fully_connected(np.zeros((2, 5)), w, None, **common)
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        conv2d(np.zeros((1, 3, 3, 1), np.int64), np.zeros((1, 2, 2, 1), np.int64), None,
               padding="full", **common)
