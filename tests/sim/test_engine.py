"""The generated GemmEngine's Verilog on Icarus and Verilator (cocotb), against golden/.

Random shapes (K beyond kmax, ragged M and N, 1×1×1), random stalls on every stream,
per-tensor and per-channel parameters. The expected outputs come from
golden.layers.fully_connected directly; sim.gemm additionally scores inside the bench.
"""

import subprocess
import sys

import numpy as np
import pytest

from golden.layers import conv2d as golden_conv2d
from golden.layers import fully_connected as golden_fully_connected
from hw.config import ArrayConfig
from hw.engine import EngineConfig, engine_timing
from sim.gemm import conv2d, gemm
from sim.runner import simulator_available

ENGINES = {
    "os": EngineConfig(ArrayConfig(rows=3, cols=4, kmax=8, name="engine_3x4"), max_k=64,
                       max_n=16),
    "ws": EngineConfig(ArrayConfig(rows=3, cols=4, dataflow="ws", name="engine_ws_3x4"),
                       max_k=64, max_n=16, max_m=16),
}
ENGINE = ENGINES["os"]

# (M, K, N, stall, per_channel, seed)
CASES = [
    (1, 1, 1, 0.0, False, 1),
    (7, 20, 9, 0.4, True, 2),     # K = 2.5 passes, ragged M and N
    (6, 64, 16, 0.0, True, 3),    # the deepest K: 8 passes, exact partial sums
    (10, 5, 5, 0.7, False, 4),
]
CASES = [(case, dataflow) for dataflow in ENGINES for case in CASES]


def _need(sim):
    if not simulator_available(sim):
        pytest.fail(f"{sim} is not installed; .ci/run and `make` install it")


def _layer(rng, n, per_channel):
    count = n if per_channel else None   # None: one scalar for the tensor
    return dict(bias=rng.integers(-20000, 20000, n, dtype=np.int64),
                input_zero_point=int(rng.integers(-128, 128)),
                output_zero_point=int(rng.integers(-20, 20)),
                multiplier=rng.integers(1 << 30, 1 << 31, count, dtype=np.int64),
                shift=-rng.integers(7, 13, count, dtype=np.int64), act_min=-120, act_max=125)


def _expected(x, w, params, rounding="double"):
    return golden_fully_connected(x, w, params["bias"], weight_zero_point=0,
                                  input_zero_point=params["input_zero_point"],
                                  output_zero_point=params["output_zero_point"],
                                  multiplier=params["multiplier"], shift=params["shift"],
                                  act_min=params["act_min"], act_max=params["act_max"],
                                  rounding=rounding)


def _fill_drain_bound(engine, m, k, n):
    """Cycles of an unstalled command whose passes are at least pass_interval long: the first
    tiles load (k beats), every tile issues its k beats back to back, the last rows drain."""
    timing = engine_timing(engine)
    rows, cols = engine.array.rows, engine.array.cols
    tiles = -(-m // rows) * -(-n // cols)
    return k + 2 + tiles * k + timing.latency + rows


def _case_id(value):
    (m, k, n, stall, _, _), dataflow = value
    return f"{dataflow}-{m}x{k}x{n}-stall{stall}"


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_engine_matches_golden(sim, case):
    _need(sim)
    (m, k, n, stall, per_channel, seed), dataflow = case
    engine = ENGINES[dataflow]
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (m, k), dtype=np.int64)
    w = rng.integers(-127, 128, (n, k), dtype=np.int64)
    params = _layer(rng, n, per_channel)
    result = gemm(engine, x, w, sim=sim, stall=stall, seed=seed, check=False, **params)
    np.testing.assert_array_equal(result.y, _expected(x, w, params))
    assert result.verilog.endswith(f"{engine.name}_engine.v")
    if stall == 0.0 and k >= 8 and dataflow == "os":
        assert result.cycles <= _fill_drain_bound(engine, m, k, n)


def test_engine_other_arithmetic_on_icarus():
    """Shift-only requantization with banker's rounding, unsigned activations, binary
    weights, a 1×1 array with one-beat passes: every pass goes through the partial sums."""
    _need("icarus")
    array = ArrayConfig(rows=1, cols=1, kmax=1, act_signed=False, weight_bits=1,
                        weight_kind="binary", requant="shift", rounding="half_to_even",
                        name="engine_1x1")
    engine = EngineConfig(array, max_k=16, max_n=4)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (3, 13), dtype=np.int64)
    w = rng.choice(np.array([-1, 1], np.int64), (3, 13))
    params = dict(bias=rng.integers(-300, 300, 3, dtype=np.int64), input_zero_point=17,
                  output_zero_point=0, multiplier=None, shift=np.array([-3, -4, -5]),
                  act_min=-128, act_max=127)
    result = gemm(engine, x, w, sim="icarus", stall=0.3, check=False, **params)
    expected = golden_fully_connected(x, w, params["bias"], input_zero_point=17,
                                      weight_zero_point=0, output_zero_point=0,
                                      multiplier=None, shift=params["shift"], act_min=-128,
                                      act_max=127, rounding="half_to_even")
    np.testing.assert_array_equal(result.y, expected)


def test_conv2d_via_im2col_on_icarus():
    _need("icarus")
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (2, 5, 5, 3), dtype=np.int64)
    w = rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int64)
    params = _layer(rng, 4, True)
    result = conv2d(ENGINE, x, w, stride=2, padding="same", sim="icarus", check=False,
                    **params)
    expected = golden_conv2d(x, w, params["bias"], weight_zero_point=0, stride=2,
                             padding="same", **{k: v for k, v in params.items()
                                                if k != "bias"})
    np.testing.assert_array_equal(result.y, expected)


def test_qmac_run(tmp_path):
    """`qmac run` end to end: in.npz → out.npz, checked against golden/ by the test too."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (5, 70), dtype=np.int64)
    w = rng.integers(-127, 128, (6, 70), dtype=np.int64)
    params = _layer(rng, 6, True)
    np.savez(tmp_path / "in.npz", x=x, w=w, weight_zero_point=np.int64(0),
             **{k: np.asarray(v) for k, v in params.items()})
    command = [sys.executable, "-m", "qmac.cli", "run", "--rows", "2", "--cols", "4",
               "--bits", "8", "--kmax", "16", "--sim", "amaranth",
               "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "matches golden/ bit for bit (30 outputs)" in done.stdout
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["y"], _expected(x, w, params))
        # 3 M tiles × 2 N tiles, each issuing its K = 70 beats one per cycle at best
        assert int(out["cycles"]) >= 3 * 2 * 70


def test_qmac_run_refuses_bad_inputs(tmp_path):
    np.savez(tmp_path / "in.npz", x=np.zeros((2, 3), np.int64), shift=np.int64(-8),
             colour=np.int64(1))
    command = [sys.executable, "-m", "qmac.cli", "run", "--rows", "2", "--cols", "2",
               "--sim", "amaranth", "--inputs", str(tmp_path / "in.npz"),
               "--out", str(tmp_path / "out.npz")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "missing w; unknown colour" in done.stderr


def test_gemm_requires_a_multiplier():
    with pytest.raises(ValueError, match="multiplier .* is required unless"):
        gemm(ENGINE, np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64), shift=-3)
