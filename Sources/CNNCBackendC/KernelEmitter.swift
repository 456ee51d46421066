// The per-node kernel emitters, one per op family. Each writes one `static` function
// `node_<name>(out, inputs..., parameters..., n)` whose loops are parallel only over
// independent outputs, so results are bitwise identical at any thread count.
//
// Glossary for the generated code: N batch (n <= MAX_BATCH), C input channels, H W input
// height and width, K output channels, R S kernel height and width, P Q output height and
// width, G groups; CG = C/G and KG = K/G channels per group.

import CNNCIR

/// What an emitter knows about the node it writes.
struct KernelContext {
    var node: Node
    var inputShapes: [Shape]
    /// Weight pointers the kernel takes, in signature order.
    var arguments: [KernelArgument]
    /// The C function name, e.g. `node_c1`.
    var function: String

    /// Floats between consecutive samples of each input and of the output. Dense tensors use
    /// their per-sample size; a value the memory planner places inside a larger buffer (a
    /// concat's slice) has the larger buffer's per-sample size. Kernels index samples with these.
    var inputSampleStrides: [Int] = []
    var outputSampleStride: Int = 0
    /// The input whose floats the output overwrites (the memory planner put the kernel in
    /// place): the pair is declared without `restrict`. Only element-wise kernels.
    var inPlaceInput: Int?
    /// Concat only, per input: nil when its producer already wrote it into its slice of the
    /// output, else why the kernel copies it. Empty: every input is copied.
    var concatCopies: [String?] = []
    /// Whether the function takes `float *scratch`, floats of its own in the arena for the
    /// time it runs (`ArenaLayout.scratchFloats`): a strided implicit convolution's phase
    /// planes, Winograd's workspaces.
    var hasScratch = false
    /// The largest batch the function is called with (`<P>_MAX_BATCH`).
    var maxBatch = 1

    var x: Shape { inputShapes[0] }
    var y: Shape { node.shape }
    /// The sample stride of input `i` (its own per-sample size unless the planner said otherwise).
    func inStride(_ i: Int = 0) -> Int {
        i < inputSampleStrides.count && inputSampleStrides[i] > 0 ? inputSampleStrides[i] : inputShapes[i].count
    }
    /// The sample stride of the output.
    var outStride: Int { outputSampleStride > 0 ? outputSampleStride : y.count }
    /// Whether the output and every input are dense (each sample right after the previous).
    var isDense: Bool { outStride == y.count && inputShapes.indices.allSatisfy { inStride($0) == inputShapes[$0].count } }
    /// `restrict ` on the output pointer, nothing when the kernel runs in place.
    var outRestrict: String { inPlaceInput == nil ? "restrict " : "" }
    /// `restrict ` on input `i`, nothing when the output overwrites it.
    func inRestrict(_ i: Int) -> String { inPlaceInput == i ? "" : "restrict " }
    /// `enum { IS = .., OS = .. }` (and `RS`, the residual's, when `residual`): the sample strides.
    func strideEnum(residual: Bool = false) -> String {
        "enum { IS = \(inStride()), OS = \(outStride)\(residual ? ", RS = \(inStride(1))" : "") }; /* sample strides */"
    }
    /// Concat input `i` is copied by the kernel (not written in place by its producer).
    func copies(_ i: Int) -> Bool { concatCopies.isEmpty || concatCopies[i] != nil }
    /// The inputs the function takes: all of them, except concat inputs already in their
    /// slice (their pointer would alias the output's).
    var passedInputs: [Int] { inputShapes.indices.filter(copies) }
    /// Whether a bias pointer is passed (the layer's own, or one folded from a batch norm).
    var hasBias: Bool { arguments.contains { $0.name == "bias" } }

    /// The C names of the input pointers: `in` (and `residual` for a fused conv/dense), or
    /// `in0`, `in1`, ... for n-ary ops.
    var inputNames: [String] {
        switch node.op {
        case .conv, .dense: return Array(["in", "residual"].prefix(inputShapes.count))
        case .input, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .batchNorm,
             .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            return inputShapes.count == 1 ? ["in"] : inputShapes.indices.map { "in\($0)" }
        }
    }
}

/// Writes the kernel function of one node.
enum KernelEmitter {
    /// The parameter list of the node's function, outputs first.
    static func signature(_ k: KernelContext) -> String {
        var args = ["float *\(k.outRestrict)out"]
        let names = k.inputNames  // computed once: a 100,000-input add made this quadratic
        for i in k.passedInputs { args.append("const float *\(k.inRestrict(i))\(names[i])") }
        for a in k.arguments { args.append("const float *restrict \(a.name)") }
        if k.hasScratch { args.append("float *restrict scratch") }
        args.append("int n")
        return "static void \(k.function)(\(args.joined(separator: ", ")))"
    }

    /// Writes the whole function for `k.node`. Views (flatten, dropout at inference) have no
    /// function and are not passed here.
    static func emit(_ k: KernelContext, into w: inout CWriter) {
        let shapeComment = zip(k.inputNames, k.inputShapes).map { name, s in
            "\(name) is (N,\(s.dims.map(String.init).joined(separator: ",")))"
        }.joined(separator: ", ") + "; out is (N,\(k.y.dims.map(String.init).joined(separator: ",")))"
        var header = "\(k.node.displayName): \(describe(k.node))"
        if let loc = k.node.location { header += "\n\(loc.description)" }
        for a in k.arguments where a.tensor.contains(" ") { header += "\n\(a.name): \(a.tensor)" }
        header += "\n\(shapeComment)"
        if !k.isDense {
            let strides = zip(k.inputNames, k.inputShapes.indices).map { "\($0) \(k.inStride($1))" } + ["out \(k.outStride)"]
            header += "\nsample strides (slices of concat buffers): \(strides.joined(separator: ", "))"
        }
        if let i = k.inPlaceInput { header += "\nin place: out overwrites \(k.inputNames[i])" }
        w.comment(header)
        w.block(signature(k)) { w in
            switch k.node.op {
            case .conv(let a): ConvKernel.emit(k, a, &w)
            case .dense(let a): DenseKernel.emit(k, a, &w)
            case .activation(let act): ElementwiseKernel.activation(k, act, &w)
            case .prelu: ElementwiseKernel.prelu(k, &w)
            case .add: ElementwiseKernel.add(k, &w)
            case .binary(let op): ElementwiseKernel.binary(k, op, &w)
            case .maxPool(let a): PoolKernel.emit(k, a, isMax: true, &w)
            case .avgPool(let a): PoolKernel.emit(k, a, isMax: false, &w)
            case .globalAvgPool: PoolKernel.global(k, &w)
            case .globalMaxPool: PoolKernel.globalMax(k, &w)
            case .lrn(let a): NormKernel.lrn(k, a, &w)
            case .batchNorm(let a): NormKernel.batchNorm(k, a, &w)
            case .softmax: NormKernel.softmax(k, log: false, &w)
            case .logSoftmax: NormKernel.softmax(k, log: true, &w)
            case .concat: LayoutKernel.concat(k, &w)
            case .shuffle(let groups): LayoutKernel.shuffle(k, groups: groups, &w)
            case .slice(let start, let end): LayoutKernel.slice(k, start: start, end: end, &w)
            case .pad(let a): LayoutKernel.pad(k, a, &w)
            case .upsample(let a): LayoutKernel.upsample(k, a, &w)
            case .convTranspose(let a): ConvTransposeKernel.emit(k, a, &w)
            case .input, .dropout, .flatten:
                fatalError("compiler bug: \(k.node.displayName) is a view and has no kernel")
            }
        }
        w.line()
    }

    /// `conv filters=6 size=5 ...` as in the IR text.
    static func describe(_ node: Node) -> String {
        let keyword = node.op.keyword?.rawValue ?? "input"
        return ([keyword] + node.op.attributeTexts.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }
}

/// A C float literal that reads back to exactly the same float.
func cFloat(_ v: Double) -> String {
    let f = Float(v)
    if f.isInfinite { return f < 0 ? "-INFINITY" : "INFINITY" }
    if f.isNaN { return "NAN" }  // Swift prints "nan", which is no C literal
    var s = "\(f)"
    if !s.contains(".") && !s.contains("e") { s += ".0" }
    return s + "f"
}

/// Convolution kernels. Direct: each (sample, output channel) plane is one task, accumulated
/// tap by tap over in-bounds rows and columns only. Depthwise: the runtime's
/// `cnnc_conv_depthwise` on blocks of planes of one sample. GEMM: per group, out[KG x n*P*Q] =
/// W[KG x CG*R*S] * im2col(x) over the whole batch, through the runtime's `cnnc_sgemm_conv`
/// (im2col is implicit in its packing), in tasks of (rows, columns) blocks.
public enum ConvKernel {
    static func emit(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        // Weights packed by `<p>_prepare` (inference builds, see Bindings) select the
        // library's packed kernels; the training forward reads the raw parameters.
        let packed = k.arguments.contains { $0.name == "packed" }
        switch a.unoptimizedAlgorithm(inputChannels: k.x.c) {
        case .auto, .direct: direct(k, a, &w)
        case .depthwise: depthwise(k, a, &w)
        case .gemm: packed ? packedGemm(k, a, &w) : gemm(k, a, &w)
        case .implicit:
            // a strided layer needs its phase planes' scratch (inference builds; training's forward has none)
            if packed && (a.stride == Pair(1) || k.hasScratch) { implicit(k, a, &w) }
            else if packed { packedGemm(k, a, &w) }
            else if a.groupsSuitMatrixProduct(inputChannels: k.x.c) { gemm(k, a, &w) } else { direct(k, a, &w) }
        case .winograd2x2: WinogradKernel.emit(k, a, tile: 2, &w)
        case .winograd4x4: WinogradKernel.emit(k, a, tile: 4, &w)
        }
    }

    /// The part of a fused epilogue the library kernels apply (`cnnc_epilogue`): bias,
    /// residual and the ReLU family. `rest` says whether an activation or PReLU is left for
    /// the generated code to apply afterwards.
    static func libraryEpilogue(_ e: Epilogue) -> (activation: String, alpha: String, low: String, high: String, rest: Bool) {
        switch e.activation {
        case nil: return ("CNNC_ACT_NONE", "0.0f", "0.0f", "0.0f", e.prelu != nil)
        case .relu?: return ("CNNC_ACT_RELU", "0.0f", "0.0f", "0.0f", false)
        case .leakyRelu(let alpha)?: return ("CNNC_ACT_LEAKY", cFloat(alpha), "0.0f", "0.0f", false)
        case .clip(let low, let high)?: return ("CNNC_ACT_CLIP", "0.0f", cFloat(low), cFloat(high), false)
        case .sigmoid?, .tanh?, .swish?, .elu?, .selu?, .softplus?, .hardSigmoid?, .hardSwish?, .affine?:
            return ("CNNC_ACT_NONE", "0.0f", "0.0f", "0.0f", true)
        }
    }

    /// `const cnnc_epilogue e = {...};` for a task whose first row is `k0` and whose residual
    /// starts at `residual` (already offset to the task's sample and row).
    static func epilogueLine(_ k: KernelContext, _ a: ConvAttributes, residual: String, residualStride: String) -> String {
        let lib = libraryEpilogue(a.epilogue)
        let bias = k.hasBias ? "bias + k0" : "NULL"
        let res = a.epilogue.residual ? residual : "NULL"
        return "const cnnc_epilogue e = {\(bias), \(res), \(a.epilogue.residual ? residualStride : "0"), \(lib.activation), \(lib.alpha), \(lib.low), \(lib.high)};"
    }

    /// Panels of 8 rows per task: all of a group's (nil) while its packed rows stay within 256 KiB
    /// (re-read from L2 for every tile of positions), else as many as fit.
    static func panelsPerTask(kg: Int, crs: Int) -> Int? {
        let budget = 256 * 1024 / 4
        return kg * crs <= budget ? nil : max(1, budget / (8 * crs))
    }

    /// Implicit GEMM (`cnnc_conv_direct`): tasks over (group and block of panels, block of
    /// positions numbered over the input's width), each over every sample; the epilogue is
    /// applied in the kernel.
    /// The `cnnc_conv_geometry` initializer of one group of a convolution.
    static func geometry(_ a: ConvAttributes, input x: Shape, output y: Shape) -> String {
        let numbers = [x.c / a.groups, x.h, x.w, a.kernel.h, a.kernel.w, a.stride.h, a.stride.w, a.padding.top, a.padding.left,
                       a.dilation.h, a.dilation.w, y.h, y.w]
        return "{" + numbers.map(String.init).joined(separator: ", ") + "}"
    }

    static func implicit(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let cg = x.c / a.groups, kg = a.filters / a.groups
        let panels = panelsPerTask(kg: kg, crs: cg * a.kernel.h * a.kernel.w)
        let note = "an equal share of a group's panels, at most PB of them"
        // strided: positions are numbered over a phase plane of the input (scratch), not the input
        let phased = k.hasScratch
        let width = phased ? (x.w + a.stride.w - 1) / a.stride.w : x.w
        // about 16 tasks per sample (both cores busy at batch 1), blocks a multiple of 32 wide;
        // row blocks counted with the 8-row panels of AVX-512. Where the positions make few
        // blocks (small planes), the rows are cut into more blocks, to an even number of tasks;
        // a task's rows are an equal share of the panels (PANELS * i / MBLOCKS onwards), so
        // no task is left with a remainder (MobileNetV2's 7x7 1x1 layers had blocks of 51, 51
        // and 18 panels: one thread did 153 panel tiles, the other 87).
        let allPanels = (kg + 7) / 8
        let capBlocks = panels.map { (allPanels + $0 - 1) / $0 } ?? 1
        let wanted = max(1, (16 + a.groups * capBlocks - 1) / (a.groups * capBlocks))
        let flat = y.h * width
        let jb = min(1024, max(32, ((flat + wanted - 1) / wanted + 31) / 32 * 32))
        let jblocks = (flat + jb - 1) / jb
        var rowBlocks = max(capBlocks, min(allPanels, (16 + a.groups * jblocks - 1) / (a.groups * jblocks)))
        if (a.groups * rowBlocks * jblocks) % 2 == 1 && rowBlocks < allPanels { rowBlocks += 1 }
        // PB: the most panels a task takes (MBLOCKS = rowBlocks with AVX-512's 8-row panels)
        let pb = String((allPanels + rowBlocks - 1) / rowBlocks)
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };\(phased ? "\nenum { HS = (H + \(a.stride.h) - 1) / \(a.stride.h), WS = (W + \(a.stride.w) - 1) / \(a.stride.w) }; /* a phase plane */" : "")
        enum { G = \(a.groups), CG = \(cg), KG = \(kg), CRS = CG * R * S, PQ = P * Q, FLAT = P * \(phased ? "WS" : "W") };
        enum { PANELS = (KG + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS, PB = \(pb), MBLOCKS = (PANELS + PB - 1) / PB, JB = \(jb), JBLOCKS = (FLAT + JB - 1) / JB };
        \(k.strideEnum(residual: a.epilogue.residual))
        static const cnnc_conv_geometry geometry = \(geometry(a, input: x, output: y));
        """)
        var image = { (sample: String) in "in + \(sample)(size_t)g * CG * H * W, IS" }
        if phased {
            let planes = a.implicitPhases
            w.lines("""
            enum { PHASES = \(planes), GPS = PHASES * CG * HS * WS, PS = G * GPS, CB = 16, CBLOCKS = (CG + CB - 1) / CB };
            """)
            w.comment("""
                stride \(a.stride.h)x\(a.stride.w): the \(planes) phase planes (HS x WS) of every sample and group, one copy of the
                input into scratch; the kernel then reads tap (r, s) as a shift within its phase's plane
                """)
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int t = 0; t < n * G * CBLOCKS; t++)") { w in
                w.line("const int b = t / (G * CBLOCKS), g = t / CBLOCKS % G, c0 = t % CBLOCKS * CB, c1 = c0 + CB < CG ? c0 + CB : CG;")
                w.line("cnnc_conv_phase_split(&geometry, in + (size_t)b * IS + (size_t)g * CG * H * W, scratch + (size_t)b * PS + (size_t)g * GPS, c0, c1);")
            }
            image = { (sample: String) in "scratch + \(sample.isEmpty ? "" : "(size_t)b * PS + ")(size_t)g * GPS, PS" }
        }
        let W = phased ? "WS" : "W"
        // One task's calls: every sample (`oneSample` false) or sample b alone.
        func task(_ w: inout CWriter, oneSample: Bool) {
            let shift = { (stride: String) in oneSample ? "(size_t)b * \(stride) + " : "" }
            w.line("const int g = t / MBLOCKS, panel = PANELS * (t % MBLOCKS) / MBLOCKS, pend = PANELS * (t % MBLOCKS + 1) / MBLOCKS;")
            w.line("const int k0 = g * KG + panel * CNNC_PACK_ROWS, mb = KG - panel * CNNC_PACK_ROWS < (pend - panel) * CNNC_PACK_ROWS ? KG - panel * CNNC_PACK_ROWS : (pend - panel) * CNNC_PACK_ROWS;")
            w.line("const int j0 = jb * JB, nj = FLAT - j0 < JB ? FLAT - j0 : JB;")
            w.line(epilogueLine(k, a, residual: "residual + \(shift("RS"))(size_t)k0 * PQ", residualStride: "RS"))
            w.line("cnnc_conv_direct(&geometry, mb, packed + ((size_t)g * PANELS + panel) * CRS * CNNC_PACK_ROWS, \(oneSample ? "nbs" : "n"), \(image(shift("IS"))), out + \(shift("OS"))(size_t)k0 * PQ, OS, j0, nj, &e);")
            guard libraryEpilogue(a.epilogue).rest else { return }
            w.comment("the rest of the epilogue on the task's outputs: rows p of the block, columns q < Q")
            w.block(oneSample ? "for (int bb = b; bb < b + nbs; bb++)" : "for (int bb = 0; bb < n; bb++)") { w in
                w.line("float *o = out + (size_t)bb * OS + (size_t)k0 * PQ;")
                w.block("for (int p = j0 / \(W); p <= (j0 + nj - 1) / \(W); p++)") { w in
                    w.line("const int q0 = p == j0 / \(W) ? j0 % \(W) : 0, q1e = p == (j0 + nj - 1) / \(W) ? (j0 + nj - 1) % \(W) + 1 : \(W);")
                    w.line("const int q1 = q1e < Q ? q1e : Q;")
                    w.block("for (int i = 0; i < mb; i++)") { w in
                        w.line("float *restrict row = o + (size_t)i * PQ + (size_t)p * Q;")
                        if let pr = a.epilogue.prelu { w.line("const float a = slope[\(pr.shared ? "0" : "k0 + i")];") }
                        w.line("for (int q = q0; q < q1; q++) { const float v = row[q]; row[q] = \(Epilogues.value(a.epilogue, "v")); }")
                    }
                }
            }
        }
        // samples per task in the batch order: as many as keep their inputs within 256 KiB
        let sampleFloats = max(1, (phased ? a.implicitPhaseFloats(channels: x.c, height: x.h, width: x.w) : x.c * x.h * x.w))
        let samplesPerTask = max(1, 65536 / sampleFloats)
        batchTasks(&w, samplesPerTask: samplesPerTask, batch: """
            a batch: one task per (block of SB samples, block of JB positions j = p*\(W) + q), every group and
            panel in turn, so the samples' input block stays in cache while the packed weights stream past it;
            SB samples' inputs fit 256 KiB (\(samplesPerTask) here), and there are at least 8 sample blocks
            """, everySample: """
            one task per (group and \(note), block of JB positions j = p*\(W) + q), every sample in turn
            so the task's packed weights stay in cache; each output one FMA chain over C*R*S\(phased ? " (phase by phase)" : "")
            """, task: task)
    }

    /// The tasks of the implicit kernel, forward or input gradient: for a batch (n >= 4), per
    /// (block of SB samples, block of JB positions) with every group and panel inside
    /// (`task(w, true)`: samples b to b + nbs), at most `samplesPerTask` samples and at least 8
    /// blocks; for fewer samples, per (group and block of panels, block of JB positions) over
    /// every sample (`task(w, false)`). Needs G, MBLOCKS and JBLOCKS.
    static func batchTasks(_ w: inout CWriter, samplesPerTask: Int, batch: String, everySample: String,
                           task: (inout CWriter, Bool) -> Void) {
        w.block("if (n >= 4)") { w in
            w.comment(batch)
            w.line("int sb = n / 8;")
            w.line("sb = sb < 1 ? 1 : sb > \(samplesPerTask) ? \(samplesPerTask) : sb;")
            w.line("const int sblocks = (n + sb - 1) / sb;")
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int s = 0; s < sblocks; s++)") { w in
                w.block("for (int jb = 0; jb < JBLOCKS; jb++)") { w in
                    w.line("const int b = s * sb, nbs = n - b < sb ? n - b : sb;")
                    w.block("for (int t = 0; t < G * MBLOCKS; t++)") { w in task(&w, true) }
                }
            }
        }
        w.block("else") { w in
            w.comment(everySample)
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int t = 0; t < G * MBLOCKS; t++)") { w in
                w.block("for (int jb = 0; jb < JBLOCKS; jb++)") { w in task(&w, false) }
            }
        }
    }

    /// The matrix product on weights packed once (`cnnc_sgemm_conv_packed`, im2col packed per
    /// call): strided and wide-padded layers; the epilogue is applied to each finished tile.
    static func packedGemm(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let cg = x.c / a.groups, kg = a.filters / a.groups
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { G = \(a.groups), CG = \(cg), KG = \(kg), CRS = CG * R * S, PQ = P * Q };
        enum { PANELS = (KG + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS };
        \(k.strideEnum(residual: a.epilogue.residual))
        static const cnnc_conv_geometry geometry = {CG, H, W, R, S, \(a.stride.h), \(a.stride.w), \(a.padding.top), \(a.padding.left), \(a.dilation.h), \(a.dilation.w), P, Q};
        """)
        w.comment("columns are (sample, p, q) over the batch; blocks of a multiple of 32 columns, about 16 per batch")
        w.line("const int total = n * PQ;")
        w.line("int nb = (total / 16 + 31) / 32 * 32;")
        w.line("nb = nb < 32 ? 32 : nb > 512 ? 512 : nb;")
        w.line("const int nblocks = (total + nb - 1) / nb;")
        w.comment("""
            every task packs its block of im2col columns (CRS x nb) once for all its rows: with 8 or more
            column blocks a task takes all of a group's rows (each block packed once), else 16 panels of
            rows (more tasks for the cores, each block packed once per 16 panels)
            """)
        w.line("const int PB = nblocks * G >= 8 || PANELS <= 16 ? PANELS : 16, MBLOCKS = (PANELS + PB - 1) / PB;")
        w.comment("one task per (group and block of PB panels, block of columns); each output one FMA chain over C*R*S")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int t = 0; t < G * MBLOCKS; t++)") { w in
            w.block("for (int jb = 0; jb < nblocks; jb++)") { w in
                w.line("const int g = t / MBLOCKS, panel = (t % MBLOCKS) * PB, k0 = g * KG + panel * CNNC_PACK_ROWS;")
                w.line("const int mb = KG - panel * CNNC_PACK_ROWS < PB * CNNC_PACK_ROWS ? KG - panel * CNNC_PACK_ROWS : PB * CNNC_PACK_ROWS;")
                w.line("const int j0 = jb * nb, nn = total - j0 < nb ? total - j0 : nb;")
                w.line(epilogueLine(k, a, residual: "residual + (size_t)k0 * PQ", residualStride: "RS"))
                w.line("cnnc_sgemm_conv_packed(mb, nn, packed + ((size_t)g * PANELS + panel) * CRS * CNNC_PACK_ROWS, &geometry, in + (size_t)g * CG * H * W, IS, j0, out + (size_t)k0 * PQ, OS, &e);")
                if libraryEpilogue(a.epilogue).rest {
                    blockEpilogue(k, a.epilogue, rows: "k0", count: "mb", positions: "PQ", onlyActivation: true, &w)
                }
            }
        }
    }

    static func gemm(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let cg = x.c / a.groups, kg = a.filters / a.groups
        // rows per task: all of a group's output channels up to 512 (each task packs its block of
        // im2col columns once for all its rows; VGG-11-BN's 512-channel 2x2 layers in training)
        let mb = kg <= 512 ? kg : 128
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { G = \(a.groups), CG = \(cg), KG = \(kg), CRS = CG * R * S, PQ = P * Q, MB = \(mb), MBLOCKS = (KG + MB - 1) / MB };
        static const cnnc_conv_geometry geometry = {CG, H, W, R, S, \(a.stride.h), \(a.stride.w), \(a.padding.top), \(a.padding.left), \(a.dilation.h), \(a.dilation.w), P, Q};
        """)
        w.comment("columns are (sample, p, q) over the batch; blocks of a multiple of 32 columns, about 8 per batch")
        w.line("const int total = n * PQ;")
        w.line("int nb = (total / 8 + 31) / 32 * 32;")
        w.line("nb = nb < 32 ? 32 : nb > 256 ? 256 : nb;")
        w.line("const int nblocks = (total + nb - 1) / nb;")
        w.comment("one task per (group, block of output channels, block of columns); each output is one FMA chain over C*R*S")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int t = 0; t < G * MBLOCKS; t++)") { w in
            w.block("for (int jb = 0; jb < nblocks; jb++)") { w in
                w.line("const int g = t / MBLOCKS, k0 = g * KG + (t % MBLOCKS) * MB;")
                w.line("const int mb = (g + 1) * KG - k0 < MB ? (g + 1) * KG - k0 : MB;")
                w.line("const int j0 = jb * nb, nn = total - j0 < nb ? total - j0 : nb;")
                w.line("cnnc_sgemm_conv(mb, nn, weight + (size_t)k0 * CRS, CRS, 0, &geometry, in + (size_t)g * CG * H * W, \(k.inStride(0)), j0, out + (size_t)k0 * PQ, \(k.outStride), 0);")
                blockEpilogue(k, a.epilogue, rows: "k0", count: "mb", positions: "PQ", &w)
            }
        }
    }

    /// Bias and the fused epilogue on a block of a GEMM's output while it is in cache: rows
    /// `rows ..< rows + count` (output channels), columns j0 ..< j0 + nn over (sample, position).
    /// With `onlyActivation` the kernel already added bias and residual: only the activation
    /// or PReLU the library does not apply is left.
    static func blockEpilogue(_ k: KernelContext, _ e: Epilogue, rows: String, count: String, positions: String,
                              onlyActivation: Bool = false, _ w: inout CWriter) {
        let bias = k.hasBias && !onlyActivation, residual = e.residual && !onlyActivation
        guard bias || residual || e.activation != nil || e.prelu != nil else { return }
        w.block("for (int j = j0; j < j0 + nn;)") { w in
            w.line("const int b = j / \(positions), at = j % \(positions);")
            w.line("const int run = \(positions) - at < j0 + nn - j ? \(positions) - at : j0 + nn - j;")
            w.block("for (int k = \(rows); k < \(rows) + \(count); k++)") { w in
                w.line("float *restrict o = out + (size_t)b * \(k.outStride) + (size_t)k * \(positions) + at;")
                if residual {
                    w.line("const float *restrict res = residual + (size_t)b * \(k.inStride(1)) + (size_t)k * \(positions) + at;")
                }
                if bias { w.line("const float bk = bias[k];") }
                if let p = e.prelu { w.line("const float a = slope[\(p.shared ? "0" : "k")];") }
                w.block("for (int i = 0; i < run; i++)") { w in
                    var v = "o[i]"
                    if bias { v += " + bk" }
                    if residual { v += " + res[i]" }
                    w.line("const float v = \(v);")
                    w.line("o[i] = \(Epilogues.value(e, "v"));")
                }
            }
            w.line("j += run;")
        }
    }

    /// Depthwise (`cnnc_conv_depthwise`, weights as they are): one task per (sample, block of
    /// input channels and their output planes), about 16 blocks per sample so that batch 1 keeps
    /// every core busy; bias, residual and the ReLU family applied in the kernel.
    static func depthwise(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let multiplier = a.filters / a.groups
        let cb = max(1, (x.c + 15) / 16)
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { M = \(multiplier), CB = \(cb), CBLOCKS = (C + CB - 1) / CB, PQ = P * Q }; /* M output planes per input plane */
        \(k.strideEnum(residual: a.epilogue.residual))
        static const cnnc_conv_geometry geometry = {1, H, W, R, S, \(a.stride.h), \(a.stride.w), \(a.padding.top), \(a.padding.left), \(a.dilation.h), \(a.dilation.w), P, Q};
        """)
        w.comment("one task per (sample, block of CB input channels and their CB*M output planes); each output one FMA chain over its taps")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int cb = 0; cb < CBLOCKS; cb++)") { w in
                w.line("const int c0 = cb * CB, nc = C - c0 < CB ? C - c0 : CB, k0 = c0 * M;")
                w.line(epilogueLine(k, a, residual: "residual + (size_t)b * RS + (size_t)k0 * PQ", residualStride: "RS"))
                w.line("cnnc_conv_depthwise(&geometry, nc * M, M, weight + (size_t)k0 * (R * S), in + (size_t)b * IS + (size_t)c0 * (H * W), out + (size_t)b * OS + (size_t)k0 * PQ, &e);")
                if libraryEpilogue(a.epilogue).rest {
                    w.comment("the rest of the epilogue on the task's planes")
                    w.block("for (int i = 0; i < nc * M; i++)") { w in
                        w.line("float *restrict o = out + (size_t)b * OS + (size_t)(k0 + i) * PQ;")
                        if let pr = a.epilogue.prelu { w.line("const float a = slope[\(pr.shared ? "0" : "k0 + i")];") }
                        w.line("for (int j = 0; j < PQ; j++) { const float v = o[j]; o[j] = \(Epilogues.value(a.epilogue, "v")); }")
                    }
                }
            }
        }
    }

    static func direct(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let cg = x.c / a.groups, kg = a.filters / a.groups
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), DH = \(a.dilation.h), DW = \(a.dilation.w), CG = \(cg), KG = \(kg) };
        \(k.strideEnum(residual: a.epilogue.residual))
        """)
        w.comment("one task per (sample, output channel); taps accumulate in a fixed order")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int k = 0; k < K; k++)") { w in
                w.line("const int g = k / KG;")
                w.line("float *restrict o = out + (size_t)b * OS + (size_t)k * (P * Q);")
                w.line("const float init = \(k.hasBias ? "bias[k]" : "0.0f");")
                w.line("for (int i = 0; i < P * Q; i++) o[i] = init;")
                w.block("for (int c = 0; c < CG; c++)") { w in
                    w.line("const float *restrict xc = in + (size_t)b * IS + ((size_t)g * CG + c) * (H * W);")
                    w.line("const float *restrict wk = weight + ((size_t)k * CG + c) * (R * S);")
                    w.block("for (int r = 0; r < R; r++)") { w in
                        w.block("for (int s = 0; s < S; s++)") { w in
                            w.line("const float wv = wk[r * S + s];")
                            w.comment("output columns whose input column q*SW - PL + s*DW lies in [0, W)")
                            w.line("int q0 = 0, q1 = Q;")
                            w.line("while (q0 < Q && q0 * SW - PL + s * DW < 0) q0++;")
                            w.line("while (q1 > q0 && (q1 - 1) * SW - PL + s * DW >= W) q1--;")
                            w.block("for (int p = 0; p < P; p++)") { w in
                                w.line("const int h = p * SH - PT + r * DH;")
                                w.line("if (h < 0 || h >= H) continue;")
                                w.line("const int base = h * W - PL + s * DW;")
                                w.line("float *restrict orow = o + p * Q;")
                                w.line("for (int q = q0; q < q1; q++) orow[q] += wv * xc[base + q * SW];")
                            }
                        }
                    }
                }
                Epilogues.plane(a.epilogue, output: "o", count: "P * Q", residual: a.epilogue.residual ? "residual + (size_t)b * RS + (size_t)k * (P * Q)" : "",
                                channel: "k", &w)
            }
        }
    }
}

/// The fused epilogue (residual add, activation, PReLU) on finished outputs; batch norm is
/// already folded into the weights by `<p>_prepare`.
enum Epilogues {
    /// Applies `e` to `count` floats at `output`, all of channel `channel`.
    static func plane(_ e: Epilogue, output: String, count: String, residual: String, channel: String, _ w: inout CWriter) {
        guard e.residual || e.activation != nil || e.prelu != nil else { return }
        if e.residual { w.line("const float *restrict res = \(residual);") }
        if let p = e.prelu { w.line("const float a = slope[\(p.shared ? "0" : channel)];") }
        w.block("for (int i = 0; i < \(count); i++)") { w in
            w.line("\(e.residual ? "const float v = \(output)[i] + res[i];" : "const float v = \(output)[i];")")
            w.line("\(output)[i] = \(value(e, "v"));")
        }
    }

    /// The expression of the activation part of `e` applied to `v`.
    static func value(_ e: Epilogue, _ v: String) -> String {
        if let act = e.activation { return ElementwiseKernel.expression(act, v) }
        if e.prelu != nil { return "(\(v) > 0.0f ? \(v) : a * \(v))" }
        return v
    }
}

/// Fully connected, out[n x J] = in[n x I] * W^T: at batch 1 a matrix-vector product
/// (memory-bound: each weight read once, `cnnc_sgemv`), else `cnnc_sgemm` with W transposed
/// in its packing; tasks are blocks of units, bias and epilogue applied per block.
enum DenseKernel {
    static func emit(_ k: KernelContext, _ a: DenseAttributes, _ w: inout CWriter) {
        let units = a.units
        let jb = units <= 64 ? units : 64
        w.line("enum { I = \(k.x.count), J = \(units), JB = \(jb), JBLOCKS = (J + JB - 1) / JB };")
        w.comment("one task per block of units; n == 1 reads each weight once, n > 1 runs a GEMM over the batch")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int jb = 0; jb < JBLOCKS; jb++)") { w in
            w.line("const int j0 = jb * JB, nj = J - j0 < JB ? J - j0 : JB;")
            w.line("if (n == 1) cnnc_sgemv(nj, I, weight + (size_t)j0 * I, I, in, out + j0);")
            w.line("else cnnc_sgemm(n, nj, I, in, \(k.inStride(0)), 0, weight + (size_t)j0 * I, I, 1, out + j0, \(k.outStride), 0);")
            let e = a.epilogue
            guard k.hasBias || !e.isEmpty else { return }
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("for (int j = j0; j < j0 + nj; j++)") { w in
                    var v = "out[(size_t)b * \(k.outStride) + j]"
                    if k.hasBias { v += " + bias[j]" }
                    if e.residual { v += " + residual[(size_t)b * \(k.inStride(1)) + j]" }
                    w.line("const float v = \(v);")
                    if let p = e.prelu { w.line("const float a = slope[\(p.shared ? "0" : "j")];") }
                    w.line("out[(size_t)b * \(k.outStride) + j] = \(Epilogues.value(e, "v"));")
                }
            }
        }
    }
}

/// Element-wise ops over all n * count elements.
enum ElementwiseKernel {
    /// The C expression of an activation applied to `v`.
    static func expression(_ act: Activation, _ v: String) -> String {
        switch act {
        case .relu: return "(\(v) > 0.0f ? \(v) : 0.0f)"
        case .leakyRelu(let alpha): return "(\(v) > 0.0f ? \(v) : \(cFloat(alpha)) * \(v))"
        case .sigmoid: return "(1.0f / (1.0f + expf(-\(v))))"
        case .tanh: return "tanhf(\(v))"
        case .swish: return "(\(v) / (1.0f + expf(-\(v))))"
        case .elu(let alpha): return "(\(v) > 0.0f ? \(v) : \(cFloat(alpha)) * expm1f(\(v)))"
        case .selu(let alpha, let gamma):
            return "(\(cFloat(gamma)) * (\(v) > 0.0f ? \(v) : \(cFloat(alpha)) * expm1f(\(v))))"
        case .softplus: return "(\(v) > 0.0f ? \(v) + log1pf(expf(-\(v))) : log1pf(expf(\(v))))"
        case .hardSigmoid(let alpha, let beta):
            return "(\(v) != \(v) ? \(v) : fminf(fmaxf(\(cFloat(alpha)) * \(v) + \(cFloat(beta)), 0.0f), 1.0f))"
        case .hardSwish: return "(\(v) != \(v) ? \(v) : \(v) * fminf(fmaxf(\(v) + 3.0f, 0.0f), 6.0f) / 6.0f)"
        case .clip(let low, let high):
            return "(\(v) < \(cFloat(low)) ? \(cFloat(low)) : (\(v) > \(cFloat(high)) ? \(cFloat(high)) : \(v)))"
        case .affine(let scale, let shift): return "(\(v) * \(cFloat(scale)) + \(cFloat(shift)))"
        }
    }

    static func activation(_ k: KernelContext, _ act: Activation, _ w: inout CWriter) {
        forEachElement(k, simd: act.isPiecewiseLinear, &w) { out, inputs, _, w in
            w.line("const float v = \(inputs[0]);")
            w.line("\(out) = \(expression(act, "v"));")
        }
    }

    static func prelu(_ k: KernelContext, _ w: inout CWriter) {
        guard case .prelu(let a) = k.node.op else { return }
        let channels = a.shared ? 1 : k.y.dims[0]
        let inner = channels == 1 ? k.y.count : k.y.count / k.y.dims[0]
        w.line("enum { CH = \(k.y.dims[0]), INNER = \(inner) };")
        forEachElement(k, &w) { out, inputs, index, w in
            w.line("const float v = \(inputs[0]);")
            w.line(channels == 1 ? "const float a = weight[0];" : "const float a = weight[\(index ?? "(i / INNER) % CH")];")
            w.line("\(out) = v > 0.0f ? v : a * v;")
        }
    }

    static func add(_ k: KernelContext, _ w: inout CWriter) {
        forEachElement(k, &w) { out, inputs, _, w in
            w.line("\(out) = \(inputs.joined(separator: " + "));")
        }
    }

    /// `in0 OP in1` with `in1` broadcast (ShapeRules.broadcast): element by element when the
    /// shapes match, else one task per (sample, element of in1) over the RUN elements of in0
    /// that share it.
    static func binary(_ k: KernelContext, _ op: BinaryOp, _ w: inout CWriter) {
        let symbol: String
        switch op {
        case .mul: symbol = "*"
        case .sub: symbol = "-"
        case .div: symbol = "/"
        }
        guard let run = ShapeRules.broadcast(k.inputShapes[1], onto: k.x) else {
            fatalError("compiler bug: \(k.node.displayName): \(k.inputShapes[1]) does not broadcast onto \(k.x)")
        }
        if run == 1 {
            forEachElement(k, &w) { out, inputs, _, w in
                w.line("\(out) = \(inputs[0]) \(symbol) \(inputs[1]);")
            }
            return
        }
        w.line("enum { RUN = \(run), RUNS = \(k.y.count / run), IS0 = \(k.inStride(0)), IS1 = \(k.inStride(1)), OS = \(k.outStride) }; /* sample strides */")
        w.comment("one task per (sample, element of in1): the RUN elements of in0 that share it")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int j = 0; j < RUNS; j++)") { w in
                w.line("const float s = in1[(size_t)b * IS1 + j];")
                w.line("const float *\(k.inRestrict(0))a = in0 + (size_t)b * IS0 + (size_t)j * RUN;")
                w.line("float *\(k.outRestrict)o = out + (size_t)b * OS + (size_t)j * RUN;")
                w.line("for (int i = 0; i < RUN; i++) o[i] = a[i] \(symbol) s;")
            }
        }
    }

    /// The loop over every element: flat over n * count when every operand is dense, else per
    /// sample with the sample strides. `body` gets the C lvalue of the output element, the
    /// input elements, and (per sample only) the channel index `i / INNER` of the element.
    /// `simd`: the body is plain arithmetic (no exp, log or tanh), so the flat loop is marked
    /// `omp simd` (gcc's -O2 leaves loops of unknown length scalar otherwise).
    static func forEachElement(_ k: KernelContext, simd: Bool = true, _ w: inout CWriter,
                               _ body: (_ out: String, _ inputs: [String], _ channel: String?, _ w: inout CWriter) -> Void) {
        let names = k.inputNames
        if k.isDense {
            w.line("const size_t total = (size_t)n * \(k.y.count);")
            w.line("#pragma omp parallel for\(simd ? " simd" : "") schedule(static)")
            w.block("for (size_t i = 0; i < total; i++)") { w in
                body("out[i]", names.map { "\($0)[i]" }, nil, &w)
            }
        } else {
            w.comment("per sample: an operand is a slice of a larger buffer")
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("for (int i = 0; i < \(k.y.count); i++)") { w in
                    let inputs = names.indices.map { "\(names[$0])[(size_t)b * \(k.inStride($0)) + i]" }
                    body("out[(size_t)b * \(k.outStride) + i]", inputs, "i / INNER", &w)
                }
            }
        }
    }
}

/// Windowed pooling with PyTorch's padding and ceil-mode rules, and global average pooling.
enum PoolKernel {
    static func emit(_ k: KernelContext, _ a: PoolAttributes, isMax: Bool, _ w: inout CWriter) {
        let x = k.x, y = k.y
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), PB = \(a.padding.bottom), PR = \(a.padding.right) };
        \(k.strideEnum())
        """)
        w.comment("one task per (sample, channel) plane")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * (H * W);")
                w.line("float *restrict o = out + (size_t)b * OS + (size_t)c * (P * Q);")
                let inner = interior(a, input: x, output: y)
                let whole = inner.p0 == 0 && inner.p1 == y.h && inner.q0 == 0 && inner.q1 == y.w
                if !whole {
                    w.comment("windows cut by the padding or the far edge: clipped to the input; rows P0..<P1 and columns Q0..<Q1 (the windows inside) below")
                    w.line("enum { P0 = \(inner.p0), P1 = \(inner.p1), Q0 = \(inner.q0), Q1 = \(inner.q1) };")
                    w.block("for (int p = 0; p < P; p++)") { w in
                        w.line("const int qa = p >= P0 && p < P1 ? Q0 : Q, qb = p >= P0 && p < P1 ? Q1 : Q;")
                        w.block("for (int q = qa == 0 ? qb : 0; q < Q; q = q + 1 == qa ? qb : q + 1)") { w in
                            clippedWindow(a, isMax: isMax, &w)
                        }
                    }
                }
                guard inner.p0 < inner.p1 && inner.q0 < inner.q1 else { return }
                w.comment("""
                    windows inside the input: loops of constant length, vectorized over q\(isMax ? ";\nNaN wins once seen (one condition, `|`: a select, not a branch)" : "")
                    """)
                w.block("for (int p = \(whole ? "0" : "P0"); p < \(whole ? "P" : "P1"); p++)") { w in
                    w.line("#pragma omp simd")
                    w.block("for (int q = \(whole ? "0" : "Q0"); q < \(whole ? "Q" : "Q1"); q++)") { w in
                        w.line("const float *win = xc + (p * SH - PT) * W + q * SW - PL;")
                        if isMax {
                            w.line("float m = -INFINITY;")
                            w.line("for (int r = 0; r < R; r++)")
                            w.line("    for (int s = 0; s < S; s++) { const float e = win[r * W + s]; m = ((e > m) | (e != e)) ? e : m; }")
                            w.line("o[p * Q + q] = m;")
                        } else {
                            w.line("float sum = 0.0f;")
                            w.line("for (int r = 0; r < R; r++)")
                            w.line("    for (int s = 0; s < S; s++) sum += win[r * W + s];")
                            w.line("o[p * Q + q] = sum / (float)(R * S);")
                        }
                    }
                }
            }
        }
    }

    /// One output (p, q) of a window clipped to the input, with PyTorch's divisor for average
    /// pooling (padding counted up to the padded edge where count_include_pad is set).
    static func clippedWindow(_ a: PoolAttributes, isMax: Bool, _ w: inout CWriter) {
        w.line("int h0 = p * SH - PT, w0 = q * SW - PL;")
        w.line("int h1 = h0 + R, w1 = w0 + S;")
        if !isMax && a.countIncludePad {
            w.comment("the divisor counts padding up to the padded edge (PyTorch)")
            w.line("if (h1 > H + PB) h1 = H + PB;")
            w.line("if (w1 > W + PR) w1 = W + PR;")
            w.line("const int padded = (h1 - h0) * (w1 - w0);")
        }
        w.line("if (h0 < 0) h0 = 0;")
        w.line("if (w0 < 0) w0 = 0;")
        w.line("if (h1 > H) h1 = H;")
        w.line("if (w1 > W) w1 = W;")
        if isMax {
            w.comment("NaN wins once seen, as in the interpreter and PyTorch")
            w.line("float m = -INFINITY;")
            w.line("for (int h = h0; h < h1; h++)")
            w.line("    for (int v = w0; v < w1; v++) { const float e = xc[h * W + v]; m = (e > m || e != e) ? e : m; }")
            w.line("o[p * Q + q] = m;")
        } else {
            w.line("float sum = 0.0f;")
            w.line("for (int h = h0; h < h1; h++)")
            w.line("    for (int v = w0; v < w1; v++) sum += xc[h * W + v];")
            let divisor = a.countIncludePad ? "padded" : "(h1 - h0) * (w1 - w0)"
            w.line("o[p * Q + q] = sum / (float)(\(divisor));")
        }
    }

    /// The outputs whose windows lie wholly inside the input: rows p0..<p1, columns q0..<q1
    /// (empty ranges where none does). Those loop over the window's constant size.
    static func interior(_ a: PoolAttributes, input x: Shape, output y: Shape) -> (p0: Int, p1: Int, q0: Int, q1: Int) {
        func range(pad: Int, stride: Int, kernel: Int, size: Int, outputs: Int) -> (Int, Int) {
            let lo = min(outputs, (pad + stride - 1) / stride)
            let room = size + pad - kernel
            let hi = room < 0 ? 0 : min(outputs, room / stride + 1)
            return (lo, max(lo, hi))
        }
        let (p0, p1) = range(pad: a.padding.top, stride: a.stride.h, kernel: a.kernel.h, size: x.h, outputs: y.h)
        let (q0, q1) = range(pad: a.padding.left, stride: a.stride.w, kernel: a.kernel.w, size: x.w, outputs: y.w)
        return (p0, p1, q0, q1)
    }

    /// Whether every pooling window lies inside the input (no padding, none cut off at the
    /// far edge): the kernels then skip the clipping and loop over the window's constant size.
    static func windowsInside(_ a: PoolAttributes, input x: Shape, output y: Shape) -> Bool {
        a.padding.top == 0 && a.padding.left == 0 && (y.h - 1) * a.stride.h + a.kernel.h <= x.h
            && (y.w - 1) * a.stride.w + a.kernel.w <= x.w
    }

    static func globalMax(_ k: KernelContext, _ w: inout CWriter) {
        let x = k.x
        w.line("enum { C = \(x.c), HW = \(x.h * x.w) };")
        w.line(k.strideEnum())
        w.comment("one task per (sample, channel) plane; NaN wins once seen, as in the interpreter")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * HW;")
                w.line("float m = -INFINITY;")
                w.line("for (int i = 0; i < HW; i++) m = (xc[i] > m || xc[i] != xc[i]) ? xc[i] : m;")
                w.line("out[(size_t)b * OS + c] = m;")
            }
        }
    }

    static func global(_ k: KernelContext, _ w: inout CWriter) {
        let x = k.x
        w.line("enum { C = \(x.c), HW = \(x.h * x.w) };")
        w.line(k.strideEnum())
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * HW;")
                w.line("float sum = 0.0f;")
                w.line("for (int i = 0; i < HW; i++) sum += xc[i];")
                w.line("out[(size_t)b * OS + c] = sum / (float)HW;")
            }
        }
    }
}

/// Normalizations: batch norm (inference), local response norm, softmax.
enum NormKernel {
    static func batchNorm(_ k: KernelContext, _ a: BatchNormAttributes, _ w: inout CWriter) {
        let c = k.y.dims[0], inner = k.y.count / c
        w.line("enum { C = \(c), INNER = \(inner) };")
        w.line(k.strideEnum())
        w.comment("inference: running statistics; one task per (sample, channel)")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float scale = weight[c] / sqrtf(running_var[c] + \(cFloat(a.epsilon)));")
                w.line("const float shift = bias[c] - running_mean[c] * scale;")
                w.line("const float *\(k.inRestrict(0))xc = in + (size_t)b * IS + (size_t)c * INNER;")
                w.line("float *\(k.outRestrict)o = out + (size_t)b * OS + (size_t)c * INNER;")
                w.line("for (int i = 0; i < INNER; i++) o[i] = xc[i] * scale + shift;")
            }
        }
    }

    static func lrn(_ k: KernelContext, _ a: LRNAttributes, _ w: inout CWriter) {
        let x = k.x
        w.line("enum { C = \(x.c), HW = \(x.h * x.w), LO = \(a.size / 2), HI = \((a.size - 1) / 2) };")
        w.line(k.strideEnum())
        w.comment("out = in / (k + alpha/size * sum of squares over channels c-LO..c+HI) ^ beta")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float *restrict xb = in + (size_t)b * IS;")
                w.line("float *restrict o = out + (size_t)b * OS + (size_t)c * HW;")
                w.line("const int c0 = c - LO < 0 ? 0 : c - LO, c1 = c + HI >= C ? C - 1 : c + HI;")
                w.block("for (int i = 0; i < HW; i++)") { w in
                    w.line("float sq = 0.0f;")
                    w.line("for (int j = c0; j <= c1; j++) sq += xb[(size_t)j * HW + i] * xb[(size_t)j * HW + i];")
                    w.line("o[i] = xb[(size_t)c * HW + i] / powf(\(cFloat(a.k)) + \(cFloat(a.alpha / Double(a.size))) * sq, \(cFloat(a.beta)));")
                }
            }
        }
    }

    static func softmax(_ k: KernelContext, log: Bool, _ w: inout CWriter) {
        let c = k.y.dims[0], inner = k.y.count / c
        w.line("enum { C = \(c), INNER = \(inner) };")
        w.line(k.strideEnum())
        w.comment("over channels (features) at each position; one task per (sample, position)")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int i = 0; i < INNER; i++)") { w in
                w.line("const float *\(k.inRestrict(0))xb = in + (size_t)b * IS + i;")
                w.line("float *\(k.outRestrict)o = out + (size_t)b * OS + i;")
                w.line("float m = -INFINITY;")
                w.line("for (int c = 0; c < C; c++) m = xb[(size_t)c * INNER] > m ? xb[(size_t)c * INNER] : m;")
                w.line("float sum = 0.0f;")
                if log {
                    w.comment("log softmax: x - max - log(sum); every x is read before its o is written (in place is safe)")
                    w.line("for (int c = 0; c < C; c++) sum += expf(xb[(size_t)c * INNER] - m);")
                    w.line("const float ls = logf(sum);")
                    w.line("for (int c = 0; c < C; c++) o[(size_t)c * INNER] = xb[(size_t)c * INNER] - m - ls;")
                } else {
                    w.comment("each x is read before its o is written (in place is safe)")
                    w.block("for (int c = 0; c < C; c++)") { w in
                        w.line("const float e = expf(xb[(size_t)c * INNER] - m);")
                        w.line("o[(size_t)c * INNER] = e;")
                        w.line("sum += e;")
                    }
                    w.line("const float inv = 1.0f / sum;")
                    w.line("for (int c = 0; c < C; c++) o[(size_t)c * INNER] *= inv;")
                }
            }
        }
    }
}

/// Data movement: concatenation, shuffle and slices along channels.
enum LayoutKernel {
    /// out[c] = in[(c % G) * CG + c / G], one plane copy per (sample, output channel).
    static func shuffle(_ k: KernelContext, groups: Int, _ w: inout CWriter) {
        let channels = k.x.dims[0], inner = k.x.count / channels
        w.line("enum { C = \(channels), G = \(groups), CG = \(channels / groups), INNER = \(inner) };")
        w.line(k.strideEnum())
        w.comment("one task per (sample, output channel): the plane of input channel (c % G) * CG + c / G")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("memcpy(out + (size_t)b * OS + (size_t)c * INNER, in + (size_t)b * IS + (size_t)((c % G) * CG + c / G) * INNER, sizeof(float) * INNER);")
            }
        }
    }

    /// `int v = i - before;` then the mode's source rule on v (-1: the constant fills it).
    static func padSource(_ mode: PadMode, _ v: String, _ i: String, before: String, size: String) -> [String] {
        var lines = ["int \(v) = \(i) - \(before);"]
        switch mode {
        case .constant: lines.append("if (\(v) < 0 || \(v) >= \(size)) \(v) = -1;")
        case .edge: lines.append("\(v) = \(v) < 0 ? 0 : \(v) >= \(size) ? \(size) - 1 : \(v);")
        case .reflect: lines.append("\(v) = \(v) < 0 ? -\(v) : \(v) >= \(size) ? 2 * (\(size) - 1) - \(v) : \(v);")
        }
        return lines
    }

    /// out[k, p, q] = in[k - CB, src(p), src(q)] or the constant; one task per (sample, output channel).
    static func pad(_ k: KernelContext, _ a: PadAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        w.line("enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), CB = \(a.channelsBefore), PT = \(a.padding.top), PL = \(a.padding.left) };")
        w.line(k.strideEnum())
        w.line("const float value = \(cFloat(a.value));")
        w.comment("one task per (sample, output channel); rows and columns from their sources (\(a.mode.rawValue)), -1: the constant")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int k = 0; k < K; k++)") { w in
                w.line("float *restrict o = out + (size_t)b * OS + (size_t)k * (P * Q);")
                w.line("const int c = k - CB;")
                w.block("if (c < 0 || c >= C)") { w in
                    w.line("for (int i = 0; i < P * Q; i++) o[i] = value;")
                    w.line("continue;")
                }
                w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * (H * W);")
                w.block("for (int p = 0; p < P; p++)") { w in
                    for line in padSource(a.mode, "h", "p", before: "PT", size: "H") { w.line(line) }
                    w.block("for (int q = 0; q < Q; q++)") { w in
                        for line in padSource(a.mode, "v", "q", before: "PL", size: "W") { w.line(line) }
                        w.line("o[p * Q + q] = h < 0 || v < 0 ? value : xc[h * W + v];")
                    }
                }
            }
        }
    }

    /// Nearest: out[c, p, q] = in[c, p / SH, q / SW]. Bilinear: out[c, p, q] mixes rows h0, h1
    /// and columns v0, v1 by lh and lv (`bilinearTaps`). One task per (sample, channel).
    static func upsample(_ k: KernelContext, _ a: UpsampleAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        w.line("enum { C = \(x.c), H = \(x.h), W = \(x.w), P = \(y.h), Q = \(y.w), SH = \(a.scale.h), SW = \(a.scale.w) };")
        w.line(k.strideEnum())
        switch a.mode {
        case .nearest:
            w.comment("one task per (sample, channel): each output row repeats the columns of input row p / SH")
        case .bilinear:
            w.comment("one task per (sample, channel): each output mixes its four sources (\(a.alignCorners ? "align_corners" : "half_pixel"))")
        }
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * (H * W);")
                w.line("float *restrict o = out + (size_t)b * OS + (size_t)c * (P * Q);")
                switch a.mode {
                case .nearest:
                    w.line("for (int p = 0; p < P; p++)")
                    w.line("    for (int q = 0; q < Q; q++) o[p * Q + q] = xc[(p / SH) * W + q / SW];")
                case .bilinear:
                    w.block("for (int p = 0; p < P; p++)") { w in
                        for line in bilinearTaps(a, index: "p", size: "H", outSize: y.h, outName: "P", scale: "SH", names: ("h0", "h1", "lh")) { w.line(line) }
                        w.block("for (int q = 0; q < Q; q++)") { w in
                            for line in bilinearTaps(a, index: "q", size: "W", outSize: y.w, outName: "Q", scale: "SW", names: ("v0", "v1", "lv")) { w.line(line) }
                            w.line("o[p * Q + q] = (1.0f - lh) * ((1.0f - lv) * xc[h0 * W + v0] + lv * xc[h0 * W + v1])")
                            w.line("    + lh * ((1.0f - lv) * xc[h1 * W + v0] + lv * xc[h1 * W + v1]);")
                        }
                    }
                }
            }
        }
    }

    /// The C of `UpsampleAttributes.taps` for output index `index` along an axis of `size`
    /// (the same double arithmetic): the sources `names.0`, `names.1` and the weight `names.2`
    /// of the second.
    static func bilinearTaps(_ a: UpsampleAttributes, index: String, size: String, outSize: Int, outName: String,
                             scale: String, names: (String, String, String)) -> [String] {
        let (i0, i1, lambda) = names
        let source: String
        if a.alignCorners {
            source = outSize > 1 ? "\(index) * (double)(\(size) - 1) / (\(outName) - 1)" : "0.0"
        } else {
            source = "(\(index) + 0.5) / \(scale) - 0.5"
        }
        return [
            "double s\(i0) = \(source);",
            "if (s\(i0) < 0.0) s\(i0) = 0.0;",
            "int \(i0) = (int)s\(i0);",
            "if (\(i0) > \(size) - 1) \(i0) = \(size) - 1;",
            "const int \(i1) = \(i0) + 1 < \(size) ? \(i0) + 1 : \(size) - 1;",
            "const float \(lambda) = (float)(s\(i0) - \(i0));",
        ]
    }

    /// out = in[:, start ..< end], one block copy per sample.
    static func slice(_ k: KernelContext, start: Int, end: Int, _ w: inout CWriter) {
        let inner = k.x.count / k.x.dims[0]
        w.line("enum { START = \(start), COUNT = \(end - start), INNER = \(inner) };")
        w.line(k.strideEnum())
        w.comment("one task per sample: channels START ..< START + COUNT are one contiguous block")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.line("memcpy(out + (size_t)b * OS, in + (size_t)b * IS + (size_t)START * INNER, sizeof(float) * COUNT * INNER);")
        }
    }

    /// Copies each input that its producer did not already write into its slice of the output.
    static func concat(_ k: KernelContext, _ w: inout CWriter) {
        var offset = 0
        var copies: [(input: Int, offset: Int)] = []
        for (i, s) in k.inputShapes.enumerated() {
            if k.copies(i) {
                copies.append((i, offset))
                if !k.concatCopies.isEmpty { w.comment("in\(i) is copied: \(k.concatCopies[i]!)") }
            } else {
                w.comment("in\(i) is already in its slice: its producer wrote it there")
            }
            offset += s.count
        }
        w.comment("each copied input's per-sample block goes to its channel offset")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            for (i, offset) in copies {
                let count = k.inputShapes[i].count
                w.line("memcpy(out + (size_t)b * \(k.outStride) + \(offset), in\(i) + (size_t)b * \(k.inStride(i)), sizeof(float) * \(count));")
            }
        }
    }
}
