/*
 * depthwise.c — depthwise convolution (groups == input channels) on NCHW, one plane at a time.
 *
 * A depthwise layer has nothing for a matrix product to reuse: each output plane is one input
 * plane convolved with its own R x S filter. The kernel walks an output row in vectors of L
 * output columns, keeps each vector's sum in one register while all its taps (r, s) are added,
 * then applies the epilogue (bias, residual, ReLU / leaky / clip) in registers and stores the
 * vector once. Output columns whose taps all lie inside the image (the interior) load their
 * taps without masks; the border vectors load with lane masks and add only the taps inside the
 * image (masked FMA: a padding tap contributes nothing, not 0 * weight). Rows whose tap row
 * lies in the padding are skipped.
 *
 * Strided columns (stride_w > 1) are deinterleaved once per input row into stride_w phase
 * rows (phase f holds columns f, f + SW, f + 2 SW, ...), kept in a small ring of the rows the
 * current output row needs: every tap of a vector of strided outputs is then again one
 * contiguous load (for stride 2 the deinterleave is two loads and two permutes per 32 floats).
 *
 * Every output is one fused multiply-add chain over its taps inside the image, (r, s) in
 * order from 0, then (+ bias) (+ residual) and the activation: the split of planes between
 * calls or threads never changes a bit.
 *
 * Paths, from the compiler's predefined macros:
 *   __AVX512F__             16 lanes, k-register masks, vpermt2ps for stride 2
 *   __AVX2__ and __FMA__    8 lanes, vector masks (vmaskmovps, blend), shuffles for stride 2
 *   otherwise (or kernels over DW_MAX_TAPS_SIDE wide or high, or strided rows that do not
 *   fit the ring's stack buffer)   plain C, the same order of taps per output
 */
#include "internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define DW_MAX_TAPS_SIDE 32     /* the vector path's largest R and S */
#define DW_MAX_RING 64          /* its most deinterleaved rows, (R-1)*DH + 1 */
#define DW_RING_FLOATS 8192     /* their floats (32 KiB of stack) */
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
static inline int dw_any(dw_mask m) { return m != 0; }
static inline dw_vec dw_zero(void) { return _mm512_setzero_ps(); }
static inline dw_vec dw_fma(float w, const float *p, dw_vec acc) {
    return _mm512_fmadd_ps(_mm512_set1_ps(w), _mm512_loadu_ps(p), acc);
}
/* acc + w * p[l] in the lanes of m; acc as it is elsewhere (p is not read there). */
static inline dw_vec dw_fma_masked(float w, const float *p, dw_vec acc, dw_mask m) {
    return _mm512_mask3_fmadd_ps(_mm512_set1_ps(w), _mm512_maskz_loadu_ps(m, p), acc, m);
}
static inline dw_vec dw_load_masked(const float *p, dw_mask m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void dw_store_masked(float *p, dw_vec v, dw_mask m) { _mm512_mask_storeu_ps(p, m, v); }
static inline void dw_store(float *p, dw_vec v) { _mm512_storeu_ps(p, v); }
static inline dw_vec dw_load(const float *p) { return _mm512_loadu_ps(p); }

/* act(v) as cnnc_internal_epilogue_row computes it (NaN: ReLU gives 0, leaky and clip keep it). */
static inline dw_vec dw_activation(dw_vec v, const cnnc_epilogue *e) {
    switch (e->activation) {
    case CNNC_ACT_NONE:
        break;
    case CNNC_ACT_RELU: /* v > 0 ? v : 0 */
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
        break;
    case CNNC_ACT_LEAKY: { /* v > 0 ? v : alpha * v */
        const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
        v = _mm512_mask_mov_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->alpha)), pos, v);
        break;
    }
    case CNNC_ACT_CLIP: { /* v < low ? low : (v > high ? high : v) */
        const __mmask16 lo = _mm512_cmp_ps_mask(v, _mm512_set1_ps(e->low), _CMP_LT_OQ);
        const __mmask16 hi = _mm512_cmp_ps_mask(v, _mm512_set1_ps(e->high), _CMP_GT_OQ);
        v = _mm512_mask_mov_ps(v, hi, _mm512_set1_ps(e->high));
        v = _mm512_mask_mov_ps(v, lo, _mm512_set1_ps(e->low));
        break;
    }
    }
    return v;
}
static inline dw_vec dw_add(dw_vec a, dw_vec b) { return _mm512_add_ps(a, b); }
static inline dw_vec dw_broadcast(float v) { return _mm512_set1_ps(v); }

/* dst0[j] = src[2j], dst1[j] = src[2j + 1] for j < n0 and j < n1 (the phases' lengths). */
static void dw_deinterleave2(const float *src, int width, float *dst0, float *dst1) {
    const int n0 = (width + 1) / 2, n1 = width / 2;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int j = 0;
    for (; 2 * j + 32 <= width; j += 16) {
        const __m512 a = _mm512_loadu_ps(src + 2 * j), b = _mm512_loadu_ps(src + 2 * j + 16);
        _mm512_storeu_ps(dst0 + j, _mm512_permutex2var_ps(a, even, b));
        _mm512_storeu_ps(dst1 + j, _mm512_permutex2var_ps(a, odd, b));
    }
    for (int i = j; i < n0; i++) dst0[i] = src[2 * i];
    for (int i = j; i < n1; i++) dst1[i] = src[2 * i + 1];
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
static inline int dw_any(dw_mask m) { return !_mm256_testz_si256(m, m); }
static inline dw_vec dw_zero(void) { return _mm256_setzero_ps(); }
static inline dw_vec dw_fma(float w, const float *p, dw_vec acc) {
    return _mm256_fmadd_ps(_mm256_set1_ps(w), _mm256_loadu_ps(p), acc);
}
static inline dw_vec dw_fma_masked(float w, const float *p, dw_vec acc, dw_mask m) {
    const dw_vec sum = _mm256_fmadd_ps(_mm256_set1_ps(w), _mm256_maskload_ps(p, m), acc);
    return _mm256_blendv_ps(acc, sum, _mm256_castsi256_ps(m));
}
static inline dw_vec dw_load_masked(const float *p, dw_mask m) { return _mm256_maskload_ps(p, m); }
static inline void dw_store_masked(float *p, dw_vec v, dw_mask m) { _mm256_maskstore_ps(p, m, v); }
static inline void dw_store(float *p, dw_vec v) { _mm256_storeu_ps(p, v); }
static inline dw_vec dw_load(const float *p) { return _mm256_loadu_ps(p); }

static inline dw_vec dw_activation(dw_vec v, const cnnc_epilogue *e) {
    switch (e->activation) {
    case CNNC_ACT_NONE:
        break;
    case CNNC_ACT_RELU: /* v > 0 ? v : 0: the ordered compare is false for NaN */
        v = _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ), v);
        break;
    case CNNC_ACT_LEAKY: {
        const __m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
        v = _mm256_blendv_ps(_mm256_mul_ps(v, _mm256_set1_ps(e->alpha)), v, pos);
        break;
    }
    case CNNC_ACT_CLIP: {
        const __m256 low = _mm256_set1_ps(e->low), high = _mm256_set1_ps(e->high);
        const __m256 lo = _mm256_cmp_ps(v, low, _CMP_LT_OQ), hi = _mm256_cmp_ps(v, high, _CMP_GT_OQ);
        v = _mm256_blendv_ps(v, high, hi);
        v = _mm256_blendv_ps(v, low, lo);
        break;
    }
    }
    return v;
}
static inline dw_vec dw_add(dw_vec a, dw_vec b) { return _mm256_add_ps(a, b); }
static inline dw_vec dw_broadcast(float v) { return _mm256_set1_ps(v); }

static void dw_deinterleave2(const float *src, int width, float *dst0, float *dst1) {
    const int n0 = (width + 1) / 2, n1 = width / 2;
    int j = 0;
    for (; 2 * j + 16 <= width; j += 8) {
        const __m256 a = _mm256_loadu_ps(src + 2 * j), b = _mm256_loadu_ps(src + 2 * j + 8);
        /* a0 a2 b0 b2 | a4 a6 b4 b6 -> a0 a2 a4 a6 b0 b2 b4 b6 (and the odd lanes alike) */
        const __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);
        _mm256_storeu_ps(dst0 + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
        _mm256_storeu_ps(dst1 + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
    }
    for (int i = j; i < n0; i++) dst0[i] = src[2 * i];
    for (int i = j; i < n1; i++) dst1[i] = src[2 * i + 1];
}

#endif

/* ---------------------------------------------------------------------------------------
 * The vector path
 * ------------------------------------------------------------------------------------- */

/* Where tap s of output column q is read: rows are phase rows (the input row itself for
 * stride 1), tap s of column q at row + tap[s] + q; valid for q in [lo[s], hi[s]). The
 * interior [qlo, qhi) has every tap valid. */
typedef struct {
    int tap[DW_MAX_TAPS_SIDE], lo[DW_MAX_TAPS_SIDE], hi[DW_MAX_TAPS_SIDE];
    int qlo, qhi;
    int phase_floats; /* floats of one phase row in the ring: ceil(W / SW) */
} dw_columns;

static int dw_vector_fits(const cnnc_conv_geometry *g) {
    if (g->kernel_h > DW_MAX_TAPS_SIDE || g->kernel_w > DW_MAX_TAPS_SIDE) return 0;
    if (g->stride_w == 1) return 1;
    const long long ring = (long long)(g->kernel_h - 1) * g->dilation_h + 1;
    const long long phase = (g->width + g->stride_w - 1) / g->stride_w;
    return ring <= DW_MAX_RING && ring * g->stride_w * phase <= DW_RING_FLOATS;
}

static void dw_plan_columns(const cnnc_conv_geometry *g, dw_columns *c) {
    const int SW = g->stride_w, Q = g->out_w;
    c->phase_floats = (g->width + SW - 1) / SW;
    c->qlo = 0;
    c->qhi = Q;
    for (int s = 0; s < g->kernel_w; s++) {
        /* column q*SW + d of the input is column q + floor(d / SW) of phase d mod SW */
        const int d = s * g->dilation_w - g->pad_left;
        const int phase = ((d % SW) + SW) % SW, shift = (d - phase) / SW;
        c->tap[s] = SW == 1 ? d : phase * c->phase_floats + shift;
        dw_tap_columns(g, s, &c->lo[s], &c->hi[s]);
        if (c->lo[s] > c->qlo) c->qlo = c->lo[s];
        if (c->hi[s] < c->qhi) c->qhi = c->hi[s];
    }
    if (c->qhi < c->qlo) c->qhi = c->qlo;
}

/* The sum of one vector of outputs from column q0 over the rows' taps; `S` is a constant
 * where the caller has one, so the taps unroll. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline dw_vec dw_sum(int nrows, const float *const *rows, const float *const *wrow, const dw_columns *c,
                            int S, int q0, int interior) {
    dw_vec acc = dw_zero();
    if (interior) {
        for (int i = 0; i < nrows; i++)
            for (int s = 0; s < S; s++) acc = dw_fma(wrow[i][s], rows[i] + c->tap[s] + q0, acc);
    } else {
        for (int i = 0; i < nrows; i++)
            for (int s = 0; s < S; s++) {
                const dw_mask m = dw_lanes(c->lo[s] - q0, c->hi[s] - q0);
                if (dw_any(m)) acc = dw_fma_masked(wrow[i][s], rows[i] + c->tap[s] + q0, acc, m);
            }
    }
    return acc;
}

/* (v + bias) + residual, then the activation. */
static inline dw_vec dw_epilogue(dw_vec v, int has_bias, float bias, const float *res, const cnnc_epilogue *e) {
    if (has_bias) v = dw_add(v, dw_broadcast(bias));
    if (res) v = dw_add(v, dw_load(res));
    return e ? dw_activation(v, e) : v;
}
static inline dw_vec dw_epilogue_masked(dw_vec v, int has_bias, float bias, const float *res, dw_mask m,
                                        const cnnc_epilogue *e) {
    if (has_bias) v = dw_add(v, dw_broadcast(bias));
    if (res) v = dw_add(v, dw_load_masked(res, m));
    return e ? dw_activation(v, e) : v;
}

/* One output row: the vectors of columns, interior ones without masks. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void dw_row(int nrows, const float *const *rows, const float *const *wrow, const dw_columns *c,
                          int S, int Q, float *o, const float *res, int has_bias, float bias, const cnnc_epilogue *e) {
    for (int q0 = 0; q0 < Q; q0 += DW_L) {
        if (q0 >= c->qlo && q0 + DW_L <= c->qhi) {
            const dw_vec v = dw_sum(nrows, rows, wrow, c, S, q0, 1);
            dw_store(o + q0, dw_epilogue(v, has_bias, bias, res ? res + q0 : NULL, e));
        } else {
            const dw_mask m = dw_lanes(0, Q - q0);
            const dw_vec v = dw_sum(nrows, rows, wrow, c, S, q0, 0);
            dw_store_masked(o + q0, dw_epilogue_masked(v, has_bias, bias, res ? res + q0 : NULL, m, e), m);
        }
    }
}

/* Writes the phase rows of input row x into dst (phase f at dst + f * phase_floats). */
static void dw_deinterleave(const float *x, int W, int SW, int phase_floats, float *dst) {
    if (SW == 2) {
        dw_deinterleave2(x, W, dst, dst + phase_floats);
        return;
    }
    for (int f = 0; f < SW; f++)
        for (int j = 0; j * SW + f < W; j++) dst[(size_t)f * phase_floats + j] = x[(size_t)j * SW + f];
}

static void dw_plane_vector(const cnnc_conv_geometry *g, const dw_columns *c, const float *w, const float *x,
                            float *o, const float *res, int has_bias, float bias, const cnnc_epilogue *e) {
    _Alignas(64) float ring[DW_RING_FLOATS];
    int ring_row[DW_MAX_RING];
    const int H = g->height, W = g->width, P = g->out_h, Q = g->out_w, R = g->kernel_h, S = g->kernel_w;
    const int SW = g->stride_w, slots = (R - 1) * g->dilation_h + 1;
    const size_t slot_floats = (size_t)SW * c->phase_floats;
    if (SW > 1)
        for (int i = 0; i < slots; i++) ring_row[i] = -1;
    const float *rows[DW_MAX_TAPS_SIDE];
    const float *wrow[DW_MAX_TAPS_SIDE];
    for (int p = 0; p < P; p++) {
        /* the rows of the taps inside the image, deinterleaved into the ring when strided */
        int nrows = 0;
        for (int r = 0; r < R; r++) {
            const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
            if (h < 0 || h >= H) continue;
            if (SW == 1) {
                rows[nrows] = x + (size_t)h * W;
            } else {
                const int slot = h % slots;
                float *dst = ring + (size_t)slot * slot_floats;
                if (ring_row[slot] != h) {
                    dw_deinterleave(x + (size_t)h * W, W, SW, c->phase_floats, dst);
                    ring_row[slot] = h;
                }
                rows[nrows] = dst;
            }
            wrow[nrows] = w + r * S;
            nrows++;
        }
        float *orow = o + (size_t)p * Q;
        const float *rrow = res ? res + (size_t)p * Q : NULL;
        if (S == 3)
            dw_row(nrows, rows, wrow, c, 3, Q, orow, rrow, has_bias, bias, e);
        else
            dw_row(nrows, rows, wrow, c, S, Q, orow, rrow, has_bias, bias, e);
    }
}

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
    const int vector = dw_vector_fits(g);
    dw_columns c;
    if (vector) dw_plan_columns(g, &c);
#endif
    for (int k = 0; k < m; k++) {
        const float *w = weights + (size_t)k * R * S, *x = image + (size_t)(k / multiplier) * plane;
        float *o = out + (size_t)k * pq;
        const float *res = e && e->residual ? e->residual + (size_t)k * pq : NULL;
        const int has_bias = e && e->bias;
        const float bias = has_bias ? e->bias[k] : 0.0f;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
        if (vector) {
            dw_plane_vector(g, &c, w, x, o, res, has_bias, bias, e);
            continue;
        }
#endif
        dw_plane_plain(g, w, x, o, res, has_bias, bias, e);
    }
}

/* The runtime is also compiled as one file (tools/embed_runtime.py): keep these names local. */
#undef DW_MAX_TAPS_SIDE
#undef DW_MAX_RING
#undef DW_RING_FLOATS
#undef DW_ROW_CHUNK
#undef DW_L
