// Element-wise ops: activations, PReLU and n-ary addition.

import CNNCIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element-wise kernels of the interpreter.
enum ElementwiseKernels {
    /// One activation function applied to every element (PyTorch definitions; NaN propagates).
    static func activation(_ x: Tensor, _ function: Activation) -> Tensor {
        let data: [Double]
        switch function {
        case .relu:
            data = x.data.map { $0 < 0 ? 0 : $0 }
        case .leakyRelu(let alpha):
            data = x.data.map { $0 > 0 ? $0 : alpha * $0 }
        case .sigmoid:
            data = x.data.map { sigmoid($0) }
        case .tanh:
            data = x.data.map { tanh($0) }
        case .swish:
            data = x.data.map { $0 * sigmoid($0) }
        case .elu(let alpha):
            data = x.data.map { $0 > 0 ? $0 : alpha * expm1($0) }
        case .selu(let alpha, let gamma):
            data = x.data.map { gamma * ($0 > 0 ? $0 : alpha * expm1($0)) }
        case .softplus:
            // log(1 + e^x) without overflow: x + log(1 + e^-x) for positive x.
            data = x.data.map { $0 > 0 ? $0 + log1p(exp(-$0)) : log1p(exp($0)) }
        case .hardSigmoid(let alpha, let beta):
            data = x.data.map { $0.isNaN ? $0 : Swift.min(Swift.max(alpha * $0 + beta, 0), 1) }
        case .hardSwish:
            data = x.data.map { $0.isNaN ? $0 : $0 * Swift.min(Swift.max($0 + 3, 0), 6) / 6 }
        case .clip(let low, let high):
            data = x.data.map { $0 < low ? low : ($0 > high ? high : $0) }
        case .affine(let scale, let shift):
            data = x.data.map { $0 * scale + shift }
        }
        return Tensor(shape: x.shape, data: data)
    }

    /// PReLU: `x > 0 ? x : slope * x`, with one slope for all (`slopes` has shape [1]) or one per
    /// channel (dim 1 of an (N, C, H, W) or (N, F) tensor).
    static func prelu(_ x: Tensor, slopes: Tensor) -> Tensor {
        let n = x.shape[0]
        let channels = x.shape.count > 1 ? x.shape[1] : 1
        let inner = n == 0 || channels == 0 ? 0 : x.count / (n * channels)
        let shared = slopes.count == 1
        var out = x.data
        // Per (sample, channel): one slope for the inner (spatial) elements.
        for ni in 0..<n {
            for c in 0..<channels {
                let slope = shared ? slopes.data[0] : slopes.data[c]
                let base = (ni * channels + c) * inner
                for i in base..<(base + inner) where out[i] <= 0 { out[i] = slope * out[i] }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// The element-wise sum of equally shaped tensors, added left to right.
    static func add(_ operands: [Tensor]) -> Tensor {
        var out = operands[0].data
        for operand in operands.dropFirst() {
            operand.data.withUnsafeBufferPointer { ys in
                out.withUnsafeMutableBufferPointer { os in
                    for i in 0..<os.count { os[i] += ys[i] }
                }
            }
        }
        return Tensor(shape: operands[0].shape, data: out)
    }

    private static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
}
