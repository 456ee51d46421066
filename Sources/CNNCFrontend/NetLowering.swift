// Lowering: `.net` statements to a `Graph`. Gives unnamed layers stable names (`relu_1`),
// resolves each layer's inputs (the previous value, or `from=` with forward references),
// orders the nodes topologically (file order wherever possible), reports cycles, picks the
// outputs, then runs shape inference.
//
// A statement with a reported problem still defines its name, so that its users stay quiet:
// one mistake gives one message. Nodes that read it are left out of the graph.

import CNNCIR

/// Builds a graph from parsed statements, collecting every problem.
struct NetLowering {
    let file: String
    /// Past this many problems, suggestions (which scan every name) are no longer computed.
    let errorLimit: Int
    private(set) var diagnostics: [Diagnostic] = []

    /// A statement that defines a value: an input or a layer.
    private struct Definition {
        var name: String?
        /// Where the name was written (the op word for generated names).
        var nameLocation: SourceLocation
        /// The op word, or the `input` word: the node's location.
        var location: SourceLocation
        var keyword: OpKeyword?
        var op: Op?
        var isLayer: Bool
        /// Definitions (by index) whose values it reads, in operand order.
        var inputs: [Int] = []
        /// Already reported, or unusable: no node and no further messages.
        var broken: Bool
        var quiet: Bool

        /// `conv 'c1'`, as messages name a layer.
        var displayName: String {
            let word = keyword?.rawValue ?? "layer"
            return name.map { "\(word) '\($0)'" } ?? word
        }
    }

    private var definitions: [Definition] = []
    private var indexByName: [String: Int] = [:]
    /// Defined names in file order: the candidates for "did you mean".
    private var definedNames: [String] = []

    init(file: String, errorLimit: Int) {
        self.file = file
        self.errorLimit = errorLimit
    }

    /// Lowers the statements; `defaultName` names the network when no `network` line does.
    mutating func lower(_ statements: [NetStatement], defaultName: String) -> Graph {
        let startOfFile = SourceLocation(file: file, line: 1, column: 1)
        let hasInput = statements.contains { if case .input = $0 { return true } else { return false } }
        if !hasInput {
            error("'\(file)' defines no input; start it with 'input NAME shape=CxHxW'", at: startOfFile)
        }

        // Define every name in file order, generating the missing ones.
        var explicitNames: Set<String> = []
        for statement in statements {
            switch statement {
            case .input(let s): if let name = s.name { explicitNames.insert(name) }
            case .layer(let s): if let name = s.name { explicitNames.insert(name) }
            case .network, .output: break
            }
        }
        var networkName: String?
        var generatedCount: [OpKeyword: Int] = [:]
        var layers: [(definition: Int, statement: LayerStatement)] = []
        for statement in statements {
            switch statement {
            case .network(let s):
                networkName = networkName ?? s.name
            case .input(let s):
                define(Definition(
                    name: s.name, nameLocation: s.nameLocation ?? s.location, location: s.location,
                    keyword: nil, op: s.shape.map { Op.input($0) }, isLayer: false,
                    broken: s.broken, quiet: s.quiet))
            case .layer(let s):
                var name = s.name
                if s.nameLocation == nil, let keyword = s.keyword {
                    var k = generatedCount[keyword, default: 0]
                    repeat { k += 1 } while explicitNames.contains("\(keyword.rawValue)_\(k)")
                    generatedCount[keyword] = k
                    name = "\(keyword.rawValue)_\(k)"
                }
                let index = define(Definition(
                    name: name, nameLocation: s.nameLocation ?? s.location, location: s.location,
                    keyword: s.keyword, op: s.op, isLayer: true, broken: s.broken, quiet: s.quiet))
                layers.append((index, s))
            case .output:
                break
            }
        }

        for (index, statement) in layers {
            resolveInputs(of: index, statement, hasInput: hasInput)
        }
        let order = topologicalOrder()
        var usable = Array(repeating: false, count: definitions.count)
        for index in order { usable[index] = true }
        let outputs = resolveOutputs(statements, usable: usable, hasInput: hasInput, startOfFile: startOfFile)

        let nodes = order.map { index -> Node in
            let d = definitions[index]
            return Node(name: d.name!, op: d.op!, inputs: d.inputs.map { definitions[$0].name! },
                        location: d.location)
        }
        var graph = Graph(name: networkName ?? defaultName, nodes: nodes, outputs: outputs)
        for (index, statement) in layers where statement.frozen && usable[index] {
            if let name = definitions[index].name { graph.frozen.insert(name) }
        }
        diagnostics += graph.inferShapes()
        return graph
    }

    // MARK: - Steps

    /// Records a definition; a name defined before is an error (with a note at the first).
    @discardableResult
    private mutating func define(_ definition: Definition) -> Int {
        var definition = definition
        let index = definitions.count
        if definition.name == nil || definition.op == nil { definition.broken = true }
        if let name = definition.name {
            if let first = indexByName[name] {
                if !definition.quiet {
                    error("'\(name)' is already defined", at: definition.nameLocation,
                          note: Diagnostic(.note, "'\(name)' first defined here", at: definitions[first].nameLocation))
                }
                definition.broken = true
            } else {
                indexByName[name] = index
                definedNames.append(name)
            }
        }
        definitions.append(definition)
        return index
    }

    /// A layer reads the names in its `from=`, or else the value defined just before it.
    private mutating func resolveInputs(of index: Int, _ statement: LayerStatement, hasInput: Bool) {
        var d = definitions[index]
        defer { definitions[index] = d }
        if d.quiet { return }
        if let from = statement.from {
            for reference in from {
                if let input = indexByName[reference.name] {
                    d.inputs.append(input)
                } else {
                    undefined(reference, excluding: d.name)
                    d.broken = true
                }
            }
            // Too few names for add or concat is reported here, at the list. Too many is left
            // to shape inference, which knows each op's arity (a conv with a fused residual
            // reads two values).
            if let keyword = d.keyword, statement.fromComplete, from.count < keyword.arity.lowerBound,
               let location = statement.fromLocation {
                error("\(d.displayName) takes at least \(keyword.arity.lowerBound) inputs, got \(from.count)",
                      at: location)
                d.broken = true
            }
        } else if let keyword = d.keyword, keyword.arity.lowerBound > 1 {
            error("\(d.displayName) needs at least \(keyword.arity.lowerBound) inputs: name them with from=NAME,NAME",
                  at: d.location)
            d.broken = true
        } else if index > 0 {
            d.inputs = [index - 1]
        } else {
            if hasInput && d.keyword != nil {
                error("\(d.displayName) comes before any input: declare the input first or name this layer's input with from=",
                      at: d.location)
            }
            d.broken = true
        }
    }

    /// The usable definitions in an order where inputs come first: a depth-first search from
    /// each definition in file order, emitting a node after its inputs, so a file already in
    /// order keeps it. Each cycle is reported once, at the node of the cycle written first.
    /// Broken definitions, the nodes of cycles and everything that reads them are left out.
    private mutating func topologicalOrder() -> [Int] {
        enum Mark { case unvisited, active, done, unusable }
        var marks = Array(repeating: Mark.unvisited, count: definitions.count)
        var stackPosition = Array(repeating: -1, count: definitions.count)
        var order: [Int] = []
        for root in definitions.indices where marks[root] == .unvisited {
            if definitions[root].broken { marks[root] = .unusable; continue }
            // Each entry: a definition, the next of its inputs to visit, whether it is unusable.
            var stack: [(index: Int, next: Int, unusable: Bool)] = [(root, 0, false)]
            marks[root] = .active
            stackPosition[root] = 0
            while let top = stack.last {
                let d = definitions[top.index]
                if top.next < d.inputs.count {
                    stack[stack.count - 1].next += 1
                    let input = d.inputs[top.next]
                    switch marks[input] {
                    case .unvisited:
                        if definitions[input].broken {
                            marks[input] = .unusable
                            stack[stack.count - 1].unusable = true
                        } else {
                            marks[input] = .active
                            stackPosition[input] = stack.count
                            stack.append((input, 0, false))
                        }
                    case .active:
                        reportCycle(stack[stackPosition[input]...].map(\.index))
                        stack[stack.count - 1].unusable = true
                    case .unusable:
                        stack[stack.count - 1].unusable = true
                    case .done:
                        break
                    }
                } else {
                    stack.removeLast()
                    stackPosition[top.index] = -1
                    marks[top.index] = top.unusable ? .unusable : .done
                    if top.unusable {
                        if !stack.isEmpty { stack[stack.count - 1].unusable = true }
                    } else {
                        order.append(top.index)
                    }
                }
            }
        }
        return order
    }

    /// `path` runs from a node through the inputs it reads back to a node that reads the
    /// first: printed in the direction values flow, starting at the node written first.
    private mutating func reportCycle(_ path: [Int]) {
        var flow = [path[0]] + path.dropFirst().reversed()
        let first = flow.indices.min { flow[$0] < flow[$1] }!
        flow = Array(flow[first...] + flow[..<first])
        let names = (flow + [flow[0]]).map { definitions[$0].name ?? "?" }
        error("cycle: " + names.joined(separator: " -> "), at: definitions[flow[0]].location)
    }

    /// The names on `output` lines, in order, or else the last layer of the file.
    private mutating func resolveOutputs(
        _ statements: [NetStatement], usable: [Bool], hasInput: Bool, startOfFile: SourceLocation
    ) -> [String] {
        var outputs: [String] = []
        var listed: [String: SourceLocation] = [:]
        var sawOutputLine = false
        for case .output(let statement) in statements {
            sawOutputLine = true
            for reference in statement.names {
                guard let index = indexByName[reference.name] else {
                    undefined(reference, excluding: nil)
                    continue
                }
                if let first = listed[reference.name] {
                    error("'\(reference.name)' is already an output", at: reference.location,
                          note: Diagnostic(.note, "first listed here", at: first))
                    continue
                }
                listed[reference.name] = reference.location
                if usable[index] { outputs.append(reference.name) }
            }
        }
        if !sawOutputLine {
            if let last = definitions.lastIndex(where: \.isLayer) {
                if usable[last], let name = definitions[last].name { outputs = [name] }
            } else if hasInput {
                error("'\(file)' defines no layers", at: startOfFile)
            }
        }
        return outputs
    }

    /// "'c3' is not defined; did you mean 'c2'?"
    private mutating func undefined(_ reference: NameReference, excluding own: String?) {
        var message = "'\(reference.name)' is not defined"
        if diagnostics.count < errorLimit {
            let candidates = own.map { own in definedNames.filter { $0 != own } } ?? definedNames
            if let guess = suggestion(for: reference.name, among: candidates) { message += "; did you mean '\(guess)'?" }
        }
        error(message, at: reference.location)
    }

    private mutating func error(_ message: String, at location: SourceLocation, note: Diagnostic? = nil) {
        diagnostics.append(Diagnostic(.error, message, at: location, notes: note.map { [$0] } ?? []))
    }
}
