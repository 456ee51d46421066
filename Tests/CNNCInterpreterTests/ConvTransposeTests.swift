// conv_transpose against its definition as the adjoint of conv: for a conv with weight W
// (`[C, K/G, R, S]`, reading K channels and writing C), conv_transpose with the same W, stride,
// padding, dilation and groups maps a C-channel x to W^T x, which is the conv's input gradient
// for the output weights x. The conv's backward is written independently of conv_transpose's
// scatter, so agreement over a seeded sweep of geometries checks both. Printed seed on failure.

import CNNCIR
import CNNCInterpreter
import XCTest

final class ConvTransposeTests: XCTestCase {
    func testEqualsTheInputGradientOfConvOverASeededSweep() throws {
        let seed: UInt64 = 2026
        var counter = 0
        func pick(_ range: ClosedRange<Int>) -> Int {
            counter += 1
            let u = SeededInit.uniform(seed: seed, name: "sweep", index: counter)
            return range.lowerBound + min(Int(u * Double(range.count)), range.count - 1)
        }
        var checked = 0
        for trial in 0..<60 {
            let groups = pick(1...3)
            let c = groups * pick(1...2), kg = pick(1...3)
            let kernel = Pair(pick(1...4), pick(1...4)), stride = Pair(pick(1...3), pick(1...3))
            let dilation = Pair(pick(1...2), pick(1...2))
            let padding = Padding(top: pick(0...2), left: pick(0...2), bottom: pick(0...2), right: pick(0...2))
            let outputPadding = Pair(pick(0...(stride.h - 1)), pick(0...(stride.w - 1)))
            let h = pick(2...5), w = pick(2...5)
            let a = ConvTransposeAttributes(filters: groups * kg, kernel: kernel, stride: stride, padding: padding,
                                            outputPadding: outputPadding, dilation: dilation, groups: groups, bias: false)
            let label = "seed \(seed) trial \(trial): \(a) on \(c)x\(h)x\(w)"
            let transposed = Graph(name: "t", nodes: [Node(name: "x", op: .input(Shape([c, h, w])), inputs: []),
                                                      Node(name: "y", op: .convTranspose(a), inputs: ["x"])],
                                   outputs: ["y"])
            var t = transposed
            guard t.inferShapes().isEmpty, let out = t.node(named: "y")?.shape else { continue }  // no output: skip
            // The conv reading the transposed conv's output back to x's size.
            let conv = ConvAttributes(filters: c, kernel: kernel, stride: stride, padding: padding, dilation: dilation,
                                      groups: groups, bias: false)
            var g = Graph(name: "c", nodes: [Node(name: "z", op: .input(out), inputs: []),
                                             Node(name: "y", op: .conv(conv), inputs: ["z"])], outputs: ["y"])
            guard g.inferShapes().isEmpty, g.node(named: "y")?.shape == Shape([c, h, w]) else {
                XCTFail("\(label): the conv of \(out) does not give back \(c)x\(h)x\(w)"); continue
            }
            let weight = SeededData.input(name: "w\(trial)", shape: [c, kg, kernel.h, kernel.w], seed: seed)
            let x = SeededData.input(name: "x\(trial)", shape: [2, c, h, w], seed: seed)
            let forward = try Interpreter(graph: t, parameters: ["y.weight": weight]).run(["x": x])["y"]!
            let adjoint = try Interpreter(graph: g, parameters: ["y.weight": weight]).inputGradient(
                inputs: ["z": Tensor(zeros: [2] + out.dims)], output: "y", outputWeights: x)["z"]!
            XCTAssertEqual(forward.shape, adjoint.shape, label)
            let worst = zip(forward.data, adjoint.data).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-12, label)
            checked += 1
        }
        print("conv_transpose = conv input gradient: \(checked) of 60 seeded geometries with an output, seed \(seed)")
        XCTAssertGreaterThan(checked, 30, "most geometries have an output")
    }
}
