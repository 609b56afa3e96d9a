# amaranth: UnusedElaboratable=no
"""The UART link end to end in simulation: host driver ↔ bit-level UART ↔ RTL, vs golden.

The fault campaigns (bit flips, lost and repeated characters, noise, restarts) are in
tests/boards/test_link_faults.py.
"""

import binascii

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from boards.host import BoardError, Link, UARTArray, UARTEngine, crc16, frame
from boards.uart import (
    COMMANDS,
    CRC_INIT,
    REPLIES,
    UARTBridge,
    UARTRx,
    UARTTx,
    crc16_update,
    frame_sizes,
    param_shapes,
)
from boards.uart_sim import SIM_DIVISOR, SimulatedSerial, simulated_board
from golden.layers import fully_connected
from hw.config import ArrayConfig, EngineConfig
from hw.host import LayerParams, engine_job
from hw.top import MacArray
from sim.workload import random_workload

ARRAYS = [
    ArrayConfig(rows=2, cols=2, kmax=8),
    ArrayConfig(rows=2, cols=3, kmax=6, per_channel=True, act_signed=False, out_signed=False),
    ArrayConfig(rows=3, cols=2, dataflow="weight_stationary", weight_bits=1,
                weight_kind="binary"),
]


@pytest.mark.parametrize("config", ARRAYS,
                         ids=["2x2 int8", "2x3 uint8 per-channel", "3x2 weight-stationary binary"])
def test_uart_runs_work_bit_exactly(config):
    work = random_workload(config, seed=3, jobs=2)
    link = UARTArray(config, simulated_board(config))
    np.testing.assert_array_equal(link.run(work.jobs, work.params), work.expected)
    assert link.link.stats.retransmissions == 0     # a clean line needs none


def test_uart_loopback_every_byte():
    """Receiver and transmitter alone: all 256 byte values through rx → tx."""

    class Loopback(wiring.Component):
        def __init__(self):
            super().__init__({"rx": wiring.In(1, init=1), "tx": wiring.Out(1, init=1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.rx = rx = UARTRx(SIM_DIVISOR)
            m.submodules.tx = tx = UARTTx(SIM_DIVISOR)
            wiring.connect(m, rx.o, tx.i)
            m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
            return m

    port = SimulatedSerial(Loopback(), divisor=SIM_DIVISOR)
    for value in range(256):     # one at a time: the transmitter's handshake costs a cycle
        port.write(bytes([value]))
        assert port.read(1) == bytes([value])


@pytest.mark.parametrize("divisor,error", [(2, ValueError), (3, ValueError), (4.0, TypeError)])
def test_bad_divisor(divisor, error):
    for component in (UARTRx, UARTTx):
        with pytest.raises(error, match=f"divisor must be .*{divisor}"):
            component(divisor)


def test_bad_gap():
    with pytest.raises(ValueError, match=r"gap_bits must be in \[10, 65536\], not 9"):
        UARTBridge(ARRAYS[0], divisor=4, gap_bits=9)


def test_crc_gateware_equals_binascii():
    """The bridge's CRC step, run in the simulator over random bytes, vs binascii.crc_hqx
    (CRC-16/CCITT-FALSE), and its check value on "123456789" (0x29B1, the catalogue's)."""
    crc, byte = Signal(16), Signal(8)
    m = Module()
    following = Signal(16)
    m.d.comb += following.eq(crc16_update(crc, byte))
    rng = np.random.default_rng(5)
    messages = [b"123456789"] + [bytes(rng.integers(0, 256, n, dtype=np.uint8))
                                 for n in (1, 7, 33)]

    async def bench(ctx):
        for message in messages:
            value = CRC_INIT
            for b in message:
                ctx.set(crc, value)
                ctx.set(byte, b)
                value = ctx.get(following)
            assert value == binascii.crc_hqx(message, CRC_INIT)
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize("config", ARRAYS[:2], ids=["2x2", "2x3 per-channel"])
def test_param_shapes_are_the_array_ports(config):
    """The P frame's fields, computed without building the array, are the array's own
    run-time parameter ports, in order."""
    array = MacArray(config)
    streams = {"operands", "weights", "activations", "results"}
    ports = [(name, member.shape) for name, member in array.signature.members.items()
             if member.is_port and member.flow == wiring.In and name not in streams]
    assert param_shapes(config) == ports


def _raw_exchange(config, frames):
    """Send raw ``frames`` one at a time to a bridge; return the replies' (kind, seq, status)
    and the beats the array took on each input stream."""
    port = simulated_board(config)
    bridge = port.dut
    taken = {name: 0 for name in frame_sizes(config) if hasattr(bridge.array, name)}

    async def count(ctx):
        streams = [getattr(bridge.array, name) for name in taken]
        async for _, _, *flags in ctx.tick().sample(*(s.valid for s in streams),
                                                     *(s.ready for s in streams)):
            for index, name in enumerate(taken):
                taken[name] += flags[index] and flags[len(streams) + index]
    port.sim.add_testbench(count, background=True)
    replies = []
    for message in frames:
        port.write(message)
        head = port.read(4)
        assert len(head) == 4, f"no reply to {message!r}"
        size = len(port.read(2 if head[1] != REPLIES["row"] else 2 + 2))
        assert size
        replies.append((chr(head[1]), head[2], head[3]))
    return replies, taken


def test_bridge_executes_no_corrupt_frame_and_each_seq_once():
    """Frames sent raw: a bad CRC, an unknown command, a cut one never reach the array (N or
    silence); a frame sent twice with one seq is executed once and answered the same."""
    config = ArrayConfig(rows=2, cols=2, kmax=8)
    size = frame_sizes(config)["operands"]
    beat = frame(2, COMMANDS["operands"], bytes(size))
    broken = bytearray(beat)
    broken[4] ^= 0x10                                     # one payload bit
    replies, taken = _raw_exchange(config, [
        frame(0, COMMANDS["start"]),
        bytes(broken),
        frame(1, ord("Z")),                               # no such command
        beat, beat,                                       # a retransmission
    ])
    assert [kind for kind, _, _ in replies] == ["K", "N", "N", "K", "K"]
    assert [seq for _, seq, _ in replies] == [0, 2, 1, 2, 2]
    assert replies[0][2] & 1 == 0                         # S cleared the reset flag
    assert taken["operands"] == 1


@pytest.mark.parametrize("array", [
    ArrayConfig(rows=2, cols=2, kmax=3, per_channel=True),
    ArrayConfig(rows=2, cols=2, dataflow="weight_stationary"),
], ids=["engine os", "engine ws"])
def test_uart_runs_a_gemm_on_the_engine(array):
    """A whole GEMM (K beyond a pass, ragged M and N) through the framed engine link."""
    config = EngineConfig(array, max_k=8, max_n=4, max_m=4)
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, (3, 7), dtype=np.int64)
    w = rng.integers(-128, 128, (3, 7), dtype=np.int64)
    params = LayerParams.for_config(
        array.replace(per_channel=True), n=3, bias=rng.integers(-500, 500, 3),
        multiplier=rng.integers(1 << 30, 1 << 31, 3), shift=[-8, -9, -10],
        output_zero_point=4, act_min=-100, act_max=110, input_zero_point=-7)
    job = engine_job(config, x, w, params)
    link = UARTEngine(config, simulated_board(config))
    expected = fully_connected(x, w, params.bias, input_zero_point=-7, weight_zero_point=0,
                               output_zero_point=4, multiplier=params.multiplier,
                               shift=params.shift, act_min=-100, act_max=110)
    np.testing.assert_array_equal(job.outputs(link.run(job)), expected)


def test_an_engine_error_is_reported_by_the_link():
    """A command the engine refuses (depth 0) sets its error flag; the next reply carries it
    and the host raises BoardError naming that frame; a new session (S) clears it."""
    config = EngineConfig(ArrayConfig(rows=2, cols=2, kmax=3, per_channel=True),
                          max_k=8, max_n=4, max_m=4)
    link = Link(config, simulated_board(config))
    link.start()
    bad = {"m_tiles": 1, "n_tiles": 1, "depth": 0, "output_zero_point": 0, "act_min": -5,
           "act_max": 5}
    link.send_beat("command", bad, [], what="command beat 0")
    with pytest.raises(BoardError, match=r"flagged an error by frame 2 \(result query\)"):
        link.query()
    link.start()
    assert link.query() is None          # no error, no row


def test_a_busy_board_is_drained_and_the_beat_sent_again():
    """Ten one-beat passes into a 3-row result FIFO, with no query in between: the array stops
    taking beats, the bridge answers busy (the beat stays unexecuted), the host fetches rows
    and sends the beat again; every row still equals golden's."""
    config = ArrayConfig(rows=2, cols=2, kmax=8, fifo_depth=3)
    work = random_workload(config, seed=5, jobs=10, depth=1)
    host = UARTArray(config, simulated_board(config))
    np.testing.assert_array_equal(host.run(work.jobs, work.params), work.expected)
    assert host.link.stats.busy > 0
