# cnnc — top-level build.
#
#   make            install what is missing, build cnnc, put it on PATH (install into
#                   /usr/local where PREFIX is writable, as root), train LeNet on
#                   Fashion-MNIST for one epoch with generated C, compile it to C, build the
#                   example and classify
#   make install    cnnc into PREFIX/bin, its bash, zsh and fish completions into PREFIX/share
#                   (PREFIX=/usr/local; DESTDIR for staging); make uninstall removes them
#   make test       every test: Swift unit/golden/CLI tests and the C runtime's tests
#   make bench      benchmarks (not part of CI): inference against ONNX Runtime, training
#                   against PyTorch; `make bench-inference` only the first
#   make fuzz       structure-aware fuzzing of cnnc (SECONDS=60 SEED=1 FAMILY=net|names|onnx|
#                   safetensors|npy, JSON=report.json); findings (crash, hang, C gcc refuses, the
#                   Swift and C readers disagreeing) go to build/fuzz/; prints per family the
#                   inputs, executions, outcome classes and the C runtime's blocks reached

SWIFT       ?= swift
CC          ?= cc
BUILD       := build
CONFIG      ?= release
CNNC        := .build/$(CONFIG)/cnnc
FASHION     := /usr/share/datasets/fashion-mnist

PREFIX      ?= /usr/local
BINDIR      := $(DESTDIR)$(PREFIX)/bin
BASHDIR     := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR      := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR     := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
INSTALLED   := $(BINDIR)/cnnc $(BASHDIR)/cnnc $(ZSHDIR)/_cnnc $(FISHDIR)/cnnc.fish

.PHONY: all deps cnnc on-path install uninstall demo bench bench-inference test-zoo test test-swift test-runtime test-onnx test-install \
        test-fuzz fuzz embed-runtime check-embed clean

all: on-path demo

deps:
	@bash scripts/install-deps.sh

cnnc: deps
	$(SWIFT) build -c $(CONFIG) --product cnnc

# `make` puts cnnc on PATH where it may write PREFIX (as root: /usr/local/bin), else says how.
on-path: cnnc
	@if [ -w "$(PREFIX)" ]; then \
	    $(MAKE) --no-print-directory install; \
	else \
	    echo "cnnc is $(CURDIR)/$(CNNC); 'sudo make install' puts it into $(PREFIX)/bin"; \
	fi

# The binary carries the C runtime (RuntimeSources.swift): one file, plus the completion
# scripts swift-argument-parser writes.
install: cnnc
	@mkdir -p .build/completions
	$(CNNC) --generate-completion-script bash > .build/completions/cnnc
	$(CNNC) --generate-completion-script zsh > .build/completions/_cnnc
	$(CNNC) --generate-completion-script fish > .build/completions/cnnc.fish
	install -d $(BINDIR) $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	install -m 755 $(CNNC) $(BINDIR)/cnnc
	install -m 644 .build/completions/cnnc $(BASHDIR)/cnnc
	install -m 644 .build/completions/_cnnc $(ZSHDIR)/_cnnc
	install -m 644 .build/completions/cnnc.fish $(FISHDIR)/cnnc.fish
	@echo "installed $$($(BINDIR)/cnnc --version) as $(BINDIR)/cnnc, with completions for bash, zsh and fish"

uninstall:
	rm -f $(INSTALLED)

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
# then training side by side with PyTorch (bench/training.sh: images/s, LeNet accuracy/epoch),
# then data-parallel scaling (bench/distributed.sh: 1 process x all cores vs one rank per core).
# BENCH_ARGS goes to bench/inference.sh, e.g. BENCH_ARGS="--models resnet20 --batches 1".
bench: bench-inference
	CNNC=$(CNNC) bash bench/training.sh
	CNNC=$(CNNC) bash bench/distributed.sh

bench-inference: cnnc
	CNNC=$(CNNC) bash bench/inference.sh $(BENCH_ARGS)

# The torchvision models of the ONNX issue through ONNX into cnnc (interpreter and generated C)
# against ONNX Runtime, 1e-4 of the largest logit at most; the benchmark venv (torch CPU,
# torchvision, onnxruntime). Minutes per model: not part of `make test`.
ZOO ?= alexnet vgg11_bn vgg16 resnet18 resnet50 googlenet inception_v3 densenet121 mobilenet_v2 \
       mobilenet_v3_small efficientnet_b0 squeezenet1_0 squeezenet1_1 shufflenet_v2_x0_5 mnasnet0_5 \
       regnet_x_400mf resnext50_32x4d
test-zoo: cnnc
	bash -c 'source bench/venv.sh && "$$BENCH_PY" -W ignore tools/onnx/torchvision_check.py --cnnc $(CNNC) --compiled $(ZOO)'

test: deps check-embed test-runtime test-swift test-onnx test-install test-fuzz

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

# make install and make uninstall into a temporary PREFIX, with the debug cnnc test-swift built.
test-install:
	bash scripts/test-install.sh

# Fuzzing (issue #14, tools/fuzz/fuzz.py): `make fuzz SECONDS=3600 FAMILY=onnx` for a long run;
# `make test` runs a short seeded one (a fixed number of inputs, so the same every time).
fuzz:
	$(SWIFT) build --product cnnc
	python3 tools/fuzz/fuzz.py --cnnc .build/debug/cnnc --seconds $(or $(SECONDS),60) --seed $(or $(SEED),1) $(if $(FAMILY),--family $(FAMILY)) $(if $(JSON),--json $(JSON))

test-fuzz:
	$(SWIFT) build --product cnnc
	python3 tools/fuzz/fuzz.py --cnnc .build/debug/cnnc --runs 500 --seed 1

embed-runtime:
	python3 tools/embed_runtime.py

check-embed:
	python3 tools/embed_runtime.py --check

clean:
	rm -rf .build $(BUILD)
	$(MAKE) -C Runtime clean
