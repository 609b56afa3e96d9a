"""Handwritten digits end to end: train in float, quantize as TFLite does, infer in int8.

The model half of a demo whose other half is a GEMM engine. sklearn's 8×8 digits (1797
images, shipped inside the wheel: no download) train a small MLP or CNN in plain numpy; the
float network is then quantized post-training exactly as TFLite's converter and integer
kernels do it:

* weights: per-channel symmetric, narrow range (int8: [−127, 127], zero point 0), so every
  output channel uses its full code range;
* activations: asymmetric int8, min/max calibrated on the training set;
* bias: int32 with scale S_in·S_w[n] and zero point 0, so it adds straight into the
  accumulator;
* requantization: per channel M = S_in·S_w[n]/S_out = M0·2^(shift−31) (QuantizeMultiplier),
  fused ReLU as the clamp [Z_out, 127].

Scales are rounded to float32 when a layer is built, because a .tflite file stores them as
float32 and the interpreter derives multipliers from those values: with that rounding the
per-channel multiplier is both ``quantize_multiplier(S_in·S_w/S_out)`` and
:func:`golden.tflite.tflite_multiplier`.

Every layer, convolution included, runs as one GEMM [M, K] × [N, K]ᵀ plus requantization
(:meth:`QuantizedLayer.gemm_inputs` / :meth:`QuantizedLayer.gemm_outputs`), so an engine that
only does that can run the whole network through :func:`run_quantized`'s ``gemm`` hook.
:func:`qat_finetune` adds quantization-aware fine-tuning for narrow (e.g. 4-bit) weights.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from golden.layers import conv_output_size, fully_connected, im2col
from golden.quantization import QuantParams, calibrate, qrange, quantize
from golden.tflite import INT32_MAX, INT32_MIN, activation_range, quantize_multiplier

__all__ = [
    "ConvSpec", "FloatLayer", "QuantizedLayer", "accuracy", "fake_quantize_weights",
    "float_forward", "golden_gemm", "load_digits_split", "predict_quantized",
    "qat_finetune", "quantize_input", "quantize_model", "run_quantized", "train_cnn",
    "train_mlp",
]

IMAGE_SHAPE = (8, 8, 1)  # digits are 8×8 grey levels 0..16; NHWC with one channel
CLASSES = 10


# ----------------------------------------------------------------------------- data

def load_digits_split(seed=0):
    """(x_train, y_train, x_test, y_test): float32 pixels in [0, 1] as [B, 64], int64 labels.

    Each class is permuted with ``seed`` and cut 75/25, so both halves keep the class balance
    (1347 training and 450 test images); the halves are then shuffled.
    """
    from sklearn.datasets import load_digits  # imported here: sklearn takes ~1 s to load

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)  # grey levels 0..16 → [0, 1]
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(y == label))
        cut = int(round(0.75 * idx.size))
        train.append(idx[:cut])
        test.append(idx[cut:])
    train = rng.permutation(np.concatenate(train))
    test = rng.permutation(np.concatenate(test))
    return x[train], y[train], x[test], y[test]


def accuracy(scores, y):
    """Fraction of rows whose argmax (float or int8 logits) is the label."""
    return float(np.mean(np.argmax(np.asarray(scores).reshape(len(y), -1), axis=1) == y))


# ----------------------------------------------------------------------------- layers

@dataclass(frozen=True)
class ConvSpec:
    """Geometry of a 2-D convolution on NHWC input; weights are [C_out, KH·KW·C_in] (OHWI
    flattened), the column order of :func:`golden.layers.im2col`."""
    in_shape: tuple[int, int, int]  # H, W, C_in of one image
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: str = "same"

    def _axis(self, axis):
        return conv_output_size(self.in_shape[axis], self.kernel[axis], self.stride[axis], 1,
                                self.padding)

    @property
    def out_hw(self):
        return self._axis(0)[0], self._axis(1)[0]

    @property
    def depth(self):
        """K of the GEMM: taps per output pixel."""
        return self.kernel[0] * self.kernel[1] * self.in_shape[2]

    def _indices(self):
        (oh, (top, bottom)), (ow, (left, right)) = self._axis(0), self._axis(1)
        rows = (np.arange(oh) * self.stride[0])[:, None] + np.arange(self.kernel[0])[None, :]
        cols = (np.arange(ow) * self.stride[1])[:, None] + np.arange(self.kernel[1])[None, :]
        return rows, cols, ((0, 0), (top, bottom), (left, right), (0, 0))

    def patches(self, x):
        """Float im2col (golden's accepts integers only): [B, H, W, C] → [B·OH·OW, K],
        zero padding (the real value 0; the integer path pads with the zero point)."""
        rows, cols, pads = self._indices()
        padded = np.pad(x, pads)
        taps = padded[:, rows[:, None, :, None], cols[None, :, None, :], :]
        return taps.reshape(-1, self.depth)

    def scatter(self, dpatches, batch):
        """Adjoint of :meth:`patches` (col2im) for backpropagation: sums overlapping taps."""
        rows, cols, pads = self._indices()
        h, w, c = self.in_shape
        padded = np.zeros((batch, h + sum(pads[1]), w + sum(pads[2]), c), dpatches.dtype)
        taps = dpatches.reshape(batch, rows.shape[0], cols.shape[0], *self.kernel, c)
        np.add.at(padded, (slice(None), rows[:, None, :, None], cols[None, :, None, :]), taps)
        return padded[:, pads[1][0]:pads[1][0] + h, pads[2][0]:pads[2][0] + w]


@dataclass(eq=False)
class FloatLayer:
    """One float layer, y = act(x·wᵀ + b). ``conv`` None: fully connected on the flattened
    input; else a convolution lowered to that GEMM. ``weight_bits`` set (by QAT): the forward
    pass sees the weights fake-quantized to that width, as the integer network will."""
    w: np.ndarray  # [N, K] float32, TFLite layout
    b: np.ndarray  # [N] float32
    relu: bool
    conv: ConvSpec | None = None
    weight_bits: int | None = None


def fake_quantize_weights(w, bits):
    """w rounded to its per-channel symmetric narrow-range grid, as float: what PTQ stores (up
    to the float32 rounding of the scale), the forward pass QAT trains through."""
    qmax = qrange(bits, True, narrow_range=True)[1]
    scale = np.abs(w).max(axis=1, keepdims=True) / qmax
    scale = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.sign(w) * np.floor(np.abs(w) / scale + 0.5), -qmax, qmax)
    return (q * scale).astype(w.dtype)


def _effective_weights(layer):
    if layer.weight_bits is None:
        return layer.w
    return fake_quantize_weights(layer.w, layer.weight_bits)


def _columns(layer, x):
    if layer.conv is None:
        return x.reshape(x.shape[0], -1)
    return layer.conv.patches(x.reshape(x.shape[0], *layer.conv.in_shape))


def _unflatten(layer, y, batch):
    if layer.conv is None:
        return y
    return y.reshape(batch, *layer.conv.out_hw, -1)


def float_forward(model, x, *, all_layers=False):
    """Float inference: the logits [B, 10], or with ``all_layers`` every layer's output
    (post-activation, NHWC for convolutions) — the tensors calibration looks at."""
    outputs = []
    for layer in model:
        z = _columns(layer, x) @ _effective_weights(layer).T + layer.b
        x = _unflatten(layer, np.maximum(z, 0) if layer.relu else z, x.shape[0])
        outputs.append(x)
    return outputs if all_layers else outputs[-1]


# ----------------------------------------------------------------------------- training

def _init_layer(rng, fan_in, fan_out, relu, conv=None):
    # He initialisation keeps ReLU activations' variance constant through depth.
    w = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_out, fan_in)).astype(np.float32)
    return FloatLayer(w=w, b=np.zeros(fan_out, np.float32), relu=relu, conv=conv)


def _train(model, x, y, *, epochs, batch_size, lr, seed, progress, weight_decay=0.0):
    """Adam on softmax cross-entropy with a cosine learning-rate decay; updates ``model``.

    With ``layer.weight_bits`` set the forward pass uses fake-quantized weights and the
    gradient with respect to them updates the float weights unchanged: the straight-through
    estimator (the max-based scale never clips, so STE is exactly the identity here).
    No weight decay by default: with Adam it shrinks a dead ReLU unit's weights to ~1e-13,
    whose bias then needs TFLite's weight-scale adjustment (see :func:`quantize_model`).
    """
    rng = np.random.default_rng(seed)
    x = x.astype(np.float32)
    params = [p for layer in model for p in (layer.w, layer.b)]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    batches = math.ceil(len(x) / batch_size)
    for epoch in range(epochs):
        rate = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            # forward, keeping what backward needs
            cache, a = [], xb
            for layer in model:
                w = _effective_weights(layer)
                cols = _columns(layer, a)
                z = cols @ w.T + layer.b
                cache.append((a.shape, cols, z, w))
                a = _unflatten(layer, np.maximum(z, 0) if layer.relu else z, len(xb))
            logits = a - a.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            total += float(-np.log(probs[np.arange(len(yb)), yb] + 1e-12).sum())
            grad = probs
            grad[np.arange(len(yb)), yb] -= 1.0
            grad /= np.float32(len(yb))
            # backward
            grads = []
            for i in range(len(model) - 1, -1, -1):
                layer = model[i]
                in_shape, cols, z, w = cache[i]
                d = grad.reshape(z.shape)
                if layer.relu:
                    d = d * (z > 0)
                grads.append(d.sum(axis=0))
                grads.append(d.T @ cols + np.float32(weight_decay) * layer.w)
                if i:  # no gradient needed for the input image
                    dcols = d @ w
                    if layer.conv is not None:
                        dcols = layer.conv.scatter(dcols, in_shape[0])
                    grad = dcols.reshape(in_shape)
            grads.reverse()
            step += 1
            correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= (rate / correction1 * m / (np.sqrt(v / correction2) + eps)).astype(p.dtype)
        if progress is not None:
            progress(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} "
                     f"({batches} batches, lr {rate:.2e})")
    return model


def train_mlp(x, y, hidden=(32,), epochs=60, seed=0, *, batch_size=32, lr=1e-2,
              progress=None):
    """A float MLP: ReLU hidden layers of widths ``hidden``, 10 logits; list of FloatLayer."""
    rng = np.random.default_rng(seed)
    widths = [x.reshape(len(x), -1).shape[1], *hidden, CLASSES]
    model = [_init_layer(rng, k, n, relu=i < len(hidden))
             for i, (k, n) in enumerate(zip(widths[:-1], widths[1:], strict=True))]
    return _train(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  progress=progress)


def train_cnn(x, y, channels=8, epochs=30, seed=0, *, kernel=3, stride=1, padding="same",
              batch_size=32, lr=3e-3, progress=None):
    """A float CNN on 8×8×1 NHWC images: one kernel×kernel convolution with ``channels``
    output channels and ReLU, then a fully-connected layer to 10 logits."""
    rng = np.random.default_rng(seed)
    conv = ConvSpec(IMAGE_SHAPE, (kernel, kernel), (stride, stride), padding)
    oh, ow = conv.out_hw
    model = [_init_layer(rng, conv.depth, channels, relu=True, conv=conv),
             _init_layer(rng, oh * ow * channels, CLASSES, relu=False)]
    return _train(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  progress=progress)


def qat_finetune(model, x, y, weight_bits=4, epochs=15, seed=0, *, batch_size=32, lr=1e-3,
                 progress=None):
    """Quantization-aware fine-tuning: a copy of ``model`` trained with its weights
    fake-quantized to ``weight_bits`` (per channel, symmetric narrow range, e.g. [−7, 7] at 4
    bits) in the forward pass and straight-through gradients. Quantize the result with
    :func:`quantize_model`, which then calibrates activations on the fake-quantized forward."""
    tuned = [replace(layer, w=layer.w.copy(), b=layer.b.copy(), weight_bits=weight_bits)
             for layer in model]
    return _train(tuned, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  progress=progress)


# ----------------------------------------------------------------------------- quantization

def _stored(scale):
    """A scale as a .tflite file holds it: float32 (returned as float64 for exact products)."""
    return np.asarray(scale, dtype=np.float32).astype(np.float64)


def _round_half_away(values):
    return np.sign(values) * np.floor(np.abs(values) + 0.5)  # TfLiteRound = std::round


@dataclass(frozen=True, eq=False)
class QuantizedLayer:
    """Everything :func:`golden.layers.fully_connected` needs for one int8 layer, and the
    float scales to interpret its codes (real = scale·(q − zero_point))."""
    w: np.ndarray            # int64 [N, K], codes in ±(2^(bits−1) − 1); conv: OHWI flattened
    bias: np.ndarray         # int64 [N], int32 values at scale bias_scale, zero point 0
    input_zero_point: int
    weight_zero_point: int   # 0: symmetric weights
    output_zero_point: int
    multiplier: np.ndarray   # int64 [N]: M0 with 2^30 ≤ M0 < 2^31
    shift: np.ndarray        # int64 [N]: M = M0·2^(shift − 31)
    act_min: int             # fused ReLU: the output zero point
    act_max: int
    input_scale: float
    weight_scale: np.ndarray  # [N]
    output_scale: float
    bias_scale: np.ndarray   # [N] = input_scale·weight_scale
    relu: bool
    weight_bits: int = 8
    conv: ConvSpec | None = None

    def requant_params(self):
        """Keyword arguments of :func:`golden.layers.fully_connected` besides x, w, bias."""
        return dict(input_zero_point=self.input_zero_point,
                    weight_zero_point=self.weight_zero_point,
                    output_zero_point=self.output_zero_point, multiplier=self.multiplier,
                    shift=self.shift, act_min=self.act_min, act_max=self.act_max)

    def gemm_inputs(self, x_q):
        """(x [M, K], w [N, K]) of this layer's GEMM: the flattened input (fully connected) or
        its im2col patches, padded with the input zero point (the real 0), as TFLite pads."""
        x_q = np.asarray(x_q)
        if self.conv is None:
            return x_q.reshape(x_q.shape[0], -1), self.w
        images = x_q.reshape(x_q.shape[0], *self.conv.in_shape)
        cols, _ = im2col(images, self.conv.kernel, stride=self.conv.stride,
                         padding=self.conv.padding, pad_value=self.input_zero_point)
        return cols, self.w

    def gemm_outputs(self, y, batch):
        """The GEMM's requantized [M, N] as this layer's output tensor: [B, N] or NHWC."""
        y = np.asarray(y)
        if self.conv is None:
            return y.reshape(batch, -1)
        return y.reshape(batch, *self.conv.out_hw, y.shape[-1])

    def output_params(self):
        return QuantParams(scale=self.output_scale, zero_point=self.output_zero_point)


def golden_gemm(x, w, layer):
    """The reference GEMM + requantization: :func:`golden.layers.fully_connected`."""
    return fully_connected(x, w, layer.bias, **layer.requant_params())


def quantize_model(model, x_calib, *, weight_bits=None):
    """Post-training static quantization of ``model`` (list of FloatLayer) to int8 layers.

    Activation ranges are the min/max of every layer's output over ``x_calib`` (the training
    set), the input's range that of ``x_calib`` itself. ``weight_bits`` defaults to the
    layer's QAT width, else 8.
    """
    x_calib = np.asarray(x_calib, dtype=np.float32)
    outputs = float_forward(model, x_calib, all_layers=True)
    in_params = calibrate(x_calib)  # asymmetric int8; pixels [0, 1] → S = 1/255, Z = −128
    s_in, z_in = float(_stored(in_params.scale)), int(in_params.zero_point)
    layers = []
    for layer, out in zip(model, outputs, strict=True):
        bits = weight_bits or layer.weight_bits or 8
        out_params = calibrate(out)
        s_out, z_out = float(_stored(out_params.scale)), int(out_params.zero_point)
        w_scale = calibrate(layer.w, axis=0, bits=bits, symmetric=True,
                            narrow_range=True).scale
        # TFLite's AdjustWeightsForBiasScale: a bias code beyond INT32_MAX/2 (a channel of
        # near-zero weights) widens that channel's weight scale until the bias code is
        # INT32_MAX/2, so that acc + bias cannot overflow int32.
        limit = np.abs(layer.b.astype(np.float64)) / (0.5 * s_in * INT32_MAX)
        w_scale = np.where(w_scale <= limit, limit, w_scale)
        w_params = QuantParams(scale=_stored(w_scale), zero_point=0, bits=bits,
                               narrow_range=True, axis=0)
        w_q = quantize(layer.w, w_params)
        bias_scale = s_in * w_params.scale
        bias = np.clip(_round_half_away(layer.b / bias_scale), INT32_MIN, INT32_MAX)
        multiplier, shift = quantize_multiplier(s_in * w_params.scale / s_out)
        act_min, act_max = activation_range("relu" if layer.relu else "none", s_out, z_out)
        layers.append(QuantizedLayer(
            w=w_q, bias=bias.astype(np.int64), input_zero_point=z_in, weight_zero_point=0,
            output_zero_point=z_out, multiplier=multiplier, shift=shift, act_min=act_min,
            act_max=act_max, input_scale=s_in, weight_scale=w_params.scale, output_scale=s_out,
            bias_scale=bias_scale, relu=layer.relu, weight_bits=bits, conv=layer.conv))
        s_in, z_in = s_out, z_out  # the next layer reads this output's codes
    return layers


def quantize_input(layers, x):
    """Float images as the first layer's input codes (int64, within int8)."""
    params = QuantParams(scale=layers[0].input_scale, zero_point=layers[0].input_zero_point)
    return quantize(np.asarray(x, dtype=np.float64), params)


def run_quantized(layers: Sequence[QuantizedLayer], x_q,
                  gemm: Callable[[np.ndarray, np.ndarray, QuantizedLayer], np.ndarray]
                  | None = None):
    """Integer-only inference: every layer's int8 output (the last one: logits [B, 10]).

    ``gemm(x [M, K], w [N, K], layer) -> y [M, N]`` computes one layer's GEMM and
    requantization with ``layer``'s parameters; it defaults to :func:`golden_gemm`.
    """
    gemm = golden_gemm if gemm is None else gemm
    x_q = np.asarray(x_q)
    batch = x_q.shape[0]
    outputs = []
    for layer in layers:
        cols, w = layer.gemm_inputs(x_q)
        x_q = layer.gemm_outputs(gemm(cols, w, layer), batch)
        outputs.append(x_q)
    return outputs


def predict_quantized(layers, x, gemm=None):
    """Float images → int8 logits of the quantized network."""
    return run_quantized(layers, quantize_input(layers, x), gemm)[-1]
