"""A whole .tflite model on the simulated GEMM engine, every layer checked against golden/.

:func:`run_model` walks a :class:`golden.model.Model`: the GEMM-shaped layers
(FULLY_CONNECTED, CONV_2D with its groups, DEPTHWISE_CONV_2D) are lowered to GEMMs
[M, K] × [N, K]ᵀ with per-channel requantization and run on one
:class:`hw.engine.EngineConfig` through :func:`sim.gemm.gemm`; every other op runs on the
host in golden/. Each layer's output is compared with golden's layer on the same input, bit
for bit, and the next layers read the hardware's output::

    model = golden.model.load("tests/models/mobilenet_style.tflite")
    run = run_model(model, x, sim="verilator")
    run.y, run.matched, run.cycles, [layer.utilization for layer in run.layers]

:func:`fit_engine` gives the engine configuration a model needs (K, N, the rows of one
command, the largest left shift of its multipliers).

Lowerings (:func:`lower`):

* FULLY_CONNECTED: one GEMM of the flattened input.
* CONV_2D: im2col on the host (padding with the input zero point); one GEMM per group.
* DEPTHWISE_CONV_2D, ``depthwise="toeplitz"`` (default): a depthwise convolution gives
  each channel its own filter, so no two channels can share one GEMM without multiplying
  zeros. Per input channel, P = min(cols, OW) neighbouring output pixels of a row become P
  columns: X holds, per output row and strip of P pixels, the KH input rows × the
  span = (P − 1)·stride + (KW − 1)·dilation + 1 input columns they read, and W is the banded
  (Toeplitz) matrix whose column p holds the filter shifted by p·stride. The m filters of a
  depth multiplier m share X, so N = m·P; where that leaves columns idle (a narrow output),
  R = cols // (m·P) output rows share an X row too (its window grows to
  (R − 1)·stride + (KH − 1)·dilation + 1 input rows), so N = m·R·P. The array multiplies
  KW/span of its operands by real taps (3/10 for a 3×3 filter on 8 columns), against 1/cols
  in the one-column-per-channel GEMM (``depthwise="per_channel"``: N = 1, K = KH·KW per
  output channel). :attr:`LayerRun.utilization` counts the
  layer's real MACs only; :attr:`LayerRun.array_busy` counts the zeros the lowering feeds in.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from golden.layers import _pair, conv_output_size, im2col
from hw.config import ArrayConfig, EngineConfig

__all__ = ["DEPTHWISE_MAPPINGS", "DEFAULT_ARRAY", "GemmTask", "LayerRun", "ModelRun",
           "fit_engine", "lower", "run_model"]

DEPTHWISE_MAPPINGS = ("toeplitz", "per_channel")
#: The array a model runs on when the caller names none: 8×8, int8, output-stationary.
DEFAULT_ARRAY = ArrayConfig(rows=8, cols=8, per_channel=True)


@dataclass(eq=False)
class GemmTask:
    """One GEMM of a lowered layer: y = requantize(x·wᵀ + bias) with per-column (M0, shift),
    and where its outputs go: ``scatter(y, out)`` writes y [M, N] into the layer's output."""
    x: np.ndarray = field(repr=False)
    w: np.ndarray = field(repr=False)
    bias: np.ndarray | None = field(repr=False)
    multiplier: np.ndarray = field(repr=False)
    shift: np.ndarray = field(repr=False)
    scatter: object = field(repr=False)

    @property
    def shape(self):
        """(M, K, N)."""
        return (self.x.shape[0], self.x.shape[1], self.w.shape[0])


def _gemm_tasks_fc(params, x):
    flat = x.reshape(-1, params.depth)

    def scatter(y, out):
        out.reshape(-1, params.channels)[:] = y

    return [GemmTask(flat, params.weights, params.bias, params.multiplier, params.shift,
                     scatter)]


def _gemm_tasks_conv(params, x):
    w = params.weights
    c_in, c_out, group_in = x.shape[3], w.shape[0], w.shape[3]
    groups = c_in // group_in
    per_group = c_out // groups
    patches, _ = im2col(x, w.shape[1:3], stride=params.stride, dilation=params.dilation,
                        padding=params.padding, pad_value=params.input_zero_point)
    taps = w.shape[1] * w.shape[2]
    patches = patches.reshape(patches.shape[0], taps, groups, group_in)
    tasks = []
    for g in range(groups):
        channels = slice(g * per_group, (g + 1) * per_group)

        def scatter(y, out, channels=channels):
            out.reshape(-1, c_out)[:, channels] = y

        tasks.append(GemmTask(
            np.ascontiguousarray(patches[:, :, g, :].reshape(patches.shape[0], -1)),
            w[channels].reshape(per_group, -1),
            None if params.bias is None else params.bias[channels],
            params.multiplier[channels], params.shift[channels], scatter))
    return tasks


def _depthwise_geometry(params, x):
    kh, kw = params.kernel
    (sh, sw), (dh, dw) = _pair("stride", params.stride), _pair("dilation", params.dilation)
    oh, (top, bottom) = conv_output_size(x.shape[1], kh, sh, dh, params.padding)
    ow, (left, right) = conv_output_size(x.shape[2], kw, sw, dw, params.padding)
    return (kh, kw), (sh, sw), (dh, dw), (oh, ow), (top, bottom, left, right)


def _gemm_tasks_depthwise_per_channel(params, x):
    w = params.weights[0]                                  # [KH, KW, C·m]
    channels, m = x.shape[3], w.shape[2] // x.shape[3]
    tasks = []
    for c in range(channels):
        patches, _ = im2col(x[..., c:c + 1], params.kernel, stride=params.stride,
                            dilation=params.dilation, padding=params.padding,
                            pad_value=params.input_zero_point)
        for k in range(m):
            o = c * m + k

            def scatter(y, out, o=o):
                out[..., o] = y[:, 0].reshape(out.shape[:-1])

            tasks.append(GemmTask(patches, w[:, :, o].reshape(1, -1),
                                  None if params.bias is None else params.bias[o:o + 1],
                                  params.multiplier[o:o + 1], params.shift[o:o + 1], scatter))
    return tasks


def _ideal_cycles(m, k, n, *, rows, cols, weight_stationary):
    """Cycles of an M×K×N GEMM on a rows×cols grid without any overhead: the cost model that
    chooses the depthwise row packing."""
    def tiles(size, tile):
        return -(-size // tile)

    if weight_stationary:
        return tiles(k, rows) * tiles(n, cols) * m
    return tiles(m, rows) * tiles(n, cols) * k


def _gemm_tasks_depthwise_toeplitz(params, x, cols, rows, weight_stationary):
    """Per input channel: X [B·groups·strips, window·span], W [m·R·P, window·span] banded:
    P output pixels of a row (a strip) × R output rows (a group) × the m filters are the
    columns (see the module docstring)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow), (top, bottom, left, right) = \
        _depthwise_geometry(params, x)
    batch, height, width, channels = x.shape
    w = params.weights[0]                                   # [KH, KW, C·m]
    m = w.shape[2] // channels
    strip = min(cols, ow)                                   # P
    strips = -(-ow // strip)
    span = (strip - 1) * sw + (kw - 1) * dw + 1

    def shape(r):           # (M, K, N) of one channel's GEMM with r output rows per X row
        return (batch * -(-oh // r) * strips, ((r - 1) * sh + (kh - 1) * dh + 1) * span,
                m * r * strip)

    # R output rows per X row fill the columns a narrow output leaves idle, where the ideal
    # cycle count says it pays (it does not when M is already below one tile of rows)
    group = min(range(1, max(1, min(oh, cols // (m * strip))) + 1),
                key=lambda r: _ideal_cycles(*shape(r), rows=rows, cols=cols,
                                            weight_stationary=weight_stationary))
    groups = -(-oh // group)
    window = (group - 1) * sh + (kh - 1) * dh + 1
    # pad so that the last strip's and group's overhang reads the zero point too
    extra_right = max(0, (strips * strip - 1) * sw + (kw - 1) * dw + 1 - (width + left + right))
    extra_bottom = max(0, (groups * group - 1) * sh + (kh - 1) * dh + 1
                       - (height + top + bottom))
    padded = np.pad(x, ((0, 0), (top, bottom + extra_bottom), (left, right + extra_right),
                        (0, 0)), constant_values=params.input_zero_point)
    rows = (np.arange(groups) * group * sh)[:, None] + np.arange(window)[None, :]  # [G, win]
    columns = (np.arange(strips) * strip * sw)[:, None] + np.arange(span)[None, :]  # [S, span]
    # gathered[b, g, s, i, j, c] = padded[b, rows[g, i], columns[s, j], c]
    gathered = padded[:, rows[:, None, :, None], columns[None, :, None, :], :]
    taps_i = np.arange(group)[:, None] * sh + np.arange(kh)[None, :] * dh     # [R, KH]
    taps_j = np.arange(strip)[:, None] * sw + np.arange(kw)[None, :] * dw     # [P, KW]
    tasks = []
    for c in range(channels):
        xc = np.ascontiguousarray(gathered[..., c].reshape(batch * groups * strips,
                                                           window * span))
        band = np.zeros((m, group, strip, window, span), np.int64)
        for k in range(m):
            for r in range(group):
                for p in range(strip):
                    band[k, r, p][np.ix_(taps_i[r], taps_j[p])] = w[:, :, c * m + k]
        outs = slice(c * m, (c + 1) * m)

        def scatter(y, out, outs=outs):
            # y[(b, g, s), (k, r, p)] → out[b, g·R + r, s·P + p, c·m + k]
            tiled = y.reshape(batch, groups, strips, m, group, strip)
            tiled = tiled.transpose(0, 1, 4, 2, 5, 3).reshape(batch, groups * group,
                                                               strips * strip, m)
            out[..., outs] = tiled[:, :oh, :ow]

        def repeat(values, outs=outs):
            return None if values is None else np.repeat(values[outs], group * strip)

        tasks.append(GemmTask(xc, band.reshape(m * group * strip, window * span),
                              repeat(params.bias), repeat(params.multiplier),
                              repeat(params.shift), scatter))
    return tasks


def lower(params, x, *, cols, rows=None, weight_stationary=False, depthwise="toeplitz"):
    """The :class:`GemmTask` list of one GEMM-shaped layer (:class:`golden.model.GemmParams`)
    on input ``x`` for an array ``rows`` (default: ``cols``) × ``cols`` of the given
    dataflow."""
    if depthwise not in DEPTHWISE_MAPPINGS:
        raise ValueError(f"depthwise must be one of {', '.join(DEPTHWISE_MAPPINGS)}, not "
                         f"{depthwise!r}")
    if params.kind == "fully_connected":
        return _gemm_tasks_fc(params, x)
    if params.kind == "conv2d":
        return _gemm_tasks_conv(params, x)
    if depthwise == "per_channel":
        return _gemm_tasks_depthwise_per_channel(params, x)
    return _gemm_tasks_depthwise_toeplitz(params, x, cols, cols if rows is None else rows,
                                          weight_stationary)


def _grid(array):
    """:func:`lower`'s array arguments of an :class:`ArrayConfig`."""
    return dict(cols=array.cols, rows=array.rows, weight_stationary=array.weight_stationary)


# -- the engine a model needs ---------------------------------------------------------------------

def _layer_inputs(model, batch):
    """{layer index: golden input values} of a zero input: the shapes every lowering sees."""
    x = np.full((batch, *model.input_info.shape[1:]), int(model.input_info.zero_point[0]))
    inputs = {}

    def execute(layer, values):
        inputs[layer.index] = values
        return layer.golden(*values)

    model.run(x, execute=execute)
    return inputs


def task_shapes(model, *, batch=1, array=DEFAULT_ARRAY, depthwise="toeplitz"):
    """{layer index: [(M, K, N) of each GEMM]} of the GEMM-shaped layers on ``array``."""
    inputs = _layer_inputs(model, batch)
    return {layer.index: [t.shape for t in lower(layer.gemm, inputs[layer.index][0],
                                                 depthwise=depthwise, **_grid(array))]
            for layer in model.layers if layer.on_engine}


def fit_engine(model, array=None, *, batch=1, depthwise="toeplitz"):
    """An :class:`EngineConfig` that runs every GEMM of ``model`` at ``batch``: ``array``
    (default :data:`DEFAULT_ARRAY`) with the largest left shift its multipliers need, buffers
    deep and wide enough for its largest K and N (at least :func:`sim.gemm.engine_config_for`'s
    minimum, so that models share builds) and, weight-stationary, rows for its largest M
    (larger Ms are split into several commands)."""
    from .gemm import engine_config_for, engine_limits

    array = DEFAULT_ARRAY if array is None else array
    roundings = {layer.gemm.rounding for layer in model.layers if layer.on_engine}
    if roundings and roundings != {array.rounding}:
        rounding = roundings.pop()
        try:
            array = array.replace(rounding=rounding)
        except ValueError as error:
            raise ValueError(f"the model's rounding {rounding!r} is not one a hardware "
                             f"configuration builds ({error})") from None
    shifts = [int(layer.gemm.shift.max()) for layer in model.layers if layer.on_engine]
    need = max([0, *shifts])
    if need > array.max_left_shift:
        array = array.replace(max_left_shift=need)
    shapes = [s for tasks in task_shapes(model, batch=batch, array=array,
                                         depthwise=depthwise).values() for s in tasks]
    if not shapes:
        return engine_config_for(array, 1, 1, 1)
    limits = engine_limits(array)
    # output-stationary engines stream X (max_m is unused): one configuration, one build,
    # for every batch
    m = min(max(s[0] for s in shapes), limits["M"]) if array.weight_stationary else 1
    k = max(s[1] for s in shapes)
    n = min(max(s[2] for s in shapes), limits["N"])
    if k > limits["K"]:
        raise ValueError(f"a GEMM of depth K = {k} exceeds the deepest an engine of this array "
                         f"takes ({limits['K']})")
    return engine_config_for(array, m, k, n)


def check_engine(model, engine, *, batch=1, depthwise="toeplitz"):
    """ValueError naming the first layer ``engine`` cannot run (a left shift beyond its
    max_left_shift, a K deeper than its max_k)."""
    for layer in model.layers:
        if not layer.on_engine:
            continue
        if layer.gemm.rounding != engine.array.rounding:
            raise ValueError(f"operator {layer.index} ({layer.op}) rounds "
                             f"{layer.gemm.rounding!r} but the engine rounds "
                             f"{engine.array.rounding!r}")
        shift = int(layer.gemm.shift.max())
        if shift > engine.array.max_left_shift:
            raise ValueError(f"operator {layer.index} ({layer.op}) needs shift {shift} (a "
                             f"multiplier ≥ 1) but the engine's max_left_shift is "
                             f"{engine.array.max_left_shift}: set array.max_left_shift ≥ "
                             f"{shift}")
    for index, shapes in task_shapes(model, batch=batch, array=engine.array,
                                     depthwise=depthwise).items():
        for _, k, _ in shapes:
            if k > engine.max_k:
                raise ValueError(f"operator {index} needs K = {k} but the engine's max_k is "
                                 f"{engine.max_k}")


# -- running -----------------------------------------------------------------------------------

@dataclass
class LayerRun:
    """What one layer did.

    Members
    -------
    index, op : int, str
    where : str
        ``"engine"`` or ``"host"``.
    shape : tuple
        Output shape.
    macs : int
        The layer's multiply-accumulates (engine layers).
    gemm_macs : int
        What the engine multiplied, structural zeros of the lowering included.
    cycles : int
        Engine cycles, summed over its commands.
    commands : int
    matched : bool
        Equal to golden's layer on the same input, element for element.
    mismatches : int
    seconds : float
        Wall time (lowering, simulation, check).
    """
    index: int
    op: str
    where: str
    shape: tuple
    macs: int = 0
    gemm_macs: int = 0
    cycles: int = 0
    commands: int = 0
    matched: bool = True
    mismatches: int = 0
    seconds: float = 0.0
    grid: int = 1

    @property
    def utilization(self):
        """The layer's real MACs / (rows·cols·cycles)."""
        return self.macs / (self.grid * self.cycles) if self.cycles else 0.0

    @property
    def array_busy(self):
        """MACs the engine performed (zeros of the lowering included) / (rows·cols·cycles)."""
        return self.gemm_macs / (self.grid * self.cycles) if self.cycles else 0.0


@dataclass
class ModelRun:
    """The outputs and per-layer record of :func:`run_model`."""
    y: np.ndarray
    values: dict = field(repr=False)
    layers: list
    engine: EngineConfig
    simulator: str

    @property
    def matched(self):
        return all(layer.matched for layer in self.layers)

    @property
    def cycles(self):
        return sum(layer.cycles for layer in self.layers)

    @property
    def macs(self):
        return sum(layer.macs for layer in self.layers)

    @property
    def utilization(self):
        grid = self.engine.array.rows * self.engine.array.cols
        return self.macs / (grid * self.cycles) if self.cycles else 0.0


def _chunks(total, size):
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


@dataclass(eq=False)
class _Command:
    """One engine command: rows × channels of a task."""
    task: GemmTask
    rows: slice
    channels: slice

    def gemm_args(self, params):
        t = self.task
        return dict(bias=None if t.bias is None else t.bias[self.channels],
                    input_zero_point=params.input_zero_point,
                    output_zero_point=params.output_zero_point,
                    multiplier=t.multiplier[self.channels], shift=t.shift[self.channels],
                    act_min=params.act_min, act_max=params.act_max)


def _commands(engine, tasks):
    """The tasks split into commands the engine takes (M by its row limit, N by max_n)."""
    from .gemm import engine_limits

    m_limit = engine_limits(engine.array)["M"]
    if engine.weight_stationary:
        m_limit = min(m_limit, engine.max_m)
    return [_Command(task, rows, channels) for task in tasks
            for rows in _chunks(task.shape[0], m_limit)
            for channels in _chunks(task.shape[2], engine.max_n)]


def _simulate_layer(engine, commands, params, *, sim, stall, seed):
    """[(y, cycles)] of each command. Amaranth's simulator runs a layer's commands back to
    back in one simulation (one elaboration); the Verilog simulators run them through
    :func:`sim.gemm.gemm`, one command each."""
    from .gemm import gemm

    if sim != "amaranth":
        results = []
        for i, command in enumerate(commands):
            t = command.task
            result = gemm(engine, t.x[command.rows], t.w[command.channels], sim=sim,
                          stall=stall, seed=seed + i, check=False, **command.gemm_args(params))
            results.append((result.y, result.cycles))
        return results
    from hw.host import LayerParams, engine_job

    from .amaranth_sim import run_engine

    jobs = []
    for command in commands:
        t = command.task
        w = t.w[command.channels]
        args = command.gemm_args(params)
        layer_params = LayerParams.for_config(
            engine.array.replace(per_channel=True), n=w.shape[0], bias=args.pop("bias"),
            **args)
        jobs.append(engine_job(engine, t.x[command.rows], w, layer_params))
    runs = run_engine(engine, jobs, stall=stall, seed=seed)
    return [(job.outputs(run.rows), run.cycles) for job, run in zip(jobs, runs, strict=True)]


def run_model(model, x, *, engine=None, sim="verilator", depthwise="toeplitz", stall=0.0,
              seed=0, progress=None, simulate=None):
    """Run ``model`` (:class:`golden.model.Model`) on int8 input ``x`` (batch first).

    engine : :class:`EngineConfig` or None
        None: :func:`fit_engine` for this batch. Checked against the model first.
    sim : ``"verilator"``, ``"icarus"`` or ``"amaranth"`` (:func:`sim.gemm.gemm`).
    progress : callable or None
        Called with each finished :class:`LayerRun`.
    simulate : callable or None
        ``simulate(engine, commands, params)`` → [(y, cycles)] per command instead of the
        simulator (tests of the lowering); a command has ``task``, ``rows``, ``channels``
        and ``gemm_args(params)``.

    Returns a :class:`ModelRun`; a layer that differs from golden is recorded
    (``matched=False``) and the run goes on with the hardware's output.
    """
    x = model.check_input(x)
    batch = x.shape[0]
    if engine is None:
        engine = fit_engine(model, batch=batch, depthwise=depthwise)
    else:
        check_engine(model, engine, batch=batch, depthwise=depthwise)
    grid = engine.array.rows * engine.array.cols
    if simulate is None:
        def simulate(engine, commands, params):
            return _simulate_layer(engine, commands, params, sim=sim, stall=stall, seed=seed)
    records = []

    def execute(layer, inputs):
        start = time.perf_counter()
        expected = layer.golden(*inputs)
        record = LayerRun(layer.index, layer.op, "engine" if layer.on_engine else "host",
                          tuple(expected.shape), grid=grid)
        if not layer.on_engine:
            out = expected
        else:
            params = layer.gemm
            out = np.empty(expected.shape, np.int64)
            tasks = lower(params, inputs[0], depthwise=depthwise, **_grid(engine.array))
            commands = _commands(engine, tasks)
            ys = {id(task): np.empty((task.shape[0], task.shape[2]), np.int64)
                  for task in tasks}
            for command, (y, cycles) in zip(commands, simulate(engine, commands, params),
                                            strict=True):
                ys[id(command.task)][command.rows, command.channels] = y
                record.cycles += cycles
            for task in tasks:
                task.scatter(ys[id(task)], out)
            record.commands = len(commands)
            record.gemm_macs = sum(int(np.prod(task.shape)) for task in tasks)
            record.macs = params.macs(inputs[0].shape)
            record.mismatches = int((out != expected).sum())
            record.matched = record.mismatches == 0
        record.seconds = time.perf_counter() - start
        records.append(record)
        if progress is not None:
            progress(record)
        return out

    values = model.run(x, execute=execute)
    return ModelRun(values[model.output], values, records, engine, sim)
