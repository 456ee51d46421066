// What torchvision's models need beyond the fixtures: ReduceMean/ReduceMax over the spatial
// axes (`x.mean([2, 3])`), and an error that lists every unsupported node (those after the
// first included). The models are written here with ONNXBuilder.

import CNNCDriver
@testable import CNNCFrontend

import CNNCIR
import CNNCInterpreter
import Foundation
import XCTest

final class ONNXRealWorldTests: XCTestCase {
    func model(_ b: ONNXBuilder, file: StaticString = #filePath, line: UInt = #line) throws -> ONNXModel {
        switch try b.load() {
        case .success(let m): return m
        case .failure(let list):
            XCTFail("\(list)", file: file, line: line)
            throw list
        }
    }

    func error(_ b: ONNXBuilder) throws -> String {
        switch try b.load() {
        case .success: return "no error"
        case .failure(let list): return list.description
        }
    }

    // MARK: - ReduceMean, ReduceMax

    func testSpatialReductionsAreGlobalPools() throws {
        for opset in [13, 18] {
            var b = ONNXBuilder(opset: opset)
            b.input("x", [1, 3, 5, 4])
            // Axes are an attribute before opset 18, an input from 18 on.
            func axes(_ list: [Int], _ b: inout ONNXBuilder, _ name: String) -> ([String], [Onnx_AttributeProto]) {
                opset < 18 ? ([], [.ints("axes", list)]) : ([b.ints(name, list)], [])
            }
            let (meanInputs, meanAttributes) = axes([2, 3], &b, "mean_axes")
            b.node("ReduceMean", ["x"] + meanInputs, "m", meanAttributes + [.int("keepdims", 1)])
            let (maxInputs, maxAttributes) = axes([-1, -2], &b, "max_axes")
            b.node("ReduceMax", ["x"] + maxInputs, "mx", maxAttributes + [.int("keepdims", 0)])
            b.node("Gemm", ["mx", b.initializer("w", [2, 3])], "logits", [.int("transB", 1)])
            let (flatInputs, flatAttributes) = axes([3, 2], &b, "flat_axes")
            b.node("ReduceMean", ["x"] + flatInputs, "flat", flatAttributes + [.int("keepdims", 0)])
            b.output("m", [1, 3, 1, 1]); b.output("logits", [1, 2]); b.output("flat", [1, 3])
            let imported = try model(b)
            let g = imported.graph
            XCTAssertEqual(g.node(named: "m")?.op, .globalAvgPool)
            XCTAssertEqual(g.node(named: "m")?.shape, Shape([3, 1, 1]))
            XCTAssertEqual(g.node(named: "mx")?.op, .globalMaxPool)
            XCTAssertEqual(g.node(named: "logits")?.inputs, ["mx"], "the dense reads the pool, not a flatten")
            XCTAssertEqual(g.node(named: "flat_flatten")?.op, .flatten)
            XCTAssertEqual(g.node(named: "flat_flatten")?.shape, Shape([3]))

            // Against the definition: the mean and the max over each channel's 5 x 4 values.
            let x = SeededData.input(name: "x", shape: [2, 3, 5, 4], seed: 5)
            let parameters = imported.weights.mapValues { Tensor(shape: $0.shape, data: $0.data.map(Double.init)) }
            let outputs = try Interpreter(graph: g, parameters: parameters).outputs(["x": x])
            let w = parameters["logits.weight"] ?? parameters[imported.parameterNames.first { $0.onnx == "w" }!.cnnc]!
            for n in 0..<2 {
                var means: [Double] = [], maxima: [Double] = []
                for c in 0..<3 {
                    let plane = x.data[(n * 3 + c) * 20..<(n * 3 + c + 1) * 20]
                    means.append(plane.reduce(0, +) / 20)
                    maxima.append(plane.max()!)
                }
                for c in 0..<3 {
                    XCTAssertEqual(outputs[0].data[n * 3 + c], means[c], accuracy: 1e-12)
                    XCTAssertEqual(outputs[2].data[n * 3 + c], means[c], accuracy: 1e-12)
                }
                for k in 0..<2 {
                    let expected = (0..<3).reduce(0.0) { $0 + w.data[k * 3 + $1] * maxima[$1] }
                    XCTAssertEqual(outputs[1].data[n * 2 + k], expected, accuracy: 1e-12)
                }
            }
            XCTAssertEqual(outputs[2].shape, [2, 3])
        }
    }

    func testOtherReductionsAreRejectedClearly() throws {
        let spatial = "cnnc reduces only the spatial axes [2, 3] of [N, C, H, W] (global pooling)"
        let cases: [(String, [Onnx_AttributeProto], String)] = [
            ("ReduceMean", [.ints("axes", [1])], "reduction over axes [1] of [1, 3, 5, 4]; \(spatial)"),
            ("ReduceMax", [.ints("axes", [2])], "reduction over axes [2] of [1, 3, 5, 4]; \(spatial)"),
            ("ReduceMean", [.ints("axes", [1, 2, 3])], "reduction over axes [1, 2, 3] of [1, 3, 5, 4]; \(spatial)"),
            ("ReduceMean", [], "reduction over all axes of [1, 3, 5, 4]; \(spatial)"),
        ]
        for (op, attributes, message) in cases {
            var b = ONNXBuilder()
            b.input("x", [1, 3, 5, 4])
            b.node(op, ["x"], "r", attributes)
            b.output("r")
            XCTAssertEqual(try error(b), "error: 'tiny.onnx' has 1 unsupported node:\n  'r' (\(op), opset 17): \(message)")
        }
    }

    // MARK: - Channel rearrangements that are not a shuffle or a channel slice

    func testOtherTransposesSlicesAndSplitsAreRejectedClearly() throws {
        let cases: [(String, [String], [Onnx_AttributeProto], String)] = [
            ("Transpose", [], [.ints("perm", [0, 1, 3, 2])],
             "Transpose with perm [0, 1, 3, 2] of [1, 4, 6, 6]; cnnc transposes only the channel groups of a channel shuffle (Reshape to [N, G, C/G, H, W], perm [0, 2, 1, 3, 4], Reshape back)"),
            ("Split", [], [.int("axis", 2)],
             "Split along axis 2 of [1, 4, 6, 6]; cnnc splits the channels (axis 1) of [N, C, H, W] or [N, F]"),
        ]
        for (op, extra, attributes, message) in cases {
            var b = ONNXBuilder()
            b.input("x", [1, 4, 6, 6])
            b.node(op, ["x"] + extra, "r", attributes)
            b.output("r")
            XCTAssertEqual(try error(b), "error: 'tiny.onnx' has 1 unsupported node:\n  'r' (\(op), opset 17): \(message)")
        }
        var b = ONNXBuilder()
        b.input("x", [1, 4, 6, 6])
        b.node("Slice", ["x", b.ints("s", [1]), b.ints("e", [5]), b.ints("a", [2]), b.ints("st", [2])], "r")
        b.output("r")
        XCTAssertEqual(try error(b), "error: 'tiny.onnx' has 1 unsupported node:\n  'r' (Slice, opset 17): Slice of axis 2 from 1 to 5 step 2 of [1, 4, 6, 6]; cnnc slices the channels (axis 1) with step 1, and H and W whole with a step (x[:, :, ::2, ::2])")
        var empty = ONNXBuilder()
        empty.input("x", [1, 4, 6, 6])
        empty.node("Slice", ["x", empty.ints("s", [3]), empty.ints("e", [2]), empty.ints("a", [1])], "r")
        empty.output("r")
        XCTAssertEqual(try error(empty), "error: node 'r' (Slice): Slice keeps no channel (from 3 to 2 of 4)")
        // Sizes near INT64_MAX are an error, not an overflow.
        var huge = ONNXBuilder()
        huge.input("x", [1, 4, 6, 6])
        huge.node("Split", ["x", huge.ints("sizes", [Int.max])], "r", [.int("axis", 1)])
        huge.output("r")
        XCTAssertEqual(try error(huge), "error: node 'r' (Split): split sizes [9223372036854775807] for 1 outputs do not add up to the 4 channels")
    }

    // MARK: - Every unsupported node

    /// A broadcasting Add of a computed per-channel value (`x + conv(gap(x))`), which cnnc does
    /// not have. Every one of them is listed, not only the first: an unsupported element-wise
    /// node lets an input of its output's shape stand in for it.
    func testUnsupportedNodesAfterAnUnsupportedOneAreListed() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 4, 6, 6])
        var last = "x"
        for block in 1...3 {
            b.node("Conv", [last, b.initializer("w\(block)", [4, 4, 3, 3])], "c\(block)", [.ints("pads", [1, 1, 1, 1])])
            b.node("GlobalAveragePool", ["c\(block)"], "g\(block)")
            b.node("Sigmoid", ["g\(block)"], "s\(block)")
            b.node("Add", ["c\(block)", "s\(block)"], "se\(block)")
            last = "se\(block)"
        }
        b.node("Transpose", [last], "t", [.ints("perm", [0, 1, 3, 2])])  // not a shuffle, and no stand-in
        b.node("Relu", ["t"], "r")                                          // skipped: reads a failed value
        b.node("Erf", ["r"], "e")                                           // unknown: listed all the same
        b.output("e")
        // The gate's pattern is named: global pool -> sigmoid, one value per channel.
        func add(_ block: Int) -> String {
            "broadcasting Add of computed values [1, 4, 6, 6] and [1, 4, 1, 1] (a squeeze-and-excitation gate: global_avgpool 'g\(block)' -> sigmoid 's\(block)'); cnnc adds equal shapes (mul, sub and div broadcast)"
        }
        XCTAssertEqual(try error(b), """
            error: 'tiny.onnx' has 5 unsupported nodes:
              'se1' (Add, opset 17): \(add(1))
              'se2' (Add, opset 17): \(add(2)) (downstream of 'se1')
              'se3' (Add, opset 17): \(add(3)) (downstream of 'se1')
              't' (Transpose, opset 17): Transpose with perm [0, 1, 3, 2] of [1, 4, 6, 6]; cnnc transposes only the channel groups of a channel shuffle (Reshape to [N, G, C/G, H, W], perm [0, 2, 1, 3, 4], Reshape back) (downstream of 'se1')
              'e' (Erf, opset 17): no cnnc equivalent (downstream of 'se1')
              (1 more node downstream not checked: its inputs have no known shape)
            """)
    }
}
