// The statements of a `.net` file after parsing, before names are resolved: what each line
// says, with the locations that messages point at.

import CNNCIR

/// A name as written in a `from=` list or on an `output` line.
struct NameReference: Sendable {
    var name: String
    var location: SourceLocation
}

/// `network NAME`.
struct NetworkStatement: Sendable {
    var name: String
    var location: SourceLocation
}

/// `input NAME shape=CxHxW`.
struct InputStatement: Sendable {
    var name: String?
    var nameLocation: SourceLocation?
    /// The `input` word: the node's location.
    var location: SourceLocation
    var shape: Shape?
    /// Problems were reported: the input defines its name but no node.
    var broken: Bool
    /// The line held an unreadable character: say nothing more about it.
    var quiet = false
}

/// `output NAME[,NAME...]`.
struct OutputStatement: Sendable {
    var names: [NameReference]
}

/// `OPWORD [NAME] [key=value ...]`.
struct LayerStatement: Sendable {
    /// Nil when the word is not a layer type (already reported).
    var keyword: OpKeyword?
    /// The op word as written: the node's location.
    var location: SourceLocation
    /// The name; nil when none was written (one is generated) or it was invalid (reported).
    var name: String?
    /// Where the name was written, valid or not.
    var nameLocation: SourceLocation?
    /// The built op; nil when its attributes had problems (already reported).
    var op: Op?
    /// The names in `from=`, or nil when the layer reads the previous value.
    var from: [NameReference]?
    /// The location of the `from=` value.
    var fromLocation: SourceLocation?
    /// False when some names of `from=` could not be read (so its count means nothing).
    var fromComplete = true
    /// `frozen=true`: training leaves this layer's parameters alone.
    var frozen = false
    /// Problems were reported: the layer defines its name but no node.
    var broken: Bool
    /// The line held an unreadable character: say nothing more about it.
    var quiet = false
}

/// One line of a `.net` file that means something.
enum NetStatement: Sendable {
    case network(NetworkStatement)
    case input(InputStatement)
    case output(OutputStatement)
    case layer(LayerStatement)
}
