"""What a PE costs on iCE40 and ECP5: the portable PE (Yosys maps its multiplier) against the
family's DSP variant (hw/dsp_pe.py).

Run: .venv/bin/python benchmarks/bench_pe_area.py [--size 4] [--markdown F]

Yosys (YoWASP) ``synth_ice40 -dsp`` and ``synth_ecp5`` of the bare grid (``hw.systolic``, no
requantizer, no streams), out of context, int8 with kmax 256 (24-bit accumulators) for the
output-stationary grid; every PE of the size×size grid is the variant (``dsp_pes`` = all PEs,
the device limit does not apply out of context). Per PE = grid total / PEs, so the skew
registers and the readout are shared out over the PEs (identical for both columns).
"""

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from boards.flow import parse_yosys_stat, tool_environment
from hw.config import ArrayConfig
from hw.systolic import OutputStationaryArray, WeightStationaryArray

#: Platform of each family, and the synthesis of the portable and of the variant grid. The
#: variant has no ``$mul`` left, and synth_ice40's ``-dsp`` (ice40_dsp) would re-pack the
#: SB_MAC16s it finds as if they were bare multipliers, so it does not run there (as in
#: ``qmac build``, whose script runs ice40_dsp on the planned multipliers only).
FAMILIES = {
    "ice40": (ICEBreakerPlatform, "synth_ice40 -dsp", "synth_ice40"),
    "ecp5": (ULX3S_85F_Platform, "synth_ecp5", "synth_ecp5"),
}
#: Reported columns: (heading, cell types summed).
COLUMNS = {
    "ice40": (("LUT4", ("SB_LUT4",)), ("carry", ("SB_CARRY",)),
              ("FF", ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFER", "SB_DFFESR", "SB_DFFSS",
                      "SB_DFFESS", "SB_DFFR", "SB_DFFS", "SB_DFFES")),
              ("DSP", ("SB_MAC16",))),
    "ecp5": (("LUT4", ("LUT4",)), ("CCU2C", ("CCU2C",)), ("FF", ("TRELLIS_FF",)),
             ("DSP", ("MULT18X18D",))),
}


def synthesize(directory, grid, platform, command):
    """Cell counts of ``grid`` elaborated for ``platform`` and synthesized by ``command``."""
    directory = Path(directory)
    (directory / "grid.il").write_text(rtlil.convert(grid, name="top", platform=platform,
                                                     emit_src=False))
    env, executables = tool_environment("yowasp")
    subprocess.run([executables["yosys"], "-q", "-p",
                    f"read_rtlil grid.il; {command} -top top; "
                    "tee -q -o grid.stat.json stat -json"],
                   cwd=directory, env=env, check=True, capture_output=True, text=True)
    return parse_yosys_stat(directory / "grid.stat.json")


def measure(size):
    rows = []
    configs = {
        "os": ArrayConfig(rows=size, cols=size, kmax=256),
        "ws": ArrayConfig(rows=size, cols=size, dataflow="ws"),
    }
    grids = {"os": OutputStationaryArray, "ws": WeightStationaryArray}
    with tempfile.TemporaryDirectory() as directory:
        for family, (platform, portable_synth, variant_synth) in FAMILIES.items():
            for dataflow, config in configs.items():
                for pe, grid, target, command in (
                        ("portable", grids[dataflow](config), None, portable_synth),
                        ("variant", grids[dataflow](config, dsp_pes=size * size), platform(),
                         variant_synth)):
                    cells = synthesize(directory, grid, target, command)
                    counts = {heading: sum(cells.get(kind, 0) for kind in kinds)
                              for heading, kinds in COLUMNS[family]}
                    rows.append((family, dataflow, pe, counts, size * size))
                    print(rows[-1], file=sys.stderr, flush=True)
    return rows


def markdown(rows, command):
    lines = [f"`{command}` (Yosys, out of context, bare grid, one run); per PE = grid / PEs:",
             ""]
    for family in FAMILIES:
        headings = [heading for heading, _ in COLUMNS[family]]
        lines += [f"| {family} | PE | " + " | ".join(f"{h} (grid)" for h in headings) + " | " +
                  " | ".join(f"{h} / PE" for h in headings) + " |",
                  "|---|---|" + "---:|" * (2 * len(headings))]
        for row_family, dataflow, pe, counts, pes in rows:
            if row_family == family:
                lines.append(f"| {dataflow} | {pe} | " +
                             " | ".join(f"{counts[h]:,}" for h in headings) + " | " +
                             " | ".join(f"{counts[h] / pes:.1f}" for h in headings) + " |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "benchmarks/bench_pe_area.py", *sys.argv[1:]])
    text = markdown(measure(args.size), command)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
