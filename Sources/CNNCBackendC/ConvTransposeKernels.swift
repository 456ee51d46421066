// Transposed convolution in C: the naive reference form, forward and backward. With input
// element (h, w) of channel g*CG + c reaching output row p = h*SH - PT + r*DH and column
// q = w*SW - PL + s*DW through tap (r, s) of filter column k:
//   out[b, g*KG + k, p, q]        += in[b, g*CG + c, h, w] * weight[g*CG + c, k, r, s]  (+ bias[k])
//   d in[b, g*CG + c, h, w]       += weight[g*CG + c, k, r, s] * d out[b, g*KG + k, p, q]
//   d weight[g*CG + c, k, r, s]   += in[b, g*CG + c, h, w] * d out[b, g*KG + k, p, q]
//   d bias[k]                     += d out[b, k, p, q]
// over the taps inside the output. Each loop nest runs in parallel over outputs one task owns.

import CNNCIR

/// The forward kernel: one task per (sample, output channel), the input channels of its group
/// scattered tap by tap into the plane.
enum ConvTransposeKernel {
    static func geometry(x: Shape, y: Shape, _ a: ConvTransposeAttributes) -> String {
        """
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), R = \(a.kernel.h), S = \(a.kernel.w) };
        enum { SH = \(a.stride.h), SW = \(a.stride.w), PT = \(a.padding.top), PL = \(a.padding.left), DH = \(a.dilation.h), DW = \(a.dilation.w), CG = \(x.c / a.groups), KG = \(a.filters / a.groups) };
        """
    }

    /// `int w0, w1`: the input columns whose tap s lands in the output's [0, Q).
    static func columnRange(_ w: inout CWriter) {
        w.line("int w0 = 0, w1 = W;")
        w.line("while (w0 < W && w0 * SW - PL + s * DW < 0) w0++;")
        w.line("while (w1 > w0 && (w1 - 1) * SW - PL + s * DW >= Q) w1--;")
    }

    static func emit(_ k: KernelContext, _ a: ConvTransposeAttributes, _ w: inout CWriter) {
        w.lines(geometry(x: k.x, y: k.y, a))
        w.line(k.strideEnum())
        w.comment("one task per (sample, output channel); input channels and taps scatter in a fixed order")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int k = 0; k < K; k++)") { w in
                w.line("const int g = k / KG, kk = k % KG;")
                w.line("float *restrict o = out + (size_t)b * OS + (size_t)k * (P * Q);")
                w.line("const float init = \(k.hasBias ? "bias[k]" : "0.0f");")
                w.line("for (int i = 0; i < P * Q; i++) o[i] = 0.0f;")
                w.block("for (int c = g * CG; c < (g + 1) * CG; c++)") { w in
                    w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * (H * W);")
                    w.line("const float *restrict wk = weight + ((size_t)c * KG + kk) * (R * S);")
                    w.block("for (int r = 0; r < R; r++)") { w in
                        w.block("for (int s = 0; s < S; s++)") { w in
                            w.line("const float wv = wk[r * S + s];")
                            columnRange(&w)
                            w.block("for (int h = 0; h < H; h++)") { w in
                                w.line("const int p = h * SH - PT + r * DH;")
                                w.line("if (p < 0 || p >= P) continue;")
                                w.line("const int base = p * Q - PL + s * DW;")
                                w.line("for (int x = w0; x < w1; x++) o[base + x * SW] += wv * xc[h * W + x];")
                            }
                        }
                    }
                }
                w.comment("the bias goes on after the sum")
                w.line("for (int i = 0; i < P * Q; i++) o[i] += init;")
            }
        }
    }
}

/// The backward kernels: d in per (sample, input channel) plane, d weight per (input channel,
/// filter column), d bias per output channel; each sums in a fixed order.
enum ConvTransposeBackward {
    static func emit(_ k: BackwardContext, _ a: ConvTransposeAttributes, _ w: inout CWriter) {
        w.lines(ConvTransposeKernel.geometry(x: k.x, y: k.y, a))
        if k.wantsInput() {
            w.comment("d in: one task per (sample, input channel); each element gathers the d out its taps reached")
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int b = 0; b < n; b++)") { w in
                w.block("for (int c = 0; c < C; c++)") { w in
                    w.line("const int g = c / CG;")
                    w.line("float *restrict dx = d_in + ((size_t)b * C + c) * (H * W);")
                    w.block("for (int kk = 0; kk < KG; kk++)") { w in
                        w.line("const float *restrict dy = d_out + ((size_t)b * K + (size_t)g * KG + kk) * (P * Q);")
                        w.line("const float *restrict wk = weight + ((size_t)c * KG + kk) * (R * S);")
                        w.block("for (int r = 0; r < R; r++)") { w in
                            w.block("for (int s = 0; s < S; s++)") { w in
                                w.line("const float wv = wk[r * S + s];")
                                ConvTransposeKernel.columnRange(&w)
                                w.block("for (int h = 0; h < H; h++)") { w in
                                    w.line("const int p = h * SH - PT + r * DH;")
                                    w.line("if (p < 0 || p >= P) continue;")
                                    w.line("const int base = p * Q - PL + s * DW;")
                                    w.line("for (int x = w0; x < w1; x++) dx[h * W + x] += wv * dy[base + x * SW];")
                                }
                            }
                        }
                    }
                }
            }
        }
        if k.wantsParameter("weight") {
            w.comment("d weight: one task per (input channel, filter column); each tap sums over the batch in double")
            w.line("#pragma omp parallel for collapse(2) schedule(static)")
            w.block("for (int c = 0; c < C; c++)") { w in
                w.block("for (int kk = 0; kk < KG; kk++)") { w in
                    w.line("const int g = c / CG;")
                    w.line("float *restrict dwk = d_weight + ((size_t)c * KG + kk) * (R * S);")
                    w.block("for (int r = 0; r < R; r++)") { w in
                        w.block("for (int s = 0; s < S; s++)") { w in
                            ConvTransposeKernel.columnRange(&w)
                            w.line("double sum = 0.0;")
                            w.block("for (int b = 0; b < n; b++)") { w in
                                w.line("const float *restrict xc = in + ((size_t)b * C + c) * (H * W);")
                                w.line("const float *restrict dy = d_out + ((size_t)b * K + (size_t)g * KG + kk) * (P * Q);")
                                w.block("for (int h = 0; h < H; h++)") { w in
                                    w.line("const int p = h * SH - PT + r * DH;")
                                    w.line("if (p < 0 || p >= P) continue;")
                                    w.line("const int base = p * Q - PL + s * DW;")
                                    w.line("for (int x = w0; x < w1; x++) sum += (double)xc[h * W + x] * dy[base + x * SW];")
                                }
                            }
                            w.line("dwk[r * S + s] += (float)sum;")
                        }
                    }
                }
            }
        }
        if a.bias && k.wantsParameter("bias") {
            w.comment("d bias: one task per output channel, summed over the batch and the plane in double")
            w.line("#pragma omp parallel for schedule(static)")
            w.block("for (int k = 0; k < K; k++)") { w in
                w.line("double sum = 0.0;")
                w.line("for (int b = 0; b < n; b++)")
                w.line("    for (int i = 0; i < P * Q; i++) sum += d_out[((size_t)b * K + k) * (P * Q) + i];")
                w.line("d_bias[k] += (float)sum;")
            }
        }
    }
}
