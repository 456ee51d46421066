// The reference interpreter: the forward pass of a graph on batches, in inference mode (or in
// training mode, for `trainingStep`), accumulating in Double. It is written from the op
// definitions (PyTorch semantics) and shares no code with the passes or the C backend, so it
// can judge them.

import CNNCIR

/// Runs a graph with a fixed set of parameters on batches of inputs.
public struct Interpreter: Sendable {
    /// The graph, with inferred shapes.
    public let graph: Graph
    /// Every parameter and buffer of the graph by its `state_dict` name.
    public let parameters: [String: Tensor]

    /// Checks that the graph verifies (with inferred shapes) and that `parameters` holds every
    /// `ParameterSpec` of the graph with its shape, and nothing else.
    public init(graph: Graph, parameters: [String: Tensor]) throws {
        try Interpreter.check(graph: graph)
        try Interpreter.check(parameters: parameters, of: graph)
        self.graph = graph
        self.parameters = parameters
    }

    /// Runs the graph on a batch. `inputs` by input node name, each with shape [N] + input
    /// shape (same N for all). Returns every node's value by node name (including inputs).
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try forward(inputs, mode: .inference).values
    }

    /// Convenience: only the graph outputs, in graph.outputs order.
    public func outputs(_ inputs: [String: Tensor]) throws -> [Tensor] {
        let values = try run(inputs)
        return graph.outputs.map { values[$0]! }
    }

    /// The forward pass in either mode, keeping what the backward pass needs.
    func forward(_ inputs: [String: Tensor], mode: ForwardMode) throws -> ForwardPass {
        let batch = try check(inputs: inputs)
        var pass = ForwardPass(batch: batch)
        for node in graph.nodes {
            let operands = node.inputs.map { pass.values[$0]! }
            pass.values[node.name] = try evaluateNode(node, operands: operands, inputs: inputs, batch: batch,
                                                      mode: mode, pass: &pass)
        }
        return pass
    }

    /// The value of one node given its operands' values. In training mode batch norm uses
    /// (and records) batch statistics and dropout applies (and records) its mask.
    private func evaluateNode(_ node: Node, operands: [Tensor], inputs: [String: Tensor], batch: Int,
                              mode: ForwardMode, pass: inout ForwardPass) throws -> Tensor {
        // An empty batch gives empty values (inputs, which have no operands, pass through).
        if batch == 0, !node.inputs.isEmpty { return Tensor(zeros: [0] + node.shape.dims) }
        func parameter(_ role: String) -> Tensor { parameters["\(node.name).\(role)"]! }
        let x = operands.first ?? Tensor(zeros: [])
        switch node.op {
        case .input:
            return inputs[node.name]!
        case .conv(let a):
            let y = ConvKernel.forward(x, weight: parameter("weight"), bias: a.bias ? parameter("bias") : nil,
                                       attributes: a, output: node.shape)
            return try epilogue(a.epilogue, of: node, to: y, operands: operands, mode: mode, pass: &pass)
        case .dense(let a):
            let y = DenseKernel.forward(x, weight: parameter("weight"), bias: a.bias ? parameter("bias") : nil)
            return try epilogue(a.epilogue, of: node, to: y, operands: operands, mode: mode, pass: &pass)
        case .activation(let function):
            return ElementwiseKernels.activation(x, function)
        case .prelu:
            return ElementwiseKernels.prelu(x, slopes: parameter("weight"))
        case .add:
            return ElementwiseKernels.add(operands)
        case .binary(let op):
            return BinaryKernel.forward(op, operands[0], operands[1])
        case .dropout(let rate):
            guard case .training(let seed, let step) = mode else { return x }
            let multipliers = DropoutKernel.multipliers(count: x.count, seed: seed, node: node.name,
                                                        step: step, rate: rate)
            pass.dropoutMultipliers[node.name] = multipliers
            return DropoutKernel.apply(multipliers, to: x)
        case .maxPool(let a):
            return PoolKernels.max(x, attributes: a, output: node.shape)
        case .avgPool(let a):
            return PoolKernels.average(x, attributes: a, output: node.shape)
        case .globalAvgPool:
            return PoolKernels.globalAverage(x)
        case .globalMaxPool:
            return PoolKernels.globalMax(x)
        case .lrn(let a):
            return NormalizationKernels.lrn(x, attributes: a)
        case .batchNorm(let a):
            guard case .training = mode else {
                return NormalizationKernels.batchNorm(
                    x, weight: parameter("weight"), bias: parameter("bias"), mean: parameter("running_mean"),
                    variance: parameter("running_var"), epsilon: a.epsilon)
            }
            let count = x.count / max(x.shape[1], 1)
            guard count > 1 else {
                throw InterpreterError(
                    "\(node.displayName) in training needs more than one value per channel, got \(count)")
            }
            let (y, statistics) = NormalizationKernels.batchNormTraining(
                x, weight: parameter("weight"), bias: parameter("bias"), epsilon: a.epsilon)
            pass.batchStatistics[node.name] = statistics
            return y
        case .flatten:
            return Tensor(shape: [batch, node.shape.count], data: x.data)
        case .concat:
            return ConcatKernel.forward(operands, output: node.shape)
        case .shuffle(let groups):
            return ChannelKernels.shuffle(x, groups: groups)
        case .slice(let start, let end):
            return ChannelKernels.slice(x, start: start, end: end)
        case .pad(let a):
            return PadKernel.forward(x, a, output: node.shape)
        case .upsample(let a):
            return UpsampleKernel.forward(x, a)
        case .convTranspose(let a):
            return ConvTransposeKernel.forward(x, weight: parameter("weight"), bias: a.bias ? parameter("bias") : nil, a,
                                               output: node.shape)
        case .softmax:
            return SoftmaxKernel.forward(x)
        case .logSoftmax:
            return SoftmaxKernel.forward(x, log: true)
        }
    }

    /// Applies a conv or dense node's fused epilogue to the layer's own output `y`, which the
    /// pass keeps for the backward pass. A folded batch norm is inference-only: training runs
    /// batch norm on batch statistics, which the folded form cannot express.
    private func epilogue(_ e: Epilogue, of node: Node, to y: Tensor, operands: [Tensor], mode: ForwardMode,
                          pass: inout ForwardPass) throws -> Tensor {
        guard !e.isEmpty else { return y }
        if case .training = mode, let bn = e.batchNorm {
            throw InterpreterError(
                "\(node.displayName) has batchnorm '\(bn.node)' folded in, which is inference-only; train the unfolded graph")
        }
        pass.layerOutputs[node.name] = y
        return EpilogueKernel.apply(e, to: y, residual: operands.count > 1 ? operands[1] : nil, parameters: parameters)
    }

    // MARK: - Checks

    private static func check(graph: Graph) throws {
        if let node = graph.nodes.first(where: { $0.shape.rank == 0 }) {
            throw InterpreterError(
                "graph '\(graph.name)' has no inferred shape for \(node.displayName); run inferShapes() first")
        }
        let problems = graph.verify()
        guard problems.isEmpty else {
            throw InterpreterError("graph '\(graph.name)' does not verify:\n"
                                   + problems.map(\.description).joined(separator: "\n"))
        }
    }

    private static func check(parameters: [String: Tensor], of graph: Graph) throws {
        var problems: [String] = []
        let specs = graph.parameters()
        for spec in specs {
            guard let tensor = parameters[spec.name] else {
                problems.append("parameter '\(spec.name)': missing, expected shape \(spec.shape)")
                continue
            }
            if tensor.shape != spec.shape {
                problems.append("parameter '\(spec.name)': expected shape \(spec.shape), got \(tensor.shape)")
            } else if tensor.data.count != spec.count {
                problems.append("parameter '\(spec.name)': shape \(spec.shape) needs \(spec.count) values, got \(tensor.data.count)")
            }
        }
        let known = Set(specs.map(\.name))
        for name in parameters.keys.sorted() where !known.contains(name) {
            problems.append("parameter '\(name)': not a parameter of graph '\(graph.name)'")
        }
        guard problems.isEmpty else { throw InterpreterError(problems.joined(separator: "\n")) }
    }

    /// Checks the inputs against the graph and returns the batch size.
    private func check(inputs: [String: Tensor]) throws -> Int {
        var problems: [String] = []
        var batch: (size: Int, from: String)?
        let declared = graph.inputs
        for node in declared {
            let expected = "[N, " + node.shape.dims.map(String.init).joined(separator: ", ") + "]"
            guard let tensor = inputs[node.name] else {
                problems.append("input '\(node.name)': missing, expected shape \(expected)")
                continue
            }
            guard tensor.shape.count == node.shape.rank + 1, Array(tensor.shape.dropFirst()) == node.shape.dims else {
                problems.append("input '\(node.name)': expected shape \(expected), got \(tensor.shape)")
                continue
            }
            if tensor.data.count != Tensor.elementCount(tensor.shape) {
                problems.append("input '\(node.name)': shape \(tensor.shape) needs \(Tensor.elementCount(tensor.shape)) values, got \(tensor.data.count)")
                continue
            }
            if let batch, batch.size != tensor.shape[0] {
                problems.append("input '\(node.name)': batch size \(tensor.shape[0]) differs from \(batch.size) of input '\(batch.from)'")
            } else if batch == nil {
                batch = (tensor.shape[0], node.name)
            }
        }
        let names = Set(declared.map(\.name))
        for name in inputs.keys.sorted() where !names.contains(name) {
            problems.append("input '\(name)': not an input of graph '\(graph.name)'")
        }
        guard problems.isEmpty else { throw InterpreterError(problems.joined(separator: "\n")) }
        return batch?.size ?? 0
    }
}
