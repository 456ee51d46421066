// ONNX import: small models built with the onnx helper API (tools/onnx/make_fixtures.py)
// against ONNX Runtime's outputs stored beside them; the generated C against the interpreter
// on imported models; clear errors for broken files; export and re-import.

import CNNCDriver
@testable import CNNCFrontend

import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

/// The fixtures folder, found from this file's path.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// Outputs of ONNX Runtime and cnnc's interpreter differ by float32 rounding of different
/// summation orders: 1e-4 relative to the largest output (at least 1) is far below any
/// semantic mismatch.
let runtimeTolerance = 1e-4

final class ONNXImportTests: XCTestCase {
    func importFixture(_ name: String) throws -> ONNXModel {
        switch ONNXFrontend.load(path: "\(fixtures)/\(name).onnx") {
        case .success(let m): return m
        case .failure(let list): throw XCTSkip("import failed: \(list)")  // reported by the caller's assertions
        }
    }

    /// Runs the fixture's input through the interpreter with the imported weights and compares
    /// with ONNX Runtime's output.
    func assertMatchesRuntime(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = ONNXFrontend.load(path: "\(fixtures)/\(name).onnx")
        guard case .success(let model) = result else {
            return XCTFail("\(name): \(result)", file: file, line: line)
        }
        let input = try NumpyFile.read("\(fixtures)/\(name).input.npy")
        let expected = try NumpyFile.read("\(fixtures)/\(name).expected.npy")
        let parameters = model.weights.mapValues { Tensor(shape: $0.shape, data: $0.data.map(Double.init)) }
        let interpreter = try Interpreter(graph: model.graph, parameters: parameters)
        let inputName = model.graph.inputs[0].name
        let output = try interpreter.outputs([inputName: Tensor(shape: input.shape, data: input.data.map(Double.init))])[0]
        XCTAssertEqual(output.shape, expected.shape, file: file, line: line)
        let scale = max(1, expected.data.map { abs(Double($0)) }.max() ?? 0)
        let worst = zip(output.data, expected.data).map { abs($0 - Double($1)) }.max() ?? 0
        XCTAssertLessThan(worst / scale, runtimeTolerance, "\(name): worst error \(worst)", file: file, line: line)
    }

    func testLeNetAsPyTorchExportsIt() throws {
        try assertMatchesRuntime("lenet")
        let model = try importFixture("lenet")
        // Shape arithmetic folded away: the Reshape became a flatten, which the dense does
        // itself; MatMul + Add is one dense.
        XCTAssertEqual(model.graph.nodes.map(\.op.keyword?.rawValue), [
            nil, "conv", "relu", "maxpool", "conv", "relu", "maxpool", "dense", "relu", "dense", "relu",
            "dense", "softmax",
        ])
        // PyTorch parameter names give the node names; the others are sanitized node names.
        XCTAssertNotNil(model.graph.node(named: "c1"))
        XCTAssertNotNil(model.graph.node(named: "f1"))
        XCTAssertNotNil(model.graph.node(named: "relu1_Relu"))
        XCTAssertTrue(model.parameterNames.contains { $0.onnx == "f2_w_t" && $0.cnnc == "f2_Gemm.weight" })
        XCTAssertTrue(model.parameterNames.contains { $0.onnx == "logits_b" && $0.cnnc == "logits_MatMul.bias" })
    }

    func testResNetStyleModel() throws {
        try assertMatchesRuntime("resnet")
        let model = try importFixture("resnet")
        XCTAssertEqual(model.graph.inputs[0].shape, Shape([3, 16, 16]))  // the dynamic batch is gone
        XCTAssertEqual(model.weights["stem_bn.running_var"]?.shape, [8])
        XCTAssertEqual(model.graph.node(named: "stem_bn")?.op, .batchNorm(BatchNormAttributes(epsilon: 1e-5, momentum: 0.1)))
    }

    func testMobileNetAndDenseNetStylePieces() throws {
        try assertMatchesRuntime("mobile")
        let graph = try importFixture("mobile").graph
        // Pad merged into the conv; x * sigmoid(x) is swish; Clip(0, 6) is relu6.
        guard case .conv(let stem)? = graph.node(named: "stem")?.op else { return XCTFail("no stem conv") }
        XCTAssertEqual(stem.padding, Padding(top: 1, left: 1, bottom: 1, right: 1))
        XCTAssertEqual(graph.node(named: "swish")?.op, .activation(.swish))
        XCTAssertNil(graph.node(named: "sig"))
        XCTAssertEqual(graph.node(named: "relu6")?.op, .activation(.clip(min: 0, max: 6)))
        XCTAssertEqual(graph.node(named: "gmp")?.op, .globalMaxPool)
        XCTAssertEqual(graph.node(named: "logp")?.op, .logSoftmax)
    }

    func testActivationsLRNAndCeilModePooling() throws {
        try assertMatchesRuntime("activations")
    }

    func testSqueezeExcitationAndArithmeticWithConstants() throws {
        try assertMatchesRuntime("squeeze_excitation")
        let model = try importFixture("squeeze_excitation")
        let ops = Dictionary(uniqueKeysWithValues: model.graph.nodes.map { ($0.name, $0.op) })
        XCTAssertEqual(ops["se"], .binary(.mul))
        XCTAssertEqual(model.graph.node(named: "se")?.inputs, ["c1", "gate"], "the broadcast operand goes second")
        XCTAssertEqual(ops["times_half"], .activation(.affine(scale: 0.5, shift: 0)))
        XCTAssertEqual(ops["plus_three"], .activation(.affine(scale: 1, shift: 3)))
        XCTAssertEqual(ops["over_six"], .activation(.affine(scale: 1.0 / 6, shift: 0)))
        XCTAssertEqual(ops["one_minus"], .activation(.affine(scale: -1, shift: 1)))
        XCTAssertEqual(ops["over_den"], .binary(.div))
        XCTAssertEqual(ops["centered"], .binary(.sub))
        // Per-channel constants: depthwise 1x1 convs holding them.
        XCTAssertEqual(ops["channel_scale"], .conv(ConvAttributes(filters: 8, kernel: Pair(1), groups: 8, bias: false, initializer: .torch)))
        XCTAssertEqual(model.weights["channel_shift.weight"]?.data, Array(repeating: 1, count: 8))
        XCTAssertTrue(model.parameterNames.contains { $0 == ("scale", "channel_scale.weight") })
        XCTAssertTrue(model.parameterNames.contains { $0 == ("shift", "channel_shift.bias") })
        // The generated C against the interpreter, inference at batch 1 and 3 and a training step.
        let loaded = try ModelLoader.load("\(fixtures)/squeeze_excitation.onnx")
        for batch in [1, 3] {
            var options = CheckOptions()
            options.batch = batch
            let (report, passed) = try Checker.check(loaded, options: options)
            XCTAssertTrue(passed, report)
            var train = TrainCheckOptions()
            train.batch = batch
            let (trainReport, trainPassed) = try TrainChecker.check(loaded, options: train)
            XCTAssertTrue(trainPassed, trainReport)
        }
    }

    func testChannelSplitShuffleAndSlice() throws {
        try assertMatchesRuntime("shuffle_split")
        let model = try importFixture("shuffle_split")
        XCTAssertEqual(model.graph.nodes.map(\.op.keyword?.rawValue), [
            nil, "conv", "slice", "slice", "relu", "concat", "shuffle", "slice", "global_avgpool", "dense",
        ])
        XCTAssertEqual(model.graph.node(named: "shuffle")?.op, .shuffle(groups: 2))
        XCTAssertEqual(model.graph.node(named: "tail")?.op, .slice(start: 3, end: 8), "INT64_MAX is the end")
        let loaded = try ModelLoader.load("\(fixtures)/shuffle_split.onnx")
        for batch in [1, 3] {
            var options = CheckOptions()
            options.batch = batch
            let (report, passed) = try Checker.check(loaded, options: options)
            XCTAssertTrue(passed, report)
        }
    }

    func testOptionAShortcutAndPaddingModes() throws {
        try assertMatchesRuntime("option_a")
        let model = try importFixture("option_a")
        XCTAssertEqual(model.graph.node(named: "subsample")?.op, .maxPool(PoolAttributes(kernel: Pair(1), stride: Pair(2))))
        XCTAssertEqual(model.graph.node(named: "shortcut")?.op, .pad(PadAttributes(channelsBefore: 2, channelsAfter: 2)))
        XCTAssertEqual(model.graph.node(named: "reflect")?.op, .pad(PadAttributes(padding: Padding(1, 1), mode: .reflect)))
        XCTAssertEqual(model.graph.node(named: "edge")?.op,
                       .pad(PadAttributes(padding: Padding(top: 2, left: 0, bottom: 0, right: 1), mode: .edge)))
        let loaded = try ModelLoader.load("\(fixtures)/option_a.onnx")
        for batch in [1, 3] {
            var options = CheckOptions()
            options.batch = batch
            let (report, passed) = try Checker.check(loaded, options: options)
            XCTAssertTrue(passed, report)
            var train = TrainCheckOptions()
            train.batch = batch
            let (trainReport, trainPassed) = try TrainChecker.check(loaded, options: train)
            XCTAssertTrue(trainPassed, trainReport)
        }
        // Export and back: the pads stay pad layers.
        let dir = try WorkDirectory(prefix: "cnnc-onnx-test")
        defer { dir.cleanup() }
        try ExportCommand.run(loaded, output: "\(dir.path)/option_a.onnx", weights: nil, seed: 3)
        let back = try ModelLoader.load("\(dir.path)/option_a.onnx")
        XCTAssertEqual(back.graph.nodes.map(\.op), loaded.graph.nodes.map(\.op).filter { $0 != .flatten })
    }

    func testResizeNearestIsUpsample() throws {
        try assertMatchesRuntime("upsample")
        let model = try importFixture("upsample")
        XCTAssertEqual(model.graph.node(named: "up")?.op, .upsample(UpsampleAttributes(scale: Pair(2))))
        XCTAssertEqual(model.graph.node(named: "up2")?.op, .upsample(UpsampleAttributes(scale: Pair(3, 1))))
        let loaded = try ModelLoader.load("\(fixtures)/upsample.onnx")
        for batch in [1, 3] {
            var options = CheckOptions()
            options.batch = batch
            let (report, passed) = try Checker.check(loaded, options: options)
            XCTAssertTrue(passed, report)
            var train = TrainCheckOptions()
            train.batch = batch
            let (trainReport, trainPassed) = try TrainChecker.check(loaded, options: train)
            XCTAssertTrue(trainPassed, trainReport)
        }
        let dir = try WorkDirectory(prefix: "cnnc-onnx-test")
        defer { dir.cleanup() }
        try ExportCommand.run(loaded, output: "\(dir.path)/upsample.onnx", weights: nil, seed: 3)
        XCTAssertEqual(try ModelLoader.load("\(dir.path)/upsample.onnx").graph.nodes.map(\.op),
                       loaded.graph.nodes.map(\.op).filter { $0 != .flatten })
    }

    func testGeneratedCMatchesTheInterpreterOnImportedModels() throws {
        for name in ["lenet", "mobile"] {
            let model = try ModelLoader.load("\(fixtures)/\(name).onnx")
            XCTAssertNotNil(model.weights)
            var options = CheckOptions()
            options.batch = 2
            let (report, passed) = try Checker.check(model, options: options)
            XCTAssertTrue(passed, report)
            XCTAssertTrue(report.contains("the model's weights"), report)
        }
    }

    func testNewOpsThroughTheGeneratedC() throws {
        let model = try ModelLoader.load("\(fixtures)/newops.net")
        let (report, passed) = try Checker.check(model, options: CheckOptions())
        XCTAssertTrue(passed, report)
    }

    // MARK: - Errors

    func importError(_ name: String) -> String {
        switch ONNXFrontend.load(path: "\(fixtures)/\(name).onnx") {
        case .success: return "no error"
        case .failure(let list): return list.description
        }
    }

    func testEveryUnsupportedNodeIsListedInOneError() {
        XCTAssertEqual(importError("unsupported"), """
            error: 'unsupported.onnx' has 3 unsupported nodes:
              'erf_1' (Erf, opset 13): no cnnc equivalent
              'transpose_1' (Transpose, opset 13): Transpose with perm [0, 1, 3, 2] of [1, 4, 6, 6]; cnnc transposes only the channel groups of a channel shuffle (Reshape to [N, G, C/G, H, W], perm [0, 2, 1, 3, 4], Reshape back) (downstream of 'erf_1')
              'sin_1' (Sin, opset 13): no cnnc equivalent (downstream of 'erf_1')
            """)
    }

    func testBrokenFilesGiveClearErrors() {
        XCTAssertEqual(importError("truncated"),
                       "error: 'truncated.onnx' is not an ONNX model (protobuf decoding failed: truncated data; truncated or not ONNX?)")
        XCTAssertTrue(importError("not_onnx").hasPrefix("error: 'not_onnx.onnx' is not an ONNX model"), importError("not_onnx"))
        XCTAssertEqual(importError("missing_initializer"),
                       "error: node 'conv_missing' (Conv) reads 'w_missing', which no node, input or initializer defines (missing initializer?)")
        XCTAssertEqual(importError("contradiction"),
                       "error: node 'conv_bad' (Conv): weight 'w' has shape [4, 5, 3, 3], expected 3 input channels per group from input of shape [1, 3, 8, 8]")
        XCTAssertEqual(importError("no_such_file"), "error: cannot read '\(fixtures)/no_such_file.onnx': no such file")
    }

    func testEveryPrefixOfAModelFailsCleanly() throws {
        // Truncation anywhere is an error, never a crash.
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/resnet.onnx"))
        for length in stride(from: 0, to: data.count, by: max(1, data.count / 97)) {
            if case .success = ONNXFrontend.importModel(data.prefix(length), path: "cut.onnx") {
                XCTFail("a \(length)-byte prefix imported")
            }
        }
        // Flipped bytes: errors or (rarely) another valid model, never a crash.
        var bytes = [UInt8](data)
        for i in stride(from: 7, to: bytes.count, by: 131) { bytes[i] ^= 0x5A }
        _ = ONNXFrontend.importModel(Data(bytes), path: "flipped.onnx")
    }

    // MARK: - Export

    func testExportReimportsToTheSameGraphAndWeights() throws {
        let model = try ModelLoader.load("\(fixtures)/newops.net")
        let dir = try WorkDirectory(prefix: "cnnc-onnx-test")
        defer { dir.cleanup() }
        let path = "\(dir.path)/newops.onnx"
        try ExportCommand.run(model, output: path, weights: nil, seed: 3)
        let back = try ModelLoader.load(path)
        // The same ops in the same order, under the same names.
        XCTAssertEqual(back.graph.nodes.map(\.name), model.graph.nodes.map(\.name))
        XCTAssertEqual(back.graph.nodes.map(\.op), model.graph.nodes.map(\.op))
        let seeded = Weights.seeded(model.graph, seed: 3)
        for (name, t) in seeded {
            XCTAssertEqual(back.weights?[name]?.data, t.data.map { Float($0) }, name)
        }
    }

    func testNamesAreSanitizedAndUnique() {
        XCTAssertEqual(ONNXNames.sanitize("/layer1/layer1.0/conv1/Conv"), "layer1_0_conv1_Conv")
        XCTAssertEqual(ONNXNames.sanitize("input.1"), "input_1")
        XCTAssertEqual(ONNXNames.sanitize("0"), "n0")
        XCTAssertEqual(ONNXNames.sanitize("::"), "")
        var names = NameAllocator()
        XCTAssertEqual(names.allocate("a.b", fallback: "x"), "a_b")
        XCTAssertEqual(names.allocate("a/b", fallback: "x"), "a_b_2")
        XCTAssertEqual(names.allocate("", fallback: "Relu"), "Relu")
        XCTAssertTrue(isValidName(names.allocate(String(repeating: "é", count: 300), fallback: "y")))
    }
}
