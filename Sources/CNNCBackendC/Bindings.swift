// What each kernel reads besides its inputs: parameters from the weights file, or tensors
// derived from them once by `<p>_prepare` (batch norm folded into conv/dense weights,
// Winograd-transformed filters). Derived tensors live in the weights region after the
// file's parameters; `<p>_prepare` runs after every init and load.

import CNNCIR

/// A tensor computed from parameters by `<p>_prepare`.
struct DerivedTensor {
    /// A label for comments, e.g. `c1.weight folded with bn1`.
    var label: String
    var count: Int
    var recipe: Recipe

    enum Recipe {
        /// `w[k, ...] * gamma[k] / sqrt(var[k] + eps)` over `perChannel` floats per output channel.
        case foldedWeight(weight: String, batchNorm: FoldedBatchNorm, channels: Int, perChannel: Int)
        /// `beta[k] + (bias[k] - mean[k]) * gamma[k] / sqrt(var[k] + eps)` (bias 0 when absent).
        case foldedBias(bias: String?, batchNorm: FoldedBatchNorm, channels: Int)
        /// Winograd filter transform `G g G^T` of a K x C x 3 x 3 weight (source: a parameter
        /// name or a derived tensor's label), laid out for the Winograd kernel: F(4x4) as 36
        /// sets of `cnnc_conv_pack_weights` panels (`cnnc_winograd_f4_pack_weights`), each
        /// `packedCount(1, K, C)` floats reserved; F(2x2) as [16][C][K].
        case winogradFilter(source: String, tile: Int, filters: Int, channels: Int)
        /// `cnnc_conv_pack_weights`: a [groups*kg][crs] weight (a parameter or a derived label)
        /// in panels of CNNC_PACK_ROWS rows for the implicit and packed GEMM kernels. With a
        /// `phased` geometry (a C initializer; strided implicit convolutions) each row is in the
        /// kernel's phase order instead (`cnnc_conv_pack_weights_phased`).
        case packedWeight(source: String, groups: Int, kg: Int, crs: Int, phased: String?)
    }

    /// Floats reserved for a packed weight: each group's rows rounded up to 24, a multiple of
    /// every micro-kernel's panel height (8, 6 or 4 rows, chosen by the C compiler's target).
    static func packedCount(groups: Int, kg: Int, crs: Int) -> Int {
        groups * ((kg + 23) / 24 * 24) * crs
    }
}

/// One pointer argument of a kernel: its C parameter name and where it points.
struct KernelArgument {
    /// The C parameter name in the kernel's signature, e.g. `weight`.
    var name: String
    /// A parameter name (`c1.weight`) or a derived tensor label.
    var tensor: String
}

/// The derived tensors and per-node weight arguments of a graph.
struct Bindings {
    var derived: [DerivedTensor] = []
    /// For each computing node, its weight arguments in signature order.
    var arguments: [String: [KernelArgument]] = [:]

    init(_ graph: Graph) {
        let index = graph.indexByName()
        for node in graph.nodes {
            let inShape = node.inputs.first.flatMap { index[$0] }.map { graph.nodes[$0].shape } ?? Shape([])
            switch node.op {
            case .conv(let a):
                let perChannel = (inShape.c / a.groups) * a.kernel.h * a.kernel.w
                var weight = "\(node.name).weight"
                var bias: String? = a.bias ? "\(node.name).bias" : nil
                if let bn = a.epilogue.batchNorm {
                    (weight, bias) = fold(node.name, weight: weight, bias: bias, bn, channels: a.filters, perChannel: perChannel)
                }
                if a.algorithm == .winograd2x2 || a.algorithm == .winograd4x4 {
                    let tile = a.algorithm == .winograd2x2 ? 2 : 4
                    let label = "\(node.name).weight winograd F(\(tile)x\(tile),3x3)"
                    // F(4x4): 36 packed panel sets for the implicit GEMM; F(2x2): [16][C][K]
                    let count = tile == 4 ? 36 * DerivedTensor.packedCount(groups: 1, kg: a.filters, crs: inShape.c)
                        : (tile + 2) * (tile + 2) * a.filters * inShape.c
                    derived.append(DerivedTensor(label: label, count: count,
                                                 recipe: .winogradFilter(source: weight, tile: tile, filters: a.filters, channels: inShape.c)))
                    weight = label
                }
                var weightArgument = KernelArgument(name: "weight", tensor: weight)
                if a.algorithm == .implicit || a.algorithm == .gemm {
                    let kg = a.filters / a.groups
                    let label = "\(node.name).weight packed"
                    derived.append(DerivedTensor(label: label, count: DerivedTensor.packedCount(groups: a.groups, kg: kg, crs: perChannel),
                                                 recipe: .packedWeight(source: weight, groups: a.groups, kg: kg, crs: perChannel,
                                                                       phased: a.algorithm == .implicit && a.stride != Pair(1)
                                                                           ? ConvKernel.geometry(a, input: inShape, output: node.shape) : nil)))
                    weightArgument = KernelArgument(name: "packed", tensor: label)
                }
                arguments[node.name] = [weightArgument]
                    + (bias.map { [KernelArgument(name: "bias", tensor: $0)] } ?? [])
                    + (a.epilogue.prelu.map { [KernelArgument(name: "slope", tensor: "\($0.node).weight")] } ?? [])
            case .dense(let a):
                var weight = "\(node.name).weight"
                var bias: String? = a.bias ? "\(node.name).bias" : nil
                if let bn = a.epilogue.batchNorm {
                    (weight, bias) = fold(node.name, weight: weight, bias: bias, bn, channels: a.units, perChannel: inShape.count)
                }
                arguments[node.name] = [KernelArgument(name: "weight", tensor: weight)]
                    + (bias.map { [KernelArgument(name: "bias", tensor: $0)] } ?? [])
                    + (a.epilogue.prelu.map { [KernelArgument(name: "slope", tensor: "\($0.node).weight")] } ?? [])
            case .convTranspose(let a):
                arguments[node.name] = [KernelArgument(name: "weight", tensor: "\(node.name).weight")]
                    + (a.bias ? [KernelArgument(name: "bias", tensor: "\(node.name).bias")] : [])
            case .prelu:
                arguments[node.name] = [KernelArgument(name: "weight", tensor: "\(node.name).weight")]
            case .batchNorm:
                arguments[node.name] = ["weight", "bias", "running_mean", "running_var"].map {
                    KernelArgument(name: $0, tensor: "\(node.name).\($0)")
                }
            case .input, .activation, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .flatten,
                 .concat, .shuffle, .slice, .pad, .upsample, .softmax, .logSoftmax:
                arguments[node.name] = []
            }
        }
    }

    /// Registers the folded weight and bias of a layer; returns their labels.
    private mutating func fold(_ node: String, weight: String, bias: String?, _ bn: FoldedBatchNorm,
                               channels: Int, perChannel: Int) -> (String, String) {
        let w = "\(weight) folded with \(bn.node)", b = "\(node).bias folded with \(bn.node)"
        derived.append(DerivedTensor(label: w, count: channels * perChannel,
                                     recipe: .foldedWeight(weight: weight, batchNorm: bn, channels: channels, perChannel: perChannel)))
        derived.append(DerivedTensor(label: b, count: channels,
                                     recipe: .foldedBias(bias: bias, batchNorm: bn, channels: channels)))
        return (w, b)
    }
}
