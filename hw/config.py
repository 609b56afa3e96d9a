"""One frozen object that describes a MAC array completely.

Everything the generator builds is a function of an :class:`ArrayConfig`; saving it to TOML and
loading it back reproduces the same hardware. All parameters are validated in ``__post_init__``,
before any hardware exists, and every error names the parameter, its value and what is allowed.
"""

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from golden.accumulator import WEIGHT_KINDS, accumulator_bits, guard_bits, operand_range
from golden.rounding import ROUNDING_MODES

__all__ = [
    "ArrayConfig", "DATAFLOWS", "EngineConfig", "MAX_K", "MAX_M", "MAX_N",
    "MAX_PRODUCT_PIPELINE", "REQUANT_ROUNDINGS",
    "WEIGHT_KINDS", "ceil_div",
]

DATAFLOWS = ("output_stationary", "weight_stationary")
_DATAFLOW_ALIASES = {"os": "output_stationary", "ws": "weight_stationary"}
#: "double" and "single" are TFLite's two MultiplyByQuantizedMultiplier builds; the rest are
#: single exact roundings of acc·M0 / 2^(31−shift) with the named tie rule (see golden.rounding).
REQUANT_ROUNDINGS = ("double", "single", *ROUNDING_MODES)
REQUANT_KINDS = ("multiplier", "shift")

MAX_DIM = 256
MAX_KMAX = 1 << 20
#: Width of the requantizer's M0 (an unsigned Q0.31 fraction in [2^30, 2^31)).
M0_BITS = 31
#: Most M0 bits a serial requantizer multiply takes per cycle (three cycles at least, so that
#: the shift can be read while the product forms).
MAX_REQUANT_SERIAL_BITS = 15
#: Most product registers a PE may have beyond ``register_product``'s.
MAX_PRODUCT_PIPELINE = 2


def ceil_div(a, b):
    """⌈a / b⌉ for integers, b > 0."""
    return -(-a // b)


def _check_int(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def _check_names(cls, values):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"unknown configuration parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(names))}")


def _toml_pairs(values):
    # TOML has no null: absent means default.
    return [f"{key} = {json.dumps(value)}" for key, value in values.items() if value is not None]


class _Persistent:
    """TOML files, ``replace`` and a digest for a frozen configuration dataclass with
    ``to_dict``/``from_dict``."""

    def to_toml(self):
        return "\n".join(self._toml_lines()) + "\n"

    @classmethod
    def from_toml(cls, text):
        return cls.from_dict(tomllib.loads(text))

    def save(self, path):
        Path(path).write_text(self.to_toml())

    @classmethod
    def load(cls, path):
        return cls.from_toml(Path(path).read_text())

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def digest(self):
        """Short stable hash of every parameter, used to cache builds."""
        return hashlib.sha256(self.to_toml().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ArrayConfig(_Persistent):
    """Parameters of a systolic MAC array with its requantizer.

    Operands
    --------
    rows, cols : int
        Array size, 1..256 each. Output-stationary: ``rows`` batch rows × ``cols`` output
        channels per pass. Weight-stationary: ``rows`` is the reduction depth K of a pass.
    act_bits, act_signed :
        Activation width (2..16) and signedness.
    weight_bits, weight_signed, weight_kind :
        Weight width (1..8). ``weight_kind="binary"`` is 1 bit meaning {−1, +1} (bit 1 = +1);
        ``"ternary"`` is 2-bit signed restricted to {−1, 0, +1}.
    kmax : int or None
        Deepest dot product one pass accumulates. Guard bits and the accumulator width come
        from :func:`golden.accumulator.accumulator_bits`. Weight-stationary arrays reduce over
        their rows, so there ``kmax`` is ``rows`` (deeper products are split into passes).
    input_zero_point_in_hw, weight_zero_point_in_hw : bool
        Subtract a run-time zero point from the operand at the array edge (one more operand
        bit). When off, the host folds the input zero point into the bias (exact, see
        :func:`hw.host.fold_input_zero_point`) and weights must be symmetric.

    Requantizer
    -----------
    requant : ``"multiplier"`` or ``"shift"``
        Multiply by an int32 M0 then shift (M = M0·2^(shift−31)), or shift only (power-of-two
        scales, M = 2^shift).
    rounding : one of :data:`REQUANT_ROUNDINGS`
    per_channel : bool
        One (M0, shift) per output column instead of one per array.
    max_left_shift : int
        Largest positive (left) shift supported, 0..30: multipliers M up to 2^max_left_shift.
        Real models have a few layers with M ≥ 1, so the default 7 accepts M < 128. It costs
        no stage: the requantizer reads its product ``max_left_shift`` bits further up (and
        moves the "double" build's rounding nudge down as far), so the product keeps its
        32-bit operand; only its output window's shift grows by that many places. A serial
        "double" lane (``requant_serial_bits``) shifts its operand in a stage of its own,
        saturated to int32 as TFLite computes it.
    out_bits, out_signed :
        Output width (2..16) and signedness; the run-time clamp [act_min, act_max] lies inside.
    requant_lanes : int or None
        Outputs the requantizer finishes per cycle, 1..``cols``: a row of ``cols`` accumulators
        is requantized as ``ceil(cols / requant_lanes)`` beats. The default (None) is
        :attr:`default_requant_lanes`, the fewest lanes that keep the grid at full rate.

    Pipeline
    --------
    requant_serial_bits : int or None
        Multiply-by-M0 of each requantizer lane as a shift-add over ``ceil(31 / bits)``
        cycles, ``bits`` of M0 per cycle, in logic (for a device whose DSP blocks all go to
        the PEs, e.g. the iCEBreaker's 4×4); a lane then takes a beat every
        :attr:`requant_beat_interval` cycles. 1: bit-serial, the rounding shift too (one
        adder, no barrel shifter; 62 cycles a beat for "double", up to 93 for one
        rounding). None (default): DSP partial products, a beat per cycle.
    register_product : bool
        Register the product inside each PE before accumulating (one more cycle of latency,
        shorter critical path; maps onto DSP output registers).
    product_pipeline : int
        Product registers in each PE beyond ``register_product``'s (needs it), 0..2, one
        more cycle of PE latency each (docs/pe.md): 1 adds the DSP's input registers
        (MULT18X18D, SB_MAC16), or in logic uses the PE's forwarded operands as the first
        register, so that no route from a neighbouring PE runs into a multiplier; 2 also
        registers the DSP's product once more (in fabric behind a MULT18X18D, so that no
        route from the block runs into the accumulator's carry chain). For Fmax; 0 by
        default.
    fifo_depth : int or None
        Result rows buffered at the output; default is enough to run at full rate.
    accumulator_width : int or None
        Output-stationary accumulator width; default (None) is the exact minimum from golden.
        A wider one (up to 32) exists to measure what the exact width saves.
    dsp_pes : int or None
        Elaborated for an FPGA platform with DSP-native PEs (:mod:`hw.dsp_pe`), how many PEs
        (row-major from PE(0, 0)) are built on DSP blocks; None: one per block of the device.
        The build flow sets it from its DSP plan; the generic Verilog ignores it.
    """

    rows: int = 4
    cols: int = 4
    act_bits: int = 8
    act_signed: bool = True
    weight_bits: int = 8
    weight_signed: bool = True
    weight_kind: str = "integer"
    kmax: int | None = None
    dataflow: str = "output_stationary"
    input_zero_point_in_hw: bool = False
    weight_zero_point_in_hw: bool = False
    requant: str = "multiplier"
    rounding: str = "double"
    per_channel: bool = False
    max_left_shift: int = 7
    out_bits: int = 8
    out_signed: bool = True
    requant_lanes: int | None = None
    requant_serial_bits: int | None = None
    register_product: bool = True
    product_pipeline: int = 0
    fifo_depth: int | None = None
    accumulator_width: int | None = None
    dsp_pes: int | None = None
    name: str = field(default="qmac_array")

    def __post_init__(self):
        _check_int("rows", self.rows, 1, MAX_DIM)
        _check_int("cols", self.cols, 1, MAX_DIM)
        _check_int("act_bits", self.act_bits, 2, 16)
        _check_bool("act_signed", self.act_signed)
        _check_choice("weight_kind", self.weight_kind, WEIGHT_KINDS)
        _check_int("weight_bits", self.weight_bits, 1, 8)
        _check_bool("weight_signed", self.weight_signed)
        if self.weight_kind == "binary" and self.weight_bits != 1:
            raise ValueError(
                f"weight_bits must be 1 for weight_kind='binary', not {self.weight_bits}")
        if self.weight_kind == "ternary" and (self.weight_bits != 2 or not self.weight_signed):
            raise ValueError(
                f"weight_kind='ternary' needs weight_bits=2 and weight_signed=True, not "
                f"weight_bits={self.weight_bits}, weight_signed={self.weight_signed}")
        if self.weight_kind == "integer" and self.weight_bits < 2:
            raise ValueError(
                f"weight_bits must be in [2, 8] for weight_kind='integer', not {self.weight_bits} "
                f"(use weight_kind='binary' for 1-bit weights)")
        if self.dataflow in _DATAFLOW_ALIASES:
            object.__setattr__(self, "dataflow", _DATAFLOW_ALIASES[self.dataflow])
        _check_choice("dataflow", self.dataflow, DATAFLOWS)
        if self.kmax is None:
            object.__setattr__(self, "kmax", self.rows if self.weight_stationary else 256)
        if self.weight_stationary:
            _check_int("kmax", self.kmax, 1, MAX_KMAX)
            if self.kmax != self.rows:
                raise ValueError(
                    f"kmax must be rows ({self.rows}) for a weight-stationary array: it reduces "
                    f"over its rows and splits deeper products into passes; not {self.kmax}")
        else:
            _check_int("kmax", self.kmax, 1, MAX_KMAX)
        _check_bool("input_zero_point_in_hw", self.input_zero_point_in_hw)
        _check_bool("weight_zero_point_in_hw", self.weight_zero_point_in_hw)
        if self.weight_zero_point_in_hw and self.weight_kind != "integer":
            raise ValueError(
                f"weight_zero_point_in_hw must be False for weight_kind={self.weight_kind!r}: "
                f"binary and ternary weights are symmetric")
        _check_choice("requant", self.requant, REQUANT_KINDS)
        _check_choice("rounding", self.rounding, REQUANT_ROUNDINGS)
        if self.requant == "shift" and self.rounding == "double":
            raise ValueError(
                "rounding must not be 'double' with requant='shift': a shift-only requantizer "
                f"rounds once; choose one of {', '.join(map(repr, REQUANT_ROUNDINGS[1:]))}")
        _check_bool("per_channel", self.per_channel)
        _check_int("max_left_shift", self.max_left_shift, 0, 30)
        _check_int("out_bits", self.out_bits, 2, 16)
        _check_bool("out_signed", self.out_signed)
        if self.requant_lanes is not None:
            _check_int("requant_lanes", self.requant_lanes, 1, self.cols)
        if self.requant_serial_bits is not None:
            _check_int("requant_serial_bits", self.requant_serial_bits, 1,
                       MAX_REQUANT_SERIAL_BITS)
        _check_bool("register_product", self.register_product)
        _check_int("product_pipeline", self.product_pipeline, 0, MAX_PRODUCT_PIPELINE)
        if self.product_pipeline and not self.register_product:
            raise ValueError(f"product_pipeline={self.product_pipeline} needs "
                             f"register_product=True: its registers follow the product "
                             f"register; not register_product=False")
        if self.fifo_depth is not None:
            _check_int("fifo_depth", self.fifo_depth, self.min_fifo_depth, 1 << 16)
        if self.dsp_pes is not None:
            _check_int("dsp_pes", self.dsp_pes, 0, self.rows * self.cols)
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Verilog-safe identifier, not {self.name!r}")
        exact = accumulator_bits(self.kmax, self.act_range, self.weight_range)
        if exact > 32:
            raise ValueError(
                f"kmax={self.kmax} needs a {exact}-bit accumulator, but the "
                f"requantizer takes int32 (TFLite's accumulator); lower kmax or operand widths")
        if self.accumulator_width is not None:
            if self.weight_stationary:
                raise ValueError("accumulator_width applies to output-stationary arrays only; "
                                 "weight-stationary partial sums are sized per row")
            _check_int("accumulator_width", self.accumulator_width, exact, 32)

    # -- derived quantities --------------------------------------------------------------------

    @property
    def weight_stationary(self):
        return self.dataflow == "weight_stationary"

    @property
    def act_range(self):
        """Range of the activation operand as it enters a multiplier (zero point subtracted)."""
        lo, hi = operand_range(self.act_bits, self.act_signed)
        if self.input_zero_point_in_hw:
            return lo - hi, hi - lo
        return lo, hi

    @property
    def weight_range(self):
        """Range of the weight operand as it enters a multiplier (zero point subtracted)."""
        lo, hi = operand_range(self.weight_bits, self.weight_signed, kind=self.weight_kind)
        if self.weight_zero_point_in_hw:
            return lo - hi, hi - lo
        return lo, hi

    @property
    def guard_bits(self):
        """M of the seeds' 2N+M: ceil(log2(kmax))."""
        return guard_bits(self.kmax)

    @property
    def accumulator_bits(self):
        """Exact minimal signed width of a depth-``kmax`` dot product of the operand ranges,
        unless ``accumulator_width`` asks for a wider one (e.g. a fixed 32 bits, to compare)."""
        if self.accumulator_width is not None:
            return self.accumulator_width
        return accumulator_bits(self.kmax, self.act_range, self.weight_range)

    def partial_sum_bits(self, depth):
        """Exact width of a partial sum over ``depth`` products (weight-stationary columns)."""
        return accumulator_bits(depth, self.act_range, self.weight_range)

    @property
    def out_range(self):
        return operand_range(self.out_bits, self.out_signed)

    @property
    def act_zero_point_range(self):
        return operand_range(self.act_bits, self.act_signed)

    @property
    def weight_zero_point_range(self):
        return operand_range(self.weight_bits, self.weight_signed)

    @property
    def requant_channels(self):
        """Number of (M0, shift) pairs: one per column, or one."""
        return self.cols if self.per_channel else 1

    @property
    def default_requant_lanes(self):
        """The fewest requantizer lanes that keep the grid at full rate.

        Output-stationary: a pass of ``kmax`` beats yields ``rows`` rows, so a row may take up
        to ``kmax // rows`` cycles, i.e. ``ceil(cols / (kmax // rows))`` lanes. Shorter passes
        are still exact; the requantizer's backpressure then paces the grid. Weight-stationary
        grids deliver a row per cycle: ``cols`` lanes.
        """
        if self.weight_stationary:
            return self.cols
        return min(self.cols, ceil_div(self.cols, max(1, self.kmax // self.rows)))

    @property
    def lanes(self):
        """Requantizer lanes actually built: ``requant_lanes`` or its default."""
        return self.requant_lanes if self.requant_lanes is not None else self.default_requant_lanes

    @property
    def requant_groups(self):
        """Beats per row in the requantizer: ``ceil(cols / lanes)``."""
        return ceil_div(self.cols, self.lanes)

    @property
    def requant_beat_interval(self):
        """Cycles between the requantizer's lane-wide beats: 1, or with
        ``requant_serial_bits`` the cycles of its serial multiply (shift-only: 1)."""
        if self.requant_serial_bits is None or self.requant == "shift":
            return 1
        if self.requant_serial_bits == 1:
            # Bit-serial: the 31 fraction bits, then the rounding right shift one bit per
            # cycle: up to 31 ("double"'s second rounding) or 31 − shift (a single rounding).
            lo, _ = self.shift_range
            return M0_BITS + (-lo if self.rounding == "double" else M0_BITS - lo)
        return ceil_div(M0_BITS, self.requant_serial_bits)

    @property
    def requant_row_interval(self):
        """Cycles per row in the requantizer at full rate: lane groups × beat interval."""
        return self.requant_groups * self.requant_beat_interval

    @property
    def shift_range(self):
        """Allowed run-time shift (TFLite convention, positive = left)."""
        return -31, self.max_left_shift

    @property
    def min_fifo_depth(self):
        """Smallest ``fifo_depth``: rows are written on consecutive cycles (a pass's R
        rows, or weight-stationary rows back to back) into a buffered FIFO whose inner queue
        refuses a write in the cycle it hands its last entry to the output register, so a
        burst needs one place beyond itself: R + 1, and 3 for weight-stationary arrays
        (smaller depths stall: tests/hw/test_config_fuzz.py)."""
        return self.rows + 1 if not self.weight_stationary else 3

    # -- persistence (to_dict, from_dict; the rest in _Persistent) -----------------------------

    def to_dict(self):
        values = dataclasses.asdict(self)
        if not self.product_pipeline:   # absent when off: the same digest as before the option
            del values["product_pipeline"]
        return values

    @classmethod
    def from_dict(cls, values):
        _check_names(cls, values)
        return cls(**values)

    def _toml_lines(self):
        return _toml_pairs(self.to_dict())


#: Largest ``max_k``, ``max_n`` and ``max_m`` of a :class:`EngineConfig` (counter widths).
MAX_K = 1 << 16
MAX_N = 1 << 14
MAX_M = 1 << 16


@dataclass(frozen=True)
class EngineConfig(_Persistent):
    """A :class:`hw.engine.GemmEngine`: an :class:`ArrayConfig` and buffer sizes.

    max_k : int
        Deepest reduction a command may ask for, 1..:data:`MAX_K`. The passes
        (output-stationary, at most ``array.kmax`` deep) or K tiles (weight-stationary,
        ``array.rows`` deep) add up exactly in partial sums of :attr:`partial_sum_bits`, at
        most 32 (TFLite's int32 accumulator).
    max_n : int
        Most output channels a command may ask for, 1..:data:`MAX_N` (the channel table;
        output-stationary, also the weight buffer of ``ceil(max_n / cols) · max_k`` words).
    max_m : int
        Weight-stationary: most rows of X per command, 1..:data:`MAX_M` (X is buffered,
        ``max_m · ceil(max_k / rows)`` words, and so are their partial sums).
        Output-stationary engines stream X through two banks of ``max_k`` words and take up
        to :data:`hw.engine.MAX_M_TILES` · rows rows.
    activation_table : bool
        Build a programmable activation table after the requantizer (one per output column,
        2^out_bits entries, loaded at run time and bypassable per command;
        :mod:`hw.engine.activation`). False builds the engine exactly as without it.

    The channel table holds one (bias, M0, shift) per output channel whatever
    ``array.per_channel`` says; per-tensor scales are the same entry N times. In TOML the
    array is the table ``[array]``.
    """

    array: ArrayConfig
    max_k: int = 256
    max_n: int = 64
    max_m: int = 256
    activation_table: bool = False

    def __post_init__(self):
        array = self.array
        if not isinstance(array, ArrayConfig):
            raise TypeError(f"array must be an ArrayConfig, not {array!r}")
        _check_bool("activation_table", self.activation_table)
        for name in ("input_zero_point_in_hw", "weight_zero_point_in_hw"):
            if getattr(array, name):
                raise ValueError(f"array.{name} must be False for the GEMM engine: the host "
                                 "folds the input zero point into the bias")
        _check_int("max_k", self.max_k, 1, MAX_K)
        _check_int("max_n", self.max_n, 1, MAX_N)
        _check_int("max_m", self.max_m, 1, MAX_M)
        bits = accumulator_bits(self.max_k, array.act_range, array.weight_range)
        if bits > 32:
            raise ValueError(f"max_k={self.max_k} needs a {bits}-bit partial sum, but the "
                             "requantizer takes int32 (TFLite's accumulator); lower max_k")

    @property
    def weight_stationary(self):
        return self.array.weight_stationary

    @property
    def partial_sum_bits(self):
        """Exact width of a depth-``max_k`` dot product: the partial sums' lanes."""
        return max(accumulator_bits(self.max_k, self.array.act_range, self.array.weight_range),
                   self.array.accumulator_bits)

    @property
    def max_n_tiles(self):
        return ceil_div(self.max_n, self.array.cols)

    @property
    def max_k_tiles(self):
        """Weight-stationary: most K tiles (``rows`` deep each) of a command."""
        return ceil_div(self.max_k, self.array.rows)

    @property
    def name(self):
        return self.array.name

    def to_dict(self):
        values = {"array": self.array.to_dict(), "max_k": self.max_k, "max_n": self.max_n,
                  "max_m": self.max_m}
        if self.activation_table:   # absent when off: the same digest as before the option
            values["activation_table"] = True
        return values

    @classmethod
    def from_dict(cls, values):
        _check_names(cls, values)
        values = dict(values)
        if "array" not in values:
            raise ValueError("an engine configuration needs its [array] table")
        return cls(ArrayConfig.from_dict(values.pop("array")), **values)

    def _toml_lines(self):
        values = self.to_dict()
        array = values.pop("array")
        return _toml_pairs(values) + ["", "[array]"] + _toml_pairs(array)
