// Hostile ONNX models: sizes and indices computed from the file are checked (no overflow or
// Int(Double) trap), external data is a regular file inside the model's folder, and fixed
// sizes of 0 or less are named as such.

import CNNCDriver
import CNNCIR
import Foundation
import XCTest

@testable import CNNCFrontend

final class ONNXHardeningTests: XCTestCase {
    private func error(_ b: ONNXBuilder, baseDirectory: String? = nil) throws -> String {
        switch ONNXFrontend.importModel(try b.data(), path: "tiny.onnx", baseDirectory: baseDirectory) {
        case .success: return "no error"
        case .failure(let list): return list.description
        }
    }

    /// x [N,3,4,4] -> Reshape(x, shape) -> output.
    private func reshape(_ shape: Onnx_TensorProto) -> ONNXBuilder {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        b.graph.initializer.append(shape)
        b.node("Reshape", ["x", shape.name], "y")
        b.output("y")
        return b
    }

    func testNonIntegerShapeValuesAreErrorsNotTraps() throws {
        for value: Float in [.nan, .infinity, -.infinity, 2.5] {
            let b = reshape(.float(name: "s", dims: [2], values: [1, value]))
            XCTAssertEqual(try error(b), "error: node 'y' (Reshape): value \(Double(value)) of a constant used as a size or index is not an integer")
        }
        // 2^63 and more saturate (exporters' INT64_MAX) and then fail as a size, without a trap.
        for value: Float in [0x1p63, 0x1p100, -0x1p63] {
            let message = try error(reshape(.float(name: "s", dims: [2], values: [1, value])))
            XCTAssertTrue(message.hasPrefix("error: node 'y' (Reshape): "), message)
        }
    }

    /// A graph output listed twice: two output parameters in the C API, which builds with
    /// -Werror and matches the interpreter (it was a redefined parameter).
    func testAnOutputListedTwiceCompiles() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        b.node("Relu", ["x"], "y")
        b.output("y")
        b.output("y")
        let folder = NSTemporaryDirectory() + "/cnnc-twice-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try b.data().write(to: URL(fileURLWithPath: "\(folder)/twice.onnx"))
        let (report, passed) = try Checker.check(try ModelLoader.load("\(folder)/twice.onnx"), options: CheckOptions())
        XCTAssertTrue(passed, report)
    }

    func testReshapeTargetProductOverflowIsAnError() throws {
        let b = reshape(.int64(name: "s", dims: [3], values: [1, 1 << 40, 1 << 40]))
        XCTAssertEqual(try error(b), "error: node 'y' (Reshape): shape [1099511627776, 1099511627776] has a negative size or more elements than fit in 64 bits")
    }

    func testConstantOfShapeOverflowIsAnError() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3])
        b.node("ConstantOfShape", [b.ints("s", [1 << 62, 4])], "c")
        b.node("Add", ["x", "c"], "y")
        b.output("y")
        XCTAssertEqual(try error(b), "error: node 'c' (ConstantOfShape): ConstantOfShape of shape [4611686018427387904, 4]: negative or more than 16777216 elements")
    }

    func testGatherOverAnEmptyTensorWithHugeDimsIsAnError() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3])
        b.graph.initializer.append(.float(name: "d", dims: [0, 1 << 31, 1 << 31, 1 << 31], values: []))
        b.node("Gather", ["d", b.ints("i", [0])], "g")
        b.node("Add", ["x", "g"], "y")
        b.output("y")
        XCTAssertEqual(try error(b), "error: node 'g' (Gather): shape [2147483648, 2147483648, 2147483648] has a negative size or more elements than fit in 64 bits")
    }

    /// ConvTranspose attributes and shapes from the file: each bad one an error naming it, never a trap.
    func testConvTransposeAttributesAreChecked() throws {
        let cases: [([Int], [Onnx_AttributeProto], String)] = [
            // INT64_MIN in an ints attribute is out of range (abs() of it trapped before).
            ([4, 2, 3, 3], [.ints("output_shape", [Int.min, 5])],
             "error: node 'y' (ConvTranspose): attribute 'output_shape' has -9223372036854775808, out of range"),
            ([4, 2, 3, 3], [.ints("output_shape", [0, 5])],
             "error: node 'y' (ConvTranspose): output_shape must list [H, W] from 1 to 1048576, got [0, 5]"),
            ([4, 2, 3, 3], [.int("group", 0)], "error: node 'y' (ConvTranspose): group=0 does not divide the 4 input channels"),
            ([4, 2, 3, 3], [.int("group", Int.max)],
             "error: node 'y' (ConvTranspose): group=9223372036854775807 does not divide the 4 input channels"),
            ([3, 2, 3, 3], [], "error: node 'y' (ConvTranspose): weight 'w' has shape [3, 2, 3, 3], expected 4 input channels first from input of shape [1, 4, 5, 5]"),
            ([4, 2, 3, 3], [.ints("strides", [2, 2]), .ints("output_padding", [2, 0])],
             "error: 'tiny.onnx' has 1 unsupported node:\n  'y' (ConvTranspose, opset 17): output_padding 2x0 not below the stride 2 or the dilation 1; cnnc (as PyTorch) adds fewer rows than that"),
            ([4, 2, 3, 3], [.ints("output_shape", [9, 9])],
             "error: 'tiny.onnx' has 1 unsupported node:\n  'y' (ConvTranspose, opset 17): output_shape [9, 9] beyond the full output 7x7 by as many rows or columns as the stride 1 and the dilation 1; cnnc (as PyTorch) adds fewer than that"),
            ([4, 2, 3, 3], [.ints("pads", [4, 4, 4, 4])],
             "error: node 'y' (ConvTranspose): conv_transpose 'y' padding 4 leaves no output from a 5x5 input (-1x-1)"),
        ]
        for (weight, attributes, message) in cases {
            var b = ONNXBuilder()
            b.input("x", [1, 4, 5, 5])
            b.initializer("w", weight)
            b.node("ConvTranspose", ["x", "w"], "y", attributes)
            b.output("y")
            XCTAssertEqual(try error(b), message)
        }
    }

    func testSliceStepNearIntMaxStops() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        b.node("Shape", ["x"], "s")
        b.node("Slice", ["s", b.ints("st", [1]), b.ints("en", [4]), b.ints("ax", [0]), b.ints("sp", [Int.max])], "d")
        b.node("Reshape", ["x", "d"], "y")
        b.output("y")
        // INT64_MAX (the exporters' "to the end") saturates; one element is sliced ([3]) and the
        // step past the end stops without overflowing.
        XCTAssertEqual(try error(b), "error: 'tiny.onnx' has 1 unsupported node:\n  'y' (Reshape, opset 17): Reshape to [3] from [1, 3, 4, 4]; the first dimension must stay the batch")
    }

    func testFixedSizesOfZeroOrLessAreNotCalledDynamic() throws {
        for size in [0, -3] {
            var b = ONNXBuilder()
            var info = Onnx_ValueInfoProto()
            info.name = "x"
            info.type.tensorType.elemType = 1
            info.type.tensorType.shape.dim = [1, 3, size, 4].map { d in
                var dim = Onnx_TensorShapeProto.Dimension()
                dim.dimValue = Int64(d)
                return dim
            }
            b.graph.input.append(info)
            b.node("Relu", ["x"], "y")
            b.output("y")
            XCTAssertEqual(try error(b), "error: input 'x' has dimension 2 of size \(size); sizes must be 1 to 1048576")
        }
    }

    func testZeroFilterConvIsAShapeError() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        b.node("Conv", ["x", b.initializer("w", [0, 3, 3, 3])], "y")
        b.output("y")
        let message = try error(b)
        XCTAssertTrue(message.contains("has dimension 0 of size 0; every size must be at least 1"), message)
    }

    /// A model whose weight `w` lives in external file `location` (relative to `folder`).
    private func external(_ location: String) -> ONNXBuilder {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        var w = Onnx_TensorProto()
        w.name = "w"
        w.dataType = 1
        w.dims = [2, 3, 1, 1]
        w.dataLocation = .external
        var entry = Onnx_StringStringEntryProto()
        entry.key = "location"
        entry.value = location
        w.externalData = [entry]
        b.graph.initializer.append(w)
        b.node("Conv", ["x", "w"], "y")
        b.output("y")
        return b
    }

    func testExternalDataMustBeARegularFileInTheModelsFolder() throws {
        let folder = try FileManager.default.url(for: .itemReplacementDirectory, in: .userDomainMask,
                                                 appropriateFor: URL(fileURLWithPath: NSTemporaryDirectory()), create: true).path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let good = Data(repeating: 0, count: 24)
        try good.write(to: URL(fileURLWithPath: "\(folder)/w.bin"))
        XCTAssertEqual(try error(external("w.bin"), baseDirectory: folder), "no error")
        // A link out of the folder: refused without saying what it points at.
        let outside = NSTemporaryDirectory() + "/cnnc-outside-\(getpid()).bin"
        try good.write(to: URL(fileURLWithPath: outside))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/link.bin", withDestinationPath: outside)
        XCTAssertEqual(try error(external("link.bin"), baseDirectory: folder),
                       "error: initializer 'w': tensor 'w': external data: cannot read '\(folder)/link.bin': it leads outside the model's folder '\(folder)'")
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/zero.bin", withDestinationPath: "/dev/zero")
        XCTAssertEqual(try error(external("zero.bin"), baseDirectory: folder),
                       "error: initializer 'w': tensor 'w': external data: cannot read '\(folder)/zero.bin': it leads outside the model's folder '\(folder)'")
        XCTAssertEqual(mkfifo("\(folder)/fifo.bin", 0o600), 0)
        XCTAssertEqual(try error(external("fifo.bin"), baseDirectory: folder),
                       "error: initializer 'w': tensor 'w': external data: cannot read '\(folder)/fifo.bin': it is a FIFO, not a regular file")
    }

    /// Node names that differ only in characters a C identifier cannot hold (`a-b`, `a_b`,
    /// `a.b`, `a b`, `a/b`, `a:b`) become distinct cnnc names (so distinct C functions), and the
    /// generated C, inference and training, builds with -Werror and matches the interpreter.
    func testNamesThatDifferOnlyInMangledCharactersStayDistinct() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        b.initializer("w1", [4, 3, 3, 3])
        b.initializer("w2", [4, 4, 1, 1])
        b.node("Conv", ["x", "w1"], "a-b", [.ints("pads", [1, 1, 1, 1])])
        b.node("Relu", ["a-b"], "a_b")
        b.node("Conv", ["a_b", "w2"], "a.b")
        b.node("Relu", ["a.b"], "a b")
        b.node("Add", ["a b", "a_b"], "a/b")
        b.node("GlobalAveragePool", ["a/b"], "a__b")
        b.node("Flatten", ["a__b"], "a:b")
        b.output("a:b")
        let model = try b.load().get()
        let names = model.graph.nodes.map(\.name)
        XCTAssertEqual(names, ["x", "a_b", "a_b_2", "a_b_3", "a_b_4", "a_b_5", "a_b_6", "a_b_7"])
        let folder = NSTemporaryDirectory() + "/cnnc-names-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try b.data().write(to: URL(fileURLWithPath: "\(folder)/names.onnx"))
        let loaded = try ModelLoader.load("\(folder)/names.onnx")
        let (report, passed) = try Checker.check(loaded, options: CheckOptions())
        XCTAssertTrue(passed, report)
        let (trainReport, trainPassed) = try TrainChecker.check(loaded, options: TrainCheckOptions())
        XCTAssertTrue(trainPassed, trainReport)
    }

    /// Found by the fuzzer (tools/fuzz/corpus/crash-onnx-*): an ints attribute holding
    /// INT64_MIN (abs trapped), and a pooling node listing no outputs (a reversed range
    /// trapped; such a node is dead).
    func testINT64MinAttributesAndNodesWithoutOutputsAreErrors() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 4, 4])
        b.initializer("w", [2, 3, 1, 1])
        b.node("Conv", ["x", "w"], "y", [.ints("pads", [Int(Int64.min), 0, 0, 0])])
        b.output("y")
        XCTAssertEqual(try error(b), "error: node 'y' (Conv): attribute 'pads' has -9223372036854775808, out of range")
        var p = ONNXBuilder()
        p.input("x", [1, 3, 4, 4])
        var n = Onnx_NodeProto()
        n.opType = "MaxPool"
        n.name = "p"
        n.input = ["x"]
        n.attribute = [.ints("kernel_shape", [2, 2])]
        p.graph.node.append(n)
        p.node("Relu", ["x"], "y")
        p.output("y")
        XCTAssertEqual(try error(p), "no error")  // the pool reads x and writes nothing: dead, not a trap
    }

    /// A Relu listed with two outputs is the model's mistake, named as such (it was reported
    /// as a compiler bug).
    func testAnOperatorWithMoreOutputsThanItDefinesIsTheModelsError() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3])
        var n = Onnx_NodeProto()
        n.opType = "Relu"
        n.name = "r"
        n.input = ["x"]
        n.output = ["y", "z"]
        b.graph.node.append(n)
        b.output("z")
        XCTAssertEqual(try error(b), "error: node 'r' (Relu): lists 2 outputs; output 1 ('z') is not one cnnc's Relu produces")
    }
}
