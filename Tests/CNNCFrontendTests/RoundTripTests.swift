// The IR text of parsed graphs prints and parses back to an equal graph, locations
// (with their lengths) included, and printing again gives identical text.

import CNNCIR
import XCTest

@testable import CNNCFrontend

final class RoundTripTests: XCTestCase {
    static let networks: [(name: String, text: String)] = [
        ("lenet", ParsingTests.lenet),
        ("residual", """
            network resnet_block
            input x shape=16x8x8
            conv c1 filters=16 size=3 pad=1 bias=false
            batchnorm bn1
            relu
            conv c2 filters=16 size=3 pad=1 bias=false
            batchnorm bn2
            add sum from=bn2,x
            relu out
            global_avgpool
            flatten
            dense fc units=10
            """),
        ("inception", """
            input x shape=32x16x16
            concat cat from=b1,b3,pool_proj
            conv b1 from=x filters=8 size=1
            conv b3 from=x filters=12 size=3 pad=same dilation=2
            maxpool p from=x size=3 stride=1 pad=1 ceil_mode=true
            conv pool_proj from=p filters=4 size=1
            avgpool size=2 count_include_pad=false
            lrn size=5 alpha=0.0002 beta=0.5 k=2
            output cat
            output avgpool_1
            output lrn_1
            """),
        ("every op", """
            input image shape=3x12x10
            input extra shape=7
            conv2d from=image filters=6 size=3x5 stride=2x1 pad=1,2,0,1 groups=3
            leaky_relu alpha=0.2
            prelu shared=false
            elu alpha=0.5
            silu
            sigmoid
            tanh
            dropout rate=0.25
            avgpool size=2
            flatten
            linear units=7
            add from=dense_1,extra
            batchnorm eps=0.001 momentum=0.3
            softmax
            """),
        ("awkward names", """
            input outputs shape=3
            relu network from=outputs
            relu input
            output input,network
            """),
    ]

    func testParsedGraphsRoundTrip() throws {
        for (name, text) in Self.networks {
            let graph = try XCTUnwrap(parseValid(text), name)
            let printed = graph.irText()
            switch Graph.parseIR(printed) {
            case .success(let reparsed):
                XCTAssertEqual(reparsed, graph, "\(name):\n\(printed)")
                XCTAssertEqual(reparsed.irText(), printed, name)
                XCTAssertEqual(reparsed.verify(), [], name)
            case .failure(let list):
                XCTFail("\(name): \(list)\n\(printed)")
            }
        }
    }

    func testLocationsKeepTheirLengthInIRText() throws {
        let graph = try XCTUnwrap(parseValid("input x shape=3\nleaky_relu act\n"))
        XCTAssertTrue(graph.irText().contains(#"act = leaky_relu(x) alpha=0.01 : 3 @"t.net":2:1-10"#), graph.irText())
    }
}
