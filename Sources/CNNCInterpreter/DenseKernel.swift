// Fully connected layer (PyTorch Linear after flattening each sample in NCHW order):
//
//   out[n,j] = bias[j] + sum_i in[n,i] * weight[j,i]

/// The dense kernel of the interpreter.
enum DenseKernel {
    /// `x` is (N, ...) with I elements per sample, `weight` (J, I), `bias` (J); the result is (N, J).
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let n = x.shape[0], units = weight.shape[0], inputs = weight.shape[1]
        var out = [Double](repeating: 0, count: n * units)
        x.data.withUnsafeBufferPointer { xs in
            weight.data.withUnsafeBufferPointer { ws in
                // One dot product per (sample, unit).
                for ni in 0..<n {
                    for j in 0..<units {
                        var sum = 0.0
                        var i = 0
                        let xBase = ni * inputs, wBase = j * inputs
                        while i < inputs {
                            sum += xs[xBase + i] * ws[wBase + i]
                            i += 1
                        }
                        out[ni * units + j] = sum + (bias?.data[j] ?? 0)
                    }
                }
            }
        }
        return Tensor(shape: [n, units], data: out)
    }
}
