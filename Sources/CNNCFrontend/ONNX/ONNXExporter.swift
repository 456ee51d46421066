// Exports a cnnc graph with its weights as an ONNX model (opset 14) that ONNX Runtime runs to
// cnnc's outputs and Netron opens. Value names are node names, initializers keep cnnc's
// parameter names (`c1.weight`), and the batch is a symbolic dimension `N`.
//
// Mapping: conv -> Conv; dense -> (Flatten) Gemm transB=1; swish -> Sigmoid + Mul; add of
// more than two inputs -> Sum; dropout -> Dropout (ratio input); pools, LRN, batch norm,
// softmax, log softmax, flatten, concat and the other activations -> their ONNX namesakes.

import CNNCIR
import Foundation

/// Why a graph could not be exported.
public struct ONNXExportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes ONNX models.
public enum ONNXExporter {
    /// The default-domain opset the exported models import (HardSwish needs 14).
    public static let opset = 14

    /// The serialized ModelProto of `graph` (shapes inferred) with `weights` for every
    /// parameter.
    public static func export(_ graph: Graph, weights: [String: WeightTensor], producerVersion: String = "") throws -> Data {
        var builder = Builder(graph: graph, weights: weights)
        try builder.build()
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.producerName = "cnnc"
        model.producerVersion = producerVersion
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.domain = ""
        opsetID.version = Int64(opset)
        model.opsetImport = [opsetID]
        model.graph = builder.proto
        return try model.serializedData()
    }

    private struct Builder {
        let graph: Graph
        let weights: [String: WeightTensor]
        var proto = Onnx_GraphProto()
        var problems: [String] = []

        init(graph: Graph, weights: [String: WeightTensor]) { self.graph = graph; self.weights = weights }

        mutating func build() throws {
            proto.name = graph.name
            let index = graph.indexByName()
            for spec in graph.parameters() {
                guard let w = weights[spec.name] else { problems.append("parameter '\(spec.name)' has no value"); continue }
                guard w.shape.reduce(1, *) == spec.count, w.data.count == spec.count else {
                    problems.append("parameter '\(spec.name)' has shape \(w.shape), expected \(spec.shape)"); continue
                }
                var shape = spec.shape
                // PReLU slopes broadcast from the right: one per channel is [C, 1, 1] on maps.
                if spec.role == "weight", let node = index[spec.node].map({ graph.nodes[$0] }), case .prelu(let a) = node.op,
                   !a.shared, let x = node.inputs.first.flatMap({ index[$0] }), graph.nodes[x].shape.rank == 3 {
                    shape = [spec.count, 1, 1]
                }
                proto.initializer.append(.float(name: spec.name, dims: shape, values: w.data))
            }
            for node in graph.nodes { emit(node, inputShapes: node.inputs.map { graph.nodes[index[$0]!].shape }) }
            for name in graph.outputs {
                guard let i = index[name] else { problems.append("output '\(name)' is not a node"); continue }
                proto.output.append(valueInfo(name, graph.nodes[i].shape))
            }
            guard problems.isEmpty else {
                throw ONNXExportError("cannot export '\(graph.name)' to ONNX:\n" + problems.map { "  \($0)" }.joined(separator: "\n"))
            }
        }

        private func valueInfo(_ name: String, _ shape: Shape) -> Onnx_ValueInfoProto {
            var info = Onnx_ValueInfoProto()
            info.name = name
            var tensor = Onnx_TypeProto.Tensor()
            tensor.elemType = ONNXDataType.float.rawValue
            var batch = Onnx_TensorShapeProto.Dimension()
            batch.dimParam = "N"
            tensor.shape.dim = [batch] + shape.dims.map { d in
                var dim = Onnx_TensorShapeProto.Dimension()
                dim.dimValue = Int64(d)
                return dim
            }
            info.type.tensorType = tensor
            return info
        }

        private mutating func add(_ op: String, _ inputs: [String], _ output: String, name: String,
                                  _ attributes: [Onnx_AttributeProto] = []) {
            var n = Onnx_NodeProto()
            n.opType = op
            n.name = name
            n.input = inputs
            n.output = [output]
            n.attribute = attributes
            proto.node.append(n)
        }

        private mutating func scalar(_ name: String, _ value: Float) -> String {
            proto.initializer.append(.float(name: name, dims: [], values: [value]))
            return name
        }

        private mutating func emit(_ node: Node, inputShapes: [Shape]) {
            let n = node.name, x = node.inputs
            switch node.op {
            case .input:
                proto.input.append(valueInfo(n, node.shape))
            case .conv(let a):
                add("Conv", x + ["\(n).weight"] + (a.bias ? ["\(n).bias"] : []), n, name: n, [
                    .ints("kernel_shape", [a.kernel.h, a.kernel.w]), .ints("strides", [a.stride.h, a.stride.w]),
                    .ints("pads", [a.padding.top, a.padding.left, a.padding.bottom, a.padding.right]),
                    .ints("dilations", [a.dilation.h, a.dilation.w]), .int("group", a.groups),
                ])
            case .convTranspose(let a):
                add("ConvTranspose", x + ["\(n).weight"] + (a.bias ? ["\(n).bias"] : []), n, name: n, [
                    .ints("kernel_shape", [a.kernel.h, a.kernel.w]), .ints("strides", [a.stride.h, a.stride.w]),
                    .ints("pads", [a.padding.top, a.padding.left, a.padding.bottom, a.padding.right]),
                    .ints("output_padding", [a.outputPadding.h, a.outputPadding.w]),
                    .ints("dilations", [a.dilation.h, a.dilation.w]), .int("group", a.groups),
                ])
            case .dense(let a):
                var input = x[0]
                if inputShapes[0].rank != 1 {
                    input = "\(n)_flat"
                    add("Flatten", x, input, name: input, [.int("axis", 1)])
                }
                add("Gemm", [input, "\(n).weight"] + (a.bias ? ["\(n).bias"] : []), n, name: n, [.int("transB", 1)])
            case .activation(let f):
                switch f {
                case .relu: add("Relu", x, n, name: n)
                case .leakyRelu(let alpha): add("LeakyRelu", x, n, name: n, [.float("alpha", alpha)])
                case .sigmoid: add("Sigmoid", x, n, name: n)
                case .tanh: add("Tanh", x, n, name: n)
                case .swish:
                    add("Sigmoid", x, "\(n)_sigmoid", name: "\(n)_sigmoid")
                    add("Mul", [x[0], "\(n)_sigmoid"], n, name: n)
                case .elu(let alpha): add("Elu", x, n, name: n, [.float("alpha", alpha)])
                case .selu(let alpha, let gamma): add("Selu", x, n, name: n, [.float("alpha", alpha), .float("gamma", gamma)])
                case .softplus: add("Softplus", x, n, name: n)
                case .hardSigmoid(let alpha, let beta):
                    add("HardSigmoid", x, n, name: n, [.float("alpha", alpha), .float("beta", beta)])
                case .hardSwish: add("HardSwish", x, n, name: n)
                case .clip(let low, let high):
                    let lo = scalar("\(n)_min", Float(low)), hi = scalar("\(n)_max", Float(high))
                    add("Clip", x + [lo, hi], n, name: n)
                case .affine(let scale, let shift):
                    let s = scalar("\(n)_scale", Float(scale)), b = scalar("\(n)_shift", Float(shift))
                    add("Mul", [x[0], s], "\(n)_scaled", name: "\(n)_scaled")
                    add("Add", ["\(n)_scaled", b], n, name: n)
                }
            case .prelu:
                add("PRelu", x + ["\(n).weight"], n, name: n)
            case .add:
                add(x.count == 2 ? "Add" : "Sum", x, n, name: n)
            case .binary(let op):
                let onnxOp: String
                switch op {
                case .mul: onnxOp = "Mul"
                case .sub: onnxOp = "Sub"
                case .div: onnxOp = "Div"
                }
                var operand = x[1]
                if inputShapes[1].rank != inputShapes[0].rank {
                    // One value per sample: [N, 1, ..., 1] of the first operand's rank, so that
                    // ONNX's right-aligned broadcasting spreads it over the whole sample.
                    operand = "\(n)_operand"
                    let shape = "\(n)_operand_shape"
                    proto.initializer.append(.int64(name: shape, dims: [inputShapes[0].rank + 1],
                                                    values: [-1] + Array(repeating: 1, count: inputShapes[0].rank)))
                    add("Reshape", [x[1], shape], operand, name: operand)
                }
                add(onnxOp, [x[0], operand], n, name: n)
            case .dropout(let rate):
                add("Dropout", x + [scalar("\(n)_ratio", Float(rate))], n, name: n)
            case .maxPool(let a), .avgPool(let a):
                var attributes: [Onnx_AttributeProto] = [
                    .ints("kernel_shape", [a.kernel.h, a.kernel.w]), .ints("strides", [a.stride.h, a.stride.w]),
                    .ints("pads", [a.padding.top, a.padding.left, a.padding.bottom, a.padding.right]),
                    .int("ceil_mode", a.ceilMode ? 1 : 0),
                ]
                if case .avgPool = node.op {
                    attributes.append(.int("count_include_pad", a.countIncludePad ? 1 : 0))
                    add("AveragePool", x, n, name: n, attributes)
                } else {
                    add("MaxPool", x, n, name: n, attributes)
                }
            case .globalAvgPool: add("GlobalAveragePool", x, n, name: n)
            case .globalMaxPool: add("GlobalMaxPool", x, n, name: n)
            case .lrn(let a):
                guard a.size % 2 == 1 else {
                    problems.append("lrn '\(n)' has even size=\(a.size); ONNX centers an even window differently")
                    return
                }
                add("LRN", x, n, name: n, [.int("size", a.size), .float("alpha", a.alpha), .float("beta", a.beta), .float("bias", a.k)])
            case .batchNorm(let a):
                add("BatchNormalization", x + ["weight", "bias", "running_mean", "running_var"].map { "\(n).\($0)" }, n, name: n,
                    [.float("epsilon", a.epsilon), .float("momentum", 1 - a.momentum)])
            case .flatten: add("Flatten", x, n, name: n, [.int("axis", 1)])
            case .concat: add("Concat", x, n, name: n, [.int("axis", 1)])
            case .shuffle(let groups):
                // PyTorch's channel_shuffle: view as [N, G, C/G, H, W], swap 1 and 2, view back.
                let s = inputShapes[0]
                proto.initializer.append(.int64(name: "\(n)_grouped_shape", dims: [5],
                                                values: [-1, groups, s.c / groups, s.h, s.w]))
                proto.initializer.append(.int64(name: "\(n)_shape", dims: [4], values: [-1, s.c, s.h, s.w]))
                add("Reshape", [x[0], "\(n)_grouped_shape"], "\(n)_grouped", name: "\(n)_grouped")
                add("Transpose", ["\(n)_grouped"], "\(n)_transposed", name: "\(n)_transposed", [.ints("perm", [0, 2, 1, 3, 4])])
                add("Reshape", ["\(n)_transposed", "\(n)_shape"], n, name: n)
            case .slice(let start, let end):
                for (key, v) in [("starts", start), ("ends", end), ("axes", 1)] {
                    proto.initializer.append(.int64(name: "\(n)_\(key)", dims: [1], values: [v]))
                }
                add("Slice", [x[0], "\(n)_starts", "\(n)_ends", "\(n)_axes"], n, name: n)
            case .upsample(let a):
                proto.initializer.append(.float(name: "\(n)_scales", dims: [4], values: [1, 1, Float(a.scale.h), Float(a.scale.w)]))
                switch a.mode {
                case .nearest:
                    add("Resize", [x[0], "", "\(n)_scales"], n, name: n, [
                        .string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"),
                        .string("nearest_mode", "floor"),
                    ])
                case .bilinear:
                    add("Resize", [x[0], "", "\(n)_scales"], n, name: n, [
                        .string("mode", "linear"),
                        .string("coordinate_transformation_mode", a.alignCorners ? "align_corners" : "half_pixel"),
                    ])
                }
            case .pad(let a):
                let p = a.padding
                proto.initializer.append(.int64(name: "\(n)_pads", dims: [8], values: [
                    0, a.channelsBefore, p.top, p.left, 0, a.channelsAfter, p.bottom, p.right]))
                add("Pad", [x[0], "\(n)_pads", scalar("\(n)_value", Float(a.value))], n, name: n,
                    [.string("mode", a.mode.rawValue)])
            case .softmax: add("Softmax", x, n, name: n, [.int("axis", 1)])
            case .logSoftmax: add("LogSoftmax", x, n, name: n, [.int("axis", 1)])
            }
        }
    }
}

extension Onnx_AttributeProto {
    static func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .int; a.i = Int64(v)
        return a
    }

    static func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .ints; a.ints = v.map(Int64.init)
        return a
    }

    static func string(_ name: String, _ v: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .string; a.s = Data(v.utf8)
        return a
    }

    static func float(_ name: String, _ v: Double) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .float; a.f = Float(v)
        return a
    }
}
