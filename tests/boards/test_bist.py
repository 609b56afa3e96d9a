# amaranth: UnusedElaboratable=no
"""The self test in Amaranth's simulator: it passes on golden's vectors and catches faults."""

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from boards.bist import BistTop, make_vectors
from golden.layers import fully_connected
from hw.config import ArrayConfig
from hw.host import LayerParams

CONFIGS = {
    "os int8": ArrayConfig(rows=2, cols=2, kmax=8),
    "ws per-channel": ArrayConfig(rows=2, cols=3, dataflow="ws", per_channel=True),
    "os shift-only int4": ArrayConfig(rows=2, cols=2, act_bits=4, weight_bits=4, out_bits=4,
                                      kmax=4, requant="shift", rounding="half_to_even"),
    "os binary, zero points in hw": ArrayConfig(
        rows=3, cols=2, kmax=6, weight_bits=1, weight_kind="binary", act_signed=False,
        out_signed=False, input_zero_point_in_hw=True),
}


def run_bist(vectors, max_cycles=4000):
    dut = BistTop(vectors)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    result = {}

    async def bench(ctx):
        cycles = 0
        while cycles < max_cycles and not (ctx.get(dut.rounds) >= 2 or ctx.get(dut.failed)):
            await ctx.tick()
            cycles += 1
        result.update(rounds=ctx.get(dut.rounds), passed=ctx.get(dut.passed),
                      failed=ctx.get(dut.failed), mismatches=ctx.get(dut.mismatches),
                      cycles=cycles)

    sim.add_testbench(bench)
    sim.run()
    return result


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_passes_on_golden_vectors(name):
    result = run_bist(make_vectors(CONFIGS[name]))
    assert result["rounds"] == 2 and result["passed"] == 1
    assert result["failed"] == 0 and result["mismatches"] == 0


def _corrupt_expected(vectors, test, row, lane):
    expected = [list(rows) for rows in vectors.expected]
    lo, hi = vectors.config.out_range
    value = expected[test][row]["y"][lane]
    y = list(expected[test][row]["y"])
    y[lane] = lo if value != lo else hi
    expected[test][row] = {**expected[test][row], "y": y}
    return dataclasses.replace(vectors, expected=tuple(map(tuple, expected)))


@pytest.mark.parametrize("name", ["os int8", "ws per-channel"])
def test_a_wrong_expected_value_fails(name):
    vectors = make_vectors(CONFIGS[name])
    result = run_bist(_corrupt_expected(vectors, test=2, row=1, lane=1))
    assert result["failed"] == 1 and result["passed"] == 0
    assert result["mismatches"] == 1


def test_a_wrong_last_flag_fails():
    vectors = make_vectors(CONFIGS["os int8"])
    expected = [list(rows) for rows in vectors.expected]
    expected[0][0] = {**expected[0][0], "last": 1 - expected[0][0]["last"]}
    result = run_bist(dataclasses.replace(vectors, expected=tuple(map(tuple, expected))))
    assert result["failed"] == 1


def test_a_missing_row_times_out():
    vectors = make_vectors(CONFIGS["os int8"])
    # One more expected row per test than the array will ever deliver.
    expected = tuple(rows + (rows[-1],) for rows in vectors.expected)
    result = run_bist(dataclasses.replace(vectors, expected=expected), max_cycles=20000)
    assert result["failed"] == 1 and result["rounds"] == 0 and result["mismatches"] == 0


def test_vectors_flip_every_operand_bit():
    config = ArrayConfig(rows=2, cols=3, kmax=8)
    vectors = make_vectors(config)
    beats = [beat for test in vectors.streams["operands"] for beat in test]
    x = np.array([beat["x"] for beat in beats])
    w = np.array([beat["w"] for beat in beats])
    for lanes in (x, w):
        for lane in lanes.T:          # every lane sees all-zero and all-one bit patterns
            assert 0 in lane and -1 in lane
    lasts = [beat["last"] for beat in beats]
    assert set(lasts) == {0, 1}
    # Bias and M0 bits flip through complemented pairs in the first two tests.
    first, second = vectors.params[0], vectors.params[1]
    assert [~b for b in first["bias"]] == second["bias"]
    mask = (1 << 30) - 1
    assert [m & mask for m in second["multiplier"]] == [~m & mask for m in first["multiplier"]]
    # Only M0's bit 30 (set in every TFLite multiplier) stays constant.
    assert vectors.constant_bits == config.requant_channels


def _decoded_weights(config, lanes):
    """Weights from the lanes' encoding (binary: bit 1 is +1, bit 0 is −1)."""
    lanes = np.asarray(lanes, np.int64)
    return 2 * lanes - 1 if config.weight_kind == "binary" else lanes


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_expected_rows_are_golden_layers_of_legal_parameters(name):
    """Every test's parameters are a legal layer, and its expected rows are what golden/
    computes from the beats actually streamed (decoded here, per pass or batch)."""
    config = CONFIGS[name]
    vectors = make_vectors(config)
    outputs = set()
    for t, p in enumerate(vectors.params):
        layer = LayerParams.for_config(
            config, n=config.cols, bias=p["bias"], multiplier=p.get("multiplier"),
            shift=p["shift"] if config.per_channel else p["shift"][0],
            output_zero_point=p["output_zero_point"], act_min=p["act_min"],
            act_max=p["act_max"], input_zero_point=p.get("input_zero_point", 0),
            weight_zero_point=p.get("weight_zero_point", 0))
        if config.weight_stationary:   # weights [cols, K = rows], then a batch of x rows
            w = _decoded_weights(config, [b["w"] for b in vectors.streams["weights"][t]]).T
            passes = [(np.array([b["x"] for b in vectors.streams["activations"][t]]), w)]
        else:                          # operand beats: column k of x and of w, per pass
            beats, passes, start = vectors.streams["operands"][t], [], 0
            for end in (i + 1 for i, b in enumerate(beats) if b["last"]):
                x = np.array([b["x"] for b in beats[start:end]]).T
                passes.append((x, _decoded_weights(config, [b["w"] for b in
                                                            beats[start:end]]).T))
                start = end
        got = np.array([row["y"] for row in vectors.expected[t]])
        want = np.concatenate([fully_connected(
            x, w, layer.bias, input_zero_point=layer.input_zero_point,
            weight_zero_point=layer.weight_zero_point,
            output_zero_point=layer.output_zero_point,
            multiplier=None if config.requant == "shift" else layer.multiplier,
            shift=layer.shift, act_min=layer.act_min, act_max=layer.act_max,
            rounding=config.rounding) for x, w in passes])
        np.testing.assert_array_equal(got, want)
        outputs.update(got.flat)
    assert len(outputs) > 2   # not one clamped value throughout


def test_bad_arguments():
    with pytest.raises(TypeError, match="config must be an ArrayConfig"):
        make_vectors({"rows": 2})
    with pytest.raises(ValueError, match=r"tests must be in \[2, 64\], not 1"):
        make_vectors(ArrayConfig(rows=2, cols=2), tests=1)
    with pytest.raises(TypeError, match="vectors must be BistVectors"):
        BistTop(None)
