"""Which requantization an interpreter's int8 FULLY_CONNECTED computes, per kernel set.

Runs single-op FULLY_CONNECTED models (tools/tflite_oracle.py's ``build_model``) on an
interpreter and reports, for each kernel set, which candidate formulas equal every output::

    .venv-tf/bin/python tools/probe_fc_rounding.py          # TensorFlow 2.14.1
    V/bin/python tools/probe_fc_rounding.py                 # V: a venv with tensorflow-cpu 2.21
    .venv-tflite/bin/python tools/probe_fc_rounding.py      # tflite-runtime 2.14

The environment needs numpy and ``tflite`` (golden/ is imported for the candidates). Two
cases, K = 1 and weight 1 so that ``acc = x + bias`` with x = −128..127:

* ``ties``: real multiplier ½ exactly, biases 0, ±1: every odd accumulator is a tie;
* ``crafted``: accumulators near 10^9 (|acc| ≥ 2^24, so float32 rounds them) chosen, by a
  search over 8·10^7 random ones, where the candidates below differ from each other.

Candidates: golden's ``double``, ``double_half_up`` and ``fp32`` roundings (with FC's float32
product multiplier, and XNNPACK's float32 scale), the exact product with the convolutions'
double-product multiplier rounded once half away from zero, and ``std::round`` of the double
product ``acc · double(s_in)·double(s_w)/double(s_out)``. docs/models.md reports the results.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from record_model_oracle import Interpreter, OpResolverType  # noqa: E402
from tflite_oracle import build_model  # noqa: E402

from golden.tflite import (  # noqa: E402
    conv_multiplier,
    multiply_by_quantized_multiplier,
    tflite_multiplier,
    xnnpack_scale,
)

RESOLVERS = ("BUILTIN_REF", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN")
INPUTS = np.arange(-128, 128).reshape(-1, 1)
#: (biases, input scale, weight scale, output scale); scales are float32 values
CASES = {
    "ties": ([0, 1, -1], 1.0, 1.0, 2.0),
    "crafted": ([-984999998, -965000023, -964999998, -725000008, -564999986, -554999986,
                 764999997, 974999988], 0.37, 1.6486486e-07, 0.61),
}


def fc_case(bias, s_in, s_w, s_out):
    """tools/tflite_oracle.py's case description of the FULLY_CONNECTED model."""
    def tensor(shape, kind, scale, data):
        return {"shape": list(shape), "type": kind, "scale": [float(np.float32(scale))],
                "zero_point": [0], "quantized_dimension": 0, "data": data}
    n = len(bias)
    return {"op": "FULLY_CONNECTED", "options": {"fused_activation_function": 0},
            "tensors": [tensor(INPUTS.shape, "INT8", s_in, None),
                        tensor((n, 1), "INT8", s_w, [[1]] * n),
                        tensor((n,), "INT32", np.float32(s_in) * np.float32(s_w),
                               [int(b) for b in bias]),
                        tensor((len(INPUTS), n), "INT8", s_out, None)],
            "inputs": [0, 1, 2], "outputs": [3]}


def run(case, resolver):
    """(outputs, the interpreter's node names) of one case on one kernel set."""
    interpreter = Interpreter(model_content=build_model(case),
                              experimental_op_resolver_type=getattr(OpResolverType, resolver))
    interpreter.allocate_tensors()
    detail, = interpreter.get_input_details()
    interpreter.set_tensor(detail["index"], INPUTS.astype(np.int8))
    interpreter.invoke()
    nodes = [node["op_name"] for node in interpreter._get_ops_details()]
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), nodes


def candidates(acc, s_in, s_w, s_out):
    """Each candidate's int8 outputs (output zero point 0, no activation)."""
    clip = lambda v: np.clip(np.asarray(v, dtype=np.int64), -128, 127)  # noqa: E731
    m0, shift = tflite_multiplier(s_in, s_w, s_out)            # FC: float32 product
    conv_m0, conv_shift = conv_multiplier(s_in, s_w, s_out)    # convolutions: double product
    real = np.float64(np.float32(s_in)) * np.float64(np.float32(s_w)) / np.float64(
        np.float32(s_out))
    result = {r: clip(multiply_by_quantized_multiplier(acc, m0, shift, rounding=r))
              for r in ("double", "double_half_up")}
    result["fp32"] = clip(np.rint(acc.astype(np.float32) * xnnpack_scale(s_in, s_w, s_out)))
    result["m0 of the double product, half away"] = clip(multiply_by_quantized_multiplier(
        acc, conv_m0[0], conv_shift[0], rounding="half_away_from_zero"))
    product = acc * real
    result["std::round(acc·double product)"] = clip(np.sign(product) *
                                                    np.floor(np.abs(product) + 0.5))
    return result


def main():
    for name, (bias, s_in, s_w, s_out) in CASES.items():
        acc = INPUTS + np.asarray(bias, dtype=np.int64)
        expected = candidates(acc, s_in, s_w, s_out)
        for resolver in RESOLVERS:
            y, nodes = run(fc_case(bias, s_in, s_w, s_out), resolver)
            wrong = {k: int((v != y).sum()) for k, v in expected.items()}
            equal = [k for k, v in wrong.items() if v == 0]
            print(f"{name:8s} {resolver:34s} {'+'.join(nodes):26s} {y.size} outputs; "
                  f"equal: {', '.join(equal) or '-'}; differ: "
                  f"{', '.join(f'{k} {v}' for k, v in wrong.items() if v)}")


if __name__ == "__main__":
    sys.exit(main())
