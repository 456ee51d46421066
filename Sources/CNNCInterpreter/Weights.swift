// Seeded initial parameters, exactly as the generated C reproduces them.

import CNNCIR

/// Parameter sets for the interpreter.
public enum Weights {
    /// Seeded initial parameters for every ParameterSpec of the graph: `SeededInit.values`
    /// (rounded to Float, as the C code stores them) converted to Double. The graph needs
    /// inferred shapes.
    public static func seeded(_ graph: Graph, seed: UInt64) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for spec in graph.parameters() {
            let values = SeededInit.values(for: spec, seed: seed).map(Double.init)
            result[spec.name] = Tensor(shape: spec.shape, data: values)
        }
        return result
    }
}
