"""``sweep``: build a range of array sizes for one board; tables and a plot of cost and speed."""

import csv
import json
import time
from pathlib import Path

from hw.config import ArrayConfig

from .flow import BuildError, build
from .png import Canvas, line_chart, write_png
from .registry import get_board

__all__ = ["sweep", "parse_sizes", "sweep_table", "plot_sweep", "COLUMNS"]

COLUMNS = ("rows", "cols", "pes", "fits", "timing_pass", "fmax_mhz", "peak_gmacs",
           "logic_used", "logic_available", "ff_used", "dsp_used", "dsp_available",
           "bram_used", "pe_multipliers_in_dsp", "accumulator_bits", "seconds", "note")


def parse_sizes(text):
    """``"2x2,4x4,8"`` → ((2, 2), (4, 4), (8, 8))."""
    sizes = []
    for item in str(text).split(","):
        item = item.strip().lower()
        if not item:
            continue
        parts = item.split("x")
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            raise ValueError(f"sizes must look like 4x4,8x8, not {text!r}") from None
        if len(numbers) == 1:
            numbers *= 2
        if len(numbers) != 2 or min(numbers) < 1:
            raise ValueError(f"sizes must look like 4x4,8x8 with sizes >= 1, not {text!r}")
        sizes.append(tuple(numbers))
    if not sizes:
        raise ValueError(f"sizes must name at least one size, not {text!r}")
    return tuple(sizes)


def _row(config, report=None, note=""):
    row = {"rows": config.rows, "cols": config.cols, "pes": config.rows * config.cols,
           "accumulator_bits": config.accumulator_bits, "fits": report is not None,
           "note": note}
    if report is not None:
        resources = report["resources"]
        row.update({
            "timing_pass": report["timing_pass"],
            "fmax_mhz": round(report["fmax_sync_mhz"], 1),
            "peak_gmacs": report["peak_gmacs"],
            "logic_used": resources["logic"]["used"],
            "logic_available": resources["logic"]["available"],
            "ff_used": resources["ff"]["used"],
            "dsp_used": resources["dsp"]["used"],
            "dsp_available": resources["dsp"]["available"],
            "bram_used": resources["bram"]["used"],
            "pe_multipliers_in_dsp": report["dsp"]["pe_multipliers_in_dsp"],
            "seconds": report["seconds"],
        })
    return row


def sweep(board, out_dir, *, sizes=None, base=None, tools="yowasp", clock_mhz=None,
          dsp="auto", keep_going=False, progress=print):
    """Build each size of ``sizes`` (default: the board's list) for ``board``.

    ``base`` is the :class:`ArrayConfig` every size is derived from (default int8,
    output-stationary). Sizes are built in order; after the first one that does not fit the
    rest are skipped unless ``keep_going``. Writes ``sweep.csv``, ``sweep.md``, ``sweep.png``
    and ``sweep.json`` into ``out_dir`` and returns ``{"rows": [...], "largest": row}``.
    """
    board = get_board(board)
    if not board.supported:
        raise ValueError(f"board {board.name!r} cannot be built: {board.reason}")
    base = base if base is not None else ArrayConfig()
    if not isinstance(base, ArrayConfig):
        raise TypeError(f"base must be an ArrayConfig, not {base!r}")
    sizes = board.sweep_sizes if sizes is None else tuple(sizes)
    if progress is None:
        def progress(message):
            pass
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, stop = [], False
    for index, (r, c) in enumerate(sizes, 1):
        config = base.replace(rows=r, cols=c)
        if stop:
            rows.append(_row(config, note="skipped: a smaller size did not fit"))
            continue
        progress(f"sweep {board.name} [{index}/{len(sizes)}]: {r}×{c}")
        try:
            report = build(board, config, out_dir / f"{r}x{c}", tools=tools,
                           clock_mhz=clock_mhz, dsp=dsp, progress=progress)
        except BuildError as error:
            if error.stage != "place and route":
                raise
            first = str(error).splitlines()[-1] if str(error) else ""
            rows.append(_row(config, note=f"does not fit: {first}"[:160]))
            stop = not keep_going
            progress(f"  {r}×{c} does not fit")
            continue
        rows.append(_row(config, report))
    fitting = [row for row in rows if row["fits"] and row["timing_pass"]]
    largest = max(fitting, key=lambda row: (row["pes"], row["fmax_mhz"]), default=None)
    result = {"board": board.name, "device": board.device, "board_clock_mhz": board.clock_mhz,
              "constraint_mhz": clock_mhz or board.clock_mhz, "act_bits": base.act_bits,
              "weight_bits": base.weight_bits, "rows": rows, "largest": largest,
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    _write_csv(out_dir / "sweep.csv", rows)
    (out_dir / "sweep.md").write_text(sweep_table(result) + "\n")
    (out_dir / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    plot_sweep(result, out_dir / "sweep.png")
    return result


def _write_csv(path, rows):
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in COLUMNS})


def _cell(row, used, available=None):
    if not row["fits"]:
        return "–"
    if available is None:
        return str(row[used])
    total = row[available]
    return f"{row[used]} / {total} ({100 * row[used] / total:.0f} %)" if total else str(row[used])


def sweep_table(result):
    """The sweep as Markdown: one line per size, then the largest array that fits."""
    lines = [
        f"### {result['board']} ({result['device']}), {result['act_bits']}×"
        f"{result['weight_bits']}-bit operands, constraint {result['constraint_mhz']:g} MHz",
        "",
        "| array | PEs | logic | FF | DSP | BRAM | Fmax (MHz) | board clock | peak GMAC/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in result["rows"]:
        if row["fits"]:
            verdict = "pass" if row["timing_pass"] else "FAIL"
            lines.append(
                f"| {row['rows']}×{row['cols']} | {row['pes']} | "
                f"{_cell(row, 'logic_used', 'logic_available')} | {row['ff_used']} | "
                f"{_cell(row, 'dsp_used', 'dsp_available')} | {row['bram_used']} | "
                f"{row['fmax_mhz']:.1f} | {verdict} | {row['peak_gmacs']:.2f} |")
        else:
            lines.append(f"| {row['rows']}×{row['cols']} | {row['pes']} | {row['note']} "
                         f"| | | | | | |")
    largest = result["largest"]
    lines.append("")
    if largest:
        lines.append(f"Largest array that fits and meets the {result['board_clock_mhz']:g} MHz "
                     f"board clock: **{largest['rows']}×{largest['cols']}** "
                     f"({largest['fmax_mhz']:.1f} MHz, {largest['peak_gmacs']:.2f} GMAC/s peak).")
    else:
        lines.append("No size fits.")
    return "\n".join(lines)


def plot_sweep(result, path):
    """Utilization (%) and Fmax against the number of PEs, as a PNG."""
    fitted = [row for row in result["rows"] if row["fits"]]
    canvas = Canvas(760, 330)
    x_values = [row["pes"] for row in fitted]

    def percent(used, available):
        return [100 * row[used] / row[available] if row[available] else None for row in fitted]

    series = {
        "LOGIC": percent("logic_used", "logic_available"),
        "FF": [100 * row["ff_used"] / row["logic_available"] if row["logic_available"] else None
               for row in fitted],
        "DSP": percent("dsp_used", "dsp_available"),
    }
    line_chart(canvas, (0, 0, 380, 330), x_values, series,
               title=f"{result['board']} utilization", y_label="%", x_label="PES", y_min=0)
    line_chart(canvas, (380, 0, 380, 330), x_values,
               {"FMAX": [row["fmax_mhz"] for row in fitted]},
               title=f"{result['board']} fmax", y_label="MHZ", x_label="PES", y_min=0)
    write_png(path, canvas.pixels)
