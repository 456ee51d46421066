# cnnc — top-level build.
#
#   make          install what is missing, build cnnc, train LeNet on Fashion-MNIST for one
#                 epoch with generated C, compile it to C, build the example and classify
#   make test     every test: Swift unit/golden/CLI tests and the C runtime's tests
#   make bench    benchmarks (not part of CI)

SWIFT       ?= swift
CC          ?= cc
BUILD       := build
CNNC        := .build/release/cnnc
FASHION     := /usr/share/datasets/fashion-mnist

.PHONY: all deps cnnc demo bench test test-swift test-runtime test-onnx embed-runtime check-embed clean

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

# Benchmarks (not part of CI): generated code at batch 1 and 32, with and without Winograd;
# then training side by side with PyTorch (bench/training.sh: images/s, LeNet accuracy/epoch).
bench: cnnc
	@for m in lenet resnet20 vgg11_bn; do for b in 1 32; do \
	    $(CNNC) bench Examples/$$m/model.net --batch $$b --iterations 20; \
	    $(CNNC) bench Examples/$$m/model.net --batch $$b --iterations 20 --no-winograd; \
	done; done
	CNNC=$(CNNC) bash bench/training.sh

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
