// The pooling kernels split each plane into the windows that lie inside the input (constant
// loops, vectorized) and the windows cut by padding or by ceil_mode's last row and column
// (clipped). A chain of pools that covers every combination goes through `cnnc check`
// (generated C against the interpreter, 1 vs 2 threads bitwise) at batch 1 and 3, unoptimized
// and under the sanitizers; NaN inputs are part of the seeded check's arena test.

import CNNCDriver
import Foundation
import XCTest

final class PoolKernelTests: XCTestCase {
    static let source = """
    network pools
    input image shape=3x23x23
    maxpool pad_edges size=3 stride=2 pad=1                                      # 3x12x12
    avgpool same_include size=3 stride=1 pad=1                                   # 3x12x12
    avgpool same_exclude size=3 stride=1 pad=1 count_include_pad=false           # 3x12x12
    maxpool ceil_pad size=3 stride=2 pad=1 ceil_mode=true                        # 3x7x7
    avgpool ceil_include size=2 stride=2 pad=1 ceil_mode=true                    # 3x4x4
    maxpool big_pad size=5 stride=1 pad=2                                        # 3x4x4
    avgpool asymmetric size=2x3 stride=1x2 pad=1,0,0,1 count_include_pad=false   # 3x4x2
    maxpool inside size=2 stride=1                                               # 3x3x1
    avgpool tall size=4x1 stride=1 pad=2x0 ceil_mode=true                        # 3x4x1
    global_avgpool g
    flatten
    dense logits units=4
    """

    func testEveryWindowKindMatchesTheInterpreter() throws {
        let dir = try temporaryDirectory()
        try Self.source.write(toFile: "\(dir)/pools.net", atomically: true, encoding: .utf8)
        let model = try ModelLoader.load("\(dir)/pools.net")
        XCTAssertEqual(model.graph.node(named: "tall")?.shape.dims, [3, 4, 1])
        try assertChecksPass(model, [(1, true, false), (3, true, false), (2, false, false), (2, true, true)])
    }
}
