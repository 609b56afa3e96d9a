"""``python -m formal``: run the proofs, print and save a table (``make formal``).

    python -m formal                # every proof, cover and mutant
    python -m formal --fast         # the ones `make test` runs
    python -m formal -k pe_ --jobs 2
    python -m formal --list
"""

import argparse
import dataclasses
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .catalog import proofs
from .harness import run
from .toolchain import SOLVERS, versions

#: Where proofs are written and run (relative to the working directory; YoWASP needs that).
BUILD_DIR = Path("build/formal")
_COLUMNS = ("proof", "property", "widths", "engine", "mode", "depth", "expected", "result",
            "seconds")


def _row(outcome):
    p, r = outcome.proof, outcome.result
    status = r.status if outcome.ok else f"**{r.status}** (unexpected)"
    if r.step is not None:
        status += f" @ step {r.step}"
    return (p.name, p.prop, p.widths, p.engine, p.mode, str(p.depth), p.expect, status,
            f"{r.seconds:.1f}")


def _table(rows):
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m formal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="pattern", default="", help="only proofs whose name has this")
    parser.add_argument("--fast", action="store_true", help="only the fast proofs")
    parser.add_argument("--list", action="store_true", help="list the proofs and exit")
    parser.add_argument("--jobs", type=int, default=1, help="proofs run at once (default 1)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per proof")
    parser.add_argument("--solver", choices=SOLVERS, help="run every selected proof with this "
                        "solver instead of its own (to compare solvers)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    selected = [p for p in proofs(fast=args.fast) if args.pattern in p.name]
    if args.solver:
        selected = [dataclasses.replace(p, solver=args.solver) for p in selected]
    if args.list:
        for p in selected:
            print(f"{p.name:55} {p.mode:6} depth {p.depth:<5} {p.engine:18} expect {p.expect}")
        return 0
    build = BUILD_DIR / f"with_{args.solver}" if args.solver else BUILD_DIR
    build.mkdir(parents=True, exist_ok=True)
    tools = versions(build)
    report = build / "results"
    print("\n".join(f"{name}: {line}" for name, line in tools.items()), flush=True)

    def job(proof):
        outcome = run(proof, build, timeout=args.timeout)
        print(" | ".join(_row(outcome)[i] for i in (0, 7, 8)), flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(job, selected))
    rows = [_row(o) for o in outcomes]
    report.with_suffix(".md").write_text(_table(rows) + "\n")
    report.with_suffix(".json").write_text(json.dumps(
        {"tools": tools, "proofs": [dict(zip(_COLUMNS, row, strict=True)) for row in rows]},
        indent=1))
    failed = [o.proof.name for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)}/{len(outcomes)} as expected; table in "
          f"{report.with_suffix('.md')}")
    if failed:
        print("unexpected: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
