// The pass interface and the pass manager. A pass is one file with a kebab-case name, a
// one-line summary, the modes it runs in, and a rewrite that reports what it did and every
// refusal with its reason. Pipelines are plain lists; the verifier runs after every pass.

import CNNCIR

/// Whether a pipeline builds inference or training code.
public enum PipelineMode: String, Sendable, CaseIterable {
    case inference, training
}

/// What a pass says about one node: a rewrite done, or a refusal and why.
public struct Remark: Sendable, CustomStringConvertible {
    public var pass: String
    public var node: String
    public var message: String
    public var description: String { "[\(pass)] \(node): \(message)" }
}

/// Options the passes read.
public struct PassOptions: Sendable {
    /// Whether the pipeline builds inference or training code (select-conv-algorithm picks
    /// among fewer kernels for training, which reads the raw parameters).
    public var mode: PipelineMode = .inference
    /// The batch the code is built for (`--batch`; n <= it at run time).
    public var batch = 1
    /// Whether select-conv-algorithm may choose Winograd (`--no-winograd` clears it).
    public var winograd = true
    /// Largest acceptable Winograd error, relative to the output's magnitude (see
    /// select-conv-algorithm for the estimate it is compared with).
    public var winogradErrorBudget: Double = 1e-4
    /// Fewest input and output channels for Winograd (see select-conv-algorithm).
    public var winogradMinChannels = 32
    public init() {}
}

/// One graph-to-graph rewrite.
public protocol Pass: Sendable {
    /// kebab-case name, as `--print-ir-after=` and `--disable-pass=` take it.
    var name: String { get }
    /// One line for `cnnc passes`.
    var summary: String { get }
    /// The pipeline modes the pass is valid in.
    var modes: Set<PipelineMode> { get }
    /// Rewrites `graph` (shapes inferred, verified), appending remarks.
    func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark])
}

/// The passes, in pipeline order, each with a comment on why it is where it is.
public enum Pipelines {
    /// Every pass cnnc has, for `cnnc passes`.
    public static let all: [any Pass] = [
        DeadNodeElimination(),   // first: nothing below works on unused nodes
        RemoveDropout(),         // inference only: dropout is the identity
        FoldBatchNorm(),         // before fusion: the folded conv takes the activation after the BN
        FuseResidualAdd(),       // before activation fusion: act(bn(conv) + shortcut)
        FuseActivation(),        // absorbs the activation after conv/dense (+ bn, + residual)
        SelectConvAlgorithm(),   // last: sees the final conv nodes and their fused epilogues
    ]

    /// The default optimizing pipeline for a mode.
    public static func optimizing(_ mode: PipelineMode) -> [any Pass] {
        all.filter { $0.modes.contains(mode) }
    }

    /// `-O0`: no rewrites at all (the graph goes to the backend as written).
    public static let none: [any Pass] = []
}

/// Runs a pipeline with verification and IR printing.
public struct PassManager {
    public var passes: [any Pass]
    public var options = PassOptions()
    /// Pass names after which to print the IR, or all when `printAfterAll`.
    public var printAfter: Set<String> = []
    public var printAfterAll = false
    public var disabled: Set<String> = []

    /// `mode` tells the passes what kind of code the graph becomes (see `PassOptions.mode`).
    public init(passes: [any Pass], mode: PipelineMode = .inference) {
        self.passes = passes
        options.mode = mode
    }

    /// The names of every pass, to validate `--disable-pass` and `--print-ir-after`.
    public static var knownNames: [String] { Pipelines.all.map(\.name) }

    /// Runs the passes on a verified graph. Returns the result, the remarks, and the IR
    /// text requested by the print options (each preceded by a `// after NAME` line, with
    /// that pass's remarks). A verifier failure after a pass is a compiler bug: it throws
    /// with the pass named and the IR.
    public func run(_ input: Graph) throws -> (graph: Graph, remarks: [Remark], printed: String) {
        var graph = input.resolvingInitializers()
        graph.inferShapes()
        var remarks: [Remark] = []
        var printed = ""
        for pass in passes where !disabled.contains(pass.name) {
            let before = remarks.count
            pass.run(&graph, options: options, remarks: &remarks)
            // Passes keep every node's shape: the verifier infers them anew and compares.
            let problems = graph.verify()
            guard problems.isEmpty else {
                throw DiagnosticList([.error("compiler bug: the IR does not verify after pass '\(pass.name)':\n"
                    + problems.map(\.description).joined(separator: "\n") + "\n" + graph.irText())])
            }
            if printAfterAll || printAfter.contains(pass.name) {
                printed += "// after \(pass.name)\n"
                for r in remarks[before...] { printed += "// \(r)\n" }
                printed += graph.irText()
            }
        }
        return (graph, remarks, printed)
    }
}
