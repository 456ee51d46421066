// The ops added for torchvision's models end to end. The broadcasting element-wise ops
// (mul, sub, div) and affine: a network with a squeeze-and-excitation gate (global pool -> 1x1 conv -> relu -> 1x1 conv -> hardsigmoid ->
// mul), a per-sample sub, a per-channel div and affine through `cnnc check` (generated C
// against the interpreter, 1 vs 2 threads bitwise) at batch 1 and 3, unoptimized, under the
// sanitizers, and through `check --train`. Channel slice and shuffle: ShuffleNet units the
// same way, and both through ONNX export and back.

import CNNCDriver
import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class TorchvisionOpsTests: XCTestCase {
    static let source = """
    network se
    input image shape=3x16x16
    conv c1 filters=16 size=3 pad=1
    relu r1
    global_avgpool pool
    conv squeeze filters=4 size=1
    affine scale=2 shift=-0.5               # fused into the conv's epilogue
    relu
    conv expand filters=16 size=1
    hardsigmoid gate
    mul scaled from=r1,gate                 # 16x16x16 times 16x1x1: one gate per channel
    affine half scale=0.5 shift=0.25
    conv c2 filters=8 size=3 stride=2 pad=1
    dense m from=c2 units=1
    sub centered from=c2,m                  # one value per sample
    global_avgpool p2 from=c2
    sigmoid g2
    affine one shift=1
    div divided from=centered,one           # per channel, divisors in (1, 2)
    global_avgpool p3 from=divided
    flatten
    dense logits units=10
    """

    func model() throws -> LoadedModel {
        let dir = try temporaryDirectory()
        try Self.source.write(toFile: "\(dir)/se.net", atomically: true, encoding: .utf8)
        return try ModelLoader.load("\(dir)/se.net")
    }

    func testInferenceAtBatch1And3UnoptimizedAndSanitized() throws {
        let model = try model()
        try assertChecksPass(model, [(1, true, false), (3, true, false), (3, false, false), (2, true, true)])
    }

    func testTrainingStepAtBatch1And3() throws {
        let model = try model()
        try assertTrainChecksPass(model, batches: [1, 3])
    }

    func testIRTextRoundTripAndEveryLayoutOpThroughCheck() throws {
        let graph = try model().graph
        let text = graph.irText()
        guard case .success(let parsed) = Graph.parseIR(text) else { return XCTFail("does not parse:\n\(text)") }
        XCTAssertEqual(parsed.irText(), text)
        XCTAssertTrue(text.contains("scaled = mul(r1, gate)"), text)
        XCTAssertTrue(text.contains("half = affine(scaled) scale=0.5 shift=0.25"), text)
        // Every op added for torchvision's models, with attributes other than the defaults:
        // printed, parsed back to the same ops, printed identically.
        let dir = try temporaryDirectory()
        try """
        network layout
        input x shape=8x6x6
        shuffle s groups=4
        slice a from=s start=2 end=7
        pad p from=a pad=1,2,0,1 channels_before=1 channels_after=2 value=0.5
        pad e from=x pad=2 mode=edge
        pad r from=x pad=1x2 mode=reflect
        upsample u from=x scale=2x3
        div d from=x,x
        sub m from=x,x
        output p,e,r,u,d,m
        """.write(toFile: "\(dir)/layout.net", atomically: true, encoding: .utf8)
        let layout = try ModelLoader.load("\(dir)/layout.net").graph
        let layoutText = layout.irText()
        guard case .success(let back) = Graph.parseIR(layoutText) else { return XCTFail("does not parse:\n\(layoutText)") }
        XCTAssertEqual(back.nodes.map(\.op), layout.nodes.map(\.op))
        XCTAssertEqual(back.irText(), layoutText)
        XCTAssertEqual(layout.node(named: "p")?.op, .pad(PadAttributes(
            padding: Padding(top: 1, left: 2, bottom: 0, right: 1), channelsBefore: 1, channelsAfter: 2, value: 0.5)))
        XCTAssertEqual(layout.node(named: "p")?.shape, Shape([8, 7, 9]))
        XCTAssertEqual(layout.node(named: "u")?.shape, Shape([8, 12, 18]))
        // And through the generated C: every output at batch 1 and 3, under the sanitizers.
        let model = try ModelLoader.load("\(dir)/layout.net")
        for (batch, sanitize) in [(1, false), (3, false), (2, true)] {
            var options = CheckOptions()
            options.batch = batch
            options.sanitize = sanitize
            let (report, passed) = try Checker.check(model, options: options)
            XCTAssertTrue(passed, "batch \(batch) sanitize \(sanitize):\n\(report)")
        }
    }

    /// ShuffleNet's units: channel split by slices, one half transformed, concatenated (the
    /// slice and the conv write into the concat's buffer), shuffled; again with a stride.
    static let shuffleSource = """
    network shuffleunit
    input image shape=3x12x12
    conv stem filters=8 size=3 pad=1
    relu r0
    slice left from=r0 end=4
    slice right from=r0 start=4 end=8
    conv pw1 from=right filters=4 size=1
    relu
    conv dw filters=4 size=3 pad=1 groups=4
    conv pw2 filters=4 size=1
    relu r2
    concat cat from=left,r2
    shuffle mixed groups=2
    slice a from=mixed end=4
    slice b from=mixed start=4 end=8
    conv pw3 from=b filters=4 size=1 stride=2
    relu r3
    maxpool pa from=a size=2
    concat cat2 from=pa,r3
    shuffle mixed2 groups=4
    global_avgpool
    flatten
    dense logits units=5
    """

    func testShuffleAndSliceThroughCheckAndTraining() throws {
        let dir = try temporaryDirectory()
        try Self.shuffleSource.write(toFile: "\(dir)/shuffle.net", atomically: true, encoding: .utf8)
        let model = try ModelLoader.load("\(dir)/shuffle.net")
        try assertChecksPass(model, [(1, true, false), (3, true, false), (2, false, false), (2, true, true)])
        try assertTrainChecksPass(model, batches: [1, 3])
        // Export: Reshape + Transpose + Reshape and Slice, which import back as shuffle and slice.
        try ExportCommand.run(model, output: "\(dir)/shuffle.onnx", weights: nil, seed: 3)
        let back = try ModelLoader.load("\(dir)/shuffle.onnx")
        // (The flatten before the dense is the dense's own on the way back.)
        XCTAssertEqual(back.graph.nodes.map(\.op), model.graph.nodes.map(\.op).filter { $0 != .flatten })
    }

    func testExportToONNXAndBackComputesTheSame() throws {
        // mul, sub, div become ONNX Mul, Sub, Div (a per-sample operand reshaped to [N, 1, 1, 1]);
        // affine becomes Mul + Add of scalars, which import back as two affines.
        let model = try model()
        let dir = try temporaryDirectory()
        try ExportCommand.run(model, output: "\(dir)/se.onnx", weights: nil, seed: 3)
        let back = try ModelLoader.load("\(dir)/se.onnx")
        let ops = back.graph.nodes.map { $0.op.keyword?.rawValue ?? "input" }
        XCTAssertEqual(ops.filter { ["mul", "sub", "div"].contains($0) }, ["mul", "sub", "div"])
        let x = SeededData.input(name: "image", shape: [3, 3, 16, 16], seed: 4)
        let seeded = Weights.seeded(model.graph, seed: 3)
        let expected = try Interpreter(graph: model.graph, parameters: seeded).outputs(["image": x])[0]
        let parameters = try XCTUnwrap(back.weights).mapValues { Tensor(shape: $0.shape, data: $0.data.map(Double.init)) }
        let actual = try Interpreter(graph: back.graph, parameters: parameters).outputs(["image": x])[0]
        XCTAssertEqual(actual.shape, expected.shape)
        for (a, e) in zip(actual.data, expected.data) { XCTAssertEqual(a, e, accuracy: 1e-5) }
    }
}
