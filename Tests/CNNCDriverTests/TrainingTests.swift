// Training end to end: the generated training step against the interpreter over several
// steps (losses, every gradient, momentum, updated weights and batch-norm statistics) on
// every small example, 1 vs 2 threads bitwise; frozen layers; the trainer on a small data
// set (loss goes down, checkpoints resume bit for bit); a short Fashion-MNIST run.

import CNNCDriver
import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class TrainingTests: XCTestCase {
    func checkTrain(_ name: String, batch: Int = 4, steps: Int = 2, frozen: Set<String> = [], sanitize: Bool = false,
                    file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try ModelLoader.load(examplePath(name))
        var o = TrainCheckOptions()
        o.batch = batch
        o.steps = steps
        o.frozen = frozen
        o.sanitize = sanitize
        let (report, passed) = try TrainChecker.check(model, options: o)
        XCTAssertTrue(passed, report, file: file, line: line)
        XCTAssertTrue(report.contains("threads 1 vs 2: bitwise equal PASS"), report, file: file, line: line)
    }

    /// Writes `net` (a .net network named `name`) to a temporary directory and compiles it with
    /// `--train --batch 3`; the network's path and the generated C.
    func compileTraining(_ name: String, _ net: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> (path: String, code: String) {
        let dir = try temporaryDirectory()
        let path = "\(dir)/\(name).net"
        try net.write(toFile: path, atomically: true, encoding: .utf8)
        let emitted = try runCNNC([path, "-o", "\(dir)/out/\(name).c", "--train", "--batch", "3"])
        XCTAssertEqual(emitted.status, 0, emitted.stdout + emitted.stderr, file: file, line: line)
        return (path, try String(contentsOfFile: "\(dir)/out/\(name).c", encoding: .utf8))
    }

    /// `check --train` of the network at `path`, batch 3, two steps: against the interpreter,
    /// 1 vs 2 threads bitwise.
    func checkTrainNet(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var o = TrainCheckOptions()
        o.batch = 3
        o.steps = 2
        let (report, passed) = try TrainChecker.check(try ModelLoader.load(path), options: o)
        XCTAssertTrue(passed, report, file: file, line: line)
        XCTAssertTrue(report.contains("threads 1 vs 2: bitwise equal PASS"), report, file: file, line: line)
    }

    func testTrainStepMatchesInterpreterOnEveryExample() throws {
        // DenseNet (40 layers of batch norm at batch 3) is chaotic past one step: a ReLU input
        // within float32 rounding of zero flips and moves a weight gradient by |dy * x| (check
        // --train then widens by the interpreter's own measured sensitivity, which covers most
        // but not all such flips); its one step is compared here and with random batch-norm
        // parameters below, its kernels one by one in BackwardKernelTests.
        for name in smallExamples {
            try checkTrain(name, batch: name == "vgg11_bn" ? 2 : 3, steps: name == "densenet_small" ? 1 : 2)
        }
    }

    /// Stride-1 layers whose input is wider than their output (no padding, or less than the
    /// kernel's reach) take the input gradient on the implicit kernel over a zero-padded copy
    /// of d out, against the interpreter and 1 vs 2 threads.
    func testPaddedImplicitInputGradient() throws {
        let (path, code) = try compileTraining("padded", """
        network padded
        input image shape=4x16x15
        conv a filters=6 size=3
        relu
        conv b filters=16 size=3 dilation=2
        relu
        conv c filters=5 size=5 pad=1
        relu
        dense logits units=3
        """)
        // b (6 x 14x13 -> 16 x 10x9, dilated) and c (16 x 10x9 -> 5 x 8x7, pad 1) in the
        // training step, and a, b and c where the input gradients for saliency run
        XCTAssertEqual(code.components(separatedBy: "float padded[KG * HP * WB];").count - 1, 5, "padded input gradients")
        // b's weight gradient with the filters in the lanes (16 filters, 9 of 13 columns outputs)
        XCTAssertEqual(code.components(separatedBy: "cnnc_conv_weight_grad_filters(").count - 1, 1, "weight gradient by filters")
        try checkTrainNet(path)
    }

    /// The weight gradient with the filters in the lanes over zero-bordered planes: padding,
    /// strides, a 1x1 stride-2 layer, 8 filters (half of the lanes) and 20 (two blocks), every
    /// output plane at least 64 positions, against the interpreter and 1 vs 2 threads.
    func testFiltersWeightGradientWithPaddingAndStrides() throws {
        let (path, code) = try compileTraining("filters", """
        network filters
        input image shape=3x33x31
        conv a filters=8 size=3 pad=1
        relu
        conv b filters=20 size=3 stride=2 pad=1
        relu
        conv c filters=12 size=1 stride=2
        relu
        dense logits units=3
        """)
        XCTAssertEqual(code.components(separatedBy: "cnnc_conv_weight_grad_filters(").count - 1, 3, "weight gradients by filters")
        try checkTrainNet(path)
    }

    /// 3x3 stride-1 layers of 64 channels run forward and input gradient on Winograd F(4x4)
    /// in training: U and the transposed, turned U transformed just before their kernels; input
    /// gradients written whole (c, d, e: one writer) and added into one with two writers (b's
    /// input r is also the residual's); padding 0, 1 and 2 (the full convolution's 2, 1, 0);
    /// against the interpreter, 1 vs 2 threads bitwise.
    func testWinogradForwardAndInputGradient() throws {
        let (path, code) = try compileTraining("winograd", """
        network winograd
        input image shape=3x13x11
        conv a filters=64 size=3 pad=1
        relu r
        conv b filters=64 size=3 pad=1
        relu
        conv c filters=64 size=3 pad=1
        add s from=c,r
        conv d filters=64 size=3 pad=2
        relu
        conv e filters=64 size=3
        relu
        dense logits units=3
        """)
        // b, c, d and e (a reads the 3-channel image): U before each forward, the turned U before
        // each input gradient (the training step's and input_grad's)
        let transforms = code.components(separatedBy: "\n").filter { $0.contains("winograd_transform(t->arena + ") }
        XCTAssertEqual(transforms.filter { $0.contains(", 64, 64, 0);") }.count, 4, "forward U")
        XCTAssertEqual(transforms.filter { $0.contains(", 64, 64, 1);") }.count, 8, "input gradient U")
        XCTAssertTrue(code.contains("const cnnc_epilogue e = {NULL, d_in, (size_t)C * H * W, CNNC_ACT_NONE"), "an input gradient added into d in")
        try checkTrainNet(path)
        // check --train measures the interpreter's sensitivity with weights moved by Winograd's
        // error budget where a layer runs it, by float32 rounding where none does.
        let model = try ModelLoader.load(path)
        XCTAssertEqual(TrainChecker.perturbation(try TrainChecker.trainingGraph(model.graph, batch: 3)), 1e-4)
        XCTAssertEqual(TrainChecker.perturbation(try TrainChecker.trainingGraph(try ModelLoader.load(examplePath("lenet")).graph)), 0x1p-20)
    }

    func testFrozenLayersAndSanitizers() throws {
        try checkTrain("lenet", frozen: ["c1", "f1"], sanitize: true)
        try checkTrain("resnet20", batch: 2, steps: 2, frozen: ["conv1", "bn1"])
    }

    /// The training step and the data-parallel trainer also build with clang's -Werror (its
    /// `omp simd` loops must vectorize, or -Wpass-failed stops the build).
    func testTrainingBuildsWithClang() throws {
        guard TrainCommand.findOnPath("clang") != nil else { throw XCTSkip("clang is not installed") }
        let check = try runCNNC(["check", "--train", examplePath("resnet20"), "--batch", "2", "--steps", "1"],
                                environment: ["CC": "clang"])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        guard TrainCommand.findOnPath("mpicc") != nil else { return }
        let dir = try temporaryDirectory()
        try writeToyData(dir, count: 4) // --emit-trainer builds only: the data's shape is not checked
        let built = try runCNNC(["train", examplePath("resnet20"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy",
                                 "--ranks", "2", "--emit-trainer", "\(dir)/trainer"], environment: ["CC": "clang"])
        XCTAssertEqual(built.status, 0, built.stdout + built.stderr)
    }

    func testTrainerLearnsAndResumesBitForBit() throws {
        let dir = try temporaryDirectory()
        try writeToyData(dir, count: 64)
        let common = ["train", examplePath("lenet"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy",
                      "--test-data", "\(dir)/x.npy", "--test-labels", "\(dir)/y.npy", "--batch", "16", "--lr", "0.05"]
        // Four epochs in one run...
        let full = try runCNNC(common + ["--epochs", "4", "--save", "\(dir)/full.safetensors", "--log", "\(dir)/log.csv",
                                         "--log-every", "2"])
        XCTAssertEqual(full.status, 0, full.stderr)
        XCTAssertTrue(full.stdout.contains("epoch 4/4: train loss"), full.stdout)
        XCTAssertTrue(full.stdout.contains("test accuracy 100.00%"), full.stdout)
        let log = try String(contentsOfFile: "\(dir)/log.csv", encoding: .utf8)
        XCTAssertTrue(log.hasPrefix("epoch,step,loss,accuracy,lr,test_loss,test_accuracy,images_per_second,seconds\n1,2,"), log)
        // a row every 2 steps (no test values) and one per epoch (with them): 4 steps per epoch
        let rows = log.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        XCTAssertEqual(rows.map { "\($0[0]),\($0[1])" }, ["1,2", "1,4", "2,6", "2,8", "3,10", "3,12", "4,14", "4,16"])
        XCTAssertEqual(rows.map { $0[5].isEmpty }, [true, false, true, false, true, false, true, false])
        // ...equal two runs of two epochs, the second resumed from the first's checkpoint.
        let first = try runCNNC(common + ["--epochs", "2", "--save", "\(dir)/half.safetensors"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try runCNNC(common + ["--epochs", "4", "--resume", "\(dir)/half.safetensors", "--save", "\(dir)/resumed.safetensors"])
        XCTAssertEqual(second.status, 0, second.stderr)
        let a = try SafetensorsFile.read("\(dir)/full.safetensors"), b = try SafetensorsFile.read("\(dir)/resumed.safetensors")
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for key in a.keys { XCTAssertEqual(a[key]!.data.map(\.bitPattern), b[key]!.data.map(\.bitPattern), key) }
    }

    func testBadTrainingInputsAreReported() throws {
        let dir = try temporaryDirectory()
        try NumpyFile.write(FloatArray(shape: [4, 3, 8, 8], data: Array(repeating: 0, count: 4 * 192)), to: "\(dir)/x.npy")
        try NumpyFile.writeLabels([0, 1, 0, 1], to: "\(dir)/y.npy")
        let r = try runCNNC(["train", examplePath("lenet"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: the data has samples of 3x8x8, network 'lenet' takes 1x28x28"), r.stderr)
        let f = try runCNNC(["train", examplePath("lenet"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy", "--freeze", "nope"])
        XCTAssertEqual(f.status, 1)
        XCTAssertEqual(f.stderr, "error: --freeze names 'nope', which is not a layer of 'lenet'\n")
    }

    func testShortFashionMNISTRun() throws {
        let data = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: "\(data)/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed")
        }
        // 200 steps of the PyTorch recipe (batch 64, lr 0.01, momentum 0.9, wd 5e-4): a third of
        // an epoch, enough to be far above chance on the full test set.
        let r = try runCNNC(["train", examplePath("lenet"), "--data", data, "--epochs", "1", "--steps", "200",
                             "--batch", "64", "--lr", "0.01", "--momentum", "0.9", "--weight-decay", "5e-4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        guard let range = r.stdout.range(of: "test accuracy ") else { return XCTFail(r.stdout) }
        let accuracy = Double(r.stdout[range.upperBound...].prefix { $0 != "%" }) ?? 0
        XCTAssertGreaterThan(accuracy, 65, r.stdout)
    }
}

final class RandomWeightTrainingTests: XCTestCase {
    /// Random parameters (batch-norm scales away from 1, variances positive) as a weights file.
    func writeRandomWeights(_ graph: Graph, to path: String, seed: UInt64) throws {
        let tensors = graph.parameters().map { spec -> (String, FloatArray) in
            let data = (0..<spec.count).map { i -> Float in
                let u = SeededInit.uniform(seed: seed, name: spec.name, index: i)
                switch spec.role {
                case "running_var": return Float(0.5 + u)
                case "weight" where spec.shape.count == 1: return Float(0.5 + u)
                default: return Float((u - 0.5) * (spec.initializer.bound ?? 0.4))
                }
            }
            return (spec.name, FloatArray(shape: spec.shape, data: data))
        }
        try SafetensorsFile.write(tensors, to: path)
    }

    func testOneStepWithRandomBatchNormParameters() throws {
        for name in ["densenet_small", "resnet20"] {
            let model = try ModelLoader.load(examplePath(name))
            let dir = try temporaryDirectory()
            try writeRandomWeights(model.graph, to: "\(dir)/w.safetensors", seed: 5)
            var o = TrainCheckOptions()
            o.batch = 3
            o.steps = 1
            o.weights = "\(dir)/w.safetensors"
            let (report, passed) = try TrainChecker.check(model, options: o)
            XCTAssertTrue(passed, report)
        }
    }
}

final class TransferLearningTests: XCTestCase {
    /// `frozen=true` in `.net` freezes like `--freeze`; `--weights --partial` loads what
    /// matches and reports the rest by name, which keeps its seeded initialization.
    func testFrozenKeyAndPartialWeights() throws {
        let dir = try temporaryDirectory()
        let base = """
            network tl
            input image shape=1x28x28
            conv c1 filters=4 size=5 pad=2 frozen=true
            relu
            maxpool size=2
            dense f1 units=16
            relu

            """
        try (base + "dense head units=10\n").write(toFile: "\(dir)/a.net", atomically: true, encoding: .utf8)
        try (base + "dense head units=3\n").write(toFile: "\(dir)/b.net", atomically: true, encoding: .utf8)
        let model = try ModelLoader.load("\(dir)/a.net")
        XCTAssertEqual(model.graph.frozen, ["c1"])
        var o = TrainCheckOptions()
        o.batch = 3
        let (report, passed) = try TrainChecker.check(model, options: o)
        XCTAssertTrue(passed, report)
        XCTAssertFalse(report.contains("c1.weight gradient"), report)

        var x: [Float] = [], y: [Int] = []
        for i in 0..<32 {
            for j in 0..<784 { x.append(Float((i * 31 + j * 7) % 17) / 17) }
            y.append(i % 3)
        }
        try NumpyFile.write(FloatArray(shape: [32, 1, 28, 28], data: x), to: "\(dir)/x.npy")
        try NumpyFile.writeLabels(y, to: "\(dir)/y.npy")
        let data = ["--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy", "--batch", "8", "--epochs", "1", "--seed", "3"]
        let first = try runCNNC(["train", "\(dir)/a.net"] + data + ["--save", "\(dir)/a.safetensors"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let a = try SafetensorsFile.read("\(dir)/a.safetensors")
        let fresh = Weights.seeded(model.graph, seed: 3)
        XCTAssertEqual(a["c1.weight"]!.data, fresh["c1.weight"]!.data.map(Float.init), "a frozen layer must not move")
        XCTAssertNotEqual(a["f1.weight"]!.data, fresh["f1.weight"]!.data.map(Float.init))

        // A new 3-class head on the trained body: everything but the head loads.
        let second = try runCNNC(["train", "\(dir)/b.net"] + data + ["--weights", "\(dir)/a.safetensors", "--partial",
                                                                        "--save", "\(dir)/b.safetensors"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("loaded 4 of 6 tensors"), second.stdout)
        XCTAssertTrue(second.stdout.contains("head.weight: the file has shape [10, 16], the network [3, 16]"), second.stdout)
        let b = try SafetensorsFile.read("\(dir)/b.safetensors")
        XCTAssertEqual(b["c1.weight"]!.data, a["c1.weight"]!.data)
        // Without --partial the mismatch is an error naming the tensor and both shapes.
        let strict = try runCNNC(["train", "\(dir)/b.net"] + data + ["--weights", "\(dir)/a.safetensors"])
        XCTAssertNotEqual(strict.status, 0)
        XCTAssertTrue(strict.stderr.contains("head.weight"), strict.stderr)
    }
}
