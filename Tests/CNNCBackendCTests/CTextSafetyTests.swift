// Text from input that reaches generated C: float literals of any value, comments holding file
// names, and the parameter names made from node names (issue #14).

@testable import CNNCBackendC
import CNNCIR
import XCTest

final class CTextSafetyTests: XCTestCase {
    func testEveryFloatPrintsAsAValidCLiteral() {
        XCTAssertEqual(cFloat(.nan), "NAN")
        XCTAssertEqual(cFloat(.infinity), "INFINITY")
        XCTAssertEqual(cFloat(-.infinity), "-INFINITY")
        XCTAssertEqual(cFloat(1e300), "INFINITY")  // beyond float's range
        XCTAssertEqual(cFloat(0.25), "0.25f")
        XCTAssertEqual(cFloat(3), "3.0f")
    }

    func testCommentsCannotBeEndedOrNestedByInput() {
        XCTAssertEqual(commentSafe("a*/b/*c??/d"), "a* /b/ *c? ?/d")
        XCTAssertEqual(commentSafe("*/*"), "* / *")
        XCTAssertEqual(commentSafe("plain text / * ?"), "plain text / * ?")
        var w = CWriter()
        w.comment("from x*/y.net")
        XCTAssertEqual(w.text, "/* from x* /y.net */\n")
    }

    func testParameterNamesAvoidKeywordsMacrosAndTheAPIsOwnNames() {
        func graph(inputs: [String], outputs: [String]) -> Graph {
            Graph(name: "t", nodes: inputs.map { Node(name: $0, op: .input(Shape([3])), inputs: []) }, outputs: outputs)
        }
        let names = CParameterNames(graph(inputs: ["int", "x", "ctx", "t_forward"], outputs: ["x", "x", "EOF", "size_t", "n", "image"]),
                                    prefix: "t")
        XCTAssertEqual(names.inputs, ["int_", "x", "ctx_", "t_forward_"])
        XCTAssertEqual(names.outputs, ["x_", "x__", "EOF_", "size_t_", "n_", "image"])
        XCTAssertEqual(Set(names.inputs + names.outputs).count, 10)
        let macros = CParameterNames(graph(inputs: ["a"], outputs: ["a", "A", "b"]), prefix: "t")
        XCTAssertEqual(macros.outputMacros, ["A", "A_2", "B"])
        for word in ["class", "return", "NULL", "_Bool", "__x", "_X", "cnnc_y", "omp_z", "errno", "inputs"] {
            XCTAssertTrue(CParameterNames.isReserved(word, prefix: "t"), word)
        }
        for word in ["x", "image", "prob", "logits", "input_1", "total", "memory"] {
            XCTAssertFalse(CParameterNames.isReserved(word, prefix: "t"), word)
        }
    }
}
