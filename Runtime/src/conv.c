/*
 * conv.c — direct convolution on NCHW for stride-1 layers, weights packed once.
 *
 * cnnc_sgemm_conv packs an im2col block of the input for every call: for a layer with few
 * output channels that copy costs about as much as the multiply. For stride 1 the im2col
 * matrix needs no copy at all if output positions are numbered over the input's width
 * (j = p*W + q, the columns q >= Q computed and dropped): the row (c, r, s) of a block of
 * positions is then one contiguous run of the input plane, shifted by (r*DH - PT)*W + s*DW - PL,
 * with the padding (and the wrap from one row into the next) masked out per tap. The
 * micro-kernel loads those runs straight from the image with masked loads, broadcasts the
 * weights from panels packed once by <model>_prepare (cnnc_conv_pack_weights), and the
 * epilogue (bias, residual, ReLU family) is applied while the tile is in L1.
 *
 * Every output is one FMA chain over (c, r, s) in order starting from 0, the chain
 * cnnc_sgemm_conv computes: both algorithms give the same bits, whatever the thread split.
 *
 * Strided layers run on the same kernel after one copy of the input into phase planes: with
 * stride SH x SW, tap (r, s) of output (p, q) reads image row SH*(p + dr) + a, where
 * a = (r*DH - PT) mod SH and dr = floor((r*DH - PT) / SH), and likewise the column. Plane (a, b)
 * holds rows a, a + SH, ... and columns b, b + SW, ... of every channel (zeros past the edge),
 * so in it the tap is again a shift of the output position, now numbered over the plane's
 * width: a stride-1 convolution per phase, with that phase's taps. The reduction runs over
 * (phase, c, tap of the phase), the order cnnc_conv_pack_weights_phased packs the weights in;
 * no multiply is wasted (each tap belongs to one phase) and the copy is one pass over the input.
 *
 * Micro-kernels, chosen from the compiler's predefined macros (MR = CNNC_PACK_ROWS):
 *   __AVX512F__             8 rows x 32 positions (16 zmm accumulators, k-register masks), or
 *                           8 x 16 where the plane would leave most of 32 lanes empty (4x4, 2x2)
 *   __AVX2__ and __FMA__    6 rows x 16 positions (12 ymm accumulators, vector masks), or 4 rows
 *                           for a last panel of at most 4 real rows
 *   otherwise               4 rows x 16 positions in plain C
 */
#include "internal.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define CONV_MR CNNC_PACK_ROWS
#if defined(__AVX512F__)
#define CONV_NR 32
#else
#define CONV_NR 16
#endif

size_t cnnc_conv_packed_floats(int groups, int kg, int crs) {
    if (groups <= 0 || kg <= 0 || crs <= 0) return 0;
    const size_t panels = ((size_t)kg + CONV_MR - 1) / CONV_MR;
    return (size_t)groups * panels * CONV_MR * (size_t)crs;
}

void cnnc_conv_pack_weights(float *dst, const float *weights, int groups, int kg, int crs) {
    const int panels = (kg + CONV_MR - 1) / CONV_MR;
    for (int g = 0; g < groups; g++)
        for (int t = 0; t < panels; t++) {
            float *restrict panel = dst + ((size_t)g * panels + t) * (size_t)crs * CONV_MR;
            for (int i = 0; i < CONV_MR; i++) {
                const int row = t * CONV_MR + i;
                const float *restrict w = weights + ((size_t)g * kg + row) * (size_t)crs;
                for (int p = 0; p < crs; p++) panel[(size_t)p * CONV_MR + i] = row < kg ? w[p] : 0.0f;
            }
        }
}

void cnnc_conv_pack_weights_transposed(float *dst, const float *weights, int groups, int kg, int cg, int taps) {
    const int panels = (cg + CONV_MR - 1) / CONV_MR, crs = kg * taps;
    for (int g = 0; g < groups; g++)
        for (int t = 0; t < panels; t++) {
            float *restrict panel = dst + ((size_t)g * panels + t) * (size_t)crs * CONV_MR;
            for (int i = 0; i < CONV_MR; i++) {
                const int c = t * CONV_MR + i;
                for (int k = 0; k < kg; k++) {
                    const float *restrict w = weights + (((size_t)g * kg + k) * cg + (c < cg ? c : 0)) * (size_t)taps;
                    for (int u = 0; u < taps; u++)
                        panel[((size_t)k * taps + u) * CONV_MR + i] = c < cg ? w[taps - 1 - u] : 0.0f;
                }
            }
        }
}

/* The order of a layer's taps in the reduction and where each reads (see the file header):
 * phases in (a, b) order, only those some tap reads; taps in (r, s) order within a phase. With
 * stride 1 there is one phase, the image itself, and the taps are in (r, s) order. */
typedef struct {
    int taps, phases;
    int hs, ws;                                   /* a phase plane: rows and columns */
    int first[CNNC_CONV_DIRECT_MAX_TAPS + 1];     /* phase k's taps: [first[k], first[k+1]) */
    int phase_a[CNNC_CONV_DIRECT_MAX_TAPS], phase_b[CNNC_CONV_DIRECT_MAX_TAPS];
    int tap[CNNC_CONV_DIRECT_MAX_TAPS];           /* place in the reduction -> r*S + s */
    int dr[CNNC_CONV_DIRECT_MAX_TAPS], ds[CNNC_CONV_DIRECT_MAX_TAPS];
} conv_plan;

static int floor_div(int x, int d) { return x >= 0 ? x / d : -((-x + d - 1) / d); }

/* Returns 0 where the geometry is outside what the plan holds (too many taps, bad sizes). */
static int conv_plan_make(const cnnc_conv_geometry *g, conv_plan *pl) {
    const int R = g->kernel_h, S = g->kernel_w, SH = g->stride_h, SW = g->stride_w;
    if (R <= 0 || S <= 0 || R * S > CNNC_CONV_DIRECT_MAX_TAPS || SH <= 0 || SW <= 0) return 0;
    if (g->height <= 0 || g->width <= 0 || g->channels <= 0) return 0;
    pl->taps = R * S;
    pl->hs = (g->height + SH - 1) / SH;
    pl->ws = (g->width + SW - 1) / SW;
    pl->phases = 0;
    int n = 0;
    for (int a = 0; a < SH; a++)
        for (int b = 0; b < SW; b++) {
            const int start = n;
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++) {
                    const int v = r * g->dilation_h - g->pad_top, u = s * g->dilation_w - g->pad_left;
                    const int dr = floor_div(v, SH), ds = floor_div(u, SW);
                    if (v - dr * SH != a || u - ds * SW != b) continue;
                    pl->tap[n] = r * S + s;
                    pl->dr[n] = dr;
                    pl->ds[n] = ds;
                    n++;
                }
            if (n == start) continue;
            pl->phase_a[pl->phases] = a;
            pl->phase_b[pl->phases] = b;
            pl->first[pl->phases++] = start;
        }
    pl->first[pl->phases] = n;
    return 1;
}

size_t cnnc_conv_phase_floats(const cnnc_conv_geometry *g) {
    conv_plan pl;
    if (g->stride_h == 1 && g->stride_w == 1) return 0;
    if (!conv_plan_make(g, &pl)) return 0;
    return (size_t)pl.phases * (size_t)g->channels * (size_t)pl.hs * (size_t)pl.ws;
}

void cnnc_conv_phase_split(const cnnc_conv_geometry *g, const float *image, float *dst, int c0, int c1) {
    conv_plan pl;
    if (!conv_plan_make(g, &pl)) return;
    const int H = g->height, W = g->width, SH = g->stride_h, SW = g->stride_w, hs = pl.hs, ws = pl.ws;
    const size_t plane = (size_t)hs * ws;
    for (int k = 0; k < pl.phases; k++) {
        const int a = pl.phase_a[k], b = pl.phase_b[k];
        const int cols = (W - b + SW - 1) / SW; /* columns of the phase inside the image */
        for (int c = c0; c < c1; c++) {
            float *restrict d = dst + ((size_t)k * g->channels + c) * plane;
            const float *restrict x = image + (size_t)c * H * W;
            for (int i = 0; i < hs; i++) {
                float *restrict row = d + (size_t)i * ws;
                const int h = SH * i + a;
                if (h >= H) {
                    for (int j = 0; j < ws; j++) row[j] = 0.0f;
                    continue;
                }
                const float *restrict src = x + (size_t)h * W + b;
                for (int j = 0; j < cols; j++) row[j] = src[(size_t)j * SW];
                for (int j = cols; j < ws; j++) row[j] = 0.0f;
            }
        }
    }
}

void cnnc_conv_pack_weights_phased(float *dst, const float *weights, int groups, int kg, const cnnc_conv_geometry *g) {
    conv_plan pl;
    if (!conv_plan_make(g, &pl)) return;
    const int taps = pl.taps, cg = g->channels, crs = cg * taps, panels = (kg + CONV_MR - 1) / CONV_MR;
    for (int gi = 0; gi < groups; gi++)
        for (int t = 0; t < panels; t++) {
            float *restrict panel = dst + ((size_t)gi * panels + t) * (size_t)crs * CONV_MR;
            for (int i = 0; i < CONV_MR; i++) {
                const int row = t * CONV_MR + i;
                const float *restrict w = weights + ((size_t)gi * kg + (row < kg ? row : 0)) * (size_t)crs;
                size_t p = 0;
                for (int k = 0; k < pl.phases; k++)
                    for (int c = 0; c < cg; c++)
                        for (int u = pl.first[k]; u < pl.first[k + 1]; u++, p++)
                            panel[p * CONV_MR + i] = row < kg ? w[(size_t)c * taps + pl.tap[u]] : 0.0f;
            }
        }
}

int cnnc_conv_direct_fits(const cnnc_conv_geometry *g) {
    conv_plan pl;
    if (!conv_plan_make(g, &pl)) return 0;
    if (g->out_w > pl.ws || g->out_w <= 0 || g->out_h <= 0) return 0;
    if ((long long)g->out_h * pl.ws > INT_MAX / 2) return 0;
    if ((long long)pl.phases * g->channels * pl.hs * pl.ws > INT_MAX / 2) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Micro-kernels: tile[MR x NR] = packed panel (MR x channels*taps) * the masked runs
 * ------------------------------------------------------------------------------------- */

/* Lane masks of one tile, one per tap: bit l set where position j0 + l exists and its tap
 * (r, s) lies inside the image. */
typedef struct {
    uint32_t bits[CNNC_CONV_DIRECT_MAX_TAPS];
#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
    /* the bits as lane masks of lanes 0-7 and 8-15, made once per tile by the driver (not per
     * sample and panel: LeNet's c1, 25 taps of one channel, spent as long making them as
     * multiplying); left unset where no tap masks a lane (tile_walk.inside == 2) */
    __m256i lo[CNNC_CONV_DIRECT_MAX_TAPS], hi[CNNC_CONV_DIRECT_MAX_TAPS];
#endif
} tile_masks;

/* What one tile reads: `phases` planes-of-channels phase_stride floats apart, each with its
 * taps [first[k], first[k+1]) at offsets off[t] (masks mk->bits[t]), `channels` planes of
 * `plane` floats per phase; the packed panel holds the weights in that order. */
typedef struct {
    int channels, taps, phases;
    const int *first;
    size_t plane, phase_stride;
    const int *off;
    const tile_masks *mk;
    int inside; /* 1: every tap's whole vectors of this tile lie inside the sample's planes;
                 * 2: and no tap masks a lane */
} tile_walk;

/* Where a tile goes when its positions are the output's own (Q == W: position j is output
 * j): straight from the registers to `out` (rows `stride` apart, the first `rows` of the
 * panel, `lanes` positions), with the epilogue applied there; NULL: to the tile buffer. */
typedef struct {
    float *out;
    const float *residual; /* laid out like out, or NULL */
    const float *bias;     /* the panel's first row's, or NULL */
    size_t stride;
    int rows, lanes;
    const cnnc_epilogue *e;
} tile_store;

#if defined(__AVX512F__)

#define CONV_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* v = act((sum + bias) + residual), as cnnc_internal_epilogue_row computes it, on 16 lanes
 * (max/min with the operand order that keeps NaN where the scalar comparisons keep it). */
static inline __m512 store_epilogue(__m512 v, int row, __mmask16 m, const float *res, const tile_store *d) {
    if (d->bias) v = _mm512_add_ps(v, _mm512_set1_ps(d->bias[row]));
    if (d->residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res));
    return d->e ? cnnc_internal_activate16(v, d->e) : v;
}

static inline __mmask16 lane_bits(int lanes) {
    return lanes >= 16 ? (__mmask16)0xffff : lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1u);
}

static void conv_tile(const tile_walk *wk, const float *restrict ap, const float *x0, float *restrict tile,
                      const tile_store *d) {
    const int channels = wk->channels, taps = wk->taps;
    const int *off = wk->off;
    const tile_masks *mk = wk->mk;
    const size_t plane = wk->plane;
    __mmask16 lo[CNNC_CONV_DIRECT_MAX_TAPS], hi[CNNC_CONV_DIRECT_MAX_TAPS];
    for (int t = 0; t < taps; t++) {
        lo[t] = (__mmask16)(mk->bits[t] & 0xffffu);
        hi[t] = (__mmask16)(mk->bits[t] >> 16);
    }
#define DECLARE(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    CONV_ROWS(DECLARE)
#undef DECLARE
    for (int k = 0; k < wk->phases; k++) {
        const int t0 = wk->first[k], t1 = wk->first[k + 1];
        const float *x = x0 + (size_t)k * wk->phase_stride;
        for (int c = 0; c < channels; c++, x += plane) {
            for (int t = t0; t < t1; t++) {
                const float *b = x + off[t];
                const __m512 b0 = _mm512_maskz_loadu_ps(lo[t], b), b1 = _mm512_maskz_loadu_ps(hi[t], b + 16);
    #define STEP(i) { const __m512 a = _mm512_set1_ps(ap[i]); c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1); }
                CONV_ROWS(STEP)
    #undef STEP
                ap += CONV_MR;
            }
        }
    }
    if (d) {
        const __mmask16 m0 = lane_bits(d->lanes), m1 = lane_bits(d->lanes - 16);
#define STORE(i) if ((i) < d->rows) { \
            float *o = d->out + (size_t)(i) * d->stride; \
            const float *r = d->residual ? d->residual + (size_t)(i) * d->stride : NULL; \
            _mm512_mask_storeu_ps(o, m0, store_epilogue(c##i##0, i, m0, r, d)); \
            _mm512_mask_storeu_ps(o + 16, m1, store_epilogue(c##i##1, i, m1, r ? r + 16 : NULL, d)); }
        CONV_ROWS(STORE)
#undef STORE
        return;
    }
#define STORE(i) _mm512_store_ps(tile + (i) * CONV_NR, c##i##0); _mm512_store_ps(tile + (i) * CONV_NR + 16, c##i##1);
    CONV_ROWS(STORE)
#undef STORE
}

/* The same over 16 positions (8 accumulators), for planes too small to fill 32 lanes. */
static void conv_tile16(const tile_walk *wk, const float *restrict ap, const float *x0, float *restrict tile,
                      const tile_store *d) {
    const int channels = wk->channels, taps = wk->taps;
    const int *off = wk->off;
    const tile_masks *mk = wk->mk;
    const size_t plane = wk->plane;
    __mmask16 lo[CNNC_CONV_DIRECT_MAX_TAPS];
    for (int t = 0; t < taps; t++) lo[t] = (__mmask16)(mk->bits[t] & 0xffffu);
#define DECLARE(i) __m512 c##i##0 = _mm512_setzero_ps();
    CONV_ROWS(DECLARE)
#undef DECLARE
    for (int k = 0; k < wk->phases; k++) {
        const int t0 = wk->first[k], t1 = wk->first[k + 1];
        const float *x = x0 + (size_t)k * wk->phase_stride;
        for (int c = 0; c < channels; c++, x += plane) {
            for (int t = t0; t < t1; t++) {
                const __m512 b0 = _mm512_maskz_loadu_ps(lo[t], x + off[t]);
    #define STEP(i) c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(ap[i]), b0, c##i##0);
                CONV_ROWS(STEP)
    #undef STEP
                ap += CONV_MR;
            }
        }
    }
    if (d) {
        const __mmask16 m0 = lane_bits(d->lanes);
#define STORE(i) if ((i) < d->rows) { \
            float *o = d->out + (size_t)(i) * d->stride; \
            const float *r = d->residual ? d->residual + (size_t)(i) * d->stride : NULL; \
            _mm512_mask_storeu_ps(o, m0, store_epilogue(c##i##0, i, m0, r, d)); }
        CONV_ROWS(STORE)
#undef STORE
        return;
    }
#define STORE(i) _mm512_store_ps(tile + (i) * CONV_NR, c##i##0);
    CONV_ROWS(STORE)
#undef STORE
}

#elif defined(__AVX2__) && defined(__FMA__)

#define CONV_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define CONV_ROWS4(X) X(0) X(1) X(2) X(3)

static __m256i lane_mask(uint32_t bits) {
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i b = _mm256_set1_epi32((int)bits);
    return _mm256_cmpeq_epi32(_mm256_and_si256(b, lanes), lanes);
}

/* v = act((sum + bias) + residual) on 8 lanes, as cnnc_internal_epilogue_row computes it; the
 * residual's lanes m, or all of them with `whole` (Zen 3 runs vmaskmovps far slower than plain
 * loads and stores, so whole tiles use those). */
static inline __m256 store_epilogue(__m256 v, int row, __m256i m, const float *res, const tile_store *d, int whole) {
    if (d->bias) v = _mm256_add_ps(v, _mm256_set1_ps(d->bias[row]));
    if (d->residual) v = _mm256_add_ps(v, whole ? _mm256_loadu_ps(res) : _mm256_maskload_ps(res, m));
    return d->e ? cnnc_internal_activate8(v, d->e) : v;
}

/* The AVX2 micro-kernel over 16 positions, for the rows ROWS lists (6, the panel; or 4, for a
 * last panel of at most 4 real rows: its other rows are zeros and would cost a third of the
 * multiplies). Where every read of the tile stays inside the sample's planes (wk->inside), the
 * taps load whole vectors and clear the masked lanes with an AND, which Zen 3 runs on any FP
 * pipe; elsewhere vmaskmovps, which never touches memory under a clear lane. The masked lanes
 * are +0.0 either way: the same bits. */
#define CONV_TILE_AVX2(NAME, ROWS)                                                                       \
static void NAME(const tile_walk *wk, const float *restrict ap, const float *x0, float *restrict tile,   \
                 const tile_store *d) {                                                                 \
    const int channels = wk->channels;                                                                  \
    const int *off = wk->off;                                                                           \
    const tile_masks *mk = wk->mk;                                                                      \
    const size_t plane = wk->plane;                                                                     \
    const __m256i *lo = mk->lo, *hi = mk->hi;                                                           \
    ROWS(DECLARE)                                                                                       \
    for (int k = 0; k < wk->phases; k++) {                                                              \
        const int t0 = wk->first[k], t1 = wk->first[k + 1];                                             \
        const float *x = x0 + (size_t)k * wk->phase_stride;                                             \
        if (wk->inside == 2) {                                                                          \
            for (int c = 0; c < channels; c++, x += plane)                                              \
                for (int t = t0; t < t1; t++) {                                                         \
                    const float *b = x + off[t];                                                        \
                    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);                  \
                    ROWS(STEP)                                                                          \
                    ap += CONV_MR;                                                                      \
                }                                                                                       \
        } else if (wk->inside) {                                                                        \
            for (int c = 0; c < channels; c++, x += plane)                                              \
                for (int t = t0; t < t1; t++) {                                                         \
                    const float *b = x + off[t];                                                        \
                    const __m256 b0 = _mm256_and_ps(_mm256_loadu_ps(b), _mm256_castsi256_ps(lo[t]));    \
                    const __m256 b1 = _mm256_and_ps(_mm256_loadu_ps(b + 8), _mm256_castsi256_ps(hi[t]));\
                    ROWS(STEP)                                                                          \
                    ap += CONV_MR;                                                                      \
                }                                                                                       \
        } else {                                                                                        \
            for (int c = 0; c < channels; c++, x += plane)                                              \
                for (int t = t0; t < t1; t++) {                                                         \
                    const float *b = x + off[t];                                                        \
                    const __m256 b0 = _mm256_maskload_ps(b, lo[t]), b1 = _mm256_maskload_ps(b + 8, hi[t]); \
                    ROWS(STEP)                                                                          \
                    ap += CONV_MR;                                                                      \
                }                                                                                       \
        }                                                                                               \
    }                                                                                                   \
    if (d) {                                                                                            \
        const __m256i m0 = lane_mask(d->lanes >= 8 ? 0xffu : (1u << d->lanes) - 1u);                    \
        const __m256i m1 = lane_mask(d->lanes >= 16 ? 0xffu : d->lanes <= 8 ? 0u : (1u << (d->lanes - 8)) - 1u); \
        ROWS(STORE_OUT)                                                                                 \
        return;                                                                                         \
    }                                                                                                   \
    ROWS(STORE_TILE)                                                                                    \
}

/* The tile's lane masks as vectors (tile_masks.lo, .hi). */
static void conv_masks_fill(tile_masks *mk, int taps) {
    for (int t = 0; t < taps; t++) {
        mk->lo[t] = lane_mask(mk->bits[t] & 0xffu);
        mk->hi[t] = lane_mask((mk->bits[t] >> 8) & 0xffu);
    }
}

#define DECLARE(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define STEP(i) { const __m256 a = _mm256_broadcast_ss(ap + (i)); c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0); c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1); }
#define STORE_OUT(i) if ((i) < d->rows) {                                                                \
        float *o = d->out + (size_t)(i) * d->stride;                                                    \
        const float *r = d->residual ? d->residual + (size_t)(i) * d->stride : NULL;                    \
        if (d->lanes >= 16) {                                                                           \
            _mm256_storeu_ps(o, store_epilogue(c##i##0, i, m0, r, d, 1));                               \
            _mm256_storeu_ps(o + 8, store_epilogue(c##i##1, i, m1, r ? r + 8 : NULL, d, 1));            \
        } else {                                                                                        \
            cnnc_internal_store_part8(o, store_epilogue(c##i##0, i, m0, r, d, 0), d->lanes);             \
            if (d->lanes > 8)                                                                           \
                cnnc_internal_store_part8(o + 8, store_epilogue(c##i##1, i, m1, r ? r + 8 : NULL, d, 0), d->lanes - 8); \
        } }
#define STORE_TILE(i) _mm256_store_ps(tile + (i) * CONV_NR, c##i##0); _mm256_store_ps(tile + (i) * CONV_NR + 8, c##i##1);
CONV_TILE_AVX2(conv_tile, CONV_ROWS)
CONV_TILE_AVX2(conv_tile4, CONV_ROWS4)
#undef DECLARE
#undef STEP
#undef STORE_OUT
#undef STORE_TILE

#else

static void conv_tile(const tile_walk *wk, const float *restrict ap, const float *x0, float *restrict tile,
                      const tile_store *d) {
    const int channels = wk->channels;
    const int *off = wk->off;
    const tile_masks *mk = wk->mk;
    const size_t plane = wk->plane;
    (void)d; /* the driver stores through the tile buffer on this path */
    float acc[CONV_MR][CONV_NR];
    for (int i = 0; i < CONV_MR; i++)
        for (int l = 0; l < CONV_NR; l++) acc[i][l] = 0.0f;
    for (int k = 0; k < wk->phases; k++) {
        const int t0 = wk->first[k], t1 = wk->first[k + 1];
        const float *x = x0 + (size_t)k * wk->phase_stride;
        for (int c = 0; c < channels; c++, x += plane) {
            for (int t = t0; t < t1; t++) {
                float b[CONV_NR];
                for (int l = 0; l < CONV_NR; l++) b[l] = (mk->bits[t] >> l) & 1u ? x[off[t] + l] : 0.0f;
                for (int i = 0; i < CONV_MR; i++)
                    for (int l = 0; l < CONV_NR; l++) acc[i][l] += ap[i] * b[l];
                ap += CONV_MR;
            }
        }
    }
    for (int i = 0; i < CONV_MR; i++)
        for (int l = 0; l < CONV_NR; l++) tile[i * CONV_NR + l] = acc[i][l];
}

#endif

/* ---------------------------------------------------------------------------------------
 * The driver: tiles of NR positions, panels of MR channels, stores with the epilogue
 * ------------------------------------------------------------------------------------- */

/* Bits [a, b) of a 32-lane mask (0 <= a <= b <= 32). */
static inline uint32_t conv_lane_span(int a, int b) {
    return b - a >= 32 ? 0xffffffffu : ((1u << (b - a)) - 1u) << a;
}

void cnnc_conv_direct(const cnnc_conv_geometry *g, int m, const float *packed, int n, const float *image,
                      size_t image_stride, float *out, size_t out_stride, int j0, int nj, const cnnc_epilogue *e) {
    _Alignas(64) float tile[CONV_MR * CONV_NR];
    int off[CNNC_CONV_DIRECT_MAX_TAPS];
    tile_masks mk;
    conv_plan pl;
    if (m <= 0 || nj <= 0 || n <= 0 || !conv_plan_make(g, &pl)) return;
    /* stride 1: the image itself; else its phase planes (cnnc_conv_phase_split) */
    const int H = pl.hs, W = pl.ws, P = g->out_h, Q = g->out_w, taps = pl.taps;
    const int crs = g->channels * taps, total = P * W, pq = P * Q;
    const size_t plane = (size_t)H * W;
    /* the distinct row and column shifts, and which each tap takes */
    int rows[CNNC_CONV_DIRECT_MAX_TAPS], cols[CNNC_CONV_DIRECT_MAX_TAPS], nrows = 0, ncols = 0;
    int row_of[CNNC_CONV_DIRECT_MAX_TAPS], col_of[CNNC_CONV_DIRECT_MAX_TAPS];
    for (int t = 0; t < taps; t++) {
        off[t] = pl.dr[t] * W + pl.ds[t];
        int i = 0;
        while (i < nrows && rows[i] != pl.dr[t]) i++;
        if (i == nrows) rows[nrows++] = pl.dr[t];
        row_of[t] = i;
        i = 0;
        while (i < ncols && cols[i] != pl.ds[t]) i++;
        if (i == ncols) cols[ncols++] = pl.ds[t];
        col_of[t] = i;
    }
    tile_walk walk = {g->channels, taps, pl.phases, pl.first, plane, (size_t)g->channels * plane, off, &mk, 0};
    /* the reach of a tile's reads around its first position: [j + lowest, j + highest) */
    int lowest = 0, highest = 0;
    for (int t = 0; t < taps; t++) {
        if (t == 0 || off[t] < lowest) lowest = off[t];
        if (t == 0 || off[t] > highest) highest = off[t];
    }
    const long long span = (long long)pl.phases * g->channels * (long long)plane;
    const long long reach = (long long)(pl.phases - 1) * g->channels * (long long)plane +
                            (long long)(g->channels - 1) * (long long)plane + highest + CONV_NR;
    const int end = j0 + nj < total ? j0 + nj : total;
    /* tiles of NR positions, or of 16 where the plane would leave most of 32 lanes empty */
    int nr = CONV_NR;
#if defined(__AVX512F__)
    if ((total + 15) / 16 * 16 * 5 < (total + 31) / 32 * 32 * 4) nr = 16;
#endif
    for (int j = j0; j < end; j += nr) {
        const int lanes = end - j < nr ? end - j : nr;
        /* masks: the shifted rows and columns of each tap that fall inside the plane; and the
         * runs of lanes that are real outputs (q < Q), and where they go. The tile's lanes go
         * in segments of one row (p fixed, q counting up from qs), one division per tile. */
        uint32_t row_ok[CNNC_CONV_DIRECT_MAX_TAPS], col_ok[CNNC_CONV_DIRECT_MAX_TAPS];
        for (int i = 0; i < nrows; i++) row_ok[i] = 0;
        for (int i = 0; i < ncols; i++) col_ok[i] = 0;
        int run_lane[CONV_NR], run_count[CONV_NR], run_out[CONV_NR], runs = 0;
        for (int l = 0, p = j / W, qs = j % W, len; l < lanes; l += len, p++, qs = 0) {
            len = W - qs < lanes - l ? W - qs : lanes - l;
            const uint32_t seg = conv_lane_span(l, l + len);
            for (int i = 0; i < nrows; i++)
                if (p + rows[i] >= 0 && p + rows[i] < H) row_ok[i] |= seg;
            for (int i = 0; i < ncols; i++) {
                /* q in [qs, qs + len) with q + cols[i] in [0, W) */
                const int lo = qs > -cols[i] ? qs : -cols[i], hi = qs + len < W - cols[i] ? qs + len : W - cols[i];
                if (lo < hi) col_ok[i] |= conv_lane_span(l + lo - qs, l + hi - qs);
            }
            if (qs < Q) {
                run_lane[runs] = l;
                run_count[runs] = Q - qs < len ? Q - qs : len;
                run_out[runs] = p * Q + qs;
                runs++;
            }
        }
        for (int t = 0; t < taps; t++) mk.bits[t] = row_ok[row_of[t]] & col_ok[col_of[t]];
        walk.inside = j + lowest >= 0 && j + reach <= span;
        if (walk.inside) {
            uint32_t all = 0xffffu;
            for (int t = 0; t < taps; t++) all &= mk.bits[t];
            if (all == 0xffffu) walk.inside = 2; /* and no lane masked: plain loads */
        }
#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
        if (walk.inside != 2) conv_masks_fill(&mk, taps);
#endif
        /* the tile of every sample, masks and runs shared; rows in panels */
        for (int b = 0; b < n; b++) {
            const float *x = image + (size_t)b * image_stride + j;
            float *o = out + (size_t)b * out_stride;
            const float *res = e && e->residual ? e->residual + (size_t)b * e->residual_stride : NULL;
            for (int i0 = 0; i0 < m; i0 += CONV_MR) {
                const int mr = m - i0 < CONV_MR ? m - i0 : CONV_MR;
                const float *panel = packed + (size_t)(i0 / CONV_MR) * crs * CONV_MR;
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
                if (Q == W) {
                    /* positions are the output's own: straight from the registers */
                    const tile_store d = {o + (size_t)i0 * pq + j, res ? res + (size_t)i0 * pq + j : NULL,
                                          e && e->bias ? e->bias + i0 : NULL, (size_t)pq, mr, lanes, e};
#if defined(__AVX512F__)
                    if (nr == 16)
                        conv_tile16(&walk, panel, x, tile, &d);
                    else
#else
                    if (mr <= 4)
                        conv_tile4(&walk, panel, x, tile, &d);
                    else
#endif
                        conv_tile(&walk, panel, x, tile, &d);
                    continue;
                }
#endif
#if defined(__AVX512F__)
                if (nr == 16)
                    conv_tile16(&walk, panel, x, tile, NULL);
                else
#elif defined(__AVX2__) && defined(__FMA__)
                if (mr <= 4)
                    conv_tile4(&walk, panel, x, tile, NULL);
                else
#endif
                    conv_tile(&walk, panel, x, tile, NULL);
                for (int i = 0; i < mr; i++) {
                    const int row = i0 + i;
                    const int has_bias = e && e->bias;
                    const float bias = has_bias ? e->bias[row] : 0.0f;
                    for (int u = 0; u < runs; u++) {
                        const size_t at = (size_t)row * pq + (size_t)run_out[u];
                        cnnc_internal_epilogue_row(o + at, tile + i * CONV_NR + run_lane[u], res ? res + at : NULL,
                                                   run_count[u], has_bias, bias, e);
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Weight gradient of a stride-1 convolution
 *
 * With positions numbered over the input's width, j = p*W + q, every tap (c, r, s) of a vector
 * of positions is again one masked load at image + c*H*W + j + off[r,s], and
 * d weight[k][c][r][s] = sum over samples and j of d_out[k][j] * that load: a product whose
 * reduction runs along contiguous memory. Where the output is narrower than the input
 * (Q < W), each chunk's rows of d_out are first spread to that numbering, zeros at q >= Q. The
 * micro-kernel keeps WG_MR rows x 3 taps of one channel as vectors of lane partial sums over a
 * block of samples; the plane is walked in chunks of WG_CHUNK positions (their masks and rows
 * of d_out stay in L1), the partial sums of a tile go to a buffer between blocks and chunks,
 * and each weight's lanes are summed in lane order at the end. The order of every sum depends
 * only on the geometry and n (chunk, then sample, then vector, then lane): the caller may
 * split rows, channels and taps between threads and gets the same bits.
 * ------------------------------------------------------------------------------------- */

#define WG_MR CNNC_WG_ROWS
#if defined(__AVX512F__)
#define WG_L 16
#else
#define WG_L 8
#endif
#define WG_VECTORS 64                     /* vectors of positions per chunk */
#define WG_CHUNK (WG_VECTORS * WG_L)
#define WG_PART_FLOATS 9216               /* lane partial sums of one call (36 KiB of stack) */
#define WG_SPREAD_FLOATS 8192             /* rows of d out spread to the input's width (32 KiB) */
#define WG_L1_FLOATS 4096                 /* what a block of samples may keep in L1 (16 KiB) */

int cnnc_conv_weight_grad_direct_fits(const cnnc_conv_geometry *g) {
    return g->stride_h == 1 && g->stride_w == 1 && cnnc_conv_direct_fits(g);
}

#if defined(__AVX512F__)

#define WG_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* part[i][u][lane] += sum over samples b < nb and vectors v < nv of (dy[i] + b * dy_stride)[v]
 * * (x + b * x_stride at tap u)[v], rows i < 8, taps u < 3, in the order b then v. */
static void wg_tile(int nb, int nv, int full, const float *const *dy, size_t dy_stride, const float *x, size_t x_stride,
                    const int *off, const uint32_t *bits, const uint32_t *valid, float *restrict part) {
    (void)full; /* the masked loads cost no more than plain ones here */
#define DECLARE(i) __m512 a##i##0 = _mm512_load_ps(part + ((i) * 3 + 0) * WG_L), \
                          a##i##1 = _mm512_load_ps(part + ((i) * 3 + 1) * WG_L), \
                          a##i##2 = _mm512_load_ps(part + ((i) * 3 + 2) * WG_L);
    WG_ROWS(DECLARE)
#undef DECLARE
    for (int b = 0; b < nb; b++, x += x_stride) {
        const size_t db = (size_t)b * dy_stride;
        for (int v = 0; v < nv; v++) {
            const float *xv = x + v * WG_L;
            const __m512 x0 = _mm512_maskz_loadu_ps((__mmask16)bits[v * 3 + 0], xv + off[0]);
            const __m512 x1 = _mm512_maskz_loadu_ps((__mmask16)bits[v * 3 + 1], xv + off[1]);
            const __m512 x2 = _mm512_maskz_loadu_ps((__mmask16)bits[v * 3 + 2], xv + off[2]);
            const __mmask16 live = (__mmask16)valid[v];
#define STEP(i) { const __m512 d = _mm512_maskz_loadu_ps(live, dy[i] + db + v * WG_L); \
                  a##i##0 = _mm512_fmadd_ps(d, x0, a##i##0); a##i##1 = _mm512_fmadd_ps(d, x1, a##i##1); \
                  a##i##2 = _mm512_fmadd_ps(d, x2, a##i##2); }
            WG_ROWS(STEP)
#undef STEP
        }
    }
#define STORE(i) _mm512_store_ps(part + ((i) * 3 + 0) * WG_L, a##i##0); _mm512_store_ps(part + ((i) * 3 + 1) * WG_L, a##i##1); \
                 _mm512_store_ps(part + ((i) * 3 + 2) * WG_L, a##i##2);
    WG_ROWS(STORE)
#undef STORE
}

#undef WG_ROWS

#elif defined(__AVX2__) && defined(__FMA__)

#define WG_ROWS(X) X(0) X(1) X(2) X(3)

/* Lane l's sign bit set where bit l of `bits` is (what vmaskmovps reads): one shift by a
 * constant it may take from memory, so the mask needs no register of its own. */
static inline __m256i wg_sign_mask(uint32_t bits) {
    return _mm256_sllv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24));
}

/* As the AVX-512 tile on 4 rows. Its 12 accumulators, 3 taps and one row of d out take all 16
 * ymm registers: d out is read with plain loads for the whole vectors (`full` of the nv), the
 * lane mask only for the last, so that no accumulator is spilled to the stack (a spilled one
 * makes every step wait for a store to be forwarded: 18 cycles a vector instead of 6). */
static void wg_tile(int nb, int nv, int full, const float *const *dy, size_t dy_stride, const float *x, size_t x_stride,
                    const int *off, const uint32_t *bits, const uint32_t *valid, float *restrict part) {
#define DECLARE(i) __m256 a##i##0 = _mm256_load_ps(part + ((i) * 3 + 0) * WG_L), \
                          a##i##1 = _mm256_load_ps(part + ((i) * 3 + 1) * WG_L), \
                          a##i##2 = _mm256_load_ps(part + ((i) * 3 + 2) * WG_L);
    WG_ROWS(DECLARE)
#undef DECLARE
#define TAPS(v)                                                                                 \
    const float *xv = x + (v) * WG_L;                                                           \
    const __m256 x0 = _mm256_maskload_ps(xv + off[0], wg_sign_mask(bits[(v) * 3 + 0]));         \
    const __m256 x1 = _mm256_maskload_ps(xv + off[1], wg_sign_mask(bits[(v) * 3 + 1]));         \
    const __m256 x2 = _mm256_maskload_ps(xv + off[2], wg_sign_mask(bits[(v) * 3 + 2]));
#define FMAS(i, d) a##i##0 = _mm256_fmadd_ps(d, x0, a##i##0); a##i##1 = _mm256_fmadd_ps(d, x1, a##i##1); \
                   a##i##2 = _mm256_fmadd_ps(d, x2, a##i##2);
    for (int b = 0; b < nb; b++, x += x_stride) {
        const size_t db = (size_t)b * dy_stride;
        for (int v = 0; v < full; v++) {
            TAPS(v)
#define STEP(i) { __m256 d = _mm256_loadu_ps(dy[i] + db + v * WG_L); __asm__("" : "+x"(d)); FMAS(i, d) }
            WG_ROWS(STEP)
#undef STEP
        }
        if (full < nv) {
            TAPS(full)
            const __m256i live = wg_sign_mask(valid[full]);
#define STEP(i) { const __m256 d = _mm256_maskload_ps(dy[i] + db + full * WG_L, live); FMAS(i, d) }
            WG_ROWS(STEP)
#undef STEP
        }
    }
#undef TAPS
#undef FMAS
#define STORE(i) _mm256_store_ps(part + ((i) * 3 + 0) * WG_L, a##i##0); _mm256_store_ps(part + ((i) * 3 + 1) * WG_L, a##i##1); \
                 _mm256_store_ps(part + ((i) * 3 + 2) * WG_L, a##i##2);
    WG_ROWS(STORE)
#undef STORE
}

#undef WG_ROWS

#else

static void wg_tile(int nb, int nv, int full, const float *const *dy, size_t dy_stride, const float *x, size_t x_stride,
                    const int *off, const uint32_t *bits, const uint32_t *valid, float *restrict part) {
    (void)full;
    for (int b = 0; b < nb; b++, x += x_stride)
        for (int v = 0; v < nv; v++) {
            const float *xv = x + v * WG_L;
            for (int u = 0; u < 3; u++)
                for (int l = 0; l < WG_L; l++) {
                    const float xl = (bits[v * 3 + u] >> l) & 1u ? xv[off[u] + l] : 0.0f;
                    for (int i = 0; i < WG_MR; i++) {
                        const float d = (valid[v] >> l) & 1u ? dy[i][(size_t)b * dy_stride + v * WG_L + l] : 0.0f;
                        part[(i * 3 + u) * WG_L + l] += d * xl;
                    }
                }
        }
}

#endif

void cnnc_conv_weight_grad_direct_taps(const cnnc_conv_geometry *g, int m, int tap0, int tap1, const float *d_out,
                                       size_t d_out_stride, int n, const float *image, size_t image_stride,
                                       float *d_weight, int ldw) {
    _Alignas(64) float part[WG_PART_FLOATS];
    _Alignas(64) float spread[WG_SPREAD_FLOATS];
    uint32_t bits[WG_VECTORS * (CNNC_CONV_DIRECT_MAX_TAPS + 2)], valid[WG_VECTORS];
    int off[CNNC_CONV_DIRECT_MAX_TAPS + 2];
    const int H = g->height, W = g->width, P = g->out_h, Q = g->out_w, R = g->kernel_h, S = g->kernel_w;
    const int taps = R * S, total = P * W, channels = g->channels;
    const size_t plane = (size_t)H * W, pq = (size_t)P * Q;
    if (m <= 0 || n <= 0 || channels <= 0 || tap0 < 0 || tap1 > taps || tap0 >= tap1) return;
    /* the taps [tap0, tap1) in triples, the last one padded with taps that read nothing */
    const int nt = tap1 - tap0, triples = (nt + 2) / 3;
    for (int u = 0; u < triples * 3; u++) {
        const int t = tap0 + u;
        off[u] = u < nt ? ((t / S) * g->dilation_h - g->pad_top) * W + (t % S) * g->dilation_w - g->pad_left : 0;
    }
    /* channels per block: one row tile's partial sums (WG_MR x the triples) fit */
    const int per_channel = WG_MR * triples * 3 * WG_L;
    int cb = WG_PART_FLOATS / per_channel;
    if (cb < 1) cb = 1; /* taps <= 49: 8 x 51 x 16 floats per channel fit */
    for (int i0 = 0; i0 < m; i0 += WG_MR) {
        const int mr = m - i0 < WG_MR ? m - i0 : WG_MR;
        for (int c0 = 0; c0 < channels; c0 += cb) {
            const int nc = channels - c0 < cb ? channels - c0 : cb;
            memset(part, 0, sizeof(float) * (size_t)nc * per_channel);
            for (int j0 = 0; j0 < total; j0 += WG_CHUNK) {
                const int len = total - j0 < WG_CHUNK ? total - j0 : WG_CHUNK, nv = (len + WG_L - 1) / WG_L;
                /* the masks of the chunk: lanes that exist, and whose tap lies inside the image */
                for (int v = 0; v < nv; v++) {
                    uint32_t row_ok[CNNC_CONV_DIRECT_MAX_TAPS], col_ok[CNNC_CONV_DIRECT_MAX_TAPS], live = 0;
                    for (int r = 0; r < R; r++) row_ok[r] = 0;
                    for (int s = 0; s < S; s++) col_ok[s] = 0;
                    for (int l = 0; l < WG_L && v * WG_L + l < len; l++) {
                        const int j = j0 + v * WG_L + l, p = j / W, q = j % W;
                        live |= 1u << l;
                        for (int r = 0; r < R; r++) {
                            const int h = p + r * g->dilation_h - g->pad_top;
                            if (h >= 0 && h < H) row_ok[r] |= 1u << l;
                        }
                        for (int s = 0; s < S; s++) {
                            const int w = q + s * g->dilation_w - g->pad_left;
                            if (w >= 0 && w < W) col_ok[s] |= 1u << l;
                        }
                    }
                    valid[v] = live;
                    /* by triple of taps, then vector: what one wg_tile call reads */
                    for (int u = 0; u < triples * 3; u++)
                        bits[((size_t)(u / 3) * WG_VECTORS + v) * 3 + u % 3] =
                            u < nt ? row_ok[(tap0 + u) / S] & col_ok[(tap0 + u) % S] : 0;
                }
                /* samples in blocks, each tile's lane sums kept in registers over a block: as
                 * many as keep a channel's rows of the image and of d out in L1 (WG_L1_FLOATS)
                 * while its triples of taps pass over them, and, where the output is narrower
                 * than the input, as many as the rows of d out spread to the input's width fit
                 * (q >= Q holding 0) */
                const int rs = nv * WG_L;
                int sb = WG_L1_FLOATS / ((WG_MR + 1) * rs);
                if (Q != W && sb > WG_SPREAD_FLOATS / (WG_MR * rs)) sb = WG_SPREAD_FLOATS / (WG_MR * rs);
                if (sb < 1) sb = 1;
                for (int b0 = 0; b0 < n; b0 += sb) {
                    const int nb = n - b0 < sb ? n - b0 : sb;
                    const float *dy[WG_MR];
                    size_t dy_stride;
                    if (Q == W) {
                        for (int i = 0; i < WG_MR; i++)
                            dy[i] = d_out + (size_t)b0 * d_out_stride + (size_t)(i0 + (i < mr ? i : 0)) * pq + j0;
                        dy_stride = d_out_stride;
                    } else {
                        for (int b = 0; b < nb; b++)
                            for (int i = 0; i < mr; i++) {
                                const float *src = d_out + (size_t)(b0 + b) * d_out_stride + (size_t)(i0 + i) * pq;
                                float *dst = spread + ((size_t)b * WG_MR + i) * rs;
                                for (int l = 0; l < len;) {
                                    const int j = j0 + l, p = j / W, q = j % W, run = W - q < len - l ? W - q : len - l;
                                    for (int u = 0; u < run; u++) dst[l + u] = q + u < Q ? src[(size_t)p * Q + q + u] : 0.0f;
                                    l += run;
                                }
                            }
                        for (int i = 0; i < WG_MR; i++) dy[i] = spread + (size_t)(i < mr ? i : 0) * rs;
                        dy_stride = (size_t)WG_MR * rs;
                    }
                    for (int c = 0; c < nc; c++) {
                        const float *x = image + (size_t)b0 * image_stride + (size_t)(c0 + c) * plane + j0;
                        for (int t = 0; t < triples; t++)
                            wg_tile(nb, nv, len / WG_L, dy, dy_stride, x, image_stride, off + 3 * t, bits + (size_t)t * WG_VECTORS * 3,
                                    valid, part + ((size_t)c * triples + t) * WG_MR * 3 * WG_L);
                    }
                }
            }
            /* each weight: its lanes in order, added to d weight */
            for (int i = 0; i < mr; i++)
                for (int c = 0; c < nc; c++)
                    for (int u = 0; u < nt; u++) {
                        const float *lanes = part + (((size_t)c * triples + u / 3) * WG_MR * 3 + (size_t)i * 3 + u % 3) * WG_L;
                        float sum = 0.0f;
                        for (int l = 0; l < WG_L; l++) sum += lanes[l];
                        d_weight[(size_t)(i0 + i) * ldw + (size_t)(c0 + c) * taps + tap0 + u] += sum;
                    }
        }
    }
}

void cnnc_conv_weight_grad_direct(const cnnc_conv_geometry *g, int m, const float *d_out, size_t d_out_stride,
                                  int n, const float *image, size_t image_stride, float *d_weight, int ldw) {
    cnnc_conv_weight_grad_direct_taps(g, m, 0, g->kernel_h * g->kernel_w, d_out, d_out_stride, n, image, image_stride,
                                      d_weight, ldw);
}

/* ---------------------------------------------------------------------------------------
 * Weight gradient with the filters in the lanes
 *
 * The product runs over the output's own positions: each sample's d out is transposed to rows
 * of WGF_ROWS filters per position (the transpose in 8 x 8 blocks), and for a group of
 * WGF_PAIRS (channel, tap) pairs, acc[pair][filter] += x at the pair's channel and tap (one
 * broadcast) * the position's row of d out, position by position. No masks and none of the
 * direct kernel's non-output positions (LeNet's c2: 4 of every 14). Where a tap can leave the
 * image (padding), each sample's channels are first copied into a zero-bordered buffer, so
 * that every read is inside it: the zeros add nothing. The pairs run over channels and taps
 * together (a 3x3 layer's 9 taps of 2 channels make 3 full groups), and each weight is one
 * chain over samples, then positions in order, in its own lane: the caller may split filters,
 * channels and taps between threads and gets the same bits.
 * ------------------------------------------------------------------------------------- */

#define WGF_ROWS 16          /* filters per call: two 8-lane vectors */
#define WGF_PAIRS 6          /* (channel, tap) pairs per group: 12 accumulators */
#define WGF_CHUNK 128        /* positions transposed at a time (8 KiB) */
#define WGF_PAD_FLOATS 16384 /* one sample's zero-bordered channels (64 KiB of stack) */

/* The padded planes' height and width (>= the image's), or 0 where the geometry is not
 * computable: reads reach rows -pad_top .. (P-1)*SH + (R-1)*DH - pad_top. */
static int wgf_padded(const cnnc_conv_geometry *g, long long *hp, long long *wp) {
    if (g->pad_top < 0 || g->pad_left < 0 || g->stride_h <= 0 || g->stride_w <= 0 || g->dilation_h <= 0 ||
        g->dilation_w <= 0 || g->kernel_h <= 0 || g->kernel_w <= 0 || g->out_h <= 0 || g->out_w <= 0 ||
        g->channels <= 0 || g->height <= 0 || g->width <= 0 || g->kernel_h * g->kernel_w > CNNC_CONV_DIRECT_MAX_TAPS ||
        g->pad_top > INT_MAX / 4 || g->pad_left > INT_MAX / 4 || g->height > INT_MAX / 4 || g->width > INT_MAX / 4 ||
        g->out_h > INT_MAX / 4 || g->out_w > INT_MAX / 4)
        return 0;
    const long long reach_h = (long long)(g->out_h - 1) * g->stride_h + (long long)(g->kernel_h - 1) * g->dilation_h + 1;
    const long long reach_w = (long long)(g->out_w - 1) * g->stride_w + (long long)(g->kernel_w - 1) * g->dilation_w + 1;
    const long long h = (long long)g->height + g->pad_top, w = (long long)g->width + g->pad_left;
    *hp = reach_h > h ? reach_h : h;
    *wp = reach_w > w ? reach_w : w;
    return *hp <= INT_MAX / 2 && *wp <= INT_MAX / 2 && *hp * *wp <= INT_MAX / 2;
}

static int wgf_needs_padding(const cnnc_conv_geometry *g, long long hp, long long wp) {
    return g->pad_top != 0 || g->pad_left != 0 || hp != g->height || wp != g->width;
}

int cnnc_conv_weight_grad_filters_fits(const cnnc_conv_geometry *g) {
    long long hp, wp;
    if (!wgf_padded(g, &hp, &wp)) return 0;
    return !wgf_needs_padding(g, hp, wp) || hp * wp <= WGF_PAD_FLOATS;
}

#if defined(__AVX2__) && defined(__FMA__)

/* part[u][f] += sum over the len positions j of x[xo[j] + off[u]] * dyt[j][f], u < 6, f < 16 */
static void wgf_tile(int len, const float *x, const ptrdiff_t *xo, const ptrdiff_t *off, const float *dyt, float *restrict part) {
#define DECLARE(u) __m256 a##u##0 = _mm256_load_ps(part + (u) * 16), a##u##1 = _mm256_load_ps(part + (u) * 16 + 8);
    DECLARE(0) DECLARE(1) DECLARE(2) DECLARE(3) DECLARE(4) DECLARE(5)
#undef DECLARE
    const float *x0 = x + off[0], *x1 = x + off[1], *x2 = x + off[2], *x3 = x + off[3], *x4 = x + off[4], *x5 = x + off[5];
    for (int j = 0; j < len; j++) {
        const ptrdiff_t o = xo[j];
        const __m256 d0 = _mm256_load_ps(dyt + (size_t)j * 16), d1 = _mm256_load_ps(dyt + (size_t)j * 16 + 8);
#define STEP(u) { const __m256 v = _mm256_broadcast_ss(x##u + o); a##u##0 = _mm256_fmadd_ps(v, d0, a##u##0); \
                  a##u##1 = _mm256_fmadd_ps(v, d1, a##u##1); }
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5)
#undef STEP
    }
#define STORE(u) _mm256_store_ps(part + (u) * 16, a##u##0); _mm256_store_ps(part + (u) * 16 + 8, a##u##1);
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
#undef STORE
}

/* dyt[j][f] = rows[f][j] for j < len, f < 16 (rows `stride` floats apart; f >= m: 0) */
static void wgf_transpose(const float *rows, size_t stride, int m, int len, float *restrict dyt) {
    int j = 0;
    if (m == 16)
        for (; j + 8 <= len; j += 8)
            for (int h = 0; h < 2; h++) {
                __m256 r[8], t[8];
                for (int f = 0; f < 8; f++) r[f] = _mm256_loadu_ps(rows + (size_t)(8 * h + f) * stride + j);
                for (int f = 0; f < 8; f += 2) {
                    t[f] = _mm256_unpacklo_ps(r[f], r[f + 1]);
                    t[f + 1] = _mm256_unpackhi_ps(r[f], r[f + 1]);
                }
                for (int f = 0; f < 8; f += 4) {
                    r[f] = _mm256_shuffle_ps(t[f], t[f + 2], 0x44);
                    r[f + 1] = _mm256_shuffle_ps(t[f], t[f + 2], 0xEE);
                    r[f + 2] = _mm256_shuffle_ps(t[f + 1], t[f + 3], 0x44);
                    r[f + 3] = _mm256_shuffle_ps(t[f + 1], t[f + 3], 0xEE);
                }
                /* r[0..3]: positions j+0, j+1, j+2, j+3 of filters 0-3 (low half) and j+4.. (high
                 * half); r[4..7] likewise for filters 4-7 */
                for (int u = 0; u < 4; u++) {
                    _mm256_store_ps(dyt + (size_t)(j + u) * 16 + 8 * h, _mm256_permute2f128_ps(r[u], r[u + 4], 0x20));
                    _mm256_store_ps(dyt + (size_t)(j + u + 4) * 16 + 8 * h, _mm256_permute2f128_ps(r[u], r[u + 4], 0x31));
                }
            }
    for (; j < len; j++)
        for (int f = 0; f < 16; f++) dyt[(size_t)j * 16 + f] = f < m ? rows[(size_t)f * stride + j] : 0.0f;
}

#else

static void wgf_tile(int len, const float *x, const ptrdiff_t *xo, const ptrdiff_t *off, const float *dyt, float *restrict part) {
    for (int j = 0; j < len; j++)
        for (int u = 0; u < WGF_PAIRS; u++) {
            const float v = x[off[u] + xo[j]];
            for (int f = 0; f < WGF_ROWS; f++) part[u * 16 + f] += v * dyt[(size_t)j * 16 + f];
        }
}

static void wgf_transpose(const float *rows, size_t stride, int m, int len, float *restrict dyt) {
    for (int j = 0; j < len; j++)
        for (int f = 0; f < 16; f++) dyt[(size_t)j * 16 + f] = f < m ? rows[(size_t)f * stride + j] : 0.0f;
}

#endif

void cnnc_conv_weight_grad_filters(const cnnc_conv_geometry *g, int m, int tap0, int tap1, const float *d_out,
                                   size_t d_out_stride, int n, const float *image, size_t image_stride,
                                   float *d_weight, int ldw) {
    enum { MAX_PAIRS = WG_PART_FLOATS / WGF_ROWS };
    _Alignas(64) float part[WG_PART_FLOATS];
    _Alignas(64) float dyt[WGF_CHUNK * WGF_ROWS];
    _Alignas(64) float padded[WGF_PAD_FLOATS];
    ptrdiff_t xo[WGF_CHUNK];
    ptrdiff_t off[MAX_PAIRS + WGF_PAIRS];
    long long hp_, wp_;
    const int taps = g->kernel_h * g->kernel_w;
    if (m <= 0 || n <= 0 || tap0 < 0 || tap1 > taps || tap0 >= tap1 || !cnnc_conv_weight_grad_filters_fits(g) ||
        !wgf_padded(g, &hp_, &wp_))
        return;
    const int H = g->height, W = g->width, P = g->out_h, Q = g->out_w, S = g->kernel_w, PT = g->pad_top, PL = g->pad_left;
    const int channels = g->channels, pq = P * Q, nt = tap1 - tap0;
    const int pad = wgf_needs_padding(g, hp_, wp_);
    const int XW = pad ? (int)wp_ : W;                     /* the width reads see */
    const size_t xplane = pad ? (size_t)hp_ * (size_t)wp_ : (size_t)H * W;
    /* channels a block: their pairs' sums fit `part`, their padded planes `padded` */
    int cb = MAX_PAIRS / nt;
    if (pad && (size_t)cb * xplane > WGF_PAD_FLOATS) cb = (int)(WGF_PAD_FLOATS / xplane);
    for (int i0 = 0; i0 < m; i0 += WGF_ROWS) {
        const int mr = m - i0 < WGF_ROWS ? m - i0 : WGF_ROWS;
        for (int c0 = 0; c0 < channels; c0 += cb) {
            const int nc = channels - c0 < cb ? channels - c0 : cb;
            const int pairs = nc * nt, groups = (pairs + WGF_PAIRS - 1) / WGF_PAIRS;
            /* pair u: channel u / nt, tap tap0 + u % nt; the last group's spare pairs read
             * offset 0 (inside) and their sums are dropped */
            for (int u = 0; u < groups * WGF_PAIRS; u++) {
                const int c = u / nt, t = tap0 + u % nt;
                off[u] = u < pairs ? (ptrdiff_t)c * (ptrdiff_t)xplane + (ptrdiff_t)(t / S) * g->dilation_h * XW +
                                         (ptrdiff_t)(t % S) * g->dilation_w
                                   : 0;
            }
            memset(part, 0, sizeof(float) * (size_t)groups * WGF_PAIRS * WGF_ROWS);
            if (pad) memset(padded, 0, sizeof(float) * (size_t)nc * xplane);
            for (int b = 0; b < n; b++) {
                const float *x = image + (size_t)b * image_stride + (size_t)c0 * H * W;
                if (pad) { /* the interior; the border stays zero from the memset above */
                    for (int c = 0; c < nc; c++)
                        for (int h = 0; h < H; h++) {
                            float *restrict to = padded + (size_t)c * xplane + (size_t)(h + PT) * XW + PL;
                            const float *from = x + ((size_t)c * H + h) * W;
                            for (int w = 0; w < W; w++) to[w] = from[w];
                        }
                    x = padded;
                }
                for (int j0 = 0; j0 < pq; j0 += WGF_CHUNK) {
                    const int len = pq - j0 < WGF_CHUNK ? pq - j0 : WGF_CHUNK;
                    wgf_transpose(d_out + (size_t)b * d_out_stride + (size_t)i0 * pq + j0, (size_t)pq, mr, len, dyt);
                    for (int l = 0; l < len; l++) {
                        const int p = (j0 + l) / Q, q = (j0 + l) % Q;
                        xo[l] = (ptrdiff_t)p * g->stride_h * XW + (ptrdiff_t)q * g->stride_w;
                    }
                    for (int k = 0; k < groups; k++)
                        wgf_tile(len, x, xo, off + (size_t)k * WGF_PAIRS, dyt, part + (size_t)k * WGF_PAIRS * WGF_ROWS);
                }
            }
            for (int i = 0; i < mr; i++)
                for (int u = 0; u < pairs; u++)
                    d_weight[(size_t)(i0 + i) * ldw + (size_t)(c0 + u / nt) * taps + tap0 + u % nt] +=
                        part[(size_t)u * WGF_ROWS + i];
        }
    }
}

void cnnc_conv_reference(const cnnc_conv_geometry *g, int m, const float *weights, const float *image,
                         float *out, const cnnc_epilogue *e) {
    const int P = g->out_h, Q = g->out_w, R = g->kernel_h, S = g->kernel_w;
    for (int k = 0; k < m; k++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                double sum = 0.0;
                for (int c = 0; c < g->channels; c++)
                    for (int r = 0; r < R; r++)
                        for (int s = 0; s < S; s++) {
                            const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
                            const int w = q * g->stride_w - g->pad_left + s * g->dilation_w;
                            if (h < 0 || h >= g->height || w < 0 || w >= g->width) continue;
                            sum += (double)weights[(((size_t)k * g->channels + c) * R + r) * S + s] *
                                   image[((size_t)c * g->height + h) * g->width + w];
                        }
                const size_t at = ((size_t)k * P + p) * Q + q;
                float v = (float)sum;
                float one[1] = {v};
                cnnc_internal_epilogue_row(one, one, e && e->residual ? e->residual + at : NULL, 1,
                                           e && e->bias != NULL, e && e->bias ? e->bias[k] : 0.0f, e);
                out[at] = one[0];
            }
}

/* The runtime is also compiled as one file (tools/embed_runtime.py): keep these names local. */
#undef CONV_MR
#undef CONV_NR
#undef CONV_ROWS
#undef WG_L
#undef WG_MR
#undef WG_VECTORS
#undef WG_CHUNK
#undef WG_PART_FLOATS
#undef WG_SPREAD_FLOATS
#undef WG_L1_FLOATS
#undef WGF_ROWS
#undef WGF_PAIRS
#undef WGF_PAD_FLOATS
#undef WGF_CHUNK
