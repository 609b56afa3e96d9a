"""GEMM engine utilization on the RTL, beside SCALE-Sim's output-stationary cycle model.

Run: .venv/bin/python benchmarks/bench_engine_utilization.py [--sim verilator] [--markdown F]

For each dataflow, square array and square GEMM M = K = N, one unstalled command runs on the
generated GemmEngine (int8; output-stationary kmax 64; buffers for M, K, N ≤ 256) and the
cycles are measured from the first input beat accepted to the last result row delivered; the
outputs are checked against golden/. Utilization = M·K·N / (R·C·cycles). SCALE-Sim's
output-stationary model runs the folds ceil(M/R)·ceil(N/C) back to back, each taking
R + C + K − 2 cycles (fill, K beats, drain); its utilization is computed from that formula
for the same shapes.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from hw.config import ArrayConfig
from hw.engine import EngineConfig
from sim.gemm import gemm

SIZES = (16, 64, 256)
ARRAYS = (4, 8)


def scale_sim_os_cycles(m, k, n, rows, cols):
    folds = -(-m // rows) * -(-n // cols)
    return folds * (rows + cols + k - 2)


def measure(sim, sizes, arrays, dataflows, seed=0):
    rng = np.random.default_rng(seed)
    results = []
    for dataflow, size in ((d, s) for d in dataflows for s in arrays):
        kmax = size if dataflow == "ws" else 64
        engine = EngineConfig(ArrayConfig(rows=size, cols=size, kmax=kmax, dataflow=dataflow,
                                          per_channel=True,
                                          name=f"bench_engine_{dataflow}_{size}x{size}"),
                              max_k=256, max_n=256, max_m=256)
        for shape in sizes:
            x = rng.integers(-128, 128, (shape, shape), dtype=np.int64)
            w = rng.integers(-127, 128, (shape, shape), dtype=np.int64)
            started = time.perf_counter()
            result = gemm(engine, x, w, bias=rng.integers(-1000, 1000, shape),
                          input_zero_point=3, output_zero_point=-2,
                          multiplier=rng.integers(1 << 30, 1 << 31, shape),
                          shift=np.full(shape, -13), act_min=-128, act_max=127, sim=sim)
            scale = scale_sim_os_cycles(shape, shape, shape, size, size)
            results.append(dict(dataflow=dataflow, array=f"{size}×{size}", shape=shape,
                                cycles=result.cycles,
                                utilization=result.utilization, scale_cycles=scale,
                                scale_utilization=shape ** 3 / (size * size * scale),
                                seconds=time.perf_counter() - started))
            print(results[-1], file=sys.stderr, flush=True)
    return results


def markdown(results, command, sim):
    lines = [f"`{command}` ({sim}; int8, one unstalled command per GEMM, outputs checked "
             "against golden/; seconds include the simulator's start-up and, on a "
             "configuration's first GEMM, its build; SCALE-Sim's output-stationary model on "
             "every row):", "",
             "| dataflow | array | M = K = N | qmac cycles | qmac utilization "
             "| SCALE-Sim OS cycles | SCALE-Sim utilization | qmac speed-up | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['dataflow']} | {r['array']} | {r['shape']} | {r['cycles']:,} | "
                     f"{r['utilization']:.1%} | {r['scale_cycles']:,} | "
                     f"{r['scale_utilization']:.1%} | {r['scale_cycles'] / r['cycles']:.2f}× | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", default="verilator",
                        choices=["verilator", "icarus", "amaranth"])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--arrays", default=",".join(map(str, ARRAYS)))
    parser.add_argument("--dataflows", default="os,ws")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    arrays = [int(s) for s in args.arrays.split(",")]
    command = shlex.join([".venv/bin/python", "benchmarks/bench_engine_utilization.py",
                          *sys.argv[1:]])
    dataflows = args.dataflows.split(",")
    text = markdown(measure(args.sim, sizes, arrays, dataflows), command, args.sim)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
