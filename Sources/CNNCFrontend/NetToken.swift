// A word of a `.net` line and where it was written. Columns count Characters from 1, as
// `SourceFile.render` does, so carets land under the right text.

import CNNCIR

/// One word of a `.net` line: a run of characters between spaces, tabs and comments.
struct NetToken: Sendable {
    var text: String
    var line: Int
    /// The column of the first character, from 1.
    var column: Int
    /// The length in Characters.
    var length: Int

    /// Where the whole token was written.
    func location(in file: String) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column, length: length)
    }

    /// Where the characters `offset ..< offset + length` of the token were written.
    func location(in file: String, offset: Int, length: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column + offset, length: length)
    }

    /// The location from the start of this token to the end of `last` (on the same line).
    func location(in file: String, through last: NetToken) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column,
                       length: last.column + last.length - column)
    }

    /// For `key=value` tokens: the text before the first `=` and after it (nil without `=`).
    var keyValue: (key: Substring, value: Substring)? {
        guard let equals = text.firstIndex(of: "=") else { return nil }
        return (text[..<equals], text[text.index(after: equals)...])
    }
}

/// Text for messages: words longer than `limit` Characters are cut and end in `...`, so a
/// megabyte-long token gives a one-line message.
func shown<S: StringProtocol>(_ text: S, limit: Int = 32) -> String {
    var prefix = ""
    var count = 0
    for character in text {
        if count == limit { return prefix + "..." }
        prefix.append(character)
        count += 1
    }
    return prefix
}
