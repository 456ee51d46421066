// The `cnnc` command-line tool: a thin layer over CNNCDriver.

import ArgumentParser
import CNNCDriver
import CNNCIR
import Foundation

/// Prints a user-facing error to stderr and exits with status 1.
func fail(_ error: Error) -> Never {
    let text = DriverError.describing(error)
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    exit(1)
}

/// The release; `cnnc --version` adds the commit (BuildCommit.swift, written at build time).
let version = "cnnc 0.1.0 (commit \(buildCommit))"

struct CNNC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cnnc",
        abstract: "A compile-ahead compiler for convolutional neural networks: .net in, C out.",
        version: version,
        subcommands: [Compile.self, Summary.self, DumpIR.self, Check.self, Run.self, Train.self, Bench.self, Profile.self, Passes.self, Export.self,
                      Visualize.self, Doctor.self],
        defaultSubcommand: Compile.self)
}

struct ModelOptions: ParsableArguments {
    @Argument(help: "The network description (.net, ONNX .onnx, or IR text .ir).")
    var model: String
}

struct OptimizationOptions: ParsableArguments {
    @Flag(name: .customLong("O0", withSingleDash: true), help: "No optimization passes (for debugging).")
    var noOptimization = false
    @Flag(help: "Never choose Winograd for 3x3 convolutions (select-conv-algorithm picks among the others).")
    var noWinograd = false
    @Option(name: .customLong("winograd-min-channels"), help: "Winograd only where input and output have at least this many channels (default 32).")
    var winogradMinChannels: Int = CompilerOptions().winogradMinChannels
    @Option(name: .customLong("disable-pass"), help: "Skip a pass (repeatable; cnnc passes lists them).")
    var disabledPasses: [String] = []
    @Option(name: .customLong("print-ir-after"), help: "Print the IR to stderr after a pass (repeatable).")
    var printIRAfter: [String] = []
    @Flag(name: .customLong("print-ir-after-all"), help: "Print the IR to stderr after every pass.")
    var printIRAfterAll = false

    var compiler: CompilerOptions {
        var o = CompilerOptions()
        o.optimize = !noOptimization
        o.winograd = !noWinograd
        o.winogradMinChannels = winogradMinChannels
        o.disabledPasses = disabledPasses
        o.printIRAfter = printIRAfter
        o.printIRAfterAll = printIRAfterAll
        return o
    }
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write C for a network: MODEL.c, MODEL.h and the runtime (cnnc_runtime.c/.h) beside them.")

    @OptionGroup var options: ModelOptions
    @Option(name: .short, help: "The C file to write; the header gets the same name with .h.")
    var output: String
    @Option(help: "The largest batch the generated code accepts.")
    var batch: Int = 1
    @Option(help: "Prefix of the generated symbols (default: the network name).")
    var prefix: String?
    @Option(help: "Seed of the weights <prefix>_create() starts with.")
    var seed: UInt64 = 0
    @Flag(help: "Do not write cnnc_runtime.c and cnnc_runtime.h beside the output.")
    var noRuntime = false
    @Flag(help: "Also generate the training API (<prefix>_train_step, checkpoints, ...).")
    var train = false
    @Option(help: "Weights to embed (with --embed-weights).")
    var weights: String?
    @Flag(name: .customLong("embed-weights"), help: "Link the --weights file into the program (MODEL_weights.S + .bin); _create uses them.")
    var embedWeights = false
    @Option(help: "Layers whose parameters training leaves alone, comma-separated (with --train).")
    var freeze: String?
    @OptionGroup var optimization: OptimizationOptions

    func validate() throws {
        guard batch >= 1 && batch <= 1 << 20 else { throw ValidationError("--batch must be 1 to 1048576, got \(batch)") }
        guard output.hasSuffix(".c") else { throw ValidationError("-o must name a .c file, got '\(output)'") }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            let frozen = freeze.map { $0.split(separator: ",").map(String.init) } ?? []
            var written = try CompileCommand.run(model, output: output, batch: batch, prefix: prefix, seed: seed,
                                                 writeRuntime: !noRuntime, compiler: optimization.compiler,
                                                 training: train, frozen: frozen, weights: weights,
                                                 embedWeights: embedWeights)
            // An ONNX model's weights go beside the C, for <prefix>_load_weights.
            if let path = try model.writeWeights(to: String(output.dropLast(2)) + ".safetensors") { written.append(path) }
            print("wrote \(written.joined(separator: ", "))")
        } catch { fail(error) }
    }
}

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the per-layer table: shapes, parameters, MACs, activation bytes.")
    @OptionGroup var options: ModelOptions
    @Option(help: "Batch size used for shapes, MACs and bytes.")
    var batch: Int = 1
    @OptionGroup var optimization: OptimizationOptions

    func validate() throws {
        guard batch >= 1 && batch <= 1 << 20 else { throw ValidationError("--batch must be 1 to 1048576, got \(batch)") }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            let (optimized, remarks) = try optimization.compiler.run(model.graph, batch: batch)
            print(CNNCDriver.Summary.render(model.graph, optimized: optimized, remarks: remarks, batch: batch,
                                            source: options.model), terminator: "")
        } catch { fail(error) }
    }
}

struct DumpIR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-ir", abstract: "Print the graph IR as text (as written; --optimized: after the passes).")
    @OptionGroup var options: ModelOptions
    @Flag(help: "Print the IR after the optimization pipeline.")
    var optimized = false
    @OptionGroup var optimization: OptimizationOptions

    func run() throws {
        do {
            let graph = try ModelLoader.load(options.model).graph
            print(optimized ? try optimization.compiler.optimized(graph).irText() : graph.irText(), terminator: "")
        } catch { fail(error) }
    }
}

struct Passes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the optimization passes in pipeline order.")

    func run() throws {
        print(CNNCDriver.PassList.render(), terminator: "")
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the generated C, run it on seeded inputs and compare every output with the interpreter.")
    @OptionGroup var options: ModelOptions
    @Option(help: "Batch size.")
    var batch: Int = 2
    @Option(help: "Weights file (safetensors); default: seeded initialization.")
    var weights: String?
    @Option(help: "Seed of the weights and inputs.")
    var seed: UInt64 = 1
    @Option(help: "Thread counts to run at, comma-separated; results must be bitwise equal.")
    var threads: String = "1,2"
    @Flag(help: "Build with AddressSanitizer and UndefinedBehaviorSanitizer.")
    var sanitize = false
    @Flag(help: "Keep the build folder and print its path.")
    var keep = false
    @Flag(help: "Check the training step instead: losses, gradients, updated weights and statistics over --steps steps.")
    var train = false
    @Option(help: "Training steps to compare, each from the generated code's state before it (with --train).")
    var steps: Int = 2
    @Option(help: "Learning rate (with --train).")
    var lr: Double = 0.05
    @Option(help: "Momentum (with --train).")
    var momentum: Double = 0.9
    @Option(name: .customLong("weight-decay"), help: "Weight decay (with --train).")
    var weightDecay: Double = 5e-4
    @Flag(help: "Nesterov momentum (with --train).")
    var nesterov = false
    @Option(help: "Frozen layers, comma-separated (with --train).")
    var freeze: String?
    @OptionGroup var optimization: OptimizationOptions

    func validate() throws {
        guard steps >= 1 && steps <= 1000 else { throw ValidationError("--steps must be 1 to 1000, got \(steps)") }
        guard batch >= 1 && batch <= 4096 else { throw ValidationError("--batch must be 1 to 4096, got \(batch)") }
        guard !threadList.isEmpty, threadList.allSatisfy({ $0 >= 1 && $0 <= 1024 }) else {
            throw ValidationError("--threads takes a list like 1,2, got '\(threads)'")
        }
    }

    var threadList: [Int] { threads.split(separator: ",").compactMap { Int($0) } }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            if train {
                var t = TrainCheckOptions()
                t.batch = batch; t.steps = steps; t.seed = seed; t.weights = weights; t.threads = threadList
                t.sanitize = sanitize; t.keep = keep
                t.sgd = SGDConfig(learningRate: lr, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
                t.frozen = Set(freeze.map { $0.split(separator: ",").map(String.init) } ?? [])
                let (report, passed) = try TrainChecker.check(model, options: t)
                print(report, terminator: "")
                if !passed { throw ExitCode(1) }
                return
            }
            var o = CheckOptions()
            o.batch = batch; o.seed = seed; o.weights = weights; o.threads = threadList
            o.keep = keep; o.sanitize = sanitize; o.compiler = optimization.compiler
            let (report, passed) = try Checker.check(model, options: o)
            print(report, terminator: "")
            if !passed { throw ExitCode(1) }
        } catch let e as ExitCode { throw e } catch { fail(error) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a network on .npy inputs (compiled C, or the interpreter) and write .npy outputs.")
    @OptionGroup var options: ModelOptions
    @Option(name: .customLong("input"), help: "Input .npy (float32, N x shape); repeat for several inputs, in the network's order.")
    var inputs: [String] = []
    @Option(name: .customLong("output"), help: "Output .npy to write; repeat for several outputs, in the network's order.")
    var outputs: [String] = []
    @Option(help: "Weights file (safetensors); default: seeded initialization.")
    var weights: String?
    @Option(help: "Seed of the weights when no file is given.")
    var seed: UInt64 = 0
    @Flag(help: "Run the reference interpreter instead of compiled C.")
    var interpret = false
    @OptionGroup var optimization: OptimizationOptions

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            try RunCommand.run(model, inputs: inputs, outputs: outputs, weights: weights, seed: seed, interpret: interpret,
                               compiler: optimization.compiler)
        } catch { fail(error) }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time the generated forward pass (median of repeated runs).")
    @OptionGroup var options: ModelOptions
    @Option(help: "Batch size.") var batch: Int = 1
    @Option(help: "Timed runs.") var iterations: Int = 20
    @Option(help: "Untimed runs before the timed ones.") var warmup: Int = 3
    @Option(help: "OpenMP threads (default: all).") var threads: Int?
    @Option(help: "Weights (safetensors; default: the model's own, else seeded).") var weights: String?
    @Flag(help: "Print one JSON object: model, batch, threads, iterations, warmup, median_ms, min_ms, ms_per_image, images_per_s.")
    var json = false
    @OptionGroup var optimization: OptimizationOptions

    func validate() throws {
        guard batch >= 1 && batch <= 4096, iterations >= 1 && iterations <= 100_000, warmup >= 0 && warmup <= 100_000 else {
            throw ValidationError("--batch 1..4096, --iterations 1..100000 and --warmup 0..100000")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            let output = try BenchCommand.run(model, batch: batch, iterations: iterations, warmup: warmup, weights: weights,
                                              report: json ? .json : .text, compiler: optimization.compiler, threads: threads)
            guard json else { return print(output, terminator: "") }
            // Only the JSON object on stdout; anything else the program said (runtime notes) on stderr.
            for line in output.split(separator: "\n") {
                if line.hasPrefix("{") { print(line) } else { FileHandle.standardError.write(Data((line + "\n").utf8)) }
            }
        } catch { fail(error) }
    }
}

struct Profile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time every layer of the generated forward pass: median ms, GFLOP/s, % of the machine's FMA peak, kernel.")
    @OptionGroup var options: ModelOptions
    @Option(help: "Batch size.") var batch: Int = 1
    @Option(help: "Timed runs.") var iterations: Int = 20
    @Option(help: "Untimed runs before the timed ones.") var warmup: Int = 3
    @Option(help: "OpenMP threads (default: all).") var threads: Int?
    @Option(help: "Weights (safetensors; default: the model's own, else seeded).") var weights: String?
    @Flag(help: "Profile an SGD step instead: forward and backward per layer of the training graph (batch >= 2).")
    var train = false
    @OptionGroup var optimization: OptimizationOptions

    func validate() throws {
        guard batch >= 1 && batch <= 4096, iterations >= 1 && iterations <= 10_000, warmup >= 0 && warmup <= 10_000 else {
            throw ValidationError("--batch 1..4096, --iterations 1..10000 and --warmup 0..10000")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if train && batch < 2 { throw ValidationError("--train needs --batch of at least 2 (batch norm's statistics)") }
        if train && weights != nil { throw ValidationError("--train starts from the model's own weights; --weights is for inference") }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            if train {
                print(try ProfileCommand.runTraining(model, batch: batch, iterations: iterations, warmup: warmup,
                                                     compiler: optimization.compiler, threads: threads), terminator: "")
            } else {
                print(try ProfileCommand.run(model, batch: batch, iterations: iterations, warmup: warmup, weights: weights,
                                             compiler: optimization.compiler, threads: threads), terminator: "")
            }
        } catch { fail(error) }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network with generated C: SGD with momentum, evaluation after every epoch, checkpoints.")
    @OptionGroup var options: ModelOptions
    @Option(help: "Fashion-MNIST folder (as dataset-fashion-mnist installs it), CIFAR-10 binary folder or file, or x.npy.")
    var data: String
    @Option(help: "Labels .npy (with --data x.npy).")
    var labels: String?
    @Option(name: .customLong("test-data"), help: "Test images .npy (with --data x.npy).")
    var testData: String?
    @Option(name: .customLong("test-labels"), help: "Test labels .npy (with --data x.npy).")
    var testLabels: String?
    @Option(help: "Epochs.") var epochs: Int = 1
    @Option(help: "Batch size.") var batch: Int = 64
    @Option(help: "Learning rate.") var lr: Double = 0.01
    @Option(help: "Momentum.") var momentum: Double = 0.9
    @Option(name: .customLong("weight-decay"), help: "Weight decay.") var weightDecay: Double = 0
    @Flag(help: "Nesterov momentum.") var nesterov = false
    @Option(help: "Learning-rate schedule: constant, step or cosine.") var schedule: String = "constant"
    @Option(help: "step: decay factor.") var gamma: Double = 0.1
    @Option(name: .customLong("step-epochs"), help: "step: epochs between decays.") var stepEpochs: Int = 30
    @Option(name: .customLong("min-lr"), help: "cosine: final rate.") var minLR: Double = 0
    @Option(help: "Linear warm-up steps.") var warmup: Int = 0
    @Option(help: "Seed of weights, shuffling, dropout and augmentation.") var seed: UInt64 = 1
    @Option(help: "Start from these weights (safetensors).") var weights: String?
    @Flag(help: "With --weights: load only the tensors whose names and shapes match (transfer learning); the rest keep their initialization.") var partial = false
    @Option(help: "Resume from a checkpoint written by --save.") var resume: String?
    @Option(help: "Write a checkpoint here after every epoch.") var save: String?
    @Option(help: "Write a CSV log here: a row per epoch (with the test values) and every --log-every steps.") var log: String?
    @Option(name: .customLong("log-every"), help: "Steps between log rows within an epoch (running means; 0: epoch rows only).")
    var logEvery: Int = 100
    @Option(help: "Stop after this many steps in all (0: run every epoch).") var steps: Int = 0
    @Flag(name: .customLong("no-shuffle"), help: "Keep the data set order.") var noShuffle = false
    @Option(help: "Random crop with this much zero padding.") var crop: Int = 0
    @Flag(help: "Random horizontal flips.") var flip = false
    @Option(help: "Color jitter strength (brightness, contrast, saturation).") var jitter: Double = 0
    @Flag(help: "Normalize each channel with the training set's mean and std.") var normalize = false
    @Option(help: "Layers to freeze, comma-separated.") var freeze: String?
    @Option(help: "OpenMP threads (default: all; with --ranks on one machine: the cores shared out over the processes).") var threads: Int?
    @Option(help: "Data-parallel training with Open MPI: this many processes (mpirun -np), each with its share of every --batch.")
    var ranks: Int?
    @Option(help: "With --ranks: the machines, an Open MPI hostfile (this machine first: rank 0 reads --weights and --resume and writes --save and --log).")
    var hostfile: String?
    @Flag(name: .customLong("sync-bn"), help: "With --ranks: batch-norm statistics over every process's samples (else each process's own, as PyTorch's DDP).")
    var syncBN = false
    @Option(name: .customLong("emit-trainer"), help: "Build the trainer into this file and print the command that runs it (with --ranks: an mpirun line to adapt for your own launcher) instead of training.")
    var emitTrainer: String?

    func validate() throws {
        guard epochs >= 1, batch >= 2, batch <= 65536, lr > 0, steps >= 0, logEvery >= 0 else {
            throw ValidationError("--epochs >= 1, --batch 2..65536, --lr > 0, --steps >= 0 and --log-every >= 0 are required")
        }
        if partial && weights == nil { throw ValidationError("--partial needs --weights FILE") }
        guard ["constant", "step", "cosine"].contains(schedule) else {
            throw ValidationError("--schedule takes constant, step or cosine, got '\(schedule)'")
        }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            var o = TrainOptions()
            o.data = data; o.labels = labels; o.testData = testData; o.testLabels = testLabels
            o.epochs = epochs; o.batch = batch; o.lr = lr; o.momentum = momentum; o.weightDecay = weightDecay
            o.nesterov = nesterov; o.schedule = schedule; o.gamma = gamma; o.stepEpochs = stepEpochs; o.minLR = minLR
            o.warmupSteps = warmup; o.seed = seed; o.weights = weights; o.partial = partial; o.resume = resume; o.save = save; o.log = log
            o.logEvery = logEvery
            o.steps = steps; o.shuffle = !noShuffle; o.crop = crop; o.flip = flip; o.jitter = jitter
            o.normalize = normalize; o.threads = threads
            o.ranks = ranks; o.hostfile = hostfile; o.syncBatchNorm = syncBN; o.trainerOutput = emitTrainer
            o.frozen = freeze.map { $0.split(separator: ",").map(String.init) } ?? []
            let status = try TrainCommand.run(model, options: o)
            if status != 0 { throw ExitCode(status) }
        } catch let e as ExitCode { throw e } catch { fail(error) }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a network and its weights as an ONNX model (opset \(ONNXExportOpset.value)) for ONNX Runtime and Netron.")
    @OptionGroup var options: ModelOptions
    @Option(name: .short, help: "The .onnx file to write.")
    var output: String
    @Option(help: "Weights file (safetensors); default: the model's own (ONNX) or seeded initialization.")
    var weights: String?
    @Option(help: "Seed of the weights when there are none.")
    var seed: UInt64 = 0

    func validate() throws {
        guard output.hasSuffix(".onnx") else { throw ValidationError("-o must name a .onnx file, got '\(output)'") }
    }

    func run() throws {
        do {
            let model = try ModelLoader.load(options.model)
            try ExportCommand.run(model, output: output, weights: weights, seed: seed)
            print("wrote \(output)")
        } catch { fail(error) }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the C compiler, OpenMP, -march=native, libpng and zlib; measure the FP32 FMA peak.")
    @Flag(help: "Measure the FMA peak again instead of reading it from the cache.")
    var remeasure = false

    func run() throws {
        do {
            let (report, passed) = try CNNCDriver.Doctor.run(remeasure: remeasure)
            print(version)
            print(report, terminator: "")
            if !passed { throw ExitCode(1) }
        } catch let e as ExitCode { throw e } catch { fail(error) }
    }
}

CNNC.main()
