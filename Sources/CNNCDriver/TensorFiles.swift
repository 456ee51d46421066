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
    /// Tensors a weights file may hold besides parameters, which every weights loader skips
    /// (the generated `<p>_load_weights` by the same rule): PyTorch's batch-norm step counter
    /// `<layer>.num_batches_tracked` and a training checkpoint's `<parameter>.momentum`.
    public static func isSkippedByWeightLoaders(_ name: String) -> Bool {
        [".num_batches_tracked", ".momentum"].contains { name.utf8.count > $0.utf8.count && name.hasSuffix($0) }
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

    /// Reads every tensor, each of which must be F32 (returned by name). The header follows
    /// the C runtime's grammar (SafetensorsHeader); its rules, also the C reader's: offsets
    /// inside the data, sizes equal to the shape times 4 (no product overflows 64 bits), no
    /// name twice, no two tensors sharing bytes (Runtime/tests/safetensors_spec.txt).
    ///
    /// Tensors for which `skipping` holds are checked by the same rules but not returned, and
    /// may have any dtype (a PyTorch state_dict's I64 `num_batches_tracked`).
    public static func read(_ path: String, skipping: (String) -> Bool = { _ in false }) throws -> [String: FloatArray] {
        let bytes = try readTensorFile(path)
        guard bytes.count >= 8 else { throw DriverError("error: '\(path)': file of \(bytes.count) bytes is too short for safetensors") }
        let n = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(bytes.count - 8) else {
            throw DriverError("error: '\(path)': header length \(n) exceeds file size \(bytes.count)")
        }
        let headerEnd = 8 + Int(n)
        let entries: [SafetensorsEntry]
        do { entries = try SafetensorsHeader.parse(bytes[8..<headerEnd]) } catch {
            throw DriverError("error: '\(path)': \(error)")
        }
        let dataSize = UInt64(bytes.count - headerEnd)
        for e in entries {
            let shape = "[" + e.shape.map(String.init).joined(separator: ",") + "]"
            let size = SafetensorsHeader.dtypeSizes[e.dtype]!
            guard e.begin <= e.end else {
                throw DriverError("error: '\(path)': tensor '\(e.name)': data_offsets [\(e.begin),\(e.end)] end before they begin")
            }
            guard e.end <= dataSize else {
                throw DriverError("error: '\(path)': tensor '\(e.name)': data_offsets [\(e.begin),\(e.end)] exceed the data buffer of \(dataSize) bytes")
            }
            // The product in 64 bits, as the C reader computes it: a zero dimension makes it 0.
            var elements: UInt64? = e.shape.contains(0) ? 0 : 1
            for d in e.shape where elements != 0 {
                let (p, overflow) = elements!.multipliedReportingOverflow(by: d)
                elements = overflow || p > UInt64.max / size ? nil : p
                if elements == nil { break }
            }
            guard let elements else {
                throw DriverError("error: '\(path)': tensor '\(e.name)': shape \(shape) is too large")
            }
            guard elements * size == e.end - e.begin else {
                throw DriverError("error: '\(path)': tensor '\(e.name)': shape \(shape) of \(e.dtype) needs \(elements * size) bytes, data_offsets [\(e.begin),\(e.end)] hold \(e.end - e.begin)")
            }
        }
        var names: Set<String> = []
        for e in entries where !names.insert(e.name).inserted {
            throw DriverError("error: '\(path)': duplicate tensor name '\(e.name)'")
        }
        // No two tensors share bytes: sorted by begin, each non-empty tensor starts at or after
        // the furthest end so far.
        var furthest: SafetensorsEntry? = nil
        for e in entries.sorted(by: { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }) where e.end > e.begin {
            if let f = furthest, e.begin < f.end {
                throw DriverError("error: '\(path)': tensors '\(f.name)' and '\(e.name)' overlap: data_offsets [\(f.begin),\(f.end)] and [\(e.begin),\(e.end)]")
            }
            if e.end > furthest?.end ?? 0 { furthest = e }
        }
        var result: [String: FloatArray] = [:]
        for e in entries where !skipping(e.name) {
            guard e.dtype == "F32" else { throw DriverError("error: '\(path)': tensor '\(e.name)' has dtype \(e.dtype), expected F32") }
            let count = Int(e.end - e.begin) / 4
            var values = [Float](repeating: 0, count: count)
            bytes.withUnsafeBytes { raw in
                let base = raw.baseAddress! + headerEnd + Int(e.begin)
                for i in 0..<count {
                    values[i] = Float(bitPattern: UInt32(littleEndian: (base + 4 * i).loadUnaligned(as: UInt32.self)))
                }
            }
            result[e.name] = FloatArray(shape: e.shape.map { Int($0) }, data: values)
        }
        return result
    }
}
