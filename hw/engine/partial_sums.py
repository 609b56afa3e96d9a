"""Where the passes (output-stationary) or K tiles (weight-stationary) of a result row add up,
exactly, before the row is requantized."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..systolic import AccumulatorRow
from .command import shape_layout
from .sequencer import pass_tag_layout, passes_in_flight

__all__ = ["PASS_SUMS_LATENCY", "ROW_SUMS_LATENCY", "PassSums", "RowSums", "partial_sum_layout"]

#: Cycles from a grid row to its sum on :class:`PassSums`'s output: the sum register.
PASS_SUMS_LATENCY = 1
#: Cycles from a grid row to its sum on :class:`RowSums`'s output: the row register (while
#: the row's previous sum is read), the sum register.
ROW_SUMS_LATENCY = 2


def partial_sum_layout(config):
    """A row of exact partial sums of :class:`hw.config.EngineConfig` ``config``."""
    return data.ArrayLayout(signed(config.partial_sum_bits), config.array.cols)


def _members(config, row_layout):
    return {
        "rows": In(stream.Signature(AccumulatorRow(config.array.accumulator_bits,
                                                   config.array.cols), always_ready=True)),
        "o": Out(stream.Signature(row_layout, always_ready=True)),
    }


def _add(m, config, rows_in, previous, first):
    """``rows_in`` + ``previous`` (unless ``first``) at the exact partial-sum width."""
    total = Signal(partial_sum_layout(config), name="total")
    m.d.comb += [total[j].eq(rows_in[j] + Mux(first, 0, previous[j]))
                 for j in range(config.array.cols)]
    return total


def _register(m, o, total, *, final, last, n):
    """``o``: the exact sums ``total`` of a ``final`` row, registered, with its N tile. The
    sums' register is ``reset_less`` (data only: no per-command reset in front of it)."""
    acc = Signal.like(o.p.acc, reset_less=True, name="sum")
    m.d.sync += [o.valid.eq(final), acc.eq(total), o.p.last.eq(last), o.p.n.eq(n)]
    m.d.comb += o.p.acc.eq(acc)


class PassSums(wiring.Component):
    """Output-stationary: adds the passes of a tile row by row in a FIFO of rows.

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`
    row_layout : data.StructLayout
        The requantizer's input row, ``{acc: cols × signed(partial_sum_bits), last, n}``.

    Members
    -------
    tags : ``In(stream.Signature(pass_tag_layout(config), always_ready=True))``
        One per pass, in issue order (from the sequencer).
    rows : ``In(stream.Signature(AccumulatorRow, always_ready=True))``
        The grid's result rows; ``last`` on each pass's final row.
    o : ``Out(stream.Signature(row_layout, always_ready=True))``
        Each row of a tile's final pass with its exact sum over every pass, one cycle after
        it arrives.

    Clear it between commands with ``ResetInserter``.
    """

    def __init__(self, config, row_layout):
        self._config = config
        super().__init__({
            "tags": In(stream.Signature(pass_tag_layout(self._config), always_ready=True)),
            **_members(config, row_layout),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        tag_layout = pass_tag_layout(cfg)
        m.submodules.tags = tags = SyncFIFOBuffered(width=tag_layout.size,
                                                    depth=passes_in_flight(cfg))
        m.submodules.partial_sums = partial_sums = SyncFIFOBuffered(
            width=partial_sum_layout(cfg).size, depth=cfg.array.rows + 1)
        tag = data.View(tag_layout, tags.r_data)
        arriving = self.rows.valid
        m.d.comb += [tags.w_en.eq(self.tags.valid), tags.w_data.eq(self.tags.p)]
        total = _add(m, cfg, self.rows.p.acc, data.View(partial_sum_layout(cfg),
                                                         partial_sums.r_data), tag.first)
        m.d.comb += [
            tags.r_en.eq(arriving & self.rows.p.last),
            partial_sums.r_en.eq(arriving & ~tag.first),
            partial_sums.w_en.eq(arriving & ~tag.final),
            partial_sums.w_data.eq(total),
        ]
        _register(m, self.o, total, final=arriving & tag.final, last=self.rows.p.last,
                  n=tag.n)
        return m


class RowSums(wiring.Component):
    """Weight-stationary: adds the K tiles of each row of X in an accumulator memory.

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`
    row_layout : data.StructLayout
        The requantizer's input row, ``{acc: cols × signed(partial_sum_bits), last, n}``.

    Members
    -------
    shape : ``In({m, n_tiles, k_tiles})``
        The command's shape, stable while rows arrive.
    rows : ``In(stream.Signature(AccumulatorRow, always_ready=True))``
        The grid's result rows: for each N tile, for each K tile, rows 0 … m − 1.
    o : ``Out(stream.Signature(row_layout, always_ready=True))``
        Each row of an N tile's final K tile with its exact sum over every K tile, two cycles
        after it arrives; ``last`` on row m − 1.

    Clear it between commands with ``ResetInserter``.
    """

    def __init__(self, config, row_layout):
        self._config = config
        super().__init__({"shape": In(shape_layout(config)), **_members(config, row_layout)})

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        rows_m, k_tiles = self.shape.m, self.shape.k_tiles
        row = Signal(range(cfg.max_m))
        k_tile = Signal(range(cfg.max_k_tiles))
        n_tile = Signal(range(cfg.max_n_tiles + 1))
        m.submodules.partial_sums = partial_sums = memory.Memory(
            shape=partial_sum_layout(cfg), depth=cfg.max_m, init=[])
        write = partial_sums.write_port()
        # Transparent: row r of K tile t may arrive the cycle after row r of tile t − 1 was
        # written (a one-row X).
        read = partial_sums.read_port(transparent_for=(write,))
        arriving = self.rows.valid

        # The arriving row, registered while its previous sum is read.
        acc = Signal(partial_sum_layout(cfg), name="row", reset_less=True)
        valid, first, final, last = (Signal(name=f"row_{name}") for name in
                                     ("valid", "first", "final", "last"))
        index = Signal.like(row, name="row_index")
        row_n = Signal.like(n_tile, name="row_n")
        m.d.comb += read.addr.eq(row)
        m.d.sync += [acc[j].eq(self.rows.p.acc[j]) for j in range(cfg.array.cols)]
        m.d.sync += [valid.eq(arriving), first.eq(~k_tile.any()),
                     final.eq(k_tile == k_tiles - 1), last.eq(row == rows_m - 1),
                     index.eq(row), row_n.eq(n_tile)]
        with m.If(arriving):
            m.d.sync += row.eq(row + 1)
            with m.If(row == rows_m - 1):
                m.d.sync += [row.eq(0), k_tile.eq(k_tile + 1)]
                with m.If(k_tile == k_tiles - 1):
                    m.d.sync += [k_tile.eq(0), n_tile.eq(n_tile + 1)]
        total = _add(m, cfg, acc, read.data, first)
        m.d.comb += [write.addr.eq(index), write.en.eq(valid & ~final), write.data.eq(total)]
        _register(m, self.o, total, final=valid & final, last=last, n=row_n)
        return m
