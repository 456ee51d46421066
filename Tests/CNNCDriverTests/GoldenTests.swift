// Golden end-to-end tests: every example through `cnnc check` (generated C built with the
// real compiler and OpenMP, against the interpreter) at batch 1 and a larger batch, 1 vs 2
// threads bitwise, and an ASan+UBSan build of the small models.

import CNNCBackendC
import CNNCDriver
import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class GoldenTests: XCTestCase {
    func check(_ name: String, batch: Int, sanitize: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try ModelLoader.load(examplePath(name))
        var options = CheckOptions()
        options.batch = batch
        options.sanitize = sanitize
        let (report, passed) = try Checker.check(model, options: options)
        XCTAssertTrue(passed, report, file: file, line: line)
        XCTAssertTrue(report.contains("threads 1 vs 2: bitwise equal PASS"), report, file: file, line: line)
    }

    func testEveryExampleAtBatch1And3() throws {
        for name in smallExamples {
            try check(name, batch: 1)
            try check(name, batch: 3)
        }
    }

    func testSanitizersOnSmallModels() throws {
        for name in ["lenet", "activations", "inception"] {
            try check(name, batch: 2, sanitize: true)
        }
    }

    func testGivenWeightsFileIsUsed() throws {
        // Weights written from the seeded values under another seed: the check must use the
        // file (interpreter and C both), not the seed.
        let model = try ModelLoader.load(examplePath("lenet"))
        let dir = try temporaryDirectory()
        let specs = model.graph.parameters()
        let tensors = specs.map { spec in
            (spec.name, FloatArray(shape: spec.shape, data: (0..<spec.count).map { Float(($0 * 7919) % 200 - 100) / 1000 }))
        }
        try SafetensorsFile.write(tensors, to: "\(dir)/w.safetensors")
        var options = CheckOptions()
        options.weights = "\(dir)/w.safetensors"
        let (report, passed) = try Checker.check(model, options: options)
        XCTAssertTrue(passed, report)
        XCTAssertTrue(report.contains("weights \(dir)/w.safetensors"), report)
    }

    func testComparisonReportsWorstElement() {
        let expected = Tensor(shape: [1, 2, 1, 2], data: [1, 2, 3, 4])
        let actual = FloatArray(shape: [1, 2, 1, 2], data: [1, 2, 3.5, 4])
        let (text, passed, maxAbs) = Checker.compare(name: "y", actual: actual, expected: expected, tolerance: .reduction)
        XCTAssertEqual(maxAbs, 0.5)
        XCTAssertFalse(passed)
        XCTAssertTrue(text.contains("worst (0,1,0,0): C 3.5 vs interpreter 3.0"), text)
        XCTAssertTrue(text.hasSuffix("FAIL"), text)
    }
}

/// Every example under the other pipelines, and seeded random sweeps of convolution
/// parameters through the direct, GEMM and Winograd kernels (the seed is in every failure).
final class PipelineGoldenTests: XCTestCase {
    func testEveryExampleWithO0AndWithoutWinograd() throws {
        for name in smallExamples {
            for (optimize, winograd) in [(false, true), (true, false)] {
                let model = try ModelLoader.load(examplePath(name))
                var options = CheckOptions()
                options.batch = 2
                options.compiler.optimize = optimize
                options.compiler.winograd = winograd
                let (report, passed) = try Checker.check(model, options: options)
                XCTAssertTrue(passed, "\(name) -O\(optimize ? 2 : 0) winograd=\(winograd):\n\(report)")
            }
        }
    }

    /// Networks where concat inputs must be copied (a value in two concats, a network input,
    /// a network output, views) next to ones written in place (nested concats), and kernels in
    /// place (batch norm, relu, prelu, add, softmax, logsoftmax), through every pipeline at
    /// batch 3: the arena is NaN-filled, so a slice nobody wrote or a value overwritten too
    /// early shows up.
    func testConcatAndInPlaceCornerCases() throws {
        let networks = [
            """
            network corner_nested
            input x shape=3x6x6
            conv a filters=4 size=3 pad=1
            conv b filters=2 size=1
            concat c1 from=a,b
            conv d filters=3 size=1 from=x
            concat c2 from=d,a
            batchnorm n1 from=c1
            relu r1
            conv e filters=2 size=3 pad=1
            concat c3 from=c2,e,c1
            batchnorm n3
            relu r3
            global_avgpool g
            dense fc units=5
            softmax prob
            """,
            """
            network corner_edges
            input x shape=2x5x5
            conv a filters=3 size=3 pad=1
            concat c1 from=x,a
            prelu p1
            conv b filters=2 size=1
            conv d filters=2 size=1 from=c1
            add s from=d,b
            tanh t
            flatten fb from=b
            flatten ft from=t
            concat c2 from=fb,ft
            dense fc units=4
            logsoftmax ls
            output ls, b
            """,
            // Outputs that are views of the network input (ONNX's Flatten and Dropout tests).
            """
            network corner_input_views
            input x shape=2x3x3
            dropout d rate=0.5
            flatten f
            dense o units=3
            output o, f, d
            """,
        ]
        let dir = try temporaryDirectory()
        for (k, text) in networks.enumerated() {
            try text.write(toFile: "\(dir)/corner\(k).net", atomically: true, encoding: .utf8)
            let model = try ModelLoader.load("\(dir)/corner\(k).net")
            for (optimize, winograd) in [(true, true), (false, true), (true, false)] {
                var options = CheckOptions()
                options.batch = 3
                options.compiler.optimize = optimize
                options.compiler.winograd = winograd
                let (report, passed) = try Checker.check(model, options: options)
                XCTAssertTrue(passed, "case \(k) -O\(optimize ? 2 : 0) winograd=\(winograd):\n\(report)")
            }
        }
    }

    /// Depthwise layers (stride 1 and 2, a channel multiplier of 2, 5x5 dilated, a batch norm
    /// and ReLU6 folded in, a residual) pick `depthwise` and match the interpreter, bitwise equal
    /// at 1 and 2 threads; also at -O0 (the loop nest) for comparison.
    func testDepthwiseLayersPickTheDepthwiseKernel() throws {
        let dir = try temporaryDirectory()
        let text = """
            network depthwise
            input x shape=6x19x23
            conv d1 filters=6 size=3 pad=1 groups=6 bias=false
            batchnorm bn1
            relu6 r1
            conv d2 filters=12 size=3 stride=2 pad=1 groups=6
            relu r2
            conv d3 filters=12 size=5 pad=4 dilation=2 groups=12
            add s from=d3,r2
            conv d4 filters=12 size=3 stride=2 groups=12 act=leaky_relu:0.1
            output d4
            """
        try text.write(toFile: "\(dir)/dw.net", atomically: true, encoding: .utf8)
        let model = try ModelLoader.load("\(dir)/dw.net")
        let optimized = try CompilerOptions().optimized(model.graph)
        let depthwise = optimized.nodes.compactMap { node -> String? in
            guard case .conv(let a) = node.op, a.algorithm == .depthwise else { return nil }
            return node.name
        }
        XCTAssertEqual(depthwise, ["d1", "d2", "d3", "d4"])
        for optimize in [true, false] {
            for batch in [1, 3] {
                var options = CheckOptions()
                options.batch = batch
                options.compiler.optimize = optimize
                let (report, passed) = try Checker.check(model, options: options)
                XCTAssertTrue(passed, "batch \(batch) -O\(optimize ? 2 : 0):\n\(report)")
            }
        }
    }

    /// F(4x4) numbers its tiles over the batch, so a block spans samples (an 8x7 output has 4
    /// tiles a sample; batch 20 makes blocks of 32, 32 and 16): inputs, outputs and residuals
    /// that are concat slices (sample strides of 336 -> 560, 560 -> 280 with a residual of 560)
    /// match the interpreter at batch 1, 5 and 20, bitwise equal at 1, 2 and 3 threads: one
    /// thread, threads that share a block (fewer blocks than threads: batch 1 and 5) and
    /// threads that take whole blocks (batch 20 at 2 threads).
    func testWinogradBlocksSpanSamplesWithStridedTensors() throws {
        let dir = try temporaryDirectory()
        try """
            network wino_batch
            input x shape=6x8x7
            conv a filters=5 size=3 pad=1 algorithm=winograd4x4
            conv b filters=5 size=3 pad=1 algorithm=winograd4x4 from=x
            concat c from=a,b
            conv d filters=5 size=3 pad=1 algorithm=winograd4x4 from=c
            add s from=d,a
            relu r
            output r, c
            """.write(toFile: "\(dir)/wino.net", atomically: true, encoding: .utf8)
        let model = try ModelLoader.load("\(dir)/wino.net")
        for batch in [1, 5, 20] {
            var options = CheckOptions()
            options.batch = batch
            options.threads = [1, 2, 3]
            let (report, passed) = try Checker.check(model, options: options)
            XCTAssertTrue(passed, "batch \(batch):\n\(report)")
        }
        let c = CEmitter.emit(try CompilerOptions().optimized(model.graph, batch: 5),
                              options: COptions(prefix: "wino_batch", maxBatch: 5, headerName: "w.h", sourceName: "w.c"))
        XCTAssertTrue(c.source.contains("enum { IS = 560, OS = 280, RS = 560 }; /* sample strides */"), "the fused residual is a concat slice")
        XCTAssertEqual(c.source.components(separatedBy: "cnnc_winograd_f4_input(&geometry, in, IS, t0, nt, 0, C, v);").count - 1, 3)
        XCTAssertEqual(c.source.components(separatedBy: "cnnc_winograd_f4_input(&geometry, in, IS, t0, nt, c0, c1, v);").count - 1, 3)
    }

    func testSeededConvolutionSweep() throws {
        var state: UInt64 = 20261125
        func next(_ n: Int) -> Int {
            state = SeededInit.splitmix64(state)
            return Int(state % UInt64(n))
        }
        let dir = try temporaryDirectory()
        for case_ in 0..<18 {
            let seed = state
            let c = 1 + next(12), k = 1 + next(12), h = 1 + next(11), w = 1 + next(11)
            let winograd = case_ % 3 != 2
            let size = winograd ? 3 : 1 + next(4)
            let stride = winograd ? 1 : 1 + next(2)
            let dilation = winograd ? 1 : 1 + next(2)
            let groups = winograd ? 1 : [1, 1, c][next(3)]
            let filters = groups == 1 ? k : groups * (1 + next(2))
            let pad = next(size)
            let algorithm = winograd ? (case_ % 3 == 0 ? "winograd2x2" : "winograd4x4") : (case_ % 2 == 0 ? "gemm" : groups == c && groups > 1 ? "depthwise" : "direct")
            let text = """
                network sweep
                input x shape=\(c)x\(h)x\(w)
                conv y filters=\(filters) size=\(size) stride=\(stride) pad=\(pad) dilation=\(dilation) groups=\(groups) algorithm=\(algorithm) act=relu
                """
            try text.write(toFile: "\(dir)/sweep.net", atomically: true, encoding: .utf8)
            let model: LoadedModel
            do { model = try ModelLoader.load("\(dir)/sweep.net") } catch {
                continue  // a window larger than the padded input: not a convolution to test
            }
            var options = CheckOptions()
            options.batch = 2
            options.seed = seed
            let (report, passed) = try Checker.check(model, options: options)
            XCTAssertTrue(passed, "sweep case \(case_) (seed \(seed)):\n\(text)\n\(report)")
        }
    }
}
