// The ONNX frontend's entry points: read a `.onnx` file safely, decode the protobuf, import
// the graph into cnnc's IR (ONNXImporter) and verify it, or return every problem found.
// docs/onnx.md lists the supported operators and how each maps onto cnnc's ops.

import CNNCIR
import Foundation
import SwiftProtobuf

/// An imported ONNX model: the verified graph, its weights under cnnc's parameter names, and
/// which ONNX initializer became which parameter.
public struct ONNXModel: Sendable {
    public var graph: Graph
    /// Every parameter of `graph` by its cnnc name (`conv1.weight`, `bn1.running_var`).
    public var weights: [String: WeightTensor]
    /// ONNX initializer (or constant) name to cnnc parameter name, in import order. A
    /// parameter computed from several constants (a Gemm weight scaled by alpha, a MatMul
    /// weight transposed) lists the initializer it came from.
    public var parameterNames: [(onnx: String, cnnc: String)]
    /// The opset of the default ONNX domain the model imports.
    public var opset: Int
    /// Float initializers that are no parameter of `graph` (a Dropout's ratio, Clip's bounds:
    /// folded into the graph as constants; or read only by nodes no output needs), in file
    /// order. They are not weights: nothing loads or trains them.
    public var constantInitializers: [String] = []
}

/// Reads ONNX models into graphs.
public enum ONNXFrontend {
    /// The largest `.onnx` file `load` accepts (ONNX's own protobuf limit).
    public static let maxFileSize = 2 << 30

    /// The oldest default-domain opset imported.
    public static let minimumOpset = 7

    /// The ONNX operators the importer understands (default domain).
    public static var supportedOperators: [String] { ONNXImporter.handlers.keys.sorted() }

    /// Reads, decodes and imports the model at `path`.
    public static func load(path: String) -> Result<ONNXModel, DiagnosticList> {
        func failure(_ message: String) -> Result<ONNXModel, DiagnosticList> {
            .failure(DiagnosticList([.error(message)]))
        }
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return failure("cannot read '\(path)': no such file")
        }
        guard !isDirectory.boolValue else { return failure("cannot read '\(path)': it is a directory") }
        let data: Data
        do {
            data = Data(try InputFile.read(path, limit: maxFileSize))
        } catch let e as InputFileError where e.tooLarge {
            return failure("'\(path)' is larger than the 2 GiB ONNX limit")
        } catch {
            return failure("\(error)")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return importModel(data, path: path, baseDirectory: base)
    }

    /// Decodes and imports a serialized ModelProto; `path` names it in messages and gives the
    /// network its name.
    public static func importModel(_ data: Data, path: String, baseDirectory: String? = nil) -> Result<ONNXModel, DiagnosticList> {
        let file = URL(fileURLWithPath: path).lastPathComponent
        guard !data.isEmpty else { return .failure(DiagnosticList([.error("'\(file)' is empty, not an ONNX model")])) }
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            model = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            return .failure(DiagnosticList([.error(
                "'\(file)' is not an ONNX model (protobuf decoding failed: \(describe(error)); truncated or not ONNX?)")]))
        }
        guard model.irVersion > 0, model.hasGraph, !model.graph.output.isEmpty else {
            return .failure(DiagnosticList([.error(
                "'\(file)' is not an ONNX model (no ir_version or no graph with outputs)")]))
        }
        var importer = ONNXImporter(model: model, file: file, baseDirectory: baseDirectory,
                                    networkName: NetFrontend.defaultNetworkName(forPath: path))
        return importer.run()
    }

    private static func describe(_ error: Error) -> String {
        if let e = error as? BinaryDecodingError {
            switch e {
            case .truncated: return "truncated data"
            case .malformedProtobuf: return "malformed protobuf"
            case .invalidUTF8: return "invalid UTF-8 in a string"
            case .messageDepthLimit: return "messages nested too deeply"
            default: return "\(e)"
            }
        }
        return "\(error)"
    }
}
