"""The GEMM engine: buffers and a sequencer around a systolic array.

:class:`GemmEngine` computes Y = requantize(X·Wᵀ + bias) for any M×K×N within its buffers,
on either dataflow::

    activations ─→ activation buffer ─┐
    weights     ─→ (weight buffer) ───┼→ sequencer → PE grid → partial sums ─┐
    channels    ─→ channel table (bias, M0, shift) ──────────────────────────┴→ requantizer

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


from amaranth.hdl import Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out, connect

from .config import EngineConfig
from .pe import PassFlags, TileFlags, operand_shape
from .requantizer import (
    FIFO_LATENCY,
    ChannelTable,
    Requantizer,
    ResultRow,
    channel_params,
    requantizer_latency,
)
from .systolic import (
    OutputStationaryArray,
    WeightBanks,
    WeightStationaryArray,
    grid_latency,
    pass_interval,
    readout_latency,
)
from .top import CreditFIFO, _raw_act_shape, _raw_weight_shape, accumulator_fifo_depth

__all__ = ["EngineConfig", "GemmEngine", "engine_layouts"]

#: Largest number of M tiles one command may stream (the counters' width).
MAX_M_TILES = 1 << 16


def _shape_limits(config):
    """The command's shape fields and the largest value each may take."""
    if config.weight_stationary:
        return {"m": config.max_m, "n_tiles": config.max_n_tiles, "k_tiles": config.max_k_tiles}
    return {"m_tiles": MAX_M_TILES, "n_tiles": config.max_n_tiles, "depth": config.max_k}


def engine_layouts(config):
    """Payload layouts of :class:`GemmEngine`'s streams, by port name."""
    array = config.array
    out_shape = operand_shape(*array.out_range)
    return {
        "command": data.StructLayout({
            **{name: range(limit + 1) for name, limit in _shape_limits(config).items()},
            "output_zero_point": out_shape,
            "act_min": out_shape,
            "act_max": out_shape,
        }),
        "activations": data.StructLayout({
            "x": data.ArrayLayout(_raw_act_shape(array), array.rows)}),
        "weights": data.StructLayout({
            "w": data.ArrayLayout(_raw_weight_shape(array), array.cols)}),
        "channels": data.StructLayout(channel_params(array, array.cols)),
        "results": ResultRow(out_shape, array.cols),
    }


def _load(m, port, buffer, *, addr, room):
    """Take beats of the stream ``port`` while ``room``, each written into the memory
    ``buffer`` at ``addr``; returns the condition that a beat is taken this cycle."""
    write = buffer.write_port()
    taken = port.valid & port.ready
    m.d.comb += [port.ready.eq(room), write.addr.eq(addr), write.data.eq(port.p),
                 write.en.eq(taken)]
    return taken


#: Cycles from issuing a beat to it entering the grid: the buffer read, then a register, so
#: that no block RAM output drives a DSP input directly.
GRID_FEED_LATENCY = 2


def _feed(m, core, flags, **operands):
    """Drive the grid ``core`` from buffer read data (``x``, ``w``) and their ``flags``, all
    through one more register (:data:`GRID_FEED_LATENCY`)."""
    staged = Signal.like(flags, name="feed_flags")
    m.d.sync += staged.eq(flags)
    m.d.comb += core.flags.eq(staged)
    for name, value in operands.items():
        port = getattr(core, name)
        register = Signal.like(port, name=f"feed_{name}")
        m.d.sync += register.eq(value)
        m.d.comb += port.eq(register)


class _PassTag(data.Struct):
    """What the readout side needs to know about a pass, queued when it is issued."""
    first: 1   # first pass of its tile: nothing to add from the partial-sum buffer
    final: 1   # last pass of its tile: requantize instead of storing the sum
    n: unsigned(14)


class GemmEngine(wiring.Component):
    """Tiled GEMM with on-chip buffers, exact deep reductions and per-channel requantization.

    A command runs one GEMM; the host pads ragged edges and drops the padded outputs
    (:func:`hw.host.engine_job` lays a GEMM out as the beats below, docs/engine.md):

    command : stream in
        Output-stationary ``{m_tiles, n_tiles, depth, output_zero_point, act_min, act_max}``
        (M = m_tiles·rows, N = n_tiles·cols, K = depth); weight-stationary ``{m, n_tiles,
        k_tiles, …}`` (M = m, K = k_tiles·rows). Taken when ``busy`` is low. A shape field
        zero or beyond the buffers, or ``act_min > act_max``, sets the sticky ``error`` and
        the command is dropped.
    channels : stream in, ``{bias, multiplier, shift}`` × cols
        ``n_tiles`` beats, one per N tile: the hardware bias (input zero point folded in) and
        TFLite's (M0, shift) of each of its output channels.
    weights : stream in, ``{w}`` × cols
        Output-stationary: ``n_tiles · depth`` beats, N tile by N tile, k = 0 first.
        Weight-stationary: ``n_tiles · k_tiles · rows`` beats, for each N tile each K tile,
        k = 0 first.
    activations : stream in, ``{x}`` × rows
        Output-stationary: ``m_tiles · depth`` beats, M tile by M tile, k = 0 first (lane i
        is row i of the tile). Weight-stationary: ``k_tiles · m`` beats, K tile by K tile,
        row 0 first (lane k is column k of the K tile).
    results : stream out, ``{y, last}`` × cols
        Output-stationary: ``rows`` rows per (M tile, N tile), N tiles innermost.
        Weight-stationary: ``m`` rows per N tile. ``last`` on each tile's final row.

    The input streams may arrive in any interleaving; each is taken as soon as there is room.
    """

    def __init__(self, config):
        if not isinstance(config, EngineConfig):
            self._MustUse__silence = True   # refused: never to be elaborated
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self._config = config
        array = config.array
        # The requantizer sees exact partial sums; each row names its N tile, whose channel
        # parameters the requantizer reads from the channel table stage by stage.
        self._requant_config = array.replace(
            dataflow="output_stationary", kmax=config.max_k,
            accumulator_width=config.partial_sum_bits, per_channel=True,
            requant_lanes=array.lanes)
        self._layouts = engine_layouts(config)
        self._psum_layout = data.ArrayLayout(signed(config.partial_sum_bits), array.cols)
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
        """Output-stationary: minimum cycles between the last beats of two passes (the array's
        readout, and the partial-sum FIFO's write-to-read latency). Weight-stationary: 1."""
        if self._config.weight_stationary:
            return 1
        return max(pass_interval(self._config.array), FIFO_LATENCY)

    @property
    def _sum_latency(self):
        """Cycles from issuing a beat to its row's exact sum entering the accumulator FIFO:
        buffer read, grid, partial-sum add."""
        if self._config.weight_stationary:
            grid = grid_latency(self._config.array) + 1  # + the row register before the add
        else:
            grid = readout_latency(self._config.array)
        return GRID_FEED_LATENCY + grid + 1

    @property
    def row_interval(self):
        """Cycles between consecutive result rows at full rate (requantizer lane groups)."""
        return self._config.array.requant_groups

    @property
    def latency(self):
        """Cycles from issuing the beat that completes a result row (output-stationary: the
        last beat of a tile's final pass, for its row 0) to that row on ``results`` with the
        sink ready and the requantizer idle: buffer read, grid, partial-sum add, accumulator
        FIFO, the row's lane groups, requantizer."""
        return (self._sum_latency + FIFO_LATENCY + self.row_interval - 1 +
                requantizer_latency(self._requant_config))

    @property
    def fifo_depth(self):
        """Rows of exact sums buffered before the requantizer."""
        cfg = self._config
        rows = 1 if cfg.weight_stationary else cfg.array.rows
        return accumulator_fifo_depth(cfg.array, self._sum_latency + self.pass_interval,
                                      rows_per_reserve=rows)

    def elaborate(self, platform):
        cfg = self._config
        array = cfg.array
        m = Module()
        grid = WeightStationaryArray if cfg.weight_stationary else OutputStationaryArray
        m.submodules.core = core = grid(array)
        m.submodules.requantizer = requantizer = Requantizer(self._requant_config,
                                                             table_depth=cfg.max_n_tiles)

        # -- command: the shape, and the output parameters held for the whole command ----------
        active = Signal()
        command = self.command.p
        limits = _shape_limits(cfg)
        shape = {name: Signal.like(getattr(command, name), name=name) for name in limits}
        command_ok = command.act_min <= command.act_max
        for name, limit in limits.items():
            field = getattr(command, name)
            command_ok &= (field != 0) & (field <= limit)
        m.d.comb += self.command.ready.eq(~self.busy)
        start = self.command.valid & self.command.ready & command_ok
        with m.If(self.command.valid & self.command.ready & ~command_ok):
            m.d.sync += self.error.eq(1)
        with m.If(start):
            m.d.sync += active.eq(1)
            m.d.sync += [register.eq(getattr(command, name)) for name, register in shape.items()]
        for name in ("output_zero_point", "act_min", "act_max"):
            register = Signal.like(getattr(command, name), name=name)
            m.d.comb += getattr(requantizer, name).eq(register)
            with m.If(start):
                m.d.sync += register.eq(getattr(command, name))

        # -- channel table: one entry per N tile, cleared by each command -------------------
        channel_table = ChannelTable(self._requant_config, cfg.max_n_tiles)
        m.submodules.channel_table = ResetInserter(start)(channel_table)
        connect(m, wiring.flipped(self.channels), channel_table.channels)
        m.d.comb += channel_table.limit.eq(Mux(active, shape["n_tiles"], 0))
        for name in channel_params(self._requant_config, 1):
            connect(m, getattr(channel_table, f"{name}_read"),
                    getattr(requantizer, f"{name}_read"))
        channel_tiles = channel_table.loaded

        # -- exact sums → accumulator FIFO (credits reserved when a final pass issues) ------
        # → requantizer → results
        m.submodules.accumulators = accumulators = CreditFIFO(
            requantizer.i.p.shape(), depth=self.fifo_depth, max_reserve=array.rows)
        connect(m, accumulators.o, requantizer.i)
        connect(m, requantizer.o, wiring.flipped(self.results))
        credits, reserve = accumulators.credits, accumulators.reserve

        # -- the dataflow: buffers, sequencer, partial sums ----------------------------------
        elaborate = self._elaborate_ws if cfg.weight_stationary else self._elaborate_os
        done, drained, summed = elaborate(m, core, shape, start, active, channel_tiles,
                                          credits, reserve)
        # `summed`: a row of exact sums of a tile's final pass, and the N tile it belongs to.
        m.d.comb += [
            accumulators.i.valid.eq(summed["valid"]),
            accumulators.i.p.acc.eq(summed["acc"]),
            accumulators.i.p.last.eq(summed["last"]),
            accumulators.i.p.n.eq(summed["n"]),
        ]

        with m.If(active & done):
            m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active | (credits != self.fifo_depth) | requantizer.busy |
                                 ~drained)
        return m

    def _partial_sums(self, rows_in, previous, first):
        """``rows_in`` + ``previous`` (unless ``first``) at the exact partial-sum width."""
        total = Signal(self._psum_layout, name="total")
        return total, [total[j].eq(rows_in[j] + Mux(first, 0, previous[j]))
                       for j in range(self._config.array.cols)]

    def _sum_stage(self, m, total, *, final, last, n):
        """The requantizer's input: the exact sums ``total`` registered, valid for the
        ``final`` pass of a tile, with its N tile ``n``."""
        acc = Signal(self._psum_layout, name="sum")
        valid, row_last = Signal(name="sum_valid"), Signal(name="sum_last")
        row_n = Signal.like(n, name="sum_n")
        m.d.sync += [acc.eq(total), valid.eq(final), row_last.eq(last), row_n.eq(n)]
        return {"valid": valid, "acc": acc, "last": row_last, "n": row_n}

    def _elaborate_os(self, m, core, shape, start, active, channel_tiles, credits, reserve):
        cfg = self._config
        array = cfg.array
        rows, kmax = array.rows, array.kmax
        layouts = self._layouts
        m_tiles, n_tiles, depth = shape["m_tiles"], shape["n_tiles"], shape["depth"]

        # -- loaders: each input stream fills its buffer in order ------------------------------
        m.submodules.act_buffer = act_buffer = memory.Memory(
            shape=layouts["activations"], depth=2 * cfg.max_k, init=[])
        m.submodules.weight_buffer = weight_buffer = memory.Memory(
            shape=layouts["weights"], depth=cfg.max_n_tiles * cfg.max_k, init=[])

        act_tiles = Signal(range(MAX_M_TILES + 1))      # M tiles completely loaded
        weight_tiles = Signal(range(cfg.max_n_tiles + 1))
        compute_m = Signal(range(MAX_M_TILES + 1))      # M tile the sequencer works on

        def bank_base(tile):  # tile t lives in bank t mod 2
            return Mux(tile[0], cfg.max_k, 0)

        act_k = Signal(range(cfg.max_k))
        # A bank is free again once the sequencer has moved past the tile two before.
        with m.If(_load(m, self.activations, act_buffer, addr=bank_base(act_tiles) + act_k,
                        room=active & (act_tiles < m_tiles) & (act_tiles < compute_m + 2))):
            m.d.sync += act_k.eq(Mux(act_k == depth - 1, 0, act_k + 1))
            with m.If(act_k == depth - 1):
                m.d.sync += act_tiles.eq(act_tiles + 1)

        weight_k = Signal(range(cfg.max_k))
        weight_addr = Signal(range(cfg.max_n_tiles * cfg.max_k))
        with m.If(_load(m, self.weights, weight_buffer, addr=weight_addr,
                        room=active & (weight_tiles < n_tiles))):
            m.d.sync += [weight_addr.eq(weight_addr + 1),
                         weight_k.eq(Mux(weight_k == depth - 1, 0, weight_k + 1))]
            with m.If(weight_k == depth - 1):
                m.d.sync += weight_tiles.eq(weight_tiles + 1)

        # -- sequencer: for m, for n, for each pass of ≤ kmax beats -----------------------------
        compute_n = Signal(range(cfg.max_n_tiles + 1))
        k = Signal(range(cfg.max_k))                    # within the tile
        pass_k = Signal(range(kmax))                    # within the pass
        weight_base = Signal(range(cfg.max_n_tiles * cfg.max_k))  # compute_n · depth
        since_last = Signal(range(self.pass_interval + 1), init=self.pass_interval)

        # Kept in registers, so that no subtraction sits in front of `issue`: the tile's last
        # k, and the beats from this pass's first to the tile's end.
        last_k = Signal.like(depth, name="last_k")
        remaining = Signal.like(depth, name="remaining")
        m.d.sync += last_k.eq(depth - 1)
        tile_end = k == last_k
        pass_end = (pass_k == kmax - 1) | tile_end
        first_pass = k == pass_k
        final_pass = remaining <= kmax
        loaded = ((act_tiles > compute_m) & (weight_tiles > compute_n) &
                  (channel_tiles > compute_n))
        may_end = (since_last == self.pass_interval) & (~final_pass | (credits >= rows))
        issue = active & (compute_m < m_tiles) & loaded & (~pass_end | may_end)

        # Passes between issue and their last row leaving the grid, one tag each.
        in_flight = (GRID_FEED_LATENCY + core.readout_latency + rows) // self.pass_interval + 2
        m.submodules.tags = tags = SyncFIFOBuffered(
            width=_PassTag.as_shape().size, depth=in_flight)
        tag = _PassTag(tags.w_data)
        m.d.comb += [tags.w_en.eq(issue & pass_end), tag.first.eq(first_pass),
                     tag.final.eq(final_pass), tag.n.eq(compute_n)]

        act_read = act_buffer.read_port()
        weight_read = weight_buffer.read_port()
        m.d.comb += [act_read.addr.eq(bank_base(compute_m) + k),
                     weight_read.addr.eq(weight_base + k)]
        flags = Signal(PassFlags)   # aligned with the buffers' read data
        m.d.sync += [flags.valid.eq(issue), flags.first.eq(~pass_k.any()),
                     flags.last.eq(pass_end)]
        _feed(m, core, flags, x=act_read.data.x, w=weight_read.data.w)

        with m.If(since_last != self.pass_interval):
            m.d.sync += since_last.eq(since_last + 1)
        with m.If(issue):
            m.d.sync += [k.eq(k + 1), pass_k.eq(pass_k + 1)]
            with m.If(pass_end):
                m.d.sync += [pass_k.eq(0), since_last.eq(1), remaining.eq(remaining - kmax)]
                with m.If(final_pass):
                    m.d.comb += reserve.eq(rows)
            with m.If(tile_end):
                m.d.sync += [k.eq(0), compute_n.eq(compute_n + 1), remaining.eq(depth),
                             weight_base.eq(weight_base + depth)]
                with m.If(compute_n == n_tiles - 1):
                    m.d.sync += [compute_n.eq(0), weight_base.eq(0),
                                 compute_m.eq(compute_m + 1)]
        with m.If(start):
            m.d.sync += [act_tiles.eq(0), weight_tiles.eq(0), compute_m.eq(0),
                         compute_n.eq(0), k.eq(0), pass_k.eq(0), weight_base.eq(0),
                         weight_addr.eq(0), act_k.eq(0), weight_k.eq(0),
                         remaining.eq(self.command.p.depth)]

        # -- readout: the passes of a tile add up in a FIFO of rows, exactly --------------------
        m.submodules.partial_sums = partial_sums = SyncFIFOBuffered(
            width=self._psum_layout.size, depth=rows + 1)
        readout_tag = _PassTag(tags.r_data)
        arriving = core.rows_valid
        total, add = self._partial_sums(core.rows.acc, self._psum_layout(partial_sums.r_data),
                                        readout_tag.first)
        m.d.comb += add
        m.d.comb += [
            tags.r_en.eq(arriving & core.rows.last),
            partial_sums.r_en.eq(arriving & ~readout_tag.first),
            partial_sums.w_en.eq(arriving & ~readout_tag.final),
            partial_sums.w_data.eq(total),
        ]
        summed = self._sum_stage(m, total, final=arriving & readout_tag.final,
                                 last=core.rows.last, n=readout_tag.n)
        done = compute_m == m_tiles
        return done, Const(1), summed

    def _elaborate_ws(self, m, core, shape, start, active, channel_tiles, credits, reserve):
        cfg = self._config
        array = cfg.array
        rows, cols = array.rows, array.cols
        layouts = self._layouts
        rows_m, n_tiles, k_tiles = shape["m"], shape["n_tiles"], shape["k_tiles"]

        # -- X, buffered for the whole command: K tile by K tile, row by row ------------------
        m.submodules.act_buffer = act_buffer = memory.Memory(
            shape=layouts["activations"], depth=cfg.max_m * cfg.max_k_tiles, init=[])
        act_loaded = Signal(range(cfg.max_m * cfg.max_k_tiles + 1))
        load_row = Signal(range(cfg.max_m))
        load_k_tile = Signal(range(cfg.max_k_tiles + 1))
        with m.If(_load(m, self.activations, act_buffer, addr=act_loaded,
                        room=active & (load_k_tile < k_tiles))):
            m.d.sync += [act_loaded.eq(act_loaded + 1), load_row.eq(load_row + 1)]
            with m.If(load_row == rows_m - 1):
                m.d.sync += [load_row.eq(0), load_k_tile.eq(load_k_tile + 1)]

        # -- weights stream straight into the grid's two banks --------------------------------
        banks = WeightBanks(m, core, rows)
        weight_k_tile = Signal(range(cfg.max_k_tiles + 1))
        weight_n_tile = Signal(range(cfg.max_n_tiles + 1))
        m.d.comb += self.weights.ready.eq(active & (weight_n_tile < n_tiles) & banks.can_load)
        tile_loaded = banks.load(self.weights.valid & self.weights.ready,
                                 [self.weights.p.w[j] for j in range(cols)])
        with m.If(tile_loaded):
            m.d.sync += weight_k_tile.eq(weight_k_tile + 1)
            with m.If(weight_k_tile == k_tiles - 1):
                m.d.sync += [weight_k_tile.eq(0), weight_n_tile.eq(weight_n_tile + 1)]

        # -- sequencer: for n, for each K tile, every row of X --------------------------------
        compute_row = Signal(range(cfg.max_m))
        compute_k_tile = Signal(range(cfg.max_k_tiles))
        compute_n = Signal(range(cfg.max_n_tiles + 1))
        read_addr = Signal(range(cfg.max_m * cfg.max_k_tiles))
        final = compute_k_tile == k_tiles - 1
        tile_end = compute_row == rows_m - 1
        issue = (active & (compute_n < n_tiles) & (act_loaded > read_addr) &
                 (channel_tiles > compute_n) &
                 banks.can_compute & (~final | credits.any()))
        act_read = act_buffer.read_port()
        m.d.comb += act_read.addr.eq(read_addr)
        flags = Signal(TileFlags)   # aligned with the buffer's read data
        m.d.sync += [flags.valid.eq(issue), flags.last.eq(tile_end),
                     flags.bank.eq(banks.compute_bank)]
        _feed(m, core, flags, x=act_read.data.x)
        with m.If(issue):
            m.d.sync += [compute_row.eq(compute_row + 1), read_addr.eq(read_addr + 1)]
            with m.If(final):
                m.d.comb += reserve.eq(1)
            with m.If(tile_end):
                m.d.sync += [compute_row.eq(0), compute_k_tile.eq(compute_k_tile + 1)]
                with m.If(final):
                    m.d.sync += [compute_k_tile.eq(0), read_addr.eq(0),
                                 compute_n.eq(compute_n + 1)]
        banks.computed(issue & tile_end)
        with m.If(start):
            m.d.sync += [act_loaded.eq(0), load_row.eq(0), load_k_tile.eq(0),
                         weight_k_tile.eq(0), weight_n_tile.eq(0),
                         compute_row.eq(0), compute_k_tile.eq(0), compute_n.eq(0),
                         read_addr.eq(0)]

        # -- readout: each row of X adds its K tiles up in an accumulator memory, exactly ------
        out_row = Signal(range(cfg.max_m))
        out_k_tile = Signal(range(cfg.max_k_tiles))
        out_n = Signal(range(cfg.max_n_tiles + 1))
        m.submodules.partial_sums = partial_sums = memory.Memory(
            shape=self._psum_layout, depth=cfg.max_m, init=[])
        psum_write = partial_sums.write_port()
        # Transparent: row r of K tile t may arrive the cycle after row r of tile t − 1 was
        # written (a one-row X).
        psum_read = partial_sums.read_port(transparent_for=(psum_write,))
        arriving = core.rows_valid
        row = Signal(self._psum_layout, name="row")
        row_valid, row_first, row_final, row_last = (Signal(name=f"row_{name}") for name in
                                                     ("valid", "first", "final", "last"))
        row_index = Signal.like(out_row, name="row_index")
        row_n = Signal.like(out_n, name="row_n")
        m.d.comb += psum_read.addr.eq(out_row)
        m.d.sync += [row[j].eq(core.rows.acc[j]) for j in range(cols)]
        m.d.sync += [row_valid.eq(arriving), row_first.eq(~out_k_tile.any()),
                     row_final.eq(out_k_tile == k_tiles - 1),
                     row_last.eq(out_row == rows_m - 1), row_index.eq(out_row), row_n.eq(out_n)]
        with m.If(arriving):
            m.d.sync += out_row.eq(out_row + 1)
            with m.If(out_row == rows_m - 1):
                m.d.sync += [out_row.eq(0), out_k_tile.eq(out_k_tile + 1)]
                with m.If(out_k_tile == k_tiles - 1):
                    m.d.sync += [out_k_tile.eq(0), out_n.eq(out_n + 1)]
        with m.If(start):
            m.d.sync += [out_row.eq(0), out_k_tile.eq(0), out_n.eq(0)]
        total, add = self._partial_sums(row, psum_read.data, row_first)
        m.d.comb += add
        m.d.comb += [psum_write.addr.eq(row_index), psum_write.en.eq(row_valid & ~row_final),
                     psum_write.data.eq(total)]
        summed = self._sum_stage(m, total, final=row_valid & row_final, last=row_last,
                                 n=row_n)
        done = compute_n == n_tiles
        return done, ~banks.draining, summed
