"""``sweep``: array sizes × boards × configuration options, built on Dask; tables and plots.

Every (board, option combination, size) is one :func:`boards.flow.build`, submitted as one task
to a Dask ``distributed`` cluster: a :class:`distributed.LocalCluster` of single-threaded worker
processes on this machine by default, or a running scheduler (``scheduler="tcp://host:port"``).
Results are collected as they finish, each reported by ``progress`` as it arrives; a build that
fails or does not fit becomes a row that says so, and the other builds carry on. The sweep
writes ``sweep.csv``, ``sweep.md``, ``sweep.json``, ``sweep.png`` and ``sweep.svg``.

Typical use::

    from boards.sweep import sweep, sweep_table
    result = sweep(["icebreaker", "ulx3s-85f"], "build/sweep", sizes=[(1, 1), (2, 2)],
                   options={"rounding": ["double", "single"]}, workers=2)
    print(sweep_table(result))
"""

import contextlib
import csv
import dataclasses
import itertools
import json
import time
import tomllib
import uuid
from pathlib import Path

from hw.config import ArrayConfig

from .flow import TOOLS, BuildError, _budget, build
from .registry import Board, get_board

__all__ = ["sweep", "parse_sizes", "parse_options", "sweep_table", "plot_sweep", "describe",
           "COLUMNS", "STATUSES", "OUTPUTS"]

COLUMNS = ("board", "device", "options", "rows", "cols", "pes", "status", "fits", "timing_pass",
           "fmax_mhz", "clock_mhz", "board_clock_mhz", "peak_gmacs", "logic_used",
           "logic_available", "ff_used", "ff_available", "dsp_used", "dsp_available", "bram_used",
           "bram_available", "pe_multipliers_in_dsp", "accumulator_bits", "seconds", "note")
#: What became of one build: placed and routed, too big for the device (nextpnr could not place
#: or route it), failed for another reason, or not built because a smaller size did not fit.
STATUSES = ("built", "does not fit", "failed", "skipped")
BUILT, NO_FIT, FAILED, SKIPPED = STATUSES
#: The files a sweep writes into its output folder, by kind.
OUTPUTS = {"csv": "sweep.csv", "markdown": "sweep.md", "json": "sweep.json",
           "png": "sweep.png", "svg": "sweep.svg"}
#: ArrayConfig parameters a sweep sets itself (``sizes``), so not through ``options``.
_SIZE_PARAMETERS = ("rows", "cols")
#: The flow stage whose failure means the design does not fit the device.
_FIT_STAGE = "place and route"
#: How Yosys and nextpnr start the line that says why they failed.
_ERROR_PREFIX = "ERROR: "
#: Longest note kept in a row (the tail of a tool's error).
_NOTE_CHARS = 160


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


def _option_value(text):
    """One option value as TOML reads it (``64``, ``true``, ``"x"``); a bare word is a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def parse_options(items):
    """``["rounding=double,single", "kmax=64,256"]`` → {"rounding": ("double", "single"), ...}.

    Values are read as in a configuration file (``64`` is an integer, ``true`` a bool, a bare
    word a string); whether they are legal is :class:`ArrayConfig`'s to say (see
    :func:`sweep`, which checks every combination before it builds anything).
    """
    options = {}
    for item in items or ():
        key, sep, values = str(item).partition("=")
        key = key.strip()
        values = [value.strip() for value in values.split(",") if value.strip()]
        if not sep or not key or not values:
            raise ValueError(f"option must look like key=value1,value2, not {item!r}")
        if key in options:
            raise ValueError(f"option {key} is given twice; list its values once: "
                             f"{key}=a,b")
        options[key] = tuple(_option_value(value) for value in values)
    return options


@dataclasses.dataclass(frozen=True)
class _Job:
    """One build of a sweep: its place in the table, what to build and where."""

    index: int
    board: Board
    options: tuple          # ((parameter, value), ...) of this combination
    config: ArrayConfig
    out_dir: Path

    @property
    def group(self):
        return self.board.name, self.options

    @property
    def size(self):
        return f"{self.config.rows}×{self.config.cols}"

    @property
    def label(self):
        return " ".join([f"{self.config.rows}x{self.config.cols}", self.board.name,
                         *(f"{key}={value}" for key, value in self.options)])


def _boards(boards):
    if isinstance(boards, str | Board):
        boards = [boards] if isinstance(boards, Board) else boards.split(",")
    if not isinstance(boards, list | tuple):
        raise TypeError(f"boards must be a board, a name, a comma-separated string or a list "
                        f"of them, not {boards!r}")
    boards = [get_board(board.strip() if isinstance(board, str) else board)
              for board in boards]
    if not boards:
        raise ValueError("boards must name at least one board, not an empty list")
    for board in boards:
        if not board.supported:
            raise ValueError(f"board {board.name!r} cannot be built: {board.reason}")
    return list(dict.fromkeys(boards))


def _combinations(options):
    if options is None:
        return [()]
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict {{parameter: [values]}}, not {options!r}")
    names = {field.name for field in dataclasses.fields(ArrayConfig)}
    for key, values in options.items():
        if key in _SIZE_PARAMETERS:
            raise ValueError(f"option {key} is set by sizes, not by options")
        if key not in names:
            allowed = sorted(names - set(_SIZE_PARAMETERS))
            raise ValueError(f"option must be an ArrayConfig parameter "
                             f"({', '.join(allowed)}), not {key!r}")
        if isinstance(values, str) or not isinstance(values, list | tuple) or not values:
            raise TypeError(f"option {key} must have a non-empty list of values, "
                            f"not {values!r}")
    keys = list(options)
    return [tuple(zip(keys, values, strict=True))
            for values in itertools.product(*(options[key] for key in keys))]


def _slug(board, options):
    return "_".join([board.name, *(f"{key}-{value}" for key, value in options)])


def _plan(boards, sizes, base, options, out_dir):
    """Every build of the sweep, each configuration checked before anything is built."""
    jobs = []
    for board in boards:
        for combination in _combinations(options):
            for rows, cols in board.sweep_sizes if sizes is None else sizes:
                try:
                    config = base.replace(rows=rows, cols=cols, **dict(combination))
                except (TypeError, ValueError) as error:
                    given = ", ".join(f"{key}={value!r}" for key, value in combination)
                    where = f"option {given}" if given else "the base configuration"
                    raise type(error)(f"{where} at {rows}×{cols}: {error}") from None
                jobs.append(_Job(len(jobs), board, combination, config,
                                 out_dir / _slug(board, combination) / f"{rows}x{cols}"))
    return jobs


def _run_build(build_fn, job, tools, clock_mhz, dsp):
    """The task a Dask worker runs: one build, its failure caught and returned as data."""
    start = time.monotonic()
    try:
        report = build_fn(job.board, job.config, job.out_dir, tools=tools, clock_mhz=clock_mhz,
                          dsp=dsp, progress=None)
    except BuildError as error:
        return {"stage": error.stage, "error": str(error),
                "seconds": round(time.monotonic() - start, 1)}
    except Exception as error:  # any failure is one row's, not the sweep's
        return {"stage": None, "error": f"{type(error).__name__}: {error}",
                "seconds": round(time.monotonic() - start, 1)}
    return {"report": report}


def _row(job, status, report=None, note="", seconds=None):
    config = job.config
    row = {"board": job.board.name, "device": job.board.device,
           "options": " ".join(f"{key}={value}" for key, value in job.options),
           "rows": config.rows, "cols": config.cols, "pes": config.rows * config.cols,
           "status": status, "fits": status == BUILT, "board_clock_mhz": job.board.clock_mhz,
           "accumulator_bits": config.accumulator_bits, "seconds": seconds, "note": note}
    if report is not None:
        resources = report["resources"]
        row.update({
            "timing_pass": report["timing_pass"],
            "fmax_mhz": round(report["fmax_sync_mhz"], 1),
            # The clock timing is judged against: the board's, or a PLL's where the flow has one.
            "clock_mhz": report.get("sync_clock_mhz", job.board.clock_mhz),
            "peak_gmacs": report["peak_gmacs"],
            "pe_multipliers_in_dsp": report["dsp"]["pe_multipliers_in_dsp"],
            "seconds": report["seconds"],
        })
        for kind in ("logic", "ff", "dsp", "bram"):
            entry = resources.get(kind, {"used": 0, "available": 0})
            row[f"{kind}_used"], row[f"{kind}_available"] = entry["used"], entry["available"]
    return row


def _outcome_row(job, outcome):
    if "report" in outcome:
        return _row(job, BUILT, outcome["report"])
    lines = outcome["error"].strip().splitlines()
    status = NO_FIT if outcome["stage"] == _FIT_STAGE else FAILED
    # The tool's own error line says why (nextpnr: "ERROR: Unable to place cell ..."); the
    # last line of its log is often only a count of errors.
    errors = [line for line in lines if line.startswith(_ERROR_PREFIX)]
    detail = (errors or lines or [""])[-1]
    where = f" in {outcome['stage']}" if status == FAILED and outcome["stage"] else ""
    return _row(job, status, note=f"{status}{where}: {detail}"[:_NOTE_CHARS],
                seconds=outcome["seconds"])


def _percent(row, kind):
    available = row[f"{kind}_available"]
    return 100 * row[f"{kind}_used"] / available if available else None


def _summary(row):
    """One progress line's worth of a finished row."""
    if row["status"] != BUILT:
        return f"{row['note']} ({row['seconds']} s)" if row["seconds"] is not None \
            else row["note"]
    verdict = "" if row["timing_pass"] else f" (below the {row['clock_mhz']:g} MHz clock)"
    return (f"{row['fmax_mhz']:.1f} MHz{verdict}, {row['logic_used']} logic "
            f"({_percent(row, 'logic'):.0f} %), {row['dsp_used']} DSP, {row['seconds']:.0f} s")


@contextlib.contextmanager
def _dask_client(workers, scheduler, client):
    """The client to submit to: the caller's, one on ``scheduler``, or a LocalCluster's."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            connection = Client(scheduler)
        except (OSError, TimeoutError) as error:
            raise ConnectionError(f"scheduler {scheduler!r} did not answer: {error}") from None
        with connection:
            yield connection
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as local:
        local.wait_for_workers(workers)
        yield local


def _run_on(client, pending, arguments, build_fn):
    """Yield (job, outcome) as builds finish, keeping one build per worker thread busy.

    Jobs are taken from the front of the list ``pending`` no more at a time than the cluster
    has threads, so the caller may still remove jobs from it between two results (those are
    never sent). The thread count is asked again after every build, so workers that join a
    running cluster get work.
    """
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    running = {}
    finished = as_completed()

    def submit():
        slots = max(sum(client.nthreads().values()), 1) - len(running)
        while slots > 0 and pending:
            job = pending.pop(0)
            future = client.submit(_run_build, build_fn, job, *arguments, pure=False,
                                   key=f"qmac-build-{job.label}-{token}")
            running[future] = job
            finished.add(future)
            slots -= 1

    submit()
    for future in finished:
        job = running.pop(future)
        try:
            outcome = future.result()
        except Exception as error:  # the worker died or the task was lost
            outcome = {"stage": "cluster", "error": f"{type(error).__name__}: {error}",
                       "seconds": None}
        yield job, outcome
        submit()


def _check_cluster(workers, scheduler, client):
    given = [name for name, value in (("workers", workers), ("scheduler", scheduler),
                                      ("client", client)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of workers, scheduler and client, not "
                         f"{' and '.join(given)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, not {workers!r}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address such as 'tcp://host:8786', "
                        f"not {scheduler!r}")
    if workers is None and scheduler is None and client is None:
        from dask.system import CPU_COUNT

        workers = CPU_COUNT
    return workers


def sweep(boards, out_dir, *, sizes=None, base=None, options=None, tools="yowasp",
          clock_mhz=None, dsp="auto", keep_going=False, workers=None, scheduler=None,
          client=None, build_fn=build, progress=print):
    """Build every size × board × option combination on Dask; write tables and plots.

    Parameters
    ----------
    boards : str, Board or list
        A board, its name, ``"a,b"``, or a list of boards or names.
    out_dir : path
        Where the tables and plots go; each build in ``out_dir/BOARD[_KEY-VALUE...]/RxC``.
        On a cluster the builds land at that (absolute) path on the worker that ran them.
    sizes : sequence of (rows, cols), optional
        Default: each board's own list (:attr:`Board.sweep_sizes`).
    base : ArrayConfig, optional
        What every build is derived from (default int8, output-stationary, kmax 256).
    options : dict, optional
        ``{parameter: [values]}`` of :class:`ArrayConfig` parameters; the sweep builds every
        combination (see :func:`parse_options`). Every configuration is checked before any
        build starts, and an illegal one raises the error :class:`ArrayConfig` gives.
    tools, clock_mhz, dsp :
        As for :func:`boards.flow.build`.
    keep_going : bool
        Build every size. By default, once a size does not fit, the builds of larger sizes
        (at least as many rows and columns) of the same board and options that have not
        started are not built, and reported as skipped.
    workers : int, optional
        Worker processes of the LocalCluster, one thread each (default: the cores).
    scheduler : str, optional
        Address of a running Dask scheduler to submit to instead, e.g. ``"tcp://host:8786"``.
    client : distributed.Client, optional
        A client to submit to instead (it is not closed).
    build_fn : callable
        The build (default :func:`boards.flow.build`); it must be importable by the workers.
    progress : callable or None
        Called with one line per finished build.

    Returns
    -------
    dict
        ``rows`` (one per build, in the order boards × options × sizes, whatever the order
        they finished in), ``largest`` (per board and options, the largest array that fits
        and meets the board clock), ``files`` (the paths written) and the sweep's parameters.
    """
    boards = _boards(boards)
    base = base if base is not None else ArrayConfig()
    if not isinstance(base, ArrayConfig):
        raise TypeError(f"base must be an ArrayConfig, not {base!r}")
    if tools not in TOOLS:
        raise ValueError(f"tools must be one of {', '.join(map(repr, TOOLS))}, not {tools!r}")
    for board in boards:
        _budget(dsp, board)
        board.make_platform(clock_mhz)          # checks clock_mhz
    if not callable(build_fn):
        raise TypeError(f"build_fn must be callable, not {build_fn!r}")
    workers = _check_cluster(workers, scheduler, client)
    out_dir = Path(out_dir).absolute()
    jobs = _plan(boards, None if sizes is None else tuple(sizes), base, options, out_dir)
    if progress is None:
        def progress(message):
            pass
    out_dir.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    rows = [None] * len(jobs)
    with _dask_client(workers, scheduler, client) as dask_client:
        address = dask_client.scheduler.address
        workers = len(dask_client.nthreads())
        progress(f"qmac sweep: {_count(len(jobs), 'build')} on {address} "
                 f"({_count(workers, 'worker')})")

        def report(job, row):
            rows[job.index] = row
            done = sum(row is not None for row in rows)
            progress(f"[{done}/{len(jobs)}] {job.label}: {_summary(row)}")

        # Smallest arrays first: they finish soonest, and tell whether larger ones can fit.
        pending = sorted(jobs, key=lambda job: (job.config.rows * job.config.cols, job.index))
        for job, outcome in _run_on(dask_client, pending, (tools, clock_mhz, dsp), build_fn):
            report(job, _outcome_row(job, outcome))
            if rows[job.index]["status"] == NO_FIT and not keep_going:
                for other in [other for other in pending if other.group == job.group
                              and other.config.rows >= job.config.rows
                              and other.config.cols >= job.config.cols]:
                    pending.remove(other)
                    report(other, _row(other, SKIPPED, note=f"skipped: {job.size} does not fit"))
    result = {
        "boards": [{"name": board.name, "device": board.device, "clock_mhz": board.clock_mhz}
                   for board in boards],
        "base": base.to_dict(), "options": {key: list(values)
                                            for key, values in (options or {}).items()},
        "constraint_mhz": clock_mhz, "rows": rows, "largest": _largest(rows),
        "scheduler": address, "seconds": round(time.monotonic() - start, 1),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "files": {kind: str(out_dir / name) for kind, name in OUTPUTS.items()},
    }
    _write_csv(result["files"]["csv"], rows)
    Path(result["files"]["markdown"]).write_text(sweep_table(result) + "\n")
    Path(result["files"]["json"]).write_text(json.dumps(result, indent=2) + "\n")
    plot_sweep(result, result["files"]["png"], svg=result["files"]["svg"])
    return result


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _largest(rows):
    """Per board and options, the largest array that fits and meets the board clock."""
    best = {}
    for row in rows:
        if row["fits"] and row["timing_pass"]:
            group = (row["board"], row["options"])
            if group not in best or (row["pes"], row["fmax_mhz"]) > (best[group]["pes"],
                                                                     best[group]["fmax_mhz"]):
                best[group] = row
    return list(best.values())


def _write_csv(path, rows):
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row[key] for key in COLUMNS})


def describe(result):
    """The sweep's configuration in words: operands, dataflow, kmax, other parameters set."""
    base = ArrayConfig.from_dict(result["base"])
    default = ArrayConfig()
    shown = ("rows", "cols", "act_bits", "weight_bits", "dataflow", "kmax", "name")
    others = [f"{key}={value}" for key, value in result["base"].items()
              if key not in shown and value != getattr(default, key)]
    text = (f"{base.act_bits}-bit activations × {base.weight_bits}-bit weights, "
            f"{base.dataflow.replace('_', '-')}, kmax {base.kmax}")
    if others:
        text += ", " + ", ".join(others)
    if result["options"]:
        text += "; swept: " + ", ".join(f"{key} ∈ {{{', '.join(map(str, values))}}}"
                                        for key, values in result["options"].items())
    if result["constraint_mhz"]:
        text += f"; constraint {result['constraint_mhz']:g} MHz"
    return text


def _cell(row, kind):
    used, available = row[f"{kind}_used"], row[f"{kind}_available"]
    return f"{used} / {available} ({100 * used / available:.0f} %)" if available else str(used)


def sweep_table(result):
    """The sweep as Markdown: one line per build, then the largest array of each board."""
    several_boards = len(result["boards"]) > 1
    lead = (["board"] if several_boards else []) + (["options"] if result["options"] else [])
    head = [*lead, "array", "PEs", "logic", "FF", "DSP", "BRAM", "Fmax (MHz)", "board clock",
            "peak GMAC/s", "build s"]
    align = ["---"] * len(lead) + ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---",
                                   "---:", "---:"]
    title = (result["boards"][0]["name"] + f" ({result['boards'][0]['device']})"
             if not several_boards else ", ".join(board["name"] for board in result["boards"]))
    lines = [f"### {title}: {describe(result)}", "", "| " + " | ".join(head) + " |",
             "| " + " | ".join(align) + " |"]
    for row in result["rows"]:
        cells = [row[key] for key in lead] + [f"{row['rows']}×{row['cols']}", str(row["pes"])]
        if row["fits"]:
            verdict = "pass" if row["timing_pass"] else "FAIL"
            cells += [_cell(row, "logic"), str(row["ff_used"]), _cell(row, "dsp"),
                      str(row["bram_used"]), f"{row['fmax_mhz']:.1f}",
                      f"{verdict} ({row['clock_mhz']:g} MHz)", f"{row['peak_gmacs']:.2f}",
                      f"{row['seconds']:.0f}"]
        else:
            cells += [row["note"].replace("|", "/"), "", "", "", "", "", "",
                      "" if row["seconds"] is None else f"{row['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    groups = list(dict.fromkeys((row["board"], row["options"]) for row in result["rows"]))
    largest = {(row["board"], row["options"]): row for row in result["largest"]}
    for group in groups:
        name = " ".join(part for part in group if part)
        row = largest.get(group)
        if row is None:
            lines.append(f"{name}: no size fits and meets the board clock.  ")
        else:
            lines.append(f"{name}: largest array that fits and meets its "
                         f"{row['clock_mhz']:g} MHz clock: "
                         f"**{row['rows']}×{row['cols']}** ({row['fmax_mhz']:.1f} MHz, "
                         f"{row['peak_gmacs']:.2f} GMAC/s peak).  ")
    lines[-1] = lines[-1].rstrip()
    return "\n".join(lines)


#: Plot style: one colour per resource, one per option combination in the Fmax panel.
_RESOURCE_STYLE = {"logic": ("logic", "tab:blue", "o"), "ff": ("FF", "tab:orange", "s"),
                   "dsp": ("DSP", "tab:green", "^"), "bram": ("BRAM", "tab:purple", "D")}
_COMBINATION_LINES = ("-", "--", ":", "-.")
_FAILED_STYLE = {NO_FIT: ("does not fit", "tab:red"), FAILED: ("build failed", "black")}
#: A log-scaled PE axis once the largest array has this many times the PEs of the smallest.
_LOG_SPAN = 16
#: Room left and right of the smallest and largest array, as a fraction of the axis.
_X_MARGIN = 0.08
_PANEL_INCHES = (6.0, 3.9)
_DPI = 120


def _size_ticks(axis, rows):
    labels = {}
    for row in rows:
        labels.setdefault(row["pes"], []).append(f"{row['rows']}×{row['cols']}")
    pes = sorted(labels)
    if pes[-1] >= _LOG_SPAN * pes[0]:
        axis.set_xscale("log", base=2)
        axis.set_xlim(pes[0] / (1 + _X_MARGIN), pes[-1] * (1 + _X_MARGIN))
    else:
        margin = _X_MARGIN * max(pes[-1] - pes[0], 1)
        axis.set_xlim(pes[0] - margin, pes[-1] + margin)
    axis.set_xticks(pes, [f"{count}\n{'/'.join(dict.fromkeys(labels[count]))}"
                          for count in pes])
    axis.minorticks_off()
    axis.set_xlabel("processing elements (array rows × columns)")
    axis.grid(True, alpha=0.3)


def plot_sweep(result, path, *, svg=None):
    """Resources (% of the device) and Fmax against the array's PEs, one row per board.

    Writes a PNG to ``path`` (and an SVG to ``svg``) with matplotlib's Agg canvas. Each board
    has two panels: logic, FF, DSP and block RAM in % of the device, and Fmax with the board
    clock as a dashed line. Option combinations are told apart by line style (left) and colour
    (right); builds that do not fit or fail are marked on the top edge of the left panel. The
    legend of the resources, shared by every board, is under the figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    combinations = list(dict.fromkeys(row["options"] for row in result["rows"]))
    width, height = _PANEL_INCHES
    figure = Figure(figsize=(2 * width, height * len(result["boards"]) + 0.9),
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(result["boards"]), 2, squeeze=False)
    figure.suptitle(f"qmac sweep: {describe(result)}", fontsize="medium")
    legend = [Line2D([], [], color=color, marker=marker, label=name)
              for name, color, marker in _RESOURCE_STYLE.values()]
    if len(combinations) > 1:
        legend += [Line2D([], [], color="grey", linestyle=_line(number), label=combination)
                   for number, combination in enumerate(combinations)]
    for status, (name, color) in _FAILED_STYLE.items():
        if any(row["status"] == status for row in result["rows"]):
            legend.append(Line2D([], [], color=color, marker="x", linestyle="",
                                 markersize=10, markeredgewidth=2, label=name))
    for (usage, speed), board in zip(axes, result["boards"], strict=True):
        rows = [row for row in result["rows"] if row["board"] == board["name"]]
        for number, combination in enumerate(combinations):
            built = sorted((row for row in rows if row["options"] == combination and row["fits"]),
                           key=lambda row: row["pes"])
            pes = [row["pes"] for row in built]
            for kind, (_, color, marker) in _RESOURCE_STYLE.items():
                values = [_percent(row, kind) for row in built]
                if any(value is not None for value in values):
                    usage.plot(pes, values, _line(number), color=color, marker=marker)
            speed.plot(pes, [row["fmax_mhz"] for row in built], _line(number), marker="o",
                       color=f"C{number}",
                       label="Fmax" + (f" ({combination})" if combination else ""))
        for status, (_, color) in _FAILED_STYLE.items():
            marks = [row["pes"] for row in rows if row["status"] == status]
            if marks:
                usage.plot(marks, [100] * len(marks), "x", color=color, markersize=10,
                           markeredgewidth=2, clip_on=False)
        usage.set_ylim(0, 105)
        usage.set_ylabel("share of the device (%)")
        usage.set_title(f"{board['name']} ({board['device']}): resources")
        clock = board["clock_mhz"]
        speed.axhline(clock, color="tab:red", linestyle="--", label=f"board clock {clock:g} MHz")
        if result["constraint_mhz"] and result["constraint_mhz"] != clock:
            speed.axhline(result["constraint_mhz"], color="grey", linestyle=":",
                          label=f"constraint {result['constraint_mhz']:g} MHz")
        top = max([clock, result["constraint_mhz"] or 0,
                   *(row["fmax_mhz"] for row in rows if row["fits"])])
        speed.set_ylim(0, 1.2 * top)
        speed.set_ylabel("Fmax (MHz)")
        speed.set_title(f"{board['name']}: Fmax after place and route")
        speed.legend(fontsize="small", loc="lower left")
        for axis in (usage, speed):
            _size_ticks(axis, rows)
    figure.legend(handles=legend, loc="outside lower center", ncols=min(len(legend), 8),
                  fontsize="small")
    figure.savefig(path, dpi=_DPI)
    if svg is not None:
        figure.savefig(svg)
    return Path(path)


def _line(number):
    """The line style of the ``number``-th option combination."""
    return _COMBINATION_LINES[number % len(_COMBINATION_LINES)]
