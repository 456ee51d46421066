// The closed set of operations a graph can hold. Every switch over `Op` is exhaustive (no
// `default:`), so adding an op makes the compiler list every place to update.

/// Two integers for the height and width direction (kernel sizes, strides, dilations).
public struct Pair: Hashable, Sendable, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(_ both: Int) { self.init(both, both) }
    /// `3` when both are equal, else `3x5`.
    public var description: String { h == w ? "\(h)" : "\(h)x\(w)" }
}

/// Zero padding on each side of a feature map (may be asymmetric, as ONNX allows).
public struct Padding: Hashable, Sendable, CustomStringConvertible {
    public var top: Int
    public var left: Int
    public var bottom: Int
    public var right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    public init(_ h: Int, _ w: Int) { self.init(top: h, left: w, bottom: h, right: w) }
    public static let zero = Padding(0, 0)
    public var isSymmetric: Bool { top == bottom && left == right }
    /// `2`, `1x2` (height x width) or `t,l,b,r` when asymmetric.
    public var description: String {
        if isSymmetric { return Pair(top, left).description }
        return "\(top),\(left),\(bottom),\(right)"
    }
}

/// Element-wise activation functions without parameters; fusion passes attach them to the
/// layer that produces their input.
public enum Activation: Hashable, Sendable {
    /// max(x, 0)
    case relu
    /// x if x > 0 else alpha * x
    case leakyRelu(alpha: Double)
    /// 1 / (1 + exp(-x))
    case sigmoid
    /// tanh(x)
    case tanh
    /// x * sigmoid(x) (also called SiLU)
    case swish
    /// x if x > 0 else alpha * (exp(x) - 1)
    case elu(alpha: Double)
    /// gamma * (x if x > 0 else alpha * (exp(x) - 1)) (self-normalizing; ONNX Selu's defaults)
    case selu(alpha: Double, gamma: Double)
    /// log(1 + exp(x))
    case softplus
    /// max(0, min(1, alpha * x + beta)); PyTorch's hardsigmoid is alpha 1/6, beta 1/2
    case hardSigmoid(alpha: Double, beta: Double)
    /// x * min(max(x + 3, 0), 6) / 6 (MobileNetV3)
    case hardSwish
    /// min(max(x, min), max); ReLU6 is clip 0 to 6. NaN stays NaN.
    case clip(min: Double, max: Double)
    /// x * scale + shift: element-wise arithmetic with constants (ONNX `Mul(x, 0.5)`,
    /// `Add(x, 3)`, `Div(x, 6)`, `Sub(1, x)`)
    case affine(scale: Double, shift: Double)

    /// Whether its value and derivative are plain arithmetic (compares, min/max: no exp, log or
    /// tanh), so an element-wise loop over it vectorizes: generated loops say `omp simd` only
    /// then (clang refuses a `simd` loop it cannot vectorize, an error under -Werror).
    public var isPiecewiseLinear: Bool {
        switch self {
        case .relu, .leakyRelu, .hardSigmoid, .hardSwish, .clip, .affine: return true
        case .sigmoid, .tanh, .swish, .elu, .selu, .softplus: return false
        }
    }

    /// Whether He initialization suits a layer feeding this activation.
    public var isReLULike: Bool {
        switch self {
        case .relu, .leakyRelu, .elu, .swish, .selu, .softplus, .hardSwish, .clip: return true
        case .sigmoid, .tanh, .hardSigmoid, .affine: return false
        }
    }

    /// `relu`, `leaky_relu:0.01`, `elu:1.0`: the form of `act=` in `.net` and IR text.
    public var text: String {
        switch self {
        case .relu: return "relu"
        case .leakyRelu(let alpha): return "leaky_relu:\(alpha)"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .swish: return "swish"
        case .elu(let alpha): return "elu:\(alpha)"
        case .selu(let alpha, let gamma): return "selu:\(alpha):\(gamma)"
        case .softplus: return "softplus"
        case .hardSigmoid(let alpha, let beta): return "hardsigmoid:\(alpha):\(beta)"
        case .hardSwish: return "hardswish"
        case .clip(let low, let high): return "clip:\(low):\(high)"
        case .affine(let scale, let shift): return "affine:\(scale):\(shift)"
        }
    }

    /// Parses `text`; nil when it names no activation.
    public init?(text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let arguments = parts.dropFirst().map { Double($0) }
        if arguments.contains(where: { $0 == nil || !$0!.isFinite }) { return nil }
        let a = arguments.map { $0! }
        switch (parts[0], a.count) {
        case ("relu", 0): self = .relu
        case ("sigmoid", 0): self = .sigmoid
        case ("tanh", 0): self = .tanh
        case ("swish", 0), ("silu", 0): self = .swish
        case ("leaky_relu", 0...1): self = .leakyRelu(alpha: a.first ?? 0.01)
        case ("elu", 0...1): self = .elu(alpha: a.first ?? 1.0)
        case ("selu", 0): self = .selu(alpha: 1.6732632423543772, gamma: 1.0507009873554805)
        case ("selu", 2): self = .selu(alpha: a[0], gamma: a[1])
        case ("softplus", 0): self = .softplus
        case ("hardsigmoid", 0): self = .hardSigmoid(alpha: 1.0 / 6, beta: 0.5)
        case ("hardsigmoid", 2): self = .hardSigmoid(alpha: a[0], beta: a[1])
        case ("hardswish", 0): self = .hardSwish
        case ("relu6", 0): self = .clip(min: 0, max: 6)
        case ("clip", 2) where a[0] <= a[1]: self = .clip(min: a[0], max: a[1])
        case ("affine", 2): self = .affine(scale: a[0], shift: a[1])
        default: return nil
        }
    }
}

/// How a conv or dense weight starts: decided once, from the layer's consumers, when the
/// graph is built (`Graph.resolvingInitializers()`), and kept through every pass.
public enum WeightInit: String, Hashable, Sendable {
    /// Not decided yet: He when the layer feeds a ReLU-like activation (through batch norm,
    /// dropout or a residual add), else Xavier.
    case auto
    case he
    case xavier
    /// PyTorch's default for Conv2d and Linear weights: kaiming_uniform(a=sqrt(5)), which is
    /// U(-b, b) with b = 1 / sqrt(fanIn). Lets a recipe reproduce PyTorch's training curves.
    case torch
}

/// The algorithm a convolution runs with; `auto` lets the passes choose (direct when none does).
public enum ConvAlgorithm: String, Hashable, Sendable, CaseIterable {
    case auto
    /// The direct loop nest: the reference, and what narrow grouped layers run.
    case direct
    /// Depthwise (`groups` equal to the input channels, any channel multiplier `filters / groups`):
    /// the runtime's vector kernel `cnnc_conv_depthwise`, one output plane at a time, each vector
    /// of outputs summed over all its taps in a register and stored once with the epilogue applied.
    /// Any kernel size, stride, padding and dilation (`ConvAttributes.isDepthwise`).
    case depthwise
    /// A matrix product per group, out[K x P*Q] = W[K x C*R*S] * im2col(x), over the batch.
    case gemm
    /// Implicit GEMM on NCHW: the im2col rows of a block of output positions are read straight
    /// from the input (masked runs, no copy; a strided layer from its input's phase planes,
    /// copied once), weights packed once, the epilogue applied while a tile is in cache
    /// (`cnnc_conv_direct`). Needs an output no wider than the input (strided: than a phase
    /// plane) and at most 49 taps (`ConvAttributes.implicitApplies`).
    case implicit
    /// Winograd F(2x2, 3x3): 4x4 input tiles, 2x2 outputs, 16 multiplies instead of 36.
    case winograd2x2
    /// Winograd F(4x4, 3x3): 6x6 input tiles, 4x4 outputs, 36 multiplies instead of 144.
    case winograd4x4
}

/// A batch norm folded into the conv or dense before it (inference): its parameters keep
/// the batchnorm node's names (`bn1.weight`, ..., `bn1.running_var`).
public struct FoldedBatchNorm: Hashable, Sendable {
    public var node: String
    public var epsilon: Double
    public init(node: String, epsilon: Double) { self.node = node; self.epsilon = epsilon }
}

/// A PReLU fused into the layer before it; its slope keeps the name `prelu_node.weight`.
public struct FoldedPReLU: Hashable, Sendable {
    public var node: String
    public var shared: Bool
    public init(node: String, shared: Bool) { self.node = node; self.shared = shared }
}

/// Work fused into a conv or dense layer after its bias, in this order:
/// `y = act(bn(conv(x) + bias) + residual)`. Written by the fusion passes; `.net` files may
/// also ask for `act=` directly.
public struct Epilogue: Hashable, Sendable {
    public var batchNorm: FoldedBatchNorm?
    /// Adds the node's second input (a residual shortcut) before the activation.
    public var residual: Bool
    public var activation: Activation?
    public var prelu: FoldedPReLU?

    public init(batchNorm: FoldedBatchNorm? = nil, residual: Bool = false, activation: Activation? = nil,
                prelu: FoldedPReLU? = nil) {
        self.batchNorm = batchNorm; self.residual = residual; self.activation = activation; self.prelu = prelu
    }
    public static let none = Epilogue()
    public var isEmpty: Bool { self == .none }
}

/// Convolution: `out[n,k,p,q] = bias[k] + sum_{c,r,s} in[n, g*C/G + c, p*sh - pt + r*dh,
/// q*sw - pl + s*dw] * weight[k, c, r, s]` over the channels `c` of output channel k's group.
public struct ConvAttributes: Hashable, Sendable {
    public var filters: Int
    public var kernel: Pair
    public var stride: Pair
    public var padding: Padding
    public var dilation: Pair
    public var groups: Int
    public var bias: Bool
    public var initializer: WeightInit
    public var epilogue: Epilogue
    public var algorithm: ConvAlgorithm
    public init(
        filters: Int, kernel: Pair, stride: Pair = Pair(1), padding: Padding = .zero,
        dilation: Pair = Pair(1), groups: Int = 1, bias: Bool = true, initializer: WeightInit = .auto,
        epilogue: Epilogue = .none, algorithm: ConvAlgorithm = .auto
    ) {
        self.filters = filters; self.kernel = kernel; self.stride = stride
        self.padding = padding; self.dilation = dilation; self.groups = groups; self.bias = bias
        self.initializer = initializer; self.epilogue = epilogue; self.algorithm = algorithm
    }

    /// The most taps (R*S) the implicit GEMM handles (`CNNC_CONV_DIRECT_MAX_TAPS`).
    public static let implicitMaxTaps = 49

    /// Whether `algorithm=implicit` can run this layer on an input `inputWidth` wide producing
    /// `outputWidth` columns: at most `implicitMaxTaps` taps and the output no wider than the
    /// plane its positions are numbered over: the input (stride 1) or, strided, one of the
    /// input's phase planes (`ceil(W / stride)` columns; see `implicitPhases`).
    public func implicitApplies(inputWidth: Int, outputWidth: Int) -> Bool {
        guard stride.h >= 1 && stride.w >= 1 else { return false }
        return outputWidth <= (inputWidth + stride.w - 1) / stride.w && kernel.h * kernel.w <= Self.implicitMaxTaps
    }

    /// The phase planes a strided implicit convolution reads (`cnnc_conv_phase_split`): the
    /// (row, column) residues modulo the stride that some tap reads, `(r*dh - pad_top) mod sh`
    /// and `(s*dw - pad_left) mod sw`. 0 for stride 1, which reads its input in place.
    public var implicitPhases: Int {
        guard stride != Pair(1), stride.h >= 1, stride.w >= 1 else { return 0 }
        func mod(_ v: Int, _ m: Int) -> Int { ((v % m) + m) % m }
        var used = Set<Int>()
        for r in 0..<kernel.h {
            for s in 0..<kernel.w {
                used.insert(mod(r * dilation.h - padding.top, stride.h) * stride.w + mod(s * dilation.w - padding.left, stride.w))
            }
        }
        return used.count
    }

    /// Floats per sample of a strided implicit convolution's phase planes (its scratch in the
    /// arena) for an input of `channels` x `height` x `width`; 0 for stride 1.
    public func implicitPhaseFloats(channels: Int, height: Int, width: Int) -> Int {
        let phases = implicitPhases
        guard phases > 0 else { return 0 }
        return phases * channels * ((height + stride.h - 1) / stride.h) * ((width + stride.w - 1) / stride.w)
    }

    /// Whether `algorithm=depthwise` can run this layer: one group per input channel (each
    /// output channel reads one input plane; `filters / groups` is the channel multiplier).
    public func isDepthwise(inputChannels: Int) -> Bool {
        groups > 1 && groups == inputChannels && filters % groups == 0
    }

    /// Whether the groups are wide enough for a matrix product (depthwise and narrow grouped
    /// layers have nothing to reuse and run `direct`).
    public func groupsSuitMatrixProduct(inputChannels: Int) -> Bool {
        let cg = inputChannels / max(groups, 1), kg = filters / max(groups, 1)
        return groups == 1 || (cg * kernel.h * kernel.w >= 32 && kg >= 8)
    }

    /// What `algorithm=auto` runs when no pass chose (`-O0`): `gemm` where the groups suit a
    /// matrix product, else `direct`.
    public func unoptimizedAlgorithm(inputChannels: Int) -> ConvAlgorithm {
        guard algorithm == .auto else { return algorithm }
        return groupsSuitMatrixProduct(inputChannels: inputChannels) ? .gemm : .direct
    }
}

/// Transposed convolution ("deconvolution", the input-gradient of a conv run forward): each input
/// element scatters its filter tap by tap, `out[n, g*KG + k, h*sh - pt + r*dh, w*sw - pl + s*dw] +=
/// in[n, g*CG + c, h, w] * weight[g*CG + c, k, r, s]`, then `bias[k]` is added. The output is
/// `(H - 1)*sh - pt - pb + dh*(R - 1) + oph + 1` high (`oph`, the output padding, adds rows at the
/// end only, where a strided conv's output size rounds down). The weight is `[C, K/G, R, S]`,
/// PyTorch's `ConvTranspose2d` and ONNX's `ConvTranspose` layout.
public struct ConvTransposeAttributes: Hashable, Sendable {
    public var filters: Int
    public var kernel: Pair
    public var stride: Pair
    public var padding: Padding
    public var outputPadding: Pair
    public var dilation: Pair
    public var groups: Int
    public var bias: Bool
    public var initializer: WeightInit
    public init(
        filters: Int, kernel: Pair, stride: Pair = Pair(1), padding: Padding = .zero, outputPadding: Pair = Pair(0),
        dilation: Pair = Pair(1), groups: Int = 1, bias: Bool = true, initializer: WeightInit = .auto
    ) {
        self.filters = filters; self.kernel = kernel; self.stride = stride; self.padding = padding
        self.outputPadding = outputPadding; self.dilation = dilation; self.groups = groups; self.bias = bias
        self.initializer = initializer
    }
}

/// How `upsample` fills the new positions: a copy of the nearest source (`nearest`, whole
/// factors, output `h` reads input `h / sh`), or interpolation between the two nearest rows and
/// columns (`bilinear`).
public enum UpsampleMode: String, Hashable, Sendable, CaseIterable {
    case nearest, bilinear
}

/// Upsampling by whole factors. Bilinear reads output row `p` at the source coordinate
/// `(p + 0.5) / sh - 0.5` (ONNX `half_pixel`, PyTorch `align_corners=False`; clamped to 0 at the
/// start, the edge row repeated past the end) or, with `alignCorners`, `p * (H - 1) / (P - 1)`
/// (0 when P is 1), and mixes rows `floor(src)` and the next by the fraction; columns the same.
public struct UpsampleAttributes: Hashable, Sendable {
    public var scale: Pair
    public var mode: UpsampleMode
    public var alignCorners: Bool
    public init(scale: Pair, mode: UpsampleMode = .nearest, alignCorners: Bool = false) {
        self.scale = scale; self.mode = mode; self.alignCorners = alignCorners
    }

    /// Bilinear: for output index `o` of `outSize` along an axis of `inSize` (scale `s`), the two
    /// source indices and the weight of the second, computed in Double.
    public func taps(_ o: Int, inSize: Int, outSize: Int, scale s: Int) -> (i0: Int, i1: Int, lambda: Double) {
        var src: Double
        if alignCorners {
            src = outSize > 1 ? Double(o) * Double(inSize - 1) / Double(outSize - 1) : 0
        } else {
            src = (Double(o) + 0.5) / Double(s) - 0.5
        }
        if src < 0 { src = 0 }
        let i0 = min(Int(src), inSize - 1)
        let i1 = min(i0 + 1, inSize - 1)
        return (i0, i1, src - Double(i0))
    }
}

/// Fully connected layer over the flattened input: `out[n,j] = bias[j] + sum_i in[n,i] * weight[j,i]`.
public struct DenseAttributes: Hashable, Sendable {
    public var units: Int
    public var bias: Bool
    public var initializer: WeightInit
    public var epilogue: Epilogue
    public init(units: Int, bias: Bool = true, initializer: WeightInit = .auto, epilogue: Epilogue = .none) {
        self.units = units; self.bias = bias; self.initializer = initializer; self.epilogue = epilogue
    }
}

/// Max or average pooling over a window; padded positions never win a max and count for
/// averages only when `countIncludePad` (PyTorch's default).
public struct PoolAttributes: Hashable, Sendable {
    public var kernel: Pair
    public var stride: Pair
    public var padding: Padding
    public var ceilMode: Bool
    public var countIncludePad: Bool
    public init(
        kernel: Pair, stride: Pair, padding: Padding = .zero, ceilMode: Bool = false,
        countIncludePad: Bool = true
    ) {
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.ceilMode = ceilMode; self.countIncludePad = countIncludePad
    }
}

/// Local response normalization across channels (AlexNet, PyTorch `LocalResponseNorm`):
/// `out = in / (k + alpha / size * sum_{c' in window(c)} in[c']^2) ^ beta`, with the window
/// from `c - size/2` to `c + (size-1)/2`.
public struct LRNAttributes: Hashable, Sendable {
    public var size: Int
    public var alpha: Double
    public var beta: Double
    public var k: Double
    public init(size: Int, alpha: Double = 1e-4, beta: Double = 0.75, k: Double = 1) {
        self.size = size; self.alpha = alpha; self.beta = beta; self.k = k
    }
}

/// Batch normalization per channel: `out = (in - mean) / sqrt(var + eps) * weight + bias`,
/// with running statistics at inference and batch statistics in training.
public struct BatchNormAttributes: Hashable, Sendable {
    public var epsilon: Double
    public var momentum: Double
    public init(epsilon: Double = 1e-5, momentum: Double = 0.1) {
        self.epsilon = epsilon; self.momentum = momentum
    }
}

/// Learned leaky ReLU: `out = in if in > 0 else weight[c] * in`, one weight shared by all
/// channels (PyTorch's default) or one per channel.
public struct PReLUAttributes: Hashable, Sendable {
    public var shared: Bool
    public init(shared: Bool = true) { self.shared = shared }
}

/// An element-wise arithmetic op on two values, `out = in0 OP in1`, where the second operand
/// broadcasts: it has the first's shape, or one value per channel (`C x 1 x 1` against
/// `C x H x W`: the squeeze-and-excitation gate), or one value per sample (`1 x 1 x 1` or `1`).
public enum BinaryOp: String, Hashable, Sendable, CaseIterable {
    case mul
    case sub
    case div
}

/// How `pad` fills the new border: a constant, the nearest edge value, or the mirror image
/// without repeating the edge (ONNX `constant`, `edge`, `reflect`).
public enum PadMode: String, Hashable, Sendable, CaseIterable {
    case constant, edge, reflect

    /// The source index of padded index `i` along an axis of `size` with `before` added in
    /// front; nil where a constant fills it. Reflect needs `before, after < size`.
    public func source(_ i: Int, before: Int, size: Int) -> Int? {
        let j = i - before
        if j >= 0 && j < size { return j }
        switch self {
        case .constant: return nil
        case .edge: return j < 0 ? 0 : size - 1
        case .reflect: return j < 0 ? -j : 2 * (size - 1) - j
        }
    }
}

/// Explicit padding of a value (a layer of its own, unlike conv's and pool's `pad=`): spatial
/// padding in `mode`, and constant channels before and after (the CIFAR ResNet's option-A
/// shortcut pads channels with zeros).
public struct PadAttributes: Hashable, Sendable {
    public var padding: Padding
    public var channelsBefore: Int
    public var channelsAfter: Int
    public var mode: PadMode
    public var value: Double
    public init(padding: Padding = .zero, channelsBefore: Int = 0, channelsAfter: Int = 0, mode: PadMode = .constant,
                value: Double = 0) {
        self.padding = padding; self.channelsBefore = channelsBefore; self.channelsAfter = channelsAfter
        self.mode = mode; self.value = value
    }
}

/// One operation of the graph; inputs are the node's operands, in order.
public enum Op: Hashable, Sendable {
    // Graph inputs.
    case input(Shape)

    // Linear layers.
    case conv(ConvAttributes)
    case dense(DenseAttributes)
    case convTranspose(ConvTransposeAttributes)

    // Element-wise.
    case activation(Activation)
    case prelu(PReLUAttributes)
    case add
    case binary(BinaryOp)
    case dropout(rate: Double)

    // Pooling and normalization.
    case maxPool(PoolAttributes)
    case avgPool(PoolAttributes)
    case globalAvgPool
    case globalMaxPool
    case lrn(LRNAttributes)
    case batchNorm(BatchNormAttributes)

    // Layout and output.
    case flatten
    case concat
    /// Channel shuffle (ShuffleNet): the channels as a `groups x C/groups` matrix, transposed:
    /// `out[c] = in[(c % groups) * (C / groups) + c / groups]`.
    case shuffle(groups: Int)
    /// The channels `start ..< end` of a `CxHxW` value (or features of an `F` vector).
    case slice(start: Int, end: Int)
    /// Padding of a `CxHxW` value: `out[c, h, w] = in[c - cb, src(h), src(w)]` or `value`.
    case pad(PadAttributes)
    /// Upsampling by whole factors, nearest (`out[c, h, w] = in[c, h / sh, w / sw]`) or bilinear.
    case upsample(UpsampleAttributes)
    case softmax
    case logSoftmax
}
