// Seeded weights and input data: deterministic, Float-exact, and within the initializers'
// bounds (He and Xavier uniform, PyTorch bias bound, batch-norm constants, PReLU 0.25).

import CNNCIR
import CNNCInterpreter
import XCTest

final class SeededTests: XCTestCase {
    /// image 3x8x8 -> conv c1 (8 filters, 3x3) -> relu -> batchnorm bn -> prelu p
    /// -> flatten -> dense logits (10) -> softmax.
    static func graph() -> Graph {
        var graph = Graph(name: "seeded", nodes: [
            Node(name: "image", op: .input(Shape([3, 8, 8])), inputs: []),
            Node(name: "c1", op: .conv(ConvAttributes(filters: 8, kernel: Pair(3))), inputs: ["image"]),
            Node(name: "r1", op: .activation(.relu), inputs: ["c1"]),
            Node(name: "bn", op: .batchNorm(BatchNormAttributes()), inputs: ["r1"]),
            Node(name: "p", op: .prelu(PReLUAttributes(shared: false)), inputs: ["bn"]),
            Node(name: "flat", op: .flatten, inputs: ["p"]),
            Node(name: "logits", op: .dense(DenseAttributes(units: 10)), inputs: ["flat"]),
            Node(name: "prob", op: .softmax, inputs: ["logits"]),
        ], outputs: ["prob"])
        graph.inferShapes()
        return graph
    }

    func testDeterministicPerSeed() {
        let graph = Self.graph()
        XCTAssertEqual(Weights.seeded(graph, seed: 42), Weights.seeded(graph, seed: 42))
        XCTAssertNotEqual(Weights.seeded(graph, seed: 42)["c1.weight"], Weights.seeded(graph, seed: 43)["c1.weight"])
    }

    func testValuesAreSeededInitRoundedToFloat() {
        let graph = Self.graph()
        let weights = Weights.seeded(graph, seed: 9)
        for spec in graph.parameters() {
            let t = weights[spec.name]!
            XCTAssertEqual(t.shape, spec.shape)
            XCTAssertEqual(t.data, SeededInit.values(for: spec, seed: 9).map(Double.init), spec.name)
            XCTAssertTrue(t.data.allSatisfy { Double(Float($0)) == $0 }, spec.name)
        }
    }

    /// All values within [-bound, bound] and spread over most of it.
    func assertUniform(_ t: Tensor?, bound: Double, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let t else { return XCTFail("no tensor \(name)", file: file, line: line) }
        let low = t.data.min()!, high = t.data.max()!
        XCTAssertGreaterThanOrEqual(low, -bound, name, file: file, line: line)
        XCTAssertLessThanOrEqual(high, bound, name, file: file, line: line)
        XCTAssertLessThan(low, -0.5 * bound, name, file: file, line: line)
        XCTAssertGreaterThan(high, 0.5 * bound, name, file: file, line: line)
    }

    func testBounds() {
        let weights = Weights.seeded(Self.graph(), seed: 1)
        // c1 feeds a ReLU: He uniform with fan_in = 3*3*3 = 27; its bias 1/sqrt(27).
        XCTAssertEqual(weights["c1.weight"]?.shape, [8, 3, 3, 3])
        assertUniform(weights["c1.weight"], bound: (6.0 / 27).squareRoot(), "c1.weight")
        assertUniform(weights["c1.bias"], bound: 1 / 27.0.squareRoot(), "c1.bias")
        // logits feeds softmax: Xavier uniform with fan_in = 8*6*6 = 288, fan_out = 10.
        XCTAssertEqual(weights["logits.weight"]?.shape, [10, 288])
        assertUniform(weights["logits.weight"], bound: (6.0 / 298).squareRoot(), "logits.weight")
        assertUniform(weights["logits.bias"], bound: 1 / 288.0.squareRoot(), "logits.bias")
        // Batch norm starts as the identity; PReLU slopes start at 0.25.
        XCTAssertEqual(weights["bn.weight"], Tensor(shape: [8], data: Array(repeating: 1, count: 8)))
        XCTAssertEqual(weights["bn.bias"], Tensor(zeros: [8]))
        XCTAssertEqual(weights["bn.running_mean"], Tensor(zeros: [8]))
        XCTAssertEqual(weights["bn.running_var"], Tensor(shape: [8], data: Array(repeating: 1, count: 8)))
        XCTAssertEqual(weights["p.weight"], Tensor(shape: [8], data: Array(repeating: 0.25, count: 8)))
    }

    func testSeededInput() {
        let a = SeededData.input(name: "image", shape: [2, 3, 4, 4], seed: 5)
        XCTAssertEqual(a.shape, [2, 3, 4, 4])
        XCTAssertEqual(a, SeededData.input(name: "image", shape: [2, 3, 4, 4], seed: 5))
        XCTAssertNotEqual(a, SeededData.input(name: "image", shape: [2, 3, 4, 4], seed: 6))
        XCTAssertNotEqual(a, SeededData.input(name: "other", shape: [2, 3, 4, 4], seed: 5))
        XCTAssertTrue(a.data.allSatisfy { $0 >= -1 && $0 < 1 && Double(Float($0)) == $0 })
        XCTAssertLessThan(a.data.min()!, -0.8)
        XCTAssertGreaterThan(a.data.max()!, 0.8)
        for i in [0, 17, 95] {
            XCTAssertEqual(a.data[i], 2 * SeededInit.uniform(seed: 5, name: "image", index: i) - 1)
        }
        // The first sample of a larger batch is the same data: element i depends only on i.
        XCTAssertEqual(SeededData.input(name: "image", shape: [3, 3, 4, 4], seed: 5).sample(0), a.sample(0))
    }
}
