// Errors the interpreter reports for bad parameters, bad inputs or a graph it cannot run.

/// A problem with what the interpreter was given; the description names the tensor and the
/// numbers involved (lower-case, no final period).
public struct InterpreterError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
