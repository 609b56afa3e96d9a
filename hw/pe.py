"""Processing elements: where activations and weights are multiplied and accumulated.

Both PEs are free-running: operands move one PE per clock and carry their own ``valid`` flag, so
the array never needs a global stall (bubbles are simply invalid beats). Flow control happens at
the array boundary (see :mod:`hw.top`).
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.accumulator import signed_width

__all__ = [
    "PassFlags", "TileFlags", "delay", "operand_shape", "multiply",
    "MIN_SPLIT_WEIGHT_BITS", "split_multiply", "OutputStationaryPE", "WeightStationaryPE",
]


class PassFlags(data.Struct):
    """Travels with an activation through an output-stationary row."""
    valid: 1
    first: 1  # first beat of a pass: the accumulator restarts
    last: 1   # last beat of a pass: the sum is complete


class TileFlags(data.Struct):
    """Travels with an activation through a weight-stationary row."""
    valid: 1
    last: 1   # last activation of a weight tile
    bank: 1   # which of the two weight banks this activation multiplies


def operand_shape(lo, hi):
    """Narrowest shape holding every integer in [lo, hi]."""
    if lo >= 0:
        return unsigned(max(hi.bit_length(), 1))
    return signed(signed_width(lo, hi))


def delay(m, value, cycles, name, *, reset_less=False):
    """``value`` delayed by ``cycles`` registers (``reset_less``: registers no reset clears)."""
    for stage in range(cycles):
        delayed = Signal.like(value, name=f"{name}_d{stage + 1}", reset_less=reset_less)
        m.d.sync += delayed.eq(value)
        value = delayed
    return value


def multiply(activation, weight, weight_kind):
    """Product of an activation and a weight operand.

    Binary weights are one bit (1 means +1, 0 means −1), so their "multiplier" is a negation.
    """
    if weight_kind == "binary":
        return Mux(weight, activation, -activation)
    return activation * weight


class OutputStationaryPE(wiring.Component):
    """A multiply-accumulate cell whose accumulator stays in place for a whole pass.

    Activations (with :class:`PassFlags`) enter from the left and leave to the right one cycle
    later; weights enter from the top and leave at the bottom one cycle later. On a ``first``
    beat the accumulator restarts; on a ``last`` beat the finished sum is copied to ``result``
    (so the next pass may start while the previous one is read out) and ``result_valid`` pulses.

    Latency: ``result`` holds the sum 1 cycle after the ``last`` beat arrives, plus one per
    product register (``register_product``, and ``product_pipeline`` more).
    """

    def __init__(self, *, act_shape, weight_shape, acc_bits, weight_kind="integer",
                 register_product=True, product_pipeline=0):
        self._weight_kind = weight_kind
        self._product_registers = _product_registers(register_product, product_pipeline)
        self._acc_shape = signed(acc_bits)
        super().__init__({
            "x_in": In(act_shape),
            "w_in": In(weight_shape),
            "flags_in": In(PassFlags),
            "x_out": Out(act_shape),
            "w_out": Out(weight_shape),
            "flags_out": Out(PassFlags),
            "result": Out(signed(acc_bits)),
            "result_valid": Out(1),
        })

    #: Restart the accumulator by clearing it the cycle before a ``first`` product reaches the
    #: adder (possible with ``register_product``: the flags arrive a cycle ahead of their
    #: product) instead of muxing zero into the adder. Same ports and cycles, no restart mux;
    #: the DSP variants (:mod:`hw.dsp_pe`) use it. The portable PE keeps ``acc`` equal to the
    #: running sum at every cycle, which ``formal/pe.py`` proves it against.
    _early_restart = False

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [
            self.x_out.eq(self.x_in),
            self.w_out.eq(self.w_in),
            self.flags_out.eq(self.flags_in),
        ]

        # The flags travel beside the product, one register per product register.
        registers = self._product_registers
        ahead = delay(m, self.flags_in, max(registers - 1, 0), "flags_ahead")
        flags = delay(m, ahead, min(registers, 1), "flags_reg")
        early = self._early_restart and registers > 0
        acc = Signal(self._acc_shape, name="acc")
        # The accumulator is exactly wide enough for kmax products (golden.accumulator), so this
        # truncation to acc_bits never drops a significant bit for a legal pass.
        total = Signal(self._acc_shape)
        m.d.comb += total.eq(self._multiply_add(m, acc if early else Mux(flags.first, 0, acc)))
        m.d.sync += self.result_valid.eq(flags.valid & flags.last)
        with m.If(flags.valid):
            m.d.sync += acc.eq(total)
            with m.If(flags.last):
                m.d.sync += self.result.eq(total)
        if early:
            # Cleared here, the accumulator is 0 when this beat's product reaches the adder
            # (a cycle later); the sum being finished this cycle still leaves through `total`.
            with m.If(ahead.valid & ahead.first):
                m.d.sync += acc.eq(0)
        return m

    def _multiply_add(self, m, addend):
        """``addend`` + x_in·w_in (the flags are delayed alike by :meth:`elaborate`)."""
        return addend + self._product(m, self.w_in)

    def _product(self, m, weight):
        """x_in·``weight`` behind the product registers. From two on, the first is the
        forwarding registers ``x_out`` and ``w_out``: the multiplier starts at this PE's own
        flip-flops, not at a route from its neighbour."""
        registers = self._product_registers
        if registers > 1:
            return _product(m, self.x_out, self.w_out, self._weight_kind, registers - 1)
        return _product(m, self.x_in, weight, self._weight_kind, registers)


class WeightStationaryPE(wiring.Component):
    """A multiply-add cell that holds two banks of weights and passes partial sums down.

    Weights are loaded by shifting them down the column into one bank (``load`` with
    ``load_bank``) while the other bank computes. Activations (with :class:`TileFlags`) enter
    from the left; the ``bank`` flag travelling with each activation selects its weight, so a
    bank switch ripples through the array in step with the data. The partial sum from above
    plus this PE's product leaves at the bottom one cycle later, plus one per product
    register (``register_product``, and ``product_pipeline`` more).
    """

    def __init__(self, *, act_shape, weight_shape, psum_in_bits, psum_out_bits,
                 weight_kind="integer", register_product=True, product_pipeline=0):
        self._weight_kind = weight_kind
        self._product_registers = _product_registers(register_product, product_pipeline)
        # The top row has no partial sum above it; a constant-zero 1-bit port keeps the
        # Verilog free of zero-width vectors.
        psum_in_shape = signed(max(psum_in_bits, 1))
        super().__init__({
            "x_in": In(act_shape),
            "flags_in": In(TileFlags),
            "psum_in": In(psum_in_shape),
            "x_out": Out(act_shape),
            "flags_out": Out(TileFlags),
            "psum_out": Out(signed(psum_out_bits)),
            "w_load_in": In(weight_shape),
            "w_load_out": Out(weight_shape),  # this PE's weight in the loading bank
            "load": In(1),
            "load_bank": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        weight_shape = self.w_load_in.shape()
        banks = [Signal(weight_shape, name=f"weight_bank{i}") for i in range(2)]
        for index, bank in enumerate(banks):
            with m.If(self.load & (self.load_bank == index)):
                m.d.sync += bank.eq(self.w_load_in)
        m.d.comb += self.w_load_out.eq(Mux(self.load_bank, banks[1], banks[0]))

        m.d.sync += [self.x_out.eq(self.x_in), self.flags_out.eq(self.flags_in)]
        self._multiply_add(m, Mux(self.flags_in.bank, banks[1], banks[0]))
        return m

    def _multiply_add(self, m, weight):
        """Drive ``psum_out`` with psum_in + x_in·``weight``, one register later, plus one per
        product register."""
        # Keep the partial sum aligned with the product registers.
        psum_in = delay(m, self.psum_in, self._product_registers, "psum_delayed")
        m.d.sync += self.psum_out.eq(psum_in + self._product(m, weight))

    def _product(self, m, weight):
        """x_in·``weight`` behind the product registers; from two on, the first is ``x_out``
        and a register of the selected weight."""
        registers = self._product_registers
        if registers > 1:
            weight_reg = Signal.like(weight, name="weight_reg")
            m.d.sync += weight_reg.eq(weight)
            return _product(m, self.x_out, weight_reg, self._weight_kind, registers - 1)
        return _product(m, self.x_in, weight, self._weight_kind, registers)


def _product_registers(register_product, product_pipeline):
    """Registers between a PE's operands and its adder: ``register_product``'s one and
    ``product_pipeline`` more."""
    if product_pipeline and not register_product:
        raise ValueError(f"product_pipeline={product_pipeline} needs register_product=True, "
                         f"not False")
    return int(register_product) + product_pipeline


#: Narrowest integer weight whose product :func:`_product` splits in two halves when it has
#: two registers to spread the multiply across (narrower ones multiply in one step).
MIN_SPLIT_WEIGHT_BITS = 4


def split_multiply(m, activation, weight):
    """``activation``·``weight`` in two registered steps: the products of the weight's low
    half (unsigned) and its high half (signed if the weight is) are registered, then added at
    their offset. Each step is half the partial-product rows of the whole multiply, so a LUT
    multiplier (a PE beyond the device's DSP blocks) is cut in two. One register of latency;
    the sum is left combinational for the caller's next register."""
    low_bits = weight.shape().width // 2
    low_half = weight[:low_bits]
    high_half = weight[low_bits:].as_signed() if weight.shape().signed else weight[low_bits:]
    low_product = Signal((activation * low_half).shape(), name="product_low")
    high_product = Signal((activation * high_half).shape(), name="product_high")
    m.d.sync += [low_product.eq(activation * low_half), high_product.eq(activation * high_half)]
    return low_product + (high_product << low_bits)


def _product(m, activation, weight, weight_kind, registers):
    """The PEs' product of ``activation`` and ``weight`` behind ``registers`` registers,
    named ``product``. With two registers or more, an integer weight of at least
    :data:`MIN_SPLIT_WEIGHT_BITS` bits is multiplied in two steps (:func:`split_multiply`)
    that take the first of them."""
    if (registers >= 2 and weight_kind == "integer" and
            weight.shape().width >= MIN_SPLIT_WEIGHT_BITS):
        return delay(m, split_multiply(m, activation, weight), registers - 1, "product")
    return delay(m, multiply(activation, weight, weight_kind), registers, "product")
