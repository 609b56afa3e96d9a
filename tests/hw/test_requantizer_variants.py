"""The requantizer's ECP5 build (partial products in MULT18X18D with their output registers)
against its portable build, cycle by cycle in Icarus with the MULT18X18D model; the portable
build is compared with golden/ by tests/hw/test_array_amaranth.py and tests/sim."""

import random
import re

import pytest
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hw.config import ArrayConfig
from hw.generate import ports
from hw.requantizer import Requantizer

from . import test_pe_variants
from .test_pe_variants import RESET_CYCLES, _mismatches, _run_pair, pytestmark  # noqa: F401

INT32 = 1 << 32


def _stimulus(rng, config, cycles):
    """Random beats and parameters, including the int32 extremes and exact halves."""
    acc_bits = config.accumulator_bits
    beats = [{"rst": 1} for _ in range(RESET_CYCLES)]
    for _ in range(cycles):
        acc = rng.choice([rng.getrandbits(acc_bits), 0, 1 << (acc_bits - 1),
                          (1 << (acc_bits - 1)) - 1, rng.getrandbits(12)])
        beats.append({
            "i__valid": rng.random() < 0.8, "o__ready": rng.random() < 0.8,
            "i__payload": acc | rng.getrandbits(2) << acc_bits,
            "bias_read__data": rng.choice([0, rng.getrandbits(32), INT32 - 1]),
            "multiplier_read__data": rng.choice([1 << 30, (1 << 31) - 1,
                                                 rng.getrandbits(31) | 1 << 30]),
            "shift_read__data": rng.randrange(64) if config.max_left_shift else
            (-rng.randrange(32)) & 63,
            "output_zero_point": rng.getrandbits(8), "act_min": 0x80, "act_max": 0x7f,
        })
    return beats


def _split_unknown_as_zero(word, fields):
    """The output FIFO's memory is unknown (x) in Icarus until written: its read data shows
    while ``o.valid`` is low, on both designs alike. Read x as 0 there."""
    return _split_known(re.sub("[xXzZ]", "0", word), fields)


_split_known = test_pe_variants._split


@pytest.mark.parametrize("rounding,max_left_shift", [("double", 0), ("single", 0),
                                                     ("double", 4)])
def test_ecp5_requantizer_equals_portable(tmp_path, monkeypatch, rounding, max_left_shift):
    monkeypatch.setattr(test_pe_variants, "_split", _split_unknown_as_zero)
    config = ArrayConfig(rows=1, cols=1, kmax=64, per_channel=True, rounding=rounding,
                         accumulator_width=32, max_left_shift=max_left_shift)
    ref = Requantizer(config, table_depth=2)
    dut = Requantizer(config, table_depth=2)
    names = {p["name"] for p in ports(ref)}
    assert {"i__payload", "o__ready", "bias_read__data", "shift_read__data"} <= names
    stimulus = _stimulus(random.Random(rounding), config, 400)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus,
                                     dut_platform=ULX3S_85F_Platform(), family="ecp5")
    assert sum(out["o__valid"] for out in ref_trace) > 200
    assert len({out["o__payload"] for out in ref_trace}) > 50   # not a constant output
    assert _mismatches(stimulus, ref_trace, dut_trace) == []
