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
"""

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from golden.accumulator import product_bounds
from hw.config import EngineConfig
from hw.engine import PassSums
from hw.engine.partial_sums import PASS_SUMS_LATENCY
from hw.engine.sequencer import engine_pass_interval

from .harness import hold_reset_low

__all__ = ["PartialSumCheck", "narrower"]

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
        row_layout = data.StructLayout({"acc": data.ArrayLayout(
            signed(self._hardware.partial_sum_bits), 1), "last": 1, "n": 1})
        m.submodules.sums = sums = PassSums(self._hardware, row_layout)

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
        m.d.comb += Assert(sums.o.valid.implies(sums.o.p.acc[0] == sent))
        narrow = cfg.partial_sum_bits - 1
        m.d.comb += Cover(sums.o.valid & ((sent < -(1 << (narrow - 1))) |
                                          (sent >= (1 << (narrow - 1)))))
        return m
