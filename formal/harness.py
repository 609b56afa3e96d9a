"""Proof jobs: an Amaranth wrapper with Assume/Assert/Cover, its .sby file, and its result.

A wrapper is a :class:`amaranth.lib.wiring.Component`: every input port is a free variable of
the solver (a new value each cycle). Converting a component with its own signature keeps
``clk`` and ``rst`` as ports: passing an explicit ``ports=[...]`` list without the clock would
tie ``clk`` to 0 and make every sequential assertion pass vacuously (issue 13). Wrappers assume
``rst`` low (:func:`hold_reset_low`), so the first state is the reset state and the only one
that starts a trace; every sequential proof also has a cover or a failing mutant.
"""

from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assume, Fragment, ResetSignal, Signal

from .toolchain import SOLVERS, SbyResult, run_sby

__all__ = ["MODES", "Outcome", "Proof", "hold_reset_low", "internal_signal", "run", "submodule",
           "write"]

#: sby modes a proof may use: k-induction, bounded model check, reachability of covers.
MODES = ("prove", "bmc", "cover")
#: A wrapper component is converted as this RTLIL module.
_TOP = "top"


def hold_reset_low(m):
    """Assume the ``sync`` reset is never asserted: traces start in the reset state."""
    m.d.comb += Assume(~ResetSignal())


def _targets(value):
    """The signals an assignment to ``value`` drives (a signal, or slices and concatenations
    of signals: what a ``Module`` assigns)."""
    if isinstance(value, Signal):
        yield value
    elif hasattr(value, "parts"):             # Cat
        for part in value.parts:
            yield from _targets(part)
    elif hasattr(value, "value"):             # a slice or part of a value
        yield from _targets(value.value)


def _assigned(statements):
    """Every signal ``statements`` assign, through ``If``/``Switch``/``FSM`` cases."""
    for statement in statements:
        if hasattr(statement, "lhs"):
            yield from _targets(statement.lhs)
        for _patterns, body, *_ in getattr(statement, "cases", ()):
            yield from _assigned(body)


def internal_signal(m, component, platform, name):
    """Elaborate ``component`` as submodule ``dut`` of ``m`` and return its internal signal
    ``name`` (one the component drives but does not export).

    Proofs by induction need invariants on state that a component keeps to itself (a PE's
    accumulator). Raises LookupError naming the signal when the component no longer has it.
    """
    fragment = Fragment.get(component, platform)
    found = {signal.name: signal
             for statements in fragment.statements.values()
             for signal in _assigned(statements)}
    if name not in found:
        raise LookupError(f"{type(component).__name__} drives no signal named {name!r}; "
                          f"it drives {', '.join(sorted(found))}")
    m.submodules.dut = fragment
    return found[name]


def submodule(fragment, kind):
    """The one elaboratable of class ``kind`` among the submodules (at any depth) of the
    elaborated ``fragment``: a component a design builds inside itself, whose ports a wrapper
    may then read. Raises LookupError unless there is exactly one."""
    found, todo = [], [fragment]
    while todo:
        for sub, *_ in todo.pop().subfragments:
            found += [origin for origin in sub.origins if isinstance(origin, kind)]
            todo.append(sub)
    if len(found) != 1:
        raise LookupError(f"{len(found)} submodules of class {kind.__name__}, not one")
    return found[0]


@dataclass(frozen=True)
class Proof:
    """One SymbiYosys job.

    Parameters
    ----------
    name : str
        Unique, also the folder name under the build directory.
    prop : str
        What is proved, in words (docs/formal.md).
    widths : str
        The widths and parameters it is proved at.
    design : callable
        Returns the wrapper component (built only when the job is written).
    mode : str
        One of :data:`MODES`.
    depth : int
        k of the k-induction, BMC depth, or cover depth.
    solver : str
        An ``smtbmc`` solver of :data:`formal.toolchain.SOLVERS`.
    expect : str
        ``"PASS"``; ``"FAIL"`` for a mutant (a deliberately broken copy) that must fail.
    fast : bool
        A few seconds: runs in ``make test``.
    """

    name: str
    prop: str
    widths: str
    design: object
    mode: str = "prove"
    depth: int = 2
    solver: str = "boolector"
    expect: str = "PASS"
    fast: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, not {self.solver!r}")
        if self.expect not in ("PASS", "FAIL"):
            raise ValueError(f"expect must be 'PASS' or 'FAIL', not {self.expect!r}")
        if not isinstance(self.depth, int) or not 1 <= self.depth <= 10_000:
            raise ValueError(f"depth must be in [1, 10000], not {self.depth!r}")

    @property
    def engine(self):
        return f"smtbmc {self.solver}"

    def sby(self, rtlil_name):
        """Text of the .sby file for the design in ``rtlil_name``."""
        return "\n".join([
            "[options]",
            f"mode {self.mode}",
            f"depth {self.depth}",
            "",
            "[engines]",
            self.engine,
            "",
            "[script]",
            f"read_rtlil {rtlil_name}",
            f"prep -top {_TOP}",
            "",
            "[files]",
            rtlil_name,
            "",
        ])


def write(proof, build_dir):
    """Write ``proof``'s RTLIL and .sby into ``build_dir``/``proof.name``; return the .sby."""
    folder = Path(build_dir) / proof.name
    folder.mkdir(parents=True, exist_ok=True)
    rtlil_name = "design.il"
    (folder / rtlil_name).write_text(rtlil.convert(proof.design(), name=_TOP))
    sby_file = folder / f"{proof.name}.sby"
    sby_file.write_text(proof.sby(rtlil_name))
    return sby_file


@dataclass(frozen=True)
class Outcome:
    """A proof and what sby said. ``ok`` when the status is the expected one."""

    proof: Proof
    result: SbyResult

    @property
    def ok(self):
        return self.result.status == self.proof.expect


def run(proof, build_dir, *, timeout=900):
    """Write and run ``proof``; return its :class:`Outcome`."""
    return Outcome(proof, run_sby(write(proof, build_dir), timeout=timeout))
