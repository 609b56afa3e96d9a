# amaranth: UnusedElaboratable=no
"""The formal proofs (formal/, docs/formal.md): the fast ones here, every one in `make formal`.

Each proof must end with the status it expects: PASS for a property of the hardware as it is,
FAIL for its mutant (a deliberately broken copy), so that no proof passes vacuously.
"""

import pytest
from amaranth.hdl import Fragment, Module, signed

import hw.requantizer
from boards.uart import MIN_DIVISOR, UARTBridge, UARTRx, UARTTx
from formal import catalog
from formal.catalog import FAST_WIDTHS, WINDOW_SIZES, proofs
from formal.harness import Proof, internal_signal, run, submodule
from formal.partial_sums import PartialSumCheck, RowSumCheck
from formal.pe import PECheck
from formal.requantizer import RequantizerCheck, requantizer_config
from formal.rounding import RoundShiftCheck, hardware_shift_widths
from formal.streams import Glitched, StreamCheck
from formal.uart import UARTRxCheck
from hw.config import ArrayConfig, EngineConfig
from hw.pe import OutputStationaryPE
from hw.requantizer import DSP_CHUNK, Requantizer

pytestmark = pytest.mark.formal


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("formal")


@pytest.mark.parametrize("proof", proofs(fast=True), ids=lambda p: p.name)
def test_fast_proof(proof, build_dir):
    outcome = run(proof, build_dir, timeout=300)
    assert outcome.result.status == proof.expect, outcome.result.workdir


def test_every_claim_has_a_failing_mutant_and_a_cover():
    # Families: a proof's name up to its variant; round_shift's and shift_window's are
    # combinational (no cover).
    every = [*catalog._pe_proofs(), *catalog._stream_proofs(), *catalog._requantizer_proofs(),
             *catalog._partial_sum_proofs(), *catalog._row_sum_proofs(),
             *catalog._shift_window_proofs(),
             *(p for p in proofs(fast=True) if p.name.startswith("round_shift"))]
    for proof in every:
        if proof.expect != "PASS" or proof.mode == "cover":
            continue
        family = next((name for name in ("round_shift", "shift_window", "pe_")
                       if proof.name.startswith(name)), proof.name)
        assert any(
            p.name.startswith(family) and "_mutant" in p.name and p.expect == "FAIL"
            for p in every), proof.name
        combinational = proof.mode == "bmc" and proof.depth == 1
        if not combinational:
            assert any(p.name.startswith(proof.name) and p.mode == "cover" for p in every), \
                proof.name


@pytest.mark.slow
def test_every_proof(build_dir):
    slow = [p for p in proofs() if not p.fast]
    wrong = {p.name: run(p, build_dir).result.status for p in slow}
    wrong = {name: status for name, status in wrong.items()
             if status != next(p for p in slow if p.name == name).expect}
    assert not wrong


def test_window_proofs_cover_the_int8_lanes(monkeypatch):
    """The shift_window proofs are at the sizes the default int8 lanes build (found by
    instrumenting coarse_window while they elaborate): "double" with and without a left
    shift, "single"."""
    built = set()
    original = hw.requantizer.coarse_window

    def recorder(value, amount, width):
        built.add((len(value), len(amount), width))
        return original(value, amount, width)

    monkeypatch.setattr(hw.requantizer, "coarse_window", recorder)
    for options in ({}, {"max_left_shift": 0}, {"rounding": "single"}):
        Fragment.get(Requantizer(ArrayConfig(rows=1, cols=1, **options)), None)
    assert built == {(value, amount, catalog._WINDOW_BITS) for value, amount in WINDOW_SIZES}


@pytest.mark.slow
def test_fast_widths_are_the_widest_the_hardware_builds():
    built = hardware_shift_widths()
    assert max(width for width, _ in built) == max(FAST_WIDTHS)
    assert {mode for _, mode in built} >= {"half_away_from_zero", "half_up"}


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match=r"width must be in \[2, 96\], not 1"):
        RoundShiftCheck(1, "floor")
    with pytest.raises(ValueError, match="mode must be one of"):
        RoundShiftCheck(8, "nearest")
    with pytest.raises(ValueError, match=r"max_amount must be in \[0, 63\], not 64"):
        RoundShiftCheck(8, "floor", max_amount=64)
    with pytest.raises(TypeError, match="output-stationary ArrayConfig"):
        PECheck(ArrayConfig(dataflow="ws", rows=4))
    with pytest.raises(ValueError, match="cover must be one of"):
        PECheck(ArrayConfig(kmax=4), cover="overflow")
    with pytest.raises(ValueError, match="mode must be one of"):
        Proof(name="x", prop="", widths="", design=None, mode="sim")
    with pytest.raises(ValueError, match="solver must be one of"):
        Proof(name="x", prop="", widths="", design=None, solver="cvc5")


def test_requantizer_and_partial_sum_checks_refuse_bad_parameters():
    with pytest.raises(TypeError, match="one-column ArrayConfig"):
        RequantizerCheck(ArrayConfig(rows=2, cols=2))
    with pytest.raises(ValueError, match=r"value_bits must be in \[2, 32\], not 33"):
        RequantizerCheck(requantizer_config(), value_bits=33)
    with pytest.raises(ValueError, match=r"multiplier_bits must be in \[1, 31\], not 0"):
        RequantizerCheck(requantizer_config(), multiplier_bits=0)
    with pytest.raises(TypeError, match="1×1 output-stationary EngineConfig"):
        PartialSumCheck(EngineConfig(array=ArrayConfig(rows=2, cols=2, kmax=4), max_k=8))
    with pytest.raises(TypeError, match="one-column weight-stationary EngineConfig"):
        RowSumCheck(EngineConfig(array=ArrayConfig(rows=2, cols=1, kmax=4), max_k=8))


def test_partial_products_make_the_product():
    # The full-width argument's algebra (docs/formal.md): the hardware's 16 × 16 partial
    # products of x + 2^31 and M0, less M0 · 2^31, are x · M0, over unbounded integers (z3).
    z3 = pytest.importorskip("z3")
    x, m0 = z3.Ints("x m0")
    a = z3.Ints("a0 a1")
    b = z3.Ints("b0 b1")
    chunk = 1 << DSP_CHUNK
    solver = z3.Solver()
    solver.add(x + (1 << 31) == a[0] + chunk * a[1], m0 == b[0] + chunk * b[1])
    solver.add(sum(a[i] * b[j] * chunk ** (i + j) for i in range(2) for j in range(2))
               - m0 * (1 << 31) != x * m0)
    assert solver.check() == z3.unsat


def test_stream_checker_takes_ports_by_name():
    from hw.top import MacArray
    array = MacArray(ArrayConfig(rows=2, cols=2, kmax=4))
    with pytest.raises(ValueError, match="ports must name output streams .* not 'operands'"):
        StreamCheck(array, ports=["operands"])
    with pytest.raises(ValueError, match="port must be an output stream"):
        Glitched(array, "operands", "lose_beat")
    with pytest.raises(ValueError, match="defect must be one of"):
        Glitched(array, "results", "bit_flip")
    with pytest.raises(ValueError, match="balance must be given"):
        StreamCheck(array, check="conservation")


def test_internal_signal_names_what_is_there():
    pe = OutputStationaryPE(act_shape=signed(8), weight_shape=signed(8), acc_bits=20)
    assert len(internal_signal(Module(), pe, None, "acc")) == 20
    pe = OutputStationaryPE(act_shape=signed(8), weight_shape=signed(8), acc_bits=20)
    with pytest.raises(LookupError, match="drives no signal named 'accumulator'.*acc"):
        internal_signal(Module(), pe, None, "accumulator")


def test_submodule_finds_the_one_of_its_class():
    bridge = UARTBridge(catalog._BRIDGE_CONFIG, divisor=MIN_DIVISOR)
    fragment = Fragment.get(bridge, None)
    assert isinstance(submodule(fragment, UARTTx), UARTTx)
    with pytest.raises(LookupError, match="0 submodules of class UARTBridge"):
        submodule(fragment, UARTBridge)


def test_uart_check_refuses_an_unknown_mutant():
    with pytest.raises(ValueError, match="mutant must be one of silent_overrun or None, not 'x'"):
        UARTRxCheck(UARTRx(MIN_DIVISOR), MIN_DIVISOR, mutant="x")
