// Deterministic input data for tests and `cnnc check`.

import CNNCIR

/// Seeded input tensors.
public enum SeededData {
    /// Deterministic input data: element `i` (row-major over the whole `shape`, batch
    /// included) is `2 * SeededInit.uniform(seed: seed, name: name, index: i) - 1`, uniform in
    /// [-1, 1). The stream is named by the input's name. The values have at most 24
    /// significant bits, so they are exactly representable as Float: C code computing the
    /// same formula gets the same numbers.
    public static func input(name: String, shape: [Int], seed: UInt64) -> Tensor {
        let count = Tensor.elementCount(shape)
        var data = [Double](repeating: 0, count: count)
        for i in 0..<count {
            data[i] = 2 * SeededInit.uniform(seed: seed, name: name, index: i) - 1
        }
        return Tensor(shape: shape, data: data)
    }
}
