#!/usr/bin/env bash
# Sourced by the benchmark scripts: makes the benchmark virtual environment once
# (BENCH_VENV, default .venv-bench: bench/requirements*.txt) and sets BENCH_PY to its python.
BENCH_VENV=${BENCH_VENV:-.venv-bench}
BENCH_PY="$BENCH_VENV/bin/python"
if ! "$BENCH_PY" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('numpy', 'onnx', 'onnxruntime', 'torch', 'torchvision', 'PIL')))" 2>/dev/null; then
    echo "making $BENCH_VENV (onnxruntime, onnx, numpy, torch CPU, torchvision)" >&2
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install --quiet -r bench/requirements.txt
    "$BENCH_VENV/bin/pip" install --quiet --no-deps -r bench/requirements-nodeps.txt
fi
