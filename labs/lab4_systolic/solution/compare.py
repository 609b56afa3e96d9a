"""Lab 4, step 4: SCALE-Sim's prediction against cycles measured on qmac's RTL.

Run from your lab folder: ``python compare.py`` (about 30 s). For each GEMM shape and both
dataflows it runs qmac's GEMM engine (a 4×4 array) in Amaranth's simulator, checks the result
against golden/ bit for bit, and prints a Markdown table of your ``scalesim_cycles``
prediction, the measured cycles, their ratio, and your ``utilization`` of the measured run.
"""

import numpy as np
from systolic import scalesim_cycles, utilization

from hw.config import ArrayConfig
from sim.gemm import gemm

ROWS = COLS = 4
#: Deepest K of one output-stationary pass.
KMAX = 16
#: (M, K, N) of each row.
SHAPES = ((4, 4, 4), (4, 16, 4), (16, 16, 16), (8, 32, 8), (32, 8, 8), (16, 16, 3))
#: A multiplier and shift that keep int8 outputs in range (M = 2^−11).
MULTIPLIER, SHIFT = 1 << 30, -10


def main():
    rng = np.random.default_rng(0)
    print("| M×K×N | dataflow | SCALE-Sim | measured | measured / SCALE-Sim | utilization |")
    print("|---|---|---:|---:|---:|---:|")
    for m, k, n in SHAPES:
        x = rng.integers(-128, 128, size=(m, k))
        w = rng.integers(-127, 128, size=(n, k))
        for dataflow in ("os", "ws"):
            config = ArrayConfig(rows=ROWS, cols=COLS, dataflow=dataflow,
                                 **({"kmax": KMAX} if dataflow == "os" else {}))
            run = gemm(config, x, w, multiplier=MULTIPLIER, shift=SHIFT, sim="amaranth")
            predicted = scalesim_cycles(m, k, n, ROWS, COLS, dataflow)
            print(f"| {m}×{k}×{n} | {dataflow} | {predicted} | {run.cycles} | "
                  f"{run.cycles / predicted:.2f} | "
                  f"{utilization(m, k, n, ROWS, COLS, run.cycles):.1%} |", flush=True)


if __name__ == "__main__":
    main()
