// Parameters of parsed graphs: the names (PyTorch `state_dict` style) and shapes that the
// frontend's attributes lead to.

import CNNCIR
import XCTest

@testable import CNNCFrontend

final class ParameterTests: XCTestCase {
    /// `name shape` for every parameter, in order.
    private func parameters(_ text: String, line: UInt = #line) -> [String] {
        guard let graph = parseValid(text, line: line) else { return [] }
        return graph.parameters().map { "\($0.name) \(Shape($0.shape))" }
    }

    func testConvWithAndWithoutBias() {
        XCTAssertEqual(parameters(withInput("3x8x8", "conv c1 filters=8 size=3\nconv c2 filters=4 size=1x3 bias=false")),
                       ["c1.weight 8x3x3x3", "c1.bias 8", "c2.weight 4x8x1x3"])
    }

    func testGroupedAndDepthwiseConv() {
        XCTAssertEqual(parameters(withInput("8x8x8", "conv g filters=4 size=3 groups=2\nconv dw filters=4 size=3 groups=4")),
                       ["g.weight 4x4x3x3", "g.bias 4", "dw.weight 4x1x3x3", "dw.bias 4"])
    }

    func testDense() {
        XCTAssertEqual(parameters(withInput("16x5x5", "dense f1 units=120\ndense f2 units=10 bias=false")),
                       ["f1.weight 120x400", "f1.bias 120", "f2.weight 10x120"])
    }

    func testBatchNorm() throws {
        let graph = try XCTUnwrap(parseValid(withInput("6x4x4", "batchnorm bn")))
        let specs = graph.parameters()
        XCTAssertEqual(specs.map(\.name), ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"])
        XCTAssertEqual(specs.map(\.shape), [[6], [6], [6], [6]])
        XCTAssertEqual(specs.map(\.trainable), [true, true, false, false])
        XCTAssertEqual(parameters(withInput("10", "batchnorm b")),
                       ["b.weight 10", "b.bias 10", "b.running_mean 10", "b.running_var 10"])
    }

    func testPReLUSharedAndPerChannel() {
        XCTAssertEqual(parameters(withInput("6x4x4", "prelu p1\nprelu p2 shared=false")),
                       ["p1.weight 1", "p2.weight 6"])
        XCTAssertEqual(parameters(withInput("12", "prelu p shared=false")), ["p.weight 12"])
    }

    func testLayersWithoutParameters() {
        XCTAssertEqual(parameters(withInput("3x8x8", """
            relu
            maxpool size=2
            avgpool size=2
            lrn size=3
            dropout
            global_avgpool
            flatten
            softmax
            """)), [])
    }
}
