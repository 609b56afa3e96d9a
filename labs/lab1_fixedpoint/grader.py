"""Lab 1 autograder: every student function against golden/ or numpy's IEEE 754 casts, on
data drawn from the run's seed (labs.grading)."""

from fractions import Fraction

import numpy as np

from golden.fixedpoint_set import FixedPointSet
from golden.rounding import ROUNDING_MODES, round_div, round_shift
from labs.grading import Lab, Part, require

#: How many random cases each property draws.
CASES = 400
#: Rounding modes that round to nearest (the ones double rounding can break).
NEAREST_MODES = tuple(mode for mode in ROUNDING_MODES if mode.startswith("half_"))
FLOAT32_EXPONENT = 255          # the all-ones exponent field: infinities and NaNs
FLOAT32_FRACTION_BITS = 23


def _ints(rng, lo, hi, size=CASES):
    return [int(v) for v in rng.integers(lo, hi, size=size, endpoint=True)]


def check_round_div(student, rng):
    divisors = _ints(rng, 1, 1 << 20)
    numerators = _ints(rng, -(1 << 40), 1 << 40)
    cases = list(zip(numerators, divisors, strict=True))
    # exact ties, and every small case
    cases += [(q * 2 * h + h, 2 * h) for q, h in zip(_ints(rng, -1000, 1000),
                                                      _ints(rng, 1, 1 << 10), strict=True)]
    cases += [(x, d) for x in range(-9, 10) for d in range(1, 6)]
    for mode in ROUNDING_MODES:
        for x, d in cases:
            got, expected = student.round_div(x, d, mode), round_div(x, d, mode)
            require(got == expected,
                    f"round_div({x}, {d}, {mode!r}) returned {got!r}, expected {expected}")


def _float32_of(bits):
    return Fraction(float(np.array(bits, dtype=np.uint32).view(np.float32)))


def check_float32_value(student, rng):
    patterns = _ints(rng, 0, (1 << 32) - 1)
    patterns += [int(v) for v in rng.integers(0, 1 << FLOAT32_FRACTION_BITS, size=20)]  # subnormal
    patterns += [0, 1 << 31, 1, (1 << 23) - 1, 1 << 23]
    for bits in patterns:
        if (bits >> FLOAT32_FRACTION_BITS) & FLOAT32_EXPONENT == FLOAT32_EXPONENT:
            try:
                student.float32_value(bits)
            except ValueError:
                continue
            raise AssertionError(f"float32_value({bits:#010x}) (infinity or NaN) must raise "
                                 "ValueError")
        got, expected = student.float32_value(bits), _float32_of(bits)
        require(got == expected, f"float32_value({bits:#010x}) returned {got!r}, expected "
                                 f"{expected} ({float(expected)!r})")


def _float32_bits(value):
    """numpy's correctly rounded cast (ties to even) of ``value``, exact in float64."""
    return int(np.array(float(value), dtype=np.float64).astype(np.float32).view(np.uint32))


def check_float32_round(student, rng):
    values = []
    for _ in range(CASES):          # any float64 from 2^−160 to 2^127
        mantissa = int(rng.integers(1 << 52, 1 << 53))
        exponent = int(rng.integers(-212, 75))
        values.append((-1) ** int(rng.integers(2)) * Fraction(mantissa) * Fraction(2) ** exponent)
    for _ in range(CASES // 2):     # exact ties halfway between two binary32 neighbours
        significand = int(rng.integers(1 << 23, 1 << 24))
        exponent = int(rng.integers(-170, 103))
        values.append((-1) ** int(rng.integers(2)) *
                      Fraction(2 * significand + 1) * Fraction(2) ** exponent)
    values += [Fraction(0), Fraction(1), Fraction(-3, 2), Fraction(1, 10)]
    for value in values:
        got, expected = student.float32_round(value), _float32_bits(value)
        require(got == expected, f"float32_round({value}) ≈ float32_round({float(value)!r}) "
                                 f"returned {got!r}, expected {expected:#010x}")


def check_double_rounding(student, rng):
    for _ in range(CASES // 4):
        n1, n2 = int(rng.integers(2, 31)), int(rng.integers(1, 31))
        mode = NEAREST_MODES[int(rng.integers(len(NEAREST_MODES)))]
        x = student.double_rounding_example(n1, n2, mode)
        require(isinstance(x, int) and abs(x) < 1 << 62,
                f"double_rounding_example({n1}, {n2}, {mode!r}) must return an int below "
                f"2^62 in magnitude, not {x!r}")
        twice, once = round_shift(round_shift(x, n1, mode), n2, mode), round_shift(x, n1 + n2,
                                                                                  mode)
        require(twice != once, f"double_rounding_example({n1}, {n2}, {mode!r}) returned {x}, "
                               f"but rounding it twice gives {twice}, as rounding once does")


def _random_q(rng, count=CASES):
    return [(int(rng.integers(1, 13)), int(rng.integers(1, 65))) for _ in range(count)]


def check_round_to_q(student, rng):
    for p, s in _random_q(rng):
        qset = FixedPointSet(p, s)
        limit = 2 * qset.q_max
        denominator = int(rng.integers(1, 4 * s + 1))
        for value in (Fraction(int(rng.integers(-limit * denominator, limit * denominator)),
                               denominator),
                      Fraction(2 * int(rng.integers(-limit, limit)) + 1, 2 * s)):   # a tie
            got, expected = student.round_to_q(value, p, s), qset.round(value)
            require(got == expected,
                    f"round_to_q({value}, p={p}, s={s}) returned {got!r}, expected {expected}")


def check_fixed_point_dot(student, rng):
    for p, s in _random_q(rng, CASES // 4):
        qset = FixedPointSet(p, s)
        n = int(rng.integers(1, 20))
        w = [int(v) for v in rng.integers(-qset.q_max, qset.q_max, size=n, endpoint=True)]
        x = [int(v) for v in rng.integers(-qset.q_max, qset.q_max, size=n, endpoint=True)]
        total = None
        for wi, xi in zip(w, x, strict=True):
            product = qset.round(Fraction(wi * xi, s * s))
            total = product if total is None else qset.round(Fraction(total + product, s))
        got = student.fixed_point_dot(w, x, p, s)
        require(got == total, f"fixed_point_dot(w={w}, x={x}, p={p}, s={s}) returned {got!r}, "
                              f"expected {total}")


LAB = Lab(
    number=1, title="Fixed point and rounding", package="lab1_fixedpoint", module="fixedpoint",
    minutes=90,
    parts=(
        Part("round_div: the five tie rules", 3, ("round_div",), check_round_div),
        Part("float32_value: decode IEEE 754 binary32", 2, ("float32_value",),
             check_float32_value),
        Part("float32_round: round to binary32, ties to even", 3, ("float32_round",),
             check_float32_round),
        Part("double_rounding_example: rounding twice ≠ once", 2,
             ("double_rounding_example",), check_double_rounding),
        Part("round_to_q: rounding onto Q_{p,s}", 2, ("round_to_q",), check_round_to_q),
        Part("fixed_point_dot: ⊗ and ⊕ on Q_{p,s}", 3, ("fixed_point_dot", "round_to_q"),
             check_fixed_point_dot),
    ))
