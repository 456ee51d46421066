// The reverse sweep: from seed gradients on some node values, the gradient of every node value
// and parameter, visiting nodes in reverse topological order and applying each op's local
// backward rule. A value read by several nodes (or twice by one) sums their contributions.

import CNNCIR

/// Gradients of one backward pass.
struct Gradients {
    /// By node name; nodes the seeds do not reach have none.
    var values: [String: Tensor] = [:]
    /// By parameter name; only trainable parameters of reached nodes.
    var parameters: [String: Tensor] = [:]

    /// Adds `gradient` into the gradient of `name` (stored as is when it has none yet).
    mutating func accumulate(_ gradient: Tensor, into name: String) {
        Gradients.add(gradient, into: &values[name])
    }

    mutating func accumulate(parameter gradient: Tensor, into name: String) {
        Gradients.add(gradient, into: &parameters[name])
    }

    private static func add(_ gradient: Tensor, into slot: inout Tensor?) {
        guard var sum = slot else {
            slot = gradient
            return
        }
        for i in sum.data.indices { sum.data[i] += gradient.data[i] }
        slot = sum
    }
}

extension Interpreter {
    /// Propagates `seeds` (gradients of node values, shaped like them) back through the graph
    /// of `pass`, in the pass's mode: batch norm through the batch statistics and dropout with
    /// the mask the pass recorded, if any (training), else as constants and the identity
    /// (inference). With `parameterGradients` false only value gradients are computed.
    func backward(_ pass: ForwardPass, seeds: [String: Tensor], parameterGradients: Bool = true) -> Gradients {
        var gradients = Gradients()
        for (name, seed) in seeds { gradients.accumulate(seed, into: name) }
        guard pass.batch > 0 else { return gradients }
        for node in graph.nodes.reversed() {
            guard let dy = gradients.values[node.name] else { continue }
            let operands = node.inputs.map { pass.values[$0]! }
            let x = operands.first ?? Tensor(zeros: [])
            func parameter(_ role: String) -> Tensor { parameters["\(node.name).\(role)"]! }
            func input(_ gradient: Tensor) { gradients.accumulate(gradient, into: node.inputs[0]) }
            func parameter(_ role: String, _ gradient: Tensor) {
                if parameterGradients { gradients.accumulate(parameter: gradient, into: "\(node.name).\(role)") }
            }
            switch node.op {
            case .input:
                break
            case .conv(let a):
                let dLayer = epilogueBackward(a.epilogue, of: node, pass: pass, operands: operands, outputGradient: dy,
                                              parameterGradients: parameterGradients, into: &gradients)
                let g = ConvKernel.backward(x, weight: parameter("weight"), outputGradient: dLayer, attributes: a)
                input(g.input)
                parameter("weight", g.weight)
                if a.bias { parameter("bias", g.bias) }
            case .convTranspose(let a):
                let g = ConvTransposeKernel.backward(x, weight: parameter("weight"), outputGradient: dy, a)
                input(g.input)
                parameter("weight", g.weight)
                if a.bias { parameter("bias", g.bias) }
            case .dense(let a):
                let dLayer = epilogueBackward(a.epilogue, of: node, pass: pass, operands: operands, outputGradient: dy,
                                              parameterGradients: parameterGradients, into: &gradients)
                let g = DenseKernel.backward(x, weight: parameter("weight"), outputGradient: dLayer)
                input(g.input)
                parameter("weight", g.weight)
                if a.bias { parameter("bias", g.bias) }
            case .activation(let function):
                input(ElementwiseKernels.activationBackward(x, outputGradient: dy, function))
            case .prelu:
                let g = ElementwiseKernels.preluBackward(x, slopes: parameter("weight"), outputGradient: dy)
                input(g.input)
                parameter("weight", g.slopes)
            case .add:
                for name in node.inputs { gradients.accumulate(dy, into: name) }
            case .binary(let op):
                let g = BinaryKernel.backward(op, operands[0], operands[1], outputGradient: dy)
                gradients.accumulate(g.a, into: node.inputs[0])
                gradients.accumulate(g.b, into: node.inputs[1])
            case .dropout:
                // Training mode recorded a mask; at inference dropout is the identity.
                if let multipliers = pass.dropoutMultipliers[node.name] {
                    input(DropoutKernel.apply(multipliers, to: dy))
                } else {
                    input(dy)
                }
            case .maxPool(let a):
                input(PoolKernels.maxBackward(x, outputGradient: dy, attributes: a))
            case .avgPool(let a):
                input(PoolKernels.averageBackward(x, outputGradient: dy, attributes: a))
            case .globalAvgPool:
                input(PoolKernels.globalAverageBackward(x, outputGradient: dy))
            case .lrn(let a):
                input(NormalizationKernels.lrnBackward(x, outputGradient: dy, attributes: a))
            case .batchNorm(let a):
                let g = NormalizationKernels.batchNormBackward(
                    x, outputGradient: dy, weight: parameter("weight"), runningMean: parameter("running_mean"),
                    runningVariance: parameter("running_var"), statistics: pass.batchStatistics[node.name],
                    epsilon: a.epsilon)
                input(g.input)
                parameter("weight", g.weight)
                parameter("bias", g.bias)
            case .flatten:
                input(Tensor(shape: x.shape, data: dy.data))
            case .concat:
                for (name, g) in zip(node.inputs, ConcatKernel.backward(operands, outputGradient: dy)) {
                    gradients.accumulate(g, into: name)
                }
            case .shuffle(let groups):
                input(ChannelKernels.shuffleBackward(x, outputGradient: dy, groups: groups))
            case .slice(let start, let end):
                input(ChannelKernels.sliceBackward(x, outputGradient: dy, start: start, end: end))
            case .pad(let a):
                input(PadKernel.backward(x, outputGradient: dy, a))
            case .upsample(let a):
                input(UpsampleKernel.backward(x, outputGradient: dy, a))
            case .softmax:
                input(SoftmaxKernel.backward(output: pass.values[node.name]!, outputGradient: dy))
            case .logSoftmax:
                input(SoftmaxKernel.logBackward(output: pass.values[node.name]!, outputGradient: dy))
            case .globalMaxPool:
                input(PoolKernels.globalMaxBackward(x, outputGradient: dy))
            }
        }
        return gradients
    }

    /// The gradient of a conv or dense layer's own output given that of the node's output:
    /// through its fused epilogue if it has one (accumulating the residual operand's and the
    /// epilogue parameters' gradients), else unchanged.
    private func epilogueBackward(_ e: Epilogue, of node: Node, pass: ForwardPass, operands: [Tensor],
                                  outputGradient dy: Tensor, parameterGradients: Bool,
                                  into gradients: inout Gradients) -> Tensor {
        guard !e.isEmpty else { return dy }
        let g = EpilogueKernel.backward(e, layerOutput: pass.layerOutputs[node.name]!,
                                        residual: operands.count > 1 ? operands[1] : nil, parameters: parameters,
                                        outputGradient: dy)
        if let residual = g.residual { gradients.accumulate(residual, into: node.inputs[1]) }
        if parameterGradients {
            for (name, gradient) in g.parameters { gradients.accumulate(parameter: gradient, into: name) }
        }
        return g.layer
    }
}
