// The seeded dropout mask: its formula, determinism, independence of node, step and seed, and
// the fraction kept.

import CNNCIR
import CNNCInterpreter
import XCTest

final class DropoutMaskTests: XCTestCase {
    func testFormula() {
        // stream = splitmix64(seed ^ nameHash(node) ^ splitmix64(step)),
        // u = (splitmix64(stream + index) >> 40) / 2^24, keep iff u >= rate.
        let stream = SeededInit.splitmix64(42 ^ SeededInit.nameHash("drop") ^ SeededInit.splitmix64(3))
        for index in 0..<64 {
            let u = Double(SeededInit.splitmix64(stream &+ UInt64(index)) >> 40) / 16_777_216
            XCTAssertEqual(DropoutMask.keep(seed: 42, node: "drop", step: 3, index: index, rate: 0.5), u >= 0.5)
            XCTAssertEqual(DropoutMask.uniform(seed: 42, node: "drop", step: 3, index: index), u)
        }
        XCTAssertEqual(DropoutMask.scale(rate: 0.2), 1.25)
    }

    /// The first 32 decisions for (seed 42, node "drop", step 3, rate 0.5), pinned so that a
    /// change of the formula, which the generated C must follow, is seen (the pattern was
    /// checked against the formula written out separately in Python).
    func testPinnedMask() {
        let bits = (0..<32).map { DropoutMask.keep(seed: 42, node: "drop", step: 3, index: $0, rate: 0.5) ? "1" : "0" }
        XCTAssertEqual(bits.joined(), Self.pinned)
    }

    static let pinned = "01100101110101010110110100111110"

    func testDeterministicAndDifferentPerNodeStepAndSeed() {
        func mask(seed: UInt64 = 1, node: String = "d", step: Int = 0) -> [Bool] {
            (0..<256).map { DropoutMask.keep(seed: seed, node: node, step: step, index: $0, rate: 0.5) }
        }
        XCTAssertEqual(mask(), mask())
        for other in [mask(seed: 2), mask(node: "e"), mask(step: 1)] {
            let differing = zip(mask(), other).filter { $0 != $1 }.count
            XCTAssertGreaterThan(differing, 64, "masks should be unrelated")
        }
    }

    func testFractionKeptIsOneMinusRate() {
        // 100k elements: the standard deviation of the kept fraction is at most 0.0016.
        for rate in [0.1, 0.5, 0.8] {
            let kept = (0..<100_000).filter { DropoutMask.keep(seed: 9, node: "drop", step: 7, index: $0, rate: rate) }.count
            XCTAssertEqual(Double(kept) / 100_000, 1 - rate, accuracy: 0.01, "rate \(rate)")
        }
        XCTAssertTrue((0..<1000).allSatisfy { DropoutMask.keep(seed: 9, node: "d", step: 0, index: $0, rate: 0) })
    }

    func testInterpreterAppliesTheMaskInTrainingOnly() throws {
        // x -> dropout 0.25 -> dense with identity weights: the logits are the dropped and
        // scaled inputs; evaluation leaves them alone.
        var graph = Graph(name: "drop", nodes: [
            Node(name: "x", op: .input(Shape([4])), inputs: []),
            Node(name: "drop", op: .dropout(rate: 0.25), inputs: ["x"]),
            Node(name: "f", op: .dense(DenseAttributes(units: 4, bias: false)), inputs: ["drop"]),
        ], outputs: ["f"])
        graph.inferShapes()
        let identity = Tensor(shape: [4, 4], data: (0..<16).map { $0 % 5 == 0 ? 1 : 0 })
        let interpreter = try Interpreter(graph: graph, parameters: ["f.weight": identity])
        let x = iota([3, 4])
        let result = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1, 2], step: 11, seed: 5,
                                                  sgd: SGDConfig(learningRate: 0), velocity: [:])
        let expected = (0..<12).map {
            DropoutMask.keep(seed: 5, node: "drop", step: 11, index: $0, rate: 0.25) ? x.data[$0] / 0.75 : 0
        }
        assertClose(result.logits, [3, 4], expected)
        XCTAssertTrue(expected.contains(0))
        XCTAssertEqual(try interpreter.outputs(["x": x])[0], x)
    }
}
