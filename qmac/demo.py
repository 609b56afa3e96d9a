"""``make demo``: handwritten digits, trained in float, quantized to int8, inferred on the RTL.

1. An MLP (64-32-10) and a CNN (3×3×8 convolution + fully connected) train in numpy on
   scikit-learn's digits (shipped inside its wheel: nothing is downloaded).
2. Post-training static quantization as TFLite does it (:mod:`qmac.digits`): per-channel
   symmetric int8 weights, asymmetric int8 activations calibrated on the training set, int32
   biases, per-channel (M0, shift).
3. Every layer of both networks runs on a generated :class:`hw.engine.GemmEngine` in a
   simulator (convolutions as im2col GEMMs), and every layer's output must equal golden/'s,
   bit for bit.
4. Quantization-aware fine-tuning with a straight-through estimator recovers the accuracy
   that 4-bit weights lose.
5. A model made by TensorFlow's own converter (tests/models/mobilenet_style.tflite, a
   depthwise-separable network) imported by :mod:`golden.model` and run end to end by
   :mod:`sim.model`: convolutions and depthwise convolutions on the engine, MEAN and SOFTMAX
   on the host, every layer checked against golden/ and the output against the TFLite
   interpreter's recorded one, with both accuracies side by side.

Run: ``python -m qmac.demo [--sim verilator|icarus|amaranth] [--rows 8 --cols 8]``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from hw.config import ArrayConfig
from hw.engine import EngineConfig

from . import digits

CHUNK = 150   # samples per engine command: progress shows between commands
#: The converted model of step 5 and the interpreter's outputs for the digits test split.
TFLITE_MODEL = "mobilenet_style"
MODELS_DIR = Path(__file__).resolve().parents[1] / "tests" / "models"
#: Test images step 5 runs on a simulator that is not the compiled Verilator harness.
SLOW_SIM_SAMPLES = 64


def _default_simulator():
    from sim.runner import simulator_available

    for sim in ("verilator", "icarus"):
        try:
            if simulator_available(sim):
                return sim
        except RuntimeError:
            pass
    return "amaranth"


def _step(title):
    print(f"\n== {title}", flush=True)


def _layer_name(layer):
    if layer.conv is None:
        return f"fully connected {layer.w.shape[1]}→{layer.w.shape[0]}"
    kh, kw = layer.conv.kernel
    return f"conv {kh}×{kw}×{layer.w.shape[0]}"


class _RtlRunner:
    """The ``gemm`` hook of :func:`qmac.digits.run_quantized` that runs on the engine, checks
    every layer against golden/ and keeps the figures."""

    def __init__(self, config, sim):
        self.config, self.sim = config, sim
        self.layers = []
        self.verilog = None
        self.tty = sys.stdout.isatty()

    def __call__(self, x, w, layer):
        from sim.gemm import gemm

        m, k = x.shape
        n = w.shape[0]
        name = _layer_name(layer)
        y = np.empty((m, n), np.int64)
        cycles = 0
        started = time.perf_counter()
        step = CHUNK * self._rows_per_sample(layer)
        if self.config.weight_stationary:
            step = min(step, self.config.max_m)   # X is buffered on chip
        for start in range(0, m, step):
            stop = min(start + step, m)
            result = gemm(self.config, x[start:stop], w, bias=layer.bias,
                          input_zero_point=layer.input_zero_point,
                          output_zero_point=layer.output_zero_point,
                          multiplier=layer.multiplier, shift=layer.shift,
                          act_min=layer.act_min, act_max=layer.act_max, sim=self.sim)
            y[start:stop] = result.y   # gemm() raised unless equal to golden, bit for bit
            cycles += result.cycles
            self.verilog = result.verilog or self.verilog
            progress = (f"  {name:24} {stop:6}/{m} rows of [{m}, {k}]×[{n}, {k}]ᵀ "
                        f"{cycles:9,} cycles")
            # on a terminal the line updates in place; in a log, one line per command
            print(f"\r{progress}" if self.tty else progress, end="" if self.tty else "\n",
                  flush=True)
        golden = digits.golden_gemm(x, w, layer)
        if not np.array_equal(y, golden):
            raise SystemExit(f"\n{name}: the RTL disagrees with golden/")
        macs = m * k * n
        utilization = macs / (self.config.array.rows * self.config.array.cols * cycles)
        print("  " if self.tty else f"  {name:24} ",
              f"{utilization:6.1%} utilization, {time.perf_counter() - started:5.1f} s, "
              f"bit-exact with golden ({y.size:,} outputs)", sep="", flush=True)
        self.layers.append(dict(name=name, shape=(m, k, n), cycles=cycles, macs=macs,
                                utilization=utilization))
        return y

    @staticmethod
    def _rows_per_sample(layer):
        return 1 if layer.conv is None else int(np.prod(layer.conv.out_hw))


def _imported_model(x_test, y_test, sim, engine, samples):
    """Step 5: a converter-made .tflite on the RTL (the engine that ran the digits: no new
    build), accuracy beside the interpreter's."""
    from golden import ops
    from golden.model import load
    from sim.model import run_model

    path = MODELS_DIR / f"{TFLITE_MODEL}.tflite"
    model = load(path)
    recorded = np.load(MODELS_DIR / "data" / f"{TFLITE_MODEL}_oracle.npz")
    if samples is None:
        samples = len(x_test) if sim == "verilator" else SLOW_SIM_SAMPLES
    samples = min(samples, len(x_test))
    info = model.input_info
    images = x_test[:samples].reshape(samples, *info.shape[1:])
    x = ops.quantize(images, scale=info.scale[0], zero_point=int(info.zero_point[0]))
    same_images = np.array_equal(x, recorded["input"][:samples])
    _step(f"5. An imported TFLite model on the RTL: {path.name} ({sim}, {samples} images)")
    print(f"{len(model.layers)} operators from TensorFlow's converter (full-integer PTQ); "
          "GEMM-shaped ones on the engine (depthwise as Toeplitz GEMMs, docs/models.md), the "
          "rest on the host in golden/")

    def progress(record):
        figures = (f"{record.commands} commands, {record.cycles:,} cycles, "
                   f"{record.utilization:.1%} utilization" if record.where == "engine"
                   else "golden/")
        print(f"  {record.index} {record.op:18} on the {record.where:6} {figures}, "
              f"{'bit-exact' if record.matched else 'MISMATCH'} ({record.seconds:.1f} s)",
              flush=True)

    run = run_model(model, x, engine=engine, sim=sim, progress=progress)
    if not run.matched:
        raise SystemExit(f"{path.name}: the RTL and golden/ differ")
    interpreter = recorded["output"][:samples]
    if same_images and not np.array_equal(run.y, interpreter):
        raise SystemExit(f"{path.name}: the RTL and the TFLite interpreter differ")
    labels = y_test[:samples]
    result = dict(name=f"{TFLITE_MODEL}.tflite", samples=samples, cycles=run.cycles,
                  macs=run.macs, utilization=run.utilization,
                  int8=float(np.mean(run.y.argmax(axis=1) == labels)),
                  interpreter=float(np.mean(interpreter.argmax(axis=1) == labels)))
    print(f"int8 accuracy on the RTL {result['int8']:.2%}, TFLite interpreter (BUILTIN_REF, "
          f"recorded) {result['interpreter']:.2%} on the same {samples} images"
          + (": every output identical" if same_images else ""))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", choices=["verilator", "icarus", "amaranth"],
                        help="simulator (default: Verilator, else Icarus, else Amaranth's)")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--kmax", type=int, default=64,
                        help="deepest pass of the PEs (output-stationary)")
    parser.add_argument("--dataflow", choices=["os", "ws"], default="os")
    parser.add_argument("--samples", type=int, default=None,
                        help="test images to run on the RTL (default: all 450)")
    parser.add_argument("--tflite-samples", type=int, default=None,
                        help="test images for the imported .tflite model (default: all on "
                             f"Verilator's fast path, {SLOW_SIM_SAMPLES} on the others)")
    args = parser.parse_args(argv)
    sim = args.sim or _default_simulator()
    wall = time.perf_counter()

    _step("1. Data and float training (numpy)")
    x_train, y_train, x_test, y_test = digits.load_digits_split()
    if args.samples is not None:
        x_test, y_test = x_test[:args.samples], y_test[:args.samples]
    print(f"scikit-learn digits: {len(x_train)} training and {len(x_test)} test images, 8×8")
    models = {}
    for name, train in (("MLP 64-32-10", digits.train_mlp),
                        ("CNN conv3×3×8 + FC 512→10", digits.train_cnn)):
        started = time.perf_counter()
        model = train(x_train, y_train)
        float_acc = digits.accuracy(digits.float_forward(model, x_test), y_test)
        models[name] = model
        print(f"{name:28} float accuracy {float_acc:7.2%}  "
              f"(trained in {time.perf_counter() - started:.1f} s)")

    _step("2. Post-training quantization to int8 (TFLite's scheme)")
    quantized = {name: digits.quantize_model(model, x_train) for name, model in models.items()}
    for name, layers in quantized.items():
        print(name)
        for layer in layers:
            print(f"  {_layer_name(layer):24} S_in {layer.input_scale:.5f} "
                  f"Z_in {layer.input_zero_point:4}  S_w per channel "
                  f"[{layer.weight_scale.min():.5f}, {layer.weight_scale.max():.5f}]  "
                  f"M0 [{layer.multiplier.min()}, {layer.multiplier.max()}] shift "
                  f"[{layer.shift.min()}, {layer.shift.max()}]")

    weight_stationary = args.dataflow == "ws"
    array = ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                        kmax=None if weight_stationary else args.kmax, per_channel=True,
                        name=f"qmac_digits_{args.dataflow}")
    deepest = max(layer.w.shape[1] for layers in quantized.values() for layer in layers)
    widest = max(layer.w.shape[0] for layers in quantized.values() for layer in layers)
    engine = EngineConfig(array, max_k=1 << (deepest - 1).bit_length(),
                          max_n=-(-widest // args.cols) * args.cols, max_m=1024)
    dataflow = "weight-stationary" if weight_stationary else "output-stationary"
    _step(f"3. Every layer on the RTL: a {args.rows}×{args.cols} {dataflow} GemmEngine ({sim})")
    print(f"PE sums {array.accumulator_bits} bits (K ≤ {array.kmax} per pass); deeper layers "
          f"add passes up exactly in {engine.partial_sum_bits}-bit partial sums "
          f"(K up to {engine.max_k})")
    report = {}
    for name, layers in quantized.items():
        print(name, flush=True)
        rtl = _RtlRunner(engine, sim)
        x_q = digits.quantize_input(layers, x_test)
        on_rtl = digits.run_quantized(layers, x_q, gemm=rtl)
        on_golden = digits.run_quantized(layers, x_q)
        for index, (a, b) in enumerate(zip(on_rtl, on_golden, strict=True)):
            if not np.array_equal(a, b):
                raise SystemExit(f"{name} layer {index}: RTL and golden/ differ")
        report[name] = dict(
            float=digits.accuracy(digits.float_forward(models[name], x_test), y_test),
            int8=digits.accuracy(on_rtl[-1], y_test), layers=rtl.layers, verilog=rtl.verilog)

    _step("4. 4-bit weights: post-training vs quantization-aware fine-tuning (golden/)")
    for name, model in models.items():
        ptq = digits.quantize_model(model, x_train, weight_bits=4)
        qat = digits.quantize_model(digits.qat_finetune(model, x_train, y_train,
                                                        weight_bits=4), x_train)
        ptq_acc = digits.accuracy(digits.predict_quantized(ptq, x_test), y_test)
        qat_acc = digits.accuracy(digits.predict_quantized(qat, x_test), y_test)
        print(f"{name:28} PTQ 4-bit {ptq_acc:7.2%}   QAT 4-bit {qat_acc:7.2%}")

    tflite = _imported_model(x_test, y_test, sim, engine, args.tflite_samples)

    _step("Report")
    print(f"{'model':28} {'float':>8} {'int8 RTL':>9} {'cycles':>10} {'MACs':>11} "
          f"{'utilization':>11}")
    for name, r in report.items():
        cycles = sum(layer["cycles"] for layer in r["layers"])
        macs = sum(layer["macs"] for layer in r["layers"])
        print(f"{name:28} {r['float']:8.2%} {r['int8']:9.2%} {cycles:10,} {macs:11,} "
              f"{macs / (args.rows * args.cols * cycles):11.1%}")
    print(f"{tflite['name']:28} {'':>8} {tflite['int8']:9.2%} {tflite['cycles']:10,} "
          f"{tflite['macs']:11,} {tflite['utilization']:11.1%}   (TFLite interpreter "
          f"{tflite['interpreter']:.2%} on the same {tflite['samples']} images)")
    verilog = next((r["verilog"] for r in report.values() if r["verilog"]), None)
    if verilog:
        lines = sum(1 for _ in open(verilog))
        print(f"the Verilog that ran: {verilog} ({lines:,} lines; module {array.name}_engine)")
    else:
        print("the RTL ran in Amaranth's simulator (no Verilog); --sim verilator runs the "
              "generated Verilog")
    print(f"\nEvery layer's int8 output from the RTL equals golden/'s, bit for bit. "
          f"Wall time {time.perf_counter() - wall:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
