"""The constructions of the seed paper's proofs, as σ-quantized networks on Q_{p,s}.

Seed 001 (arXiv 2409.00297) proves that σ-quantized networks represent every function
f*: Q^d_{p,s} → Q_{p,s} by writing f* as a sum of indicators γ·1_C(x) of quantized cubes C
and building each indicator from a few rounded layers. This module builds networks of that
shape — qmac's own constructions in the spirit of the proofs, not a transcription of the
paper's layers or of its parameter bounds — with every weight and bias a numerator of
Q_{p,s} (|q| ≤ 2^p − 1), for three settings:

``relu`` (any d, 1 ≤ s ≤ 2^p − 1), 3 hidden layers:
    L1 ``u = ⌈ReLU⌋(x_i − a + 1)`` per threshold a of coordinate i (≥ 1 iff x_i ≥ a; the
    clip at 2^p − 1 keeps that); L2 ``u`` and ``⌈ReLU⌋(u − 1)``, whose difference is the step
    [x_i ≥ a] ∈ {0, 1/s}; L3 ``⌈ReLU⌋(Σ_i ([x_i ≥ a_i] − [x_i ≥ b_i + 1]) − (d − 1))`` =
    1_C/s, s copies per cube; output ``Σ_C γ_C · (s copies of 1_C/s)`` rounds to exactly γ_C.
    Weights are ±1 (numerator ±s) except the output's γ_C/s.
``identity`` (s = 1, any d), 5 hidden layers. With s = 1 and integer weights nothing rounds:
    the only nonlinearity is the clip at ±(2^p − 1) after each layer — still enough.
    L1 ``g = clip(x_i − a)``, L2 ``clip(2g + 1)`` (odd: its sign is [x_i ≥ a]), L3
    ``clip((2^p − 1)·v) = ±Q``, L4 ``T_C = clip(Σ_i (A_{a_i} − A_{b_i+1}) − (2d − 1)Q) = ±Q``
    (Q = 2^p − 1, a constant neuron carries Q), L5 ``clip(1 − T_C)`` and ``clip(−T_C)``,
    whose difference is 1_C; output ``Σ_C γ_C·1_C``. In exact arithmetic (no rounding or
    clipping) the same weights compute an affine map (:func:`exact_affine`).
``binary`` (ReLU, s = 1, d ∈ {1, 2}), every weight −1 or +1 (biases in Q_{p,1}).
    A binary layer cannot ignore a neuron, so hidden neurons come in identical pairs
    (weights +1, −1 cancel a pair; +1, +1 double it) or are zero except on one cube. Steps
    [ε·x ≥ τ] on the forms ε·x (x, or x₁ ± x₂ for d = 2: a grid point is one level of each)
    are doubled until they saturate at Q; levels are differences of steps; a point's T_C
    is Q on it and 0 elsewhere; 2p "bit" neurons relu(Σ_C ±T_C − (Q − v)), v = 1, 2, …,
    2^(p−1), one set for positive and one for negative γ (+1 on the cubes whose |γ_C| has
    bit v, −1 on the others), are v or 0, and output weights ±1 sum them to γ_C.

GELU, SiLU and Mish run the ReLU constructions where their rounded values equal ReLU's on
the grid (:func:`relu_like`; at s = 1 always), with σ itself in the network (on the engine,
the activation table computes it).

:func:`represent` builds the network of a target table (``table[q_1 + Q, …, q_d + Q]`` is
f*(q/s) as a numerator), :class:`PaperNetwork` evaluates it with golden's
:func:`golden.fixedpoint_set.quantized_network` and counts its depth, widths and
parameters. The constructions are checked by evaluating them on every grid point
(tests/golden/test_paper.py), which is the theorem on that grid.
"""

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .accumulator import dot_product_bounds
from .fixedpoint_set import ACTIVATIONS, FixedPointSet, quantized_network, rounded_activation

__all__ = ["CONSTRUCTIONS", "Cube", "PaperNetwork", "cubes", "exact_affine", "grid",
           "indicator_table", "layer_bound", "random_table", "relu_like", "represent"]

CONSTRUCTIONS = ("relu", "identity", "binary")
#: Largest input dimension the binary construction handles (its forms x, x₁ ± x₂).
BINARY_MAX_D = 2


@dataclass(frozen=True)
class Cube:
    """A quantized cube ∏ [lo_i, hi_i] (numerators, inclusive) where f* = gamma."""
    lo: tuple
    hi: tuple
    gamma: int


@dataclass(frozen=True)
class PaperNetwork:
    """A σ-quantized network of numerators: ``layers`` is a tuple of (W [out, in], b [out])."""
    layers: tuple
    activation: str
    qset: FixedPointSet
    d: int
    construction: str

    def __call__(self, x):
        """Outputs (numerators, [B]) on inputs ``x`` (numerators, [B, d])."""
        return quantized_network(x, list(self.layers), self.activation, self.qset)[:, 0]

    @property
    def depth(self):
        """Affine maps (hidden layers + the output layer)."""
        return len(self.layers)

    @property
    def widths(self):
        return (self.d, *(w.shape[0] for w, _ in self.layers))

    @property
    def parameters(self):
        """Every weight and bias of the dense layers."""
        return sum(w.size + b.size for w, b in self.layers)

    @property
    def nonzero_parameters(self):
        return sum(int(np.count_nonzero(w)) + int(np.count_nonzero(b)) for w, b in self.layers)

    @property
    def binary_weights(self):
        """True when every weight is −1 or +1 (as numerators: s = 1)."""
        return all(np.isin(w, (-1, 1)).all() for w, _ in self.layers)


def grid(qset, d):
    """Every point of Q^d_{p,s} as numerators, [(2Q+1)^d, d], in the table's C order."""
    axis = qset.numerators
    return np.array(list(itertools.product(axis, repeat=d)), dtype=np.int64).reshape(-1, d)


def _check_table(table, qset):
    table = np.asarray(table)
    if table.dtype.kind not in "iu":
        raise TypeError(f"table must hold integers, not {table.dtype}")
    side = len(qset)
    if table.ndim < 1 or any(n != side for n in table.shape):
        raise ValueError(f"table must have shape ({side},)*d for Q_{{{qset.p},{qset.s}}} "
                         f"(one entry per grid point), not {table.shape}")
    if np.abs(table).max(initial=0) > qset.q_max:
        raise ValueError(f"table entries must be numerators in [{-qset.q_max}, {qset.q_max}], "
                         f"not {int(table.flat[np.argmax(np.abs(table))])}")
    return table.astype(np.int64)


def indicator_table(qset, d, lo, hi, gamma):
    """The table of γ·1_C with C = ∏ [lo_i, hi_i] (numerators)."""
    table = np.zeros((len(qset),) * d, dtype=np.int64)
    q = qset.q_max
    table[tuple(slice(a + q, b + q + 1) for a, b in zip(lo, hi, strict=True))] = gamma
    return _check_table(table, qset)


def random_table(qset, d, seed):
    """A uniformly random f*: Q^d_{p,s} → Q_{p,s} (numerators)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-qset.q_max, qset.q_max + 1, (len(qset),) * d, dtype=np.int64)


def cubes(table, qset, *, points=False):
    """The support of f* partitioned into cubes: maximal runs of one nonzero value along the
    last axis (``points=True``: every nonzero point its own cube)."""
    table = _check_table(table, qset)
    q = qset.q_max
    found = []
    for prefix in itertools.product(range(len(qset)), repeat=table.ndim - 1):
        row = table[prefix]
        start = 0
        while start < len(row):
            end = start
            while not points and end + 1 < len(row) and row[end + 1] == row[start]:
                end += 1
            if row[start]:
                head = tuple(i - q for i in prefix)
                found.append(Cube(head + (start - q,), head + (end - q,), int(row[start])))
            start = end + 1
    return found


def layer_bound(in_width, qset, *, binary=False):
    """max |acc| of a layer over numerators: ``Σ w·x`` over ``in_width`` inputs in ±Q
    (:func:`golden.accumulator.dot_product_bounds`) plus the bias term ``s·b``."""
    q = qset.q_max
    lo, hi = dot_product_bounds(in_width, (-q, q), (-1, 1) if binary else (-q, q))
    return max(-lo, hi) + qset.s * q


def _matrix(rows, width):
    w = np.zeros((len(rows), width), dtype=np.int64)
    b = np.zeros(len(rows), dtype=np.int64)
    for r, (weights, bias) in enumerate(rows):
        for column, value in weights.items():
            w[r, column] += value
        b[r] = bias
    return w, b


def _relu(table, qset, found):
    d, s, q = table.ndim, qset.s, qset.q_max
    if s > q:
        raise ValueError(f"s must be ≤ 2^p − 1 = {q} for the ReLU construction (the weight 1 "
                         f"is the numerator s), not {s}")
    if d - 1 > q:
        raise ValueError(f"d must be ≤ 2^p = {q + 1} for the ReLU construction, not {d}")
    steps = sorted({(i, a) for c in found for i in range(d) for a in (c.lo[i], c.hi[i] + 1)})
    index = {step: k for k, step in enumerate(steps)}
    l1 = []
    for i, a in steps:
        if a == -q:
            l1.append(({}, 1))                # x_i ≥ −Q always: u ≡ 1
        elif a == q + 1:
            l1.append(({}, 0))                # x_i ≥ Q + 1 never: u ≡ 0
        else:
            l1.append(({i: s}, 1 - a))        # u = ⌈ReLU⌋(x_i − a + 1)
    l2 = []
    for k in range(len(steps)):
        l2 += [({k: s}, 0), ({k: s}, -1)]     # u and ⌈ReLU⌋(u − 1): step = difference
    l3 = []
    for c in found:
        weights = {}
        for i in range(d):
            for a, sign in ((c.lo[i], 1), (c.hi[i] + 1, -1)):
                k = index[(i, a)]
                weights[2 * k] = weights.get(2 * k, 0) + sign * s
                weights[2 * k + 1] = weights.get(2 * k + 1, 0) - sign * s
        l3 += [(weights, -(d - 1))] * s
    out = [({n * s + copy: c.gamma for n, c in enumerate(found) for copy in range(s)}, 0)]
    return [_matrix(l1, d), _matrix(l2, len(l1)), _matrix(l3, len(l2)), _matrix(out, len(l3))]


def _identity(table, qset, found):
    d, q = table.ndim, qset.q_max
    if qset.s != 1:
        raise ValueError(f"s must be 1 for the identity construction (weights are integers), "
                         f"not {qset.s}")
    if qset.p < 2 or 2 * d - 1 > q:
        raise ValueError(f"p must be ≥ 2 and d ≤ 2^(p−1) for the identity construction "
                         f"(weights 2 and up to 2d − 1 ≤ 2^p − 1), not p = {qset.p}, d = {d}")
    steps = sorted({(i, a) for c in found for i in range(d) for a in (c.lo[i], c.hi[i] + 1)
                    if -q < a <= q})
    index = {step: k for k, step in enumerate(steps)}
    const = len(steps)                                      # the neuron holding Q
    l1 = [({i: 1}, -a) for i, a in steps] + [({}, q)]       # clip(x_i − a)
    l2 = [({k: 2}, 1) for k in range(const)] + [({const: 1}, 0)]   # clip(2g + 1): odd
    l3 = [({k: q}, 0) for k in range(const)] + [({const: 1}, 0)]   # ±Q
    l4 = []
    for c in found:
        weights = {const: -(2 * d - 1)}
        for i in range(d):
            for a, sign in ((c.lo[i], 1), (c.hi[i] + 1, -1)):
                if a == -q:
                    weights[const] += sign              # A ≡ +Q
                elif a == q + 1:
                    weights[const] -= sign              # A ≡ −Q
                else:
                    weights[index[(i, a)]] = weights.get(index[(i, a)], 0) + sign
        l4.append((weights, 0))
    l5 = []
    for n in range(len(found)):
        l5 += [({n: -1}, 1), ({n: -1}, 0)]                  # clip(1 − T), clip(−T)
    out = [({j: c.gamma * (1 if j % 2 == 0 else -1) for n, c in enumerate(found)
             for j in (2 * n, 2 * n + 1)}, 0)]
    return [_matrix(l1, d), _matrix(l2, len(l1)), _matrix(l3, len(l2)), _matrix(l4, len(l3)),
            _matrix(l5, len(l4)), _matrix(out, len(l5))]


class _Steps:
    """Saturated steps Z = Q·[ε·x ≥ τ] built from pairs of identical neurons (binary)."""

    def __init__(self, qset, d):
        self.q, self.p, self.d = qset.q_max, qset.p, d
        self.chains = {}          # (ε, τ) → (L1 bias, [biases of the pairwise layers])

    def step(self, form, tau):
        """(constant, sign, chain): [ε·x ≥ τ]·Q = constant + sign·Z_chain."""
        q, top = self.q, self.d * self.q           # ε·x ∈ [−top, top]
        if tau <= -top:
            return q, 0, None
        if tau > top:
            return 0, 0, None
        if tau < 1 - q:                            # complement: 1 − [−ε·x ≥ 1 − τ]
            constant, sign, chain = self.step(tuple(-e for e in form), 1 - tau)
            return q - constant, -sign, chain
        key = (form, tau)
        if key not in self.chains:
            self.chains[key] = self._chain(tau)
        return 0, 1, key

    def _chain(self, tau):
        q, p = self.q, self.p
        if tau <= q + 1:
            bias, r, ops = 1 - tau, 1, []          # u = relu(ε·x − τ + 1) ≥ 1 iff ε·x ≥ τ
        else:
            bias, r, ops = -q, tau - q, []         # u = relu(ε·x − Q), test u ≥ r
            while r > (q + 1) // 2:
                if r == q:                         # only u = Q passes: p halvings of Q − u
                    ops += [-q] * p
                    r = 1
                    break
                ops.append(-q)                     # u ← relu(2u − Q), r ← 2r − Q
                r = 2 * r - q
        ops.append(-(2 * r - 1))                   # ≥ 1 iff u ≥ r
        return bias, ops + [0] * p                 # doublings saturate at Q

    def layers(self):
        keys = list(self.chains)
        depth = max((len(self.chains[k][1]) for k in keys), default=0)
        l1 = []
        for form, tau in keys:
            row = ({i: e for i, e in enumerate(form)}, self.chains[(form, tau)][0])
            l1 += [row, row]
        layers = [_binary_dense(l1, self.d)]
        for level in range(depth):
            rows = []
            for k, key in enumerate(keys):
                ops = self.chains[key][1]
                weights = {j: 1 if j // 2 == k or j % 2 == 0 else -1
                           for j in range(2 * len(keys))}
                row = (weights, ops[level] if level < len(ops) else 0)
                rows += [row, row]
            layers.append(_binary_dense(rows, 2 * len(keys)))
        return layers, {key: k for k, key in enumerate(keys)}


def _binary_dense(rows, width):
    w, b = _matrix(rows, width)
    assert np.isin(w, (-1, 1)).all()
    return w, b


def _binary(table, qset, found):
    d, q, p = table.ndim, qset.q_max, qset.p
    if qset.s != 1:
        raise ValueError(f"s must be 1 for the binary construction (weights ±1 are the "
                         f"numerators ±1), not {qset.s}")
    if d > BINARY_MAX_D:
        raise ValueError(f"d must be ≤ {BINARY_MAX_D} for the binary construction, not {d}")
    steps = _Steps(qset, d)
    if d == 1:
        levels = [((1,), c.lo[0], c.hi[0]) for c in found]              # the cubes
    else:
        found = [Cube(c.lo[:-1] + (v,), c.lo[:-1] + (v,), c.gamma)
                 for c in found for v in range(c.lo[-1], c.hi[-1] + 1)]   # points
        plus = sorted({c.lo[0] + c.lo[1] for c in found})
        minus = sorted({c.lo[0] - c.lo[1] for c in found})
        levels = [((1, 1), t, t) for t in plus] + [((1, -1), t, t) for t in minus]
    parts = [(steps.step(form, lo), steps.step(form, hi + 1)) for form, lo, hi in levels]
    if not steps.chains:                # f* constant on the whole grid: one idle pair
        steps.step((1,) * d, 0)
    layers, chain_index = steps.layers()
    pairs = 2 * len(chain_index)
    rows = []
    for (c_lo, s_lo, k_lo), (c_hi, s_hi, k_hi) in parts:   # relu(2S_lo − 2S_hi − Q)
        effective = {}
        for sign, key in ((s_lo, k_lo), (-s_hi, k_hi)):
            if key is not None:
                effective[chain_index[key]] = effective.get(chain_index[key], 0) + sign
        weights = {}
        for k in range(len(chain_index)):
            e = effective.get(k, 0)
            weights[2 * k], weights[2 * k + 1] = (e, e) if e else (1, -1)
        rows.append((weights, 2 * c_lo - 2 * c_hi - q))
    layers.append(_binary_dense(rows, pairs))
    if d == 2:                                              # T_c = relu(E₊ + E₋ − others − Q)
        where = {level[:2]: n for n, level in enumerate(levels)}
        rows = []
        for c in found:
            mine = {where[((1, 1), c.lo[0] + c.lo[1])], where[((1, -1), c.lo[0] - c.lo[1])]}
            rows.append(({n: 1 if n in mine else -1 for n in range(len(levels))}, -q))
        layers.append(_binary_dense(rows, len(levels)))
    rows, out = [], {}
    for sign in (1, -1):                # bits: relu(±T over the cubes − (Q − v)) = v or 0
        for v in (1 << j for j in range(p)):
            uses = {n: 1 if c.gamma * sign > 0 and abs(c.gamma) & v else -1
                    for n, c in enumerate(found)}
            out[len(rows)] = sign
            rows.append((uses, -(q - v)))
    layers.append(_binary_dense(rows, len(found)))
    layers.append(_binary_dense([(out, 0)], len(rows)))
    return layers


def _zero(d, binary):
    """f* ≡ 0: one hidden pair whose output weights cancel (binary), or zero weights."""
    weight = 1 if binary else 0
    return [(np.full((2, d), weight, np.int64), np.zeros(2, np.int64)),
            (np.array([[weight, -weight]], np.int64), np.zeros(1, np.int64))]


def relu_like(activation, qset):
    """True when ⌈σ⌋ equals ⌈ReLU⌋ on every point of Q_{p,s}: a network only ever applies
    ⌈σ⌋ to grid points, so the ReLU constructions represent the same targets with σ. At
    s = 1 this holds for GELU, SiLU and Mish (|σ(x) − ReLU(x)| < 1/2 on the integers)."""
    grid_points = qset.numerators
    return np.array_equal(rounded_activation(activation, grid_points, qset),
                          np.clip(grid_points, 0, qset.q_max))


def represent(table, qset, *, activation="relu", binary=False):
    """The network of the paper's construction that represents ``table`` on Q^d_{p,s}.

    ``activation`` is ``"identity"``, ``"relu"``, or any σ of
    :data:`golden.fixedpoint_set.ACTIVATIONS` whose ⌈σ⌋ is ⌈ReLU⌋ on the grid
    (:func:`relu_like`), which then runs the ReLU constructions; ``binary=True`` builds the
    binary-weight variant. Raises ValueError where the construction does not apply.
    """
    table = _check_table(table, qset)
    if activation not in ACTIVATIONS and not callable(activation):
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not "
                         f"{activation!r}")
    if activation != "identity" and not relu_like(activation, qset):
        raise ValueError(f"activation must be 'identity' or one whose ⌈σ⌋ equals ⌈ReLU⌋ on "
                         f"Q_{{{qset.p},{qset.s}}} for the constructions; {activation!r} "
                         "does not")
    if binary and activation == "identity":
        raise ValueError("binary=True builds a ReLU network: activation must be 'relu' (or "
                         f"a σ equal to it on the grid), not {activation!r}")
    if binary:
        construction, build = "binary", _binary
    else:
        construction = "identity" if activation == "identity" else "relu"
        build = _identity if activation == "identity" else _relu
    found = cubes(table, qset)
    layers = build(table, qset, found) if found else _zero(table.ndim, binary)
    return PaperNetwork(tuple(layers), activation, qset, table.ndim, construction)


def exact_affine(network, x):
    """The network's weights evaluated in exact arithmetic with the identity activation: no
    rounding, no clipping. Returns Fractions (values, not numerators), [B]."""
    s = network.qset.s
    h = [[Fraction(int(v), s) for v in row] for row in np.asarray(x)]
    for w, b in network.layers:
        h = [[sum((Fraction(int(wij), s) * v for wij, v in zip(wi, row, strict=True)),
                  Fraction(0)) + Fraction(int(bi), s) for wi, bi in zip(w, b, strict=True)]
             for row in h]
    return [row[0] for row in h]
