"""``asic``: technology-independent synthesis of the generated Verilog, with a size estimate.

The same Verilog that ``qmac generate`` writes is synthesized by Yosys' generic ``synth`` into
simple gates (AND, OR, XOR, MUX, NOT) and plain D flip-flops (resets become logic), then
counted. ``stat -tech cmos`` turns the gate counts into a transistor estimate (static CMOS,
e.g. 12 transistors per XOR, 16 per flip-flop). No FPGA library is read, and the netlist is
checked to hold only Yosys' internal gates: any vendor primitive in the design fails the run.

ABC gate optimization (``abc=True``, mapping to NAND/NOR) gives smaller counts but is slow in
the WebAssembly Yosys (minutes for a 2×2 array); it is off by default.
"""

import json
import re
import time
from pathlib import Path

from hw.config import ArrayConfig
from hw.generate import generate

from .flow import BuildError, _run, tool_environment

__all__ = ["asic", "format_asic_report", "FPGA_PRIMITIVE_PATTERN", "fpga_primitives_in_verilog"]

#: Names of FPGA vendor primitives (iCE40, ECP5/Lattice, Gowin, Xilinx, Intel) that must not
#: appear in an ASIC netlist.
FPGA_PRIMITIVE_PATTERN = re.compile(
    r"^(SB_\w+|ICESTORM_\w+|TRELLIS_\w+|MULT18X18\w*|ALU54\w*|DP16KD|PDPW16KD|EHXPLL\w*|"
    r"CCU2\w*|LUT[1-6]|PFUMX|L6MUX21|FD\w*|DSP48\w*|RAMB\w+|CARRY[48]|BUFG\w*|IBUF\w*|OBUF\w*|"
    r"altsyncram|cyclone\w*|GSR|SGSR|DCCA|OSC\w*|ALU|MUX2_LUT\w*|DFF\w*_GW|rPLL|IOBUF)$")

_INSTANCE = re.compile(r"^\s*([A-Za-z_][\w$]*)\s+(?:#\s*\(.*?\)\s*)?[A-Za-z_\\][\w$.\\]*\s*\(",
                       re.MULTILINE)


def fpga_primitives_in_verilog(text):
    """Module names instantiated in Verilog ``text`` that are FPGA primitives."""
    return sorted({name for name in _INSTANCE.findall(text) if FPGA_PRIMITIVE_PATTERN.match(name)})


def _transistors(value):
    text = str(value)
    return int(text.rstrip("+")), text.endswith("+")


def asic(config, out_dir, *, tools="yowasp", abc=False, progress=print):
    """Synthesize ``config`` without a technology; write and return ``asic_report.json``."""
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an ArrayConfig, not {config!r}")
    if not isinstance(abc, bool):
        raise TypeError(f"abc must be a bool, not {abc!r}")
    if progress is None:
        def progress(message):
            pass
    env, executables = tool_environment(tools)
    out_dir = Path(out_dir)
    start = time.monotonic()
    progress(f"qmac asic: {config.rows}×{config.cols} {config.dataflow}, {config.act_bits}×"
             f"{config.weight_bits} bit, kmax {config.kmax}")
    paths = generate(config, out_dir)
    verilog = paths["verilog"]
    in_source = fpga_primitives_in_verilog(verilog.read_text())
    name = config.name
    script = [
        f"read_verilog {verilog.name}",
        f"hierarchy -check -top {name}",
        f"synth -flatten -top {name}" + ("" if abc else " -noabc"),
        # Plain positive-edge flip-flops: resets and enables become gates the estimate counts.
        "dfflegalize -cell $_DFF_P_ 01",
    ]
    if abc:
        script.append("abc -g cmos2")
    script += [
        "delete t:$scopeinfo",
        "opt_clean",
        f"tee -q -o {name}.asic_stat.json stat -json -tech cmos",
        f"write_verilog -noattr {name}.netlist.v",
    ]
    (out_dir / f"{name}.asic.ys").write_text("\n".join(script) + "\n")
    progress(f"  synthesis: {executables['yosys']}")
    elapsed = _run([executables["yosys"], "-q", f"{name}.asic.ys"], cwd=out_dir, env=env,
                   stage="synthesis", log_path=out_dir / "yosys_asic.log", progress=progress)
    progress(f"      done in {elapsed:.1f} s")
    stat = json.loads((out_dir / f"{name}.asic_stat.json").read_text())
    design = stat["design"]
    cells = {cell: int(n) for cell, n in design["num_cells_by_type"].items()}
    transistors, partial = _transistors(design.get("estimated_num_transistors", "0"))
    in_netlist = sorted(cell for cell in cells if not cell.startswith("$"))
    if in_source or in_netlist:
        found = ", ".join(in_source + in_netlist)
        raise BuildError(f"FPGA primitives in the ASIC netlist: {found}", stage="primitive check")
    flip_flops = sum(n for cell, n in cells.items() if "DFF" in cell)
    report = {
        "top": name,
        "rows": config.rows,
        "cols": config.cols,
        "pes": config.rows * config.cols,
        "act_bits": config.act_bits,
        "weight_bits": config.weight_bits,
        "kmax": config.kmax,
        "accumulator_bits": config.accumulator_bits,
        "config": config.to_dict(),
        "cells": cells,
        "total_cells": sum(cells.values()),
        "flip_flops": flip_flops,
        "gates": sum(cells.values()) - flip_flops,
        "transistors": transistors,
        "transistors_partial": partial,
        "abc": abc,
        "fpga_primitives": [],
        "verilog": str(verilog),
        "netlist": str(out_dir / f"{name}.netlist.v"),
        "seconds": round(time.monotonic() - start, 1),
    }
    (out_dir / "asic_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_asic_report(report):
    lines = [
        ("top", f"{report['top']}: {report['rows']}×{report['cols']}, {report['act_bits']}×"
                f"{report['weight_bits']} bit, {report['accumulator_bits']}-bit accumulators"),
        ("cells", ", ".join(f"{cell} {n}" for cell, n in sorted(report["cells"].items()))),
        ("gates", str(report["gates"])),
        ("flip-flops", str(report["flip_flops"])),
        ("transistors", f"{report['transistors']}{'+' if report['transistors_partial'] else ''}"
                        " (static CMOS estimate)"),
        ("FPGA primitives", "none"),
        ("netlist", report["netlist"]),
    ]
    width = max(len(key) for key, _ in lines)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in lines)
