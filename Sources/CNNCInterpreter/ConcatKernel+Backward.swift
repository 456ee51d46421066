// Concat backward: each operand's gradient is its block of the output gradient.

extension ConcatKernel {
    /// Splits `dy` (N, C1 + C2 + ..., ...) into one gradient per operand, shaped like it.
    static func backward(_ operands: [Tensor], outputGradient dy: Tensor) -> [Tensor] {
        let n = dy.shape[0]
        let sampleSize = n == 0 ? 0 : dy.count / n
        var gradients = operands.map { [Double](repeating: 0, count: $0.count) }
        // Per sample: copy each operand's block out of the sample's gradient.
        for ni in 0..<n {
            var offset = ni * sampleSize
            for (o, operand) in operands.enumerated() {
                let size = operand.count / n
                for i in 0..<size { gradients[o][ni * size + i] = dy.data[offset + i] }
                offset += size
            }
        }
        return zip(operands, gradients).map { Tensor(shape: $0.shape, data: $1) }
    }
}
