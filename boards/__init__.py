"""FPGA and ASIC flows with open tools: bitstreams with a built-in self test, reports, sweeps.

* :mod:`boards.registry` — the boards (iCEBreaker, ULX3S-85F, OrangeCrab) and their devices.
* :mod:`boards.bist` — self-test vectors from golden and the on-chip checker.
* :mod:`boards.dsp` — which multipliers go into DSP blocks.
* :mod:`boards.flow` — ``build``: Yosys, nextpnr and the packer, and the report.
* :mod:`boards.sweep` — builds over array sizes, Markdown/CSV tables and a PNG plot.
* :mod:`boards.asic` — technology-independent synthesis and a transistor estimate.
* :mod:`boards.cli` — ``qmac build``, ``qmac sweep``, ``qmac asic``.

Importing this package does not import Amaranth or the hardware; :func:`build` does.
"""

from .registry import BOARDS, Board, board_names, get_board

__all__ = ["BOARDS", "Board", "board_names", "get_board", "build"]


def build(*args, **kwargs):
    """See :func:`boards.flow.build`."""
    from .flow import build

    return build(*args, **kwargs)

