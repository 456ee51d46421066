// Backward of the ops added for ONNX that are not element-wise: global max pooling and log
// softmax. (The activations' derivatives are in ElementwiseKernels+Backward.)

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension PoolKernels {
    /// Global max pooling backward: each plane's gradient goes to its first largest element
    /// (PyTorch's index rule); `x` is (N, C, H, W), `dy` (N, C, 1, 1).
    static func globalMaxBackward(_ x: Tensor, outputGradient dy: Tensor) -> Tensor {
        let planes = x.shape[0] * x.shape[1], size = x.shape[2] * x.shape[3]
        var dx = [Double](repeating: 0, count: x.count)
        // Per plane: find the first maximum, route the gradient there.
        for plane in 0..<planes where size > 0 {
            var best = plane * size
            for i in (plane * size)..<((plane + 1) * size) where x.data[i] > x.data[best] || (x.data[i].isNaN && !x.data[best].isNaN) {
                best = i
            }
            dx[best] += dy.data[plane]
        }
        return Tensor(shape: x.shape, data: dx)
    }
}

extension SoftmaxKernel {
    /// Log softmax backward along dim 1 with y = log_softmax(x):
    /// `dx_c = dy_c - exp(y_c) * sum_c' dy_c'`.
    static func logBackward(output y: Tensor, outputGradient dy: Tensor) -> Tensor {
        let n = y.shape[0], channels = y.shape[1]
        let inner = n == 0 || channels == 0 ? 0 : y.count / (n * channels)
        var dx = [Double](repeating: 0, count: y.count)
        // Per (sample, position): the sum of the gradient, then each channel.
        for ni in 0..<n {
            for i in 0..<inner {
                let base = ni * channels * inner + i
                var sum = 0.0
                for c in 0..<channels { sum += dy.data[base + c * inner] }
                for c in 0..<channels { dx[base + c * inner] = dy.data[base + c * inner] - exp(y.data[base + c * inner]) * sum }
            }
        }
        return Tensor(shape: y.shape, data: dx)
    }
}
