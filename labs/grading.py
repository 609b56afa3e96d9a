"""The autograder every lab shares: parts, visible and hidden tests, a score.

A lab is a list of :class:`Part`. Each part names the student's functions it grades and one
``check(student, rng)`` that states a property (student result equals golden/ or the grader's
own integer reasoning) on data drawn from ``rng``. The visible run draws from
:data:`VISIBLE_SEED`, the same for everybody and printed in the handout's tests; the hidden
run draws the same property from a seed chosen at grading time (``--seed``, or derived from
the student's id and the term, :func:`hidden_seed`), so an answer that prints stored outputs
fails. A part scores its points only when both runs pass; the last line of a report is
``score X/Y``.
"""

import ast
import contextlib
import gc
import hashlib
import importlib.util
import io
import os
import secrets
import signal
import sys
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import UnusedElaboratable

__all__ = ["FORBIDDEN_IMPORTS", "HIDDEN_SEED_BITS", "Lab", "Part", "PartResult", "Report",
           "TERM_VARIABLE", "VISIBLE_SEED", "forbidden_imports", "grade", "hidden_seed",
           "load_student", "require"]

#: Seed of the visible tests (the ones a student can reproduce and read).
VISIBLE_SEED = 2026
#: Hidden seeds are drawn from [0, 2^HIDDEN_SEED_BITS).
HIDDEN_SEED_BITS = 32
#: Environment variable holding the instructor's secret for this term (:func:`hidden_seed`).
TERM_VARIABLE = "QMAC_LAB_TERM"
#: Packages a student module may not import by default: golden/ and hw/ hold the answers.
FORBIDDEN_IMPORTS = ("golden", "hw", "sim", "boards", "qmac", "labs")
#: A part that runs longer than this (seconds, visible and hidden together) fails.
PART_TIME_LIMIT = 60


@dataclass(frozen=True)
class Part:
    """One graded part of a lab.

    Parameters
    ----------
    name : str
        What the part grades, one line.
    points : int
        Points for passing both its visible and its hidden run.
    functions : tuple of str
        The student's functions or classes the part calls (named in the hint on failure).
    check : callable
        ``check(student, rng)``: raises (``AssertionError`` with a message) unless the
        student's module satisfies the property on data drawn from ``rng``
        (:class:`numpy.random.Generator`).
    """
    name: str
    points: int
    functions: tuple
    check: object


@dataclass(frozen=True)
class Lab:
    """A lab: its number, title, the student module the parts import, and the parts.

    ``minutes`` is the time a student needs for the whole lab (labs/README.md);
    ``package`` is the folder under labs/ holding README.md and solution/ (the starter is
    made from it, :mod:`labs.trees`). The student module may not import the packages of
    ``forbidden_imports`` (the answers are in them): a part that would pass that way fails.
    """
    number: int
    title: str
    package: str
    module: str
    parts: tuple
    minutes: int
    forbidden_imports: tuple = FORBIDDEN_IMPORTS

    @property
    def folder(self):
        return Path(__file__).parent / self.package

    @property
    def starter(self):
        return self.folder / "starter"

    @property
    def solution(self):
        return self.folder / "solution"

    @property
    def points(self):
        return sum(part.points for part in self.parts)


@dataclass
class PartResult:
    part: Part
    visible: str = "not run"       # "pass" or why it failed
    hidden: str = "not run (the visible run failed)"

    @property
    def passed(self):
        return self.visible == "pass" and self.hidden == "pass"

    @property
    def score(self):
        return self.part.points if self.passed else 0


@dataclass
class Report:
    lab: Lab
    seed: int
    results: list = field(default_factory=list)

    @property
    def score(self):
        return sum(result.score for result in self.results)

    @property
    def full_marks(self):
        return self.score == self.lab.points

    def lines(self):
        """The report as printed by ``qmac lab check``: a line per run of each part, a hint
        naming the student's functions on failure, ``score X/Y`` last."""
        out = [f"lab {self.lab.number}: {self.lab.title} (hidden tests: seed {self.seed})"]
        for index, result in enumerate(self.results, 1):
            part = result.part
            out.append(f"part {index} {part.name}: {result.score}/{part.points}")
            out.append(f"  visible: {result.visible}")
            out.append(f"  hidden:  {result.hidden}")
            if not result.passed:
                out.append(f"  hint: look at {', '.join(part.functions)} in "
                           f"{self.lab.module}.py")
        out.append(f"score {self.score}/{self.lab.points}")
        return out


def hidden_seed(seed=None, student=None, term=None):
    """The seed of the hidden tests: ``seed`` when given; else derived from ``student`` (an id)
    and ``term`` (default: the :data:`TERM_VARIABLE` environment variable), so a student's
    hidden data are fixed for a term and change with it; else a fresh random seed."""
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not \
                0 <= seed < 1 << HIDDEN_SEED_BITS:
            raise ValueError(f"seed must be in [0, {(1 << HIDDEN_SEED_BITS) - 1}], not {seed!r}")
        return seed
    if student is not None:
        term = os.environ.get(TERM_VARIABLE, "") if term is None else term
        digest = hashlib.sha256(f"{term}\0{student}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (1 << HIDDEN_SEED_BITS)
    return secrets.randbits(HIDDEN_SEED_BITS)


def forbidden_imports(path, forbidden):
    """The imports of the Python file ``path`` whose top-level package is in ``forbidden``
    (sorted names; a file that does not parse has none: its import fails later)."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=str(path))
    except (SyntaxError, ValueError):
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] in forbidden)


def load_student(directory, module):
    """Import ``module``.py from ``directory`` as a fresh module (never a cached copy); the
    directory is on ``sys.path`` while it loads, so the student may split code into files."""
    directory = Path(directory).resolve()
    path = directory / f"{module}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (qmac lab start writes it)")
    name = f"_student_{module}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    student = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(directory))
    try:
        sys.modules[name] = student
        spec.loader.exec_module(student)
    finally:
        sys.path.remove(str(directory))
    return student


def require(condition, message):
    """Fail a check with ``message`` (an AssertionError that ``python -O`` cannot remove)."""
    if not condition:
        raise AssertionError(message)


class _TimeLimit(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    """Raise :class:`_TimeLimit` after ``seconds`` (main thread on POSIX; else no limit)."""
    usable = hasattr(signal, "SIGALRM") and \
        __import__("threading").current_thread() is __import__("threading").main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _TimeLimit(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _describe(error, directory=None):
    if isinstance(error, NotImplementedError):
        return "not implemented (the TODO still raises NotImplementedError)"
    if isinstance(error, AssertionError):
        return f"wrong: {error}"
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if directory and Path(f.filename).parent == Path(directory)]
    frame = (mine or frames or [None])[-1]
    where = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"error: {type(error).__name__}: {error}{where}"


def _run(check, student, seed, directory):
    with warnings.catch_warnings():
        # A student component whose constructor raised is never elaborated; Amaranth would
        # warn about it whenever it is collected.
        warnings.simplefilter("ignore", UnusedElaboratable)
        # Nor is a simulator the grader set up for a student function that raised first.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                check(student, np.random.default_rng(seed))
        except (Exception, SystemExit, _TimeLimit) as error:   # student code may do anything
            outcome = _describe(error, directory)
        else:
            outcome = "pass"
        gc.collect()
    return outcome


def grade(lab, directory, *, seed):
    """Grade the student tree ``directory`` for ``lab`` with hidden ``seed``: a
    :class:`Report`. Student output is swallowed; nothing is printed."""
    report = Report(lab, seed)
    path = Path(directory) / f"{lab.module}.py"
    used = forbidden_imports(path, lab.forbidden_imports) if path.is_file() else []
    if used:
        why = (f"{lab.module}.py imports {', '.join(used)}: write this lab without "
               f"{', '.join(p + '/' for p in lab.forbidden_imports)}")
        report.results = [PartResult(part, why, why) for part in lab.parts]
        return report
    try:
        with contextlib.redirect_stdout(io.StringIO()), _time_limit(PART_TIME_LIMIT):
            student = load_student(directory, lab.module)
    except FileNotFoundError:
        raise
    except (Exception, SystemExit, _TimeLimit) as error:   # a syntax error, an exit, a loop
        why = f"cannot import {lab.module}.py: {_describe(error, Path(directory).resolve())}"
        report.results = [PartResult(part, why, why) for part in lab.parts]
        return report
    folder = Path(directory).resolve()
    for part in lab.parts:
        result = PartResult(part)
        try:
            with _time_limit(PART_TIME_LIMIT):
                result.visible = _run(part.check, student, VISIBLE_SEED, folder)
                if result.visible == "pass":
                    result.hidden = _run(part.check, student, seed, folder)
        except _TimeLimit as error:
            result.hidden = f"error: {error}"
        report.results.append(result)
    return report
