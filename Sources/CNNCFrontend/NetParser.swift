// The `.net` parser: turns each line's tokens into a statement and reports what is wrong with
// the line by itself: unknown layer types (with a suggestion), bad names, malformed or
// duplicate `key=value` pairs, bad input shapes, misplaced `network`. Each layer's op is built
// here with `Op.make`, which checks keys and values against the schema in `OpKeyword`.
// Names are resolved later, by `NetLowering`, once the whole file is known.

import CNNCIR

/// Words that start a statement other than a layer.
let statementWords = ["input", "output", "network"]

/// The other spellings `OpKeyword.lookup` accepts, for suggestions and the documentation
/// (a test checks each one against `lookup`).
let layerAliases = [
    "convolution", "conv2d", "linear", "fc", "fully_connected", "silu", "batch_norm", "bn",
    "max_pool", "avg_pool", "global_avg_pool", "gap", "global_max_pool", "log_softmax", "hard_sigmoid",
    "hard_swish", "relu6", "deconv", "conv_transpose2d",
]

/// Every word that can start a line, in a fixed order for suggestions.
let lineWords = OpKeyword.allCases.map(\.rawValue) + layerAliases + statementWords

/// The longest key or value accepted (besides `from=` lists); longer ones are mistakes.
let maxValueLength = 64

/// Why `name` cannot name a node or network, or nil when it can.
func nameProblem<S: StringProtocol>(_ name: S) -> String? {
    if isValidName(String(name)) { return nil }
    if name.utf8.count > 128 {
        return "name '\(shown(name))' is too long (\(name.count) characters; the limit is 128)"
    }
    return "invalid name '\(shown(name))': a name starts with a letter or '_' and has only letters, digits and '_'"
}

/// The candidate closest to `word`, if it is a likely typo: `closestMatch`, kept only when at
/// most half of the shorter word changes (so never `x` for `a`, nor `fc` for `foo`).
func suggestion(for word: String, among candidates: [String]) -> String? {
    let word = String(word.prefix(64))
    let length = word.count
    let plausible = candidates.filter { candidate in
        let limit = max(1, min(length, candidate.count) / 2)
        // The length difference bounds the distance from below: a cheap first test.
        guard abs(candidate.count - length) <= limit else { return false }
        let distance = editDistance(word, candidate)
        return distance <= limit && distance < max(length, candidate.count)
    }
    return closestMatch(to: word, in: plausible)
}

/// A `key=value` token taken apart.
private struct KeyValue {
    var key: String
    var value: String
    var keyLocation: SourceLocation
    /// The value's characters, or the whole token when the value is empty.
    var valueLocation: SourceLocation
    var token: NetToken
}

/// Turns lines of tokens into statements, collecting every syntax problem.
struct NetParser {
    let file: String
    private(set) var statements: [NetStatement] = []
    private(set) var diagnostics: [Diagnostic] = []
    private var network: NetworkStatement?
    private var firstLayer: SourceLocation?

    init(file: String) { self.file = file }

    /// Parses every line, stopping once `errorLimit` problems have been found. A line the
    /// lexer marked broken is parsed quietly (its problem is already reported) and defines its
    /// name without a node, so that later lines that use it stay quiet too.
    mutating func parse(_ lines: [NetLine], errorLimit: Int) {
        for line in lines {
            if diagnostics.count >= errorLimit { return }
            let mark = diagnostics.count
            var statement = parseStatement(line.tokens)
            if line.broken {
                diagnostics.removeSubrange(mark...)
                switch statement {
                case .input(var s)?: s.broken = true; s.quiet = true; statement = .input(s)
                case .layer(var s)?: s.broken = true; s.quiet = true; statement = .layer(s)
                case .network?, .output?, nil: statement = nil
                }
            }
            if let statement { statements.append(statement) }
        }
    }

    private mutating func parseStatement(_ tokens: [NetToken]) -> NetStatement? {
        switch tokens[0].text {
        case "network": return parseNetwork(tokens)
        case "input": return parseInput(tokens)
        case "output": return parseOutput(tokens)
        default: return parseLayer(tokens)
        }
    }

    // MARK: - Statements

    private mutating func parseNetwork(_ tokens: [NetToken]) -> NetStatement? {
        let location = tokens[0].location(in: file)
        if let firstLayer {
            error("'network' must come before the first layer", at: location,
                  note: Diagnostic(.note, "first layer here", at: firstLayer))
            return nil
        }
        if let network {
            error("the network is named twice", at: location,
                  note: Diagnostic(.note, "first named here", at: network.location))
            return nil
        }
        guard tokens.count >= 2 else {
            error("'network' needs a name: network NAME", at: location)
            return nil
        }
        if tokens.count > 2 {
            error("unexpected '\(shown(tokens[2].text))' after the network name",
                  at: tokens[2].location(in: file, through: tokens[tokens.count - 1]))
        }
        guard checkName(tokens[1]) else { return nil }
        let statement = NetworkStatement(name: String(tokens[1].text), location: location)
        network = statement
        return .network(statement)
    }

    private mutating func parseInput(_ tokens: [NetToken]) -> NetStatement? {
        let location = tokens[0].location(in: file)
        var statement = InputStatement(location: location, broken: false)
        var rest = tokens.dropFirst()
        if let token = rest.first, token.keyValue == nil {
            rest = rest.dropFirst()
            if checkName(token) {
                statement.name = String(token.text)
                statement.nameLocation = token.location(in: file)
            } else {
                statement.broken = true
            }
        } else {
            error("input needs a name: input NAME shape=CxHxW", at: location)
            statement.broken = true
        }
        let (pairs, ok) = keyValues(rest)
        if !ok { statement.broken = true }
        var sawShape = false
        for pair in pairs {
            guard pair.key == "shape" else {
                var message = "input has no key '\(shown(pair.key))'"
                message += suggestion(for: pair.key, among: ["shape"]) != nil
                    ? "; did you mean 'shape'?" : " (keys: shape)"
                error(message, at: pair.keyLocation)
                statement.broken = true
                continue
            }
            sawShape = true
            statement.shape = parseShape(pair)
            if statement.shape == nil { statement.broken = true }
        }
        if !sawShape {
            let what = statement.name.map { "input '\($0)'" } ?? "input"
            error("\(what) needs shape=CxHxW or shape=F", at: location)
            statement.broken = true
        }
        return .input(statement)
    }

    private mutating func parseOutput(_ tokens: [NetToken]) -> NetStatement? {
        let location = tokens[0].location(in: file)
        let rest = Array(tokens.dropFirst())
        var names: [NameReference] = []
        var ok = true
        for (i, token) in rest.enumerated() {
            guard token.keyValue == nil else {
                error("expected output names, got '\(shown(token.text))'", at: token.location(in: file))
                ok = false
                continue
            }
            // Names are separated by commas, spaces, or both (`output a, b`).
            let (references, listOK) = nameList(token.text[...], at: token.location(in: file), shownAs: token.text,
                                                 emptyFirstAllowed: i > 0, emptyLastAllowed: i < rest.count - 1)
            names += references
            ok = ok && listOK
        }
        if names.isEmpty && ok {
            error("'output' needs at least one name: output NAME[,NAME...]", at: location)
        }
        return .output(OutputStatement(names: names))
    }

    private mutating func parseLayer(_ tokens: [NetToken]) -> NetStatement? {
        let wordToken = tokens[0]
        let word = wordToken.text
        let location = wordToken.location(in: file)
        if firstLayer == nil { firstLayer = location }
        var statement = LayerStatement(location: location, broken: false)

        if wordToken.keyValue != nil {
            error("expected a layer type before '\(shown(word))'", at: location)
            statement.broken = true
        } else if let keyword = OpKeyword.lookup(String(word)) {
            statement.keyword = keyword
        } else {
            var message = "unknown layer type '\(shown(word))'"
            if let guess = suggestion(for: String(word), among: lineWords) {
                message += "; did you mean '\(guess)'?"
            }
            error(message, at: location)
            statement.broken = true
        }
        let owner = statement.keyword?.rawValue ?? String(shown(word))

        // The name: a second word without '=', unless it is one of the op's keys followed by
        // `=` after a space (`conv filters = 8`).
        var rest = tokens.dropFirst()
        func isSpacedKey(_ token: NetToken) -> Bool {
            guard rest.dropFirst().first?.text.hasPrefix("=") ?? false else { return false }
            return token.text == "from" || token.text == "frozen" || (statement.keyword?.attributes.contains { $0.key == token.text } ?? false)
        }
        if let token = rest.first, token.keyValue == nil, !isSpacedKey(token) {
            rest = rest.dropFirst()
            statement.nameLocation = token.location(in: file)
            if checkName(token) {
                statement.name = String(token.text)
            } else {
                statement.broken = true
            }
        }

        let (pairs, ok) = keyValues(rest)
        if !ok { statement.broken = true }
        var attributes: [String: AttributeText] = [:]
        var buildOp = statement.keyword != nil
        for pair in pairs {
            if pair.key == "from" {
                statement.fromLocation = pair.valueLocation
                if pair.value.isEmpty {
                    error("'from=' needs at least one name", at: pair.token.location(in: file))
                    statement.from = []
                    statement.fromComplete = false
                    statement.broken = true
                    continue
                }
                let (references, listOK) = nameList(pair.value[...], at: pair.valueLocation, shownAs: "from=" + pair.value,
                                                     emptyFirstAllowed: false, emptyLastAllowed: false)
                statement.from = references
                statement.fromComplete = listOK
                if !listOK { statement.broken = true }
                continue
            }
            if pair.key == "frozen" {
                switch pair.value {
                case "true": statement.frozen = true
                case "false": statement.frozen = false
                default:
                    error("'frozen' takes true or false, got '\(shown(pair.value, limit: 20))'", at: pair.valueLocation)
                    statement.broken = true
                }
                if let keyword = statement.keyword, !keyword.hasParameters {
                    error("\(owner) has no parameters to freeze; 'frozen' applies to conv, dense, batchnorm and prelu",
                          at: pair.keyLocation)
                    statement.broken = true
                }
                continue
            }
            if pair.key.count > maxValueLength {
                error("\(owner) has no key '\(shown(pair.key))'", at: pair.keyLocation)
                statement.broken = true
                continue
            }
            if pair.value.count > maxValueLength {
                let why = pair.value.allSatisfy({ $0.isASCII && $0.isNumber })
                    ? "number with \(pair.value.count) digits is too large"
                    : "value is \(pair.value.count) characters long (limit \(maxValueLength))"
                error("\(owner) '\(pair.key)=\(shown(pair.value, limit: 20))': \(why)", at: pair.valueLocation)
                statement.broken = true
                buildOp = false
                continue
            }
            attributes[pair.key] = AttributeText(pair.value, keyLocation: pair.keyLocation,
                                                 valueLocation: pair.valueLocation)
        }

        if buildOp, let keyword = statement.keyword {
            switch Op.make(keyword, attributes: attributes, at: location) {
            case .success(let op): statement.op = op
            case .failure(let list): diagnostics += list.diagnostics
            }
        }
        if statement.op == nil { statement.broken = true }
        return .layer(statement)
    }

    // MARK: - Pieces

    /// Reads `key=value` tokens. Reports bare words, duplicate keys and `key = value` written
    /// with spaces; `ok` is false when anything was reported.
    private mutating func keyValues(_ tokens: ArraySlice<NetToken>) -> (pairs: [KeyValue], ok: Bool) {
        let tokens = Array(tokens)
        var pairs: [KeyValue] = []
        var firstSeen: [String: SourceLocation] = [:]
        var ok = true
        var i = 0
        while i < tokens.count {
            let token = tokens[i]
            let next = i + 1 < tokens.count ? tokens[i + 1] : nil
            let valueFollows = next.map { $0.keyValue == nil } ?? false  // a bare word comes next
            var pair: KeyValue
            if let (key, value) = token.keyValue, !key.isEmpty, !(value.isEmpty && valueFollows) {
                pair = KeyValue(
                    key: String(key), value: String(value),
                    keyLocation: token.location(in: file, offset: 0, length: key.count),
                    valueLocation: value.isEmpty
                        ? token.location(in: file)
                        : token.location(in: file, offset: key.count + 1, length: value.count),
                    token: token)
                i += 1
            } else if token.keyValue == nil, let next, next.text.hasPrefix("=") {
                // `key = value` or `key =value`: one message, and the pair is read as meant.
                var last = i + 1
                if next.text == "=", i + 2 < tokens.count, tokens[i + 2].keyValue == nil { last = i + 2 }
                guard let recovered = spacedEquals(tokens[i...last]) else { ok = false; i = last + 1; continue }
                pair = recovered
                ok = false
                i = last + 1
            } else if let (key, _) = token.keyValue, !key.isEmpty, valueFollows {
                // `key= value`.
                guard let recovered = spacedEquals(tokens[i...(i + 1)]) else { ok = false; i += 2; continue }
                pair = recovered
                ok = false
                i += 2
            } else {
                error(token.keyValue == nil
                        ? "expected key=value, got '\(shown(token.text))'"
                        : "'=' needs a key before it: write key=value without spaces",
                      at: token.location(in: file))
                ok = false
                i += 1
                continue
            }
            let key = pair.key
            if let first = firstSeen[key] {
                error("duplicate key '\(shown(key))'", at: pair.keyLocation,
                      note: Diagnostic(.note, "'\(shown(key))' first given here", at: first))
                ok = false
                continue
            }
            firstSeen[key] = pair.keyLocation
            pairs.append(pair)
        }
        return (pairs, ok)
    }

    /// Reports `key = value`, `key =value` or `key= value` once, and returns the pair as
    /// meant (nil when no value follows the `=`).
    private mutating func spacedEquals(_ tokens: ArraySlice<NetToken>) -> KeyValue? {
        let first = tokens.first!, last = tokens.last!
        let joined = tokens.map { String($0.text) }.joined()
        error("no spaces are allowed around '=': write '\(shown(joined))'", at: first.location(in: file, through: last))
        let key = first.text.prefix { $0 != "=" }
        let value = last.text.hasPrefix("=") ? last.text.dropFirst() : last.text[...]
        guard !value.isEmpty else { return nil }
        let valueOffset = last.length - value.count
        return KeyValue(key: String(key), value: String(value),
                        keyLocation: first.location(in: file, offset: 0, length: key.count),
                        valueLocation: last.location(in: file, offset: valueOffset, length: value.count),
                        token: first)
    }

    /// Splits a comma-separated list of names written at `start`, with each name's location.
    /// Empty names are errors except where allowed at the ends; `shownAs` names the list in
    /// messages.
    private mutating func nameList<S: StringProtocol>(
        _ text: Substring, at start: SourceLocation, shownAs: S, emptyFirstAllowed: Bool, emptyLastAllowed: Bool
    ) -> (names: [NameReference], ok: Bool) {
        func location(_ offset: Int, _ length: Int) -> SourceLocation {
            SourceLocation(file: file, line: start.line, column: start.column + offset, length: length)
        }
        var names: [NameReference] = []
        var ok = true
        var position = 0
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        for (j, part) in parts.enumerated() {
            let length = part.count
            if part.isEmpty {
                let allowed = (j == 0 && emptyFirstAllowed) || (j == parts.count - 1 && emptyLastAllowed)
                if !allowed {
                    // Point at the comma next to the gap.
                    error("empty name in '\(shown(shownAs))'", at: location(j == 0 ? position : position - 1, 1))
                    ok = false
                }
            } else if let problem = nameProblem(part) {
                error(problem, at: location(position, length))
                ok = false
            } else {
                names.append(NameReference(name: String(part), location: location(position, length)))
            }
            position += length + 1
        }
        return (names, ok)
    }

    /// `CxHxW` or `F`, each dimension 1 to `maxDimension`.
    private mutating func parseShape(_ pair: KeyValue) -> Shape? {
        let text = pair.value
        let prefix = "shape '\(shown(text))': "
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 3 else {
            error(prefix + "expected CxHxW or F, got \(parts.count) dimensions", at: pair.valueLocation)
            return nil
        }
        for part in parts {
            switch parseInteger(String(part)) {
            case .success(let value):
                guard value >= 1, value <= maxDimension else {
                    error(prefix + "each dimension must be 1 to \(maxDimension)", at: pair.valueLocation)
                    return nil
                }
            case .failure(let why):
                error(prefix + why.description, at: pair.valueLocation)
                return nil
            }
        }
        return parseDims(text)
    }

    private mutating func checkName(_ token: NetToken) -> Bool {
        guard let problem = nameProblem(token.text) else { return true }
        error(problem, at: token.location(in: file))
        return false
    }

    private mutating func error(_ message: String, at location: SourceLocation, note: Diagnostic? = nil) {
        diagnostics.append(Diagnostic(.error, message, at: location, notes: note.map { [$0] } ?? []))
    }
}
