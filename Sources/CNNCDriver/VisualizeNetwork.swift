// What `cnnc visualize` checks before it builds anything: layers, classes and inputs of a
// network, with errors that name what exists ("network 'lenet' has no layer 'c9'; its
// layers: ..."); and the header that points the C programs at the generated model.

import CNNCIR
import Foundation

/// A network as `cnnc visualize` sees it: one input, layers by name, class scores.
struct VisualizeNetwork {
    let graph: Graph
    let input: Node
    /// The layer whose values are the class scores: the first output, or its input when that
    /// output is a softmax (scores are taken before a final softmax).
    let scores: Node

    init(_ model: LoadedModel) throws {
        graph = model.graph
        guard graph.inputs.count == 1, let first = graph.inputs.first else {
            throw DriverError("error: visualize needs a network with one input, '\(graph.name)' has \(graph.inputs.count)")
        }
        input = first
        guard input.shape.rank == 3 else {
            throw DriverError("error: visualize needs an image input (C x H x W), '\(input.name)' of '\(graph.name)' is \(input.shape)")
        }
        var out = graph.node(named: graph.outputs[0])!
        if case .softmax = out.op, let logits = graph.node(named: out.inputs[0]) { out = logits }
        scores = out
    }

    var classes: Int { scores.shape.count }
    var layerNames: String { graph.nodes.map(\.name).joined(separator: ", ") }
    var convNames: String {
        let names = graph.nodes.filter { if case .conv = $0.op { return true } else { return false } }.map(\.name)
        return names.isEmpty ? "(none)" : names.joined(separator: ", ")
    }

    func keyword(_ node: Node) -> String { node.op.keyword?.rawValue ?? "input" }

    func layer(_ name: String) throws -> Node {
        guard let node = graph.node(named: name) else {
            throw DriverError("error: network '\(graph.name)' has no layer '\(name)'; its layers: \(layerNames)")
        }
        return node
    }

    func noSuchClass(_ k: Int) -> DriverError {
        DriverError("error: class \(k) does not exist: network '\(graph.name)' has \(classes) classes (0 to \(classes - 1), the scores of '\(scores.name)')")
    }

    /// "3", "3,7" (one per input; any number when `inputs` is nil) or "all" as a list of
    /// classes; nil gives [] (the predicted ones).
    func classList(_ text: String?, inputs: Int?) throws -> [Int] {
        guard let text else { return [] }
        if text == "all" { return Array(0..<classes) }
        var list: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let k = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw DriverError("error: --class takes a class number, a comma-separated list or 'all', got '\(text)'")
            }
            guard k >= 0 && k < classes else { throw noSuchClass(k) }
            list.append(k)
        }
        if let inputs, list.count != 1 && list.count != inputs {
            throw DriverError("error: --class lists \(list.count) classes for \(inputs) input\(inputs == 1 ? "" : "s"): give one class for all or one per input")
        }
        return list
    }

    var inputShape: String { "\(input.shape.c)x\(input.shape.h)x\(input.shape.w)" }

    /// The number of inputs --input (or --data --index) gives, after checking its shape.
    func inputCount(_ o: VisualizeOptions) throws -> Int {
        guard let path = o.input else { return 1 }
        if path.hasSuffix(".npy") {
            let a = try NumpyFile.read(path)
            let s = input.shape
            guard (a.shape.count == 3 || a.shape.count == 4) && Array(a.shape.suffix(3)) == [s.c, s.h, s.w]
                    && a.shape.first! >= 1 else {
                throw DriverError("error: \(path) has shape (\(a.shape.map(String.init).joined(separator: ","))); network '\(graph.name)' takes (\(s.c),\(s.h),\(s.w)) or (N,\(s.c),\(s.h),\(s.w))")
            }
            let n = a.shape.count == 4 ? a.shape[0] : 1
            if let i = o.index {
                guard i >= 0 && i < n else { throw DriverError("error: --index \(i) is out of range: \(path) holds \(n) input\(n == 1 ? "" : "s")") }
                return 1
            }
            return n
        }
        let png = try PNGHeader.read(path)
        let color = png.channels >= 3 ? 3 : 1
        guard color == input.shape.c else {
            let kind = input.shape.c == 3 ? "RGB" : input.shape.c == 1 ? "gray" : "not an image"
            throw DriverError("error: \(path) is \(png.colorName) (\(png.channels) channel\(png.channels > 1 ? "s" : "")); network '\(graph.name)' takes \(inputShape) inputs (\(kind))")
        }
        guard o.resize || (png.width == input.shape.w && png.height == input.shape.h) else {
            throw DriverError("error: \(path) is \(png.width)x\(png.height) pixels; network '\(graph.name)' takes \(input.shape.w)x\(input.shape.h) (add --resize to resize it)")
        }
        return 1
    }

    /// Checks --input / --data / --index and returns them as program arguments.
    func inputArguments(_ o: VisualizeOptions, required: Bool) throws -> [String] {
        var args: [String] = []
        if let data = o.data {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory) else {
                throw DriverError("error: --data '\(data)' does not exist")
            }
            let format: String
            if data.hasSuffix(".npy") {
                guard let labels = o.labels else { throw DriverError("error: --data x.npy needs --labels y.npy") }
                format = "npy"
                args.append("labels=\(VisualizeCommand.absolute(labels))")
            } else if FileManager.default.fileExists(atPath: "\(data)/test_batch.bin") || data.hasSuffix(".bin") {
                format = "cifar10"
            } else {
                format = "fashion-mnist"
            }
            args += ["data=\(VisualizeCommand.absolute(data))", "format=\(format)"]
        }
        if let path = o.input {
            guard FileManager.default.fileExists(atPath: path) else { throw DriverError("error: cannot read '\(path)'") }
            _ = try inputCount(o)
            args.append("input=\(VisualizeCommand.absolute(path))")
            if o.resize { args.append("resize=1") }
        } else if required && o.data == nil {
            throw DriverError("error: give an input: --input IMG (.npy or .png) or --data DIR --index I")
        }
        if let i = o.index {
            guard i >= 0 else { throw DriverError("error: --index must be 0 or more, got \(i)") }
            args.append("index=\(i)")
        }
        return args
    }

    /// viz_model.h: the generated model (prefix `model`) under the names the programs use.
    func shim(training: Bool) -> String {
        """
        /* viz_model.h: written by `cnnc visualize` for network '\(graph.name)'. */
        #include "model.h"
        #define MODEL(name) model_##name
        #define MODEL_MACRO(name) MODEL_##name
        #define VIZ_NETWORK "\(graph.name)"
        #define VIZ_C \(input.shape.c)
        #define VIZ_H \(input.shape.h)
        #define VIZ_W \(input.shape.w)
        #define VIZ_TRAINING \(training ? 1 : 0)
        #define VIZ_SCORE_LAYER "\(scores.name)"

        """
    }
}

/// The size and colour type of a PNG file, from its IHDR chunk (the pixels are read in C,
/// with libpng).
struct PNGHeader {
    var width: Int
    var height: Int
    var channels: Int
    var colorName: String

    static func read(_ path: String) throws -> PNGHeader {
        // A regular file only (a FIFO would block); its first 33 bytes.
        let bytes: [UInt8]
        do { bytes = Array(try InputFile.read(path, limit: 1 << 30).prefix(33)) } catch { throw DriverError("error: \(error)") }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count == 33, Array(bytes[0..<8]) == signature, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            throw DriverError("error: \(path) is neither a .npy file nor a PNG file")
        }
        func be32(_ i: Int) -> Int { bytes[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let depth = bytes[24], colorType = bytes[25]
        guard depth <= 8 else { throw DriverError("error: \(path): 16-bit PNG files are not supported (8-bit gray, RGB or RGBA only)") }
        let (channels, name): (Int, String)
        switch colorType {
        case 0: (channels, name) = (1, "gray")
        case 2: (channels, name) = (3, "RGB")
        case 3: (channels, name) = (3, "RGB (palette)")
        case 4: (channels, name) = (2, "gray+alpha")
        case 6: (channels, name) = (4, "RGBA")
        default: throw DriverError("error: \(path): PNG colour type \(colorType) is not valid")
        }
        return PNGHeader(width: be32(16), height: be32(20), channels: channels, colorName: name)
    }
}
