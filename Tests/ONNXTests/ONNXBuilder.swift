// Tiny ONNX models written from the tests with the generated protobuf types, so a test states
// its whole model next to its assertions (no generated file to keep in step).

import CNNCIR
import Foundation
@testable import CNNCFrontend

/// Builds one ONNX graph node by node.
struct ONNXBuilder {
    var graph = Onnx_GraphProto()
    var opset: Int

    init(opset: Int = 17) { self.opset = opset; graph.name = "tiny" }

    /// A float input; the batch (first) dimension is the symbolic `N`.
    mutating func input(_ name: String, _ dims: [Int]) {
        graph.input.append(Self.valueInfo(name, dims))
    }

    mutating func output(_ name: String, _ dims: [Int] = []) {
        graph.output.append(Self.valueInfo(name, dims))
    }

    /// A float initializer with seeded values in [-scale, scale) (or the values given).
    @discardableResult
    mutating func initializer(_ name: String, _ dims: [Int], scale: Float = 0.5, offset: Float = 0,
                              values: [Float]? = nil) -> String {
        let count = dims.reduce(1, *)
        let data = values ?? (0..<count).map { i in
            offset + scale * Float(SeededInit.uniform(seed: 11, name: name, index: i) * 2 - 1)
        }
        graph.initializer.append(.float(name: name, dims: dims, values: data))
        return name
    }

    mutating func ints(_ name: String, _ values: [Int]) -> String {
        graph.initializer.append(.int64(name: name, dims: [values.count], values: values))
        return name
    }

    mutating func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [Onnx_AttributeProto] = [],
                       name: String? = nil) {
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = name ?? output
        n.input = inputs
        n.output = [output]
        n.attribute = attributes
        graph.node.append(n)
    }

    func data() throws -> Data {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.producerName = "cnnc tests"
        var id = Onnx_OperatorSetIdProto()
        id.version = Int64(opset)
        model.opsetImport = [id]
        model.graph = graph
        return try model.serializedData()
    }

    func load(_ file: String = "tiny.onnx") throws -> Result<ONNXModel, DiagnosticList> {
        ONNXFrontend.importModel(try data(), path: file)
    }

    private static func valueInfo(_ name: String, _ dims: [Int]) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = ONNXDataType.float.rawValue
        tensor.shape.dim = dims.enumerated().map { i, d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if i == 0 { dim.dimParam = "N" } else { dim.dimValue = Int64(d) }
            return dim
        }
        info.type.tensorType = tensor
        return info
    }
}
