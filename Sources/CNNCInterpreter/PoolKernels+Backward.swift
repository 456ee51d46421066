// Pooling backward with the forward's window rules (see PoolKernels.swift).
//
// - max: each output's gradient goes to one input, the one the forward scan picked: the first
//   maximal element in row-major scan order of the clipped window (a later element wins only
//   when strictly larger, or NaN), as PyTorch's CPU kernel records its index. Padding never wins.
// - average: each output's gradient, divided by the forward's divisor, goes to every real
//   element of its window.
// - global average: each plane's gradient divided by H * W goes to every element.

import CNNCIR

extension PoolKernels {
    /// Max pooling backward: `x` is (N, C, H, W), `dy` (N, C, P, Q); returns d x.
    static func maxBackward(_ x: Tensor, outputGradient dy: Tensor, attributes a: PoolAttributes) -> Tensor {
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let p = dy.shape[2], q = dy.shape[3]
        var dx = [Double](repeating: 0, count: x.count)
        // Per (plane, output position): find the forward's winner again and pass it the gradient.
        for plane in 0..<planes {
            let inBase = plane * h * w
            for oh in 0..<p {
                let h0 = oh * a.stride.h - a.padding.top
                let hStart = Swift.max(h0, 0), hEnd = Swift.min(h0 + a.kernel.h, h)
                for ow in 0..<q {
                    let w0 = ow * a.stride.w - a.padding.left
                    let wStart = Swift.max(w0, 0), wEnd = Swift.min(w0 + a.kernel.w, w)
                    guard hStart < hEnd, wStart < wEnd else { continue }
                    var best = -Double.infinity
                    var winner = inBase + hStart * w + wStart
                    for ih in hStart..<hEnd {
                        for iw in wStart..<wEnd {
                            let v = x.data[inBase + ih * w + iw]
                            if v > best || v.isNaN {
                                best = v
                                winner = inBase + ih * w + iw
                            }
                        }
                    }
                    dx[winner] += dy.data[(plane * p + oh) * q + ow]
                }
            }
        }
        return Tensor(shape: x.shape, data: dx)
    }

    /// Average pooling backward: `x` is (N, C, H, W), `dy` (N, C, P, Q); returns d x.
    static func averageBackward(_ x: Tensor, outputGradient dy: Tensor, attributes a: PoolAttributes) -> Tensor {
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let p = dy.shape[2], q = dy.shape[3]
        var dx = [Double](repeating: 0, count: x.count)
        // Per (plane, output position): the same window and divisor as the forward.
        for plane in 0..<planes {
            let inBase = plane * h * w
            for oh in 0..<p {
                let h0 = oh * a.stride.h - a.padding.top
                let h1 = Swift.min(h0 + a.kernel.h, h + a.padding.bottom)
                let hStart = Swift.max(h0, 0), hEnd = Swift.min(h1, h)
                for ow in 0..<q {
                    let w0 = ow * a.stride.w - a.padding.left
                    let w1 = Swift.min(w0 + a.kernel.w, w + a.padding.right)
                    let wStart = Swift.max(w0, 0), wEnd = Swift.min(w1, w)
                    guard hStart < hEnd, wStart < wEnd else { continue }
                    let divisor = a.countIncludePad
                        ? (h1 - h0) * (w1 - w0)
                        : (hEnd - hStart) * (wEnd - wStart)
                    let share = dy.data[(plane * p + oh) * q + ow] / Double(divisor)
                    for ih in hStart..<hEnd {
                        for iw in wStart..<wEnd { dx[inBase + ih * w + iw] += share }
                    }
                }
            }
        }
        return Tensor(shape: x.shape, data: dx)
    }

    /// Global average pooling backward: `x` is (N, C, H, W), `dy` (N, C, 1, 1); returns d x.
    static func globalAverageBackward(_ x: Tensor, outputGradient dy: Tensor) -> Tensor {
        let planes = x.shape[0] * x.shape[1], size = x.shape[2] * x.shape[3]
        var dx = [Double](repeating: 0, count: x.count)
        // Per plane: an equal share to every element.
        for plane in 0..<planes {
            let share = dy.data[plane] / Double(size)
            for i in (plane * size)..<((plane + 1) * size) { dx[i] = share }
        }
        return Tensor(shape: x.shape, data: dx)
    }
}
