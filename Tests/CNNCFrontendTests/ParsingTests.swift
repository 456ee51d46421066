// Parsing and lowering of every `.net` construct, checked on the resulting graph: node
// names (explicit and generated), ops, inputs, order, outputs, shapes and locations.

import CNNCIR
import XCTest

@testable import CNNCFrontend

final class ParsingTests: XCTestCase {
    static let lenet = """
        # LeNet-5 for 28x28 grayscale images
        network lenet
        input   image  shape=1x28x28          # C x H x W; the batch is chosen at compile time
        conv    c1     filters=6 size=5 pad=2
        relu
        maxpool        size=2 stride=2
        conv    c2     filters=16 size=5
        relu
        maxpool        size=2 stride=2
        dense   f1     units=120
        relu
        dense   f2     units=84
        relu
        dense   logits units=10
        softmax prob
        """

    func testLeNetFromTheDesign() throws {
        let graph = try XCTUnwrap(parseValid(Self.lenet))
        XCTAssertEqual(graph.name, "lenet")
        XCTAssertEqual(graph.nodes.map(\.name), [
            "image", "c1", "relu_1", "maxpool_1", "c2", "relu_2", "maxpool_2",
            "f1", "relu_3", "f2", "relu_4", "logits", "prob",
        ])
        XCTAssertEqual(graph.nodes.map(\.shape.description), [
            "1x28x28", "6x28x28", "6x28x28", "6x14x14", "16x10x10", "16x10x10", "16x5x5",
            "120", "120", "84", "84", "10", "10",
        ])
        // Each layer reads the one before it.
        for (previous, node) in zip(graph.nodes, graph.nodes.dropFirst()) {
            XCTAssertEqual(node.inputs, [previous.name])
        }
        XCTAssertEqual(graph.outputs, ["prob"])
        XCTAssertEqual(graph.node(named: "c1")?.op,
                       .conv(ConvAttributes(filters: 6, kernel: Pair(5), padding: Padding(2, 2))))
        XCTAssertEqual(graph.node(named: "maxpool_1")?.op,
                       .maxPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))))
        XCTAssertEqual(graph.node(named: "f1")?.op, .dense(DenseAttributes(units: 120)))
        XCTAssertEqual(graph.node(named: "prob")?.op, .softmax)
        XCTAssertEqual(graph.inputs.map(\.op), [.input(Shape([1, 28, 28]))])
        XCTAssertEqual(graph.verify(), [])
    }

    func testGeneratedNamesCountPerKeywordAndSkipExplicitNames() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=3x8x8
            relu
            conv filters=4 size=3 pad=1
            relu relu_2
            relu
            conv filters=4 size=1
            relu
            """))
        XCTAssertEqual(graph.nodes.map(\.name),
                       ["x", "relu_1", "conv_1", "relu_2", "relu_3", "conv_2", "relu_4"])
    }

    func testExplicitNameLaterInTheFileIsSkippedToo() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=3
            relu
            relu
            relu relu_1
            """))
        XCTAssertEqual(graph.nodes.map(\.name), ["x", "relu_2", "relu_3", "relu_1"])
    }

    func testNetworkNameDefaultsToTheSanitizedFileStem() {
        XCTAssertEqual(NetFrontend.defaultNetworkName(forPath: "models/my-net.v2.net"), "my_net_v2")
        XCTAssertEqual(NetFrontend.defaultNetworkName(forPath: "3layers.net"), "_3layers")
        XCTAssertEqual(NetFrontend.defaultNetworkName(forPath: "/tmp/caf\u{E9}.net"), "caf_")
        XCTAssertEqual(NetFrontend.defaultNetworkName(forPath: "plain"), "plain")
        XCTAssertEqual(NetFrontend.defaultNetworkName(forPath: ".net"), "_net")
        XCTAssertEqual(NetFrontend.defaultNetworkName(forPath: ""), "network")
        XCTAssertTrue(isValidName(NetFrontend.defaultNetworkName(forPath: String(repeating: "7", count: 300))))
        let graph = parseValid("input x shape=3\nrelu\n", path: "nets/tiny-mlp.net")
        XCTAssertEqual(graph?.name, "tiny_mlp")
    }

    func testImplicitChainingReadsThePreviousValueIncludingInputs() throws {
        let graph = try XCTUnwrap(parseValid("""
            input a shape=3x4x4
            relu ra
            input b shape=5
            relu rb
            output ra,rb
            """))
        XCTAssertEqual(graph.node(named: "ra")?.inputs, ["a"])
        XCTAssertEqual(graph.node(named: "rb")?.inputs, ["b"])
        XCTAssertEqual(graph.inputs.map(\.name), ["a", "b"])
        XCTAssertEqual(graph.outputs, ["ra", "rb"])
    }

    func testResidualBranchWithFromAndImplicitChaining() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=8x16x16
            conv c1 filters=8 size=3 pad=1
            relu r1
            conv c2 filters=8 size=3 pad=1
            add sum from=c2,x
            relu out
            """))
        XCTAssertEqual(graph.node(named: "sum")?.inputs, ["c2", "x"])
        XCTAssertEqual(graph.node(named: "out")?.inputs, ["sum"])
        XCTAssertEqual(shape(graph, "sum"), "8x16x16")
        XCTAssertEqual(graph.outputs, ["out"])
    }

    func testForwardReferencesAreOrderedTopologically() throws {
        // The main path is written first and reads the branch written below it.
        let graph = try XCTUnwrap(parseValid("""
            input x shape=4x8x8
            concat cat from=left,right
            global_avgpool gap1
            output gap1
            conv left from=x filters=2 size=1
            conv right from=x filters=6 size=3 pad=1
            """))
        XCTAssertEqual(graph.nodes.map(\.name), ["x", "left", "right", "cat", "gap1"])
        XCTAssertEqual(shape(graph, "cat"), "8x8x8")
        XCTAssertEqual(shape(graph, "gap1"), "8x1x1")
        XCTAssertEqual(graph.outputs, ["gap1"])
        XCTAssertEqual(graph.verify(), [])
    }

    func testFileOrderIsKeptWhereverPossible() throws {
        // Two independent branches stay in file order; only `late` moves up before its user.
        let graph = try XCTUnwrap(parseValid("""
            input x shape=3
            relu a
            relu b from=x
            add s from=a,late
            relu late from=b
            sigmoid tail from=s
            """))
        XCTAssertEqual(graph.nodes.map(\.name), ["x", "a", "b", "late", "s", "tail"])
    }

    func testALayerWithFromMayComeBeforeTheInput() throws {
        let graph = try XCTUnwrap(parseValid("""
            relu early from=x
            input x shape=3
            sigmoid
            output early
            """))
        XCTAssertEqual(graph.nodes.map(\.name), ["x", "early", "sigmoid_1"])
        XCTAssertEqual(graph.node(named: "sigmoid_1")?.inputs, ["x"])
        XCTAssertEqual(graph.outputs, ["early"])
    }

    func testOutputLinesAccumulateInOrder() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=10
            dense d1 units=4
            output d1
            dense d2 from=x units=3
            dense d3 from=x units=2
            output d3, d2
            """))
        XCTAssertEqual(graph.outputs, ["d1", "d3", "d2"])
    }

    func testAnInputCanBeAnOutput() throws {
        let graph = try XCTUnwrap(parseValid("input x shape=3\nrelu r\noutput r,x\n"))
        XCTAssertEqual(graph.outputs, ["r", "x"])
    }

    func testCommentsBlankLinesTabsAndCRLF() throws {
        let text = "# header\r\n\r\nnetwork\tn   # trailing\r\n  input x shape=3x4x4#no space\r\n\t\r\nrelu#c\r\n"
        let graph = try XCTUnwrap(parseValid(text))
        XCTAssertEqual(graph.name, "n")
        XCTAssertEqual(graph.nodes.map(\.name), ["x", "relu_1"])
        XCTAssertEqual(graph.node(named: "x")?.location, SourceLocation(file: snippetPath, line: 4, column: 3, length: 5))
        XCTAssertEqual(graph.node(named: "relu_1")?.location, SourceLocation(file: snippetPath, line: 6, column: 1, length: 4))
    }

    func testUnicodeInCommentsIsFine() throws {
        let graph = try XCTUnwrap(parseValid("# Größe: 1×28×28 — ok\ninput x shape=1x28x28 # “quoted”\nrelu\n"))
        XCTAssertEqual(graph.nodes.count, 2)
    }

    func testByteOrderMarkIsDropped() throws {
        let text = try NetFrontend.decode([0xEF, 0xBB, 0xBF] + Array("input x shape=3\nrelu\n".utf8), path: snippetPath).get()
        XCTAssertEqual(text, "input x shape=3\nrelu\n")
    }

    func testAliasesNameTheirKeywords() throws {
        for alias in layerAliases {
            XCTAssertNotNil(OpKeyword.lookup(alias), alias)
            XCTAssertNil(OpKeyword(rawValue: alias), "\(alias) is a keyword, not an alias")
        }
        let graph = try XCTUnwrap(parseValid("""
            input x shape=3x8x8
            conv2d filters=4 size=3
            bn
            silu
            max_pool size=2
            gap
            fc units=5
            linear units=2
            """))
        XCTAssertEqual(graph.nodes.map(\.name),
                       ["x", "conv_1", "batchnorm_1", "swish_1", "maxpool_1", "global_avgpool_1", "dense_1", "dense_2"])
        XCTAssertEqual(graph.node(named: "swish_1")?.op, .activation(.swish))
        // The node points at the word as written.
        XCTAssertEqual(graph.node(named: "batchnorm_1")?.location, SourceLocation(file: snippetPath, line: 3, column: 1, length: 2))
    }

    func testEveryKeywordParses() throws {
        var lines = ["input x shape=4x8x8"]
        for keyword in OpKeyword.allCases {
            let required = keyword.attributes.filter(\.required).map { "\($0.key)=2" }.joined(separator: " ")
            let from = keyword.arity.lowerBound > 1 ? " from=x,x" : " from=x"
            lines.append("\(keyword.rawValue) \(keyword.rawValue)_layer\(from) \(required)")
        }
        let graph = try XCTUnwrap(parseValid(lines.joined(separator: "\n")))
        XCTAssertEqual(graph.nodes.compactMap(\.op.keyword), OpKeyword.allCases)
    }

    func testNonSquareSizeStrideAndPadding() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=3x20x30
            conv a filters=4 size=3x5 stride=2x1 pad=1x2 dilation=1x2
            conv b from=x filters=4 size=3 pad=1,2,1,2
            conv c from=x filters=4 size=4x2 pad=same
            maxpool d from=x size=3 stride=2 ceil_mode=true
            avgpool e from=x size=2x3 pad=1 count_include_pad=false
            output a,b,c,d,e
            """))
        XCTAssertEqual(graph.node(named: "a")?.op, .conv(ConvAttributes(
            filters: 4, kernel: Pair(3, 5), stride: Pair(2, 1), padding: Padding(1, 2), dilation: Pair(1, 2))))
        XCTAssertEqual(shape(graph, "a"), "4x10x26")  // H: (20+2-3)/2+1, W: 30+4-9+1
        XCTAssertEqual(graph.node(named: "b")?.op, .conv(ConvAttributes(
            filters: 4, kernel: Pair(3), padding: Padding(top: 1, left: 2, bottom: 1, right: 2))))
        XCTAssertEqual(shape(graph, "b"), "4x20x32")
        // 'same' with an even kernel puts the extra row at the bottom.
        XCTAssertEqual(graph.node(named: "c")?.op, .conv(ConvAttributes(
            filters: 4, kernel: Pair(4, 2), padding: Padding(top: 1, left: 0, bottom: 2, right: 1))))
        XCTAssertEqual(shape(graph, "c"), "4x20x30")
        XCTAssertEqual(graph.node(named: "d")?.op, .maxPool(PoolAttributes(
            kernel: Pair(3), stride: Pair(2), ceilMode: true)))
        XCTAssertEqual(shape(graph, "d"), "3x10x15")
        XCTAssertEqual(graph.node(named: "e")?.op, .avgPool(PoolAttributes(
            kernel: Pair(2, 3), stride: Pair(2, 3), padding: Padding(1, 1), countIncludePad: false)))
        XCTAssertEqual(shape(graph, "e"), "3x11x10")  // H: (20+2-2)/2+1, W: (30+2-3)/3+1
    }

    func testAttributeDefaults() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=3x8x8
            conv filters=4 size=3
            leaky_relu
            elu
            dropout
            lrn size=3
            batchnorm
            prelu
            avgpool size=2
            """))
        let ops = graph.nodes.dropFirst().map(\.op)
        XCTAssertEqual(ops, [
            .conv(ConvAttributes(filters: 4, kernel: Pair(3))),
            .activation(.leakyRelu(alpha: 0.01)),
            .activation(.elu(alpha: 1)),
            .dropout(rate: 0.5),
            .lrn(LRNAttributes(size: 3)),
            .batchNorm(BatchNormAttributes()),
            .prelu(PReLUAttributes(shared: true)),
            .avgPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))),
        ])
    }

    func testFusedEpilogueKeysWithAResidualInput() throws {
        let graph = try XCTUnwrap(parseValid("""
            input x shape=4x8x8
            conv c from=x,x filters=4 size=3 pad=1 residual=true act=leaky_relu:0.2
            dense d units=3 act=relu
            """))
        XCTAssertEqual(graph.node(named: "c")?.inputs, ["x", "x"])
        XCTAssertEqual(shape(graph, "c"), "4x8x8")
        XCTAssertEqual(shape(graph, "d"), "3")
        XCTAssertEqual(diagnosticsText(withInput("4x8x8", "conv c filters=4 size=3 pad=1 residual=true")), """
            t.net:2:1: error: conv 'c' takes 2 inputs, got 1
            conv c filters=4 size=3 pad=1 residual=true
            ^~~~
            """)
    }

    func testLocationsPointAtTheWords() throws {
        let graph = try XCTUnwrap(parseValid("input  img shape=3x8x8\n   leaky_relu act alpha=0.2\n"))
        XCTAssertEqual(graph.node(named: "img")?.location, SourceLocation(file: snippetPath, line: 1, column: 1, length: 5))
        XCTAssertEqual(graph.node(named: "act")?.location, SourceLocation(file: snippetPath, line: 2, column: 4, length: 10))
        XCTAssertEqual(graph.node(named: "act")?.op, .activation(.leakyRelu(alpha: 0.2)))
    }

    func testKeywordsCanBeUsedAsNames() throws {
        let graph = try XCTUnwrap(parseValid("input input shape=3\nrelu relu\nrelu output\noutput output\n"))
        XCTAssertEqual(graph.nodes.map(\.name), ["input", "relu", "output"])
        XCTAssertEqual(graph.outputs, ["output"])
    }

    func testManyNodesAndDeepForwardChains() throws {
        // 10000 layers written last-to-first: every layer reads the one below it.
        let count = 10_000
        var lines = ["input x shape=3", "relu l0 from=l1"]
        for i in 1..<count - 1 { lines.append("relu l\(i) from=l\(i + 1)") }
        lines.append("relu l\(count - 1) from=x")
        lines.append("output l0")
        let graph = try XCTUnwrap(parseValid(lines.joined(separator: "\n")))
        XCTAssertEqual(graph.nodes.count, count + 1)
        XCTAssertEqual(graph.nodes[1].name, "l\(count - 1)")
        XCTAssertEqual(graph.nodes.last?.name, "l0")
    }
}
