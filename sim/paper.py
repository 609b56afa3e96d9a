"""σ-quantized networks of the seed paper on the simulated engine, checked against golden/.

A layer under Q_{p,s} computes, on numerators, ``clip(round_away((s·b + Σ w·x) / s), ±Q)``
then ⌈σ⌋. On the engine (:func:`sim.gemm.gemm`) that is one GEMM of numerators
((p+1)-bit operands; ±1 weights on a binary array) with bias s·b, the requantizer dividing
by s exactly (:func:`golden.exact_division.exact_divider`: shift-only for a power of two,
else M0 = ⌈2^k/s⌉ with ``rounding="half_away_from_zero"``), and its clamp [act_min, act_max]
computing ⌈σ⌋ for identity, ReLU and Hardtanh. Other activations run through the engine's
activation table (``EngineConfig(activation_table=True)``, :mod:`hw.engine.activation`),
loaded with golden's ⌈σ⌋ by each hidden layer's command and bypassed by the output layer's.

Every layer's outputs are compared with golden's σ-quantized network
(:func:`golden.fixedpoint_set.quantized_network` of that layer, then ⌈σ⌋), and
:func:`sim.gemm.gemm` compares each GEMM with golden's requantizer arithmetic as well.
"""

from dataclasses import dataclass

import numpy as np

from golden.accumulator import dot_product_bounds
from golden.exact_division import DIVISION_ROUNDING, exact_divider
from golden.fixedpoint_set import CLAMP_ACTIVATIONS, quantized_network, rounded_activation
from golden.paper import grid, represent
from hw.config import ArrayConfig

from .gemm import MismatchError, engine_config_for, gemm

__all__ = ["PaperRun", "engine_array", "random_search", "run_network", "run_target"]

#: Largest p the engine holds: numerators are (p+1)-bit weights, at most 8 bits.
MAX_P = 7
#: Most output channels of one engine command: a wider layer runs as several commands (the
#: engine holds a command's weights, so one modest engine serves every network).
MAX_CHANNELS = 256


@dataclass
class PaperRun:
    outputs: np.ndarray    # [B] the engine's final numerators
    expected: np.ndarray   # [B] golden's σ-quantized network
    cycles: int            # engine cycles, summed over the layers (table loads included)
    config: object         # the hw.engine.EngineConfig that ran
    divider: object        # golden.exact_division.ExactDivider
    #: the simulator's own seconds, summed over the commands (Icarus, Verilator; builds and
    #: the host's work excluded), None in Amaranth's simulator
    sim_seconds: float | None = None


def _clamp(activation, qset, last):
    q = qset.q_max
    if last or activation not in ("relu", "hardtanh"):
        return -q, q
    if activation == "relu":
        return 0, q
    return -min(qset.s, q), min(qset.s, q)


def engine_array(qset, m, k, n, *, binary=False, rows=4, cols=4,
                 dataflow="output_stationary", activation_table=False):
    """The :class:`hw.engine.EngineConfig` and divider for GEMMs up to ``m``×``k``×``n``.

    One engine (one build) serves every layer of a network. The divider is exact for every
    accumulator this engine produces: dot products up to its ``max_k`` deep of its operand
    ranges (:func:`golden.accumulator.dot_product_bounds`) plus a bias s·b, |b| ≤ Q.
    ``activation_table`` builds the engine's table ((p+1)-bit outputs: 2^(p+1) entries).
    """
    if not 1 <= qset.p <= MAX_P:
        raise ValueError(f"p must be in [1, {MAX_P}] on the engine ((p+1)-bit weights ≤ 8 "
                         f"bits), not {qset.p}")
    bits = qset.p + 1
    base = ArrayConfig(rows=rows, cols=cols, act_bits=bits, out_bits=bits,
                       weight_bits=1 if binary else bits,
                       weight_kind="binary" if binary else "integer", dataflow=dataflow)
    engine = engine_config_for(base, m, k, n)
    lo, hi = dot_product_bounds(engine.max_k, base.act_range, base.weight_range)
    bound = max(-lo, hi) + qset.s * qset.q_max
    divider = exact_divider(qset.s, bound, shift_range=base.shift_range)
    array = base.replace(requant=divider.requant, rounding=DIVISION_ROUNDING)
    return engine.replace(array=array, activation_table=activation_table), divider


def run_network(layers, activation, qset, x, *, binary=False, sim="amaranth", rows=4, cols=4):
    """Run a σ-quantized network (``layers`` of numerator (W, b)) on inputs ``x`` [B, d].

    A layer of more than :data:`MAX_CHANNELS` neurons runs as one command per
    :data:`MAX_CHANNELS` of them. Raises :class:`sim.gemm.MismatchError` where a layer's
    outputs differ from golden's.
    """
    x = np.asarray(x, dtype=np.int64)
    table = None
    if activation not in CLAMP_ACTIVATIONS:
        table = rounded_activation(activation, qset.numerators, qset)
    width = min(max(w.shape[0] for w, _ in layers), MAX_CHANNELS)
    config, divider = engine_array(qset, len(x), max(w.shape[1] for w, _ in layers), width,
                                   binary=binary, rows=rows, cols=cols,
                                   activation_table=table is not None)
    h, cycles, sim_seconds = x, 0, 0.0
    for index, (w, b) in enumerate(layers):
        last = index == len(layers) - 1
        act_min, act_max = _clamp(activation, qset, last)
        bias = qset.s * np.asarray(b)
        parts = []
        for first in range(0, len(w), MAX_CHANNELS):
            channels = slice(first, first + MAX_CHANNELS)
            # ⌈σ⌋ of a hidden layer in the engine's table; the output layer bypasses it
            result = gemm(config, h, w[channels], bias=bias[channels],
                          multiplier=divider.multiplier, shift=divider.shift, act_min=act_min,
                          act_max=act_max, table=None if last else table,
                          table_lo=-qset.q_max, sim=sim)
            parts.append(result.y)
            cycles += result.cycles
            sim_seconds = None if result.sim_seconds is None else sim_seconds + result.sim_seconds
        y = np.concatenate(parts, axis=1)
        expected = quantized_network(h, [(w, b)], activation, qset)
        if not last:
            expected = rounded_activation(activation, expected, qset)
        if not np.array_equal(y, expected):
            wrong = np.argwhere(y != expected)[0]
            raise MismatchError(f"layer {index}: {int((y != expected).sum())} outputs differ "
                                f"from golden's σ-quantized network; first at {tuple(wrong)}: "
                                f"engine {y[tuple(wrong)]}, golden {expected[tuple(wrong)]}")
        h = y
    golden_out = quantized_network(x, list(layers), activation, qset)
    return PaperRun(h[:, 0], golden_out[:, 0], cycles, config, divider, sim_seconds)


def run_target(table, qset, *, activation="relu", binary=False, sim="amaranth", rows=4,
               cols=4):
    """Build the paper's network for ``table`` (:func:`golden.paper.represent`), run it on
    every grid point on the engine; returns (network, :class:`PaperRun`). The caller compares
    ``run.outputs`` with the table (the theorem)."""
    network = represent(table, qset, activation=activation, binary=binary)
    run = run_network(network.layers, activation, qset, grid(qset, network.d), binary=binary,
                      sim=sim, rows=rows, cols=cols)
    return network, run


def random_search(activation, qset, networks, *, seed=0, max_width=4, sim="amaranth"):
    """Random 1-w-1 σ-quantized networks (w ≤ ``max_width``) on every point of Q_{p,s} on
    the engine. Returns a list of (output bias numerator, outputs, N_b of that bias); raises
    :class:`sim.gemm.MismatchError` if an output leaves N_b (the paper's necessary set)."""
    from golden.fixedpoint_set import reachable_outputs

    q = qset.q_max
    generators = rounded_activation(activation, qset.numerators, qset)
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(networks):
        width = int(rng.integers(1, max_width + 1))
        layers = [(rng.integers(-q, q + 1, (width, 1)), rng.integers(-q, q + 1, width)),
                  (rng.integers(-q, q + 1, (1, width)), rng.integers(-q, q + 1, 1))]
        run = run_network(layers, activation, qset, grid(qset, 1), sim=sim)
        bias = int(layers[-1][1][0])
        reached = reachable_outputs(generators, qset, bias)
        if not np.isin(run.outputs, reached).all():
            raise MismatchError(f"a {activation} network with output bias {bias} reached "
                                f"{sorted(set(run.outputs.tolist()) - set(reached.tolist()))}, "
                                "outside N_b")
        found.append((bias, run.outputs, reached))
    return found
