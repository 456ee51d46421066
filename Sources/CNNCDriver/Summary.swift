// `cnnc summary`: the per-layer table users know from Keras and torchinfo.

import CNNCBackendC
import CNNCIR
import CNNCPasses
import Foundation

public enum Summary {
    /// The table for a graph at a batch size: layer, op, output shape (with batch),
    /// parameters, MACs, activation bytes, and what the optimized graph does with the layer;
    /// then totals and the planned arena.
    public static func render(_ graph: Graph, optimized: Graph? = nil, remarks: [Remark] = [], batch: Int,
                              source: String) -> String {
        // Counts times the batch in 128 bits: a per-sample MAC count near 2^62 times batch 2^20
        // (or 10,000 such layers summed) overflows Int (it trapped). The arena is planned only
        // where its sizes fit the planner's Int arithmetic with room to spare.
        let valueFloats = (optimized ?? graph).nodes.reduce(Int128(0)) { $0 + Int128($1.shape.count) } * Int128(batch)
        let plannable = valueFloats < Int128(1) << 56
        let memory = plannable ? optimized.map { CEmitter.memory($0, maxBatch: batch) } : nil
        var kernels = optimized.map { kernelColumn(original: graph, optimized: $0, remarks: remarks) } ?? [:]
        if let optimized, let memory { markSharing(memory, optimized, &kernels) }
        let index = graph.indexByName()
        let parameters = graph.parameters()
        var ownParameters: [String: Int] = [:]
        for p in parameters where p.trainable { ownParameters[p.node, default: 0] += p.count }
        var rows: [[String]] = [["layer", "op", "output", "params", "MACs", "act. bytes", "kernel"]]
        var totalMACs: Int128 = 0, totalActivation: Int128 = 0
        for node in graph.nodes {
            let own = ownParameters[node.name] ?? 0
            let inputShapes = node.inputs.map { graph.nodes[index[$0]!].shape }
            let macs = Int128(graph.macs(of: node, inputShapes: inputShapes)) * Int128(batch)
            let bytes = Int128(node.shape.count) * Int128(batch) * 4
            totalMACs += macs
            totalActivation += bytes
            let shape = ([batch] + node.shape.dims).map(String.init).joined(separator: "x")
            rows.append([node.name, node.op.keyword?.rawValue ?? "input", shape, grouped(own),
                         grouped(macs), grouped(bytes), kernels[node.name] ?? ""])
        }
        let trainable = parameters.filter(\.trainable).reduce(0) { $0 + $1.count }
        let buffers = parameters.filter { !$0.trainable }.reduce(0) { $0 + $1.count }
        rows.append(["total", "", "", grouped(trainable), grouped(totalMACs), grouped(totalActivation), ""])

        var widths = Array(repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func format(_ row: [String]) -> String {
            row.enumerated().map { i, cell in
                i < 3 || i == 6 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                      : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ").trimmingTrailingSpaces()
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
        out += "MACs: \(grouped(totalMACs)) (\(grouped(totalMACs / Int128(max(batch, 1)))) per sample)\n"
        out += "activation bytes, all layers: \(grouped(totalActivation))\n"
        if let m = memory {
            out += "arena (generated code, batch \(batch)): \(grouped(m.arenaBytes)) bytes; "
                + "one buffer per value: \(grouped(m.naiveBytes)); lower bound (peak live): \(grouped(m.lowerBoundBytes))\n"
            out += "in place: \(m.inPlaceNodes.count) element-wise kernels"
            if m.concatInputs > 0 {
                out += "; concat inputs written into their slices: \(m.concatInputsInPlace) of \(m.concatInputs)"
                    + (m.copyingConcats.isEmpty ? " (no concat copies)" : " (\(m.copyingConcats.count) concats copy the rest)")
            }
            out += "\n"
            out += "weights region: \(grouped(m.weightsBytes)) bytes (parameters and what is derived from them)\n"
        } else if optimized != nil && !plannable {
            out += "arena: not planned (the values hold \(grouped(valueFloats * 4)) bytes at batch \(batch))\n"
        }
        return out
    }

    /// Marks the kernels the arena layout runs in place, and concats by whether they copy.
    static func markSharing(_ m: CEmitter.MemorySummary, _ optimized: Graph, _ column: inout [String: String]) {
        for name in m.inPlaceNodes { column[name, default: ""] += ", in place" }
        for node in optimized.nodes {
            guard case .concat = node.op else { continue }
            column[node.name] = m.copyingConcats.contains(node.name) ? "copy" : "in place (no copy)"
        }
    }

    /// For each layer of the original graph, what the optimized graph runs it with.
    static func kernelColumn(original: Graph, optimized: Graph, remarks: [Remark]) -> [String: String] {
        var column: [String: String] = [:]
        let index = optimized.indexByName()
        for node in optimized.nodes {
            switch node.op {
            case .conv(let a):
                let channels = index[node.inputs[0]].map { optimized.nodes[$0].shape.dims.first ?? 0 } ?? 0
                column[node.name] = a.unoptimizedAlgorithm(inputChannels: channels).rawValue
                describe(a.epilogue, into: node.name, &column)
            case .dense(let a):
                column[node.name] = "dense"
                describe(a.epilogue, into: node.name, &column)
            case .flatten, .dropout:
                column[node.name] = "view"
            case .input:
                column[node.name] = ""
            case .activation, .prelu, .add, .binary, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn, .batchNorm, .concat,
                 .shuffle, .slice, .pad, .upsample, .convTranspose,
                 .softmax, .logSoftmax:
                column[node.name] = "direct"
            }
        }
        // Layers that disappeared: what the pass that removed them said.
        var lastRemark: [String: String] = [:]
        for r in remarks { lastRemark[r.node] = r.message }
        for node in original.nodes where column[node.name] == nil {
            let said = lastRemark[node.name] ?? "removed"
            column[node.name] = said.replacingOccurrences(of: "'", with: "")
        }
        return column
    }

    private static func describe(_ e: Epilogue, into name: String, _ column: inout [String: String]) {
        if let bn = e.batchNorm { column[bn.node] = "folded into \(name)" }
        if let p = e.prelu { column[p.node] = "fused into \(name)" }
        var parts: [String] = []
        if e.batchNorm != nil { parts.append("bn") }
        if e.residual { parts.append("add") }
        if let act = e.activation { parts.append(act.text) }
        if e.prelu != nil { parts.append("prelu") }
        if !parts.isEmpty { column[name]! += " +" + parts.joined(separator: "+") }
    }

    /// 61706 -> "61,706".
    public static func grouped<T: BinaryInteger>(_ n: T) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }
}

extension String {
    /// The string without the spaces at its end (a table row's padding).
    func trimmingTrailingSpaces() -> String {
        var end = endIndex
        while end > startIndex, self[index(before: end)] == " " { end = index(before: end) }
        return String(self[..<end])
    }
}
