"""golden.paper: the constructions represent their target on every grid point (the paper's
theorem on that grid), judged by golden's σ-quantized network and, on the smallest grids, by
the pure-Fraction network of test_fixedpoint_set."""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.fixedpoint_set import FixedPointSet
from golden.paper import (
    cubes,
    exact_affine,
    grid,
    indicator_table,
    layer_bound,
    random_table,
    represent,
)
from tests.golden.test_fixedpoint_set import SIGMAS, reference_network

CASES = {  # construction → (p, s, d) it is checked on
    "relu": [(1, 1, 1), (2, 1, 1), (3, 1, 1), (2, 1, 2), (3, 1, 2), (3, 2, 1), (2, 3, 2),
             (3, 5, 2), (2, 1, 3)],
    "identity": [(2, 1, 1), (3, 1, 1), (2, 1, 2), (3, 1, 2)],
    "binary": [(1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1), (2, 1, 2), (3, 1, 2)],
}


def build(construction, table, qset):
    return represent(table, qset, activation="identity" if construction == "identity"
                     else "relu", binary=construction == "binary")


def check_parameters(net):
    q = net.qset.q_max
    for w, b in net.layers:
        assert np.abs(w).max() <= q and np.abs(b).max() <= q     # numerators of Q_{p,s}
    if net.construction == "binary":
        assert net.binary_weights


@pytest.mark.parametrize("construction,p,s,d",
                         [(c, *case) for c, cases in CASES.items() for case in cases])
def test_represents_random_targets_everywhere(construction, p, s, d):
    qset = FixedPointSet(p, s)
    points = grid(qset, d)
    for seed in range(3):
        table = random_table(qset, d, seed)
        net = build(construction, table, qset)
        check_parameters(net)
        np.testing.assert_array_equal(net(points), table.reshape(-1))


@pytest.mark.parametrize("construction,p,d", [("relu", 2, 1), ("identity", 2, 1),
                                              ("binary", 2, 1), ("relu", 1, 2)])
def test_against_the_fraction_network(construction, p, d):
    """The smallest grids, every point through the paper's definition on Fractions."""
    qset = FixedPointSet(p, 1)
    table = random_table(qset, d, 7)
    net = build(construction, table, qset)
    sigma = SIGMAS[net.activation]
    for point, expected in zip(grid(qset, d), table.reshape(-1), strict=True):
        assert reference_network(point, net.layers, sigma, p, 1) == [expected]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["relu", "identity", "binary"]), st.integers(2, 4),
       st.integers(1, 2), st.data())
def test_indicators(construction, p, d, data):
    """γ·1_C of a random cube C: exact on the grid; the ReLU network has 3 hidden layers."""
    qset = FixedPointSet(p, 1)
    q = qset.q_max
    lo = [data.draw(st.integers(-q, q)) for _ in range(d)]
    hi = [data.draw(st.integers(a, q)) for a in lo]
    gamma = data.draw(st.integers(-q, q))
    table = indicator_table(qset, d, lo, hi, gamma)
    net = build(construction, table, qset)
    check_parameters(net)
    expected = [gamma if all(a <= x <= b for a, x, b in zip(lo, point, hi, strict=True))
                else 0 for point in grid(qset, d).tolist()]
    assert net(grid(qset, d)).tolist() == expected
    if construction == "relu" and gamma:
        assert net.depth == 4


@pytest.mark.parametrize("construction", ["relu", "identity", "binary"])
def test_zero_target(construction):
    qset = FixedPointSet(2, 1)
    net = build(construction, np.zeros((7, 7), np.int64), qset)
    assert not net(grid(qset, 2)).any()
    check_parameters(net)


@pytest.mark.parametrize("activation,p,s,d,binary", [
    ("gelu", 3, 1, 1, False), ("gelu", 2, 2, 2, False), ("silu", 3, 1, 2, False),
    ("mish", 2, 1, 1, True), ("silu", 2, 1, 2, True)])
def test_relu_like_activations_run_the_relu_constructions(activation, p, s, d, binary):
    """⌈GELU⌋, ⌈SiLU⌋, ⌈Mish⌋ equal ⌈ReLU⌋ on these grids; the network applies σ itself."""
    qset = FixedPointSet(p, s)
    table = random_table(qset, d, 4)
    net = represent(table, qset, activation=activation, binary=binary)
    assert net.activation == activation
    np.testing.assert_array_equal(net(grid(qset, d)), table.reshape(-1))


def test_cubes_partition_the_support():
    qset = FixedPointSet(2, 1)
    table = random_table(qset, 2, 3)
    rebuilt = np.zeros_like(table)
    for cube in cubes(table, qset):
        region = tuple(slice(a + 3, b + 4) for a, b in zip(cube.lo, cube.hi, strict=True))
        assert (rebuilt[region] == 0).all()
        rebuilt[region] = cube.gamma
    np.testing.assert_array_equal(rebuilt, table)
    assert len(cubes(table, qset, points=True)) == np.count_nonzero(table)


def test_identity_network_is_affine_in_exact_arithmetic():
    """Experiment 4 in golden/: f*(x) = |x| (not affine) is what the rounded network computes;
    the same weights in exact arithmetic compute an affine map, which is not f*."""
    qset = FixedPointSet(3, 1)
    xs = qset.numerators
    table = np.abs(xs)
    net = represent(table, qset, activation="identity")
    np.testing.assert_array_equal(net(xs[:, None]), table)
    exact = exact_affine(net, xs[:, None])
    slope = exact[1] - exact[0]
    assert all(b - a == slope for a, b in itertools.pairwise(exact))          # affine
    assert [Fraction(int(v)) for v in table] != exact


def test_layer_bound_is_the_largest_accumulator():
    qset = FixedPointSet(3, 2)
    # 4 inputs of ±7 times weights ±7, plus s·b with |b| ≤ 7
    assert layer_bound(4, qset) == 4 * 49 + 14
    assert layer_bound(4, qset, binary=True) == 4 * 7 + 14


def test_bad_input_is_named():
    qset = FixedPointSet(2, 1)
    with pytest.raises(ValueError, match=r"table must have shape \(7,\)\*d"):
        represent(np.zeros((7, 6), np.int64), qset)
    with pytest.raises(ValueError, match=r"table entries must be numerators in \[-3, 3\], not 5"):
        represent(np.full(7, 5), qset)
    with pytest.raises(TypeError, match="table must hold integers"):
        represent(np.zeros(7), qset)
    with pytest.raises(ValueError, match="'elu' does not"):
        represent(np.zeros(7, np.int64), qset, activation="elu")
    with pytest.raises(ValueError, match="activation must be one of"):
        represent(np.zeros(7, np.int64), qset, activation="tanh")
    with pytest.raises(ValueError, match="s must be ≤ 2\\^p − 1 = 3"):
        represent(np.ones(7, np.int64), FixedPointSet(2, 4))
    with pytest.raises(ValueError, match="s must be 1 for the binary"):
        represent(np.ones(7, np.int64), FixedPointSet(2, 2), binary=True)
    with pytest.raises(ValueError, match="d must be ≤ 2 for the binary"):
        represent(np.ones((7, 7, 7), np.int64), qset, binary=True)
