// Dense layers: flattening order (C, H, W) and bias.

import CNNCIR
import CNNCInterpreter
import XCTest

final class DenseTests: XCTestCase {
    func testFlattensCHWInOrder() throws {
        // The 2x2x2 sample flattens to [1, -2, 3, 0.5, -1, 2, 0, 4]; row 0 of the weight is
        // [-3, -2, -1, 0, 1, 2, 3, -3]: -3 + 4 - 3 + 0 - 1 + 4 + 0 - 12 + 0.25 = -10.75.
        let x = tensor([1, 2, 2, 2], [1, -2, 3, 0.5, -1, 2, 0, 4])
        let w = Tensor(shape: [3, 8], data: (0..<24).map { Double($0 % 7 - 3) })
        let y = try runOp(.dense(DenseAttributes(units: 3)), x, parameters: [
            "weight": w, "bias": tensor([3], [0.25, -0.5, 1]),
        ])
        assertClose(y, [1, 3], [-10.75, -4, -9], tolerance: Tolerance.exact)
    }

    func testVectorInputWithoutBiasInBatch() throws {
        let x = tensor([2, 2], [1, 2, -3, 0.5])
        let w = tensor([2, 2], [1, 1, 2, -1])
        let y = try runOp(.dense(DenseAttributes(units: 2, bias: false)), x, parameters: ["weight": w])
        assertClose(y, [2, 2], [3, 0, -2.5, -6.5], tolerance: Tolerance.exact)
    }
}
