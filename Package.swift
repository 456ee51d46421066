// swift-tools-version:6.0
// cnnc — a compile-ahead compiler for convolutional neural networks.
//
// Dependencies point one way: CNNCIR <- CNNCFrontend, CNNCInterpreter, CNNCPasses, CNNCBackendC
// <- CNNCDriver <- cnnc.
// The interpreter never imports the passes or the backend, so it can judge them.
import PackageDescription

let package = Package(
    name: "cnnc",
    products: [
        .executable(name: "cnnc", targets: ["cnnc"]),
        .library(name: "CNNCIR", targets: ["CNNCIR"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .target(name: "CNNCIR"),
        .target(
            name: "CNNCFrontend",
            dependencies: ["CNNCIR", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["ONNX/README.md"]),
        .target(name: "CNNCInterpreter", dependencies: ["CNNCIR"]),
        .target(name: "CNNCPasses", dependencies: ["CNNCIR"]),
        .target(name: "CNNCBackendC", dependencies: ["CNNCIR"]),
        .target(
            name: "CNNCDriver",
            dependencies: ["CNNCIR", "CNNCFrontend", "CNNCInterpreter", "CNNCPasses", "CNNCBackendC"]),
        .executableTarget(
            name: "cnnc",
            dependencies: [
                "CNNCDriver",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildCommit"]),
        // Writes the git commit into the cnnc target before each build (cnnc --version).
        .plugin(name: "BuildCommit", capability: .buildTool()),
        .testTarget(name: "CNNCIRTests", dependencies: ["CNNCIR", "CNNCFrontend"]),
        .testTarget(name: "CNNCFrontendTests", dependencies: ["CNNCIR", "CNNCFrontend"]),
        .testTarget(name: "CNNCInterpreterTests", dependencies: ["CNNCIR", "CNNCFrontend", "CNNCInterpreter"]),
        .testTarget(name: "CNNCPassesTests", dependencies: ["CNNCIR", "CNNCFrontend", "CNNCInterpreter", "CNNCPasses"]),
        .testTarget(name: "CNNCBackendCTests", dependencies: ["CNNCIR", "CNNCBackendC", "CNNCInterpreter", "CNNCDriver"], exclude: ["Snapshots"]),
        .testTarget(name: "CNNCDriverTests", dependencies: ["CNNCDriver", "CNNCIR", "CNNCInterpreter"], exclude: ["Fixtures"]),
        .testTarget(
            name: "ONNXTests", dependencies: ["CNNCIR", "CNNCFrontend", "CNNCInterpreter", "CNNCDriver"],
            exclude: ["Fixtures"]),
        .testTarget(name: "ExamplesTests", dependencies: ["CNNCIR", "CNNCFrontend", "CNNCInterpreter"]),
    ]
)
