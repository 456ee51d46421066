// Batch normalization in training mode (forward on batch statistics), and the backward of
// local response normalization and of batch normalization in both modes.
//
// LRN, with B_c = k + alpha / size * S_c and S_c = sum_{c' in window(c)} x_{c'}^2, has
// out_c = x_c * B_c^-beta, so
//
//   d x_j = dy_j * B_j^-beta - 2 * alpha * beta / size * x_j * sum_{c : j in window(c)} dy_c * x_c * B_c^(-beta-1)
//
// where j is in window(c) = [c - size/2, c + (size-1)/2] when c is in [j - (size-1)/2, j + size/2].
//
// Batch norm in training, per channel over its M = N * H * W values, with
// xhat = (x - mean) / sqrt(var + eps) (biased var) and out = weight * xhat + bias:
//
//   d bias   = sum dy
//   d weight = sum dy * xhat
//   d x      = weight / sqrt(var + eps) * (dy - d bias / M - xhat * d weight / M)
//
// (the last two terms are the gradient through the batch mean and the batch variance).
// At inference the statistics are constants: d x = weight / sqrt(running_var + eps) * dy.

import CNNCIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension NormalizationKernels {
    /// LRN backward: `x` and `dy` are (N, C, H, W); returns d x.
    static func lrnBackward(_ x: Tensor, outputGradient dy: Tensor, attributes a: LRNAttributes) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], inner = x.shape[2] * x.shape[3]
        let before = a.size / 2, after = (a.size - 1) / 2
        let coefficient = a.alpha / Double(a.size)
        var dx = [Double](repeating: 0, count: x.count)
        var base = [Double](repeating: 0, count: channels)
        var weighted = [Double](repeating: 0, count: channels)
        // Per (sample, position): B_c and dy_c * x_c * B_c^(-beta-1) for every channel, then
        // each channel's gradient from its own term and the windows it belongs to.
        for ni in 0..<n {
            for i in 0..<inner {
                func at(_ c: Int) -> Int { (ni * channels + c) * inner + i }
                for c in 0..<channels {
                    var sum = 0.0
                    for cc in Swift.max(c - before, 0)...Swift.min(c + after, channels - 1) {
                        sum += x.data[at(cc)] * x.data[at(cc)]
                    }
                    base[c] = a.k + coefficient * sum
                    weighted[c] = dy.data[at(c)] * x.data[at(c)] * pow(base[c], -a.beta - 1)
                }
                for j in 0..<channels {
                    var cross = 0.0
                    for c in Swift.max(j - after, 0)...Swift.min(j + before, channels - 1) { cross += weighted[c] }
                    dx[at(j)] = dy.data[at(j)] * pow(base[j], -a.beta)
                        - 2 * coefficient * a.beta * x.data[at(j)] * cross
                }
            }
        }
        return Tensor(shape: x.shape, data: dx)
    }

    /// Batch normalization on the batch's own statistics, per channel (dim 1) of an
    /// (N, C, H, W) or (N, F) tensor with more than one value per channel:
    /// `(x - mean) / sqrt(var + eps) * weight + bias` with the biased variance. Returns the
    /// output and the statistics.
    static func batchNormTraining(_ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Double)
        -> (Tensor, BatchStatistics) {
        let n = x.shape[0], channels = x.shape[1]
        let inner = x.count / (n * channels)
        let count = n * inner
        var out = x.data
        var means = [Double](repeating: 0, count: channels)
        var variances = [Double](repeating: 0, count: channels)
        // Per channel: the mean, then the mean squared deviation, then one affine map.
        for c in 0..<channels {
            var sum = 0.0
            for ni in 0..<n {
                let start = (ni * channels + c) * inner
                for i in start..<(start + inner) { sum += x.data[i] }
            }
            let mean = sum / Double(count)
            var squares = 0.0
            for ni in 0..<n {
                let start = (ni * channels + c) * inner
                for i in start..<(start + inner) { squares += (x.data[i] - mean) * (x.data[i] - mean) }
            }
            let variance = squares / Double(count)
            means[c] = mean
            variances[c] = variance
            let sd = (variance + epsilon).squareRoot(), gamma = weight.data[c], beta = bias.data[c]
            for ni in 0..<n {
                let start = (ni * channels + c) * inner
                for i in start..<(start + inner) { out[i] = (out[i] - mean) / sd * gamma + beta }
            }
        }
        return (Tensor(shape: x.shape, data: out), BatchStatistics(mean: means, variance: variances, count: count))
    }

    /// Batch-norm backward: `x` and `dy` are (N, C, H, W) or (N, F). With `statistics`
    /// (training) the mean and variance are the batch's and depend on `x`; without, they are
    /// the running ones and constant. Returns the gradients of the input, weight and bias.
    static func batchNormBackward(_ x: Tensor, outputGradient dy: Tensor, weight: Tensor,
                                  runningMean: Tensor, runningVariance: Tensor, statistics: BatchStatistics?,
                                  epsilon: Double) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let n = x.shape[0], channels = x.shape[1]
        let inner = n == 0 || channels == 0 ? 0 : x.count / (n * channels)
        let count = Double(n * inner)
        var dx = [Double](repeating: 0, count: x.count)
        var dWeight = [Double](repeating: 0, count: channels)
        var dBias = [Double](repeating: 0, count: channels)
        // Per channel: the two sums, then each element's gradient.
        for c in 0..<channels {
            let mean = statistics?.mean[c] ?? runningMean.data[c]
            let variance = statistics?.variance[c] ?? runningVariance.data[c]
            let sd = (variance + epsilon).squareRoot()
            for ni in 0..<n {
                let start = (ni * channels + c) * inner
                for i in start..<(start + inner) {
                    dBias[c] += dy.data[i]
                    dWeight[c] += dy.data[i] * (x.data[i] - mean) / sd
                }
            }
            let scale = weight.data[c] / sd
            for ni in 0..<n {
                let start = (ni * channels + c) * inner
                for i in start..<(start + inner) {
                    if statistics == nil {
                        dx[i] = scale * dy.data[i]
                    } else {
                        let xhat = (x.data[i] - mean) / sd
                        dx[i] = scale * (dy.data[i] - dBias[c] / count - xhat * dWeight[c] / count)
                    }
                }
            }
        }
        return (Tensor(shape: x.shape, data: dx), Tensor(shape: [channels], data: dWeight),
                Tensor(shape: [channels], data: dBias))
    }
}
