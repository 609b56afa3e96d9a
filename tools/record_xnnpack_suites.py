"""Record the XNNPACK delegate's outputs of tests/golden/oracle.py's single-op suites.

Runs with TensorFlow's interpreter (.venv-tf with the ``tflite`` package; the delegate is
applied by ``OpResolverType.BUILTIN``)::

    .venv-tf/bin/python tools/record_xnnpack_suites.py

Writes tests/golden/data/xnnpack_oracle.json.gz: the interpreter's name and version and, for
each suite of :data:`SUITES`, one ``{"outputs": [...], "delegated": bool}`` per case of the
suite (the cases are the suites' own, as tests/golden/oracle.py makes them).
tests/golden/test_xnnpack.py compares golden's ``rounding="fp32"`` with it.
"""

import gzip
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from record_model_oracle import INTERPRETER, Interpreter, OpResolverType  # noqa: E402
from tflite_oracle import build_model  # noqa: E402

from tests.golden.oracle import SUITES as ORACLE_SUITES  # noqa: E402

RECORDING = ROOT / "tests" / "golden" / "data" / "xnnpack_oracle.json.gz"
#: the suites whose ops the XNNPACK delegate takes
SUITES = ("DEPTHWISE_CONV_2D", "CONV_2D grouped", "MEAN", "MEAN keep_dims", "ADD", "MUL")


def run(case):
    """(output, whether a DELEGATE node ran) of one case on the default delegates."""
    interpreter = Interpreter(model_content=build_model(case),
                              experimental_op_resolver_type=OpResolverType.BUILTIN)
    interpreter.allocate_tensors()
    delegated = any(node["op_name"] == "DELEGATE" for node in interpreter._get_ops_details())
    for detail in interpreter.get_input_details():       # inputs are named t<tensor index>
        feed = case["feeds"][detail["name"][1:]]
        interpreter.set_tensor(detail["index"], np.asarray(feed, dtype=detail["dtype"]))
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return output.tolist(), delegated


def main():
    records = {}
    for name in SUITES:
        make, _ = ORACLE_SUITES[name]
        results = [run(case) for case in make()]
        records[name] = [{"outputs": y, "delegated": d} for y, d in results]
        print(f"{name}: {len(results)} cases, {sum(d for _, d in results)} delegated")
    with gzip.GzipFile(RECORDING, "wb", mtime=0) as file:      # reproducible bytes
        file.write(json.dumps({"interpreter": INTERPRETER, "suites": records},
                              separators=(",", ":")).encode())
    print(f"{INTERPRETER}: wrote {RECORDING} ({RECORDING.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
