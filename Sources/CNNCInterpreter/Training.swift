// Training in the reference interpreter: one SGD step (forward in training mode, softmax
// cross-entropy, backward through every op, the update of `SGDConfig` and the batch-norm
// running statistics of `BatchNormStatistics`), input gradients for saliency, and evaluation.
// This is the oracle the generated C training step is compared against.

import CNNCIR

/// Everything one training step produces.
public struct TrainingStepResult: Sendable {
    /// Mean softmax cross-entropy over the batch, before the update.
    public var loss: Double
    /// Samples whose first largest logit is their label.
    public var correct: Int
    /// The logits the loss was computed on, (N, K).
    public var logits: Tensor
    /// The gradient of the loss for every trainable parameter of every node that is not frozen
    /// (zeros for parameters the loss does not depend on).
    public var gradients: [String: Tensor]
    /// The gradient of the loss for every graph input.
    public var inputGradients: [String: Tensor]
    /// Every parameter and buffer after the step: SGD-updated trainable parameters, frozen ones
    /// unchanged, new batch-norm running statistics. Feeds the next step's interpreter.
    public var updatedParameters: [String: Tensor]
    /// The velocity (momentum buffer) of every parameter in `gradients` after the step.
    public var updatedVelocity: [String: Tensor]
}

extension Interpreter {
    /// Forward in training mode (batch norm with batch statistics; dropout with DropoutMask at
    /// `step`), softmax cross-entropy loss (mean over the batch, numerically stable, on
    /// `logitsOutput` — default the graph's first output; when that output is a `softmax`
    /// node, its INPUT is used as the logits so softmax and the loss fuse), backward through
    /// every op, then one SGD step.
    ///
    /// `labels` holds one class per sample. `velocity` is keyed by parameter name; a missing
    /// entry is zeros. `frozen` names nodes whose parameters are neither updated nor given a
    /// velocity (their gradients are not returned; gradients still flow through them).
    public func trainingStep(inputs: [String: Tensor], labels: [Int], step: Int, seed: UInt64, sgd: SGDConfig,
                             velocity: [String: Tensor], frozen: Set<String> = [],
                             logitsOutput: String? = nil) throws -> TrainingStepResult {
        let logitsNode = try resolveLogits(logitsOutput)
        try check(frozen: frozen, velocity: velocity)
        let pass = try forward(inputs, mode: .training(seed: seed, step: step))
        guard pass.batch > 0 else { throw InterpreterError("training needs at least one sample, got an empty batch") }
        let logits = pass.values[logitsNode]!
        try check(labels: labels, batch: pass.batch, classes: logits.shape[1], logits: logitsNode)
        let loss = SoftmaxKernel.crossEntropy(logits: logits, labels: labels)
        let gradients = backward(pass, seeds: [logitsNode: loss.gradient])

        var result = TrainingStepResult(
            loss: loss.loss, correct: loss.correct, logits: logits, gradients: [:], inputGradients: [:],
            updatedParameters: parameters, updatedVelocity: [:])
        for node in graph.inputs {
            result.inputGradients[node.name] = gradients.values[node.name]
                ?? Tensor(zeros: pass.values[node.name]!.shape)
        }
        for spec in graph.parameters() {
            if spec.trainable {
                guard !frozen.contains(spec.node) else { continue }
                let gradient = gradients.parameters[spec.name] ?? Tensor(zeros: spec.shape)
                var weights = parameters[spec.name]!
                var v = velocity[spec.name] ?? Tensor(zeros: spec.shape)
                // One SGD update per element.
                for i in 0..<spec.count {
                    (weights.data[i], v.data[i]) = sgd.update(
                        weight: weights.data[i], gradient: gradient.data[i], velocity: v.data[i])
                }
                result.gradients[spec.name] = gradient
                result.updatedParameters[spec.name] = weights
                result.updatedVelocity[spec.name] = v
            } else if case .batchNorm(let a)? = graph.node(named: spec.node)?.op,
                      let statistics = pass.batchStatistics[spec.node] {
                var running = parameters[spec.name]!
                // Per channel: move the running statistic toward the batch's.
                for c in 0..<spec.count {
                    running.data[c] = spec.role == "running_mean"
                        ? BatchNormStatistics.updatedRunningMean(
                            running.data[c], batchMean: statistics.mean[c], momentum: a.momentum)
                        : BatchNormStatistics.updatedRunningVariance(
                            running.data[c], biasedVariance: statistics.variance[c], count: statistics.count,
                            momentum: a.momentum)
                }
                result.updatedParameters[spec.name] = running
            }
        }
        return result
    }

    /// Gradient of sum_i weights[i] * output[i] (weights shaped like the output, batch
    /// included) with respect to every graph input, in inference mode (running statistics,
    /// dropout off). For saliency.
    public func inputGradient(inputs: [String: Tensor], output: String,
                              outputWeights: Tensor) throws -> [String: Tensor] {
        guard let node = graph.node(named: output) else {
            throw InterpreterError("output '\(output)' is not a node of graph '\(graph.name)'")
        }
        let pass = try forward(inputs, mode: .inference)
        let expected = [pass.batch] + node.shape.dims
        guard outputWeights.shape == expected, outputWeights.data.count == Tensor.elementCount(expected) else {
            throw InterpreterError("output weights: expected shape \(expected) like '\(output)', got \(outputWeights.shape)")
        }
        let gradients = backward(pass, seeds: [output: outputWeights], parameterGradients: false)
        var result: [String: Tensor] = [:]
        for input in graph.inputs {
            result[input.name] = gradients.values[input.name] ?? Tensor(zeros: pass.values[input.name]!.shape)
        }
        return result
    }

    /// Loss and number correct in inference mode (evaluation), with the logits chosen as in
    /// `trainingStep`.
    public func evaluate(inputs: [String: Tensor], labels: [Int],
                         logitsOutput: String? = nil) throws -> (loss: Double, correct: Int) {
        let logitsNode = try resolveLogits(logitsOutput)
        let pass = try forward(inputs, mode: .inference)
        guard pass.batch > 0 else { throw InterpreterError("evaluation needs at least one sample, got an empty batch") }
        let logits = pass.values[logitsNode]!
        try check(labels: labels, batch: pass.batch, classes: logits.shape[1], logits: logitsNode)
        let loss = SoftmaxKernel.crossEntropy(logits: logits, labels: labels)
        return (loss.loss, loss.correct)
    }

    // MARK: - Checks

    /// The node whose value is the logits: `name` (default the first graph output), or the
    /// input of that node when it is a softmax. The logits must be vectors (N, K).
    private func resolveLogits(_ name: String?) throws -> String {
        let outputName = name ?? graph.outputs[0]
        guard let output = graph.node(named: outputName) else {
            throw InterpreterError("logits output '\(outputName)' is not a node of graph '\(graph.name)'")
        }
        var logits = output
        if case .softmax = output.op { logits = graph.node(named: output.inputs[0])! }
        guard logits.shape.rank == 1 else {
            throw InterpreterError("logits '\(logits.name)' must be a vector of class scores, got shape \(logits.shape)")
        }
        return logits.name
    }

    private func check(labels: [Int], batch: Int, classes: Int, logits: String) throws {
        guard labels.count == batch else {
            throw InterpreterError("expected \(batch) labels, one per sample, got \(labels.count)")
        }
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw InterpreterError("label \(labels[i]) of sample \(i) is out of range for the \(classes) classes of '\(logits)'")
        }
    }

    private func check(frozen: Set<String>, velocity: [String: Tensor]) throws {
        var problems: [String] = []
        for name in frozen.sorted() where graph.node(named: name) == nil {
            problems.append("frozen '\(name)': not a node of graph '\(graph.name)'")
        }
        let specs = Dictionary(uniqueKeysWithValues: graph.parameters().map { ($0.name, $0) })
        for (name, tensor) in velocity.sorted(by: { $0.key < $1.key }) {
            guard let spec = specs[name], spec.trainable else {
                problems.append("velocity '\(name)': not a trainable parameter of graph '\(graph.name)'")
                continue
            }
            if tensor.shape != spec.shape || tensor.data.count != spec.count {
                problems.append("velocity '\(name)': expected shape \(spec.shape), got \(tensor.shape)")
            }
        }
        guard problems.isEmpty else { throw InterpreterError(problems.joined(separator: "\n")) }
    }
}
