"""golden's ``rounding="fp32"``: XNNPACK's int8 requantization (TFLite's XNNPACK delegate).

* The arithmetic against independent float32 reasoning: Python floats rounded to float32 with
  ``struct`` (a double product or quotient of two float32 values rounds to the correctly
  rounded float32 result, 53 ≥ 2·24 + 2), Python's ``round`` (half to even), hand-made ties and
  accumulators beyond 2^24, where float32 rounds the accumulator itself.
* The three models of tests/models/ against TensorFlow 2.14.1's interpreter with the XNNPACK
  delegate, recorded by tools/record_model_oracle.py ``--resolver XNNPACK`` (every layer on
  32 digits, the final output on 450): golden with ``"fp32"`` equals every element, the two
  fixed-point roundings do not. Live as well when .venv-tf has TensorFlow and ``tflite``,
  with tools/probe_fc_rounding.py's crafted single-op FULLY_CONNECTED cases.
* tests/golden/oracle.py's single-op suites on the delegate (tools/record_xnnpack_suites.py):
  convolutions and MEAN over height and width equal fp32, ADD equals TFLite's ADD.
* No hardware builds it: ``qmac model`` and ``sim.model`` refuse it, saying so.
"""

import gzip
import json
import random
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from golden.model import load
from golden.tflite import (
    GOLDEN_ROUNDINGS,
    XNNPACK_ROUNDING,
    multiply_by_quantized_multiplier,
    requantize,
    xnnpack_mean_scale,
    xnnpack_scale,
)
from hw.config import REQUANT_ROUNDINGS
from qmac.cli import main as qmac
from sim.model import fit_engine
from tests.golden.oracle import SUITES, golden_output

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "models"
NAMES = ("digits_cnn", "mobilenet_style", "residual")
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"
sys.path.insert(0, str(ROOT / "tools"))
from tflite_oracle import build_model  # noqa: E402

WIDE = dict(act_min=-(1 << 40), act_max=1 << 40)     # no clamping in the arithmetic tests


def f32(value):
    """A Python float rounded to the nearest float32 (ties to even)."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def reference(acc, scale, zero_point=0, lo=-(1 << 40), hi=1 << 40):
    """XNNPACK's fp32 requantization in Python floats: float32(acc) · scale in float32,
    rounded half to even, plus the zero point, clamped."""
    return min(max(round(f32(f32(float(acc)) * scale)) + zero_point, lo), hi)


def golden(acc, scale, zero_point=0, **clamp):
    clamp = clamp or WIDE
    return requantize(np.asarray(acc, dtype=np.int64), multiplier=np.float32(scale), shift=0,
                      output_zero_point=zero_point, rounding="fp32", **clamp)


def test_fp32_is_a_golden_rounding_no_hardware_builds():
    assert XNNPACK_ROUNDING == "fp32"
    assert XNNPACK_ROUNDING in GOLDEN_ROUNDINGS
    assert XNNPACK_ROUNDING not in REQUANT_ROUNDINGS


def test_ties_go_to_even():
    # scale 1/2 is exact: odd accumulators are exact ties
    acc = [1, 3, 5, -1, -3, -5, 7, 2]
    assert golden(acc, 0.5).tolist() == [0, 2, 2, 0, -2, -2, 4, 1]
    # scale 1/4: x.25 and x.75 are not ties, x.5 is
    assert golden([1, 2, 3, 6, 10, -2, -6], 0.25).tolist() == [0, 0, 1, 2, 2, 0, -2]


def test_float32_rounds_large_accumulators():
    """Beyond 2^24 float32 holds only even (then multiples of 4…) integers: the accumulator
    is rounded before the multiplication, to even on a tie."""
    big = 1 << 24
    got = golden([big + 1, big + 3, big + 5, -(big + 1), -(big + 3), (1 << 25) + 2,
                  (1 << 25) + 6, (1 << 31) - 1], 1.0)
    assert got.tolist() == [big, big + 4, big + 4, -big, -(big + 4), 1 << 25, (1 << 25) + 8,
                            1 << 31]
    # the exact product would give big + 1 here; float32 cannot hold it
    assert golden([big + 1], 1.0)[0] != big + 1


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.0123456, 0.7071, 1.9, 37.25])
def test_exhaustive_small_accumulators(scale):
    scale = f32(scale)
    acc = np.arange(-5000, 5001)
    expected = [reference(int(a), scale) for a in acc]
    np.testing.assert_array_equal(golden(acc, scale), expected)


def test_random_accumulators_zero_points_and_clamps():
    rng = random.Random(20261203)
    for _ in range(3000):
        acc = rng.randint(-(1 << 31), (1 << 31) - 1) >> rng.randint(0, 31)
        scale = f32(rng.uniform(2.0 ** -20, 2.0) * 2.0 ** rng.randint(-8, 0))
        zero_point = rng.randint(-128, 127)
        lo = rng.randint(-128, 0)
        hi = rng.randint(lo, 127)
        assert golden(acc, scale, zero_point, act_min=lo, act_max=hi).item() == \
            reference(acc, scale, zero_point, lo, hi)


def test_float32_product_is_not_the_exact_product():
    """The float32 product rounds before the half-to-even rounding: somewhere that differs
    from rounding the exact rational product, and golden follows float32."""
    rng = random.Random(5)
    found = 0
    for _ in range(20000):
        acc, scale = rng.randint(-(1 << 24), 1 << 24), f32(rng.uniform(0.001, 1.0))
        exact = Fraction(acc) * Fraction(scale)
        floor = exact.numerator // exact.denominator
        rest = exact - floor
        exact_round = floor + (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2))
        if exact_round != reference(acc, scale):
            assert golden(acc, scale).item() == reference(acc, scale)
            found += 1
    assert found > 0


def test_per_channel_scales_broadcast_along_the_last_axis():
    scales = np.array([0.5, 0.25, 3.0], dtype=np.float32)
    acc = np.array([[3, 6, 5], [-3, -2, 1]])
    got = requantize(acc, multiplier=scales, shift=0, output_zero_point=4, act_min=-128,
                     act_max=127, rounding="fp32", bias=np.array([0, 0, 1]))
    expected = [[reference(int(a) + (j == 2), float(scales[j]), 4, -128, 127)
                 for j, a in enumerate(row)] for row in acc]
    np.testing.assert_array_equal(got, expected)


def test_scale_is_xnnpacks_float32_expression():
    """input · filter / output, left to right, each step rounded to float32 — which differs
    from other evaluation orders and from TFLite's double product in some layers."""
    rng = random.Random(3)
    reordered = 0
    for _ in range(5000):
        s_in, s_out = f32(rng.uniform(1e-3, 0.1)), f32(rng.uniform(1e-3, 0.1))
        s_w = [f32(rng.uniform(1e-4, 1e-2)) for _ in range(4)]
        expected = [f32(f32(s_in * w) / s_out) for w in s_w]
        got = xnnpack_scale(s_in, np.array(s_w, dtype=np.float32), s_out)
        assert got.dtype == np.float32
        assert got.tolist() == expected
        assert xnnpack_scale(s_in, s_w[0], s_out).item() == expected[0]
        reordered += sum(f32(s_in * f32(w / s_out)) != e for w, e in zip(s_w, expected,
                                                                         strict=True))
    assert reordered > 0


def test_mean_scale():
    rng = random.Random(8)
    for _ in range(2000):
        s_in, s_out = f32(rng.uniform(1e-3, 0.1)), f32(rng.uniform(1e-3, 0.1))
        count = rng.randint(1, 4096)
        assert xnnpack_mean_scale(s_in, s_out, count) == f32(s_in / f32(s_out * count))


def test_refusals():
    with pytest.raises(ValueError, match="float32 scale, not m0"):
        multiply_by_quantized_multiplier(100, 1 << 30, -1, rounding="fp32")
    with pytest.raises(TypeError, match="float32 scale as multiplier"):
        requantize([5], multiplier=1 << 30, shift=0, output_zero_point=0, act_min=-128,
                   act_max=127, rounding="fp32")
    with pytest.raises(TypeError, match="not None"):
        requantize([5], multiplier=None, shift=0, output_zero_point=0, act_min=-128,
                   act_max=127, rounding="fp32")
    with pytest.raises(ValueError, match="shift must be 0"):
        requantize([5], multiplier=np.float32(0.5), shift=-1, output_zero_point=0,
                   act_min=-128, act_max=127, rounding="fp32")
    with pytest.raises(ValueError, match=r"in \(0, 256\)"):
        golden([5], 256.0)
    with pytest.raises(ValueError, match="below 256"):
        xnnpack_scale(1.0, 300.0, 1.0)
    with pytest.raises(ValueError, match=r"input_scale / output_scale must be in"):
        xnnpack_mean_scale(1.0, 1000.0, 4)
    with pytest.raises(ValueError, match="count must be at least 1"):
        xnnpack_mean_scale(1.0, 1.0, 0)


# -- whole models against the interpreter with the XNNPACK delegate ----------------------------

def recording(name):
    return np.load(MODELS / "data" / f"{name}_oracle_XNNPACK.npz")


def wrong_elements(model, recorded):
    """Elements that differ from the recording: every layer fed the recorded outputs of the
    layers before it (the backend's own inputs), and the whole model on every image."""
    images = recorded["op0"].shape[0]
    values = {model.input: recorded["input"][:images]}
    values.update({layer.output: recorded[f"op{layer.index}"] for layer in model.layers})
    wrong = {}
    for layer in model.layers:
        expected = recorded[f"op{layer.index}"]
        got = layer.golden(*(values[i] for i in layer.inputs)).reshape(expected.shape)
        wrong[f"op{layer.index} {layer.op}"] = int((got != expected).sum())
    wrong["output"] = int((model.run(recorded["input"])[model.output] !=
                           recorded["output"]).sum())
    return wrong


@pytest.mark.parametrize("name", NAMES)
def test_recording_is_delegated(name):
    """The recording is of XNNPACK: the interpreter ran the GEMM-shaped ops in a delegate."""
    recorded = recording(name)
    assert str(recorded["interpreter"]).startswith("tensorflow ")
    model = load(MODELS / f"{name}.tflite")
    delegated = set(recorded["delegated"].tolist())
    gemm = {layer.index for layer in model.layers if layer.on_engine}
    assert gemm and gemm <= delegated


@pytest.mark.parametrize("name", NAMES)
def test_xnnpack_is_fp32(name):
    recorded = recording(name)
    wrong = wrong_elements(load(MODELS / f"{name}.tflite", rounding="fp32"), recorded)
    assert set(wrong.values()) == {0}, wrong
    for rounding in ("double", "double_half_up"):
        other = wrong_elements(load(MODELS / f"{name}.tflite", rounding=rounding), recorded)
        assert sum(other.values()) > 0, (rounding, other)


def _tensorflow_venv():
    if not TF_PYTHON.exists():
        return False
    probe = ("import importlib.util, sys; sys.exit(not (importlib.util.find_spec('tflite') "
             "and importlib.util.find_spec('tensorflow')))")
    return subprocess.run([str(TF_PYTHON), "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(not _tensorflow_venv(), reason="no .venv-tf with tensorflow and tflite "
                                                   "(bash tools/make_converter_env.sh; "
                                                   ".venv-tf/bin/pip install tflite)")
def test_live_xnnpack(tmp_path):
    """TensorFlow's interpreter with the XNNPACK delegate run now, against golden."""
    subprocess.run([str(TF_PYTHON), str(ROOT / "tools" / "record_model_oracle.py"),
                    "--resolver", "XNNPACK", "--out-dir", str(tmp_path)],
                   check=True, capture_output=True)
    for name in NAMES:
        live = np.load(tmp_path / f"{name}_oracle_XNNPACK.npz")
        wrong = wrong_elements(load(MODELS / f"{name}.tflite", rounding="fp32"), live)
        assert set(wrong.values()) == {0}, (name, wrong)


@pytest.mark.slow
@pytest.mark.skipif(not _tensorflow_venv(), reason="no .venv-tf with tensorflow and tflite")
def test_live_fc_probe():
    """tools/probe_fc_rounding.py's crafted FULLY_CONNECTED accumulators (≈ 10^9, where the
    roundings differ): the XNNPACK delegate equals fp32 alone, the x86 kernels
    double_half_up alone (TensorFlow 2.14.1 and 2.21.0 alike)."""
    done = subprocess.run([str(TF_PYTHON), str(ROOT / "tools" / "probe_fc_rounding.py")],
                          check=True, capture_output=True, text=True)
    lines = {tuple(line.split()[:2]): line for line in done.stdout.splitlines()
             if line.startswith("crafted")}
    assert "equal: fp32;" in lines["crafted", "BUILTIN"]
    assert "DELEGATE" in lines["crafted", "BUILTIN"]
    assert "equal: double_half_up;" in lines["crafted", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"]


# -- single-op suites ---------------------------------------------------------------------------

SUITE_RECORDING = ROOT / "tests" / "golden" / "data" / "xnnpack_oracle.json.gz"
GEMM_SUITES = ("DEPTHWISE_CONV_2D", "CONV_2D grouped")
SAME, STRIDE_2 = 0, 2


def suite_recording():
    with gzip.open(SUITE_RECORDING, "rt") as file:
        return json.load(file)


def _fp32_output(case, x=None):
    """golden with rounding="fp32" on the case as a .tflite file (its own input, or ``x``)."""
    model = load(build_model(case), rounding="fp32")
    graph_input = next(i for i in case["inputs"] if case["tensors"][i].get("data") is None)
    x = np.asarray(case["feeds"][str(graph_input)]) if x is None else x
    return model.run(x)[model.output], x, case["tensors"][graph_input]


def test_suite_recording_is_delegated_xnnpack():
    recorded = suite_recording()
    assert recorded["interpreter"].startswith("tensorflow ")
    for name in GEMM_SUITES + ("ADD", "MUL"):
        assert all(r["delegated"] for r in recorded["suites"][name]), name


@pytest.mark.parametrize("suite", GEMM_SUITES)
def test_suite_convolutions_are_fp32(suite):
    """Every delegated convolution equals golden's fp32 — except where XNNPACK did not
    convolve the input at all: some SAME, stride-2 convolutions with a 1×N or N×1 filter
    give the layer's output on an input of zero points only (bias and rounding right),
    on TensorFlow 2.14.1 and 2.21.0 alike (docs/models.md)."""
    make, _ = SUITES[suite]
    unread = 0
    for case, result in zip(make(), suite_recording()["suites"][suite], strict=True):
        y = np.asarray(result["outputs"])
        got, x, spec = _fp32_output(case)
        if np.array_equal(got.reshape(y.shape), y):
            continue
        options, kernel = case["options"], case["tensors"][case["inputs"][1]]["shape"][1:3]
        assert options["padding"] == SAME and options["stride_h"] == STRIDE_2, case["options"]
        assert 1 in kernel, kernel
        blank, _, _ = _fp32_output(case, np.full_like(x, spec["zero_point"][0]))
        np.testing.assert_array_equal(blank.reshape(y.shape), y)
        unread += 1
    assert unread < len(make()) // 4


@pytest.mark.parametrize("suite", ["MEAN", "MEAN keep_dims"])
def test_suite_mean(suite):
    """MEAN over height and width is delegated and equals golden's fp32 (XNNPACK's global
    average pooling); the other MEANs stay on TFLite's kernels, golden's MEAN."""
    make, _ = SUITES[suite]
    delegated = 0
    for case, result in zip(make(), suite_recording()["suites"][suite], strict=True):
        y = np.asarray(result["outputs"])
        if result["delegated"]:
            got, _, _ = _fp32_output(case)
            delegated += 1
        else:
            got = golden_output(case, "BUILTIN_REF")
        np.testing.assert_array_equal(np.asarray(got).reshape(y.shape), y)
    assert delegated > 0


def test_suite_add_is_tflites_mul_is_not():
    """XNNPACK's ADD gave TFLite's ADD (golden's) on every recorded case; its MUL (own
    fp32 arithmetic) differs from TFLite's in a few elements, which golden does not model."""
    recorded = suite_recording()["suites"]
    wrong = {}
    for op in ("ADD", "MUL"):
        make, _ = SUITES[op]
        wrong[op] = sum(int((np.asarray(golden_output(case, "BUILTIN_REF")).reshape(
            np.shape(r["outputs"])) != np.asarray(r["outputs"])).sum())
            for case, r in zip(make(), recorded[op], strict=True))
    assert wrong["ADD"] == 0
    assert wrong["MUL"] > 0


# -- no hardware builds it -------------------------------------------------------------------

def test_engine_refuses_fp32(capsys):
    model = load(MODELS / "digits_cnn.tflite", rounding="fp32")
    with pytest.raises(ValueError, match="'fp32' is not one a hardware configuration builds"):
        fit_engine(model)
    assert qmac(["model", "inspect", str(MODELS / "digits_cnn.tflite"), "--rounding",
                 "fp32"]) == 2
    assert "'fp32' is not one a hardware configuration builds" in capsys.readouterr().err


def test_load_refuses_unknown_rounding():
    with pytest.raises(ValueError, match="rounding must be one of .*fp32"):
        load(MODELS / "digits_cnn.tflite", rounding="xnnpack")
