// The optimization options every command that builds code shares, and running the pipeline.

import CNNCIR
import CNNCPasses
import Foundation

/// Which passes run and what they print.
public struct CompilerOptions: Sendable {
    /// `-O0`: no passes.
    public var optimize = true
    /// `--no-winograd`: leave 3x3 convolutions direct.
    public var winograd = true
    /// `--winograd-min-channels N`: Winograd only for layers with at least N input and output channels.
    public var winogradMinChannels = PassOptions().winogradMinChannels
    public var disabledPasses: [String] = []
    public var printIRAfter: [String] = []
    public var printIRAfterAll = false
    public var mode = PipelineMode.inference

    public init() {}

    /// Checks the pass names the user gave.
    public func validate() throws {
        for name in disabledPasses + printIRAfter where !PassManager.knownNames.contains(name) {
            var message = "error: unknown pass '\(name)'"
            if let guess = closestMatch(to: name, in: PassManager.knownNames) { message += "; did you mean '\(guess)'?" }
            throw DriverError(message + " (cnnc passes lists them)")
        }
    }

    /// Runs the pipeline on a loaded graph; printed IR goes to standard error.
    /// `batch` is the batch the code is built for (select-conv-algorithm's cost model uses it).
    public func optimized(_ graph: Graph, batch: Int = 1) throws -> Graph {
        try Self.checkBatchFitsCInt(graph, batch: batch)
        return try run(graph, batch: batch).graph
    }

    /// The generated C indexes a value's floats over the whole batch with `int` (columns of the
    /// GEMM kernels, `n * PQ` tiles): every value times the batch must fit in one, or the C
    /// would overflow at run time. An error names the largest value and the numbers.
    public static func checkBatchFitsCInt(_ graph: Graph, batch: Int) throws {
        guard let node = graph.nodes.max(by: { $0.shape.count < $1.shape.count }) else { return }
        let limit = Int(Int32.max)
        guard let total = SizeArithmetic.multiply(node.shape.count, batch), total <= limit else {
            let shown = SizeArithmetic.multiply(node.shape.count, batch).map(String.init) ?? "more than 2^63"
            throw DriverError("error: batch \(batch) times the \(node.shape.count) elements of \(node.displayName) (\(node.shape) per sample) is \(shown), more than the generated C's int indices hold (\(limit)); use a smaller --batch")
        }
    }

    /// The optimized graph and what each pass said.
    public func run(_ graph: Graph, batch: Int = 1) throws -> (graph: Graph, remarks: [Remark]) {
        try validate()
        var manager = PassManager(passes: optimize ? Pipelines.optimizing(mode) : Pipelines.none)
        manager.disabled = Set(disabledPasses)
        manager.options.mode = mode
        manager.options.batch = batch
        manager.options.winograd = winograd
        manager.options.winogradMinChannels = winogradMinChannels
        manager.printAfter = Set(printIRAfter)
        manager.printAfterAll = printIRAfterAll
        do {
            let result = try manager.run(graph)
            if !result.printed.isEmpty { FileHandle.standardError.write(Data(result.printed.utf8)) }
            return (result.graph, result.remarks)
        } catch let list as DiagnosticList {
            throw DriverError(list.description)
        }
    }
}
