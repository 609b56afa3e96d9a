"""sim.fast, the compiled Verilator harness: the same outputs AND cycle counts as the cocotb
bench on the same Verilog, stalls included, and outputs equal to golden/.

The references are independent of sim.fast: golden.layers.fully_connected for the outputs,
the cocotb bench (sim.tb_engine: Python drivers and sink, Python's random) for the cycles,
and Amaranth's own ``layout.const(...).as_bits()`` / ``data.Const`` for the payload packing.
The engines are test_engine's (same configurations, so the cocotb builds are shared).
"""

import dataclasses

import numpy as np
import pytest
from amaranth.lib import data

from golden.layers import fully_connected as golden_fully_connected
from hw.config import ArrayConfig
from hw.engine import EngineConfig, engine_layouts
from hw.host import LayerParams, engine_job
from sim import fast
from sim.gemm import gemm
from sim.streams import pack

ENGINES = {
    "os": EngineConfig(ArrayConfig(rows=3, cols=4, kmax=8, name="engine_3x4"), max_k=64,
                       max_n=16),
    "ws": EngineConfig(ArrayConfig(rows=3, cols=4, dataflow="ws", name="engine_ws_3x4"),
                       max_k=64, max_n=16, max_m=16),
}

# (M, K, N, stall, seed): ragged tiles, K over several passes / K tiles, heavy stalls
CASES = [(5, 20, 9, 0.0, 1), (7, 13, 6, 0.3, 2), (4, 30, 11, 0.7, 3)]


def _need_fast():
    if not fast.available():
        pytest.fail("Verilator or a C++ compiler is missing; .ci/run and `make` install them")


def _layer(rng, n):
    return dict(bias=rng.integers(-20000, 20000, n, dtype=np.int64),
                input_zero_point=int(rng.integers(-128, 128)),
                output_zero_point=int(rng.integers(-20, 20)),
                multiplier=rng.integers(1 << 30, 1 << 31, n, dtype=np.int64),
                shift=-rng.integers(7, 13, n, dtype=np.int64), act_min=-120, act_max=125)


def _operands(m, k, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (m, k), dtype=np.int64)
    w = rng.integers(-127, 128, (n, k), dtype=np.int64)
    return x, w, _layer(rng, n)


def _job(engine, m, k, n, seed):
    x, w, params = _operands(m, k, n, seed)
    layer = LayerParams.for_config(engine.array.replace(per_channel=True), n=n, **params)
    return engine_job(engine, x, w, layer)


@pytest.mark.parametrize("dataflow", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}-stall{c[3]}")
def test_fast_path_matches_cocotb_and_golden(dataflow, case):
    _need_fast()
    m, k, n, stall, seed = case
    engine = ENGINES[dataflow]
    x, w, params = _operands(m, k, n, seed)
    quick = gemm(engine, x, w, sim="verilator", stall=stall, seed=seed, check=False, **params)
    bench = gemm(engine, x, w, sim="verilator-cocotb", stall=stall, seed=seed, check=False,
                 **params)
    expected = golden_fully_connected(
        x, w, params["bias"], weight_zero_point=0,
        **{name: value for name, value in params.items() if name != "bias"})
    np.testing.assert_array_equal(quick.y, expected)
    np.testing.assert_array_equal(bench.y, expected)
    assert (quick.simulator, bench.simulator) == ("verilator", "verilator-cocotb")
    assert quick.cycles == bench.cycles > 0
    assert quick.verilog.endswith(f"{engine.name}_engine.v")


def test_stalls_change_the_cycles_only():
    """Other seeds stall differently (other cycle counts), never other outputs."""
    _need_fast()
    engine = ENGINES["os"]
    job = _job(engine, 6, 17, 7, 4)
    runs = [fast.run_engine(engine, job, stall=stall, seed=seed)
            for stall, seed in ((0.0, 0), (0.5, 1), (0.5, 2))]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.rows, runs[0].rows)
    cycles = [run.cycles for run in runs]
    assert cycles[0] < min(cycles[1:]) and cycles[1] != cycles[2]
    assert all(run.sim_cycles > run.cycles and run.cpu_seconds >= 0 for run in runs)


def test_a_starved_engine_times_out():
    """The harness fails as the bench does: one activation beat short, no result row ends
    the job and the run times out with what each stream accepted."""
    _need_fast()
    engine = ENGINES["ws"]
    job = _job(engine, 5, 7, 6, 5)
    starved = dataclasses.replace(job, activations=job.activations[:-1])
    with pytest.raises(AssertionError, match=r"timed out: accepted .*'activations': "
                                             f"'{len(starved.activations)} beats'"):
        fast.run_engine(engine, starved)


@pytest.mark.parametrize("dataflow", ENGINES)
def test_packing_matches_amaranth(dataflow):
    """Every beat packed at once equals Amaranth's own packing of that beat (job.beats(), the
    bench's payloads), in the bench's stream order; results unpack as data.Const reads them."""
    engine = ENGINES[dataflow]
    job = _job(engine, 7, 11, 9, 6)
    layouts = engine_layouts(engine)
    beats = job.beats()
    assert tuple(beats) == fast.INPUT_STREAMS
    for name, (count, fields) in fast._stream_fields(job).items():
        words = fast.pack_beats(layouts[name], fields, count)
        got = [sum(int(word) << (32 * i) for i, word in enumerate(row)) for row in words]
        assert got == [pack(layouts[name], beat) for beat in beats[name]], name
    rng = np.random.default_rng(7)
    layout = layouts["results"]
    rows = rng.integers(-128, 128, (5, engine.array.cols))
    lasts = rng.integers(0, 2, 5)
    words = fast.pack_beats(layout, {"y": rows, "last": lasts}, 5)
    fields = fast.unpack_beats(layout, words)
    for i in range(5):
        bits = sum(int(word) << (32 * j) for j, word in enumerate(words[i]))
        const = data.Const(layout, bits)
        assert list(fields["y"][i]) == [int(v) for v in const.y] == list(rows[i])
        assert fields["last"][i] == int(const.last) == lasts[i]


def test_bad_arguments():
    engine = ENGINES["os"]
    job = _job(engine, 2, 3, 2, 8)
    with pytest.raises(ValueError, match=r"stall must be in \[0, 0.9\], not 1.5"):
        fast.run_engine(engine, job, stall=1.5)
    with pytest.raises(TypeError, match="config must be an EngineConfig"):
        fast.build(engine.array)


def test_builds_are_cached_by_the_verilog(tmp_path, monkeypatch):
    """The build holds the Verilog generate_engine writes; a new process finds it through the
    index without generating again."""
    _need_fast()
    from hw.generate import generate_engine

    engine = ENGINES["os"]
    executable, verilog = fast.build(engine)
    fresh = generate_engine(engine, tmp_path)["verilog"]
    assert verilog.read_text() == fresh.read_text()
    assert executable.parent == verilog.parent and executable.exists()
    fast._build.cache_clear()   # as in a new process

    def no_generation(*_):
        raise AssertionError("generated again although the build is cached")

    monkeypatch.setattr(fast, "generate_engine", no_generation)
    assert fast.build(engine) == (executable, verilog)
