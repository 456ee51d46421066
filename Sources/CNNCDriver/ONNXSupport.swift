// ONNX in the driver: loading `.onnx` files (with their initializers as the model's
// weights) and `cnnc export`, which writes a graph and its weights as an ONNX model.

import CNNCFrontend
import CNNCIR
import CNNCInterpreter
import Foundation

extension ModelLoader {
    /// Loads an ONNX model; its initializers become `LoadedModel.weights` under cnnc's names.
    static func loadONNX(_ path: String) throws -> LoadedModel {
        switch ONNXFrontend.load(path: path) {
        case .success(let model):
            let weights = model.weights.mapValues { FloatArray(shape: $0.shape, data: $0.data) }
            return LoadedModel(graph: model.graph, path: path, source: nil, weights: weights,
                               constantInitializers: model.constantInitializers)
        case .failure(let list):
            throw render(list.diagnostics, nil)
        }
    }
}

extension LoadedModel {
    /// Writes the weights that came with the model as safetensors, in parameter order, and
    /// returns the path; nil when the model has none.
    public func writeWeights(to path: String) throws -> String? {
        guard let weights else { return nil }
        let tensors = graph.parameters().compactMap { spec in weights[spec.name].map { (name: spec.name, array: $0) } }
        try SafetensorsFile.write(tensors, to: path)
        return path
    }
}

public enum ExportCommand {
    /// Writes `model` as ONNX to `output`, with the weights from `weights` (safetensors), the
    /// model's own, or seeded initialization.
    public static func run(_ model: LoadedModel, output: String, weights: String?, seed: UInt64) throws {
        let graph = model.graph
        var values: [String: WeightTensor] = [:]
        if let path = weights {
            for (name, a) in try SafetensorsFile.read(path, skipping: SafetensorsFile.isSkippedByWeightLoaders) {
                values[name] = WeightTensor(shape: a.shape, data: a.data)
            }
            let expected = Set(graph.parameters().map(\.name))
            let extra = values.keys.filter { !expected.contains($0) }.sorted()
            guard extra.isEmpty else {
                throw DriverError("error: '\(path)' has tensors that are not parameters of '\(graph.name)': \(extra.joined(separator: ", "))")
            }
        } else if let own = model.weights {
            values = own.mapValues { WeightTensor(shape: $0.shape, data: $0.data) }
        } else {
            for (name, t) in Weights.seeded(graph, seed: seed) { values[name] = WeightTensor(shape: t.shape, data: t.data.map { Float($0) }) }
        }
        let data: Data
        do { data = try ONNXExporter.export(graph, weights: values) } catch { throw DriverError("error: \(error)") }
        try OutputFile.write(data, to: output)
    }
}

/// The opset `cnnc export` writes, for the CLI's help text.
public enum ONNXExportOpset {
    public static let value = ONNXExporter.opset
}
