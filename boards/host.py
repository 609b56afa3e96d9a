"""Host side of the UART link: run work on a MacArray behind :class:`boards.uart.UARTBridge`.

:class:`UARTArray` speaks the protocol of :mod:`boards.uart` over any transport with
``write(bytes)`` and ``read(n) -> bytes``: a pyserial ``Serial`` for a board
(:func:`open_serial`), or a simulated UART in the tests. ``run(jobs, params)`` takes the
same jobs and hardware-ready parameters as the simulator harnesses
(:class:`sim.workload.Workload` ``.jobs`` / ``.params``) and returns the result rows.
"""

import numpy as np
from amaranth.hdl import Const, Shape
from amaranth.lib import data

from hw.config import ArrayConfig
from hw.host import encode_weights
from hw.top import stream_layouts

from .uart import COMMANDS, PARAMS, RESULT, param_shapes, payload_bytes

__all__ = ["UARTArray", "open_serial"]


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


class UARTArray:
    """A MacArray of ``config`` reached through ``transport``."""

    def __init__(self, config, transport):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self.config = config
        self.transport = transport
        self._layouts = stream_layouts(config)
        self._params = param_shapes(config)

    def _frame(self, command, bits, width):
        size = payload_bytes(width)
        return bytes([command]) + int(bits).to_bytes(size, "little")

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
        self.transport.write(self._frame(PARAMS, bits, offset))

    def _beat(self, name, fields):
        layout = self._layouts[name]
        return self._frame(COMMANDS[name], layout.const(fields).as_bits(),
                           Shape.cast(layout).width)

    def _read_rows(self, count):
        layout = self._layouts["results"]
        size = payload_bytes(Shape.cast(layout).width)
        rows = []
        for _ in range(count):
            frame = self.transport.read(1 + size)
            if len(frame) != 1 + size or frame[0] != RESULT:
                raise RuntimeError(f"expected a result frame of {1 + size} bytes starting with "
                                   f"'R', got {frame!r}")
            row = data.Const(layout, int.from_bytes(frame[1:], "little"))
            rows.append([int(row.y[j]) for j in range(self.config.cols)])
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
