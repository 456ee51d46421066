// Every reproducer tools/fuzz/fuzz.py saved (tools/fuzz/corpus/KIND-FAMILY-HASH/: the input
// files and command.txt, whose first line is the command) replayed against the built cnnc:
// no crash (a trap or signal) and no hang, and where cnnc writes C, gcc -Werror accepts it.

import Foundation
import XCTest

final class FuzzCorpusTests: XCTestCase {
    func testEveryFuzzReproducerIsAnsweredCleanly() throws {
        let corpus = "\(repoRoot)/tools/fuzz/corpus"
        let cases = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted()
        XCTAssertFalse(cases.isEmpty)
        for name in cases {
            let work = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: work) }
            for file in try FileManager.default.contentsOfDirectory(atPath: "\(corpus)/\(name)") {
                try FileManager.default.copyItem(atPath: "\(corpus)/\(name)/\(file)", toPath: "\(work)/\(file)")
            }
            let command = try String(contentsOfFile: "\(work)/command.txt", encoding: .utf8)
                .split(separator: "\n").first.map(String.init) ?? ""
            let parts = command.components(separatedBy: " && ")
            let cnnc = parts[0].split(separator: " ").map(String.init)
            XCTAssertEqual(cnnc.first, "cnnc", name)
            let result = try runCNNC(Array(cnnc.dropFirst()), in: work)
            XCTAssertTrue(result.status == 0 || result.status == 1, "\(name): exit \(result.status)\n\(result.stderr)")
            XCTAssertFalse(result.stderr.contains("compiler bug"), "\(name): \(result.stderr)")
            guard result.status == 0, parts.count > 1 else { continue }
            let gcc = Process()
            gcc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            gcc.arguments = parts[1].split(separator: " ").map(String.init)
            gcc.currentDirectoryURL = URL(fileURLWithPath: work)
            let err = Pipe()
            gcc.standardError = err
            try gcc.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            gcc.waitUntilExit()
            XCTAssertEqual(gcc.terminationStatus, 0, "\(name): \(text)")
        }
    }
}
