"""Exact rounding division by any integer s ≥ 1, as the requantizer computes it.

A σ-quantized layer under Q_{p,s} (seed 001, :mod:`golden.fixedpoint_set`) ends in
``round(acc / s)``, ties away from zero, where ``acc = s·q_b + Σ q_w·q_x`` is the integer
accumulator of numerators. The requantizer has no divider; it computes one of

* ``requant="shift"``: ``round(acc / 2^n)`` (M = 2^(−n)), exact when s = 2^n;
* ``requant="multiplier"`` with the single-rounding mode ``"half_away_from_zero"``:
  ``round(acc·c / 2^k)`` rounded once, with M0 = c and TFLite's shift = 31 − k.

For any other s, :func:`exact_divider` picks ``c = ⌈2^k / s⌉`` and proves that the
multiply-by-reciprocal equals ``round(acc / s)`` for every ``|acc| ≤ B``.

The argument (exact integers only)
----------------------------------
Let ``e = c·s − 2^k``; ``c = ⌈2^k/s⌉`` makes ``0 ≤ e < s``. Both roundings are odd functions
of ``acc`` (ties away from zero, c > 0), so it suffices to take ``0 ≤ a ≤ B``. For a ≥ 0,
ties away from zero is ``round(x) = ⌊x + 1/2⌋``.

Write ``2a + s = 2s·n + r`` with ``0 ≤ r ≤ 2s − 1``; then ``round(a/s) = ⌊(2a + s)/(2s)⌋ = n``.
The multiplier computes ``⌊y⌋`` with ::

    y = a·c/2^k + 1/2 = (2a + s)/(2s) + a·e/(s·2^k) = n + r/(2s) + a·e/(s·2^k).

Since ``e ≥ 0``, ``y ≥ n``. And ``y < n + 1`` iff ``r·2^k + 2·a·e < 2s·2^k``; with
``r ≤ 2s − 1`` this holds whenever ``2·a·e < 2^k``, i.e. ``a·e < 2^(k−1)``. Hence

    **B·(c·s − 2^k) < 2^(k−1)  ⟹  round(acc·c / 2^k) = round(acc / s) for all |acc| ≤ B**

(:func:`reciprocal_is_exact`). The condition is sufficient, not necessary (it assumes the
worst remainder r = 2s − 1 at the largest a). With a normalized ``c ≥ 2^30`` it holds for
every ``B < 2^29``: ``2^k > (c − 1)·s ≥ (2^30 − 1)·s`` and ``e ≤ s − 1`` give
``B·e < 2^29·(s − 1) < 2^(k−1)``; a larger B (int32 accumulators reach 2^31) may have no
constant, and then :func:`exact_divider` says so.
The floor constant ``c = ⌊2^k/s⌋`` (e < 0) is not used: at a tie (r = 0, s even) it rounds
below n for every a > 0 with e ≠ 0.

The hardware's range bounds c and k: M0 in [2^30, 2^31 − 1] (:data:`M0_RANGE`, a normalized
Q0.31 multiplier) and TFLite's shift in [−31, 30] (single rounding's, :data:`SHIFT_RANGE`;
an array's ``max_left_shift`` narrows the top). :func:`exact_divider` tries every k whose
``⌈2^k/s⌉`` lies in that range, largest first, and raises ``ValueError`` when none satisfies
the condition for B.
"""

import operator
from dataclasses import dataclass

from .tflite import INT32_MAX, multiply_by_quantized_multiplier, requantize

__all__ = ["DIVISION_ROUNDING", "M0_RANGE", "SHIFT_RANGE", "ExactDivider", "exact_divider",
           "reciprocal_is_exact"]

#: The requantizer's single-rounding mode that divides by s with the paper's tie rule.
DIVISION_ROUNDING = "half_away_from_zero"
#: M0 of a normalized multiplier, as the requantizer holds it (unsigned Q0.31 in [1/2, 1)).
M0_RANGE = (1 << 30, INT32_MAX)
#: TFLite's shift (M = M0·2^(shift − 31)) with single rounding: total right shift 1..62.
SHIFT_RANGE = (-31, 30)
#: TFLite's multiplier has 31 fraction bits: k = FRACTION_BITS − shift.
FRACTION_BITS = 31


def _int(name, value, lo, hi=None):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if value < lo or (hi is not None and value > hi):
        allowed = f"in [{lo}, {hi}]" if hi is not None else f"≥ {lo}"
        raise ValueError(f"{name} must be {allowed}, not {value}")
    return value


def _pair(name, value):
    lo, hi = (operator.index(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} must be (lo, hi) with lo ≤ hi, not {value!r}")
    return lo, hi


def reciprocal_is_exact(s, bound, m0, k):
    """The proof's condition: ``m0 = ⌈2^k/s⌉`` and ``bound·(m0·s − 2^k) < 2^(k−1)``.

    True means ``round(a·m0 / 2^k) = round(a / s)`` (ties away from zero) for every
    ``|a| ≤ bound`` (module docstring).
    """
    s = _int("s", s, 1)
    bound = _int("bound", bound, 0)
    m0 = _int("m0", m0, 1)
    k = _int("k", k, 1)
    if m0 != -(-(1 << k) // s):
        return False
    return bound * (m0 * s - (1 << k)) < 1 << (k - 1)


@dataclass(frozen=True)
class ExactDivider:
    """Requantizer parameters that divide by ``s`` exactly for every ``|acc| ≤ bound``.

    Members
    -------
    s, bound : int
        The divisor and the accumulator bound the proof covers.
    multiplier : int or None
        M0 = ⌈2^k/s⌉ (``requant="multiplier"``), or None when s is a power of two
        (``requant="shift"``).
    shift : int
        TFLite's shift: M = M0·2^(shift − 31), or M = 2^shift for a power of two.
    """

    s: int
    bound: int
    multiplier: int | None
    shift: int

    @property
    def requant(self):
        """The :class:`hw.config.ArrayConfig` ``requant`` this divider needs."""
        return "shift" if self.multiplier is None else "multiplier"

    def __call__(self, acc):
        """``round(acc / s)``, ties away from zero, as the requantizer computes it (golden's
        :func:`golden.tflite.requantize` / ``multiply_by_quantized_multiplier``)."""
        if self.multiplier is None:
            return requantize(acc, multiplier=None, shift=self.shift, output_zero_point=0,
                              act_min=-(1 << 62), act_max=1 << 62, rounding=DIVISION_ROUNDING)
        return multiply_by_quantized_multiplier(acc, self.multiplier, self.shift,
                                                rounding=DIVISION_ROUNDING)


def exact_divider(s, bound, *, m0_range=M0_RANGE, shift_range=SHIFT_RANGE):
    """The :class:`ExactDivider` for ``s`` over accumulators ``|acc| ≤ bound``.

    A power of two s = 2^n is the shift-only requantizer, shift = −n (exact for any bound).
    Otherwise M0 = ⌈2^k/s⌉ with the largest k = 31 − shift, shift in ``shift_range``, whose M0
    lies in ``m0_range`` and satisfies :func:`reciprocal_is_exact`. Raises ValueError when no
    such constant exists.
    """
    s = _int("s", s, 1)
    bound = _int("bound", bound, 0)
    m0_lo, m0_hi = _pair("m0_range", m0_range)
    shift_lo, shift_hi = _pair("shift_range", shift_range)
    if s & (s - 1) == 0:
        n = s.bit_length() - 1
        if not shift_lo <= -n <= shift_hi:
            raise ValueError(f"s must be at most 2^{-shift_lo} for a shift-only division "
                             f"(shift in [{shift_lo}, {shift_hi}]), not {s}")
        return ExactDivider(s, bound, None, -n)
    tried = []
    for shift in range(shift_lo, shift_hi + 1):          # largest k first
        k = FRACTION_BITS - shift
        m0 = -(-(1 << k) // s)
        if not m0_lo <= m0 <= m0_hi:
            continue
        if reciprocal_is_exact(s, bound, m0, k):
            return ExactDivider(s, bound, m0, shift)
        tried.append(f"k={k}: M0={m0}, bound·e={bound * (m0 * s - (1 << k))} ≥ 2^{k - 1}")
    raise ValueError(
        f"bound must be small enough for an exact division by s={s}: no M0 in "
        f"[{m0_lo}, {m0_hi}] with shift in [{shift_lo}, {shift_hi}] has "
        f"bound·(M0·s − 2^k) < 2^(k−1) for bound={bound}"
        + (f" ({'; '.join(tried)})" if tried else " (no k puts ⌈2^k/s⌉ in range)"))
