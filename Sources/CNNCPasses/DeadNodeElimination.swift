// dead-node-elimination: removes nodes whose values reach no output.
//
//   x = input(); a = relu(x); b = tanh(x); outputs a    ->    x = input(); a = relu(x); outputs a
//
// Inputs are never removed (they are the API). Refuses nothing.

import CNNCIR

/// Removes nodes that no output depends on.
public struct DeadNodeElimination: Pass {
    public init() {}
    public let name = "dead-node-elimination"
    public let summary = "remove layers whose values reach no output"
    public let modes: Set<PipelineMode> = [.inference, .training]

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        let index = graph.indexByName()
        var live = Set(graph.outputs)
        var stack = graph.outputs
        while let name = stack.popLast() {
            guard let i = index[name] else { continue }
            for input in graph.nodes[i].inputs where live.insert(input).inserted { stack.append(input) }
        }
        var dead: Set<String> = []
        for node in graph.nodes where !live.contains(node.name) {
            if case .input = node.op { continue }
            dead.insert(node.name)
            remarks.append(Remark(pass: name, node: node.name, message: "removed: reaches no output"))
        }
        graph.nodes.removeAll { dead.contains($0.name) }
    }
}
