// Hostile inputs: the frontend must never crash, trap or hang, and must answer quickly with
// a clean message. Random inputs are seeded; a failure prints the seed.

import CNNCIR
import Foundation
import XCTest

@testable import CNNCFrontend

final class RobustnessTests: XCTestCase {
    /// Messages only (rendering would repeat megabyte lines).
    private func messages(_ text: String) -> [String] {
        switch NetFrontend.parse(text, path: snippetPath) {
        case .success: return []
        case .failure(let list): return list.diagnostics.map(\.description)
        }
    }

    private func time(_ body: () -> Void) -> TimeInterval {
        let start = Date()
        body()
        return Date().timeIntervalSince(start)
    }

    func testOneMegabyteWord() {
        let word = String(repeating: "a", count: 1 << 20)
        var result: [String] = []
        let seconds = time { result = messages("input x shape=3\n\(word)\n") }
        XCTAssertEqual(result, ["t.net:2:1: error: unknown layer type 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"])
        XCTAssertLessThan(seconds, 2)
    }

    func testOneMegabyteName() {
        let name = String(repeating: "n", count: 1 << 20)
        XCTAssertEqual(messages("input x shape=3\nrelu \(name)\n"),
                       ["t.net:2:6: error: name 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...' is too long (1048576 characters; the limit is 128)"])
    }

    func testLongFromList() {
        let list = Array(repeating: "x", count: 1 << 16).joined(separator: ",")
        var result: [String] = []
        let seconds = time { result = messages("input x shape=3\nrelu r from=\(list)\n") }
        XCTAssertEqual(result, ["t.net:2:1: error: relu 'r' takes 1 input, got 65536"])
        XCTAssertLessThan(seconds, 3)
    }

    func testOneMegabyteComment() throws {
        let comment = "# " + String(repeating: "z", count: 1 << 20)
        XCTAssertEqual(messages("input x shape=3\n\(comment)\nrelu\n"), [])
    }

    func testHugeNumbersEverywhere() {
        let digits = String(repeating: "7", count: 100_000)
        XCTAssertEqual(messages("input x shape=\(digits)\nrelu\n"),
                       ["t.net:1:15: error: shape '77777777777777777777777777777777...': number with 100000 digits is too large"])
        XCTAssertEqual(messages("input x shape=3x8x8\nconv filters=4 size=3x\(digits)\n"),
                       ["t.net:2:21: error: conv 'size=3x777777777777777777...': value is 100002 characters long (limit 64)"])
        XCTAssertEqual(messages("input x shape=3x8x8\nconv filters=4 size=3 stride=99999999999999999999\n"),
                       ["t.net:2:30: error: conv 'stride=99999999999999999999': number with 20 digits is too large"])
        XCTAssertEqual(messages("input x shape=8\ndropout rate=1e999\n"),
                       ["t.net:2:14: error: dropout 'rate=1e999': expected a number"])
    }

    func testLargestShapesAreRefusedCleanly() {
        XCTAssertEqual(messages("input x shape=1048576x1048576x1048576\nrelu\n"),
                       ["t.net:1:1: error: input 'x' output 1048576x1048576x1048576 has 1152921504606846976 elements per sample (limit 2147483647)"])
        XCTAssertEqual(messages("input x shape=4096x4096\nrelu\n"),
                       ["t.net:1:15: error: shape '4096x4096': expected CxHxW or F, got 2 dimensions"])
    }

    /// Parameter counts are products of sizes from the input: a dense layer of 2^20 units on
    /// 2^20 inputs has 2^40 weights, refused with the numbers (Graph's products once trapped).
    func testHugeParameterCountsAreRefused() {
        XCTAssertEqual(messages("input x shape=1048576\ndense d units=1048576\n"),
                       ["t.net:2:1: error: parameter 'd.weight' of shape [1048576, 1048576] has 1099511627776 elements (limit 2147483647)"])
        XCTAssertEqual(messages("input x shape=1024x32x32\nconv c filters=2048 size=33 pad=16\n"),
                       ["t.net:2:1: error: parameter 'c.weight' of shape [2048, 1024, 33, 33] has 2283798528 elements (limit 2147483647)"])
    }

    func testManyErrorsStopAtTheLimit() {
        let text = "input x shape=3\n" + String(repeating: "cnov\n", count: 100_000)
        var result: [String] = []
        let seconds = time { result = messages(text) }
        XCTAssertEqual(result.count, NetFrontend.errorLimit + 1)
        XCTAssertEqual(result.last, "error: too many errors; stopped after the first 50")
        XCTAssertLessThan(seconds, 3)
    }

    func testManyUndefinedNamesAmongManyNames() {
        var lines = ["input x shape=3"]
        for i in 0..<1000 { lines.append("relu n\(i)") }
        for i in 0..<1000 { lines.append("relu m\(i) from=q\(i)") }
        var result: [String] = []
        let seconds = time { result = messages(lines.joined(separator: "\n")) }
        XCTAssertEqual(result.count, NetFrontend.errorLimit + 1)
        XCTAssertLessThan(seconds, 3)
    }

    func testRandomBytesAreRejectedQuickly() {
        for seed in UInt64(1)...40 {
            var state = seed
            let bytes = (0..<4096).map { _ -> UInt8 in
                state = SeededInit.splitmix64(state)
                return UInt8(truncatingIfNeeded: state)
            }
            guard case .failure(let list) = NetFrontend.decode(bytes, path: snippetPath) else {
                XCTFail("seed \(seed): random bytes were accepted as text")
                continue
            }
            XCTAssertEqual(list.diagnostics.count, 1, "seed \(seed)")
            XCTAssertNotNil(list.diagnostics.first?.location, "seed \(seed)")
        }
    }

    func testRandomTextNeverCrashes() {
        // Words from the language, glued with random punctuation: exercises error recovery.
        let words = ["input", "output", "network", "conv", "relu", "add", "concat", "x", "c1", "from=x",
                     "from=c1,x", "shape=3x8x8", "shape=3", "filters=4", "size=3", "pad=same", "=", "==",
                     ",", "from=", "groups=0", "units=5", "dense", "#", "\u{A0}", "size=3x", "pad=1,2", "é"]
        let separators = [" ", " ", " ", "\t", "\n", "\n", "\r\n"]
        for seed in UInt64(1)...300 {
            var state = seed
            func next(_ n: Int) -> Int {
                state = SeededInit.splitmix64(state)
                return Int(state % UInt64(n))
            }
            var text = ""
            for _ in 0..<next(60) { text += words[next(words.count)] + separators[next(separators.count)] }
            switch NetFrontend.parse(text, path: snippetPath) {
            case .success(let graph):
                XCTAssertEqual(graph.verify(), [], "seed \(seed)")
            case .failure(let list):
                XCTAssertFalse(list.diagnostics.isEmpty, "seed \(seed)")
                _ = render(list, text: text)
            }
        }
    }
}
