"""Verilog, RTLIL and a JSON manifest for one :class:`ArrayConfig`."""

import json
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from .config import ArrayConfig
from .top import MacArray

__all__ = ["ports", "manifest", "generate"]


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


def generate(config, directory):
    """Write ``<top>.v``, ``<top>.il`` and ``<top>.manifest.json``; return their paths."""
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an ArrayConfig, not {config!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / config.name
    array = MacArray(config)
    paths = {
        "verilog": stem.with_suffix(".v"),
        "rtlil": stem.with_suffix(".il"),
        "manifest": stem.with_suffix(".manifest.json"),
        "config": stem.with_suffix(".toml"),
    }
    paths["verilog"].write_text(verilog.convert(array, name=config.name, emit_src=False))
    paths["rtlil"].write_text(rtlil.convert(MacArray(config), name=config.name, emit_src=False))
    paths["manifest"].write_text(json.dumps(manifest(config, array), indent=2) + "\n")
    config.save(paths["config"])
    return paths
