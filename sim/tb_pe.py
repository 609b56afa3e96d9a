"""cocotb bench: one generated output-stationary PE against an exact dot product.

Passes of random depth K ≤ kmax go through back to back (``first`` restarts the accumulator,
``last`` publishes it), with idle cycles between beats; one pass has every operand at its
largest-magnitude value and K = kmax. Each published ``result`` must equal the dot product
golden.gemm computes, and operands must leave one cycle after they enter.
Spec: ``seed``, ``passes``, ``idle`` (probability of an idle cycle).
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from golden.gemm import exact_matmul
from hw.config import ArrayConfig
from hw.host import encode_weights

from .streams import load_spec, reset, save_report, start_clock
from .workload import random_operand


def _signed(value, width):
    value = int(value) & ((1 << width) - 1)
    return value - (1 << width) if value >> (width - 1) else value


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


@cocotb.test()
async def pe_accumulates_exactly(dut):
    spec = load_spec()
    config = ArrayConfig.from_dict(spec["config"])
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
            beat = (int(x[k]) & ((1 << x_bits) - 1), int(w[k]) & ((1 << w_bits) - 1))
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
