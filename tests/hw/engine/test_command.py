"""CommandRegister: a valid command starts a run and is held; an invalid one is flagged and
dropped. Limits are written out from the configuration here, not read from the component."""

import pytest
from amaranth.sim import Simulator

from hw.config import ArrayConfig, EngineConfig
from hw.engine import CommandRegister, engine_layouts
from hw.engine.command import START_LATENCY

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


#: The run ends (``done``) in this cycle after the command is offered, and its results drain
#: (``idle`` low) for two cycles from it.
DONE_CYCLE = 7
CYCLES = 11


def _simulate(dataflow, commands):
    """Offer each of ``commands`` for one cycle (cycle 0 of its trace) with the engine idle;
    record every cycle of the run that follows."""
    config = _config(dataflow)
    dut = CommandRegister(config, engine_layouts(config)["command"])
    traces = []

    async def testbench(ctx):
        for command in commands:
            trace = []
            for cycle in range(CYCLES):
                ctx.set(dut.command.valid, cycle == 0)
                ctx.set(dut.command.payload, command)
                ctx.set(dut.done, cycle == DONE_CYCLE)
                ctx.set(dut.idle, cycle not in (DONE_CYCLE, DONE_CYCLE + 1))
                await ctx.delay(0)
                trace.append({
                    "ready": ctx.get(dut.command.ready), "start": ctx.get(dut.start),
                    "active": ctx.get(dut.active), "busy": ctx.get(dut.busy),
                    "error": ctx.get(dut.error),
                    "held": {**{name: ctx.get(getattr(dut.shape, name)) for name in command
                                if hasattr(dut.shape, name)},
                             **{name: ctx.get(getattr(dut, name)) for name in
                                ("output_zero_point", "act_min", "act_max")}}})
                await ctx.tick()
            traces.append(trace)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return traces


def _column(trace, name):
    return [cycle[name] for cycle in trace]


@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_a_valid_command_starts_once_and_is_held(dataflow):
    command = _command(dataflow)
    trace, = _simulate(dataflow, [command])
    # taken in cycle 0, held and checked in 1; start (registered) in START_LATENCY − 1;
    # active from START_LATENCY until done
    start = [0] * CYCLES
    start[START_LATENCY - 1] = 1
    assert _column(trace, "start") == start
    assert _column(trace, "active") == ([0] * START_LATENCY + [1] * (DONE_CYCLE + 1 -
                                        START_LATENCY) + [0] * (CYCLES - DONE_CYCLE - 1))
    assert all(cycle["held"] == command for cycle in trace[1:])
    # busy (no second command taken) from start until the results have drained
    assert _column(trace, "busy") == [0] + [1] * (DONE_CYCLE + 1) + [0] * (CYCLES -
                                                                           DONE_CYCLE - 2)
    assert _column(trace, "ready") == [1 - busy for busy in _column(trace, "busy")]
    assert not any(_column(trace, "error"))


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
    assert not any(_column(first, "start")) and not any(_column(first, "active"))
    # set once the held command is checked, the cycle start would have risen
    assert _column(first, "error") == [0] * (START_LATENCY - 1) + [1] * (CYCLES -
                                                                          START_LATENCY + 1)
    # dropped: the engine is free again once the check has refused it (held, then checked)
    assert _column(first, "ready")[:DONE_CYCLE] == [1] + [0] * (START_LATENCY - 2) + [1] * (
        DONE_CYCLE - START_LATENCY + 1)
    # the next valid command still runs, and the flag stays up
    assert _column(second, "start")[START_LATENCY - 1] == 1 and second[1]["held"] == good
    assert all(_column(second, "error"))
