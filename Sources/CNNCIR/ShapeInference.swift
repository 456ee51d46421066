// Shape inference for every op, with user-facing diagnostics. Output sizes of conv and pool
// follow PyTorch: floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1,
// and with ceil_mode the division rounds up unless the last window would start in the
// end padding.

/// Largest number of elements one value or parameter may hold (per sample for values).
public let maxElements = Int(Int32.max)

extension Graph {
    /// Fills in every node's output shape. Returns the problems found; a node whose inputs
    /// failed is skipped silently so that one mistake gives one message.
    @discardableResult
    public mutating func inferShapes() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        var known: [String: Shape] = [:]
        for i in nodes.indices {
            let node = nodes[i]
            let inputShapes = node.inputs.compactMap { known[$0] }
            guard inputShapes.count == node.inputs.count else {
                nodes[i].shape = Shape([])
                continue
            }
            switch ShapeRules.output(of: node, inputs: inputShapes) {
            case .success(let shape):
                if let empty = shape.dims.firstIndex(where: { $0 < 1 }) {
                    // Zero-size values (a layer of 0 filters or units) have no C or interpreter meaning.
                    diagnostics.append(.error(
                        "\(node.displayName) output \(shape) has dimension \(empty) of size \(shape.dims[empty]); every size must be at least 1",
                        at: node.location))
                    nodes[i].shape = Shape([])
                } else if shape.count > maxElements {
                    diagnostics.append(.error(
                        "\(node.displayName) output \(shape) has \(shape.count) elements per sample (limit \(maxElements))",
                        at: node.location))
                    nodes[i].shape = Shape([])
                } else {
                    nodes[i].shape = shape
                    known[node.name] = shape
                }
            case .failure(let message):
                diagnostics.append(.error(message.description, at: node.location))
                nodes[i].shape = Shape([])
            }
        }
        if diagnostics.isEmpty {
            for p in parameters() where p.count > maxElements {
                let node = nodes.first { $0.name == p.node }
                diagnostics.append(.error(
                    "parameter '\(p.name)' of shape \(p.shape) has \(p.count) elements (limit \(maxElements))",
                    at: node?.location))
            }
        }
        return diagnostics
    }
}

/// The output-shape rule of each op.
public enum ShapeRules {
    /// The output shape of `node` given its input shapes, or a message naming the numbers.
    public static func output(of node: Node, inputs: [Shape]) -> Result<Shape, ShapeError> {
        let name = node.displayName
        func fail(_ message: String) -> Result<Shape, ShapeError> { .failure(ShapeError(message)) }
        let arity = node.op.arity
        if node.op.keyword != nil, !arity.contains(inputs.count) {
            return fail(arity.upperBound == arity.lowerBound
                ? "\(name) takes \(arity.lowerBound) input\(arity.lowerBound == 1 ? "" : "s"), got \(inputs.count)"
                : "\(name) takes at least \(arity.lowerBound) inputs, got \(inputs.count)")
        }
        let x = inputs.first ?? Shape([])
        switch node.op {
        case .input(let shape):
            guard inputs.isEmpty else { return fail("\(name) takes no inputs") }
            return .success(shape)

        case .conv(let a):
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            guard x.c % a.groups == 0 else {
                return fail("\(name) has \(x.c) input channels, not divisible by groups=\(a.groups)")
            }
            guard a.filters % a.groups == 0 else {
                return fail("\(name) has filters=\(a.filters), not divisible by groups=\(a.groups)")
            }
            if a.algorithm == .winograd2x2 || a.algorithm == .winograd4x4 {
                guard a.kernel == Pair(3), a.stride == Pair(1), a.dilation == Pair(1), a.groups == 1 else {
                    return fail("\(name) algorithm=\(a.algorithm.rawValue) needs a 3x3 kernel, stride 1, dilation 1 and groups 1")
                }
            }
            if a.algorithm == .depthwise, !a.isDepthwise(inputChannels: x.c) {
                return fail("\(name) algorithm=depthwise needs groups equal to the input channels (\(x.c)), got groups=\(a.groups)")
            }
            let out = window(name, x, kernel: a.kernel, stride: a.stride, padding: a.padding,
                             dilation: a.dilation, ceilMode: false, channels: a.filters)
            if a.algorithm == .implicit, case .success(let y) = out, !a.implicitApplies(inputWidth: x.w, outputWidth: y.w) {
                return fail("\(name) algorithm=implicit needs an output no wider than the input divided by the stride (got \(y.w) from \(x.w) at stride \(a.stride.w)) and at most \(ConvAttributes.implicitMaxTaps) taps")
            }
            if a.epilogue.residual, case .success(let y) = out, inputs[1] != y {
                return fail("\(name) residual input '\(node.inputs[1])' is \(inputs[1]), expected \(y)")
            }
            return out

        case .convTranspose(let a):
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            guard x.c % a.groups == 0 else {
                return fail("\(name) has \(x.c) input channels, not divisible by groups=\(a.groups)")
            }
            guard a.filters % a.groups == 0 else {
                return fail("\(name) has filters=\(a.filters), not divisible by groups=\(a.groups)")
            }
            // (size - 1) * stride - pad_before - pad_after + dilation * (kernel - 1) + output_pad + 1
            func extent(_ size: Int, _ stride: Int, _ before: Int, _ after: Int, _ dilation: Int, _ kernel: Int,
                        _ extra: Int) -> Int? {
                guard let spread = SizeArithmetic.multiply(size - 1, stride),
                      let taps = SizeArithmetic.multiply(dilation, kernel - 1),
                      let full = SizeArithmetic.add(spread, taps).flatMap({ SizeArithmetic.add($0, extra + 1) })
                else { return nil }
                return full - before - after
            }
            guard let h = extent(x.h, a.stride.h, a.padding.top, a.padding.bottom, a.dilation.h, a.kernel.h, a.outputPadding.h),
                  let w = extent(x.w, a.stride.w, a.padding.left, a.padding.right, a.dilation.w, a.kernel.w, a.outputPadding.w),
                  h <= maxDimension, w <= maxDimension else {
                return fail("\(name) output is too large (limit \(maxDimension) per dimension)")
            }
            guard h >= 1, w >= 1 else {
                return fail("\(name) padding \(a.padding) leaves no output from a \(x.h)x\(x.w) input (\(h)x\(w))")
            }
            return .success(Shape([a.filters, h, w]))

        case .dense(let a):
            guard x.rank >= 1 else { return fail("\(name) needs an input, got a scalar") }
            if a.epilogue.residual, inputs[1] != Shape([a.units]) {
                return fail("\(name) residual input '\(node.inputs[1])' is \(inputs[1]), expected \(a.units)")
            }
            return .success(Shape([a.units]))

        case .activation, .dropout:
            return .success(x)

        case .prelu(let a):
            guard a.shared || x.rank >= 1 else { return fail("\(name) per-channel slopes need channels") }
            return .success(x)

        case .batchNorm:
            guard x.rank == 1 || x.rank == 3 else {
                return fail("\(name) needs a CxHxW or F input, got \(x)")
            }
            return .success(x)

        case .lrn:
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            return .success(x)

        case .maxPool(let a), .avgPool(let a):
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            let p = a.padding
            guard max(p.top, p.bottom) * 2 <= a.kernel.h, max(p.left, p.right) * 2 <= a.kernel.w else {
                return fail("\(name) pad=\(p) is more than half the window \(a.kernel)")
            }
            return window(name, x, kernel: a.kernel, stride: a.stride, padding: a.padding,
                          dilation: Pair(1), ceilMode: a.ceilMode, channels: x.c)

        case .globalAvgPool, .globalMaxPool:
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            return .success(Shape([x.c, 1, 1]))

        case .flatten:
            return .success(Shape([x.count]))

        case .softmax, .logSoftmax:
            guard x.rank == 1 || x.rank == 3 else { return fail("\(name) needs a CxHxW or F input, got \(x)") }
            return .success(x)

        case .add:
            for (i, s) in inputs.enumerated() where s != x {
                return fail("\(name) needs inputs of one shape, got \(x) ('\(node.inputs[0])') and \(s) ('\(node.inputs[i])')")
            }
            return .success(x)

        case .shuffle(let groups):
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            guard x.c % groups == 0 else {
                return fail("\(name) has \(x.c) channels, not divisible by groups=\(groups)")
            }
            return .success(x)

        case .slice(let start, let end):
            guard x.rank == 1 || x.rank == 3 else { return fail("\(name) needs a CxHxW or F input, got \(x)") }
            guard start < end, end <= x.dims[0] else {
                return fail("\(name) keeps channels \(start) to \(end) of an input with \(x.dims[0]) (\(x))")
            }
            var dims = x.dims
            dims[0] = end - start
            return .success(Shape(dims))

        case .pad(let a):
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            let p = a.padding
            if a.mode == .reflect {
                guard max(p.top, p.bottom) < x.h, max(p.left, p.right) < x.w else {
                    return fail("\(name) mode=reflect pads \(p) need an input larger than the padding, got \(x)")
                }
            }
            guard a.mode == .constant || a.channelsBefore + a.channelsAfter == 0 else {
                return fail("\(name) pads channels only with mode=constant")
            }
            let c = x.c.addingReportingOverflow(a.channelsBefore + a.channelsAfter)
            let h = x.h.addingReportingOverflow(p.top + p.bottom), w = x.w.addingReportingOverflow(p.left + p.right)
            guard !c.overflow, !h.overflow, !w.overflow, c.partialValue <= maxDimension, h.partialValue <= maxDimension,
                  w.partialValue <= maxDimension else {
                return fail("\(name) output is too large (limit \(maxDimension) per dimension)")
            }
            return .success(Shape([c.partialValue, h.partialValue, w.partialValue]))

        case .upsample(let u):
            let scale = u.scale
            guard x.rank == 3 else { return fail("\(name) needs a CxHxW input, got \(x)") }
            let h = x.h.multipliedReportingOverflow(by: scale.h), w = x.w.multipliedReportingOverflow(by: scale.w)
            guard !h.overflow, !w.overflow, h.partialValue <= maxDimension, w.partialValue <= maxDimension else {
                return fail("\(name) output is too large (limit \(maxDimension) per dimension)")
            }
            return .success(Shape([x.c, h.partialValue, w.partialValue]))

        case .binary:
            let y = inputs[1]
            guard ShapeRules.broadcast(y, onto: x) != nil else {
                return fail("\(name) needs a second input of the first's shape \(x), one value per channel (\(x.rank == 3 ? "\(x.c)x1x1" : "\(x.dims.first ?? 1)")) or one value (1), got \(y) ('\(node.inputs[1])')")
            }
            return .success(x)

        case .concat:
            guard x.rank == 1 || x.rank == 3 else { return fail("\(name) needs CxHxW or F inputs, got \(x)") }
            var channels = 0
            for (i, s) in inputs.enumerated() {
                guard s.rank == x.rank, s.dims.dropFirst() == x.dims.dropFirst() else {
                    return fail("\(name) needs inputs that differ only in channels, got \(x) ('\(node.inputs[0])') and \(s) ('\(node.inputs[i])')")
                }
                channels += s.dims[0]
            }
            var dims = x.dims
            dims[0] = channels
            return .success(Shape(dims))
        }
    }

    /// How a binary op's second operand `y` spreads over the first `x`: the number of
    /// consecutive elements of `x` that share one element of `y` (1: same shape; H*W: one per
    /// channel of a CxHxW `x`; all of `x`: one per sample), or nil when `y` does not broadcast.
    public static func broadcast(_ y: Shape, onto x: Shape) -> Int? {
        if y == x { return 1 }
        if y.count == 1, y.dims.allSatisfy({ $0 == 1 }) { return x.count }
        if x.rank >= 1, y.rank == x.rank, y.dims[0] == x.dims[0], y.dims.dropFirst().allSatisfy({ $0 == 1 }) {
            return x.count / max(x.dims[0], 1)
        }
        return nil
    }

    /// One spatial output size of a sliding window, or nil when the window does not fit.
    public static func windowSize(input: Int, kernel: Int, stride: Int, padBegin: Int, padEnd: Int,
                                  dilation: Int, ceilMode: Bool) -> Int? {
        let span = dilation * (kernel - 1) + 1
        let padded = input + padBegin + padEnd
        guard padded >= span else { return nil }
        var out = (padded - span) / stride + 1
        if ceilMode {
            out = (padded - span + stride - 1) / stride + 1
            // PyTorch: the last window must start inside the input or the left padding.
            if (out - 1) * stride >= input + padBegin { out -= 1 }
        }
        return out
    }

    private static func window(_ name: String, _ x: Shape, kernel: Pair, stride: Pair, padding: Padding,
                               dilation: Pair, ceilMode: Bool, channels: Int) -> Result<Shape, ShapeError> {
        let oh = windowSize(input: x.h, kernel: kernel.h, stride: stride.h, padBegin: padding.top,
                            padEnd: padding.bottom, dilation: dilation.h, ceilMode: ceilMode)
        let ow = windowSize(input: x.w, kernel: kernel.w, stride: stride.w, padBegin: padding.left,
                            padEnd: padding.right, dilation: dilation.w, ceilMode: ceilMode)
        guard let oh, let ow else {
            let spanH = dilation.h * (kernel.h - 1) + 1, spanW = dilation.w * (kernel.w - 1) + 1
            let dilated = dilation == Pair(1) ? "" : " (dilated to \(spanH)x\(spanW))"
            return .failure(ShapeError(
                "\(name) window \(kernel.h)x\(kernel.w)\(dilated) is larger than its padded input "
                + "\(x.h + padding.top + padding.bottom)x\(x.w + padding.left + padding.right) (input \(x))"))
        }
        return .success(Shape([channels, oh, ow]))
    }
}

/// Why a shape rule refused its inputs.
public struct ShapeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
