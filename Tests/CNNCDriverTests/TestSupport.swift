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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try cnncExecutable())
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

/// Runs `program` (found on PATH) with arguments; status 127 when it is not installed.
func runProgram(_ program: String, _ arguments: [String]) throws -> CLIResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [program] + arguments
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
