"""Lab 8 autograder: the student's σ-quantized arithmetic against golden.fixedpoint_set (the
paper's definitions), the conditions against golden's enumeration, and the student's indicator
network against its target on every grid point, on qmac's engine in Amaranth's simulator."""

from fractions import Fraction

import numpy as np

from golden.fixedpoint_set import (
    FixedPointSet,
    analyze,
    quantized_network,
    reachable_outputs,
    rounded_activation,
)
from labs.grading import Lab, Part, require
from sim.paper import run_network

CASES = 60
ACTIVATIONS = ("identity", "relu", "hardtanh")


def _qset(rng, p_max=6):
    p = int(rng.integers(1, p_max + 1))
    return FixedPointSet(p, int(rng.integers(1, 2 * (1 << p))))


def check_network(student, rng):
    for _ in range(CASES):
        qset = _qset(rng)
        q = qset.q_max
        n = [int(v) for v in rng.integers(1, 5, size=int(rng.integers(1, 4)) + 1)]
        layers = [(rng.integers(-q, q + 1, size=(o, i)), rng.integers(-q, q + 1, size=o))
                  for i, o in zip(n, n[1:], strict=False)]
        x = rng.integers(-q, q + 1, size=(8, n[0]))
        activation = ACTIVATIONS[int(rng.integers(3))]
        got = np.asarray(student.network(x, layers, activation, qset.p, qset.s))
        expected = quantized_network(x, layers, activation, qset)
        require(got.shape == expected.shape and np.array_equal(got, expected),
                f"network(x, layers of shapes {[w.shape for w, _ in layers]}, {activation!r}, "
                f"p={qset.p}, s={qset.s}) differs from the σ-quantized network: "
                f"{got.tolist()} vs {expected.tolist()}")


def _not_clipped(layers, qset):
    """Every exact pre-rounding value of every layer, on every grid point, within ±Q/s."""
    h = [Fraction(int(v), qset.s) for v in qset.numerators]
    for w, b in layers:
        exact = [Fraction(int(w[0, 0]), qset.s) * v + Fraction(int(b[0]), qset.s) for v in h]
        if any(abs(v) > Fraction(qset.q_max, qset.s) for v in exact):
            return False
        h = [Fraction(qset.round(v), qset.s) for v in exact]
    return True


def check_identity(student, rng):
    for _ in range(CASES // 10):
        p = int(rng.integers(2, 7))
        qset = FixedPointSet(p, int(rng.integers(2, 1 << p)))
        layers = [(np.asarray(w, dtype=np.int64).reshape(1, 1),
                   np.asarray(b, dtype=np.int64).reshape(1))
                  for w, b in student.identity_staircase(qset.p, qset.s)]
        call = f"identity_staircase({qset.p}, {qset.s})"
        require(all(abs(int(w[0, 0])) <= qset.q_max and abs(int(b[0])) <= qset.q_max
                    for w, b in layers), f"{call}: weights and biases must be numerators of Q")
        require(_not_clipped(layers, qset), f"{call}: some value is clipped; the "
                                            "nonlinearity must come from rounding alone")
        y = quantized_network(qset.numerators[:, None], layers, "identity", qset)[:, 0]
        # affine on the grid ⇔ every second difference is 0 (the grid is evenly spaced)
        require(np.any(np.diff(y, 2) != 0),
                f"{call}: the outputs {y.tolist()} are affine in x")


def _sigma(rng, s):
    """A random clamp-like ⌈σ⌋ on numerators: k·Hardtanh, ReLU or a scaled step."""
    k = int(rng.integers(1, 7))
    kind = int(rng.integers(3))
    if kind == 0:
        return f"{k}·Hardtanh", lambda q: k * np.clip(q, -s, s)
    if kind == 1:
        return f"{k}·ReLU", lambda q: k * np.clip(q, 0, None)
    return f"{k}·step", lambda q: k * (np.asarray(q) >= 0)


def check_reachable(student, rng):
    for _ in range(CASES // 2):
        qset = _qset(rng, 5)
        name, sigma = _sigma(rng, qset.s)
        image = rounded_activation(sigma, qset.numerators, qset)
        bias = int(rng.integers(-qset.q_max, qset.q_max + 1))
        got = np.asarray(student.reachable(sigma, qset.p, qset.s, bias))
        expected = reachable_outputs(image, qset, bias)
        require(got.shape == expected.shape and np.array_equal(got, expected),
                f"reachable({name}, p={qset.p}, s={qset.s}, bias={bias}) returned "
                f"{got.tolist()}, expected {expected.tolist()}")
    sigma = lambda q: 5 * np.clip(q, -1, 1)                          # noqa: E731 (the paper's)
    require(not student.necessary_condition(sigma, 3, 1),
            "necessary_condition(5·Hardtanh, 3, 1) must be False (the paper's example)")
    for _ in range(CASES // 2):
        qset = _qset(rng, 4)
        name, sigma = _sigma(rng, qset.s)
        got = bool(student.necessary_condition(sigma, qset.p, qset.s))
        expected = analyze(sigma, qset.p, qset.s).necessary
        require(got == expected, f"necessary_condition({name}, p={qset.p}, s={qset.s}) "
                                 f"returned {got}, expected {expected}")


def _indicator_case(rng, p_max, s_max):
    p = int(rng.integers(2, p_max + 1))
    qset = FixedPointSet(p, int(rng.integers(1, min(s_max, (1 << p) - 1) + 1)))
    lo, hi = sorted(int(v) for v in rng.integers(-qset.q_max, qset.q_max + 1, size=2))
    gamma = int(rng.integers(-qset.q_max, qset.q_max + 1))
    return qset, lo, hi, gamma


def check_indicator(student, rng):
    for _ in range(CASES // 2):
        qset, lo, hi, gamma = _indicator_case(rng, 6, 64)
        layers = student.indicator_network(lo, hi, gamma, qset.p, qset.s)
        x = qset.numerators[:, None]
        y = quantized_network(x, layers, "relu", qset)[:, 0]
        target = np.where((x[:, 0] >= lo) & (x[:, 0] <= hi), gamma, 0)
        require(np.array_equal(y, target),
                f"indicator_network({lo}, {hi}, {gamma}, p={qset.p}, s={qset.s}): outputs "
                f"{y.tolist()}, target {target.tolist()}")
    qset, lo, hi, gamma = _indicator_case(rng, 3, 2)               # and once on the RTL
    layers = student.indicator_network(lo, hi, gamma, qset.p, qset.s)
    run = run_network(layers, "relu", qset, qset.numerators[:, None])
    target = np.where((qset.numerators >= lo) & (qset.numerators <= hi), gamma, 0)
    require(np.array_equal(run.outputs, target),
            f"indicator_network({lo}, {hi}, {gamma}, p={qset.p}, s={qset.s}) on the RTL: "
            f"{run.outputs.tolist()}, target {target.tolist()}")


LAB = Lab(
    number=8, title="Expressive power under fixed-point arithmetic", package="lab8_expressive",
    module="expressive", minutes=120,
    parts=(
        Part("network: σ-quantized networks on Q_{p,s}", 3,
             ("round_numerators", "activate", "network"), check_network),
        Part("identity_staircase: rounding is not linear", 1, ("identity_staircase",),
             check_identity),
        Part("reachable and necessary_condition (5·Hardtanh fails)", 3,
             ("reachable", "necessary_condition"), check_reachable),
        Part("indicator_network: γ·1[lo, hi] exactly, in golden and on the RTL", 3,
             ("indicator_network",), check_indicator),
    ))
