"""DSP planning: how many primitives each product needs and which products get them."""

import pytest

from boards.dsp import dsp_cost, dsp_script, plan_dsp
from hw.config import ArrayConfig


@pytest.mark.parametrize("a,b,family,expected", [
    (8, 8, "ice40", 1),        # fits one 16×16 SB_MAC16
    (16, 16, "ice40", 1),
    (17, 16, "ice40", 2),
    (32, 32, "ice40", 4),      # the requantizer's 32×32 product: 2×2 tiles of 16 bits
    (4, 4, "ice40", 0),        # an 8-bit result is below synth_ice40's 11-bit minimum
    (8, 8, "ecp5", 1),
    (18, 18, "ecp5", 1),
    (19, 18, "ecp5", 2),
    (32, 32, "ecp5", 4),       # 2×2 tiles of 18 bits
    (1, 8, "ecp5", 0),
])
def test_cost(a, b, family, expected):
    assert dsp_cost(a, b, family) == expected


def test_icebreaker_int8_2x2_fills_the_up5k():
    plan = plan_dsp(ArrayConfig(rows=2, cols=2), "ice40", 8)
    assert plan.requantizer_lanes == (0,)                   # one 32×32 lane: 4 blocks
    assert plan.pes == ((0, 0), (0, 1), (1, 0), (1, 1))   # one SB_MAC16 per PE variant
    assert plan.planned == 8


def test_icebreaker_4x4_puts_every_pe_into_the_8_blocks():
    """Two int8 PEs per SB_MAC16 (dual 8×8): all 16 PEs in the UP5K's 8 blocks, none left
    for the requantizer lane (about 220 LUT4 per PE in LUTs against a lane's 4 blocks)."""
    config = ArrayConfig(rows=4, cols=4, kmax=64)
    assert config.lanes == 1
    plan = plan_dsp(config, "ice40", 8)
    assert plan.requantizer_lanes == () and plan.pes == tuple(divmod(i, 4) for i in range(16))
    assert plan.planned == 8 and plan.to_dict()["pe_primitives"] == 8
    # 3×3: 7 PEs with a block of their own, 2 sharing one.
    assert plan_dsp(ArrayConfig(rows=3, cols=3, kmax=64), "ice40", 8).planned == 8
    # A budget below the device's: one block per PE (the grid pairs only beyond the device).
    small = plan_dsp(config, "ice40", 4, blocks=8)
    assert len(small.pes) == 4 and small.planned == 4 and small.requantizer_lanes == ()


def test_icebreaker_pairs_never_exceed_the_budget():
    for rows, cols in ((1, 1), (2, 2), (3, 3), (3, 5), (4, 4), (5, 5)):
        for budget in range(0, 9):
            plan = plan_dsp(ArrayConfig(rows=rows, cols=cols, kmax=16), "ice40", budget,
                            blocks=8)
            assert plan.planned <= budget, (rows, cols, budget)


def test_ulx3s_16x16_fills_the_device():
    config = ArrayConfig(rows=16, cols=16)
    plan = plan_dsp(config, "ecp5", 156)
    assert plan.requantizer_lanes == tuple(range(config.lanes))
    assert len(plan.pes) == 156 - 4 * config.lanes
    assert plan.pes[0] == (0, 0) and plan.pes[-1] == divmod(len(plan.pes) - 1, 16)
    assert plan.planned == 156


def test_wide_operands_keep_yosys_mapping():
    """17-bit activations do not fit the SB_MAC16 variant: two primitives per portable PE."""
    config = ArrayConfig(rows=2, cols=2, act_bits=16, out_bits=16, kmax=4,
                         input_zero_point_in_hw=True)
    plan = plan_dsp(config, "ice40", 8)
    assert plan.pe_cost == 2 and plan.requantizer_lanes == (0,) and len(plan.pes) == 2
    assert plan_dsp(config, "ecp5", 8).pe_cost == 1


def test_budget_is_never_exceeded():
    for budget in range(0, 30):
        plan = plan_dsp(ArrayConfig(rows=3, cols=5), "ecp5", budget)
        assert plan.planned <= budget
        # Greedy: nothing else would still fit.
        assert budget - plan.planned < min(plan.pe_cost, plan.lane_cost) or \
            len(plan.pes) == 15


def test_narrow_and_binary_weights_stay_in_luts():
    binary = ArrayConfig(rows=2, cols=2, weight_bits=1, weight_kind="binary")
    ternary = ArrayConfig(rows=2, cols=2, weight_bits=2, weight_kind="ternary")
    for config in (binary, ternary):
        plan = plan_dsp(config, "ecp5", 100)
        assert plan.pes == () and len(plan.requantizer_lanes) == config.lanes
    shift_only = ArrayConfig(rows=2, cols=2, requant="shift", rounding="half_up")
    plan = plan_dsp(shift_only, "ecp5", 100)
    assert plan.requantizer_lanes == () and len(plan.pes) == 4


def test_bad_arguments():
    config = ArrayConfig(rows=2, cols=2)
    with pytest.raises(ValueError, match="family must be one of ice40, ecp5, not 'gowin'"):
        plan_dsp(config, "gowin", 4)
    with pytest.raises(ValueError, match="budget must be >= 0, not -1"):
        plan_dsp(config, "ice40", -1)
    with pytest.raises(TypeError, match="budget must be an integer"):
        plan_dsp(config, "ice40", 2.5)


def test_script_selects_the_planned_cells():
    plan = plan_dsp(ArrayConfig(rows=1, cols=2, requant_lanes=2), "ecp5", 6)  # a lane, 2 PEs
    assert plan.pes == ((0, 0), (0, 1)) and plan.requantizer_lanes == (0,)
    script = dsp_script(plan, "top.bist.array")
    assert "top.bist.array.requantizer.lanes/w:s*_partial_0_* %ci*" in script
    assert "partial_1" not in script
    assert "top.bist.array.core.pe_0_0/t:$__soft_mul" in script
    assert "top.bist.array.core.pe_0_1/t:$__soft_mul" in script
    lines = script.splitlines()
    # Park everything, restore the chosen, map, then restore the rest for soft logic.
    park = lines.index("chtype -set $__soft_mul t:$mul")
    mapping = next(i for i, line in enumerate(lines) if line.startswith("techmap"))
    assert park < mapping and lines[-1] == "chtype -set $mul t:$__soft_mul"


def test_ice40_dsp_leaves_the_pe_variants_alone():
    """ice40_dsp would re-pack the variants' SB_MAC16s as bare multipliers."""
    script = dsp_script(plan_dsp(ArrayConfig(rows=2, cols=2), "ice40", 8), "top.bist.array")
    assert "ice40_dsp * a:qmac_dsp_pe %d" in script.splitlines()
