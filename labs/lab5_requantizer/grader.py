"""Lab 5 autograder: the student's integer requantizer against golden.tflite, and the
student's Amaranth RoundingShift simulated against golden.rounding."""

import numpy as np
from amaranth.sim import Simulator

from golden.rounding import round_shift
from golden.tflite import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from labs.grading import Lab, Part, require

CASES = 1000
#: The slides' worked example (seed 002): 1234 × 0.01.
SLIDES_REAL, SLIDES_X = 0.01, 1234
#: Widths of the simulated RoundingShift.
SHIFT_WIDTHS = (4, 8, 16, 32, 40)
SHIFT_CASES = 300


def _int32s(rng, size=CASES):
    values = rng.integers(INT32_MIN, INT32_MAX, size=size, endpoint=True)
    small = rng.integers(-1000, 1000, size=size // 4)
    edges = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]
    return [int(v) for v in (*values, *small, *edges)]


def check_srdhm(student, rng):
    a, b = _int32s(rng), _int32s(rng)
    a[:7] = [INT32_MIN] * 7       # the saturating corner meets every edge
    for x, y in zip(a, b, strict=True):
        got, expected = student.srdhm(x, y), saturating_rounding_doubling_high_mul(x, y)
        require(got == expected, f"srdhm({x}, {y}) returned {got!r}, expected {expected}")


def check_rdbpot(student, rng):
    for x in _int32s(rng):
        exponent = int(rng.integers(0, 32))
        for e in (exponent, 1, 0):
            got, expected = student.rounding_divide_by_pot(x, e), rounding_divide_by_pot(x, e)
            require(got == expected, f"rounding_divide_by_pot({x}, {e}) returned {got!r}, "
                                     f"expected {expected}")
    for e in range(1, 8):      # every tie, both signs
        for x in range(-(3 << e), 3 << e):
            got, expected = student.rounding_divide_by_pot(x, e), rounding_divide_by_pot(x, e)
            require(got == expected, f"rounding_divide_by_pot({x}, {e}) returned {got!r}, "
                                     f"expected {expected}")


def _reals(rng, size=CASES // 4):
    reals = np.exp2(rng.uniform(-30, 30, size=size))
    # the slides' value, and mantissas just below 1 that round m0 up to 2^31
    return [SLIDES_REAL, 1.0, 0.5, 1 - 2.0 ** -40, *map(float, reals)]


def check_quantize_multiplier(student, rng):
    for real in _reals(rng):
        got = tuple(int(v) for v in student.quantize_multiplier(real))
        expected = quantize_multiplier(real)
        require(got == expected, f"quantize_multiplier({real!r}) returned {got}, expected "
                                 f"{expected}")


def _multiplier_cases(rng, *, int8_outputs=False):
    """(x, m0, shift): the slides' example, then random multipliers with random int32 x, or
    x that the multiplier maps into about ±300 (``int8_outputs``: few outputs clamp)."""
    cases = [(SLIDES_X, *quantize_multiplier(SLIDES_REAL))]
    for real in _reals(rng):
        m0, shift = quantize_multiplier(real)
        if int8_outputs:
            x = int(np.clip(rng.uniform(-300, 300) / real, INT32_MIN, INT32_MAX))
        else:
            x = int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)) >> int(rng.integers(32))
        cases.append((x, m0, shift))
    return cases


def check_multiply(student, rng):
    for rounding in ("double", "single"):
        for x, m0, shift in _multiplier_cases(rng):
            try:
                expected = multiply_by_quantized_multiplier(x, m0, shift, rounding=rounding)
            except ValueError:              # undefined in TFLite (overflow): not asked
                continue
            got = student.multiply_by_quantized_multiplier(x, m0, shift, rounding)
            require(got == expected, f"multiply_by_quantized_multiplier({x}, {m0}, {shift}, "
                                     f"{rounding!r}) returned {got!r}, expected {expected}")


def check_requantize(student, rng):
    for rounding in ("double", "single"):
        for x, m0, shift in _multiplier_cases(rng, int8_outputs=True):
            bias = int(rng.integers(-(1 << 8), 1 << 8))
            zero_point = int(rng.integers(-128, 128))
            lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
            try:
                expected = int(requantize(x, bias=bias, multiplier=m0, shift=shift,
                                          output_zero_point=zero_point, act_min=lo, act_max=hi,
                                          rounding=rounding))
            except ValueError:
                continue
            got = student.requantize(x, bias, m0, shift, zero_point, lo, hi, rounding)
            require(got == expected, f"requantize({x}, {bias}, {m0}, {shift}, {zero_point}, "
                                     f"{lo}, {hi}, {rounding!r}) returned {got!r}, expected "
                                     f"{expected}")


def simulate_shift(dut, cases):
    """``result`` of the combinational ``dut`` for each (value, amount) of ``cases``."""
    results = []

    async def bench(ctx):
        for value, amount in cases:
            ctx.set(dut.value, value)
            ctx.set(dut.amount, amount)
            results.append(ctx.get(dut.result))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return results


def check_rounding_shift(student, rng):
    for mode in ("half_away_from_zero", "half_up"):
        for width in SHIFT_WIDTHS:
            dut = student.RoundingShift(width, mode)
            lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
            cases = [(int(rng.integers(lo, hi, endpoint=True)), int(rng.integers(0, width)))
                     for _ in range(SHIFT_CASES)]
            amounts = [int(a) for a in rng.integers(1, width, size=SHIFT_CASES // 3)]
            cases += [((2 * int(rng.integers(lo >> a, hi >> a)) + 1) << (a - 1), a)  # ties
                      for a in amounts]
            cases += [(v, a) for v in (lo, hi, -1, 0, 1) for a in (0, 1, width - 1)]
            for (value, amount), got in zip(cases, simulate_shift(dut, cases), strict=True):
                expected = int(round_shift(value, amount, mode))
                require(got == expected, f"RoundingShift({width}, {mode!r}) with value={value}, "
                                         f"amount={amount}: result {got}, expected {expected}")


LAB = Lab(
    number=5, title="The requantizer", package="lab5_requantizer", module="requant",
    minutes=120,
    parts=(
        Part("srdhm: SaturatingRoundingDoublingHighMul", 2, ("srdhm",), check_srdhm),
        Part("rounding_divide_by_pot", 2, ("rounding_divide_by_pot",), check_rdbpot),
        Part("quantize_multiplier: M = M0 · 2^(shift − 31)", 2, ("quantize_multiplier",),
             check_quantize_multiplier),
        Part("multiply_by_quantized_multiplier, double and single rounding", 2,
             ("multiply_by_quantized_multiplier", "srdhm", "rounding_divide_by_pot"),
             check_multiply),
        Part("requantize: bias, multiplier, zero point, clamp", 1,
             ("requantize", "multiply_by_quantized_multiplier"), check_requantize),
        Part("RoundingShift in Amaranth, simulated", 4, ("RoundingShift.elaborate",),
             check_rounding_shift),
    ))
