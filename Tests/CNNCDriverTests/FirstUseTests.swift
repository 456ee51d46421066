// First use: output folders are created (and a path that cannot be is named), `--version`
// names the commit, `cnnc doctor` passes here and names a broken compiler, and the commands
// of the README's "First steps" run as written with `cnnc` found on PATH.

import CNNCDriver
import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class FirstUseTests: XCTestCase {
    func testCompileCreatesANestedOutputFolder() throws {
        let dir = try temporaryDirectory()
        let r = try runCNNC([examplePath("lenet"), "-o", "new/nested/lenet.c"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "created folder new/nested/\n")
        XCTAssertEqual(r.stdout, "wrote new/nested/lenet.c, new/nested/lenet.h, new/nested/cnnc_runtime.c, new/nested/cnnc_runtime.h\n")
        for file in ["lenet.c", "lenet.h", "cnnc_runtime.c", "cnnc_runtime.h"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/new/nested/\(file)"), file)
        }
        // The folder is there now: nothing to create, nothing said.
        let again = try runCNNC([examplePath("lenet"), "-o", "new/nested/lenet.c"], in: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stderr, "")
    }

    func testOutputUnderARegularFileFailsNamingIt() throws {
        let dir = try temporaryDirectory()
        XCTAssertTrue(FileManager.default.createFile(atPath: "\(dir)/notes", contents: Data("a file\n".utf8)))
        let compile = try runCNNC([examplePath("lenet"), "-o", "notes/out/lenet.c"], in: dir)
        XCTAssertEqual(compile.status, 1)
        XCTAssertEqual(compile.stdout, "")
        XCTAssertEqual(compile.stderr, "error: cannot write 'notes/out/lenet.c': 'notes' is a file, not a folder\n")
        let export = try runCNNC(["export", examplePath("lenet"), "-o", "notes/lenet.onnx"], in: dir)
        XCTAssertEqual(export.status, 1)
        XCTAssertEqual(export.stderr, "error: cannot write 'notes/lenet.onnx': 'notes' is a file, not a folder\n")
        try NumpyFile.write(FloatArray(shape: [1, 1, 28, 28], data: Array(repeating: 0.5, count: 784)), to: "\(dir)/x.npy")
        for interpret in [true, false] {
            let run = try runCNNC(["run", examplePath("lenet"), "--input", "x.npy", "--output", "notes/y.npy"]
                                  + (interpret ? ["--interpret"] : []), in: dir)
            XCTAssertEqual(run.status, 1)
            XCTAssertEqual(run.stderr, "error: cannot write 'notes/y.npy': 'notes' is a file, not a folder\n")
        }
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/notes", encoding: .utf8), "a file\n")
    }

    func testRunAndExportCreateTheirFolders() throws {
        let dir = try temporaryDirectory()
        try NumpyFile.write(FloatArray(shape: [1, 1, 28, 28], data: Array(repeating: 0.5, count: 784)), to: "\(dir)/x.npy")
        let run = try runCNNC(["run", examplePath("lenet"), "--input", "x.npy", "--output", "results/y.npy", "--interpret"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "created folder results/\n")
        XCTAssertEqual(try NumpyFile.read("\(dir)/results/y.npy").shape, [1, 10])
        let export = try runCNNC(["export", examplePath("lenet"), "-o", "onnx/lenet.onnx"], in: dir)
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertEqual(export.stderr, "created folder onnx/\n")
        XCTAssertEqual(export.stdout, "wrote onnx/lenet.onnx\n")
    }

    func testVersionNamesTheCommit() throws {
        let r = try runCNNC(["--version"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotNil(r.stdout.range(of: #"^cnnc [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7}(-dirty)?|unknown)\)\n$"#,
                                       options: .regularExpression), r.stdout)
        // Built from this checkout, it names this checkout's commit.
        let head = try Shell.run(["git", "-C", repoRoot, "rev-parse", "--short=7", "HEAD"])
        if head.status == 0 {
            XCTAssertTrue(r.stdout.contains("(commit \(head.output.trimmingCharacters(in: .whitespacesAndNewlines))"), r.stdout)
        }
    }

    func testDoctorPassesHereAndCachesThePeak() throws {
        let cache = try temporaryDirectory()
        let r = try runCNNC(["doctor"], environment: ["CNNC_CACHE_DIR": cache])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 7, r.stdout)
        XCTAssertTrue(lines[0].hasPrefix("cnnc "), r.stdout)
        for (line, name) in zip(lines[1...5], ["C compiler", "vector extensions", "OpenMP", "libpng and zlib", "FP32 FMA peak"]) {
            XCTAssertTrue(line.hasPrefix(name), line)
            XCTAssertTrue(line.contains(" OK "), line)
        }
        XCTAssertTrue(lines[3].hasSuffix("builds with -fopenmp and runs 2 threads"), lines[3])
        XCTAssertTrue(lines[5].contains("measured now, cached in \(cache)/peak-"), lines[5])
        XCTAssertEqual(lines[6], "everything cnnc needs is here")

        let again = try runCNNC(["doctor"], environment: ["CNNC_CACHE_DIR": cache])
        XCTAssertEqual(again.status, 0, again.stdout)
        XCTAssertTrue(again.stdout.contains("(from the cache \(cache)/peak-"), again.stdout)

        let peak = try MachinePeak.measured(environment: ["CNNC_CACHE_DIR": cache])
        XCTAssertTrue(peak.fromCache)
        XCTAssertGreaterThan(peak.perCore, 0)
        XCTAssertGreaterThanOrEqual(peak.threads, 1)
    }

    func testDoctorNamesAFailingCompilerAndCheckPointsToIt() throws {
        let dir = try temporaryDirectory()
        let cc = "\(dir)/broken-cc"
        XCTAssertTrue(FileManager.default.createFile(atPath: cc, contents: Data("#!/bin/sh\nexit 1\n".utf8),
                                                     attributes: [.posixPermissions: 0o755]))
        let r = try runCNNC(["doctor"], environment: ["CC": cc, "CNNC_CACHE_DIR": "\(dir)/cache"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("C compiler         FAIL  CC=\(cc) cannot compile a one-line C program (exit 1, no output); "
                                        + "install gcc (apt-get install gcc) or point CC at gcc or clang\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("OpenMP             SKIP  needs a working C compiler\n"), r.stdout)
        XCTAssertTrue(r.stdout.hasSuffix("1 failed, 4 not checked: install what the FAIL lines name\n"), r.stdout)

        let check = try runCNNC(["check", examplePath("lenet")], environment: ["CC": cc])
        XCTAssertEqual(check.status, 1)
        XCTAssertEqual(check.stderr, "error: C compilation failed (\(cc)):\n"
                       + "note: the C toolchain, not the generated code, failed; `cnnc doctor` says what is missing\n")
    }

    /// The README's "First steps", line by line as a user types them: in a fresh folder that
    /// has the repository's Examples/ and the weights `make` trains (seeded here), with `cnnc`
    /// found by name on PATH.
    func testReadmeFirstStepsRunAsWritten() throws {
        let readme = try String(contentsOfFile: "\(repoRoot)/README.md", encoding: .utf8)
        let commands = try XCTUnwrap(Self.firstSteps(readme), "README.md has no ```sh block under '## First steps'")
        XCTAssertGreaterThanOrEqual(commands.count, 8, commands.joined(separator: "\n"))
        XCTAssertTrue(commands.allSatisfy { $0.hasPrefix("cnnc") || $0.hasPrefix("cc ") || $0.hasPrefix("out/") }, "\(commands)")

        let dir = try temporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/Examples", withDestinationPath: "\(repoRoot)/Examples")
        let graph = try ModelLoader.load(examplePath("lenet")).graph
        let weights = Weights.seeded(graph, seed: 3)
        try FileManager.default.createDirectory(atPath: "\(dir)/build/lenet", withIntermediateDirectories: true)
        try SafetensorsFile.write(graph.parameters().map { spec in
            (spec.name, FloatArray(shape: weights[spec.name]!.shape, data: weights[spec.name]!.data.map { Float($0) }))
        }, to: "\(dir)/build/lenet/lenet.safetensors")

        let bin = URL(fileURLWithPath: try cnncExecutable()).deletingLastPathComponent().path
        let path = "\(bin):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"
        var outputs: [String: String] = [:]
        for command in commands {
            let r = try Shell.run(["sh", "-c", command], in: dir, environment: ["PATH": path, "CNNC_CACHE_DIR": "\(dir)/cache"])
            XCTAssertEqual(r.status, 0, "\(command)\n\(r.output)")
            outputs[String(command.prefix { $0 != " " && $0 != "\\" }) + " " + (command.split(separator: " ").dropFirst().first ?? "")] = r.output
        }
        XCTAssertTrue(outputs["cnnc Examples/lenet/model.net"]?.hasPrefix("created folder out/\n") ?? false, "\(outputs)")
        XCTAssertTrue(outputs["cnnc check"]?.hasSuffix("PASS\n") ?? false, "\(outputs)")
        XCTAssertTrue(outputs["cnnc doctor"]?.hasSuffix("everything cnnc needs is here\n") ?? false, "\(outputs)")
        XCTAssertTrue(outputs["out/lenet --weights"]?.contains("image 3: predicted") ?? false, "\(outputs)")
        for file in ["out/lenet.c", "out/lenet.h", "out/cnnc_runtime.c", "out/lenet.onnx", "out/lenet"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(file)"), file)
        }
    }

    /// The commands of the first ```sh block after "## First steps", continuation lines joined.
    static func firstSteps(_ readme: String) -> [String]? {
        guard let section = readme.range(of: "\n## First steps\n"),
              let open = readme.range(of: "```sh\n", range: section.upperBound..<readme.endIndex),
              let close = readme.range(of: "\n```", range: open.upperBound..<readme.endIndex) else { return nil }
        var commands: [String] = []
        var pending = ""
        for line in readme[open.upperBound..<close.lowerBound].split(separator: "\n") {
            let text = pending + line.trimmingCharacters(in: .whitespaces)
            if text.hasSuffix("\\") {
                pending = String(text.dropLast()) + " "
            } else {
                commands.append(text)
                pending = ""
            }
        }
        return commands
    }
}
