// The graph as a pass rewrites it: the nodes in order (a removed node leaves an empty slot),
// an index by name and each value's readers, all kept up to date by every edit. A pass reads
// each node through the editor when it reaches it, never from a copy taken before its loop:
// an earlier rewrite may have renamed that node's inputs (a fused add, a removed dropout or
// batch norm) or removed the node. Every lookup and edit costs O(1) plus the degree of the
// nodes it touches, so a pass over a graph of n nodes and e edges costs O(n + e) in all,
// however many rewrites it makes.

import CNNCIR

/// A graph under rewriting, with its name index and use lists kept true by every edit.
struct GraphEditor {
    /// The nodes in graph order; nil where a node was removed or moved away.
    private var slots: [Node?]
    /// Slot of each present node.
    private var slotByName: [String: Int] = [:]
    /// For each value, the nodes that read it and how many of their operands do.
    private var readers: [String: [String: Int]] = [:]
    /// The graph outputs, and how often each value is one.
    private var outputs: [String]
    private var outputCount: [String: Int] = [:]

    init(_ graph: Graph) {
        slots = graph.nodes
        outputs = graph.outputs
        for (i, node) in graph.nodes.enumerated() where slotByName[node.name] == nil {
            slotByName[node.name] = i
            for input in node.inputs { readers[input, default: [:]][node.name, default: 0] += 1 }
        }
        for output in graph.outputs { outputCount[output, default: 0] += 1 }
    }

    /// Writes the edited nodes (in slot order) and outputs back into `graph`.
    func apply(to graph: inout Graph) {
        graph.nodes = slots.compactMap { $0 }
        graph.outputs = outputs
    }

    // MARK: - Reading

    /// The slots, in graph order; a rewrite never adds slots.
    var indices: Range<Int> { slots.indices }

    /// The node now in slot `i`, or nil when it was removed.
    subscript(slot: Int) -> Node? { slots[slot] }

    func node(named name: String) -> Node? { slotByName[name].flatMap { slots[$0] } }

    func slot(of name: String) -> Int? { slotByName[name] }

    /// The nodes that read `name`, in graph order, each once.
    func users(of name: String) -> [String] {
        guard let r = readers[name] else { return [] }
        return r.keys.sorted { (slotByName[$0] ?? Int.max, $0) < (slotByName[$1] ?? Int.max, $1) }
    }

    /// Whether `user` is the one node that reads `name`.
    func isOnlyUser(_ user: String, of name: String) -> Bool {
        guard let r = readers[name], r.count == 1 else { return false }
        return r[user] != nil
    }

    func isOutput(_ name: String) -> Bool { outputCount[name] != nil }

    // MARK: - Editing

    /// Replaces the node of the same name in its slot; its use lists follow its new inputs.
    mutating func update(_ node: Node) {
        guard let i = slotByName[node.name], let old = slots[i] else {
            preconditionFailure("compiler bug: GraphEditor.update of '\(node.name)', which is not in the graph")
        }
        if old.inputs != node.inputs {
            unlink(old)
            link(node)
        }
        slots[i] = node
    }

    /// Makes every reader of `old` (nodes and graph outputs) read `new` instead.
    mutating func replaceUses(of old: String, with new: String) {
        guard old != new else { return }
        if let users = readers.removeValue(forKey: old) {
            for (user, count) in users {
                guard let i = slotByName[user], var node = slots[i] else { continue }
                node.inputs = node.inputs.map { $0 == old ? new : $0 }
                slots[i] = node
                readers[new, default: [:]][user, default: 0] += count
            }
        }
        if let count = outputCount.removeValue(forKey: old) {
            outputs = outputs.map { $0 == old ? new : $0 }
            outputCount[new, default: 0] += count
        }
    }

    /// Removes a node; its own readers (if any remain) are the caller's to redirect first.
    mutating func remove(_ name: String) {
        guard let i = slotByName.removeValue(forKey: name), let node = slots[i] else { return }
        unlink(node)
        slots[i] = nil
    }

    /// Moves a node into the empty slot `target` (a later one: the node then runs after
    /// everything before that slot).
    mutating func move(_ name: String, to target: Int) {
        guard let i = slotByName[name], let node = slots[i], slots[target] == nil else {
            preconditionFailure("compiler bug: GraphEditor.move of '\(name)' to an occupied slot")
        }
        slots[i] = nil
        slots[target] = node
        slotByName[name] = target
    }

    private mutating func link(_ node: Node) {
        for input in node.inputs { readers[input, default: [:]][node.name, default: 0] += 1 }
    }

    private mutating func unlink(_ node: Node) {
        for input in node.inputs {
            readers[input]?[node.name]? -= 1
            if readers[input]?[node.name] == 0 { readers[input]?[node.name] = nil }
            if readers[input]?.isEmpty == true { readers[input] = nil }
        }
    }
}
