"""Lab 4 autograder: skew and SCALE-Sim's model against the grader's own reading of them;
the cycle predictions against qmac's MacArray measured in Amaranth's simulator."""

import numpy as np

from hw.config import ArrayConfig
from labs.grading import Lab, Part, require
from sim.amaranth_sim import run_array
from sim.workload import random_workload

CASES = 300
DATAFLOWS = ("os", "ws", "is")
#: Array sizes the RTL measurements draw from (small: each run is a simulation).
SIZES = (2, 3, 4)
#: Simulated runs per measured part.
RUNS = 2


def check_skew(student, rng):
    for _ in range(CASES // 10):
        rows, beats = int(rng.integers(1, 9)), int(rng.integers(1, 12))
        x = rng.integers(-128, 128, size=(rows, beats))
        got = np.asarray(student.skew(x))
        require(got.shape == (rows, beats + rows - 1),
                f"skew of a {rows}×{beats} array has shape {got.shape}, expected "
                f"{(rows, beats + rows - 1)}")
        for cycle in range(beats + rows - 1):       # what enters row r at this cycle
            for r in range(rows):
                expected = x[r, cycle - r] if 0 <= cycle - r < beats else 0
                require(got[r, cycle] == expected,
                        f"skew(x) of a {rows}×{beats} x: row {r} at cycle {cycle} is "
                        f"{got[r, cycle]}, expected {expected} (x[{r}, {cycle - r}] or 0)")


def _scalesim(m, k, n, rows, cols, dataflow):
    """SCALE-Sim's first-order model, as the grader reads the paper: folds of the two
    mapped dimensions, each 2R + C + T − 2 cycles."""
    spatial_rows, spatial_cols, temporal = {"os": (m, n, k), "ws": (k, n, m),
                                            "is": (k, m, n)}[dataflow]
    folds = int(np.ceil(spatial_rows / rows)) * int(np.ceil(spatial_cols / cols))
    return folds * (2 * rows + cols + temporal - 2)


def check_scalesim(student, rng):
    for _ in range(CASES):
        m, k, n = (int(v) for v in rng.integers(1, 300, size=3))
        rows, cols = (int(v) for v in rng.choice([1, 2, 4, 8, 16, 32, 128], size=2))
        dataflow = DATAFLOWS[int(rng.integers(3))]
        got, expected = student.scalesim_cycles(m, k, n, rows, cols, dataflow), \
            _scalesim(m, k, n, rows, cols, dataflow)
        require(got == expected, f"scalesim_cycles({m}, {k}, {n}, {rows}, {cols}, "
                                 f"{dataflow!r}) returned {got!r}, expected {expected}")


def _measure(config, depth, seed):
    """(cycles from the first accepted beat to the last delivered row, latency) of one job
    of ``config`` on the RTL."""
    workload = random_workload(config, seed=seed, jobs=1, depth=depth)
    run = run_array(config, workload.jobs, workload.params)
    return run.output_cycles[-1] - run.accept_cycles[0] + 1, run.latency


def check_os_pass(student, rng):
    for _ in range(RUNS):
        rows, cols = (int(v) for v in rng.choice(SIZES, size=2))
        kmax = int(rng.integers(2, 17))
        config = ArrayConfig(rows=rows, cols=cols, kmax=kmax,
                             requant_lanes=int(rng.integers(1, cols + 1)))
        k = int(rng.integers(1, kmax + 1))
        measured, latency = _measure(config, k, int(rng.integers(1 << 16)))
        got = student.os_pass_cycles(k, rows, latency, config.requant_groups)
        require(got == measured, f"os_pass_cycles(k={k}, rows={rows}, latency={latency}, "
                                 f"row_interval={config.requant_groups}) returned {got!r}; the "
                                 f"RTL ({rows}×{cols}, kmax {kmax}) took {measured} cycles")


def check_ws_batch(student, rng):
    for _ in range(RUNS):
        rows, cols = (int(v) for v in rng.choice(SIZES, size=2))
        config = ArrayConfig(rows=rows, cols=cols, dataflow="ws")
        workload = random_workload(config, seed=int(rng.integers(1 << 16)), jobs=1)
        batch = len(workload.jobs[0][0])
        run = run_array(config, workload.jobs, workload.params)
        measured = run.output_cycles[-1] - run.accept_cycles[0] + 1
        got = student.ws_batch_cycles(batch, run.latency)
        require(got == measured, f"ws_batch_cycles(b={batch}, latency={run.latency}) returned "
                                 f"{got!r}; the RTL ({rows}×{cols}) took {measured} cycles")


def check_utilization(student, rng):
    for _ in range(CASES):
        m, k, n, rows, cols = (int(v) for v in rng.integers(1, 64, size=5))
        cycles = int(rng.integers(1, 10_000))
        got = student.utilization(m, k, n, rows, cols, cycles)
        expected = m * k * n / (rows * cols * cycles)
        require(np.isclose(got, expected, rtol=1e-12, atol=0),
                f"utilization({m}, {k}, {n}, {rows}, {cols}, {cycles}) returned {got!r}, "
                f"expected {expected!r}")


LAB = Lab(
    number=4, title="Systolic dataflows: skew, fill and drain, cycles", package="lab4_systolic",
    module="systolic", minutes=120,
    parts=(
        Part("skew: the systolic input schedule", 2, ("skew",), check_skew),
        Part("scalesim_cycles: SCALE-Sim's analytical model", 3, ("scalesim_cycles",),
             check_scalesim),
        Part("os_pass_cycles: predicted = measured on the RTL", 2, ("os_pass_cycles",),
             check_os_pass),
        Part("ws_batch_cycles: predicted = measured on the RTL", 1, ("ws_batch_cycles",),
             check_ws_batch),
        Part("utilization", 1, ("utilization",), check_utilization),
    ))
