"""A programmable activation table: ``y = table[x − lo]``, loaded at run time.

After the requantizer every activation of a quantized network is a function of one small
integer, so a table of all its values computes any of them exactly: the seed paper's rounded
activations ⌈σ⌋ on Q_{p,s} (GELU, SiLU, ELU, SoftPlus, Mish, 5·Hardtanh: 2^(p+1) − 1 entries
for the numerators −(2^p − 1)..2^p − 1), or TFLite's table-driven int8 activations (LOGISTIC,
TANH, HARD_SWISH and friends: 256 entries for −128..127). Each table is a block RAM written
through ``load`` and read by a one-stage stream pipeline.

:class:`ActivationLanes` is ``lanes`` tables in lockstep on rows of values, optionally
bypassable: :class:`hw.engine.GemmEngine` builds one after its requantizer when
``EngineConfig(activation_table=True)`` (:mod:`hw.engine.activation`). :class:`ActivationTable`
is the one-lane unit on a stream of single values.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect
from amaranth.utils import ceil_log2

__all__ = ["LATENCY", "ActivationLanes", "ActivationTable", "load_layout", "paper_range",
           "table_shape"]

#: Cycles from an accepted input beat to its output beat (one synchronous table read).
LATENCY = 1
#: Largest table the unit builds (a 16-bit input's full range).
MAX_ENTRIES = 1 << 16
#: Most lanes of one :class:`ActivationLanes` (an array's columns).
MAX_LANES = 256


def paper_range(p):
    """Input range (lo, hi) of a table over Q_{p,s}'s numerators: ±(2^p − 1)."""
    return -((1 << p) - 1), (1 << p) - 1


def table_shape(lo, hi):
    """The smallest signed shape holding every input in [lo, hi]."""
    bits = max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length()) + 1
    return signed(bits)


def load_layout(entries, out_shape):
    """Payload of a table's ``load`` stream: ``{addr, data}``, one entry written per beat."""
    return data.StructLayout({"addr": unsigned(ceil_log2(max(entries, 2))), "data": out_shape})


def _check_table(in_range, out_shape, init):
    """(lo, hi, out_shape, init) checked: the parameters both tables share."""
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
    return lo, hi, out_shape, init


class _Table:
    """What both tables report: the inputs covered, their number, the latency."""

    @property
    def in_range(self):
        return self._lo, self._hi

    @property
    def entries(self):
        return self._hi - self._lo + 1

    latency = LATENCY


def _row(shape, lanes):
    return data.StructLayout({"y": data.ArrayLayout(shape, lanes), "last": 1})


class ActivationLanes(_Table, wiring.Component):
    """``lanes`` run-time loaded tables on a stream of rows:
    ``o.y[j] = table[clamp(i.y[j], lo, hi) − lo]``, every lane's table the same.

    Parameters
    ----------
    in_range : (int, int)
        The inputs (lo, hi) the table covers, ``hi − lo + 1`` entries, at most
        :data:`MAX_ENTRIES`. Inputs outside are clamped to the nearest end first.
        :func:`paper_range` gives the seed paper's 2^(p+1) − 1 entries.
    out_shape : signed shape
        Shape of an entry (and of ``o.y[j]``), 1..32 bits.
    lanes : int
        Values per row, 1..:data:`MAX_LANES`: one block RAM each, written together.
    init : sequence of int, optional
        The table at reset (zeros by default).
    bypassable : bool
        Add the ``bypass`` port (needs ``out_shape`` at least as wide as the inputs).

    Members
    -------
    i : ``In(stream.Signature({y: lanes × signed(...), last}))``
        Rows of inputs, each a two's complement value wide enough for ``in_range``
        (:func:`table_shape`).
    o : ``Out(stream.Signature({y: lanes × out_shape, last}))``
        The looked-up row, :data:`LATENCY` cycle after ``i`` was accepted, held until taken.
        ``i.ready`` is ``o.ready`` or an empty output register: full rate, and back pressure
        passes straight through.
    load : ``In(stream.Signature(load_layout(entries, out_shape)))``
        Writes ``table[addr] = data`` in every lane at the clock edge; ``ready`` is always 1.
        Load the table before streaming: a read in the same cycle as a write to its entry
        returns the old value.
    bypass : ``In(1)`` (``bypassable``)
        High when a row is accepted: that row leaves unchanged (same latency), the tables
        are not read.
    """

    def __init__(self, in_range, out_shape, lanes, *, init=None, bypassable=False):
        lo, hi, out_shape, init = _check_table(in_range, out_shape, init)
        if isinstance(lanes, bool) or not isinstance(lanes, int):
            raise TypeError(f"lanes must be an integer, not {lanes!r}")
        if not 1 <= lanes <= MAX_LANES:
            raise ValueError(f"lanes must be in [1, {MAX_LANES}], not {lanes}")
        in_shape = table_shape(lo, hi)
        if bypassable and in_shape.width > out_shape.width:
            raise ValueError(f"out_shape must be at least {in_shape.width} bits wide to bypass "
                             f"inputs in {in_range!r}, not {out_shape.width}")
        self._lo, self._hi, self._init, self._lanes = lo, hi, init, lanes
        self._out_shape, self._in_shape = out_shape, in_shape
        self._bypassable = bool(bypassable)
        members = {
            "i": In(stream.Signature(_row(in_shape, lanes))),
            "o": Out(stream.Signature(_row(out_shape, lanes))),
            "load": In(stream.Signature(load_layout(hi - lo + 1, out_shape))),
        }
        if bypassable:
            members["bypass"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        advance = ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(advance), self.load.ready.eq(1)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        # data registers hold no control state: no reset (and no reset mux in front of them)
        last = Signal(name="last_held", reset_less=True)
        through = Signal(name="bypassed", reset_less=True)
        with m.If(advance):
            m.d.sync += last.eq(self.i.p.last)
            if self._bypassable:
                m.d.sync += through.eq(self.bypass)
        m.d.comb += self.o.p.last.eq(last)
        for lane in range(self._lanes):
            m.submodules[f"table{lane}"] = table = memory.Memory(
                shape=self._out_shape, depth=self.entries, init=self._init)
            write = table.write_port()
            read = table.read_port(domain="sync")
            m.d.comb += [write.addr.eq(self.load.p.addr), write.data.eq(self.load.p.data),
                         write.en.eq(self.load.valid)]
            value = self.i.p.y[lane]
            clamped = Mux(value < self._lo, self._lo, Mux(value > self._hi, self._hi, value))
            m.d.comb += [read.addr.eq(clamped - self._lo), read.en.eq(advance),
                         self.o.p.y[lane].eq(read.data)]
            if self._bypassable:
                held = Signal(self._in_shape, name=f"held{lane}", reset_less=True)
                with m.If(advance):
                    m.d.sync += held.eq(value)
                with m.If(through):
                    m.d.comb += self.o.p.y[lane].eq(held)
        return m


class ActivationTable(_Table, wiring.Component):
    """A run-time loaded lookup table on a stream: ``o = table[clamp(i, lo, hi) − lo]``
    (one lane of :class:`ActivationLanes`).

    Parameters
    ----------
    in_range, out_shape, init :
        As :class:`ActivationLanes`'s; ``out_shape`` is the shape of ``o.payload``.

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
        self._lo, self._hi, out_shape, self._init = _check_table(in_range, out_shape, init)
        self._out_shape = out_shape
        super().__init__({
            "i": In(stream.Signature(table_shape(self._lo, self._hi))),
            "o": Out(stream.Signature(out_shape)),
            "load": In(stream.Signature(load_layout(self.entries, out_shape))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.lanes = lanes = ActivationLanes(self.in_range, self._out_shape, 1,
                                                     init=self._init)
        connect(m, wiring.flipped(self.load), lanes.load)
        m.d.comb += [lanes.i.valid.eq(self.i.valid), lanes.i.p.y[0].eq(self.i.payload),
                     self.i.ready.eq(lanes.i.ready),
                     self.o.valid.eq(lanes.o.valid), self.o.payload.eq(lanes.o.p.y[0]),
                     lanes.o.ready.eq(self.o.ready)]
        return m
