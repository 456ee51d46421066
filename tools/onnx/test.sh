#!/usr/bin/env bash
# The Python-based ONNX tests: a virtual environment with onnx, onnxruntime and numpy, then
# ONNX's conformance cases and the round trips through the built cnnc (release).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-onnx
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r tools/onnx/requirements.txt
fi
CNNC=${CNNC:-.build/release/cnnc}
# Every conformance case runs through the interpreter and through the generated C.
"$VENV/bin/python" -W ignore tools/onnx/conformance.py --cnnc "$CNNC"
"$VENV/bin/python" -W ignore tools/onnx/roundtrip.py --cnnc "$CNNC"
