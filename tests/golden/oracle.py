"""Single-op int8 TFLite models, their golden outputs, and the TFLite interpreter to run them.

A *case* is the JSON description tools/tflite_oracle.py turns into a one-operator .tflite
model (tensors with shapes, types, scales, zero points and constant data; operator inputs,
outputs and builtin options; the data fed to the graph inputs). This module

* generates random cases per op (:data:`SUITES`, seeded, so a suite is the same every run),
* computes golden's output of a case from its description alone (:func:`golden_output`, the
  way an importer reads a model: conv multipliers from the scales, fused activations from
  the options, ...),
* runs cases on the interpreter in the oracle environment (:func:`run_oracle`, needs
  ``bash tools/make_oracle_env.sh``),
* reads and writes the recorded interpreter outputs that tests/golden/test_oracle_recorded.py
  checks without that environment (tools/record_oracle.py writes them).
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from golden import layers, ops
from golden.tflite import activation_range, conv_multiplier

ROOT = Path(__file__).resolve().parents[2]
ORACLE_PYTHON = Path(os.environ.get("QMAC_ORACLE_VENV", ROOT / ".venv-tflite")) / "bin" / "python"
RECORDING = Path(__file__).resolve().parent / "data" / "tflite_2_14_oracle.json.gz"
#: tflite schema enums (ActivationFunctionType, Padding)
ACTIVATION_CODES = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
PADDING_CODES = {"same": 0, "valid": 1}
ACTIVATIONS = {code: name for name, code in ACTIVATION_CODES.items()}
PADDINGS = {code: name for name, code in PADDING_CODES.items()}
#: BUILTIN_REF (the reference kernels) is what golden reproduces; BUILTIN (the optimized
#: kernels) and BUILTIN_WITHOUT_DEFAULT_DELEGATES can be measured by setting this variable.
RESOLVER = os.environ.get("QMAC_ORACLE_RESOLVER", "BUILTIN_REF")
CASES = 12
ALL_CODES = np.arange(-128, 128).reshape(1, 256)
#: HardSwishPrepare needs s_in / s_out < 128; random output scales keep it at most this.
HARD_SWISH_MAX_RATIO = 64
MEAN_AXES = ([1, 2], [2, 1], [1], [3], [0, 3], [1, 2, 3])
#: (input scale, zero point) of int8 TANH tables in which glibc 2.36's tanhf and the
#: correctly rounded tanh give different codes (found by search; TFLite follows tanhf).
TANHF_SENSITIVE_TABLES = ((0.018987477, 47), (0.0065022833, -51))


# -- the interpreter -------------------------------------------------------------------------

def _plain(value):
    """numpy scalars and arrays as JSON values."""
    return value.tolist() if hasattr(value, "tolist") else value


def run_oracle(cases, resolver=RESOLVER):
    """Run ``cases`` on the TFLite interpreter: a list of {"outputs": [...]} or {"error"}."""
    cases = [{**case, "resolver": case.get("resolver", resolver)} for case in cases]
    done = subprocess.run([str(ORACLE_PYTHON), str(ROOT / "tools" / "tflite_oracle.py")],
                          input=json.dumps(cases, default=_plain), capture_output=True,
                          text=True, check=False, timeout=600)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"tflite_oracle.py exited {done.returncode}")
    return json.loads(done.stdout)


def compare(cases, results, expected):
    """Assert that every TFLite output equals golden's, element for element (float32
    outputs bit for bit)."""
    for index, (result, want) in enumerate(zip(results, expected, strict=True)):
        assert "error" not in result, f"case {index}: TFLite refused it: {result['error']}"
        want = np.asarray(want)
        got = np.asarray(result["outputs"][0], dtype=want.dtype)
        assert got.shape == want.shape, f"case {index}: shape {got.shape} ≠ {want.shape}"
        if want.dtype == np.float32:
            got, want = got.view(np.int32), want.view(np.int32)
        mismatch = np.flatnonzero(got.ravel() != want.ravel())
        assert not mismatch.size, (
            f"case {index} ({cases[index]['op']}): {mismatch.size} of {got.size} differ, "
            f"first at {mismatch[0]}: TFLite {got.ravel()[mismatch[0]]}, "
            f"golden {want.ravel()[mismatch[0]]}")


def load_recording(path=RECORDING):
    with gzip.open(path, "rt") as file:
        return json.load(file)


def save_recording(records, path=RECORDING):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as file:     # reproducible bytes
        file.write(json.dumps(records, default=_plain, separators=(",", ":")).encode())


# -- building cases --------------------------------------------------------------------------

def tensor(shape, scale=None, zero_point=0, *, data=None, type="INT8", dimension=0):
    spec = {"shape": [int(v) for v in shape], "type": type}
    if scale is not None:
        scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
        spec["scale"] = [float(s) for s in scales]
        spec["zero_point"] = [int(z) for z in np.broadcast_to(zero_point, scales.shape)]
        spec["quantized_dimension"] = dimension
    if data is not None:
        spec["data"] = np.asarray(data).tolist()
    return spec


def case(op, tensors, inputs, outputs, feeds, **options):
    return {"op": op, "tensors": tensors, "inputs": inputs, "outputs": outputs,
            "feeds": {str(k): np.asarray(v).tolist() for k, v in feeds.items()},
            "options": {k: _plain(v) for k, v in options.items()}}


def scale(rng, lo=-9.0, hi=-1.0):
    return np.float32(2.0 ** rng.uniform(lo, hi))


def int8(rng, shape):
    return rng.integers(-128, 128, size=shape)


def nhwc(rng, smallest_side, channels):
    """A random int8 NHWC tensor: 1..2 images, sides smallest_side..8, 1..channels."""
    return int8(rng, (int(rng.integers(1, 3)), int(rng.integers(smallest_side, 9)),
                      int(rng.integers(smallest_side, 9)), int(rng.integers(1, channels + 1))))


# -- golden's output of a case ---------------------------------------------------------------

def _params(spec):
    return np.float32(spec["scale"][0]), int(spec["zero_point"][0])


def _feed(case, index):
    return np.asarray(case["feeds"][str(index)])


def _data(case, index):
    return np.asarray(case["tensors"][index]["data"])


def _act_range(case, output):
    activation = ACTIVATIONS[case["options"].get("fused_activation_function", 0)]
    return activation_range(activation, *_params(output))


def _convolution(case, tensors):
    x_spec, w_spec, _, out_spec = (tensors[i] for i in (*case["inputs"], *case["outputs"]))
    s_in, z_in = _params(x_spec)
    s_out, z_out = _params(out_spec)
    options = case["options"]
    w, bias = _data(case, case["inputs"][1]), _data(case, case["inputs"][2])
    channels = w.shape[3] if case["op"] == "DEPTHWISE_CONV_2D" else w.shape[0]
    m0, shift = conv_multiplier(s_in, np.asarray(w_spec["scale"], np.float32), s_out)
    act_min, act_max = _act_range(case, out_spec)
    common = dict(input_zero_point=z_in, output_zero_point=z_out,
                  multiplier=np.broadcast_to(m0, channels),
                  shift=np.broadcast_to(shift, channels), act_min=act_min, act_max=act_max,
                  stride=(options["stride_h"], options["stride_w"]),
                  dilation=(options["dilation_h_factor"], options["dilation_w_factor"]),
                  padding=PADDINGS[options["padding"]])
    x = _feed(case, case["inputs"][0])
    if case["op"] == "DEPTHWISE_CONV_2D":
        return ops.depthwise_conv2d(x, w, bias, **common)
    return layers.conv2d(x, w, bias, weight_zero_point=0, **common)


def golden_output(case, resolver=RESOLVER):
    """golden's output of ``case``, computed from its description as an importer would."""
    op, tensors, options = case["op"], case["tensors"], case["options"]
    inputs = [tensors[i] for i in case["inputs"]]
    out_spec = tensors[case["outputs"][0]]
    x = _feed(case, case["inputs"][0]) if str(case["inputs"][0]) in case["feeds"] else None
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return _convolution(case, tensors)
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        act_min, act_max = _act_range(case, out_spec)
        function = ops.average_pool2d if op == "AVERAGE_POOL_2D" else ops.max_pool2d
        return function(x, filter_size=(options["filter_height"], options["filter_width"]),
                        stride=(options["stride_h"], options["stride_w"]),
                        padding=PADDINGS[options["padding"]], act_min=act_min,
                        act_max=act_max)
    if op in ("ADD", "MUL"):
        (s1, z1), (s2, z2), (so, zo) = (_params(t) for t in (*inputs, out_spec))
        act_min, act_max = _act_range(case, out_spec)
        function = ops.add if op == "ADD" else ops.mul
        return function(x, _feed(case, case["inputs"][1]), input1_scale=s1,
                        input1_zero_point=z1, input2_scale=s2, input2_zero_point=z2,
                        output_scale=so, output_zero_point=zo, act_min=act_min,
                        act_max=act_max)
    if op == "MEAN":
        (s_in, z_in), (s_out, z_out) = _params(inputs[0]), _params(out_spec)
        return ops.mean(x, input_scale=s_in, input_zero_point=z_in, output_scale=s_out,
                        output_zero_point=z_out, axis=_data(case, case["inputs"][1]).tolist(),
                        keep_dims=bool(options["keep_dims"]))
    if op == "PAD":
        return ops.pad(x, _data(case, case["inputs"][1]), pad_value=_params(out_spec)[1])
    if op == "RESHAPE":
        return ops.reshape(x, _data(case, case["inputs"][1]).tolist())
    if op == "CONCATENATION":
        pieces = [_feed(case, i) for i in case["inputs"]]
        if inputs[0]["type"] == "UINT8":             # ConcatenationWithScaling
            s_out, z_out = _params(out_spec)
            return ops.concatenation(pieces, axis=options["axis"], signed=False,
                                     input_scales=[_params(t)[0] for t in inputs],
                                     input_zero_points=[_params(t)[1] for t in inputs],
                                     output_scale=s_out, output_zero_point=z_out)
        return ops.concatenation(pieces, axis=options["axis"])
    if op in ("LOGISTIC", "TANH", "HARD_SWISH"):
        (s_in, z_in), (s_out, z_out) = _params(inputs[0]), _params(out_spec)
        function = {"LOGISTIC": ops.logistic, "TANH": ops.tanh, "HARD_SWISH": ops.hard_swish}
        return function[op](x, input_scale=s_in, input_zero_point=z_in, output_scale=s_out,
                            output_zero_point=z_out)
    if op == "SOFTMAX":
        kernel = "optimized" if resolver.startswith("BUILTIN") and resolver != "BUILTIN_REF" \
            else "reference"
        return ops.softmax(x, input_scale=_params(inputs[0])[0], beta=options["beta"],
                           kernel=kernel)
    if op == "QUANTIZE":
        s_out, z_out = _params(out_spec)
        if inputs[0]["type"] == "FLOAT32":
            return ops.quantize(x.astype(np.float32), scale=s_out, zero_point=z_out)
        s_in, z_in = _params(inputs[0])
        return ops.requantize_tensor(x, input_scale=s_in, input_zero_point=z_in,
                                     output_scale=s_out, output_zero_point=z_out)
    if op == "DEQUANTIZE":
        s_in, z_in = _params(inputs[0])
        return ops.dequantize(x, scale=s_in, zero_point=z_in)
    raise ValueError(f"op must be one this module builds, not {op!r}")


# -- random cases per op ---------------------------------------------------------------------

def convolution_cases(rng, depthwise, count=3 * CASES):
    cases = []
    for _ in range(count):
        height, width = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        padding = str(rng.choice(["same", "valid"]))
        if padding == "valid" and min(height, width) < (max(kh, kw) - 1) * dilation + 1:
            padding = "same"
        activation = str(rng.choice(list(ACTIVATION_CODES)))
        s_in, s_out = scale(rng), scale(rng, -6, 0)
        if rng.random() < 1 / 3:        # multipliers ≥ 1 (positive shifts) as in real models
            s_out = scale(rng, -15, -11)
        z_in, z_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        if depthwise:
            channels, m = int(rng.integers(1, 5)), int(rng.integers(1, 3))
            c_out = channels * m
            w_shape = (1, kh, kw, c_out)
        else:
            groups, c_filter = int(rng.choice([1, 2, 3])), int(rng.integers(1, 4))
            channels, c_out = groups * c_filter, groups * int(rng.integers(1, 3))
            w_shape = (c_out, kh, kw, c_filter)
        per_tensor = rng.random() < 0.3      # one filter scale: still the double product
        filter_scales = np.array([scale(rng, -8, -5) for _ in range(1 if per_tensor else c_out)])
        x = int8(rng, (int(rng.integers(1, 3)), height, width, channels))
        w = rng.integers(-127, 128, size=w_shape)
        bias = rng.integers(-3000, 3000, size=c_out)
        tensors = [tensor(x.shape, s_in, z_in),
                   tensor(w_shape, filter_scales, 0, data=w, dimension=3 if depthwise else 0),
                   tensor((c_out,), s_in * filter_scales, 0, data=bias, type="INT32"),
                   tensor(x.shape, s_out, z_out)]          # shape set by _with_output_shape
        extra = {"depth_multiplier": m} if depthwise else {}
        cases.append(case("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", tensors, [0, 1, 2],
                          [3], {0: x}, padding=PADDING_CODES[padding], stride_w=stride,
                          stride_h=stride, dilation_w_factor=dilation,
                          dilation_h_factor=dilation,
                          fused_activation_function=ACTIVATION_CODES[activation], **extra))
    return _with_output_shape(cases)


def _with_output_shape(cases):
    """Set each case's output tensor shape from golden's result (shape-preserving ops
    and those whose output shape golden computes)."""
    for item in cases:
        out = item["tensors"][item["outputs"][0]]
        out["shape"] = [int(v) for v in np.shape(golden_output(item))]
    return cases


def pooling_cases(rng, op, count=2 * CASES):
    cases = []
    for _ in range(count):
        x = nhwc(rng, 2, 3)
        fh, fw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = "same" if min(x.shape[1:3]) < max(fh, fw) else \
            str(rng.choice(["same", "valid"]))
        activation = str(rng.choice(list(ACTIVATION_CODES)))
        s, z = scale(rng), int(rng.integers(-128, 128))
        cases.append(case(op, [tensor(x.shape, s, z), tensor(x.shape, s, z)], [0], [1], {0: x},
                          padding=PADDING_CODES[padding], stride_w=stride[1],
                          stride_h=stride[0], filter_width=fw, filter_height=fh,
                          fused_activation_function=ACTIVATION_CODES[activation]))
    return _with_output_shape(cases)


def binary_cases(rng, op, count=2 * CASES):
    cases = []
    for index in range(count):
        shape = (1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 17)))
        shape2 = shape if index % 3 else (1, 1, 1, shape[3])       # broadcast a channel row
        x1, x2 = int8(rng, shape), int8(rng, shape2)
        scales = [scale(rng, -8, 0) for _ in range(3)]
        zero_points = [int(z) for z in rng.integers(-128, 128, size=3)]
        activation = str(rng.choice(["none", "relu", "relu6"]))
        tensors = [tensor(s, q, z) for s, q, z in
                   zip((shape, shape2, shape), scales, zero_points, strict=True)]
        cases.append(case(op, tensors, [0, 1], [2], {0: x1, 1: x2},
                          fused_activation_function=ACTIVATION_CODES[activation]))
    return cases


def mean_cases(rng, keep_dims, count=3 * CASES):
    cases = []
    for index in range(count):
        x = nhwc(rng, 1, 4)
        axes = MEAN_AXES[index % len(MEAN_AXES)]
        s_in, z_in = scale(rng), int(rng.integers(-128, 128))
        same = index % 4 == 0                       # equal input and output parameters
        s_out, z_out = (s_in, z_in) if same else (scale(rng), int(rng.integers(-128, 128)))
        tensors = [tensor(x.shape, s_in, z_in), tensor((len(axes),), data=axes, type="INT32"),
                   tensor(x.shape, s_out, z_out)]
        cases.append(case("MEAN", tensors, [0, 1], [2], {0: x}, keep_dims=keep_dims))
    return _with_output_shape(cases)


def movement_cases(rng, count=CASES):
    """PAD, RESHAPE and CONCATENATION (TFLite's int8 kernel needs equal parameters)."""
    cases = []
    for _ in range(count):
        x = int8(rng, (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), 3))
        s, z = scale(rng), int(rng.integers(-128, 128))
        paddings = rng.integers(0, 3, size=(4, 2))
        cases.append(case("PAD", [tensor(x.shape, s, z),
                                  tensor((4, 2), data=paddings, type="INT32"),
                                  tensor(x.shape, s, z)], [0, 1], [2], {0: x}))
        shape = [1, -1, 3]
        cases.append(case("RESHAPE", [tensor(x.shape, s, z),
                                      tensor((3,), data=shape, type="INT32"),
                                      tensor((1, x.size // 3, 3), s, z)], [0, 1], [2], {0: x},
                          new_shape=[1, x.size // 3, 3]))
        y = int8(rng, (1, x.shape[1], x.shape[2], int(rng.integers(1, 4))))
        cases.append(case("CONCATENATION", [tensor(x.shape, s, z), tensor(y.shape, s, z),
                                            tensor(x.shape, s, z)], [0, 1], [2],
                          {0: x, 1: y}, axis=3))
    return _with_output_shape(cases)


def requantizing_concatenation_cases(rng, count=CASES):
    """uint8 CONCATENATION of inputs with their own scales and zero points: TFLite's
    ConcatenationWithScaling, the requantizing kernel golden follows for int8 too."""
    cases = []
    for _ in range(count):
        rows = int(rng.integers(1, 4))
        pieces = [rng.integers(0, 256, size=(rows, int(rng.integers(1, 40))))
                  for _ in range(int(rng.integers(2, 4)))]
        params = [(scale(rng, -8, 0), int(rng.integers(0, 256))) for _ in pieces]
        s_out, z_out = params[-1] if rng.random() < 0.3 else \
            (scale(rng, -8, 0), int(rng.integers(0, 256)))
        tensors = [tensor(p.shape, s, z, type="UINT8")
                   for p, (s, z) in zip(pieces, params, strict=True)]
        tensors.append(tensor((rows, sum(p.shape[1] for p in pieces)), s_out, z_out,
                              type="UINT8"))
        cases.append(case("CONCATENATION", tensors, list(range(len(pieces))), [len(pieces)],
                          dict(enumerate(pieces)), axis=1))
    return cases


def activation_case(op, rng, input_exponents=(-8, 0)):
    """A random LOGISTIC, TANH or HARD_SWISH model on all 256 int8 codes. HARD_SWISH
    scales reach right shifts ≥ 16 (where gemmlowp's int16 mask wraps)."""
    s_in, z_in = scale(rng, *input_exponents), int(rng.integers(-128, 128))
    if op == "LOGISTIC":
        s_out, z_out = np.float32(1 / 256), -128
    elif op == "TANH":
        s_out, z_out = np.float32(1 / 128), 0
    else:
        s_out = max(scale(rng, -7, 1), np.float32(s_in / HARD_SWISH_MAX_RATIO))
        z_out = int(rng.integers(-128, 128))
    return case(op, [tensor(ALL_CODES.shape, s_in, z_in), tensor(ALL_CODES.shape, s_out, z_out)],
                [0], [1], {0: ALL_CODES})


def softmax_case(rng, rows, depth):
    """A random int8 SOFTMAX model of [rows, depth] (output scale 1/256, zero point −128)."""
    x = int8(rng, (rows, depth))
    s_in, beta = scale(rng, -8, 1), float(np.float32(rng.choice([1.0, rng.uniform(0.1, 4)])))
    return case("SOFTMAX", [tensor(x.shape, s_in, int(rng.integers(-128, 128))),
                            tensor(x.shape, 1 / 256, -128)], [0], [1], {0: x}, beta=beta)


def quantize_cases(rng, count=CASES):
    """QUANTIZE float32 → int8 (with exact ties of x / scale) and int8 → int8."""
    cases = []
    for _ in range(count):
        s, z = scale(rng, -8, 0), int(rng.integers(-128, 128))
        real = (rng.standard_normal(64) * 200 * s).astype(np.float32)
        real[:8] = ((np.arange(8) - 4 + 0.5) * s).astype(np.float32)
        cases.append(case("QUANTIZE", [tensor(real.shape, type="FLOAT32"),
                                       tensor(real.shape, s, z)], [0], [1], {0: real}))
        s2, z2 = scale(rng, -8, 0), int(rng.integers(-128, 128))
        cases.append(case("QUANTIZE", [tensor((64,), s, z), tensor((64,), s2, z2)], [0], [1],
                          {0: int8(rng, (64,))}))
    return cases


def dequantize_cases(rng, count=CASES):
    return [case("DEQUANTIZE", [tensor((256,), scale(rng, -8, 0), int(rng.integers(-128, 128))),
                                tensor((256,), type="FLOAT32")], [0], [1], {0: ALL_CODES[0]})
            for _ in range(count)]


def _seeded(seed, make):
    return lambda: make(np.random.default_rng(seed))


#: name → (cases of the suite, op resolver they run on). Each call makes the same cases.
SUITES = {
    "DEPTHWISE_CONV_2D": (_seeded(2, lambda rng: convolution_cases(rng, True)), RESOLVER),
    "CONV_2D grouped": (_seeded(1, lambda rng: convolution_cases(rng, False)), RESOLVER),
    "AVERAGE_POOL_2D": (_seeded(15, lambda rng: pooling_cases(rng, "AVERAGE_POOL_2D")),
                        RESOLVER),
    "MAX_POOL_2D": (_seeded(11, lambda rng: pooling_cases(rng, "MAX_POOL_2D")), RESOLVER),
    "ADD": (_seeded(3, lambda rng: binary_cases(rng, "ADD")), RESOLVER),
    "MUL": (_seeded(4, lambda rng: binary_cases(rng, "MUL")), RESOLVER),
    "MEAN keep_dims": (_seeded(6, lambda rng: mean_cases(rng, True)), RESOLVER),
    "MEAN": (_seeded(5, lambda rng: mean_cases(rng, False)), RESOLVER),
    "PAD RESHAPE CONCATENATION": (_seeded(7, movement_cases), RESOLVER),
    "CONCATENATION requantizing uint8": (_seeded(8, requantizing_concatenation_cases),
                                         RESOLVER),
    **{op: (_seeded(len(op) + 10, lambda rng, op=op: [activation_case(op, rng, (-10, 2))
                                                      for _ in range(3 * CASES)]), RESOLVER)
       for op in ("LOGISTIC", "TANH", "HARD_SWISH")},
    "TANH where glibc's tanhf is not correctly rounded": (
        lambda: [case("TANH", [tensor(ALL_CODES.shape, s, z),
                               tensor(ALL_CODES.shape, 1 / 128, 0)], [0], [1], {0: ALL_CODES})
                 for s, z in TANHF_SENSITIVE_TABLES], RESOLVER),
    "SOFTMAX": (_seeded(11, lambda rng: [softmax_case(rng, int(rng.integers(1, 4)),
                                                      int(rng.integers(1, 120)))
                                         for _ in range(3 * CASES)]), RESOLVER),
    "SOFTMAX optimized": (_seeded(11, lambda rng: [softmax_case(rng, int(rng.integers(1, 4)),
                                                                int(rng.integers(1, 120)))
                                                   for _ in range(3 * CASES)]), "BUILTIN"),
    "QUANTIZE": (_seeded(12, quantize_cases), RESOLVER),
    "DEQUANTIZE": (_seeded(13, dequantize_cases), RESOLVER),
}
