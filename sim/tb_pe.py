"""cocotb bench: one generated PE against exact integer arithmetic.

Output-stationary PE: passes of random depth K ≤ kmax go through back to back (``first``
restarts the accumulator, ``last`` publishes it), with idle cycles between beats; one pass has
every operand at its largest-magnitude value and K = kmax. Each published ``result`` must equal
the dot product golden.gemm computes, and operands must leave one cycle after they enter.

Weight-stationary PE (the bottom row's: ``rows − 1`` products in, ``rows`` out): random loads
into either weight bank while random activations multiply either bank, with random legal
partial sums from above, including the extreme ones that need every output bit. Every
``psum_out`` must equal ``psum_in + x · w[bank]`` (plain Python integers) exactly one or two
cycles later, ``w_load_out`` must show the selected loading bank and operands must leave one
cycle after they enter.

Spec: ``seed``, ``passes`` (output-stationary) or ``cycles`` (weight-stationary), ``idle``
(probability of an idle cycle or beat).
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from golden.gemm import exact_matmul
from hw.config import ArrayConfig
from hw.host import encode_weights

from .streams import load_spec, reset, save_report, start_clock
from .workload import random_operand


def _signed(value, width):
    value = int(value) & ((1 << width) - 1)
    return value - (1 << width) if value >> (width - 1) else value


def _bits(value, width):
    return int(value) & ((1 << width) - 1)


def _peaks(config):
    """Operand values whose product is the most negative and the most positive one."""
    (x_lo, x_hi), (w_lo, w_hi) = config.act_range, config.weight_range
    corners = [(x, w) for x in (x_lo, x_hi) for w in (w_lo, w_hi)]
    return min(corners, key=lambda c: c[0] * c[1]), max(corners, key=lambda c: c[0] * c[1])


def _passes(config, rng, count):
    passes = []
    for _ in range(count):
        depth = int(rng.integers(1, config.kmax + 1))
        x = random_operand(rng, config.act_bits, config.act_signed, (depth,))
        w = random_operand(rng, config.weight_bits, config.weight_signed, (depth,),
                           config.weight_kind)
        passes.append((x, w))
    x_peak = config.act_range[0] if config.act_signed else config.act_range[1]
    passes.append((np.full(config.kmax, x_peak), np.full(config.kmax, config.weight_range[0])))
    return passes


async def _output_stationary(dut, config, spec):
    rng = np.random.default_rng(spec.get("seed", 0))
    idle = random.Random(spec.get("seed", 0))
    passes = _passes(config, rng, spec.get("passes", 6))
    expected = [int(exact_matmul(x[None, :], w[:, None])[0, 0]) for x, w in passes]
    acc_bits = len(dut.result)
    x_bits, w_bits = len(dut.x_in), len(dut.w_in)

    await start_clock(dut)
    dut.flags_in.value = dut.x_in.value = dut.w_in.value = 0
    await reset(dut)
    results, echoes, sent = [], [], []

    async def tick():
        # Outputs are registers: stable at a falling edge, whatever the inputs do then.
        await FallingEdge(dut.clk)
        echoes.append((int(dut.x_out.value), int(dut.w_out.value)))
        if dut.result_valid.value == 1:
            results.append(_signed(dut.result.value, acc_bits))

    for x, w in passes:
        w = encode_weights(w[None, :], config)[0]
        for k in range(len(x)):
            while idle.random() < spec.get("idle", 0.0):
                dut.flags_in.value = 0
                await tick()
            beat = (_bits(x[k], x_bits), _bits(w[k], w_bits))
            dut.x_in.value, dut.w_in.value = beat
            # PassFlags: valid (bit 0), first (bit 1), last (bit 2)
            dut.flags_in.value = 1 | (int(k == 0) << 1) | (int(k == len(x) - 1) << 2)
            sent.append((len(echoes), beat))  # must be the next sample
            await tick()
    dut.flags_in.value = 0
    for _ in range(4):
        await tick()
    save_report({"results": results, "expected": expected})
    assert results == expected, f"PE results {results}, golden dot products {expected}"
    assert all(echoes[index] == beat for index, beat in sent), \
        "operands must leave the PE one cycle after they enter"


async def _weight_stationary(dut, config, spec):
    rng = np.random.default_rng(spec.get("seed", 0))
    cycles, idle = spec.get("cycles", 200), spec.get("idle", 0.0)
    latency = 1 + config.register_product + config.product_pipeline   # product registers, adder
    above = config.rows - 1                 # products already in psum_in
    (x_min, w_min), (x_max, w_max) = _peaks(config)
    p_min, p_max = x_min * w_min, x_max * w_max
    widths = {name: len(getattr(dut, name)) for name in
              ("x_in", "w_load_in", "psum_in", "psum_out")}

    def weight():
        return int(random_operand(rng, config.weight_bits, config.weight_signed, (),
                                  config.weight_kind))

    def encode(w):
        return _bits(encode_weights([w], config)[0], widths["w_load_in"])

    # (load, load_bank, w, x, bank, psum, valid) per cycle; both banks are loaded first, and
    # the last cycles put both extremes of the output range through each bank.
    plan = [(1, 0, weight(), 0, 0, 0, 0), (1, 1, weight(), 0, 0, 0, 0)]
    for _ in range(cycles):
        psum = int(rng.integers(above * p_min, above * p_max + 1))
        x = int(random_operand(rng, config.act_bits, config.act_signed, ()))
        plan.append((int(rng.random() < 0.3), int(rng.integers(2)), weight(), x,
                     int(rng.integers(2)), psum, int(rng.random() >= idle)))
    for bank in (0, 1):
        plan += [(1, bank, w_min, 0, 0, 0, 0), (0, 0, w_min, x_min, bank, above * p_min, 1),
                 (1, bank, w_max, 0, 0, 0, 0), (0, 0, w_max, x_max, bank, above * p_max, 1)]

    await start_clock(dut)
    for name in ("x_in", "flags_in", "psum_in", "w_load_in", "load", "load_bank"):
        getattr(dut, name).value = 0
    await reset(dut)
    banks = [None, None]
    expected, got, errors = [], [], []
    for t, (load, load_bank, w, x, bank, psum, valid) in enumerate(plan):
        dut.load.value, dut.load_bank.value = load, load_bank
        dut.w_load_in.value = encode(w)
        dut.x_in.value, dut.psum_in.value = _bits(x, widths["x_in"]), _bits(psum, widths["psum_in"])
        flags = valid | (int(t == len(plan) - 1) << 1) | (bank << 2)  # TileFlags: valid, last, bank
        dut.flags_in.value = flags
        await ReadOnly()
        if banks[load_bank] is not None and int(dut.w_load_out.value) != encode(banks[load_bank]):
            errors.append(f"cycle {t}: w_load_out {int(dut.w_load_out.value)}, bank {load_bank} "
                          f"holds {encode(banks[load_bank])}")
        # None: the bank was never loaded (the first two cycles only).
        expected.append(None if banks[bank] is None else psum + x * banks[bank])
        if load:
            banks[load_bank] = w
        await FallingEdge(dut.clk)
        got.append(_signed(dut.psum_out.value, widths["psum_out"]))
        if (int(dut.x_out.value), int(dut.flags_out.value)) != (_bits(x, widths["x_in"]), flags):
            errors.append(f"cycle {t}: operands did not leave one cycle after they entered")
    for _ in range(latency):
        await FallingEdge(dut.clk)
        got.append(_signed(dut.psum_out.value, widths["psum_out"]))
    pairs = [(t, e, got[t + latency - 1]) for t, e in enumerate(expected) if e is not None]
    errors += [f"cycle {t}: psum_out {g}, expected {e}" for t, e, g in pairs if g != e]
    peak = max(abs(e) for _, e, _ in pairs)
    save_report({"checked": len(pairs), "peak": peak, "errors": errors[:10]})
    assert not errors, "; ".join(errors[:5])


@cocotb.test()
async def pe_computes_exactly(dut):
    spec = load_spec()
    config = ArrayConfig.from_dict(spec["config"])
    if config.weight_stationary:
        await _weight_stationary(dut, config, spec)
    else:
        await _output_stationary(dut, config, spec)
