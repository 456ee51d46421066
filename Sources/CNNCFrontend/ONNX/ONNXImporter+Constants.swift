// Constant folding of the shape arithmetic ONNX exporters emit (PyTorch's `x.view(x.size(0),
// -1)` becomes Shape -> Gather -> Unsqueeze -> Concat -> Reshape): Constant, Shape, Gather,
// Unsqueeze, Squeeze, Concat, Cast, Slice, ConstantOfShape and Add/Sub/Mul/Div of constants.
// Shapes are static in cnnc, so these fold to constants at import time.

import CNNCIR

extension ONNXImporter {
    mutating func constantNode(_ c: NodeContext) throws {
        guard let a = c.proto.attribute.first else { throw ImportError("Constant has no value attribute") }
        let t: ConstTensor
        switch a.name {
        case "value":
            do { t = try a.t.decode(baseDirectory: baseDirectory) } catch { throw ImportError("\(error)") }
        case "value_float": t = ConstTensor(dims: [], values: [Double(a.f)], isInteger: false)
        case "value_floats": t = ConstTensor(dims: [a.floats.count], values: a.floats.map(Double.init), isInteger: false)
        case "value_int": t = ConstTensor(dims: [], values: [Double(a.i)], isInteger: true)
        case "value_ints": t = ConstTensor(dims: [a.ints.count], values: a.ints.map(Double.init), isInteger: true)
        default: throw Unsupported("Constant with attribute '\(a.name)'")
        }
        bind(c, 0, .constant(t))
    }

    /// Shape of a computed tensor: its static dims, the batch as shape arithmetic sees it.
    mutating func shape(_ c: NodeContext) throws {
        guard let v = try value(c, 0) else { throw ImportError("input 0 is missing") }
        var dims: [Int]
        switch v {
        case .tensor(_, let d), .padded(_, let d, _, _, _): dims = d
        case .constant(let t): dims = t.dims
        case .failed: throw ImportError("input failed")
        }
        if case .padded(_, _, let p, _, _) = v { dims[2] += p.top + p.bottom; dims[3] += p.left + p.right }
        let rank = dims.count
        var start = try c.int("start", 0), end = try c.int("end", rank)
        if start < 0 { start += rank }
        if end < 0 { end += rank }
        start = min(max(start, 0), rank); end = min(max(end, start), rank)
        bind(c, 0, .constant(ConstTensor(ints: Array(dims[start..<end]))))
    }

    mutating func gather(_ c: NodeContext) throws {
        guard allConstant(c) else { throw Unsupported("Gather of a computed value") }
        let data = try requireConstant(c, 0, "data"), indices = try requireConstant(c, 1, "indices")
        guard !data.dims.isEmpty else { throw ImportError("Gather of a scalar") }
        let axis = try normalizeAxis(try c.int("axis", 0), rank: data.dims.count)
        let outer = try elementCount(data.dims[..<axis]), inner = try elementCount(data.dims[(axis + 1)...])
        let size = data.dims[axis]
        var out: [Double] = []
        for o in 0..<outer {
            for raw in try indices.ints {
                let i = raw < 0 ? raw + size : raw
                guard i >= 0, i < size else { throw ImportError("index \(raw) is out of range for axis of size \(size)") }
                out += data.values[((o * size + i) * inner)..<((o * size + i) * inner + inner)]
            }
        }
        let dims = Array(data.dims[..<axis]) + indices.dims + Array(data.dims[(axis + 1)...])
        bind(c, 0, .constant(ConstTensor(dims: dims, values: out, isInteger: data.isInteger)))
    }

    mutating func unsqueeze(_ c: NodeContext) throws {
        guard allConstant(c) else { throw Unsupported("Unsqueeze of a computed value") }
        let t = try requireConstant(c, 0, "data")
        let axes = c.opset >= 13 ? try requireConstant(c, 1, "axes").ints : try c.ints("axes") ?? []
        let rank = t.dims.count + axes.count
        var dims = t.dims
        for a in try axes.map({ try normalizeAxis($0, rank: rank) }).sorted() {
            guard a <= dims.count else { throw ImportError("axis \(a) out of range") }
            dims.insert(1, at: a)
        }
        bind(c, 0, .constant(ConstTensor(dims: dims, values: t.values, isInteger: t.isInteger)))
    }

    mutating func squeeze(_ c: NodeContext) throws {
        guard allConstant(c) else { throw Unsupported("Squeeze of a computed value") }
        let t = try requireConstant(c, 0, "data")
        let axes = c.opset >= 13 ? try constant(c, 1)?.ints : try c.ints("axes")
        var dims: [Int] = []
        let normalized = try axes.map { try $0.map { try normalizeAxis($0, rank: t.dims.count) } }
        for (i, d) in t.dims.enumerated() {
            let drop = normalized.map { $0.contains(i) } ?? (d == 1)
            if drop && d != 1 { throw ImportError("cannot squeeze axis \(i) of size \(d)") }
            if !drop { dims.append(d) }
        }
        bind(c, 0, .constant(ConstTensor(dims: dims, values: t.values, isInteger: t.isInteger)))
    }

    mutating func foldConcat(_ c: NodeContext) throws {
        let ts = try c.proto.input.indices.compactMap { try constant(c, $0) }
        guard let first = ts.first else { throw ImportError("Concat of nothing") }
        let axis = try normalizeAxis(try c.int("axis", 0), rank: max(first.dims.count, 1))
        for t in ts where t.dims.count != first.dims.count || t.dims.enumerated().contains(where: { $0.offset != axis && $0.element != first.dims[$0.offset] }) {
            throw ImportError("cannot concatenate constants of shapes \(first.dims) and \(t.dims) along axis \(axis)")
        }
        let outer = try elementCount(first.dims[..<axis])
        var out: [Double] = []
        for o in 0..<outer {
            for t in ts {
                let chunk = try elementCount(t.dims[axis...])
                out += t.values[(o * chunk)..<((o + 1) * chunk)]
            }
        }
        var dims = first.dims
        if !dims.isEmpty { dims[axis] = ts.map { $0.dims.isEmpty ? 1 : $0.dims[axis] }.reduce(0, +) }
        bind(c, 0, .constant(ConstTensor(dims: dims, values: out, isInteger: first.isInteger)))
    }

    mutating func cast(_ c: NodeContext) throws {
        guard let v = try value(c, 0) else { throw ImportError("input 0 is missing") }
        guard case .constant(var t) = v else {
            // A float-to-float cast of a computed value is the identity.
            let to = try c.int("to", 1)
            guard to == Int(ONNXDataType.float.rawValue) else { throw Unsupported("Cast of a computed value to type \(to)") }
            return bind(c, 0, v)
        }
        guard let type = ONNXDataType(rawValue: Int32(clamping: try c.int("to", 1))) else { throw Unsupported("Cast to an unsupported type") }
        if type.isInteger { t.values = t.values.map { $0.rounded(.towardZero) } }
        if type == .float { t.values = t.values.map { Double(Float($0)) } }
        t.isInteger = type.isInteger
        bind(c, 0, .constant(t))
    }

    /// Slice of a constant of any rank: per listed axis (default 0, 1, ...) the indices from
    /// start towards end by step (negative steps walk backwards, as PyTorch's exported F.pad
    /// reverses its pads), ends clamped; then the kept elements gathered.
    mutating func slice(_ c: NodeContext) throws {
        guard allConstant(c) else { return try computedSlice(c) }
        let t = try requireConstant(c, 0, "data")
        let dims = t.dims.isEmpty ? [t.count] : t.dims
        var starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if c.opset < 10 {
            starts = try c.ints("starts") ?? [0]; ends = try c.ints("ends") ?? [Int.max]
            axes = try c.ints("axes")
        } else {
            starts = try requireConstant(c, 1, "starts").ints; ends = try requireConstant(c, 2, "ends").ints
            axes = try constant(c, 3)?.ints
            steps = try constant(c, 4)?.ints
        }
        let axisList = try (axes ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: dims.count) }
        let stepList = steps ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, axisList.count == starts.count, stepList.count == starts.count,
              !stepList.contains(0), Set(axisList).count == axisList.count else {
            throw ImportError("bad slice: starts \(starts), ends \(ends), axes \(axisList), steps \(stepList) of shape \(dims)")
        }
        var kept: [[Int]] = dims.map { Array(0..<$0) }
        for (k, axis) in axisList.enumerated() {
            let n = dims[axis], step = stepList[k]
            func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { min(max(v < 0 ? (SizeArithmetic.add(v, n) ?? lo) : v, lo), hi) }
            var list: [Int] = []
            if step > 0 {
                var i = clamp(starts[k], 0, n)
                let e = clamp(ends[k], 0, n)
                while i < e {
                    list.append(i)
                    guard let next = SizeArithmetic.add(i, step) else { break }
                    i = next
                }
            } else {
                var i = clamp(starts[k], -1, n - 1)
                let e = clamp(ends[k], -1, n - 1)
                while i > e {
                    list.append(i)
                    guard let next = SizeArithmetic.add(i, step) else { break }
                    i = next
                }
            }
            kept[axis] = list
        }
        bind(c, 0, .constant(ConstTensor(dims: kept.map(\.count), values: gather(t.values, dims: dims, kept: kept),
                                         isInteger: t.isInteger)))
    }

    /// The elements of a row-major tensor of `dims` at every combination of the kept indices
    /// per axis, in row-major order.
    func gather(_ values: [Double], dims: [Int], kept: [[Int]]) -> [Double] {
        var strides = Array(repeating: 1, count: dims.count)
        for axis in stride(from: dims.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * dims[axis + 1] }
        var out: [Double] = []
        func walk(_ axis: Int, _ offset: Int) {
            if axis == dims.count { out.append(values[offset]); return }
            for i in kept[axis] { walk(axis + 1, offset + i * strides[axis]) }
        }
        if !kept.contains(where: \.isEmpty) { walk(0, 0) }
        return out
    }

    mutating func constantOfShape(_ c: NodeContext) throws {
        let shape = try requireConstant(c, 0, "shape").ints
        guard let count = SizeArithmetic.product(shape), count <= 1 << 24 else {
            throw ImportError("ConstantOfShape of shape \(shape): negative or more than \(1 << 24) elements")
        }
        var fill = ConstTensor(dims: [1], values: [0], isInteger: false)
        if let a = c.attribute("value") {
            do { fill = try a.t.decode(baseDirectory: baseDirectory) } catch { throw ImportError("\(error)") }
        }
        bind(c, 0, .constant(ConstTensor(dims: shape, values: Array(repeating: fill.values.first ?? 0, count: count),
                                         isInteger: fill.isInteger)))
    }

    /// Element-wise arithmetic of two constants (equal shapes, or one with a single element).
    mutating func foldBinary(_ c: NodeContext, _ op: (Double, Double) -> Double) throws {
        let a = try requireConstant(c, 0, "A"), b = try requireConstant(c, 1, "B")
        let integer = a.isInteger && b.isInteger
        func apply(_ x: Double, _ y: Double) -> Double {
            let r = op(x, y)
            return integer ? r.rounded(.towardZero) : r
        }
        let result: ConstTensor
        if a.dims == b.dims {
            result = ConstTensor(dims: a.dims, values: zip(a.values, b.values).map(apply), isInteger: integer)
        } else if b.count == 1 {
            result = ConstTensor(dims: a.dims, values: a.values.map { apply($0, b.values[0]) }, isInteger: integer)
        } else if a.count == 1 {
            result = ConstTensor(dims: b.dims, values: b.values.map { apply(a.values[0], $0) }, isInteger: integer)
        } else {
            throw Unsupported("\(c.opType) of constants of shapes \(a.dims) and \(b.dims)")
        }
        bind(c, 0, .constant(result))
    }

}

extension ONNXImporter {
    /// Every supported operator of the default domain and its handler.
    static let handlers: [String: Handler] = [
        // Layers with parameters or windows.
        "Conv": { try $0.conv($1) },
        "ConvTranspose": { try $0.convTranspose($1) },
        "Gemm": { try $0.gemm($1) },
        "MatMul": { try $0.matMul($1) },
        "BatchNormalization": { try $0.batchNorm($1) },
        "PRelu": { try $0.prelu($1) },
        "MaxPool": { try $0.pool($1, isMax: true) },
        "AveragePool": { try $0.pool($1, isMax: false) },
        "GlobalAveragePool": { try $0.globalPool($1, isMax: false) },
        "GlobalMaxPool": { try $0.globalPool($1, isMax: true) },
        "LRN": { try $0.lrn($1) },
        "ReduceMean": { try $0.reduce($1, isMax: false) },
        "ReduceMax": { try $0.reduce($1, isMax: true) },
        // Activations.
        "Relu": { try $0.activation($1, .relu) },
        "LeakyRelu": { try $0.leakyRelu($1) },
        "Sigmoid": { try $0.activation($1, .sigmoid) },
        "Tanh": { try $0.activation($1, .tanh) },
        "Elu": { try $0.elu($1) },
        "Selu": { try $0.selu($1) },
        "Softplus": { try $0.activation($1, .softplus) },
        "HardSigmoid": { try $0.hardSigmoid($1) },
        "HardSwish": { try $0.activation($1, .hardSwish) },
        "Clip": { try $0.clip($1) },
        // Element-wise arithmetic and layout.
        "Add": { try $0.add($1) },
        "Sum": { try $0.sum($1) },
        "Mul": { try $0.mul($1) },
        "Sub": { try $0.sub($1) },
        "Div": { try $0.div($1) },
        "Softmax": { try $0.softmax($1, log: false) },
        "LogSoftmax": { try $0.softmax($1, log: true) },
        "Concat": { try $0.concat($1) },
        "Flatten": { try $0.flatten($1) },
        "Reshape": { try $0.reshape($1) },
        "Dropout": { try $0.dropout($1) },
        "Identity": { try $0.identity($1) },
        "Pad": { try $0.pad($1) },
        "Split": { try $0.split($1) },
        "Resize": { try $0.resize($1) },
        "Upsample": { try $0.resize($1) },
        "Transpose": { try $0.transposeNode($1) },
        // Constants and shape arithmetic.
        "Constant": { try $0.constantNode($1) },
        "Shape": { try $0.shape($1) },
        "Gather": { try $0.gather($1) },
        "Unsqueeze": { try $0.unsqueeze($1) },
        "Squeeze": { try $0.squeeze($1) },
        "Cast": { try $0.cast($1) },
        "Slice": { try $0.slice($1) },
        "ConstantOfShape": { try $0.constantOfShape($1) },
    ]
}
