// Flatten, concat and softmax.

import CNNCIR
import CNNCInterpreter
import XCTest

final class LayoutTests: XCTestCase {
    func testFlattenKeepsNCHWOrder() throws {
        let x = iota([2, 2, 1, 3])
        assertClose(try runOp(.flatten, x), [2, 6], x.data, tolerance: Tolerance.exact)
    }

    func testConcatChannelsPerSample() throws {
        // Sample by sample: a's channels, then b's.
        let a = tensor([2, 1, 1, 2], [1, 2, 3, 4])
        let b = tensor([2, 2, 1, 2], [10, 11, 12, 13, 20, 21, 22, 23])
        assertClose(try runOp(.concat, [a, b]), [2, 3, 1, 2], [1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23],
                    tolerance: Tolerance.exact)
    }

    func testConcatFeatures() throws {
        let a = tensor([2, 1], [1, 2]), b = tensor([2, 2], [10, 11, 20, 21]), c = tensor([2, 1], [-1, -2])
        assertClose(try runOp(.concat, [a, b, c]), [2, 4], [1, 10, 11, -1, 2, 20, 21, -2], tolerance: Tolerance.exact)
    }

    func testSoftmaxFeaturesIsStable() throws {
        // The second row would overflow exp() without subtracting the maximum.
        let x = tensor([2, 4], [1, 2, 3, 4, 1000, 1001, 1002, -5])
        assertClose(try runOp(.softmax, x), [2, 4], [
            0.03205860328008499, 0.08714431874203257, 0.23688281808991013, 0.6439142598879724,
            0.09003057317038046, 0.24472847105479764, 0.6652409557748218, 0,
        ])
    }

    func testSoftmaxOverChannelsAtEachPosition() throws {
        // Position 0 holds channels (1, 2, 3); position 1 holds (0, -1, 5).
        let x = tensor([1, 3, 1, 2], [1, 0, 2, -1, 3, 5])
        assertClose(try runOp(.softmax, x), [1, 3, 1, 2], [
            0.09003057317038046, 0.006676412513376451, 0.24472847105479764,
            0.0024561149044509535, 0.6652409557748218, 0.9908674725821726,
        ])
    }
}
