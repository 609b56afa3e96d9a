# amaranth: UnusedElaboratable=no
"""PLL divider searches against the reference calculators, the data sheets' limits, and RTLIL.

References: icestorm's ``icepll`` (yowasp-icepll), prjtrellis' ``ecppll`` (yowasp-ecppll) and
apicula's ``gowin_pll``, run as programs and their printed dividers parsed; frequency limits
typed in from the data sheets (iCE40 TN1251, ECP5 DS1044, Gowin DS117), not imported.
"""

import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from hypothesis import given, settings
from hypothesis import strategies as st

from boards.clocks import (
    DEFAULT_TOLERANCE,
    PLLClock,
    ecp5_pll,
    gowin_pll,
    ice40_pll,
    pll_settings,
)

SCRIPTS = Path(sys.executable).parent
# (input, PFD, VCO, output) ranges in MHz, from the data sheets.
ICE40 = ((10, 133), (10, 133), (533, 1066), (16, 275))
ECP5 = ((8, 400), (3.125, 400), (400, 800), (3.125, 400))
GOWIN_9 = ((3, 400), (3, 400), (400, 1200), (3.125, 600))


def _tool(name):
    path = SCRIPTS / name
    if not path.exists() and shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    return str(path if path.exists() else name)


def _run(args, cwd):
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, check=True).stdout


def _inside(value, bounds):
    return bounds[0] <= value <= bounds[1]


@pytest.mark.parametrize("fin,fout", [(12, 48), (12, 100), (12, 33.3), (12, 201), (25, 16.5),
                                      (100, 130)])
def test_ice40_matches_icepll(tmp_path, fin, fout):
    out = _run([_tool("yowasp-icepll"), "-i", str(fin), "-o", str(fout)], tmp_path)
    expected = {key: int(re.search(rf"{key}:\s+(\d+)", out)[1])
                for key in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")}
    achieved = float(re.search(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", out)[1])
    pll = ice40_pll(fin, fout)
    assert {key: pll.params[key] for key in expected} == expected
    assert pll.output_hz / 1e6 == pytest.approx(achieved, abs=5e-4)   # icepll prints 3 places


@pytest.mark.parametrize("fin,fout", [(25, 90), (25, 100), (48, 133.3), (25, 66.6), (48, 75)])
def test_ecp5_matches_ecppll(tmp_path, fin, fout):
    _run([_tool("yowasp-ecppll"), "-i", str(fin), "-o", str(fout), "-f", "pll.v"], tmp_path)
    verilog = (tmp_path / "pll.v").read_text()
    expected = {key: int(re.search(rf"\.{key}\((\d+)\)", verilog)[1])
                for key in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV")}
    pll = ecp5_pll(fin, fout)
    assert {key: pll.params[key] for key in expected} == expected
    # The output as the dividers give it, computed here.
    assert pll.output_hz == pytest.approx(fin * 1e6 * expected["CLKFB_DIV"] / expected["CLKI_DIV"])


@pytest.mark.parametrize("fout", [54, 81.5, 100, 200])
def test_gowin_matches_gowin_pll(tmp_path, fout):
    out = _run([_tool("gowin_pll"), "-i", "27", "-o", str(fout), "-d", "GW1NR-LV9QN88PC6/I5"],
               tmp_path)
    expected = {key: int(re.search(rf"\.{key}\((\d+)\)", out)[1])
                for key in ("IDIV_SEL", "FBDIV_SEL", "ODIV_SEL")}
    pll = gowin_pll(27, fout)
    assert {key: pll.params[key] for key in expected} == expected
    achieved = float(re.search(r"Achieved output frequency:\s+([\d.]+) MHz", out)[1])
    assert pll.output_hz / 1e6 == pytest.approx(achieved, abs=5e-4)


def _check_ice40(pll, fin):
    p = pll.params
    pfd = Fraction(fin) / (p["DIVR"] + 1)
    vco = pfd * (p["DIVF"] + 1)
    assert pll.output_hz == pytest.approx(float(vco / 2 ** p["DIVQ"]) * 1e6, rel=1e-12)
    return pfd, vco


def _check_ecp5(pll, fin):
    p = pll.params
    pfd = Fraction(fin) / p["CLKI_DIV"]
    out = pfd * p["CLKFB_DIV"]
    assert pll.output_hz == pytest.approx(float(out) * 1e6, rel=1e-12)
    assert 1 <= p["CLKI_DIV"] <= 128 and 1 <= p["CLKFB_DIV"] <= 80 and 1 <= p["CLKOP_DIV"] <= 128
    return pfd, out * p["CLKOP_DIV"]


def _check_gowin(pll, fin):
    p = pll.params
    pfd = Fraction(fin) / (p["IDIV_SEL"] + 1)
    out = pfd * (p["FBDIV_SEL"] + 1)
    assert pll.output_hz == pytest.approx(float(out) * 1e6, rel=1e-12)
    assert p["ODIV_SEL"] in (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)
    return pfd, out * p["ODIV_SEL"]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("search,limits,fin,check", [
    (ice40_pll, ICE40, 12, _check_ice40),
    (ecp5_pll, ECP5, 25, _check_ecp5),
    (gowin_pll, GOWIN_9, 27, _check_gowin),
])
def test_dividers_respect_the_limits_and_give_the_reported_frequency(search, limits, fin,
                                                                     check, data):
    _, pfd_range, vco_range, (low, high) = limits
    fout = data.draw(st.floats(min_value=max(low, 4), max_value=high - 0.01))
    pll = search(fin, fout)
    pfd, vco = check(pll, fin)
    assert _inside(pfd, pfd_range) and _inside(vco, vco_range)
    assert pll.pfd_hz == pytest.approx(float(pfd) * 1e6) and pll.vco_hz == pytest.approx(
        float(vco) * 1e6)
    assert pll.error == pytest.approx(abs(pll.output_hz / 1e6 - fout) / fout)
    # Within the tolerance the search's answer is the PLL; beyond it, an error naming both.
    if pll.error <= DEFAULT_TOLERANCE:
        assert pll_settings(pll.family, fin, fout) == pll
    else:
        with pytest.raises(ValueError, match=r"output_mhz must be within 1.00% .*nearest"):
            pll_settings(pll.family, fin, fout)


@pytest.mark.parametrize("call,error,message", [
    (lambda: ice40_pll(12, 300), ValueError,
     r"output_mhz must be in \[16, 275\] MHz for the ice40 PLL, not 300"),
    (lambda: ice40_pll(5, 48), ValueError,
     r"input_mhz must be in \[10, 133\] MHz for the ice40 PLL, not 5"),
    (lambda: ecp5_pll(25, 401), ValueError,
     r"output_mhz must be in \[3.125, 400\] MHz for the ecp5 PLL, not 401"),
    (lambda: gowin_pll(27, 700), ValueError,
     r"output_mhz must be in \[3.125, 600\] MHz for the gowin PLL, not 700"),
    (lambda: ice40_pll(12, "fast"), TypeError, "output_mhz must be a number of MHz, not 'fast'"),
    (lambda: pll_settings("nexus", 12, 48), ValueError,
     r"family must be one of ice40, ecp5, gowin .*not 'nexus'"),
    (lambda: pll_settings("ice40", 12, 48, tolerance=2), ValueError,
     r"tolerance must be in \[0, 1\), not 2"),
    # 12 MHz · 67 / 8 = 100.5 MHz is the nearest: 0.5 % off.
    (lambda: pll_settings("ice40", 12, 100, tolerance=0.001), ValueError,
     r"output_mhz must be within 0.10% .* not 100 \(nearest: 100.5000 MHz\)"),
    (lambda: PLLClock("48 MHz"), TypeError, "settings must be PLLSettings, not '48 MHz'"),
])
def test_bad_requests(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("board,mhz,primitive,params", [
    ("icebreaker", 48, "SB_PLL40_PAD", {"DIVF": 63, "DIVQ": 4}),       # icepll -o 48
    ("ulx3s-85f", 100, "EHXPLLL", {"CLKFB_DIV": 4, "CLKOP_DIV": 6}),   # ecppll -o 100
    ("tangnano9k", 54, "rPLL", {"FBDIV_SEL": 1, "ODIV_SEL": 8}),        # gowin_pll -o 54
])
def test_pll_clock_drives_sync_on_the_board(board, mhz, primitive, params):
    """The board top's RTLIL holds the PLL with its dividers, and the UART divisor follows."""
    from boards.bist import BoardTop, make_vectors
    from boards.flow import sync_clock
    from boards.registry import get_board
    from boards.uart import UARTBoardTop
    from hw.config import ArrayConfig

    board = get_board(board)
    clock = sync_clock(board, mhz)
    assert clock["source"] == "pll" and clock["sync_mhz"] == pytest.approx(mhz)
    config = ArrayConfig(rows=1, cols=1, kmax=4)
    top = BoardTop(board, make_vectors(config), clock=PLLClock(clock["pll"]))
    rtlil = board.make_platform().prepare(top, name="top").files["top.il"]
    assert f"cell \\{primitive} " in rtlil
    for name, value in params.items():
        assert re.search(rf"parameter \\{name} {value}\b", rtlil), name
    pll = PLLClock(clock["pll"])   # the UART top is elaborated without a platform here:
    uart = UARTBoardTop(config, clock=pll)   # the PLL is never used (linter comment, line 1)
    Fragment.get(uart, None)
    assert uart.divisor == round(mhz * 1e6 / 115200)
    with pytest.raises(ValueError, match="clock_hz must be the PLL's"):
        UARTBoardTop(config, clock_hz=12e6, clock=pll)


def test_sync_clock_sources():
    from boards.flow import sync_clock

    assert sync_clock("icebreaker")["source"] == "board"
    assert sync_clock("icebreaker", 12)["source"] == "board"
    nexus = sync_clock("crosslink-nx", 50)     # no PLL generator: a constraint only
    assert nexus["source"] == "constraint" and nexus["sync_mhz"] == 12
    with pytest.raises(ValueError, match=r"clock_mhz must be in \[1, 1000\], not 5000"):
        sync_clock("crosslink-nx", 5000)
    with pytest.raises(TypeError, match="clock_mhz must be a number"):
        sync_clock("icebreaker", "fast")
