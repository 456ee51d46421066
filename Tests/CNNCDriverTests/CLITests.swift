// CLI tests: run the built `cnnc` and check exact output and exit codes.

import CNNCDriver
import Foundation
import XCTest

final class CLITests: XCTestCase {
    func testSummaryOfLeNetIsExact() throws {
        let r = try runCNNC(["summary", "Examples/lenet/model.net"], in: repoRoot)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
            network lenet (Examples/lenet/model.net), batch 1
            layer      op       output      params     MACs  act. bytes  kernel
            ---------------------------------------------------------------------------
            image      input    1x1x28x28        0        0       3,136
            c1         conv     1x6x28x28      156  117,600      18,816  implicit +relu
            relu_1     relu     1x6x28x28        0        0      18,816  fused into c1
            maxpool_1  maxpool  1x6x14x14        0        0       4,704  direct
            c2         conv     1x16x10x10   2,416  240,000       6,400  implicit +relu
            relu_2     relu     1x16x10x10       0        0       6,400  fused into c2
            maxpool_2  maxpool  1x16x5x5         0        0       1,600  direct
            f1         dense    1x120       48,120   48,000         480  dense +relu
            relu_3     relu     1x120            0        0         480  fused into f1
            f2         dense    1x84        10,164   10,080         336  dense +relu
            relu_4     relu     1x84             0        0         336  fused into f2
            logits     dense    1x10           850      840          40  dense
            ---------------------------------------------------------------------------
            total                           61,706  416,520      61,544
            trainable parameters: 61,706 (246,824 bytes)
            MACs: 416,520 (416,520 per sample)
            activation bytes, all layers: 61,544
            arena (generated code, batch 1): 23,552 bytes; one buffer per value: 32,512; lower bound (peak live): 23,552
            in place: 0 element-wise kernels
            weights region: 263,872 bytes (parameters and what is derived from them)

            """)
        XCTAssertEqual(r.stderr, "")
    }

    func testSummaryBatchScalesMACsAndBytes() throws {
        let r = try runCNNC(["summary", "Examples/lenet/model.net", "--batch", "32"], in: repoRoot)
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.contains("c1         conv     32x6x28x28"), r.stdout)
        XCTAssertTrue(r.stdout.contains("MACs: 13,328,640 (416,520 per sample)"), r.stdout)
    }

    func testImageNetParameterCountsAndSpeed() throws {
        let expected = ["alexnet": "61,100,840", "vgg16": "138,357,544", "resnet18": "11,689,512",
                        "googlenet": "6,624,904", "densenet121": "7,978,856"]
        for name in expected.keys.sorted() {
            let start = Date()
            let r = try runCNNC(["summary", "Examples/imagenet/\(name).net"], in: repoRoot)
            let seconds = Date().timeIntervalSince(start)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("trainable parameters: \(expected[name]!) "), "\(name): \(r.stdout.suffix(300))")
            XCTAssertLessThan(seconds, 5, "\(name) summary took \(seconds) s")
        }
    }

    func testBadNetFileGivesRenderedErrorsAndStatus1() throws {
        let dir = try temporaryDirectory()
        try "network x\ninput image shape=1x28x28\nconv c1 filters=6 size=5 pda=2\ndense f units=10 from=c3\n"
            .write(toFile: "\(dir)/bad.net", atomically: true, encoding: .utf8)
        let r = try runCNNC(["summary", "bad.net"], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, """
            bad.net:3:26: error: conv has no key 'pda'; did you mean 'pad'?
            conv c1 filters=6 size=5 pda=2
                                     ^~~
            bad.net:4:23: error: 'c3' is not defined; did you mean 'c1'?
            dense f units=10 from=c3
                                  ^~
            2 errors generated.

            """)
    }

    func testGarbageAndMissingFilesFailCleanly() throws {
        let dir = try temporaryDirectory()
        var bytes = [UInt8](repeating: 0, count: 4096)
        for i in bytes.indices { bytes[i] = UInt8((i * 131 + 7) % 256) }
        FileManager.default.createFile(atPath: "\(dir)/garbage.net", contents: Data(bytes))
        for args in [["summary", "garbage.net"], ["summary", "missing.net"], ["check", "garbage.net"],
                     ["garbage.net", "-o", "x.c"], ["dump-ir", "missing.net"]] {
            let r = try runCNNC(args, in: dir)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("error:"), "\(args): \(r.stderr)")
        }
    }

    func testDumpIRParsesBack() throws {
        let dir = try temporaryDirectory()
        let r = try runCNNC(["dump-ir", "Examples/resnet20/model.net"], in: repoRoot)
        XCTAssertEqual(r.status, 0, r.stderr)
        try r.stdout.write(toFile: "\(dir)/resnet20.ir", atomically: true, encoding: .utf8)
        let again = try runCNNC(["dump-ir", "\(dir)/resnet20.ir"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, r.stdout)
    }

    func testCheckPrintsPerOutputLinesAndPasses() throws {
        let r = try runCNNC(["check", "Examples/inception/model.net", "--batch", "2"], in: repoRoot)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("check inception (Examples/inception/model.net): batch 2, seeded weights (seed 1)\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("[reduction] PASS"), r.stdout)
        XCTAssertTrue(r.stdout.hasSuffix("threads 1 vs 2: bitwise equal PASS\nPASS\n"), r.stdout)
    }

    func testRunMatchesInterpreterAndRejectsWrongShapes() throws {
        let dir = try temporaryDirectory()
        let x = FloatArray(shape: [3, 1, 28, 28], data: (0..<(3 * 784)).map { Float(($0 * 17) % 97) / 97 })
        try NumpyFile.write(x, to: "\(dir)/x.npy")
        let c = try runCNNC(["run", examplePath("lenet"), "--input", "x.npy", "--output", "c.npy"], in: dir)
        XCTAssertEqual(c.status, 0, c.stderr)
        let i = try runCNNC(["run", examplePath("lenet"), "--input", "x.npy", "--output", "i.npy", "--interpret"], in: dir)
        XCTAssertEqual(i.status, 0, i.stderr)
        let a = try NumpyFile.read("\(dir)/c.npy"), b = try NumpyFile.read("\(dir)/i.npy")
        XCTAssertEqual(a.shape, [3, 10])
        XCTAssertEqual(b.shape, [3, 10])
        for (u, v) in zip(a.data, b.data) { XCTAssertEqual(u, v, accuracy: 1e-4) }

        let bad = FloatArray(shape: [2, 1, 28, 27], data: Array(repeating: 0, count: 2 * 28 * 27))
        try NumpyFile.write(bad, to: "\(dir)/bad.npy")
        let r = try runCNNC(["run", examplePath("lenet"), "--input", "bad.npy", "--output", "o.npy"], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: input 'image' from 'bad.npy' has shape [2, 1, 28, 27], expected [N, 1, 28, 28]\n")
    }

    func testCompileIsDeterministic() throws {
        let dir = try temporaryDirectory()
        for out in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(out)", withIntermediateDirectories: true)
            let r = try runCNNC([examplePath("densenet_small"), "-o", "\(dir)/\(out)/model.c", "--batch", "8"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        for file in ["model.c", "model.h", "cnnc_runtime.c"] {
            XCTAssertEqual(FileManager.default.contents(atPath: "\(dir)/a/\(file)"),
                           FileManager.default.contents(atPath: "\(dir)/b/\(file)"), file)
        }
    }

    /// DenseNet and inception concatenate nothing at run time: every concat input is written
    /// into its slice by its producer, so no concat kernel is emitted and nothing is copied but
    /// the output; `summary` says so.
    func testConcatsAreWrittenInPlace() throws {
        let dir = try temporaryDirectory()
        for (name, concats, inputs) in [("densenet_small", 18, 36), ("inception", 3, 12)] {
            let r = try runCNNC([examplePath(name), "-o", "\(dir)/\(name).c", "--batch", "4"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let source = try String(contentsOfFile: "\(dir)/\(name).c", encoding: .utf8)
            // A kernel's header comment opens with its node: " * concat 'name': concat".
            XCTAssertFalse(source.contains("\n * concat '"), "\(name) has a concat kernel")
            XCTAssertEqual(source.components(separatedBy: "every input was written into its slice by its producer").count - 1,
                           concats, name)
            XCTAssertEqual(source.components(separatedBy: "memcpy(").count - 1, 1, "\(name): only the output is copied")
            let summary = try runCNNC(["summary", examplePath(name)])
            XCTAssertTrue(summary.stdout.contains("concat inputs written into their slices: \(inputs) of \(inputs) (no concat copies)"),
                          summary.stdout)
            XCTAssertTrue(summary.stdout.contains("in place (no copy)"), summary.stdout)
        }
    }
}
