# cnnc — top-level build.
#
#   make          install what is missing, build cnnc, train LeNet on Fashion-MNIST for one
#                 epoch with generated C, compile it to C, build the example and classify
#   make test     every test: Swift unit/golden/CLI tests and the C runtime's tests
#   make bench    benchmarks (not part of CI): inference against ONNX Runtime, training against
#                 PyTorch; `make bench-inference` only the first

SWIFT       ?= swift
CC          ?= cc
BUILD       := build
CNNC        := .build/release/cnnc
FASHION     := /usr/share/datasets/fashion-mnist

.PHONY: all deps cnnc demo bench bench-inference test test-swift test-runtime test-onnx embed-runtime check-embed clean

all: demo

deps:
	@bash scripts/install-deps.sh

cnnc: deps
	$(SWIFT) build -c release --product cnnc

# The main job: train LeNet on Fashion-MNIST for one epoch with generated C (the PyTorch
# recipe: batch 64, lr 0.01, momentum 0.9, weight decay 5e-4), compile the trained network
# to C, build the example program against it and classify test images.
demo: cnnc
	@mkdir -p $(BUILD)/lenet
	$(CNNC) train Examples/lenet/model.net --data $(FASHION) --epochs 1 --batch 64 --lr 0.01 \
	    --momentum 0.9 --weight-decay 5e-4 --save $(BUILD)/lenet/lenet.safetensors
	$(CNNC) Examples/lenet/model.net -o $(BUILD)/lenet/lenet.c --batch 16
	$(CC) -std=c11 -O3 -march=native -fopenmp -I$(BUILD)/lenet \
	    Examples/lenet/main.c $(BUILD)/lenet/lenet.c $(BUILD)/lenet/cnnc_runtime.c -lz -lm -o $(BUILD)/lenet/lenet
	$(BUILD)/lenet/lenet --weights $(BUILD)/lenet/lenet.safetensors \
	    --idx $(FASHION)/t10k-images-idx3-ubyte.gz --labels $(FASHION)/t10k-labels-idx1-ubyte.gz --count 16

# Benchmarks (not part of CI), with ONNX Runtime and PyTorch (CPU) in a venv, .venv-bench
# (bench/venv.sh): inference side by side with ONNX Runtime on the same ONNX files
# (bench/inference.sh: one table of medians and cnnc/ORT ratios, bench/results/latest.json),
# then training side by side with PyTorch (bench/training.sh: images/s, LeNet accuracy/epoch).
# BENCH_ARGS goes to bench/inference.sh, e.g. BENCH_ARGS="--models resnet20 --batches 1".
bench: bench-inference
	CNNC=$(CNNC) bash bench/training.sh

bench-inference: cnnc
	CNNC=$(CNNC) bash bench/inference.sh $(BENCH_ARGS)

test: deps check-embed test-runtime test-swift test-onnx

test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# ONNX's conformance cases and the .net -> ONNX round trips, in a venv (.venv-onnx) with
# onnx, onnxruntime and numpy from PyPI; uses the cnnc that test-swift built.
test-onnx:
	$(SWIFT) build --product cnnc
	CNNC=.build/debug/cnnc bash tools/onnx/test.sh

test-runtime:
	$(MAKE) -C Runtime test

embed-runtime:
	python3 tools/embed_runtime.py

check-embed:
	python3 tools/embed_runtime.py --check

clean:
	rm -rf .build $(BUILD)
	$(MAKE) -C Runtime clean
