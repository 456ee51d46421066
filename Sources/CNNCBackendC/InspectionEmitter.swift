// Looking inside a trained network (issue #7), part of every training build: a table of the
// layers of the network as written (no fusion), `<p>_forward_tap` (the activations of one
// layer for a batch) and `<p>_input_grad` (the gradient of a weighted sum of the scores with
// respect to the input). Both run in inference mode (batch norm on running statistics,
// dropout off) over the trainer's arena, which keeps every activation of the training graph.
//
// The scores are the logits of the training loss: the first output, or its input when that
// output is a softmax (Simonyan, Vedaldi and Zisserman 2014 take the class score before the
// softmax). The backward pass reuses the training step's backward kernels, generated again
// with every input gradient wanted and no parameter gradient; batch norm (an affine map at
// inference: dx = dy * gamma / sqrt(var + eps)) and dropout (identity) are written inline.

import CNNCIR

enum InspectionEmitter {
    /// Receptive field of one unit of each rank-3 value, in input pixels, per axis:
    /// (size, jump, start): unit p sees input rows start + p * jump ... start + p * jump + size - 1.
    /// Convolutions and pools grow it (size += (k_eff - 1) * jump; jump *= stride;
    /// start -= pad * jump); element-wise ops keep it; joins (add, concat) take the union;
    /// global pools and dense layers see the whole input.
    static func receptiveFields(_ graph: Graph) -> [String: [Int]] {
        var rf: [String: [Int]] = [:]
        let input = graph.inputs.first?.shape
        let whole = [input?.rank == 3 ? input!.h : 1, input?.rank == 3 ? input!.w : 1, 1, 1, 0, 0]
        func grow(_ r: [Int], kernel: Pair, stride: Pair, dilation: Pair, pad: Padding) -> [Int] {
            let kh = dilation.h * (kernel.h - 1) + 1, kw = dilation.w * (kernel.w - 1) + 1
            return [r[0] + (kh - 1) * r[2], r[1] + (kw - 1) * r[3], r[2] * stride.h, r[3] * stride.w,
                    r[4] - pad.top * r[2], r[5] - pad.left * r[3]]
        }
        for node in graph.nodes {
            let ins = node.inputs.compactMap { rf[$0] }
            switch node.op {
            case .input: rf[node.name] = [1, 1, 1, 1, 0, 0]
            case .conv(let a):
                rf[node.name] = ins.first.map { grow($0, kernel: a.kernel, stride: a.stride, dilation: a.dilation, pad: a.padding) }
            case .maxPool(let a), .avgPool(let a):
                rf[node.name] = ins.first.map { grow($0, kernel: a.kernel, stride: a.stride, dilation: Pair(1, 1), pad: a.padding) }
            case .add, .binary, .concat:
                guard var u = ins.first else { break }
                for r in ins.dropFirst() {
                    let top = min(u[4], r[4]), left = min(u[5], r[5])
                    u[0] = max(u[4] + u[0], r[4] + r[0]) - top
                    u[1] = max(u[5] + u[1], r[5] + r[1]) - left
                    u[4] = top; u[5] = left
                }
                rf[node.name] = u
            // A transposed conv's window has no whole step in input pixels: counted as the whole input.
            case .globalAvgPool, .globalMaxPool, .dense, .flatten, .convTranspose: rf[node.name] = whole
            case .activation, .prelu, .dropout, .lrn, .batchNorm, .shuffle, .slice, .pad, .upsample, .softmax, .logSoftmax:
                rf[node.name] = ins.first
            }
            if node.shape.rank != 3 { rf[node.name] = [0, 0, 0, 0, 0, 0] }
        }
        return rf
    }

    static func header(_ spec: TrainingSpec, _ o: COptions, _ w: inout CWriter) {
        let p = o.prefix, P = CEmitter.macroName(p)
        let tg = spec.graph
        let inputArgs = TrainingEmitter.inputParameters(tg, prefix: p)
        w.comment("Inspection (issue #7): the layers of the network as written, input first, without fusion.")
        w.line("#define \(P)_NUM_LAYERS \(tg.nodes.count)")
        w.block("typedef struct \(p)_layer_info", trailer: " \(p)_layer_info;") { w in
            w.line("const char *name;   /* \"c1\" */")
            w.line("const char *op;     /* the .net keyword: \"input\", \"conv\", \"relu\", ... */")
            w.line("int rank;           /* 3 (C,H,W) or 1 (F) */")
            w.line("int dims[3];        /* per-sample dims; 1 past the rank */")
            w.line("int64_t size;       /* floats per sample */")
            w.line("int rf[6];          /* receptive field of one unit in input pixels (rank 3): size_h, size_w, jump_h, jump_w, start_h, start_w;")
            w.line("                       unit (p,q) sees rows start_h + p*jump_h ... + size_h - 1 (clip to the image) */")
        }
        w.comment("Layer i (NULL outside 0..\(P)_NUM_LAYERS-1), and the index of a layer by name (-1 if none).")
        w.line("const \(p)_layer_info *\(p)_layer(int i);")
        w.line("int \(p)_layer_index(const char *name);")
        w.comment("""
        The activations of layer `layer` for n samples, in inference mode (running statistics, no
        dropout): n * \(p)_layer(layer)->size floats into out. Runs the network up to that layer only.
        """)
        w.line("cnnc_status \(p)_forward_tap(\(p)_context *ctx, \(p)_trainer *t, \(inputArgs), int n, int layer, float *out);")
        w.comment("""
        Scores are the logits of the loss (n x \(P)_NUM_CLASSES: the first output, before a final
        softmax). Writes the scores (if scores is not NULL) and into grad (n x the first input's
        size) d(sum_{i,k} weights[i*\(P)_NUM_CLASSES + k] * score[i][k]) / d input, in inference mode.
        """)
        w.line("cnnc_status \(p)_input_grad(\(p)_context *ctx, \(p)_trainer *t, \(inputArgs), int n, const float *weights, float *scores, float *grad);")
        w.line()
    }

    /// Writes the inspection backward kernels, the layer table and the two entry points. `act`,
    /// `grad` and `weight` give the C expressions of a value, its gradient buffer and a
    /// parameter, as the training emitter lays them out.
    static func source(_ spec: TrainingSpec, _ o: COptions, plan: GradientPlan, zeroAt: [Int: [String]],
                       backwardExtras: (String) -> [String], backwardPrelude: (String) -> String?, act: (String) -> String, backwardAct: (String) -> String,
                       grad: (String) -> String, weight: (String) -> String, zero: (String) -> String, _ w: inout CWriter) {
        let p = o.prefix, P = CEmitter.macroName(p)
        let tg = spec.graph
        let index = tg.indexByName()
        let fields = receptiveFields(tg)
        func wants(_ name: String) -> Bool { plan.inputPath.contains(name) }

        // Backward kernels: every input gradient on the path, no parameter gradient.
        var kernels: [String: BackwardContext] = [:]
        for name in plan.inputBackwardOrder {
            guard var k = plan.inspectionBackward(tg.nodes[index[name]!], tg, index: index,
                                                  function: "inspect_node_\(name)_backward") else { continue }
            k.maxBatch = o.maxBatch
            BackwardKernels.emit(k, into: &w)
            kernels[name] = k
        }

        // The layer table.
        w.block("static const \(p)_layer_info layers[\(tg.nodes.count)] =", trailer: ";") { w in
            for node in tg.nodes {
                let s = node.shape
                let dims = (s.dims + [1, 1, 1]).prefix(3).map(String.init).joined(separator: ", ")
                let rf = (fields[node.name] ?? [0, 0, 0, 0, 0, 0]).map(String.init).joined(separator: ", ")
                w.line("{\"\(node.name)\", \"\(node.op.keyword?.rawValue ?? "input")\", \(s.rank), {\(dims)}, \(s.count), {\(rf)}},")
            }
        }
        w.line()
        w.block("const \(p)_layer_info *\(p)_layer(int i)") { w in
            w.line("return i >= 0 && i < \(P)_NUM_LAYERS ? &layers[i] : NULL;")
        }
        w.line()
        w.block("int \(p)_layer_index(const char *name)") { w in
            w.line("if (!name) return -1;")
            w.line("for (int i = 0; i < \(P)_NUM_LAYERS; i++) if (strcmp(layers[i].name, name) == 0) return i;")
            w.line("return -1;")
        }
        w.line()

        let inputParams = TrainingEmitter.inputParameters(tg, prefix: p), inputArray = TrainingEmitter.inputPointers(tg, prefix: p)
        let inputNames = CParameterNames(tg, prefix: p).inputs

        w.block("cnnc_status \(p)_forward_tap(\(p)_context *ctx, \(p)_trainer *t, \(inputParams), int n, int layer, float *out)") { w in
            TrainingEmitter.entryChecks(P, nulls: inputNames + ["out"], what: "input or output", &w)
            w.block("if (layer < 0 || layer >= \(P)_NUM_LAYERS)") { w in
                w.line("cnnc_error_set(&ctx->error, CNNC_ERR_ARGUMENT, \"layer %d is outside 0..%d (\(P)_NUM_LAYERS layers)\", layer, \(P)_NUM_LAYERS - 1);")
                w.line("return CNNC_ERR_ARGUMENT;")
            }
            w.line(inputArray)
            w.line("train_forward(ctx, t, inputs, n, NULL, n, 0, layer);")
            w.line("const float *src = NULL;")
            w.block("switch (layer)") { w in
                for (i, node) in tg.nodes.enumerated() { w.line("case \(i): src = \(act(node.name)); break;") }
            }
            w.line("memcpy(out, src, sizeof(float) * (size_t)n * (size_t)layers[layer].size);")
            w.line("return CNNC_OK;")
        }
        w.line()

        let logits = plan.logits
        let classes = tg.nodes[index[logits]!].shape.count
        let first = tg.inputs[0]
        w.block("cnnc_status \(p)_input_grad(\(p)_context *ctx, \(p)_trainer *t, \(inputParams), int n, const float *weights, float *scores, float *grad)") { w in
            TrainingEmitter.entryChecks(P, nulls: inputNames + ["weights", "grad"], what: "input, weights or gradient", &w)
            w.line(inputArray)
            w.line("train_forward(ctx, t, inputs, n, NULL, n, 0, \(P)_NUM_LAYERS);")
            w.line("if (scores) memcpy(scores, \(act(logits)), sizeof(float) * (size_t)n * \(classes));")
            guard wants(first.name), wants(logits) else {
                w.comment("the scores do not depend on '\(first.name)'")
                w.line("memset(grad, 0, sizeof(float) * (size_t)n * \(first.shape.count));")
                w.line("return CNNC_OK;")
                return
            }
            w.comment("seed the scores' gradient with the weights; every other gradient is zeroed just before its last reader's backward")
            for name in zeroAt[tg.nodes.count] ?? [] where plan.inputPath.contains(name) && name != logits { w.line(zero(name)) }
            w.line("memcpy(\(grad(logits)), weights, sizeof(float) * (size_t)n * \(classes));")
            w.comment("backward in reverse graph order, inference semantics")
            let runs = Set(plan.inputBackwardOrder)
            for i in tg.nodes.indices.reversed() {
                for name in zeroAt[i] ?? [] where plan.inputPath.contains(name) { w.line(zero(name)) }
                let node = tg.nodes[i], name = node.name
                guard runs.contains(name) else { continue }
                let params = tg.parameters().filter { $0.node == node.name }
                switch node.op {
                case .flatten, .input: continue
                case .batchNorm(let a):
                    guard wants(node.inputs[0]) else { continue }
                    let c = node.shape.dims[0], inner = node.shape.count / c
                    let pw = params.map { weight($0.name) }
                    w.block("") { w in
                        w.comment("\(node.name): inference batch norm, dx += dy * gamma / sqrt(var + eps)")
                        w.line("float *restrict dx = \(grad(node.inputs[0]));")
                        w.line("const float *restrict dy = \(grad(node.name)), *restrict g = \(pw[0]), *restrict va = \(pw[3]);")
                        w.line("#pragma omp parallel for collapse(2) schedule(static)")
                        w.line("for (int b = 0; b < n; b++)")
                        w.line("    for (int c = 0; c < \(c); c++) {")
                        w.line("        const float s = g[c] / sqrtf(va[c] + \(cFloat(a.epsilon)));")
                        w.line("        for (int i = 0; i < \(inner); i++) dx[((size_t)b * \(c) + c) * \(inner) + i] += dy[((size_t)b * \(c) + c) * \(inner) + i] * s;")
                        w.line("    }")
                    }
                case .dropout:
                    guard wants(node.inputs[0]) else { continue }
                    w.block("") { w in
                        w.comment("\(node.name): dropout is the identity at inference")
                        w.line("float *restrict dx = \(grad(node.inputs[0]));")
                        w.line("const float *restrict dy = \(grad(node.name));")
                        w.line("#pragma omp parallel for schedule(static)")
                        w.line("for (size_t i = 0; i < (size_t)n * \(node.shape.count); i++) dx[i] += dy[i];")
                    }
                case .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                     .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                    guard let k = kernels[name] else { continue }
                    let extra = backwardExtras(name)
                    if let prelude = backwardPrelude(name) { w.line(prelude) }
                    w.line(TrainingEmitter.backwardCall(k, grad: grad, act: backwardAct, weight: weight, parameterGradient: { _ in "" }, extra: extra))
                }
            }
            w.line("memcpy(grad, \(grad(first.name)), sizeof(float) * (size_t)n * \(first.shape.count));")
            w.line("return CNNC_OK;")
        }
        w.line()
    }
}
