// The training step's memory: activations a backward kernel reads are kept through the
// backward; the others (batch norm's output before a ReLU, an add's output) live only through
// the forward, in the region the gradients take over after it. That the generated step still
// computes the interpreter's gradients is checked by `cnnc check --train` on every example
// (TrainingTests, with the arena NaN-filled); here, which values are which, and the bytes.

@testable import CNNCBackendC
import CNNCDriver
import CNNCIR
import Foundation
import XCTest

final class TrainingLayoutTests: XCTestCase {
    func layout(_ example: String, batch: Int) throws -> (Graph, TrainingLayout) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = try ModelLoader.load(root.appendingPathComponent("Examples/\(example)/model.net").path)
        let graph = try TrainChecker.trainingGraph(model.graph)
        let spec = TrainingSpec(graph: graph)
        return (graph, TrainingLayout(spec, plan: GradientPlan(graph, frozen: spec.frozen), maxBatch: batch))
    }

    func testResNetKeepsWhatBackwardReads() throws {
        let (graph, layout) = try layout("resnet20", batch: 4)
        let byName = Dictionary(uniqueKeysWithValues: graph.nodes.map { ($0.name, $0) })
        var batchNorms = 0
        for node in graph.nodes {
            switch node.op {
            case .batchNorm:
                batchNorms += 1
                // its input (a convolution's output) is read by batch norm's backward
                XCTAssertFalse(layout.forwardOnly.contains(node.inputs[0]), node.inputs[0])
                // its output goes to a ReLU or an add, whose backward reads neither input
                XCTAssertTrue(layout.forwardOnly.contains(node.name), node.name)
            case .add:
                XCTAssertTrue(layout.forwardOnly.contains(node.name), node.name)
            case .activation(.relu):
                XCTAssertFalse(layout.forwardOnly.contains(node.name), node.name)
                if case .batchNorm = byName[node.inputs[0]]!.op {} else if case .add = byName[node.inputs[0]]!.op {} else {
                    XCTFail("\(node.name) follows \(node.inputs[0])")
                }
            default:
                break
            }
        }
        XCTAssertEqual(batchNorms, 21)
        // no forward-only value is one a backward kernel names
        XCTAssertTrue(layout.forwardOnly.isDisjoint(with: TrainingLayout.readByBackward(
            TrainingSpec(graph: graph), plan: GradientPlan(graph, frozen: []))))
        // kept activations, then one region for forward-only activations and gradients
        XCTAssertEqual(layout.arenaFloats,
                       layout.keptActivationFloats + max(layout.plannedTransientFloats, layout.plannedGradientFloats))
        XCTAssertLessThan(layout.keptActivationFloats + layout.plannedTransientFloats,
                          layout.keptActivationFloats + layout.naiveTransientFloats)
        for name in layout.forwardOnly {
            guard case .arena(let offset) = layout.activation[name]! else { return XCTFail(name) }
            XCTAssertGreaterThanOrEqual(offset, layout.keptActivationFloats, name)
        }
    }
}
