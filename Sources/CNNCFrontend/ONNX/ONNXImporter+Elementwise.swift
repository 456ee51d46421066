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

    /// Add of two computed tensors of one shape; or the bias of a MatMul dense layer.
    mutating func add(_ c: NodeContext) throws {
        if allConstant(c) { return try foldBinary(c, +) }
        if case .constant? = try value(c, 1) { return try addBias(c, tensorInput: 0, constantInput: 1) }
        if case .constant? = try value(c, 0) { return try addBias(c, tensorInput: 1, constantInput: 0) }
        let x = try tensor(c, 0), y = try tensor(c, 1)
        guard x.dims == y.dims else { throw Unsupported("broadcasting Add of \(x.dims) and \(y.dims); cnnc adds equal shapes") }
        try emit(c, .add, inputs: [x.node, y.node])
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
            throw Unsupported("Add of a constant to a computed value; cnnc adds constants only as the bias of a MatMul")
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

    /// Mul: `x * sigmoid(x)` is swish, `x * hardsigmoid(x; 1/6, 1/2)` is hardswish.
    mutating func mul(_ c: NodeContext) throws {
        if allConstant(c) { return try foldBinary(c, *) }
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
        throw Unsupported("Mul of two computed values other than x * Sigmoid(x) (swish) or x * HardSigmoid(x) (hardswish)")
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

    /// Pad in constant mode, kept pending for the Conv or pool that reads it.
    mutating func pad(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        let mode = try c.string("mode", "constant")
        guard mode == "constant" else { throw Unsupported("mode '\(mode)'; cnnc merges only constant padding into Conv/pools") }
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
        guard pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0 else {
            throw Unsupported("padding of the batch or channel dimension")
        }
        guard pads.allSatisfy({ $0 >= 0 && $0 <= 4096 }) else { throw Unsupported("negative (cropping) or huge pads \(pads)") }
        let padding = Padding(top: pads[2], left: pads[3], bottom: pads[6], right: pads[7])
        bind(c, 0, .padded(node: x.node, dims: x.dims, padding: padding, value: padValue, padNode: c.label))
    }
}
