// Helpers for interpreter tests: one-op graphs and tensor comparison with a named tolerance.

import CNNCIR
import CNNCInterpreter
import XCTest

/// Tolerances: hand cases are computed in Double by numpy, so the interpreter must agree to
/// within rounding of a few operations (relative to max(1, |expected|)).
enum Tolerance {
    static let exact = 0.0
    static let rounding = 1e-13
}

/// A graph `x -> y` where node `y` applies `op` to an input of the given per-sample shape.
func singleOpGraph(_ op: Op, input: [Int]) -> Graph {
    var graph = Graph(name: "single", nodes: [
        Node(name: "x", op: .input(Shape(input)), inputs: []),
        Node(name: "y", op: op, inputs: ["x"]),
    ], outputs: ["y"])
    let problems = graph.inferShapes()
    precondition(problems.isEmpty, "\(problems)")
    return graph
}

/// Runs one op on a batched input; `parameters` are keyed by role (`weight`, `bias`, ...).
func runOp(_ op: Op, _ input: Tensor, parameters: [String: Tensor] = [:]) throws -> Tensor {
    let graph = singleOpGraph(op, input: Array(input.shape.dropFirst()))
    var named: [String: Tensor] = [:]
    for (role, tensor) in parameters { named["y.\(role)"] = tensor }
    let interpreter = try Interpreter(graph: graph, parameters: named)
    return try interpreter.outputs(["x": input])[0]
}

/// Runs an n-ary op (add, concat) on inputs `a`, `b`, `c`, ... of the given batched tensors.
func runOp(_ op: Op, _ inputs: [Tensor]) throws -> Tensor {
    let names = inputs.indices.map { String(UnicodeScalar(UInt8(97 + $0))) }
    var nodes = zip(names, inputs).map { name, tensor in
        Node(name: name, op: .input(Shape(Array(tensor.shape.dropFirst()))), inputs: [])
    }
    nodes.append(Node(name: "y", op: op, inputs: names))
    var graph = Graph(name: "nary", nodes: nodes, outputs: ["y"])
    let problems = graph.inferShapes()
    precondition(problems.isEmpty, "\(problems)")
    let interpreter = try Interpreter(graph: graph, parameters: [:])
    return try interpreter.outputs(Dictionary(uniqueKeysWithValues: zip(names, inputs)))[0]
}

/// A tensor from literal values.
func tensor(_ shape: [Int], _ data: [Double]) -> Tensor { Tensor(shape: shape, data: data) }

/// `1, 2, ..., count` shaped as `shape` (times `scale`).
func iota(_ shape: [Int], from start: Double = 1, scale: Double = 1) -> Tensor {
    let count = shape.reduce(1, *)
    return Tensor(shape: shape, data: (0..<count).map { (start + Double($0)) * scale })
}

/// Asserts the shape and that every element is within `tolerance * max(1, |expected|)`;
/// a failure names the worst element by its multi-index, both values and the error.
func assertClose(_ actual: Tensor, _ shape: [Int], _ expected: [Double],
                 tolerance: Double = Tolerance.rounding, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, shape, "shape", file: file, line: line)
    guard actual.data.count == expected.count else {
        XCTFail("expected \(expected.count) values, got \(actual.data.count)", file: file, line: line)
        return
    }
    var worst: (index: Int, error: Double)?
    for (i, (a, e)) in zip(actual.data, expected).enumerated() {
        let error = a == e ? 0 : abs(a - e) / max(1, abs(e))
        if error > tolerance || error.isNaN, worst == nil || error > worst!.error || error.isNaN {
            worst = (i, error)
        }
    }
    if let worst {
        var index: [Int] = []
        var rest = worst.index
        for d in shape.reversed() { index.insert(rest % max(d, 1), at: 0); rest /= max(d, 1) }
        XCTFail("worst element \(index): got \(actual.data[worst.index]), expected \(expected[worst.index]), "
                + "error \(worst.error) > \(tolerance)", file: file, line: line)
    }
}
