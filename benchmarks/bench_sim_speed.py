"""Simulation speed (cycles/s) of the generated array on Icarus and Verilator, and its timing.

Run: .venv/bin/python benchmarks/bench_sim_speed.py [--repeats 3] [--markdown FILE]

Each configuration (output-stationary int8, kmax 64) is built once per simulator into a fresh
build directory (build time reported; Verilator with the compiler's optimization), then runs
an unstalled workload of back-to-back passes (K = 64) ``repeats`` times. Speed is simulated
clock cycles per wall-clock second inside the cocotb bench (start-up excluded; the Python
drivers and sink are part of it, as in every test), median of the repeats. Timing, from the
same runs: latency (last beat of a pass → its first result row) measured vs the manifest's
``latency_cycles`` and ``MacArray.latency``; rows of a pass per cycle; and the span from a
pass's first input beat to its last result row vs the issue's K + R + C + requantizer stages.
"""

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hw.config import ArrayConfig
from hw.top import MacArray
from sim.runner import array_design, run, simulator_available

DEPTH = 64


def _timing(config, report):
    """Latency, rows per cycle and first-input-to-last-row span of every pass of a run."""
    accepted, delivered = report["accepted"]["operands"], report["delivered"]
    rows = config.rows
    latencies, gaps, spans = set(), set(), set()
    for p, depth in enumerate(report["depths"]):
        beats = accepted[sum(report["depths"][:p]):][:depth]
        out = delivered[p * rows:(p + 1) * rows]
        latencies.add(out[0] - beats[-1])
        gaps.update(np.diff(out).tolist() or [1])
        spans.add(out[-1] - beats[0] + 1)
    return latencies, gaps, spans


def _stages(config):
    if config.requant == "shift":
        return 3
    return 6 if config.rounding == "double" else 5


def measure(sizes, sims, repeats, jobs):
    results = []
    for size in sizes:
        config = ArrayConfig(rows=size, cols=size, kmax=DEPTH, name=f"bench_{size}x{size}")
        array = MacArray(config)
        array._MustUse__silence = True  # built only to read its latency
        for sim in sims:
            if not simulator_available(sim):
                raise SystemExit(f"{sim} is not installed")
            start = time.perf_counter()
            first = run(array_design(config), "sim.tb_array",
                        {"seed": 0, "jobs": 1, "depth": DEPTH}, sim=sim, optimize=True)
            build_seconds = time.perf_counter() - start - first["wall_seconds"]
            speeds, timing = [], [set(), set(), set()]
            for repeat in range(repeats):
                report = run(array_design(config), "sim.tb_array",
                             {"seed": repeat, "jobs": jobs, "depth": DEPTH}, sim=sim,
                             optimize=True)
                speeds.append(report["cycles"] / report["wall_seconds"])
                for seen, new in zip(timing, _timing(config, report), strict=True):
                    seen.update(new)
            results.append(dict(
                array=f"{size}×{size}", sim=sim, cycles=report["cycles"],
                speed=statistics.median(speeds), speeds=speeds, build=build_seconds,
                latency=timing[0], gaps=timing[1], spans=timing[2],
                manifest=report["manifest_latency"], property=array.latency,
                bound=DEPTH + 2 * size + _stages(config)))
    return results


def _one(values):
    return str(next(iter(values))) if len(values) == 1 else "/".join(map(str, sorted(values)))


def markdown(results, command, repeats, jobs):
    lines = [
        f"`{command}` (output-stationary int8, kmax {DEPTH}, {jobs} back-to-back passes of "
        f"K = {DEPTH} per run, unstalled; median of {repeats} runs; cycles/s measured inside "
        "the cocotb bench, Python drivers included, start-up excluded; Verilator model built "
        "with the compiler's optimization):",
        "",
        "| array | simulator | cycles per run | median cycles/s | runs (cycles/s) "
        "| build + start-up s | measured latency | manifest | MacArray.latency "
        "| rows per cycle | first input → last row | K+R+C+Lq |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        runs = ", ".join(f"{s:,.0f}" for s in r["speeds"])
        rate = "1" if r["gaps"] == {1} else _one(r["gaps"])
        lines.append(
            f"| {r['array']} | {r['sim']} | {r['cycles']} | {r['speed']:,.0f} | {runs} "
            f"| {r['build']:.1f} | {_one(r['latency'])} | {r['manifest']} | {r['property']} "
            f"| {rate} | {_one(r['spans'])} | {r['bound']} |")
    by_key = {(r["array"], r["sim"]): r["speed"] for r in results}
    lines.append("")
    for array in dict.fromkeys(r["array"] for r in results):
        if (array, "verilator") in by_key and (array, "icarus") in by_key:
            ratio = by_key[(array, "verilator")] / by_key[(array, "icarus")]
            lines.append(f"{array}: Verilator/Icarus speed ratio {ratio:.1f}×  ")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=40, help="passes per run")
    parser.add_argument("--sizes", default="4,8", help="square array sizes, comma-separated")
    parser.add_argument("--cached", action="store_true",
                        help="reuse sim_build/ instead of building afresh (build s then ~0)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.repeats < 1 or args.jobs < 1:
        parser.error(f"--repeats and --jobs must be ≥ 1; got {args.repeats}, {args.jobs}")
    sizes = [int(s) for s in args.sizes.split(",")]
    command = shlex.join([".venv/bin/python", "benchmarks/bench_sim_speed.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="qmac_bench_") as root:
        if not args.cached:
            os.environ["QMAC_SIM_BUILD"] = root
        os.environ.pop("WAVES", None)
        results = measure(sizes, ("icarus", "verilator"), args.repeats, args.jobs)
    text = markdown(results, command, args.repeats, args.jobs)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
