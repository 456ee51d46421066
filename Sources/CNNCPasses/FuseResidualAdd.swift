// fuse-residual-add: a two-input add after a conv or dense becomes part of its epilogue.
//
//   c = conv(x) ... bn=b; s = add(c, r)    ->    c = conv(x, r) ... bn=b residual=true
//
// The fused node moves to the add's place, so the shortcut `r` is computed before it.
// Refuses when: the add has more than two inputs; neither input is a conv or dense whose
// only user is the add, that is no graph output, and whose epilogue has no activation yet
// (act(conv) + r cannot be expressed); the add is a graph output.

import CNNCIR

/// Fuses residual additions into the layer that produces one of their operands.
public struct FuseResidualAdd: Pass {
    public init() {}
    public let name = "fuse-residual-add"
    public let summary = "fuse a residual add into the conv or dense that feeds it"
    public let modes: Set<PipelineMode> = [.inference]

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        for add in graph.nodes {
            guard case .add = add.op else { continue }
            func refuse(_ why: String) { remarks.append(Remark(pass: name, node: add.name, message: "not fused: \(why)")) }
            guard add.inputs.count == 2 else { refuse("\(add.inputs.count) inputs"); continue }
            guard !graph.outputs.contains(add.name) else { refuse("it is a graph output"); continue }
            guard add.inputs[0] != add.inputs[1] else { refuse("both inputs are '\(add.inputs[0])'"); continue }
            let users = graph.users()
            let index = graph.indexByName()
            var fused: (position: Int, node: Node)?
            for (which, candidate) in add.inputs.enumerated() {
                var node = graph.nodes[index[candidate]!]
                guard users[candidate] == [add.name], !graph.outputs.contains(candidate) else { continue }
                let shortcut = add.inputs[1 - which]
                if case .conv(var a) = node.op, !a.epilogue.residual, a.epilogue.activation == nil, a.epilogue.prelu == nil {
                    a.epilogue.residual = true
                    node.op = .conv(a)
                } else if case .dense(var a) = node.op, !a.epilogue.residual, a.epilogue.activation == nil,
                          a.epilogue.prelu == nil {
                    a.epilogue.residual = true
                    node.op = .dense(a)
                } else {
                    continue
                }
                node.inputs.append(shortcut)
                fused = (index[candidate]!, node)
                break
            }
            guard let fused else {
                refuse("no input is a conv or dense used only here, without an activation"); continue
            }
            // Put the fused node where the add was, and remove the add.
            let addIndex = index[add.name]!
            graph.nodes[addIndex] = fused.node
            graph.nodes.remove(at: fused.position)
            graph.replaceUses(of: add.name, with: fused.node.name)
            remarks.append(Remark(pass: name, node: add.name, message: "fused into '\(fused.node.name)'"))
        }
    }
}
