// Direct convolution (PyTorch Conv2d): stride, asymmetric zero padding, dilation, groups.
//
//   out[n,k,p,q] = bias[k] + sum_{c,r,s} in[n, g*C/G + c, p*sh - pt + r*dh, q*sw - pl + s*dw]
//                                        * weight[k, c, r, s]
//
// with g = k / (K/G) and taps outside the input reading zero.

import CNNCIR

/// The convolution kernel of the interpreter.
enum ConvKernel {
    /// `x` is (N, C, H, W), `weight` (K, C/G, R, S), `bias` (K); the result is (N, K, P, Q).
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, attributes a: ConvAttributes,
                        output: Shape) -> Tensor {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let k = output.c, p = output.h, q = output.w
        let groups = a.groups, cPerGroup = c / groups, kPerGroup = k / groups
        let r = a.kernel.h, s = a.kernel.w
        let sh = a.stride.h, sw = a.stride.w
        // For each kernel row (column): its offset into the input and the output rows
        // (columns) whose tap lands inside the input, so the inner loops need no bounds tests.
        let rowOffsets = (0..<r).map { $0 * a.dilation.h - a.padding.top }
        let colOffsets = (0..<s).map { $0 * a.dilation.w - a.padding.left }
        let rowRanges = rowOffsets.map { tapRange(outputs: p, stride: sh, offset: $0, input: h) }
        let colRanges = colOffsets.map { tapRange(outputs: q, stride: sw, offset: $0, input: w) }
        let biases = bias?.data ?? [Double](repeating: 0, count: k)
        var out = [Double](repeating: 0, count: n * k * p * q)
        x.data.withUnsafeBufferPointer { xs in
            weight.data.withUnsafeBufferPointer { ws in
                out.withUnsafeMutableBufferPointer { os in
                    // One output plane (n, k) at a time: accumulate every tap over the plane.
                    for ni in 0..<n {
                        for ki in 0..<k {
                            let g = ki / kPerGroup
                            let outBase = (ni * k + ki) * p * q
                            for ci in 0..<cPerGroup {
                                let inBase = (ni * c + g * cPerGroup + ci) * h * w
                                let weightBase = (ki * cPerGroup + ci) * r * s
                                for ri in 0..<r {
                                    let (p0, p1) = rowRanges[ri]
                                    let rowOffset = rowOffsets[ri]
                                    for si in 0..<s {
                                        let weightValue = ws[weightBase + ri * s + si]
                                        let (q0, q1) = colRanges[si]
                                        let colOffset = colOffsets[si]
                                        var pi = p0
                                        while pi < p1 {
                                            let inRow = inBase + (pi * sh + rowOffset) * w + colOffset
                                            let outRow = outBase + pi * q
                                            var qi = q0
                                            while qi < q1 {
                                                os[outRow + qi] += weightValue * xs[inRow + qi * sw]
                                                qi += 1
                                            }
                                            pi += 1
                                        }
                                    }
                                }
                            }
                            // The bias goes on after the sum.
                            let b = biases[ki]
                            for i in outBase..<(outBase + p * q) { os[i] += b }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, k, p, q], data: out)
    }

    /// The outputs `o` in `0..<outputs` with `0 <= o * stride + offset < input`, as a half-open
    /// range `(lower, upper)` (empty when `upper == lower`).
    static func tapRange(outputs: Int, stride: Int, offset: Int, input: Int) -> (Int, Int) {
        let lower = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let last = input - 1 - offset
        let upper = last < 0 ? 0 : min(outputs, last / stride + 1)
        return (min(lower, outputs), max(min(lower, outputs), upper))
    }
}
