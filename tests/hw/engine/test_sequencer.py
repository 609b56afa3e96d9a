"""The sequencers against a model of the order each dataflow issues its beats in: which
operands reach the grid with which flags, when, and what holds a beat back (loads, credits)."""

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import memory
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from hw.config import ArrayConfig, EngineConfig
from hw.engine import (
    GRID_FEED_LATENCY,
    OutputStationarySequencer,
    WeightStationarySequencer,
    engine_layouts,
)
from hw.engine.sequencer import ACT_BANKS, ISSUE_CHECK_LATENCY, engine_pass_interval

ROWS, COLS = 2, 2
MAX_K, MAX_N, MAX_M = 8, 4, 4


def _act(tile, k, i):
    return tile * 40 + k * 2 + i        # every (tile, k, lane) its own int8 value


def _weight(tile, k, j):
    return -(tile * 40 + k * 2 + j) - 1


class _Harness(Elaboratable):
    """A sequencer reading buffers filled with :func:`_act` and :func:`_weight`, laid out as
    the sequencer's documentation says the loaders write them."""

    def __init__(self, config):
        self.config = config
        layouts = engine_layouts(config)
        self.layouts = layouts
        if config.weight_stationary:
            self.dut = WeightStationarySequencer(config, layouts["activations"],
                                                 credits_depth=16)
        else:
            self.dut = OutputStationarySequencer(config, layouts["activations"],
                                                 layouts["weights"], credits_depth=16)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.dut = dut = self.dut
        if cfg.weight_stationary:     # row r of K tile t at t · max_m + r
            acts = [{"x": [_act(t, r, i) for i in range(ROWS)]}
                    for t in range(cfg.max_k_tiles) for r in range(cfg.max_m)]
        else:                         # tile t in bank t mod 2, max_k words each
            acts = [{"x": [_act(bank, k, i) for i in range(ROWS)]}
                    for bank in range(2) for k in range(cfg.max_k)]
            weights = [{"w": [_weight(n, k, j) for j in range(COLS)]}
                       for n in range(cfg.max_n_tiles) for k in range(cfg.max_k)]
            m.submodules.weights = w_mem = memory.Memory(
                shape=self.layouts["weights"], depth=len(weights), init=weights)
            connect(m, dut.weight_read, w_mem.read_port())
        m.submodules.acts = a_mem = memory.Memory(shape=self.layouts["activations"],
                                                  depth=len(acts), init=acts)
        connect(m, dut.act_read, a_mem.read_port())
        return m


_FLAGS = {OutputStationarySequencer: ("valid", "first", "last"),
          WeightStationarySequencer: ("valid", "last")}


def _simulate(harness, setup, *, cycles=200, credits=16, credit_change=None):
    """Run ``cycles`` cycles; record every cycle's grid feed, tag and reservation."""
    dut = harness.dut
    trace = []
    # Output-stationary: a model of the activation loader's ring, `act_loaded` M tiles
    # arriving: pending = loaded and not released, at most ACT_BANKS.
    ring = isinstance(dut, OutputStationarySequencer)
    act_loaded = setup.get("act_loaded", 0)

    async def testbench(ctx):
        ctx.set(dut.active, 1)
        ctx.set(dut.credits, credits)
        for name, value in setup.items():
            if name in dut.shape.shape().members:
                ctx.set(getattr(dut.shape, name), value)
            elif name == "can_compute":          # the weight banks hold the needed tile
                ctx.set(dut.banks.can_compute, value)
            elif not (ring and name == "act_loaded"):
                ctx.set(getattr(dut, name), value)
        released = 0
        for cycle in range(cycles):
            if credit_change and cycle == credit_change[0]:
                ctx.set(dut.credits, credit_change[1])
            if ring:
                ctx.set(dut.act_pending, min(act_loaded, released + ACT_BANKS) - released)
            await ctx.delay(0)
            entry = {
                "cycle": cycle,
                "flags": {f: ctx.get(getattr(dut.flags, f)) for f in _FLAGS[type(dut)]},
                "x": [ctx.get(dut.x[i]) for i in range(ROWS)],
                "reserve": ctx.get(dut.reserve),
                "done": ctx.get(dut.done),
            }
            if ring:
                entry["release"] = ctx.get(dut.act_release)
                released += entry["release"]
            if hasattr(dut, "w"):
                entry["w"] = [ctx.get(dut.w[j]) for j in range(COLS)]
                entry["tag"] = ({f: ctx.get(getattr(dut.tags.p, f)) for f in
                                 ("first", "final", "n")} if ctx.get(dut.tags.valid) else None)
            else:
                entry["tile_done"] = ctx.get(dut.banks.tile_done)
            trace.append(entry)
            await ctx.tick()

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return trace


def _os_config(kmax):
    return EngineConfig(ArrayConfig(rows=ROWS, cols=COLS, kmax=kmax), max_k=MAX_K,
                        max_n=MAX_N, max_m=MAX_M)


def _os_expected(m_tiles, n_tiles, depth, kmax):
    """Beats in issue order: for m, for n, for k; passes of at most kmax beats."""
    beats, tags = [], []
    for mt in range(m_tiles):
        for n in range(n_tiles):
            starts = list(range(0, depth, kmax))
            for p, start in enumerate(starts):
                end = min(start + kmax, depth)
                for k in range(start, end):
                    beats.append({"first": int(k == start), "last": int(k == end - 1),
                                  "x": [_act(mt % 2, k, i) for i in range(ROWS)],
                                  "w": [_weight(n, k, j) for j in range(COLS)]})
                tags.append({"first": int(p == 0), "final": int(p == len(starts) - 1),
                             "n": n})
    return beats, tags


@pytest.mark.parametrize("kmax,depth", [(2, 5), (8, 5), (4, 8), (2, 1)])
def test_output_stationary_order_flags_and_tags(kmax, depth):
    m_tiles, n_tiles = 2, 2
    config = _os_config(kmax)
    trace = _simulate(_Harness(config), {"m_tiles": m_tiles, "n_tiles": n_tiles,
                                         "depth": depth, "act_loaded": m_tiles,
                                         "weight_loaded": n_tiles, "channels_loaded": n_tiles})
    fed = [t for t in trace if t["flags"]["valid"]]
    beats, tags = _os_expected(m_tiles, n_tiles, depth, kmax)
    assert [{"first": t["flags"]["first"], "last": t["flags"]["last"], "x": t["x"],
             "w": t["w"]} for t in fed] == beats
    assert [t["tag"] for t in trace if t["tag"]] == tags
    # each pass's last beat reaches the grid GRID_FEED_LATENCY cycles after its tag issued
    tag_cycles = [t["cycle"] for t in trace if t["tag"]]
    last_cycles = [t["cycle"] for t in fed if t["flags"]["last"]]
    assert last_cycles == [c + GRID_FEED_LATENCY for c in tag_cycles]
    # the last beats of two passes are at least the pass interval apart
    interval = engine_pass_interval(config)
    assert all(b - a >= interval for a, b in zip(last_cycles, last_cycles[1:], strict=False))
    # a final pass claims a row of credit per array row, as it issues its last beat
    assert [t["reserve"] for t in trace if t["reserve"]] == [ROWS] * (m_tiles * n_tiles)
    assert [t["cycle"] for t in trace if t["reserve"]] == [
        t["cycle"] for t in trace if t["tag"] and t["tag"]["final"]]
    # an M tile's bank is released as its last beat issues: the final pass of its last N tile
    assert [t["cycle"] for t in trace if t["release"]] == [
        t["cycle"] for t in trace if t["tag"] and t["tag"]["final"] and
        t["tag"]["n"] == n_tiles - 1]
    assert trace[-1]["done"] == 1


def test_output_stationary_final_pass_waits_for_credits():
    config = _os_config(kmax=2)
    setup = {"m_tiles": 1, "n_tiles": 1, "depth": 3, "act_loaded": 1, "weight_loaded": 1,
             "channels_loaded": 1}
    trace = _simulate(_Harness(config), setup, cycles=60, credits=ROWS - 1,
                      credit_change=(40, ROWS))
    fed = [t for t in trace if t["flags"]["valid"]]
    # the first pass (2 beats) and nothing of the final pass's last beat before cycle 40
    assert [t["cycle"] < 40 for t in fed] == [True, True, False]
    # the credit is seen ISSUE_CHECK_LATENCY cycles later, the beat reaches the grid after that
    assert fed[-1]["flags"]["last"] == 1 and \
        fed[-1]["cycle"] == 40 + ISSUE_CHECK_LATENCY + GRID_FEED_LATENCY


def test_output_stationary_waits_for_loaded_tiles():
    config = _os_config(kmax=8)
    setup = {"m_tiles": 2, "n_tiles": 2, "depth": 3, "act_loaded": 1, "weight_loaded": 1,
             "channels_loaded": 2}
    trace = _simulate(_Harness(config), setup, cycles=60)
    fed = [t for t in trace if t["flags"]["valid"]]
    assert len(fed) == 3                          # tile (m 0, n 0) only: weights of n 1 missing
    assert trace[-1]["done"] == 0


def _ws_config():
    return EngineConfig(ArrayConfig(rows=ROWS, cols=COLS, dataflow="weight_stationary",
                                    kmax=ROWS), max_k=MAX_K, max_n=MAX_N, max_m=MAX_M)


@pytest.mark.parametrize("rows_m,k_tiles,n_tiles", [(3, 2, 2), (1, 3, 1), (4, 4, 2)])
def test_weight_stationary_order_and_credits(rows_m, k_tiles, n_tiles):
    config = _ws_config()
    setup = {"m": rows_m, "n_tiles": n_tiles, "k_tiles": k_tiles, "act_loaded": k_tiles,
             "act_filling": 0, "channels_loaded": n_tiles, "can_compute": 1}
    trace = _simulate(_Harness(config), setup, cycles=120)
    fed = [t for t in trace if t["flags"]["valid"]]
    expected = [{"x": [_act(t, r, i) for i in range(ROWS)], "last": int(r == rows_m - 1)}
                for _ in range(n_tiles) for t in range(k_tiles) for r in range(rows_m)]
    assert [{"x": t["x"], "last": t["flags"]["last"]} for t in fed] == expected
    # one credit per row of a final K tile, claimed as it issues; a bank switch per tile
    assert sum(t["reserve"] for t in trace) == rows_m * n_tiles
    assert sum(t["tile_done"] for t in trace) == k_tiles * n_tiles
    assert trace[-1]["done"] == 1


def test_weight_stationary_issues_only_loaded_rows():
    setup = {"m": 4, "n_tiles": 1, "k_tiles": 2, "act_loaded": 0, "act_filling": 2,
             "channels_loaded": 1, "can_compute": 1}
    trace = _simulate(_Harness(_ws_config()), setup, cycles=40)
    fed = [t for t in trace if t["flags"]["valid"]]
    assert [t["x"] for t in fed] == [[_act(0, r, i) for i in range(ROWS)] for r in range(2)]
    assert trace[-1]["done"] == 0


def test_output_stationary_waits_for_the_next_m_tile():
    """The next M tile's first beat waits for its activation bank (act_pending counts the
    tile being released too): with one of two M tiles loaded, only the first M tile issues."""
    config = _os_config(kmax=8)
    setup = {"m_tiles": 2, "n_tiles": 2, "depth": 3, "act_loaded": 1, "weight_loaded": 2,
             "channels_loaded": 2}
    trace = _simulate(_Harness(config), setup, cycles=60)
    fed = [t for t in trace if t["flags"]["valid"]]
    beats, _ = _os_expected(1, 2, 3, 8)
    assert [{"first": t["flags"]["first"], "last": t["flags"]["last"], "x": t["x"],
             "w": t["w"]} for t in fed] == beats
    assert sum(t["release"] for t in trace) == 1 and trace[-1]["done"] == 0
