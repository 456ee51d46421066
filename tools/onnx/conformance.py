#!/usr/bin/env python3
"""ONNX's own operator conformance cases (onnx.backend.test node cases) through cnnc.

For every node case whose operators cnnc imports, the model is written with every input but
the data inputs turned into initializers (cnnc compiles weights and shapes in; the data inputs
are the first one, and all float inputs of Add/Sum/Concat/Mul), then run with
`cnnc run --interpret` and `cnnc run` (generated C) and compared with the expected outputs
(rtol/atol 1e-4 for the interpreter, 1e-3 for the C). Then cnnc's own cases (`own_cases`:
the forms PyTorch exports of Sub, Div, Split, the channel-shuffle Transpose, Resize nearest and
linear, ConvTranspose and Pad's modes on computed values), compared the same way with
ONNX Runtime's outputs; each prints its largest errors. Prints per-op pass counts, the failing
cases with reasons, and `N passed, M failed` (a case passes when both runs match; an ONNX
case cnnc refuses with an error message, because it is outside what cnnc supports, counts as
skipped with that message; an own case must not be refused; wrong numbers and crashes are
failures).

    python3 tools/onnx/conformance.py [--cnnc .build/release/cnnc] [--no-c] [--verbose] [--own-only]
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
       "Identity", "Pad", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "Slice",
       "Sub", "Div", "Split", "Transpose", "Resize", "ConvTranspose"]
DATA_OPS = {"Add", "Sum", "Concat", "Mul", "Sub", "Div"}


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


def own_cases():
    """(name, op, model, inputs) for the forms PyTorch exports, each a small graph whose data
    input is computed on (a Relu first, so a Pad is not merged into a Conv)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(13)

    def floats(name, array):
        return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)

    def ints(name, values):
        return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)

    def model(name, shape, nodes, out_shape, initializers=(), extra_inputs=()):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
        inputs = [x] + [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in extra_inputs]
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])] + nodes, name, inputs, [y],
                                  list(initializers))
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m

    def data(shape):
        return rng.standard_normal(shape).astype(np.float32)

    cases = []

    def add(name, op, m, shapes):
        cases.append((name, op, m, [data(s) for s in shapes]))

    # Sub and Div: of two computed values (equal shapes, or the second per channel [N, C, 1, 1]),
    # and by a constant (affine) or a per-channel constant (a depthwise 1x1 conv).
    for op in ["Sub", "Div"]:
        gate = [helper.make_node("GlobalAveragePool", ["r"], ["g"]), helper.make_node("Sigmoid", ["g"], ["s"])]
        add(f"{op.lower()}_per_channel", op,
            model(f"{op}_gate", [2, 3, 4, 5], gate + [helper.make_node(op, ["r", "s"], ["y"])], [2, 3, 4, 5]),
            [[2, 3, 4, 5]])
        add(f"{op.lower()}_equal_shapes", op,
            model(f"{op}_equal", [2, 3, 4, 5], [helper.make_node("Sigmoid", ["r"], ["s"]), helper.make_node(op, ["r", "s"], ["y"])],
                  [2, 3, 4, 5]), [[2, 3, 4, 5]])
        add(f"{op.lower()}_scalar", op,
            model(f"{op}_scalar", [1, 2, 3, 3], [helper.make_node(op, ["r", "k"], ["y"])], [1, 2, 3, 3], [floats("k", 6.0)]),
            [[1, 2, 3, 3]])
        if op == "Sub":  # 1 - x; a constant divided by a computed value (a reciprocal) is refused
            add("sub_constant_first", op,
                model(f"{op}_first", [1, 2, 3, 3], [helper.make_node("Sigmoid", ["r"], ["s"]),
                                                    helper.make_node(op, ["k", "s"], ["y"])],
                      [1, 2, 3, 3], [floats("k", 1.0)]), [[1, 2, 3, 3]])
        add(f"{op.lower()}_per_channel_constant", op,
            model(f"{op}_channels", [2, 3, 4, 4], [helper.make_node(op, ["r", "k"], ["y"])], [2, 3, 4, 4],
                  [floats("k", [[[0.5]], [[2.0]], [[-4.0]]])]), [[2, 3, 4, 4]])
    # Split along the channels (sizes, and equal parts), the parts added back together.
    add("split_sizes", "Split",
        model("split_sizes", [1, 6, 3, 3], [helper.make_node("Split", ["r", "sizes"], ["a", "b"], axis=1),
                                            helper.make_node("Concat", ["b", "a"], ["y"], axis=1)],
              [1, 6, 3, 3], [ints("sizes", [2, 4])]), [[1, 6, 3, 3]])
    add("split_equal", "Split",
        model("split_equal", [2, 6, 2, 3], [helper.make_node("Split", ["r"], ["a", "b", "c"], axis=1),
                                            helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=1)],
              [2, 6, 2, 3]), [[2, 6, 2, 3]])
    # Transpose in PyTorch's channel_shuffle: Reshape [N, G, C/G, H, W], perm [0, 2, 1, 3, 4], back.
    add("transpose_channel_shuffle", "Transpose",
        model("shuffle", [2, 6, 3, 3], [helper.make_node("Reshape", ["r", "grouped"], ["v"]),
                                        helper.make_node("Transpose", ["v"], ["t"], perm=[0, 2, 1, 3, 4]),
                                        helper.make_node("Reshape", ["t", "flat"], ["y"])],
              [2, 6, 3, 3], [ints("grouped", [2, 3, 2, 3, 3]), ints("flat", [2, 6, 3, 3])]), [[2, 6, 3, 3]])
    # Resize: nearest (PyTorch's asymmetric + floor by scales; ONNX's default half_pixel by sizes)
    # and linear with the coordinate modes PyTorch emits for bilinear.
    add("resize_nearest_asymmetric", "Resize",
        model("resize_na", [1, 2, 3, 4], [helper.make_node("Resize", ["r", "", "scales"], ["y"], mode="nearest",
                                                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
              [1, 2, 6, 8], [floats("scales", [1, 1, 2, 2])]), [[1, 2, 3, 4]])
    add("resize_nearest_sizes", "Resize",
        model("resize_ns", [2, 2, 3, 2], [helper.make_node("Resize", ["r", "", "", "sizes"], ["y"], mode="nearest")],
              [2, 2, 9, 2], [ints("sizes", [2, 2, 9, 2])]), [[2, 2, 3, 2]])
    for coordinates in ["half_pixel", "pytorch_half_pixel", "align_corners"]:
        add(f"resize_linear_{coordinates}", "Resize",
            model(f"resize_{coordinates}", [2, 3, 4, 5], [helper.make_node(
                "Resize", ["r", "", "scales"], ["y"], mode="linear", coordinate_transformation_mode=coordinates)],
                [2, 3, 8, 15], [floats("scales", [1, 1, 2, 3])]), [[2, 3, 4, 5]])
    add("resize_linear_sizes_align_corners", "Resize",
        model("resize_las", [1, 2, 3, 3], [helper.make_node(
            "Resize", ["r", "", "", "sizes"], ["y"], mode="linear", coordinate_transformation_mode="align_corners")],
            [1, 2, 12, 6], [ints("sizes", [1, 2, 12, 6])]), [[1, 2, 3, 3]])
    # ConvTranspose: stride, pads, output_padding, groups, dilation, output_shape, auto_pad.
    def deconv(name, x_shape, w_shape, out_shape, bias=True, **attributes):
        inits = [floats("w", data(w_shape))]
        inputs = ["r", "w"]
        if bias:
            inits.append(floats("b", data([out_shape[1]])))
            inputs.append("b")
        add(name, "ConvTranspose",
            model(name, x_shape, [helper.make_node("ConvTranspose", inputs, ["y"], **attributes)], out_shape, inits),
            [x_shape])
    deconv("conv_transpose_stride2", [2, 4, 5, 5], [4, 3, 4, 4], [2, 3, 10, 10], strides=[2, 2], pads=[1, 1, 1, 1])
    deconv("conv_transpose_output_padding", [1, 3, 4, 3], [3, 2, 3, 3], [1, 2, 8, 6], strides=[2, 2], pads=[1, 1, 1, 1],
           output_padding=[1, 1])
    deconv("conv_transpose_groups_dilation", [2, 4, 4, 4], [4, 3, 3, 2], [2, 6, 8, 4], bias=False, group=2,
           dilations=[2, 1], pads=[0, 1, 0, 0], strides=[1, 1])
    deconv("conv_transpose_asymmetric", [1, 2, 3, 4], [2, 2, 3, 3], [1, 2, 7, 13], strides=[2, 3],
           pads=[0, 1, 1, 0], output_padding=[1, 2])
    deconv("conv_transpose_output_shape", [1, 2, 3, 3], [2, 3, 3, 3], [1, 3, 6, 6], strides=[2, 2], output_shape=[6, 6])
    deconv("conv_transpose_output_shape_beyond", [1, 2, 3, 3], [2, 3, 3, 3], [1, 3, 8, 8], strides=[2, 2],
           output_shape=[8, 8])
    deconv("conv_transpose_same_upper", [1, 2, 3, 3], [2, 2, 4, 4], [1, 2, 6, 6], strides=[2, 2], auto_pad="SAME_UPPER")
    deconv("conv_transpose_depthwise", [2, 3, 4, 4], [3, 1, 3, 3], [2, 3, 9, 9], group=3, strides=[2, 2])
    # Pad of a computed value in each mode (and of the channels, constant).
    for mode in ["constant", "reflect", "edge"]:
        pads = [0, 0, 2, 1, 0, 0, 1, 2]
        add(f"pad_{mode}", "Pad",
            model(f"pad_{mode}", [2, 3, 4, 4], [helper.make_node("Pad", ["r", "pads", "value"], ["y"], mode=mode)],
                  [2, 3, 7, 7], [ints("pads", pads), floats("value", 0.5)]), [[2, 3, 4, 4]])
    add("pad_channels_constant", "Pad",
        model("pad_channels", [1, 2, 3, 3], [helper.make_node("Pad", ["r", "pads"], ["y"], mode="constant")],
              [1, 5, 3, 3], [ints("pads", [0, 1, 0, 0, 0, 2, 0, 0])]), [[1, 2, 3, 3]])
    return cases


def run_own(cnnc, no_c, passed, failed, failures):
    """cnnc's own cases against ONNX Runtime's outputs; prints each case's largest errors."""
    import onnxruntime

    print(f"{'own case':40} {'interp. err':>12} {'C err':>12}")
    for name, op, m, inputs in own_cases():
        session = onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = session.run(None, {"x": inputs[0]})
        with tempfile.TemporaryDirectory(prefix="cnnc-own-") as d:
            onnx.save(m, os.path.join(d, "model.onnx"))
            files = []
            for i, value in enumerate(inputs):
                files.append(os.path.join(d, f"in{i}.npy"))
                np.save(files[-1], value)
            errors, problem = [], ""
            for interpret, tol in [(True, 1e-4), (False, 1e-3)]:
                if not interpret and no_c:
                    break
                got, error = run(cnnc, d, files, len(expected), interpret)
                label = "interpreter" if interpret else "C"
                if got is None:
                    problem = f"{label}: " + " ".join(error.split())[:300]
                    break
                if compare(got, expected, tol):
                    problem = f"{label}: " + compare(got, expected, tol)
                errors.append(max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected)))
            print(f"{name:40} " + " ".join(f"{e:12.3g}" for e in errors))
            if problem:
                failed[op] += 1
                failures.append((name, problem))
            else:
                passed[op] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cnnc", default=".build/release/cnnc")
    parser.add_argument("--no-c", action="store_true", help="interpreter only")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--own-only", action="store_true", help="only cnnc's own cases against ONNX Runtime")
    args = parser.parse_args()
    cnnc = os.path.abspath(args.cnnc)
    cases = [] if args.own_only else [
        c for c in collect_testcases() if c.kind == "node" and c.model.graph.node[0].op_type in OPS and c.data_sets]
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
    run_own(cnnc, args.no_c, passed, failed, failures)
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
