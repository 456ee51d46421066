// `cnnc visualize`: every subcommand run through the built cnnc on LeNet (.net and its ONNX
// export); every PNG is checked by pngcheck and decoded by an independent libpng program
// (Fixtures/png_tool.c) to check its size and content; errors name what exists.

import CNNCDriver
import CNNCInterpreter
import CNNCIR
import Foundation
import XCTest

/// A decoded 8-bit PNG.
struct DecodedPNG {
    var width: Int
    var height: Int
    var channels: Int
    var pixels: [UInt8]

    func pixel(_ x: Int, _ y: Int) -> [UInt8] {
        let i = (y * width + x) * channels
        return Array(pixels[i..<(i + channels)])
    }
}

/// pngcheck and the test's own libpng decoder/encoder.
enum PNGTool {
    static func executable() throws -> String {
        let path = "\(FileManager.default.temporaryDirectory.path)/cnnc-test-png_tool-\(ProcessInfo.processInfo.processIdentifier)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        let r = try Shell.run(["cc", "-O1", "\(repoRoot)/Tests/CNNCDriverTests/Fixtures/png_tool.c", "-lpng", "-o", path])
        guard r.status == 0 else { throw XCTSkip("cannot build png_tool (libpng-dev missing?): \(r.output)") }
        return path
    }

    /// Checks the file with pngcheck, then decodes it.
    static func decode(_ file: String, line: UInt = #line) throws -> DecodedPNG {
        let check = try Shell.run(["pngcheck", file])
        XCTAssertEqual(check.status, 0, "pngcheck: \(check.output)", line: line)
        let raw = file + ".raw"
        let r = try Shell.run([try executable(), "decode", file, raw])
        guard r.status == 0 else { throw DriverError("png_tool decode \(file): \(r.output)") }
        let header = r.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let pixels = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
        XCTAssertEqual(pixels.count, header[0] * header[1] * header[2], line: line)
        return DecodedPNG(width: header[0], height: header[1], channels: header[2], pixels: pixels)
    }

    static func encode(_ file: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        let raw = file + ".raw"
        try Data(pixels).write(to: URL(fileURLWithPath: raw))
        let r = try Shell.run([try executable(), "encode", file, "\(width)", "\(height)", "\(channels)", raw])
        guard r.status == 0 else { throw DriverError("png_tool encode \(file): \(r.output)") }
    }
}

final class VisualizeTests: XCTestCase {
    let lenet = examplePath("lenet")

    /// LeNet's parameters with filter k of c1 holding (k+1) * (i - 12) / 100 at position i
    /// (i = 0..24, row-major); everything else small and seeded.
    func writeKnownWeights(_ path: String) throws {
        let graph = try ModelLoader.load(lenet).graph
        var tensors: [(name: String, array: FloatArray)] = []
        for p in graph.parameters() {
            var data: [Float] = (0..<p.count).map { i in Float((i * 7919) % 101 - 50) / 1000 }
            if p.name == "c1.weight" { data = (0..<p.count).map(knownFilterValue) }
            tensors.append((p.name, FloatArray(shape: p.shape, data: data)))
        }
        try SafetensorsFile.write(tensors, to: path)
    }

    /// Element i of c1.weight in writeKnownWeights: filter i / 25, position i % 25.
    func knownFilterValue(_ i: Int) -> Float {
        let k = Float(i / 25 + 1), offset = Float(i % 25 - 12)
        return k * offset / 100
    }

    func testFiltersFollowTheStatedNormalization() throws {
        let dir = try temporaryDirectory()
        try writeKnownWeights("\(dir)/w.safetensors")
        let r = try runCNNC(["visualize", "filters", lenet, "--layer", "c1", "--weights", "w.safetensors", "-o", "f.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        XCTAssertTrue(r.stdout.contains("6 filters of 1x5x5, one gray tile each, 3 columns x 2 rows, each tile 5x5 at 10x"), r.stdout)
        XCTAssertTrue(r.stdout.contains("each filter scaled by its own largest |w|"), r.stdout)
        let png = try PNGTool.decode("\(dir)/f.png")
        // 3 columns and 2 rows of 50x50 cells with gaps of 2 pixels
        XCTAssertEqual([png.width, png.height, png.channels], [2 + 3 * 52, 2 + 2 * 52, 3])
        for k in 0..<6 {
            let m = Float(k + 1) * 12 / 100
            for i in 0..<25 {
                let w = knownFilterValue(k * 25 + i)
                let t: Float = (w + m) / (2 * m)
                let expected = Int((255 * t).rounded())
                // the centre of the 10x10 block of filter pixel (i / 5, i % 5)
                let x = 2 + (k % 3) * 52 + (i % 5) * 10 + 5, y = 2 + (k / 3) * 52 + (i / 5) * 10 + 5
                let p = png.pixel(x, y)
                XCTAssertEqual(p[0], p[1]); XCTAssertEqual(p[1], p[2])
                XCTAssertLessThanOrEqual(abs(Int(p[0]) - expected), 1, "filter \(k) pixel \(i): \(p[0]) vs \(expected)")
            }
            // -max|w| is black and +max|w| white in every tile; 0 is mid-gray
            XCTAssertEqual(png.pixel(2 + (k % 3) * 52, 2 + (k / 3) * 52)[0], 0)
            XCTAssertEqual(png.pixel(2 + (k % 3) * 52 + 49, 2 + (k / 3) * 52 + 49)[0], 255)
            XCTAssertEqual(png.pixel(2 + (k % 3) * 52 + 25, 2 + (k / 3) * 52 + 25)[0], 128)
        }
        // c2 (6 input channels): a row of 6 gray tiles per output channel
        let c2 = try runCNNC(["visualize", "filters", lenet, "--layer", "c2", "-o", "\(dir)/c2.png"])
        XCTAssertEqual(c2.status, 0, c2.stderr)
        let g = try PNGTool.decode("\(dir)/c2.png")
        XCTAssertEqual([g.width, g.height], [2 + 6 * 52, 2 + 16 * 52])
    }

    func testFiltersOfTheONNXExportAreTheSame() throws {
        let dir = try temporaryDirectory()
        try writeKnownWeights("\(dir)/w.safetensors")
        let export = try runCNNC(["export", lenet, "--weights", "\(dir)/w.safetensors", "-o", "\(dir)/lenet.onnx"])
        XCTAssertEqual(export.status, 0, export.stderr)
        let r = try runCNNC(["visualize", "filters", "\(dir)/lenet.onnx", "--layer", "c1", "-o", "\(dir)/onnx.png"])
        guard r.status == 0 else { return XCTFail(r.stderr) }
        let n = try runCNNC(["visualize", "filters", lenet, "--layer", "c1", "--weights", "\(dir)/w.safetensors", "-o", "\(dir)/net.png"])
        XCTAssertEqual(n.status, 0, n.stderr)
        XCTAssertEqual(try PNGTool.decode("\(dir)/onnx.png").pixels, try PNGTool.decode("\(dir)/net.png").pixels)
    }

    func testCurvesPlotTheTrainingLog() throws {
        let dir = try temporaryDirectory()
        var csv = "epoch,step,loss,accuracy,lr,test_loss,test_accuracy,images_per_second,seconds\n"
        for step in 1...12 {
            let end = step % 4 == 0
            csv += "\((step - 1) / 4 + 1),\(step * 10),\(2.0 / Double(step)),\(0.5 + 0.03 * Double(step)),0.01,"
            csv += end ? "\(2.2 / Double(step)),\(0.45 + 0.03 * Double(step))," : ",,"
            csv += "100,\(step)\n"
        }
        try csv.write(toFile: "\(dir)/log.csv", atomically: true, encoding: .utf8)
        let r = try runCNNC(["visualize", "curves", "log.csv", "-o", "curves.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        XCTAssertTrue(r.stdout.hasSuffix("""
            (960x360): 12 rows, 3 epochs, steps 10 to 120
            last row: train loss 0.1667, train accuracy 86.00%, test loss 0.1833, test accuracy 81.00%

            """), r.stdout)
        let png = try PNGTool.decode("\(dir)/curves.png")
        XCTAssertEqual([png.width, png.height, png.channels], [960, 360, 3])
        // both panels hold the running training line (light blue), the epoch training line
        // (blue) and the test line (orange); the axes' text is dark gray
        for panel in 0..<2 {
            var colours: [[UInt8]: Int] = [:]
            for y in 26..<(360 - 42) {
                for x in (panel * 480 + 64)..<(panel * 480 + 480 - 14) { colours[png.pixel(x, y), default: 0] += 1 }
            }
            XCTAssertGreaterThan(colours[[140, 180, 225]] ?? 0, 50, "panel \(panel)")
            XCTAssertGreaterThan(colours[[31, 119, 180]] ?? 0, 50, "panel \(panel)")
            XCTAssertGreaterThan(colours[[230, 110, 20]] ?? 0, 50, "panel \(panel)")
        }
        var text = 0
        for y in 0..<360 { for x in 0..<64 where png.pixel(x, y) == [40, 40, 40] { text += 1 } }
        XCTAssertGreaterThan(text, 100, "tick labels and the y-axis label")

        try "epoch,step\n1,2\n".write(toFile: "\(dir)/bad.csv", atomically: true, encoding: .utf8)
        let bad = try runCNNC(["visualize", "curves", "bad.csv", "-o", "x.png"], in: dir)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("bad.csv:1: no column 'loss'"), bad.stderr)
    }

    /// Mistakes are caught before anything is built, naming what exists.
    func testErrorsNameWhatExists() throws {
        let dir = try temporaryDirectory()
        try NumpyFile.write(FloatArray(shape: [2, 3, 28, 28], data: Array(repeating: 0, count: 2 * 3 * 784)), to: "\(dir)/rgb.npy")
        try NumpyFile.write(FloatArray(shape: [2, 1, 28, 28], data: Array(repeating: 0, count: 2 * 784)), to: "\(dir)/two.npy")
        try PNGTool.encode("\(dir)/rgb.png", width: 28, height: 28, channels: 3, pixels: Array(repeating: 9, count: 28 * 28 * 3))
        try PNGTool.encode("\(dir)/big.png", width: 32, height: 30, channels: 1, pixels: Array(repeating: 9, count: 32 * 30))
        let layers = "image, c1, relu_1, maxpool_1, c2, relu_2, maxpool_2, f1, relu_3, f2, relu_4, logits"
        let cases: [([String], String)] = [
            (["filters", lenet, "--layer", "c3", "-o", "x.png"], "error: network 'lenet' has no layer 'c3'; its layers: \(layers)"),
            (["filters", lenet, "--layer", "f1", "-o", "x.png"], "error: layer 'f1' is dense, not conv; filters takes a conv layer: c1, c2"),
            (["filters", lenet, "--layer", "c1", "-o", "x.jpg"], "Error: -o must name a .png file, got 'x.jpg'"),
            (["activations", lenet, "--layer", "c2", "-o", "x.png"],
             "error: give an input: --input IMG (.npy or .png) or --data DIR --index I"),
            (["activations", lenet, "--layer", "c2", "--input", "rgb.npy", "-o", "x.png"],
             "error: rgb.npy has shape (2,3,28,28); network 'lenet' takes (1,28,28) or (N,1,28,28)"),
            (["activations", lenet, "--layer", "c2", "--input", "two.npy", "--index", "2", "-o", "x.png"],
             "error: --index 2 is out of range: two.npy holds 2 inputs"),
            (["saliency", lenet, "--input", "rgb.png", "-o", "x.png"],
             "error: rgb.png is RGB (3 channels); network 'lenet' takes 1x28x28 inputs (gray)"),
            (["saliency", lenet, "--input", "big.png", "-o", "x.png"],
             "error: big.png is 32x30 pixels; network 'lenet' takes 28x28 (add --resize to resize it)"),
            (["saliency", lenet, "--input", "two.npy", "--class", "10", "-o", "x.png"],
             "error: class 10 does not exist: network 'lenet' has 10 classes (0 to 9, the scores of 'logits')"),
            (["saliency", lenet, "--input", "two.npy", "--class", "1,2,3", "-o", "x.png"],
             "error: --class lists 3 classes for 2 inputs: give one class for all or one per input"),
            (["class-image", lenet, "--class", "3,10", "-o", "x.png"],
             "error: class 10 does not exist: network 'lenet' has 10 classes (0 to 9, the scores of 'logits')"),
            (["top-images", lenet, "--layer", "c2", "--channel", "16", "--data", ".", "-o", "x.png"],
             "error: --channel 16 is out of range: layer 'c2' has 16 channels (0 to 15)"),
            (["top-images", lenet, "--layer", "f2", "--channel", "84", "--data", ".", "-o", "x.png"],
             "error: --channel 84 is out of range: layer 'f2' has 84 units (0 to 83)"),
            (["adversarial", lenet, "--input", "two.npy", "--epsilon", "0", "-o", "x.png"], "error: --epsilon must be positive, got 0.0"),
            (["adversarial", lenet, "--input", "two.npy", "--epsilon", "0.1", "--label", "12", "-o", "x.png"],
             "error: class 12 does not exist: network 'lenet' has 10 classes (0 to 9, the scores of 'logits')"),
            (["curves", "missing.csv", "-o", "x.png"], "error: cannot read 'missing.csv'"),
        ]
        for (args, message) in cases {
            let r = try runCNNC(["visualize"] + args, in: dir)
            XCTAssertEqual(r.status, message.hasPrefix("Error:") ? 64 : 1, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.hasPrefix(message), "\(args.joined(separator: " ")):\n\(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/x.png"))
        }
    }

    // MARK: the subcommands that run the network (taps and input gradients)

    /// Seeded LeNet (seed 0, what `cnnc visualize` uses without --weights) in the interpreter.
    func interpreter() throws -> Interpreter {
        let graph = try ModelLoader.load(lenet).graph
        return try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 0))
    }

    /// n seeded images of 1x28x28 in [0.2, 0.8] (away from the clipping range's ends).
    func images(_ n: Int, seed: UInt64) -> FloatArray {
        var state = seed
        let data: [Float] = (0..<(n * 784)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return 0.2 + 0.6 * Float(state >> 40) / Float(1 << 24)
        }
        return FloatArray(shape: [n, 1, 28, 28], data: data)
    }

    func tensor(_ a: FloatArray) -> Tensor { Tensor(shape: a.shape, data: a.data.map(Double.init)) }

    /// Gray level of v on the scale lo..hi, as the picture unit draws it.
    func gray(_ v: Double, _ lo: Double, _ hi: Double) -> Int { Int((255 * Float((v - lo) / (hi - lo))).rounded()) }

    func testActivationsAreTheLayersValues() throws {
        let dir = try temporaryDirectory()
        let x = images(2, seed: 5)
        try NumpyFile.write(x, to: "\(dir)/x.npy")
        let r = try runCNNC(["visualize", "activations", lenet, "--layer", "c1", "--input", "x.npy", "--index", "1", "-o", "a.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        XCTAssertTrue(r.stdout.contains("layer c1 (conv), 6 maps of 28x28, 3 columns x 2 rows at 3x"), r.stdout)
        let png = try PNGTool.decode("\(dir)/a.png")
        XCTAssertEqual([png.width, png.height], [2 + 3 * 86, 2 + 2 * 86])
        // every pixel of every map against the interpreter, on the layer's one scale
        let one = FloatArray(shape: [1, 1, 28, 28], data: Array(x.data[784...]))
        let c1 = try interpreter().run(["image": tensor(one)])["c1"]!.data
        let lo = min(0, c1.min()!), hi = c1.max()!
        var worst = 0
        for c in 0..<6 {
            for y in 0..<28 {
                for x in 0..<28 {
                    let p = png.pixel(2 + (c % 3) * 86 + x * 3 + 1, 2 + (c / 3) * 86 + y * 3 + 1)
                    worst = max(worst, abs(Int(p[0]) - gray(c1[(c * 28 + y) * 28 + x], lo, hi)))
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "largest difference in gray levels")
        // a dense layer: its 120 units in an 11x11 square
        let f = try runCNNC(["visualize", "activations", lenet, "--layer", "f1", "--input", "x.npy", "--index", "0", "-o", "f.png"], in: dir)
        XCTAssertEqual(f.status, 0, f.stderr)
        XCTAssertTrue(f.stdout.contains("layer f1 (dense), 120 units in a 11x11 square"), f.stdout)
        XCTAssertEqual(try PNGTool.decode("\(dir)/f.png").width, 2 + 11 * 8 + 2)
    }

    func testTopImagesRankTheDataSetByTheUnit() throws {
        let dir = try temporaryDirectory()
        let x = images(24, seed: 9)
        try NumpyFile.write(x, to: "\(dir)/x.npy")
        try NumpyFile.writeLabels((0..<24).map { $0 % 10 }, to: "\(dir)/y.npy")
        let r = try runCNNC(["visualize", "top-images", lenet, "--layer", "c2", "--channel", "3", "--count", "4", "--batch", "2",
                             "--data", "x.npy", "--labels", "y.npy", "-o", "top.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        XCTAssertTrue(r.stdout.contains("top-images: 24/24 images (100%)"), r.stdout)
        // the ranking is the interpreter's: the largest value of channel 3 over positions
        let c2 = try interpreter().run(["image": tensor(x)])["c2"]!.data
        let best = (0..<24).map { i in (0..<100).map { c2[(i * 16 + 3) * 100 + $0] }.max()! }
        let expected = (0..<24).sorted { best[$0] > best[$1] }.prefix(4)
        let listed = r.stdout.split(separator: "\n").filter { $0.contains(". image ") }
            .compactMap { Int($0.split(separator: " ")[2]) }
        XCTAssertEqual(listed, Array(expected), r.stdout)
        // 2 x 2 cells of (image | crop) at 3x; the first cell's image is the top image itself
        let png = try PNGTool.decode("\(dir)/top.png")
        XCTAssertEqual([png.width, png.height], [4 + 2 * (2 * 84 + 4 + 4), 4 + 2 * 88])
        var red = 0, same = 0
        for y in 0..<84 {
            for xx in 0..<84 {
                let p = png.pixel(4 + xx, 4 + y)
                if p == [230, 30, 30] { red += 1; continue }
                let v = Double(x.data[expected.first! * 784 + (y / 3) * 28 + xx / 3])
                if abs(Int(p[0]) - gray(v, 0, 1)) <= 1 { same += 1 }
            }
        }
        XCTAssertGreaterThan(red, 100, "the receptive field's frame")
        XCTAssertEqual(red + same, 84 * 84)
        // a dense unit: cells are the images alone
        let d = try runCNNC(["visualize", "top-images", lenet, "--layer", "f2", "--channel", "7", "--count", "3", "--batch", "2",
                             "--data", "x.npy", "--labels", "y.npy", "-o", "dense.png"], in: dir)
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertEqual(try PNGTool.decode("\(dir)/dense.png").width, 4 + 2 * 88)
    }

    func testSaliencyIsTheInterpretersInputGradient() throws {
        let dir = try temporaryDirectory()
        let x = images(2, seed: 3)
        try NumpyFile.write(x, to: "\(dir)/x.npy")
        let r = try runCNNC(["visualize", "saliency", lenet, "--input", "x.npy", "--class", "3,7", "--save-gradient", "g.npy",
                             "-o", "s.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        XCTAssertTrue(r.stdout.contains("input 1: class 7 score"), r.stdout)
        let g = try NumpyFile.read("\(dir)/g.npy")
        XCTAssertEqual(g.shape, [2, 1, 28, 28])
        var weights = Tensor(zeros: [2, 10])
        weights.data[3] = 1
        weights.data[17] = 1
        let expected = try interpreter().inputGradient(inputs: ["image": tensor(x)], output: "logits", outputWeights: weights)["image"]!.data
        // tolerance `gradient`: float32 sums in another order than the interpreter's Double ones
        let scale = expected.map(abs).max()!
        let excess = expected.indices.map { abs(Double(g.data[$0]) - expected[$0]) - (1e-5 * scale + 1e-4 * abs(expected[$0])) }
        let worst = excess.indices.max { excess[$0] < excess[$1] }!
        XCTAssertLessThanOrEqual(excess[worst], 0, "worst element (\(worst / 784),0,\(worst % 784 / 28),\(worst % 28)): cnnc \(g.data[worst]), interpreter \(expected[worst])")
        // per row: the image, then |gradient| in viridis scaled by its own largest value
        let png = try PNGTool.decode("\(dir)/s.png")
        XCTAssertEqual([png.width, png.height], [4 + 2 * 116, 4 + 2 * 116])
        for n in 0..<2 {
            let map = (0..<784).map { abs(g.data[n * 784 + $0]) }
            let peak = map.indices.max { map[$0] < map[$1] }!
            XCTAssertEqual(png.pixel(4 + 116 + (peak % 28) * 4 + 2, 4 + n * 116 + (peak / 28) * 4 + 2), [253, 231, 37], "yellow at the peak")
            let low = map.indices.min { map[$0] < map[$1] }!
            let p = png.pixel(4 + 116 + (low % 28) * 4 + 2, 4 + n * 116 + (low / 28) * 4 + 2)
            XCTAssertTrue(p[2] > p[1] && p[0] < 80, "dark purple at the smallest value, got \(p)")
        }
    }

    func testClassImageRaisesTheScore() throws {
        let dir = try temporaryDirectory()
        let r = try runCNNC(["visualize", "class-image", lenet, "--class", "0,1", "--steps", "20", "--lr", "0.5", "--blur", "0.5",
                             "--jitter", "1", "--start", "noise", "--seed", "3", "-o", "c.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        for k in 0..<2 {
            let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("class \(k): score ") }, r.stdout)
            let numbers = line.split(whereSeparator: { " (),".contains($0) }).compactMap { Double($0) }
            XCTAssertGreaterThan(numbers[0], numbers[1] + 0.25, "score after vs before: \(line)")
        }
        let png = try PNGTool.decode("\(dir)/c.png")
        XCTAssertEqual([png.width, png.height], [4 + 2 * 116, 4 + 116])
    }

    func testAdversarialPerturbsByEpsilonAndReportsFlips() throws {
        let dir = try temporaryDirectory()
        let x = images(2, seed: 4)
        try NumpyFile.write(x, to: "\(dir)/x.npy")
        let r = try runCNNC(["visualize", "adversarial", lenet, "--input", "x.npy", "--epsilon", "0.1", "-o", "adv.png"], in: dir)
        guard r.status == 0 else { return XCTFail(r.stderr) }
        XCTAssertTrue(r.stdout.contains("input 0 (true class "), r.stdout)
        XCTAssertTrue(r.stdout.contains("after FGSM at epsilon 0.1: predicted"), r.stdout)
        // original | perturbation | adversarial: the perturbation is +-epsilon (white or black) and
        // the adversarial image differs from the original by 0.1 * 255 where it is
        let png = try PNGTool.decode("\(dir)/adv.png")
        XCTAssertEqual([png.width, png.height], [4 + 3 * 116, 4 + 2 * 116])
        var signs = 0
        for n in 0..<2 {
            for i in 0..<784 {
                let y = 4 + n * 116 + (i / 28) * 4 + 2, xx = (i % 28) * 4 + 2
                let o = Int(png.pixel(4 + xx, y)[0]), d = Int(png.pixel(4 + 116 + xx, y)[0]), a = Int(png.pixel(4 + 232 + xx, y)[0])
                XCTAssertTrue([0, 128, 255].contains(d), "perturbation pixel \(d)")
                if d == 255 { XCTAssertLessThanOrEqual(abs(a - o - 26), 1); signs += 1 }
                if d == 0 { XCTAssertLessThanOrEqual(abs(o - a - 26), 1); signs += 1 }
            }
        }
        XCTAssertGreaterThan(signs, 1000)
        // over a data set (labels = the interpreter's predictions, so every image starts correct)
        let many = images(20, seed: 8)
        try NumpyFile.write(many, to: "\(dir)/many.npy")
        let scores = try interpreter().run(["image": tensor(many)])["logits"]!.data
        let labels = (0..<20).map { i in (0..<10).max { scores[i * 10 + $0] < scores[i * 10 + $1] }! }
        try NumpyFile.writeLabels(labels, to: "\(dir)/labels.npy")
        let d = try runCNNC(["visualize", "adversarial", lenet, "--data", "many.npy", "--labels", "labels.npy", "--epsilon", "0.2",
                             "--steps", "3", "--batch", "2", "-o", "flipped.png"], in: dir)
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertTrue(d.stdout.contains("iterative FGSM, epsilon 0.2, 3 steps (alpha 0.166667): of 20 test images, 20 classified correctly (100.00%); "),
                      d.stdout)
    }

    /// The same pictures from the ONNX export as from the .net (same weights, same names).
    func testONNXModelGivesTheSamePictures() throws {
        let dir = try temporaryDirectory()
        try NumpyFile.write(images(2, seed: 6), to: "\(dir)/x.npy")
        try NumpyFile.writeLabels([1, 2], to: "\(dir)/y.npy")
        let export = try runCNNC(["export", lenet, "-o", "lenet.onnx"], in: dir)
        XCTAssertEqual(export.status, 0, export.stderr)
        let runs: [[String]] = [
            ["activations", "--layer", "relu_2", "--input", "x.npy", "--index", "0"],
            ["saliency", "--input", "x.npy"],
            ["class-image", "--class", "4,5", "--steps", "5"],
            ["adversarial", "--input", "x.npy", "--epsilon", "0.05", "--steps", "2"],
            ["top-images", "--layer", "maxpool_1", "--channel", "2", "--count", "2", "--batch", "2", "--data", "x.npy", "--labels", "y.npy"],
        ]
        for args in runs {
            let net = try runCNNC(["visualize", args[0], lenet] + args.dropFirst() + ["-o", "net.png"], in: dir)
            let onnx = try runCNNC(["visualize", args[0], "lenet.onnx"] + args.dropFirst() + ["-o", "onnx.png"], in: dir)
            XCTAssertEqual(net.status, 0, net.stderr)
            XCTAssertEqual(onnx.status, 0, onnx.stderr)
            XCTAssertEqual(try PNGTool.decode("\(dir)/onnx.png").pixels, try PNGTool.decode("\(dir)/net.png").pixels, args[0])
        }
    }
}
