"""The UART link's streams: the receiver loses no byte unreported, the bridge's replies keep the
stream protocol toward the transmitter.

:class:`UARTRxCheck` drives :class:`boards.uart.UARTRx`'s ``rx`` pin from a line model: an 8N1
sender at the nominal bit time (``divisor`` cycles a bit) that starts a byte of any value
whenever the free input ``send`` says so, back to back or after any gap. It counts the bytes
the line carried and asserts

* every byte is accounted for: bytes sent = bytes taken on ``o`` + ``overrun`` pulses + the
  byte waiting on ``o``, exactly while the line is idle and with at most the byte on the wire
  missing while it sends (no byte lost unreported, none from nothing or twice);
* every byte ``o`` offers afresh is the byte the line carried last.

:class:`BridgeTxCheck` asserts the stream rule ("valid holds until ready, payload stable while
waiting") on the beats :class:`boards.uart.UARTBridge` offers its transmitter, which are
internal: the wrapper finds the bridge's :class:`boards.uart.UARTTx` among the elaborated
bridge's submodules (:func:`formal.harness.submodule`) and reads its ``i`` port. Its mutants
(:class:`DefectiveBridge`) override, inside the elaborated bridge, what it drives onto that
port.
"""

from amaranth.hdl import Assert, Cat, Const, Cover, Fragment, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from boards.uart import CHAR_BITS, UARTBridge, UARTTx

from .harness import hold_reset_low, submodule
from .streams import protocol

__all__ = ["BRIDGE_DEFECTS", "MUTANTS", "BridgeTxCheck", "DefectiveBridge", "UARTRxCheck"]

#: Mutants of :class:`UARTRxCheck`: a receiver whose ``overrun`` output is stuck at 0.
MUTANTS = ("silent_overrun",)
#: Defects :class:`DefectiveBridge` puts on the bridge's beats toward its transmitter.
BRIDGE_DEFECTS = ("drop_valid", "unstable_payload")


class UARTRxCheck(wiring.Component):
    """Byte conservation of a UART receiver fed by an 8N1 line model.

    Parameters
    ----------
    receiver : wiring.Component
        A :class:`boards.uart.UARTRx` (or a :class:`formal.streams.Glitched` copy of it, whose
        ``glitch`` input becomes free), built but not elaborated.
    divisor : int
        The receiver's clock cycles per bit: the line model's bit time.
    mutant : str or None
        One of :data:`MUTANTS`: count the receiver as if its ``overrun`` were stuck at 0.
    """

    def __init__(self, receiver, divisor, *, mutant=None):
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"mutant must be one of {', '.join(MUTANTS)} or None, "
                             f"not {mutant!r}")
        self._receiver, self._divisor, self._mutant = receiver, divisor, mutant
        members = {"send": In(1), "byte": In(8), "ready": In(1)}
        if "glitch" in receiver.signature.members:
            members["glitch"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        m.submodules.rx = rx = self._receiver
        m.d.comb += rx.o.ready.eq(self.ready)
        if "glitch" in rx.signature.members:
            m.d.comb += rx.glitch.eq(self.glitch)

        # The line: start bit, 8 data bits LSB first, stop bit, each `divisor` cycles.
        char = Signal(CHAR_BITS, init=(1 << CHAR_BITS) - 1)   # the line level is char[0]
        left = Signal(range(CHAR_BITS + 1))                    # bits still to send
        timer = Signal(range(self._divisor))
        value = Signal(8)                                      # the byte sent last
        sending = left != 0
        m.d.comb += rx.rx.eq(char[0])
        with m.If(~sending & self.send):
            m.d.sync += [char.eq(Cat(Const(0, 1), self.byte, Const(1, 1))),
                         left.eq(CHAR_BITS), timer.eq(self._divisor - 1), value.eq(self.byte)]
        with m.Elif(sending):
            with m.If(timer == 0):
                m.d.sync += [char.eq(Cat(char[1:], Const(1, 1))), left.eq(left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)

        # Bytes sent (counted from their start bit) and accounted for by the receiver.
        started, taken, overruns = (Signal(8, name=name)
                                    for name in ("started", "taken", "overruns"))
        overrun = Const(0) if self._mutant == "silent_overrun" else rx.overrun
        with m.If(~sending & self.send):
            m.d.sync += started.eq(started + 1)
        with m.If(rx.o.valid & rx.o.ready):
            m.d.sync += taken.eq(taken + 1)
        with m.If(overrun):
            m.d.sync += overruns.eq(overruns + 1)
        accounted = Signal(9)
        m.d.comb += accounted.eq(taken + overruns + rx.o.valid + overrun)
        m.d.comb += [
            Assert(accounted <= started),
            Assert(started <= accounted + sending),
        ]

        # A byte offered afresh (not the one that waited) is the byte the line carried last.
        waited = Signal()
        m.d.sync += waited.eq(rx.o.valid & ~rx.o.ready)
        fresh = rx.o.valid & ~waited
        m.d.comb += Assert(~fresh | (rx.o.payload == value))
        # An overrun happens, and the byte that waited through it is then taken.
        dropped = Signal()
        with m.If(overrun):
            m.d.sync += dropped.eq(1)
        m.d.comb += Cover(dropped & rx.o.valid & rx.o.ready)
        return m


class DefectiveBridge(UARTBridge):
    """A broken copy of :class:`boards.uart.UARTBridge`: ``defect`` on the beats it offers its
    :class:`boards.uart.UARTTx`, struck whenever ``glitch`` is high.

    The beats are internal, so the copy overrides, in the bridge's own elaborated module, what
    it drives onto the transmitter's ``i`` port.

    Parameters
    ----------
    config, divisor
        As for :class:`boards.uart.UARTBridge`.
    defect : str
        One of :data:`BRIDGE_DEFECTS`. ``"drop_valid"``: ``valid`` falls (a waiting beat is
        withdrawn). ``"unstable_payload"``: the payload is ``byte`` instead (it changes while
        the beat waits).

    Attributes
    ----------
    glitch : Signal(1)
        Strike the defect this cycle (free in a proof).
    byte : Signal(8)
        The payload offered while struck, with ``"unstable_payload"`` (free in a proof).
    """

    def __init__(self, config, *, divisor, defect):
        if defect not in BRIDGE_DEFECTS:
            raise ValueError(f"defect must be one of {', '.join(BRIDGE_DEFECTS)}, "
                             f"not {defect!r}")
        super().__init__(config, divisor=divisor)
        self._defect = defect
        self.glitch = Signal()
        self.byte = Signal(CHAR_BITS)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        beats = m.submodules.uart_tx.i
        with m.If(self.glitch):
            if self._defect == "drop_valid":
                m.d.comb += beats.valid.eq(0)
            else:
                m.d.comb += beats.payload.eq(self.byte)
        return m


class BridgeTxCheck(wiring.Component):
    """Stream protocol on the beats :class:`boards.uart.UARTBridge` offers its transmitter.

    Parameters
    ----------
    bridge : boards.uart.UARTBridge
        Built but not elaborated. Its ``rx`` pin is free (any waveform); so are a
        :class:`DefectiveBridge`'s ``glitch`` and ``byte``.

    Members
    -------
    rx : In(1)
        The bridge's receive pin.
    glitch : In(1)
        Only for a :class:`DefectiveBridge`: strike its defect.
    byte : In(8)
        Only for a :class:`DefectiveBridge`: the payload it offers while struck.
    """

    def __init__(self, bridge):
        self._bridge = bridge
        members = {"rx": In(1, init=1)}
        if isinstance(bridge, DefectiveBridge):
            members.update(glitch=In(1), byte=In(CHAR_BITS))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        fragment = Fragment.get(self._bridge, platform)
        m.submodules.bridge = fragment
        m.d.comb += self._bridge.rx.eq(self.rx)
        if isinstance(self._bridge, DefectiveBridge):
            m.d.comb += [self._bridge.glitch.eq(self.glitch), self._bridge.byte.eq(self.byte)]
        protocol(m, submodule(fragment, UARTTx).i, Assert, "tx_i")
        return m
