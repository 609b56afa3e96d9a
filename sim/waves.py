"""Waveforms as pictures: read a VCD file (pyvcd's tokenizer) and draw chosen signals with
matplotlib, to SVG or PNG, one row per signal, cycles marked at the clock's rising edges.

``qmac waves FILE.vcd`` (:mod:`qmac.lab_cli`) is the command line; the labs call
:func:`render_vcd` on the VCD that Amaranth's simulator writes
(``with sim.write_vcd("run.vcd"):``).
"""

import fnmatch
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FORMATS", "RADIXES", "Trace", "read_vcd", "render_vcd", "select"]

#: Picture formats by file suffix (matplotlib writes both).
FORMATS = (".svg", ".png")
#: How bus values are written: signed or unsigned decimal, hexadecimal.
RADIXES = ("signed", "unsigned", "hex")
#: At most this many signals are drawn when none are chosen.
DEFAULT_SIGNAL_LIMIT = 24
#: Height of one signal's row and width of one clock cycle, in inches.
ROW_INCHES, CYCLE_INCHES, LABEL_INCHES = 0.45, 0.32, 2.6
#: A bus value is written only on a segment at least this wide (inches).
LABEL_MIN_INCHES = 0.25
#: Width of the narrowest picture, in inches.
MIN_WIDTH_INCHES = 8
#: PNG resolution.
DPI = 150


@dataclass
class Trace:
    """One signal of a VCD file: its hierarchical name (scopes joined by "."), width in bits
    and value changes as (time, value); value is an int, or a str holding x or z bits."""
    name: str
    width: int
    changes: list = field(default_factory=list)

    def value_at(self, time):
        """The value at ``time`` (None before the first change)."""
        value = None
        for when, new in self.changes:
            if when > time:
                break
            value = new
        return value


def read_vcd(path):
    """(traces, end): every variable of the VCD file ``path`` as a :class:`Trace` by name (a
    signal dumped under several ids or scopes keeps its first name), and the last time."""
    from vcd.reader import VCDParseError

    try:
        return _read_vcd(path)
    except (VCDParseError, UnicodeDecodeError, IndexError) as error:
        raise ValueError(f"{path} is not a readable VCD file ({error})") from None


#: A $var whose reference starts with "$" (Amaranth names unnamed signals "$signal"), which
#: pyvcd's tokenizer refuses: the "$" becomes "_".
_DOLLAR_REFERENCE = re.compile(rb"^(\s*\$var\s+\S+\s+\d+\s+\S+\s+)\$(?!end\b)", re.MULTILINE)


def _read_vcd(path):
    from vcd.reader import TokenKind, tokenize

    traces, by_id, scopes, time = {}, {}, [], 0
    text = _DOLLAR_REFERENCE.sub(rb"\1_", Path(path).read_bytes())
    with io.BytesIO(text) as file:
        for token in tokenize(file):
            kind = token.kind
            if kind is TokenKind.SCOPE:
                scopes.append(token.data.ident)
            elif kind is TokenKind.UPSCOPE:
                scopes.pop()
            elif kind is TokenKind.VAR:
                var = token.data
                if var.id_code in by_id:
                    continue
                name = ".".join([*scopes, var.reference])
                trace = traces.setdefault(name, Trace(name, var.size or 1))
                by_id[var.id_code] = trace
            elif kind is TokenKind.CHANGE_TIME:
                time = token.data
            elif kind in (TokenKind.CHANGE_SCALAR, TokenKind.CHANGE_VECTOR):
                trace = by_id.get(token.data.id_code)
                if trace is not None:
                    value = token.data.value
                    if isinstance(value, str) and value in "01":
                        value = int(value)
                    trace.changes.append((time, value))
    return traces, time


def select(traces, patterns):
    """The traces whose full or last name matches one of the shell ``patterns``
    (``fnmatch``), in the order of the patterns; ValueError naming a pattern that matches
    nothing. No patterns: the first :data:`DEFAULT_SIGNAL_LIMIT` traces."""
    if not patterns:
        return list(traces.values())[:DEFAULT_SIGNAL_LIMIT]
    chosen = []
    for pattern in patterns:
        found = [trace for name, trace in traces.items()
                 if fnmatch.fnmatchcase(name, pattern) or
                 fnmatch.fnmatchcase(name.rsplit(".", 1)[-1], pattern)]
        if not found:
            raise ValueError(f"--signal {pattern!r} matches no signal of the VCD file (it has "
                             f"{len(traces)}: {', '.join(list(traces)[:8])}…)")
        chosen += [trace for trace in found if trace not in chosen]
    return chosen


def _text(value, width, radix):
    if not isinstance(value, int):
        return str(value)
    if radix == "hex":
        return f"{value:x}"
    if radix == "signed" and width > 1 and value >> (width - 1):
        value -= 1 << width
    return str(value)


def _labels(traces):
    """The shortest tail of each trace's name that tells it from the others."""
    parts = [trace.name.split(".") for trace in traces]
    labels = []
    for mine in parts:
        for n in range(1, len(mine) + 1):
            tail = mine[-n:]
            if sum(other[-n:] == tail for other in parts) == 1 or n == len(mine):
                labels.append(".".join(tail))
                break
    return labels


def _rising_edges(clock, start, end):
    edges, previous = [], None
    for when, value in clock.changes:
        if previous == 0 and value == 1 and start <= when <= end:
            edges.append(when)
        previous = value
    return edges


def render_vcd(vcd, outputs, *, signals=(), clock="clk", start=None, end=None,
               radix="signed", title=None, markers=None):
    """Draw the ``signals`` (shell patterns, :func:`select`) of the VCD file ``vcd`` from
    ``start`` to ``end`` (VCD time units; default: all) into each file of ``outputs`` (.svg or
    .png). Rising edges of the trace named ``clock`` (last name) are numbered as cycles;
    ``markers`` ({cycle: label}) annotates some of them with a dashed line and a label.
    Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if radix not in RADIXES:
        raise ValueError(f"radix must be one of {', '.join(RADIXES)}, not {radix!r}")
    outputs = [Path(output) for output in outputs]
    for output in outputs:
        if output.suffix not in FORMATS:
            raise ValueError(f"output must end in {' or '.join(FORMATS)}, not {str(output)!r}")
    traces, last = read_vcd(vcd)
    chosen = select(traces, signals)
    if not chosen:
        raise ValueError(f"{vcd} holds no signals")
    start = 0 if start is None else start
    end = last if end is None else end
    if not start < end:
        raise ValueError(f"start must be below end ({end}), not {start}")
    clocks = [t for name, t in traces.items() if name.rsplit(".", 1)[-1] == clock]
    edges = _rising_edges(clocks[0], start, end) if clocks else []
    cycles = max(len(edges), 1)
    width = max(MIN_WIDTH_INCHES, LABEL_INCHES + CYCLE_INCHES * cycles)
    figure, axes = plt.subplots(figsize=(width, ROW_INCHES * (len(chosen) + 1.5)))
    span = end - start
    for row, trace in enumerate(chosen):
        base = len(chosen) - 1 - row
        points = [(max(when, start), value) for when, value in trace.changes if when <= end]
        points = [p for i, p in enumerate(points)
                  if i + 1 == len(points) or points[i + 1][0] > start]   # last before start on
        points.append((end, points[-1][1] if points else None))
        if trace.width == 1 and all(isinstance(v, int) for _, v in points):
            axes.step([t for t, _ in points], [base + 0.1 + 0.6 * v for _, v in points],
                      where="post", color="tab:blue", linewidth=1.2)
            continue
        for (t0, value), (t1, _) in zip(points, points[1:], strict=False):
            if t1 <= t0:
                continue
            unknown = not isinstance(value, int)
            axes.fill_between([t0, t1], base + 0.1, base + 0.7, alpha=0.15,
                              color="tab:red" if unknown else "tab:green",
                              edgecolor="black", linewidth=0.6)
            if (t1 - t0) / span * (width - LABEL_INCHES) > LABEL_MIN_INCHES:
                axes.text((t0 + t1) / 2, base + 0.4, _text(value, trace.width, radix),
                          ha="center", va="center", fontsize=6, clip_on=True)
    for number, edge in enumerate(edges):
        axes.axvline(edge, color="grey", linewidth=0.3, zorder=0)
        axes.text(edge, len(chosen) + 0.05, str(number), fontsize=5, ha="center",
                  color="grey")
    for cycle, label in (markers or {}).items():
        if not 0 <= cycle < len(edges):
            raise ValueError(f"marker cycle must be in [0, {len(edges) - 1}], not {cycle}")
        axes.axvline(edges[cycle], color="tab:red", linewidth=0.8, linestyle="--", zorder=0)
        axes.text(edges[cycle], -0.15, f" {label}", fontsize=6, color="tab:red",
                  rotation=90, va="bottom", ha="right")
    axes.set_yticks([len(chosen) - 1 - row + 0.4 for row in range(len(chosen))])
    axes.set_yticklabels([f"{label} [{t.width}]" if t.width > 1 else label
                          for t, label in zip(chosen, _labels(chosen), strict=True)],
                         fontsize=7)
    axes.set_xlim(start, end)
    axes.set_ylim(-0.2, len(chosen) + 0.4)
    axes.set_xticks([])
    axes.set_xlabel(f"clock cycles (rising edges of {clock!r})" if edges else "time")
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.set_title(title or Path(vcd).name, fontsize=9)
    figure.tight_layout()
    for output in outputs:
        figure.savefig(output, dpi=DPI)
    plt.close(figure)
    return outputs
