"""The iCEBreaker's 4×4 int8 GEMM engine on the UART (issue 9): does it fit, at what clock, and
what a PE costs with two PEs per SB_MAC16.

Run: .venv/bin/python benchmarks/bench_icebreaker.py [--pe] [--board] [-o build/bench-ice]

``--pe``: the bare 4×4 output-stationary grid (``hw.systolic``, kmax 64 as in the engine:
22-bit accumulators), Yosys (YoWASP) out of context, every multiplier in LUTs (the portable
PE, ``synth_ice40`` without ``-dsp``) against every PE in a shared SB_MAC16 (``dsp_pes`` =
16 on the UP5K: 8 pairs, ``hw.dsp_pe.ICE40DualOutputStationaryPE``). Per PE = grid / 16,
the skew registers and readout shared out (the same in both).

``--board``: the whole board build, as ``qmac build --board icebreaker --rows 4 --cols 4
--bits 8 --kmax 64 --link uart --engine --clock-mhz 24`` (the iCEBreaker's engine limits
K ≤ 64, N ≤ 16, M ≤ 16, ``boards.registry``; ``--kmax`` changes the pass depth): logic
cells, flip-flops, EBR, SB_MAC16, Fmax of ``sync`` from nextpnr's report. One
place-and-route: about two minutes (docs/boards.md).
"""

import argparse
import sys
import tempfile
from pathlib import Path

from amaranth_boards.icebreaker import ICEBreakerPlatform

from boards.flow import build
from boards.registry import get_board
from hw.config import ArrayConfig, EngineConfig
from hw.systolic import OutputStationaryArray

sys.path.insert(0, str(Path(__file__).parent))
from bench_pe_area import COLUMNS, synthesize  # noqa: E402

#: The grid measured per PE (kmax 64: 22-bit accumulators).
ARRAY = ArrayConfig(rows=4, cols=4, kmax=64)
#: The engine's pass depth on the board (22-bit accumulators): a whole K ≤ 64 in one pass.
BOARD_KMAX = 64
#: Its sync clock, from the PLL (the issue's target: at least 24 MHz).
CLOCK_MHZ = 24


def measure_pe():
    """Rows (PE, {column: grid count}) of the bare grid, LUT multipliers vs shared blocks."""
    pes = ARRAY.rows * ARRAY.cols
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, grid, platform in (
                ("portable, multipliers in LUTs", OutputStationaryArray(ARRAY), None),
                ("two per SB_MAC16 (ICE40DualOutputStationaryPE)",
                 OutputStationaryArray(ARRAY, dsp_pes=pes), ICEBreakerPlatform())):
            cells = synthesize(directory, grid, platform, "synth_ice40")
            rows.append((name, {heading: sum(cells.get(kind, 0) for kind in kinds)
                                for heading, kinds in COLUMNS["ice40"]}))
            print(rows[-1], file=sys.stderr, flush=True)
    headings = [heading for heading, _ in COLUMNS["ice40"]]
    lines = ["| PE | " + " | ".join(f"{h} (grid)" for h in headings) + " | " +
             " | ".join(f"{h} / PE" for h in headings) + " |",
             "|---|" + "---:|" * (2 * len(headings))]
    lines += [f"| {name} | " + " | ".join(f"{counts[h]:,}" for h in headings) + " | " +
              " | ".join(f"{counts[h] / pes:.1f}" for h in headings) + " |"
              for name, counts in rows]
    return "\n".join(lines)


def measure_board(out_dir, kmax=BOARD_KMAX):
    """The board build's report, and a Markdown row of it."""
    limits = get_board("icebreaker").engine_limits
    array = ARRAY.replace(kmax=kmax)
    report = build("icebreaker", EngineConfig(array, **limits), out_dir, clock_mhz=CLOCK_MHZ,
                   link="uart", progress=lambda message: print(message, file=sys.stderr))
    resources = report["resources"]

    def used(kind):
        entry = resources.get(kind)
        return "–" if entry is None else f"{entry['used']:,} / {entry['available']:,}"

    row = (f"| 4×4 engine, UART, kmax {kmax}, K ≤ {limits['max_k']}, N ≤ {limits['max_n']} | "
           f"{report['sync_clock_mhz']:.1f} | {report['fmax_sync_mhz']:.1f} | "
           f"{used('logic')} | {used('ff')} | {used('bram')} | {used('dsp')} |")
    return report, row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pe", action="store_true", help="per-PE cost, out of context")
    parser.add_argument("--board", action="store_true", help="the whole board build")
    parser.add_argument("--kmax", type=int, default=BOARD_KMAX, help="the board's pass depth")
    parser.add_argument("-o", "--output", type=Path, default=Path("build/bench-icebreaker"))
    args = parser.parse_args()
    if not (args.pe or args.board):
        args.pe = args.board = True
    if args.pe:
        print(measure_pe())
    if args.board:
        report, row = measure_board(args.output, args.kmax)
        print("| design | clock MHz | Fmax MHz | logic cells | FF | EBR | SB_MAC16 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(row)
        print(f"timing {'passes' if report['timing_pass'] else 'FAILS'} at the sync clock")


if __name__ == "__main__":
    main()
