// Writing the files a user names (`-o`, `--output`, `--save`, `--log`, `--save-gradient`):
// the folders missing above them are created and named in one line on stderr
// (`created folder out/`), and a path that cannot be written gets an error naming the part
// that failed and why (a file where a folder should be, permission denied, a full disk).
// Only regular files are written: a FIFO, a device, a socket or a folder at the path is
// refused at once, without blocking in open (a FIFO with no reader) and without truncating.
// Every file cnnc writes goes through here; files the generated C programs write (the
// trainer's checkpoints and log, `run`'s outputs, pictures) are `prepare`d first.

import Foundation
import CNNCIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes user-named files, creating the folders above them.
public enum OutputFile {
    /// Creates the folders missing above `path` (one line on stderr when it made any);
    /// throws naming the part of the path that is not a folder or cannot be created.
    public static func prepare(_ path: String) throws {
        try refuseIfNotRegular(path)
        var folder = path
        while folder.hasSuffix("/") { folder.removeLast() }
        guard let slash = folder.lastIndex(of: "/") else { return }
        folder = String(folder[..<slash])
        while folder.hasSuffix("/") { folder.removeLast() }
        guard !folder.isEmpty else { return }

        var prefix = folder.hasPrefix("/") ? "/" : ""
        var created = false
        for part in folder.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            var info = stat()
            if stat(prefix, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    let what = info.st_mode & S_IFMT == S_IFREG ? "is a file" : "is there"
                    throw DriverError("error: cannot write '\(path)': '\(prefix)' \(what), not a folder")
                }
                continue
            }
            let code = errno
            guard code == ENOENT else {
                throw DriverError("error: cannot write '\(path)': cannot reach '\(prefix)': \(reason(code))")
            }
            guard mkdir(prefix, 0o777) == 0 || errno == EEXIST else {
                throw DriverError("error: cannot create folder '\(prefix)/' for '\(path)': \(reason(errno))")
            }
            created = true
        }
        if created { FileHandle.standardError.write(Data("created folder \(folder)/\n".utf8)) }
    }

    /// Writes `data` to `path` (replacing what is there), creating the folders above it.
    public static func write(_ data: Data, to path: String) throws {
        try prepare(path)
        // O_NONBLOCK: a FIFO with no reader fails with ENXIO instead of blocking; anything
        // but a regular file is refused before O_TRUNC's work is done by ftruncate.
        let fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            let code = errno
            try refuseIfNotRegular(path)
            throw DriverError("error: cannot write '\(path)': \(reason(code))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw DriverError("error: cannot write '\(path)': \(reason(errno))") }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw DriverError("error: cannot write '\(path)': it is \(InputFile.kind(info.st_mode)), not a regular file")
        }
        let flags = fcntl(fd, F_GETFL)
        guard ftruncate(fd, 0) == 0, flags != -1, fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != -1 else {
            throw DriverError("error: cannot write '\(path)': \(reason(errno))")
        }
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw DriverError("error: cannot write '\(path)': \(reason(errno))") }
                offset += n
            }
        }
    }

    /// Writes `text` as UTF-8 to `path`, creating the folders above it.
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    #if canImport(Glibc)
    private static let systemWrite = Glibc.write
    #else
    private static let systemWrite = Darwin.write
    #endif

    /// Throws when something other than a regular file (or a link to one) is at `path`.
    static func refuseIfNotRegular(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG else { return }
        throw DriverError("error: cannot write '\(path)': it is \(InputFile.kind(info.st_mode)), not a regular file")
    }

    /// The C library's message for an errno value, lower-case ("permission denied").
    static func reason(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }
}
