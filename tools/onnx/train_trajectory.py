#!/usr/bin/env python3
"""`cnnc train` on PyTorch-exported ONNX models against PyTorch's SGD in float64.

Builds two small CNNs in PyTorch with a fixed seed. `Block`: a convolution with batch norm
(non-trivial running statistics and affine parameters), a depthwise and a pointwise
convolution around a residual add, global average pooling and a dense layer. `Decoder`:
transposed convolutions (stride 2 with output_padding; grouped and dilated without bias),
reflect and replicate padding of computed values, and bilinear upsampling with and without
align_corners, then a convolution, pooling and a dense layer. Exports each to ONNX (TorchScript
exporter, no constant folding, so batch norm stays a node of its own); first compares
`cnnc run` (interpreter and generated C) on the export with ONNX Runtime (when installed) and
PyTorch, then takes 5 SGD steps
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


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(6, 6, 3, padding=2, dilation=2, groups=3, bias=False)
        self.conv2 = nn.Conv2d(6, 4, 3, stride=2)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        a = torch.relu(self.conv1(x))                                             # 8x4x4
        b = torch.relu(self.up1(a))                                               # 6x8x8
        c = self.up2(nn.functional.pad(b, (1, 1, 1, 1), mode="reflect"))          # 6x10x10
        d = nn.functional.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)   # 6x20x20
        e = nn.functional.pad(d, (1, 0, 0, 1), mode="replicate")                  # 6x21x21
        f = torch.relu(self.conv2(e))                                             # 4x10x10
        g = nn.functional.interpolate(f, scale_factor=2, mode="bilinear", align_corners=True)    # 4x20x20
        pooled = torch.cat([nn.functional.adaptive_avg_pool2d(g, 1), nn.functional.adaptive_max_pool2d(g, 1)], 1)
        return self.fc(torch.flatten(pooled, 1))


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


def forward_check(cnnc, model, onnx_path, x, d):
    """`cnnc run` (interpreter and C) on the export against ONNX Runtime and PyTorch; returns
    failure lines."""
    np.save(os.path.join(d, "probe.npy"), x.numpy())
    with torch.no_grad():
        references = {"PyTorch": model(x).numpy()}
    try:
        import onnxruntime
        session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        references["ONNX Runtime"] = session.run(None, {"image": x.numpy()})[0]
    except ImportError:
        pass
    failed, report = [], []
    for interpret in [True, False]:
        out = os.path.join(d, f"probe_out_{interpret}.npy")
        command = [cnnc, "run", onnx_path, "--input", "probe.npy", "--output", out]
        r = subprocess.run(command + (["--interpret"] if interpret else []), cwd=d, capture_output=True, text=True,
                           timeout=600)
        label = "interpreter" if interpret else "C"
        if r.returncode != 0:
            failed.append(f"cnnc run ({label}) failed: {r.stdout}{r.stderr}")
            continue
        got = np.load(out)
        for name, want in references.items():
            error = float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-12)
            report.append(f"{label} vs {name} {error:.2e}")
            if error > TOLERANCE:
                failed.append(f"{label} vs {name}: {error:.3g} of the largest logit")
    print(f"train-trajectory: forward of the export, max error over the largest logit: {'; '.join(report)}")
    return failed


def trajectory(cnnc, label, model, x, y):
    """5 SGD steps of PyTorch float64 and of `cnnc train` on the export; returns failure lines."""
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

    failed = []
    with tempfile.TemporaryDirectory(prefix="cnnc-trajectory-") as d:
        onnx_path = os.path.join(d, f"{label}.onnx")
        model.eval()
        torch.onnx.export(model, (x[:1],), onnx_path, input_names=["image"], output_names=["logits"], opset_version=14,
                          dynamo=False, do_constant_folding=False)
        failed += forward_check(cnnc, model, onnx_path, x[:1], d)
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy())
        command = [cnnc, "train", onnx_path, "--data", "x.npy", "--labels", "y.npy",
                   "--test-data", "x.npy", "--test-labels", "y.npy", "--batch", str(BATCH), "--epochs", "1",
                   "--lr", str(LR), "--momentum", str(MOMENTUM), "--weight-decay", str(DECAY), "--no-shuffle",
                   "--save", "ckpt.safetensors"]
        r = subprocess.run(command, cwd=d, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            return failed + [f"cnnc train failed:\n{r.stdout}{r.stderr}"]
        got = read_safetensors(os.path.join(d, "ckpt.safetensors"))

    worst, moved = (0.0, ""), 0
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
    print(f"train-trajectory: {label}: {STEPS} SGD steps, PyTorch float64 losses {', '.join(f'{v:.5f}' for v in losses)}; "
          f"{len(expected)} tensors, {moved} moved; worst {worst[1]} at {worst[0]:.2e} of its largest value")
    if moved < len(expected) // 2:
        failed.append(f"only {moved} of {len(expected)} tensors moved: the steps did not train")
    return [f"{label}: {line}" for line in failed]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/release/cnnc")
    args = parser.parse_args()
    cnnc = os.path.abspath(args.cnnc)
    torch.manual_seed(11)
    block = Block()
    with torch.no_grad():
        block.bn1.running_mean.uniform_(-0.2, 0.2)
        block.bn1.running_var.uniform_(0.5, 1.5)
        block.bn1.weight.uniform_(0.5, 1.5)
        block.bn1.bias.uniform_(-0.1, 0.1)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(STEPS * BATCH, 3, 8, 8, generator=g)
    y = torch.randint(0, 4, (STEPS * BATCH,), generator=g)
    failed = trajectory(cnnc, "block", block, x, y)
    torch.manual_seed(12)
    failed += trajectory(cnnc, "decoder", Decoder(), x, y)
    for line in failed:
        print(f"train-trajectory: FAIL {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
