// The IR verifier: structural invariants every pass must keep. It runs after every pass;
// a failure is a compiler bug (or a hand-written IR file that is wrong), never silently fixed.

extension Graph {
    /// Checks: names unique and valid, inputs defined before use (so no cycles), arities,
    /// outputs exist, at least one input and one output, and every stored shape equal to what
    /// shape inference computes. Returns every problem found.
    public func verify() -> [Diagnostic] {
        var problems: [Diagnostic] = []
        var seen: Set<String> = []
        for node in nodes {
            if !isValidName(node.name) {
                problems.append(.error("invalid node name '\(node.name)'", at: node.location))
            }
            for input in node.inputs where !seen.contains(input) {
                problems.append(.error("\(node.displayName) reads '\(input)', which is not defined before it", at: node.location))
            }
            if !seen.insert(node.name).inserted {
                problems.append(.error("duplicate node name '\(node.name)'", at: node.location))
            }
        }
        if inputs.isEmpty { problems.append(.error("network '\(name)' has no input")) }
        if outputs.isEmpty { problems.append(.error("network '\(name)' has no output")) }
        for output in outputs where !seen.contains(output) {
            problems.append(.error("output '\(output)' is not a node of the network"))
        }
        guard problems.isEmpty else { return problems }
        var inferred = self
        let shapeProblems = inferred.inferShapes()
        guard shapeProblems.isEmpty else { return shapeProblems }
        for (a, b) in zip(nodes, inferred.nodes) where a.shape != b.shape {
            problems.append(.error("\(a.displayName) is recorded as \(a.shape) but its inputs give \(b.shape)", at: a.location))
        }
        return problems
    }
}

/// Node names are C-identifier-like so that they can name generated symbols and parameters.
public func isValidName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, name.utf8.count <= 128 else { return false }
    let isLetter = { (c: Unicode.Scalar) in (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" }
    return isLetter(first) && name.unicodeScalars.allSatisfy { isLetter($0) || ($0 >= "0" && $0 <= "9") }
}
