// The training half of the generated code: `<p>_train_step` (training-mode forward, softmax
// cross-entropy, backward, SGD with momentum), `<p>_evaluate`, gradients and momentum
// access, and checkpoints. It runs the training graph (no fusion, no folded batch norm: the
// pipeline's training mode) with its own kernels, named `train_node_<name>...`, next to the
// inference kernels of the same file, over the same weights region.
//
// The gradient graph (the "autodiff pass") is `GradientPlan`: which values need a gradient,
// in which order backward kernels run, and where each gradient lives. Every backward kernel
// adds into its gradients, so values read by several layers (residual branches, DenseNet
// concatenations) sum their contributions in a fixed order; all gradient buffers are zeroed
// once per step.

import CNNCIR

/// What a training build needs beyond inference.
public struct TrainingSpec: Sendable {
    /// The graph the training step runs: the source graph after the training pipeline.
    public var graph: Graph
    /// Nodes whose parameters are not updated (transfer learning): `frozen` and the graph's own
    /// (`frozen=true` in `.net`).
    public var frozen: Set<String>
    public init(graph: Graph, frozen: Set<String> = []) { self.graph = graph; self.frozen = frozen.union(graph.frozen) }
}

/// Reverse-mode differentiation plan over the training graph: the per-op rules are the
/// backward kernels (`BackwardKernels`); this decides where they apply.
struct GradientPlan {
    /// The node whose value is the logits of the loss.
    var logits: String
    /// Values that need a gradient: they depend on a trainable, unfrozen parameter and are
    /// not graph inputs.
    var needsGrad: Set<String> = []
    /// Nodes whose backward kernel runs, in reverse graph order.
    var backwardOrder: [String] = []

    init(_ graph: Graph, frozen: Set<String>) {
        let output = graph.node(named: graph.outputs[0])!
        if case .softmax = output.op { logits = output.inputs[0] } else { logits = output.name }
        let trainable = Set(graph.parameters().filter { $0.trainable && !frozen.contains($0.node) }.map(\.node))
        for node in graph.nodes {
            if case .input = node.op { continue }
            if trainable.contains(node.name) || node.inputs.contains(where: needsGrad.contains) {
                needsGrad.insert(node.name)
            }
        }
        // Only what reaches the logits matters for the loss.
        var reaches: Set<String> = [logits]
        for node in graph.nodes.reversed() where reaches.contains(node.name) {
            for input in node.inputs { reaches.insert(input) }
        }
        needsGrad.formIntersection(reaches)
        backwardOrder = graph.nodes.reversed().map(\.name).filter { needsGrad.contains($0) }
        // Input gradients (saliency): every value between an input and the logits.
        var fromInput: Set<String> = []
        for node in graph.nodes {
            if case .input = node.op { fromInput.insert(node.name) } else if node.inputs.contains(where: fromInput.contains) {
                fromInput.insert(node.name)
            }
        }
        inputPath = fromInput.intersection(reaches)
        inputBackwardOrder = graph.nodes.reversed().filter {
            if case .input = $0.op { return false }
            return inputPath.contains($0.name)
        }.map(\.name)
    }

    /// Values on a path from a graph input to the logits, the inputs included: what
    /// `<p>_input_grad` differentiates.
    var inputPath: Set<String> = []
    /// Nodes whose inference-mode backward runs for `<p>_input_grad`, in reverse graph order.
    var inputBackwardOrder: [String] = []

    /// The backward kernel of `node` in the training step: the gradients of the inputs that
    /// need one and of the trainable parameters not frozen.
    func trainingBackward(_ node: Node, _ graph: Graph, index: [String: Int], frozen: Set<String>,
                          function: String) -> BackwardContext {
        let params = graph.parameters().filter { $0.node == node.name }
        return BackwardContext(node: node, inputShapes: node.inputs.map { graph.nodes[index[$0]!].shape }, function: function,
                               inputNeedsGrad: node.inputs.map { needsGrad.contains($0) }, parameters: params,
                               parameterNeedsGrad: params.map { $0.trainable && !frozen.contains($0.node) })
    }

    /// The backward kernel of `node` in `<p>_input_grad` (input gradients on the path, no
    /// parameter gradient), or nil where no kernel runs: a flatten is a view, batch norm and
    /// dropout are inline affine maps there, and a node may have no input on the path.
    func inspectionBackward(_ node: Node, _ graph: Graph, index: [String: Int], function: String) -> BackwardContext? {
        switch node.op {
        case .flatten, .batchNorm, .dropout, .input: return nil
        case .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
             .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            let params = graph.parameters().filter { $0.node == node.name }
            let k = BackwardContext(node: node, inputShapes: node.inputs.map { graph.nodes[index[$0]!].shape }, function: function,
                                    inputNeedsGrad: node.inputs.map { inputPath.contains($0) }, parameters: params,
                                    parameterNeedsGrad: params.map { _ in false })
            return k.inputNeedsGrad.contains(true) ? k : nil
        }
    }
}

/// Memory of the training step: activations and their gradients in the trainer's arena;
/// parameter gradients, momentum and batch-norm saved statistics in the trainer's state region.
///
/// An activation that some backward kernel reads (its text names the value: a convolution's
/// input, batch norm's input, ReLU's output, ...; the loss reads the logits) has its own
/// floats, live from the forward through the backward. The others (batch norm's output before
/// a ReLU, an add's output, ...) live only from their producer to their last forward reader:
/// they are planned like the inference arena (`MemoryPlanner`), in a region the gradients
/// share, since no gradient is live during the forward. Gradients are planned the same way:
/// the gradient of value v is live, in graph-index terms, from v (its own backward reads it
/// last) up to its last reader (whose backward, running first in reverse order, writes it
/// first), so gradients of values far apart share floats. Each is zeroed just before the
/// backward of its last reader (`zeroAt`), not all at once.
struct TrainingLayout {
    var activation: [String: BufferLocation] = [:]
    /// Values whose activation lives only through the forward (no backward reads it): backward
    /// calls pass NULL for them (their floats hold gradients by then).
    var forwardOnly: Set<String> = []
    var gradient: [String: Int] = [:]
    /// Node index -> gradient buffers (by value name) to zero before that node's backward;
    /// index `graph.nodes.count`: before the loss (the logits' gradient and other values no
    /// node reads).
    var zeroAt: [Int: [String]] = [:]
    /// Activations a backward reads (kept until then): their floats; the forward-only ones if
    /// each had its own, and as planned; the gradients likewise.
    var keptActivationFloats = 0
    var naiveTransientFloats = 0
    var plannedTransientFloats = 0
    var naiveGradientFloats = 0
    var plannedGradientFloats = 0
    var arenaFloats = 0
    var parameterGradient: [String: Int] = [:]
    /// The parameter gradients are the state's floats [0, gradientFloats).
    var gradientFloats = 0
    var momentum: [String: Int] = [:]
    var saved: [String: Int] = [:]
    var stateFloats = 0
    /// Trainable, unfrozen parameters in table order.
    var updated: [ParameterSpec] = []
    /// Per convolution, where the state holds its weights packed for the forward's kernel (those
    /// whose forward algorithm is `implicit`) and transposed and flipped for the input gradient
    /// (`ConvBackward.inputUsesImplicit`): repacked by `pack_parameters` whenever the
    /// parameters changed.
    var packedWeight: [String: Int] = [:]
    var packedTransposed: [String: Int] = [:]
    /// What `pack_parameters` packs, in graph order.
    var packings: [(node: String, weight: String, groups: Int, kg: Int, cg: Int, taps: Int, transposed: Bool)] = []
    /// Winograd F(4x4) (forward: `winograd4x4`; input gradient: `ConvBackward.inputUsesWinograd`)
    /// runs on two regions at the arena's end that each such kernel uses in turn: U, transformed
    /// by the caller just before the kernel (`winograd_transform`, its panels shared by the
    /// team), and the workspaces (`WinogradKernel.workspaceFloats` for the largest batch). U is
    /// not kept: it is 4x the filters, twice (forward and input gradient), and held for every
    /// layer it put VGG-11-BN's trainer at 543 MB against PyTorch's 326; the transforms cost
    /// the same either way, once per step, as the parameters change every step.
    var winogradU = 0
    var winogradUFloats = 0
    var winogradScratch = 0
    var winogradScratchFloats = 0
    /// Per convolution on Winograd: its filter tensor, filters K and channels C.
    var winogradForward: [String: (weight: String, k: Int, c: Int)] = [:]
    var winogradInput: [String: (weight: String, k: Int, c: Int)] = [:]

    /// What a convolution's backward takes after its other arguments: its transposed weights
    /// (packed, or U), then Winograd's workspaces.
    func convolutionExtras(_ node: String) -> [String] {
        if winogradInput[node] != nil { return ["t->arena + \(winogradU)", "t->arena + \(winogradScratch)"] }
        return packedTransposed[node].map { ["t->state + \($0)"] } ?? []
    }

    /// The statement that transforms a Winograd layer's filters into U before its kernel runs
    /// (`transposed`: its input gradient's), or nil where the layer has none.
    func winogradTransform(_ node: String, transposed: Bool, weight: (String) -> String) -> String? {
        guard let l = transposed ? winogradInput[node] : winogradForward[node] else { return nil }
        return "winograd_transform(t->arena + \(winogradU), \(weight(l.weight)), \(l.k), \(l.c), \(transposed ? 1 : 0));"
    }

    /// The value a flatten is a view of (through flattens of flattens), or the value itself.
    static func viewRoot(_ name: String, _ graph: Graph, _ index: [String: Int]) -> String {
        let node = graph.nodes[index[name]!]
        if case .flatten = node.op { return viewRoot(node.inputs[0], graph, index) }
        return name
    }

    /// The values whose activations a backward kernel reads, by the kernels' own text: the
    /// training step's (`plan.backwardOrder`) and `<p>_input_grad`'s (`plan.inputBackwardOrder`:
    /// batch norm and dropout there are inline affine maps that read no activation), and the
    /// logits, which the loss reads. A flatten stands for its input.
    static func readByBackward(_ spec: TrainingSpec, plan: GradientPlan) -> Set<String> {
        let graph = spec.graph
        let index = graph.indexByName()
        func root(_ name: String) -> String { viewRoot(name, graph, index) }
        var read: Set<String> = [root(plan.logits)]
        func note(_ k: BackwardContext) {
            if BackwardKernels.readsOutput(k) { read.insert(root(k.node.name)) }
            for (i, input) in k.node.inputs.enumerated() where BackwardKernels.readsInput(k, i) { read.insert(root(input)) }
        }
        for name in plan.backwardOrder {
            let node = graph.nodes[index[name]!]
            if case .flatten = node.op { continue }
            note(plan.trainingBackward(node, graph, index: index, frozen: spec.frozen, function: ""))
        }
        for name in plan.inputBackwardOrder {
            if let k = plan.inspectionBackward(graph.nodes[index[name]!], graph, index: index, function: "") { note(k) }
        }
        return read
    }

    init(_ spec: TrainingSpec, plan: GradientPlan, maxBatch: Int) {
        let graph = spec.graph
        let index = graph.indexByName()
        // A flatten's activation and gradient are its input's (views), so its readers count as the input's.
        func root(_ name: String) -> String { Self.viewRoot(name, graph, index) }
        let kept = Self.readByBackward(spec, plan: plan)
        var lastForwardReader: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            if case .flatten = node.op { continue }
            for input in node.inputs { lastForwardReader[root(input)] = max(lastForwardReader[root(input)] ?? -1, i) }
        }
        var inputIndex = 0
        var transient: [BufferRequest] = []
        var transientNames: [String] = []
        for (i, node) in graph.nodes.enumerated() {
            switch node.op {
            case .input:
                activation[node.name] = .input(inputIndex)
                inputIndex += 1
            case .flatten:
                continue
            case .conv, .dense, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
                 .lrn, .batchNorm, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                let size = maxBatch * node.shape.count
                if kept.contains(node.name) {
                    activation[node.name] = .arena(arenaFloats)
                    arenaFloats += alignUp(size)
                } else {
                    transient.append(BufferRequest(id: transientNames.count, size: size, first: i,
                                                   last: max(i, lastForwardReader[node.name] ?? i)))
                    transientNames.append(node.name)
                    naiveTransientFloats += alignUp(size)
                }
            }
        }
        keptActivationFloats = arenaFloats
        let shared = arenaFloats
        let transientPlan = MemoryPlanner.plan(transient, options: MemoryPlanner.Options(inPlace: false))
        for (id, name) in transientNames.enumerated() { activation[name] = .arena(shared + transientPlan.offsets[id]!) }
        plannedTransientFloats = transientPlan.arenaFloats
        forwardOnly = Set(transientNames)
        for node in graph.nodes {
            guard case .flatten = node.op else { continue }
            activation[node.name] = activation[root(node.name)]
            if forwardOnly.contains(root(node.name)) { forwardOnly.insert(node.name) }
        }
        // Gradients, by lifetime, in the region the forward-only activations used.
        var lastReader: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() where plan.needsGrad.contains(node.name) || plan.inputPath.contains(node.name) {
            if case .flatten = node.op { continue }
            for input in node.inputs { lastReader[root(input)] = max(lastReader[root(input)] ?? -1, i) }
        }
        var requests: [BufferRequest] = []
        var names: [String] = []
        for (i, node) in graph.nodes.enumerated() where plan.needsGrad.contains(node.name) || plan.inputPath.contains(node.name) {
            if case .flatten = node.op { continue }
            let last = lastReader[node.name] ?? graph.nodes.count
            requests.append(BufferRequest(id: names.count, size: maxBatch * node.shape.count, first: i, last: last))
            names.append(node.name)
            zeroAt[last, default: []].append(node.name)
            naiveGradientFloats += alignUp(maxBatch * node.shape.count)
        }
        let gradients = MemoryPlanner.plan(requests, options: MemoryPlanner.Options(inPlace: false))
        for (id, name) in names.enumerated() { gradient[name] = shared + gradients.offsets[id]! }
        plannedGradientFloats = gradients.arenaFloats
        arenaFloats = shared + max(plannedTransientFloats, plannedGradientFloats)
        // Parameter gradients in one run of the state (zeroed by one memset per step), then
        // the momenta in another (llm.c's layout: the update is one loop over a table).
        updated = graph.parameters().filter { $0.trainable && !spec.frozen.contains($0.node) }
        for p in updated {
            parameterGradient[p.name] = stateFloats
            stateFloats += alignUp(p.count)
        }
        gradientFloats = stateFloats
        for p in updated {
            momentum[p.name] = stateFloats
            stateFloats += alignUp(p.count)
        }
        for node in graph.nodes {
            if case .batchNorm = node.op {
                saved[node.name] = stateFloats
                stateFloats += alignUp(2 * node.shape.dims[0])
            }
        }
        let shapes = Dictionary(uniqueKeysWithValues: graph.nodes.map { ($0.name, $0.shape) })
        let weights = Dictionary(graph.parameters().filter { $0.role == "weight" }.map { ($0.node, $0.name) },
                                 uniquingKeysWith: { first, _ in first })
        for node in graph.nodes {
            guard case .conv(let a) = node.op, let x = shapes[node.inputs[0]], let weight = weights[node.name] else { continue }
            let cg = x.c / a.groups, kg = a.filters / a.groups, taps = a.kernel.h * a.kernel.w
            // implicit: the forward's kernel reads packed panels. A gemm layer's forward could
            // read a packed copy too (the packed GEMM), but for VGG-11-BN's 2x2 layers that copy
            // (19 MB) put the trainer at 292 MB against PyTorch's 288: it packs per task instead.
            if a.algorithm == .implicit {
                packedWeight[node.name] = stateFloats
                stateFloats += alignUp(DerivedTensor.packedCount(groups: a.groups, kg: kg, crs: cg * taps))
                packings.append((node.name, weight, a.groups, kg, cg, taps, false))
            } else if a.algorithm == .winograd4x4 {
                winogradForward[node.name] = (weight, a.filters, x.c)
                winogradUFloats = max(winogradUFloats, 36 * DerivedTensor.packedCount(groups: 1, kg: a.filters, crs: x.c))
                winogradScratchFloats = max(winogradScratchFloats, WinogradKernel.workspaceFloats(
                    channels: x.c, filters: a.filters, output: node.shape, maxBatch: maxBatch))
            }
            if ConvBackward.inputUsesWinograd(x: x, y: node.shape, a) {
                winogradInput[node.name] = (weight, a.filters, x.c)
                winogradUFloats = max(winogradUFloats, ConvBackward.winogradTransposedFloats(x: x, a))
                winogradScratchFloats = max(winogradScratchFloats, WinogradKernel.workspaceFloats(
                    channels: a.filters, filters: x.c, output: x, maxBatch: maxBatch))
            } else if ConvBackward.inputTakesPackedTransposed(x: x, y: node.shape, a) {
                packedTransposed[node.name] = stateFloats
                stateFloats += alignUp(DerivedTensor.packedCount(groups: a.groups, kg: cg, crs: kg * taps))
                packings.append((node.name, weight, a.groups, kg, cg, taps, true))
            }
        }
        if winogradUFloats > 0 {
            winogradU = arenaFloats
            arenaFloats += alignUp(winogradUFloats)
            winogradScratch = arenaFloats
            arenaFloats += alignUp(winogradScratchFloats)
        }
    }
}

enum TrainingEmitter {
    static func header(_ graph: Graph, _ spec: TrainingSpec, _ o: COptions, layout: TrainingLayout,
                       plan: GradientPlan, _ w: inout CWriter) {
        let p = o.prefix, P = CEmitter.macroName(p)
        let classes = spec.graph.node(named: plan.logits)!.shape.count
        w.comment("Training (cnnc --train): regions of the trainer, sized for \(P)_MAX_BATCH")
        w.comment("""
        the trainer's arena: \(layout.keptActivationFloats * 4) bytes of activations a backward reads, then one region for
        the forward-only activations (\(layout.plannedTransientFloats * 4) bytes planned for \(layout.naiveTransientFloats * 4)) and,
        after the forward, the gradients (\(layout.plannedGradientFloats * 4) bytes planned for \(layout.naiveGradientFloats * 4))\(layout.winogradUFloats > 0 ? ";\nlast, Winograd's transformed filters and workspaces (\(layout.winogradUFloats * 4) and \(layout.winogradScratchFloats * 4) bytes)" : "")
        """)
        w.line("#define \(P)_TRAIN_ARENA_BYTES \(max(layout.arenaFloats, alignFloats) * 4)")
        w.line("#define \(P)_TRAIN_STATE_BYTES \(max(layout.stateFloats, alignFloats) * 4)")
        w.line("#define \(P)_TRAIN_GRADIENT_FLOATS \(layout.gradientFloats) /* the state's floats [0, N) are the parameter gradients, [N, 2N) their momenta */")
        w.line("#define \(P)_NUM_CLASSES \(classes) /* the loss is softmax cross-entropy on '\(plan.logits)' */")
        w.line()
        w.comment("SGD with momentum, PyTorch semantics: g = grad + weight_decay*w; v = momentum*v + g; w -= lr * (nesterov ? g + momentum*v : v)")
        w.block("typedef struct \(p)_sgd", trailer: " \(p)_sgd;") { w in
            w.line("float learning_rate;")
            w.line("float momentum;")
            w.line("float weight_decay;")
            w.line("int nesterov;")
        }
        w.line()
        w.comment("Training state: activations and gradients (arena), parameter gradients, momentum and batch-norm statistics (state).")
        w.block("typedef struct \(p)_trainer", trailer: " \(p)_trainer;") { w in
            w.line("float *arena;        /* \(P)_TRAIN_ARENA_BYTES */")
            w.line("float *state;        /* \(P)_TRAIN_STATE_BYTES */")
            w.line("uint64_t seed;       /* dropout masks: a pure function of (seed, layer, step, element) */")
            w.line("int64_t step;        /* steps taken; checkpoints keep it */")
            w.line("uint64_t packed_version;      /* the context's parameter version the packed weights in state match */")
            w.line("const void *packed_context;   /* and the context they came from */")
            w.line("const cnnc_allreduce *allreduce; /* data parallelism: sums across processes; NULL (trainer_init's) for one process */")
            w.line("int sync_batch_norm;  /* with allreduce: batch statistics over every process's samples, not this one's */")
            w.line("void *owned_arena;")
            w.line("void *owned_state;")
        }
        w.line()
        w.comment("Uses caller-owned regions (64-byte aligned); momentum starts at zero.")
        w.line("cnnc_status \(p)_trainer_init(\(p)_trainer *t, void *arena, void *state, uint64_t seed);")
        w.comment("Allocates both regions.")
        w.line("cnnc_status \(p)_trainer_create(\(p)_trainer *t, uint64_t seed);")
        w.line("void \(p)_trainer_destroy(\(p)_trainer *t);")
        let inputArgs = inputParameters(graph, prefix: p)
        w.comment("""
        One SGD step on n samples (1 <= n <= \(P)_MAX_BATCH): training-mode forward (batch statistics,
        dropout), mean softmax cross-entropy over the batch, backward, update. Writes the loss
        before the update and the number of samples whose largest logit is their label (either
        pointer may be NULL). A non-finite loss or gradient stops before the update with
        CNNC_ERR_NUMERIC. With t->allreduce set, every process of a data-parallel job calls it
        with its own samples: the loss is the mean over all of them and the gradients their
        sum divided by their count, the same on every process, and so are the update, the loss
        and correct count written (the whole job's), and any CNNC_ERR_NUMERIC or CNNC_ERR_BATCH.
        """)
        w.line("cnnc_status \(p)_train_step(\(p)_context *ctx, \(p)_trainer *t, \(inputArgs), const int32_t *labels, int n, const \(p)_sgd *sgd, float *loss, int *correct);")
        w.comment("Loss and correct count in inference mode (running statistics, no dropout), using the trainer's arena.")
        w.line("cnnc_status \(p)_evaluate(\(p)_context *ctx, \(p)_trainer *t, \(inputArgs), const int32_t *labels, int n, float *loss, int *correct);")
        w.comment("The gradient of the last step and the momentum of a trainable parameter, or NULL.")
        w.line("float *\(p)_gradient(\(p)_trainer *t, const char *name);")
        w.line("float *\(p)_momentum(\(p)_trainer *t, const char *name);")
        w.comment("The first parameter whose gradient has a NaN or infinity (NULL if none): what went wrong when the loss did.")
        w.line("const char *\(p)_first_nonfinite_gradient(\(p)_trainer *t);")
        w.comment("Checkpoints: every parameter, '<name>.momentum' for each trainable one, and the step and seed as metadata.")
        w.line("cnnc_status \(p)_save_checkpoint(\(p)_context *ctx, \(p)_trainer *t, const char *path);")
        w.line("cnnc_status \(p)_load_checkpoint(\(p)_context *ctx, \(p)_trainer *t, const char *path);")
        w.line()
        InspectionEmitter.header(spec, o, &w)
    }

    static func source(_ graph: Graph, _ spec: TrainingSpec, _ o: COptions, weights: CEmitter.Layout,
                       layout: TrainingLayout, plan: GradientPlan, _ w: inout CWriter) {
        let p = o.prefix, P = CEmitter.macroName(p)
        let tg = spec.graph
        let index = tg.indexByName()
        let classes = tg.node(named: plan.logits)!.shape.count

        // Forward kernels of the training graph; names through one table, as node `a`'s
        // backward and node `a_backward`'s forward would otherwise share one.
        var functions = CFunctionNames()
        var forward: [(node: Node, function: String)] = []
        for node in tg.nodes {
            let shapes = node.inputs.map { tg.nodes[index[$0]!].shape }
            let params = tg.parameters().filter { $0.node == node.name }
            switch node.op {
            case .input, .flatten: continue
            case .batchNorm, .dropout:
                let k = BackwardContext(node: node, inputShapes: shapes, function: functions.unique("train_node_\(node.name)_train_forward"),
                                        inputNeedsGrad: [], parameters: params, parameterNeedsGrad: [])
                TrainingForwardKernels.emit(k, into: &w)
                forward.append((node, k.function))
            case .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                 .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                // an implicit convolution reads the trainer's packed copy of its weights, a
                // Winograd one the trainer's U (as `weight`) and its workspaces at the arena's end
                let winograd = layout.winogradForward[node.name] != nil
                let packed = layout.packedWeight[node.name] != nil && !winograd
                var k = KernelContext(node: node, inputShapes: shapes,
                                      arguments: params.map {
                                          KernelArgument(name: packed && $0.role == "weight" ? "packed" : $0.role, tensor: $0.name)
                                      },
                                      function: functions.unique("train_node_\(node.name)"))
                k.hasScratch = winograd
                k.maxBatch = o.maxBatch
                KernelEmitter.emit(k, into: &w)
                forward.append((node, k.function))
            }
        }
        // Backward kernels. A gradient with one writer (one reader of the value, reading it
        // once, a flatten standing for its input; not the logits, which the loss seeds) is
        // written whole by that kernel where it can (`BackwardKernels.canAssign`), not zeroed
        // and added into: the zeroing was a serial memset per step, as large as the value.
        var backward: [String: BackwardContext] = [:]
        func root(_ name: String) -> String { TrainingLayout.viewRoot(name, tg, index) }
        for name in plan.backwardOrder {
            let node = tg.nodes[index[name]!]
            if case .flatten = node.op { continue }
            backward[name] = plan.trainingBackward(node, tg, index: index, frozen: spec.frozen,
                                                   function: functions.unique("train_node_\(node.name)_backward"))
            backward[name]?.maxBatch = o.maxBatch
        }
        var writers: [String: Int] = [:]
        for k in backward.values {
            for (i, input) in k.node.inputs.enumerated() where k.wantsInput(i) { writers[root(input), default: 0] += 1 }
        }
        var assigned: Set<String> = []
        for name in plan.backwardOrder {
            guard var k = backward[name] else { continue }
            k.assignsInput = k.node.inputs.indices.map { i in
                let value = root(k.node.inputs[i])
                return writers[value] == 1 && value != root(plan.logits) && BackwardKernels.canAssign(k, i)
            }
            for (i, input) in k.node.inputs.enumerated() where k.assigns(i) { assigned.insert(root(input)) }
            BackwardKernels.emit(k, into: &w)
            backward[name] = k
        }

        func act(_ name: String) -> String {
            switch layout.activation[name]! {
            case .input(let i): return "inputs[\(i)]"
            case .arena(let off): return "t->arena + \(off)"
            }
        }
        func grad(_ name: String) -> String {
            // flatten is a view: its gradient is its input's.
            let node = tg.nodes[index[name]!]
            if case .flatten = node.op { return grad(node.inputs[0]) }
            return "t->arena + \(layout.gradient[name]!)"
        }
        /// What a backward kernel gets for an activation: NULL for a forward-only one, which it never reads.
        func backwardAct(_ name: String) -> String { layout.forwardOnly.contains(name) ? "NULL" : act(name) }
        func weight(_ name: String) -> String { "ctx->weights + \(weights.tensorOffset[name]!)" }
        func zero(_ name: String) -> String {
            "memset(\(grad(name)), 0, sizeof(float) * (size_t)n * \(tg.nodes[index[name]!].shape.count));"
        }

        // The forward pass in training or evaluation mode.
        w.comment("forward of the training graph; training: batch statistics and dropout, else inference semantics")
        w.comment("runs the layers up to index `last` of the layer table (\(P)_NUM_LAYERS: all)")
        // cnnc profile --train: forward and backward seconds per node of the training graph.
        let profiled = tg.nodes.filter { if case .input = $0.op { return false }; if case .flatten = $0.op { return false }; return true }
        let slot = Dictionary(uniqueKeysWithValues: profiled.enumerated().map { ($1.name, $0) })
        func timed(_ array: String, _ name: String, _ statement: String) -> String {
            guard o.profile, let i = slot[name] else { return statement }
            return "{ const double t0 = cnnc_now_seconds(); \(statement) \(p)_train_profile_\(array)[\(i)] += cnnc_now_seconds() - t0; }"
        }
        if o.profile {
            w.comment("cnnc profile --train: seconds per node of the training graph, forward and backward, summed over calls (a profiling build only)")
            w.line("const int \(p)_train_profile_count = \(profiled.count);")
            w.line("const char *const \(p)_train_profile_layers[\(max(profiled.count, 1))] = {\(profiled.isEmpty ? "\"\"" : profiled.map { cStringLiteral($0.name) }.joined(separator: ", "))};")
            w.line("double \(p)_train_profile_forward[\(max(profiled.count, 1))];")
            w.line("double \(p)_train_profile_backward[\(max(profiled.count, 1))];")
            w.line()
        }
        emitPackParameters(p, layout, weight: weight, &w)
        if layout.winogradUFloats > 0 {
            w.comment("""
            U = G g G^T of a layer's k x c filters for Winograd F(4x4), or with `transposed` its input
            gradient's (the filters transposed and turned), just before the kernel that reads it; the
            team shares the panels
            """)
            w.block("static void winograd_transform(float *restrict u, const float *restrict weight, int k, int c, int transposed)") { w in
                w.line("const int panels = ((transposed ? c : k) + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS;")
                w.line("#pragma omp parallel for schedule(static)")
                w.line("for (int p = 0; p < panels; p++) cnnc_winograd_f4_pack_panels(u, weight, k, c, transposed, p, p + 1);")
            }
            w.line()
        }
        w.comment("sync, samples: batch norm's statistics in training (NULL and n, or synchronized across processes)")
        w.block("static void train_forward(\(p)_context *ctx, \(p)_trainer *t, const float *const *inputs, int n, const cnnc_allreduce *sync, int64_t samples, int training, int last)") { w in
            w.line("(void)training; (void)sync; (void)samples; /* read only by batch norm and dropout */")
            w.line("pack_parameters(ctx, t);")
            for (node, function) in forward {
                w.line("if (last < \(index[node.name]!)) return;")
                let params = tg.parameters().filter { $0.node == node.name }
                switch node.op {
                case .batchNorm(let a):
                    let pw = params.map { weight($0.name) }
                    w.block("if (training)") { w in
                        w.line(timed("forward", node.name, "\(function)(\(act(node.name)), t->state + \(layout.saved[node.name]!), \(pw[2]), \(pw[3]), \(act(node.inputs[0])), \(pw[0]), \(pw[1]), sync, samples, n);"))
                    }
                    w.block("else") { w in
                        let c = node.shape.dims[0], inner = node.shape.count / c
                        w.line("const float *x = \(act(node.inputs[0])), *g = \(pw[0]), *be = \(pw[1]), *mu = \(pw[2]), *va = \(pw[3]);")
                        w.line("float *y = \(act(node.name));")
                        w.line("#pragma omp parallel for collapse(2) schedule(static)")
                        w.line("for (int b = 0; b < n; b++)")
                        w.line("    for (int c = 0; c < \(c); c++) {")
                        w.line("        const float s = g[c] / sqrtf(va[c] + \(cFloat(a.epsilon))), h = be[c] - mu[c] * s;")
                        w.line("        for (int i = 0; i < \(inner); i++) y[((size_t)b * \(c) + c) * \(inner) + i] = x[((size_t)b * \(c) + c) * \(inner) + i] * s + h;")
                        w.line("    }")
                    }
                case .dropout:
                    w.line("if (training) " + timed("forward", node.name, "\(function)(\(act(node.name)), \(act(node.inputs[0])), t->seed, t->step, n);"))
                    w.line("else memcpy(\(act(node.name)), \(act(node.inputs[0])), sizeof(float) * (size_t)n * \(node.shape.count));")
                case .input, .flatten, .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool,
                     .globalMaxPool, .lrn, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                    let transform = layout.winogradTransform(node.name, transposed: false, weight: weight)
                    var args = [act(node.name)] + node.inputs.map(act) + params.map {
                        if $0.role == "weight", let off = layout.packedWeight[node.name] { return "t->state + \(off)" }
                        if $0.role == "weight", transform != nil { return "t->arena + \(layout.winogradU)" }
                        return weight($0.name)
                    }
                    if transform != nil { args.append("t->arena + \(layout.winogradScratch)") }
                    args.append("n")
                    w.line(timed("forward", node.name, (transform.map { $0 + " " } ?? "") + "\(function)(\(args.joined(separator: ", ")));"))
                }
            }
        }
        w.line()

        // Loss.
        w.comment("mean softmax cross-entropy over the batch on the logits (N, \(classes)); writes d_logits = (softmax - onehot) / samples (n, or the samples of every process in a data-parallel step)")
        w.block("static cnnc_status loss_forward_backward(const float *logits, float *d_logits, const int32_t *labels, int n, double samples, float *loss, int *correct, cnnc_error *err)") { w in
            w.line("double total = 0.0;")
            w.line("int right = 0;")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("if (labels[b] < 0 || labels[b] >= \(classes))") { w in
                    w.line("cnnc_error_set(err, CNNC_ERR_ARGUMENT, \"label %d of sample %d is outside 0..%d\", (int)labels[b], b, \(classes - 1));")
                    w.line("return CNNC_ERR_ARGUMENT;")
                }
                w.line("const float *z = logits + (size_t)b * \(classes);")
                w.line("int best = 0;")
                w.line("for (int k = 1; k < \(classes); k++) if (z[k] > z[best]) best = k;")
                w.line("right += best == labels[b];")
                w.line("double sum = 0.0;")
                w.line("for (int k = 0; k < \(classes); k++) sum += exp((double)z[k] - (double)z[best]);")
                w.line("total += log(sum) - ((double)z[labels[b]] - (double)z[best]);")
                w.block("if (d_logits)") { w in
                    w.block("for (int k = 0; k < \(classes); k++)") { w in
                        w.line("const double s = exp((double)z[k] - (double)z[best]) / sum;")
                        w.line("d_logits[(size_t)b * \(classes) + k] = (float)((s - (k == labels[b] ? 1.0 : 0.0)) / samples);")
                    }
                }
            }
            w.line("if (loss) *loss = (float)(total / n);")
            w.line("if (correct) *correct = right;")
            w.line("return CNNC_OK;")
        }
        w.line()

        let inputParams = inputParameters(tg, prefix: p), inputArray = inputPointers(tg, prefix: p)
        func checks(_ w: inout CWriter) { entryChecks(P, nulls: ["labels"], what: "labels", &w) }

        // The SGD table: every updated parameter in chunks of at most 16384 floats.
        if !layout.updated.isEmpty {
            var chunks: [(weight: Int, gradient: Int, momentum: Int, count: Int)] = []
            for spec in layout.updated {
                var start = 0
                while start < spec.count {
                    let count = min(16384, spec.count - start)
                    chunks.append((weights.tensorOffset[spec.name]! + start, layout.parameterGradient[spec.name]! + start,
                                   layout.momentum[spec.name]! + start, count))
                    start += count
                }
            }
            w.comment("SGD's table: the updated parameters in chunks of at most 16384 floats (weights, gradient and momentum offsets in floats)")
            w.block("static const struct { size_t weight, gradient, momentum, count; } sgd_chunks[\(chunks.count)] =", trailer: ";") { w in
                for c in chunks { w.line("{\(c.weight), \(c.gradient), \(c.momentum), \(c.count)},") }
            }
            w.line("enum { NUM_SGD_CHUNKS = \(chunks.count) };")
            w.line()
        }

        // Train step.
        w.block("cnnc_status \(p)_train_step(\(p)_context *ctx, \(p)_trainer *t, \(inputParams), const int32_t *labels, int n, const \(p)_sgd *sgd, float *loss, int *correct)") { w in
            checks(&w)
            w.line("if (!sgd) { cnnc_error_set(&ctx->error, CNNC_ERR_ARGUMENT, \"null sgd settings\"); return CNNC_ERR_ARGUMENT; }")
            let needsBatchStats = tg.nodes.contains { if case .batchNorm = $0.op { return true } else { return false } }
            w.comment("data parallelism: the samples of this step on every process, and how many processes have fewer than batch norm needs")
            w.line("const cnnc_allreduce *ar = t->allreduce;")
            w.line("double batch[2] = {(double)n, n < 2 ? 1.0 : 0.0};")
            w.line("if (ar) ar->sum_doubles(ar->context, batch, 2);")
            w.line("const int64_t samples = (int64_t)batch[0];")
            w.line("const cnnc_allreduce *sync = ar && t->sync_batch_norm ? ar : NULL;")
            w.line("const int64_t bn_samples = sync ? samples : n;")
            if needsBatchStats {
                w.block("if (sync ? samples < 2 : batch[1] > 0.0)") { w in
                    w.line("if (ar) cnnc_error_set(&ctx->error, CNNC_ERR_BATCH, \"batch norm in training needs at least 2 samples%s, this process has %d\", sync ? \" in all\" : \" on every process\", n);")
                    w.line("else cnnc_error_set(&ctx->error, CNNC_ERR_BATCH, \"batch norm in training needs at least 2 samples, got %d\", n);")
                    w.line("return CNNC_ERR_BATCH;")
                }
            }
            w.line(inputArray)
            w.line("train_forward(ctx, t, inputs, n, sync, bn_samples, 1, \(P)_NUM_LAYERS);")
            w.comment("zero every gradient, then the loss seeds the logits' gradient")
            for name in layout.zeroAt[tg.nodes.count] ?? [] where plan.needsGrad.contains(name) { w.line(zero(name)) }
            if layout.gradientFloats > 0 {
                w.line("memset(t->state, 0, sizeof(float) * \(layout.gradientFloats)); /* every parameter gradient */")
            }
            w.line("float batch_loss = 0.0f;")
            w.line("int right = 0;")
            w.line("cnnc_status s = loss_forward_backward(\(act(plan.logits)), \(plan.needsGrad.contains(plan.logits) ? grad(plan.logits) : "NULL"), labels, n, (double)samples, &batch_loss, &right, &ctx->error);")
            w.line("if (s != CNNC_OK) return s;")
            w.block("if (ar)") { w in
                w.comment("the whole job's loss and correct count (a process's non-finite loss makes it non-finite everywhere)")
                w.line("double totals[2] = {(double)batch_loss * n, (double)right};")
                w.line("ar->sum_doubles(ar->context, totals, 2);")
                w.line("batch_loss = (float)(totals[0] / (double)samples);")
                w.line("right = (int)totals[1];")
            }
            w.line("if (loss) *loss = batch_loss;")
            w.line("if (correct) *correct = right;")
            w.block("if (!isfinite(batch_loss))") { w in
                w.line("cnnc_error_set(&ctx->error, CNNC_ERR_NUMERIC, \"loss is %g at step %lld\", (double)batch_loss, (long long)t->step);")
                w.line("return CNNC_ERR_NUMERIC;")
            }
            w.comment("backward, in reverse graph order; each kernel adds into its gradients, zeroed just before their last reader's backward, or writes a gradient it alone writes")
            let runs = Set(plan.backwardOrder)
            for i in tg.nodes.indices.reversed() {
                for name in layout.zeroAt[i] ?? [] where plan.needsGrad.contains(name) && !assigned.contains(name) { w.line(zero(name)) }
                let node = tg.nodes[i]
                guard runs.contains(node.name) else { continue }
                if case .flatten = node.op { continue }
                var extra: [String] = []
                if case .batchNorm = node.op { extra += ["t->state + \(layout.saved[node.name]!)", "sync", "bn_samples"] }
                if case .dropout = node.op { extra += ["t->seed", "t->step"] }
                extra += layout.convolutionExtras(node.name)
                let transform = layout.winogradTransform(node.name, transposed: true, weight: weight).map { $0 + " " } ?? ""
                w.line(timed("backward", node.name, transform + backwardCall(backward[node.name]!, grad: grad, act: backwardAct, weight: weight,
                                    parameterGradient: { "t->state + \(layout.parameterGradient[$0]!)" }, extra: extra)))
            }
            if layout.gradientFloats > 0 {
                w.comment("data parallelism: every process's parameter gradients, summed (each is already divided by all the samples)")
                w.line("if (ar) ar->sum_floats(ar->context, t->state, \(P)_TRAIN_GRADIENT_FLOATS);")
                w.comment("a non-finite gradient stops before the update (x * 0 is NaN only for NaN and infinity); after the sum, on every process alike")
                w.line("float probe = 0.0f;")
                w.line("const float *restrict gradients = t->state;")
                w.line("#pragma omp parallel for reduction(+:probe) schedule(static)")
                w.line("for (size_t i = 0; i < \(P)_TRAIN_GRADIENT_FLOATS; i++) probe += gradients[i] * 0.0f;")
                w.block("if (probe != probe)") { w in
                    w.line("cnnc_error_set(&ctx->error, CNNC_ERR_NUMERIC, \"a gradient is not finite at step %lld (the loss is %g)\", (long long)t->step, (double)batch_loss);")
                    w.line("return CNNC_ERR_NUMERIC;")
                }
            }
            if !layout.updated.isEmpty {
                w.comment("SGD with momentum on every trainable, unfrozen parameter: one loop over the table's chunks")
                w.line("const float lr = sgd->learning_rate, mu = sgd->momentum, wd = sgd->weight_decay;")
                w.line("const int nesterov = sgd->nesterov;")
                w.line("#pragma omp parallel for schedule(static)")
                w.block("for (int i = 0; i < NUM_SGD_CHUNKS; i++)") { w in
                    w.line("float *restrict wt = ctx->weights + sgd_chunks[i].weight;")
                    w.line("const float *restrict g = t->state + sgd_chunks[i].gradient;")
                    w.line("float *restrict v = t->state + sgd_chunks[i].momentum;")
                    w.line("const int count = (int)sgd_chunks[i].count;")
                    w.line("#pragma omp simd")
                    w.block("for (int j = 0; j < count; j++)") { w in
                        w.line("const float d = g[j] + wd * wt[j];")
                        w.line("v[j] = mu * v[j] + d;")
                        w.line("wt[j] -= lr * (nesterov ? d + mu * v[j] : v[j]);")
                    }
                }
            }
            w.line("t->step++;")
            w.line("ctx->prepared = 0;")
            w.line("ctx->version++;")
            w.line("return CNNC_OK;")
        }
        w.line()

        w.block("cnnc_status \(p)_evaluate(\(p)_context *ctx, \(p)_trainer *t, \(inputParams), const int32_t *labels, int n, float *loss, int *correct)") { w in
            checks(&w)
            w.line(inputArray)
            w.line("train_forward(ctx, t, inputs, n, NULL, n, 0, \(P)_NUM_LAYERS);")
            w.line("return loss_forward_backward(\(act(plan.logits)), NULL, labels, n, n, loss, correct, &ctx->error);")
        }
        w.line()

        InspectionEmitter.source(spec, o, plan: plan, zeroAt: layout.zeroAt, backwardExtras: layout.convolutionExtras,
                                 backwardPrelude: { layout.winogradTransform($0, transposed: true, weight: weight) },
                                 act: act, backwardAct: backwardAct, grad: grad, weight: weight, zero: zero, &w)

        // Trainer set-up and accessors.
        w.comment("trainable, unfrozen parameters: name, gradient offset, momentum offset, count (floats in the state region)")
        w.block("static const struct { const char *name; size_t gradient, momentum, count; } updated[\(max(layout.updated.count, 1))] =", trailer: ";") { w in
            if layout.updated.isEmpty { w.line("{\"\", 0, 0, 0},") }
            for spec in layout.updated {
                w.line("{\"\(spec.name)\", \(layout.parameterGradient[spec.name]!), \(layout.momentum[spec.name]!), \(spec.count)},")
            }
        }
        w.line("enum { NUM_UPDATED = \(layout.updated.count) };")
        w.line()
        w.block("cnnc_status \(p)_trainer_init(\(p)_trainer *t, void *arena, void *state, uint64_t seed)") { w in
            w.line("if (!t || !arena || !state || ((uintptr_t)arena | (uintptr_t)state) % \(P)_ALIGNMENT != 0) return CNNC_ERR_ARGUMENT;")
            w.line("memset(t, 0, sizeof *t);")
            w.line("t->arena = (float *)arena;")
            w.line("t->state = (float *)state;")
            w.line("t->seed = seed;")
            w.line("memset(t->state, 0, \(P)_TRAIN_STATE_BYTES);")
            w.line("return CNNC_OK;")
        }
        w.line()
        w.block("cnnc_status \(p)_trainer_create(\(p)_trainer *t, uint64_t seed)") { w in
            w.line("if (!t) return CNNC_ERR_ARGUMENT;")
            w.line("void *arena = cnnc_aligned_alloc(\(P)_TRAIN_ARENA_BYTES, \(P)_ALIGNMENT), *state = cnnc_aligned_alloc(\(P)_TRAIN_STATE_BYTES, \(P)_ALIGNMENT);")
            w.line("if (!arena || !state) { cnnc_aligned_free(arena); cnnc_aligned_free(state); return CNNC_ERR_ALLOC; }")
            w.line("\(p)_trainer_init(t, arena, state, seed);")
            w.line("t->owned_arena = arena;")
            w.line("t->owned_state = state;")
            w.line("return CNNC_OK;")
        }
        w.line()
        w.block("void \(p)_trainer_destroy(\(p)_trainer *t)") { w in
            w.line("if (!t) return;")
            w.line("cnnc_aligned_free(t->owned_arena);")
            w.line("cnnc_aligned_free(t->owned_state);")
            w.line("memset(t, 0, sizeof *t);")
        }
        w.line()
        for (function, field) in [("gradient", "gradient"), ("momentum", "momentum")] {
            w.block("float *\(p)_\(function)(\(p)_trainer *t, const char *name)") { w in
                w.line("if (!t || !t->state || !name) return NULL;")
                w.line("for (int i = 0; i < NUM_UPDATED; i++) if (strcmp(updated[i].name, name) == 0) return t->state + updated[i].\(field);")
                w.line("return NULL;")
            }
            w.line()
        }
        w.block("const char *\(p)_first_nonfinite_gradient(\(p)_trainer *t)") { w in
            w.line("if (!t || !t->state) return NULL;")
            w.line("for (int i = 0; i < NUM_UPDATED; i++)")
            w.line("    for (size_t j = 0; j < updated[i].count; j++) if (!isfinite(t->state[updated[i].gradient + j])) return updated[i].name;")
            w.line("return NULL;")
        }
        w.line()
        emitCheckpoints(p, P, &w)
    }

    /// `pack_parameters`: the trainer's packed copies of convolution weights (the implicit
    /// forward's panels, the input gradient's transposed and flipped panels), rebuilt when the
    /// context's parameters changed since the last packing (`ctx->version`, bumped by
    /// `<p>_prepare` and every train step) or the trainer last served another context; one
    /// task per tensor.
    static func emitPackParameters(_ p: String, _ layout: TrainingLayout, weight: (String) -> String, _ w: inout CWriter) {
        w.comment("the trainer's packed convolution weights, rebuilt when the parameters changed")
        w.block("static void pack_parameters(\(p)_context *ctx, \(p)_trainer *t)") { w in
            guard !layout.packings.isEmpty else {
                w.line("(void)ctx; (void)t;")
                return
            }
            w.line("if (t->packed_version == ctx->version && t->packed_context == (const void *)ctx) return;")
            w.line("#pragma omp parallel for schedule(dynamic)")
            w.block("for (int i = 0; i < \(layout.packings.count); i++)") { w in
                w.block("switch (i)") { w in
                    for (i, pk) in layout.packings.enumerated() {
                        if pk.transposed {
                            w.line("case \(i): cnnc_conv_pack_weights_transposed(t->state + \(layout.packedTransposed[pk.node]!), \(weight(pk.weight)), \(pk.groups), \(pk.kg), \(pk.cg), \(pk.taps)); break; /* \(pk.node), transposed */")
                        } else {
                            w.line("case \(i): cnnc_conv_pack_weights(t->state + \(layout.packedWeight[pk.node]!), \(weight(pk.weight)), \(pk.groups), \(pk.kg), \(pk.cg * pk.taps)); break; /* \(pk.node) */")
                        }
                    }
                    w.line("default: break;")
                }
            }
            w.line("t->packed_version = ctx->version;")
            w.line("t->packed_context = (const void *)ctx;")
        }
        w.line()
    }

    /// `const float *a, const float *b`: the graph's inputs as entry-point parameters.
    static func inputParameters(_ graph: Graph, prefix: String) -> String {
        CParameterNames(graph, prefix: prefix).inputs.map { "const float *\($0)" }.joined(separator: ", ")
    }

    /// `const float *const inputs[N] = {a, b};`, what `train_forward` takes.
    static func inputPointers(_ graph: Graph, prefix: String) -> String {
        "const float *const inputs[\(max(graph.inputs.count, 1))] = {\(CParameterNames(graph, prefix: prefix).inputs.joined(separator: ", "))};"
    }

    /// The checks every trainer entry point starts with: context, trainer and the pointers named
    /// in `nulls` present (else CNNC_ERR_ARGUMENT naming `what`), 1 <= n <= MAX_BATCH.
    static func entryChecks(_ P: String, nulls: [String], what: String, _ w: inout CWriter) {
        w.line("if (!ctx || !t || !ctx->weights || !t->arena || !t->state || \(nulls.map { "!" + $0 }.joined(separator: " || "))) {")
        w.line("    if (ctx) cnnc_error_set(&ctx->error, CNNC_ERR_ARGUMENT, \"null context, trainer or \(what)\");")
        w.line("    return CNNC_ERR_ARGUMENT;")
        w.line("}")
        w.line("if (n < 1 || n > \(P)_MAX_BATCH) {")
        w.line("    cnnc_error_set(&ctx->error, CNNC_ERR_BATCH, \"batch %d is outside 1..%d (\(P)_MAX_BATCH)\", n, \(P)_MAX_BATCH);")
        w.line("    return CNNC_ERR_BATCH;")
        w.line("}")
    }

    /// A call of backward kernel `k` with its arguments in `BackwardKernels.arguments` order:
    /// the wanted input and parameter gradients, d out, out, the inputs, the parameters, the
    /// op's `extra` (batch norm's saved statistics, dropout's seed and step), n.
    static func backwardCall(_ k: BackwardContext, grad: (String) -> String, act: (String) -> String,
                             weight: (String) -> String, parameterGradient: (String) -> String, extra: [String]) -> String {
        var args: [String] = []
        for (input, wanted) in zip(k.node.inputs, k.inputNeedsGrad) where wanted { args.append(grad(input)) }
        for (param, wanted) in zip(k.parameters, k.parameterNeedsGrad) where wanted { args.append(parameterGradient(param.name)) }
        args += [grad(k.node.name), act(k.node.name)] + k.node.inputs.map(act) + k.parameters.map { weight($0.name) } + extra + ["n"]
        return "\(k.function)(\(args.joined(separator: ", ")));"
    }

    static func emitCheckpoints(_ p: String, _ P: String, _ w: inout CWriter) {
        w.block("cnnc_status \(p)_save_checkpoint(\(p)_context *ctx, \(p)_trainer *t, const char *path)") { w in
            w.line("if (!ctx || !t || !path) return CNNC_ERR_ARGUMENT;")
            w.line("cnnc_tensor_f32 tensors[\(P)_NUM_PARAMETERS + NUM_UPDATED + 1];")
            w.comment("names on the stack, not static: two contexts may save from two threads")
            w.line("char names[NUM_UPDATED + 1][160];")
            w.line("size_t count = 0;")
            w.block("for (int i = 0; i < \(P)_NUM_PARAMETERS; i++, count++)") { w in
                w.line("tensors[count].name = parameters[i].name;")
                w.line("tensors[count].ndim = parameters[i].ndim;")
                w.line("tensors[count].shape = parameters[i].shape;")
                w.line("tensors[count].data = ctx->weights + parameters[i].offset;")
            }
            w.block("for (int i = 0; i < NUM_UPDATED; i++, count++)") { w in
                w.line("snprintf(names[i], sizeof names[i], \"%s.momentum\", updated[i].name);")
                w.line("const \(p)_parameter_info *info = NULL;")
                w.line("for (int j = 0; j < \(P)_NUM_PARAMETERS; j++) if (strcmp(parameters[j].name, updated[i].name) == 0) info = &parameters[j];")
                w.line("tensors[count].name = names[i];")
                w.line("tensors[count].ndim = info->ndim;")
                w.line("tensors[count].shape = info->shape;")
                w.line("tensors[count].data = t->state + updated[i].momentum;")
            }
            w.line("char step[32], seed[32];")
            w.line("snprintf(step, sizeof step, \"%lld\", (long long)t->step);")
            w.line("snprintf(seed, sizeof seed, \"%llu\", (unsigned long long)t->seed);")
            w.line("const char *const metadata[] = {\"format\", \"cnnc-checkpoint\", \"step\", step, \"seed\", seed, NULL};")
            w.line("return cnnc_safetensors_write_f32(path, tensors, count, metadata, &ctx->error);")
        }
        w.line()
        w.block("cnnc_status \(p)_load_checkpoint(\(p)_context *ctx, \(p)_trainer *t, const char *path)") { w in
            w.line("if (!ctx || !t || !path) return CNNC_ERR_ARGUMENT;")
            w.line("cnnc_safetensors *st = NULL;")
            w.line("cnnc_status s = cnnc_safetensors_open(path, &st, &ctx->error);")
            w.line("if (s != CNNC_OK) return s;")
            w.line("const char *format = cnnc_safetensors_metadata(st, \"format\"), *step = cnnc_safetensors_metadata(st, \"step\"), *seed = cnnc_safetensors_metadata(st, \"seed\");")
            w.block("if (!format || strcmp(format, \"cnnc-checkpoint\") != 0 || !step || !seed)") { w in
                w.line("cnnc_error_set(&ctx->error, CNNC_ERR_FORMAT, \"%s: not a cnnc checkpoint (no format/step/seed metadata)\", path);")
                w.line("cnnc_safetensors_close(st);")
                w.line("return CNNC_ERR_FORMAT;")
            }
            w.block("for (int i = 0; i < \(P)_NUM_PARAMETERS && s == CNNC_OK; i++)") { w in
                w.line("s = cnnc_safetensors_read_f32(st, parameters[i].name, ctx->weights + parameters[i].offset, parameters[i].ndim, parameters[i].shape, &ctx->error);")
            }
            w.block("for (int i = 0; i < NUM_UPDATED && s == CNNC_OK; i++)") { w in
                w.line("char name[160];")
                w.line("snprintf(name, sizeof name, \"%s.momentum\", updated[i].name);")
                w.line("const \(p)_parameter_info *info = NULL;")
                w.line("for (int j = 0; j < \(P)_NUM_PARAMETERS; j++) if (strcmp(parameters[j].name, updated[i].name) == 0) info = &parameters[j];")
                w.line("s = cnnc_safetensors_read_f32(st, name, t->state + updated[i].momentum, info->ndim, info->shape, &ctx->error);")
            }
            w.line("if (s == CNNC_OK) { t->step = strtoll(step, NULL, 10); t->seed = strtoull(seed, NULL, 10); }")
            w.line("cnnc_safetensors_close(st);")
            w.line("return s == CNNC_OK ? parameters_changed(ctx) : s;")
        }
        w.line()
    }
}
