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
        for node in graph.nodes {
            var activation: Activation?, prelu: FoldedPReLU?
            switch node.op {
            case .activation(let a): activation = a
            case .prelu(let p): prelu = FoldedPReLU(node: node.name, shared: p.shared)
            case .input, .conv, .dense, .add, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .batchNorm,
                 .flatten, .concat, .softmax, .logSoftmax:
                continue
            }
            func refuse(_ why: String) { remarks.append(Remark(pass: name, node: node.name, message: "not fused: \(why)")) }
            let users = graph.users()
            let index = graph.indexByName()
            // An earlier fusion in this loop may have rewired this node's input: read it anew.
            guard let current = index[node.name].map({ graph.nodes[$0] }) else { continue }
            let producerName = current.inputs[0]
            var producer = graph.nodes[index[producerName]!]
            var epilogue: Epilogue
            switch producer.op {
            case .conv(let a): epilogue = a.epilogue
            case .dense(let a): epilogue = a.epilogue
            case .input, .activation, .prelu, .add, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .batchNorm,
                 .flatten, .concat, .softmax, .logSoftmax:
                refuse("input '\(producerName)' is not a conv or dense"); continue
            }
            guard epilogue.activation == nil, epilogue.prelu == nil else { refuse("'\(producerName)' already has an activation"); continue }
            guard users[producerName] == [node.name] else { refuse("'\(producerName)' has another user"); continue }
            guard !graph.outputs.contains(producerName) else { refuse("'\(producerName)' is a graph output"); continue }
            guard !graph.outputs.contains(node.name) else { refuse("it is a graph output"); continue }
            epilogue.activation = activation
            epilogue.prelu = prelu
            if case .conv(var a) = producer.op { a.epilogue = epilogue; producer.op = .conv(a) }
            if case .dense(var a) = producer.op { a.epilogue = epilogue; producer.op = .dense(a) }
            graph.nodes[index[producerName]!] = producer
            graph.replaceUses(of: node.name, with: producerName)
            graph.remove([node.name])
            remarks.append(Remark(pass: name, node: node.name, message: "fused into '\(producerName)'"))
        }
    }
}
