"""A reusable checker of ``amaranth.lib.stream`` ports, applied to any component by port name.

:class:`StreamCheck` wraps a component: every input of the component (stream payloads and
valids it receives, readies of the streams it sends, run-time parameters) becomes a free input
of the solver, and

* for each stream the component **sends** (``Out``), it asserts the protocol: once ``valid`` is
  up without ``ready``, ``valid`` stays up and the payload stays the same next cycle;
* for each stream it **receives** (``In``), it assumes the same of the environment;
* with :class:`Balance`, it counts beats: Σ weight(input beat) − output beats is never negative
  (no beat appears from nothing or twice) and never above ``capacity`` (nothing piles up);
* with ``follow``, an arbitrary input beat chosen by the solver is tracked to the output beat
  that must carry it (1:1 streams): a lost, duplicated or reordered beat fails;
* with ``frame``, ``last`` is on every ``frame``-th beat of the output.

:class:`Glitched` is the mutant maker: the same component with one defect on one output stream.
"""

from dataclasses import dataclass

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from .harness import hold_reset_low

__all__ = ["DEFECTS", "Balance", "Glitched", "StreamCheck", "forward", "protocol", "stream_ports"]

#: Defects :class:`Glitched` can put on a stream (each breaks one property).
DEFECTS = ("drop_valid", "unstable_payload", "lose_beat", "duplicate_beat")


def stream_ports(component):
    """``{name: flow}`` of the component's stream members (``In``: it receives)."""
    return {name: member.flow for name, member in component.signature.members.items()
            if member.is_signature and isinstance(member.signature, stream.Signature)}


def _at(obj, path):
    for step in path:
        obj = obj[step] if isinstance(step, int) else getattr(obj, step)
    return obj


def forward(m, outer, inner, *, skip=()):
    """Connect every port of ``inner`` to the same port of ``outer`` (which mirrors its
    signature), except the members named in ``skip``."""
    for path, member in inner.signature.members.flatten():
        if member.is_signature or path[0] in skip:
            continue
        outer_port, inner_port = _at(outer, path), _at(inner, path)
        if member.flow == In:
            m.d.comb += inner_port.eq(outer_port)
        else:
            m.d.comb += outer_port.eq(inner_port)


def _mirror(component, extra=None):
    return wiring.Signature({**dict(component.signature.members.items()), **(extra or {})})


def protocol(m, port, claim, name):
    """``claim`` (Assert or Assume) that stream ``port`` keeps valid and payload while a beat
    waits; with Assert, also cover a beat that waits and is then taken. ``name`` prefixes the
    checker's signals."""
    if port.signature.always_valid or port.signature.always_ready:
        return
    waiting = Signal(name=f"{name}_waiting")
    held = Signal.like(port.payload, name=f"{name}_held")
    m.d.sync += [waiting.eq(port.valid & ~port.ready), held.eq(port.payload)]
    with m.If(waiting):
        m.d.comb += claim(port.valid & (Value.cast(port.payload) == Value.cast(held)))
    if claim is Assert:
        # The case the property is about happens: a beat waits and is then taken.
        m.d.comb += Cover(waiting & port.valid & port.ready)


@dataclass(frozen=True)
class Balance:
    """Beat accounting between input streams and one output stream.

    Parameters
    ----------
    inputs : dict
        ``{port name: weight}``: output beats each input beat entitles, an int or a function of
        the beat's payload (``lambda p: rows * p.last``: a pass's last beat makes ``rows``).
    output : str
        The output stream's name.
    capacity : int
        Most beats in flight: input beats' weight not yet sent.
    drained : str or None
        An ``Out(1)`` of the component that is low only when every beat due has been sent
        (e.g. ``busy``): then nothing may be in flight, so the output beats are exactly the
        inputs' weight, not only at most.
    """

    inputs: dict
    output: str
    capacity: int
    drained: str | None = None


class StreamCheck(wiring.Component):
    """Stream-protocol harness around ``component`` (see the module docstring).

    Parameters
    ----------
    component : wiring.Component
        Built but not elaborated; its own signature gives the stream ports.
    check : str
        ``"protocol"`` (valid holds, payload stable) or ``"conservation"`` (needs ``balance``).
    ports : iterable of str or None
        Output streams whose protocol is asserted; default every ``Out`` stream.
    balance : Balance or None
    follow : tuple or None
        ``(input port, output port, field)``: the payload ``field`` (a function of a payload)
        of an arbitrary input beat must come out on the output beat of the same rank.
    frame : tuple or None
        ``(output port, beats)``: ``last`` exactly on every ``beats``-th beat.
    """

    def __init__(self, component, *, check="protocol", ports=None, balance=None, follow=None,
                 frame=None):
        if check not in ("protocol", "conservation"):
            raise ValueError(f"check must be 'protocol' or 'conservation', not {check!r}")
        streams = stream_ports(component)
        outputs = [name for name, flow in streams.items() if flow != In]
        self._ports = outputs if ports is None else list(ports)
        for name in self._ports:
            if name not in outputs:
                raise ValueError(f"ports must name output streams of {type(component).__name__}"
                                 f" ({', '.join(outputs)}), not {name!r}")
        if check == "conservation" and balance is None:
            raise ValueError("balance must be given for check='conservation'")
        self._component, self._check, self._streams = component, check, streams
        self._balance, self._follow, self._frame = balance, follow, frame
        # `pick` chooses the tracked beat of `follow`.
        super().__init__(_mirror(component, {"pick": In(1)} if follow else None))

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        m.submodules.dut = dut = self._component
        forward(m, self, dut)
        for name, flow in self._streams.items():
            port = getattr(self, name)
            if flow == In:
                protocol(m, port, Assume, name)
            elif self._check == "protocol" and name in self._ports:
                protocol(m, port, Assert, name)
        if self._check == "conservation":
            self._conservation(m)
        return m

    def _conservation(self, m):
        bal = self._balance
        out = getattr(self, bal.output)
        out_beat = out.valid & out.ready
        arrivals = 0
        for name, weight in bal.inputs.items():
            port = getattr(self, name)
            amount = weight(port.payload) if callable(weight) else weight
            arrivals = arrivals + Mux(port.valid & port.ready, amount, 0)
        # Beats in flight, with room below 0 and above capacity to see a violation (an arrival
        # is at most `capacity` beats, or it could never be accepted).
        pending = Signal(range(-1, 2 * bal.capacity + 2))
        m.d.sync += pending.eq(pending + arrivals - out_beat)
        m.d.comb += [Assert(pending >= 0), Assert(pending <= bal.capacity)]
        if bal.drained is not None:
            drained = ~getattr(self, bal.drained)
            m.d.comb += Assert(~drained | (pending == 0))
            # The assertion bites: two beats were due at once, and then all were sent.
            overlapped = Signal()
            with m.If(pending >= 2):
                m.d.sync += overlapped.eq(1)
            m.d.comb += Cover(overlapped & drained)
        # Beats overlap in flight (`capacity` is a bound, not necessarily reached).
        m.d.comb += Cover(pending >= 2)
        if self._follow is not None:
            self._track(m, pending, out_beat)
        if self._frame is not None:
            name, beats = self._frame
            port = getattr(self, name)
            index = Signal(range(beats))
            with m.If(port.valid & port.ready):
                m.d.sync += index.eq(Mux(index == beats - 1, 0, index + 1))
                m.d.comb += Assert(port.payload.last == (index == beats - 1))
            m.d.comb += Cover(port.valid & port.ready & port.payload.last)

    def _track(self, m, pending, out_beat):
        in_name, out_name, field = self._follow
        src, dst = getattr(self, in_name), getattr(self, out_name)
        value = field(src.payload)
        watching = Signal()
        tag = Signal.like(value, name="tag")
        ahead = Signal.like(pending, name="ahead")   # output beats due before the tracked one
        with m.If(watching & out_beat):
            with m.If(ahead == 0):
                m.d.comb += Assert(field(dst.payload) == tag)
                m.d.comb += Cover(1)
                m.d.sync += watching.eq(0)
            with m.Else():
                m.d.sync += ahead.eq(ahead - 1)
        with m.If(~watching & self.pick & src.valid & src.ready):
            m.d.sync += [watching.eq(1), tag.eq(value), ahead.eq(pending - out_beat)]


class Glitched(wiring.Component):
    """``component`` with ``defect`` (one of :data:`DEFECTS`) on its output stream ``port``,
    struck whenever the free input ``glitch`` is high.

    ``drop_valid``: valid falls while the beat waits (protocol). ``unstable_payload``: a
    payload bit flips while waiting (protocol). ``lose_beat``: a beat that is not waiting is
    taken from the component but never offered (conservation). ``duplicate_beat``: a beat is
    sent but left in the component, so it is sent again (conservation).
    """

    def __init__(self, component, port, defect):
        if defect not in DEFECTS:
            raise ValueError(f"defect must be one of {', '.join(DEFECTS)}, not {defect!r}")
        if stream_ports(component).get(port) is None or stream_ports(component)[port] == In:
            raise ValueError(f"port must be an output stream of {type(component).__name__}, "
                             f"not {port!r}")
        self._component, self._port, self._defect = component, port, defect
        super().__init__(_mirror(component, {"glitch": In(1)}))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._component
        forward(m, self, inner, skip=(self._port,))
        outer, source = getattr(self, self._port), getattr(inner, self._port)
        waited = Signal()   # the outer beat waited last cycle
        m.d.sync += waited.eq(outer.valid & ~outer.ready)
        glitch = self.glitch
        valid, ready = source.valid, outer.ready
        payload = Value.cast(source.payload)
        if self._defect == "drop_valid":
            valid = source.valid & ~glitch
            ready = outer.ready & ~glitch
        elif self._defect == "unstable_payload":
            payload = payload ^ glitch
        elif self._defect == "lose_beat":
            glitch = glitch & ~waited
            valid = source.valid & ~glitch
            ready = outer.ready | glitch
        else:  # duplicate_beat
            ready = outer.ready & ~glitch
        m.d.comb += [outer.valid.eq(valid), source.ready.eq(ready),
                     Value.cast(outer.payload).eq(payload)]
        return m
