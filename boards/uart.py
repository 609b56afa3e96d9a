"""A UART bridge to a MacArray or a GemmEngine: load parameters, stream operands, read rows.

Serial format: 8N1, ``divisor`` clock cycles per bit (e.g. 12 MHz / 115200 ≈ 104).

Protocol (host → board), every field little-endian, every frame a command byte and a payload
of whole bytes:

``P`` + params   every run-time parameter port of the array (:func:`param_fields` gives the
                 order and widths), concatenated LSB-first and padded to whole bytes;
                 applied when the frame is complete.
``O`` + beat     one ``operands`` beat (output-stationary arrays), its payload bits padded to
                 whole bytes; ``W``/``A`` likewise for ``weights``/``activations``
                 (weight-stationary arrays).

``C``, ``H``     a :class:`hw.engine.GemmEngine`'s ``command`` and ``channels`` beats; ``W``
                 and ``A`` carry its ``weights`` and ``activations`` beats.

Board → host: every result row as ``R`` + its payload bytes. Backpressure: the bridge stops
reading the UART receiver while an operand beat waits for the array, and the array waits while
the transmitter is busy, so nothing is dropped as long as the host does not send into a
waiting bridge. A MacArray's host paces itself by waiting for each job's results
(:class:`boards.host.UARTArray`); a GemmEngine's bridge answers every delivered beat with
``K``, and its host sends the next frame only after that (:class:`boards.host.UARTEngine`),
reading result rows in between.
"""

from amaranth.hdl import Cat, Const, Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import ArrayConfig
from hw.engine import EngineConfig, GemmEngine, engine_layouts
from hw.top import MacArray, stream_layouts

__all__ = ["COMMANDS", "UARTBridge", "UARTRx", "UARTTx", "param_fields", "param_shapes",
           "payload_bytes", "link_layouts"]

#: Command byte of each input stream.
COMMANDS = {"operands": ord("O"), "weights": ord("W"), "activations": ord("A"),
            "command": ord("C"), "channels": ord("H")}
PARAMS, RESULT, ACK = ord("P"), ord("R"), ord("K")


def link_layouts(config):
    """Stream payload layouts of the design behind the bridge, by port name."""
    if isinstance(config, EngineConfig):
        return engine_layouts(config)
    return stream_layouts(config)


def payload_bytes(width):
    return (width + 7) // 8


def param_fields(config):
    """(name, width) of every run-time parameter port, in the order of a ``P`` frame."""
    return [(name, Shape.cast(shape).width) for name, shape in param_shapes(config)]


def param_shapes(config):
    """(name, shape) of every run-time parameter port, in the order of a ``P`` frame (a
    GemmEngine has none: its parameters come with its command and channels)."""
    if isinstance(config, EngineConfig):
        return []
    array = MacArray(config)
    array._MustUse__silence = True  # built only to read its signature
    streams = stream_layouts(config)
    return [(name, member.shape) for name, member in array.signature.members.items()
            if member.is_port and member.flow == In and name not in streams]


class UARTRx(wiring.Component):
    """8N1 receiver: ``rx`` pin in, received bytes out as a stream (valid for one byte).

    Samples the middle of each bit; a byte that arrives while the previous one was not taken
    is lost, so consumers must keep ``o.ready`` high or pace the sender.
    """

    def __init__(self, divisor):
        if divisor < 4:
            self._MustUse__silence = True   # refused: never to be elaborated
            raise ValueError(f"divisor must be ≥ 4 clock cycles per bit; got {divisor}")
        self._divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        timer = Signal(range(divisor * 3 // 2 + 1))
        bits = Signal(range(9))
        shift = Signal(8)
        rx = Signal(init=1)
        m.d.sync += rx.eq(self.rx)  # one synchronizer stage; pins are asynchronous
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    m.d.sync += [timer.eq(divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "data"
            with m.State("data"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bits.eq(bits + 1),
                                 timer.eq(divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "stop"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("stop"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "idle"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter: a stream of bytes in, the ``tx`` pin out."""

    def __init__(self, divisor):
        if divisor < 4:
            self._MustUse__silence = True   # refused: never to be elaborated
            raise ValueError(f"divisor must be ≥ 4 clock cycles per bit; got {divisor}")
        self._divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        frame = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         left.eq(10), timer.eq(self._divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UARTBridge(wiring.Component):
    """A :class:`MacArray` (``config`` an :class:`ArrayConfig`) or a :class:`GemmEngine`
    (an :class:`EngineConfig`) behind a UART: ``rx``/``tx`` pins, the protocol of this module.
    """

    def __init__(self, config, *, divisor):
        if isinstance(config, EngineConfig):
            self.array = GemmEngine(config)
        elif isinstance(config, ArrayConfig):
            self.array = MacArray(config)
        else:
            self._MustUse__silence = True   # refused: never to be elaborated
            raise TypeError(f"config must be an ArrayConfig or EngineConfig, not {config!r}")
        self._acks = isinstance(config, EngineConfig)
        self._config = config
        self._divisor = divisor
        self._rx = UARTRx(divisor)
        self._tx = UARTTx(divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.array = array = self.array
        m.submodules.uart_rx = rx = self._rx
        m.submodules.uart_tx = tx = self._tx
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        layouts = link_layouts(cfg)
        inputs = {name: layout for name, layout in layouts.items() if name != "results"}
        fields = param_fields(cfg)
        param_width = sum(width for _, width in fields)
        widest = max([param_width] + [layout.size for layout in inputs.values()])
        ack = Signal()  # a delivered beat to acknowledge (GemmEngine protocol)
        buffer = Signal(payload_bytes(widest) * 8)
        count = Signal(range(payload_bytes(widest) + 1))
        target = Signal(range(len(inputs) + 1))  # 0: parameters, 1..: input streams
        params = Signal(param_width)
        offset = 0
        for name, width in fields:
            m.d.comb += getattr(array, name).eq(params[offset:offset + width])
            offset += width

        # Receiver: a command byte, then the payload bytes of that command.
        sizes = [payload_bytes(param_width)] + [payload_bytes(layout.size)
                                                 for layout in inputs.values()]
        streams = [getattr(array, name) for name in inputs]
        for port, layout in zip(streams, inputs.values(), strict=True):
            m.d.comb += port.payload.eq(buffer[:layout.size])
        with m.FSM():
            with m.State("command"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(rx.o.valid):
                    m.d.sync += count.eq(0)
                    if fields:
                        with m.If(rx.o.payload == PARAMS):
                            m.d.sync += target.eq(0)
                            m.next = "payload"
                    for index, name in enumerate(inputs, start=1):
                        with m.If(rx.o.payload == COMMANDS[name]):
                            m.d.sync += target.eq(index)
                            m.next = "payload"
            with m.State("payload"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(rx.o.valid):
                    m.d.sync += [buffer.eq(Cat(buffer[8:], rx.o.payload)), count.eq(count + 1)]
                with m.Else():
                    for index, size in enumerate(sizes):
                        with m.If((target == index) & (count == size)):
                            m.next = "deliver"
            with m.State("deliver"):
                # the payload bytes were shifted in from the top: align them to bit 0
                for index, size in enumerate(sizes):
                    with m.If(target == index):
                        aligned = buffer[len(buffer) - size * 8:]
                        if index == 0:
                            m.d.sync += params.eq(aligned)
                            m.next = "command"
                        else:
                            m.d.sync += buffer.eq(aligned)
                            m.next = f"send{index}"
            for index, port in enumerate(streams, start=1):
                with m.State(f"send{index}"):
                    m.d.comb += port.valid.eq(1)
                    with m.If(port.ready):
                        if self._acks:
                            m.d.sync += ack.eq(1)
                        m.next = "command"

        # Transmitter: "R" and the bytes of each result row.
        result_width = layouts["results"].size
        result_bytes = payload_bytes(result_width)
        row = Signal(result_bytes * 8)
        sent = Signal(range(result_bytes + 1))
        with m.FSM():
            with m.State("wait"):
                with m.If(ack):
                    m.next = "ack"
                with m.Else():
                    m.d.comb += array.results.ready.eq(1)
                    with m.If(array.results.valid):
                        m.d.sync += [row.eq(array.results.payload.as_value()), sent.eq(0)]
                        m.next = "header"
            with m.State("ack"):
                # The host sends no frame before this byte, so no new beat is delivered (and
                # `ack` set again) while it is pending.
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(ACK)]
                with m.If(tx.i.ready):
                    m.d.sync += ack.eq(0)
                    m.next = "wait"
            with m.State("header"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(RESULT)]
                with m.If(tx.i.ready):
                    m.next = "bytes"
            with m.State("bytes"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(row[:8])]
                with m.If(tx.i.ready):
                    m.d.sync += [row.eq(row >> 8), sent.eq(sent + 1)]
                    with m.If(sent == result_bytes - 1):
                        m.next = "wait"
        return m


class UARTBoardTop(wiring.Component):
    """:class:`UARTBridge` on a board's FTDI UART (the ``uart`` resource of its platform).

    The bit period is ``round(clock_hz / baudrate)`` cycles of ``sync``. ``clock`` (a
    :class:`boards.clocks.PLLClock`) makes ``sync``; ``clock_hz`` then defaults to its
    achieved frequency and must equal it if given.
    """

    def __init__(self, config, *, clock_hz=None, baudrate=115200, clock=None):
        if clock is not None:
            if clock_hz is None:
                clock_hz = clock.frequency
            elif clock_hz != clock.frequency:
                self._MustUse__silence = True   # refused: never to be elaborated
                raise ValueError(f"clock_hz must be the PLL's {clock.frequency} Hz, "
                                 f"not {clock_hz}")
        if clock_hz is None:
            self._MustUse__silence = True
            raise TypeError("clock_hz is required without a clock")
        self._clock = clock
        #: Clock cycles per bit.
        self.divisor = divisor = round(clock_hz / baudrate)
        if divisor < 4:
            raise ValueError(f"baudrate must be at most clock_hz/4 = {clock_hz // 4}; "
                             f"got {baudrate}")
        self.bridge = UARTBridge(config, divisor=divisor)
        super().__init__({})

    def elaborate(self, platform):
        from amaranth.lib import io

        m = Module()
        m.submodules.bridge = bridge = self.bridge
        if platform is None:
            return m
        if self._clock is not None:
            self._clock.attach(m)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(rx.i), tx.o.eq(bridge.tx)]
        return m
