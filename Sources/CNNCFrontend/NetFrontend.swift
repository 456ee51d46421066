// The `.net` frontend's entry points: read a file safely (size limit, UTF-8 and binary
// checks), then lex, parse and lower it to a verified `Graph`, or return every problem found.
// The grammar is documented in docs/net-format.md.

import CNNCIR
import Foundation

/// Reads `.net` network descriptions into graphs.
public enum NetFrontend {
    /// The largest `.net` file `load` accepts.
    public static let maxFileSize = 16 << 20

    /// At most this many problems are reported for one file.
    public static let errorLimit = 50

    /// Parses and lowers a .net file's text; runs shape inference; returns the graph (verified)
    /// or every diagnostic found.
    public static func parse(_ text: String, path: String) -> Result<Graph, DiagnosticList> {
        var lexer = NetLexer(file: path)
        lexer.lex(text)
        var parser = NetParser(file: path)
        parser.parse(lexer.lines, errorLimit: errorLimit)
        var diagnostics = lexer.diagnostics + parser.diagnostics
        let stopped = diagnostics.count >= errorLimit
        var graph: Graph?
        if !stopped {
            var lowering = NetLowering(file: path, errorLimit: errorLimit)
            graph = lowering.lower(parser.statements, defaultName: defaultNetworkName(forPath: path))
            diagnostics += lowering.diagnostics
        }
        // Problems the verifier finds in a graph built without errors are compiler bugs, but
        // they are reported all the same rather than passed on.
        if diagnostics.isEmpty, let graph { diagnostics = graph.verify() }
        if diagnostics.isEmpty, let graph { return .success(graph) }
        return .failure(DiagnosticList(ordered(diagnostics, stopped: stopped)))
    }

    /// Reads the file (as bytes: reject non-UTF-8, NUL bytes/binary garbage with a clean error
    /// naming the line:col of the first bad byte; reject files over 16 MiB) then parse.
    public static func load(path: String) -> Result<(Graph, SourceFile), DiagnosticList> {
        switch read(path: path) {
        case .failure(let problems):
            return .failure(problems)
        case .success(let text):
            return parse(text, path: path).map { ($0, SourceFile(path: path, text: text)) }
        }
    }

    /// The text of a `.net` file, checked as `load` checks it; for callers that want the
    /// text to render parse diagnostics against.
    public static func read(path: String) -> Result<String, DiagnosticList> {
        func failure(_ message: String) -> Result<String, DiagnosticList> {
            .failure(DiagnosticList([.error(message)]))
        }
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return failure("cannot read '\(path)': no such file")
        }
        guard !isDirectory.boolValue else { return failure("cannot read '\(path)': it is a directory") }
        guard manager.isReadableFile(atPath: path) else {
            return failure("cannot read '\(path)': permission denied")
        }
        if let size = (try? manager.attributesOfItem(atPath: path))?[.size] as? NSNumber,
           size.int64Value > Int64(maxFileSize) {
            return failure("'\(path)' is \(size.int64Value) bytes; the limit is \(maxFileSize) (16 MiB)")
        }
        let bytes: [UInt8]
        do {
            // A regular file only: devices and FIFOs are refused, not read forever.
            bytes = try InputFile.read(path, limit: maxFileSize)
        } catch {
            return failure("\(error)")
        }
        return decode(bytes, path: path)
    }

    /// Checks that bytes are text (UTF-8 without NUL or other control bytes besides tab, line
    /// feed and carriage return) and decodes them, dropping a UTF-8 byte order mark. The first
    /// bad byte is reported at its line and column.
    public static func decode(_ bytes: [UInt8], path: String) -> Result<String, DiagnosticList> {
        var bytes = bytes[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        let invalid = String(validating: bytes, as: UTF8.self) == nil ? firstInvalidUTF8(bytes) : nil
        let end = invalid ?? bytes.endIndex
        let control = bytes[..<end].firstIndex { ($0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D) || $0 == 0x7F }
        guard let bad = control ?? invalid else { return .success(String(decoding: bytes, as: UTF8.self)) }
        let byte = bytes[bad]
        let what = control == nil ? "invalid UTF-8 byte \(hex(byte))"
            : byte == 0 ? "NUL byte" : "control byte \(hex(byte))"
        // Lines and columns as `SourceFile` counts them: Characters of the text before it.
        let lineStart = bytes[..<bad].lastIndex(of: 0x0A).map { $0 + 1 } ?? bytes.startIndex
        let line = bytes[..<bad].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
        let column = String(decoding: bytes[lineStart..<bad], as: UTF8.self).count + 1
        return .failure(DiagnosticList([.error(
            "'\(path)' is not a text file: \(what)",
            at: SourceLocation(file: path, line: line, column: column))]))
    }

    /// The network name a file gets without a `network` line: its name without the extension,
    /// every character other than ASCII letters, digits and '_' turned into '_', and '_' in
    /// front of a leading digit.
    public static func defaultNetworkName(forPath path: String) -> String {
        var stem = path.split(separator: "/").last ?? ""
        if let dot = stem.lastIndex(of: "."), dot != stem.startIndex { stem = stem[..<dot] }
        var name = String(stem.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        if name.isEmpty { return "network" }
        if name.first!.isNumber { name = "_" + name }
        return String(name.prefix(128))
    }

    // MARK: - Helpers

    /// Diagnostics in file order (those without a location last), at most `errorLimit` of them;
    /// `stopped` says that parsing stopped at the limit.
    private static func ordered(_ diagnostics: [Diagnostic], stopped: Bool) -> [Diagnostic] {
        let sorted = diagnostics.enumerated().sorted { a, b in
            let la = a.element.location, lb = b.element.location
            let ka = (la?.line ?? Int.max, la?.column ?? Int.max, a.offset)
            let kb = (lb?.line ?? Int.max, lb?.column ?? Int.max, b.offset)
            return ka < kb
        }.map(\.element)
        guard stopped || sorted.count > errorLimit else { return sorted }
        return Array(sorted.prefix(errorLimit))
            + [.error("too many errors; stopped after the first \(errorLimit)")]
    }

    /// The offset of the first byte that does not start a valid UTF-8 sequence.
    private static func firstInvalidUTF8(_ bytes: ArraySlice<UInt8>) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = bytes.startIndex
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return "0x" + (digits.count == 1 ? "0" : "") + digits
    }
}
