"""Exact integer rounding of x / 2^n and x / d.

Every function works on Python ints or numpy integer arrays and never leaves the integers:
the quotient is the floor division, and the remainder decides the increment.

Modes (:data:`ROUNDING_MODES`):

``half_away_from_zero``  ties go away from zero (C's ``round``, gemmlowp's RoundingDivideByPOT)
``half_to_even``         ties go to the even neighbour (IEEE 754 default, numpy's ``round``)
``half_up``              ties go toward +∞ (``floor(x + 1/2)``; TFLite's single rounding)
``floor``                toward −∞ (an arithmetic right shift)
``toward_zero``          truncation (C's integer division)
"""

import numpy as np

__all__ = ["ROUNDING_MODES", "check_mode", "round_div", "round_shift"]

ROUNDING_MODES = ("half_away_from_zero", "half_to_even", "half_up", "floor", "toward_zero")


def check_mode(mode):
    """Raise ValueError unless ``mode`` is one of :data:`ROUNDING_MODES`."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode must be one of {', '.join(ROUNDING_MODES)}; "
                         f"got {mode!r}")
    return mode


def _as_int(value, name):
    array = np.asarray(value)
    if array.dtype.kind not in "iu" and not (array.dtype == object):
        raise TypeError(f"{name} must be integers, not {array.dtype}")
    return value if isinstance(value, int) else array


def round_div(x, d, mode="half_away_from_zero"):
    """``x / d`` rounded to an integer with ``mode``; ``d`` > 0.

    Works for int64 arrays with ``d`` ≤ 2^62, and for Python ints (or object arrays) of any
    size.
    """
    check_mode(mode)
    x = _as_int(x, "x")
    d = _as_int(d, "d")
    if np.any(np.asarray(d) <= 0):
        raise ValueError(f"divisor d must be positive; got {d!r}")
    q, r = divmod(x, d)  # floor quotient, 0 <= r < d; 2·r < 2·d cannot overflow
    twice = 2 * r
    above, tie = twice > d, twice == d
    if mode == "floor":
        bump = r < 0  # all False, keeps the shape
    elif mode == "toward_zero":
        bump = (r != 0) & (np.asarray(x) < 0)
    elif mode == "half_up":
        bump = above | tie
    elif mode == "half_away_from_zero":
        bump = above | (tie & (np.asarray(x) >= 0))
    else:  # half_to_even
        bump = above | (tie & (q % 2 == 1))
    result = q + np.asarray(bump).astype(np.int64) if not isinstance(q, int) else q + int(bump)
    return int(result) if isinstance(x, int) and isinstance(d, int) else result


def round_shift(x, n, mode="half_away_from_zero"):
    """``x / 2^n`` rounded with ``mode``; ``n`` ≥ 0 (scalar or array, broadcast with ``x``)."""
    check_mode(mode)
    n_array = np.asarray(n)
    if n_array.dtype.kind not in "iu":
        raise TypeError(f"shift n must be an integer, not {n_array.dtype}")
    if np.any(n_array < 0) or np.any(n_array > 62):
        raise ValueError(f"shift n must be in 0..62; got {n!r}")
    if isinstance(x, int) and isinstance(n, int):
        return round_div(x, 1 << n, mode)
    x = np.asarray(x)
    if x.dtype == object:
        d = np.left_shift(np.ones_like(n_array, dtype=object), n_array.astype(object))
        return round_div(x, d, mode)
    if x.dtype.kind not in "iu":
        raise TypeError(f"x must be integers, not {x.dtype}")
    d = np.left_shift(np.int64(1), n_array.astype(np.int64))
    return round_div(x.astype(np.int64), d, mode)
