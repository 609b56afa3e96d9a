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
    from hw.generate import generate, generate_engine

    config = _config_from_args(args)
    if args.engine:
        from hw.engine import EngineConfig

        paths = generate_engine(EngineConfig(config, max_k=args.max_k, max_n=args.max_n),
                                args.output)
    else:
        paths = generate(config, args.output)
    for kind, path in paths.items():
        print(f"{kind:9} {path}")
    return 0


def _cmd_lint_verilog(args):
    import tempfile

    from hw.config import ArrayConfig
    from hw.engine import EngineConfig
    from hw.generate import generate, generate_engine, lint

    configs = [ArrayConfig(rows=4, cols=4, dataflow=dataflow, per_channel=True,
                           name=f"lint_{dataflow}")
               for dataflow in ("output_stationary", "weight_stationary")]
    failed = 0
    with tempfile.TemporaryDirectory() as directory:
        tops = [(config.name, generate(config, directory)["verilog"]) for config in configs]
        for config in configs:
            engine = EngineConfig(config, max_k=256, max_n=64, max_m=64)
            tops.append((f"{config.name}_engine", generate_engine(engine, directory)["verilog"]))
        for name, verilog in tops:
            ok, messages = lint(verilog, top=name)
            print(f"{name}: {'clean' if ok else 'FAILED'}")
            if not ok:
                print(messages)
                failed += 1
    return 1 if failed else 0


#: in.npz of ``qmac run``: name → required
RUN_INPUTS = {"x": True, "w": True, "bias": False, "input_zero_point": False,
              "weight_zero_point": False, "output_zero_point": False, "multiplier": False,
              "shift": True, "act_min": False, "act_max": False}


def _load_run_inputs(path):
    import numpy as np

    with np.load(path) as saved:
        names = set(saved.files)
        missing = sorted(name for name, required in RUN_INPUTS.items()
                         if required and name not in names)
        unknown = sorted(names - set(RUN_INPUTS))
        if missing or unknown:
            raise ValueError(
                f"{path}: " + "; ".join(
                    ([f"missing {', '.join(missing)}"] if missing else []) +
                    ([f"unknown {', '.join(unknown)}"] if unknown else [])) +
                f" (allowed: {', '.join(RUN_INPUTS)})")
        values = {name: saved[name] for name in names}
    for name, value in values.items():
        if not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{name} in {path} must hold integers, not {value.dtype}")
    scalars = {name: int(values[name]) for name in
               ("input_zero_point", "weight_zero_point", "output_zero_point", "act_min",
                "act_max") if name in values}
    if "weight_zero_point" in values and values["weight_zero_point"].ndim:
        raise ValueError("weight_zero_point must be a scalar: per-channel weights are "
                         "symmetric (zero point 0) in TFLite")
    return values, scalars


def _cmd_run(args):
    import time

    from sim.gemm import gemm

    config = _config_from_args(args)
    values, scalars = _load_run_inputs(args.inputs)
    start = time.perf_counter()
    result = gemm(config, values["x"], values["w"], bias=values.get("bias"),
                  multiplier=values.get("multiplier"), shift=values["shift"],
                  sim=args.sim, stall=args.stall, check=False, **scalars)
    seconds = time.perf_counter() - start
    import numpy as np

    expected = result.expected
    np.savez(args.out, y=result.y, cycles=np.int64(result.cycles))
    m, k = result.y.shape[0], values["x"].shape[1]
    print(f"{m}×{k}×{result.y.shape[1]} GEMM on a {config.rows}×{config.cols} engine "
          f"({args.sim}, {seconds:.1f} s): {result.cycles} cycles, "
          f"{result.utilization:.1%} of the array's peak MAC rate")
    wrong = int((result.y != expected).sum())
    if wrong:
        print(f"MISMATCH: {wrong} of {expected.size} outputs differ from golden/",
              file=sys.stderr)
        return 1
    print(f"y matches golden/ bit for bit ({expected.size} outputs); wrote {args.out}")
    return 0


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
    p.add_argument("--engine", action="store_true",
                   help="the GEMM engine (buffers, sequencer, docs/engine.md) around the array")
    p.add_argument("--max-k", type=int, default=256, help="engine: deepest K (default 256)")
    p.add_argument("--max-n", type=int, default=64, help="engine: most output channels "
                                                        "(default 64)")
    p.set_defaults(handler=_cmd_generate)

    p = commands.add_parser("lint-verilog", help="verilator --lint-only on generated Verilog")
    p.set_defaults(handler=_cmd_lint_verilog)

    p = commands.add_parser("run", help="one quantized GEMM on the simulated engine, checked "
                                        "against golden/ (in.npz → out.npz)")
    _add_array_options(p)
    p.add_argument("--sim", choices=["amaranth", "icarus", "verilator"], default="icarus",
                   help="simulator (default icarus; amaranth needs no Verilog tools)")
    p.add_argument("--inputs", required=True,
                   help=f"in.npz with {', '.join(RUN_INPUTS)} (x [B, K], w [N, K]; "
                        "multiplier/shift scalars or per-channel length N)")
    p.add_argument("--out", required=True, help="out.npz: y [B, N] and cycles")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of an idle cycle on every stream (flow-control test)")
    p.set_defaults(handler=_cmd_run)

    from boards.cli import add_commands  # build, sweep, asic

    add_commands(commands)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"qmac {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
