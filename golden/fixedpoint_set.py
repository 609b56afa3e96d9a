"""The fixed-point set Q_{p,s} and σ-quantized networks (seed 001; seed 000, last part).

Definitions, as the paper states them:

* ``Q_{p,s} = {q/s : q ∈ [−2^p + 1, 2^p − 1] ∩ Z}`` (p < ∞), ``Q_{∞,s} = {q/s : q ∈ Z}``.
  A value is held as its integer numerator q, so nothing here is floating point.
* ``⌈x⌋`` rounds onto Q_{p,s}: to the nearest point, ties away from zero, clipped to
  ±(2^p − 1)/s. ``⌈σ⌋(x) = ⌈σ(x)⌋``.
* A σ-quantized network rounds after every affine map and after every activation:
  ``⌈ρ_L⌋ ∘ ⌈σ⌋ ∘ ⌈ρ_{L−1}⌋ ∘ … ∘ ⌈σ⌋ ∘ ⌈ρ_1⌋`` with weights and biases in Q_{p,s}.
* ``V = {⌈σ⌋(x) − ⌈σ⌋(y) : x, y ∈ Q_{p,s}}``;
  ``S_b = {⌈b + Σ w_i x_i⌋ : n ≥ 0, w_i ∈ Q_{p,s}, x_i ∈ V}`` (sufficient: S_b = Q_{p,s} for
  some b ∈ Q_{∞,s}, with Condition 1); ``N_b = {⌈b + Σ w_i x_i⌋ : w_i ∈ Q_{p,s},
  x_i ∈ ⌈σ⌋(Q_{p,s})}`` (necessary: N_b = Q_{p,s} for some b).

The sums inside S_b and N_b range over arbitrarily many terms of a sign-symmetric set T of
products (k/s)(v/s), so before rounding they form exactly the lattice ``b + (g/s²)·Z`` with g
the gcd of the integers k·v, i.e. of the numerators v (k = 1 is allowed). :func:`analyze`
enumerates V, computes g, and enumerates the rounded lattice for every b in one period.

GELU, SiLU, ELU, SoftPlus and Mish are transcendental: they are evaluated in float64 and
rounded onto the grid, and :func:`rounded_activation` raises if any value lies within 1e-9
of a rounding tie, where float64 error could decide it; on the small grids here no value
comes close.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .rounding import round_div

__all__ = ["ACTIVATIONS", "CLAMP_ACTIVATIONS", "FixedPointSet", "Analysis", "analyze",
           "quantized_network", "reachable_outputs", "rounded_activation"]

ACTIVATIONS = ("identity", "relu", "hardtanh", "hardtanh5", "gelu", "silu", "elu", "softplus",
               "mish")
#: Activations that are clamps on the grid (the requantizer's act_min/act_max computes them);
#: the others need a table (hw.activation).
CLAMP_ACTIVATIONS = ("identity", "relu", "hardtanh")
_TIE_MARGIN = 1e-9


@dataclass(frozen=True)
class FixedPointSet:
    """Q_{p,s}: numerators q in [−(2^p − 1), 2^p − 1] over the integer scale s."""
    p: int
    s: int

    def __post_init__(self):
        if isinstance(self.p, bool) or not isinstance(self.p, int) or not 1 <= self.p <= 30:
            raise ValueError(f"p must be an integer in 1..30; got {self.p!r}")
        if isinstance(self.s, bool) or not isinstance(self.s, int) or self.s < 1:
            raise ValueError(f"s must be a positive integer; got {self.s!r}")

    @property
    def q_max(self):
        """Largest numerator, 2^p − 1 (the largest value is q_max / s)."""
        return (1 << self.p) - 1

    @property
    def numerators(self):
        return np.arange(-self.q_max, self.q_max + 1, dtype=np.int64)

    def values(self):
        return [Fraction(int(q), self.s) for q in self.numerators]

    def __len__(self):
        return 2 * self.q_max + 1

    def round(self, value):
        """⌈value⌋ of a real (Fraction or int) as a numerator: nearest, ties away, clipped."""
        numerator = round_div(Fraction(value).numerator * self.s, Fraction(value).denominator)
        return max(-self.q_max, min(self.q_max, int(numerator)))

    def round_numerators(self, numerators, denominator):
        """⌈n / (denominator·s)⌋·s for integer arrays ``numerators``, vectorized."""
        rounded = round_div(np.asarray(numerators, dtype=np.int64), denominator)
        return np.clip(rounded, -self.q_max, self.q_max)


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigma(name, x):
    if name == "gelu":
        return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))
    if name == "silu":
        return x / (1.0 + math.exp(-x))
    if name == "elu":
        return x if x > 0 else math.expm1(x)
    if name == "softplus":
        return _softplus(x)
    if name == "mish":
        return x * math.tanh(_softplus(x))
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")


def rounded_activation(name, numerators, qset):
    """⌈σ⌋ on points q/s of ``qset``, given and returned as numerators (int64 array).

    ``name`` is one of :data:`ACTIVATIONS` or a callable computing ⌈σ⌋ on numerators itself
    (its results are clipped onto Q_{p,s}).
    """
    q = np.asarray(numerators, dtype=np.int64)
    if callable(name):
        return np.clip(np.asarray(name(q), dtype=np.int64), -qset.q_max, qset.q_max)
    if name == "identity":
        return np.clip(q, -qset.q_max, qset.q_max)
    if name == "relu":
        return np.clip(q, 0, qset.q_max)
    if name == "hardtanh":  # clip to [−1, 1]
        return np.clip(q, -min(qset.s, qset.q_max), min(qset.s, qset.q_max))
    if name == "hardtanh5":  # 5·Hardtanh, the paper's example of a failing activation
        return np.clip(5 * np.clip(q, -qset.s, qset.s), -qset.q_max, qset.q_max)
    out = np.empty_like(q)
    for index, value in np.ndenumerate(q):
        scaled = _sigma(name, int(value) / qset.s) * qset.s
        if abs(abs(scaled) % 1.0 - 0.5) < _TIE_MARGIN:
            raise ValueError(f"{name}({int(value)}/{qset.s}) is within {_TIE_MARGIN} of a "
                             "rounding tie; float64 cannot decide it")
        out[index] = math.copysign(math.floor(abs(scaled) + 0.5), scaled)
    return np.clip(out, -qset.q_max, qset.q_max)


def quantized_network(x, layers, activation, qset):
    """Evaluate a σ-quantized network on inputs ``x`` (numerators, shape [B, d]).

    ``layers`` is a list of (W, b) with numerator arrays W [out, in], b [out]; every affine
    map is computed exactly ((W·x)/s² + b/s) and rounded onto Q_{p,s}; σ (then rounding)
    follows every layer but the last. Returns numerators [B, out].
    """
    h = np.asarray(x, dtype=np.int64)
    for index, (weights, bias) in enumerate(layers):
        weights = np.asarray(weights, dtype=np.int64)
        bias = np.asarray(bias, dtype=np.int64)
        for name, array in (("weights", weights), ("bias", bias)):
            if np.abs(array).max(initial=0) > qset.q_max:
                raise ValueError(f"layer {index} {name} must be numerators of Q_{{p,s}}, "
                                 f"|q| ≤ {qset.q_max}")
        exact = h @ weights.T + bias * qset.s          # numerators over s²
        h = qset.round_numerators(exact, qset.s)
        if index < len(layers) - 1:
            h = rounded_activation(activation, h, qset)
    return h


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyze` found for one (σ, p, s)."""
    activation: object        # a name of ACTIVATIONS or the callable given
    p: int
    s: int
    V: tuple                  # sorted numerators of V_{σ,p,s} (values v/s)
    condition_1: bool         # ⌈σ⌋ reaches its maximum exactly from some z on
    z: object                 # that threshold (a Fraction), or None
    sufficient_biases: tuple  # numerators of b (over s) with S_b = Q, one period
    necessary_biases: tuple   # numerators of b (over s) with N_b = Q, one period

    @property
    def sufficient(self):
        """The paper's sufficient condition: Condition 1 and S_b = Q_{p,s} for some b."""
        return self.condition_1 and bool(self.sufficient_biases)

    @property
    def necessary(self):
        """The paper's necessary condition: N_b = Q_{p,s} for some b."""
        return bool(self.necessary_biases)


def reachable_outputs(generators, qset, bias):
    """Numerators of ⌈b + Σ w_i x_i⌋ over any number of terms, w_i ∈ Q_{p,s} and x_i/s with
    x_i in ``generators`` (numerators), b = ``bias``/s: the rounded lattice
    ``b + (g/s²)·Z`` with g the gcd of the generators (sorted int64 array)."""
    g = math.gcd(*(int(v) for v in generators))
    s, q_max = qset.s, qset.q_max
    if g == 0:  # the sums are just b
        return np.unique(qset.round_numerators(np.array([bias * s]), s))
    # lattice points (j·s + g·t)/s² over the range of Q plus one step either side
    lo = (-(q_max + 1) * s - bias * s) // g - 1
    hi = ((q_max + 1) * s - bias * s) // g + 1
    points = bias * s + g * np.arange(lo, hi + 1, dtype=np.int64)
    return np.unique(qset.round_numerators(points, s))


def _covering_biases(generators, qset):
    """Numerators j of b = j/s for which ⌈b + (g/s²)·Z⌋ covers Q_{p,s}."""
    g = math.gcd(*(int(v) for v in generators))
    if g == 0:  # the sums are just b: one point cannot cover Q
        return ()
    period = g // math.gcd(g, qset.s)  # j/s mod g/s² repeats with period g/gcd(g, s) in j
    return tuple(j for j in range(period)
                 if len(reachable_outputs(generators, qset, j)) == len(qset))


def analyze(activation, p, s):
    """Enumerate V_{σ,p,s}, S_b and N_b and report the paper's conditions for σ on Q_{p,s}."""
    if not callable(activation) and activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; "
                         f"got {activation!r}")
    qset = FixedPointSet(p, s)
    if len(qset) > 1 << 12:
        raise ValueError(f"p={p} gives {len(qset)} points; analyze enumerates, keep p ≤ 11")
    grid = qset.numerators
    outputs = rounded_activation(activation, grid, qset)
    differences = np.unique(outputs[:, None] - outputs[None, :])
    top = outputs.max()
    at_top = outputs == top
    first = int(np.argmax(at_top))
    condition_1 = bool(at_top[first:].all()) and bool((outputs[:first] < top).all())
    z = Fraction(int(grid[first]), s) if condition_1 else None
    return Analysis(activation, p, s, tuple(int(v) for v in differences), condition_1, z,
                    _covering_biases(differences, qset), _covering_biases(outputs, qset))
