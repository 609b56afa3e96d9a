"""TFLite / gemmlowp fixed-point requantization, bit for bit.

The specification is the reference code:

* gemmlowp ``fixedpoint.h``: :func:`saturating_rounding_doubling_high_mul`,
  :func:`rounding_divide_by_pot`.
* TFLite ``quantization_util.cc`` QuantizeMultiplier: :func:`quantize_multiplier`.
* TFLite ``common.h|.cc`` MultiplyByQuantizedMultiplier, in the default build (``"double"``
  rounding: a doubling high multiply that rounds, then a rounding right shift) and with
  ``TFLITE_SINGLE_ROUNDING`` (``"single"``: one 64-bit product rounded half up once):
  :func:`multiply_by_quantized_multiplier`.
* TFLite ``kernel_util.cc`` GetQuantizedConvolutionMultipler (per tensor: the float32 product
  of the scales), PopulateConvolutionQuantizationParams (per channel: the double product) and
  CalculateActivationRangeQuantized: :func:`tflite_multiplier`, :func:`activation_range`.

Where TFLite's C++ has undefined or checked-fatal behaviour (an int32 overflow, a shift out
of range) these functions raise ``ValueError`` instead of guessing. A shift is TFLite's: the
real multiplier is ``m0 · 2^(shift − 31)``, so a positive shift is a left shift.

Besides TFLite's two builds, :func:`requantize` accepts every :data:`golden.rounding` mode:
the exact product ``acc · m0`` divided by ``2^(31 − shift)`` and rounded once with that mode.
Two roundings are golden's only (no hardware builds them): TFLite's optimized x86 kernels
(:data:`X86_ROUNDING`) and XNNPACK's int8 kernels (:data:`XNNPACK_ROUNDING`, XNNPACK
``src/operators/*-nhwc.c`` and its ``*-minmax-fp32-*`` microkernels): the accumulator in float32
times :func:`xnnpack_scale`, rounded half to even.
"""

import math
from fractions import Fraction

import numpy as np

from .rounding import ROUNDING_MODES, round_shift

__all__ = [
    "DOUBLE_ROUNDINGS", "GOLDEN_ROUNDINGS", "INT32_MAX", "INT32_MIN", "REQUANT_ROUNDINGS",
    "X86_ROUNDING", "XNNPACK_ROUNDING", "ACTIVATIONS", "activation_range",
    "conv_multiplier", "multiply_by_quantized_multiplier", "quantize_multiplier",
    "quantize_multiplier_smaller_than_one", "requantize",
    "rounding_divide_by_pot", "saturating_rounding_doubling_high_mul", "tflite_multiplier",
    "xnnpack_mean_scale", "xnnpack_scale",
]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: ``"double"`` and ``"single"`` are TFLite's builds; the rest round ``acc·M`` once.
REQUANT_ROUNDINGS = ("double", "single", *ROUNDING_MODES)
#: TFLite's optimized x86 kernels (BUILTIN): the doubling high multiply, then a rounding
#: right shift whose ties go toward +∞ (measured on whole models, docs/models.md). golden/
#: computes it; no hardware configuration builds it (hw.config.REQUANT_ROUNDINGS).
X86_ROUNDING = "double_half_up"
#: The two-step roundings (a rounding doubling high multiply, then a rounding shift).
DOUBLE_ROUNDINGS = ("double", X86_ROUNDING)
#: XNNPACK's int8 kernels (TFLite's XNNPACK delegate), its "fp32" requantization: the int32
#: accumulator (bias included) converted to float32, times the float32 scale of
#: :func:`xnnpack_scale`, rounded half to even. A float scale, not (m0, shift): golden/
#: computes it; no hardware configuration builds it (hw.config.REQUANT_ROUNDINGS).
XNNPACK_ROUNDING = "fp32"
#: XNNPACK refuses a requantization scale at or above this (convolution-nhwc.c).
XNNPACK_MAX_SCALE = 256.0
#: XNNPACK's quantized global average pooling (MEAN) takes input/output scale ratios in
#: [2^-8, 2^8) (global-average-pooling-nwc.c).
XNNPACK_MEAN_RATIO = (2.0 ** -8, 2.0 ** 8)
#: Every rounding golden's requantization takes.
GOLDEN_ROUNDINGS = (*REQUANT_ROUNDINGS, X86_ROUNDING, XNNPACK_ROUNDING)
ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")


def _int64(name, value):
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        if array.dtype == object and all(isinstance(v, int) for v in array.flat):
            pass
        else:
            raise TypeError(f"{name} must hold integers, not {array.dtype}")
    if array.size and (int(array.min()) < -(1 << 63) or int(array.max()) >= 1 << 63):
        raise ValueError(f"{name} must fit in int64")
    return array.astype(np.int64, copy=False)


def _check_within(name, array, lo, hi, why):
    if array.size and (int(array.min()) < lo or int(array.max()) > hi):
        bad = array[(array < lo) | (array > hi)].flat[0]
        raise ValueError(f"{name} must be in {lo}..{hi} ({why}); got {int(bad)}")


def _result(array, *inputs):
    """A Python int when every input was a scalar, else the array."""
    if all(np.ndim(value) == 0 for value in inputs):
        return int(array)
    return array


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: ``round(a·b / 2^31)`` on int32 operands.

    gemmlowp adds a nudge of 2^30 (1 − 2^30 when a·b < 0) and divides by 2^31 truncating
    toward zero; for a negative product, truncating (a·b + 1 − 2^30)/2^31 equals flooring
    (a·b + 2^30)/2^31, so every tie rounds toward +∞ and one arithmetic shift computes it.
    The one overflowing case, a = b = −2^31, saturates to 2^31 − 1.
    """
    a64, b64 = _int64("a", a), _int64("b", b)
    _check_within("a", a64, INT32_MIN, INT32_MAX, "int32")
    _check_within("b", b64, INT32_MIN, INT32_MAX, "int32")
    return _result(_srdhm(a64, b64), a, b)


def _srdhm(a64, b64):
    high = a64 * b64
    high += 1 << 30
    high >>= 31
    if (a64 == INT32_MIN).any() and (b64 == INT32_MIN).any():
        high = np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), np.int64(INT32_MAX), high)
    return high


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: ``x / 2^exponent`` rounded half away from zero.

    ``x`` is int32 and ``exponent`` in 0..31, as gemmlowp asserts. gemmlowp adds one where
    the discarded bits exceed half (half plus one for negative x); adding 2^(e−1), less one
    for negative x, before the shift is the same.
    """
    x64, e64 = _int64("x", x), _int64("exponent", exponent)
    _check_within("x", x64, INT32_MIN, INT32_MAX, "int32")
    _check_within("exponent", e64, 0, 31, "gemmlowp asserts 0 ≤ exponent ≤ 31")
    return _result(_rdbpot(x64, e64), x, exponent)


def _rdbpot(x64, e64):
    if not e64.any():
        return x64
    half = (np.int64(1) << e64) >> 1
    result = x64 + half
    result -= (x64 < 0) & (e64 > 0)
    result >>= e64
    return result


def _quantize_one(real, single_rounding):
    real = float(real)
    if not math.isfinite(real):
        raise ValueError(f"real multiplier must be finite; got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)  # real = q·2^shift, 0.5 ≤ |q| < 1, exact
    scaled = Fraction(q) * (1 << 31)
    # TfLiteRound is std::round: half away from zero (exact on the Fraction).
    q_fixed = int(abs(scaled) + Fraction(1, 2)) * (1 if scaled > 0 else -1)
    if abs(q_fixed) == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:  # TFLite flushes multipliers below ~2^-32 to zero
        return 0, 0
    if single_rounding and shift > 30:  # single rounding cannot shift further: saturate
        return INT32_MAX if q_fixed > 0 else -INT32_MAX, 30
    return q_fixed, shift


def quantize_multiplier(real, *, rounding="double"):
    """TFLite QuantizeMultiplier: ``real ≈ m0 · 2^(shift − 31)`` with 2^30 ≤ |m0| < 2^31.

    ``m0`` is ``round(q · 2^31)`` (ties away from zero) of the exact frexp mantissa q, so for
    the seeds' example 0.01 = 0.64·2^−6 qmac returns m0 = 1374389535 (0.64·2^31 =
    1374389534.72 rounded), not the 1374389534 of truncation: rounding halves the worst
    multiplier error and is what TFLite computes. Zero gives (0, 0); multipliers below about
    2^−32 flush to (0, 0); m0 rounding up to 2^31 becomes 2^30 with shift + 1. With
    ``rounding="single"`` a shift above 30 saturates to (2^31 − 1, 30), as
    TFLITE_SINGLE_ROUNDING does. Arrays give arrays (per-channel multipliers).
    """
    if rounding not in REQUANT_ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(REQUANT_ROUNDINGS)}; "
                         f"got {rounding!r}")
    reals = np.asarray(real, dtype=np.float64)
    pairs = [_quantize_one(r, rounding == "single") for r in reals.flat]
    m0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(reals.shape)
    shift = np.array([p[1] for p in pairs], dtype=np.int64).reshape(reals.shape)
    if reals.ndim == 0:
        return int(m0), int(shift)
    return m0, shift


def quantize_multiplier_smaller_than_one(real):
    """TFLite QuantizeMultiplierSmallerThanOneExp: :func:`quantize_multiplier` of a real
    multiplier TFLite CHECKs to lie in (0, 1), so the shift is ≤ 0 (ADD/SUB rescaling).
    Arrays give arrays."""
    reals = np.asarray(real, dtype=np.float64)
    if not (np.isfinite(reals).all() and (reals > 0).all() and (reals < 1).all()):
        bad = reals[~(np.isfinite(reals) & (reals > 0) & (reals < 1))].flat[0]
        raise ValueError(f"real multiplier must be in (0, 1) (TFLite CHECKs it); got {bad!r}")
    return quantize_multiplier(real)


def multiply_by_quantized_multiplier(x, m0, shift, rounding="double"):
    """TFLite MultiplyByQuantizedMultiplier of int32 ``x`` by ``m0 · 2^(shift − 31)``.

    ``"double"``: RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x · 2^left, m0),
    right) with left = max(shift, 0), right = max(−shift, 0); raises where ``x · 2^left``
    overflows int32 (undefined in C++) or right > 31.
    ``"double_half_up"``: the same high multiply, then ``(v + 2^(right−1)) >> right``: ties
    toward +∞, as TFLite 2.14's optimized x86 kernels (BUILTIN) compute FULLY_CONNECTED,
    CONV_2D and DEPTHWISE_CONV_2D (measured on whole models, docs/models.md).
    ``"single"``: (x·m0 + 2^(30 − shift)) >> (31 − shift), shift in −31..30, m0 ≥ 0; raises
    where the result leaves int32 (TFLite's DCHECK).
    Any :data:`golden.rounding.ROUNDING_MODES` mode: ``x·m0 / 2^(31 − shift)`` rounded once.
    Scalars give a Python int; arrays broadcast (per-channel along the last axis).
    :data:`XNNPACK_ROUNDING` scales by a float32, not by (m0, shift): :func:`requantize` takes
    it.
    """
    if rounding == XNNPACK_ROUNDING:
        raise ValueError(f"rounding={rounding!r} multiplies by XNNPACK's float32 scale, not "
                         "m0·2^(shift−31): use requantize(..., multiplier=xnnpack_scale(...), "
                         f"shift=0, rounding={rounding!r})")
    x64, m64, s64 = _int64("x", x), _int64("m0", m0), _int64("shift", shift)
    _check_within("x", x64, INT32_MIN, INT32_MAX, "int32 accumulator")
    _check_within("m0", m64, INT32_MIN, INT32_MAX, "int32")
    if rounding in DOUBLE_ROUNDINGS:
        left = np.maximum(s64, 0)
        _check_within("shift", s64, -31, 31, "RoundingDivideByPOT takes 0..31")
        shifted = x64
        if left.any():
            shifted = x64 << left
            _check_within("x · 2^shift", shifted, INT32_MIN, INT32_MAX,
                          "int32, else undefined in TFLite")
        # int32 operands are checked above; the high product of int32s is int32
        high, right = _srdhm(shifted, m64), np.maximum(-s64, 0)
        if rounding == "double":
            result = _rdbpot(high, right)
        else:
            result = (high + ((np.int64(1) << right) >> 1)) >> right
        return _result(result, x, m0, shift)
    if rounding not in GOLDEN_ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(GOLDEN_ROUNDINGS)}; "
                         f"got {rounding!r}")
    _check_within("shift", s64, -31, 30, "total shift 31 − shift must be 1..62")
    if rounding == "single":
        _check_within("m0", m64, 0, INT32_MAX, "single rounding needs m0 ≥ 0")
        mode = "half_up"
    else:
        mode = rounding
    x64, m64, s64 = np.broadcast_arrays(x64, m64, s64)
    result = round_shift(x64 * m64, 31 - s64, mode)
    if rounding == "single":
        _check_within("result", result, INT32_MIN, INT32_MAX, "TFLite DCHECKs an int32 result")
    return _result(np.asarray(result, dtype=np.int64), x, m0, shift)


def requantize(acc, *, multiplier, shift, output_zero_point, act_min, act_max,
               rounding="double", bias=None):
    """The output stage of a quantized layer, as TFLite's integer kernels compute it.

    ``clamp(MultiplyByQuantizedMultiplier(acc + bias, multiplier, shift) + output_zero_point,
    act_min, act_max)``. ``multiplier``/``shift`` are scalars (per tensor) or arrays that
    broadcast along the last axis of ``acc`` (per channel). ``multiplier=None`` requantizes by
    a power of two only (shift-only scales): ``(acc + bias) · 2^shift`` rounded once with
    ``rounding`` (``"single"`` means half up; the two-step roundings of
    :data:`DOUBLE_ROUNDINGS` are not one-shift roundings).
    ``rounding="fp32"`` (:data:`XNNPACK_ROUNDING`): ``multiplier`` is XNNPACK's float32 scale
    (:func:`xnnpack_scale`), ``shift`` 0, and ``float32(acc + bias) · multiplier`` (a float32
    product) is rounded half to even, as XNNPACK's fp32 microkernels do (cvtdq2ps, mulps,
    cvtps2dq; their clamp before the rounding is at integers, so clamping after is the same).
    ``acc + bias`` must fit in int32, as in TFLite.
    """
    acc64 = _int64("acc", acc)
    if bias is not None:
        acc64 = acc64 + _int64("bias", bias)
    _check_within("acc + bias", acc64, INT32_MIN, INT32_MAX, "TFLite accumulates in int32")
    zero_point = _int64("output_zero_point", output_zero_point)
    lo, hi = int(_int64("act_min", act_min)), int(_int64("act_max", act_max))
    if lo > hi:
        raise ValueError(f"act_min must be ≤ act_max; got act_min={lo}, act_max={hi}")
    if rounding == XNNPACK_ROUNDING:
        scaled = _fp32_scale(acc64, multiplier, shift)
    elif multiplier is None:
        if rounding in DOUBLE_ROUNDINGS:
            once = [r for r in REQUANT_ROUNDINGS if r not in DOUBLE_ROUNDINGS]
            raise ValueError(f"rounding={rounding!r} needs a multiplier; a shift-only scale "
                             f"rounds once: choose one of {', '.join(once)}")
        if rounding not in REQUANT_ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(REQUANT_ROUNDINGS)}; "
                             f"got {rounding!r}")
        s64 = _int64("shift", shift)
        _check_within("shift", s64, -62, 30, "a power-of-two scale 2^shift")
        mode = "half_up" if rounding == "single" else rounding
        acc64, s64 = np.broadcast_arrays(acc64, s64)
        scaled = np.where(s64 >= 0, acc64 << np.maximum(s64, 0),
                          round_shift(acc64, np.maximum(-s64, 0), mode))
    else:
        scaled = np.asarray(multiply_by_quantized_multiplier(acc64, multiplier, shift,
                                                             rounding=rounding))
    scaled = np.asarray(scaled + zero_point, dtype=np.int64)
    return np.clip(scaled, lo, hi, out=scaled)


def _scale32(name, value):
    """A tensor scale as the float32 a .tflite file holds; ValueError unless positive, finite."""
    scale = np.float32(value)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"{name} must be a positive finite float32; got {value!r}")
    return scale


def _layer_scales(input_scale, weight_name, weight_scale, output_scale):
    """(input, weight, output) scales of a layer as float32, validated."""
    weight = np.asarray(weight_scale, dtype=np.float32)
    if not (np.isfinite(weight).all() and (weight > 0).all()):
        raise ValueError(f"{weight_name} must be positive and finite; got {weight_scale!r}")
    return _scale32("input_scale", input_scale), weight, _scale32("output_scale", output_scale)


def _fp32_scale(acc64, scale, shift):
    """XNNPACK's fp32 requantization before the zero point: round_half_even(float32(acc) ·
    scale), in float32 arithmetic (:data:`XNNPACK_ROUNDING`)."""
    if scale is None or np.asarray(scale).dtype != np.float32:
        kind = "None" if scale is None else np.asarray(scale).dtype
        raise TypeError(f"rounding={XNNPACK_ROUNDING!r} needs XNNPACK's float32 scale as "
                        f"multiplier (golden.tflite.xnnpack_scale), not {kind}")
    scale = np.asarray(scale)
    if not (np.isfinite(scale).all() and (scale > 0).all() and (scale < XNNPACK_MAX_SCALE).all()):
        raise ValueError(f"multiplier must be a float32 scale in (0, {XNNPACK_MAX_SCALE:g}) "
                         f"(XNNPACK refuses others); got {scale!r}")
    if np.any(_int64("shift", shift)):
        raise ValueError(f"shift must be 0 with rounding={XNNPACK_ROUNDING!r} (the float32 "
                         f"scale is the whole multiplier); got {shift!r}")
    # int32 → float32 rounds to nearest even (cvtdq2ps); float32 · float32 rounds once
    product = acc64.astype(np.float32) * scale
    return np.rint(product).astype(np.int64)      # |product| < 2^39: exact in int64


def xnnpack_scale(input_scale, filter_scale, output_scale):
    """XNNPACK's float32 requantization scale of a convolution or fully-connected layer.

    ``input_scale · filter_scale / output_scale`` evaluated left to right in float32, each
    operation rounded to float32, as XNNPACK's operator constructors compute it
    (``requantization_scale`` in convolution-nhwc.c and fully-connected-nc.c; per channel for
    an array ``filter_scale``, per tensor for a scalar). Not TFLite's multiplier: no double, no
    (m0, shift). Returns a float32 array (0-D for a scalar ``filter_scale``); ValueError for a
    scale ≥ 256, which XNNPACK refuses.
    """
    s_in, weight, s_out = _layer_scales(input_scale, "filter_scale", filter_scale,
                                        output_scale)
    scale = (s_in * weight) / s_out          # numpy float32 scalars/arrays: float32 each step
    if (scale >= XNNPACK_MAX_SCALE).any():
        raise ValueError(f"the requantization scale must be below {XNNPACK_MAX_SCALE:g} "
                         f"(XNNPACK refuses others); got {float(scale.max())!r}")
    return np.asarray(scale, dtype=np.float32)


def xnnpack_mean_scale(input_scale, output_scale, count):
    """XNNPACK's float32 scale of an int8 MEAN over ``count`` elements (TFLite's XNNPACK
    delegate runs MEAN over the spatial axes of a 4-D tensor as XNNPACK's global average
    pooling): ``input_scale / (output_scale · float32(count))``, float32 each step
    (global-average-pooling-nwc.c). The output is then ``round_half_even(float32(Σx −
    count·z_in) · scale) + z_out``: :func:`requantize` with ``rounding="fp32"``. ValueError
    for an input/output scale ratio outside :data:`XNNPACK_MEAN_RATIO`, which XNNPACK refuses.
    """
    s_in, s_out = _scale32("input_scale", input_scale), _scale32("output_scale", output_scale)
    if int(count) < 1:
        raise ValueError(f"count must be at least 1; got {count!r}")
    lo, hi = XNNPACK_MEAN_RATIO
    ratio = s_in / s_out
    if not lo <= ratio < hi:
        raise ValueError(f"input_scale / output_scale must be in [{lo:g}, {hi:g}) (XNNPACK "
                         f"refuses others); got {float(ratio)!r}")
    return np.float32(s_in / (s_out * np.float32(count)))


def tflite_multiplier(input_scale, weight_scale, output_scale):
    """(m0, shift) of a convolution/fully-connected layer, derived as TFLite derives it.

    Scales are float32 in a .tflite file. Per tensor (scalar ``weight_scale``),
    GetQuantizedConvolutionMultipler multiplies input and weight scale in float32 and divides
    in double; per channel (array ``weight_scale``) PopulateConvolutionQuantizationParams
    computes the whole ``input · weight / output`` in double. The two can differ in the last
    bit of m0.
    """
    s_in, weight, s_out = _layer_scales(input_scale, "weight_scale", weight_scale,
                                        output_scale)
    if weight.ndim == 0:
        product = np.float64(np.float32(s_in * weight))  # float32 product, as TFLite
        real = product / np.float64(s_out)
    else:
        real = np.float64(s_in) * weight.astype(np.float64) / np.float64(s_out)
    return quantize_multiplier(real)


def conv_multiplier(input_scale, filter_scale, output_scale):
    """(m0, shift) arrays of an int8 CONV_2D or DEPTHWISE_CONV_2D, one per output channel.

    TFLite's int8 convolutions are always per-channel: PopulateConvolutionQuantizationParams
    (kernel_util.cc) computes ``double(input_scale)·double(filter_scale[c])/double(output_scale)``
    for every channel, also when the filter has one scale (then used for every channel). This
    is not :func:`tflite_multiplier` with a scalar filter scale, which is FULLY_CONNECTED's
    float32 product. Multipliers ≥ 1 (positive shifts) are returned as they are. A scalar
    ``filter_scale`` gives 1-element arrays (broadcast them over the channels).
    """
    weight = np.atleast_1d(np.asarray(filter_scale, dtype=np.float32))
    if weight.ndim != 1:
        raise ValueError(f"filter_scale must be a scalar or 1-D; got shape {weight.shape}")
    return tflite_multiplier(input_scale, weight, output_scale)


def activation_range(activation, scale, zero_point, *, bits=8, signed=True):
    """TFLite CalculateActivationRangeQuantized: (act_min, act_max) of a fused activation.

    ``quantize(f) = zero_point + round(f / scale)`` with the division in float32 and
    std::round (ties away from zero), clipped to the output type's range.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; "
                         f"got {activation!r}")
    if not (2 <= int(bits) <= 32):
        raise ValueError(f"bits must be in 2..32; got {bits}")
    qmin = -(1 << (bits - 1)) if signed else 0
    qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    scale32 = np.float32(scale)
    if not (np.isfinite(scale32) and scale32 > 0):
        raise ValueError(f"scale must be a positive finite float32; got {scale!r}")

    def quantize(value):
        ratio = Fraction(float(np.float32(value) / scale32))  # the float32 quotient, exactly
        magnitude = int(abs(ratio) + Fraction(1, 2))
        return int(zero_point) + (magnitude if ratio >= 0 else -magnitude)

    if activation == "relu":
        return max(qmin, quantize(0.0)), qmax
    if activation == "relu6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "relu_n1_to_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    return qmin, qmax
