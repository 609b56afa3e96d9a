"""Host side of the UART link: run work on a MacArray or a GemmEngine behind
:class:`boards.uart.UARTBridge`.

:class:`UARTArray` speaks the protocol of :mod:`boards.uart` over any transport with
``write(bytes)`` and ``read(n) -> bytes``: a pyserial ``Serial`` for a board
(:func:`open_serial`), or a simulated UART in the tests. ``run(jobs, params)`` takes the
same jobs and hardware-ready parameters as the simulator harnesses
(:class:`sim.workload.Workload` ``.jobs`` / ``.params``) and returns the result rows.
:class:`UARTEngine` runs :class:`hw.host.EngineJob` s (:func:`hw.host.engine_job`) on a
GemmEngine.
"""

import numpy as np
from amaranth.hdl import Const, Shape
from amaranth.lib import data

from hw.config import ArrayConfig
from hw.engine import EngineConfig, engine_layouts
from hw.host import encode_weights
from hw.top import stream_layouts

from .uart import ACK, COMMANDS, PARAMS, RESULT, param_shapes, payload_bytes

__all__ = ["UARTArray", "UARTEngine", "open_serial"]


def open_serial(port, baudrate=115200, timeout=5.0):
    """A pyserial port (``pip install pyserial``); only needed with a board attached."""
    try:
        import serial
    except ImportError:
        raise RuntimeError("talking to a board needs pyserial: pip install pyserial") from None
    return serial.Serial(port, baudrate=baudrate, timeout=timeout)


def _bits(shape, value):
    if isinstance(shape, data.Layout):
        return shape.const(value).as_bits()
    return Const(int(value), Shape.cast(shape)).value & ((1 << Shape.cast(shape).width) - 1)


def _frame(command, bits, width):
    """A frame: the command byte, then ``width`` bits of payload as little-endian bytes."""
    return bytes([command]) + int(bits).to_bytes(payload_bytes(width), "little")


def _beat_frame(layouts, name, fields):
    """The frame of one beat of the input stream ``name``."""
    layout = layouts[name]
    return _frame(COMMANDS[name], layout.const(fields).as_bits(), layout.size)


def _result_row(layout, payload):
    """The ``y`` lanes of a result row from its frame's payload bytes."""
    row = data.Const(layout, int.from_bytes(payload, "little"))
    return [int(lane) for lane in row.y]


class UARTArray:
    """A MacArray of ``config`` reached through ``transport``."""

    def __init__(self, config, transport):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self.config = config
        self.transport = transport
        self._layouts = stream_layouts(config)
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
        self.transport.write(_frame(PARAMS, bits, offset))

    def _beat(self, name, fields):
        return _beat_frame(self._layouts, name, fields)

    def _read_rows(self, count):
        layout = self._layouts["results"]
        size = payload_bytes(Shape.cast(layout).width)
        rows = []
        for _ in range(count):
            frame = self.transport.read(1 + size)
            if len(frame) != 1 + size or frame[0] != RESULT:
                raise RuntimeError(f"expected a result frame of {1 + size} bytes starting with "
                                   f"'R', got {frame!r}")
            rows.append(_result_row(layout, frame[1:]))
        return rows

    def run(self, jobs, params):
        """Run ``jobs`` (as :class:`sim.workload.Workload`); return the result rows [*, cols].

        One job is in flight at a time: the host waits for its rows before sending the next,
        which is what keeps the board's UART receiver from overrunning.
        """
        cfg = self.config
        self.set_params(params)
        rows = []
        for x, w in jobs:
            w = encode_weights(w, cfg)
            frames = []
            if cfg.weight_stationary:
                frames += [self._beat("weights", {"w": w[:, k].tolist()})
                           for k in range(cfg.rows)]
                frames += [self._beat("activations", {"x": x[b].tolist(),
                                                      "last": int(b == len(x) - 1)})
                           for b in range(len(x))]
                expected = len(x)
            else:
                depth = x.shape[1]
                frames += [self._beat("operands", {"x": x[:, k].tolist(),
                                                   "w": w[:, k].tolist(),
                                                   "last": int(k == depth - 1)})
                           for k in range(depth)]
                expected = cfg.rows
            self.transport.write(b"".join(frames))
            rows += self._read_rows(expected)
        return np.array(rows, dtype=np.int64).reshape(-1, cfg.cols)


class UARTEngine:
    """A :class:`hw.engine.GemmEngine` of ``config`` reached through ``transport``.

    Stop and wait: every frame is answered with ``K`` once the engine took its beat, and the
    next frame goes only then; result rows (``R``) are read whenever they arrive. Frames go in
    an order the engine can always take: the command, the channel table, the buffered operand
    (output-stationary: the weights; weight-stationary: X), then the streamed one.
    """

    def __init__(self, config, transport):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self.config = config
        self.transport = transport
        self._layouts = engine_layouts(config)
        self._row_bytes = payload_bytes(self._layouts["results"].size)

    def _receive(self, rows, *, until_ack):
        """Read frames into ``rows`` until an acknowledgement (or, without ``until_ack``, one
        result row)."""
        while True:
            header = self.transport.read(1)
            if header == bytes([ACK]) and until_ack:
                return
            if header != bytes([RESULT]):
                raise RuntimeError(f"expected {'K or ' if until_ack else ''}R from the board, "
                                   f"got {header!r}")
            payload = self.transport.read(self._row_bytes)
            if len(payload) != self._row_bytes:
                raise RuntimeError(f"result row cut short: {len(payload)} of "
                                   f"{self._row_bytes} bytes")
            rows.append(_result_row(self._layouts["results"], payload))
            if not until_ack:
                return

    def run(self, job):
        """Run one :class:`hw.host.EngineJob`; return its result rows [result_rows, cols]
        (``job.outputs`` turns them into y)."""
        # the buffered operand first, then the one the engine takes only as it computes
        order = ["command", "channels", "activations", "weights"] \
            if self.config.weight_stationary else \
            ["command", "channels", "weights", "activations"]
        beats = job.beats()
        frames = [_beat_frame(self._layouts, name, fields)
                  for name in order for fields in beats[name]]
        rows = []
        for frame in frames:
            self.transport.write(frame)
            self._receive(rows, until_ack=True)
        while len(rows) < job.result_rows:
            self._receive(rows, until_ack=False)
        return np.array(rows, dtype=np.int64).reshape(-1, self.config.array.cols)
