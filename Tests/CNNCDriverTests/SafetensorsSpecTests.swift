// The safetensors specification shared with the C runtime's reader: every case of
// Runtime/tests/safetensors_spec.txt (whose header describes the format; test_runtime.c reads
// the same table) built as a file and read by SafetensorsFile, with the verdict, and for an
// accepted file each tensor's shape and bytes, checked.

import CNNCDriver
import Foundation
import XCTest

final class SafetensorsSpecTests: XCTestCase {
    struct Case {
        var name: String
        var accept: Bool
        var tensors: [(name: String, shape: [Int], offset: Int)]
        var file: [UInt8]
        var data: ArraySlice<UInt8>
    }

    /// The header field's bytes: `\xHH` is one byte, everything else as written (UTF-8).
    static func headerBytes(_ text: String) -> [UInt8] {
        let raw = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < raw.count {
            if raw[i] == UInt8(ascii: "\\"), i + 3 < raw.count, raw[i + 1] == UInt8(ascii: "x"),
               let b = UInt8(String(decoding: raw[i + 2...i + 3], as: UTF8.self), radix: 16) {
                out.append(b)
                i += 4
            } else {
                out.append(raw[i])
                i += 1
            }
        }
        return out
    }

    static func cases() throws -> [Case] {
        let text = try String(contentsOfFile: "\(repoRoot)/Runtime/tests/safetensors_spec.txt", encoding: .utf8)
        var cases: [Case] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix("#") {
            var fields: [String] = []
            var rest = Substring(line)
            while fields.count < 5, let bar = rest.range(of: " | ") {
                fields.append(String(rest[..<bar.lowerBound]))
                rest = rest[bar.upperBound...]
            }
            fields.append(String(rest))
            guard fields.count == 6, let dataSize = Int(fields[3]) else {
                XCTFail("malformed line: \(line)")
                continue
            }
            let header = headerBytes(fields[5])
            var length = UInt64(header.count)
            var cut: Int? = nil
            if fields[4].hasPrefix("cut:") { cut = Int(fields[4].dropFirst(4)) } else if fields[4] != "auto" {
                length = UInt64(fields[4])!
            }
            var file: [UInt8] = []
            withUnsafeBytes(of: length.littleEndian) { file += $0 }
            file += header
            file += (0..<dataSize).map { UInt8(truncatingIfNeeded: 37 * $0 + 11) }
            let data = file[(8 + header.count)...]
            if let cut { file = Array(file.prefix(cut)) }
            let tensors: [(name: String, shape: [Int], offset: Int)] = fields[2] == "-" ? [] : fields[2].split(separator: " ").map { item in
                let open = item.firstIndex(of: "[")!, close = item.firstIndex(of: "]")!, at = item.lastIndex(of: "@")!
                return (name: String(item[..<open]),
                        shape: item[item.index(after: open)..<close].split(separator: ",").map { Int($0)! },
                        offset: Int(item[item.index(after: at)...])!)
            }
            cases.append(Case(name: fields[0], accept: fields[1] == "accept", tensors: tensors, file: file, data: data))
        }
        return cases
    }

    func testTheSwiftReaderPassesTheSharedSpecification() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThan(cases.count, 90)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/spec.safetensors"
        for c in cases {
            try Data(c.file).write(to: URL(fileURLWithPath: path))
            let result = Result { try SafetensorsFile.read(path) }
            switch (result, c.accept) {
            case (.success(let tensors), true):
                XCTAssertEqual(tensors.keys.sorted(), c.tensors.map(\.name), c.name)
                for t in c.tensors {
                    guard let got = tensors[t.name] else { continue }
                    XCTAssertEqual(got.shape, t.shape, "\(c.name): \(t.name)")
                    let expected = c.data.dropFirst(t.offset).prefix(4 * got.data.count)
                    XCTAssertEqual(got.data.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) },
                                   Array(expected), "\(c.name): \(t.name)")
                }
            case (.failure, false):
                break
            case (.success, false):
                XCTFail("case '\(c.name)': accepted, expected reject")
            case (.failure(let error), true):
                XCTFail("case '\(c.name)': rejected, expected accept: \(error)")
            }
        }
    }
}
