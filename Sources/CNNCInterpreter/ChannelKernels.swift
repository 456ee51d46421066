// Channel rearrangements: shuffle (ShuffleNet's channel shuffle) and slice (a range of
// channels, ShuffleNet's channel split). Both move whole planes; backward moves the gradient
// planes back.
//
//   shuffle  out[c] = in[(c % G) * (C / G) + c / G]     d in[(c % G) * (C / G) + c / G] += d out[c]
//   slice    out[c] = in[start + c]                    d in[start + c] += d out[c]

import CNNCIR

/// The interpreter's channel kernels over (N, C, ...) tensors.
enum ChannelKernels {
    /// The input channel that output channel `c` of a shuffle reads.
    static func shuffleSource(_ c: Int, channels: Int, groups: Int) -> Int {
        (c % groups) * (channels / groups) + c / groups
    }

    static func shuffle(_ x: Tensor, groups: Int) -> Tensor {
        let (n, channels, inner) = dims(x)
        var out = [Double](repeating: 0, count: x.count)
        // Per (sample, output channel): the plane of its source channel.
        for b in 0..<n {
            for c in 0..<channels {
                let from = (b * channels + shuffleSource(c, channels: channels, groups: groups)) * inner
                let to = (b * channels + c) * inner
                for i in 0..<inner { out[to + i] = x.data[from + i] }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    static func shuffleBackward(_ x: Tensor, outputGradient dy: Tensor, groups: Int) -> Tensor {
        let (n, channels, inner) = dims(x)
        var dx = [Double](repeating: 0, count: x.count)
        // Per (sample, output channel): its gradient plane goes back to the source channel.
        for b in 0..<n {
            for c in 0..<channels {
                let to = (b * channels + shuffleSource(c, channels: channels, groups: groups)) * inner
                let from = (b * channels + c) * inner
                for i in 0..<inner { dx[to + i] += dy.data[from + i] }
            }
        }
        return Tensor(shape: x.shape, data: dx)
    }

    static func slice(_ x: Tensor, start: Int, end: Int) -> Tensor {
        let (n, channels, inner) = dims(x)
        var out: [Double] = []
        out.reserveCapacity(n * (end - start) * inner)
        // Per sample: the contiguous block of channels start ..< end.
        for b in 0..<n {
            out.append(contentsOf: x.data[((b * channels + start) * inner)..<((b * channels + end) * inner)])
        }
        var shape = x.shape
        shape[1] = end - start
        return Tensor(shape: shape, data: out)
    }

    static func sliceBackward(_ x: Tensor, outputGradient dy: Tensor, start: Int, end: Int) -> Tensor {
        let (n, channels, inner) = dims(x)
        var dx = [Double](repeating: 0, count: x.count)
        let block = (end - start) * inner
        // Per sample: the gradient block back at channels start ..< end; the rest stays 0.
        for b in 0..<n {
            for i in 0..<block { dx[(b * channels + start) * inner + i] = dy.data[b * block + i] }
        }
        return Tensor(shape: x.shape, data: dx)
    }

    /// (N, C, elements per channel) of an (N, C, ...) tensor.
    private static func dims(_ x: Tensor) -> (Int, Int, Int) {
        let n = x.shape[0], channels = x.shape[1]
        return (n, channels, n == 0 || channels == 0 ? 0 : x.count / (n * channels))
    }
}

/// Explicit padding (`pad`): `out[c, h, w] = in[c - cb, src(h), src(w)]`, or the constant where
/// the channel or a spatial source is outside (PadMode.source). Backward adds each output
/// gradient into its source element (edge and reflect reuse sources, so they accumulate).
enum PadKernel {
    static func forward(_ x: Tensor, _ a: PadAttributes, output: Shape) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        var out = [Double](repeating: a.value, count: n * output.count)
        // Per (sample, output channel, row): columns from their sources.
        for b in 0..<n {
            for c in 0..<output.c {
                let ci = c - a.channelsBefore
                guard ci >= 0 && ci < channels else { continue }
                for h in 0..<output.h {
                    guard let hi = a.mode.source(h, before: a.padding.top, size: height) else { continue }
                    for w in 0..<output.w {
                        guard let wi = a.mode.source(w, before: a.padding.left, size: width) else { continue }
                        out[((b * output.c + c) * output.h + h) * output.w + w] =
                            x.data[((b * channels + ci) * height + hi) * width + wi]
                    }
                }
            }
        }
        return Tensor(shape: [n] + output.dims, data: out)
    }

    static func backward(_ x: Tensor, outputGradient dy: Tensor, _ a: PadAttributes) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        let oc = dy.shape[1], oh = dy.shape[2], ow = dy.shape[3]
        var dx = [Double](repeating: 0, count: x.count)
        // Per output element with a source: its gradient added to the source.
        for b in 0..<n {
            for c in 0..<oc {
                let ci = c - a.channelsBefore
                guard ci >= 0 && ci < channels else { continue }
                for h in 0..<oh {
                    guard let hi = a.mode.source(h, before: a.padding.top, size: height) else { continue }
                    for w in 0..<ow {
                        guard let wi = a.mode.source(w, before: a.padding.left, size: width) else { continue }
                        dx[((b * channels + ci) * height + hi) * width + wi] += dy.data[((b * oc + c) * oh + h) * ow + w]
                    }
                }
            }
        }
        return Tensor(shape: x.shape, data: dx)
    }
}

/// Upsampling by whole factors. Nearest: `out[c, h, w] = in[c, h / sh, w / sw]`; backward sums
/// each sh x sw block of the output gradient into its source. Bilinear: each output mixes the
/// four sources of `UpsampleAttributes.taps` (rows, then columns); backward hands each of them
/// its weight's share of the output gradient.
enum UpsampleKernel {
    /// Per output index along one axis: the two sources and the weight of the second.
    static func taps(_ a: UpsampleAttributes, inSize: Int, scale: Int) -> [(i0: Int, i1: Int, lambda: Double)] {
        (0..<(inSize * scale)).map { a.taps($0, inSize: inSize, outSize: inSize * scale, scale: scale) }
    }

    static func forward(_ x: Tensor, _ a: UpsampleAttributes) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        let oh = height * a.scale.h, ow = width * a.scale.w
        var out = [Double](repeating: 0, count: n * channels * oh * ow)
        let rows = taps(a, inSize: height, scale: a.scale.h), cols = taps(a, inSize: width, scale: a.scale.w)
        // Per (sample, channel, output row): each output column from its source(s).
        for plane in 0..<(n * channels) {
            for h in 0..<oh {
                for w in 0..<ow {
                    let o = (plane * oh + h) * ow + w
                    switch a.mode {
                    case .nearest:
                        out[o] = x.data[(plane * height + h / a.scale.h) * width + w / a.scale.w]
                    case .bilinear:
                        let (h0, h1, lh) = rows[h], (w0, w1, lw) = cols[w]
                        func at(_ i: Int, _ j: Int) -> Double { x.data[(plane * height + i) * width + j] }
                        out[o] = (1 - lh) * ((1 - lw) * at(h0, w0) + lw * at(h0, w1))
                            + lh * ((1 - lw) * at(h1, w0) + lw * at(h1, w1))
                    }
                }
            }
        }
        return Tensor(shape: [n, channels, oh, ow], data: out)
    }

    static func backward(_ x: Tensor, outputGradient dy: Tensor, _ a: UpsampleAttributes) -> Tensor {
        let n = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        let oh = height * a.scale.h, ow = width * a.scale.w
        var dx = [Double](repeating: 0, count: x.count)
        let rows = taps(a, inSize: height, scale: a.scale.h), cols = taps(a, inSize: width, scale: a.scale.w)
        // Per output element: its gradient added to its source(s), by weight.
        for plane in 0..<(n * channels) {
            for h in 0..<oh {
                for w in 0..<ow {
                    let g = dy.data[(plane * oh + h) * ow + w]
                    switch a.mode {
                    case .nearest:
                        dx[(plane * height + h / a.scale.h) * width + w / a.scale.w] += g
                    case .bilinear:
                        let (h0, h1, lh) = rows[h], (w0, w1, lw) = cols[w]
                        dx[(plane * height + h0) * width + w0] += (1 - lh) * (1 - lw) * g
                        dx[(plane * height + h0) * width + w1] += (1 - lh) * lw * g
                        dx[(plane * height + h1) * width + w0] += lh * (1 - lw) * g
                        dx[(plane * height + h1) * width + w1] += lh * lw * g
                    }
                }
            }
        }
        return Tensor(shape: x.shape, data: dx)
    }
}
