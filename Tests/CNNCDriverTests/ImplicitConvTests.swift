// The implicit GEMM end to end: stride 1 and strided layers (phase planes in the arena's
// scratch, weights packed in phase order), grouped, dilated, with a residual and with an
// activation the library leaves to the generated code, through `cnnc check` (generated C
// against the interpreter, 1 vs 2 threads bitwise) at batch 1 and 3 (tasks over blocks of
// rows, every sample in turn) and 5 (tasks over samples), unoptimized and under the sanitizers.

import CNNCDriver
import Foundation
import XCTest

final class ImplicitConvTests: XCTestCase {
    static let source = """
    network implicit
    input image shape=3x29x30
    conv stem filters=16 size=7 stride=2 pad=3                 # 16x15x15
    relu r0
    conv same filters=16 size=3 pad=1                          # 16x15x15
    conv down filters=24 size=3 stride=2 pad=1                 # 24x8x8
    leaky_relu r1 alpha=0.1
    conv skip filters=24 size=1 stride=2 from=same             # 24x8x8
    add sum from=r1,skip
    conv grouped filters=24 size=3 stride=2 pad=1 groups=2     # 24x4x4
    sigmoid s1
    conv wide filters=32 size=5 stride=3 pad=2 dilation=1      # 32x2x2
    conv tall filters=8 size=3x1 stride=2x1 pad=1x0 from=sum   # 8x4x8
    global_avgpool g1 from=wide
    global_avgpool g2 from=tall
    concat cat from=g1,g2
    flatten
    dense logits units=5
    """

    func testStridedAndStrideOneLayersMatchTheInterpreter() throws {
        let dir = try temporaryDirectory()
        try Self.source.write(toFile: "\(dir)/implicit.net", atomically: true, encoding: .utf8)
        let summary = try runCNNC(["summary", "\(dir)/implicit.net"])
        XCTAssertEqual(summary.status, 0, summary.stderr)
        for layer in ["stem", "same", "down", "skip", "grouped", "tall"] {
            let line = summary.stdout.split(separator: "\n").first { $0.hasPrefix(layer + " ") } ?? ""
            XCTAssertTrue(line.contains("implicit"), "\(layer): \(line)")
        }
        let model = try ModelLoader.load("\(dir)/implicit.net")
        try assertChecksPass(model, [(1, true, false), (3, true, false), (5, true, false), (5, false, false), (5, true, true)])
    }
}
