"""A programmable activation table: ``y = table[x − lo]``, loaded at run time.

After the requantizer every activation of a quantized network is a function of one small
integer, so a table of all its values computes any of them exactly: the seed paper's rounded
activations ⌈σ⌋ on Q_{p,s} (GELU, SiLU, ELU, SoftPlus, Mish, 5·Hardtanh: 2^(p+1) − 1 entries
for the numerators −(2^p − 1)..2^p − 1), or TFLite's table-driven int8 activations (LOGISTIC,
TANH, HARD_SWISH and friends: 256 entries for −128..127). The table is a block RAM written
through ``load`` and read by a one-stage stream pipeline.

The engine does not include it yet: it belongs after the requantizer's clamp, one
:class:`ActivationTable` per requantizer lane (or one time-multiplexed unit), its input the
lane's output; docs/paper.md describes the wiring.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["ActivationTable", "LATENCY", "paper_range"]

#: Cycles from an accepted input beat to its output beat (one synchronous table read).
LATENCY = 1
#: Largest table the unit builds (a 16-bit input's full range).
MAX_ENTRIES = 1 << 16


def paper_range(p):
    """Input range (lo, hi) of a table over Q_{p,s}'s numerators: ±(2^p − 1)."""
    return -((1 << p) - 1), (1 << p) - 1


def _shape_of(lo, hi):
    bits = max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length()) + 1
    return signed(bits)


class ActivationTable(wiring.Component):
    """A run-time loaded lookup table on a stream: ``o = table[clamp(i, lo, hi) − lo]``.

    Parameters
    ----------
    in_range : (int, int)
        The inputs (lo, hi) the table covers, ``hi − lo + 1`` entries, at most
        :data:`MAX_ENTRIES`. Inputs outside are clamped to the nearest end first.
        :func:`paper_range` gives the seed paper's 2^(p+1) − 1 entries.
    out_shape : signed shape
        Shape of an entry (and of ``o.payload``).
    init : sequence of int, optional
        The table at reset (zeros by default).

    Members
    -------
    i : ``In(stream.Signature(signed(...)))``
        Inputs, a two's complement value wide enough for ``in_range``.
    o : ``Out(stream.Signature(out_shape))``
        ``table[i − lo]``, :data:`LATENCY` cycle after ``i`` was accepted, held until taken.
        ``i.ready`` is ``o.ready`` or an empty output register: full rate, and back pressure
        passes straight through.
    load : ``In(stream.Signature({addr, data}))``
        Writes ``table[addr] = data`` at the clock edge; ``ready`` is always 1. Load the
        table before streaming: a read in the same cycle as a write to its entry returns the
        old value.
    """

    def __init__(self, in_range, out_shape, *, init=None):
        lo, hi = in_range
        for name, value in (("in_range[0]", lo), ("in_range[1]", hi)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        entries = hi - lo + 1
        if not 1 <= entries <= MAX_ENTRIES:
            raise ValueError(f"in_range must hold 1..{MAX_ENTRIES} values (lo ≤ hi), not "
                             f"{in_range!r} ({entries})")
        out_shape = signed(out_shape) if isinstance(out_shape, int) else out_shape
        if not out_shape.signed or not 1 <= out_shape.width <= 32:
            raise ValueError(f"out_shape must be signed, 1..32 bits, not {out_shape!r}")
        init = [0] * entries if init is None else [int(v) for v in init]
        if len(init) != entries:
            raise ValueError(f"init must have {entries} entries, not {len(init)}")
        out_lo, out_hi = -(1 << (out_shape.width - 1)), (1 << (out_shape.width - 1)) - 1
        bad = [v for v in init if not out_lo <= v <= out_hi]
        if bad:
            raise ValueError(f"init entries must be in [{out_lo}, {out_hi}], not {bad[0]}")
        self._lo, self._hi, self._init = lo, hi, init
        self._out_shape = out_shape
        self._in_shape = _shape_of(lo, hi)
        super().__init__({
            "i": In(stream.Signature(self._in_shape)),
            "o": Out(stream.Signature(out_shape)),
            "load": In(stream.Signature(data.StructLayout({
                "addr": unsigned(ceil_log2(max(entries, 2))), "data": out_shape}))),
        })

    @property
    def in_range(self):
        return self._lo, self._hi

    @property
    def entries(self):
        return self._hi - self._lo + 1

    latency = LATENCY

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = table = memory.Memory(shape=self._out_shape, depth=self.entries,
                                                   init=self._init)
        write = table.write_port()
        read = table.read_port(domain="sync")
        m.d.comb += [write.addr.eq(self.load.payload.addr), write.data.eq(self.load.payload.data),
                     write.en.eq(self.load.valid), self.load.ready.eq(1)]

        value = self.i.payload
        clamped = Mux(value < self._lo, self._lo, Mux(value > self._hi, self._hi, value))
        address = Signal.like(read.addr)
        m.d.comb += address.eq(clamped - self._lo)

        advance = ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(advance), read.addr.eq(address), read.en.eq(advance),
                     self.o.payload.eq(read.data)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m
