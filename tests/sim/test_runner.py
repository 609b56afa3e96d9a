"""sim.runner (simulator choice, build cache, waves, clear errors) and the scoreboard."""

import os
import stat

import numpy as np
import pytest

import sim.runner as runner
from hw.config import ArrayConfig
from sim.runner import array_design, default_simulator, run, simulator_available
from sim.streams import scoreboard

TINY = ArrayConfig(rows=1, cols=1, kmax=4, name="tiny")


def test_sim_picks_the_default_simulator(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    assert default_simulator() == "icarus"
    monkeypatch.setenv("SIM", "verilator")
    assert default_simulator() == "verilator"
    monkeypatch.setenv("SIM", "modelsim")
    with pytest.raises(ValueError, match="SIM must be one of icarus, verilator; got 'modelsim'"):
        default_simulator()


def test_unknown_simulator_and_design_kind_are_refused():
    with pytest.raises(ValueError, match="sim must be one of .*got 'xcelium'"):
        run(array_design(TINY), "sim.tb_array", {}, sim="xcelium")
    with pytest.raises(ValueError, match="design kind must be .*got 'fifo'"):
        runner.Design("fifo", TINY).write_verilog("/nonexistent")


def test_missing_simulator_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("QMAC_SIM_BUILD", str(tmp_path / "build"))
    assert not simulator_available("icarus")
    with pytest.raises(RuntimeError, match="simulator 'icarus' not found: install iverilog"):
        run(array_design(TINY), "sim.tb_array", {}, sim="icarus")


def test_too_old_verilator_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "verilator"
    fake.write_text("#!/bin/sh\necho 'Verilator 5.006 2023-01-22 rev (Debian 5.006-3)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    # as if the PyPI wheel were not installed: only the old one on PATH
    monkeypatch.setattr(runner, "verilator_environment", lambda: dict(os.environ))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"Verilator 5\.006; cocotb 2 needs 5\.036"):
        simulator_available("verilator")


def _need_icarus():
    if not simulator_available("icarus"):
        pytest.fail("icarus is not installed; .ci/run installs it")


def test_builds_are_cached_per_configuration(monkeypatch, tmp_path):
    _need_icarus()
    monkeypatch.setenv("QMAC_SIM_BUILD", str(tmp_path))
    monkeypatch.delenv("WAVES", raising=False)
    design = array_design(TINY)
    run(design, "sim.tb_array", {"seed": 1, "jobs": 2}, sim="icarus")
    build = tmp_path / design.key / "icarus"
    binary = build / "sim.vvp"
    built = binary.stat().st_mtime_ns
    assert (build / "tiny.v").exists() and (build / "tiny.manifest.json").exists()
    run(design, "sim.tb_array", {"seed": 2, "jobs": 2}, sim="icarus")
    assert binary.stat().st_mtime_ns == built  # reused, not rebuilt
    # another configuration, another build
    other = array_design(ArrayConfig(rows=1, cols=1, kmax=5, name="tiny"))
    assert other.key != design.key


def test_waves(monkeypatch, tmp_path):
    _need_icarus()
    monkeypatch.setenv("QMAC_SIM_BUILD", str(tmp_path))
    monkeypatch.setenv("WAVES", "1")
    report = run(array_design(TINY), "sim.tb_array", {"seed": 3, "jobs": 2}, sim="icarus")
    waves = report["waves"]
    assert waves.endswith("tiny.fst") and "icarus-waves" in waves
    assert os.path.getsize(waves) > 0


def test_scoreboard_names_the_first_difference():
    expected = np.array([[1, 2], [3, 4]])
    assert scoreboard(expected.copy(), expected) is None
    assert scoreboard(expected[:1], expected) == "delivered 1 rows, golden expects 2"
    wrong = expected.copy()
    wrong[1, 0] = -3
    assert scoreboard(wrong, expected, inputs=np.array([[0, 0], [77, 0]])) == (
        "1 of 4 outputs differ; first at row 1 column 0 (input 77): RTL -3, golden 3")
    assert scoreboard(expected, expected, got_lasts=[1, 1], expected_lasts=[0, 1]) == (
        "last flag of row 0 is 1, expected 0")


def test_a_bench_that_cannot_run_is_reported_with_its_traceback():
    _need_icarus()
    with pytest.raises(AssertionError, match=r"(?s)sim\.tb_missing on icarus: .*"
                                             r"No module named 'sim\.tb_missing'"):
        run(array_design(TINY), "sim.tb_missing", {}, sim="icarus")
