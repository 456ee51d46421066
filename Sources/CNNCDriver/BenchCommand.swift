// `cnnc bench`: builds the generated code with -O3 and times the forward pass (median of
// repeated runs after a warm-up), for `make bench` and for comparing pipelines.

import CNNCBackendC
import CNNCIR
import Foundation

public enum BenchCommand {
    static func source(_ graph: Graph, prefix p: String, header: String, iterations: Int) -> String {
        let P = CEmitter.macroName(p)
        var w = CWriter()
        w.comment("cnnc benchmark for '\(graph.name)': median time of \(iterations) forward passes at \(P)_MAX_BATCH")
        w.line("#include \"\(header)\"")
        w.line("#include <stdio.h>")
        w.line("#include <stdlib.h>")
        w.line()
        w.line("static int compare(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }")
        w.line()
        w.block("int main(void)") { w in
            w.line("\(p)_context ctx;")
            w.line("if (\(p)_create(&ctx) != CNNC_OK) { fprintf(stderr, \"error: %s\\n\", \(p)_last_error(&ctx)); return 1; }")
            w.line("const float *inputs[\(P)_NUM_INPUTS];")
            w.line("float *outputs[\(P)_NUM_OUTPUTS];")
            for (i, node) in graph.inputs.enumerated() {
                w.line("float *in\(i) = malloc(sizeof(float) * \(P)_MAX_BATCH * \(node.shape.count));")
                w.line("for (int j = 0; j < \(P)_MAX_BATCH * \(node.shape.count); j++) in\(i)[j] = (float)((j * 7919) % 1000) / 1000.0f;")
                w.line("inputs[\(i)] = in\(i);")
            }
            for (i, name) in graph.outputs.enumerated() {
                w.line("outputs[\(i)] = malloc(sizeof(float) * \(P)_MAX_BATCH * \(graph.node(named: name)!.shape.count));")
            }
            w.line("double times[\(iterations)];")
            w.line("for (int i = 0; i < 3; i++) \(p)_forward_v(&ctx, inputs, outputs, \(P)_MAX_BATCH);")
            w.block("for (int i = 0; i < \(iterations); i++)") { w in
                w.line("const double t0 = cnnc_now_seconds();")
                w.line("\(p)_forward_v(&ctx, inputs, outputs, \(P)_MAX_BATCH);")
                w.line("times[i] = cnnc_now_seconds() - t0;")
            }
            w.line("qsort(times, \(iterations), sizeof(double), compare);")
            w.line("const double median = times[\(iterations / 2)];")
            w.line("printf(\"%s batch %d: median %.3f ms per batch, %.4f ms per image, %.0f images/s\\n\", \"\(graph.name)\", \(P)_MAX_BATCH, median * 1e3, median * 1e3 / \(P)_MAX_BATCH, \(P)_MAX_BATCH / median);")
            w.line("\(p)_destroy(&ctx);")
            w.line("return 0;")
        }
        return w.text
    }

    /// Builds and runs the benchmark; returns its output line.
    public static func run(_ model: LoadedModel, batch: Int, iterations: Int, compiler: CompilerOptions,
                           threads: Int?) throws -> String {
        let graph = try compiler.optimized(model.graph, batch: batch)
        let dir = try WorkDirectory(prefix: "cnnc-bench")
        defer { dir.cleanup() }
        let prefix = graph.name
        let c = CEmitter.emit(graph, options: COptions(prefix: prefix, maxBatch: batch, headerName: "\(prefix).h",
                                                       sourceName: model.path))
        try ModelBuilder.write(c.header, to: "\(dir.path)/\(prefix).h")
        try ModelBuilder.write(c.source, to: "\(dir.path)/\(prefix).c")
        let runtime = try RuntimeSources.write(to: dir.path)
        try ModelBuilder.write(source(graph, prefix: prefix, header: "\(prefix).h", iterations: iterations),
                               to: "\(dir.path)/bench.c")
        var toolchain = Toolchain()
        toolchain.flags = toolchain.flags.map { $0 == "-O2" ? "-O3" : $0 }
        try toolchain.build(sources: ["\(prefix).c", "bench.c"] + runtime, output: "\(dir.path)/bench", in: dir.path)
        let r = try Shell.run(["\(dir.path)/bench"], in: dir.path,
                              environment: threads.map { ["OMP_NUM_THREADS": "\($0)"] } ?? [:])
        guard r.status == 0 else { throw DriverError("error: benchmark failed:\n\(r.output)") }
        return r.output
    }
}
