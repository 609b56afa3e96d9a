"""Fuzzed bad input for ``qmac run``, ``generate``, ``quant-multiplier`` and ``build``.

Hypothesis builds inputs that are wrong in exactly one way (a missing or unknown npz key, a
dtype, a shape, a value out of range, a corrupt file, a TOML error, an option out of range)
and every one must get: exit status 2, one line on stderr, nothing on stdout, no traceback,
and no file or folder left behind. ``main`` runs in-process; ``build`` never reaches a tool
(the flow's tool lookup fails the test if it is called).
"""

import contextlib
import io
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden.tflite import INT32_MAX, INT32_MIN
from hw.config import ArrayConfig
from qmac.cli import RUN_INPUTS, main

BAD_INPUT = 2
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ARRAY = ArrayConfig(rows=2, cols=2)          # the array of every fuzzed `qmac run`
(X_LO, X_HI), (W_LO, W_HI) = ARRAY.act_zero_point_range, ARRAY.weight_zero_point_range
OUT_LO, OUT_HI = ARRAY.out_range
SHIFT_LO, SHIFT_HI = ARRAY.shift_range
B, K, N = 2, 3, 2


def refused(argv, directory):
    """``qmac argv`` is refused cleanly and ``directory`` is as it was."""
    before = sorted(directory.rglob("*"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in argv])
    out, err = out.getvalue(), err.getvalue()
    assert code == BAD_INPUT, (argv, code, out, err)
    assert len(err.splitlines()) == 1 and err.endswith("\n"), (argv, err)
    assert "Traceback" not in err and out == "", (argv, out, err)
    assert sorted(directory.rglob("*")) == before, argv
    return err


def _valid_layer():
    rng = np.random.default_rng(0)
    return dict(x=rng.integers(X_LO, X_HI + 1, (B, K)), w=rng.integers(W_LO, W_HI + 1, (N, K)),
                bias=np.zeros(N, np.int64), multiplier=np.int64(1 << 30),
                shift=np.int64(-8))


def _outside(lo, hi):
    """Integers (int64) just or far outside [lo, hi]."""
    return st.one_of(st.integers(hi + 1, hi + (1 << 40)), st.integers(lo - (1 << 40), lo - 1))


SCALARS = ("input_zero_point", "output_zero_point", "act_min", "act_max")

# One wrong thing each: (name, value) to set in, or remove from, a valid layer.
MUTATIONS = st.one_of(
    st.sampled_from([("drop", name) for name, required in RUN_INPUTS.items() if required]),
    st.from_regex(r"[a-z_]{1,8}", fullmatch=True).filter(lambda s: s not in RUN_INPUTS)
    .map(lambda name: (name, np.int64(1))),
    # dtypes: floats, bools, complex, strings for any input
    st.tuples(st.sampled_from(list(RUN_INPUTS)),
              st.sampled_from([np.float64, np.float32, np.bool_, np.complex128, np.str_]))
    .map(lambda nt: (nt[0], ("dtype", nt[1]))),
    # shapes
    st.tuples(st.just("x"), st.sampled_from([(), (B,), (B, K, 1), (0, K), (B, 0), (B, K + 1)])),
    st.tuples(st.just("w"), st.sampled_from([(), (N,), (N, K, 1), (0, K), (N, K + 2)])),
    st.tuples(st.sampled_from(["bias", "multiplier", "shift"]),
              st.sampled_from([(N + 1,), (N, 1), (1, N), (3 * N,)])),
    st.tuples(st.just("bias"), st.just(())),
    st.tuples(st.sampled_from([*SCALARS, "weight_zero_point"]), st.sampled_from([(2,), (1, 1)])),
    # values out of range
    st.tuples(st.just("x"), _outside(X_LO, X_HI)),
    st.tuples(st.just("w"), _outside(W_LO, W_HI)),
    st.tuples(st.just("bias"), _outside(INT32_MIN, INT32_MAX)),
    st.tuples(st.just("multiplier"), _outside(0, INT32_MAX)),
    st.tuples(st.just("shift"), _outside(SHIFT_LO, SHIFT_HI)),
    st.tuples(st.sampled_from(["output_zero_point", "act_min", "act_max"]),
              _outside(OUT_LO, OUT_HI)),
    st.tuples(st.just("input_zero_point"), _outside(X_LO, X_HI)),
    st.tuples(st.just("weight_zero_point"), st.integers(-5, 5).filter(bool)),
    st.tuples(st.just("x"), st.just(np.uint64(1 << 63) + np.uint64(5))),
    st.tuples(st.just("act_min"), st.just(OUT_HI)).map(lambda _: ("clamp", None)),
)


def _mutated(mutation):
    values = _valid_layer()
    name, change = mutation
    if name == "drop":
        del values[change]
    elif name == "clamp":                       # act_min above act_max
        values.update(act_min=np.int64(OUT_HI), act_max=np.int64(OUT_LO))
    elif isinstance(change, tuple) and change and change[0] == "dtype":
        base = values.get(name, np.int64(0))
        values[name] = np.asarray(base).astype(change[1])
    elif isinstance(change, tuple):             # a shape
        values[name] = np.zeros(change, np.int64)
    elif isinstance(change, int) and name in ("x", "w", "bias", "multiplier", "shift"):
        array = np.array(values[name], dtype=object)
        array.flat[-1] = change
        values[name] = array.astype(np.int64)
    else:
        values[name] = np.asarray(change)
    return values


@FUZZ
@given(mutation=MUTATIONS)
def test_run_refuses_every_bad_npz(mutation):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        np.savez(directory / "in.npz", **_mutated(mutation))
        refused(["run", "--rows", 2, "--cols", 2, "--sim", "amaranth",
                 "--inputs", directory / "in.npz", "--out", directory / "out.npz"], directory)


def _valid_npz_bytes():
    buffer = io.BytesIO()
    np.savez(buffer, **_valid_layer())
    return buffer.getvalue()


CORRUPT = st.one_of(
    st.binary(max_size=300),
    st.integers(0, len(_valid_npz_bytes()) - 1).map(lambda n: _valid_npz_bytes()[:n]),
    st.binary(min_size=1, max_size=40).map(lambda junk: b"PK\x03\x04" + junk),
    st.binary(min_size=1, max_size=40).map(lambda junk: b"\x93NUMPY" + junk),
    # a valid archive with one byte changed inside its compressed or stored data
    st.tuples(st.integers(30, len(_valid_npz_bytes()) - 30), st.integers(1, 255)).map(
        lambda at: (lambda data: data[:at[0]] + bytes([data[at[0]] ^ at[1]]) +
                    data[at[0] + 1:])(_valid_npz_bytes())),
)


@FUZZ
@given(data=CORRUPT)
def test_run_refuses_corrupt_files(data):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        (directory / "in.npz").write_bytes(data)
        argv = ["run", "--rows", 2, "--cols", 2, "--sim", "amaranth",
                "--inputs", directory / "in.npz", "--out", directory / "out.npz"]
        try:
            refused(argv, directory)
        except AssertionError:
            # a flipped bit may land where numpy does not look (zip comments, padding) and
            # leave a valid layer: then the run must succeed and match.
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(arg) for arg in argv])
            assert code == 0 and "matches golden/" in out.getvalue(), err.getvalue()


# -- options and configuration files of `run` and `generate` ----------------------------------

def _bad_int_option():
    text = st.from_regex(r"[a-z.]{1,5}|1\.5|0x1", fullmatch=True)
    return st.one_of(
        st.tuples(st.just("--rows"), st.one_of(_outside(1, 256), text)),
        st.tuples(st.just("--cols"), st.one_of(_outside(1, 256), text)),
        st.tuples(st.just("--bits"), st.one_of(_outside(2, 16), text)),
        st.tuples(st.just("--weight-bits"), st.one_of(_outside(2, 8), text)),
        st.tuples(st.just("--kmax"), st.one_of(st.integers(-10, 0), st.just((1 << 20) + 1),
                                               st.integers(200_000, 1 << 20), text)),
        st.tuples(st.just("--dataflow"),
                  st.text(min_size=1, max_size=6).filter(
                      lambda s: s not in ("os", "ws") and not s.startswith("-"))),
    ).map(list)


BAD_TOML = st.one_of(
    st.text(max_size=40).map(lambda text: text + "\n= =\n"),          # a syntax error
    st.from_regex(r"[a-z_]{1,10}", fullmatch=True).filter(
        lambda key: key not in ArrayConfig().to_dict()).map(lambda key: f"{key} = 1\n"),
    st.sampled_from(["rows", "cols", "kmax", "act_bits"]).map(lambda key: f'{key} = "8"\n'),
    st.tuples(st.sampled_from(["rows", "cols"]), _outside(1, 256))
    .map(lambda kv: f"{kv[0]} = {kv[1]}\n"),
    st.just('rows = 8\ndataflow = "weight_stationary"\nkmax = 1024\n'),
    st.just('rounding = "sideways"\n'),
    st.binary(min_size=1, max_size=20).map(lambda b: b"\xff" + b),     # not UTF-8
)


@FUZZ
@given(option=_bad_int_option(), command=st.sampled_from(["run", "generate"]))
def test_bad_array_options_are_refused(option, command):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        np.savez(directory / "in.npz", **_valid_layer())
        argv = ([command, "-o", directory / "out"] if command == "generate" else
                [command, "--sim", "amaranth", "--inputs", directory / "in.npz",
                 "--out", directory / "out.npz"])
        refused([*argv, "--rows", 2, "--cols", 2, *option], directory)


@FUZZ
@given(text=BAD_TOML, command=st.sampled_from(["run", "generate"]))
def test_bad_config_files_are_refused_naming_the_file(text, command):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        config = directory / "array.toml"
        config.write_bytes(text if isinstance(text, bytes) else text.encode())
        np.savez(directory / "in.npz", **_valid_layer())
        argv = ([command, "-o", directory / "out"] if command == "generate" else
                [command, "--sim", "amaranth", "--inputs", directory / "in.npz",
                 "--out", directory / "out.npz"])
        assert str(config) in refused([*argv, "--config", config], directory)


@FUZZ
@given(stall=st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=0.90000001),
                       st.just(float("nan"))),
       out=st.sampled_from(["dir", "out.txt", "missing/out.npz"]))
def test_run_refuses_bad_stalls_and_outputs(stall, out):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        np.savez(directory / "in.npz", **_valid_layer())
        (directory / "dir").mkdir()
        base = ["run", "--rows", 2, "--cols", 2, "--sim", "amaranth",
                "--inputs", directory / "in.npz"]
        refused([*base, "--out", directory / "out.npz", f"--stall={stall!r}"], directory)
        refused([*base, "--out", directory / out], directory)


# -- quant-multiplier -------------------------------------------------------------------------

@FUZZ
@given(max_left_shift=st.integers(0, 30), data=st.data())
def test_quant_multiplier_refuses_what_no_array_holds(max_left_shift, data):
    real = data.draw(st.one_of(
        st.floats(max_value=-1e-300),                         # negative
        st.floats(min_value=1e-300, max_value=2.0 ** -33),    # flushes to M0 = 0
        st.floats(min_value=2.0 ** max_left_shift),           # needs a larger left shift
        st.sampled_from([float("nan"), float("inf"), float("-inf")])))
    with tempfile.TemporaryDirectory() as directory:
        err = refused(["quant-multiplier", "--max-left-shift", max_left_shift, "--", repr(real)],
                      Path(directory))
        assert "real multiplier M must be 0 or in" in err


@FUZZ
@given(argv=st.one_of(
    _outside(INT32_MIN, INT32_MAX).map(lambda v: ["0.5", "--example", "1", v]),
    _outside(0, 30).map(lambda v: ["0.5", "--max-left-shift", v]),
    st.from_regex(r"[a-z]{1,6}|0\.5\.5|1e", fullmatch=True).map(lambda s: [s]),
    st.just([]),
))
def test_quant_multiplier_refuses_bad_options(argv):
    with tempfile.TemporaryDirectory() as directory:
        refused(["quant-multiplier", *argv], Path(directory))


# -- build: every refusal comes before any tool -----------------------------------------------

def _no_uart_boards():
    from boards.registry import BOARDS

    return [board.name for board in BOARDS.values()
            if board.supported and ("uart", 0) not in board.make_platform().resources]


BUILD_OPTIONS = st.one_of(
    st.text(min_size=1, max_size=8).filter(lambda s: not s.startswith("-"))
    .map(lambda name: ["--board", name + "?"]),
    st.one_of(st.floats(max_value=0.999), st.floats(min_value=1000.001),
              st.just(float("nan"))).map(lambda mhz: [f"--clock-mhz={mhz!r}"]),
    st.one_of(st.integers(-100, -1), st.integers(10_000, 20_000))
    .map(lambda dsp: [f"--dsp={dsp}"]),
    st.from_regex(r"[a-z]{1,6}", fullmatch=True).filter(lambda s: s not in ("bist", "uart"))
    .map(lambda link: ["--link", link]),
    st.just(["--engine"]),                                      # needs --link uart
    st.integers(-5, 0).map(lambda k: ["--engine", "--link", "uart", "--max-k", k]),
    _outside(1, 256).map(lambda rows: ["--rows", rows]),
    st.just(["-o", "FILE"]),
    st.just(["--board", "NO_UART", "--link", "uart"]),
)


@FUZZ
@given(options=BUILD_OPTIONS)
def test_build_refuses_bad_arguments_before_any_tool(options):
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        (directory / "file").write_text("")
        no_uart = _no_uart_boards()
        options = [directory / "file" if o == "FILE" else
                   (no_uart[0] if no_uart else "icebreaker?") if o == "NO_UART" else o
                   for o in options]
        argv = ["build", "--board", "icebreaker", "--rows", 2, "--cols", 2,
                "-o", directory / "build", *options]
        with mock.patch("boards.flow.tool_environment",
                        side_effect=AssertionError("a tool was about to run")):
            refused(argv, directory)
