"""``qmac sweep`` on a real Dask LocalCluster, with a fake build so no place-and-route runs.

The fake build (:func:`fake_build`) is a module-level function the worker processes import.
It derives a report from the configuration alone (so the expected table is computed here,
independently of the sweep), writes a marker file per build (so a test can tell whether any
build ran), and sleeps and fails on demand per size (so completion order and failures are
under the test's control).
"""

import csv
import dataclasses
import json
import time
from pathlib import Path

import pytest

from boards.flow import BuildError
from boards.registry import get_board
from boards.sweep import COLUMNS, parse_options, parse_sizes, sweep, sweep_table
from hw.config import ArrayConfig

WORKERS = 2
#: Logic cells the fake build charges per PE and per requantizer (fake, but independent).
FAKE_LOGIC_PER_PE, FAKE_LOGIC_FIXED = 300, 900
FAKE_FMAX_MHZ = 20.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_report(board, config):
    """What the fake build reports for ``config`` on ``board``."""
    board = get_board(board)
    pes = config.rows * config.cols
    fmax = FAKE_FMAX_MHZ - pes / 2 + (1.0 if config.rounding == "single" else 0.0)
    return {
        "resources": {
            "logic": {"used": FAKE_LOGIC_FIXED + FAKE_LOGIC_PER_PE * pes, "available": 5280},
            "ff": {"used": 100 * pes, "available": 5280},
            "dsp": {"used": min(pes, 8), "available": 8},
            "bram": {"used": 1, "available": 30},
        },
        "timing_pass": fmax >= board.clock_mhz, "fmax_sync_mhz": fmax,
        "peak_gmacs": round(pes * fmax / 1000, 3), "dsp": {"pe_multipliers_in_dsp": 0},
        "seconds": 1.0,
    }


def fake_build(board, config, out_dir, *, tools, clock_mhz, dsp, progress):
    """Sleep and fail as ``plan.json`` in the sweep folder says for this size; else report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "started").write_text(str(time.time()))
    plan = json.loads((out_dir.parent.parent / "plan.json").read_text())
    size = f"{config.rows}x{config.cols}"
    time.sleep(plan.get("sleep", {}).get(size, 0.0))
    failure = plan.get("fail", {}).get(size)
    if failure == "fit":
        raise BuildError("place and route failed (nextpnr exited with 1)\n"
                         "ERROR: Unable to place cell\n0 warnings, 1 error",
                         stage="place and route")
    if failure == "crash":
        raise RuntimeError("the fake tool crashed")
    return fake_report(board, config)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(WORKERS)
        yield client


def plan(tmp_path, **plan):
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    return tmp_path


def started(tmp_path):
    return sorted(path.parent.name for path in tmp_path.glob("*/*/started"))


class Log:
    """A progress callback that keeps each line with the time it arrived."""

    def __init__(self):
        self.lines, self.times = [], []

    def __call__(self, line):
        self.lines.append(line)
        self.times.append(time.monotonic())

    def finished(self):
        return [line for line in self.lines if line.startswith("[")]


def test_results_arrive_as_they_finish_and_the_table_keeps_its_order(tmp_path, client):
    sizes = ((1, 1), (1, 2), (2, 2))
    plan(tmp_path, sleep={"1x1": 3.0, "1x2": 0.2, "2x2": 0.2})
    log = Log()
    result = sweep("icebreaker", tmp_path, sizes=sizes, client=client, build_fn=fake_build,
                   progress=log)
    finished = log.finished()
    # 1×1 was submitted first but sleeps longest: the other worker's two builds come first,
    # each reported as it arrives, well before the slow one finishes.
    assert [line.split(":")[0] for line in finished] == [
        "[1/3] 1x2 icebreaker", "[2/3] 2x2 icebreaker", "[3/3] 1x1 icebreaker"]
    first, last = (log.times[log.lines.index(line)] for line in (finished[0], finished[-1]))
    assert last - first > 1.5
    assert "[1/3] 1x2 icebreaker: 19.0 MHz, 1500 logic (28 %), 2 DSP, 1 s" in finished
    # The table is in the order asked for, with the fake build's numbers.
    assert [(row["rows"], row["cols"]) for row in result["rows"]] == list(sizes)
    for (rows, cols), row in zip(sizes, result["rows"], strict=True):
        expected = fake_report("icebreaker", ArrayConfig(rows=rows, cols=cols))
        assert row["status"] == "built" and row["fits"]
        assert row["fmax_mhz"] == pytest.approx(expected["fmax_sync_mhz"])
        assert row["logic_used"] == expected["resources"]["logic"]["used"]
        assert row["dsp_used"] == expected["resources"]["dsp"]["used"]
    assert (result["largest"][0]["rows"], result["largest"][0]["cols"]) == (2, 2)


def test_files_are_written_and_name_every_build(tmp_path, client):
    plan(tmp_path)
    result = sweep("icebreaker", tmp_path, sizes=((1, 1), (2, 2)), client=client,
                   build_fn=fake_build, progress=None)
    files = {kind: Path(path) for kind, path in result["files"].items()}
    assert set(files) == {"csv", "markdown", "json", "png", "svg"}
    png = files["png"].read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    assert files["svg"].read_text().lstrip().startswith("<?xml")
    with open(files["csv"]) as file:
        table = list(csv.DictReader(file))
    assert tuple(table[0]) == COLUMNS
    assert [(line["rows"], line["cols"], line["status"]) for line in table] == [
        ("1", "1", "built"), ("2", "2", "built")]
    markdown = files["markdown"].read_text()
    assert markdown == sweep_table(result) + "\n"
    assert "| 2×2 | 4 | 2100 / 5280 (40 %) |" in markdown
    assert json.loads(files["json"].read_text())["rows"] == result["rows"]


def test_a_failed_build_is_reported_in_its_row_and_the_rest_kept(tmp_path, client):
    plan(tmp_path, fail={"1x2": "crash", "2x2": "fit"})
    log = Log()
    result = sweep("icebreaker", tmp_path, sizes=((1, 1), (1, 2), (2, 2), (3, 3)),
                   client=client, build_fn=fake_build, keep_going=True, progress=log)
    statuses = [(row["rows"], row["cols"], row["status"]) for row in result["rows"]]
    assert statuses == [(1, 1, "built"), (1, 2, "failed"), (2, 2, "does not fit"),
                        (3, 3, "built")]
    crashed = result["rows"][1]
    assert "RuntimeError: the fake tool crashed" in crashed["note"]
    # The tool's ERROR line, not the count of errors after it.
    assert result["rows"][2]["note"] == "does not fit: ERROR: Unable to place cell"
    assert result["rows"][3]["fmax_mhz"] == pytest.approx(FAKE_FMAX_MHZ - 9 / 2)
    assert len(log.finished()) == 4
    table = sweep_table(result)
    assert "| 1×2 | 2 | failed: RuntimeError: the fake tool crashed |" in table


def test_larger_sizes_are_skipped_after_one_does_not_fit(tmp_path, client):
    # One worker is busy with 1×1 for two seconds; the other finds 1×2 too big at once. No
    # build of at least 1 row and 2 columns has started yet: none of them is built.
    plan(tmp_path, sleep={"1x1": 2.0}, fail={"1x2": "fit"})
    result = sweep("icebreaker", tmp_path, sizes=((1, 1), (1, 2), (2, 2), (3, 3), (3, 1)),
                   client=client, build_fn=fake_build, progress=None)
    status = {(row["rows"], row["cols"]): (row["status"], row["note"])
              for row in result["rows"]}
    assert status[1, 2][0] == "does not fit"
    assert status[2, 2] == status[3, 3] == ("skipped", "skipped: 1×2 does not fit")
    # 3×1 has fewer columns than 1×2: it may fit, so it is built.
    assert status[1, 1][0] == status[3, 1][0] == "built"
    assert started(tmp_path) == ["1x1", "1x2", "3x1"]
    # With keep_going every size is tried.
    result = sweep("icebreaker", tmp_path, sizes=((1, 2), (2, 2)), client=client,
                   build_fn=fake_build, progress=None, keep_going=True)
    assert [row["status"] for row in result["rows"]] == ["does not fit", "built"]


def test_boards_times_options_in_order(tmp_path, client):
    plan(tmp_path)
    result = sweep("icebreaker,ulx3s-85f", tmp_path, sizes=((1, 1), (2, 2)),
                   options=parse_options(["rounding=double,single"]), client=client,
                   build_fn=fake_build, progress=None)
    keys = [(row["board"], row["options"], row["rows"]) for row in result["rows"]]
    assert keys == [(board, f"rounding={rounding}", size)
                    for board in ("icebreaker", "ulx3s-85f")
                    for rounding in ("double", "single") for size in (1, 2)]
    single = [row for row in result["rows"] if row["options"] == "rounding=single"]
    assert all(row["fmax_mhz"] == pytest.approx(FAKE_FMAX_MHZ + 1 - row["pes"] / 2)
               for row in single)
    # The fake Fmax (at most 21 MHz) meets the iCEBreaker's 12 MHz, not the ULX3S's 25 MHz.
    assert [(row["board"], row["options"], row["pes"]) for row in result["largest"]] == [
        ("icebreaker", "rounding=double", 4), ("icebreaker", "rounding=single", 4)]
    assert "ulx3s-85f rounding=single: no size fits and meets the board clock" in \
        sweep_table(result)
    assert (tmp_path / "ulx3s-85f_rounding-single" / "2x2" / "started").exists()


@pytest.mark.parametrize("options,error,message", [
    (["requant_lanes_typo=1,2"], ValueError, "option must be an ArrayConfig parameter"),
    (["rows=1,2"], ValueError, "option rows is set by sizes"),
    (["rounding=double,sideways"], ValueError, "rounding must be one of .*, not 'sideways'"),
    (["kmax=64,abc"], TypeError, "kmax must be an integer, not 'abc'"),
    (["act_bits=8,17"], ValueError, r"act_bits must be in \[2, 16\], not 17"),
])
def test_bad_options_are_rejected_before_any_build(tmp_path, client, options, error,
                                                   message):
    plan(tmp_path)
    with pytest.raises(error, match=message):
        sweep("icebreaker", tmp_path, sizes=((1, 1), (2, 2)), options=parse_options(options),
              client=client, build_fn=fake_build, progress=None)
    assert started(tmp_path) == []


@pytest.mark.parametrize("kwargs,error,message", [
    ({"boards": "nosuchboard"}, ValueError, "board must be one of"),
    ({"boards": dataclasses.replace(get_board("icebreaker"), supported=False,
                                    reason="no tools")}, ValueError, "cannot be built: no tools"),
    ({"tools": "magic"}, ValueError, "tools must be one of"),
    ({"dsp": 9}, ValueError, r"dsp must be in \[0, 8\] on icebreaker, not 9"),
    ({"clock_mhz": 5000}, ValueError, r"clock_mhz must be in \[1, 1000\], not 5000"),
    ({"workers": 0, "client": None}, ValueError, "workers must be an integer >= 1, not 0"),
    ({"workers": 2}, ValueError, "at most one of workers, scheduler and client"),
    ({"base": {"rows": 2}}, TypeError, "base must be an ArrayConfig"),
    ({"options": {"rounding": "single"}}, TypeError, "must have a non-empty list of values"),
])
def test_bad_arguments_are_rejected_before_any_build(tmp_path, client, kwargs, error,
                                                     message):
    plan(tmp_path)
    arguments = {"boards": "icebreaker", "client": client, **kwargs}
    with pytest.raises(error, match=message):
        sweep(arguments.pop("boards"), tmp_path, sizes=((1, 1),), build_fn=fake_build,
              progress=None, **arguments)
    assert started(tmp_path) == []


@pytest.mark.parametrize("items,message", [
    (["rounding"], "option must look like key=value1,value2, not 'rounding'"),
    (["rounding="], "option must look like"),
    (["kmax=64", "kmax=128"], "option kmax is given twice"),
])
def test_parse_options_errors(items, message):
    with pytest.raises(ValueError, match=message):
        parse_options(items)


def test_parse_options_reads_values_as_toml():
    assert parse_options(["kmax=64, 256", "per_channel=true,false", "rounding=single"]) == {
        "kmax": (64, 256), "per_channel": (True, False), "rounding": ("single",)}
    assert parse_sizes("1x2, 3") == ((1, 2), (3, 3))


def test_cli_rejects_a_bad_option_before_any_build(tmp_path, capsys):
    from boards.cli import main

    status = main(["sweep", "--board", "icebreaker", "--sizes", "1x1",
                   "--option", "rounding=sideways", "--workers", "1", "-o", str(tmp_path)])
    assert status == 2
    assert "rounding must be one of" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_sweep_starts_its_own_local_cluster(tmp_path):
    """Without a client: a LocalCluster of ``workers`` processes, closed afterwards."""
    plan(tmp_path)
    log = Log()
    result = sweep("icebreaker", tmp_path, sizes=((1, 1), (1, 2)), workers=WORKERS,
                   build_fn=fake_build, progress=log)
    assert f"({WORKERS} workers)" in log.lines[0]
    assert [row["status"] for row in result["rows"]] == ["built", "built"]


def test_sweep_submits_to_a_scheduler_address(tmp_path, client):
    plan(tmp_path)
    log = Log()
    result = sweep("icebreaker", tmp_path, sizes=((1, 1),), scheduler=client.scheduler.address,
                   build_fn=fake_build, progress=log)
    assert client.scheduler.address in log.lines[0]
    assert result["scheduler"] == client.scheduler.address
    assert result["rows"][0]["status"] == "built"


def test_a_scheduler_that_does_not_answer(tmp_path):
    dask = pytest.importorskip("dask")
    plan(tmp_path)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(ConnectionError, match="scheduler 'tcp://127.0.0.1:9' did not answer"):
        sweep("icebreaker", tmp_path, sizes=((1, 1),), scheduler="tcp://127.0.0.1:9",
              build_fn=fake_build, progress=None)


@pytest.mark.slow
def test_real_tiny_sweep_on_icebreaker(tmp_path, client):
    """Place and route of 1×1 and 2×2 for the iCE40UP5K, two builds at once.

    The rows must say what each build's own report.json says; 1×1 must fit, 2×2 may not (it
    fills most of the UP5K), but then nextpnr must have said so.
    """
    result = sweep("icebreaker", tmp_path, sizes=((1, 1), (2, 2)), client=client,
                   base=ArrayConfig(kmax=16), progress=None)
    assert result["rows"][0]["status"] == "built", result["rows"][0]["note"]
    assert result["rows"][1]["status"] in ("built", "does not fit"), result["rows"][1]["note"]
    for row in result["rows"]:
        folder = tmp_path / "icebreaker" / f"{row['rows']}x{row['cols']}"
        if row["status"] != "built":
            assert (folder / "nextpnr-ice40.log").exists()
            continue
        report = json.loads((folder / "report.json").read_text())
        assert row["fmax_mhz"] == pytest.approx(report["fmax_sync_mhz"], abs=0.05)
        for kind in ("logic", "dsp", "bram"):
            assert row[f"{kind}_used"] == report["resources"][kind]["used"]
        assert 0 < row["logic_used"] <= row["logic_available"]
    assert Path(result["files"]["png"]).read_bytes().startswith(PNG_MAGIC)
