"""Which multipliers go into the device's DSP blocks, and the Yosys commands that put them there.

Yosys maps every ``$mul`` to DSPs (``synth_ecp5`` by default, ``synth_ice40 -dsp``), so an array
with more multipliers than the device has DSPs fails placement. qmac therefore chooses: with a
budget of B primitives it gives the PEs theirs first, one primitive each, in the row-major
order of :func:`hw.dsp_pe.dsp_pe_positions`, and the requantizer lanes what is left.

A PE whose operands fit the family's multiplier is its :mod:`hw.dsp_pe` variant, which the
grid instantiates itself when elaborated for the board's platform (default: one per block of
the device, so the plan for the whole device, ``dsp="auto"``, is what the grid builds): its
multiplier, product register and (iCE40) adder are in the block, which saves the most per
primitive on small devices (on the UP5K about 66 LUTs, 23 carries and 16 flip-flops per PE,
``docs/pe.md``). Wider PE operands keep the portable PE, whose ``$mul`` is mapped by Yosys
(several primitives per PE).

The mapping runs before ``synth_<family>`` (Amaranth's ``script_after_read``) with the same
commands the synthesis script would use, restricted to the chosen cells; the synthesis itself
then runs without DSP inference (``-nodsp`` on ECP5, no ``-dsp`` on iCE40). ``ice40_dsp``
(which packs registers and adders into SB_MAC16s) is kept off the PE variants' blocks, which
it would otherwise re-pack as if they were bare multipliers.
"""

from dataclasses import dataclass

from hw.config import ceil_div
from hw.dsp_pe import (
    DSP_PE_ATTRIBUTE,
    MIN_DSP_OPERAND_BITS,
    dsp_pe_layout,
    dsp_pe_positions,
    dsp_variant_fits,
    dual_fits,
)
from hw.pe import operand_shape
from hw.requantizer import ACC_BITS

__all__ = ["DspPlan", "plan_dsp", "dsp_cost", "dsp_script", "FAMILIES"]


@dataclass(frozen=True)
class _Family:
    primitive: str
    max_width: int
    min_width: int
    min_y_width: int
    commands: tuple


FAMILIES = {
    # From synth_ice40's "coarse" step with -dsp.
    "ice40": _Family("SB_MAC16", 16, 2, 11, (
        "wreduce t:$mul",
        "techmap -map +/mul2dsp.v -map +/ice40/dsp_map.v -D DSP_A_MAXWIDTH=16 "
        "-D DSP_B_MAXWIDTH=16 -D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_Y_MINWIDTH=11 "
        "-D DSP_NAME=$__MUL16X16",
        "select a:mul2dsp",
        "setattr -unset mul2dsp",
        "opt_expr -fine",
        "wreduce",
        "select -clear",
        f"ice40_dsp * a:{DSP_PE_ATTRIBUTE} %d",
    )),
    # From synth_lattice -family ecp5's "coarse" step.
    "ecp5": _Family("MULT18X18D", 18, 2, 0, (
        "techmap -map +/mul2dsp.v -map +/lattice/dsp_map_18x18.v -D DSP_A_MAXWIDTH=18 "
        "-D DSP_B_MAXWIDTH=18 -D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_NAME=$__MUL18X18",
    )),
}

#: Width of the requantizer's product operands: the int32 (bias-added) accumulator times the
#: 31-bit unsigned M0, which Amaranth extends to a 32-bit signed operand.
_REQUANT_B_WIDTH = 32



#: The grid's submodule name: ``core`` in MacArray, ``grid`` in GemmEngine.
_GRID_NAMES = ("core", "grid")


def dsp_cost(a_width, b_width, family):
    """DSP primitives Yosys' mul2dsp uses for an ``a_width`` × ``b_width`` signed product."""
    spec = FAMILIES[family]
    if (min(a_width, b_width) < spec.min_width or a_width + b_width < spec.min_y_width):
        return 0
    return ceil_div(a_width, spec.max_width) * ceil_div(b_width, spec.max_width)


@dataclass(frozen=True)
class DspPlan:
    """The multipliers mapped to DSPs: PE positions and requantizer lanes."""

    family: str
    budget: int
    pes: tuple              # ((row, col), ...)
    requantizer_lanes: tuple
    pe_cost: int
    lane_cost: int
    total_pes: int
    total_lanes: int
    pe_blocks: int = None   # primitives of the PEs (pairs share one); None: pes · pe_cost

    @property
    def planned(self):
        pe_blocks = len(self.pes) * self.pe_cost if self.pe_blocks is None else self.pe_blocks
        return pe_blocks + len(self.requantizer_lanes) * self.lane_cost

    def to_dict(self):
        return {
            "budget": self.budget,
            "planned_primitives": self.planned,
            "pe_multipliers_in_dsp": len(self.pes),
            "pe_multipliers": self.total_pes,
            "requantizer_lanes_in_dsp": len(self.requantizer_lanes),
            "requantizer_lanes": self.total_lanes,
            "primitives_per_pe": self.pe_cost,
            "primitives_per_lane": self.lane_cost,
            "pe_primitives": self.planned - len(self.requantizer_lanes) * self.lane_cost,
        }


def _widths(config):
    act_width = operand_shape(*config.act_range).width
    weight_width = operand_shape(*config.weight_range).width
    return act_width, weight_width


def plan_dsp(config, family, budget, *, blocks=None):
    """Choose the multipliers of ``config`` that go into at most ``budget`` DSP primitives of a
    device with ``blocks`` (None: ``budget``).

    Where two PEs share a block (:func:`hw.dsp_pe.dual_fits`: int8 on iCE40) the PEs come
    first: a PE multiplying in LUTs costs about 220 LUT4 on the UP5K, so 16 PEs in 8 blocks
    save more than one requantizer lane's 4 blocks (which then multiplies in fabric, or over
    several cycles with ``ArrayConfig.requant_serial_bits``). The grid pairs PEs only beyond
    the device's blocks (:func:`hw.dsp_pe.dsp_pe_layout`), so a budget below the device's
    gives its PEs a block each. Elsewhere the requantizer lanes come first."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise TypeError(f"budget must be an integer, not {budget!r}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, not {budget}")
    act_width, weight_width = _widths(config)
    if dsp_variant_fits(config, family):
        pe_cost = 1          # the PE variant: one block each
    elif min(act_width, weight_width) < MIN_DSP_OPERAND_BITS or config.weight_kind != "integer":
        # Binary weights multiply by a negation (no $mul at all); a product with a 1- or 2-bit
        # operand is a few LUTs, cheaper than a DSP block that could hold a full product.
        pe_cost = 0
    else:
        pe_cost = dsp_cost(act_width, weight_width, family)   # Yosys maps the portable $mul
    pes = config.rows * config.cols
    lanes = config.lanes if config.requant == "multiplier" else 0
    # The "double" build saturates x · 2^shift to int32: the operand is 32 bits either way.
    lane_cost = dsp_cost(ACC_BITS, _REQUANT_B_WIDTH, family) if lanes else 0
    if blocks is None:
        blocks = budget
    if dual_fits(config, family):
        count = min(pes, 2 * budget if budget >= blocks else budget)
        pe_blocks = sum(dsp_pe_layout(count, blocks))
        chosen_pes = dsp_pe_positions(config.rows, config.cols, count)
        chosen_lanes = tuple(range(min(lanes, (budget - pe_blocks) // lane_cost))) \
            if lane_cost else ()
        return DspPlan(family, budget, chosen_pes, chosen_lanes, pe_cost, lane_cost, pes, lanes,
                       pe_blocks)
    # The requantizer lanes first: a lane's 32×31 product in LUTs costs far more than a PE's
    # 8×8 one (about 1000 LUTs for its 4 blocks against about 50 for a PE's one).
    chosen_lanes = tuple(range(min(lanes, budget // lane_cost))) if lane_cost else ()
    remaining = budget - len(chosen_lanes) * lane_cost
    chosen_pes = dsp_pe_positions(config.rows, config.cols, remaining // pe_cost) \
        if pe_cost else ()
    return DspPlan(family, budget, chosen_pes, chosen_lanes, pe_cost, lane_cost, pes, lanes)


def dsp_script(plan, array_path):
    """Yosys commands (for ``script_after_read``) mapping exactly the planned multipliers.

    ``array_path`` is the hierarchical RTLIL name of the MacArray (e.g. ``top.bist.array``).
    Every ``$mul`` is parked as ``$__soft_mul`` (which mul2dsp leaves alone), the chosen ones
    are restored, mapped, and the rest restored for soft logic.
    """
    spec = FAMILIES[plan.family]
    lines = ["hierarchy -top top", "proc"]
    lanes = f"{array_path}.requantizer.lanes"
    for lane in plan.requantizer_lanes:
        # The lane's partial products are registered as s<stage>_partial_<lane>_<i>
        # (hw.requantizer.RequantizerLanes); their input cones hold exactly its multipliers.
        lines.append(f"select -set qmac_lane{lane} {lanes}/w:s*_partial_{lane}_* %ci* "
                     f"{lanes}/t:$mul %i")
    lines.append("chtype -set $__soft_mul t:$mul")
    for lane in plan.requantizer_lanes:
        lines.append(f"chtype -set $mul @qmac_lane{lane}")
    for grid in _GRID_NAMES:
        core = f"{array_path}.{grid}"
        for start in range(0, len(plan.pes), 16):
            chunk = plan.pes[start:start + 16]
            selection = " ".join(f"{core}.pe_{r}_{c}/t:$__soft_mul" for r, c in chunk)
            lines.append(f"chtype -set $mul {selection}")
    lines.extend(spec.commands)
    lines.append("chtype -set $mul t:$__soft_mul")
    return "\n".join(lines)
