"""golden: the bit-exact numpy model of qmac's integer arithmetic, the oracle of every test.

It imports nothing of the project. Modules, in the order data flows through a layer:

* :mod:`golden.quantization` — affine quantization r = S(q − Z): parameters, calibration.
* :mod:`golden.accumulator` — exact accumulator width of a K-deep dot product (2N+M).
* :mod:`golden.gemm` — exact integer GEMM through BLAS where a computed bound allows it.
* :mod:`golden.rounding` — exact rounding of x / 2^n and x / d in five modes.
* :mod:`golden.tflite` — TFLite/gemmlowp requantization, bit for bit.
* :mod:`golden.layers` — fully_connected and (grouped) conv2d as TFLite's integer kernels
  compute them.
* :mod:`golden.ops` — the other int8 ops of common TFLite models (depthwise convolution,
  pooling, ADD, MUL, MEAN, PAD, RESHAPE, CONCATENATION, LOGISTIC, TANH, HARD_SWISH, SOFTMAX,
  QUANTIZE, DEQUANTIZE), bit-exact with TFLite 2.14's reference kernels (docs/ops.md).
* :mod:`golden.fixedpoint_set` — the fixed-point set Q_{p,s} and σ-quantized networks.
* :mod:`golden.exact_division` — rounding division by any s as the requantizer computes it,
  with the proof that its constant is exact over the accumulator's range.
* :mod:`golden.paper` — the seed paper's constructions (indicator networks, ReLU, identity,
  binary weights) that represent any f*: Q^d_{p,s} → Q_{p,s}.
* :mod:`golden.model` — a full-integer int8 .tflite file as a graph of these ops
  (``golden.model.load``; imported on its own, docs/models.md).
"""

from .accumulator import accumulator_bits, dot_product_bounds, guard_bits, operand_range
from .exact_division import exact_divider
from .fixedpoint_set import FixedPointSet, analyze, quantized_network
from .gemm import exact_matmul
from .layers import binarize, conv2d, fully_connected, im2col, ternarize
from .ops import (
    add,
    average_pool2d,
    concatenation,
    depthwise_conv2d,
    hard_swish,
    logistic,
    max_pool2d,
    mean,
    mul,
    pad,
    reshape,
    softmax,
    tanh,
)
from .paper import represent
from .quantization import QuantParams, calibrate, choose_qparams, dequantize, quantize
from .rounding import ROUNDING_MODES, round_div, round_shift
from .tflite import (
    activation_range,
    conv_multiplier,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    tflite_multiplier,
)

__all__ = [
    "FixedPointSet", "analyze", "quantized_network", "exact_divider", "represent",
    "QuantParams", "ROUNDING_MODES", "accumulator_bits", "activation_range", "binarize",
    "calibrate", "choose_qparams", "conv2d", "conv_multiplier", "dequantize",
    "dot_product_bounds", "exact_matmul", "fully_connected", "guard_bits", "im2col",
    "multiply_by_quantized_multiplier", "operand_range", "quantize", "quantize_multiplier",
    "requantize", "round_div", "round_shift", "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul", "ternarize", "tflite_multiplier",
    "add", "average_pool2d", "concatenation", "depthwise_conv2d", "hard_swish", "logistic",
    "max_pool2d", "mean", "mul", "pad", "reshape", "softmax", "tanh",
]
