"""Where a command's operands enter the engine: input streams written into buffers."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..systolic import weight_load_signature

__all__ = ["TileLoader", "WeightTileGate"]


class TileLoader(wiring.Component):
    """Writes a command's tiles from a stream into a buffer, tile by tile, beat by beat.

    Tile ``t`` is written to slot ``t mod slots``, its beat ``b`` at address
    ``(t mod slots) · tile_depth + b``. When ``slots < max_tiles`` the buffer is a ring: tile
    ``t`` loads only once the consumer has released tile ``t − slots``.

    ``i.ready`` comes from registers alone (no counter compare in front of it): a flag that
    the command's tiles are all loaded and, for a ring, the count of slots in use. The ends
    of a tile and of the command are equalities with registered ``beats − 1`` and
    ``tiles − 1``, so no subtraction sits in front of them either.

    Parameters
    ----------
    layout : shape-castable
        Payload of a beat, and a buffer word.
    tile_depth : int
        Words per slot: the most beats a tile may have.
    slots : int
        Tiles the buffer holds; a power of two when less than ``max_tiles``.
    max_tiles : int
        The most tiles a command may have.

    Members
    -------
    i : ``In(stream.Signature(layout))``
        Beats, tile by tile; taken while ``active``, tiles remain and a slot is free.
    active : ``In(1)``
        A command runs. Clear the loader between commands with ``ResetInserter``.
    tiles : ``In(range(max_tiles + 1))``
        Tiles in the command, at least one. ``tiles`` and ``beats`` are stable from the
        cycle before ``active`` rises until the command ends (the loader keeps registered
        copies of ``tiles − 1`` and ``beats − 1``, which its reset leaves alone).
    beats : ``In(range(tile_depth + 1))``
        Beats per tile.
    release : ``In(1)``
        Ring buffers only: the consumer is done with the oldest loaded tile; its slot may
        load again from the next cycle.
    pending : ``Out(range(slots + 1))``
        Ring buffers only: tiles loaded and not yet released (the oldest is readable when
        this is not zero).
    loaded : ``Out(range(max_tiles + 1))``
        Tiles completely written: readable from the cycle after it counts them.
    filling : ``Out(range(tile_depth))``
        Beats written of tile ``loaded``.
    read : ``Out(memory.ReadPort.Signature(addr_width, layout))``
        The buffer's synchronous read port (data one cycle after the address). Reading the
        word written in the same cycle gives an undefined value: read loaded tiles only.
    """

    def __init__(self, layout, *, tile_depth, slots, max_tiles):
        ring = slots < max_tiles
        if ring and slots & (slots - 1):
            raise ValueError(f"slots must be a power of two when less than max_tiles "
                             f"({max_tiles}), not {slots!r}")
        self._layout = layout
        self._tile_depth, self._slots, self._ring = tile_depth, slots, ring
        self._depth = tile_depth * slots
        ring_members = {"release": In(1), "pending": Out(range(slots + 1))} if ring else {}
        super().__init__({
            "i": In(stream.Signature(layout)),
            "active": In(1),
            "tiles": In(range(max_tiles + 1)),
            "beats": In(range(tile_depth + 1)),
            **ring_members,
            "loaded": Out(range(max_tiles + 1)),
            "filling": Out(range(tile_depth)),
            "read": Out(memory.ReadPort.Signature(addr_width=ceil_log2(self._depth),
                                                  shape=layout)),
        })

    @property
    def depth(self):
        """Words in the buffer."""
        return self._depth

    def elaborate(self, platform):
        m = Module()
        # A read of the word being written returns don't-care (Yosys' `no_rw_check`): the
        # consumer reads only loaded tiles, never the one filling, so the block RAM needs no
        # collision bypass (a mux and registers after its slow output).
        m.submodules.buffer = buffer = memory.Memory(shape=self._layout, depth=self._depth,
                                                     init=[], attrs={"no_rw_check": 1})
        wiring.connect(m, wiring.flipped(self.read), buffer.read_port())
        write = buffer.write_port()
        base = Signal(range(self._depth), name="base")     # slot of tile `loaded`, in words
        all_loaded = Signal()
        last_beat = Signal(range(self._tile_depth), reset_less=True, name="last_beat")
        last_tile = Signal.like(self.loaded, reset_less=True, name="last_tile")
        m.d.sync += [last_beat.eq(self.beats - 1), last_tile.eq(self.tiles - 1)]
        room = self.active & ~all_loaded
        if self._ring:
            room &= self.pending != self._slots
        taken = self.i.valid & self.i.ready
        tile_end = self.filling == last_beat
        tile_done = taken & tile_end
        if self._ring:
            with m.If(tile_done & ~self.release):
                m.d.sync += self.pending.eq(self.pending + 1)
            with m.Elif(~tile_done & self.release):
                m.d.sync += self.pending.eq(self.pending - 1)
        with m.If(tile_done & (self.loaded == last_tile)):
            m.d.sync += all_loaded.eq(1)
        m.d.comb += [
            self.i.ready.eq(room),
            write.addr.eq(base + self.filling),
            write.data.eq(self.i.p),
            write.en.eq(taken),
        ]
        with m.If(taken):
            m.d.sync += self.filling.eq(Mux(tile_end, 0, self.filling + 1))
            with m.If(tile_end):
                m.d.sync += [self.loaded.eq(self.loaded + 1),
                             base.eq(base + self._tile_depth)]
                if self._ring:
                    last_slot = self._slots - 1
                    with m.If(self.loaded[:ceil_log2(self._slots)] == last_slot):
                        m.d.sync += base.eq(0)
        return m


class WeightTileGate(wiring.Component):
    """Passes a weight-stationary command's weight beats into :class:`hw.systolic.WeightBanks`:
    ``k_tiles`` tiles for each of ``n_tiles`` N tiles, and not a beat more.

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`
        A weight-stationary configuration.
    layout : shape-castable
        The weight stream's payload, ``{w: cols × weight}``.

    Members
    -------
    i : ``In(stream.Signature(layout))``
        Weight beats, taken while ``active``, tiles remain and the loading bank is free.
    active : ``In(1)``
        A command runs (clear the gate between commands with ``ResetInserter``).
    k_tiles, n_tiles : ``In(range(max_k_tiles + 1))``, ``In(range(max_n_tiles + 1))``
        The command's shape.
    banks : ``Out(weight_load_signature(config.array))``
        To the banks, which shift each beat into the grid.
    """

    def __init__(self, config, layout):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(layout)),
            "active": In(1),
            "k_tiles": In(range(config.max_k_tiles + 1)),
            "n_tiles": In(range(config.max_n_tiles + 1)),
            "banks": Out(weight_load_signature(config.array)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        k_tile = Signal(range(cfg.max_k_tiles + 1))
        n_tile = Signal(range(cfg.max_n_tiles + 1))
        m.d.comb += [
            self.i.ready.eq(self.active & (n_tile < self.n_tiles) & self.banks.can_load),
            self.banks.load.eq(self.i.valid & self.i.ready),
        ]
        m.d.comb += [self.banks.lanes[j].eq(self.i.p.w[j]) for j in range(cfg.array.cols)]
        with m.If(self.banks.tile_loaded):
            m.d.sync += k_tile.eq(k_tile + 1)
            with m.If(k_tile == self.k_tiles - 1):
                m.d.sync += [k_tile.eq(0), n_tile.eq(n_tile + 1)]
        return m
