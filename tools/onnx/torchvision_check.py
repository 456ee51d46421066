#!/usr/bin/env python3
"""torchvision CNNs through ONNX into cnnc, against ONNX Runtime.

For each named model: build it with `weights=None` under a fixed seed (eval mode), give its
batch-norm layers non-trivial running statistics, export it with torch.onnx.export (opset
17), run ONNX Runtime and `cnnc run model.onnx --interpret` (the Double interpreter; with
--compiled, the generated C too) on one seeded 224x224 image, and print a row per model:
whether cnnc imports it, the largest absolute difference of the logits and the largest
|logit|. A model that does not import shows the first line of cnnc's message.

A row fails (FAIL, exit status 1) when a model does not import or a difference exceeds 1e-4 of
the largest |logit|. `make test-zoo` runs all 17 models of the ONNX issue, compiled too; not
part of `make test` (it takes minutes per model). It needs a venv with torch, onnx,
onnxruntime and torchvision; torchvision installs with `pip install --no-deps torchvision`
next to the CPU torch, which is why its `_meta_registrations` (registrations for the torch
it was built against) is replaced by an empty module before the import.

    python3 tools/onnx/torchvision_check.py [--cnnc .build/release/cnnc] [--compiled] [--keep DIR] mobilenet_v2 resnet18 ...

--keep DIR keeps the exported models (DIR/NAME.onnx, DIR/NAME.x.npy) and reuses them on the
next run. The time columns are the wall-clock seconds of each `cnnc run` (import, passes, and
for the generated C the C compiler and one forward pass).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import types

sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402,F401
from torchvision import models  # noqa: E402


def export(name, path):
    torch.manual_seed(0)
    model = getattr(models, name)(weights=None).eval()
    with torch.no_grad():  # running statistics that differ from the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(model, (x,), path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"])
    return x.numpy()


def run_cnnc(cnnc, model, x_path, y_path, interpret):
    command = [cnnc, "run", model, "--input", x_path, "--output", y_path] + (["--interpret"] if interpret else [])
    start = time.monotonic()
    r = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip(), seconds
    return np.load(y_path), "", seconds


# The largest difference from ONNX Runtime allowed, relative to the largest |logit|.
TOLERANCE = 1e-4


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/release/cnnc")
    parser.add_argument("--compiled", action="store_true", help="also run the generated C")
    parser.add_argument("--keep", metavar="DIR", help="keep (and reuse) the exported models in DIR")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    cnnc = os.path.abspath(args.cnnc)
    print("| model | imports | interpreter vs ORT: max abs error / max abs logit | time |"
          + (" generated C vs ORT | time |" if args.compiled else ""))
    print("|---|---|---|---|" + ("---|---|" if args.compiled else ""))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.abspath(args.keep) if args.keep else tmp
        os.makedirs(folder, exist_ok=True)
        for name in args.models:
            path = os.path.join(folder, f"{name}.onnx")
            x_path, y_path = os.path.join(folder, f"{name}.x.npy"), os.path.join(tmp, "y.npy")
            if args.keep and os.path.exists(path) and os.path.exists(x_path):
                x = np.load(x_path)
            else:
                x = export(name, path)
                np.save(x_path, x)
            expected = onnxruntime.InferenceSession(path).run(None, {"input": x})[0]
            scale = float(np.abs(expected).max())
            cells = []
            for interpret in [True] + ([False] if args.compiled else []):
                y, message, seconds = run_cnnc(cnnc, path, x_path, y_path, interpret)
                if y is None:
                    cells.append(None)
                    failure = message.splitlines()[0] if message else "failed"
                    if len(message.splitlines()) > 1:
                        failure += " " + "; ".join(line.strip() for line in message.splitlines()[1:4])
                    break
                error = float(np.abs(y - expected).max())
                mark = ""
                if not error <= TOLERANCE * scale:
                    failed, mark = True, " FAIL"
                cells.append(f"{error:.2e} / {scale:.3g} ({error / scale:.1e}){mark} | {seconds:.1f} s")
            if cells[0] is None:
                failed = True
                print(f"| {name} | no: {failure} |", flush=True)
            else:
                print(f"| {name} | yes | " + " | ".join(c or "failed" for c in cells) + " |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
