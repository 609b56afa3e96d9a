"""Lab 2: affine quantization r = S·(q − Z). Fill in every TODO; `qmac lab check 2` grades it.

Arrays are numpy arrays; codes are int64 arrays, reals float64. Round half away from zero
(TFLite's TfLiteRound), never numpy's ``np.round`` (ties to even).
"""

import numpy as np


def qrange(bits, signed, narrow_range=False):
    """(qmin, qmax) of ``bits``-wide codes: [−2^(b−1), 2^(b−1) − 1] signed, [0, 2^b − 1]
    unsigned; ``narrow_range`` drops the most negative code (−127..127 at 8 bits)."""
    # SOLUTION: two's complement ranges.
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return (lo + 1 if narrow_range else lo), hi
    # END SOLUTION


def round_half_away(values):
    """``values`` rounded to integers, ties away from zero (float64 array of integers)."""
    # SOLUTION: sign(x)·floor(|x| + 1/2).
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.floor(np.abs(values) + 0.5)
    # END SOLUTION


def qparams(rmin, rmax, bits=8, signed=True, symmetric=False, narrow_range=False):
    """Scale S (float) and zero point Z (int) representing the real range [rmin, rmax].

    The range is first extended to contain 0 (rmin ← min(rmin, 0), rmax ← max(rmax, 0)), so
    that the real 0 is exactly a code. With (qmin, qmax) = :func:`qrange`:

    * asymmetric: S = (rmax − rmin) / (qmax − qmin), Z = qmin − round(rmin / S), clipped to
      [qmin, qmax];
    * symmetric: S = max(−rmin, rmax) / ⌊(qmax − qmin) / 2⌋, Z = 0 (signed) or the middle code
      (qmin + qmax + 1) // 2 (unsigned).

    A range that is all zero gets S = 1.
    """
    # SOLUTION: follow the formulas; round with round_half_away.
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    qmin, qmax = qrange(bits, signed, narrow_range)
    if symmetric:
        scale = max(-rmin, rmax) / ((qmax - qmin) // 2)
        zero_point = 0 if signed else (qmin + qmax + 1) // 2
        return (scale if scale > 0 else 1.0), zero_point
    scale = (rmax - rmin) / (qmax - qmin)
    scale = scale if scale > 0 else 1.0
    zero_point = int(np.clip(qmin - round_half_away(rmin / scale), qmin, qmax))
    return scale, zero_point
    # END SOLUTION


def quantize(r, scale, zero_point, bits=8, signed=True, narrow_range=False):
    """q = clamp(round(r / S) + Z, qmin, qmax), ties away from zero, as an int64 array.

    ``scale`` and ``zero_point`` are scalars, or arrays that broadcast against ``r``
    (per-channel parameters shaped like [N, 1] for weights [N, K])."""
    # SOLUTION: divide, round, add the zero point, clamp.
    qmin, qmax = qrange(bits, signed, narrow_range)
    q = round_half_away(np.asarray(r, dtype=np.float64) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int64)
    # END SOLUTION


def dequantize(q, scale, zero_point):
    """r = S·(q − Z) as float64 (parameters broadcast as in :func:`quantize`)."""
    # SOLUTION: subtract the zero point in integers, then scale.
    return scale * (np.asarray(q, dtype=np.int64) - zero_point).astype(np.float64)
    # END SOLUTION


def per_channel_scales(w, bits=8):
    """Per-output-channel symmetric scales of weights ``w`` [N, K] (TFLite's int8 weights:
    signed, narrow range, Z = 0): S_n = max_k |w[n, k]| / qmax, a float64 array of N
    (1 for an all-zero row)."""
    # SOLUTION: the largest magnitude of each row over qmax of the narrow range.
    qmax = qrange(bits, True, narrow_range=True)[1]
    scale = np.abs(np.asarray(w, dtype=np.float64)).max(axis=1) / qmax
    return np.where(scale > 0, scale, 1.0)
    # END SOLUTION


def quantize_weights(w, bits=8):
    """``w`` [N, K] quantized per channel with :func:`per_channel_scales` and dequantized
    again: the float weights the integer network really multiplies by (what PTQ stores)."""
    # SOLUTION: quantize with scales shaped [N, 1], then dequantize.
    scale = per_channel_scales(w, bits)[:, None]
    return dequantize(quantize(w, scale, 0, bits, True, narrow_range=True), scale, 0)
    # END SOLUTION


def percentile_qparams(data, percentile, bits=8, signed=True):
    """Asymmetric (S, Z) calibrated on ``data`` ignoring outliers: the range is
    [np.percentile(data, 100 − percentile), np.percentile(data, percentile)]
    (``percentile`` in (50, 100]; 100 is the min/max calibration)."""
    # SOLUTION: the two percentiles, then qparams.
    data = np.asarray(data, dtype=np.float64)
    return qparams(np.percentile(data, 100 - percentile), np.percentile(data, percentile),
                   bits, signed)
    # END SOLUTION


def fake_quant(x, scale, zero_point, bits=8, signed=True):
    """Quantization-aware training's forward and backward: ``(y, grad)``.

    y = dequantize(quantize(x)) (same shape as x). The straight-through estimator (STE)
    treats rounding as the identity in the backward pass, so ∂y/∂x = 1 where x lies in the
    representable range [S·(qmin − Z), S·(qmax − Z)] (ends included) and 0 where the clamp
    cut it: ``grad`` is that float64 array of ones and zeros.
    """
    # SOLUTION: y from quantize/dequantize; grad from the clamp's range.
    qmin, qmax = qrange(bits, signed)
    x = np.asarray(x, dtype=np.float64)
    y = dequantize(quantize(x, scale, zero_point, bits, signed), scale, zero_point)
    inside = (x >= scale * (qmin - zero_point)) & (x <= scale * (qmax - zero_point))
    return y, inside.astype(np.float64)
    # END SOLUTION
