"""The UART link end to end in simulation: host driver ↔ bit-level UART ↔ RTL, vs golden."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from boards.host import UARTArray
from boards.uart import UARTBridge, UARTRx, UARTTx
from hw.config import ArrayConfig
from sim.workload import random_workload

DIVISOR = 6  # clock cycles per bit


class SimulatedSerial:
    """A serial port whose far end is the bridge's rx/tx pins in Amaranth's simulator.

    ``write`` queues bytes that a testbench shifts onto ``rx`` bit by bit (8N1, ``DIVISOR``
    cycles per bit); a second testbench decodes ``tx`` by sampling mid-bit; ``read(n)`` runs
    the simulation until n bytes have arrived.
    """

    def __init__(self, dut, *, max_cycles=2_000_000):
        self.outgoing, self.incoming = bytearray(), bytearray()
        self.sim = Simulator(dut)
        self.sim.add_clock(1e-6)
        self.sim.add_testbench(self._drive)
        self.sim.add_testbench(self._sample)
        self.dut = dut
        self.max_cycles = max_cycles

    async def _drive(self, ctx):
        ctx.set(self.dut.rx, 1)
        while True:
            if not self.outgoing:
                await ctx.tick()
                continue
            byte = self.outgoing.pop(0)
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                ctx.set(self.dut.rx, bit)
                await ctx.tick().repeat(DIVISOR)

    async def _sample(self, ctx):
        while True:
            await ctx.tick()
            if ctx.get(self.dut.tx):
                continue
            await ctx.tick().repeat(DIVISOR // 2)  # middle of the start bit
            assert not ctx.get(self.dut.tx), "glitch on tx: start bit too short"
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(DIVISOR)
                byte |= ctx.get(self.dut.tx) << i
            await ctx.tick().repeat(DIVISOR)
            assert ctx.get(self.dut.tx), "framing error: no stop bit on tx"
            self.incoming.append(byte)

    def write(self, data):
        self.outgoing += data

    def read(self, count):
        deadline = self.max_cycles
        while len(self.incoming) < count and deadline > 0:
            self._advance(50)
            deadline -= 50
        data, self.incoming[:] = bytes(self.incoming[:count]), self.incoming[count:]
        return data

    def _advance(self, cycles):
        for _ in range(cycles * 2):  # two edges per cycle
            self.sim.advance()


@pytest.mark.parametrize("config", [
    ArrayConfig(rows=2, cols=2, kmax=8),
    ArrayConfig(rows=2, cols=3, kmax=6, per_channel=True, act_signed=False, out_signed=False),
    ArrayConfig(rows=3, cols=2, dataflow="weight_stationary", weight_bits=1,
                weight_kind="binary"),
], ids=["2x2 int8", "2x3 uint8 per-channel", "3x2 weight-stationary binary"])
def test_uart_runs_work_bit_exactly(config):
    work = random_workload(config, seed=3, jobs=2)
    link = UARTArray(config, SimulatedSerial(UARTBridge(config, divisor=DIVISOR)))
    np.testing.assert_array_equal(link.run(work.jobs, work.params), work.expected)


def test_uart_loopback_every_byte():
    """Receiver and transmitter alone: all 256 byte values through rx → tx."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    class Loopback(wiring.Component):
        def __init__(self):
            super().__init__({"rx": wiring.In(1, init=1), "tx": wiring.Out(1, init=1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.rx = rx = UARTRx(DIVISOR)
            m.submodules.tx = tx = UARTTx(DIVISOR)
            wiring.connect(m, rx.o, tx.i)
            m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
            return m

    port = SimulatedSerial(Loopback())
    for value in range(256):
        port.write(bytes([value]))
        assert port.read(1) == bytes([value])


def test_bad_divisor():
    with pytest.raises(ValueError, match="divisor must be ≥ 4 clock cycles per bit; got 2"):
        UARTRx(2)
