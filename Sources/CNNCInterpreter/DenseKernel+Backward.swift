// Dense backward, from `out[n,j] = bias[j] + sum_i in[n,i] * weight[j,i]`:
//
//   d in[n,i]     = sum_j d out[n,j] * weight[j,i]
//   d weight[j,i] = sum_n d out[n,j] * in[n,i]
//   d bias[j]     = sum_n d out[n,j]
//
// The input gradient has the input's shape (the flatten is implicit).

extension DenseKernel {
    /// `x` is (N, ...) with I elements per sample, `weight` (J, I), `dy` (N, J). Returns the
    /// gradients of the input, the weight and the bias.
    static func backward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor)
        -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let n = x.shape[0], units = weight.shape[0], inputs = weight.shape[1]
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: weight.count)
        var db = [Double](repeating: 0, count: units)
        x.data.withUnsafeBufferPointer { xs in
            weight.data.withUnsafeBufferPointer { ws in
                dy.data.withUnsafeBufferPointer { gs in
                    dx.withUnsafeMutableBufferPointer { dxs in
                        dw.withUnsafeMutableBufferPointer { dws in
                            // Per (sample, unit): its gradient reaches every input and weight of the row.
                            for ni in 0..<n {
                                for j in 0..<units {
                                    let grad = gs[ni * units + j]
                                    db[j] += grad
                                    let xBase = ni * inputs, wBase = j * inputs
                                    var i = 0
                                    while i < inputs {
                                        dxs[xBase + i] += grad * ws[wBase + i]
                                        dws[wBase + i] += grad * xs[xBase + i]
                                        i += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(shape: x.shape, data: dx), Tensor(shape: weight.shape, data: dw),
                Tensor(shape: [units], data: db))
    }
}
