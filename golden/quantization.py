"""Affine quantization r = S·(q − Z) (Jacob et al. 2018; the seeds' course slides).

:class:`QuantParams` holds scale(s) S and zero point(s) Z for signed or unsigned integers of
2..16 bits, full or narrow range (narrow drops the most negative code, so a symmetric signed
range is ±(2^(b−1) − 1)), per tensor or per channel (``axis``). Parameters come from a real
range (:func:`choose_qparams`) or from data (:func:`calibrate`: min/max or percentiles).
Rounding to codes is ties away from zero (TFLite's ``TfLiteRound``); a quantized value then
lies within S/2 of the real one whenever the real one is inside the representable range.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["QuantParams", "calibrate", "choose_qparams", "dequantize", "qrange", "quantize"]


def qrange(bits, signed, narrow_range=False):
    """(qmin, qmax) of ``bits``-wide codes."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an integer in 2..16; got {bits!r}")
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return (lo + 1 if narrow_range else lo), hi


@dataclass(frozen=True)
class QuantParams:
    """Scale(s) and zero point(s); arrays of one entry per channel along ``axis``, or 0-D."""
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int = 8
    signed: bool = True
    narrow_range: bool = False
    axis: int | None = None

    def __post_init__(self):
        scale = np.asarray(self.scale, dtype=np.float64)
        zero_point = np.asarray(self.zero_point, dtype=np.int64)
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"scale must be positive and finite; got {self.scale!r}")
        qmin, qmax = qrange(self.bits, self.signed, self.narrow_range)
        if ((zero_point < qmin) | (zero_point > qmax)).any():
            raise ValueError(f"zero_point must be in {qmin}..{qmax}; got {self.zero_point!r}")
        if (self.axis is None) != (scale.ndim == 0):
            raise ValueError("per-channel parameters need an axis and 1-D scales; per-tensor "
                             f"ones a scalar scale (axis={self.axis}, scale shape {scale.shape})")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", np.broadcast_to(zero_point, scale.shape).copy())

    @property
    def qmin(self):
        return qrange(self.bits, self.signed, self.narrow_range)[0]

    @property
    def qmax(self):
        return qrange(self.bits, self.signed, self.narrow_range)[1]

    def _broadcast(self, values, ndim):
        if self.axis is None:
            return values
        shape = [1] * ndim
        shape[self.axis] = -1
        return values.reshape(shape)


def _round_half_away(values):
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def choose_qparams(rmin, rmax, *, bits=8, signed=True, symmetric=False, narrow_range=False,
                   axis=None, power_of_two=False):
    """Scale and zero point that represent [rmin, rmax] (extended to contain 0).

    Asymmetric: S = (rmax − rmin)/(qmax − qmin), Z = qmin − round(rmin/S) clamped (the real 0
    is exactly representable). Symmetric: S = max|r| / ((qmax − qmin)/2) and Z the middle code
    (0 signed, 2^(b−1) unsigned). ``power_of_two`` rounds S up to a power of two so that
    requantization is a shift. Arrays of rmin/rmax with ``axis`` give per-channel parameters.
    """
    rmin = np.minimum(np.asarray(rmin, dtype=np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, dtype=np.float64), 0.0)
    if not (np.isfinite(rmin).all() and np.isfinite(rmax).all()):
        raise ValueError("rmin and rmax must be finite")
    qmin, qmax = qrange(bits, signed, narrow_range)
    if symmetric:
        half = (qmax - qmin) // 2
        scale = np.maximum(-rmin, rmax) / half
        middle = 0 if signed else (qmin + qmax + 1) // 2
    else:
        scale = (rmax - rmin) / (qmax - qmin)
    scale = np.where(scale > 0, scale, 1.0)  # an all-zero range: any scale represents it
    if power_of_two:
        scale = np.exp2(np.ceil(np.log2(scale)))
    if symmetric:
        zero_point = np.full(scale.shape, middle, dtype=np.int64)
    else:
        zero_point = np.clip(qmin - _round_half_away(rmin / scale), qmin, qmax).astype(np.int64)
    return QuantParams(scale=scale, zero_point=zero_point, bits=bits, signed=signed,
                       narrow_range=narrow_range, axis=axis if scale.ndim else None)


def calibrate(data, *, method="minmax", percentile=99.99, axis=None, **options):
    """Quantization parameters calibrated on ``data``: its min/max, or the given percentiles
    (``percentile`` and 100 − ``percentile``) to ignore outliers. ``axis`` keeps one set of
    parameters per index along that axis; other options go to :func:`choose_qparams`."""
    data = np.asarray(data, dtype=np.float64)
    reduce = None if axis is None else tuple(i for i in range(data.ndim) if i != axis)
    if method == "minmax":
        lo, hi = data.min(axis=reduce), data.max(axis=reduce)
    elif method == "percentile":
        if not 50 < percentile <= 100:
            raise ValueError(f"percentile must be in (50, 100]; got {percentile}")
        lo = np.percentile(data, 100 - percentile, axis=reduce)
        hi = np.percentile(data, percentile, axis=reduce)
    else:
        raise ValueError(f"method must be 'minmax' or 'percentile'; got {method!r}")
    return choose_qparams(lo, hi, axis=axis, **options)


def quantize(real, params):
    """q = clamp(round(r / S) + Z, qmin, qmax), ties away from zero; int64."""
    real = np.asarray(real, dtype=np.float64)
    scale = params._broadcast(params.scale, real.ndim)
    zero_point = params._broadcast(params.zero_point, real.ndim)
    q = _round_half_away(real / scale) + zero_point
    return np.clip(q, params.qmin, params.qmax).astype(np.int64)


def dequantize(q, params):
    """r = S·(q − Z), float64."""
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"q must hold integers, not {q.dtype}")
    scale = params._broadcast(params.scale, q.ndim)
    zero_point = params._broadcast(params.zero_point, q.ndim)
    return scale * (q.astype(np.int64) - zero_point).astype(np.float64)
