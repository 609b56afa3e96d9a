"""Lab 6 autograder: tiling and bounds against the grader's own integer reasoning, and the
bounds against qmac's output-stationary GemmEngine measured in Amaranth's simulator."""

import math

import numpy as np

from hw.config import ArrayConfig
from hw.engine import engine_timing
from labs.grading import Lab, Part, require
from sim.gemm import engine_config_for, gemm

CASES = 300
#: Simulated GEMMs per run of the measured part, and their largest dimension.
RUNS, LARGEST = 2, 20
#: A multiplier and shift that keep int8 outputs in range.
MULTIPLIER, SHIFT = 1 << 30, -10


def _shape(rng):
    m, k, n = (int(v) for v in rng.integers(1, 200, size=3))
    rows, cols = (int(v) for v in rng.integers(1, 17, size=2))
    return m, k, n, rows, cols, int(rng.choice([4, 8, 16, 64, 256]))


def _tiles(m, k, n, rows, cols, kmax):
    return math.ceil(m / rows), math.ceil(n / cols), math.ceil(k / kmax)


def _bound(m, k, n, rows, cols, kmax, row_interval):
    """The grader's reading: every tile issues each pass for at least max(R, C, 2) cycles;
    the requantizer emits a row every row_interval cycles."""
    m_tiles, n_tiles, passes = _tiles(m, k, n, rows, cols, kmax)
    last = k - (passes - 1) * kmax
    per_tile = (passes - 1) * max(kmax, rows, cols, 2) + max(last, rows, cols, 2)
    return max(m_tiles * n_tiles * per_tile, m_tiles * n_tiles * rows * row_interval)


def check_tiles(student, rng):
    for _ in range(CASES):
        m, k, n, rows, cols, kmax = _shape(rng)
        got = tuple(student.tile_counts(m, k, n, rows, cols, kmax))
        expected = _tiles(m, k, n, rows, cols, kmax)
        require(got == expected, f"tile_counts({m}, {k}, {n}, {rows}, {cols}, {kmax}) returned "
                                 f"{got}, expected {expected}")
        got = student.padded_utilization(m, k, n, rows, cols)
        m_tiles, n_tiles, _ = expected
        expected = m * n / (m_tiles * rows * n_tiles * cols)
        require(np.isclose(got, expected, rtol=1e-12, atol=0),
                f"padded_utilization({m}, {k}, {n}, {rows}, {cols}) returned {got!r}, "
                f"expected {expected!r}")


def check_bound(student, rng):
    for _ in range(CASES):
        m, k, n, rows, cols, kmax = _shape(rng)
        row_interval = int(rng.integers(1, cols + 1))
        got = student.cycle_bound(m, k, n, rows, cols, kmax, row_interval)
        expected = _bound(m, k, n, rows, cols, kmax, row_interval)
        require(got == expected, f"cycle_bound({m}, {k}, {n}, {rows}, {cols}, {kmax}, "
                                 f"{row_interval}) returned {got!r}, expected {expected}")


def check_on_the_rtl(student, rng):
    for _ in range(RUNS):
        rows, cols = (int(v) for v in rng.integers(2, 5, size=2))
        kmax = int(rng.choice([4, 8, 16]))
        m, k, n = (int(v) for v in rng.integers(1, LARGEST + 1, size=3))
        config = ArrayConfig(rows=rows, cols=cols, kmax=kmax)
        timing = engine_timing(engine_config_for(config, m, k, n))
        x = rng.integers(-128, 128, size=(m, k))
        w = rng.integers(-127, 128, size=(n, k))
        measured = gemm(config, x, w, multiplier=MULTIPLIER, shift=SHIFT, sim="amaranth").cycles
        bound = student.cycle_bound(m, k, n, rows, cols, kmax, timing.row_interval)
        extra = student.fill_drain_cycles(k, rows, timing.latency, timing.row_interval)
        expected_extra = k + 2 + timing.latency + rows * timing.row_interval
        call = (f"{m}×{k}×{n} on {rows}×{cols}, kmax {kmax} (latency {timing.latency}, "
                f"row_interval {timing.row_interval})")
        require(extra == expected_extra, f"fill_drain_cycles({k}, {rows}, {timing.latency}, "
                                         f"{timing.row_interval}) returned {extra!r}, expected "
                                         f"{expected_extra}")
        require(bound <= measured <= bound + extra,
                f"{call}: the RTL took {measured} cycles, outside your bounds [{bound}, "
                f"{bound + extra}]")


LAB = Lab(
    number=6, title="The GEMM engine: tiling, partial sums, utilization", package="lab6_engine",
    module="engine", minutes=100,
    parts=(
        Part("tile_counts and padded_utilization", 2,
             ("ceil_div", "tile_counts", "padded_utilization"), check_tiles),
        Part("cycle_bound: the grid's and the requantizer's rate limits", 3,
             ("issue_cycles", "cycle_bound"), check_bound),
        Part("bounds hold on the RTL: bound ≤ measured ≤ bound + fill and drain", 2,
             ("cycle_bound", "fill_drain_cycles"), check_on_the_rtl),
    ))
