// `cnnc train model.onnx` starts from the model's initializers (batch-norm statistics
// included), and float initializers that are no parameter are noted, not rejected. The model
// is written here with ONNXBuilder.

import CNNCDriver
@testable import CNNCFrontend

import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class ONNXTrainingTests: XCTestCase {
    /// A tiny model with batch norm (non-trivial statistics), a Dropout whose ratio and a Clip
    /// whose bounds are float initializers that are no parameters.
    func trainableModel() -> ONNXBuilder {
        var b = ONNXBuilder(opset: 13)
        b.input("x", [1, 2, 4, 4])
        b.node("Conv", ["x", b.initializer("conv.weight", [3, 2, 3, 3]), b.initializer("conv.bias", [3], scale: 0.1)], "c",
               [.ints("pads", [1, 1, 1, 1])])
        b.node("BatchNormalization", ["c", b.initializer("bn.weight", [3], scale: 0.3, offset: 1),
                                      b.initializer("bn.bias", [3], scale: 0.2), b.initializer("bn.running_mean", [3], scale: 0.3),
                                      b.initializer("bn.running_var", [3], scale: 0.4, offset: 1)], "n",
               [.float("epsilon", 1e-5), .float("momentum", 0.9)])
        b.node("Clip", ["n", b.initializer("clip_min", [], values: [0]), b.initializer("clip_max", [], values: [6])], "r")
        b.node("Dropout", ["r", b.initializer("ratio", [], values: [0.25])], "d")
        b.node("GlobalAveragePool", ["d"], "g")
        b.node("Flatten", ["g"], "f")
        b.node("Gemm", ["f", b.initializer("fc.weight", [3, 3]), b.initializer("fc.bias", [3], scale: 0.1)], "logits",
               [.int("transB", 1)])
        b.output("logits", [1, 3])
        return b
    }

    func testConstantInitializersAreNotWeights() throws {
        guard case .success(let m) = try trainableModel().load() else { return XCTFail("the model does not import") }
        XCTAssertEqual(m.constantInitializers, ["clip_min", "clip_max", "ratio"])
        XCTAssertEqual(m.weights.count, 8)
        let dir = try WorkDirectory(prefix: "cnnc-onnx-constants")
        defer { dir.cleanup() }
        let path = "\(dir.path)/tiny.onnx"
        try trainableModel().data().write(to: URL(fileURLWithPath: path))
        let loaded = try ModelLoader.load(path)
        XCTAssertEqual(loaded.constantInitializers, m.constantInitializers)
        XCTAssertEqual(TrainCommand.modelWeightsReport(loaded), """
            starting from the weights in \(path) (8 tensors, batch-norm statistics included)
            note: ignoring 3 float initializers that are no parameter (constants of the graph): 'clip_min', 'clip_max', 'ratio'

            """)
    }

    /// `cnnc train model.onnx` starts from the initializers: its first step's loss is the
    /// interpreter's on those weights (not on the seeded initialization), and the running
    /// statistics it saves move from the model's, not from 0 and 1.
    func testTrainingStartsFromTheInitializers() throws {
        let dir = try WorkDirectory(prefix: "cnnc-onnx-train")
        defer { dir.cleanup() }
        let path = "\(dir.path)/tiny.onnx"
        try trainableModel().data().write(to: URL(fileURLWithPath: path))
        let model = try ModelLoader.load(path)
        let graph = model.graph
        let x = SeededData.input(name: "x", shape: [4, 2, 4, 4], seed: 9)
        let labels = [0, 2, 1, 2]
        try NumpyFile.write(FloatArray(shape: x.shape, data: x.data.map { Float($0) }), to: "\(dir.path)/x.npy")
        try NumpyFile.writeLabels(labels, to: "\(dir.path)/y.npy")
        var o = TrainOptions()
        o.data = "\(dir.path)/x.npy"; o.labels = "\(dir.path)/y.npy"
        o.epochs = 1; o.batch = 4; o.steps = 1; o.shuffle = false; o.lr = 0.1; o.momentum = 0.9
        o.log = "\(dir.path)/log.csv"; o.save = "\(dir.path)/after.safetensors"
        XCTAssertEqual(try TrainCommand.run(model, options: o), 0)

        let rows = try String(contentsOfFile: "\(dir.path)/log.csv", encoding: .utf8).split(separator: "\n")
        let cLoss = Double(rows.last!.split(separator: ",", omittingEmptySubsequences: false)[2])!
        let sgd = SGDConfig(learningRate: 0.1, momentum: 0.9, weightDecay: 0, nesterov: false)
        func firstStep(_ parameters: [String: Tensor]) throws -> TrainingStepResult {
            try Interpreter(graph: graph, parameters: parameters)
                .trainingStep(inputs: ["x": x], labels: labels, step: 0, seed: o.seed, sgd: sgd, velocity: [:])
        }
        let own = model.weights!.mapValues { Tensor(shape: $0.shape, data: $0.data.map(Double.init)) }
        let fromInitializers = try firstStep(own)
        let fromSeed = try firstStep(Weights.seeded(graph, seed: o.seed))
        XCTAssertEqual(cLoss, fromInitializers.loss, accuracy: 1e-5 * max(1, fromInitializers.loss))
        XCTAssertGreaterThan(abs(cLoss - fromSeed.loss), 1e-3, "the seeded initialization gives the same loss: the test is blind")

        let saved = try SafetensorsFile.read("\(dir.path)/after.safetensors")
        let bn = model.graph.nodes.first { if case .batchNorm = $0.op { return true } else { return false } }!.name
        for role in ["running_mean", "running_var"] {
            let expected = fromInitializers.updatedParameters["\(bn).\(role)"]!.data
            let got = saved["\(bn).\(role)"]!.data
            for (a, e) in zip(got, expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-5, role) }
        }
    }
}
