"""``qmac model``: run a user's int8 .tflite file on the simulated engine.

* ``qmac model inspect model.tflite`` — the graph as a table (op, shapes, scales, zero points,
  engine or host, the GEMMs a layer becomes, the accumulator width it needs) and the engine
  configuration that fits it (``--save-engine cfg.toml`` writes it).
* ``qmac model run model.tflite --input x.npy --out y.npy`` — GEMM-shaped layers on the
  simulated engine, the rest on the host in golden/, every layer compared with golden/ bit for
  bit; cycles and utilization per layer and in total. Exit status 0 only when every layer
  matched, 1 when one differed, 2 for bad input (a model qmac cannot run, a wrong input).

Bad input is refused before anything is built or simulated, in one line
(:mod:`qmac.cli_common`).
"""

import sys
import time

from .cli_common import BAD_INPUT, add_array_options, array_config, check_output_file

__all__ = ["add_commands"]


def _load_model(args):
    from golden.model import load

    return load(args.model, rounding=args.rounding)


def _array(args):
    from sim.model import DEFAULT_ARRAY

    given = any(getattr(args, name, None) is not None
                for name in ("rows", "cols", "bits", "weight_bits", "kmax", "dataflow",
                             "config"))
    if not given:
        return DEFAULT_ARRAY
    return array_config(args).replace(per_channel=True)


def _engine(args, model, batch):
    from hw.config import EngineConfig
    from sim.model import check_engine, fit_engine

    if args.engine:
        try:
            engine = EngineConfig.load(args.engine)
        except OSError as error:
            raise ValueError(f"--engine {args.engine}: {error.strerror or error}") from None
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"--engine {args.engine} is not an engine configuration: "
                             f"{error}") from None
        check_engine(model, engine, batch=batch, depthwise=args.depthwise)
        return engine
    return fit_engine(model, _array(args), batch=batch, depthwise=args.depthwise)


def _check_batch(batch):
    if batch < 1:
        raise ValueError(f"--batch must be ≥ 1, not {batch}")
    return batch


def _describe_engine(engine):
    a = engine.array
    return (f"{a.rows}×{a.cols} {a.dataflow.replace('_', '-')} array, int{a.act_bits} × "
            f"int{a.weight_bits}, rounding {a.rounding}, max_left_shift {a.max_left_shift}; "
            f"max_k {engine.max_k}, max_n {engine.max_n}, max_m {engine.max_m} "
            f"(partial sums {engine.partial_sum_bits} bits)")


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _cmd_inspect(args):
    from sim.model import task_shapes

    batch = _check_batch(args.batch)
    model = _load_model(args)
    engine = _engine(args, model, batch)
    shapes = task_shapes(model, batch=batch, array=engine.array, depthwise=args.depthwise)
    macs = model.macs(batch)
    rows = []
    for layer in model.layers:
        ins = " + ".join(model.tensors[i].describe() for i in layer.inputs)
        out = model.tensors[layer.output].describe()
        if layer.on_engine:
            g = layer.gemm
            tasks = shapes[layer.index]
            (m, k, n), count = tasks[0], len(tasks)
            gemms = f"{count}× {m}×{k}×{n}" if count > 1 else f"{m}×{k}×{n}"
            worst, needed = g.accumulator_bits()
            where = "engine"
            detail = (f"K={g.depth} acc {needed}/{worst} bits, shift {int(g.shift.min())}.."
                      f"{int(g.shift.max())}, {macs[layer.index]} MACs")
        else:
            where, gemms, detail = "host", "", ""
        rows.append((layer.index, layer.op, ins, out, where, gemms, detail))
    print(f"{args.model}: {len(model.layers)} operators, input "
          f"{model.input_info.describe()}, output {model.output_info.describe()}")
    print(_table(rows, ("#", "op", "input", "output", "runs on", "GEMMs M×K×N",
                        "depth, accumulator (this layer/int8 bound), shifts, MACs")))
    print(f"engine that fits (batch {batch}, depthwise {args.depthwise}): "
          f"{_describe_engine(engine)}")
    if args.save_engine:
        check_output_file("--save-engine", args.save_engine, ".toml")
        engine.save(args.save_engine)
        print(f"wrote {args.save_engine}")
    return 0


def _load_input(path):
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except OSError as error:
        raise ValueError(f"--input {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ValueError(f"--input {path} is not a .npy array: {error}") from None
    if not isinstance(x, np.ndarray):
        raise ValueError(f"--input {path} must be one .npy array, not an archive")
    return x


def _cmd_run(args):
    import numpy as np

    from sim.gemm import SIMULATORS
    from sim.model import run_model

    if args.sim not in SIMULATORS:
        raise ValueError(f"--sim must be one of {', '.join(SIMULATORS)}, not {args.sim!r}")
    check_output_file("--out", args.out, ".npy")
    model = _load_model(args)
    x = model.check_input(_load_input(args.input))
    engine = _engine(args, model, x.shape[0])
    print(f"{args.model}: {len(model.layers)} operators, batch {x.shape[0]}, {args.sim} on a "
          f"{_describe_engine(engine)}", flush=True)
    grid = engine.array.rows * engine.array.cols
    rows = []

    def progress(record):
        where = record.where
        if record.where == "engine":
            figures = (f"{record.commands} commands, {record.cycles} cycles, "
                       f"{record.utilization:.1%} utilization "
                       f"({record.array_busy:.1%} with the lowering's zeros)")
        else:
            figures = "golden/"
        verdict = "matches golden" if record.matched else f"MISMATCH ({record.mismatches})"
        print(f"[{len(rows) + 1}/{len(model.layers)}] {record.index} {record.op} → "
              f"{list(record.shape)} on the {where}: {figures}, {verdict} "
              f"({record.seconds:.1f} s)", flush=True)
        rows.append(record)

    start = time.perf_counter()
    result = run_model(model, x, engine=engine, sim=args.sim, depthwise=args.depthwise,
                       stall=args.stall, progress=progress)
    seconds = time.perf_counter() - start
    np.save(args.out, result.y.astype(np.int8))
    by_op = {}
    for record in result.layers:
        if record.where == "engine":
            kind = record.op
            cycles, macs = by_op.get(kind, (0, 0))
            by_op[kind] = (cycles + record.cycles, macs + record.macs)
    for kind, (cycles, macs) in by_op.items():
        print(f"  {kind}: {macs} MACs in {cycles} cycles, "
              f"{macs / (grid * cycles) if cycles else 0:.1%} utilization")
    print(f"total: {result.macs} MACs in {result.cycles} engine cycles, "
          f"{result.utilization:.1%} utilization, {seconds:.1f} s wall; wrote {args.out}")
    wrong = [r for r in result.layers if not r.matched]
    if wrong:
        print(f"MISMATCH in {len(wrong)} layers: "
              f"{', '.join(f'{r.index} {r.op}' for r in wrong)}", file=sys.stderr)
        return 1
    print(f"every layer matches golden/ bit for bit ({len(result.layers)} layers)")
    return 0


def _model_help(parser):
    def handler(args):
        parser.print_help(sys.stderr)
        return BAD_INPUT
    return handler


def _common(p):
    p.add_argument("model", help="an int8 .tflite file (full-integer quantization)")
    add_array_options(p)
    p.add_argument("--engine", metavar="TOML",
                   help="EngineConfig file (default: the engine that fits the model)")
    p.add_argument("--depthwise", choices=["toeplitz", "per_channel"], default="toeplitz",
                   help="DEPTHWISE_CONV_2D lowering (default toeplitz, docs/models.md)")
    p.add_argument("--rounding", default="double",
                   help="requantization of the GEMM layers, as the deployment rounds: double "
                        "(TFLite's reference kernels, TFLite Micro; default), single "
                        "(TFLITE_SINGLE_ROUNDING builds), double_half_up (TFLite's optimized "
                        "x86 kernels), fp32 (XNNPACK's int8 kernels); the last two are "
                        "golden/ only, no hardware builds them")


def add_commands(subparsers):
    """Register ``model inspect`` and ``model run`` on ``subparsers``."""
    model = subparsers.add_parser("model", help="inspect or run an int8 .tflite model")
    model.set_defaults(handler=_model_help(model))
    commands = model.add_subparsers(dest="model_command", metavar="COMMAND")

    p = commands.add_parser("inspect", help="the graph, what runs where, the engine that fits")
    _common(p)
    p.add_argument("--batch", type=int, default=1, help="batch the engine must take "
                                                        "(default 1)")
    p.add_argument("--save-engine", metavar="TOML", help="write the fitting EngineConfig")
    p.set_defaults(handler=_cmd_inspect)

    p = commands.add_parser("run", help="run the model on the simulated engine, every layer "
                                        "checked against golden/")
    _common(p)
    p.add_argument("--input", required=True,
                   help="x.npy: the model's int8 input tensor, batch first")
    p.add_argument("--out", required=True, help="y.npy: the model's int8 output")
    p.add_argument("--sim", default="verilator",
                   help="verilator (default: the compiled harness), verilator-cocotb, icarus "
                        "or amaranth")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of an idle cycle on every stream (flow-control test)")
    p.set_defaults(handler=_cmd_run)
