// A ResNet-20 (CIFAR) forward pass: every residual-network op together, and a check that
// the interpreter stays fast enough in debug builds to judge real models.

import CNNCIR
import CNNCInterpreter
import XCTest

final class ResNetTests: XCTestCase {
    /// ResNet-20 for 3x32x32 images (He et al. 2016): a 3x3 stem, three stages of three basic
    /// blocks (16, 32, 64 filters; 1x1 stride-2 projections where the shape changes), global
    /// average pooling and a 10-way classifier with softmax.
    static func resnet20() -> Graph {
        var nodes = [Node(name: "image", op: .input(Shape([3, 32, 32])), inputs: [])]
        func conv(_ name: String, _ from: String, filters: Int, size: Int, stride: Int) -> String {
            let pad = size / 2
            nodes.append(Node(name: name, op: .conv(ConvAttributes(
                filters: filters, kernel: Pair(size), stride: Pair(stride), padding: Padding(pad, pad),
                bias: false)), inputs: [from]))
            return name
        }
        func bn(_ name: String, _ from: String) -> String {
            nodes.append(Node(name: name, op: .batchNorm(BatchNormAttributes()), inputs: [from]))
            return name
        }
        func relu(_ name: String, _ from: String) -> String {
            nodes.append(Node(name: name, op: .activation(.relu), inputs: [from]))
            return name
        }
        var x = relu("stem_relu", bn("stem_bn", conv("stem", "image", filters: 16, size: 3, stride: 1)))
        var channels = 16
        for (stage, filters) in [16, 32, 64].enumerated() {
            for block in 0..<3 {
                let p = "s\(stage)b\(block)"
                let stride = stage > 0 && block == 0 ? 2 : 1
                let a = relu("\(p)_relu1", bn("\(p)_bn1", conv("\(p)_conv1", x, filters: filters, size: 3, stride: stride)))
                let b = bn("\(p)_bn2", conv("\(p)_conv2", a, filters: filters, size: 3, stride: 1))
                var shortcut = x
                if stride != 1 || channels != filters {
                    shortcut = bn("\(p)_proj_bn", conv("\(p)_proj", x, filters: filters, size: 1, stride: stride))
                }
                nodes.append(Node(name: "\(p)_add", op: .add, inputs: [b, shortcut]))
                x = relu("\(p)_relu2", "\(p)_add")
                channels = filters
            }
        }
        nodes.append(Node(name: "pool", op: .globalAvgPool, inputs: [x]))
        nodes.append(Node(name: "flat", op: .flatten, inputs: ["pool"]))
        nodes.append(Node(name: "logits", op: .dense(DenseAttributes(units: 10)), inputs: ["flat"]))
        nodes.append(Node(name: "prob", op: .softmax, inputs: ["logits"]))
        var graph = Graph(name: "resnet20", nodes: nodes, outputs: ["prob"])
        let problems = graph.inferShapes()
        precondition(problems.isEmpty, "\(problems)")
        return graph
    }

    func testResNet20RunsOneImage() throws {
        let graph = Self.resnet20()
        let interpreter = try Interpreter(graph: graph, parameters: Weights.seeded(graph, seed: 7))
        let image = SeededData.input(name: "image", shape: [1, 3, 32, 32], seed: 7)
        let start = Date()
        let values = try interpreter.run(["image": image])
        let seconds = Date().timeIntervalSince(start)
        print("resnet20: one image in \(String(format: "%.2f", seconds)) s")
        XCTAssertEqual(values["s2b2_relu2"]?.shape, [1, 64, 8, 8])
        let prob = try XCTUnwrap(values["prob"])
        XCTAssertEqual(prob.shape, [1, 10])
        XCTAssertTrue(prob.data.allSatisfy { $0.isFinite && $0 > 0 })
        XCTAssertEqual(prob.data.reduce(0, +), 1, accuracy: 1e-12)
    }
}
