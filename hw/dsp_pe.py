"""PE variants built around an FPGA family's multiplier block, chosen by the build target.

The portable PEs of :mod:`hw.pe` are plain Amaranth: Yosys finds their ``$mul`` and, at best,
maps it alone to a DSP block, leaving the adder, the accumulator and the product register in
logic cells. The variants here instantiate the block themselves, as its designers meant it to
be used (the pattern of CFU Playground's ``MaccBlock``: one portable cell, one per family,
picked at elaboration). Each variant is a subclass of its portable PE with the same ports, the
same latency and the same values on every port at every cycle; ``tests/hw/test_pe_variants.py``
checks that in Icarus with the vendor cell models. The grids (:mod:`hw.systolic`) choose the
variant from the ``platform`` they are elaborated for, so generic Verilog (``qmac generate``,
``qmac asic``) never contains a vendor primitive.

iCE40 UltraPlus, ``SB_MAC16`` (16×16 signed, product register, 32-bit adder)
    Output-stationary: multiply, product register and the 32-bit accumulate adder are in the
    block; its adder adds the fabric accumulator brought in on C:D, and its unregistered sum
    (O) feeds the accumulator and the result copy. The block's own accumulator register is
    not used: restarting it (``OLOADTOP/BOT``) replaces the adder's output on O for that cycle,
    so back-to-back passes (a ``first`` beat right behind a ``last``) would lose either the
    finished sum or one cycle; keeping the accumulator in flip-flops with a synchronous clear a
    cycle ahead of the ``first`` product restarts it for free. Weight-stationary: the whole
    partial-sum step is in the block (C:D input registers hold the partial sum from above,
    the product register, the adder and its output register drive ``psum_out``).
ECP5, ``MULT18X18D`` (18×18 signed)
    The product register is the block's output register (``REG_OUTPUT_CLK``), the adder and
    accumulator stay in carry chains, restarted like the iCE40's (no zero mux). The input
    registers are used with ``ArrayConfig.product_pipeline`` only (a cycle more; they
    duplicate the forwarding registers the next PE needs), and its second step is a fabric
    register behind the block. ``ALU54B`` is not used: Yosys ships no simulation model of it.
"""

from functools import partial

from amaranth.hdl import Cat, ClockSignal, Const, Instance, ResetSignal, Signal, signed
from amaranth.vendor import LatticePlatform, SiliconBluePlatform

from .config import ceil_div
from .pe import OutputStationaryPE, WeightStationaryPE, delay, operand_shape

__all__ = [
    "FAMILIES", "MIN_DSP_OPERAND_BITS", "DSP_PE_ATTRIBUTE",
    "platform_family", "platform_dsp_blocks", "dsp_variant_fits", "dsp_pe_positions",
    "dsp_pe_class", "pe_chooser", "mult18x18d", "dual_fits", "dsp_pe_capacity", "dsp_pe_layout",
    "Mac16Pair", "ICE40OutputStationaryPE", "ICE40WeightStationaryPE",
    "ICE40DualOutputStationaryPE", "ICE40DualWeightStationaryPE",
    "ECP5OutputStationaryPE", "ECP5WeightStationaryPE",
]

#: Families with PE variants, and their multiplier primitive.
FAMILIES = {"ice40": "SB_MAC16", "ecp5": "MULT18X18D"}
#: Signed operand width of each family's multiplier.
_OPERAND_BITS = {"ice40": 16, "ecp5": 18}
#: SB_MAC16's accumulator and C:D width.
_MAC16_BITS = 32
_MAC16_HALF = 16
#: Operand width of each of the SB_MAC16's two 8×8 multipliers (``MODE_8x8``).
_MAC16_BYTE = 8
#: MULT18X18D's product width.
_MULT18_PRODUCT_BITS = 36
#: An operand narrower than this multiplies in a few LUTs, cheaper than a whole DSP block.
MIN_DSP_OPERAND_BITS = 3
#: Attribute marking the variants' DSP blocks in the netlist (for synthesis scripts).
DSP_PE_ATTRIBUTE = "qmac_dsp_pe"
#: Multiplier blocks of the devices with PE variants (iCE40 UltraPlus; ECP5 by size in kLUT).
_ICE40_BLOCKS = {"iCE40UP3K": 4, "iCE40UP5K": 8}
_ECP5_BLOCKS = {"12F": 28, "25F": 28, "45F": 72, "85F": 156}


def platform_family(platform):
    """``"ice40"``, ``"ecp5"`` or None: the PE variant family of an Amaranth ``platform``."""
    if isinstance(platform, SiliconBluePlatform) and platform_dsp_blocks(platform):
        return "ice40"
    if isinstance(platform, LatticePlatform) and platform.family == "ecp5":
        return "ecp5"
    return None


def platform_dsp_blocks(platform):
    """Multiplier blocks (SB_MAC16 or MULT18X18D) of the platform's device, 0 if unknown."""
    device = getattr(platform, "device", "")
    if isinstance(platform, SiliconBluePlatform):
        return _ICE40_BLOCKS.get(device, 0)
    if isinstance(platform, LatticePlatform) and platform.family == "ecp5":
        return _ECP5_BLOCKS.get(device.rpartition("-")[2], 0)
    return 0


def _signed_bits(shape):
    """Width of the signed operand that holds every value of ``shape``."""
    return shape.width + (0 if shape.signed else 1)


def dsp_variant_fits(config, family):
    """Whether ``config``'s PEs have a ``family`` variant: integer weights, operands at least
    :data:`MIN_DSP_OPERAND_BITS` wide and narrow enough for the family's multiplier."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if config.weight_kind != "integer":
        return False  # binary weights need no multiplier, ternary ones a 2-bit one
    shapes = (operand_shape(*config.act_range), operand_shape(*config.weight_range))
    return (min(shape.width for shape in shapes) >= MIN_DSP_OPERAND_BITS and
            max(_signed_bits(shape) for shape in shapes) <= _OPERAND_BITS[family])


def dsp_pe_positions(rows, cols, count):
    """The ``count`` grid positions (row, col) whose PEs get a DSP block: row-major from
    (0, 0), so a partly mapped grid is the same for the grid and for the DSP budget."""
    return tuple(divmod(index, cols) for index in range(min(count, rows * cols)))


def dsp_pe_class(family, dataflow):
    """The PE variant class of ``family`` for ``dataflow``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    return _VARIANTS[family, dataflow]


def dual_fits(config, family):
    """Whether two of ``config``'s PEs can share one ``family`` block: the SB_MAC16's two
    signed 8×8 multipliers (``MODE_8x8``) hold both operands of each PE."""
    if family != "ice40" or not dsp_variant_fits(config, family):
        return False
    shapes = (operand_shape(*config.act_range), operand_shape(*config.weight_range))
    return max(_signed_bits(shape) for shape in shapes) <= _MAC16_BYTE


def dsp_pe_capacity(config, family, blocks):
    """PEs of ``config`` that ``blocks`` ``family`` blocks can carry: two per block where
    :func:`dual_fits`, else one."""
    per_block = 2 if dual_fits(config, family) else 1
    return min(config.rows * config.cols, per_block * blocks)


def dsp_pe_layout(count, blocks):
    """``(singles, pairs)``: of ``count`` PEs on at most ``blocks`` blocks, how many have a
    block of their own (the full 16×16 SB_MAC16 with its adder, the cheapest PE) and how many
    pairs share one (:class:`ICE40DualOutputStationaryPE`). Every PE gets a block of its own
    while they last; beyond that, pairs: ``singles + 2·pairs ≥ count`` (the last pair may be
    half used), ``singles + pairs ≤ blocks``."""
    if count <= blocks:
        return count, 0
    singles = max(0, 2 * blocks - count)
    return singles, ceil_div(count - singles, 2)


def pe_chooser(platform, config, dsp_pes, portable):
    """``(row, col) → PE class`` of a grid of ``config`` elaborated for ``platform``: the
    family's variant for the first ``dsp_pes`` PEs (None: as many as the device's multiplier
    blocks carry, :func:`dsp_pe_capacity`), ``portable`` (:class:`hw.pe.OutputStationaryPE`
    or ``WeightStationaryPE``) for the rest, and for every PE without a known family or a
    fitting variant. On iCE40, PEs beyond the device's blocks share blocks in pairs
    (:func:`dsp_pe_layout`); a pair is two consecutive PEs in row-major order."""
    family = platform_family(platform)
    if family is None or not dsp_variant_fits(config, family):
        return lambda row, col: portable
    blocks = platform_dsp_blocks(platform)
    count = dsp_pe_capacity(config, family, blocks) if dsp_pes is None else dsp_pes
    variant = dsp_pe_class(family, config.dataflow)
    positions = dsp_pe_positions(config.rows, config.cols, count)
    singles, pairs = dsp_pe_layout(len(positions), blocks) if dual_fits(config, family) \
        else (len(positions), 0)
    chosen = {position: variant for position in positions[:singles]}
    dual = _DUAL_VARIANTS[config.dataflow]
    for index in range(pairs):
        block = Mac16Pair()
        for half, position in enumerate(positions[singles + 2 * index:singles + 2 * index + 2]):
            chosen[position] = partial(dual, block=block, half=half)
    return lambda row, col: chosen.get((row, col), portable)


def _sign_extended(value, width):
    """``value`` (signed or unsigned) as a ``width``-bit two's complement bit vector."""
    extended = Signal(signed(width))
    return extended, extended.eq(value)


def _mac16(m, *, a, b, cd, product_reg, cd_reg, registered_sum, name, input_reg=False):
    """An SB_MAC16 computing cd + a·b in 16×16 signed mode with its 32-bit adder.

    ``product_reg``: the 16×16 product register (PIPELINE_16x16_MULT_REG2); ``cd_reg``: C and D
    input registers; ``registered_sum``: O is the output register instead of the adder's
    unregistered sum; ``input_reg``: A and B input registers (a second product register).
    Returns O (32 bits). The block's registers reset with the domain.
    """
    signals = {}
    for port, value, width in (("A", a, _MAC16_HALF), ("B", b, _MAC16_HALF),
                               ("CD", cd, _MAC16_BITS)):
        signals[port], assignment = _sign_extended(value, width)
        m.d.comb += assignment
    out = Signal(_MAC16_BITS, name=f"{name}_o")
    reset = ResetSignal(allow_reset_less=True)
    m.submodules[name] = Instance(
        "SB_MAC16", **{f"a_{DSP_PE_ATTRIBUTE}": 1},
        p_NEG_TRIGGER=Const(0, 1), p_A_REG=Const(input_reg, 1), p_B_REG=Const(input_reg, 1),
        p_C_REG=Const(cd_reg, 1), p_D_REG=Const(cd_reg, 1),
        p_TOP_8x8_MULT_REG=Const(0, 1), p_BOT_8x8_MULT_REG=Const(0, 1),
        p_PIPELINE_16x16_MULT_REG1=Const(0, 1),
        p_PIPELINE_16x16_MULT_REG2=Const(product_reg, 1),
        # Output: 0 = the adder's sum, 1 = its output register.
        p_TOPOUTPUT_SELECT=Const(registered_sum, 2), p_BOTOUTPUT_SELECT=Const(registered_sum, 2),
        # Adder: the 16×16 product's half (2) plus C (top) / D (bottom) (upper input 1); the
        # bottom half's carry goes on into the top half (carry select 2), none comes in (0).
        p_TOPADDSUB_LOWERINPUT=Const(2, 2), p_TOPADDSUB_UPPERINPUT=Const(1, 1),
        p_TOPADDSUB_CARRYSELECT=Const(2, 2),
        p_BOTADDSUB_LOWERINPUT=Const(2, 2), p_BOTADDSUB_UPPERINPUT=Const(1, 1),
        p_BOTADDSUB_CARRYSELECT=Const(0, 2),
        p_MODE_8x8=Const(0, 1), p_A_SIGNED=Const(1, 1), p_B_SIGNED=Const(1, 1),
        i_CLK=ClockSignal(), i_CE=Const(1, 1),
        i_A=signals["A"], i_B=signals["B"],
        i_C=signals["CD"][_MAC16_HALF:], i_D=signals["CD"][:_MAC16_HALF],
        i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
        i_IRSTTOP=reset, i_IRSTBOT=reset, i_ORSTTOP=reset, i_ORSTBOT=reset,
        i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
        i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
        o_O=out,
    )
    return out


def _fabric_operands(m, a, b, registers):
    """``a`` and ``b`` behind the product registers beyond the SB_MAC16's own two (its A/B
    input registers and its product register): those wait in fabric, in front of the block."""
    extra = max(registers - 2, 0)
    return delay(m, a, extra, "mac16_a"), delay(m, b, extra, "mac16_b")


def mult18x18d(m, *, a, b, registered, name, input_registers=False):
    """A MULT18X18D computing a·b (signed 18×18), its output register used when
    ``registered``, its A and B input registers when ``input_registers``. Returns the
    36-bit product."""
    pins = {}
    for port, value in (("A", a), ("B", b)):
        extended, assignment = _sign_extended(value, _OPERAND_BITS["ecp5"])
        m.d.comb += assignment
        pins.update({f"i_{port}{bit}": extended[bit] for bit in range(len(extended))})
    product = Signal(_MULT18_PRODUCT_BITS, name=f"{name}_p")
    pins.update({f"o_P{bit}": product[bit] for bit in range(_MULT18_PRODUCT_BITS)})
    m.submodules[name] = Instance(
        "MULT18X18D", **{f"a_{DSP_PE_ATTRIBUTE}": 1},
        p_REG_INPUTA_CLK="CLK0" if input_registers else "NONE",
        p_REG_INPUTB_CLK="CLK0" if input_registers else "NONE", p_REG_INPUTC_CLK="NONE",
        p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK="CLK0" if registered else "NONE",
        p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT",
        p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CE0=1, i_RST0=ResetSignal(allow_reset_less=True),
        **pins,
    )
    return product


def _mult18_product(m, activation, weight, registers):
    """activation·weight from a MULT18X18D behind ``registers`` registers (its output
    register, then its input registers too, then fabric registers behind the block), as
    exactly as wide as the portable PE's product."""
    product = mult18x18d(m, a=activation, b=weight, registered=registers > 0,
                         input_registers=registers > 1, name="mult18")
    product = delay(m, product, max(registers - 2, 0), "mult18_product")
    return product[:(activation * weight).shape().width].as_signed()


class ICE40OutputStationaryPE(OutputStationaryPE):
    """:class:`hw.pe.OutputStationaryPE` with multiply, product register and accumulate adder
    in one SB_MAC16 (operands up to 16 bits signed, accumulators up to 32 bits)."""

    _early_restart = True

    def _multiply_add(self, m, addend):
        registers = self._product_registers
        a, b = _fabric_operands(m, self.x_in, self.w_in, registers)
        total = _mac16(m, a=a, b=b, cd=addend,
                       product_reg=registers > 0, cd_reg=False, registered_sum=False,
                       input_reg=registers > 1, name="mac16")
        return total.as_signed()


class ICE40WeightStationaryPE(WeightStationaryPE):
    """:class:`hw.pe.WeightStationaryPE` whose partial-sum step (psum_in + x·w, registered)
    is one SB_MAC16: with ``register_product`` its C:D input registers delay the partial sum
    and its product register the product (with ``product_pipeline`` also its A and B input
    registers and fabric registers in front of C:D, from a third register on also in front
    of A and B); its output register is ``psum_out``."""

    def _multiply_add(self, m, weight):
        registers = self._product_registers
        psum_in = delay(m, self.psum_in, max(registers - 1, 0), "psum_delayed")
        a, b = _fabric_operands(m, self.x_in, weight, registers)
        total = _mac16(m, a=a, b=b, cd=psum_in,
                       product_reg=registers > 0, cd_reg=registers > 0,
                       registered_sum=True, input_reg=registers > 1, name="mac16")
        m.d.comb += self.psum_out.eq(total)


class ECP5OutputStationaryPE(OutputStationaryPE):
    """:class:`hw.pe.OutputStationaryPE` with its product (and product register) in a
    MULT18X18D and a restart without zero mux in front of the carry-chain adder."""

    _early_restart = True

    def _product(self, m, weight):
        return _mult18_product(m, self.x_in, weight, self._product_registers)


class ECP5WeightStationaryPE(WeightStationaryPE):
    """:class:`hw.pe.WeightStationaryPE` with its product (and product register) in a
    MULT18X18D."""

    def _product(self, m, weight):
        return _mult18_product(m, self.x_in, weight, self._product_registers)


class Mac16Pair:
    """One SB_MAC16 in dual 8×8 mode (``MODE_8x8``), shared by two PEs (``half`` 0: the
    bottom multiplier, A[7:0]·B[7:0] on O[15:0]; 1: the top one, A[15:8]·B[15:8] on
    O[31:16]).

    Both multipliers are signed (``A_SIGNED``, ``B_SIGNED``: each byte is sign-extended on its
    own in 8×8 mode), each product has its own register (``TOP/BOT_8x8_MULT_REG``: the PEs'
    product register) and leaves on O directly (``TOP/BOTOUTPUT_SELECT = 2``); the block's
    16-bit accumulators are too narrow for a pass, so the PEs add in carry chains. Each PE
    drives its operands into the pair's signals from its own module; the half-0 PE
    instantiates the block, and the half-1 PE reads its product from it. A pair with one PE
    (the last of an odd count) multiplies 0·0 in its top half.
    """

    #: ``A_SIGNED``/``B_SIGNED`` of the block (a test's mutant clears it).
    _signed = 1

    def __init__(self):
        self._operands = [(Signal(signed(_MAC16_BYTE), name=f"mac8x8_a{half}"),
                           Signal(signed(_MAC16_BYTE), name=f"mac8x8_b{half}"))
                          for half in range(2)]
        self._products = [Signal(signed(_MAC16_HALF), name=f"mac8x8_p{half}")
                          for half in range(2)]

    def product(self, m, half, a, b, *, registers):
        """a·b (signed, each at most 8 bits signed) from multiplier ``half`` behind
        ``registers`` registers (the block's 8×8 product registers, then its A and B input
        registers too, then fabric registers), as wide as the portable PE's product; the block
        is built into ``m`` by the half-0 PE. Both PEs of a pair have the same registers."""
        registered, input_reg = registers > 0, registers > 1
        operand_a, operand_b = self._operands[half]
        m.d.comb += [operand_a.eq(a), operand_b.eq(b)]
        if half == 0:
            reset = ResetSignal(allow_reset_less=True)
            out = Signal(_MAC16_BITS, name="mac8x8_o")
            (a0, b0), (a1, b1) = self._operands
            m.submodules.mac8x8 = Instance(
                "SB_MAC16", **{f"a_{DSP_PE_ATTRIBUTE}": 1},
                p_NEG_TRIGGER=Const(0, 1), p_A_REG=Const(input_reg, 1),
                p_B_REG=Const(input_reg, 1), p_C_REG=Const(0, 1), p_D_REG=Const(0, 1),
                p_TOP_8x8_MULT_REG=Const(registered, 1), p_BOT_8x8_MULT_REG=Const(registered, 1),
                p_PIPELINE_16x16_MULT_REG1=Const(0, 1), p_PIPELINE_16x16_MULT_REG2=Const(0, 1),
                # Output: the 8×8 products (2), registered or not by the *_8x8_MULT_REG.
                p_TOPOUTPUT_SELECT=Const(2, 2), p_BOTOUTPUT_SELECT=Const(2, 2),
                p_TOPADDSUB_LOWERINPUT=Const(0, 2), p_TOPADDSUB_UPPERINPUT=Const(0, 1),
                p_TOPADDSUB_CARRYSELECT=Const(0, 2),
                p_BOTADDSUB_LOWERINPUT=Const(0, 2), p_BOTADDSUB_UPPERINPUT=Const(0, 1),
                p_BOTADDSUB_CARRYSELECT=Const(0, 2),
                p_MODE_8x8=Const(1, 1), p_A_SIGNED=Const(self._signed, 1),
                p_B_SIGNED=Const(self._signed, 1),
                i_CLK=ClockSignal(), i_CE=Const(1, 1),
                i_A=Cat(a0, a1), i_B=Cat(b0, b1), i_C=Const(0, _MAC16_HALF),
                i_D=Const(0, _MAC16_HALF),
                i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
                i_IRSTTOP=reset, i_IRSTBOT=reset, i_ORSTTOP=reset, i_ORSTBOT=reset,
                i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
                i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
                o_O=out,
            )
            m.d.comb += [self._products[0].eq(out[:_MAC16_HALF]),
                         self._products[1].eq(out[_MAC16_HALF:])]
        product = self._products[half][:(a * b).shape().width].as_signed()
        return delay(m, product, max(registers - 2, 0), "mac8x8_product")


class _DualMixin:
    """The pair's product in place of the portable ``_product``."""

    def __init__(self, *, block, half, **arguments):
        super().__init__(**arguments)
        self._block, self._half = block, half

    def _product(self, m, weight):
        return self._block.product(m, self._half, self.x_in, weight,
                                   registers=self._product_registers)


class ICE40DualOutputStationaryPE(_DualMixin, OutputStationaryPE):
    """:class:`hw.pe.OutputStationaryPE` whose multiply and product register are one half of
    a shared SB_MAC16 (:class:`Mac16Pair`, operands up to 8 bits signed); the accumulate adder
    is a carry chain, restarted a cycle ahead like :class:`ICE40OutputStationaryPE`'s."""

    _early_restart = True


class ICE40DualWeightStationaryPE(_DualMixin, WeightStationaryPE):
    """:class:`hw.pe.WeightStationaryPE` whose multiply and product register are one half of
    a shared SB_MAC16 (:class:`Mac16Pair`); the partial-sum adder is a carry chain."""


_DUAL_VARIANTS = {
    "output_stationary": ICE40DualOutputStationaryPE,
    "weight_stationary": ICE40DualWeightStationaryPE,
}

_VARIANTS = {
    ("ice40", "output_stationary"): ICE40OutputStationaryPE,
    ("ice40", "weight_stationary"): ICE40WeightStationaryPE,
    ("ecp5", "output_stationary"): ECP5OutputStationaryPE,
    ("ecp5", "weight_stationary"): ECP5WeightStationaryPE,
}
