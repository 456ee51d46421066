// Shared helpers for the driver tests: paths into the repository and running the built cnnc.

import CNNCDriver
import Foundation
import XCTest

/// The repository root, found from this file's path.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The small examples every golden test runs (the ImageNet-size ones are summary-only).
let smallExamples = ["lenet", "alexnet_small", "vgg11_bn", "resnet20", "densenet_small", "inception", "activations"]

func examplePath(_ name: String) -> String { "\(repoRoot)/Examples/\(name)/model.net" }

/// The built `cnnc` executable beside the test bundle.
func cnncExecutable() throws -> String {
    var dir = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("cnnc").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    throw XCTSkip("cnnc executable not built next to the tests (run `swift build` first)")
}

struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the built cnnc with arguments, in `directory`, with `environment` added to ours.
func runCNNC(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]) throws -> CLIResult {
    try runCollecting(try cnncExecutable(), arguments, in: directory, environment: environment)
}

/// Runs `program` (found on PATH) with arguments; status 127 when it is not installed.
func runProgram(_ program: String, _ arguments: [String]) throws -> CLIResult {
    try runCollecting("/usr/bin/env", [program] + arguments)
}

/// Runs `executable` with arguments, collecting its status, standard output and error.
private func runCollecting(_ executable: String, _ arguments: [String], in directory: String? = nil,
                           environment: [String: String] = [:]) throws -> CLIResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                     stderr: String(decoding: errData, as: UTF8.self))
}

/// A fresh temporary folder for one test.
func temporaryDirectory() throws -> String {
    try WorkDirectory(prefix: "cnnc-test").path
}

/// A tiny separable data set of 1x28x28 images in dir/x.npy and dir/y.npy: the class is the
/// brighter half of the image.
func writeToyData(_ dir: String, count: Int) throws {
    var x: [Float] = [], y: [Int] = []
    for i in 0..<count {
        let label = i % 2
        for r in 0..<28 {
            for c in 0..<28 {
                let bright = (c < 14) == (label == 0)
                x.append(bright ? 0.8 : Float((i * 7 + r * 3 + c) % 10) / 40)
            }
        }
        y.append(label)
    }
    try NumpyFile.write(FloatArray(shape: [count, 1, 28, 28], data: x), to: "\(dir)/x.npy")
    try NumpyFile.writeLabels(y, to: "\(dir)/y.npy")
}

/// `cnnc check` of `model` for each build (batch, optimized, sanitized): every output matches
/// the interpreter and 1 and 2 threads agree bit for bit.
func assertChecksPass(_ model: LoadedModel, _ builds: [(batch: Int, optimize: Bool, sanitize: Bool)],
                      file: StaticString = #filePath, line: UInt = #line) throws {
    for (batch, optimize, sanitize) in builds {
        var options = CheckOptions()
        options.batch = batch
        options.compiler.optimize = optimize
        options.sanitize = sanitize
        let (report, passed) = try Checker.check(model, options: options)
        XCTAssertTrue(passed, "batch \(batch) optimize \(optimize) sanitize \(sanitize):\n\(report)", file: file, line: line)
        XCTAssertTrue(report.contains("threads 1 vs 2: bitwise equal PASS"), report, file: file, line: line)
    }
}

/// `cnnc check --train` of `model` at each batch: the C training step matches the interpreter.
func assertTrainChecksPass(_ model: LoadedModel, batches: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
    for batch in batches {
        var options = TrainCheckOptions()
        options.batch = batch
        let (report, passed) = try TrainChecker.check(model, options: options)
        XCTAssertTrue(passed, "batch \(batch):\n\(report)", file: file, line: line)
    }
}
