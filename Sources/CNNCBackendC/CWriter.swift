// A small writer for C source text: it owns indentation, so emitters never write raw tabs.

/// Accumulates C source lines with automatic indentation.
public struct CWriter {
    public private(set) var text = ""
    private var depth = 0

    public init() {}

    /// One line at the current indentation (an empty string writes an empty line).
    public mutating func line(_ s: String = "") {
        if s.isEmpty { text += "\n"; return }
        text += String(repeating: "    ", count: depth) + s + "\n"
    }

    /// Several lines, each indented.
    public mutating func lines(_ s: String) {
        for l in s.split(separator: "\n", omittingEmptySubsequences: false) { line(String(l)) }
    }

    /// `header {`, the body one level deeper, then `}` plus `trailer`.
    public mutating func block(_ header: String, trailer: String = "", _ body: (inout CWriter) -> Void) {
        line(header.isEmpty ? "{" : header + " {")
        depth += 1
        body(&self)
        depth -= 1
        line("}" + trailer)
    }

    /// A `/* ... */` comment, one `*` line per input line. Text from input (file and node
    /// names) cannot end the comment early or open a nested one, nor form a trigraph.
    public mutating func comment(_ text: String) {
        let s = commentSafe(text)
        let parts = s.split(separator: "\n", omittingEmptySubsequences: false)
        if parts.count == 1 { line("/* \(s) */"); return }
        line("/*")
        for p in parts { line(p.isEmpty ? " *" : " * \(p)") }
        line(" */")
    }
}

/// `text` with the character pairs a C comment cannot hold split by a space: `*/` (ends it),
/// `/*` (-Wcomment), `??` (a trigraph under -std=c11).
public func commentSafe(_ text: String) -> String {
    // One pass over the bytes (String.contains is slow enough to show in a 10,000-layer file).
    func splits(_ a: UInt8, _ b: UInt8) -> Bool {
        (a == UInt8(ascii: "*") && b == UInt8(ascii: "/")) || (a == UInt8(ascii: "/") && b == UInt8(ascii: "*"))
            || (a == UInt8(ascii: "?") && b == UInt8(ascii: "?"))
    }
    var previous: UInt8 = 0
    var needed = false
    for byte in text.utf8 {
        if splits(previous, byte) { needed = true; break }
        previous = byte
    }
    guard needed else { return text }
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count + 8)
    previous = 0
    for byte in text.utf8 {
        if splits(previous, byte) { out.append(UInt8(ascii: " ")) }
        out.append(byte)
        previous = byte
    }
    return String(decoding: out, as: UTF8.self)
}

/// `text` as a C string literal: quotes, backslashes and bytes outside printable ASCII
/// escaped (octal, three digits, so a following digit never joins the escape).
func cStringLiteral(_ text: String) -> String {
    var out = "\""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out += "\\\""
        case UInt8(ascii: "\\"): out += "\\\\"
        case 0x20...0x7e where byte != UInt8(ascii: "?"): out += String(UnicodeScalar(byte))
        default: out += "\\" + String(byte, radix: 8).leftPadded(to: 3)
        }
    }
    return out + "\""
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
