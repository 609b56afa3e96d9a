"""The generated top level: where data enters and leaves.

``operands`` (output-stationary) or ``weights`` + ``activations`` (weight-stationary) stream in,
the systolic grid multiplies and accumulates, the requantizer scales each accumulator row back
to N bits, and a FIFO hands the rows to the ``results`` stream::

    stream in → zero-point subtract → skew → PE grid → readout → accumulator FIFO
              → requantizer (lane groups, its own output FIFO) → stream out

The grid itself never stalls. Flow control is done with credits: a pass (or an activation) is
accepted only when the accumulator FIFO has room reserved for every row it will produce; the
requantizer takes rows from it as fast as its lanes allow and holds them back under
backpressure on ``results``, so no row is ever dropped or duplicated.
"""

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out, connect

from .config import ArrayConfig, ceil_div
from .pe import PassFlags, TileFlags, operand_shape
from .requantizer import (
    FIFO_LATENCY,
    Requantizer,
    ResultRow,
    parameter_members,
    requantizer_latency,
    row_span,
)
from .systolic import (
    AccumulatorRow,
    OutputStationaryArray,
    WeightBanks,
    WeightStationaryArray,
    delay,
    grid_latency,
    pass_interval,
    readout_latency,
)

__all__ = ["OPERAND_REGISTER_LATENCY", "CreditFIFO", "MacArray", "raw_act_shape",
           "raw_weight_shape", "stream_layouts"]

#: Cycles from a beat accepted on an input stream to the grid: its operands (zero points
#: subtracted) and flags are registered first, so no combinational path runs from a stream
#: handshake into a PE.
OPERAND_REGISTER_LATENCY = 1


def raw_act_shape(config):
    """Shape of an activation as it enters the array (before any zero point is taken off)."""
    return signed(config.act_bits) if config.act_signed else unsigned(config.act_bits)


def raw_weight_shape(config):
    """Shape of a weight as it enters the array: one bit for binary weights (1 is +1)."""
    if config.weight_kind == "binary":
        return unsigned(1)
    return signed(config.weight_bits) if config.weight_signed else unsigned(config.weight_bits)


def stream_layouts(config):
    """Payload layouts of :class:`MacArray`'s streams, by port name, for ``config``.

    Test benches and host drivers pack and unpack beats with these (``data.Const``).
    """
    act, weight = raw_act_shape(config), raw_weight_shape(config)
    layouts = {}
    if config.weight_stationary:
        layouts["weights"] = data.StructLayout({"w": data.ArrayLayout(weight, config.cols)})
        layouts["activations"] = data.StructLayout({
            "x": data.ArrayLayout(act, config.rows), "last": 1})
    else:
        layouts["operands"] = data.StructLayout({
            "x": data.ArrayLayout(act, config.rows),
            "w": data.ArrayLayout(weight, config.cols),
            "last": 1})
    layouts["results"] = ResultRow(operand_shape(*config.out_range), config.cols)
    return layouts


def accumulator_fifo_depth(config, core_latency, *, rows_per_reserve):
    """Rows of accumulator FIFO that let the grid run unstalled into a ready sink.

    A producer reserves ``rows_per_reserve`` places ``core_latency`` cycles before the first
    of its rows arrives; each row then leaves for the requantizer within
    ``FIFO_LATENCY + interval`` cycles, one every ``interval`` cycles
    (:attr:`hw.config.ArrayConfig.requant_row_interval`: lane groups × a serial lane's beat
    interval), so fewer rows are in flight, and fewer places needed, the slower it drains.
    """
    interval = config.requant_row_interval
    return rows_per_reserve + ceil_div(core_latency + FIFO_LATENCY + interval, interval) + 1


class CreditFIFO(wiring.Component):
    """A FIFO for a producer that cannot stall, paced by credits.

    Parameters
    ----------
    layout : shape-castable
        Payload of a beat.
    depth : int
        Beats the FIFO holds.
    max_reserve : int
        Most places a producer claims in one cycle.

    Members
    -------
    i : ``In(stream.Signature(layout, always_ready=True))``
        Beats in; every valid beat is written.
    o : ``Out(stream.Signature(layout))``
        Beats out, :data:`hw.requantizer.FIFO_LATENCY` cycles after they were written. The
        FIFO is read through a one-beat skid register: a beat the consumer does not take
        as it leaves the FIFO waits there, so the FIFO's read enable is a register and
        never waits for ``o.ready``.
    reserve : ``In(range(max_reserve + 1))``
        Places the producer claims this cycle for beats it is about to create.
    credits : ``Out(range(depth + 1))``
        Places neither filled nor claimed. A producer that creates beats only against
        credits can never overflow the FIFO, however long ``o`` is stalled.
    """

    def __init__(self, layout, *, depth, max_reserve):
        self._depth = depth
        super().__init__({
            "i": In(stream.Signature(layout, always_ready=True)),
            "o": Out(stream.Signature(layout)),
            "reserve": In(range(max_reserve + 1)),
            "credits": Out(range(depth + 1), init=depth),
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=len(Value.cast(self.o.payload)),
                                                    depth=self._depth)
        # The skid: empty, the FIFO's beat passes straight to `o` (and is read whether `o`
        # takes it or not); a beat not taken waits in `held` until it is. The skid's
        # register loads whenever it is empty (no enable from `o.ready`).
        full = Signal()
        held = Signal.like(fifo.r_data, reset_less=True)
        with m.If(~full):
            m.d.sync += [held.eq(fifo.r_data), full.eq(fifo.r_rdy & ~self.o.ready)]
        with m.Elif(self.o.ready):
            m.d.sync += full.eq(0)
        m.d.comb += [
            fifo.w_en.eq(self.i.valid),
            fifo.w_data.eq(self.i.payload),
            fifo.r_en.eq(~full),
            self.o.valid.eq(full | fifo.r_rdy),
            self.o.payload.eq(Mux(full, held, fifo.r_data)),
        ]
        m.d.sync += self.credits.eq(self.credits - self.reserve + (self.o.valid & self.o.ready))
        return m


class MacArray(wiring.Component):
    """A systolic MAC array with requantizer, generated from an :class:`ArrayConfig`.

    Output-stationary ports
    -----------------------
    operands : stream in, ``{x: rows × act, w: cols × weight, last}``
        Beat k of a pass carries x[i, k] for each array row i and w[j, k] for each column j;
        ``last`` ends the pass (at most ``kmax`` beats; more sets ``depth_error``).
    results : stream out, ``{y: cols × out, last}``
        Row i = requantize(Σ_k (x[i,k] − Zx)(w[j,k] − Zw) + bias[j]); R rows per pass, ``last``
        on row R−1.

    Weight-stationary ports
    -----------------------
    weights : stream in, ``{w: cols × weight}``
        ``rows`` beats per tile, k = 0 first: w[j, k] for each column j.
    activations : stream in, ``{x: rows × act, last}``
        One vector x[b, 0..rows−1] per beat; ``last`` ends the tile (the next activations use
        the next tile, which may load while this one computes).
    results : one output row per activation.

    Run-time parameters (hold stable while ``busy``): ``bias`` (int32 per column),
    ``multiplier`` (M0, 31-bit unsigned, per channel), ``shift`` (TFLite convention, in
    :attr:`ArrayConfig.shift_range`), ``output_zero_point``, ``act_min``, ``act_max``, and
    ``input_zero_point`` / ``weight_zero_point`` when subtracted in hardware.

    Timing: a beat accepted on ``operands`` or ``activations`` enters the grid
    :data:`OPERAND_REGISTER_LATENCY` cycles later (its operands, zero points subtracted, and
    its flags are registered first); :attr:`latency` and :attr:`pass_interval` give the
    timing at the ports.
    """

    def __init__(self, config):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self._config = config
        members = {name: (Out if name == "results" else In)(stream.Signature(layout))
                   for name, layout in stream_layouts(config).items()}
        members.update(parameter_members(config))
        if config.input_zero_point_in_hw:
            members["input_zero_point"] = In(raw_act_shape(config))
        if config.weight_zero_point_in_hw:
            members["weight_zero_point"] = In(raw_weight_shape(config))
        members["busy"] = Out(1)
        if not config.weight_stationary:
            members["depth_error"] = Out(1)
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @property
    def _core_latency(self):
        """Cycles from accepting the beat that completes a row to the row leaving the grid."""
        if self._config.weight_stationary:
            return OPERAND_REGISTER_LATENCY + grid_latency(self._config)
        return OPERAND_REGISTER_LATENCY + readout_latency(self._config)

    @property
    def fifo_depth(self):
        """Accumulator rows buffered between the grid and the requantizer."""
        cfg = self._config
        if cfg.fifo_depth is not None:
            return cfg.fifo_depth
        return accumulator_fifo_depth(cfg, self._core_latency,
                                      rows_per_reserve=1 if cfg.weight_stationary else cfg.rows)

    @property
    def pass_interval(self):
        """Output-stationary: minimum cycles between the ``last`` beats of two passes."""
        if self._config.weight_stationary:
            return 1
        return pass_interval(self._config)

    @property
    def row_interval(self):
        """Cycles between consecutive result rows at full rate: the requantizer's lane groups
        per row, each :attr:`ArrayConfig.requant_beat_interval` cycles
        (:attr:`ArrayConfig.requant_row_interval`)."""
        return self._config.requant_row_interval

    @property
    def latency(self):
        """Cycles from accepting the beat that completes a result row to that row on ``results``.

        Output-stationary: from the ``last`` beat of a pass to its row 0 (row i follows
        i · :attr:`row_interval` cycles later). Weight-stationary: from an activation to its
        result row. The sink is assumed ready and the requantizer idle.
        """
        return (self._core_latency + FIFO_LATENCY + row_span(self._config) +
                requantizer_latency(self._config))

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        grid = WeightStationaryArray if cfg.weight_stationary else OutputStationaryArray
        m.submodules.core = core = grid(cfg)
        m.submodules.requantizer = requantizer = Requantizer(cfg)
        for name in parameter_members(cfg):
            m.d.comb += getattr(requantizer, name).eq(getattr(self, name))

        # Grid → accumulator FIFO (credits guarantee room) → requantizer → results.
        m.submodules.accumulators = accumulators = CreditFIFO(
            AccumulatorRow(cfg.accumulator_bits, cfg.cols), depth=self.fifo_depth,
            max_reserve=cfg.rows)
        m.d.comb += [accumulators.i.valid.eq(core.rows_valid),
                     accumulators.i.payload.eq(core.rows)]
        connect(m, accumulators.o, requantizer.i)
        connect(m, requantizer.o, wiring.flipped(self.results))
        credits, reserve = accumulators.credits, accumulators.reserve
        drained = (credits == self.fifo_depth) & ~requantizer.busy

        def x_operand(x):
            if cfg.input_zero_point_in_hw:
                return x - self.input_zero_point
            return x

        def w_operand(w):
            if cfg.weight_zero_point_in_hw:
                return w - self.weight_zero_point
            return w

        if cfg.weight_stationary:
            self._elaborate_ws(m, core, credits, reserve, drained, x_operand, w_operand)
        else:
            self._elaborate_os(m, core, credits, reserve, drained, x_operand, w_operand)
        return m

    def _elaborate_os(self, m, core, credits, reserve, drained, x_operand, w_operand):
        cfg = self._config
        operands = self.operands
        in_pass = Signal()          # a pass has started and not yet ended
        depth = Signal(range(cfg.kmax + 1))
        since_last = Signal(range(self.pass_interval + 1), init=self.pass_interval)
        can_end = (credits >= cfg.rows) & (since_last == self.pass_interval)
        m.d.comb += operands.ready.eq(~operands.p.last | can_end)
        accept = operands.valid & operands.ready

        with m.If(since_last != self.pass_interval):
            m.d.sync += since_last.eq(since_last + 1)
        with m.If(accept):
            m.d.sync += in_pass.eq(~operands.p.last)
            with m.If(operands.p.last):
                m.d.sync += [since_last.eq(1), depth.eq(0)]
                m.d.comb += reserve.eq(cfg.rows)
            with m.Elif(depth == cfg.kmax - 1):
                # A (kmax+1)-th product could overflow the accumulator: flag it, never wrap
                # silently. The flag is sticky until reset.
                m.d.sync += self.depth_error.eq(1)
            with m.Else():
                m.d.sync += depth.eq(depth + 1)

        # The grid sees the beat OPERAND_REGISTER_LATENCY cycles later: the flags registers
        # reset (no valid beat out of reset), the operand registers need not.
        flags = Signal(PassFlags)
        x, w = Signal.like(core.x), Signal.like(core.w)
        m.d.comb += [
            flags.valid.eq(accept),
            flags.first.eq(~in_pass),
            flags.last.eq(operands.p.last),
        ]
        m.d.comb += [x[i].eq(x_operand(operands.p.x[i])) for i in range(cfg.rows)]
        m.d.comb += [w[j].eq(w_operand(operands.p.w[j])) for j in range(cfg.cols)]
        m.d.comb += [
            core.flags.eq(delay(m, flags, OPERAND_REGISTER_LATENCY, "flags")),
            core.x.eq(delay(m, x, OPERAND_REGISTER_LATENCY, "x", reset_less=True)),
            core.w.eq(delay(m, w, OPERAND_REGISTER_LATENCY, "w", reset_less=True)),
        ]
        m.d.comb += self.busy.eq(in_pass | ~drained)

    def _elaborate_ws(self, m, core, credits, reserve, drained, x_operand, w_operand):
        cfg = self._config
        weights, activations = self.weights, self.activations
        m.submodules.banks = banks = WeightBanks(cfg)
        m.d.comb += [
            weights.ready.eq(banks.loader.can_load),
            banks.loader.load.eq(weights.valid & weights.ready),
            core.load.eq(banks.grid_load),
            core.load_bank.eq(banks.grid_load_bank),
            core.w_load.eq(banks.grid_w_load),
        ]
        m.d.comb += [banks.loader.lanes[j].eq(w_operand(weights.p.w[j])) for j in range(cfg.cols)]
        m.d.comb += activations.ready.eq(banks.issue.can_compute & credits.any())
        accept = activations.valid & activations.ready
        # As output-stationary: the grid sees the activation OPERAND_REGISTER_LATENCY later.
        flags = Signal(TileFlags)
        x = Signal.like(core.x)
        m.d.comb += [
            flags.valid.eq(accept),
            flags.last.eq(activations.p.last),
            flags.bank.eq(banks.issue.bank),
        ]
        m.d.comb += [x[k].eq(x_operand(activations.p.x[k])) for k in range(cfg.rows)]
        m.d.comb += [
            core.flags.eq(delay(m, flags, OPERAND_REGISTER_LATENCY, "flags")),
            core.x.eq(delay(m, x, OPERAND_REGISTER_LATENCY, "x", reset_less=True)),
        ]
        m.d.comb += [reserve.eq(accept), banks.issue.tile_done.eq(accept & activations.p.last)]
        m.d.comb += self.busy.eq(~drained | banks.draining)
