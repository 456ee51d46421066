// Finding and running the C compiler, and running built programs.

import Foundation

/// The C compiler and flags cnnc builds generated code with.
public struct Toolchain {
    /// The compiler command: `$CC` when set, else `cc` (gcc; its `-fopenmp` uses libgomp).
    public var compiler: String
    public var flags: [String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, extraFlags: [String] = []) {
        compiler = environment["CC"].flatMap { $0.isEmpty ? nil : $0 } ?? "cc"
        flags = ["-std=c11", "-O2", "-march=native", "-fopenmp", "-Wall", "-Wextra", "-Werror"] + extraFlags
    }

    /// Compiles and links `sources` into `output`; throws with the compiler's output on failure.
    public func build(sources: [String], output: String, in directory: String, linkFlags: [String] = ["-lm"],
                      environment: [String: String] = [:]) throws {
        let result = try Shell.run([compiler] + flags + ["-I", directory] + sources + ["-o", output] + linkFlags,
                                   in: directory, environment: environment)
        guard result.status == 0 else { throw failure(result) }
    }

    /// The error for a failed compile or link: the compiler's output, and one line pointing
    /// to `cnnc doctor` when the cause lies outside the generated code.
    func failure(_ result: Shell.Result) -> DriverError {
        var text = "error: C compilation failed (\(compiler)):\n\(result.output)"
        if Self.isToolchainProblem(result) {
            if !text.hasSuffix("\n") { text += "\n" }
            text += "note: the C toolchain, not the generated code, failed; `cnnc doctor` says what is missing"
        }
        return DriverError(text)
    }

    /// Whether a failed build failed for a reason outside the generated code: the compiler
    /// could not be run, a system header (omp.h, png.h, zlib.h) or library (-lgomp, -lomp,
    /// -lpng, -lz) is missing, an option is unsupported, OpenMP's pragmas are unknown (no
    /// -fopenmp), or the output names no source line.
    static func isToolchainProblem(_ result: Shell.Result) -> Bool {
        if result.status == 126 || result.status == 127 { return true }
        let output = result.output
        let headers = ["omp.h", "png.h", "zlib.h"]
        if headers.contains(where: output.contains) && (output.contains("No such file") || output.contains("not found")) {
            return true
        }
        let signs = ["cannot find -l", "unable to find library", "undefined reference to `omp_", "undefined reference to `GOMP_",
                     "undefined reference to `__kmpc", "undefined reference to `png_", "undefined reference to `inflate",
                     "undefined reference to `deflate", "unsupported option", "unrecognized command-line option",
                     "unrecognized command line option", "-Werror=unknown-pragmas"]
        if signs.contains(where: output.contains) { return true }
        // A diagnostic about the code names its file and line ("model.c:12:5: error: ...") or,
        // from the linker, its section ("harness.c:(.text+0x1c): undefined reference to ...").
        return output.range(of: #"\.[ch]:([0-9]+:|\(\.)"#, options: .regularExpression) == nil
    }
}

/// Running a subprocess and collecting its output.
public enum Shell {
    public struct Result {
        public var status: Int32
        public var output: String
    }

    /// Runs `arguments` (looked up on PATH) in `directory`, with extra environment variables.
    public static func run(_ arguments: [String], in directory: String? = nil,
                           environment extra: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw DriverError("error: cannot run '\(arguments[0])': \(error.localizedDescription)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Runs a program we built with its output streaming to ours (the trainer, the visualize
    /// programs); `threads` sets OMP_NUM_THREADS. Returns its exit status.
    public static func stream(_ executable: String, _ arguments: [String], threads: Int?) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        if let threads { env["OMP_NUM_THREADS"] = "\(threads)" }
        process.environment = env
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
