// `cnnc bench`: builds the generated code with -O3 and times the forward pass (median of
// repeated runs after a warm-up), for `make bench` and for comparing pipelines.

import CNNCBackendC
import CNNCIR
import Foundation

public enum BenchCommand {
    /// How the benchmark reports: a sentence, or one JSON object on one line for scripts
    /// (`model`, `batch`, `threads`, `iterations`, `warmup`, `median_ms`, `min_ms`,
    /// `ms_per_image`, `images_per_s`).
    public enum Report {
        case text
        case json
    }

    /// The benchmark program: fills every input with a fixed pattern, loads the weights file
    /// named by its first argument (if any; else the seeded initialization of `P_create`),
    /// runs `warmup` forward passes, then times `iterations` and prints their median.
    ///
    /// The fill is `x[j] = ((j mod 1000) * 7919 mod 1000) / 1000`, in `size_t`: every product
    /// stays below 7,919,000 whatever the batch and input size (`j * 7919` in `int` overflowed
    /// past 271,000 elements, e.g. batch 2 of 3x224x224). `bench/inference.py` builds the same
    /// input for ONNX Runtime.
    public static func source(_ graph: Graph, prefix p: String, header: String, iterations: Int, warmup: Int = 3,
                              report: Report = .text) -> String {
        let P = CEmitter.macroName(p)
        var w = CWriter()
        w.comment("cnnc benchmark for '\(graph.name)': median time of \(iterations) forward passes at \(P)_MAX_BATCH")
        w.line("#include \"\(header)\"")
        w.line("#include <stddef.h>")
        w.line("#include <stdio.h>")
        w.line("#include <stdlib.h>")
        w.line("#ifdef _OPENMP")
        w.line("#include <omp.h>")
        w.line("#endif")
        w.line()
        w.line("static int compare(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }")
        w.line()
        w.block("int main(int argc, char **argv)") { w in
            setUp(graph, prefix: p, &w)
            w.line("double times[\(iterations)];")
            w.block("for (int i = 0; i < \(warmup); i++)") { w in
                w.line("if (\(p)_forward_v(&ctx, inputs, outputs, \(P)_MAX_BATCH) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
            }
            w.block("for (int i = 0; i < \(iterations); i++)") { w in
                w.line("const double t0 = cnnc_now_seconds();")
                w.line("\(p)_forward_v(&ctx, inputs, outputs, \(P)_MAX_BATCH);")
                w.line("times[i] = cnnc_now_seconds() - t0;")
            }
            w.line("qsort(times, \(iterations), sizeof(double), compare);")
            let median = iterations % 2 == 1 ? "times[\(iterations / 2)]"
                : "0.5 * (times[\(iterations / 2 - 1)] + times[\(iterations / 2)])"
            w.line("const double median = \(median);")
            w.line("#ifdef _OPENMP")
            w.line("const int threads = omp_get_max_threads();")
            w.line("#else")
            w.line("const int threads = 1;")
            w.line("#endif")
            switch report {
            case .text:
                w.line("printf(\"%s batch %d: median %.3f ms per batch, %.4f ms per image, %.0f images/s (%d threads)\\n\", \"\(graph.name)\", \(P)_MAX_BATCH, median * 1e3, median * 1e3 / \(P)_MAX_BATCH, \(P)_MAX_BATCH / median, threads);")
            case .json:
                w.line("printf(\"{\\\"model\\\": \\\"%s\\\", \\\"batch\\\": %d, \\\"threads\\\": %d, \\\"iterations\\\": %d, \\\"warmup\\\": %d, \\\"median_ms\\\": %.6f, \\\"min_ms\\\": %.6f, \\\"ms_per_image\\\": %.6f, \\\"images_per_s\\\": %.3f}\\n\", \"\(jsonName(graph.name))\", \(P)_MAX_BATCH, threads, \(iterations), \(warmup), median * 1e3, times[0] * 1e3, median * 1e3 / \(P)_MAX_BATCH, \(P)_MAX_BATCH / median);")
            }
            for i in graph.inputs.indices { w.line("free(in\(i));") }
            for i in graph.outputs.indices { w.line("free(outputs[\(i)]);") }
            w.line("\(p)_destroy(&ctx);")
            w.line("return 0;")
        }
        return w.text
    }

    /// The start of `main` in the benchmark and profile programs: `ctx` created, the weights
    /// file named by the first argument loaded (if any), `inputs` filled with the fixed pattern
    /// and `outputs` allocated, at MAX_BATCH.
    static func setUp(_ graph: Graph, prefix p: String, _ w: inout CWriter) {
        let P = CEmitter.macroName(p)
        w.line("\(p)_context ctx;")
        w.line("if (\(p)_create(&ctx) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
        w.line("if (argc > 1 && \(p)_load_weights(&ctx, argv[1]) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
        w.line("const float *inputs[\(P)_NUM_INPUTS];")
        w.line("float *outputs[\(P)_NUM_OUTPUTS];")
        for (i, node) in graph.inputs.enumerated() {
            w.line("const size_t count\(i) = (size_t)\(P)_MAX_BATCH * \(node.shape.count);")
            w.line("float *in\(i) = malloc(sizeof(float) * count\(i));")
            w.line("if (!in\(i)) { fprintf(stderr, \"error: out of memory\\n\"); return 1; }")
            w.comment("the same pattern at any size: (j mod 1000) * 7919 < 7,919,000, no overflow")
            w.line("for (size_t j = 0; j < count\(i); j++) in\(i)[j] = (float)((j % 1000) * 7919 % 1000) / 1000.0f;")
            w.line("inputs[\(i)] = in\(i);")
        }
        for (i, name) in graph.outputs.enumerated() {
            w.line("outputs[\(i)] = malloc(sizeof(float) * \(P)_MAX_BATCH * \(graph.node(named: name)!.shape.count));")
            w.line("if (!outputs[\(i)]) { fprintf(stderr, \"error: out of memory\\n\"); return 1; }")
        }
    }

    /// The network's name as it may stand inside a JSON string inside a C string literal:
    /// letters, digits and `_ - .` kept, anything else `_`.
    static func jsonName(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) ? $0 : "_" })
    }

    /// Builds and runs the benchmark; returns its output line. The weights are `weights` (a
    /// safetensors file), else the model's own (an imported ONNX model's initializers), else
    /// the seeded initialization.
    public static func run(_ model: LoadedModel, batch: Int, iterations: Int, warmup: Int = 3, weights: String? = nil,
                           report: Report = .text, compiler: CompilerOptions, threads: Int?) throws -> String {
        try requireRegularFiles([weights])
        let graph = try compiler.optimized(model.graph, batch: batch)
        let dir = try WorkDirectory(prefix: "cnnc-bench")
        defer { dir.cleanup() }
        let prefix = graph.name
        let c = CEmitter.emit(graph, options: COptions(prefix: prefix, maxBatch: batch, headerName: "\(prefix).h",
                                                       sourceName: model.path))
        try ModelBuilder.write(c.header, to: "\(dir.path)/\(prefix).h")
        try ModelBuilder.write(c.source, to: "\(dir.path)/\(prefix).c")
        let runtime = try RuntimeSources.write(to: dir.path)
        try ModelBuilder.write(source(graph, prefix: prefix, header: "\(prefix).h", iterations: iterations, warmup: warmup,
                                      report: report),
                               to: "\(dir.path)/bench.c")
        var toolchain = Toolchain()
        toolchain.flags = toolchain.flags.map { $0 == "-O2" ? "-O3" : $0 }
        try toolchain.build(sources: ["\(prefix).c", "bench.c"] + runtime, output: "\(dir.path)/bench", in: dir.path)
        let weightsFile = try weights.map { URL(fileURLWithPath: $0).path }
            ?? model.writeWeights(to: "\(dir.path)/weights.safetensors")
        let r = try Shell.run(["\(dir.path)/bench"] + (weightsFile.map { [$0] } ?? []), in: dir.path,
                              environment: threads.map { ["OMP_NUM_THREADS": "\($0)"] } ?? [:])
        guard r.status == 0 else { throw DriverError("error: benchmark failed:\n\(r.output)") }
        return r.output
    }
}
