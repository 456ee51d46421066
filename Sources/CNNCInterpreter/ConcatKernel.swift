// Concatenation along dim 1 (channels of (N, C, H, W) or features of (N, F)).

import CNNCIR

/// The concat kernel of the interpreter.
enum ConcatKernel {
    /// Each sample of the result is the operands' samples one after another: in NCHW order
    /// that is concatenation of channels (or features).
    static func forward(_ operands: [Tensor], output: Shape) -> Tensor {
        let n = operands[0].shape[0]
        var out: [Double] = []
        out.reserveCapacity(n * output.count)
        // Per sample: append each operand's block.
        for ni in 0..<n {
            for operand in operands {
                let size = operand.count / n
                out.append(contentsOf: operand.data[(ni * size)..<((ni + 1) * size)])
            }
        }
        return Tensor(shape: [n] + output.dims, data: out)
    }
}
