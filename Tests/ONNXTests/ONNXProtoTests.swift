// The generated ONNX protobuf code links and round-trips a message.

import XCTest
@testable import CNNCFrontend

final class ONNXProtoTests: XCTestCase {
    func testModelProtoRoundTrips() throws {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.graph.name = "g"
        let data = try model.serializedData()
        XCTAssertEqual(try Onnx_ModelProto(serializedBytes: data).graph.name, "g")
    }
}
