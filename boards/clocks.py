"""PLL clocks: the ``sync`` domain at a chosen frequency, made from a board's oscillator.

:func:`pll_settings` searches a family's PLL dividers for the output closest to a requested
frequency, the way the vendor-independent calculators do it, and reports the frequency it
achieves; :class:`PLLClock` instantiates that PLL on a board and drives the ``sync`` domain
from it, held in reset until the PLL has locked and then for :data:`POR_SECONDS` more.

=========  ===============  ==========================================================
family     primitive        search (reference tool)
=========  ===============  ==========================================================
``ice40``  ``SB_PLL40_PAD``  SIMPLE feedback, DIVR/DIVF/DIVQ (icestorm's ``icepll``)
``ecp5``   ``EHXPLLL``       CLKOP feedback, CLKI/CLKFB/CLKOP dividers (``ecppll``)
``gowin``  ``rPLL``          IDIV/FBDIV/ODIV (apicula's ``gowin_pll``, GW1N(R)-9 C6/I5)
=========  ===============  ==========================================================

The frequency limits (:data:`LIMITS`) are the data sheets' and the reference tools' own:
iCE40 (icepll, iCE40 sysCLOCK PLL guide TN1251): input 10–133 MHz, PFD 10–133 MHz, VCO
533–1066 MHz, output 16–275 MHz; ECP5 (DS1044 sysCLOCK PLL timing): input 8–400 MHz, PFD
3.125–400 MHz, VCO 400–800 MHz, output 3.125–400 MHz; Gowin GW1N(R)-9 C6/I5 (DS117,
apicula's gowin_pll): PFD 3–400 MHz, VCO 400–1200 MHz, output 3.125–600 MHz (exclusive).
Arithmetic is exact (:class:`fractions.Fraction`): the achieved frequency is the one the
dividers give, and a request further than ``tolerance`` (relative, :data:`DEFAULT_TOLERANCE`)
from every achievable frequency is a ValueError.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["PLLLimits", "PLLSettings", "LIMITS", "DEFAULT_TOLERANCE", "POR_SECONDS", "PLL_FAMILIES",
           "ice40_pll", "ecp5_pll", "gowin_pll", "pll_settings", "PLLClock"]

#: Largest relative distance between the requested and the achieved frequency.
DEFAULT_TOLERANCE = 0.01
#: The ``sync`` domain stays in reset this long after lock (iCE40 block RAMs read zeroes for
#: ~3 µs after configuration; Amaranth's own power-on reset uses the same 5× margin).
POR_SECONDS = 15e-6
_MHZ = 1_000_000


@dataclass(frozen=True)
class PLLLimits:
    """Frequency ranges of one PLL, in MHz, as ``(low, high)`` pairs (inclusive)."""

    input: tuple
    pfd: tuple
    vco: tuple
    output: tuple


LIMITS = {
    "ice40": PLLLimits(input=(10, 133), pfd=(10, 133), vco=(533, 1066), output=(16, 275)),
    "ecp5": PLLLimits(input=(8, 400), pfd=(Fraction(25, 8), 400), vco=(400, 800),
                      output=(Fraction(25, 8), 400)),
    "gowin": PLLLimits(input=(3, 400), pfd=(3, 400), vco=(400, 1200),
                       output=(Fraction(25, 8), 600)),
}
_PRIMITIVES = {"ice40": "SB_PLL40_PAD", "ecp5": "EHXPLLL", "gowin": "rPLL"}

# Divider ranges (register widths) of each primitive.
_ICE40_DIVR, _ICE40_DIVF, _ICE40_DIVQ = range(16), range(128), range(1, 7)
_ECP5_CLKI, _ECP5_CLKFB, _ECP5_CLKOP = range(1, 129), range(1, 81), range(1, 129)
#: ecppll's tie break: of equally close outputs, the VCO nearest 600 MHz.
_ECP5_VCO_CENTRE = 600
_GOWIN_IDIV, _GOWIN_FBDIV = range(64), range(64)
_GOWIN_ODIV = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)
#: iCE40 loop filter setting by PFD frequency (icepll; iCE40 sysCLOCK PLL guide): the
#: upper PFD bound (exclusive, MHz) of FILTER_RANGE 1, 2, ...; above the last one it is 6.
_ICE40_FILTER_BOUNDS = (17, 26, 44, 66, 101)


@dataclass(frozen=True)
class PLLSettings:
    """One PLL configuration: its dividers, and the frequencies they give (in Hz).

    Members
    -------
    family, primitive : str
    input_hz, requested_hz, output_hz : float
        Reference clock, requested and achieved output frequency.
    pfd_hz, vco_hz : float
        Phase-detector and VCO frequency (inside :data:`LIMITS`).
    params : dict
        The primitive's parameters, ready for an ``Instance`` (``p_`` + name).
    """

    family: str
    primitive: str
    input_hz: float
    requested_hz: float
    output_hz: float
    pfd_hz: float
    vco_hz: float
    params: dict

    @property
    def error(self):
        """Relative distance of the achieved frequency from the requested one."""
        return abs(self.output_hz - self.requested_hz) / self.requested_hz

    def to_dict(self):
        mhz = {name: round(getattr(self, f"{name}_hz") / _MHZ, 6)
               for name in ("input", "requested", "output", "pfd", "vco")}
        return {"family": self.family, "primitive": self.primitive,
                **{f"{name}_mhz": value for name, value in mhz.items()},
                "error_ppm": round(self.error * 1e6, 1), "params": dict(self.params)}


def _mhz(value, name):
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise TypeError(f"{name} must be a number of MHz, not {value!r}")
    return Fraction(value)


def _check(value, bounds, name, family):
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{float(low):g}, {float(high):g}] MHz for the "
                         f"{family} PLL, not {float(value):g}")


def _inside(value, bounds):
    return bounds[0] <= value <= bounds[1]


def _request(family, input_mhz, output_mhz):
    limits = LIMITS[family]
    fin, fout = _mhz(input_mhz, "input_mhz"), _mhz(output_mhz, "output_mhz")
    _check(fin, limits.input, "input_mhz", family)
    _check(fout, limits.output, "output_mhz", family)
    return limits, fin, fout


def _closest(family, fin, fout, candidates, tie_break=None):
    """The first candidate ``(out, pfd, vco, dividers)`` nearest ``fout`` (then ``tie_break``).

    Candidates come in the reference tool's search order, and of equal keys the first wins,
    as the tools' strict ``<`` comparisons pick it.
    """
    def key(candidate):
        out, _, vco, _ = candidate
        return (abs(out - fout), tie_break(vco) if tie_break else 0)

    best = min(candidates, key=key, default=None)
    if best is None:
        raise ValueError(f"output_mhz {float(fout):g} cannot be made from {float(fin):g} MHz "
                         f"by the {family} PLL")
    return best


def _settings(family, fin, fout, best, params):
    output, pfd, vco, _ = best
    return PLLSettings(family, _PRIMITIVES[family], float(fin) * _MHZ, float(fout) * _MHZ,
                       float(output) * _MHZ, float(pfd) * _MHZ, float(vco) * _MHZ, params)


def ice40_pll(input_mhz, output_mhz):
    """``SB_PLL40_PAD`` dividers for ``output_mhz`` from ``input_mhz``, as icepll finds them.

    SIMPLE feedback: ``pfd = in / (DIVR+1)``, ``vco = pfd · (DIVF+1)``,
    ``out = vco / 2^DIVQ``; the first closest output in icepll's search order wins.
    """
    limits, fin, fout = _request("ice40", input_mhz, output_mhz)
    candidates = (
        (pfd * (divf + 1) / 2 ** divq, pfd, pfd * (divf + 1), (divr, divf, divq))
        for divr in _ICE40_DIVR for pfd in [fin / (divr + 1)] if _inside(pfd, limits.pfd)
        for divf in _ICE40_DIVF if _inside(pfd * (divf + 1), limits.vco)
        for divq in _ICE40_DIVQ)
    best = _closest("ice40", fin, fout, candidates)
    pfd, (divr, divf, divq) = best[1], best[3]
    filter_range = 1 + sum(pfd >= bound for bound in _ICE40_FILTER_BOUNDS)
    params = {"FEEDBACK_PATH": "SIMPLE", "DIVR": divr, "DIVF": divf, "DIVQ": divq,
              "FILTER_RANGE": filter_range}
    return _settings("ice40", fin, fout, best, params)


def ecp5_pll(input_mhz, output_mhz):
    """``EHXPLLL`` dividers (CLKOP feedback) for ``output_mhz``, as ecppll finds them.

    ``out = in · CLKFB_DIV / CLKI_DIV``, ``vco = out · CLKOP_DIV``; of equally close
    outputs the one whose VCO is nearest 600 MHz wins. ``CLKOP_CPHASE`` is half an output
    period in VCO cycles, ``CLKOP_DIV // 2`` (ecppll computes it in single precision and
    can land one lower; with CLKOP feedback the phase does not change the output).
    """
    limits, fin, fout = _request("ecp5", input_mhz, output_mhz)

    def clkops(out):
        """The CLKOP dividers that keep the VCO in range, ascending (ecppll's order)."""
        low = max(_ECP5_CLKOP.start, math.ceil(limits.vco[0] / out))
        high = min(_ECP5_CLKOP.stop - 1, math.floor(limits.vco[1] / out))
        return range(low, high + 1)

    candidates = (
        (out, pfd, out * clkop, (clki, clkfb, clkop))
        for clki in _ECP5_CLKI for pfd in [fin / clki] if _inside(pfd, limits.pfd)
        for clkfb in _ECP5_CLKFB for out in [pfd * clkfb]
        for clkop in clkops(out))
    best = _closest("ecp5", fin, fout, candidates,
                    tie_break=lambda vco: abs(vco - _ECP5_VCO_CENTRE))
    clki, clkfb, clkop = best[3]
    params = {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
              "CLKOP_CPHASE": clkop // 2, "CLKOP_FPHASE": 0}
    return _settings("ecp5", fin, fout, best, params)


def gowin_pll(input_mhz, output_mhz):
    """``rPLL`` dividers for ``output_mhz`` on a GW1N(R)-9 C6/I5, as gowin_pll finds them.

    ``pfd = in / (IDIV_SEL+1)``, ``out = pfd · (FBDIV_SEL+1)``, ``vco = out · ODIV_SEL``;
    the output and VCO bounds are exclusive, and the first closest output wins.
    """
    limits, fin, fout = _request("gowin", input_mhz, output_mhz)

    def strictly_inside(value, bounds):
        return bounds[0] < value < bounds[1]

    candidates = (
        (out, pfd, out * odiv, (idiv, fbdiv, odiv))
        for idiv in _GOWIN_IDIV for pfd in [fin / (idiv + 1)] if _inside(pfd, limits.pfd)
        for fbdiv in _GOWIN_FBDIV for out in [pfd * (fbdiv + 1)]
        if strictly_inside(out, limits.output)
        for odiv in _GOWIN_ODIV if strictly_inside(out * odiv, limits.vco))
    best = _closest("gowin", fin, fout, candidates)
    idiv, fbdiv, odiv = best[3]
    params = {"FCLKIN": f"{float(fin):g}", "IDIV_SEL": idiv, "FBDIV_SEL": fbdiv,
              "ODIV_SEL": odiv}
    return _settings("gowin", fin, fout, best, params)


_SEARCHES = {"ice40": ice40_pll, "ecp5": ecp5_pll, "gowin": gowin_pll}
#: Families whose PLL :func:`pll_settings` configures.
PLL_FAMILIES = tuple(_SEARCHES)


def pll_settings(family, input_mhz, output_mhz, *, tolerance=DEFAULT_TOLERANCE):
    """The PLL of ``family`` for ``output_mhz``; ValueError unless within ``tolerance``."""
    if family not in _SEARCHES:
        raise ValueError(f"family must be one of {', '.join(_SEARCHES)} (the families with "
                         f"a PLL generator), not {family!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise TypeError(f"tolerance must be a number, not {tolerance!r}")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), not {tolerance}")
    settings = _SEARCHES[family](input_mhz, output_mhz)
    if settings.error > tolerance:
        raise ValueError(
            f"output_mhz must be within {tolerance:.2%} of a frequency the {family} PLL makes "
            f"from {input_mhz:g} MHz, not {output_mhz:g} (nearest: "
            f"{settings.output_hz / _MHZ:.4f} MHz)")
    return settings


class PLLClock(Elaboratable):
    """The ``sync`` domain from a PLL on the platform's default clock (see :meth:`attach`).

    The reference clock is the platform's ``default_clk`` resource (the board oscillator).
    ``sync`` is held in reset until the PLL reports lock and :data:`POR_SECONDS` after, and
    its clock net carries a constraint of the achieved frequency.

    Parameters
    ----------
    settings : PLLSettings
        From :func:`pll_settings`.
    """

    def __init__(self, settings):
        if not isinstance(settings, PLLSettings):
            raise TypeError(f"settings must be PLLSettings, not {settings!r}")
        self.settings = settings

    @property
    def frequency(self):
        """The achieved ``sync`` frequency in Hz."""
        return self.settings.output_hz

    def attach(self, m):
        """Define ``sync`` in the top module ``m`` (where Amaranth 0.6 wants domains) and add
        the PLL as its submodule ``clock``, which drives the domain's clock and reset."""
        m.domains.sync = ClockDomain("sync")
        m.submodules.clock = self

    def _pll(self, m, platform, clk_out, lock):
        settings = self.settings
        params = {f"p_{name}": value for name, value in settings.params.items()}
        clk_port = platform.request(platform.default_clk, dir="-")
        if settings.family == "ice40":
            # The PAD variant takes the reference straight from the package pin.
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", **params, i_PACKAGEPIN=clk_port.io, i_RESETB=Const(1),
                i_BYPASS=Const(0), o_PLLOUTGLOBAL=clk_out, o_LOCK=lock)
            return
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
        if settings.family == "ecp5":
            attrs = {"FREQUENCY_PIN_CLKI": f"{settings.input_hz / _MHZ:g}",
                     "FREQUENCY_PIN_CLKOP": f"{settings.output_hz / _MHZ:g}",
                     # ecppll's loop-filter settings
                     "ICP_CURRENT": "12", "LPF_RESISTOR": "8", "MFG_ENABLE_FILTEROPAMP": "1",
                     "MFG_GMCREF_SEL": "2"}
            m.submodules.pll = Instance(
                "EHXPLLL", **params, **{f"a_{k}": v for k, v in attrs.items()},
                p_FEEDBK_PATH="CLKOP", p_CLKOP_ENABLE="ENABLED", p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                i_CLKI=clk_buf.i, i_CLKFB=clk_out, i_RST=Const(0), i_STDBY=Const(0),
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0), o_CLKOP=clk_out, o_LOCK=lock)
        else:
            m.submodules.pll = Instance(
                "rPLL", **params, p_DEVICE=platform.family,
                i_CLKIN=clk_buf.i, i_CLKFB=Const(0), i_RESET=Const(0), i_RESET_P=Const(0),
                i_FBDSEL=Const(0, 6), i_IDSEL=Const(0, 6), i_ODSEL=Const(0, 6),
                i_PSDA=Const(0, 4), i_DUTYDA=Const(0, 4), i_FDLY=Const(0, 4),
                o_CLKOUT=clk_out, o_LOCK=lock)

    def elaborate(self, platform):
        m = Module()
        if platform is None:        # simulation: the test bench drives sync
            return m
        # `keep`: the constraint names this net; without it Yosys may keep only another
        # alias of the clock net (the iCEBreaker engine's was bridge.array...clk) and nextpnr
        # then ignores the constraint ("net 'clock.pll_clk' does not exist").
        clk_out = Signal(name="pll_clk", attrs={"keep": 1})
        lock = Signal(name="pll_lock")
        self._pll(m, platform, clk_out, lock)
        m.d.comb += ClockSignal("sync").eq(clk_out)
        platform.add_clock_constraint(clk_out, self.frequency)
        # Power-on delay after lock, counted on the PLL clock (reset-less, local domain).
        delay = max(1, int(POR_SECONDS * self.frequency))
        m.domains.pll_por = ClockDomain("pll_por", reset_less=True, local=True)
        m.d.comb += ClockSignal("pll_por").eq(clk_out)
        timer = Signal(range(delay + 1))
        ready = Signal()
        m.d.comb += ready.eq(timer == delay)
        with m.If(~lock):
            m.d.pll_por += timer.eq(0)
        with m.Elif(~ready):
            m.d.pll_por += timer.eq(timer + 1)
        m.submodules.reset_sync = ResetSynchronizer(~ready, domain="sync")
        return m
