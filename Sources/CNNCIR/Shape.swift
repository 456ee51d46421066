// Static tensor shapes. A value's shape is per sample: `[C, H, W]` for feature maps and
// `[F]` for vectors. The batch dimension N is chosen later (at compile time for the C code,
// from the data for the interpreter), so one graph serves every batch size.

/// The per-sample shape of a value, e.g. `[6, 28, 28]`; printed `6x28x28`.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }

    public var rank: Int { dims.count }
    /// Number of elements per sample; `Int.max` when the product overflows, so that the
    /// element limit of shape inference refuses it.
    public var count: Int { SizeArithmetic.saturatingProduct(dims) }

    /// Channels, height and width of a rank-3 shape.
    public var c: Int { dims[0] }
    public var h: Int { dims[1] }
    public var w: Int { dims[2] }

    /// `6x28x28`, or `10` for a vector.
    public var description: String { dims.map(String.init).joined(separator: "x") }

    /// The shape with a batch dimension in front, as PyTorch prints it: `[2, 6, 28, 28]`.
    public func batched(_ n: Int) -> [Int] { [n] + dims }
}
