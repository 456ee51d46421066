// Element-wise arithmetic on two values with a broadcast second operand (`mul`, `sub`, `div`):
// `out[i] = a[i] OP b[i / run]`, where `run` consecutive elements of a sample of `a` share one
// element of `b` (1: same shape, H*W: one per channel, the whole sample: one per sample).
//
// Backward, with dy the output gradient:
//   mul  da = dy * b           db = sum over the run of dy * a
//   sub  da = dy               db = -sum dy
//   div  da = dy / b           db = -sum dy * a / b^2

import CNNCIR

/// The interpreter's kernels for `BinaryOp`.
enum BinaryKernel {
    /// `a OP b`, with `a` (N, ...) and `b` (N, ...) broadcasting as `ShapeRules.broadcast` says.
    static func forward(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        let run = runLength(a, b)
        var out = [Double](repeating: 0, count: a.count)
        // Each element of a with the element of b its run shares.
        for i in 0..<a.count {
            let x = a.data[i], y = b.data[i / run]
            switch op {
            case .mul: out[i] = x * y
            case .sub: out[i] = x - y
            case .div: out[i] = x / y
            }
        }
        return Tensor(shape: a.shape, data: out)
    }

    /// The gradients of both operands given the output's.
    static func backward(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, outputGradient dy: Tensor) -> (a: Tensor, b: Tensor) {
        let run = runLength(a, b)
        var da = [Double](repeating: 0, count: a.count)
        var db = [Double](repeating: 0, count: b.count)
        // Each element sends its share to a, and sums into b's element over its run.
        for i in 0..<a.count {
            let x = a.data[i], y = b.data[i / run], g = dy.data[i]
            switch op {
            case .mul: da[i] = g * y; db[i / run] += g * x
            case .sub: da[i] = g; db[i / run] -= g
            case .div: da[i] = g / y; db[i / run] -= g * x / (y * y)
            }
        }
        return (Tensor(shape: a.shape, data: da), Tensor(shape: b.shape, data: db))
    }

    /// How many consecutive elements of `a` share one element of `b` (both batched alike).
    private static func runLength(_ a: Tensor, _ b: Tensor) -> Int {
        let n = max(a.shape.first ?? 1, 1)
        let perSample = a.count / n, bPerSample = max(b.count / n, 1)
        return max(perSample / bPerSample, 1)
    }
}
