// Per-node cost figures for `summary`: multiply-accumulates and activation bytes.

extension Graph {
    /// Multiply-accumulate operations per sample of a node: the conv and dense products, as
    /// torchinfo counts them (other ops are counted as 0).
    public func macs(of node: Node, inputShapes: [Shape]) -> Int {
        switch node.op {
        case .conv(let a):
            guard let x = inputShapes.first, x.rank == 3 else { return 0 }
            // Saturating: shape inference bounds values and parameters, this never traps.
            return SizeArithmetic.saturatingProduct([node.shape.count, x.c / max(a.groups, 1), a.kernel.h, a.kernel.w])
        case .dense(let a):
            return SizeArithmetic.saturatingProduct([a.units, inputShapes.first?.count ?? 0])
        case .convTranspose(let a):
            guard let x = inputShapes.first, x.rank == 3 else { return 0 }
            // Every input element meets KG * R * S weights.
            return SizeArithmetic.saturatingProduct([x.count, a.filters / max(a.groups, 1), a.kernel.h, a.kernel.w])
        case .input, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
             .lrn, .batchNorm, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .softmax, .logSoftmax:
            return 0
        }
    }
}
