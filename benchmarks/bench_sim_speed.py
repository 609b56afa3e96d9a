"""Simulation speed (cycles/s) of the generated array on Icarus and Verilator, and its timing;
the GEMM engine on the fast path (sim.fast) vs cocotb on Verilator vs Icarus.

Run: .venv/bin/python benchmarks/bench_sim_speed.py [--repeats 3] [--markdown FILE]
     .venv/bin/python benchmarks/bench_sim_speed.py --engine-only   # the engine part alone

Each configuration (output-stationary int8, kmax 64) is built once per simulator into a fresh
build directory (build time reported; Verilator with the compiler's optimization), then runs
an unstalled workload of back-to-back passes (K = 64) ``repeats`` times. Speed is simulated
clock cycles per wall-clock second inside the cocotb bench (start-up excluded; the Python
drivers and sink are part of it, as in every test), median of the repeats. Timing, from the
same runs: latency (last beat of a pass → its first result row) measured vs the manifest's
``latency_cycles`` and ``MacArray.latency``; rows of a pass per cycle; and the span from a
pass's first input beat to its last result row vs the issue's K + R + C + requantizer stages.

The engine part runs ``sim.gemm.gemm`` as a user does, on one 8×8 int8 engine per dataflow
(``engine_config_for``): the same unstalled and stalled M = K = N = 64 GEMMs on every
simulator (the cycle counts must agree), then large GEMMs (~0.5 M cycles) on the fast path
alone. cycles/s is the GEMM's cycles over the simulator's own seconds for it
(``GemmResult.sim_seconds``: the cocotb bench's or the harness's, start-up excluded); the
fast path's processor time and the end-to-end seconds of the ``gemm`` call (laying out,
packing, the harness process, the golden/ check) are reported beside it. Builds are fresh
(reported) unless ``--cached``.
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
from amaranth.hdl import Fragment

from hw.config import ArrayConfig
from hw.top import MacArray
from sim import fast
from sim.gemm import engine_config_for, gemm
from sim.runner import array_design, run, simulator_available

DEPTH = 64
ENGINE_SIZE = 8
#: (M, K, N) of the GEMM every simulator runs, and of the fast path's long runs per dataflow
SMALL_GEMM = (64, 64, 64)
LARGE_GEMMS = {"os": (2048, 256, 64), "ws": (2048, 256, 64)}
ENGINE_STALL = 0.3
#: (label, sim name for sim.gemm)
ENGINE_SIMS = (("fast path (Verilator)", "verilator"), ("cocotb + Verilator", "verilator-cocotb"),
               ("cocotb + Icarus", "icarus"))


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
        Fragment.get(array, None)       # elaborated once, so its latency is the built one's
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


def _layer(rng, m, k, n):
    return dict(x=rng.integers(-128, 128, (m, k), dtype=np.int64),
                w=rng.integers(-127, 128, (n, k), dtype=np.int64),
                bias=rng.integers(-20000, 20000, n, dtype=np.int64), input_zero_point=3,
                output_zero_point=-5, multiplier=rng.integers(1 << 30, 1 << 31, n),
                shift=-rng.integers(7, 12, n), act_min=-128, act_max=127)


def _engine_run(config, shape, sim, stall, seed=0):
    layer = _layer(np.random.default_rng(seed), *shape)
    x, w = layer.pop("x"), layer.pop("w")
    start = time.perf_counter()
    result = gemm(config, x, w, sim=sim, stall=stall, seed=seed, **layer)  # checks golden/
    return result, time.perf_counter() - start


def measure_engine():
    """The engine on every simulator: builds, then small runs, then the fast path's long
    runs; one row per (dataflow, GEMM, stall, simulator)."""
    results = []
    for dataflow in ("os", "ws"):
        array = ArrayConfig(rows=ENGINE_SIZE, cols=ENGINE_SIZE, dataflow=dataflow,
                            kmax=DEPTH if dataflow == "os" else ENGINE_SIZE,
                            name=f"bench_engine_{dataflow}")
        config = engine_config_for(array, *LARGE_GEMMS[dataflow])   # holds the small too
        builds = {}
        for _, sim in ENGINE_SIMS:
            start = time.perf_counter()   # generate, build, one 1×1×1 run
            _engine_run(config, (1, 1, 1), sim, 0.0)
            builds[sim] = time.perf_counter() - start
        runs = [(SMALL_GEMM, stall, ENGINE_SIMS) for stall in (0.0, ENGINE_STALL)]
        runs += [(LARGE_GEMMS[dataflow], stall, ENGINE_SIMS[:1])
                 for stall in (0.0, ENGINE_STALL)]
        for shape, stall, sims in runs:
            for label, sim in sims:
                result, seconds = _engine_run(config, shape, sim, stall)
                row = dict(dataflow=dataflow, gemm="×".join(map(str, shape)), stall=stall,
                           label=label, sim=sim, cycles=result.cycles,
                           speed=result.cycles / result.sim_seconds, total=seconds,
                           build=builds[sim], utilization=result.utilization, cpu=None)
                if sim == "verilator":   # the harness's processor time, from the same run
                    job_speed = fast.run_engine(config, _job(config, shape), stall=stall)
                    row["cpu"] = job_speed.cycles / job_speed.cpu_seconds
                results.append(row)
    return results


def _job(config, shape):
    from hw.host import LayerParams, engine_job

    layer = _layer(np.random.default_rng(0), *shape)
    x, w = layer.pop("x"), layer.pop("w")
    params = LayerParams.for_config(config.array.replace(per_channel=True), n=shape[2],
                                    **layer)
    return engine_job(config, x, w, params)


def engine_markdown(results, command):
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        f"`{command}`: the GEMM engine ({ENGINE_SIZE}×{ENGINE_SIZE} int8, per-channel "
        "requantization, `sim.gemm.gemm` as a user calls it, golden/ check included; one "
        f"run each; load average at the end {load} on this 2-core machine):",
        "",
        "| dataflow | M×K×N | stall | simulator | cycles | cycles/s | cycles/CPU-s "
        "| gemm() s | build s | utilization |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu = f"{r['cpu']:,.0f}" if r["cpu"] else ""
        lines.append(
            f"| {r['dataflow']} | {r['gemm']} | {r['stall']} | {r['label']} | {r['cycles']:,} "
            f"| {r['speed']:,.0f} | {cpu} | {r['total']:.2f} | {r['build']:.1f} "
            f"| {r['utilization']:.1%} |")
    lines.append("")
    for dataflow in dict.fromkeys(r["dataflow"] for r in results):
        small = [r for r in results if r["dataflow"] == dataflow and
                 r["gemm"] == "×".join(map(str, SMALL_GEMM))]
        for stall in dict.fromkeys(r["stall"] for r in small):
            cycles = {r["cycles"] for r in small if r["stall"] == stall}
            verdict = "identical" if len(cycles) == 1 else f"DIFFER: {sorted(cycles)}"
            lines.append(f"{dataflow}, stall {stall}: cycle counts on the three simulators "
                         f"{verdict}  ")
        speed = {r["sim"]: r["speed"] for r in small if r["stall"] == 0.0}
        best = max(r["speed"] for r in results
                   if r["dataflow"] == dataflow and r["sim"] == "verilator")
        lines.append(f"{dataflow}: fast path {best:,.0f} cycles/s at best, "
                     f"{best / speed['verilator-cocotb']:,.0f}× cocotb + Verilator, "
                     f"{best / speed['icarus']:,.0f}× cocotb + Icarus  ")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=40, help="passes per run")
    parser.add_argument("--sizes", default="4,8", help="square array sizes, comma-separated")
    parser.add_argument("--cached", action="store_true",
                        help="reuse sim_build/ instead of building afresh (build s then ~0)")
    parser.add_argument("--engine-only", action="store_true",
                        help="only the GEMM engine: fast path vs cocotb vs Icarus")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.repeats < 1 or args.jobs < 1:
        parser.error(f"--repeats and --jobs must be ≥ 1; got {args.repeats}, {args.jobs}")
    sizes = [int(s) for s in args.sizes.split(",")]
    command = shlex.join([".venv/bin/python", "benchmarks/bench_sim_speed.py", *sys.argv[1:]])
    for sim in ("icarus", "verilator"):
        if not simulator_available(sim):
            raise SystemExit(f"{sim} is not installed")
    texts = []
    with tempfile.TemporaryDirectory(prefix="qmac_bench_") as root:
        if not args.cached:
            os.environ["QMAC_SIM_BUILD"] = root
        os.environ.pop("WAVES", None)
        if not args.engine_only:
            results = measure(sizes, ("icarus", "verilator"), args.repeats, args.jobs)
            texts.append(markdown(results, command, args.repeats, args.jobs))
        texts.append(engine_markdown(measure_engine(), command))
    text = "\n\n".join(texts)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
