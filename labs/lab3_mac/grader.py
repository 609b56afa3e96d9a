"""Lab 3 autograder: the student's MacPE simulated in Amaranth's simulator against the
grader's exact integer sums, the accumulator width against golden.accumulator."""

from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from golden.accumulator import (
    accumulator_bits,
    dot_product_bounds,
    guard_bits,
    operand_range,
    signed_width,
)
from labs.grading import Lab, Part, require

#: Beats per simulated stream.
BEATS = 120
#: Probability of an idle (not valid) cycle in a stream.
IDLE = 0.2
#: Largest dot-product depth the grader draws.
MAX_DEPTH = 1 << 12
#: Deepest worst case simulated (deeper ones are checked by arithmetic only).
SIMULATED_DEPTH = 64
#: Widths of the hidden tests (the visible ones are drawn from the same list).
WIDTHS = (2, 3, 4, 5, 6, 8)


def _wrap(value, bits):
    """``value`` as a ``bits``-wide two's complement register holds it."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _weight_value(kind, w):
    return (1 if w else -1) if kind == "binary" else w


def simulate(pe, beats):
    """``acc`` after each cycle of ``beats`` (a, w, valid, first) in Amaranth's simulator."""
    seen = []

    async def bench(ctx):
        for a, w, valid, first in beats:
            ctx.set(pe.a, a)
            ctx.set(pe.w, w)
            ctx.set(pe.valid, valid)
            ctx.set(pe.first, first)
            await ctx.tick()
            seen.append(ctx.get(pe.acc))

    sim = Simulator(pe)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _stream(rng, act_bits, kind, weight_bits, depth):
    """Random beats: passes of ``depth`` valid beats (first on the first), idle cycles
    between, and a first beat that restarts a pass early now and then."""
    a_lo, a_hi = operand_range(act_bits, True)
    w_lo, w_hi = (0, 1) if kind == "binary" else operand_range(weight_bits, True, kind=kind)
    beats, left = [], 0
    while len(beats) < BEATS:
        if rng.random() < IDLE:
            beats.append((int(rng.integers(a_lo, a_hi + 1)), int(rng.integers(w_lo, w_hi + 1)),
                          0, int(rng.integers(2))))
            continue
        first = left == 0 or rng.random() < 0.02
        left = depth if first else left
        left -= 1
        extreme = rng.random() < 0.3                      # the largest products, often
        a = a_lo if extreme else int(rng.integers(a_lo, a_hi + 1))
        w = (w_lo if extreme else int(rng.integers(w_lo, w_hi + 1)))
        beats.append((a, w, 1, int(first)))
    return beats


def _expected(beats, kind, acc_bits):
    acc, out = 0, []
    for a, w, valid, first in beats:
        if valid:
            acc = _wrap((0 if first else acc) + a * _weight_value(kind, w), acc_bits)
        out.append(acc)
    return out


def _check_pe(student, rng, kind):
    for _ in range(3):
        act_bits = int(rng.choice(WIDTHS))
        weight_bits = int(rng.choice(WIDTHS)) if kind == "integer" else None
        depth = int(rng.integers(1, 40))
        w_range = operand_range(weight_bits or 2, True, kind=kind)
        acc_bits = accumulator_bits(depth, operand_range(act_bits, True), w_range)
        call = (f"MacPE({act_bits}, {acc_bits}, {kind!r}"
                + (f", {weight_bits})" if weight_bits else ")"))
        pe = student.MacPE(act_bits, acc_bits, kind, weight_bits)
        expected_w = (unsigned(1) if kind == "binary" else
                      signed(2) if kind == "ternary" else signed(weight_bits))
        for port, shape in (("a", signed(act_bits)), ("w", expected_w),
                            ("acc", signed(acc_bits)), ("valid", unsigned(1)),
                            ("first", unsigned(1))):
            got = getattr(pe, port).shape()
            require(got == shape, f"{call}.{port} has shape {got}, expected {shape}")
        beats = _stream(rng, act_bits, kind, weight_bits or 2, depth)
        got, want = simulate(pe, beats), _expected(beats, kind, acc_bits)
        for cycle, (g, e) in enumerate(zip(got, want, strict=True)):
            if g != e:
                a, w, valid, first = beats[cycle]
                previous = want[cycle - 1] if cycle else 0
                raise AssertionError(
                    f"{call}: after cycle {cycle} (a={a}, w={w}, valid={valid}, first={first}, "
                    f"acc before {previous}) acc is {g}, expected {e}")


def check_accumulator_bits(student, rng):
    for n in range(1, 17):
        for k in (*range(1, 70), *(int(v) for v in rng.integers(70, 1 << 20, size=40))):
            got = student.accumulator_bits(n, k)
            expected = 2 * n + guard_bits(k)
            require(got == expected, f"accumulator_bits({n}, {k}) returned {got!r}, expected "
                                     f"2N + ⌈log2 K⌉ = {expected}")
            exact = accumulator_bits(k, operand_range(n, True), operand_range(n, True))
            require(got >= exact, f"accumulator_bits({n}, {k}) = {got} is too narrow for "
                                  f"{k}·(−2^{n - 1})²")


def check_integer_pe(student, rng):
    _check_pe(student, rng, "integer")


def check_low_bit_pe(student, rng):
    for kind in ("binary", "ternary"):
        got = student.weight_shape(kind, int(rng.integers(1, 9)))
        expected = unsigned(1) if kind == "binary" else signed(2)
        require(got == expected, f"weight_shape({kind!r}, …) returned {got}, expected {expected}")
        _check_pe(student, rng, kind)


def check_overflow(student, rng):
    for _ in range(2):
        n = int(rng.choice(WIDTHS))
        k = 1 << int(rng.integers(0, MAX_DEPTH.bit_length()))
        a, w = student.worst_case_operands(n, k)
        lo, hi = operand_range(n, True)
        require(len(a) == len(w) == k and all(lo <= v <= hi for v in (*a, *w)),
                f"worst_case_operands({n}, {k}) must return two lists of {k} ints in "
                f"[{lo}, {hi}]")
        exact = sum(x * y for x, y in zip(a, w, strict=True))
        bound = max(abs(b) for b in dot_product_bounds(k, (lo, hi), (lo, hi)))
        require(abs(exact) == bound, f"worst_case_operands({n}, {k}): |Σ a·w| = {abs(exact)}, "
                                     f"but K-deep dot products reach {bound}")
        width = 2 * n + guard_bits(k)
        require(signed_width(min(exact, 0), max(exact, 0)) == width,
                f"worst_case_operands({n}, {k}) should need all {width} bits")
        k = 1 << int(rng.integers(0, SIMULATED_DEPTH.bit_length()))       # simulate a short one
        a, w = student.worst_case_operands(n, k)
        exact = sum(x * y for x, y in zip(a, w, strict=True))
        width = 2 * n + guard_bits(k)
        beats = [(x, y, 1, int(i == 0)) for i, (x, y) in enumerate(zip(a, w, strict=True))]
        full = simulate(student.MacPE(n, width, "integer", n), beats)[-1]
        require(full == exact, f"MacPE({n}, {width}) summed worst_case_operands({n}, {k}) to "
                               f"{full}, expected {exact}")
        narrow = simulate(student.MacPE(n, width - 1, "integer", n), beats)[-1]
        require(narrow == _wrap(exact, width - 1) != exact,
                f"MacPE({n}, {width - 1}) (one bit less) summed worst_case_operands({n}, {k}) "
                f"to {narrow}: it should overflow to {_wrap(exact, width - 1)}")


LAB = Lab(
    number=3, title="The MAC and its accumulator (Amaranth)", package="lab3_mac", module="mac",
    minutes=120,
    parts=(
        Part("accumulator_bits: 2N + M", 1, ("accumulator_bits",), check_accumulator_bits),
        Part("MacPE with integer weights, in simulation", 4, ("MacPE.elaborate",),
             check_integer_pe),
        Part("binary and ternary weights", 2, ("weight_shape", "MacPE.elaborate"),
             check_low_bit_pe),
        Part("worst case: 2N+M bits hold it, one bit less overflows", 2,
             ("worst_case_operands", "MacPE.elaborate"), check_overflow),
    ))
