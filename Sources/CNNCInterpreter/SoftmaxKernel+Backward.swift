// Softmax backward and the softmax cross-entropy loss.
//
// Softmax along dim 1 with y = softmax(x): the Jacobian-vector product
//   d x_c = y_c * (dy_c - sum_{c'} dy_{c'} * y_{c'})
//
// Cross-entropy on logits z (N, K) with labels t (PyTorch CrossEntropyLoss, mean reduction):
//   loss = 1/N * sum_n (logsumexp(z_n) - z_n[t_n]),  logsumexp(z) = m + log(sum_k exp(z_k - m)), m = max z
//   d z_n = (softmax(z_n) - onehot(t_n)) / N
// A sample is correct when its first largest logit is at its label.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SoftmaxKernel {
    /// Softmax backward: `y` is the forward's output, `dy` the gradient of the output; returns d x.
    static func backward(output y: Tensor, outputGradient dy: Tensor) -> Tensor {
        let n = y.shape[0], channels = y.shape[1]
        let inner = n == 0 || channels == 0 ? 0 : y.count / (n * channels)
        var dx = [Double](repeating: 0, count: y.count)
        // Per (sample, position): the dot product of dy and y along the channels, then each channel.
        for ni in 0..<n {
            for i in 0..<inner {
                let base = ni * channels * inner + i
                var dot = 0.0
                for c in 0..<channels { dot += dy.data[base + c * inner] * y.data[base + c * inner] }
                for c in 0..<channels {
                    dx[base + c * inner] = y.data[base + c * inner] * (dy.data[base + c * inner] - dot)
                }
            }
        }
        return Tensor(shape: y.shape, data: dx)
    }

    /// Mean softmax cross-entropy of `logits` (N, K) against `labels` (each in 0..<K), the
    /// number of samples whose first largest logit is the label, and the gradient of the loss
    /// with respect to the logits.
    static func crossEntropy(logits: Tensor, labels: [Int]) -> (loss: Double, correct: Int, gradient: Tensor) {
        let n = logits.shape[0], classes = logits.shape[1]
        var total = 0.0
        var correct = 0
        var gradient = [Double](repeating: 0, count: logits.count)
        // Per sample: a stable logsumexp, the loss term, the prediction and the gradient row.
        for ni in 0..<n {
            let row = Array(logits.data[(ni * classes)..<((ni + 1) * classes)])
            var largest = -Double.infinity
            var predicted = 0
            for (k, z) in row.enumerated() where z > largest {
                largest = z
                predicted = k
            }
            var sum = 0.0
            for z in row { sum += exp(z - largest) }
            let logSumExp = largest + log(sum)
            total += logSumExp - row[labels[ni]]
            if predicted == labels[ni] { correct += 1 }
            for k in 0..<classes {
                let probability = exp(row[k] - logSumExp)
                gradient[ni * classes + k] = (probability - (k == labels[ni] ? 1 : 0)) / Double(n)
            }
        }
        return (total / Double(n), correct, Tensor(shape: logits.shape, data: gradient))
    }
}
