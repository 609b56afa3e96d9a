"""Record the TFLite 2.14 interpreter's every layer output of the models in tests/models/.

Runs in the oracle environment (bash tools/make_oracle_env.sh: tflite-runtime 2.14 with its
reference kernels, ``OpResolverType.BUILTIN_REF``)::

    .venv-tflite/bin/python tools/record_model_oracle.py            # every model
    .venv-tflite/bin/python tools/record_model_oracle.py residual    # one

or, where tflite-runtime is not installed, with TensorFlow's own ``tf.lite.Interpreter`` (the
converter environment .venv-tf, plus the ``tflite`` package)::

    .venv-tf/bin/python tools/record_model_oracle.py --resolver XNNPACK

For each ``tests/models/<name>.tflite`` it quantizes the digits test split
(tests/models/data/digits_test.npz, grey levels / 16) to the model's int8 input as the
interpreter's QUANTIZE would, runs the whole split as one batch with every operator's output
made a graph output (:func:`expose_outputs`) and writes
``tests/models/data/<name>_oracle.npz``:

* ``input`` — the int8 input, [450, 8, 8, 1];
* ``output`` — the interpreter's int8 output for every image;
* ``op<i>`` — operator i's output for the first :data:`LAYER_IMAGES` images;
* ``labels`` — the digits' labels.

tests/models/test_model_oracle.py compares golden/ and the RTL with it; the same module runs
the interpreter live when .venv-tflite exists. With ``--resolver`` another kernel set is run
(``BUILTIN``: TFLite's optimized x86 kernels; ``XNNPACK``: BUILTIN with the XNNPACK delegate)
and the file is ``<name>_oracle_<resolver>.npz``, which also holds ``interpreter`` (the
package and version that ran) and ``delegated`` (the operators a delegate ran, in the
interpreter's own node list). ``XNNPACK`` refuses to record when no operator was delegated:
tflite-runtime 2.14's wheel delegates none of these int8 models; TensorFlow 2.14.1's
interpreter delegates their GEMM-shaped ops (docs/models.md).
"""

import argparse
import struct
import sys
from pathlib import Path

import numpy as np
import tflite
from model_files import DATA_DIR, GREY_LEVELS, MODELS_DIR, TEST_DATA

try:
    import tflite_runtime
    from tflite_runtime.interpreter import Interpreter, OpResolverType
    INTERPRETER = f"tflite-runtime {tflite_runtime.__version__}"
except ImportError:       # TensorFlow's interpreter (the converter environment)
    import tensorflow as tf
    Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    INTERPRETER = f"tensorflow {tf.__version__}"

#: images whose every layer output is recorded (the final output is recorded for all)
LAYER_IMAGES = 32
#: vtable slot of SubGraph.outputs (field 2 of the schema's SubGraph table: 4 + 2·2)
SUBGRAPH_OUTPUTS_SLOT = 8
UOFFSET = 4
RESOLVERS = {"BUILTIN_REF": OpResolverType.BUILTIN_REF,
             "BUILTIN": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "XNNPACK": OpResolverType.BUILTIN}


def quantize_input(images, detail):
    """float32 images → the int8 input tensor: round(x / scale) + zero point, float32
    quotient, ties away from zero (reference_ops::AffineQuantize)."""
    scale, zero_point = detail["quantization"]
    quotient = images.astype(np.float32) / np.float32(scale)
    rounded = np.sign(quotient) * np.floor(np.abs(quotient) + np.float32(0.5))
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def expose_outputs(content):
    """The model with every operator's output made a graph output, and those tensors.

    TFLite 2.14 runs some ops in place (ADD writes into an input's buffer when nothing else
    reads it), so even ``experimental_preserve_all_tensors`` loses that input; graph outputs
    are never shared. The flatbuffer is not rebuilt: a new outputs vector is appended and
    SubGraph.outputs pointed at it (a forward offset, as flatbuffers requires).
    """
    graph = tflite.Model.GetRootAsModel(content, 0).Subgraphs(0)
    outputs = [int(graph.Operators(i).OutputsAsNumpy()[0])
               for i in range(graph.OperatorsLength())]
    field = graph._tab.Offset(SUBGRAPH_OUTPUTS_SLOT)
    if not field:
        raise ValueError("the subgraph has no outputs field")
    slot = graph._tab.Pos + field
    data = bytearray(content)
    data += bytes(-len(data) % UOFFSET)
    start = len(data)
    data += struct.pack(f"<I{len(outputs)}i", len(outputs), *outputs)
    struct.pack_into("<I", data, slot, start - slot)
    return bytes(data), outputs


def delegated_ops(interpreter, outputs):
    """Indices of the operators whose output a DELEGATE node writes (``outputs``: each
    operator's output tensor, as :func:`expose_outputs` gives them)."""
    written = {int(t) for node in interpreter._get_ops_details()
               if node["op_name"] == "DELEGATE" for t in node["outputs"]}
    return [i for i, tensor in enumerate(outputs) if tensor in written]


def run(model_path, images, resolver="BUILTIN_REF"):
    """(int8 input, every operator's output tensor, the final output, the delegated
    operators) of one batch."""
    content = Path(model_path).read_bytes()
    final = int(tflite.Model.GetRootAsModel(content, 0).Subgraphs(0).OutputsAsNumpy()[0])
    exposed, outputs = expose_outputs(content)
    interpreter = Interpreter(model_content=exposed,
                              experimental_op_resolver_type=RESOLVERS[resolver])
    detail, = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], [len(images), *detail["shape"][1:]])
    interpreter.allocate_tensors()
    delegated = delegated_ops(interpreter, outputs)
    if resolver == "XNNPACK" and not delegated:
        raise SystemExit(f"{INTERPRETER} delegated no operator of {model_path} to XNNPACK "
                         "(no DELEGATE node): run this with TensorFlow's interpreter, "
                         ".venv-tf/bin/python")
    x = quantize_input(images, detail)
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    ops = [interpreter.get_tensor(index) for index in outputs]
    return x, ops, interpreter.get_tensor(final), delegated


def record(name, resolver, out_dir=DATA_DIR):
    data = np.load(TEST_DATA)
    images = data["grey"].astype(np.float32) / np.float32(GREY_LEVELS)
    x, ops, output, delegated = run(MODELS_DIR / f"{name}.tflite", images, resolver)
    suffix = "" if resolver == "BUILTIN_REF" else f"_{resolver}"
    path = Path(out_dir) / f"{name}_oracle{suffix}.npz"
    layers = {f"op{i}": out[:LAYER_IMAGES] for i, out in enumerate(ops)}
    extra = {} if resolver == "BUILTIN_REF" else dict(
        interpreter=np.array(INTERPRETER), delegated=np.array(delegated, dtype=np.int64))
    np.savez_compressed(path, input=x, output=output, labels=data["labels"], **layers, **extra)
    accuracy = float(np.mean(np.argmax(output, axis=1) == data["labels"]))
    print(f"{name} ({resolver}, {INTERPRETER}): {len(ops)} ops, {len(delegated)} delegated "
          f"{delegated}, int8 accuracy {accuracy:.4f}, wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: every .tflite)")
    parser.add_argument("--resolver", choices=list(RESOLVERS), default="BUILTIN_REF")
    parser.add_argument("--out-dir", default=DATA_DIR,
                        help="where the .npz files go (default tests/models/data)")
    args = parser.parse_args(argv)
    names = args.models or sorted(p.stem for p in MODELS_DIR.glob("*.tflite"))
    for name in names:
        record(name, args.resolver, args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
