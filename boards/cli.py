"""``qmac build``, ``qmac sweep`` and ``qmac asic``: the board flow on the command line.

:func:`add_commands` registers the three commands on an ``argparse`` subparsers object; each
sets ``handler`` (called with the parsed arguments, returns the exit status), as ``qmac.cli``
expects. :func:`main` runs them on their own (``python -m boards.cli build ...``).
"""

import argparse
import json
import sys

from qmac.cli_common import Parser, check_output_dir, removed_on_error, run
from qmac.cli_common import add_array_options as _array_options
from qmac.cli_common import array_config as _config

__all__ = ["add_commands", "main"]

#: The GEMM engine's buffer limits of a board build when neither the options nor the board
#: (``engine_limits``) set them.
BOARD_ENGINE_LIMITS = {"max_k": 256, "max_n": 64, "max_m": 64}


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _dsp(text):
    if text in ("auto", "none"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'auto', 'none' or a number of DSP primitives, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def _tool_options(parser):
    parser.add_argument("--tools", choices=["yowasp", "system"], default="yowasp",
                        help="YoWASP tools from PyPI (default) or yosys/nextpnr from PATH")
    parser.add_argument("--clock-mhz", type=float,
                        help="timing constraint for nextpnr (default: the board clock)")
    parser.add_argument("--dsp", type=_dsp, default="auto",
                        help="DSP primitives to use: auto (all), none, or a number")


def _list_boards():
    from .registry import BOARDS

    print(f"{'board':<12} {'device':<20} {'clock':>8} {'DSPs':>5}  description")
    for board in BOARDS.values():
        line = (f"{board.name:<12} {board.device:<20} {board.clock_mhz:>5g} MHz "
                f"{board.dsp_available:>5}  {board.description}")
        if not board.supported:
            line += " (not buildable: see `qmac build --list --verbose`)"
        print(line)
    return 0


def _check_board_options(board, args):
    """What the flow would refuse only after it has made the output folder: the clock
    constraint (the board's platform checks it) and a UART for ``--link uart``."""
    platform = board.make_platform(args.clock_mhz)
    if args.link == "uart" and ("uart", 0) not in platform.resources:
        raise ValueError(f"--link must be 'bist' on {board.name}: it has no UART for "
                         "--link uart")


def _cmd_build(args):
    from .registry import BOARDS, get_board

    if args.list:
        if args.verbose:
            _list_boards()
            for board in BOARDS.values():
                if not board.supported:
                    print(f"\n{board.name}: {board.reason}")
            return 0
        return _list_boards()
    missing = [option for option, value in (("--board", args.board), ("-o", args.output))
               if value is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} required (or --list)")
    board = get_board(args.board)
    if args.config is None and (args.rows is None or args.cols is None):
        raise ValueError("--rows and --cols are required unless --config gives them")
    config = _config(args)
    if args.engine:
        from hw.engine import EngineConfig

        # unset limits: the board's (they fit its device beside a 4×4 array), else
        # BOARD_ENGINE_LIMITS
        limits = {**BOARD_ENGINE_LIMITS, **(board.engine_limits or {}),
                  **{name: value for name, value in (("max_k", args.max_k),
                                                     ("max_n", args.max_n),
                                                     ("max_m", args.max_m))
                     if value is not None}}
        config = EngineConfig(config, **limits)
    _check_board_options(board, args)
    check_output_dir("-o", args.output)
    from .flow import BuildError, build, format_report

    try:
        with removed_on_error(args.output):
            report = build(board, config, args.output, tools=args.tools,
                           clock_mhz=args.clock_mhz, dsp=args.dsp,
                           place_and_route=not args.synth_only, link=args.link)
    except BuildError as error:
        print(f"qmac build: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _cmd_sweep(args):
    from .sweep import parse_options, parse_sizes, sweep, sweep_table

    sizes = parse_sizes(args.sizes) if args.sizes else None
    base = _config(args, rows=1, cols=1)
    options = parse_options(args.option)
    output = args.output or f"build/sweep-{args.board.replace(',', '-')}"
    try:
        result = sweep(args.board, output, sizes=sizes, base=base, options=options,
                       tools=args.tools, clock_mhz=args.clock_mhz, dsp=args.dsp,
                       keep_going=args.keep_going, workers=args.workers,
                       scheduler=args.scheduler)
    except ConnectionError as error:
        print(f"qmac sweep: {error}", file=sys.stderr)
        return 1
    print(sweep_table(result))
    print()
    for kind, path in result["files"].items():
        print(f"{kind:<8} {path}")
    failed = [row for row in result["rows"] if row["status"] == "failed"]
    return 1 if failed else 0


def _cmd_asic(args):
    from .asic import asic, format_asic_report
    from .flow import BuildError

    if args.config is None and (args.rows is None or args.cols is None):
        raise ValueError("--rows and --cols are required unless --config gives them")
    config = _config(args)
    check_output_dir("-o", args.output)
    try:
        with removed_on_error(args.output):
            report = asic(config, args.output, tools=args.tools, abc=args.abc)
    except BuildError as error:
        print(f"qmac asic: {error}", file=sys.stderr)
        return 1
    print(format_asic_report(report))
    return 0


def add_commands(subparsers):
    """Register ``build``, ``sweep`` and ``asic`` on ``subparsers``."""
    p = subparsers.add_parser("build", help="bitstream with a self test for an FPGA board")
    p.add_argument("--board", help="target board (see --list)")
    p.add_argument("--list", action="store_true", help="list the boards and exit")
    p.add_argument("--verbose", action="store_true", help="with --list: why a board is missing")
    _array_options(p)
    _tool_options(p)
    p.add_argument("--synth-only", action="store_true",
                   help="stop after synthesis (cell counts, no bitstream)")
    p.add_argument("--json", action="store_true", help="also print the report as JSON")
    p.add_argument("--link", choices=["bist", "uart"], default="bist",
                   help="board top: built-in self test with LEDs, or the UART bridge")
    p.add_argument("--engine", action="store_true",
                   help="the GEMM engine (docs/engine.md) behind the UART (needs --link uart)")
    p.add_argument("--max-k", type=int,
                   help="engine: deepest K (default: the board's limit, else 256)")
    p.add_argument("--max-n", type=int,
                   help="engine: most channels (default: the board's limit, else 64)")
    p.add_argument("--max-m", type=int,
                   help="engine, weight-stationary: most rows of X (default: the board's "
                        "limit, else 64)")
    p.add_argument("-o", "--output", help="output directory")
    p.set_defaults(handler=_cmd_build)

    p = subparsers.add_parser("sweep", help="build array sizes × boards × options on Dask")
    p.add_argument("--board", "--boards", dest="board", required=True,
                   help="target board(s), comma-separated (see qmac build --list)")
    p.add_argument("--sizes", help="comma-separated sizes, e.g. 2x2,4x4,8x8 "
                                   "(default: each board's list)")
    p.add_argument("--option", action="append", metavar="KEY=V1,V2",
                   help="also sweep an ArrayConfig parameter over these values "
                        "(repeatable: every combination is built)")
    p.add_argument("--keep-going", action="store_true",
                   help="build every size even after one does not fit")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=_positive,
                         help="Dask worker processes on this machine (default: the cores)")
    cluster.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                         help="submit the builds to a running Dask scheduler instead")
    _array_options(p, size=False)
    _tool_options(p)
    p.add_argument("-o", "--output",
                   help="output directory (default build/sweep-BOARD[-BOARD...])")
    p.set_defaults(handler=_cmd_sweep)

    p = subparsers.add_parser("asic", help="technology-independent synthesis and size estimate")
    _array_options(p)
    p.add_argument("--tools", choices=["yowasp", "system"], default="yowasp")
    p.add_argument("--abc", action="store_true",
                   help="optimize gates with ABC (slow in the WebAssembly Yosys)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(handler=_cmd_asic)


def main(argv=None):
    parser = Parser(prog="qmac", description="qmac board flow")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(commands)
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
