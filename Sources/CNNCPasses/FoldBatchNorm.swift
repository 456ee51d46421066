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
        for bn in graph.nodes {
            guard case .batchNorm(let attributes) = bn.op else { continue }
            let users = graph.users()
            let index = graph.indexByName()
            let producer = graph.nodes[index[bn.inputs[0]]!]
            func refuse(_ why: String) { remarks.append(Remark(pass: name, node: bn.name, message: "not folded: \(why)")) }
            let folded = FoldedBatchNorm(node: bn.name, epsilon: attributes.epsilon)
            var op = producer.op
            switch op {
            case .conv(var a):
                guard a.epilogue.isEmpty else { refuse("'\(producer.name)' already has an epilogue"); continue }
                a.epilogue.batchNorm = folded
                op = .conv(a)
            case .dense(var a):
                guard a.epilogue.isEmpty else { refuse("'\(producer.name)' already has an epilogue"); continue }
                a.epilogue.batchNorm = folded
                op = .dense(a)
            case .input, .activation, .prelu, .add, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                 .batchNorm, .flatten, .concat, .softmax, .logSoftmax:
                refuse("input '\(producer.name)' is not a conv or dense"); continue
            }
            guard users[producer.name] == [bn.name] else {
                refuse("'\(producer.name)' has another user (\(users[producer.name]!.filter { $0 != bn.name }.joined(separator: ", ")))"); continue
            }
            guard !graph.outputs.contains(producer.name) else { refuse("'\(producer.name)' is a graph output"); continue }
            guard !graph.outputs.contains(bn.name) else { refuse("it is a graph output"); continue }
            graph.nodes[index[producer.name]!].op = op
            graph.replaceUses(of: bn.name, with: producer.name)
            graph.remove([bn.name])
            remarks.append(Remark(pass: name, node: bn.name, message: "folded into '\(producer.name)'"))
        }
    }
}
