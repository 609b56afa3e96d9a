"""The requantizer: where accumulators are scaled back to N-bit outputs.

Integer-only inference (Jacob et al. 2018; TFLite's MultiplyByQuantizedMultiplier) computes

    y = clamp(round((acc + bias) · M0 · 2^(shift − 31)) + Z_out, act_min, act_max)

with an int32 M0 in [2^30, 2^31) (real multiplier M = M0·2^(shift−31)). Every rounding mode of
:data:`hw.config.REQUANT_ROUNDINGS` is built exactly as :func:`golden.tflite.requantize` defines it.

The work is sized to the grid (:attr:`hw.config.ArrayConfig.lanes`): an output-stationary pass of
depth K yields R·C results every K cycles, so a row of C accumulators is requantized as
``ceil(C / lanes)`` beats of ``lanes`` outputs by one pipeline::

    rows → serialiser (lane-wide beats) → RequantizerLanes (free-running) → gather → FIFO → rows

Parameters are not carried down the pipeline: each stage reads the one it needs (bias, M0,
shift) through a read port one cycle ahead, from registers (:class:`ParameterRegisters`) or from
a channel table in block RAM (:class:`ChannelTable`).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden.tflite import INT32_MAX, INT32_MIN

from .config import M0_BITS, ceil_div
from .dsp_pe import mult18x18d, platform_family
from .pe import operand_shape
from .systolic import AccumulatorRow

__all__ = [
    "ChannelTable", "ParameterRegisters", "Requantizer", "RequantizerLanes", "ResultRow",
    "FIFO_LATENCY", "FINE_SHIFT_BITS", "TABLE_LOADED_LATENCY", "TABLE_TAKE_LATENCY",
    "channel_params", "coarse_window", "fine_window", "parameter_members", "pipeline_stages",
    "requantizer_fifo_depth", "requantizer_latency", "round_shift", "shift_decode",
    "shift_window",
]

#: Bits of a rounding shift's amount left to the last of its two steps (:func:`shift_window`).
FINE_SHIFT_BITS = 2
#: Cycles from a row written into SyncFIFOBuffered to it being visible at its read port.
FIFO_LATENCY = 2
#: Width of one DSP multiply of the requantizer's product (SB_MAC16, MULT18X18D).
DSP_CHUNK = 16
#: Width of M0: an unsigned Q0.31 fraction in [2^30, 2^31).
MULTIPLIER_BITS = M0_BITS
#: Width of the run-time shift, TFLite convention (positive = left), in [−31, 30].
SHIFT_BITS = 6
#: Bits of the product below the binary point of M = M0 · 2^(shift − 31).
FRACTION_BITS = 31
#: The bias-added accumulator is TFLite's int32.
ACC_BITS = 32

_PARAMS = ("bias", "multiplier", "shift")


def ResultRow(out_shape, cols):
    """Layout of one row of requantized outputs."""
    return data.StructLayout({"y": data.ArrayLayout(out_shape, cols), "last": 1})


def _field_shapes(config):
    shapes = {"bias": signed(ACC_BITS), "shift": signed(SHIFT_BITS)}
    if config.requant == "multiplier":
        shapes["multiplier"] = unsigned(MULTIPLIER_BITS)
    return shapes


def channel_params(config, channels):
    """Layouts of the per-channel run-time parameters, by name: ``bias`` (int32, one per
    column), ``shift`` (TFLite convention) and, unless shift-only, ``multiplier`` (M0), one of
    each per channel."""
    counts = {"bias": config.cols}
    return {name: data.ArrayLayout(shape, counts.get(name, channels))
            for name, shape in _field_shapes(config).items()}


def parameter_members(config, *, ports=True):
    """The requantizer's run-time parameter members: output zero point and clamp and, when
    ``ports``, the channel parameters (:func:`channel_params`) as ports."""
    out_shape = operand_shape(*config.out_range)
    members = {name: In(out_shape) for name in ("output_zero_point", "act_min", "act_max")}
    if ports:
        members.update((name, In(layout)) for name, layout in
                       channel_params(config, config.requant_channels).items())
    return members


def row_span(config):
    """Cycles from a row's first lane group entering the requantizer's lanes to its last:
    (groups − 1) · :attr:`ArrayConfig.requant_beat_interval`."""
    return (config.requant_groups - 1) * config.requant_beat_interval


def requantizer_latency(config):
    """:attr:`Requantizer.latency` of ``config``: its pipeline and its output FIFO."""
    return len(pipeline_stages(config)) + FIFO_LATENCY


def requantizer_fifo_depth(config):
    """:attr:`Requantizer.fifo_depth` of ``config``: rows of output buffer, enough that
    reserving room never slows a ready sink."""
    groups = config.requant_groups
    return ceil_div(groups - 1 + requantizer_latency(config) + 1, groups) + 1


def shift_decode(amount, width):
    """``mask`` of a rounding right shift of a ``width``-bit value by ``amount``: the bits the
    shift discards (2^amount − 1). Registering it splits a rounding shift's decode from its
    add; the rounding addends are slices of it (:func:`_round_addend`)."""
    return ~(Const((1 << width) - 1, width) << amount)[:width]


def _round_addend(value, amount, mask, mode):
    """``(addend, carry)`` that make ``(value + addend + carry) >> amount`` the quotient
    ``value`` / 2^``amount`` rounded under ``mode``, with ``mask`` = :func:`shift_decode`:
    one add ahead of a plain arithmetic shift instead of a compare of the discarded bits.
    ``mask >> 1`` is 2^(amount−1) − 1, one below the half; a carry completes it to the half
    when the mode rounds a tie up (for ``half_to_even``: when the floor is odd, bit ``amount``
    of ``value``), and ``toward_zero`` adds the whole mask to a negative value."""
    negative, nonzero, below = value[-1], mask[0], mask[1:]
    if mode == "floor":
        return Const(0), Const(0)
    if mode == "toward_zero":
        return Mux(negative, mask, 0), Const(0)
    if mode == "half_up":
        return below, nonzero
    if mode == "half_away_from_zero":
        return below, nonzero & ~negative
    if mode == "half_to_even":
        # The floor's lowest bit; from amount = width on it is the sign (the floor is 0 or −1).
        reach = 1 << len(amount)
        bits = [*value, *[negative] * max(reach - len(value), 0)][:reach]
        return below, nonzero & Array(bits)[amount]
    raise ValueError(f"mode must be a golden.rounding mode, not {mode!r}")


def _add_carry(value, addend, carry):
    """``value + addend + carry`` (signed, one bit wider than ``value``) as one adder: the
    carry enters below the lowest bit."""
    width = len(value) + 1
    total = Cat(carry, value).as_signed() + Cat(Const(1, 1), addend).as_unsigned()
    return total[1:width + 1].as_signed()


def coarse_window(value, amount, width):
    r"""First half of :func:`shift_window`: ``value >> (amount`` rounded down to a multiple of
    2^:data:`FINE_SHIFT_BITS`\ ``)``, only the bits the fine shift reaches
    (``width + 2^FINE_SHIFT_BITS − 1``), whether the coarse quotient's bits above them all
    equal its sign, the fine amount and ``value``'s sign. Two steps with a register between
    them cost half the LUTs of one: ABC (Yosys) flattens a shifter without a register inside
    into one wide multiplexer per bit."""
    step = 1 << FINE_SHIFT_BITS
    keep = width + step - 1
    coarse, fine = amount[FINE_SHIFT_BITS:], amount[:FINE_SHIFT_BITS]
    negative = value[-1]

    def bit(index):
        return value[index] if index < len(value) else negative

    offsets = range(1 << len(coarse))
    bits = Cat(*(Array(bit(step * k + i) for k in offsets)[coarse] for i in range(keep)))
    # Whether the bits above the kept ones all equal the sign (the kept bits' top one is the
    # fine step's to check), for each coarse offset: the offsets share their groups of bits,
    # from the top down.
    fits, above = [], Const(1)
    for k in reversed(offsets):
        group = [value[i] for i in range(step * k + keep, min(step * (k + 1) + keep,
                                                                 len(value)))]
        same = Cat(*(g ^ negative for g in group)).any() if group else Const(0)
        above = above & ~same
        fits.insert(0, above)
    return bits, Array(fits)[coarse], fine, negative


def fine_window(bits, fits, fine, negative, width):
    """Second half of :func:`shift_window`, on :func:`coarse_window`'s registered results:
    ``(low, inside, negative)``."""
    step = 1 << FINE_SHIFT_BITS
    low = Cat(*(Array(bits[i + j] for j in range(step))[fine] for i in range(width)))
    # The kept bits above the window, for each fine amount, all equal the sign.
    clear = [~Cat(*(bits[i] ^ negative for i in range(width - 1 + j, len(bits)))).any()
             for j in range(step)]
    return low, fits & Array(clear)[fine], negative


def shift_window(value, amount, width):
    """``(low, inside, negative)`` of the arithmetic shift ``value >> amount``: its low
    ``width`` bits, whether it fits ``width`` signed bits, and its sign. Only the bits the
    window needs are shifted, in two steps (:func:`coarse_window` then :func:`fine_window`,
    one register apart in :class:`RequantizerLanes`), and the fit comes from the bits above
    the window (all equal to the sign) instead of a shift of the whole value and a compare
    of its top."""
    return fine_window(*coarse_window(value, amount, width), width)


def round_shift(value, amount, mode):
    """``value`` / 2^``amount`` rounded with a :data:`golden.rounding.ROUNDING_MODES` rule.

    ``value`` is signed, ``amount`` an unsigned run-time shift of at most ``len(value)``
    (beyond it the rounding addend stops at the value's width: ``formal/`` finds −2^31 / 2^48
    rounding to −1 at 32 bits with ties away from zero; every shift the requantizer builds
    stays within its value's width). The rounding is one add
    (:func:`_round_addend`) ahead of an arithmetic shift. (:class:`RequantizerLanes` builds
    the same arithmetic in registered steps: the decode, the add, and the two steps of a
    shift of only the window the output needs, :func:`shift_window`.)
    """
    mask = shift_decode(amount, len(value))
    return _add_carry(value, *_round_addend(value, amount, mask, mode)) >> amount


def _fits(value, width):
    """Whether signed ``value`` fits ``width`` signed bits: its top bits all equal (LUTs
    only, no carry chain)."""
    if len(value) <= width:
        return Const(1)
    top = value[width - 1:]
    return ~top.any() | top.all()


def _saturate(value, width):
    """Signed ``value`` saturated to ``width`` signed bits: where its top bits are not all
    equal (:func:`_fits`), the bound of its sign. No compare, one LUT per bit."""
    negative = value[-1]
    return Mux(_fits(value, width), value[:width],
               Mux(negative, Const(-(1 << (width - 1)), signed(width)),
                   Const((1 << (width - 1)) - 1, signed(width))))[:width].as_signed()


def _offset(value):
    """``value`` (signed, w bits) + 2^(w−1) as an unsigned w-bit number: its sign bit
    inverted. Registered in the stage before the multiply, so no LUT sits in front of a DSP."""
    width = len(value)
    return (value.as_unsigned() ^ (1 << (width - 1)))[:width]


def _partial_operands(offset, multiplier):
    """The ``DSP_CHUNK``-bit operand pairs of :func:`_partial_products`, in its order."""
    value_chunks = [offset[i:i + DSP_CHUNK] for i in range(0, len(offset), DSP_CHUNK)]
    mult_chunks = [multiplier[i:i + DSP_CHUNK] for i in range(0, len(multiplier), DSP_CHUNK)]
    return [(a, b) for a in value_chunks for b in mult_chunks]


def _partial_products(offset, multiplier):
    """``DSP_CHUNK``-square unsigned partial products of ``offset`` (:func:`_offset` of the
    signed value) × ``multiplier`` (unsigned), each one DSP multiply with a register right
    behind it; :meth:`RequantizerLanes._multiply` subtracts the offset's share.
    Returns [(product, weight exponent), ...]."""
    value_chunks = [(offset[i:i + DSP_CHUNK], i) for i in range(0, len(offset), DSP_CHUNK)]
    mult_chunks = [(multiplier[i:i + DSP_CHUNK], i)
                   for i in range(0, len(multiplier), DSP_CHUNK)]
    return [(a * b, i + j) for a, i in value_chunks for b, j in mult_chunks]


def _add_pairs(terms):
    """One adder level: neighbouring ``(value, exponent)`` terms added in pairs."""
    terms = sorted(terms, key=lambda term: term[1])
    merged = []
    for index in range(0, len(terms) - 1, 2):
        (a, ea), (b, eb) = terms[index], terms[index + 1]
        merged.append((a + (b << (eb - ea)), ea))
    if len(terms) % 2:
        merged.append(terms[-1])
    return merged


def _adder_levels(count):
    levels = 0
    while count > 1:
        count, levels = ceil_div(count, 2), levels + 1
    return levels


def pipeline_stages(config):
    """Names of :class:`RequantizerLanes`' registered stages for ``config``, in order."""
    names = ["acc", "fetched", "biased", "saturated"]
    if config.requant == "shift":
        names.append("decoded")
    else:
        # Only a serial multiply shifts its operand left (saturated); the parallel one
        # shifts its product right by that much less instead.
        if config.rounding == "double" and config.max_left_shift > 0 and \
                config.requant_serial_bits is not None:
            names.append("left_shifted")
        if config.requant_serial_bits == 1:
            names += [f"serial{step}" for step in range(config.requant_beat_interval)]
            return names + ["rounded", "zero_point", "out"]
        if config.requant_serial_bits is not None:
            names += [f"serial{step}" for step in range(config.requant_beat_interval)]
            names.append("product")
        else:
            names.append("partial")
            terms = ceil_div(ACC_BITS, DSP_CHUNK) * ceil_div(MULTIPLIER_BITS, DSP_CHUNK) + 1
            names += [f"sum{level}" for level in range(_adder_levels(terms))]
    return names + ["round_add", "coarse_shift", "round_shift", "zero_point", "out"]


class _Pipeline:
    """Builds :class:`RequantizerLanes` one registered stage at a time, free-running (no
    stall), and records the stages so that the latency can be checked against them."""

    def __init__(self, m, valid, last, addr):
        self.m = m
        self.valid, self.last, self.addr = valid, last, addr
        self.stages = []
        self._fetches = []

    def fetch(self, name, port, lanes):
        """Read ``port`` (a synchronous read port) at the current beat's address. Its data
        arrive with the next stage and are registered in the one after, so that no stage
        starts at a block RAM's slow output; returns a list to be filled then (use it two
        stages after this call)."""
        self.m.d.comb += port.addr.eq(self.addr)
        fetched = []
        self._fetches.append([0, name, [port.data[j] for j in range(lanes)], fetched])
        return fetched

    def hold(self, names, reads=()):
        """Stages ``names`` as one held beat: beats at least ``len(names)`` (≥ 3) cycles apart
        (a serial multiply) need no register per stage, so the beat's last/addr are held once
        and a countdown marks when it leaves. ``reads``: ``(name, port, lanes)`` read at the
        held address, their data registered and returned (usable when the beat leaves).
        No earlier read may be in flight."""
        assert not self._fetches, "a parameter read in flight across held stages"
        assert len(names) >= 3, names
        m = self.m
        index = len(self.stages) + 1
        remaining = Signal(range(len(names) + 1), name=f"s{index}_remaining")
        last = Signal(name=f"s{index}_last")
        addr = Signal.like(self.addr, name=f"s{index}_addr")
        with m.If(self.valid):
            m.d.sync += [remaining.eq(len(names)), last.eq(self.last), addr.eq(self.addr)]
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        results = []
        for name, port, lanes in reads:
            m.d.comb += port.addr.eq(addr)
            data = [Signal.like(port.data[j], name=f"s{index}_{name}_{j}") for j in range(lanes)]
            m.d.sync += [d.eq(port.data[j]) for j, d in enumerate(data)]
            results.append(data)
        self.stages.extend(names)
        self.valid, self.last, self.addr = remaining == 1, last, addr
        return results

    def stage(self, name, values):
        """Register ``values`` (a list, or a list of lists) and the beat's valid/last/addr."""
        def register(value, label):
            if isinstance(value, list):
                return [register(v, f"{label}_{i}") for i, v in enumerate(value)]
            reg = Signal.like(value, name=label) if isinstance(value, Signal) else \
                Signal(value.shape(), name=label)
            self.m.d.sync += reg.eq(value)
            return reg

        index = len(self.stages) + 1
        self.stages.append(name)
        result = register(values, f"s{index}_{name}")
        for fetch in list(self._fetches):
            fetch[0] += 1
            if fetch[0] == 2:
                fetch[3].extend(register(fetch[2], f"s{index}_{fetch[1]}"))
                self._fetches.remove(fetch)
        self.valid, self.last, self.addr = (
            register(self.valid, f"s{index}_valid"), register(self.last, f"s{index}_last"),
            register(self.addr, f"s{index}_addr"))
        return result


class RequantizerLanes(wiring.Component):
    """``lanes`` requantizer datapaths in one free-running pipeline.

    Parameters
    ----------
    config : :class:`hw.config.ArrayConfig`
        Rounding, requantizer kind, widths; ``config.accumulator_bits`` is the input width.
    lanes : int
        Outputs per beat.
    addr_width : int
        Width of the parameter address each beat carries.

    Members
    -------
    i : ``In(stream.Signature({acc: lanes × signed(accumulator_bits), addr, last},
        always_ready=True))``
        One beat per cycle at most; ``addr`` selects the beat's parameters.
    o : ``Out(stream.Signature({y: lanes × out, last}, always_ready=True))``
        The beat's outputs, exactly :attr:`latency` cycles after it entered. The consumer must
        take every beat (the producer reserves room beforehand).
    bias_read, shift_read, multiplier_read : ``In(memory.ReadPort.Signature(addr_width,
        lanes × field))``
        Synchronous reads: the pipeline drives ``addr`` one cycle before it uses ``data``.
        ``multiplier_read`` exists unless ``config.requant == "shift"``.
    output_zero_point, act_min, act_max : ``In(out)``
        Run-time output parameters; hold them while beats are in flight.

    Stages (one register each; :attr:`stage_names`): bias add saturated to int32 → 16×16
    partial products of × M0 (the left shift of x·2^shift is the same product read further
    up; a serial "double" lane shifts its operand in a stage of its own) → adder levels (the
    rounding shift decoded beside the last) → the rounding addend added → coarse, then fine
    shift of the output's window → zero point → clamp. No stage holds a variable shift, a
    compare and a wide add in series.
    """

    def __init__(self, config, *, lanes, addr_width):
        self._config = config
        self._lanes = lanes
        out_shape = operand_shape(*config.out_range)
        members = {
            "i": In(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(signed(config.accumulator_bits), lanes),
                "addr": unsigned(addr_width), "last": 1}), always_ready=True)),
            "o": Out(stream.Signature(ResultRow(out_shape, lanes), always_ready=True)),
            "output_zero_point": In(out_shape),
            "act_min": In(out_shape),
            "act_max": In(out_shape),
        }
        for name, shape in _field_shapes(config).items():
            members[f"{name}_read"] = In(memory.ReadPort.Signature(
                addr_width=addr_width, shape=data.ArrayLayout(shape, lanes)))
        super().__init__(members)

    @property
    def _left_shifts(self):
        return self._config.max_left_shift > 0

    @property
    def stage_names(self):
        """The registered stages, in order, as :meth:`elaborate` builds them."""
        return pipeline_stages(self._config)

    @property
    def latency(self):
        """Cycles from a beat on ``i`` to its outputs on ``o``."""
        return len(self.stage_names)

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        lanes = range(self._lanes)
        pipe = _Pipeline(m, self.i.valid, self.i.p.last, self.i.p.addr)
        multiply = cfg.requant == "multiplier"
        double = multiply and cfg.rounding == "double"
        serial = cfg.requant_serial_bits is not None
        # A serial "double" multiply shifts its operand left first (stage left_shifted).
        left_stage = double and self._left_shifts and serial
        # The shift is needed right after the bias (shift-only, the left shift of a serial
        # "double" build, the parallel one's nudge) or only once the product is complete.
        early_shift = not multiply or (double and self._left_shifts)

        def read(name):
            """Issue a read of ``name``'s parameters now; usable two stages later."""
            return pipe.fetch(name, getattr(self, f"{name}_read"), self._lanes)

        # Stages 1 and 2: the accumulators, while the bias is read and registered.
        bias = read("bias")
        acc = pipe.stage("acc", [self.i.p.acc[j] for j in lanes])
        acc = pipe.stage("fetched", acc)

        # Stages 3 and 4: bias, then saturation. TFLite's accumulator is int32; outside it
        # TFLite is undefined and golden raises, so the hardware saturates rather than wraps.
        # The bit-serial lane (requant_serial_bits = 1) needs the shift when its product starts.
        bit_serial = multiply and cfg.requant_serial_bits == 1
        shift = read("shift") if early_shift or bit_serial else None
        multiplier = read("multiplier") if multiply and not left_stage else None
        summed = pipe.stage("biased", [acc[j] + bias[j] for j in lanes])
        if left_stage:
            multiplier = read("multiplier")     # used after the left shift
        biased = [_saturate(s, ACC_BITS) for s in summed]
        if multiply and not serial:
            biased = [_offset(b) for b in biased]   # the multiply's operand, ready for a DSP
        biased = pipe.stage("saturated", biased)

        if multiply:
            decoded, mode = self._multiply(m, platform, pipe, read, biased, shift, multiplier)
        else:
            # x·2^shift rounded once: x·2^max_left_shift (wiring only) shifted right by
            # max_left_shift − shift, so a left shift is exact and needs no stage of its own.
            mode = "half_up" if cfg.rounding == "single" else cfg.rounding
            decoded = pipe.stage("decoded", [
                self._decode(Cat(Const(0, self._fold), b).as_signed(), s)
                for b, s in zip(biased, shift, strict=True)])

        out_bits = len(self.o.p.y[0])
        narrow = out_bits + 2
        if mode is None:     # the bit-serial lane has rounded already
            windows = [[r[:narrow], _fits(r, narrow), r[-1]] for r in decoded]
        else:
            # Rounding: the rounding addend and carry from the registered decode added to the
            # value at its rounding point, then the output's window of the arithmetic shift
            # (its low `narrow` bits and whether the whole quotient fits them).
            added = pipe.stage("round_add", [
                [self._round_add(value, amount, mask, mode), window]
                for value, amount, mask, window in decoded])
            coarse = pipe.stage("coarse_shift", [list(coarse_window(total, amount, narrow))
                                                 for total, amount in added])
            windows = pipe.stage("round_shift", [list(fine_window(*c, narrow)) for c in coarse])

        # Output zero point and the clamp (fused ReLU/ReLU6 are clamps). The zero point is
        # added to the low `narrow` bits only, while whether the quotient fits them comes
        # from the window: a value beyond `narrow` signed bits is 2^(narrow−1) beyond any
        # zero point of an output `narrow − 2` bits wide, so beyond either clamp bound by
        # its sign. In the same stage the value is compared with the bounds moved by the
        # zero point (registered copies of act_min − Z and act_max − Z, which hold still
        # while rows pass), so the last stage only selects.
        below_bound = Signal(signed(out_bits + 1), name="clamp_below")
        above_bound = Signal(signed(out_bits + 1), name="clamp_above")
        m.d.sync += [below_bound.eq(self.act_min - self.output_zero_point),
                     above_bound.eq(self.act_max - self.output_zero_point)]

        def compared(low, inside, negative):
            low = low.as_signed()
            return [(low + self.output_zero_point)[:out_bits],
                    Mux(inside, low < below_bound, negative),
                    Mux(inside, low > above_bound, ~negative)]

        shifted = pipe.stage("zero_point", [compared(*w) for w in windows])
        out = pipe.stage("out", [
            Mux(below, self.act_min, Mux(above, self.act_max, total))[:out_bits]
            for total, below, above in shifted])
        m.d.comb += [self.o.p.y[j].eq(out[j]) for j in lanes]
        m.d.comb += [self.o.valid.eq(pipe.valid), self.o.p.last.eq(pipe.last)]
        assert pipe.stages == self.stage_names, (pipe.stages, self.stage_names)
        assert not pipe._fetches, "a parameter was read and never used"
        return m

    def _left_shift(self, value, shift):
        """``value`` · 2^max(shift, 0) saturated to int32, the serial "double" multiply's
        operand; ``shift`` never exceeds ``max_left_shift``. TFLite computes ``x · 2^shift``
        in int32 (undefined beyond it, where golden raises), so the product keeps its 32-bit
        operand whatever ``max_left_shift`` is. (The parallel multiply shifts nothing: see
        :attr:`_fold`.)"""
        bits = self._config.max_left_shift
        amount = Mux(shift > 0, shift, 0)[:bits.bit_length()]
        # value · 2^amount fits int32 when value's top amount + 1 bits are all equal: one
        # flag per amount from a chain of bit compares, chosen by the amount in parallel
        # with the shift (no wide compare after it).
        width = len(value)
        sign = value[width - 1]
        fits = [Const(1)]
        for j in range(1, bits + 1):
            fits.append(fits[-1] & (value[width - 1 - j] == sign))
        fits += [Const(0)] * ((1 << len(amount)) - len(fits))   # beyond max_left_shift
        overflow = ~Array(fits)[amount]
        shifted = (value << amount)[:width]
        return Mux(overflow, Mux(sign, INT32_MIN, INT32_MAX), shifted)[:ACC_BITS].as_signed()

    @property
    def _fold(self):
        """Left-shift bits the rounding shift takes over: the value is read ``_fold`` bits
        further up and shifted right by ``_fold`` − shift, so that x·2^shift needs no shifter
        and no stage of its own (0 for a serial "double" multiply: its operand is shifted
        left first, saturated, as TFLite computes it)."""
        cfg = self._config
        serial_double = (cfg.requant == "multiplier" and cfg.rounding == "double" and
                         cfg.requant_serial_bits is not None)
        return 0 if serial_double else cfg.max_left_shift

    @property
    def _rounding_points(self):
        """``(add_at, window_from)``: the bit of the decoded value where the rounding addend
        is added, and the bit where the rounded value's right shift (``window``) starts."""
        cfg = self._config
        if cfg.requant == "shift":
            return 0, 0
        if cfg.rounding == "double":     # the product from bit 31 − fold on: SRDHM at fold
            return self._fold, 0
        return 0, FRACTION_BITS - self._fold

    def _decode(self, value, shift):
        """``[value, amount, mask, window]``: the value to round, the right shift its
        rounding addend is for (decoded into ``mask``, :func:`shift_decode`) and the right
        shift of the rounded value that the output window takes.

        "double": ``value`` is x·M0 + nudge from bit 31 − fold, rounded a second time (by
        −shift) at bit fold; other multiplier builds round x·M0 once, by 31 − shift;
        shift-only builds round x·2^fold by fold − shift."""
        cfg = self._config
        fold = self._fold
        right = Mux(shift < 0, -shift, 0)
        # shift ≤ max_left_shift, so fold − shift ≥ 0. Without a fold only the right shift
        # is left (there is no left shift, or the serial lane's operand took it).
        window = (fold - shift if fold else right).as_unsigned()[
            :(fold + FRACTION_BITS).bit_length()]
        if cfg.requant == "shift":
            amount = window
        elif cfg.rounding == "double":
            value = value[FRACTION_BITS - fold:]
            amount = right[:SHIFT_BITS - 1]
        else:
            amount = (FRACTION_BITS - shift).as_unsigned()[:SHIFT_BITS]
        add_at, _ = self._rounding_points
        return [value, amount, shift_decode(amount, len(value) - add_at), window]

    def _round_add(self, value, amount, mask, mode):
        """The decoded ``value`` with its rounding addend and carry (:func:`_round_addend`)
        added at its rounding point, from the bit where the output window starts."""
        add_at, window_from = self._rounding_points
        upper = value[add_at:].as_signed()
        total = Cat(value[:add_at], _add_carry(upper, *_round_addend(upper, amount, mask, mode)))
        return total[window_from:]

    def _multiply(self, m, platform, pipe, read, biased, shift, multiplier):
        """× M0 as registered DSP partial products and adder levels. Returns the decoded
        rounding shift of the result and its rounding mode.

        Elaborated for an ECP5, each partial product is a MULT18X18D whose own output
        register is the "partial" stage (no fabric path into or out of the multiplier);
        elsewhere Yosys maps the ``*`` and the register stays in fabric."""
        cfg = self._config
        lanes = range(self._lanes)
        double = cfg.rounding == "double"
        value = biased
        serial = cfg.requant_serial_bits is not None
        if double and self._left_shifts and serial:
            staged = pipe.stage("left_shifted", [[self._left_shift(v, s), s]
                                                 for v, s in zip(value, shift, strict=True)])
            value, shift = [v for v, _ in staged], [s for _, s in staged]
        width = len(value[0])
        # The offset's share, −M0 · 2^(w−1), and (double) SRDHM's nudge 2^30 join the sum as
        # one more term, so that floor((x·M0 + 2^30) / 2^31) is a bit slice of the total.
        product_shape = signed(width + MULTIPLIER_BITS + 1)
        nudge = 1 << (FRACTION_BITS - 1) if double else 0
        if cfg.requant_serial_bits == 1:
            return self._bit_serial(m, pipe, value, shift, multiplier, nudge), None
        if serial:
            product, shift = self._serial_multiply(m, pipe, read, value, shift, multiplier,
                                                   nudge)
            return self._decode_product(pipe, "product", product, shift, product_shape)
        in_dsp = platform_family(platform) == "ecp5"
        products, corrections, exponents = [], [], None
        for j in lanes:
            partials = _partial_products(value[j], multiplier[j])
            exponents = [e for _, e in partials] + [0]
            if in_dsp:
                operands = _partial_operands(value[j], multiplier[j])
                products.append([mult18x18d(m, a=a, b=b, registered=True,
                                            name=f"partial{j}_{k}")[:2 * DSP_CHUNK]
                                 for k, (a, b) in enumerate(operands)])
            else:
                products.append([p for p, _ in partials])
            # Below bit w − 1 the term is the nudge alone: 2^(30 − left shift), the rounding
            # bit of x·2^shift·M0 / 2^31 read at bit 31 − shift (:meth:`_decode`).
            lane_nudge = Const(nudge, width - 1)
            if double and self._fold:
                lane_nudge = lane_nudge >> Mux(shift[j] > 0, shift[j], 0).as_unsigned()
            corrections.append(Cat(lane_nudge[:width - 1], -multiplier[j]).as_signed())
        levels = _adder_levels(len(exponents))
        assert levels >= 2, levels   # ≥ 2 × 2 partial products and the correction
        # Registers hold the terms of each lane, then (when read early) its shift.
        carried = [[s] for s in shift] if shift is not None else [[] for _ in lanes]
        if shift is None and levels == 2:
            shift = read("shift")   # for the last adder level's decode
        if in_dsp:   # the products are registered in the DSPs: the rest in step with them
            rest = pipe.stage("partial", [[c, *cs] for c, cs in
                                          zip(corrections, carried, strict=True)])
            staged = [p + r for p, r in zip(products, rest, strict=True)]
        else:
            staged = pipe.stage("partial", [p + [c] + cs for p, c, cs in
                                            zip(products, corrections, carried, strict=True)])
        for level in range(levels):
            count = len(exponents)
            terms = [_add_pairs(list(zip(regs[:count], exponents, strict=True))) for regs in staged]
            carried = [regs[count:] for regs in staged]
            exponents = [e for _, e in terms[0]]
            if level < levels - 1:
                if shift is None and level == levels - 3:
                    shift = read("shift")
                staged = pipe.stage(f"sum{level}", [[v for v, _ in t] + c
                                                    for t, c in zip(terms, carried, strict=True)])
                continue
            if carried[0]:
                shift = [c[0] for c in carried]
            return self._decode_product(pipe, f"sum{level}", [t[0][0] for t in terms], shift,
                                        product_shape)

    def _decode_product(self, pipe, name, product, shift, product_shape):
        """Stage ``name``: the rounding of each lane's x·M0 (+ nudge) decoded
        (:meth:`_decode`). Returns it and the rounding mode."""
        cfg = self._config
        double = cfg.rounding == "double"
        decoded = pipe.stage(name, [self._decode(p[:product_shape.width].as_signed(), s)
                                    for p, s in zip(product, shift, strict=True)])
        mode = "half_away_from_zero" if double else (
            "half_up" if cfg.rounding == "single" else cfg.rounding)
        return decoded, mode

    def _bit_serial(self, m, pipe, value, shift, multiplier, nudge):
        """x·M0 + ``nudge`` and its rounding right shift, one bit per cycle (stages
        ``serial0…``, then ``rounded``): the running sum adds x·(bit i of M0) and shifts right,
        so the product leaves least significant bit first, and the same step with M0 used up
        goes on shifting, for exactly 31 + the rounding shift's amount cycles; the bits that
        leave are the rounding's half and sticky bits. No barrel shifter, no decode, one
        adder. Beats are :attr:`ArrayConfig.requant_beat_interval` (its most steps) apart.
        Returns the rounded values."""
        cfg = self._config
        double = cfg.rounding == "double"
        steps = cfg.requant_beat_interval
        start = pipe.valid
        width = len(value[0])
        # Product bits kept below the running sum: "double" rounds from bit 31 on only.
        kept = 0 if double else FRACTION_BITS
        mode = "half_away_from_zero" if double else (
            "half_up" if cfg.rounding == "single" else cfg.rounding)
        results = []
        for j, (x, m0, s) in enumerate(zip(value, multiplier, shift, strict=True)):
            x_held = Signal(signed(width), name=f"serial_x_{j}")
            m_rest = Signal(unsigned(MULTIPLIER_BITS), name=f"serial_m0_{j}")
            running = Signal(signed(width + 1), name=f"serial_sum_{j}")
            low = Signal(kept, name=f"serial_low_{j}") if kept else None
            step = Signal(range(steps + 1), name=f"serial_step_{j}")
            total = Signal(range(steps + 1), name=f"serial_total_{j}")
            half = Signal(name=f"serial_half_{j}")
            sticky = Signal(name=f"serial_sticky_{j}")
            # Steps: 31 + the right shift of "double"'s second rounding, or 31 + (31 − shift).
            right = Mux(s < 0, -s, 0) if double else FRACTION_BITS - s
            total_now = Mux(start, FRACTION_BITS + right, total)
            index = Mux(start, 0, step)
            x_now, m_now = Mux(start, x, x_held), Mux(start, m0, m_rest)
            summed = Mux(start, nudge, running) + Mux(m_now[0], x_now, 0)
            leaving = low[0] if kept else summed[0]       # product bit index − kept
            m.d.sync += [x_held.eq(x_now), total.eq(total_now)]
            with m.If(start):
                m.d.sync += [half.eq(0), sticky.eq(0)]
            with m.If(start | (step < total)):
                m.d.sync += [running.eq(summed >> 1), m_rest.eq(m_now >> 1),
                             step.eq(index + 1)]
                if kept:
                    m.d.sync += low.eq(Cat(low[1:], summed[0]))
                # Bits below 31 (+ kept) are the first rounding's ("double": the nudge made
                # it a floor) or, for "single", below the half bit only when the shift is
                # that far; the last bit to leave is the half bit.
                with m.If(index >= FRACTION_BITS):
                    with m.If(index == total_now - 1):
                        m.d.sync += half.eq(leaving)
                    with m.Else():
                        m.d.sync += sticky.eq(sticky | leaving)
            floor = Cat(low, running).as_signed() if kept else running
            negative = running[-1]
            increment = {
                "floor": Const(0),
                "toward_zero": negative & (half | sticky),
                "half_up": half,
                "half_away_from_zero": half & (sticky | ~negative),
                "half_to_even": half & (sticky | floor[0]),
            }[mode]
            results.append(floor + increment)
        pipe.hold([f"serial{i}" for i in range(steps)])
        return pipe.stage("rounded", results)

    def _serial_multiply(self, m, pipe, read, value, shift, multiplier, nudge):
        """x·M0 + ``nudge`` over :attr:`ArrayConfig.requant_beat_interval` cycles (stages
        ``serial0…``), ``requant_serial_bits`` of M0 per cycle, least significant first: each
        cycle adds x·digit to a running sum that shifts its finished low bits out. Beats are
        at least that many cycles apart (the :class:`Requantizer` issues them so), so one set
        of registers per lane serves every beat. Returns the products and the shifts."""
        cfg = self._config
        bits, steps = cfg.requant_serial_bits, cfg.requant_beat_interval
        start = pipe.valid
        width = len(value[0])
        # Low product bits worth keeping: "double" uses the product from bit 31 on only.
        dropped = FRACTION_BITS if cfg.rounding == "double" else 0
        kept = bits * steps - dropped
        products, held_shifts = [], []
        for j, (x, m0) in enumerate(zip(value, multiplier, strict=True)):
            x_held = Signal(signed(width), name=f"serial_x_{j}")
            m_rest = Signal(unsigned(bits * steps), name=f"serial_m0_{j}")
            # |running sum| < 2^(width − 1 + bits): x·digit plus at most 2^-bits of that again.
            running = Signal(signed(width + 1), name=f"serial_sum_{j}")
            x_now = Mux(start, x, x_held)
            digits = Mux(start, m0, m_rest)
            total = Mux(start, nudge, running) + x_now * digits[:bits]
            m.d.sync += [x_held.eq(x_now), m_rest.eq(digits >> bits), running.eq(total >> bits)]
            # x·M0 + nudge with its dropped bits 0: the same bits above them.
            parts = [Const(0, dropped)] if dropped else []
            if kept:
                low = Signal(kept, name=f"serial_low_{j}")     # the finished bits, shifted in
                m.d.sync += low.eq(Cat(low, total[:bits])[bits:])
                parts.append(low)
            products.append(Cat(*parts, running))
            if shift is not None:
                held = Signal.like(shift[j], name=f"serial_shift_{j}")
                m.d.sync += held.eq(Mux(start, shift[j], held))
                held_shifts.append(held)
        reads = [("shift", self.shift_read, self._lanes)] if shift is None else []
        fetched = pipe.hold([f"serial{step}" for step in range(steps)], reads)
        return products, held_shifts or fetched[0]


def _lane_groups(values, lanes, groups):
    """``values`` cut into ``groups`` lists of ``lanes`` (the last padded with zeros)."""
    padded = list(values) + [Const(0)] * (lanes * groups - len(values))
    return [padded[g * lanes:(g + 1) * lanes] for g in range(groups)]


def _select(index, candidates):
    """``candidates[index]`` (a run-time index); no mux for a single candidate."""
    if len(candidates) == 1:
        return candidates[0]
    result = candidates[-1]
    for position in reversed(range(len(candidates) - 1)):
        result = Mux(index == position, candidates[position], result)
    return result


def _addr_width(entries):
    """Address width of ``entries`` parameter entries; never zero-width (no ``[-1:0]`` wires
    in the Verilog)."""
    return max(1, ceil_log2(entries))


def _read_port(addr_width, shape, lanes):
    return memory.ReadPort.Signature(addr_width=addr_width, shape=data.ArrayLayout(shape, lanes))


class ParameterRegisters(wiring.Component):
    """The requantizer's parameters as ports, read lane group by lane group.

    Parameters
    ----------
    config : :class:`hw.config.ArrayConfig`
        ``per_channel`` decides whether M0 and shift are per column or one for all.

    Members
    -------
    bias : ``In(cols × signed(32))``; multiplier : ``In(channels × unsigned(31))`` (unless
    shift-only); shift : ``In(channels × signed(6))``
        Run-time parameters (:func:`channel_params`), held while rows are in flight.
    bias_read, multiplier_read, shift_read : ``Out(memory.ReadPort.Signature(groups bits,
        lanes × field))``
        Synchronous reads of lane group ``addr`` (columns ``addr·lanes …``), like a memory.
    """

    def __init__(self, config):
        self._config = config
        groups = config.requant_groups
        members = {name: In(layout)
                   for name, layout in channel_params(config, config.requant_channels).items()}
        for name, shape in _field_shapes(config).items():
            members[f"{name}_read"] = Out(_read_port(_addr_width(groups), shape, config.lanes))
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        for name in _field_shapes(cfg):
            port, values = getattr(self, f"{name}_read"), getattr(self, name)
            columns = [values[j if name == "bias" or cfg.per_channel else 0]
                       for j in range(cfg.cols)]
            groups = _lane_groups(columns, cfg.lanes, cfg.requant_groups)
            for lane in range(cfg.lanes):
                with m.If(port.en):
                    m.d.sync += port.data[lane].eq(
                        _select(port.addr, [group[lane] for group in groups]))
        return m


#: Largest channel table (words) kept in LUT RAM on ECP5 rather than in a block RAM.
DISTRIBUTED_TABLE_DEPTH = 64
#: Cycles from a tile's last channel beat being taken to :class:`ChannelTable`'s ``loaded``
#: counting it: the registered write, then the count.
TABLE_LOADED_LATENCY = 2
#: Cycles from :class:`ChannelTable`'s ``limit`` rising above the tiles taken to a beat being
#: taken: whether there is room is a register.
TABLE_TAKE_LATENCY = 1


class ChannelTable(wiring.Component):
    """Per-channel (bias, M0, shift) of up to ``depth`` tiles of ``cols`` channels, in block
    RAM, read lane group by lane group at the requantizer stage that needs each field.

    Parameters
    ----------
    config : :class:`hw.config.ArrayConfig`
    depth : int
        Entries (tiles of ``cols`` output channels).

    Members
    -------
    channels : ``In(stream.Signature(channel_params(config, cols)))``
        One beat per tile, tile 0 first; taken while fewer than ``limit`` are, one beat every
        ``requant_groups`` cycles (each lane group is a write).
    limit : ``In(range(depth + 1))``
        Tiles to take: beats are taken from :data:`TABLE_TAKE_LATENCY` cycles after it rises
        above the count. Reset clears the count.
    loaded : ``Out(range(depth + 1))``
        Tiles completely written: a tile counts :data:`TABLE_LOADED_LATENCY` cycles after its
        last beat is taken (the writes are registered), and is readable from then on.
    bias_read, multiplier_read, shift_read : ``Out(memory.ReadPort.Signature(...))``
        Address ``tile · 2^⌈log2 groups⌉ + group``: :meth:`address`.
    """

    def __init__(self, config, depth):
        self._config = config
        self._depth = depth
        self._group_bits = ceil_log2(config.requant_groups)
        members = {
            "channels": In(stream.Signature(data.StructLayout(
                channel_params(config, config.cols)))),
            "limit": In(range(depth + 1)),
            "loaded": Out(range(depth + 1)),
        }
        for name, shape in _field_shapes(config).items():
            members[f"{name}_read"] = Out(_read_port(self.addr_width, shape, config.lanes))
        super().__init__(members)

    @property
    def addr_width(self):
        return _addr_width(self._depth << self._group_bits)

    def address(self, tile, group):
        """The read address of lane group ``group`` of tile ``tile``."""
        return Cat(group[:self._group_bits], tile) if self._group_bits else tile

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        groups = cfg.requant_groups
        group = Signal(range(groups)) if groups > 1 else Const(0, 1)
        last_group = group == groups - 1
        # Writes are registered (address, data, enable), so that no compare or mux sits in
        # front of the LUT RAM's write decode; a tile counts as loaded once its last write
        # has reached the table (``loaded`` lags the internal count by that cycle).
        taken = Signal.like(self.loaded)
        # taken < limit, in a register (so the compare is not in front of every write
        # enable): the limit is stable while a command runs, and a tile is taken only here.
        room = Signal()
        write = self.channels.valid & room
        m.d.comb += self.channels.ready.eq(room & last_group)
        m.d.sync += [self.loaded.eq(taken),
                     room.eq(Mux(write & last_group, taken + 1, taken) < self.limit)]
        with m.If(write):
            if groups > 1:
                m.d.sync += group.eq(Mux(last_group, 0, group + 1))
            with m.If(last_group):
                m.d.sync += taken.eq(taken + 1)
        depth = max(2, self._depth << self._group_bits)
        # On ECP5 a small table goes in LUT RAM: a DP16KD's 5.8 ns clock-to-output would
        # limit the stage that registers the parameters (120 MHz on the 8×8 engine).
        attrs = ({"ram_style": "distributed"}
                 if platform_family(platform) == "ecp5" and depth <= DISTRIBUTED_TABLE_DEPTH
                 else None)
        write_en = Signal()
        write_addr = Signal(self.addr_width, reset_less=True)
        m.d.sync += [write_en.eq(write), write_addr.eq(self.address(taken, group))]
        # The write data is selected by `group` into a register. Staging the whole beat in a
        # shift register instead (no mux) measured worse on the 8×8 engine (120.0 against
        # 124.5 MHz, median of three seeds): its 552 registers crowd the placement.
        for name, shape in _field_shapes(cfg).items():
            lanes = data.ArrayLayout(shape, cfg.lanes)
            m.submodules[f"{name}_table"] = table = memory.Memory(
                shape=lanes, depth=depth, init=[], attrs=attrs)
            write_port = table.write_port()
            values = getattr(self.channels.p, name)
            beat = _lane_groups([values[j] for j in range(cfg.cols)], cfg.lanes, groups)
            write_data = Signal(lanes, reset_less=True, name=f"{name}_write")
            m.d.sync += [write_data[lane].eq(_select(group, [g[lane] for g in beat]))
                         for lane in range(cfg.lanes)]
            m.d.comb += [write_port.addr.eq(write_addr), write_port.en.eq(write_en),
                         write_port.data.eq(write_data)]
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_read")), table.read_port())
        return m


class Requantizer(wiring.Component):
    """Requantizes rows of ``cols`` accumulators with :attr:`ArrayConfig.lanes` lanes.

    Parameters
    ----------
    config : :class:`hw.config.ArrayConfig`
    table_depth : int or None
        None: the parameters are ports (:class:`ParameterRegisters`). An int: each row names
        its entry ``n`` of a :class:`ChannelTable` of that depth, read through the ``*_read``
        ports.

    Members
    -------
    i : ``In(stream.Signature({acc: cols × signed(accumulator_bits), last[, n]}))``
        A row is taken when its last lane group enters the pipeline: one row every
        :attr:`row_interval` cycles at full rate.
    o : ``Out(stream.Signature({y: cols × out, last}))``
        The requantized row, :attr:`latency` cycles after it was taken (sink ready).
        Backpressure on ``o`` fills a FIFO of :attr:`fifo_depth` rows, then holds ``i``; no
        row is ever dropped or duplicated.
    output_zero_point, act_min, act_max : ``In(out)``
        Run-time; hold them while ``busy``.
    bias, multiplier, shift : ``In(...)`` (``table_depth`` None)
        See :class:`ParameterRegisters`.
    bias_read, multiplier_read, shift_read : ``In(memory.ReadPort.Signature(...))``
        (``table_depth`` given) Connect to a :class:`ChannelTable`'s ports.
    busy : ``Out(1)``
        A row is inside (pipeline or FIFO).
    """

    def __init__(self, config, *, table_depth=None):
        self._config = config
        self._table_depth = table_depth
        out_shape = operand_shape(*config.out_range)
        row = AccumulatorRow(config.accumulator_bits, config.cols)
        if table_depth is not None:
            row = data.StructLayout({**{name: f.shape for name, f in row},
                                     "n": range(table_depth)})
        groups = 1 << ceil_log2(config.requant_groups)
        self._addr_width = _addr_width(groups * (table_depth or 1))
        members = {
            "i": In(stream.Signature(row)),
            "o": Out(stream.Signature(ResultRow(out_shape, config.cols))),
            **parameter_members(config, ports=table_depth is None),
            "busy": Out(1),
        }
        if table_depth is not None:
            for name, shape in _field_shapes(config).items():
                members[f"{name}_read"] = In(_read_port(self._addr_width, shape, config.lanes))
        super().__init__(members)

    @property
    def row_interval(self):
        """Cycles per row at full rate: one lane group per cycle, or per
        :attr:`ArrayConfig.requant_beat_interval` cycles with a serial multiply."""
        return self._config.requant_row_interval

    @property
    def latency(self):
        """Cycles from a row taken on ``i`` (its last lane group) to it on ``o``."""
        return requantizer_latency(self._config)

    @property
    def fifo_depth(self):
        """Rows of output buffer: enough that reserving room never slows a ready sink."""
        return requantizer_fifo_depth(self._config)

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        groups = cfg.requant_groups
        m.submodules.lanes = lanes = RequantizerLanes(cfg, lanes=cfg.lanes,
                                                      addr_width=self._addr_width)
        for name in ("output_zero_point", "act_min", "act_max"):
            m.d.comb += getattr(lanes, name).eq(getattr(self, name))
        if self._table_depth is None:
            m.submodules.parameters = parameters = ParameterRegisters(cfg)
            for name in _field_shapes(cfg):
                m.d.comb += getattr(parameters, name).eq(getattr(self, name))
                wiring.connect(m, getattr(parameters, f"{name}_read"),
                               getattr(lanes, f"{name}_read"))
        else:
            for name in _field_shapes(cfg):
                wiring.connect(m, wiring.flipped(getattr(self, f"{name}_read")),
                               getattr(lanes, f"{name}_read"))

        # Output FIFO with credits: a row enters the pipeline only with room reserved.
        m.submodules.fifo = fifo = SyncFIFOBuffered(
            width=len(self.o.payload.as_value()), depth=self.fifo_depth)
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        m.d.comb += [self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.o.ready),
                     self.busy.eq(credits != self.fifo_depth)]

        # Serialiser: one lane group of the row on i per cycle (no counter for one group:
        # zero-width signals would be [-1:0] vectors in the Verilog).
        group = Signal(range(groups)) if groups > 1 else Const(0, 1)
        # Whether the group is the row's first or last, and whether a credit is left, are
        # registers beside what they describe: `i.ready` (which the accumulator FIFO's read
        # logic waits for) is one gate of registers.
        if groups > 1:
            first, last_group = Signal(init=1), Signal()
        else:
            first, last_group = Const(1), Const(1)
        has_credit = Signal(init=1)
        issue = self.i.valid & (~first | has_credit)
        interval = cfg.requant_beat_interval
        if interval > 1:
            # A serial multiply (RequantizerLanes._serial_multiply) takes a beat every
            # `interval` cycles.
            wait = Signal(range(interval), name="beat_wait")
            issue &= wait == 0
            with m.If(issue):
                m.d.sync += wait.eq(interval - 1)
            with m.Elif(wait != 0):
                m.d.sync += wait.eq(wait - 1)
        row_groups = _lane_groups([self.i.p.acc[j] for j in range(cfg.cols)], cfg.lanes, groups)
        address = group[:ceil_log2(groups)] if groups > 1 else Const(0, 1)
        if self._table_depth is not None:
            address = Cat(address[:ceil_log2(groups)], self.i.p.n) if groups > 1 else \
                self.i.p.n
        m.d.comb += [
            lanes.i.valid.eq(issue),
            lanes.i.p.addr.eq(address),
            lanes.i.p.last.eq(self.i.p.last & last_group),
            self.i.ready.eq(issue & last_group),
        ]
        m.d.comb += [lanes.i.p.acc[lane].eq(_select(group, [g[lane] for g in row_groups]))
                     for lane in range(cfg.lanes)]
        if groups > 1:
            with m.If(issue):
                m.d.sync += [group.eq(Mux(last_group, 0, group + 1)), first.eq(last_group),
                             last_group.eq(group == groups - 2)]
        reserve = issue & first
        next_credits = Signal.like(credits)
        m.d.comb += next_credits.eq(credits - reserve + (self.o.valid & self.o.ready))
        m.d.sync += [credits.eq(next_credits), has_credit.eq(next_credits.any())]

        # Gather: lane groups back into a row, written into the FIFO with its last group.
        gathered = Signal(range(groups)) if groups > 1 else Const(0, 1)
        held = [[Signal.like(lanes.o.p.y[lane], name=f"held{g}_{lane}")
                 for lane in range(cfg.lanes)] for g in range(groups - 1)]
        if groups > 1:
            with m.If(lanes.o.valid):
                m.d.sync += gathered.eq(Mux(gathered == groups - 1, 0, gathered + 1))
                for g, regs in enumerate(held):
                    with m.If(gathered == g):
                        m.d.sync += [reg.eq(lanes.o.p.y[lane])
                                     for lane, reg in enumerate(regs)]
        row = ResultRow(operand_shape(*cfg.out_range), cfg.cols)(fifo.w_data)
        outputs = [y for regs in held for y in regs] + [lanes.o.p.y[j]
                                                        for j in range(cfg.lanes)]
        m.d.comb += [row.y[j].eq(outputs[j]) for j in range(cfg.cols)]
        m.d.comb += [row.last.eq(lanes.o.p.last),
                     fifo.w_en.eq(lanes.o.valid & (gathered == groups - 1))]
        return m
