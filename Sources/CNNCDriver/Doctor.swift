// `cnnc doctor`: checks what building generated code needs, each by doing it — the C
// compiler (`CC` or cc) compiles a program, OpenMP builds and runs two threads, the vector
// extensions `-march=native` enables, libpng and zlib link (`cnnc visualize`, the LeNet
// example) — and reports the machine's measured FP32 FMA peak. Each line says OK or what to
// install.

import Foundation

/// The checks of `cnnc doctor`.
public enum Doctor {
    /// One line of the report.
    public struct Check {
        public enum Verdict: String {
            /// Works.
            case ok = "OK"
            /// Required and broken: the line says what to install.
            case fail = "FAIL"
            /// Not checked because something it needs failed.
            case skipped = "SKIP"
            /// Not required and not working.
            case warn = "WARN"
        }
        public var name: String
        public var verdict: Verdict
        public var detail: String
    }

    /// Runs every check; returns the report and whether everything required works.
    public static func run(environment: [String: String] = ProcessInfo.processInfo.environment,
                           remeasure: Bool = false) throws -> (report: String, passed: Bool) {
        let checks = try checks(environment: environment, remeasure: remeasure)
        let width = checks.map(\.name.count).max() ?? 0
        var report = ""
        for c in checks {
            report += c.name.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                + c.verdict.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + c.detail + "\n"
        }
        let failed = checks.filter { $0.verdict == .fail }.count, skipped = checks.filter { $0.verdict == .skipped }.count
        report += failed + skipped == 0 ? "everything cnnc needs is here\n"
            : "\(failed) failed, \(skipped) not checked: install what the FAIL lines name\n"
        return (report, failed + skipped == 0)
    }

    /// The checks in report order.
    public static func checks(environment: [String: String], remeasure: Bool) throws -> [Check] {
        let dir = try WorkDirectory(prefix: "cnnc-doctor")
        defer { dir.cleanup() }
        let toolchain = Toolchain(environment: environment)
        let cc = toolchain.compiler
        let named = environment["CC"].map { $0.isEmpty ? "cc (CC is empty)" : "CC=\($0)" } ?? "cc (CC is not set)"
        let version = (try? Shell.run([cc, "--version"], in: dir.path)).flatMap { r in
            r.status == 0 ? r.output.split(separator: "\n").first.map(String.init) : nil
        }
        let isClang = version?.contains("clang") ?? false
        var checks: [Check] = []

        // The compiler on its own: a one-line program, no options beyond the language.
        try ModelBuilder.write("int main(void) { return 0; }\n", to: "\(dir.path)/empty.c")
        let plain = try Shell.run([cc, "-std=c11", "empty.c", "-o", "empty"], in: dir.path)
        let compilerWorks = plain.status == 0
        if compilerWorks {
            checks.append(Check(name: "C compiler", verdict: .ok, detail: "\(named): \(version ?? "(no --version)")"))
        } else {
            let why = plain.status == 127 ? "is not installed or not on PATH" : "cannot compile a one-line C program (\(summary(plain)))"
            checks.append(Check(name: "C compiler", verdict: .fail,
                                detail: "\(named) \(why); install gcc (apt-get install gcc) or point CC at gcc or clang"))
        }

        // -march=native: every build uses it; its predefined macros name the vector extensions.
        if compilerWorks {
            let macros = try Shell.run([cc, "-march=native", "-dM", "-E", "-x", "c", "/dev/null"], in: dir.path)
            if macros.status != 0 {
                checks.append(Check(name: "vector extensions", verdict: .fail,
                                    detail: "\(cc) does not accept -march=native (\(summary(macros))); use gcc or clang"))
            } else {
                let known = [("__AVX512F__", "AVX-512F"), ("__AVX2__", "AVX2"), ("__FMA__", "FMA"), ("__ARM_NEON", "NEON"),
                             ("__ARM_FEATURE_SVE", "SVE")]
                let found = known.filter { macros.output.contains("#define \($0.0) ") }.map(\.1)
                checks.append(Check(name: "vector extensions", verdict: .ok,
                                    detail: found.isEmpty ? "-march=native enables none of AVX-512F, AVX2, FMA (scalar and SSE code)"
                                        : "-march=native enables \(found.joined(separator: ", "))"))
            }
        } else {
            checks.append(Check(name: "vector extensions", verdict: .skipped, detail: "needs a working C compiler"))
        }

        // OpenMP: the flags generated code is built with, a parallel region of two threads.
        var openMPWorks = false
        if compilerWorks {
            try ModelBuilder.write("""
                #include <omp.h>
                #include <stdio.h>

                int main(void) {
                    int threads = 0;
                #pragma omp parallel num_threads(2)
                    {
                #pragma omp atomic
                        threads++;
                    }
                    printf("%d %d\\n", threads, omp_get_max_threads());
                    return 0;
                }

                """, to: "\(dir.path)/openmp.c")
            let install = isClang ? "install libomp-dev (clang's OpenMP)" : "install gcc's OpenMP (apt-get install gcc libgomp1)"
            let build = try Shell.run([cc] + toolchain.flags + ["openmp.c", "-o", "openmp"], in: dir.path)
            if build.status != 0 {
                let header = build.output.contains("omp.h") ? "omp.h is missing" : "-fopenmp does not build (\(summary(build)))"
                checks.append(Check(name: "OpenMP", verdict: .fail, detail: "\(header); \(install)"))
            } else {
                let r = try Shell.run(["\(dir.path)/openmp"], in: dir.path, environment: ["OMP_NUM_THREADS": "2"])
                if r.status == 0 && r.output.hasPrefix("2 ") {
                    openMPWorks = true
                    checks.append(Check(name: "OpenMP", verdict: .ok, detail: "builds with -fopenmp and runs 2 threads"))
                } else {
                    checks.append(Check(name: "OpenMP", verdict: .fail,
                                        detail: "the program ran \(r.output.split(separator: " ").first ?? "no") thread(s), not 2 (\(summary(r))); \(install)"))
                }
            }
        } else {
            checks.append(Check(name: "OpenMP", verdict: .skipped, detail: "needs a working C compiler"))
        }

        // libpng and zlib: cnnc visualize writes PNG files, the runtime reads gzip data sets.
        if compilerWorks {
            try ModelBuilder.write("""
                #include <png.h>
                #include <zlib.h>

                int main(void) { return png_access_version_number() == 0 || zlibVersion()[0] == 0; }

                """, to: "\(dir.path)/png.c")
            let build = try Shell.run([cc, "-std=c11", "png.c", "-o", "png", "-lpng", "-lz"], in: dir.path)
            let ran = build.status == 0 ? try Shell.run(["\(dir.path)/png"], in: dir.path) : build
            if ran.status == 0 {
                checks.append(Check(name: "libpng and zlib", verdict: .ok, detail: "link and run (cnnc visualize, .gz data sets)"))
            } else {
                var packages: [String] = []
                if build.output.contains("png") { packages.append("libpng-dev") }
                if build.output.contains("zlib") || build.output.contains("-lz") { packages.append("zlib1g-dev") }
                if packages.isEmpty { packages = ["libpng-dev", "zlib1g-dev"] }
                checks.append(Check(name: "libpng and zlib", verdict: .fail,
                                    detail: "do not link (\(summary(build))); install \(packages.joined(separator: " "))"))
            }
        } else {
            checks.append(Check(name: "libpng and zlib", verdict: .skipped, detail: "needs a working C compiler"))
        }

        // The FMA peak: measured once per machine, then read from the cache.
        do {
            let peak = try MachinePeak.measured(toolchain: toolchain, remeasure: remeasure, environment: environment)
            var source = peak.fromCache ? "from the cache \(peak.cacheFile ?? "")"
                : peak.cacheFile.map { "measured now, cached in \($0)" } ?? "measured now, not cached"
            if let load = peak.loadAverage, load >= 0.5 {
                source += "; the load average was \(String(format: "%.1f", load)) when measured: other work lowers the figures, "
                    + "--remeasure on an idle machine"
            } else if peak.fromCache {
                source += "; --remeasure measures again"
            }
            checks.append(Check(name: "FP32 FMA peak", verdict: .ok,
                                detail: "\(peak.vector): 1 thread \(gflops(peak.perCore)) GFLOP/s, \(peak.threads) threads "
                                    + "\(gflops(peak.allThreads)) GFLOP/s (\(source))"))
        } catch {
            checks.append(Check(name: "FP32 FMA peak", verdict: openMPWorks ? .warn : .skipped,
                                detail: openMPWorks ? "not measured: \(summary(error))" : "needs OpenMP"))
        }
        return checks
    }

    /// "123.4"
    static func gflops(_ value: Double) -> String { String(format: "%.1f", value) }

    /// A failed command in a few words: its exit status and its first error line (else its
    /// first line).
    static func summary(_ result: Shell.Result) -> String {
        let lines = result.output.split(separator: "\n")
        let signs = ["error", "undefined reference", "cannot find", "No such file", "not found"]
        let line = lines.first { line in signs.contains { line.contains($0) } } ?? lines.first
        return "exit \(result.status)" + (line.map { ": \($0.trimmingCharacters(in: .whitespaces))" } ?? ", no output")
    }

    static func summary(_ error: Error) -> String {
        let text = (error as? DriverError)?.description ?? "\(error)"
        return text.split(separator: "\n").first.map(String.init) ?? text
    }
}
