#!/usr/bin/env bash
# The Python-based ONNX tests: a virtual environment with onnx, onnxruntime and numpy, then
# ONNX's conformance cases and the round trips through the built cnnc (release); and in a
# second one with PyTorch, `cnnc visualize saliency` against PyTorch's input gradient.
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
# `cnnc visualize saliency` on an ONNX model exported from PyTorch against PyTorch's input
# gradient. TORCH_VENV may name a ready venv with torch; else .venv-torch gets PyTorch's CPU
# build (tools/onnx/requirements-torch.txt: about 190 MB, no CUDA libraries).
TORCH_VENV=${TORCH_VENV:-.venv-torch}
if ! "$TORCH_VENV/bin/python" -c "import torch, onnx" 2>/dev/null; then
    python3 -m venv "$TORCH_VENV"
    "$TORCH_VENV/bin/pip" install --quiet -r tools/onnx/requirements.txt
    "$TORCH_VENV/bin/pip" install --quiet -r tools/onnx/requirements-torch.txt
fi
"$TORCH_VENV/bin/python" -W ignore tools/onnx/saliency_check.py --cnnc "$CNNC"
# `cnnc train` on a PyTorch-exported ONNX model follows PyTorch's SGD in float64 for 5 steps
# from the same initializers (conv, batch norm, depthwise, residual, dense).
"$TORCH_VENV/bin/python" -W ignore tools/onnx/train_trajectory.py --cnnc "$CNNC"
