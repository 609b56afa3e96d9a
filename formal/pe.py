"""``hw.pe.OutputStationaryPE``: no accumulator wrap for any legal pass.

A legal pass is at most ``kmax`` valid beats since the last ``first`` beat, of operands in the
configuration's ranges (:attr:`hw.config.ArrayConfig.act_range`, ``weight_range``). The wrapper
keeps an exact reference sum of the same products in a register wide enough for any pass
(sized from the operand corners, not from the PE's width) and asserts

* the PE's accumulator equals the reference (so it never wraps),
* the reference lies in [n·min(p_lo, 0), n·max(p_hi, 0)] after n beats (the invariant that
  makes the proof inductive, so it holds for every pass length, not only a bounded one),
* every ``result`` equals the reference sum of its pass.

A cover shows a legal pass whose sum does not fit one bit fewer: the exact width is needed.
"""

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from golden.accumulator import product_bounds
from hw.config import ArrayConfig
from hw.pe import OutputStationaryPE, PassFlags, operand_shape

from .harness import hold_reset_low, internal_signal

__all__ = ["COVERS", "PECheck", "pe_shapes"]

#: Name of the PE's accumulator register (reached for the induction invariant).
ACCUMULATOR = "acc"
#: Covers :class:`PECheck` can state.
COVERS = ("wrap", "result")


def pe_shapes(config):
    """Activation and weight operand shapes of the output-stationary grid's PEs
    (as :class:`hw.systolic.OutputStationaryArray` builds them)."""
    weight = (unsigned(1) if config.weight_kind == "binary"  # 1 means +1, 0 means −1
              else operand_shape(*config.weight_range))
    return operand_shape(*config.act_range), weight


def _signed_bits(magnitude):
    """Signed width holding every integer in [−magnitude, magnitude]."""
    return magnitude.bit_length() + 1


class PECheck(wiring.Component):
    """No-wrap proof harness of one :class:`hw.pe.OutputStationaryPE` built for ``config``.

    Parameters
    ----------
    config : ArrayConfig
        Output-stationary; gives operand shapes and ranges, ``kmax``, ``register_product``,
        ``product_pipeline``.
    acc_bits : int or None
        Accumulator width of the PE under test; default ``config.accumulator_bits``. One less
        is the mutant that must fail.
    cover : str
        Which cover the wrapper states (sby's cover mode must reach every one): ``"wrap"``, a
        legal pass whose sum needs every accumulator bit; ``"result"``, a pass that ends with a
        nonzero result (shallow, for deep ``kmax``).
    """

    def __init__(self, config, *, acc_bits=None, cover="wrap"):
        if cover not in COVERS:
            raise ValueError(f"cover must be one of {', '.join(COVERS)}, not {cover!r}")
        self._cover = cover
        if not isinstance(config, ArrayConfig) or config.weight_stationary:
            raise TypeError(f"config must be an output-stationary ArrayConfig, not {config!r}")
        self._config = config
        self._acc_bits = config.accumulator_bits if acc_bits is None else acc_bits
        if not isinstance(self._acc_bits, int) or not 2 <= self._acc_bits <= 64:
            raise ValueError(f"acc_bits must be in [2, 64], not {acc_bits!r}")
        act_shape, weight_shape = pe_shapes(config)
        super().__init__({
            "x": In(act_shape),
            "w": In(weight_shape),
            "flags": In(PassFlags),
        })

    def elaborate(self, platform):
        cfg = self._config
        kmax = cfg.kmax
        m = Module()
        hold_reset_low(m)
        act_shape, weight_shape = pe_shapes(cfg)
        pe = OutputStationaryPE(act_shape=act_shape, weight_shape=weight_shape,
                                acc_bits=self._acc_bits, weight_kind=cfg.weight_kind,
                                register_product=cfg.register_product,
                                product_pipeline=cfg.product_pipeline)
        acc = internal_signal(m, pe, platform, ACCUMULATOR)
        m.d.comb += [pe.x_in.eq(self.x), pe.w_in.eq(self.w), pe.flags_in.eq(self.flags)]

        # The environment: operands in range, at most kmax beats since the last `first`.
        act_lo, act_hi = cfg.act_range
        m.d.comb += Assume((self.x >= act_lo) & (self.x <= act_hi))
        if cfg.weight_kind == "binary":
            weight = Mux(self.w, 1, -1)
        else:
            weight_lo, weight_hi = cfg.weight_range
            m.d.comb += Assume((self.w >= weight_lo) & (self.w <= weight_hi))
            weight = self.w
        depth = Signal(range(kmax + 1))   # valid beats since the last `first`, this one included
        beat, first = self.flags.valid, self.flags.first
        m.d.comb += Assume(~(beat & ~first & (depth == kmax)))
        with m.If(beat):
            m.d.sync += depth.eq(Mux(first, 1, depth + 1))

        # The reference: exact products, accumulated where the PE accumulates them.
        p_lo, p_hi = product_bounds(cfg.act_range, cfg.weight_range)
        p_lo, p_hi = min(p_lo, 0), max(p_hi, 0)
        ref_shape = signed(_signed_bits(kmax * max(-p_lo, p_hi)) + 1)
        product, flags, count = self.x * weight, self.flags, depth
        for stage in range(int(cfg.register_product) + int(cfg.product_pipeline)):
            product_reg = Signal(signed(len(product) + 1), name=f"ref_product{stage}")
            flags_reg = Signal(PassFlags, name=f"ref_flags{stage}")
            count_reg = Signal.like(depth, name=f"ref_count{stage}")
            m.d.sync += [product_reg.eq(product), flags_reg.eq(flags), count_reg.eq(count)]
            product, flags, count = product_reg, flags_reg, count_reg
        ref = Signal(ref_shape)
        ref_result = Signal(ref_shape)
        total = Mux(flags.first, 0, ref) + product
        with m.If(flags.valid):
            m.d.sync += ref.eq(total)
            with m.If(flags.last):
                m.d.sync += ref_result.eq(total)

        m.d.comb += [
            Assert(depth <= kmax),
            Assert((ref >= count * p_lo) & (ref <= count * p_hi)),
            Assert(acc == ref),
        ]
        with m.If(pe.result_valid):
            m.d.comb += Assert(pe.result == ref_result)
        if self._cover == "wrap":
            narrower = self._acc_bits - 1
            m.d.comb += Cover((ref < -(1 << (narrower - 1))) | (ref >= (1 << (narrower - 1))))
        else:
            m.d.comb += Cover(pe.result_valid & (pe.result != 0))
        return m
