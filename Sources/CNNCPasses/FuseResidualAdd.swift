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
        var g = GraphEditor(graph)
        // Each add is read when the loop reaches it: an earlier fusion renames the value it
        // replaces (a block's add becomes its conv), and the next block's add may read it.
        // One forward sweep suffices: a fusion changes only the fused layer (now in the add's
        // slot, already passed) and the readers of the add, which come later.
        for i in g.indices {
            guard let add = g[i], case .add = add.op else { continue }
            func refuse(_ why: String) { remarks.append(Remark(pass: name, node: add.name, message: "not fused: \(why)")) }
            guard add.inputs.count == 2 else { refuse("\(add.inputs.count) inputs"); continue }
            guard !g.isOutput(add.name) else { refuse("it is a graph output"); continue }
            guard add.inputs[0] != add.inputs[1] else { refuse("both inputs are '\(add.inputs[0])'"); continue }
            var fused: Node?
            for (which, candidate) in add.inputs.enumerated() {
                guard var node = g.node(named: candidate) else { continue }
                guard g.isOnlyUser(add.name, of: candidate), !g.isOutput(candidate) else { continue }
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
                fused = node
                break
            }
            guard let fused else {
                refuse("no input is a conv or dense used only here, without an activation"); continue
            }
            // Put the fused node where the add was, and remove the add.
            g.replaceUses(of: add.name, with: fused.name)
            g.remove(add.name)
            g.update(fused)
            g.move(fused.name, to: i)
            remarks.append(Remark(pass: name, node: add.name, message: "fused into '\(fused.name)'"))
        }
        g.apply(to: &graph)
    }
}
