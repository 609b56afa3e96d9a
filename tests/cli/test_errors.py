"""Every bad input found by trying the command line as a new user (issue 13) gets one clear
line on stderr, exit status 2, no traceback and nothing left on disk; the good neighbours of
each case still work, and what they print is checked against golden/."""

import re
import time
from pathlib import Path

import numpy as np
import pytest

from golden.layers import fully_connected
from golden.tflite import quantize_multiplier
from hw.config import ArrayConfig
from hw.engine import EngineConfig
from qmac.cli import main

README = Path(__file__).parents[2] / "README.md"
BAD_INPUT = 2


def refused(capsys, argv, *fragments):
    """Run ``qmac argv`` in-process: exit status 2, one line on stderr with every fragment,
    nothing on stdout."""
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == BAD_INPUT, (code, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert out == "", out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def layer(rng, b=3, k=5, n=4, **changes):
    values = dict(x=rng.integers(-128, 128, (b, k)), w=rng.integers(-127, 128, (n, k)),
                  bias=rng.integers(-500, 500, n), multiplier=np.int64(1 << 30),
                  shift=np.int64(-6), output_zero_point=np.int64(3))
    values.update(changes)
    return values


def expected(values):
    """golden/'s y for the arrays of an in.npz (defaults as documented for ``qmac run``)."""
    n = len(values["w"])
    return fully_connected(
        values["x"], values["w"], values.get("bias"),
        input_zero_point=int(values.get("input_zero_point", 0)), weight_zero_point=0,
        output_zero_point=int(values.get("output_zero_point", 0)),
        multiplier=np.broadcast_to(values["multiplier"], (n,)),
        shift=np.broadcast_to(values["shift"], (n,)),
        act_min=int(values.get("act_min", -128)), act_max=int(values.get("act_max", 127)))


@pytest.fixture
def run_files(tmp_path):
    """(write in.npz from a dict, argv of ``qmac run`` on a 2×2 engine in Amaranth)."""
    def write(values, name="in.npz"):
        np.savez(tmp_path / name, **values)
        return tmp_path / name

    def argv(inputs, *extra):
        return ["run", "--rows", 2, "--cols", 2, "--sim", "amaranth", "--inputs", inputs,
                "--out", tmp_path / "out.npz", *extra]
    return write, argv


def _nothing_written(tmp_path):
    assert not (tmp_path / "out.npz").exists()


# -- qmac run ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stall", ["2", "-1", "nan", "1", "0.95"])
def test_run_refuses_a_stall_outside_its_range_at_once(capsys, tmp_path, run_files, stall):
    write, argv = run_files
    start = time.monotonic()
    refused(capsys, argv(write(layer(np.random.default_rng(0))), "--stall", stall),
            "stall must be in [0, 0.9]", f"not {float(stall)}")
    assert time.monotonic() - start < 10   # was: --stall 2 ran for over 9 minutes
    _nothing_written(tmp_path)


def test_run_with_stalls_within_range_matches_golden(capsys, tmp_path, run_files):
    write, argv = run_files
    values = layer(np.random.default_rng(1))
    assert main([str(a) for a in argv(write(values), "--stall", "0.9")]) == 0
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["y"], expected(values))


def test_per_channel_multiplier_of_the_wrong_length_is_named(capsys, tmp_path, run_files):
    write, argv = run_files
    values = layer(np.random.default_rng(2), n=8, multiplier=np.full(3, 1 << 30))
    refused(capsys, argv(write(values)), "multiplier", "(8,)", "(3,)")
    _nothing_written(tmp_path)


def test_an_empty_batch_is_reported_as_rows_of_x(capsys, tmp_path, run_files):
    write, argv = run_files
    refused(capsys, argv(write(layer(np.random.default_rng(3), b=0))),
            "M (rows of x) must be in [1, ", "not 0")


def _limit(array, name):
    """The largest value of EngineConfig's ``name`` parameter, found by asking it."""
    value = 1
    while True:
        try:
            EngineConfig(array, **{name: value * 2})
        except ValueError:
            break
        value *= 2
    return value


def test_n_beyond_64_runs_and_the_real_limit_is_reported(capsys, tmp_path, run_files):
    write, argv = run_files
    values = layer(np.random.default_rng(4), b=2, k=3, n=65)
    assert main([str(a) for a in argv(write(values))]) == 0
    assert "65 GEMM" in capsys.readouterr().out
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["y"], expected(values))
    # the largest N an engine holds is the channel table's: EngineConfig's max_n bound
    limit = _limit(ArrayConfig(rows=2, cols=2), "max_n")
    values = layer(np.random.default_rng(4), b=1, k=1, n=limit + 1)
    refused(capsys, argv(write(values)), f"N (rows of w) must be in [1, {limit}]",
            f"not {limit + 1}")


def test_k_beyond_the_engine_reports_k_and_its_range(capsys, tmp_path, run_files):
    write, argv = run_files
    limit = _limit(ArrayConfig(rows=2, cols=2), "max_k")
    values = layer(np.random.default_rng(5), b=1, k=70000, n=1)
    line = refused(capsys, argv(write(values)), f"K (columns of x and w) must be in [1, {limit}]",
                   "not 70000")
    assert "max_k" not in line and "131072" not in line


def test_a_corrupt_npz_is_named_without_numpy_internals(capsys, tmp_path, run_files):
    _, argv = run_files
    corrupt = tmp_path / "in.npz"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(200)))
    line = refused(capsys, argv(corrupt), "--inputs", str(corrupt), ".npz")
    assert "pickle" not in line
    corrupt.write_bytes(b"not numpy at all")
    line = refused(capsys, argv(corrupt), "--inputs", str(corrupt), ".npz")
    assert "pickle" not in line


def test_a_single_npy_is_not_taken_for_an_npz(capsys, tmp_path, run_files):
    _, argv = run_files
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.int64))
    line = refused(capsys, argv(tmp_path / "x.npy"), "--inputs", "x.npy", "single array")
    assert "context manager" not in line


def test_float_operands_are_refused_not_truncated(capsys, tmp_path, run_files):
    write, argv = run_files
    values = layer(np.random.default_rng(6))
    values["x"] = values["x"] + 0.5
    refused(capsys, argv(write(values)), "x must hold integers", "float64")


# -- qmac quant-multiplier --------------------------------------------------------------------

@pytest.mark.parametrize("real,reason", [
    ("1e-12", "flushes to M0 = 0"), ("2.0", "needs shift 2"), ("-0.5", "not -0.5"),
    ("nan", "not nan"), ("inf", "not inf"),
])
def test_quant_multiplier_refuses_what_no_array_holds(capsys, real, reason):
    refused(capsys, ["quant-multiplier", "--max-left-shift", "0", "--", real],
            "real multiplier M must be 0 or in", "2^-32", "2^0 = 1", reason)


def test_quant_multiplier_default_array_takes_multipliers_below_128(capsys):
    """ArrayConfig's default max_left_shift (7) holds M < 2^7: M = 5 is taken (M0·2^(3−31)
    with M0 = 0.625·2^31), M = 128 needs shift 8 and is refused."""
    assert main(["quant-multiplier", "5.0"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^M0 += {5 << 28} ", out, re.M) and re.search(r"^shift += 3 ", out, re.M)
    refused(capsys, ["quant-multiplier", "--", "128.0"], "real multiplier M must be 0 or in",
            "2^7 = 128", "needs shift 8")


def test_quant_multiplier_prints_what_qmac_run_accepts(capsys, tmp_path, run_files):
    """A multiplier above 1 needs the array's max_left_shift; what quant-multiplier prints for
    it is what golden/ computes, and ``qmac run`` on such an array takes it."""
    assert main(["quant-multiplier", "2.0", "--max-left-shift", "2", "--example", "1000"]) == 0
    out = capsys.readouterr().out
    m0, shift = quantize_multiplier(2.0)
    assert re.search(rf"^M0 += {m0} ", out, re.M) and re.search(rf"^shift += {shift} ", out, re.M)
    assert "1000 × M            = 2000" in out
    write, argv = run_files
    (tmp_path / "array.toml").write_text("max_left_shift = 2\n")
    values = layer(np.random.default_rng(7), multiplier=np.int64(m0), shift=np.int64(shift),
                   x=np.random.default_rng(7).integers(-4, 5, (3, 5)),
                   w=np.random.default_rng(8).integers(-4, 5, (4, 5)),
                   bias=np.zeros(4, np.int64))
    assert main([str(a) for a in argv(write(values), "--config", tmp_path / "array.toml")]) == 0
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["y"], expected(values))


def test_quant_multiplier_refuses_examples_beyond_int32_before_printing(capsys):
    refused(capsys, ["quant-multiplier", "0.5", "--example", "1", str(1 << 31)],
            "--example must be in [-2147483648, 2147483647]", f"not {1 << 31}")


# -- configuration files and output paths -----------------------------------------------------

def _readme_toml():
    block = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    return block.group(1)


@pytest.fixture
def generated(monkeypatch):
    """Stands in for hw.generate.generate (Verilog of an 8×8 array takes seconds): records
    the configuration the command line built."""
    import hw.generate

    configs = []

    def generate(config, directory):
        configs.append(config)
        return {}
    monkeypatch.setattr(hw.generate, "generate", generate)
    return configs


def test_the_readme_toml_example_generates(capsys, tmp_path, generated):
    (tmp_path / "my_array.toml").write_text(_readme_toml())
    assert main(["generate", "--config", str(tmp_path / "my_array.toml"),
                 "-o", str(tmp_path / "out")]) == 0
    config, = generated
    assert (config.rows, config.cols, config.weight_bits, config.per_channel) == (8, 8, 4, True)
    assert config.weight_stationary and config.kmax == config.rows


@pytest.mark.parametrize("source", ["readme", "saved"])
def test_rows_on_the_command_line_take_no_stale_kmax(capsys, tmp_path, generated, source):
    """A weight-stationary file's kmax is its rows; ``--rows 2`` makes a 2-row array."""
    path = tmp_path / "array.toml"
    if source == "readme":
        path.write_text(_readme_toml())
    else:   # ArrayConfig.save writes kmax = rows
        ArrayConfig(rows=8, cols=8, dataflow="weight_stationary").save(path)
        assert "kmax = 8" in path.read_text()
    assert main(["generate", "--config", str(path), "--rows", "2", "-o",
                 str(tmp_path / "out")]) == 0
    config, = generated
    assert (config.rows, config.kmax, config.dataflow) == (2, 2, "weight_stationary")


def test_an_output_stationary_kmax_from_the_file_stays(capsys, tmp_path, generated):
    path = tmp_path / "array.toml"
    path.write_text("rows = 8\nkmax = 1024\n")
    assert main(["generate", "--config", str(path), "--rows", "2", "-o",
                 str(tmp_path / "out")]) == 0
    config, = generated
    assert (config.rows, config.kmax) == (2, 1024)


def test_a_kmax_the_file_sets_wrongly_is_refused_naming_the_file(capsys, tmp_path):
    path = tmp_path / "ws.toml"
    path.write_text('rows = 8\ndataflow = "weight_stationary"\nkmax = 1024\n')
    refused(capsys, ["generate", "--config", path, "-o", tmp_path / "out"],
            "kmax", "1024", "rows (8)", str(path))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["rows = \n", "rows = 8\nrows = 9\n", "[array\n", "\xff\xfe"])
def test_toml_syntax_errors_name_the_file(capsys, tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode("latin-1"))
    refused(capsys, ["generate", "--config", path, "-o", tmp_path / "out"],
            f"--config {path}", "TOML")
    assert not (tmp_path / "out").exists()


def test_a_missing_config_file_is_named(capsys, tmp_path):
    refused(capsys, ["generate", "--config", tmp_path / "none.toml", "-o", tmp_path / "out"],
            f"--config {tmp_path / 'none.toml'}", "No such file")


@pytest.mark.parametrize("target", ["afile", "afile/sub"])
def test_output_onto_a_file_is_refused_clearly(capsys, tmp_path, target):
    (tmp_path / "afile").write_text("keep me")
    line = refused(capsys, ["generate", "--rows", "2", "--cols", "2", "-o", tmp_path / target],
                   "-o must be a directory", target)
    assert "Errno" not in line
    assert (tmp_path / "afile").read_text() == "keep me"


def test_engine_sizes_without_engine_are_refused(capsys, tmp_path):
    refused(capsys, ["generate", "--rows", "2", "--max-k", "4", "-o", tmp_path / "out"],
            "--max-k", "--engine")
    assert not (tmp_path / "out").exists()


# -- qmac build: refused before the banner and before any folder ------------------------------

def _board_without_uart():
    from boards.registry import BOARDS

    for board in BOARDS.values():
        if board.supported and ("uart", 0) not in board.make_platform().resources:
            return board.name
    pytest.skip("every buildable board has a UART")


@pytest.fixture
def no_tools(monkeypatch):
    """Any attempt to run the flow fails the test: these inputs must be refused first."""
    import boards.flow

    def build(*args, **kwargs):
        raise AssertionError("the flow ran on bad input")
    monkeypatch.setattr(boards.flow, "build", build)


@pytest.mark.parametrize("options,fragments", [
    (["--clock-mhz", "0"], ["clock_mhz must be in [1, 1000]", "not 0"]),
    (["--clock-mhz", "-5"], ["clock_mhz must be in [1, 1000]", "not -5"]),
    (["--link", "foo"], ["--link", "'foo'", "bist", "uart"]),
    (["--dsp", "-1"], ["--dsp", "not -1"]),
    (["--rows", "0"], ["rows must be in [1, 256]", "not 0"]),
])
def test_build_refuses_bad_options_without_a_banner_or_folder(capsys, tmp_path, no_tools,
                                                              options, fragments):
    argv = ["build", "--board", "icebreaker", "--rows", "2", "--cols", "2", "-o",
            tmp_path / "build", *options]
    refused(capsys, argv, *fragments)
    assert not (tmp_path / "build").exists()


def test_build_refuses_a_uart_link_on_a_board_without_one(capsys, tmp_path, no_tools):
    board = _board_without_uart()
    refused(capsys, ["build", "--board", board, "--rows", "2", "--cols", "2", "--link", "uart",
                     "-o", tmp_path / "build"], "--link must be 'bist'", board)
    assert not (tmp_path / "build").exists()


def test_the_board_cli_reports_through_the_same_path(capsys, tmp_path, no_tools):
    from boards.cli import main as boards_main

    assert boards_main(["build", "--board", "icebreaker", "--rows", "2", "--cols", "2",
                        "--clock-mhz", "0", "-o", str(tmp_path / "b")]) == BAD_INPUT
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "clock_mhz" in err
    assert boards_main(["build", "--bogus"]) == BAD_INPUT
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_help_version_and_no_command(capsys):
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("qmac ")
    assert main(["run", "--help"]) == 0 and "--stall" in capsys.readouterr().out
    assert main([]) == BAD_INPUT and "COMMAND" in capsys.readouterr().err
    refused(capsys, ["frobnicate"], "invalid choice", "'frobnicate'")
    refused(capsys, ["run", "--rows", "x"], "--rows", "invalid int value: 'x'")
