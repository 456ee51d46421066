// Loading a model file into a verified graph, with diagnostics rendered for the terminal.

import CNNCFrontend
import CNNCIR
import Foundation

/// A user-facing failure: already-rendered text, printed to stderr by the CLI with exit status 1.
public struct DriverError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// Any error as the one line cnnc prints: a DriverError as it is; a Foundation file error
    /// as the path and the system's reason, never `Error Domain=NSCocoaErrorDomain Code=...`.
    public static func describing(_ error: Error) -> String {
        if let d = error as? DriverError { return d.description }
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return "error: \(error)" }
        let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        var reason = ns.localizedDescription
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            reason = String(cString: strerror(Int32(underlying.code)))
        } else if ns.domain == NSPOSIXErrorDomain {
            reason = String(cString: strerror(Int32(ns.code)))
        }
        return "error: " + (path.map { "'\($0)': " } ?? "") + reason
    }
}

/// A loaded model: its graph (shapes inferred, verified) and the source it came from.
public struct LoadedModel {
    public var graph: Graph
    public var path: String
    public var source: SourceFile?
    /// Weights that came with the model (an ONNX file's initializers, under cnnc's parameter
    /// names); `check`, `run`, `export` and the compiler use them when no --weights is given.
    public var weights: [String: FloatArray]? = nil
    /// An ONNX file's float initializers that are not weights (a Dropout's ratio, Clip's
    /// bounds: constants of the graph), by their ONNX names.
    public var constantInitializers: [String] = []
}

/// Throws a DriverError unless every path is a regular file: the files a generated C program
/// will open (weights, checkpoints, data), where a FIFO or device would block or never end.
public func requireRegularFiles(_ paths: [String?]) throws {
    for case let path? in paths {
        do { try InputFile.requireRegularFile(path) } catch { throw DriverError("error: \(error)") }
    }
}

public enum ModelLoader {
    /// Loads a `.net` file (or IR text, by the `.ir` extension; ONNX, by `.onnx`). Every diagnostic is rendered
    /// with its source line and caret into the thrown error.
    public static func load(_ path: String) throws -> LoadedModel {
        if path.hasSuffix(".onnx") { return try loadONNX(path) }
        if path.hasSuffix(".ir") {
            let bytes: [UInt8]
            do { bytes = try InputFile.read(path, limit: NetFrontend.maxFileSize) } catch { throw DriverError("error: \(error)") }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw DriverError("error: cannot read '\(path)': not UTF-8 text")
            }
            let file = SourceFile(path: path, text: text)
            switch Graph.parseIR(text, file: path) {
            case .success(var graph):
                var problems = graph.inferShapes()
                if problems.isEmpty { problems = graph.verify() }
                guard problems.isEmpty else { throw render(problems, file) }
                return LoadedModel(graph: graph, path: path, source: file)
            case .failure(let list): throw render(list.diagnostics, file)
            }
        }
        switch NetFrontend.load(path: path) {
        case .success(let (graph, file)): return LoadedModel(graph: graph, path: path, source: file)
        case .failure(let list):
            // The source again, for the caret lines (a regular file only; never blocks).
            let text = (try? InputFile.read(path, limit: NetFrontend.maxFileSize)).flatMap { String(validating: $0, as: UTF8.self) }
            throw render(list.diagnostics, text.map { SourceFile(path: path, text: $0) })
        }
    }

    /// All diagnostics as the terminal shows them, with a count at the end when several.
    public static func render(_ diagnostics: [Diagnostic], _ file: SourceFile?) -> DriverError {
        var parts = diagnostics.map { d in file?.render(d) ?? d.description }
        let errors = diagnostics.filter { $0.severity == .error }.count
        if errors > 1 { parts.append("\(errors) errors generated.") }
        return DriverError(parts.joined(separator: "\n"))
    }
}
