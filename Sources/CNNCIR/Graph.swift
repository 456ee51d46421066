// The graph IR: a value type holding nodes in topological order. Each node produces one
// value, named by the node; inputs refer to earlier nodes by name. Copying a `Graph` gives a
// test its "before" graph.

/// One operation in the graph and the value it produces.
public struct Node: Hashable, Sendable {
    /// Unique name; also names the node's value and prefixes its parameters (`c1.weight`).
    public var name: String
    public var op: Op
    /// Names of the nodes whose values this node reads, in operand order.
    public var inputs: [String]
    /// The per-sample output shape, filled in by shape inference (empty before).
    public var shape: Shape
    /// Where the node was written, for diagnostics and generated-code comments.
    public var location: SourceLocation?

    public init(name: String, op: Op, inputs: [String], shape: Shape = Shape([]),
                location: SourceLocation? = nil) {
        self.name = name; self.op = op; self.inputs = inputs; self.shape = shape
        self.location = location
    }

    /// `conv 'c1'`, as messages name a node.
    public var displayName: String {
        if case .input = op { return "input '\(name)'" }
        return "\(op.keyword!.rawValue) '\(name)'"
    }
}

/// A network: nodes in topological order, and which values are its outputs.
public struct Graph: Hashable, Sendable {
    public var name: String
    public var nodes: [Node]
    /// Names of the output values, in order.
    public var outputs: [String]
    /// Layers whose parameters training leaves alone (`frozen=true` in `.net`; `--freeze`
    /// adds more): no gradient, no momentum. Transfer learning.
    public var frozen: Set<String> = []

    public init(name: String, nodes: [Node] = [], outputs: [String] = []) {
        self.name = name; self.nodes = nodes; self.outputs = outputs
    }

    /// The graph inputs, in declaration order.
    public var inputs: [Node] {
        nodes.filter { if case .input = $0.op { return true } else { return false } }
    }

    /// A map from node name to index in `nodes`.
    public func indexByName() -> [String: Int] {
        var map: [String: Int] = [:]
        for (i, node) in nodes.enumerated() where map[node.name] == nil { map[node.name] = i }
        return map
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// For each node name, the names of the nodes that read it (in graph order).
    public func users() -> [String: [String]] {
        var map: [String: [String]] = [:]
        for node in nodes {
            // A node's inputs are visited together, so a repeated reader can only be the last.
            for input in node.inputs where map[input]?.last != node.name {
                map[input, default: []].append(node.name)
            }
        }
        return map
    }
}

/// How a parameter tensor starts before training or loading.
public enum Initializer: Hashable, Sendable {
    /// He (Kaiming) uniform: U(-b, b), b = sqrt(6 / fanIn); for layers feeding ReLU-like activations.
    case he(fanIn: Int)
    /// Xavier (Glorot) uniform: U(-b, b), b = sqrt(6 / (fanIn + fanOut)).
    case xavier(fanIn: Int, fanOut: Int)
    /// Bias: U(-b, b), b = 1 / sqrt(fanIn), as PyTorch initializes conv and linear biases.
    case bias(fanIn: Int)
    /// PyTorch's default conv/linear weight: U(-b, b), b = 1 / sqrt(fanIn) (kaiming_uniform, a = sqrt(5)).
    case torch(fanIn: Int)
    /// Every element equal to the value (batch-norm gamma 1, beta 0, running mean 0, var 1; PReLU 0.25).
    case constant(Double)

    /// The half-width of the uniform distribution, or nil for constants.
    public var bound: Double? {
        switch self {
        case .he(let fanIn): return (6.0 / Double(fanIn)).squareRoot()
        case .xavier(let fanIn, let fanOut): return (6.0 / Double(fanIn + fanOut)).squareRoot()
        case .bias(let fanIn), .torch(let fanIn): return 1.0 / Double(fanIn).squareRoot()
        case .constant: return nil
        }
    }
}

/// A parameter or buffer tensor of a node, named as PyTorch's `state_dict` names it.
public struct ParameterSpec: Hashable, Sendable {
    /// Full name, e.g. `c1.weight`, `bn1.running_mean`.
    public var name: String
    /// The node that owns it.
    public var node: String
    /// The suffix after the node name: `weight`, `bias`, `running_mean`, `running_var`.
    public var role: String
    public var shape: [Int]
    /// Learned by gradient descent (false for batch-norm running statistics).
    public var trainable: Bool
    public var initializer: Initializer

    /// Elements; `Int.max` when the product overflows (shape inference refuses it).
    public var count: Int { SizeArithmetic.saturatingProduct(shape) }
}

extension Graph {
    /// Every parameter and buffer, in node order, then in PyTorch's order within a node.
    /// Needs inferred shapes.
    public func parameters() -> [ParameterSpec] {
        let index = indexByName()
        let users = self.users()
        var specs: [ParameterSpec] = []
        for node in nodes {
            let inShape = node.inputs.first.flatMap { index[$0] }.map { nodes[$0].shape } ?? Shape([])
            func add(_ role: String, _ shape: [Int], _ trainable: Bool, _ initializer: Initializer) {
                specs.append(ParameterSpec(name: "\(node.name).\(role)", node: node.name, role: role,
                                           shape: shape, trainable: trainable, initializer: initializer))
            }
            switch node.op {
            case .conv(let a):
                let cin = inShape.rank == 3 ? inShape.c / max(a.groups, 1) : 0
                let fanIn = cin * a.kernel.h * a.kernel.w
                let fanOut = a.filters / max(a.groups, 1) * a.kernel.h * a.kernel.w
                add("weight", [a.filters, cin, a.kernel.h, a.kernel.w], true,
                    a.initializer == .torch ? .torch(fanIn: max(fanIn, 1))
                        : useHe(a.initializer, node, a.epilogue, users: users, index: index)
                        ? .he(fanIn: max(fanIn, 1)) : .xavier(fanIn: max(fanIn, 1), fanOut: max(fanOut, 1)))
                if a.bias { add("bias", [a.filters], true, .bias(fanIn: max(fanIn, 1))) }
                addEpilogue(a.epilogue, channels: a.filters, &specs)
            case .convTranspose(let a):
                // Weight [C, K/G, R, S]; PyTorch computes fan_in from its second dimension.
                let cin = inShape.rank == 3 ? inShape.c : 0
                let kg = a.filters / max(a.groups, 1), cg = cin / max(a.groups, 1)
                let fanIn = kg * a.kernel.h * a.kernel.w, fanOut = cg * a.kernel.h * a.kernel.w
                add("weight", [cin, kg, a.kernel.h, a.kernel.w], true,
                    a.initializer == .torch ? .torch(fanIn: max(fanIn, 1))
                        : useHe(a.initializer, node, .none, users: users, index: index)
                        ? .he(fanIn: max(fanIn, 1)) : .xavier(fanIn: max(fanIn, 1), fanOut: max(fanOut, 1)))
                if a.bias { add("bias", [a.filters], true, .bias(fanIn: max(fanIn, 1))) }
            case .dense(let a):
                let fanIn = inShape.count
                add("weight", [a.units, fanIn], true,
                    a.initializer == .torch ? .torch(fanIn: max(fanIn, 1))
                        : useHe(a.initializer, node, a.epilogue, users: users, index: index)
                        ? .he(fanIn: max(fanIn, 1)) : .xavier(fanIn: max(fanIn, 1), fanOut: a.units))
                if a.bias { add("bias", [a.units], true, .bias(fanIn: max(fanIn, 1))) }
                addEpilogue(a.epilogue, channels: a.units, &specs)
            case .prelu(let a):
                add("weight", [a.shared ? 1 : (inShape.dims.first ?? 1)], true, .constant(0.25))
            case .batchNorm:
                let c = inShape.dims.first ?? 0
                add("weight", [c], true, .constant(1))
                add("bias", [c], true, .constant(0))
                add("running_mean", [c], false, .constant(0))
                add("running_var", [c], false, .constant(1))
            case .input, .activation, .add, .binary, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                 .flatten, .concat, .shuffle, .slice, .pad, .upsample, .softmax, .logSoftmax:
                break
            }
        }
        return specs
    }

    /// The parameters a fused epilogue brings along, under their original nodes' names.
    private func addEpilogue(_ e: Epilogue, channels: Int, _ specs: inout [ParameterSpec]) {
        if let bn = e.batchNorm {
            for (role, trainable, value) in [("weight", true, 1.0), ("bias", true, 0.0),
                                             ("running_mean", false, 0.0), ("running_var", false, 1.0)] {
                specs.append(ParameterSpec(name: "\(bn.node).\(role)", node: bn.node, role: role, shape: [channels],
                                           trainable: trainable, initializer: .constant(value)))
            }
        }
        if let p = e.prelu {
            specs.append(ParameterSpec(name: "\(p.node).weight", node: p.node, role: "weight",
                                       shape: [p.shared ? 1 : channels], trainable: true, initializer: .constant(0.25)))
        }
    }

    /// He or Xavier for a conv/dense weight: the decision recorded on the node, or (auto) the
    /// consumer rule.
    private func useHe(_ initializer: WeightInit, _ node: Node, _ epilogue: Epilogue,
                       users: [String: [String]], index: [String: Int]) -> Bool {
        switch initializer {
        case .he: return true
        case .xavier, .torch: return false
        case .auto:
            if epilogue.prelu != nil { return true }
            if let act = epilogue.activation { return act.isReLULike }
            return feedsReLULike(node.name, users: users, index: index)
        }
    }

    /// The graph with every `init=auto` decided (He before ReLU-like activations, else
    /// Xavier), so that later rewrites cannot change how weights start.
    public func resolvingInitializers() -> Graph {
        var g = self
        let users = self.users(), index = indexByName()
        for i in g.nodes.indices {
            if case .conv(var a) = g.nodes[i].op, a.initializer == .auto {
                a.initializer = useHe(.auto, g.nodes[i], a.epilogue, users: users, index: index) ? .he : .xavier
                g.nodes[i].op = .conv(a)
            } else if case .convTranspose(var a) = g.nodes[i].op, a.initializer == .auto {
                a.initializer = useHe(.auto, g.nodes[i], .none, users: users, index: index) ? .he : .xavier
                g.nodes[i].op = .convTranspose(a)
            } else if case .dense(var a) = g.nodes[i].op, a.initializer == .auto {
                a.initializer = useHe(.auto, g.nodes[i], a.epilogue, users: users, index: index) ? .he : .xavier
                g.nodes[i].op = .dense(a)
            }
        }
        return g
    }

    /// Whether a layer's output reaches a ReLU-like activation through at most batch norm
    /// and dropout, so He initialization fits it.
    private func feedsReLULike(_ name: String, users: [String: [String]], index: [String: Int]) -> Bool {
        var current = name
        for _ in 0..<4 {
            guard let next = users[current], next.count == 1, let i = index[next[0]] else { return false }
            switch nodes[i].op {
            case .activation(let a):
                switch a {
                case .relu, .leakyRelu, .elu, .swish, .selu, .softplus, .hardSwish, .clip: return true
                case .sigmoid, .tanh, .hardSigmoid, .affine: return false
                }
            case .prelu: return true
            case .batchNorm, .dropout: current = next[0]
            case .input, .conv, .dense, .convTranspose, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .flatten,
                 .concat, .shuffle, .slice, .pad, .upsample, .softmax, .logSoftmax:
                return false
            }
        }
        return false
    }
}

/// Seeded, counter-based initialization: element `i` of tensor `name` is a pure function of
/// (seed, name, i), so it never depends on the order or the thread that computes it, and the
/// generated C reproduces it exactly (integer hashing, one multiply and one subtract in
/// double, rounded to float).
public enum SeededInit {
    /// SplitMix64's finalizer (Steele, Lea, Flood 2014).
    public static func splitmix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a over the UTF-8 bytes of a name.
    public static func nameHash(_ name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Uniform in [0, 1) with 24 random bits: `(hash >> 40) / 2^24`.
    public static func uniform(seed: UInt64, name: String, index: Int) -> Double {
        let stream = splitmix64(seed ^ nameHash(name))
        let h = splitmix64(stream &+ UInt64(index))
        return Double(h >> 40) / 16_777_216.0
    }

    /// The initial float value of one element: `(2u - 1) * bound`, or the constant.
    public static func value(_ initializer: Initializer, seed: UInt64, name: String, index: Int) -> Float {
        if case .constant(let c) = initializer { return Float(c) }
        let u = uniform(seed: seed, name: name, index: index)
        return Float((2 * u - 1) * initializer.bound!)
    }

    /// All values of a parameter tensor.
    public static func values(for spec: ParameterSpec, seed: UInt64) -> [Float] {
        (0..<spec.count).map { value(spec.initializer, seed: seed, name: spec.name, index: $0) }
    }
}
