#!/usr/bin/env python3
"""Round trips against the interpreter: `.net -> ONNX -> ONNX Runtime` and `.net -> ONNX -> cnnc`.

For each model: `cnnc export` (seeded weights), onnx.checker, ONNX Runtime on a seeded input,
`cnnc run --interpret` on the .net and on the exported .onnx; all three must agree (1e-4
relative to the output's scale). Also runs `cnnc check` (generated C vs the interpreter) on
the imported fixtures. Prints the max difference per model and `N passed, M failed`.

    python3 tools/onnx/roundtrip.py [--cnnc .build/release/cnnc]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

MODELS = ["Examples/lenet/model.net", "Examples/resnet20/model.net", "Examples/densenet_small/model.net",
          "Examples/inception/model.net", "Examples/activations/model.net", "Examples/vgg11_bn/model.net",
          "Tests/ONNXTests/Fixtures/newops.net", "Tests/ONNXTests/Fixtures/decoder.net"]
CHECKS = ["Tests/ONNXTests/Fixtures/resnet.onnx", "Tests/ONNXTests/Fixtures/lenet.onnx"]


def cnnc(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError((r.stderr or r.stdout).strip())
    return r.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/release/cnnc")
    args = parser.parse_args()
    binary = os.path.abspath(args.cnnc)
    passed = failed = 0
    rng = np.random.default_rng(3)
    for path in MODELS:
        if not os.path.exists(path):
            continue
        name = os.path.basename(os.path.dirname(path)) if path.endswith("model.net") else os.path.basename(path)
        with tempfile.TemporaryDirectory(prefix="cnnc-rt-") as d:
            try:
                exported = os.path.join(d, "model.onnx")
                cnnc(binary, "export", path, "-o", exported, "--seed", "5")
                model = onnx.load(exported)
                onnx.checker.check_model(model, full_check=True)
                session = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
                feed, files = {}, []
                for i, inp in enumerate(session.get_inputs()):
                    shape = [2] + [int(s) for s in inp.shape[1:]]
                    x = rng.standard_normal(shape).astype(np.float32)
                    feed[inp.name] = x
                    files.append(os.path.join(d, f"in{i}.npy"))
                    np.save(files[-1], x)
                runtime = session.run(None, feed)
                outs = [os.path.join(d, f"out{i}.npy") for i in range(len(runtime))]
                ins = sum((["--input", f] for f in files), [])
                cnnc(binary, "run", path, *ins, *sum((["--output", o] for o in outs), []), "--interpret", "--seed", "5")
                reference = [np.load(o) for o in outs]
                cnnc(binary, "run", exported, *ins, *sum((["--output", o] for o in outs), []), "--interpret")
                reimported = [np.load(o) for o in outs]
                worst_rt = max(float(np.max(np.abs(a - b))) for a, b in zip(runtime, reference))
                worst_re = max(float(np.max(np.abs(a - b))) for a, b in zip(reimported, reference))
                scale = max(1.0, max(float(np.max(np.abs(r))) for r in reference))
                ok = worst_rt <= 1e-4 * scale and worst_re <= 1e-4 * scale
                print(f"{'PASS' if ok else 'FAIL'} {name}: onnxruntime vs interpreter {worst_rt:.3g}, "
                      f"re-imported vs interpreter {worst_re:.3g}")
                passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
            except Exception as e:  # report and go on
                print(f"FAIL {name}: {' '.join(str(e).split())[:300]}")
                failed += 1
    for path in CHECKS:
        try:
            report = cnnc(binary, "check", path)
            print(f"PASS check {os.path.basename(path)}: {report.strip().splitlines()[-2]}")
            passed += 1
        except Exception as e:
            print(f"FAIL check {os.path.basename(path)}: {' '.join(str(e).split())[:300]}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
