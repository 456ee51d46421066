# cnnc — top-level build.
#
#   make          install what is missing, build cnnc, compile the LeNet example to C,
#                 build it with the runtime and run it on Fashion-MNIST test images
#   make test     every test: Swift unit/golden/CLI tests and the C runtime's tests
#   make bench    benchmarks (not part of CI)

SWIFT       ?= swift
CC          ?= cc
BUILD       := build
CNNC        := .build/release/cnnc
FASHION     := /usr/share/datasets/fashion-mnist

.PHONY: all deps cnnc demo test test-swift test-runtime test-onnx embed-runtime check-embed clean

all: demo

deps:
	@bash scripts/install-deps.sh

cnnc: deps
	$(SWIFT) build -c release --product cnnc

# The main job: .net -> C -> executable -> predictions.
demo: cnnc
	@mkdir -p $(BUILD)/lenet
	$(CNNC) Examples/lenet/model.net -o $(BUILD)/lenet/lenet.c --batch 16
	$(CC) -std=c11 -O3 -march=native -fopenmp -I$(BUILD)/lenet \
	    Examples/lenet/main.c $(BUILD)/lenet/lenet.c $(BUILD)/lenet/cnnc_runtime.c -lz -lm -o $(BUILD)/lenet/lenet
	$(BUILD)/lenet/lenet --idx $(FASHION)/t10k-images-idx3-ubyte.gz --labels $(FASHION)/t10k-labels-idx1-ubyte.gz --count 16

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
