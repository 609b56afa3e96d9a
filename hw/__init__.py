"""Amaranth gateware of qmac, in the order data flows through it.

* :mod:`hw.config` — :class:`ArrayConfig`, every parameter of a generated array.
* :mod:`hw.top` — :class:`MacArray`: streams in, flow control, streams out.
* :mod:`hw.systolic` — the PE grids with input skew and readout (both dataflows).
* :mod:`hw.pe` — the processing elements: multiply and accumulate.
* :mod:`hw.requantizer` — accumulators back to N bits, as TFLite does it.
* :mod:`hw.generate` — Verilog, RTLIL and a JSON manifest for a configuration.
"""

from .config import ArrayConfig
from .requantizer import Requantizer
from .top import MacArray

__all__ = ["ArrayConfig", "MacArray", "Requantizer"]
