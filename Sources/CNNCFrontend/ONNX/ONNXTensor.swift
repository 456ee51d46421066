// Constant tensors of an ONNX model: initializers, `Constant` nodes and the values folded from
// them. Decoding is defensive: every length and element type is checked, so a malformed
// TensorProto is an error naming the tensor, never a crash.

import CNNCIR
import Foundation

/// A float32 tensor with its shape: an imported parameter or an exported initializer.
public struct WeightTensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]
    public init(shape: [Int], data: [Float]) { self.shape = shape; self.data = data }
}

/// A constant known at import time. Values are held as Double (exact for every float32 and
/// for integers below 2^53, which covers shapes and indices).
struct ConstTensor: Equatable {
    var dims: [Int]
    var values: [Double]
    /// Integer element types (shapes, indices) fold with integer semantics (Div truncates).
    var isInteger: Bool

    var count: Int { values.count }
    var isScalarLike: Bool { values.count == 1 }
    /// The values as integers. INT64_MAX and INT64_MIN (exporters' "to the end" in Slice)
    /// arrive as ±2^63 in Double and saturate to `Int.max`/`Int.min`; NaN, infinities and
    /// fractions (where `Int(_:)` would trap or truncate) are an error naming the value.
    var ints: [Int] {
        get throws {
            try values.map { v in
                if v.isFinite, v >= 0x1p63 { return Int.max }
                if v.isFinite, v <= -0x1p63 { return Int.min }
                guard let i = SizeArithmetic.int(exactly: v) else {
                    throw ImportError("value \(v) of a constant used as a size or index is not an integer")
                }
                return i
            }
        }
    }

    init(dims: [Int], values: [Double], isInteger: Bool) {
        self.dims = dims; self.values = values; self.isInteger = isInteger
    }

    init(ints: [Int], dims: [Int]? = nil) {
        self.init(dims: dims ?? [ints.count], values: ints.map(Double.init), isInteger: true)
    }

    var weight: WeightTensor { WeightTensor(shape: dims, data: values.map { Float($0) }) }
}

/// The number of elements of `dims`; a negative dim or a product beyond Int is an error
/// naming the shape (sizes from a file never trap).
func elementCount<C: Collection>(_ dims: C) throws -> Int where C.Element == Int {
    guard let n = SizeArithmetic.product(dims) else {
        throw ImportError("shape \(Array(dims)) has a negative size or more elements than fit in 64 bits")
    }
    return n
}

/// Why a tensor could not be decoded.
struct TensorError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// ONNX `TensorProto.DataType` codes used here.
enum ONNXDataType: Int32 {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7
    case bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13

    var name: String { "\(self)" }
    var isInteger: Bool { self != .float && self != .float16 && self != .double }
}

/// The largest tensor decoded (elements): larger ones are reported, not allocated.
let maxTensorElements = 1 << 31

extension Onnx_TensorProto {
    /// Decodes the tensor's values. `baseDirectory` resolves external data files.
    func decode(baseDirectory: String?) throws -> ConstTensor {
        let label = name.isEmpty ? "an unnamed tensor" : "tensor '\(name)'"
        var count = 1
        for d in dims {
            guard d >= 0, d <= Int64(maxTensorElements) else {
                throw TensorError("\(label) has a bad dimension \(d) in \(dims)")
            }
            count = count.multipliedReportingOverflow(by: Int(d)).partialValue
            guard count <= maxTensorElements else { throw TensorError("\(label) has too many elements (\(dims))") }
        }
        let shape = dims.map { Int($0) }
        guard let type = ONNXDataType(rawValue: dataType) else {
            throw TensorError("\(label) has unsupported element type \(dataType)")
        }
        var raw = rawData
        if dataLocation == .external {
            raw = try readExternal(label: label, baseDirectory: baseDirectory)
        }
        let values: [Double]
        if !raw.isEmpty || hasRawData || dataLocation == .external {
            values = try decodeRaw(raw, type: type, count: count, label: label)
        } else {
            switch type {
            case .float: values = floatData.map(Double.init)
            case .double: values = doubleData
            case .int64: values = int64Data.map(Double.init)
            case .uint32, .uint64: values = uint64Data.map(Double.init)
            case .int32, .int16, .int8, .uint16, .uint8, .bool: values = int32Data.map(Double.init)
            case .float16: values = int32Data.map { Double(halfToFloat(UInt16(truncatingIfNeeded: $0))) }
            }
        }
        guard values.count == count else {
            throw TensorError("\(label) of shape \(shape) needs \(count) values, has \(values.count)")
        }
        return ConstTensor(dims: shape, values: values, isInteger: type.isInteger)
    }

    private func readExternal(label: String, baseDirectory: String?) throws -> Data {
        var location = "", offset = 0, length: Int?
        for entry in externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset": offset = Int(entry.value) ?? -1
            case "length": length = Int(entry.value)
            default: break
            }
        }
        guard !location.isEmpty, !location.hasPrefix("/"), !location.split(separator: "/").contains(".."),
              offset >= 0 else {
            throw TensorError("\(label): bad external data location '\(location)'")
        }
        let folder = baseDirectory ?? "."
        let path = folder + "/" + location
        do {
            // A regular file inside the model's folder (symlinks resolved), the range checked
            // against its size: no FIFO, device or file elsewhere is read.
            return Data(try InputFile.read(path, offset: offset, length: length, inside: folder))
        } catch {
            throw TensorError("\(label): external data: \(error)")
        }
    }

    private func decodeRaw(_ raw: Data, type: ONNXDataType, count: Int, label: String) throws -> [Double] {
        let size: Int
        switch type {
        case .float, .int32, .uint32: size = 4
        case .double, .int64, .uint64: size = 8
        case .float16, .int16, .uint16: size = 2
        case .int8, .uint8, .bool: size = 1
        }
        guard raw.count == count * size else {
            throw TensorError("\(label) of shape \(dims) and type \(type.name) needs \(count * size) bytes of raw data, has \(raw.count)")
        }
        let bytes = [UInt8](raw)
        func word(_ i: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for b in 0..<n { v |= UInt64(bytes[i * n + b]) << (8 * UInt64(b)) }
            return v
        }
        return (0..<count).map { i -> Double in
            switch type {
            case .float: return Double(Float(bitPattern: UInt32(word(i, 4))))
            case .double: return Double(bitPattern: word(i, 8))
            case .int64: return Double(Int64(bitPattern: word(i, 8)))
            case .uint64: return Double(word(i, 8))
            case .int32: return Double(Int32(bitPattern: UInt32(word(i, 4))))
            case .uint32: return Double(UInt32(word(i, 4)))
            case .int16: return Double(Int16(bitPattern: UInt16(word(i, 2))))
            case .uint16: return Double(UInt16(word(i, 2)))
            case .float16: return Double(halfToFloat(UInt16(word(i, 2))))
            case .int8: return Double(Int8(bitPattern: bytes[i]))
            case .uint8, .bool: return Double(bytes[i])
            }
        }
    }
}

/// IEEE half to float.
func halfToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1f), mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        let v = Float(mantissa) * Float(pow(2.0, -24.0))
        return sign == 0 ? v : -v
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

extension Onnx_TensorProto {
    /// A float32 initializer with raw little-endian data.
    static func float(name: String, dims: [Int], values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map(Int64.init)
        t.dataType = ONNXDataType.float.rawValue
        var data = Data(capacity: values.count * 4)
        for v in values {
            let bits = v.bitPattern
            for b in 0..<4 { data.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt32(b)))) }
        }
        t.rawData = data
        return t
    }

    /// An int64 initializer (shapes, axes).
    static func int64(name: String, dims: [Int], values: [Int]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map(Int64.init)
        t.dataType = ONNXDataType.int64.rawValue
        t.int64Data = values.map(Int64.init)
        return t
    }
}
