// Fused epilogues of conv and dense, applied after the bias exactly as the unfused ops
// would run: `y = act(bn(y) + residual)` with batch norm in inference mode. Written from the
// definitions, so a fusion pass is judged by running the interpreter before and after it.

import CNNCIR

enum EpilogueKernel {
    /// Applies `e` to the layer output `y`; `residual` is the second operand when fused.
    static func apply(_ e: Epilogue, to y: Tensor, residual: Tensor?, parameters: [String: Tensor]) -> Tensor {
        var y = y
        if let bn = e.batchNorm {
            func p(_ role: String) -> Tensor { parameters["\(bn.node).\(role)"]! }
            y = NormalizationKernels.batchNorm(y, weight: p("weight"), bias: p("bias"), mean: p("running_mean"),
                                               variance: p("running_var"), epsilon: bn.epsilon)
        }
        if e.residual, let residual { y = ElementwiseKernels.add([y, residual]) }
        if let act = e.activation { y = ElementwiseKernels.activation(y, act) }
        if let prelu = e.prelu { y = ElementwiseKernels.prelu(y, slopes: parameters["\(prelu.node).weight"]!) }
        return y
    }
}
