// `cnnc check --train`: the generated training step against the interpreter over several
// steps on one seeded batch: the loss of every step, every gradient of the last step, and
// every parameter, momentum buffer and batch-norm statistic after the last step.

import CNNCBackendC
import CNNCIR
import CNNCInterpreter
import CNNCPasses
import Foundation

public struct TrainCheckOptions {
    public var batch = 4
    public var steps = 2
    public var seed: UInt64 = 1
    public var weights: String?
    public var sgd = SGDConfig(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: false)
    public var frozen: Set<String> = []
    public var threads = [1, 2]
    public var sanitize = false
    public var keep = false
    /// Float32 training kernels against the Double interpreter, after a few SGD steps.
    public var tolerance = Tolerance(name: "gradient", absolute: 2e-4, relative: 2e-3)
    public init() {}
}

/// The trainer harness C program: runs `steps` SGD steps on one batch and writes the losses
/// and a safetensors file with every parameter, `<name>.grad` of the last step and
/// `<name>.momentum`.
enum TrainHarness {
    static func source(_ graph: Graph, prefix p: String, header: String, trainable: [ParameterSpec]) -> String {
        let input = graph.inputs[0]
        var w = CWriter()
        w.comment("cnnc training harness for '\(graph.name)': WEIGHTS|seed=S STEPS LR MOMENTUM WD NESTEROV N X.npy Y.npy OUT.safetensors LOSSES.npy")
        w.line("#include \"\(header)\"")
        w.line("#include <math.h>")
        w.line("#include <stdio.h>")
        w.line("#include <stdlib.h>")
        w.line("#include <string.h>")
        w.line()
        w.block("int main(int argc, char **argv)") { w in
            w.line("if (argc != 12) { fprintf(stderr, \"usage: %s WEIGHTS|seed=S STEPS LR MOMENTUM WD NESTEROV N X.npy Y.npy OUT LOSSES\\n\", argv[0]); return 2; }")
            w.line("\(p)_context ctx;")
            w.line("\(p)_trainer t;")
            w.line("cnnc_status s = \(p)_create(&ctx);")
            w.line("if (s == CNNC_OK) s = strncmp(argv[1], \"seed=\", 5) == 0 ? \(p)_init_weights(&ctx, strtoull(argv[1] + 5, NULL, 10)) : \(p)_load_weights(&ctx, argv[1]);")
            w.line("if (s == CNNC_OK) s = \(p)_trainer_create(&t, strncmp(argv[1], \"seed=\", 5) == 0 ? strtoull(argv[1] + 5, NULL, 10) : 1);")
            w.line("if (s != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
            w.line("const int steps = atoi(argv[2]), n = atoi(argv[7]);")
            w.line("\(p)_sgd sgd = {(float)atof(argv[3]), (float)atof(argv[4]), (float)atof(argv[5]), atoi(argv[6])};")
            w.line("cnnc_error err = {CNNC_OK, {0}};")
            w.line("cnnc_array_f32 x;")
            w.line("cnnc_array_i64 y;")
            w.line("if (cnnc_npy_read_f32(argv[8], &x, &err) != CNNC_OK || cnnc_npy_read_i64(argv[9], &y, &err) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", err.message); return 1; }")
            w.line("if (x.count != (size_t)n * \(input.shape.count) || y.count != (size_t)n) { fprintf(stderr, \"error: data does not match batch %d\\n\", n); return 1; }")
            w.line("int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);")
            w.line("for (int i = 0; i < n; i++) labels[i] = (int32_t)y.data[i];")
            w.line("float *losses = malloc(sizeof(float) * (size_t)steps);")
            w.line("for (size_t i = 0; i < \(CEmitter.macroName(p))_TRAIN_ARENA_BYTES / sizeof(float); i++) t.arena[i] = NAN;")
            let count = "\(CEmitter.macroName(p))_NUM_PARAMETERS + \(2 * trainable.count)"
            w.line("cnnc_tensor_f32 tensors[\(count)];")
            for spec in trainable {
                let dims = spec.shape.map(String.init).joined(separator: ", ")
                w.line("static const int64_t shape_\(cName(spec.name))[\(spec.shape.count)] = {\(dims)};")
            }
            let P = CEmitter.macroName(p)
            w.comment("before training: every layer's forward tap and the input gradient of weighted scores, in OUT_0.safetensors")
            w.block("") { w in
                w.line("cnnc_tensor_f32 taps[\(P)_NUM_LAYERS + 2];")
                w.line("static char tap_names[\(P)_NUM_LAYERS][160];")
                w.line("static int64_t tap_shapes[\(P)_NUM_LAYERS + 2][4];")
                w.block("for (int i = 0; i < \(P)_NUM_LAYERS; i++)") { w in
                    w.line("const \(p)_layer_info *layer = \(p)_layer(i);")
                    w.line("float *buf = malloc(sizeof(float) * (size_t)n * (size_t)layer->size);")
                    w.line("s = \(p)_forward_tap(&ctx, &t, x.data, n, i, buf);")
                    w.line("if (s != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
                    w.line("snprintf(tap_names[i], sizeof tap_names[i], \"tap.%s\", layer->name);")
                    w.line("tap_shapes[i][0] = n;")
                    w.line("for (int d = 0; d < layer->rank; d++) tap_shapes[i][d + 1] = layer->dims[d];")
                    w.line("taps[i].name = tap_names[i]; taps[i].ndim = (size_t)layer->rank + 1; taps[i].shape = tap_shapes[i]; taps[i].data = buf;")
                }
                let inputDims = input.shape.dims
                w.line("float *weights = malloc(sizeof(float) * (size_t)n * \(P)_NUM_CLASSES), *scores = malloc(sizeof(float) * (size_t)n * \(P)_NUM_CLASSES);")
                w.line("float *grad = malloc(sizeof(float) * (size_t)n * \(input.shape.count));")
                w.line("for (int i = 0; i < n * \(P)_NUM_CLASSES; i++) weights[i] = \(inspectionWeightFormula(index: "i"));")
                w.line("s = \(p)_input_grad(&ctx, &t, x.data, n, weights, scores, grad);")
                w.line("if (s != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
                w.line("const int g = \(P)_NUM_LAYERS, sc = \(P)_NUM_LAYERS + 1;")
                w.line("tap_shapes[g][0] = n;")
                for (d, v) in inputDims.enumerated() { w.line("tap_shapes[g][\(d + 1)] = \(v);") }
                w.line("taps[g].name = \"input_grad\"; taps[g].ndim = \(inputDims.count + 1); taps[g].shape = tap_shapes[g]; taps[g].data = grad;")
                w.line("tap_shapes[sc][0] = n; tap_shapes[sc][1] = \(P)_NUM_CLASSES;")
                w.line("taps[sc].name = \"scores\"; taps[sc].ndim = 2; taps[sc].shape = tap_shapes[sc]; taps[sc].data = scores;")
                w.line("char path[4096];")
                w.line("snprintf(path, sizeof path, \"%s_0.safetensors\", argv[10]);")
                w.line("if (cnnc_safetensors_write_f32(path, taps, \(P)_NUM_LAYERS + 2, NULL, &err) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", err.message); return 1; }")
                w.line("for (int i = 0; i < \(P)_NUM_LAYERS + 2; i++) free((void *)taps[i].data);")
                w.line("free(weights);")
            }
            w.comment("after every step: the losses so far and the state (parameters, last gradients, momentum) in OUT_<step>.safetensors")
            w.block("for (int i = 0; i < steps; i++)") { w in
                w.line("s = \(p)_train_step(&ctx, &t, x.data, labels, n, &sgd, &losses[i], NULL);")
                w.line("if (s != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
                w.line("size_t k = 0;")
                w.block("for (int j = 0; j < \(CEmitter.macroName(p))_NUM_PARAMETERS; j++, k++)") { w in
                    w.line("const \(p)_parameter_info *info = \(p)_parameter(j);")
                    w.line("tensors[k].name = info->name; tensors[k].ndim = info->ndim; tensors[k].shape = info->shape;")
                    w.line("tensors[k].data = ctx.weights + info->offset;")
                }
                for spec in trainable {
                    w.line("tensors[k].name = \"\(spec.name).grad\"; tensors[k].ndim = \(spec.shape.count); tensors[k].shape = shape_\(cName(spec.name)); tensors[k++].data = \(p)_gradient(&t, \"\(spec.name)\");")
                    w.line("tensors[k].name = \"\(spec.name).momentum\"; tensors[k].ndim = \(spec.shape.count); tensors[k].shape = shape_\(cName(spec.name)); tensors[k++].data = \(p)_momentum(&t, \"\(spec.name)\");")
                }
                w.line("char path[4096];")
                w.line("snprintf(path, sizeof path, \"%s_%d.safetensors\", argv[10], i + 1);")
                w.line("if (cnnc_safetensors_write_f32(path, tensors, k, NULL, &err) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", err.message); return 1; }")
            }
            w.line("int64_t shape[1] = {steps};")
            w.line("if (cnnc_npy_write_f32(argv[11], losses, 1, shape, &err) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", err.message); return 1; }")
            w.line("free(labels); free(losses); cnnc_array_f32_free(&x); cnnc_array_i64_free(&y);")
            w.line("\(p)_trainer_destroy(&t);")
            w.line("\(p)_destroy(&ctx);")
            w.line("return 0;")
        }
        return w.text
    }

    /// The weight of score k of sample i (flat index i*K + k) for the input-gradient check:
    /// mixed signs and sizes, so every score contributes. The C expression of `index`, and the
    /// same in Swift.
    static func inspectionWeightFormula(index i: String) -> String { "(float)((\(i) * 7 % 5) - 2) * 0.5f" }
    static func inspectionWeight(_ i: Int) -> Double { Double((i * 7 % 5) - 2) * 0.5 }

    static func cName(_ s: String) -> String { String(s.map { $0.isLetter || $0.isNumber ? $0 : "_" }) }
}

public enum TrainChecker {
    /// The training graph: the source graph after the training pipeline, for steps of at most
    /// `batch` samples (select-conv-algorithm's rule for small planes depends on it).
    public static func trainingGraph(_ graph: Graph, batch: Int = 1) throws -> Graph {
        var manager = PassManager(passes: Pipelines.optimizing(.training), mode: .training)
        manager.options.batch = batch
        do { return try manager.run(graph).graph } catch let list as DiagnosticList {
            throw DriverError(list.description)
        }
    }

    public static func check(_ model: LoadedModel, options: TrainCheckOptions) throws -> (String, Bool) {
        let graph = model.graph
        guard graph.inputs.count == 1 else {
            throw DriverError("error: training needs a network with one input, '\(graph.name)' has \(graph.inputs.count)")
        }
        let dir = try WorkDirectory(prefix: "cnnc-train-check")
        defer { if !options.keep { dir.cleanup() } }
        let training = try trainingGraph(graph, batch: options.batch)
        let inference = try CompilerOptions().optimized(graph)
        var options = options
        // Without --weights, the weights that came with the model (an ONNX file's), as `check`.
        if options.weights == nil { options.weights = try model.writeWeights(to: "\(dir.path)/model_weights.safetensors") }
        options.frozen.formUnion(graph.frozen)
        let trainable = training.parameters().filter { $0.trainable && !options.frozen.contains($0.node) }

        // Data: seeded inputs and labels.
        let input = graph.inputs[0]
        let x = SeededData.input(name: input.name, shape: input.shape.batched(options.batch), seed: options.seed)
        let logitsName: String = {
            let out = graph.node(named: graph.outputs[0])!
            if case .softmax = out.op { return out.inputs[0] }
            return out.name
        }()
        let classes = graph.node(named: logitsName)!.shape.count
        let labels = (0..<options.batch).map { Int(SeededInit.splitmix64(options.seed &+ UInt64($0)) % UInt64(classes)) }
        try NumpyFile.write(FloatArray(shape: x.shape, data: x.data.map { Float($0) }), to: "\(dir.path)/x.npy")
        try NumpyFile.writeLabels(labels, to: "\(dir.path)/y.npy")

        // The generated code.
        var extra: [String] = []
        if options.sanitize { extra = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"] }
        let prefix = graph.name
        try CompilerOptions.checkBatchFitsCInt(training, batch: options.batch)
        let c = CEmitter.emit(inference, options: COptions(
            prefix: prefix, maxBatch: options.batch, headerName: "\(prefix).h", sourceName: model.path,
            seed: options.seed, training: TrainingSpec(graph: training, frozen: options.frozen)))
        try ModelBuilder.write(c.header, to: "\(dir.path)/\(prefix).h")
        try ModelBuilder.write(c.source, to: "\(dir.path)/\(prefix).c")
        let runtime = try RuntimeSources.write(to: dir.path)
        try ModelBuilder.write(TrainHarness.source(graph, prefix: prefix, header: "\(prefix).h", trainable: trainable),
                               to: "\(dir.path)/train_harness.c")
        try Toolchain(extraFlags: extra).build(sources: ["\(prefix).c", "train_harness.c"] + runtime,
                                               output: "\(dir.path)/train_harness", in: dir.path)
        let weightsArgument = options.weights.map { URL(fileURLWithPath: $0).path } ?? "seed=\(options.seed)"
        var runs: [(Int, [[String: FloatArray]], FloatArray)] = []
        for threads in options.threads {
            let out = "\(dir.path)/state_t\(threads)", lossFile = "\(dir.path)/losses_t\(threads).npy"
            let r = try Shell.run(["\(dir.path)/train_harness", weightsArgument, "\(options.steps)", "\(options.sgd.learningRate)",
                                   "\(options.sgd.momentum)", "\(options.sgd.weightDecay)", options.sgd.nesterov ? "1" : "0",
                                   "\(options.batch)", "\(dir.path)/x.npy", "\(dir.path)/y.npy", out, lossFile],
                                  in: dir.path, environment: ["OMP_NUM_THREADS": "\(threads)"])
            guard r.status == 0 else { throw DriverError("error: generated training step failed at \(threads) thread(s):\n\(r.output)") }
            let states = try (0...options.steps).map { try SafetensorsFile.read("\(out)_\($0).safetensors") }
            runs.append((threads, states, try NumpyFile.read(lossFile)))
        }

        // The interpreter, one step at a time from the state the generated code had before
        // that step (so trajectories cannot drift apart: every comparison starts from the same
        // weights and momentum; float-vs-double differences then stay within one step).
        var report = "check --train \(graph.name) (\(model.path)): batch \(options.batch), \(options.steps) steps, lr \(options.sgd.learningRate), momentum \(options.sgd.momentum), weight decay \(options.sgd.weightDecay)\n"
        var passed = true
        let (_, allStates, cLosses) = runs[0]
        let inspection = allStates[0], states = Array(allStates.dropFirst())
        passed = try compareInspection(graph, logits: logitsName, classes: classes, inspection: inspection, x: x,
                                       inputName: input.name, options: options, perturbation: perturbation(training), report: &report) && passed
        var parameters = try options.weights.map { try Checker.loadParameters($0, graph: graph) } ?? Weights.seeded(graph, seed: options.seed)
        var velocity: [String: Tensor] = [:]
        var losses: [Double] = []
        var worst: [(text: String, passed: Bool, maxAbs: Double)] = []
        var widenedCount = 0
        let verbose = ProcessInfo.processInfo.environment["CNNC_CHECK_VERBOSE"] == "1"
        for step in 0..<options.steps {
            let interpreter: Interpreter
            do { interpreter = try Interpreter(graph: graph, parameters: parameters) } catch { throw DriverError("error: \(error)") }
            let r: TrainingStepResult
            do {
                r = try interpreter.trainingStep(inputs: [input.name: x], labels: labels, step: step, seed: options.seed,
                                                 sgd: options.sgd, velocity: velocity, frozen: options.frozen)
            } catch { throw DriverError("error: \(error)") }
            losses.append(r.loss)
            let state = states[step]
            // Computed only when a comparison fails: how far the interpreter's own results move
            // when its weights move by float32 rounding (see `sensitivity`).
            var spread: [String: Double]?
            func compare(_ label: String, _ key: String, _ actual: FloatArray?, _ expected: Tensor?) throws {
                guard let actual, let expected else {
                    report += "\(label): missing FAIL\n"; passed = false; return
                }
                var line = Checker.compare(name: "step \(step + 1) " + label, actual: actual, expected: expected, tolerance: options.tolerance)
                if !line.passed {
                    if spread == nil {
                        spread = try sensitivity(graph, parameters: parameters, x: x, inputName: input.name, labels: labels,
                                                 step: step, options: options, velocity: velocity, reference: r,
                                                 scale: perturbation(training))
                    }
                    if let s = spread?[key], s > 0 {
                        // The interpreter itself moves by s here when its weights move by C's
                        // own error (`perturbation`; ReLU/max-pool decisions near ties flip): C
                        // may differ by as much for the same reason, not for a bug.
                        line = Checker.compare(name: "step \(step + 1) " + label, actual: actual, expected: expected,
                                               tolerance: widened(options.tolerance, spread: s, expected: expected))
                        if line.passed { widenedCount += 1 }
                    }
                }
                worst.append(line)
                passed = passed && line.passed
            }
            for spec in trainable {
                try compare("\(spec.name) gradient", "\(spec.name).grad", state["\(spec.name).grad"], r.gradients[spec.name])
                try compare("\(spec.name) momentum", "\(spec.name).momentum", state["\(spec.name).momentum"], r.updatedVelocity[spec.name])
            }
            for spec in training.parameters() {
                try compare("\(spec.name) after the step", spec.name, state[spec.name], r.updatedParameters[spec.name])
            }
            // The next step starts from the generated code's state.
            for spec in training.parameters() {
                if let a = state[spec.name] { parameters[spec.name] = Tensor(shape: a.shape, data: a.data.map(Double.init)) }
            }
            for spec in trainable {
                if let a = state["\(spec.name).momentum"] { velocity[spec.name] = Tensor(shape: a.shape, data: a.data.map(Double.init)) }
            }
        }
        let lossLine = Checker.compare(name: "loss per step", actual: cLosses,
                                       expected: Tensor(shape: [options.steps], data: losses), tolerance: options.tolerance)
        report += lossLine.text + "\n"
        passed = passed && lossLine.passed
        let failures = worst.filter { !$0.passed || verbose }
        for line in failures { report += line.text + "\n" }
        report += "\(worst.count - worst.filter { !$0.passed }.count) of \(worst.count) comparisons (gradients, momentum, parameters and running statistics, per step) within [\(options.tolerance.name)]"
        report += widenedCount == 0 ? "\n" : ", \(widenedCount) of them only within the interpreter's own sensitivity\n"
        if let g = worst.filter({ $0.text.contains(" gradient:") }).max(by: { $0.maxAbs < $1.maxAbs }) {
            report += "largest gradient error: \(g.text)\n"
        }
        for (threads, other, otherLosses) in runs.dropFirst() {
            let same = otherLosses.data.map(\.bitPattern) == cLosses.data.map(\.bitPattern)
                && zip(other, allStates).allSatisfy { o, s in
                    o.keys.sorted() == s.keys.sorted() && o.keys.allSatisfy { o[$0]!.data.map(\.bitPattern) == s[$0]!.data.map(\.bitPattern) }
                }
            report += "threads \(runs[0].0) vs \(threads): \(same ? "bitwise equal PASS" : "DIFFERENT FAIL")\n"
            passed = passed && same
        }
        report += passed ? "PASS\n" : "FAIL\n"
        return (report, passed)
    }

    /// The forward taps of every layer and the input gradient of weighted scores (inference
    /// mode, before any step) against the interpreter.
    static func compareInspection(_ graph: Graph, logits: String, classes: Int, inspection: [String: FloatArray], x: Tensor,
                                  inputName: String, options: TrainCheckOptions, perturbation scale: Double,
                                  report: inout String) throws -> Bool {
        let parameters = try options.weights.map { try Checker.loadParameters($0, graph: graph) } ?? Weights.seeded(graph, seed: options.seed)
        let values: [String: Tensor]
        let n = x.shape[0]
        let scoreWeights = Tensor(shape: [n, classes], data: (0..<(n * classes)).map(TrainHarness.inspectionWeight))
        func inputGradient(_ parameters: [String: Tensor]) throws -> Tensor {
            do {
                return try Interpreter(graph: graph, parameters: parameters)
                    .inputGradient(inputs: [inputName: x], output: logits, outputWeights: scoreWeights)[inputName]!
            } catch { throw DriverError("error: \(error)") }
        }
        do { values = try Interpreter(graph: graph, parameters: parameters).run([inputName: x]) } catch {
            throw DriverError("error: \(error)")
        }
        let expectedGrad = try inputGradient(parameters)
        var ok = true, compared = 0
        var worstTap: (text: String, passed: Bool, maxAbs: Double)?
        for node in graph.nodes {
            guard let expected = values[node.name] else { continue }
            guard let actual = inspection["tap.\(node.name)"] else {
                report += "forward tap \(node.name): missing FAIL\n"; ok = false; continue
            }
            let line = Checker.compare(name: "forward tap \(node.name)", actual: actual, expected: expected, tolerance: .reduction)
            compared += 1
            if !line.passed { report += line.text + "\n"; ok = false }
            if worstTap == nil || line.maxAbs > worstTap!.maxAbs { worstTap = line }
        }
        report += "forward taps: \(compared) layers compared [\(Tolerance.reduction.name)]"
        if let worstTap { report += "; largest error: \(worstTap.text)" }
        report += "\n"
        if let scores = inspection["scores"], let expected = values[logits] {
            let line = Checker.compare(name: "input_grad scores ('\(logits)')", actual: scores, expected: expected, tolerance: .reduction)
            report += line.text + "\n"
            ok = ok && line.passed
        }
        if let grad = inspection["input_grad"] {
            let name = "input_grad d(weighted scores)/d \(inputName)"
            var line = Checker.compare(name: name, actual: grad, expected: expectedGrad, tolerance: options.tolerance)
            if !line.passed {
                // As for the step's gradients: a ReLU or max-pool decision within rounding of a
                // tie may flip in C; widen by how far the interpreter itself moves.
                var spread = 0.0
                for trial in 1...2 {
                    let moved = try inputGradient(perturbed(parameters, trial: trial, step: -1, scale: scale))
                    spread = max(spread, zip(moved.data, expectedGrad.data).map { abs($0 - $1) }.max() ?? 0)
                }
                line = Checker.compare(name: name, actual: grad, expected: expectedGrad,
                                       tolerance: widened(options.tolerance, spread: spread, expected: expectedGrad))
            }
            report += line.text + "\n"
            ok = ok && line.passed
        } else {
            report += "input_grad: missing FAIL\n"; ok = false
        }
        return ok
    }

    /// How much the sensitivity widens a tolerance: C's rounding flips about as many near-ties
    /// as one perturbation does, so twice the largest change seen leaves room without hiding
    /// errors of a different order.
    static let sensitivityFactor = 2.0

    /// `tolerance` widened by `sensitivityFactor` times the interpreter's own `spread` on
    /// `expected`, absolute on the output's scale (as `Tolerance` reads it).
    static func widened(_ tolerance: Tolerance, spread: Double, expected: Tensor) -> Tolerance {
        var t = tolerance
        t.name += "+sensitivity \(Checker.short(sensitivityFactor * spread))"
        t.absolute += sensitivityFactor * spread / max(1, expected.data.map { abs($0) }.max() ?? 0)
        return t
    }

    /// How far `sensitivity` moves each weight, relative: 2^-20 (float32 rounding compounded
    /// over a few dozen layers, as C's activations carry it), or where a layer of the training
    /// graph runs Winograd, that algorithm's error budget (`PassOptions.winogradErrorBudget`,
    /// 1e-4): such a layer's output may differ from the exact convolution by as much, and a
    /// ReLU or max-pool decision that close to a tie may flip. (VGG-11-BN at batch 16, its 2x2
    /// layers on F(4x4): C's last convolution's gradient differed from the interpreter's by
    /// 0.013 where the interpreter itself moved 0.014 under this perturbation and 1.5e-6 under
    /// 2^-20; at batch 32 the same build passes under 2^-20.)
    public static func perturbation(_ training: Graph) -> Double {
        let winograd = training.nodes.contains { node in
            guard case .conv(let a) = node.op else { return false }
            return a.algorithm == .winograd4x4 || a.algorithm == .winograd2x2
        }
        return winograd ? PassOptions().winogradErrorBudget : 0x1p-20
    }

    /// Every weight multiplied by (1 + e), e uniform in [-scale, scale], seeded by the trial and step.
    static func perturbed(_ parameters: [String: Tensor], trial: Int, step: Int, scale: Double) -> [String: Tensor] {
        var result = parameters
        for (name, t) in parameters {
            let data = t.data.enumerated().map { i, v in
                v * (1 + (SeededInit.uniform(seed: UInt64(trial) &* 7919 &+ UInt64(bitPattern: Int64(step)), name: name, index: i) * 2 - 1) * scale)
            }
            result[name] = Tensor(shape: t.shape, data: data)
        }
        return result
    }

    /// The largest change, per compared tensor (`<p>.grad`, `<p>.momentum`, `<p>`), of the
    /// interpreter's step when every weight is multiplied by (1 + e), e uniform in
    /// [-scale, scale] (`perturbation`), over two seeded perturbations. For most networks this
    /// is far below the tolerance and is never asked for; for deep batch-normalized ones at
    /// tiny batches (DenseNet) a ReLU or max-pool decision within rounding of a tie flips and
    /// moves a weight gradient by |dy * x|, as it may between float32 C and Double.
    static func sensitivity(_ graph: Graph, parameters: [String: Tensor], x: Tensor, inputName: String, labels: [Int],
                            step: Int, options: TrainCheckOptions, velocity: [String: Tensor],
                            reference: TrainingStepResult, scale: Double) throws -> [String: Double] {
        var spread: [String: Double] = [:]
        func note(_ key: String, _ a: Tensor?, _ b: Tensor?) {
            guard let a, let b, a.data.count == b.data.count else { return }
            let d = zip(a.data, b.data).map { abs($0 - $1) }.max() ?? 0
            spread[key] = max(spread[key] ?? 0, d)
        }
        for trial in 1...2 {
            let r: TrainingStepResult
            do {
                r = try Interpreter(graph: graph, parameters: perturbed(parameters, trial: trial, step: step, scale: scale)).trainingStep(
                    inputs: [inputName: x], labels: labels, step: step, seed: options.seed, sgd: options.sgd,
                    velocity: velocity, frozen: options.frozen)
            } catch { throw DriverError("error: \(error)") }
            for (name, g) in r.gradients { note("\(name).grad", g, reference.gradients[name]) }
            for (name, v) in r.updatedVelocity { note("\(name).momentum", v, reference.updatedVelocity[name]) }
            for (name, p) in r.updatedParameters { note(name, p, reference.updatedParameters[name]) }
        }
        return spread
    }
}
