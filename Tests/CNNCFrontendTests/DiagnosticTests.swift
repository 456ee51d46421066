// Expected diagnostics, written inline next to the input that triggers them (in the spirit
// of MLIR's expected-error tests): each case is a bad `.net` file and the exact text the
// user sees, with the `file:line:col` line, the source line and the caret under the culprit.

import CNNCIR
import XCTest

@testable import CNNCFrontend

/// One bad input and every diagnostic it must produce, rendered.
struct DiagnosticCase {
    var name: String
    var bytes: [UInt8]
    var expected: String
    var line: UInt

    init(_ name: String, _ text: String, _ expected: String, line: UInt = #line) {
        self.init(name, bytes: Array(text.utf8), expected, line: line)
    }

    init(_ name: String, bytes: [UInt8], _ expected: String, line: UInt = #line) {
        self.name = name; self.bytes = bytes; self.expected = expected; self.line = line
    }

    /// What the user sees: decoding problems (as `load` reports them), else parse problems.
    var rendered: String {
        switch NetFrontend.decode(bytes, path: snippetPath) {
        case .failure(let list):
            return render(list, text: String(decoding: bytes, as: UTF8.self))
        case .success(let text):
            return diagnosticsText(text) ?? "(no diagnostics)"
        }
    }
}

final class DiagnosticTests: XCTestCase {
    static let hugeNumber = String(repeating: "9", count: 100_000)

    static let cases: [DiagnosticCase] = [
        // MARK: Words and names
        DiagnosticCase("unknown layer type, with a suggestion", """
            input x shape=1x8x8
            cnov c1 filters=3 size=3
            """, """
            t.net:2:1: error: unknown layer type 'cnov'; did you mean 'conv'?
            cnov c1 filters=3 size=3
            ^~~~
            """),
        DiagnosticCase("unknown layer type, case matters", """
            input x shape=1x8x8
            Conv c1 filters=3 size=3
            """, """
            t.net:2:1: error: unknown layer type 'Conv'; did you mean 'conv'?
            Conv c1 filters=3 size=3
            ^~~~
            """),
        DiagnosticCase("unknown layer type, nothing close", """
            input x shape=3
            frobnicate
            """, """
            t.net:2:1: error: unknown layer type 'frobnicate'
            frobnicate
            ^~~~~~~~~~
            """),
        DiagnosticCase("a line that starts with a key", """
            input x shape=3
            filters=3
            """, """
            t.net:2:1: error: expected a layer type before 'filters=3'
            filters=3
            ^~~~~~~~~
            """),
        DiagnosticCase("invalid layer name", """
            input x shape=3
            relu 2nd
            """, """
            t.net:2:6: error: invalid name '2nd': a name starts with a letter or '_' and has only letters, digits and '_'
            relu 2nd
                 ^~~
            """),
        DiagnosticCase("duplicate name, with a note at the first", """
            input x shape=3x8x8
            conv c1 filters=4 size=3
            conv c1 filters=4 size=3
            """, """
            t.net:3:6: error: 'c1' is already defined
            conv c1 filters=4 size=3
                 ^~
            t.net:2:6: note: 'c1' first defined here
            conv c1 filters=4 size=3
                 ^~
            """),
        DiagnosticCase("a layer named like an input", """
            input x shape=3
            relu x
            """, """
            t.net:2:6: error: 'x' is already defined
            relu x
                 ^
            t.net:1:7: note: 'x' first defined here
            input x shape=3
                  ^
            """),

        // MARK: Keys and values
        DiagnosticCase("unknown key, with a suggestion", """
            input x shape=3x8x8
            conv c1 filters=4 size=3 stirde=2
            """, """
            t.net:2:26: error: conv has no key 'stirde'; did you mean 'stride'?
            conv c1 filters=4 size=3 stirde=2
                                     ^~~~~~
            """),
        DiagnosticCase("missing required key", """
            input x shape=3x8x8
            conv c1 size=3
            """, """
            t.net:2:1: error: conv requires 'filters=' (number of output channels)
            conv c1 size=3
            ^~~~
            """),
        DiagnosticCase("duplicate key, with a note at the first", """
            input x shape=3x8x8
            maxpool size=2 stride=2 size=3
            """, """
            t.net:2:25: error: duplicate key 'size'
            maxpool size=2 stride=2 size=3
                                    ^~~~
            t.net:2:9: note: 'size' first given here
            maxpool size=2 stride=2 size=3
                    ^~~~
            """),
        DiagnosticCase("bad boolean", """
            input x shape=3x8x8
            conv c1 filters=4 size=3 bias=yes
            """, """
            t.net:2:31: error: conv 'bias=yes': expected true or false
            conv c1 filters=4 size=3 bias=yes
                                          ^~~
            """),
        DiagnosticCase("value out of range", """
            input x shape=3x8x8
            dense units=0
            """, """
            t.net:2:13: error: dense 'units=0': 0 is out of range (1 to 1048576)
            dense units=0
                        ^
            """),
        DiagnosticCase("'same' padding with a stride", """
            input x shape=3x8x8
            conv c1 filters=4 size=3 stride=2 pad=same
            """, """
            t.net:2:39: error: conv 'pad=same': 'same' padding needs stride 1, got stride 2
            conv c1 filters=4 size=3 stride=2 pad=same
                                                  ^~~~
            """),
        DiagnosticCase("huge number", "input x shape=3x8x8\nconv c1 filters=\(hugeNumber) size=3\n",
            "t.net:2:17: error: conv 'filters=99999999999999999999...': number with 100000 digits is too large\n"
            + "conv c1 filters=\(hugeNumber) size=3\n"
            + String(repeating: " ", count: 16) + "^" + String(repeating: "~", count: 99_999)),
        DiagnosticCase("spaces around '=' (read as meant, reported once)", """
            input x shape=3x8x8
            conv c1 filters = 8 size=3
            """, """
            t.net:2:9: error: no spaces are allowed around '=': write 'filters=8'
            conv c1 filters = 8 size=3
                    ^~~~~~~~~~~
            """),
        DiagnosticCase("'=' without a key", """
            input x shape=3
            relu r =5
            """, """
            t.net:2:8: error: '=' needs a key before it: write key=value without spaces
            relu r =5
                   ^~
            """),
        DiagnosticCase("a bare word among the keys", """
            input x shape=3
            relu r foo
            """, """
            t.net:2:8: error: expected key=value, got 'foo'
            relu r foo
                   ^~~
            """),

        // MARK: Inputs and the network line
        DiagnosticCase("input without a shape", """
            input image
            relu
            """, """
            t.net:1:1: error: input 'image' needs shape=CxHxW or shape=F
            input image
            ^~~~~
            """),
        DiagnosticCase("input without a name", """
            input shape=3
            relu
            """, """
            t.net:1:1: error: input needs a name: input NAME shape=CxHxW
            input shape=3
            ^~~~~
            """),
        DiagnosticCase("zero in a shape", """
            input x shape=1x0x28
            relu
            """, """
            t.net:1:15: error: shape '1x0x28': each dimension must be 1 to 1048576
            input x shape=1x0x28
                          ^~~~~~
            """),
        DiagnosticCase("shape of rank 2", """
            input x shape=28x28
            relu
            """, """
            t.net:1:15: error: shape '28x28': expected CxHxW or F, got 2 dimensions
            input x shape=28x28
                          ^~~~~
            """),
        DiagnosticCase("unknown input key, with a suggestion", """
            input x shape=3 shap=3
            relu
            """, """
            t.net:1:17: error: input has no key 'shap'; did you mean 'shape'?
            input x shape=3 shap=3
                            ^~~~
            """),
        DiagnosticCase("network named twice", """
            network a
            network b
            input x shape=3
            relu
            """, """
            t.net:2:1: error: the network is named twice
            network b
            ^~~~~~~
            t.net:1:1: note: first named here
            network a
            ^~~~~~~
            """),
        DiagnosticCase("network and input on one line (nothing dropped silently)", """
            network t input x shape=3
            relu
            """, """
            t.net:1:1: error: 't.net' defines no input; start it with 'input NAME shape=CxHxW'
            network t input x shape=3
            ^
            t.net:1:11: error: unexpected 'input' after the network name
            network t input x shape=3
                      ^~~~~~~~~~~~~~~
            """),
        DiagnosticCase("network after a layer", """
            input x shape=3
            relu
            network late
            """, """
            t.net:3:1: error: 'network' must come before the first layer
            network late
            ^~~~~~~
            t.net:2:1: note: first layer here
            relu
            ^~~~
            """),
        DiagnosticCase("a layer before any input", """
            conv c1 filters=4 size=3
            input x shape=3x8x8
            """, """
            t.net:1:1: error: conv 'c1' comes before any input: declare the input first or name this layer's input with from=
            conv c1 filters=4 size=3
            ^~~~
            """),
        DiagnosticCase("empty file", "", """
            t.net:1:1: error: 't.net' defines no input; start it with 'input NAME shape=CxHxW'

            ^
            """),
        DiagnosticCase("comments only", "# nothing here\n\n", """
            t.net:1:1: error: 't.net' defines no input; start it with 'input NAME shape=CxHxW'
            # nothing here
            ^
            """),
        DiagnosticCase("inputs only", "input x shape=3\n", """
            t.net:1:1: error: 't.net' defines no layers
            input x shape=3
            ^
            """),

        // MARK: Inputs of layers, outputs, cycles
        DiagnosticCase("undefined name in from=, with a suggestion", """
            input x shape=3x8x8
            conv c1 filters=4 size=3
            conv c2 filters=4 size=1
            relu r from=c3
            """, """
            t.net:4:13: error: 'c3' is not defined; did you mean 'c1'?
            relu r from=c3
                        ^~
            """),
        DiagnosticCase("undefined output, with a suggestion", """
            input x shape=3x8x8
            conv c1 filters=4 size=3
            relu r1
            output r1,c2
            """, """
            t.net:4:11: error: 'c2' is not defined; did you mean 'c1'?
            output r1,c2
                      ^~
            """),
        DiagnosticCase("output listed twice", """
            input x shape=3
            relu r
            output r
            output r
            """, """
            t.net:4:8: error: 'r' is already an output
            output r
                   ^
            t.net:3:8: note: first listed here
            output r
                   ^
            """),
        DiagnosticCase("empty name in from=", """
            input x shape=3
            relu a
            relu b
            add s from=a,,b
            """, """
            t.net:4:13: error: empty name in 'from=a,,b'
            add s from=a,,b
                        ^
            """),
        DiagnosticCase("add without from=", """
            input x shape=3
            relu
            add sum
            """, """
            t.net:3:1: error: add 'sum' needs at least 2 inputs: name them with from=NAME,NAME
            add sum
            ^~~
            """),
        DiagnosticCase("add with one input", """
            input x shape=3
            relu r
            add sum from=r
            """, """
            t.net:3:14: error: add 'sum' takes at least 2 inputs, got 1
            add sum from=r
                         ^
            """),
        DiagnosticCase("two inputs for a one-input op", """
            input x shape=3
            relu r
            relu s from=x,r
            """, """
            t.net:3:1: error: relu 's' takes 1 input, got 2
            relu s from=x,r
            ^~~~
            """),
        DiagnosticCase("cycle", """
            input x shape=3
            relu a from=c
            relu b from=a
            relu c from=b
            """, """
            t.net:2:1: error: cycle: a -> b -> c -> a
            relu a from=c
            ^~~~
            """),
        DiagnosticCase("a layer that reads itself, and a second cycle", """
            input x shape=3
            relu a from=b
            relu b from=a
            relu c from=c
            """, """
            t.net:2:1: error: cycle: a -> b -> a
            relu a from=b
            ^~~~
            t.net:4:1: error: cycle: c -> c
            relu c from=c
            ^~~~
            """),

        // MARK: Shapes (from shape inference)
        DiagnosticCase("add of different shapes names both", """
            input x shape=3x8x8
            conv a filters=4 size=1
            conv b from=x filters=5 size=1
            add s from=a,b
            """, """
            t.net:4:1: error: add 's' needs inputs of one shape, got 4x8x8 ('a') and 5x8x8 ('b')
            add s from=a,b
            ^~~
            """),
        DiagnosticCase("mul operand that does not broadcast", """
            input x shape=4x8x8
            global_avgpool g
            conv a from=g filters=3 size=1
            mul m from=x,a
            """, """
            t.net:4:1: error: mul 'm' needs a second input of the first's shape 4x8x8, one value per channel (4x1x1) or one value (1), got 3x1x1 ('a')
            mul m from=x,a
            ^~~
            """),
        DiagnosticCase("div takes two inputs", """
            input x shape=4x8x8
            div d from=x,x,x
            """, """
            t.net:2:1: error: div 'd' takes 2 inputs, got 3
            div d from=x,x,x
            ^~~
            """),
        DiagnosticCase("kernel larger than its input", """
            input x shape=16x4x4
            conv c2 filters=8 size=5
            """, """
            t.net:2:1: error: conv 'c2' window 5x5 is larger than its padded input 4x4 (input 16x4x4)
            conv c2 filters=8 size=5
            ^~~~
            """),
        DiagnosticCase("groups not dividing the channels", """
            input x shape=3x8x8
            conv c1 filters=4 size=3 groups=2
            """, """
            t.net:2:1: error: conv 'c1' has 3 input channels, not divisible by groups=2
            conv c1 filters=4 size=3 groups=2
            ^~~~
            """),
        DiagnosticCase("conv on a vector", """
            input x shape=10
            conv c1 filters=3 size=1
            """, """
            t.net:2:1: error: conv 'c1' needs a CxHxW input, got 10
            conv c1 filters=3 size=1
            ^~~~
            """),
        DiagnosticCase("concat of different sizes", """
            input x shape=3x8x8
            maxpool p size=2
            concat c from=x,p
            """, """
            t.net:3:1: error: concat 'c' needs inputs that differ only in channels, got 3x8x8 ('x') and 3x4x4 ('p')
            concat c from=x,p
            ^~~~~~
            """),

        // MARK: Several problems at once; layout
        DiagnosticCase("several problems in one run", """
            input x shape=3x8x8
            conv c1 filters=4 size=3 dilatoin=2
            relu r from=c
            dense d units=10 bias=maybe
            softmax
            """, """
            t.net:2:26: error: conv has no key 'dilatoin'; did you mean 'dilation'?
            conv c1 filters=4 size=3 dilatoin=2
                                     ^~~~~~~~
            t.net:3:13: error: 'c' is not defined; did you mean 'c1'?
            relu r from=c
                        ^
            t.net:4:23: error: dense 'bias=maybe': expected true or false
            dense d units=10 bias=maybe
                                  ^~~~~
            """),
        DiagnosticCase("CRLF line ends", "input x shape=3x8x8\r\nconv c1 filters=4 size=3 stirde=2\r\n", """
            t.net:2:26: error: conv has no key 'stirde'; did you mean 'stride'?
            conv c1 filters=4 size=3 stirde=2
                                     ^~~~~~
            """),
        DiagnosticCase("tabs count as one column", "input\tx\tshape=3x8x8\n\tconv\tc1\tfilters=4\tsize=9\n", """
            t.net:2:2: error: conv 'c1' window 9x9 is larger than its padded input 8x8 (input 3x8x8)
             conv c1 filters=4 size=9
             ^~~~
            """),

        // MARK: Not text
        DiagnosticCase("no-break space between words", "input x shape=3\nrelu\u{A0}r\n", """
            t.net:2:5: error: unexpected character U+00A0 (outside comments only printable ASCII is allowed)
            relu\u{A0}r
                ^
            """),
        DiagnosticCase("binary garbage", bytes: Array("input x shape=3\nrelu\n".utf8) + [0xFF, 0xFE, 0x7A, 0x7A], """
            t.net:3:1: error: 't.net' is not a text file: invalid UTF-8 byte 0xff
            \u{FFFD}\u{FFFD}zz
            ^
            """),
        DiagnosticCase("Latin-1 in a comment", bytes: Array("input x shape=3\nrelu r # caf".utf8) + [0xE9], """
            t.net:2:13: error: 't.net' is not a text file: invalid UTF-8 byte 0xe9
            relu r # caf\u{FFFD}
                        ^
            """),
        DiagnosticCase("NUL byte", bytes: Array("input x shape=3\nrelu\0\n".utf8), """
            t.net:2:5: error: 't.net' is not a text file: NUL byte
            relu\0
                ^
            """),
        DiagnosticCase("executable header", bytes: [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00], """
            t.net:1:1: error: 't.net' is not a text file: control byte 0x7f
            \u{7F}ELF\u{2}\u{1}\u{1}\0
            ^
            """),
    ]

    func testEveryCase() {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 25)
        for testCase in Self.cases {
            XCTAssertEqual(testCase.rendered, testCase.expected, "case '\(testCase.name)'", line: testCase.line)
        }
    }

    func testCaseNamesAreUnique() {
        XCTAssertEqual(Set(Self.cases.map(\.name)).count, Self.cases.count)
    }
}
