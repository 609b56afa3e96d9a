"""PassSums and RowSums: the exact sum over passes / K tiles of every result row, against
Python integer sums of the same random rows, at the documented latency."""

import random

import pytest
from amaranth.hdl import signed
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.accumulator import accumulator_bits
from hw.config import ArrayConfig, EngineConfig
from hw.engine import PassSums, RowSums
from hw.engine.partial_sums import PASS_SUMS_LATENCY, ROW_SUMS_LATENCY

ROWS, COLS = 2, 3


def _row_layout(config):
    """The requantizer's input row, written out from its documentation."""
    return data.StructLayout({
        "acc": data.ArrayLayout(signed(config.partial_sum_bits), COLS), "last": 1,
        "n": range(config.max_n_tiles)})


def _extreme_rows(rng, bits, count):
    """Rows of grid sums in [−2^(bits−1), 2^(bits−1)): extremes often, so sums need width."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return [[rng.choice([lo, hi, rng.randint(lo, hi)]) for _ in range(COLS)]
            for _ in range(count)]


def _run(dut, drive, cycles):
    outputs = []

    async def testbench(ctx):
        for cycle in range(cycles):
            drive(ctx, cycle)
            await ctx.delay(0)
            if ctx.get(dut.o.valid):
                outputs.append((cycle, [ctx.get(dut.o.p.acc[j]) for j in range(COLS)],
                                ctx.get(dut.o.p.last), ctx.get(dut.o.p.n)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return outputs


@pytest.mark.parametrize("passes", [1, 2, 4])
def test_pass_sums_add_every_pass_of_a_tile(passes):
    kmax = 4
    config = EngineConfig(ArrayConfig(rows=ROWS, cols=COLS, kmax=kmax), max_k=16, max_n=9)
    dut = PassSums(config, _row_layout(config))
    rng = random.Random(passes)
    grid_bits = accumulator_bits(kmax, config.array.act_range, config.array.weight_range)
    tiles = [(n, [_extreme_rows(rng, grid_bits, ROWS) for _ in range(passes)])
             for n in (0, 2, 1)]
    # schedule: a tag as each pass issues; its rows arrive 6 cycles later, one per cycle,
    # the passes 8 cycles apart (as the grid reads a pass out)
    tags, rows = {}, {}
    cycle = 0
    for n, tile in tiles:
        for p, pass_rows in enumerate(tile):
            tags[cycle] = {"first": int(p == 0), "final": int(p == passes - 1), "n": n}
            for i, row in enumerate(pass_rows):
                rows[cycle + 6 + i] = {"acc": row, "last": int(i == ROWS - 1)}
            cycle += 8

    def drive(ctx, cycle):
        ctx.set(dut.tags.valid, cycle in tags)
        if cycle in tags:
            ctx.set(dut.tags.payload, tags[cycle])
        ctx.set(dut.rows.valid, cycle in rows)
        if cycle in rows:
            ctx.set(dut.rows.payload, rows[cycle])

    outputs = _run(dut, drive, cycle + 20)
    expected = [[sum(tile[p][i][j] for p in range(passes)) for j in range(COLS)]
                for _, tile in tiles for i in range(ROWS)]
    assert [acc for _, acc, _, _ in outputs] == expected
    assert [n for *_, n in outputs] == [n for n, _ in tiles for _ in range(ROWS)]
    assert [last for _, _, last, _ in outputs] == [int(i == ROWS - 1) for _ in tiles
                                                   for i in range(ROWS)]
    final_rows = [c for c in sorted(rows) if (c - 6) // 8 % passes == passes - 1]
    assert [c for c, *_ in outputs] == [c + PASS_SUMS_LATENCY for c in final_rows]


@pytest.mark.parametrize("rows_m,k_tiles,n_tiles,gap", [(3, 3, 2, 0), (1, 4, 2, 0),
                                                         (2, 2, 1, 3)])
def test_row_sums_add_every_k_tile_of_a_row(rows_m, k_tiles, n_tiles, gap):
    config = EngineConfig(ArrayConfig(rows=ROWS, cols=COLS, dataflow="weight_stationary",
                                      kmax=ROWS), max_k=ROWS * 4, max_n=COLS * 2, max_m=4)
    dut = RowSums(config, _row_layout(config))
    rng = random.Random(rows_m * 10 + k_tiles)
    grid_bits = config.array.partial_sum_bits(ROWS)
    # rows arrive for each N tile, each K tile, rows 0 … m − 1; `gap` idle cycles between
    arrivals = [(n, t, r, row) for n in range(n_tiles) for t in range(k_tiles)
                for r, row in enumerate(_extreme_rows(rng, grid_bits, rows_m))]
    schedule = {2 + i * (gap + 1): arrival for i, arrival in enumerate(arrivals)}

    def drive(ctx, cycle):
        ctx.set(dut.shape.m, rows_m)
        ctx.set(dut.shape.k_tiles, k_tiles)
        ctx.set(dut.shape.n_tiles, n_tiles)
        ctx.set(dut.rows.valid, cycle in schedule)
        if cycle in schedule:
            ctx.set(dut.rows.payload, {"acc": schedule[cycle][3], "last": 0})

    outputs = _run(dut, drive, max(schedule) + 10)
    expected = [([sum(row[j] for n_, t, r_, row in arrivals if (n_, r_) == (n, r))
                  for j in range(COLS)], int(r == rows_m - 1), n)
                for n in range(n_tiles) for r in range(rows_m)]
    assert [(acc, last, n) for _, acc, last, n in outputs] == expected
    final = [c for c, (_, t, _, _) in sorted(schedule.items()) if t == k_tiles - 1]
    assert [c for c, *_ in outputs] == [c + ROW_SUMS_LATENCY for c in final]
