"""``make demo``: one quantized layer through golden/, step by step.

A float fully-connected layer with ReLU is quantized post-training (asymmetric int8
activations calibrated on data, per-channel symmetric int8 weights), executed with integer
arithmetic only, compared with the float layer, and run again on a generated MacArray in
Amaranth's simulator, which must agree with golden/ bit for bit.
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
    samples = 16
    _step(f"6. The first {samples} samples on a generated 2×{channels} MacArray "
          "(Amaranth's simulator)")
    hardware = _run_on_array(x_q[:samples], w_q, bias_q, int(x_params.zero_point),
                             int(y_params.zero_point), m0, shift, act_min, act_max,
                             rows=2, cols=channels)
    if not np.array_equal(hardware, y_q[:samples]):
        raise SystemExit("the array disagrees with golden")
    print(f"{hardware.size} outputs from the RTL, all equal to golden's (bit-exact)")
    print("\nEvery number above came from integer arithmetic in golden/ and the generated "
          "hardware; `make test` checks both, bit for bit.")
    return 0


def _run_on_array(x, w, bias, input_zero_point, output_zero_point, m0, shift, act_min,
                  act_max, *, rows, cols):
    """The layer tiled over a rows×cols output-stationary array: rows of x by passes, output
    channels by column tiles (padded with zero weights), one parameter set per tile."""
    from hw.config import ArrayConfig
    from sim.amaranth_sim import run_array

    config = ArrayConfig(rows=rows, cols=cols, kmax=x.shape[1], per_channel=True,
                         input_zero_point_in_hw=True)
    batch, channels = x.shape[0], w.shape[0]
    out = np.zeros((batch, channels), np.int64)
    for start in range(0, channels, cols):
        tile = slice(start, min(start + cols, channels))
        width = tile.stop - tile.start
        pad = cols - width
        w_tile = np.pad(w[tile], ((0, pad), (0, 0)))
        params = dict(bias=np.pad(bias[tile], (0, pad)),
                      multiplier=np.pad(m0[tile], (0, pad), constant_values=1 << 30),
                      shift=np.pad(shift[tile], (0, pad)), output_zero_point=output_zero_point,
                      act_min=act_min, act_max=act_max, input_zero_point=input_zero_point)
        jobs = [(x[row:row + rows], w_tile) for row in range(0, batch, rows)]
        run = run_array(config, jobs, params)
        out[:, tile] = run.outputs[:, :width]
        print(f"  channels {tile.start}..{tile.stop - 1}: {len(jobs)} passes, "
              f"{len(run.outputs)} rows out")
    return out


if __name__ == "__main__":
    sys.exit(main())
