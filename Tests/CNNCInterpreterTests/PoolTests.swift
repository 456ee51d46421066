// Max, average and global average pooling, with PyTorch's edge rules: padding never wins a
// max; ceil_mode windows are clipped; average divisors with and without count_include_pad.

import CNNCIR
import CNNCInterpreter
import XCTest

final class PoolTests: XCTestCase {
    /// 5x5 and 6x6 inputs with mixed signs.
    let x5 = tensor([1, 1, 5, 5], [-6, 1, -5, 2, -4, 3, -3, 4, -2, 5, -1, 6, 0, -6, 1, -5, 2, -4, 3, -3,
                                   4, -2, 5, -1, 6])
    let x6 = tensor([1, 1, 6, 6], [-8, -3, 2, 7, -5, 0, 5, -7, -2, 3, 8, -4, 1, 6, -6, -1, 4, -8,
                                   -3, 2, 7, -5, 0, 5, -7, -2, 3, 8, -4, 1, 6, -6, -1, 4, -8, -3])

    func pool(_ size: Int, _ stride: Int, pad: Int = 0, ceil: Bool = false, includePad: Bool = true) -> PoolAttributes {
        PoolAttributes(kernel: Pair(size), stride: Pair(stride), padding: Padding(pad, pad), ceilMode: ceil,
                       countIncludePad: includePad)
    }

    func testMaxPool2x2Stride2() throws {
        assertClose(try runOp(.maxPool(pool(2, 2)), iota([1, 1, 4, 4])), [1, 1, 2, 2], [6, 8, 14, 16],
                    tolerance: Tolerance.exact)
    }

    func testMaxPoolPaddingNeverWins() throws {
        // All inputs negative: zero padding would give 0; PyTorch gives the largest real element.
        let y = try runOp(.maxPool(pool(3, 2, pad: 1)), iota([1, 1, 4, 4], scale: -1))
        assertClose(y, [1, 1, 2, 2], [-1, -2, -5, -6], tolerance: Tolerance.exact)
    }

    func testMaxPoolCeilModeClipsLastWindow() throws {
        // 5x5, size 2 stride 2, ceil_mode: 3x3; the last row and column windows hold one input.
        let y = try runOp(.maxPool(pool(2, 2, ceil: true)), x5)
        assertClose(y, [1, 1, 3, 3], [3, 4, 5, 6, 3, 1, 4, 5, 6], tolerance: Tolerance.exact)
    }

    func testMaxPoolCeilModeWithPadding() throws {
        // 6x6, size 3 stride 2 pad 1, ceil_mode: 4x4; the last window starts at row 5 and runs
        // past the padded input (rows 5, 6, 7 of which only row 5 is real).
        let y = try runOp(.maxPool(pool(3, 2, pad: 1, ceil: true)), x6)
        assertClose(y, [1, 1, 4, 4], [5, 7, 8, 0, 6, 7, 8, 5, 6, 8, 8, 5, 6, 4, 4, -3], tolerance: Tolerance.exact)
    }

    func testCeilModeDropsWindowStartingInEndPadding() throws {
        // 5x5, size 2 stride 2 pad 1: ceil would give 4, but the 4th window would start in the
        // bottom padding, so PyTorch keeps 3.
        let y = try runOp(.maxPool(pool(2, 2, pad: 1, ceil: true)), x5)
        XCTAssertEqual(y.shape, [1, 1, 3, 3])
        assertClose(y, [1, 1, 3, 3], [-6, 1, 2, 3, 6, 5, 4, 5, 6], tolerance: Tolerance.exact)
    }

    func testMaxPoolPropagatesNaN() throws {
        let y = try runOp(.maxPool(pool(2, 2)), tensor([1, 1, 2, 2], [1, .nan, 3, 2]))
        XCTAssertTrue(y.data[0].isNaN)
    }

    func testAvgPoolCountIncludePad() throws {
        // out[0,0] = (1+2+5+6)/9: the 5 padded positions of the 3x3 window count.
        let y = try runOp(.avgPool(pool(3, 2, pad: 1)), iota([1, 1, 4, 4]))
        assertClose(y, [1, 1, 2, 2], [1.5555555555555556, 3.3333333333333335, 6.333333333333333, 11])
    }

    func testAvgPoolExcludePad() throws {
        // out[0,0] = (1+2+5+6)/4.
        let y = try runOp(.avgPool(pool(3, 2, pad: 1, includePad: false)), iota([1, 1, 4, 4]))
        assertClose(y, [1, 1, 2, 2], [3.5, 5, 9.5, 11])
    }

    func testAvgPoolCeilModeWithoutPaddingDividesByClippedWindow() throws {
        // The last window of each row/column covers one real element and no padding, so the
        // divisor is 2 (edges) or 1 (corner) even with count_include_pad: out[2,2] = x[4,4] = 6.
        let y = try runOp(.avgPool(pool(2, 2, ceil: true)), x5)
        assertClose(y, [1, 1, 3, 3], [-1.25, -0.25, 0.5, 0.5, -1.75, -1, 1, 2, 6])
    }

    func testAvgPoolCeilModeBeyondPaddedInputIncludePad() throws {
        // Window rows for output row 3: start 5, end min(5+3, 6+1) = 7, so rows 5 and 6 (pad)
        // count: divisor 2 per direction. out[3,3] = x[5,5] / 4 = -0.75.
        let y = try runOp(.avgPool(pool(3, 2, pad: 1, ceil: true)), x6)
        assertClose(y, [1, 1, 4, 4], [
            -1.4444444444444444, 0, 1, -0.6666666666666666,
            0.4444444444444444, -0.3333333333333333, 0.2222222222222222, -1.1666666666666667,
            -1.1111111111111112, 1.1111111111111112, -0.2222222222222222, 0.5,
            0, -0.5, -1.1666666666666667, -0.75,
        ])
    }

    func testAvgPoolCeilModeBeyondPaddedInputExcludePad() throws {
        let y = try runOp(.avgPool(pool(3, 2, pad: 1, ceil: true, includePad: false)), x6)
        assertClose(y, [1, 1, 4, 4], [
            -3.25, 0, 1.5, -2,
            0.6666666666666666, -0.3333333333333333, 0.2222222222222222, -2.3333333333333335,
            -1.6666666666666667, 1.1111111111111112, -0.2222222222222222, 1,
            0, -1, -2.3333333333333335, -3,
        ])
    }

    func testAvgPoolAsymmetricPadding() throws {
        // 3x3 input 1...9, size 2 stride 2, pad top 1 and right 1.
        let attributes = PoolAttributes(kernel: Pair(2), stride: Pair(2),
                                        padding: Padding(top: 1, left: 0, bottom: 0, right: 1))
        assertClose(try runOp(.avgPool(attributes), iota([1, 1, 3, 3])), [1, 1, 2, 2], [0.75, 0.75, 6, 3.75])
        var exclude = attributes
        exclude.countIncludePad = false
        assertClose(try runOp(.avgPool(exclude), iota([1, 1, 3, 3])), [1, 1, 2, 2], [1.5, 3, 6, 7.5])
    }

    func testPoolsRunPerChannelAndSample() throws {
        // Two samples of two channels: each plane pooled on its own.
        let x = tensor([2, 2, 2, 2], [1, 2, 3, 4, -1, -2, -3, -4, 5, 6, 7, 8, 0, 0, 0, 1])
        assertClose(try runOp(.maxPool(pool(2, 2)), x), [2, 2, 1, 1], [4, -1, 8, 1], tolerance: Tolerance.exact)
        assertClose(try runOp(.avgPool(pool(2, 2)), x), [2, 2, 1, 1], [2.5, -2.5, 6.5, 0.25], tolerance: Tolerance.exact)
    }

    func testGlobalAvgPool() throws {
        let x = tensor([1, 2, 2, 3], [1, 2, 3, 4, 5, 6, -1, -1, -1, -1, -1, 5])
        assertClose(try runOp(.globalAvgPool, x), [1, 2, 1, 1], [3.5, 0], tolerance: Tolerance.exact)
    }
}
