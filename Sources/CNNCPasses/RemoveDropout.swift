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
        for node in graph.nodes {
            guard case .dropout = node.op else { continue }
            guard !graph.outputs.contains(node.name) else {
                remarks.append(Remark(pass: name, node: node.name, message: "kept: a graph output")); continue
            }
            graph.replaceUses(of: node.name, with: node.inputs[0])
            graph.remove([node.name])
            remarks.append(Remark(pass: name, node: node.name, message: "removed"))
        }
    }
}
