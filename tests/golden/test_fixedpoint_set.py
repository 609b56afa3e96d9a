"""golden.fixedpoint_set against the paper's definitions, worked with Fractions."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.fixedpoint_set import (
    ACTIVATIONS,
    FixedPointSet,
    analyze,
    quantized_network,
    reachable_outputs,
    rounded_activation,
)


def round_onto(value: Fraction, p, s):
    """Nearest point of Q_{p,s} (ties away from zero), clipped; as a Fraction."""
    scaled = value * s
    magnitude = math.floor(abs(scaled) + Fraction(1, 2))
    q = magnitude if scaled >= 0 else -magnitude
    q_max = 2 ** p - 1
    return Fraction(max(-q_max, min(q_max, q)), s)


@pytest.mark.parametrize("p,s", [(1, 1), (3, 2), (4, 5), (7, 127)])
def test_the_set(p, s):
    qset = FixedPointSet(p, s)
    values = qset.values()
    assert len(values) == len(qset) == 2 ** (p + 1) - 1
    assert min(values) == Fraction(-(2 ** p - 1), s) and max(values) == Fraction(2 ** p - 1, s)
    assert all(b - a == Fraction(1, s) for a, b in itertools.pairwise(values))


def test_rounding_onto_the_set():
    qset = FixedPointSet(3, 4)
    reals = [Fraction(n, 40) for n in range(-400, 401)]
    rounded = [Fraction(qset.round(r), 4) for r in reals]
    assert rounded == [round_onto(r, 3, 4) for r in reals]
    assert qset.round(Fraction(1, 8)) == 1 and qset.round(Fraction(-1, 8)) == -1  # ties away
    assert qset.round(100) == 7 and qset.round(-100) == -7                        # clipped
    assert all(a <= b for a, b in itertools.pairwise(rounded))                    # monotone
    assert all(qset.round(Fraction(q, 4)) == q for q in range(-7, 8))             # idempotent


def reference_network(x, layers, sigma, p, s):
    """The paper's network on Fractions: round after every affine map and activation."""
    h = [Fraction(int(v), s) for v in x]
    for index, (weights, bias) in enumerate(layers):
        h = [round_onto(sum(Fraction(int(w), s) * v for w, v in zip(row, h, strict=True))
                        + Fraction(int(b), s), p, s)
             for row, b in zip(weights, bias, strict=True)]
        if index < len(layers) - 1:
            h = [round_onto(sigma(v), p, s) for v in h]
    return [int(v * s) for v in h]


SIGMAS = {
    "identity": lambda v: v,
    "relu": lambda v: max(v, Fraction(0)),
    "hardtanh": lambda v: max(Fraction(-1), min(Fraction(1), v)),
    "hardtanh5": lambda v: 5 * max(Fraction(-1), min(Fraction(1), v)),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SIGMAS)), st.integers(2, 5), st.integers(1, 9), st.data())
def test_quantized_network_rounds_after_every_map(activation, p, s, data):
    q_max = 2 ** p - 1
    numerators = st.integers(-q_max, q_max)
    widths = data.draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    layers = [(np.array(data.draw(st.lists(st.lists(numerators, min_size=i, max_size=i),
                                           min_size=o, max_size=o))).reshape(o, i),
               np.array(data.draw(st.lists(numerators, min_size=o, max_size=o))))
              for i, o in itertools.pairwise(widths)]
    x = np.array(data.draw(st.lists(numerators, min_size=widths[0], max_size=widths[0])))
    got = quantized_network(x[None, :], layers, activation, FixedPointSet(p, s))[0].tolist()
    assert got == reference_network(x, layers, SIGMAS[activation], p, s)


def test_relu_satisfies_the_sufficient_condition():
    for p, s in [(2, 1), (3, 2), (4, 3), (5, 16)]:
        report = analyze("relu", p, s)
        # ReLU's rounded outputs are 0, 1/s, 2/s, …: 1/s is a gap, so every point is reached
        assert 1 in report.V
        assert report.condition_1 and report.z == Fraction(2 ** p - 1, s)  # max only at top
        assert report.sufficient and report.necessary


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a != "hardtanh5"])
def test_the_paper_activations_satisfy_both_conditions_on_small_sets(activation):
    for p, s in [(3, 1), (3, 2), (4, 4)]:
        report = analyze(activation, p, s)
        assert report.sufficient and report.necessary, (activation, p, s)


@pytest.mark.parametrize("r", [3, 4, 5])
def test_a_common_divisor_of_three_or_more_fails_the_necessary_condition(r):
    """σ with every rounded output a multiple of r (s = 1): every sum b + Σ w·x is b mod r,
    and rounding onto integers keeps it, so at most one residue class of Q is reached."""
    p = 4
    report = analyze(lambda q: np.sign(q) * r * (np.abs(q) // r), p, 1)  # multiples of r
    assert not report.necessary and not report.sufficient
    # the reason, checked directly: all outputs are multiples of r
    assert all(v % r == 0 for v in report.V)
    # and with r = 1 the same construction passes
    assert analyze(lambda q: np.sign(q) * (np.abs(q) // 1), p, 1).necessary


def test_five_hardtanh_fails_the_necessary_condition_at_p3_s1():
    """The paper's Lemma 2 example: ⌈5·Hardtanh⌋ on Q_{3,1} takes only −5, 0, 5, so an output
    b + Σ w·x (integers) is b mod 5 before clipping to ±7: no bias reaches all 15 points."""
    p, s, q_max = 3, 1, 7
    report = analyze("hardtanh5", p, s)
    assert not report.necessary and not report.sufficient
    assert set(report.V) == {-10, -5, 0, 5, 10}
    qset = FixedPointSet(p, s)
    outputs = rounded_activation("hardtanh5", qset.numerators, qset)
    for b in range(-q_max, q_max + 1):
        reached = {max(-q_max, min(q_max, b + 5 * k)) for k in range(-20, 21)}
        assert len(reached) < 2 * q_max + 1
        assert reachable_outputs(outputs, qset, b).tolist() == sorted(reached)


def test_identity_under_rounding_is_not_linear():
    """With exact arithmetic an identity network is affine; rounded, it is not. Search a
    two-layer identity network over Q_{3,4} whose outputs violate affinity, and verify the
    violation with Fractions."""
    p, s = 3, 4
    qset = FixedPointSet(p, s)
    xs = qset.numerators[:, None]
    for w1, w2 in itertools.product(range(1, 8), repeat=2):
        layers = [(np.array([[w1]]), np.array([0])), (np.array([[w2]]), np.array([0]))]
        f = dict(zip(qset.numerators.tolist(),
                     quantized_network(xs, layers, "identity", qset)[:, 0].tolist(),
                     strict=True))
        for a, b in itertools.product(range(-3, 4), repeat=2):
            if f[a] + f[b] != f[a + b] + f[0]:
                # an affine g has g(a) + g(b) = g(a + b) + g(0) for all a, b
                check = [reference_network([v], layers, SIGMAS["identity"], p, s)[0]
                         for v in (a, b, a + b, 0)]
                assert check[0] + check[1] != check[2] + check[3]
                return
    pytest.fail("no non-affine identity network found")


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="p must be an integer in 1..30; got 0"):
        FixedPointSet(0, 1)
    with pytest.raises(ValueError, match="s must be a positive integer; got -2"):
        FixedPointSet(3, -2)
    with pytest.raises(ValueError, match="activation must be one of"):
        analyze("tanh", 3, 1)
    with pytest.raises(ValueError, match="layer 0 weights must be numerators"):
        quantized_network(np.array([[1]]), [(np.array([[99]]), np.array([0]))], "relu",
                          FixedPointSet(3, 1))
