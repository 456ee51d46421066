// The JSON header of a safetensors file, parsed by the grammar of the C runtime's reader
// (Runtime/src/safetensors.c) so that the two readers accept the same files: the first byte
// is '{'; strings are valid UTF-8 without control characters or \u0000; shape and
// data_offsets are plain non-negative integers (no sign, fraction, exponent or leading zero);
// keys, fields and metadata keys are unique; unknown fields are skipped up to 64 levels deep.
// Runtime/tests/safetensors_spec.txt is the table of cases both readers pass.

/// One tensor entry of a safetensors header.
struct SafetensorsEntry {
    var name: String
    var dtype: String
    var shape: [UInt64]
    var begin: UInt64
    var end: UInt64
}

/// A header that breaks the grammar or its rules; the text is the C reader's.
struct SafetensorsHeaderError: Error, CustomStringConvertible {
    var description: String
}

/// Parses safetensors headers.
enum SafetensorsHeader {
    /// The dtypes the format defines, with their element sizes in bytes.
    static let dtypeSizes: [String: UInt64] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
        "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
    ]
    /// The most dimensions a tensor may have (the runtime's CNNC_MAX_DIMS).
    static let maxDims = 8
    /// The deepest nesting inside skipped values (the runtime's JSON_MAX_DEPTH).
    static let maxDepth = 64

    /// The tensor entries in header order (`__metadata__` checked and left out).
    static func parse(_ header: ArraySlice<UInt8>) throws -> [SafetensorsEntry] {
        var p = Parser(bytes: header)
        return try p.header()
    }

    private struct Parser {
        let bytes: ArraySlice<UInt8>
        var i: Int

        init(bytes: ArraySlice<UInt8>) { self.bytes = bytes; i = bytes.startIndex }

        func fail(_ why: String) -> SafetensorsHeaderError {
            SafetensorsHeaderError(description: "invalid json in header at byte \(i - bytes.startIndex): \(why)")
        }

        mutating func peek() -> UInt8? {
            while i < bytes.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
            return i < bytes.endIndex ? bytes[i] : nil
        }

        mutating func expect(_ c: Character, _ why: String) throws {
            guard peek() == c.asciiValue else { throw fail(why) }
            i += 1
        }

        /// After a list element: true at `close`, false after ','.
        mutating func listNext(_ close: Character) throws -> Bool {
            let next = peek()
            guard next == UInt8(ascii: ",") || next == close.asciiValue else {
                throw fail(close == "}" ? "expected ',' or '}'" : "expected ',' or ']'")
            }
            i += 1
            return next != UInt8(ascii: ",")
        }

        mutating func header() throws -> [SafetensorsEntry] {
            guard i < bytes.endIndex, bytes[i] == UInt8(ascii: "{") else { throw fail("expected '{' at the start of the header") }
            i += 1
            var entries: [SafetensorsEntry] = []
            var seenMetadata = false
            if peek() == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    let key = try string()
                    try expect(":", "expected ':'")
                    if key == "__metadata__" {
                        if seenMetadata { throw SafetensorsHeaderError(description: "duplicate '__metadata__' entry") }
                        seenMetadata = true
                        try metadata()
                    } else {
                        entries.append(try tensor(key))
                    }
                    if try listNext("}") { break }
                }
            }
            guard peek() == nil else { throw fail("unexpected text after the header object") }
            return entries
        }

        mutating func metadata() throws {
            if peek() == UInt8(ascii: "n") { try literal("null"); return }
            try expect("{", "expected '{' for __metadata__")
            if peek() == UInt8(ascii: "}") { i += 1; return }
            var keys: Set<String> = []
            while true {
                let key = try string()
                try expect(":", "expected ':'")
                guard peek() == UInt8(ascii: "\"") else {
                    throw SafetensorsHeaderError(description: "metadata value for '\(key)' is not a string")
                }
                _ = try string()
                if !keys.insert(key).inserted { throw SafetensorsHeaderError(description: "duplicate metadata key '\(key)'") }
                if try listNext("}") { return }
            }
        }

        mutating func tensor(_ name: String) throws -> SafetensorsEntry {
            try expect("{", "expected '{' for a tensor entry")
            var dtype: String?, shape: [UInt64]?, offsets: [UInt64]?
            func duplicate(_ field: String) -> SafetensorsHeaderError {
                SafetensorsHeaderError(description: "tensor '\(name)': duplicate field '\(field)'")
            }
            if peek() == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    let field = try string()
                    try expect(":", "expected ':'")
                    switch field {
                    case "dtype":
                        guard dtype == nil else { throw duplicate(field) }
                        let d = try string()
                        guard Self.knownDtype(d) else {
                            throw SafetensorsHeaderError(description: "tensor '\(name)': unknown dtype '\(d)'")
                        }
                        dtype = d
                    case "shape":
                        guard shape == nil else { throw duplicate(field) }
                        let dims = try integers(max: UInt64(Int64.max), count: SafetensorsHeader.maxDims)
                        guard dims.count <= SafetensorsHeader.maxDims else {
                            throw SafetensorsHeaderError(description: "tensor '\(name)': more than \(SafetensorsHeader.maxDims) dimensions are not supported")
                        }
                        shape = dims
                    case "data_offsets":
                        guard offsets == nil else { throw duplicate(field) }
                        let o = try integers(max: UInt64.max, count: 2)
                        guard o.count == 2 else {
                            throw SafetensorsHeaderError(description: "tensor '\(name)': data_offsets must have 2 entries")
                        }
                        offsets = o
                    default:
                        try skipValue(depth: 2)
                    }
                    if try listNext("}") { break }
                }
            }
            guard let dtype else { throw SafetensorsHeaderError(description: "tensor '\(name)': missing field 'dtype'") }
            guard let shape else { throw SafetensorsHeaderError(description: "tensor '\(name)': missing field 'shape'") }
            guard let offsets else { throw SafetensorsHeaderError(description: "tensor '\(name)': missing field 'data_offsets'") }
            return SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }

        static func knownDtype(_ d: String) -> Bool { SafetensorsHeader.dtypeSizes[d] != nil }

        /// "[...]" of non-negative integers at most `max`; stops keeping values after
        /// `count` + 1 (enough to tell "too many").
        mutating func integers(max: UInt64, count: Int) throws -> [UInt64] {
            try expect("[", "expected '['")
            var values: [UInt64] = []
            if peek() == UInt8(ascii: "]") { i += 1; return values }
            while true {
                let v = try integer(max: max)
                if values.count <= count { values.append(v) }
                if try listNext("]") { return values }
            }
        }

        mutating func integer(max: UInt64) throws -> UInt64 {
            guard let c = peek() else { throw fail("expected an integer") }
            if c == UInt8(ascii: "-") { throw fail("expected a non-negative integer") }
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw fail("expected an integer") }
            if c == UInt8(ascii: "0"), i + 1 < bytes.endIndex, isDigit(bytes[i + 1]) { throw fail("integer with a leading zero") }
            var v: UInt64 = 0
            while i < bytes.endIndex, isDigit(bytes[i]) {
                let d = UInt64(bytes[i] - UInt8(ascii: "0"))
                guard v <= (max - d) / 10 else { throw fail("integer too large") }
                v = v * 10 + d
                i += 1
            }
            if i < bytes.endIndex, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[i]) {
                throw fail("expected an integer")
            }
            return v
        }

        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard bytes.endIndex - i >= w.count, Array(bytes[i..<i + w.count]) == w else { throw fail("unexpected character") }
            i += w.count
        }

        mutating func number() throws {
            var p = i
            func digits() { while p < bytes.endIndex, isDigit(bytes[p]) { p += 1 } }
            if p < bytes.endIndex, bytes[p] == UInt8(ascii: "-") { p += 1 }
            guard p < bytes.endIndex, isDigit(bytes[p]) else { throw fail("invalid number") }
            if bytes[p] == UInt8(ascii: "0") { p += 1 } else { digits() }
            if p < bytes.endIndex, bytes[p] == UInt8(ascii: ".") {
                p += 1
                guard p < bytes.endIndex, isDigit(bytes[p]) else { throw fail("invalid number") }
                digits()
            }
            if p < bytes.endIndex, bytes[p] == UInt8(ascii: "e") || bytes[p] == UInt8(ascii: "E") {
                p += 1
                if p < bytes.endIndex, bytes[p] == UInt8(ascii: "+") || bytes[p] == UInt8(ascii: "-") { p += 1 }
                guard p < bytes.endIndex, isDigit(bytes[p]) else { throw fail("invalid number") }
                digits()
            }
            i = p
        }

        /// Any JSON value; `depth` counts the enclosing arrays and objects.
        mutating func skipValue(depth: Int) throws {
            guard depth <= SafetensorsHeader.maxDepth else { throw fail("nesting too deep") }
            guard let c = peek() else { throw fail("unexpected end of header") }
            switch c {
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                let isObject = c == UInt8(ascii: "{")
                let close: Character = isObject ? "}" : "]"
                i += 1
                if peek() == close.asciiValue { i += 1; return }
                while true {
                    if isObject {
                        _ = try string()
                        try expect(":", "expected ':'")
                    }
                    try skipValue(depth: depth + 1)
                    if try listNext(close) { return }
                }
            default:
                guard c == UInt8(ascii: "-") || isDigit(c) else { throw fail("unexpected character") }
                try number()
            }
        }

        /// A JSON string with escapes decoded.
        mutating func string() throws -> String {
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string") }
            // The closing quote first (as the C reader does, so errors fall at the same byte).
            var q = i + 1
            while q < bytes.endIndex, bytes[q] != UInt8(ascii: "\"") {
                if bytes[q] == UInt8(ascii: "\\"), bytes.endIndex - q < 2 { q = bytes.endIndex; break }
                q += bytes[q] == UInt8(ascii: "\\") ? 2 : 1
            }
            guard q < bytes.endIndex else { throw fail("unterminated string") }
            var out: [UInt8] = []
            var r = i + 1
            while r < q {
                let b = bytes[r]
                if b < 0x20 { i = r; throw fail("control character in string") }
                if b != UInt8(ascii: "\\") {
                    let n = Self.utf8SequenceLength(bytes, r, q)
                    if n == 0 { i = r; throw fail("invalid utf-8 in string") }
                    out += bytes[r..<r + n]
                    r += n
                    continue
                }
                let escape = r
                let e = bytes[r + 1]
                r += 2
                var cp: UInt32
                switch e {
                case UInt8(ascii: "\""): cp = 0x22
                case UInt8(ascii: "\\"): cp = 0x5C
                case UInt8(ascii: "/"): cp = 0x2F
                case UInt8(ascii: "b"): cp = 0x08
                case UInt8(ascii: "f"): cp = 0x0C
                case UInt8(ascii: "n"): cp = 0x0A
                case UInt8(ascii: "r"): cp = 0x0D
                case UInt8(ascii: "t"): cp = 0x09
                case UInt8(ascii: "u"):
                    guard q - r >= 4, let v = Self.hex4(bytes, r) else { i = escape; throw fail("invalid \\u escape") }
                    cp = v
                    r += 4
                    if (0xDC00...0xDFFF).contains(cp) { i = escape; throw fail("unpaired surrogate in \\u escape") }
                    if (0xD800...0xDBFF).contains(cp) {
                        guard q - r >= 6, bytes[r] == UInt8(ascii: "\\"), bytes[r + 1] == UInt8(ascii: "u"),
                              let low = Self.hex4(bytes, r + 2), (0xDC00...0xDFFF).contains(low) else {
                            i = escape
                            throw fail("unpaired surrogate in \\u escape")
                        }
                        r += 6
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                    }
                    if cp == 0 { i = escape; throw fail("\\u0000 is not allowed in strings") }
                default:
                    i = escape
                    throw fail("invalid escape in string")
                }
                out += Array(String(Character(Unicode.Scalar(cp)!)).utf8)
            }
            i = q + 1
            return String(decoding: out, as: UTF8.self)
        }

        static func hex4(_ bytes: ArraySlice<UInt8>, _ at: Int) -> UInt32? {
            var v: UInt32 = 0
            for c in bytes[at..<at + 4] {
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: return nil
                }
                v = v * 16 + UInt32(d)
            }
            return v
        }

        /// The length of the valid UTF-8 sequence at `p` (before `end`), or 0 (overlong forms
        /// and surrogates are invalid).
        static func utf8SequenceLength(_ bytes: ArraySlice<UInt8>, _ p: Int, _ end: Int) -> Int {
            let b = bytes[p]
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            let n: Int
            switch b {
            case 0..<0x80: return 1
            case 0xC2...0xDF: n = 2
            case 0xE0...0xEF:
                n = 3
                if b == 0xE0 { lo = 0xA0 } else if b == 0xED { hi = 0x9F }
            case 0xF0...0xF4:
                n = 4
                if b == 0xF0 { lo = 0x90 } else if b == 0xF4 { hi = 0x8F }
            default: return 0
            }
            guard end - p >= n, bytes[p + 1] >= lo, bytes[p + 1] <= hi else { return 0 }
            for k in 2..<n where bytes[p + k] & 0xC0 != 0x80 { return 0 }
            return n
        }
    }
}
