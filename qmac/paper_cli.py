"""``qmac paper``: the seed paper's constructions compiled to engine commands and run on the
simulated RTL (docs/paper.md).

``qmac paper run --target TABLE --p P --s S --activation A [--binary]`` builds the network
that represents the target f*: Q^d_{p,s} → Q_{p,s} (:func:`golden.paper.represent`), runs it
layer by layer on the GEMM engine (:func:`sim.paper.run_network`) on every grid point, and
checks every output against golden's σ-quantized network and against the table itself.

``qmac paper reach --activation A --p P --s S [--networks N]`` enumerates the outputs one
output bias can reach (the paper's N_b), prints the values no network with that bias
reaches, and with ``--networks`` runs N random networks on the RTL to show that none leaves
its N_b.
"""

import re
import sys
import time

from .cli_common import check_output_file, removed_on_error

__all__ = ["MAX_POINTS", "add_commands", "load_target"]

#: Most grid points ``qmac paper run`` simulates (Q^2_{7,1} has 65025).
MAX_POINTS = 1 << 16

TARGET_HELP = ("f* as numerators: a .npy file of shape (2^(p+1)−1,)*d (entry [q₁+Q, …] is "
               "f*(q/s)·s), 'indicator:LO:HI:GAMMA' (γ·1_C, LO and HI comma-separated per "
               "coordinate), 'random:D:SEED', or 'abs' (|x|, d = 1)")


def load_target(spec, qset):
    """The target table of ``--target`` (see :data:`TARGET_HELP`) on ``qset``."""
    import numpy as np

    from golden.paper import indicator_table, random_table

    q = qset.q_max
    if spec == "abs":
        return np.abs(qset.numerators)
    match = re.fullmatch(r"random:(\d+):(\d+)", spec)
    if match:
        d = int(match[1])
        if not 1 <= d <= 3:
            raise ValueError(f"--target random:D:SEED needs D in [1, 3], not {d}")
        return random_table(qset, d, int(match[2]))
    match = re.fullmatch(r"indicator:([-\d,]+):([-\d,]+):(-?\d+)", spec)
    if match:
        lo, hi = ([int(v) for v in part.split(",")] for part in (match[1], match[2]))
        gamma = int(match[3])
        if len(lo) != len(hi):
            raise ValueError(f"--target {spec}: LO and HI must have as many coordinates")
        for a, b in zip(lo, hi, strict=True):
            if not -q <= a <= b <= q:
                raise ValueError(f"--target {spec}: each LO ≤ HI must lie in [{-q}, {q}], "
                                 f"not {a}..{b}")
        if not -q <= gamma <= q:
            raise ValueError(f"--target {spec}: GAMMA must be in [{-q}, {q}], not {gamma}")
        return indicator_table(qset, len(lo), lo, hi, gamma)
    if spec.endswith(".npy"):
        try:
            return np.load(spec, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"--target {spec}: not a readable .npy array ({error})") from None
    raise ValueError(f"--target must be {TARGET_HELP}; not {spec!r}")


def _qset(args):
    from golden.fixedpoint_set import FixedPointSet
    from sim.paper import MAX_P

    if not 1 <= args.p <= MAX_P:
        raise ValueError(f"--p must be in [1, {MAX_P}] on the engine ((p+1)-bit operands), "
                         f"not {args.p}")
    return FixedPointSet(args.p, args.s)


def _cmd_run(args):
    import numpy as np

    from golden.paper import grid, represent
    from sim.gemm import MismatchError
    from sim.paper import run_network

    qset = _qset(args)
    table = load_target(args.target, qset)
    if np.asarray(table).size > MAX_POINTS:
        raise ValueError(f"--target must have at most {MAX_POINTS} grid points (every one runs "
                         f"on the simulated RTL), not {np.asarray(table).size}")
    network = represent(table, qset, activation=args.activation, binary=args.binary)
    if args.out:
        check_output_file("--out", args.out, ".npz")
    points = grid(qset, network.d)
    start = time.perf_counter()
    try:
        run = run_network(network.layers, args.activation, qset, points, binary=args.binary,
                          sim=args.sim, rows=args.rows, cols=args.cols)
    except MismatchError as error:
        print(f"MISMATCH: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    target = table.reshape(-1)
    divider = run.divider
    division = (f"shift {-divider.shift} (s = 2^{-divider.shift})" if divider.multiplier is None
                else f"M0 = {divider.multiplier}, shift {divider.shift} (exact for "
                     f"|acc| ≤ {divider.bound})")
    print(f"{network.construction} network for f*: Q^{network.d}_{{{qset.p},{qset.s}}} → "
          f"Q_{{{qset.p},{qset.s}}}: {network.depth} layers, widths "
          f"{'-'.join(map(str, network.widths))}, {network.parameters} parameters "
          f"({network.nonzero_parameters} nonzero)")
    print(f"engine: {args.rows}×{args.cols}, {run.config.array.act_bits}-bit operands"
          f"{', binary weights' if args.binary else ''}; division by s: {division}")
    print(f"{len(points)} grid points on the {args.sim} RTL in {seconds:.1f} s: "
          f"{run.cycles} engine cycles"
          + (", ⌈σ⌋ in the engine's activation table" if run.config.activation_table else ""))
    if args.out:
        with removed_on_error(args.out), open(args.out, "wb") as file:
            np.savez(file, x=points, y=run.outputs, target=target,
                     cycles=np.int64(run.cycles))
    wrong = int((run.outputs != target).sum())
    if wrong:
        print(f"MISMATCH: {wrong} of {len(target)} outputs differ from f*", file=sys.stderr)
        return 1
    print(f"every output equals golden's σ-quantized network and f* ({len(target)} points)")
    return 0


def _cmd_reach(args):
    from golden.fixedpoint_set import analyze, reachable_outputs, rounded_activation

    qset = _qset(args)
    if args.networks < 0:
        raise ValueError(f"--networks must be ≥ 0, not {args.networks}")
    report = analyze(args.activation, qset.p, qset.s)
    outputs = rounded_activation(args.activation, qset.numerators, qset)
    print(f"⌈{args.activation}⌋ on Q_{{{qset.p},{qset.s}}} takes "
          f"{sorted(set(outputs.tolist()))} (numerators)")
    print(f"necessary condition N_b = Q for some b: {report.necessary}; sufficient: "
          f"{report.sufficient}")
    for b in range(-qset.q_max, qset.q_max + 1):
        reached = set(reachable_outputs(outputs, qset, b).tolist())
        missing = sorted(set(qset.numerators.tolist()) - reached)
        print(f"b = {b:+d}/{qset.s}: reaches {len(reached)} of {len(qset)}; never "
              f"{missing if missing else 'nothing missing'}")
    if args.networks:
        from sim.gemm import MismatchError
        from sim.paper import random_search

        try:
            found = random_search(args.activation, qset, args.networks, seed=args.seed,
                                  sim=args.sim)
        except MismatchError as error:
            print(f"MISMATCH: {error}", file=sys.stderr)
            return 1
        covered = sum(len(set(outputs.tolist())) == len(qset) for _, outputs, _ in found)
        print(f"{args.networks} random 1-w-1 networks on the {args.sim} RTL, every point of "
              f"Q_{{{qset.p},{qset.s}}}: every output inside N_b of its bias; {covered} "
              f"reached all {len(qset)} values")
    return 0


def _missing(args):
    raise ValueError("choose a paper command: run or reach (see qmac paper --help)")


def add_commands(subparsers):
    """Register ``paper run`` and ``paper reach`` on ``subparsers``."""
    from golden.fixedpoint_set import ACTIVATIONS

    paper = subparsers.add_parser("paper", help="the seed paper's constructions on the RTL "
                                                "(docs/paper.md)")
    paper.set_defaults(handler=_missing)
    commands = paper.add_subparsers(dest="paper_command", metavar="COMMAND")

    def common(p, activations):
        p.add_argument("--p", type=int, required=True, help="bits p of Q_{p,s} (1..7)")
        p.add_argument("--s", type=int, default=1, help="scale s of Q_{p,s} (default 1)")
        p.add_argument("--activation", choices=activations, default="relu",
                       help="σ (default relu)")

    p = commands.add_parser("run", help="compile f* to engine commands, run them on every "
                                        "grid point, check against golden/ and f*")
    p.add_argument("--target", required=True, help=TARGET_HELP)
    common(p, list(ACTIVATIONS))
    p.add_argument("--binary", action="store_true",
                   help="binary weights (±1; s = 1, d ≤ 2, σ equal to ReLU on the grid)")
    p.add_argument("--sim", choices=["amaranth", "icarus", "verilator"], default="amaranth",
                   help="simulator (default amaranth: no Verilog tools)")
    p.add_argument("--rows", type=int, default=4, help="array rows (default 4)")
    p.add_argument("--cols", type=int, default=4, help="array columns (default 4)")
    p.add_argument("--out", help="out.npz: x, y, target, cycles")
    p.set_defaults(handler=_cmd_run)

    p = commands.add_parser("reach", help="outputs one output bias reaches (N_b) and the "
                                          "values no network reaches")
    common(p, list(ACTIVATIONS))
    p.add_argument("--networks", type=int, default=0,
                   help="also run this many random 1-w-1 networks on the RTL (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random networks")
    p.add_argument("--sim", choices=["amaranth", "icarus", "verilator"], default="amaranth",
                   help="simulator for --networks (default amaranth)")
    p.set_defaults(handler=_cmd_reach)
