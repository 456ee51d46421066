// Tests of every pass: the rewrite happens where it should, nothing changes where it must
// not (each refusal), and the interpreter gives the same outputs before and after, with
// random weights (batch-norm statistics included, so folding is really exercised).

import CNNCFrontend
import CNNCIR
import CNNCInterpreter
import CNNCPasses
import Foundation
import XCTest

/// Parses a .net snippet (shapes inferred).
func net(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> Graph {
    switch NetFrontend.parse(text, path: "test.net") {
    case .success(let g): return g
    case .failure(let list):
        XCTFail(list.description, file: file, line: line)
        return Graph(name: "empty")
    }
}

/// Random parameters in [-0.5, 0.5) (running variances in [0.5, 1.5)), from a seed.
func randomParameters(_ graph: Graph, seed: UInt64) -> [String: Tensor] {
    var result: [String: Tensor] = [:]
    for spec in graph.parameters() {
        let data = (0..<spec.count).map { i -> Double in
            let u = SeededInit.uniform(seed: seed, name: spec.name, index: i)
            return spec.role == "running_var" ? 0.5 + u : u - 0.5
        }
        result[spec.name] = Tensor(shape: spec.shape, data: data)
    }
    return result
}

/// Runs `passes` and returns the graph and the remarks.
func runPasses(_ passes: [any Pass], on graph: Graph) throws -> (Graph, [Remark]) {
    let result = try PassManager(passes: passes).run(graph)
    return (result.graph, result.remarks)
}

/// Asserts that the interpreter gives the same outputs for both graphs (same parameters).
func assertEquivalent(_ before: Graph, _ after: Graph, seed: UInt64 = 3, batch: Int = 2,
                      file: StaticString = #filePath, line: UInt = #line) throws {
    let parameters = randomParameters(before, seed: seed)
    var inputs: [String: Tensor] = [:]
    for node in before.inputs {
        inputs[node.name] = SeededData.input(name: node.name, shape: node.shape.batched(batch), seed: seed)
    }
    let a = try Interpreter(graph: before, parameters: parameters).outputs(inputs)
    let kept = Set(after.parameters().map(\.name))
    let afterParameters = parameters.filter { name, _ in kept.contains(name) }
    let b = try Interpreter(graph: after, parameters: afterParameters).outputs(inputs)
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) {
        XCTAssertEqual(x.shape, y.shape, file: file, line: line)
        let scale = max(1, x.data.map(abs).max() ?? 0)
        let worst = zip(x.data, y.data).map { abs($0 - $1) }.max() ?? 0
        // Both sides are the Double interpreter running the same operations: only the order
        // of a few additions may differ.
        XCTAssertLessThanOrEqual(worst, 1e-12 * scale, "outputs differ by \(worst)", file: file, line: line)
    }
}

final class FoldBatchNormTests: XCTestCase {
    func testFoldsIntoConvAndDenseKeepingParameterNames() throws {
        let g = net("""
            input x shape=3x8x8
            conv c filters=4 size=3 pad=1
            batchnorm bn eps=0.001
            relu r
            dense d units=5
            batchnorm bn2
            softmax out
            """)
        let (after, remarks) = try runPasses([FoldBatchNorm()], on: g)
        XCTAssertNil(after.node(named: "bn"))
        XCTAssertNil(after.node(named: "bn2"))
        guard case .conv(let a) = after.node(named: "c")!.op, case .dense(let d) = after.node(named: "d")!.op else {
            return XCTFail("c and d must stay conv and dense")
        }
        XCTAssertEqual(a.epilogue.batchNorm, FoldedBatchNorm(node: "bn", epsilon: 0.001))
        XCTAssertEqual(d.epilogue.batchNorm, FoldedBatchNorm(node: "bn2", epsilon: 1e-5))
        XCTAssertEqual(after.node(named: "r")!.inputs, ["c"])
        XCTAssertEqual(Set(after.parameters().map(\.name)), Set(g.parameters().map(\.name)))
        XCTAssertEqual(remarks.map(\.description), ["[fold-batchnorm] bn: folded into 'c'", "[fold-batchnorm] bn2: folded into 'd'"])
        try assertEquivalent(g, after)
    }

    func testRefusals() throws {
        let g = net("""
            input x shape=3x8x8
            conv c filters=4 size=3 pad=1
            batchnorm bn1
            relu r
            batchnorm bn2
            conv c2 filters=4 size=1 from=x
            batchnorm bn3
            add s from=bn3,c2
            conv c3 filters=4 size=1
            batchnorm bn4
            concat out from=bn4,bn2
            output out, bn4
            """)
        let (after, remarks) = try runPasses([FoldBatchNorm()], on: g)
        XCTAssertEqual(after.nodes.map(\.name), ["x", "c", "r", "bn2", "c2", "bn3", "s", "c3", "bn4", "out"])
        XCTAssertEqual(remarks.map(\.description), [
            "[fold-batchnorm] bn1: folded into 'c'",
            "[fold-batchnorm] bn2: not folded: input 'r' is not a conv or dense",
            "[fold-batchnorm] bn3: not folded: 'c2' has another user (s)",
            "[fold-batchnorm] bn4: not folded: it is a graph output",
        ])
        try assertEquivalent(g, after)
    }
}

final class FusionTests: XCTestCase {
    func testResidualAddMovesTheFusedNodeAfterTheShortcut() throws {
        // The main path is written before the shortcut, so the fused conv must move.
        let g = net("""
            input x shape=4x6x6
            conv a filters=4 size=3 pad=1
            batchnorm abn
            conv short filters=4 size=1 from=x
            add s from=abn,short
            relu r
            global_avgpool gap
            dense out units=2
            """)
        let (after, _) = try runPasses([FoldBatchNorm(), FuseResidualAdd(), FuseActivation()], on: g)
        XCTAssertEqual(after.nodes.map(\.name), ["x", "short", "a", "gap", "out"])
        XCTAssertEqual(after.node(named: "a")!.inputs, ["x", "short"])
        guard case .conv(let c) = after.node(named: "a")!.op else { return XCTFail() }
        XCTAssertEqual(c.epilogue, Epilogue(batchNorm: FoldedBatchNorm(node: "abn", epsilon: 1e-5), residual: true, activation: .relu))
        XCTAssertEqual(after.node(named: "gap")!.inputs, ["a"])
        try assertEquivalent(g, after)
    }

    func testOutputsAreNeverFusedAway() throws {
        let g = net("""
            input x shape=4x6x6
            conv a filters=4 size=3 pad=1
            relu out
            """)
        let (after, remarks) = try runPasses([FuseActivation()], on: g)
        XCTAssertEqual(after, g.resolvingInitializers())
        XCTAssertEqual(remarks.map(\.description), ["[fuse-activation] out: not fused: it is a graph output"])
    }

    func testEveryActivationAndPReLUFuses() throws {
        for act in ["relu", "leaky_relu alpha=0.2", "sigmoid", "tanh", "swish", "elu alpha=0.7", "prelu shared=false", "prelu"] {
            let g = net("""
                input x shape=3x5x5
                conv a filters=4 size=3
                \(act)
                dense d units=6
                \(act)
                dense out units=2
                """)
            let (after, _) = try runPasses([FuseActivation()], on: g)
            XCTAssertEqual(after.nodes.count, 4, act)
            try assertEquivalent(g, after)
        }
    }

    func testResidualRefusals() throws {
        let g = net("""
            input x shape=4x6x6
            conv a filters=4 size=3 pad=1
            relu ar
            add s1 from=ar,x
            conv b filters=4 size=3 pad=1
            add s2 from=b,x,s1
            add out from=s2,b
            """)
        let (after, remarks) = try runPasses([FuseResidualAdd()], on: g)
        XCTAssertEqual(after.nodes.count, g.nodes.count)
        XCTAssertEqual(remarks.map(\.description), [
            "[fuse-residual-add] s1: not fused: no input is a conv or dense used only here, without an activation",
            "[fuse-residual-add] s2: not fused: 3 inputs",
            "[fuse-residual-add] out: not fused: it is a graph output",
        ])
    }
}

final class OtherPassTests: XCTestCase {
    func testDeadNodesGoInputsStay() throws {
        let g = net("""
            input x shape=2x4x4
            input unused shape=3
            relu a
            tanh b from=x
            sigmoid c from=b
            output a
            """)
        let (after, remarks) = try runPasses([DeadNodeElimination()], on: g)
        XCTAssertEqual(after.nodes.map(\.name), ["x", "unused", "a"])
        XCTAssertEqual(remarks.count, 2)
        try assertEquivalent(g, after)
    }

    func testDropoutRemovedUnlessOutput() throws {
        let g = net("""
            input x shape=8
            dropout d rate=0.3
            dense f units=4
            dropout out
            """)
        let (after, remarks) = try runPasses([RemoveDropout()], on: g)
        XCTAssertEqual(after.nodes.map(\.name), ["x", "f", "out"])
        XCTAssertEqual(remarks.map(\.description), ["[remove-dropout] d: removed", "[remove-dropout] out: kept: a graph output"])
        try assertEquivalent(g, after)
    }

    func testConvAlgorithmRuleAndRefusals() throws {
        let g = net("""
            input x shape=8x16x16
            conv big filters=8 size=3 pad=1
            conv small filters=8 size=3 pad=1 from=x
            maxpool size=8
            conv tiny filters=8 size=3 pad=1
            conv strided filters=8 size=3 stride=2 pad=1 from=big
            conv grouped filters=8 size=3 groups=2 pad=1 from=big
            conv depthwise filters=8 size=3 groups=8 pad=1 from=big
            conv pinned filters=8 size=3 pad=1 algorithm=direct from=big
            conv one filters=8 size=1 from=big
            conv valid filters=8 size=9 from=big
            conv overpadded filters=8 size=1 pad=2 from=big
            output tiny, strided, grouped, depthwise, pinned, one, valid, overpadded
            """)
        func algorithms(_ graph: Graph) -> [String: ConvAlgorithm] {
            var out: [String: ConvAlgorithm] = [:]
            for node in graph.nodes { if case .conv(let a) = node.op { out[node.name] = a.algorithm } }
            return out
        }
        // By default 8 channels are too few for Winograd: the implicit GEMM takes stride 1.
        let (narrow, narrowRemarks) = try runPasses([SelectConvAlgorithm()], on: g)
        let chosen = algorithms(narrow)
        XCTAssertEqual(chosen["big"], .implicit)
        XCTAssertEqual(chosen["one"], .implicit)
        XCTAssertEqual(chosen["grouped"], .direct, "4 filters per group: too narrow")
        XCTAssertEqual(chosen["strided"], .implicit, "stride 2 on its input's phase planes")
        XCTAssertEqual(chosen["depthwise"], .depthwise)
        XCTAssertEqual(chosen["pinned"], .direct)
        XCTAssertEqual(chosen["valid"], .gemm, "9x9 valid on 16 wide: 16 columns computed for 8")
        XCTAssertEqual(chosen["overpadded"], .gemm, "output wider than the input")
        XCTAssertTrue(narrowRemarks.contains {
            $0.description == "[select-conv-algorithm] big: implicit: stride 1 (8 -> 8 channels, below --winograd-min-channels 32)"
        }, "\(narrowRemarks)")
        XCTAssertTrue(narrowRemarks.contains {
            $0.description == "[select-conv-algorithm] strided: implicit: stride 2 on 4 phase planes of the input (not a 3x3 stride-1 dense convolution)"
        }, "\(narrowRemarks)")
        XCTAssertTrue(narrowRemarks.contains {
            $0.description == "[select-conv-algorithm] depthwise: depthwise: depthwise (groups = 8 channels): each output's taps in a register, stored once"
        }, "\(narrowRemarks)")
        XCTAssertTrue(narrowRemarks.contains {
            $0.description == "[select-conv-algorithm] grouped: direct: groups of 4 -> 4 channels are too narrow for a matrix product"
        }, "\(narrowRemarks)")
        XCTAssertFalse(narrowRemarks.contains { $0.node == "pinned" }, "a pinned algorithm is not touched")
        try assertEquivalent(g, narrow)

        // The Winograd rule itself, with the channel threshold at 1.
        var wide = PassManager(passes: [SelectConvAlgorithm()])
        wide.options.winogradMinChannels = 1
        let after = try wide.run(g).graph
        XCTAssertEqual(algorithms(after)["big"], .winograd4x4)
        XCTAssertEqual(algorithms(after)["tiny"], .implicit, "a 2x2 output: too few Winograd tiles")
        // F(2x2) where F(4x4)'s error estimate is over the budget (8 channels: 1.0e-5 and 1.0e-6).
        var between = PassManager(passes: [SelectConvAlgorithm()])
        between.options.winogradMinChannels = 1
        between.options.winogradErrorBudget = 5e-6
        XCTAssertEqual(algorithms(try between.run(g).graph)["big"], .winograd2x2)
        XCTAssertEqual(algorithms(after)["strided"], .implicit, "Winograd is stride 1 only")
        try assertEquivalent(g, after)
        // --no-winograd and an error budget too small for any tile: the implicit GEMM.
        var off = PassManager(passes: [SelectConvAlgorithm()])
        off.options.winogradMinChannels = 1
        off.options.winograd = false
        XCTAssertEqual(algorithms(try off.run(g).graph)["big"], .implicit)
        var strict = PassManager(passes: [SelectConvAlgorithm()])
        strict.options.winogradErrorBudget = 1e-9
        strict.options.winogradMinChannels = 1
        XCTAssertEqual(algorithms(try strict.run(g).graph)["big"], .implicit)
        // Training: 8 channels are below its Winograd threshold (64); the rest of the rule
        // unchanged.
        let training = try PassManager(passes: [SelectConvAlgorithm()], mode: .training).run(g).graph
        XCTAssertEqual(algorithms(training)["big"], .implicit)
        XCTAssertEqual(algorithms(training)["strided"], .gemm, "training runs strided layers on the GEMM")
        XCTAssertEqual(algorithms(training)["depthwise"], .depthwise)
    }

    func testWinogradLimits() throws {
        // F(4x4)'s buffers live in the arena's workspaces: no stack limit, but the measured
        // channel and tile limits (SelectConvAlgorithm.winogradMaxChannelSum, winogradMinTiles,
        // winogradMinTileUse); tiles are counted over the batch.
        let g = net("""
            input x shape=256x14x14
            conv mid filters=256 size=3 pad=1
            conv wide filters=1024 size=3 pad=1
            conv small filters=256 size=3 pad=1 from=x stride=2
            conv late filters=256 size=3 pad=1 from=small
            """)
        let (after, remarks) = try runPasses([SelectConvAlgorithm()], on: g)
        func algorithms(_ graph: Graph) -> [String: ConvAlgorithm] {
            var out: [String: ConvAlgorithm] = [:]
            for node in graph.nodes { if case .conv(let a) = node.op { out[node.name] = a.algorithm } }
            return out
        }
        XCTAssertEqual(algorithms(after)["mid"], .winograd4x4, "256 -> 256 at 14x14")
        XCTAssertEqual(algorithms(after)["wide"], .implicit)
        XCTAssertEqual(algorithms(after)["late"], .implicit, "7x7: too few tiles")
        XCTAssertTrue(remarks.contains {
            $0.description == "[select-conv-algorithm] wide: implicit: stride 1 (256 + 1024 channels: Winograd loses to the implicit GEMM above 1024 (not measured beyond))"
        }, "\(remarks)")
        XCTAssertTrue(remarks.contains {
            $0.description.hasPrefix("[select-conv-algorithm] late: implicit: stride 1 (a 7x7 output at batch 1 has 4 Winograd tiles (below 16")
        }, "\(remarks)")
        try assertEquivalent(g, after)
        // At batch 32 the 7x7 layer has 128 tiles over the batch (blocks span samples): Winograd.
        // A 2x2 output fills a quarter of its tile (still Winograd); a 1x1 output does not.
        var batched = PassManager(passes: [SelectConvAlgorithm()])
        batched.options.batch = 32
        let large = algorithms(try batched.run(g).graph)
        XCTAssertEqual(large["late"], .winograd4x4)
        XCTAssertEqual(large["wide"], .implicit)
        XCTAssertEqual(algorithms(try batched.run(net("input x shape=64x2x2\nconv two filters=64 size=3 pad=1\n")).graph)["two"], .winograd4x4)
        XCTAssertNotEqual(algorithms(try batched.run(net("input x shape=64x1x1\nconv dot filters=64 size=3 pad=1\n")).graph)["dot"], .winograd4x4)
        // Training takes the same rule on small planes (VGG-11-BN's 4x4 and 2x2 layers at batch
        // 16 and more), from 64 channels.
        var training = PassManager(passes: [SelectConvAlgorithm()], mode: .training)
        training.options.batch = 16
        let small = algorithms(try training.run(net("""
            input x shape=512x2x2
            conv two filters=512 size=3 pad=1
            conv narrow filters=32 size=3 pad=1
            """)).graph)
        XCTAssertEqual(small["two"], .winograd4x4)
        XCTAssertNotEqual(small["narrow"], .winograd4x4, "training's Winograd from 64 channels")
    }

    func testDepthwiseAlgorithmIsCheckedByShapeInference() {
        switch NetFrontend.parse("input x shape=4x8x8\nconv c filters=4 size=3 groups=2 algorithm=depthwise\n", path: "t.net") {
        case .success: XCTFail("a grouped (not depthwise) convolution was accepted with algorithm=depthwise")
        case .failure(let list): XCTAssertTrue(list.description.contains("algorithm=depthwise needs groups equal to the input channels (4), got groups=2"), list.description)
        }
    }

    func testImplicitAlgorithmIsCheckedByShapeInference() {
        // stride 2 with pad 3 on 8 columns: 7 output columns, wider than a 4-column phase plane
        switch NetFrontend.parse("input x shape=2x8x8\nconv c filters=2 size=1 stride=2 pad=3 algorithm=implicit\n", path: "t.net") {
        case .success: XCTFail("an implicit convolution wider than its phase planes was accepted")
        case .failure(let list):
            XCTAssertTrue(list.description.contains("algorithm=implicit needs an output no wider than the input divided by the stride (got 7 from 8 at stride 2)"),
                          list.description)
        }
        // a strided implicit convolution whose output fits the phase planes is accepted
        if case .failure(let list) = NetFrontend.parse("input x shape=2x8x8\nconv c filters=2 size=3 stride=2 pad=1 algorithm=implicit\n", path: "t.net") {
            XCTFail(list.description)
        }
    }

    func testVerifierCatchesABrokenPass() {
        struct Broken: Pass {
            let name = "broken"
            let summary = "removes a used node"
            let modes: Set<PipelineMode> = [.inference]
            func run(_ graph: inout Graph, options: PassOptions, remarks: inout [Remark]) {
                graph.nodes.remove(at: 1)
            }
        }
        let g = net("input x shape=4\nrelu a\ntanh b\n")
        XCTAssertThrowsError(try PassManager(passes: [Broken()]).run(g)) { error in
            XCTAssertTrue("\(error)".contains("compiler bug: the IR does not verify after pass 'broken'"), "\(error)")
        }
    }

    func testPrintIRAfterShowsRemarksAndIR() throws {
        let g = net("input x shape=4\ndense d units=3\nrelu r\ndense out units=2\n")
        var manager = PassManager(passes: Pipelines.optimizing(.inference))
        manager.printAfter = ["fuse-activation"]
        let printed = try manager.run(g).printed
        XCTAssertTrue(printed.hasPrefix("// after fuse-activation\n// [fuse-activation] r: fused into 'd'\nnetwork test\n"), printed)
        XCTAssertTrue(printed.contains("d = dense(x) units=3 bias=true init=he act=relu : 3"), printed)
    }

    func testFullPipelineOnExamplesIsEquivalent() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        for name in ["lenet", "resnet20", "inception", "activations", "alexnet_small"] {
            let path = "\(root)/Examples/\(name)/model.net"
            let g = try NetFrontend.load(path: path).get().0
            let after = try PassManager(passes: Pipelines.optimizing(.inference)).run(g).graph
            XCTAssertLessThan(after.nodes.count, g.nodes.count, name)
            try assertEquivalent(g, after, batch: 1)
        }
    }
}

/// Rewrites that chain: a rewrite renames or removes a node that a later one reads. Each pass
/// must read the graph as it is when it reaches a node, not as it was before its loop. Each
/// case trapped or failed verification before.
final class ChainedRewriteTests: XCTestCase {
    /// torchvision's mobilenet_v2: a block ends in an add with no activation after it, and
    /// the next block adds that output again.
    func testResidualAddOfAFusedAdd() throws {
        let g = net("""
            input x shape=8x6x6
            conv e1 filters=16 size=1
            batchnorm e1bn
            relu e1r
            conv d1 filters=16 size=3 pad=1 groups=16
            batchnorm d1bn
            relu d1r
            conv p1 filters=8 size=1
            batchnorm p1bn
            add s1 from=p1bn,x
            conv e2 filters=16 size=1
            batchnorm e2bn
            relu e2r
            conv p2 filters=8 size=1
            batchnorm p2bn
            add s2 from=p2bn,s1
            conv p3 filters=8 size=1
            add s3 from=s2,p3
            global_avgpool gap
            dense out units=3
            """)
        let (fused, remarks) = try runPasses([FoldBatchNorm(), FuseResidualAdd()], on: g)
        XCTAssertEqual(remarks.filter { $0.pass == "fuse-residual-add" }.map(\.description), [
            "[fuse-residual-add] s1: fused into 'p1'",
            "[fuse-residual-add] s2: fused into 'p2'",
            "[fuse-residual-add] s3: fused into 'p3'",
        ])
        XCTAssertEqual(fused.node(named: "p2")!.inputs, ["e2r", "p1"])
        XCTAssertEqual(fused.node(named: "p3")!.inputs, ["p2", "p2"])
        XCTAssertEqual(fused.node(named: "gap")!.inputs, ["p3"])
        try assertEquivalent(g, fused)
        // Without batch-norm folding only s3 (a conv's sum) fuses.
        let (residualOnly, residualRemarks) = try runPasses([FuseResidualAdd()], on: g)
        XCTAssertEqual(residualRemarks.filter { $0.message.hasPrefix("fused") }.map(\.node), ["s3"])
        try assertEquivalent(g, residualOnly)
        let (all, _) = try runPasses(Pipelines.optimizing(.inference), on: g)
        try assertEquivalent(g, all)
    }

    func testTwoBatchNormsInARow() throws {
        let g = net("""
            input x shape=3x6x6
            conv c filters=4 size=3 pad=1
            batchnorm bn1
            batchnorm bn2
            relu r
            batchnorm bn3 from=x
            batchnorm bn4
            concat out from=r,bn4
            """)
        let (after, remarks) = try runPasses([FoldBatchNorm()], on: g)
        XCTAssertEqual(remarks.map(\.description), [
            "[fold-batchnorm] bn1: folded into 'c'",
            "[fold-batchnorm] bn2: not folded: 'c' already has an epilogue",
            "[fold-batchnorm] bn3: not folded: input 'x' is not a conv or dense",
            "[fold-batchnorm] bn4: not folded: input 'bn3' is not a conv or dense",
        ])
        XCTAssertEqual(after.node(named: "bn2")!.inputs, ["c"])
        try assertEquivalent(g, after)
        let (all, _) = try runPasses(Pipelines.optimizing(.inference), on: g)
        try assertEquivalent(g, all)
    }

    func testDropoutsInARow() throws {
        let g = net("""
            input x shape=8
            dropout d1 rate=0.3
            dropout d2
            dropout d3 rate=0.1
            dense f units=4
            dropout d4
            dropout out
            """)
        let (after, remarks) = try runPasses([RemoveDropout()], on: g)
        XCTAssertEqual(after.nodes.map(\.name), ["x", "f", "out"])
        XCTAssertEqual(after.node(named: "f")!.inputs, ["x"])
        XCTAssertEqual(after.node(named: "out")!.inputs, ["f"])
        XCTAssertEqual(remarks.map(\.description), [
            "[remove-dropout] d1: removed", "[remove-dropout] d2: removed", "[remove-dropout] d3: removed",
            "[remove-dropout] d4: removed", "[remove-dropout] out: kept: a graph output",
        ])
        try assertEquivalent(g, after)
    }

    func testActivationsInARow() throws {
        let g = net("""
            input x shape=3x5x5
            conv c filters=4 size=3
            prelu p
            relu r
            sigmoid s
            dense out units=2
            """)
        let (after, remarks) = try runPasses([FuseActivation()], on: g)
        XCTAssertEqual(after.nodes.map(\.name), ["x", "c", "r", "s", "out"])
        XCTAssertEqual(remarks.map(\.description), [
            "[fuse-activation] p: fused into 'c'",
            "[fuse-activation] r: not fused: 'c' already has an activation",
            "[fuse-activation] s: not fused: input 'r' is not a conv or dense",
        ])
        try assertEquivalent(g, after)
    }

    /// Every pass, alone and in the pipeline, on a graph where each rewrite feeds the next.
    func testEveryPassAloneOnChainedRewrites() throws {
        let g = net("""
            input x shape=4x6x6
            dropout d0
            conv a filters=4 size=3 pad=1
            batchnorm abn
            batchnorm abn2
            dropout d1
            dropout d2
            add s1 from=d2,d0
            conv b filters=4 size=3 pad=1
            batchnorm bbn
            add s2 from=bbn,s1
            relu r1
            relu r2
            tanh unused
            global_avgpool gap from=r2
            dense out units=2
            """)
        for pass in Pipelines.all {
            let (after, _) = try runPasses([pass], on: g)
            try assertEquivalent(g, after)
        }
        let (all, _) = try runPasses(Pipelines.optimizing(.inference), on: g)
        XCTAssertNil(all.node(named: "unused"))
        try assertEquivalent(g, all)
    }

    /// Passes cost O(nodes + edges): 10,000 layers go through the pipeline (the ReLU
    /// chain in about 0.3 s in release; no timing is asserted here).
    func testTenThousandLayerChains() throws {
        let relus = net("input x shape=8\n" + (1...10_000).map { "relu r\($0)" }.joined(separator: "\n") + "\n")
        let (a, remarks) = try runPasses(Pipelines.optimizing(.inference), on: relus)
        XCTAssertEqual(a.nodes.count, 10_001)
        XCTAssertEqual(remarks.count, 10_000)
        var blocks = "input x shape=8\n"
        for i in 1...2_500 { blocks += "dense d\(i) units=8\nbatchnorm b\(i)\nrelu r\(i)\ndropout o\(i)\n" }
        blocks += "dense out units=2\n"
        let g = net(blocks)
        let (b, _) = try runPasses(Pipelines.optimizing(.inference), on: g)
        XCTAssertEqual(b.nodes.count, 2_502)
        try assertEquivalent(g, b, batch: 1)
    }
}
