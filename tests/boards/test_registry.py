"""The board registry against the amaranth-boards platforms and nextpnr's device data."""

import json
from pathlib import Path

import pytest

from boards.registry import BOARDS, Board, board_names, get_board

DATA = Path(__file__).parent / "data"

# Facts about the boards, from their documentation (not from the registry).
EXPECTED = {
    "icebreaker": ("ice40", "iCE40UP5K", 12e6),
    "ulx3s-85f": ("ecp5", "LFE5U-85F", 25e6),
    "orangecrab": ("ecp5", "LFE5U-25F", 48e6),
    "tangnano9k": ("gowin", "GW1NR-LV9QN88PC6/I5", 27e6),     # Sipeed wiki: 27 MHz crystal
    "crosslink-nx": ("nexus", "LIFCL-40", 12e6),          # FPGA-EB-02018: 12 MHz, JP2
}


def test_every_listed_board_is_buildable():
    assert set(EXPECTED) <= set(board_names())
    assert board_names() == board_names(supported_only=False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_matches_its_platform(name):
    family, device, clock = EXPECTED[name]
    board = get_board(name)
    platform = board.make_platform()
    assert board.family == family
    # Gowin platforms name the part (`part`); Lattice and SiliconBlue the die (`device`).
    assert getattr(platform, "part", None) == device or platform.device == device
    assert board.device.startswith(device)
    assert platform.default_clk_frequency == clock
    assert board.clock_mhz * 1e6 == clock
    for resource, number, subsignal in (board.pass_led, board.fail_led):
        found = platform.lookup(resource, number)
        if subsignal is not None:
            assert any(sub.name == subsignal for sub in found.ios)
    assert board.pass_led != board.fail_led


@pytest.mark.parametrize("fixture,name,resource", [
    ("nextpnr_ice40_2x2.json", "icebreaker", "ICESTORM_DSP"),
    ("nextpnr_ecp5_2x2.json", "ulx3s-85f", "MULT18X18D"),
    ("nextpnr_gowin_2x2.json", "tangnano9k", "MULT18X18"),
    ("nextpnr_nexus_2x2.json", "crosslink-nx", "MULT18_CORE"),
])
def test_dsp_counts_agree_with_nextpnr(fixture, name, resource):
    report = json.loads((DATA / fixture).read_text())
    assert get_board(name).dsp_available == report["utilization"][resource]["available"]


def test_clock_constraint_override():
    platform = get_board("icebreaker").make_platform(clock_mhz=48)
    assert platform.default_clk_frequency == 48e6
    # The board class itself is untouched.
    assert get_board("icebreaker").make_platform().default_clk_frequency == 12e6
    with pytest.raises(ValueError, match=r"clock_mhz must be in \[1, 1000\], not 0"):
        get_board("icebreaker").make_platform(clock_mhz=0)
    with pytest.raises(TypeError, match="clock_mhz must be a number"):
        get_board("icebreaker").make_platform(clock_mhz="fast")


def test_lookup_errors():
    assert get_board(BOARDS["orangecrab"]) is BOARDS["orangecrab"]
    with pytest.raises(ValueError, match=r"board must be one of icebreaker, .*not 'nexys'"):
        get_board("nexys")
    with pytest.raises(TypeError, match="board must be a board name"):
        get_board(3)


def test_an_unsupported_board_says_why():
    board = Board(name="x", description="x", family="gowin", device="x", platform="x:y",
                  clock_mhz=1.0, dsp_primitive="x", dsp_available=0, pass_led=(), fail_led=(),
                  bitstream="x", supported=False, reason="measured: no chip database")
    with pytest.raises(ValueError, match="board 'x' cannot be built: measured: no chip"):
        board.make_platform()
