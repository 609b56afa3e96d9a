"""The ``qmac`` command line."""

import argparse
import sys
from fractions import Fraction

from . import __version__


def _cmd_quant_multiplier(args):
    from golden.tflite import multiply_by_quantized_multiplier, quantize_multiplier

    real = args.real
    m0, shift = (int(v) for v in quantize_multiplier(real))
    represented = Fraction(m0) * Fraction(2) ** (shift - 31)
    error = represented - Fraction(real)
    print(f"real multiplier M  = {real!r}")
    print(f"M0                 = {m0}  (int32, M0/2^31 = {float(Fraction(m0, 1 << 31)):.12f})")
    print(f"shift              = {shift}  (TFLite convention: M = M0 · 2^(shift − 31))")
    print(f"represented value  = {float(represented):.17g}")
    print(f"absolute error     = {float(error):.3e}")
    if real:
        print(f"relative error     = {float(error / Fraction(real)):.3e}")
    for value in args.example:
        for rounding in ("double", "single"):
            result = int(multiply_by_quantized_multiplier(value, m0, shift, rounding=rounding))
            print(f"{value} × M            = {result}  (rounding={rounding}; exact "
                  f"{float(Fraction(value) * represented):.6f})")
    return 0


def _config_from_args(args):
    from hw.config import ArrayConfig

    values = {}
    if args.config:
        values.update(ArrayConfig.load(args.config).to_dict())
    overrides = {
        "rows": args.rows, "cols": args.cols, "kmax": args.kmax, "name": args.name,
        "dataflow": args.dataflow, "weight_bits": args.weight_bits,
    }
    if args.bits is not None:
        overrides.update(act_bits=args.bits, out_bits=args.bits)
        if args.weight_bits is None:
            overrides["weight_bits"] = args.bits
    values.update({key: value for key, value in overrides.items() if value is not None})
    return ArrayConfig.from_dict(values)


def _add_array_options(parser):
    parser.add_argument("--rows", type=int)
    parser.add_argument("--cols", type=int)
    parser.add_argument("--bits", type=int, help="activation (and by default weight/output) bits")
    parser.add_argument("--kmax", type=int, help="deepest dot product of one pass")
    parser.add_argument("--weight-bits", type=int)
    parser.add_argument("--dataflow", choices=["os", "ws", "output_stationary",
                                               "weight_stationary"])
    parser.add_argument("--name", help="top-level module name")
    parser.add_argument("--config", help="TOML file of ArrayConfig parameters "
                                         "(options given on the command line win)")


def _cmd_generate(args):
    from hw.generate import generate

    config = _config_from_args(args)
    paths = generate(config, args.output)
    for kind, path in paths.items():
        print(f"{kind:9} {path}")
    return 0


def _cmd_lint_verilog(args):
    import tempfile

    from hw.config import ArrayConfig
    from hw.generate import generate, lint

    configs = [ArrayConfig(rows=4, cols=4, dataflow=dataflow, per_channel=True,
                           name=f"lint_{dataflow}")
               for dataflow in ("output_stationary", "weight_stationary")]
    failed = 0
    with tempfile.TemporaryDirectory() as directory:
        for config in configs:
            ok, messages = lint(generate(config, directory)["verilog"], top=config.name)
            print(f"{config.name}: {'clean' if ok else 'FAILED'}")
            if not ok:
                print(messages)
                failed += 1
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="qmac", description=__doc__)
    parser.add_argument("--version", action="version", version=f"qmac {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("quant-multiplier",
                            help="int32 fixed-point multiplier (M0, shift) of a real scale")
    p.add_argument("real", type=float, help="real multiplier M, e.g. 0.01")
    p.add_argument("--example", type=int, nargs="*", default=[1234],
                   help="accumulator values to requantize with M (default: 1234)")
    p.set_defaults(handler=_cmd_quant_multiplier)

    p = commands.add_parser("generate", help="Verilog, RTLIL and manifest of a MAC array")
    _add_array_options(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(handler=_cmd_generate)

    p = commands.add_parser("lint-verilog", help="verilator --lint-only on generated Verilog")
    p.set_defaults(handler=_cmd_lint_verilog)

    from boards.cli import add_commands  # build, sweep, asic

    add_commands(commands)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, TypeError) as error:
        print(f"qmac {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
