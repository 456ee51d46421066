// The textual form of the IR. It prints every attribute (defaults included) so that
// print -> parse -> print is the identity:
//
//   network lenet
//   image = input() shape=1x28x28 : 1x28x28 @"lenet.net":3:1
//   c1 = conv(image) filters=6 size=5 stride=1 pad=2 dilation=1 groups=1 bias=true : 6x28x28 @"lenet.net":4:1
//   outputs logits
//
// `?` stands for a shape not yet inferred; the `@"file":line:col` suffix is optional, and
// `@"file":line:col-endcol` records a location spanning several columns.

extension Graph {
    /// The graph as IR text, one node per line.
    public func irText() -> String {
        var out = "network \(name)\n"
        for node in nodes {
            var line = "\(node.name) = "
            switch node.op {
            case .input: line += "input()"
            case .conv, .dense, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool,
                 .globalAvgPool, .globalMaxPool, .lrn, .batchNorm, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                line += "\(node.op.keyword!.rawValue)(\(node.inputs.joined(separator: ", ")))"
            }
            for (key, value) in node.op.attributeTexts { line += " \(key)=\(value)" }
            line += " : " + (node.shape.rank == 0 ? "?" : node.shape.description)
            if let loc = node.location {
                line += " @\(quote(loc.file)):\(loc.line):\(loc.column)"
                if loc.length > 1 { line += "-\(loc.column + loc.length - 1)" }
            }
            out += line + "\n"
        }
        out += "outputs \(outputs.joined(separator: ", "))\n"
        if !frozen.isEmpty { out += "frozen \(frozen.sorted().joined(separator: ", "))\n" }
        return out
    }

    /// Parses IR text (as printed by `irText()`). Every malformed line is reported.
    public static func parseIR(_ text: String, file: String = "<ir>") -> Result<Graph, DiagnosticList> {
        var parser = IRParser(file: file)
        let graph = parser.parse(text)
        if parser.diagnostics.isEmpty, let graph { return .success(graph) }
        return .failure(DiagnosticList(parser.diagnostics))
    }
}

private func quote(_ s: String) -> String {
    var out = "\""
    for ch in s {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.append(ch)
        }
    }
    return out + "\""
}

/// Reads IR text line by line.
private struct IRParser {
    let file: String
    var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    mutating func parse(_ text: String) -> Graph? {
        var graph: Graph?
        var sawOutputs = false
        for (i, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            var line = Scanner(Array(rawLine), line: lineNo, file: file)
            line.skipSpaces()
            if line.atEnd || line.peek == "#" { continue }
            let here = line.location()
            guard let word = line.identifier() else { error("expected a node or 'network'", at: here); continue }
            if graph == nil {
                guard word == "network", let name = (line.skipSpaces(), line.identifier()).1, line.restIsBlank() else {
                    error("IR text must start with 'network NAME'", at: here); return nil
                }
                graph = Graph(name: name)
                continue
            }
            var probe = line
            probe.skipSpaces()
            if word == "outputs", probe.peek != "=" {  // a node may be named `outputs`
                var names: [String] = []
                repeat {
                    line.skipSpaces()
                    guard let n = line.identifier() else { error("expected an output name", at: line.location()); break }
                    names.append(n)
                    line.skipSpaces()
                } while line.eat(",")
                if !line.restIsBlank() { error("unexpected text after outputs", at: line.location()) }
                graph!.outputs = names
                sawOutputs = true
                continue
            }
            if word == "frozen", sawOutputs, probe.peek != "=" {  // after outputs: not a node
                repeat {
                    line.skipSpaces()
                    guard let n = line.identifier() else { error("expected a layer name", at: line.location()); break }
                    graph!.frozen.insert(n)
                    line.skipSpaces()
                } while line.eat(",")
                if !line.restIsBlank() { error("unexpected text after frozen", at: line.location()) }
                continue
            }
            if let node = parseNode(name: word, &line, at: here) { graph!.nodes.append(node) }
        }
        if graph == nil { error("empty IR text", at: SourceLocation(file: file, line: 1, column: 1)) }
        else if !sawOutputs { error("missing 'outputs' line", at: nil) }
        return graph
    }

    private mutating func parseNode(name: String, _ line: inout Scanner, at here: SourceLocation) -> Node? {
        line.skipSpaces()
        guard line.eat("=") else { error("expected '=' after node name", at: line.location()); return nil }
        line.skipSpaces()
        let opLocation = line.location()
        guard let opWord = line.identifier() else { error("expected an op", at: opLocation); return nil }
        guard line.eat("(") else { error("expected '(' after \(opWord)", at: line.location()); return nil }
        var inputs: [String] = []
        line.skipSpaces()
        if !line.eat(")") {
            repeat {
                line.skipSpaces()
                guard let n = line.identifier() else { error("expected an input name", at: line.location()); return nil }
                inputs.append(n)
                line.skipSpaces()
            } while line.eat(",")
            guard line.eat(")") else { error("expected ')'", at: line.location()); return nil }
        }
        var attributes: [String: AttributeText] = [:]
        while true {
            line.skipSpaces()
            if line.atEnd || line.peek == ":" { break }
            let keyLocation = line.location()
            guard let key = line.identifier(), line.eat("=") else {
                error("expected key=value", at: keyLocation); return nil
            }
            let valueLocation = line.location()
            let value = line.word()
            attributes[key] = AttributeText(value, keyLocation: keyLocation, valueLocation: valueLocation)
        }
        guard line.eat(":") else { error("expected ': SHAPE'", at: line.location()); return nil }
        line.skipSpaces()
        let shapeLocation = line.location()
        let shapeText = line.word()
        var shape = Shape([])
        if shapeText != "?" {
            guard let s = parseDims(shapeText) else { error("bad shape '\(shapeText)'", at: shapeLocation); return nil }
            shape = s
        }
        line.skipSpaces()
        var location: SourceLocation?
        if line.eat("@") {
            guard let f = line.quoted(), line.eat(":"), let l = Int(line.word(until: ":")), line.eat(":"),
                  let c = Int(line.word(until: "-")) else {
                error("bad location", at: line.location()); return nil
            }
            var end = c
            if line.eat("-") {
                guard let e = Int(line.word()), e >= c, e - c < maxElements else { error("bad location", at: line.location()); return nil }
                end = e
            }
            location = SourceLocation(file: f, line: l, column: c, length: end - c + 1)
        }
        guard line.restIsBlank() else { error("unexpected text at end of line", at: line.location()); return nil }

        let op: Op
        if opWord == "input" {
            guard let text = attributes["shape"], attributes.count == 1, let dims = parseDims(text.value) else {
                error("input needs exactly shape=CxHxW", at: opLocation); return nil
            }
            op = .input(dims)
        } else {
            guard let keyword = OpKeyword(rawValue: opWord) else { error("unknown op '\(opWord)'", at: opLocation); return nil }
            switch Op.make(keyword, attributes: attributes, at: opLocation) {
            case .success(let o): op = o
            case .failure(let list): diagnostics += list.diagnostics; return nil
            }
        }
        return Node(name: name, op: op, inputs: inputs, shape: shape, location: location)
    }

    private mutating func error(_ message: String, at location: SourceLocation?) {
        diagnostics.append(.error(message, at: location))
    }
}

/// Parses `1x28x28` into a shape; every dimension 1 to `maxDimension`.
public func parseDims(_ text: String) -> Shape? {
    var dims: [Int] = []
    for part in text.split(separator: "x", omittingEmptySubsequences: false) {
        guard case .success(let v) = parseInteger(String(part)), v >= 1, v <= maxDimension else { return nil }
        dims.append(v)
    }
    return dims.isEmpty || dims.count > 3 ? nil : Shape(dims)
}

/// A cursor over one line of text.
private struct Scanner {
    let chars: [Character]
    let line: Int
    let file: String
    var position = 0

    init(_ chars: [Character], line: Int, file: String) { self.chars = chars; self.line = line; self.file = file }

    var atEnd: Bool { position >= chars.count }
    var peek: Character? { atEnd ? nil : chars[position] }
    func location() -> SourceLocation { SourceLocation(file: file, line: line, column: position + 1) }

    mutating func skipSpaces() { while let c = peek, c == " " || c == "\t" || c == "\r" { position += 1 } }
    mutating func eat(_ c: Character) -> Bool {
        guard peek == c else { return false }
        position += 1
        return true
    }
    mutating func identifier() -> String? {
        let start = position
        while let c = peek, c.isASCII, c.isLetter || c.isNumber || c == "_" { position += 1 }
        guard position > start, !chars[start].isNumber else { position = start; return nil }
        return String(chars[start..<position])
    }
    /// Characters up to the next space (or the given stop character).
    mutating func word(until stop: Character = " ") -> String {
        let start = position
        while let c = peek, c != " ", c != "\t", c != stop { position += 1 }
        return String(chars[start..<position])
    }
    mutating func quoted() -> String? {
        guard eat("\"") else { return nil }
        var out = ""
        while let c = peek {
            position += 1
            if c == "\"" { return out }
            if c == "\\", let next = peek {
                position += 1
                out.append(next == "n" ? "\n" : next)
            } else {
                out.append(c)
            }
        }
        return nil
    }
    mutating func restIsBlank() -> Bool {
        skipSpaces()
        return atEnd
    }
}
