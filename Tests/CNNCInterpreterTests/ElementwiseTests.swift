// Activations, PReLU, add and dropout.

import CNNCIR
import CNNCInterpreter
import XCTest

final class ElementwiseTests: XCTestCase {
    let x = tensor([1, 5], [-2, -0.5, 0, 0.5, 3])

    func testReLU() throws {
        assertClose(try runOp(.activation(.relu), x), [1, 5], [0, 0, 0, 0.5, 3], tolerance: Tolerance.exact)
    }

    func testLeakyReLU() throws {
        assertClose(try runOp(.activation(.leakyRelu(alpha: 0.1)), x), [1, 5], [-0.2, -0.05, 0, 0.5, 3])
    }

    func testSigmoid() throws {
        assertClose(try runOp(.activation(.sigmoid), x), [1, 5],
                    [0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.9525741268224334])
    }

    func testTanh() throws {
        assertClose(try runOp(.activation(.tanh), x), [1, 5],
                    [-0.9640275800758169, -0.46211715726000974, 0, 0.46211715726000974, 0.9950547536867305])
    }

    func testSwish() throws {
        assertClose(try runOp(.activation(.swish), x), [1, 5],
                    [-0.2384058440442351, -0.1887703343990727, 0, 0.3112296656009273, 2.8577223804673])
    }

    func testELU() throws {
        // alpha * (exp(x) - 1) for x <= 0, with alpha = 1.5.
        assertClose(try runOp(.activation(.elu(alpha: 1.5)), x), [1, 5],
                    [-1.296997075145081, -0.5902040104310499, 0, 0.5, 3])
    }

    func testActivationsOnFeatureMaps() throws {
        let maps = tensor([1, 1, 2, 2], [-1, 2, -3, 4])
        assertClose(try runOp(.activation(.relu), maps), [1, 1, 2, 2], [0, 2, 0, 4], tolerance: Tolerance.exact)
    }

    func testPReLUShared() throws {
        let maps = tensor([1, 2, 1, 2], [-4, 1, 2, -8])
        let y = try runOp(.prelu(PReLUAttributes(shared: true)), maps, parameters: ["weight": tensor([1], [0.25])])
        assertClose(y, [1, 2, 1, 2], [-1, 1, 2, -2], tolerance: Tolerance.exact)
    }

    func testPReLUPerChannelFeatureMaps() throws {
        // Channel 0 slope 0.1, channel 1 slope -2, for both samples.
        let maps = tensor([2, 2, 1, 2], [-4, 1, 2, -8, 3, -10, -0.5, 0])
        let y = try runOp(.prelu(PReLUAttributes(shared: false)), maps,
                          parameters: ["weight": tensor([2], [0.1, -2])])
        assertClose(y, [2, 2, 1, 2], [-0.4, 1, 2, 16, 3, -1, 1, 0])
    }

    func testPReLUPerFeatureVectors() throws {
        let v = tensor([2, 3], [-1, -1, -1, 2, -2, 2])
        let y = try runOp(.prelu(PReLUAttributes(shared: false)), v,
                          parameters: ["weight": tensor([3], [0.5, 1, 3])])
        assertClose(y, [2, 3], [-0.5, -1, -3, 2, -2, 2], tolerance: Tolerance.exact)
    }

    func testAddThreeInputs() throws {
        let a = tensor([2, 2], [1, 2, 3, 4]), b = tensor([2, 2], [10, 20, 30, 40]), c = tensor([2, 2], [-1, 0.5, 0, 100])
        assertClose(try runOp(.add, [a, b, c]), [2, 2], [10, 22.5, 33, 144], tolerance: Tolerance.exact)
    }

    func testDropoutIsIdentityAtInference() throws {
        let maps = tensor([1, 1, 2, 2], [-1, 2, -3, 4])
        XCTAssertEqual(try runOp(.dropout(rate: 0.5), maps), maps)
    }
}
