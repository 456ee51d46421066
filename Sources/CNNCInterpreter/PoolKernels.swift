// Max, average and global average pooling with PyTorch's (CPU kernel) edge rules.
//
// Window (oh, ow) starts at h0 = oh*sh - pt, w0 = ow*sw - pl (possibly in the padding).
// - max: the window is clipped to the real input, [max(h0,0), min(h0+kh, H)); padded
//   positions never take part (as if -inf). NaN wins once seen.
// - average: the window end is first clipped to the padded input, h1 = min(h0+kh, H+pb)
//   (likewise for w), so a ceil_mode window that runs past the bottom/right padding loses
//   its overhang; then the summed range is clipped to the real input. The divisor is
//   (h1-h0)*(w1-w0) with count_include_pad, else the number of real elements summed. A window
//   with no real element gives 0.

import CNNCIR

/// Pooling kernels of the interpreter.
enum PoolKernels {
    /// Max pooling: `x` is (N, C, H, W), the result (N, C, P, Q).
    static func max(_ x: Tensor, attributes a: PoolAttributes, output: Shape) -> Tensor {
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let p = output.h, q = output.w
        var out = [Double](repeating: 0, count: planes * p * q)
        x.data.withUnsafeBufferPointer { xs in
            // Per (plane, output position): the maximum over the in-bounds part of the window.
            for plane in 0..<planes {
                let inBase = plane * h * w
                for oh in 0..<p {
                    let h0 = oh * a.stride.h - a.padding.top
                    let hStart = Swift.max(h0, 0), hEnd = Swift.min(h0 + a.kernel.h, h)
                    for ow in 0..<q {
                        let w0 = ow * a.stride.w - a.padding.left
                        let wStart = Swift.max(w0, 0), wEnd = Swift.min(w0 + a.kernel.w, w)
                        var best = -Double.infinity
                        var ih = hStart
                        while ih < hEnd {
                            var iw = wStart
                            while iw < wEnd {
                                let v = xs[inBase + ih * w + iw]
                                if v > best || v.isNaN { best = v }
                                iw += 1
                            }
                            ih += 1
                        }
                        out[(plane * p + oh) * q + ow] = best
                    }
                }
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], p, q], data: out)
    }

    /// Average pooling: `x` is (N, C, H, W), the result (N, C, P, Q).
    static func average(_ x: Tensor, attributes a: PoolAttributes, output: Shape) -> Tensor {
        let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
        let p = output.h, q = output.w
        var out = [Double](repeating: 0, count: planes * p * q)
        x.data.withUnsafeBufferPointer { xs in
            // Per (plane, output position): the window sum over real elements, then the divisor.
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
                        var sum = 0.0
                        for ih in hStart..<hEnd {
                            for iw in wStart..<wEnd { sum += xs[inBase + ih * w + iw] }
                        }
                        let divisor = a.countIncludePad
                            ? (h1 - h0) * (w1 - w0)
                            : (hEnd - hStart) * (wEnd - wStart)
                        out[(plane * p + oh) * q + ow] = sum / Double(divisor)
                    }
                }
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], p, q], data: out)
    }

    /// Global max pooling: the maximum over H and W (NaN wins once seen); (N, C, H, W) to (N, C, 1, 1).
    static func globalMax(_ x: Tensor) -> Tensor {
        let planes = x.shape[0] * x.shape[1], size = x.shape[2] * x.shape[3]
        var out = [Double](repeating: 0, count: planes)
        // Per plane: the largest element.
        for plane in 0..<planes {
            var best = -Double.infinity
            for i in (plane * size)..<((plane + 1) * size) where x.data[i] > best || x.data[i].isNaN { best = x.data[i] }
            out[plane] = best
        }
        return Tensor(shape: [x.shape[0], x.shape[1], 1, 1], data: out)
    }

    /// Global average pooling: the mean over H and W; (N, C, H, W) to (N, C, 1, 1).
    static func globalAverage(_ x: Tensor) -> Tensor {
        let planes = x.shape[0] * x.shape[1], size = x.shape[2] * x.shape[3]
        var out = [Double](repeating: 0, count: planes)
        x.data.withUnsafeBufferPointer { xs in
            // Per plane: the sum of its elements over their count.
            for plane in 0..<planes {
                var sum = 0.0
                for i in (plane * size)..<((plane + 1) * size) { sum += xs[i] }
                out[plane] = sum / Double(size)
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], 1, 1], data: out)
    }
}
