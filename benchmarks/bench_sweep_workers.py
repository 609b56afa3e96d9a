"""Wall time of the same small ``qmac sweep`` on 1 and on 2 Dask workers.

Run: .venv/bin/python benchmarks/bench_sweep_workers.py [--board icebreaker]
     [--sizes 1x1,1x2,2x2,2x3] [--workers 1,2] [--repeats 2] [--markdown FILE] [--keep DIR]

Each run is :func:`boards.sweep.sweep` with ``keep_going=True`` (every size is built, so every
run does the same work) on a fresh LocalCluster of N single-threaded worker processes, timed
from the call to its return (cluster start and the tables and plots included). Worker counts
are interleaved, their order alternating between repeats, so a change in the machine's load
falls on both. Reported: the median wall time, the median sum of the builds' own times (what
one worker would take back to back), their ratio (builds running at once, on average), the
speed-up over the first worker count, and the 1-minute load average before each run (other
jobs on the machine slow the builds down). ``--keep DIR`` keeps each run's folder (tables,
plots, builds) as DIR/runR-wN instead of a temporary one.
"""

import argparse
import contextlib
import os
import shlex
import statistics
import sys
import tempfile
import time

from boards.sweep import parse_sizes, sweep


def run_once(board, sizes, workers, keep=None):
    with (contextlib.nullcontext(keep) if keep else
          tempfile.TemporaryDirectory(prefix="bench_sweep_")) as directory:
        load = os.getloadavg()[0]
        start = time.monotonic()
        result = sweep(board, directory, sizes=sizes, workers=workers, keep_going=True,
                       progress=None)
        wall = time.monotonic() - start
    built = sum(row["status"] == "built" for row in result["rows"])
    build_seconds = sum(row["seconds"] or 0 for row in result["rows"])
    return {"workers": workers, "wall": wall, "build_seconds": build_seconds, "load": load,
            "built": built, "statuses": [row["status"] for row in result["rows"]]}


def table(runs, worker_counts):
    lines = ["| workers | runs | wall s (median) | wall s (each run) | sum of build s | "
             "builds at once | speed-up | load avg before |",
             "| ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    base = None
    for workers in worker_counts:
        mine = [run for run in runs if run["workers"] == workers]
        wall = statistics.median(run["wall"] for run in mine)
        builds = statistics.median(run["build_seconds"] for run in mine)
        base = base or wall
        each = ", ".join(f"{run['wall']:.0f}" for run in mine)
        loads = ", ".join(f"{run['load']:.1f}" for run in mine)
        lines.append(f"| {workers} | {len(mine)} | {wall:.0f} | {each} | {builds:.0f} | "
                     f"{builds / wall:.2f} | {base / wall:.2f}× | {loads} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker")
    parser.add_argument("--sizes", default="1x1,1x2,2x2,2x3")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--keep", help="keep each run's folder in this directory")
    args = parser.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    worker_counts = [int(count) for count in args.workers.split(",")]
    runs = []
    for repeat in range(args.repeats):
        order = worker_counts if repeat % 2 == 0 else worker_counts[::-1]
        for workers in order:
            keep = args.keep and os.path.join(args.keep, f"run{repeat + 1}-w{workers}")
            run = run_once(args.board, sizes, workers, keep)
            runs.append(run)
            print(f"repeat {repeat + 1}, {workers} workers: {run['wall']:.1f} s wall, "
                  f"{run['build_seconds']:.1f} s of builds, load {run['load']:.1f}, "
                  f"{', '.join(run['statuses'])}", file=sys.stderr, flush=True)
    command = shlex.join([".venv/bin/python", "benchmarks/bench_sweep_workers.py",
                          *(argv if argv is not None else sys.argv[1:])])
    text = (f"`{command}` ({args.board} {args.sizes}, keep going, {os.cpu_count()} cores)\n\n"
            + table(runs, worker_counts))
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    main()
