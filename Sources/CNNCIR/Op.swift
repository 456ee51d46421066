// The closed set of operations a graph can hold. Every switch over `Op` is exhaustive (no
// `default:`), so adding an op makes the compiler list every place to update.

/// Two integers for the height and width direction (kernel sizes, strides, dilations).
public struct Pair: Hashable, Sendable, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(_ both: Int) { self.init(both, both) }
    /// `3` when both are equal, else `3x5`.
    public var description: String { h == w ? "\(h)" : "\(h)x\(w)" }
}

/// Zero padding on each side of a feature map (may be asymmetric, as ONNX allows).
public struct Padding: Hashable, Sendable, CustomStringConvertible {
    public var top: Int
    public var left: Int
    public var bottom: Int
    public var right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    public init(_ h: Int, _ w: Int) { self.init(top: h, left: w, bottom: h, right: w) }
    public static let zero = Padding(0, 0)
    public var isSymmetric: Bool { top == bottom && left == right }
    /// `2`, `1x2` (height x width) or `t,l,b,r` when asymmetric.
    public var description: String {
        if isSymmetric { return Pair(top, left).description }
        return "\(top),\(left),\(bottom),\(right)"
    }
}

/// Element-wise activation functions without parameters; fusion passes attach them to the
/// layer that produces their input.
public enum Activation: Hashable, Sendable {
    /// max(x, 0)
    case relu
    /// x if x > 0 else alpha * x
    case leakyRelu(alpha: Double)
    /// 1 / (1 + exp(-x))
    case sigmoid
    /// tanh(x)
    case tanh
    /// x * sigmoid(x) (also called SiLU)
    case swish
    /// x if x > 0 else alpha * (exp(x) - 1)
    case elu(alpha: Double)
}

/// Convolution: `out[n,k,p,q] = bias[k] + sum_{c,r,s} in[n, g*C/G + c, p*sh - pt + r*dh,
/// q*sw - pl + s*dw] * weight[k, c, r, s]` over the channels `c` of output channel k's group.
public struct ConvAttributes: Hashable, Sendable {
    public var filters: Int
    public var kernel: Pair
    public var stride: Pair
    public var padding: Padding
    public var dilation: Pair
    public var groups: Int
    public var bias: Bool
    public init(
        filters: Int, kernel: Pair, stride: Pair = Pair(1), padding: Padding = .zero,
        dilation: Pair = Pair(1), groups: Int = 1, bias: Bool = true
    ) {
        self.filters = filters; self.kernel = kernel; self.stride = stride
        self.padding = padding; self.dilation = dilation; self.groups = groups; self.bias = bias
    }
}

/// Fully connected layer over the flattened input: `out[n,j] = bias[j] + sum_i in[n,i] * weight[j,i]`.
public struct DenseAttributes: Hashable, Sendable {
    public var units: Int
    public var bias: Bool
    public init(units: Int, bias: Bool = true) { self.units = units; self.bias = bias }
}

/// Max or average pooling over a window; padded positions never win a max and count for
/// averages only when `countIncludePad` (PyTorch's default).
public struct PoolAttributes: Hashable, Sendable {
    public var kernel: Pair
    public var stride: Pair
    public var padding: Padding
    public var ceilMode: Bool
    public var countIncludePad: Bool
    public init(
        kernel: Pair, stride: Pair, padding: Padding = .zero, ceilMode: Bool = false,
        countIncludePad: Bool = true
    ) {
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.ceilMode = ceilMode; self.countIncludePad = countIncludePad
    }
}

/// Local response normalization across channels (AlexNet, PyTorch `LocalResponseNorm`):
/// `out = in / (k + alpha / size * sum_{c' in window(c)} in[c']^2) ^ beta`, with the window
/// from `c - size/2` to `c + (size-1)/2`.
public struct LRNAttributes: Hashable, Sendable {
    public var size: Int
    public var alpha: Double
    public var beta: Double
    public var k: Double
    public init(size: Int, alpha: Double = 1e-4, beta: Double = 0.75, k: Double = 1) {
        self.size = size; self.alpha = alpha; self.beta = beta; self.k = k
    }
}

/// Batch normalization per channel: `out = (in - mean) / sqrt(var + eps) * weight + bias`,
/// with running statistics at inference and batch statistics in training.
public struct BatchNormAttributes: Hashable, Sendable {
    public var epsilon: Double
    public var momentum: Double
    public init(epsilon: Double = 1e-5, momentum: Double = 0.1) {
        self.epsilon = epsilon; self.momentum = momentum
    }
}

/// Learned leaky ReLU: `out = in if in > 0 else weight[c] * in`, one weight shared by all
/// channels (PyTorch's default) or one per channel.
public struct PReLUAttributes: Hashable, Sendable {
    public var shared: Bool
    public init(shared: Bool = true) { self.shared = shared }
}

/// One operation of the graph; inputs are the node's operands, in order.
public enum Op: Hashable, Sendable {
    // Graph inputs.
    case input(Shape)

    // Linear layers.
    case conv(ConvAttributes)
    case dense(DenseAttributes)

    // Element-wise.
    case activation(Activation)
    case prelu(PReLUAttributes)
    case add
    case dropout(rate: Double)

    // Pooling and normalization.
    case maxPool(PoolAttributes)
    case avgPool(PoolAttributes)
    case globalAvgPool
    case lrn(LRNAttributes)
    case batchNorm(BatchNormAttributes)

    // Layout and output.
    case flatten
    case concat
    case softmax
}
