// The interpreter's backward pass against central finite differences in Double, for every
// op: each op in a tiny graph ending in dense -> softmax cross-entropy (training mode, all
// parameter and input gradients), and each op alone through `inputGradient` with random
// output weights (inference mode). Inputs are built to stay off kinks (relu-like ops at 0,
// max-pool ties).

import CNNCIR
import CNNCInterpreter
import XCTest

final class GradientCheckTests: XCTestCase {
    let batch = 2

    func conv(_ filters: Int, _ kernel: Pair, stride: Pair = Pair(1), padding: Padding = .zero,
              dilation: Pair = Pair(1), groups: Int = 1, bias: Bool = true) -> Op {
        .conv(ConvAttributes(filters: filters, kernel: kernel, stride: stride, padding: padding,
                             dilation: dilation, groups: groups, bias: bias))
    }

    func input(_ name: String, _ shape: [Int]) -> Node { Node(name: name, op: .input(Shape(shape)), inputs: []) }
    func input(_ shape: [Int]) -> Node { input("x", shape) }
    func node(_ name: String, _ op: Op, _ inputs: String...) -> Node { Node(name: name, op: op, inputs: inputs) }
    func logits(_ from: String, units: Int = 3) -> Node { node("logits", .dense(DenseAttributes(units: units)), from) }

    /// `x (shape) -> op -> dense logits`, checked in training mode with seeded parameters.
    func checkOpInTraining(_ label: String, _ op: Op, input shape: [Int], x: Tensor? = nil) throws {
        let graph = makeGraph([input(shape), node("y", op, "x"), logits("y")])
        let x = x ?? awayFromZero("x", [batch] + shape)
        _ = try checkTrainingGradients(label, graph, parameters: gradientParameters(graph), inputs: ["x": x],
                                       labels: cyclingLabels(x.shape[0], classes: 3))
    }

    /// `x (shape) -> op`, the op's input gradient checked in inference mode.
    func checkOpInInference(_ label: String, _ op: Op, input shape: [Int], x: Tensor? = nil) throws {
        let graph = makeGraph([input(shape), node("y", op, "x")])
        let x = x ?? awayFromZero("x", [batch] + shape)
        _ = try checkInputGradient(label, graph, parameters: gradientParameters(graph), inputs: ["x": x])
    }

    // MARK: - Linear layers

    func testConvGroupedDilatedStridedAsymmetricPadding() throws {
        let op = conv(4, Pair(3, 2), stride: Pair(2, 1), padding: Padding(top: 1, left: 0, bottom: 2, right: 1),
                      dilation: Pair(2, 1), groups: 2)
        try checkOpInTraining("conv groups=2 dilation=2x1 stride=2x1 pad=1,0,2,1", op, input: [4, 6, 5])
        try checkOpInInference("conv (input)", op, input: [4, 6, 5])
    }

    func testConvDepthwiseWithoutBias() throws {
        let op = conv(6, Pair(3), padding: Padding(1, 1), groups: 3, bias: false)
        try checkOpInTraining("conv depthwise x2, no bias", op, input: [3, 4, 4])
    }

    func testDenseOverFeatureMapsAndVectors() throws {
        // dense reads a 2x3x2 feature map (implicit flatten), then a second dense without bias.
        let graph = makeGraph([
            input([2, 3, 2]),
            node("d1", .dense(DenseAttributes(units: 4)), "x"),
            node("logits", .dense(DenseAttributes(units: 3, bias: false)), "d1"),
        ])
        _ = try checkTrainingGradients("dense (flattening) + dense no bias", graph,
                                       parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [3, 2, 3, 2])], labels: [2, 0, 1])
        try checkOpInInference("dense (input)", .dense(DenseAttributes(units: 3)), input: [2, 2, 2])
    }

    // MARK: - Element-wise

    func testEveryActivation() throws {
        let activations: [(String, Activation)] = [
            ("relu", .relu), ("leaky_relu", .leakyRelu(alpha: 0.1)), ("sigmoid", .sigmoid), ("tanh", .tanh),
            ("swish", .swish), ("elu", .elu(alpha: 0.7)),
        ]
        for (name, activation) in activations {
            try checkOpInTraining(name, .activation(activation), input: [2, 2, 3])
            try checkOpInInference("\(name) (input)", .activation(activation), input: [5])
        }
    }

    func testActivationsAfterConvWithBatchNorm() throws {
        // A larger slope range: conv -> swish and elu on values up to a few units.
        for activation in [Activation.swish, .elu(alpha: 1.3), .sigmoid, .tanh] {
            let graph = makeGraph([
                input([2, 4, 4]),
                node("c", conv(3, Pair(3), padding: Padding(1, 1)), "x"),
                node("a", .activation(activation), "c"),
                logits("a"),
            ])
            var x = awayFromZero("x", [2, 2, 4, 4])
            x.data = x.data.map { $0 * 3 }
            _ = try checkTrainingGradients("conv -> \(activation)", graph, parameters: gradientParameters(graph),
                                           inputs: ["x": x], labels: [1, 2])
        }
    }

    func testReLUDerivativeAtZeroIsZero() throws {
        let graph = makeGraph([input([3]), node("y", .activation(.relu), "x")])
        let interpreter = try Interpreter(graph: graph, parameters: [:])
        let g = try interpreter.inputGradient(inputs: ["x": tensor([1, 3], [-1, 0, 2])], output: "y",
                                              outputWeights: tensor([1, 3], [5, 7, 11]))
        XCTAssertEqual(g["x"], tensor([1, 3], [0, 0, 11]))
    }

    func testPReLUSharedAndPerChannel() throws {
        for shared in [true, false] {
            let label = shared ? "prelu shared" : "prelu per channel"
            try checkOpInTraining(label, .prelu(PReLUAttributes(shared: shared)), input: [3, 2, 2])
            try checkOpInInference("\(label) (input)", .prelu(PReLUAttributes(shared: shared)), input: [3, 2, 2])
            // PReLU on vectors: one slope per feature.
            try checkOpInTraining("\(label), vectors", .prelu(PReLUAttributes(shared: shared)), input: [4])
        }
    }

    func testAddWithSharedInputsAccumulates() throws {
        // x feeds c and s; c feeds t and s; s feeds twice = s + s. Every gradient is a sum.
        let graph = makeGraph([
            input([2, 3, 3]),
            node("c", conv(2, Pair(3), padding: Padding(1, 1)), "x"),
            node("t", .activation(.tanh), "c"),
            node("s", .add, "t", "c", "x"),
            node("twice", .add, "s", "s"),
            logits("twice"),
        ])
        _ = try checkTrainingGradients("add (residual, shared inputs)", graph, parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [2, 2, 3, 3])], labels: [0, 2])
    }

    func testSqueezeExcitationGateAndBroadcastArithmetic() throws {
        // x -> conv c; gate = hardsigmoid(conv(relu(conv(gap(c))))) per channel; c * gate, then
        // (.. - per-sample mean) / (sigmoid + 1) per channel, then an affine: every operand of
        // mul, sub and div gets its gradient, broadcast ones summed over their runs.
        let graph = makeGraph([
            input([2, 4, 4]),
            node("c", conv(4, Pair(3), padding: Padding(1, 1)), "x"),
            node("pool", .globalAvgPool, "c"),
            node("squeeze", conv(2, Pair(1)), "pool"),
            node("r", .activation(.relu), "squeeze"),
            node("expand", conv(4, Pair(1)), "r"),
            node("gate", .activation(.hardSigmoid(alpha: 0.2, beta: 0.5)), "expand"),
            node("scaled", .binary(.mul), "c", "gate"),
            node("m", .dense(DenseAttributes(units: 1)), "scaled"),
            node("centered", .binary(.sub), "scaled", "m"),
            node("s", .activation(.sigmoid), "expand"),
            node("one", .activation(.affine(scale: 1, shift: 1)), "s"),
            node("divided", .binary(.div), "centered", "one"),
            node("out", .activation(.affine(scale: -0.5, shift: 0.25)), "divided"),
            logits("out"),
        ])
        _ = try checkTrainingGradients("squeeze-excitation mul, sub per sample, div per channel, affine", graph,
                                       parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [2, 2, 4, 4])], labels: [0, 2])
        for op in [BinaryOp.mul, .sub, .div] {
            let same = makeGraph([input("a", [3, 2, 2]), input("b", [3, 2, 2]), node("y", .binary(op), "a", "b")])
            var b = awayFromZero("b", [batch, 3, 2, 2])
            b.data = b.data.map { abs($0) + 0.5 }
            _ = try checkInputGradient("\(op.rawValue) same shape (inputs)", same, parameters: [:],
                                       inputs: ["a": awayFromZero("a", [batch, 3, 2, 2]), "b": b])
        }
    }

    func testShuffleAndSliceAsInShuffleNet() throws {
        // ShuffleNet's unit: split the channels, transform one half, concatenate, shuffle.
        let graph = makeGraph([
            input([4, 3, 3]),
            node("left", .slice(start: 0, end: 2), "x"),
            node("right", .slice(start: 2, end: 4), "x"),
            node("c", conv(2, Pair(3), padding: Padding(1, 1)), "right"),
            node("t", .activation(.tanh), "c"),
            node("cat", .concat, "left", "t"),
            node("mixed", .shuffle(groups: 2), "cat"),
            logits("mixed"),
        ])
        _ = try checkTrainingGradients("slice, concat, shuffle", graph, parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [2, 4, 3, 3])], labels: [1, 2])
        try checkOpInInference("shuffle groups=3 (input)", .shuffle(groups: 3), input: [6, 2, 2])
        try checkOpInInference("slice 1..<4 (input)", .slice(start: 1, end: 4), input: [5, 2, 2])
        // The permutation itself: out[c] = in[(c % G) * (C / G) + c / G].
        let shuffled = try Interpreter(graph: makeGraph([input([6, 1, 1]), node("y", .shuffle(groups: 2), "x")]),
                                       parameters: [:]).run(["x": tensor([1, 6, 1, 1], [0, 1, 2, 3, 4, 5])])["y"]
        XCTAssertEqual(shuffled?.data, [0, 3, 1, 4, 2, 5])
    }

    func testPadEveryMode() throws {
        for mode in PadMode.allCases {
            let a = PadAttributes(padding: Padding(top: 2, left: 1, bottom: 1, right: 2),
                                  channelsBefore: mode == .constant ? 1 : 0, channelsAfter: mode == .constant ? 2 : 0,
                                  mode: mode, value: 0.25)
            try checkOpInTraining("pad \(mode.rawValue)", .pad(a), input: [2, 3, 3])
            try checkOpInInference("pad \(mode.rawValue) (input)", .pad(a), input: [2, 3, 4])
        }
        // The sources: reflect mirrors without the edge, edge repeats it.
        let x = tensor([1, 1, 1, 3], [1, 2, 3])
        for (mode, expected) in [(PadMode.reflect, [3.0, 2, 1, 2, 3, 2]), (.edge, [1, 1, 1, 2, 3, 3]), (.constant, [7, 7, 1, 2, 3, 7])] {
            let graph = makeGraph([input([1, 1, 3]), node("y", .pad(PadAttributes(padding: Padding(top: 0, left: 2, bottom: 0, right: 1),
                                                                                  mode: mode, value: 7)), "x")])
            XCTAssertEqual(try Interpreter(graph: graph, parameters: [:]).run(["x": x])["y"]?.data, expected, mode.rawValue)
        }
    }

    func testUpsampleNearest() throws {
        try checkOpInTraining("upsample 2x3", .upsample(UpsampleAttributes(scale: Pair(2, 3))), input: [2, 2, 3])
        try checkOpInInference("upsample 2 (input)", .upsample(UpsampleAttributes(scale: Pair(2))), input: [3, 2, 2])
        let graph = makeGraph([input([1, 1, 2]), node("y", .upsample(UpsampleAttributes(scale: Pair(2, 2))), "x")])
        XCTAssertEqual(try Interpreter(graph: graph, parameters: [:]).run(["x": tensor([1, 1, 1, 2], [1, 2])])["y"]?.data,
                       [1, 1, 2, 2, 1, 1, 2, 2])
    }

    func testUpsampleBilinear() throws {
        for corners in [false, true] {
            let op = Op.upsample(UpsampleAttributes(scale: Pair(2, 3), mode: .bilinear, alignCorners: corners))
            try checkOpInTraining("upsample bilinear align_corners=\(corners)", op, input: [2, 3, 2])
            try checkOpInInference("upsample bilinear align_corners=\(corners) (input)", op, input: [2, 2, 3])
        }
        // [1, 2] by 2, as PyTorch's F.interpolate(mode="bilinear") gives it: half-pixel centres
        // [1, 1.25, 1.75, 2]; align_corners [1, 4/3, 5/3, 2].
        let x = tensor([1, 1, 1, 2], [1, 2])
        let cases: [(Bool, [Double])] = [(false, [1, 1.25, 1.75, 2]), (true, [1, 4.0 / 3, 5.0 / 3, 2])]
        for (corners, expected) in cases {
            let op = Op.upsample(UpsampleAttributes(scale: Pair(1, 2), mode: .bilinear, alignCorners: corners))
            let y = try XCTUnwrap(Interpreter(graph: makeGraph([input([1, 1, 2]), node("y", op, "x")]), parameters: [:]).run(["x": x])["y"])
            for (a, b) in zip(y.data, expected) { XCTAssertEqual(a, b, accuracy: 1e-12, "align_corners=\(corners)") }
        }
    }

    // MARK: - Transposed convolution

    func testConvTransposeGradients() throws {
        let strided = Op.convTranspose(ConvTransposeAttributes(filters: 3, kernel: Pair(3), stride: Pair(2),
                                                               padding: Padding(1, 1), outputPadding: Pair(1)))
        try checkOpInTraining("conv_transpose stride=2 pad=1 output_pad=1", strided, input: [2, 3, 3])
        try checkOpInInference("conv_transpose stride=2 (input)", strided, input: [2, 3, 2])
        let grouped = Op.convTranspose(ConvTransposeAttributes(
            filters: 4, kernel: Pair(2, 3), stride: Pair(1, 2), padding: Padding(top: 0, left: 2, bottom: 1, right: 0),
            dilation: Pair(2, 1), groups: 2, bias: false))
        try checkOpInTraining("conv_transpose groups=2 dilation=2x1 stride=1x2 asymmetric pad", grouped, input: [4, 3, 3])
    }

    func testConvTransposeScattersEachInputsFilter() throws {
        // One channel, 2x2 input, 2x2 kernel of ones, stride 2: each input becomes a 2x2 block
        // (plus the bias 0.5); stride 1 overlaps the blocks, the middle summing all four.
        let x = tensor([1, 1, 2, 2], [1, 2, 3, 4])
        let ones = Tensor(shape: [1, 1, 2, 2], data: [1, 1, 1, 1])
        for (stride, expected) in [
            (2, [1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5]),
            (1, [1.5, 3.5, 2.5, 4.5, 10.5, 6.5, 3.5, 7.5, 4.5]),
        ] {
            let op = Op.convTranspose(ConvTransposeAttributes(filters: 1, kernel: Pair(2), stride: Pair(stride)))
            let graph = makeGraph([input([1, 2, 2]), node("y", op, "x")])
            let y = try Interpreter(graph: graph, parameters: ["y.weight": ones, "y.bias": Tensor(shape: [1], data: [0.5])])
                .run(["x": x])["y"]
            XCTAssertEqual(y?.data, expected, "stride \(stride)")
        }
    }

    func testConcatFeatureMapsAndVectors() throws {
        // Two inputs: x reaches the concat three ways; v is concatenated with a dense of itself.
        let graph = makeGraph([
            input("x", [2, 2, 2]),
            input("v", [3]),
            node("a", conv(3, Pair(1)), "x"),
            node("b", .activation(.sigmoid), "x"),
            node("cat", .concat, "a", "b", "x"),
            node("f", .dense(DenseAttributes(units: 2)), "cat"),
            node("d", .dense(DenseAttributes(units: 2)), "v"),
            node("vcat", .concat, "f", "d", "v"),
            logits("vcat"),
        ])
        _ = try checkTrainingGradients("concat", graph, parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [2, 2, 2, 2]), "v": awayFromZero("v", [2, 3])],
                                       labels: [1, 0])
        let pair = makeGraph([input("a", [2, 2, 1]), input("b", [1, 2, 1]), node("y", .concat, "a", "b")])
        _ = try checkInputGradient("concat (inputs)", pair, parameters: [:],
                                   inputs: ["a": awayFromZero("a", [2, 2, 2, 1]), "b": awayFromZero("b", [2, 1, 2, 1])])
    }

    func testDropoutWithTheStepsMask() throws {
        // rate 0.4 on 2x2x3x3: the gradient of each input is zero exactly where the mask of
        // `DropoutMask` drops it, and the kept ones are scaled by 1/(1-rate).
        let graph = makeGraph([input([2, 3, 3]), node("drop", .dropout(rate: 0.4), "x"), logits("drop")])
        let x = awayFromZero("x", [2, 2, 3, 3])
        let report = try checkTrainingGradients("dropout", graph, parameters: gradientParameters(graph),
                                                inputs: ["x": x], labels: [0, 1], step: 5, seed: 99)
        XCTAssertGreaterThan(report.checked, 0)
        let result = try Interpreter(graph: graph, parameters: gradientParameters(graph)).trainingStep(
            inputs: ["x": x], labels: [0, 1], step: 5, seed: 99, sgd: SGDConfig(learningRate: 0), velocity: [:])
        let gradient = result.inputGradients["x"]!
        var dropped = 0
        for i in 0..<x.count {
            let keep = DropoutMask.keep(seed: 99, node: "drop", step: 5, index: i, rate: 0.4)
            if !keep { dropped += 1 }
            XCTAssertEqual(gradient.data[i] == 0, !keep, "element \(i)")
        }
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertLessThan(dropped, x.count)
        // At inference dropout is the identity.
        try checkOpInInference("dropout (inference, identity)", .dropout(rate: 0.4), input: [3])
    }

    // MARK: - Pooling

    func testMaxPool() throws {
        let cases: [(String, PoolAttributes, [Int])] = [
            ("maxpool 2 stride 2", PoolAttributes(kernel: Pair(2), stride: Pair(2)), [2, 4, 4]),
            ("maxpool 2 stride 1 (overlapping)", PoolAttributes(kernel: Pair(2), stride: Pair(1)), [1, 4, 3]),
            ("maxpool 3 stride 2 pad 1 ceil", PoolAttributes(kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1),
                                                             ceilMode: true), [2, 6, 6]),
            ("maxpool 2x3 stride 2 asymmetric pad ceil",
             PoolAttributes(kernel: Pair(2, 3), stride: Pair(2), padding: Padding(top: 1, left: 0, bottom: 0, right: 1),
                            ceilMode: true), [1, 5, 5]),
        ]
        for (label, attributes, shape) in cases {
            let x = distinctValues([batch] + shape)
            try checkOpInTraining(label, .maxPool(attributes), input: shape, x: x)
            try checkOpInInference("\(label) (input)", .maxPool(attributes), input: shape, x: x)
        }
    }

    func testMaxPoolGradientGoesToFirstMaximumAndNeverToPadding() throws {
        // A tie: both 5s are in the window; the first in scan order takes the gradient. All
        // values negative with padding 1: padding never wins, a real element takes it.
        let graph = makeGraph([input([1, 2, 2]), node("y", .maxPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))), "x")])
        let g = try Interpreter(graph: graph, parameters: [:]).inputGradient(
            inputs: ["x": tensor([1, 1, 2, 2], [1, 5, 5, 2])], output: "y", outputWeights: tensor([1, 1, 1, 1], [3]))
        XCTAssertEqual(g["x"], tensor([1, 1, 2, 2], [0, 3, 0, 0]))

        let padded = makeGraph([input([1, 2, 2]), node("y", .maxPool(PoolAttributes(
            kernel: Pair(3), stride: Pair(1), padding: Padding(1, 1))), "x")])
        let h = try Interpreter(graph: padded, parameters: [:]).inputGradient(
            inputs: ["x": tensor([1, 1, 2, 2], [-4, -3, -2, -1])], output: "y",
            outputWeights: tensor([1, 1, 2, 2], [1, 10, 100, 1000]))
        XCTAssertEqual(h["x"], tensor([1, 1, 2, 2], [0, 0, 0, 1111]))
    }

    func testAvgPool() throws {
        let cases: [(String, PoolAttributes, [Int])] = [
            ("avgpool 3 stride 2 pad 1 include pad", PoolAttributes(kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1)),
             [2, 4, 4]),
            ("avgpool 3 stride 2 pad 1 exclude pad",
             PoolAttributes(kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), countIncludePad: false), [2, 4, 4]),
            ("avgpool 3 stride 2 pad 1 ceil include pad",
             PoolAttributes(kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), ceilMode: true), [1, 6, 6]),
            ("avgpool 3 stride 2 pad 1 ceil exclude pad",
             PoolAttributes(kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), ceilMode: true,
                            countIncludePad: false), [1, 6, 6]),
            ("avgpool 2 stride 2 ceil no pad", PoolAttributes(kernel: Pair(2), stride: Pair(2), ceilMode: true), [1, 5, 5]),
            ("avgpool 2 asymmetric pad",
             PoolAttributes(kernel: Pair(2), stride: Pair(2), padding: Padding(top: 1, left: 0, bottom: 0, right: 1)),
             [2, 3, 3]),
        ]
        for (label, attributes, shape) in cases {
            try checkOpInTraining(label, .avgPool(attributes), input: shape)
            try checkOpInInference("\(label) (input)", .avgPool(attributes), input: shape)
        }
    }

    func testGlobalAvgPool() throws {
        try checkOpInTraining("global_avgpool", .globalAvgPool, input: [3, 3, 2])
        try checkOpInInference("global_avgpool (input)", .globalAvgPool, input: [2, 2, 3])
    }

    // MARK: - Normalization

    func testLRN() throws {
        // Large alpha so that the cross-channel terms carry weight; odd, even and a window
        // wider than the channels.
        let cases: [(String, LRNAttributes)] = [
            ("lrn size 3", LRNAttributes(size: 3, alpha: 0.9, beta: 0.75, k: 1)),
            ("lrn size 2", LRNAttributes(size: 2, alpha: 0.6, beta: 0.5, k: 2)),
            ("lrn size 7 (wider than channels)", LRNAttributes(size: 7, alpha: 1.5, beta: 1.2, k: 0.5)),
        ]
        for (label, attributes) in cases {
            var x = awayFromZero("x", [batch, 5, 2, 2])
            x.data = x.data.map { $0 * 2 }
            try checkOpInTraining(label, .lrn(attributes), input: [5, 2, 2], x: x)
            try checkOpInInference("\(label) (input)", .lrn(attributes), input: [5, 2, 2], x: x)
        }
    }

    func testBatchNormTrainingFeatureMaps() throws {
        // conv -> batch norm on batch statistics -> dense: the gradient flows through the
        // batch mean and variance to every sample. The conv bias, which the batch mean
        // subtracts again, gets none.
        let graph = makeGraph([
            input([2, 3, 3]),
            node("c", conv(3, Pair(2)), "x"),
            node("bn", .batchNorm(BatchNormAttributes(epsilon: 1e-3)), "c"),
            logits("bn"),
        ])
        _ = try checkTrainingGradients("batchnorm training (feature maps)", graph,
                                       parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [3, 2, 3, 3])], labels: [0, 1, 2],
                                       zeroGradients: ["c.bias"])
    }

    func testBatchNormTrainingVectors() throws {
        let graph = makeGraph([
            input([4]),
            node("d", .dense(DenseAttributes(units: 3)), "x"),
            node("bn", .batchNorm(BatchNormAttributes()), "d"),
            node("t", .activation(.tanh), "bn"),
            logits("t"),
        ])
        _ = try checkTrainingGradients("batchnorm training (vectors)", graph, parameters: gradientParameters(graph),
                                       inputs: ["x": awayFromZero("x", [4, 4])], labels: [0, 1, 2, 1],
                                       zeroGradients: ["d.bias"])
    }

    func testBatchNormInference() throws {
        try checkOpInInference("batchnorm inference (input)", .batchNorm(BatchNormAttributes()), input: [3, 2, 2])
    }

    // MARK: - Layout and output

    func testFlatten() throws {
        try checkOpInTraining("flatten", .flatten, input: [2, 2, 3])
        try checkOpInInference("flatten (input)", .flatten, input: [2, 1, 3])
    }

    func testSoftmaxNotFusedIntoTheLoss() throws {
        // Softmax over the channels of a feature map, then dense: the Jacobian-vector product.
        try checkOpInTraining("softmax (channels, unfused)", .softmax, input: [3, 2, 2])
        try checkOpInInference("softmax (channels, input)", .softmax, input: [4, 1, 2])
        try checkOpInInference("softmax (vectors, input)", .softmax, input: [5])
    }

    func testSoftmaxFusedIntoTheLoss() throws {
        // The graph's output is a softmax: its input is the logits.
        let graph = makeGraph([
            input([5]),
            node("f", .dense(DenseAttributes(units: 4)), "x"),
            node("prob", .softmax, "f"),
        ])
        let parameters = gradientParameters(graph)
        let x = awayFromZero("x", [3, 5])
        _ = try checkTrainingGradients("softmax cross-entropy (fused)", graph, parameters: parameters,
                                       inputs: ["x": x], labels: [3, 0, 2])
        let interpreter = try Interpreter(graph: graph, parameters: parameters)
        let result = try interpreter.trainingStep(inputs: ["x": x], labels: [3, 0, 2], step: 0, seed: 1,
                                                  sgd: SGDConfig(learningRate: 0), velocity: [:])
        XCTAssertEqual(result.logits, try interpreter.run(["x": x])["f"])
    }

    func testEveryOpGraphEndToEnd() throws {
        // The every-op graph of BatchTests trained on its first output through all of it,
        // with parameters only checked on a subset to keep the test fast: conv, dense, PReLU.
        let graph = BatchTests.everyOp()
        let parameters = BatchTests.parameters(graph)
        let x = SeededData.input(name: "x", shape: [2, 3, 9, 9], seed: 2)
        let interpreter = try Interpreter(graph: graph, parameters: parameters)
        let labels = [4, 1]
        let result = try interpreter.trainingStep(inputs: ["x": x], labels: labels, step: 1, seed: 4,
                                                  sgd: SGDConfig(learningRate: 0), velocity: [:])
        func loss(_ p: [String: Tensor], _ x: Tensor) throws -> Double {
            try Interpreter(graph: graph, parameters: p).trainingStep(
                inputs: ["x": x], labels: labels, step: 1, seed: 4, sgd: SGDConfig(learningRate: 0), velocity: [:]).loss
        }
        var report = GradientCheckReport(label: "every-op graph (sampled)")
        let h = Tolerance.step
        for name in ["c1.weight", "bn1.weight", "pr1.weight", "dw.weight", "c3.bias", "f1.weight", "bn2.bias",
                     "pr2.weight", "f2.weight"] {
            let gradient = result.gradients[name]!
            for i in stride(from: 0, to: gradient.count, by: max(1, gradient.count / 6)) {
                var plus = parameters, minus = parameters
                plus[name]!.data[i] += h
                minus[name]!.data[i] -= h
                report.compare(gradient.data[i], (try loss(plus, x) - loss(minus, x)) / (2 * h),
                               at: "\(name)\(multiIndex(i, gradient.shape))")
            }
        }
        for i in stride(from: 0, to: x.count, by: 37) {
            var plus = x, minus = x
            plus.data[i] += h
            minus.data[i] -= h
            report.compare(result.inputGradients["x"]!.data[i], (try loss(parameters, plus) - loss(parameters, minus)) / (2 * h),
                           at: "input x\(multiIndex(i, x.shape))")
        }
        report.assertWithinTolerance()
    }
}
