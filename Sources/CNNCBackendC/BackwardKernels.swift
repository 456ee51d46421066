// The backward kernels of the training step, one `static` function per node (llm.c's
// `*_backward`). Each ADDS into the gradients it writes; the caller zeroes them once per step.
// Parallel loops run only over outputs one task owns (conv: d weight per (k, c), d in per
// (sample, input channel) plane; dense: d weight per unit, d in per sample; element-wise ops
// per element; per-channel reductions per channel), each summed in a fixed order, so the
// gradients are bitwise identical at any thread count.
//
// Signature of every backward function, in this order (the training emitter passes
// arguments positionally):
//   1. float *restrict d_in (or d_in0, d_in1, ...) for each input that needs a gradient; without
//      restrict where the node reads the same value twice (add(a, a), concat(a, a)): both
//      pointers are that value's gradient, and each adds its share into it
//   2. float *restrict d_<role> for each trainable, unfrozen parameter, in parameters() order
//   3. const float *restrict d_out
//   4. const float *restrict out            the node's forward output
//   5. const float *restrict in (or in0, in1, ...), every input
//   6. const float *restrict <role>, every parameter in order (weight, bias, running_mean, ...)
//   7. batch norm: const float *restrict saved   (batch mean[C], then 1/sqrt(biased var + eps)[C]),
//      const cnnc_allreduce *sync, int64_t samples (synchronized statistics, see TrainingForwardKernels)
//   8. dropout: uint64_t seed, int64_t step; a convolution whose input gradient runs on the
//      implicit kernel: const float *restrict packed_t (its weights packed transposed, flipped);
//      on Winograd: packed_t (U of those filters), then float *restrict scratch (its workspaces)
//   9. int n
// Arguments a kernel does not read are cast to void.
//
// Glossary for the generated code: N batch (n), C input channels, H W input height and width,
// K output channels, R S kernel height and width, P Q output height and width, G groups;
// CG = C/G and KG = K/G channels per group; I J dense inputs and units; INNER the elements of
// one channel of one sample (H*W, or 1 for vectors).

import CNNCIR

/// What a backward (or training-forward) kernel knows.
struct BackwardContext {
    /// A node of the training graph: no fusion, no folded batch norm, conv algorithm auto or
    /// direct, so conv and dense epilogues are empty.
    var node: Node
    var inputShapes: [Shape]
    /// The C function name, e.g. `node_c1_backward` or `node_bn1_train_forward`.
    var function: String
    /// Per input: whether its gradient is wanted (a `d_in` argument).
    var inputNeedsGrad: [Bool]
    /// This node's parameters in `graph.parameters()` order.
    var parameters: [ParameterSpec]
    /// Per parameter: trainable and not frozen (a `d_<role>` argument).
    var parameterNeedsGrad: [Bool]
    /// Per input: this kernel is the only writer of the input's gradient, so it writes every
    /// element instead of adding into a buffer the caller zeroed (`BackwardKernels.canAssign`
    /// says where a kernel can; empty: it adds everywhere).
    var assignsInput: [Bool] = []
    /// The largest batch the function is called with (`<P>_MAX_BATCH`): Winograd's workspaces.
    var maxBatch = 1

    var x: Shape { inputShapes[0] }
    var y: Shape { node.shape }

    /// A convolution whose input gradient runs on the implicit kernel: it takes the weights
    /// packed transposed and flipped (`packed_t`, from the trainer's state).
    var takesTransposedWeights: Bool {
        if case .conv(let a) = node.op { return ConvBackward.inputTakesPackedTransposed(x: x, y: y, a) }
        return false
    }

    /// A convolution whose input gradient runs on Winograd F(4x4): it also takes the
    /// workspaces (`scratch`, the trainer's arena's end).
    var takesScratch: Bool {
        if case .conv(let a) = node.op { return ConvBackward.inputUsesWinograd(x: x, y: y, a) }
        return false
    }

    /// The C names of the input pointers: `in`, or `in0`, `in1`, ... when there are several.
    var inputNames: [String] {
        inputShapes.count == 1 ? ["in"] : inputShapes.indices.map { "in\($0)" }
    }

    /// Whether input `i`'s gradient is wanted.
    func wantsInput(_ i: Int = 0) -> Bool { inputNeedsGrad[i] }

    /// Whether input `i`'s gradient is written, not added into (see `assignsInput`).
    func assigns(_ i: Int = 0) -> Bool { i < assignsInput.count && assignsInput[i] }

    /// Whether the gradient of the parameter with this role is wanted.
    func wantsParameter(_ role: String) -> Bool {
        zip(parameters, parameterNeedsGrad).contains { $0.role == role && $1 }
    }
}

/// One argument of a generated function: its declaration and its name.
struct KernelParameter {
    var declaration: String
    var name: String

    static func output(_ name: String) -> KernelParameter {
        KernelParameter(declaration: "float *restrict \(name)", name: name)
    }
    /// An output that another argument may point at too (no `restrict`).
    static func sharedOutput(_ name: String) -> KernelParameter {
        KernelParameter(declaration: "float *\(name)", name: name)
    }
    static func input(_ name: String) -> KernelParameter {
        KernelParameter(declaration: "const float *restrict \(name)", name: name)
    }
    static let count = KernelParameter(declaration: "int n", name: "n")
    /// Batch norm in training: `sync` (NULL, or the sum across the processes of a
    /// data-parallel job that makes the batch statistics every process's) and `samples` (the
    /// samples they cover: n, or the global batch with sync).
    static let statisticsSync = [KernelParameter(declaration: "const cnnc_allreduce *sync", name: "sync"),
                                 KernelParameter(declaration: "int64_t samples", name: "samples")]
}

/// Writes the backward function of one node.
enum BackwardKernels {
    /// The arguments of the backward function, in the contract's order.
    static func arguments(_ k: BackwardContext) -> [KernelParameter] {
        var args: [KernelParameter] = []
        // an input read twice gets the same gradient pointer twice: those may not be restrict
        var uses: [String: Int] = [:]
        for input in k.node.inputs { uses[input, default: 0] += 1 }
        for (i, name) in k.inputNames.enumerated() where k.inputNeedsGrad[i] {
            let shared = i < k.node.inputs.count && uses[k.node.inputs[i], default: 0] > 1
            args.append(shared ? .sharedOutput("d_\(name)") : .output("d_\(name)"))
        }
        for (p, wanted) in zip(k.parameters, k.parameterNeedsGrad) where wanted { args.append(.output("d_\(p.role)")) }
        args.append(.input("d_out"))
        args.append(.input("out"))
        for name in k.inputNames { args.append(.input(name)) }
        for p in k.parameters { args.append(.input(p.role)) }
        switch k.node.op {
        case .batchNorm:
            args.append(.input("saved"))
            args += KernelParameter.statisticsSync
        case .dropout:
            args.append(KernelParameter(declaration: "uint64_t seed", name: "seed"))
            args.append(KernelParameter(declaration: "int64_t step", name: "step"))
        case .conv:
            if k.takesTransposedWeights { args.append(.input("packed_t")) }
            if k.takesScratch { args.append(KernelParameter(declaration: "float *restrict scratch", name: "scratch")) }
        case .input, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
             .lrn, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            break
        }
        args.append(.count)
        return args
    }

    /// `static void <function>(<arguments>)`.
    static func signature(_ k: BackwardContext) -> String {
        "static void \(k.function)(\(arguments(k).map(\.declaration).joined(separator: ", ")))"
    }

    /// Writes one complete static function: header comment, signature, body.
    static func emit(_ k: BackwardContext, into w: inout CWriter) {
        check(k)
        let wanted = arguments(k).filter { $0.declaration.hasPrefix("float *") }.map(\.name)  // restrict or not
        let written = k.assignsInput.indices.filter { k.assigns($0) && k.wantsInput($0) }.map { "d_" + k.inputNames[$0] }
        let added = wanted.filter { !written.contains($0) }
        var summary = wanted.isEmpty ? "backward: no gradient is wanted here" : "backward:"
        if !written.isEmpty { summary += " writes every element of \(written.joined(separator: ", ")) (its only writer)" }
        if !written.isEmpty && !added.isEmpty { summary += ";" }
        if !added.isEmpty { summary += " adds into \(added.joined(separator: ", ")) (zeroed by the caller once per step)" }
        writeFunction(k, signature: signature(k), arguments: arguments(k).map(\.name), summary: summary,
                      into: &w) { body(k, &$0) }
    }

    /// Whether the kernel of `k` can write input `i`'s gradient whole instead of adding into a
    /// zeroed buffer (where it is that gradient's only writer, the caller then skips the
    /// zeroing): element-wise activations (d in = d out * f'), pooling (each task zeroes its
    /// own plane, then adds: parallel and in cache, where the caller's memset ran on one
    /// thread), dense (the GEMM without accumulation), batch norm in training (its last loop
    /// gives every element) and the convolutions whose input
    /// gradient runs on the implicit kernel (no residual in the epilogue). The sums are the
    /// same; only an exact zero may come out as -0 where 0 + (-0) gave +0.
    static func canAssign(_ k: BackwardContext, _ i: Int) -> Bool {
        guard i == 0, k.inputShapes.count == 1, k.wantsInput(0) else { return false }
        switch k.node.op {
        case .activation, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .dense, .batchNorm:
            return true
        case .conv(let a):
            return ConvBackward.groupsSuitProduct(x: k.x, a) && ConvBackward.inputTakesPackedTransposed(x: k.x, y: k.y, a)
        case .input, .prelu, .add, .binary, .dropout, .flatten, .lrn, .softmax, .logSoftmax, .concat,
             .shuffle, .slice, .pad, .upsample, .convTranspose:
            return false
        }
    }

    /// Whether the backward of `k.node` reads its forward output `out` (sigmoid, tanh, softmax,
    /// log softmax); when not, the argument is still passed and cast to void.
    static func readsOutput(_ k: BackwardContext) -> Bool {
        check(k)
        var w = CWriter()
        body(k, &w)
        return identifiers(w.text).contains("out")
    }

    /// Whether the backward of `k.node` reads forward input `i`.
    static func readsInput(_ k: BackwardContext, _ i: Int = 0) -> Bool {
        check(k)
        var w = CWriter()
        body(k, &w)
        return identifiers(w.text).contains(k.inputNames[i])
    }

    /// The statements of the backward function, one loop nest per gradient.
    static func body(_ k: BackwardContext, _ w: inout CWriter) {
        switch k.node.op {
        case .conv(let a): ConvBackward.emit(k, a, &w)
        case .dense: DenseBackward.emit(k, &w)
        case .activation(let act): ElementwiseBackward.activation(k, act, &w)
        case .prelu(let a): ElementwiseBackward.prelu(k, a, &w)
        case .add: ElementwiseBackward.add(k, &w)
        case .binary(let op): ElementwiseBackward.binary(k, op, &w)
        case .dropout(let rate): ElementwiseBackward.dropout(k, rate: rate, &w)
        case .flatten: ElementwiseBackward.flatten(k, &w)
        case .maxPool(let a): PoolBackward.max(k, a, &w)
        case .avgPool(let a): PoolBackward.average(k, a, &w)
        case .globalAvgPool: PoolBackward.globalAverage(k, &w)
        case .globalMaxPool: PoolBackward.globalMax(k, &w)
        case .lrn(let a): NormBackward.lrn(k, a, &w)
        case .batchNorm: NormBackward.batchNorm(k, &w)
        case .softmax: NormBackward.softmax(k, log: false, &w)
        case .logSoftmax: NormBackward.softmax(k, log: true, &w)
        case .concat: LayoutBackward.concat(k, &w)
        case .shuffle(let groups): LayoutBackward.shuffle(k, groups: groups, &w)
        case .slice(let start, let end): LayoutBackward.slice(k, start: start, end: end, &w)
        case .pad(let a): LayoutBackward.pad(k, a, &w)
        case .upsample(let a): LayoutBackward.upsample(k, a, &w)
        case .convTranspose(let a): ConvTransposeBackward.emit(k, a, &w)
        case .input: fatalError("compiler bug: \(k.node.displayName) has no backward kernel")
        }
    }

    /// The training graph's invariants this file relies on; a violation is a compiler bug.
    static func check(_ k: BackwardContext) {
        precondition(k.inputNeedsGrad.count == k.inputShapes.count && k.inputShapes.count == k.node.inputs.count,
                     "compiler bug: \(k.node.displayName): \(k.inputShapes.count) input shapes, \(k.inputNeedsGrad.count) flags")
        precondition(k.parameterNeedsGrad.count == k.parameters.count,
                     "compiler bug: \(k.node.displayName): \(k.parameters.count) parameters, \(k.parameterNeedsGrad.count) flags")
        switch k.node.op {
        case .conv(let a):
            precondition(a.epilogue.isEmpty, "compiler bug: \(k.node.displayName) has a fused epilogue in the training graph")
        case .dense(let a):
            precondition(a.epilogue.isEmpty, "compiler bug: \(k.node.displayName) has a fused epilogue in the training graph")
        case .input, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
             .batchNorm, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            break
        }
    }

    /// Writes `/* header */ signature { (void) casts; body }`. The body is written first so
    /// that exactly the arguments it never names are cast to void (`-Wunused-parameter`).
    static func writeFunction(_ k: BackwardContext, signature: String, arguments: [String], summary: String,
                              into w: inout CWriter, body: (inout CWriter) -> Void) {
        var inner = CWriter()
        body(&inner)
        let used = identifiers(inner.text)
        var header = "\(k.node.displayName): \(KernelEmitter.describe(k.node))"
        if let loc = k.node.location { header += "\n\(loc.description)" }
        header += "\n\(summary)"
        header += "\n" + shapeComment(k, arguments: arguments)
        w.comment(header)
        w.block(signature) { w in
            let unused = arguments.filter { !used.contains($0) }
            if !unused.isEmpty { w.line(unused.map { "(void)\($0);" }.joined(separator: " ")) }
            var text = inner.text
            if text.hasSuffix("\n") { text.removeLast() }
            if !text.isEmpty { w.lines(text) }
        }
        w.line()
    }

    /// `d_in, in are (N,3,8,8); d_out, out are (N,4,8,8); weight is (4,3,3,3)`.
    static func shapeComment(_ k: BackwardContext, arguments: [String]) -> String {
        var groups: [(shape: String, names: [String])] = []
        func add(_ name: String, _ shape: String) {
            guard arguments.contains(name) else { return }
            if let i = groups.firstIndex(where: { $0.shape == shape }) { groups[i].names.append(name) } else {
                groups.append((shape, [name]))
            }
        }
        func batched(_ s: Shape) -> String { "(N," + s.dims.map(String.init).joined(separator: ",") + ")" }
        for (name, s) in zip(k.inputNames, k.inputShapes) {
            add("d_\(name)", batched(s))
            add(name, batched(s))
        }
        add("d_out", batched(k.y))
        add("out", batched(k.y))
        for p in k.parameters {
            let shape = "(" + p.shape.map(String.init).joined(separator: ",") + ")"
            add("d_\(p.role)", shape)
            add(p.role, shape)
        }
        if case .batchNorm = k.node.op { add("saved", "(2,\(k.y.dims[0]))") }
        return groups.map { "\($0.names.joined(separator: ", ")) \($0.names.count == 1 ? "is" : "are") \($0.shape)" }
            .joined(separator: "; ")
    }

    /// The identifiers of C text outside `/* */` comments.
    static func identifiers(_ text: String) -> Set<String> {
        let bytes = Array(text.utf8)
        var names: Set<String> = []
        var i = 0
        func isPart(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F
        }
        while i < bytes.count {
            if bytes[i] == 0x2F, i + 1 < bytes.count, bytes[i + 1] == 0x2A {
                i += 2
                while i + 1 < bytes.count, !(bytes[i] == 0x2A && bytes[i + 1] == 0x2F) { i += 1 }
                i += 2
            } else if isPart(bytes[i]) {
                let start = i
                while i < bytes.count, isPart(bytes[i]) { i += 1 }
                names.insert(String(decoding: bytes[start..<i], as: UTF8.self))
            } else {
                i += 1
            }
        }
        return names
    }
}

/// A C double literal that reads back to exactly `v` (Swift prints the shortest round trip).
func cDouble(_ v: Double) -> String {
    var s = "\(v)"
    if !s.contains(".") && !s.contains("e") && !s.contains("n") { s += ".0" }
    return s
}

/// Convolution backward. With tap (r, s) of output (p, q) reading input row
/// h = p*SH - PT + r*DH and column w = q*SW - PL + s*DW of input channel g*CG + c:
///   d weight[k,c,r,s] += sum_{b,p,q} d_out[b,k,p,q] * in[b, g*CG + c, h, w]
///   d bias[k]         += sum_{b,p,q} d_out[b,k,p,q]
///   d in[b, g*CG + c, h, w] += sum_{k in group g, r, s, p, q} weight[k,c,r,s] * d_out[b,k,p,q]
/// over the taps inside the input (padding passes no gradient).
enum ConvBackward {
    static func emit(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), DH = \(a.dilation.h), DW = \(a.dilation.w), CG = \(x.c / a.groups), KG = \(a.filters / a.groups) };
        """)
        if k.wantsParameter("weight") {
            if weightUsesFilters(x: k.x, y: k.y, a) {
                weightFilters(k, a, &w)
            } else if weightUsesDirect(x: k.x, y: k.y, a) {
                weightDirect(k, a, &w)
            } else {
                weight(&w)
            }
        }
        if a.bias && k.wantsParameter("bias") { bias(&w) }
        if k.wantsInput() { input(k, a, &w) }
    }

    /// Whether the groups are wide enough for a matrix product (the forward's rule; depthwise
    /// and narrow groups stay direct).
    static func groupsSuitProduct(x: Shape, _ a: ConvAttributes) -> Bool {
        let cg = x.c / a.groups, kg = a.filters / a.groups
        return a.groups == 1 || (kg * a.kernel.h * a.kernel.w >= 32 && cg >= 8)
    }

    /// The weight gradient on `cnnc_conv_weight_grad_direct`: stride 1, an output no wider
    /// than the input and at least 2/3 of it (the columns q >= Q are walked as zeros; the
    /// forward's implicit rule), at most 49 taps, and at least 64 positions per sample: the
    /// kernel keeps its lane sums in registers over a sample's positions only, so smaller
    /// planes (VGG's 4x4, 512 channels: 243 ms of backward against 54 of forward) go to the
    /// GEMM, whose reduction runs over the whole batch.
    static func weightUsesDirect(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        groupsSuitProduct(x: x, a) && a.stride == Pair(1) && y.w <= x.w && 2 * x.w <= 3 * y.w && y.h >= 1
            && a.kernel.h * a.kernel.w <= 49 && y.h * x.w <= Int(Int32.max) / 2
            && y.h * x.w >= 64
    }

    /// Whether a sample's plane of `positions` fills at least half of the 16-lane vectors the
    /// direct kernels walk it in (a 2x2 plane fills a quarter: there the GEMMs, whose columns
    /// run over the whole batch, do better).
    static func fillsLanes(positions: Int) -> Bool {
        2 * positions >= (positions + 15) / 16 * 16
    }

    /// The input gradient on the implicit kernel (`cnnc_conv_direct` over d out with the
    /// filters packed transposed and flipped): stride 1, the "full" convolution's padding not
    /// negative, the input no wider than the output (`cnnc_conv_direct_fits` of that geometry),
    /// at most 49 taps.
    static func inputUsesImplicit(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        guard groupsSuitProduct(x: x, a), a.stride == Pair(1), a.kernel.h * a.kernel.w <= 49 else { return false }
        let fullTop = (a.kernel.h - 1) * a.dilation.h - a.padding.top, fullLeft = (a.kernel.w - 1) * a.dilation.w - a.padding.left
        return fullTop >= 0 && fullLeft >= 0 && x.w <= y.w && x.h * y.w <= Int(Int32.max) / 2
            && fillsLanes(positions: x.h * y.w)
    }

    /// The floats of one sample's d out padded for `inputPaddedImplicit` (zero rows and
    /// columns around it so that the full convolution needs no padding), or nil where that
    /// path does not apply: stride 1, a "valid"-like layer whose input is wider than its output
    /// (so `inputUsesImplicit` cannot number positions over d out's width), the full
    /// convolution's padding not negative on any side, at most 49 taps, the padded rows at most
    /// half again as wide as d in's, and the buffer at most 16,384 floats (64 KiB of stack).
    static func inputPaddedFloats(x: Shape, y: Shape, _ a: ConvAttributes) -> Int? {
        guard groupsSuitProduct(x: x, a), a.stride == Pair(1), a.kernel.h * a.kernel.w <= 49,
              !inputUsesImplicit(x: x, y: y, a) else { return nil }
        let reachH = (a.kernel.h - 1) * a.dilation.h, reachW = (a.kernel.w - 1) * a.dilation.w
        let top = reachH - a.padding.top, left = reachW - a.padding.left
        let bottom = reachH - a.padding.bottom, right = reachW - a.padding.right
        guard top >= 0, left >= 0, bottom >= 0, right >= 0 else { return nil }
        // every factor is bounded by 16,384 floats before any product that could overflow
        // rows of d in's width plus the forward's right padding (`inputPaddedImplicit`)
        let hp = x.h + reachH, wb = x.w + a.padding.right, kg = a.filters / a.groups
        guard hp <= 16_384, wb <= 16_384, kg <= 16_384, hp * wb <= 16_384, kg * hp * wb <= 16_384 else { return nil }
        guard 2 * wb <= 3 * x.w, fillsLanes(positions: x.h * wb) else { return nil }
        return kg * hp * wb
    }

    /// The weight gradient with the filters in the lanes (`cnnc_conv_weight_grad_filters`):
    /// any stride, padding and dilation the runtime computes (`filtersFit`), at least 8 filters
    /// a group, and where those fill their 16-filter blocks at least half as well as the
    /// outputs fill the direct kernel's positions (P x W of which P x Q are outputs, stride 1):
    /// the direct kernel runs at about half the filters kernel's rate per useful lane (ResNet's
    /// 16-channel 3x3 layer at batch 64, 1 thread, Zen 3: 11.2 ms direct, 5.4 ms filters; LeNet's
    /// c2: 1.35 -> 0.54 ms). Where the direct kernel does not apply it replaces the GEMM
    /// (ResNet-20's stride-2 layers: backward 13-15 -> 8 ms), except on planes of fewer than 64
    /// outputs, where its calls cover 4-16 positions a sample and the GEMM's columns run over
    /// the whole batch (VGG-11's 4x4 and 2x2 layers were no faster with it at 2 threads).
    static func weightUsesFilters(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        let kg = a.filters / a.groups
        guard groupsSuitProduct(x: x, a), kg >= 8, y.h * y.w >= 64, filtersFit(x: x, y: y, a) else { return false }
        guard weightUsesDirect(x: x, y: y, a) else { return true }
        return 2 * kg * x.w >= (kg + 15) / 16 * 16 * y.w
    }

    /// `cnnc_conv_weight_grad_filters_fits` in Swift (checked arithmetic): at most 49 taps; where
    /// a tap can leave the image (padding, or reads past the bottom or right), a sample's
    /// channel, zero-bordered, at most 16,384 floats (the kernel's stack buffer).
    static func filtersFit(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        let limit = Int(Int32.max) / 4
        let all = [a.padding.top, a.padding.left, x.h, x.w, y.h, y.w]
        guard a.kernel.h * a.kernel.w <= 49, all.allSatisfy({ $0 >= 0 && $0 <= limit }), y.h >= 1, y.w >= 1,
              a.stride.h >= 1, a.stride.w >= 1, a.dilation.h >= 1, a.dilation.w >= 1,
              let spanH = SizeArithmetic.multiply(y.h - 1, a.stride.h),
              let tapsH = SizeArithmetic.multiply(a.kernel.h - 1, a.dilation.h),
              let spanW = SizeArithmetic.multiply(y.w - 1, a.stride.w),
              let tapsW = SizeArithmetic.multiply(a.kernel.w - 1, a.dilation.w),
              let reachH = SizeArithmetic.add(spanH, tapsH + 1), let reachW = SizeArithmetic.add(spanW, tapsW + 1)
        else { return false }
        let hp = max(reachH, x.h + a.padding.top), wp = max(reachW, x.w + a.padding.left)
        guard let plane = SizeArithmetic.multiply(hp, wp), hp <= limit * 2, wp <= limit * 2, plane <= limit * 2
        else { return false }
        let padded = a.padding.top != 0 || a.padding.left != 0 || hp != x.h || wp != x.w
        return !padded || plane <= 16_384
    }

    /// d weight through `cnnc_conv_weight_grad_filters`: one task per (group, block of 16
    /// filters, block of input channels), the channels cut at run time only as far as the
    /// team needs for equal shares (`cnnc_blocks_for_team`).
    static func weightFilters(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        w.comment("""
        d weight[k][c][r][s] += sum over samples and positions of d out[k] * in[c] at tap (r, s),
        in the runtime (cnnc_conv_weight_grad_filters: the filters in the vector lanes, over the
        output's own positions, each sample's channels zero-bordered where taps leave the image);
        one task per (group, block of 16 filters, block of input channels), the channels cut
        only as far as the threads need to share the tasks evenly: every task reads all of its
        filters' d out (ResNet's 16-channel layer at 1 thread: 5.6 ms whole, 11.5 ms in 8
        blocks); each weight one chain over samples, then positions, whatever the cut
        """)
        w.line("enum { CRS = CG * R * S, PQ = P * Q, RS = R * S, MB = 16, MBLOCKS = (KG + MB - 1) / MB };")
        w.line("const int cblocks = cnnc_blocks_for_team((K / KG) * MBLOCKS, CG);")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int t = 0; t < (K / KG) * MBLOCKS; t++)") { w in
            w.block("for (int cb = 0; cb < cblocks; cb++)") { w in
                w.line("const int g = t / MBLOCKS, k0 = g * KG + (t % MBLOCKS) * MB;")
                w.line("const int mb = (g + 1) * KG - k0 < MB ? (g + 1) * KG - k0 : MB;")
                w.line("const int c0 = CG * cb / cblocks, c1 = CG * (cb + 1) / cblocks;")
                w.line("const cnnc_conv_geometry geometry = {c1 - c0, H, W, R, S, SH, SW, PT, PL, DH, DW, P, Q};")
                w.line("cnnc_conv_weight_grad_filters(&geometry, mb, 0, RS, d_out + (size_t)k0 * PQ, (size_t)K * PQ, n, in + (size_t)(g * CG + c0) * H * W, (size_t)C * H * W, d_weight + (size_t)k0 * CRS + (size_t)c0 * RS, CRS);")
            }
        }
    }

    /// d weight through `cnnc_conv_weight_grad_direct_taps`: no im2col, the reduction along
    /// contiguous positions.
    static func weightDirect(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let cg = k.x.c / a.groups
        // tasks of the micro-kernel's rows and 8 channels (whose lane sums fill the kernel's
        // buffer for 3x3); where that makes fewer than 8 tasks (LeNet's c1: 6 filters of one
        // channel was one task, the other thread idle), the taps are split too
        let cb = min(cg, 8)
        w.comment("""
        d weight[k][c][r][s] += sum over samples and positions of d out[k] * in[c] at tap (r, s),
        in the runtime (cnnc_conv_weight_grad_direct_taps: no im2col, the sum along contiguous
        positions); one task per (group, block of CNNC_WG_ROWS output channels, block of \(cb)
        input channels, block of taps in triples: at least 8 tasks where the taps allow), each
        weight summed in an order the blocks do not change
        """)
        w.lines("""
        enum { CRS = CG * R * S, PQ = P * Q, RS = R * S, MB = CNNC_WG_ROWS, MBLOCKS = (KG + MB - 1) / MB, CB = \(cb), CBLOCKS = (CG + CB - 1) / CB };
        enum { TRIPLES = (RS + 2) / 3, BASE = (K / KG) * MBLOCKS * CBLOCKS, WANT = BASE >= 8 ? 1 : (8 + BASE - 1) / BASE, TBLOCKS = WANT < TRIPLES ? WANT : TRIPLES };
        """)
        w.line("#pragma omp parallel for collapse(3) schedule(static)")
        w.block("for (int t = 0; t < (K / KG) * MBLOCKS; t++)") { w in
            w.block("for (int cb = 0; cb < CBLOCKS; cb++)") { w in
                w.block("for (int tb = 0; tb < TBLOCKS; tb++)") { w in
                    w.line("const int g = t / MBLOCKS, k0 = g * KG + (t % MBLOCKS) * MB;")
                    w.line("const int mb = (g + 1) * KG - k0 < MB ? (g + 1) * KG - k0 : MB;")
                    w.line("const int c0 = cb * CB, nc = CG - c0 < CB ? CG - c0 : CB;")
                    w.line("const int tap0 = 3 * (TRIPLES * tb / TBLOCKS), tap1 = 3 * (TRIPLES * (tb + 1) / TBLOCKS) < RS ? 3 * (TRIPLES * (tb + 1) / TBLOCKS) : RS;")
                    w.line("const cnnc_conv_geometry geometry = {nc, H, W, R, S, 1, 1, PT, PL, DH, DW, P, Q};")
                    w.line("cnnc_conv_weight_grad_direct_taps(&geometry, mb, tap0, tap1, d_out + (size_t)k0 * PQ, (size_t)K * PQ, n, in + (size_t)(g * CG + c0) * H * W, (size_t)C * H * W, d_weight + (size_t)k0 * CRS + (size_t)c0 * R * S, CRS);")
                }
            }
        }
    }

    /// The output columns [q0, q1) whose tap column q*SW - PL + s*DW lies in [0, W).
    static func columns(_ w: inout CWriter) {
        w.line("int q0 = 0, q1 = Q;")
        w.line("while (q0 < Q && q0 * SW - PL + s * DW < 0) q0++;")
        w.line("while (q1 > q0 && (q1 - 1) * SW - PL + s * DW >= W) q1--;")
    }

    static func weight(_ w: inout CWriter) {
        w.comment("""
        d weight[KG x CG*R*S] += d out[KG x n*P*Q] * im2col(in)^T per group, through the runtime's
        GEMM; one task per (group, block of up to 512 output channels, block of 64 weight columns):
        each packed block of im2col(in)^T serves all of a group's channels; every element sums
        samples and positions in order, whatever the blocks
        """)
        w.lines("""
        enum { CRS = CG * R * S, PQ = P * Q, MB = KG <= 512 ? KG : 128, MBLOCKS = (KG + MB - 1) / MB, NB = 64, NBLOCKS = (CRS + NB - 1) / NB };
        static const cnnc_conv_geometry geometry = {CG, H, W, R, S, SH, SW, PT, PL, DH, DW, P, Q};
        """)
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int t = 0; t < (K / KG) * MBLOCKS; t++)") { w in
            w.block("for (int jb = 0; jb < NBLOCKS; jb++)") { w in
                w.line("const int g = t / MBLOCKS, k0 = g * KG + (t % MBLOCKS) * MB;")
                w.line("const int mb = (g + 1) * KG - k0 < MB ? (g + 1) * KG - k0 : MB;")
                w.line("const int j0 = jb * NB, nj = CRS - j0 < NB ? CRS - j0 : NB;")
                w.line("cnnc_sgemm_conv_weight_grad(mb, nj, n * PQ, d_out + (size_t)k0 * PQ, (size_t)K * PQ, &geometry, in + (size_t)g * CG * H * W, (size_t)C * H * W, 0, j0, d_weight + (size_t)k0 * CRS + j0, CRS, 1);")
            }
        }
    }

    static func bias(_ w: inout CWriter) {
        w.comment("""
        d bias: one task per output channel, summed over samples, each sample's positions in
        vector lanes (omp simd: an order fixed by the build, not the thread count; one chain of
        n*P*Q additions was 0.2 ms of LeNet's step)
        """)
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int k = 0; k < K; k++)") { w in
            w.line("float acc = 0.0f;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const float *restrict dy = d_out + ((size_t)b * K + k) * (P * Q);")
                w.line("#pragma omp simd reduction(+:acc)")
                w.line("for (int i = 0; i < P * Q; i++) acc += dy[i];")
            }
            w.line("d_bias[k] += acc;")
        }
    }

    /// The input gradient as the full convolution on the GEMM (im2col of d out packed per call,
    /// the filters packed once per step): stride 1 where the implicit kernel does not take it,
    /// with at least 32 input channels. The full convolution's im2col copies KG*R*S floats per
    /// position for CG rows: with fewer input channels the product W^T * d out and col2im's
    /// scatter cost less (LeNet's c2, 6 channels: 11.2 -> 6.8 ms a step at batch 64; it now
    /// takes `inputPaddedImplicit`: c2's backward 5.4 -> 2.6-3.8 ms at 1 thread, Zen 3).
    static func inputUsesFullGemm(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        groupsSuitProduct(x: x, a) && !inputUsesImplicit(x: x, y: y, a) && a.stride == Pair(1) && x.c / a.groups >= 32
    }

    /// Whether the backward reads the filters packed transposed and flipped (`packed_t`, packed
    /// once per step by the trainer): the implicit input gradient. The full-convolution GEMM
    /// could read them too (a packed variant of `cnnc_sgemm_conv_input_grad`, since removed),
    /// but that copy put VGG-11-BN's trainer at 311 MB against PyTorch's 293 (its 2x2 layers'
    /// filters twice more, 38 MB with the forward's packed copy) for 2% of a step: it packs them
    /// per task instead. The Winograd input gradient reads `packed_t` too: U of those filters,
    /// which the caller transforms just before the call (`TrainingLayout.winogradTransform`).
    static func inputTakesPackedTransposed(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        inputUsesWinograd(x: x, y: y, a) || inputUsesImplicit(x: x, y: y, a) || inputPaddedFloats(x: x, y: y, a) != nil
    }

    /// The input gradient on Winograd F(4x4) where the forward runs on it (select-conv-algorithm:
    /// 3x3, stride 1, one group, wide enough): the full convolution of d out (the forward's
    /// filters as channels) with U of the filters transposed and turned, padding 2 - PT and
    /// 2 - PL (so at most 2), at most 512 filters (the estimated error of a reduction over
    /// 9 x 512 is 8e-5, within the 1e-4 budget). ResNet-20's 64-channel 8x8 layers at batch 64
    /// took 1.8 ms forward on it against 2.0 on the implicit kernel (2 threads, Zen 3).
    static func inputUsesWinograd(x: Shape, y: Shape, _ a: ConvAttributes) -> Bool {
        a.algorithm == .winograd4x4 && a.kernel == Pair(3) && a.stride == Pair(1) && a.dilation == Pair(1) && a.groups == 1
            && a.padding.top <= 2 && a.padding.left <= 2 && a.filters <= 512
    }

    /// The floats of U for the input gradient on Winograd (`cnnc_winograd_f4_packed_floats(C, K)`).
    static func winogradTransposedFloats(x: Shape, _ a: ConvAttributes) -> Int {
        36 * DerivedTensor.packedCount(groups: 1, kg: x.c, crs: a.filters)
    }

    static func input(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        if !groupsSuitProduct(x: k.x, a) {
            inputDirect(&w)
        } else if inputUsesWinograd(x: k.x, y: k.y, a) {
            inputWinograd(k, a, &w)
        } else if inputUsesImplicit(x: k.x, y: k.y, a) {
            inputImplicit(k, a, &w)
        } else if inputPaddedFloats(x: k.x, y: k.y, a) != nil {
            inputPaddedImplicit(k, a, &w)
        } else if inputUsesFullGemm(x: k.x, y: k.y, a) {
            inputFullConvolution(k, a, &w)
        } else {
            inputColumns(&w)
        }
    }

    /// Winograd F(4x4): d in is the full convolution of d out with the filters transposed and
    /// turned, on the forward's schedule (`WinogradKernel.schedule`) with `packed_t` as U and
    /// the tiles of d in numbered over the batch; the sums are added into d in through the
    /// epilogue's residual (d in itself) unless this kernel is d in's only writer.
    static func inputWinograd(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let slices = WinogradKernel.slices(output: k.x, maxBatch: k.maxBatch)
        w.comment("""
        d in[C x H*W] += the full convolution of d out (K channels, padding 2 - PT, 2 - PL) with
        packed_t, U of the filters transposed and turned, on Winograd F(4x4): tiles of d in
        numbered over the batch in blocks of NT, V and M of a block in a workspace of WS floats
        in scratch (SLICES of them); each sum one FMA chain over K in the transform domain,
        \(k.assigns() ? "written to d in" : "added to d in"), whatever the thread count
        """)
        w.block("") { w in
            w.lines("""
            enum { TW = (W + 3) / 4, TILES = (H + 3) / 4 * TW, NT = \(WinogradKernel.tilesPerBlock), WS = 36 * (C + K) * NT };
            enum { SLICES = \(slices), PANELS = (C + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS };
            static const cnnc_conv_geometry full = {K, P, Q, 3, 3, 1, 1, 2 - PT, 2 - PL, 1, 1, H, W};
            const int total = n * TILES, blocks = (total + NT - 1) / NT, threads = cnnc_team_size(\(WinogradKernel.maxSlices));
            const cnnc_epilogue e = {NULL, \(k.assigns() ? "NULL, 0" : "d_in, (size_t)C * H * W"), CNNC_ACT_NONE, 0.0f, 0.0f, 0.0f};
            """)
            WinogradKernel.schedule(channels: "K", filters: "C", geometry: "full", input: "d_out", inputStride: "(size_t)K * P * Q",
                                    weight: "packed_t", output: "d_in", outputStride: "(size_t)C * H * W", epilogue: "&e",
                                    rest: nil, &w)
        }
    }

    /// Stride 1: d in is the "full" convolution of d out with the filters transposed and
    /// flipped, one product per group over the batch like the forward's, no buffer.
    static func inputFullConvolution(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        w.comment("""
        d in[CG x n*H*W] += flip(W)^T[CG x KG*R*S] * im2col_full(d out) per group, through the
        runtime's GEMM: the full convolution of d out (padding (R-1)*DH - PT, (S-1)*DW - PL) with
        the filters transposed and flipped; one task per (group, block of PB panels of input
        channels, block of columns): each task packs its block of each operand once for all its
        rows, so with 8 or more column blocks a task takes all of a group's rows (columns in
        multiples of 32, about 4 per batch); each element is one FMA chain over KG*R*S
        """)
        w.block("") { w in
            w.lines("""
            enum { G = C / CG, HW = H * W, RS = R * S, PANELS = (CG + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS };
            static const cnnc_conv_geometry full = {KG, P, Q, R, S, 1, 1, (R - 1) * DH - PT, (S - 1) * DW - PL, DH, DW, H, W};
            const int total = n * HW;
            int nb = (total / 4 + 31) / 32 * 32;
            nb = nb < 64 ? 64 : nb > 256 ? 256 : nb;
            const int nblocks = (total + nb - 1) / nb;
            const int PB = nblocks * G >= 8 || PANELS <= 16 ? PANELS : 16, MBLOCKS = (PANELS + PB - 1) / PB;
            """)
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int t = 0; t < G * MBLOCKS; t++)") { w in
                w.block("for (int jb = 0; jb < nblocks; jb++)") { w in
                    w.line("const int g = t / MBLOCKS, panel = (t % MBLOCKS) * PB, c0 = panel * CNNC_PACK_ROWS;")
                    w.line("const int mb = CG - c0 < PB * CNNC_PACK_ROWS ? CG - c0 : PB * CNNC_PACK_ROWS;")
                    w.line("const int j0 = jb * nb, nn = total - j0 < nb ? total - j0 : nb;")
                    w.line("cnnc_sgemm_conv_input_grad(mb, nn, weight + ((size_t)g * KG * CG + c0) * RS, CG * RS, &full, d_out + (size_t)g * KG * P * Q, (size_t)K * P * Q, j0, d_in + (size_t)(g * CG + c0) * HW, (size_t)C * HW, 1);")
                }
            }
        }
    }

    /// Stride 1 on the implicit kernel: d in is the "full" convolution of d out with the
    /// filters transposed and flipped, packed once per step by the trainer; the kernel adds
    /// its sums into d in through the epilogue's residual.
    static func inputImplicit(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let cg = k.x.c / a.groups, kg = a.filters / a.groups
        let panels = ConvKernel.panelsPerTask(kg: cg, crs: kg * a.kernel.h * a.kernel.w)
        // about 16 tasks per sample, blocks a multiple of 32 positions (as the forward's)
        let rowBlocks = panels.map { ((cg + 7) / 8 + $0 - 1) / $0 } ?? 1
        let wanted = max(1, (16 + a.groups * rowBlocks - 1) / (a.groups * rowBlocks))
        let flat = k.x.h * k.y.w
        let jb = min(1024, max(32, ((flat + wanted - 1) / wanted + 31) / 32 * 32))
        w.comment("""
        d in[CG x H*W] += flip(W)^T[CG x KG*R*S] * d out per group, on the implicit kernel: the
        full convolution of d out (padding (R-1)*DH - PT, (S-1)*DW - PL) with packed_t, the
        filters transposed and flipped; each sum one FMA chain over KG*R*S, \(k.assigns() ? "written to d in" : "added to d in"),
        whatever the tasks (below)
        """)
        // a task's calls: every sample, or the SB samples from b (as the forward's batch tasks)
        func task(_ w: inout CWriter, oneSample: Bool) {
            let shift = { (stride: String) in oneSample ? "(size_t)b * \(stride) + " : "" }
            w.line("const int g = t / MBLOCKS, panel = (t % MBLOCKS) * PB, c0 = panel * CNNC_PACK_ROWS;")
            w.line("const int mb = CG - c0 < PB * CNNC_PACK_ROWS ? CG - c0 : PB * CNNC_PACK_ROWS;")
            w.line("const int j0 = jb * JB, nj = FLAT - j0 < JB ? FLAT - j0 : JB;")
            w.line("float *dst = d_in + \(shift("(size_t)C * HW"))(size_t)(g * CG + c0) * HW;")
            w.line("const cnnc_epilogue e = {NULL, \(k.assigns() ? "NULL, 0" : "dst, (size_t)C * HW"), CNNC_ACT_NONE, 0.0f, 0.0f, 0.0f};")
            w.line("cnnc_conv_direct(&full, mb, packed_t + ((size_t)g * PANELS + panel) * KRS * CNNC_PACK_ROWS, \(oneSample ? "nbs" : "n"), d_out + \(shift("(size_t)K * P * Q"))(size_t)g * KG * P * Q, (size_t)K * P * Q, dst, (size_t)C * HW, j0, nj, &e);")
        }
        // samples per task in the batch order: as many as keep their d out within 256 KiB
        let samplesPerTask = max(1, 65536 / max(1, k.y.c * k.y.h * k.y.w))
        w.block("") { w in
            w.lines("""
            enum { G = C / CG, HW = H * W, RS = R * S, KRS = KG * RS, FLAT = H * Q };
            enum { PANELS = (CG + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS, PB = \(panels.map(String.init) ?? "PANELS"), MBLOCKS = (PANELS + PB - 1) / PB, JB = \(jb), JBLOCKS = (FLAT + JB - 1) / JB };
            static const cnnc_conv_geometry full = {KG, P, Q, R, S, 1, 1, (R - 1) * DH - PT, (S - 1) * DW - PL, DH, DW, H, W};
            """)
            ConvKernel.batchTasks(&w, samplesPerTask: samplesPerTask, batch: """
                a batch: one task per (block of SB samples, block of JB positions), every group and
                panel in turn, so the samples' d out stays in cache while the packed filters stream
                past it (the forward's batch tasks); SB samples' d out fit 256 KiB (\(samplesPerTask) here),
                at least 8 sample blocks. ResNet-20's 16-channel layer at batch 64, 2 threads:
                the tasks of every sample in turn took longer than its forward
                """, everySample: "one task per (group and block of panels, block of JB positions), every sample in turn",
                task: task)
        }
    }

    /// Stride 1 where d in is wider than d out (LeNet's c2, 6 x 14x14 from 16 x 10x10): per
    /// sample and group, d out copied into a zero-padded buffer on the stack, then the implicit
    /// kernel runs the full convolution over it with no padding, the filters packed transposed
    /// and flipped once per step, the sums added to d in through the epilogue's residual (or
    /// written). The buffer's rows are d in's width plus the forward's right padding, WB = W +
    /// PR = FL + Q: the full convolution's zero columns on the left of each row, d out's row,
    /// and no room for the zero columns on the right, which the kernel's column masks stand
    /// for (a tap past the row's end is masked, not read from the next row). So positions are
    /// numbered over WB, not over W + (S-1)*DW: LeNet's c2 computes 196 positions a sample, all
    /// of them d in's, where the padded width had 252, and its tiles go straight from the
    /// registers to d in (Q == W). The zeros are the ones the masked loads of
    /// `inputImplicit` read: each sum is the same FMA chain over KG*R*S.
    static func inputPaddedImplicit(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        w.comment("""
        d in[CG x H*W] += flip(W)^T[CG x KG*R*S] * d out per sample and group, on the implicit
        kernel over d out padded with (R-1)*DH - PT rows above, (S-1)*DW - PL columns left, rows
        of WB = W + PR floats (the columns past them masked: zeros), a stack buffer of KG x HP x
        WB, with packed_t, the filters transposed and flipped; one task per (sample, group);
        each sum one FMA chain over KG*R*S, \(k.assigns() ? "written to d in" : "added to d in")
        """)
        w.block("") { w in
            w.lines("""
            enum { G = C / CG, HW = H * W, RS = R * S, KRS = KG * RS, PANELS = (CG + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS };
            enum { HP = H + (R - 1) * DH, WB = W + \(a.padding.right), FT = (R - 1) * DH - PT, FL = (S - 1) * DW - PL };
            static const cnnc_conv_geometry full = {KG, HP, WB, R, S, 1, 1, 0, 0, DH, DW, H, W};
            """)
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("for (int g = 0; g < G; g++)") { w in
                    w.line("float padded[KG * HP * WB];")
                    w.line("memset(padded, 0, sizeof padded);")
                    w.line("for (int k = 0; k < KG; k++)")
                    w.line("    for (int p = 0; p < P; p++)")
                    w.line("        memcpy(padded + ((size_t)k * HP + FT + p) * WB + FL, d_out + (((size_t)b * K + (size_t)g * KG + k) * P + p) * Q, sizeof(float) * Q);")
                    w.line("float *dst = d_in + ((size_t)b * C + (size_t)g * CG) * HW;")
                    w.line("const cnnc_epilogue e = {NULL, \(k.assigns() ? "NULL" : "dst"), 0, CNNC_ACT_NONE, 0.0f, 0.0f, 0.0f};")
                    w.line("cnnc_conv_direct(&full, CG, packed_t + (size_t)g * PANELS * KRS * CNNC_PACK_ROWS, 1, padded, 0, dst, 0, 0, H * WB, &e);")
                }
            }
        }
    }

    /// Any stride: per sample and group, W^T * d out through a bounded column buffer, added
    /// into d in by col2im (in the runtime).
    static func inputColumns(_ w: inout CWriter) {
        w.comment("""
        d in[CG x H*W] += col2im(W^T[CG*R*S x KG] * d out[KG x P*Q]) per sample and group, in
        the runtime (GEMM into a bounded buffer, then the scatter); one task per (sample, group)
        """)
        w.block("") { w in
            w.line("static const cnnc_conv_geometry forward = {CG, H, W, R, S, SH, SW, PT, PL, DH, DW, P, Q};")
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("for (int g = 0; g < C / CG; g++)") { w in
                    w.line("cnnc_conv_input_grad_col2im(CG, weight + (size_t)g * KG * CG * R * S, CG * R * S, KG, &forward, d_out + ((size_t)b * K + (size_t)g * KG) * (P * Q), d_in + ((size_t)b * C + (size_t)g * CG) * (H * W));")
                }
            }
        }
    }

    /// Depthwise and narrow groups: a direct scatter.
    static func inputDirect(_ w: inout CWriter) {
        w.comment("""
        d in: one task per (sample, input channel) plane; every tap of every output channel of
        the group scatters into that plane only
        """)
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int ci = 0; ci < C; ci++)") { w in
                w.line("const int g = ci / CG, c = ci % CG;")
                w.line("float *restrict dx = d_in + ((size_t)b * C + ci) * (H * W);")
                w.block("for (int kk = 0; kk < KG; kk++)") { w in
                    w.line("const int k = g * KG + kk;")
                    w.line("const float *restrict wk = weight + ((size_t)k * CG + c) * (R * S);")
                    w.line("const float *restrict dy = d_out + ((size_t)b * K + k) * (P * Q);")
                    w.block("for (int r = 0; r < R; r++)") { w in
                        w.block("for (int s = 0; s < S; s++)") { w in
                            w.line("const float wv = wk[r * S + s];")
                            columns(&w)
                            w.block("for (int p = 0; p < P; p++)") { w in
                                w.line("const int h = p * SH - PT + r * DH;")
                                w.line("if (h < 0 || h >= H) continue;")
                                w.line("const int base = h * W - PL + s * DW;")
                                w.line("const float *restrict dyrow = dy + p * Q;")
                                w.line("for (int q = q0; q < q1; q++) dx[base + q * SW] += wv * dyrow[q];")
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Dense backward, from out[b,j] = bias[j] + sum_i in[b,i] * weight[j,i] (input flattened):
///   d weight[j,i] += sum_b d_out[b,j] * in[b,i];  d bias[j] += sum_b d_out[b,j];
///   d in[b,i] += sum_j d_out[b,j] * weight[j,i].
enum DenseBackward {
    static func emit(_ k: BackwardContext, _ w: inout CWriter) {
        w.line("enum { I = \(k.x.count), J = \(k.y.count) };")
        if k.wantsParameter("weight") {
            w.comment("d weight[J x I] += d out^T[J x n] * in[n x I] (GEMM); one task per block of 64 units, samples in order")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int j0 = 0; j0 < J; j0 += 64)") { w in
                w.line("cnnc_sgemm(J - j0 < 64 ? J - j0 : 64, I, n, d_out + j0, J, 1, in, I, 0, d_weight + (size_t)j0 * I, I, 1);")
            }
        }
        if k.wantsParameter("bias") {
            w.comment("d bias: one task per unit j, samples in order")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int j = 0; j < J; j++)") { w in
                w.line("float acc = 0.0f;")
                w.line("for (int b = 0; b < n; b++) acc += d_out[(size_t)b * J + j];")
                w.line("d_bias[j] += acc;")
            }
        }
        if k.wantsInput() {
            w.comment("d in[n x I] \(k.assigns() ? "=" : "+=") d out[n x J] * weight[J x I] (GEMM); one task per block of 256 inputs, units in order")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int i0 = 0; i0 < I; i0 += 256)") { w in
                w.line("cnnc_sgemm(n, I - i0 < 256 ? I - i0 : 256, J, d_out, J, 0, weight + i0, I, 0, d_in + i0, I, \(k.assigns() ? 0 : 1));")
            }
        }
    }
}

/// Element-wise ops: one task per element (or per channel for PReLU's slopes).
enum ElementwiseBackward {
    /// Statements defining `const float dydx`, the activation's derivative, from `x = in[i]`
    /// (or `y = out[i]` for sigmoid and tanh). PyTorch's choices at the kinks.
    static func derivative(_ act: Activation) -> [String] {
        switch act {
        // ReLU, leaky ReLU (slope >= 0) and clip read their output, which is positive (inside
        // the clip's bounds) exactly where the input is: the training step then keeps the
        // output, which the next layer reads anyway, and not the input (TrainingLayout).
        case .relu:
            return ["const float y = out[i];", "const float dydx = y > 0.0f ? 1.0f : 0.0f;"]
        case .leakyRelu(let alpha) where alpha >= 0:
            return ["const float y = out[i];", "const float dydx = y > 0.0f ? 1.0f : \(cFloat(alpha));"]
        case .leakyRelu(let alpha):
            return ["const float x = in[i];", "const float dydx = x > 0.0f ? 1.0f : \(cFloat(alpha));"]
        case .sigmoid:
            return ["const float y = out[i];", "const float dydx = y * (1.0f - y);"]
        case .tanh:
            return ["const float y = out[i];", "const float dydx = 1.0f - y * y;"]
        case .swish:
            return ["const float x = in[i];", "const float sx = 1.0f / (1.0f + expf(-x));",
                    "const float dydx = sx * (1.0f + x * (1.0f - sx));"]
        case .elu(let alpha):
            return ["const float x = in[i];", "const float dydx = x > 0.0f ? 1.0f : \(cFloat(alpha)) * expf(x);"]
        case .selu(let alpha, let gamma):
            return ["const float x = in[i];",
                    "const float dydx = x > 0.0f ? \(cFloat(gamma)) : \(cFloat(gamma * alpha)) * expf(x);"]
        case .softplus:
            return ["const float x = in[i];", "const float dydx = 1.0f / (1.0f + expf(-x));"]
        case .hardSigmoid(let alpha, let beta):
            return ["const float x = in[i];", "const float v = \(cFloat(alpha)) * x + \(cFloat(beta));",
                    "const float dydx = v > 0.0f && v < 1.0f ? \(cFloat(alpha)) : 0.0f;"]
        case .hardSwish:
            return ["const float x = in[i];",
                    "const float dydx = x < -3.0f ? 0.0f : (x <= 3.0f ? x / 3.0f + 0.5f : 1.0f);"]
        case .clip(let low, let high):
            return ["const float y = out[i];",
                    "const float dydx = y > \(cFloat(low)) && y < \(cFloat(high)) ? 1.0f : 0.0f;"]
        case .affine(let scale, _):
            return ["const float dydx = \(cFloat(scale));"]
        }
    }

    static func activation(_ k: BackwardContext, _ act: Activation, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line("const size_t total = (size_t)n * \(k.y.count);")
        w.comment("d in \(k.assigns() ? "=" : "+=") d out * f'(x), element by element")
        w.line("#pragma omp parallel for\(act.isPiecewiseLinear ? " simd" : "") schedule(static)")
        w.block("for (size_t i = 0; i < total; i++)") { w in
            for line in derivative(act) { w.line(line) }
            w.line("d_in[i] \(k.assigns() ? "=" : "+=") d_out[i] * dydx;")
        }
    }

    static func prelu(_ k: BackwardContext, _ a: PReLUAttributes, _ w: inout CWriter) {
        let channels = k.y.dims[0]
        w.line("enum { CH = \(channels), INNER = \(k.y.count / channels) };")
        if k.wantsInput() {
            w.comment("d in = d out where x > 0, else slope * d out; one task per element")
            w.line("const size_t total = (size_t)n * \(k.y.count);")
            w.line("#pragma omp parallel for simd schedule(static)")
            w.block("for (size_t i = 0; i < total; i++)") { w in
                w.line(a.shared ? "const float a = weight[0];" : "const float a = weight[(i / INNER) % CH];")
                w.line("d_in[i] += in[i] > 0.0f ? d_out[i] : a * d_out[i];")
            }
        }
        guard k.wantsParameter("weight") else { return }
        let perChannel = { (w: inout CWriter) in
            w.line("float acc = 0.0f;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const size_t base = ((size_t)b * CH + c) * INNER;")
                w.line("for (int i = 0; i < INNER; i++) if (!(in[base + i] > 0.0f)) acc += in[base + i] * d_out[base + i];")
            }
        }
        if a.shared {
            w.comment("d slope += sum of x * d out where x <= 0: one partial per channel in parallel, then the channels in order")
            w.line("float part[CH];")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int c = 0; c < CH; c++)") { w in
                perChannel(&w)
                w.line("part[c] = acc;")
            }
            w.line("float acc = 0.0f;")
            w.line("for (int c = 0; c < CH; c++) acc += part[c];")
            w.line("d_weight[0] += acc;")
        } else {
            w.comment("d slope[c] += sum of x * d out where x <= 0 over channel c; one task per channel")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int c = 0; c < CH; c++)") { w in
                perChannel(&w)
                w.line("d_weight[c] += acc;")
            }
        }
    }

    static func add(_ k: BackwardContext, _ w: inout CWriter) {
        let wanted = k.inputNames.enumerated().filter { k.inputNeedsGrad[$0.offset] }.map(\.element)
        guard !wanted.isEmpty else { return }
        w.line("const size_t total = (size_t)n * \(k.y.count);")
        w.comment("every operand receives d out; one task per element")
        w.line("#pragma omp parallel for simd schedule(static)")
        w.block("for (size_t i = 0; i < total; i++)") { w in
            w.line("const float g = d_out[i];")
            for name in wanted { w.line("d_\(name)[i] += g;") }
        }
    }

    /// `in0 OP in1` with `in1` broadcast over runs of RUN elements (BinaryKernel's rules):
    /// d in0 per element; d in1 per element of in1, summed over its run in order.
    static func binary(_ k: BackwardContext, _ op: BinaryOp, _ w: inout CWriter) {
        guard let run = ShapeRules.broadcast(k.inputShapes[1], onto: k.x) else {
            fatalError("compiler bug: \(k.node.displayName): \(k.inputShapes[1]) does not broadcast onto \(k.x)")
        }
        w.line("enum { RUN = \(run), RUNS = \(k.y.count / run) };")
        if k.wantsInput(0) {
            let term: String
            switch op {
            case .mul: term = "d_out[i] * in1[i / RUN]"
            case .sub: term = "d_out[i]"
            case .div: term = "d_out[i] / in1[i / RUN]"
            }
            w.comment("d in0 += d out * d(in0 OP in1)/d in0; one task per element (i / RUN: in1's element)")
            w.line("const size_t total = (size_t)n * \(k.y.count);")
            w.line("#pragma omp parallel for schedule(static)")
            w.line("for (size_t i = 0; i < total; i++) d_in0[i] += \(term);")
        }
        if k.wantsInput(1) {
            let term: String
            switch op {
            case .mul: term = "acc += g[i] * a[i];"
            case .sub: term = "acc -= g[i];"
            case .div: term = "acc -= g[i] * a[i] / (s * s);"
            }
            w.comment("d in1 += sum over its run of d out * d(in0 OP in1)/d in1; one task per element of in1")
            w.line("const size_t runs = (size_t)n * RUNS;")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (size_t j = 0; j < runs; j++)") { w in
                w.line("const float *restrict g = d_out + j * RUN;")
                if op != .sub { w.line("const float *restrict a = in0 + j * RUN;") }
                if op == .div { w.line("const float s = in1[j];") }
                w.line("float acc = 0.0f;")
                w.line("for (int i = 0; i < RUN; i++) \(term)")
                w.line("d_in1[j] += acc;")
            }
        }
    }

    static func flatten(_ k: BackwardContext, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line("const size_t total = (size_t)n * \(k.y.count);")
        w.comment("the same elements in the same order; one task per element")
        w.line("#pragma omp parallel for simd schedule(static)")
        w.line("for (size_t i = 0; i < total; i++) d_in[i] += d_out[i];")
    }

    /// Statements defining `const uint64_t stream`, the per-step stream of `DropoutMask`:
    /// splitmix64(seed ^ nameHash(node) ^ splitmix64(step)).
    static func dropoutStream(_ node: Node, _ w: inout CWriter) {
        let digits = String(SeededInit.nameHash(node.name), radix: 16, uppercase: true)
        let hash = String(repeating: "0", count: 16 - digits.count) + digits
        w.comment("DropoutMask: stream = splitmix64(seed ^ nameHash(\"\(node.name)\") ^ splitmix64(step))")
        w.line("uint64_t z = (uint64_t)step + 0x9E3779B97F4A7C15ull;")
        w.line("z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;")
        w.line("z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;")
        w.line("z = seed ^ 0x\(hash)ull ^ (z ^ (z >> 31));")
        w.line("z += 0x9E3779B97F4A7C15ull;")
        w.line("z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;")
        w.line("z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;")
        w.line("const uint64_t stream = z ^ (z >> 31);")
    }

    /// Statements defining `const int keep` for flat index `i`: u = (splitmix64(stream + i) >> 40) / 2^24 >= rate.
    static func dropoutKeep(rate: Double, _ w: inout CWriter) {
        w.line("uint64_t h = stream + (uint64_t)i + 0x9E3779B97F4A7C15ull;")
        w.line("h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;")
        w.line("h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;")
        w.line("h ^= h >> 31;")
        w.line("const int keep = (double)(h >> 40) / 16777216.0 >= \(cDouble(rate));")
    }

    static func dropout(_ k: BackwardContext, rate: Double, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line("const size_t total = (size_t)n * \(k.y.count);")
        dropoutStream(k.node, &w)
        w.comment("d in = d out * 1/(1-rate) where the recomputed mask keeps the element, else 0")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (size_t i = 0; i < total; i++)") { w in
            dropoutKeep(rate: rate, &w)
            w.line("if (keep) d_in[i] += d_out[i] * \(cFloat(DropoutMask.scale(rate: rate)));")
        }
    }
}

/// Pooling backward with the forward kernel's window rules (PyTorch's).
enum PoolBackward {
    static func constants(_ k: BackwardContext, _ a: PoolAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), PB = \(a.padding.bottom), PR = \(a.padding.right) };
        """)
    }

    /// The (sample, channel) plane loops, with `dx`, `xc` and `dy` pointing at the plane.
    /// Where the kernel is its input gradient's only writer (`k.assigns()`), each task zeroes
    /// its plane first, unless the body writes every element itself (`writesWhole`).
    static func planes(_ k: BackwardContext, _ w: inout CWriter, readsInput: Bool, writesWhole: Bool = false,
                       _ body: (inout CWriter) -> Void) {
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                if readsInput { w.line("const float *restrict xc = in + ((size_t)b * C + c) * (H * W);") }
                w.line("const float *restrict dy = d_out + ((size_t)b * C + c) * (P * Q);")
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * (H * W);")
                if k.assigns() && !writesWhole { w.line("memset(dx, 0, sizeof(float) * (H * W)); /* the only writer: its plane, zeroed here */") }
                w.block("for (int p = 0; p < P; p++)") { w in
                    w.block("for (int q = 0; q < Q; q++)", body)
                }
            }
        }
    }

    /// `at`, the window's first element, and `best`, the offset from it of the window's first
    /// maximal element (row-major scan; a later element wins only when larger, or NaN), for a
    /// window that lies inside the input.
    static func windowArgmax(_ w: inout CWriter) {
        w.line("const int at = p * SH * W + q * SW;")
        w.line("float m = -INFINITY;")
        w.line("int best = 0;")
        w.block("for (int r = 0; r < R; r++)") { w in
            w.block("for (int s = 0; s < S; s++)") { w in
                w.line("const float e = xc[at + r * W + s];")
                w.line("const int take = (e > m) | (e != e); /* a select, not a branch */")
                w.line("best = take ? r * W + s : best;")
                w.line("m = take ? e : m;")
            }
        }
    }

    static func max(_ k: BackwardContext, _ a: PoolAttributes, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        constants(k, a, &w)
        w.comment("""
        one task per (sample, channel) plane: each output's gradient goes to the first maximal
        element of its window clipped to the input (row-major scan; a later element wins only
        when larger, or NaN); padding never wins
        """)
        if k.assigns() && PoolKernel.windowsInside(a, input: k.x, output: k.y) && a.stride.h == a.kernel.h
            && a.stride.w == a.kernel.w && k.y.h * a.kernel.h == k.x.h && k.y.w * a.kernel.w == k.x.w {
            // The windows tile the plane (LeNet's 2x2 pools): every element lies in one window
            // and is written once, d out or 0, with no zeroing and no read of d in.
            w.comment("the windows tile the plane: each element gets its window's d out where it is the window's first maximal element, else 0")
            planes(k, &w, readsInput: true, writesWhole: true) { w in
                windowArgmax(&w)
                w.line("const float g = dy[p * Q + q];")
                w.line("for (int r = 0; r < R; r++)")
                w.line("    for (int s = 0; s < S; s++) dx[at + r * W + s] = r * W + s == best ? g : 0.0f;")
            }
            return
        }
        if PoolKernel.windowsInside(a, input: k.x, output: k.y) {
            planes(k, &w, readsInput: true) { w in
                w.comment("every window lies inside the input: loops of constant length")
                windowArgmax(&w)
                w.line("dx[at + best] += dy[p * Q + q];")
            }
            return
        }
        planes(k, &w, readsInput: true) { w in
            w.line("int h0 = p * SH - PT, w0 = q * SW - PL;")
            w.line("int h1 = h0 + R, w1 = w0 + S;")
            w.line("if (h0 < 0) h0 = 0;")
            w.line("if (w0 < 0) w0 = 0;")
            w.line("if (h1 > H) h1 = H;")
            w.line("if (w1 > W) w1 = W;")
            w.line("if (h0 >= h1 || w0 >= w1) continue;")
            w.line("float m = -INFINITY;")
            w.line("int best = h0 * W + w0;")
            w.block("for (int h = h0; h < h1; h++)") { w in
                w.block("for (int v = w0; v < w1; v++)") { w in
                    w.line("const float e = xc[h * W + v];")
                    w.line("if (e > m || e != e) { m = e; best = h * W + v; }")
                }
            }
            w.line("dx[best] += dy[p * Q + q];")
        }
    }

    static func average(_ k: BackwardContext, _ a: PoolAttributes, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        constants(k, a, &w)
        w.comment("""
        one task per (sample, channel) plane: each output's gradient over the forward's divisor
        goes to every real element of its window
        """)
        planes(k, &w, readsInput: false) { w in
            w.line("int h0 = p * SH - PT, w0 = q * SW - PL;")
            w.line("int h1 = h0 + R, w1 = w0 + S;")
            w.comment("the window end stops at the padded edge; count_include_pad counts up to it")
            w.line("if (h1 > H + PB) h1 = H + PB;")
            w.line("if (w1 > W + PR) w1 = W + PR;")
            if a.countIncludePad { w.line("const int padded = (h1 - h0) * (w1 - w0);") }
            w.line("if (h0 < 0) h0 = 0;")
            w.line("if (w0 < 0) w0 = 0;")
            w.line("if (h1 > H) h1 = H;")
            w.line("if (w1 > W) w1 = W;")
            w.line("if (h0 >= h1 || w0 >= w1) continue;")
            let divisor = a.countIncludePad ? "padded" : "(h1 - h0) * (w1 - w0)"
            w.line("const float share = dy[p * Q + q] / (float)(\(divisor));")
            w.line("for (int h = h0; h < h1; h++)")
            w.line("    for (int v = w0; v < w1; v++) dx[h * W + v] += share;")
        }
    }

    static func globalAverage(_ k: BackwardContext, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line("enum { C = \(k.x.c), HW = \(k.x.h * k.x.w) };")
        w.comment("one task per (sample, channel) plane: d out / (H*W) to every element")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float share = d_out[(size_t)b * C + c] / (float)HW;")
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * HW;")
                w.line("for (int i = 0; i < HW; i++) dx[i] \(k.assigns() ? "=" : "+=") share;")
            }
        }
    }

    static func globalMax(_ k: BackwardContext, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line("enum { C = \(k.x.c), HW = \(k.x.h * k.x.w) };")
        w.comment("""
        one task per (sample, channel) plane: d out to the first largest element (a NaN wins
        over a number, the first NaN over later ones)
        """)
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float *restrict xc = in + ((size_t)b * C + c) * HW;")
                w.line("int best = 0;")
                w.line("for (int i = 1; i < HW; i++) if (xc[i] > xc[best] || (xc[i] != xc[i] && xc[best] == xc[best])) best = i;")
                if k.assigns() { w.line("memset(d_in + ((size_t)b * C + c) * HW, 0, sizeof(float) * HW); /* the only writer: its plane, zeroed here */") }
                w.line("d_in[((size_t)b * C + c) * HW + best] += d_out[(size_t)b * C + c];")
            }
        }
    }
}

/// Normalizations: LRN, batch norm in training mode, softmax and log softmax.
enum NormBackward {
    /// LRN: with B_c = k + alpha/size * sum_{c' in window(c)} x_c'^2 and out_c = x_c * B_c^-beta,
    ///   d x_j = d out_j * B_j^-beta - 2 * alpha/size * beta * x_j * sum_{c : j in window(c)} d out_c * x_c * B_c^(-beta-1)
    /// with window(c) = [c - size/2, c + (size-1)/2], so j is in window(c) for c in [j - (size-1)/2, j + size/2].
    static func lrn(_ k: BackwardContext, _ a: LRNAttributes, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let x = k.x
        let coefficient = a.alpha / Double(a.size)
        w.line("enum { C = \(x.c), HW = \(x.h * x.w), LO = \(a.size / 2), HI = \((a.size - 1) / 2) };")
        w.comment("""
        one task per (sample, channel j) plane: its own term, then the windows of channels
        c in [j - HI, j + LO] that contain j, each B_c summed in channel order
        """)
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int j = 0; j < C; j++)") { w in
                w.line("const float *restrict xb = in + (size_t)b * C * HW;")
                w.line("const float *restrict dyb = d_out + (size_t)b * C * HW;")
                w.line("float *restrict dx = d_in + ((size_t)b * C + j) * HW;")
                w.line("const int j0 = j - LO < 0 ? 0 : j - LO, j1 = j + HI >= C ? C - 1 : j + HI;")
                w.line("const int c0 = j - HI < 0 ? 0 : j - HI, c1 = j + LO >= C ? C - 1 : j + LO;")
                w.block("for (int i = 0; i < HW; i++)") { w in
                    w.line("float sq = 0.0f;")
                    w.line("for (int t = j0; t <= j1; t++) sq += xb[(size_t)t * HW + i] * xb[(size_t)t * HW + i];")
                    w.line("const float bj = \(cFloat(a.k)) + \(cFloat(coefficient)) * sq;")
                    w.line("float cross = 0.0f;")
                    w.block("for (int c = c0; c <= c1; c++)") { w in
                        w.line("const int t0 = c - LO < 0 ? 0 : c - LO, t1 = c + HI >= C ? C - 1 : c + HI;")
                        w.line("float sc = 0.0f;")
                        w.line("for (int t = t0; t <= t1; t++) sc += xb[(size_t)t * HW + i] * xb[(size_t)t * HW + i];")
                        w.line("const float bc = \(cFloat(a.k)) + \(cFloat(coefficient)) * sc;")
                        w.line("cross += dyb[(size_t)c * HW + i] * xb[(size_t)c * HW + i] * powf(bc, \(cFloat(-a.beta - 1)));")
                    }
                    w.line("dx[i] += dyb[(size_t)j * HW + i] * powf(bj, \(cFloat(-a.beta))) - \(cFloat(2 * coefficient * a.beta)) * xb[(size_t)j * HW + i] * cross;")
                }
            }
        }
    }

    /// Batch norm in training mode, per channel over its M = samples*INNER values, with the
    /// saved batch mean and invstd = 1/sqrt(var + eps), xhat = (x - mean) * invstd:
    ///   d bias += sum d out;  d weight += sum d out * xhat
    ///   d in += weight * invstd * (d out - sum(d out)/M - xhat * sum(d out * xhat)/M)
    /// With `sync` (synchronized batch norm) the two sums of d in are every process's, added
    /// up between the loops; d bias and d weight take this process's own (the step sums the
    /// parameter gradients across processes).
    static func batchNorm(_ k: BackwardContext, _ w: inout CWriter) {
        let c = k.y.dims[0]
        let dWeight = k.wantsParameter("weight"), dBias = k.wantsParameter("bias"), dIn = k.wantsInput()
        guard dWeight || dBias || dIn else { return }
        w.line("enum { C = \(c), INNER = \(k.y.count / c) };")
        w.line("if (n <= 0) return;")
        if dIn { w.line("double sums[2 * C]; /* sum d out [C], then sum d out * xhat [C] */") }
        w.comment("""
        one task per channel: the two sums over (sample, position) in double, in vector lanes
        (omp simd: an order fixed by the build, not the thread count), then the parameter
        gradients\(dIn ? "; after the processes' sums are added, each element's input gradient" : "")
        """)
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int c = 0; c < C; c++)") { w in
            w.line("const double mean = saved[c], invstd = saved[C + c];")
            w.line("double sum_dy = 0.0, sum_dy_xhat = 0.0;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const float *restrict xc = in + ((size_t)b * C + c) * INNER;")
                w.line("const float *restrict dy = d_out + ((size_t)b * C + c) * INNER;")
                w.line("#pragma omp simd reduction(+:sum_dy, sum_dy_xhat)")
                w.block("for (int i = 0; i < INNER; i++)") { w in
                    w.line("sum_dy += dy[i];")
                    w.line("sum_dy_xhat += (double)dy[i] * (((double)xc[i] - mean) * invstd);")
                }
            }
            if dBias { w.line("d_bias[c] += (float)sum_dy;") }
            if dWeight { w.line("d_weight[c] += (float)sum_dy_xhat;") }
            if dIn {
                w.line("sums[c] = sum_dy;")
                w.line("sums[C + c] = sum_dy_xhat;")
            }
        }
        guard dIn else { return }
        w.line("if (sync) sync->sum_doubles(sync->context, sums, 2 * C);")
        w.line("const double count = (double)samples * INNER;")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int c = 0; c < C; c++)") { w in
            w.line("const double mean = saved[c], invstd = saved[C + c];")
            w.comment("the bracket can cancel, so it is formed in double")
            w.line("const double scale = weight[c] * invstd, mean_dy = sums[c] / count, mean_dy_xhat = sums[C + c] / count;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.line("const float *restrict xc = in + ((size_t)b * C + c) * INNER;")
                w.line("const float *restrict dy = d_out + ((size_t)b * C + c) * INNER;")
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * INNER;")
                w.line("#pragma omp simd")
                w.block("for (int i = 0; i < INNER; i++)") { w in
                    w.line("const double xhat = ((double)xc[i] - mean) * invstd;")
                    w.line("dx[i] \(k.assigns() ? "=" : "+=") (float)(scale * (dy[i] - mean_dy - xhat * mean_dy_xhat));")
                }
            }
        }
    }

    /// Softmax over channels with y = out: d x_c = y_c * (d y_c - sum_c' d y_c' * y_c').
    /// Log softmax: d x_c = d y_c - exp(y_c) * sum_c' d y_c'.
    static func softmax(_ k: BackwardContext, log: Bool, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let c = k.y.dims[0]
        w.line("enum { C = \(c), INNER = \(k.y.count / c) };")
        w.comment(log
            ? "one task per (sample, position): the sum of d out over channels, then each channel"
            : "one task per (sample, position): the dot product of d out and out over channels, then each channel")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int i = 0; i < INNER; i++)") { w in
                w.line("const size_t base = (size_t)b * C * INNER + i;")
                w.line("float dot = 0.0f;")
                if log {
                    w.line("for (int c = 0; c < C; c++) dot += d_out[base + (size_t)c * INNER];")
                    w.line("for (int c = 0; c < C; c++) d_in[base + (size_t)c * INNER] += d_out[base + (size_t)c * INNER] - expf(out[base + (size_t)c * INNER]) * dot;")
                } else {
                    w.line("for (int c = 0; c < C; c++) dot += d_out[base + (size_t)c * INNER] * out[base + (size_t)c * INNER];")
                    w.line("for (int c = 0; c < C; c++) d_in[base + (size_t)c * INNER] += out[base + (size_t)c * INNER] * (d_out[base + (size_t)c * INNER] - dot);")
                }
            }
        }
    }
}

/// Layout ops: concatenation along channels.
enum LayoutBackward {
    /// Each operand's gradient is its block of every sample's output gradient.
    static func concat(_ k: BackwardContext, _ w: inout CWriter) {
        guard k.inputNeedsGrad.contains(true) else { return }
        let total = k.y.count
        w.comment("one task per sample: each wanted operand's block of d out, added in place")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.line("const float *restrict dy = d_out + (size_t)b * \(total);")
            var offset = 0
            for (i, (name, s)) in zip(k.inputNames, k.inputShapes).enumerated() {
                if k.inputNeedsGrad[i] {
                    w.line("for (int i = 0; i < \(s.count); i++) d_\(name)[(size_t)b * \(s.count) + i] += dy[\(offset) + i];")
                }
                offset += s.count
            }
        }
    }

    /// d in[(c % G) * CG + c / G] += d out[c]: each output channel's plane goes back to its
    /// source, a different plane for every c, so one task per (sample, output channel).
    static func shuffle(_ k: BackwardContext, groups: Int, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let channels = k.x.dims[0], inner = k.x.count / channels
        w.line("enum { C = \(channels), G = \(groups), CG = \(channels / groups), INNER = \(inner) };")
        w.comment("one task per (sample, output channel): its gradient plane added to its source channel's")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("float *restrict dx = d_in + ((size_t)b * C + (size_t)((c % G) * CG + c / G)) * INNER;")
                w.line("const float *restrict dy = d_out + ((size_t)b * C + c) * INNER;")
                w.line("for (int i = 0; i < INNER; i++) dx[i] += dy[i];")
            }
        }
    }

    /// d in[c, src(p), src(q)] += d out[c + CB, p, q]; one task per (sample, input channel),
    /// which owns its plane (edge and reflect add several outputs into one input).
    static func pad(_ k: BackwardContext, _ a: PadAttributes, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let x = k.x, y = k.y
        w.line("enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), CB = \(a.channelsBefore), PT = \(a.padding.top), PL = \(a.padding.left) };")
        w.comment("one task per (sample, input channel): every output position with a source in its plane, in order")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * (H * W);")
                w.line("const float *restrict dy = d_out + ((size_t)b * K + c + CB) * (P * Q);")
                w.block("for (int p = 0; p < P; p++)") { w in
                    for line in LayoutKernel.padSource(a.mode, "h", "p", before: "PT", size: "H") { w.line(line) }
                    w.line("if (h < 0) continue;")
                    w.block("for (int q = 0; q < Q; q++)") { w in
                        for line in LayoutKernel.padSource(a.mode, "v", "q", before: "PL", size: "W") { w.line(line) }
                        w.line("if (v >= 0) dx[h * W + v] += dy[p * Q + q];")
                    }
                }
            }
        }
    }

    /// Nearest: d in[c, h, w] += the sum of d out over its SH x SW block. Bilinear: each d out
    /// element adds its weight's share into its four sources. One task per (sample, channel),
    /// the plane walked row by row.
    static func upsample(_ k: BackwardContext, _ a: UpsampleAttributes, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let x = k.x, y = k.y
        w.line("enum { C = \(x.c), H = \(x.h), W = \(x.w), P = \(y.h), Q = \(y.w), SH = \(a.scale.h), SW = \(a.scale.w) };")
        w.comment(a.mode == .nearest ? "one task per (sample, channel): each input element sums its block of d out"
                                     : "one task per (sample, channel): each d out element feeds its four sources by weight")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * (H * W);")
                w.line("const float *restrict dy = d_out + ((size_t)b * C + c) * (P * Q);")
                switch a.mode {
                case .nearest:
                    w.line("for (int p = 0; p < P; p++)")
                    w.line("    for (int q = 0; q < Q; q++) dx[(p / SH) * W + q / SW] += dy[p * Q + q];")
                case .bilinear:
                    w.block("for (int p = 0; p < P; p++)") { w in
                        for line in LayoutKernel.bilinearTaps(a, index: "p", size: "H", outSize: y.h, outName: "P", scale: "SH", names: ("h0", "h1", "lh")) { w.line(line) }
                        w.block("for (int q = 0; q < Q; q++)") { w in
                            for line in LayoutKernel.bilinearTaps(a, index: "q", size: "W", outSize: y.w, outName: "Q", scale: "SW", names: ("v0", "v1", "lv")) { w.line(line) }
                            w.line("const float g = dy[p * Q + q];")
                            w.line("dx[h0 * W + v0] += (1.0f - lh) * (1.0f - lv) * g;")
                            w.line("dx[h0 * W + v1] += (1.0f - lh) * lv * g;")
                            w.line("dx[h1 * W + v0] += lh * (1.0f - lv) * g;")
                            w.line("dx[h1 * W + v1] += lh * lv * g;")
                        }
                    }
                }
            }
        }
    }

    /// d in[:, start ..< end] += d out; one task per sample.
    static func slice(_ k: BackwardContext, start: Int, end: Int, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let inner = k.x.count / k.x.dims[0]
        w.line("enum { C = \(k.x.dims[0]), START = \(start), BLOCK = \((end - start) * inner), INNER = \(inner) };")
        w.comment("one task per sample: d out is the block of channels START ..< END of d in")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.line("float *restrict dx = d_in + ((size_t)b * C + START) * INNER;")
            w.line("const float *restrict dy = d_out + (size_t)b * BLOCK;")
            w.line("for (int i = 0; i < BLOCK; i++) dx[i] += dy[i];")
        }
    }
}
