"""Exact int8 GEMM + requantization (golden.fully_connected) vs numpy's int64 and float64 matmul.

Run: python benchmarks/bench_golden_gemm.py [--size 1024] [--repeats 7]
All three are timed in one run, interleaved, and reported as medians and ratios.
"""

import argparse
import statistics
import time

import numpy as np

from golden import fully_connected, quantize_multiplier
from golden.gemm import matmul_path


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="M = K = N")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(n, n), dtype=np.int8)
    w = rng.integers(-128, 128, size=(n, n), dtype=np.int8)
    bias = rng.integers(-(1 << 16), 1 << 16, size=n, dtype=np.int32)
    m0, shift = quantize_multiplier(np.full(n, 2.0 ** -14))
    x64, w64 = x.astype(np.int64), w.astype(np.int64)
    xf, wf = x.astype(np.float64), w.astype(np.float64)

    def golden():
        return fully_connected(x, w, bias, input_zero_point=0, weight_zero_point=0,
                               output_zero_point=0, multiplier=m0, shift=shift,
                               act_min=-128, act_max=127)

    candidates = {
        "golden.fully_connected (exact GEMM + requantize)": golden,
        "numpy int64 matmul": lambda: x64 @ w64.T,
        "numpy float64 matmul": lambda: xf @ wf.T,
    }
    golden()  # warm up BLAS threads and caches
    medians = {name: [] for name in candidates}
    for _ in range(args.repeats):  # interleave so the shared machine's noise hits all alike
        for name, fn in candidates.items():
            medians[name].append(_median_seconds(fn, 1))
    medians = {name: statistics.median(times) for name, times in medians.items()}
    reference = medians["numpy float64 matmul"]
    print(f"int8 GEMM {n}×{n}×{n}, median of {args.repeats}; golden's GEMM path: "
          f"{matmul_path(x, w.T)}\n")
    print("| computation | median s | vs float64 matmul |")
    print("|---|---:|---:|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.4f} | {seconds / reference:.2f}× |")


if __name__ == "__main__":
    main()
