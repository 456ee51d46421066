// Named tolerances for comparing generated code with the interpreter, each with its reason.

/// `|actual - expected| <= absolute * scale + relative * |expected|`, where `scale` is
/// max(1, largest |expected| of the output), so tiny values next to large ones are judged
/// against the output's magnitude.
public struct Tolerance: Sendable {
    public var name: String
    public var absolute: Double
    public var relative: Double

    /// Bitwise equality: thread counts, deterministic rewrites.
    public static let exact = Tolerance(name: "exact", absolute: 0, relative: 0)
    /// Float32 kernels against the Double interpreter: sums of up to ~10^4 products each
    /// carry ~sqrt(terms) * 6e-8 relative error, compounded over a few dozen layers; 1e-4
    /// absolute / 1e-3 relative leaves two orders of magnitude of room while any indexing
    /// bug (errors of order 1) still fails.
    public static let reduction = Tolerance(name: "reduction", absolute: 1e-4, relative: 1e-3)

    public func accepts(_ actual: Double, _ expected: Double, scale: Double) -> Bool {
        if actual.isNaN || expected.isNaN { return false }
        return abs(actual - expected) <= absolute * scale + relative * abs(expected)
    }
}
