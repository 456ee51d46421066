/*
 * depthwise.c — depthwise convolution (groups == input channels) on NCHW, one plane at a time.
 *
 * A depthwise layer has nothing for a matrix product to reuse: each output plane is one input
 * plane convolved with its own R x S filter. The old loop nest read and wrote every output
 * row once per tap; here each vector of L outputs keeps its sum in one register while all its
 * taps are added, gets the epilogue (bias, residual, ReLU / leaky / clip) in registers and is
 * stored once.
 *
 * To make every tap one plain load, a band of output rows first copies the input rows it needs
 * into zero-padded phase planes: for strides SH x SW, phase plane (a, b) holds padded rows
 * p*SH + a and columns q*SW + b (stride 1: one padded copy, whole vectors of masked loads;
 * stride 2: four planes, the columns deinterleaved with two permutes per 32 floats). With
 * output positions numbered j = p*ws + q (ws = Q + (S-1)*DW/SW, the columns q >= Q computed and
 * dropped), tap (r, s) of every output is then at one constant offset from j: the inner loop
 * is R*S FMAs on unmasked loads with the weights in registers, four vectors at a time (four
 * independent chains hide the FMA latency), stored whole into a buffer; each output row is
 * then copied out of it with the epilogue. (Measured on MobileNetV2's shapes, 1 thread, Zen 4:
 * 960 channels of 7x7 0.126 -> 0.075 ms, 384 of 14x14 0.103 -> 0.060, 144 of 56x56 stride 2
 * 0.17 -> 0.12, against the previous single chain per vector with per-row masked stores.)
 *
 * Every output is one fused multiply-add chain over all R*S taps, (r, s) in order from 0, the
 * taps in the padding multiplied as zeros (as cnnc_conv_direct does; with finite weights that
 * adds exactly nothing), then (+ bias) (+ residual) and the activation: the split of planes
 * between calls or threads never changes a bit.
 *
 * Paths, from the compiler's predefined macros:
 *   __AVX512F__             16 lanes, k-register masks, vpermt2ps to deinterleave stride 2
 *   __AVX2__ and __FMA__    8 lanes, vector masks (vmaskmovps), shuffles for stride 2
 *   otherwise, or over DW_MAX_TAPS taps, or rows too wide for DW_SCRATCH_FLOATS of phase
 *   planes: plain C, each output's taps inside the image in (r, s) order (padding skipped)
 */
#include "internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define DW_MAX_TAPS 64          /* the vector path's most taps R*S */
#define DW_SCRATCH_FLOATS 16384 /* its phase planes, and its sums before the epilogue (64 KiB of stack each) */
#define DW_ROW_CHUNK 64         /* the plain path's outputs per pass over the taps */

/* ---------------------------------------------------------------------------------------
 * The reference: double sums over the taps inside the image, then the epilogue
 * ------------------------------------------------------------------------------------- */

void cnnc_conv_depthwise_reference(const cnnc_conv_geometry *g, int m, int multiplier, const float *weights,
                                   const float *image, float *out, const cnnc_epilogue *e) {
    const int H = g->height, W = g->width, P = g->out_h, Q = g->out_w, R = g->kernel_h, S = g->kernel_w;
    for (int k = 0; k < m; k++) {
        const float *x = image + (size_t)(k / multiplier) * H * W;
        const float *w = weights + (size_t)k * R * S;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                double sum = 0.0;
                for (int r = 0; r < R; r++)
                    for (int s = 0; s < S; s++) {
                        const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
                        const int c = q * g->stride_w - g->pad_left + s * g->dilation_w;
                        if (h < 0 || h >= H || c < 0 || c >= W) continue;
                        sum += (double)w[r * S + s] * x[(size_t)h * W + c];
                    }
                const size_t at = ((size_t)k * P + p) * Q + q;
                float one[1] = {(float)sum};
                cnnc_internal_epilogue_row(one, one, e && e->residual ? e->residual + at : NULL, 1,
                                           e && e->bias != NULL, e && e->bias ? e->bias[k] : 0.0f, e);
                out[at] = one[0];
            }
    }
}

/* ---------------------------------------------------------------------------------------
 * The plain path: rows in chunks, taps outer, each output's chain in (r, s) order
 * ------------------------------------------------------------------------------------- */

/* The output columns [*lo, *hi) whose tap s (column q*SW - PL + s*DW) lies inside [0, W). */
static void dw_tap_columns(const cnnc_conv_geometry *g, int s, int *lo, int *hi) {
    const int d = s * g->dilation_w - g->pad_left, SW = g->stride_w;
    /* q*SW + d >= 0  <=>  q >= ceil(-d / SW);  q*SW + d < W  <=>  q < ceil((W - d) / SW) */
    int a = -d <= 0 ? 0 : (-d + SW - 1) / SW;
    int b = g->width - d <= 0 ? 0 : (g->width - d + SW - 1) / SW;
    if (b > g->out_w) b = g->out_w;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

static void dw_plane_plain(const cnnc_conv_geometry *g, const float *w, const float *x, float *o,
                           const float *res, int has_bias, float bias, const cnnc_epilogue *e) {
    const int H = g->height, W = g->width, P = g->out_h, Q = g->out_w, R = g->kernel_h, S = g->kernel_w;
    const int SW = g->stride_w;
    float acc[DW_ROW_CHUNK];
    for (int p = 0; p < P; p++) {
        for (int q0 = 0; q0 < Q; q0 += DW_ROW_CHUNK) {
            const int n = Q - q0 < DW_ROW_CHUNK ? Q - q0 : DW_ROW_CHUNK;
            for (int i = 0; i < n; i++) acc[i] = 0.0f;
            /* taps outer, columns inner: each output still sums its taps in (r, s) order */
            for (int r = 0; r < R; r++) {
                const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
                if (h < 0 || h >= H) continue;
                const float *row = x + (size_t)h * W;
                for (int s = 0; s < S; s++) {
                    int lo, hi;
                    dw_tap_columns(g, s, &lo, &hi);
                    if (lo < q0) lo = q0;
                    if (hi > q0 + n) hi = q0 + n;
                    const float wv = w[r * S + s];
                    const float *src = row + s * g->dilation_w - g->pad_left;
                    for (int q = lo; q < hi; q++) acc[q - q0] += wv * src[(size_t)q * SW];
                }
            }
            const size_t at = (size_t)p * Q + q0;
            cnnc_internal_epilogue_row(o + at, acc, res ? res + at : NULL, n, has_bias, bias, e);
        }
    }
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

/* ---------------------------------------------------------------------------------------
 * Vectors: L lanes, masks, masked FMA, the epilogue in registers
 * ------------------------------------------------------------------------------------- */

#if defined(__AVX512F__)

#define DW_L 16
typedef __m512 dw_vec;
typedef __mmask16 dw_mask;

/* Lanes [lo, hi) of a vector, clamped to [0, L). */
static inline dw_mask dw_lanes(int lo, int hi) {
    if (lo < 0) lo = 0;
    if (hi > DW_L) hi = DW_L;
    if (hi <= lo) return 0;
    return (dw_mask)(((1u << (hi - lo)) - 1u) << lo);
}
static inline dw_vec dw_zero(void) { return _mm512_setzero_ps(); }
static inline dw_vec dw_fma(float w, const float *p, dw_vec acc) {
    return _mm512_fmadd_ps(_mm512_set1_ps(w), _mm512_loadu_ps(p), acc);
}
static inline dw_vec dw_fma_vec(dw_vec w, dw_vec x, dw_vec acc) { return _mm512_fmadd_ps(w, x, acc); }
/* v with the lanes of m loaded from p. */
static inline dw_vec dw_load_merge(dw_vec v, const float *p, dw_mask m) { return _mm512_mask_loadu_ps(v, m, p); }
static inline void dw_store_part(float *p, dw_vec v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v); }
static inline void dw_store(float *p, dw_vec v) { _mm512_storeu_ps(p, v); }
static inline dw_vec dw_load(const float *p) { return _mm512_loadu_ps(p); }
/* The lanes of bits (bit i: lane i) loaded from p, 0 in the others (which read nothing). */
static inline dw_vec dw_load_bits(const float *p, unsigned bits) { return _mm512_maskz_loadu_ps((__mmask16)bits, p); }
static inline void dw_store_bits(float *p, dw_vec v, unsigned bits) { _mm512_mask_storeu_ps(p, (__mmask16)bits, v); }

/* act(v): the runtime's one vector activation (internal.h). */
static inline dw_vec dw_activation(dw_vec v, const cnnc_epilogue *e) { return cnnc_internal_activate16(v, e); }
static inline dw_vec dw_add(dw_vec a, dw_vec b) { return _mm512_add_ps(a, b); }
static inline dw_vec dw_broadcast(float v) { return _mm512_set1_ps(v); }

/* Both phases of 2L padded columns: lanes [lo, hi) of the 2L floats from src (the columns
 * inside the row; the others read nothing and give 0), the even ones to d0 and the odd ones
 * to d1, L each, stored whole. */
static inline void dw_phases2(const float *src, int lo, int hi, float *d0, float *d1) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 a = _mm512_maskz_loadu_ps(dw_lanes(lo, hi), src);
    const __m512 b = _mm512_maskz_loadu_ps(dw_lanes(lo - 16, hi - 16), src + 16);
    _mm512_storeu_ps(d0, _mm512_permutex2var_ps(a, even, b));
    _mm512_storeu_ps(d1, _mm512_permutex2var_ps(a, odd, b));
}

#else /* AVX2 and FMA */

#define DW_L 8
typedef __m256 dw_vec;
typedef __m256i dw_mask;

static inline dw_mask dw_lanes(int lo, int hi) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i a = _mm256_cmpgt_epi32(index, _mm256_set1_epi32(lo - 1)); /* index >= lo */
    const __m256i b = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), index);     /* index < hi */
    return _mm256_and_si256(a, b);
}
static inline dw_vec dw_zero(void) { return _mm256_setzero_ps(); }
static inline dw_vec dw_fma(float w, const float *p, dw_vec acc) {
    return _mm256_fmadd_ps(_mm256_set1_ps(w), _mm256_loadu_ps(p), acc);
}

static inline dw_vec dw_load_merge(dw_vec v, const float *p, dw_mask m) {
    return _mm256_blendv_ps(v, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void dw_store_part(float *p, dw_vec v, int n) { cnnc_internal_store_part8(p, v, n); }
static inline void dw_store(float *p, dw_vec v) { _mm256_storeu_ps(p, v); }
static inline dw_vec dw_load(const float *p) { return _mm256_loadu_ps(p); }

static inline dw_vec dw_activation(dw_vec v, const cnnc_epilogue *e) { return cnnc_internal_activate8(v, e); }
static inline dw_vec dw_add(dw_vec a, dw_vec b) { return _mm256_add_ps(a, b); }
static inline dw_vec dw_broadcast(float v) { return _mm256_set1_ps(v); }

static inline void dw_phases2(const float *src, int lo, int hi, float *d0, float *d1) {
    const __m256 a = _mm256_maskload_ps(src, dw_lanes(lo, hi));
    const __m256 b = _mm256_maskload_ps(src + 8, dw_lanes(lo - 8, hi - 8));
    /* a0 a2 b0 b2 | a4 a6 b4 b6 -> a0 a2 a4 a6 b0 b2 b4 b6 (and the odd lanes alike) */
    const __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);
    _mm256_storeu_ps(d0, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
    _mm256_storeu_ps(d1, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
}

#endif

/* ---------------------------------------------------------------------------------------
 * The vector path: bands of output rows over zero-padded phase planes
 * ------------------------------------------------------------------------------------- */

/* How a plane is computed: in bands of `band` output rows. For each band the padded input
 * rows it needs are copied into SH*SW phase planes (phase (a, b) holds padded rows
 * p*SH + a, columns q*SW + b; zeros in the padding), each `stride` floats with rows `ws`
 * wide, so that tap (r, s) of output (p, q) is element (p + r*DH/SH) * ws + q + s*DW/SW of
 * phase plane (r*DH % SH, s*DW % SW): output positions numbered j = p*ws + q read every tap
 * at a constant offset off[t] from j. */
typedef struct {
    int ws, rows_extra, cols_extra, band;
    size_t stride;
    int ntaps;
    int off[DW_MAX_TAPS];
} dw_plan;

/* Plans g; returns 0 when the vector path cannot run it (then the plain one does). */
static int dw_make_plan(const cnnc_conv_geometry *g, dw_plan *pl) {
    const int SH = g->stride_h, SW = g->stride_w, R = g->kernel_h, S = g->kernel_w;
    if (R * S > DW_MAX_TAPS) return 0;
    pl->rows_extra = (R - 1) * g->dilation_h / SH;
    pl->cols_extra = (S - 1) * g->dilation_w / SW;
    pl->ws = g->out_w + pl->cols_extra;
    /* SH*SW phase planes of (band + rows_extra) rows and slack for the last group of four vectors, which may read past the band */
    const long long per_plane = (long long)DW_SCRATCH_FLOATS / ((long long)SH * SW);
    const long long band = (per_plane - pl->cols_extra - 4 * DW_L) / pl->ws - pl->rows_extra;
    if (band < 1) return 0;
    pl->band = band < g->out_h ? (int)band : g->out_h;
    pl->stride = (size_t)(pl->band + pl->rows_extra) * pl->ws + (size_t)pl->cols_extra + 4 * DW_L;
    pl->ntaps = R * S;
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            const int dr = r * g->dilation_h, ds = s * g->dilation_w;
            pl->off[r * S + s] = (int)((size_t)((dr % SH) * SW + ds % SW) * pl->stride) + (dr / SH) * pl->ws + ds / SW;
        }
    return 1;
}

/* dst[j] = value for j in [0, n), in vectors (the library's memset and memcpy are slow for
 * rows this short on some of these machines, and a copy loop would be turned into a call). */
static inline void dw_fill(float *dst, int n, float value) {
    const dw_vec v = dw_broadcast(value);
    int j = 0;
    for (; j + DW_L <= n; j += DW_L) dw_store(dst + j, v);
    if (j < n) dw_store_part(dst + j, v, n - j);
}

/* Phase b of one padded row for strides of 3 or more: dst[j] = padded column j*SW + b, i.e.
 * input column j*SW + b - PL of src where that lies in [0, W), else 0, for j < ws. */
static void dw_phase_row(const float *src, int W, int PL, int SW, int b, int ws, float *dst) {
    /* j with j*SW + b - PL in [0, W): [lo, hi) */
    int lo = PL - b <= 0 ? 0 : (PL - b + SW - 1) / SW;
    int hi = W + PL - b <= 0 ? 0 : (W + PL - b + SW - 1) / SW;
    if (hi > ws) hi = ws;
    if (lo > hi) lo = hi;
    dw_fill(dst, lo, 0.0f);
    for (int j = lo; j < hi; j++) dst[j] = src[j * SW + b - PL];
    dw_fill(dst + hi, ws - hi, 0.0f);
}

/* Copies the padded input rows of output rows [p0, p0 + np) into the phase planes. */
static void dw_fill_band(const cnnc_conv_geometry *g, const dw_plan *pl, const float *x, int p0, int np, float *scratch) {
    const int SH = g->stride_h, SW = g->stride_w, H = g->height, W = g->width, PL = g->pad_left, ws = pl->ws;
    const int rows = np + pl->rows_extra;
    for (int a = 0; a < SH; a++)
        for (int i = 0; i < rows; i++) {
            const int h = (p0 + i) * SH + a - g->pad_top;
            float *dst = scratch + (size_t)a * SW * pl->stride + (size_t)i * ws;
            if (h < 0 || h >= H) {
                for (int b = 0; b < SW; b++) dw_fill(dst + (size_t)b * pl->stride, ws, 0.0f);
                continue;
            }
            const float *src = x + (size_t)h * W;
            if (SW == 1) {
                /* padded column j is input column j - PL: whole vectors of masked loads (lanes
                 * outside the row read nothing and give 0); a vector past ws spills into the
                 * next row, written after it, or into the slack, filled below */
                for (int j = 0; j < ws; j += DW_L)
                    dw_store(dst + j, dw_load_merge(dw_zero(), src + j - PL, dw_lanes(PL - j, PL + W - j)));
            } else if (SW == 2) {
                /* padded columns 2j + b are input columns 2j + b - PL: 2L at a time, split into
                 * the two phases; vectors past ws spill as above */
                for (int j = 0; j < ws; j += DW_L)
                    dw_phases2(src + 2 * j - PL, PL - 2 * j, PL + W - 2 * j, dst + j, dst + pl->stride + j);
            } else {
                for (int b = 0; b < SW; b++) dw_phase_row(src, W, PL, SW, b, ws, dst + (size_t)b * pl->stride);
            }
        }
    /* slack after the rows, read by the last vector's dropped lanes */
    const size_t used = (size_t)rows * ws;
    for (int f = 0; f < SH * SW; f++) dw_fill(scratch + (size_t)f * pl->stride + used, (int)(pl->stride - used), 0.0f);
}

/* (v + bias) + residual (when `res`), then the activation. */
static inline dw_vec dw_epilogue(dw_vec v, int has_bias, float bias, int res, dw_vec residual, const cnnc_epilogue *e) {
    if (has_bias) v = dw_add(v, dw_broadcast(bias));
    if (res) v = dw_add(v, residual);
    return e ? dw_activation(v, e) : v;
}

/* One band: vectors of positions j = p*ws + q over [0, np*ws), four at a time so that four
 * independent chains hide the FMA latency, each output the FMA chain of its `ntaps` taps in
 * order (a constant where the caller has one, so the weights stay in registers; wt and off
 * are the caller's locals, which no output store can change), stored whole into `tmp` (the
 * lanes past the band read the phase planes' slack and are dropped); then, row by row, the
 * Q outputs of each row from tmp with the epilogue (bias, residual, activation) to `o`. No
 * vector needs to know where rows end, however short they are (7x7 planes have 63
 * positions in four vectors, each crossing rows). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void dw_band(int ntaps, const float *wt, const int *off, const float *base, int ws, int np, int Q,
                           float *o, const float *res, int has_bias, float bias, const cnnc_epilogue *e,
                           float *tmp, size_t room) {
    const int total = np * ws;
    for (int j = 0; j < total; j += 4 * DW_L) {
        dw_vec a0 = dw_zero(), a1 = dw_zero(), a2 = dw_zero(), a3 = dw_zero();
        for (int t = 0; t < ntaps; t++) {
            const float *p = base + off[t] + j;
            a0 = dw_fma(wt[t], p, a0);
            a1 = dw_fma(wt[t], p + DW_L, a1);
            a2 = dw_fma(wt[t], p + 2 * DW_L, a2);
            a3 = dw_fma(wt[t], p + 3 * DW_L, a3);
        }
        dw_store(tmp + j, a0);
        dw_store(tmp + j + DW_L, a1);
        dw_store(tmp + j + 2 * DW_L, a2);
        dw_store(tmp + j + 3 * DW_L, a3);
    }
    for (int p = 0; p < np; p++) {
        const float *t = tmp + (size_t)p * ws;
        float *op = o + (size_t)p * Q;
        const float *rp = res ? res + (size_t)p * Q : NULL;
        int q = 0;
        for (; q + DW_L <= Q; q += DW_L)
            dw_store(op + q, dw_epilogue(dw_load(t + q), has_bias, bias, rp != NULL, rp ? dw_load(rp + q) : dw_zero(), e));
        if (q < Q) {
            const dw_mask m = dw_lanes(0, Q - q);
            const dw_vec r = rp ? dw_load_merge(dw_zero(), rp + q, m) : dw_zero();
            const dw_vec v = dw_epilogue(dw_load(t + q), has_bias, bias, rp != NULL, r, e);
            /* a whole vector where its lanes past the row land on later rows of this plane,
             * which are stored after it (room: the floats from o to the plane's end) */
            if ((size_t)p * Q + q + DW_L <= room)
                dw_store(op + q, v);
            else
                dw_store_part(op + q, v, Q - q);
        }
    }
}

static void dw_plane_vector(const cnnc_conv_geometry *g, const dw_plan *pl, const float *w, const float *x,
                            float *o, const float *res, int has_bias, float bias, const cnnc_epilogue *e,
                            float *scratch, float *tmp) {
    const int P = g->out_h, Q = g->out_w;
    float wt[DW_MAX_TAPS];
    int off[DW_MAX_TAPS];
    for (int t = 0; t < pl->ntaps; t++) {
        wt[t] = w[t];
        off[t] = pl->off[t];
    }
    for (int p0 = 0; p0 < P; p0 += pl->band) {
        const int np = P - p0 < pl->band ? P - p0 : pl->band;
        dw_fill_band(g, pl, x, p0, np, scratch);
        float *ob = o + (size_t)p0 * Q;
        const float *rb = res ? res + (size_t)p0 * Q : NULL;
        /* the rows' whole-vector tails may run on into later rows of the plane, unless the
         * residual shares the plane's memory (it would be overwritten before it is read) */
        const size_t room = (size_t)(P - p0) * Q;
        const int shared = res && res < o + (size_t)P * Q && o < res + (size_t)P * Q;
        if (pl->ntaps == 9)
            dw_band(9, wt, off, scratch, pl->ws, np, Q, ob, rb, has_bias, bias, e, tmp, shared ? 0 : room);
        else
            dw_band(pl->ntaps, wt, off, scratch, pl->ws, np, Q, ob, rb, has_bias, bias, e, tmp, shared ? 0 : room);
    }
}


#if defined(__AVX512F__)

/* ---------------------------------------------------------------------------------------
 * The flat path (AVX-512): whole planes as one run of positions, a mask per (vector, tap)
 * ------------------------------------------------------------------------------------- */

/* When the output is as wide as a phase plane (Q == ceil(W / SW): "same" padding, any stride),
 * output position j = p*Q + q reads tap (r, s) at element j + (r*DH - PT) div SH * Q +
 * (s*DW - PL) div SW of phase plane ((r*DH - PT) mod SH, (s*DW - PL) mod SW), or nothing where
 * that row or column lies outside the plane. So a whole output plane is one run of P*Q
 * positions, and tap t of vector v is one load under a mask that depends only on (v, t): the
 * masks are made once per call and shared by every plane. Stride 1 reads the image itself;
 * larger strides first copy a chunk of channels into phase planes (all of the chunk before any
 * of it is read, so no load waits on the stores just made). Outputs are stored straight into
 * `out` with the epilogue: no band buffer, no copy-out, and 7x7 planes fill 49 of 64 lanes
 * instead of 7 of 16 per row. (1 thread, Zen 4, MobileNetV2's depthwise layers: 960 planes of
 * 7x7 0.081 -> 0.040 ms, 576 of 14x14 stride 2 0.075 -> 0.053, 96 of 112x112 stride 2 0.32 ->
 * 0.28; all ten 1.39 -> 1.24 ms. With AVX2's vmaskmovps it lost, 1.70 -> 1.95 ms: AVX2 keeps
 * the bands.) */

#define DW_FLAT_MASKS 8192 /* (vector, tap) masks: P*Q up to 14,563 with 3x3 and 16 lanes */
#define DW_FLAT_BAND_AREA 2048 /* stride-1 planes of more positions go to the band path */

typedef struct {
    int hc, wc, phases; /* phase plane rows and columns (wc == Q), planes per channel (SH*SW) */
    size_t pstride;     /* floats between phase planes in the copy (a plane and slack) */
    int nvec, ntaps;    /* vectors of positions (a multiple of 4), taps R*S */
    unsigned last;      /* the lanes of the last vector with an output (of nvec_out) */
    int nvec_out;
    int off[DW_MAX_TAPS];
} dw_flat;

static int dw_floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Plans g for the flat path and makes its masks; 0 when it cannot run g. */
static int dw_make_flat(const cnnc_conv_geometry *g, dw_flat *fl, uint16_t *masks) {
    const int SH = g->stride_h, SW = g->stride_w, R = g->kernel_h, S = g->kernel_w, P = g->out_h, Q = g->out_w;
    if (R * S > DW_MAX_TAPS) return 0;
    fl->hc = (g->height + SH - 1) / SH;
    fl->wc = (g->width + SW - 1) / SW;
    if (fl->wc != Q) return 0;
    /* large stride-1 planes: the band path's unmasked loads are faster (1 thread, Zen 4: 32
     * planes of 112x112 0.21 ms banded, 0.245 flat; 56x56 alike; 28x28 and below flat wins) */
    if (SH * SW == 1 && (long long)P * Q > DW_FLAT_BAND_AREA) return 0;
    fl->phases = SH * SW;
    fl->pstride = (size_t)fl->hc * fl->wc + 2 * DW_L;
    if (fl->phases > 1 && (size_t)fl->phases * fl->pstride > DW_SCRATCH_FLOATS) return 0;
    const long long positions = (long long)P * Q;
    const long long nvec = (positions + 4 * DW_L - 1) / (4 * DW_L) * 4;
    if (nvec * R * S > DW_FLAT_MASKS) return 0;
    fl->nvec = (int)nvec;
    fl->nvec_out = (int)((positions + DW_L - 1) / DW_L);
    const int tail = (int)(positions - (long long)(fl->nvec_out - 1) * DW_L);
    fl->last = tail == DW_L ? (1u << DW_L) - 1u : (1u << tail) - 1u;
    fl->ntaps = R * S;
    int di[DW_MAX_TAPS], dk[DW_MAX_TAPS];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            const int t = r * S + s, dr = r * g->dilation_h - g->pad_top, ds = s * g->dilation_w - g->pad_left;
            di[t] = dw_floor_div(dr, SH);
            dk[t] = dw_floor_div(ds, SW);
            const int a = dr - di[t] * SH, b = ds - dk[t] * SW;
            fl->off[t] = (int)((size_t)(a * SW + b) * (fl->phases > 1 ? fl->pstride : 0)) + di[t] * fl->wc + dk[t];
        }
    /* mask (v, t) = the lanes whose row p + di[t] lies in [0, hc) (one range of positions:
     * rows[r]) and whose column q + dk[t] lies in [0, wc) (one range of q, repeating every Q:
     * cols[s]) */
    for (int v = 0; v < fl->nvec; v++) {
        const long long base = (long long)v * DW_L;
        const int q0 = (int)(base % Q);
        unsigned rows[DW_MAX_TAPS], cols[DW_MAX_TAPS];
        for (int r = 0; r < R; r++) {
            const int d = di[r * S];
            const long long rlo = (long long)(d < 0 ? -d : 0) * Q;
            long long rhi = ((long long)fl->hc - d < P ? (long long)fl->hc - d : P) * Q;
            if (rhi > positions) rhi = positions;
            rows[r] = dw_lanes((int)(rlo - base), (int)(rhi - base));
        }
        for (int c = 0; c < S; c++) {
            const int qa = dk[c] < 0 ? -dk[c] : 0, qb = fl->wc - dk[c] < Q ? fl->wc - dk[c] : Q;
            unsigned bits = 0;
            /* segments of lanes between wraps of q: lane ls holds column qs */
            if (qa < qb)
                for (int ls = 0, qs = q0; ls < DW_L; ls += Q - qs, qs = 0) {
                    const int lo = ls + qa - qs, hi = ls + qb - qs, end = ls + Q - qs;
                    bits |= dw_lanes(lo < ls ? ls : lo, hi < end ? hi : end);
                }
            cols[c] = bits;
        }
        for (int r = 0; r < R; r++)
            for (int c = 0; c < S; c++) masks[v * fl->ntaps + r * S + c] = (uint16_t)(rows[r] & cols[c]);
    }
    return 1;
}

/* Channel plane x (H x W) into its SH*SW phase planes at dst, pstride apart: phase (a, b),
 * element i*wc + k = x[i*SH + a][k*SW + b], or 0 past the image. */
static void dw_flat_split(const cnnc_conv_geometry *g, const dw_flat *fl, const float *x, float *dst) {
    const int SH = g->stride_h, SW = g->stride_w, H = g->height, W = g->width, wc = fl->wc;
    for (int a = 0; a < SH; a++)
        for (int i = 0; i < fl->hc; i++) {
            const int h = i * SH + a;
            float *d = dst + (size_t)a * SW * fl->pstride + (size_t)i * wc;
            if (h >= H) {
                for (int b = 0; b < SW; b++) dw_fill(d + (size_t)b * fl->pstride, wc, 0.0f);
                continue;
            }
            const float *src = x + (size_t)h * W;
            if (SW == 2) {
                /* whole vectors: one past wc spills into the next row (written after it) or
                 * into the plane's slack */
                for (int k = 0; k < wc; k += DW_L) dw_phases2(src + 2 * k, 0, W - 2 * k, d + k, d + fl->pstride + k);
            } else {
                for (int b = 0; b < SW; b++) dw_phase_row(src, W, 0, SW, b, wc, d + (size_t)b * fl->pstride);
            }
        }
}

/* One output plane: four vectors at a time, each output the FMA chain of its taps in order
 * (masked-off taps add w*0), then the epilogue, stored into o. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void dw_flat_plane(int ntaps, const dw_flat *fl, const uint16_t *masks, const float *wt, const int *off,
                                 const float *x, float *o, const float *res, int has_bias, float bias,
                                 const cnnc_epilogue *e) {
    for (int v = 0; v < fl->nvec; v += 4) {
        dw_vec a0 = dw_zero(), a1 = dw_zero(), a2 = dw_zero(), a3 = dw_zero();
        const uint16_t *m = masks + (size_t)v * ntaps;
        const float *xv = x + (size_t)v * DW_L;
        for (int t = 0; t < ntaps; t++) {
            const float *p = xv + off[t];
            const dw_vec w = dw_broadcast(wt[t]);
            a0 = dw_fma_vec(w, dw_load_bits(p, m[t]), a0);
            a1 = dw_fma_vec(w, dw_load_bits(p + DW_L, m[ntaps + t]), a1);
            a2 = dw_fma_vec(w, dw_load_bits(p + 2 * DW_L, m[2 * ntaps + t]), a2);
            a3 = dw_fma_vec(w, dw_load_bits(p + 3 * DW_L, m[3 * ntaps + t]), a3);
        }
        const dw_vec acc[4] = {a0, a1, a2, a3};
        for (int i = 0; i < 4 && v + i < fl->nvec_out; i++) {
            const size_t j = (size_t)(v + i) * DW_L;
            const unsigned bits = v + i == fl->nvec_out - 1 ? fl->last : (1u << DW_L) - 1u;
            const dw_vec r = res ? dw_load_bits(res + j, bits) : dw_zero();
            dw_store_bits(o + j, dw_epilogue(acc[i], has_bias, bias, res != NULL, r, e), bits);
        }
    }
}

/* Output planes [0, m) (plane k reads input plane k / multiplier) on the flat path. */
static void dw_flat_run(const cnnc_conv_geometry *g, const dw_flat *fl, const uint16_t *masks, int m, int multiplier,
                        const float *weights, const float *image, float *out, const cnnc_epilogue *e, float *scratch) {
    const size_t plane = (size_t)g->height * g->width, pq = (size_t)g->out_h * g->out_w;
    const size_t per_channel = (size_t)fl->phases * fl->pstride;
    const int channels = (m + multiplier - 1) / multiplier;
    const int chunk = fl->phases == 1 ? channels : (int)(DW_SCRATCH_FLOATS / per_channel);
    float wt[DW_MAX_TAPS];
    for (int c0 = 0; c0 < channels; c0 += chunk) {
        const int c1 = channels - c0 < chunk ? channels : c0 + chunk;
        if (fl->phases > 1)
            for (int c = c0; c < c1; c++) dw_flat_split(g, fl, image + (size_t)c * plane, scratch + (size_t)(c - c0) * per_channel);
        for (int c = c0; c < c1; c++) {
            const float *x = fl->phases > 1 ? scratch + (size_t)(c - c0) * per_channel : image + (size_t)c * plane;
            for (int k = c * multiplier; k < (c + 1) * multiplier && k < m; k++) {
                for (int t = 0; t < fl->ntaps; t++) wt[t] = weights[(size_t)k * fl->ntaps + t];
                const float *res = e && e->residual ? e->residual + (size_t)k * pq : NULL;
                const int has_bias = e && e->bias;
                const float bias = has_bias ? e->bias[k] : 0.0f;
                if (fl->ntaps == 9)
                    dw_flat_plane(9, fl, masks, wt, fl->off, x, out + (size_t)k * pq, res, has_bias, bias, e);
                else
                    dw_flat_plane(fl->ntaps, fl, masks, wt, fl->off, x, out + (size_t)k * pq, res, has_bias, bias, e);
            }
        }
    }
}

/* The flat path's plan and masks depend only on the geometry, so each thread keeps the last
 * ones it made: a layer's planes come in several calls per thread (16 blocks per sample), and
 * making the masks costs about as much as a few planes of 14x14. */
static _Thread_local struct {
    int state; /* 0: empty, 1: g runs flat, 2: g does not */
    cnnc_conv_geometry g;
    dw_flat fl;
    uint16_t masks[DW_FLAT_MASKS];
} dw_flat_cache;

/* The flat plan of g and its masks, or NULL when the flat path cannot run g. */
static const dw_flat *dw_flat_for(const cnnc_conv_geometry *g, const uint16_t **masks) {
    if (dw_flat_cache.state == 0 || memcmp(&dw_flat_cache.g, g, sizeof *g) != 0) {
        dw_flat_cache.g = *g;
        dw_flat_cache.state = dw_make_flat(g, &dw_flat_cache.fl, dw_flat_cache.masks) ? 1 : 2;
    }
    *masks = dw_flat_cache.masks;
    return dw_flat_cache.state == 1 ? &dw_flat_cache.fl : NULL;
}

#undef DW_FLAT_MASKS
#undef DW_FLAT_BAND_AREA

#endif /* the flat path */

#endif /* vector paths */

/* ---------------------------------------------------------------------------------------
 * The entry
 * ------------------------------------------------------------------------------------- */

void cnnc_conv_depthwise(const cnnc_conv_geometry *g, int m, int multiplier, const float *weights,
                         const float *image, float *out, const cnnc_epilogue *e) {
    const int R = g->kernel_h, S = g->kernel_w;
    const size_t plane = (size_t)g->height * g->width, pq = (size_t)g->out_h * g->out_w;
    if (m <= 0 || multiplier <= 0 || g->out_h <= 0 || g->out_w <= 0) return;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
    _Alignas(64) float scratch[DW_SCRATCH_FLOATS], tmp[DW_SCRATCH_FLOATS];
#if defined(__AVX512F__)
    {
        const uint16_t *masks;
        const dw_flat *fl = dw_flat_for(g, &masks);
        if (fl) {
            dw_flat_run(g, fl, masks, m, multiplier, weights, image, out, e, scratch);
            return;
        }
    }
#endif
    dw_plan pl;
    memset(&pl, 0, sizeof pl);
    const int vector = dw_make_plan(g, &pl);
#endif
    for (int k = 0; k < m; k++) {
        const float *w = weights + (size_t)k * R * S, *x = image + (size_t)(k / multiplier) * plane;
        float *o = out + (size_t)k * pq;
        const float *res = e && e->residual ? e->residual + (size_t)k * pq : NULL;
        const int has_bias = e && e->bias;
        const float bias = has_bias ? e->bias[k] : 0.0f;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
        if (vector) {
            dw_plane_vector(g, &pl, w, x, o, res, has_bias, bias, e, scratch, tmp);
            continue;
        }
#endif
        dw_plane_plain(g, w, x, o, res, has_bias, bias, e);
    }
}

/* The runtime is also compiled as one file (tools/embed_runtime.py): keep these names local. */
#undef DW_MAX_TAPS
#undef DW_SCRATCH_FLOATS
#undef DW_ROW_CHUNK
#undef DW_L
