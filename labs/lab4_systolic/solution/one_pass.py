"""Lab 4, step 5: one output-stationary pass through qmac's MacArray, as a waveform.

Run from your lab folder: ``python one_pass.py [--rows 2] [--cols 2] [--k 4]`` (a few
seconds). It streams one pass of random int8 operands into the array in Amaranth's
simulator, writes ``one_pass.vcd`` (open it in GTKWave or Surfer to see every signal) and
draws the signals that tell the story into ``one_pass.svg`` and ``one_pass.png``: the
operand stream, each PE's accumulator (the skew shows in when each one starts), and the
result stream, with the cycles of the first and last beats and of each result row marked in
red. It prints the path of every file it writes.
"""

import argparse

import numpy as np
from amaranth.sim import Simulator

from hw.config import ArrayConfig
from hw.host import LayerParams, encode_weights
from hw.top import MacArray
from sim.waves import render_vcd

#: What the picture shows (shell patterns on signal names; see `qmac waves --help`).
SIGNALS = ("clk", "operands__valid", "operands__ready", "*operands__payload.x[[]*",
           "*operands__payload.w[[]*", "*operands__payload.last", "*core.pe_*.acc",
           "*core.result_valid*", "results__valid", "*results__payload.y[[]*")
#: int8 operands.
LO, HI = -128, 127


def one_pass(rows, cols, k, seed=0, vcd="one_pass.vcd"):
    """Stream one pass of K random beats into a rows × cols output-stationary MacArray and
    record it to ``vcd``; returns (x [rows, K], w [cols, K], result rows, {cycle: event}) with
    the cycles (rising edges, from 0) of the first and last beats and of each result row."""
    config = ArrayConfig(rows=rows, cols=cols, kmax=max(k, 2))
    rng = np.random.default_rng(seed)
    x = rng.integers(LO, HI + 1, size=(rows, k))
    w = rng.integers(LO, HI + 1, size=(cols, k))
    params = LayerParams.for_config(config, n=cols, bias=np.zeros(cols, dtype=np.int64),
                                    multiplier=np.full(cols, 1 << 30), shift=np.full(cols, -8),
                                    output_zero_point=0, act_min=LO, act_max=HI)
    dut = MacArray(config)
    results = []
    cycle, events = [0], {}

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def driver(ctx):
        for j in range(cols):
            ctx.set(dut.bias[j], int(params.hardware_bias(config, w)[j]))
        for c in range(config.requant_channels):
            ctx.set(dut.multiplier[c], int(params.multiplier[c]))
            ctx.set(dut.shift[c], int(params.shift[c]))
        ctx.set(dut.act_min, LO)
        ctx.set(dut.act_max, HI)
        encoded = encode_weights(w, config)
        for beat in range(k):
            ctx.set(dut.operands.valid, 1)
            for r in range(rows):
                ctx.set(dut.operands.payload.x[r], int(x[r, beat]))
            for c in range(cols):
                ctx.set(dut.operands.payload.w[c], int(encoded[c, beat]))
            ctx.set(dut.operands.payload.last, beat == k - 1)
            await ctx.tick().until(dut.operands.ready)
            if beat in (0, k - 1):
                events[cycle[0] - 1] = "first beat" if beat == 0 else "last beat"
        ctx.set(dut.operands.valid, 0)

    async def sink(ctx):
        ctx.set(dut.results.ready, 1)
        while len(results) < rows:
            *_, valid, payload = await ctx.tick().sample(dut.results.valid, dut.results.payload)
            if valid:
                results.append([int(payload.y[j]) for j in range(cols)])
                events[cycle[0] - 1] = f"row {len(results) - 1} out"
        await ctx.tick().repeat(2)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(clock)
    sim.add_testbench(driver)
    sim.add_testbench(sink)
    with sim.write_vcd(vcd):
        sim.run()
    return x, w, results, events


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--cols", type=int, default=2)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    x, w, results, events = one_pass(args.rows, args.cols, args.k)
    print(f"x =\n{x}\nw =\n{w}\nexact sums x·wᵀ =\n{x @ w.T}\nrequantized rows: {results}")
    print("one_pass.vcd")
    for path in render_vcd("one_pass.vcd", ["one_pass.svg", "one_pass.png"], signals=SIGNALS,
                           markers=events,
                           title=f"one output-stationary pass: {args.rows}×{args.cols} array, "
                                 f"K = {args.k}"):
        print(path)


if __name__ == "__main__":
    main()
