"""Host API: quantized layers on a simulated GEMM engine, checked against golden/.

:func:`gemm` takes numpy integer arrays and TFLite's quantization parameters, lays the GEMM
out for a :class:`hw.engine.GemmEngine`, runs it in a simulator and returns the outputs with
the cycle count::

    result = gemm(ArrayConfig(rows=8, cols=8, kmax=64), x, w, bias=bias,
                  input_zero_point=zx, output_zero_point=zy, multiplier=m0, shift=shift,
                  act_min=-128, act_max=127, sim="verilator")
    result.y, result.cycles, result.utilization

``sim`` is ``"amaranth"`` (Amaranth's simulator, no Verilog: quick), ``"icarus"`` (the
generated Verilog under cocotb), ``"verilator"`` (the fast path, :mod:`sim.fast`: the
generated Verilog compiled with a C++ harness that drives the streams, ~10^6 cycles/s; the
cocotb bench instead when ``WAVES=1``, for waveforms) or ``"verilator-cocotb"`` (Verilator
under the cocotb bench). The fast path and the cocotb bench give the same outputs and cycle
counts for the same ``stall`` and ``seed``. Every call compares the outputs with
:func:`golden.layers.fully_connected` and raises :class:`MismatchError` on any difference,
unless ``check=False`` (the cocotb bench scores every output against golden/ itself).
:func:`fully_connected` and :func:`conv2d` (im2col on the host) are the layers.
``table=`` runs the outputs through the engine's programmable activation table (an engine
built with ``EngineConfig(activation_table=True)``; TFLite's 256-entry int8 tables, the seed
paper's ⌈σ⌋).
"""

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden import layers as golden_layers
from hw.config import ArrayConfig
from hw.engine import MAX_M_TILES, EngineConfig
from hw.host import LayerParams, engine_job, integers, save_engine_job

__all__ = ["SIMULATORS", "GemmResult", "MismatchError", "engine_config_for", "engine_limits",
           "gemm", "fully_connected", "conv2d"]

SIMULATORS = ("amaranth", "icarus", "verilator", "verilator-cocotb")


class MismatchError(AssertionError):
    """The hardware's outputs differ from golden/'s."""


@dataclass
class GemmResult:
    y: np.ndarray        # [M, N] int64
    expected: np.ndarray  # [M, N] what golden/ computes for the same GEMM
    cycles: int          # first input beat accepted → last result row delivered
    macs: int            # M·K·N
    rows: int
    cols: int
    simulator: str       # what ran: one of SIMULATORS ("verilator" is the fast path)
    verilog: str | None = None  # the generated Verilog that ran (Icarus, Verilator)
    #: the simulator's own seconds for the GEMM, start-up excluded (Icarus, Verilator)
    sim_seconds: float | None = None

    @property
    def utilization(self):
        """M·K·N / (rows·cols·cycles): the fraction of the array's peak MAC rate used."""
        return self.macs / (self.rows * self.cols * self.cycles)


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def _largest(fits, limit=1 << 32):
    """The largest v in [1, limit] for which ``fits(v)`` holds (it holds for every smaller v)."""
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


@functools.cache
def engine_limits(array):
    """``{"M": …, "K": …, "N": …}``: the largest GEMM one :class:`GemmEngine` of ``array``
    takes, as :class:`EngineConfig` bounds its buffers and the int32 partial sums bound K.

    The bounds are read off :class:`EngineConfig` itself (the one place that states them);
    output-stationary engines stream X and take :data:`hw.engine.MAX_M_TILES` tiles of rows.
    """
    EngineConfig(array, max_k=1, max_n=1, max_m=1)   # refuses arrays no engine can wrap

    def fits(name):
        def check(value):
            try:
                EngineConfig(array, **{name: value})
            except ValueError:
                return False
            return True
        return check

    m = (_largest(fits("max_m")) if array.weight_stationary else MAX_M_TILES * array.rows)
    return {"M": m, "K": _largest(fits("max_k")), "N": _largest(fits("max_n"))}


def engine_config_for(config, m, k, n):
    """An :class:`EngineConfig` for ``config`` with buffers for an M×K×N GEMM: at least
    256 deep, 64 channels and (weight-stationary) 256 rows of X, so that the layers of one
    model share a build; more when the GEMM needs it, within :func:`engine_limits`."""
    if isinstance(config, EngineConfig):
        if m > config.max_m and config.weight_stationary:
            config = config.replace(max_m=m)
        if k > config.max_k or n > config.max_n:
            config = config.replace(max_k=max(k, config.max_k), max_n=max(n, config.max_n))
        return config
    if not isinstance(config, ArrayConfig):
        raise TypeError(f"config must be an ArrayConfig or EngineConfig, not {config!r}")
    limits = engine_limits(config)
    return EngineConfig(config, max_k=min(max(256, 1 << (k - 1).bit_length()), limits["K"]),
                        max_n=min(max(64, _round_up(n, 64)), limits["N"]),
                        max_m=min(max(256, 1 << (m - 1).bit_length()), limits["M"]))


def _check_shapes(array, x, w):
    """M, K and N of x [M, K] · w [N, K]ᵀ, each within what an engine of ``array`` takes."""
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be [M, K] and w [N, K] with the same K, not {x.shape} and "
                         f"{w.shape}")
    limits = engine_limits(array)
    (m, k), n = x.shape, w.shape[0]
    for name, what, value in (("M", "rows of x", m), ("K", "columns of x and w", k),
                              ("N", "rows of w", n)):
        if not 1 <= value <= limits[name]:
            raise ValueError(f"{name} ({what}) must be in [1, {limits[name]}] on a "
                             f"{array.rows}×{array.cols} {array.dataflow} engine, not {value}")


def _params(array, n, *, act_min, act_max, **values):
    if array.requant == "multiplier" and values["multiplier"] is None:
        raise ValueError("multiplier (TFLite's M0, a scalar or one per channel) is required "
                         "unless the configuration's requant is 'shift'")
    out_lo, out_hi = array.out_range
    return LayerParams.for_config(
        array.replace(per_channel=True), n=n, act_min=out_lo if act_min is None else act_min,
        act_max=out_hi if act_max is None else act_max, **values)


def _golden(array, x, w, params, table=None, table_lo=None):
    y = golden_layers.fully_connected(
        x, w, params.bias, input_zero_point=params.input_zero_point,
        weight_zero_point=params.weight_zero_point, output_zero_point=params.output_zero_point,
        multiplier=None if array.requant == "shift" else params.multiplier, shift=params.shift,
        act_min=params.act_min, act_max=params.act_max, rounding=array.rounding)
    if table is None:
        return y
    table = np.asarray(table, np.int64)   # a lookup of each output, nearest end beyond it
    lo = array.out_range[0] if table_lo is None else int(table_lo)
    return table[np.clip(y, lo, lo + len(table) - 1) - lo]


def gemm(config, x, w, *, bias=None, input_zero_point=0, weight_zero_point=0,
         output_zero_point=0, multiplier=None, shift=0, act_min=None, act_max=None,
         table=None, table_lo=None, sim="amaranth", stall=0.0, seed=0, check=True):
    """y = requantize(x·wᵀ + bias) on a simulated :class:`GemmEngine`.

    x : [M, K] and w : [N, K] integer arrays in the configuration's operand ranges.
    multiplier, shift : TFLite's M0 and shift (M = M0·2^(shift−31)), scalars (per tensor) or
    length-N (per channel); with ``requant="shift"`` configurations ``multiplier`` is unused.
    act_min, act_max : the clamp (default: the output type's range).
    table, table_lo : an activation after the clamp, y ← table[y − table_lo] (inputs beyond
    the table take its nearest end): loaded into the engine's activation table
    (:func:`hw.host.table_beats`; the engine gets ``activation_table=True``). ``table_lo``
    defaults to the low end of the output range (TFLite's int8 tables: 256 entries from −128).
    stall : probability of an idle cycle on every stream, for testing flow control, in
    [0, :data:`sim.streams.MAX_STALL`].
    M, K and N may be anything in [1, :func:`engine_limits`]; everything is checked before
    any hardware is built or simulated.
    """
    from .runner import _waves
    from .streams import check_stall

    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    stall = check_stall(stall)
    if not isinstance(config, ArrayConfig | EngineConfig):
        raise TypeError(f"config must be an ArrayConfig or EngineConfig, not {config!r}")
    x, w = integers("x", x), integers("w", w)
    _check_shapes(config.array if isinstance(config, EngineConfig) else config, x, w)
    engine_config = engine_config_for(config, *x.shape, w.shape[0])
    if table is not None and not engine_config.activation_table:
        engine_config = engine_config.replace(activation_table=True)
    array = engine_config.array
    n = w.shape[0]
    params = _params(array, n, bias=bias, multiplier=multiplier, shift=shift,
                     output_zero_point=output_zero_point, act_min=act_min, act_max=act_max,
                     input_zero_point=input_zero_point, weight_zero_point=weight_zero_point)
    job = engine_job(engine_config, x, w, params, table=table, table_lo=table_lo)
    expected = _golden(array, x, w, params, table, table_lo)
    verilog = sim_seconds = None
    if sim == "amaranth":
        from .amaranth_sim import run_engine

        run, = run_engine(engine_config, [job], stall=stall, seed=seed)
        rows, cycles = run.rows, run.cycles
    elif sim == "verilator" and not _waves():
        from .fast import run_engine as run_fast

        run = run_fast(engine_config, job, stall=stall, seed=seed)
        rows, cycles, verilog, sim_seconds = run.rows, run.cycles, run.verilog, run.wall_seconds
    else:
        sim = "verilator-cocotb" if sim == "verilator" else sim
        rows, cycles, verilog, sim_seconds = _run_cocotb(
            engine_config, job, expected, sim.removesuffix("-cocotb"), stall, seed)
    y = job.outputs(rows)
    if check and not np.array_equal(y, expected):
        wrong = np.argwhere(y != expected)
        i, j = wrong[0]
        raise MismatchError(f"{len(wrong)} of {y.size} outputs differ from golden; first at "
                            f"[{i}, {j}]: hardware {y[i, j]}, golden {expected[i, j]}")
    return GemmResult(y=y, expected=expected, cycles=cycles, macs=x.shape[0] * x.shape[1] * n,
                      rows=array.rows, cols=array.cols, simulator=sim, verilog=verilog,
                      sim_seconds=sim_seconds)


def _run_cocotb(engine_config, job, expected, sim, stall, seed):
    from .runner import engine_design, run

    design = engine_design(engine_config)
    with tempfile.TemporaryDirectory(prefix="qmac_gemm_") as scratch:
        scratch = Path(scratch)
        save_engine_job(job, scratch / "job.npz")
        np.save(scratch / "expected.npy", expected)
        spec = {"job": str(scratch / "job.npz"), "expected": str(scratch / "expected.npy"),
                "rows_path": str(scratch / "rows.npy"), "stall": stall, "seed": seed}
        report = run(design, "sim.tb_engine", spec, sim=sim, test_dir=scratch / "run")
        rows = np.load(scratch / "rows.npy")
    return rows, report["cycles"], report["verilog"], report["wall_seconds"]


def fully_connected(config, x, w, bias=None, **params):
    """A quantized fully-connected layer (TFLite's FullyConnected): :func:`gemm` of x [B, K]
    and w [N, K]."""
    return gemm(config, x, w, bias=bias, **params)


def conv2d(config, x, w, bias=None, *, stride=1, padding="valid", dilation=1, **params):
    """A quantized 2-D convolution: x NHWC, w [C_out, KH, KW, C_in] (TFLite OHWI).

    The host unrolls x into patches (im2col, padded with the input zero point) and the engine
    multiplies them by the flattened filters; ``result.y`` is [N, OH, OW, C_out].
    """
    x, w = integers("x", x), integers("w", w)
    if x.ndim != 4 or w.ndim != 4 or w.shape[3] != x.shape[3]:
        raise ValueError(f"x must be NHWC and w [C_out, KH, KW, C_in] with matching C_in, not "
                         f"{x.shape} and {w.shape}")
    patches, (batch, oh, ow) = golden_layers.im2col(
        x, w.shape[1:3], stride=stride, dilation=dilation, padding=padding,
        pad_value=int(params.get("input_zero_point", 0)))
    result = gemm(config, patches, w.reshape(w.shape[0], -1), bias=bias, **params)
    result.y = result.y.reshape(batch, oh, ow, w.shape[0])
    result.expected = result.expected.reshape(result.y.shape)
    return result
