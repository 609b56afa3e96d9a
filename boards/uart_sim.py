"""A serial port whose far end is a UART design in Amaranth's simulator, with a faulty line.

:class:`SimulatedSerial` has the transport interface :class:`boards.host.Link` uses
(``write``, ``read`` with a timeout): written bytes are shifted onto the design's ``rx`` pin
bit by bit (8N1), ``tx`` is decoded by sampling mid-bit, and ``read`` runs the simulation
until the bytes have arrived or the timeout has passed. :class:`LineFaults` corrupts either
direction at the bit level, and ``resets`` restarts the design mid-job (the design then needs
an ``rst`` port: :class:`ResettableBridge`).
"""

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Module, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from .uart import CHAR_BITS, FRAME_GAP_BITS, UARTBridge, longest_reply_bits

__all__ = ["FaultCounts", "LineFaults", "ResettableBridge", "SimulatedSerial",
           "simulated_board"]

#: Data bits of one 8N1 character.
DATA_BITS = 8
#: Simulated clock period (seconds); only ratios matter.
CLOCK_PERIOD = 1e-6
#: Bit times a read waits, after its frame has left, by default: the bridge's gap plus a reply,
#: with margin (a fast simulation wants a bridge with a short ``gap_bits``).
DEFAULT_TIMEOUT_BITS = 2 * FRAME_GAP_BITS
#: A fast simulation's clock cycles per bit, and bit times of silence that end a frame.
SIM_DIVISOR, SIM_GAP_BITS = 4, 3 * CHAR_BITS
#: Bit times a host waits beyond the gap and the longest reply.
TIMEOUT_MARGIN_BITS = 2 * CHAR_BITS
#: Cycles a restart holds the design in reset.
RESET_CYCLES = 2
#: The longest line glitch of the noise fault, in bit times.
MAX_GLITCH_BITS = 2


async def _ticks(ctx, count):
    """``count`` clock cycles (a plain loop: a testbench may be dropped while it waits)."""
    for _ in range(count):
        await ctx.tick()


@dataclass(frozen=True)
class LineFaults:
    """Fault probabilities per character on one direction of the line.

    Parameters
    ----------
    flip : float
        One of its 10 bits (start, 8 data, stop) inverted on the wire.
    drop : float
        The character never sent (the line stays idle for its time).
    duplicate : float
        The character sent twice.
    noise : float
        A glitch (the line pulled low for up to two bit times) before the character.
    """
    flip: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    noise: float = 0.0

    def __post_init__(self):
        for name in ("flip", "drop", "duplicate", "noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a probability, not {value!r}")
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], not {value}")


@dataclass
class FaultCounts:
    """Faults injected, by kind."""
    flip: int = 0
    drop: int = 0
    duplicate: int = 0
    noise: int = 0
    reset: int = 0

    @property
    def total(self):
        return self.flip + self.drop + self.duplicate + self.noise + self.reset


class ResettableBridge(wiring.Component):
    """``bridge`` (rx/tx pins) with an ``rst`` input that restarts all of it, as a board's
    reset button or a power glitch would."""

    def __init__(self, bridge):
        self._bridge = bridge
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "rst": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = bridge = ResetInserter(self.rst)(self._bridge)
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx)]
        return m


@dataclass
class _Direction:
    faults: LineFaults
    counts: FaultCounts = field(default_factory=FaultCounts)


class SimulatedSerial:
    """A serial port wired to ``dut``'s ``rx``/``tx`` pins in Amaranth's simulator.

    Parameters
    ----------
    dut : wiring.Component
        With ``rx`` (in) and ``tx`` (out) pins, and ``rst`` when ``resets`` are given.
    divisor : int
        Clock cycles per bit, as the design's.
    to_board, to_host : LineFaults
        Faults of each direction of the line.
    resets : iterable of int
        Restart the design when the host writes its n-th frame (0 = the first), a random
        0 … 100 bit times after the write.
    timeout_bits : int
        Bit times ``read`` waits before it returns what it has.
    seed : int
        Seed of the faults.
    """

    def __init__(self, dut, *, divisor, to_board=LineFaults(), to_host=LineFaults(),
                 resets=(), timeout_bits=DEFAULT_TIMEOUT_BITS, seed=0):
        self.dut = dut
        self.divisor = divisor
        self.timeout_bits = timeout_bits
        self.outgoing, self.incoming = bytearray(), bytearray()
        self.to_board, self.to_host = _Direction(to_board), _Direction(to_host)
        self._rng = np.random.default_rng(seed)
        self._resets = set(resets)
        self._writes = 0
        self._reset_due = None
        self._sending = False
        #: Cycles simulated so far.
        self.cycles = 0
        self.sim = Simulator(dut)
        self.sim.add_clock(CLOCK_PERIOD)
        self.sim.add_testbench(self._drive)
        self.sim.add_testbench(self._sample)
        if self._resets:
            self.sim.add_testbench(self._restart)

    @property
    def faults(self):
        """Faults injected so far, both directions together."""
        total = FaultCounts()
        for direction in (self.to_board, self.to_host):
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(direction.counts, name))
        return total

    def _chance(self, probability):
        return probability > 0 and self._rng.random() < probability

    async def _drive(self, ctx):
        ctx.set(self.dut.rx, 1)
        faults, counts = self.to_board.faults, self.to_board.counts
        while True:
            if not self.outgoing:
                await _ticks(ctx, self.divisor)   # idle: look again in a bit time
                continue
            self._sending = True
            byte = self.outgoing.pop(0)
            if self._chance(faults.noise):
                counts.noise += 1
                ctx.set(self.dut.rx, 0)
                await _ticks(ctx, int(self._rng.integers(1, MAX_GLITCH_BITS *
                                                               self.divisor + 1)))
                ctx.set(self.dut.rx, 1)
                await _ticks(ctx, self.divisor)
            bits = [0] + [(byte >> i) & 1 for i in range(DATA_BITS)] + [1]
            if self._chance(faults.drop):
                counts.drop += 1
                bits = [1] * CHAR_BITS
            elif self._chance(faults.flip):
                counts.flip += 1
                bits[self._rng.integers(CHAR_BITS)] ^= 1
            copies = 2 if self._chance(faults.duplicate) else 1
            counts.duplicate += copies - 1
            for _ in range(copies):
                for bit in bits:
                    ctx.set(self.dut.rx, bit)
                    await _ticks(ctx, self.divisor)
            ctx.set(self.dut.rx, 1)
            self._sending = bool(self.outgoing)

    async def _sample(self, ctx):
        faults, counts = self.to_host.faults, self.to_host.counts
        while True:
            await ctx.negedge(self.dut.tx)
            await _ticks(ctx, self.divisor // 2)   # the middle of the start bit
            bits = [ctx.get(self.dut.tx)]
            for _ in range(DATA_BITS + 1):
                await _ticks(ctx, self.divisor)
                bits.append(ctx.get(self.dut.tx))
            if self._chance(faults.flip):
                counts.flip += 1
                bits[self._rng.integers(CHAR_BITS)] ^= 1
            if self._chance(faults.noise):
                counts.noise += 1
                self.incoming.append(int(self._rng.integers(256)))
            if bits[0] or not bits[-1] or self._chance(faults.drop):
                counts.drop += bits[0] == 0 and bits[-1] == 1
                continue                                  # framing error, or lost
            byte = sum(bit << i for i, bit in enumerate(bits[1:1 + DATA_BITS]))
            copies = 2 if self._chance(faults.duplicate) else 1
            counts.duplicate += copies - 1
            self.incoming += bytes([byte]) * copies

    async def _restart(self, ctx):
        while True:
            await _ticks(ctx, self.divisor)
            if self._reset_due is not None and self.cycles >= self._reset_due:
                self._reset_due = None
                self.to_board.counts.reset += 1
                ctx.set(self.dut.rst, 1)
                await _ticks(ctx, RESET_CYCLES)
                ctx.set(self.dut.rst, 0)

    def write(self, data):
        if self._writes in self._resets:
            delay = int(self._rng.integers(0, 100)) * self.divisor
            self._reset_due = self.cycles + delay
        self._writes += 1
        self.outgoing += data

    def read(self, count):
        """Up to ``count`` bytes: fewer when ``timeout_bits`` pass, after the last written
        byte has left, before they arrive (pyserial's way)."""
        timeout = self.timeout_bits * self.divisor
        deadline = self.cycles + timeout
        step = self.divisor * CHAR_BITS // 2
        while len(self.incoming) < count and self.cycles < deadline:
            if self._sending:
                deadline = self.cycles + timeout
            self.cycles += step
            self.sim.run_until(self.cycles * CLOCK_PERIOD)
        data, self.incoming[:] = bytes(self.incoming[:count]), self.incoming[count:]
        return data


def simulated_board(config, *, divisor=SIM_DIVISOR, gap_bits=SIM_GAP_BITS, resets=(), **kwargs):
    """A :class:`SimulatedSerial` wired to a :class:`boards.uart.UARTBridge` of ``config`` (an
    ArrayConfig or EngineConfig), with a read timeout just past the bridge's gap and its
    longest reply; other keywords go to :class:`SimulatedSerial`."""
    bridge = UARTBridge(config, divisor=divisor, gap_bits=gap_bits)
    dut = ResettableBridge(bridge) if resets else bridge
    timeout = gap_bits + longest_reply_bits(config) + TIMEOUT_MARGIN_BITS
    return SimulatedSerial(dut, divisor=divisor, resets=resets, timeout_bits=timeout, **kwargs)
