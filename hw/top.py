"""The generated top level: where data enters and leaves.

``operands`` (output-stationary) or ``weights`` + ``activations`` (weight-stationary) stream in,
the systolic grid multiplies and accumulates, the requantizer scales each accumulator row back
to N bits, and a FIFO hands the rows to the ``results`` stream::

    stream in → zero-point subtract → skew → PE grid → readout → requantizer → FIFO → stream out

The grid itself never stalls. Flow control is done with credits: a pass (or an activation) is
accepted only when the FIFO has room reserved for every row it will produce, so backpressure
on ``results`` can never drop or duplicate a row.
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .config import ArrayConfig
from .pe import PassFlags, TileFlags, operand_shape
from .requantizer import Requantizer, ResultRow
from .systolic import OutputStationaryArray, WeightBanks, WeightStationaryArray

__all__ = ["MacArray", "result_fifo", "stream_layouts"]

#: Cycles from a row entering SyncFIFOBuffered to it being visible at its read port.
_FIFO_LATENCY = 2


def _raw_act_shape(config):
    return signed(config.act_bits) if config.act_signed else unsigned(config.act_bits)


def _raw_weight_shape(config):
    if config.weight_kind == "binary":
        return unsigned(1)
    return signed(config.weight_bits) if config.weight_signed else unsigned(config.weight_bits)


def stream_layouts(config):
    """Payload layouts of :class:`MacArray`'s streams, by port name, for ``config``.

    Test benches and host drivers pack and unpack beats with these (``data.Const``).
    """
    act, weight = _raw_act_shape(config), _raw_weight_shape(config)
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


def result_fifo(m, rows, results, *, depth, max_reserve):
    """``rows`` (a stream that is always taken) → a FIFO of ``depth`` rows → ``results``.

    Returns ``(credits, reserve)``: free places in the FIFO, and the number of places a
    producer claims this cycle (drive it combinationally) for rows it is about to create. A
    producer that creates rows only against credits can never overflow the FIFO, however long
    ``results`` is stalled, without stalling anything itself.
    """
    m.submodules.fifo = fifo = SyncFIFOBuffered(width=len(results.payload.as_value()),
                                                depth=depth)
    credits = Signal(range(depth + 1), init=depth)
    reserve = Signal(range(max_reserve + 1))
    m.d.comb += [
        rows.ready.eq(1),
        fifo.w_en.eq(rows.valid),
        fifo.w_data.eq(rows.payload),
        results.valid.eq(fifo.r_rdy),
        results.payload.eq(fifo.r_data),
        fifo.r_en.eq(results.ready),
    ]
    m.d.sync += credits.eq(credits - reserve + (results.valid & results.ready))
    return credits, reserve


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

    :attr:`latency` and :attr:`pass_interval` give the timing.
    """

    def __init__(self, config):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self._config = config
        self._requantizer = Requantizer(config)
        if config.weight_stationary:
            self._core = WeightStationaryArray(config)
        else:
            self._core = OutputStationaryArray(config)
        # Built here so that ports and timing are known before elaboration; whether they are
        # used is up to this component, which warns itself when it is never elaborated.
        self._requantizer._MustUse__silence = self._core._MustUse__silence = True
        members = {name: (Out if name == "results" else In)(stream.Signature(layout))
                   for name, layout in stream_layouts(config).items()}
        for name, member in self._requantizer.signature.members.items():
            if name not in ("i", "o"):
                members[name] = member
        if config.input_zero_point_in_hw:
            members["input_zero_point"] = In(_raw_act_shape(config))
        if config.weight_zero_point_in_hw:
            members["weight_zero_point"] = In(_raw_weight_shape(config))
        members["busy"] = Out(1)
        if not config.weight_stationary:
            members["depth_error"] = Out(1)
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @property
    def fifo_depth(self):
        cfg = self._config
        if cfg.fifo_depth is not None:
            return cfg.fifo_depth
        # Enough credits to cover every row in flight at full rate.
        if cfg.weight_stationary:
            in_flight = self._core.latency
        else:
            in_flight = self._core.readout_latency + cfg.rows + self.pass_interval
        return in_flight + self._requantizer.latency + _FIFO_LATENCY + 2

    @property
    def pass_interval(self):
        """Output-stationary: minimum cycles between the ``last`` beats of two passes."""
        if self._config.weight_stationary:
            return 1
        return self._core.pass_interval

    @property
    def latency(self):
        """Cycles from accepting the beat that completes a result row to that row on ``results``.

        Output-stationary: from the ``last`` beat of a pass to its row 0 (row i follows i
        cycles later). Weight-stationary: from an activation to its result row. The sink is
        assumed ready; throughput is one row per cycle.
        """
        core = self._core
        if self._config.weight_stationary:
            core_latency = 1 + core.latency  # activations are registered before the grid
        else:
            core_latency = core.readout_latency
        return core_latency + self._requantizer.latency + _FIFO_LATENCY

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.requantizer = requantizer = self._requantizer

        # Run-time parameters go straight to the requantizer.
        for name in requantizer.signature.members:
            if name not in ("i", "o"):
                m.d.comb += getattr(requantizer, name).eq(getattr(self, name))

        # Grid → requantizer → FIFO → results. Credits guarantee the FIFO has room.
        m.d.comb += [
            requantizer.i.valid.eq(core.rows_valid),
            requantizer.i.payload.eq(core.rows),
        ]
        credits, reserve = result_fifo(m, requantizer.o, self.results, depth=self.fifo_depth,
                                       max_reserve=cfg.rows)

        def x_operand(x):
            if cfg.input_zero_point_in_hw:
                return x - self.input_zero_point
            return x

        def w_operand(w):
            if cfg.weight_zero_point_in_hw:
                return w - self.weight_zero_point
            return w

        if cfg.weight_stationary:
            self._elaborate_ws(m, core, credits, reserve, x_operand, w_operand)
        else:
            self._elaborate_os(m, core, credits, reserve, x_operand, w_operand)
        return m

    def _elaborate_os(self, m, core, credits, reserve, x_operand, w_operand):
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

        flags = Signal(PassFlags)
        m.d.comb += [
            flags.valid.eq(accept),
            flags.first.eq(~in_pass),
            flags.last.eq(operands.p.last),
            core.flags.eq(flags),
        ]
        m.d.comb += [core.x[i].eq(x_operand(operands.p.x[i])) for i in range(cfg.rows)]
        m.d.comb += [core.w[j].eq(w_operand(operands.p.w[j])) for j in range(cfg.cols)]
        m.d.comb += self.busy.eq(in_pass | (credits != self.fifo_depth))

    def _elaborate_ws(self, m, core, credits, reserve, x_operand, w_operand):
        cfg = self._config
        weights, activations = self.weights, self.activations
        banks = WeightBanks(m, core, cfg.rows)
        m.d.comb += weights.ready.eq(banks.can_load)
        banks.load(weights.valid & weights.ready,
                   [w_operand(weights.p.w[j]) for j in range(cfg.cols)])
        m.d.comb += activations.ready.eq(banks.can_compute & credits.any())
        accept = activations.valid & activations.ready
        flags = Signal(TileFlags)
        m.d.sync += [
            flags.valid.eq(accept),
            flags.last.eq(activations.p.last),
            flags.bank.eq(banks.compute_bank),
        ]
        m.d.sync += [core.x[k].eq(x_operand(activations.p.x[k])) for k in range(cfg.rows)]
        m.d.comb += [core.flags.eq(flags), reserve.eq(accept)]
        banks.computed(accept & activations.p.last)
        m.d.comb += self.busy.eq((credits != self.fifo_depth) | banks.draining)
