"""golden/ops.py against the TFLite interpreter itself (tflite-runtime 2.14, BUILTIN_REF).

Each test builds random single-op int8 models (tools/tflite_oracle.py writes the flatbuffer
with the `tflite` schema bindings), runs them on the interpreter with its reference kernels
in the oracle environment and compares every output element with golden. The environment
(`bash tools/make_oracle_env.sh`, .venv-tflite) needs numpy < 2, so it runs in a subprocess;
without it this module is skipped. QMAC_ORACLE_RESOLVER=BUILTIN runs the same cases on the
optimized kernels instead (a measurement: golden follows the reference kernels).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import layers, ops
from golden.tflite import activation_range, conv_multiplier

ROOT = Path(__file__).resolve().parents[2]
ORACLE_PYTHON = Path(os.environ.get("QMAC_ORACLE_VENV", ROOT / ".venv-tflite")) / "bin" / "python"
if not ORACLE_PYTHON.exists():
    pytest.skip(f"no TFLite oracle environment at {ORACLE_PYTHON.parent.parent} "
                "(bash tools/make_oracle_env.sh makes it)", allow_module_level=True)

#: tflite schema enums (ActivationFunctionType, Padding)
ACTIVATION_CODES = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
PADDING_CODES = {"same": 0, "valid": 1}
CASES = 12
#: BUILTIN_REF (the reference kernels) is what golden reproduces; BUILTIN (the optimized
#: kernels) and BUILTIN_WITHOUT_DEFAULT_DELEGATES can be measured by setting this variable.
RESOLVER = os.environ.get("QMAC_ORACLE_RESOLVER", "BUILTIN_REF")


def _plain(value):
    """numpy scalars and arrays as JSON values."""
    return value.tolist() if hasattr(value, "tolist") else value


def run_oracle(cases, resolver=RESOLVER):
    for case in cases:
        case.setdefault("resolver", resolver)
    done = subprocess.run([str(ORACLE_PYTHON), str(ROOT / "tools" / "tflite_oracle.py")],
                          input=json.dumps(cases, default=_plain), capture_output=True, text=True,
                          check=False, timeout=600)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"tflite_oracle.py exited {done.returncode}")
    return json.loads(done.stdout)


def tensor(shape, scale=None, zero_point=0, *, data=None, type="INT8", dimension=0):
    spec = {"shape": list(shape), "type": type}
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
            "options": options}


def scale(rng, lo=-9.0, hi=-1.0):
    return np.float32(2.0 ** rng.uniform(lo, hi))


def int8(rng, shape):
    return rng.integers(-128, 128, size=shape)


def check(cases, expected, resolver=RESOLVER):
    results = run_oracle(cases, resolver)
    for index, (result, want) in enumerate(zip(results, expected, strict=True)):
        assert "error" not in result, f"case {index}: TFLite refused it: {result['error']}"
        got = np.asarray(result["outputs"][0])
        want = np.asarray(want)
        assert got.shape == want.shape, f"case {index}: shape {got.shape} ≠ {want.shape}"
        mismatch = np.flatnonzero(got.ravel() != want.ravel())
        assert not mismatch.size, (
            f"case {index} ({cases[index]['op']}): {mismatch.size} of {got.size} differ, "
            f"first at {mismatch[0]}: TFLite {got.ravel()[mismatch[0]]}, "
            f"golden {want.ravel()[mismatch[0]]}")


# -- convolutions ----------------------------------------------------------------------------

def _conv_case(rng, depthwise):
    batch, height, width = rng.integers(1, 3), rng.integers(3, 9), rng.integers(3, 9)
    kh, kw = rng.integers(1, 4), rng.integers(1, 4)
    stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    padding = str(rng.choice(["same", "valid"]))
    if padding == "valid" and min(height, width) < (max(kh, kw) - 1) * dilation + 1:
        padding = "same"
    activation = str(rng.choice(list(ACTIVATION_CODES)))
    s_in, s_out = scale(rng), scale(rng, -6, 0)
    z_in, z_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    if depthwise:
        channels, m = int(rng.integers(1, 5)), int(rng.integers(1, 3))
        c_out, c_filter = channels * m, None
        w_shape = (1, kh, kw, c_out)
    else:
        groups = int(rng.choice([1, 2, 3]))
        c_filter = int(rng.integers(1, 4))
        channels, c_out = groups * c_filter, groups * int(rng.integers(1, 3))
        w_shape = (c_out, kh, kw, c_filter)
    per_tensor = rng.random() < 0.3
    s_w = np.full(c_out, scale(rng, -8, -5)) if per_tensor else \
        np.array([scale(rng, -8, -5) for _ in range(c_out)])
    x = int8(rng, (batch, height, width, channels))
    w = rng.integers(-127, 128, size=w_shape)
    bias = rng.integers(-3000, 3000, size=c_out)
    filter_scales = s_w[:1] if per_tensor else s_w
    m0, shift = conv_multiplier(s_in, filter_scales, s_out)
    act_min, act_max = activation_range(activation, s_out, z_out)
    common = dict(input_zero_point=z_in, output_zero_point=z_out,
                  multiplier=np.broadcast_to(m0, c_out), shift=np.broadcast_to(shift, c_out),
                  act_min=act_min, act_max=act_max, stride=stride, padding=padding,
                  dilation=dilation)
    if depthwise:
        want = ops.depthwise_conv2d(x, w, bias, **common)
        op, dimension = "DEPTHWISE_CONV_2D", 3
        extra = {"depth_multiplier": m}
    else:
        want = layers.conv2d(x, w, bias, weight_zero_point=0, **common)
        op, dimension = "CONV_2D", 0
        extra = {}
    tensors = [tensor(x.shape, s_in, z_in),
               tensor(w_shape, filter_scales, 0, data=w, dimension=dimension),
               tensor((c_out,), s_in * filter_scales, 0, data=bias, type="INT32"),
               tensor(want.shape, s_out, z_out)]
    return case(op, tensors, [0, 1, 2], [3], {0: x}, padding=PADDING_CODES[padding],
                stride_w=stride, stride_h=stride, dilation_w_factor=dilation,
                dilation_h_factor=dilation,
                fused_activation_function=ACTIVATION_CODES[activation], **extra), want


@pytest.mark.parametrize("depthwise", [True, False], ids=["depthwise", "grouped_conv"])
def test_convolutions(depthwise):
    rng = np.random.default_rng(1 + depthwise)
    pairs = [_conv_case(rng, depthwise) for _ in range(3 * CASES)]
    check([c for c, _ in pairs], [w for _, w in pairs])


# -- pooling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pooling(op):
    rng = np.random.default_rng(len(op))
    cases, expected = [], []
    for _ in range(2 * CASES):
        x = int8(rng, (int(rng.integers(1, 3)), int(rng.integers(2, 9)),
                       int(rng.integers(2, 9)), int(rng.integers(1, 4))))
        fh, fw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = "same" if min(x.shape[1:3]) < max(fh, fw) else str(rng.choice(["same",
                                                                                   "valid"]))
        activation = str(rng.choice(list(ACTIVATION_CODES)))
        s, z = scale(rng), int(rng.integers(-128, 128))
        act_min, act_max = activation_range(activation, s, z)
        function = ops.average_pool2d if op == "AVERAGE_POOL_2D" else ops.max_pool2d
        want = function(x, filter_size=(fh, fw), stride=stride, padding=padding,
                        act_min=act_min, act_max=act_max)
        cases.append(case(op, [tensor(x.shape, s, z), tensor(want.shape, s, z)], [0], [1],
                          {0: x}, padding=PADDING_CODES[padding], stride_w=stride[1],
                          stride_h=stride[0], filter_width=fw, filter_height=fh,
                          fused_activation_function=ACTIVATION_CODES[activation]))
        expected.append(want)
    check(cases, expected)


# -- ADD, MUL --------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_add_and_mul(op):
    rng = np.random.default_rng(3 if op == "ADD" else 4)
    cases, expected = [], []
    for index in range(2 * CASES):
        shape = (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 6)))
        shape2 = shape if index % 3 else (1, 1, 1, shape[3])       # broadcast a channel row
        x1, x2 = int8(rng, shape), int8(rng, shape2)
        scales = [scale(rng, -8, 0) for _ in range(3)]
        zero_points = [int(z) for z in rng.integers(-128, 128, size=3)]
        activation = str(rng.choice(["none", "relu", "relu6"]))
        act_min, act_max = activation_range(activation, scales[2], zero_points[2])
        function = ops.add if op == "ADD" else ops.mul
        want = function(x1, x2, input1_scale=scales[0], input1_zero_point=zero_points[0],
                        input2_scale=scales[1], input2_zero_point=zero_points[1],
                        output_scale=scales[2], output_zero_point=zero_points[2],
                        act_min=act_min, act_max=act_max)
        tensors = [tensor(a.shape, s, z) for a, s, z in
                   zip((x1, x2, want), scales, zero_points, strict=True)]
        cases.append(case(op, tensors, [0, 1], [2], {0: x1, 1: x2},
                          fused_activation_function=ACTIVATION_CODES[activation]))
        expected.append(want)
    check(cases, expected)


# -- MEAN, PAD, RESHAPE, CONCATENATION -------------------------------------------------------

MEAN_AXES = ([1, 2], [2, 1], [1], [3], [0, 3], [1, 2, 3])


@pytest.mark.parametrize("keep_dims", [True, False])
def test_mean(keep_dims):
    rng = np.random.default_rng(5 + keep_dims)
    cases, expected = [], []
    for index in range(3 * CASES):
        x = int8(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 9)),
                       int(rng.integers(1, 9)), int(rng.integers(1, 5))))
        axes = MEAN_AXES[index % len(MEAN_AXES)]
        s_in, z_in = scale(rng), int(rng.integers(-128, 128))
        same = index % 4 == 0                       # equal input and output parameters
        s_out, z_out = (s_in, z_in) if same else (scale(rng), int(rng.integers(-128, 128)))
        want = ops.mean(x, input_scale=s_in, input_zero_point=z_in, output_scale=s_out,
                        output_zero_point=z_out, axis=axes, keep_dims=keep_dims)
        tensors = [tensor(x.shape, s_in, z_in), tensor((len(axes),), data=axes, type="INT32"),
                   tensor(want.shape, s_out, z_out)]
        cases.append(case("MEAN", tensors, [0, 1], [2], {0: x}, keep_dims=keep_dims))
        expected.append(want)
    check(cases, expected)


def test_pad_reshape_concatenation():
    rng = np.random.default_rng(7)
    cases, expected = [], []
    for _ in range(CASES):
        x = int8(rng, (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), 3))
        s, z = scale(rng), int(rng.integers(-128, 128))
        paddings = rng.integers(0, 3, size=(4, 2))
        want = ops.pad(x, paddings, pad_value=z)
        cases.append(case("PAD", [tensor(x.shape, s, z),
                                  tensor((4, 2), data=paddings, type="INT32"),
                                  tensor(want.shape, s, z)], [0, 1], [2], {0: x}))
        expected.append(want)
        shape = [1, -1, 3]
        want = ops.reshape(x, shape)
        cases.append(case("RESHAPE", [tensor(x.shape, s, z),
                                      tensor((3,), data=shape, type="INT32"),
                                      tensor(want.shape, s, z)], [0, 1], [2], {0: x},
                          new_shape=[int(v) for v in want.shape]))
        expected.append(want)
        y = int8(rng, (1, x.shape[1], x.shape[2], int(rng.integers(1, 4))))
        want = ops.concatenation([x, y], axis=3)
        cases.append(case("CONCATENATION", [tensor(x.shape, s, z), tensor(y.shape, s, z),
                                            tensor(want.shape, s, z)], [0, 1], [2],
                          {0: x, 1: y}, axis=3))
        expected.append(want)
    check(cases, expected)


def test_int8_concatenation_with_different_scales_is_refused_by_tflite():
    x = np.zeros((1, 2), dtype=np.int64)
    refused = run_oracle([case("CONCATENATION", [tensor((1, 2), 0.1, 0), tensor((1, 2), 0.2, 0),
                                                 tensor((1, 4), 0.2, 0)], [0, 1], [2],
                               {0: x, 1: x}, axis=1)])
    assert "error" in refused[0]


# -- activations: every int8 input -----------------------------------------------------------

ALL_CODES = np.arange(-128, 128).reshape(1, 256)


#: HardSwishPrepare needs s_in / s_out < 128; random output scales keep it at most this.
HARD_SWISH_MAX_RATIO = 64


def activation_case(op, rng, input_exponents=(-8, 0)):
    """A random LOGISTIC, TANH or HARD_SWISH model on all 256 int8 codes, and golden's
    output. HARD_SWISH scales reach right shifts ≥ 16 (gemmlowp's int16 mask wraps)."""
    s_in, z_in = scale(rng, *input_exponents), int(rng.integers(-128, 128))
    if op == "LOGISTIC":
        s_out, z_out = np.float32(1 / 256), -128
        want = ops.logistic(ALL_CODES, input_scale=s_in, input_zero_point=z_in)
    elif op == "TANH":
        s_out, z_out = np.float32(1 / 128), 0
        want = ops.tanh(ALL_CODES, input_scale=s_in, input_zero_point=z_in)
    else:
        s_out = max(scale(rng, -7, 1), np.float32(s_in / HARD_SWISH_MAX_RATIO))
        z_out = int(rng.integers(-128, 128))
        want = ops.hard_swish(ALL_CODES, input_scale=s_in, input_zero_point=z_in,
                              output_scale=s_out, output_zero_point=z_out)
    return case(op, [tensor(ALL_CODES.shape, s_in, z_in), tensor(ALL_CODES.shape, s_out, z_out)],
                [0], [1], {0: ALL_CODES}), want


def softmax_case(rng, rows, depth, kernel="reference"):
    """A random int8 SOFTMAX model of [rows, depth] and golden's output with ``kernel``."""
    x = int8(rng, (rows, depth))
    s_in, beta = scale(rng, -8, 1), float(np.float32(rng.choice([1.0, rng.uniform(0.1, 4)])))
    want = ops.softmax(x, input_scale=s_in, beta=beta, kernel=kernel)
    return case("SOFTMAX", [tensor(x.shape, s_in, int(rng.integers(-128, 128))),
                            tensor(x.shape, 1 / 256, -128)], [0], [1], {0: x},
                beta=beta), want


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH", "HARD_SWISH"])
def test_activations_on_every_int8_input(op):
    rng = np.random.default_rng(len(op) + 10)
    pairs = [activation_case(op, rng, (-10, 2)) for _ in range(3 * CASES)]
    check([c for c, _ in pairs], [w for _, w in pairs])


@pytest.mark.parametrize("kernel,resolver", [("reference", RESOLVER),
                                             ("optimized", "BUILTIN")])
def test_softmax(kernel, resolver):
    """The fixed-point reference kernel, and the float32 table TFLite's optimized kernels
    use on x86."""
    rng = np.random.default_rng(11)
    pairs = [softmax_case(rng, int(rng.integers(1, 4)), int(rng.integers(1, 120)), kernel)
             for _ in range(3 * CASES)]
    check([c for c, _ in pairs], [w for _, w in pairs], resolver)


# -- QUANTIZE, DEQUANTIZE --------------------------------------------------------------------

def test_quantize_requantize_dequantize():
    rng = np.random.default_rng(12)
    cases, expected = [], []
    for _ in range(CASES):
        s, z = scale(rng, -8, 0), int(rng.integers(-128, 128))
        real = (rng.standard_normal(64) * 200 * s).astype(np.float32)
        # exact ties of real / s
        real[:8] = ((np.arange(8) - 4 + 0.5) * s).astype(np.float32)
        want = ops.quantize(real, scale=s, zero_point=z)
        cases.append(case("QUANTIZE", [tensor(real.shape, type="FLOAT32"),
                                       tensor(real.shape, s, z)], [0], [1], {0: real}))
        expected.append(want)
        x = int8(rng, (64,))
        s2, z2 = scale(rng, -8, 0), int(rng.integers(-128, 128))
        want = ops.requantize_tensor(x, input_scale=s, input_zero_point=z, output_scale=s2,
                                     output_zero_point=z2)
        cases.append(case("QUANTIZE", [tensor(x.shape, s, z), tensor(x.shape, s2, z2)], [0],
                          [1], {0: x}))
        expected.append(want)
    check(cases, expected)
    dequantize_cases, dequantized = [], []
    for _ in range(CASES):
        s, z = scale(rng, -8, 0), int(rng.integers(-128, 128))
        dequantize_cases.append(case("DEQUANTIZE", [tensor((256,), s, z),
                                                    tensor((256,), type="FLOAT32")],
                                     [0], [1], {0: ALL_CODES[0]}))
        dequantized.append(ops.dequantize(ALL_CODES[0], scale=s, zero_point=z))
    for result, want in zip(run_oracle(dequantize_cases), dequantized, strict=True):
        got = np.asarray(result["outputs"][0], dtype=np.float32)
        assert got.view(np.int32).tolist() == want.view(np.int32).tolist()
