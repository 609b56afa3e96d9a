"""A UART bridge to a MacArray or a GemmEngine: frames checked by a CRC, numbered, answered.

Serial format: 8N1, ``divisor`` clock cycles per bit (e.g. 12 MHz / 115200 ≈ 104). The link
protocol (docs/link.md has the whole story, with its latency and throughput):

Host → board, one frame per request::

    SYNC  seq  cmd  payload…  crc_hi  crc_lo

``SYNC`` is :data:`SYNC`; ``seq`` the frame's sequence number (mod 256); ``cmd`` one of
:data:`COMMANDS` (``S`` start a session, ``P`` run-time parameters, ``O``/``W``/``A``/``C``/``H``
one beat of that input stream, ``Q`` ask for a result row); the payload is the beat's (or the
parameters') bits LSB-first, padded to whole bytes, its length fixed by ``cmd``; the CRC is
CRC-16/CCITT-FALSE (:data:`CRC_POLY`, init :data:`CRC_INIT`; :func:`binascii.crc_hqx` on the
host) of every byte after ``SYNC``, most significant byte first.

Board → host, exactly one reply per frame it parses::

    SYNC  reply  seq  status  [row…]  crc_hi  crc_lo

``reply`` is one of :data:`REPLIES`: ``K`` (executed), ``B`` (busy: a beat still waits for the
array; not executed), ``N`` (corrupt: bad CRC or unknown command; not executed), ``R`` (a result
row follows), ``E`` (no result row ready). ``status`` holds the :data:`STATUS` bits.

The board executes a frame only when its CRC checks, and each sequence number once: a frame
with the sequence number of the last executed one (a retransmission whose reply was lost) is
answered with the stored reply and not executed again. A frame that stops arriving for
``gap_bits`` bit times (:data:`FRAME_GAP_BITS` by default) is dropped, so the host's next
frame always starts clean.
``S`` resets the array behind the bridge and clears the ``reset`` status bit, which every
(re)start of the board sets: a host that sees it mid-job knows the board lost its state.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import ArrayConfig, EngineConfig
from hw.engine import GemmEngine, engine_layouts
from hw.requantizer import parameter_members
from hw.top import MacArray, raw_act_shape, raw_weight_shape, stream_layouts

__all__ = ["COMMANDS", "CRC_INIT", "CRC_POLY", "FRAME_GAP_BITS", "REPLIES", "STATUS", "SYNC",
           "UARTBoardTop", "UARTBridge", "UARTRx", "UARTTx", "crc16_update", "frame_sizes",
           "link_layouts", "longest_reply_bits", "param_fields", "param_shapes", "payload_bytes"]

#: First byte of every frame, both directions.
SYNC = 0xA5
#: Command byte of each host frame: a session start, the parameters, each input stream, a
#: query for one result row.
COMMANDS = {"start": ord("S"), "params": ord("P"), "operands": ord("O"), "weights": ord("W"),
            "activations": ord("A"), "command": ord("C"), "channels": ord("H"),
            "query": ord("Q")}
#: Reply byte of each board frame.
REPLIES = {"done": ord("K"), "busy": ord("B"), "corrupt": ord("N"), "row": ord("R"),
           "empty": ord("E")}
#: Bits of a reply's status byte: the board restarted since the last ``S``; the array flagged
#: an error (the engine's ``error``, a MacArray's ``depth_error``: sticky until ``S``); a beat
#: still waits for the array; the array is busy.
STATUS = {"reset": 1, "error": 2, "pending": 4, "busy": 8}
#: CRC-16/CCITT-FALSE: x^16 + x^12 + x^5 + 1, initial value all ones, no reflection.
CRC_POLY, CRC_INIT, CRC_BITS = 0x1021, 0xFFFF, 16
#: Bytes of a frame around its payload: SYNC, seq, cmd (reply: SYNC, reply, seq, status)
#: before, the CRC after.
HEADER_BYTES, REPLY_HEADER_BYTES, CRC_BYTES = 3, 4, CRC_BITS // 8
#: Bit times of silence after which the board drops a partly received frame (default), and
#: the most it may be set to.
FRAME_GAP_BITS, MAX_GAP_BITS = 160, 1 << 16
#: Bit times of one 8N1 character (start, 8 data, stop).
CHAR_BITS = 10


def crc16_update(crc, byte):
    """``crc`` (16 bits) after one more ``byte`` (8 bits), most significant bit first: the
    gateware of :func:`binascii.crc_hqx`."""
    for i in reversed(range(8)):
        feedback = crc[15] ^ byte[i]
        crc = (Cat(Const(0, 1), crc[:15]) ^ Mux(feedback, CRC_POLY, 0))[:16]
    return crc


def link_layouts(config):
    """Stream payload layouts of the design behind the bridge, by port name."""
    if isinstance(config, EngineConfig):
        return engine_layouts(config)
    return stream_layouts(config)


def payload_bytes(width):
    """Whole bytes that carry ``width`` bits."""
    return (width + 7) // 8


def param_shapes(config):
    """(name, shape) of every run-time parameter port of a :class:`MacArray` of ``config``, in
    the order of its signature and of a ``P`` frame (a GemmEngine has none: its parameters
    come with its command and channels). Built from the array's own helpers, without building
    the array."""
    if isinstance(config, EngineConfig):
        return []
    members = parameter_members(config)
    if config.input_zero_point_in_hw:
        members["input_zero_point"] = In(raw_act_shape(config))
    if config.weight_zero_point_in_hw:
        members["weight_zero_point"] = In(raw_weight_shape(config))
    return [(name, member.shape) for name, member in members.items()]


def param_fields(config):
    """(name, width) of every run-time parameter port, in the order of a ``P`` frame."""
    return [(name, Shape.cast(shape).width) for name, shape in param_shapes(config)]


def frame_sizes(config):
    """Payload bytes of each host command the bridge of ``config`` accepts, by command name."""
    sizes = {"start": 0}
    fields = param_fields(config)
    if fields:
        sizes["params"] = payload_bytes(sum(width for _, width in fields))
    sizes.update((name, payload_bytes(layout.size))
                 for name, layout in link_layouts(config).items() if name != "results")
    sizes["query"] = 0
    return sizes


#: Fewest clock cycles per bit the receiver samples reliably.
MIN_DIVISOR = 4


def longest_reply_bits(config):
    """Bit times of the longest reply of the bridge of ``config`` (a result row's)."""
    row_bytes = payload_bytes(link_layouts(config)["results"].size)
    return (1 + REPLY_HEADER_BYTES + row_bytes + CRC_BYTES) * CHAR_BITS


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an integer, not {divisor!r}")
    if divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be ≥ {MIN_DIVISOR} clock cycles per bit; got {divisor}")


class UARTRx(wiring.Component):
    """8N1 receiver: ``rx`` pin in, received bytes out as a stream (valid for one byte).

    Samples the middle of each bit. A UART cannot hold the line back, so a byte that completes
    while the previous one still waits (``o.valid`` high, ``o.ready`` low) is dropped and
    reported on ``overrun``; the waiting byte stays as it is (the stream protocol holds).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Members
    -------
    rx : ``In(1)``
        The serial input (idle high).
    o : ``Out(stream.Signature(8))``
        Each received byte, held until taken.
    overrun : ``Out(1)``
        Pulses for one cycle (the cycle ``o`` would have offered it) for each byte dropped
        because the previous one had not been taken: bytes received = bytes taken on ``o`` +
        ``overrun`` pulses + the byte waiting on ``o``.
    """

    def __init__(self, divisor):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "overrun": Out(1)})

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
        m.d.sync += self.overrun.eq(0)
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
                    with m.If(rx & self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)    # the waiting byte stays
                    with m.Elif(rx):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "idle"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter: a stream of bytes in, the ``tx`` pin out."""

    def __init__(self, divisor):
        _check_divisor(divisor)
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

    Parameters
    ----------
    config : ArrayConfig or EngineConfig
        The design behind the bridge.
    divisor : int
        Clock cycles per bit, at least 4.
    gap_bits : int
        Bit times of silence after which a partly received frame is dropped, at least one
        character (10); the host's reply timeout must be longer than this plus a reply.

    Members
    -------
    rx : In(1)
        The serial input (idle high).
    tx : Out(1)
        The serial output (idle high).
    """

    def __init__(self, config, *, divisor, gap_bits=FRAME_GAP_BITS):
        if not isinstance(config, ArrayConfig | EngineConfig):
            raise TypeError(f"config must be an ArrayConfig or EngineConfig, not {config!r}")
        _check_divisor(divisor)
        if isinstance(gap_bits, bool) or not isinstance(gap_bits, int):
            raise TypeError(f"gap_bits must be an integer, not {gap_bits!r}")
        if not CHAR_BITS <= gap_bits <= MAX_GAP_BITS:
            raise ValueError(f"gap_bits must be in [{CHAR_BITS}, {MAX_GAP_BITS}], not {gap_bits}")
        self._config = config
        self._divisor = divisor
        self._gap = gap_bits * divisor     # in clock cycles
        self.array = GemmEngine(config) if isinstance(config, EngineConfig) else MacArray(config)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        restart = Signal()  # an `S` frame: the array starts afresh
        m.submodules.array = array = ResetInserter(restart)(self.array)
        m.submodules.uart_rx = rx = UARTRx(self._divisor)
        m.submodules.uart_tx = tx = UARTTx(self._divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        layouts = link_layouts(cfg)
        names = list(frame_sizes(cfg))
        sizes = list(frame_sizes(cfg).values())
        beats = [name for name in names if name in layouts]   # the input streams
        fields = param_fields(cfg)
        buffer = Signal(max(sizes) * 8)     # the payload, shifted in (the CRC is only checked)

        def payload_of(index):
            """The payload of a frame of command ``index``, in ``buffer`` once it is in."""
            return buffer[len(buffer) - sizes[index] * 8:]
        params = Signal(sum(width for _, width in fields))
        offset = 0
        for name, width in fields:
            m.d.comb += getattr(array, name).eq(params[offset:offset + width])
            offset += width

        # -- a beat waiting for its stream: valid held until ready. It stays in `buffer`: a
        # frame that starts while it waits is not stored (`keep`), and one with a payload is
        # answered busy.
        pending, keep = Signal(), Signal()
        target = Signal(range(len(beats)))
        for index, name in enumerate(beats):
            port = getattr(array, name)
            m.d.comb += [port.payload.eq(payload_of(names.index(name))),
                         port.valid.eq(pending & (target == index))]
            with m.If(port.valid & port.ready):
                m.d.sync += pending.eq(0)

        # -- status --------------------------------------------------------------------------
        reset_flag = Signal(init=1)   # set by every (re)start of the board, cleared by `S`
        error = array.error if isinstance(cfg, EngineConfig) else \
            getattr(array, "depth_error", Const(0))
        status = Cat(reset_flag, error, pending, array.busy, Const(0, 4))

        # -- receiver: SYNC, seq, cmd, payload, CRC ------------------------------------------
        m.d.comb += rx.o.ready.eq(1)
        byte, got = rx.o.payload, rx.o.valid
        crc = Signal(CRC_BITS)
        seq = Signal(8)
        command = Signal(range(len(names)))
        left = Signal(range(max(sizes) + CRC_BYTES + 1))    # bytes still to come
        silence = Signal(range(self._gap + 1))

        # -- the reply: its kind, the stored last one, the row ------------------------------
        reply = Signal(8)
        last_seq, last_reply, executed = Signal(8), Signal(8), Signal()
        result_width = layouts["results"].size
        row_bytes = payload_bytes(result_width)
        row = Signal(row_bytes * 8)
        body = Signal((REPLY_HEADER_BYTES - 1 + row_bytes) * 8)   # reply, seq, status, row
        body_left = Signal(range(REPLY_HEADER_BYTES + row_bytes))
        reply_crc = Signal(CRC_BITS)

        def record(kind):
            m.d.sync += [reply.eq(REPLIES[kind]), last_reply.eq(REPLIES[kind]),
                         last_seq.eq(seq), executed.eq(1)]

        def receive():
            """Within a frame: fold each byte into the CRC; drop the frame after a silence."""
            with m.If(got):
                m.d.sync += [crc.eq(crc16_update(crc, byte)), silence.eq(0)]
            with m.Elif(silence == self._gap):
                m.next = "hunt"                        # the rest of the frame never came
            with m.Else():
                m.d.sync += silence.eq(silence + 1)

        with m.FSM():
            with m.State("hunt"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(CRC_INIT), silence.eq(0), keep.eq(pending)]
                    m.next = "seq"
            with m.State("seq"):
                receive()
                with m.If(got):
                    m.d.sync += seq.eq(byte)
                    m.next = "command"
            with m.State("command"):
                receive()
                with m.If(got):
                    m.next = "corrupt"                 # unless the byte names a command
                    for index, name in enumerate(names):
                        with m.If(byte == COMMANDS[name]):
                            m.d.sync += [command.eq(index), left.eq(sizes[index] + CRC_BYTES)]
                            m.next = "payload"
            with m.State("payload"):                   # and the CRC
                receive()
                with m.If(got):
                    m.d.sync += left.eq(left - 1)
                    with m.If(~keep & (left > CRC_BYTES)):
                        m.d.sync += buffer.eq(Cat(buffer[8:], byte))
                    with m.If(left == 1):
                        m.next = "check"
            with m.State("check"):
                # The CRC of the bytes and their CRC is zero exactly when they agree.
                with m.If(crc == 0):
                    m.next = "execute"
                with m.Else():
                    m.next = "corrupt"
            with m.State("corrupt"):
                m.d.sync += reply.eq(REPLIES["corrupt"])
                m.next = "reply"
            with m.State("execute"):
                again = executed & (seq == last_seq)
                for index, name in enumerate(names):
                    with m.If(command == index):
                        if name == "start":           # always obeyed: it only resets
                            m.d.comb += restart.eq(1)
                            m.d.sync += [reset_flag.eq(0), pending.eq(0)]
                            record("done")
                        else:
                            with m.If(again):         # its reply was lost: the same again
                                m.d.sync += reply.eq(last_reply)
                            with m.Else():
                                if name == "query":
                                    m.d.comb += array.results.ready.eq(1)
                                    with m.If(array.results.valid):
                                        m.d.sync += row.eq(array.results.payload.as_value())
                                        record("row")
                                    with m.Else():
                                        record("empty")
                                else:                 # busy while a beat waits in `buffer`
                                    with m.If(keep):
                                        m.d.sync += reply.eq(REPLIES["busy"])
                                    with m.Else():
                                        if name == "params":
                                            m.d.sync += params.eq(payload_of(index))
                                        else:
                                            m.d.sync += [pending.eq(1),
                                                         target.eq(beats.index(name))]
                                        record("done")
                m.next = "reply"
            with m.State("reply"):
                m.d.sync += [body.eq(Cat(reply, seq, status, row)), reply_crc.eq(CRC_INIT),
                             body_left.eq(Mux(reply == REPLIES["row"],
                                              REPLY_HEADER_BYTES - 1 + row_bytes,
                                              REPLY_HEADER_BYTES - 1))]
                m.next = "sync"
            with m.State("sync"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(SYNC)]
                with m.If(tx.i.ready):
                    m.next = "body"
            with m.State("body"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(body[:8])]
                with m.If(tx.i.ready):
                    m.d.sync += [body.eq(body >> 8), body_left.eq(body_left - 1),
                                 reply_crc.eq(crc16_update(reply_crc, body[:8]))]
                    with m.If(body_left == 1):
                        m.next = "crc_high"
            with m.State("crc_high"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(reply_crc[8:])]
                with m.If(tx.i.ready):
                    m.next = "crc_low"
            with m.State("crc_low"):
                m.d.comb += [tx.i.valid.eq(1), tx.i.payload.eq(reply_crc[:8])]
                with m.If(tx.i.ready):
                    m.next = "hunt"
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
                raise ValueError(f"clock_hz must be the PLL's {clock.frequency} Hz, "
                                 f"not {clock_hz}")
        if clock_hz is None:
            raise TypeError("clock_hz is required without a clock")
        self._clock = clock
        #: Clock cycles per bit.
        self.divisor = divisor = round(clock_hz / baudrate)
        if divisor < MIN_DIVISOR:
            raise ValueError(f"baudrate must be at most clock_hz/{MIN_DIVISOR} = "
                             f"{clock_hz // MIN_DIVISOR}; got {baudrate}")
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
