// Batch independence: running N samples together equals running each alone, bit for bit,
// for every node of a graph that uses every op.

import CNNCIR
import CNNCInterpreter
import XCTest

final class BatchTests: XCTestCase {
    /// Every op in one graph: 3x9x9 input through conv, batchnorm, PReLU, ceil-mode max pool,
    /// depthwise dilated conv, grouped 1x1 conv, a residual add, LRN, average pooling,
    /// activations, concat, dropout, flatten, dense, vector batchnorm and softmax.
    static func everyOp() -> Graph {
        func conv(_ filters: Int, _ size: Int, pad: Int = 0, dilation: Int = 1, groups: Int = 1) -> Op {
            .conv(ConvAttributes(filters: filters, kernel: Pair(size), padding: Padding(pad, pad),
                                 dilation: Pair(dilation), groups: groups))
        }
        var graph = Graph(name: "every_op", nodes: [
            Node(name: "x", op: .input(Shape([3, 9, 9])), inputs: []),
            Node(name: "c1", op: conv(6, 3, pad: 1), inputs: ["x"]),
            Node(name: "bn1", op: .batchNorm(BatchNormAttributes()), inputs: ["c1"]),
            Node(name: "pr1", op: .prelu(PReLUAttributes(shared: false)), inputs: ["bn1"]),
            Node(name: "mp", op: .maxPool(PoolAttributes(kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1),
                                                         ceilMode: true)), inputs: ["pr1"]),
            Node(name: "dw", op: conv(6, 3, pad: 2, dilation: 2, groups: 6), inputs: ["mp"]),
            Node(name: "lr", op: .activation(.leakyRelu(alpha: 0.1)), inputs: ["dw"]),
            Node(name: "c3", op: conv(6, 1, groups: 2), inputs: ["lr"]),
            Node(name: "res", op: .add, inputs: ["c3", "mp"]),
            Node(name: "norm", op: .lrn(LRNAttributes(size: 3, alpha: 0.5, beta: 0.75, k: 1)), inputs: ["res"]),
            Node(name: "ap", op: .avgPool(PoolAttributes(kernel: Pair(2), stride: Pair(2), ceilMode: true,
                                                         countIncludePad: false)), inputs: ["norm"]),
            Node(name: "e", op: .activation(.elu(alpha: 1)), inputs: ["ap"]),
            Node(name: "s", op: .activation(.sigmoid), inputs: ["ap"]),
            Node(name: "cat", op: .concat, inputs: ["e", "s"]),
            Node(name: "drop", op: .dropout(rate: 0.5), inputs: ["cat"]),
            Node(name: "gap", op: .globalAvgPool, inputs: ["drop"]),
            Node(name: "chan", op: .softmax, inputs: ["drop"]),
            Node(name: "flat", op: .flatten, inputs: ["drop"]),
            Node(name: "f1", op: .dense(DenseAttributes(units: 8)), inputs: ["flat"]),
            Node(name: "bn2", op: .batchNorm(BatchNormAttributes()), inputs: ["f1"]),
            Node(name: "sw", op: .activation(.swish), inputs: ["bn2"]),
            Node(name: "th", op: .activation(.tanh), inputs: ["sw"]),
            Node(name: "pr2", op: .prelu(PReLUAttributes()), inputs: ["th"]),
            Node(name: "r", op: .activation(.relu), inputs: ["pr2"]),
            Node(name: "f2", op: .dense(DenseAttributes(units: 5, bias: false)), inputs: ["r"]),
            Node(name: "prob", op: .softmax, inputs: ["f2"]),
        ], outputs: ["prob", "gap", "chan"])
        let problems = graph.inferShapes()
        precondition(problems.isEmpty, "\(problems)")
        return graph
    }

    /// Seeded parameters with batch-norm statistics and PReLU slopes moved off their
    /// initial constants, so every parameter matters.
    static func parameters(_ graph: Graph) -> [String: Tensor] {
        var parameters = Weights.seeded(graph, seed: 11)
        for spec in graph.parameters() where spec.initializer.bound == nil {
            var t = SeededData.input(name: spec.name, shape: spec.shape, seed: 5)
            if spec.role == "running_var" { t.data = t.data.map { $0 + 1.5 } }
            parameters[spec.name] = t
        }
        return parameters
    }

    func testShapesOfEveryOpGraph() {
        let graph = Self.everyOp()
        let shapes = Dictionary(uniqueKeysWithValues: graph.nodes.map { ($0.name, $0.shape.dims) })
        XCTAssertEqual(shapes["mp"], [6, 5, 5])
        XCTAssertEqual(shapes["ap"], [6, 3, 3])
        XCTAssertEqual(shapes["cat"], [12, 3, 3])
        XCTAssertEqual(shapes["flat"], [108])
    }

    func testBatchEqualsSamplesAlone() throws {
        let graph = Self.everyOp()
        let interpreter = try Interpreter(graph: graph, parameters: Self.parameters(graph))
        let batch = SeededData.input(name: "x", shape: [3, 3, 9, 9], seed: 2)
        let together = try interpreter.run(["x": batch])
        for n in 0..<3 {
            let alone = try interpreter.run(["x": batch.sample(n)])
            for node in graph.nodes {
                XCTAssertEqual(together[node.name]!.sample(n), alone[node.name]!, "node '\(node.name)', sample \(n)")
            }
        }
        let prob = together["prob"]!
        for n in 0..<3 {
            XCTAssertEqual(prob.sample(n).data.reduce(0, +), 1, accuracy: 1e-12)
        }
        XCTAssertEqual(together["gap"]!.shape, [3, 12, 1, 1])
        XCTAssertEqual(together["chan"]!.shape, [3, 12, 3, 3])
    }

    func testStackingSamplesRebuildsTheBatch() {
        let batch = SeededData.input(name: "x", shape: [3, 2, 2], seed: 2)
        XCTAssertEqual(Tensor(stacking: (0..<3).map { Tensor(shape: [2, 2], data: batch.sample($0).data) }), batch)
    }
}
