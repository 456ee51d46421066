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
# Three small models of the torchvision zoo through ONNX, interpreter and generated C, against
# ONNX Runtime (`make test-zoo` runs all 17). torchvision without its dependencies: its wheel
# is a CUDA build whose requirements would replace the CPU torch.
if ! "$TORCH_VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchvision') is None)" 2>/dev/null; then
    "$TORCH_VENV/bin/pip" install --quiet pillow==13.0.0
    "$TORCH_VENV/bin/pip" install --quiet --no-deps -r bench/requirements-nodeps.txt
fi
"$TORCH_VENV/bin/python" -W ignore tools/onnx/torchvision_check.py --cnnc "$CNNC" --compiled squeezenet1_1 mobilenet_v3_small shufflenet_v2_x0_5
