// Convolution against hand-computed cases (expected values from an independent numpy
// reference that zero-pads explicitly and slides the window; spot-checked by hand).

import CNNCIR
import CNNCInterpreter
import XCTest

final class ConvTests: XCTestCase {
    func testStride2Pad1() throws {
        // x = 1...16 as 4x4; out[0,0] = w[1,1]*1 + w[1,2]*2 + w[2,1]*5 + w[2,2]*6 + 0.5 = 14.5
        let op = Op.conv(ConvAttributes(filters: 1, kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1)))
        let y = try runOp(op, iota([1, 1, 4, 4]), parameters: [
            "weight": tensor([1, 1, 3, 3], [1, 0, -1, 2, 1, 0, 0, -1, 3]),
            "bias": tensor([1], [0.5]),
        ])
        assertClose(y, [1, 1, 2, 2], [14.5, 24.5, 32.5, 62.5], tolerance: Tolerance.exact)
    }

    func testDilation2() throws {
        // 5x5 input 1...25, 3x3 kernel dilated to 5x5, pad 1: 3x3 output.
        let op = Op.conv(ConvAttributes(filters: 1, kernel: Pair(3), padding: Padding(1, 1), dilation: Pair(2)))
        let y = try runOp(op, iota([1, 1, 5, 5]), parameters: [
            "weight": tensor([1, 1, 3, 3], [1, 2, 0, -1, 1, 0, 0, 0, 2]),
            "bias": tensor([1], [-1]),
        ])
        assertClose(y, [1, 1, 3, 3], [44, 41, 1, 63, 58, 11, 30, 23, 26], tolerance: Tolerance.exact)
    }

    func testGroups2() throws {
        // 4 channels in 2 groups; filters 0-1 read channels 0-1, filters 2-3 read channels 2-3.
        let op = Op.conv(ConvAttributes(filters: 4, kernel: Pair(2), groups: 2, bias: false))
        let x = iota([1, 4, 3, 3], from: -10)
        let w = Tensor(shape: [4, 2, 2, 2], data: (0..<32).map { Double($0 % 5 - 2) })
        let y = try runOp(op, x, parameters: ["weight": w])
        assertClose(y, [1, 4, 2, 2], [19, 16, 10, 7, -10, -9, -7, -6, -4, -4, -4, -4, -21, -22, -24, -25],
                    tolerance: Tolerance.exact)
    }

    func testDepthwise() throws {
        let op = Op.conv(ConvAttributes(filters: 3, kernel: Pair(3), padding: Padding(1, 1), groups: 3))
        let x = tensor([1, 3, 3, 3], [-5, 2, -2, 5, 1, -3, 4, 0, -4, 3, -1, -5, 2, -2, 5, 1, -3, 4,
                                      0, -4, 3, -1, -5, 2, -2, 5, 1])
        let w = tensor([3, 1, 3, 3], [-3, 2, 0, -2, 3, 1, -1, -3, 2, 0, -2, 3, 1, -1, -3, 2, 0, -2,
                                      3, 1, -1, -3, 2, 0, -2, 3, 1])
        let y = try runOp(op, x, parameters: ["weight": w, "bias": tensor([3], [1, 2, 3])])
        assertClose(y, [1, 3, 3, 3], [-25, 1, -1, -5, -2, -8, 23, -24, -20, 6, 15, 2, 3, -28, -1, 0, 13, -15,
                                      -5, -16, 37, 4, 9, 6, 3, 9, -23], tolerance: Tolerance.exact)
    }

    func testAsymmetricPaddingRectangularKernelAndStride() throws {
        // 4x5 input, 2x3 kernel, stride 2x1, pad top 1 left 0 bottom 0 right 2: 2x5 output.
        let op = Op.conv(ConvAttributes(filters: 1, kernel: Pair(2, 3), stride: Pair(2, 1),
                                        padding: Padding(top: 1, left: 0, bottom: 0, right: 2)))
        let y = try runOp(op, iota([1, 1, 4, 5], from: 0), parameters: [
            "weight": tensor([1, 1, 2, 3], [1, -1, 2, 0, 3, 1]),
            "bias": tensor([1], [0]),
        ])
        assertClose(y, [1, 1, 2, 5], [5, 9, 13, 12, 0, 58, 64, 70, 41, 9], tolerance: Tolerance.exact)
    }

    func testBatchOfTwoMultiChannelNoBias() throws {
        let op = Op.conv(ConvAttributes(filters: 3, kernel: Pair(2), bias: false))
        let x = tensor([2, 2, 3, 3], [-3, 0, 3, -1, 2, -2, 1, -3, 0, 3, -1, 2, -2, 1, -3, 0, 3, -1,
                                      2, -2, 1, -3, 0, 3, -1, 2, -2, 1, -3, 0, 3, -1, 2, -2, 1, -3])
        let w = tensor([3, 2, 2, 2], [-4, 1, -3, 2, -2, 3, -1, 4, 0, -4, 1, -3, 2, -2, 3, -1, 4, 0,
                                      -4, 1, -3, 2, -2, 3])
        let y = try runOp(op, x, parameters: ["weight": w])
        assertClose(y, [2, 3, 2, 2], [16, -12, 16, -19, -6, -4, -7, 23, -10, -14, 6, 2,
                                      -19, 30, 16, -12, 23, -24, -6, -4, 2, 12, -10, -14],
                    tolerance: Tolerance.exact)
    }

    func testPaddingLargerThanKernelReach() throws {
        // A 1x1 kernel with pad 1: the border of the output is the bias alone.
        let op = Op.conv(ConvAttributes(filters: 1, kernel: Pair(1), padding: Padding(1, 1)))
        let y = try runOp(op, tensor([1, 1, 1, 1], [3]), parameters: [
            "weight": tensor([1, 1, 1, 1], [2]), "bias": tensor([1], [0.5]),
        ])
        assertClose(y, [1, 1, 3, 3], [0.5, 0.5, 0.5, 0.5, 6.5, 0.5, 0.5, 0.5, 0.5], tolerance: Tolerance.exact)
    }
}
