// Hostile files for the Swift readers of `.npy` and safetensors and for every file a user
// names: sizes from headers are checked (no overflow trap), and only regular files are read
// (a FIFO or a link to /dev/zero is refused, never waited on or read forever).

import CNNCDriver
import Foundation
import XCTest

final class HardeningTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// A safetensors file with `header` as its JSON header and `data` after it.
    private func safetensors(_ name: String, _ header: String, data: Int = 16) throws -> String {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: data)
        try Data(bytes).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// A `.npy` (version 1) with `shape` written into its header and 16 data bytes.
    private func npy(_ name: String, shape: String, descr: String = "<f4",
                     payload: [UInt8] = [UInt8](repeating: 0, count: 16)) throws -> String {
        let header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }".utf8)
        let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xff), UInt8(header.count >> 8)]
            + header + payload
        try Data(bytes).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    private func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }

    func testSafetensorsSizesFromTheHeaderNeverTrap() throws {
        let negative = try safetensors("neg.safetensors", #"{"w":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(negative) },
                       "error: '\(negative)': invalid json in header at byte 29: expected a non-negative integer")
        let huge = try safetensors("huge.safetensors", #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(huge) },
                       "error: '\(huge)': tensor 'w': shape [4611686018427387904,4] is too large")
        let offset = try safetensors("offset.safetensors", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775807,3]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(offset) },
                       "error: '\(offset)': tensor 'w': data_offsets [9223372036854775807,3] end before they begin")
        let end = try safetensors("end.safetensors", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775804,9223372036854775807]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(end) },
                       "error: '\(end)': tensor 'w': data_offsets [9223372036854775804,9223372036854775807] exceed the data buffer of 16 bytes")
    }

    func testSafetensorsOverlapAndByteOrderMarkAreRefusedAsTheCReaderDoes() throws {
        let overlap = try safetensors("overlap.safetensors", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(overlap) }, "error: '\(overlap)': tensors 'a' and 'b' overlap: data_offsets [0,8] and [4,12]")
        let bom = try safetensors("bom.safetensors", "\u{FEFF}" + #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(bom) }, "error: '\(bom)': invalid json in header at byte 0: expected '{' at the start of the header")
        let twice = try safetensors("twice.safetensors", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"\u0061":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(twice) }, "error: '\(twice)': duplicate tensor name 'a'")
        let fraction = try safetensors("fraction.safetensors", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0.5,4]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(fraction) }, "error: '\(fraction)': invalid json in header at byte 49: expected an integer")
        let fine = try safetensors("fine.safetensors", #"{"__metadata__":{"k":"v,}"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#)
        XCTAssertEqual(message { try SafetensorsFile.read(fine) }, "no error")
    }

    /// A PyTorch state_dict holds an I64 `num_batches_tracked` per batch norm: the generated
    /// loader skips it, and so does the Swift one (`run --interpret` refused the file while the
    /// compiled `run` took it).
    func testBothWeightLoadersSkipTheBatchNormStepCounter() throws {
        let model = path("bn.net")
        try "network t\ninput x shape=3\ndense d units=3\n".write(toFile: model, atomically: true, encoding: .utf8)
        let weights = try safetensors("w.safetensors", #"{"d.weight":{"dtype":"F32","shape":[3,3],"data_offsets":[0,36]},"d.bias":{"dtype":"F32","shape":[3],"data_offsets":[36,48]},"d.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[48,56]}}"#, data: 56)
        let input = try npy("x.npy", shape: "(1, 3)", payload: [UInt8](repeating: 0, count: 12))
        for interpret in [true, false] {
            let r = try runCNNC(["run", model, "--input", input, "--output", path("y\(interpret).npy"), "--weights", weights]
                                + (interpret ? ["--interpret"] : []), in: directory)
            XCTAssertEqual(r.status, 0, "interpret \(interpret): \(r.stderr)")
        }
        XCTAssertTrue(SafetensorsFile.isSkippedByWeightLoaders("bn1.num_batches_tracked"))
        XCTAssertTrue(SafetensorsFile.isSkippedByWeightLoaders("c1.weight.momentum"))
        XCTAssertFalse(SafetensorsFile.isSkippedByWeightLoaders(".momentum"))  // as the C loader: a name before it
        XCTAssertFalse(SafetensorsFile.isSkippedByWeightLoaders("c1.weight"))
    }

    func testNumpySizesFromTheHeaderNeverTrap() throws {
        let huge = try npy("huge.npy", shape: "(4611686018427387904, 4, 3)")
        XCTAssertEqual(message { try NumpyFile.read(huge) },
                       "error: '\(huge)': shape [4611686018427387904, 4, 3] has more elements than fit in 64 bits")
        let bytes = try npy("bytes.npy", shape: "(2305843009213693952,)")
        XCTAssertEqual(message { try NumpyFile.read(bytes) },
                       "error: '\(bytes)': shape [2305843009213693952] has more elements than fit in 64 bits")
        let big = try npy("big.npy", shape: "(1000000, 4)")
        XCTAssertEqual(message { try NumpyFile.read(big) },
                       "error: '\(big)': expected 16000000 data bytes for shape [1000000, 4], got 16")
    }

    func testOnlyRegularFilesAreRead() throws {
        let fifo = path("fifo.npy")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertEqual(message { try NumpyFile.read(fifo) }, "error: cannot read '\(fifo)': it is a FIFO, not a regular file")
        let zero = path("zero.safetensors")
        try FileManager.default.createSymbolicLink(atPath: zero, withDestinationPath: "/dev/zero")
        XCTAssertEqual(message { try SafetensorsFile.read(zero) },
                       "error: cannot read '\(zero)': it is a character device, not a regular file")
        XCTAssertEqual(message { try NumpyFile.read(directory) }, "error: cannot read '\(directory)': it is a directory")
        XCTAssertEqual(message { try NumpyFile.read(path("missing.npy")) },
                       "error: cannot read '\(path("missing.npy"))': no such file")
    }

    func testModelFIFOAndWeightsFIFOFailAtOnce() throws {
        let fifo = path("model.net")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let result = try runCNNC(["summary", fifo])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error: cannot read '\(fifo)': it is a FIFO, not a regular file\n")
        let model = path("relu.net")
        try "network t\ninput x shape=3\nrelu\n".write(toFile: model, atomically: true, encoding: .utf8)
        let weights = path("w.safetensors")
        XCTAssertEqual(mkfifo(weights, 0o600), 0)
        let check = try runCNNC(["check", model, "--weights", weights])
        XCTAssertEqual(check.status, 1)
        XCTAssertEqual(check.stderr, "error: cannot read '\(weights)': it is a FIFO, not a regular file\n")
        // Compiled run and bench hand the path to C, which would block in fopen: refused first.
        let input = try npy("x.npy", shape: "(1, 3)", payload: [UInt8](repeating: 0, count: 12))
        let run = try runCNNC(["run", model, "--input", input, "--output", path("y.npy"), "--weights", weights])
        XCTAssertEqual(run.status, 1)
        XCTAssertEqual(run.stderr, "error: cannot read '\(weights)': it is a FIFO, not a regular file\n")
        let bench = try runCNNC(["bench", model, "--weights", weights])
        XCTAssertEqual(bench.status, 1)
        XCTAssertEqual(bench.stderr, "error: cannot read '\(weights)': it is a FIFO, not a regular file\n")
    }

    /// Output paths naming a FIFO (no reader: open would block), a device or a folder fail
    /// at once with the path, for what cnnc writes itself (`-o`, `export`) and for what it
    /// hands to generated C (`run --output`, `train --save` and `--log`).
    func testOutputFIFOsAndDevicesFailAtOnce() throws {
        let model = path("relu.net")
        try "network t\ninput x shape=3\nrelu\n".write(toFile: model, atomically: true, encoding: .utf8)
        let fifoC = path("out.c"), fifoONNX = path("out.onnx"), fifoNPY = path("y.npy")
        for fifo in [fifoC, fifoONNX, fifoNPY] { XCTAssertEqual(mkfifo(fifo, 0o600), 0) }
        let compile = try runCNNC([model, "-o", fifoC])
        XCTAssertEqual(compile.status, 1)
        XCTAssertEqual(compile.stderr, "error: cannot write '\(fifoC)': it is a FIFO, not a regular file\n")
        let export = try runCNNC(["export", model, "-o", fifoONNX])
        XCTAssertEqual(export.status, 1)
        XCTAssertEqual(export.stderr, "error: cannot write '\(fifoONNX)': it is a FIFO, not a regular file\n")
        let input = try npy("x.npy", shape: "(1, 3)", payload: [UInt8](repeating: 0, count: 12))
        for mode in [[], ["--interpret"]] {
            let run = try runCNNC(["run", model, "--input", input, "--output", fifoNPY] + mode)
            XCTAssertEqual(run.status, 1, "\(mode)")
            XCTAssertEqual(run.stderr, "error: cannot write '\(fifoNPY)': it is a FIFO, not a regular file\n", "\(mode)")
        }
        let folder = path("folder.c")
        XCTAssertEqual(mkdir(folder, 0o700), 0)
        let intoFolder = try runCNNC([model, "-o", folder])
        XCTAssertEqual(intoFolder.status, 1)
        XCTAssertEqual(intoFolder.stderr, "error: cannot write '\(folder)': it is a directory, not a regular file\n")
        if access("/dev/null", W_OK) == 0 {
            let device = try runCNNC(["run", model, "--input", input, "--output", "/dev/null", "--interpret"])
            XCTAssertEqual(device.status, 1)
            XCTAssertEqual(device.stderr, "error: cannot write '/dev/null': it is a character device, not a regular file\n")
        }
        // Nothing was truncated or replaced: the FIFOs are still FIFOs.
        for fifo in [fifoC, fifoONNX, fifoNPY] {
            var info = stat()
            XCTAssertEqual(stat(fifo, &info), 0)
            XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO)
        }
    }

    /// A node that reads one value twice (add(a, a), concat(a, a), mul(b, b); found by the
    /// fuzzer, onnx seed 11, as an 8-input add listing one activation twice) passes that
    /// value's gradient twice to its backward kernel: the two pointers are not `restrict`
    /// (gcc -Werror=restrict refused the call, and with restrict the two additions into one
    /// gradient were undefined), and the gradients match the interpreter's.
    func testBackwardOfANodeReadingOneValueTwice() throws {
        let model = path("twice.net")
        try """
            network twice
            input x shape=4x8x8
            conv a filters=4 size=3 pad=1
            add s from=a,a
            concat c from=s,a,s
            conv b filters=2 size=3 pad=1
            mul m from=b,b
            flatten
            dense d units=3
            """.write(toFile: model, atomically: true, encoding: .utf8)
        let result = try runCNNC(["check", model, "--train"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.hasSuffix("PASS\n"), result.stdout)
    }

    // MARK: - Names that reach C

    /// Layer, input and output names that are C keywords, macros, typedefs, the entry points'
    /// own parameters, an output listed with another of the same upper-case macro name, and an
    /// input that is also an output: the generated C builds with -Werror and matches.
    func testNamesThatAreCKeywordsMacrosOrAPIParametersCompile() throws {
        let model = path("names.net")
        try """
            network t
            input int shape=3x8x8
            conv float filters=4 size=3
            relu return
            conv NULL filters=2 size=1
            relu EOF
            relu ctx
            relu n
            relu size_t from=EOF
            flatten a
            flatten A from=n
            output n,int,a,A,ctx,size_t
            """.write(toFile: model, atomically: true, encoding: .utf8)
        let result = try runCNNC(["check", model])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasSuffix("PASS\n"), result.stdout)
        let out = path("out/t.c")
        XCTAssertEqual(try runCNNC([model, "-o", out]).status, 0)
        let header = try String(contentsOfFile: path("out/t.h"), encoding: .utf8)
        XCTAssertTrue(header.contains(
            "cnnc_status t_forward(t_context *ctx, const float *int_, float *n_, float *int__, float *a, float *A_, float *ctx_, float *size_t_, int n);"),
            header)
        XCTAssertTrue(header.contains(" *   int_ ('int'): n x 3x8x8\n"), header)
        XCTAssertTrue(header.contains("#define T_OUTPUT_A_SIZE 72 /* per sample: 72 */\n#define T_OUTPUT_A_2_SIZE 72 /* per sample: 72, output 'A' */"), header)
    }

    /// Node names that meet once a role suffix is added: node `a`'s backward function
    /// `train_node_a_backward` was also node `a_backward`'s forward (and `a_b`'s backward
    /// `a_b_backward`'s forward; `a_backward_2` claims the first suffixed name). Each function
    /// gets its own name; the training C builds with -Werror (gcc and clang) and matches the
    /// interpreter.
    func testNodeNamesThatMeetAfterARoleSuffixGetDistinctFunctions() throws {
        let model = path("suffixes.net")
        try """
            network suffixes
            input x shape=2x4x4
            conv a filters=2 size=3 pad=1
            relu a_backward
            conv a_backward_2 filters=2 size=3 pad=1
            batchnorm a_train_forward
            relu a_train_forward_backward
            dropout a_train_forward_train_forward rate=0.5
            flatten f
            dense a_b units=3
            dense a_b_backward units=3
            softmax prob
            """.write(toFile: model, atomically: true, encoding: .utf8)
        let out = path("out/suffixes.c")
        let compiled = try runCNNC([model, "-o", out, "--train", "--batch", "2"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        let c = try String(contentsOfFile: out, encoding: .utf8)
        let functions = c.split(separator: "\n").filter { $0.hasPrefix("static void train_node_") }
            .map { $0.dropFirst("static void ".count).prefix { $0 != "(" } }
        XCTAssertEqual(Set(functions).count, functions.count, "\(functions)")
        XCTAssertTrue(functions.contains("train_node_a_backward_3"), "\(functions)")  // a_backward, a_backward_2 came first
        for compiler in ["gcc", "clang-14"] {
            let built = try runProgram(compiler, ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fopenmp", "-fsyntax-only",
                                                  "-I", path("out"), out])
            if built.status == 127 { continue }  // not installed here
            XCTAssertEqual(built.status, 0, "\(compiler): \(built.stderr)")
        }
        let result = try runCNNC(["check", "--train", model])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasSuffix("PASS\n"), result.stdout)
    }

    /// A file name holding `*/` and `??` lands in comments of the generated C, which still build.
    func testFileNamesThatEndCommentsOrFormTrigraphsCompile() throws {
        try FileManager.default.createDirectory(atPath: path("we*"), withIntermediateDirectories: true)
        let model = path("we*/m??.net")
        try "network t\ninput x shape=3\nrelu\n".write(toFile: model, atomically: true, encoding: .utf8)
        let result = try runCNNC(["check", model])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// `#include "NAME"` has no escapes: an output name with a quote or newline is refused.
    func testOutputNamesThatCannotBeIncludedAreRefused() throws {
        let model = path("relu.net")
        try "network t\ninput x shape=3\nrelu\n".write(toFile: model, atomically: true, encoding: .utf8)
        for name in ["a\"b.c", "a\nb.c", "a\\b.c"] {
            let result = try runCNNC([model, "-o", path(name), "--no-runtime"])
            XCTAssertEqual(result.status, 1)
            let header = String(name.dropLast(2)) + ".h"
            XCTAssertEqual(result.stderr, "error: output file name '\(header)' cannot be written in #include \"...\" (it has a quote, backslash or control character); choose another -o\n")
        }
    }

    // MARK: - Section 6 of issue #14

    /// `int total = n * PQ` and the GEMM column indices are int: a batch that would overflow
    /// them is refused at compile time with the numbers, not left to wrap at run time.
    func testBatchTimesAValueMustFitTheGeneratedInts() throws {
        let model = path("wide.net")
        try "network t\ninput x shape=1x1000x1000\nconv c filters=2000 size=1\n".write(toFile: model, atomically: true, encoding: .utf8)
        let result = try runCNNC([model, "-o", path("out/t.c"), "--batch", "2", "--no-runtime"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "error: batch 2 times the 2000000000 elements of conv 'c' (2000x1000x1000 per sample) is 4000000000, more than the generated C's int indices hold (2147483647); use a smaller --batch\n")
        // summary only counts: it still prints the table.
        XCTAssertEqual(try runCNNC(["summary", model, "--batch", "2"]).status, 0)
        let trained = path("trained.net")
        try "network t\ninput x shape=1x1000x1000\nconv c filters=1000 size=1\nglobal_avgpool\nflatten\ndense d units=2\nsoftmax p\n"
            .write(toFile: trained, atomically: true, encoding: .utf8)
        let check = try runCNNC(["check", "--train", trained, "--batch", "4"])
        XCTAssertEqual(check.status, 1)
        XCTAssertEqual(check.stderr, "error: batch 4 times the 1000000000 elements of conv 'c' (1000x1000x1000 per sample) is 4000000000, more than the generated C's int indices hold (2147483647); use a smaller --batch\n")
    }

    /// Two contexts may save checkpoints from two threads: no static buffer in the generated C.
    func testSaveCheckpointKeepsNoStaticState() throws {
        let model = path("tiny.net")
        try "network t\ninput x shape=4\ndense d units=3\nsoftmax p\n".write(toFile: model, atomically: true, encoding: .utf8)
        XCTAssertEqual(try runCNNC([model, "-o", path("out/t.c"), "--train", "--no-runtime"]).status, 0)
        let source = try String(contentsOfFile: path("out/t.c"), encoding: .utf8)
        XCTAssertTrue(source.contains("    char names[NUM_UPDATED + 1][160];"), source)
        XCTAssertFalse(source.contains("static char"), source)
    }

    /// Foundation's file errors print as the path and the reason, never as a raw NSError.
    func testFoundationErrorsAreDescribedWithThePath() {
        let missing = CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "/nowhere/x.c",
                                                              NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOENT))])
        XCTAssertEqual(DriverError.describing(missing), "error: '/nowhere/x.c': No such file or directory")
        XCTAssertEqual(DriverError.describing(DriverError("error: as is")), "error: as is")
    }

    /// NaN or infinite inputs, and float64 values that float32 cannot hold, are warned about.
    func testNonFiniteAndLossyInputsAreWarnedAbout() throws {
        let model = path("relu.net")
        try "network t\ninput x shape=3\nrelu\n".write(toFile: model, atomically: true, encoding: .utf8)
        var payload: [UInt8] = []
        for v in [1.0, 1e300, .nan] { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload += $0 } }
        let input = try npy("x.npy", shape: "(1, 3)", descr: "<f8", payload: payload)
        let result = try runCNNC(["run", model, "--input", input, "--output", path("y.npy"), "--interpret"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, """
            warning: '\(input)': 1 float64 value beyond float32's range became infinite (first at index 1)
            warning: input 'x' from '\(input)' holds 2 NaN or infinite values (first at index 1); the outputs will show them

            """)
    }

    /// A 20,000-input add and concat compile in linear time (the kernel signature recomputed
    /// the input names per input: 15 s in release before).
    func testTwentyThousandInputAddAndConcatCompileQuickly() throws {
        for op in ["add", "concat"] {
            let model = path("\(op).net")
            try ("network t\ninput x shape=4\n\(op) s from=" + Array(repeating: "x", count: 20_000).joined(separator: ",") + "\n")
                .write(toFile: model, atomically: true, encoding: .utf8)
            let start = Date()
            let result = try runCNNC([model, "-o", path("out/\(op).c"), "--no-runtime"])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertLessThan(Date().timeIntervalSince(start), 10, op)
        }
    }

    /// A 10,000-layer ReLU chain compiles in time linear in its length: 46 s in release when
    /// passes rebuilt use lists per node; about 1.7 s in this debug build on a loaded 2-core
    /// machine (well under 1 s in release). The bound only catches a return to quadratic time.
    func testTenThousandLayerChainCompilesInLinearTime() throws {
        let model = path("chain.net")
        try ("network chain\ninput x shape=16\n" + String(repeating: "relu\n", count: 10_000))
            .write(toFile: model, atomically: true, encoding: .utf8)
        let start = Date()
        let result = try runCNNC([model, "-o", path("out/chain.c"), "--no-runtime"])
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertLessThan(seconds, 20, "10,000 layers took \(seconds) s")
    }

    /// MACs times the batch (and their total) are counted in 128 bits: 6.7e13 MACs per sample
    /// at batch 2^20 trapped with an overflow.
    func testSummaryCountsBeyondSixtyFourBits() throws {
        let model = path("macs.net")
        try "network t\ninput x shape=1024x256x256\nconv c filters=8192 size=11 pad=5\n".write(toFile: model, atomically: true, encoding: .utf8)
        let result = try runCNNC(["summary", model, "--batch", "1048576"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("MACs: 69,751,751,028,714,242,048 (66,520,453,480,448 per sample)\n"), result.stdout)
        let chain = path("chain.net")
        try ("network t\ninput x shape=2047x1024x1024\n" + String(repeating: "relu\n", count: 40)).write(toFile: chain, atomically: true, encoding: .utf8)
        let big = try runCNNC(["summary", chain, "--batch", "1048576"])
        XCTAssertEqual(big.status, 0, big.stderr)
        XCTAssertTrue(big.stdout.hasSuffix("arena: not planned (the values hold 369,114,849,537,425,408 bytes at batch 1048576)\n"), big.stdout)
    }
}
