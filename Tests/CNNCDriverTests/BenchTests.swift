// `cnnc bench`: the generated benchmark program on ImageNet-size inputs at batch > 1 (its
// input fill once overflowed `int` there and gcc refused the loop), and the --json report.

import CNNCDriver
import Foundation
import XCTest

final class BenchTests: XCTestCase {
    /// A network with a 3x224x224 input and little work: batch 2 has 301,056 input floats,
    /// past the 271,182 where `j * 7919` overflowed `int`.
    func tiny224(in dir: String) throws -> String {
        try """
            network tiny224
            input image shape=3x224x224
            conv c1 filters=4 size=3 stride=4 pad=1
            relu
            global_avgpool
            dense logits units=10

            """.write(toFile: "\(dir)/tiny224.net", atomically: true, encoding: .utf8)
        return "\(dir)/tiny224.net"
    }

    func testFillIsComputedInSizeTWithoutOverflow() throws {
        let model = try ModelLoader.load(try tiny224(in: try temporaryDirectory()))
        let c = BenchCommand.source(model.graph, prefix: "tiny224", header: "tiny224.h", iterations: 20)
        XCTAssertTrue(c.contains("const size_t count0 = (size_t)TINY224_MAX_BATCH * 150528;"), c)
        XCTAssertTrue(c.contains("for (size_t j = 0; j < count0; j++) in0[j] = (float)((j % 1000) * 7919 % 1000) / 1000.0f;"), c)
        XCTAssertFalse(c.contains("int j"), c)
    }

    func testBenchRunsAtBatch2On224InputAndReportsJSON() throws {
        let dir = try temporaryDirectory()
        let r = try runCNNC(["bench", try tiny224(in: dir), "--batch", "2", "--iterations", "3", "--warmup", "1",
                             "--threads", "2", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stdout)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(object["model"] as? String, "tiny224")
        XCTAssertEqual(object["batch"] as? Int, 2)
        XCTAssertEqual(object["threads"] as? Int, 2)
        XCTAssertEqual(object["iterations"] as? Int, 3)
        XCTAssertEqual(object["warmup"] as? Int, 1)
        let median = try XCTUnwrap(object["median_ms"] as? Double)
        let minimum = try XCTUnwrap(object["min_ms"] as? Double)
        let perSecond = try XCTUnwrap(object["images_per_s"] as? Double)
        XCTAssertGreaterThan(median, 0)
        XCTAssertLessThanOrEqual(minimum, median)
        XCTAssertEqual(perSecond, 2 / (median / 1e3), accuracy: perSecond * 1e-3)
    }

    func testBenchRejectsZeroThreads() throws {
        let dir = try temporaryDirectory()
        let r = try runCNNC(["bench", try tiny224(in: dir), "--threads", "0"], in: dir)
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("--threads must be at least 1, got 0"), r.stderr)
    }

    /// `cnnc profile` lists every kernel call with the kernel the passes chose and accounts for
    /// the whole pass.
    func testProfileListsEveryLayerWithItsKernel() throws {
        let r = try runCNNC(["profile", "Examples/resnet20/model.net", "--iterations", "3", "--warmup", "1",
                             "--threads", "1"], in: repoRoot)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("profile of 'resnet20', batch 1, 1 thread, median of 3 passes") ?? false, r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("conv1 ") && $0.contains("conv implicit") }, r.stdout)
        // the 1x1 stride-2 shortcut on the implicit kernel over its input's phase plane
        XCTAssertTrue(lines.contains { $0.hasPrefix("layer2_0_downsample_0 ") && $0.contains("conv implicit") }, r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("layer2_1_conv1 ") && $0.contains("conv winograd4x4") }, r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("fc ") && $0.contains("dense") }, r.stdout)
        // 21 convolutions (BN, ReLU and the adds fused into them), the pool, the classifier
        XCTAssertEqual(lines.filter { $0.contains(" conv ") || $0.contains(" dense ") || $0.contains("global_avgpool") }.count, 23,
                       r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("sum of layers ") && $0.contains("whole pass") }, r.stdout)
    }
}

/// The compiled max pool propagates NaN as the interpreter does (it once dropped it, which also
/// hid reads of unwritten, NaN-filled arena memory behind a pool).
final class MaxPoolNaNTests: XCTestCase {
    func testCompiledMaxPoolPropagatesNaN() throws {
        let dir = try temporaryDirectory()
        try """
            network nanpool
            input x shape=1x4x4
            maxpool p size=2 stride=2

            """.write(toFile: "\(dir)/nanpool.net", atomically: true, encoding: .utf8)
        var data = (0..<16).map { Float($0) }
        data[5] = .nan  // window (0, 0)
        try NumpyFile.write(FloatArray(shape: [1, 1, 4, 4], data: data), to: "\(dir)/x.npy")
        for interpret in [false, true] {
            let r = try runCNNC(["run", "\(dir)/nanpool.net", "--input", "\(dir)/x.npy", "--output", "\(dir)/y.npy"]
                                + (interpret ? ["--interpret"] : []), in: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            let y = try NumpyFile.read("\(dir)/y.npy")
            XCTAssertEqual(y.data.count, 4)
            XCTAssertTrue(y.data[0].isNaN, "interpret=\(interpret): \(y.data)")
            XCTAssertEqual(Array(y.data[1...]), [7, 13, 15], "interpret=\(interpret)")
        }
    }
}
