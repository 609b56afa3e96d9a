"""The GEMM engine's partial sums across K: no wrap for any legal command.

:class:`hw.engine.PassSums` (output-stationary) adds the passes of a tile, row by row, at
:attr:`hw.config.EngineConfig.partial_sum_bits`. The harness plays the sequencer and the grid:
a pass is issued (its tag pushed) and its row arrives ``_ROW_DELAY`` cycles later, passes at
least :func:`hw.engine.sequencer.engine_pass_interval` apart, a tile is passes ``first`` …
``final``. Each pass has at most ``array.kmax`` beats, a tile at most ``max_k`` (a legal
command's depth), and each row's value is a pass sum the PE proof (formal.pe) shows exact: any
integer in [n·min(p_lo, 0), n·max(p_hi, 0)] for a pass of n beats, p the product range.

Asserted: every row ``PassSums`` sends equals the exact sum of its tile's passes (kept by the
harness in a register wide enough for anything). Covered: a tile whose exact sum does not fit
one bit fewer. Mutant: ``PassSums`` built with ``partial_sum_bits − 1`` must fail.

The FIFO of partial sums is internal state without an invariant here, so this is BMC, deep
enough for a whole tile of ``max_k / kmax`` passes.

:class:`RowSumCheck` does the same for :class:`hw.engine.RowSums` (weight-stationary): the
harness plays the command (a shape ``m``, ``n_tiles``, ``k_tiles`` within the engine's limits,
constant) and the grid (for each N tile, each K tile, rows 0 … m − 1, one a cycle at most, each
K tile of n ≤ ``array.rows`` products, n the same for every row, ≤ ``max_k`` products in
all), keeps the exact sum of every row of X, and asserts that ``o`` sends exactly one row per
row of the final K tile, ``ROW_SUMS_LATENCY`` cycles after it, with the exact sum over the N
tile's K tiles, ``last`` on row m − 1 and the N tile's index: m · n_tiles rows a command,
never more (conservation), none wrapped.
"""

from amaranth.hdl import Array, Assert, Assume, Cover, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from golden.accumulator import product_bounds
from hw.config import EngineConfig
from hw.engine import PassSums, RowSums
from hw.engine.command import shape_limits
from hw.engine.partial_sums import PASS_SUMS_LATENCY, ROW_SUMS_LATENCY
from hw.engine.sequencer import engine_pass_interval

from .harness import hold_reset_low

__all__ = ["PartialSumCheck", "RowSumCheck", "narrower"]

#: Cycles from a pass issued (its tag pushed) to its row leaving the grid: the tag FIFO's
#: latency, as in the engine where the grid is always slower.
_ROW_DELAY = 3


class _Narrow:
    """An :class:`EngineConfig` stand-in whose partial sums are ``bits`` wide (mutant)."""

    def __init__(self, config, bits):
        self._config, self.partial_sum_bits = config, bits

    def __getattr__(self, name):
        return getattr(self._config, name)


def narrower(config):
    """``config`` with partial sums one bit narrower: the mutant that must wrap."""
    return _Narrow(config, config.partial_sum_bits - 1)


class PartialSumCheck(wiring.Component):
    """No-wrap harness of :class:`hw.engine.PassSums` for a one-row, one-column engine.

    Parameters
    ----------
    config : EngineConfig
        Output-stationary, ``array.rows == array.cols == 1`` (the sums of other rows and
        columns are the same adders).
    hardware : object or None
        What ``PassSums`` is built from; default ``config``; :func:`narrower` for the mutant.
    """

    def __init__(self, config, *, hardware=None):
        if (not isinstance(config, EngineConfig) or config.weight_stationary
                or config.array.rows != 1 or config.array.cols != 1):
            raise TypeError(f"config must be a 1×1 output-stationary EngineConfig, "
                            f"not {config!r}")
        self._config, self._hardware = config, hardware or config
        super().__init__({
            "issue": In(1),
            "first": In(1),
            "final": In(1),
            "beats": In(range(config.array.kmax + 1)),
            "value": In(signed(config.array.accumulator_bits)),
        })

    def elaborate(self, platform):
        cfg, array = self._config, self._config.array
        m = Module()
        hold_reset_low(m)
        m.submodules.sums = sums = PassSums(self._hardware, _row_layout(cfg, self._hardware))

        p_lo, p_hi = product_bounds(array.act_range, array.weight_range)
        p_lo, p_hi = min(p_lo, 0), max(p_hi, 0)
        wide = signed(max(abs(cfg.max_k * p_lo), cfg.max_k * p_hi).bit_length() + 2)

        # The sequencer: passes at least engine_pass_interval apart, a tile's beats ≤ max_k.
        interval = engine_pass_interval(cfg)
        wait = Signal(range(interval + 1))
        in_tile = Signal()          # a tile was started and not finished
        depth = Signal(range(cfg.max_k + 1))
        m.d.comb += [
            Assume(~self.issue | (wait == 0)),
            Assume(~self.issue | (self.first == ~in_tile)),
            Assume(~self.issue | ((self.beats >= 1) & (self.beats <= array.kmax))),
            Assume(~self.issue | (Mux(self.first, 0, depth) + self.beats <= cfg.max_k)),
        ]
        m.d.sync += wait.eq(Mux(self.issue, interval - 1, Mux(wait == 0, 0, wait - 1)))
        with m.If(self.issue):
            m.d.sync += [in_tile.eq(~self.final),
                         depth.eq(Mux(self.first, 0, depth) + self.beats)]
        m.d.comb += [sums.tags.valid.eq(self.issue), sums.tags.p.first.eq(self.first),
                     sums.tags.p.final.eq(self.final)]

        # The grid: the pass's row arrives _ROW_DELAY cycles later, an exact pass sum.
        arriving, beats, final = self.issue, self.beats, self.final
        for stage in range(_ROW_DELAY):
            regs = (Signal(name=f"row_valid_{stage}"), Signal.like(beats, name=f"beats_{stage}"),
                    Signal(name=f"final_{stage}"))
            m.d.sync += [regs[0].eq(arriving), regs[1].eq(beats), regs[2].eq(final)]
            arriving, beats, final = regs
        m.d.comb += Assume((self.value >= beats * p_lo) & (self.value <= beats * p_hi))
        m.d.comb += [sums.rows.valid.eq(arriving), sums.rows.p.acc[0].eq(self.value),
                     sums.rows.p.last.eq(1)]

        # The exact sum of the tile's passes so far, and of the row PassSums is to send.
        total, sent = Signal(wide), Signal(wide)
        with m.If(arriving):
            m.d.sync += total.eq(Mux(final, 0, total + self.value))
        m.d.sync += sent.eq(total + self.value)
        for _ in range(PASS_SUMS_LATENCY - 1):
            later = Signal(wide)
            m.d.sync += later.eq(sent)
            sent = later
        m.d.comb += Assert(~sums.o.valid | (sums.o.p.acc[0] == sent))
        narrow = cfg.partial_sum_bits - 1
        m.d.comb += Cover(sums.o.valid & ((sent < -(1 << (narrow - 1))) |
                                          (sent >= (1 << (narrow - 1)))))
        return m


def _row_layout(config, hardware):
    """The requantizer's input row of a one-column engine of ``config`` (its channel table
    has ``max_n_tiles`` entries) with ``hardware``'s partial-sum width."""
    return data.StructLayout({"acc": data.ArrayLayout(signed(hardware.partial_sum_bits), 1),
                              "last": 1, "n": range(config.max_n_tiles)})


class RowSumCheck(wiring.Component):
    """No-wrap and row-count harness of :class:`hw.engine.RowSums` for a one-column engine.

    Parameters
    ----------
    config : EngineConfig
        Weight-stationary, ``array.cols == 1`` (other columns are the same adders).
    hardware : object or None
        What ``RowSums`` is built from; default ``config``; :func:`narrower` for the mutant.
    """

    def __init__(self, config, *, hardware=None):
        if (not isinstance(config, EngineConfig) or not config.weight_stationary
                or config.array.cols != 1):
            raise TypeError(f"config must be a one-column weight-stationary EngineConfig, "
                            f"not {config!r}")
        self._config, self._hardware = config, hardware or config
        limits = shape_limits(config)
        super().__init__({
            **{name: In(range(limit + 1)) for name, limit in limits.items()},
            "arrive": In(1),
            "beats": In(range(config.array.rows + 1)),
            "value": In(signed(config.array.accumulator_bits)),
        })

    def elaborate(self, platform):
        cfg, array = self._config, self._config.array
        m = Module()
        hold_reset_low(m)
        m.submodules.sums = sums = RowSums(self._hardware, _row_layout(cfg, self._hardware))
        limits = shape_limits(cfg)

        # The command: a legal shape, the same all along.
        started = Signal()
        held = {name: Signal.like(getattr(self, name), name=f"held_{name}") for name in limits}
        m.d.sync += started.eq(1)
        with m.If(~started):
            m.d.sync += [held[name].eq(getattr(self, name)) for name in limits]
        for name, limit in limits.items():
            field = getattr(self, name)
            m.d.comb += [Assume((field >= 1) & (field <= limit)),
                         Assume(~started | (field == held[name])),
                         getattr(sums.shape, name).eq(field)]
        rows_m, n_tiles, k_tiles = self.m, self.n_tiles, self.k_tiles

        # The grid: rows in order, each K tile of `beats` products (the same for its rows),
        # ≤ max_k products in all, nothing after the command's last row.
        row, k_tile, n_tile = (Signal(range(limit + 1), name=name) for name, limit in
                               (("row", cfg.max_m), ("k_tile", cfg.max_k_tiles),
                                ("n_tile", cfg.max_n_tiles)))
        tile_beats = Signal.like(self.beats)
        depth = Signal(range(cfg.max_k + array.rows + 1))     # products of the N tile so far
        p_lo, p_hi = product_bounds(array.act_range, array.weight_range)
        p_lo, p_hi = min(p_lo, 0), max(p_hi, 0)
        first, final = k_tile == 0, k_tile == k_tiles - 1
        new_tile = row == 0
        beats = Mux(new_tile, self.beats, tile_beats)
        m.d.comb += [
            Assume(~self.arrive | (n_tile < n_tiles)),
            Assume(~self.arrive | ~new_tile | ((self.beats >= 1) &
                                               (Mux(first, 0, depth) + self.beats <= cfg.max_k))),
            Assume((self.value >= beats * p_lo) & (self.value <= beats * p_hi)),
            sums.rows.valid.eq(self.arrive), sums.rows.p.acc[0].eq(self.value),
        ]
        with m.If(self.arrive):
            with m.If(new_tile):
                m.d.sync += [tile_beats.eq(self.beats),
                             depth.eq(Mux(first, 0, depth) + self.beats)]
            m.d.sync += row.eq(row + 1)
            with m.If(row == rows_m - 1):
                m.d.sync += [row.eq(0), k_tile.eq(k_tile + 1)]
                with m.If(final):
                    m.d.sync += [k_tile.eq(0), n_tile.eq(n_tile + 1)]

        # The exact sum of each row of X over the N tile's K tiles so far.
        p_max = max(-p_lo, p_hi) * cfg.max_k
        exact = Array(Signal(signed(p_max.bit_length() + 2), name=f"exact_{r}")
                      for r in range(cfg.max_m))
        total = Signal.like(exact[0])
        m.d.comb += total.eq(Mux(first, 0, exact[row]) + self.value)
        with m.If(self.arrive):
            m.d.sync += exact[row].eq(total)
        # What o must send ROW_SUMS_LATENCY cycles later.
        due = (self.arrive & final, total, row == rows_m - 1, n_tile)
        for stage in range(ROW_SUMS_LATENCY):
            later = tuple(Signal.like(value, name=f"due_{stage}_{index}")
                          for index, value in enumerate(due))
            m.d.sync += [a.eq(b) for a, b in zip(later, due, strict=True)]
            due = later
        valid, expected, last, n = due
        sent = Signal(range(cfg.max_m * cfg.max_n_tiles + 2))
        with m.If(sums.o.valid):
            m.d.sync += sent.eq(sent + 1)
        m.d.comb += [
            Assert(sums.o.valid == valid),
            Assert(~sums.o.valid | ((sums.o.p.acc[0] == expected) & (sums.o.p.last == last)
                                    & (sums.o.p.n == n))),
            Assert(sent <= rows_m * n_tiles),
        ]
        narrow = cfg.partial_sum_bits - 1
        m.d.comb += [
            Cover(sums.o.valid & ((expected < -(1 << (narrow - 1))) |
                                  (expected >= (1 << (narrow - 1))))),
            Cover(sums.o.valid & sums.o.p.last & (sent + 1 == rows_m * n_tiles) & (n_tiles > 1)
                  & (rows_m > 1)),
        ]
        return m
