"""``hw.requantizer.round_shift`` against an independent specification, for all inputs.

The specification does not shift: it states what floor division is. Free variables ``q`` and
``r`` are assumed to satisfy ``value = q·2^amount + r`` with ``0 ≤ r < 2^amount`` (computed
wide enough never to wrap), which makes ``q`` = ⌊value / 2^amount⌋ and ``r`` the remainder.
The tie rules then compare ``2r`` with ``2^amount``, exactly as :func:`golden.rounding.round_div`
does in Python: ``amount = 0`` needs no special case there, while the hardware needs one.
"""

from amaranth.hdl import Assert, Assume, Const, Fragment, Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In

import hw.requantizer
from golden.rounding import ROUNDING_MODES
from hw.config import REQUANT_ROUNDINGS, ArrayConfig

from .harness import hold_reset_low

__all__ = ["RoundShiftCheck", "ShiftWindowCheck", "hardware_shift_widths", "spec_round_shift",
           "wrong_fit_window", "wrong_tie_rule"]

#: Width of the run-time shift amount the requantizer hands to its rounding shifts.
AMOUNT_BITS = 6
#: ``max_left_shift`` values that cover every width of the left-shift operand (0..30).
_MAX_LEFT_SHIFTS = range(31)
#: Functions of ``hw.requantizer`` that build a rounding shift, with how to read the width of
#: the shifted value from their arguments; instrumenting them records the widths the hardware
#: builds (the pipeline registers the steps of round_shift: decode, floor and increment).
_PROBES = {
    "round_shift": lambda value, amount, mode: (len(value), mode),
    "_round_addend": lambda value, amount, mask, mode: (len(value), mode),
}


def spec_round_shift(m, value, amount, mode, quotient, remainder):
    """``value`` / 2^``amount`` rounded with ``mode``, from the free ``quotient`` and
    ``remainder`` constrained (with Assume) to floor division. Returns the rounded value."""
    divisor = Const(1, 1) << amount                    # exact: as wide as it needs
    m.d.comb += [
        Assume((quotient << amount) + remainder == value),
        Assume(remainder < divisor),
    ]
    twice = remainder << 1
    above, tie = twice > divisor, twice == divisor
    negative = value < 0
    if mode == "floor":
        bump = Const(0)
    elif mode == "toward_zero":
        bump = negative & (remainder != 0)
    elif mode == "half_up":
        bump = above | tie
    elif mode == "half_away_from_zero":
        bump = above | (tie & ~negative)
    elif mode == "half_to_even":
        bump = above | (tie & quotient[0])
    else:
        raise ValueError(f"mode must be one of {', '.join(ROUNDING_MODES)}, not {mode!r}")
    return quotient + bump


class RoundShiftCheck(wiring.Component):
    """Asserts ``implementation(value, amount, mode)`` equals :func:`spec_round_shift` for
    every ``width``-bit signed value and every amount in [0, ``max_amount``].

    Parameters
    ----------
    width : int
        Width of the signed value, 2..96.
    mode : str or tuple of str
        One of :data:`golden.rounding.ROUNDING_MODES`, or several (one job proves each).
    max_amount : int or None
        Largest shift; default min(2^6 − 1, ``width``), every amount the hardware can present.
    implementation : callable
        ``round_shift(value, amount, mode)``; default :func:`hw.requantizer.round_shift`
        (a mutant passes a broken copy).
    """

    def __init__(self, width, mode, *, max_amount=None, implementation=None):
        if not isinstance(width, int) or not 2 <= width <= 96:
            raise ValueError(f"width must be in [2, 96], not {width!r}")
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        if not modes or any(one not in ROUNDING_MODES for one in modes):
            raise ValueError(f"mode must be one of {', '.join(ROUNDING_MODES)}, not {mode!r}")
        amount_limit = (1 << AMOUNT_BITS) - 1
        if max_amount is None:
            max_amount = min(amount_limit, width)
        if not isinstance(max_amount, int) or not 0 <= max_amount <= amount_limit:
            raise ValueError(f"max_amount must be in [0, {amount_limit}], not {max_amount!r}")
        self._width, self._modes, self._max_amount = width, modes, max_amount
        self._implementation = implementation or hw.requantizer.round_shift
        super().__init__({
            "value": In(signed(width)),
            "amount": In(unsigned(AMOUNT_BITS)),
            # Free quotient and remainder of the specification (wider than they can be).
            "quotient": In(signed(width + 1)),
            "remainder": In(unsigned(width + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        m.d.comb += Assume(self.amount <= self._max_amount)
        for mode in self._modes:
            expected = spec_round_shift(m, self.value, self.amount, mode, self.quotient,
                                        self.remainder)
            actual = self._implementation(self.value, self.amount, mode)
            m.d.comb += Assert(actual == expected)
        return m


def wrong_tie_rule(value, amount, mode):
    """Mutant: ``hw.requantizer.round_shift`` with the neighbouring mode's rule (each pair
    differs on some input: ties, or negative values with a remainder)."""
    neighbour = dict(zip(ROUNDING_MODES, ROUNDING_MODES[1:] + ROUNDING_MODES[:1], strict=True))
    return hw.requantizer.round_shift(value, amount, neighbour[mode])


class ShiftWindowCheck(wiring.Component):
    """Asserts ``implementation(value, amount, width)`` (default
    :func:`hw.requantizer.shift_window`) equals the low ``width`` bits of ⌊value / 2^amount⌋,
    whether that quotient fits ``width`` signed bits, and the sign, for every signed value of
    ``value_bits`` and every amount of ``amount_bits`` (beyond the value's width too). The
    quotient is a free variable constrained to floor division, as in
    :func:`spec_round_shift`: the specification does not shift.

    Parameters
    ----------
    value_bits : int
        Width of the signed value, 2..96.
    amount_bits : int
        Width of the unsigned shift amount, 1..6.
    width : int
        Width of the window, 1..``value_bits``.
    implementation : callable
        ``shift_window(value, amount, width)``; a mutant passes a broken copy.
    """

    def __init__(self, value_bits, amount_bits, width, *, implementation=None):
        if not isinstance(value_bits, int) or not 2 <= value_bits <= 96:
            raise ValueError(f"value_bits must be in [2, 96], not {value_bits!r}")
        if not isinstance(amount_bits, int) or not 1 <= amount_bits <= AMOUNT_BITS:
            raise ValueError(f"amount_bits must be in [1, {AMOUNT_BITS}], not {amount_bits!r}")
        if not isinstance(width, int) or not 1 <= width <= value_bits:
            raise ValueError(f"width must be in [1, {value_bits}], not {width!r}")
        self._width = width
        self._implementation = implementation or hw.requantizer.shift_window
        limit = value_bits + (1 << amount_bits)
        super().__init__({
            "value": In(signed(value_bits)),
            "amount": In(unsigned(amount_bits)),
            # Free quotient and remainder of the floor division (wider than they can be).
            "quotient": In(signed(value_bits + 1)),
            "remainder": In(unsigned(limit)),
        })

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        width = self._width
        m.d.comb += [
            Assume((self.quotient << self.amount) + self.remainder == self.value),
            Assume(self.remainder < (Const(1, 1) << self.amount)),
        ]
        low, inside, negative = self._implementation(self.value, self.amount, width)
        fits = (self.quotient >= -(1 << (width - 1))) & (self.quotient < (1 << (width - 1)))
        m.d.comb += [
            Assert(low == self.quotient[:width]),
            Assert(inside == fits),
            Assert(negative == (self.value < 0)),
        ]
        return m


def wrong_fit_window(value, amount, width):
    """Mutant: :func:`hw.requantizer.shift_window` whose fit flag ignores the window's top
    bit (a quotient one bit too wide passes as fitting)."""
    low, inside, negative = hw.requantizer.shift_window(value, amount, width + 1)
    return low[:width], inside, negative


def _configs():
    for requant in ("multiplier", "shift"):
        for rounding in REQUANT_ROUNDINGS:
            if requant == "shift" and rounding == "double":
                continue
            for max_left_shift in _MAX_LEFT_SHIFTS:
                yield ArrayConfig(rows=1, cols=1, requant=requant, rounding=rounding,
                                  max_left_shift=max_left_shift)


def hardware_shift_widths(configs=None):
    """Sorted ``(width, mode)`` of every rounding shift in the requantizer of every
    configuration (``requant`` × ``rounding`` × ``max_left_shift``): the width of the value it
    divides and its tie rule, found by elaborating it with :data:`_PROBES` instrumented.
    Raises LookupError if none is found."""
    widths = set()
    originals = {name: getattr(hw.requantizer, name) for name in _PROBES
                 if hasattr(hw.requantizer, name)}

    def probe(name, original):
        def recorder(*args):
            widths.add(_PROBES[name](*args))
            return original(*args)
        return recorder

    try:
        for name, original in originals.items():
            setattr(hw.requantizer, name, probe(name, original))
        for config in configs or _configs():
            requantizer = hw.requantizer.Requantizer(config)
            Fragment.get(requantizer, None)
    finally:
        for name, original in originals.items():
            setattr(hw.requantizer, name, original)
    if not widths:
        raise LookupError(f"no call of hw.requantizer.{', '.join(_PROBES)} found while "
                          f"elaborating the requantizer: update formal.rounding._PROBES")
    return sorted(widths)

