// What one training step means, as pure functions that the reference interpreter follows and
// the generated C reproduces: the dropout mask, the SGD update and the batch-norm running
// statistics. These are specifications (one element, one scalar at a time), not kernels.
//
// A training step, in PyTorch's terms (`model.train()`, `CrossEntropyLoss()`, `optim.SGD`):
//   1. forward with batch norm on batch statistics and dropout masks from `DropoutMask`,
//   2. loss = mean over the batch of softmax cross-entropy on the logits,
//   3. backward,
//   4. per trainable parameter of a node that is not frozen, `SGDConfig.update`;
//      every batch norm that ran updates its running statistics (`BatchNormStatistics`),
//      frozen or not, as PyTorch does for modules whose parameters have requires_grad=False.

/// The seeded, counter-based dropout mask: whether one element is kept is a pure function of
/// (seed, node, step, index), so it never depends on the thread or the order that computes it.
///
/// For node `node` at training step `step`:
/// ```
/// stream = splitmix64(seed ^ nameHash(node) ^ splitmix64(UInt64(step)))
/// h      = splitmix64(stream &+ UInt64(index))
/// u      = Double(h >> 40) / 2^24          // uniform in [0, 1), 24 bits
/// keep   = u >= rate
/// ```
/// `index` is the flat index of the element in the batched NCHW (or N x F) tensor. Kept
/// elements are scaled by `1 / (1 - rate)` (inverted dropout, as PyTorch), dropped ones are 0;
/// the backward pass applies the same multipliers to the gradient. At inference dropout is the
/// identity.
public enum DropoutMask {
    /// Whether element `index` of dropout node `node` survives at training step `step`.
    public static func keep(seed: UInt64, node: String, step: Int, index: Int, rate: Double) -> Bool {
        uniform(seed: seed, node: node, step: step, index: index) >= rate
    }

    /// The multiplier of a kept element: `1 / (1 - rate)`.
    public static func scale(rate: Double) -> Double { 1 / (1 - rate) }

    /// The uniform number `u` in [0, 1) that `keep` compares with the rate.
    public static func uniform(seed: UInt64, node: String, step: Int, index: Int) -> Double {
        let stream = SeededInit.splitmix64(
            seed ^ SeededInit.nameHash(node) ^ SeededInit.splitmix64(UInt64(truncatingIfNeeded: step)))
        let h = SeededInit.splitmix64(stream &+ UInt64(truncatingIfNeeded: index))
        return Double(h >> 40) / 16_777_216.0
    }
}

/// Stochastic gradient descent with momentum, PyTorch's `torch.optim.SGD` (dampening 0).
///
/// Per element, with gradient `grad` of the batch-mean loss, weight `w` and velocity `v`
/// (the momentum buffer, 0 before the first step):
/// ```
/// g = grad + weightDecay * w
/// v = momentum * v + g          // the first step gives v = g, as PyTorch's clone(g)
/// g = nesterov ? g + momentum * v : v
/// w = w - learningRate * g
/// ```
/// Weight decay applies to every trainable parameter (weights, biases, batch-norm weight and
/// bias, PReLU slopes), as with one PyTorch parameter group. Frozen nodes' parameters keep
/// their values and have no velocity.
public struct SGDConfig: Hashable, Sendable {
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    public var nesterov: Bool

    public init(learningRate: Double, momentum: Double = 0.9, weightDecay: Double = 0, nesterov: Bool = false) {
        self.learningRate = learningRate; self.momentum = momentum
        self.weightDecay = weightDecay; self.nesterov = nesterov
    }

    /// One element's update: the new weight and the new velocity.
    public func update(weight: Double, gradient: Double, velocity: Double) -> (weight: Double, velocity: Double) {
        var g = gradient + weightDecay * weight
        let v = momentum * velocity + g
        g = nesterov ? g + momentum * v : v
        return (weight - learningRate * g, v)
    }
}

/// Batch normalization in training mode (PyTorch `BatchNorm1d/2d` in `train()`).
///
/// Per channel, over the `count = N * H * W` (or N) values of the batch:
/// ```
/// mean = sum(x) / count
/// var  = sum((x - mean)^2) / count                       // biased: used to normalize
/// out  = (x - mean) / sqrt(var + eps) * weight + bias     // eps inside the square root
/// running_mean = (1 - momentum) * running_mean + momentum * mean
/// running_var  = (1 - momentum) * running_var  + momentum * var * count / (count - 1)
/// ```
/// The running variance takes the unbiased estimate; training needs `count > 1`.
public enum BatchNormStatistics {
    /// The running mean after one training step.
    public static func updatedRunningMean(_ running: Double, batchMean: Double, momentum: Double) -> Double {
        (1 - momentum) * running + momentum * batchMean
    }

    /// The running variance after one training step, from the biased batch variance of
    /// `count` values.
    public static func updatedRunningVariance(_ running: Double, biasedVariance: Double, count: Int,
                                              momentum: Double) -> Double {
        let unbiased = biasedVariance * Double(count) / Double(count - 1)
        return (1 - momentum) * running + momentum * unbiased
    }
}
