// Winograd convolution F(m x m, 3x3) for 3x3 stride-1 layers (Lavin and Gray, "Fast
// algorithms for convolutional neural networks", 2016). For each output tile of m x m, with
// d the (m+2) x (m+2) input tile of one channel and g one 3x3 filter:
//
//   Y = A^T [ sum_c (G g_kc G^T) .* (B^T d_c B) ] A
//
// The filter transform U = G g G^T runs once in `<p>_prepare`; the kernel transforms a
// block of input tiles, multiplies them by U with one GEMM per transform-domain position, and
// transforms back. F(4x4) runs on the runtime's three steps (Runtime/src/winograd.c: the
// transforms vectorized over 16 or 8 tiles, whole image rows and permutes with AVX-512, gathers
// and scatters with AVX2; the products on the implicit GEMM with U packed once);
// F(2x2), which select-conv-algorithm picks only where F(4x4)'s error estimate is over budget
// (over 771 input channels) or the user pins it, keeps the C generated per layer below. Tiles that hang over the bottom/right edge read zeros and write only the
// outputs that exist, so every size works (odd sizes, 1xN, outputs smaller than a tile).
//
// Matrices: F(2x2, 3x3)
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// F(4x4, 3x3) (interpolation points 0, +-1, +-2, infinity)
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]

import CNNCIR

enum WinogradKernel {
    /// The transform matrices of F(m x m, 3x3): B^T (a x a), G (a x 3), A^T (m x a), a = m + 2.
    struct Matrices {
        var bt: [[Double]]
        var g: [[Double]]
        var at: [[Double]]
    }

    static func matrices(tile: Int) -> Matrices {
        if tile == 2 {
            return Matrices(
                bt: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
                g: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
                at: [[1, 1, 1, 0], [0, 1, -1, -1]])
        }
        return Matrices(
            bt: [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
            g: [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]],
            at: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])
    }

    /// `sum_l row[l] * term(l)` as C, skipping zero coefficients and writing +-1 plainly.
    static func combination(_ row: [Double], _ term: (Int) -> String, float: Bool = true) -> String {
        var out = ""
        for (l, c) in row.enumerated() where c != 0 {
            let sign = c < 0 ? "-" : "+"
            let magnitude = abs(c)
            let literal = float ? cFloat(magnitude) : "\(magnitude)"
            let factor = magnitude == 1 ? term(l) : "\(literal) * \(term(l))"
            out += out.isEmpty ? (c < 0 ? "-\(factor)" : factor) : " \(sign) \(factor)"
        }
        return out.isEmpty ? "0.0f" : out
    }

    /// The stack F(2x2)'s task buffers may use (16 x (C + K) floats per tile: one tile fits for
    /// every layer select-conv-algorithm gives Winograd, at most 512 channels in all).
    static let stackBudget = 256 * 1024

    /// Tiles per task: a multiple of 8 (the micro-kernel's rows) up to 32, as many as keep the
    /// task's transform buffers, (m+2)^2 x (C + K) floats per tile, within the stack budget.
    static func tilesPerTask(tile m: Int, channels: Int, filters: Int) -> Int {
        let perTile = (m + 2) * (m + 2) * (channels + filters) * 4
        let fit = max(1, stackBudget / perTile)
        return fit >= 8 ? min(32, fit / 8 * 8) : fit
    }

    /// Tiles per block of F(4x4): two 16-lane vectors of the transforms, one 32-wide tile of the
    /// implicit GEMM's micro-kernel (AVX-512; two of 16 with AVX2).
    static let tilesPerBlock = 32

    /// The most workspaces a layer has: the most threads that share its blocks.
    static let maxSlices = 16

    /// Blocks of F(4x4) for a batch of `n`: tiles are numbered over the batch and cut into
    /// blocks of `tilesPerBlock` (the last one shorter). The C of `emitLibrary` computes the
    /// same at run time.
    static func blocks(tiles: Int, batch n: Int) -> Int {
        (n * tiles + tilesPerBlock - 1) / tilesPerBlock
    }

    /// The arena floats F(4x4) needs while it runs at batches up to `maxBatch`: one workspace
    /// (V and M of a block, 36 x (C + K) x NT floats) per thread that can work on its own
    /// block, as many as the blocks of the largest batch and at most `maxSlices` (a team
    /// that shares blocks uses the first).
    static func workspaceFloats(channels c: Int, filters k: Int, output y: Shape, maxBatch: Int) -> Int {
        slices(output: y, maxBatch: maxBatch) * 36 * (c + k) * tilesPerBlock
    }

    static func slices(output y: Shape, maxBatch: Int) -> Int {
        min(maxSlices, max(1, blocks(tiles: (y.h + 3) / 4 * ((y.w + 3) / 4), batch: maxBatch)))
    }

    /// The forward kernel. F(4x4): a schedule of the runtime's three steps (winograd.c) over
    /// blocks of NT tiles of the batch. F(2x2): the per-layer C below.
    static func emit(_ k: KernelContext, _ a: ConvAttributes, tile m: Int, _ w: inout CWriter) {
        if m == 4 { return emitLibrary(k, a, &w) }
        emitGenerated(k, a, tile: m, &w)
    }

    /// F(4x4) on the runtime: per block, V = B^T d B of the block's tiles, the 36 products
    /// M_e = U_e V_e on the implicit GEMM, Y = A^T M A with bias, residual and the ReLU
    /// family; activations the library does not apply follow on the block.
    /// Blocks span samples, so a batch of small planes (8x8: 4 tiles a sample) fills them.
    /// With at least as many blocks as threads, each thread takes whole blocks in a workspace
    /// of its own in the arena's scratch (the team has at most as many threads as there are
    /// workspaces); with fewer (a single sample of 14x14: 16 tiles), the team shares each
    /// block: the input transform split over the input channels, the products and output
    /// transform over panels of output channels, a barrier between. Either way each output
    /// is computed by the same operations, so the bits do not depend on the thread count.
    static func emitLibrary(_ k: KernelContext, _ a: ConvAttributes, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let e = a.epilogue
        let lib = ConvKernel.libraryEpilogue(e)
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w) };
        enum { TW = (Q + 3) / 4, TILES = (P + 3) / 4 * TW, NT = \(tilesPerBlock), WS = 36 * (C + K) * NT };
        enum { SLICES = \(slices(output: y, maxBatch: k.maxBatch)), PANELS = (K + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS };
        \(k.strideEnum(residual: e.residual))
        static const cnnc_conv_geometry geometry = \(ConvKernel.geometry(a, input: x, output: y));
        """)
        w.comment("""
            weight is U = G g G^T in 36 sets of packed panels; tiles numbered over the batch, in blocks of NT;
            V and M of a block in a workspace of WS floats in scratch (SLICES of them)
            """)
        w.line("const int total = n * TILES, blocks = (total + NT - 1) / NT, threads = cnnc_team_size(\(maxSlices));")
        let bias = k.hasBias ? "bias" : "NULL", res = e.residual ? "residual" : "NULL"
        w.line("const cnnc_epilogue e = {\(bias), \(res), \(e.residual ? "RS" : "0"), \(lib.activation), \(lib.alpha), \(lib.low), \(lib.high)};")
        func rest(_ w: inout CWriter, k0: String, k1: String) {
            guard lib.rest else { return }
            w.comment("the rest of the epilogue on the block's outputs")
            w.block("for (int u = t0; u < t0 + nt; u++)") { w in
                w.line("const int b = u / TILES, t = u % TILES;")
                w.block("for (int k = \(k0); k < \(k1); k++)") { w in
                    if let p = e.prelu { w.line("const float a = slope[\(p.shared ? "0" : "k")];") }
                    w.block("for (int i = 0; i < 4 && t / TW * 4 + i < P; i++)") { w in
                        w.line("float *restrict row = out + (size_t)b * OS + (size_t)k * (P * Q) + (size_t)(t / TW * 4 + i) * Q + t % TW * 4;")
                        w.line("for (int j = 0; j < 4 && t % TW * 4 + j < Q; j++) { const float v = row[j]; row[j] = \(Epilogues.value(e, "v")); }")
                    }
                }
            }
        }
        schedule(channels: "C", filters: "K", geometry: "geometry", input: "in", inputStride: "IS", weight: "weight",
                 output: "out", outputStride: "OS", epilogue: "&e", rest: lib.rest ? rest : nil, &w)
    }

    /// The blocks of F(4x4) over a batch (`emitLibrary`'s comment): the forward's, and the
    /// input gradient's (`ConvBackward.inputWinograd`: the full convolution of d out, whose
    /// channels are the forward's filters). Needs, in scope, `total` tiles, `blocks` of `NT`,
    /// `threads`, `WS` floats per workspace, `SLICES` workspaces in `scratch`, `PANELS` of
    /// output channels; `channels` and `filters` name the input and output channel counts.
    static func schedule(channels c: String, filters k: String, geometry: String, input: String, inputStride: String,
                         weight: String, output: String, outputStride: String, epilogue: String,
                         rest: ((inout CWriter, String, String) -> Void)?, _ w: inout CWriter) {
        w.block("if (blocks < threads)") { w in
            w.comment("fewer blocks than threads: the team shares each block, in the first workspace")
            w.line("#pragma omp parallel num_threads(threads)")
            w.block("") { w in
                w.line("const int T = cnnc_team_threads(), j = cnnc_thread_index();")
                w.line("const int c0 = \(c) * j / T, c1 = \(c) * (j + 1) / T, k0 = PANELS * j / T * CNNC_PACK_ROWS;")
                w.line("const int k1 = PANELS * (j + 1) / T * CNNC_PACK_ROWS < \(k) ? PANELS * (j + 1) / T * CNNC_PACK_ROWS : \(k);")
                w.line("float *restrict v = scratch, *restrict m = scratch + (size_t)36 * \(c) * NT;")
                w.block("for (int blk = 0; blk < blocks; blk++)") { w in
                    w.line("const int t0 = blk * NT, nt = total - t0 < NT ? total - t0 : NT;")
                    w.line("cnnc_winograd_f4_input(&\(geometry), \(input), \(inputStride), t0, nt, c0, c1, v);")
                    w.line("#pragma omp barrier")
                    w.line("cnnc_winograd_f4_multiply(\(k), \(c), \(weight), v, m, nt, k0, k1);")
                    w.line("cnnc_winograd_f4_output(&\(geometry), \(k), m, t0, nt, \(output), \(outputStride), \(epilogue), k0, k1);")
                    rest?(&w, "k0", "k1")
                    w.line("#pragma omp barrier")
                }
            }
            w.line("return;")
        }
        w.comment("each thread takes whole blocks, in its own workspace")
        w.line("#pragma omp parallel num_threads(cnnc_team_size(SLICES))")
        w.block("") { w in
            w.line("float *restrict v = scratch + (size_t)cnnc_thread_index() * WS, *restrict m = v + (size_t)36 * \(c) * NT;")
            w.line("#pragma omp for schedule(static)")
            w.block("for (int blk = 0; blk < blocks; blk++)") { w in
                w.line("const int t0 = blk * NT, nt = total - t0 < NT ? total - t0 : NT;")
                w.line("cnnc_winograd_f4_input(&\(geometry), \(input), \(inputStride), t0, nt, 0, \(c), v);")
                w.line("cnnc_winograd_f4_multiply(\(k), \(c), \(weight), v, m, nt, 0, \(k));")
                w.line("cnnc_winograd_f4_output(&\(geometry), \(k), m, t0, nt, \(output), \(outputStride), \(epilogue), 0, \(k));")
                rest?(&w, "0", "\(k)")
            }
        }
    }

    /// F(2x2), generated per layer: one task per block of TB tiles over the batch. The products
    /// in the transform domain are, per position e of the (m+2)^2, Mt_e[TB x K] = V_e[TB x C] *
    /// U_e[C x K], one `cnnc_sgemm` each.
    static func emitGenerated(_ k: KernelContext, _ a: ConvAttributes, tile m: Int, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let t = matrices(tile: m)
        let alpha = m + 2
        let tb = tilesPerTask(tile: m, channels: x.c, filters: y.c)
        guard tb >= 8 else { return emitPerTile(k, a, tile: m, &w) }
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), PT = \(a.padding.top), PL = \(a.padding.left) };
        enum { M = \(m), A = \(alpha), TH = (P + M - 1) / M, TW = (Q + M - 1) / M, TILES = TH * TW, TB = \(tb) };
        \(k.strideEnum(residual: a.epilogue.residual))
        """)
        w.comment("weight is U = G g G^T laid out [A*A][C][K]; one task per block of TB tiles of the batch")
        w.line("const int total = n * TILES;")
        w.line("#pragma omp parallel for schedule(static)")
        w.block("for (int t0 = 0; t0 < total; t0 += TB)") { w in
            w.line("const int nt = total - t0 < TB ? total - t0 : TB;")
            w.line("float V[A * A][TB][C], Mt[A * A][TB][K];")
            w.comment("input transform V = B^T d B, per tile and channel")
            w.block("for (int u = 0; u < nt; u++)") { w in
                w.line("const int b = (t0 + u) / TILES, t = (t0 + u) % TILES;")
                w.line("const int h0 = (t / TW) * M - PT, w0 = (t % TW) * M - PL;")
                w.block("for (int c = 0; c < C; c++)") { w in
                    inputTransform(t, alpha: alpha, store: { "V[i * A + \($0)][u][c]" }, &w)
                }
            }
            w.comment("Mt[e] = V[e] * U[e]: per output one FMA chain over the channels in order")
            w.line("for (int e = 0; e < A * A; e++) cnnc_sgemm(nt, K, C, &V[e][0][0], C, 0, weight + (size_t)e * C * K, K, 0, &Mt[e][0][0], K, 0);")
            w.comment("per tile and output channel: Y = A^T M A, plus bias and epilogue")
            w.block("for (int u = 0; u < nt; u++)") { w in
                w.line("const int b = (t0 + u) / TILES, t = (t0 + u) % TILES;")
                w.block("for (int k = 0; k < K; k++)") { w in
                    outputTransform(k, a, t, tile: m, product: { "Mt[\($0) * A + j][u][k]" }, &w)
                }
            }
        }
    }

    /// The per-tile kernel for wide layers, where fewer than 8 tiles fit a task's stack and
    /// a GEMM would repack U for every few tiles: one task per (sample, tile), the products as
    /// axpy loops over the output channels reading U in place.
    static func emitPerTile(_ k: KernelContext, _ a: ConvAttributes, tile m: Int, _ w: inout CWriter) {
        let x = k.x, y = k.y
        let t = matrices(tile: m)
        let alpha = m + 2
        w.lines("""
        enum { C = \(x.c), H = \(x.h), W = \(x.w), K = \(y.c), P = \(y.h), Q = \(y.w), PT = \(a.padding.top), PL = \(a.padding.left) };
        enum { M = \(m), A = \(alpha), TH = (P + M - 1) / M, TW = (Q + M - 1) / M };
        \(k.strideEnum(residual: a.epilogue.residual))
        """)
        w.comment("weight is U = G g G^T laid out [A*A][C][K]; one task per (sample, output tile)")
        w.line("#pragma omp parallel for collapse(2) schedule(static)")
        w.block("for (int b = 0; b < n; b++)") { w in
            w.block("for (int t = 0; t < TH * TW; t++)") { w in
                w.line("const int h0 = (t / TW) * M - PT, w0 = (t % TW) * M - PL;")
                w.line("float V[A * A][C];")
                w.comment("input transform V = B^T d B, per channel")
                w.block("for (int c = 0; c < C; c++)") { w in
                    inputTransform(t, alpha: alpha, store: { "V[i * A + \($0)][c]" }, &w)
                }
                w.comment("M[e][k] = sum_c U[e][c][k] * V[e][c]: axpy over the output channels, c in a fixed order")
                w.line("float mm[A * A][K];")
                w.block("for (int e = 0; e < A * A; e++)") { w in
                    w.line("float *restrict me = mm[e];")
                    w.line("for (int k = 0; k < K; k++) me[k] = 0.0f;")
                    w.block("for (int c = 0; c < C; c++)") { w in
                        w.line("const float v = V[e][c];")
                        w.line("const float *restrict u = weight + ((size_t)e * C + c) * K;")
                        w.line("for (int k = 0; k < K; k++) me[k] += v * u[k];")
                    }
                }
                w.comment("per output channel: Y = A^T M A, plus bias and epilogue")
                w.block("for (int k = 0; k < K; k++)") { w in
                    outputTransform(k, a, t, tile: m, product: { "mm[\($0) * A + j][k]" }, &w)
                }
            }
        }
    }

    /// Inside a loop over the channels `c` of sample `b`, with the tile's top-left input pixel
    /// (`h0`, `w0`): V = B^T d B of channel c, row i stored to `store(j)` (an expression in `i`).
    /// Pixels outside the image read as zeros.
    static func inputTransform(_ t: Matrices, alpha: Int, store: (Int) -> String, _ w: inout CWriter) {
        w.line("const float *restrict xc = in + (size_t)b * IS + (size_t)c * (H * W);")
        w.line("float d[A][A], r[A][A];")
        w.line("for (int i = 0; i < A; i++)")
        w.line("    for (int j = 0; j < A; j++) {")
        w.line("        const int h = h0 + i, v = w0 + j;")
        w.line("        d[i][j] = h >= 0 && h < H && v >= 0 && v < W ? xc[h * W + v] : 0.0f;")
        w.line("    }")
        w.block("for (int j = 0; j < A; j++)") { w in
            for i in 0..<alpha { w.line("r[\(i)][j] = \(combination(t.bt[i]) { "d[\($0)][j]" });") }
        }
        w.block("for (int i = 0; i < A; i++)") { w in
            for j in 0..<alpha { w.line("\(store(j)) = \(combination(t.bt[j]) { "r[i][\($0)]" });") }
        }
    }

    /// Inside a loop over the output channels `k` of tile `t` of sample `b`: Y = A^T M A, with
    /// M's entry at row l of column j read by `product(l)` (an expression in `j`), plus bias,
    /// residual and activation, written to the outputs of the tile that exist.
    static func outputTransform(_ k: KernelContext, _ a: ConvAttributes, _ t: Matrices, tile m: Int,
                                product: (Int) -> String, _ w: inout CWriter) {
        w.line("float r[M][A];")
        w.block("for (int j = 0; j < A; j++)") { w in
            for i in 0..<m { w.line("r[\(i)][j] = \(combination(t.at[i], product));") }
        }
        let e = a.epilogue
        if let p = e.prelu { w.line("const float a = slope[\(p.shared ? "0" : "k")];") }
        w.block("for (int i = 0; i < M; i++)") { w in
            w.line("const int p = (t / TW) * M + i;")
            w.line("if (p >= P) break;")
            for j in 0..<m {
                w.block("if ((t % TW) * M + \(j) < Q)") { w in
                    w.line("const size_t at = (size_t)k * (P * Q) + (size_t)p * Q + (t % TW) * M + \(j);")
                    var value = combination(t.at[j]) { "r[i][\($0)]" }
                    if k.hasBias { value = "\(value) + bias[k]" }
                    w.line(e.residual ? "const float v = \(value) + residual[(size_t)b * RS + at];" : "const float v = \(value);")
                    w.line("out[(size_t)b * OS + at] = \(Epilogues.value(e, "v"));")
                }
            }
        }
    }

    /// The filter transform in `<p>_prepare`: U[e][k][c] = (G g_kc G^T)[e], in double.
    static func emitFilterTransform(label: String, source: String, destination: String, tile m: Int,
                                    filters: Int, channels: Int, _ w: inout CWriter) {
        let t = matrices(tile: m)
        let alpha = m + 2
        w.comment("\(label): U = G g G^T, laid out [\(alpha * alpha)][C][K]")
        w.block("") { w in
            w.line("const float *g = \(source);")
            w.line("float *u = \(destination);")
            w.block("for (int k = 0; k < \(filters); k++)") { w in
                w.block("for (int c = 0; c < \(channels); c++)") { w in
                    w.line("const float *f = g + ((size_t)k * \(channels) + c) * 9;")
                    w.line("double r[\(alpha)][3];")
                    w.block("for (int j = 0; j < 3; j++)") { w in
                        for i in 0..<alpha {
                            w.line("r[\(i)][j] = \(combination(t.g[i], { "(double)f[\($0) * 3 + j]" }, float: false));")
                        }
                    }
                    for i in 0..<alpha {
                        for j in 0..<alpha {
                            let value = combination(t.g[j], { "r[\(i)][\($0)]" }, float: false)
                            w.line("u[((size_t)\(i * alpha + j) * \(channels) + c) * \(filters) + k] = (float)(\(value == "0.0f" ? "0.0" : value));")
                        }
                    }
                }
            }
        }
    }
}
