"""Host side of the UART link: run work on a MacArray or a GemmEngine behind
:class:`boards.uart.UARTBridge`.

:class:`Link` speaks the framed protocol of :mod:`boards.uart` (CRC-16, sequence numbers,
stop and wait, docs/link.md) over any transport with ``write(bytes)`` and ``read(n) -> bytes``
that returns fewer than ``n`` bytes when it times out: a pyserial ``Serial`` for a board
(:func:`open_serial`), or :class:`boards.uart_sim.SimulatedSerial` in the tests. It
retransmits a frame whose reply is lost or corrupt and raises :class:`LinkError` (naming the
frame and every failure) when retrying does not help, :class:`BoardResetError` when the board
lost its state mid-job, :class:`BoardError` when the array flags an error.

:class:`UARTArray` ``run(jobs, params)`` takes the same jobs and hardware-ready parameters as
the simulator harnesses (:class:`sim.workload.Workload` ``.jobs`` / ``.params``) and returns
the result rows; :class:`UARTEngine` runs :class:`hw.host.EngineJob` s
(:func:`hw.host.engine_job`) on a GemmEngine.
"""

import binascii
from dataclasses import asdict, dataclass

import numpy as np
from amaranth.hdl import Const, Shape
from amaranth.lib import data

from hw.config import ArrayConfig, EngineConfig
from hw.host import encode_weights

from .uart import (
    COMMANDS,
    CRC_BYTES,
    CRC_INIT,
    REPLIES,
    REPLY_HEADER_BYTES,
    STATUS,
    SYNC,
    link_layouts,
    param_shapes,
    payload_bytes,
)

__all__ = ["BoardError", "BoardResetError", "Link", "LinkError", "LinkStats", "UARTArray",
           "UARTEngine", "open_serial"]

#: Seconds a board has to answer a frame (a reply takes about 1 ms at 115200 baud; USB
#: serial adapters add up to 16 ms).
REPLY_TIMEOUT = 0.1
#: Times a frame is sent before the link gives up on it.
ATTEMPTS = 8
#: Queries answered "no row ready" in a row, and beats answered "busy" in a row, before the
#: link gives up on the board.
IDLE_LIMIT = 256
#: Bytes read while looking for a reply's SYNC before the line counts as garbage.
HUNT_LIMIT = 1024
#: Sequence numbers wrap at one byte.
SEQ_MODULO = 256


class LinkError(RuntimeError):
    """The link to the board failed; the message names the frame and what went wrong."""


class BoardResetError(LinkError):
    """The board restarted during a job (its replies carry the ``reset`` status bit): the
    work sent before is lost."""


class BoardError(LinkError):
    """The array behind the bridge flagged an error (the engine refused a command, or a
    MacArray pass was deeper than ``kmax``)."""


@dataclass
class LinkStats:
    """What a :class:`Link` did: frames sent (retransmissions included), retransmissions,
    replies that never came, replies that failed their CRC or were cut short, frames the board
    reported corrupt, late replies to earlier frames, busy replies, result queries, bytes
    written, and the useful payload bytes (each beat's and each result row's once)."""
    frames: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    corrupt_replies: int = 0
    naks: int = 0
    stale: int = 0
    busy: int = 0
    queries: int = 0
    bytes_sent: int = 0
    payload_bytes: int = 0

    def as_dict(self):
        return asdict(self)


def open_serial(port, baudrate=115200, timeout=REPLY_TIMEOUT):
    """A pyserial port (``pip install pyserial``); only needed with a board attached."""
    try:
        import serial
    except ImportError:
        raise RuntimeError("talking to a board needs pyserial: pip install pyserial") from None
    return serial.Serial(port, baudrate=baudrate, timeout=timeout)


def crc16(data):
    """CRC-16/CCITT-FALSE of ``data`` (the frames' check, :data:`boards.uart.CRC_POLY`)."""
    return binascii.crc_hqx(bytes(data), CRC_INIT)


def frame(seq, command, payload=b""):
    """A host frame: SYNC, ``seq``, the command byte, ``payload``, the CRC of all but SYNC."""
    body = bytes([seq, command]) + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(CRC_BYTES, "big")


def _bits(shape, value):
    if isinstance(shape, data.Layout):
        return shape.const(value).as_bits()
    return Const(int(value), Shape.cast(shape)).value & ((1 << Shape.cast(shape).width) - 1)


def _payload(bits, width):
    return int(bits).to_bytes(payload_bytes(width), "little")


class Link:
    """Stop-and-wait frames over ``transport`` to the bridge of ``config``.

    Parameters
    ----------
    config : ArrayConfig or EngineConfig
        The design behind the bridge (it fixes the result rows' size).
    transport
        ``write(bytes)``; ``read(n)`` returning fewer bytes on a timeout.
    attempts : int
        Times a frame is sent before :class:`LinkError`.

    Members
    -------
    stats : LinkStats
    """

    def __init__(self, config, transport, *, attempts=ATTEMPTS):
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"attempts must be an integer, not {attempts!r}")
        if attempts < 1:
            raise ValueError(f"attempts must be ≥ 1, not {attempts}")
        self.transport = transport
        self.attempts = attempts
        self.layouts = link_layouts(config)
        self.row_bytes = payload_bytes(self.layouts["results"].size)
        self.stats = LinkStats()
        self._seq = 0

    def _reply(self):
        """One reply: (kind, seq, status, row bytes), or why none was read."""
        for _ in range(HUNT_LIMIT):
            byte = self.transport.read(1)
            if not byte:
                self.stats.timeouts += 1
                return "no reply (timed out)"
            if byte[0] == SYNC:
                break
        else:
            self.stats.corrupt_replies += 1
            return f"no reply start in {HUNT_LIMIT} bytes of noise"
        head = self.transport.read(REPLY_HEADER_BYTES - 1)
        size = self.row_bytes if head[:1] == bytes([REPLIES["row"]]) else 0
        rest = self.transport.read(size + CRC_BYTES) if len(head) == REPLY_HEADER_BYTES - 1 \
            else b""
        if len(rest) != size + CRC_BYTES or crc16(head + rest) != 0 or \
                head[0] not in REPLIES.values():
            self.stats.corrupt_replies += 1
            return "a corrupt reply (CRC mismatch or cut short)"
        return head[0], head[1], head[2], rest[:size]

    def request(self, command, payload=b"", *, what):
        """Send one frame until the board answers it; return (reply kind, row bytes).

        ``what`` names the frame in errors. A ``busy`` reply leaves the frame unexecuted
        (send it again later); every other reply means it was executed exactly once."""
        seq = self._seq
        message = frame(seq, COMMANDS[command], payload)
        failures = []
        for attempt in range(self.attempts):
            self.stats.frames += 1
            self.stats.retransmissions += attempt > 0
            self.stats.bytes_sent += len(message)
            self.transport.write(message)
            while True:
                reply = self._reply()
                if isinstance(reply, str):
                    failures.append(reply)
                    break
                kind, reply_seq, status, row = reply
                if kind == REPLIES["corrupt"]:
                    self.stats.naks += 1
                    failures.append("the board received it corrupt")
                    break
                if reply_seq != seq:
                    self.stats.stale += 1         # a late reply to an earlier frame
                    continue
                if kind != REPLIES["busy"]:           # executed: the next frame is new
                    self._seq = (seq + 1) % SEQ_MODULO
                self._check(status, command, seq, what)
                return kind, row
        raise LinkError(f"frame {seq} ({what}) was not answered in {self.attempts} attempts: "
                        + "; ".join(failures))

    def _check(self, status, command, seq, what):
        if command == "start":
            return
        if status & STATUS["reset"]:
            raise BoardResetError(f"the board restarted during the job: the reply to frame "
                                  f"{seq} ({what}) carries the reset flag; the work sent "
                                  f"before it is lost")
        if status & STATUS["error"]:
            raise BoardError(f"the array flagged an error by frame {seq} ({what}): a command "
                             f"or pass outside what the hardware takes")

    def start(self):
        """Start a session: the array behind the bridge is reset, the reset flag cleared."""
        self.request("start", what="session start")

    def query(self):
        """One result row's ``y`` lanes, or None when none is ready."""
        self.stats.queries += 1
        kind, row = self.request("query", what="result query")
        if kind != REPLIES["row"]:
            return None
        self.stats.payload_bytes += len(row)
        value = data.Const(self.layouts["results"], int.from_bytes(row, "little"))
        return [int(lane) for lane in value.y]

    def send_beat(self, name, fields, rows, *, what):
        """Send one beat of the input stream ``name`` (:meth:`send`)."""
        layout = self.layouts[name]
        self.send(name, _payload(layout.const(fields).as_bits(), layout.size), rows, what=what)

    def send(self, command, payload, rows, *, what):
        """Send a frame until it is executed; while the board is busy (a beat still waits for
        the array), collect result rows into ``rows`` (the array may wait for them)."""
        for _ in range(IDLE_LIMIT):
            kind, _ = self.request(command, payload, what=what)
            if kind != REPLIES["busy"]:
                self.stats.payload_bytes += len(payload)
                return
            self.stats.busy += 1
            row = self.query()
            if row is not None:
                rows.append(row)
        raise LinkError(f"{what} was never accepted: the board answered busy "
                        f"{IDLE_LIMIT} times in a row")

    def collect(self, rows, count):
        """Query result rows into ``rows`` until it holds ``count``."""
        idle = 0
        while len(rows) < count:
            row = self.query()
            if row is None:
                idle += 1
                if idle == IDLE_LIMIT:
                    raise LinkError(f"the board returned {len(rows)} of {count} result rows "
                                    f"(no row ready in {IDLE_LIMIT} queries in a row)")
                continue
            idle = 0
            rows.append(row)
        if len(rows) > count:
            raise LinkError(f"the board returned {len(rows)} result rows, {count} expected")


class UARTArray:
    """A MacArray of ``config`` reached through ``transport`` (:class:`Link`)."""

    def __init__(self, config, transport, *, attempts=ATTEMPTS):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self.config = config
        self.link = Link(config, transport, attempts=attempts)
        self._params = param_shapes(config)

    def set_params(self, params):
        """Load run-time parameters: a dict as :attr:`sim.workload.Workload.params`."""
        cfg = self.config
        values = {
            "bias": [int(v) for v in params["bias"]],
            "multiplier": [int(v) for v in np.resize(params.get("multiplier", [0]),
                                                     cfg.requant_channels)],
            "shift": [int(v) for v in np.resize(params["shift"], cfg.requant_channels)],
            "output_zero_point": params["output_zero_point"], "act_min": params["act_min"],
            "act_max": params["act_max"],
            "input_zero_point": params.get("input_zero_point", 0),
            "weight_zero_point": params.get("weight_zero_point", 0),
        }
        bits, offset = 0, 0
        for name, shape in self._params:
            bits |= _bits(shape, values[name]) << offset
            offset += Shape.cast(shape).width
        self.link.send("params", _payload(bits, offset), [], what="run-time parameters")

    def run(self, jobs, params):
        """Run ``jobs`` (as :class:`sim.workload.Workload`); return the result rows [*, cols]."""
        cfg = self.config
        self.link.start()
        self.set_params(params)
        rows, expected = [], 0
        for number, (x, w) in enumerate(jobs):
            w = encode_weights(w, cfg)
            if cfg.weight_stationary:
                beats = [("weights", {"w": w[:, k].tolist()}) for k in range(cfg.rows)]
                beats += [("activations", {"x": x[b].tolist(), "last": int(b == len(x) - 1)})
                          for b in range(len(x))]
                expected += len(x)
            else:
                depth = x.shape[1]
                beats = [("operands", {"x": x[:, k].tolist(), "w": w[:, k].tolist(),
                                       "last": int(k == depth - 1)}) for k in range(depth)]
                expected += cfg.rows
            for index, (name, fields) in enumerate(beats):
                self.link.send_beat(name, fields, rows,
                                    what=f"job {number}, {name} beat {index}")
        self.link.collect(rows, expected)
        return np.array(rows, dtype=np.int64).reshape(-1, cfg.cols)


class UARTEngine:
    """A :class:`hw.engine.GemmEngine` of ``config`` reached through ``transport``
    (:class:`Link`).

    Frames go in an order the engine can always take: the command, the channel table, the
    buffered operand (output-stationary: the weights; weight-stationary: X), then the
    streamed one; a beat the engine cannot take yet is answered busy and sent again after a
    result query.
    """

    def __init__(self, config, transport, *, attempts=ATTEMPTS):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self.config = config
        self.link = Link(config, transport, attempts=attempts)

    def run(self, job):
        """Run one :class:`hw.host.EngineJob`; return its result rows [result_rows, cols]
        (``job.outputs`` turns them into y)."""
        order = ["command", "channels", "activations", "weights"] \
            if self.config.weight_stationary else \
            ["command", "channels", "weights", "activations"]
        beats = job.beats()
        self.link.start()
        rows = []
        for name in order:
            for index, fields in enumerate(beats[name]):
                self.link.send_beat(name, fields, rows, what=f"{name} beat {index}")
        self.link.collect(rows, job.result_rows)
        return np.array(rows, dtype=np.int64).reshape(-1, self.config.array.cols)
