// Numerical tests of the backward kernels (BackwardKernels) and the training-mode forward
// kernels (TrainingForwardKernels) against the reference interpreter.
//
// Every case is a one-op graph whose operands are graph inputs. For each case the forward
// kernel (the inference kernel of KernelEmitter, or the training forward for batch norm and
// dropout) and the backward kernel are emitted into ONE self-contained C program, with the
// inputs, parameters and output gradient as float literals and every gradient buffer starting
// at 0.5 (the kernels must add into it). The program is compiled with
// `cc -std=c11 -O2 -fopenmp -Wall -Wextra -Werror`, run at 1, 2 and 4 threads (the printed
// results must be bitwise equal), built and run again under ASan/UBSan, and with clang when
// one is installed. The gradients, minus the 0.5, are compared with the interpreter's backward
// in training mode (Double) within `Tolerance.gradient`.

@testable import CNNCBackendC
import CNNCDriver
import CNNCIR
@testable import CNNCInterpreter
import Foundation
import XCTest

// MARK: - Cases

/// One op under test.
struct GradientCase: Sendable {
    /// How input values are drawn.
    enum Values: Sendable {
        /// Uniform in [-scale, scale].
        case uniform(Float)
        /// Multiples of `step` in [-3 step, 3 step]: exact zeros, ties and kinks.
        case quantized(Float)
        /// Uniform in [low, high] (divisors kept away from 0).
        case range(Float, Float)
    }

    /// Unique, a C identifier: names the op node, its functions and its arrays.
    var name: String
    /// The test method that checks it.
    var family: String
    var op: Op
    var inputs: [Shape]
    var batch = 2
    var values = Values.uniform(1)
    /// Per input; default all true.
    var inputNeedsGrad: [Bool]?
    /// When true no parameter gets a gradient (a frozen node).
    var frozen = false
}

/// Every case, grouped by family.
let gradientCases: [GradientCase] = {
    var cases: [GradientCase] = []
    func add(_ family: String, _ name: String, _ op: Op, _ inputs: [Shape], batch: Int = 2,
             values: GradientCase.Values = .uniform(1), needs: [Bool]? = nil, frozen: Bool = false) {
        cases.append(GradientCase(name: name, family: family, op: op, inputs: inputs, batch: batch, values: values,
                                  inputNeedsGrad: needs, frozen: frozen))
    }
    // Convolutions: padding, stride, dilation, asymmetric windows, groups, depthwise, 1x1.
    add("conv", "conv3x3", .conv(ConvAttributes(filters: 4, kernel: Pair(3), padding: Padding(1, 1))), [Shape([3, 6, 6])])
    add("conv", "conv_strided", .conv(ConvAttributes(
        filters: 6, kernel: Pair(3, 2), stride: Pair(2, 1), padding: Padding(top: 1, left: 0, bottom: 2, right: 1),
        dilation: Pair(2, 1), groups: 2, bias: false)), [Shape([4, 7, 6])], batch: 3)
    add("conv", "conv_depthwise", .conv(ConvAttributes(
        filters: 8, kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), groups: 4)), [Shape([4, 7, 7])])
    add("conv", "conv_pointwise", .conv(ConvAttributes(filters: 3, kernel: Pair(1))), [Shape([5, 4, 4])])
    add("conv", "conv_dilated", .conv(ConvAttributes(
        filters: 2, kernel: Pair(3), stride: Pair(2), padding: Padding(2, 2), dilation: Pair(3))), [Shape([2, 9, 9])])
    add("conv", "conv_first_layer", .conv(ConvAttributes(filters: 3, kernel: Pair(3), stride: Pair(2))),
        [Shape([2, 7, 7])], needs: [false])
    // Wide groups take the GEMM paths: the full convolution (stride 1) and col2im (stride 2).
    add("conv", "conv_grouped_full", .conv(ConvAttributes(
        filters: 16, kernel: Pair(3), padding: Padding(top: 2, left: 1, bottom: 1, right: 2), dilation: Pair(2, 1),
        groups: 2)), [Shape([16, 7, 6])], batch: 3)
    // Transposed convolutions: the naive scatter forward and its three gradients.
    add("conv", "conv_transpose_strided", .convTranspose(ConvTransposeAttributes(
        filters: 4, kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), outputPadding: Pair(1))), [Shape([3, 4, 5])])
    add("conv", "conv_transpose_grouped_dilated", .convTranspose(ConvTransposeAttributes(
        filters: 6, kernel: Pair(2, 3), stride: Pair(1, 2), padding: Padding(top: 0, left: 2, bottom: 1, right: 1),
        dilation: Pair(2, 1), groups: 2, bias: false)), [Shape([4, 3, 4])], batch: 3)
    add("conv", "conv_transpose_frozen", .convTranspose(ConvTransposeAttributes(filters: 2, kernel: Pair(4), stride: Pair(2),
        padding: Padding(1, 1))), [Shape([3, 3, 3])], frozen: true)
    add("conv", "conv_grouped_col2im", .conv(ConvAttributes(
        filters: 8, kernel: Pair(3, 4), stride: Pair(2, 3), padding: Padding(1, 1), groups: 2, bias: false)),
        [Shape([16, 9, 10])], batch: 3)
    add("conv", "conv_frozen", .conv(ConvAttributes(filters: 3, kernel: Pair(2, 3), padding: Padding(0, 1))),
        [Shape([2, 5, 5])], frozen: true)
    // Dense: flattened feature maps, vectors, no bias, frozen.
    add("dense", "dense_image", .dense(DenseAttributes(units: 5)), [Shape([2, 3, 3])], batch: 3)
    add("dense", "dense_vector", .dense(DenseAttributes(units: 4, bias: false)), [Shape([7])])
    add("dense", "dense_frozen", .dense(DenseAttributes(units: 3)), [Shape([6])], frozen: true)
    add("dense", "dense_first_layer", .dense(DenseAttributes(units: 3)), [Shape([6])], needs: [false])
    // Activations; quantized inputs hit the kinks exactly (0, the clip bounds, +-3).
    let image = [Shape([3, 3, 4])]
    add("activation", "act_relu", .activation(.relu), image, values: .quantized(0.5))
    add("activation", "act_leaky", .activation(.leakyRelu(alpha: 0.1)), image, values: .quantized(0.5))
    add("activation", "act_sigmoid", .activation(.sigmoid), image, values: .uniform(3))
    add("activation", "act_tanh", .activation(.tanh), image, values: .uniform(2))
    add("activation", "act_swish", .activation(.swish), image, values: .uniform(3))
    add("activation", "act_elu", .activation(.elu(alpha: 0.7)), image, values: .quantized(0.5))
    add("activation", "act_selu", .activation(.selu(alpha: 1.6732632423543772, gamma: 1.0507009873554805)), image,
        values: .uniform(2))
    add("activation", "act_softplus", .activation(.softplus), image, values: .uniform(3))
    add("activation", "act_hardsigmoid", .activation(.hardSigmoid(alpha: 1.0 / 6, beta: 0.5)), image,
        values: .uniform(4))
    add("activation", "act_hardswish", .activation(.hardSwish), image, values: .quantized(1))
    add("activation", "act_clip", .activation(.clip(min: -0.5, max: 1)), image, values: .quantized(0.5))
    add("activation", "act_affine", .activation(.affine(scale: -0.75, shift: 0.5)), image)
    add("activation", "act_vector", .activation(.relu), [Shape([5])], batch: 3, values: .quantized(0.5))
    // PReLU.
    add("prelu", "prelu_shared", .prelu(PReLUAttributes(shared: true)), [Shape([3, 4, 4])], values: .quantized(0.5))
    add("prelu", "prelu_channel", .prelu(PReLUAttributes(shared: false)), [Shape([3, 4, 4])], values: .quantized(0.5))
    add("prelu", "prelu_vector", .prelu(PReLUAttributes(shared: false)), [Shape([6])], batch: 3,
        values: .quantized(0.5))
    add("prelu", "prelu_frozen", .prelu(PReLUAttributes(shared: true)), [Shape([6])], frozen: true)
    // Add, concat, flatten.
    add("layout", "add3", .add, Array(repeating: Shape([2, 3, 3]), count: 3), needs: [true, false, true])
    add("layout", "add2", .add, Array(repeating: Shape([5]), count: 2))
    add("layout", "concat3", .concat, [Shape([2, 3, 3]), Shape([1, 3, 3]), Shape([3, 3, 3])],
        needs: [true, true, false])
    add("layout", "concat_vector", .concat, [Shape([4]), Shape([3])], batch: 3)
    // Binary ops with a broadcast second operand: same shape, per channel (the
    // squeeze-and-excitation gate), per sample; divisors away from 0.
    add("binary", "mul_same", .binary(.mul), [Shape([2, 3, 3]), Shape([2, 3, 3])])
    add("binary", "mul_channel", .binary(.mul), [Shape([4, 3, 5]), Shape([4, 1, 1])], batch: 3)
    add("binary", "mul_sample", .binary(.mul), [Shape([2, 3, 3]), Shape([1])])
    add("binary", "mul_gate_only", .binary(.mul), [Shape([3, 2, 2]), Shape([3, 1, 1])], needs: [false, true])
    add("binary", "sub_channel", .binary(.sub), [Shape([3, 4, 4]), Shape([3, 1, 1])])
    add("binary", "sub_vector", .binary(.sub), [Shape([6]), Shape([6])], batch: 3)
    add("binary", "div_channel", .binary(.div), [Shape([3, 4, 4]), Shape([3, 1, 1])], values: .range(0.5, 2))
    add("binary", "div_sample", .binary(.div), [Shape([2, 3, 3]), Shape([1, 1, 1])], batch: 3, values: .range(0.5, 2))
    add("layout", "shuffle3", .shuffle(groups: 3), [Shape([6, 2, 3])], batch: 3)
    add("layout", "shuffle_depth", .shuffle(groups: 2), [Shape([4, 1, 1])])
    add("layout", "slice_middle", .slice(start: 1, end: 3), [Shape([5, 2, 2])], batch: 3)
    add("layout", "slice_vector", .slice(start: 0, end: 2), [Shape([6])])
    add("layout", "pad_channels", .pad(PadAttributes(padding: Padding(top: 1, left: 0, bottom: 0, right: 2), channelsBefore: 2,
                                                     channelsAfter: 1, value: 0.5)), [Shape([2, 3, 3])], batch: 3)
    add("layout", "pad_edge", .pad(PadAttributes(padding: Padding(top: 2, left: 1, bottom: 1, right: 3), mode: .edge)),
        [Shape([2, 3, 2])])
    add("layout", "pad_reflect", .pad(PadAttributes(padding: Padding(top: 2, left: 1, bottom: 1, right: 2), mode: .reflect)),
        [Shape([2, 3, 3])])
    add("layout", "upsample2", .upsample(UpsampleAttributes(scale: Pair(2))), [Shape([2, 3, 2])], batch: 3)
    add("layout", "upsample3x1", .upsample(UpsampleAttributes(scale: Pair(3, 1))), [Shape([3, 2, 3])])
    add("layout", "upsample_bilinear", .upsample(UpsampleAttributes(scale: Pair(2, 3), mode: .bilinear)), [Shape([2, 3, 4])],
        batch: 3)
    add("layout", "upsample_bilinear_corners", .upsample(UpsampleAttributes(scale: Pair(3, 2), mode: .bilinear, alignCorners: true)),
        [Shape([2, 4, 1])])
    add("layout", "flatten_image", .flatten, [Shape([2, 3, 3])])
    // Pooling; quantized inputs make ties, so the first-maximum rule matters.
    add("pool", "maxpool_ceil", .maxPool(PoolAttributes(
        kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), ceilMode: true)), [Shape([2, 8, 8])],
        values: .quantized(0.5))
    add("pool", "maxpool_asym", .maxPool(PoolAttributes(
        kernel: Pair(2, 3), stride: Pair(2), padding: Padding(top: 1, left: 1, bottom: 0, right: 1))),
        [Shape([3, 6, 5])], values: .quantized(0.5))
    add("pool", "maxpool_overlap", .maxPool(PoolAttributes(kernel: Pair(3), stride: Pair(1), padding: Padding(1, 1))),
        [Shape([2, 5, 5])], values: .quantized(0.5))
    add("pool", "avgpool_include", .avgPool(PoolAttributes(
        kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), ceilMode: true, countIncludePad: true)),
        [Shape([2, 8, 8])])
    add("pool", "avgpool_exclude", .avgPool(PoolAttributes(
        kernel: Pair(3), stride: Pair(2), padding: Padding(1, 1), ceilMode: true, countIncludePad: false)),
        [Shape([2, 8, 8])])
    add("pool", "avgpool_asym", .avgPool(PoolAttributes(
        kernel: Pair(2, 3), stride: Pair(2), padding: Padding(top: 1, left: 1, bottom: 0, right: 1), ceilMode: true)),
        [Shape([3, 6, 5])])
    add("pool", "global_avgpool", .globalAvgPool, [Shape([3, 4, 5])])
    add("pool", "global_maxpool", .globalMaxPool, [Shape([3, 4, 5])], values: .quantized(0.5))
    // Normalizations.
    add("norm", "lrn5", .lrn(LRNAttributes(size: 5, alpha: 0.05, beta: 0.75, k: 1)), [Shape([7, 3, 3])])
    add("norm", "lrn4", .lrn(LRNAttributes(size: 4, alpha: 0.2, beta: 0.5, k: 2)), [Shape([6, 2, 3])])
    add("batchnorm", "bn_image", .batchNorm(BatchNormAttributes()), [Shape([4, 3, 3])], batch: 3, values: .uniform(2))
    add("batchnorm", "bn_vector", .batchNorm(BatchNormAttributes(epsilon: 1e-3, momentum: 0.3)), [Shape([5])],
        batch: 4, values: .uniform(2))
    add("batchnorm", "bn_params_only", .batchNorm(BatchNormAttributes()), [Shape([3, 2, 2])], needs: [false])
    add("batchnorm", "bn_frozen", .batchNorm(BatchNormAttributes()), [Shape([3, 2, 2])], frozen: true)
    add("dropout", "dropout_image", .dropout(rate: 0.3), [Shape([3, 4, 4])])
    add("dropout", "dropout_vector", .dropout(rate: 0.5), [Shape([10])], batch: 3)
    add("softmax", "softmax_vector", .softmax, [Shape([6])], batch: 3, values: .uniform(3))
    add("softmax", "softmax_image", .softmax, [Shape([4, 2, 3])], values: .uniform(3))
    add("softmax", "logsoftmax_vector", .logSoftmax, [Shape([6])], batch: 3, values: .uniform(3))
    return cases
}()

/// The dropout seed and step every case uses.
let dropoutSeed: UInt64 = 0xC0FF_EE12_3456_789A
let dropoutStep = 7

// MARK: - Tolerances

/// Named tolerances: `|c - r| <= absolute + relative * |r|` between the C float result `c`
/// (gradient buffer minus its starting 0.5) and the interpreter's Double result `r`.
enum Tolerance {
    /// Float kernels against the Double interpreter: every input is exactly a float, so the
    /// error is float rounding of sums of at most a few hundred terms of magnitude <= 2 (about
    /// 1e-6 here), plus the rounding of adding into the 0.5 start (3e-8 relative). The margin
    /// leaves room for different libm expf/powf; a wrong index or a missed term is > 1e-2.
    static let gradient = (absolute: 2e-5, relative: 2e-4)
}

// MARK: - One case, prepared

/// One printed tensor and what it should be.
struct ExpectedTensor: Sendable {
    /// The C name: `d_in`, `d_weight`, `out`, `saved`, `running_mean`, ...
    var name: String
    var shape: [Int]
    var values: [Double]
    /// What the buffer held before the kernels ran (the kernels add into gradients).
    var start: Double
    /// Dropout: which elements must be exactly zero.
    var exactZeros: [Bool]?
}

/// A case with its graph, data, C text and expected results.
struct PreparedCase: Sendable {
    var spec: GradientCase
    /// Kernel functions of this case.
    var functions: String
    /// Array definitions.
    var arrays: String
    /// The statements of main for this case.
    var calls: String
    var expected: [ExpectedTensor]
}

/// A small deterministic generator (SplitMix64 steps).
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 1
        return SeededInit.splitmix64(state)
    }
    /// Uniform in [lo, hi], a float.
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / 16_777_216
    }
    mutating func values(_ count: Int, _ kind: GradientCase.Values) -> [Float] {
        (0..<count).map { _ in
            switch kind {
            case .uniform(let s): return uniform(-s, s)
            case .quantized(let step): return Float(Int(next() % 7) - 3) * step
            case .range(let low, let high): return uniform(low, high)
            }
        }
    }
}

enum CaseBuilder {
    static func graph(_ c: GradientCase) -> Graph {
        var nodes = c.inputs.enumerated().map { i, s in Node(name: "\(c.name)_x\(i)", op: .input(s), inputs: []) }
        nodes.append(Node(name: c.name, op: c.op, inputs: nodes.map(\.name)))
        var g = Graph(name: c.name, nodes: nodes, outputs: [c.name])
        precondition(g.inferShapes().isEmpty, "case \(c.name): shapes do not infer")
        return g
    }

    /// Parameter values suited to each role.
    static func parameter(_ spec: ParameterSpec, _ random: inout TestRandom) -> [Float] {
        let range: (Float, Float)
        switch (spec.role, spec.node) {
        case ("running_var", _): range = (0.5, 1.5)
        case ("weight", _) where spec.shape.count == 1 && spec.initializer == .constant(0.25): range = (0.05, 0.5)
        case ("weight", _) where spec.shape.count == 1: range = (0.5, 1.5)
        default: range = (-0.5, 0.5)
        }
        return (0..<spec.count).map { _ in random.uniform(range.0, range.1) }
    }

    static func literal(_ values: [Float]) -> String {
        var lines: [String] = []
        for start in stride(from: 0, to: values.count, by: 8) {
            lines.append(values[start..<min(start + 8, values.count)].map { cFloat(Double($0)) }.joined(separator: ", "))
        }
        return "{\n    " + lines.joined(separator: ",\n    ") + "\n}"
    }

    static func prepare(_ c: GradientCase, index: Int) throws -> PreparedCase {
        let g = graph(c)
        let node = g.nodes.last!
        let n = c.batch
        var random = TestRandom(state: 0x5EED_0000 &+ UInt64(index) &* 7919)
        let inputValues = c.inputs.map { random.values(n * $0.count, c.values) }
        let specs = g.parameters()
        let parameterValues = specs.map { parameter($0, &random) }
        let dOut = random.values(n * node.shape.count, .uniform(1))

        // The reference: the interpreter's training-mode forward and backward.
        var tensors: [String: Tensor] = [:]
        for (spec, v) in zip(specs, parameterValues) { tensors[spec.name] = Tensor(shape: spec.shape, data: v.map(Double.init)) }
        let interpreter = try Interpreter(graph: g, parameters: tensors)
        var inputs: [String: Tensor] = [:]
        for (i, s) in c.inputs.enumerated() {
            inputs["\(c.name)_x\(i)"] = Tensor(shape: [n] + s.dims, data: inputValues[i].map(Double.init))
        }
        let pass = try interpreter.forward(inputs, mode: .training(seed: dropoutSeed, step: dropoutStep))
        let seed = Tensor(shape: [n] + node.shape.dims, data: dOut.map(Double.init))
        let gradients = interpreter.backward(pass, seeds: [c.name: seed])

        let needs = c.inputNeedsGrad ?? Array(repeating: true, count: c.inputs.count)
        let k = BackwardContext(node: node, inputShapes: c.inputs, function: "node_\(c.name)_backward",
                                inputNeedsGrad: needs, parameters: specs,
                                parameterNeedsGrad: specs.map { $0.trainable && !c.frozen })
        let p = c.name
        var expected: [ExpectedTensor] = []
        var arrays = "/* case \(p): \(KernelEmitter.describe(node)) */\n"
        var calls = "    /* case \(p) */\n"
        var functions = ""

        // Arrays: inputs and parameters as literals, d out, forward output, gradients.
        for (i, v) in inputValues.enumerated() { arrays += "static const float \(p)_in\(i)[] = \(literal(v));\n" }
        for (spec, v) in zip(specs, parameterValues) {
            let mutable = spec.role.hasPrefix("running_")
            arrays += "static \(mutable ? "" : "const ")float \(p)_\(spec.role)[] = \(literal(v));\n"
        }
        arrays += "static const float \(p)_dout[] = \(literal(dOut));\n"
        arrays += "static float \(p)_out[\(n * node.shape.count)];\n"
        let isBatchNorm: Bool, isDropout: Bool
        switch node.op {
        case .batchNorm: (isBatchNorm, isDropout) = (true, false)
        case .dropout: (isBatchNorm, isDropout) = (false, true)
        case .input, .conv, .dense, .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool,
             .lrn, .flatten, .concat, .shuffle, .slice, .pad, .upsample, .convTranspose, .softmax, .logSoftmax:
            (isBatchNorm, isDropout) = (false, false)
        }
        if isBatchNorm { arrays += "static float \(p)_saved[\(2 * node.shape.dims[0])];\n" }

        // The forward: training kernels for batch norm and dropout, a copy for flatten, else inference.
        var w = CWriter()
        if isBatchNorm || isDropout {
            let f = BackwardContext(node: node, inputShapes: c.inputs, function: "node_\(p)_train_forward",
                                    inputNeedsGrad: needs, parameters: specs, parameterNeedsGrad: k.parameterNeedsGrad)
            TrainingForwardKernels.emit(f, into: &w)
            calls += isBatchNorm
                ? "    node_\(p)_train_forward(\(p)_out, \(p)_saved, \(p)_running_mean, \(p)_running_var, \(p)_in0, \(p)_weight, \(p)_bias, NULL, \(n), \(n));\n"
                : "    node_\(p)_train_forward(\(p)_out, \(p)_in0, \(dropoutSeed)ull, \(dropoutStep), \(n));\n"
        } else if case .flatten = node.op {
            calls += "    memcpy(\(p)_out, \(p)_in0, sizeof \(p)_out);\n"
        } else {
            let arguments = Bindings(g).arguments[p] ?? []
            KernelEmitter.emit(KernelContext(node: node, inputShapes: c.inputs, arguments: arguments, function: "node_\(p)"),
                               into: &w)
            let args = ["\(p)_out"] + c.inputs.indices.map { "\(p)_in\($0)" } + arguments.map { "\(p)_\($0.name)" } + ["\(n)"]
            calls += "    node_\(p)(\(args.joined(separator: ", ")));\n"
        }
        BackwardKernels.emit(k, into: &w)
        functions = w.text

        // The backward call: each argument by its name in the contract.
        var callArguments: [String] = []
        var dumped: [String] = ["out"]
        for a in BackwardKernels.arguments(k) {
            switch a.name {
            case "n": callArguments.append("\(n)")
            case "seed": callArguments.append("\(dropoutSeed)ull")
            case "step": callArguments.append("\(dropoutStep)")
            case "sync": callArguments.append("NULL")
            case "samples": callArguments.append("\(n)")
            case "d_out": callArguments.append("\(p)_dout")
            case "in": callArguments.append("\(p)_in0")
            case "d_in": callArguments.append("\(p)_d_in0")
            case "packed_t":
                // the trainer's transposed, flipped packing of the weights (pack_parameters)
                guard case .conv(let a) = node.op else { preconditionFailure("packed_t outside a convolution") }
                let cg = c.inputs[0].c / a.groups, kg = a.filters / a.groups, taps = a.kernel.h * a.kernel.w
                arrays += "static float \(p)_packed_t[\(DerivedTensor.packedCount(groups: a.groups, kg: cg, crs: kg * taps))];\n"
                calls += "    cnnc_conv_pack_weights_transposed(\(p)_packed_t, \(p)_weight, \(a.groups), \(kg), \(cg), \(taps));\n"
                callArguments.append("\(p)_packed_t")
            default:
                callArguments.append("\(p)_\(a.name)")
                if a.name.hasPrefix("d_") { dumped.append(a.name) }
            }
            if a.name == "d_in" { dumped.append("d_in0") }
        }
        for name in dumped where name != "out" {
            let count = name.hasPrefix("d_in")
                ? n * c.inputs[Int(name.dropFirst(4))!].count
                : specs.first { "d_\($0.role)" == name }!.count
            arrays += "static float \(p)_\(name)[\(count)];\n"
            calls = "    fill(\(p)_\(name), \(count), 0.5f);\n" + calls
        }
        calls += "    \(k.function)(\(callArguments.joined(separator: ", ")));\n"
        if isBatchNorm { dumped += ["saved", "running_mean", "running_var"] }
        for name in dumped {
            calls += "    dump(\"\(p)\", \"\(name)\", \(p)_\(name), sizeof \(p)_\(name) / sizeof(float));\n"
        }

        // What each dumped tensor should hold.
        let outValue = pass.values[p]!
        var outExpected = ExpectedTensor(name: "out", shape: outValue.shape, values: outValue.data, start: 0)
        if isDropout { outExpected.exactZeros = pass.dropoutMultipliers[p]!.map { $0 == 0 } }
        expected.append(outExpected)
        for name in dumped.dropFirst() {
            if name.hasPrefix("d_in") {
                let i = Int(name.dropFirst(4))!
                let grad = gradients.values["\(p)_x\(i)"]!
                expected.append(ExpectedTensor(name: name, shape: grad.shape, values: grad.data, start: 0.5))
            } else if name.hasPrefix("d_") {
                let role = String(name.dropFirst(2))
                let grad = gradients.parameters["\(p).\(role)"]!
                expected.append(ExpectedTensor(name: name, shape: grad.shape, values: grad.data, start: 0.5))
            }
        }
        if isBatchNorm, case .batchNorm(let a) = node.op {
            let statistics = pass.batchStatistics[p]!
            let channels = node.shape.dims[0]
            let invstd = statistics.variance.map { 1 / ($0 + a.epsilon).squareRoot() }
            expected.append(ExpectedTensor(name: "saved", shape: [2, channels], values: statistics.mean + invstd, start: 0))
            let mean = tensors["\(p).running_mean"]!.data, variance = tensors["\(p).running_var"]!.data
            expected.append(ExpectedTensor(
                name: "running_mean", shape: [channels],
                values: (0..<channels).map {
                    BatchNormStatistics.updatedRunningMean(mean[$0], batchMean: statistics.mean[$0], momentum: a.momentum)
                }, start: 0))
            expected.append(ExpectedTensor(
                name: "running_var", shape: [channels],
                values: (0..<channels).map {
                    BatchNormStatistics.updatedRunningVariance(
                        variance[$0], biasedVariance: statistics.variance[$0], count: statistics.count,
                        momentum: a.momentum)
                }, start: 0))
        }
        return PreparedCase(spec: c, functions: functions, arrays: arrays, calls: calls, expected: expected)
    }

    /// The whole C program: every case's kernels and arrays, then one main running them in order.
    static func program(_ cases: [PreparedCase]) -> String {
        var s = """
        #include "cnnc_runtime.h"
        #include <math.h>
        #include <stddef.h>
        #include <stdint.h>
        #include <stdio.h>
        #include <string.h>

        static void fill(float *v, size_t count, float value) {
            for (size_t i = 0; i < count; i++) v[i] = value;
        }

        static void dump(const char *name, const char *tensor, const float *v, size_t count) {
            printf("%s %s", name, tensor);
            for (size_t i = 0; i < count; i++) printf(" %.9g", v[i]);
            printf("\\n");
        }


        """
        for c in cases { s += c.arrays + "\n" + c.functions }
        s += "int main(void) {\n"
        for c in cases { s += c.calls }
        s += "    return 0;\n}\n"
        return s
    }
}

// MARK: - Running C

/// The outcome of one command.
struct CommandResult: Sendable {
    var status: Int32
    var output: String
    var errors: String
}

enum Shell {
    /// Runs `arguments` through /usr/bin/env (PATH lookup) with extra environment variables.
    static func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL) -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = directory.appendingPathComponent("stdout-\(UUID().uuidString)")
        let err = directory.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        guard let outHandle = try? FileHandle(forWritingTo: out), let errHandle = try? FileHandle(forWritingTo: err) else {
            return CommandResult(status: -1, output: "", errors: "cannot open output files")
        }
        process.standardOutput = outHandle
        process.standardError = errHandle
        do { try process.run() } catch {
            return CommandResult(status: -1, output: "", errors: "cannot run \(arguments[0]): \(error)")
        }
        process.waitUntilExit()
        try? outHandle.close()
        try? errHandle.close()
        let text = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        return CommandResult(status: process.terminationStatus, output: text(out), errors: text(err))
    }

    static func has(_ tool: String, in directory: URL) -> Bool {
        run(["sh", "-c", "command -v \(tool)"], in: directory).status == 0
    }
}

/// Everything the tests check, computed once.
struct SuiteRun: Sendable {
    var cases: [PreparedCase] = []
    var program = ""
    /// A failure before anything ran (preparation or the main compile).
    var setupFailure: String?
    /// The main build's output at 1, 2 and 4 threads.
    var outputs: [Int: String] = [:]
    /// The sanitized build's output (or why it failed).
    var sanitized: CommandResult?
    /// clang's build's output (nil when no clang is installed).
    var clang: CommandResult?
    /// The flags cnnc trains with (`-O3 -march=native`), at 1 and 2 threads.
    var native: [Int: CommandResult] = [:]
    var seconds = 0.0

    static let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fopenmp"]

    static func make() -> SuiteRun {
        var run = SuiteRun()
        let started = Date()
        defer { run.seconds = Date().timeIntervalSince(started) }
        do {
            run.cases = try gradientCases.enumerated().map { try CaseBuilder.prepare($0.element, index: $0.offset) }
        } catch {
            run.setupFailure = "preparing the cases failed: \(error)"
            return run
        }
        run.program = CaseBuilder.program(run.cases)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cnnc-backward-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            try run.program.write(to: dir.appendingPathComponent("kernels.c"), atomically: true, encoding: .utf8)
            _ = try RuntimeSources.write(to: dir.path)  // the GEMM the conv and dense kernels call
        } catch {
            run.setupFailure = "cannot write the program: \(error)"
            return run
        }
        let build = Shell.run(["cc"] + flags + ["-O2", "kernels.c", "cnnc_runtime.c", "-o", "kernels", "-lz", "-lm"], in: dir)
        guard build.status == 0 else {
            run.setupFailure = "cc failed (\(build.status)):\n\(build.errors.prefix(4000))"
            return run
        }
        for threads in [1, 2, 4] {
            let r = Shell.run(["./kernels"], environment: ["OMP_NUM_THREADS": "\(threads)", "OMP_DYNAMIC": "false"], in: dir)
            guard r.status == 0 else {
                run.setupFailure = "the program failed at \(threads) threads (\(r.status)):\n\(r.errors.prefix(4000))"
                return run
            }
            run.outputs[threads] = r.output
        }
        let sanitizer = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
        let asan = Shell.run(["cc"] + flags + sanitizer + ["kernels.c", "cnnc_runtime.c", "-o", "kernels-asan", "-lz", "-lm"], in: dir)
        run.sanitized = asan.status != 0
            ? CommandResult(status: asan.status, output: "", errors: "build failed:\n" + asan.errors)
            : Shell.run(["./kernels-asan"], environment: ["OMP_NUM_THREADS": "2", "ASAN_OPTIONS": "detect_leaks=0"], in: dir)
        let native = Shell.run(["cc"] + flags + ["-O3", "-march=native", "kernels.c", "cnnc_runtime.c", "-o", "kernels-native", "-lz", "-lm"], in: dir)
        for threads in [1, 2] {
            run.native[threads] = native.status != 0
                ? CommandResult(status: native.status, output: "", errors: "build failed:\n" + native.errors)
                : Shell.run(["./kernels-native"], environment: ["OMP_NUM_THREADS": "\(threads)"], in: dir)
        }
        if let compiler = ["clang", "clang-14"].first(where: { Shell.has($0, in: dir) }) {
            let c = Shell.run([compiler] + flags + ["-O2", "kernels.c", "cnnc_runtime.c", "-o", "kernels-clang", "-lz", "-lm"], in: dir)
            run.clang = c.status != 0
                ? CommandResult(status: c.status, output: "", errors: "\(compiler) build failed:\n" + c.errors)
                : Shell.run(["./kernels-clang"], environment: ["OMP_NUM_THREADS": "2"], in: dir)
        }
        return run
    }

    /// Printed tensors by case, then by name.
    static func parse(_ output: String) -> [String: [String: [Float]]] {
        var result: [String: [String: [Float]]] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2 else { continue }
            result[String(parts[0]), default: [:]][String(parts[1])] = parts.dropFirst(2).map { Float(String($0)) ?? .nan }
        }
        return result
    }
}

/// The worst element of a comparison.
struct Worst {
    var absolute = 0.0
    var relative = 0.0
    var message: String?
}

// MARK: - Tests

final class BackwardKernelTests: XCTestCase {
    static let suite = SuiteRun.make()

    /// Largest errors seen over every case (for the record), printed once per family.
    func check(family: String, output: String? = nil, label: String = "cc -O2", file: StaticString = #filePath,
               line: UInt = #line) {
        let suite = Self.suite
        if let failure = suite.setupFailure { return XCTFail(failure, file: file, line: line) }
        let printed = SuiteRun.parse(output ?? suite.outputs[1] ?? "")
        let cases = suite.cases.filter { $0.spec.family == family || family == "*" }
        XCTAssertFalse(cases.isEmpty, "no cases in family \(family)", file: file, line: line)
        var worst = Worst()
        for c in cases {
            guard let tensors = printed[c.spec.name] else {
                XCTFail("\(label): case \(c.spec.name) printed nothing", file: file, line: line)
                continue
            }
            for e in c.expected {
                guard let actual = tensors[e.name] else {
                    XCTFail("\(label): case \(c.spec.name) did not print \(e.name)", file: file, line: line)
                    continue
                }
                guard actual.count == e.values.count else {
                    XCTFail("\(label): \(c.spec.name) \(e.name): \(actual.count) values, expected \(e.values.count)",
                            file: file, line: line)
                    continue
                }
                var caseWorst = Worst()
                for i in e.values.indices {
                    let value = Double(actual[i]) - e.start, reference = e.values[i]
                    let error = abs(value - reference)
                    let allowed = Tolerance.gradient.absolute + Tolerance.gradient.relative * abs(reference)
                    if !(error <= allowed) && (caseWorst.message == nil || error > caseWorst.absolute) {
                        caseWorst.message = "\(label): \(c.spec.name) \(e.name)\(index(i, e.shape)) is \(value), "
                            + "the interpreter gives \(reference) (error \(error), allowed \(allowed))"
                    }
                    if error.isFinite {
                        worst.absolute = max(worst.absolute, error)
                        worst.relative = max(worst.relative, error / max(abs(reference), 1e-3))
                    } else {
                        worst.absolute = .infinity
                    }
                    caseWorst.absolute = max(caseWorst.absolute, error.isNaN ? .infinity : error)
                    if let zeros = e.exactZeros, zeros[i] != (actual[i] == 0) {
                        XCTFail("\(label): \(c.spec.name) \(e.name)\(index(i, e.shape)): the mask differs from DropoutMask "
                                + "(C \(actual[i]), interpreter \(reference))", file: file, line: line)
                    }
                }
                if let message = caseWorst.message { XCTFail(message, file: file, line: line) }
            }
        }
        print("backward kernels [\(label)] \(family): \(cases.count) cases, max abs error \(worst.absolute), "
              + "max error relative to max(|r|, 1e-3) \(worst.relative)")
    }

    /// `(n,c,h,w)` of flat index `i` in `shape`.
    func index(_ i: Int, _ shape: [Int]) -> String {
        var rest = i
        var parts: [Int] = []
        for d in shape.reversed() {
            parts.append(d == 0 ? 0 : rest % d)
            rest = d == 0 ? 0 : rest / d
        }
        return "(" + parts.reversed().map(String.init).joined(separator: ",") + ")"
    }

    func testConvolution() { check(family: "conv") }
    func testDense() { check(family: "dense") }
    func testActivations() { check(family: "activation") }
    func testPReLU() { check(family: "prelu") }
    func testAddConcatFlatten() { check(family: "layout") }
    func testBinaryBroadcast() { check(family: "binary") }
    func testPooling() { check(family: "pool") }
    func testLRN() { check(family: "norm") }
    func testBatchNormTraining() { check(family: "batchnorm") }
    func testDropout() { check(family: "dropout") }
    func testSoftmax() { check(family: "softmax") }

    /// The printed results are bitwise the same at 1, 2 and 4 threads.
    func testBitwiseIdenticalAcrossThreadCounts() throws {
        let suite = Self.suite
        if let failure = suite.setupFailure { return XCTFail(failure) }
        let one = suite.outputs[1]!.split(separator: "\n")
        for threads in [2, 4] {
            let other = suite.outputs[threads]!.split(separator: "\n")
            XCTAssertEqual(one.count, other.count)
            if let i = zip(one, other).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                let head = one[i].split(separator: " ").prefix(2).joined(separator: " ")
                XCTFail("\(head): results at 1 and \(threads) threads differ")
            }
        }
    }

    /// The same program built with ASan and UBSan runs clean and gives the same numbers.
    func testUnderAddressAndUndefinedBehaviorSanitizers() {
        let suite = Self.suite
        if let failure = suite.setupFailure { return XCTFail(failure) }
        guard let run = suite.sanitized else { return XCTFail("the sanitized build did not run") }
        XCTAssertEqual(run.status, 0, "sanitized run failed:\n\(run.errors.prefix(4000))")
        XCTAssertFalse(run.errors.contains("runtime error"), String(run.errors.prefix(4000)))
        if run.status == 0 { check(family: "*", output: run.output, label: "cc ASan/UBSan") }
    }

    /// clang (when installed) compiles the same program warning-free and agrees with the reference.
    func testClangBuild() throws {
        let suite = Self.suite
        if let failure = suite.setupFailure { return XCTFail(failure) }
        guard let run = suite.clang else { throw XCTSkip("no clang installed") }
        XCTAssertEqual(run.status, 0, "clang build or run failed:\n\(run.errors.prefix(4000))")
        if run.status == 0 { check(family: "*", output: run.output, label: "clang -O2") }
    }

    /// With the flags cnnc trains with (`-O3 -march=native`: vectorized, FMA available but not
    /// contracted in ISO C mode) the results still agree, and are bitwise equal at 1 and 2 threads.
    func testOptimizedNativeBuild() {
        let suite = Self.suite
        if let failure = suite.setupFailure { return XCTFail(failure) }
        guard let one = suite.native[1], let two = suite.native[2] else { return XCTFail("the native build did not run") }
        XCTAssertEqual(one.status, 0, "native build or run failed:\n\(one.errors.prefix(4000))")
        XCTAssertEqual(two.status, 0, "native run failed:\n\(two.errors.prefix(4000))")
        guard one.status == 0, two.status == 0 else { return }
        XCTAssertTrue(one.output == two.output, "-O3 -march=native: results at 1 and 2 threads differ")
        check(family: "*", output: one.output, label: "cc -O3 -march=native")
    }

    /// The whole suite, C builds included, stays well under a minute.
    func testSuiteIsQuick() {
        XCTAssertLessThan(Self.suite.seconds, 60, "the backward kernel suite took \(Self.suite.seconds) s")
    }

    // MARK: Text

    func context(_ op: Op, _ inputs: [Shape], needs: [Bool]? = nil, frozen: Bool = false,
                 name: String = "l") -> BackwardContext {
        let c = GradientCase(name: name, family: "", op: op, inputs: inputs, inputNeedsGrad: needs, frozen: frozen)
        let g = CaseBuilder.graph(c)
        let specs = g.parameters()
        return BackwardContext(node: g.nodes.last!, inputShapes: inputs, function: "node_\(name)_backward",
                               inputNeedsGrad: needs ?? inputs.map { _ in true }, parameters: specs,
                               parameterNeedsGrad: specs.map { $0.trainable && !frozen })
    }

    /// The argument order of the contract, op by op.
    func testSignatures() {
        let image = [Shape([3, 8, 8])]
        let cases: [(BackwardContext, String)] = [
            (context(.conv(ConvAttributes(filters: 4, kernel: Pair(3))), image),
             "static void node_l_backward(float *restrict d_in, float *restrict d_weight, float *restrict d_bias, const float *restrict d_out, const float *restrict out, const float *restrict in, const float *restrict weight, const float *restrict bias, const float *restrict packed_t, int n)"),
            (context(.conv(ConvAttributes(filters: 4, kernel: Pair(3), bias: false)), image, needs: [false]),
             "static void node_l_backward(float *restrict d_weight, const float *restrict d_out, const float *restrict out, const float *restrict in, const float *restrict weight, const float *restrict packed_t, int n)"),
            // "same" padding: the input gradient on the implicit kernel over d out itself
            (context(.conv(ConvAttributes(filters: 4, kernel: Pair(3), padding: Padding(1, 1))), image),
             "static void node_l_backward(float *restrict d_in, float *restrict d_weight, float *restrict d_bias, const float *restrict d_out, const float *restrict out, const float *restrict in, const float *restrict weight, const float *restrict bias, const float *restrict packed_t, int n)"),
            (context(.dense(DenseAttributes(units: 3)), image, frozen: true),
             "static void node_l_backward(float *restrict d_in, const float *restrict d_out, const float *restrict out, const float *restrict in, const float *restrict weight, const float *restrict bias, int n)"),
            (context(.batchNorm(BatchNormAttributes()), image),
             "static void node_l_backward(float *restrict d_in, float *restrict d_weight, float *restrict d_bias, const float *restrict d_out, const float *restrict out, const float *restrict in, const float *restrict weight, const float *restrict bias, const float *restrict running_mean, const float *restrict running_var, const float *restrict saved, const cnnc_allreduce *sync, int64_t samples, int n)"),
            (context(.dropout(rate: 0.5), image),
             "static void node_l_backward(float *restrict d_in, const float *restrict d_out, const float *restrict out, const float *restrict in, uint64_t seed, int64_t step, int n)"),
            (context(.add, [Shape([4]), Shape([4]), Shape([4])], needs: [true, false, true]),
             "static void node_l_backward(float *restrict d_in0, float *restrict d_in2, const float *restrict d_out, const float *restrict out, const float *restrict in0, const float *restrict in1, const float *restrict in2, int n)"),
            (context(.prelu(PReLUAttributes(shared: false)), image),
             "static void node_l_backward(float *restrict d_in, float *restrict d_weight, const float *restrict d_out, const float *restrict out, const float *restrict in, const float *restrict weight, int n)"),
            (context(.maxPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))), image),
             "static void node_l_backward(float *restrict d_in, const float *restrict d_out, const float *restrict out, const float *restrict in, int n)"),
        ]
        for (k, expected) in cases {
            XCTAssertEqual(BackwardKernels.signature(k), expected)
            var w = CWriter()
            BackwardKernels.emit(k, into: &w)
            XCTAssertTrue(w.text.contains(expected + " {\n"), "\(k.node.displayName): the emitted function has another signature")
        }
        let bn = context(.batchNorm(BatchNormAttributes()), image, name: "bn1")
        XCTAssertEqual(
            TrainingForwardKernels.signature(BackwardContext(
                node: bn.node, inputShapes: bn.inputShapes, function: "node_bn1_train_forward", inputNeedsGrad: [true],
                parameters: bn.parameters, parameterNeedsGrad: bn.parameterNeedsGrad)),
            "static void node_bn1_train_forward(float *restrict out, float *restrict saved, float *restrict running_mean, float *restrict running_var, const float *restrict in, const float *restrict weight, const float *restrict bias, const cnnc_allreduce *sync, int64_t samples, int n)")
        let drop = context(.dropout(rate: 0.2), image, name: "d1")
        XCTAssertEqual(
            TrainingForwardKernels.signature(BackwardContext(
                node: drop.node, inputShapes: drop.inputShapes, function: "node_d1_train_forward", inputNeedsGrad: [true],
                parameters: [], parameterNeedsGrad: [])),
            "static void node_d1_train_forward(float *restrict out, const float *restrict in, uint64_t seed, int64_t step, int n)")
    }

    /// Unread arguments are cast to void, read ones are not; `readsOutput` says which ops read `out`.
    func testUnusedArgumentsAndOutputReads() {
        let image = [Shape([2, 4, 4])]
        let relu = context(.activation(.relu), image)
        var w = CWriter()
        BackwardKernels.emit(relu, into: &w)
        // ReLU's backward reads its output (the training step keeps that, not the input)
        XCTAssertTrue(w.text.contains("(void)in;"))
        XCTAssertFalse(w.text.contains("(void)out;"))
        XCTAssertTrue(BackwardKernels.readsOutput(relu))
        XCTAssertFalse(BackwardKernels.readsInput(relu))
        XCTAssertTrue(BackwardKernels.readsInput(context(.activation(.swish), image)))
        XCTAssertTrue(BackwardKernels.readsOutput(context(.activation(.sigmoid), image)))
        XCTAssertTrue(BackwardKernels.readsOutput(context(.activation(.tanh), image)))
        XCTAssertTrue(BackwardKernels.readsOutput(context(.softmax, image)))
        XCTAssertTrue(BackwardKernels.readsOutput(context(.logSoftmax, image)))
        XCTAssertFalse(BackwardKernels.readsInput(context(.activation(.sigmoid), image)))
        XCTAssertFalse(BackwardKernels.readsOutput(context(.conv(ConvAttributes(filters: 2, kernel: Pair(3))), image)))
        XCTAssertTrue(BackwardKernels.readsInput(context(.maxPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))), image)))
        XCTAssertFalse(BackwardKernels.readsInput(context(.avgPool(PoolAttributes(kernel: Pair(2), stride: Pair(2))), image)))
        // Nothing wanted: a valid function that only casts its arguments away.
        var none = CWriter()
        BackwardKernels.emit(context(.activation(.relu), image, needs: [false]), into: &none)
        XCTAssertTrue(none.text.contains("(void)d_out; (void)out; (void)in; (void)n;"))
    }

    /// The same context gives the same text, and the dropout hash constant is the node's nameHash.
    func testDeterministicTextAndDropoutConstant() {
        let k = context(.dropout(rate: 0.25), [Shape([3, 2, 2])], name: "drop7")
        var a = CWriter(), b = CWriter()
        BackwardKernels.emit(k, into: &a)
        BackwardKernels.emit(k, into: &b)
        XCTAssertEqual(a.text, b.text)
        let digits = String(SeededInit.nameHash("drop7"), radix: 16, uppercase: true)
        XCTAssertTrue(a.text.contains("0x\(String(repeating: "0", count: 16 - digits.count) + digits)ull"))
        XCTAssertTrue(a.text.contains(">= 0.25;"))
    }
}
