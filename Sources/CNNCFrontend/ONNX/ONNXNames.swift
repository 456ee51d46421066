// Turning ONNX names (`/layer1/layer1.0/conv1/Conv`, `input.1`, `conv1.weight`) into cnnc node
// names: C-identifier-like (`isValidName`) and unique within the graph.

import CNNCIR

/// Hands out valid, unique node names.
struct NameAllocator {
    private var used: Set<String> = []

    /// A valid name built from `raw`, made unique with `_2`, `_3`, ... when taken.
    mutating func allocate(_ raw: String, fallback: String) -> String {
        var base = ONNXNames.sanitize(raw)
        if base.isEmpty { base = ONNXNames.sanitize(fallback) }
        if base.isEmpty { base = "node" }
        var name = base
        var k = 2
        while used.contains(name) {
            let suffix = "_\(k)"
            name = String(base.prefix(128 - suffix.count)) + suffix
            k += 1
        }
        used.insert(name)
        return name
    }
}

enum ONNXNames {
    /// ASCII letters, digits and `_`; every other run of characters becomes one `_`; leading
    /// and trailing `_` trimmed; `n` in front of a leading digit; at most 100 characters.
    /// Path-like names drop components that only repeat the next one's prefix
    /// (`/layer1/layer1.0/conv1/Conv` gives `layer1_0_conv1_Conv`).
    static func sanitize(_ raw: String) -> String {
        var parts = raw.split(separator: "/").map(String.init)
        parts = parts.enumerated().filter { i, p in i + 1 >= parts.count || !parts[i + 1].hasPrefix(p) }.map(\.element)
        var out = ""
        var lastWasUnderscore = true
        for ch in parts.joined(separator: "_").unicodeScalars {
            let ok = (ch >= "a" && ch <= "z") || (ch >= "A" && ch <= "Z") || (ch >= "0" && ch <= "9")
            if ok {
                out.unicodeScalars.append(ch)
                lastWasUnderscore = false
            } else if !lastWasUnderscore {
                out += "_"
                lastWasUnderscore = true
            }
        }
        while out.hasSuffix("_") { out.removeLast() }
        if let first = out.first, first.isNumber { out = "n" + out }
        return String(out.prefix(100))
    }

    /// `conv1` for a parameter named `conv1.weight` (PyTorch's state_dict name), else nil.
    static func owner(ofParameter name: String, suffix: String = ".weight") -> String? {
        guard name.hasSuffix(suffix), name.count > suffix.count else { return nil }
        return String(name.dropLast(suffix.count))
    }
}
