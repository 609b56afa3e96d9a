# amaranth: UnusedElaboratable=no
"""TileLoader and WeightTileGate: every beat lands where the documented addressing says, the
ring never overwrites a tile its consumer still reads, and no beat beyond the command is taken."""

import random

import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.config import ArrayConfig, EngineConfig
from hw.engine import TileLoader, WeightTileGate

from .streams import stream_put


def _word(tile, beat):
    return (tile * 16 + beat) % 256


@pytest.mark.parametrize("slots,max_tiles,tiles,beats", [
    (2, 6, 5, 3),     # a ring of two banks (output-stationary activations)
    (4, 4, 4, 4),     # one slot per tile (weights), full tiles
    (3, 3, 2, 1),     # one-beat tiles, fewer tiles than slots
])
def test_tiles_land_in_their_slots(slots, max_tiles, tiles, beats):
    tile_depth = 4
    dut = TileLoader(unsigned(8), tile_depth=tile_depth, slots=slots, max_tiles=max_tiles)
    rng = random.Random(slots * 100 + tiles)
    read_back, violations = [], []

    async def producer(ctx):
        ctx.set(dut.tiles, tiles)       # stable from the cycle before `active`
        ctx.set(dut.beats, beats)
        await ctx.tick()
        ctx.set(dut.active, 1)
        for tile in range(tiles):
            for beat in range(beats):
                for _ in range(rng.randrange(3)):
                    await ctx.tick()
                await stream_put(ctx, dut.i, _word(tile, beat))
        for _ in range(10):     # a beat beyond the command is never taken
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            if ctx.get(dut.i.ready):
                violations.append("took a beat beyond the command")
        ctx.set(dut.i.valid, 0)

    ring = max_tiles > slots

    async def consumer(ctx):
        released = 0
        while released < tiles:
            loaded = ctx.get(dut.loaded)
            if ring and loaded > released + slots:
                violations.append(f"loaded {loaded} tiles with {released} released")
            if ring and ctx.get(dut.pending) != loaded - released:
                violations.append(f"pending {ctx.get(dut.pending)} with {loaded} tiles "
                                  f"loaded and {released} released")
            if loaded > released:      # read the oldest tile back, then release it
                slot = released % slots
                for beat in range(beats):
                    ctx.set(dut.read.addr, slot * tile_depth + beat)
                    await ctx.tick()
                    read_back.append(ctx.get(dut.read.data))
                released += 1
                if ring:               # a one-cycle pulse per tile
                    ctx.set(dut.release, 1)
                    await ctx.tick()
                    ctx.set(dut.release, 0)
                    continue
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert violations == []
    assert read_back == [_word(t, b) for t in range(tiles) for b in range(beats)]


def test_ring_slots_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="slots must be a power of two when less than "
                                         r"max_tiles \(8\), not 3"):
        TileLoader(unsigned(8), tile_depth=4, slots=3, max_tiles=8)


def test_weight_gate_passes_the_commands_beats_and_no_more():
    rows, cols, k_tiles, n_tiles = 2, 3, 3, 2
    config = EngineConfig(ArrayConfig(rows=rows, cols=cols, dataflow="weight_stationary",
                                      kmax=rows), max_k=8, max_n=9, max_m=4)
    layout = data.StructLayout({"w": data.ArrayLayout(8, cols)})
    dut = WeightTileGate(config, layout)
    rng = random.Random(7)
    beats = [[rng.randrange(-128, 128) for _ in range(cols)]
             for _ in range(k_tiles * n_tiles * rows + 5)]     # 5 more than the command has
    loaded = []

    async def testbench(ctx):
        ctx.set(dut.active, 1)
        ctx.set(dut.k_tiles, k_tiles)
        ctx.set(dut.n_tiles, n_tiles)
        count = 0
        for cycle in range(200):
            # the banks take a beat when they have room: free two cycles in three
            ctx.set(dut.banks.can_load, cycle % 3 != 2)
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"w": beats[count]})
            await ctx.delay(0)
            ctx.set(dut.banks.tile_loaded, ctx.get(dut.banks.load) and
                    len(loaded) % rows == rows - 1)
            await ctx.delay(0)
            if ctx.get(dut.banks.load):
                assert ctx.get(dut.i.ready)
                loaded.append([ctx.get(dut.banks.lanes[j]) for j in range(cols)])
                count += 1
            await ctx.tick()
            ctx.set(dut.banks.tile_loaded, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert loaded == beats[:k_tiles * n_tiles * rows]
