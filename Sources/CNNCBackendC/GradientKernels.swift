// The backward kernels of the training step, one per op (llm.c style): each ADDS into the
// gradients it writes (the step zeroes them once), and parallel loops run only over
// outputs a task owns (conv: dW per block of rows and columns through the runtime's GEMM, dX
// per input plane; dense: GEMM blocks of dW and dX), each summed in a fixed order, so
// gradients are bitwise identical at any thread count. Also the training-mode forward of batch norm (batch statistics, running
// updates) and dropout (the counter-based mask of `DropoutMask`).
//
// Signature of `train_node_<name>_backward`, in order: d_in (or d_in0, d_in1, ...) for the
// inputs that need a gradient; d_<role> for the trainable, unfrozen parameters; d_out; out;
// in (or in0, ...); every parameter by role; `saved` (batch norm: mean[C], invstd[C]);
// `seed, step` (dropout); n.

import CNNCIR

/// What a backward (or training-forward) kernel knows.
struct BackwardContext {
    var node: Node
    var inputShapes: [Shape]
    var function: String
    var inputNeedsGrad: [Bool]
    var parameters: [ParameterSpec]
    var parameterNeedsGrad: [Bool]

    var x: Shape { inputShapes[0] }
    var y: Shape { node.shape }
    var inputNames: [String] { inputShapes.count == 1 ? ["in"] : inputShapes.indices.map { "in\($0)" } }
    func wantsInput(_ i: Int = 0) -> Bool { inputNeedsGrad[i] }
    func wantsParameter(_ role: String) -> Bool {
        zip(parameters, parameterNeedsGrad).contains { $0.role == role && $1 }
    }
}

enum BackwardKernels {
    static func signature(_ k: BackwardContext) -> (String, [String]) {
        var args: [String] = [], names: [String] = []
        for (i, name) in k.inputNames.enumerated() where k.inputNeedsGrad[i] {
            args.append("float *restrict d_\(name)"); names.append("d_\(name)")
        }
        for (p, wants) in zip(k.parameters, k.parameterNeedsGrad) where wants {
            args.append("float *restrict d_\(p.role)"); names.append("d_\(p.role)")
        }
        args += ["const float *restrict d_out", "const float *restrict out"]
        names += ["d_out", "out"]
        for name in k.inputNames { args.append("const float *restrict \(name)"); names.append(name) }
        for p in k.parameters { args.append("const float *restrict \(p.role)"); names.append(p.role) }
        if case .batchNorm = k.node.op { args.append("const float *restrict saved"); names.append("saved") }
        if case .dropout = k.node.op { args += ["uint64_t seed", "int64_t step"]; names += ["seed", "step"] }
        args.append("int n")
        return ("static void \(k.function)(\(args.joined(separator: ", ")))", names)
    }

    static func emit(_ k: BackwardContext, into w: inout CWriter) {
        let (header, names) = signature(k)
        w.comment("backward of \(k.node.displayName); adds into the gradients")
        w.block(header) { w in
            w.line(names.map { "(void)\($0);" }.joined(separator: " "))
            switch k.node.op {
            case .conv(let a): conv(k, a, &w)
            case .dense: dense(k, &w)
            case .activation(let act): activation(k, act, &w)
            case .prelu(let a): prelu(k, a, &w)
            case .add:
                for (i, name) in k.inputNames.enumerated() where k.inputNeedsGrad[i] {
                    w.line("#pragma omp parallel for schedule(static)")
                    w.line("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++) d_\(name)[i] += d_out[i];")
                }
            case .dropout(let rate): dropout(k, rate, &w)
            case .maxPool(let a): pool(k, a, isMax: true, &w)
            case .avgPool(let a): pool(k, a, isMax: false, &w)
            case .globalAvgPool, .globalMaxPool: globalPool(k, &w)
            case .lrn(let a): lrn(k, a, &w)
            case .batchNorm: batchNorm(k, &w)
            case .flatten:
                if k.wantsInput() {
                    w.line("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++) d_in[i] += d_out[i];")
                }
            case .concat: concat(k, &w)
            case .softmax, .logSoftmax: softmax(k, &w)
            case .input: break
            }
        }
        w.line()
    }

    static func conv(_ k: BackwardContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), DH = \(a.dilation.h), DW = \(a.dilation.w), CG = \(x.c / a.groups), KG = \(a.filters / a.groups) };
        """)
        if k.wantsParameter("bias") {
            w.comment("d_bias[k] += sum over samples and positions")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int k = 0; k < K; k++)") { w in
                w.line("float s = 0.0f;")
                w.line("for (int b = 0; b < n; b++) for (int i = 0; i < P * Q; i++) s += d_out[((size_t)b * K + k) * (P * Q) + i];")
                w.line("d_bias[k] += s;")
            }
        }
        if k.wantsParameter("weight") {
            w.comment("d_weight[KG x CG*R*S] += d_out[KG x n*P*Q] * im2col(in)^T per group, through cnnc_sgemm_conv_weight_grad;")
            w.comment("one task per (group, block of output channels, block of 64 weight columns); samples summed in order")
            w.lines("""
            enum { CRS = CG * R * S, PQ = P * Q, MB = KG <= 128 ? KG : 64, MBLOCKS = (KG + MB - 1) / MB, NB = 64, NBLOCKS = (CRS + NB - 1) / NB };
            static const cnnc_conv_geometry geometry = {CG, H, W, R, S, SH, SW, PT, PL, DH, DW, P, Q};
            """)
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int t = 0; t < (K / KG) * MBLOCKS; t++)") { w in
                w.block("for (int jb = 0; jb < NBLOCKS; jb++)") { w in
                    w.line("const int g = t / MBLOCKS, k0 = g * KG + (t % MBLOCKS) * MB;")
                    w.line("const int mb = (g + 1) * KG - k0 < MB ? (g + 1) * KG - k0 : MB;")
                    w.line("const int j0 = jb * NB, nj = CRS - j0 < NB ? CRS - j0 : NB;")
                    w.line("cnnc_sgemm_conv_weight_grad(mb, nj, n * PQ, d_out + (size_t)k0 * PQ, (size_t)K * PQ, &geometry, in + (size_t)g * CG * H * W, (size_t)C * H * W, 0, j0, d_weight + (size_t)k0 * CRS + j0, CRS, 1);")
                }
            }
        }
        if k.wantsInput() {
            w.comment("d_in[b,ci] += sum over the group's k and taps of d_out * weight; one task per input plane")
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("for (int ci = 0; ci < C; ci++)") { w in
                    w.line("const int g = ci / CG, c = ci % CG;")
                    w.line("float *restrict dx = d_in + ((size_t)b * C + ci) * (H * W);")
                    w.block("for (int k = g * KG; k < (g + 1) * KG; k++)") { w in
                        w.line("const float *restrict dy = d_out + ((size_t)b * K + k) * (P * Q);")
                        w.block("for (int r = 0; r < R; r++)") { w in
                            w.block("for (int s = 0; s < S; s++)") { w in
                                w.line("const float wv = weight[(((size_t)k * CG + c) * R + r) * S + s];")
                                w.line("int q0 = 0, q1 = Q;")
                                w.line("while (q0 < Q && q0 * SW - PL + s * DW < 0) q0++;")
                                w.line("while (q1 > q0 && (q1 - 1) * SW - PL + s * DW >= W) q1--;")
                                w.block("for (int p = 0; p < P; p++)") { w in
                                    w.line("const int h = p * SH - PT + r * DH;")
                                    w.line("if (h < 0 || h >= H) continue;")
                                    w.line("const int base = h * W - PL + s * DW;")
                                    w.line("for (int q = q0; q < q1; q++) dx[base + q * SW] += wv * dy[p * Q + q];")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    static func dense(_ k: BackwardContext, _ w: inout CWriter) {
        w.line("enum { I = \(k.x.count), J = \(k.y.count) };")
        if k.wantsParameter("bias") {
            w.line("#pragma omp parallel for schedule(static)")
            w.line("for (int j = 0; j < J; j++) { float s = 0.0f; for (int b = 0; b < n; b++) s += d_out[(size_t)b * J + j]; d_bias[j] += s; }")
        }
        if k.wantsParameter("weight") {
            w.comment("d_weight[J x I] += d_out^T[J x n] * in[n x I]; one task per block of 64 units, samples summed in order")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int j0 = 0; j0 < J; j0 += 64)") { w in
                w.line("cnnc_sgemm(J - j0 < 64 ? J - j0 : 64, I, n, d_out + j0, J, 1, in, I, 0, d_weight + (size_t)j0 * I, I, 1);")
            }
        }
        if k.wantsInput() {
            w.comment("d_in[n x I] += d_out[n x J] * weight[J x I]; one task per block of 256 inputs")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int i0 = 0; i0 < I; i0 += 256)") { w in
                w.line("cnnc_sgemm(n, I - i0 < 256 ? I - i0 : 256, J, d_out, J, 0, weight + i0, I, 0, d_in + i0, I, 1);")
            }
        }
    }

    /// The derivative of an activation at `x`, as C (matching the interpreter's conventions).
    static func derivative(_ act: Activation, _ x: String) -> String {
        switch act {
        case .relu: return "(\(x) > 0.0f ? 1.0f : 0.0f)"
        case .leakyRelu(let alpha): return "(\(x) > 0.0f ? 1.0f : \(cFloat(alpha)))"
        case .sigmoid: return "(1.0f / (1.0f + expf(-\(x))) * (1.0f - 1.0f / (1.0f + expf(-\(x)))))"
        case .tanh: return "(1.0f - tanhf(\(x)) * tanhf(\(x)))"
        case .swish: return "(1.0f / (1.0f + expf(-\(x))) * (1.0f + \(x) * (1.0f - 1.0f / (1.0f + expf(-\(x))))))"
        case .elu(let alpha): return "(\(x) > 0.0f ? 1.0f : \(cFloat(alpha)) * expf(\(x)))"
        case .selu(let alpha, let gamma): return "(\(x) > 0.0f ? \(cFloat(gamma)) : \(cFloat(gamma * alpha)) * expf(\(x)))"
        case .softplus: return "(1.0f / (1.0f + expf(-\(x))))"
        case .hardSigmoid(let alpha, let beta):
            return "(\(cFloat(alpha)) * \(x) + \(cFloat(beta)) > 0.0f && \(cFloat(alpha)) * \(x) + \(cFloat(beta)) < 1.0f ? \(cFloat(alpha)) : 0.0f)"
        case .hardSwish: return "(\(x) < -3.0f ? 0.0f : (\(x) <= 3.0f ? \(x) / 3.0f + 0.5f : 1.0f))"
        case .clip(let low, let high): return "(\(x) > \(cFloat(low)) && \(x) < \(cFloat(high)) ? 1.0f : 0.0f)"
        }
    }

    static func activation(_ k: BackwardContext, _ act: Activation, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++)") { w in
            w.line("const float x = in[i];")
            w.line("d_in[i] += d_out[i] * \(derivative(act, "x"));")
        }
    }

    static func prelu(_ k: BackwardContext, _ a: PReLUAttributes, _ w: inout CWriter) {
        let channels = a.shared ? 1 : k.y.dims[0]
        let inner = a.shared ? k.y.count : k.y.count / k.y.dims[0]
        w.line("enum { CH = \(k.y.dims[0]), INNER = \(inner), SLOPES = \(channels) };")
        if k.wantsInput() {
            w.line("#pragma omp parallel for schedule(static)")
            w.line("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++) d_in[i] += in[i] > 0.0f ? d_out[i] : weight[\(a.shared ? "0" : "(i / INNER) % CH")] * d_out[i];")
        }
        if k.wantsParameter("weight") {
            w.comment("d_weight[c] += sum of in * d_out where in <= 0; one task per slope")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int c = 0; c < SLOPES; c++)") { w in
                w.line("float s = 0.0f;")
                if a.shared {
                    w.line("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++) if (!(in[i] > 0.0f)) s += in[i] * d_out[i];")
                } else {
                    w.line("for (int b = 0; b < n; b++)")
                    w.line("    for (int i = 0; i < INNER; i++) { const size_t at = ((size_t)b * CH + c) * INNER + i; if (!(in[at] > 0.0f)) s += in[at] * d_out[at]; }")
                }
                w.line("d_weight[c] += s;")
            }
        }
    }

    /// The C line that starts the dropout mask's stream for this node at `step` (the hashing
    /// of `DropoutMask`; element i is kept when its uniform from `stream + i` is >= the rate).
    static func dropoutStream(_ k: BackwardContext) -> String {
        "const uint64_t stream = splitmix64(seed ^ 0x\(String(SeededInit.nameHash(k.node.name), radix: 16))ULL ^ splitmix64((uint64_t)step));"
    }

    static func dropout(_ k: BackwardContext, _ rate: Double, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        w.line(dropoutStream(k))
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++)") { w in
            w.line("const double u = (double)(splitmix64(stream + (uint64_t)i) >> 40) / 16777216.0;")
            w.line("if (u >= \(rate)) d_in[i] += d_out[i] * \(cFloat(1 / (1 - rate)));")
        }
    }

    static func pool(_ k: BackwardContext, _ a: PoolAttributes, isMax: Bool, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let x = k.x, y = k.y
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), PB = \(a.padding.bottom), PR = \(a.padding.right) };
        """)
        w.comment(isMax ? "each output's gradient goes to the first maximum of its window; one task per plane"
                        : "each output's gradient spreads over its window with the forward divisor; one task per plane")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                if isMax { w.line("const float *restrict xc = in + ((size_t)b * C + c) * (H * W);") }
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * (H * W);")
                w.line("const float *restrict dy = d_out + ((size_t)b * C + c) * (P * Q);")
                w.block("for (int p = 0; p < P; p++)") { w in
                    w.block("for (int q = 0; q < Q; q++)") { w in
                        w.line("int h0 = p * SH - PT, w0 = q * SW - PL;")
                        w.line("int h1 = h0 + R, w1 = w0 + S;")
                        if !isMax && a.countIncludePad {
                            w.line("if (h1 > H + PB) h1 = H + PB;")
                            w.line("if (w1 > W + PR) w1 = W + PR;")
                            w.line("const int padded = (h1 - h0) * (w1 - w0);")
                        }
                        w.line("if (h0 < 0) h0 = 0;")
                        w.line("if (w0 < 0) w0 = 0;")
                        w.line("if (h1 > H) h1 = H;")
                        w.line("if (w1 > W) w1 = W;")
                        if isMax {
                            w.line("int best = -1;")
                            w.line("for (int h = h0; h < h1; h++)")
                            w.line("    for (int v = w0; v < w1; v++) if (best < 0 || xc[h * W + v] > xc[best]) best = h * W + v;")
                            w.line("if (best >= 0) dx[best] += dy[p * Q + q];")
                        } else {
                            let divisor = a.countIncludePad ? "padded" : "(h1 - h0) * (w1 - w0)"
                            w.line("const float g = dy[p * Q + q] / (float)(\(divisor));")
                            w.line("for (int h = h0; h < h1; h++)")
                            w.line("    for (int v = w0; v < w1; v++) dx[h * W + v] += g;")
                        }
                    }
                }
            }
        }
    }

    static func globalPool(_ k: BackwardContext, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let isMax: Bool
        if case .globalMaxPool = k.node.op { isMax = true } else { isMax = false }
        w.line("enum { C = \(k.x.c), HW = \(k.x.h * k.x.w) };")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int c = 0; c < C; c++)") { w in
                w.line("const float g = d_out[(size_t)b * C + c];")
                w.line("float *restrict dx = d_in + ((size_t)b * C + c) * HW;")
                if isMax {
                    w.line("const float *restrict xc = in + ((size_t)b * C + c) * HW;")
                    w.line("int best = 0;")
                    w.line("for (int i = 1; i < HW; i++) if (xc[i] > xc[best]) best = i;")
                    w.line("dx[best] += g;")
                } else {
                    w.line("for (int i = 0; i < HW; i++) dx[i] += g / (float)HW;")
                }
            }
        }
    }

    static func lrn(_ k: BackwardContext, _ a: LRNAttributes, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let x = k.x
        w.line("enum { C = \(x.c), HW = \(x.h * x.w), LO = \(a.size / 2), HI = \((a.size - 1) / 2) };")
        w.comment("y_c = x_c D_c^-beta, D_c = k + alpha/size * sum_{j in win(c)} x_j^2; d_in_i = dy_i D_i^-beta - 2 alpha beta/size x_i sum_{c: i in win(c)} dy_c x_c D_c^(-beta-1)")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int i = 0; i < HW; i++)") { w in
                w.line("const float *restrict xb = in + (size_t)b * C * HW + i;")
                w.line("const float *restrict dy = d_out + (size_t)b * C * HW + i;")
                w.line("float *restrict dx = d_in + (size_t)b * C * HW + i;")
                w.line("float d[C];")
                w.block("for (int c = 0; c < C; c++)") { w in
                    w.line("const int c0 = c - LO < 0 ? 0 : c - LO, c1 = c + HI >= C ? C - 1 : c + HI;")
                    w.line("float sq = 0.0f;")
                    w.line("for (int j = c0; j <= c1; j++) sq += xb[(size_t)j * HW] * xb[(size_t)j * HW];")
                    w.line("d[c] = \(cFloat(a.k)) + \(cFloat(a.alpha / Double(a.size))) * sq;")
                }
                w.block("for (int c = 0; c < C; c++)") { w in
                    w.line("const int c0 = c - HI < 0 ? 0 : c - HI, c1 = c + LO >= C ? C - 1 : c + LO;")
                    w.line("float cross = 0.0f;")
                    w.line("for (int j = c0; j <= c1; j++) cross += dy[(size_t)j * HW] * xb[(size_t)j * HW] * powf(d[j], \(cFloat(-a.beta - 1)));")
                    w.line("dx[(size_t)c * HW] += dy[(size_t)c * HW] * powf(d[c], \(cFloat(-a.beta))) - \(cFloat(2 * a.alpha * a.beta / Double(a.size))) * xb[(size_t)c * HW] * cross;")
                }
            }
        }
    }

    static func batchNorm(_ k: BackwardContext, _ w: inout CWriter) {
        let c = k.y.dims[0], inner = k.y.count / c
        w.line("enum { C = \(c), INNER = \(inner) };")
        w.comment("training mode: xhat = (x - mean) * invstd; d_in = weight * invstd / m * (m dy - sum dy - xhat sum dy xhat); one task per channel")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int c = 0; c < C; c++)") { w in
            w.line("const float mean = saved[c], invstd = saved[C + c];")
            w.line("double sdy = 0.0, sdyx = 0.0;")
            w.line("for (int b = 0; b < n; b++)")
            w.line("    for (int i = 0; i < INNER; i++) { const size_t at = ((size_t)b * C + c) * INNER + i; sdy += d_out[at]; sdyx += (double)d_out[at] * (in[at] - mean) * invstd; }")
            if k.wantsParameter("weight") { w.line("d_weight[c] += (float)sdyx;") }
            if k.wantsParameter("bias") { w.line("d_bias[c] += (float)sdy;") }
            if k.wantsInput() {
                w.comment("the bracket cancels: it is formed in double")
                w.line("const double m = (double)n * INNER, scale = (double)weight[c] * invstd / m;")
                w.line("for (int b = 0; b < n; b++)")
                w.line("    for (int i = 0; i < INNER; i++) { const size_t at = ((size_t)b * C + c) * INNER + i; d_in[at] += (float)(scale * (m * d_out[at] - sdy - ((double)in[at] - mean) * invstd * sdyx)); }")
            }
        }
    }

    static func concat(_ k: BackwardContext, _ w: inout CWriter) {
        let total = k.y.count
        var offset = 0
        for (i, s) in k.inputShapes.enumerated() {
            if k.inputNeedsGrad[i] {
                w.line("#pragma omp parallel for schedule(static)")
                w.line("for (int b = 0; b < n; b++) for (int j = 0; j < \(s.count); j++) d_in\(i)[(size_t)b * \(s.count) + j] += d_out[(size_t)b * \(total) + \(offset) + j];")
            }
            offset += s.count
        }
    }

    static func softmax(_ k: BackwardContext, _ w: inout CWriter) {
        guard k.wantsInput() else { return }
        let isLog: Bool
        if case .logSoftmax = k.node.op { isLog = true } else { isLog = false }
        let c = k.y.dims[0], inner = k.y.count / c
        w.line("enum { C = \(c), INNER = \(inner) };")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int i = 0; i < INNER; i++)") { w in
                w.line("const size_t base = (size_t)b * C * INNER + i;")
                w.line("float s = 0.0f;")
                if isLog {
                    w.line("for (int c = 0; c < C; c++) s += d_out[base + (size_t)c * INNER];")
                    w.line("for (int c = 0; c < C; c++) d_in[base + (size_t)c * INNER] += d_out[base + (size_t)c * INNER] - expf(out[base + (size_t)c * INNER]) * s;")
                } else {
                    w.line("for (int c = 0; c < C; c++) s += d_out[base + (size_t)c * INNER] * out[base + (size_t)c * INNER];")
                    w.line("for (int c = 0; c < C; c++) d_in[base + (size_t)c * INNER] += out[base + (size_t)c * INNER] * (d_out[base + (size_t)c * INNER] - s);")
                }
            }
        }
    }
}

/// Training-mode forward of batch norm and dropout.
enum TrainingForwardKernels {
    static func emit(_ k: BackwardContext, into w: inout CWriter) {
        switch k.node.op {
        case .batchNorm(let a):
            let c = k.y.dims[0], inner = k.y.count / c
            w.comment("\(k.node.displayName), training: batch statistics over (N, H, W); running statistics with momentum \(a.momentum) and the unbiased variance")
            w.block("static void \(k.function)(float *restrict out, float *restrict saved, float *restrict running_mean, float *restrict running_var, const float *restrict in, const float *restrict weight, const float *restrict bias, int n)") { w in
                w.line("enum { C = \(c), INNER = \(inner) };")
                w.line("#pragma omp parallel for schedule(static)")
                w.block("for (int c = 0; c < C; c++)") { w in
                    w.line("const double m = (double)n * INNER;")
                    w.line("double sum = 0.0;")
                    w.line("for (int b = 0; b < n; b++) for (int i = 0; i < INNER; i++) sum += in[((size_t)b * C + c) * INNER + i];")
                    w.line("const double mean = sum / m;")
                    w.line("double sq = 0.0;")
                    w.line("for (int b = 0; b < n; b++) for (int i = 0; i < INNER; i++) { const double d = in[((size_t)b * C + c) * INNER + i] - mean; sq += d * d; }")
                    w.line("const double var = sq / m;")
                    w.line("const float invstd = (float)(1.0 / sqrt(var + \(a.epsilon)));")
                    w.line("saved[c] = (float)mean;")
                    w.line("saved[C + c] = invstd;")
                    w.line("const float scale = weight[c] * invstd, m32 = (float)mean;")
                    w.line("for (int b = 0; b < n; b++) for (int i = 0; i < INNER; i++) { const size_t at = ((size_t)b * C + c) * INNER + i; out[at] = (in[at] - m32) * scale + bias[c]; }")
                    w.line("running_mean[c] = (float)((1.0 - \(a.momentum)) * running_mean[c] + \(a.momentum) * mean);")
                    w.line("running_var[c] = (float)((1.0 - \(a.momentum)) * running_var[c] + \(a.momentum) * var * m / (m - 1.0));")
                }
            }
        case .dropout(let rate):
            w.comment("\(k.node.displayName), training: inverted dropout with the counter-based mask (rate \(rate))")
            w.block("static void \(k.function)(float *restrict out, const float *restrict in, uint64_t seed, int64_t step, int n)") { w in
                w.line(BackwardKernels.dropoutStream(k))
                w.line("#pragma omp parallel for schedule(static)")
                w.block("for (size_t i = 0; i < (size_t)n * \(k.y.count); i++)") { w in
                    w.line("const double u = (double)(splitmix64(stream + (uint64_t)i) >> 40) / 16777216.0;")
                    w.line("out[i] = u >= \(rate) ? in[i] * \(cFloat(1 / (1 - rate))) : 0.0f;")
                }
            }
        case .input, .conv, .dense, .activation, .prelu, .add, .maxPool, .avgPool, .globalAvgPool, .globalMaxPool, .lrn,
             .flatten, .concat, .softmax, .logSoftmax:
            fatalError("compiler bug: \(k.node.displayName) has no training-mode forward kernel")
        }
        w.line()
    }
}
