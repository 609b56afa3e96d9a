"""The GEMM engine: buffers and a sequencer around a systolic array.

:class:`GemmEngine` computes Y = requantize(X·Wᵀ + bias) for any M×K×N within its buffers,
on either dataflow. It only wires components, each built by a ``build_*`` method::

    command     ─→ CommandRegister (shape, output parameters; `start` clears per-command state)
    activations ─→ TileLoader ──────┐
    weights     ─→ TileLoader ──────┼→ sequencer → PE grid → PassSums/RowSums ─→ CreditFIFO ─┐
                   (WeightTileGate → WeightBanks, weight-stationary)                          │
    channels    ─→ ChannelTable (bias, M0, shift, read stage by stage) ──→ Requantizer ←──────┘
                                                                                ↓
    table       ─→ TableLoader ─→ ActivationLanes (activation_table only; bypassable) ─→ results

Output-stationary: M is tiled over the array's rows and N over its columns; K is split into
passes of at most ``kmax`` beats whose raw sums are added in an exact partial-sum FIFO.
Activations are double-buffered (the next M tile loads while the current one computes against
every N tile); weights stay for the whole command and are used as soon as their tile arrives;
passes follow each other with no bubble.

Weight-stationary: K is tiled over the array's rows and N over its columns; each weight tile
streams into the grid's second bank while the first computes, every row of X (buffered for the
whole command) passes through it, and the partial sums of each row are added across K tiles in
an exact accumulator memory. See docs/engine.md for the command interface.
"""

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, ResetInserter
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from ..config import EngineConfig
from ..pe import operand_shape
from ..requantizer import (
    FIFO_LATENCY,
    ChannelTable,
    Requantizer,
    ResultRow,
    channel_params,
    requantizer_latency,
    row_span,
)
from ..systolic import (
    OutputStationaryArray,
    WeightBanks,
    WeightStationaryArray,
    grid_latency,
    readout_latency,
)
from ..top import CreditFIFO, accumulator_fifo_depth, raw_act_shape, raw_weight_shape
from .activation import (
    TABLE_LATENCY,
    TableLoader,
    activation_lanes,
    table_entries,
    table_fields,
    table_load_layout,
)
from .command import MAX_M_TILES, OUTPUT_FIELDS, CommandRegister, shape_limits
from .loaders import TileLoader, WeightTileGate
from .partial_sums import PASS_SUMS_LATENCY, ROW_SUMS_LATENCY, PassSums, RowSums
from .sequencer import (
    ACT_BANKS,
    GRID_FEED_LATENCY,
    ISSUE_CHECK_LATENCY,
    OutputStationarySequencer,
    WeightStationarySequencer,
    engine_pass_interval,
)

__all__ = ["EngineConfig", "EngineTiming", "GemmEngine", "engine_layouts", "engine_timing"]


def engine_layouts(config):
    """Payload layouts of :class:`GemmEngine`'s streams, by port name (``table`` only with
    ``config.activation_table``)."""
    array = config.array
    out_shape = operand_shape(*array.out_range)
    layouts = {
        "command": data.StructLayout({
            **{name: range(limit + 1) for name, limit in shape_limits(config).items()},
            **{name: out_shape for name in OUTPUT_FIELDS},
            **table_fields(config),
        }),
        "activations": data.StructLayout({
            "x": data.ArrayLayout(raw_act_shape(array), array.rows)}),
        "weights": data.StructLayout({
            "w": data.ArrayLayout(raw_weight_shape(array), array.cols)}),
        "channels": data.StructLayout(channel_params(array, array.cols)),
        "results": ResultRow(out_shape, array.cols),
    }
    if config.activation_table:
        layouts["table"] = table_load_layout(array)
    return layouts


def requantizer_config(config):
    """The :class:`hw.config.ArrayConfig` of an engine's requantizer: exact partial sums in,
    per-channel parameters from the channel table."""
    array = config.array
    return array.replace(dataflow="output_stationary", kmax=config.max_k,
                         accumulator_width=config.partial_sum_bits, per_channel=True,
                         requant_lanes=array.lanes, fifo_depth=None)


@dataclass(frozen=True)
class EngineTiming:
    """The timing of a :class:`GemmEngine`, computed from its configuration.

    Attributes
    ----------
    pass_interval : int
        Output-stationary: minimum cycles between the last beats of two passes.
        Weight-stationary: 1.
    row_interval : int
        Cycles between consecutive result rows at full rate (requantizer lane groups).
    sum_latency : int
        Cycles from issuing a beat to its row's exact sum entering the accumulator FIFO:
        the grid feed (buffer read, register), the grid, the partial-sum stages.
    latency : int
        Cycles from issuing the beat that completes a result row (output-stationary: the
        last beat of a tile's final pass, for its row 0) to that row on ``results``, with
        the sink ready and the requantizer idle (the activation table's cycle included, when
        built, bypassed or not).
    fifo_depth : int
        Rows of exact sums buffered before the requantizer.
    """
    pass_interval: int
    row_interval: int
    sum_latency: int
    latency: int
    fifo_depth: int


def engine_timing(config):
    """:class:`EngineTiming` of the engine built from ``config``."""
    array = config.array
    if config.weight_stationary:
        grid, sums, rows_per_reserve = grid_latency(array), ROW_SUMS_LATENCY, 1
    else:
        grid, sums, rows_per_reserve = readout_latency(array), PASS_SUMS_LATENCY, array.rows
    pass_interval = engine_pass_interval(config)
    row_interval = array.requant_row_interval
    sum_latency = GRID_FEED_LATENCY + grid + sums
    return EngineTiming(
        pass_interval=pass_interval,
        row_interval=row_interval,
        sum_latency=sum_latency,
        latency=(sum_latency + FIFO_LATENCY + row_span(array) +
                 requantizer_latency(requantizer_config(config)) +
                 (TABLE_LATENCY if config.activation_table else 0)),
        # Output-stationary: the sequencer sees credits ISSUE_CHECK_LATENCY cycles late, as
        # if they came back that much later.
        fifo_depth=accumulator_fifo_depth(
            array, sum_latency + pass_interval +
            (0 if config.weight_stationary else ISSUE_CHECK_LATENCY),
            rows_per_reserve=rows_per_reserve),
    )


class GemmEngine(wiring.Component):
    """Tiled GEMM with on-chip buffers, exact deep reductions and per-channel requantization.

    A command runs one GEMM; the host pads ragged edges and drops the padded outputs
    (:func:`hw.host.engine_job` lays a GEMM out as the beats below, docs/engine.md).

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`

    Members
    -------
    command : ``In(stream.Signature(engine_layouts(config)["command"]))``
        Output-stationary ``{m_tiles, n_tiles, depth, output_zero_point, act_min, act_max}``
        (M = m_tiles·rows, N = n_tiles·cols, K = depth); weight-stationary ``{m, n_tiles,
        k_tiles, …}`` (M = m, K = k_tiles·rows); with ``config.activation_table`` also
        ``{table_loads, use_table}``. Taken when ``busy`` is low. A shape field zero or
        beyond the buffers, ``act_min > act_max`` or ``table_loads`` beyond the table sets
        the sticky ``error`` and the command is dropped.
    channels : ``In(stream.Signature({bias, multiplier, shift} × cols))``
        ``n_tiles`` beats, one per N tile: the hardware bias (input zero point folded in) and
        TFLite's (M0, shift) of each of its output channels.
    weights : ``In(stream.Signature({w: cols × weight}))``
        Output-stationary: ``n_tiles · depth`` beats, N tile by N tile, k = 0 first.
        Weight-stationary: ``n_tiles · k_tiles · rows`` beats, for each N tile each K tile,
        k = 0 first.
    activations : ``In(stream.Signature({x: rows × act}))``
        Output-stationary: ``m_tiles · depth`` beats, M tile by M tile, k = 0 first (lane i
        is row i of the tile). Weight-stationary: ``k_tiles · m`` beats, K tile by K tile,
        row 0 first (lane k is column k of the K tile).
    table : ``In(stream.Signature({addr, data}))`` (``config.activation_table``)
        ``table_loads`` beats: ``table[addr] = data`` in every column's table (address =
        output value − the output range's low end; :mod:`hw.engine.activation`). The
        command's first beat issues only once they are written; with ``use_table`` each
        result is ``table[y − lo]`` of the requantized ``y``.
    results : ``Out(stream.Signature({y: cols × out, last}))``
        Output-stationary: ``rows`` rows per (M tile, N tile), N tiles innermost.
        Weight-stationary: ``m`` rows per N tile. ``last`` on each tile's final row.
    busy : ``Out(1)``
        A command runs or its results are still on their way.
    error : ``Out(1)``
        Sticky: an invalid command was dropped.

    The input streams may arrive in any interleaving; each is taken as soon as there is room.
    Timing: :func:`engine_timing` (also as the properties below).
    """

    def __init__(self, config):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self._config = config
        self._timing = engine_timing(config)
        self._layouts = engine_layouts(config)
        members = {name: (Out if name == "results" else In)(stream.Signature(layout))
                   for name, layout in self._layouts.items()}
        members["busy"] = Out(1)
        members["error"] = Out(1)
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @property
    def pass_interval(self):
        return self._timing.pass_interval

    @property
    def row_interval(self):
        return self._timing.row_interval

    @property
    def latency(self):
        return self._timing.latency

    @property
    def fifo_depth(self):
        return self._timing.fifo_depth

    # -- components ------------------------------------------------------------------------

    def build_grid(self):
        """The PE grid of the configured dataflow."""
        array = self._config.array
        grid = WeightStationaryArray if array.weight_stationary else OutputStationaryArray
        return grid(array)

    def build_requantizer(self):
        """Exact sums → results, reading each channel's parameters from the channel table."""
        return Requantizer(requantizer_config(self._config), table_depth=self._config.max_n_tiles)

    def build_channel_table(self):
        """Bias, M0 and shift of every N tile, in block RAM."""
        return ChannelTable(requantizer_config(self._config), self._config.max_n_tiles)

    def build_accumulators(self, row_layout):
        """The accumulator FIFO between the partial sums and the requantizer, paced by
        credits."""
        return CreditFIFO(row_layout, depth=self._timing.fifo_depth,
                          max_reserve=self._config.array.rows)

    def build_activation_table(self):
        """One bypassable table per column over the output range, and the loader that passes
        a command's table beats to them."""
        array = self._config.array
        return (activation_lanes(array),
                TableLoader(self._layouts["table"], table_entries(array)))

    def build_output_stationary(self):
        """Activation loader (two banks), weight loader, sequencer."""
        cfg, layouts = self._config, self._layouts
        acts = TileLoader(layouts["activations"], tile_depth=cfg.max_k, slots=ACT_BANKS,
                          max_tiles=MAX_M_TILES)
        weights = TileLoader(layouts["weights"], tile_depth=cfg.max_k, slots=cfg.max_n_tiles,
                             max_tiles=cfg.max_n_tiles)
        sequencer = OutputStationarySequencer(cfg, layouts["activations"], layouts["weights"],
                                              credits_depth=self._timing.fifo_depth)
        return acts, weights, sequencer

    def build_weight_stationary(self):
        """X buffer (whole command), weight gate and banks, sequencer."""
        cfg, layouts = self._config, self._layouts
        acts = TileLoader(layouts["activations"], tile_depth=cfg.max_m, slots=cfg.max_k_tiles,
                          max_tiles=cfg.max_k_tiles)
        gate = WeightTileGate(cfg, layouts["weights"])
        banks = WeightBanks(cfg.array, feed_latency=GRID_FEED_LATENCY)
        sequencer = WeightStationarySequencer(cfg, layouts["activations"],
                                              credits_depth=self._timing.fifo_depth)
        return acts, gate, banks, sequencer

    # -- wiring -----------------------------------------------------------------------------

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.command = command = CommandRegister(cfg, self._layouts["command"])
        connect(m, wiring.flipped(self.command), command.command)
        per_command = ResetInserter(command.start)   # clears each command's counters
        active, shape = command.active, command.shape

        m.submodules.requantizer = requantizer = self.build_requantizer()
        m.d.comb += [getattr(requantizer, name).eq(getattr(command, name))
                     for name in OUTPUT_FIELDS]
        m.submodules.channel_table = per_command(channel_table := self.build_channel_table())
        connect(m, wiring.flipped(self.channels), channel_table.channels)
        m.d.comb += channel_table.limit.eq(Mux(active, shape.n_tiles, 0))
        for name in channel_params(requantizer_config(cfg), 1):
            connect(m, getattr(channel_table, f"{name}_read"),
                    getattr(requantizer, f"{name}_read"))

        row_layout = requantizer.i.p.shape()
        m.submodules.accumulators = accumulators = self.build_accumulators(row_layout)
        connect(m, accumulators.o, requantizer.i)
        channels_loaded, idle = channel_table.loaded, ~requantizer.busy
        if cfg.activation_table:
            lookup, loader = self.build_activation_table()
            m.submodules.activation_table = lookup
            m.submodules.table_loader = per_command(loader)
            connect(m, wiring.flipped(self.table), loader.i)
            connect(m, loader.o, lookup.load)
            connect(m, requantizer.o, lookup.i)
            connect(m, lookup.o, wiring.flipped(self.results))
            m.d.comb += [loader.limit.eq(Mux(active, command.table_loads, 0)),
                         lookup.bypass.eq(~command.use_table)]
            # no beat issues (so no row reaches the tables) before the command's entries
            channels_loaded = Mux(loader.done, channel_table.loaded, 0)
            idle &= ~lookup.o.valid    # and no row in the table's output register
        else:
            connect(m, requantizer.o, wiring.flipped(self.results))

        m.submodules.grid = grid = self.build_grid()
        if cfg.weight_stationary:
            acts, gate, banks, sequencer = self.build_weight_stationary()
            sums = RowSums(cfg, row_layout)
            m.submodules.banks = banks
            m.submodules.weight_gate = per_command(gate)
            connect(m, wiring.flipped(self.weights), gate.i)
            connect(m, gate.banks, banks.loader)
            connect(m, sequencer.banks, banks.issue)
            m.d.comb += [gate.active.eq(active), gate.k_tiles.eq(shape.k_tiles),
                         gate.n_tiles.eq(shape.n_tiles),
                         grid.load.eq(banks.grid_load), grid.load_bank.eq(banks.grid_load_bank),
                         grid.w_load.eq(banks.grid_w_load)]
            m.d.comb += [acts.tiles.eq(shape.k_tiles), acts.beats.eq(shape.m),
                         sequencer.act_loaded.eq(acts.loaded),
                         sequencer.act_filling.eq(acts.filling), sums.shape.eq(shape)]
            drained = ~banks.draining
        else:
            acts, weights, sequencer = self.build_output_stationary()
            sums = PassSums(cfg, row_layout)
            m.submodules.weight_loader = per_command(weights)
            connect(m, wiring.flipped(self.weights), weights.i)
            connect(m, weights.read, sequencer.weight_read)
            connect(m, sequencer.tags, sums.tags)
            m.d.comb += [weights.active.eq(active), weights.tiles.eq(shape.n_tiles),
                         weights.beats.eq(shape.depth), sequencer.weight_loaded.eq(weights.loaded),
                         acts.tiles.eq(shape.m_tiles), acts.beats.eq(shape.depth),
                         acts.release.eq(sequencer.act_release),
                         sequencer.act_pending.eq(acts.pending)]
            m.d.comb += [grid.w[j].eq(sequencer.w[j]) for j in range(cfg.array.cols)]
            drained = Const(1)
        m.submodules.act_loader = per_command(acts)
        m.submodules.sequencer = per_command(sequencer)
        m.submodules.partial_sums = per_command(sums)
        connect(m, wiring.flipped(self.activations), acts.i)
        connect(m, acts.read, sequencer.act_read)
        connect(m, sums.o, accumulators.i)
        m.d.comb += [
            acts.active.eq(active),
            sequencer.shape.eq(shape),
            sequencer.active.eq(active),
            sequencer.channels_loaded.eq(channels_loaded),
            sequencer.credits.eq(accumulators.credits),
            accumulators.reserve.eq(sequencer.reserve),
            grid.flags.eq(sequencer.flags),
            sums.rows.valid.eq(grid.rows_valid),
            sums.rows.p.eq(grid.rows),
            command.done.eq(sequencer.done),
            command.idle.eq((accumulators.credits == self._timing.fifo_depth) &
                            idle & drained),
            self.busy.eq(command.busy),
            self.error.eq(command.error),
        ]
        m.d.comb += [grid.x[i].eq(sequencer.x[i]) for i in range(cfg.array.rows)]
        return m
