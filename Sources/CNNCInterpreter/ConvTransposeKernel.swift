// Transposed convolution (PyTorch ConvTranspose2d, ONNX ConvTranspose), in its scatter form:
//
//   out[n, g*KG + k, h*sh - pt + r*dh, w*sw - pl + s*dw] += in[n, g*CG + c, h, w] * weight[g*CG + c, k, r, s]
//   out[n, k, p, q] += bias[k]
//
// over every tap that lands inside the output (the padding crops the full output). Backward,
// term by term:
//
//   d in[n, g*CG + c, h, w]   += weight[g*CG + c, k, r, s] * d out[n, g*KG + k, p, q]
//   d weight[g*CG + c, k, r, s] += in[n, g*CG + c, h, w] * d out[n, g*KG + k, p, q]
//   d bias[k]                 += d out[n, k, p, q]
//
// with p = h*sh - pt + r*dh, q = w*sw - pl + s*dw inside the output.

import CNNCIR

/// The transposed-convolution kernel of the interpreter.
enum ConvTransposeKernel {
    /// Calls `tap(xi, oi, wj)` for every (input element, tap) pair of the scatter form whose
    /// output lies inside (N, K, P, Q): flat indices into x (N, C, H, W), the output and the
    /// weight (C, K/G, R, S), in a fixed order.
    static func forEachTap(input x: [Int], outputChannels k: Int, outputHeight p: Int, outputWidth q: Int,
                           _ a: ConvTransposeAttributes, _ tap: (Int, Int, Int) -> Void) {
        let n = x[0], c = x[1], h = x[2], w = x[3]
        let cg = c / a.groups, kg = k / a.groups, r = a.kernel.h, s = a.kernel.w
        for ni in 0..<n {
            for ci in 0..<c {
                let g = ci / cg
                for hi in 0..<h {
                    for wi in 0..<w {
                        let xi = ((ni * c + ci) * h + hi) * w + wi
                        for ki in 0..<kg {
                            let plane = (ni * k + g * kg + ki) * p * q
                            for ri in 0..<r {
                                let pi = hi * a.stride.h - a.padding.top + ri * a.dilation.h
                                guard pi >= 0 && pi < p else { continue }
                                for si in 0..<s {
                                    let qi = wi * a.stride.w - a.padding.left + si * a.dilation.w
                                    guard qi >= 0 && qi < q else { continue }
                                    tap(xi, plane + pi * q + qi, ((ci * kg + ki) * r + ri) * s + si)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `x` is (N, C, H, W), `weight` (C, K/G, R, S), `bias` (K); the result is (N, K, P, Q).
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ a: ConvTransposeAttributes,
                        output: Shape) -> Tensor {
        let n = x.shape[0], k = output.c, p = output.h, q = output.w
        var out = [Double](repeating: 0, count: n * k * p * q)
        // Every input element scatters its filter into the output planes of its group.
        forEachTap(input: x.shape, outputChannels: k, outputHeight: p, outputWidth: q, a) { xi, oi, wj in
            out[oi] += x.data[xi] * weight.data[wj]
        }
        // The bias goes on after the sum.
        if let bias {
            for ni in 0..<n {
                for ki in 0..<k {
                    for i in 0..<(p * q) { out[(ni * k + ki) * p * q + i] += bias.data[ki] }
                }
            }
        }
        return Tensor(shape: [n, k, p, q], data: out)
    }

    /// `x` is (N, C, H, W), `weight` (C, K/G, R, S), `dy` (N, K, P, Q). Returns the gradients of
    /// the input, the weight and the bias (the bias gradient whether or not the layer has one).
    static func backward(_ x: Tensor, weight: Tensor, outputGradient dy: Tensor,
                         _ a: ConvTransposeAttributes) -> (input: Tensor, weight: Tensor, bias: Tensor) {
        let n = x.shape[0], k = dy.shape[1], p = dy.shape[2], q = dy.shape[3]
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: weight.count)
        var db = [Double](repeating: 0, count: k)
        // Each (input element, tap) pair of the forward, differentiated.
        forEachTap(input: x.shape, outputChannels: k, outputHeight: p, outputWidth: q, a) { xi, oi, wj in
            dx[xi] += weight.data[wj] * dy.data[oi]
            dw[wj] += x.data[xi] * dy.data[oi]
        }
        // The bias gradient sums each output plane.
        for ni in 0..<n {
            for ki in 0..<k {
                for i in 0..<(p * q) { db[ki] += dy.data[(ni * k + ki) * p * q + i] }
            }
        }
        return (Tensor(shape: x.shape, data: dx), Tensor(shape: weight.shape, data: dw), Tensor(shape: [k], data: db))
    }
}
