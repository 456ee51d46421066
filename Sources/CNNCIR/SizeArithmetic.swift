// Checked arithmetic for every size computed from input (shapes, element counts, byte
// counts, offsets): one place that turns overflow, negative factors and non-finite numbers
// into `nil` (or a saturated value a limit then rejects), never a trap.

/// Overflow-checked products and conversions for sizes read from files.
public enum SizeArithmetic {
    /// The product of `factors`, or nil when one is negative or the product overflows `Int`.
    public static func product<S: Sequence>(_ factors: S) -> Int? where S.Element == Int {
        let all = Array(factors)
        guard all.allSatisfy({ $0 >= 0 }) else { return nil }
        // A zero factor makes the product 0 even after a prefix that overflows.
        if all.contains(0) { return 0 }
        var result = 1
        for f in all {
            let (p, overflow) = result.multipliedReportingOverflow(by: f)
            guard !overflow else { return nil }
            result = p
        }
        return result
    }

    /// The product of non-negative factors, `Int.max` when it overflows (or a factor is
    /// negative): a size that any element limit then refuses.
    public static func saturatingProduct<S: Sequence>(_ factors: S) -> Int where S.Element == Int {
        product(factors) ?? Int.max
    }

    /// `a * b`, or nil on overflow.
    public static func multiply(_ a: Int, _ b: Int) -> Int? {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : p
    }

    /// `a + b`, or nil on overflow.
    public static func add(_ a: Int, _ b: Int) -> Int? {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : s
    }

    /// The integer a Double holds exactly, or nil for NaN, infinities, fractions and values
    /// outside `Int`'s range (where `Int(_:)` would trap).
    public static func int(exactly value: Double) -> Int? { Int(exactly: value) }
}
