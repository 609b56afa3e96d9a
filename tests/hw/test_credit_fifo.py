# amaranth: UnusedElaboratable=no
"""CreditFIFO: every beat written leaves on ``o`` once, in order, under random consumer
stalls; ``o`` keeps the stream rule; an unstalled beat leaves FIFO_LATENCY cycles after it
was written; credits never let the producer overflow it."""

import random

import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from hw.requantizer import FIFO_LATENCY
from hw.top import CreditFIFO


@pytest.mark.parametrize("depth", [2, 5])
@pytest.mark.parametrize("seed", range(3))
def test_every_beat_once_in_order_under_stalls(depth, seed):
    dut = CreditFIFO(unsigned(8), depth=depth, max_reserve=1)
    rng = random.Random(seed * 10 + depth)
    beats = 60
    written, read, violations = [], [], []

    async def producer(ctx):
        value = 0
        for _ in range(beats * 12):     # bounded: a FIFO that loses credits stops it
            if value == beats:
                return
            # claim a place only against a credit, write the beat two cycles later
            if ctx.get(dut.credits) and rng.random() < 0.7:
                ctx.set(dut.reserve, 1)
                await ctx.tick()
                ctx.set(dut.reserve, 0)
                await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, value)
                written.append(value)
                value += 1
                await ctx.tick()
                ctx.set(dut.i.valid, 0)
            else:
                await ctx.tick()

    async def consumer(ctx):
        waiting = None      # the payload a beat offered and not taken showed
        for _ in range(beats * 12):
            ready = rng.random() < 0.4
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-8)
            valid, payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            if waiting is not None and (not valid or payload != waiting):
                violations.append((waiting, valid, payload))
            if valid and ready:
                read.append(payload)
            waiting = payload if valid and not ready else None
            await ctx.tick()
            if len(read) == beats:
                return

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert read == written == list(range(beats))
    assert violations == []


def test_unstalled_beat_leaves_fifo_latency_cycles_after_it_is_written():
    dut = CreditFIFO(unsigned(8), depth=4, max_reserve=1)
    seen = {}

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, 0xA5)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for cycle in range(1, 6):
            if ctx.get(dut.o.valid):
                seen[cycle] = ctx.get(dut.o.payload)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen == {FIFO_LATENCY: 0xA5}
