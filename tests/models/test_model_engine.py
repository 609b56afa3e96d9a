"""sim.model and ``qmac model``: .tflite models on the simulated engine.

* The lowerings (FC, grouped convolution, depthwise as Toeplitz GEMMs or one column per
  channel) against golden's layers, with an exact numpy GEMM in place of the simulator, over
  random strides, dilations, paddings, depth multipliers and array widths.
* The three models of tests/models on the RTL (the generated Verilog on Verilator's compiled
  harness, or Amaranth's simulator where there is no Verilator; ``QMAC_MODEL_SIM`` chooses)
  on one digit each, on a 4×4 engine whose passes are 16 deep: every layer equal to the
  TFLite interpreter's recorded output.
* ``qmac model inspect`` / ``qmac model run`` end to end, with bad input refused.
* A multiplier ≥ 1 (a positive shift): refused by an engine without left shifts, naming the
  operator; run bit-exact by the engine :func:`sim.model.fit_engine` chooses.
"""

import math
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from golden import ops
from golden.layers import conv2d, fully_connected
from golden.model import GemmParams, load
from hw.config import ArrayConfig, EngineConfig
from qmac.cli import main as qmac
from sim import fast
from sim.model import check_engine, fit_engine, lower, run_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "models"
NAMES = ("digits_cnn", "mobilenet_style", "residual")
sys.path.insert(0, str(ROOT / "tools"))
from tflite_oracle import build_model  # noqa: E402

SIM = os.environ.get("QMAC_MODEL_SIM", "verilator" if fast.available() else "amaranth")
#: One engine for the three models (K up to 512 in passes of 16, 16 channels a command):
#: one build for every RTL test here.
MODEL_ENGINE = EngineConfig(ArrayConfig(rows=4, cols=4, kmax=16, per_channel=True,
                                        name="models_4x4"), max_k=512, max_n=16)


def exact_gemm(engine, commands, params):
    """What a correct engine returns for each command: golden's fully-connected layer."""
    results = []
    for command in commands:
        t = command.task
        args = command.gemm_args(params)
        y = fully_connected(t.x[command.rows], t.w[command.channels], args.pop("bias"),
                            weight_zero_point=0, **args)
        results.append((y, 1))
    return results


def _random_params(rng, kind, x_channels):
    kh, kw = rng.integers(1, 4, size=2)
    m = int(rng.integers(1, 4))
    n = x_channels * m if kind == "depthwise_conv2d" else int(rng.integers(1, 6))
    if kind == "depthwise_conv2d":
        weights = rng.integers(-127, 128, size=(1, kh, kw, n))
    else:
        groups = int(rng.choice([g for g in (1, 2, 3) if x_channels % g == 0]))
        n = groups * int(rng.integers(1, 4))
        weights = rng.integers(-127, 128, size=(n, kh, kw, x_channels // groups))
    return GemmParams(
        kind, weights, rng.integers(-5000, 5000, size=n), int(rng.integers(-128, 128)),
        np.zeros(n, np.int64), int(rng.integers(-128, 128)),
        rng.integers(1 << 30, (1 << 31) - 1, size=n), rng.integers(-12, -6, size=n),
        -128, 127, stride=tuple(int(v) for v in rng.integers(1, 3, size=2)),
        dilation=tuple(int(v) for v in rng.integers(1, 3, size=2)),
        padding=str(rng.choice(["same", "valid"])))


@pytest.mark.parametrize("kind, mapping", [("depthwise_conv2d", "toeplitz"),
                                           ("depthwise_conv2d", "per_channel"),
                                           ("conv2d", "toeplitz")])
@pytest.mark.parametrize("seed", range(12))
def test_lowering_equals_golden(kind, mapping, seed):
    rng = np.random.default_rng(seed)
    channels = int(rng.integers(1, 7))
    x = rng.integers(-128, 128, size=(int(rng.integers(1, 3)), int(rng.integers(5, 12)),
                                      int(rng.integers(5, 12)), channels))
    params = _random_params(rng, kind, channels)
    cols = int(rng.choice([2, 3, 4, 8]))
    common = params.requant()
    if kind == "conv2d":
        expected = conv2d(x, params.weights, params.bias, weight_zero_point=0,
                          stride=params.stride, padding=params.padding,
                          dilation=params.dilation, **common)
    else:
        expected = ops.depthwise_conv2d(x, params.weights, params.bias, stride=params.stride,
                                        padding=params.padding, dilation=params.dilation,
                                        **common)
    out = np.empty(expected.shape, np.int64)
    tasks = lower(params, x, cols=cols, depthwise=mapping)
    for task in tasks:
        y = fully_connected(task.x, task.w, task.bias, weight_zero_point=0,
                            **{**common, "multiplier": task.multiplier, "shift": task.shift})
        task.scatter(y, out)
    np.testing.assert_array_equal(out, expected)
    if kind == "depthwise_conv2d" and mapping == "toeplitz":
        # every command is m·R·P columns wide: P = min(cols, OW) output pixels of a row,
        # R = cols // (m·P) rows (at least 1, at most OH)
        m = params.weights.shape[3] // channels
        strip = min(cols, expected.shape[2])
        most = max(1, min(expected.shape[1], cols // (m * strip)))
        assert len({t.w.shape[0] for t in tasks}) == 1
        assert tasks[0].w.shape[0] in {m * r * strip for r in range(1, most + 1)}


def test_toeplitz_fills_the_columns():
    """The depthwise layers of the MobileNet-style model: the Toeplitz lowering's commands
    are 8 columns × 2 filters wide where one-column-per-channel's are 1, and the MACs it
    performs are span/KW = 10/3 of the real ones."""
    model = load(MODELS / "mobilenet_style.tflite")
    layer = next(layer for layer in model.layers if layer.op == "DEPTHWISE_CONV_2D")
    x = np.zeros((1, 8, 8, 8), np.int64)
    toeplitz = lower(layer.gemm, x, cols=8)
    naive = lower(layer.gemm, x, cols=8, depthwise="per_channel")
    assert [t.shape for t in toeplitz] == [(8, 30, 16)] * 8
    assert [t.shape for t in naive] == [(64, 9, 1)] * 16
    real = layer.gemm.macs(x.shape)
    assert sum(np.prod(t.shape) for t in toeplitz) * 3 == real * 10
    # the strided one (OW = 4): on a batch, two output rows share an X row to fill the 8
    # columns; on one image M is below a tile of rows already, so packing would only
    # deepen K
    strided = [layer for layer in model.layers if layer.op == "DEPTHWISE_CONV_2D"][1]
    tasks = lower(strided.gemm, np.zeros((16, 8, 8, 16), np.int64), cols=8)
    assert [t.shape for t in tasks] == [(16 * 2, 5 * 9, 8)] * 16
    tasks = lower(strided.gemm, np.zeros((1, 8, 8, 16), np.int64), cols=8)
    assert [t.shape for t in tasks] == [(4, 3 * 9, 4)] * 16


@pytest.mark.parametrize("name", NAMES)
def test_lowered_models_equal_the_interpreter(name):
    """Both depthwise lowerings on an exact GEMM give the interpreter's outputs."""
    model = load(MODELS / f"{name}.tflite")
    recorded = np.load(MODELS / "data" / f"{name}_oracle.npz")
    for mapping in ("toeplitz", "per_channel"):
        run = run_model(model, recorded["input"][:8], depthwise=mapping, simulate=exact_gemm)
        assert run.matched
        np.testing.assert_array_equal(run.y, recorded["output"][:8])


@pytest.mark.parametrize("name", NAMES)
def test_rtl_equals_the_interpreter(name):
    """One digit through the generated engine: every layer the interpreter's."""
    model = load(MODELS / f"{name}.tflite")
    recorded = np.load(MODELS / "data" / f"{name}_oracle.npz")
    run = run_model(model, recorded["input"][:1], engine=MODEL_ENGINE, sim=SIM)
    assert run.matched
    for layer in model.layers:
        expected = recorded[f"op{layer.index}"][:1]
        np.testing.assert_array_equal(run.values[layer.output].reshape(expected.shape),
                                      expected, err_msg=f"operator {layer.index} {layer.op}")
    engine_layers = [r for r in run.layers if r.where == "engine"]
    assert engine_layers and all(r.cycles > 0 and 0 < r.utilization <= 1
                                 for r in engine_layers)


# -- the command line --------------------------------------------------------------------------

def test_inspect(capsys, tmp_path):
    engine_file = tmp_path / "engine.toml"
    assert qmac(["model", "inspect", str(MODELS / "mobilenet_style.tflite"),
                 "--save-engine", str(engine_file)]) == 0
    out = capsys.readouterr().out
    assert "DEPTHWISE_CONV_2D" in out and "8× 8×30×16" in out and "SOFTMAX" in out
    assert "host" in out and "engine that fits" in out
    assert EngineConfig.load(engine_file).max_k >= 30


def test_run(capsys, tmp_path):
    recorded = np.load(MODELS / "data" / "digits_cnn_oracle.npz")
    np.save(tmp_path / "x.npy", recorded["input"][:1])
    MODEL_ENGINE.save(tmp_path / "engine.toml")
    status = qmac(["model", "run", str(MODELS / "digits_cnn.tflite"), "--input",
                   str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"), "--sim", SIM,
                   "--engine", str(tmp_path / "engine.toml")])
    out = capsys.readouterr().out
    assert status == 0, out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), recorded["output"][:1])
    assert "[3/3]" in out and "RESHAPE" in out and "on the host" in out
    assert "every layer matches golden/" in out


@pytest.mark.parametrize("argv, message", [
    (["--input", "{x}", "--out", "{tmp}/y.npy", "--sim", "spice"], "--sim must be one of"),
    (["--input", "{tmp}/none.npy", "--out", "{tmp}/y.npy"], "No such file"),
    (["--input", "{bad}", "--out", "{tmp}/y.npy"], "x must have shape [batch, 8, 8, 1]"),
    (["--input", "{x}", "--out", "{tmp}/y.txt"], "--out must be a .npy file name"),
])
def test_run_refuses_bad_input(argv, message, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 1), np.int8))
    np.save(tmp_path / "bad.npy", np.zeros((1, 4), np.int8))
    argv = [a.format(x=tmp_path / "x.npy", bad=tmp_path / "bad.npy", tmp=tmp_path)
            for a in argv]
    assert qmac(["model", "run", str(MODELS / "residual.tflite"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y.npy").exists()


def test_bad_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    assert qmac(["model", "inspect", str(bad)]) == 2
    assert "not a TFLite flatbuffer" in capsys.readouterr().err


# -- multipliers ≥ 1 ---------------------------------------------------------------------------

def _fc_model(in_scale, w_scale, out_scale, rounding="double"):
    w = (np.arange(12).reshape(3, 4) % 5 - 2).tolist()
    q = lambda shape, s, data=None: {"shape": shape, "type": "INT8", "scale": [s],  # noqa: E731
                                     "zero_point": [0], "data": data}
    case = {"op": "FULLY_CONNECTED", "options": {"fused_activation_function": 0},
            "tensors": [q([1, 4], in_scale), q([3, 4], w_scale, w), q([1, 3], out_scale)],
            "inputs": [0, 1], "outputs": [2]}
    return load(build_model(case), rounding=rounding)


def test_positive_shift():
    model = _fc_model(0.5, 0.5, 0.05)           # M = 5: M0 = 0.625·2^31, shift 3
    assert int(model.layers[0].gemm.shift[0]) == 3
    narrow = EngineConfig(ArrayConfig(rows=4, cols=4, per_channel=True, max_left_shift=2))
    with pytest.raises(ValueError, match=r"operator 0 \(FULLY_CONNECTED\) needs shift 3 .* "
                                         r"max_left_shift is 2"):
        check_engine(model, narrow)
    # the default configuration takes it as it is (max_left_shift 7: multipliers below 128)
    engine = fit_engine(model, ArrayConfig(rows=4, cols=4, per_channel=True))
    assert engine.array.max_left_shift == ArrayConfig().max_left_shift >= 3
    check_engine(model, engine)
    x = np.array([[-3, 1, 2, -1], [4, -4, 0, 3]])
    run = run_model(model, x, engine=engine, sim="amaranth")
    assert run.matched
    # independent: real multiplier 5 exactly (M0·2^(3−31) = 5), no rounding anywhere
    w = np.arange(12).reshape(3, 4) % 5 - 2
    np.testing.assert_array_equal(run.y, np.clip(5 * (x @ w.T), -128, 127))


def test_rounding_no_hardware_builds_is_refused(capsys):
    assert qmac(["model", "inspect", str(MODELS / "residual.tflite"), "--rounding",
                 "double_half_up"]) == 2
    assert "'double_half_up' is not one a hardware configuration builds" in \
        capsys.readouterr().err


def test_single_rounding_engine():
    """A TFLITE_SINGLE_ROUNDING deployment: golden and the engine (Amaranth's simulator)
    both round once. M = 1/8; the row (−4, 0, 0, 0) gives −4/8, a tie that single rounding
    sends to 0 and TFLite's default double rounding to −1."""
    model = _fc_model(0.5, 0.25, 1.0, rounding="single")     # M = 1/8
    engine = fit_engine(model, ArrayConfig(rows=4, cols=4, per_channel=True))
    assert engine.array.rounding == "single"
    x = np.array([[-3, 1, 2, -1], [4, -4, 0, 3], [-4, 0, 0, 0]])
    run = run_model(model, x, engine=engine, sim="amaranth")
    assert run.matched
    w = np.arange(12).reshape(3, 4) % 5 - 2
    exact = [[Fraction(int(v), 8) for v in row] for row in x @ w.T]
    np.testing.assert_array_equal(run.y, [[math.floor(v + Fraction(1, 2)) for v in row]
                                          for row in exact])    # single: ties toward +∞


#: tests/sim/test_fast.py's engines (3×4, both dataflows): the builds are shared.
SMALL_ENGINES = {
    "os": EngineConfig(ArrayConfig(rows=3, cols=4, kmax=8, name="engine_3x4"), max_k=64,
                       max_n=16),
    "ws": EngineConfig(ArrayConfig(rows=3, cols=4, dataflow="ws", name="engine_ws_3x4"),
                       max_k=64, max_n=16, max_m=16),
}


@pytest.mark.skipif(not fast.available(), reason="no Verilator or C++ compiler")
@pytest.mark.parametrize("dataflow", SMALL_ENGINES)
def test_verilog_engine_equals_the_interpreter(dataflow):
    """The MobileNet-style model on the generated Verilog (Verilator's compiled harness) of
    a 3×4 engine of either dataflow: 4-column Toeplitz strips, M split into commands of 16
    rows (weight-stationary), N into 16 channels; every layer the interpreter's."""
    model = load(MODELS / "mobilenet_style.tflite")
    recorded = np.load(MODELS / "data" / "mobilenet_style_oracle.npz")
    run = run_model(model, recorded["input"][:1], engine=SMALL_ENGINES[dataflow],
                    sim="verilator")
    assert run.matched
    for layer in model.layers:
        expected = recorded[f"op{layer.index}"][:1]
        np.testing.assert_array_equal(run.values[layer.output].reshape(expected.shape),
                                      expected, err_msg=f"operator {layer.index} {layer.op}")


def test_a_wrong_engine_is_caught_layer_by_layer():
    """An engine that is off by one in one layer: that layer is recorded as a mismatch (every
    output of it), the others match, and the run goes on with the hardware's output."""
    model = load(MODELS / "residual.tflite")
    recorded = np.load(MODELS / "data" / "residual_oracle.npz")
    wrong_layer = 5                                         # the grouped 1×1 convolution

    def faulty(engine, commands, params):
        results = exact_gemm(engine, commands, params)
        if params is model.layers[wrong_layer].gemm:
            results = [(np.minimum(y + 1, 127), cycles) for y, cycles in results]
        return results

    run = run_model(model, recorded["input"][:2], simulate=faulty)
    assert not run.matched
    bad = [r for r in run.layers if not r.matched]
    assert [r.index for r in bad] == [wrong_layer] and bad[0].mismatches > 0


def test_run_exits_1_on_a_mismatch(monkeypatch, tmp_path, capsys):
    import sim.model

    def faulty(engine, commands, params, **_):
        return [(np.minimum(y + 1, 127), cycles)
                for y, cycles in exact_gemm(engine, commands, params)]

    monkeypatch.setattr(sim.model, "_simulate_layer", faulty)
    recorded = np.load(MODELS / "data" / "digits_cnn_oracle.npz")
    np.save(tmp_path / "x.npy", recorded["input"][:1])
    assert qmac(["model", "run", str(MODELS / "digits_cnn.tflite"), "--input",
                 str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and "MISMATCH in 2 layers" in captured.err
