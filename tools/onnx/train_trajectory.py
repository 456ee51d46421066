#!/usr/bin/env python3
"""`cnnc train` on a PyTorch-exported ONNX model against PyTorch's SGD in float64.

Builds a small CNN in PyTorch with a fixed seed: a convolution with batch norm (non-trivial
running statistics and affine parameters), a depthwise and a pointwise convolution around a
residual add, global average pooling and a dense layer. Exports it to ONNX (TorchScript
exporter, no constant folding, so batch norm stays a node of its own), then takes 5 SGD steps
(batches of 8 in order, lr 0.05, momentum 0.9, weight decay 5e-4, batch norm in training mode)
twice from the same weights:

  - PyTorch on a float64 copy of the model;
  - `cnnc train model.onnx --data x.npy --labels y.npy --batch 8 --epochs 1 --no-shuffle
    ... --save ckpt.safetensors`, which starts from the model's initializers.

and compares every tensor of the checkpoint (weights, biases, batch-norm running statistics)
with PyTorch's after the 5 steps: |cnnc - torch| <= 1e-4 * max|torch of that tensor| + 1e-6
(float32 against float64 over 5 steps). Also checks that the weights moved, so a run that
ignored the updates cannot pass. Prints the worst tensor; exit status 1 on failure.

    python3 tools/onnx/train_trajectory.py [--cnnc .build/release/cnnc]
"""
import argparse
import copy
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

STEPS, BATCH, LR, MOMENTUM, DECAY = 5, 8, 0.05, 0.9, 5e-4
TOLERANCE = 1e-4


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        a = torch.relu(self.bn1(self.conv1(x)))
        b = self.pw(torch.relu(self.dw(a))) + a
        return self.fc(torch.flatten(self.pool(torch.relu(b)), 1))


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=np.float32).reshape(info["shape"])
    return tensors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/release/cnnc")
    args = parser.parse_args()
    torch.manual_seed(11)
    model = Block()
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.2, 0.2)
        model.bn1.running_var.uniform_(0.5, 1.5)
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.1, 0.1)
    n = STEPS * BATCH
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, 3, 8, 8, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)

    # PyTorch in float64 from the same weights.
    reference = copy.deepcopy(model).double().train()
    opt = torch.optim.SGD(reference.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    losses = []
    for step in range(STEPS):
        xb, yb = x[step * BATCH:(step + 1) * BATCH].double(), y[step * BATCH:(step + 1) * BATCH]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(reference(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    expected = {k: v.detach().numpy() for k, v in reference.state_dict().items() if v.dtype != torch.int64}
    start = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items() if v.dtype != torch.int64}

    with tempfile.TemporaryDirectory(prefix="cnnc-trajectory-") as d:
        onnx_path = os.path.join(d, "block.onnx")
        model.eval()
        torch.onnx.export(model, (x[:1],), onnx_path, input_names=["image"], output_names=["logits"], opset_version=14,
                          dynamo=False, do_constant_folding=False)
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy())
        command = [os.path.abspath(args.cnnc), "train", onnx_path, "--data", "x.npy", "--labels", "y.npy",
                   "--test-data", "x.npy", "--test-labels", "y.npy", "--batch", str(BATCH), "--epochs", "1",
                   "--lr", str(LR), "--momentum", str(MOMENTUM), "--weight-decay", str(DECAY), "--no-shuffle",
                   "--save", "ckpt.safetensors"]
        r = subprocess.run(command, cwd=d, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(f"train-trajectory: cnnc failed:\n{r.stdout}{r.stderr}")
            return 1
        got = read_safetensors(os.path.join(d, "ckpt.safetensors"))

    worst, failed, moved = (0.0, ""), [], 0
    for name, want in expected.items():
        if name not in got:
            failed.append(f"{name}: not in cnnc's checkpoint (it has {sorted(k for k in got if not k.endswith('.momentum'))})")
            continue
        have = got[name].astype(np.float64).reshape(want.shape)
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        error = float(np.max(np.abs(have - want))) if want.size else 0.0
        if not error <= TOLERANCE * scale + 1e-6:
            failed.append(f"{name}: max |cnnc - torch| {error:.3g} over {TOLERANCE} * max|torch| {scale:.3g}")
        if scale > 0 and error / scale > worst[0]:
            worst = (error / scale, name)
        if float(np.max(np.abs(want - start[name]))) > 1e-3 * max(scale, 1e-6):
            moved += 1
    print(f"train-trajectory: {STEPS} SGD steps, PyTorch float64 losses {', '.join(f'{v:.5f}' for v in losses)}; "
          f"{len(expected)} tensors, {moved} moved; worst {worst[1]} at {worst[0]:.2e} of its largest value")
    if moved < len(expected) // 2:
        failed.append(f"only {moved} of {len(expected)} tensors moved: the steps did not train")
    for line in failed:
        print(f"train-trajectory: FAIL {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
