// Shape inference per op, through small `.net` snippets: the frontend must hand every op's
// attributes to the IR so that the output sizes come out as PyTorch computes them.

import CNNCIR
import XCTest

@testable import CNNCFrontend

final class ShapeInferenceTests: XCTestCase {
    /// The shape of the last layer of `input x shape=<input>` followed by `layer`.
    private func outputShape(_ input: String, _ layer: String, line: UInt = #line) -> String? {
        guard let graph = parseValid(withInput(input, layer), line: line) else { return nil }
        return graph.nodes.last?.shape.description
    }

    func testConvStridePadDilationGroups() {
        XCTAssertEqual(outputShape("3x32x32", "conv filters=8 size=3"), "8x30x30")
        XCTAssertEqual(outputShape("3x32x32", "conv filters=8 size=3 pad=1"), "8x32x32")
        XCTAssertEqual(outputShape("3x32x32", "conv filters=8 size=3 stride=2 pad=1"), "8x16x16")
        XCTAssertEqual(outputShape("3x32x32", "conv filters=8 size=3 stride=2"), "8x15x15")
        XCTAssertEqual(outputShape("3x10x10", "conv filters=8 size=3 dilation=2"), "8x6x6")
        XCTAssertEqual(outputShape("3x10x10", "conv filters=8 size=3 dilation=3 pad=3"), "8x10x10")
        XCTAssertEqual(outputShape("4x10x12", "conv filters=6 size=3 groups=2"), "6x8x10")
        XCTAssertEqual(outputShape("3x224x224", "conv filters=64 size=7 stride=2 pad=3"), "64x112x112")
        XCTAssertEqual(outputShape("3x227x227", "conv filters=96 size=11 stride=4"), "96x55x55")
        XCTAssertEqual(outputShape("1x5x7", "conv filters=1 size=5x7"), "1x1x1")
    }

    func testPadSameKeepsTheSize() {
        for size in ["1", "2", "3", "4", "5", "2x5"] {
            XCTAssertEqual(outputShape("3x9x10", "conv filters=2 size=\(size) pad=same"), "2x9x10", "size=\(size)")
        }
        XCTAssertEqual(outputShape("3x9x10", "conv filters=2 size=3 dilation=2 pad=same"), "2x9x10")
        XCTAssertEqual(outputShape("3x9x10", "maxpool size=3 stride=1 pad=same"), "3x9x10")
    }

    func testDepthwiseConv() {
        XCTAssertEqual(outputShape("32x14x14", "conv filters=32 size=3 pad=1 groups=32"), "32x14x14")
        XCTAssertEqual(outputShape("32x14x14", "conv filters=64 size=3 stride=2 pad=1 groups=32"), "64x7x7")
    }

    func testPoolingFloorAndCeilMode() {
        XCTAssertEqual(outputShape("3x6x6", "maxpool size=3 stride=2"), "3x2x2")
        XCTAssertEqual(outputShape("3x6x6", "maxpool size=3 stride=2 ceil_mode=true"), "3x3x3")
        XCTAssertEqual(outputShape("64x112x112", "maxpool size=3 stride=2 pad=1"), "64x56x56")
        XCTAssertEqual(outputShape("96x55x55", "maxpool size=3 stride=2"), "96x27x27")
        XCTAssertEqual(outputShape("3x7x5", "avgpool size=2"), "3x3x2")
        XCTAssertEqual(outputShape("3x7x5", "avgpool size=2 ceil_mode=true"), "3x4x3")
        XCTAssertEqual(outputShape("3x8x8", "avgpool size=2 stride=1"), "3x7x7")
    }

    func testCeilModeDropsTheLastWindowWhenItStartsInThePadding() {
        // Input 5, window 3, stride 3, pad 1: rounding up gives 3 windows, but the third would
        // start at 6 >= 5 + 1, entirely in the end padding, so PyTorch keeps 2.
        XCTAssertEqual(outputShape("1x5x5", "maxpool size=3 stride=3 pad=1 ceil_mode=true"), "1x2x2")
        XCTAssertEqual(outputShape("1x5x5", "maxpool size=3 stride=3 pad=1"), "1x2x2")
        // Input 6, window 3, stride 2, pad 1: the fourth window starts at 6 < 7 and stays.
        XCTAssertEqual(outputShape("1x6x6", "maxpool size=3 stride=2 pad=1 ceil_mode=true"), "1x4x4")
        XCTAssertEqual(outputShape("1x6x6", "maxpool size=3 stride=2 pad=1"), "1x3x3")
    }

    func testGlobalAvgPoolFlattenDense() {
        XCTAssertEqual(outputShape("512x7x7", "global_avgpool"), "512x1x1")
        XCTAssertEqual(outputShape("16x5x5", "flatten"), "400")
        XCTAssertEqual(outputShape("10", "flatten"), "10")
        XCTAssertEqual(outputShape("16x5x5", "dense units=120"), "120")
        XCTAssertEqual(outputShape("400", "dense units=10 bias=false"), "10")
    }

    func testConcatAndAdd() {
        let graph = parseValid("""
            input x shape=3x8x8
            conv a from=x filters=5 size=3 pad=1
            conv b from=x filters=2 size=1
            concat c from=x,a,b
            add s from=c,c,c
            input v shape=10
            dense d from=v units=20
            concat vc from=v,d
            output s,vc
            """)
        XCTAssertEqual(shape(graph, "c"), "10x8x8")
        XCTAssertEqual(shape(graph, "s"), "10x8x8")
        XCTAssertEqual(shape(graph, "vc"), "30")
        XCTAssertEqual(graph?.node(named: "c")?.inputs, ["x", "a", "b"])
    }

    func testElementwiseOpsKeepTheShape() {
        for layer in ["relu", "leaky_relu alpha=0.1", "sigmoid", "tanh", "swish", "elu", "dropout rate=0.2",
                      "prelu", "prelu shared=false", "lrn size=5", "batchnorm", "softmax"] {
            XCTAssertEqual(outputShape("6x5x4", layer), "6x5x4", layer)
        }
        for layer in ["relu", "sigmoid", "dropout", "prelu shared=false", "batchnorm", "softmax"] {
            XCTAssertEqual(outputShape("7", layer), "7", layer)
        }
    }

    func testLRNWithAlexNetSettings() {
        XCTAssertEqual(outputShape("96x55x55", "lrn size=5 alpha=0.0001 beta=0.75 k=2"), "96x55x55")
        let graph = parseValid(withInput("96x55x55", "lrn n size=5 alpha=0.0001 beta=0.75 k=2"))
        XCTAssertEqual(graph?.node(named: "n")?.op, .lrn(LRNAttributes(size: 5, alpha: 0.0001, beta: 0.75, k: 2)))
    }

    func testBatchNormOneAndThreeDimensional() {
        let graph = parseValid("""
            input x shape=8x4x4
            batchnorm bn3 eps=0.001 momentum=0.01
            flatten
            dense units=16
            batchnorm bn1
            """)
        XCTAssertEqual(shape(graph, "bn3"), "8x4x4")
        XCTAssertEqual(shape(graph, "bn1"), "16")
        XCTAssertEqual(graph?.node(named: "bn3")?.op, .batchNorm(BatchNormAttributes(epsilon: 0.001, momentum: 0.01)))
    }
}
