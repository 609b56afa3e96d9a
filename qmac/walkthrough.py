"""``make walkthrough``: one quantized layer through golden/, step by step.

A float fully-connected layer with ReLU is quantized post-training (asymmetric int8
activations calibrated on data, per-channel symmetric int8 weights), executed with integer
arithmetic only and compared with the float layer. ``make demo`` then runs whole networks
on the generated hardware.
"""

import sys
from fractions import Fraction

import numpy as np

import golden
from golden.accumulator import accumulator_bits, guard_bits


def _step(title):
    print(f"\n== {title}")


def main(argv=None):
    rng = np.random.default_rng(2018)
    batch, depth, channels = 64, 48, 10
    x_real = rng.normal(0.5, 1.0, size=(batch, depth))
    w_real = rng.normal(0.0, 0.2, size=(channels, depth))
    b_real = rng.normal(0.0, 0.1, size=channels)
    y_real = np.maximum(x_real @ w_real.T + b_real, 0.0)

    _step("1. Quantization parameters, r = S·(q − Z)")
    x_params = golden.calibrate(x_real, bits=8, signed=True)
    w_params = golden.calibrate(w_real, axis=0, bits=8, signed=True, symmetric=True,
                                narrow_range=True)
    y_params = golden.calibrate(y_real, bits=8, signed=True)
    print(f"input : S = {float(x_params.scale):.6f}, Z = {int(x_params.zero_point)}")
    print(f"weight: per-channel S in [{w_params.scale.min():.6f}, {w_params.scale.max():.6f}], "
          "Z = 0 (symmetric, narrow range ±127)")
    print(f"output: S = {float(y_params.scale):.6f}, Z = {int(y_params.zero_point)}")

    x_q = golden.quantize(x_real, x_params)
    w_q = golden.quantize(w_real, w_params)
    bias_q = np.rint(b_real / (x_params.scale * w_params.scale)).astype(np.int64)

    _step("2. Requantization multipliers, M = S_x·S_w/S_y = M0·2^(shift−31)")
    m0, shift = golden.tflite_multiplier(x_params.scale, w_params.scale, y_params.scale)
    real = float(x_params.scale * w_params.scale[0] / y_params.scale)
    print(f"channel 0: M = {real:.9f} → M0 = {int(m0[0])}, shift = {int(shift[0])} "
          f"(represents {float(Fraction(int(m0[0])) * Fraction(2) ** (int(shift[0]) - 31)):.9f})")
    act_min, act_max = golden.activation_range("relu", y_params.scale, y_params.zero_point)
    print(f"fused ReLU is the clamp [{act_min}, {act_max}]")

    _step(f"3. Accumulator width for K = {depth}")
    bits = accumulator_bits(depth, (-128 - int(x_params.zero_point), 127 -
                                    int(x_params.zero_point)), (-127, 127))
    print(f"the seeds' 2N+M = 16+{guard_bits(depth)} = {16 + guard_bits(depth)} bits; exact "
          f"bound with the input zero point folded in: {bits} bits")

    _step("4. Integer-only inference (TFLite double rounding)")
    y_q = golden.fully_connected(x_q, w_q, bias_q, input_zero_point=int(x_params.zero_point),
                                 weight_zero_point=0,
                                 output_zero_point=int(y_params.zero_point),
                                 multiplier=m0, shift=shift, act_min=act_min, act_max=act_max)
    y_deq = golden.dequantize(y_q, y_params)
    error = np.abs(y_deq - y_real)[y_real > 0]
    print(f"outputs {y_q.shape}, int8 range [{y_q.min()}, {y_q.max()}]")
    print(f"|float − dequantized int8| where ReLU passes: median {np.median(error):.4f}, "
          f"max {error.max():.4f} "
          f"(output step S_y = {float(y_params.scale):.4f})")

    _step("5. Rounding modes side by side on the same accumulators")
    for rounding in ("double", "single", "half_to_even", "floor"):
        other = golden.fully_connected(
            x_q, w_q, bias_q, input_zero_point=int(x_params.zero_point), weight_zero_point=0,
            output_zero_point=int(y_params.zero_point), multiplier=m0, shift=shift,
            act_min=act_min, act_max=act_max, rounding=rounding)
        print(f"{rounding:>13}: {int((other != y_q).sum()):4d} of {y_q.size} outputs differ "
              "from double rounding")
    print("\nEvery number above came from integer arithmetic in golden/ and `make demo` "
          "runs whole networks on the generated hardware.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
