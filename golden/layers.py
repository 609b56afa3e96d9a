"""Quantized layers as TFLite's integer reference kernels compute them.

``fully_connected`` is reference/integer_ops/fully_connected.h: an int32 sum of
``(x − Z_x)(w − Z_w)`` over K, plus the bias, requantized by :func:`golden.tflite.requantize`.
``conv2d`` lowers NHWC convolution to the same GEMM by im2col (padding holds the input zero
point, so padded taps contribute nothing, as in TFLite). Weights of any width 1..8 bits work,
including binary {−1, +1} and ternary {−1, 0, +1} weights (:func:`binarize`,
:func:`ternarize`).
"""

import numpy as np

from .gemm import exact_matmul
from .tflite import requantize

__all__ = ["binarize", "conv2d", "conv_output_size", "fully_connected", "im2col", "ternarize"]


def _ints(name, value, ndim=None):
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, not {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {array.shape}")
    return array


def _centred(values, zero_point):
    """values − zero_point, widened only when there is something to subtract."""
    if not np.any(zero_point):
        return values
    return values.astype(np.int64) - zero_point


def _per_channel(name, value, channels):
    array = np.asarray(value)
    if array.ndim == 0:
        return array
    if array.shape != (channels,):
        raise ValueError(f"{name} must be a scalar or have shape ({channels},); "
                         f"got {array.shape}")
    return array


def fully_connected(x, w, bias, *, input_zero_point, weight_zero_point, output_zero_point,
                    multiplier, shift, act_min, act_max, rounding="double"):
    """Quantized fully-connected layer. x: [B, K], w: [N, K] (TFLite layout), bias: [N] or None.

    ``weight_zero_point``, ``multiplier`` and ``shift`` are scalars (per tensor) or length-N
    arrays (per channel); ``multiplier=None`` requantizes with a power of two (shift only).
    Returns int64 [B, N].
    """
    x = _ints("x", x, 2)
    w = _ints("w", w, 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x is [B, K] = {x.shape} but w is [N, K] = {w.shape}: K differs")
    channels = w.shape[0]
    z_w = _per_channel("weight_zero_point", _ints("weight_zero_point", weight_zero_point),
                       channels)
    z_x = _ints("input_zero_point", input_zero_point, 0)
    if bias is not None:
        bias = _ints("bias", bias, 1)
        if bias.shape != (channels,):
            raise ValueError(f"bias must have shape ({channels},); got {bias.shape}")
    if multiplier is not None:
        multiplier = _per_channel("multiplier", multiplier, channels)
    shift = _per_channel("shift", shift, channels)
    centred_w = _centred(w, z_w[:, None] if z_w.ndim else z_w)
    acc = exact_matmul(_centred(x, z_x), centred_w.T)
    return requantize(acc, bias=bias, multiplier=multiplier, shift=shift,
                      output_zero_point=output_zero_point, act_min=act_min, act_max=act_max,
                      rounding=rounding)


def conv_output_size(size, kernel, stride, dilation, padding):
    """Output length and (before, after) padding of one spatial axis, TFLite's convention."""
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        out = (size - effective) // stride + 1
        return out, (0, 0)
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return out, (total // 2, total - total // 2)
    raise ValueError(f"padding must be 'same' or 'valid'; got {padding!r}")


def _pair(name, value):
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them; got {value!r}")
    return tuple(int(v) for v in pair)


def im2col(x, kernel, *, stride=1, dilation=1, padding="valid", pad_value=0):
    """Patches of NHWC ``x`` as rows: [N·OH·OW, KH·KW·C], in OHWI weight order."""
    x = _ints("x", x, 4)
    kh, kw = _pair("kernel", kernel)
    sh, sw = _pair("stride", stride)
    dh, dw = _pair("dilation", dilation)
    batch, height, width, channels = x.shape
    oh, (top, bottom) = conv_output_size(height, kh, sh, dh, padding)
    ow, (left, right) = conv_output_size(width, kw, sw, dw, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}×{kw} (dilation {dh}×{dw}) is larger than the input "
                         f"{height}×{width}")
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)),
                    constant_values=pad_value)
    # Gather rows and columns with index arrays: one vectorized fancy-index, no Python loops.
    rows = (np.arange(oh) * sh)[:, None] + (np.arange(kh) * dh)[None, :]   # [OH, KH]
    cols = (np.arange(ow) * sw)[:, None] + (np.arange(kw) * dw)[None, :]   # [OW, KW]
    patches = padded[:, rows[:, None, :, None], cols[None, :, None, :], :]  # [N,OH,OW,KH,KW,C]
    return patches.reshape(batch * oh * ow, kh * kw * channels), (batch, oh, ow)


def conv2d(x, w, bias, *, input_zero_point, weight_zero_point, output_zero_point, multiplier,
           shift, act_min, act_max, stride=1, padding="valid", dilation=1, rounding="double"):
    """Quantized 2-D convolution. x: NHWC, w: [C_out, KH, KW, C_in / groups] (TFLite OHWI).

    A filter with fewer input channels than ``x`` makes a grouped convolution, as TFLite's
    reference ConvPerChannel infers it: groups = C_in / filter channels, output channel o
    reads the input channels of group ``o // (C_out / groups)``. Requantization parameters
    as in :func:`fully_connected` (per channel = per C_out; for int8 models from
    :func:`golden.tflite.conv_multiplier`). Returns int64 [N, OH, OW, C_out].
    """
    x = _ints("x", x, 4)
    w = _ints("w", w, 4)
    c_in, c_out, group_in = x.shape[3], w.shape[0], w.shape[3]
    if group_in == 0 or c_in % group_in:
        raise ValueError(f"w has {group_in} input channels, which must divide the input's "
                         f"{c_in} (groups = C_in / filter channels)")
    groups = c_in // group_in
    for name, value in (("bias", bias), ("weight_zero_point", weight_zero_point),
                        ("multiplier", multiplier), ("shift", shift)):
        if value is not None and np.ndim(value) and np.shape(value) != (c_out,):
            raise ValueError(f"{name} must be a scalar or have shape ({c_out},); "
                             f"got {np.shape(value)}")
    if c_out % groups:
        raise ValueError(f"w has {c_out} output channels, not a multiple of the "
                         f"{groups} groups")
    cols, (batch, oh, ow) = im2col(x, w.shape[1:3], stride=stride, dilation=dilation,
                                   padding=padding, pad_value=int(input_zero_point))
    taps = w.shape[1] * w.shape[2]
    cols = cols.reshape(cols.shape[0], taps, groups, group_in)
    per_group = c_out // groups
    common = dict(input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                  act_min=act_min, act_max=act_max, rounding=rounding)

    def channel_slice(value, g):
        array = np.asarray(value) if value is not None else None
        if array is None or array.ndim == 0:
            return value
        return array[g * per_group:(g + 1) * per_group]

    outputs = []
    for g in range(groups):
        out = fully_connected(cols[:, :, g, :].reshape(cols.shape[0], -1),
                              w[g * per_group:(g + 1) * per_group].reshape(per_group, -1),
                              channel_slice(bias, g),
                              weight_zero_point=channel_slice(weight_zero_point, g),
                              multiplier=channel_slice(multiplier, g),
                              shift=channel_slice(shift, g), **common)
        outputs.append(out)
    out = outputs[0] if groups == 1 else np.concatenate(outputs, axis=1)
    return out.reshape(batch, oh, ow, c_out)


def binarize(w, *, axis=0):
    """Binary weights {−1, +1} = sign(w) (0 → +1) and the per-channel scale mean|w| along
    ``axis`` (BinaryConnect/XNOR-Net): ``w ≈ scale · q``."""
    w = np.asarray(w, dtype=np.float64)
    q = np.where(w >= 0, 1, -1).astype(np.int8)
    reduce = tuple(i for i in range(w.ndim) if i != axis % max(w.ndim, 1))
    scale = np.abs(w).mean(axis=reduce)
    return q, scale


def ternarize(w, *, axis=0, threshold=0.7):
    """Ternary weights {−1, 0, +1}: |w| > ``threshold``·mean|w| per channel (TWN), and the
    per-channel scale = mean |w| over the kept weights."""
    w = np.asarray(w, dtype=np.float64)
    reduce = tuple(i for i in range(w.ndim) if i != axis % max(w.ndim, 1))
    mean_abs = np.abs(w).mean(axis=reduce, keepdims=True)
    keep = np.abs(w) > threshold * mean_abs
    q = (np.sign(w) * keep).astype(np.int8)
    kept = keep.sum(axis=reduce)
    scale = np.where(kept > 0, (np.abs(w) * keep).sum(axis=reduce) / np.maximum(kept, 1), 0.0)
    return q, scale
