// Compiled C objects kept between runs, keyed by the compiler, its flags and the source's
// text: `cnnc visualize` compiles the generated model, the runtime and the picture unit
// once and reuses them for every picture of the same network (the subcommand's own program
// is small and always compiled). The cache lives in CacheDirectory's folder; where it cannot
// be written, objects are built in the work folder as usual.

import CNNCIR
import Foundation

struct ObjectCache {
    let directory: String?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let base = CacheDirectory.path(environment: environment), (try? FileManager.default.createDirectory(atPath: "\(base)/objects", withIntermediateDirectories: true)) != nil {
            directory = "\(base)/objects"
        } else {
            directory = nil
        }
    }

    /// FNV-1a (the hash seeded initialization uses) of the parts, NUL-separated: a cache key,
    /// not a checksum against tampering.
    static func key(_ parts: [String]) -> String {
        String(SeededInit.nameHash(parts.joined(separator: "\u{0}")), radix: 16)
    }

    /// The object file of `source`, a file in `folder` that includes `headers` (beside it):
    /// from the cache, or compiled now (and kept when the cache is writable).
    func object(for source: String, headers: [String], in folder: String, toolchain: Toolchain) throws -> String {
        let texts = ([source] + headers).map { (try? String(contentsOfFile: "\(folder)/\($0)", encoding: .utf8)) ?? "" }
        let name = "\(Self.key([toolchain.compiler] + toolchain.flags + texts)).o"
        if let directory, FileManager.default.fileExists(atPath: "\(directory)/\(name)") { return "\(directory)/\(name)" }
        let local = "\(folder)/\(source).o"
        let result = try Shell.run([toolchain.compiler] + toolchain.flags + ["-I", folder, "-c", source, "-o", local], in: folder)
        guard result.status == 0 else { throw toolchain.failure(result) }
        guard let directory else { return local }
        // a unique name first, then an atomic rename, so that parallel runs never see half a file
        let temporary = "\(directory)/\(name).\(ProcessInfo.processInfo.processIdentifier).tmp"
        do {
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: local, toPath: temporary)
            guard rename(temporary, "\(directory)/\(name)") == 0 else { return local }
        } catch {
            return local
        }
        return "\(directory)/\(name)"
    }
}
