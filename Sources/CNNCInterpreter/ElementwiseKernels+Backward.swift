// Element-wise backward: the derivative of each activation at its input (PyTorch's choices at
// the kinks), and PReLU's gradients of input and slopes.
//
//   relu        x > 0 ? 1 : 0                  (0 at x = 0, as PyTorch)
//   leaky_relu  x > 0 ? 1 : alpha              (alpha at x = 0)
//   sigmoid     s * (1 - s),  s = sigmoid(x)
//   tanh        1 - t^2,      t = tanh(x)
//   swish       s + x * s * (1 - s) = s * (1 + x * (1 - s))
//   elu         x > 0 ? 1 : alpha * exp(x)     (alpha at x = 0)
//   prelu       d in = x > 0 ? dy : slope * dy;  d slope += x > 0 ? 0 : x * dy

import CNNCIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ElementwiseKernels {
    /// `dy * f'(x)` element by element, for the activation `f` applied to `x`.
    static func activationBackward(_ x: Tensor, outputGradient dy: Tensor, _ function: Activation) -> Tensor {
        let derivative: (Double) -> Double
        switch function {
        case .relu:
            derivative = { $0 > 0 ? 1 : 0 }
        case .leakyRelu(let alpha):
            derivative = { $0 > 0 ? 1 : alpha }
        case .sigmoid:
            derivative = { let s = 1 / (1 + exp(-$0)); return s * (1 - s) }
        case .tanh:
            derivative = { let t = tanh($0); return 1 - t * t }
        case .swish:
            derivative = { let s = 1 / (1 + exp(-$0)); return s * (1 + $0 * (1 - s)) }
        case .elu(let alpha):
            derivative = { $0 > 0 ? 1 : alpha * exp($0) }
        case .selu(let alpha, let gamma):
            derivative = { $0 > 0 ? gamma : gamma * alpha * exp($0) }
        case .softplus:
            derivative = { 1 / (1 + exp(-$0)) }
        case .hardSigmoid(let alpha, let beta):
            derivative = { let v = alpha * $0 + beta; return v > 0 && v < 1 ? alpha : 0 }
        case .hardSwish:
            // PyTorch: 0 below -3, x/3 + 1/2 up to 3, 1 above.
            derivative = { $0 < -3 ? 0 : ($0 <= 3 ? $0 / 3 + 0.5 : 1) }
        case .clip(let low, let high):
            // PyTorch's hardtanh: 1 strictly inside the bounds, else 0.
            derivative = { $0 > low && $0 < high ? 1 : 0 }
        case .affine(let scale, _):
            derivative = { _ in scale }
        }
        return Tensor(shape: x.shape, data: zip(x.data, dy.data).map { derivative($0) * $1 })
    }

    /// PReLU backward: `x` is (N, C, ...) or (N, F), `slopes` [1] (shared) or [C]. Returns the
    /// gradients of the input and of the slopes (shape of `slopes`).
    static func preluBackward(_ x: Tensor, slopes: Tensor, outputGradient dy: Tensor)
        -> (input: Tensor, slopes: Tensor) {
        let n = x.shape[0]
        let channels = x.shape.count > 1 ? x.shape[1] : 1
        let inner = n == 0 || channels == 0 ? 0 : x.count / (n * channels)
        let shared = slopes.count == 1
        var dx = dy.data
        var dSlopes = [Double](repeating: 0, count: slopes.count)
        // Per (sample, channel): non-positive inputs scale their gradient by the slope and
        // send x * dy to it.
        for ni in 0..<n {
            for c in 0..<channels {
                let slopeIndex = shared ? 0 : c
                let slope = slopes.data[slopeIndex]
                let base = (ni * channels + c) * inner
                for i in base..<(base + inner) where !(x.data[i] > 0) {
                    dSlopes[slopeIndex] += x.data[i] * dy.data[i]
                    dx[i] = slope * dy.data[i]
                }
            }
        }
        return (Tensor(shape: x.shape, data: dx), Tensor(shape: slopes.shape, data: dSlopes))
    }
}
