// `cnnc check`: build the generated C with the real compiler and OpenMP, run it on seeded
// inputs at each thread count, and compare every output with the reference interpreter.

import CNNCBackendC
import CNNCIR
import CNNCInterpreter
import Foundation

/// Writes generated code, the runtime and the harness into a folder and builds the harness.
public enum ModelBuilder {
    /// Returns the harness executable's path.
    public static func buildHarness(_ graph: Graph, batch: Int, seed: UInt64, sourceName: String,
                                    in directory: String, toolchain: Toolchain) throws -> String {
        let prefix = graph.name
        let model = CEmitter.emit(graph, options: COptions(prefix: prefix, maxBatch: batch, headerName: "\(prefix).h",
                                                           sourceName: sourceName, seed: seed))
        try write(model.header, to: "\(directory)/\(prefix).h")
        try write(model.source, to: "\(directory)/\(prefix).c")
        let runtime = try RuntimeSources.write(to: directory)
        try write(Harness.source(graph, prefix: prefix, header: "\(prefix).h"), to: "\(directory)/harness.c")
        let exe = "\(directory)/harness"
        try toolchain.build(sources: ["\(prefix).c", "harness.c"] + runtime, output: exe, in: directory)
        return exe
    }

    static func write(_ text: String, to path: String) throws {
        try OutputFile.write(text, to: path)
    }
}

/// A fresh temporary folder, removed on `cleanup()` unless kept.
public struct WorkDirectory {
    public let path: String
    public init(prefix: String) throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

public struct CheckOptions {
    public var batch = 2
    public var seed: UInt64 = 1
    public var weights: String?
    public var threads: [Int] = [1, 2]
    public var keep = false
    public var sanitize = false
    public var tolerance = Tolerance.reduction
    public var compiler = CompilerOptions()
    public init() {}
}

public enum Checker {
    /// Runs the check and returns the report text and whether everything passed.
    public static func check(_ model: LoadedModel, options: CheckOptions,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (String, Bool) {
        let graph = model.graph
        let dir = try WorkDirectory(prefix: "cnnc-check")
        defer { if !options.keep { dir.cleanup() } }
        var report = "check \(graph.name) (\(model.path)): batch \(options.batch), "
            + (options.compiler.optimize ? "" : "-O0, ") + (options.compiler.winograd ? "" : "no winograd, ")
            + (options.weights.map { "weights \($0)" } ?? (model.weights != nil ? "the model's weights"
                : "seeded weights (seed \(options.seed))")) + "\n"
        var options = options
        options.weights = try options.weights ?? model.writeWeights(to: "\(dir.path)/model_weights.safetensors")

        // Reference: the interpreter on seeded inputs.
        let parameters: [String: Tensor]
        if let path = options.weights {
            parameters = try loadParameters(path, graph: graph)
        } else {
            parameters = Weights.seeded(graph, seed: options.seed)
        }
        var inputs: [String: Tensor] = [:]
        var inputFiles: [String] = []
        for node in graph.inputs {
            let t = SeededData.input(name: node.name, shape: node.shape.batched(options.batch), seed: options.seed)
            inputs[node.name] = t
            let file = "\(dir.path)/in_\(node.name).npy"
            try NumpyFile.write(FloatArray(shape: t.shape, data: t.data.map { Float($0) }), to: file)
            inputFiles.append(file)
        }
        let interpreter: Interpreter
        do { interpreter = try Interpreter(graph: graph, parameters: parameters) } catch {
            throw DriverError("error: \(error)")
        }
        let expected = try interpreter.outputs(inputs)

        // Generated code, at each thread count.
        var extra: [String] = []
        if options.sanitize { extra = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"] }
        let toolchain = Toolchain(environment: environment, extraFlags: extra)
        let optimized = try options.compiler.optimized(graph, batch: options.batch)
        let exe = try ModelBuilder.buildHarness(optimized, batch: options.batch, seed: options.seed,
                                                sourceName: model.path, in: dir.path, toolchain: toolchain)
        let weightsArgument = options.weights.map { URL(fileURLWithPath: $0).path } ?? "seed=\(options.seed)"
        var runs: [(threads: Int, outputs: [FloatArray])] = []
        for threads in options.threads {
            let outputFiles = graph.outputs.map { "\(dir.path)/out_\($0)_t\(threads).npy" }
            let result = try Shell.run([exe, weightsArgument, "\(options.batch)"] + inputFiles + outputFiles,
                                       in: dir.path, environment: ["OMP_NUM_THREADS": "\(threads)"])
            guard result.status == 0 else {
                throw DriverError("error: generated code failed at \(threads) thread(s) (exit \(result.status)):\n\(result.output)")
            }
            runs.append((threads, try outputFiles.map { try NumpyFile.read($0) }))
        }

        var passed = true
        for (i, name) in graph.outputs.enumerated() {
            let line = compare(name: name, actual: runs[0].outputs[i], expected: expected[i], tolerance: options.tolerance)
            report += line.text + "\n"
            passed = passed && line.passed
        }
        for run in runs.dropFirst() {
            let same = zip(run.outputs, runs[0].outputs).allSatisfy { a, b in
                a.shape == b.shape && zip(a.data, b.data).allSatisfy { $0.bitPattern == $1.bitPattern }
            }
            report += "threads \(runs[0].threads) vs \(run.threads): \(same ? "bitwise equal" : "DIFFERENT") \(same ? "PASS" : "FAIL")\n"
            passed = passed && same
        }
        report += passed ? "PASS\n" : "FAIL\n"
        if options.keep { report += "kept build folder: \(dir.path)\n" }
        return (report, passed)
    }

    /// One output's comparison line (worst error, where, both values, verdict), the verdict,
    /// and the largest absolute error (infinite for a shape mismatch or a NaN).
    public static func compare(name: String, actual: FloatArray, expected: Tensor,
                               tolerance: Tolerance) -> (text: String, passed: Bool, maxAbs: Double) {
        guard actual.shape == expected.shape else {
            return ("\(name): shape \(actual.shape) from C, \(expected.shape) from the interpreter FAIL", false, .infinity)
        }
        let scale = max(1, expected.data.map { abs($0) }.max() ?? 0)
        var maxAbs = 0.0, maxRel = 0.0, worst = 0, worstExcess = -Double.infinity, ok = true
        for i in expected.data.indices {
            let a = Double(actual.data[i]), e = expected.data[i]
            let err = a.isNaN ? Double.infinity : abs(a - e)
            maxAbs = max(maxAbs, err)
            maxRel = max(maxRel, err / max(abs(e), 1e-30))
            let excess = err - (tolerance.absolute * scale + tolerance.relative * abs(e))
            if excess > worstExcess { worstExcess = excess; worst = i }
            if !tolerance.accepts(a, e, scale: scale) { ok = false }
        }
        let index = unflatten(worst, shape: expected.shape).map(String.init).joined(separator: ",")
        let text = "\(name): max abs err \(short(maxAbs)), max rel err \(short(maxRel)); worst (\(index)): "
            + "C \(actual.data.isEmpty ? 0 : actual.data[worst]) vs interpreter \(expected.data.isEmpty ? 0 : expected.data[worst]) "
            + "[\(tolerance.name)] \(ok ? "PASS" : "FAIL")"
        return (text, ok, maxAbs)
    }

    static func unflatten(_ flat: Int, shape: [Int]) -> [Int] {
        var rest = flat
        var index = Array(repeating: 0, count: shape.count)
        for d in shape.indices.reversed() {
            index[d] = shape[d] == 0 ? 0 : rest % shape[d]
            rest /= max(shape[d], 1)
        }
        return index
    }

    static func short(_ v: Double) -> String {
        v.isInfinite ? "inf" : String(format: "%.3g", v)
    }

    /// Reads a safetensors file into interpreter tensors (the interpreter validates names and shapes).
    public static func loadParameters(_ path: String, graph: Graph) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, array) in try SafetensorsFile.read(path, skipping: SafetensorsFile.isSkippedByWeightLoaders) {
            result[name] = Tensor(shape: array.shape, data: array.data.map(Double.init))
        }
        return result
    }
}
