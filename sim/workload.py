"""Random, legal work for a MacArray and what golden/ says it must produce.

One generator serves every simulator (Amaranth's, Icarus, Verilator): a :class:`Workload` is
a function of the configuration and a seed, so a cocotb bench rebuilds it from a few JSON
numbers and judges the RTL with golden/ itself.
"""

from dataclasses import dataclass, field

import numpy as np

from golden.layers import fully_connected
from hw.config import ArrayConfig
from hw.host import LayerParams

__all__ = ["Workload", "random_operand", "random_layer", "random_workload", "worst_case_workload"]


def random_operand(rng, bits, signed, shape, kind="integer"):
    """Uniform operands over the whole range of their type."""
    if kind == "binary":
        return rng.choice(np.array([-1, 1], np.int64), size=shape)
    if kind == "ternary":
        return rng.integers(-1, 2, size=shape, dtype=np.int64)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


#: The largest left shift :func:`random_layer` draws (multipliers up to 4).
RANDOM_MAX_LEFT_SHIFT = 2


def random_layer(config, rng, *, zero_points=False):
    """Random run-time parameters within what ``config`` can hold."""
    n = config.cols
    out_lo, out_hi = config.out_range
    per = config.requant_channels
    if config.requant == "multiplier":
        multiplier = rng.integers(1 << 30, 1 << 31, size=per, dtype=np.int64)
        if config.max_left_shift:   # left shifts too, but small: most outputs stay unclamped
            top = min(config.max_left_shift, RANDOM_MAX_LEFT_SHIFT)
            shift = rng.integers(-12, top + 1, size=per, dtype=np.int64)
        else:
            shift = -rng.integers(4, 12, size=per, dtype=np.int64)
    else:
        multiplier = None
        shift = -rng.integers(3, 10, size=per, dtype=np.int64)
    act_lo, act_hi = config.act_zero_point_range
    input_zero_point = int(rng.integers(act_lo, act_hi + 1)) if zero_points else 0
    weight_zero_point = 0
    if zero_points and config.weight_zero_point_in_hw:
        weight_zero_point = int(rng.integers(*config.weight_zero_point_range))
    return LayerParams.for_config(
        config, n=n, bias=rng.integers(-2000, 2000, size=n, dtype=np.int64),
        multiplier=multiplier, shift=shift,
        output_zero_point=int(rng.integers(out_lo // 2, out_hi // 2 + 1)),
        act_min=out_lo + 3, act_max=out_hi - 2, input_zero_point=input_zero_point,
        weight_zero_point=weight_zero_point)


@dataclass
class Workload:
    """Jobs for one run and the rows golden/ expects, in delivery order.

    Output-stationary job: (x [rows, K], w [cols, K]), one pass; weight-stationary job:
    (x [B, rows], w [cols, rows]), one weight tile and B activation vectors.
    """
    config: ArrayConfig
    layer: LayerParams
    jobs: list = field(default_factory=list)
    expected: np.ndarray = None          # [rows delivered, cols]

    @property
    def params(self):
        """Hardware-ready run-time parameters (input zero point folded unless in hardware)."""
        config, layer = self.config, self.layer
        return dict(bias=layer.hardware_bias(config, self.jobs[0][1]),
                    multiplier=layer.multiplier[:config.requant_channels],
                    shift=layer.shift[:config.requant_channels],
                    output_zero_point=layer.output_zero_point, act_min=layer.act_min,
                    act_max=layer.act_max, input_zero_point=layer.input_zero_point,
                    weight_zero_point=layer.weight_zero_point)

    @property
    def macs(self):
        return sum(x.shape[0] * x.shape[1] * w.shape[0] for x, w in self.jobs)


def _golden(config, layer, x, w):
    return fully_connected(
        x, w, layer.bias, input_zero_point=layer.input_zero_point,
        weight_zero_point=layer.weight_zero_point, output_zero_point=layer.output_zero_point,
        multiplier=None if config.requant == "shift" else layer.multiplier,
        shift=layer.shift, act_min=layer.act_min, act_max=layer.act_max,
        rounding=config.rounding)


def random_workload(config, *, seed=0, jobs=4, zero_points=False, depth=None):
    """``jobs`` random passes (tiles) with random depth K ≤ kmax (unless ``depth`` is given).

    A folded input zero point makes the bias depend on the weights, and the bias is a
    per-layer parameter, so with ``zero_points`` (folded) every job shares one weight matrix,
    as in a real layer.
    """
    rng = np.random.default_rng(seed)
    layer = random_layer(config, rng, zero_points=zero_points)
    shared_weights = zero_points and not config.input_zero_point_in_hw
    fixed_depth = shared_weights or depth is not None
    if config.weight_stationary:
        depth = config.rows
    elif depth is None:
        depth = int(rng.integers(1, config.kmax + 1))
    w_shared = random_operand(rng, config.weight_bits, config.weight_signed,
                              (config.cols, depth), config.weight_kind)
    work = Workload(config, layer)
    expected = []
    for _ in range(jobs):
        if config.weight_stationary:
            k, batch = config.rows, int(rng.integers(1, 5))
        else:
            k = depth if fixed_depth else int(rng.integers(1, config.kmax + 1))
            batch = config.rows
        x = random_operand(rng, config.act_bits, config.act_signed, (batch, k))
        w = w_shared if shared_weights else random_operand(
            rng, config.weight_bits, config.weight_signed, (config.cols, k), config.weight_kind)
        expected.append(_golden(config, layer, x, w))
        work.jobs.append((x, w))
    work.expected = np.concatenate(expected)
    return work


def worst_case_workload(config, *, jobs=2):
    """Every operand at its most negative value (largest |product|) and K = kmax: the largest
    accumulator any pass can reach. The requantizer passes it through a tiny multiplier so
    the result is not merely clamped."""
    lo_x = config.act_range[0] if config.act_signed else config.act_range[1]
    lo_w = config.weight_range[0]
    depth = config.rows if config.weight_stationary else config.kmax
    batch = config.rows
    peak = depth * lo_x * lo_w
    # pick the shift so that peak lands inside the output range: |peak|·2^shift < out_hi/2
    out_hi = config.out_range[1]
    shift = -max(0, (abs(peak) // max(out_hi // 2, 1)).bit_length())
    shift = max(shift, config.shift_range[0])
    layer = LayerParams.for_config(
        config, n=config.cols, bias=np.zeros(config.cols, np.int64),
        multiplier=None if config.requant == "shift" else (1 << 31) - 1, shift=shift,
        output_zero_point=0, act_min=config.out_range[0], act_max=out_hi)
    x = np.full((batch, depth), lo_x, np.int64)
    w = np.full((config.cols, depth), lo_w, np.int64)
    work = Workload(config, layer, jobs=[(x, w)] * jobs)
    work.expected = np.concatenate([_golden(config, layer, x, w)] * jobs)
    return work
