"""Real builds with the PyPI (YoWASP) tools: a bitstream, its report, and ASIC synthesis."""

import json
from pathlib import Path

import pytest

from boards.asic import asic
from boards.flow import (
    build,
    detach_constant_carry_inputs,
    parse_nextpnr_report,
    summarize_resources,
)
from hw.config import ArrayConfig

DATA = Path(__file__).parent / "data"


def test_icebreaker_bitstream_and_report(tmp_path):
    """The smallest int8 array, synthesized, placed, routed and packed for the iCE40UP5K."""
    config = ArrayConfig(rows=2, cols=2, kmax=16)
    report = build("icebreaker", config, tmp_path, progress=None)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["fmax_mhz"] == report["fmax_mhz"]
    bitstream = tmp_path / "top.bin"
    assert report["bitstream"] == str(bitstream) and bitstream.stat().st_size > 100_000
    assert report["constraint_mhz"]["sync"] == pytest.approx(12.0, rel=1e-3)
    # nextpnr's own numbers, not hard-coded: used ≤ available, DSPs all in use as planned
    for used in report["resources"].values():
        assert 0 < used["used"] <= used["available"]
    assert report["resources"]["dsp"] == {"used": 8, "available": 8}
    assert report["timing_pass"] == (report["fmax_mhz"]["sync"] >= 12.0)
    # ABC9 mapped for the UltraPlus' delays (Yosys' default is the HX's)
    assert "synth_ice40 -device u " in (tmp_path / "top.ys").read_text()


def test_asic_synthesis_has_no_fpga_primitives(tmp_path):
    config = ArrayConfig(rows=2, cols=2, kmax=16)
    report = asic(config, tmp_path, progress=None)
    assert report["fpga_primitives"] == []
    assert report["flip_flops"] > 0 and report["transistors"] > report["gates"] > 0
    assert (tmp_path / "qmac_array.netlist.v").exists()


@pytest.mark.slow
def test_ulx3s_bitstream(tmp_path):
    """ECP5-85F: builds without the board's programmer tool installed."""
    report = build("ulx3s-85f", ArrayConfig(rows=4, cols=4, kmax=64), tmp_path, progress=None)
    assert (tmp_path / "top.bit").exists()
    assert report["resources"]["dsp"]["used"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("board,clock_mhz,bitstream", [
    ("icebreaker", 24, "top.bin"),          # SB_PLL40_PAD: 12 → 24 MHz
    ("ulx3s-85f", 50, "top.bit"),           # EHXPLLL: 25 → 50 MHz
    ("tangnano9k", 54, "top.fs"),           # rPLL: 27 → 54 MHz
    ("crosslink-nx", None, "top.bit"),  # no PLL generator: the 12 MHz oscillator
])
def test_one_small_build_per_family(tmp_path, board, clock_mhz, bitstream):
    """A 2×2 self test with PyPI tools only: bitstream, nextpnr's numbers, the real clock."""
    report = build(board, ArrayConfig(rows=2, cols=2, kmax=16), tmp_path, clock_mhz=clock_mhz,
                   progress=None)
    assert (tmp_path / bitstream).stat().st_size > 100_000
    sync = clock_mhz or report["board_clock_mhz"]
    assert report["sync_clock_mhz"] == pytest.approx(sync)
    assert report["clock"]["source"] == ("pll" if clock_mhz else "board")
    # nextpnr's constraint on the sync net is the PLL's output, derived or from our SDC.
    assert report["constraint_mhz"]["sync"] == pytest.approx(sync, rel=1e-3)
    assert report["timing_pass"] == (report["fmax_mhz"]["sync"] >= sync)
    for entry in report["resources"].values():
        assert 0 <= entry["used"] <= entry["available"]
    assert report["resources"]["logic"]["used"] > 0 and report["resources"]["ff"]["used"] > 0


@pytest.mark.parametrize("fixture,family,expected", [
    # Sums of the fixtures' own entries: Gowin logic = LUT4 1778 + ALU 1126; DSP = 8 MULT18X18
    # + 4 MULT9X9 / 2. Nexus DSP = 24 MULT9_CORE / 2 against 56 MULT18_CORE.
    ("nextpnr_gowin_2x2.json", "gowin", {"logic": (2904, 8640), "ff": (1100, 6480),
                                         "dsp": (10, 20), "bram": (0, 26)}),
    ("nextpnr_nexus_2x2.json", "nexus", {"logic": (2238, 32256), "ff": (733, 32256),
                                         "dsp": (12, 56), "bram": (0, 84)}),
])
def test_resources_of_the_new_families(fixture, family, expected):
    parsed = parse_nextpnr_report(DATA / fixture)
    summary = summarize_resources(parsed["utilization"], {}, family)
    assert {kind: (e["used"], e["available"]) for kind, e in summary.items()} == expected
    assert len(parsed["fmax_mhz"]) == 1


def test_constant_carry_inputs_are_detached(tmp_path):
    """Only CCU2 carry inputs tied to VLO lose their connection (YosysHQ/yosys#4081)."""
    netlist = {"modules": {"top": {"cells": {
        "lo": {"type": "VLO", "connections": {"Z": [2]}},
        "first": {"type": "CCU2", "connections": {"CIN": [2], "COUT": [3]}},
        "second": {"type": "CCU2", "connections": {"CIN": [3], "COUT": [4]}},
        "lut": {"type": "LUT4", "connections": {"A": [2], "Z": [5]}},
    }}}}
    path = tmp_path / "top.json"
    path.write_text(json.dumps(netlist))
    assert detach_constant_carry_inputs(path) == 1
    cells = json.loads(path.read_text())["modules"]["top"]["cells"]
    assert "CIN" not in cells["first"]["connections"]
    assert cells["second"]["connections"]["CIN"] == [3] and cells["lut"]["connections"]["A"] == [2]
    assert detach_constant_carry_inputs(path) == 0


@pytest.mark.parametrize("name,link", [
    ("icebreaker", "bist"), ("ulx3s-85f", "bist"), ("orangecrab", "bist"),
    ("tangnano9k", "bist"), ("crosslink-nx", "bist"),
    ("icebreaker", "uart"), ("ulx3s-85f", "uart"), ("icebreaker", "uart-engine"),
    ("tangnano9k", "uart"), ("crosslink-nx", "uart"),
])
def test_every_board_top_elaborates_for_its_platform(name, link):
    """Pins exist and are requested once (OrangeCrab's two LEDs are one RGB resource)."""
    from boards.bist import BoardTop, make_vectors
    from boards.registry import get_board
    from boards.uart import UARTBoardTop
    from hw.engine import EngineConfig

    board = get_board(name)
    config = ArrayConfig(rows=1, cols=2, kmax=4)
    platform = board.make_platform(None)
    if link == "bist":
        top = BoardTop(board, make_vectors(config))
    else:
        design = EngineConfig(config, max_k=16, max_n=4) if link == "uart-engine" else config
        top = UARTBoardTop(design, clock_hz=platform.default_clk_frequency)
    plan = platform.prepare(top, name="top")
    assert "top.il" in plan.files or any(path.endswith(".il") for path in plan.files)


def test_icebreaker_4x4_plan_pairs_the_pes_and_serialises_the_requantizer():
    """All 16 int8 PEs in the 8 SB_MAC16 (two each), so the lane multiplies serially; with
    blocks left for the lane (2×2), it keeps its DSP partial products."""
    from boards.dsp import plan_dsp
    from boards.flow import SERIAL_BITS_WITHOUT_DSP, block_ram_script, planned_config

    config = ArrayConfig(rows=4, cols=4, kmax=64)
    planned = planned_config(config, plan_dsp(config, "ice40", 8))
    assert planned.dsp_pes == 16 and planned.requant_serial_bits == SERIAL_BITS_WITHOUT_DSP
    chosen = config.replace(requant_serial_bits=1)
    assert planned_config(chosen, plan_dsp(chosen, "ice40", 8)).requant_serial_bits == 1
    small = ArrayConfig(rows=2, cols=2, kmax=16)
    planned = planned_config(small, plan_dsp(small, "ice40", 8))
    assert planned.dsp_pes == 4 and planned.requant_serial_bits is None
    assert block_ram_script("top.bridge.array").splitlines()[0] == \
        'setattr -set ram_style "block" top.bridge.array*/m:*'


def test_engine_needs_the_uart_link(tmp_path):
    from hw.engine import EngineConfig

    engine = EngineConfig(ArrayConfig(rows=1, cols=1, kmax=4), max_k=8, max_n=2)
    with pytest.raises(ValueError, match="link must be 'uart' for a GEMM engine"):
        build("icebreaker", engine, tmp_path, link="bist", progress=None)


def test_uart_link_needs_a_uart(tmp_path):
    with pytest.raises(ValueError, match="orangecrab has none"):
        build("orangecrab", ArrayConfig(rows=1, cols=1, kmax=4), tmp_path, link="uart",
              progress=None)
