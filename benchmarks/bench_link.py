"""The UART link's throughput with and without faults, and the fault campaign's figures.

Run: .venv/bin/python benchmarks/bench_link.py [--runs 4] [--markdown FILE]

Every run sends one job (a 2×2 MacArray's K ≤ 8 pass, or a random ≤ 4×8×4 GEMM on a 2×2
GemmEngine) through the host driver, the bit-level serial model and the bridge's RTL in
Amaranth's simulator (tests/boards/test_link_faults.py's ``campaign_run``), on a clean line
and on a noisy one (per character and direction: 1 % flipped bit, 0.5 % lost, 0.5 % repeated,
0.5 % glitch). Throughput is the useful payload (parameters, input beats and result rows,
without framing)
per second at 115200 baud, from the simulated bit times; a wrong result stops the benchmark.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "boards"))

from test_link_faults import NOISY, campaign_run  # noqa: E402

from boards.uart_sim import SIM_DIVISOR, LineFaults  # noqa: E402

BAUD = 115200


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    rows = ["| design | line | runs | exact | errors | frames | retransmissions | faults "
            "injected | wrong results | throughput (B/s at 115200) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("array", "engine"):
        for line, faults in (("clean", LineFaults()), ("noisy", NOISY)):
            exact = errors = frames = retransmissions = injected = 0
            useful = bit_times = 0
            for seed in range(args.runs):
                outcome, stats, counts, cycles = campaign_run(kind, seed, faults=faults)
                exact += outcome == "exact"
                errors += outcome != "exact"
                frames += stats.frames
                retransmissions += stats.retransmissions
                injected += counts.total
                useful += stats.payload_bytes
                bit_times += cycles / SIM_DIVISOR
            throughput = useful / (bit_times / BAUD)
            row = (f"| 2×2 {kind} | {line} | {args.runs} | {exact} | {errors} | {frames} | "
                   f"{retransmissions} | {injected} | 0 | {throughput:.0f} |")
            print(row, flush=True)
            rows.append(row)
    if args.markdown:
        args.markdown.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
