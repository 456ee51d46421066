// The C identifiers that stand for graph inputs and outputs in entry-point parameter lists.
// A node name is identifier-shaped, but it may still be a C or C++ keyword (`int`, `class`), a
// standard macro or typedef (`NULL`, `EOF`, `size_t`), or one of the entry points' own
// parameters and locals (`ctx`, `n`, `inputs`); such a name gets a `_` suffix (more until it
// is unique), and the header comment keeps the original name.

import CNNCIR

/// Parameter names for the graph's inputs and outputs, in graph order, all distinct.
public struct CParameterNames {
    /// One identifier per graph input.
    public var inputs: [String]
    /// One identifier per graph output (an output listed twice gets two).
    public var outputs: [String]
    /// The upper-case part of each input's `<P>_INPUT_..._SIZE` macro (`a` and `A` would both
    /// give `A`; the second gets `A_2`).
    public var inputMacros: [String]
    /// The same for `<P>_OUTPUT_..._SIZE`, one per output.
    public var outputMacros: [String]

    public init(_ graph: Graph, prefix: String) {
        var used: Set<String> = []
        func mangle(_ name: String) -> String {
            // One `_` leaves every reserved shape (keyword, macro, typedef, prefix); more only
            // for uniqueness.
            var id = CParameterNames.isReserved(name, prefix: prefix) ? name + "_" : name
            while used.contains(id) || CParameterNames.words.contains(id) { id += "_" }
            used.insert(id)
            return id
        }
        inputs = graph.inputs.map { mangle($0.name) }
        outputs = graph.outputs.map { mangle($0) }
        func macros(_ names: [String]) -> [String] {
            var taken: Set<String> = []
            return names.map { name in
                let base = CEmitter.macroName(name)
                var macro = base, k = 1
                while !taken.insert(macro).inserted { k += 1; macro = "\(base)_\(k)" }
                return macro
            }
        }
        inputMacros = macros(graph.inputs.map(\.name))
        outputMacros = macros(graph.outputs)
    }

    /// `name`, or `name ('original')` when the identifier differs from the node name.
    public static func described(_ identifier: String, _ original: String) -> String {
        identifier == original ? identifier : "\(identifier) ('\(original)')"
    }

    /// Whether `name` cannot be a parameter of a generated entry point.
    public static func isReserved(_ name: String, prefix: String) -> Bool {
        if words.contains(name) { return true }
        // Reserved to the implementation: __x, _X.
        if name.hasPrefix("__") { return true }
        if name.hasPrefix("_"), let second = name.unicodeScalars.dropFirst().first, ("A"..."Z").contains(second) {
            return true
        }
        // All capitals: a macro's shape (EOF, BUFSIZ, FLT_MAX, INT32_C).
        if name.unicodeScalars.allSatisfy({ !("a"..."z").contains($0) }) { return true }
        // Typedefs of the C and POSIX headers (size_t, int64_t, omp_lock_t).
        if name.hasSuffix("_t") { return true }
        // Symbols of the runtime and of the generated file.
        for p in ["cnnc_", "CNNC_", "\(prefix)_", "omp_"] where name.hasPrefix(p) { return true }
        return false
    }

    /// Keywords of C11 through C23 and C++, the macros and identifiers the generated files
    /// see (<stdint.h>, <stddef.h>, <stdio.h>, <string.h>, <math.h>, <errno.h>, GNU mode's
    /// predefined macros), and the entry points' own parameters and locals.
    static let words: Set<String> = [
        // C
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
        "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
        "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
        "volatile", "while", "alignas", "alignof", "bool", "constexpr", "false", "nullptr", "static_assert",
        "thread_local", "true", "typeof", "typeof_unqual", "noreturn", "complex", "imaginary",
        // C++
        "and", "and_eq", "asm", "bitand", "bitor", "catch", "char8_t", "char16_t", "char32_t", "class",
        "compl", "concept", "consteval", "constinit", "const_cast", "co_await", "co_return", "co_yield",
        "decltype", "delete", "dynamic_cast", "explicit", "export", "friend", "mutable", "namespace", "new",
        "noexcept", "not", "not_eq", "operator", "or", "or_eq", "private", "protected", "public",
        "reinterpret_cast", "requires", "static_cast", "template", "this", "throw", "try", "typeid",
        "typename", "using", "virtual", "wchar_t", "xor", "xor_eq", "override", "final", "import", "module",
        // library macros and identifiers in lower case
        "errno", "assert", "offsetof", "stdin", "stdout", "stderr", "va_arg", "va_start", "va_end",
        "va_copy", "setjmp", "longjmp", "signbit", "fpclassify", "math_errhandling", "unix", "linux",
        "i386", "main", "free", "malloc", "calloc", "realloc", "abort", "exit", "memcpy", "memset",
        "strcmp", "isnan", "isinf", "isfinite", "isnormal", "isgreater", "isgreaterequal", "isless",
        "islessequal", "islessgreater", "isunordered", "tolower", "toupper", "train_forward",
        // the entry points' parameters and locals
        "ctx", "t", "n", "b", "i", "layer", "out", "src", "weights", "scores", "grad", "labels", "sgd",
        "loss", "correct", "inputs", "outputs", "layers", "parameters", "seed", "path", "name",
    ]
}
