// Reading and writing `.npy` arrays and safetensors files from Swift, for `cnnc run`,
// `cnnc check` and tests. Float32, C order; errors name the file and the numbers.

import CNNCIR
import Foundation

/// The largest `.npy` or safetensors file read (bytes): a limit, so that a file of any size
/// is refused with a message instead of exhausting memory.
public let maxTensorFileSize = 1 << 36

/// The bytes of a regular file (no FIFO, device or directory), at most `maxTensorFileSize`.
func readTensorFile(_ path: String) throws -> [UInt8] {
    do { return try InputFile.read(path, limit: maxTensorFileSize) } catch { throw DriverError("error: \(error)") }
}

/// A float32 array with its shape, as stored in files.
public struct FloatArray: Equatable {
    public var shape: [Int]
    public var data: [Float]
    public init(shape: [Int], data: [Float]) { self.shape = shape; self.data = data }
}

public enum NumpyFile {
    /// Reads a `.npy` file holding float32 (`<f4`) or float64/integer data (converted).
    public static func read(_ path: String) throws -> FloatArray {
        var notes: [String] = []
        return try read(path, notes: &notes)
    }

    /// The same, adding a note when converting lost values: float64 values beyond float32's
    /// range (1e300 becomes inf).
    public static func read(_ path: String, notes: inout [String]) throws -> FloatArray {
        let bytes = try readTensorFile(path)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw DriverError("error: '\(path)' is not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw DriverError("error: '\(path)': truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard headerLength <= bytes.count - headerStart,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .ascii) else {
            throw DriverError("error: '\(path)': header length \(headerLength) exceeds the file size \(bytes.count)")
        }
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrField = field("descr"), descrField.hasPrefix("'"),
              let descr = descrField.dropFirst().split(separator: "'").first.map(String.init) else {
            throw DriverError("error: '\(path)': no dtype in header")
        }
        if let f = field("fortran_order"), f.hasPrefix("True") {
            throw DriverError("error: '\(path)': fortran-order arrays are not supported")
        }
        guard let shapeField = field("shape"), shapeField.hasPrefix("("),
              let close = shapeField.firstIndex(of: ")") else {
            throw DriverError("error: '\(path)': no shape in header")
        }
        var shape: [Int] = []
        for part in shapeField[shapeField.index(after: shapeField.startIndex)..<close].split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let v = Int(t), v >= 0 else { throw DriverError("error: '\(path)': bad shape in header (dimension '\(t)')") }
            shape.append(v)
        }
        let itemSizes: [String: Int] = ["<f4": 4, "<f8": 8, "|u1": 1, "|i1": 1, "<i4": 4, "<i8": 8]
        guard let size = itemSizes[descr] else {
            throw DriverError("error: '\(path)': dtype '\(descr)' is not supported (use float32 '<f4')")
        }
        let start = headerStart + headerLength
        guard let count = SizeArithmetic.product(shape), let needed = SizeArithmetic.multiply(count, size) else {
            throw DriverError("error: '\(path)': shape \(shape) has more elements than fit in 64 bits")
        }
        guard bytes.count - start >= needed else {
            throw DriverError("error: '\(path)': expected \(needed) data bytes for shape \(shape), got \(bytes.count - start)")
        }
        var values = [Float](repeating: 0, count: count)
        var overflowed = 0, firstOverflow = -1
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + start
            for i in 0..<count {
                let p = base + i * size
                switch descr {
                case "<f4": values[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
                case "<f8":
                    let d = Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
                    values[i] = Float(d)
                    if d.isFinite && values[i].isInfinite {
                        overflowed += 1
                        if firstOverflow < 0 { firstOverflow = i }
                    }
                case "|u1": values[i] = Float(p.load(as: UInt8.self))
                case "|i1": values[i] = Float(p.load(as: Int8.self))
                case "<i4": values[i] = Float(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
                default: values[i] = Float(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
                }
            }
        }
        if overflowed > 0 {
            notes.append("'\(path)': \(overflowed) float64 value\(overflowed == 1 ? "" : "s") beyond float32's range became infinite (first at index \(firstOverflow))")
        }
        return FloatArray(shape: shape, data: values)
    }

    /// Writes a float32 C-order `.npy` (format version 1.0).
    public static func write(_ array: FloatArray, to path: String) throws {
        var payload: [UInt8] = []
        payload.reserveCapacity(array.data.count * 4)
        for v in array.data { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload += $0 } }
        try write(descr: "<f4", shape: array.shape, payload: payload, to: path)
    }

    /// Writes int64 labels as a 1-d `.npy`.
    public static func writeLabels(_ labels: [Int], to path: String) throws {
        var payload: [UInt8] = []
        for v in labels { withUnsafeBytes(of: Int64(v).littleEndian) { payload += $0 } }
        try write(descr: "<i8", shape: [labels.count], payload: payload, to: path)
    }

    static func write(descr: String, shape: [Int], payload: [UInt8], to path: String) throws {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)"
            : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        bytes += payload
        try OutputFile.write(Data(bytes), to: path)
    }
}

public enum SafetensorsFile {
    /// The first key that appears twice at the top level of a JSON object, or nil. Values are
    /// skipped by depth (strings and their escapes respected); keys compare decoded.
    static func duplicateKey(_ json: ArraySlice<UInt8>) -> String? {
        var i = json.startIndex
        func skipSpace() { while i < json.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(json[i]) { i += 1 } }
        /// The string starting at `i` (a quote), raw with its quotes; moves past it.
        func rawString() -> ArraySlice<UInt8>? {
            let start = i
            i += 1
            while i < json.endIndex, json[i] != UInt8(ascii: "\"") { i += json[i] == UInt8(ascii: "\\") ? 2 : 1 }
            guard i < json.endIndex else { return nil }
            i += 1
            return json[start..<i]
        }
        skipSpace()
        guard i < json.endIndex, json[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var seen: Set<String> = []
        while true {
            skipSpace()
            guard i < json.endIndex, json[i] == UInt8(ascii: "\"") else { return nil }
            guard let raw = rawString(),
                  let key = try? JSONSerialization.jsonObject(with: Data(raw), options: .fragmentsAllowed) as? String else { return nil }
            if !seen.insert(key).inserted { return key }
            skipSpace()
            guard i < json.endIndex, json[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            var depth = 0
            while i < json.endIndex {
                let c = json[i]
                if c == UInt8(ascii: "\"") { guard rawString() != nil else { return nil }; continue }
                if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { depth += 1 }
                if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                    if depth == 0 { return nil }  // the end of the object
                    depth -= 1
                }
                if c == UInt8(ascii: ",") && depth == 0 { break }
                i += 1
            }
            guard i < json.endIndex else { return nil }
            i += 1
        }
    }

    /// Writes float32 tensors in the given order.
    public static func write(_ tensors: [(name: String, array: FloatArray)], to path: String) throws {
        var header = "{"
        var offset = 0
        for (i, t) in tensors.enumerated() {
            let bytes = t.array.data.count * 4
            header += (i > 0 ? "," : "") + "\"\(t.name)\":{\"dtype\":\"F32\",\"shape\":["
                + t.array.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        header += String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        var out = [UInt8]()
        out.reserveCapacity(8 + header.utf8.count + offset)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out += $0 }
        out += Array(header.utf8)
        for t in tensors { t.array.data.withUnsafeBytes { out += $0 } }
        try OutputFile.write(Data(out), to: path)
    }

    /// Reads every F32 tensor (in header order is not preserved: returned by name).
    public static func read(_ path: String) throws -> [String: FloatArray] {
        let bytes = try readTensorFile(path)
        guard bytes.count >= 8 else { throw DriverError("error: '\(path)': file of \(bytes.count) bytes is too short for safetensors") }
        let n = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(bytes.count - 8) else {
            throw DriverError("error: '\(path)': header length \(n) exceeds file size \(bytes.count)")
        }
        let headerEnd = 8 + Int(n)
        guard let json = try? JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) as? [String: Any] else {
            throw DriverError("error: '\(path)': header is not a JSON object")
        }
        guard bytes[8] == UInt8(ascii: "{") else {
            throw DriverError("error: '\(path)': header does not start with '{' (byte \(bytes[8]))")
        }
        // JSONSerialization keeps the last of two equal keys; the C reader refuses them.
        if let duplicate = duplicateKey(bytes[8..<headerEnd]) {
            throw DriverError("error: '\(path)': duplicate tensor name '\(duplicate)' in the header")
        }
        var result: [String: FloatArray] = [:]
        var ranges: [(begin: Int, end: Int, name: String)] = []
        for (name, value) in json where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int],
                  offsets.count == 2 else {
                throw DriverError("error: '\(path)': tensor '\(name)' has a malformed header entry")
            }
            guard dtype == "F32" else { throw DriverError("error: '\(path)': tensor '\(name)' has dtype \(dtype), expected F32") }
            guard let count = SizeArithmetic.product(shape), let byteCount = SizeArithmetic.multiply(count, 4) else {
                throw DriverError("error: '\(path)': tensor '\(name)' has shape \(shape): a negative dimension or more elements than fit in 64 bits")
            }
            let dataSize = bytes.count - headerEnd
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= dataSize, offsets[1] - offsets[0] == byteCount else {
                throw DriverError("error: '\(path)': tensor '\(name)' data offsets \(offsets) do not fit shape \(shape) (\(byteCount) bytes) and the \(dataSize) data bytes of the file")
            }
            ranges.append((offsets[0], offsets[1], name))
            var values = [Float](repeating: 0, count: count)
            bytes.withUnsafeBytes { raw in
                let base = raw.baseAddress! + headerEnd + offsets[0]
                for i in 0..<count {
                    values[i] = Float(bitPattern: UInt32(littleEndian: (base + 4 * i).loadUnaligned(as: UInt32.self)))
                }
            }
            result[name] = FloatArray(shape: shape, data: values)
        }
        // No two tensors share bytes (the C reader's rule too).
        ranges.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var furthest: (end: Int, name: String)? = nil
        for r in ranges where r.end > r.begin {
            if let f = furthest, r.begin < f.end {
                throw DriverError("error: '\(path)': tensors '\(f.name)' and '\(r.name)' overlap")
            }
            if r.end > furthest?.end ?? 0 { furthest = (r.end, r.name) }
        }
        return result
    }
}
