"""The ``qmac`` command line."""

import math
import sys
from fractions import Fraction

from . import __version__
from .cli_common import (
    Parser,
    add_array_options,
    array_config,
    check_output_dir,
    check_output_file,
    removed_on_error,
    run,
)


def _cmd_quant_multiplier(args):
    from golden.tflite import (
        INT32_MAX,
        INT32_MIN,
        multiply_by_quantized_multiplier,
        quantize_multiplier,
    )
    from hw.config import ArrayConfig

    real = args.real
    array = ArrayConfig(**({} if args.max_left_shift is None else
                           {"max_left_shift": args.max_left_shift}))
    shift_lo, shift_hi = array.shift_range
    # M0 in [2^30, 2^31) at shift in [shift_lo, shift_hi]: the nonzero multipliers an array
    # holds (smaller ones flush to M0 = 0 in TFLite's QuantizeMultiplier).
    lo, hi = shift_lo - 1, shift_hi      # exponents: M0 ≥ 2^30 at shift_lo, M0 < 2^31 at hi
    allowed = (f"0 or in [2^{lo} ≈ {2.0 ** lo:.4g}, 2^{hi} = {2 ** hi}) (M0·2^(shift − 31) "
               f"with shift in [{shift_lo}, {shift_hi}], --max-left-shift "
               f"{array.max_left_shift})")
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"real multiplier M must be {allowed}, not {real!r}")
    m0, shift = (int(v) for v in quantize_multiplier(real))
    if real and m0 == 0:
        raise ValueError(f"real multiplier M must be {allowed}, not {real!r}: it flushes to "
                         "M0 = 0")
    if shift > shift_hi:
        raise ValueError(f"real multiplier M must be {allowed}, not {real!r}: it needs shift "
                         f"{shift} (--max-left-shift {shift})")
    for value in args.example:
        if not INT32_MIN <= value <= INT32_MAX:
            raise ValueError(f"--example must be in [{INT32_MIN}, {INT32_MAX}] (an int32 "
                             f"accumulator), not {value}")
    represented = Fraction(m0) * Fraction(2) ** (shift - 31)
    error = represented - Fraction(real)
    lines = [
        f"real multiplier M  = {real!r}",
        f"M0                 = {m0}  (int32, M0/2^31 = {float(Fraction(m0, 1 << 31)):.12f})",
        f"shift              = {shift}  (TFLite convention: M = M0 · 2^(shift − 31))",
        f"represented value  = {float(represented):.17g}",
        f"absolute error     = {float(error):.3e}",
    ]
    if real:
        lines.append(f"relative error     = {float(error / Fraction(real)):.3e}")
    for value in args.example:   # computed in full before anything is printed
        for rounding in ("double", "single"):
            result = int(multiply_by_quantized_multiplier(value, m0, shift, rounding=rounding))
            lines.append(f"{value} × M            = {result}  (rounding={rounding}; exact "
                         f"{float(Fraction(value) * represented):.6f})")
    print("\n".join(lines))
    return 0


def _cmd_generate(args):
    from hw.generate import generate, generate_engine

    config = array_config(args)
    if args.engine:
        from hw.engine import EngineConfig

        config = EngineConfig(config, **{name: value for name, value in
                                         (("max_k", args.max_k), ("max_n", args.max_n))
                                         if value is not None})
    else:
        given = [option for option, value in (("--max-k", args.max_k), ("--max-n", args.max_n))
                 if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} size the GEMM engine: add --engine")
    check_output_dir("-o", args.output)
    with removed_on_error(args.output):
        if args.engine:
            paths = generate_engine(config, args.output)
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
    """The arrays of ``--inputs``: an .npz archive (numpy.savez) with :data:`RUN_INPUTS`'
    names. Their values are checked by :func:`sim.gemm.gemm`."""
    import zipfile
    import zlib

    import numpy as np

    # zipfile raises NotImplementedError or RuntimeError for corrupt compression or
    # encryption flags.
    unreadable = (ValueError, EOFError, OSError, NotImplementedError, RuntimeError,
                  zipfile.BadZipFile, zlib.error)
    what = "an .npz archive of named arrays (numpy.savez)"
    try:
        file = open(path, "rb")
    except OSError as error:
        raise ValueError(f"--inputs {path}: {error.strerror or error}") from None
    with file:
        magic = file.read(len(np.lib.format.MAGIC_PREFIX))
        file.seek(0)
        if magic == np.lib.format.MAGIC_PREFIX:
            raise ValueError(f"--inputs must be {what}, not the single array in {path}")
        if not magic.startswith(b"PK"):
            raise ValueError(f"--inputs must be {what}; {path} is not a zip archive")
        try:
            saved = np.load(file)
            names = set(saved.files)
        except unreadable as error:
            raise ValueError(f"--inputs must be {what}; {path} is not ({error})") from None
        missing = sorted(name for name, required in RUN_INPUTS.items()
                         if required and name not in names)
        unknown = sorted(names - set(RUN_INPUTS))
        if missing or unknown:
            raise ValueError(
                f"--inputs {path}: " + "; ".join(
                    ([f"missing {', '.join(missing)}"] if missing else []) +
                    ([f"unknown {', '.join(unknown)}"] if unknown else [])) +
                f" (allowed: {', '.join(RUN_INPUTS)})")
        values = {}
        for name in sorted(names):
            try:
                values[name] = saved[name]
            except unreadable as error:
                raise ValueError(f"{name} in --inputs {path} is not a readable array "
                                 f"({error})") from None
            if not isinstance(values[name], np.ndarray):
                raise ValueError(f"{name} in --inputs {path} is not a .npy array")
    if "weight_zero_point" in values and values["weight_zero_point"].ndim:
        raise ValueError("weight_zero_point must be a scalar: per-channel weights are "
                         "symmetric (zero point 0) in TFLite")
    return values


def _cmd_run(args):
    import time

    import numpy as np

    from sim.gemm import gemm

    config = array_config(args)
    check_output_file("--out", args.out, ".npz")
    values = _load_run_inputs(args.inputs)
    start = time.perf_counter()
    # gemm() checks every value and shape before it builds or simulates anything.
    x, w = values.pop("x"), values.pop("w")
    result = gemm(config, x, w, sim=args.sim, stall=args.stall, check=False, **values)
    seconds = time.perf_counter() - start
    expected = result.expected
    with removed_on_error(args.out), open(args.out, "wb") as file:
        np.savez(file, y=result.y, cycles=np.int64(result.cycles))
    (m, k), n = x.shape, w.shape[0]
    print(f"{m}×{k}×{n} GEMM on a {config.rows}×{config.cols} engine "
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
    parser = Parser(prog="qmac", description=__doc__)
    parser.add_argument("--version", action="version", version=f"qmac {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("quant-multiplier",
                            help="int32 fixed-point multiplier (M0, shift) of a real scale")
    p.add_argument("real", type=float, help="real multiplier M ≥ 0, e.g. 0.01")
    p.add_argument("--example", type=int, nargs="*", default=[1234],
                   help="int32 accumulator values to requantize with M (default: 1234)")
    p.add_argument("--max-left-shift", type=int,
                   help="the array's max_left_shift (ArrayConfig's default: 7, i.e. M < 128)")
    p.set_defaults(handler=_cmd_quant_multiplier)

    p = commands.add_parser("generate", help="Verilog, RTLIL and manifest of a MAC array")
    add_array_options(p, name=True)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--engine", action="store_true",
                   help="the GEMM engine (buffers, sequencer, docs/engine.md) around the array")
    p.add_argument("--max-k", type=int, help="engine: deepest K (default 256)")
    p.add_argument("--max-n", type=int, help="engine: most output channels (default 64)")
    p.set_defaults(handler=_cmd_generate)

    p = commands.add_parser("lint-verilog", help="verilator --lint-only on generated Verilog")
    p.set_defaults(handler=_cmd_lint_verilog)

    p = commands.add_parser("run", help="one quantized GEMM on the simulated engine, checked "
                                        "against golden/ (in.npz → out.npz)")
    add_array_options(p, name=True)
    p.add_argument("--sim", choices=["amaranth", "icarus", "verilator"], default="icarus",
                   help="simulator (default icarus; amaranth needs no Verilog tools)")
    p.add_argument("--inputs", required=True,
                   help=f"in.npz with {', '.join(RUN_INPUTS)} (x [B, K], w [N, K]; "
                        "multiplier/shift scalars or per-channel length N)")
    p.add_argument("--out", required=True, help="out.npz: y [B, N] and cycles")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of an idle cycle on every stream, for testing flow "
                        "control (at most sim.streams.MAX_STALL)")
    p.set_defaults(handler=_cmd_run)

    from boards.cli import add_commands  # build, sweep, asic

    add_commands(commands)
    from .lab_cli import add_commands as add_lab_commands  # lab, waves

    add_lab_commands(commands)
    from .model_cli import add_commands as add_model_commands  # model inspect, model run

    add_model_commands(commands)
    from .paper_cli import add_commands as add_paper_commands  # paper run, paper reach

    add_paper_commands(commands)
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
