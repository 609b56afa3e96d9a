"""Lab 1: fixed point and rounding. Fill in every TODO; `qmac lab check 1` grades this file.

Numbers stay exact: Python ints and :class:`fractions.Fraction`, never floats, except where a
function is about floats.
"""

from fractions import Fraction

#: The five tie rules of the lab (the names golden.rounding uses).
MODES = ("half_away_from_zero", "half_to_even", "half_up", "floor", "toward_zero")

#: IEEE 754 binary32: 1 sign bit, 8 exponent bits (bias 127), 23 fraction bits.
EXPONENT_BITS, FRACTION_BITS, BIAS = 8, 23, 127


def round_div(x, d, mode):
    """``x / d`` rounded to an integer with the tie rule ``mode`` (one of :data:`MODES`).

    ``x`` is any int, ``d`` a positive int. ``half_*`` modes round to the nearest integer and
    differ only on ties (``x / d`` exactly halfway): away from zero, to the even neighbour,
    toward +∞. ``floor`` rounds toward −∞, ``toward_zero`` truncates. Use integer arithmetic
    only (``divmod``), never ``/`` or ``round``.
    """
    # SOLUTION: divmod gives the floor quotient q and a remainder 0 ≤ r < d; compare 2r with d.
    q, r = divmod(x, d)
    if mode == "floor":
        return q
    if mode == "toward_zero":
        return q + (1 if r and x < 0 else 0)
    above, tie = 2 * r > d, 2 * r == d
    if mode == "half_up":
        return q + (above or tie)
    if mode == "half_away_from_zero":
        return q + (above or (tie and x >= 0))
    if mode == "half_to_even":
        return q + (above or (tie and q % 2 == 1))
    raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    # END SOLUTION


def float32_value(bits):
    """The exact value (a Fraction) of the IEEE 754 binary32 bit pattern ``bits``.

    ``bits`` is an int in [0, 2^32): sign, 8-bit biased exponent E, 23-bit fraction F.
    Normal numbers (0 < E < 255) are (−1)^sign · (1 + F/2^23) · 2^(E − 127); subnormals (E = 0)
    are (−1)^sign · (F/2^23) · 2^(−126). Raise ValueError for infinities and NaNs (E = 255).
    """
    # SOLUTION: split the fields with shifts and masks, then build the Fraction.
    sign = -1 if bits >> 31 else 1
    exponent = (bits >> FRACTION_BITS) & ((1 << EXPONENT_BITS) - 1)
    fraction = bits & ((1 << FRACTION_BITS) - 1)
    if exponent == (1 << EXPONENT_BITS) - 1:
        raise ValueError(f"bits {bits:#010x} is an infinity or a NaN")
    if exponent == 0:
        significand, exponent = Fraction(fraction, 1 << FRACTION_BITS), 1
    else:
        significand = 1 + Fraction(fraction, 1 << FRACTION_BITS)
    return sign * significand * Fraction(2) ** (exponent - BIAS)
    # END SOLUTION


def float32_round(value):
    """The binary32 bit pattern nearest to ``value`` (a Fraction), ties to even, as IEEE 754's
    default rounding does.

    ``value`` lies below the largest binary32 in magnitude. Zero gives 0 (+0). Values below
    the smallest normal 2^−126 round onto the subnormal grid (steps of 2^−149); a significand
    that rounds up to 2^24 carries into the exponent.
    """
    # SOLUTION: find the exponent e with 2^e ≤ |value| < 2^(e+1), scale so 24 bits are integer,
    # round half to even with round_div, carry, then pack the fields.
    if value == 0:
        return 0
    sign = 1 if value < 0 else 0
    magnitude = abs(Fraction(value))
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    exponent = max(exponent, 1 - BIAS)                    # subnormals share 2^−126's grid
    scaled = magnitude * Fraction(2) ** (FRACTION_BITS - exponent)
    significand = round_div(scaled.numerator, scaled.denominator, "half_to_even")
    if significand >> (FRACTION_BITS + 1):                 # rounded up to 2^24: carry
        significand >>= 1
        exponent += 1
    biased = exponent + BIAS if significand >> FRACTION_BITS else 0
    return (sign << 31) | (biased << FRACTION_BITS) | (significand & ((1 << FRACTION_BITS) - 1))
    # END SOLUTION


def double_rounding_example(n1, n2, mode):
    """An int x for which rounding twice differs from rounding once:
    ``round(round(x / 2^n1) / 2^n2) != round(x / 2^(n1 + n2))``, both with the tie rule
    ``mode`` (a ``half_*`` mode), for shifts n1 ≥ 2 and n2 ≥ 1. |x| must stay below 2^62.
    """
    # SOLUTION: put x just off a tie of the whole shift so that the first rounding lands on it.
    n = n1 + n2
    for x in ((1 << (n - 1)) + 1, (1 << (n - 1)) - 1):     # 1/2 ± 2^−n after the whole shift
        if round_div(round_div(x, 1 << n1, mode), 1 << n2, mode) != round_div(x, 1 << n, mode):
            return x
    raise ValueError(f"no example for n1={n1}, n2={n2}, mode={mode!r}")
    # END SOLUTION


def round_to_q(value, p, s):
    """⌈value⌋ on Q_{p,s} = {q/s : q integer, |q| ≤ 2^p − 1}, returned as the numerator q.

    Round ``value`` (a Fraction) to the nearest q/s, ties away from zero, then clip q to
    [−(2^p − 1), 2^p − 1] (seed 001's rounding onto the fixed-point set).
    """
    # SOLUTION: value·s as a fraction n/d, round_div(n, d, "half_away_from_zero"), clip.
    scaled = Fraction(value) * s
    q = round_div(scaled.numerator, scaled.denominator, "half_away_from_zero")
    q_max = (1 << p) - 1
    return max(-q_max, min(q_max, q))
    # END SOLUTION


def fixed_point_dot(w, x, p, s):
    """(w1 ⊗ x1) ⊕ (w2 ⊗ x2) ⊕ … ⊕ (wn ⊗ xn) on Q_{p,s}, as a numerator.

    ``w`` and ``x`` are equal-length lists of numerators (w_i/s, x_i/s in Q_{p,s}). As in the
    seed's slides, a ⊗ b = ⌈a·b⌋ and a ⊕ b = ⌈a + b⌋: every product and every partial sum,
    left to right, is rounded onto Q_{p,s} with :func:`round_to_q`.
    """
    # SOLUTION: round each product, then fold the partial sums left to right.
    total = None
    for wi, xi in zip(w, x, strict=True):
        product = round_to_q(Fraction(wi * xi, s * s), p, s)
        total = product if total is None else round_to_q(Fraction(total + product, s), p, s)
    return total
    # END SOLUTION
