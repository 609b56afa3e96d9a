"""The seed paper's experiments at larger p on the generated RTL (issue 11 §3).

Run: .venv/bin/python benchmarks/bench_paper.py [--sim verilator] [--max-p 5] [--rtl-p 5]
[--experiments 1,2,3,4] [--plot F]

1. γ·1_[α,β](x), ReLU, p = 7, s = 1: every point of Q_{7,1} on the engine.
2. σ = 5·Hardtanh, p = 3, s = 1: N_b for every output bias b; random networks on the engine
   (activation table after the requantizer) stay inside N_b of their bias.
3. Random f*: Q^2_{p,1} → Q_{p,1}: depth, widths and parameters of the ReLU (full-precision)
   and binary-weight constructions for p = 1..--max-p (built and checked on every grid point
   in golden/), run on the RTL up to --rtl-p (p = 5 takes about half an hour on the fast
   Verilator path); the plot of parameters against p (with the paper's O(2^{2p})) is written
   to --plot.
4. Identity activation: f*(x) = |x| at p = 5 on the RTL, affine in exact arithmetic.

Every RTL run compares each layer with golden's σ-quantized network and the outputs with f*.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from golden.fixedpoint_set import FixedPointSet, reachable_outputs, rounded_activation
from golden.paper import exact_affine, grid, indicator_table, random_table, represent
from sim.paper import random_search, run_network

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLOT = ROOT / "docs" / "paper-parameters.png"
#: Experiment 3 builds the binary construction up to this p (dense ±1 layers).
BINARY_MAX_P = 5
#: The experiments of issue 11 §3, by number.
EXPERIMENTS = {"1", "2", "3", "4"}


def _rtl(network, table, sim):
    """Run ``network`` on every grid point; (run, seconds): the simulator's own seconds where
    it reports them (Verilator, Icarus: builds excluded), else the wall-clock time."""
    qset = network.qset
    started = time.perf_counter()
    run = run_network(network.layers, network.activation, qset, grid(qset, network.d),
                      binary=network.construction == "binary", sim=sim)
    seconds = time.perf_counter() - started if run.sim_seconds is None else run.sim_seconds
    if not np.array_equal(run.outputs, table.reshape(-1)):
        raise AssertionError("the engine's outputs differ from f*")
    return run, seconds


def experiment_1(sim):
    qset = FixedPointSet(7, 1)
    table = indicator_table(qset, 1, [-77], [100], 42)
    network = represent(table, qset)
    run, seconds = _rtl(network, table, sim)
    return (f"| 1 | 42·1_[−77,100](x), ReLU, Q_{{7,1}} | {len(qset)} | {network.depth} | "
            f"{'-'.join(map(str, network.widths))} | {run.cycles} | {seconds:.1f} | exact |")


def experiment_2(sim, networks, seed=2):
    qset = FixedPointSet(3, 1)
    q = qset.q_max
    generators = rounded_activation("hardtanh5", qset.numerators, qset)
    found = random_search("hardtanh5", qset, networks, seed=seed, sim=sim)   # raises if outside
    if any(len(set(outputs.tolist())) == len(qset) for _, outputs, _ in found):
        raise AssertionError("a 5·Hardtanh network reached all of Q")
    sizes = [len(reachable_outputs(generators, qset, b)) for b in range(-q, q + 1)]
    return (f"| 2 | 5·Hardtanh, Q_{{3,1}}: {networks} random 1-w-1 networks | {len(qset)} | 2 | "
            f"1-(1..4)-1 | – | – | every output in N_b of its bias; N_b holds "
            f"{min(sizes)}..{max(sizes)} of the 15 values, for every b |")


def experiment_3(sim, max_p, rtl_p):
    rows = []
    for p in range(1, max_p + 1):
        qset = FixedPointSet(p, 1)
        table = random_table(qset, 2, p)
        for binary in (False, True):
            if binary and p > BINARY_MAX_P:
                continue                # the dense binary layers outgrow memory beyond
            network = represent(table, qset, binary=binary)
            if not np.array_equal(network(grid(qset, 2)), table.reshape(-1)):
                raise AssertionError("a construction differs from f*")
            cycles = seconds = None
            if p <= rtl_p:
                run, seconds = _rtl(network, table, sim)
                cycles = run.cycles
                print(f"experiment 3: p = {p} {network.construction} on the RTL, {cycles} "
                      f"cycles, {seconds:.1f} s", file=sys.stderr, flush=True)
            rows.append(dict(p=p, construction=network.construction, depth=network.depth,
                             widths=network.widths, parameters=network.parameters,
                             nonzero=network.nonzero_parameters, cycles=cycles,
                             seconds=seconds))
    return rows


def experiment_4(sim, p=5):
    qset = FixedPointSet(p, 1)
    table = np.abs(qset.numerators)
    network = represent(table, qset, activation="identity")
    run, seconds = _rtl(network, table, sim)
    exact = exact_affine(network, grid(qset, 1))
    slopes = {b - a for a, b in zip(exact, exact[1:], strict=False)}
    if len(slopes) != 1:
        raise AssertionError("the identity network is not affine in exact arithmetic")
    slope = slopes.pop()
    shape = f"constant {exact[0]}" if slope == 0 else f"affine, slope {slope}"
    return (f"| 4 | abs(x), identity, Q_{{{p},1}} | {len(qset)} | {network.depth} | "
            f"{'-'.join(map(str, network.widths))} | {run.cycles} | {seconds:.1f} | exact; in "
            f"exact arithmetic the same weights give {shape} |")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for construction, color in (("relu", "tab:blue"), ("binary", "tab:red")):
        mine = [r for r in rows if r["construction"] == construction]
        ax.semilogy([r["p"] for r in mine], [r["parameters"] for r in mine], marker="o",
                    color=color, label=f"{construction}: all parameters")
        ax.semilogy([r["p"] for r in mine], [r["nonzero"] for r in mine], marker="s",
                    color=color, linestyle=":", label=f"{construction}: nonzero")
    ps = sorted({r["p"] for r in rows})
    ax.semilogy(ps, [4.0 ** p for p in ps], "k--", label="$2^{2p}$")
    ax.set_xticks(ps)
    ax.set_xlabel("p (bits of $Q_{p,1}$)")
    ax.set_ylabel("parameters")
    ax.set_title("Random $f^*: Q^2_{p,1} \\to Q_{p,1}$, exact representation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", choices=["amaranth", "icarus", "verilator"],
                        default="verilator")
    parser.add_argument("--max-p", type=int, default=5, help="experiment 3: largest p built")
    parser.add_argument("--rtl-p", type=int, default=3,
                        help="experiment 3: largest p run on the RTL")
    parser.add_argument("--networks", type=int, default=20, help="experiment 2: networks")
    parser.add_argument("--experiments", default="1,2,3,4",
                        help="comma-separated experiments to run (default: all four)")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    args = parser.parse_args(argv)
    chosen = set(args.experiments.split(","))
    if not chosen <= EXPERIMENTS:
        parser.error(f"--experiments must name some of {', '.join(sorted(EXPERIMENTS))}, not "
                     f"{args.experiments!r}")
    command = "benchmarks/bench_paper.py " + shlex.join(argv if argv is not None
                                                        else sys.argv[1:])
    print(f"`{command}` (simulator: {args.sim})\n")
    if chosen & {"1", "2", "4"}:
        print("| exp | network | grid points | layers | widths | engine cycles | wall s | "
              "result |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    if "1" in chosen:
        print(experiment_1(args.sim), flush=True)
    if "2" in chosen:
        print(experiment_2(args.sim, args.networks), flush=True)
    if "4" in chosen:
        print(experiment_4(args.sim), flush=True)
    if "3" not in chosen:
        return 0
    rows = experiment_3(args.sim, args.max_p, args.rtl_p)
    print("\nExperiment 3: random f*: Q²_{p,1} → Q_{p,1}, both constructions checked on every "
          "grid point (golden/); RTL where cycles are given\n")
    print("| p | construction | layers | widths | parameters | nonzero | 2^{2p} | "
          "engine cycles | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        widths = "-".join(map(str, r["widths"]))
        if len(widths) > 40:
            widths = f"{'-'.join(map(str, r['widths'][:3]))}-…-{r['widths'][-2]}-1"
        cycles = "–" if r["cycles"] is None else r["cycles"]
        seconds = "–" if r["seconds"] is None else f"{r['seconds']:.1f}"
        print(f"| {r['p']} | {r['construction']} | {r['depth']} | {widths} | "
              f"{r['parameters']} | {r['nonzero']} | {4 ** r['p']} | {cycles} | {seconds} |")
    plot(rows, args.plot)
    print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
