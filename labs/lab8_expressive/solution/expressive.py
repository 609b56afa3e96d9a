"""Lab 8: expressive power under fixed-point arithmetic (seed 001, arXiv 2409.00297).

Values of Q_{p,s} = {q/s : |q| ≤ 2^p − 1} are held as their integer numerators q, as int64
numpy arrays. Fill in every TODO; ``qmac lab check 8`` grades this file (your indicator
network runs on qmac's engine in Amaranth's simulator). ``python run_on_rtl.py`` runs it
yourself.
"""

import math

import numpy as np

#: Activations of :func:`sigma_layer` (⌈σ⌋ as a clamp on numerators).
ACTIVATIONS = ("identity", "relu", "hardtanh")


def q_max(p):
    """The largest numerator of Q_{p,s}: 2^p − 1."""
    # SOLUTION: one shift.
    return (1 << p) - 1
    # END SOLUTION


def round_numerators(n, d, p):
    """⌈n / d⌋ onto Q_{p,s} as numerators: nearest integer to n/d, ties away from zero, then
    clipped to [−(2^p − 1), 2^p − 1]. ``n`` an int array, ``d`` ≥ 1 an int; integers only."""
    # SOLUTION: |n| + d/2 floored by d, the sign put back, then clip (2|n| + d) // 2d.
    n = np.asarray(n, dtype=np.int64)
    rounded = np.sign(n) * ((2 * np.abs(n) + d) // (2 * d))
    return np.clip(rounded, -q_max(p), q_max(p))
    # END SOLUTION


def activate(h, activation, p, s):
    """⌈σ⌋(h/s) as numerators, for the clamp activations: identity (clip to ±Q), ReLU (clip to
    [0, Q]), Hardtanh (clip to [−1, 1], i.e. numerators [−min(s, Q), min(s, Q)])."""
    # SOLUTION: three clamps.
    top = q_max(p)
    if activation == "identity":
        return np.clip(h, -top, top)
    if activation == "relu":
        return np.clip(h, 0, top)
    if activation == "hardtanh":
        return np.clip(h, -min(s, top), min(s, top))
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    # END SOLUTION


def network(x, layers, activation, p, s):
    """A σ-quantized network on inputs ``x`` [B, d] (numerators): for each layer (W [n, d],
    b [n], numerators), ⌈ρ⌋(h) = ⌈(h·Wᵀ + s·b) / s⌋ (the exact value h·Wᵀ/s² + b/s, rounded onto
    Q_{p,s}: numerators over s² rounded by s), then ⌈σ⌋ after every layer but the last.
    Returns the outputs [B, n_last]."""
    # SOLUTION: exact integer affine map over s², one rounding, then the activation.
    h = np.asarray(x, dtype=np.int64)
    for index, (w, b) in enumerate(layers):
        exact = h @ np.asarray(w, dtype=np.int64).T + s * np.asarray(b, dtype=np.int64)
        h = round_numerators(exact, s, p)
        if index < len(layers) - 1:
            h = activate(h, activation, p, s)
    return h
    # END SOLUTION


def identity_staircase(p, s):
    """Layers of a network with the identity activation on Q_{p,s} (s ≥ 2), one input and one
    output, that is affine in exact arithmetic but not on the grid: its outputs over every
    x ∈ Q_{p,s} are not of the form α·x + β. No value may be clipped (every exact pre-rounding
    value within ±(2^p − 1)/s): the nonlinearity must come from rounding alone."""
    # SOLUTION: multiply by 1/s (the numerator 1): x/s rounds onto the grid in steps.
    return [(np.array([[1]]), np.array([0]))]
    # END SOLUTION


def reachable(sigma, p, s, bias):
    """N_b: the numerators of ⌈b + Σ w_i x_i⌋ over any number of terms, w_i ∈ Q_{p,s} and
    x_i ∈ ⌈σ⌋(Q_{p,s}), with b = bias/s; a sorted int64 array. ``sigma`` computes ⌈σ⌋ on an
    array of numerators (clip its results to ±Q).

    The products (k/s)(v/s) with k = 1 and v in the image already generate every sum: the
    sums before rounding are exactly b + (g/s²)·Z with g the gcd of the image's numerators.
    Enumerate that lattice over the range of Q (one step beyond either end) and round."""
    # SOLUTION: gcd of the image, the lattice points as numerators over s², rounded.
    top = q_max(p)
    image = np.clip(np.asarray(sigma(np.arange(-top, top + 1)), dtype=np.int64), -top, top)
    g = math.gcd(*(int(v) for v in image))
    if g == 0:
        return np.unique(round_numerators(np.array([bias * s]), s, p))
    lo = (-(top + 1) * s - bias * s) // g - 1
    hi = ((top + 1) * s - bias * s) // g + 1
    points = bias * s + g * np.arange(lo, hi + 1, dtype=np.int64)
    return np.unique(round_numerators(points, s, p))
    # END SOLUTION


def necessary_condition(sigma, p, s):
    """Whether N_b = Q_{p,s} for some bias b ∈ Q_{∞,s} (the paper's necessary condition for
    universal representation). b = j/s matters only modulo g/s², so j in range(g) suffices."""
    # SOLUTION: try every bias of one period.
    top = q_max(p)
    image = np.clip(np.asarray(sigma(np.arange(-top, top + 1)), dtype=np.int64), -top, top)
    g = math.gcd(*(int(v) for v in image))
    return any(len(reachable(sigma, p, s, j)) == 2 * top + 1 for j in range(max(g, 1)))
    # END SOLUTION


def indicator_network(lo, hi, gamma, p, s):
    """Layers of a ReLU σ-quantized network on Q_{p,s} (one input, 1 ≤ s ≤ 2^p − 1) computing
    γ·1[lo ≤ x ≤ hi] exactly on every x of the grid (``lo`` ≤ ``hi``, ``gamma``: numerators).

    The paper's construction, in one dimension: for each step a (a = lo and a = hi + 1),
    u = ⌈ReLU⌋(x − (a − 1)/s), then step_a = u − ⌈ReLU⌋(u − 1/s) ∈ {0, 1/s}, which is 1/s
    exactly when x ≥ a/s; the indicator ⌈ReLU⌋(step_lo − step_hi) (weights ±1: numerators ±s);
    s copies of it, and an output weight γ/s on each copy (s·γ/s² = γ/s)."""
    # SOLUTION: layer by layer, as the docstring says; steps at the grid's ends are constants.
    top = q_max(p)
    steps = (lo, hi + 1)
    w1, b1 = np.zeros((2, 1), dtype=np.int64), np.zeros(2, dtype=np.int64)
    for k, a in enumerate(steps):
        if a <= -top:
            b1[k] = 1                         # x ≥ a always: u ≡ 1/s
        elif a <= top:
            w1[k, 0], b1[k] = s, 1 - a        # u = ⌈ReLU⌋(x − (a − 1)/s)
    w2 = np.array([[s, 0], [s, 0], [0, s], [0, s]], dtype=np.int64)
    b2 = np.array([0, -1, 0, -1], dtype=np.int64)
    w3 = np.tile(np.array([[s, -s, -s, s]], dtype=np.int64), (s, 1))
    b3 = np.zeros(s, dtype=np.int64)
    w4 = np.full((1, s), gamma, dtype=np.int64)
    return [(w1, b1), (w2, b2), (w3, b3), (w4, np.zeros(1, dtype=np.int64))]
    # END SOLUTION
