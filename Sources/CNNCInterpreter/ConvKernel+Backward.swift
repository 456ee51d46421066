// Convolution backward, from the forward definition
//
//   out[n,k,p,q] = bias[k] + sum_{c,r,s} in[n, g*C/G + c, p*sh - pt + r*dh, q*sw - pl + s*dw]
//                                        * weight[k, c, r, s]
//
// by differentiating each term:
//
//   d in[n, g*C/G + c, p*sh - pt + r*dh, q*sw - pl + s*dw] += weight[k,c,r,s] * d out[n,k,p,q]
//   d weight[k,c,r,s] += in[n, g*C/G + c, ...] * d out[n,k,p,q]
//   d bias[k]         += d out[n,k,p,q]
//
// summed over every (n, k, p, q, c, r, s) whose tap lands inside the input (padding taps read
// zero and pass no gradient).

import CNNCIR

extension ConvKernel {
    /// `x` is (N, C, H, W), `weight` (K, C/G, R, S), `dy` (N, K, P, Q). Returns the gradients of
    /// the input, the weight and the bias (the bias gradient whether or not the layer has one).
    static func backward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor,
                         attributes a: ConvAttributes) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let k = dy.shape[1], p = dy.shape[2], q = dy.shape[3]
        let groups = a.groups, cPerGroup = c / groups, kPerGroup = k / groups
        let r = a.kernel.h, s = a.kernel.w
        let sh = a.stride.h, sw = a.stride.w
        let rowOffsets = (0..<r).map { $0 * a.dilation.h - a.padding.top }
        let colOffsets = (0..<s).map { $0 * a.dilation.w - a.padding.left }
        let rowRanges = rowOffsets.map { tapRange(outputs: p, stride: sh, offset: $0, input: h) }
        let colRanges = colOffsets.map { tapRange(outputs: q, stride: sw, offset: $0, input: w) }
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: weight.count)
        var db = [Double](repeating: 0, count: k)
        x.data.withUnsafeBufferPointer { xs in
            weight.data.withUnsafeBufferPointer { ws in
                dy.data.withUnsafeBufferPointer { gs in
                    dx.withUnsafeMutableBufferPointer { dxs in
                        dw.withUnsafeMutableBufferPointer { dws in
                            // Per output plane (n, k): the bias gradient is the plane's sum.
                            for ni in 0..<n {
                                for ki in 0..<k {
                                    let outBase = (ni * k + ki) * p * q
                                    for i in outBase..<(outBase + p * q) { db[ki] += gs[i] }
                                }
                            }
                            // Per (n, k, c, r, s): every output position whose tap is inside
                            // the input sends its gradient to that input and to the weight.
                            for ni in 0..<n {
                                for ki in 0..<k {
                                    let g = ki / kPerGroup
                                    let outBase = (ni * k + ki) * p * q
                                    for ci in 0..<cPerGroup {
                                        let inBase = (ni * c + g * cPerGroup + ci) * h * w
                                        let weightBase = (ki * cPerGroup + ci) * r * s
                                        for ri in 0..<r {
                                            let (p0, p1) = rowRanges[ri]
                                            for si in 0..<s {
                                                let weightValue = ws[weightBase + ri * s + si]
                                                let (q0, q1) = colRanges[si]
                                                var weightSum = 0.0
                                                var pi = p0
                                                while pi < p1 {
                                                    let inRow = inBase + (pi * sh + rowOffsets[ri]) * w + colOffsets[si]
                                                    let outRow = outBase + pi * q
                                                    var qi = q0
                                                    while qi < q1 {
                                                        let grad = gs[outRow + qi]
                                                        dxs[inRow + qi * sw] += weightValue * grad
                                                        weightSum += xs[inRow + qi * sw] * grad
                                                        qi += 1
                                                    }
                                                    pi += 1
                                                }
                                                dws[weightBase + ri * s + si] += weightSum
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(shape: x.shape, data: dx), Tensor(shape: weight.shape, data: dw),
                Tensor(shape: [k], data: db))
    }
}
