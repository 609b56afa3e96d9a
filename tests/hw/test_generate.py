"""qmac generate: Verilog, RTLIL and manifest; the Verilog is lint-clean."""

import json
import re

import pytest

from hw.config import ArrayConfig
from hw.generate import LINT_WAIVERS, generate, lint
from qmac.cli import main


def _rtlil_ports(text, top):
    """{port: (direction, width)} of RTLIL module ``top``, which must carry the top attribute."""
    assert f"attribute \\top 1\nmodule \\{top}\n" in text
    body = text.split(f"module \\{top}\n", 1)[1].split("\nend\n", 1)[0]
    wires = re.findall(r"^  wire width (\d+) (input|output) \d+ +(?:signed )?\\(\S+)$", body,
                       re.M)
    return {name: (direction, int(width)) for width, direction, name in wires}


def test_cli_generate_writes_files_and_manifest(tmp_path, capsys):
    assert main(["generate", "--rows", "2", "--cols", "3", "--bits", "8", "--kmax", "64",
                 "--dataflow", "ws", "--name", "top", "-o", str(tmp_path)]) == 2
    assert "kmax" in capsys.readouterr().err  # weight-stationary kmax must equal rows
    assert main(["generate", "--rows", "2", "--cols", "3", "--bits", "4", "--kmax", "64",
                 "--weight-bits", "2", "--dataflow", "os", "--name", "top",
                 "-o", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "top.manifest.json").read_text())
    assert (manifest["rows"], manifest["cols"]) == (2, 3)
    # 4-bit × 2-bit signed: max |product| = 8·2 = 16, times 64 = 1024 → 12 bits signed.
    assert manifest["accumulator_bits"] == 12
    assert manifest["parameters"]["act_bits"] == 4
    assert manifest["parameters"]["weight_bits"] == 2
    ports = {port["name"]: port for port in manifest["ports"]}
    assert ports["operands__payload"]["width"] == 2 * 4 + 3 * 2 + 1
    assert ports["results__payload"]["width"] == 3 * 4 + 1
    assert ports["operands__ready"]["direction"] == "output"
    verilog = (tmp_path / "top.v").read_text()
    assert "module top(" in verilog
    # The RTLIL top has the same ports as the Verilog, clock and reset included, with the
    # widths the operand and parameter types need (counted here, not read from the code):
    # bias int32 per column, shift in [−31, 0] (6 bits signed), M0 in [0, 2^31) (31 bits).
    il_ports = _rtlil_ports((tmp_path / "top.il").read_text(), "top")
    manifest_ports = {name: (port["direction"], port["width"]) for name, port in ports.items()}
    assert il_ports == {**manifest_ports, "clk": ("input", 1), "rst": ("input", 1)}
    assert {name: il_ports[name] for name in (
        "clk", "rst", "operands__payload", "results__payload", "bias", "shift", "multiplier",
        "act_min")} == {
        "clk": ("input", 1), "rst": ("input", 1), "operands__payload": ("input", 2 * 4 + 3 * 2 + 1),
        "results__payload": ("output", 3 * 4 + 1), "bias": ("input", 3 * 32),
        "shift": ("input", 6), "multiplier": ("input", 31), "act_min": ("input", 4)}
    assert ArrayConfig.load(tmp_path / "top.toml").kmax == 64


def test_config_file_with_overrides(tmp_path):
    ArrayConfig(rows=2, cols=2, per_channel=True, rounding="half_to_even").save(
        tmp_path / "cfg.toml")
    assert main(["generate", "--config", str(tmp_path / "cfg.toml"), "--cols", "5",
                 "-o", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "qmac_array.manifest.json").read_text())
    assert manifest["cols"] == 5 and manifest["parameters"]["rounding"] == "half_to_even"


@pytest.mark.parametrize("config", [
    ArrayConfig(rows=3, cols=2, per_channel=True, name="lint_os"),
    ArrayConfig(rows=3, cols=2, dataflow="ws", requant="shift", rounding="half_to_even",
                name="lint_ws"),
    ArrayConfig(rows=2, cols=2, weight_kind="binary", weight_bits=1, act_signed=False,
                input_zero_point_in_hw=True, max_left_shift=8, name="lint_binary"),
])
def test_verilog_is_lint_clean_and_portable(tmp_path, config):
    paths = generate(config, tmp_path)
    ok, messages = lint(paths["verilog"], top=config.name)
    assert ok, messages
    assert set(LINT_WAIVERS) == {"WIDTHEXPAND"}
    verilog = paths["verilog"].read_text()
    for primitive in ("SB_MAC16", "MULT18X18D", "DSP48", "SB_RAM", "DP16KD"):
        assert primitive not in verilog
