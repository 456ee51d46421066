// Where every value of an inference graph lives in the activation arena. Three kinds of
// sharing are decided here; the memory planner then places the buffers that remain.
//
//  - Views: flatten and dropout (at inference) are their input's floats.
//  - Concat in place: an input of a concat is written by its producer straight into its
//    channel slice of the concat's buffer. Concatenation is over the first per-sample
//    dimension, so sample b of input i starts at
//        buffer + b * (C * H * W) + (channels of inputs 0..<i) * H * W
//    and is contiguous within the sample: the producer writes it, and every reader reads it,
//    with the concat's per-sample size as the sample stride (`KernelContext.outStride`,
//    `inStride`). A concat that is itself an input of a concat is a slice of that one, so a
//    DenseNet block (cat_k = concat(cat_k-1, f_k)) is one buffer and copies nothing. An input
//    stays a buffer of its own, and the concat's kernel copies it, when it is a network input
//    or output, a view (or viewed by a network output), or when it fills more than one concat
//    slot (two concats, or twice in one); the reason is a comment in the concat's kernel.
//  - Scratch: a kernel that needs floats only while it runs (a strided implicit convolution's
//    phase planes) gets a buffer live at its own step alone.
//  - In place: an element-wise kernel (activation, prelu, add, batch norm, softmax,
//    log_softmax) may write over an input that is a whole buffer of the same size when it is
//    that buffer's last reader. The request carries the hint (`BufferRequest.inPlaceOf`); the
//    planner decides, and a kernel it merged is emitted without `restrict` on the pair.
//
// A buffer lives from the first write into it (its earliest slice's producer) to the last read
// of it, of any of its slices or of a view of them; a network output is read at the end.
// The naive size stays "one buffer per computed value" (slices and in-place results counted
// as their own buffers, views not at all), the same reference with or without the sharing;
// the lower bound is the planner's peak of live buffers as requested (a concat's buffer counted
// whole over its lifetime, its slices not again; an in-place pair once where it shares).
//
// `violations` checks the result value by value, independently of the planner: two values whose
// lifetimes overlap share no floats unless one is a slice of the other (a concat and its
// inputs written in place), or they are an in-place pair at the one step where the pair's user
// reads its input. A broken layout stops the compiler.

import CNNCIR

/// The activation arena of an inference graph: each value's place, what is written in place,
/// and the planner's numbers.
struct ArenaLayout {
    /// Sample b of a value starts at `offset + b * stride` floats from the arena's start.
    struct Place: Hashable {
        var offset: Int
        var stride: Int
    }

    /// What the checker knows of one computed value (views are their input's floats).
    struct Value {
        var name: String
        /// Floats per sample.
        var count: Int
        /// The step (node index) that writes it, and the last step that reads it directly or
        /// through a view (the end of the graph for a network output).
        var first: Int
        var last: Int
        /// The concat it is written into (nil when it is not a slice), and the value whose
        /// buffer holds it (the outermost such concat, or itself).
        var parent: String?
        var buffer: String
    }

    /// Why a concat input is not written in place.
    enum Refusal: Hashable {
        case networkInput, view, networkOutput, severalSlots(Int), disabled

        var text: String {
            switch self {
            case .disabled: return "concat in place is off"
            case .networkInput: return "a network input"
            case .view: return "a view of another value"
            case .networkOutput: return "a network output (or viewed by one)"
            case .severalSlots(let n): return "it fills \(n) concat inputs"
            }
        }
    }

    let maxBatch: Int
    /// Computed values (not inputs, not views) in graph order.
    private(set) var values: [Value] = []
    /// Every value in the arena, views included.
    var place: [String: Place] = [:]
    /// Network inputs (and views of them): the index of the caller's pointer.
    private(set) var inputIndex: [String: Int] = [:]
    /// Network outputs and their floats per sample: never slices.
    private var outputs: [(name: String, count: Int)] = []
    /// For each concat, per input: nil when written in place by its producer, else why not.
    private(set) var concatRefusals: [String: [Refusal?]] = [:]
    /// Element-wise nodes the planner put in place: the index of the input they overwrite.
    private(set) var inPlaceInput: [String: Int] = [:]
    /// The same nodes: the buffer (by value) whose floats they overwrite.
    private var inPlaceBuffer: [String: String] = [:]
    /// The buffers given to the planner (one per value that is neither a slice nor a view), by value.
    private(set) var requests: [BufferRequest] = []
    private(set) var bufferId: [String: Int] = [:]
    private(set) var plan = MemoryPlan(offsets: [:], arenaFloats: 0, naiveFloats: 0, lowerBoundFloats: 0)
    /// One buffer per computed value (see the file header).
    private(set) var naiveFloats = 0

    var arenaFloats: Int { plan.arenaFloats }
    var lowerBoundFloats: Int { plan.lowerBoundFloats }

    /// Lays out `graph` for batches up to `maxBatch`; `concatInPlace` and `inPlace` turn the
    /// two rewrites off (tests compare against the layout without them).
    init(_ graph: Graph, maxBatch: Int, concatInPlace: Bool = true, inPlace: Bool = true) {
        self.maxBatch = maxBatch
        let nodes = graph.nodes
        var step: [String: Int] = [:]
        for (i, node) in nodes.enumerated() { step[node.name] = i }

        // The computed value behind each value: itself, or what a view shows.
        var base: [String: String] = [:]
        for node in nodes {
            switch node.op {
            case .input:
                inputIndex[node.name] = inputIndex.count
                base[node.name] = node.name
            case .flatten, .dropout:
                base[node.name] = base[node.inputs[0]]
            case .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
                 .batchNorm, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
                base[node.name] = node.name
            }
        }
        // A view of a network input (flatten or dropout right after it) is the input's floats.
        for node in nodes where base[node.name] != node.name {
            if let i = inputIndex[base[node.name]!] { inputIndex[node.name] = i }
        }
        var last: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            last[node.name] = max(last[node.name] ?? i, i)
            for input in node.inputs { last[base[input]!] = max(last[base[input]!] ?? i, i) }
        }
        let outputBases = Set(graph.outputs.map { base[$0]! })
        outputs = graph.outputs.map { ($0, nodes[step[$0]!].shape.count) }
        for name in outputBases { last[name] = nodes.count }

        // Concat slots: which inputs their producers write in place, at which channel offset.
        var slots: [String: Int] = [:]
        for node in nodes {
            if case .concat = node.op { for input in node.inputs { slots[input, default: 0] += 1 } }
        }
        var parent: [String: (concat: String, offset: Int)] = [:]
        for node in nodes {
            guard case .concat = node.op else { continue }
            var refusals: [Refusal?] = []
            var offset = 0
            for input in node.inputs {
                let count = nodes[step[input]!].shape.count
                defer { offset += count }
                let refusal: Refusal?
                if inputIndex[input] != nil { refusal = .networkInput }
                else if base[input] != input { refusal = .view }
                else if outputBases.contains(input) { refusal = .networkOutput }
                else if slots[input]! > 1 { refusal = .severalSlots(slots[input]!) }
                else if !concatInPlace { refusal = .disabled }
                else { refusal = nil }
                refusals.append(refusal)
                if refusal == nil { parent[input] = (node.name, offset) }
            }
            concatRefusals[node.name] = refusals
        }

        // Each computed value's buffer and channel offset; a concat comes after its inputs, so
        // walking backwards finds the outermost concat first.
        var buffer: [String: String] = [:], channelOffset: [String: Int] = [:]
        for node in nodes.reversed() where base[node.name] == node.name && inputIndex[node.name] == nil {
            if let (concat, offset) = parent[node.name] {
                buffer[node.name] = buffer[concat]!
                channelOffset[node.name] = channelOffset[concat]! + offset
            } else {
                buffer[node.name] = node.name
                channelOffset[node.name] = 0
            }
        }
        for node in nodes where buffer[node.name] != nil {
            values.append(Value(name: node.name, count: node.shape.count, first: step[node.name]!,
                                last: last[node.name]!, parent: parent[node.name]?.concat, buffer: buffer[node.name]!))
            naiveFloats += MemoryPlanner.aligned(maxBatch * node.shape.count)
        }
        // Scratch: floats a kernel needs only while it runs, live at its own step.
        for (i, node) in nodes.enumerated() {
            let input = node.inputs.first.flatMap { step[$0] }.map { nodes[$0].shape }
            let floats = input.map { Self.scratchFloats(node.op, input: $0, output: node.shape, maxBatch: maxBatch) } ?? 0
            guard floats > 0 else { continue }
            let name = Self.scratchName(node.name)
            buffer[name] = name
            values.append(Value(name: name, count: floats, first: i, last: i, parent: nil, buffer: name))
            naiveFloats += MemoryPlanner.aligned(maxBatch * floats)
        }

        // One request per buffer, alive from its first slice's write to its last slice's read.
        var span: [String: (first: Int, last: Int)] = [:]
        for v in values {
            let b = buffer[v.name]!
            let s = span[b] ?? (v.first, v.last)
            span[b] = (min(s.first, v.first), max(s.last, v.last))
        }
        for v in values where buffer[v.name] == v.name {
            bufferId[v.name] = requests.count
            requests.append(BufferRequest(id: requests.count, size: maxBatch * v.count,
                                          first: span[v.name]!.first, last: span[v.name]!.last))
        }

        // In-place hints: the first input that is a whole buffer of the same size whose last
        // reader is this node, and no other input of which lives in that buffer.
        var hinted: [String: (input: Int, buffer: String)] = [:]
        for (i, node) in nodes.enumerated() where inPlace && Self.canRunInPlace(node.op) && bufferId[node.name] != nil {
            for (j, input) in node.inputs.enumerated() {
                let b = base[input]!
                guard let id = bufferId[b], buffer[b] == b else { continue }
                guard requests[id].size == requests[bufferId[node.name]!].size, requests[id].last == i else { continue }
                guard node.inputs.indices.allSatisfy({ $0 == j || buffer[base[node.inputs[$0]]!] != b }) else { continue }
                requests[bufferId[node.name]!].inPlaceOf = id
                hinted[node.name] = (j, b)
                break
            }
        }

        plan = MemoryPlanner.plan(requests, options: MemoryPlanner.Options(inPlace: inPlace))
        for (name, hint) in hinted where plan.inPlace[bufferId[name]!] != nil {
            inPlaceInput[name] = hint.input
            inPlaceBuffer[name] = hint.buffer
        }
        let bufferCount = Dictionary(values.filter { buffer[$0.name] == $0.name }.map { ($0.name, $0.count) },
                                     uniquingKeysWith: { first, _ in first })
        for v in values {
            let b = buffer[v.name]!
            place[v.name] = Place(offset: plan.offsets[bufferId[b]!]! + (channelOffset[v.name] ?? 0), stride: bufferCount[b]!)
        }
        for node in nodes where place[node.name] == nil && inputIndex[node.name] == nil {
            place[node.name] = place[base[node.name]!]
        }

        let problems = violations()
        guard problems.isEmpty else { fatalError("arena layout bug: \(problems.prefix(5).joined(separator: "; "))") }
    }

    /// Floats per sample of the scratch a node's kernel needs while it runs (0: none): a
    /// strided implicit convolution's phase planes of its input (`cnnc_conv_phase_split`);
    /// F(4x4)'s workspaces (`WinogradKernel.workspaceFloats`, not per sample: their total
    /// over `maxBatch`, rounded up, so the arena holds at least the total).
    static func scratchFloats(_ op: Op, input x: Shape, output y: Shape, maxBatch: Int) -> Int {
        guard case .conv(let a) = op, x.rank == 3 else { return 0 }
        switch a.algorithm {
        case .implicit:
            return a.implicitPhaseFloats(channels: x.c, height: x.h, width: x.w)
        case .winograd4x4:
            let total = WinogradKernel.workspaceFloats(channels: x.c, filters: y.c, output: y, maxBatch: maxBatch)
            return (total + maxBatch - 1) / maxBatch
        case .auto, .gemm, .direct, .depthwise, .winograd2x2:
            return 0
        }
    }

    /// The name of a node's scratch in `place` (no node name contains a space).
    static func scratchName(_ node: String) -> String { "scratch of \(node)" }

    /// The scratch of a node, if it has one.
    func scratch(of node: String) -> Place? { place[Self.scratchName(node)] }

    /// Ops whose kernel may overwrite its input: each output element depends only on the
    /// input elements at the same index (softmax: the same position, read before written).
    static func canRunInPlace(_ op: Op) -> Bool {
        switch op {
        case .activation, .prelu, .add, .binary, .batchNorm, .softmax, .logSoftmax: return true
        case .input, .conv, .dense, .dropout, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .flatten, .concat,
             .shuffle, .slice, .pad, .upsample, .convTranspose:
            return false
        }
    }

    /// Concat inputs written in place, and all concat inputs.
    var concatInputsInPlace: (inPlace: Int, total: Int) {
        let all = concatRefusals.values.flatMap { $0 }
        return (all.filter { $0 == nil }.count, all.count)
    }

    /// Concats that still run a copy kernel (some input is not written in place).
    var copyingConcats: [String] {
        concatRefusals.filter { $0.value.contains { $0 != nil } }.keys.sorted()
    }

    /// The invariant, checked value by value (see the file header); empty when it holds.
    func violations() -> [String] {
        var problems: [String] = []
        let byName = Dictionary(uniqueKeysWithValues: values.map { ($0.name, $0) })
        func isSlice(_ a: String, of b: String) -> Bool {
            var p = byName[a]?.parent
            while let q = p {
                if q == b { return true }
                p = byName[q]?.parent
            }
            return false
        }
        // The user overwrites the buffer holding the input, at the step the input is last read,
        // and the two are the same floats (one offset, one stride).
        func inPlacePair(user: Value, input: Value) -> Bool {
            guard let overwritten = inPlaceBuffer[user.name], overwritten == input.buffer, user.first == input.last,
                  let u = place[user.name], let o = place[overwritten] else { return false }
            return u == o
        }
        for v in values {
            guard let p = place[v.name] else { problems.append("value \(v.name) has no place"); continue }
            if p.offset < 0 || p.offset + (maxBatch - 1) * p.stride + v.count > plan.arenaFloats {
                problems.append("value \(v.name) (floats \(p.offset), stride \(p.stride), \(v.count) per sample) is outside the arena of \(plan.arenaFloats)")
            }
            if p.stride < v.count { problems.append("value \(v.name) has stride \(p.stride) below its \(v.count) floats per sample") }
        }
        for (name, count) in outputs {
            if let p = place[name], p.stride != count { problems.append("network output \(name) is a slice (stride \(p.stride))") }
        }
        let sorted = values.sorted { ($0.first, $0.name) < ($1.first, $1.name) }
        for (k, a) in sorted.enumerated() {
            guard let pa = place[a.name] else { continue }
            for b in sorted[(k + 1)...] {
                if b.first > a.last { break }
                guard let pb = place[b.name], a.count > 0, b.count > 0 else { continue }
                if isSlice(a.name, of: b.name) || isSlice(b.name, of: a.name) { continue }
                if Self.overlap(pa, a.count, pb, b.count, batch: maxBatch) {
                    // b starts no earlier than a: only b can be a's in-place user.
                    if inPlacePair(user: b, input: a) { continue }
                    problems.append("""
                        values \(a.name) (steps \(a.first)...\(a.last), floats \(pa.offset) stride \(pa.stride)) and \
                        \(b.name) (steps \(b.first)...\(b.last), floats \(pb.offset) stride \(pb.stride)) are live together and share floats
                        """)
                }
            }
        }
        return problems
    }

    /// Whether two strided values (`count` floats per sample, `maxBatch` samples) share a float.
    static func overlap(_ a: Place, _ aCount: Int, _ b: Place, _ bCount: Int, batch: Int) -> Bool {
        let aEnd = a.offset + (batch - 1) * a.stride + aCount, bEnd = b.offset + (batch - 1) * b.stride + bCount
        guard a.offset < bEnd && b.offset < aEnd else { return false }
        // Same stride (two slices of one buffer, or equal-size buffers): compare within a sample period.
        if a.stride == b.stride {
            for i in -(batch - 1)...(batch - 1) {
                let shift = b.offset - a.offset + i * a.stride
                if shift < aCount && -shift < bCount { return true }
            }
            return false
        }
        // Otherwise sample by sample (rare: different buffers whose extents meet).
        for s in 0..<batch {
            let lo = a.offset + s * a.stride, hi = lo + aCount
            for t in 0..<batch {
                let lo2 = b.offset + t * b.stride
                if lo < lo2 + bCount && lo2 < hi { return true }
            }
        }
        return false
    }
}
