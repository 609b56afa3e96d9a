"""Where a command's beats are issued to the grid: one sequencer per dataflow.

A sequencer reads the operand buffers in the order the dataflow needs, issues a beat only when
its operands are loaded and, for the beats that complete result rows, when the accumulator FIFO
has credits for them; it feeds the grid through a register, :data:`GRID_FEED_LATENCY` cycles
after issuing.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..pe import PassFlags, TileFlags
from ..requantizer import FIFO_LATENCY
from ..systolic import BANK_ISSUE_SIGNATURE, delay, pass_interval, readout_latency
from ..top import raw_act_shape, raw_weight_shape
from .command import MAX_M_TILES, shape_layout

__all__ = ["ACT_BANKS", "GRID_FEED_LATENCY", "ISSUE_CHECK_LATENCY",
           "OutputStationarySequencer", "WeightStationarySequencer", "engine_pass_interval",
           "pass_tag_layout", "passes_in_flight"]

#: Cycles from issuing a beat to it entering the grid: the buffer read, then two registers, so
#: that no block RAM output drives a DSP input directly and the first register, next to the
#: block RAM, takes its slow clock-to-output alone (5.8 ns on ECP5's DP16KD).
GRID_FEED_LATENCY = 3

#: Output-stationary: activation banks, M tile ``t`` in bank ``t mod ACT_BANKS``: one is
#: computed while the next loads.
ACT_BANKS = 2

#: Output-stationary: cycles from a tile's operands and channels being loaded (``act_pending``,
#: ``weight_loaded``, ``channels_loaded``) or the accumulator FIFO's ``credits`` reaching a row
#: per array row to a beat issuing on them: the compares are registered, so that ``issue``
#: (which enables every counter of the sequencer) is a function of registers only.
ISSUE_CHECK_LATENCY = 1


def engine_pass_interval(config):
    """Output-stationary: minimum cycles between the last beats of two passes (the array's
    readout, and the partial-sum FIFO's write-to-read latency). Weight-stationary: 1."""
    if config.weight_stationary:
        return 1
    return max(pass_interval(config.array), FIFO_LATENCY)


def passes_in_flight(config):
    """Output-stationary: the most passes between being issued and their last row leaving
    the grid."""
    array = config.array
    return ((GRID_FEED_LATENCY + readout_latency(array) + array.rows) //
            engine_pass_interval(config) + 2)


def pass_tag_layout(config):
    """What the readout needs to know about an output-stationary pass, queued as it issues:
    ``first`` (nothing to add from the partial sums), ``final`` (requantize instead of
    storing the sum) and ``n``, its N tile."""
    return data.StructLayout({"first": 1, "final": 1, "n": range(config.max_n_tiles + 1)})


def operand_lanes(config):
    """Layouts of a beat's activations (``x``, rows) and weights (``w``, cols) as they enter."""
    array = config.array
    return (data.ArrayLayout(raw_act_shape(array), array.rows),
            data.ArrayLayout(raw_weight_shape(array), array.cols))


def buffer_read_signature(layout, depth):
    """The read port of an operand buffer of ``depth`` words of ``layout``, as its reader
    sees it."""
    return In(memory.ReadPort.Signature(addr_width=ceil_log2(depth), shape=layout))


def _feed_data(m, port, data):
    """Drive ``port`` from buffer read ``data`` through the registers of
    :data:`GRID_FEED_LATENCY` after the read, which no reset clears (``reset_less``: a
    per-command ``ResetInserter`` would put a LUT between the block RAM's slow output and
    the register)."""
    m.d.comb += port.eq(delay(m, data, GRID_FEED_LATENCY - 1, "feed", reset_less=True))


def _feed_flags(m, port, flags):
    """Drive ``port`` from ``flags`` of a beat issuing now, :data:`GRID_FEED_LATENCY` cycles
    later (aligned with :func:`_feed_data`)."""
    m.d.comb += port.eq(delay(m, flags, GRID_FEED_LATENCY, "flags"))


class OutputStationarySequencer(wiring.Component):
    """Issues an output-stationary command: for each M tile, for each N tile, the tile's K
    beats in passes of at most ``kmax``.

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`
    act_layout, weight_layout : data.StructLayout
        The activation (``{x}``) and weight (``{w}``) buffer words.
    credits_depth : int
        Depth of the accumulator FIFO whose ``credits`` the sequencer reads.

    Members
    -------
    shape : ``In({m_tiles, n_tiles, depth})``
        The command's shape, stable while ``active``.
    active : ``In(1)``
        A command runs; its first beat issues one cycle later at the earliest (the shape's
        derived registers). Clear the sequencer between commands with ``ResetInserter``.
    act_pending : ``In(range(ACT_BANKS + 1))``
        M tiles of activations loaded and not yet released (:data:`ACT_BANKS` banks): the tile being
        computed is loaded when this is not zero. It falls only by ``act_release``, a cycle
        later.
    weight_loaded, channels_loaded : ``In(range(max_n_tiles + 1))``
        N tiles of weights and of channel parameters loaded; they never fall while
        ``active``. A beat issues on them (and on ``act_pending`` and ``credits``)
        :data:`ISSUE_CHECK_LATENCY` cycles after they allow it.
    act_release : ``Out(1)``
        The M tile being computed is done with: its activation bank may load again from the
        next cycle.
    act_read, weight_read : ``In(memory.ReadPort.Signature(…))``
        The buffers' read ports: tile ``t`` of activations in bank ``t mod ACT_BANKS`` (``max_k``
        words each), N tile ``n`` of weights at ``n · max_k``.
    credits : ``In(range(credits_depth + 1))``
        The accumulator FIFO's free places; a tile's final pass issues its last beat only
        with ``rows`` of them, which it claims on ``reserve``. They fall only by ``reserve``,
        a cycle later.
    reserve : ``Out(range(rows + 1))``
    flags, x, w : ``Out(PassFlags)``, ``Out(rows × act)``, ``Out(cols × weight)``
        The grid's inputs, :data:`GRID_FEED_LATENCY` cycles after a beat issues.
    tags : ``Out(stream.Signature(pass_tag_layout(config), always_ready=True))``
        One per pass, as its last beat issues.
    done : ``Out(1)``
        Every beat of the command has issued.

    Passes follow each other with no bubble; the last beats of two passes are at least
    :func:`engine_pass_interval` cycles apart.
    """

    def __init__(self, config, act_layout, weight_layout, *, credits_depth):
        self._config = config
        act_lanes, weight_lanes = operand_lanes(config)
        super().__init__({
            "shape": In(shape_layout(config)),
            "active": In(1),
            "act_pending": In(range(ACT_BANKS + 1)),
            "weight_loaded": In(range(config.max_n_tiles + 1)),
            "channels_loaded": In(range(config.max_n_tiles + 1)),
            "act_release": Out(1),
            "act_read": buffer_read_signature(act_layout, 2 * config.max_k),
            "weight_read": buffer_read_signature(weight_layout,
                                                 config.max_n_tiles * config.max_k),
            "credits": In(range(credits_depth + 1)),
            "reserve": Out(range(config.array.rows + 1)),
            "flags": Out(PassFlags),
            "x": Out(act_lanes),
            "w": Out(weight_lanes),
            "tags": Out(stream.Signature(pass_tag_layout(config), always_ready=True)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        array = cfg.array
        rows, kmax, max_k = array.rows, array.kmax, cfg.max_k
        interval = engine_pass_interval(cfg)
        m = Module()
        m_tiles, n_tiles, depth = self.shape.m_tiles, self.shape.n_tiles, self.shape.depth
        compute_m = Signal(range(MAX_M_TILES + 1))       # the M tile being computed
        compute_n = Signal(range(cfg.max_n_tiles + 1))
        k = Signal(range(max_k))                         # within the tile
        pass_k = Signal(range(kmax))                     # within the pass
        weight_base = Signal(range(cfg.max_n_tiles * max_k))   # compute_n · max_k
        # weight_base + k, counted beside k: the read address waits for no adder.
        weight_addr = Signal.like(weight_base, name="weight_addr")
        since_last = Signal(range(interval + 1), init=interval)

        # Kept in registers, so that no subtraction sits in front of `issue`: the tile's last
        # k, whether it is one pass, and the beats from this pass's first to the tile's end.
        last_k = Signal.like(depth, name="last_k")
        last_n = Signal.like(n_tiles, name="last_n")
        depth_fits = Signal()
        remaining = Signal.like(depth, name="remaining")
        remaining_fits = Signal()       # remaining <= kmax, registered with remaining
        m.d.sync += [last_k.eq(depth - 1), last_n.eq(n_tiles - 1),
                     depth_fits.eq(depth <= kmax)]
        primed = Signal()       # active for a cycle: the registers above hold this command's
        m.d.sync += primed.eq(self.active)
        # Whether compute_m is the command's last M tile, kept in a register (set as the
        # command starts, updated as compute_m advances), so that neither `issue` nor `done`
        # waits for a compare of the wide M counters.
        last_m = Signal()
        # M tiles after compute_m, counted down: `last_m` is then a compare with a constant,
        # not `compute_m + 2 == m_tiles` (a carry chain and a wide compare).
        m_after = Signal.like(compute_m, name="m_after")
        with m.If(self.active & ~primed):
            m.d.sync += [last_m.eq(m_tiles == 1), m_after.eq(m_tiles - 1)]
        # Where k and pass_k stand, kept in registers beside them (each updated from the
        # values k and pass_k take next), so that `issue` waits for no counter compare:
        # k == last_k, pass_k == kmax − 1, k == pass_k, and since_last == interval.
        tile_end = Signal()
        # One-beat passes (kmax 1) end every beat: a constant, not a register (held at 1
        # only by its reset value, which a Verilog flow is free to drop).
        pass_full = Const(1) if kmax == 1 else Signal()
        first_pass = Signal(init=1)
        spaced = Const(1) if interval == 1 else Signal(init=1)
        with m.If(self.active & ~primed):
            m.d.sync += tile_end.eq(depth == 1)
        pass_end = pass_full | tile_end
        final_pass = Mux(first_pass, depth_fits, remaining_fits)
        # Whether compute_n is the command's last N tile, and the N tile after it, kept in
        # registers beside compute_n: no compare waits for `issue`.
        last_n_tile = Signal()
        next_n = Signal.like(compute_n, name="next_n")
        with m.If(self.active & ~primed):
            m.d.sync += [last_n_tile.eq(n_tiles == 1), next_n.eq(1)]
        # What lets a beat issue, compared a cycle ahead (ISSUE_CHECK_LATENCY) for the tile
        # computed next cycle and against credits as `reserve` leaves them: every input only
        # grows but by this sequencer's own release and reserve, so the registered answers
        # are at worst a cycle late, never early.
        loaded, credit = Signal(), Signal()
        issue_tile_end, reserving, release = Signal(), Signal(), Signal()

        def tile_loaded(pending, n):
            """N tile ``n``'s weights and channels are in, and ``pending`` M tiles of
            activations (2 as the M tile turns: the one released still counts a cycle)."""
            return ((self.act_pending >= pending) & (self.weight_loaded > n) &
                    (self.channels_loaded > n))

        m.d.sync += [
            loaded.eq(Mux(issue_tile_end,
                          Mux(last_n_tile, tile_loaded(2, 0), tile_loaded(1, next_n)),
                          tile_loaded(1, compute_n))),
            credit.eq(Mux(reserving, self.credits >= 2 * rows, self.credits >= rows)),
        ]
        may_end = spaced & (~final_pass | credit)
        # `done` is a register (set as the last M tile is released).
        issue = primed & ~self.done & loaded & (~pass_end | may_end)
        m.d.comb += [issue_tile_end.eq(issue & tile_end),
                     reserving.eq(issue & pass_end & final_pass),
                     release.eq(issue_tile_end & last_n_tile)]

        m.d.comb += [
            self.reserve.eq(Mux(reserving, rows, 0)),
            self.act_release.eq(release),
            self.tags.valid.eq(issue & pass_end),
            self.tags.p.first.eq(first_pass),
            self.tags.p.final.eq(final_pass),
            self.tags.p.n.eq(compute_n),
            self.act_read.addr.eq(compute_m[:ceil_log2(ACT_BANKS)] * max_k + k),
            self.weight_read.addr.eq(weight_addr),
        ]
        flags = Signal(PassFlags)
        m.d.comb += [flags.valid.eq(issue), flags.first.eq(~pass_k.any()),
                     flags.last.eq(pass_end)]
        _feed_flags(m, self.flags, flags)
        _feed_data(m, self.x, self.act_read.data.x)
        _feed_data(m, self.w, self.weight_read.data.w)

        next_remaining = Signal.like(remaining)
        m.d.comb += next_remaining.eq(Mux(first_pass, depth, remaining) - kmax)
        with m.If(since_last != interval):
            m.d.sync += since_last.eq(since_last + 1)
            if interval > 1:
                m.d.sync += spaced.eq(since_last + 1 == interval)
        with m.If(issue):
            m.d.sync += [k.eq(k + 1), pass_k.eq(pass_k + 1), tile_end.eq(k + 1 == last_k),
                         weight_addr.eq(weight_addr + 1)]
            if kmax > 1:
                m.d.sync += pass_full.eq(pass_k + 1 == kmax - 1)
            with m.If(pass_end):
                if kmax > 1:
                    m.d.sync += pass_full.eq(0)
                if interval > 1:
                    m.d.sync += spaced.eq(0)
                m.d.sync += [pass_k.eq(0), since_last.eq(1), first_pass.eq(0),
                             remaining.eq(next_remaining),
                             remaining_fits.eq(next_remaining <= kmax)]
            with m.If(tile_end):
                m.d.sync += [k.eq(0), compute_n.eq(next_n), next_n.eq(next_n + 1),
                             last_n_tile.eq(next_n == last_n), tile_end.eq(last_k == 0),
                             first_pass.eq(1), weight_base.eq(weight_base + max_k),
                             weight_addr.eq(weight_base + max_k)]
                with m.If(last_n_tile):
                    m.d.sync += [compute_n.eq(0), next_n.eq(1), last_n_tile.eq(last_n == 0),
                                 weight_base.eq(0), weight_addr.eq(0),
                                 compute_m.eq(compute_m + 1), m_after.eq(m_after - 1),
                                 last_m.eq(m_after == 1)]
                    with m.If(last_m):
                        m.d.sync += self.done.eq(1)
        return m


class WeightStationarySequencer(wiring.Component):
    """Issues a weight-stationary command: for each N tile, for each K tile (its weights in a
    bank of the grid), every row of X.

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`
    act_layout : data.StructLayout
        The activation buffer's word, ``{x}``.
    credits_depth : int
        Depth of the accumulator FIFO whose ``credits`` the sequencer reads.

    Members
    -------
    shape : ``In({m, n_tiles, k_tiles})``
        The command's shape, stable while ``active``.
    active : ``In(1)``
        A command runs. Clear the sequencer between commands with ``ResetInserter``.
    act_loaded, act_filling : ``In(range(max_k_tiles + 1))``, ``In(range(max_m))``
        K tiles of X completely loaded, and rows loaded of the next.
    channels_loaded : ``In(range(max_n_tiles + 1))``
        N tiles of channel parameters loaded.
    act_read : ``In(memory.ReadPort.Signature(…))``
        The X buffer's read port: row ``r`` of K tile ``t`` at ``t · max_m + r``.
    banks : ``Out(BANK_ISSUE_SIGNATURE)``
        To :class:`hw.systolic.WeightBanks`: an activation issues only while its bank holds
        its tile.
    credits : ``In(range(credits_depth + 1))``
        The accumulator FIFO's free places; an activation of a final K tile issues only with
        one, which it claims on ``reserve``.
    reserve : ``Out(range(2))``
    flags, x : ``Out(TileFlags)``, ``Out(rows × act)``
        The grid's inputs, :data:`GRID_FEED_LATENCY` cycles after an activation issues.
    done : ``Out(1)``
        Every activation of the command has issued.
    """

    def __init__(self, config, act_layout, *, credits_depth):
        self._config = config
        act_lanes, _ = operand_lanes(config)
        super().__init__({
            "shape": In(shape_layout(config)),
            "active": In(1),
            "act_loaded": In(range(config.max_k_tiles + 1)),
            "act_filling": In(range(config.max_m)),
            "channels_loaded": In(range(config.max_n_tiles + 1)),
            "act_read": buffer_read_signature(act_layout, config.max_m * config.max_k_tiles),
            "banks": Out(BANK_ISSUE_SIGNATURE),
            "credits": In(range(credits_depth + 1)),
            "reserve": Out(range(2)),
            "flags": Out(TileFlags),
            "x": Out(act_lanes),
            "done": Out(1),
        })

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        rows_m, n_tiles, k_tiles = self.shape.m, self.shape.n_tiles, self.shape.k_tiles
        row = Signal(range(cfg.max_m))
        k_tile = Signal(range(cfg.max_k_tiles))
        n_tile = Signal(range(cfg.max_n_tiles + 1))
        read_base = Signal(range(cfg.max_m * cfg.max_k_tiles))    # k_tile · max_m
        final = k_tile == k_tiles - 1
        tile_end = row == rows_m - 1
        available = ((self.act_loaded > k_tile) |
                     ((self.act_loaded == k_tile) & (self.act_filling > row)))
        issue = (self.active & (n_tile < n_tiles) & available &
                 (self.channels_loaded > n_tile) &
                 self.banks.can_compute & (~final | self.credits.any()))
        m.d.comb += [
            self.act_read.addr.eq(read_base + row),
            self.banks.tile_done.eq(issue & tile_end),
            self.done.eq(n_tile == n_tiles),
        ]
        flags = Signal(TileFlags)
        m.d.comb += [flags.valid.eq(issue), flags.last.eq(tile_end),
                     flags.bank.eq(self.banks.bank)]
        _feed_flags(m, self.flags, flags)
        _feed_data(m, self.x, self.act_read.data.x)
        with m.If(issue):
            m.d.sync += row.eq(row + 1)
            with m.If(final):
                m.d.comb += self.reserve.eq(1)
            with m.If(tile_end):
                m.d.sync += [row.eq(0), k_tile.eq(k_tile + 1),
                             read_base.eq(read_base + cfg.max_m)]
                with m.If(final):
                    m.d.sync += [k_tile.eq(0), read_base.eq(0), n_tile.eq(n_tile + 1)]
        return m
