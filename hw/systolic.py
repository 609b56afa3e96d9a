"""Systolic grids of PEs with input skew and result readout, one class per dataflow.

These cores are free-running pipelines without backpressure: a beat is presented with
``flags.valid`` and travels through the grid on a fixed schedule. :class:`hw.top.MacArray` wraps
them with stream flow control, the requantizer and the output buffer.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .dsp_pe import pe_chooser
from .pe import (
    OutputStationaryPE,
    PassFlags,
    TileFlags,
    WeightStationaryPE,
    delay,
    operand_shape,
)

__all__ = ["OutputStationaryArray", "WeightStationaryArray", "WeightBanks", "AccumulatorRow",
           "BANK_ISSUE_SIGNATURE", "delay", "weight_load_signature", "weight_lanes"]


def AccumulatorRow(acc_bits, cols):
    """Layout of one row of accumulators leaving an array."""
    return data.StructLayout({"acc": data.ArrayLayout(signed(acc_bits), cols), "last": 1})


def pe_latency(config):
    """Cycles a PE adds: its product registers (``register_product``, ``product_pipeline``)
    and its adder."""
    return 1 + int(config.register_product) + config.product_pipeline


def readout_latency(config):
    """Output-stationary: :attr:`OutputStationaryArray.readout_latency` of ``config``."""
    # skew to the rightmost PE + PE result latency + readout register
    return (config.cols - 1) + pe_latency(config) + 1


def pass_interval(config):
    """Output-stationary: :attr:`OutputStationaryArray.pass_interval` of ``config``."""
    # ≥ cols: the next sums must not overwrite result registers still to be read;
    # ≥ rows: the readout port carries one row per cycle.
    return max(config.rows, config.cols)


def grid_latency(config):
    """Weight-stationary: :attr:`WeightStationaryArray.latency` of ``config``."""
    # down the column at pe_latency per row, across to column C−1, output register
    return config.rows * pe_latency(config) + (config.cols - 1) + 1


def drain_cycles(config):
    """Weight-stationary: :attr:`WeightStationaryArray.drain_cycles` of ``config``."""
    return pe_latency(config) * config.rows + config.cols



class OutputStationaryArray(wiring.Component):
    """R×C output-stationary grid: PE(i, j) accumulates Σ_k x[i, k]·w[j, k].

    A pass is a run of beats from ``first`` to ``last``; beat k carries the column x[:, k] of
    activations and the column w[:, k] of weights. Row i is skewed by i cycles and column j by
    j cycles so that x[i, k] and w[j, k] meet in PE(i, j). Row i's sums are complete when its
    rightmost PE finishes, which is one cycle after row i−1's, so the rows leave on ``rows`` in
    order, one per cycle (``last`` marks row R−1), while the next pass already computes.

    Timing (cycles after the ``last`` beat is presented):

    * row i of the result is valid at :attr:`readout_latency` + i;
    * the next ``last`` beat may be presented :attr:`pass_interval` cycles after this one at
      the earliest (its sums overwrite the result registers being read).

    PEs: elaborated for an iCE40 UltraPlus or ECP5 platform, the first ``dsp_pes`` PEs
    (row-major; default: as many as the device has multiplier blocks) are that family's
    :mod:`hw.dsp_pe` variant, the rest (and every PE without a platform) portable
    :class:`hw.pe.OutputStationaryPE`; ports and timing are the same either way.
    """

    def __init__(self, config, *, dsp_pes=None):
        self._config = config
        self._dsp_pes = _check_dsp_pes(config.dsp_pes if dsp_pes is None else dsp_pes, config)
        self._act_shape = _operand_shape(config.act_range)
        self._weight_shape = _weight_shape(config)
        super().__init__({
            "x": In(data.ArrayLayout(self._act_shape, config.rows)),
            "w": In(data.ArrayLayout(self._weight_shape, config.cols)),
            "flags": In(PassFlags),
            "rows": Out(AccumulatorRow(config.accumulator_bits, config.cols)),
            "rows_valid": Out(1),
        })

    @property
    def pe_latency(self):
        return pe_latency(self._config)

    @property
    def readout_latency(self):
        return readout_latency(self._config)

    @property
    def pass_interval(self):
        return pass_interval(self._config)

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        pe_class = pe_chooser(platform, cfg, self._dsp_pes, OutputStationaryPE)
        pes = [[pe_class(i, j)(act_shape=self._act_shape, weight_shape=self._weight_shape,
                               acc_bits=cfg.accumulator_bits, weight_kind=cfg.weight_kind,
                               register_product=cfg.register_product,
                               product_pipeline=cfg.product_pipeline)
                for j in range(cfg.cols)] for i in range(cfg.rows)]
        for i in range(cfg.rows):
            for j in range(cfg.cols):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]

        flags = self.flags
        for i in range(cfg.rows):
            # Flags ripple down the left edge, so row i sees them i cycles late, like its x.
            m.d.comb += [
                pes[i][0].x_in.eq(delay(m, self.x[i], i, f"x_skew{i}")),
                pes[i][0].flags_in.eq(flags),
            ]
            if i + 1 < cfg.rows:
                next_flags = Signal(PassFlags, name=f"flags_skew{i + 1}")
                m.d.sync += next_flags.eq(flags)
                flags = next_flags
        for j in range(cfg.cols):
            m.d.comb += pes[0][j].w_in.eq(delay(m, self.w[j], j, f"w_skew{j}"))
        for i in range(cfg.rows):
            for j in range(cfg.cols):
                if j + 1 < cfg.cols:
                    m.d.comb += [
                        pes[i][j + 1].x_in.eq(pes[i][j].x_out),
                        pes[i][j + 1].flags_in.eq(pes[i][j].flags_out),
                    ]
                if i + 1 < cfg.rows:
                    m.d.comb += pes[i + 1][j].w_in.eq(pes[i][j].w_out)

        # Readout: row i is complete when its rightmost PE finishes, one cycle after row i−1's,
        # so rows leave in order, one per cycle, with no counter and no deskew.
        finished = [pes[i][-1].result_valid for i in range(cfg.rows)]
        m.d.sync += [self.rows_valid.eq(Cat(finished).any()), self.rows.last.eq(finished[-1])]
        for j in range(cfg.cols):
            m.d.sync += self.rows.acc[j].eq(
                _one_hot_select(finished, [pes[i][j].result for i in range(cfg.rows)]))
        return m


class WeightStationaryArray(wiring.Component):
    """R×C weight-stationary grid: column j computes Σ_k x[b, k]·W[j, k] for k < R.

    Weights are loaded one k per beat (``w_load`` with ``load``), k = 0 first; after R beats
    the bank ``load_bank`` holds the tile. Array row r holds k = R−1−r, so the first beat loaded
    settles at the bottom. Activations x[b, :] enter one vector per beat with
    :class:`TileFlags`; partial sums grow down each column with the exact width of the products
    above (:meth:`ArrayConfig.partial_sum_bits`), and the bottom row's sums are deskewed into
    one row per beat on ``rows``.

    Timing: the result row of an activation is valid :attr:`latency` cycles after it is
    presented; one row per cycle when activations arrive every cycle.

    PEs are chosen as in :class:`OutputStationaryArray` (``dsp_pes``).
    """

    def __init__(self, config, *, dsp_pes=None):
        self._config = config
        self._dsp_pes = _check_dsp_pes(config.dsp_pes if dsp_pes is None else dsp_pes, config)
        self._act_shape = _operand_shape(config.act_range)
        self._weight_shape = _weight_shape(config)
        super().__init__({
            "x": In(data.ArrayLayout(self._act_shape, config.rows)),
            "flags": In(TileFlags),
            "w_load": In(data.ArrayLayout(self._weight_shape, config.cols)),
            "load": In(1),
            "load_bank": In(1),
            "rows": Out(AccumulatorRow(config.accumulator_bits, config.cols)),
            "rows_valid": Out(1),
        })

    @property
    def pe_latency(self):
        return pe_latency(self._config)

    @property
    def latency(self):
        return grid_latency(self._config)

    @property
    def drain_cycles(self):
        """Cycles after an activation is presented until no PE reads its weight bank."""
        return drain_cycles(self._config)

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        lat = self.pe_latency
        pe_class = pe_chooser(platform, cfg, self._dsp_pes, WeightStationaryPE)
        pes = [[pe_class(r, j)(act_shape=self._act_shape, weight_shape=self._weight_shape,
                               psum_in_bits=cfg.partial_sum_bits(r) if r else 0,
                               psum_out_bits=cfg.partial_sum_bits(r + 1),
                               weight_kind=cfg.weight_kind,
                               register_product=cfg.register_product,
                               product_pipeline=cfg.product_pipeline)
                for j in range(cfg.cols)] for r in range(cfg.rows)]
        for r in range(cfg.rows):
            for j in range(cfg.cols):
                m.submodules[f"pe_{r}_{j}"] = pes[r][j]
                m.d.comb += [pes[r][j].load.eq(self.load), pes[r][j].load_bank.eq(self.load_bank)]

        flags = self.flags
        for r in range(cfg.rows):
            k = cfg.rows - 1 - r
            # A partial sum takes `lat` cycles per row, so row r starts r·lat cycles late.
            m.d.comb += [
                pes[r][0].x_in.eq(delay(m, self.x[k], r * lat, f"x_skew{r}")),
                pes[r][0].flags_in.eq(flags),
            ]
            if r + 1 < cfg.rows:
                flags = delay(m, flags, lat, f"flags_skew{r + 1}")
        for r in range(cfg.rows):
            for j in range(cfg.cols):
                if j + 1 < cfg.cols:
                    m.d.comb += [
                        pes[r][j + 1].x_in.eq(pes[r][j].x_out),
                        pes[r][j + 1].flags_in.eq(pes[r][j].flags_out),
                    ]
                if r + 1 < cfg.rows:
                    m.d.comb += [
                        pes[r + 1][j].psum_in.eq(pes[r][j].psum_out),
                        pes[r + 1][j].w_load_in.eq(pes[r][j].w_load_out),
                    ]
        for j in range(cfg.cols):
            m.d.comb += pes[0][j].w_load_in.eq(self.w_load[j])

        # Column j's sum leaves the bottom j cycles after column 0's: delay the left columns.
        bottom = pes[-1]
        out_flags = delay(m, bottom[-1].flags_out, lat - 1, "out_flags")
        for j in range(cfg.cols):
            m.d.sync += self.rows.acc[j].eq(
                delay(m, bottom[j].psum_out, cfg.cols - 1 - j, f"deskew{j}"))
        m.d.sync += [self.rows_valid.eq(out_flags.valid), self.rows.last.eq(out_flags.last)]
        return m


def weight_lanes(config):
    """Layout of one weight beat of a weight-stationary grid: a weight per column."""
    return data.ArrayLayout(_weight_shape(config), config.cols)


def weight_load_signature(config):
    """A weight source's view of :class:`WeightBanks` (see its ``loader`` member)."""
    return wiring.Signature({"load": Out(1), "lanes": Out(weight_lanes(config)),
                             "can_load": In(1), "tile_loaded": In(1)})


#: An activation issuer's view of :class:`WeightBanks` (see its ``issue`` member).
BANK_ISSUE_SIGNATURE = wiring.Signature({"tile_done": Out(1), "can_compute": In(1),
                                         "bank": In(1)})


class WeightBanks(wiring.Component):
    """Which of a :class:`WeightStationaryArray`'s two weight banks loads and which computes.

    A bank is full after ``rows`` load beats, in use by the activations of its tile, and
    draining after the tile's last activation until no PE reads it
    (``feed_latency`` + :attr:`WeightStationaryArray.drain_cycles` cycles after it issues);
    then it may load again.

    Parameters
    ----------
    config : :class:`hw.config.ArrayConfig`
        A weight-stationary configuration.
    feed_latency : int
        Cycles from an activation issuing (``issue.tile_done``) to it being presented to the
        grid: 0 when the issuer drives the grid directly.

    Members
    -------
    loader : ``In(weight_load_signature(config))``
        From the weight source: ``load`` (a beat of ``lanes``, one weight per column, taken
        this cycle; only while ``can_load``), back to it: ``can_load`` (the loading bank is
        empty and no activation in flight reads it) and ``tile_loaded`` (this beat completes
        a tile).
    issue : ``In(BANK_ISSUE_SIGNATURE)``
        From the activation issuer: ``tile_done`` (the last activation of the computing bank's
        tile issues this cycle); back to it: ``can_compute`` (the computing bank holds a whole
        tile) and ``bank`` (the bank the next activation multiplies).
    grid_load, grid_load_bank, grid_w_load : ``Out(1)``, ``Out(1)``, ``Out(cols × weight)``
        Drive the grid's ``load``, ``load_bank`` and ``w_load``: the beat, one cycle later.
    draining : ``Out(1)``
        A bank is still read by activations in flight.
    """

    def __init__(self, config, *, feed_latency=0):
        if not isinstance(feed_latency, int):
            raise TypeError(f"feed_latency must be an integer, not {feed_latency!r}")
        if feed_latency < 0:
            raise ValueError(f"feed_latency must be in [0, ∞), not {feed_latency!r}")
        self._config = config
        self._drain_cycles = feed_latency + drain_cycles(config)
        super().__init__({
            "loader": In(weight_load_signature(config)),
            "issue": In(BANK_ISSUE_SIGNATURE),
            "grid_load": Out(1),
            "grid_load_bank": Out(1),
            "grid_w_load": Out(weight_lanes(config)),
            "draining": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rows = self._config.rows
        loader, issue = self.loader, self.issue
        full = [Signal(name=f"full{b}") for b in range(2)]
        drain = [Signal(range(self._drain_cycles + 1), name=f"drain{b}") for b in range(2)]
        load_bank = Signal()
        load_count = Signal(range(rows))
        drained = [~d.any() for d in drain]
        m.d.comb += [
            loader.can_load.eq(~Mux(load_bank, full[1], full[0]) &
                               Mux(load_bank, drained[1], drained[0])),
            issue.can_compute.eq(Mux(issue.bank, full[1], full[0]) &
                                 Mux(issue.bank, drained[1], drained[0])),
            self.draining.eq(drain[0].any() | drain[1].any()),
            loader.tile_loaded.eq(loader.load & (load_count == rows - 1)),
        ]
        with m.If(loader.load):
            m.d.sync += load_count.eq(load_count + 1)
            with m.If(loader.tile_loaded):
                m.d.sync += [load_count.eq(0), load_bank.eq(~load_bank)]
                m.d.sync += [full[0].eq(full[0] | ~load_bank), full[1].eq(full[1] | load_bank)]
        # The grid shifts the new weights one row down per load beat, in the loading bank.
        m.d.sync += [self.grid_load.eq(loader.load), self.grid_load_bank.eq(load_bank),
                     self.grid_w_load.eq(loader.lanes)]

        with m.If(issue.tile_done):
            m.d.sync += issue.bank.eq(~issue.bank)
        for bank in range(2):
            with m.If(issue.tile_done & (issue.bank == bank)):
                m.d.sync += drain[bank].eq(self._drain_cycles)
            with m.Elif(drain[bank] != 0):
                m.d.sync += drain[bank].eq(drain[bank] - 1)
                with m.If(drain[bank] == 1):
                    m.d.sync += full[bank].eq(0)
        return m


def _check_dsp_pes(dsp_pes, config):
    if dsp_pes is None:
        return None
    if isinstance(dsp_pes, bool) or not isinstance(dsp_pes, int):
        raise TypeError(f"dsp_pes must be None or an integer, not {dsp_pes!r}")
    if not 0 <= dsp_pes <= config.rows * config.cols:
        raise ValueError(f"dsp_pes must be in [0, {config.rows * config.cols}], not {dsp_pes}")
    return dsp_pes


def _one_hot_select(select, values):
    """values[i] where select[i] is the one set bit (zero when none is)."""
    result = 0
    for bit, value in zip(select, values, strict=True):
        result = result | Mux(bit, value, 0)
    return result


def _operand_shape(value_range):
    return operand_shape(*value_range)


def _weight_shape(config):
    if config.weight_kind == "binary":
        return unsigned(1)  # 1 means +1, 0 means −1
    return _operand_shape(config.weight_range)
