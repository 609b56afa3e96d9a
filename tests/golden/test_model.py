"""golden.model: .tflite files as graphs of golden ops, judged by the TFLite interpreter.

* The three converted models of tests/models/: every layer output on 32 digits and the final
  output on all 450 equal the interpreter's (BUILTIN_REF), recorded by
  tools/record_model_oracle.py; live as well when the oracle environment exists.
* Every single-op case of tests/golden's recorded oracle suites, loaded as a model file by
  the importer (not by the test's own parameter derivation) equals the interpreter's output.
* Bad files are refused with errors naming the operator and its index.
"""

import math
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from golden.model import SUPPORTED_OPS, ModelError, load
from tests.golden.oracle import ORACLE_PYTHON, load_recording

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "models"
NAMES = ("digits_cnn", "mobilenet_style", "residual")
sys.path.insert(0, str(ROOT / "tools"))
from tflite_oracle import build_model  # noqa: E402


def oracle(name):
    return np.load(MODELS / "data" / f"{name}_oracle.npz")


@pytest.mark.parametrize("name", NAMES)
def test_every_layer_equals_the_interpreter(name):
    model = load(MODELS / f"{name}.tflite")
    recorded = oracle(name)
    layer_images = recorded["op0"].shape[0]
    values = model.run(recorded["input"][:layer_images])
    for layer in model.layers:
        expected = recorded[f"op{layer.index}"]
        got = values[layer.output].reshape(expected.shape)
        wrong = int((got != expected).sum())
        assert wrong == 0, f"{name} operator {layer.index} {layer.op}: {wrong} differ"
    final = model.run(recorded["input"])[model.output]
    np.testing.assert_array_equal(final, recorded["output"])


@pytest.mark.parametrize("name", NAMES)
def test_accuracy_is_the_interpreters(name):
    """The recorded int8 accuracy is what golden computes (and it is a trained model)."""
    model = load(MODELS / f"{name}.tflite")
    recorded = oracle(name)
    y = model.run(recorded["input"])[model.output]
    accuracy = np.mean(y.argmax(axis=1) == recorded["labels"])
    assert accuracy == np.mean(recorded["output"].argmax(axis=1) == recorded["labels"])
    assert accuracy > 0.9


@pytest.mark.skipif(not ORACLE_PYTHON.exists(), reason="no oracle environment "
                                                       "(bash tools/make_oracle_env.sh)")
@pytest.mark.parametrize("name", NAMES)
def test_live_interpreter(name, tmp_path):
    """The interpreter run now, on every layer, against golden."""
    subprocess.run([str(ORACLE_PYTHON), str(ROOT / "tools" / "record_model_oracle.py"), name,
                    "--out-dir", str(tmp_path)], check=True, capture_output=True)
    live = np.load(tmp_path / f"{name}_oracle.npz")
    model = load(MODELS / f"{name}.tflite")
    values = model.run(live["input"][:live["op0"].shape[0]])
    for layer in model.layers:
        np.testing.assert_array_equal(values[layer.output].reshape(live[f"op{layer.index}"].shape),
                                      live[f"op{layer.index}"])


def _single_input_int8(case):
    specs = case["tensors"]
    graph_inputs = [i for i in case["inputs"] if specs[i].get("data") is None]
    return (len(graph_inputs) == 1 and specs[graph_inputs[0]]["type"] == "INT8"
            and specs[case["outputs"][0]]["type"] == "INT8"), graph_inputs


def test_every_recorded_single_op_case():
    """Each recorded case as a .tflite file through the importer: equal to the interpreter,
    or refused with the operator named (MEAN or PAD on the batch axis, say)."""
    compared = refused = 0
    for suite in load_recording().values():
        if suite["resolver"] != "BUILTIN_REF":
            continue
        for case, result in zip(suite["cases"], suite["results"], strict=True):
            usable, graph_inputs = _single_input_int8(case)
            if not usable or case["op"] not in SUPPORTED_OPS:
                continue
            try:
                model = load(build_model(case))
            except ModelError as error:
                assert f"operator 0 ({case['op']})" in str(error)
                refused += 1
                continue
            y = model.run(np.asarray(case["feeds"][str(graph_inputs[0])]))[model.output]
            np.testing.assert_array_equal(y, np.asarray(result["outputs"][0]),
                                          err_msg=f"{case['op']} {case.get('options')}")
            compared += 1
    assert compared >= 300 and refused < compared // 4, (compared, refused)


# -- refusals ----------------------------------------------------------------------------------

def _tensor(shape, type_="INT8", scale=0.05, zero_point=0, data=None, **extra):
    spec = {"shape": list(shape), "type": type_, "data": data, **extra}
    if scale is not None:
        spec.update(scale=[scale], zero_point=[zero_point])
    return spec


def _fc_case(type_="INT8", in_scale=0.05, w_scale=0.02, out_scale=0.1, signature=None):
    w = np.arange(-6, 6).reshape(3, 4).tolist()
    x = _tensor((1, 4), type_, in_scale, 0)
    if signature is not None:
        x["signature"] = signature
    quantized = type_ != "FLOAT32"
    weights = _tensor((3, 4), type_ if quantized else "FLOAT32",
                      w_scale if quantized else None, 0, data=w)
    out = _tensor((1, 3), type_, out_scale if quantized else None, 0)
    return {"op": "FULLY_CONNECTED", "options": {"fused_activation_function": 0},
            "tensors": [x, weights, out], "inputs": [0, 1], "outputs": [2],
            "feeds": {"0": [[1, 2, 3, 4]]}}


def test_fully_connected_case_runs():
    model = load(build_model(_fc_case()))
    assert [layer.op for layer in model.layers] == ["FULLY_CONNECTED"]
    assert model.layers[0].on_engine


@pytest.mark.parametrize("case, message", [
    (_fc_case("FLOAT32", None, None, None), "operator 0 (FULLY_CONNECTED): input 't0' is "
                                            "FLOAT32: a float model is not supported"),
    (dict(_fc_case(), op="RELU"), "operator 0 (RELU) is not supported"),
    (_fc_case(signature=[1, -1]), "operator 0 (FULLY_CONNECTED): tensor 't0' has a dynamic "
                                  "shape [1, -1]"),
])
def test_refusals_name_the_operator(case, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        load(build_model(case))


def test_int16_activations_are_refused():
    case = {"op": "ADD", "options": {"fused_activation_function": 0},
            "tensors": [_tensor((1, 4), "INT16", 0.01), _tensor((1, 4), "INT16", 0.01),
                        _tensor((1, 4), "INT16", 0.02)],
            "inputs": [0, 1], "outputs": [2]}
    case["tensors"][1]["data"] = [1, 2, 3, 4]
    with pytest.raises(ModelError, match=r"operator 0 \(ADD\): input 0 't0' is INT16: "
                                         r"int16 activations"):
        load(build_model(case))


@pytest.mark.parametrize("content, message", [
    (b"not a model at all", "is not a TFLite flatbuffer"),
    (None, "is not a readable TFLite model"),
])
def test_corrupt_files(content, message):
    if content is None:      # a real model cut short
        content = (MODELS / "residual.tflite").read_bytes()[:400]
    with pytest.raises(ModelError, match=message):
        load(content)


def test_missing_file():
    with pytest.raises(OSError):
        load(MODELS / "no_such_model.tflite")


def test_wrong_input_is_refused():
    model = load(MODELS / "digits_cnn.tflite")
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 8, 8, 1\]"):
        model.run(np.zeros((1, 8, 8), np.int8))
    with pytest.raises(ValueError, match=r"x must hold values in \[-128, 127\]"):
        model.run(np.full((1, 8, 8, 1), 200))
    with pytest.raises(TypeError, match="x must hold int8 codes"):
        model.run(np.zeros((1, 8, 8, 1), np.float32))


def test_multiplier_above_one_is_a_positive_shift():
    """s_in·s_w/s_out ≥ 1 gives shift > 0, as TFLite's QuantizeMultiplier does."""
    model = load(build_model(_fc_case(in_scale=0.5, w_scale=0.5, out_scale=0.05)))
    gemm = model.layers[0].gemm
    assert (gemm.shift == 3).all()         # 5 = 0.625 · 2^3


# -- TFLite's optimized x86 kernels ------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_x86_kernels_are_double_half_up(name):
    """OpResolverType.BUILTIN (TFLite's optimized kernels on x86, recorded): golden with
    rounding="double_half_up" equals every layer; the reference rounding does not."""
    recorded = np.load(MODELS / "data" / f"{name}_oracle_BUILTIN.npz")
    images = recorded["op0"].shape[0]
    differ = 0
    for rounding in ("double_half_up", "double"):
        model = load(MODELS / f"{name}.tflite", rounding=rounding)
        final = model.run(recorded["input"])[model.output]
        wrong = int((final != recorded["output"]).sum())
        values = model.run(recorded["input"][:images])
        for layer in model.layers:
            expected = recorded[f"op{layer.index}"]
            wrong += int((values[layer.output].reshape(expected.shape) != expected).sum())
        if rounding == "double_half_up":
            assert wrong == 0
        else:
            differ = wrong
    assert differ > 0          # the two kernel sets round differently on these models


def _srdhm_reference(a, b):
    """a·b / 2^31 rounded half toward +∞ (gemmlowp's nudge), saturating −2^31·−2^31."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    return math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2))


def test_double_half_up_against_fractions():
    from golden.tflite import multiply_by_quantized_multiplier

    rng = random.Random(11)
    for _ in range(3000):
        x = rng.randint(-(1 << 31), (1 << 31) - 1) >> rng.randint(0, 31)
        m0, shift = rng.randint(1 << 30, (1 << 31) - 1), -rng.randint(0, 31)
        if rng.random() < 0.3:          # exact ties of the final shift: x·2^30/2^31 = x/2
            shift = -rng.randint(1, 20)
            x = (rng.randint(-1000, 1000) * 2 + 1) << -shift
            m0 = 1 << 30
        high = _srdhm_reference(x, m0)
        expected = math.floor(Fraction(high, 1 << -shift) + Fraction(1, 2))
        assert multiply_by_quantized_multiplier(x, m0, shift, rounding="double_half_up") == \
            expected
