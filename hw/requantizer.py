"""The requantizer: where accumulators are scaled back to N-bit outputs.

Integer-only inference (Jacob et al. 2018; TFLite's MultiplyByQuantizedMultiplier) computes

    y = clamp(round((acc + bias) · M0 · 2^(shift − 31)) + Z_out, act_min, act_max)

with an int32 M0 in [2^30, 2^31) (real multiplier M = M0·2^(shift−31)). Every rounding mode of
:data:`hw.config.REQUANT_ROUNDINGS` is built exactly as :func:`golden.tflite.requantize` defines it.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .pe import operand_shape
from .systolic import AccumulatorRow

__all__ = ["Requantizer", "ResultRow", "channel_params", "round_shift"]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def ResultRow(out_shape, cols):
    """Layout of one row of requantized outputs."""
    return data.StructLayout({"y": data.ArrayLayout(out_shape, cols), "last": 1})


def channel_params(config, channels):
    """Layouts of the per-channel run-time parameters, by name: ``bias`` (int32, one per
    column), ``shift`` (TFLite convention) and, unless shift-only, ``multiplier`` (M0), one of
    each per channel."""
    params = {
        "bias": data.ArrayLayout(signed(32), config.cols),
        "shift": data.ArrayLayout(signed(6), channels),
    }
    if config.requant == "multiplier":
        params["multiplier"] = data.ArrayLayout(unsigned(31), channels)
    return params


def round_shift(value, amount, mode):
    """``value`` / 2^``amount`` rounded with a :data:`golden.rounding.ROUNDING_MODES` rule.

    ``value`` is signed, ``amount`` an unsigned run-time shift. The floor comes from an
    arithmetic shift; the discarded bits decide the increment.
    """
    width = len(value)
    floor = value >> amount
    mask = ~(Const((1 << width) - 1, width) << amount)[:width]
    remainder = value.as_unsigned() & mask
    half = (Const(1, width + 1) << amount)[1:width + 1]
    negative = value[-1]
    above = remainder > half
    tie = (remainder == half) & (amount != 0)
    if mode == "floor":
        increment = Const(0)
    elif mode == "toward_zero":
        increment = negative & (remainder != 0)
    elif mode == "half_up":
        increment = above | tie
    elif mode == "half_away_from_zero":
        increment = above | (tie & ~negative)
    elif mode == "half_to_even":
        increment = above | (tie & floor[0])
    else:
        raise ValueError(f"mode must be a golden.rounding mode, not {mode!r}")
    return floor + increment


def _partial_products(value, multiplier):
    """16×16-bit unsigned partial products of ``value`` (signed) × ``multiplier`` (unsigned).

    Each is one DSP multiply (SB_MAC16, MULT18X18D) with no adder behind it, so the pipeline
    register right after it bounds the DSP's path; :func:`_sum_partials` adds them up a stage
    later. ``value`` is offset by 2^(w−1) to make it unsigned (the product's correction is a
    shifted copy of the multiplier). Returns [(product, weight exponent), ...].
    """
    width = len(value)
    offset = (value.as_unsigned() ^ (1 << (width - 1)))[:width]  # value + 2^(w−1)
    value_chunks = [(offset[i:i + 16], i) for i in range(0, width, 16)]
    mult_chunks = [(multiplier[i:i + 16], i) for i in range(0, len(multiplier), 16)]
    return [(a * b, i + j) for a, i in value_chunks for b, j in mult_chunks]


def _sum_partials(registers, partials, width, multiplier):
    """``value × multiplier`` from its registered partial products (see
    :func:`_partial_products`): Σ p·2^k − multiplier·2^(w−1)."""
    total = 0
    for register, (_, exponent) in zip(registers, partials, strict=True):
        total = total + (register << exponent)
    return total - (multiplier << (width - 1))  # unsigned − unsigned is signed in Amaranth


def _saturate(value, lo, hi):
    return Mux(value < lo, lo, Mux(value > hi, hi, value))


class Requantizer(wiring.Component):
    """Pipelined requantizer for one row of ``cols`` accumulators per beat.

    Stages (each one register): bias add saturated to int32 → 16×16-bit partial products of
    the multiply by M0 (after the left shift, in the "double" build) → their sum → rounding
    shift(s) → + output zero point and clamp.
    ``requant="shift"`` drops the multiplier stage. :attr:`latency` is the number of stages;
    throughput is one row per cycle. Backpressure on ``o`` stalls the whole pipeline, so no
    row is dropped or duplicated.

    ``bias``, ``multiplier``, ``shift``, ``output_zero_point``, ``act_min`` and ``act_max`` are
    run-time parameters; change them only while no row is in flight. With ``per_channel`` there
    is one (multiplier, shift) per column, otherwise one for all. With ``params_per_row``,
    ``bias``, ``multiplier`` and ``shift`` (one per column) are fields of each input row instead
    of ports, so consecutive rows may use different ones (:class:`hw.engine.GemmEngine`).
    """

    def __init__(self, config, *, params_per_row=False):
        self._config = config
        self._params_per_row = bool(params_per_row)
        out_shape = operand_shape(*config.out_range)
        params = channel_params(config, config.cols if params_per_row
                                else config.requant_channels)
        row = AccumulatorRow(config.accumulator_bits, config.cols)
        if params_per_row:
            # Each row brings its own per-column parameters, which travel down the pipeline
            # with it: rows of different output tiles may be in flight at once.
            row = data.StructLayout({**{name: field.shape for name, field in row}, **params})
        members = {
            "i": In(stream.Signature(row)),
            "o": Out(stream.Signature(ResultRow(out_shape, config.cols))),
            "output_zero_point": In(out_shape),
            "act_min": In(out_shape),
            "act_max": In(out_shape),
        }
        if not params_per_row:
            members.update((name, In(layout)) for name, layout in params.items())
        super().__init__(members)

    @property
    def latency(self):
        cfg = self._config
        if cfg.requant == "shift":
            return 3
        return 6 if cfg.rounding == "double" else 5

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        valid, last = self.i.valid, self.i.p.last
        stages = 0

        def next_stage():
            nonlocal valid, last, stages
            stages += 1
            valid, last = self._stage(m, advance, [valid, last], unsigned(1),
                                      f"valid_last{stages}_")

        if self._params_per_row:
            source, channel = self.i.p, (lambda lane: lane)
        else:
            source, channel = self, (lambda lane: lane if cfg.per_channel else 0)
        shift = [source.shift[channel(j)] for j in range(cfg.cols)]
        multiplier = ([source.multiplier[channel(j)] for j in range(cfg.cols)]
                      if cfg.requant == "multiplier" else None)

        def carry(name):
            # Per-row parameters move on with their row; ports stay put.
            nonlocal shift, multiplier
            if self._params_per_row:
                shift = self._stage(m, advance, shift, signed(6), f"{name}_shift")
                if multiplier is not None:
                    multiplier = self._stage(m, advance, multiplier, unsigned(31),
                                             f"{name}_multiplier")

        def left_shift(j):
            return Mux(shift[j] > 0, shift[j], 0)[:max(cfg.max_left_shift.bit_length(), 1)]

        def right_shift(j):
            return Mux(shift[j] < 0, -shift[j], 0)[:6]

        # Stage 1: bias. TFLite's accumulator is int32; outside it TFLite is undefined and
        # golden raises, so the hardware saturates rather than wraps.
        lanes = [_saturate(self.i.p.acc[j] + source.bias[j], INT32_MIN, INT32_MAX)
                 for j in range(cfg.cols)]
        lanes = self._stage(m, advance, lanes, signed(32), "biased")
        carry("biased")
        next_stage()

        if cfg.requant == "shift":
            # Stage 2: a single rounding shift (power-of-two scale).
            mode = "half_up" if cfg.rounding == "single" else cfg.rounding
            if cfg.max_left_shift:
                lanes = [lane << left_shift(j) for j, lane in enumerate(lanes)]
            lanes = [round_shift(lane, right_shift(j), mode) for j, lane in enumerate(lanes)]
            lanes = self._stage(m, advance, lanes, None, "rounded")
            next_stage()
        else:
            # Stages 2 and 3: the 32×31-bit product (after the left shift of the "double"
            # build), as 16×16-bit partial products and then their sum.
            if cfg.rounding == "double" and cfg.max_left_shift:
                lanes = [lane << left_shift(j) for j, lane in enumerate(lanes)]
            partials = [_partial_products(lane, multiplier[j]) for j, lane in enumerate(lanes)]
            registered = [self._stage(m, advance, [p for p, _ in lane_partials], None,
                                      f"partial{j}_")
                          for j, lane_partials in enumerate(partials)]
            carry("partial")
            next_stage()
            product_shape = signed(len(lanes[0]) + 31)
            lanes = [_sum_partials(regs, lane_partials, len(lane), multiplier[j])
                     for j, (regs, lane_partials, lane) in enumerate(
                         zip(registered, partials, lanes, strict=True))]
            lanes = self._stage(m, advance, lanes, product_shape, "product")
            carry("product")
            next_stage()
            if cfg.rounding == "double":
                # Stage 3: SaturatingRoundingDoublingHighMul = floor((x·M0 + 2^30) / 2^31);
                # saturation needs M0 = −2^31, which an unsigned 31-bit M0 cannot be.
                lanes = [(lane + (1 << 30)) >> 31 for lane in lanes]
                lanes = self._stage(m, advance, lanes, None, "high")
                carry("high")
                next_stage()
                # Stage 4: RoundingDivideByPOT rounds half away from zero.
                lanes = [round_shift(lane, right_shift(j), "half_away_from_zero")
                         for j, lane in enumerate(lanes)]
            else:
                mode = "half_up" if cfg.rounding == "single" else cfg.rounding
                total = [(31 - shift[j]).as_unsigned()[:6] for j in range(cfg.cols)]
                lanes = [round_shift(lane, total[j], mode) for j, lane in enumerate(lanes)]
            lanes = self._stage(m, advance, lanes, None, "scaled")
            next_stage()

        # Last stage: output zero point and the clamp (fused ReLU/ReLU6 are clamps).
        out = [_saturate(lane + self.output_zero_point, self.act_min, self.act_max)
               for lane in lanes]
        with m.If(advance):
            m.d.sync += [self.o.p.y[j].eq(out[j]) for j in range(cfg.cols)]
            m.d.sync += [self.o.valid.eq(valid), self.o.p.last.eq(last)]
        return m

    @staticmethod
    def _stage(m, advance, values, shape, name):
        regs = [Signal(shape if shape is not None else value.shape(), name=f"{name}{lane}")
                for lane, value in enumerate(values)]
        with m.If(advance):
            m.d.sync += [reg.eq(value) for reg, value in zip(regs, values, strict=True)]
        return regs
