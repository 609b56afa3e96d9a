"""The engine's command register: a command's shape and output parameters, held for its run."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .activation import table_entries, table_fields

__all__ = ["ERROR_LATENCY", "MAX_M_TILES", "OUTPUT_FIELDS", "START_LATENCY", "CommandRegister",
           "shape_layout", "shape_limits"]

#: Largest number of M tiles one output-stationary command may stream (the counters' width).
MAX_M_TILES = 1 << 16

#: Cycles from a command taken to ``active``: the command is registered, its checks
#: registered, their conjunction registered as ``start``, then ``active``.
START_LATENCY = 4

#: Cycles from an invalid command taken to ``error`` (raised when ``start`` would have been).
ERROR_LATENCY = START_LATENCY - 1

#: The output parameters a command carries for the requantizer.
OUTPUT_FIELDS = ("output_zero_point", "act_min", "act_max")


def shape_limits(config):
    """The command's shape fields of :class:`hw.config.EngineConfig` ``config`` and the largest
    value each may take."""
    if config.weight_stationary:
        return {"m": config.max_m, "n_tiles": config.max_n_tiles, "k_tiles": config.max_k_tiles}
    return {"m_tiles": MAX_M_TILES, "n_tiles": config.max_n_tiles, "depth": config.max_k}


def shape_layout(config):
    """Layout of a command's shape fields (:func:`shape_limits`)."""
    return data.StructLayout({name: range(limit + 1)
                              for name, limit in shape_limits(config).items()})


class CommandRegister(wiring.Component):
    """Takes a command when the engine is idle, checks it and holds it for the whole run.

    Parameters
    ----------
    config : :class:`hw.config.EngineConfig`
    layout : data.StructLayout
        The ``command`` stream's payload: the shape fields of :func:`shape_limits` and the
        output parameters :data:`OUTPUT_FIELDS` and, with ``config.activation_table``, the
        table fields (:func:`hw.engine.activation.table_fields`).

    Members
    -------
    command : ``In(stream.Signature(layout))``
        Taken while ``busy`` is low. A shape field zero or above its limit, or
        ``act_min > act_max``, or ``table_loads`` above the table's entries, sets ``error``
        and the command is dropped.
    start : ``Out(1)``
        Three cycles after a valid command is taken: per-command state clears
        (``ResetInserter``).
    active : ``Out(1)``
        From the cycle after ``start`` until ``done``.
    shape : ``Out(shape_layout(config))``
        The running command's shape, valid from ``start`` on while ``active``.
    output_zero_point, act_min, act_max : ``Out(out)``
        The running command's output parameters (the requantizer reads them while it drains).
    table_loads, use_table : ``Out(...)`` (``config.activation_table``)
        The running command's table fields, held like the output parameters.
    done : ``In(1)``
        The sequencer has issued the command's last beat.
    idle : ``In(1)``
        Nothing of the command is left downstream of the sequencer.
    busy : ``Out(1)``
        ``start``, ``active`` or not ``idle``.
    error : ``Out(1)``
        Sticky: an invalid command was dropped; set three cycles after it is taken
        (:data:`ERROR_LATENCY`).

    Timing: a command taken in cycle t is held from t + 1, each of its checks registered in
    t + 2; ``start`` (a register: it drives every per-command reset) rises in t + 3,
    ``active`` in t + 4 (:data:`START_LATENCY`).
    """

    def __init__(self, config, layout):
        self._config = config
        out_shape = layout["act_min"].shape
        self._table_fields = table_fields(config)
        super().__init__({
            "command": In(stream.Signature(layout)),
            "start": Out(1),
            "active": Out(1),
            "shape": Out(shape_layout(config)),
            **{name: Out(out_shape) for name in OUTPUT_FIELDS},
            **{name: Out(shape) for name, shape in self._table_fields.items()},
            "done": In(1),
            "idle": In(1),
            "busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # The command is registered as it is taken and checked from that register, so that
        # neither the check nor `start`'s fan-out (every per-command reset) meets the
        # command port's routing.
        held = Signal(self.command.p.shape(), name="held")
        pending = Signal()
        checked = Signal()     # pending, a cycle on: `passed` holds its checks' results
        checks = [held.act_min <= held.act_max]
        for name, limit in shape_limits(self._config).items():
            field = getattr(held, name)
            checks.append((field != 0) & (field <= limit))
        if self._table_fields:
            checks.append(held.table_loads <= table_entries(self._config.array))
        passed = Signal(len(checks), name="passed")
        m.d.sync += passed.eq(Cat(checks))
        valid = passed.all()
        m.d.comb += [
            self.busy.eq(pending | checked | self.start | self.active | ~self.idle),
            self.command.ready.eq(~self.busy),
        ]
        m.d.comb += [getattr(self.shape, name).eq(getattr(held, name))
                     for name in shape_limits(self._config)]
        m.d.comb += [getattr(self, name).eq(getattr(held, name))
                     for name in (*OUTPUT_FIELDS, *self._table_fields)]
        m.d.sync += [pending.eq(self.command.valid & self.command.ready),
                     checked.eq(pending),
                     self.start.eq(checked & valid)]
        with m.If(self.command.valid & self.command.ready):
            m.d.sync += held.eq(self.command.p)
        with m.If(checked & ~valid):
            m.d.sync += self.error.eq(1)
        with m.If(self.start):
            m.d.sync += self.active.eq(1)
        with m.Elif(self.active & self.done):
            m.d.sync += self.active.eq(0)
        return m
