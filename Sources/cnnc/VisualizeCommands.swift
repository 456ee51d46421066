// `cnnc visualize SUBCOMMAND`: the command-line side of CNNCDriver.VisualizeCommand.

import ArgumentParser
import CNNCDriver
import Foundation

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pictures of what a network learned: filters, activations, top images, saliency, class images, adversarial examples, training curves.",
        subcommands: [VisualizeFilters.self, VisualizeActivations.self, VisualizeTopImages.self, VisualizeSaliency.self,
                      VisualizeClassImage.self, VisualizeAdversarial.self, VisualizeCurves.self])
}

/// The model, its weights and the picture to write: every subcommand but curves.
struct VisualizeModelOptions: ParsableArguments {
    @Argument(help: "The network (.net or .onnx).")
    var model: String
    @Option(help: "Weights (safetensors); default: the model's own (ONNX) or seeded initialization.")
    var weights: String?
    @Option(help: "Seed of the weights when there are none, and of noise and jitter.")
    var seed: UInt64 = 0
    @Option(name: .short, help: "The PNG file to write.")
    var output: String
    @Option(help: "OpenMP threads (default: all).")
    var threads: Int?

    func validate() throws {
        guard output.hasSuffix(".png") else { throw ValidationError("-o must name a .png file, got '\(output)'") }
    }

    var options: VisualizeOptions {
        var o = VisualizeOptions()
        o.output = output; o.weights = weights; o.seed = seed; o.threads = threads
        return o
    }
}

/// Where an input image comes from.
struct VisualizeInputOptions: ParsableArguments {
    @Option(help: "The input: .npy (C,H,W or N,C,H,W, float32) or an 8-bit PNG (gray, RGB or RGBA; pixels scaled to [0, 1]).")
    var input: String?
    @Option(help: "A data set (its test split): the Fashion-MNIST folder, CIFAR-10 binary folder, or x.npy with --labels.")
    var data: String?
    @Option(help: "Labels .npy (with --data x.npy).")
    var labels: String?
    @Option(help: "Which image of --data (or of an .npy batch).")
    var index: Int?
    @Flag(help: "Resize a PNG of another size to the network's input (bilinear).")
    var resize = false

    func apply(to o: inout VisualizeOptions) {
        o.input = input; o.data = data; o.labels = labels; o.index = index; o.resize = resize
    }
}

/// Runs a subcommand and exits with its status.
func runVisualize(_ kind: VisualizeKind, _ modelPath: String?, _ o: VisualizeOptions) throws {
    do {
        let model = try modelPath.map { try ModelLoader.load($0) }
        let status = try VisualizeCommand.run(kind, model: model, options: o)
        if status != 0 { throw ExitCode(status) }
    } catch let e as ExitCode { throw e } catch { fail(error) }
}

/// "0,1" as a (low, high) pair.
func parseRange(_ text: String) throws -> (Double, Double)? {
    if text == "none" { return nil }
    let parts = text.split(separator: ",").compactMap { Double($0) }
    guard parts.count == 2, parts[0] < parts[1] else { throw ValidationError("--range takes LOW,HIGH (e.g. 0,1) or none, got '\(text)'") }
    return (parts[0], parts[1])
}

struct VisualizeFilters: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filters",
        abstract: "A conv layer's filters as a grid, each scaled by its own largest |w| (0 is mid-gray).")
    @OptionGroup var common: VisualizeModelOptions
    @Option(help: "The conv layer.") var layer: String

    func run() throws {
        var o = common.options
        o.layer = layer
        try runVisualize(.filters, common.model, o)
    }
}

struct VisualizeActivations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activations", abstract: "Every channel's feature map of a layer for one image, as a grid.")
    @OptionGroup var common: VisualizeModelOptions
    @OptionGroup var input: VisualizeInputOptions
    @Option(help: "The layer.") var layer: String
    @Flag(name: .customLong("per-channel"), help: "Scale every map by its own range (default: one scale for the layer).")
    var perChannel = false

    func run() throws {
        var o = common.options
        input.apply(to: &o)
        o.layer = layer; o.perChannel = perChannel
        try runVisualize(.activations, common.model, o)
    }
}

struct VisualizeTopImages: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top-images",
        abstract: "The data set images (and receptive-field crops) that activate one unit most, as a mosaic.")
    @OptionGroup var common: VisualizeModelOptions
    @OptionGroup var input: VisualizeInputOptions
    @Option(help: "The layer.") var layer: String
    @Option(help: "The channel (conv layers: its largest value over positions) or unit (dense layers).") var channel: Int
    @Option(help: "How many images.") var count: Int = 16
    @Option(help: "Batch size of the pass over the data set.") var batch: Int = 64
    @Option(help: "Look at the first N images only (0: all).") var limit: Int = 0

    func validate() throws {
        guard batch >= 1 && batch <= 4096, limit >= 0 else { throw ValidationError("--batch 1..4096 and --limit >= 0") }
    }

    func run() throws {
        var o = common.options
        input.apply(to: &o)
        o.layer = layer; o.channel = channel; o.count = count; o.batch = batch; o.limit = limit
        try runVisualize(.topImages, common.model, o)
    }
}

struct VisualizeSaliency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "saliency",
        abstract: "|d score / d input|, the maximum over channels, as a heat map (viridis) beside the image.")
    @OptionGroup var common: VisualizeModelOptions
    @OptionGroup var input: VisualizeInputOptions
    @Option(name: .customLong("class"), help: "The class: one for all inputs or one per input (3,7); default: the predicted one.")
    var classes: String?
    @Option(name: .customLong("save-gradient"), help: "Write the raw gradient (N,C,H,W) float32 here (.npy).")
    var saveGradient: String?

    func run() throws {
        var o = common.options
        input.apply(to: &o)
        o.classes = classes; o.saveGradient = saveGradient
        try runVisualize(.saliency, common.model, o)
    }
}

struct VisualizeClassImage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "class-image",
        abstract: "An input that maximizes a class score: gradient ascent with L2 regularization, optional blur and jitter.")
    @OptionGroup var common: VisualizeModelOptions
    @Option(name: .customLong("class"), help: "The class, a list (3,7) or 'all' (one image each).") var classes: String
    @Option(help: "Gradient ascent steps.") var steps: Int = 200
    @Option(help: "Step size.") var lr: Double = 0.1
    @Option(help: "L2 regularization: maximize score - l2 * |x|^2.") var l2: Double = 0.01
    @Option(help: "Gaussian blur of this sigma (pixels) every --blur-every steps (0: none).") var blur: Double = 0
    @Option(name: .customLong("blur-every"), help: "Steps between blurs.") var blurEvery: Int = 4
    @Option(help: "Random shifts of up to this many pixels before each step (seeded).") var jitter: Int = 0
    @Option(help: "Start from zeros or noise (seeded).") var start: String = "zeros"
    @Option(help: "Clip the image to LOW,HIGH after each step, or none.") var range: String = "0,1"

    func run() throws {
        var o = common.options
        o.classes = classes; o.steps = steps; o.lr = lr; o.l2 = l2; o.blur = blur; o.blurEvery = blurEvery
        o.jitter = jitter; o.start = start; o.range = try parseRange(range)
        try runVisualize(.classImage, common.model, o)
    }
}

struct VisualizeAdversarial: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adversarial",
        abstract: "Fast gradient sign method (iterative with --steps): original, perturbation, adversarial; or the flip rate over --data.")
    @OptionGroup var common: VisualizeModelOptions
    @OptionGroup var input: VisualizeInputOptions
    @Option(help: "The largest change of any input value.") var epsilon: Double
    @Option(help: "Steps (1: FGSM; more: iterative FGSM, projected on the epsilon ball).") var steps: Int = 1
    @Option(help: "Step size of the iterative form (default 2.5 * epsilon / steps).") var alpha: Double?
    @Option(help: "The true class of --input (default: its predicted class; --data uses the labels).") var label: Int?
    @Option(help: "Clip adversarial inputs to LOW,HIGH, or none.") var range: String = "0,1"
    @Option(help: "Batch size over --data.") var batch: Int = 64
    @Option(help: "Attack the first N images of --data only (0: all).") var limit: Int = 0

    func validate() throws {
        guard batch >= 1 && batch <= 4096, limit >= 0 else { throw ValidationError("--batch 1..4096 and --limit >= 0") }
    }

    func run() throws {
        var o = common.options
        input.apply(to: &o)
        o.epsilon = epsilon; o.steps = steps; o.alpha = alpha; o.label = label; o.range = try parseRange(range)
        o.batch = batch; o.limit = limit
        try runVisualize(.adversarial, common.model, o)
    }
}

struct VisualizeCurves: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curves", abstract: "Loss and accuracy per step and epoch from a `cnnc train --log` CSV file, as a plot.")
    @Argument(help: "The CSV log.") var log: String
    @Option(name: .short, help: "The PNG file to write.") var output: String

    func validate() throws {
        guard output.hasSuffix(".png") else { throw ValidationError("-o must name a .png file, got '\(output)'") }
    }

    func run() throws {
        var o = VisualizeOptions()
        o.output = output; o.log = log
        try runVisualize(.curves, nil, o)
    }
}
