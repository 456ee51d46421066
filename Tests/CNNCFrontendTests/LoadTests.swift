// `NetFrontend.load`: reading files from disk, with clean errors for files that are missing,
// unreadable, too large or not text.

import CNNCIR
import Foundation
import XCTest

@testable import CNNCFrontend

final class LoadTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("cnnc-frontend-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func messages(_ result: Result<(Graph, SourceFile), DiagnosticList>) -> [String] {
        switch result {
        case .success: return []
        case .failure(let list): return list.diagnostics.map(\.description)
        }
    }

    func testLoadsAFileWithCRLFAndAByteOrderMark() throws {
        let path = try write("tiny-net.net", [0xEF, 0xBB, 0xBF] + Array("input x shape=3x4x4\r\nconv c filters=2 size=3\r\n".utf8))
        let (graph, source) = try NetFrontend.load(path: path).get()
        XCTAssertEqual(graph.name, "tiny_net")
        XCTAssertEqual(graph.node(named: "c")?.shape, Shape([2, 2, 2]))
        XCTAssertEqual(graph.node(named: "c")?.location?.file, path)
        XCTAssertEqual(source.path, path)
        XCTAssertEqual(source.lines.first, "input x shape=3x4x4")
    }

    func testParseErrorsCarryThePath() throws {
        let path = try write("bad.net", Array("input x shape=3\ncnov\n".utf8))
        XCTAssertEqual(messages(NetFrontend.load(path: path)),
                       ["\(path):2:1: error: unknown layer type 'cnov'; did you mean 'conv'?"])
    }

    func testMissingFileAndDirectory() {
        let missing = directory.appendingPathComponent("x.net").path
        XCTAssertEqual(messages(NetFrontend.load(path: missing)), ["error: cannot read '\(missing)': no such file"])
        XCTAssertEqual(messages(NetFrontend.load(path: directory.path)),
                       ["error: cannot read '\(directory.path)': it is a directory"])
    }

    func testUnreadableFile() throws {
        let path = try write("secret.net", Array("input x shape=3\nrelu\n".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path) }
        guard !FileManager.default.isReadableFile(atPath: path) else { throw XCTSkip("running as root") }
        XCTAssertEqual(messages(NetFrontend.load(path: path)), ["error: cannot read '\(path)': permission denied"])
    }

    func testFileOverSixteenMebibytes() throws {
        let url = directory.appendingPathComponent("huge.net")
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(NetFrontend.maxFileSize + 1))  // sparse: no real writing
        try handle.close()
        XCTAssertEqual(messages(NetFrontend.load(path: url.path)),
                       ["error: '\(url.path)' is 16777217 bytes; the limit is 16777216 (16 MiB)"])
    }

    func testBinaryFileNamesTheFirstBadByte() throws {
        let path = try write("model.net", Array("input x shape=3\n# ok\nrelu ".utf8) + [0x00, 0xFF])
        XCTAssertEqual(messages(NetFrontend.load(path: path)),
                       ["\(path):3:6: error: '\(path)' is not a text file: NUL byte"])
    }

    func testDevicesAreRefused() throws {
        guard FileManager.default.fileExists(atPath: "/dev/zero") else { throw XCTSkip("no /dev/zero") }
        XCTAssertEqual(messages(NetFrontend.load(path: "/dev/zero")),
                       ["error: cannot read '/dev/zero': it is a character device, not a regular file"])
    }
}
