"""Lab 5: the requantizer, in integers and in Amaranth. Fill in every TODO;
``qmac lab check 5`` grades this file.

Python ints throughout (unbounded: you emulate int32/int64 C++ arithmetic yourself).
"""

from fractions import Fraction

from amaranth.hdl import Const, Module, Signal, signed  # noqa: F401 (Signal: yours)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: The rounding shift's tie rules: gemmlowp's RoundingDivideByPOT, TFLite's single rounding.
SHIFT_MODES = ("half_away_from_zero", "half_up")


def srdhm(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul of int32 ``a`` and ``b``: the high 32
    bits of 2·a·b, rounded: (a·b + 2^30) >> 31 when a·b ≥ 0, and with the nudge 1 − 2^30 and
    truncation toward zero when a·b < 0 (which is the same as flooring (a·b + 2^30) / 2^31).
    The one overflow, a = b = −2^31, saturates to 2^31 − 1."""
    # SOLUTION: one exact product, a nudge, a shift; the saturating corner first.
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + (1 << 30)) >> 31
    # END SOLUTION


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: int32 ``x`` / 2^``exponent`` (0 ≤ exponent ≤ 31),
    rounded to nearest, ties away from zero. Integer operations only (masks and shifts)."""
    # SOLUTION: remainder = x & mask; threshold = mask >> 1, plus one when x < 0.
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)
    # END SOLUTION


def quantize_multiplier(real):
    """TFLite's QuantizeMultiplier: (m0, shift) with real ≈ m0 · 2^(shift − 31) and
    2^30 ≤ m0 < 2^31, for 0 < real < 2^31. Write real = q · 2^shift with q in [0.5, 1)
    (``math.frexp``), m0 = round(q · 2^31) half away from zero, computed exactly (Fraction);
    if m0 rounds up to 2^31, halve it and add one to shift. 0 gives (0, 0).

    The slides' example: M = 0.01 = 0.64 · 2^−6, so m0 = round(0.64 · 2^31) = 1374389535 and
    shift = −6 (the slides truncate to 1374389534)."""
    # SOLUTION: frexp is exact; scale the mantissa by 2^31 as a Fraction and round.
    import math

    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = Fraction(q) * (1 << 31)
    m0 = math.floor(scaled + Fraction(1, 2))
    if m0 == 1 << 31:
        m0, shift = m0 // 2, shift + 1
    return m0, shift
    # END SOLUTION


def multiply_by_quantized_multiplier(x, m0, shift, rounding="double"):
    """TFLite's MultiplyByQuantizedMultiplier: int32 ``x`` times m0 · 2^(shift − 31).

    ``"double"`` (TFLite's default build, two roundings): left = max(shift, 0),
    right = max(−shift, 0); rounding_divide_by_pot(srdhm(x · 2^left, m0), right).
    ``"single"`` (TFLITE_SINGLE_ROUNDING): one rounding, half up:
    (x · m0 + 2^(30 − shift)) >> (31 − shift).
    """
    # SOLUTION: the two formulas.
    if rounding == "double":
        left, right = max(shift, 0), max(-shift, 0)
        return rounding_divide_by_pot(srdhm(x * (1 << left), m0), right)
    if rounding == "single":
        total = 31 - shift
        return (x * m0 + (1 << (total - 1))) >> total
    raise ValueError(f"rounding must be 'double' or 'single', not {rounding!r}")
    # END SOLUTION


def requantize(acc, bias, m0, shift, output_zero_point, act_min, act_max, rounding="double"):
    """A layer's int8 output from its int32 accumulator: clamp(MultiplyByQuantizedMultiplier(
    acc + bias, m0, shift) + output_zero_point, act_min, act_max)."""
    # SOLUTION: bias, multiply, zero point, clamp.
    scaled = multiply_by_quantized_multiplier(acc + bias, m0, shift, rounding)
    return max(act_min, min(act_max, scaled + output_zero_point))
    # END SOLUTION


class RoundingShift(wiring.Component):
    """Combinational ``value`` / 2^``amount``, rounded to nearest with the tie rule ``mode``
    (one of :data:`SHIFT_MODES`: ties away from zero as RoundingDivideByPOT, or ties up
    as single rounding).

    Parameters
    ----------
    width : int
        Width of the signed ``value`` and ``result``.
    mode : str
        Tie rule.

    Members
    -------
    value : In(signed(width))
    amount : In(range(width))
        The run-time shift, 0 ≤ amount < width.
    result : Out(signed(width))
        The rounded quotient, with no clock: it follows its inputs in the same cycle.
    """

    def __init__(self, width, mode="half_away_from_zero"):
        if mode not in SHIFT_MODES:
            raise ValueError(f"mode must be one of {', '.join(SHIFT_MODES)}, not {mode!r}")
        self.width, self.mode = width, mode
        super().__init__({
            "value": In(signed(width)),
            "amount": In(range(width)),
            "result": Out(signed(width)),
        })

    def elaborate(self, platform):
        m = Module()
        # SOLUTION: the floor is an arithmetic shift (>> of a signed value); the discarded
        # bits (value & mask) against half of the last kept bit decide whether to add one.
        width = self.width
        one = Const(1, width + 1)
        mask = ((one << self.amount) - 1)[:width]
        half = (one << self.amount)[1:width + 1]
        remainder = self.value.as_unsigned() & mask
        above = remainder > half
        tie = (remainder == half) & (self.amount != 0)
        if self.mode == "half_up":
            up = above | tie
        else:
            up = above | (tie & ~self.value[-1])
        m.d.comb += self.result.eq((self.value >> self.amount) + up)
        # END SOLUTION
        return m
