"""Real builds with the PyPI (YoWASP) tools: a bitstream, its report, and ASIC synthesis."""

import json

import pytest

from boards.asic import asic
from boards.flow import build
from hw.config import ArrayConfig


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


@pytest.mark.parametrize("name,link", [
    ("icebreaker", "bist"), ("ulx3s-85f", "bist"), ("orangecrab", "bist"),
    ("icebreaker", "uart"), ("ulx3s-85f", "uart"), ("icebreaker", "uart-engine"),
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


def test_engine_needs_the_uart_link(tmp_path):
    from hw.engine import EngineConfig

    engine = EngineConfig(ArrayConfig(rows=1, cols=1, kmax=4), max_k=8, max_n=2)
    with pytest.raises(ValueError, match="link must be 'uart' for a GEMM engine"):
        build("icebreaker", engine, tmp_path, link="bist", progress=None)


def test_uart_link_needs_a_uart(tmp_path):
    with pytest.raises(ValueError, match="orangecrab has none"):
        build("orangecrab", ArrayConfig(rows=1, cols=1, kmax=4), tmp_path, link="uart",
              progress=None)
