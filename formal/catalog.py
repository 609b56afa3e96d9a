"""Every proof of ``make formal``, its mutants and covers, in one list (:func:`proofs`).

Naming: ``<subject>_<variant>``; a ``_cover`` job shows the property's case is reachable, a
``_mutant_<defect>`` job runs the same property on a broken copy and must FAIL, so that no proof
passes vacuously. Solvers were chosen by timing each job family with boolector, yices and z3
(docs/formal.md).
"""

import functools

from amaranth.hdl import Mux

from boards.uart import CHAR_BITS, UARTBridge, UARTRx
from golden.rounding import ROUNDING_MODES
from hw.config import ArrayConfig, EngineConfig
from hw.engine import GemmEngine
from hw.engine.command import shape_limits
from hw.requantizer import Requantizer, pipeline_stages, requantizer_fifo_depth, requantizer_latency
from hw.top import MacArray

from .harness import Proof
from .partial_sums import PartialSumCheck, RowSumCheck, narrower
from .pe import PECheck
from .requantizer import RequantizerCheck, SrdhmFloorCheck, requantizer_config
from .rounding import (
    RoundShiftCheck,
    ShiftWindowCheck,
    hardware_shift_widths,
    wrong_fit_window,
    wrong_tie_rule,
)
from .streams import Balance, Glitched, StreamCheck
from .uart import BRIDGE_DEFECTS, BridgeTxCheck, DefectiveBridge, UARTRxCheck

__all__ = ["FAST_WIDTHS", "PARTIAL_SUM_CONFIG", "PE_CONFIGS", "REQUANT_CASES", "WINDOW_SIZES",
           "ROW_SUM_CONFIG", "STREAM_CONFIG", "proofs"]

#: Width of the round_shift mutants and of the out-of-domain check (the requantizer's int32).
_MUTANT_WIDTH = 32
#: Width of the fast round_shift proofs, every mode: the widest value the requantizer divides
#: (tests/formal checks it against the hardware); `make formal` proves every (width, mode) the
#: hardware builds.
FAST_WIDTHS = (64,)
#: Widest shift amount the 6-bit shift port can encode.
_AMOUNT_LIMIT = 63

#: PE configurations: name → (ArrayConfig, fast). Induction makes the proof depth-independent,
#: so kmax is the largest each operand width allows within int32 where it matters.
PE_CONFIGS = {
    "int8_k16": ArrayConfig(kmax=16),
    "int8_k256": ArrayConfig(kmax=256),
    "uint8_zero_points_k64": ArrayConfig(act_signed=False, input_zero_point_in_hw=True,
                                         weight_zero_point_in_hw=True, kmax=64),
    "uint8_zero_points_k32": ArrayConfig(act_signed=False, input_zero_point_in_hw=True,
                                         weight_zero_point_in_hw=True, kmax=32),
    "int16x8_k256": ArrayConfig(act_bits=16, kmax=256),
    "binary_k65536": ArrayConfig(weight_kind="binary", weight_bits=1, kmax=1 << 16),
    "ternary_unregistered_k1024": ArrayConfig(weight_kind="ternary", weight_bits=2, kmax=1024,
                                              register_product=False),
    "int8_two_registers_k16": ArrayConfig(kmax=16, product_pipeline=1),
    "int8_three_registers_k16": ArrayConfig(kmax=16, product_pipeline=2),
}
#: Configurations proved in `make test`.
_PE_FAST = ("int8_k16", "int8_k256")
#: Configurations with a cover (and a mutant) that reaches the extreme sum: depth ≈ kmax (the
#: zero-point case at kmax 32: at 64 the cover took 438 s and its mutant 158 s, most of
#: `make formal`'s time).
_PE_DEEP = ("int8_k16", "uint8_zero_points_k32")
#: Stream checks: a 2×2 array with the default (multiplier, double rounding) requantizer.
STREAM_CONFIG = ArrayConfig(rows=2, cols=2, kmax=4)
#: MacArray's stream checks: the smallest array with two result rows per pass (BMC of the whole
#: array with wider operands does not close at depth 30 in 10 minutes).
_ARRAY_CONFIG = ArrayConfig(rows=2, cols=1, act_bits=2, weight_bits=2, kmax=2, requant="shift",
                            rounding="floor")
_STREAM_SHIFT_CONFIG = ArrayConfig(rows=2, cols=2, kmax=4, requant="shift",
                                   rounding="half_to_even", per_channel=True, max_left_shift=3)


#: (value bits, amount bits) of the requantizer's output window in its int8 builds: the
#: default "double" and "single" lanes (max_left_shift 7: 41 bits from bit 24 of the product,
#: shifted by 0..38) and "double" without a left shift (34 bits, 0..31); the window is int8's
#: N + 2 bits.
WINDOW_SIZES = ((41, 6), (34, 5))
_WINDOW_BITS = 10


def _shift_window_proofs():
    for value_bits, amount_bits in WINDOW_SIZES:
        yield Proof(
            name=f"shift_window_v{value_bits}_a{amount_bits}",
            prop="shift_window(value, amount, 10) = low 10 bits of floor(value / 2^amount), "
                 "whether it fits 10 signed bits, and the sign, for all inputs",
            widths=f"value {value_bits} bits, amount {amount_bits} bits",
            design=functools.partial(ShiftWindowCheck, value_bits, amount_bits, _WINDOW_BITS),
            mode="bmc", depth=1, solver="z3", fast=True)
    value_bits, amount_bits = WINDOW_SIZES[0]
    yield Proof(
        name="shift_window_mutant_fit",
        prop="mutant: a fit flag one bit too lenient must differ from spec",
        widths=f"value {value_bits} bits, amount {amount_bits} bits",
        design=functools.partial(ShiftWindowCheck, value_bits, amount_bits, _WINDOW_BITS,
                                 implementation=wrong_fit_window),
        mode="bmc", depth=1, solver="z3", expect="FAIL", fast=True)


def _round_shift_proofs(fast):
    if fast:
        built = [(width, mode) for width in FAST_WIDTHS for mode in ROUNDING_MODES]
    else:
        built = hardware_shift_widths()
    # One job per width proves each of its modes (sby's start-up is most of a job's time).
    for width in sorted({width for width, _ in built}):
        modes = tuple(mode for w, mode in built if w == width)
        yield Proof(
            name=f"round_shift_w{width}",
            prop=f"round_shift(value, amount, mode) = spec for all inputs, each mode of "
                 f"{', '.join(modes)}",
            widths=f"value {width} bits, amount 0..{min(width, _AMOUNT_LIMIT)}",
            design=functools.partial(RoundShiftCheck, width, modes),
            mode="bmc", depth=1, solver="z3", fast=fast)
    for mode in ROUNDING_MODES:
        yield Proof(
            name=f"round_shift_mutant_tie_{mode}",
            prop=f"mutant: {mode} computed with the next mode's rule must differ from spec",
            widths=f"value {_MUTANT_WIDTH} bits",
            design=functools.partial(RoundShiftCheck, _MUTANT_WIDTH, mode,
                                     implementation=wrong_tie_rule),
            mode="bmc", depth=1, solver="z3", expect="FAIL", fast=True)
    yield Proof(
        name="round_shift_beyond_width",
        prop="domain: amounts above the value's width are wrong (the rounding addend stops "
             "at the value's width: −2^31 / 2^48 rounds to −1 with ties away from zero); "
             "the hardware never shifts a value by more than its width",
        widths=f"value {_MUTANT_WIDTH} bits, amount 0..{_AMOUNT_LIMIT}",
        design=functools.partial(RoundShiftCheck, _MUTANT_WIDTH, "half_away_from_zero",
                                 max_amount=_AMOUNT_LIMIT),
        mode="bmc", depth=1, solver="z3", expect="FAIL", fast=True)


def _pe_proofs():
    for name, config in PE_CONFIGS.items():
        widths = (f"act {config.act_range}, weight {config.weight_range}, kmax {config.kmax}, "
                  f"acc {config.accumulator_bits} bits")
        fast = name in _PE_FAST
        yield Proof(
            name=f"pe_{name}", widths=widths,
            prop="OutputStationaryPE: accumulator = exact sum of a legal pass (no wrap), "
                 "every result exact; k-induction with the accumulator invariant",
            # k-induction reaches back past every product register.
            design=functools.partial(PECheck, config), mode="prove",
            depth=3 + config.product_pipeline,
            solver="boolector", fast=fast)
        yield Proof(
            name=f"pe_{name}_cover_result", widths=widths,
            prop="cover: a pass ends with a nonzero result",
            design=functools.partial(PECheck, config, cover="result"), mode="cover", depth=8,
            solver="boolector", fast=fast)
        if name in _PE_DEEP:
            depth = config.kmax + 4
            yield Proof(
                name=f"pe_{name}_cover_wrap", widths=widths,
                prop="cover: a legal pass whose sum does not fit one bit fewer",
                design=functools.partial(PECheck, config, cover="wrap"), mode="cover",
                depth=depth, solver="boolector", fast=config.kmax <= 16)
            yield Proof(
                name=f"pe_{name}_mutant_narrow",
                widths=f"{widths}, PE built with acc {config.accumulator_bits - 1} bits",
                prop="mutant: a PE one bit narrower wraps (BMC finds the pass)",
                design=functools.partial(PECheck, config,
                                         acc_bits=config.accumulator_bits - 1),
                mode="bmc", depth=depth, solver="boolector", expect="FAIL",
                fast=config.kmax <= 16)


#: BMC depth of the MacArray stream checks, and the cycles beyond a requantizer's latency that
#: its checks look.
_ARRAY_DEPTH = 20
_STREAM_SLACK = 6


def _requantizer(config):
    return Requantizer(config)


def _stream_subjects():
    """(name, factory, output port, Balance factory, follow, frame, widths)."""
    for label, config in (("requantizer", STREAM_CONFIG),
                          ("requantizer_shift", _STREAM_SHIFT_CONFIG)):
        def balance(dut):
            # "Backpressure on o fills a FIFO of fifo_depth rows, then holds i."
            return Balance({"i": 1}, "o", dut.fifo_depth)
        # Deep enough for a row to cross the pipeline and its output FIFO, and then some.
        depth = requantizer_latency(config) + _STREAM_SLACK
        yield (label, functools.partial(_requantizer, config), "o", balance,
               ("i", "o", lambda payload: payload.last), None,
               f"{config.cols} lanes, requant {config.requant}, rounding {config.rounding}",
               depth)

    config = _ARRAY_CONFIG

    def array_balance(dut):
        # Rows wait in the accumulator FIFO (credited) and in the requantizer's output FIFO.
        return Balance({"operands": lambda p: config.rows * p.last}, "results",
                       dut.fifo_depth + requantizer_fifo_depth(config))
    yield ("mac_array", functools.partial(MacArray, config), "results", array_balance,
           None, ("results", config.rows),
           f"{config.rows}x{config.cols} output-stationary, {config.act_bits}-bit operands, "
           f"kmax {config.kmax}, requant {config.requant}", _ARRAY_DEPTH)


#: Stream ports proved for the protocol only (conservation of these needs an invariant on
#: their internal state that BMC reaches too slowly): label → (factory, port, widths, BMC depth
#: of the cover and mutants).
_ENGINE_CONFIG = EngineConfig(array=_ARRAY_CONFIG.replace(rows=1, kmax=2), max_k=2, max_n=1,
                              max_m=1)
_WS_ARRAY_CONFIG = _ARRAY_CONFIG.replace(dataflow="weight_stationary", kmax=None)
#: The UART receiver at its smallest divisor: a byte every 10 bit times of 4 cycles.
_UART_DIVISOR = 4
_PROTOCOL_ONLY = {
    "gemm_engine": (functools.partial(GemmEngine, _ENGINE_CONFIG), "results",
                    "GemmEngine, 1×1 output-stationary, 2-bit operands, max_k 2, one N tile",
                    32),
    "mac_array_ws": (functools.partial(MacArray, _WS_ARRAY_CONFIG), "results",
                     "MacArray 2×1 weight-stationary, 2-bit operands, requant shift", 26),
}


def _protocol_only_proofs():
    for label, (factory, port, widths, depth) in _PROTOCOL_ONLY.items():
        def protocol(defect=None, factory=factory, port=port):
            dut = factory()
            return StreamCheck(Glitched(dut, port, defect) if defect else dut, ports=[port])
        yield Proof(name=f"stream_{label}_protocol", widths=widths,
                    prop=f"{port}: valid holds until ready, payload stable while waiting "
                         f"(k-induction; inputs assumed to follow the protocol)",
                    design=protocol, mode="prove", depth=2, solver="boolector")
        yield Proof(name=f"stream_{label}_protocol_cover", widths=widths,
                    prop="cover: a beat waits, then is taken", design=protocol, mode="cover",
                    depth=depth, solver="boolector")
        for defect in ("drop_valid", "unstable_payload"):
            yield Proof(name=f"stream_{label}_protocol_mutant_{defect}",
                        prop=f"mutant: {defect} on {port} must fail", widths=widths,
                        design=functools.partial(protocol, defect), mode="bmc", depth=depth,
                        solver="boolector", expect="FAIL")


#: Cycles for a byte to arrive at _UART_DIVISOR (10 bit times, the synchronizer, the output
#: register), and BMC depths: the receiver's stream checks see two bytes (a wait, an overrun),
#: its conservation three.
_UART_BYTE_DEPTH = CHAR_BITS * _UART_DIVISOR + 4
_UART_PROTOCOL_DEPTH = 2 * _UART_BYTE_DEPTH
_UART_CONSERVATION_DEPTH = 2 * _UART_BYTE_DEPTH + 4
#: The UART bridge of the tx-stream proof: the smallest MacArray behind it. Its cover: three
#: bytes in (SYNC, a sequence number, an unknown command), the reply's SYNC sent, its next
#: byte waiting for it.
_BRIDGE_CONFIG = _ARRAY_CONFIG.replace(rows=1)
_BRIDGE_COVER_DEPTH = 4 * _UART_BYTE_DEPTH + 8


def _family(name, *, widths, prop, cover, design, depth, port, defects, mode="bmc",
            fast=False):
    """A proof ``name`` of ``design()`` (k-induction of depth 2 if ``mode`` is ``"prove"``,
    else BMC of ``depth``), its cover at ``depth``, and one mutant per defect of ``defects``
    (``design(defect)``, the defect on ``port``; or a name → design dict), all boolector."""
    yield Proof(name=name, widths=widths, prop=prop, design=design, mode=mode,
                depth=2 if mode == "prove" else depth, solver="boolector", fast=fast)
    yield Proof(name=f"{name}_cover", widths=widths, prop=f"cover: {cover}", design=design,
                mode="cover", depth=depth, solver="boolector", fast=fast)
    if not isinstance(defects, dict):
        defects = {defect: (f"{defect} on {port}", functools.partial(design, defect))
                   for defect in defects}
    for defect, (what, broken) in defects.items():
        yield Proof(name=f"{name}_mutant_{defect}", widths=widths,
                    prop=f"mutant: {what} must fail", design=broken, mode="bmc", depth=depth,
                    solver="boolector", expect="FAIL", fast=fast)


def _uart_proofs():
    widths = f"UARTRx, divisor {_UART_DIVISOR}"

    def receiver(defect=None):
        rx = UARTRx(_UART_DIVISOR)
        return Glitched(rx, "o", defect) if defect else rx

    def protocol(defect=None):
        return StreamCheck(receiver(defect), ports=["o"])
    yield from _family(
        "stream_uart_rx_protocol", widths=f"{widths}, any rx waveform", mode="prove",
        prop="o: valid holds until ready, payload stable while waiting (k-induction; a byte "
             "completing meanwhile is dropped and reported on overrun)",
        cover="a byte waits, then is taken", design=protocol, depth=_UART_PROTOCOL_DEPTH,
        port="o", defects=("drop_valid", "unstable_payload"), fast=True)

    def conservation(defect=None, mutant=None):
        return UARTRxCheck(receiver(defect), _UART_DIVISOR, mutant=mutant)
    defects = {defect: (f"{defect} on o", functools.partial(conservation, defect))
               for defect in ("lose_beat", "duplicate_beat")}
    defects["silent_overrun"] = ("a receiver whose overrun is stuck at 0 (a byte lost "
                                 "unreported)",
                                 functools.partial(conservation, mutant="silent_overrun"))
    yield from _family(
        "uart_rx_conservation",
        widths=f"{widths}, an 8N1 line sending any bytes, back to back or not",
        prop="bytes sent = bytes taken on o + overrun pulses + the byte waiting (while the "
             "line is idle; the byte on the wire aside while it sends); every byte o offers "
             "is the one the line carried (BMC)",
        cover="a byte is dropped (overrun), then the byte that waited is taken",
        design=conservation, depth=_UART_CONSERVATION_DEPTH, port="o", defects=defects)

    bridge = (f"UARTBridge, divisor {_UART_DIVISOR}, MacArray {_BRIDGE_CONFIG.rows}×"
              f"{_BRIDGE_CONFIG.cols} behind it, any rx waveform")

    def bridge_tx(defect=None):
        if defect is None:
            return BridgeTxCheck(UARTBridge(_BRIDGE_CONFIG, divisor=_UART_DIVISOR))
        return BridgeTxCheck(DefectiveBridge(_BRIDGE_CONFIG, divisor=_UART_DIVISOR,
                                             defect=defect))
    yield from _family(
        "stream_uart_bridge_tx_protocol", widths=bridge, mode="prove",
        prop="the bridge's beats toward UARTTx (tx.i, internal): valid holds until ready, "
             "payload stable while waiting (k-induction)",
        cover="a reply byte waits for the transmitter, then is taken", design=bridge_tx,
        depth=_BRIDGE_COVER_DEPTH, port="tx.i", defects=BRIDGE_DEFECTS)


def _legal_command(config, command):
    """1 for a command :class:`GemmEngine` runs (its docstring: every shape field in
    [1, its limit], act_min ≤ act_max), else 0 (dropped, ``error`` set)."""
    legal = command.act_min <= command.act_max
    for name, limit in shape_limits(config).items():
        field = getattr(command, name)
        legal &= (field >= 1) & (field <= limit)
    return legal


def _engine_rows(config, command):
    """Result rows a command asks of the engine: ``rows`` per (M tile, N tile)
    (output-stationary), ``m`` per N tile (weight-stationary); none if it is dropped."""
    if config.weight_stationary:
        rows = command.m * command.n_tiles
    else:
        rows = config.array.rows * command.m_tiles * command.n_tiles
    return Mux(_legal_command(config, command), rows, 0)


#: BMC depth of GemmEngine's conservation: a command of one M tile is answered by step 28
#: (the protocol cover), so a command of two M tiles, or two commands, fit.
_ENGINE_CONSERVATION_DEPTH = 36


def _engine_conservation_proofs():
    config = _ENGINE_CONFIG
    limits = shape_limits(config)

    def conservation(defect=None):
        dut = GemmEngine(config)
        balance = Balance({"command": functools.partial(_engine_rows, config)}, "results",
                          config.array.rows * limits["m_tiles"] * limits["n_tiles"],
                          drained="busy")
        return StreamCheck(Glitched(dut, "results", defect) if defect else dut,
                           check="conservation", balance=balance)
    yield from _family(
        "stream_gemm_engine_conservation", widths=_PROTOCOL_ONLY["gemm_engine"][2],
        prop="results: rows sent never exceed what the commands taken ask (rows · m_tiles · "
             "n_tiles a legal command, 0 a dropped one), and equal it whenever busy is low "
             "(BMC)",
        cover="two result rows due at once (a command of 2 M tiles), then every row sent "
              "and busy low",
        design=conservation, depth=_ENGINE_CONSERVATION_DEPTH, port="results",
        defects=("lose_beat", "duplicate_beat"))


def _stream_proofs():
    yield from _protocol_only_proofs()
    yield from _engine_conservation_proofs()
    yield from _uart_proofs()
    for label, factory, port, balance, follow, frame, widths, depth in _stream_subjects():
        def protocol(defect=None, factory=factory, port=port):
            dut = factory()
            return StreamCheck(Glitched(dut, port, defect) if defect else dut, ports=[port])

        def conservation(defect=None, factory=factory, port=port, balance=balance,
                         follow=follow, frame=frame):
            dut = factory()
            bal = balance(dut)
            if defect:
                dut = Glitched(dut, port, defect)
            return StreamCheck(dut, check="conservation", balance=bal, follow=follow,
                               frame=frame)

        array = label == "mac_array"
        fast = label == "requantizer"
        slow_solver = "yices" if array else "boolector"
        what = (f"{port}: valid holds until ready, payload stable while waiting "
                f"(k-induction; inputs assumed to follow the protocol)")
        yield Proof(name=f"stream_{label}_protocol", prop=what, widths=widths,
                    design=protocol, mode="prove", depth=2, solver="boolector",
                    fast=fast or array)
        yield Proof(name=f"stream_{label}_protocol_cover", prop="cover: a beat waits, then "
                    "is taken", widths=widths, design=protocol, mode="cover", depth=depth,
                    solver="boolector", fast=fast)
        for defect in ("drop_valid", "unstable_payload"):
            yield Proof(name=f"stream_{label}_protocol_mutant_{defect}",
                        prop=f"mutant: {defect} on {port} must fail", widths=widths,
                        design=functools.partial(protocol, defect), mode="bmc", depth=depth,
                        solver="boolector", expect="FAIL", fast=fast)
        counted = ("no beat from nothing, none piled up beyond capacity"
                   + (", the n-th input beat's last is the n-th output beat's" if follow else "")
                   + (f", last on every {frame[1]}-th output beat" if frame else ""))
        yield Proof(name=f"stream_{label}_conservation", prop=f"{port}: {counted} (BMC)",
                    widths=widths, design=conservation, mode="bmc", depth=depth,
                    solver=slow_solver, fast=fast)
        yield Proof(name=f"stream_{label}_conservation_cover",
                    prop="cover: in flight = capacity; a tracked or framed beat arrives",
                    widths=widths, design=conservation, mode="cover", depth=depth,
                    solver="boolector", fast=fast)
        for defect in ("lose_beat", "duplicate_beat"):
            yield Proof(name=f"stream_{label}_conservation_mutant_{defect}",
                        prop=f"mutant: {defect} on {port} must fail", widths=widths,
                        design=functools.partial(conservation, defect), mode="bmc",
                        depth=depth, solver=slow_solver, expect="FAIL", fast=fast)


#: Requantizer proofs against TFLite's integer spec: name → (ArrayConfig options, the rounding
#: its mutant is built with, whether its cover and mutant run in `make test`; the proofs take
#: 20 s to minutes: `make formal`). Every one at _REQUANT_VALUE_BITS × _REQUANT_M0_BITS. The
#: left-shift stage once, at the default max_left_shift (7); the others without it (with it,
#: each took 2–3 min, and the bit-serial lane over 900 s).
REQUANT_CASES = {
    "double": ({"max_left_shift": 0}, "single", True),
    "double_left7": ({"max_left_shift": 7}, "single", False),
    "single": ({"rounding": "single", "max_left_shift": 0}, "half_to_even", False),
    "double_serial8": ({"requant_serial_bits": 8, "max_left_shift": 0}, "single", False),
    "single_bit_serial": ({"rounding": "single", "requant_serial_bits": 1,
                           "max_left_shift": 0}, "half_to_even", False),
    "half_to_even": ({"rounding": "half_to_even", "max_left_shift": 0}, "half_up", False),
    "shift_half_to_even": ({"requant": "shift", "rounding": "half_to_even",
                            "max_left_shift": 0}, "half_up", False),
}
#: The fastest solver for them (requant_half_to_even: yices 11.8 s, z3 177 s, boolector 229 s).
_REQUANT_SOLVER = "yices"
#: Reduced widths of the end-to-end requantizer proofs (acc + bias, free bits of M0).
_REQUANT_VALUE_BITS, _REQUANT_M0_BITS = 8, 4


def _requantizer_proofs():
    for name, (options, wrong, fast) in REQUANT_CASES.items():
        config = requantizer_config(**options)
        shift_only = config.requant == "shift"
        widths = (f"acc + bias {_REQUANT_VALUE_BITS} bits" +
                  ("" if shift_only else f", M0 {_REQUANT_M0_BITS} free bits (top and bottom)") +
                  f", shift [{config.shift_range[0]}, {config.shift_range[1]}], zero point and "
                  f"clamp int8, all free")
        check = functools.partial(RequantizerCheck, config, value_bits=_REQUANT_VALUE_BITS,
                                  multiplier_bits=_REQUANT_M0_BITS)
        depth = len(pipeline_stages(config)) + 1
        spec = ("x·2^shift rounded" if shift_only else
                "MultiplyByQuantizedMultiplier(x, M0, shift)")
        yield Proof(
            name=f"requant_{name}", widths=widths,
            prop=f"RequantizerLanes ({config.rounding}) = clamp({spec} + Z, min, max) of the "
                 f"beat {depth - 1} cycles earlier, x = acc + bias (TFLite's integer spec)",
            design=check, mode="bmc", depth=depth, solver=_REQUANT_SOLVER)
        yield Proof(
            name=f"requant_{name}_cover", widths=widths,
            prop="cover: a beat comes out strictly inside the clamp, not the zero point",
            design=check, mode="cover", depth=depth, solver=_REQUANT_SOLVER, fast=fast)
        yield Proof(
            name=f"requant_{name}_mutant_{wrong}", widths=widths,
            prop=f"mutant: the hardware built with rounding {wrong!r} must differ from the spec",
            design=functools.partial(check, hardware=config.replace(rounding=wrong)),
            mode="bmc", depth=depth, solver=_REQUANT_SOLVER, expect="FAIL", fast=fast)
    yield Proof(
        name="requant_srdhm_floor", widths="ab: every product of int32 × 31-bit M0",
        prop="gemmlowp SRDHM's truncating division with its signed nudge = (ab + 2^30) >> 31, "
             "the hardware's bit slice",
        design=SrdhmFloorCheck, mode="bmc", depth=1, solver=_REQUANT_SOLVER, fast=True)
    yield Proof(
        name="requant_srdhm_floor_mutant_nudge", widths="ab: every product",
        prop="mutant: a nudge of 2^30 − 1 must differ",
        design=functools.partial(SrdhmFloorCheck, nudge=(1 << 30) - 1), mode="bmc", depth=1,
        solver=_REQUANT_SOLVER, expect="FAIL", fast=True)


#: The engine's partial sums: a 1×1 int8 grid of kmax 4 under an engine of max_k 16 (4 passes a
#: tile). BMC deep enough for a whole tile.
PARTIAL_SUM_CONFIG = EngineConfig(array=ArrayConfig(rows=1, cols=1, kmax=4), max_k=16, max_n=1,
                                  max_m=1)
_PARTIAL_SUM_DEPTH = 16


def _partial_sum_proofs():
    config = PARTIAL_SUM_CONFIG
    widths = (f"int8 × int8, passes ≤ kmax {config.array.kmax} ({config.array.accumulator_bits}"
              f"-bit rows), tiles ≤ max_k {config.max_k}, partial sums "
              f"{config.partial_sum_bits} bits")
    yield Proof(
        name="partial_sums_os", widths=widths,
        prop="PassSums: every tile's sum sent = exact sum of its passes (no wrap) for every "
             "legal tile",
        design=functools.partial(PartialSumCheck, config), mode="bmc",
        depth=_PARTIAL_SUM_DEPTH, solver="boolector")
    yield Proof(
        name="partial_sums_os_cover_wrap", widths=widths,
        prop="cover: a legal tile whose sum does not fit one bit fewer",
        design=functools.partial(PartialSumCheck, config), mode="cover",
        depth=_PARTIAL_SUM_DEPTH, solver="boolector")
    yield Proof(
        name="partial_sums_os_mutant_narrow",
        widths=f"{widths}, PassSums built with {config.partial_sum_bits - 1} bits",
        prop="mutant: partial sums one bit narrower wrap",
        design=functools.partial(PartialSumCheck, config, hardware=narrower(config)),
        mode="bmc", depth=_PARTIAL_SUM_DEPTH, solver="boolector", expect="FAIL")


#: RowSums (weight-stationary): one-column int8 grid of one row (a K tile is one product),
#: commands of up to 2 rows of X, 2 N tiles, 2 K tiles (max_k 2). BMC deeper than the largest
#: command: 2 · 2 · 2 rows, one a cycle, and RowSums' latency (max_k 4 at depth 20 did not
#: close in 400 s: step 13 took minutes).
ROW_SUM_CONFIG = EngineConfig(array=ArrayConfig(rows=1, cols=1, dataflow="weight_stationary"),
                              max_k=2, max_n=2, max_m=2)
_ROW_SUM_DEPTH = 12


def _row_sum_proofs():
    config = ROW_SUM_CONFIG
    widths = (f"int8 × int8, weight-stationary {config.array.rows}×{config.array.cols}, "
              f"m ≤ {config.max_m}, n_tiles ≤ {config.max_n_tiles}, k_tiles ≤ "
              f"{config.max_k_tiles}, K ≤ max_k {config.max_k}, partial sums "
              f"{config.partial_sum_bits} bits")
    check = functools.partial(RowSumCheck, config)
    yield Proof(
        name="partial_sums_ws", widths=widths,
        prop="RowSums: one row out per row of an N tile's final K tile, ROW_SUMS_LATENCY "
             "later, = exact sum over its K tiles (no wrap), last on row m − 1, its N tile; "
             "never more than m · n_tiles rows (BMC)",
        design=check, mode="bmc", depth=_ROW_SUM_DEPTH, solver="boolector")
    yield Proof(
        name="partial_sums_ws_cover", widths=widths,
        prop="cover: a legal row whose sum does not fit one bit fewer; the last row of a "
             "command of 2 rows × 2 N tiles",
        design=check, mode="cover", depth=_ROW_SUM_DEPTH, solver="boolector", fast=True)
    yield Proof(
        name="partial_sums_ws_mutant_narrow",
        widths=f"{widths}, RowSums built with {config.partial_sum_bits - 1} bits",
        prop="mutant: partial sums one bit narrower wrap",
        design=functools.partial(check, hardware=narrower(config)),
        mode="bmc", depth=_ROW_SUM_DEPTH, solver="boolector", expect="FAIL", fast=True)


@functools.cache
def proofs(fast=False):
    """Every proof, cover and mutant, in a stable order; only the fast ones with ``fast``
    (without elaborating every requantizer configuration to find its rounding shifts)."""
    every = (*_round_shift_proofs(fast), *_shift_window_proofs(), *_requantizer_proofs(),
             *_pe_proofs(), *_partial_sum_proofs(), *_row_sum_proofs(), *_stream_proofs())
    return tuple(p for p in every if p.fast or not fast)
