# amaranth: UnusedElaboratable=no
"""The GEMM engine never uses a word a memory read in the cycle that word was written.

``boards.flow.block_ram_script`` tells Yosys that what such a read returns does not matter
(``COLLISION_X_MASK``), so an iCE40 EBR needs no bypass logic. These tests watch every write
port against every non-transparent synchronous read port of every memory of the engine, cycle
by cycle, over whole GEMMs (several commands, stalls on every stream); where a read meets a
write of its address (an idle read port left on an address being loaded), the read data is
replaced with random bits, as the hardware may return, and every output is still checked
against golden. A mutant that garbles reads which are used shows the check fails.
"""

import itertools
import random

import numpy as np
import pytest
from amaranth.hdl import Fragment, Value
from amaranth.lib import memory
from amaranth.sim import Simulator

from boards.dsp import plan_dsp
from boards.flow import block_ram_script, planned_config
from boards.registry import get_board
from golden.layers import fully_connected
from hw.config import ArrayConfig
from hw.engine import EngineConfig, GemmEngine
from hw.host import LayerParams, engine_job

#: The simulated clock period, seconds.
PERIOD = 1e-6


def _memories(fragment, path="engine"):
    """(path, Memory) of every ``amaranth.lib.memory.Memory`` in an elaborated design."""
    found = [(path, origin) for origin in fragment.origins or ()
             if isinstance(origin, memory.Memory)]
    for sub, name, *_ in fragment.subfragments:
        found += _memories(sub, f"{path}.{name}")
    return found


def _watched_pairs(fragment):
    """(memory path, write port, read port) of every pair a collision could hurt: the read
    port synchronous and not transparent for that write port."""
    return [(path, write, read)
            for path, mem in _memories(fragment)
            for write in mem.write_ports
            for read in mem.read_ports
            if read.domain != "comb" and write not in read.transparent_for]


def _params(array, rng, x, w, n):
    bias = rng.integers(-3000, 3001, size=n, dtype=np.int64)
    peak = max(int(np.abs(x.astype(np.int64) @ w.T.astype(np.int64) + bias).max()), 1)
    shift = -(peak // 96).bit_length() - rng.integers(0, 3, size=n, dtype=np.int64)
    return LayerParams.for_config(
        array, n=n, bias=bias, multiplier=rng.integers(1 << 30, 1 << 31, size=n, dtype=np.int64),
        shift=shift, output_zero_point=int(rng.integers(-20, 21)), act_min=-128, act_max=127,
        input_zero_point=0)


def _run_watched(config, shapes, *, stall, seed, garble=None, max_cycles=200_000):
    """Run one GEMM of each (M, K, N) in ``shapes`` as consecutive commands, with random bits
    on a read port's data after each read that met a write of its address (and after every
    read of the memories whose path ends with ``garble``: a mutant). Check every output
    against golden; return the collisions seen (memory path, cycle) and the number of
    (write, read) port pairs watched."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    array = config.array
    jobs, expected = [], []
    for m, k, n in shapes:
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int64)
        w = rng.integers(-128, 128, size=(n, k), dtype=np.int64)
        params = _params(array, rng, x, w, n)
        jobs.append(engine_job(config, x, w, params))
        expected.append(fully_connected(
            x, w, params.bias, input_zero_point=0, weight_zero_point=0,
            output_zero_point=params.output_zero_point, multiplier=params.multiplier,
            shift=params.shift, act_min=params.act_min, act_max=params.act_max,
            rounding=array.rounding))
    dut = GemmEngine(config)
    fragment = Fragment.get(dut, None)
    pairs = _watched_pairs(fragment)
    collisions, rows, cycle = [], [[] for _ in jobs], [0]
    signals = [s for _, write, read in pairs for s in (write.en, write.addr, read.en, read.addr)]

    async def watch(ctx):
        async for _, _, *values in ctx.tick().sample(*signals):
            garbled = {}
            for index, (path, _, read) in enumerate(pairs):
                w_en, w_addr, r_en, r_addr = values[4 * index:4 * index + 4]
                hit = w_en and r_en and w_addr == r_addr
                if hit:
                    collisions.append((path, cycle[0]))
                if hit or (garble is not None and path.endswith(garble) and r_en):
                    garbled[id(read)] = Value.cast(read.data)
            cycle[0] += 1
            if garbled:   # once the edge has updated the read data
                await ctx.delay(PERIOD / 4)
                for data in garbled.values():
                    ctx.set(data, pick.getrandbits(len(data)))

    def driver(name):
        """Every job's beats of stream ``name``, each after a geometric number of idle
        cycles (probability ``stall`` each)."""
        beats = [fields for job in jobs for fields in job.beats()[name]]

        async def send(ctx):
            stream = getattr(dut, name)
            for fields in beats:
                idle = next(n for n in itertools.count() if pick.random() >= stall)
                if idle:
                    ctx.set(stream.valid, 0)
                    await ctx.tick().repeat(idle)
                ctx.set(stream.valid, 1)
                ctx.set(stream.payload, fields)
                await ctx.tick().until(stream.ready)
            ctx.set(stream.valid, 0)
        return send

    async def results(ctx):
        for index, job in enumerate(jobs):
            while len(rows[index]) < job.result_rows:
                ready = pick.random() >= stall
                ctx.set(dut.results.ready, ready)
                *_, valid, payload = await ctx.tick().sample(dut.results.valid,
                                                             dut.results.payload)
                if ready and valid:
                    rows[index].append([int(payload.y[j]) for j in range(array.cols)])

    sim = Simulator(fragment)
    sim.add_clock(PERIOD)
    sim.add_process(watch)
    for name in jobs[0].beats():
        sim.add_testbench(driver(name))
    sim.add_testbench(results)
    while sim.advance() and cycle[0] < max_cycles:   # until the results are in
        pass
    for job, job_rows, want in zip(jobs, rows, expected, strict=True):
        assert len(job_rows) == job.result_rows, "the engine hung"
        np.testing.assert_array_equal(job.outputs(job_rows), want)
    return collisions, len(pairs)


def _board_engine(array, board="icebreaker"):
    """The engine the flow builds for ``board``: its DSP plan, its engine limits."""
    board = get_board(board)
    array = planned_config(array, plan_dsp(array, board.family, board.dsp_available))
    return EngineConfig(array, **board.engine_limits)


#: (M, K, N) of consecutive commands: several M and N tiles, K in two passes, then a smaller
#: command that reuses the buffers while the first one's results may still drain.
SMALL_SHAPES = [(5, 8, 5), (2, 3, 3), (4, 7, 4)]


def _small_engine(dataflow):
    """A 2×2 engine, per-channel, with the bit-serial requantizer lane of the iCEBreaker."""
    array = ArrayConfig(rows=2, cols=2, kmax=4 if dataflow == "output_stationary" else 2,
                        dataflow=dataflow, per_channel=True,
                        requant_serial_bits=1)
    return EngineConfig(array, max_k=8, max_n=6, max_m=6)


@pytest.mark.parametrize("stall", [0.0, 0.4])
@pytest.mark.parametrize("dataflow", ["output_stationary", "weight_stationary"])
def test_engine_uses_no_word_read_while_it_is_written(dataflow, stall):
    """Every buffer fills and drains several times; random data on every colliding read
    changes no output."""
    collisions, watched = _run_watched(_small_engine(dataflow), SMALL_SHAPES, stall=stall,
                                       seed=3)
    assert watched >= 6   # loaders, channel table fields, FIFOs
    print(f"{len(collisions)} reads met a write of their address:", collisions[:8])


@pytest.mark.parametrize("memory_path", ["accumulators.fifo.storage", "act_loader.buffer",
                                         "channel_table.bias_table"])
def test_garbled_reads_that_are_used_fail(memory_path):
    """The mutant: random data on every read of a memory the engine uses is caught."""
    with pytest.raises(AssertionError):
        _run_watched(_small_engine("output_stationary"), SMALL_SHAPES[:1], stall=0.0, seed=3,
                     garble=memory_path)


@pytest.mark.slow
def test_icebreaker_engine_uses_no_word_read_while_it_is_written():
    """The iCEBreaker's 4×4 engine as the flow builds it (K ≤ 64, N ≤ 16, M ≤ 16)."""
    config = _board_engine(ArrayConfig(rows=4, cols=4, kmax=64, per_channel=True))
    _, watched = _run_watched(config, [(6, 64, 9), (4, 3, 4)], stall=0.3, seed=5)
    assert watched >= 9


def test_block_ram_script_marks_only_non_transparent_read_ports():
    """Block RAM for every memory of the array; the collision mask on read ports of one
    write port that are not transparent for it (transparent ports keep their bypass)."""
    script = block_ram_script("top.bridge.array").splitlines()
    assert script == ['setattr -set ram_style "block" top.bridge.array*/m:*',
                      "setparam -set COLLISION_X_MASK 1'1 "
                      "top.bridge.array*/r:TRANSPARENCY_MASK=1'0"]
