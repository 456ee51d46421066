// select-winograd: chooses Winograd convolution for 3x3 stride-1 layers where it pays and
// its error stays within the budget.
//
//   c = conv(x) size=3 stride=1 dilation=1 groups=1 algorithm=auto  ->  ... algorithm=winograd4x4
//
// F(m x m, 3x3) computes an m x m output tile from an (m+2) x (m+2) input tile with (m+2)^2
// multiplies per (input channel, output channel) instead of 9 m^2: 2.25x fewer for
// F(2x2, 3x3), 4x fewer for F(4x4, 3x3). The transforms (in the backend's WinogradKernel)
// add rounding error that grows with the tile and with the reduction length 9C. The
// estimate used here, measured against the interpreter (see docs/passes.md), is
//   error(F(m)) ~ k_m * 6e-8 * sqrt(9 C),  k_2 = 2, k_4 = 20
// relative to the output's magnitude. Rule, per layer:
//   F(4x4, 3x3) when the output is at least 4x4 and its estimate is within the budget;
//   else F(2x2, 3x3) when the output is at least 2x2 and its estimate is within the budget;
//   else direct.
// and only where input and output have at least `winogradMinChannels` (64) channels: the
// transforms cost O(C + K) per tile against O(C K) multiplies saved, and narrow products fill
// the GEMM's register tile poorly, so below that the plain GEMM convolution is faster
// (measured on ResNet-20 and VGG-11-BN, docs/passes.md).
// Refuses (stays direct): kernel not 3x3, stride or dilation not 1, groups > 1, an
// algorithm the user pinned, output smaller than 2x2, the error over budget, or tile
// buffers over 256 KiB: each OpenMP task keeps (m+2)^2 x (C + K) floats on its stack.

import CNNCIR

/// Picks the convolution algorithm of eligible 3x3 layers.
public struct SelectWinograd: Pass {
    public init() {}
    public let name = "select-winograd"
    public let summary = "use Winograd F(2x2,3x3) or F(4x4,3x3) for 3x3 stride-1 convolutions within the error budget"
    public let modes: Set<PipelineMode> = [.inference]

    /// The largest per-task tile scratch (input transforms and products) kept on the stack.
    public static let maxTileBytes = 256 * 1024

    /// The estimated relative error of F(m x m, 3x3) over `channels` input channels.
    public static func estimatedError(tile: Int, channels: Int) -> Double {
        (tile == 4 ? 20.0 : 2.0) * 6e-8 * Double(9 * channels).squareRoot()
    }

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        let index = graph.indexByName()
        for i in graph.nodes.indices {
            guard case .conv(var a) = graph.nodes[i].op else { continue }
            let node = graph.nodes[i]
            func keep(_ why: String) { remarks.append(Remark(pass: name, node: node.name, message: "direct: \(why)")) }
            guard a.algorithm == .auto else { continue }
            guard a.kernel == Pair(3), a.stride == Pair(1), a.dilation == Pair(1), a.groups == 1 else {
                keep("not a 3x3 stride-1 dense convolution"); continue
            }
            let channels = graph.nodes[index[node.inputs[0]]!].shape.c
            let (p, q) = (node.shape.h, node.shape.w)
            guard min(channels, a.filters) >= options.winogradMinChannels else {
                keep("\(channels) -> \(a.filters) channels: the GEMM is faster below \(options.winogradMinChannels)"); continue
            }
            guard 36 * (channels + a.filters) * 4 <= Self.maxTileBytes else {
                keep("tile buffers for \(channels) -> \(a.filters) channels exceed \(Self.maxTileBytes / 1024) KiB of stack"); continue
            }
            if p >= 4, q >= 4, Self.estimatedError(tile: 4, channels: channels) <= options.winogradErrorBudget {
                a.algorithm = .winograd4x4
            } else if p >= 2, q >= 2, Self.estimatedError(tile: 2, channels: channels) <= options.winogradErrorBudget {
                a.algorithm = .winograd2x2
            } else {
                keep(p < 2 || q < 2 ? "output \(p)x\(q) is smaller than one tile" : "estimated error over the budget"); continue
            }
            graph.nodes[i].op = .conv(a)
            remarks.append(Remark(pass: name, node: node.name, message: a.algorithm.rawValue))
        }
    }
}
