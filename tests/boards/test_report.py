"""Report parsing on stored outputs of real builds (icebreaker and ulx3s-85f, 2×2 arrays).

The fixtures are nextpnr ``--report`` files and a Yosys ``stat -json`` file from real builds,
with nextpnr's per-path timing detail removed to keep them small. The expected numbers below
were read from those files by eye, not produced by the code under test.
"""

import json
from pathlib import Path

import pytest

from boards.flow import (
    _clock_name,
    format_report,
    parse_nextpnr_report,
    parse_yosys_stat,
    summarize_resources,
)

DATA = Path(__file__).parent / "data"
ICE40 = DATA / "nextpnr_ice40_2x2.json"
ECP5 = DATA / "nextpnr_ecp5_2x2.json"
STAT = DATA / "yosys_stat_ice40_2x2.json"


def test_ice40_report():
    parsed = parse_nextpnr_report(ICE40)
    assert parsed["fmax_mhz"] == {"bist.array.clk": pytest.approx(15.6519, abs=1e-4)}
    assert parsed["constraint_mhz"] == {"bist.array.clk": pytest.approx(12.0, abs=1e-3)}
    util = parsed["utilization"]
    assert util["ICESTORM_LC"] == {"used": 1907, "available": 5280}
    assert util["ICESTORM_DSP"] == {"used": 8, "available": 8}
    assert util["ICESTORM_RAM"] == {"used": 1, "available": 30}
    assert util["SB_IO"] == {"used": 3, "available": 39}


def test_ecp5_report_and_global_net_names():
    parsed = parse_nextpnr_report(json.loads(ECP5.read_text()))     # a dict works too
    assert parsed["fmax_mhz"] == {"bist.array.clk": pytest.approx(69.9154, abs=1e-4)}
    assert parsed["constraint_mhz"] == {"bist.array.clk": pytest.approx(150.015, abs=1e-3)}
    util = parsed["utilization"]
    assert util["TRELLIS_COMB"] == {"used": 2181, "available": 83640}
    assert util["TRELLIS_FF"] == {"used": 888, "available": 83640}
    assert util["MULT18X18D"] == {"used": 12, "available": 156}


@pytest.mark.parametrize("raw,name", [
    ("$glbnet$cd_sync.clk", "sync"),
    ("cd_sync.clk", "sync"),
    ("cd_fast.clk", "fast"),
    ("$glbnet$bist.array.clk", "bist.array.clk"),
    ("clk12_0__io", "clk12_0__io"),
])
def test_clock_names(raw, name):
    assert _clock_name(raw) == name


def test_yosys_stat():
    cells = parse_yosys_stat(STAT)
    assert cells["SB_MAC16"] == 8
    assert cells["SB_LUT4"] == 1217
    assert cells["SB_RAM40_4K"] == 1
    assert not any(cell.startswith("$scopeinfo") for cell in cells)


def test_summary_ice40_counts_ffs_from_synthesis():
    parsed = parse_nextpnr_report(ICE40)
    summary = summarize_resources(parsed["utilization"], parse_yosys_stat(STAT), "ice40")
    assert summary["logic"] == {"used": 1907, "available": 5280}
    # SB_DFF 19 + SB_DFFE 19 + SB_DFFESR 139 + SB_DFFSR 439 + SB_DFFSS 9
    assert summary["ff"] == {"used": 625, "available": 5280}
    assert summary["dsp"] == {"used": 8, "available": 8}
    assert summary["bram"] == {"used": 1, "available": 30}


def test_summary_ecp5():
    parsed = parse_nextpnr_report(ECP5)
    summary = summarize_resources(parsed["utilization"], {}, "ecp5")
    assert summary == {
        "logic": {"used": 2181, "available": 83640},
        "ff": {"used": 888, "available": 83640},
        "dsp": {"used": 12, "available": 156},
        "bram": {"used": 0, "available": 208},
    }


def test_bad_reports():
    with pytest.raises(ValueError, match="'fmax'"):
        parse_nextpnr_report({"utilization": {}})
    with pytest.raises(ValueError, match="'utilization'"):
        parse_nextpnr_report({"fmax": {}})
    with pytest.raises(TypeError, match="report must be"):
        parse_nextpnr_report(42)
    with pytest.raises(ValueError, match="exactly one module"):
        parse_yosys_stat({"modules": {}})


def test_format_report_shows_every_required_field(tmp_path):
    parsed = parse_nextpnr_report(ICE40)
    report = {
        "board": "icebreaker", "device": "iCE40UP5K-SG48", "rows": 2, "cols": 2,
        "dataflow": "output_stationary", "act_bits": 4, "weight_bits": 4, "kmax": 16,
        "accumulator_bits": 12, "fmax_mhz": {"sync": 15.65}, "constraint_mhz": {"sync": 12.0},
        "board_clock_mhz": 12.0, "timing_pass": True, "peak_gmacs": 0.063,
        "resources": summarize_resources(parsed["utilization"], parse_yosys_stat(STAT),
                                         "ice40"),
        "dsp": {"budget": 8, "planned_primitives": 8,
                "pe_multipliers_in_dsp": 0, "pe_multipliers": 4,
                "requantizer_lanes_in_dsp": 2, "requantizer_lanes": 2,
                "synthesized_primitives": 8, "primitive": "SB_MAC16"},
        "bitstream": str(tmp_path / "top.bin"), "out_dir": str(tmp_path),
    }
    text = format_report(report)
    for needle in ("icebreaker (iCE40UP5K-SG48)", "15.7 MHz (constraint 12.0 MHz)",
                   "12.000 MHz (board clock): PASS", "1907 / 5280 (36.1 %)", "625 / 5280",
                   "8 / 8 (100.0 %)", "1 / 30", "top.bin", "report.json",
                   "2/2 requantizer lanes (8 SB_MAC16)"):
        assert needle in text, needle
    report["timing_pass"] = False
    assert "12.000 MHz (board clock): FAIL" in format_report(report)
