"""Built-in self test: vectors in ROM, streamed through a MacArray, checked on chip.

The host draws a few small layers (operands and run-time parameters), computes their outputs
with :func:`golden.layers.fully_connected`, and stores operands, parameters and expected rows
in ROMs. On the board, :class:`BistTop` streams every test through the array, compares each
result row with its expected row, and repeats forever: ``passed`` after a complete clean round,
``failed`` (sticky) on any mismatch, missing or extra row, depth error or timeout.

Synthesis sees only ROM contents, so any bit that is the same in every ROM word becomes a
constant and the logic behind it is pruned. The vectors are therefore chosen so that every
operand and parameter bit takes both values (:attr:`BistVectors.constant_bits` counts the ones
that cannot), which keeps the whole array and requantizer alive in the netlist.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, io, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from hw.config import ArrayConfig
from hw.host import encode_weights
from hw.top import MacArray, stream_layouts

from .uart import param_shapes

__all__ = ["BistVectors", "make_vectors", "BistTop", "BoardTop"]

#: Layers per self-test round, output-stationary passes per layer, weight-stationary
#: activations per layer, and the deepest output-stationary pass.
TESTS, PASSES, BATCH, MAX_DEPTH = 4, 2, 3, 4
#: More tests are added (up to this many) while some parameter bit has not flipped yet.
MAX_TESTS = 8


@dataclass(frozen=True)
class BistVectors:
    """Everything the self test stores, per test: parameters, input beats, expected rows.

    ``streams`` maps each input stream of the array (``operands``, or ``weights`` and
    ``activations``) to a tuple of tests, each a tuple of beats (dicts of payload fields).
    """

    config: ArrayConfig
    params: tuple
    streams: dict
    expected: tuple
    constant_bits: int

    @property
    def tests(self):
        return len(self.params)

    def summary(self):
        return {
            "tests": self.tests,
            "beats": {name: sum(map(len, tests)) for name, tests in self.streams.items()},
            "result_rows": sum(map(len, self.expected)),
            "constant_bits": self.constant_bits,
        }


def _field_width(shape):
    """Width of one element of a parameter port (the lane width of an array port)."""
    if isinstance(shape, data.ArrayLayout):
        shape = shape.elem_shape
    return Shape.cast(shape).width


class _Coverage:
    """Which bits of each field (each lane of an array field) have been seen as 0 and as 1."""

    def __init__(self):
        self.seen = {}

    @staticmethod
    def _lanes(name, values, width):
        mask = (1 << width) - 1
        for lane, value in enumerate(np.atleast_1d(values).tolist()):
            yield (name, lane), int(value) & mask, ~int(value) & mask

    def gain(self, name, values, width):
        total = 0
        for key, ones, zeros in self._lanes(name, values, width):
            old_ones, old_zeros = self.seen.get(key, (0, 0))
            total += bin(ones & ~old_ones).count("1") + bin(zeros & ~old_zeros).count("1")
        return total

    def target(self, name, lane, width, lo, hi, rng):
        """A value in [lo, hi] with the bits still missing for this lane, if it can have them."""
        mask = (1 << width) - 1
        ones, zeros = self.seen.get((name, lane), (0, 0))
        need_one, need_zero = mask & ~ones, mask & ~zeros
        bits = (int(rng.integers(0, 1 << width)) & ~need_zero) | need_one
        if lo < 0 and (bits >> (width - 1) or bits > hi):
            # Two's complement; a value above the range becomes negative instead (the sign
            # bit of a shift or a clamp bound is the one most often stuck).
            bits = (bits | (1 << (width - 1))) - (1 << width)
        return min(max(bits, lo), hi)

    def gaps(self, width, ignore):
        """Bits not yet seen both ways, over every lane added so far."""
        total = 0
        for key, (ones, zeros) in self.seen.items():
            mask = ((1 << width[key[0]]) - 1) & ~ignore.get(key, 0)
            total += bin(mask & ~(ones & zeros)).count("1")
        return total

    def add(self, name, values, width):
        for key, ones, zeros in self._lanes(name, values, width):
            old_ones, old_zeros = self.seen.get(key, (0, 0))
            self.seen[key] = (old_ones | ones, old_zeros | zeros)


def _constant_bits(words, width):
    """Bits that are equal in every word of a ROM (synthesis turns them into constants)."""
    mask = (1 << width) - 1
    ones, zeros = 0, 0
    for word in words:
        ones |= word
        zeros |= ~word & mask
    return width - bin(ones & zeros).count("1")


def _operand_patterns(lo, hi, kind="integer"):
    """(all bits 0, all bits 1, minimum, maximum) as operand values."""
    if kind == "binary":
        return -1, 1, -1, 1          # encoded 0 and 1
    if kind == "ternary":
        return 0, -1, -1, 1
    return 0, (-1 if lo < 0 else hi), lo, hi


def _draw(rng, lo, hi, shape, kind="integer"):
    if kind == "binary":
        return rng.choice(np.array([-1, 1], np.int64), size=shape)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _with_patterns(beats, patterns):
    """Overwrite the first beats (flattened over tests) with whole-lane bit patterns."""
    flat = beats.reshape(-1, beats.shape[-1])
    for index, value in enumerate(patterns[:len(flat)]):
        flat[index] = value
    return flat.reshape(beats.shape)


def _choose_params(config, shapes, rng, tests, depth):
    """Run-time parameters per test: a typical layer first, then ones that flip every bit."""
    cols, channels = config.cols, config.requant_channels
    out_lo, out_hi = config.out_range
    act_lo, act_hi = config.act_zero_point_range
    w_lo, w_hi = config.weight_range
    x_mag = max(abs(v) for v in config.act_range)
    w_mag = max(abs(w_lo), abs(w_hi))
    # Typical |accumulator| of random operands; scale it to about half the output range.
    typical = max(1, int(np.sqrt(depth)) * x_mag * w_mag // 3)
    ratio = max(1, (2 * typical) // max(1, out_hi))
    shift_lo, shift_hi = config.shift_range
    base_shift = int(np.clip(1 - ratio.bit_length(), shift_lo, shift_hi))
    if config.requant == "shift":
        base_shift = int(np.clip(-(typical // max(1, out_hi)).bit_length(), shift_lo, shift_hi))
    width = {name: _field_width(shape) for name, shape in shapes.items()}
    coverage = _Coverage()
    # M0's bit 30 is set in every TFLite multiplier: never ask for it to flip.
    ignore = {("multiplier", c): 1 << 30 for c in range(channels)}
    params = []
    bias_mag = max(1, typical // 2)
    bias0 = rng.integers(-bias_mag, bias_mag + 1, size=cols, dtype=np.int64)
    mult0 = rng.integers(1 << 30, 1 << 31, size=channels, dtype=np.int64)
    test = 0
    while test < tests or (test < MAX_TESTS and coverage.gaps(width, ignore) > 0):
        p = {}
        # Bias and M0 reach every bit through a complemented pair (tests 0 and 1).
        if test == 0:
            p["bias"] = bias0
        elif test == 1:
            p["bias"] = ~bias0
        else:
            p["bias"] = rng.integers(-bias_mag, bias_mag + 1, size=cols, dtype=np.int64)
        if config.requant == "multiplier":
            if test == 0:
                p["multiplier"] = mult0
            elif test == 1:
                # Bit 30 stays set: TFLite's M0 lies in [2^30, 2^31).
                p["multiplier"] = (~mult0 & ((1 << 30) - 1)) | (1 << 30)
            else:
                p["multiplier"] = rng.integers(1 << 30, 1 << 31, size=channels, dtype=np.int64)
        # The narrow fields: greedy choice among random candidates, typical first.
        if test == 0:
            p["shift"] = np.full(channels, base_shift, np.int64)
            p["output_zero_point"] = int(rng.integers(out_lo // 4, out_hi // 4 + 1))
            p["act_min"], p["act_max"] = out_lo, out_hi
            if config.input_zero_point_in_hw:
                p["input_zero_point"] = int(rng.integers(act_lo // 4, act_hi // 4 + 1))
            if config.weight_zero_point_in_hw:
                lo, hi = config.weight_zero_point_range
                p["weight_zero_point"] = int(rng.integers(lo // 4, hi // 4 + 1))
        else:
            best = None
            for _ in range(128):
                # Shifts near the typical one, anywhere, or at the ends of the range (the
                # sign bit of a shift flips only at the top end).
                kind = rng.integers(4)
                if kind == 0:
                    shift = np.clip(base_shift + rng.integers(-3, 4, size=channels),
                                    shift_lo, shift_hi)
                elif kind == 1:
                    shift = rng.integers(shift_lo, shift_hi + 1, size=channels)
                elif kind == 2:
                    shift = rng.choice(np.array([shift_lo, shift_hi]), size=channels)
                else:
                    shift = np.array([coverage.target("shift", c, width["shift"], shift_lo,
                                                      shift_hi, rng) for c in range(channels)])
                candidate = {"shift": shift.astype(np.int64)}
                if kind == 3:
                    # Aim at the bits no test has flipped yet.
                    def aim(name, lo=out_lo, hi=out_hi):
                        return coverage.target(name, 0, width[name], lo, hi, rng)

                    candidate["output_zero_point"] = aim("output_zero_point")
                    bounds = sorted((aim("act_min"), aim("act_max")))
                else:
                    candidate["output_zero_point"] = int(rng.integers(out_lo, out_hi + 1))
                    bounds = sorted(int(v) for v in rng.integers(out_lo, out_hi + 1, size=2))
                candidate["act_min"], candidate["act_max"] = bounds
                if config.input_zero_point_in_hw:
                    candidate["input_zero_point"] = int(rng.integers(act_lo, act_hi + 1))
                if config.weight_zero_point_in_hw:
                    lo, hi = config.weight_zero_point_range
                    candidate["weight_zero_point"] = int(rng.integers(lo, hi + 1))
                score = sum(coverage.gain(name, value, width[name])
                            for name, value in candidate.items()) * 1000
                score += candidate["act_max"] - candidate["act_min"]
                score -= int(np.abs(candidate["shift"] - base_shift).sum())
                if best is None or score > best[0]:
                    best = (score, candidate)
            p.update(best[1])
        for name, value in p.items():
            coverage.add(name, value, width[name])
        params.append(p)
        test += 1
    return params


def _golden(config, p, x, w):
    from golden.layers import fully_connected

    cols = config.cols

    def per_channel(values):
        return np.broadcast_to(np.asarray(values, np.int64), (cols,)).copy()

    return fully_connected(
        x, w, np.asarray(p["bias"], np.int64),
        input_zero_point=p.get("input_zero_point", 0),
        weight_zero_point=p.get("weight_zero_point", 0),
        output_zero_point=p["output_zero_point"],
        multiplier=per_channel(p["multiplier"]) if config.requant == "multiplier" else None,
        shift=per_channel(p["shift"]), act_min=p["act_min"], act_max=p["act_max"],
        rounding=config.rounding)


def make_vectors(config, *, tests=TESTS, seed=0):
    """Self-test vectors for ``config``: random layers, bit patterns, golden outputs."""
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an ArrayConfig, not {config!r}")
    if isinstance(tests, bool) or not isinstance(tests, int):
        raise TypeError(f"tests must be an integer, not {tests!r}")
    if not 2 <= tests <= 64:
        raise ValueError(f"tests must be in [2, 64], not {tests}")
    rng = np.random.default_rng(seed)
    shapes = dict(param_shapes(config))
    a_lo, a_hi = config.act_zero_point_range
    w_lo, w_hi = config.weight_zero_point_range
    if config.weight_kind != "integer":
        w_lo, w_hi = -1, 1
    a_pat = _operand_patterns(a_lo, a_hi)
    w_pat = _operand_patterns(w_lo, w_hi, config.weight_kind)
    kind = config.weight_kind
    rows, cols = config.rows, config.cols
    depth = rows if config.weight_stationary else min(config.kmax, MAX_DEPTH)
    params = _choose_params(config, shapes, rng, tests, depth)
    tests = len(params)
    if config.weight_stationary:
        wb = _with_patterns(_draw(rng, w_lo, w_hi, (tests, rows, cols), kind), w_pat)
        xb = _with_patterns(_draw(rng, a_lo, a_hi, (tests, BATCH, rows)), a_pat)
    else:
        xb = _with_patterns(_draw(rng, a_lo, a_hi, (tests, PASSES, depth, rows)), a_pat)
        wb = _with_patterns(_draw(rng, w_lo, w_hi, (tests, PASSES, depth, cols), kind), w_pat)
    if kind == "ternary":
        wb = np.clip(wb, -1, 1)

    streams, expected = {}, []
    if config.weight_stationary:
        streams["weights"], streams["activations"] = [], []
        for t in range(tests):
            w = wb[t].T                                   # [cols, rows=K]
            y = _golden(config, params[t], xb[t], w)
            enc = encode_weights(w, config)
            streams["weights"].append(tuple({"w": enc[:, k].tolist()} for k in range(rows)))
            streams["activations"].append(tuple(
                {"x": xb[t, b].tolist(), "last": int(b == BATCH - 1)} for b in range(BATCH)))
            expected.append(tuple({"y": y[b].tolist(), "last": int(b == BATCH - 1)}
                                  for b in range(BATCH)))
    else:
        streams["operands"] = []
        for t in range(tests):
            beats, rows_out = [], []
            for p in range(PASSES):
                x, w = xb[t, p].T, wb[t, p].T             # [rows, K], [cols, K]
                y = _golden(config, params[t], x, w)
                enc = encode_weights(w, config)
                beats.extend({"x": x[:, k].tolist(), "w": enc[:, k].tolist(),
                              "last": int(k == depth - 1)} for k in range(depth))
                rows_out.extend({"y": y[i].tolist(), "last": int(i == rows - 1)}
                                for i in range(rows))
            streams["operands"].append(tuple(beats))
            expected.append(tuple(rows_out))
    streams = {name: tuple(tests_) for name, tests_ in streams.items()}
    params = tuple({name: (np.asarray(v).tolist()) for name, v in p.items()} for p in params)

    constant = 0
    layouts = stream_layouts(config)
    for name, tests_ in streams.items():
        layout = layouts[name]
        words = [_pack(layout, beat) for test in tests_ for beat in test]
        constant += _constant_bits(words, layout.size)
    param_layout = data.StructLayout(shapes)
    words = [_pack(param_layout, p) for p in params]
    constant += _constant_bits(words, param_layout.size)
    return BistVectors(config, params, streams, tuple(expected), constant)


def _pack(layout, value):
    return layout.const(value).as_value().value


#: Memory attributes that keep a ROM in LUTs (Yosys ``rom_style``).
_LOGIC_ROM = {"rom_style": "logic"}


class _RomSource:
    """A stream source reading consecutive words of a ROM with a one-cycle read port."""

    def __init__(self, m, name, layout, words, attrs=None):
        # One spare word (a copy of the first) so the address one past the end is valid.
        init = [_pack(layout, w) for w in words] + [_pack(layout, words[0])]
        self.depth = len(words)
        self.memory = Memory(shape=layout.size, depth=len(init), init=init, attrs=attrs)
        m.submodules[f"{name}_rom"] = self.memory
        self.port = self.memory.read_port()
        self.index = Signal(range(len(init)), name=f"{name}_index")
        self.next = Signal(range(len(init)), name=f"{name}_next")
        m.d.sync += self.index.eq(self.next)
        m.d.comb += self.port.addr.eq(self.next)


class BistTop(wiring.Component):
    """The self test around one MacArray; ``passed`` and ``failed`` drive the LEDs.

    ``rounds`` counts complete rounds of all tests (saturating); ``mismatches`` counts rows
    that differed from the expected row (saturating).
    """

    passed: Out(1)
    failed: Out(1)
    rounds: Out(8)
    mismatches: Out(8)

    def __init__(self, vectors):
        if not isinstance(vectors, BistVectors):
            raise TypeError(f"vectors must be BistVectors, not {vectors!r}")
        self._vectors = vectors
        super().__init__()

    @property
    def vectors(self):
        return self._vectors

    def elaborate(self, platform):
        vec = self._vectors
        cfg = vec.config
        tests = vec.tests
        m = Module()
        m.submodules.array = array = MacArray(cfg)
        layouts = stream_layouts(cfg)
        shapes = dict(param_shapes(cfg))

        # Parameters: a small ROM in logic, one word per test, read while the array is idle.
        param_layout = data.StructLayout(shapes)
        params_rom = Memory(shape=param_layout.size, depth=tests,
                            init=[_pack(param_layout, p) for p in vec.params],
                            attrs=_LOGIC_ROM)
        m.submodules.params_rom = params_rom
        params_port = params_rom.read_port()
        params = data.View(param_layout, params_port.data)
        for name in shapes:
            m.d.comb += getattr(array, name).eq(params[name])

        test = Signal(range(tests))
        m.d.comb += params_port.addr.eq(test)

        # The vectors are small: ROMs in logic read into flip-flops, so that no path starts at
        # a block RAM's slow clock-to-output (5.8 ns on ECP5) and the self test never limits
        # the clock of the array it measures.
        sources = {}
        for name, per_test in vec.streams.items():
            words = [beat for t in per_test for beat in t]
            sources[name] = _RomSource(m, name, layouts[name], words, attrs=_LOGIC_ROM)
        expected_words = [row for t in vec.expected for row in t]
        sink = _RomSource(m, "expected", layouts["results"], expected_words, attrs=_LOGIC_ROM)

        # Per-test end indices: every test has the same number of beats and rows.
        per_test = {name: len(t[0]) for name, t in vec.streams.items()}
        rows_per_test = len(vec.expected[0])
        ends = {name: Signal(range(src.depth + 1), name=f"{name}_end", init=per_test[name])
                for name, src in sources.items()}
        rows_end = Signal(range(sink.depth + 1), init=rows_per_test)

        running = Signal()
        restart = Signal()       # wrap all indices to the first test
        advance = Signal()       # move to the next test
        fail = Signal()
        done = Signal()
        settle = Signal(2)
        timeout = 16 * (max(per_test.values()) + rows_per_test + cfg.rows + cfg.cols
                        + array.latency + array.fifo_depth) + 256
        watchdog = Signal(range(timeout + 1))

        all_sent = Signal()
        sent_terms = []
        for name, src in sources.items():
            stream = getattr(array, name)
            end = ends[name]
            m.d.comb += [
                stream.valid.eq(running & (src.index < end)),
                stream.payload.eq(src.port.data),
                src.next.eq(Mux(restart, 0, src.index + (stream.valid & stream.ready))),
            ]
            sent_terms.append(src.index == end)
            with m.If(restart):
                m.d.sync += end.eq(per_test[name])
            with m.Elif(advance):
                m.d.sync += end.eq(end + per_test[name])
        m.d.comb += all_sent.eq(Cat(*sent_terms).all())

        results = array.results
        m.d.comb += [
            results.ready.eq(1),
            sink.next.eq(Mux(restart, 0, sink.index + results.valid)),
        ]
        # Compared a cycle later, from registers: the wide compare is a cycle of its own.
        got = Signal.like(results.payload.as_value(), name="got")
        want = Signal.like(sink.port.data, name="want")
        check, beyond = Signal(name="check"), Signal(name="beyond")
        m.d.sync += [got.eq(results.payload), want.eq(sink.port.data),
                     check.eq(results.valid), beyond.eq(sink.index >= rows_end)]
        mismatch = check & (beyond | (got != want))
        with m.If(mismatch):
            m.d.sync += fail.eq(1)
            with m.If(self.mismatches != 255):
                m.d.sync += self.mismatches.eq(self.mismatches + 1)
        with m.If(restart):
            m.d.sync += rows_end.eq(rows_per_test)
        with m.Elif(advance):
            m.d.sync += rows_end.eq(rows_end + rows_per_test)
        if "depth_error" in array.signature.members:
            with m.If(array.depth_error):
                m.d.sync += fail.eq(1)

        test_done = all_sent & (sink.index == rows_end) & ~array.busy & ~check
        with m.FSM():
            with m.State("LOAD"):
                # The parameter ROM answers one cycle after `test` changes; give it two.
                m.d.sync += [settle.eq(settle + 1), watchdog.eq(0)]
                with m.If(settle == 2):
                    m.d.sync += settle.eq(0)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                m.d.sync += watchdog.eq(watchdog + 1)
                with m.If(watchdog == timeout):
                    m.d.sync += fail.eq(1)   # a lost row or a stuck stream
                    m.next = "STUCK"
                with m.Elif(test_done):
                    with m.If(test == tests - 1):
                        m.d.comb += restart.eq(1)
                        m.d.sync += [test.eq(0), done.eq(1)]
                        with m.If(self.rounds != 255):
                            m.d.sync += self.rounds.eq(self.rounds + 1)
                    with m.Else():
                        m.d.comb += advance.eq(1)
                        m.d.sync += test.eq(test + 1)
                    m.next = "LOAD"
            with m.State("STUCK"):
                pass
        m.d.comb += [self.passed.eq(done & ~fail), self.failed.eq(fail)]
        return m


class BoardTop(wiring.Component):
    """:class:`BistTop` on a board: pass LED steady on, fail LED blinking (about 2 Hz).

    ``clock`` (a :class:`boards.clocks.PLLClock`) makes the ``sync`` domain; without it the
    platform drives ``sync`` from the board clock.
    """

    def __init__(self, board, vectors, *, clock=None):
        self._board = board
        self._clock = clock
        self.bist = BistTop(vectors)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bist = bist = self.bist
        if platform is None:
            return m
        if self._clock is not None:
            self._clock.attach(m)
        sync_hz = (self._clock.frequency if self._clock is not None
                   else platform.default_clk_frequency)

        requested = {}  # an RGB LED is one resource with a subsignal per colour

        def led(spec):
            resource, number, subsignal = spec
            if (resource, number) not in requested:
                requested[resource, number] = platform.request(resource, number, dir="-")
            port = requested[resource, number]
            if subsignal is not None:
                port = getattr(port, subsignal)
            buffer = io.Buffer("o", port)
            return buffer

        m.submodules.pass_led = pass_led = led(self._board.pass_led)
        m.submodules.fail_led = fail_led = led(self._board.fail_led)
        blink_bit = max(1, (int(sync_hz) // 4).bit_length() - 1)
        blink = Signal(blink_bit + 1)
        m.d.sync += blink.eq(blink + 1)
        m.d.comb += [
            pass_led.o.eq(bist.passed),
            fail_led.o.eq(bist.failed & blink[-1]),
        ]
        return m
