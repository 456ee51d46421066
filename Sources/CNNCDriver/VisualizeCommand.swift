// `cnnc visualize`: checks the arguments against the network (layers, channels, classes,
// input shapes) with errors that name what exists, then compiles the network with its
// training API (which keeps every layer's activations and gives input gradients), builds
// the subcommand's C program (Runtime/visualize) with the picture unit and libpng, and runs
// it. The heavy loops (streaming a data set, gradient ascent, iterative attacks) run in C.

import CNNCBackendC
import CNNCIR
import Foundation

/// The subcommands, by their command-line names.
public enum VisualizeKind: String, CaseIterable, Sendable {
    case filters, activations, saliency, adversarial, curves
    case topImages = "top-images"
    case classImage = "class-image"

    /// The C file of its program in Runtime/visualize.
    var source: String { rawValue.replacingOccurrences(of: "-", with: "_") + ".c" }
    /// Whether the program uses the training API (taps, input gradients).
    var needsTraining: Bool { self != .filters && self != .curves }
}

/// Everything a subcommand may take; each uses its own part.
public struct VisualizeOptions {
    public var output = "out.png"
    public var weights: String?
    public var seed: UInt64 = 0
    public var threads: Int?
    public var layer: String?
    public var channel: Int?
    public var input: String?
    public var data: String?
    public var labels: String?
    public var index: Int?
    public var resize = false
    /// Classes as given: "3", "3,7" or "all"; nil: the predicted class (saliency).
    public var classes: String?
    public var label: Int?
    public var count = 16
    public var batch = 64
    public var perChannel = false
    public var saveGradient: String?
    public var steps = 1
    public var lr = 1.0
    public var l2 = 0.01
    public var blur = 0.0
    public var blurEvery = 4
    public var jitter = 0
    public var start = "zeros"
    public var epsilon = 0.1
    public var alpha: Double?
    public var range: (Double, Double)? = (0, 1)
    public var limit = 0
    public var log: String?
    public init() {}
}

public enum VisualizeCommand {
    /// Checks the options, builds the program and runs it; returns its exit status. Its output
    /// streams to ours. `model` is nil for `curves`.
    public static func run(_ kind: VisualizeKind, model: LoadedModel?, options o: VisualizeOptions) throws -> Int32 {
        var args = ["output=\(absolute(o.output))"]
        let dir = try WorkDirectory(prefix: "cnnc-visualize")
        defer { dir.cleanup() }
        var toolchain = Toolchain()
        toolchain.flags = toolchain.flags.map { $0 == "-O2" ? "-O3" : $0 }
        let image = try RuntimeSources.writeImage(to: dir.path)
        let runtime = try RuntimeSources.write(to: dir.path)
        for (name, text) in RuntimeSources.visualize { try ModelBuilder.write(text, to: "\(dir.path)/\(name)") }
        var sources = [kind.source] + image + runtime

        if let model {
            let network = try VisualizeNetwork(model)
            args += try arguments(kind, network, o)
            args.append("seed=\(o.seed)")
            if let w = o.weights {
                try requireRegularFiles([w])
                args.append("weights=\(absolute(w))")
            } else if let path = try model.writeWeights(to: "\(dir.path)/weights.safetensors") {
                args.append("weights=\(path)")
            }
            let batch = try batchSize(kind, network, o)
            let graph = model.graph
            let inference = try CompilerOptions().optimized(graph)
            let training = kind.needsTraining ? TrainingSpec(graph: try TrainChecker.trainingGraph(graph, batch: batch)) : nil
            let c = CEmitter.emit(inference, options: COptions(
                prefix: "model", maxBatch: batch, headerName: "model.h", sourceName: model.path, seed: o.seed, training: training))
            try ModelBuilder.write(c.header, to: "\(dir.path)/model.h")
            try ModelBuilder.write(c.source, to: "\(dir.path)/model.c")
            try ModelBuilder.write(network.shim(training: training != nil), to: "\(dir.path)/viz_model.h")
            sources += ["model.c", "common.c"]
        } else {
            guard let log = o.log else { throw DriverError("error: curves needs the log file (LOG.csv)") }
            guard FileManager.default.fileExists(atPath: log) else { throw DriverError("error: cannot read '\(log)'") }
            args.append("log=\(absolute(log))")
        }
        for path in [o.output, o.saveGradient].compactMap({ $0 }) { try OutputFile.prepare(path) }
        // the large, shared parts come from the object cache; the subcommand's program is compiled each time
        let cache = ObjectCache()
        var objects: [String] = []
        for (source, headers) in [("cnnc_runtime.c", ["cnnc_runtime.h"]), ("cnnc_image.c", ["cnnc_image.h", "cnnc_runtime.h"]),
                                  ("model.c", ["model.h", "cnnc_runtime.h"])] where sources.contains(source) {
            objects.append(try cache.object(for: source, headers: headers, in: dir.path, toolchain: toolchain))
        }
        let programs = sources.filter { !["cnnc_runtime.c", "cnnc_image.c", "model.c"].contains($0) }
        try toolchain.build(sources: programs + objects, output: "\(dir.path)/visualize", in: dir.path, linkFlags: ["-lpng", "-lm"])
        return try Shell.stream("\(dir.path)/visualize", args, threads: o.threads)
    }

    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).path }

    /// The largest batch the program runs.
    static func batchSize(_ kind: VisualizeKind, _ network: VisualizeNetwork, _ o: VisualizeOptions) throws -> Int {
        switch kind {
        case .filters, .activations, .curves: return 1
        case .topImages: return o.batch
        case .classImage: return try network.classList(o.classes, inputs: nil).count
        case .saliency: return o.data != nil && o.input == nil ? 1 : try network.inputCount(o)
        case .adversarial: return o.input == nil && o.index == nil ? o.batch : try network.inputCount(o)
        }
    }

    /// The program's key=value arguments for a subcommand, after checking them.
    static func arguments(_ kind: VisualizeKind, _ net: VisualizeNetwork, _ o: VisualizeOptions) throws -> [String] {
        var args: [String] = []
        func needLayer() throws -> Node {
            guard let name = o.layer else { throw DriverError("error: \(kind.rawValue) needs --layer (one of: \(net.layerNames))") }
            let node = try net.layer(name)
            args.append("layer=\(name)")
            return node
        }
        func input(required: Bool) throws {
            args += try net.inputArguments(o, required: required)
        }
        switch kind {
        case .filters:
            let node = try needLayer()
            guard case .conv = node.op else {
                throw DriverError("error: layer '\(node.name)' is \(net.keyword(node)), not conv; filters takes a conv layer: \(net.convNames)")
            }
        case .activations:
            _ = try needLayer()
            try input(required: true)
            if o.perChannel { args.append("per-channel=1") }
        case .topImages:
            let node = try needLayer()
            guard let channel = o.channel else { throw DriverError("error: top-images needs --channel") }
            let units = node.shape.rank == 3 ? node.shape.c : node.shape.count
            let what = node.shape.rank == 3 ? "channels" : "units"
            guard channel >= 0 && channel < units else {
                throw DriverError("error: --channel \(channel) is out of range: layer '\(node.name)' has \(units) \(what) (0 to \(units - 1))")
            }
            guard o.count >= 1 && o.count <= 256 else { throw DriverError("error: --count must be 1 to 256, got \(o.count)") }
            guard o.data != nil else { throw DriverError("error: top-images needs --data DIR (the data set to search)") }
            try input(required: true)
            args += ["channel=\(channel)", "count=\(o.count)", "limit=\(o.limit)"]
        case .saliency:
            try input(required: true)
            let n = try net.inputCount(o)
            if let c = o.classes { args.append("class=\(try net.classList(c, inputs: n).map(String.init).joined(separator: ","))") }
            if let g = o.saveGradient { args.append("save-gradient=\(absolute(g))") }
        case .classImage:
            guard o.classes != nil else { throw DriverError("error: class-image needs --class K (or a list, or 'all')") }
            let list = try net.classList(o.classes, inputs: nil)
            guard o.steps >= 1 && o.steps <= 100_000 else { throw DriverError("error: --steps must be 1 to 100000, got \(o.steps)") }
            guard ["zeros", "noise"].contains(o.start) else { throw DriverError("error: --start takes zeros or noise, got '\(o.start)'") }
            guard o.lr > 0, o.l2 >= 0, o.blur >= 0, o.jitter >= 0, o.blurEvery >= 1 else {
                throw DriverError("error: --lr > 0, --l2 >= 0, --blur >= 0, --blur-every >= 1 and --jitter >= 0 are required")
            }
            args += ["class=\(list.map(String.init).joined(separator: ","))", "steps=\(o.steps)", "lr=\(o.lr)", "l2=\(o.l2)",
                     "blur=\(o.blur)", "blur-every=\(o.blurEvery)", "jitter=\(o.jitter)", "start=\(o.start)"]
            if let r = o.range { args.append("range=\(r.0),\(r.1)") }
        case .adversarial:
            guard o.epsilon > 0 else { throw DriverError("error: --epsilon must be positive, got \(o.epsilon)") }
            guard o.steps >= 1 && o.steps <= 10_000 else { throw DriverError("error: --steps must be 1 to 10000, got \(o.steps)") }
            try input(required: true)
            if let label = o.label {
                guard label >= 0 && label < net.classes else { throw net.noSuchClass(label) }
                args.append("label=\(label)")
            }
            args += ["epsilon=\(o.epsilon)", "steps=\(o.steps)", "alpha=\(o.alpha ?? (o.steps == 1 ? o.epsilon : 2.5 * o.epsilon / Double(o.steps)))",
                     "limit=\(o.limit)"]
            if let r = o.range { args.append("range=\(r.0),\(r.1)") }
            if o.input == nil && o.index == nil { args.append("mode=dataset") }
        case .curves:
            break
        }
        return args
    }
}
