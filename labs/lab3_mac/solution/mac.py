"""Lab 3: the MAC processing element and its accumulator, in Amaranth.

Fill in every TODO; ``qmac lab check 3`` simulates your PE in Amaranth's simulator against
exact integer sums. ``python area.py`` synthesizes it with Yosys for the area table.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned  # noqa: F401 (Signal: yours)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: Weight encodings: two's complement, one bit (1 → +1, 0 → −1), two-bit signed {−1, 0, +1}.
WEIGHT_KINDS = ("integer", "binary", "ternary")


def accumulator_bits(n, k):
    """The seeds' accumulator width for K-deep dot products of signed N-bit operands:
    2N + M bits with M = ⌈log2 K⌉ (M = 0 for K = 1). Integers only (no math.log2)."""
    # SOLUTION: a product of two N-bit numbers needs 2N bits; K of them add ⌈log2 K⌉ bits.
    return 2 * n + (k - 1).bit_length()
    # END SOLUTION


def weight_shape(kind, bits):
    """The Amaranth shape of a weight of ``kind`` (one of :data:`WEIGHT_KINDS`):
    ``signed(bits)`` for integer weights, ``unsigned(1)`` for binary, ``signed(2)`` for
    ternary (whatever ``bits`` says)."""
    # SOLUTION: one shape per kind.
    if kind == "integer":
        return signed(bits)
    if kind == "binary":
        return unsigned(1)
    if kind == "ternary":
        return signed(2)
    raise ValueError(f"kind must be one of {', '.join(WEIGHT_KINDS)}, not {kind!r}")
    # END SOLUTION


def worst_case_operands(n, k):
    """(a, w): two lists of K signed N-bit ints whose dot product Σ a_i·w_i is the largest in
    magnitude of all K-deep dot products of signed N-bit operands."""
    # SOLUTION: which product of two N-bit numbers is largest in magnitude?
    most_negative = -(1 << (n - 1))
    return [most_negative] * k, [most_negative] * k
    # END SOLUTION


class MacPE(wiring.Component):
    """A multiply-accumulate processing element.

    Parameters
    ----------
    act_bits : int
        Width of the signed activation ``a``.
    acc_bits : int
        Width of the signed accumulator ``acc``.
    weight_kind : str
        One of :data:`WEIGHT_KINDS`; ``w``'s shape is :func:`weight_shape`.
    weight_bits : int
        Width of an integer weight (default ``act_bits``).

    Members
    -------
    a : In(signed(act_bits))
    w : In(weight_shape(weight_kind, weight_bits))
        Binary: 1 means +1 and 0 means −1. Ternary: the signed value −1, 0 or +1.
    valid : In(1)
        This cycle's a and w are a beat of the dot product.
    first : In(1)
        This beat starts a new dot product: the accumulator restarts from it.
    acc : Out(signed(acc_bits))
        A register: after a clock edge with ``valid``, acc = (0 if first else acc) + a·w,
        wrapped to acc_bits (two's complement); without ``valid`` it holds.
    """

    def __init__(self, act_bits, acc_bits, weight_kind="integer", weight_bits=None):
        self.weight_kind = weight_kind
        super().__init__({
            "a": In(signed(act_bits)),
            "w": In(weight_shape(weight_kind, act_bits if weight_bits is None else weight_bits)),
            "valid": In(1),
            "first": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        # SOLUTION: the product (a negation for binary weights), then the accumulator register.
        if self.weight_kind == "binary":
            product = Mux(self.w, self.a, -self.a)
        else:
            product = self.a * self.w
        with m.If(self.valid):
            m.d.sync += self.acc.eq(Mux(self.first, 0, self.acc) + product)
        # END SOLUTION
        return m
