// Local response normalization and batch normalization (inference), per PyTorch.

import CNNCIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Normalization kernels of the interpreter.
enum NormalizationKernels {
    /// PyTorch `LocalResponseNorm` on (N, C, H, W):
    /// `out[c] = in[c] / (k + alpha * (sum_{c'} in[c']^2) / size) ^ beta` over
    /// `c' = c - size/2 ... c + (size-1)/2`, channels outside `0..<C` counting as zero.
    static func lrn(_ x: Tensor, attributes a: LRNAttributes) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], inner = x.shape[2] * x.shape[3]
        let before = a.size / 2, after = (a.size - 1) / 2
        var out = [Double](repeating: 0, count: x.count)
        x.data.withUnsafeBufferPointer { xs in
            // Per (sample, channel, position): the sum of squares over the channel window.
            for ni in 0..<n {
                for c in 0..<channels {
                    let first = Swift.max(c - before, 0), last = Swift.min(c + after, channels - 1)
                    for i in 0..<inner {
                        var sum = 0.0
                        var cc = first
                        while cc <= last {
                            let v = xs[(ni * channels + cc) * inner + i]
                            sum += v * v
                            cc += 1
                        }
                        let index = (ni * channels + c) * inner + i
                        let divisor = pow(sum / Double(a.size) * a.alpha + a.k, a.beta)
                        out[index] = xs[index] / divisor
                    }
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// Batch normalization with running statistics, per channel (dim 1) of an (N, C, H, W)
    /// or (N, F) tensor: `(x - mean) / sqrt(var + eps) * weight + bias`.
    static func batchNorm(_ x: Tensor, weight: Tensor, bias: Tensor, mean: Tensor, variance: Tensor,
                          epsilon: Double) -> Tensor {
        let n = x.shape[0], channels = x.shape[1]
        let inner = n == 0 || channels == 0 ? 0 : x.count / (n * channels)
        var out = x.data
        // Per (sample, channel): one affine map of the inner elements.
        for c in 0..<channels {
            let m = mean.data[c], sd = (variance.data[c] + epsilon).squareRoot()
            let gamma = weight.data[c], beta = bias.data[c]
            for ni in 0..<n {
                let base = (ni * channels + c) * inner
                for i in base..<(base + inner) { out[i] = (out[i] - m) / sd * gamma + beta }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }
}
