#!/usr/bin/env python3
"""`cnnc visualize saliency` against PyTorch's input gradient.

Builds a small CNN in PyTorch with a fixed seed (conv, batch norm with non-trivial running
statistics, ReLU, max pooling, a strided conv, average pooling, dense, dropout, a final
softmax), exports it to ONNX, and computes d score_k / d input in inference mode (eval():
running statistics, dropout off), with the score taken before the final softmax (Simonyan et
al. 2014), for a batch of two images with one class each. Then runs

    cnnc visualize saliency model.onnx --input x.npy --class 3,1 --save-gradient g.npy -o s.png

and compares g.npy with PyTorch's gradient under the named tolerance `gradient`:
|cnnc - torch| <= 1e-5 * max|torch| + 1e-3 * |torch| elementwise (float32 sums in a
different order on both sides; the gradient's scale sets the absolute part). Prints the
worst element (n,c,h,w), both values and the error; exit status 1 on failure.

    python3 tools/onnx/saliency_check.py [--cnnc .build/debug/cnnc]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

ABSOLUTE, RELATIVE = 1e-5, 1e-3  # the `gradient` tolerance, see above
CLASSES = [3, 1]


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(12 * 2 * 2, 24), nn.Dropout(0.5), nn.ReLU(), nn.Linear(24, 5))
        self.softmax = nn.Softmax(dim=1)

    def scores(self, x):
        return self.classifier(self.features(x))

    def forward(self, x):
        return self.softmax(self.scores(x))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/debug/cnnc")
    args = parser.parse_args()
    torch.manual_seed(7)
    model = SmallNet()
    bn = model.features[1]
    with torch.no_grad():  # running statistics that differ from the batch's
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.1)
    model.eval()
    x = torch.rand(2, 3, 16, 16)
    x.requires_grad_(True)
    scores = model.scores(x)
    scores[torch.arange(2), torch.tensor(CLASSES)].sum().backward()
    expected = x.grad.numpy()

    with tempfile.TemporaryDirectory(prefix="cnnc-saliency-") as d:
        onnx_path = os.path.join(d, "small.onnx")
        # the TorchScript exporter, without constant folding so batch norm stays a node of its own
        torch.onnx.export(model, (x.detach(),), onnx_path, input_names=["image"], output_names=["prob"], opset_version=14,
                          dynamo=False, do_constant_folding=False)
        np.save(os.path.join(d, "x.npy"), x.detach().numpy())
        r = subprocess.run([os.path.abspath(args.cnnc), "visualize", "saliency", onnx_path, "--input", "x.npy", "--class",
                            ",".join(map(str, CLASSES)), "--save-gradient", "g.npy", "-o", "s.png"],
                           cwd=d, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(f"saliency-check: cnnc failed:\n{r.stdout}{r.stderr}")
            return 1
        got = np.load(os.path.join(d, "g.npy"))
        if not os.path.getsize(os.path.join(d, "s.png")) > 0:
            print("saliency-check: no picture written")
            return 1

    if got.shape != expected.shape:
        print(f"saliency-check: gradient of shape {got.shape}, PyTorch's is {expected.shape}")
        return 1
    scale = float(np.abs(expected).max())
    bound = ABSOLUTE * scale + RELATIVE * np.abs(expected)
    excess = np.abs(got - expected) - bound
    worst = np.unravel_index(int(np.argmax(excess)), expected.shape)
    error = float(np.abs(got - expected).max())
    verdict = "PASS" if excess.max() <= 0 else "FAIL"
    print(f"saliency-check: d score/d input of a PyTorch CNN (ONNX, batch 2, classes {CLASSES}): max |error| {error:.3g} "
          f"(max |gradient| {scale:.3g}); worst {tuple(int(i) for i in worst)}: cnnc {got[worst]:.8g}, torch "
          f"{expected[worst]:.8g}; tolerance gradient ({ABSOLUTE:g} * max + {RELATIVE:g} * |torch|): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
