// Local response normalization and batch normalization (inference).

import CNNCIR
import CNNCInterpreter
import XCTest

final class NormalizationTests: XCTestCase {
    /// 4 channels, 1x2 positions: at position 0 the channels hold 1, 3, -1, 2.
    let x = tensor([1, 4, 1, 2], [1, -2, 3, 0.5, -1, 4, 2, 2])

    func testLRNOddSize() throws {
        // size 3: channels c-1...c+1. out[0,0] = 1 / (2 + 0.1 * (1 + 9) / 3)^0.75.
        let y = try runOp(.lrn(LRNAttributes(size: 3, alpha: 0.1, beta: 0.75, k: 2)), x)
        assertClose(y, [1, 4, 1, 2], [0.5296846787239058, -1.1297076969257336, 1.5722385268497736,
                                      0.23904362416472805, -0.508062512101457, 1.9123489933178244,
                                      1.1199172116271048, 0.9584146563694087])
    }

    func testLRNEvenSizeWindowLeansBack() throws {
        // size 2: channels c-1...c. out[3,1] = 2 / (1 + 0.3 * (16 + 4) / 2)^0.5 = 1.
        let y = try runOp(.lrn(LRNAttributes(size: 2, alpha: 0.3, beta: 0.5, k: 1)), x)
        assertClose(y, [1, 4, 1, 2], [0.9325048082403138, -1.5811388300841895, 1.8973665961010275,
                                      0.39073233258228174, -0.6324555320336759, 2.157439559882375,
                                      1.5118578920369088, 1])
    }

    func testBatchNormFeatureMaps() throws {
        let x = tensor([2, 2, 2, 2], [1, 2, 3, 4, -1, 0, 1, 2, 5, 6, 7, 8, 0, 0, 0, 0])
        let y = try runOp(.batchNorm(BatchNormAttributes()), x, parameters: [
            "weight": tensor([2], [1.5, -2]), "bias": tensor([2], [0.1, 3]),
            "running_mean": tensor([2], [2, -0.5]), "running_var": tensor([2], [4, 0.25]),
        ])
        assertClose(y, [2, 2, 2, 2], [
            -0.6499990625017579, 0.1, 0.8499990625017578, 1.5999981250035158,
            4.99996000119996, 1.0000399988000401, -2.9998800035998796, -6.9998000059997985,
            2.349997187505273, 3.0999962500070315, 3.849995312508789, 4.599994375010546,
            1.0000399988000401, 1.0000399988000401, 1.0000399988000401, 1.0000399988000401,
        ])
    }

    func testBatchNormVectors() throws {
        let x = tensor([2, 3], [1, 2, 3, -1, 0, 10])
        let y = try runOp(.batchNorm(BatchNormAttributes(epsilon: 0.1)), x, parameters: [
            "weight": tensor([3], [2, 1, 0.5]), "bias": tensor([3], [0, -1, 1]),
            "running_mean": tensor([3], [0.5, 2, -1]), "running_var": tensor([3], [1, 9, 0.5]),
        ])
        assertClose(y, [2, 3], [0.9534625892455922, -1, 3.581988897471611,
                                -2.8603877677367766, -1.6629935441317958, 8.100469468046931])
    }
}
