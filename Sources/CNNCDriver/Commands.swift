// The work behind `cnnc model.net -o model.c` and `cnnc run`.

import CNNCBackendC
import CNNCIR
import CNNCInterpreter
import Foundation

public enum CompileCommand {
    /// Writes MODEL.c and MODEL.h (and the runtime beside them); returns the paths written.
    public static func run(_ model: LoadedModel, output: String, batch: Int, prefix: String?, seed: UInt64,
                           writeRuntime: Bool, compiler: CompilerOptions = CompilerOptions(), training: Bool = false,
                           frozen: [String] = []) throws -> [String] {
        let graph = try compiler.optimized(model.graph)
        for name in frozen where model.graph.node(named: name) == nil {
            throw DriverError("error: --freeze names '\(name)', which is not a layer of '\(model.graph.name)'")
        }
        let spec = training ? TrainingSpec(graph: try TrainChecker.trainingGraph(model.graph), frozen: Set(frozen)) : nil
        let prefix = prefix ?? model.graph.name
        guard isValidName(prefix) else { throw DriverError("error: prefix '\(prefix)' is not a C identifier") }
        let headerPath = String(output.dropLast(2)) + ".h"
        let headerName = URL(fileURLWithPath: headerPath).lastPathComponent
        let c = CEmitter.emit(graph, options: COptions(
            prefix: prefix, maxBatch: batch, headerName: headerName,
            sourceName: URL(fileURLWithPath: model.path).lastPathComponent, seed: seed, training: spec))
        try ModelBuilder.write(c.source, to: output)
        try ModelBuilder.write(c.header, to: headerPath)
        var written = [output, headerPath]
        if writeRuntime {
            let dir = URL(fileURLWithPath: output).deletingLastPathComponent().path
            written += try RuntimeSources.write(to: dir).map { "\(dir)/\($0)" }
            written.append("\(dir)/cnnc_runtime.h")
        }
        return written
    }
}

public enum RunCommand {
    /// Runs the model on the inputs and writes the outputs; the batch is the inputs' first dimension.
    public static func run(_ model: LoadedModel, inputs: [String], outputs: [String], weights: String?, seed: UInt64,
                           interpret: Bool, compiler: CompilerOptions = CompilerOptions()) throws {
        let graph = model.graph
        let weightsDirectory = weights == nil && model.weights != nil ? try WorkDirectory(prefix: "cnnc-weights") : nil
        defer { weightsDirectory?.cleanup() }
        let weights = try weights ?? weightsDirectory.flatMap { try model.writeWeights(to: "\($0.path)/weights.safetensors") }
        guard inputs.count == graph.inputs.count else {
            throw DriverError("error: network '\(graph.name)' has \(graph.inputs.count) input(s) (\(graph.inputs.map(\.name).joined(separator: ", "))), got \(inputs.count) --input")
        }
        guard outputs.count == graph.outputs.count else {
            throw DriverError("error: network '\(graph.name)' has \(graph.outputs.count) output(s) (\(graph.outputs.joined(separator: ", "))), got \(outputs.count) --output")
        }
        var arrays: [FloatArray] = []
        var batch = 0
        for (node, path) in zip(graph.inputs, inputs) {
            let a = try NumpyFile.read(path)
            let expected = node.shape.dims
            guard a.shape.count == expected.count + 1, Array(a.shape.dropFirst()) == expected, a.shape[0] >= 1 else {
                throw DriverError("error: input '\(node.name)' from '\(path)' has shape \(a.shape), expected [N, \(expected.map(String.init).joined(separator: ", "))]")
            }
            if batch != 0 && a.shape[0] != batch {
                throw DriverError("error: inputs disagree on the batch: \(batch) and \(a.shape[0]) ('\(path)')")
            }
            batch = a.shape[0]
            arrays.append(a)
        }
        if interpret {
            let parameters = try weights.map { try Checker.loadParameters($0, graph: graph) } ?? Weights.seeded(graph, seed: seed)
            let interpreter: Interpreter
            do { interpreter = try Interpreter(graph: graph, parameters: parameters) } catch { throw DriverError("error: \(error)") }
            var feed: [String: Tensor] = [:]
            for (node, a) in zip(graph.inputs, arrays) { feed[node.name] = Tensor(shape: a.shape, data: a.data.map(Double.init)) }
            let results: [Tensor]
            do { results = try interpreter.outputs(feed) } catch { throw DriverError("error: \(error)") }
            for (t, path) in zip(results, outputs) {
                try NumpyFile.write(FloatArray(shape: t.shape, data: t.data.map { Float($0) }), to: path)
            }
            return
        }
        let dir = try WorkDirectory(prefix: "cnnc-run")
        defer { dir.cleanup() }
        let exe = try ModelBuilder.buildHarness(try compiler.optimized(graph), batch: batch, seed: seed,
                                                sourceName: model.path, in: dir.path, toolchain: Toolchain())
        let absolute = { (p: String) in URL(fileURLWithPath: p).path }
        let result = try Shell.run([exe, weights.map(absolute) ?? "seed=\(seed)", "\(batch)"]
                                   + inputs.map(absolute) + outputs.map(absolute), in: dir.path)
        guard result.status == 0 else {
            throw DriverError(result.output.isEmpty ? "error: generated code failed (exit \(result.status))" : result.output)
        }
    }
}
