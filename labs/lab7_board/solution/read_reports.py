"""Lab 7, step 3: a table of one or more ``qmac build`` reports, through your summarize().

Run from your lab folder: ``python read_reports.py build/ice/report.json [more …]``.
"""

import json
import sys

from board import summarize


def main(paths):
    print("| report | Fmax (MHz) | clock (MHz) | timing | logic | logic / PE | DSP | peak GMAC/s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for path in paths:
        with open(path) as file:
            s = summarize(json.load(file))
        used, available = s["dsp"]
        print(f"| {path} | {s['fmax_mhz']:.1f} | {s['clock_mhz']:.1f} | "
              f"{'pass' if s['timing_pass'] else 'FAIL'} | {s['logic_percent']:.1f} % | "
              f"{s['logic_per_pe']:.0f} | {used}/{available} | {s['peak_gmacs']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
