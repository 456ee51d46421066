// Backward through a fused epilogue `out = prelu(act(bn(y) + residual))` of a conv or dense
// layer with output y: the chain rule through each stage in reverse, with the rules of the
// unfused ops (batch norm with its running statistics, as the epilogue runs it).

import CNNCIR

extension EpilogueKernel {
    /// The gradient of the layer output `y` (before the epilogue), of the residual operand
    /// when the epilogue adds one, and of the parameters the epilogue uses, by name (the
    /// original nodes' names: `bn1.weight`, `p1.weight`).
    static func backward(_ e: Epilogue, layerOutput y: Tensor, residual: Tensor?, parameters: [String: Tensor],
                         outputGradient dy: Tensor) -> (layer: Tensor, residual: Tensor?, parameters: [String: Tensor]) {
        // The forward stages again: after batch norm, before the activation, before PReLU.
        var normalized = y
        if let bn = e.batchNorm {
            func p(_ role: String) -> Tensor { parameters["\(bn.node).\(role)"]! }
            normalized = NormalizationKernels.batchNorm(y, weight: p("weight"), bias: p("bias"), mean: p("running_mean"),
                                                        variance: p("running_var"), epsilon: bn.epsilon)
        }
        let summed = e.residual ? ElementwiseKernels.add([normalized, residual!]) : normalized
        let activated = e.activation.map { ElementwiseKernels.activation(summed, $0) } ?? summed

        var gradient = dy
        var parameterGradients: [String: Tensor] = [:]
        if let prelu = e.prelu {
            let g = ElementwiseKernels.preluBackward(activated, slopes: parameters["\(prelu.node).weight"]!,
                                                     outputGradient: gradient)
            gradient = g.input
            parameterGradients["\(prelu.node).weight"] = g.slopes
        }
        if let activation = e.activation {
            gradient = ElementwiseKernels.activationBackward(summed, outputGradient: gradient, activation)
        }
        let residualGradient = e.residual ? gradient : nil
        if let bn = e.batchNorm {
            func p(_ role: String) -> Tensor { parameters["\(bn.node).\(role)"]! }
            let g = NormalizationKernels.batchNormBackward(
                y, outputGradient: gradient, weight: p("weight"), runningMean: p("running_mean"),
                runningVariance: p("running_var"), statistics: nil, epsilon: bn.epsilon)
            gradient = g.input
            parameterGradients["\(bn.node).weight"] = g.weight
            parameterGradients["\(bn.node).bias"] = g.bias
        }
        return (gradient, residualGradient, parameterGradients)
    }
}
