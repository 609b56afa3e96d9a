"""Host-side preparation of operands and run-time parameters for a :class:`MacArray`.

The hardware computes Σ_k (x − Zx·[in hw])(w − Zw·[in hw]) + bias. Whatever zero point is not
subtracted in hardware is folded into the bias here, exactly:

    Σ_k (x − Zx)(w − Zw) = Σ_k x·(w − Zw) − Zx·Σ_k (w − Zw)

The second term depends only on the weights, so it belongs in the bias; the weight zero point
multiplies the activations and cannot be folded (:attr:`ArrayConfig.weight_zero_point_in_hw`).
"""

from dataclasses import dataclass

import numpy as np

from golden.tflite import _int64

from .config import ArrayConfig, ceil_div

__all__ = ["LayerParams", "EngineJob", "engine_job", "save_engine_job", "load_engine_job",
           "fold_input_zero_point", "encode_weights", "check_operands", "integer", "integers",
           "per_channel_values", "table_beats"]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _check_range(name, values, lo, hi):
    values = np.asarray(values)
    if values.size and (values.min() < lo or values.max() > hi):
        bad = values.min() if values.min() < lo else values.max()
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {int(bad)}")


def integers(name, values):
    """``values`` as an int64 array: TypeError unless it holds integers (no floats, bools or
    objects), ValueError where one does not fit int64 (golden's own checks)."""
    try:
        return _int64(name, values)
    except ValueError:
        info = np.iinfo(np.int64)
        raise ValueError(f"{name} must be in [{info.min}, {info.max}] (int64), not "
                         f"{max(np.asarray(values).flat, key=abs)}") from None


def integer(name, value):
    """``value`` as an int, or TypeError unless one integer (a 0-d integer array will do)."""
    array = integers(name, value)
    if array.ndim:
        raise TypeError(f"{name} must be an integer scalar, not an array of shape {array.shape}")
    return int(array)


def per_channel_values(name, values, n):
    """``values`` (a scalar, one value in a list, or one per channel) as an int64 array of
    shape (n,)."""
    array = integers(name, values)
    if array.shape not in ((), (1,), (n,)):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) (one per output "
                         f"channel), not shape {array.shape}")
    return np.broadcast_to(array, (n,)).copy()


def fold_input_zero_point(bias, w, input_zero_point, weight_zero_point=0):
    """bias − Zx·Σ_k (w[n, k] − Zw): the bias that makes a zero-point-free array exact."""
    w = np.asarray(w, dtype=np.int64)
    bias = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, np.int64)
    folded = bias - np.int64(input_zero_point) * (w - np.int64(weight_zero_point)).sum(axis=1)
    _check_range("folded bias", folded, INT32_MIN, INT32_MAX)
    return folded


def encode_weights(w, config):
    """Weights as the hardware lanes carry them (binary: 1 means +1, 0 means −1)."""
    w = np.asarray(w, dtype=np.int64)
    if config.weight_kind == "binary":
        if not np.isin(w, (-1, 1)).all():
            raise ValueError("w must hold only -1 and +1 for weight_kind='binary'")
        return (w > 0).astype(np.int64)
    if config.weight_kind == "ternary":
        _check_range("w", w, -1, 1)
        return w
    lo, hi = config.weight_zero_point_range
    _check_range("w", w, lo, hi)
    return w


def check_operands(x, config):
    lo, hi = config.act_zero_point_range
    _check_range("x", x, lo, hi)


@dataclass(frozen=True)
class LayerParams:
    """Run-time parameters of one layer, checked against what a configuration can hold.

    ``multiplier`` and ``shift`` follow TFLite (M = multiplier·2^(shift−31)); with
    ``config.requant == "shift"`` the multiplier is ignored and M = 2^shift. Per-channel
    arrays have one entry per output channel.
    """

    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    output_zero_point: int
    act_min: int
    act_max: int
    input_zero_point: int = 0
    weight_zero_point: int = 0

    @classmethod
    def for_config(cls, config, *, n, bias=None, multiplier, shift, output_zero_point,
                   act_min, act_max, input_zero_point=0, weight_zero_point=0):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        bias = np.zeros(n, np.int64) if bias is None else integers("bias", bias)
        if bias.shape != (n,):
            raise ValueError(f"bias must have shape ({n},) (one per output channel), not "
                             f"shape {bias.shape}")
        _check_range("bias", bias, INT32_MIN, INT32_MAX)
        multiplier = per_channel_values("multiplier", 0 if multiplier is None else multiplier, n)
        shift = per_channel_values("shift", shift, n)
        output_zero_point, act_min, act_max, input_zero_point, weight_zero_point = (
            integer(name, value) for name, value in (
                ("output_zero_point", output_zero_point), ("act_min", act_min),
                ("act_max", act_max), ("input_zero_point", input_zero_point),
                ("weight_zero_point", weight_zero_point)))
        if not config.per_channel and (np.unique(multiplier).size > 1 or
                                       np.unique(shift).size > 1):
            raise ValueError("multiplier and shift must be scalars (one per tensor) unless "
                             "config.per_channel is True")
        if config.requant == "multiplier":
            _check_range("multiplier", multiplier, 0, INT32_MAX)
        _check_range("shift", shift, *config.shift_range)
        out_lo, out_hi = config.out_range
        for name, value in (("output_zero_point", output_zero_point), ("act_min", act_min),
                            ("act_max", act_max)):
            _check_range(name, value, out_lo, out_hi)
        if act_min > act_max:
            raise ValueError(f"act_min must be <= act_max, not {act_min} > {act_max}")
        _check_range("input_zero_point", input_zero_point, *config.act_zero_point_range)
        _check_range("weight_zero_point", weight_zero_point, *config.weight_zero_point_range)
        if weight_zero_point and not config.weight_zero_point_in_hw:
            raise ValueError(
                f"weight_zero_point must be 0 unless config.weight_zero_point_in_hw, not "
                f"{weight_zero_point}: it multiplies the activations and cannot be folded")
        return cls(bias, multiplier, shift, output_zero_point, act_min, act_max,
                   input_zero_point, weight_zero_point)

    def hardware_bias(self, config, w):
        """The bias the array needs: input zero point folded in unless subtracted in hw."""
        if config.input_zero_point_in_hw:
            return self.bias
        return fold_input_zero_point(self.bias, w, self.input_zero_point,
                                     self.weight_zero_point)


@dataclass(frozen=True)
class EngineJob:
    """One GEMM laid out as the beats of :class:`hw.engine.GemmEngine`'s streams.

    ``activations`` [beats, rows], ``weights`` [beats, cols] and ``channels`` (``bias``,
    ``shift`` and, unless shift-only, ``multiplier``, each [n_tiles, cols]) hold one beat per
    row, in stream order (docs/engine.md); ``command`` is the command's fields. Ragged edges
    are padded (rows and K with zeros, channels with zero weights and a zero multiplier);
    :meth:`outputs` drops what the padding produced. ``table`` [beats, 2] holds the
    (address, entry) beats of the engine's activation table (:func:`table_beats`), for
    engines built with one (the command then has ``table_loads`` and ``use_table``).
    """

    m: int
    k: int
    n: int
    rows: int
    cols: int
    command: dict
    activations: np.ndarray
    weights: np.ndarray
    channels: dict
    table: np.ndarray | None = None

    @property
    def weight_stationary(self):
        return "k_tiles" in self.command

    @property
    def n_tiles(self):
        return self.command["n_tiles"]

    @property
    def tile_rows(self):
        """Result rows per output tile: ``rows`` (output-stationary) or M (weight-stationary)."""
        return self.m if self.weight_stationary else self.rows

    @property
    def result_rows(self):
        if self.weight_stationary:
            return self.n_tiles * self.m
        return self.command["m_tiles"] * self.n_tiles * self.rows

    def beats(self):
        """Every input stream's beats in order, as field dicts (``layout.const`` takes them):
        the one place that turns the arrays above into stream payloads."""
        beats = {
            "command": [dict(self.command)],
            "channels": [{name: values[t].tolist() for name, values in self.channels.items()}
                         for t in range(self.n_tiles)],
            "weights": [{"w": beat.tolist()} for beat in self.weights],
            "activations": [{"x": beat.tolist()} for beat in self.activations],
        }
        if "table_loads" in self.command:   # an engine with an activation table
            beats["table"] = [{"addr": int(addr), "data": int(entry)}
                              for addr, entry in self.table_loads]
        return beats

    @property
    def table_loads(self):
        """The table's (address, entry) beats [beats, 2]: none when ``table`` is None."""
        return np.zeros((0, 2), np.int64) if self.table is None else self.table

    @property
    def result_lasts(self):
        """``results.last`` of every result row: set on each tile's final row."""
        return [int(i % self.tile_rows == self.tile_rows - 1) for i in range(self.result_rows)]

    def outputs(self, rows):
        """y [m, n] from the engine's result rows, in delivery order."""
        rows = np.asarray(rows, np.int64)
        if rows.shape != (self.result_rows, self.cols):
            raise ValueError(f"rows must have shape ({self.result_rows}, {self.cols}), "
                             f"not {rows.shape}")
        if self.weight_stationary:   # for each N tile, rows 0 … M−1
            y = rows.reshape(self.n_tiles, self.m, self.cols).transpose(1, 0, 2)
            return y.reshape(self.m, -1)[:, :self.n]
        m_tiles = self.command["m_tiles"]  # for each M tile, for each N tile, its rows
        tiles = rows.reshape(m_tiles, self.n_tiles, self.rows, self.cols)
        y = tiles.transpose(0, 2, 1, 3).reshape(m_tiles * self.rows, self.n_tiles * self.cols)
        return y[:self.m, :self.n]


def table_beats(array, table, table_lo=None):
    """The (address, entry) beats [2^out_bits, 2] that load an engine's activation table
    (:mod:`hw.engine.activation`) with ``table``: entry v − ``table_lo`` for every input v
    from ``table_lo`` (default: the low end of ``array.out_range``) to
    ``table_lo + len(table) − 1``; outputs beyond those inputs take the nearest end's entry,
    so every output value of ``array`` is covered (address = value − out_range's low end)."""
    table = integers("table", table)
    out_lo, out_hi = array.out_range
    table_lo = out_lo if table_lo is None else integer("table_lo", table_lo)
    if table.ndim != 1 or not 1 <= len(table) <= out_hi - out_lo + 1:
        raise ValueError(f"table must be 1-D with 1..{out_hi - out_lo + 1} entries (the "
                         f"output range [{out_lo}, {out_hi}]), not shape {table.shape}")
    _check_range("table_lo", table_lo, out_lo, out_hi - len(table) + 1)
    _check_range("table entries", table, out_lo, out_hi)
    values = np.arange(out_lo, out_hi + 1)
    entries = table[np.clip(values, table_lo, table_lo + len(table) - 1) - table_lo]
    return np.stack([values - out_lo, entries], axis=1)


def engine_job(config, x, w, params, *, table=None, table_lo=None, use_table=None):
    """Lay out ``x`` [M, K] · ``w`` [N, K]ᵀ with ``params`` (:class:`LayerParams` for
    ``config.array`` with one entry per output channel) for a :class:`hw.engine.GemmEngine`
    of ``config`` (:class:`hw.engine.EngineConfig`). Shapes and values are checked against
    what the engine can hold before anything is laid out.

    With ``config.activation_table``: ``table`` (entries for the inputs ``table_lo`` …,
    :func:`table_beats`) is loaded before the command's rows are looked up in it;
    ``use_table`` (default: whether ``table`` is given) looks the outputs up (True) or
    bypasses the table (False); ``use_table=True`` without ``table`` reuses the table the
    engine holds.
    """
    from .engine import MAX_M_TILES

    array = config.array
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError(f"x and w must be 2-D ([M, K] and [N, K]), not {x.shape} and {w.shape}")
    (m, k), n = x.shape, w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"w must have K={k} columns like x, not {w.shape[1]}")
    rows, cols = array.rows, array.cols
    max_m = config.max_m if config.weight_stationary else MAX_M_TILES * rows
    for name, value, lo, hi in (("M", m, 1, max_m), ("K", k, 1, config.max_k),
                                ("N", n, 1, config.max_n)):
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be in [1, {hi}] for this engine, not {value}")
    check_operands(x, array)
    bias = params.hardware_bias(array, w)   # folds with the real weights (binary: ±1)
    w = encode_weights(w, array)
    n_tiles = ceil_div(n, cols)

    def per_channel(values):
        padded = np.zeros(n_tiles * cols, np.int64)
        padded[:n] = values
        return padded.reshape(n_tiles, cols)

    channels = dict(bias=per_channel(bias), shift=per_channel(params.shift))
    if array.requant == "multiplier":
        channels["multiplier"] = per_channel(params.multiplier)
    output = dict(output_zero_point=params.output_zero_point, act_min=params.act_min,
                  act_max=params.act_max)
    loads = None
    if config.activation_table:
        use_table = table is not None if use_table is None else use_table
        if not isinstance(use_table, bool):
            raise TypeError(f"use_table must be a bool, not {use_table!r}")
        loads = None if table is None else table_beats(array, table, table_lo)
        output.update(table_loads=0 if loads is None else len(loads), use_table=int(use_table))
    elif table is not None or use_table:
        raise ValueError("table and use_table need an engine with an activation table "
                         "(EngineConfig(activation_table=True))")
    if config.weight_stationary:
        # K is tiled over the rows; padded K columns are zero in x, so they add nothing
        # whatever the padded weights encode.
        k_tiles = ceil_div(k, rows)
        x_pad = np.zeros((m, k_tiles * rows), np.int64)
        x_pad[:, :k] = x
        w_pad = np.zeros((n_tiles * cols, k_tiles * rows), np.int64)
        w_pad[:n, :k] = w
        return EngineJob(
            m=m, k=k, n=n, rows=rows, cols=cols,
            command=dict(m=m, n_tiles=n_tiles, k_tiles=k_tiles, **output),
            # beat (K tile t, row b): x[b, t·rows … t·rows + rows − 1]
            activations=x_pad.reshape(m, k_tiles, rows).transpose(1, 0, 2).reshape(-1, rows),
            # beat (N tile, K tile t, k): w[tile's channels, t·rows + k]
            weights=w_pad.reshape(n_tiles, cols, k_tiles, rows).transpose(0, 2, 3, 1)
                         .reshape(-1, cols),
            channels=channels, table=loads)
    m_tiles = ceil_div(m, rows)
    x_pad = np.zeros((m_tiles * rows, k), np.int64)
    x_pad[:m] = x
    w_pad = np.zeros((n_tiles * cols, k), np.int64)
    w_pad[:n] = w
    return EngineJob(
        m=m, k=k, n=n, rows=rows, cols=cols,
        command=dict(m_tiles=m_tiles, n_tiles=n_tiles, depth=k, **output),
        # beat (tile t, k) carries column k of tile t: x[t·rows + i, k] for each lane i
        activations=x_pad.reshape(m_tiles, rows, k).transpose(0, 2, 1).reshape(-1, rows),
        weights=w_pad.reshape(n_tiles, cols, k).transpose(0, 2, 1).reshape(-1, cols),
        channels=channels, table=loads)


def save_engine_job(job, path):
    """Write ``job`` to an .npz file (a cocotb bench loads it with :func:`load_engine_job`)."""
    np.savez(path, activations=job.activations, weights=job.weights,
             shape=np.array([job.m, job.k, job.n, job.rows, job.cols]),
             command_fields=np.array(list(job.command)),
             command=np.array(list(job.command.values())),
             **({} if job.table is None else {"table": job.table}),
             **{f"channel_{name}": values for name, values in job.channels.items()})


def load_engine_job(path):
    with np.load(path) as saved:
        m, k, n, rows, cols = (int(v) for v in saved["shape"])
        return EngineJob(
            m=m, k=k, n=n, rows=rows, cols=cols,
            command={str(name): int(v) for name, v in zip(saved["command_fields"],
                                                           saved["command"], strict=True)},
            activations=saved["activations"], weights=saved["weights"],
            channels={name[len("channel_"):]: saved[name] for name in saved.files
                      if name.startswith("channel_")},
            table=saved["table"] if "table" in saved.files else None)

