// remove-dropout: dropout is the identity at inference.
//
//   d = dropout(x) rate=0.5; y = dense(d)    ->    y = dense(x)
//
// Refuses when the dropout is a graph output (its name is part of the generated API).

import CNNCIR

/// Drops inference-time identities.
public struct RemoveDropout: Pass {
    public init() {}
    public let name = "remove-dropout"
    public let summary = "remove dropout, the identity at inference"
    public let modes: Set<PipelineMode> = [.inference]

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        var g = GraphEditor(graph)
        // Each node is read when the loop reaches it: a dropout after a removed one now reads
        // that one's input.
        for i in g.indices {
            guard let node = g[i], case .dropout = node.op else { continue }
            guard !g.isOutput(node.name) else {
                remarks.append(Remark(pass: name, node: node.name, message: "kept: a graph output")); continue
            }
            g.replaceUses(of: node.name, with: node.inputs[0])
            g.remove(node.name)
            remarks.append(Remark(pass: name, node: node.name, message: "removed"))
        }
        g.apply(to: &graph)
    }
}
