"""Course labs on qmac: handouts, starter trees, reference solutions and autograders.

Each lab is a package ``labs.labN_<name>`` holding ``README.md`` (the handout), ``starter/``
(what the student edits), ``solution/`` (the reference, written out by ``qmac lab solution``)
and ``grader.py`` (its :data:`~labs.grading.Lab`). ``qmac lab`` (:mod:`qmac.lab_cli`) lists,
starts, checks and solves them; labs/README.md is for instructors.
"""

import importlib

__all__ = ["LABS", "lab"]

#: Lab number → package under ``labs/``, in teaching order.
LABS = {
    1: "lab1_fixedpoint",
    2: "lab2_quantization",
    3: "lab3_mac",
    4: "lab4_systolic",
    5: "lab5_requantizer",
    6: "lab6_engine",
    7: "lab7_board",
    8: "lab8_expressive",
}


def lab(number):
    """The :class:`labs.grading.Lab` of lab ``number`` (ValueError if there is none)."""
    if isinstance(number, bool) or not isinstance(number, int) or number not in LABS:
        raise ValueError(f"lab must be one of {', '.join(map(str, LABS))}, not {number!r}")
    return importlib.import_module(f"labs.{LABS[number]}.grader").LAB
