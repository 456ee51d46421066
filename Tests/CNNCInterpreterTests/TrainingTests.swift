// Training semantics of the interpreter: the SGD update (momentum, weight decay, Nesterov)
// by hand and over two steps, frozen layers, batch-norm running statistics, evaluation, the
// fused loss, the errors, and a tiny conv net whose loss falls.

import CNNCIR
import CNNCInterpreter
import XCTest

final class TrainingTests: XCTestCase {
    // MARK: - SGD

    func testSGDUpdateByHand() {
        // w = 1, grad = 0.5 twice, lr 0.1, momentum 0.9, weight decay 0.1.
        // Step 1: g = 0.5 + 0.1 * 1 = 0.6; v = 0.6; w = 1 - 0.06 = 0.94.
        // Step 2: g = 0.5 + 0.094 = 0.594; v = 0.54 + 0.594 = 1.134; w = 0.94 - 0.1134 = 0.8266.
        let plain = SGDConfig(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
        let first = plain.update(weight: 1, gradient: 0.5, velocity: 0)
        XCTAssertEqual(first.weight, 0.94, accuracy: 1e-15)
        XCTAssertEqual(first.velocity, 0.6, accuracy: 1e-15)
        let second = plain.update(weight: first.weight, gradient: 0.5, velocity: first.velocity)
        XCTAssertEqual(second.weight, 0.8266, accuracy: 1e-15)
        XCTAssertEqual(second.velocity, 1.134, accuracy: 1e-15)
        // Nesterov. Step 1: g = 0.6; v = 0.6; g = 0.6 + 0.9 * 0.6 = 1.14; w = 1 - 0.114 = 0.886.
        // Step 2: g = 0.5 + 0.0886 = 0.5886; v = 0.54 + 0.5886 = 1.1286;
        // g = 0.5886 + 0.9 * 1.1286 = 1.60434; w = 0.886 - 0.160434 = 0.725566.
        let nesterov = SGDConfig(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true)
        let n1 = nesterov.update(weight: 1, gradient: 0.5, velocity: 0)
        XCTAssertEqual(n1.weight, 0.886, accuracy: 1e-15)
        XCTAssertEqual(n1.velocity, 0.6, accuracy: 1e-15)
        let n2 = nesterov.update(weight: n1.weight, gradient: 0.5, velocity: n1.velocity)
        XCTAssertEqual(n2.weight, 0.725566, accuracy: 1e-15)
        XCTAssertEqual(n2.velocity, 1.1286, accuracy: 1e-15)
        // Defaults: momentum 0.9, no weight decay, no Nesterov.
        XCTAssertEqual(SGDConfig(learningRate: 0.5), SGDConfig(learningRate: 0.5, momentum: 0.9, weightDecay: 0,
                                                               nesterov: false))
    }

    /// x (2) -> dense f (2 units) -> softmax prob, with W = [[0.5, -0.25], [0.1, 0.3]], b = [0, 0.2].
    func denseClassifier() throws -> Interpreter {
        var graph = Graph(name: "sgd", nodes: [
            Node(name: "x", op: .input(Shape([2])), inputs: []),
            Node(name: "f", op: .dense(DenseAttributes(units: 2)), inputs: ["x"]),
            Node(name: "prob", op: .softmax, inputs: ["f"]),
        ], outputs: ["prob"])
        graph.inferShapes()
        return try Interpreter(graph: graph, parameters: [
            "f.weight": tensor([2, 2], [0.5, -0.25, 0.1, 0.3]), "f.bias": tensor([2], [0, 0.2]),
        ])
    }

    /// Two steps on x = [[1, -2], [0.5, 1]], labels [0, 1]: loss, gradients, weights and
    /// velocities after each, from the update formulas evaluated in numpy (float64).
    func testTwoStepsWithMomentumAndWeightDecay() throws {
        let x = tensor([2, 2], [1, -2, 0.5, 1])
        let sgd = SGDConfig(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        let first = try denseClassifier().trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd,
                                                       velocity: [:])
        XCTAssertEqual(first.loss, 0.3482504676481649, accuracy: Tolerance.rounding)
        XCTAssertEqual(first.correct, 2)
        assertClose(first.gradients["f.weight"]!, [2, 2], [-0.015616406231420868, 0.39709722145204107,
                                                          0.015616406231420854, -0.39709722145204107])
        assertClose(first.gradients["f.bias"]!, [2], [0.07584969601587896, -0.07584969601587899])
        assertClose(first.updatedParameters["f.weight"]!, [2, 2], [0.5010616406231421, -0.2894597221452041,
                                                                  0.09833835937685792, 0.3394097221452041])
        assertClose(first.updatedParameters["f.bias"]!, [2], [-0.007584969601587896, 0.20738496960158792])
        assertClose(first.updatedVelocity["f.weight"]!, [2, 2], [-0.010616406231420867, 0.39459722145204107,
                                                                0.016616406231420855, -0.39409722145204107])
        assertClose(first.updatedVelocity["f.bias"]!, [2], [0.07584969601587896, -0.07384969601587899])

        let next = try Interpreter(graph: try denseClassifier().graph, parameters: first.updatedParameters)
        let second = try next.trainingStep(inputs: ["x": x], labels: [0, 1], step: 1, seed: 1, sgd: sgd,
                                           velocity: first.updatedVelocity)
        XCTAssertEqual(second.loss, 0.3171113923909514, accuracy: Tolerance.rounding)
        assertClose(second.updatedParameters["f.weight"]!, [2, 2], [0.5024337033996085, -0.36098797378620784,
                                                                   0.09582689660039148, 0.4108430237862078])
        assertClose(second.updatedParameters["f.bias"]!, [2], [-0.02210337584713916, 0.22152357584713916])
        assertClose(second.updatedVelocity["f.weight"]!, [2, 2], [-0.013720627764664426, 0.7152825164100372,
                                                                 0.025114627764664457, -0.714333016410037])
        assertClose(second.updatedVelocity["f.bias"]!, [2], [0.14518406245551263, -0.14138606245551255])
    }

    func testTwoStepsWithNesterov() throws {
        let x = tensor([2, 2], [1, -2, 0.5, 1])
        let sgd = SGDConfig(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true)
        let first = try denseClassifier().trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd,
                                                       velocity: [:])
        assertClose(first.updatedParameters["f.weight"]!, [2, 2], [0.50201711718397, -0.3249734720758878,
                                                                  0.09684288281603004, 0.3748784720758878])
        assertClose(first.updatedParameters["f.bias"]!, [2], [-0.014411442243017004, 0.214031442243017])
        let next = try Interpreter(graph: try denseClassifier().graph, parameters: first.updatedParameters)
        let second = try next.trainingStep(inputs: ["x": x], labels: [0, 1], step: 1, seed: 1, sgd: sgd,
                                           velocity: first.updatedVelocity)
        XCTAssertEqual(second.loss, 0.29131358124486606, accuracy: Tolerance.rounding)
        assertClose(second.updatedParameters["f.weight"]!, [2, 2], [0.5027052781375905, -0.4198486223770483,
                                                                   0.09453088786240961, 0.4696183028770483])
        assertClose(second.updatedParameters["f.bias"]!, [2], [-0.0352373452628765, 0.2343160672628765])
        assertClose(second.updatedVelocity["f.weight"]!, [2, 2], [-0.008650723760254206, 0.6862573696412853,
                                                                 0.020039323760254264, -0.6853083196412852])
        assertClose(second.updatedVelocity["f.bias"]!, [2], [0.14553881926994, -0.14174261926993992])
    }

    // MARK: - Frozen layers

    /// x (3) -> dense f1 (4) -> tanh -> batchnorm bn -> dense f2 (2).
    static func twoLayers() -> Graph {
        var graph = Graph(name: "two", nodes: [
            Node(name: "x", op: .input(Shape([3])), inputs: []),
            Node(name: "f1", op: .dense(DenseAttributes(units: 4)), inputs: ["x"]),
            Node(name: "t", op: .activation(.tanh), inputs: ["f1"]),
            Node(name: "bn", op: .batchNorm(BatchNormAttributes()), inputs: ["t"]),
            Node(name: "f2", op: .dense(DenseAttributes(units: 2)), inputs: ["bn"]),
        ], outputs: ["f2"])
        graph.inferShapes()
        return graph
    }

    func testFrozenLayersKeepTheirParametersAndHaveNoVelocity() throws {
        let graph = Self.twoLayers()
        let parameters = Weights.seeded(graph, seed: 4)
        let interpreter = try Interpreter(graph: graph, parameters: parameters)
        let x = SeededData.input(name: "x", shape: [4, 3], seed: 4)
        let sgd = SGDConfig(learningRate: 0.5, weightDecay: 0.1)
        let free = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1, 1, 0], step: 0, seed: 1, sgd: sgd,
                                                velocity: [:])
        let frozen = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1, 1, 0], step: 0, seed: 1, sgd: sgd,
                                                  velocity: [:], frozen: ["f1", "bn"])
        XCTAssertEqual(frozen.gradients.keys.sorted(), ["f2.bias", "f2.weight"])
        XCTAssertEqual(frozen.updatedVelocity.keys.sorted(), ["f2.bias", "f2.weight"])
        for name in ["f1.weight", "f1.bias", "bn.weight", "bn.bias"] {
            XCTAssertEqual(frozen.updatedParameters[name], parameters[name], name)
            XCTAssertNotEqual(free.updatedParameters[name], parameters[name], name)
        }
        // The unfrozen layer updates as without freezing, and the gradient still flows back
        // through the frozen layers to the input.
        XCTAssertEqual(frozen.updatedParameters["f2.weight"], free.updatedParameters["f2.weight"])
        XCTAssertEqual(frozen.inputGradients["x"], free.inputGradients["x"])
        XCTAssertTrue(frozen.inputGradients["x"]!.data.contains { $0 != 0 })
        // A frozen batch norm in training still updates its running statistics (PyTorch).
        XCTAssertEqual(frozen.updatedParameters["bn.running_mean"], free.updatedParameters["bn.running_mean"])
        XCTAssertNotEqual(frozen.updatedParameters["bn.running_mean"], parameters["bn.running_mean"])
        XCTAssertEqual(Set(frozen.updatedParameters.keys), Set(parameters.keys))
    }

    func testMissingVelocityIsZeroAndGivenVelocityIsUsed() throws {
        let graph = Self.twoLayers()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 4))
        let x = SeededData.input(name: "x", shape: [2, 3], seed: 4)
        let sgd = SGDConfig(learningRate: 0.1)
        let none = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd, velocity: [:])
        let zeros = Dictionary(uniqueKeysWithValues: graph.parameters().filter(\.trainable).map {
            ($0.name, Tensor(zeros: $0.shape))
        })
        let explicit = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd,
                                                    velocity: zeros)
        XCTAssertEqual(none.updatedParameters, explicit.updatedParameters)
        var ones = zeros
        ones["f2.bias"] = tensor([2], [1, -1])
        let moving = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd,
                                                  velocity: ones)
        let expected = zip(none.gradients["f2.bias"]!.data, [1.0, -1.0]).map { 0.9 * $1 + $0 }
        assertClose(moving.updatedVelocity["f2.bias"]!, [2], expected)
    }

    // MARK: - Batch norm in training

    func testBatchNormRunningStatisticsByHand() throws {
        // One channel of 1x2 over 2 samples: values 1, 2, 3, 6. Batch mean 3, biased variance
        // (4 + 1 + 0 + 9) / 4 = 3.5, unbiased 14 / 3. With momentum 0.1 from running (1, 2):
        // mean 0.9 * 1 + 0.1 * 3 = 1.2, variance 0.9 * 2 + 0.1 * 14 / 3 = 2.2666...
        var graph = Graph(name: "bn", nodes: [
            Node(name: "x", op: .input(Shape([1, 1, 2])), inputs: []),
            Node(name: "bn", op: .batchNorm(BatchNormAttributes()), inputs: ["x"]),
            Node(name: "f", op: .dense(DenseAttributes(units: 2)), inputs: ["bn"]),
        ], outputs: ["f"])
        graph.inferShapes()
        var parameters = Weights.seeded(graph, seed: 1)
        parameters["bn.running_mean"] = tensor([1], [1])
        parameters["bn.running_var"] = tensor([1], [2])
        let result = try Interpreter(graph: graph, parameters: parameters).trainingStep(
            inputs: ["x": tensor([2, 1, 1, 2], [1, 2, 3, 6])], labels: [0, 1], step: 0, seed: 1,
            sgd: SGDConfig(learningRate: 0.1), velocity: [:])
        assertClose(result.updatedParameters["bn.running_mean"]!, [1], [1.2])
        assertClose(result.updatedParameters["bn.running_var"]!, [1], [0.9 * 2 + 0.1 * 14.0 / 3])
        XCTAssertNil(result.gradients["bn.running_mean"])
        XCTAssertNil(result.updatedVelocity["bn.running_var"])
    }

    func testBatchNormTrainingNormalizesWithTheBiasedVariance() throws {
        // Two features over two samples: [1, 5] and [3, 9]. Feature 0: mean 2, variance 1;
        // feature 1: mean 7, variance 4. The logits are the normalized values; running
        // statistics go to 0.9 * (0, 1) + 0.1 * (mean, variance * 2 / 1).
        var graph = Graph(name: "bn", nodes: [
            Node(name: "x", op: .input(Shape([2])), inputs: []),
            Node(name: "bn", op: .batchNorm(BatchNormAttributes(epsilon: 1e-5, momentum: 0.1)), inputs: ["x"]),
        ], outputs: ["bn"])
        graph.inferShapes()
        let result = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1)).trainingStep(
            inputs: ["x": tensor([2, 2], [1, 5, 3, 9])], labels: [0, 1], step: 0, seed: 1,
            sgd: SGDConfig(learningRate: 0), velocity: [:])
        let a = 1 / (1 + 1e-5).squareRoot(), b = 2 / (4 + 1e-5).squareRoot()
        assertClose(result.logits, [2, 2], [-a, -b, a, b])
        assertClose(result.updatedParameters["bn.running_mean"]!, [2], [0.2, 0.7])
        assertClose(result.updatedParameters["bn.running_var"]!, [2], [1.1, 1.7])
        // Inference after the step uses the new running statistics.
        let after = try Interpreter(graph: graph, parameters: result.updatedParameters)
        let y = try after.outputs(["x": tensor([1, 2], [0.2, 0.7])])[0]
        assertClose(y, [1, 2], [0, 0])
    }

    func testBatchNormTrainingNeedsMoreThanOneValuePerChannel() throws {
        let graph = Self.twoLayers()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 4))
        XCTAssertThrowsError(try interpreter.trainingStep(
            inputs: ["x": tensor([1, 3], [1, 2, 3])], labels: [0], step: 0, seed: 1, sgd: SGDConfig(learningRate: 0.1),
            velocity: [:])) { error in
            XCTAssertEqual((error as? InterpreterError)?.description,
                           "batchnorm 'bn' in training needs more than one value per channel, got 1")
        }
        // Inference with one sample is fine.
        XCTAssertNoThrow(try interpreter.evaluate(inputs: ["x": tensor([1, 3], [1, 2, 3])], labels: [0]))
    }

    // MARK: - Loss, evaluation, inputs

    func testLossIsStableForLargeLogits() throws {
        let interpreter = try denseClassifier()
        // z = [1000 * 0.75, 1000 * -0.2 + 0.2]: the loss of label 1 is about 950.
        let x = tensor([1, 2], [1000, -1000])
        let result = try interpreter.evaluate(inputs: ["x": x], labels: [1])
        XCTAssertEqual(result.loss, 750 - (-199.8), accuracy: 1e-9)
        XCTAssertEqual(result.correct, 0)
        let step = try interpreter.trainingStep(inputs: ["x": x], labels: [1], step: 0, seed: 1,
                                                sgd: SGDConfig(learningRate: 0.1), velocity: [:])
        XCTAssertTrue(step.updatedParameters.values.allSatisfy { $0.data.allSatisfy(\.isFinite) })
    }

    func testEvaluateUsesInferenceMode() throws {
        // With dropout and batch norm, evaluation equals the cross-entropy of the inference
        // outputs, and differs from the training-mode loss.
        var graph = Self.twoLayers()
        graph.nodes.insert(Node(name: "drop", op: .dropout(rate: 0.5), inputs: ["bn"]), at: 4)
        graph.nodes[5].inputs = ["drop"]
        graph.inferShapes()
        let parameters = gradientParameters(graph)
        let interpreter = try Interpreter(graph: graph, parameters: parameters)
        let x = SeededData.input(name: "x", shape: [3, 3], seed: 6)
        let labels = [1, 0, 1]
        let logits = try interpreter.outputs(["x": x])[0]
        var expected = 0.0
        var correct = 0
        for n in 0..<3 {
            let z = Array(logits.data[(2 * n)..<(2 * n + 2)])
            expected += log(exp(z[0]) + exp(z[1])) - z[labels[n]]
            if z[labels[n]] >= z[1 - labels[n]] { correct += 1 }
        }
        let result = try interpreter.evaluate(inputs: ["x": x], labels: labels)
        XCTAssertEqual(result.loss, expected / 3, accuracy: 1e-14)
        XCTAssertEqual(result.correct, correct)
        let training = try interpreter.trainingStep(inputs: ["x": x], labels: labels, step: 0, seed: 1,
                                                    sgd: SGDConfig(learningRate: 0.1), velocity: [:])
        XCTAssertNotEqual(training.loss, result.loss)
    }

    func testLogitsOutputCanBeNamed() throws {
        // Graph outputs [prob, h]; training on h (a dense of 3 units) instead of prob.
        var graph = Graph(name: "two_heads", nodes: [
            Node(name: "x", op: .input(Shape([2])), inputs: []),
            Node(name: "f", op: .dense(DenseAttributes(units: 2)), inputs: ["x"]),
            Node(name: "prob", op: .softmax, inputs: ["f"]),
            Node(name: "h", op: .dense(DenseAttributes(units: 3)), inputs: ["x"]),
        ], outputs: ["prob", "h"])
        graph.inferShapes()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 2))
        let x = tensor([1, 2], [0.5, -1])
        let result = try interpreter.trainingStep(inputs: ["x": x], labels: [2], step: 0, seed: 1,
                                                  sgd: SGDConfig(learningRate: 0.1), velocity: [:], logitsOutput: "h")
        XCTAssertEqual(result.logits.shape, [1, 3])
        XCTAssertEqual(result.gradients["f.weight"], Tensor(zeros: [2, 2]))
        XCTAssertTrue(result.gradients["h.weight"]!.data.contains { $0 != 0 })
        XCTAssertEqual(try interpreter.evaluate(inputs: ["x": x], labels: [2], logitsOutput: "h").loss, result.loss,
                       accuracy: 1e-15)
    }

    func testInputGradientOfADenseIsItsWeights() throws {
        // d/dx sum_j w_j * (W x + b)_j = W^T w.
        let interpreter = try denseClassifier()
        let g = try interpreter.inputGradient(inputs: ["x": tensor([1, 2], [3, 4])], output: "f",
                                              outputWeights: tensor([1, 2], [1, 2]))
        assertClose(g["x"]!, [1, 2], [0.5 + 0.2, -0.25 + 0.6])
    }

    // MARK: - Errors

    func assertThrows(_ message: String, file: StaticString = #filePath, line: UInt = #line,
                      _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? InterpreterError)?.description, message, file: file, line: line)
        }
    }

    func testErrors() throws {
        let interpreter = try denseClassifier()
        let x = tensor([2, 2], [1, -2, 0.5, 1])
        let sgd = SGDConfig(learningRate: 0.1)
        assertThrows("label 2 of sample 1 is out of range for the 2 classes of 'f'") {
            _ = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 2], step: 0, seed: 1, sgd: sgd, velocity: [:])
        }
        assertThrows("label -1 of sample 0 is out of range for the 2 classes of 'f'") {
            _ = try interpreter.evaluate(inputs: ["x": x], labels: [-1, 0])
        }
        assertThrows("expected 2 labels, one per sample, got 1") {
            _ = try interpreter.trainingStep(inputs: ["x": x], labels: [0], step: 0, seed: 1, sgd: sgd, velocity: [:])
        }
        assertThrows("frozen 'g': not a node of graph 'sgd'") {
            _ = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd,
                                             velocity: [:], frozen: ["g"])
        }
        assertThrows("velocity 'f.weight': expected shape [2, 2], got [4]\nvelocity 'g.bias': not a trainable parameter of graph 'sgd'") {
            _ = try interpreter.trainingStep(inputs: ["x": x], labels: [0, 1], step: 0, seed: 1, sgd: sgd,
                                             velocity: ["f.weight": Tensor(zeros: [4]), "g.bias": Tensor(zeros: [2])])
        }
        assertThrows("logits output 'nope' is not a node of graph 'sgd'") {
            _ = try interpreter.evaluate(inputs: ["x": x], labels: [0, 1], logitsOutput: "nope")
        }
        assertThrows("training needs at least one sample, got an empty batch") {
            _ = try interpreter.trainingStep(inputs: ["x": Tensor(zeros: [0, 2])], labels: [], step: 0, seed: 1,
                                             sgd: sgd, velocity: [:])
        }
        assertThrows("output 'nope' is not a node of graph 'sgd'") {
            _ = try interpreter.inputGradient(inputs: ["x": x], output: "nope", outputWeights: x)
        }
        assertThrows("output weights: expected shape [2, 2] like 'f', got [1, 2]") {
            _ = try interpreter.inputGradient(inputs: ["x": x], output: "f", outputWeights: tensor([1, 2], [1, 1]))
        }
        let maps = singleOpGraph(.activation(.relu), input: [2, 1, 1])
        assertThrows("logits 'y' must be a vector of class scores, got shape 2x1x1") {
            _ = try Interpreter(graph: maps, parameters: [:]).evaluate(inputs: ["x": Tensor(zeros: [1, 2, 1, 1])],
                                                                       labels: [0])
        }
    }

    // MARK: - Learning

    /// 16 images 1x6x6 of two classes, a vertical (class 0) or horizontal (class 1) bar at a
    /// position that varies with the sample, plus seeded noise.
    static func bars() -> (images: Tensor, labels: [Int]) {
        var images = SeededData.input(name: "noise", shape: [16, 1, 6, 6], seed: 12)
        images.data = images.data.map { $0 * 0.3 }
        var labels: [Int] = []
        for n in 0..<16 {
            let label = n % 2, position = 1 + (n / 2) % 4
            for i in 0..<6 {
                let (h, w) = label == 0 ? (i, position) : (position, i)
                images.data[n * 36 + h * 6 + w] += 1
            }
            labels.append(label)
        }
        return (images, labels)
    }

    func testLossOfATinyConvNetFalls() throws {
        // conv 4x3x3 pad 1 -> batchnorm -> relu -> maxpool 2 -> dropout 0.1 -> dense 2 -> softmax,
        // 30 full-batch steps of SGD with momentum.
        var graph = Graph(name: "bars", nodes: [
            Node(name: "image", op: .input(Shape([1, 6, 6])), inputs: []),
            Node(name: "c1", op: .conv(ConvAttributes(filters: 4, kernel: Pair(3), padding: Padding(1, 1))),
                 inputs: ["image"]),
            Node(name: "bn1", op: .batchNorm(BatchNormAttributes()), inputs: ["c1"]),
            Node(name: "r1", op: .activation(.relu), inputs: ["bn1"]),
            Node(name: "p1", op: .maxPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))), inputs: ["r1"]),
            Node(name: "drop", op: .dropout(rate: 0.1), inputs: ["p1"]),
            Node(name: "logits", op: .dense(DenseAttributes(units: 2)), inputs: ["drop"]),
            Node(name: "prob", op: .softmax, inputs: ["logits"]),
        ], outputs: ["prob"])
        graph.inferShapes()
        let (images, labels) = Self.bars()
        var parameters = Weights.seeded(graph, seed: 5)
        var velocity: [String: Tensor] = [:]
        let sgd = SGDConfig(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4)
        var losses: [Double] = []
        for step in 0..<30 {
            let result = try Interpreter(graph: graph, parameters: parameters).trainingStep(
                inputs: ["image": images], labels: labels, step: step, seed: 77, sgd: sgd, velocity: velocity)
            losses.append(result.loss)
            parameters = result.updatedParameters
            velocity = result.updatedVelocity
        }
        let evaluation = try Interpreter(graph: graph, parameters: parameters).evaluate(
            inputs: ["image": images], labels: labels)
        print("tiny conv net: loss \(losses[0]) -> \(losses.last!), evaluation loss \(evaluation.loss), "
              + "\(evaluation.correct)/16 correct")
        XCTAssertLessThan(losses.last!, losses[0] / 2)
        XCTAssertLessThan(evaluation.loss, losses[0] / 2)
        XCTAssertGreaterThanOrEqual(evaluation.correct, 15)
    }
}
