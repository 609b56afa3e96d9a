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

from golden import ops  # noqa: E402
from tests.golden.test_oracle import ALL_CODES, case, run_oracle, tensor  # noqa: E402

#: HardSwishPrepare needs s_in / s_out < 128; the sweep keeps the ratio at most this.
HARD_SWISH_MAX_RATIO = 64


def activation_cases(op, rng, count):
    cases, expected = [], []
    for _ in range(count):
        s_in, z_in = np.float32(2.0 ** rng.uniform(-10, 3)), int(rng.integers(-128, 128))
        if op == "LOGISTIC":
            s_out, z_out = np.float32(1 / 256), -128
            want = ops.logistic(ALL_CODES, input_scale=s_in, input_zero_point=z_in)
        elif op == "TANH":
            s_out, z_out = np.float32(1 / 128), 0
            want = ops.tanh(ALL_CODES, input_scale=s_in, input_zero_point=z_in)
        else:
            s_out = max(np.float32(2.0 ** rng.uniform(-8, 1)),
                        np.float32(s_in / HARD_SWISH_MAX_RATIO))
            z_out = int(rng.integers(-128, 128))
            want = ops.hard_swish(ALL_CODES, input_scale=s_in, input_zero_point=z_in,
                                  output_scale=s_out, output_zero_point=z_out)
        cases.append(case(op, [tensor(ALL_CODES.shape, s_in, z_in),
                               tensor(ALL_CODES.shape, s_out, z_out)], [0], [1],
                          {0: ALL_CODES}))
        expected.append(want)
    return cases, expected


def softmax_cases(rng, count):
    cases, expected = [], []
    for _ in range(count):
        x = rng.integers(-128, 128, size=(4, int(rng.integers(1, 200))))
        s_in = np.float32(2.0 ** rng.uniform(-8, 1))
        beta = float(np.float32(rng.uniform(0.1, 4)))
        expected.append(ops.softmax(x, input_scale=s_in, beta=beta))
        cases.append(case("SOFTMAX", [tensor(x.shape, s_in, 0), tensor(x.shape, 1 / 256, -128)],
                          [0], [1], {0: x}, beta=beta))
    return cases, expected


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="random cases per op")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for op in ("LOGISTIC", "TANH", "HARD_SWISH", "SOFTMAX"):
        if op == "SOFTMAX":
            cases, expected = softmax_cases(rng, args.cases)
        else:
            cases, expected = activation_cases(op, rng, args.cases)
        start = time.perf_counter()
        results = run_oracle(cases)
        differing = sum(int((np.asarray(r["outputs"][0]) != w).sum())
                        for r, w in zip(results, expected, strict=True))
        total = sum(w.size for w in expected)
        print(f"{op}: {len(cases)} cases, {differing} of {total} elements differ "
              f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
