"""Starter and solution trees of a lab, written from one source.

A lab's ``solution/`` holds the reference. Every function body a student writes sits between
``# SOLUTION: <hint>`` and ``# END SOLUTION``; the starter tree is the same files with each
such block replaced by ``# TODO: <hint>`` (with the comment lines that follow the marker)
and ``raise NotImplementedError``. One source keeps
the starter's signatures and docstrings identical to the reference's, and the starter's
untouched bodies score zero (tests/labs).
"""

import re
import shutil
from pathlib import Path

__all__ = ["starter_text", "write_tree"]

_BEGIN = re.compile(r"^(?P<indent>\s*)# SOLUTION:?\s*(?P<hint>.*)$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_DEF = re.compile(r"^(?P<indent>\s*)(?:async\s+)?(?:def|class)\s+(?P<name>\w+)")
#: Files of a solution tree that are not copied (caches, editor files).
_SKIPPED = ("__pycache__", ".pytest_cache")


def starter_text(source, *, filename="<source>"):
    """``source`` with every solution block replaced by a TODO that raises."""
    out, names, inside, hinting = [], [], None, False
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        if hinting and line.lstrip().startswith("#") and not _END.match(line):
            out.insert(-1, line)                  # the hint goes on: keep it above the raise
            continue
        hinting = False
        definition = _DEF.match(line)
        if definition and inside is None:
            names = [n for n in names if len(n[0]) < len(definition["indent"])]
            names.append((definition["indent"], definition["name"]))
        begin = _BEGIN.match(line)
        if begin and inside is None:
            indent = begin["indent"]
            if not indent:
                raise ValueError(f"{filename}:{number}: a solution block must be inside a "
                                 "function")
            name = next((n for i, n in reversed(names) if len(i) < len(indent)), "this")
            hint = begin["hint"] or "write this"
            out += [f"{indent}# TODO: {hint}\n",
                    f'{indent}raise NotImplementedError("TODO: {name}")\n']
            inside, hinting = number, True
        elif _END.match(line):
            if inside is None:
                raise ValueError(f"{filename}:{number}: END SOLUTION without SOLUTION")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"{filename}:{inside}: SOLUTION block never ends")
    return "".join(out)


def write_tree(source, destination, *, starter):
    """Copy the solution tree ``source`` into ``destination`` (made if missing); with
    ``starter``, .py files get their solution blocks replaced (:func:`starter_text`), and
    without, the markers are dropped. Returns the paths written."""
    source, destination = Path(source), Path(destination)
    written = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or any(part in _SKIPPED for part in relative.parts):
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            text = path.read_text()
            if starter:
                text = starter_text(text, filename=str(path))
            else:
                text = "".join(line for line in text.splitlines(keepends=True)
                               if not (_BEGIN.match(line) or _END.match(line)))
            target.write_text(text)
        else:
            shutil.copyfile(path, target)
        written.append(target)
    return written
