// Dropout in training mode: the seeded mask of `DropoutMask`, as multipliers (inverted
// dropout). The backward pass multiplies the gradient by the same multipliers.

import CNNCIR

/// The dropout kernel of the interpreter (training mode; at inference dropout is the identity).
enum DropoutKernel {
    /// Per element of a batched tensor of `count` elements: `1 / (1 - rate)` where
    /// `DropoutMask.keep` holds, else 0.
    static func multipliers(count: Int, seed: UInt64, node: String, step: Int, rate: Double) -> [Double] {
        let scale = DropoutMask.scale(rate: rate)
        return (0..<count).map {
            DropoutMask.keep(seed: seed, node: node, step: step, index: $0, rate: rate) ? scale : 0
        }
    }

    /// `x * multipliers`, element by element (forward, and backward on the gradient).
    static func apply(_ multipliers: [Double], to x: Tensor) -> Tensor {
        Tensor(shape: x.shape, data: zip(x.data, multipliers).map { $0 * $1 })
    }
}
