"""The GEMM engine: buffers and a sequencer around the output-stationary array.

:class:`GemmEngine` computes Y = requantize(X·Wᵀ + bias) for any M×K×N within its buffers::

    activations ─→ activation buffer (2 banks) ─┐
    weights     ─→ weight buffer ───────────────┼→ sequencer → PE grid → partial sums
    channels    ─→ channel table (bias, M0, shift) ──────────────────────→ requantizer → results

M is tiled over the array's rows and N over its columns; K is split into passes of at most
``kmax`` whose raw sums are added in an exact partial-sum buffer, so one tile may be deeper than
the PEs' accumulators without losing a bit. Activations are double-buffered: while one M tile
computes against every N tile, the next M tile loads into the other bank. Weights stay for
the whole command and are used as soon as their tile has arrived, so the first M tile computes
while the weights still stream in. Passes follow each other with no bubble: the fill and drain
of one pass overlap the next. See docs/engine.md for the command interface.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.accumulator import accumulator_bits

from .config import ArrayConfig
from .pe import PassFlags, operand_shape
from .requantizer import Requantizer, ResultRow
from .systolic import OutputStationaryArray
from .top import _FIFO_LATENCY, _raw_act_shape, _raw_weight_shape

__all__ = ["EngineConfig", "GemmEngine", "engine_layouts"]

#: Largest number of M tiles one command may stream (the counters' width).
MAX_M_TILES = 1 << 16


def _ceil_div(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class EngineConfig:
    """A :class:`GemmEngine`: an output-stationary :class:`ArrayConfig` and buffer sizes.

    max_k : int
        Deepest reduction a command may ask for; the weight buffer holds
        ``ceil(max_n / cols) · max_k`` words and each activation bank ``max_k``. Passes are
        at most ``array.kmax`` deep; their sums add up exactly in a partial-sum buffer of
        :attr:`partial_sum_bits` (at most 32: TFLite's int32 accumulator).
    max_n : int
        Most output channels a command may ask for (the weight buffer and channel table).

    The channel table holds one (bias, M0, shift) per output channel whatever
    ``array.per_channel`` says; per-tensor scales are the same entry N times.
    """

    array: ArrayConfig
    max_k: int = 256
    max_n: int = 64

    def __post_init__(self):
        array = self.array
        if not isinstance(array, ArrayConfig):
            raise TypeError(f"array must be an ArrayConfig, not {array!r}")
        if array.weight_stationary:
            raise ValueError("array.dataflow must be 'output_stationary' for the GEMM engine, "
                             "not 'weight_stationary'")
        for name in ("input_zero_point_in_hw", "weight_zero_point_in_hw"):
            if getattr(array, name):
                raise ValueError(f"array.{name} must be False for the GEMM engine: the host "
                                 "folds the input zero point into the bias")
        for name, lo, hi in (("max_k", 1, 1 << 16), ("max_n", 1, 1 << 14)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
        bits = accumulator_bits(self.max_k, array.act_range, array.weight_range)
        if bits > 32:
            raise ValueError(f"max_k={self.max_k} needs a {bits}-bit partial sum, but the "
                             "requantizer takes int32 (TFLite's accumulator); lower max_k")

    @property
    def partial_sum_bits(self):
        """Exact width of a depth-``max_k`` dot product: the partial-sum buffer's lanes."""
        return max(accumulator_bits(self.max_k, self.array.act_range, self.array.weight_range),
                   self.array.accumulator_bits)

    @property
    def max_n_tiles(self):
        return _ceil_div(self.max_n, self.array.cols)

    @property
    def name(self):
        return self.array.name

    def to_dict(self):
        return {"array": self.array.to_dict(), "max_k": self.max_k, "max_n": self.max_n}

    @property
    def digest(self):
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def engine_layouts(config):
    """Payload layouts of :class:`GemmEngine`'s streams, by port name."""
    array = config.array
    out_shape = operand_shape(*array.out_range)
    channel = {"bias": data.ArrayLayout(signed(32), array.cols),
               "shift": data.ArrayLayout(signed(6), array.cols)}
    if array.requant == "multiplier":
        channel["multiplier"] = data.ArrayLayout(unsigned(31), array.cols)
    return {
        "command": data.StructLayout({
            "m_tiles": range(MAX_M_TILES + 1),
            "n_tiles": range(config.max_n_tiles + 1),
            "depth": range(config.max_k + 1),
            "output_zero_point": out_shape,
            "act_min": out_shape,
            "act_max": out_shape,
        }),
        "activations": data.StructLayout({
            "x": data.ArrayLayout(_raw_act_shape(array), array.rows)}),
        "weights": data.StructLayout({
            "w": data.ArrayLayout(_raw_weight_shape(array), array.cols)}),
        "channels": data.StructLayout(channel),
        "results": ResultRow(out_shape, array.cols),
    }


class _PassTag(data.Struct):
    """What the readout side needs to know about a pass, queued when it is issued."""
    first: 1   # first pass of its tile: nothing to add from the partial-sum buffer
    final: 1   # last pass of its tile: requantize instead of storing the sum
    n: unsigned(14)


class GemmEngine(wiring.Component):
    """Tiled GEMM with on-chip buffers, exact deep reductions and per-channel requantization.

    A command runs one GEMM of ``m_tiles·rows`` × ``depth`` × ``n_tiles·cols`` (the host pads
    ragged edges and drops the padded outputs, :func:`hw.host.engine_job`):

    command : stream in, ``{m_tiles, n_tiles, depth, output_zero_point, act_min, act_max}``
        Taken when the engine is idle (``busy`` low). A field out of range (``m_tiles`` or
        ``n_tiles`` zero or above the buffers, ``depth`` zero or above ``max_k``,
        ``act_min > act_max``) sets the sticky ``error`` and the command is dropped.
    channels : stream in, ``{bias, multiplier, shift}`` × cols
        ``n_tiles`` beats, one per N tile: the hardware bias (input zero point folded in) and
        TFLite's (M0, shift) of each of its output channels.
    weights : stream in, ``{w}`` × cols
        ``n_tiles · depth`` beats: tile 0 k = 0 … depth−1, then tile 1, …
    activations : stream in, ``{x}`` × rows
        ``m_tiles · depth`` beats, M tile by M tile, k = 0 first.
    results : stream out, ``{y, last}`` × cols
        ``rows`` result rows per (M tile, N tile), N tiles innermost; ``last`` on each tile's
        final row.

    The three input streams may arrive in any interleaving; each is taken as soon as there is
    room. Unstalled, a command takes ``ceil(depth / kmax)`` passes per tile, one beat per
    cycle, plus one fill and one drain of the pipeline (:attr:`pass_interval` bounds how short
    a pass can be).
    """

    def __init__(self, config):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self._config = config
        array = config.array
        self._core = OutputStationaryArray(array)
        # The requantizer sees exact partial sums, with each row's channel parameters.
        self._requant_config = array.replace(accumulator_width=config.partial_sum_bits,
                                             per_channel=True)
        self._requantizer = Requantizer(self._requant_config, params_per_row=True)
        self._core._MustUse__silence = self._requantizer._MustUse__silence = True
        layouts = engine_layouts(config)
        members = {name: (Out if name == "results" else In)(stream.Signature(layout))
                   for name, layout in layouts.items()}
        members["busy"] = Out(1)
        members["error"] = Out(1)
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @property
    def pass_interval(self):
        """Minimum cycles between the last beats of two passes: the array's readout, and the
        partial-sum buffer's write-to-read latency for a tile's consecutive passes."""
        return max(self._core.pass_interval, _FIFO_LATENCY)

    @property
    def latency(self):
        """Cycles from issuing the last beat of a tile's final pass to its row 0 on
        ``results`` (sink ready): buffer read, grid readout, partial-sum add, requantizer."""
        return 1 + self._core.readout_latency + 1 + self._requantizer.latency + _FIFO_LATENCY

    @property
    def fifo_depth(self):
        rows = self._config.array.rows
        return self.latency + rows + self.pass_interval + 2

    def elaborate(self, platform):
        cfg = self._config
        array = cfg.array
        rows, cols, kmax = array.rows, array.cols, array.kmax
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.requantizer = requantizer = self._requantizer

        # -- command ---------------------------------------------------------------------------
        active = Signal()
        m_tiles = Signal.like(self.command.p.m_tiles)
        n_tiles = Signal.like(self.command.p.n_tiles)
        depth = Signal.like(self.command.p.depth)
        for name in ("output_zero_point", "act_min", "act_max"):
            register = Signal.like(getattr(self.command.p, name), name=name)
            m.d.comb += getattr(requantizer, name).eq(register)
            with m.If(self.command.valid & self.command.ready):
                m.d.sync += register.eq(getattr(self.command.p, name))
        command = self.command.p
        command_ok = ((command.m_tiles != 0) & (command.n_tiles != 0) &
                      (command.n_tiles <= cfg.max_n_tiles) & (command.depth != 0) &
                      (command.depth <= cfg.max_k) & (command.act_min <= command.act_max))
        m.d.comb += self.command.ready.eq(~self.busy)
        start = self.command.valid & self.command.ready & command_ok
        with m.If(self.command.valid & self.command.ready & ~command_ok):
            m.d.sync += self.error.eq(1)

        # -- loaders: each input stream fills its buffer in order --------------------------------
        m.submodules.act_buffer = act_buffer = memory.Memory(
            shape=engine_layouts(cfg)["activations"], depth=2 * cfg.max_k, init=[])
        m.submodules.weight_buffer = weight_buffer = memory.Memory(
            shape=engine_layouts(cfg)["weights"], depth=cfg.max_n_tiles * cfg.max_k, init=[])
        m.submodules.channel_table = channel_table = memory.Memory(
            shape=engine_layouts(cfg)["channels"], depth=cfg.max_n_tiles, init=[])

        act_tiles = Signal(range(MAX_M_TILES + 1))      # M tiles completely loaded
        weight_tiles = Signal(range(cfg.max_n_tiles + 1))
        channel_tiles = Signal(range(cfg.max_n_tiles + 1))
        compute_m = Signal(range(MAX_M_TILES + 1))      # M tile the sequencer works on

        def bank_base(tile):  # tile t lives in bank t mod 2
            return Mux(tile[0], cfg.max_k, 0)

        act_k = Signal(range(cfg.max_k))
        act_write = act_buffer.write_port()
        # A bank is free again once the sequencer has moved past the tile two before.
        m.d.comb += [
            self.activations.ready.eq(active & (act_tiles < m_tiles) &
                                      (act_tiles < compute_m + 2)),
            act_write.addr.eq(bank_base(act_tiles) + act_k),
            act_write.data.eq(self.activations.p),
            act_write.en.eq(self.activations.valid & self.activations.ready),
        ]
        with m.If(act_write.en):
            m.d.sync += act_k.eq(Mux(act_k == depth - 1, 0, act_k + 1))
            with m.If(act_k == depth - 1):
                m.d.sync += act_tiles.eq(act_tiles + 1)

        weight_k = Signal(range(cfg.max_k))
        weight_addr = Signal(range(cfg.max_n_tiles * cfg.max_k))
        weight_write = weight_buffer.write_port()
        m.d.comb += [
            self.weights.ready.eq(active & (weight_tiles < n_tiles)),
            weight_write.addr.eq(weight_addr),
            weight_write.data.eq(self.weights.p),
            weight_write.en.eq(self.weights.valid & self.weights.ready),
        ]
        with m.If(weight_write.en):
            m.d.sync += [weight_addr.eq(weight_addr + 1),
                         weight_k.eq(Mux(weight_k == depth - 1, 0, weight_k + 1))]
            with m.If(weight_k == depth - 1):
                m.d.sync += weight_tiles.eq(weight_tiles + 1)

        channel_write = channel_table.write_port()
        m.d.comb += [
            self.channels.ready.eq(active & (channel_tiles < n_tiles)),
            channel_write.addr.eq(channel_tiles),
            channel_write.data.eq(self.channels.p),
            channel_write.en.eq(self.channels.valid & self.channels.ready),
        ]
        with m.If(channel_write.en):
            m.d.sync += channel_tiles.eq(channel_tiles + 1)

        # -- sequencer: for m, for n, for each pass of ≤ kmax beats -----------------------------
        compute_n = Signal(range(cfg.max_n_tiles + 1))
        k = Signal(range(cfg.max_k))                    # within the tile
        pass_k = Signal(range(kmax))                    # within the pass
        weight_base = Signal(range(cfg.max_n_tiles * cfg.max_k))  # compute_n · depth
        since_last = Signal(range(self.pass_interval + 1), init=self.pass_interval)
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        reserve = Signal(range(rows + 1))

        tile_end = k == depth - 1
        pass_end = (pass_k == kmax - 1) | tile_end
        first_pass = k == pass_k
        final_pass = depth - (k - pass_k) <= kmax
        loaded = ((act_tiles > compute_m) & (weight_tiles > compute_n) &
                  (channel_tiles > compute_n))
        may_end = (since_last == self.pass_interval) & (~final_pass | (credits >= rows))
        issue = active & (compute_m < m_tiles) & loaded & (~pass_end | may_end)

        # Passes between issue and their last row leaving the grid, one tag each.
        in_flight = (1 + core.readout_latency + rows) // self.pass_interval + 2
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
        m.d.comb += core.flags.eq(flags)
        m.d.comb += [core.x[i].eq(act_read.data.x[i]) for i in range(rows)]
        m.d.comb += [core.w[j].eq(weight_read.data.w[j]) for j in range(cols)]

        with m.If(since_last != self.pass_interval):
            m.d.sync += since_last.eq(since_last + 1)
        with m.If(issue):
            m.d.sync += [k.eq(k + 1), pass_k.eq(pass_k + 1)]
            with m.If(pass_end):
                m.d.sync += [pass_k.eq(0), since_last.eq(1)]
                with m.If(final_pass):
                    m.d.comb += reserve.eq(rows)
            with m.If(tile_end):
                m.d.sync += [k.eq(0), compute_n.eq(compute_n + 1),
                             weight_base.eq(weight_base + depth)]
                with m.If(compute_n == n_tiles - 1):
                    m.d.sync += [compute_n.eq(0), weight_base.eq(0),
                                 compute_m.eq(compute_m + 1)]

        # -- readout: add passes up exactly, then requantize -----------------------------------
        psum_bits = cfg.partial_sum_bits
        psum_layout = data.ArrayLayout(signed(psum_bits), cols)
        m.submodules.partial_sums = partial_sums = SyncFIFOBuffered(
            width=psum_layout.size, depth=rows + 1)
        readout_tag = _PassTag(tags.r_data)
        stored = psum_layout(partial_sums.r_data)
        total = [Signal(signed(psum_bits), name=f"total{j}") for j in range(cols)]
        m.d.comb += [total[j].eq(core.rows.acc[j] + Mux(readout_tag.first, 0, stored[j]))
                     for j in range(cols)]
        arriving = core.rows_valid
        m.d.comb += [
            tags.r_en.eq(arriving & core.rows.last),
            partial_sums.r_en.eq(arriving & ~readout_tag.first),
            partial_sums.w_en.eq(arriving & ~readout_tag.final),
        ]
        m.d.comb += [psum_layout(partial_sums.w_data)[j].eq(total[j]) for j in range(cols)]

        channel_read = channel_table.read_port()
        m.d.comb += channel_read.addr.eq(readout_tag.n)
        summed = Signal(requantizer.i.p.acc.shape())
        summed_valid = Signal()
        summed_last = Signal()
        m.d.sync += [summed_valid.eq(arriving & readout_tag.final),
                     summed_last.eq(core.rows.last)]
        m.d.sync += [summed[j].eq(total[j]) for j in range(cols)]
        m.d.comb += [
            requantizer.i.valid.eq(summed_valid),
            requantizer.i.p.acc.eq(summed),
            requantizer.i.p.last.eq(summed_last),
            requantizer.i.p.bias.eq(channel_read.data.bias),
            requantizer.i.p.shift.eq(channel_read.data.shift),
            requantizer.o.ready.eq(1),
        ]
        if array.requant == "multiplier":
            m.d.comb += requantizer.i.p.multiplier.eq(channel_read.data.multiplier)

        # -- results FIFO, with credits reserved when a final pass is issued --------------------
        m.submodules.fifo = fifo = SyncFIFOBuffered(
            width=len(self.results.payload.as_value()), depth=self.fifo_depth)
        released = self.results.valid & self.results.ready
        m.d.comb += [
            fifo.w_en.eq(requantizer.o.valid),
            fifo.w_data.eq(requantizer.o.payload),
            self.results.valid.eq(fifo.r_rdy),
            self.results.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.results.ready),
        ]
        m.d.sync += credits.eq(credits - reserve + released)

        with m.If(start):
            m.d.sync += [active.eq(1), m_tiles.eq(command.m_tiles),
                         n_tiles.eq(command.n_tiles), depth.eq(command.depth),
                         act_tiles.eq(0), weight_tiles.eq(0), channel_tiles.eq(0),
                         compute_m.eq(0), compute_n.eq(0), k.eq(0), pass_k.eq(0),
                         weight_base.eq(0), weight_addr.eq(0), act_k.eq(0), weight_k.eq(0)]
        with m.Elif(active & (compute_m == m_tiles)):
            m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active | (credits != self.fifo_depth))
        return m
