"""The UART link end to end in simulation: host driver ↔ bit-level UART ↔ RTL, vs golden."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from boards.host import UARTArray, UARTEngine
from boards.uart import UARTBridge, UARTRx, UARTTx
from golden.layers import fully_connected
from hw.config import ArrayConfig
from hw.engine import EngineConfig
from hw.host import LayerParams, engine_job
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


@pytest.mark.parametrize("array", [
    ArrayConfig(rows=2, cols=2, kmax=3, per_channel=True),
    ArrayConfig(rows=2, cols=2, dataflow="weight_stationary"),
], ids=["engine os", "engine ws"])
def test_uart_runs_a_gemm_on_the_engine(array):
    """A whole GEMM (K beyond a pass, ragged M and N) through the stop-and-wait engine link."""
    config = EngineConfig(array, max_k=8, max_n=4, max_m=4)
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, (3, 7), dtype=np.int64)
    w = rng.integers(-128, 128, (3, 7), dtype=np.int64)
    params = LayerParams.for_config(
        array.replace(per_channel=True), n=3, bias=rng.integers(-500, 500, 3),
        multiplier=rng.integers(1 << 30, 1 << 31, 3), shift=[-8, -9, -10],
        output_zero_point=4, act_min=-100, act_max=110, input_zero_point=-7)
    job = engine_job(config, x, w, params)
    link = UARTEngine(config, SimulatedSerial(UARTBridge(config, divisor=DIVISOR)))
    expected = fully_connected(x, w, params.bias, input_zero_point=-7, weight_zero_point=0,
                               output_zero_point=4, multiplier=params.multiplier,
                               shift=params.shift, act_min=-100, act_max=110)
    np.testing.assert_array_equal(job.outputs(link.run(job)), expected)
