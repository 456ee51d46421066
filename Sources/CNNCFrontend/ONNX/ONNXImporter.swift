// Imports an ONNX graph into cnnc's IR, node by node, in the graph's (topological) order.
//
// Every ONNX value is one of: a constant known at import time (initializers, `Constant`, and
// the shape arithmetic exporters emit around `Reshape`, folded here since shapes are static),
// a tensor computed by a cnnc node (with its ONNX dims, batch first), or a pending `Pad` that
// only a following Conv or pool may absorb. Operator handlers live in one table
// (`handlers`); each reads its inputs and attributes, checks them, and emits nodes.
//
// Problems are collected, not thrown out of the import: every unsupported node is listed in
// one error, those after an unsupported one marked as downstream of it (an unsupported
// element-wise node lets an input of its output's shape stand in for it, so the nodes after
// it are still imported and checked); every other problem names its node, and a node whose
// input failed is skipped silently so one mistake gives one message.

import CNNCIR
import Foundation

/// One imported ONNX value.
enum ImportedValue {
    /// Known at import time.
    case constant(ConstTensor)
    /// Computed by the cnnc node `node`; `dims` are the ONNX dims, the batch first.
    case tensor(node: String, dims: [Int])
    /// A constant-mode `Pad` of the tensor, waiting for a Conv or pool to absorb it.
    case padded(node: String, dims: [Int], padding: Padding, value: Double, padNode: String)
    /// Produced by a node that failed to import.
    case failed
}

/// A problem with one node; the importer adds the node's name and type.
struct ImportError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Thrown by a handler when an operator's use is outside what cnnc supports; listed together
/// with unknown operators.
struct Unsupported: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// What a handler sees of the node it imports.
struct NodeContext {
    let proto: Onnx_NodeProto
    let opset: Int
    /// The ONNX node's position in the graph, from 0.
    let index: Int

    var opType: String { proto.opType }
    var label: String { proto.name.isEmpty ? (proto.output.first ?? "?") : proto.name }

    func attribute(_ name: String) -> Onnx_AttributeProto? { proto.attribute.first { $0.name == name } }

    func int(_ name: String, _ fallback: Int) throws -> Int {
        guard let a = attribute(name) else { return fallback }
        guard a.type == .int || (a.type == .undefined && a.i != 0) else {
            throw ImportError("attribute '\(name)' must be an int")
        }
        guard let v = Int(exactly: a.i) else { throw ImportError("attribute '\(name)' is out of range") }
        return v
    }

    func float(_ name: String, _ fallback: Double) throws -> Double {
        guard let a = attribute(name) else { return fallback }
        guard a.type == .float || a.type == .undefined else { throw ImportError("attribute '\(name)' must be a float") }
        // The shortest decimal that reads back as the float: 0.2, not 0.20000000298023224.
        return Double("\(a.f)") ?? Double(a.f)
    }

    func ints(_ name: String) throws -> [Int]? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .ints || a.type == .undefined else { throw ImportError("attribute '\(name)' must be a list of ints") }
        return try a.ints.map { v in
            // A range test, not abs(): abs(INT64_MIN) traps.
            guard let i = Int(exactly: v), i >= -(1 << 40), i <= 1 << 40 else { throw ImportError("attribute '\(name)' has \(v), out of range") }
            return i
        }
    }

    func string(_ name: String, _ fallback: String) throws -> String {
        guard let a = attribute(name) else { return fallback }
        guard a.type == .string || a.type == .undefined else { throw ImportError("attribute '\(name)' must be a string") }
        return String(decoding: a.s, as: UTF8.self)
    }

    /// The name of input `i`, or nil when absent (past the end, or "" for an optional input).
    func inputName(_ i: Int) -> String? {
        i < proto.input.count && !proto.input[i].isEmpty ? proto.input[i] : nil
    }
}

/// The state of one import.
struct ONNXImporter {
    typealias Handler = @Sendable (inout ONNXImporter, NodeContext) throws -> Void

    let model: Onnx_ModelProto
    let file: String
    let baseDirectory: String?
    let networkName: String

    var opset = 0
    var values: [String: ImportedValue] = [:]
    var nodes: [Node] = []
    var nodeIndex: [String: Int] = [:]
    var weights: [String: WeightTensor] = [:]
    var parameterNames: [(onnx: String, cnnc: String)] = []
    var names = NameAllocator()
    /// How many nodes (and graph outputs) read each ONNX value.
    var useCount: [String: Int] = [:]
    /// The operator types of the nodes that read each ONNX value (a graph output reads as "").
    var readers: [String: [String]] = [:]
    /// Dense nodes made from a MatMul (with the MatMul's ONNX output), whose bias a following
    /// Add may supply.
    var biasFree: [String: String] = [:]
    /// The batch that shape arithmetic sees: the first input's static batch, else 1.
    var nominalBatch = 1

    var diagnostics: [Diagnostic] = []
    var unsupported: [String] = []
    /// For each ONNX value computed from an unsupported node's output, that node's label (the
    /// first such upstream), so nodes after it are listed as downstream of it.
    var unsupportedUpstream: [String: String] = [:]
    /// Nodes skipped because they read a value no node could compute, after an unsupported one.
    var skippedDownstream = 0

    init(model: Onnx_ModelProto, file: String, baseDirectory: String?, networkName: String) {
        self.model = model; self.file = file; self.baseDirectory = baseDirectory; self.networkName = networkName
    }

    // MARK: - The import

    mutating func run() -> Result<ONNXModel, DiagnosticList> {
        let g = model.graph
        let defaultDomain = model.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        opset = defaultDomain.map { Int($0.version) }.max() ?? (model.opsetImport.isEmpty ? 1 : 0)
        guard opset >= ONNXFrontend.minimumOpset else {
            return .failure(DiagnosticList([.error(
                "'\(file)' uses opset \(opset) of the default ONNX domain; cnnc imports opset \(ONNXFrontend.minimumOpset) and newer")]))
        }
        for node in g.node {
            for input in node.input where !input.isEmpty {
                useCount[input, default: 0] += 1
                readers[input, default: []].append(node.opType)
            }
        }
        for output in g.output { useCount[output.name, default: 0] += 1; readers[output.name, default: []].append("") }

        // Initializers first: in IR version < 4 they are also listed as graph inputs.
        var initialized: Set<String> = []
        for t in g.initializer {
            initialized.insert(t.name)
            do { values[t.name] = .constant(try t.decode(baseDirectory: baseDirectory)) } catch {
                diagnostics.append(.error("initializer '\(t.name)': \(error)"))
                values[t.name] = .failed
            }
        }
        importInputs(g.input.filter { !initialized.contains($0.name) })

        for (i, proto) in g.node.enumerated() {
            let context = NodeContext(proto: proto, opset: opset, index: i)
            importNode(context)
        }
        if !unsupported.isEmpty {
            var list = unsupported.map { "  \($0)" }.joined(separator: "\n")
            if skippedDownstream > 0 {
                let one = skippedDownstream == 1
                list += "\n  (\(skippedDownstream) more node\(one ? "" : "s") downstream not checked: \(one ? "its" : "their") inputs have no known shape)"
            }
            diagnostics.insert(.error("'\(file)' has \(unsupported.count) unsupported node\(unsupported.count == 1 ? "" : "s"):\n\(list)"), at: 0)
        }
        var outputs: [String] = []
        if diagnostics.isEmpty { outputs = graphOutputs(g.output) }
        guard diagnostics.isEmpty else { return .failure(DiagnosticList(diagnostics)) }

        var graph = Graph(name: networkName, nodes: nodes, outputs: outputs)
        removeUnused(&graph)
        var problems = graph.inferShapes()
        if problems.isEmpty { problems = graph.verify() }
        guard problems.isEmpty else { return .failure(DiagnosticList(problems)) }
        let parameters = graph.parameters()
        for spec in parameters {
            guard let w = weights[spec.name] else {
                return .failure(DiagnosticList([.error("compiler bug: parameter '\(spec.name)' was not imported")]))
            }
            guard w.shape == spec.shape else {
                return .failure(DiagnosticList([.error(
                    "parameter '\(spec.name)' has shape \(w.shape) in the model, cnnc expects \(spec.shape)")]))
            }
        }
        let kept = Set(parameters.map(\.name))
        let keptNames = parameterNames.filter { kept.contains($0.cnnc) }
        let sources = Set(keptNames.map(\.onnx))
        let constants = g.initializer.filter { $0.dataType == ONNXDataType.float.rawValue && !sources.contains($0.name) }.map(\.name)
        return .success(ONNXModel(graph: graph, weights: weights.filter { kept.contains($0.key) },
                                  parameterNames: keptNames, opset: opset, constantInitializers: constants))
    }

    private mutating func importInputs(_ inputs: [Onnx_ValueInfoProto]) {
        for (i, info) in inputs.enumerated() {
            let t = info.type.tensorType
            guard info.type.tensorType.elemType == ONNXDataType.float.rawValue else {
                diagnostics.append(.error("input '\(info.name)' has element type \(t.elemType); cnnc takes float32 inputs"))
                values[info.name] = .failed
                continue
            }
            var dims: [Int] = []
            var ok = true
            for (d, dim) in t.shape.dim.enumerated() {
                if case .dimValue(let v)? = dim.value, v > 0, v <= Int64(maxDimension) {
                    dims.append(Int(v))
                } else if case .dimValue(let v)? = dim.value {
                    // A fixed size that is no size: not a dynamic dimension.
                    diagnostics.append(.error("input '\(info.name)' has dimension \(d) of size \(v); sizes must be 1 to \(maxDimension)"))
                    ok = false
                } else if d == 0 {
                    dims.append(nominalBatch)  // a dynamic batch becomes the compile-time batch
                } else {
                    let what = dim.dimParam.isEmpty ? "unknown" : "'\(dim.dimParam)'"
                    diagnostics.append(.error("input '\(info.name)' has a dynamic dimension \(d) (\(what)); cnnc needs static shapes except the batch"))
                    ok = false
                }
            }
            guard ok else { values[info.name] = .failed; continue }
            guard dims.count >= 2, dims.count <= 4, let shape = parseDims(dims.dropFirst().map(String.init).joined(separator: "x")) else {
                diagnostics.append(.error("input '\(info.name)' has shape \(dims); cnnc takes [N, F], [N, C, L] or [N, C, H, W]"))
                values[info.name] = .failed
                continue
            }
            if i == 0, dims[0] >= 1 { nominalBatch = dims[0] }
            let name = names.allocate(info.name, fallback: "input")
            append(Node(name: name, op: .input(shape), inputs: [], shape: shape))
            values[info.name] = .tensor(node: name, dims: [nominalBatch] + shape.dims)
        }
    }

    private mutating func importNode(_ c: NodeContext) {
        let proto = c.proto
        let domain = proto.domain
        // The first unsupported node this one depends on; its outputs inherit it, and so do
        // the outputs of an unsupported node itself.
        let upstream = proto.input.compactMap { unsupportedUpstream[$0] }.first
        var root = upstream
        defer {
            if let root { for output in proto.output where !output.isEmpty { unsupportedUpstream[output] = root } }
        }
        let downstream = upstream.map { " (downstream of '\($0)')" } ?? ""
        let isKnown = ONNXImporter.handlers[c.opType] != nil && (domain.isEmpty || domain == "ai.onnx")
        let opName = "\(domain.isEmpty ? "" : domain + ".")\(c.opType)"
        // A node reading a value that failed is skipped: its cause was reported already.
        for input in proto.input where !input.isEmpty {
            if case .failed? = values[input] {
                // Still list an unsupported operator, so one run names them all.
                if !isKnown {
                    unsupported.append("'\(c.label)' (\(opName), opset \(opset)): no cnnc equivalent\(downstream)")
                } else if upstream != nil {
                    skippedDownstream += 1
                }
                fail(c.proto)
                return
            }
        }
        for input in proto.input where !input.isEmpty && values[input] == nil {
            diagnostics.append(.error("node '\(c.label)' (\(c.opType)) reads '\(input)', which no node, input or initializer defines (missing initializer?)"))
            fail(c.proto)
            return
        }
        guard isKnown, let handler = ONNXImporter.handlers[c.opType] else {
            unsupported.append("'\(c.label)' (\(opName), opset \(opset)): no cnnc equivalent\(downstream)")
            root = root ?? c.label
            standInOrFail(c)
            return
        }
        do {
            try handler(&self, c)
            // An output the handler did not bind is one the operator does not define (a Relu
            // listed with two outputs): the model's mistake, not the compiler's.
            for (i, output) in proto.output.enumerated() where !output.isEmpty && values[output] == nil {
                throw ImportError("lists \(proto.output.count) outputs; output \(i) ('\(output)') is not one cnnc's \(c.opType) produces")
            }
        } catch let e as Unsupported {
            unsupported.append("'\(c.label)' (\(c.opType), opset \(opset)): \(e.reason)\(downstream)")
            root = root ?? c.label
            standInOrFail(c)
        } catch let e as ImportError {
            diagnostics.append(.error("node '\(c.label)' (\(c.opType)): \(e.message)"))
            fail(c.proto)
        } catch {
            diagnostics.append(.error("node '\(c.label)' (\(c.opType)): \(error)"))
            fail(c.proto)
        }
    }

    /// Element-wise operators: the output has the inputs' broadcast shape.
    static let elementwise: Set<String> = [
        "Abs", "Add", "Ceil", "Celu", "Clip", "Cos", "Div", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid",
        "HardSwish", "Identity", "LeakyRelu", "Log", "Max", "Mean", "Min", "Mish", "Mul", "Neg", "Pow", "PRelu",
        "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Sin", "Softplus", "Softsign", "Sqrt", "Sub", "Sum",
        "Tan", "Tanh", "ThresholdedRelu",
    ]

    /// After an unsupported element-wise node whose output has the shape of one of its computed
    /// inputs (`x * scale[N, C, 1, 1]`, say), that input stands in for the output, so the import
    /// goes on and lists the unsupported nodes after it too (the import fails anyway). Other
    /// unsupported nodes fail their outputs.
    private mutating func standInOrFail(_ c: NodeContext) {
        guard ONNXImporter.elementwise.contains(c.opType), c.proto.output.filter({ !$0.isEmpty }).count == 1 else {
            return fail(c.proto)
        }
        var shapes: [[Int]] = [], candidates: [(node: String, dims: [Int])] = []
        for name in c.proto.input where !name.isEmpty {
            switch values[name] {
            case .tensor(let node, let dims)?: shapes.append(dims); candidates.append((node, dims))
            case .constant(let t)?: shapes.append(t.dims)
            case .padded?, .failed?, nil: return fail(c.proto)
            }
        }
        let rank = shapes.map(\.count).max() ?? 0
        var result = Array(repeating: 1, count: rank)
        for dims in shapes {
            for (i, d) in dims.enumerated() {
                let k = rank - dims.count + i
                guard result[k] == 1 || d == 1 || result[k] == d else { return fail(c.proto) }
                if d != 1 { result[k] = d }
            }
        }
        guard let standIn = candidates.first(where: { $0.dims == result }) else { return fail(c.proto) }
        bind(c, 0, .tensor(node: standIn.node, dims: standIn.dims))
    }

    private mutating func fail(_ proto: Onnx_NodeProto) {
        for output in proto.output where !output.isEmpty { values[output] = .failed }
    }

    private mutating func graphOutputs(_ outputs: [Onnx_ValueInfoProto]) -> [String] {
        var result: [String] = []
        for info in outputs {
            guard let value = values[info.name] else {
                diagnostics.append(.error("graph output '\(info.name)' is not computed by any node"))
                continue
            }
            switch value {
            case .tensor(let node, let dims):
                if case .input? = nodeIndex[node].map({ nodes[$0].op }) {
                    diagnostics.append(.error("graph output '\(info.name)' is the graph input itself; cnnc needs at least one operation"))
                    continue
                }
                let declared = info.type.tensorType.shape.dim
                if !declared.isEmpty {
                    let mismatch = declared.count != dims.count || zip(declared, dims).enumerated().contains { i, pair in
                        if case .dimValue(let v)? = pair.0.value, i > 0, v > 0 { return Int(v) != pair.1 }
                        return false
                    }
                    if mismatch {
                        let shown = declared.map { d -> String in
                            if case .dimValue(let v)? = d.value { return "\(v)" }
                            return d.dimParam.isEmpty ? "?" : d.dimParam
                        }
                        diagnostics.append(.error("graph output '\(info.name)' is declared [\(shown.joined(separator: ", "))] but computes \(dims)"))
                        continue
                    }
                }
                result.append(node)
            case .constant:
                diagnostics.append(.error("graph output '\(info.name)' is a constant; cnnc outputs only values computed from the inputs"))
            case .padded(_, _, _, _, let padNode):
                diagnostics.append(.error("graph output '\(info.name)' is computed by Pad '\(padNode)', which cnnc supports only before Conv or a pool"))
            case .failed:
                break
            }
        }
        return result
    }

    /// Drops nodes no output depends on (a Sigmoid whose Mul became swish, say), keeping inputs.
    private func removeUnused(_ graph: inout Graph) {
        var live = Set(graph.outputs)
        for node in graph.nodes.reversed() where live.contains(node.name) { live.formUnion(node.inputs) }
        graph.nodes.removeAll { node in
            if case .input = node.op { return false }
            return !live.contains(node.name)
        }
    }

    // MARK: - Helpers for handlers

    mutating func append(_ node: Node) {
        nodeIndex[node.name] = nodes.count
        nodes.append(node)
    }

    /// Appends a node reading `inputs`, infers its per-sample shape (a failure is a shape
    /// contradiction, reported with the node's name) and binds its ONNX output.
    @discardableResult
    mutating func emit(_ c: NodeContext, _ op: Op, inputs: [String], name: String? = nil,
                       output: Int = 0) throws -> String {
        let nodeName = name ?? names.allocate(c.proto.name, fallback: c.proto.output.first ?? c.opType.lowercased())
        let location = SourceLocation(file: file, line: c.index + 1, column: 1)
        var node = Node(name: nodeName, op: op, inputs: inputs, location: location)
        let shapes = inputs.map { nodes[nodeIndex[$0]!].shape }
        switch ShapeRules.output(of: node, inputs: shapes) {
        case .success(let s): node.shape = s
        case .failure(let e): throw ImportError(e.description)
        }
        append(node)
        if output < c.proto.output.count, !c.proto.output[output].isEmpty {
            values[c.proto.output[output]] = .tensor(node: nodeName, dims: [nominalBatch] + node.shape.dims)
        }
        return nodeName
    }

    /// The node name cnnc gives a layer with parameters: the owner of a PyTorch-style weight
    /// name (`conv1` for `conv1.weight`), else the node's name.
    mutating func layerName(_ c: NodeContext, weight: String?) -> String {
        if let w = weight, let owner = ONNXNames.owner(ofParameter: w), !ONNXNames.sanitize(owner).isEmpty {
            return names.allocate(owner, fallback: c.opType.lowercased())
        }
        return names.allocate(c.proto.name, fallback: c.proto.output.first ?? c.opType.lowercased())
    }

    mutating func setWeight(_ node: String, _ role: String, _ tensor: WeightTensor, from onnx: String?) {
        let name = "\(node).\(role)"
        weights[name] = tensor
        if let onnx { parameterNames.append((onnx, name)) }
    }

    func value(_ c: NodeContext, _ i: Int) throws -> ImportedValue? {
        guard let name = c.inputName(i) else { return nil }
        return values[name]
    }

    /// Input `i` as a tensor computed by the network: its node and ONNX dims.
    func tensor(_ c: NodeContext, _ i: Int) throws -> (node: String, dims: [Int]) {
        guard let v = try value(c, i) else { throw ImportError("input \(i) is missing") }
        switch v {
        case .tensor(let node, let dims): return (node, dims)
        case .constant:
            throw Unsupported("input '\(c.inputName(i)!)' is a constant; cnnc runs \(c.opType) only on values computed from the network inputs")
        case .padded(_, _, _, _, let padNode):
            throw Unsupported("reads Pad '\(padNode)'; cnnc merges Pad only into a following Conv, MaxPool or AveragePool")
        case .failed: throw ImportError("input \(i) failed")
        }
    }

    /// Input `i` as a constant, or nil when the optional input is absent.
    func constant(_ c: NodeContext, _ i: Int) throws -> ConstTensor? {
        guard let v = try value(c, i) else { return nil }
        guard case .constant(let t) = v else {
            throw Unsupported("input \(i) ('\(c.inputName(i)!)') must be a constant (an initializer or folded shape arithmetic)")
        }
        return t
    }

    func requireConstant(_ c: NodeContext, _ i: Int, _ what: String) throws -> ConstTensor {
        guard let t = try constant(c, i) else { throw ImportError("\(what) (input \(i)) is missing") }
        return t
    }

    /// Whether every input is a constant (so the node folds).
    func allConstant(_ c: NodeContext) -> Bool {
        c.proto.input.allSatisfy { name in
            if name.isEmpty { return true }
            if case .constant? = values[name] { return true }
            return false
        }
    }

    mutating func bind(_ c: NodeContext, _ output: Int, _ v: ImportedValue) {
        if output < c.proto.output.count, !c.proto.output[output].isEmpty { values[c.proto.output[output]] = v }
    }

    /// Refuses a node whose extra outputs (BatchNorm statistics, MaxPool indices, Dropout
    /// mask) are used.
    func requireUnused(_ c: NodeContext, outputsFrom first: Int) throws {
        // indices, not first..<count: a node may list fewer outputs than `first`
        for i in c.proto.output.indices where i >= first && !c.proto.output[i].isEmpty && (useCount[c.proto.output[i]] ?? 0) > 0 {
            throw Unsupported("output \(i) ('\(c.proto.output[i])') is used; cnnc computes only the first output")
        }
    }

    func node(named name: String) -> Node? { nodeIndex[name].map { nodes[$0] } }
}

/// A normalized axis in 0..<rank, or an error naming it.
func normalizeAxis(_ axis: Int, rank: Int) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < rank else { throw ImportError("axis \(axis) is out of range for rank \(rank)") }
    return a
}
