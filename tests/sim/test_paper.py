"""The seed paper's experiments on the simulated engine (issue 11 §3, small p; larger p in
benchmarks/bench_paper.py). Every run compares every layer with golden's σ-quantized network
(sim.paper) and the final outputs here with the target table f* itself."""

import numpy as np
import pytest

from golden.fixedpoint_set import FixedPointSet, reachable_outputs, rounded_activation
from golden.paper import exact_affine, grid, indicator_table, random_table, represent
from qmac.cli import main
from sim.paper import random_search, run_network, run_target


def paper_run(tmp_path, *argv):
    """``qmac paper run … --out``: exit status 0 and the saved (x, y, target)."""
    out = tmp_path / "out.npz"
    assert main(["paper", "run", *map(str, argv), "--out", str(out)]) == 0
    return np.load(out)


def test_experiment_1_relu_indicator_on_all_of_q7(tmp_path, capsys):
    """γ·1_[α,β](x) with ReLU at p = 7, s = 1: exact on all 255 points of Q_{7,1}."""
    saved = paper_run(tmp_path, "--target", "indicator:-40:77:-99", "--p", 7)
    x = saved["x"][:, 0]
    assert len(x) == 255 and saved["y"].tolist() == np.where((x >= -40) & (x <= 77), -99,
                                                             0).tolist()
    assert "relu network for f*: Q^1_{7,1} → Q_{7,1}: 4 layers" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_experiment_1_on_the_generated_verilog(sim):
    qset = FixedPointSet(7, 1)
    table = indicator_table(qset, 1, [-128 + 1], [5], 127)
    run = run_network(*_layers(table, qset), qset, grid(qset, 1), sim=sim)
    np.testing.assert_array_equal(run.outputs, table)


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_gelu_in_the_engine_table_on_the_generated_verilog(sim):
    """⌈GELU⌋ at p = 3, s = 2 through the engine's table on the Verilog (Icarus under
    cocotb, the fast Verilator harness): f* on every grid point."""
    qset = FixedPointSet(3, 2)
    table = random_table(qset, 1, 4)
    network, run = run_target(table, qset, activation="gelu", sim=sim)
    assert run.config.activation_table
    np.testing.assert_array_equal(run.outputs, table)


def _layers(table, qset):
    network = represent(table, qset)
    return network.layers, network.activation


def test_experiment_2_five_hardtanh_reaches_only_its_lattice(capsys):
    """σ = 5·Hardtanh at p = 3, s = 1 (the activation table after the requantizer): random
    networks on the engine never output a value outside N_b of their output bias b, so
    none reaches all of Q_{3,1} and f*(x) = x is not represented."""
    qset = FixedPointSet(3, 1)
    generators = rounded_activation("hardtanh5", qset.numerators, qset)
    for bias, outputs, reached in random_search("hardtanh5", qset, 2, seed=11):
        expected = {max(-7, min(7, bias + 5 * k)) for k in range(-10, 11)}  # b + 5Z, clipped
        assert set(reached.tolist()) == expected
        assert set(outputs.tolist()) <= expected and len(expected) < len(qset)
    assert reachable_outputs(generators, qset, 0).tolist() == [-7, -5, 0, 5, 7]
    assert main(["paper", "reach", "--activation", "hardtanh5", "--p", "3",
                 "--networks", "1"]) == 0
    printed = capsys.readouterr().out
    assert "necessary condition N_b = Q for some b: False" in printed
    assert "every output inside N_b of its bias; 0 reached all 15 values" in printed


@pytest.mark.parametrize("binary,p,d", [(False, 1, 2), (True, 1, 2), (True, 2, 1)])
def test_experiment_3_binary_and_full_precision(tmp_path, binary, p, d):
    qset = FixedPointSet(p, 1)
    table = random_table(qset, d, 5)
    saved = paper_run(tmp_path, "--target", f"random:{d}:5", "--p", p,
                      *(["--binary"] if binary else []))
    np.testing.assert_array_equal(saved["x"], grid(qset, d))
    np.testing.assert_array_equal(saved["y"], table.reshape(-1))
    assert represent(table, qset, binary=binary).binary_weights == binary


def test_gelu_through_the_activation_table(tmp_path, capsys):
    """GELU is not a clamp: each hidden layer's outputs pass the engine's run-time loaded
    table (no separate stage), every layer compared with golden's ⌈GELU⌋."""
    qset = FixedPointSet(2, 1)
    saved = paper_run(tmp_path, "--target", "random:1:3", "--p", 2, "--activation", "gelu")
    np.testing.assert_array_equal(saved["y"], random_table(qset, 1, 3))
    assert "⌈σ⌋ in the engine's activation table" in capsys.readouterr().out


def test_sigma_table_in_the_engine_is_not_the_clamp():
    """A SiLU network at p = 3, s = 2 (⌈SiLU⌋ differs from ⌈ReLU⌋ there: −1/2 → −1/2): the
    engine's table gives golden's σ-quantized network layer by layer, so a clamp could not."""
    qset = FixedPointSet(3, 2)
    silu = rounded_activation("silu", qset.numerators, qset)
    relu = rounded_activation("relu", qset.numerators, qset)
    assert not np.array_equal(silu, relu)
    rng = np.random.default_rng(3)
    q = qset.q_max
    layers = [(rng.integers(-q, q + 1, (6, 1)), rng.integers(-q, q + 1, 6)),
              (rng.integers(-q, q + 1, (1, 6)), rng.integers(-q, q + 1, 1))]
    run = run_network(layers, "silu", qset, grid(qset, 1))
    assert run.config.activation_table
    np.testing.assert_array_equal(run.outputs, run.expected)


def test_wide_layers_run_as_several_commands(monkeypatch):
    """With at most 4 channels per command, a 10-neuron GELU layer runs as 3 commands (each
    loading the table) and the network still equals golden's σ-quantized network."""
    import sim.paper

    monkeypatch.setattr(sim.paper, "MAX_CHANNELS", 4)
    qset = FixedPointSet(2, 1)
    rng = np.random.default_rng(6)
    layers = [(rng.integers(-3, 4, (10, 1)), rng.integers(-3, 4, 10)),
              (rng.integers(-3, 4, (1, 10)), rng.integers(-3, 4, 1))]
    run = run_network(layers, "gelu", qset, grid(qset, 1))
    np.testing.assert_array_equal(run.outputs, run.expected)
    assert run.config.activation_table


def test_experiment_4_identity_is_affine_exactly_but_not_rounded():
    """f*(x) = |x| on Q_{2,1} with the identity activation: the engine computes f*, while the
    same weights in exact arithmetic give an affine map."""
    qset = FixedPointSet(2, 1)
    table = np.abs(qset.numerators)
    network, run = run_target(table, qset, activation="identity")
    np.testing.assert_array_equal(run.outputs, table)
    exact = exact_affine(network, grid(qset, 1))
    assert len({b - a for a, b in zip(exact, exact[1:], strict=False)}) == 1
    assert exact != table.tolist()


def test_division_by_a_non_power_of_two_on_the_engine():
    """s = 3: the requantizer multiplies by M0 = ⌈2^k/3⌉ and rounds once, exactly."""
    qset = FixedPointSet(2, 3)
    table = random_table(qset, 1, 2)
    _, run = run_target(table, qset)
    assert run.config.array.requant == "multiplier" and run.divider.multiplier is not None
    np.testing.assert_array_equal(run.outputs, table)


@pytest.mark.parametrize("s", [40000, 65535])
def test_the_requantizer_divides_exactly_at_the_edges_of_the_bound(s):
    """The engine's requantizer with exact_divider's constant, accumulators within 256 of
    ±(2^29 − 1) (every B < 2^29 has a constant), ties included: round(acc/s) half away from
    zero, judged with Fractions. A 16-bit output holds acc/s there for s ≥ 2^14."""
    from fractions import Fraction

    from golden.exact_division import DIVISION_ROUNDING, exact_divider
    from hw.config import ArrayConfig
    from sim.gemm import gemm

    bound = (1 << 29) - 1
    divider = exact_divider(s, bound)
    config = ArrayConfig(rows=2, cols=2, act_bits=8, weight_bits=8, out_bits=16,
                         requant="multiplier", rounding=DIVISION_ROUNDING)
    n = bound // s - 1
    bias = [n * s + s // 2 - 127, -(n * s + s // 2) - 128]      # each window holds a tie
    x = np.arange(-128, 128).reshape(-1, 1)
    result = gemm(config, x, np.ones((2, 1), np.int64), bias=bias,
                  multiplier=divider.multiplier, shift=divider.shift)
    for column, b in enumerate(bias):
        for a, got in zip(x[:, 0].tolist(), result.y[:, column].tolist(), strict=True):
            acc = Fraction(a + b, s)
            magnitude = int(abs(acc) + Fraction(1, 2))
            assert abs(a + b) <= bound and got == (magnitude if acc >= 0 else -magnitude)


def test_cli(capsys, tmp_path):
    out = tmp_path / "out.npz"
    assert main(["paper", "run", "--target", "indicator:-1,0:2,1:-3", "--p", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "every output equals golden's σ-quantized network and f* (49 points)" in printed
    saved = np.load(out)
    expected = [(-3 if -1 <= a <= 2 and 0 <= b <= 1 else 0) for a, b in saved["x"].tolist()]
    assert saved["y"].tolist() == expected == saved["target"].tolist()


@pytest.mark.parametrize("argv,fragment", [
    (["paper", "run", "--target", "random:1:0", "--p", "8"], "--p must be in [1, 7]"),
    (["paper", "run", "--target", "indicator:3:1:1", "--p", "2"], "each LO ≤ HI"),
    (["paper", "run", "--target", "nonsense", "--p", "2"], "--target must be"),
    (["paper", "run", "--target", "abs", "--p", "2", "--s", "2", "--activation", "identity"],
     "s must be 1 for the identity construction"),
    (["paper", "run", "--target", "abs", "--p", "2", "--binary", "--activation", "identity"],
     "binary=True builds a ReLU network"),
    (["paper", "run", "--target", "abs", "--p", "2", "--activation", "elu"], "'elu' does not"),
    (["paper", "reach", "--p", "3", "--networks", "-1"], "--networks must be ≥ 0, not -1"),
    (["paper", "run", "--target", "random:3:0", "--p", "5"], "at most 65536 grid points"),
    (["paper", "run", "--target", "random:1:0", "--p", "2", "--s", "0"], "s must be"),
    (["paper"], "choose a paper command"),
])
def test_cli_refuses_bad_input(capsys, argv, fragment):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and fragment in err, err
