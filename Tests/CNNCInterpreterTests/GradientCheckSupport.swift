// Central finite differences in Double against the interpreter's analytic gradients.
//
// For every element e of a parameter or input: numeric = (L(e + h) - L(e - h)) / 2h, with L
// the loss of a training step (training mode: batch statistics, the dropout mask of the step)
// or sum(weights * output) (inference mode, `inputGradient`). Values are Doubles end to end,
// so the difference is limited only by rounding (~eps * |L| / h ~ 1e-11) and truncation
// (h^2 * L''' / 6 ~ 1e-10): `Tolerance.gradient` leaves room for both.

import CNNCIR
import CNNCInterpreter
import XCTest

extension Tolerance {
    /// Analytic vs central-difference gradient, as |analytic - numeric| / max(|analytic|,
    /// |numeric|, `gradientFloor`): relative for gradients above the floor, absolute (scaled
    /// by the floor) below it, where the difference is pure rounding noise.
    static let gradient = 1e-6
    static let gradientFloor = 1e-3
    /// The finite-difference step.
    static let step = 1e-5
}

/// The worst disagreement of one gradient check.
struct GradientCheckReport: CustomStringConvertible {
    var label: String
    var checked = 0
    var worst = 0.0
    var worstAt = ""

    mutating func compare(_ analytic: Double, _ numeric: Double, at place: String) {
        checked += 1
        let error = abs(analytic - numeric) / max(abs(analytic), abs(numeric), Tolerance.gradientFloor)
        if error > worst || error.isNaN {
            worst = error
            worstAt = "\(place): analytic \(analytic), numeric \(numeric)"
        }
    }

    var description: String {
        "gradient check \(label): max error \(String(format: "%.2e", worst)) over \(checked) values"
            + (worstAt.isEmpty ? "" : " (worst \(worstAt))")
    }

    /// Fails when the worst error is above `Tolerance.gradient`; prints the report either way.
    func assertWithinTolerance(file: StaticString = #filePath, line: UInt = #line) {
        print(description)
        XCTAssertGreaterThan(checked, 0, "\(label): nothing checked", file: file, line: line)
        XCTAssertLessThanOrEqual(worst, Tolerance.gradient, description, file: file, line: line)
    }
}

/// `index` of a tensor of `shape` as a multi-index `[n, c, h, w]`.
func multiIndex(_ index: Int, _ shape: [Int]) -> [Int] {
    var result: [Int] = []
    var rest = index
    for d in shape.reversed() { result.insert(rest % max(d, 1), at: 0); rest /= max(d, 1) }
    return result
}

/// Checks the gradients `trainingStep` returns for every trainable parameter and input of the
/// graph against central differences of its loss (same step and seed, so the same dropout
/// mask). Each checked tensor must have a non-zero gradient somewhere, so no check is vacuous,
/// except those named in `zeroGradients`, whose gradient must vanish (a bias before batch norm).
func checkTrainingGradients(_ label: String, _ graph: Graph, parameters: [String: Tensor],
                            inputs: [String: Tensor], labels: [Int], step: Int = 3, seed: UInt64 = 17,
                            zeroGradients: Set<String> = [],
                            file: StaticString = #filePath, line: UInt = #line) throws -> GradientCheckReport {
    let sgd = SGDConfig(learningRate: 0)
    func loss(_ parameters: [String: Tensor], _ inputs: [String: Tensor]) throws -> Double {
        try Interpreter(graph: graph, parameters: parameters)
            .trainingStep(inputs: inputs, labels: labels, step: step, seed: seed, sgd: sgd, velocity: [:]).loss
    }
    let analytic = try Interpreter(graph: graph, parameters: parameters)
        .trainingStep(inputs: inputs, labels: labels, step: step, seed: seed, sgd: sgd, velocity: [:])
    var report = GradientCheckReport(label: label)
    let trainable = graph.parameters().filter(\.trainable).map(\.name)
    XCTAssertEqual(analytic.gradients.keys.sorted(), trainable.sorted(), "\(label): gradient names", file: file, line: line)
    for name in trainable {
        let gradient = try XCTUnwrap(analytic.gradients[name], file: file, line: line)
        if zeroGradients.contains(name) {
            XCTAssertTrue(gradient.data.allSatisfy { abs($0) < 1e-12 }, "\(label): '\(name)' should have no gradient",
                          file: file, line: line)
        } else {
            XCTAssertTrue(gradient.data.contains { abs($0) > 1e-6 }, "\(label): '\(name)' has a zero gradient",
                          file: file, line: line)
        }
        for i in 0..<gradient.count {
            var plus = parameters, minus = parameters
            plus[name]!.data[i] += Tolerance.step
            minus[name]!.data[i] -= Tolerance.step
            let numeric = (try loss(plus, inputs) - loss(minus, inputs)) / (2 * Tolerance.step)
            report.compare(gradient.data[i], numeric, at: "\(name)\(multiIndex(i, gradient.shape))")
        }
    }
    for (name, value) in inputs.sorted(by: { $0.key < $1.key }) {
        let gradient = try XCTUnwrap(analytic.inputGradients[name], file: file, line: line)
        XCTAssertEqual(gradient.shape, value.shape, "\(label): input gradient shape", file: file, line: line)
        XCTAssertTrue(gradient.data.contains { abs($0) > 1e-6 }, "\(label): input '\(name)' has a zero gradient",
                      file: file, line: line)
        for i in 0..<value.count {
            var plus = inputs, minus = inputs
            plus[name]!.data[i] += Tolerance.step
            minus[name]!.data[i] -= Tolerance.step
            let numeric = (try loss(parameters, plus) - loss(parameters, minus)) / (2 * Tolerance.step)
            report.compare(gradient.data[i], numeric, at: "input \(name)\(multiIndex(i, value.shape))")
        }
    }
    report.assertWithinTolerance(file: file, line: line)
    return report
}

/// Checks `inputGradient` of `output` (inference mode) with seeded random output weights
/// against central differences of sum(weights * output).
func checkInputGradient(_ label: String, _ graph: Graph, parameters: [String: Tensor], inputs: [String: Tensor],
                        output: String? = nil,
                        file: StaticString = #filePath, line: UInt = #line) throws -> GradientCheckReport {
    let interpreter = try Interpreter(graph: graph, parameters: parameters)
    let outputName = output ?? graph.outputs[0]
    let outputShape = try XCTUnwrap(interpreter.run(inputs)[outputName], file: file, line: line).shape
    let weights = SeededData.input(name: "weights", shape: outputShape, seed: 23)
    func objective(_ inputs: [String: Tensor]) throws -> Double {
        let y = try interpreter.run(inputs)[outputName]!
        return zip(weights.data, y.data).reduce(0) { $0 + $1.0 * $1.1 }
    }
    let analytic = try interpreter.inputGradient(inputs: inputs, output: outputName, outputWeights: weights)
    XCTAssertEqual(analytic.keys.sorted(), graph.inputs.map(\.name).sorted(), file: file, line: line)
    var report = GradientCheckReport(label: label)
    for (name, value) in inputs.sorted(by: { $0.key < $1.key }) {
        let gradient = try XCTUnwrap(analytic[name], file: file, line: line)
        XCTAssertTrue(gradient.data.contains { abs($0) > 1e-6 }, "\(label): input '\(name)' has a zero gradient",
                      file: file, line: line)
        for i in 0..<value.count {
            var plus = inputs, minus = inputs
            plus[name]!.data[i] += Tolerance.step
            minus[name]!.data[i] -= Tolerance.step
            let numeric = (try objective(plus) - objective(minus)) / (2 * Tolerance.step)
            report.compare(gradient.data[i], numeric, at: "input \(name)\(multiIndex(i, value.shape))")
        }
    }
    report.assertWithinTolerance(file: file, line: line)
    return report
}

/// A graph from nodes, with shapes inferred; the last node is the output unless named.
func makeGraph(_ nodes: [Node], outputs: [String]? = nil) -> Graph {
    var graph = Graph(name: "grad", nodes: nodes, outputs: outputs ?? [nodes.last!.name])
    let problems = graph.inferShapes()
    precondition(problems.isEmpty, "\(problems)")
    return graph
}

/// Seeded parameters with every constant-initialized one (batch-norm weight, bias and
/// statistics, PReLU slopes) moved to seeded values, so that every parameter matters.
func gradientParameters(_ graph: Graph, seed: UInt64 = 3) -> [String: Tensor] {
    var parameters = Weights.seeded(graph, seed: seed)
    for spec in graph.parameters() where spec.initializer.bound == nil {
        var t = SeededData.input(name: spec.name, shape: spec.shape, seed: seed)
        switch spec.role {
        case "running_var": t.data = t.data.map { $0 + 1.5 }
        case "weight" where spec.initializer == .constant(1): t.data = t.data.map { $0 + 1.5 }
        default: break
        }
        parameters[spec.name] = t
    }
    return parameters
}

/// Seeded input in [-1, 1) with every element at least `margin` away from 0 (so kinks at 0,
/// as in relu, leaky_relu, elu and prelu, are never straddled by a finite-difference step).
func awayFromZero(_ name: String, _ shape: [Int], margin: Double = 0.05, seed: UInt64 = 8) -> Tensor {
    var t = SeededData.input(name: name, shape: shape, seed: seed)
    t.data = t.data.map { $0 >= 0 ? $0 * (1 - margin) + margin : $0 * (1 - margin) - margin }
    return t
}

/// Distinct values spaced by `1 / count` in a scrambled order, in [-0.5, 0.5): no two
/// elements tie (so a max-pool winner never changes under a finite-difference step).
func distinctValues(_ shape: [Int]) -> Tensor {
    let count = shape.reduce(1, *)
    var stride = 7919
    while gcd(stride, count) != 1 { stride += 2 }
    return Tensor(shape: shape, data: (0..<count).map { Double(($0 * stride) % count) / Double(count) - 0.5 })
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// Labels 0, 1, ..., cycling through `classes`.
func cyclingLabels(_ count: Int, classes: Int) -> [Int] { (0..<count).map { $0 % classes } }
