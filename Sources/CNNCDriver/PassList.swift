// `cnnc passes`: every pass with its summary and modes, in pipeline order.

import CNNCPasses

public enum PassList {
    public static func render() -> String {
        let width = Pipelines.all.map(\.name.count).max() ?? 0
        var out = "passes, in pipeline order (inference: all of them; training: those marked training):\n"
        for pass in Pipelines.all {
            let modes = PipelineMode.allCases.filter { pass.modes.contains($0) }.map(\.rawValue).joined(separator: ",")
            out += "  " + pass.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + pass.summary
                + " [\(modes)]\n"
        }
        out += "memory planning and kernel choice happen in the C backend; -O0 runs no pass\n"
        return out
    }
}
