"""ArrayConfig: validation before any hardware, TOML round trip, sizing from golden."""

import pytest

from golden.accumulator import accumulator_bits, guard_bits
from hw.config import ArrayConfig


@pytest.mark.parametrize("changes,parameter,message", [
    (dict(rows=0), "rows", r"\[1, 256\]"),
    (dict(cols=300), "cols", r"\[1, 256\]"),
    (dict(act_bits=1), "act_bits", r"\[2, 16\]"),
    (dict(weight_bits=9), "weight_bits", r"\[1, 8\]"),
    (dict(weight_bits=1), "weight_bits", "binary"),
    (dict(weight_kind="binary"), "weight_bits", "1"),
    (dict(weight_kind="quaternary"), "weight_kind", "'integer', 'binary', 'ternary'"),
    (dict(dataflow="row_stationary"), "dataflow", "output_stationary"),
    (dict(kmax=0), "kmax", r"\[1, "),
    (dict(dataflow="ws", rows=4, kmax=8), "kmax", r"rows \(4\) for a weight-stationary"),
    (dict(rounding="stochastic"), "rounding", "half_to_even"),
    (dict(requant="shift", rounding="double"), "rounding", "shift"),
    (dict(max_left_shift=31), "max_left_shift", r"\[0, 30\]"),
    (dict(out_bits=17), "out_bits", r"\[2, 16\]"),
    (dict(fifo_depth=1), "fifo_depth", r"\[5, "),
    (dict(name="9lives"), "name", "identifier"),
    (dict(act_bits=16, weight_bits=8, kmax=1 << 10), "kmax", "accumulator"),
])
def test_bad_parameters_name_themselves(changes, parameter, message):
    with pytest.raises(ValueError, match=parameter) as info:
        ArrayConfig(**changes)
    assert pytest.importorskip("re").search(message, str(info.value)), str(info.value)


@pytest.mark.parametrize("changes,parameter", [
    (dict(rows=2.0), "rows"), (dict(act_signed=1), "act_signed"), (dict(kmax="8"), "kmax"),
])
def test_wrong_types_raise_type_error(changes, parameter):
    with pytest.raises(TypeError, match=parameter):
        ArrayConfig(**changes)


def test_toml_round_trip(tmp_path):
    config = ArrayConfig(rows=3, cols=5, act_bits=6, act_signed=False, weight_kind="ternary",
                         weight_bits=2, kmax=100, dataflow="os", rounding="half_to_even",
                         per_channel=True, fifo_depth=40, name="my_array")
    config.save(tmp_path / "a.toml")
    loaded = ArrayConfig.load(tmp_path / "a.toml")
    assert loaded == config and loaded.digest == config.digest
    assert loaded.dataflow == "output_stationary"  # the alias is normalised once
    with pytest.raises(ValueError, match="colums"):
        ArrayConfig.from_toml("colums = 3\n")


@pytest.mark.parametrize("bits,kmax", [(8, 1), (8, 2), (8, 255), (8, 256), (4, 1000), (2, 7)])
def test_accumulator_comes_from_golden(bits, kmax):
    config = ArrayConfig(act_bits=bits, weight_bits=bits, kmax=kmax)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert config.accumulator_bits == accumulator_bits(kmax, (lo, hi), (lo, hi))
    assert config.guard_bits == guard_bits(kmax)
    # The worst case of a symmetric signed product, (−2^(N−1))²·K, is the exact maximum.
    peak = kmax * lo * lo
    assert config.accumulator_bits == peak.bit_length() + 1


def test_zero_points_in_hardware_widen_the_operands():
    plain = ArrayConfig(act_signed=False, kmax=16)
    widened = plain.replace(input_zero_point_in_hw=True, weight_zero_point_in_hw=True)
    assert plain.act_range == (0, 255)
    assert widened.act_range == (-255, 255)
    assert widened.weight_range == (-255, 255)
    # max |product| grows from 255·128 to 255·255: one more bit for the same depth
    assert widened.accumulator_bits == plain.accumulator_bits + 1


def test_a_wider_accumulator_can_be_asked_for_never_a_narrower_one():
    exact = ArrayConfig(kmax=256)
    assert exact.accumulator_bits == 24
    assert exact.replace(accumulator_width=32).accumulator_bits == 32
    with pytest.raises(ValueError, match=r"accumulator_width must be in \[24, 32\], not 23"):
        exact.replace(accumulator_width=23)
    with pytest.raises(ValueError, match="output-stationary arrays only"):
        ArrayConfig(dataflow="ws", accumulator_width=32)


def test_engine_config_round_trips_through_toml(tmp_path):
    from hw.config import EngineConfig

    engine = EngineConfig(ArrayConfig(rows=2, cols=3, kmax=32, requant_lanes=2), max_k=100,
                          max_n=7, max_m=9)
    path = tmp_path / "engine.toml"
    engine.save(path)
    text = path.read_text()
    assert "[array]" in text and "max_k = 100" in text and "requant_lanes = 2" in text
    assert EngineConfig.load(path) == engine
    assert EngineConfig.load(path).digest == engine.digest
    with pytest.raises(ValueError, match="unknown configuration parameter.*max_q"):
        EngineConfig.from_toml(text.replace("max_k", "max_q"))
    with pytest.raises(ValueError, match=r"max_n must be in \[1, 16384\], not 0"):
        engine.replace(max_n=0)


@pytest.mark.parametrize("kmax,rows,cols,lanes", [
    (256, 8, 8, 1), (64, 8, 8, 1), (32, 8, 8, 2), (8, 8, 8, 8), (16, 4, 3, 1), (4, 4, 6, 6),
])
def test_default_requant_lanes_keep_a_full_rate_pass_fed(kmax, rows, cols, lanes):
    """A pass of kmax beats yields `rows` rows; each takes ceil(cols / lanes) cycles."""
    config = ArrayConfig(rows=rows, cols=cols, kmax=kmax)
    assert config.lanes == lanes
    assert rows * -(-cols // lanes) <= max(kmax, rows)       # keeps up
    if lanes > 1:
        assert rows * -(-cols // (lanes - 1)) > kmax          # and one lane fewer would not
