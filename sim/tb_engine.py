"""cocotb bench: a generated GemmEngine runs one GEMM; every output is scored against golden/.

The spec names the engine configuration, an .npz job (``job``: :func:`hw.host.save_engine_job`)
and its expected outputs (``expected``: an .npy of golden/'s y [M, N]), the stall probability
of every stream (``stall``) and a seed. All five streams are driven at once, each with its own
random stalls; the bench reports the result rows (``rows_path``: an .npy it writes), the cycles
from the first input beat accepted to the last result row delivered, and the scoreboard's
verdict.
"""

import random
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.engine import EngineConfig, engine_layouts
from hw.host import load_engine_job

from .streams import (
    CycleCounter,
    StreamDriver,
    StreamSink,
    load_spec,
    pack,
    reset,
    save_report,
    scoreboard,
    start_clock,
    unpack,
    wait_until,
)


def _beats(layouts, job):
    return {name: [pack(layouts[name], fields) for fields in beats]
            for name, beats in job.beats().items()}


@cocotb.test()
async def engine_matches_golden(dut):
    spec = load_spec()
    config = EngineConfig.from_dict(spec["config"])
    job = load_engine_job(spec["job"])
    expected = np.load(spec["expected"])
    layouts = engine_layouts(config)
    rng = random.Random(spec.get("seed", 0))
    stall = spec.get("stall", 0.0)

    await start_clock(dut)
    counter = CycleCounter(dut.clk)
    beats = _beats(layouts, job)
    drivers = {name: StreamDriver(dut, name, counter, stall=stall,
                                  rng=random.Random(rng.random()))
               for name in beats}
    sink = StreamSink(dut, "results", counter, stall=stall, rng=random.Random(rng.random()))
    await reset(dut)
    started = time.perf_counter()
    sink.start()
    tasks = [cocotb.start_soon(drivers[name].send_all(stream_beats))
             for name, stream_beats in beats.items()]
    inputs = sum(len(b) for b in beats.values())
    timeout = 64 * (job.result_rows + inputs) + 1000
    finished = await wait_until(
        dut.clk, lambda: len(sink.beats) >= job.result_rows and all(t.done() for t in tasks),
        timeout)
    wall = time.perf_counter() - started
    await ClockCycles(dut.clk, 4 * (job.rows + job.cols) + 16)  # nothing more may come out
    sink.stop()
    for task in tasks:
        task.cancel()

    rows = [unpack(layouts["results"], bits) for _, bits in sink.beats]
    got_rows = np.array([[int(row.y[j]) for j in range(job.cols)] for row in rows],
                        np.int64).reshape(-1, job.cols)
    np.save(spec["rows_path"], got_rows)
    first_input = min(edge for driver in drivers.values() if driver is not drivers["command"]
                      for edge in driver.accepted[:1])
    cycles = sink.beats[-1][0] - first_input + 1 if sink.beats else 0
    lasts = [int(row.last) for row in rows]
    expected_lasts = job.result_lasts
    report = {"cycles": cycles, "wall_seconds": wall, "rows": len(got_rows),
              "error_flag": int(dut.error.value), "busy_after": int(dut.busy.value)}
    error = None
    if len(got_rows) != job.result_rows:
        error = f"delivered {len(got_rows)} result rows, the command asks for {job.result_rows}"
    else:
        error = scoreboard(job.outputs(got_rows), expected) or scoreboard(
            got_rows[:, :0], got_rows[:, :0], got_lasts=lasts, expected_lasts=expected_lasts)
    if not finished:
        sent = {name: f"{len(d.accepted)} beats" for name, d in drivers.items()}
        error = f"timed out after {timeout} cycles: accepted {sent}; {error or ''}"
    elif sink.violations:
        error = f"results stream broke the ready/valid rules: {sink.violations[:3]}"
    elif report["busy_after"] or report["error_flag"]:
        error = f"busy {report['busy_after']}, error {report['error_flag']} after the command"
    if error:
        report["error"] = error
    save_report(report)
    assert error is None, error
