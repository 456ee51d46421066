// The names of the generated file's per-node static functions. A node name is
// identifier-shaped and unique, but a role suffix can still make two functions' names equal:
// in the training family, node `a`'s backward `train_node_a_backward` is also node
// `a_backward`'s forward. The families' prefixes (`node_`, `train_node_`, `inspect_node_`) are
// not prefixes of one another, so names of different families never meet; within the
// inference (`node_<name>`) and inspection (`inspect_node_<name>_backward`) families each node
// has one function, so only the training family needs this table.

/// Hands out distinct C function names: the first to ask for a name gets it, a later one gets
/// `_2`, `_3`, ... after it (checked against every name handed out, so a suffixed name cannot
/// meet a later node's own). Asked in emission order, the result is deterministic; with no
/// clash every name is the one asked for.
struct CFunctionNames {
    private var used: Set<String> = []

    /// `base`, or `base_2`, `base_3`, ... when taken.
    mutating func unique(_ base: String) -> String {
        var name = base, k = 1
        while !used.insert(name).inserted {
            k += 1
            name = "\(base)_\(k)"
        }
        return name
    }
}
