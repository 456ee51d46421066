// select-conv-algorithm: the one place that decides how each convolution runs; the choice is
// written into the IR (`algorithm=`), so `summary`, `--print-ir-after` and the backend agree.
//
//   c = conv(x) ... algorithm=auto  ->  ... algorithm=implicit | gemm | depthwise | direct | winograd4x4 | winograd2x2
//
// Candidates, with what each costs (C, K channels, R S kernel, P Q output, W input width):
//   implicit     implicit GEMM on NCHW (cnnc_conv_direct): K*C*R*S*P*W multiplies
//                (positions numbered over the input's width: the W - Q extra columns are
//                computed and dropped), no copy of the input, weights packed once, epilogue in
//                the kernel. Strided layers read their input's phase planes (rows and columns
//                a, a + stride, ...: one copy of the input, cnnc_conv_phase_split) and number
//                positions over a plane's width ceil(W / stride); no tap is computed twice.
//                Needs Q <= that width and at most 49 taps; inference only (training runs
//                strided layers on the GEMM, whose backward it has).
//   gemm         the packed matrix product with im2col packed per call (cnnc_sgemm_conv_packed):
//                K*C*R*S*P*Q multiplies plus a copy of C*R*S*P*Q floats; any stride.
//   depthwise    groups == C (any multiplier K/C): cnnc_conv_depthwise, each vector of outputs
//                summed over its R*S taps in a register and stored once with the epilogue;
//                K*R*S*P*Q multiplies, any stride, padding and dilation. Measured on MobileNetV2's
//                17 3x3 layers against direct (docs/passes.md).
//   direct       the plain loop nest: narrow grouped layers, where a matrix product has
//                nothing to reuse (it reads and writes each output row once per tap).
//   winograd     F(m x m, 3x3) on the GEMM: (m+2)^2 / (9 m^2) of the multiplies plus input and
//                output transforms of O(C + K) per tile; its rounding error grows with the tile
//                and the reduction length 9C:
//                  error(F(m)) ~ k_m * 6e-8 * sqrt(9 C),  k_2 = 2, k_4 = 20
//                relative to the output's magnitude (measured against the interpreter, see
//                docs/passes.md), and must stay within the budget (1e-4).
// Rule (inference), per layer, from the measured throughput of each kernel on this project's
// machines (docs/passes.md, "Choosing the convolution algorithm"):
//   1. depthwise (groups == C) -> depthwise; other groups too narrow for a matrix product -> direct;
//   2. Winograd F(4x4) when allowed (not --no-winograd), the layer is 3x3 stride 1 dilation 1
//      dense, both channel counts reach --winograd-min-channels (32), input plus output
//      channels are at most 1024, the batch has at least 16 tiles of 4x4 (tiles are numbered
//      over the batch and blocks span samples), the output fills at least a quarter of its
//      tiles (2x2 and larger) and the error estimate is within budget (F(2x2) where only its
//      estimate is). Measured per layer against the implicit GEMM (1 thread, Zen 4, best of 3
//      runs' medians; docs/passes.md): at batch 1 F(4x4) on the runtime's kernel won by
//      1.8-2.0x on 64 -> 64 at 56x56, 2.05-2.2x on 128 -> 128 at 28x28, 2.2-2.3x on 256 -> 256
//      at 14x14, 2.2x on 64 -> 128 at 16x16 and 1.2-1.4x on 32 -> 32 at 16x16; it lost on
//      16 -> 16 at 32x32 (0.86-0.97x) and on planes of 4 tiles or fewer (8x8, 7x7: 0.44-0.93x,
//      when blocks held one sample's tiles). At batch 32, with blocks over the batch: 2.0x on
//      64 -> 64 at 8x8 (ResNet-20), 2.2x on 256 -> 256 at 8x8 and 512 -> 512 at 4x4, 1.5x on
//      512 -> 512 at 2x2 against the GEMM (VGG-11-BN), 2.9x on 512 -> 512 at 7x7 (ResNet-18);
//   3. implicit when it applies, its extra columns cost less than im2col's copy (W/Q <= 1.5,
//      W the width positions are numbered over) and a sample's plane fills at least half of
//      its vector lanes (P*W positions in tiles of 32 or 16; a 2x2 plane fills a quarter) or
//      the batch is too small to do better (fewer than 16 positions over the batch);
//   4. else gemm: its columns run over the whole batch.
// Training builds pack or transform their weights once per step (the trainer's state holds
// the packed panels, or F(4x4)'s U = G g G^T): the same rule, with F(4x4) only (F(2x2) is
// generated C on another layout of U) and from 64 channels (winogradMinTrainingChannels), for
// the forward and the input gradient (the full convolution of d out, ConvBackward.inputWinograd);
// the weight gradient reads x and d out and does not depend on the choice (depthwise reads the raw weights, so its training
// forward runs the same kernel; its backward has its own).
// Refuses: an algorithm the user pinned (kept as written; in training a pinned F(2x2) runs as F(4x4)).

import CNNCIR

/// Picks each convolution's algorithm.
public struct SelectConvAlgorithm: Pass {
    public init() {}
    public let name = "select-conv-algorithm"
    public let summary = "choose each convolution's algorithm (implicit GEMM, packed GEMM, Winograd, depthwise, direct) and record it in the IR"
    public let modes: Set<PipelineMode> = [.inference, .training]

    /// Winograd only up to this many input plus output channels (measured up to 512 + 512,
    /// docs/passes.md), where the batch has this many 4x4 tiles (blocks of tiles span samples:
    /// fewer would re-read the transformed filters, 4x the weights, for a few tiles), and where
    /// the tiles cover a plane at least this much (a 2x2 output uses a quarter of its tile).
    public static let winogradMaxChannelSum = 1024
    public static let winogradMinTiles = 16
    public static let winogradMinTileUse = 0.25
    /// Training's forward and input gradient on F(4x4) only where both channel counts reach
    /// this. ResNet-20 at batch 64, 1 thread, Zen 3 (AVX2), forward + backward ms, implicit ->
    /// F(4x4): 64 -> 64 at 8x8 3.8 + 7.4 -> 2.5 + 6.4 (the backward's share is the input
    /// gradient's); 32 -> 32 at 16x16 4.8 + 8.2 -> 4.7 + 8.3-8.8 (a block's V and M, 36 x 64 x 32
    /// floats, no longer fit the L2 beside the packed U).
    public static let winogradMinTrainingChannels = 64

    /// The estimated relative error of F(m x m, 3x3) over `channels` input channels.
    public static func estimatedError(tile: Int, channels: Int) -> Double {
        (tile == 4 ? 20.0 : 2.0) * 6e-8 * Double(9 * channels).squareRoot()
    }

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        let index = graph.indexByName()
        for i in graph.nodes.indices {
            guard case .conv(var a) = graph.nodes[i].op else { continue }
            let node = graph.nodes[i]
            if options.mode == .training && a.algorithm == .winograd2x2 {
                // the trainer transforms filters for F(4x4) only (F(2x2)'s U has another layout)
                a.algorithm = .winograd4x4
                graph.nodes[i].op = .conv(a)
                remarks.append(Remark(pass: name, node: node.name, message: "winograd4x4: training runs F(4x4) where F(2x2) was pinned"))
                continue
            }
            guard a.algorithm == .auto else { continue }
            let x = graph.nodes[index[node.inputs[0]]!].shape
            let (chosen, why) = choose(a, input: x, output: node.shape, options: options)
            a.algorithm = chosen
            graph.nodes[i].op = .conv(a)
            remarks.append(Remark(pass: name, node: node.name, message: "\(chosen.rawValue): \(why)"))
        }
    }

    /// The share of the implicit GEMM's vector lanes a sample's plane fills: P*W positions in
    /// tiles of 32, or of 16 where 32 would leave most empty (cnnc_conv_direct's rule).
    static func implicitLaneUse(outputHeight p: Int, inputWidth w: Int) -> Double {
        let flat = p * w
        let by32 = (flat + 31) / 32 * 32, by16 = (flat + 15) / 16 * 16
        return Double(flat) / Double(by16 * 5 < by32 * 4 ? by16 : by32)
    }

    /// The algorithm for one layer and the reason, as the rule above says.
    func choose(_ a: ConvAttributes, input x: Shape, output y: Shape, options: PassOptions) -> (ConvAlgorithm, String) {
        if a.isDepthwise(inputChannels: x.c) {
            let multiplier = a.filters / a.groups
            return (.depthwise, "depthwise (groups = \(x.c) channels\(multiplier > 1 ? ", multiplier \(multiplier)" : "")): each output's taps in a register, stored once")
        }
        guard a.groupsSuitMatrixProduct(inputChannels: x.c) else {
            return (.direct, "groups of \(x.c / a.groups) -> \(a.filters / a.groups) channels are too narrow for a matrix product")
        }
        // 4x4 output tiles of a sample, and over the batch the code is built for
        let sampleTiles = ((y.h + 3) / 4) * ((y.w + 3) / 4), batchTiles = options.batch * sampleTiles
        var notWinograd: String
        if !options.winograd {
            notWinograd = "Winograd is off"
        } else if a.kernel != Pair(3) || a.stride != Pair(1) || a.dilation != Pair(1) || a.groups != 1 {
            notWinograd = "not a 3x3 stride-1 dense convolution"
        } else if min(x.c, a.filters) < options.winogradMinChannels {
            notWinograd = "\(x.c) -> \(a.filters) channels, below --winograd-min-channels \(options.winogradMinChannels)"
        } else if options.mode == .training && min(x.c, a.filters) < Self.winogradMinTrainingChannels {
            notWinograd = "\(x.c) -> \(a.filters) channels: training's F(4x4) pays from \(Self.winogradMinTrainingChannels) channels"
        } else if x.c + a.filters > Self.winogradMaxChannelSum {
            notWinograd = "\(x.c) + \(a.filters) channels: Winograd loses to the implicit GEMM above \(Self.winogradMaxChannelSum) (not measured beyond)"
        } else if batchTiles < Self.winogradMinTiles {
            notWinograd = "a \(y.h)x\(y.w) output at batch \(options.batch) has \(batchTiles) Winograd tiles (below \(Self.winogradMinTiles) the implicit GEMM wins)"
        } else if Double(y.h * y.w) < Self.winogradMinTileUse * Double(sampleTiles * 16) {
            notWinograd = "a \(y.h)x\(y.w) output fills under \(Int(Self.winogradMinTileUse * 100))% of its 4x4 tiles"
        } else if Self.estimatedError(tile: 4, channels: x.c) <= options.winogradErrorBudget {
            return (.winograd4x4, "3x3 stride 1, \(x.c) -> \(a.filters) channels, \(batchTiles) tiles of 4x4 over the batch, error estimate within budget")
        } else if options.mode == .training {
            notWinograd = "F(4x4)'s error estimate is over the budget (training runs F(4x4) only)"
        } else if Self.estimatedError(tile: 2, channels: x.c) <= options.winogradErrorBudget {
            return (.winograd2x2, "3x3 stride 1, \(x.c) -> \(a.filters) channels, F(4x4) over the error budget")
        } else {
            notWinograd = "Winograd's error estimate is over the budget"
        }
        let strided = a.stride != Pair(1)
        if strided && options.mode == .training {
            return (.gemm, "stride \(a.stride): training runs strided layers on the GEMM (\(notWinograd))")
        }
        if a.implicitApplies(inputWidth: x.w, outputWidth: y.w) {
            // positions are numbered over the plane the taps read: the input, or a phase plane
            let width = (x.w + a.stride.w - 1) / a.stride.w
            guard 2 * width <= 3 * y.w else { return (.gemm, "implicit would compute \(width) columns for \(y.w) (\(notWinograd))") }
            let lanes = Self.implicitLaneUse(outputHeight: y.h, inputWidth: width)
            if lanes < 0.5 && options.batch * y.h * y.w >= 16 {
                return (.gemm, "a \(y.h)x\(y.w) plane fills \(Int(lanes * 100))% of the implicit GEMM's lanes; the batch of \(options.batch) fills the GEMM's (\(notWinograd))")
            }
            if strided {
                let phases = a.implicitPhases
                return (.implicit, "stride \(a.stride) on \(phases) phase plane\(phases == 1 ? "" : "s") of the input (\(notWinograd))")
            }
            return (.implicit, "stride 1 (\(notWinograd))")
        }
        return (.gemm, strided ? "stride \(a.stride), output wider than a phase plane or over 49 taps (\(notWinograd))" : "output wider than the input or over 49 taps (\(notWinograd))")
    }
}
