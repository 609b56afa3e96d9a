"""Whole .tflite models on the simulated engine: layers, MACs, cycles, utilization per op type
(depthwise separately, both lowerings), wall time of ``qmac model run``'s path per simulator.

Run: .venv/bin/python benchmarks/bench_models.py [--sims verilator,amaranth,icarus,
     verilator-cocotb] [--batch 450] [--small-batch 1] [--markdown FILE]

Every model of tests/models runs on one engine (the 8×8 int8 output-stationary array of
:data:`sim.model.DEFAULT_ARRAY`, buffers for all three models: one build per simulator, made
before timing) with the digits test split as input: ``--batch`` images on Verilator's
compiled harness (sim.fast), ``--small-batch`` on every simulator in ``--sims``. Wall time
is :func:`sim.model.run_model` end to end (lowering, simulation, golden/ check of every
layer); the output must equal the TFLite interpreter's recorded one. Utilization is the
layer's real MACs / (rows·cols·cycles); for depthwise layers the share of the array the
lowering keeps busy (its structural zeros counted) is given too.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from golden.model import load
from sim.model import DEFAULT_ARRAY, fit_engine, run_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models"
NAMES = ("digits_cnn", "mobilenet_style", "residual")
GRID = DEFAULT_ARRAY.rows * DEFAULT_ARRAY.cols


def shared_engine(models):
    """One EngineConfig that runs every model (the largest of what each needs)."""
    configs = [fit_engine(model, DEFAULT_ARRAY, depthwise=mapping)
               for model in models.values() for mapping in ("toeplitz", "per_channel")]
    best = configs[0]
    return best.replace(max_k=max(c.max_k for c in configs),
                        max_n=max(c.max_n for c in configs),
                        array=best.array.replace(
                            max_left_shift=max(c.array.max_left_shift for c in configs)))


def by_op(run):
    """{op type: (MACs, cycles, engine MACs)}; DEPTHWISE_CONV_2D apart from CONV_2D."""
    table = {}
    for layer in run.layers:
        if layer.where == "engine":
            macs, cycles, busy = table.get(layer.op, (0, 0, 0))
            table[layer.op] = (macs + layer.macs, cycles + layer.cycles,
                               busy + layer.gemm_macs)
    return table


def measure(name, model, engine, x, expected, sim, mapping):
    start = time.perf_counter()
    run = run_model(model, x, engine=engine, sim=sim, depthwise=mapping)
    seconds = time.perf_counter() - start
    if not run.matched or not np.array_equal(run.y, expected):
        raise SystemExit(f"{name} on {sim}: differs from golden/ or the interpreter")
    return run, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", default="verilator,amaranth,icarus,verilator-cocotb")
    parser.add_argument("--batch", type=int, default=450)
    parser.add_argument("--small-batch", type=int, default=1)
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args(argv)
    sims = args.sims.split(",")
    models = {name: load(MODELS / f"{name}.tflite") for name in NAMES}
    recorded = {name: np.load(MODELS / "data" / f"{name}_oracle.npz") for name in NAMES}
    engine = shared_engine(models)
    print(f"engine: {engine}", flush=True)
    for sim in sims:                                  # builds, before anything is timed
        start = time.perf_counter()
        measure("digits_cnn", models["digits_cnn"], engine, recorded["digits_cnn"]["input"][:1],
                recorded["digits_cnn"]["output"][:1], sim, "toeplitz")
        print(f"{sim}: build and first run {time.perf_counter() - start:.1f} s", flush=True)

    lines = []
    head = ("| model | depthwise lowering | batch | layers (engine/host) | MACs | cycles | "
            "utilization | per op type: utilization (depthwise: array busy with zeros) | "
            "wall (Verilator fast path) |")
    lines += [head, "|" + " --- |" * 9]
    for name, model in models.items():
        mappings = ("toeplitz", "per_channel") if any(
            layer.op == "DEPTHWISE_CONV_2D" for layer in model.layers) else ("toeplitz",)
        for mapping in mappings:
            x = recorded[name]["input"][:args.batch]
            run, seconds = measure(name, model, engine, x, recorded[name]["output"][:args.batch],
                                   "verilator", mapping)
            engine_layers = sum(layer.where == "engine" for layer in run.layers)
            ops = []
            for op, (macs, cycles, busy) in by_op(run).items():
                text = f"{op} {macs / (GRID * cycles):.1%}"
                if op == "DEPTHWISE_CONV_2D":
                    text += f" ({busy / (GRID * cycles):.1%})"
                ops.append(text)
            lines.append(f"| {name} | {mapping if mappings != ('toeplitz',) else '—'} | "
                         f"{len(x)} | {len(run.layers)} ({engine_layers}/"
                         f"{len(run.layers) - engine_layers}) | {run.macs:,} | "
                         f"{run.cycles:,} | {run.utilization:.1%} | {'; '.join(ops)} | "
                         f"{seconds:.1f} s |")
            print(lines[-1], flush=True)

    lines += ["", f"Wall time of one run of batch {args.small_batch} (builds cached), per "
                  "simulator:", "",
              "| model | cycles | " + " | ".join(sims) + " |",
              "|" + " --- |" * (len(sims) + 2)]
    for name, model in models.items():
        x = recorded[name]["input"][:args.small_batch]
        walls, cycles = [], set()
        for sim in sims:
            run, seconds = measure(name, model, engine, x,
                                   recorded[name]["output"][:args.small_batch], sim,
                                   "toeplitz")
            walls.append(f"{seconds:.1f} s")
            cycles.add(run.cycles)
        lines.append(f"| {name} | {', '.join(map(str, sorted(cycles)))} | "
                     f"{' | '.join(walls)} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print()
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
