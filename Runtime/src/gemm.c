/*
 * gemm.c — single-precision matrix multiply for generated convolution and dense layers.
 *
 * C[m x n] (+)= A[m x k] * B[k x n], row-major with leading dimensions, either operand
 * optionally transposed; B may also be the implicit im2col matrix of an image (or its
 * transpose), packed straight from the image with zero padding, so no im2col buffer exists.
 *
 * Structure (Goto/BLIS): for each block of NC columns and KC rows of B, the block is packed
 * into NR-wide panels; for each block of MC rows of A, that block is packed into MR-high
 * panels; an MR x NR register micro-kernel then multiplies one A panel by one B panel.
 * Partial panels are zero-padded and go through the same micro-kernel via a scratch tile,
 * so every output element sees the same instructions wherever it lies.
 *
 * Determinism: each output element is one chain c = fma(a[p], b[p], c) for p = 0, 1, ...,
 * k-1 in order, starting from 0 (overwrite) or from C's value (accumulate); the KC blocks
 * continue the chain through C. The order therefore depends neither on the blocking nor on
 * how a caller splits the rows and columns between threads. Each call is single-threaded and
 * keeps its packing buffers on the stack (CNNC_GEMM_STACK_BYTES at most).
 *
 * Micro-kernels, chosen from the compiler's predefined macros:
 *   __AVX512F__             MR = 8, NR = 32 (16 zmm accumulators)
 *   __AVX2__ and __FMA__    MR = 6, NR = 16 (12 ymm accumulators)
 *   otherwise               MR = 4, NR = 16 in plain C (mul then add)
 */
#include "internal.h"

#include <limits.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define MR CNNC_PACK_ROWS
#if defined(__AVX512F__)
#define NR 32
#else
#define NR 16
#endif

/* Cache blocking: an A panel (MR x KC) and a B panel (KC x NR) fit in L1 beside each
 * other, the packed A block (MC x KC) in L2, the packed B block (KC x NC) in L2. */
#ifndef CNNC_GEMM_KC
#define CNNC_GEMM_KC 256
#endif
#define KC CNNC_GEMM_KC
#define MC (MR * (96 / MR))
#define NC (NR * (128 / NR))

/* Where A lives: element (i, p) at data + i*ld + p, or data + p*ld + i with trans; without
 * trans, columns may come in segments (one per sample): with P = p + off, column p is
 * column P % seg of the block at data + (P / seg) * seg_stride. With flip = R*S > 0, A is a
 * convolution's weights [K][ld / (R*S)][R][S] seen as the filters of the "full" convolution
 * that gives the input gradient: element (i, p) with p = k*R*S + t is
 * data[k*ld + i*R*S + R*S-1 - t] (channel i, tap t of the flipped kernel). */
typedef struct {
    const float *data;
    int ld, trans, seg;
    size_t seg_stride;
    int off;
    int flip;
} a_source;

/* What B is: a stored matrix or images seen through im2col. */
enum b_kind { B_MATRIX, B_MATRIX_T, B_IM2COL, B_IM2COL_T };

typedef struct {
    enum b_kind kind;
    const float *data;
    int ld;                        /* B_MATRIX, B_MATRIX_T */
    const cnnc_conv_geometry *g;   /* B_IM2COL, B_IM2COL_T */
    size_t image_stride;           /* floats between the images of consecutive samples */
    int row0, col0;                /* offsets into the implicit matrix (im2col kinds) */
} b_source;

/* Where C lives: with J = j + off, element (i, j) at data + (J / seg) * seg_stride + i*ld +
 * J % seg. */
typedef struct {
    float *data;
    int ld, seg;
    size_t seg_stride;
    int off;
} c_dest;

/* ---------------------------------------------------------------------------------------
 * Packing
 * ------------------------------------------------------------------------------------- */

/* Packs rows [i0, i0+mc) and columns [p0, p0+kc) of A into MR-high panels: panel t holds,
 * for each p, the MR values A[i0 + t*MR + 0..MR-1][p0 + p], zeros past row m. */
static void pack_a(float *restrict ap, const a_source *a, int m, int i0, int mc, int p0, int kc) {
    for (int t = 0; t < mc; t += MR) {
        float *restrict panel = ap + (size_t)t * kc;
        for (int ii = 0; ii < MR; ii++) {
            const int i = i0 + t + ii;
            if (i >= m || t + ii >= mc) {
                for (int p = 0; p < kc; p++) panel[p * MR + ii] = 0.0f;
            } else if (a->trans) {
                const float *restrict col = a->data + (size_t)p0 * a->ld + i;
                for (int p = 0; p < kc; p++) panel[p * MR + ii] = col[(size_t)p * a->ld];
            } else if (a->flip) {
                /* runs of one filter's taps at a time, read backwards */
                const int rs = a->flip;
                for (int p = 0; p < kc;) {
                    const int q = p0 + p, tap = q % rs;
                    int run = rs - tap;
                    if (run > kc - p) run = kc - p;
                    const float *restrict taps = a->data + (size_t)(q / rs) * a->ld + (size_t)i * rs + (rs - 1 - tap);
                    for (int u = 0; u < run; u++) panel[(p + u) * MR + ii] = taps[-u];
                    p += run;
                }
            } else {
                /* runs of one segment at a time */
                for (int p = 0; p < kc;) {
                    const int q = a->off + p0 + p, in_seg = q % a->seg;
                    int run = a->seg - in_seg;
                    if (run > kc - p) run = kc - p;
                    const float *restrict row = a->data + (size_t)(q / a->seg) * a->seg_stride + (size_t)i * a->ld + in_seg;
                    for (int u = 0; u < run; u++) panel[(p + u) * MR + ii] = row[u];
                    p += run;
                }
            }
        }
    }
}

/* Writes im2col row `row` (one (c, r, s) of C*R*S), columns [col, col + count) (output
 * positions p*Q + q), to dst[0], dst[step], dst[2*step], ...; one run of one output row p at a
 * time, with zeros where the window hangs over the padding. */
static void im2col_row(float *restrict dst, int step, const cnnc_conv_geometry *g, const float *image,
                       size_t image_stride, int row, int col, int count) {
    const int rs = g->kernel_h * g->kernel_w, pq = g->out_h * g->out_w;
    const int c = row / rs, r = (row % rs) / g->kernel_w, s = row % g->kernel_w;
    const float *restrict plane = image + (size_t)(col / pq) * image_stride + (size_t)c * g->height * g->width;
    int p = (col % pq) / g->out_w, q = col % g->out_w;
    for (int j = 0; j < count;) {
        if (p == g->out_h) {
            /* the next sample's image */
            plane += image_stride;
            p = 0;
        }
        int run = g->out_w - q;
        if (run > count - j) run = count - j;
        float *restrict d = dst + (size_t)j * step;
        const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
        const int w0 = q * g->stride_w - g->pad_left + s * g->dilation_w;
        if (h < 0 || h >= g->height) {
            for (int u = 0; u < run; u++) d[(size_t)u * step] = 0.0f;
        } else if (step == 1 && g->stride_w == 1) {
            /* contiguous: zeros left of the image, a copy, zeros right of it */
            const float *restrict line = plane + (size_t)h * g->width;
            int lo = -w0, hi = g->width - w0;
            if (lo < 0) lo = 0;
            if (lo > run) lo = run;
            if (hi > run) hi = run;
            if (hi < lo) hi = lo;
            for (int u = 0; u < lo; u++) d[u] = 0.0f;
            if (hi > lo) memcpy(d + lo, line + w0 + lo, sizeof(float) * (size_t)(hi - lo));
            for (int u = hi; u < run; u++) d[u] = 0.0f;
        } else {
            /* strided or scattered: zeros, then the columns inside the image, then zeros */
            const float *restrict line = plane + (size_t)h * g->width;
            const int sw = g->stride_w;
            int lo = 0, hi = run;
            if (w0 < 0) lo = (-w0 + sw - 1) / sw;
            if (lo > run) lo = run;
            if (w0 + (hi - 1) * sw >= g->width) hi = (g->width - w0 + sw - 1) / sw;
            if (hi < lo) hi = lo;
            for (int u = 0; u < lo; u++) d[(size_t)u * step] = 0.0f;
            if (step == 1)
                for (int u = lo; u < hi; u++) d[u] = line[w0 + u * sw];
            else
                for (int u = lo; u < hi; u++) d[(size_t)u * step] = line[w0 + u * sw];
            for (int u = hi; u < run; u++) d[(size_t)u * step] = 0.0f;
        }
        j += run;
        q = 0;
        p++;
    }
}

/* Packs rows [p0, p0+kc) and columns [j0, j0+nc) of B into NR-wide panels: panel t holds,
 * for each p, the NR values B[p0 + p][j0 + t*NR + 0..NR-1], zeros past column n. */
static void pack_b(float *restrict bp, const b_source *b, int n, int j0, int nc, int p0, int kc) {
    for (int t = 0; t < nc; t += NR) {
        float *restrict panel = bp + (size_t)t * kc;
        const int j = j0 + t;
        int width = n - j;
        if (width > NR) width = NR;
        if (width < NR) {
            for (int p = 0; p < kc; p++)
                for (int jj = width; jj < NR; jj++) panel[p * NR + jj] = 0.0f;
        }
        switch (b->kind) {
        case B_MATRIX:
            for (int p = 0; p < kc; p++) {
                const float *restrict row = b->data + (size_t)(p0 + p) * b->ld + j;
                for (int jj = 0; jj < width; jj++) panel[p * NR + jj] = row[jj];
            }
            break;
        case B_MATRIX_T:
            for (int jj = 0; jj < width; jj++) {
                const float *restrict col = b->data + (size_t)(j + jj) * b->ld + p0;
                for (int p = 0; p < kc; p++) panel[p * NR + jj] = col[p];
            }
            break;
        case B_IM2COL:
            for (int p = 0; p < kc; p++)
                im2col_row(panel + (size_t)p * NR, 1, b->g, b->data, b->image_stride, b->row0 + p0 + p, b->col0 + j,
                           width);
            break;
        case B_IM2COL_T:
            /* B[p][j] = im2col[j][p]: one im2col row fills one panel column */
            for (int jj = 0; jj < width; jj++)
                im2col_row(panel + jj, NR, b->g, b->data, b->image_stride, b->col0 + j + jj, b->row0 + p0, kc);
            break;
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Micro-kernels: c[MR x NR] (ldc) = (accumulate ? c : 0) + ap-panel * bp-panel over kc
 * ------------------------------------------------------------------------------------- */

#if defined(__AVX512F__)

#define CNNC_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

static void micro_kernel(int kc, const float *restrict ap, const float *restrict bp, float *restrict c,
                         int ldc, int accumulate) {
#define DECLARE(i) __m512 c##i##0, c##i##1;
    CNNC_ROWS(DECLARE)
#undef DECLARE
    if (accumulate) {
#define LOAD(i) c##i##0 = _mm512_loadu_ps(c + (size_t)(i) * ldc); c##i##1 = _mm512_loadu_ps(c + (size_t)(i) * ldc + 16);
        CNNC_ROWS(LOAD)
#undef LOAD
    } else {
#define ZERO(i) c##i##0 = _mm512_setzero_ps(); c##i##1 = _mm512_setzero_ps();
        CNNC_ROWS(ZERO)
#undef ZERO
    }
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#define STEP(i) { const __m512 a = _mm512_set1_ps(ap[i]); c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1); }
        CNNC_ROWS(STEP)
#undef STEP
        ap += MR;
        bp += NR;
    }
#define STORE(i) _mm512_storeu_ps(c + (size_t)(i) * ldc, c##i##0); _mm512_storeu_ps(c + (size_t)(i) * ldc + 16, c##i##1);
    CNNC_ROWS(STORE)
#undef STORE
}

#elif defined(__AVX2__) && defined(__FMA__)

#define CNNC_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

static void micro_kernel(int kc, const float *restrict ap, const float *restrict bp, float *restrict c,
                         int ldc, int accumulate) {
#define DECLARE(i) __m256 c##i##0, c##i##1;
    CNNC_ROWS(DECLARE)
#undef DECLARE
    if (accumulate) {
#define LOAD(i) c##i##0 = _mm256_loadu_ps(c + (size_t)(i) * ldc); c##i##1 = _mm256_loadu_ps(c + (size_t)(i) * ldc + 8);
        CNNC_ROWS(LOAD)
#undef LOAD
    } else {
#define ZERO(i) c##i##0 = _mm256_setzero_ps(); c##i##1 = _mm256_setzero_ps();
        CNNC_ROWS(ZERO)
#undef ZERO
    }
    for (int p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#define STEP(i) { const __m256 a = _mm256_broadcast_ss(ap + (i)); c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0); c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1); }
        CNNC_ROWS(STEP)
#undef STEP
        ap += MR;
        bp += NR;
    }
#define STORE(i) _mm256_storeu_ps(c + (size_t)(i) * ldc, c##i##0); _mm256_storeu_ps(c + (size_t)(i) * ldc + 8, c##i##1);
    CNNC_ROWS(STORE)
#undef STORE
}

#else

static void micro_kernel(int kc, const float *restrict ap, const float *restrict bp, float *restrict c,
                         int ldc, int accumulate) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = accumulate ? c[(size_t)i * ldc + j] : 0.0f;
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            const float a = ap[p * MR + i];
            for (int j = 0; j < NR; j++) acc[i][j] += a * bp[p * NR + j];
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[(size_t)i * ldc + j] = acc[i][j];
}

#endif

/* ---------------------------------------------------------------------------------------
 * The blocked driver
 * ------------------------------------------------------------------------------------- */

/* Applies the epilogue to the finished rows [i, i + mr) (the call's numbering, for the bias)
 * and columns [j, j + nr) of C, one run of one segment at a time; the residual is addressed
 * like C with its own segment stride. */
static void epilogue_tile(const c_dest *c, const cnnc_epilogue *e, int i, int mr, int j, int nr) {
    for (int jj = 0; jj < nr;) {
        const int J = c->off + j + jj, seg = J / c->seg, at = J % c->seg;
        const int run = c->seg - at < nr - jj ? c->seg - at : nr - jj;
        for (int ii = 0; ii < mr; ii++) {
            float *o = c->data + (size_t)seg * c->seg_stride + (size_t)(i + ii) * c->ld + at;
            const float *res = e->residual
                ? e->residual + (size_t)seg * e->residual_stride + (size_t)(i + ii) * c->ld + at : NULL;
            cnnc_internal_epilogue_row(o, o, res, run, e->bias != NULL, e->bias ? e->bias[i + ii] : 0.0f, e);
        }
        jj += run;
    }
}

/* With `packed` (weights from cnnc_conv_pack_weights, full k per panel, at the panel of row 0)
 * A is read from there instead of packed per call; with `e` each tile gets the epilogue once
 * its last block of k is in. */
static void gemm_driver(int m, int n, int k, const a_source *a, const b_source *b, const c_dest *c,
                        int accumulate, const float *packed, const cnnc_epilogue *e) {
    _Alignas(64) float ap[MC * KC];
    _Alignas(64) float bp[KC * NC];
    _Alignas(64) float tile[MR * NR];
    size_t offset[NR];
    if (m <= 0 || n <= 0) return;
    for (int jc = 0; jc < n; jc += NC) {
        const int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc == 0 || pc < k; pc += KC) {
            const int kc = k - pc < KC ? k - pc : KC;
            const int acc = accumulate || pc > 0, last = pc + KC >= k;
            if (kc > 0) pack_b(bp, b, n, jc, nc, pc, kc);
            for (int ic = 0; ic < m; ic += MC) {
                const int mc = m - ic < MC ? m - ic : MC;
                if (kc > 0 && !packed) pack_a(ap, a, m, ic, mc, pc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    const int nr = nc - jr < NR ? nc - jr : NR;
                    /* where this panel's columns live; contiguous unless a segment ends inside */
                    const int j = c->off + jc + jr, seg_start = j / c->seg;
                    const int contiguous = (j + nr - 1) / c->seg == seg_start;
                    float *const cpanel = c->data + (size_t)seg_start * c->seg_stride + j % c->seg;
                    if (!contiguous)
                        for (int jj = 0; jj < nr; jj++)
                            offset[jj] = (size_t)((j + jj) / c->seg) * c->seg_stride + (size_t)((j + jj) % c->seg);
                    for (int ir = 0; ir < mc; ir += MR) {
                        const int mr = mc - ir < MR ? mc - ir : MR;
                        const size_t row = (size_t)(ic + ir) * c->ld;
                        const float *apanel = packed ? packed + (size_t)((ic + ir) / MR) * k * MR + (size_t)pc * MR
                                                     : ap + (size_t)ir * kc;
                        const float *bpanel = bp + (size_t)jr * kc;
                        if (mr == MR && nr == NR && contiguous) {
                            micro_kernel(kc, apanel, bpanel, cpanel + row, c->ld, acc);
                        } else {
                            /* a partial or split tile: through the scratch tile, same instructions */
                            if (acc)
                                for (int i = 0; i < mr; i++)
                                    for (int jj = 0; jj < nr; jj++)
                                        tile[i * NR + jj] = contiguous ? cpanel[row + (size_t)i * c->ld + jj]
                                                                       : c->data[offset[jj] + row + (size_t)i * c->ld];
                            micro_kernel(kc, apanel, bpanel, tile, NR, acc);
                            for (int i = 0; i < mr; i++)
                                for (int jj = 0; jj < nr; jj++) {
                                    float *dst = contiguous ? cpanel + row + (size_t)i * c->ld + jj
                                                            : c->data + offset[jj] + row + (size_t)i * c->ld;
                                    *dst = tile[i * NR + jj];
                                }
                        }
                        if (e && last) epilogue_tile(c, e, ic + ir, mr, jc + jr, nr);
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Public entry points
 * ------------------------------------------------------------------------------------- */

void cnnc_sgemm(int m, int n, int k, const float *a, int lda, int trans_a, const float *b, int ldb,
                int trans_b, float *c, int ldc, int accumulate) {
    const a_source as = {a, lda, trans_a, INT_MAX, 0, 0, 0};
    const b_source bs = {trans_b ? B_MATRIX_T : B_MATRIX, b, ldb, NULL, 0, 0, 0};
    const c_dest cd = {c, ldc, INT_MAX, 0, 0};
    gemm_driver(m, n, k, &as, &bs, &cd, accumulate, NULL, NULL);
}

void cnnc_sgemm_conv(int m, int n, const float *a, int lda, int trans_a, const cnnc_conv_geometry *g,
                     const float *image, size_t image_stride, int col0, float *c, size_t c_stride,
                     int accumulate) {
    const int pq = g->out_h * g->out_w;
    const a_source as = {a, lda, trans_a, INT_MAX, 0, 0, 0};
    const b_source bs = {B_IM2COL, image, 0, g, image_stride, 0, col0};
    /* C's columns are the output positions col0.. of all samples: segments of P*Q */
    const c_dest cd = {c, pq, pq, c_stride, col0};
    gemm_driver(m, n, g->channels * g->kernel_h * g->kernel_w, &as, &bs, &cd, accumulate, NULL, NULL);
}

void cnnc_sgemm_conv_packed(int m, int n, const float *packed, const cnnc_conv_geometry *g,
                            const float *image, size_t image_stride, int col0, float *c, size_t c_stride,
                            const cnnc_epilogue *e) {
    const int pq = g->out_h * g->out_w;
    const a_source as = {NULL, 0, 0, INT_MAX, 0, 0, 0};
    const b_source bs = {B_IM2COL, image, 0, g, image_stride, 0, col0};
    const c_dest cd = {c, pq, pq, c_stride, col0};
    gemm_driver(m, n, g->channels * g->kernel_h * g->kernel_w, &as, &bs, &cd, 0, packed, e);
}

void cnnc_sgemm_conv_weight_grad(int m, int n, int k, const float *a, size_t a_stride,
                                 const cnnc_conv_geometry *g, const float *image, size_t image_stride,
                                 int row0, int col0, float *c, int ldc, int accumulate) {
    const int pq = g->out_h * g->out_w;
    /* A's columns are the output positions row0.. of all samples: segments of P*Q */
    const a_source as = {a, pq, 0, pq, a_stride, row0, 0};
    const b_source bs = {B_IM2COL_T, image, 0, g, image_stride, row0, col0};
    const c_dest cd = {c, ldc, INT_MAX, 0, 0};
    gemm_driver(m, n, k, &as, &bs, &cd, accumulate, NULL, NULL);
}

void cnnc_sgemm_conv_input_grad(int m, int n, const float *weight, int ldw, const cnnc_conv_geometry *g,
                                const float *d_out, size_t d_out_stride, int col0, float *d_in, size_t d_in_stride,
                                int accumulate) {
    const int rs = g->kernel_h * g->kernel_w, hw = g->out_h * g->out_w;
    const a_source as = {weight, ldw, 0, INT_MAX, 0, 0, rs};
    const b_source bs = {B_IM2COL, d_out, 0, g, d_out_stride, 0, col0};
    /* C's columns are the input positions col0.. of all samples: segments of H*W */
    const c_dest cd = {d_in, hw, hw, d_in_stride, col0};
    gemm_driver(m, n, g->channels * rs, &as, &bs, &cd, accumulate, NULL, NULL);
}

/* Adds columns [j0, j0 + count) (output positions of one sample) of the block's rows (c, r, s)
 * of cols (row stride ld) into the input planes they came from, skipping the padding: for each
 * row, one run of one output row p at a time. */
static void col2im_add(float *restrict d_in, const float *restrict cols, int ld, int channels,
                       const cnnc_conv_geometry *g, int j0, int count) {
    const int rs = g->kernel_h * g->kernel_w;
    for (int row = 0; row < channels * rs; row++) {
        const int c = row / rs, r = (row % rs) / g->kernel_w, s = row % g->kernel_w;
        float *restrict plane = d_in + (size_t)c * g->height * g->width;
        const float *restrict src = cols + (size_t)row * ld;
        int p = j0 / g->out_w, q = j0 % g->out_w;
        for (int j = 0; j < count;) {
            int run = g->out_w - q;
            if (run > count - j) run = count - j;
            const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
            if (h >= 0 && h < g->height) {
                /* the columns whose tap lies inside the row: u in [lo, hi) */
                const int w0 = q * g->stride_w - g->pad_left + s * g->dilation_w;
                int lo = 0, hi = run;
                while (lo < hi && w0 + lo * g->stride_w < 0) lo++;
                while (hi > lo && w0 + (hi - 1) * g->stride_w >= g->width) hi--;
                float *restrict line = plane + (size_t)h * g->width;
                const float *restrict v = src + j;
                if (g->stride_w == 1)
                    for (int u = lo; u < hi; u++) line[w0 + u] += v[u];
                else
                    for (int u = lo; u < hi; u++) line[w0 + u * g->stride_w] += v[u];
            }
            j += run;
            q = 0;
            p++;
        }
    }
}

void cnnc_conv_input_grad_col2im(int m, const float *weight, int ldw, int kg, const cnnc_conv_geometry *g,
                                 const float *d_out, float *d_in) {
    _Alignas(64) float cols[CNNC_COL2IM_FLOATS];
    const int rs = g->kernel_h * g->kernel_w, pq = g->out_h * g->out_w;
    if (m <= 0 || pq <= 0) return;
    /* channels per block: enough for chunks of at least 256 columns where possible */
    int cb = CNNC_COL2IM_FLOATS / (rs * 256);
    if (cb < 1) cb = 1;
    if (cb > m) cb = m;
    int chunk = CNNC_COL2IM_FLOATS / (cb * rs);
    if (chunk > pq) chunk = pq;
    for (int c0 = 0; c0 < m; c0 += cb) {
        const int mc = m - c0 < cb ? m - c0 : cb;
        const a_source ablock = {weight + (size_t)c0 * rs, ldw, 1, INT_MAX, 0, 0, 0};
        for (int j0 = 0; j0 < pq; j0 += chunk) {
            const int nc = pq - j0 < chunk ? pq - j0 : chunk;
            /* cols[mc*R*S x nc] = W^T * d_out[:, j0 .. j0+nc), then scattered */
            const b_source bs = {B_MATRIX, d_out + j0, pq, NULL, 0, 0, 0};
            const c_dest cd = {cols, nc, INT_MAX, 0, 0};
            gemm_driver(mc * rs, nc, kg, &ablock, &bs, &cd, 0, NULL, NULL);
            col2im_add(d_in + (size_t)c0 * g->height * g->width, cols, nc, mc, g, j0, nc);
        }
    }
}

void cnnc_sgemv(int m, int k, const float *a, int lda, const float *x, float *y) {
    /* 16 partial sums per row, lane l taking p = l, l + 16, ... in order, then the tail,
     * then the lanes combined pairwise in a fixed tree: a fixed order per element that
     * compilers vectorize without reassociating anything. */
    enum { L = 16 };
    const int body = k / L * L;
    for (int i = 0; i < m; i++) {
        const float *restrict row = a + (size_t)i * lda;
        float acc[L];
        for (int l = 0; l < L; l++) acc[l] = 0.0f;
        for (int p = 0; p < body; p += L)
            for (int l = 0; l < L; l++) acc[l] += row[p + l] * x[p + l];
        for (int p = body; p < k; p++) acc[p - body] += row[p] * x[p];
        for (int width = L / 2; width > 0; width /= 2)
            for (int l = 0; l < width; l++) acc[l] += acc[l + width];
        y[i] = acc[0];
    }
}

int cnnc_sgemm_block_columns(void) { return NR; }

void cnnc_sgemm_reference(int m, int n, int k, const float *a, int lda, int trans_a, const float *b,
                          int ldb, int trans_b, float *c, int ldc, int accumulate) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = accumulate ? c[(size_t)i * ldc + j] : 0.0;
            for (int p = 0; p < k; p++) {
                const float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                const float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += (double)av * bv;
            }
            c[(size_t)i * ldc + j] = (float)sum;
        }
    }
}

float cnnc_im2col_at(const cnnc_conv_geometry *g, const float *image, int row, int col) {
    const int rs = g->kernel_h * g->kernel_w;
    const int c = row / rs, r = (row % rs) / g->kernel_w, s = row % g->kernel_w;
    const int p = col / g->out_w, q = col % g->out_w;
    const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
    const int w = q * g->stride_w - g->pad_left + s * g->dilation_w;
    if (h < 0 || h >= g->height || w < 0 || w >= g->width) return 0.0f;
    return image[((size_t)c * g->height + h) * g->width + w];
}

/* The runtime is also compiled as one file (tools/embed_runtime.py): keep these names local. */
#undef MR
#undef NR
#undef KC
#undef MC
#undef NC
#undef CNNC_ROWS
