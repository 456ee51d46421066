// Writes the C translation of a graph: `<model>.h`, the public API, and `<model>.c`, one
// static function per node plus the entry points. The caller owns all memory (weights and
// activation arena, sized by macros) or uses `<p>_create`, which allocates once. Output is
// deterministic: the same graph and options give byte-identical text.

import CNNCIR

/// Options of the C backend.
public struct COptions: Sendable {
    /// Prefix of every generated symbol (default: the network name).
    public var prefix: String
    /// The compile-time maximum batch; calls take `n <= MAX_BATCH`.
    public var maxBatch: Int
    /// The header's file name, as `#include`d by the source.
    public var headerName: String
    /// The `.net` file the graph came from, named in the banner.
    public var sourceName: String
    /// The seed of `<p>_init_weights` when the user calls `<p>_create` without weights.
    public var seed: UInt64

    /// Emit the training API too (`<p>_train_step`, ...), running this graph.
    public var training: TrainingSpec?
    /// Weights linked into the program (`--embed-weights`): `<p>_create` copies them from the
    /// symbol `<p>_embedded_weights` (see `weightsBlob`) instead of seeding.
    public var embedWeights = false
    /// Time every layer's kernel call (`cnnc profile`): the source gets
    /// `<p>_profile_layers` (names), `<p>_profile_seconds` (seconds per layer, summed over the
    /// calls since the caller last zeroed them) and `<p>_profile_count`. Not for production
    /// builds: the counters are global.
    public var profile = false

    public init(prefix: String, maxBatch: Int = 1, headerName: String, sourceName: String, seed: UInt64 = 0,
                training: TrainingSpec? = nil) {
        self.prefix = prefix; self.maxBatch = maxBatch; self.headerName = headerName
        self.sourceName = sourceName; self.seed = seed; self.training = training
    }
}

/// The generated files' text.
public struct CModel: Sendable {
    public var header: String
    public var source: String
}

/// Where a node's value lives at run time.
enum BufferLocation: Equatable {
    /// The caller's i-th input pointer.
    case input(Int)
    /// Floats from the start of the arena.
    case arena(Int)
}

/// Floats per alignment unit (64 bytes).
let alignFloats = 16

func alignUp(_ n: Int) -> Int { (n + alignFloats - 1) / alignFloats * alignFloats }

/// Generates C for a shape-inferred, verified graph.
public enum CEmitter {
    /// The memory the generated code needs for a graph at a batch size, in bytes.
    public struct MemorySummary: Sendable {
        public var arenaBytes: Int
        /// Every computed value in its own buffer.
        public var naiveBytes: Int
        /// The peak of simultaneously live buffers: no plan of these buffers can use less (a
        /// concat's buffer counts whole from its first slice's write, its slices not again).
        public var lowerBoundBytes: Int
        public var weightsBytes: Int
        /// Element-wise nodes whose kernel overwrites its input, in graph order.
        public var inPlaceNodes: [String]
        /// Concat inputs written into their slice by their producers, and all concat inputs.
        public var concatInputsInPlace: Int
        public var concatInputs: Int
        /// Concats that still run a copy kernel (for some input), in graph order.
        public var copyingConcats: [String]
    }

    public static func memory(_ graph: Graph, maxBatch: Int) -> MemorySummary {
        let layout = Layout(graph, maxBatch: maxBatch)
        let arena = layout.arena
        let order = graph.nodes.map(\.name)
        return MemorySummary(arenaBytes: layout.arenaFloats * 4, naiveBytes: layout.naiveFloats * 4,
                             lowerBoundBytes: layout.lowerBoundFloats * 4, weightsBytes: layout.weightFloats * 4,
                             inPlaceNodes: order.filter { arena.inPlaceInput[$0] != nil },
                             concatInputsInPlace: arena.concatInputsInPlace.inPlace, concatInputs: arena.concatInputsInPlace.total,
                             copyingConcats: order.filter(Set(arena.copyingConcats).contains))
    }

    /// The file's parameters laid out as the weights region holds them (what `--embed-weights`
    /// links in), from tensors by name; nil names a missing or misshapen tensor.
    public static func weightsBlob(_ graph: Graph, options: COptions, tensors: [String: (shape: [Int], data: [Float])])
        -> Result<[Float], DiagnosticList> {
        let layout = Layout(graph, maxBatch: options.maxBatch, parameterOrder: options.training?.graph.parameters())
        var blob = [Float](repeating: 0, count: layout.parameterFloats)
        var problems: [Diagnostic] = []
        for (spec, offset) in layout.parameters {
            guard let t = tensors[spec.name] else { problems.append(.error("tensor '\(spec.name)' not found")); continue }
            guard t.shape == spec.shape, t.data.count == spec.count else {
                problems.append(.error("tensor '\(spec.name)': expected shape \(spec.shape), got \(t.shape)")); continue
            }
            blob.replaceSubrange(offset..<(offset + spec.count), with: t.data)
        }
        return problems.isEmpty ? .success(blob) : .failure(DiagnosticList(problems))
    }

    public static func emit(_ graph: Graph, options: COptions) -> CModel {
        let layout = Layout(graph, maxBatch: options.maxBatch, parameterOrder: options.training?.graph.parameters())
        return CModel(header: header(graph, layout, options), source: source(graph, layout, options))
    }

    /// Memory layout: parameter offsets in the weights region and value locations.
    struct Layout {
        var parameters: [(spec: ParameterSpec, offset: Int)] = []
        var bindings: Bindings
        /// Offsets of parameters (by name) and derived tensors (by label) in the weights region.
        var tensorOffset: [String: Int] = [:]
        /// Floats of the file's parameters; derived tensors follow them.
        var parameterFloats = 0
        var weightFloats = 0
        var location: [String: BufferLocation] = [:]
        var arena: ArenaLayout
        var arenaFloats: Int { arena.arenaFloats }
        var naiveFloats: Int { arena.naiveFloats }
        var lowerBoundFloats: Int { arena.lowerBoundFloats }

        /// `parameterOrder`: the weights table (a training build uses the training graph's,
        /// which holds the same parameters as the inference graph).
        init(_ graph: Graph, maxBatch: Int, parameterOrder: [ParameterSpec]? = nil) {
            bindings = Bindings(graph)
            for spec in parameterOrder ?? graph.parameters() {
                parameters.append((spec, weightFloats))
                tensorOffset[spec.name] = weightFloats
                weightFloats += alignUp(spec.count)
            }
            parameterFloats = weightFloats
            for d in bindings.derived {
                tensorOffset[d.label] = weightFloats
                weightFloats += alignUp(d.count)
            }
            // Values, views, concat slices and in-place kernels in one arena (ArenaLayout).
            arena = ArenaLayout(graph, maxBatch: maxBatch)
            for node in graph.nodes {
                if let i = arena.inputIndex[node.name] { location[node.name] = .input(i) }
                else { location[node.name] = .arena(arena.place[node.name]!.offset) }
            }
        }

        /// Floats between consecutive samples of a value: a concat slice's buffer's per-sample
        /// size, else the value's own; 0 for a network input or a view of one (dense, the
        /// caller's pointer), as `KernelContext` reads 0.
        func sampleStride(_ name: String) -> Int { arena.place[name]?.stride ?? 0 }
    }

    public static func macroName(_ s: String) -> String { s.uppercased() }

    // MARK: header

    static func header(_ graph: Graph, _ layout: Layout, _ o: COptions) -> String {
        let p = o.prefix, P = macroName(o.prefix)
        var w = CWriter()
        w.comment("""
        \(o.headerName): C API of network '\(graph.name)', generated by cnnc from \(o.sourceName).
        Do not edit; regenerate with cnnc. See docs/c-api.md.
        """)
        w.line("#ifndef \(P)_H")
        w.line("#define \(P)_H")
        w.line()
        w.line("#include <stddef.h>")
        w.line("#include <stdint.h>")
        w.line("#include \"cnnc_runtime.h\"")
        w.line()
        w.line("#ifdef __cplusplus")
        w.line("extern \"C\" {")
        w.line("#endif")
        w.line()
        w.comment("sizes; regions must be \(P)_ALIGNMENT-byte aligned")
        w.line("#define \(P)_MAX_BATCH \(o.maxBatch)")
        w.line("#define \(P)_ALIGNMENT 64")
        w.line("#define \(P)_WEIGHTS_BYTES \(layout.weightFloats * 4)")
        w.line("#define \(P)_ARENA_BYTES \(max(layout.arenaFloats, alignFloats) * 4)")
        w.line("#define \(P)_NUM_PARAMETERS \(layout.parameters.count)")
        w.line("#define \(P)_NUM_INPUTS \(graph.inputs.count)")
        w.line("#define \(P)_NUM_OUTPUTS \(graph.outputs.count)")
        let names = CParameterNames(graph, prefix: p)
        for (node, macro) in zip(graph.inputs, names.inputMacros) {
            w.line("#define \(P)_INPUT_\(macro)_SIZE \(node.shape.count) /* per sample: \(node.shape)\(macro == macroName(node.name) ? "" : ", input '\(node.name)'") */")
        }
        for (name, macro) in zip(graph.outputs, names.outputMacros) {
            let shape = graph.node(named: name)!.shape
            w.line("#define \(P)_OUTPUT_\(macro)_SIZE \(shape.count) /* per sample: \(shape)\(macro == macroName(name) ? "" : ", output '\(name)'") */")
        }
        w.line()
        w.comment("""
        One model instance. Fill it with \(p)_init (caller-owned regions) or \(p)_create (allocates).
        A context runs one call at a time; use one context per thread.
        """)
        w.block("typedef struct \(p)_context", trailer: " \(p)_context;") { w in
            w.line("float *weights;       /* \(P)_WEIGHTS_BYTES: every parameter, see \(p)_parameter */")
            w.line("float *arena;         /* \(P)_ARENA_BYTES: activations */")
            w.line("void *owned_weights;  /* allocated by \(p)_create, else NULL */")
            w.line("void *owned_arena;")
            w.line("cnnc_error error;     /* the last failure, see \(p)_last_error */")
            w.line("int prepared;         /* derived tensors match the parameters (see \(p)_prepare) */")
            w.line("uint64_t version;     /* bumped whenever the parameters change (\(p)_prepare, train steps) */")
        }
        w.line()
        w.comment("A parameter tensor: name as in PyTorch's state_dict, shape, place in the weights region.")
        w.block("typedef struct \(p)_parameter_info", trailer: " \(p)_parameter_info;") { w in
            w.line("const char *name;")
            w.line("int ndim;")
            w.line("int64_t shape[4];")
            w.line("size_t offset;  /* in floats from ctx->weights */")
            w.line("size_t count;")
            w.line("int trainable;  /* 0 for batch-norm running statistics */")
        }
        w.line()
        w.comment("Uses caller-owned regions (either may be NULL to be set later); no allocation.")
        w.line("cnnc_status \(p)_init(\(p)_context *ctx, void *weights, void *arena);")
        w.comment("Allocates both regions and fills the weights by \(p)_init_weights(ctx, \(o.seed)).")
        w.line("cnnc_status \(p)_create(\(p)_context *ctx);")
        w.comment("Frees what \(p)_create allocated.")
        w.line("void \(p)_destroy(\(p)_context *ctx);")
        w.comment("""
        Recomputes what the kernels derive from the parameters (folded batch norms, Winograd
        filters). \(p)_init_weights and \(p)_load_weights call it; call it after changing
        parameters through \(p)_parameter_data.
        """)
        w.line("cnnc_status \(p)_prepare(\(p)_context *ctx);")
        w.comment("Seeded initialization, identical to cnnc's interpreter (He/Xavier uniform, PyTorch-style biases).")
        w.line("cnnc_status \(p)_init_weights(\(p)_context *ctx, uint64_t seed);")
        w.comment("""
        Loads every parameter from a safetensors file (float32, names as in the IR).
        Missing, extra, wrongly shaped or truncated tensors fail with a message naming the tensor;
        on failure the weights may be partly overwritten.
        """)
        w.line("cnnc_status \(p)_load_weights(\(p)_context *ctx, const char *path);")
        w.comment("Writes every parameter to a safetensors file.")
        w.line("cnnc_status \(p)_save_weights(\(p)_context *ctx, const char *path);")
        w.comment("Parameter table access: index 0 .. \(P)_NUM_PARAMETERS-1, or by name (NULL if absent).")
        w.line("const \(p)_parameter_info *\(p)_parameter(int index);")
        w.line("float *\(p)_parameter_data(\(p)_context *ctx, const char *name);")
        w.comment("The message of the last failure on this context (\"\" after success).")
        w.line("const char *\(p)_last_error(const \(p)_context *ctx);")
        w.line()
        let inputArgs = names.inputs.map { "const float *\($0)" }
        let outputArgs = names.outputs.map { "float *\($0)" }
        w.comment("""
        Inference on n samples (1 <= n <= \(P)_MAX_BATCH), NCHW float32, inputs then outputs:
        \(zip(names.inputs, graph.inputs).map { "  \(CParameterNames.described($0, $1.name)): n x \($1.shape)" }.joined(separator: "\n"))
        \(zip(names.outputs, graph.outputs).map { "  \(CParameterNames.described($0, $1)): n x \(graph.node(named: $1)!.shape)" }.joined(separator: "\n"))
        """)
        w.line("cnnc_status \(p)_forward(\(p)_context *ctx, \((inputArgs + outputArgs).joined(separator: ", ")), int n);")
        w.comment("The same with arrays of pointers, in the order above (for generic drivers).")
        w.line("cnnc_status \(p)_forward_v(\(p)_context *ctx, const float *const *inputs, float *const *outputs, int n);")
        w.line()
        if let spec = o.training {
            let plan = GradientPlan(spec.graph, frozen: spec.frozen)
            TrainingEmitter.header(graph, spec, o, layout: TrainingLayout(spec, plan: plan, maxBatch: o.maxBatch), plan: plan, &w)
        }
        w.line("#ifdef __cplusplus")
        w.line("}")
        w.line("#endif")
        w.line()
        w.line("#endif /* \(P)_H */")
        return w.text
    }

    // MARK: source

    static func source(_ graph: Graph, _ layout: Layout, _ o: COptions) -> String {
        let p = o.prefix, P = macroName(o.prefix)
        var w = CWriter()
        w.comment("""
        Network '\(graph.name)', generated by cnnc from \(o.sourceName). Do not edit.

        Glossary: N batch (n <= \(P)_MAX_BATCH), C input channels, H W input height and width,
        K output channels, R S kernel height and width, P Q output height and width, G groups.
        Tensors are NCHW float32. Parallel loops run only over independent outputs, so
        results are bitwise identical at any number of threads.
        """)
        w.line("#include \"\(o.headerName)\"")
        w.line()
        w.line("#include <math.h>")
        w.line("#include <string.h>")
        if o.embedWeights {
            w.line()
            w.comment("the weights linked into the program (the .S file cnnc wrote with --embed-weights)")
            w.line("extern const float \(p)_embedded_weights[];")
        }
        if o.training != nil {
            w.line("#include <stdio.h>")
            w.line("#include <stdlib.h>")
        }
        w.line()

        // Parameter table.
        w.comment("name, ndim, shape, offset (floats), count, trainable")
        w.block("static const \(p)_parameter_info parameters[\(max(layout.parameters.count, 1))] =", trailer: ";") { w in
            if layout.parameters.isEmpty { w.line("{\"\", 0, {0, 0, 0, 0}, 0, 0, 0},") }
            for (spec, offset) in layout.parameters {
                let dims = (spec.shape + Array(repeating: 0, count: 4 - spec.shape.count)).map(String.init)
                w.line("{\(cStringLiteral(spec.name)), \(spec.shape.count), {\(dims.joined(separator: ", "))}, \(offset), \(spec.count), \(spec.trainable ? 1 : 0)},")
            }
        }
        w.line()

        // Kernels.
        let index = graph.indexByName()
        var kernels: [KernelContext] = []
        for node in graph.nodes {
            switch node.op {
            case .input, .flatten, .dropout: continue
            case .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                 .batchNorm, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                var k = KernelContext(
                    node: node, inputShapes: node.inputs.map { graph.nodes[index[$0]!].shape },
                    arguments: layout.bindings.arguments[node.name] ?? [],
                    function: "node_\(node.name)")
                k.inputSampleStrides = node.inputs.map { layout.sampleStride($0) }
                k.outputSampleStride = layout.sampleStride(node.name)
                k.inPlaceInput = layout.arena.inPlaceInput[node.name]
                k.hasScratch = layout.arena.scratch(of: node.name) != nil
                k.maxBatch = o.maxBatch
                if let refusals = layout.arena.concatRefusals[node.name] {
                    k.concatCopies = refusals.map { $0?.text }
                    // Every input already in its slice: nothing to run.
                    if refusals.allSatisfy({ $0 == nil }) { kernels.append(k); continue }
                }
                KernelEmitter.emit(k, into: &w)
                kernels.append(k)
            }
        }

        if o.profile {
            let timed = kernels.filter { $0.concatCopies.isEmpty || !$0.concatCopies.allSatisfy({ $0 == nil }) }
            w.comment("cnnc profile: seconds per layer, summed over calls (global: a profiling build only)")
            w.line("const int \(p)_profile_count = \(timed.count);")
            w.line("const char *const \(p)_profile_layers[\(max(timed.count, 1))] = {\(timed.isEmpty ? "\"\"" : timed.map { cStringLiteral($0.node.name) }.joined(separator: ", "))};")
            w.line("double \(p)_profile_seconds[\(max(timed.count, 1))];")
            w.line()
        }
        emitRuntimeEntryPoints(graph, layout, o, &w)

        // Forward.
        w.block("cnnc_status \(p)_forward_v(\(p)_context *ctx, const float *const *inputs, float *const *outputs, int n)") { w in
            w.line("if (!ctx || !ctx->weights || !ctx->arena || !inputs || !outputs) {")
            w.line("    cnnc_error_set(ctx ? &ctx->error : NULL, CNNC_ERR_ARGUMENT, \"\(p)_forward: context not initialized or null pointer\");")
            w.line("    return CNNC_ERR_ARGUMENT;")
            w.line("}")
            w.line("if (n < 1 || n > \(P)_MAX_BATCH) {")
            w.line("    cnnc_error_set(&ctx->error, CNNC_ERR_BATCH, \"batch %d is outside 1..%d (\(P)_MAX_BATCH)\", n, \(P)_MAX_BATCH);")
            w.line("    return CNNC_ERR_BATCH;")
            w.line("}")
            w.line("for (int i = 0; i < \(P)_NUM_INPUTS; i++) if (!inputs[i]) { cnnc_error_set(&ctx->error, CNNC_ERR_ARGUMENT, \"input %d is NULL\", i); return CNNC_ERR_ARGUMENT; }")
            w.line("for (int i = 0; i < \(P)_NUM_OUTPUTS; i++) if (!outputs[i]) { cnnc_error_set(&ctx->error, CNNC_ERR_ARGUMENT, \"output %d is NULL\", i); return CNNC_ERR_ARGUMENT; }")
            w.line("if (!ctx->prepared) \(p)_prepare(ctx);")
            w.line("float *arena = ctx->arena;")
            w.line("const float *weights = ctx->weights;")
            w.line("(void)arena;")
            w.line("(void)weights;")
            var timed = 0
            for k in kernels {
                if !k.concatCopies.isEmpty && k.concatCopies.allSatisfy({ $0 == nil }) {
                    w.comment("\(k.node.displayName): every input was written into its slice by its producer")
                    continue
                }
                var args = [pointer(k.node.name, layout)]
                args += k.passedInputs.map { pointer(k.node.inputs[$0], layout) }
                for argument in k.arguments {
                    args.append("weights + \(layout.tensorOffset[argument.tensor]!)")
                }
                if let scratch = layout.arena.scratch(of: k.node.name) { args.append("arena + \(scratch.offset)") }
                args.append("n")
                let call = "\(k.function)(\(args.joined(separator: ", ")));"
                if o.profile {
                    w.line("{ const double t0 = cnnc_now_seconds(); \(call) \(p)_profile_seconds[\(timed)] += cnnc_now_seconds() - t0; }")
                    timed += 1
                } else {
                    w.line(call)
                }
            }
            for (i, name) in graph.outputs.enumerated() {
                let count = graph.node(named: name)!.shape.count
                let stride = layout.sampleStride(name)
                if stride == count || stride == 0 {
                    w.line("memcpy(outputs[\(i)], \(pointer(name, layout)), sizeof(float) * (size_t)n * \(count));")
                } else {
                    w.line("for (int b = 0; b < n; b++) memcpy(outputs[\(i)] + (size_t)b * \(count), \(pointer(name, layout)) + (size_t)b * \(stride), sizeof(float) * \(count));")
                }
            }
            w.line("ctx->error.status = CNNC_OK;")
            w.line("ctx->error.message[0] = '\\0';")
            w.line("return CNNC_OK;")
        }
        w.line()
        let names = CParameterNames(graph, prefix: p)
        let inputArgs = names.inputs.map { "const float *\($0)" }
        let outputArgs = names.outputs.map { "float *\($0)" }
        w.block("cnnc_status \(p)_forward(\(p)_context *ctx, \((inputArgs + outputArgs).joined(separator: ", ")), int n)") { w in
            w.line("const float *const inputs[\(max(graph.inputs.count, 1))] = {\(names.inputs.joined(separator: ", "))};")
            w.line("float *const outputs[\(max(graph.outputs.count, 1))] = {\(names.outputs.joined(separator: ", "))};")
            w.line("return \(p)_forward_v(ctx, inputs, outputs, n);")
        }
        if let spec = o.training {
            w.line()
            let plan = GradientPlan(spec.graph, frozen: spec.frozen)
            TrainingEmitter.source(graph, spec, o, weights: layout,
                                   layout: TrainingLayout(spec, plan: plan, maxBatch: o.maxBatch), plan: plan, &w)
        }
        return w.text
    }

    /// `<p>_prepare`: one block per derived tensor, in order (a Winograd transform may read a
    /// folded weight computed before it).
    static func emitPrepare(_ layout: Layout, _ o: COptions, _ w: inout CWriter) {
        let p = o.prefix
        w.block("cnnc_status \(p)_prepare(\(p)_context *ctx)") { w in
            w.line("if (!ctx || !ctx->weights) return CNNC_ERR_ARGUMENT;")
            w.line("ctx->prepared = 1;")
            w.line("ctx->version++;")
            for d in layout.bindings.derived {
                let dst = "ctx->weights + \(layout.tensorOffset[d.label]!)"
                func src(_ name: String) -> String { "ctx->weights + \(layout.tensorOffset[name]!)" }
                switch d.recipe {
                case .foldedWeight(let weight, let bn, let channels, let perChannel):
                    w.comment("\(d.label): w * gamma / sqrt(var + eps)")
                    w.block("") { w in
                        w.line("const float *w = \(src(weight)), *gamma = \(src(bn.node + ".weight")), *var = \(src(bn.node + ".running_var"));")
                        w.line("float *dst = \(dst);")
                        w.block("for (int k = 0; k < \(channels); k++)") { w in
                            w.line("const float scale = gamma[k] / sqrtf(var[k] + \(cFloat(bn.epsilon)));")
                            w.line("for (int i = 0; i < \(perChannel); i++) dst[(size_t)k * \(perChannel) + i] = w[(size_t)k * \(perChannel) + i] * scale;")
                        }
                    }
                case .foldedBias(let bias, let bn, let channels):
                    w.comment("\(d.label): beta + (b - mean) * gamma / sqrt(var + eps)")
                    w.block("") { w in
                        w.line("const float *gamma = \(src(bn.node + ".weight")), *beta = \(src(bn.node + ".bias")), *mean = \(src(bn.node + ".running_mean")), *var = \(src(bn.node + ".running_var"));")
                        if let bias { w.line("const float *b = \(src(bias));") }
                        w.line("float *dst = \(dst);")
                        w.block("for (int k = 0; k < \(channels); k++)") { w in
                            w.line("const float scale = gamma[k] / sqrtf(var[k] + \(cFloat(bn.epsilon)));")
                            w.line("dst[k] = beta[k] + (\(bias == nil ? "0.0f" : "b[k]") - mean[k]) * scale;")
                        }
                    }
                case .packedWeight(let source, let groups, let kg, let crs, let phased):
                    w.comment("\(d.label): \(groups) x \(kg) filters of \(crs) in panels of CNNC_PACK_ROWS\(phased == nil ? "" : ", in the strided kernel's phase order")")
                    if let phased {
                        w.block("") { w in
                            w.line("static const cnnc_conv_geometry geometry = \(phased);")
                            w.line("cnnc_conv_pack_weights_phased(\(dst), \(src(source)), \(groups), \(kg), &geometry);")
                        }
                    } else {
                        w.line("cnnc_conv_pack_weights(\(dst), \(src(source)), \(groups), \(kg), \(crs));")
                    }
                case .winogradFilter(let source, 4, let filters, let channels):
                    w.comment("\(d.label): U = G g G^T, 36 sets of \(filters) x \(channels) in panels of CNNC_PACK_ROWS")
                    w.line("cnnc_winograd_f4_pack_weights(\(dst), \(src(source)), \(filters), \(channels));")
                case .winogradFilter(let source, let tile, let filters, let channels):
                    WinogradKernel.emitFilterTransform(label: d.label, source: src(source), destination: dst, tile: tile,
                                                       filters: filters, channels: channels, &w)
                }
            }
            w.line("return CNNC_OK;")
        }
        w.line()
    }

    static func pointer(_ name: String, _ layout: Layout) -> String {
        switch layout.location[name]! {
        case .input(let i): return "inputs[\(i)]"
        case .arena(let offset): return "arena + \(offset)"
        }
    }

    /// Context set-up, seeded initialization, weights files and the parameter table.
    static func emitRuntimeEntryPoints(_ graph: Graph, _ layout: Layout, _ o: COptions, _ w: inout CWriter) {
        let p = o.prefix, P = macroName(o.prefix)
        w.comment("""
        the parameters were written: what is derived from them (folded batch norms, packed and
        Winograd weights) is made again by the next forward pass (\(p)_prepare), not now, so a
        context used only for training never touches those bytes
        """)
        w.block("static cnnc_status parameters_changed(\(p)_context *ctx)") { w in
            w.line("ctx->prepared = 0;")
            w.line("ctx->version++;")
            w.line("return CNNC_OK;")
        }
        w.line()
        w.block("cnnc_status \(p)_init(\(p)_context *ctx, void *weights, void *arena)") { w in
            w.line("if (!ctx) return CNNC_ERR_ARGUMENT;")
            w.line("memset(ctx, 0, sizeof *ctx);")
            w.line("if (((uintptr_t)weights | (uintptr_t)arena) % \(P)_ALIGNMENT != 0) {")
            w.line("    cnnc_error_set(&ctx->error, CNNC_ERR_ARGUMENT, \"regions must be %d-byte aligned\", \(P)_ALIGNMENT);")
            w.line("    return CNNC_ERR_ARGUMENT;")
            w.line("}")
            w.line("ctx->weights = (float *)weights;")
            w.line("ctx->arena = (float *)arena;")
            w.line("return CNNC_OK;")
        }
        w.line()
        w.block("cnnc_status \(p)_create(\(p)_context *ctx)") { w in
            w.line("if (!ctx) return CNNC_ERR_ARGUMENT;")
            w.line("void *weights = cnnc_aligned_alloc(\(P)_WEIGHTS_BYTES > 0 ? \(P)_WEIGHTS_BYTES : 64, \(P)_ALIGNMENT);")
            w.line("void *arena = cnnc_aligned_alloc(\(P)_ARENA_BYTES, \(P)_ALIGNMENT);")
            w.line("if (!weights || !arena) {")
            w.line("    cnnc_aligned_free(weights);")
            w.line("    cnnc_aligned_free(arena);")
            w.line("    memset(ctx, 0, sizeof *ctx);")
            w.line("    cnnc_error_set(&ctx->error, CNNC_ERR_ALLOC, \"cannot allocate %zu + %zu bytes\", (size_t)\(P)_WEIGHTS_BYTES, (size_t)\(P)_ARENA_BYTES);")
            w.line("    return CNNC_ERR_ALLOC;")
            w.line("}")
            w.line("\(p)_init(ctx, weights, arena);")
            w.line("ctx->owned_weights = weights;")
            w.line("ctx->owned_arena = arena;")
            if o.embedWeights {
                w.line("memcpy(ctx->weights, \(p)_embedded_weights, sizeof(float) * \(layout.parameterFloats));")
                w.line("return parameters_changed(ctx);")
            } else {
                w.line("return \(p)_init_weights(ctx, \(o.seed)ULL);")
            }
        }
        w.line()
        w.block("void \(p)_destroy(\(p)_context *ctx)") { w in
            w.line("if (!ctx) return;")
            w.line("cnnc_aligned_free(ctx->owned_weights);")
            w.line("cnnc_aligned_free(ctx->owned_arena);")
            w.line("memset(ctx, 0, sizeof *ctx);")
        }
        w.line()
        w.line("const char *\(p)_last_error(const \(p)_context *ctx) { return ctx ? ctx->error.message : \"null context\"; }")
        w.line()
        w.block("const \(p)_parameter_info *\(p)_parameter(int index)") { w in
            w.line("return index >= 0 && index < \(P)_NUM_PARAMETERS ? &parameters[index] : NULL;")
        }
        w.line()
        w.block("float *\(p)_parameter_data(\(p)_context *ctx, const char *name)") { w in
            w.line("if (!ctx || !ctx->weights || !name) return NULL;")
            w.line("for (int i = 0; i < \(P)_NUM_PARAMETERS; i++)")
            w.line("    if (strcmp(parameters[i].name, name) == 0) return ctx->weights + parameters[i].offset;")
            w.line("return NULL;")
        }
        w.line()

        // Seeded initialization: the same integer hashing as cnnc's SeededInit.
        w.comment("SplitMix64 finalizer and FNV-1a: element i of tensor t is a pure function of (seed, t, i)")
        w.block("static uint64_t splitmix64(uint64_t z)") { w in
            w.line("z += 0x9E3779B97F4A7C15ULL;")
            w.line("z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;")
            w.line("z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;")
            w.line("return z ^ (z >> 31);")
        }
        w.line()
        w.block("static uint64_t name_hash(const char *s)") { w in
            w.line("uint64_t h = 0xCBF29CE484222325ULL;")
            w.line("for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x00000100000001B3ULL;")
            w.line("return h;")
        }
        w.line()
        w.comment("per parameter: uniform half-width (0: constant), constant value")
        w.block("static const double init_table[\(max(layout.parameters.count, 1))][2] =", trailer: ";") { w in
            if layout.parameters.isEmpty { w.line("{0.0, 0.0},") }
            for (spec, _) in layout.parameters {
                switch spec.initializer {
                case .constant(let c): w.line("{0.0, \(c)},")
                case .he, .xavier, .bias, .torch: w.line("{\(spec.initializer.bound!), 0.0},")
                }
            }
        }
        w.line()
        w.block("cnnc_status \(p)_init_weights(\(p)_context *ctx, uint64_t seed)") { w in
            w.line("if (!ctx || !ctx->weights) return CNNC_ERR_ARGUMENT;")
            w.block("for (int t = 0; t < \(P)_NUM_PARAMETERS; t++)") { w in
                w.line("float *dst = ctx->weights + parameters[t].offset;")
                w.line("const double bound = init_table[t][0];")
                w.line("const uint64_t stream = splitmix64(seed ^ name_hash(parameters[t].name));")
                w.block("for (size_t i = 0; i < parameters[t].count; i++)") { w in
                    w.block("if (bound == 0.0)") { w in
                        w.line("dst[i] = (float)init_table[t][1];")
                    }
                    w.block("else") { w in
                        w.line("const double u = (double)(splitmix64(stream + i) >> 40) / 16777216.0;")
                        w.line("dst[i] = (float)((2.0 * u - 1.0) * bound);")
                    }
                }
            }
            w.line("return parameters_changed(ctx);")
        }
        w.line()
        w.block("cnnc_status \(p)_load_weights(\(p)_context *ctx, const char *path)") { w in
            w.line("if (!ctx || !ctx->weights || !path) return CNNC_ERR_ARGUMENT;")
            w.line("cnnc_safetensors *st = NULL;")
            w.line("cnnc_status s = cnnc_safetensors_open(path, &st, &ctx->error);")
            w.line("if (s != CNNC_OK) return s;")
            w.comment("every tensor in the file must be a parameter (PyTorch's num_batches_tracked and checkpoint momentum are ignored)")
            w.block("for (size_t i = 0; i < cnnc_safetensors_count(st); i++)") { w in
                w.line("const char *name = cnnc_safetensors_name(st, i);")
                w.line("int known = 0;")
                w.line("for (int t = 0; t < \(P)_NUM_PARAMETERS && !known; t++) known = strcmp(parameters[t].name, name) == 0;")
                w.line("const size_t len = strlen(name), suffix = strlen(\".num_batches_tracked\");")
                w.line("if (!known && len > suffix && strcmp(name + len - suffix, \".num_batches_tracked\") == 0) known = 1;")
                w.comment("a training checkpoint's momentum buffers are not weights")
                w.line("if (!known && len > 9 && strcmp(name + len - 9, \".momentum\") == 0) known = 1;")
                w.block("if (!known)") { w in
                    w.line("cnnc_error_set(&ctx->error, CNNC_ERR_UNEXPECTED, \"%s: unexpected tensor '%s' (network '\(graph.name)' has no such parameter)\", path, name);")
                    w.line("cnnc_safetensors_close(st);")
                    w.line("return CNNC_ERR_UNEXPECTED;")
                }
            }
            w.block("for (int t = 0; t < \(P)_NUM_PARAMETERS; t++)") { w in
                w.line("s = cnnc_safetensors_read_f32(st, parameters[t].name, ctx->weights + parameters[t].offset, parameters[t].ndim, parameters[t].shape, &ctx->error);")
                w.line("if (s != CNNC_OK) break;")
            }
            w.line("cnnc_safetensors_close(st);")
            w.line("return s == CNNC_OK ? parameters_changed(ctx) : s;")
        }
        w.line()
        emitPrepare(layout, o, &w)
        w.block("cnnc_status \(p)_save_weights(\(p)_context *ctx, const char *path)") { w in
            w.line("if (!ctx || !ctx->weights || !path) return CNNC_ERR_ARGUMENT;")
            w.line("cnnc_tensor_f32 tensors[\(max(layout.parameters.count, 1))];")
            w.line("memset(tensors, 0, sizeof tensors);")
            w.block("for (int t = 0; t < \(P)_NUM_PARAMETERS; t++)") { w in
                w.line("tensors[t].name = parameters[t].name;")
                w.line("tensors[t].ndim = parameters[t].ndim;")
                w.line("tensors[t].shape = parameters[t].shape;")
                w.line("tensors[t].data = ctx->weights + parameters[t].offset;")
            }
            w.line("return cnnc_safetensors_write_f32(path, tensors, \(P)_NUM_PARAMETERS, NULL, &ctx->error);")
        }
        w.line()
    }
}
