// Reading the files a user names (models, weights, external data, arrays): regular files
// only, size-checked, never past the size the file had when opened. A FIFO, a device (or a
// symlink to one, such as /dev/zero) or a socket is refused instead of blocking forever or
// reading until memory runs out.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read; the description names the file.
public struct InputFileError: Error, CustomStringConvertible {
    public var description: String
    /// The file is a regular file over the size limit.
    public var tooLarge: Bool
    public init(_ description: String, tooLarge: Bool = false) {
        self.description = description; self.tooLarge = tooLarge
    }
}

/// Reads regular files with a size limit.
public enum InputFile {
    /// The bytes of the regular file at `path`, at most `limit` bytes. With `inside`, the
    /// file's real path (symlinks resolved) must lie in that folder's real path.
    public static func read(_ path: String, limit: Int, inside folder: String? = nil) throws -> [UInt8] {
        if let folder { try requireInside(path, folder) }
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard size <= limit else {
            throw InputFileError("'\(path)' is \(size) bytes; the limit is \(limit)", tooLarge: true)
        }
        return try readRange(fd, path, offset: 0, count: size)
    }

    /// `length` bytes (or the rest of the file) from `offset` of the regular file at `path`,
    /// which must lie inside `folder` when given; a range past the end is an error with both
    /// numbers.
    public static func read(_ path: String, offset: Int, length: Int?, inside folder: String? = nil) throws -> [UInt8] {
        if let folder { try requireInside(path, folder) }
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard offset >= 0, offset <= size else {
            throw InputFileError("'\(path)' has \(size) bytes; offset \(offset) is outside it")
        }
        let count = length ?? (size - offset)
        guard count >= 0, count <= size - offset else {
            throw InputFileError("'\(path)' ends after \(size - offset) of \(count) bytes from offset \(offset)")
        }
        return try readRange(fd, path, offset: offset, count: count)
    }

    /// Throws unless `path` is a regular file (checked without blocking): for files a
    /// generated C program opens later, where a FIFO would block it.
    public static func requireRegularFile(_ path: String) throws {
        let (fd, _) = try openRegular(path)
        close(fd)
    }

    /// What a file that is not a regular one is, for messages ("a FIFO"); the C runtime's
    /// `file_kind` (io.c) says the same.
    public static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "something else"
        }
    }

    /// Opens a regular file without blocking (a FIFO with no writer opens at once, then
    /// fstat refuses it); returns the descriptor and the size.
    private static func openRegular(_ path: String) throws -> (Int32, Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw InputFileError("cannot read '\(path)': \(reason(errno))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw InputFileError("cannot read '\(path)': \(reason(code))")
        }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(fd)
            if type == S_IFDIR { throw InputFileError("cannot read '\(path)': it is a directory") }
            throw InputFileError("cannot read '\(path)': it is \(kind(info.st_mode)), not a regular file")
        }
        return (fd, Int(info.st_size))
    }

    private static func readRange(_ fd: Int32, _ path: String, offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + done, count - done, offset + done) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw InputFileError("cannot read '\(path)': \(reason(errno))") }
            if n == 0 { break }  // the file shrank since fstat
            done += n
        }
        guard done == count else {
            throw InputFileError("'\(path)' ended after \(done) of \(count) bytes while being read")
        }
        return bytes
    }

    /// Throws unless `path`, symlinks resolved, is inside `folder` (also resolved). The
    /// message names the path as given, never what a link points at.
    public static func requireInside(_ path: String, _ folder: String) throws {
        guard let real = realPath(path) else {
            throw InputFileError("cannot read '\(path)': \(reason(errno))")
        }
        guard let base = realPath(folder) else {
            throw InputFileError("cannot read folder '\(folder)': \(reason(errno))")
        }
        let prefix = base.hasSuffix("/") ? base : base + "/"
        guard real.hasPrefix(prefix) else {
            throw InputFileError("cannot read '\(path)': it leads outside the model's folder '\(folder)'")
        }
    }

    private static func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: Int) -> Int {
        pread(fd, buffer, count, off_t(offset))
    }

    private static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// A short lower-case reason for an errno value.
    public static func reason(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES, EPERM: return "permission denied"
        case EISDIR: return "it is a directory"
        case ENOTDIR: return "a folder in the path is a file"
        case ELOOP: return "too many symbolic links"
        default: return String(cString: strerror(code))
        }
    }
}
