// docs/net-format.md stays in step with the code: a section per op that lists every key of
// its schema with the default, every alias, and examples that parse.

import CNNCIR
import Foundation
import XCTest

@testable import CNNCFrontend

final class DocumentationTests: XCTestCase {
    private static let documentPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/net-format.md").path

    private func document() throws -> String {
        try String(contentsOfFile: Self.documentPath, encoding: .utf8)
    }

    /// The text of the section with the heading `heading`, up to the next `##` or `###` heading.
    private func section(_ heading: String, in document: String) -> String? {
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0 == heading }) else { return nil }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") || $0.hasPrefix("### ") } ?? lines.endIndex
        return lines[start..<end].joined(separator: "\n")
    }

    func testEveryOpHasASectionListingItsKeysAndAliases() throws {
        let document = try document()
        // The keys of fused epilogues have their own table, shared by conv and dense.
        let epilogue = try XCTUnwrap(section("#### Fused epilogue (conv and dense)", in: document))
        for keyword in OpKeyword.allCases {
            guard let text = section("### \(keyword.rawValue)", in: document) else {
                XCTFail("docs/net-format.md has no '### \(keyword.rawValue)' section: document the op there")
                continue
            }
            for spec in keyword.attributes {
                let searched = text.contains(epilogue) ? text : text + "\n" + epilogue
                let rows = searched.split(separator: "\n").filter { $0.hasPrefix("| `\(spec.key)` |") }
                XCTAssertEqual(rows.count, 1, "\(keyword.rawValue): key '\(spec.key)' needs one row in its table")
                if let defaultText = spec.defaultText, let row = rows.first {
                    XCTAssertTrue(row.contains("`\(defaultText)`"), "\(keyword.rawValue) \(spec.key): default \(defaultText)")
                }
                if spec.required, let row = rows.first {
                    XCTAssertTrue(row.contains("required"), "\(keyword.rawValue) \(spec.key) is required")
                }
            }
            for alias in layerAliases where OpKeyword.lookup(alias) == keyword {
                XCTAssertTrue(text.contains("`\(alias)`"), "\(keyword.rawValue): alias '\(alias)' is not documented")
            }
        }
    }

    func testEveryExampleParses() throws {
        let document = try document()
        var examples: [(line: Int, text: String)] = []
        var current: [Substring]?
        var startLine = 0
        for (i, line) in document.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if current == nil, line == "```net" {
                current = []
                startLine = i + 2
            } else if current != nil, line == "```" {
                examples.append((startLine, current!.joined(separator: "\n")))
                current = nil
            } else {
                current?.append(line)
            }
        }
        XCTAssertGreaterThanOrEqual(examples.count, OpKeyword.allCases.count)
        for example in examples {
            if case .failure(let list) = NetFrontend.parse(example.text, path: "net-format.md") {
                XCTFail("the example at docs/net-format.md:\(example.line) does not parse:\n"
                        + render(list, text: example.text, path: "net-format.md"))
            }
        }
    }

    func testTheDiagnosticsExampleIsWhatTheUserSees() throws {
        let document = try document()
        let example = try XCTUnwrap(DiagnosticTests.cases.first { $0.name == "several problems in one run" })
        XCTAssertTrue(document.contains(example.expected), "update the example in 'Diagnostics and limits'")
        XCTAssertTrue(document.contains(String(decoding: example.bytes, as: UTF8.self)))
    }
}
