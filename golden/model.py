"""A full-integer int8 .tflite model as a graph of golden/ ops, bit-exact with TFLite 2.14.

:func:`load` parses the flatbuffer with the ``tflite`` package's schema bindings (never by
hand) and checks everything before anything runs: one subgraph with one int8 input and one
int8 output, every operator one of :data:`SUPPORTED_OPS`, every activation tensor int8 with
a fixed shape (only the batch axis may be dynamic), every parameter one TFLite's Prepare
accepts. Whatever is refused raises :class:`ModelError` naming the operator and its index.

Each :class:`Layer` is one operator with its parameters derived as TFLite derives them from
the file's float32 scales (``golden.tflite.conv_multiplier`` for CONV_2D and
DEPTHWISE_CONV_2D, ``golden.tflite.tflite_multiplier`` for FULLY_CONNECTED, the ops'
own Prepare in :mod:`golden.ops`). The GEMM-shaped ones (FULLY_CONNECTED, CONV_2D including
grouped, DEPTHWISE_CONV_2D) carry a :class:`GemmParams` that an accelerator can map; the
others run on the host. :meth:`Model.run` executes the graph on golden/ or, through its
``execute`` hook, puts chosen layers elsewhere (sim/model.py: the simulated engine)::

    model = golden.model.load("tests/models/residual.tflite")
    outputs = model.run(x)            # {tensor index: int8 codes} of every layer
    y = outputs[model.output]

Tensors are numpy int64 arrays of int8 codes, batch first; a model converted with batch 1
runs any batch (the batch axis of reshapes follows the input).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

from . import ops
from .accumulator import accumulator_bits, signed_width
from .layers import conv2d, conv_output_size, fully_connected
from .tflite import (
    GOLDEN_ROUNDINGS,
    XNNPACK_ROUNDING,
    activation_range,
    conv_multiplier,
    requantize,
    tflite_multiplier,
    xnnpack_mean_scale,
    xnnpack_scale,
)

__all__ = ["ENGINE_OPS", "SUPPORTED_OPS", "GemmParams", "Layer", "Model", "ModelError",
           "TensorInfo", "load"]

#: Operators that are a GEMM plus requantization (run on an accelerator).
ENGINE_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
#: Operators run on the host in golden/.
HOST_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL", "MEAN", "PAD", "PADV2", "RESHAPE",
            "CONCATENATION", "LOGISTIC", "TANH", "HARD_SWISH", "SOFTMAX", "QUANTIZE")
SUPPORTED_OPS = ENGINE_OPS + HOST_OPS
INT8_RANGE = (ops.INT8_MIN, ops.INT8_MAX)
#: tflite.ActivationFunctionType codes → golden.tflite.activation_range names.
ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
PADDINGS = {0: "same", 1: "valid"}
DYNAMIC = -1

_OP_NAMES = {code: name for name, code in vars(tflite.BuiltinOperator).items()
             if not name.startswith("_")}
_TYPE_NAMES = {code: name for name, code in vars(tflite.TensorType).items()
               if not name.startswith("_")}
_NUMPY_TYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32,
                "INT64": np.int64, "FLOAT32": np.float32}
#: Builtin options table of each supported op, and the fields read from it.
_OPTIONS = {
    "CONV_2D": ("Conv2DOptions", ("Padding", "StrideH", "StrideW", "DilationHFactor",
                                  "DilationWFactor", "FusedActivationFunction")),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", (
        "Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor",
        "DepthMultiplier", "FusedActivationFunction")),
    "FULLY_CONNECTED": ("FullyConnectedOptions", ("FusedActivationFunction", "KeepNumDims",
                                                  "WeightsFormat")),
    "AVERAGE_POOL_2D": ("Pool2DOptions", ("Padding", "StrideH", "StrideW", "FilterHeight",
                                          "FilterWidth", "FusedActivationFunction")),
    "MAX_POOL_2D": ("Pool2DOptions", ("Padding", "StrideH", "StrideW", "FilterHeight",
                                      "FilterWidth", "FusedActivationFunction")),
    "ADD": ("AddOptions", ("FusedActivationFunction",)),
    "MUL": ("MulOptions", ("FusedActivationFunction",)),
    "MEAN": ("ReducerOptions", ("KeepDims",)),
    "CONCATENATION": ("ConcatenationOptions", ("Axis", "FusedActivationFunction")),
    "SOFTMAX": ("SoftmaxOptions", ("Beta",)),
}


class ModelError(ValueError):
    """A .tflite file qmac cannot run: the message names the operator and its index."""


# -- tensors ------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TensorInfo:
    """One tensor of the file.

    Members
    -------
    index : int
    name : str
    type : str
        TFLite's type name (``"INT8"``, ``"INT32"``, ``"FLOAT32"`` …).
    shape : tuple of int
        As stored (batch 1 for converted Keras models).
    signature : tuple of int
        The shape signature: −1 marks a dynamic axis.
    scale, zero_point : numpy.ndarray or None
        Quantization (float32 and int64, one per tensor or per channel).
    data : numpy.ndarray or None
        Constant contents (weights, bias, shape operands).
    """
    index: int
    name: str
    type: str
    shape: tuple
    signature: tuple
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    data: np.ndarray | None = field(default=None, repr=False)

    @property
    def quantized(self):
        return self.scale is not None and self.scale.size > 0

    def describe(self):
        """``int8[1, 8, 8, 8] s=0.0192 z=-128`` (per-channel: the scale range)."""
        text = f"{self.type.lower()}{list(self.shape)}"
        if self.quantized:
            if self.scale.size == 1:
                text += f" s={float(self.scale[0]):.4g} z={int(self.zero_point[0])}"
            else:
                text += (f" s={float(self.scale.min()):.3g}..{float(self.scale.max()):.3g}"
                         f" ({self.scale.size} ch)")
        return text


def _tensor(graph, model, index):
    t = graph.Tensors(index)
    shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    signature = (tuple(int(v) for v in t.ShapeSignatureAsNumpy())
                 if t.ShapeSignatureLength() else shape)
    q = t.Quantization()
    scale = zero_point = None
    if q is not None and q.ScaleLength():
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero_point = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
                      else np.zeros(scale.size, np.int64))
    type_name = _TYPE_NAMES.get(t.Type(), str(t.Type()))
    data = None
    buffer = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    if buffer is not None and buffer.DataLength():
        raw = buffer.DataAsNumpy().tobytes()
        data = np.frombuffer(raw, dtype=_NUMPY_TYPES.get(type_name, np.uint8))
        if type_name in _NUMPY_TYPES:
            data = data.reshape(shape)
    name = t.Name().decode() if t.Name() else f"t{index}"
    return TensorInfo(index, name, type_name, shape, signature, scale, zero_point, data)


# -- GEMM-shaped layers --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GemmParams:
    """What FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D compute, with TFLite's parameters.

    Members
    -------
    kind : str
        ``"fully_connected"``, ``"conv2d"`` or ``"depthwise_conv2d"``.
    weights : numpy.ndarray
        int8 codes in TFLite's layout: [N, K]; [C_out, KH, KW, C_in / groups];
        [1, KH, KW, C·m].
    bias : numpy.ndarray or None
        int32 per output channel.
    input_zero_point, output_zero_point : int
    weight_zero_point : numpy.ndarray
        Per output channel (0 for TFLite's int8 filters).
    multiplier, shift : numpy.ndarray
        TFLite's (M0, shift) per output channel.
    act_min, act_max : int
    stride, dilation : (int, int)
    padding : str
        ``"same"`` or ``"valid"``.
    keep_num_dims : bool
        FULLY_CONNECTED: keep the input's leading axes.
    rounding : str
        The requantization's rounding (:data:`golden.tflite.GOLDEN_ROUNDINGS`): ``"double"``
        for the reference kernels, ``"double_half_up"`` for TFLite's optimized x86 ones,
        ``"fp32"`` for XNNPACK's (which scales by :attr:`scale` instead of multiplier/shift).
    scale : numpy.ndarray or None
        With ``rounding="fp32"``: XNNPACK's float32 scale per output channel
        (:func:`golden.tflite.xnnpack_scale`); None otherwise.
    """
    kind: str
    weights: np.ndarray = field(repr=False)
    bias: np.ndarray | None = field(repr=False)
    input_zero_point: int
    weight_zero_point: np.ndarray = field(repr=False)
    output_zero_point: int
    multiplier: np.ndarray = field(repr=False)
    shift: np.ndarray = field(repr=False)
    act_min: int
    act_max: int
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    padding: str = "valid"
    keep_num_dims: bool = False
    rounding: str = "double"
    scale: np.ndarray | None = field(default=None, repr=False)

    @property
    def channels(self):
        """N: output channels."""
        return self.weights.shape[-1 if self.kind == "depthwise_conv2d" else 0]

    @property
    def depth(self):
        """K of one output's dot product: taps × input channels per output."""
        if self.kind == "fully_connected":
            return self.weights.shape[1]
        if self.kind == "conv2d":
            return int(np.prod(self.weights.shape[1:]))
        return self.weights.shape[1] * self.weights.shape[2]

    @property
    def kernel(self):
        return (1, 1) if self.kind == "fully_connected" else tuple(self.weights.shape[1:3])

    def requant(self):
        """Keyword arguments of golden's layer functions (and of ``sim.gemm.gemm``)."""
        return dict(input_zero_point=self.input_zero_point,
                    output_zero_point=self.output_zero_point, multiplier=self.multiplier,
                    shift=self.shift, act_min=self.act_min, act_max=self.act_max)

    def golden_requant(self):
        """:meth:`requant` with the rounding, for golden's layer functions (XNNPACK's
        float32 scale in place of (multiplier, shift) with ``rounding="fp32"``)."""
        if self.rounding == XNNPACK_ROUNDING:
            return dict(self.requant(), multiplier=self.scale, shift=0, rounding=self.rounding)
        return dict(self.requant(), rounding=self.rounding)

    def output_shape(self, x_shape):
        """Shape of the output for an input of ``x_shape``."""
        if self.kind == "fully_connected":
            rows = int(np.prod(x_shape)) // self.depth
            if self.keep_num_dims:
                return (*x_shape[:-1], self.channels)
            return (rows, self.channels)
        (oh, _), (ow, _) = (conv_output_size(x_shape[axis + 1], self.kernel[axis],
                                             self.stride[axis], self.dilation[axis],
                                             self.padding) for axis in (0, 1))
        return (x_shape[0], oh, ow, self.channels)

    def macs(self, x_shape):
        """Multiply-accumulates of one run on an input of ``x_shape``: outputs × K."""
        return int(np.prod(self.output_shape(x_shape))) * self.depth

    def accumulator_bits(self):
        """(int8 bound, this layer's bound): the exact signed width of a K-deep dot product
        of int8 operands, and of int8 activations with these weights (max over channels of
        128·Σ|w|), plus the bias."""
        worst = accumulator_bits(self.depth, INT8_RANGE, INT8_RANGE)
        w = self.weights.astype(np.int64)
        per_channel = (np.abs(w).reshape(-1, w.shape[-1]).sum(axis=0)
                       if self.kind == "depthwise_conv2d"
                       else np.abs(w).reshape(w.shape[0], -1).sum(axis=1))
        bound = -ops.INT8_MIN * per_channel
        if self.bias is not None:
            bound = bound + np.abs(self.bias.astype(np.int64))
        top = int(bound.max()) if bound.size else 0
        return worst, signed_width(-top, top)

    def golden(self, x):
        """The layer on golden/: int64 codes."""
        common = self.golden_requant()
        if self.kind == "fully_connected":
            flat = x.reshape(-1, self.depth)
            y = fully_connected(flat, self.weights, self.bias,
                                weight_zero_point=self.weight_zero_point, **common)
            return y.reshape(self.output_shape(x.shape))
        if self.kind == "conv2d":
            return conv2d(x, self.weights, self.bias, weight_zero_point=self.weight_zero_point,
                          stride=self.stride, padding=self.padding, dilation=self.dilation,
                          **common)
        return ops.depthwise_conv2d(x, self.weights, self.bias, stride=self.stride,
                                    padding=self.padding, dilation=self.dilation, **common)


def _xnnpack_mean(x, *, input_scale, input_zero_point, output_scale, output_zero_point, axis,
                  keep_dims):
    """MEAN over the spatial axes as TFLite's XNNPACK delegate runs it (XNNPACK's global
    average pooling, fp32 requantization): :func:`golden.tflite.xnnpack_mean_scale`."""
    count = int(np.prod([x.shape[a] for a in axis]))
    scale = xnnpack_mean_scale(input_scale, output_scale, count)
    total = np.asarray(x, dtype=np.int64).sum(axis=axis, keepdims=keep_dims)
    return requantize(total - input_zero_point * count, multiplier=scale, shift=0,
                      output_zero_point=output_zero_point, act_min=ops.INT8_MIN,
                      act_max=ops.INT8_MAX, rounding=XNNPACK_ROUNDING)


# -- layers --------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Layer:
    """One operator of the graph.

    Members
    -------
    index : int
        Its position in the file's operator list (what errors and tables name).
    op : str
        TFLite's builtin name, e.g. ``"DEPTHWISE_CONV_2D"``.
    inputs : tuple of int
        The activation tensors it reads (constants are folded into its parameters).
    output : int
        The tensor it writes.
    gemm : GemmParams or None
        Set for :data:`ENGINE_OPS`.
    """
    index: int
    op: str
    inputs: tuple
    output: int
    gemm: GemmParams | None = None
    compute: object = field(default=None, repr=False)
    notes: str = ""

    @property
    def on_engine(self):
        return self.gemm is not None

    def golden(self, *values):
        """The output on golden/ from the input tensors' values."""
        if self.gemm is not None:
            return self.gemm.golden(values[0])
        return np.asarray(self.compute(*values), dtype=np.int64)


class Model:
    """A loaded model: :attr:`tensors`, :attr:`layers` in execution order, :attr:`input`
    and :attr:`output` tensor indices. Build one with :func:`load`."""

    def __init__(self, tensors, layers, input_index, output_index, description=""):
        self.tensors = tensors
        self.layers = layers
        self.input = input_index
        self.output = output_index
        self.description = description

    @property
    def input_info(self):
        return self.tensors[self.input]

    @property
    def output_info(self):
        return self.tensors[self.output]

    def check_input(self, x):
        """``x`` as int64 codes: int8 values, batch first, the input's shape after it."""
        x = np.asarray(x)
        if x.dtype.kind not in "iu":
            raise TypeError(f"x must hold int8 codes (the model's quantized input), not "
                            f"{x.dtype}")
        expected = self.input_info.shape[1:]
        if x.ndim != len(self.input_info.shape) or x.shape[1:] != expected:
            raise ValueError(f"x must have shape [batch, {', '.join(map(str, expected))}] "
                             f"(the model's input, batch first), not {list(x.shape)}")
        if x.shape[0] < 1:
            raise ValueError("x must hold at least one input (batch ≥ 1)")
        if x.size and (int(x.min()) < ops.INT8_MIN or int(x.max()) > ops.INT8_MAX):
            raise ValueError(f"x must hold values in [{ops.INT8_MIN}, {ops.INT8_MAX}] "
                             f"(int8), not {int(x.min())}..{int(x.max())}")
        return x.astype(np.int64)

    def run(self, x, *, execute=None, progress=None):
        """Every layer's output: ``{tensor index: int64 codes}``, input included.

        ``execute(layer, inputs)``, when given, computes each layer instead of
        :meth:`Layer.golden` (and may compare with it); ``progress(layer, output)`` is
        called after each.
        """
        values = {self.input: self.check_input(x)}
        for layer in self.layers:
            inputs = [values[i] for i in layer.inputs]
            out = layer.golden(*inputs) if execute is None else execute(layer, inputs)
            values[layer.output] = out
            if progress is not None:
                progress(layer, out)
        return values

    def macs(self, batch=1):
        """{layer index: MACs of a batch} of the GEMM-shaped layers."""
        shapes = {self.input: (batch, *self.input_info.shape[1:])}
        result = {}
        for layer in self.layers:
            out = self.tensors[layer.output]
            if layer.gemm is not None:
                result[layer.index] = layer.gemm.macs(shapes[layer.inputs[0]])
            shapes[layer.output] = (batch, *out.shape[1:])
        return result


# -- loading -------------------------------------------------------------------------------------

def _options(op_name, operator):
    if op_name not in _OPTIONS:
        return {}
    table_name, fields = _OPTIONS[op_name]
    table = operator.BuiltinOptions()
    result = {}
    if table is None:
        return result
    options = getattr(tflite, table_name)()
    options.Init(table.Bytes, table.Pos)
    for name in fields:
        result[name] = getattr(options, name)()
    return result


class _Builder:
    """Turns one operator into a :class:`Layer`; every refusal names the operator."""

    def __init__(self, tensors, index, op_name, operator, rounding):
        self.rounding = rounding
        self.tensors = tensors
        self.index = index
        self.op = op_name
        self.ins = [int(i) for i in operator.InputsAsNumpy()] if operator.InputsLength() else []
        self.outs = [int(i) for i in operator.OutputsAsNumpy()]
        self.options = _options(op_name, operator)

    def error(self, message):
        return ModelError(f"operator {self.index} ({self.op}): {message}")

    def tensor(self, position, *, constant=False, optional=False):
        if position >= len(self.ins) or self.ins[position] < 0:
            if optional:
                return None
            raise self.error(f"input {position} is missing")
        t = self.tensors[self.ins[position]]
        if constant and t.data is None:
            raise self.error(f"input {position} ({t.name}) must be a constant in the file")
        return t

    def act(self, t, what):
        if t.type != "INT8":
            kind = ("a float model" if t.type.startswith("FLOAT") else
                    "int16 activations" if t.type == "INT16" else f"{t.type} activations")
            raise self.error(f"{what} {t.name!r} is {t.type}: {kind} is not supported (qmac "
                             "runs full-integer int8 models: convert with "
                             "inference_input_type/inference_output_type int8)")
        if not t.quantized or t.scale.size != 1:
            raise self.error(f"{what} {t.name!r} must have one scale and zero point")
        if t.data is not None:
            raise self.error(f"{what} {t.name!r} is a constant; qmac takes activations only")
        return t

    def scale(self, t):
        return float(t.scale[0])

    def zero(self, t):
        return int(t.zero_point[0])

    def activation(self, out):
        code = self.options.get("FusedActivationFunction", 0)
        if code not in ACTIVATIONS:
            raise self.error(f"fused activation {code} is not supported (NONE, RELU, "
                             "RELU_N1_TO_1, RELU6)")
        return activation_range(ACTIVATIONS[code], self.scale(out), self.zero(out))

    def layer(self, inputs, *, gemm=None, compute=None, notes=""):
        return Layer(self.index, self.op, tuple(t.index for t in inputs), self.outs[0],
                     gemm=gemm, compute=compute, notes=notes)

    # GEMM-shaped ----------------------------------------------------------------------------
    def _filter(self, w):
        if w.type != "INT8" or not w.quantized:
            raise self.error(f"filter {w.name!r} must be int8 with quantization, not {w.type}")
        if w.zero_point.any():
            raise self.error(f"filter {w.name!r} has zero points "
                             f"{sorted(set(w.zero_point.tolist()))}: int8 filters must be "
                             "symmetric (zero point 0)")
        return w.scale

    def _bias(self, n):
        b = self.tensor(2, constant=True, optional=True)
        if b is None:
            return None
        if b.type != "INT32" or b.data.shape != (n,):
            raise self.error(f"bias {b.name!r} must be int32 of shape ({n},), not {b.type}"
                             f"{list(b.data.shape)}")
        return b.data.astype(np.int64)

    def _spatial(self):
        o = self.options
        if o["Padding"] not in PADDINGS:
            raise self.error(f"padding {o['Padding']} is not SAME or VALID")
        return dict(stride=(o["StrideH"], o["StrideW"]),
                    dilation=(o.get("DilationHFactor", 1), o.get("DilationWFactor", 1)),
                    padding=PADDINGS[o["Padding"]])

    def gemm_layer(self):
        x = self.act(self.tensor(0), "input")
        w = self.tensor(1, constant=True)
        out = self.act(self.tensors[self.outs[0]], "output")
        filter_scale = self._filter(w)
        act_min, act_max = self.activation(out)
        s_in, s_out = self.scale(x), self.scale(out)
        weights = w.data.astype(np.int64)
        if self.op == "FULLY_CONNECTED":
            if self.options.get("WeightsFormat", 0) != 0:
                raise self.error("shuffled FULLY_CONNECTED weights are not supported")
            if weights.ndim != 2:
                raise self.error(f"weights must be [N, K], not {list(weights.shape)}")
            n = weights.shape[0]
            scalar = filter_scale.size == 1
            m0, shift = tflite_multiplier(s_in, filter_scale[0] if scalar else filter_scale,
                                          s_out)
            kind, extra = "fully_connected", dict(
                keep_num_dims=bool(self.options.get("KeepNumDims", False)))
            if int(np.prod(x.shape)) % weights.shape[1]:
                raise self.error(f"input {list(x.shape)} does not flatten into rows of "
                                 f"K = {weights.shape[1]}")
        else:
            if weights.ndim != 4:
                raise self.error(f"filter must be 4-D, not {list(weights.shape)}")
            kind = "conv2d" if self.op == "CONV_2D" else "depthwise_conv2d"
            n = weights.shape[0] if kind == "conv2d" else weights.shape[3]
            c_in = x.shape[3]
            if kind == "conv2d" and (c_in % weights.shape[3] or n % (c_in // weights.shape[3])):
                raise self.error(f"filter {list(weights.shape)} does not group the input's "
                                 f"{c_in} channels")
            if kind == "depthwise_conv2d" and (weights.shape[0] != 1 or n % c_in):
                raise self.error(f"filter {list(weights.shape)} is not [1, KH, KW, C·m] of "
                                 f"the input's {c_in} channels")
            m0, shift = conv_multiplier(s_in, filter_scale, s_out)
            extra = self._spatial()
        m0, shift = np.broadcast_to(m0, (n,)).copy(), np.broadcast_to(shift, (n,)).copy()
        if filter_scale.size not in (1, n):
            raise self.error(f"filter has {filter_scale.size} scales for {n} output channels")
        scale = None
        if self.rounding == XNNPACK_ROUNDING:
            scale = np.broadcast_to(xnnpack_scale(s_in, filter_scale, s_out), (n,)).copy()
        params = GemmParams(kind, weights, self._bias(n), self.zero(x), np.zeros(n, np.int64),
                            self.zero(out), m0, shift, act_min, act_max, **extra,
                            rounding=self.rounding, scale=scale)
        try:
            expected = params.output_shape((1, *x.shape[1:]))
        except ValueError as error:
            raise self.error(str(error)) from None
        if expected[1:] != out.shape[1:]:
            raise self.error(f"output {list(out.shape)} is not the {list(expected)} the "
                             "layer computes")
        return self.layer([x], gemm=params)

    # host ops ---------------------------------------------------------------------------------
    def _same_quantization(self, x, out):
        if self.scale(x) != self.scale(out) or self.zero(x) != self.zero(out):
            raise self.error("input and output must share scale and zero point (TFLite "
                             "checks it)")

    def pool(self):
        x = self.act(self.tensor(0), "input")
        out = self.act(self.tensors[self.outs[0]], "output")
        self._same_quantization(x, out)
        act_min, act_max = self.activation(out)
        o = self.options
        spatial = dict(filter_size=(o["FilterHeight"], o["FilterWidth"]),
                       stride=(o["StrideH"], o["StrideW"]), padding=PADDINGS[o["Padding"]],
                       act_min=act_min, act_max=act_max)
        function = ops.average_pool2d if self.op == "AVERAGE_POOL_2D" else ops.max_pool2d
        return self.layer([x], compute=lambda v: function(v, **spatial))

    def binary(self):
        x1 = self.act(self.tensor(0), "input 0")
        x2 = self.act(self.tensor(1), "input 1")
        out = self.act(self.tensors[self.outs[0]], "output")
        act_min, act_max = self.activation(out)
        q = dict(input1_scale=self.scale(x1), input1_zero_point=self.zero(x1),
                 input2_scale=self.scale(x2), input2_zero_point=self.zero(x2),
                 output_scale=self.scale(out), output_zero_point=self.zero(out),
                 act_min=act_min, act_max=act_max)
        if self.op == "ADD":
            ops.add_params(q["input1_scale"], q["input2_scale"], q["output_scale"])
            function = ops.add
        else:
            ops.mul_multiplier(q["input1_scale"], q["input2_scale"], q["output_scale"])
            function = ops.mul
        return self.layer([x1, x2], compute=lambda a, b: function(a, b, **q))

    def mean(self):
        x = self.act(self.tensor(0), "input")
        axes = self.tensor(1, constant=True).data
        out = self.act(self.tensors[self.outs[0]], "output")
        axis = tuple(int(a) % len(x.shape) for a in np.atleast_1d(axes))
        if 0 in axis:
            raise self.error("MEAN over the batch axis is not supported")
        keep = bool(self.options.get("KeepDims", False))
        q = dict(input_scale=self.scale(x), input_zero_point=self.zero(x),
                 output_scale=self.scale(out), output_zero_point=self.zero(out), axis=axis,
                 keep_dims=keep)
        if self.rounding == XNNPACK_ROUNDING and len(x.shape) == 4 and sorted(axis) == [1, 2]:
            return self.layer([x], compute=lambda v: _xnnpack_mean(v, **q),
                              notes="XNNPACK's global average pooling")
        return self.layer([x], compute=lambda v: ops.mean(v, **q))

    def pad(self):
        x = self.act(self.tensor(0), "input")
        paddings = self.tensor(1, constant=True).data.astype(np.int64)
        out = self.act(self.tensors[self.outs[0]], "output")
        self._same_quantization(x, out)
        if paddings.shape != (len(x.shape), 2) or paddings[0].any():
            raise self.error(f"paddings {paddings.tolist()} must be [{len(x.shape)}, 2] and "
                             "leave the batch axis alone")
        value = self.zero(out)
        if self.op == "PADV2":
            constant = self.tensor(2, constant=True)
            value = int(constant.data.reshape(-1)[0])
        return self.layer([x], compute=lambda v: ops.pad(v, paddings, pad_value=value))

    def reshape(self):
        x = self.act(self.tensor(0), "input")
        out = self.act(self.tensors[self.outs[0]], "output")
        self._same_quantization(x, out)
        per_item = int(np.prod(out.shape[1:]))
        if not out.shape or out.shape[0] != x.shape[0] or (
                int(np.prod(x.shape[1:])) != per_item):
            raise self.error(f"reshape {list(x.shape)} → {list(out.shape)} moves the batch "
                             "axis (qmac keeps the batch first)")
        tail = tuple(out.shape[1:])
        return self.layer([x], compute=lambda v: ops.reshape(v, (v.shape[0], *tail)))

    def concatenation(self):
        inputs = [self.act(self.tensor(i), f"input {i}") for i in range(len(self.ins))]
        out = self.act(self.tensors[self.outs[0]], "output")
        for t in inputs:
            self._same_quantization(t, out)
        if self.options.get("FusedActivationFunction", 0):
            raise self.error("a fused activation on CONCATENATION is not supported")
        axis = int(self.options["Axis"]) % len(out.shape)
        if axis == 0:
            raise self.error("CONCATENATION along the batch axis is not supported")
        return self.layer(inputs, compute=lambda *v: ops.concatenation(v, axis=axis))

    def unary(self):
        x = self.act(self.tensor(0), "input")
        out = self.act(self.tensors[self.outs[0]], "output")
        q = dict(input_scale=self.scale(x), input_zero_point=self.zero(x))
        if self.op == "SOFTMAX":
            beta = float(self.options.get("Beta", 1.0))
            if (self.scale(out), self.zero(out)) != (1 / 256, ops.INT8_MIN):
                raise self.error("an int8 SOFTMAX output must have scale 1/256 and zero "
                                 "point -128")
            ops.softmax_params(self.scale(x), beta)
            return self.layer([x], compute=lambda v: ops.softmax(
                v, input_scale=q["input_scale"], beta=beta))
        q.update(output_scale=self.scale(out), output_zero_point=self.zero(out))
        function = {"LOGISTIC": ops.logistic, "TANH": ops.tanh, "HARD_SWISH": ops.hard_swish,
                    "QUANTIZE": ops.requantize_tensor}[self.op]
        if self.op == "HARD_SWISH":
            ops.hard_swish_params(q["input_scale"], q["output_scale"])
        elif self.op != "QUANTIZE":
            function(np.zeros(1, np.int64), **q)       # the table: TFLite's Prepare checks
        return self.layer([x], compute=lambda v: function(v, **q))

    def build(self):
        if len(self.outs) != 1:
            raise self.error(f"has {len(self.outs)} outputs; qmac's ops have one")
        if self.op in ENGINE_OPS:
            return self.gemm_layer()
        handlers = {"AVERAGE_POOL_2D": self.pool, "MAX_POOL_2D": self.pool, "ADD": self.binary,
                    "MUL": self.binary, "MEAN": self.mean, "PAD": self.pad, "PADV2": self.pad,
                    "RESHAPE": self.reshape, "CONCATENATION": self.concatenation}
        return handlers.get(self.op, self.unary)()


def _read(source):
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "<bytes>"
    path = Path(source)
    return path.read_bytes(), str(path)


def load(source, *, rounding="double"):
    """The :class:`Model` of a .tflite file (a path or its bytes); :class:`ModelError` for
    anything qmac cannot run, before anything runs.

    ``rounding`` is the requantization of the GEMM-shaped layers: ``"double"`` (TFLite's
    reference kernels, TFLite Micro), ``"double_half_up"`` (TFLite's optimized x86 kernels,
    ``OpResolverType.BUILTIN``) or ``"fp32"`` (XNNPACK's int8 kernels, the XNNPACK delegate),
    docs/models.md; any of :data:`golden.tflite.GOLDEN_ROUNDINGS`.
    """
    if rounding not in GOLDEN_ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(GOLDEN_ROUNDINGS)}, not "
                         f"{rounding!r}")
    data, where = _read(source)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{where} is not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise ModelError(f"{where} has {model.SubgraphsLength()} subgraphs; qmac runs "
                             "models with one")
        graph = model.Subgraphs(0)
        tensors = [_tensor(graph, model, i) for i in range(graph.TensorsLength())]
        operators = [graph.Operators(i) for i in range(graph.OperatorsLength())]
        codes = [model.OperatorCodes(op.OpcodeIndex()) for op in operators]
        graph_inputs = [int(i) for i in graph.InputsAsNumpy()]
        graph_outputs = [int(i) for i in graph.OutputsAsNumpy()]
    except ModelError:
        raise
    except Exception as error:      # a truncated or corrupt flatbuffer
        raise ModelError(f"{where} is not a readable TFLite model: "
                         f"{type(error).__name__}: {error}") from None
    if len(graph_inputs) != 1 or len(graph_outputs) != 1:
        raise ModelError(f"{where} has {len(graph_inputs)} inputs and {len(graph_outputs)} "
                         "outputs; qmac runs models with one of each")
    names = []
    for index, code in enumerate(codes):
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _OP_NAMES.get(builtin, f"builtin {builtin}")
        if builtin == tflite.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            name = f"CUSTOM {custom.decode() if custom else '?'}"
        if name not in SUPPORTED_OPS:
            raise ModelError(f"operator {index} ({name}) is not supported; qmac runs "
                             f"{', '.join(SUPPORTED_OPS)}")
        names.append(name)
    for t in tensors:
        dynamic = [axis for axis, size in enumerate(t.signature) if size == DYNAMIC]
        if any(axis != 0 for axis in dynamic):
            users = [i for i, op in enumerate(operators)
                     if t.index in op.InputsAsNumpy() or t.index in op.OutputsAsNumpy()]
            where_used = (f"operator {users[0]} ({names[users[0]]})" if users else "the graph")
            raise ModelError(f"{where_used}: tensor {t.name!r} has a dynamic shape "
                             f"{list(t.signature)}; qmac needs fixed shapes (only the batch "
                             "axis may be -1)")
    layers = []
    produced = {graph_inputs[0]}
    for index, (name, operator) in enumerate(zip(names, operators, strict=True)):
        builder = _Builder(tensors, index, name, operator, rounding)
        try:
            layer = builder.build()
        except ModelError:
            raise
        except (ValueError, TypeError) as error:     # golden's checks of the parameters
            raise builder.error(str(error)) from None
        missing = [i for i in layer.inputs if i not in produced]
        if missing:
            raise builder.error(f"reads tensor {tensors[missing[0]].name!r} before any "
                                "operator writes it (operators must be in execution order)")
        produced.add(layer.output)
        layers.append(layer)
    x, y = tensors[graph_inputs[0]], tensors[graph_outputs[0]]
    for what, t in (("input", x), ("output", y)):
        if t.type != "INT8":
            raise ModelError(f"the model's {what} {t.name!r} is {t.type}; qmac runs models "
                             "with int8 input and output (full-integer quantization)")
    if y.index not in produced:
        raise ModelError(f"no operator writes the model's output {y.name!r}")
    description = model.Description().decode() if model.Description() else ""
    return Model(tensors, layers, x.index, y.index, description)
