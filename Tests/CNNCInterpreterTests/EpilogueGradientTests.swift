// Backward through fused epilogues of conv and dense (`act=` in `.net`, or the fusion passes):
// finite differences, and equality with the unfused graph's gradients.

import CNNCIR
import CNNCInterpreter
import XCTest

final class EpilogueGradientTests: XCTestCase {
    /// x (2x3x3) -> conv s (2, 1x1) shortcut; conv c (2, 3x3 pad 1) on x, then either an
    /// epilogue `prelu(elu(c + s))` or the same as separate add, elu and prelu nodes; then a
    /// dense with a tanh epilogue (or node) and dense logits.
    static func graphs() -> (fused: Graph, unfused: Graph) {
        let conv = { (epilogue: Epilogue) -> Op in
            .conv(ConvAttributes(filters: 2, kernel: Pair(3), padding: Padding(1, 1), epilogue: epilogue))
        }
        let head: [Node] = [
            Node(name: "x", op: .input(Shape([2, 3, 3])), inputs: []),
            Node(name: "s", op: .conv(ConvAttributes(filters: 2, kernel: Pair(1))), inputs: ["x"]),
        ]
        let fused = makeGraph(head + [
            Node(name: "c", op: conv(Epilogue(residual: true, activation: .elu(alpha: 0.8),
                                              prelu: FoldedPReLU(node: "p", shared: false))), inputs: ["x", "s"]),
            Node(name: "d", op: .dense(DenseAttributes(units: 4, epilogue: Epilogue(activation: .tanh))), inputs: ["c"]),
            Node(name: "logits", op: .dense(DenseAttributes(units: 3)), inputs: ["d"]),
        ])
        let unfused = makeGraph(head + [
            Node(name: "c", op: conv(.none), inputs: ["x"]),
            Node(name: "a", op: .add, inputs: ["c", "s"]),
            Node(name: "e", op: .activation(.elu(alpha: 0.8)), inputs: ["a"]),
            Node(name: "p", op: .prelu(PReLUAttributes(shared: false)), inputs: ["e"]),
            Node(name: "d", op: .dense(DenseAttributes(units: 4)), inputs: ["p"]),
            Node(name: "t", op: .activation(.tanh), inputs: ["d"]),
            Node(name: "logits", op: .dense(DenseAttributes(units: 3)), inputs: ["t"]),
        ])
        return (fused, unfused)
    }

    func testFusedResidualActivationPReLUMatchesFiniteDifferences() throws {
        let (fused, _) = Self.graphs()
        XCTAssertEqual(fused.parameters().map(\.name).sorted(), [
            "c.bias", "c.weight", "d.bias", "d.weight", "logits.bias", "logits.weight", "p.weight", "s.bias", "s.weight",
        ])
        _ = try checkTrainingGradients("conv epilogue residual+elu+prelu, dense epilogue tanh", fused,
                                       parameters: gradientParameters(fused),
                                       inputs: ["x": awayFromZero("x", [2, 2, 3, 3])], labels: [2, 0])
    }

    func testFusedAndUnfusedGraphsHaveTheSameGradients() throws {
        let (fused, unfused) = Self.graphs()
        let parameters = gradientParameters(fused)
        let x = awayFromZero("x", [3, 2, 3, 3])
        let sgd = SGDConfig(learningRate: 0.1, weightDecay: 0.01)
        let a = try Interpreter(graph: fused, parameters: parameters).trainingStep(
            inputs: ["x": x], labels: [0, 1, 2], step: 0, seed: 1, sgd: sgd, velocity: [:], frozen: ["s"])
        let b = try Interpreter(graph: unfused, parameters: parameters).trainingStep(
            inputs: ["x": x], labels: [0, 1, 2], step: 0, seed: 1, sgd: sgd, velocity: [:], frozen: ["s"])
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-14)
        XCTAssertEqual(a.gradients.keys.sorted(), b.gradients.keys.sorted())
        for (name, gradient) in b.gradients {
            assertClose(a.gradients[name]!, gradient.shape, gradient.data)
            assertClose(a.updatedParameters[name]!, gradient.shape, b.updatedParameters[name]!.data)
        }
        assertClose(a.inputGradients["x"]!, x.shape, b.inputGradients["x"]!.data)
    }

    func testFoldedBatchNormIsDifferentiatedInInferenceAndRefusedInTraining() throws {
        // conv c with batch norm bn folded in (inference), then relu (epilogue).
        let graph = makeGraph([
            Node(name: "x", op: .input(Shape([2, 3, 3])), inputs: []),
            Node(name: "c", op: .conv(ConvAttributes(
                filters: 3, kernel: Pair(2), epilogue: Epilogue(batchNorm: FoldedBatchNorm(node: "bn", epsilon: 1e-3),
                                                                activation: .swish))), inputs: ["x"]),
            Node(name: "f", op: .dense(DenseAttributes(units: 2)), inputs: ["c"]),
        ])
        let parameters = gradientParameters(graph)
        let x = awayFromZero("x", [2, 2, 3, 3])
        _ = try checkInputGradient("conv epilogue folded batchnorm+swish (input)", graph, parameters: parameters,
                                   inputs: ["x": x])
        XCTAssertThrowsError(try Interpreter(graph: graph, parameters: parameters).trainingStep(
            inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: SGDConfig(learningRate: 0.1), velocity: [:])) {
            XCTAssertEqual(($0 as? InterpreterError)?.description,
                           "conv 'c' has batchnorm 'bn' folded in, which is inference-only; train the unfolded graph")
        }
    }
}
