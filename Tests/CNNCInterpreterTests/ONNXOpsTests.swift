// The ops added for ONNX: selu, softplus, hardsigmoid, hardswish, clip (relu6), global max
// pooling and log softmax. Expected values computed in float64 with NumPy.

import CNNCIR
import CNNCInterpreter
import XCTest

final class ONNXOpsTests: XCTestCase {
    let x = tensor([1, 7], [-4, -2, -0.5, 0, 0.5, 3, 7])

    func testSELU() throws {
        assertClose(try runOp(.activation(.selu(alpha: 1.6732632423543772, gamma: 1.0507009873554805)), x), [1, 7],
                    [-1.7258986281898945, -1.520166468595695, -0.6917581878028713, 0, 0.5253504936777402,
                     3.1521029620664414, 7.354906911488364])
    }

    func testSoftplus() throws {
        assertClose(try runOp(.activation(.softplus), x), [1, 7],
                    [0.018149927917809738, 0.1269280110429725, 0.4740769841801067, 0.6931471805599453,
                     0.9740769841801067, 3.048587351573742, 7.000911466453774])
        // No overflow for large inputs.
        assertClose(try runOp(.activation(.softplus), tensor([1, 2], [1000, -1000])), [1, 2], [1000, 0])
    }

    func testHardSigmoidWithPyTorchAndONNXDefaults() throws {
        assertClose(try runOp(.activation(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5)), x), [1, 7],
                    [0, 0.16666666666666669, 0.4166666666666667, 0.5, 0.5833333333333334, 1, 1])
        assertClose(try runOp(.activation(.hardSigmoid(alpha: 0.2, beta: 0.5)), x), [1, 7],
                    [0, 0.09999999999999998, 0.4, 0.5, 0.6, 1, 1])
    }

    func testHardSwish() throws {
        assertClose(try runOp(.activation(.hardSwish), x), [1, 7],
                    [0, -0.3333333333333333, -0.20833333333333334, 0, 0.2916666666666667, 3, 7])
    }

    func testClipAndReLU6() throws {
        assertClose(try runOp(.activation(.clip(min: -1, max: 2)), x), [1, 7], [-1, -1, -0.5, 0, 0.5, 2, 2],
                    tolerance: Tolerance.exact)
        assertClose(try runOp(.activation(.clip(min: 0, max: 6)), x), [1, 7], [0, 0, 0, 0, 0.5, 3, 6],
                    tolerance: Tolerance.exact)
    }

    func testNaNPropagatesThroughNewActivations() throws {
        let nan = tensor([1, 1], [.nan])
        for act: Activation in [.selu(alpha: 1.67, gamma: 1.05), .softplus, .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish,
                                .clip(min: 0, max: 6)] {
            XCTAssertTrue(try runOp(.activation(act), nan).data[0].isNaN, "\(act)")
        }
    }

    func testGlobalMaxPool() throws {
        let maps = tensor([1, 2, 2, 2], [1, -5, 3, 2, -1, -2, -3, -4])
        assertClose(try runOp(.globalMaxPool, maps), [1, 2, 1, 1], [3, -1], tolerance: Tolerance.exact)
    }

    func testLogSoftmaxOverFeaturesAndChannels() throws {
        assertClose(try runOp(.logSoftmax, tensor([1, 3], [1, 2, 3])), [1, 3],
                    [-2.4076059644443806, -1.4076059644443804, -0.4076059644443804])
        // Over channels at each position, like softmax; a large input does not overflow.
        let maps = tensor([1, 3, 1, 2], [1, 1000, 2, 1000, 3, 1000])
        assertClose(try runOp(.logSoftmax, maps), [1, 3, 1, 2],
                    [-2.4076059644443806, -1.0986122886681098, -1.4076059644443804, -1.0986122886681098,
                     -0.4076059644443804, -1.0986122886681098])
    }

    func testNewOpsParseAndPrintInIRText() throws {
        let text = """
            network newops
            x = input() shape=4x3x3 : 4x3x3
            a = hardswish(x) : 4x3x3
            b = hardsigmoid(a) alpha=0.2 beta=0.5 : 4x3x3
            c = clip(b) min=0.0 max=6.0 : 4x3x3
            d = selu(c) alpha=1.5 gamma=1.25 : 4x3x3
            e = softplus(d) : 4x3x3
            f = global_maxpool(e) : 4x1x1
            g = logsoftmax(f) : 4x1x1
            outputs g

            """
        let graph = try Graph.parseIR(text).get()
        XCTAssertEqual(graph.irText(), text)
        XCTAssertEqual(graph.node(named: "c")?.op, .activation(.clip(min: 0, max: 6)))
        XCTAssertTrue(graph.verify().isEmpty)
    }
}
