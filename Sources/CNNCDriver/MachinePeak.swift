// The machine's FP32 fused multiply-add peak, measured: a small C program runs independent
// chains of FMAs held in registers, at the widest vector `-march=native` enables (AVX-512,
// AVX2+FMA, NEON; else 128-bit a*b+c), on one thread and on every processor OpenMP sees,
// best of three. The figures are cached per CPU model and processor count
// (CacheDirectory/peak-<hash>.txt), so only the first call takes its second or so.
// `cnnc doctor` prints them; a profiler divides achieved GFLOP/s by them.

import CNNCIR
import Foundation

/// Peak FP32 FMA throughput of this machine.
public struct MachinePeak: Sendable, Equatable {
    /// GFLOP/s of one thread (one core); an FMA counts as two flops.
    public var perCore: Double
    /// GFLOP/s of all threads together.
    public var allThreads: Double
    /// The thread count behind `allThreads`.
    public var threads: Int
    /// The vector unit the program used ("AVX-512", "AVX2+FMA", "NEON", "128-bit a*b+c").
    public var vector: String
    /// The cache file the figures came from or were written to; nil when there is no cache.
    public var cacheFile: String?
    /// Whether the figures came from the cache rather than a measurement now.
    public var fromCache: Bool
    /// The 1-minute load average just before the measurement: other work running then
    /// lowers the figures (mostly `allThreads`). Nil where the system does not say.
    public var loadAverage: Double?

    /// The cached figures for this machine, or measures them (and caches them); `remeasure`
    /// ignores the cache. Throws when the program cannot be built or run.
    public static func measured(toolchain: Toolchain = Toolchain(), remeasure: Bool = false,
                                environment: [String: String] = ProcessInfo.processInfo.environment) throws -> MachinePeak {
        let cpu = cpuModel()
        let processors = ProcessInfo.processInfo.activeProcessorCount
        let key = String(SeededInit.nameHash("\(cpu)\u{0}\(processors)"), radix: 16)
        let file = CacheDirectory.path(environment: environment).map { "\($0)/peak-\(key).txt" }
        if !remeasure, let file, let text = try? String(contentsOfFile: file, encoding: .utf8), var peak = parse(text) {
            peak.cacheFile = file
            peak.fromCache = true
            return peak
        }
        var peak = try measure(toolchain: toolchain)
        if let file {
            let text = "cpu=\(cpu)\nprocessors=\(processors)\nvector=\(peak.vector)\nthreads=\(peak.threads)\n"
                + "per_core_gflops=\(peak.perCore)\nall_threads_gflops=\(peak.allThreads)\n"
                + (peak.loadAverage.map { "load_average=\($0)\n" } ?? "")
            let folder = (file as NSString).deletingLastPathComponent
            if (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil,
               FileManager.default.createFile(atPath: file, contents: Data(text.utf8)) {
                peak.cacheFile = file
            }
        }
        return peak
    }

    /// Builds and runs the program now.
    static func measure(toolchain: Toolchain) throws -> MachinePeak {
        let dir = try WorkDirectory(prefix: "cnnc-peak")
        defer { dir.cleanup() }
        try ModelBuilder.write(source, to: "\(dir.path)/peak.c")
        var tools = toolchain
        tools.flags += ["-ffp-contract=fast"]
        try tools.build(sources: ["peak.c"], output: "\(dir.path)/peak", in: dir.path)
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }
        let result = try Shell.run(["\(dir.path)/peak", "\(iterations)"], in: dir.path)
        guard result.status == 0, var peak = parse(result.output) else {
            throw DriverError("error: the FMA peak program failed (exit \(result.status)): \(result.output)")
        }
        peak.loadAverage = load
        return peak
    }

    /// Loop iterations per run: 48 FMAs each, about 0.1 s on a 3 GHz core with two FMA units.
    static let iterations = 12_000_000

    /// Reads `key=value` lines (the program's output and the cache file's format).
    static func parse(_ text: String) -> MachinePeak? {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard let vector = values["vector"], let threads = values["threads"].flatMap({ Int($0) }), threads >= 1,
              let one = values["per_core_gflops"].flatMap({ Double($0) }), one > 0,
              let all = values["all_threads_gflops"].flatMap({ Double($0) }), all > 0 else { return nil }
        return MachinePeak(perCore: one, allThreads: all, threads: threads, vector: vector, cacheFile: nil, fromCache: false,
                           loadAverage: values["load_average"].flatMap { Double($0) })
    }

    /// The CPU's model name from /proc/cpuinfo ("AMD EPYC"), else the architecture.
    static func cpuModel() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        for line in info.split(separator: "\n") where line.hasPrefix("model name") || line.hasPrefix("Model") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The program: usage `peak ITERATIONS`; prints the key=value lines `parse` reads.
    static let source = """
        /* cnnc: FP32 FMA peak. 12 independent accumulator chains stay in registers; each
           loop iteration issues 4 FMAs on each, so latency never limits throughput. */
        #include <omp.h>
        #include <stdio.h>
        #include <stdlib.h>

        #if defined(__AVX512F__)
        #include <immintrin.h>
        typedef __m512 vec;
        #define LANES 16
        #define SPLAT(x) _mm512_set1_ps(x)
        #define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
        #define SUM(v) _mm512_reduce_add_ps(v)
        #define VECTOR "AVX-512"
        #elif defined(__AVX2__) && defined(__FMA__)
        #include <immintrin.h>
        typedef __m256 vec;
        #define LANES 8
        #define SPLAT(x) _mm256_set1_ps(x)
        #define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
        static float SUM(vec v) { float f[8]; _mm256_storeu_ps(f, v); return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7]; }
        #define VECTOR "AVX2+FMA"
        #elif defined(__ARM_NEON)
        #include <arm_neon.h>
        typedef float32x4_t vec;
        #define LANES 4
        #define SPLAT(x) vdupq_n_f32(x)
        #define FMA(a, b, c) vfmaq_f32(c, a, b)
        #define SUM(v) vaddvq_f32(v)
        #define VECTOR "NEON"
        #else
        typedef float vec __attribute__((vector_size(16)));
        #define LANES 4
        #define SPLAT(x) ((vec){(x), (x), (x), (x)})
        #define FMA(a, b, c) ((a) * (b) + (c))
        #define SUM(v) ((v)[0] + (v)[1] + (v)[2] + (v)[3])
        #define VECTOR "128-bit a*b+c"
        #endif

        #define CHAINS 12
        #define UNROLL 4

        /* Runs the chains for n iterations; returns their sum so nothing is optimized away. */
        static float chains(long n) {
            const vec b = SPLAT(0.99999f), c = SPLAT(1e-5f);
            vec a0 = SPLAT(0.10f), a1 = SPLAT(0.11f), a2 = SPLAT(0.12f), a3 = SPLAT(0.13f), a4 = SPLAT(0.14f), a5 = SPLAT(0.15f);
            vec a6 = SPLAT(0.16f), a7 = SPLAT(0.17f), a8 = SPLAT(0.18f), a9 = SPLAT(0.19f), a10 = SPLAT(0.20f), a11 = SPLAT(0.21f);
            for (long i = 0; i < n; i++) {
                for (int u = 0; u < UNROLL; u++) {
                    a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);
                    a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);
                    a8 = FMA(a8, b, c); a9 = FMA(a9, b, c); a10 = FMA(a10, b, c); a11 = FMA(a11, b, c);
                }
            }
            return SUM(a0) + SUM(a1) + SUM(a2) + SUM(a3) + SUM(a4) + SUM(a5) + SUM(a6) + SUM(a7) + SUM(a8) + SUM(a9)
                + SUM(a10) + SUM(a11);
        }

        int main(int argc, char **argv) {
            const long n = argc > 1 ? atol(argv[1]) : 10000000;
            const int threads = omp_get_num_procs();
            const double flops = 2.0 * n * UNROLL * CHAINS * LANES;
            double one = 0.0, all = 0.0;
            float sink = 0.0f;
            for (int rep = 0; rep < 3; rep++) {
                double t = omp_get_wtime();
                sink += chains(n);
                t = omp_get_wtime() - t;
                if (flops / t > one) one = flops / t;
                t = omp_get_wtime();
                #pragma omp parallel num_threads(threads) reduction(+ : sink)
                sink += chains(n);
                t = omp_get_wtime() - t;
                if (threads * flops / t > all) all = threads * flops / t;
            }
            printf("vector=%s\\nthreads=%d\\nper_core_gflops=%.1f\\nall_threads_gflops=%.1f\\nsink=%g\\n", VECTOR, threads,
                   one / 1e9, all / 1e9, (double)sink);
            return 0;
        }

        """
}
