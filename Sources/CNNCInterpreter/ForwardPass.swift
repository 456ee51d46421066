// What a forward pass produces: every node's value, and in training mode what the backward
// pass and the running-statistics update need (batch statistics, dropout masks).

/// How the forward pass treats batch norm and dropout.
enum ForwardMode {
    /// Batch norm on running statistics, dropout off (PyTorch `eval()`).
    case inference
    /// Batch norm on batch statistics, dropout with `DropoutMask` at `step` (PyTorch `train()`).
    case training(seed: UInt64, step: Int)
}

/// Per channel: the batch mean and the biased batch variance one training-mode batch norm used.
struct BatchStatistics {
    var mean: [Double]
    var variance: [Double]
    /// Values per channel (N * H * W, or N).
    var count: Int
}

/// The result of one forward pass.
struct ForwardPass {
    /// The batch size N.
    var batch: Int
    /// Every node's value by node name (inputs included).
    var values: [String: Tensor] = [:]
    /// Training mode: the statistics of each batch-norm node.
    var batchStatistics: [String: BatchStatistics] = [:]
    /// Training mode: each dropout node's multiplier per element (0, or 1 / (1 - rate) when kept).
    var dropoutMultipliers: [String: [Double]] = [:]
    /// Conv and dense nodes with a fused epilogue: the layer's own output, before the epilogue.
    var layerOutputs: [String: Tensor] = [:]

    init(batch: Int) { self.batch = batch }
}
