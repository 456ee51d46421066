#!/usr/bin/env python3
"""Builds the ONNX test fixtures of Tests/ONNXTests/Fixtures with the onnx helper API.

Each model NAME gets NAME.onnx, NAME.input.npy (seeded input) and NAME.expected.npy (ONNX
Runtime's output on it), so the Swift tests need no Python. Broken models for the error tests
have no .npy files. Rerun after changing this script:

    python3 tools/onnx/make_fixtures.py Tests/ONNXTests/Fixtures [NAME...]   # NAME: only those
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def init(name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def positive(name, shape):
    return numpy_helper.from_array((rng.random(shape) + 0.5).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(name, nodes, inputs, outputs, inits, opset=13):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_fixtures")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def lenet():
    """LeNet as PyTorch exports it: x.view(x.size(0), -1) becomes Shape/Gather/Unsqueeze/Concat/Reshape."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1.weight", "c1.bias"], ["c1"], name="/c1/Conv", pads=[2, 2, 2, 2], kernel_shape=[5, 5]),
        n("Relu", ["c1"], ["r1"], name="/relu1/Relu"),
        n("MaxPool", ["r1"], ["p1"], name="/pool1/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "c2.weight", "c2.bias"], ["c2"], name="/c2/Conv", kernel_shape=[5, 5]),
        n("Relu", ["c2"], ["r2"], name="/relu2/Relu"),
        n("MaxPool", ["r2"], ["p2"], name="/pool2/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Shape", ["p2"], ["shape"], name="/Shape"),
        n("Gather", ["shape", "zero"], ["batch"], name="/Gather", axis=0),
        n("Unsqueeze", ["batch", "axes0"], ["batch1"], name="/Unsqueeze"),
        n("Concat", ["batch1", "minus1"], ["target"], name="/Concat", axis=0),
        n("Reshape", ["p2", "target"], ["flat"], name="/Reshape"),
        n("Gemm", ["flat", "f1.weight", "f1.bias"], ["f1"], name="/f1/Gemm", transB=1),
        n("Relu", ["f1"], ["r3"], name="/relu3/Relu"),
        n("Gemm", ["r3", "f2_w_t", "f2.bias"], ["f2"], name="/f2/Gemm", alpha=0.5, beta=2.0),
        n("Relu", ["f2"], ["r4"], name="/relu4/Relu"),
        n("MatMul", ["r4", "logits_w"], ["mm"], name="/logits/MatMul"),
        n("Add", ["mm", "logits_b"], ["logits"], name="/logits/Add"),
        n("Softmax", ["logits"], ["prob"], name="/Softmax", axis=1),
    ]
    inits = [init("c1.weight", [6, 1, 5, 5]), init("c1.bias", [6]), init("c2.weight", [16, 6, 5, 5], 0.1),
             init("c2.bias", [16]), numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
             ints("axes0", [0]), ints("minus1", [-1]), init("f1.weight", [120, 400], 0.05), init("f1.bias", [120]),
             init("f2_w_t", [120, 84], 0.1), init("f2.bias", [84]), init("logits_w", [84, 10], 0.1), init("logits_b", [10])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])
    y = helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10])
    return model("lenet", nodes, [x], [y], inits), [2, 1, 28, 28]


def resnet():
    """A ResNet-style net: conv-bn-relu stem, two basic blocks (one with a 1x1 projection)."""
    n = helper.make_node
    nodes, inits = [], []

    def conv_bn(name, x, cin, cout, k, stride, relu):
        pad = k // 2
        nodes.append(n("Conv", [x, f"{name}.weight"], [f"{name}_c"], name=f"/{name}/Conv", kernel_shape=[k, k],
                       strides=[stride, stride], pads=[pad] * 4))
        inits.append(init(f"{name}.weight", [cout, cin, k, k], (2.0 / (cin * k * k)) ** 0.5))
        bn = f"{name}_bn"
        nodes.append(n("BatchNormalization", [f"{name}_c", f"{bn}.weight", f"{bn}.bias", f"{bn}.running_mean",
                                             f"{bn}.running_var"], [f"{name}_b"], name=f"/{bn}/BatchNormalization",
                       epsilon=1e-5, momentum=0.9))
        inits.extend([positive(f"{bn}.weight", [cout]), init(f"{bn}.bias", [cout], 0.1), init(f"{bn}.running_mean", [cout], 0.1),
                      positive(f"{bn}.running_var", [cout])])
        if relu:
            nodes.append(n("Relu", [f"{name}_b"], [f"{name}_r"], name=f"/{name}/Relu"))
            return f"{name}_r"
        return f"{name}_b"

    x = conv_bn("stem", "x", 3, 8, 3, 1, True)
    a = conv_bn("b1a", x, 8, 8, 3, 1, True)
    b = conv_bn("b1b", a, 8, 8, 3, 1, False)
    nodes.append(n("Add", [b, x], ["s1"], name="/b1/Add"))
    nodes.append(n("Relu", ["s1"], ["o1"], name="/b1/Relu"))
    a = conv_bn("b2a", "o1", 8, 16, 3, 2, True)
    b = conv_bn("b2b", a, 16, 16, 3, 1, False)
    p = conv_bn("b2p", "o1", 8, 16, 1, 2, False)
    nodes.append(n("Add", [b, p], ["s2"], name="/b2/Add"))
    nodes.append(n("Relu", ["s2"], ["o2"], name="/b2/Relu"))
    nodes.append(n("GlobalAveragePool", ["o2"], ["gap"], name="/pool/GlobalAveragePool"))
    nodes.append(n("Flatten", ["gap"], ["flat"], name="/Flatten", axis=1))
    nodes.append(n("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm", transB=1))
    inits.extend([init("fc.weight", [10, 16]), init("fc.bias", [10])])
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
    return model("resnet", nodes, [xi], [y], inits), [3, 3, 16, 16]


def mobile():
    """MobileNet/DenseNet-style pieces: Pad into Conv, depthwise conv, ReLU6 (Clip), HardSwish,
    swish as x * Sigmoid(x), PRelu, concat, SAME pooling, GlobalMaxPool, Dropout, LogSoftmax."""
    n = helper.make_node
    nodes = [
        n("Pad", ["x", "pads"], ["xp"], name="pad0", mode="constant"),
        n("Conv", ["xp", "stem.weight", "stem.bias"], ["stem"], name="stem_conv", kernel_shape=[3, 3], strides=[2, 2]),
        n("Clip", ["stem", "zero_f", "six"], ["r6"], name="relu6"),
        n("Conv", ["r6", "dw.weight"], ["dw"], name="dw_conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        n("HardSwish", ["dw"], ["hs"], name="hswish"),
        n("Conv", ["hs", "pw.weight", "pw.bias"], ["pw"], name="pw_conv", kernel_shape=[1, 1]),
        n("Sigmoid", ["pw"], ["sig"], name="sig"),
        n("Mul", ["pw", "sig"], ["sw"], name="swish"),
        n("PRelu", ["hs", "slope"], ["pr"], name="prelu"),
        n("Concat", ["sw", "pr"], ["cat"], name="dense_concat", axis=1),
        n("AveragePool", ["cat"], ["ap"], name="avg_same", kernel_shape=[3, 3], auto_pad="SAME_UPPER", count_include_pad=0),
        n("LeakyRelu", ["ap"], ["lr"], name="leaky", alpha=0.1),
        n("GlobalMaxPool", ["lr"], ["gmp"], name="gmp"),
        n("Flatten", ["gmp"], ["flat"], name="flat"),
        n("Dropout", ["flat", "ratio"], ["drop"], name="drop"),
        n("Identity", ["drop"], ["ident"], name="ident"),
        n("Gemm", ["ident", "head.weight", "head.bias"], ["head"], name="head", transB=1),
        n("LogSoftmax", ["head"], ["logp"], name="logp", axis=-1),
    ]
    inits = [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), init("stem.weight", [8, 3, 3, 3]), init("stem.bias", [8]),
             numpy_helper.from_array(np.array(0, dtype=np.float32), "zero_f"),
             numpy_helper.from_array(np.array(6, dtype=np.float32), "six"), init("dw.weight", [8, 1, 3, 3]),
             init("pw.weight", [12, 8, 1, 1]), init("pw.bias", [12]), init("slope", [8, 1, 1]),
             numpy_helper.from_array(np.array(0.25, dtype=np.float32), "ratio"), init("head.weight", [5, 20]), init("head.bias", [5])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 15, 15])
    y = helper.make_tensor_value_info("logp", TensorProto.FLOAT, ["N", 5])
    return model("mobile", nodes, [x], [y], inits, opset=14), [2, 3, 15, 15]


def activations():
    """Every activation on one value, with LRN and ceil-mode max pooling, summed."""
    n = helper.make_node
    acts = [("Selu", {}), ("Softplus", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("Elu", {"alpha": 0.7}),
            ("Tanh", {}), ("Sigmoid", {}), ("Relu", {})]
    nodes = [n("LRN", ["x"], ["lrn"], name="lrn", size=3, alpha=1e-3, beta=0.75, bias=2.0)]
    outs = []
    for i, (op, attrs) in enumerate(acts):
        nodes.append(n(op, ["lrn"], [f"a{i}"], name=f"act{i}", **attrs))
        outs.append(f"a{i}")
    nodes.append(n("Sum", outs, ["sum"], name="sum"))
    nodes.append(n("MaxPool", ["sum"], ["pool"], name="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
    nodes.append(n("Softmax", ["pool"], ["prob"], name="softmax", axis=1))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 8, 8])
    y = helper.make_tensor_value_info("prob", TensorProto.FLOAT, [2, 4, 4, 4])
    return model("activations", nodes, [x], [y], [], opset=13), [2, 4, 8, 8]


def squeeze_excitation():
    """The squeeze-and-excitation gate as torchvision exports it (GlobalAveragePool -> Conv ->
    Relu -> Conv -> HardSigmoid -> Mul, the gate first), arithmetic with scalar constants
    (x * 0.5, + 3, / 6, 1 - x), per-channel constants ([1, C, 1, 1] Mul and Add), a Div by a
    computed per-channel value and a Sub of one. Reseeds the
    generator, so it builds the same alone (`make_fixtures.py DIR squeeze_excitation`)."""
    global rng
    rng = np.random.default_rng(17)
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1.weight", "c1.bias"], ["c1"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("GlobalAveragePool", ["c1"], ["pool"], name="pool"),
        n("Conv", ["pool", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1", kernel_shape=[1, 1]),
        n("Relu", ["fc1"], ["r"], name="r"),
        n("Conv", ["r", "fc2.weight", "fc2.bias"], ["fc2"], name="fc2", kernel_shape=[1, 1]),
        n("HardSigmoid", ["fc2"], ["gate"], name="gate", alpha=1.0 / 6, beta=0.5),
        n("Mul", ["gate", "c1"], ["se"], name="se"),
        n("Mul", ["se", "half"], ["m1"], name="times_half"),
        n("Add", ["m1", "three"], ["a1"], name="plus_three"),
        n("Div", ["a1", "six"], ["d1"], name="over_six"),
        n("Sub", ["one", "d1"], ["s1"], name="one_minus"),
        n("Mul", ["s1", "scale"], ["m2"], name="channel_scale"),
        n("Add", ["m2", "shift"], ["a2"], name="channel_shift"),
        n("Sigmoid", ["pool"], ["sig"], name="sig"),
        n("Add", ["sig", "one"], ["den"], name="den"),
        n("Div", ["a2", "den"], ["d2"], name="over_den"),
        n("Sub", ["d2", "sig"], ["centered"], name="centered"),
        n("ReduceMean", ["centered"], ["gap"], name="gap", axes=[2, 3], keepdims=0),
        n("Gemm", ["gap", "head.weight", "head.bias"], ["logits"], name="head", transB=1),
    ]
    scalar = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)
    inits = [init("c1.weight", [8, 3, 3, 3]), init("c1.bias", [8]), init("fc1.weight", [4, 8, 1, 1]), init("fc1.bias", [4]),
             init("fc2.weight", [8, 4, 1, 1]), init("fc2.bias", [8]), scalar("half", 0.5), scalar("three", 3),
             scalar("six", 6), scalar("one", 1), init("scale", [1, 8, 1, 1]), init("shift", [1, 8, 1, 1]),
             init("head.weight", [5, 8]), init("head.bias", [5])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 10, 10])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])
    return model("squeeze_excitation", nodes, [x], [y], inits, opset=17), [2, 3, 10, 10]


def shuffle_split():
    """ShuffleNet's pieces: Split along the channels (opset 13, sizes as an input), PyTorch's
    channel_shuffle (Reshape to [N, G, C/G, H, W], Transpose 0,2,1,3,4, Reshape back) and a
    Slice of the channels to INT64_MAX ("to the end"). Reseeds the generator."""
    global rng
    rng = np.random.default_rng(19)
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1.weight", "c1.bias"], ["c1"], name="c1", kernel_shape=[1, 1]),
        n("Split", ["c1", "halves"], ["left", "right"], name="split", axis=1),
        n("Relu", ["right"], ["r"], name="r"),
        n("Concat", ["left", "r"], ["cat"], name="cat", axis=1),
        n("Reshape", ["cat", "grouped_shape"], ["grouped"], name="grouped"),
        n("Transpose", ["grouped"], ["transposed"], name="shuffle", perm=[0, 2, 1, 3, 4]),
        n("Reshape", ["transposed", "shape"], ["mixed"], name="mixed"),
        n("Slice", ["mixed", "starts", "ends", "axes"], ["tail"], name="tail"),
        n("GlobalAveragePool", ["tail"], ["pool"], name="pool"),
        n("Flatten", ["pool"], ["flat"], name="flat"),
        n("Gemm", ["flat", "head.weight", "head.bias"], ["logits"], name="head", transB=1),
    ]
    inits = [init("c1.weight", [8, 3, 1, 1]), init("c1.bias", [8]), ints("halves", [4, 4]),
             ints("grouped_shape", [0, 2, 4, 6, 6]), ints("shape", [0, -1, 6, 6]), ints("starts", [3]),
             ints("ends", [np.iinfo(np.int64).max]), ints("axes", [1]), init("head.weight", [4, 5]), init("head.bias", [4])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])
    return model("shuffle_split", nodes, [x], [y], inits, opset=13), [2, 3, 6, 6]


def option_a():
    """The CIFAR ResNet's option-A shortcut, F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p)) as
    exported (a strided Slice on H and W, a Pad of the channels) added to the strided conv
    branch; then reflection padding before a Conv and edge padding before a pool (opset 13:
    pads as an input). Reseeds the generator."""
    global rng
    rng = np.random.default_rng(23)
    n = helper.make_node
    big = np.iinfo(np.int64).max
    nodes = [
        n("Conv", ["x", "c1.weight"], ["c1"], name="c1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"], name="r1"),
        n("Slice", ["x", "starts", "ends", "axes", "steps"], ["sub"], name="subsample"),
        n("Pad", ["sub", "channel_pads", "zero"], ["short"], name="shortcut", mode="constant"),
        n("Add", ["r1", "short"], ["sum"], name="sum"),
        n("Relu", ["sum"], ["r"], name="r"),
        n("Pad", ["r", "reflect_pads"], ["rp"], name="reflect", mode="reflect"),
        n("Conv", ["rp", "c2.weight", "c2.bias"], ["c2"], name="c2", kernel_shape=[3, 3]),
        n("Pad", ["c2", "edge_pads"], ["ep"], name="edge", mode="edge"),
        n("GlobalAveragePool", ["ep"], ["pool"], name="pool"),
        n("Flatten", ["pool"], ["flat"], name="flat"),
        n("Gemm", ["flat", "head.weight", "head.bias"], ["logits"], name="head", transB=1),
    ]
    inits = [init("c1.weight", [8, 4, 3, 3]), ints("starts", [0, 0]), ints("ends", [big, big]), ints("axes", [2, 3]),
             ints("steps", [2, 2]), ints("channel_pads", [0, 2, 0, 0, 0, 2, 0, 0]),
             numpy_helper.from_array(np.array(0, dtype=np.float32), "zero"), ints("reflect_pads", [0, 0, 1, 1, 0, 0, 1, 1]),
             init("c2.weight", [8, 8, 3, 3]), init("c2.bias", [8]), ints("edge_pads", [0, 0, 2, 0, 0, 0, 0, 1]),
             init("head.weight", [3, 8]), init("head.bias", [3])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    return model("option_a", nodes, [x], [y], inits, opset=13), [2, 4, 8, 8]


def upsample():
    """Nearest upsampling as PyTorch exports F.interpolate(scale_factor=2) (Resize, asymmetric
    coordinates, floor) and with ONNX's default coordinates (half_pixel, round_prefer_floor)
    by 3 x 1, sizes given instead of scales. Reseeds the generator."""
    global rng
    rng = np.random.default_rng(29)
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1.weight", "c1.bias"], ["c1"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Resize", ["c1", "", "scales"], ["up"], name="up", mode="nearest", coordinate_transformation_mode="asymmetric",
          nearest_mode="floor"),
        n("Conv", ["up", "c2.weight"], ["c2"], name="c2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Resize", ["c2", "", "", "sizes"], ["up2"], name="up2", mode="nearest"),
        n("Relu", ["up2"], ["r"], name="r"),
        n("GlobalMaxPool", ["r"], ["pool"], name="pool"),
        n("Flatten", ["pool"], ["flat"], name="flat"),
        n("Gemm", ["flat", "head.weight", "head.bias"], ["logits"], name="head", transB=1),
    ]
    inits = [init("c1.weight", [4, 2, 3, 3]), init("c1.bias", [4]),
             numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales"), init("c2.weight", [3, 4, 3, 3]),
             ints("sizes", [2, 3, 30, 10]), init("head.weight", [2, 3]), init("head.bias", [2])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2, 5, 5])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 2])
    return model("upsample", nodes, [x], [y], inits, opset=13), [2, 2, 5, 5]


def broken(directory):
    """Models the importer must reject with a clear message."""
    n = helper.make_node
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])
    # Several unsupported nodes at once.
    m = model("unsupported", [
        n("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
        n("Erf", ["c"], ["e"], name="erf_1"),
        n("Transpose", ["e"], ["t"], name="transpose_1", perm=[0, 1, 3, 2]),
        n("Sin", ["t"], ["y"], name="sin_1"),
    ], [x], [y], [init("w", [4, 3, 3, 3])])
    onnx.save(m, os.path.join(directory, "unsupported.onnx"))
    # A missing initializer (the checker would refuse it, so it is saved unchecked).
    g = helper.make_graph([n("Conv", ["x", "w_missing"], ["y"], name="conv_missing", kernel_shape=[3, 3])], "missing", [x], [y], [])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(directory, "missing_initializer.onnx"))
    # A weight whose input channels contradict the input.
    m = model("contradiction", [n("Conv", ["x", "w"], ["y"], name="conv_bad", kernel_shape=[3, 3])], [x], [y],
              [init("w", [4, 5, 3, 3])])
    onnx.save(m, os.path.join(directory, "contradiction.onnx"))
    # Truncated: the first half of a valid model.
    data = lenet()[0].SerializeToString()
    with open(os.path.join(directory, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(directory, "not_onnx.onnx"), "w") as f:
        f.write("network lenet\ninput image shape=1x28x28\n")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "Tests/ONNXTests/Fixtures"
    os.makedirs(directory, exist_ok=True)
    import onnxruntime as ort
    wanted = sys.argv[2:]
    for build in (lenet, resnet, mobile, activations, squeeze_excitation, shuffle_split, option_a, upsample):
        if wanted and build.__name__ not in wanted:
            continue
        m, shape = build()
        name = m.graph.name
        path = os.path.join(directory, f"{name}.onnx")
        onnx.save(m, path)
        x = rng.standard_normal(shape).astype(np.float32)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"x": x})
        np.save(os.path.join(directory, f"{name}.input.npy"), x)
        np.save(os.path.join(directory, f"{name}.expected.npy"), y.astype(np.float32))
        print(f"{path}: output {y.shape}")
    if not wanted:
        broken(directory)


if __name__ == "__main__":
    main()
