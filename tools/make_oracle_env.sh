#!/usr/bin/env bash
# The TFLite oracle environment: tflite-runtime 2.14 (the interpreter with its reference
# kernels, OpResolverType.BUILTIN_REF) needs numpy < 2, so it lives in its own virtual
# environment, apart from .venv. tests/golden/test_oracle.py uses it when it exists and
# skips otherwise. Single-op models are built with the flatbuffer schema bindings of the
# `tflite` package (no TensorFlow needed).
#
#   bash tools/make_oracle_env.sh            # creates .venv-tflite beside .venv
#   ORACLE_VENV=/path bash tools/make_oracle_env.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ORACLE_VENV:-$root/.venv-tflite}"
python="${PYTHON:-python3.11}"    # tflite-runtime 2.14 has wheels for CPython 3.8..3.11
if ! command -v "$python" >/dev/null; then
    echo "make_oracle_env: $python not found (tflite-runtime 2.14 needs CPython 3.8..3.11)" >&2
    exit 1
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "tflite-runtime==2.14.0" "numpy<2" flatbuffers tflite
"$venv/bin/python" -c "import tflite_runtime, numpy; print('tflite-runtime', tflite_runtime.__version__, 'numpy', numpy.__version__)"
