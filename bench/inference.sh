#!/usr/bin/env bash
# Inference side by side with ONNX Runtime (`make bench-inference`, part of `make bench`, not
# CI): makes the benchmark venv if needed, then bench/inference.py with the arguments given
# (--models, --batches, --threads, --iterations, ...; --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/venv.sh
CNNC=${CNNC:-.build/release/cnnc} exec "$BENCH_PY" -W ignore bench/inference.py "$@"
