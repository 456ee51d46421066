// The interpreter's value type: a dense tensor of Doubles with the batch dimension first.

import CNNCIR

/// A dense tensor in NCHW (or N x F) order with Double elements.
public struct Tensor: Equatable, Sendable {
    /// Dimensions, outermost first: `[N, C, H, W]` or `[N, F]` for batched values,
    /// `[K, C, R, S]` and the like for parameters.
    public var shape: [Int]
    /// The elements in row-major order; `data.count` equals the product of `shape`.
    public var data: [Double]

    /// A tensor holding `data`; its count must equal the product of `shape`.
    public init(shape: [Int], data: [Double]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(data.count == Tensor.elementCount(shape),
                     "shape \(shape) needs \(Tensor.elementCount(shape)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// A tensor of the given shape filled with zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Double](repeating: 0, count: Tensor.elementCount(shape)))
    }

    /// A batch made of equally shaped samples: shape `[samples.count] + sample.shape`.
    public init(stacking samples: [Tensor]) {
        precondition(!samples.isEmpty, "stacking needs at least one sample")
        let sampleShape = samples[0].shape
        var data: [Double] = []
        data.reserveCapacity(samples.count * Tensor.elementCount(sampleShape))
        for sample in samples {
            precondition(sample.shape == sampleShape, "stacking \(sample.shape) onto \(sampleShape)")
            data.append(contentsOf: sample.data)
        }
        self.init(shape: [samples.count] + sampleShape, data: data)
    }

    /// Number of elements.
    public var count: Int { data.count }

    /// Sample `n` of a batch, keeping a batch dimension of 1: shape `[1] + shape.dropFirst()`.
    public func sample(_ n: Int) -> Tensor {
        precondition(!shape.isEmpty && n >= 0 && n < shape[0], "sample \(n) of a tensor of shape \(shape)")
        let size = Tensor.elementCount(Array(shape.dropFirst()))
        return Tensor(shape: [1] + shape.dropFirst(), data: Array(data[(n * size)..<((n + 1) * size)]))
    }

    /// The product of the dimensions (1 for a scalar shape).
    static func elementCount(_ shape: [Int]) -> Int { SizeArithmetic.saturatingProduct(shape) }
}
