// Errors for bad parameters, bad inputs and graphs without inferred shapes, with exact messages.

import CNNCIR
import CNNCInterpreter
import XCTest

final class ValidationTests: XCTestCase {
    /// image 1x6x6 -> conv c1 (2 filters, 3x3) -> relu -> batchnorm bn1 -> dense f1 (3) -> softmax.
    static func small() -> Graph {
        var graph = Graph(name: "small", nodes: [
            Node(name: "image", op: .input(Shape([1, 6, 6])), inputs: []),
            Node(name: "c1", op: .conv(ConvAttributes(filters: 2, kernel: Pair(3))), inputs: ["image"]),
            Node(name: "r1", op: .activation(.relu), inputs: ["c1"]),
            Node(name: "bn1", op: .batchNorm(BatchNormAttributes()), inputs: ["r1"]),
            Node(name: "f1", op: .dense(DenseAttributes(units: 3)), inputs: ["bn1"]),
            Node(name: "prob", op: .softmax, inputs: ["f1"]),
        ], outputs: ["prob"])
        graph.inferShapes()
        return graph
    }

    func assertThrows(_ message: String, file: StaticString = #filePath, line: UInt = #line,
                      _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? InterpreterError)?.description, message, file: file, line: line)
        }
    }

    func testCompleteParametersAreAccepted() throws {
        let graph = Self.small()
        XCTAssertEqual(Weights.seeded(graph, seed: 1).keys.sorted(), [
            "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.weight", "c1.bias", "c1.weight",
            "f1.bias", "f1.weight",
        ])
        XCTAssertNoThrow(try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1)))
    }

    func testMissingParameter() {
        var parameters = Weights.seeded(Self.small(), seed: 1)
        parameters["c1.bias"] = nil
        assertThrows("parameter 'c1.bias': missing, expected shape [2]") {
            _ = try Interpreter(graph: Self.small(), parameters: parameters)
        }
    }

    func testWrongShape() {
        var parameters = Weights.seeded(Self.small(), seed: 1)
        parameters["c1.weight"] = Tensor(zeros: [2, 1, 5, 5])
        assertThrows("parameter 'c1.weight': expected shape [2, 1, 3, 3], got [2, 1, 5, 5]") {
            _ = try Interpreter(graph: Self.small(), parameters: parameters)
        }
    }

    func testValueCountDisagreeingWithShape() {
        var parameters = Weights.seeded(Self.small(), seed: 1)
        parameters["bn1.running_var"]!.data.append(1)
        assertThrows("parameter 'bn1.running_var': shape [2] needs 2 values, got 3") {
            _ = try Interpreter(graph: Self.small(), parameters: parameters)
        }
    }

    func testExtraParameter() {
        var parameters = Weights.seeded(Self.small(), seed: 1)
        parameters["c2.weight"] = Tensor(zeros: [1])
        assertThrows("parameter 'c2.weight': not a parameter of graph 'small'") {
            _ = try Interpreter(graph: Self.small(), parameters: parameters)
        }
    }

    func testEveryProblemIsReportedInOrder() {
        // Graph order for missing and misshapen tensors, then unknown names sorted.
        var parameters = Weights.seeded(Self.small(), seed: 1)
        parameters["zz"] = Tensor(zeros: [1])
        parameters["a.weight"] = Tensor(zeros: [1])
        parameters["c1.weight"] = nil
        parameters["f1.weight"] = Tensor(zeros: [3, 31])
        assertThrows("""
            parameter 'c1.weight': missing, expected shape [2, 1, 3, 3]
            parameter 'f1.weight': expected shape [3, 32], got [3, 31]
            parameter 'a.weight': not a parameter of graph 'small'
            parameter 'zz': not a parameter of graph 'small'
            """) {
            _ = try Interpreter(graph: Self.small(), parameters: parameters)
        }
    }

    func testGraphWithoutInferredShapes() {
        var graph = Self.small()
        for i in graph.nodes.indices { graph.nodes[i].shape = Shape([]) }
        assertThrows("graph 'small' has no inferred shape for input 'image'; run inferShapes() first") {
            _ = try Interpreter(graph: graph, parameters: [:])
        }
    }

    func testMissingInput() throws {
        let graph = Self.small()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1))
        assertThrows("input 'image': missing, expected shape [N, 1, 6, 6]") { _ = try interpreter.run([:]) }
    }

    func testWrongInputShape() throws {
        let graph = Self.small()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1))
        assertThrows("input 'image': expected shape [N, 1, 6, 6], got [2, 1, 6, 5]") {
            _ = try interpreter.run(["image": Tensor(zeros: [2, 1, 6, 5])])
        }
        assertThrows("input 'image': expected shape [N, 1, 6, 6], got [1, 6, 6]") {
            _ = try interpreter.run(["image": Tensor(zeros: [1, 6, 6])])
        }
    }

    func testUnknownInput() throws {
        let graph = Self.small()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1))
        assertThrows("input 'label': not an input of graph 'small'") {
            _ = try interpreter.run(["image": Tensor(zeros: [1, 1, 6, 6]), "label": Tensor(zeros: [1])])
        }
    }

    func testInputsMustShareTheBatchSize() throws {
        var graph = Graph(name: "two", nodes: [
            Node(name: "a", op: .input(Shape([2])), inputs: []),
            Node(name: "b", op: .input(Shape([2])), inputs: []),
            Node(name: "sum", op: .add, inputs: ["a", "b"]),
        ], outputs: ["sum"])
        graph.inferShapes()
        let interpreter = try Interpreter(graph: graph, parameters: [:])
        assertThrows("input 'b': batch size 3 differs from 2 of input 'a'") {
            _ = try interpreter.run(["a": Tensor(zeros: [2, 2]), "b": Tensor(zeros: [3, 2])])
        }
        let sum = try interpreter.outputs(["a": tensor([2, 2], [1, 2, 3, 4]), "b": tensor([2, 2], [1, 1, 1, 1])])
        XCTAssertEqual(sum, [tensor([2, 2], [2, 3, 4, 5])])
    }

    func testEmptyBatch() throws {
        let graph = Self.small()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1))
        let values = try interpreter.run(["image": Tensor(zeros: [0, 1, 6, 6])])
        XCTAssertEqual(values["prob"], Tensor(zeros: [0, 3]))
    }

    func testRunReturnsEveryNodeIncludingInputs() throws {
        let graph = Self.small()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 1))
        let image = SeededData.input(name: "image", shape: [2, 1, 6, 6], seed: 3)
        let values = try interpreter.run(["image": image])
        XCTAssertEqual(values.keys.sorted(), ["bn1", "c1", "f1", "image", "prob", "r1"])
        XCTAssertEqual(values["image"], image)
        XCTAssertEqual(values["c1"]?.shape, [2, 2, 4, 4])
        XCTAssertEqual(try interpreter.outputs(["image": image]), [values["prob"]!])
    }
}
