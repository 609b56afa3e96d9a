"""The requantizer and the PE alone, as generated Verilog, against golden/."""

import pytest

from hw.config import REQUANT_ROUNDINGS, ArrayConfig
from sim.runner import pe_design, requantizer_design, run, simulator_available

STALLS = {"in_stall": 0.3, "out_stall": 0.3}


def _run(design, bench, sim="icarus", **spec):
    if not simulator_available(sim):
        pytest.fail(f"{sim} is not installed; `make` installs Verilator, .ci/run installs Icarus")
    return run(design, bench, {"seed": 0, **spec}, sim=sim)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("rounding", REQUANT_ROUNDINGS)
def test_requantizer_every_rounding(rounding, per_channel):
    config = ArrayConfig(rows=2, cols=4, kmax=256, rounding=rounding, per_channel=per_channel)
    report = _run(requantizer_design(config), "sim.tb_requantizer", rows=96, **STALLS)
    assert report["rows"] == 96


@pytest.mark.parametrize("options", [
    dict(requant="shift", rounding="half_to_even"),
    dict(requant="shift", rounding="single", max_left_shift=4, per_channel=True),
    dict(max_left_shift=8, per_channel=True),
    dict(out_bits=4, act_bits=4, weight_bits=4),
    dict(out_bits=16, act_bits=16, weight_bits=8, kmax=64),
    dict(out_signed=False, act_signed=False),
], ids=["shift-only", "shift-only with left shifts", "left shifts", "int4 out", "int16 out",
        "uint8 out"])
def test_requantizer_variants(options):
    config = ArrayConfig(rows=2, cols=3, **{"kmax": 256, **options})
    _run(requantizer_design(config), "sim.tb_requantizer", rows=64, seed=len(options),
         **STALLS)


def test_requantizer_unstalled_latency_is_the_documented_one():
    from hw.requantizer import Requantizer

    for rounding in ("double", "single"):
        config = ArrayConfig(rows=1, cols=2, kmax=16, rounding=rounding)
        report = _run(requantizer_design(config), "sim.tb_requantizer", rows=8)
        requantizer = Requantizer(config)
        assert report["latency"] == requantizer.latency
        requantizer._MustUse__silence = True  # built only to read its latency


def test_requantizer_on_verilator():
    config = ArrayConfig(rows=2, cols=8, kmax=256, per_channel=True)
    _run(requantizer_design(config), "sim.tb_requantizer", "verilator", rows=512, **STALLS)


@pytest.mark.parametrize("options", [
    dict(kmax=64),
    dict(act_bits=4, weight_bits=4, kmax=1000),
    dict(act_signed=False, kmax=300),
    dict(weight_bits=1, weight_kind="binary", kmax=128),
    dict(weight_bits=2, weight_kind="ternary", kmax=20),
    dict(register_product=False, kmax=33),
    dict(act_bits=16, weight_bits=8, out_bits=16, kmax=256),
], ids=["int8", "int4 K=1000", "uint8", "binary", "ternary", "no product register",
        "int16 x int8"])
def test_pe(options):
    config = ArrayConfig(rows=1, cols=1, **options)
    report = _run(pe_design(config), "sim.tb_pe", passes=5, idle=0.25)
    assert len(report["results"]) == 6
