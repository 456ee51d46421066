// Tests of the arena layout on its invariant and its decisions: concat inputs written into
// their slices (a dense block is one buffer, inception branches write their slices), the cases
// where they must not be (and the kernel copies them), element-wise kernels in place only where
// legal and then without `restrict`, the value-by-value checker on broken layouts, and a seeded
// sweep of random graphs with concats and element-wise ops at several batch sizes.

@testable import CNNCBackendC
import CNNCIR
import XCTest

final class ArenaLayoutTests: XCTestCase {
    // MARK: concat in place

    /// A two-layer dense block: cat2 = concat(concat(c0, f1), f2), each f reading the previous
    /// concat through batch norm and relu.
    let denseBlockIR = """
    network block
    x = input() shape=3x6x6 : 3x6x6
    c0 = conv(x) filters=4 size=3 stride=1 pad=1 dilation=1 groups=1 bias=false : 4x6x6
    n1 = batchnorm(c0) eps=1e-05 momentum=0.1 : 4x6x6
    r1 = relu(n1) : 4x6x6
    f1 = conv(r1) filters=2 size=3 stride=1 pad=1 dilation=1 groups=1 bias=false : 2x6x6
    cat1 = concat(c0, f1) : 6x6x6
    n2 = batchnorm(cat1) eps=1e-05 momentum=0.1 : 6x6x6
    r2 = relu(n2) : 6x6x6
    f2 = conv(r2) filters=2 size=3 stride=1 pad=1 dilation=1 groups=1 bias=false : 2x6x6
    cat2 = concat(cat1, f2) : 8x6x6
    pool = global_avgpool(cat2) : 8x1x1
    fc = dense(pool) units=3 bias=true : 3
    outputs fc
    """

    func testDenseBlockIsOneBufferAndCopiesNothing() throws {
        let g = try graph(denseBlockIR)
        for batch in [1, 3] {
            let layout = ArenaLayout(g, maxBatch: batch)
            XCTAssertEqual(layout.violations(), [])
            XCTAssertEqual(layout.concatRefusals["cat1"], [nil, nil])
            XCTAssertEqual(layout.concatRefusals["cat2"], [nil, nil])
            XCTAssertEqual(layout.copyingConcats, [])
            // Every member lives in cat2's buffer with cat2's per-sample size as its stride.
            let base = layout.place["cat2"]!
            XCTAssertEqual(base.stride, 8 * 36)
            XCTAssertEqual(layout.place["cat1"], base)
            XCTAssertEqual(layout.place["c0"], base)
            XCTAssertEqual(layout.place["f1"], ArenaLayout.Place(offset: base.offset + 4 * 36, stride: 8 * 36))
            XCTAssertEqual(layout.place["f2"], ArenaLayout.Place(offset: base.offset + 6 * 36, stride: 8 * 36))
            // One request for the whole block, alive from c0's write to the pool's read.
            let request = layout.requests[layout.bufferId["cat2"]!]
            XCTAssertEqual(request.first, 1)
            XCTAssertEqual(request.last, 10)
            XCTAssertNil(layout.bufferId["c0"])
        }
        let c = emit(g, batch: 3).source
        XCTAssertFalse(c.contains("static void node_cat1("))
        XCTAssertFalse(c.contains("static void node_cat2("))
        XCTAssertTrue(c.contains("/* concat 'cat2': every input was written into its slice by its producer */"))
        XCTAssertEqual(c.components(separatedBy: "memcpy(").count - 1, 1, "only the output is copied")
        // The producer of a slice writes, and the reader of a slice reads, with the larger stride.
        let c0 = c.components(separatedBy: "static void node_c0(").dropFirst().first?.components(separatedBy: "\n}\n").first ?? ""
        XCTAssertTrue(c0.contains("out + (size_t)k0 * PQ, 288, 0);"), "c0 writes into cat2's buffer:\n\(c0)")
        XCTAssertTrue(c.contains("enum { C = 6, INNER = 36 };\n    enum { IS = 288, OS = 216 };"), "n2 reads cat1 inside cat2's buffer")
    }

    func testInceptionBranchesWriteTheirSlices() throws {
        let g = try graph("""
        network incep
        x = input() shape=4x5x5 : 4x5x5
        stem = conv(x) filters=4 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true act=relu : 4x5x5
        b1 = conv(stem) filters=3 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true act=relu : 3x5x5
        b2r = conv(stem) filters=2 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true act=relu : 2x5x5
        b2 = conv(b2r) filters=5 size=3 stride=1 pad=1 dilation=1 groups=1 bias=true act=relu : 5x5x5
        p = maxpool(stem) size=3 stride=1 pad=1 ceil_mode=false : 4x5x5
        b3 = conv(p) filters=2 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true act=relu : 2x5x5
        out = concat(b1, b2, b3) : 10x5x5
        y = softmax(out) : 10x5x5
        outputs y
        """)
        let layout = ArenaLayout(g, maxBatch: 2)
        XCTAssertEqual(layout.violations(), [])
        XCTAssertEqual(layout.concatRefusals["out"], [nil, nil, nil])
        let base = layout.place["out"]!.offset
        XCTAssertEqual(layout.place["b1"]?.offset, base)
        XCTAssertEqual(layout.place["b2"]?.offset, base + 3 * 25)
        XCTAssertEqual(layout.place["b3"]?.offset, base + 8 * 25)
        XCTAssertEqual(Set(["b1", "b2", "b3"].map { layout.place[$0]!.stride }), [250])
        // The reduce conv and the pool are buffers of their own, never inside the concat's.
        XCTAssertNotNil(layout.bufferId["b2r"])
        XCTAssertNotNil(layout.bufferId["p"])
        // softmax is the concat's last reader: in place, without restrict on the pair.
        XCTAssertEqual(layout.inPlaceInput["y"], 0)
        let c = emit(g, batch: 2).source
        XCTAssertTrue(c.contains("static void node_y(float *out, const float *in, int n)"))
    }

    /// Each case names the concat input that must be copied and why.
    func testConcatInputsThatMustBeCopied() throws {
        let header = """
        network refuse
        x = input() shape=2x4x4 : 2x4x4
        a = conv(x) filters=2 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true : 2x4x4
        b = conv(x) filters=3 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true : 3x4x4
        """
        let cases: [(body: String, concat: String, expected: [ArenaLayout.Refusal?])] = [
            // The same value in two concats: neither gets it; the other inputs still go in place.
            ("""
             c1 = concat(a, b) : 5x4x4
             d = conv(x) filters=1 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true : 1x4x4
             c2 = concat(d, a) : 3x4x4
             s1 = global_avgpool(c1) : 5x1x1
             s2 = global_avgpool(c2) : 3x1x1
             c3 = concat(s1, s2) : 8x1x1
             outputs c3
             """, "c2", [nil, .severalSlots(2)]),
            // Twice in one concat.
            ("""
             c1 = concat(a, b, a) : 7x4x4
             outputs c1
             """, "c1", [.severalSlots(2), nil, .severalSlots(2)]),
            // A network input.
            ("""
             c1 = concat(x, b) : 5x4x4
             outputs c1
             """, "c1", [.networkInput, nil]),
            // A network output must stay dense.
            ("""
             c1 = concat(a, b) : 5x4x4
             outputs c1, b
             """, "c1", [nil, .networkOutput]),
            // A view of an output.
            ("""
             fa = flatten(a) : 32
             fb = flatten(b) : 48
             c1 = concat(fa, fb) : 80
             outputs c1, fb
             """, "c1", [.view, .view]),
        ]
        for (k, c) in cases.enumerated() {
            let g = try graph(header + "\n" + c.body)
            for batch in [1, 3] {
                let layout = ArenaLayout(g, maxBatch: batch)
                XCTAssertEqual(layout.violations(), [], "case \(k)")
                XCTAssertEqual(layout.concatRefusals[c.concat], c.expected, "case \(k)")
                XCTAssertEqual(layout.copyingConcats.contains(c.concat), true, "case \(k)")
                for (i, refusal) in c.expected.enumerated() where refusal == nil {
                    XCTAssertNil(layout.bufferId[g.node(named: c.concat)!.inputs[i]], "case \(k): input \(i) is a slice")
                }
                for name in g.outputs { XCTAssertEqual(layout.place[name]?.stride, g.node(named: name)!.shape.count) }
            }
            let source = emit(g, batch: 2).source
            XCTAssertTrue(source.contains("static void node_\(c.concat)("), "case \(k)")
            for refusal in c.expected.compactMap({ $0 }) {
                XCTAssertTrue(source.contains("is copied: \(refusal.text) */"), "case \(k): \(refusal.text)")
            }
        }
    }

    func testConcatInPlaceCanBeTurnedOff() throws {
        let g = try graph(denseBlockIR)
        let off = ArenaLayout(g, maxBatch: 2, concatInPlace: false, inPlace: false)
        let on = ArenaLayout(g, maxBatch: 2)
        XCTAssertEqual(off.violations(), [])
        XCTAssertEqual(off.copyingConcats, ["cat1", "cat2"])
        XCTAssertEqual(off.inPlaceInput, [:])
        XCTAssertEqual(on.naiveFloats, off.naiveFloats, "the naive size does not depend on the sharing")
        XCTAssertLessThan(on.arenaFloats, off.arenaFloats)
    }

    // MARK: in place

    func testElementwiseInPlaceOnlyWhereLegal() throws {
        let g = try graph("""
        network ew
        x = input() shape=2x3x3 : 2x3x3
        r0 = relu(x) : 2x3x3
        c1 = conv(r0) filters=2 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true : 2x3x3
        n1 = batchnorm(c1) eps=1e-05 momentum=0.1 : 2x3x3
        r1 = relu(n1) : 2x3x3
        c2 = conv(r1) filters=2 size=1 stride=1 pad=0 dilation=1 groups=1 bias=true : 2x3x3
        sum = add(c2, r1) : 2x3x3
        t = tanh(sum) : 2x3x3
        flat = flatten(t) : 18
        p = prelu(flat) shared=true : 18
        outputs p, t
        """)
        let layout = ArenaLayout(g, maxBatch: 2)
        XCTAssertEqual(layout.violations(), [])
        XCTAssertNil(layout.inPlaceInput["r0"], "a network input is not overwritten")
        XCTAssertEqual(layout.inPlaceInput["n1"], 0, "batch norm over the conv, its only reader")
        XCTAssertEqual(layout.inPlaceInput["r1"], 0)
        XCTAssertEqual(layout.inPlaceInput["sum"], 0, "add into its first input whose last reader it is")
        XCTAssertEqual(layout.inPlaceInput["t"], 0, "a network output may overwrite its input")
        XCTAssertNil(layout.inPlaceInput["p"], "t is a network output (through the view)")
        let c = emit(g, batch: 2).source
        XCTAssertTrue(c.contains("static void node_r1(float *out, const float *in, int n)"))
        XCTAssertTrue(c.contains("static void node_sum(float *out, const float *in0, const float *restrict in1, int n)"))
        XCTAssertTrue(c.contains("static void node_r0(float *restrict out, const float *restrict in, int n)"))
        XCTAssertTrue(c.contains("static void node_p(float *restrict out, const float *restrict in, const float *restrict weight, int n)"))
        XCTAssertTrue(c.contains("const float *xc = in + (size_t)b * IS"), "batch norm in place: no restrict inside either")
    }

    func testInPlaceCanBeTurnedOff() throws {
        let g = try graph(denseBlockIR)
        let off = ArenaLayout(g, maxBatch: 2, inPlace: false)
        XCTAssertEqual(off.inPlaceInput, [:])
        XCTAssertEqual(off.violations(), [])
        // n1 may not overwrite c0: c0 lives on as a slice of the block's buffer.
        XCTAssertEqual(ArenaLayout(g, maxBatch: 2).inPlaceInput.keys.sorted(), ["r1", "r2"])
    }

    // MARK: the checker

    func testCheckerFindsBrokenLayouts() throws {
        let g = try graph(denseBlockIR)
        let good = ArenaLayout(g, maxBatch: 2)
        XCTAssertEqual(good.violations(), [])

        // f2 written over f1's slice: f1 is dead by then, but cat1 (which holds it) is not.
        var overlap = good
        overlap.place["f2"] = good.place["f1"]
        XCTAssertEqual(overlap.violations().count, 1)
        XCTAssertTrue(overlap.violations().contains { $0.hasPrefix("values cat1 ") && $0.contains("f2") && $0.contains("share floats") },
                      "\(overlap.violations())")

        // r2 moved onto the block's buffer, which is live until the pool.
        var onBlock = good
        onBlock.place["r2"] = ArenaLayout.Place(offset: good.place["cat2"]!.offset, stride: 216)
        XCTAssertFalse(onBlock.violations().isEmpty)

        // A slice shifted by one sample's worth of its own size lands on the next sample's other slice.
        var dense = good
        dense.place["f2"] = ArenaLayout.Place(offset: good.place["f2"]!.offset, stride: 72)
        XCTAssertFalse(dense.violations().isEmpty)

        // Past the end of the arena.
        var outside = good
        outside.place["fc"] = ArenaLayout.Place(offset: good.arenaFloats, stride: 3)
        XCTAssertTrue(outside.violations().contains { $0.contains("outside the arena") })
    }

    func testOverlapOfStridedValues() {
        typealias P = ArenaLayout.Place
        // Two slices of one buffer (stride 10): [0,4) and [4,10) per sample never meet.
        XCTAssertFalse(ArenaLayout.overlap(P(offset: 0, stride: 10), 4, P(offset: 4, stride: 10), 6, batch: 5))
        XCTAssertTrue(ArenaLayout.overlap(P(offset: 0, stride: 10), 5, P(offset: 4, stride: 10), 6, batch: 5))
        // A dense value of 6 per sample against the second slice: sample 1 of it is 6..<12.
        XCTAssertTrue(ArenaLayout.overlap(P(offset: 0, stride: 4), 4, P(offset: 4, stride: 10), 6, batch: 2))
        XCTAssertFalse(ArenaLayout.overlap(P(offset: 0, stride: 4), 4, P(offset: 4, stride: 10), 6, batch: 1))
        // Disjoint extents.
        XCTAssertFalse(ArenaLayout.overlap(P(offset: 0, stride: 8), 8, P(offset: 32, stride: 8), 8, batch: 4))
        XCTAssertTrue(ArenaLayout.overlap(P(offset: 0, stride: 8), 8, P(offset: 31, stride: 8), 8, batch: 4))
    }

    // MARK: random graphs

    /// Random graphs over one spatial size: 1x1 convs, relus, batch norms, adds and concats of
    /// random earlier values, several outputs. The layout's own check runs (and would stop the
    /// process on a broken layout); this also checks the decisions' preconditions directly.
    func testRandomGraphsKeepTheInvariant() throws {
        var concatsInPlace = 0, inPlace = 0
        for k in 0..<150 {
            let seed = UInt64(0xA4E_0000 + k)
            var rng = PlannerTestRandom(seed: seed)
            let g = randomGraph(&rng)
            for batch in [1, 2, 5] {
                let layout = ArenaLayout(g, maxBatch: batch)
                XCTAssertEqual(layout.violations(), [], "seed \(seed)")
                let plain = ArenaLayout(g, maxBatch: batch, concatInPlace: false, inPlace: false)
                XCTAssertEqual(layout.naiveFloats, plain.naiveFloats, "seed \(seed)")
                XCTAssertGreaterThanOrEqual(layout.arenaFloats, layout.lowerBoundFloats, "seed \(seed)")
                let outputs = Set(g.outputs)
                for node in g.nodes {
                    guard case .concat = node.op, let refusals = layout.concatRefusals[node.name] else { continue }
                    for (i, input) in node.inputs.enumerated() where refusals[i] == nil {
                        XCTAssertFalse(outputs.contains(input), "seed \(seed): output \(input) is a slice")
                        XCTAssertEqual(g.nodes.filter { $0.inputs.contains(input) && $0.op == .concat }.count, 1, "seed \(seed)")
                        concatsInPlace += 1
                    }
                }
                for (name, j) in layout.inPlaceInput {
                    let node = g.node(named: name)!
                    XCTAssertFalse(outputs.contains(node.inputs[j]), "seed \(seed): \(name) overwrites an output")
                    XCTAssertNil(layout.inputIndex[node.inputs[j]], "seed \(seed): \(name) overwrites a network input")
                    inPlace += 1
                }
            }
        }
        XCTAssertGreaterThan(concatsInPlace, 0)
        XCTAssertGreaterThan(inPlace, 0)
    }

    // MARK: helpers

    private func graph(_ ir: String) throws -> Graph {
        var g = try Graph.parseIR(ir).get()
        XCTAssertEqual(g.inferShapes(), [])
        XCTAssertEqual(g.verify(), [])
        return g
    }

    private func emit(_ g: Graph, batch: Int) -> CModel {
        CEmitter.emit(g, options: COptions(prefix: "t", maxBatch: batch, headerName: "t.h", sourceName: "t.net"))
    }

    private func randomGraph(_ rng: inout PlannerTestRandom) -> Graph {
        var lines = ["network random", "x = input() shape=2x3x3 : 2x3x3"]
        var values: [(name: String, channels: Int)] = [("x", 2)]
        let count = 4 + Int(rng.next() % 14)
        for i in 0..<count {
            let name = "v\(i)"
            let pick = { (r: inout PlannerTestRandom) in values[values.count - 1 - Int(r.next() % UInt64(min(values.count, 4)))] }
            let input = pick(&rng)
            switch rng.next() % 6 {
            case 0, 1:
                let k = 1 + Int(rng.next() % 4)
                lines.append("\(name) = conv(\(input.name)) filters=\(k) size=1 stride=1 pad=0 dilation=1 groups=1 bias=true : \(k)x3x3")
                values.append((name, k))
            case 2:
                lines.append("\(name) = relu(\(input.name)) : \(input.channels)x3x3")
                values.append((name, input.channels))
            case 3:
                lines.append("\(name) = batchnorm(\(input.name)) eps=1e-05 momentum=0.1 : \(input.channels)x3x3")
                values.append((name, input.channels))
            case 4:
                let other = values.last { $0.channels == input.channels && $0.name != input.name } ?? input
                lines.append("\(name) = add(\(input.name), \(other.name)) : \(input.channels)x3x3")
                values.append((name, input.channels))
            default:
                let parts = (0..<(2 + Int(rng.next() % 2))).map { _ in pick(&rng) }
                let channels = parts.reduce(0) { $0 + $1.channels }
                lines.append("\(name) = concat(\(parts.map(\.name).joined(separator: ", "))) : \(channels)x3x3")
                values.append((name, channels))
            }
        }
        var outputs = [values.last!.name]
        if rng.next() % 3 == 0, let extra = values.dropLast().last(where: { $0.name != "x" }) { outputs.append(extra.name) }
        lines.append("outputs \(outputs.joined(separator: ", "))")
        var g = try! Graph.parseIR(lines.joined(separator: "\n")).get()
        XCTAssertEqual(g.inferShapes(), [], lines.joined(separator: "\n"))
        return g
    }
}
