// Every example network under Examples/: it parses without diagnostics, its IR text prints and
// parses back to the same graph, it has exactly the expected number of trainable parameters
// (counted as PyTorch's `sum(p.numel() for p in model.parameters())` does), and the small ones
// run one seeded image through the reference interpreter to finite outputs of the right shape.

import CNNCFrontend
import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class ExamplesTests: XCTestCase {
    // MARK: - CIFAR and MNIST examples (parsed, counted and interpreted)

    func testLeNet() throws {
        try checkExample("lenet/model.net", parameters: 61_706, interpretedOutput: [1, 10])
    }

    func testLeNetWithBatchNorm() throws {
        try checkExample("lenet/lenet_bn.net", parameters: 117_242, interpretedOutput: [1, 10])
    }

    func testAlexNetSmall() throws {
        try checkExample("alexnet_small/model.net", parameters: 1_790_154, interpretedOutput: [1, 10])
    }

    func testVGG11BN() throws {
        try checkExample("vgg11_bn/model.net", parameters: 9_231_114, interpretedOutput: [1, 10])
    }

    func testResNet20() throws {
        try checkExample("resnet20/model.net", parameters: 272_474, interpretedOutput: [1, 10])
    }

    func testDenseNetSmall() throws {
        try checkExample("densenet_small/model.net", parameters: 176_122, interpretedOutput: [1, 10])
    }

    func testInception() throws {
        try checkExample("inception/model.net", parameters: 67_314, interpretedOutput: [1, 10])
    }

    func testActivations() throws {
        try checkExample("activations/model.net", parameters: 107_355, interpretedOutput: [1, 10])
    }

    // MARK: - ImageNet examples (parsed and counted; torchvision's numbers)

    func testImageNetAlexNet() throws {
        try checkExample("imagenet/alexnet.net", parameters: 61_100_840)
    }

    func testImageNetVGG16() throws {
        try checkExample("imagenet/vgg16.net", parameters: 138_357_544)
    }

    func testImageNetResNet18() throws {
        try checkExample("imagenet/resnet18.net", parameters: 11_689_512)
    }

    func testImageNetGoogLeNet() throws {
        try checkExample("imagenet/googlenet.net", parameters: 6_624_904)
    }

    func testImageNetDenseNet121() throws {
        try checkExample("imagenet/densenet121.net", parameters: 7_978_856)
    }

    /// A new `.net` file under Examples/ needs a test above.
    func testEveryExampleIsTested() throws {
        let tested: Set<String> = [
            "lenet/model.net", "lenet/lenet_bn.net", "alexnet_small/model.net", "vgg11_bn/model.net", "resnet20/model.net",
            "densenet_small/model.net", "inception/model.net", "activations/model.net",
            "imagenet/alexnet.net", "imagenet/vgg16.net", "imagenet/resnet18.net",
            "imagenet/googlenet.net", "imagenet/densenet121.net",
        ]
        let found = try Self.exampleFiles()
        XCTAssertEqual(Set(found), tested, "examples on disk vs examples with a test")
    }

    // MARK: - Helpers

    /// The repository's Examples/ folder, found from this file's path.
    static let examplesDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ExamplesTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("Examples")

    /// Paths of every `.net` file under Examples/, relative to it, sorted.
    static func exampleFiles() throws -> [String] {
        let root = examplesDirectory.path
        guard let enumerator = FileManager.default.enumerator(atPath: root) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: root])
        }
        return enumerator.compactMap { $0 as? String }.filter { $0.hasSuffix(".net") }.sorted()
    }

    /// Parses one example and checks it; `interpretedOutput` (batch included) also runs it.
    private func checkExample(_ relativePath: String, parameters expected: Int,
                              interpretedOutput: [Int]? = nil,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let url = Self.examplesDirectory.appendingPathComponent(relativePath)
        let text = try String(contentsOf: url, encoding: .utf8)
        let path = "Examples/" + relativePath
        let graph: Graph
        switch NetFrontend.parse(text, path: path) {
        case .success(let g):
            graph = g
        case .failure(let list):
            let source = SourceFile(path: path, text: text)
            let rendered = list.diagnostics.map { source.render($0) }.joined(separator: "\n")
            XCTFail("\(path) does not parse:\n\(rendered)", file: file, line: line)
            return
        }

        // IR text round trip: print -> parse gives the same graph and the same text.
        let irText = graph.irText()
        switch Graph.parseIR(irText, file: path) {
        case .success(let reparsed):
            XCTAssertEqual(reparsed, graph, "\(path): IR round trip changed the graph", file: file, line: line)
            XCTAssertEqual(reparsed.irText(), irText, "\(path): IR text differs after a round trip",
                           file: file, line: line)
        case .failure(let list):
            XCTFail("\(path): its IR text does not parse back:\n\(list)", file: file, line: line)
        }

        let count = graph.parameters().filter(\.trainable).map(\.count).reduce(0, +)
        XCTAssertEqual(count, expected, "\(path): trainable parameter count", file: file, line: line)

        if let interpretedOutput {
            try interpret(graph, path: path, expectedOutput: interpretedOutput, file: file, line: line)
        }
    }

    /// Runs one seeded sample through the interpreter with seeded weights; every output must
    /// have the expected shape and only finite values that are not all equal.
    private func interpret(_ graph: Graph, path: String, expectedOutput: [Int],
                           file: StaticString, line: UInt) throws {
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1))
        var inputs: [String: Tensor] = [:]
        for node in graph.inputs {
            inputs[node.name] = SeededData.input(name: node.name, shape: node.shape.batched(1), seed: 2)
        }
        let outputs = try interpreter.outputs(inputs)
        XCTAssertEqual(outputs.count, 1, "\(path): number of outputs", file: file, line: line)
        for output in outputs {
            XCTAssertEqual(output.shape, expectedOutput, "\(path): output shape", file: file, line: line)
            XCTAssertTrue(output.data.allSatisfy(\.isFinite), "\(path): non-finite output \(output.data)",
                          file: file, line: line)
            XCTAssertGreaterThan(Set(output.data).count, 1, "\(path): constant output \(output.data)",
                                 file: file, line: line)
        }
    }
}
