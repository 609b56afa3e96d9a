"""The int8 ops of common TFLite models, bit for bit as TFLite 2.14's reference kernels.

Each function follows one kernel of ``tensorflow/lite/kernels/internal/reference/`` (the
integer arithmetic) and the ``Prepare`` of its op in ``tensorflow/lite/kernels/`` (how the
fixed-point parameters come from the float32 scales of the .tflite file); docs/ops.md lists
the source of each and how it is tested. Tensors are NHWC numpy integer arrays; results are
int64 arrays holding int8 values (float32 for :func:`dequantize`).

* :func:`depthwise_conv2d` — DEPTHWISE_CONV_2D (reference/integer_ops/depthwise_conv.h).
* :func:`average_pool2d`, :func:`max_pool2d` — reference/integer_ops/pooling.h.
* :func:`add`, :func:`mul` — reference/integer_ops/add.h, mul.h with add.cc/mul.cc Prepare.
* :func:`mean` — reference/reduce.h QuantizedMeanOrSum (integer in TFLite 2.14).
* :func:`pad`, :func:`reshape`, :func:`concatenation` — data movement.
* :func:`logistic`, :func:`tanh` — activations.cc: int8 through a 256-entry table.
* :func:`hard_swish` — reference/hard_swish.h, int16 fixed point.
* :func:`softmax` — reference/softmax.h in gemmlowp fixed point (BUILTIN_REF), or the
  float32 table of optimized_ops::Softmax (BUILTIN on x86).
* :func:`quantize`, :func:`requantize_tensor`, :func:`dequantize` — QUANTIZE, DEQUANTIZE.

Grouped CONV_2D is :func:`golden.layers.conv2d` (a filter with fewer input channels than
the input); the per-channel multipliers of both convolutions come from
:func:`golden.tflite.conv_multiplier`.
"""

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

from .layers import _ints, _pair, conv_output_size
from .rounding import round_div
from .tflite import (
    INT32_MAX,
    INT32_MIN,
    _rdbpot,
    _srdhm,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one,
    requantize,
)

__all__ = [
    "ADD_LEFT_SHIFT", "INT8_MAX", "INT8_MIN", "AddParams", "HardSwishParams", "add",
    "add_params", "average_pool2d", "concatenation", "depthwise_conv2d", "dequantize",
    "hard_swish", "hard_swish_params", "logistic", "logistic_table", "max_pool2d", "mean",
    "mul", "mul_multiplier", "pad", "quantize", "requantize_tensor", "reshape", "softmax",
    "softmax_params", "tanh", "tanh_table",
]

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
#: add.cc: inputs are shifted left by 20 bits before rescaling (15 for int16).
ADD_LEFT_SHIFT = 20
#: hard_swish.h: the input is moved to a scale 2^7 finer before the int16 arithmetic.
HARD_SWISH_HIRES_SHIFT = 7
#: activations.cc HardSwishPrepare: the "reluish" scale on which 3.0 is 32768.
HARD_SWISH_RELUISH_SCALE = np.float32(3.0) / np.float32(32768.0)
#: reduce.h QuantizedMeanOrSum: 1/n is folded into the multiplier with at most 32 bits.
MEAN_MAX_SHIFT = 32
#: The 256 int8 codes, in table order (table[q - INT8_MIN]).
INT8_CODES = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64)


# -- argument checks ---------------------------------------------------------------------------

def _scale(name, value):
    scale = np.float32(value)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"{name} must be a positive finite float32; got {value!r}")
    return scale


def _zero_point(name, value, lo=INT8_MIN, hi=INT8_MAX):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
    return int(value)


def _codes(name, value, lo, hi, ndim=None):
    array = _ints(name, value, ndim)
    if array.size and (int(array.min()) < lo or int(array.max()) > hi):
        raise ValueError(f"{name} must hold values in [{lo}, {hi}]; "
                         f"got {int(array.min())}..{int(array.max())}")
    return array.astype(np.int64)


def _int8(name, value, ndim=None):
    return _codes(name, value, INT8_MIN, INT8_MAX, ndim)


def _act_range(act_min, act_max):
    lo = _zero_point("act_min", act_min)
    hi = _zero_point("act_max", act_max)
    if lo > hi:
        raise ValueError(f"act_min must be ≤ act_max; got act_min={lo}, act_max={hi}")
    return lo, hi


def _window(x, kernel, stride, dilation, padding):
    """Output size and (top, left) padding of a 2-D window over NHWC ``x``."""
    kh, kw = _pair("filter", kernel)
    sh, sw = _pair("stride", stride)
    dh, dw = _pair("dilation", dilation)
    oh, (top, _) = conv_output_size(x.shape[1], kh, sh, dh, padding)
    ow, (left, _) = conv_output_size(x.shape[2], kw, sw, dw, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"window {kh}×{kw} (dilation {dh}×{dw}) is larger than the input "
                         f"{x.shape[1]}×{x.shape[2]}")
    return (kh, kw), (sh, sw), (dh, dw), (oh, ow), (top, left)


def _taps(x, kernel, stride, dilation, padding, fill):
    """Yield (u, v, view) per filter tap: view[n, i, j, c] = x[n, i·sh + u·dh − top, …] of
    the input padded with ``fill``, and a mask of the taps that fall inside the input."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow), (top, left) = _window(x, kernel, stride,
                                                                   dilation, padding)
    batch, height, width, _ = x.shape
    bottom = max((oh - 1) * sh + (kh - 1) * dh + 1 - height - top, 0)
    right = max((ow - 1) * sw + (kw - 1) * dw + 1 - width - left, 0)
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    inside = np.pad(np.ones((height, width), dtype=bool), ((top, bottom), (left, right)))
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dh, u * dh + (oh - 1) * sh + 1, sh)
            cols = slice(v * dw, v * dw + (ow - 1) * sw + 1, sw)
            yield u, v, padded[:, rows, cols, :], inside[rows, cols]


# -- DEPTHWISE_CONV_2D -------------------------------------------------------------------------

def depthwise_conv2d(x, w, bias, *, input_zero_point, output_zero_point, multiplier, shift,
                     act_min, act_max, stride=1, padding="valid", dilation=1,
                     depth_multiplier=None, rounding="double"):
    """DEPTHWISE_CONV_2D: reference_integer_ops::DepthwiseConvPerChannel.

    x: NHWC [N, H, W, C]; w: TFLite's filter layout [1, KH, KW, C·m] where output channel
    ``c·m + k`` is input channel ``c`` times its ``k``-th filter (m = ``depth_multiplier``,
    taken from the shapes when None); bias [C·m] int32 or None. ``multiplier``/``shift`` are
    per output channel (:func:`golden.tflite.conv_multiplier`) or scalars; the filter zero
    point is 0 (TFLite's int8 filters are symmetric). Padded taps are skipped, which is the
    same as padding with the input zero point. Returns int64 [N, OH, OW, C·m].
    """
    x = _ints("x", x, 4)
    w = _ints("w", w, 4)
    if w.shape[0] != 1:
        raise ValueError(f"w must have TFLite's depthwise layout [1, KH, KW, C·m]; "
                         f"got shape {w.shape}")
    channels = x.shape[3]
    if channels == 0 or w.shape[3] % channels:
        raise ValueError(f"w has {w.shape[3]} output channels, not a multiple of the input's "
                         f"{channels}")
    m = w.shape[3] // channels
    if depth_multiplier is not None and depth_multiplier != m:
        raise ValueError(f"depth_multiplier must be {m} (= {w.shape[3]} filter channels / "
                         f"{channels} input channels), not {depth_multiplier}")
    z_x = int(_ints("input_zero_point", input_zero_point, 0))
    centred = x.astype(np.int64) - z_x
    filters = w[0].astype(np.int64).reshape(w.shape[1], w.shape[2], channels, m)
    acc = None
    for u, v, view, _ in _taps(centred, w.shape[1:3], stride, dilation, padding, 0):
        term = view[..., None] * filters[u, v]          # [N, OH, OW, C, m]
        acc = term if acc is None else acc + term
    acc = acc.reshape(*acc.shape[:3], channels * m)
    if bias is not None:
        bias = _ints("bias", bias, 1)
        if bias.shape != (channels * m,):
            raise ValueError(f"bias must have shape ({channels * m},); got {bias.shape}")
    return requantize(acc, bias=bias, multiplier=multiplier, shift=shift,
                      output_zero_point=output_zero_point, act_min=act_min, act_max=act_max,
                      rounding=rounding)


# -- pooling -----------------------------------------------------------------------------------

def _pool(x, filter_size, stride, padding, reduce):
    x = _int8("x", x, 4)
    values = []
    for _, _, view, inside in _taps(x, filter_size, stride, 1, padding, 0):
        values.append((view, inside[None, :, :, None]))
    return reduce(values)


def average_pool2d(x, *, filter_size, stride, padding="valid", act_min=INT8_MIN,
                   act_max=INT8_MAX):
    """AVERAGE_POOL_2D: reference_integer_ops::AveragePool.

    The int32 sum of the taps inside the input, divided by their count with ties away from
    zero (``(acc ± count/2) / count`` in C), clamped to [act_min, act_max]. Input and output
    share scale and zero point (TFLite checks it), so no rescaling happens.
    """
    lo, hi = _act_range(act_min, act_max)

    def reduce(values):
        total = sum(np.where(inside, view, 0) for view, inside in values)
        count = sum(inside.astype(np.int64) for _, inside in values)
        return np.clip(round_div(total, np.broadcast_to(count, total.shape)), lo, hi)

    return _pool(x, filter_size, stride, padding, reduce)


def max_pool2d(x, *, filter_size, stride, padding="valid", act_min=INT8_MIN,
               act_max=INT8_MAX):
    """MAX_POOL_2D: reference_integer_ops::MaxPool — the largest tap inside the input,
    clamped to [act_min, act_max]."""
    lo, hi = _act_range(act_min, act_max)

    def reduce(values):
        best = None
        for view, inside in values:
            tap = np.where(inside, view, INT8_MIN)
            best = tap if best is None else np.maximum(best, tap)
        return np.clip(best, lo, hi)

    return _pool(x, filter_size, stride, padding, reduce)


# -- ADD, MUL ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AddParams:
    """The fixed-point parameters add.cc's Prepare derives for int8 ADD.

    Members
    -------
    left_shift : int
        :data:`ADD_LEFT_SHIFT`.
    input1_multiplier, input1_shift, input2_multiplier, input2_shift : int
        Each input's rescaling to ``2·max(s1, s2)``: s_i / (2·max(s1, s2)) < 1.
    output_multiplier, output_shift : int
        ``2·max(s1, s2) / (2^left_shift · s_out)``.
    """
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_params(input1_scale, input2_scale, output_scale):
    """:class:`AddParams` from the three float32 scales, as add.cc Prepare computes them.

    ``twice_max = 2·max(s1, s2)`` (exact in float32), ``s_i / twice_max`` in double, and
    ``twice_max / (2^20 · s_out)`` with ``2^20 · s_out`` in float32, each quantized with
    QuantizeMultiplierSmallerThanOneExp (which needs the real multiplier in (0, 1)).
    """
    s1, s2 = _scale("input1_scale", input1_scale), _scale("input2_scale", input2_scale)
    s_out = _scale("output_scale", output_scale)
    twice_max = np.float64(np.float32(2) * max(s1, s2))
    m1, e1 = quantize_multiplier_smaller_than_one(np.float64(s1) / twice_max)
    m2, e2 = quantize_multiplier_smaller_than_one(np.float64(s2) / twice_max)
    denominator = np.float64(np.float32(1 << ADD_LEFT_SHIFT) * s_out)
    mo, eo = quantize_multiplier_smaller_than_one(twice_max / denominator)
    return AddParams(ADD_LEFT_SHIFT, m1, e1, m2, e2, mo, eo)


def _binary_inputs(x1, x2):
    x1, x2 = _int8("x1", x1), _int8("x2", x2)
    try:
        np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"x1 {x1.shape} and x2 {x2.shape} do not broadcast") from None
    return x1, x2


def add(x1, x2, *, input1_scale, input1_zero_point, input2_scale, input2_zero_point,
        output_scale, output_zero_point, act_min=INT8_MIN, act_max=INT8_MAX):
    """ADD of two int8 tensors (numpy broadcasting): reference_integer_ops::AddFunc.

    Each input, centred and shifted left by 20 bits, is rescaled by its multiplier
    (MultiplyByQuantizedMultiplierSmallerThanOneExp: a rounding doubling high multiply, then
    a rounding right shift); the int32 sum is rescaled to the output scale, offset by the
    output zero point and clamped. Parameters come from :func:`add_params`.
    """
    x1, x2 = _binary_inputs(x1, x2)
    p = add_params(input1_scale, input2_scale, output_scale)
    z1 = _zero_point("input1_zero_point", input1_zero_point)
    z2 = _zero_point("input2_zero_point", input2_zero_point)
    zo = _zero_point("output_zero_point", output_zero_point)
    lo, hi = _act_range(act_min, act_max)
    scaled1 = multiply_by_quantized_multiplier((x1 - z1) << p.left_shift,
                                               p.input1_multiplier, p.input1_shift)
    scaled2 = multiply_by_quantized_multiplier((x2 - z2) << p.left_shift,
                                               p.input2_multiplier, p.input2_shift)
    raw = multiply_by_quantized_multiplier(np.asarray(scaled1 + scaled2), p.output_multiplier,
                                           p.output_shift)
    return np.clip(np.asarray(raw) + zo, lo, hi)


def mul_multiplier(input1_scale, input2_scale, output_scale):
    """(m0, shift) of int8 MUL: mul.cc computes ``s1 · s2 / s_out`` in float32 (all three
    are float) and quantizes it with QuantizeMultiplier, so the shift may be positive."""
    s1, s2 = _scale("input1_scale", input1_scale), _scale("input2_scale", input2_scale)
    s_out = _scale("output_scale", output_scale)
    return quantize_multiplier(np.float64(s1 * s2 / s_out))


def mul(x1, x2, *, input1_scale, input1_zero_point, input2_scale, input2_zero_point,
        output_scale, output_zero_point, act_min=INT8_MIN, act_max=INT8_MAX):
    """MUL of two int8 tensors (numpy broadcasting): reference_integer_ops::MulElementwise.

    ``clamp(MultiplyByQuantizedMultiplier((x1 − z1)·(x2 − z2), m0, shift) + z_out)`` with
    (m0, shift) from :func:`mul_multiplier`.
    """
    x1, x2 = _binary_inputs(x1, x2)
    m0, shift = mul_multiplier(input1_scale, input2_scale, output_scale)
    z1 = _zero_point("input1_zero_point", input1_zero_point)
    z2 = _zero_point("input2_zero_point", input2_zero_point)
    zo = _zero_point("output_zero_point", output_zero_point)
    lo, hi = _act_range(act_min, act_max)
    product = multiply_by_quantized_multiplier((x1 - z1) * (x2 - z2), m0, shift)
    return np.clip(np.asarray(product) + zo, lo, hi)


# -- MEAN --------------------------------------------------------------------------------------

def mean(x, *, input_scale, input_zero_point, output_scale, output_zero_point, axis=(1, 2),
         keep_dims=True):
    """MEAN of int8 ``x`` over ``axis``: reference_ops::QuantizedMeanOrSum of TFLite 2.14.

    reduce.cc PrepareMeanOrSum quantizes ``double(s_in)/double(s_out)`` to (m0, e); Eval
    folds 1/n (n = elements reduced) into it: with ``k = min(⌊log2 n⌋, 32, 31 + e)``,
    ``m = ⌊m0·2^k / n⌋`` and shift ``e − k``. Each output is
    ``clamp(MultiplyByQuantizedMultiplier(Σx − z_in·n, m, e − k) + z_out)`` with the sum in
    int32.
    """
    x = _int8("x", x)
    s_in, s_out = _scale("input_scale", input_scale), _scale("output_scale", output_scale)
    z_in = _zero_point("input_zero_point", input_zero_point)
    z_out = _zero_point("output_zero_point", output_zero_point)
    axes = tuple(sorted({int(a) % max(x.ndim, 1) for a in np.atleast_1d(axis)}))
    if any(not -x.ndim <= int(a) < x.ndim for a in np.atleast_1d(axis)):
        raise ValueError(f"axis must be in [{-x.ndim}, {x.ndim - 1}]; got {axis!r}")
    count = int(np.prod([x.shape[a] for a in axes]))
    if count == 0:
        raise ValueError(f"x must have elements along axis {axes}; got shape {x.shape}")
    m0, exponent = quantize_multiplier(np.float64(s_in) / np.float64(s_out))
    k = min(count.bit_length() - 1, MEAN_MAX_SHIFT, 31 + exponent)
    multiplier = (m0 << k) // count
    total = x.sum(axis=axes, keepdims=keep_dims) - z_in * count
    scaled = np.asarray(multiply_by_quantized_multiplier(total, multiplier, exponent - k))
    return np.clip(scaled + z_out, INT8_MIN, INT8_MAX)


# -- PAD, RESHAPE, CONCATENATION ---------------------------------------------------------------

def pad(x, paddings, *, pad_value):
    """PAD / PADV2: ``x`` with ``paddings[d] = (before, after)`` codes of ``pad_value`` on
    each axis. TFLite's PAD pads with the output zero point (the real 0); PADV2 with its
    constant, quantized like the input."""
    x = _ints("x", x)
    pairs = np.asarray(paddings)
    if pairs.dtype.kind not in "iu":
        raise TypeError(f"paddings must hold integers, not {pairs.dtype}")
    if pairs.shape != (x.ndim, 2):
        raise ValueError(f"paddings must have shape ({x.ndim}, 2); got {pairs.shape}")
    if (pairs < 0).any():
        raise ValueError(f"paddings must be ≥ 0; got {pairs.tolist()}")
    value = _zero_point("pad_value", pad_value)
    return np.pad(x.astype(np.int64), [tuple(int(v) for v in p) for p in pairs],
                  constant_values=value)


def reshape(x, shape):
    """RESHAPE: the same int8 codes in a new shape (at most one −1, inferred); input and
    output share quantization, so no value changes."""
    x = _ints("x", x)
    shape = tuple(int(v) for v in shape)
    unknown = [v for v in shape if v == -1]
    if len(unknown) > 1 or any(v < -1 for v in shape):
        raise ValueError(f"shape must hold sizes ≥ 0 and at most one -1; got {shape}")
    known = int(np.prod([v for v in shape if v != -1]))
    if (unknown and (known == 0 or x.size % known)) or (not unknown and known != x.size):
        raise ValueError(f"shape {shape} does not hold the {x.size} elements of x")
    return x.reshape(shape)


UINT8_MIN, UINT8_MAX = 0, 255


def concatenation(inputs, *, axis, input_scales=None, input_zero_points=None,
                  output_scale=None, output_zero_point=None, signed=True):
    """CONCATENATION along ``axis``.

    With equal quantization everywhere (all that TFLite's int8 kernel accepts: its Prepare
    checks every input's scale and zero point against the output's) the codes are copied.
    Otherwise each input whose parameters differ is requantized as TFLite's uint8 kernel,
    reference_ops::ConcatenationWithScaling, does it: ``round(q·scale + bias) + z_out`` in
    float32 with ``scale = s_i · (1/s_out)`` and ``bias = −z_i · scale``, std::round,
    clamped to the code range: int8, or uint8 with ``signed=False`` (TFLite's case, which
    tests/golden/test_oracle.py checks against the interpreter).
    """
    lo, hi = (INT8_MIN, INT8_MAX) if signed else (UINT8_MIN, UINT8_MAX)
    arrays = [_codes(f"inputs[{i}]", a, lo, hi) for i, a in enumerate(inputs)]
    if not arrays:
        raise ValueError("inputs must hold at least one tensor")
    ndim = arrays[0].ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [{-ndim}, {ndim - 1}], not {axis}")
    if input_scales is None:
        return np.concatenate(arrays, axis=axis)
    if len(input_scales) != len(arrays) or len(input_zero_points) != len(arrays):
        raise ValueError(f"input_scales and input_zero_points must have {len(arrays)} entries")
    s_out = _scale("output_scale", output_scale)
    z_out = _zero_point("output_zero_point", output_zero_point, lo, hi)
    inverse = np.float32(1) / s_out
    pieces = []
    for i, (array, s, z) in enumerate(zip(arrays, input_scales, input_zero_points,
                                          strict=True)):
        s = _scale(f"input_scales[{i}]", s)
        z = _zero_point(f"input_zero_points[{i}]", z, lo, hi)
        if s == s_out and z == z_out:
            pieces.append(array)
            continue
        scale = s * inverse
        bias = np.float32(-z) * scale
        real = array.astype(np.float32) * scale + bias
        pieces.append(np.clip(_round_half_away(real) + z_out, lo, hi))
    return np.concatenate(pieces, axis=axis)


def _round_half_away(values):
    """std::round / TfLiteRound on floats: ties away from zero, as int64."""
    values = np.asarray(values)
    return (np.sign(values) * np.floor(np.abs(values) + values.dtype.type(0.5))).astype(
        np.int64)


# -- LOGISTIC, TANH: int8 through a table ------------------------------------------------------

def _lookup_table(transform, input_scale, input_zero_point, output_scale, output_zero_point):
    """activations.cc PopulateLookupTable<int8_t>, in float32 like the C++."""
    s_in, s_out = _scale("input_scale", input_scale), _scale("output_scale", output_scale)
    z_in = _zero_point("input_zero_point", input_zero_point)
    z_out = _zero_point("output_zero_point", output_zero_point)
    inverse = np.float32(1) / s_out
    dequantized = s_in * (INT8_CODES - z_in).astype(np.float32)
    transformed = transform(dequantized)
    rescaled = _round_half_away(transformed * inverse).astype(np.float32)
    quantized = (rescaled + np.float32(z_out)).astype(np.int64)   # static_cast<int32_t>
    return np.clip(quantized, INT8_MIN, INT8_MAX)


def _libm_function(name):
    """The C library's float function ``name`` (``float name(float)``) through ctypes, or
    None where no C math library loads."""
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("m")), name)
    except (OSError, AttributeError, TypeError):
        return None
    function.restype, function.argtypes = ctypes.c_float, [ctypes.c_float]
    return function


#: TFLite calls libm's expf and tanhf (std::exp, std::tanh on floats) while it fills its
#: 256-entry tables; glibc's are not correctly rounded (tanhf differs from the correctly
#: rounded value in about 9 % of arguments, and that changes a TANH code in about one table
#: in 20,000, which the interpreter confirmed). golden calls the same functions.
LIBM_EXPF, LIBM_TANHF = _libm_function("expf"), _libm_function("tanhf")


def _float32_of(function, libm):
    """``libm`` (a C float function) elementwise, or where there is no C library, the
    correctly rounded float32 of numpy's double ``function`` (overflowing to inf)."""
    def evaluate(values):
        values = np.asarray(values, dtype=np.float32)
        if libm is not None:
            return np.array([libm(float(v)) for v in values.ravel()],
                            dtype=np.float32).reshape(values.shape)
        with np.errstate(over="ignore"):
            return function(values.astype(np.float64)).astype(np.float32)
    return evaluate


def _sigmoid32(values):
    exp = _float32_of(np.exp, LIBM_EXPF)(-values)
    return np.float32(1) / (np.float32(1) + exp)


def logistic_table(*, input_scale, input_zero_point, output_scale=1 / 256,
                   output_zero_point=INT8_MIN):
    """The 256-entry int8 LOGISTIC table (index ``q + 128``): ``round(1/(1 + expf(−x)) /
    s_out) + z_out`` of ``x = s_in·(q − z_in)``, in float32."""
    return _lookup_table(_sigmoid32, input_scale, input_zero_point, output_scale,
                         output_zero_point)


def tanh_table(*, input_scale, input_zero_point, output_scale=1 / 128, output_zero_point=0):
    """The 256-entry int8 TANH table (index ``q + 128``): ``round(tanhf(x) / s_out) + z_out``
    of ``x = s_in·(q − z_in)``, in float32."""
    return _lookup_table(_float32_of(np.tanh, LIBM_TANHF), input_scale, input_zero_point,
                         output_scale, output_zero_point)


def logistic(x, *, input_scale, input_zero_point, output_scale=1 / 256,
             output_zero_point=INT8_MIN):
    """LOGISTIC on int8, as TFLite's reference kernel (BUILTIN_REF) runs it: Prepare fills a
    table with :func:`logistic_table` and Eval looks every code up (EvalUsingLookupTable).
    TFLite requires ``output_scale`` = 1/256."""
    x = _int8("x", x)
    table = logistic_table(input_scale=input_scale, input_zero_point=input_zero_point,
                           output_scale=output_scale, output_zero_point=output_zero_point)
    return table[x - INT8_MIN]


def tanh(x, *, input_scale, input_zero_point, output_scale=1 / 128, output_zero_point=0):
    """TANH on int8 through :func:`tanh_table`, as LOGISTIC."""
    x = _int8("x", x)
    table = tanh_table(input_scale=input_scale, input_zero_point=input_zero_point,
                       output_scale=output_scale, output_zero_point=output_zero_point)
    return table[x - INT8_MIN]


# -- HARD_SWISH --------------------------------------------------------------------------------

@dataclass(frozen=True)
class HardSwishParams:
    """activations.cc HardSwishPrepare's int16 multipliers (see :func:`hard_swish_params`)."""
    output_multiplier: int
    output_exponent: int
    reluish_multiplier: int
    reluish_exponent: int


def _int16_multiplier(m0):
    """DownScaleInt32ToInt16Multiplier: round m0 / 2^16 half up, saturating at 2^15 − 1."""
    rounding_offset = 1 << 15
    if m0 >= INT32_MAX - rounding_offset:
        return INT16_MAX
    return (m0 + rounding_offset) >> 16


def hard_swish_params(input_scale, output_scale):
    """:class:`HardSwishParams`: in float32, ``hires = s_in/128``, output multiplier
    ``hires/s_out`` and reluish multiplier ``hires/(3/32768)``, each by QuantizeMultiplier
    then cut to int16. TFLite requires the output exponent to be ≤ 0."""
    s_in, s_out = _scale("input_scale", input_scale), _scale("output_scale", output_scale)
    hires = np.float32(1.0 / 128.0) * s_in
    m_out, e_out = quantize_multiplier(np.float64(hires / s_out))
    if e_out > 0:
        raise ValueError(f"input_scale / output_scale must be below 128 (HardSwishPrepare "
                         f"needs a multiplier exponent ≤ 0); got exponent {e_out}")
    m_relu, e_relu = quantize_multiplier(np.float64(hires / HARD_SWISH_RELUISH_SCALE))
    return HardSwishParams(_int16_multiplier(m_out), e_out, _int16_multiplier(m_relu), e_relu)


def _srdhm16(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int16: (a·b + nudge) / 2^15 truncated."""
    product = a * b
    nudge = np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    quotient = product + nudge
    result = np.where(quotient >= 0, quotient >> 15, -((-quotient) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, result)


def _wrap16(value):
    """C's conversion of an int to int16_t (two's complement wrap)."""
    return ((np.asarray(value, dtype=np.int64) - INT16_MIN) & 0xFFFF) + INT16_MIN


def _rdbpot16(x, exponent):
    """gemmlowp RoundingDivideByPOT on int16, statement for statement: ties away from zero
    for exponents up to 15. From 16 on the mask ``int16((1 << exponent) − 1)`` wraps to −1,
    so every non-negative x gives 1 and every negative x gives −1; TFLite 2.14 computes
    exactly that (measured with its interpreter), so golden does too."""
    mask = int(_wrap16((1 << exponent) - 1))
    remainder = _wrap16(x & mask)
    threshold = _wrap16((mask >> 1) + (x < 0))
    return _wrap16((x >> exponent) + (remainder > threshold))


def _saturating_left_shift16(x, amount):
    return np.clip(x << amount, INT16_MIN, INT16_MAX)


def hard_swish(x, *, input_scale, input_zero_point, output_scale, output_zero_point):
    """HARD_SWISH ``x·relu6(x + 3)/6`` on int8: reference_ops::HardSwish, int16 fixed point.

    The input, centred and shifted left 7 bits, is (1) rescaled to the output scale by a
    rounding doubling high multiply with the int16 output multiplier and (2) rescaled to the
    "reluish" scale (3.0 ↔ 32768) with saturating left shifts or a rounding right shift,
    mapped to [0, 1] as ``(v + 2^15) >> 1``; the two are multiplied by a doubling high
    multiply that truncates toward zero, shifted right with rounding by the output exponent,
    offset by the zero point and clamped to int8.
    """
    x = _int8("x", x)
    z_in = _zero_point("input_zero_point", input_zero_point)
    z_out = _zero_point("output_zero_point", output_zero_point)
    p = hard_swish_params(input_scale, output_scale)
    hires = (x - z_in) << HARD_SWISH_HIRES_SHIFT                 # |·| ≤ 255·128: int16
    preshift_output = _srdhm16(hires, p.output_multiplier)
    reluish = hires
    if p.reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, p.reluish_exponent - 1)
    reluish = _srdhm16(reluish, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if p.reluish_exponent < 0:
        reluish = _rdbpot16(reluish, -p.reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    product = reluish * preshift_output                           # SaturatingDoublingHighMul
    truncated = np.where(product >= 0, product >> 15, -((-product) >> 15))
    output = _rdbpot16(truncated, -p.output_exponent)
    output = _wrap16(output + z_out)            # int16_t output_value += zero point
    return np.clip(output, INT8_MIN, INT8_MAX)


# -- SOFTMAX -----------------------------------------------------------------------------------

#: reference/softmax.h: exp() takes Q5.26 input differences, sums accumulate in Q12.19.
SOFTMAX_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUM_INTEGER_BITS = 12
#: gemmlowp exp_on_negative_values: exp(−2^k) in Q0.31 for the barrel shifter, k = −2..4.
EXP_BARREL_MULTIPLIERS = {-2: 1672461947, -1: 1302514674, 0: 790015084, 1: 290630308,
                          2: 39332535, 3: 720401, 4: 242}
#: gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: exp(−1/8), 1/3 in Q0.31.
EXP_MINUS_ONE_EIGHTH_Q31 = 1895147668
ONE_THIRD_Q31 = 715827883
#: gemmlowp one_over_one_plus_x_for_x_in_0_1: 48/17 and −32/17 in Q2.29.
FORTY_EIGHT_SEVENTEENTHS_Q29 = 1515870810
MINUS_THIRTY_TWO_SEVENTEENTHS_Q29 = -1010580540
NEWTON_RAPHSON_STEPS = 3
SOFTMAX_KERNELS = ("reference", "optimized")


def _srdhm32(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 (the FixedPoint product)."""
    return _srdhm(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))


def _rdbpot32(x, exponent):
    return _rdbpot(np.asarray(x, dtype=np.int64), np.int64(exponent))


def _saturating_shift_left32(x, exponent):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent > 0> on int32."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def _exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values: Q5.26 raw a ≤ 0 → exp(a) as Q0.31 raw."""
    fractional_bits = 31 - SOFTMAX_DIFF_INTEGER_BITS
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    x = _saturating_shift_left32(a_mod_quarter_minus_one_quarter, SOFTMAX_DIFF_INTEGER_BITS)
    # exp on [−1/4, 0): Taylor series around −1/8
    x = x + (1 << 28)
    x2 = _srdhm32(x, x)
    x3 = _srdhm32(x2, x)
    x4 = _srdhm32(x2, x2)
    x4_over_4 = _rdbpot32(x4, 2)
    series = _rdbpot32(_srdhm32(x4_over_4 + x3, ONE_THIRD_Q31) + x2, 1)
    result = EXP_MINUS_ONE_EIGHTH_Q31 + _srdhm32(EXP_MINUS_ONE_EIGHTH_Q31, x + series)
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in EXP_BARREL_MULTIPLIERS.items():
        bit = (remainder >> (fractional_bits + exponent)) & 1
        result = np.where(bit == 1, _srdhm32(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def _reciprocal(total, integer_bits):
    """TFLite GetReciprocal: (1/x as Q0.31 raw of x shifted into [1, 2), bits over unit)."""
    bit_length = np.frexp(total.astype(np.float64))[1].astype(np.int64)   # exact below 2^53
    headroom_plus_one = 32 - bit_length                         # CountLeadingZeros(uint32)
    num_bits_over_unit = integer_bits - headroom_plus_one
    shifted_minus_one = ((total << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    shifted_minus_one = np.where(shifted_minus_one >= 1 << 31, shifted_minus_one - (1 << 32),
                                 shifted_minus_one)
    # gemmlowp one_over_one_plus_x_for_x_in_0_1, Newton-Raphson in Q2.29
    total64 = shifted_minus_one + INT32_MAX
    half_denominator = np.where(total64 >= 0, (total64 + 1) // 2, -((-total64 + 1) // 2))
    x = FORTY_EIGHT_SEVENTEENTHS_Q29 + _srdhm32(half_denominator,
                                               MINUS_THIRTY_TWO_SEVENTEENTHS_Q29)
    one_q29 = 1 << 29
    for _ in range(NEWTON_RAPHSON_STEPS):
        one_minus = one_q29 - _srdhm32(half_denominator, x)
        x = x + _saturating_shift_left32(_srdhm32(x, one_minus), 2)
    return _saturating_shift_left32(x, 1), num_bits_over_unit


def softmax_params(input_scale, beta=1.0):
    """(input_multiplier, input_left_shift, diff_min) of SoftmaxPrepare<kReference> for int8:
    PreprocessSoftmaxScaling (``β·s_in·2^26`` in double, capped at 2^31 − 1, quantized with
    QuantizeMultiplierGreaterThanOne) and ``diff_min = −CalculateInputRadius(5, shift)``."""
    s_in = _scale("input_scale", input_scale)
    beta32 = np.float32(beta)
    if not (np.isfinite(beta32) and beta32 > 0):
        raise ValueError(f"beta must be a positive finite float32; got {beta!r}")
    real = min(np.float64(beta32) * np.float64(s_in)
               * float(1 << (31 - SOFTMAX_DIFF_INTEGER_BITS)), float(INT32_MAX))
    if not real > 1:
        raise ValueError(f"beta · input_scale · 2^26 must exceed 1 (TFLite CHECKs it); "
                         f"got {real}")
    multiplier, shift = quantize_multiplier(real)
    radius = ((1 << SOFTMAX_DIFF_INTEGER_BITS) - 1) * float(1 << (31 - SOFTMAX_DIFF_INTEGER_BITS))
    diff_min = -int(np.floor(radius / float(1 << shift)))
    return multiplier, shift, diff_min


def softmax(x, *, input_scale, beta=1.0, kernel="reference"):
    """SOFTMAX over the last axis of int8 ``x``, output scale 1/256 and zero point −128
    (what TFLite requires of an int8 softmax).

    ``kernel="reference"`` (BUILTIN_REF): reference_ops::Softmax in gemmlowp fixed point.
    Differences ``d = x − max`` below ``diff_min`` give −128; the others are scaled to Q5.26
    (:func:`softmax_params`), exponentiated (exp_on_negative_values, Q0.31), summed in Q12.19
    (each rounded right by 12), the sum inverted by GetReciprocal (Newton-Raphson), and each
    output is ``RoundingDivideByPOT(SRDHM(1/sum, exp), bits_over_unit + 23) − 128``.

    ``kernel="optimized"`` (BUILTIN, x86): optimized_ops::Softmax with
    PopulateSoftmaxLookupTable in float32: ``t[d] = expf(−s_in·β·d)``, the row sum left to
    right, ``p = t · (1/(sum/256))`` rounded with std::round. The two agree except near
    probabilities that lie close to a half code.
    """
    x = _int8("x", x)
    if x.ndim < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last axis; got shape {x.shape}")
    if kernel not in SOFTMAX_KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(SOFTMAX_KERNELS)}; got {kernel!r}")
    multiplier, shift, diff_min = softmax_params(input_scale, beta)
    diff = x - x.max(axis=-1, keepdims=True)
    if kernel == "optimized":
        scale = -_scale("input_scale", input_scale) * np.float32(beta)
        table = _float32_of(np.exp, LIBM_EXPF)(scale * np.arange(256, dtype=np.float32))
        values = table[-diff]
        total = np.zeros(x.shape[:-1], dtype=np.float32)
        for j in range(x.shape[-1]):                             # C's sequential float sum
            total += values[..., j]
        probabilities = values * (np.float32(1) / (total * np.float32(1 / 256)))[..., None]
        return np.clip(_round_half_away(probabilities) + INT8_MIN, INT8_MIN, INT8_MAX)
    used = diff >= diff_min
    scaled = _srdhm32(np.where(used, diff, 0) << shift, multiplier)  # ...GreaterThanOne
    exps = _exp_on_negative_values(scaled)
    accumulated = np.where(used, _rdbpot32(exps, SOFTMAX_ACCUM_INTEGER_BITS), 0)
    total = accumulated.sum(axis=-1)
    reciprocal, bits_over_unit = _reciprocal(total, SOFTMAX_ACCUM_INTEGER_BITS)
    exponent = bits_over_unit + 31 - 8
    unsaturated = _rdbpot(_srdhm32(reciprocal[..., None], exps), exponent[..., None])
    return np.where(used, np.clip(unsaturated + INT8_MIN, INT8_MIN, INT8_MAX), INT8_MIN)


# -- QUANTIZE, DEQUANTIZE ----------------------------------------------------------------------

def quantize(x, *, scale, zero_point):
    """QUANTIZE float32 → int8: reference_ops::AffineQuantize,
    ``clamp(TfLiteRound(x / scale) + zero_point)`` with the quotient in float32."""
    values = np.asarray(x)
    if values.dtype.kind != "f":
        raise TypeError(f"x must hold floats, not {values.dtype}")
    s = _scale("scale", scale)
    z = _zero_point("zero_point", zero_point)
    quotient = values.astype(np.float32) / s
    return np.clip(_round_half_away(quotient) + z, INT8_MIN, INT8_MAX)


def requantize_tensor(x, *, input_scale, input_zero_point, output_scale, output_zero_point):
    """QUANTIZE int8 → int8 (a change of scale): reference_ops::Requantize with
    (m0, shift) = QuantizeMultiplier(double(s_in)/double(s_out)):
    ``clamp(MultiplyByQuantizedMultiplier(x − z_in, m0, shift) + z_out)``."""
    x = _int8("x", x)
    s_in, s_out = _scale("input_scale", input_scale), _scale("output_scale", output_scale)
    z_in = _zero_point("input_zero_point", input_zero_point)
    z_out = _zero_point("output_zero_point", output_zero_point)
    m0, shift = quantize_multiplier(np.float64(s_in) / np.float64(s_out))
    return np.clip(np.asarray(multiply_by_quantized_multiplier(x - z_in, m0, shift)) + z_out,
                   INT8_MIN, INT8_MAX)


def dequantize(x, *, scale, zero_point):
    """DEQUANTIZE int8 → float32: reference_ops::Dequantize,
    ``float(double(scale) · (x − zero_point))``."""
    x = _int8("x", x)
    s = _scale("scale", scale)
    z = _zero_point("zero_point", zero_point)
    return (np.float64(s) * (x - z)).astype(np.float32)

