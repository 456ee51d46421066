// `cnnc summary`: the per-layer table users know from Keras and torchinfo.

import CNNCIR

public enum Summary {
    /// The table for a graph at a batch size: layer, op, output shape (with batch),
    /// parameters, MACs, activation bytes; then totals.
    public static func render(_ graph: Graph, batch: Int, source: String) -> String {
        let index = graph.indexByName()
        let parameters = graph.parameters()
        var rows: [[String]] = [["layer", "op", "output", "params", "MACs", "act. bytes"]]
        var totalMACs = 0, totalActivation = 0
        for node in graph.nodes {
            let own = parameters.filter { $0.node == node.name && $0.trainable }.reduce(0) { $0 + $1.count }
            let inputShapes = node.inputs.map { graph.nodes[index[$0]!].shape }
            let macs = graph.macs(of: node, inputShapes: inputShapes) * batch
            let bytes = node.shape.count * batch * 4
            totalMACs += macs
            totalActivation += bytes
            let shape = ([batch] + node.shape.dims).map(String.init).joined(separator: "x")
            rows.append([node.name, node.op.keyword?.rawValue ?? "input", shape, grouped(own),
                         grouped(macs), grouped(bytes)])
        }
        let trainable = parameters.filter(\.trainable).reduce(0) { $0 + $1.count }
        let buffers = parameters.filter { !$0.trainable }.reduce(0) { $0 + $1.count }
        rows.append(["total", "", "", grouped(trainable), grouped(totalMACs), grouped(totalActivation)])

        var widths = Array(repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func format(_ row: [String]) -> String {
            row.enumerated().map { i, cell in
                i < 3 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                      : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        var out = "network \(graph.name) (\(source)), batch \(batch)\n"
        out += format(rows[0]) + "\n" + rule + "\n"
        for row in rows.dropFirst().dropLast() { out += format(row) + "\n" }
        out += rule + "\n" + format(rows.last!) + "\n"
        out += "trainable parameters: \(grouped(trainable))"
        out += " (\(grouped(trainable * 4)) bytes)"
        if buffers > 0 { out += "; buffers: \(grouped(buffers)) (batch-norm running statistics)" }
        out += "\n"
        out += "MACs: \(grouped(totalMACs)) (\(grouped(totalMACs / max(batch, 1))) per sample)\n"
        out += "activation bytes, all layers: \(grouped(totalActivation))\n"
        return out
    }

    /// 61706 -> "61,706".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }
}
