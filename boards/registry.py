"""The boards qmac builds for, and what each needs to know about its device.

Every board is an Amaranth platform (amaranth-boards, or :mod:`boards.platforms` where
amaranth-boards has none or runs retired tools) plus the facts the flow cannot ask the platform
for: how many hardware multipliers the device has, which LEDs show the self test, and which
file is the bitstream.
"""

import copy
import importlib
from dataclasses import dataclass, field

__all__ = ["Board", "BOARDS", "get_board", "board_names"]

@dataclass(frozen=True)
class Board:
    """One target board.

    ``platform`` is ``"module:Class"`` of an amaranth-boards platform. ``pass_led`` and
    ``fail_led`` are ``(resource, number, subsignal)`` (subsignal None for a plain LED).
    ``dsp_available`` counts the multiplier primitives (``dsp_primitive``) of the device.
    ``engine_limits`` is ``{"max_k": …, "max_n": …, "max_m": …}``, the GEMM engine's buffer
    sizes (:class:`hw.config.EngineConfig`) that fit the device beside a 4×4 array, or None
    for the engine's defaults.
    """

    name: str
    description: str
    family: str                     # "ice40", "ecp5", "gowin" or "nexus"
    device: str
    platform: str
    clock_mhz: float
    dsp_primitive: str
    dsp_available: int
    pass_led: tuple
    fail_led: tuple
    bitstream: str
    sweep_sizes: tuple = ((1, 1), (2, 2), (4, 4), (8, 8), (16, 16), (32, 32))
    supported: bool = True
    reason: str = ""
    engine_limits: dict | None = field(default=None, hash=False)   # a dict: not hashed

    def platform_class(self):
        if not self.supported:
            raise ValueError(f"board {self.name!r} cannot be built: {self.reason}")
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)

    def make_platform(self, clock_mhz=None):
        """A fresh platform; ``clock_mhz`` replaces the constraint of the board clock.

        Only the timing constraint changes (what nextpnr aims for); the bitstream still runs
        from the board's oscillator.
        """
        cls = self.platform_class()
        if clock_mhz is None:
            return cls()
        if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, int | float):
            raise TypeError(f"clock_mhz must be a number, not {clock_mhz!r}")
        if not 1 <= clock_mhz <= 1000:
            raise ValueError(f"clock_mhz must be in [1, 1000], not {clock_mhz}")
        from amaranth.build import Clock

        resources = []
        for resource in cls.resources:
            if resource.name == cls.default_clk and resource.clock is not None:
                resource = copy.copy(resource)
                resource.clock = Clock(clock_mhz * 1e6)
            resources.append(resource)
        constrained = type(cls.__name__, (cls,), {"resources": resources})
        return constrained()


BOARDS = {board.name: board for board in [
    Board(
        name="icebreaker", description="1BitSquared iCEBreaker",
        family="ice40", device="iCE40UP5K-SG48",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform", clock_mhz=12.0,
        dsp_primitive="SB_MAC16", dsp_available=8,
        pass_led=("led", 1, None), fail_led=("led", 0, None),   # green, red
        bitstream="top.bin",
        sweep_sizes=((1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (4, 4)),
        # K ≤ 256, N ≤ 64 need 48 of the UP5K's 30 EBR (docs/boards.md, "iCEBreaker").
        engine_limits={"max_k": 64, "max_n": 16, "max_m": 16},
    ),
    Board(
        name="ulx3s-85f", description="Radiona ULX3S with ECP5-85F",
        family="ecp5", device="LFE5U-85F-6BG381",
        platform="amaranth_boards.ulx3s:ULX3S_85F_Platform", clock_mhz=25.0,
        dsp_primitive="MULT18X18D", dsp_available=156,
        pass_led=("led", 0, None), fail_led=("led", 7, None),
        bitstream="top.bit",
        sweep_sizes=((2, 2), (4, 4), (8, 8), (12, 12), (16, 16), (20, 20), (24, 24)),
    ),
    Board(
        name="orangecrab", description="Orange Crab r0.2 with ECP5-25F",
        family="ecp5", device="LFE5U-25F-8MG285",
        platform="amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_25FPlatform", clock_mhz=48.0,
        dsp_primitive="MULT18X18D", dsp_available=28,
        pass_led=("rgb_led", 0, "g"), fail_led=("rgb_led", 0, "r"),
        bitstream="top.bit",
        sweep_sizes=((2, 2), (4, 4), (6, 6), (8, 8), (10, 10), (12, 12)),
    ),
    Board(
        name="tangnano9k", description="Sipeed Tang Nano 9K (Gowin GW1NR-9)",
        family="gowin", device="GW1NR-LV9QN88PC6/I5",
        platform="boards.platforms:TangNano9kHimbaechelPlatform", clock_mhz=27.0,
        dsp_primitive="MULT18X18", dsp_available=20,
        pass_led=("led", 0, None), fail_led=("led", 1, None),
        bitstream="top.fs",
        sweep_sizes=((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)),
    ),
    Board(
        name="crosslink-nx", description="Lattice CrossLink-NX Evaluation Board (LIFCL-40-EVN)",
        family="nexus", device="LIFCL-40-9BG400C",
        platform="boards.platforms:CrossLinkNXEvnPlatform", clock_mhz=12.0,
        dsp_primitive="MULT18X18", dsp_available=56,
        pass_led=("led", 0, None), fail_led=("led", 1, None),
        bitstream="top.bit",
        sweep_sizes=((2, 2), (4, 4), (6, 6), (8, 8), (10, 10), (12, 12)),
    ),
]}


def board_names(*, supported_only=True):
    return [name for name, board in BOARDS.items() if board.supported or not supported_only]


def get_board(board):
    """A :class:`Board` from itself or its name; unknown names raise ValueError."""
    if isinstance(board, Board):
        return board
    if not isinstance(board, str):
        raise TypeError(f"board must be a board name or Board, not {board!r}")
    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(board_names())}, not {board!r}")
    return BOARDS[board]
