#!/usr/bin/env python3
"""ONNX's own operator conformance cases (onnx.backend.test node cases) through cnnc.

For every node case whose operators cnnc imports, the model is written with every input but
the data inputs turned into initializers (cnnc compiles weights and shapes in; the data inputs
are the first one, and all float inputs of Add/Sum/Concat/Mul), then run with
`cnnc run --interpret` and `cnnc run` (generated C) and compared with the expected outputs
(rtol/atol 1e-4 for the interpreter, 1e-3 for the C). Prints per-op pass counts, the failing
cases with reasons, and `N passed, M failed` (a case passes when both runs match; a case cnnc
refuses with an error message, because it is outside what cnnc supports, counts as skipped
with that message; wrong numbers and crashes are failures).

    python3 tools/onnx/conformance.py [--cnnc .build/release/cnnc] [--no-c] [--verbose]
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

OPS = ["Conv", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus",
       "HardSigmoid", "HardSwish", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LRN",
       "Gemm", "MatMul", "Flatten", "Reshape", "Add", "Mul", "Sum", "Concat", "Softmax", "LogSoftmax", "Dropout",
       "Identity", "Pad", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "Slice"]
DATA_OPS = {"Add", "Sum", "Concat", "Mul"}


def prepare(case, directory):
    """Writes model.onnx (weights as initializers) and the data inputs; returns (inputs, outputs)."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, outputs = case.data_sets[0]
    op = model.graph.node[0].op_type
    keep, files = [], []
    for i, (info, value) in enumerate(zip(list(model.graph.input), inputs)):
        is_float = value.dtype == np.float32
        data = is_float and (i == 0 or (op in DATA_OPS and value.ndim >= 2))
        if data:
            keep.append(info)
            path = os.path.join(directory, f"in{i}.npy")
            np.save(path, value)
            files.append(path)
        else:
            model.graph.initializer.append(numpy_helper.from_array(value, info.name))
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.save(model, os.path.join(directory, "model.onnx"))
    return files, outputs


def run(cnnc, directory, files, count, interpret):
    outs = [os.path.join(directory, f"out{i}_{interpret}.npy") for i in range(count)]
    args = [cnnc, "run", os.path.join(directory, "model.onnx")]
    for f in files:
        args += ["--input", f]
    for o in outs:
        args += ["--output", o]
    if interpret:
        args.append("--interpret")
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip()
    return [np.load(o) for o in outs], ""


def compare(actual, expected, tol):
    for a, e in zip(actual, expected):
        e = np.asarray(e, dtype=np.float32)
        if a.shape != e.shape:
            return f"shape {a.shape}, expected {e.shape}"
        if not np.allclose(a, e, rtol=tol, atol=tol, equal_nan=True):
            return f"max abs error {float(np.nanmax(np.abs(a - e))):.3g}"
    return ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/release/cnnc")
    parser.add_argument("--no-c", action="store_true", help="interpreter only")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    cnnc = os.path.abspath(args.cnnc)
    cases = [c for c in collect_testcases() if c.kind == "node" and c.model.graph.node[0].op_type in OPS
             and c.data_sets]
    passed, failed, skipped = collections.Counter(), collections.Counter(), collections.Counter()
    failures, skips = [], []
    for case in sorted(cases, key=lambda c: c.name):
        op = case.model.graph.node[0].op_type
        with tempfile.TemporaryDirectory(prefix="cnnc-conf-") as d:
            try:
                files, expected = prepare(case, d)
            except Exception as e:  # a case the runner cannot express
                skipped[op] += 1
                skips.append((case.name, f"runner: {e}"))
                continue
            got, error = run(cnnc, d, files, len(expected), True)
            if got is None:
                reason = error.splitlines()[-1] if error else "failed"
                if error.startswith("error:"):  # a clean refusal: outside what cnnc supports
                    skipped[op] += 1
                    skips.append((case.name, " ".join(error.split())[:200]))
                else:
                    failed[op] += 1
                    failures.append((case.name, "interpreter: " + " ".join(error.split())[:200]))
                continue
            problem = compare(got, expected, 1e-4)
            if not problem and not args.no_c:
                got_c, error = run(cnnc, d, files, len(expected), False)
                problem = ("C: " + " ".join(error.split())[:200]) if got_c is None else (
                    ("C: " + compare(got_c, expected, 1e-3)) if compare(got_c, expected, 1e-3) else "")
            elif problem:
                problem = "interpreter: " + problem
            if problem:
                failed[op] += 1
                failures.append((case.name, problem))
            else:
                passed[op] += 1
        if args.verbose:
            print(case.name, file=sys.stderr)
    print(f"{'op':20} passed failed skipped")
    for op in OPS:
        if passed[op] or failed[op] or skipped[op]:
            print(f"{op:20} {passed[op]:6} {failed[op]:6} {skipped[op]:7}")
    for name, reason in failures:
        print(f"FAIL {name}: {reason}")
    for name, reason in skips:
        print(f"SKIP {name}: {reason}")
    p, f, s = sum(passed.values()), sum(failed.values()), sum(skipped.values())
    print(f"{p} passed, {f} failed, {s} skipped")
    return 1 if f else 0


if __name__ == "__main__":
    sys.exit(main())
