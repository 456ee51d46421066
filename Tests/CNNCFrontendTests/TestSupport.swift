// Helpers shared by the frontend tests: parse a `.net` snippet, and render its diagnostics
// exactly as the command-line tool shows them.

import CNNCIR
import XCTest

@testable import CNNCFrontend

/// The file name every snippet is parsed under.
let snippetPath = "t.net"

/// Parses a snippet that must be valid; failures show the rendered diagnostics.
func parseValid(_ text: String, path: String = snippetPath,
                file: StaticString = #filePath, line: UInt = #line) -> Graph? {
    switch NetFrontend.parse(text, path: path) {
    case .success(let graph):
        return graph
    case .failure(let list):
        XCTFail("expected a valid network, got:\n" + render(list, text: text, path: path), file: file, line: line)
        return nil
    }
}

/// The rendered diagnostics for a snippet (nil when it parses), one block per diagnostic.
func diagnosticsText(_ text: String, path: String = snippetPath) -> String? {
    switch NetFrontend.parse(text, path: path) {
    case .success: return nil
    case .failure(let list): return render(list, text: text, path: path)
    }
}

/// Renders every diagnostic with its source line and caret, as the CLI does.
func render(_ list: DiagnosticList, text: String, path: String = snippetPath) -> String {
    let source = SourceFile(path: path, text: text)
    return list.diagnostics.map { source.render($0) }.joined(separator: "\n")
}

/// The output shape of the node named `name`, as text (`6x28x28`).
func shape(_ graph: Graph?, _ name: String) -> String? {
    graph?.node(named: name)?.shape.description
}

/// A snippet with one 3-d input `x` followed by the given lines.
func withInput(_ shape: String, _ lines: String) -> String {
    "input x shape=\(shape)\n" + lines
}
