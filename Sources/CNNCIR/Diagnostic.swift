// Diagnostics: values with source ranges, rendered as `file:line:col: error: message`,
// the source line, and a caret under the offending text.

/// A position in a source file; lines and columns count from 1.
public struct SourceLocation: Hashable, Sendable {
    public var file: String
    public var line: Int
    public var column: Int
    /// How many characters the offending text spans (at least 1 for the caret).
    public var length: Int

    public init(file: String, line: Int, column: Int, length: Int = 1) {
        self.file = file
        self.line = line
        self.column = column
        self.length = max(1, length)
    }

    /// `file:line:col`, as compilers print it.
    public var description: String { "\(file):\(line):\(column)" }
}

/// One message for the user, attached to a source location when there is one.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning, note }

    public var severity: Severity
    public var message: String
    public var location: SourceLocation?
    public var notes: [Diagnostic]

    public init(
        _ severity: Severity = .error, _ message: String, at location: SourceLocation? = nil,
        notes: [Diagnostic] = []
    ) {
        self.severity = severity
        self.message = message
        self.location = location
        self.notes = notes
    }

    public static func error(_ message: String, at location: SourceLocation? = nil) -> Diagnostic {
        Diagnostic(.error, message, at: location)
    }

    public var description: String {
        if let location { return "\(location.description): \(severity.rawValue): \(message)" }
        return "\(severity.rawValue): \(message)"
    }
}

/// Several diagnostics thrown together: the whole list for one run.
public struct DiagnosticList: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// The text of one source file, split into lines, so diagnostics can show the offending line.
public struct SourceFile: Sendable {
    public var path: String
    public var lines: [Substring]

    public init(path: String, text: String) {
        self.path = path
        // "\r\n" is one Character in Swift, so split on it as well as on "\n".
        self.lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }.map {
            $0.hasSuffix("\r") ? $0.dropLast() : $0
        }
    }

    /// Renders a diagnostic with its source line and a caret (`^~~~`) under the offending text.
    public func render(_ diagnostic: Diagnostic) -> String {
        var out = diagnostic.description
        if let loc = diagnostic.location, loc.file == path, loc.line >= 1, loc.line <= lines.count {
            let text = lines[loc.line - 1].map { $0 == "\t" ? " " : $0 }
            out += "\n" + String(text)
            let column = min(max(loc.column, 1), text.count + 1)
            let width = max(1, min(loc.length, text.count - column + 1))
            out += "\n" + String(repeating: " ", count: column - 1) + "^"
                + String(repeating: "~", count: width - 1)
        }
        for note in diagnostic.notes { out += "\n" + render(note) }
        return out
    }
}
