// The `.net` lexer: splits text into lines (at `\n`, so `\r\n` too, as `SourceFile` does) and
// each line into words separated by spaces and tabs, dropping `#` comments and blank lines.
// Outside comments a `.net` file is printable ASCII; the first other character on a line is
// reported and the line is marked broken so the parser stays quiet about it.
//
// Columns count Characters. Lines of plain ASCII (nearly all) are scanned as bytes, where a
// byte is a Character; other lines are scanned Character by Character.

import CNNCIR

/// The words of one line that has any.
struct NetLine: Sendable {
    var number: Int
    var tokens: [NetToken]
    /// A character that is not allowed was found (and reported) on this line.
    var broken = false
}

/// Splits `.net` text into lines of tokens.
struct NetLexer {
    let file: String
    private(set) var lines: [NetLine] = []
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    /// Lexes the whole text; afterwards `lines` and `diagnostics` hold the result.
    mutating func lex(_ text: String) {
        let bytes = Array(text.utf8)
        var start = 0
        var number = 1
        while start <= bytes.count {
            var end = start
            var ascii = true
            while end < bytes.count, bytes[end] != 0x0A {
                if bytes[end] >= 0x80 { ascii = false }
                end += 1
            }
            var line = NetLine(number: number, tokens: [])
            if ascii {
                lexASCII(bytes[start..<end], into: &line)
            } else {
                lexCharacters(String(decoding: bytes[start..<end], as: UTF8.self), into: &line)
            }
            if !line.tokens.isEmpty { lines.append(line) }
            number += 1
            start = end + 1
        }
    }

    /// One line of ASCII: every byte is one column.
    private mutating func lexASCII(_ bytes: ArraySlice<UInt8>, into line: inout NetLine) {
        var tokenStart: Int?
        func endToken(at end: Int) {
            guard let start = tokenStart else { return }
            line.tokens.append(NetToken(
                text: String(decoding: bytes[start..<end], as: UTF8.self), line: line.number,
                column: start - bytes.startIndex + 1, length: end - start))
            tokenStart = nil
        }
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "#") { break }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                endToken(at: index)
            } else {
                if tokenStart == nil { tokenStart = index }
                if !line.broken, byte < 0x20 || byte == 0x7F {
                    reportCharacter(Character(Unicode.Scalar(byte)), line: &line, column: index - bytes.startIndex + 1)
                }
            }
            index += 1
        }
        endToken(at: index)
    }

    /// A line with other characters (allowed in comments): column by Character.
    private mutating func lexCharacters(_ text: String, into line: inout NetLine) {
        var tokenStart: String.Index?
        var tokenColumn = 0
        var column = 0
        func endToken(at end: String.Index) {
            guard let start = tokenStart else { return }
            line.tokens.append(NetToken(text: String(text[start..<end]), line: line.number,
                                        column: tokenColumn, length: column - tokenColumn))
            tokenStart = nil
        }
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            column += 1
            if character == "#" { break }
            if character == " " || character == "\t" || character == "\r" {
                endToken(at: index)
            } else {
                if tokenStart == nil {
                    tokenStart = index
                    tokenColumn = column
                }
                if !line.broken, !NetLexer.isAllowed(character) {
                    reportCharacter(character, line: &line, column: column)
                }
            }
            index = text.index(after: index)
        }
        if index == text.endIndex { column += 1 }  // one past the last character
        endToken(at: index)
    }

    private mutating func reportCharacter(_ character: Character, line: inout NetLine, column: Int) {
        line.broken = true
        diagnostics.append(.error(
            "unexpected character \(NetLexer.describe(character)) (outside comments only printable ASCII is allowed)",
            at: SourceLocation(file: file, line: line.number, column: column)))
    }

    /// Printable ASCII, the only characters allowed outside comments.
    static func isAllowed(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return false }
        return ascii >= 0x20 && ascii < 0x7F
    }

    /// `U+00A0`, or several code points for a combined character.
    static func describe(_ character: Character) -> String {
        character.unicodeScalars.map { scalar in
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        }.joined(separator: " ")
    }
}
