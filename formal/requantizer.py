"""The requantizer against TFLite's integer specification, for all inputs.

:class:`RequantizerCheck` drives one lane of :class:`hw.requantizer.RequantizerLanes` (the
free-running pipeline every requantizer is built from) with free inputs: an accumulator beat
per cycle, the bias, M0, shift, output zero point and clamp (constant while beats are in
flight, as the hardware documents). Every output beat must equal

    clamp(MultiplyByQuantizedMultiplier(acc + bias, M0, shift) + Z_out, act_min, act_max)

of the beat that entered :attr:`~hw.requantizer.RequantizerLanes.latency` cycles earlier, where
MultiplyByQuantizedMultiplier is written here from TFLite/gemmlowp's C++, not from golden/ or
hw/:

* ``"double"`` (TFLite's default build)::

      RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x · 2^left, M0), right)
      SRDHM(a, b) = (ab + (ab ≥ 0 ? 2^30 : 1 − 2^30)) / 2^31     (C++ '/' truncates)
      RDBPOT(x, e) = (x >> e) + ((x & mask) > (mask >> 1) + (x < 0))   mask = 2^e − 1

  with left = max(shift, 0), right = max(−shift, 0); the truncating division is stated with a
  free quotient and remainder (|r| < 2^31, r of the dividend's sign);
* ``"single"`` (``TFLITE_SINGLE_ROUNDING``): ``(x·M0 + 2^(30 − shift)) >> (31 − shift)``;
* every other rounding mode: ``x·M0 / 2^(31 − shift)`` rounded once by
  :func:`formal.rounding.spec_round_shift` (floor division by free quotient and remainder);
* shift-only requantizers (``requant="shift"``): ``x · 2^shift``, a right shift rounded the
  same way.

TFLite's preconditions are assumed: ``acc + bias`` is int32, ``x · 2^left`` is int32 (else
undefined in C++), parameters within :meth:`hw.host.RequantParams.for_config`'s ranges.

**Widths.** The multiply is what a solver cannot close at full width (a 32 × 31-bit multiplier
miter). The spec multiplies ``x · M0`` itself and is proved for all inputs with ``acc + bias``
restricted to ``value_bits`` and ``multiplier_bits`` of M0 free (its top and bottom bits, the
rest zero, so every 16 × 16 partial product of the hardware can be nonzero): the whole
pipeline against the spec, multiply included. The full width follows from stage proofs
(docs/formal.md): ``round_shift`` at every width the hardware builds (formal.rounding),
:class:`SrdhmFloorCheck` for every 64-bit product, and the multiply's exactness by
construction.

The pipeline has no feedback (each stage registers a function of the previous one) and the
parameters are constant, so an output depends only on the beat that entered ``latency`` cycles
earlier: BMC to depth ``latency + 1`` covers every input of every beat, and k-induction with
k = ``latency + 1`` closes too (docs/formal.md).
"""

from amaranth.hdl import Assert, Assume, Const, Cover, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from golden.tflite import INT32_MAX, INT32_MIN
from hw.config import ArrayConfig, ceil_div
from hw.pe import operand_shape
from hw.requantizer import (
    ACC_BITS,
    MULTIPLIER_BITS,
    SHIFT_BITS,
    RequantizerLanes,
)

from .harness import hold_reset_low
from .rounding import spec_round_shift

__all__ = ["RequantizerCheck", "SrdhmFloorCheck", "requantizer_config"]

#: TFLite's fraction bits of M0 (M = M0 · 2^(shift − 31)).
_FRACTION = 31
#: Width of the spec's free quotient and remainder, and of its result before the clamp: above
#: |x · M0| < 2^62 with a sign and the nudge.
_WIDE = 66


def requantizer_config(**options):
    """The one-column, one-lane array whose requantizer the checks build (``options`` are
    :class:`hw.config.ArrayConfig` fields: ``requant``, ``rounding``, ``max_left_shift``)."""
    return ArrayConfig(rows=1, cols=1, **options)


def _truncating_div(m, dividend, exponent, quotient, remainder):
    """C++ ``dividend / 2^exponent`` (toward zero), from a free quotient and remainder."""
    divisor = 1 << exponent
    m.d.comb += [
        Assume((quotient << exponent) + remainder == dividend),
        Assume((remainder > -divisor) & (remainder < divisor)),
        Assume(Mux(dividend >= 0, remainder >= 0, remainder <= 0)),
    ]
    return quotient


def _rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT, transliterated."""
    mask = (Const(1, signed(len(x) + 1)) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _clamp(value, lo, hi):
    return Mux(value < lo, lo, Mux(value > hi, hi, value))


class RequantizerCheck(wiring.Component):
    """Proof harness of one requantizer lane (see the module docstring).

    Parameters
    ----------
    config : ArrayConfig
        One column (:func:`requantizer_config`): ``requant``, ``rounding``, ``max_left_shift``.
    value_bits : int
        ``acc + bias`` is assumed to fit this many signed bits, 2..32 (32: every int32).
    multiplier_bits : int
        Free bits of M0, 1..31: its top ⌈b/2⌉ and bottom ⌊b/2⌋ bits (the ones between are
        zero, so every partial product of the multiply can be nonzero); 31: every M0.
    hardware : ArrayConfig or None
        The configuration the hardware is built from; default ``config``. A mutant builds it
        from another (e.g. the other rounding) and must fail.
    """

    def __init__(self, config, *, value_bits=ACC_BITS,
                 multiplier_bits=MULTIPLIER_BITS, hardware=None):
        if not isinstance(config, ArrayConfig) or config.cols != 1:
            raise TypeError(f"config must be a one-column ArrayConfig, not {config!r}")
        if not isinstance(value_bits, int) or not 2 <= value_bits <= ACC_BITS:
            raise ValueError(f"value_bits must be in [2, {ACC_BITS}], not {value_bits!r}")
        if not isinstance(multiplier_bits, int) or not 1 <= multiplier_bits <= MULTIPLIER_BITS:
            raise ValueError(f"multiplier_bits must be in [1, {MULTIPLIER_BITS}], "
                             f"not {multiplier_bits!r}")
        self._config, self._hardware = config, hardware or config
        self._value_bits = value_bits
        self._multiplier_bits = multiplier_bits
        out_shape = operand_shape(*config.out_range)
        super().__init__({
            "valid": In(1),
            "acc": In(signed(config.accumulator_bits)),
            "bias": In(signed(ACC_BITS)),
            "multiplier": In(unsigned(MULTIPLIER_BITS)),
            "shift": In(signed(SHIFT_BITS)),
            "output_zero_point": In(out_shape),
            "act_min": In(out_shape),
            "act_max": In(out_shape),
            # Free quotients and remainders of the spec's divisions.
            "quotient": In(signed(_WIDE)),
            "remainder": In(signed(_WIDE)),
        })

    def _parameters(self):
        names = ["bias", "shift", "output_zero_point", "act_min", "act_max"]
        if self._config.requant == "multiplier":
            names.append("multiplier")
        return names

    def _assume_legal(self, m):
        """TFLite's preconditions and the hardware's parameter ranges; parameters constant."""
        cfg = self._config
        started = Signal()
        m.d.sync += started.eq(1)
        for name in self._parameters():
            value = getattr(self, name)
            held = Signal.like(value, name=f"held_{name}")
            m.d.sync += held.eq(value)
            m.d.comb += Assume(~started | (value == held))
        shift_lo, shift_hi = cfg.shift_range
        m.d.comb += [
            Assume((self.shift >= shift_lo) & (self.shift <= shift_hi)),
            Assume(self.act_min <= self.act_max),
        ]
        if cfg.requant == "multiplier":
            low, high = self._multiplier_bits // 2, MULTIPLIER_BITS - ceil_div(
                self._multiplier_bits, 2)
            if high > low:   # free: the top and bottom bits, so that every chunk of M0 counts
                m.d.comb += Assume(self.multiplier[low:high] == 0)

    def _spec(self, m, x):
        """The TFLite result (before zero point and clamp) of the int32 value ``x``."""
        cfg = self._config
        shift, rounding = self.shift, cfg.rounding
        left = Mux(shift > 0, shift, 0).as_unsigned()[:SHIFT_BITS - 1]
        right = Mux(shift < 0, -shift, 0).as_unsigned()[:SHIFT_BITS - 1]
        if cfg.requant == "shift":
            mode = "half_up" if rounding == "single" else rounding
            quotient, remainder = self._free(len(x))
            rounded = spec_round_shift(m, x, right, mode, quotient, remainder)
            return Mux(shift >= 0, x << left, rounded)
        if rounding == "double":
            shifted = x << left
            m.d.comb += Assume((shifted >= INT32_MIN) & (shifted <= INT32_MAX))
            scaled = shifted[:ACC_BITS].as_signed()
        else:
            scaled = x
        ab = scaled * self.multiplier
        if rounding == "double":
            nudge = Mux(ab >= 0, 1 << (_FRACTION - 1), 1 - (1 << (_FRACTION - 1)))
            high = _truncating_div(m, ab + nudge, _FRACTION,
                                   self.quotient[:len(ab) - _FRACTION + 2].as_signed(),
                                   self.remainder[:_FRACTION + 1].as_signed())
            return _rounding_divide_by_pot(high, right)
        total_shift = (_FRACTION - shift).as_unsigned()[:SHIFT_BITS]
        if rounding == "single":
            half = (Const(1, len(ab) + 1) << (total_shift - 1).as_unsigned()[:SHIFT_BITS])
            return (ab + half[:len(ab) + 1]) >> total_shift
        quotient, remainder = self._free(len(ab))
        return spec_round_shift(m, ab, total_shift, rounding, quotient, remainder)

    def _free(self, width):
        """The free quotient and remainder of :func:`formal.rounding.spec_round_shift` for a
        ``width``-bit dividend."""
        return self.quotient[:width + 1].as_signed(), self.remainder[:width + 1].as_unsigned()

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        self._assume_legal(m)
        m.submodules.lanes = lanes = RequantizerLanes(self._hardware, lanes=1, addr_width=1)
        m.d.comb += [lanes.i.valid.eq(self.valid), lanes.i.p.acc[0].eq(self.acc),
                     lanes.i.p.addr.eq(0), lanes.i.p.last.eq(0)]
        for name in ("output_zero_point", "act_min", "act_max"):
            m.d.comb += getattr(lanes, name).eq(getattr(self, name))
        for name in self._parameters():
            port = getattr(lanes, f"{name}_read", None)
            if port is not None:   # a synchronous read of a constant table
                m.d.sync += port.data[0].eq(getattr(self, name))

        # A serial multiply takes a beat every requant_beat_interval cycles.
        interval = self._hardware.requant_beat_interval
        if interval > 1:
            busy = Signal(range(interval), name="beat_busy")
            m.d.comb += Assume(~self.valid | (busy == 0))
            m.d.sync += busy.eq(Mux(self.valid, interval - 1, Mux(busy == 0, 0, busy - 1)))

        # The beat that entered `latency` cycles ago: its value x = acc + bias.
        x = Signal(signed(ACC_BITS + 1))
        m.d.comb += x.eq(self.acc + self.bias)
        m.d.comb += Assume(~self.valid | ((x >= -(1 << (self._value_bits - 1))) &
                                          (x < (1 << (self._value_bits - 1)))))
        delayed_valid, delayed_x = self.valid, x
        for stage in range(lanes.latency):
            valid_reg = Signal(name=f"entered_valid_{stage}")
            x_reg = Signal.like(x, name=f"entered_x_{stage}")
            m.d.sync += [valid_reg.eq(delayed_valid), x_reg.eq(delayed_x)]
            delayed_valid, delayed_x = valid_reg, x_reg

        expected = Signal(signed(_WIDE + 2))
        m.d.comb += expected.eq(_clamp(self._spec(m, delayed_x[:ACC_BITS].as_signed())
                                       + self.output_zero_point, self.act_min, self.act_max))
        m.d.comb += Assert(lanes.o.valid == delayed_valid)
        with m.If(delayed_valid):
            m.d.comb += Assert(lanes.o.p.y[0] == expected)
            # Not vacuous: a beat reaches the output strictly inside the clamp.
            m.d.comb += Cover((expected > self.act_min) & (expected < self.act_max) &
                              (expected != self.output_zero_point))
        return m


class SrdhmFloorCheck(wiring.Component):
    """gemmlowp's SRDHM division, ``(ab + (ab ≥ 0 ? 2^30 : 1 − 2^30)) / 2^31`` truncated
    toward zero, equals the floor ``(ab + 2^30) >> 31`` that the hardware takes as a bit slice
    of its sum, for every product ``ab`` of an int32 and a 31-bit M0 (|ab| < 2^62): the stage
    lemma that lets the full-width argument use one arithmetic shift.

    Parameters
    ----------
    nudge : int
        The hardware's nudge; 2^30 is right, anything else is the mutant.
    """

    def __init__(self, *, nudge=1 << (_FRACTION - 1)):
        self._nudge = nudge
        super().__init__({
            "ab": In(signed(ACC_BITS + MULTIPLIER_BITS)),
            "quotient": In(signed(_WIDE)),
            "remainder": In(signed(_WIDE)),
        })

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        ab = self.ab
        m.d.comb += Assume((ab >= INT32_MIN * ((1 << MULTIPLIER_BITS) - 1)) &
                           (ab <= INT32_MAX * ((1 << MULTIPLIER_BITS) - 1)))
        nudge = Mux(ab >= 0, 1 << (_FRACTION - 1), 1 - (1 << (_FRACTION - 1)))
        high = _truncating_div(m, ab + nudge, _FRACTION, self.quotient, self.remainder)
        m.d.comb += Assert(high == (ab + self._nudge) >> _FRACTION)
        return m
