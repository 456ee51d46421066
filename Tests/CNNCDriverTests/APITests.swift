// The generated C API used from C: bad weights files, batch bounds, bad pointers, and a
// save/load round trip (Fixtures/api_test.c), built normally and with the sanitizers. Also
// a user program built with the documented command line.

import CNNCDriver
import Foundation
import XCTest

final class APITests: XCTestCase {
    func buildAndRun(sanitize: Bool) throws {
        let dir = try temporaryDirectory()
        let model = try ModelLoader.load(examplePath("lenet"))
        _ = try CompileCommand.run(model, output: "\(dir)/lenet.c", batch: 2, prefix: nil, seed: 3, writeRuntime: true)
        try FileManager.default.copyItem(atPath: "\(repoRoot)/Tests/CNNCDriverTests/Fixtures/api_test.c",
                                         toPath: "\(dir)/api_test.c")
        let extra = sanitize ? ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"] : []
        try Toolchain(extraFlags: extra).build(sources: ["lenet.c", "cnnc_runtime.c", "api_test.c"],
                                               output: "\(dir)/api_test", in: dir)
        let result = try Shell.run(["\(dir)/api_test", dir], in: dir)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("api: 29 passed, 0 failed"), result.output)
    }

    func testAPIErrorsAndRoundTrip() throws { try buildAndRun(sanitize: false) }

    func testAPIUnderSanitizers() throws { try buildAndRun(sanitize: true) }

    func testLeNetExampleProgramBuildsWithDocumentedCommand() throws {
        let dir = try temporaryDirectory()
        let compile = try runCNNC([examplePath("lenet"), "-o", "\(dir)/lenet.c", "--batch", "4"])
        XCTAssertEqual(compile.status, 0, compile.stderr)
        for file in ["lenet.c", "lenet.h", "cnnc_runtime.c", "cnnc_runtime.h"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(file)"), file)
        }
        // Images: 5 samples as a .npy, so the test needs no data set.
        let images = FloatArray(shape: [5, 1, 28, 28], data: (0..<(5 * 784)).map { Float($0 % 255) / 255 })
        try NumpyFile.write(images, to: "\(dir)/images.npy")
        for cc in ["gcc", "clang"] {
            let build = try Shell.run([cc, "-std=c11", "-O3", "-march=native", "-fopenmp", "-Wall", "-Wextra", "-Werror",
                                       "-I\(dir)", "\(repoRoot)/Examples/lenet/main.c", "\(dir)/lenet.c",
                                       "\(dir)/cnnc_runtime.c", "-lz", "-lm", "-o", "\(dir)/lenet-\(cc)"])
            XCTAssertEqual(build.status, 0, "\(cc): \(build.output)")
            let run = try Shell.run(["\(dir)/lenet-\(cc)", "--npy", "\(dir)/images.npy"])
            XCTAssertEqual(run.status, 0, run.output)
            XCTAssertTrue(run.output.contains("image 4: predicted"), run.output)
        }
    }
}

final class EmbeddedWeightsTests: XCTestCase {
    func testEmbeddedWeightsGiveTheSamePredictionsAsLoadedOnes() throws {
        let dir = try temporaryDirectory()
        let model = try ModelLoader.load(examplePath("lenet"))
        let tensors = model.graph.parameters().map { spec in
            (spec.name, FloatArray(shape: spec.shape, data: (0..<spec.count).map { Float(($0 * 7919 + spec.count) % 200 - 100) / 500 }))
        }
        try SafetensorsFile.write(tensors, to: "\(dir)/w.safetensors")
        let r = try runCNNC([examplePath("lenet"), "-o", "\(dir)/lenet.c", "--batch", "4", "--weights", "\(dir)/w.safetensors",
                             "--embed-weights"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let images = FloatArray(shape: [6, 1, 28, 28], data: (0..<(6 * 784)).map { Float(($0 * 31) % 255) / 255 })
        try NumpyFile.write(images, to: "\(dir)/x.npy")
        let build = try Shell.run(["cc", "-std=c11", "-O2", "-fopenmp", "-Wall", "-Wextra", "-Werror", "-I\(dir)",
                                   "\(repoRoot)/Examples/lenet/main.c", "lenet.c", "lenet_weights.S", "cnnc_runtime.c",
                                   "-lz", "-lm", "-o", "lenet"], in: dir)
        XCTAssertEqual(build.status, 0, build.output)
        let embedded = try Shell.run(["\(dir)/lenet", "--npy", "x.npy"], in: dir)
        let loaded = try Shell.run(["\(dir)/lenet", "--npy", "x.npy", "--weights", "w.safetensors"], in: dir)
        XCTAssertEqual(embedded.status, 0, embedded.output)
        let predictions = { (s: String) in s.split(separator: "\n").filter { $0.hasPrefix("image ") } }
        XCTAssertEqual(predictions(embedded.output), predictions(loaded.output))
        XCTAssertEqual(predictions(embedded.output).count, 6)
        let missing = try runCNNC([examplePath("lenet"), "-o", "\(dir)/x.c", "--embed-weights"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "error: --embed-weights needs --weights w.safetensors\n")
    }
}
