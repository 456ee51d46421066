// Importing ONNX layers with parameters or windows: Conv, Gemm, MatMul, BatchNormalization,
// PRelu, MaxPool, AveragePool, the global pools and LRN. Parameters are renamed to cnnc's
// (`NODE.weight`, `NODE.bias`, `NODE.running_mean`, `NODE.running_var`) and converted to
// cnnc's layouts (a dense weight is [units, in], as PyTorch's).

import CNNCIR

extension ONNXImporter {
    /// Conv: 2-D only; `auto_pad`, `pads`, `strides`, `dilations`, `group`, and a constant-mode
    /// zero `Pad` before it merged into the padding.
    mutating func conv(_ c: NodeContext) throws {
        let (input, dims, extra) = try windowInput(c, allowPadValue: { $0 == 0 })
        guard dims.count == 4 else { throw Unsupported("\(dims.count - 2)-D convolution; cnnc supports 2-D (input [N, C, H, W])") }
        let w = try requireConstant(c, 1, "weight")
        guard w.dims.count == 4 else { throw ImportError("weight '\(c.inputName(1)!)' has shape \(w.dims), expected [K, C/group, kH, kW]") }
        let groups = try c.int("group", 1)
        guard groups >= 1, dims[1] % groups == 0, w.dims[0] % groups == 0 else {
            throw ImportError("group=\(groups) does not divide the \(dims[1]) input channels and \(w.dims[0]) filters")
        }
        guard w.dims[1] * groups == dims[1] else {
            throw ImportError("weight '\(c.inputName(1)!)' has shape \(w.dims), expected \(dims[1] / groups) input channels per group from input of shape \(dims)")
        }
        let kernel = Pair(w.dims[2], w.dims[3])
        if let ks = try c.ints("kernel_shape"), ks != [kernel.h, kernel.w] {
            throw ImportError("kernel_shape \(ks) contradicts weight shape \(w.dims)")
        }
        let stride = try pair(c, "strides", default: 1)
        let dilation = try pair(c, "dilations", default: 1)
        var padding = try pads(c, input: dims, kernel: kernel, stride: stride, dilation: dilation)
        if let extra { padding = add(padding, extra) }
        var bias: ConstTensor?
        if let b = try constant(c, 2) {
            guard b.count == w.dims[0] else { throw ImportError("bias '\(c.inputName(2)!)' has shape \(b.dims), expected [\(w.dims[0])]") }
            bias = b
        }
        let name = layerName(c, weight: c.inputName(1))
        let attrs = ConvAttributes(filters: w.dims[0], kernel: kernel, stride: stride, padding: padding,
                                   dilation: dilation, groups: groups, bias: bias != nil)
        setWeight(name, "weight", w.weight, from: c.inputName(1))
        if let bias { setWeight(name, "bias", WeightTensor(shape: [w.dims[0]], data: bias.values.map { Float($0) }), from: c.inputName(2)) }
        try emit(c, .conv(attrs), inputs: [input], name: name)
    }

    /// ConvTranspose (2-D): weight [C, K/group, kH, kW], strides, dilations, group, pads or
    /// auto_pad, output_padding, and output_shape (turned into pads as ONNX defines them: the
    /// full output's surplus over output_shape, split by auto_pad, the odd row at the start unless
    /// SAME_UPPER; an output_shape beyond the full output adds rows at the end, as ONNX Runtime
    /// does, which is more output_padding); `conv_transpose`.
    mutating func convTranspose(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        guard x.dims.count == 4 else { throw Unsupported("\(x.dims.count - 2)-D transposed convolution; cnnc supports 2-D (input [N, C, H, W])") }
        let w = try requireConstant(c, 1, "weight")
        guard w.dims.count == 4 else { throw ImportError("weight '\(c.inputName(1)!)' has shape \(w.dims), expected [C, K/group, kH, kW]") }
        let groups = try c.int("group", 1)
        guard groups >= 1, groups <= maxDimension, x.dims[1] % groups == 0 else {
            throw ImportError("group=\(groups) does not divide the \(x.dims[1]) input channels")
        }
        guard w.dims[0] == x.dims[1] else {
            throw ImportError("weight '\(c.inputName(1)!)' has shape \(w.dims), expected \(x.dims[1]) input channels first from input of shape \(x.dims)")
        }
        guard let filters = SizeArithmetic.multiply(w.dims[1], groups), filters >= 1, filters <= maxDimension else {
            throw ImportError("weight '\(c.inputName(1)!)' has shape \(w.dims): \(w.dims[1]) x group \(groups) output channels is out of range")
        }
        let kernel = Pair(w.dims[2], w.dims[3])
        guard (1...4096).contains(kernel.h), (1...4096).contains(kernel.w) else {
            throw ImportError("weight '\(c.inputName(1)!)' has kernel \(kernel.h)x\(kernel.w), expected sizes from 1 to 4096")
        }
        if let ks = try c.ints("kernel_shape"), ks != [kernel.h, kernel.w] {
            throw ImportError("kernel_shape \(ks) contradicts weight shape \(w.dims)")
        }
        let stride = try pair(c, "strides", default: 1)
        let dilation = try pair(c, "dilations", default: 1)
        var outputPadding = Pair(0)
        if let op = try c.ints("output_padding") {
            guard op.count == 2, op.allSatisfy({ $0 >= 0 && $0 <= 4096 }) else {
                throw ImportError("output_padding must list 2 values from 0 to 4096, got \(op)")
            }
            outputPadding = Pair(op[0], op[1])
        }
        guard outputPadding.h < max(stride.h, dilation.h), outputPadding.w < max(stride.w, dilation.w) else {
            throw Unsupported("output_padding \(outputPadding) not below the stride \(stride) or the dilation \(dilation); cnnc (as PyTorch) adds fewer rows than that")
        }
        // The full output along one axis, before any padding is removed.
        func full(_ size: Int, _ s: Int, _ k: Int, _ d: Int, _ extra: Int) -> Int { (size - 1) * s + (k - 1) * d + 1 + extra }
        let fullH = full(x.dims[2], stride.h, kernel.h, dilation.h, outputPadding.h)
        let fullW = full(x.dims[3], stride.w, kernel.w, dilation.w, outputPadding.w)
        let autoPad = try c.string("auto_pad", "NOTSET")
        var target: [Int]?
        if let shape = try c.ints("output_shape") {
            guard shape.count == 2 || shape.count == 4, shape.suffix(2).allSatisfy({ $0 >= 1 && $0 <= maxDimension }) else {
                throw ImportError("output_shape must list [H, W] from 1 to \(maxDimension), got \(shape)")
            }
            target = Array(shape.suffix(2))
        } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            guard let h = SizeArithmetic.multiply(x.dims[2], stride.h), let w = SizeArithmetic.multiply(x.dims[3], stride.w) else {
                throw ImportError("output \(x.dims[2])x\(x.dims[3]) times stride \(stride) is too large")
            }
            target = [h, w]
        }
        var padding: Padding
        if let target {
            var th = fullH - target[0], tw = fullW - target[1]
            guard th <= 8192, tw <= 8192, th >= -4096, tw >= -4096 else {
                throw ImportError("output_shape \(target) is far from the full output \(fullH)x\(fullW)")
            }
            if th < 0 { outputPadding.h -= th; th = 0 }
            if tw < 0 { outputPadding.w -= tw; tw = 0 }
            guard outputPadding.h < max(stride.h, dilation.h), outputPadding.w < max(stride.w, dilation.w) else {
                throw Unsupported("output_shape \(target) beyond the full output \(fullH)x\(fullW) by as many rows or columns as the stride \(stride) and the dilation \(dilation); cnnc (as PyTorch) adds fewer than that")
            }
            let upper = autoPad == "SAME_UPPER"
            padding = Padding(top: upper ? th / 2 : th - th / 2, left: upper ? tw / 2 : tw - tw / 2,
                              bottom: upper ? th - th / 2 : th / 2, right: upper ? tw - tw / 2 : tw / 2)
        } else if autoPad == "VALID" {
            padding = .zero
        } else if autoPad == "NOTSET" || autoPad.isEmpty {
            padding = try pads(c, input: x.dims, kernel: kernel, stride: stride, dilation: dilation)
        } else {
            throw ImportError("unknown auto_pad '\(autoPad)'")
        }
        var bias: ConstTensor?
        if let b = try constant(c, 2) {
            guard b.count == filters else { throw ImportError("bias '\(c.inputName(2)!)' has shape \(b.dims), expected [\(filters)]") }
            bias = b
        }
        let name = layerName(c, weight: c.inputName(1))
        let attrs = ConvTransposeAttributes(filters: filters, kernel: kernel, stride: stride, padding: padding,
                                            outputPadding: outputPadding, dilation: dilation, groups: groups, bias: bias != nil)
        setWeight(name, "weight", w.weight, from: c.inputName(1))
        if let bias { setWeight(name, "bias", WeightTensor(shape: [filters], data: bias.values.map { Float($0) }), from: c.inputName(2)) }
        try emit(c, .convTranspose(attrs), inputs: [x.node], name: name)
    }

    /// Gemm: `alpha * A' B' + beta * C` with A computed ([N, K], transA=0) and B, C constant.
    mutating func gemm(_ c: NodeContext) throws {
        let a = try tensor(c, 0)
        guard try c.int("transA", 0) == 0 else { throw Unsupported("transA=1 on a computed input") }
        guard a.dims.count == 2 else { throw ImportError("input A has shape \(a.dims), expected [N, K]") }
        let b = try requireConstant(c, 1, "B")
        let transB = try c.int("transB", 0) != 0
        guard b.dims.count == 2 else { throw ImportError("B has shape \(b.dims), expected a matrix") }
        let (k, units) = transB ? (b.dims[1], b.dims[0]) : (b.dims[0], b.dims[1])
        guard k == a.dims[1] else {
            throw ImportError("B has shape \(b.dims) (transB=\(transB ? 1 : 0)), expected \(a.dims[1]) inputs from A of shape \(a.dims)")
        }
        let alpha = try c.float("alpha", 1), beta = try c.float("beta", 1)
        let source = skippingFlatten(c, a.node)
        var weight = transB ? b.values : transpose(b.values, rows: b.dims[0], columns: b.dims[1])
        if alpha != 1 { weight = weight.map { $0 * alpha } }
        var bias: [Double]?
        if let cc = try constant(c, 2), beta != 0 {
            bias = try broadcastBias(cc, units: units, what: "C").map { $0 * beta }
        }
        let name = layerName(c, weight: c.inputName(1))
        setWeight(name, "weight", WeightTensor(shape: [units, k], data: weight.map { Float($0) }), from: c.inputName(1))
        if let bias { setWeight(name, "bias", WeightTensor(shape: [units], data: bias.map { Float($0) }), from: c.inputName(2)) }
        try emit(c, .dense(DenseAttributes(units: units, bias: bias != nil)), inputs: [source], name: name)
    }

    /// MatMul of a computed [N, K] by a constant [K, units]: a dense layer without bias, which a
    /// following Add of a constant [units] completes.
    mutating func matMul(_ c: NodeContext) throws {
        if allConstant(c) { throw Unsupported("MatMul of two constants") }
        let a = try tensor(c, 0)
        guard a.dims.count == 2 else { throw Unsupported("MatMul of an input of shape \(a.dims); cnnc supports [N, K] x [K, M]") }
        let b = try requireConstant(c, 1, "B")
        guard b.dims.count == 2, b.dims[0] == a.dims[1] else {
            throw ImportError("B has shape \(b.dims), expected [\(a.dims[1]), M] for A of shape \(a.dims)")
        }
        let units = b.dims[1]
        let name = layerName(c, weight: c.inputName(1))
        let weight = transpose(b.values, rows: b.dims[0], columns: units)
        setWeight(name, "weight", WeightTensor(shape: [units, b.dims[0]], data: weight.map { Float($0) }), from: c.inputName(1))
        try emit(c, .dense(DenseAttributes(units: units, bias: false)), inputs: [skippingFlatten(c, a.node)], name: name)
        biasFree[name] = c.proto.output.first ?? ""
    }

    /// BatchNormalization at inference: scale, B, mean and var constant, per channel.
    mutating func batchNorm(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        try requireUnused(c, outputsFrom: 1)
        guard try c.int("training_mode", 0) == 0 else { throw Unsupported("training_mode=1") }
        if c.opset < 9, try c.int("spatial", 1) != 1 { throw Unsupported("spatial=0") }
        guard x.dims.count == 2 || x.dims.count == 4 else { throw Unsupported("input of shape \(x.dims); cnnc normalizes [N, C] or [N, C, H, W]") }
        let channels = x.dims[1]
        var tensors: [ConstTensor] = []
        for (i, role) in ["scale", "B", "mean", "var"].enumerated() {
            let t = try requireConstant(c, i + 1, role)
            guard t.count == channels else {
                throw ImportError("\(role) '\(c.inputName(i + 1)!)' has shape \(t.dims), expected [\(channels)] for input of shape \(x.dims)")
            }
            tensors.append(t)
        }
        let epsilon = try c.float("epsilon", 1e-5)
        let momentum = try c.float("momentum", 0.9)
        guard epsilon >= 0, epsilon <= 1 else { throw Unsupported("epsilon=\(epsilon) outside 0...1") }
        let name = layerName(c, weight: c.inputName(1))
        for (i, role) in ["weight", "bias", "running_mean", "running_var"].enumerated() {
            setWeight(name, role, WeightTensor(shape: [channels], data: tensors[i].values.map { Float($0) }), from: c.inputName(i + 1))
        }
        // ONNX's momentum weighs the old statistics, PyTorch's and cnnc's the new ones.
        let attrs = BatchNormAttributes(epsilon: epsilon, momentum: min(max(((1 - momentum) * 1e9).rounded() / 1e9, 0), 1))
        try emit(c, .batchNorm(attrs), inputs: [x.node], name: name)
    }

    /// PRelu with a constant slope shared by all elements or one per channel.
    mutating func prelu(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        let slope = try requireConstant(c, 1, "slope")
        guard slope.dims.count <= x.dims.count else { throw ImportError("slope has shape \(slope.dims), more dims than input \(x.dims)") }
        let aligned = Array(repeating: 1, count: x.dims.count - slope.dims.count) + slope.dims
        let shared = aligned.allSatisfy { $0 == 1 }
        let perChannel = aligned[0] == 1 && aligned[1] == x.dims[1] && aligned.dropFirst(2).allSatisfy { $0 == 1 }
        guard shared || perChannel else {
            throw Unsupported("slope of shape \(slope.dims) for input \(x.dims); cnnc supports one slope or one per channel ([C, 1, 1])")
        }
        let name = layerName(c, weight: c.inputName(1))
        setWeight(name, "weight", WeightTensor(shape: [slope.count], data: slope.values.map { Float($0) }), from: c.inputName(1))
        try emit(c, .prelu(PReLUAttributes(shared: shared)), inputs: [x.node], name: name)
    }

    /// MaxPool and AveragePool over 2-D windows.
    mutating func pool(_ c: NodeContext, isMax: Bool) throws {
        // Zero padding changes a max; -inf padding changes an average.
        let includeAttribute = try c.int("count_include_pad", 0)
        let countIncludePad = !isMax && includeAttribute != 0
        let (input, dims, extra) = try windowInput(c, allowPadValue: { isMax ? $0 <= -Double(Float.greatestFiniteMagnitude) : $0 == 0 })
        guard dims.count == 4 else { throw Unsupported("\(dims.count - 2)-D pooling; cnnc supports 2-D (input [N, C, H, W])") }
        if isMax { try requireUnused(c, outputsFrom: 1) }
        guard let ks = try c.ints("kernel_shape"), ks.count == 2, ks.allSatisfy({ $0 >= 1 }) else {
            throw ImportError("kernel_shape must list 2 positive sizes")
        }
        let kernel = Pair(ks[0], ks[1])
        let stride = try pair(c, "strides", default: 1)
        guard try pair(c, "dilations", default: 1) == Pair(1) else { throw Unsupported("dilated pooling") }
        if isMax, try c.int("storage_order", 0) != 0 { throw Unsupported("storage_order=1") }
        var padding = try pads(c, input: dims, kernel: kernel, stride: stride, dilation: Pair(1))
        var include = countIncludePad
        if let extra {
            // Explicit zeros are real elements of the window: they always count.
            guard isMax || padding == .zero || countIncludePad else {
                throw Unsupported("Pad before AveragePool with its own pads and count_include_pad=0")
            }
            padding = add(padding, extra)
            include = true
        }
        let attrs = PoolAttributes(kernel: kernel, stride: stride, padding: padding,
                                   ceilMode: try c.int("ceil_mode", 0) != 0, countIncludePad: isMax ? true : include)
        try emit(c, isMax ? .maxPool(attrs) : .avgPool(attrs), inputs: [input])
    }

    mutating func globalPool(_ c: NodeContext, isMax: Bool) throws {
        let x = try tensor(c, 0)
        guard x.dims.count == 4 else { throw Unsupported("input of shape \(x.dims); cnnc pools [N, C, H, W]") }
        try emit(c, isMax ? .globalMaxPool : .globalAvgPool, inputs: [x.node])
    }

    /// ReduceMean and ReduceMax over the spatial axes [2, 3] of [N, C, H, W] are global pools
    /// (`x.mean([2, 3])` in PyTorch); keepdims=0 adds a flatten to [N, C]. Axes come from the
    /// attribute, or from the second input from opset 18 on.
    mutating func reduce(_ c: NodeContext, isMax: Bool) throws {
        if allConstant(c) { throw Unsupported("\(c.opType) of a constant") }
        let x = try tensor(c, 0)
        var axes = try c.ints("axes")
        if axes == nil, let t = try constant(c, 1) { axes = try t.ints }
        let keepDims = try c.int("keepdims", 1) != 0
        let spatial = "cnnc reduces only the spatial axes [2, 3] of [N, C, H, W] (global pooling)"
        guard let list = axes, !list.isEmpty else {
            if try c.int("noop_with_empty_axes", 0) != 0 { return bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
            throw Unsupported("reduction over all axes of \(x.dims); \(spatial)")
        }
        guard x.dims.count == 4 else { throw Unsupported("reduction of an input of shape \(x.dims); \(spatial)") }
        let normalized = try Set(list.map { try normalizeAxis($0, rank: 4) })
        guard normalized == [2, 3], list.count == 2 else {
            throw Unsupported("reduction over axes \(list) of \(x.dims); \(spatial)")
        }
        let pool = try emit(c, isMax ? .globalMaxPool : .globalAvgPool, inputs: [x.node])
        if !keepDims {
            try emit(c, .flatten, inputs: [pool], name: names.allocate("\(pool)_flatten", fallback: "flatten"))
        }
    }

    /// LRN across channels; ONNX's window for an even size is the mirror image of PyTorch's
    /// (and cnnc's), so only odd sizes import.
    mutating func lrn(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        guard x.dims.count == 4 else { throw Unsupported("input of shape \(x.dims); cnnc normalizes [N, C, H, W]") }
        let size = try c.int("size", 0)
        guard size >= 1 else { throw ImportError("size must be positive, got \(size)") }
        guard size % 2 == 1 else { throw Unsupported("even size=\(size) (ONNX centers the window differently from cnnc/PyTorch)") }
        let attrs = LRNAttributes(size: size, alpha: try c.float("alpha", 1e-4), beta: try c.float("beta", 0.75),
                                  k: try c.float("bias", 1))
        guard attrs.alpha >= 0, attrs.beta >= 0, attrs.k >= 0 else { throw Unsupported("negative alpha, beta or bias") }
        try emit(c, .lrn(attrs), inputs: [x.node])
    }

    /// cnnc's dense flattens its input itself: a flatten read only by this layer is skipped
    /// (and then dropped as unused).
    func skippingFlatten(_ c: NodeContext, _ node: String) -> String {
        guard let n = self.node(named: node), case .flatten = n.op, let input = c.inputName(0), (useCount[input] ?? 0) == 1 else {
            return node
        }
        return n.inputs[0]
    }

    // MARK: - Window helpers

    /// The tensor a Conv or pool reads, with the padding of a Pad before it (if any).
    func windowInput(_ c: NodeContext, allowPadValue: (Double) -> Bool) throws -> (String, [Int], Padding?) {
        guard let v = try value(c, 0) else { throw ImportError("input 0 is missing") }
        if case .padded(let node, let dims, let padding, let padValue, let padNode) = v {
            guard allowPadValue(padValue) else {
                throw Unsupported("Pad '\(padNode)' with value \(padValue) cannot merge into \(c.opType)")
            }
            return (node, dims, padding)
        }
        let t = try tensor(c, 0)
        return (t.node, t.dims, nil)
    }

    func pair(_ c: NodeContext, _ name: String, default d: Int) throws -> Pair {
        guard let v = try c.ints(name) else { return Pair(d) }
        guard v.count == 2, v.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { throw ImportError("\(name) must list 2 values from 1 to 4096, got \(v)") }
        return Pair(v[0], v[1])
    }

    /// Explicit `pads` ([top, left, bottom, right]) or `auto_pad` (SAME_UPPER puts the odd pixel
    /// at the end, SAME_LOWER at the start; VALID is none).
    func pads(_ c: NodeContext, input dims: [Int], kernel: Pair, stride: Pair, dilation: Pair) throws -> Padding {
        let autoPad = try c.string("auto_pad", "NOTSET")
        switch autoPad {
        case "NOTSET", "":
            guard let p = try c.ints("pads") else { return .zero }
            guard p.count == 4, p.allSatisfy({ $0 >= 0 && $0 <= 4096 }) else {
                throw ImportError("pads must list 4 values from 0 to 4096 ([top, left, bottom, right]), got \(p)")
            }
            return Padding(top: p[0], left: p[1], bottom: p[2], right: p[3])
        case "VALID":
            return .zero
        case "SAME_UPPER", "SAME_LOWER":
            func split(_ size: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
                let out = (size + s - 1) / s
                let total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
                return autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
            }
            let (t, b) = split(dims[2], kernel.h, stride.h, dilation.h)
            let (l, r) = split(dims[3], kernel.w, stride.w, dilation.w)
            return Padding(top: t, left: l, bottom: b, right: r)
        default:
            throw ImportError("unknown auto_pad '\(autoPad)'")
        }
    }

    func add(_ a: Padding, _ b: Padding) -> Padding {
        Padding(top: a.top + b.top, left: a.left + b.left, bottom: a.bottom + b.bottom, right: a.right + b.right)
    }

    /// A bias constant broadcast to [units]: shapes [], [1], [units], [1, units] (or [1, 1]).
    func broadcastBias(_ t: ConstTensor, units: Int, what: String) throws -> [Double] {
        let squeezed = t.dims.filter { $0 != 1 }
        if t.count == 1 { return Array(repeating: t.values[0], count: units) }
        guard squeezed == [units], t.dims.last == units else {
            throw Unsupported("\(what) of shape \(t.dims) is not a bias of \(units) outputs")
        }
        return t.values
    }
}

/// A row-major `rows x columns` matrix transposed.
func transpose(_ m: [Double], rows: Int, columns: Int) -> [Double] {
    var out = [Double](repeating: 0, count: m.count)
    for r in 0..<rows { for col in 0..<columns { out[col * rows + r] = m[r * columns + col] } }
    return out
}
