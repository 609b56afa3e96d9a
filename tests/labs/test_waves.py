"""qmac waves / sim.waves: a VCD written by Amaranth's simulator read back value for value,
and drawn to SVG and PNG."""

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from qmac.cli import main
from sim.waves import read_vcd, select

#: Cycles the counter runs.
CYCLES = 12
#: The counter's width: it wraps within the run.
WIDTH = 3


@pytest.fixture
def counter_vcd(tmp_path):
    """A VCD of a WIDTH-bit counter (and a signed copy negated) running CYCLES cycles."""
    m = Module()
    count = Signal(WIDTH, name="count")
    negated = Signal(signed(WIDTH + 1), name="negated")
    m.d.sync += count.eq(count + 1)
    m.d.comb += negated.eq(-count)
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def bench(ctx):
        await ctx.tick().repeat(CYCLES)

    sim.add_testbench(bench)
    path = tmp_path / "counter.vcd"
    with sim.write_vcd(str(path), traces=[count, negated]):
        sim.run()
    return path


def test_read_vcd_gives_every_value(counter_vcd):
    traces, end = read_vcd(counter_vcd)
    count, = select(traces, ["count"])
    values = [value for _, value in count.changes]
    assert count.width == WIDTH
    assert values[:CYCLES + 1] == [i % (1 << WIDTH) for i in range(CYCLES + 1)]
    negated, = select(traces, ["neg*"])
    assert [(-v) % (1 << (WIDTH + 1)) for v in values] == [v for _, v in negated.changes]
    times = [time for time, _ in count.changes]
    assert times == sorted(times) and times[-1] <= end


def test_cli_draws_svg_and_png_and_prints_paths(counter_vcd, capsys):
    svg, png = counter_vcd.with_suffix(".svg"), counter_vcd.parent / "c.png"
    assert main(["waves", str(counter_vcd), "-o", str(svg), "-o", str(png),
                 "--signal", "clk", "--signal", "count", "--radix", "signed"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(svg), str(png)]
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra, message", [
    (["--signal", "nothing*"], "--signal 'nothing*' matches no signal"),
    (["-o", "out.pdf"], "output must end in .svg or .png, not 'out.pdf'"),
    (["--start", "10", "--end", "5"], "start must be below end"),
])
def test_bad_input_is_one_line(counter_vcd, extra, message, capsys, monkeypatch):
    monkeypatch.chdir(counter_vcd.parent)
    assert main(["waves", str(counter_vcd), *extra]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and not captured.out
    assert not (counter_vcd.parent / "out.pdf").exists()


def test_not_a_vcd_is_one_line(tmp_path, capsys):
    path = tmp_path / "x.vcd"
    path.write_bytes(b"\x00garbage $var")
    assert main(["waves", str(path)]) == 2
    assert "is not a readable VCD file" in capsys.readouterr().err


def test_markers_name_cycles(counter_vcd, tmp_path):
    from sim.waves import render_vcd

    out = tmp_path / "m.svg"
    assert render_vcd(counter_vcd, [out], markers={0: "start", 5: "five"}) == [out]
    assert "five" in out.read_text()
    with pytest.raises(ValueError, match=r"marker cycle must be in \[0, "):
        render_vcd(counter_vcd, [out], markers={CYCLES + 5: "late"})
