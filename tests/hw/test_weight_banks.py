# amaranth: UnusedElaboratable=no
"""WeightBanks: a bank whose tile has issued its last activation loads again only once no PE
can still read it, counted from the issue: the feed latency plus the grid's drain cycles."""

import pytest
from amaranth.sim import Simulator

from hw.config import ArrayConfig
from hw.systolic import WeightBanks, WeightStationaryArray


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 2)])
@pytest.mark.parametrize("feed_latency", [0, 3])
def test_a_drained_bank_loads_after_feed_latency_and_drain_cycles(rows, cols, feed_latency):
    config = ArrayConfig(rows=rows, cols=cols, dataflow="weight_stationary")
    dut = WeightBanks(config, feed_latency=feed_latency)
    # Independent of the banks: the grid's own figure, plus the cycles the issuer's feed adds.
    wait = feed_latency + WeightStationaryArray(config).drain_cycles
    seen = {}

    async def testbench(ctx):
        for _ in range(2 * rows):           # fill both banks
            assert ctx.get(dut.loader.can_load)
            ctx.set(dut.loader.load, 1)
            await ctx.tick()
        ctx.set(dut.loader.load, 0)
        assert not ctx.get(dut.loader.can_load)
        assert ctx.get(dut.issue.can_compute)
        ctx.set(dut.issue.tile_done, 1)     # bank 0's last activation issues now
        await ctx.tick()
        ctx.set(dut.issue.tile_done, 0)
        for cycle in range(1, wait + 3):
            if ctx.get(dut.loader.can_load):
                seen["first"] = cycle
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["first"] == wait + 1


@pytest.mark.parametrize("feed_latency,error", [(-1, ValueError), (1.5, TypeError),
                                                ("2", TypeError)])
def test_feed_latency_is_checked(feed_latency, error):
    config = ArrayConfig(rows=2, cols=2, dataflow="weight_stationary")
    with pytest.raises(error, match=rf"feed_latency must be .*not {feed_latency!r}"):
        WeightBanks(config, feed_latency=feed_latency)
