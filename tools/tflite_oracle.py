"""Run single-op int8 models on the TFLite interpreter: the oracle of golden/ops.py.

Runs in the oracle environment (tools/make_oracle_env.sh: tflite-runtime 2.14, numpy < 2),
not in .venv. It reads a JSON list of cases on stdin and writes a JSON list of results on
stdout::

    .venv-tflite/bin/python tools/tflite_oracle.py < cases.json > results.json

A case describes one operator and its tensors::

    {"op": "ADD", "options": {"fused_activation_function": 0},
     "tensors": [{"shape": [1, 4], "type": "INT8", "scale": [0.1], "zero_point": [3],
                  "quantized_dimension": 0, "data": null}, ...],
     "inputs": [0, 1], "outputs": [2],                 # operator inputs and outputs
     "feeds": {"0": [[1, 2, 3, 4]], "1": [[...]]},     # data of the non-constant inputs
     "resolver": "BUILTIN_REF"}         # or BUILTIN, BUILTIN_WITHOUT_DEFAULT_DELEGATES

Tensors with ``data`` are constants (weights, bias, axis, paddings); a ``signature`` (−1 on
dynamic axes) is written as the tensor's shape signature. The model is written
with the flatbuffer schema bindings of the ``tflite`` package (no TensorFlow needed); the
result is ``{"outputs": [nested lists]}`` or ``{"error": "..."}`` when TFLite refuses the
model (its Prepare checks), so callers can assert refusals too.
"""

import json
import sys

import flatbuffers
import numpy as np
import tflite

#: Builtin options table of each op this oracle builds (None: the op has no options).
OPTIONS = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "MEAN": "ReducerOptions",
    "PAD": "PadOptions",
    "RESHAPE": "ReshapeOptions",
    "CONCATENATION": "ConcatenationOptions",
    "SOFTMAX": "SoftmaxOptions",
    "LOGISTIC": None,
    "TANH": None,
    "HARD_SWISH": "HardSwishOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
}
DTYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32,
          "FLOAT32": np.float32, "INT64": np.int64}
#: builtin codes below this also go in OperatorCode.deprecated_builtin_code
DEPRECATED_CODE_LIMIT = 127


def _camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


def _vector(builder, start, values, prepend):
    start(builder, len(values))
    for value in reversed(values):
        prepend(value)
    return builder.EndVector()


def _options(builder, table, options):
    vectors = {}
    for key, value in options.items():
        if isinstance(value, list):
            start = getattr(tflite, f"{table}Start{_camel(key)}Vector")
            vectors[key] = _vector(builder, start, value, builder.PrependInt32)
    getattr(tflite, f"{table}Start")(builder)
    for key, value in options.items():
        adder = getattr(tflite, f"{table}Add{_camel(key)}")
        adder(builder, vectors.get(key, value))
    return getattr(tflite, f"{table}End")(builder)


def _quantization(builder, spec):
    if "scale" not in spec:
        return None
    scale = _vector(builder, tflite.QuantizationParametersStartScaleVector, spec["scale"],
                    builder.PrependFloat32)
    zero_point = _vector(builder, tflite.QuantizationParametersStartZeroPointVector,
                         spec["zero_point"], builder.PrependInt64)
    tflite.QuantizationParametersStart(builder)
    tflite.QuantizationParametersAddScale(builder, scale)
    tflite.QuantizationParametersAddZeroPoint(builder, zero_point)
    tflite.QuantizationParametersAddQuantizedDimension(builder,
                                                      spec.get("quantized_dimension", 0))
    return tflite.QuantizationParametersEnd(builder)


def build_model(case):
    """The .tflite flatbuffer (bytes) of one case."""
    builder = flatbuffers.Builder(1024)
    op = case["op"]
    specs = case["tensors"]
    # buffers: 0 is the empty sentinel, then one per constant tensor
    buffer_data = [None]
    tensor_buffer = []
    for spec in specs:
        if spec.get("data") is None:
            tensor_buffer.append(0)
        else:
            raw = np.asarray(spec["data"], dtype=DTYPES[spec["type"]]).tobytes()
            tensor_buffer.append(len(buffer_data))
            buffer_data.append(raw)
    buffers = []
    for raw in buffer_data:
        data = None if raw is None else builder.CreateNumpyVector(
            np.frombuffer(raw, dtype=np.uint8))
        tflite.BufferStart(builder)
        if data is not None:
            tflite.BufferAddData(builder, data)
        buffers.append(tflite.BufferEnd(builder))
    tensors = []
    for index, spec in enumerate(specs):
        name = builder.CreateString(f"t{index}")
        shape = _vector(builder, tflite.TensorStartShapeVector, spec["shape"],
                        builder.PrependInt32)
        quantization = _quantization(builder, spec)
        signature = None
        if "signature" in spec:                      # a dynamic shape: -1 on some axes
            signature = _vector(builder, tflite.TensorStartShapeSignatureVector,
                                spec["signature"], builder.PrependInt32)
        tflite.TensorStart(builder)
        tflite.TensorAddShape(builder, shape)
        if signature is not None:
            tflite.TensorAddShapeSignature(builder, signature)
        tflite.TensorAddType(builder, getattr(tflite.TensorType, spec["type"]))
        tflite.TensorAddBuffer(builder, tensor_buffer[index])
        tflite.TensorAddName(builder, name)
        if quantization is not None:
            tflite.TensorAddQuantization(builder, quantization)
        tensors.append(tflite.TensorEnd(builder))
    table = OPTIONS.get(op)      # ops outside OPTIONS are written without options
    options = _options(builder, table, case.get("options", {})) if table else None
    op_inputs = _vector(builder, tflite.OperatorStartInputsVector, case["inputs"],
                        builder.PrependInt32)
    op_outputs = _vector(builder, tflite.OperatorStartOutputsVector, case["outputs"],
                         builder.PrependInt32)
    tflite.OperatorStart(builder)
    tflite.OperatorAddOpcodeIndex(builder, 0)
    tflite.OperatorAddInputs(builder, op_inputs)
    tflite.OperatorAddOutputs(builder, op_outputs)
    if table:
        tflite.OperatorAddBuiltinOptionsType(builder, getattr(tflite.BuiltinOptions, table))
        tflite.OperatorAddBuiltinOptions(builder, options)
    operator = tflite.OperatorEnd(builder)
    graph_inputs = [i for i in case["inputs"] if specs[i].get("data") is None]
    sub_inputs = _vector(builder, tflite.SubGraphStartInputsVector, graph_inputs,
                         builder.PrependInt32)
    sub_outputs = _vector(builder, tflite.SubGraphStartOutputsVector, case["outputs"],
                          builder.PrependInt32)
    sub_tensors = _vector(builder, tflite.SubGraphStartTensorsVector, tensors,
                          builder.PrependUOffsetTRelative)
    sub_operators = _vector(builder, tflite.SubGraphStartOperatorsVector, [operator],
                            builder.PrependUOffsetTRelative)
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, sub_tensors)
    tflite.SubGraphAddInputs(builder, sub_inputs)
    tflite.SubGraphAddOutputs(builder, sub_outputs)
    tflite.SubGraphAddOperators(builder, sub_operators)
    subgraph = tflite.SubGraphEnd(builder)
    code = getattr(tflite.BuiltinOperator, op)
    tflite.OperatorCodeStart(builder)
    tflite.OperatorCodeAddBuiltinCode(builder, code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, DEPRECATED_CODE_LIMIT))
    tflite.OperatorCodeAddVersion(builder, case.get("version", 1))
    opcode = tflite.OperatorCodeEnd(builder)
    codes = _vector(builder, tflite.ModelStartOperatorCodesVector, [opcode],
                    builder.PrependUOffsetTRelative)
    subgraphs = _vector(builder, tflite.ModelStartSubgraphsVector, [subgraph],
                        builder.PrependUOffsetTRelative)
    model_buffers = _vector(builder, tflite.ModelStartBuffersVector, buffers,
                            builder.PrependUOffsetTRelative)
    description = builder.CreateString("qmac golden oracle")
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, codes)
    tflite.ModelAddSubgraphs(builder, subgraphs)
    tflite.ModelAddDescription(builder, description)
    tflite.ModelAddBuffers(builder, model_buffers)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_case(case):
    from tflite_runtime.interpreter import Interpreter, OpResolverType  # the oracle venv only

    try:
        resolver = getattr(OpResolverType, case.get("resolver", "BUILTIN_REF"))
        interpreter = Interpreter(model_content=build_model(case),
                                  experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            spec = case["tensors"][detail["index"]]
            data = np.asarray(case["feeds"][str(detail["index"])], dtype=DTYPES[spec["type"]])
            interpreter.set_tensor(detail["index"], data)
        interpreter.invoke()
        outputs = [interpreter.get_tensor(d["index"]).tolist()
                   for d in interpreter.get_output_details()]
        return {"outputs": outputs}
    except (RuntimeError, ValueError) as error:
        return {"error": str(error)}


def main():
    cases = json.load(sys.stdin)
    json.dump([run_case(case) for case in cases], sys.stdout)


if __name__ == "__main__":
    main()
