"""Simulation speed (cycles/s) of the generated array on Icarus and Verilator, and latency.

Run: python benchmarks/bench_sim_speed.py [--repeats 3]
Each configuration is built once per simulator (build time reported separately), then runs
an unstalled workload of back-to-back passes (K = kmax) `repeats` times; the table shows the
median simulated cycles per wall-clock second inside the bench (cocotb start-up excluded),
and the measured latency against the manifest's latency_cycles.
"""

import argparse
import statistics
import time

from hw.config import ArrayConfig
from sim.runner import array_design, run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=40, help="passes per run")
    args = parser.parse_args()
    rows = []
    for size in (4, 8):
        config = ArrayConfig(rows=size, cols=size, kmax=64, name=f"bench_{size}x{size}")
        for sim in ("icarus", "verilator"):
            start = time.perf_counter()
            first = run(array_design(config), "sim.tb_array",
                        {"seed": 0, "jobs": 1, "depth": 64}, sim=sim)
            first_seconds = time.perf_counter() - start
            speeds = []
            for repeat in range(args.repeats):
                report = run(array_design(config), "sim.tb_array",
                             {"seed": repeat, "jobs": args.jobs, "depth": 64}, sim=sim)
                speeds.append(report["cycles"] / report["wall_seconds"])
            accepted = first["accepted"]["operands"]
            latency = first["delivered"][0] - accepted[-1]
            rows.append((f"{size}×{size}", sim, report["cycles"], statistics.median(speeds),
                         first_seconds, latency, first["manifest_latency"]))
    print("| array | simulator | cycles per run | median cycles/s | first run incl. build s "
          "| measured latency | manifest latency |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for array, sim, cycles, speed, build, latency, manifest in rows:
        print(f"| {array} | {sim} | {cycles} | {speed:,.0f} | {build:.1f} | {latency} | "
              f"{manifest} |")
    by_key = {(r[0], r[1]): r[3] for r in rows}
    for size in ("4×4", "8×8"):
        ratio = by_key[(size, "verilator")] / by_key[(size, "icarus")]
        print(f"\n{size}: Verilator/Icarus speed ratio {ratio:.1f}×", end="")
    print()


if __name__ == "__main__":
    main()
