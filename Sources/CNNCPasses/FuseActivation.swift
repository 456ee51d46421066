// fuse-activation: an activation (or PReLU) after a conv or dense becomes its epilogue.
//
//   c = conv(x) ...; r = relu(c)          ->    c = conv(x) ... act=relu
//   c = conv(x) ...; p = prelu(c) shared=false  ->  c = conv(x) ... prelu=p prelu_shared=false
//
// The PReLU's slope keeps its name `p.weight`. Refuses when: the input is not a conv or
// dense; it already has an activation; it has another user or is a graph output; the
// activation is a graph output (its name is part of the API).

import CNNCIR

/// Fuses element-wise activations into the conv or dense before them.
public struct FuseActivation: Pass {
    public init() {}
    public let name = "fuse-activation"
    public let summary = "fuse relu/leaky_relu/prelu/sigmoid/tanh/swish/elu into the conv or dense before it"
    public let modes: Set<PipelineMode> = [.inference]

    public func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
        var g = GraphEditor(graph)
        // Each node is read when the loop reaches it: an earlier fusion may have rewired it.
        for i in g.indices {
            guard let node = g[i] else { continue }
            var activation: Activation?, prelu: FoldedPReLU?
            switch node.op {
            case .activation(let a): activation = a
            case .prelu(let p): prelu = FoldedPReLU(node: node.name, shared: p.shared)
            case .input, .conv, .dense, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .batchNorm,
                 .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                continue
            }
            func refuse(_ why: String) { remarks.append(Remark(pass: name, node: node.name, message: "not fused: \(why)")) }
            let producerName = node.inputs[0]
            guard var producer = g.node(named: producerName) else { continue }
            var epilogue: Epilogue
            switch producer.op {
            case .conv(let a): epilogue = a.epilogue
            case .dense(let a): epilogue = a.epilogue
            case .input, .activation, .prelu, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .batchNorm,
                 .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                refuse("input '\(producerName)' is not a conv or dense"); continue
            }
            guard epilogue.activation == nil, epilogue.prelu == nil else { refuse("'\(producerName)' already has an activation"); continue }
            guard g.isOnlyUser(node.name, of: producerName) else { refuse("'\(producerName)' has another user"); continue }
            guard !g.isOutput(producerName) else { refuse("'\(producerName)' is a graph output"); continue }
            guard !g.isOutput(node.name) else { refuse("it is a graph output"); continue }
            epilogue.activation = activation
            epilogue.prelu = prelu
            if case .conv(var a) = producer.op { a.epilogue = epilogue; producer.op = .conv(a) }
            if case .dense(var a) = producer.op { a.epilogue = epilogue; producer.op = .dense(a) }
            g.update(producer)
            g.replaceUses(of: node.name, with: producerName)
            g.remove(node.name)
            remarks.append(Remark(pass: name, node: node.name, message: "fused into '\(producerName)'"))
        }
        g.apply(to: &graph)
    }
}
