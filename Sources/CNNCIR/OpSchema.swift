// The attribute schema of every op: its keyword, its keys with types and defaults. One table
// serves the `.net` frontend (parsing user text, "did you mean" suggestions) and the IR's
// textual form (printing every attribute and parsing it back).

/// The kind of value an attribute key takes.
public enum AttributeKind: Sendable {
    /// A whole number in the closed range.
    case int(ClosedRange<Int>)
    /// `3` or `3x5` (height x width), each in the range.
    case pair(ClosedRange<Int>)
    /// `1`, `1x2`, `t,l,b,r`, or `same` (stride-1 "same" output size).
    case padding
    /// A finite decimal number in the range.
    case double(ClosedRange<Double>)
    /// `true` or `false`.
    case bool
    /// One of the listed words.
    case choice([String])
    /// A node name.
    case name
    /// An activation: `relu`, `leaky_relu:0.1`, `elu:1.0`, `sigmoid`, `tanh`, `swish`.
    case activation
}

/// One key an op accepts.
public struct AttributeSpec: Sendable {
    public var key: String
    public var kind: AttributeKind
    /// The value used when the key is absent, as text; nil when the key is required or its
    /// default depends on another key (documented in `summary`).
    public var defaultText: String?
    public var required: Bool
    public var summary: String

    public init(_ key: String, _ kind: AttributeKind, default defaultText: String? = nil,
                required: Bool = false, _ summary: String) {
        self.key = key; self.kind = kind; self.defaultText = defaultText
        self.required = required; self.summary = summary
    }
}

/// The text of one attribute as written, with where it was written.
public struct AttributeText: Sendable {
    public var value: String
    public var keyLocation: SourceLocation?
    public var valueLocation: SourceLocation?
    public init(_ value: String, keyLocation: SourceLocation? = nil, valueLocation: SourceLocation? = nil) {
        self.value = value; self.keyLocation = keyLocation; self.valueLocation = valueLocation
    }
}

/// Largest channel, unit or spatial count accepted anywhere: bigger sizes are mistakes.
public let maxDimension = 1 << 20
private let sizeRange = 1...maxDimension
private let kernelRange = 1...4096

/// The keyword by which `.net` files and IR text name each op, and its keys.
public enum OpKeyword: String, CaseIterable, Sendable {
    case conv, dense, convTranspose = "conv_transpose"
    case relu, leakyRelu = "leaky_relu", prelu, sigmoid, tanh, swish, elu
    case selu, softplus, hardsigmoid, hardswish, clip, affine
    case maxpool, avgpool, globalAvgpool = "global_avgpool", globalMaxpool = "global_maxpool", lrn, batchnorm, dropout
    case flatten, add, mul, sub, div, concat, shuffle, slice, pad, upsample, softmax, logsoftmax

    /// Whether layers of this kind own parameters (and so can be `frozen`).
    public var hasParameters: Bool {
        switch self {
        case .conv, .dense, .convTranspose, .prelu, .batchnorm: return true
        default: return false
        }
    }

    /// Accepted alternative spellings.
    public static func lookup(_ word: String) -> OpKeyword? {
        if let k = OpKeyword(rawValue: word) { return k }
        switch word {
        case "silu": return .swish
        case "convolution", "conv2d": return .conv
        case "deconv", "conv_transpose2d": return .convTranspose
        case "linear", "fc", "fully_connected": return .dense
        case "batch_norm", "bn": return .batchnorm
        case "max_pool": return .maxpool
        case "avg_pool": return .avgpool
        case "global_avg_pool", "gap": return .globalAvgpool
        case "global_max_pool": return .globalMaxpool
        case "log_softmax": return .logsoftmax
        case "hard_sigmoid": return .hardsigmoid
        case "hard_swish": return .hardswish
        case "relu6": return .clip
        case "channel_shuffle": return .shuffle
        case "multiply": return .mul
        case "subtract": return .sub
        case "divide": return .div
        default: return nil
        }
    }

    public var attributes: [AttributeSpec] {
        switch self {
        case .conv:
            return [
                AttributeSpec("filters", .int(sizeRange), required: true, "number of output channels"),
                AttributeSpec("size", .pair(kernelRange), required: true, "kernel height x width"),
                AttributeSpec("stride", .pair(kernelRange), default: "1", "step between windows"),
                AttributeSpec("pad", .padding, default: "0", "zero padding: P, PHxPW, t,l,b,r or same"),
                AttributeSpec("dilation", .pair(kernelRange), default: "1", "spacing of kernel taps"),
                AttributeSpec("groups", .int(sizeRange), default: "1", "channel groups (groups = channels: depthwise)"),
                AttributeSpec("bias", .bool, default: "true", "add a learned bias per output channel"),
                AttributeSpec("init", .choice(["auto", "he", "xavier", "torch"]), default: "auto", "weight initialization (auto: He before ReLU-like activations, else Xavier; torch: PyTorch's default, U(+-1/sqrt(fan_in)))"),
                AttributeSpec("algorithm", .choice(ConvAlgorithm.allCases.map(\.rawValue)), default: "auto", "direct, depthwise, gemm, implicit, winograd2x2 or winograd4x4 (auto: select-conv-algorithm chooses)"),
            ] + OpKeyword.epilogueKeys
        case .convTranspose:
            return [
                AttributeSpec("filters", .int(sizeRange), required: true, "number of output channels"),
                AttributeSpec("size", .pair(kernelRange), required: true, "kernel height x width"),
                AttributeSpec("stride", .pair(kernelRange), default: "1", "spacing of the input's elements in the output (the upsampling factor)"),
                AttributeSpec("pad", .padding, default: "0", "rows and columns removed from the full output: P, PHxPW or t,l,b,r"),
                AttributeSpec("output_pad", .pair(0...4096), default: "0", "rows and columns added at the bottom and right (below the stride or the dilation)"),
                AttributeSpec("dilation", .pair(kernelRange), default: "1", "spacing of kernel taps"),
                AttributeSpec("groups", .int(sizeRange), default: "1", "channel groups"),
                AttributeSpec("bias", .bool, default: "true", "add a learned bias per output channel"),
                AttributeSpec("init", .choice(["auto", "he", "xavier", "torch"]), default: "auto", "weight initialization (auto: He before ReLU-like activations, else Xavier; torch: PyTorch's default, U(+-1/sqrt(fan_in)) with fan_in = filters/groups*R*S)"),
            ]
        case .dense:
            return [
                AttributeSpec("units", .int(sizeRange), required: true, "number of outputs"),
                AttributeSpec("bias", .bool, default: "true", "add a learned bias per output"),
                AttributeSpec("init", .choice(["auto", "he", "xavier", "torch"]), default: "auto", "weight initialization (auto: He before ReLU-like activations, else Xavier; torch: PyTorch's default, U(+-1/sqrt(fan_in)))"),
            ] + OpKeyword.epilogueKeys
        case .relu, .sigmoid, .tanh, .swish, .softplus, .hardswish, .globalAvgpool, .globalMaxpool, .flatten, .add,
             .concat, .softmax, .logsoftmax, .mul, .sub, .div:
            return []
        case .affine:
            return [
                AttributeSpec("scale", .double(-3.4028234663852886e38...3.4028234663852886e38), default: "1.0", "multiplies every element"),
                AttributeSpec("shift", .double(-3.4028234663852886e38...3.4028234663852886e38), default: "0.0", "added after the scale"),
            ]
        case .selu:
            return [
                AttributeSpec("alpha", .double(0...1e6), default: "1.6732632423543772", "scale of the negative part"),
                AttributeSpec("gamma", .double(0...1e6), default: "1.0507009873554805", "scale of the output"),
            ]
        case .hardsigmoid:
            return [
                AttributeSpec("alpha", .double(-1e6...1e6), default: "0.16666666666666666", "slope (ONNX's default is 0.2)"),
                AttributeSpec("beta", .double(-1e6...1e6), default: "0.5", "offset"),
            ]
        case .clip:
            return [
                AttributeSpec("min", .double(-3.4028234663852886e38...3.4028234663852886e38), default: "0.0", "lower bound"),
                AttributeSpec("max", .double(-3.4028234663852886e38...3.4028234663852886e38), default: "6.0", "upper bound (relu6: 0 to 6)"),
            ]
        case .leakyRelu:
            return [AttributeSpec("alpha", .double(0...1e6), default: "0.01", "slope for negative inputs")]
        case .elu:
            return [AttributeSpec("alpha", .double(0...1e6), default: "1.0", "scale of the negative part")]
        case .prelu:
            return [AttributeSpec("shared", .bool, default: "true", "one slope for all channels (false: one per channel)")]
        case .maxpool, .avgpool:
            var specs = [
                AttributeSpec("size", .pair(kernelRange), required: true, "window height x width"),
                AttributeSpec("stride", .pair(kernelRange), "step between windows (default: size)"),
                AttributeSpec("pad", .padding, default: "0", "implicit padding: P, PHxPW, t,l,b,r or same"),
                AttributeSpec("ceil_mode", .bool, default: "false", "round the output size up instead of down"),
            ]
            if self == .avgpool {
                specs.append(AttributeSpec("count_include_pad", .bool, default: "true", "padded zeros count in the average"))
            }
            return specs
        case .lrn:
            return [
                AttributeSpec("size", .int(1...4096), required: true, "number of neighbouring channels"),
                AttributeSpec("alpha", .double(0...1e6), default: "0.0001", "scale"),
                AttributeSpec("beta", .double(0...1e6), default: "0.75", "exponent"),
                AttributeSpec("k", .double(0...1e6), default: "1.0", "additive constant"),
            ]
        case .batchnorm:
            return [
                AttributeSpec("eps", .double(0...1), default: "1e-05", "added to the variance"),
                AttributeSpec("momentum", .double(0...1), default: "0.1", "running statistics update rate"),
            ]
        case .shuffle:
            return [AttributeSpec("groups", .int(sizeRange), required: true, "channel groups to interleave")]
        case .slice:
            return [
                AttributeSpec("start", .int(0...maxDimension), default: "0", "first channel kept"),
                AttributeSpec("end", .int(1...maxDimension), required: true, "one past the last channel kept"),
            ]
        case .pad:
            return [
                AttributeSpec("pad", .padding, default: "0", "spatial padding: P, PHxPW or t,l,b,r"),
                AttributeSpec("channels_before", .int(0...maxDimension), default: "0", "constant channels added in front"),
                AttributeSpec("channels_after", .int(0...maxDimension), default: "0", "constant channels added at the end"),
                AttributeSpec("mode", .choice(PadMode.allCases.map(\.rawValue)), default: "constant", "spatial fill: constant, edge (repeat the border) or reflect (mirror)"),
                AttributeSpec("value", .double(-3.4028234663852886e38...3.4028234663852886e38), default: "0.0", "the constant"),
            ]
        case .upsample:
            return [
                AttributeSpec("scale", .pair(1...4096), required: true, "whole factor of the height x width"),
                AttributeSpec("mode", .choice(UpsampleMode.allCases.map(\.rawValue)), default: "nearest", "nearest (copies) or bilinear (interpolates)"),
                AttributeSpec("align_corners", .bool, default: "false", "bilinear: the corner pixels' centres line up (PyTorch align_corners=True); false: half-pixel centres"),
            ]
        case .dropout:
            return [AttributeSpec("rate", .double(0...0.999999), default: "0.5", "probability of zeroing an element in training")]
        }
    }

    /// The fused-epilogue keys of conv and dense (written by the fusion passes; `act=` is
    /// also handy in `.net` files).
    static let epilogueKeys = [
        AttributeSpec("bn", .name, "fused batch norm: the batchnorm node whose parameters apply"),
        AttributeSpec("bn_eps", .double(0...1), default: "1e-05", "epsilon of the fused batch norm"),
        AttributeSpec("residual", .bool, default: "false", "add the second input (from=x,shortcut) before the activation"),
        AttributeSpec("act", .activation, "fused activation: relu, leaky_relu:A, elu:A, sigmoid, tanh, swish, selu, softplus, hardsigmoid:A:B, hardswish, relu6, clip:MIN:MAX, affine:SCALE:SHIFT"),
        AttributeSpec("prelu", .name, "fused PReLU: the prelu node whose slope applies"),
        AttributeSpec("prelu_shared", .bool, default: "true", "the fused PReLU has one slope"),
    ]

    /// How many inputs the op takes: an exact count, or at least two for `add`/`concat`.
    public var arity: ClosedRange<Int> {
        switch self {
        case .add, .concat: return 2...Int.max
        case .mul, .sub, .div: return 2...2
        default: return 1...1
        }
    }
}

extension Op {
    /// How many inputs this op takes: a fused residual adds one to conv and dense.
    public var arity: ClosedRange<Int> {
        switch self {
        case .input: return 0...0
        case .conv(let a): return a.epilogue.residual ? 2...2 : 1...1
        case .dense(let a): return a.epilogue.residual ? 2...2 : 1...1
        case .convTranspose, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
             .lrn, .batchNorm, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .softmax, .logSoftmax:
            return keyword!.arity
        }
    }

    /// The keyword that names this op in `.net` files and IR text (nil for graph inputs).
    public var keyword: OpKeyword? {
        switch self {
        case .input: return nil
        case .conv: return .conv
        case .dense: return .dense
        case .convTranspose: return .convTranspose
        case .activation(let a):
            switch a {
            case .relu: return .relu
            case .leakyRelu: return .leakyRelu
            case .sigmoid: return .sigmoid
            case .tanh: return .tanh
            case .swish: return .swish
            case .elu: return .elu
            case .selu: return .selu
            case .softplus: return .softplus
            case .hardSigmoid: return .hardsigmoid
            case .hardSwish: return .hardswish
            case .clip: return .clip
            case .affine: return .affine
            }
        case .prelu: return .prelu
        case .add: return .add
        case .binary(let b):
            switch b {
            case .mul: return .mul
            case .sub: return .sub
            case .div: return .div
            }
        case .dropout: return .dropout
        case .maxPool: return .maxpool
        case .avgPool: return .avgpool
        case .globalAvgPool: return .globalAvgpool
        case .globalMaxPool: return .globalMaxpool
        case .lrn: return .lrn
        case .batchNorm: return .batchnorm
        case .flatten: return .flatten
        case .concat: return .concat
        case .shuffle: return .shuffle
        case .slice: return .slice
        case .pad: return .pad
        case .upsample: return .upsample
        case .softmax: return .softmax
        case .logSoftmax: return .logsoftmax
        }
    }

    /// Every attribute as canonical text, in schema order: what the IR printer writes.
    public var attributeTexts: [(key: String, value: String)] {
        switch self {
        case .input(let shape): return [("shape", shape.description)]
        case .conv(let a):
            return [("filters", "\(a.filters)"), ("size", a.kernel.description),
                    ("stride", a.stride.description), ("pad", a.padding.description),
                    ("dilation", a.dilation.description), ("groups", "\(a.groups)"),
                    ("bias", "\(a.bias)"), ("init", a.initializer.rawValue),
                    ("algorithm", a.algorithm.rawValue)] + Op.epilogueTexts(a.epilogue)
        case .dense(let a):
            return [("units", "\(a.units)"), ("bias", "\(a.bias)"), ("init", a.initializer.rawValue)]
                + Op.epilogueTexts(a.epilogue)
        case .convTranspose(let a):
            return [("filters", "\(a.filters)"), ("size", a.kernel.description), ("stride", a.stride.description),
                    ("pad", a.padding.description), ("output_pad", a.outputPadding.description),
                    ("dilation", a.dilation.description), ("groups", "\(a.groups)"), ("bias", "\(a.bias)"),
                    ("init", a.initializer.rawValue)]
        case .activation(let act):
            switch act {
            case .relu, .sigmoid, .tanh, .swish, .softplus, .hardSwish: return []
            case .leakyRelu(let alpha), .elu(let alpha): return [("alpha", "\(alpha)")]
            case .selu(let alpha, let gamma): return [("alpha", "\(alpha)"), ("gamma", "\(gamma)")]
            case .hardSigmoid(let alpha, let beta): return [("alpha", "\(alpha)"), ("beta", "\(beta)")]
            case .clip(let low, let high): return [("min", "\(low)"), ("max", "\(high)")]
            case .affine(let scale, let shift): return [("scale", "\(scale)"), ("shift", "\(shift)")]
            }
        case .prelu(let a): return [("shared", "\(a.shared)")]
        case .add, .binary, .globalAvgPool, .globalMaxPool, .flatten, .concat, .softmax, .logSoftmax: return []
        case .dropout(let rate): return [("rate", "\(rate)")]
        case .shuffle(let groups): return [("groups", "\(groups)")]
        case .slice(let start, let end): return [("start", "\(start)"), ("end", "\(end)")]
        case .upsample(let a):
            return [("scale", a.scale.description), ("mode", a.mode.rawValue), ("align_corners", "\(a.alignCorners)")]
        case .pad(let a):
            return [("pad", a.padding.description), ("channels_before", "\(a.channelsBefore)"),
                    ("channels_after", "\(a.channelsAfter)"), ("mode", a.mode.rawValue), ("value", "\(a.value)")]
        case .maxPool(let a), .avgPool(let a):
            var list = [("size", a.kernel.description), ("stride", a.stride.description),
                        ("pad", a.padding.description), ("ceil_mode", "\(a.ceilMode)")]
            if case .avgPool = self { list.append(("count_include_pad", "\(a.countIncludePad)")) }
            return list
        case .lrn(let a):
            return [("size", "\(a.size)"), ("alpha", "\(a.alpha)"), ("beta", "\(a.beta)"), ("k", "\(a.k)")]
        case .batchNorm(let a): return [("eps", "\(a.epsilon)"), ("momentum", "\(a.momentum)")]
        }
    }

    /// The epilogue keys that are set, in schema order.
    static func epilogueTexts(_ e: Epilogue) -> [(key: String, value: String)] {
        var list: [(key: String, value: String)] = []
        if let bn = e.batchNorm { list += [("bn", bn.node), ("bn_eps", "\(bn.epsilon)")] }
        if e.residual { list.append(("residual", "true")) }
        if let act = e.activation { list.append(("act", act.text)) }
        if let p = e.prelu { list += [("prelu", p.node), ("prelu_shared", "\(p.shared)")] }
        return list
    }

    /// Builds an op from its keyword and the attributes as written. Unknown keys (with a
    /// "did you mean" suggestion), missing required keys and bad values become diagnostics;
    /// `at` locates the keyword for messages about the op as a whole.
    public static func make(
        _ keyword: OpKeyword, attributes: [String: AttributeText], at location: SourceLocation?
    ) -> Result<Op, DiagnosticList> {
        var reader = AttributeReader(keyword: keyword, texts: attributes, location: location)
        let op = reader.build()
        if reader.diagnostics.isEmpty, let op { return .success(op) }
        return .failure(DiagnosticList(reader.diagnostics))
    }
}

/// Reads typed values out of attribute texts, collecting every problem.
private struct AttributeReader {
    let keyword: OpKeyword
    let texts: [String: AttributeText]
    let location: SourceLocation?
    var diagnostics: [Diagnostic] = []

    init(keyword: OpKeyword, texts: [String: AttributeText], location: SourceLocation?) {
        self.keyword = keyword; self.texts = texts; self.location = location
    }

    mutating func build() -> Op? {
        let specs = keyword.attributes
        let known = specs.map(\.key)
        for key in texts.keys.sorted() where !known.contains(key) {
            let text = texts[key]!
            var message = "\(keyword.rawValue) has no key '\(key)'"
            if let guess = closestMatch(to: key, in: known) {
                message += "; did you mean '\(guess)'?"
            } else if known.isEmpty {
                message += "; it takes no keys"
            } else {
                message += " (keys: \(known.joined(separator: ", ")))"
            }
            diagnostics.append(.error(message, at: text.keyLocation))
        }
        for spec in specs where spec.required && texts[spec.key] == nil {
            diagnostics.append(.error("\(keyword.rawValue) requires '\(spec.key)=' (\(spec.summary))", at: location))
        }
        switch keyword {
        case .conv:
            let kernel = pair("size") ?? Pair(1)
            let dilation = pair("dilation") ?? Pair(1)
            let stride = pair("stride") ?? Pair(1)
            let attrs = ConvAttributes(
                filters: int("filters") ?? 1, kernel: kernel, stride: stride,
                padding: padding("pad", kernel: kernel, dilation: dilation, stride: stride),
                dilation: dilation, groups: int("groups") ?? 1, bias: bool("bias") ?? true,
                initializer: WeightInit(rawValue: choice("init") ?? "auto") ?? .auto, epilogue: epilogue(),
                algorithm: ConvAlgorithm(rawValue: choice("algorithm") ?? "auto") ?? .auto)
            return .conv(attrs)
        case .convTranspose:
            let kernel = pair("size") ?? Pair(1)
            let dilation = pair("dilation") ?? Pair(1)
            let stride = pair("stride") ?? Pair(1)
            if texts["pad"]?.value == "same" { fail("pad", "expected P, PHxPW or t,l,b,r") }
            let outputPadding = pair("output_pad") ?? Pair(0)
            if outputPadding.h >= max(stride.h, dilation.h) || outputPadding.w >= max(stride.w, dilation.w) {
                fail("output_pad", "output padding \(outputPadding) must be below the stride \(stride) or the dilation \(dilation)")
            }
            return .convTranspose(ConvTransposeAttributes(
                filters: int("filters") ?? 1, kernel: kernel, stride: stride,
                padding: padding("pad", kernel: kernel, dilation: dilation, stride: stride), outputPadding: outputPadding,
                dilation: dilation, groups: int("groups") ?? 1, bias: bool("bias") ?? true,
                initializer: WeightInit(rawValue: choice("init") ?? "auto") ?? .auto))
        case .dense:
            return .dense(DenseAttributes(units: int("units") ?? 1, bias: bool("bias") ?? true,
                                          initializer: WeightInit(rawValue: choice("init") ?? "auto") ?? .auto,
                                          epilogue: epilogue()))
        case .relu: return .activation(.relu)
        case .sigmoid: return .activation(.sigmoid)
        case .tanh: return .activation(.tanh)
        case .swish: return .activation(.swish)
        case .leakyRelu: return .activation(.leakyRelu(alpha: double("alpha") ?? 0.01))
        case .elu: return .activation(.elu(alpha: double("alpha") ?? 1.0))
        case .selu:
            return .activation(.selu(alpha: double("alpha") ?? 1.6732632423543772, gamma: double("gamma") ?? 1.0507009873554805))
        case .softplus: return .activation(.softplus)
        case .hardsigmoid: return .activation(.hardSigmoid(alpha: double("alpha") ?? 1.0 / 6, beta: double("beta") ?? 0.5))
        case .hardswish: return .activation(.hardSwish)
        case .clip:
            let low = double("min") ?? 0, high = double("max") ?? 6
            if low > high { fail("max", "max \(high) is below min \(low)") }
            return .activation(.clip(min: low, max: high))
        case .affine: return .activation(.affine(scale: double("scale") ?? 1, shift: double("shift") ?? 0))
        case .prelu: return .prelu(PReLUAttributes(shared: bool("shared") ?? true))
        case .maxpool, .avgpool:
            let kernel = pair("size") ?? Pair(1)
            let stride = pair("stride") ?? kernel
            let attrs = PoolAttributes(
                kernel: kernel, stride: stride,
                padding: padding("pad", kernel: kernel, dilation: Pair(1), stride: stride),
                ceilMode: bool("ceil_mode") ?? false,
                countIncludePad: keyword == .avgpool ? (bool("count_include_pad") ?? true) : true)
            return keyword == .maxpool ? .maxPool(attrs) : .avgPool(attrs)
        case .globalAvgpool: return .globalAvgPool
        case .globalMaxpool: return .globalMaxPool
        case .lrn:
            return .lrn(LRNAttributes(size: int("size") ?? 1, alpha: double("alpha") ?? 1e-4,
                                      beta: double("beta") ?? 0.75, k: double("k") ?? 1))
        case .batchnorm:
            return .batchNorm(BatchNormAttributes(epsilon: double("eps") ?? 1e-5, momentum: double("momentum") ?? 0.1))
        case .dropout: return .dropout(rate: double("rate") ?? 0.5)
        case .flatten: return .flatten
        case .add: return .add
        case .mul: return .binary(.mul)
        case .sub: return .binary(.sub)
        case .div: return .binary(.div)
        case .concat: return .concat
        case .shuffle: return .shuffle(groups: int("groups") ?? 1)
        case .slice:
            let start = int("start") ?? 0, end = int("end") ?? 1
            if start >= end { fail("end", "end \(end) is not after start \(start)") }
            return .slice(start: start, end: end)
        case .pad:
            if texts["pad"]?.value == "same" { fail("pad", "expected P, PHxPW or t,l,b,r") }
            return .pad(PadAttributes(
                padding: padding("pad", kernel: Pair(1), dilation: Pair(1), stride: Pair(1)),
                channelsBefore: int("channels_before") ?? 0, channelsAfter: int("channels_after") ?? 0,
                mode: PadMode(rawValue: choice("mode") ?? "constant") ?? .constant, value: double("value") ?? 0))
        case .upsample:
            let mode = UpsampleMode(rawValue: choice("mode") ?? "nearest") ?? .nearest
            let alignCorners = bool("align_corners") ?? false
            if alignCorners && mode != .bilinear { fail("align_corners", "needs mode=bilinear") }
            return .upsample(UpsampleAttributes(scale: pair("scale") ?? Pair(1), mode: mode, alignCorners: alignCorners))
        case .softmax: return .softmax
        case .logsoftmax: return .logSoftmax
        }
    }

    private func spec(_ key: String) -> AttributeSpec { keyword.attributes.first { $0.key == key }! }

    private mutating func fail(_ key: String, _ message: String) {
        let text = texts[key]
        diagnostics.append(.error("\(keyword.rawValue) '\(key)=\(text?.value ?? "")': \(message)",
                                  at: text?.valueLocation ?? text?.keyLocation ?? location))
    }

    private mutating func int(_ key: String) -> Int? {
        guard let text = texts[key]?.value else { return spec(key).defaultText.flatMap { Int($0) } }
        guard case .int(let range) = spec(key).kind else { return nil }
        switch parseInteger(text) {
        case .success(let v):
            guard range.contains(v) else {
                fail(key, "\(v) is out of range (\(range.lowerBound) to \(range.upperBound))"); return nil
            }
            return v
        case .failure(let message): fail(key, message.description); return nil
        }
    }

    private mutating func pair(_ key: String) -> Pair? {
        guard let text = texts[key]?.value else {
            return spec(key).defaultText.flatMap { Int($0) }.map { Pair($0) }
        }
        guard case .pair(let range) = spec(key).kind else { return nil }
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else {
            fail(key, "expected N or HxW"); return nil
        }
        var values: [Int] = []
        for part in parts {
            switch parseInteger(String(part)) {
            case .success(let v):
                guard range.contains(v) else {
                    fail(key, "\(v) is out of range (\(range.lowerBound) to \(range.upperBound))"); return nil
                }
                values.append(v)
            case .failure(let message): fail(key, message.description); return nil
            }
        }
        return values.count == 1 ? Pair(values[0]) : Pair(values[0], values[1])
    }

    private mutating func padding(_ key: String, kernel: Pair, dilation: Pair, stride: Pair) -> Padding {
        guard let text = texts[key]?.value else { return .zero }
        if text == "same" {
            guard stride == Pair(1) else {
                fail(key, "'same' padding needs stride 1, got stride \(stride)"); return .zero
            }
            // Total padding keeps the size; the extra pixel of an even kernel goes at the end
            // (ONNX SAME_UPPER, TensorFlow 'same').
            let th = dilation.h * (kernel.h - 1), tw = dilation.w * (kernel.w - 1)
            return Padding(top: th / 2, left: tw / 2, bottom: th - th / 2, right: tw - tw / 2)
        }
        let parts: [Substring]
        if text.contains(",") {
            parts = text.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 4 else { fail(key, "expected P, PHxPW, t,l,b,r or same"); return .zero }
        } else {
            parts = text.split(separator: "x", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { fail(key, "expected P, PHxPW, t,l,b,r or same"); return .zero }
        }
        var values: [Int] = []
        for part in parts {
            switch parseInteger(String(part)) {
            case .success(let v):
                guard v <= 4096 else { fail(key, "\(v) is out of range (0 to 4096)"); return .zero }
                values.append(v)
            case .failure(let message): fail(key, message.description); return .zero
            }
        }
        switch values.count {
        case 1: return Padding(values[0], values[0])
        case 2: return Padding(values[0], values[1])
        default: return Padding(top: values[0], left: values[1], bottom: values[2], right: values[3])
        }
    }

    private mutating func double(_ key: String) -> Double? {
        guard let text = texts[key]?.value else { return spec(key).defaultText.flatMap { Double($0) } }
        guard case .double(let range) = spec(key).kind else { return nil }
        guard text.count <= 64, let v = Double(text), v.isFinite else {
            fail(key, "expected a number"); return nil
        }
        guard range.contains(v) else {
            fail(key, "\(text) is out of range (\(range.lowerBound) to \(range.upperBound))"); return nil
        }
        return v
    }

    private mutating func choice(_ key: String) -> String? {
        guard let text = texts[key]?.value else { return spec(key).defaultText }
        guard case .choice(let options) = spec(key).kind else { return nil }
        guard options.contains(text) else {
            fail(key, "expected one of \(options.joined(separator: ", "))"); return nil
        }
        return text
    }

    private mutating func name(_ key: String) -> String? {
        guard let text = texts[key]?.value else { return nil }
        guard isValidName(text) else { fail(key, "expected a layer name"); return nil }
        return text
    }

    private mutating func epilogue() -> Epilogue {
        var e = Epilogue()
        if let bn = name("bn") { e.batchNorm = FoldedBatchNorm(node: bn, epsilon: double("bn_eps") ?? 1e-5) }
        else if texts["bn_eps"] != nil { fail("bn_eps", "needs bn=") }
        e.residual = bool("residual") ?? false
        if let text = texts["act"]?.value {
            if let act = Activation(text: text) { e.activation = act }
            else { fail("act", "expected relu, leaky_relu:A, elu:A, sigmoid, tanh, swish, selu, softplus, hardsigmoid:A:B, hardswish, relu6, clip:MIN:MAX or affine:SCALE:SHIFT") }
        }
        if let p = name("prelu") { e.prelu = FoldedPReLU(node: p, shared: bool("prelu_shared") ?? true) }
        else if texts["prelu_shared"] != nil { fail("prelu_shared", "needs prelu=") }
        if e.activation != nil && e.prelu != nil { fail("prelu", "a layer takes act= or prelu=, not both") }
        return e
    }

    private mutating func bool(_ key: String) -> Bool? {
        guard let text = texts[key]?.value else { return spec(key).defaultText.flatMap { Bool($0) } }
        switch text {
        case "true": return true
        case "false": return false
        default: fail(key, "expected true or false"); return nil
        }
    }
}

/// Parses a non-negative decimal integer without trapping on huge inputs.
public func parseInteger(_ text: String) -> Result<Int, IntegerError> {
    guard !text.isEmpty else { return .failure(IntegerError("expected a number, got nothing")) }
    guard text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
        let shown = text.count > 20 ? String(text.prefix(20)) + "..." : text
        return .failure(IntegerError("expected a whole number, got '\(shown)'"))
    }
    let digits = text.drop { $0 == "0" }
    guard digits.count <= 12, let v = Int(digits.isEmpty ? "0" : String(digits)) else {
        return .failure(IntegerError("number with \(text.count) digits is too large"))
    }
    return .success(v)
}

/// Why an integer could not be read.
public struct IntegerError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
public func closestMatch(to word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for candidate in candidates {
        let d = editDistance(word, candidate)
        if d <= max(2, candidate.count / 3), best == nil || d < best!.1 { best = (candidate, d) }
    }
    return best?.0
}

/// Levenshtein distance between two short strings.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.prefix(64)), b = Array(b.prefix(64))
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
