// `cnnc profile`: builds the generated code with every layer's kernel call timed, runs the
// forward pass repeatedly and prints, per layer, the median time, GFLOP/s, the share of the
// machine's measured FMA peak and the algorithm the passes chose; then the median whole pass
// beside the sum of the layers (the difference is what runs between kernels).

import CNNCBackendC
import CNNCIR
import Foundation

public enum ProfileCommand {
    /// The profiling program: the benchmark's input fill, `warmup` untimed passes, then per
    /// pass the layer times and the whole pass, printed as `layer <name> <seconds...>` and
    /// `total <seconds...>` lines.
    static func source(_ graph: Graph, prefix p: String, header: String, iterations: Int, warmup: Int) -> String {
        let P = CEmitter.macroName(p)
        var w = CWriter()
        w.comment("cnnc profile for '\(graph.name)': \(iterations) timed forward passes at \(P)_MAX_BATCH")
        w.line("#include \"\(header)\"")
        w.line("#include <stddef.h>")
        w.line("#include <stdio.h>")
        w.line("#include <stdlib.h>")
        w.line("#include <string.h>")
        w.line()
        w.line("extern const int \(p)_profile_count;")
        w.line("extern const char *const \(p)_profile_layers[];")
        w.line("extern double \(p)_profile_seconds[];")
        w.line()
        w.block("int main(int argc, char **argv)") { w in
            BenchCommand.setUp(graph, prefix: p, &w)
            w.line("const int L = \(p)_profile_count;")
            w.line("double *layer = malloc(sizeof(double) * (size_t)(L > 0 ? L : 1) * \(iterations)), total[\(iterations)];")
            w.line("if (!layer) { fprintf(stderr, \"error: out of memory\\n\"); return 1; }")
            w.block("for (int i = 0; i < \(warmup); i++)") { w in
                w.line("if (\(p)_forward_v(&ctx, inputs, outputs, \(P)_MAX_BATCH) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
            }
            w.block("for (int i = 0; i < \(iterations); i++)") { w in
                w.line("memset(\(p)_profile_seconds, 0, sizeof(double) * (size_t)L);")
                w.line("const double t0 = cnnc_now_seconds();")
                w.line("\(p)_forward_v(&ctx, inputs, outputs, \(P)_MAX_BATCH);")
                w.line("total[i] = cnnc_now_seconds() - t0;")
                w.line("for (int l = 0; l < L; l++) layer[(size_t)l * \(iterations) + i] = \(p)_profile_seconds[l];")
            }
            w.block("for (int l = 0; l < L; l++)") { w in
                w.line("printf(\"layer %s\", \(p)_profile_layers[l]);")
                w.line("for (int i = 0; i < \(iterations); i++) printf(\" %.9f\", layer[(size_t)l * \(iterations) + i]);")
                w.line("printf(\"\\n\");")
            }
            w.line("printf(\"total\");")
            w.line("for (int i = 0; i < \(iterations); i++) printf(\" %.9f\", total[i]);")
            w.line("printf(\"\\n\");")
            w.line("free(layer);")
            for i in graph.inputs.indices { w.line("free(in\(i));") }
            for i in graph.outputs.indices { w.line("free(outputs[\(i)]);") }
            w.line("\(p)_destroy(&ctx);")
            w.line("return 0;")
        }
        return w.text
    }

    /// The training profile's program: `warmup` untimed SGD steps on the benchmark's input fill
    /// (labels cycling through the classes), then per step the forward and backward seconds of
    /// every node and the whole step: `forward NAME ...`, `backward NAME ...`, `total ...` lines.
    static func trainingSource(_ graph: Graph, prefix p: String, header: String, iterations: Int, warmup: Int) -> String {
        let P = CEmitter.macroName(p)
        var w = CWriter()
        w.comment("cnnc profile --train for '\(graph.name)': \(iterations) timed SGD steps at \(P)_MAX_BATCH")
        w.line("#include \"\(header)\"")
        w.line("#include <stddef.h>")
        w.line("#include <stdio.h>")
        w.line("#include <stdlib.h>")
        w.line("#include <string.h>")
        w.line()
        w.line("extern const int \(p)_train_profile_count;")
        w.line("extern const char *const \(p)_train_profile_layers[];")
        w.line("extern double \(p)_train_profile_forward[], \(p)_train_profile_backward[];")
        w.line()
        w.block("int main(int argc, char **argv)") { w in
            BenchCommand.setUp(graph, prefix: p, &w)
            w.line("(void)inputs;")
            w.line("\(p)_trainer t;")
            w.line("if (\(p)_trainer_create(&t, 1) != CNNC_OK) { fprintf(stderr, \"error: out of memory\\n\"); return 1; }")
            w.line("int32_t labels[\(P)_MAX_BATCH];")
            w.line("for (int b = 0; b < \(P)_MAX_BATCH; b++) labels[b] = b % \(P)_NUM_CLASSES;")
            w.line("const \(p)_sgd sgd = {0.01f, 0.9f, 5e-4f, 0};")
            let inputs = graph.inputs.indices.map { "in\($0)" }.joined(separator: ", ")
            let step = "\(p)_train_step(&ctx, &t, \(inputs), labels, \(P)_MAX_BATCH, &sgd, NULL, NULL)"
            w.line("const int L = \(p)_train_profile_count;")
            w.line("double *fwd = malloc(sizeof(double) * (size_t)(L > 0 ? L : 1) * \(iterations)), *bwd = malloc(sizeof(double) * (size_t)(L > 0 ? L : 1) * \(iterations)), total[\(iterations)];")
            w.line("if (!fwd || !bwd) { fprintf(stderr, \"error: out of memory\\n\"); return 1; }")
            w.block("for (int i = 0; i < \(warmup); i++)") { w in
                w.line("if (\(step) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
            }
            w.block("for (int i = 0; i < \(iterations); i++)") { w in
                w.line("memset(\(p)_train_profile_forward, 0, sizeof(double) * (size_t)L);")
                w.line("memset(\(p)_train_profile_backward, 0, sizeof(double) * (size_t)L);")
                w.line("const double t0 = cnnc_now_seconds();")
                w.line("if (\(step) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
                w.line("total[i] = cnnc_now_seconds() - t0;")
                w.block("for (int l = 0; l < L; l++)") { w in
                    w.line("fwd[(size_t)l * \(iterations) + i] = \(p)_train_profile_forward[l];")
                    w.line("bwd[(size_t)l * \(iterations) + i] = \(p)_train_profile_backward[l];")
                }
            }
            w.block("for (int l = 0; l < L; l++)") { w in
                w.line("printf(\"forward %s\", \(p)_train_profile_layers[l]);")
                w.line("for (int i = 0; i < \(iterations); i++) printf(\" %.9f\", fwd[(size_t)l * \(iterations) + i]);")
                w.line("printf(\"\\nbackward %s\", \(p)_train_profile_layers[l]);")
                w.line("for (int i = 0; i < \(iterations); i++) printf(\" %.9f\", bwd[(size_t)l * \(iterations) + i]);")
                w.line("printf(\"\\n\");")
            }
            w.line("printf(\"total\");")
            w.line("for (int i = 0; i < \(iterations); i++) printf(\" %.9f\", total[i]);")
            w.line("printf(\"\\n\");")
            w.line("free(fwd);")
            w.line("free(bwd);")
            for i in graph.inputs.indices { w.line("free(in\(i));") }
            for i in graph.outputs.indices { w.line("free(outputs[\(i)]);") }
            w.line("\(p)_trainer_destroy(&t);")
            w.line("\(p)_destroy(&ctx);")
            w.line("return 0;")
        }
        return w.text
    }

    /// Builds and runs the training profile; returns its table: per node of the training graph
    /// the median forward and backward ms, the share of the step, GFLOP/s and % of peak of both
    /// (a convolution's or dense layer's backward counts its weight gradient and, where its
    /// input needs one, its input gradient: one forward's FLOPs each).
    public static func runTraining(_ model: LoadedModel, batch: Int, iterations: Int, warmup: Int = 2,
                                   compiler: CompilerOptions, threads: Int?) throws -> String {
        let graph = try compiler.optimized(model.graph, batch: batch)
        let training = try TrainChecker.trainingGraph(model.graph, batch: batch)
        let dir = try WorkDirectory(prefix: "cnnc-profile-train")
        defer { dir.cleanup() }
        let prefix = graph.name
        var options = COptions(prefix: prefix, maxBatch: batch, headerName: "\(prefix).h", sourceName: model.path,
                               training: TrainingSpec(graph: training))
        options.profile = true
        let c = CEmitter.emit(graph, options: options)
        try ModelBuilder.write(c.header, to: "\(dir.path)/\(prefix).h")
        try ModelBuilder.write(c.source, to: "\(dir.path)/\(prefix).c")
        let runtime = try RuntimeSources.write(to: dir.path)
        try ModelBuilder.write(trainingSource(graph, prefix: prefix, header: "\(prefix).h", iterations: iterations, warmup: warmup),
                               to: "\(dir.path)/profile.c")
        let toolchain = Toolchain()
        try toolchain.build(sources: ["\(prefix).c", "profile.c"] + runtime, output: "\(dir.path)/profile", in: dir.path)
        let weightsFile = try model.writeWeights(to: "\(dir.path)/weights.safetensors")
        let environment = threads.map { ["OMP_NUM_THREADS": "\($0)"] } ?? [:]
        let r = try Shell.run(["\(dir.path)/profile"] + (weightsFile.map { [$0] } ?? []), in: dir.path,
                              environment: environment)
        guard r.status == 0 else { throw DriverError("error: profile run failed:\n\(r.output)") }
        var forward: [String: Double] = [:], backward: [String: Double] = [:], order: [String] = []
        var total = 0.0
        for line in r.output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let kind = fields.first else { continue }
            if (kind == "forward" || kind == "backward"), fields.count >= 3 {
                let times = fields.dropFirst(2).compactMap { Double($0) }
                guard !times.isEmpty else { continue }
                let name = String(fields[1])
                if kind == "forward" { forward[name] = median(times); order.append(name) } else { backward[name] = median(times) }
            } else if kind == "total", fields.count >= 2 {
                let times = fields.dropFirst().compactMap { Double($0) }
                if !times.isEmpty { total = median(times) }
            }
        }
        let usedThreads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        let machine = try? MachinePeak.measured(toolchain: Toolchain())
        let peak = machine.map { $0.perCore * Double(usedThreads) }
        let index = training.indexByName()
        let plan = GradientNeeds(training)
        var rows: [[String]] = [["layer", "kernel", "forward ms", "backward ms", "% of step", "GFLOP/s", "% of peak"]]
        var sum = 0.0, flops = 0.0
        for name in order {
            guard let i = index[name] else { continue }
            let node = training.nodes[i]
            let f = forward[name] ?? 0, b = backward[name] ?? 0
            sum += f + b
            let shapes = node.inputs.compactMap { index[$0].map { training.nodes[$0].shape } }
            let once = 2.0 * Double(training.macs(of: node, inputShapes: shapes)) * Double(batch)
            var kernel = node.op.keyword?.rawValue ?? "input"
            var work = once
            switch node.op {
            case .conv(let a):
                kernel = "conv " + a.unoptimizedAlgorithm(inputChannels: shapes.first?.dims.first ?? 0).rawValue
                work += once * (plan.inputNeedsGrad(node) ? 2 : 1)
            case .dense:
                work += once * (plan.inputNeedsGrad(node) ? 2 : 1)
            default:
                work = 0
            }
            flops += work
            let seconds = f + b
            let gflops = work > 0 && seconds > 0 ? work / seconds / 1e9 : nil
            rows.append([name, kernel, String(format: "%.4f", f * 1e3), String(format: "%.4f", b * 1e3),
                         String(format: "%.1f", total > 0 ? 100 * seconds / total : 0),
                         gflops.map { String(format: "%.1f", $0) } ?? "-",
                         gflops.flatMap { g in peak.map { String(format: "%.0f", 100 * g / $0) } } ?? "-"])
        }
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        func format(_ row: [String]) -> String {
            row.enumerated().map { c, text in
                c < 2 ? text.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - text.count) + text
            }.joined(separator: "  ")
        }
        var out = "training profile of '\(graph.name)', batch \(batch), \(usedThreads) thread\(usedThreads == 1 ? "" : "s"), median of \(iterations) SGD steps\n"
        out += format(rows[0]) + "\n" + String(repeating: "-", count: format(rows[0]).count) + "\n"
        for row in rows.dropFirst() { out += format(row) + "\n" }
        out += String(format: "sum of layers %.4f ms; whole step %.4f ms (%.4f ms between kernels: zeroing, loss, SGD update, packing)\n",
                      sum * 1e3, total * 1e3, (total - sum) * 1e3)
        if total > 0 {
            out += String(format: "whole step: %.1f GFLOP/s, %.1f images/s", flops / total / 1e9, Double(batch) / total)
            if let peak { out += String(format: ", %.0f%% of the peak", 100 * flops / total / 1e9 / peak) }
            out += "\n"
        }
        if let p = machine {
            out += String(format: "peak: %.1f GFLOP/s per core x %d thread%@ (%@, cnnc doctor%@)\n", p.perCore, usedThreads,
                          usedThreads == 1 ? "" : "s", p.vector, p.fromCache ? ", cached" : "")
        }
        return out
    }

    /// Which nodes' inputs need a gradient in a training step: those downstream of a parameter.
    struct GradientNeeds {
        var needs: Set<String> = []
        init(_ graph: Graph) {
            let trainable = Set(graph.parameters().filter(\.trainable).map(\.node))
            for node in graph.nodes {
                if case .input = node.op { continue }
                if trainable.contains(node.name) || node.inputs.contains(where: needs.contains) { needs.insert(node.name) }
            }
        }
        func inputNeedsGrad(_ node: Node) -> Bool { node.inputs.contains(where: needs.contains) }
    }

    /// The median of a non-empty list.
    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }

    /// Builds and runs the profile; returns the table.
    public static func run(_ model: LoadedModel, batch: Int, iterations: Int, warmup: Int = 3, weights: String? = nil,
                           compiler: CompilerOptions, threads: Int?) throws -> String {
        try requireRegularFiles([weights])
        let graph = try compiler.optimized(model.graph, batch: batch)
        let dir = try WorkDirectory(prefix: "cnnc-profile")
        defer { dir.cleanup() }
        let prefix = graph.name
        var options = COptions(prefix: prefix, maxBatch: batch, headerName: "\(prefix).h", sourceName: model.path)
        options.profile = true
        let c = CEmitter.emit(graph, options: options)
        try ModelBuilder.write(c.header, to: "\(dir.path)/\(prefix).h")
        try ModelBuilder.write(c.source, to: "\(dir.path)/\(prefix).c")
        let runtime = try RuntimeSources.write(to: dir.path)
        try ModelBuilder.write(source(graph, prefix: prefix, header: "\(prefix).h", iterations: iterations, warmup: warmup),
                               to: "\(dir.path)/profile.c")
        var toolchain = Toolchain()
        toolchain.flags = toolchain.flags.map { $0 == "-O2" ? "-O3" : $0 }
        try toolchain.build(sources: ["\(prefix).c", "profile.c"] + runtime, output: "\(dir.path)/profile", in: dir.path)
        let weightsFile = try weights.map { URL(fileURLWithPath: $0).path }
            ?? model.writeWeights(to: "\(dir.path)/weights.safetensors")
        let environment = threads.map { ["OMP_NUM_THREADS": "\($0)"] } ?? [:]
        let r = try Shell.run(["\(dir.path)/profile"] + (weightsFile.map { [$0] } ?? []), in: dir.path,
                              environment: environment)
        guard r.status == 0 else { throw DriverError("error: profile run failed:\n\(r.output)") }

        // Parse the program's lines: `layer NAME t1 t2 ...` and `total t1 t2 ...`.
        var layerTimes: [(name: String, seconds: Double)] = []
        var total = 0.0
        for line in r.output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.first == "layer", fields.count >= 3 {
                let times = fields.dropFirst(2).compactMap { Double($0) }
                if !times.isEmpty { layerTimes.append((String(fields[1]), median(times))) }
            } else if fields.first == "total", fields.count >= 2 {
                let times = fields.dropFirst().compactMap { Double($0) }
                if !times.isEmpty { total = median(times) }
            }
        }
        let usedThreads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        return render(graph, layerTimes: layerTimes, total: total, batch: batch, threads: usedThreads,
                      iterations: iterations, machine: try? MachinePeak.measured(toolchain: Toolchain()))
    }

    /// The table: layer, op and kernel, median ms, share of the pass, GFLOP/s, % of peak.
    static func render(_ graph: Graph, layerTimes: [(name: String, seconds: Double)], total: Double, batch: Int,
                       threads: Int, iterations: Int, machine: MachinePeak?) -> String {
        let index = graph.indexByName()
        let peak = machine.map { $0.perCore * Double(threads) }
        var rows: [[String]] = [["layer", "kernel", "median ms", "% of pass", "GFLOP/s", "% of peak"]]
        var sum = 0.0, flops = 0.0
        for (name, seconds) in layerTimes {
            sum += seconds
            guard let i = index[name] else { continue }
            let node = graph.nodes[i]
            let shapes = node.inputs.compactMap { index[$0].map { graph.nodes[$0].shape } }
            let layerFlops = 2.0 * Double(graph.macs(of: node, inputShapes: shapes)) * Double(batch)
            flops += layerFlops
            var kernel = node.op.keyword?.rawValue ?? "input"
            if case .conv(let a) = node.op {
                kernel = "conv " + a.unoptimizedAlgorithm(inputChannels: shapes.first?.dims.first ?? 0).rawValue
            }
            let gflops = layerFlops > 0 && seconds > 0 ? layerFlops / seconds / 1e9 : nil
            rows.append([name, kernel, String(format: "%.4f", seconds * 1e3),
                         String(format: "%.1f", total > 0 ? 100 * seconds / total : 0),
                         gflops.map { String(format: "%.1f", $0) } ?? "-",
                         gflops.flatMap { g in peak.map { String(format: "%.0f", 100 * g / $0) } } ?? "-"])
        }
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        func format(_ row: [String]) -> String {
            row.enumerated().map { c, text in
                c < 2 ? text.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - text.count) + text
            }.joined(separator: "  ")
        }
        var out = "profile of '\(graph.name)', batch \(batch), \(threads) thread\(threads == 1 ? "" : "s"), median of \(iterations) passes\n"
        out += format(rows[0]) + "\n" + String(repeating: "-", count: format(rows[0]).count) + "\n"
        for row in rows.dropFirst() { out += format(row) + "\n" }
        out += String(format: "sum of layers %.4f ms; whole pass %.4f ms (%.4f ms between kernels)\n", sum * 1e3, total * 1e3,
                      (total - sum) * 1e3)
        if total > 0 {
            out += String(format: "whole pass: %.1f GFLOP/s", flops / total / 1e9)
            if let peak { out += String(format: ", %.0f%% of the peak", 100 * flops / total / 1e9 / peak) }
            out += "\n"
        }
        if let p = machine {
            out += String(format: "peak: %.1f GFLOP/s per core x %d thread%@ (%@, cnnc doctor%@)\n", p.perCore, threads,
                          threads == 1 ? "" : "s", p.vector, p.fromCache ? ", cached" : "")
        } else {
            out += "peak: not measured (cnnc doctor says why)\n"
        }
        return out
    }
}
