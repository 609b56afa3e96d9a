"""CommandRegister: a valid command starts a run and is held; an invalid one is flagged and
dropped. Limits are written out from the configuration here, not read from the component."""

import pytest
from amaranth.sim import Simulator

from hw.config import ArrayConfig, EngineConfig
from hw.engine import CommandRegister, engine_layouts

from .streams import stream_idle

ROWS = COLS = 2
MAX_K, MAX_N, MAX_M = 16, 8, 8


def _config(dataflow):
    return EngineConfig(ArrayConfig(rows=ROWS, cols=COLS, dataflow=dataflow,
                                    kmax=ROWS if dataflow == "weight_stationary" else 8),
                        max_k=MAX_K, max_n=MAX_N, max_m=MAX_M)


def _command(dataflow, **fields):
    if dataflow == "weight_stationary":
        shape = {"m": 3, "n_tiles": 2, "k_tiles": 4}
    else:
        shape = {"m_tiles": 3, "n_tiles": 2, "depth": 5}
    return {**shape, "output_zero_point": -3, "act_min": -100, "act_max": 90, **fields}


def _simulate(dataflow, commands, *, done_after=6):
    """Offer ``commands`` one after the other; each run ends ``done_after`` cycles after it
    starts, and its results drain one cycle later. Returns what was observed per command."""
    config = _config(dataflow)
    dut = CommandRegister(config, engine_layouts(config)["command"])
    seen = []

    async def testbench(ctx):
        ctx.set(dut.idle, 1)
        for command in commands:
            starts = 0
            ctx.set(dut.command.valid, 1)
            ctx.set(dut.command.payload, command)
            await ctx.delay(0)
            starts += ctx.get(dut.start)
            await ctx.tick()
            ctx.set(dut.command.valid, 0)
            held = {name: ctx.get(getattr(dut.shape, name)) for name in command
                    if hasattr(dut.shape, name)}
            held.update((name, ctx.get(getattr(dut, name)))
                        for name in ("output_zero_point", "act_min", "act_max"))
            observed = {"active": ctx.get(dut.active), "held": held,
                        "ready_while_active": [], "error": None}
            for _ in range(done_after):
                observed["ready_while_active"].append(ctx.get(dut.command.ready))
                starts += ctx.get(dut.start)
                await ctx.tick()
            ctx.set(dut.done, 1)
            ctx.set(dut.idle, 0)
            await ctx.tick()
            ctx.set(dut.done, 0)
            observed["busy_while_draining"] = ctx.get(dut.busy)
            observed["active_after_done"] = ctx.get(dut.active)
            ctx.set(dut.idle, 1)
            await stream_idle(ctx, 1)
            observed["busy_after"] = ctx.get(dut.busy)
            observed["error"] = ctx.get(dut.error)
            observed["starts"] = starts
            seen.append(observed)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return seen


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_a_valid_command_starts_once_and_is_held(dataflow):
    command = _command(dataflow)
    seen, = _simulate(dataflow, [command])
    assert seen["starts"] == 1 and seen["active"] == 1
    assert seen["held"] == {name: value for name, value in command.items()}
    assert seen["ready_while_active"] == [0] * 6           # busy: no second command taken
    assert seen["active_after_done"] == 0
    assert seen["busy_while_draining"] == 1                 # results still on their way
    assert seen["busy_after"] == 0 and seen["error"] == 0


# (field, value) beyond the limits of _config: zero, one above the limit, act_min > act_max.
_BAD = {
    "output_stationary": [("m_tiles", 0), ("n_tiles", 0), ("depth", 0),
                          ("n_tiles", MAX_N // COLS + 1), ("depth", MAX_K + 1)],
    "weight_stationary": [("m", 0), ("k_tiles", 0), ("m", MAX_M + 1),
                          ("n_tiles", MAX_N // COLS + 1), ("k_tiles", MAX_K // ROWS + 1)],
}


@pytest.mark.parametrize("dataflow,field,value",
                         [(d, f, v) for d, cases in _BAD.items() for f, v in cases] +
                         [(d, "act_min", 91) for d in _BAD])
def test_an_invalid_command_is_flagged_and_dropped(dataflow, field, value):
    bad, good = _command(dataflow, **{field: value}), _command(dataflow)
    first, second = _simulate(dataflow, [bad, good])
    assert first["starts"] == 0 and first["active"] == 0 and first["error"] == 1
    assert first["ready_while_active"] == [1] * 6           # dropped: the engine stays free
    # the next valid command still runs, and the flag stays up
    assert second["starts"] == 1 and second["held"] == good and second["error"] == 1
