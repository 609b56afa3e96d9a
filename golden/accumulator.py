"""Accumulator sizing: the exact bounds and width of a K-deep integer dot product.

The seeds' rule is an accumulator of 2N+M bits for N-bit operands and M = ⌈log2 K⌉ guard
bits. qmac computes the width exactly from the operand ranges instead: for full-range signed
N-bit operands the largest sum is K·(−2^(N−1))² = K·2^(2N−2), which needs 2N + ⌊log2 K⌋ bits,
i.e. exactly 2N+M when K is a power of two and one bit less otherwise. Zero points, unsigned
operands, binary and ternary weights all come out of the same computation.
"""

import operator

__all__ = [
    "WEIGHT_KINDS", "accumulator_bits", "dot_product_bounds", "guard_bits", "operand_range",
    "product_bounds", "signed_width",
]

WEIGHT_KINDS = ("integer", "binary", "ternary")


def _int(name, value, lo=None, hi=None):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        allowed = f"in {lo}..{hi}" if hi is not None else f"≥ {lo}"
        raise ValueError(f"{name} must be {allowed}; got {value}")
    return value


def _range(name, value):
    try:
        lo, hi = (operator.index(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of integers (lo, hi), not {value!r}") from None
    if lo > hi:
        raise ValueError(f"{name} must have lo ≤ hi; got {value!r}")
    return lo, hi


def operand_range(bits, signed, zero_point=0, *, kind="integer"):
    """Range (lo, hi) of ``q − zero_point`` for a ``bits``-wide operand.

    ``kind="binary"`` is {−1, +1} and ``kind="ternary"`` {−1, 0, +1}, whatever ``bits`` says
    (one and two bits of storage); their zero point must be 0.
    """
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(WEIGHT_KINDS)}; got {kind!r}")
    zero_point = _int("zero_point", zero_point)
    if kind != "integer":
        if zero_point:
            raise ValueError(f"zero_point of {kind} operands must be 0; got {zero_point}")
        return -1, 1
    bits = _int("bits", bits, 1, 64)
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return lo - zero_point, hi - zero_point


def signed_width(lo, hi):
    """Fewest two's complement bits holding every integer in [lo, hi]."""
    lo, hi = _range("range", (lo, hi))
    # w bits hold [−2^(w−1), 2^(w−1) − 1]: both −lo−1 and hi need at most w−1 magnitude bits
    return 1 + max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length() if hi > 0 else 0)


def product_bounds(a_range, b_range):
    """Range of ``a·b`` for a in ``a_range``, b in ``b_range`` (a corner attains each end)."""
    a_lo, a_hi = _range("a_range", a_range)
    b_lo, b_hi = _range("b_range", b_range)
    corners = (a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi)
    return min(corners), max(corners)


def dot_product_bounds(depth, a_range, b_range):
    """Exact range of every sum of at most ``depth`` products (an accumulator starts at 0)."""
    depth = _int("depth", depth, 1)
    lo, hi = product_bounds(a_range, b_range)
    return depth * min(lo, 0), depth * max(hi, 0)


def guard_bits(depth):
    """The seeds' M = ⌈log2 K⌉: bits a K-deep sum may add to one product."""
    depth = _int("depth", depth, 1)
    return (depth - 1).bit_length()


def accumulator_bits(depth, a_range, b_range):
    """Exact minimal signed width holding every depth-``depth`` dot product of the ranges."""
    return signed_width(*dot_product_bounds(depth, a_range, b_range))
