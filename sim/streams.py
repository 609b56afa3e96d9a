"""cocotb plumbing for amaranth.lib.stream ports: a driver, a sink, a cycle counter.

Amaranth flattens a stream port ``p`` into ``p__valid``, ``p__ready`` and ``p__payload``
(the payload layout packed into one vector); payloads are packed and unpacked with the
same ``amaranth.lib.data`` layouts the hardware uses (:func:`hw.top.stream_layouts`).

Timing convention: every signal is written just after a falling clock edge and sampled in
the read-only phase before the next rising edge, where a beat transfers iff valid and ready
are both high.

The sink is also a protocol monitor: a producer that has raised ``valid`` must keep it and its
payload until the transfer (rule 2 of Amaranth's stream data transfer rules), so a withdrawn
or changed beat is recorded as a violation even when no row is lost. :func:`scoreboard`
compares what came out with golden/'s expectation, every element.
"""

import json
import os
import random

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = ["MAX_STALL", "CycleCounter", "StreamDriver", "StreamSink", "check_stall", "load_spec",
           "pack", "reset", "save_report", "scoreboard", "start_clock", "unpack", "wait_until"]

#: Largest stall probability a bench takes. A beat waits 1 / (1 − stall) cycles on average,
#: so 0.9 means ten; the benches' cycle budgets (and patience) assume no more, and at 1 no
#: beat would ever move.
MAX_STALL = 0.9


def check_stall(stall, name="stall"):
    """``stall`` as a float, or ValueError/TypeError unless a probability in [0, MAX_STALL]."""
    if isinstance(stall, bool) or not isinstance(stall, int | float):
        raise TypeError(f"{name} must be a number, not {stall!r}")
    if not 0 <= stall <= MAX_STALL:   # NaN fails too
        raise ValueError(f"{name} must be in [0, {MAX_STALL}], not {stall!r}")
    return float(stall)


def load_spec():
    with open(os.environ["QMAC_SPEC"]) as file:
        return json.load(file)


def save_report(report):
    with open(os.environ["QMAC_REPORT"], "w") as file:
        json.dump(report, file)


def scoreboard(got, expected, *, got_lasts=None, expected_lasts=None, inputs=None):
    """Compare delivered rows with golden's, every element and every ``last`` flag.

    Returns None when they agree, else a message naming the first difference (and the input
    there, when ``inputs`` — an array shaped like ``expected`` — is given).
    """
    got, expected = np.asarray(got, np.int64), np.asarray(expected, np.int64)
    if got.shape != expected.shape:
        return f"delivered {got.shape[0]} rows, golden expects {expected.shape[0]}"
    wrong = np.argwhere(got != expected)
    if len(wrong):
        i, j = wrong[0]
        where = f" (input {inputs[i, j]})" if inputs is not None else ""
        return (f"{len(wrong)} of {expected.size} outputs differ; first at row {i} column "
                f"{j}{where}: RTL {got[i, j]}, golden {expected[i, j]}")
    if expected_lasts is not None and list(got_lasts) != list(expected_lasts):
        pairs = zip(got_lasts, expected_lasts, strict=True)
        i = next(i for i, (a, b) in enumerate(pairs) if a != b)
        return f"last flag of row {i} is {got_lasts[i]}, expected {expected_lasts[i]}"
    return None


async def wait_until(clk, predicate, cycles):
    """Wait for falling edges until ``predicate()`` holds; False if ``cycles`` pass first."""
    for _ in range(cycles):
        if predicate():
            return True
        await FallingEdge(clk)
    return predicate()


def pack(layout, fields):
    """Payload bits of ``fields`` (a dict of ints and int lists) in ``layout``."""
    return layout.const(fields).as_bits()


def unpack(layout, bits):
    return data.Const(layout, int(bits))


async def start_clock(dut, period_ns=10):
    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())


async def reset(dut, cycles=2):
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


class CycleCounter:
    """Counts rising edges; :attr:`now` is the number of the coming rising edge."""

    def __init__(self, clk):
        self.now = 0
        self._clk = clk
        cocotb.start_soon(self._count())

    async def _count(self):
        while True:
            await RisingEdge(self._clk)
            self.now += 1


class _StreamEnd:
    def __init__(self, dut, name, counter, stall, rng):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk = dut.clk
        self.counter = counter
        self.stall = check_stall(stall)
        self.rng = rng


class StreamDriver(_StreamEnd):
    """Sends beats into ``<name>__{valid,ready,payload}`` with random idle cycles.

    ``stall`` is the probability of inserting an idle cycle before each beat (repeatedly).
    :attr:`accepted` records the clock edge each beat transferred on.
    """

    def __init__(self, dut, name, counter, *, stall=0.0, rng=None):
        super().__init__(dut, name, counter, stall, rng or random.Random(0))
        self.accepted = []
        self.valid.value = 0

    async def send(self, bits):
        while self.rng.random() < self.stall:
            self.valid.value = 0
            await FallingEdge(self.clk)
        self.valid.value = 1
        self.payload.value = bits
        while True:
            await ReadOnly()
            taken = bool(self.ready.value)
            edge = self.counter.now
            await FallingEdge(self.clk)
            if taken:
                self.accepted.append(edge)
                break
        self.valid.value = 0

    async def send_all(self, beats):
        for bits in beats:
            await self.send(bits)


class StreamSink(_StreamEnd):
    """Receives beats from ``<name>__{valid,ready,payload}``, dropping ready at random.

    ``stall`` is the probability that ready is low in a cycle. :attr:`beats` holds
    ``(edge, payload bits)`` for every transfer; :attr:`violations` every edge where a beat
    offered but not taken was withdrawn or changed before its transfer.
    """

    def __init__(self, dut, name, counter, *, stall=0.0, rng=None):
        super().__init__(dut, name, counter, stall, rng or random.Random(1))
        self.beats = []
        self.violations = []
        self.ready.value = 0
        self._task = None

    def start(self):
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        offered = None  # payload offered but not taken on the previous edge
        while True:
            ready = self.rng.random() >= self.stall
            self.ready.value = int(ready)
            await ReadOnly()
            valid = self.valid.value == 1
            payload = int(self.payload.value) if valid else None
            if offered is not None and payload != offered:
                self.violations.append(
                    (self.counter.now, "valid withdrawn" if payload is None else
                     f"payload changed from {offered:#x} to {payload:#x}"))
            if valid and ready:
                self.beats.append((self.counter.now, payload))
            offered = payload if valid and not ready else None
            await FallingEdge(self.clk)

    def stop(self):
        if self._task is not None:
            self._task.cancel()
        self.ready.value = 0
