// Importing ONNX channel rearrangements of computed values: Slice and Split along the
// channels (ShuffleNet's channel split, `x.chunk(2, dim=1)`) become `slice`; PyTorch's
// channel_shuffle, Reshape to [N, G, C/G, H, W] + Transpose(perm 0,2,1,3,4) + Reshape back
// to [N, C, H, W], becomes one `shuffle groups=G`.
//
// A Reshape never moves data, so a reshaped value is the same cnnc node seen with other ONNX
// dims: the grouped view [N, G, C/G, H, W] of a [N, C, H, W] node, and back. Only Transpose
// reads those dims; any other consumer sees the node's own shape.

import CNNCIR

extension ONNXImporter {
    /// Slice of a computed value: channels (axis 1) with step 1 (`slice`); H and W whole, with
    /// a step (`maxpool size=1 stride=S`: every S-th row and column from the first).
    mutating func computedSlice(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        let rank = x.dims.count
        var starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if c.opset < 10 {
            starts = try c.ints("starts") ?? []; ends = try c.ints("ends") ?? []; axes = try c.ints("axes")
        } else {
            starts = try requireConstant(c, 1, "starts").ints; ends = try requireConstant(c, 2, "ends").ints
            axes = try constant(c, 3)?.ints; steps = try constant(c, 4)?.ints
        }
        let list = axes ?? Array(0..<starts.count)
        let stepList = steps ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, list.count == starts.count, stepList.count == starts.count else {
            throw ImportError("starts \(starts), ends \(ends), axes \(list) and steps \(stepList) differ in length")
        }
        guard rank == 2 || rank == 4 else { throw Unsupported("Slice of a computed value of shape \(x.dims); cnnc slices [N, C, H, W] or [N, F]") }
        var start = 0, end = x.dims[1], stride = [1, 1]
        for (i, a) in list.enumerated() {
            let axis = try normalizeAxis(a, rank: rank), size = x.dims[axis]
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + size : v, 0), size) }
            let s = clamp(starts[i]), e = clamp(ends[i]), step = stepList[i]
            if axis == 1, step == 1 {
                start = s; end = e
            } else if axis >= 2, step >= 1, step <= 4096, s == 0, e == size {
                stride[axis - 2] = step
            } else if !(step == 1 && s == 0 && e == size) {
                throw Unsupported("Slice of axis \(axis) from \(starts[i]) to \(ends[i]) step \(step) of \(x.dims); cnnc slices the channels (axis 1) with step 1, and H and W whole with a step (x[:, :, ::2, ::2])")
            }
        }
        guard start < end else { throw ImportError("Slice keeps no channel (from \(start) to \(end) of \(x.dims[1]))") }
        let strided = stride != [1, 1]
        var source = x.node
        if start != 0 || end != x.dims[1] {
            let name = strided ? names.allocate("\(c.proto.name)_channels", fallback: "slice") : nil
            source = try emit(c, .slice(start: start, end: end), inputs: [x.node], name: name)
        }
        // Every step-th row and column from the first: a 1x1 max pool with that stride.
        if strided {
            try emit(c, .maxPool(PoolAttributes(kernel: Pair(1), stride: Pair(stride[0], stride[1]))), inputs: [source])
            return
        }
        if source == x.node { bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
    }

    /// Split of a computed value along the channels: one `slice` per output.
    mutating func split(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        let rank = x.dims.count
        let axis = try normalizeAxis(try c.int("axis", 0), rank: rank)
        guard axis == 1, rank == 2 || rank == 4 else {
            throw Unsupported("Split along axis \(axis) of \(x.dims); cnnc splits the channels (axis 1) of [N, C, H, W] or [N, F]")
        }
        let channels = x.dims[1], outputs = c.proto.output.count
        var sizes: [Int]
        if c.opset < 13, let list = try c.ints("split") {
            sizes = list
        } else if c.opset >= 13, case .constant(let t)? = try value(c, 1) {
            sizes = try t.ints
        } else {
            let parts = c.opset >= 18 ? try c.int("num_outputs", outputs) : outputs
            guard parts > 0 else { throw ImportError("Split into \(parts) parts") }
            // ONNX: equal parts, the last one smaller when the channels do not divide.
            let size = (channels + parts - 1) / parts
            sizes = (0..<parts).map { min(size, max(channels - $0 * size, 0)) }
        }
        // Each size at most the channel count first, so that the sum cannot overflow.
        guard sizes.count == outputs, sizes.allSatisfy({ $0 > 0 && $0 <= channels }), sizes.reduce(0, +) == channels else {
            throw ImportError("split sizes \(sizes) for \(outputs) outputs do not add up to the \(channels) channels")
        }
        var start = 0
        for (i, size) in sizes.enumerated() {
            defer { start += size }
            guard !c.proto.output[i].isEmpty else { continue }
            let name = names.allocate(c.proto.output[i], fallback: "split")
            try emit(c, .slice(start: start, end: start + size), inputs: [x.node], name: name, output: i)
        }
    }

    /// Transpose: the channel groups of a channel shuffle (a [N, G, C/G, H, W] view, perm
    /// [0, 2, 1, 3, 4]) is `shuffle groups=G`; the identity permutation is nothing.
    mutating func transposeNode(_ c: NodeContext) throws {
        if case .constant(let t)? = try value(c, 0) {
            // A constant (PyTorch's exported F.pad transposes its [2, k] pads): permuted at import.
            let perm = try c.ints("perm") ?? Array((0..<t.dims.count).reversed())
            guard perm.sorted() == Array(0..<t.dims.count) else { throw ImportError("perm \(perm) is no permutation of \(t.dims.count) axes") }
            var strides = Array(repeating: 1, count: t.dims.count)
            for axis in stride(from: t.dims.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * t.dims[axis + 1] }
            let dims = perm.map { t.dims[$0] }
            var out: [Double] = []
            out.reserveCapacity(t.count)
            func walk(_ axis: Int, _ offset: Int) {
                if axis == dims.count { out.append(t.values[offset]); return }
                for i in 0..<dims[axis] { walk(axis + 1, offset + i * strides[perm[axis]]) }
            }
            if t.count > 0 { walk(0, 0) }
            return bind(c, 0, .constant(ConstTensor(dims: dims, values: out, isInteger: t.isInteger)))
        }
        let x = try tensor(c, 0)
        let perm = try c.ints("perm") ?? Array((0..<x.dims.count).reversed())
        if perm == Array(0..<x.dims.count) { return bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
        guard x.dims.count == 5, perm == [0, 2, 1, 3, 4], let producer = node(named: x.node), producer.shape.rank == 3,
              producer.shape.dims == [x.dims[1] * x.dims[2], x.dims[3], x.dims[4]] else {
            throw Unsupported("Transpose with perm \(perm) of \(x.dims); cnnc transposes only the channel groups of a channel shuffle (Reshape to [N, G, C/G, H, W], perm [0, 2, 1, 3, 4], Reshape back)")
        }
        try emit(c, .shuffle(groups: x.dims[1]), inputs: [x.node])
        bind(c, 0, .tensor(node: try nodeName(of: c), dims: [x.dims[0], x.dims[2], x.dims[1], x.dims[3], x.dims[4]]))
    }

    /// The cnnc node that now computes output 0 of `c`.
    private func nodeName(of c: NodeContext) throws -> String {
        guard case .tensor(let node, _)? = values[c.proto.output[0]] else { throw ImportError("compiler bug: no output") }
        return node
    }
}

extension ONNXImporter {
    /// Resize (opset 10+) and Upsample (before 10) by whole factors of H and W (N and C kept):
    /// nearest with coordinates that pick `in[h / S]` (asymmetric with floor, PyTorch's
    /// `F.interpolate(mode="nearest")`, or half_pixel with round_prefer_floor/ceil, ONNX's
    /// defaults) becomes `upsample scale=SHxSW`; linear (opset 11+) with half_pixel or
    /// pytorch_half_pixel (PyTorch's `mode="bilinear"`; the two agree for whole factors) or
    /// align_corners becomes `upsample mode=bilinear`.
    mutating func resize(_ c: NodeContext) throws {
        let x = try tensor(c, 0)
        guard x.dims.count == 4 else { throw Unsupported("\(c.opType) of \(x.dims); cnnc upsamples [N, C, H, W]") }
        let mode = try c.string("mode", "nearest")
        guard mode == "nearest" || mode == "linear" else {
            throw Unsupported("mode '\(mode)'; cnnc upsamples by nearest neighbour or linear (bilinear) interpolation")
        }
        var alignCorners = false
        var scales: [Double]?
        if mode == "linear" {
            let coordinates = c.opType == "Resize" && c.opset >= 11
                ? try c.string("coordinate_transformation_mode", "half_pixel") : "asymmetric"
            guard ["half_pixel", "pytorch_half_pixel", "align_corners"].contains(coordinates) else {
                throw Unsupported("linear with coordinate_transformation_mode '\(coordinates)'; cnnc interpolates with half_pixel, pytorch_half_pixel (align_corners=False) or align_corners")
            }
            alignCorners = coordinates == "align_corners"
            if case .constant(let t)? = try value(c, 2), t.count > 0 { scales = t.values }
            else if case .constant(let t)? = try value(c, 3), t.count == 4 {
                scales = zip(t.values, x.dims).map { $0 / Double(max($1, 1)) }
            }
        } else if c.opType == "Upsample" {
            if c.opset < 9, let list = c.attribute("scales")?.floats { scales = list.map(Double.init) }
            else if case .constant(let t)? = try value(c, 1) { scales = t.values }
        } else {
            let coordinates = try c.string("coordinate_transformation_mode", "half_pixel")
            let rounding = try c.string("nearest_mode", "round_prefer_floor")
            let floorPick = (coordinates == "asymmetric" && rounding == "floor")
                || (["half_pixel", "pytorch_half_pixel"].contains(coordinates) && rounding.hasPrefix("round_prefer"))
            guard floorPick else {
                throw Unsupported("coordinate_transformation_mode '\(coordinates)' with nearest_mode '\(rounding)'; cnnc picks in[h / S] (asymmetric + floor, or half_pixel + round_prefer_floor)")
            }
            let scaleInput = c.opset >= 11 ? 2 : 1, sizeInput = 3
            if case .constant(let t)? = try value(c, scaleInput), t.count > 0 { scales = t.values }
            else if c.opset >= 11, case .constant(let t)? = try value(c, sizeInput), t.count == 4 {
                scales = zip(t.values, x.dims).map { $0 / Double(max($1, 1)) }
            }
        }
        guard let s = scales, s.count == 4 else { throw Unsupported("\(c.opType) without constant scales or sizes for [N, C, H, W]") }
        let whole = s.map { $0.rounded() }
        guard s[0] == 1, s[1] == 1, zip(s, whole).allSatisfy({ $0 == $1 }), whole[2] >= 1, whole[3] >= 1,
              whole[2] <= 4096, whole[3] <= 4096 else {
            throw Unsupported("scales \(s); cnnc upsamples H and W by whole factors (N and C by 1)")
        }
        let scale = Pair(Int(whole[2]), Int(whole[3]))
        if scale == Pair(1) { return bind(c, 0, .tensor(node: x.node, dims: x.dims)) }
        try emit(c, .upsample(UpsampleAttributes(scale: scale, mode: mode == "linear" ? .bilinear : .nearest,
                                                 alignCorners: alignCorners)), inputs: [x.node])
    }
}
