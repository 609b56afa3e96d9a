"""A wide sweep of golden.ops' float32-table ops against the TFLite interpreter.

LOGISTIC, TANH and HARD_SWISH on every int8 input for random scales and zero points, and
SOFTMAX on random rows, each compared element for element with TFLite 2.14 (BUILTIN_REF)
in the oracle environment (tools/make_oracle_env.sh). A measurement for docs/ops.md, too
slow for the test suite::

    .venv/bin/python tools/oracle_sweep.py --cases 3000
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.golden.oracle import (  # noqa: E402
    activation_case,
    golden_output,
    run_oracle,
    softmax_case,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="random cases per op")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--softmax-kernel", choices=["reference", "optimized"],
                        default="reference", help="the reference kernel on BUILTIN_REF, or "
                        "the optimized one on BUILTIN")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for op in ("LOGISTIC", "TANH", "HARD_SWISH", "SOFTMAX"):
        if op == "SOFTMAX":
            cases = [softmax_case(rng, 4, int(rng.integers(1, 200))) for _ in range(args.cases)]
        else:
            cases = [activation_case(op, rng, (-10, 3)) for _ in range(args.cases)]
        optimized = op == "SOFTMAX" and args.softmax_kernel == "optimized"
        resolver = "BUILTIN" if optimized else "BUILTIN_REF"
        expected = [golden_output(c, resolver) for c in cases]
        start = time.perf_counter()
        results = run_oracle(cases, resolver)
        differing = sum(int((np.asarray(r["outputs"][0]) != w).sum())
                        for r, w in zip(results, expected, strict=True))
        total = sum(w.size for w in expected)
        print(f"{op}: {len(cases)} cases, {differing} of {total} elements differ "
              f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
