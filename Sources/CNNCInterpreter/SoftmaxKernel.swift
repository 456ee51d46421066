// Softmax and log-softmax over dim 1: the features of (N, F), or the channels at each position of (N, C, H, W).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import Foundation

/// The softmax and log-softmax kernel of the interpreter.
enum SoftmaxKernel {
    /// `out[c] = exp(x[c] - max) / sum_{c'} exp(x[c'] - max)` along dim 1.
    static func forward(_ x: Tensor, log: Bool = false) -> Tensor {
        let n = x.shape[0], channels = x.shape[1]
        let inner = n == 0 || channels == 0 ? 0 : x.count / (n * channels)
        var out = [Double](repeating: 0, count: x.count)
        // Per (sample, position): max, exponentials, sum, normalize.
        for ni in 0..<n {
            for i in 0..<inner {
                let base = ni * channels * inner + i
                var largest = -Double.infinity
                for c in 0..<channels { largest = max(largest, x.data[base + c * inner]) }
                var sum = 0.0
                for c in 0..<channels {
                    let e = exp(x.data[base + c * inner] - largest)
                    out[base + c * inner] = e
                    sum += e
                }
                if log {
                    // log softmax: x - max - log(sum exp(x - max)), never log(0)
                    let logSum = Foundation.log(sum)
                    for c in 0..<channels { out[base + c * inner] = x.data[base + c * inner] - largest - logSum }
                } else {
                    for c in 0..<channels { out[base + c * inner] /= sum }
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }
}
