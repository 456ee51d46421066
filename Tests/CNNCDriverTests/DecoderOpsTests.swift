// The decoder ops end to end: conv_transpose (stride with output_pad, grouped and dilated
// without bias) and bilinear upsample (half-pixel and align_corners) next to pad's edge and
// reflect modes, through `cnnc check` (generated C against the interpreter, 1 vs 2 threads
// bitwise) at batch 1 and 3, unoptimized and under the sanitizers, through `check --train`,
// through the IR text and through ONNX export and back; and a seeded sweep of conv_transpose
// geometries through the C forward and the training step.

import CNNCDriver
import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class DecoderOpsTests: XCTestCase {
    static let source = """
    network decoder
    input image shape=3x8x8
    conv down filters=8 size=3 stride=2 pad=1             # 8x4x4
    relu r0
    conv_transpose up filters=6 size=3 stride=2 pad=1 output_pad=1   # 6x8x8
    relu r1
    pad mirrored pad=1 mode=reflect                       # 6x10x10
    deconv grouped filters=6 size=3 dilation=2 pad=2 groups=3 bias=false   # 6x10x10
    upsample smooth scale=2 mode=bilinear                 # 6x20x20
    pad edged pad=1,0,0,1 mode=edge                       # 6x21x21
    conv c2 filters=4 size=3 stride=2                     # 4x10x10
    relu r2
    upsample corners scale=2x3 mode=bilinear align_corners=true   # 4x20x30
    conv_transpose shrink filters=4 size=4 stride=2 pad=3 # 4x36x56
    global_avgpool pool
    flatten
    dense logits units=5
    """

    func model() throws -> LoadedModel {
        let dir = try temporaryDirectory()
        try Self.source.write(toFile: "\(dir)/decoder.net", atomically: true, encoding: .utf8)
        return try ModelLoader.load("\(dir)/decoder.net")
    }

    func testShapesAndIRTextRoundTrip() throws {
        let graph = try model().graph
        XCTAssertEqual(graph.node(named: "up")?.shape, Shape([6, 8, 8]))
        XCTAssertEqual(graph.node(named: "grouped")?.shape, Shape([6, 10, 10]))
        XCTAssertEqual(graph.node(named: "corners")?.shape, Shape([4, 20, 30]))
        XCTAssertEqual(graph.node(named: "shrink")?.shape, Shape([4, 36, 56]))
        let specs = graph.parameters().filter { $0.node == "grouped" || $0.node == "up" }.map { "\($0.name) \($0.shape)" }
        XCTAssertEqual(specs, ["up.weight [8, 6, 3, 3]", "up.bias [6]", "grouped.weight [6, 2, 3, 3]"])
        let text = graph.irText()
        XCTAssertTrue(text.contains("up = conv_transpose(r0) filters=6 size=3 stride=2 pad=1 output_pad=1 dilation=1 groups=1 bias=true"), text)
        XCTAssertTrue(text.contains("smooth = upsample(grouped) scale=2 mode=bilinear align_corners=false"), text)
        guard case .success(let parsed) = Graph.parseIR(text) else { return XCTFail("does not parse:\n\(text)") }
        XCTAssertEqual(parsed.irText(), text)
    }

    func testInferenceAtBatch1And3UnoptimizedAndSanitized() throws {
        let model = try model()
        try assertChecksPass(model, [(1, true, false), (3, true, false), (2, false, false), (2, true, true)])
    }

    func testTrainingStepAtBatch1And3() throws {
        let model = try model()
        try assertTrainChecksPass(model, batches: [1, 3])
    }

    func testExportToONNXAndBackComputesTheSame() throws {
        // conv_transpose becomes ConvTranspose, bilinear upsample Resize (linear, half_pixel or
        // align_corners): both import back as the same ops.
        let model = try model()
        let dir = try temporaryDirectory()
        try ExportCommand.run(model, output: "\(dir)/decoder.onnx", weights: nil, seed: 3)
        let back = try ModelLoader.load("\(dir)/decoder.onnx")
        XCTAssertEqual(back.graph.nodes.map(\.op), model.graph.nodes.map(\.op).filter { $0 != .flatten })
        let x = SeededData.input(name: "image", shape: [2, 3, 8, 8], seed: 4)
        let seeded = Weights.seeded(model.graph, seed: 3)
        let expected = try Interpreter(graph: model.graph, parameters: seeded).outputs(["image": x])[0]
        let parameters = try XCTUnwrap(back.weights).mapValues { Tensor(shape: $0.shape, data: $0.data.map(Double.init)) }
        let actual = try Interpreter(graph: back.graph, parameters: parameters).outputs(["image": x])[0]
        XCTAssertEqual(actual.shape, expected.shape)
        for (a, e) in zip(actual.data, expected.data) { XCTAssertEqual(a, e, accuracy: 1e-5) }
    }

    /// Seeded conv_transpose geometries (stride, pad, output_pad, dilation, groups, kernel, bias)
    /// as branches of one network, so one build checks them all: the C forward against the
    /// interpreter, then the training step's gradients. The seed is in every failure message.
    func testSeededGeometrySweepThroughCheckAndTraining() throws {
        let seed: UInt64 = 77
        var counter = 0
        func pick(_ range: ClosedRange<Int>) -> Int {
            counter += 1
            let u = SeededInit.uniform(seed: seed, name: "deconv-sweep", index: counter)
            return range.lowerBound + min(Int(u * Double(range.count)), range.count - 1)
        }
        var lines = ["network sweep", "input x shape=6x5x4"]
        var pools: [String] = []
        while pools.count < 10 {
            let groups = [1, 2, 3, 6][pick(0...3)]
            let filters = groups * pick(1...3)
            let (r, s) = (pick(1...4), pick(1...4)), (sh, sw) = (pick(1...3), pick(1...3)), (dh, dw) = (pick(1...2), pick(1...2))
            let (pt, pl, pb, pr) = (pick(0...2), pick(0...2), pick(0...2), pick(0...2))
            let (oh, ow) = (pick(0...(max(sh, dh) - 1)), pick(0...(max(sw, dw) - 1)))
            guard (5 - 1) * sh - pt - pb + dh * (r - 1) + oh + 1 >= 1, (4 - 1) * sw - pl - pr + dw * (s - 1) + ow + 1 >= 1 else { continue }
            let name = "t\(pools.count)"
            lines.append("conv_transpose \(name) from=x filters=\(filters) size=\(r)x\(s) stride=\(sh)x\(sw) pad=\(pt),\(pl),\(pb),\(pr) output_pad=\(oh)x\(ow) dilation=\(dh)x\(dw) groups=\(groups) bias=\(pick(0...1) == 1)")
            lines.append("global_avgpool p\(pools.count)")
            pools.append("p\(pools.count)")
        }
        lines += ["concat all from=\(pools.joined(separator: ","))", "flatten", "dense logits units=3"]
        let dir = try temporaryDirectory()
        try lines.joined(separator: "\n").write(toFile: "\(dir)/sweep.net", atomically: true, encoding: .utf8)
        let model = try ModelLoader.load("\(dir)/sweep.net")
        var options = CheckOptions()
        options.batch = 2
        let (report, passed) = try Checker.check(model, options: options)
        XCTAssertTrue(passed, "seed \(seed):\n\(lines.joined(separator: "\n"))\n\(report)")
        var train = TrainCheckOptions()
        train.batch = 2
        let (trainReport, trainPassed) = try TrainChecker.check(model, options: train)
        XCTAssertTrue(trainPassed, "seed \(seed):\n\(lines.joined(separator: "\n"))\n\(trainReport)")
    }

    func testBadKeysAreDiagnosed() throws {
        for (line, message) in [
            ("conv_transpose t filters=4 size=3 stride=2 output_pad=2", "output padding 2 must be below the stride 2 or the dilation 1"),
            ("conv_transpose t filters=4 size=3 pad=same", "expected P, PHxPW or t,l,b,r"),
            ("conv_transpose t filters=4 size=1 pad=1", "leaves no output"),
            ("upsample u scale=2 align_corners=true", "needs mode=bilinear"),
            ("conv_transpose t filters=3 size=3 groups=2", "not divisible by groups=2"),
        ] {
            let dir = try temporaryDirectory()
            try "network bad\ninput x shape=4x1x1\n\(line)\n".write(toFile: "\(dir)/bad.net", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ModelLoader.load("\(dir)/bad.net"), line) { error in
                XCTAssertTrue("\(error)".contains(message), "\(line): \(error)")
            }
        }
    }
}
