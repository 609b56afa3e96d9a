"""Lab 6, step 5: utilization against shape on qmac's GEMM engine, measured and plotted.

Run from your lab folder: ``python sweep.py`` (about a minute). A 4×4 output-stationary
engine (kmax 16) runs GEMMs in Amaranth's simulator (each checked against golden/ bit for
bit): square M = N from 1 to 32 at K = 16, then K from 1 to 64 at M = N = 8. It plots the
measured utilization with your bounds (padding, and your cycle_bound + fill_drain_cycles) to
``utilization.png`` and ``utilization.svg`` (matplotlib) and prints a table and the paths.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from engine import cycle_bound, fill_drain_cycles, padded_utilization  # noqa: E402

from hw.config import ArrayConfig  # noqa: E402
from hw.engine import engine_timing  # noqa: E402
from sim.gemm import engine_config_for, gemm  # noqa: E402

ROWS = COLS = 4
KMAX = 16
SQUARE = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)      # M = N, at K = SQUARE_K
SQUARE_K = 16
DEPTHS = (1, 2, 4, 8, 12, 16, 20, 32, 48, 64)    # K, at M = N = DEPTH_MN
DEPTH_MN = 8
MULTIPLIER, SHIFT = 1 << 30, -10


def measure(m, k, n, rng):
    """(measured, padding bound, cycle bound) utilizations of one GEMM."""
    config = ArrayConfig(rows=ROWS, cols=COLS, kmax=KMAX)
    timing = engine_timing(engine_config_for(config, m, k, n))
    x = rng.integers(-128, 128, size=(m, k))
    w = rng.integers(-127, 128, size=(n, k))
    run = gemm(config, x, w, multiplier=MULTIPLIER, shift=SHIFT, sim="amaranth")
    bound = cycle_bound(m, k, n, ROWS, COLS, KMAX, timing.row_interval)
    worst = bound + fill_drain_cycles(k, ROWS, timing.latency, timing.row_interval)
    macs = m * k * n
    print(f"| {m}×{k}×{n} | {run.cycles} | {bound} … {worst} | {run.utilization:.1%} |",
          flush=True)
    return run.utilization, padded_utilization(m, k, n, ROWS, COLS), \
        macs / (ROWS * COLS * worst), macs / (ROWS * COLS * bound)


def main():
    rng = np.random.default_rng(0)
    print("| M×K×N | measured cycles | your bounds | utilization |\n|---|---:|---|---:|")
    square = [measure(s, SQUARE_K, s, rng) for s in SQUARE]
    deep = [measure(DEPTH_MN, k, DEPTH_MN, rng) for k in DEPTHS]
    figure, panels = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axes, xs, rows, label in ((panels[0], SQUARE, square, f"M = N (K = {SQUARE_K})"),
                                  (panels[1], DEPTHS, deep, f"K (M = N = {DEPTH_MN})")):
        measured, padding, low, high = (np.array(column) for column in zip(*rows, strict=True))
        axes.plot(xs, measured, "o-", label="measured on the RTL")
        axes.plot(xs, padding, "--", label="padding bound")
        axes.fill_between(xs, low, high, alpha=0.2, label="your cycle bounds")
        axes.set_xlabel(label)
        axes.set_xscale("log", base=2)
        axes.grid(alpha=0.3)
    panels[0].set_ylabel(f"MAC utilization of the {ROWS}×{COLS} array")
    panels[0].legend(fontsize=8)
    figure.suptitle(f"qmac GEMM engine, {ROWS}×{COLS} output-stationary, kmax {KMAX}")
    figure.tight_layout()
    for path in ("utilization.png", "utilization.svg"):
        figure.savefig(path, dpi=150)
        print(path)


if __name__ == "__main__":
    main()
