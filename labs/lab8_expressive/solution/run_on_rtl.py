"""Lab 8, step 6: your indicator network on qmac's engine, on every point of the grid.

Run from your lab folder: ``python run_on_rtl.py [--p 3] [--s 1] [--lo -2] [--hi 3]
[--gamma 5]`` (a few seconds). Each layer runs as a GEMM of numerators on the engine in
Amaranth's simulator, the requantizer dividing by s exactly and its clamp computing ⌈ReLU⌋
(sim.paper); every layer is checked against golden's σ-quantized network, and the outputs
against the target γ·1[lo ≤ x ≤ hi].
"""

import argparse

import numpy as np
from expressive import indicator_network

from golden.fixedpoint_set import FixedPointSet
from sim.paper import run_network


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("p", 3), ("s", 1), ("lo", -2), ("hi", 3), ("gamma", 5)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    qset = FixedPointSet(args.p, args.s)
    layers = indicator_network(args.lo, args.hi, args.gamma, args.p, args.s)
    x = qset.numerators[:, None]
    run = run_network(layers, "relu", qset, x)
    target = np.where((x[:, 0] >= args.lo) & (x[:, 0] <= args.hi), args.gamma, 0)
    print(f"layers (W, b shapes): {[(w.shape, b.shape) for w, b in layers]}")
    print(f"x (numerators over s = {args.s}): {x[:, 0].tolist()}")
    print(f"RTL output:                 {run.outputs.tolist()}")
    print(f"target γ·1[lo ≤ x ≤ hi]:     {target.tolist()}")
    print(f"engine cycles {run.cycles}; equal to the target everywhere: "
          f"{bool(np.array_equal(run.outputs, target))}")


if __name__ == "__main__":
    main()
