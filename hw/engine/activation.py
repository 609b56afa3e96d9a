"""The engine's programmable activation table (``EngineConfig(activation_table=True)``).

After the requantizer, before ``results``: one table per output column
(:class:`hw.activation.ActivationLanes`), over the output type's whole range
(``2^out_bits`` entries: 256 for int8, TFLite's table-driven activations), written through the
engine's ``table`` stream and bypassed by commands whose ``use_table`` is 0 (σ a clamp).
A command's ``table_loads`` beats ``{addr, data}`` are taken after the command, like its
channel table; its first beat issues only once they are all written (:class:`TableLoader`), so
no row is ever looked up in a table being written. The table keeps its entries from command
to command: ``table_loads = 0`` with ``use_table = 1`` reuses them.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..activation import LATENCY, MAX_ENTRIES, ActivationLanes, load_layout
from ..pe import operand_shape

__all__ = ["TABLE_FIELDS", "TABLE_LATENCY", "TableLoader", "activation_lanes", "table_entries",
           "table_fields", "table_load_layout"]

#: Cycles the table adds from the requantizer's output to ``results`` (bypassed or not).
TABLE_LATENCY = LATENCY

#: The command fields of an engine with a table: entries loaded after the command, and
#: whether its rows are looked up (1) or bypass the table (0).
TABLE_FIELDS = ("table_loads", "use_table")


def table_entries(array):
    """Entries of the table of an engine of :class:`hw.config.ArrayConfig` ``array``: one per
    output value, ``2^out_bits``, address = value − the output range's low end."""
    lo, hi = array.out_range
    return hi - lo + 1


def table_fields(config):
    """The command's table fields of :class:`hw.config.EngineConfig` ``config`` and their
    shapes (none without a table)."""
    if not config.activation_table:
        return {}
    return {"table_loads": range(table_entries(config.array) + 1), "use_table": 1}


def table_load_layout(array):
    """Payload of the engine's ``table`` stream: ``{addr, data}``."""
    return load_layout(table_entries(array), operand_shape(*array.out_range))


def activation_lanes(array):
    """The :class:`hw.activation.ActivationLanes` an engine builds: one bypassable table per
    column over the output range."""
    out_shape = operand_shape(*array.out_range)
    return ActivationLanes(array.out_range, out_shape, array.cols, bypassable=True)


class TableLoader(wiring.Component):
    """Passes exactly a command's ``limit`` table beats on to the tables.

    Parameters
    ----------
    layout : data.StructLayout
        The beats' payload (:func:`table_load_layout`).
    entries : int
        Most beats one command may load, 1..:data:`hw.activation.MAX_ENTRIES`.

    Members
    -------
    i : ``In(stream.Signature(layout))``
        Taken while ``loaded < limit`` (and ``o.ready``).
    o : ``Out(stream.Signature(layout))``
        The beats, passed through in the same cycle.
    limit : ``In(range(entries + 1))``
        Beats to take; reset clears ``loaded``.
    done : ``Out(1)``
        ``loaded ≥ limit``: every beat the command asks for is written.
    """

    def __init__(self, layout, entries):
        if isinstance(entries, bool) or not isinstance(entries, int):
            raise TypeError(f"entries must be an integer, not {entries!r}")
        if not 1 <= entries <= MAX_ENTRIES:
            raise ValueError(f"entries must be in [1, {MAX_ENTRIES}], not {entries}")
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
            "limit": In(range(entries + 1)),
            "done": Out(1),
        })
        self._entries = entries

    def elaborate(self, platform):
        m = Module()
        loaded = Signal(range(self._entries + 1))
        room = loaded < self.limit
        m.d.comb += [self.o.valid.eq(self.i.valid & room), self.o.p.eq(self.i.p),
                     self.i.ready.eq(self.o.ready & room), self.done.eq(~room)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += loaded.eq(loaded + 1)
        return m
