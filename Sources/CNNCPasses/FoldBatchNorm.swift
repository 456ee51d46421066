// fold-batchnorm: a batch norm after a conv or dense becomes part of it (inference).
//
//   c = conv(x) ...; b = batchnorm(c) eps=E    ->    c = conv(x) ... bn=b bn_eps=E
//
// The batchnorm's parameters keep their names (weights files do not change). The generated
// code folds them into the weights once, when weights are loaded or initialized:
//   w' = w * gamma / sqrt(var + eps),   b' = beta + (b - mean) * gamma / sqrt(var + eps).
// Refuses when: the input is not a conv or dense; the layer already has an epilogue; the
// layer's output has another user or is a graph output (its unnormalized value is needed);
// the batchnorm is a graph output (its name is part of the API).

import CNNCIR

/// Folds inference batch norms into the preceding conv or dense.
public struct FoldBatchNorm: Pass {
    public init() {}
    public let name = "fold-batchnorm"
    public let summary = "fold batch norm into the conv or dense before it (inference)"
    public let modes: Set<PipelineMode> = [.inference]

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        var g = GraphEditor(graph)
        // Each node is read when the loop reaches it: an earlier fold may have rewired it (a
        // batch norm after a folded one now reads the conv).
        for i in g.indices {
            guard let bn = g[i], case .batchNorm(let attributes) = bn.op else { continue }
            guard var producer = g.node(named: bn.inputs[0]) else { continue }
            func refuse(_ why: String) { remarks.append(Remark(pass: name, node: bn.name, message: "not folded: \(why)")) }
            let folded = FoldedBatchNorm(node: bn.name, epsilon: attributes.epsilon)
            switch producer.op {
            case .conv(var a):
                guard a.epilogue.isEmpty else { refuse("'\(producer.name)' already has an epilogue"); continue }
                a.epilogue.batchNorm = folded
                producer.op = .conv(a)
            case .dense(var a):
                guard a.epilogue.isEmpty else { refuse("'\(producer.name)' already has an epilogue"); continue }
                a.epilogue.batchNorm = folded
                producer.op = .dense(a)
            case .input, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                 .batchNorm, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                refuse("input '\(producer.name)' is not a conv or dense"); continue
            }
            guard g.isOnlyUser(bn.name, of: producer.name) else {
                refuse("'\(producer.name)' has another user (\(g.users(of: producer.name).filter { $0 != bn.name }.joined(separator: ", ")))"); continue
            }
            guard !g.isOutput(producer.name) else { refuse("'\(producer.name)' is a graph output"); continue }
            guard !g.isOutput(bn.name) else { refuse("it is a graph output"); continue }
            g.update(producer)
            g.replaceUses(of: bn.name, with: producer.name)
            g.remove(bn.name)
            remarks.append(Remark(pass: name, node: bn.name, message: "folded into '\(producer.name)'"))
        }
        g.apply(to: &graph)
    }
}
