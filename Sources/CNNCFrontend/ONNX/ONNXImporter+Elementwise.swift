// Importing ONNX element-wise and layout operators: activations, Add/Sum/Mul (with the
// `x * sigmoid(x)` swish and `x * hardsigmoid(x)` hardswish patterns, and MatMul + Add bias),
// Softmax/LogSoftmax, Concat, Flatten, Reshape, Dropout, Identity and Pad.

import CNNCIR

extension ONNXImporter {
    mutating func activation(_ c: NodeContext, _ function: Activation) throws {
        let x = try tensor(c, 0)
        try emit(c, .activation(function), inputs: [x.node])
    }

    mutating func leakyRelu(_ c: NodeContext) throws {
        let alpha = try c.float("alpha", 0.01)
        guard alpha >= 0 else { throw Unsupported("negative alpha=\(alpha)") }
        try activation(c, .leakyRelu(alpha: alpha))
    }

    mutating func elu(_ c: NodeContext) throws {
        let alpha = try c.float("alpha", 1)
        guard alpha >= 0 else { throw Unsupported("negative alpha=\(alpha)") }
        try activation(c, .elu(alpha: alpha))
    }

    mutating func hardSigmoid(_ c: NodeContext) throws {
        var alpha = try c.float("alpha", 0.2)
        if Float(alpha) == Float(1.0 / 6) { alpha = 1.0 / 6 }  // PyTorch's, stored as float
        try activation(c, .hardSigmoid(alpha: alpha, beta: try c.float("beta", 0.5)))
    }

    mutating func selu(_ c: NodeContext) throws {
        // The defaults, stored as float, read back as cnnc's double defaults.
        let defaultAlpha = 1.6732632423543772, defaultGamma = 1.0507009873554805
        var alpha = try c.float("alpha", defaultAlpha), gamma = try c.float("gamma", defaultGamma)
        if Float(alpha) == Float(defaultAlpha) { alpha = defaultAlpha }
        if Float(gamma) == Float(defaultGamma) { gamma = defaultGamma }
        try activation(c, .selu(alpha: alpha, gamma: gamma))
    }

    /// Clip: bounds from attributes (opset < 11) or constant inputs; [0, +inf) is ReLU.
    mutating func clip(_ c: NodeContext) throws {
        let big = Double(Float.greatestFiniteMagnitude)
        var low = -big, high = big
        if c.opset < 11 {
            low = try c.float("min", -big)
            high = try c.float("max", big)
        } else {
            if let t = try constant(c, 1) {
                guard t.count == 1 else { throw ImportError("min must be a scalar, got shape \(t.dims)") }
                low = t.values[0]
            }
            if let t = try constant(c, 2) {
                guard t.count == 1 else { throw ImportError("max must be a scalar, got shape \(t.dims)") }
                high = t.values[0]
            }
        }
        low = max(low, -big); high = min(high, big)
        guard low <= high else { throw Unsupported("min \(low) greater than max \(high)") }
        try activation(c, low == 0 && high == big ? .relu : .clip(min: low, max: high))
    }

    /// Add of two computed tensors of one shape; or the bias of a MatMul dense layer; or a
    /// constant: one value (`affine`) or one per channel (a depthwise 1x1 `conv`).
    mutating func add(_ c: NodeContext) throws {
        if allConstant(c) { return try foldBinary(c, +) }
        if case .constant? = try value(c, 1) { return try addBias(c, tensorInput: 0, constantInput: 1) }
        if case .constant? = try value(c, 0) { return try addBias(c, tensorInput: 1, constantInput: 0) }
        let x = try tensor(c, 0), y = try tensor(c, 1)
        guard x.dims == y.dims else {
            let gate = (gatePattern(y) ?? gatePattern(x)).map { " \($0)" } ?? ""
            throw Unsupported("broadcasting Add of computed values \(x.dims) and \(y.dims)\(gate); cnnc adds equal shapes (mul, sub and div broadcast)")
        }
        try emit(c, .add, inputs: [x.node, y.node])
    }

    /// When `value` is one value per channel ([N, C, 1, 1]) computed from a global pooling
    /// through per-channel layers (1x1 convs, dense, activations): the pattern's name and how
    /// it was found, `(a squeeze-and-excitation gate: global_avgpool 'g' -> conv 'fc1' -> ...)`.
    func gatePattern(_ value: (node: String, dims: [Int])) -> String? {
        guard value.dims.count == 4, value.dims[2] == 1, value.dims[3] == 1 else { return nil }
        var chain: [String] = []
        var current = value.node
        for _ in 0..<12 {
            guard let n = node(named: current) else { return nil }
            chain.append(n.displayName)
            switch n.op {
            case .globalAvgPool, .globalMaxPool:
                return "(a squeeze-and-excitation gate: \(chain.reversed().joined(separator: " -> ")))"
            case .conv, .dense, .activation, .prelu, .flatten, .dropout, .batchNorm, .binary, .add:
                guard let first = n.inputs.first else { return nil }
                current = first
            case .input, .convTranspose, .maxPool, .avgPool, .lrn, .concat, .shuffle, .slice, .pad, .upsample,
                 .softmax, .logSoftmax:
                return nil
            }
        }
        return nil
    }

    /// Sub: of a constant (`affine`, or a per-channel depthwise conv), from a constant
    /// (`affine` with scale -1), or of a computed value that broadcasts (`sub`).
    mutating func sub(_ c: NodeContext) throws {
        if allConstant(c) { return try foldBinary(c, -) }
        if case .constant(let k)? = try value(c, 1) {
            let x = try tensor(c, 0)
            if k.count == 1 { return try emitAffine(c, x, scale: 1, shift: -k.values[0]) }
            return try channelConstant(c, x, k, negate: true, isScale: false)
        }
        if case .constant(let k)? = try value(c, 0) {
            let x = try tensor(c, 1)
            guard k.count == 1 else { throw Unsupported("Sub of a computed value from a constant of shape \(k.dims); cnnc takes one value") }
            return try emitAffine(c, x, scale: -1, shift: k.values[0])
        }
        try computedBinary(c, .sub, commutative: false)
    }

    /// Div: by a constant (`affine` with scale 1/k, or a per-channel depthwise conv), or by a
    /// computed value that broadcasts (`div`).
    mutating func div(_ c: NodeContext) throws {
        if allConstant(c) {
            if let b = try constant(c, 1), b.values.contains(0) { throw ImportError("division by zero in shape arithmetic") }
            return try foldBinary(c, /)
        }
        if case .constant(let k)? = try value(c, 1) {
            let x = try tensor(c, 0)
            guard !k.values.contains(0) else { throw ImportError("division by a constant that holds 0") }
            if k.count == 1 { return try emitAffine(c, x, scale: 1 / k.values[0], shift: 0) }
            return try channelConstant(c, x, ConstTensor(dims: k.dims, values: k.values.map { 1 / $0 }, isInteger: false),
                                       negate: false, isScale: true)
        }
        if case .constant? = try value(c, 0) {
            throw Unsupported("Div of a constant by a computed value (a reciprocal); cnnc divides by constants or by computed values")
        }
        try computedBinary(c, .div, commutative: false)
    }

    /// `x * scale + shift` for a constant operand.
    private mutating func emitAffine(_ c: NodeContext, _ x: (node: String, dims: [Int]), scale: Double, shift: Double) throws {
        guard scale.isFinite, shift.isFinite else { throw ImportError("constant operand \(scale), \(shift) is not finite") }
        if scale == 1 && shift == 0 { return bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
        try emit(c, .activation(.affine(scale: scale, shift: shift)), inputs: [x.node])
    }

    /// A constant with one value per channel (`[C, 1, 1]` or `[1, C, 1, 1]` against
    /// `[N, C, H, W]`) as a depthwise 1x1 conv without
    /// bias (a scale) or with unit weights (a shift); the constant becomes its parameter.
    private mutating func channelConstant(_ c: NodeContext, _ x: (node: String, dims: [Int]), _ k: ConstTensor,
                                          negate: Bool, isScale: Bool) throws {
        let channels = x.dims.count == 4 ? x.dims[1] : 0
        guard channels > 0, k.dims == [channels, 1, 1] || k.dims == [1, channels, 1, 1] else {
            throw Unsupported("\(c.opType) of \(x.dims) and a constant of shape \(k.dims); cnnc takes one value or one per channel of [N, C, H, W]")
        }
        let values = k.values.map { negate ? -$0 : $0 }
        guard values.allSatisfy(\.isFinite) else { throw ImportError("constant operand holds a value that is not finite") }
        let name = names.allocate(c.proto.name, fallback: c.proto.output.first ?? c.opType.lowercased())
        let attrs = ConvAttributes(filters: channels, kernel: Pair(1), groups: channels, bias: !isScale, initializer: .torch)
        try emit(c, .conv(attrs), inputs: [x.node], name: name)
        let scale = isScale ? values : Array(repeating: 1.0, count: channels)
        setWeight(name, "weight", WeightTensor(shape: [channels, 1, 1, 1], data: scale.map { Float($0) }),
                  from: isScale && !negate ? c.inputName(1) : nil)
        if !isScale {
            setWeight(name, "bias", WeightTensor(shape: [channels], data: values.map { Float($0) }),
                      from: negate ? nil : c.inputName(1))
        }
    }

    /// Mul, Sub or Div of two computed values: equal shapes, or the second (for Mul either)
    /// one value per channel or per sample of the other (`[N, C, 1, 1]`, `[N, 1, 1, 1]`).
    private mutating func computedBinary(_ c: NodeContext, _ op: BinaryOp, commutative: Bool) throws {
        let a = try tensor(c, 0), b = try tensor(c, 1)
        func broadcasts(_ y: [Int], onto x: [Int]) -> Bool {
            guard x.count >= 2, y.count == x.count, y[0] == x[0] else { return false }
            return ShapeRules.broadcast(Shape(Array(y.dropFirst())), onto: Shape(Array(x.dropFirst()))) != nil
        }
        if broadcasts(b.dims, onto: a.dims) {
            try emit(c, .binary(op), inputs: [a.node, b.node])
        } else if commutative, broadcasts(a.dims, onto: b.dims) {
            try emit(c, .binary(op), inputs: [b.node, a.node])
        } else {
            let gate = (gatePattern(a) ?? gatePattern(b)).map { " \($0)" } ?? ""
            throw Unsupported("\(c.opType) of computed values \(a.dims) and \(b.dims)\(gate); cnnc broadcasts the \(commutative ? "smaller" : "second") operand only when it has one value per channel ([N, C, 1, 1]) or per sample")
        }
    }

    /// Sum of one or more computed tensors of one shape.
    mutating func sum(_ c: NodeContext) throws {
        let xs = try c.proto.input.indices.map { try tensor(c, $0) }
        guard xs.allSatisfy({ $0.dims == xs[0].dims }) else { throw Unsupported("broadcasting Sum of \(xs.map(\.dims))") }
        if xs.count == 1 { return bind(c, 0, .tensor(node: xs[0].node, dims: xs[0].dims)) }
        try emit(c, .add, inputs: xs.map(\.node))
    }

    /// A constant added to a MatMul's dense layer becomes its bias; adding zeros is nothing.
    private mutating func addBias(_ c: NodeContext, tensorInput: Int, constantInput: Int) throws {
        let x = try tensor(c, tensorInput)
        let bias = try requireConstant(c, constantInput, "bias")
        if bias.values.allSatisfy({ $0 == 0 }), bias.dims.count <= x.dims.count,
           zip(bias.dims.reversed(), x.dims.reversed()).allSatisfy({ $0 == 1 || $0 == $1 }) {
            return bind(c, 0, .tensor(node: x.node, dims: x.dims))
        }
        guard let matmulOutput = biasFree[x.node], let i = nodeIndex[x.node], case .dense(var attrs) = nodes[i].op else {
            if bias.count == 1 { return try emitAffine(c, x, scale: 1, shift: bias.values[0]) }
            return try channelConstant(c, x, bias, negate: false, isScale: false)
        }
        guard (useCount[matmulOutput] ?? 0) == 1 else {
            throw Unsupported("Add of a constant to a MatMul result that is also used elsewhere")
        }
        let b = try broadcastBias(bias, units: attrs.units, what: "bias")
        attrs.bias = true
        nodes[i].op = .dense(attrs)
        biasFree[x.node] = nil
        setWeight(x.node, "bias", WeightTensor(shape: [attrs.units], data: b.map { Float($0) }), from: c.inputName(constantInput))
        bind(c, 0, .tensor(node: x.node, dims: x.dims))
    }

    /// Mul: `x * sigmoid(x)` is swish, `x * hardsigmoid(x; 1/6, 1/2)` is hardswish; by a
    /// constant, `affine` (one value) or a depthwise 1x1 conv (one per channel); else `mul`
    /// with one operand broadcast (the squeeze-and-excitation gate `x * gate[N, C, 1, 1]`).
    mutating func mul(_ c: NodeContext) throws {
        if allConstant(c) { return try foldBinary(c, *) }
        for (ti, ki) in [(0, 1), (1, 0)] {
            guard case .constant(let k)? = try value(c, ki) else { continue }
            let x = try tensor(c, ti)
            if k.count == 1 { return try emitAffine(c, x, scale: k.values[0], shift: 0) }
            return try channelConstant(c, x, k, negate: false, isScale: true)
        }
        let a = try tensor(c, 0), b = try tensor(c, 1)
        for (x, gate) in [(a, b), (b, a)] {
            guard let g = node(named: gate.node), g.inputs == [x.node] else { continue }
            switch g.op {
            case .activation(.sigmoid):
                try emit(c, .activation(.swish), inputs: [x.node])
                return
            case .activation(.hardSigmoid(let alpha, let beta))
                where abs(alpha - 1.0 / 6) < 1e-6 && abs(beta - 0.5) < 1e-6:
                try emit(c, .activation(.hardSwish), inputs: [x.node])
                return
            default: continue
            }
        }
        try computedBinary(c, .mul, commutative: true)
    }

    /// Softmax and LogSoftmax over the channels (dim 1), as cnnc computes them.
    mutating func softmax(_ c: NodeContext, log: Bool) throws {
        let x = try tensor(c, 0)
        let rank = x.dims.count
        let axis = try normalizeAxis(try c.int("axis", c.opset >= 13 ? -1 : 1), rank: rank)
        // Before opset 13 the op flattens from `axis` on: the same as dim 1 only when the dims
        // after it are 1.
        let trailingOnes = x.dims.dropFirst(2).allSatisfy { $0 == 1 }
        let supported = axis == 1 && (c.opset >= 13 || rank == 2 || trailingOnes)
        guard supported, rank == 2 || rank == 4 else {
            throw Unsupported("axis=\(try c.int("axis", c.opset >= 13 ? -1 : 1)) on shape \(x.dims); cnnc normalizes over dim 1 of [N, C] or [N, C, H, W]")
        }
        try emit(c, log ? .logSoftmax : .softmax, inputs: [x.node])
    }

    /// Concat of computed tensors along the channels (dim 1).
    mutating func concat(_ c: NodeContext) throws {
        if allConstant(c) { return try foldConcat(c) }
        let xs = try c.proto.input.indices.map { try tensor(c, $0) }
        let rank = xs[0].dims.count
        let axis = try normalizeAxis(try c.int("axis", 1), rank: rank)
        guard axis == 1 else { throw Unsupported("concatenation along axis \(axis); cnnc concatenates channels (axis 1)") }
        if xs.count == 1 { return bind(c, 0, .tensor(node: xs[0].node, dims: xs[0].dims)) }
        try emit(c, .concat, inputs: xs.map(\.node))
    }

    /// Flatten at axis 1 (the per-sample flatten); an input that is already [N, F] passes through.
    mutating func flatten(_ c: NodeContext) throws {
        if allConstant(c) { throw Unsupported("Flatten of a constant") }
        let x = try tensor(c, 0)
        let axis = try normalizeAxis(try c.int("axis", 1), rank: x.dims.count + 1)
        guard axis == 1 || (axis == 0 && x.dims[0] == 1 && nominalBatch == 1) else {
            throw Unsupported("axis=\(axis); cnnc flattens each sample (axis 1)")
        }
        try flattenValue(c, x)
    }

    private mutating func flattenValue(_ c: NodeContext, _ x: (node: String, dims: [Int])) throws {
        if x.dims.count == 2 { return bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
        try emit(c, .flatten, inputs: [x.node])
    }

    /// Reshape to [N, -1] is flatten; to the input's own shape, nothing; constants fold.
    mutating func reshape(_ c: NodeContext) throws {
        let target: [Int]
        if c.opset < 5 {
            target = try c.ints("shape") ?? []
        } else {
            target = try requireConstant(c, 1, "shape").ints
        }
        if case .constant(let t)? = try value(c, 0) {
            return bind(c, 0, .constant(ConstTensor(dims: try resolveShape(target, of: t.dims, allowZero: try c.int("allowzero", 0) != 0),
                                                    values: t.values, isInteger: t.isInteger)))
        }
        let x = try tensor(c, 0)
        let perSample = try elementCount(x.dims.dropFirst())
        // The first dimension is the batch when it is -1, 0 (copy) or the batch shape
        // arithmetic saw.
        guard let first = target.first, first == -1 || first == 0 || first == nominalBatch else {
            throw Unsupported("Reshape to \(target) from \(x.dims); the first dimension must stay the batch")
        }
        var rest = Array(target.dropFirst())
        for (i, d) in rest.enumerated() where d == 0 {
            guard i + 1 < x.dims.count else { throw ImportError("shape \(target) copies dim \(i + 1) of \(x.dims), which does not exist") }
            rest[i] = x.dims[i + 1]
        }
        let unknown = rest.filter { $0 == -1 }.count
        guard unknown <= 1, rest.allSatisfy({ $0 >= -1 }), (first != -1 || unknown == 0) else {
            throw ImportError("shape \(target) has more than one -1 or a negative size")
        }
        let known = try elementCount(rest.filter { $0 != -1 })
        if unknown == 1 {
            guard known > 0, perSample % known == 0 else { throw ImportError("cannot reshape \(x.dims) to \(target)") }
            rest[rest.firstIndex(of: -1)!] = perSample / known
        }
        guard try elementCount(rest) == perSample else {
            throw ImportError("cannot reshape \(x.dims) (\(perSample) elements per sample) to \(target)")
        }
        if rest == Array(x.dims.dropFirst()) { return bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
        // One value per sample in any number of unit dimensions (`[N, 1]` to `[N, 1, 1, 1]`, as
        // cnnc exports a per-sample operand of mul, sub and div): the same value.
        if perSample == 1 { return bind(c, 0, .tensor(node: x.node, dims: [x.dims[0]] + rest)) }
        // Back to the node's own shape (after a channel shuffle's grouped view), or the grouped
        // view [N, G, C/G, H, W] of a [N, C, H, W] node: the same floats, other dims.
        if let producer = node(named: x.node), rest == producer.shape.dims {
            return bind(c, 0, .tensor(node: x.node, dims: [x.dims[0]] + rest))
        }
        if x.dims.count == 4, rest.count == 4, rest[0].multipliedReportingOverflow(by: rest[1]) == (x.dims[1], false),
           Array(rest[2...]) == Array(x.dims[2...]) {
            return bind(c, 0, .tensor(node: x.node, dims: [x.dims[0]] + rest))
        }
        guard rest.count == 1 else {
            throw Unsupported("Reshape from \(x.dims) to \(target); cnnc reshapes only to [N, -1] (flatten)")
        }
        try flattenValue(c, x)
    }

    /// A constant's dims after Reshape to `target` (0 copies a dim unless `allowZero`, -1 infers).
    func resolveShape(_ target: [Int], of dims: [Int], allowZero: Bool) throws -> [Int] {
        let count = try elementCount(dims)
        var out = target
        for (i, d) in target.enumerated() where d == 0 && !allowZero {
            guard i < dims.count else { throw ImportError("shape \(target) copies dim \(i) of \(dims), which does not exist") }
            out[i] = dims[i]
        }
        let unknown = out.filter { $0 == -1 }.count
        guard unknown <= 1, out.allSatisfy({ $0 >= -1 }) else { throw ImportError("bad reshape target \(target)") }
        if unknown == 1 {
            let known = try elementCount(out.filter { $0 != -1 })
            guard known > 0, count % known == 0 else { throw ImportError("cannot reshape \(dims) to \(target)") }
            out[out.firstIndex(of: -1)!] = count / known
        }
        guard try elementCount(out) == count else { throw ImportError("cannot reshape \(dims) to \(target)") }
        return out
    }

    mutating func identity(_ c: NodeContext) throws {
        guard let v = try value(c, 0) else { throw ImportError("input 0 is missing") }
        bind(c, 0, v)
    }

    /// Dropout: a cnnc dropout node (the identity at inference), its rate from the `ratio`
    /// attribute (opset < 12) or constant input.
    mutating func dropout(_ c: NodeContext) throws {
        try requireUnused(c, outputsFrom: 1)
        if case .constant? = try value(c, 0) { return try identity(c) }
        let x = try tensor(c, 0)
        var rate = 0.5
        if c.opset < 12 {
            rate = try c.float("ratio", 0.5)
        } else {
            if let r = try constant(c, 1) { rate = r.values.first ?? 0.5 }
            if let t = try constant(c, 2), t.values.first ?? 0 != 0 { throw Unsupported("training_mode=true") }
        }
        guard rate >= 0, rate < 1 else { throw ImportError("ratio \(rate) is outside [0, 1)") }
        try emit(c, .dropout(rate: min(rate, 0.999999)), inputs: [x.node])
    }

    /// Pad: constant spatial padding read only by Conv and pools is kept pending for them to
    /// merge; other padding (channels, edge or reflect, other readers) is a `pad` layer.
    mutating func pad(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        let modeText = try c.string("mode", "constant")
        guard let mode = PadMode(rawValue: modeText) else { throw Unsupported("mode '\(modeText)'; cnnc pads constant, edge or reflect") }
        var pads: [Int]
        var padValue = 0.0
        if c.opset < 11 {
            pads = try c.ints("pads") ?? []
            padValue = try c.float("value", 0)
        } else {
            pads = try requireConstant(c, 1, "pads").ints
            if let v = try constant(c, 2) { padValue = v.values.first ?? 0 }
            if let axes = try constant(c, 3) {
                var full = Array(repeating: 0, count: 2 * x.dims.count)
                let list = try axes.ints
                guard pads.count == 2 * list.count else { throw ImportError("pads \(pads) do not match axes \(list)") }
                for (i, a) in list.enumerated() {
                    let axis = try normalizeAxis(a, rank: x.dims.count)
                    full[axis] = pads[i]; full[axis + x.dims.count] = pads[i + list.count]
                }
                pads = full
            }
        }
        guard x.dims.count == 4, pads.count == 8 else {
            throw Unsupported("Pad of \(x.dims) with pads \(pads); cnnc merges 2-D padding of [N, C, H, W]")
        }
        guard pads[0] == 0, pads[4] == 0 else { throw Unsupported("padding of the batch dimension") }
        guard pads.allSatisfy({ $0 >= 0 && $0 <= 4096 }) else { throw Unsupported("negative (cropping) or huge pads \(pads)") }
        let padding = Padding(top: pads[2], left: pads[3], bottom: pads[6], right: pads[7])
        let channels = pads[1] + pads[5] > 0
        let windowsOnly = (readers[c.proto.output.first ?? ""] ?? []).allSatisfy { ["Conv", "MaxPool", "AveragePool"].contains($0) }
        if mode == .constant, !channels, windowsOnly {
            return bind(c, 0, .padded(node: x.node, dims: x.dims, padding: padding, value: padValue, padNode: c.label))
        }
        guard padValue.isFinite else { throw Unsupported("pad value \(padValue); cnnc's pad layer takes a finite constant") }
        try emit(c, .pad(PadAttributes(padding: padding, channelsBefore: pads[1], channelsAfter: pads[5], mode: mode,
                                       value: padValue)), inputs: [x.node])
    }
}
