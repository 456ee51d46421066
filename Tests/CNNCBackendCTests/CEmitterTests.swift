// Tests of the C emitter's text: a snapshot of one tiny model, determinism, and the
// structure every model's code must have. Numerical tests of the generated code against
// the interpreter live in CNNCDriverTests (they need the driver's harness).

import CNNCBackendC
import CNNCIR
import Foundation
import XCTest

/// A tiny network with a conv, a residual add, pooling, dense and softmax.
let tinyIR = """
network tiny
image = input() shape=2x5x5 : 2x5x5
c1 = conv(image) filters=2 size=3 stride=1 pad=1 dilation=1 groups=1 bias=true : 2x5x5
r1 = relu(c1) : 2x5x5
sum = add(r1, image) : 2x5x5
pool = maxpool(sum) size=2 stride=2 pad=0 ceil_mode=true : 2x3x3
flat = flatten(pool) : 18
fc = dense(flat) units=3 bias=false : 3
prob = softmax(fc) : 3
outputs prob
"""

/// Compares text with a stored snapshot; `CNNC_UPDATE_SNAPSHOTS=1` rewrites it.
func assertSnapshot(_ text: String, named name: String, file: StaticString = #filePath, line: UInt = #line) {
    let dir = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().appendingPathComponent("Snapshots")
    let path = dir.appendingPathComponent(name)
    if ProcessInfo.processInfo.environment["CNNC_UPDATE_SNAPSHOTS"] == "1" {
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try? text.write(to: path, atomically: true, encoding: .utf8)
        return
    }
    guard let stored = try? String(contentsOf: path, encoding: .utf8) else {
        XCTFail("no snapshot \(name); run with CNNC_UPDATE_SNAPSHOTS=1 to record it", file: file, line: line)
        return
    }
    if stored != text {
        let a = stored.split(separator: "\n", omittingEmptySubsequences: false)
        let b = text.split(separator: "\n", omittingEmptySubsequences: false)
        let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        XCTFail("""
            snapshot \(name) differs at line \(first + 1):
              stored:    \(first < a.count ? String(a[first]) : "<end>")
              generated: \(first < b.count ? String(b[first]) : "<end>")
            (CNNC_UPDATE_SNAPSHOTS=1 rewrites it after review)
            """, file: file, line: line)
    }
}

final class CEmitterTests: XCTestCase {
    func tinyGraph() throws -> Graph {
        var g = try Graph.parseIR(tinyIR).get()
        XCTAssertEqual(g.inferShapes(), [])
        XCTAssertEqual(g.verify(), [])
        return g
    }

    func emit(_ g: Graph, batch: Int = 4) -> CModel {
        CEmitter.emit(g, options: COptions(prefix: "tiny", maxBatch: batch, headerName: "tiny.h", sourceName: "tiny.net", seed: 7))
    }

    func testSnapshotOfTinyModel() throws {
        let c = emit(try tinyGraph())
        assertSnapshot(c.header, named: "tiny.h.snap")
        assertSnapshot(c.source, named: "tiny.c.snap")
    }

    func testOutputIsDeterministic() throws {
        let g = try tinyGraph()
        let a = emit(g), b = emit(g)
        XCTAssertEqual(a.source, b.source)
        XCTAssertEqual(a.header, b.header)
    }

    func testHeaderMacrosAndPrototypes() throws {
        let h = emit(try tinyGraph()).header
        XCTAssertTrue(h.contains("#define TINY_MAX_BATCH 4\n"))
        XCTAssertTrue(h.contains("#define TINY_ALIGNMENT 64\n"))
        // c1.weight 36 floats -> 48 aligned, c1.bias 2 -> 16, fc.weight 54 -> 64.
        XCTAssertTrue(h.contains("#define TINY_WEIGHTS_BYTES \((48 + 16 + 64) * 4)\n"))
        XCTAssertTrue(h.contains("#define TINY_INPUT_IMAGE_SIZE 50 "))
        XCTAssertTrue(h.contains("#define TINY_OUTPUT_PROB_SIZE 3 "))
        XCTAssertTrue(h.contains("cnnc_status tiny_forward(tiny_context *ctx, const float *image, float *prob, int n);"))
    }

    func testOneFunctionPerComputingNodeAndViewsHaveNone() throws {
        let c = emit(try tinyGraph()).source
        for name in ["c1", "r1", "sum", "pool", "fc", "prob"] {
            XCTAssertTrue(c.contains("static void node_\(name)("), "missing kernel for \(name)")
        }
        XCTAssertFalse(c.contains("node_flat("), "flatten is a view")
        XCTAssertFalse(c.contains("node_image("), "inputs have no kernel")
        XCTAssertTrue(c.contains("/*\n * conv 'c1': conv filters=2 size=3"))
    }

    func testPrefixNamesEverySymbol() throws {
        var g = try tinyGraph()
        g.name = "other"
        let c = CEmitter.emit(g, options: COptions(prefix: "m2", headerName: "m2.h", sourceName: "x.net"))
        XCTAssertTrue(c.header.contains("cnnc_status m2_forward("))
        XCTAssertFalse(c.header.contains("tiny_"))
        XCTAssertTrue(c.header.contains("#define M2_MAX_BATCH 1\n"))
    }
}

final class InspectionEmitterTests: XCTestCase {
    /// The layer table of a training build: every node as written, with receptive fields
    /// worked by hand (3x3 pad 1 conv: 3 pixels starting at -1; then 2x2/2 pool: 4 pixels,
    /// jump 2; dense sees everything).
    func testLayerTableAndReceptiveFields() throws {
        var g = try Graph.parseIR(tinyIR).get()
        XCTAssertEqual(g.inferShapes(), [])
        let c = CEmitter.emit(g, options: COptions(prefix: "tiny", maxBatch: 2, headerName: "tiny.h", sourceName: "tiny.net",
                                                   seed: 7, training: TrainingSpec(graph: g)))
        XCTAssertTrue(c.header.contains("#define TINY_NUM_LAYERS 8"), c.header)
        XCTAssertTrue(c.header.contains("cnnc_status tiny_input_grad(tiny_context *ctx, tiny_trainer *t, const float *image, int n, const float *weights, float *scores, float *grad);"))
        for row in [
            "{\"image\", \"input\", 3, {2, 5, 5}, 50, {1, 1, 1, 1, 0, 0}},",
            "{\"c1\", \"conv\", 3, {2, 5, 5}, 50, {3, 3, 1, 1, -1, -1}},",
            "{\"r1\", \"relu\", 3, {2, 5, 5}, 50, {3, 3, 1, 1, -1, -1}},",
            "{\"sum\", \"add\", 3, {2, 5, 5}, 50, {3, 3, 1, 1, -1, -1}},",
            "{\"pool\", \"maxpool\", 3, {2, 3, 3}, 18, {4, 4, 2, 2, -1, -1}},",
            "{\"fc\", \"dense\", 1, {3, 1, 1}, 3, {0, 0, 0, 0, 0, 0}},",
        ] {
            XCTAssertTrue(c.source.contains(row), "missing layer row \(row)")
        }
        // The scores are the softmax's input; the input gradient runs the conv's backward
        // with its input gradient wanted (not needed by the training step).
        XCTAssertTrue(c.source.contains("memcpy(scores,"))
        XCTAssertTrue(c.source.contains("static void inspect_node_c1_backward(float *restrict d_in,"))
    }
}
