#!/usr/bin/env bash
# The TensorFlow Lite converter environment: tensorflow-cpu 2.14 (the converter with its
# full-integer post-training quantization, and its interpreter with the XNNPACK delegate that
# tools/record_model_oracle.py records), tflite (the flatbuffer reader the recorder uses) and
# scikit-learn (the digits data), apart from
# .venv — TensorFlow is never a runtime dependency of qmac. tools/make_models.py runs in it
# and writes the committed models of tests/models/.
#
#   bash tools/make_converter_env.sh            # creates .venv-tf beside .venv
#   CONVERTER_VENV=/path bash tools/make_converter_env.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${CONVERTER_VENV:-$root/.venv-tf}"
python="${PYTHON:-python3.11}"    # tensorflow-cpu 2.14 has wheels for CPython 3.9..3.11
if ! command -v "$python" >/dev/null; then
    echo "make_converter_env: $python not found (tensorflow-cpu 2.14 needs CPython 3.9..3.11)" >&2
    exit 1
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "tensorflow-cpu==2.14.1" "numpy<2" scikit-learn tflite
"$venv/bin/python" -c "import tensorflow as tf, numpy; print('tensorflow', tf.__version__, 'numpy', numpy.__version__)"
