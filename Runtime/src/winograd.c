/*
 * winograd.c — Winograd F(4x4, 3x3) for stride-1 3x3 convolutions on NCHW, in three steps per
 * block of NT output tiles of one sample (Lavin and Gray, "Fast algorithms for convolutional
 * neural networks", 2016). With d the 6x6 input patch of one channel and g one 3x3 filter,
 * each 4x4 output tile is
 *
 *   Y = A^T [ sum_c U_kc .* (B^T d_c B) ] A,   U_kc = G g_kc G^T (once, in <model>_prepare)
 *
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 *
 * 1. cnnc_winograd_f4_input: V[e][c][u] = (B^T d_cu B)[e] for the block's tiles u, vectorized
 *    over tiles (16 lanes with AVX-512, 8 with AVX2 + FMA, 1 in plain C), B^T along the columns
 *    of each patch, then B along its rows. AVX-512 reads the image rows whole (see "AVX-512:
 *    the transforms on runs of tiles" below), AVX2 too where tile rows fill its 8-lane pieces
 *    ("AVX2: the input transform on runs of tiles"); otherwise AVX2 and plain C gather the 36
 *    pixels of each patch relative to the sample's image, pixels outside it masked to 0.
 * 2. cnnc_winograd_f4_multiply: M_e[K][NT] = U_e[K][C] * V_e[C][NT] for the 36 positions e, on
 *    the implicit GEMM (cnnc_conv_direct with a 1x1 kernel over a 1 x NT plane of C channels),
 *    U_e packed once into panels (cnnc_winograd_f4_pack_weights): every output one FMA chain
 *    over c in order, so neither the block size nor the thread split changes a bit.
 * 3. cnnc_winograd_f4_output: Y = A^T M A per tile and output channel, vectorized over tiles
 *    (contiguous loads of M_e[k][u..]), then bias, residual and the activation as conv.c
 *    applies them, stored to the outputs that exist (tiles over the bottom or right edge write
 *    only real outputs): AVX-512 interleaves each output row back and stores it whole, AVX2
 *    too where tile rows fill its pieces; otherwise AVX2 and plain C gather the residual and
 *    scatter.
 *
 * Every lane runs the same operations whatever its place in the block, so the result of a
 * tile does not depend on how the tiles are split into blocks.
 */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define WINO_E 36 /* transform-domain positions: 6 x 6 */
/* AVX-512 stores the outputs by rows for rows of at least this many tiles, one run of a tile
 * row per vector; shorter rows scatter (1 thread, Zen 4, 64 channels of 8x8: rows 0.29 ms, the
 * scatter 0.15; 16 channels of 32x32: by rows 0.50, scatter 0.53) */
#define WINO_ROW_OUTPUT_TILES 8

/* ---------------------------------------------------------------------------------------
 * The filter transform and the workspace
 * ------------------------------------------------------------------------------------- */

size_t cnnc_winograd_f4_packed_floats(int k, int c) {
    return WINO_E * cnnc_conv_packed_floats(1, k, c);
}

/* U = G g G^T of a `rows` x `cols` set of 3x3 filters into cnnc_conv_pack_weights' panels; filter
 * (row, col) is weights[row][col] as stored, or with `transposed`, weights[col][row] (a
 * [cols][rows][3][3] tensor) turned by 180 degrees: the input gradient's filters. In double, a
 * panel's CNNC_PACK_ROWS filters of two columns in the lanes (whole vectors of doubles), for
 * WINO_PACK_COLS columns into a buffer whose 36 positions are then copied out, each one
 * contiguous run. The trainer packs every step: 512 x 512 filters took 48 ms filter by filter
 * (the 36 positions' writes 1 MB apart, every cache line written CNNC_PACK_ROWS times), then
 * 12 ms by panels one column at a time (6 lanes: AVX2 vectors of 4 doubles and a remainder,
 * a branch per tap read); two columns at a time with the taps read through per-lane pointers,
 * in the same run of the host, 20-21 -> 12.6-13.8 ms (transposed 22-24 -> 15.5-17), 1 thread,
 * Zen 3, -O3; the same bits (checksums of U equal, odd sizes too). */
#define WINO_PACK_COLS 16 /* even: the columns go two at a time */
static void wino_pack(float *dst, const float *weights, int rows, int cols, int transposed, int p0, int p1) {
    static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    enum { PR = CNNC_PACK_ROWS, CB = WINO_PACK_COLS };
    const size_t set = cnnc_conv_packed_floats(1, rows, cols);
    if (set == 0) return;
    for (int k0 = p0 * PR; k0 < rows && k0 < p1 * PR; k0 += PR) {
        const int nr = rows - k0 < PR ? rows - k0 : PR;
        float *panel = dst + (size_t)(k0 / PR) * cols * PR;
        for (int c0 = 0; c0 < cols; c0 += CB) {
            const int nc = cols - c0 < CB ? cols - c0 : CB;
            _Alignas(64) float block[WINO_E][CB * PR];
            /* two columns at a time: 2 * PR lanes (whole vectors of doubles for PR = 4, 6, 8) */
            for (int cb = 0; cb < nc; cb += 2) {
                enum { L = 2 * PR };
                double f[9][L], r[6][3][L];
                /* lane l: filter (k0 + l % PR, c0 + cb + l / PR), tap i at src[l][i * step] */
                static const float zeros[9];
                const float *src[L];
                const ptrdiff_t step = transposed ? -1 : 1;
                for (int l = 0; l < L; l++) {
                    const int cc = c0 + cb + l / PR, kk = k0 + l % PR;
                    src[l] = l % PR >= nr || cb + l / PR >= nc ? zeros + (transposed ? 8 : 0)
                             : transposed ? weights + ((size_t)cc * rows + kk) * 9 + 8
                                          : weights + ((size_t)kk * cols + cc) * 9;
                }
                for (int i = 0; i < 9; i++)
                    for (int l = 0; l < L; l++) f[i][l] = src[l][i * step];
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 3; j++)
                        for (int l = 0; l < L; l++)
                            r[i][j][l] = G[i][0] * f[j][l] + G[i][1] * f[3 + j][l] + G[i][2] * f[6 + j][l];
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 6; j++) {
                        float *out = block[i * 6 + j] + cb * PR;
                        for (int l = 0; l < L; l++)
                            out[l] = (float)(r[i][0][l] * G[j][0] + r[i][1][l] * G[j][1] + r[i][2][l] * G[j][2]);
                    }
            }
            for (int e = 0; e < WINO_E; e++)
                memcpy(panel + (size_t)e * set + (size_t)c0 * PR, block[e], sizeof(float) * (size_t)nc * PR);
        }
    }
}

void cnnc_winograd_f4_pack_weights(float *dst, const float *weights, int k, int c) {
    wino_pack(dst, weights, k, c, 0, 0, INT_MAX / CNNC_PACK_ROWS);
}

void cnnc_winograd_f4_pack_weights_transposed(float *dst, const float *weights, int k, int c) {
    wino_pack(dst, weights, c, k, 1, 0, INT_MAX / CNNC_PACK_ROWS);
}

void cnnc_winograd_f4_pack_panels(float *dst, const float *weights, int k, int c, int transposed, int p0, int p1) {
    const int rows = transposed ? c : k, panels = rows > 0 ? (rows - 1) / CNNC_PACK_ROWS + 1 : 0;
    if (p0 < 0) p0 = 0;
    if (p1 > panels) p1 = panels;
    if (transposed) wino_pack(dst, weights, c, k, 1, p0, p1);
    else wino_pack(dst, weights, k, c, 0, p0, p1);
}

size_t cnnc_winograd_f4_workspace_floats(int k, int c, int nt) {
    return (size_t)WINO_E * ((size_t)c + (size_t)k) * (size_t)nt;
}

/* ---------------------------------------------------------------------------------------
 * Vectors of tiles: the operations each instruction set provides
 * ------------------------------------------------------------------------------------- */

#if defined(__AVX512F__)

#define WINO_L 16
typedef __m512 wvec;
typedef __mmask16 wmask;
typedef __m512i windex;
static inline wvec w_add(wvec a, wvec b) { return _mm512_add_ps(a, b); }
static inline wvec w_sub(wvec a, wvec b) { return _mm512_sub_ps(a, b); }
static inline wvec w_fma(float a, wvec b, wvec c) { return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c); }
static inline wvec w_fnma(float a, wvec b, wvec c) { return _mm512_fnmadd_ps(_mm512_set1_ps(a), b, c); }
static inline wmask w_mask(uint32_t bits) { return (wmask)(bits & 0xffffu); }
static inline windex w_index(const int *base, int add) { return _mm512_add_epi32(_mm512_loadu_si512(base), _mm512_set1_epi32(add)); }
static inline wvec w_gather(const float *base, wmask m, windex idx) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, base, 4);
}
static inline wvec w_load(const float *p, int lanes) { return _mm512_maskz_loadu_ps(w_mask(lanes >= 16 ? 0xffffu : (1u << lanes) - 1u), p); }
static inline void w_store(float *p, wvec v, int lanes) { _mm512_mask_storeu_ps(p, w_mask(lanes >= 16 ? 0xffffu : (1u << lanes) - 1u), v); }
static inline void w_scatter(float *base, wmask m, windex idx, wvec v) { _mm512_mask_i32scatter_ps(base, m, idx, v, 4); }
static inline wvec w_bias(wvec v, float b) { return _mm512_add_ps(v, _mm512_set1_ps(b)); }
/* act(v): the runtime's one vector activation (internal.h). */
static inline wvec w_activate(wvec v, const cnnc_epilogue *e) { return cnnc_internal_activate16(v, e); }

#elif defined(__AVX2__) && defined(__FMA__)

#define WINO_L 8
typedef __m256 wvec;
typedef __m256i wmask;
typedef __m256i windex;
static inline wvec w_add(wvec a, wvec b) { return _mm256_add_ps(a, b); }
static inline wvec w_sub(wvec a, wvec b) { return _mm256_sub_ps(a, b); }
static inline wvec w_fma(float a, wvec b, wvec c) { return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c); }
static inline wvec w_fnma(float a, wvec b, wvec c) { return _mm256_fnmadd_ps(_mm256_set1_ps(a), b, c); }
static inline wmask w_mask(uint32_t bits) {
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i b = _mm256_set1_epi32((int)bits);
    return _mm256_cmpeq_epi32(_mm256_and_si256(b, lanes), lanes);
}
static inline windex w_index(const int *base, int add) {
    return _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)base), _mm256_set1_epi32(add));
}
static inline wvec w_gather(const float *base, wmask m, windex idx) {
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, idx, _mm256_castsi256_ps(m), 4);
}
/* whole vectors with plain loads and stores: Zen 3 runs vmaskmovps, the store above all, far slower */
static inline wvec w_load(const float *p, int lanes) {
    return lanes >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, w_mask((1u << lanes) - 1u));
}
static inline void w_store(float *p, wvec v, int lanes) { cnnc_internal_store_part8(p, v, lanes); }
static inline void w_scatter(float *base, wmask m, windex idx, wvec v) {
    /* AVX2 has no scatter: the lanes one by one */
    _Alignas(32) float lane[8];
    _Alignas(32) int at[8], on[8];
    _mm256_store_ps(lane, v);
    _mm256_store_si256((__m256i *)at, idx);
    _mm256_store_si256((__m256i *)on, m);
    for (int l = 0; l < 8; l++)
        if (on[l]) base[at[l]] = lane[l];
}
static inline wvec w_bias(wvec v, float b) { return _mm256_add_ps(v, _mm256_set1_ps(b)); }
static inline wvec w_activate(wvec v, const cnnc_epilogue *e) { return cnnc_internal_activate8(v, e); }

#else

#define WINO_L 1
typedef float wvec;
typedef int wmask;
typedef int windex;
static inline wvec w_add(wvec a, wvec b) { return a + b; }
static inline wvec w_sub(wvec a, wvec b) { return a - b; }
static inline wvec w_fma(float a, wvec b, wvec c) { return a * b + c; }
static inline wvec w_fnma(float a, wvec b, wvec c) { return c - a * b; }
static inline wmask w_mask(uint32_t bits) { return (int)(bits & 1u); }
static inline windex w_index(const int *base, int add) { return base[0] + add; }
static inline wvec w_gather(const float *base, wmask m, windex idx) { return m ? base[idx] : 0.0f; }
static inline wvec w_load(const float *p, int lanes) { return lanes > 0 ? p[0] : 0.0f; }
static inline void w_store(float *p, wvec v, int lanes) { if (lanes > 0) p[0] = v; }
static inline void w_scatter(float *base, wmask m, windex idx, wvec v) { if (m) base[idx] = v; }
static inline wvec w_bias(wvec v, float b) { return v + b; }
static inline wvec w_activate(wvec v, const cnnc_epilogue *e) {
    float one[1] = {v};
    cnnc_internal_epilogue_row(one, one, NULL, 1, 0, 0.0f, e);
    return one[0];
}

#endif

/* r = B^T d over six vectors (a column or a row of a patch) */
static inline void wino_bt(const wvec *d, wvec *r) {
    r[0] = w_fma(4.0f, d[0], w_fnma(5.0f, d[2], d[4]));
    r[1] = w_fnma(4.0f, w_add(d[1], d[2]), w_add(d[3], d[4]));
    r[2] = w_fma(4.0f, w_sub(d[1], d[2]), w_sub(d[4], d[3]));
    r[3] = w_fma(2.0f, w_sub(d[3], d[1]), w_sub(d[4], d[2]));
    r[4] = w_fma(2.0f, w_sub(d[1], d[3]), w_sub(d[4], d[2]));
    r[5] = w_fma(4.0f, d[1], w_fnma(5.0f, d[3], d[5]));
}

/* y = A^T m over six vectors */
static inline void wino_at(const wvec *m, wvec *y) {
    const wvec a = w_add(m[1], m[2]), b = w_sub(m[1], m[2]), c = w_add(m[3], m[4]), d = w_sub(m[3], m[4]);
    y[0] = w_add(w_add(m[0], a), c);
    y[1] = w_fma(2.0f, d, b);
    y[2] = w_fma(4.0f, c, a);
    y[3] = w_add(w_fma(8.0f, d, b), m[5]);
}

/* Where a vector of tiles t + l (l < lanes) of the batch lies: tile t + l is tile (t + l) % tiles
 * of sample (t + l) / tiles. base[l] is the offset of its top-left corner from pixel (0, 0) of
 * the plane of the group's first sample b0 (planes `stride` floats apart, rows `width` apart),
 * rbase[l] the same in a tensor of `rstride` floats per sample (the residual); per row i and
 * column j of the patch (or tile), the lanes whose pixel lies inside [0, height) x [0, width). */
typedef struct {
    _Alignas(64) int base[WINO_L > 1 ? WINO_L : 1];
    _Alignas(64) int rbase[WINO_L > 1 ? WINO_L : 1];
    uint32_t row_ok[6], col_ok[6];
} wino_lanes;

static void wino_place(wino_lanes *pl, int t, int lanes, int tiles, int tiles_w, size_t stride, size_t rstride,
                       int shift_h, int shift_w, int height, int width, int rows) {
    const int b0 = t / tiles;
    for (int i = 0; i < rows; i++) pl->row_ok[i] = pl->col_ok[i] = 0;
    for (int l = 0; l < WINO_L; l++) {
        if (l >= lanes) {
            pl->base[l] = pl->rbase[l] = 0;
            continue;
        }
        const int b = (t + l) / tiles, local = (t + l) % tiles;
        const int h0 = local / tiles_w * 4 - shift_h, w0 = local % tiles_w * 4 - shift_w;
        pl->base[l] = (int)((size_t)(b - b0) * stride) + h0 * width + w0;
        pl->rbase[l] = (int)((size_t)(b - b0) * rstride) + h0 * width + w0;
        for (int i = 0; i < rows; i++) {
            if (h0 + i >= 0 && h0 + i < height) pl->row_ok[i] |= 1u << l;
            if (w0 + i >= 0 && w0 + i < width) pl->col_ok[i] |= 1u << l;
        }
    }
}

/* The lanes of the group of tiles from t: up to WINO_L and the `left` tiles of the block, and
 * only tiles of t's sample where offsets across WINO_L samples `reach` floats apart might not
 * fit an int (a sample of over 2^27 floats). */
static inline int wino_group(int t, int left, int tiles, size_t reach) {
    int lanes = left < WINO_L ? left : WINO_L;
    if (reach > (size_t)INT_MAX / (WINO_L + 1) && lanes > tiles - t % tiles) lanes = tiles - t % tiles;
    return lanes;
}


#if defined(__AVX512F__)

/* ---------------------------------------------------------------------------------------
 * AVX-512: the transforms on runs of tiles of one tile row, without gathers or scatters
 *
 * A block's tiles go 16 lanes at a time in chunks of pieces: a piece is a run of n tiles of
 * one tile row of one sample and takes n + 1 lanes (the last one unused), so that piece s's
 * patch columns are 4n + 2 consecutive floats from z = 4 * (its first lane) of a row buffer
 * t and tile lane L always reads t[4L .. 4L + 5]. (A piece is cut where the chunk is full.)
 * For the input, the six image rows under each piece are read whole (contiguous loads, the
 * padding masked to 0) and B^T is applied down all its columns at once into t; then a
 * four-way deinterleave of t (8 permutes) gives each lane its tile's six columns, B is
 * applied along them, and the used lanes are compressed into V. The output undoes it for
 * rows of 8 or more tiles, one piece per vector: A^T M A per lane, the four columns of each
 * output row interleaved back (8 permutes), the epilogue on them and masked stores (several
 * short pieces per vector cost more than the scatter: each needs its own shift, epilogue and
 * store). Every output goes
 * through the same operations in the same order as with the gathers, so the bits are the
 * same; only the loads and stores differ. (Zen 4 runs a 16-lane gather in about 40 cycles:
 * 36 per tile group and channel made the input transform cost more than the products on 16-
 * and 32-channel layers.)
 * ------------------------------------------------------------------------------------- */

#define WINO_PIECES 8 /* the most pieces in a chunk: 16 lanes of pieces of one tile */

/* c_j[l] = x[4l + j] for the 64 floats a, b, c, d (x[0..15], x[16..31], ...) */
static inline void wino_deinterleave4(__m512 a, __m512 b, __m512 c, __m512 d, __m512 *c0, __m512 *c1, __m512 *c2,
                                      __m512 *c3) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 p0 = _mm512_permutex2var_ps(a, even, b), p1 = _mm512_permutex2var_ps(a, odd, b);
    const __m512 q0 = _mm512_permutex2var_ps(c, even, d), q1 = _mm512_permutex2var_ps(c, odd, d);
    *c0 = _mm512_permutex2var_ps(p0, even, q0);
    *c2 = _mm512_permutex2var_ps(p0, odd, q0);
    *c1 = _mm512_permutex2var_ps(p1, even, q1);
    *c3 = _mm512_permutex2var_ps(p1, odd, q1);
}

/* The inverse: o_m[i] = x[16m + i] where x[4l + j] = y_j[l]. */
static inline void wino_interleave4(__m512 y0, __m512 y1, __m512 y2, __m512 y3, __m512 *o) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 e0 = _mm512_permutex2var_ps(y0, lo, y2), e1 = _mm512_permutex2var_ps(y0, hi, y2);
    const __m512 f0 = _mm512_permutex2var_ps(y1, lo, y3), f1 = _mm512_permutex2var_ps(y1, hi, y3);
    o[0] = _mm512_permutex2var_ps(e0, lo, f0);
    o[1] = _mm512_permutex2var_ps(e0, hi, f0);
    o[2] = _mm512_permutex2var_ps(e1, lo, f1);
    o[3] = _mm512_permutex2var_ps(e1, hi, f1);
}

/* v shifted down one lane, `next` into lane 15 */
static inline __m512 wino_next_lane(__m512 v, float next) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(next)), _mm512_castps_si512(v), 1));
}

/* A chunk: up to WINO_PIECES pieces, piece s of n[s] tiles from column tile col0[s] of tile
 * row tr[s] of sample b[s], its first lane lane[s]; `used` the lanes that are tiles, `tiles`
 * their number (the block's tiles u0 .. u0 + tiles - 1, in order). */
typedef struct {
    int pieces, tiles;
    __mmask16 used;
    int b[WINO_PIECES], tr[WINO_PIECES], col0[WINO_PIECES], n[WINO_PIECES], lane[WINO_PIECES];
} wino_chunk;

/* The chunk of tiles t, t + 1, ... (at most `left`) of the batch, of at most `most` pieces. */
static void wino_chunk_at(int t, int left, int tiles, int tw, int most, wino_chunk *ch) {
    ch->pieces = ch->tiles = 0;
    ch->used = 0;
    int lane = 0;
    while (left > 0 && lane <= 14 && ch->pieces < most) {
        const int local = t % tiles, col0 = local % tw;
        int n = tw - col0;
        if (n > left) n = left;
        if (n > 15 - lane) n = 15 - lane;
        const int s = ch->pieces++;
        ch->b[s] = t / tiles;
        ch->tr[s] = local / tw;
        ch->col0[s] = col0;
        ch->n[s] = n;
        ch->lane[s] = lane;
        ch->used |= (__mmask16)(((1u << n) - 1u) << lane);
        ch->tiles += n;
        lane += n + 1;
        t += n;
        left -= n;
    }
}

/* The lanes of each vector of piece s's 4n + 2 patch columns that lie inside the image. */
static void wino_piece_columns(const cnnc_conv_geometry *g, const wino_chunk *ch, int s, __mmask16 *colmask) {
    const int zlen = 4 * ch->n[s] + 2, w0 = 4 * ch->col0[s] - g->pad_left;
    for (int vz = 0; vz < 5; vz++) {
        uint32_t bits = 0;
        for (int l = 0; l < 16; l++) {
            const int z = 16 * vz + l, w = w0 + z;
            if (z < zlen && w >= 0 && w < g->width) bits |= 1u << l;
        }
        colmask[vz] = (__mmask16)bits;
    }
}

/* V of channel c for the chunk: dst[(i*6 + j) * cn + u] for its tiles u. t: the row buffer,
 * [6][160], whose floats past the chunk's pieces are finite (they feed unused lanes only). */
static void wino_input_chunk(const cnnc_conv_geometry *g, const float *images, size_t image_stride, size_t coff,
                             const wino_chunk *ch, __mmask16 (*colmask)[5], float (*t)[160], float *dst, size_t cn) {
    const int H = g->height, W = g->width;
    /* B^T down every column z of each piece's six rows (rows outside the image are 0), at
     * t[i][4 * lane + z]; a vector past the piece spills into the next one's (written after
     * it) or past the chunk */
    for (int s = 0; s < ch->pieces; s++) {
        const float *x = images + (size_t)ch->b[s] * image_stride + coff;
        const int zlen = 4 * ch->n[s] + 2, nvz = (zlen + 15) / 16;
        const int h0 = 4 * ch->tr[s] - g->pad_top, w0 = 4 * ch->col0[s] - g->pad_left, z0 = 4 * ch->lane[s];
        for (int vz = 0; vz < nvz; vz++) {
            wvec d[6], col[6];
            for (int r = 0; r < 6; r++) {
                const int h = h0 + r;
                d[r] = h >= 0 && h < H ? _mm512_maskz_loadu_ps(colmask[s][vz], x + (ptrdiff_t)h * W + w0 + 16 * vz)
                                       : _mm512_setzero_ps();
            }
            wino_bt(d, col);
            for (int i = 0; i < 6; i++) _mm512_storeu_ps(&t[i][z0 + 16 * vz], col[i]);
        }
    }
    /* B along the six columns of each lane's patch: t[i][4L .. 4L + 5]; the used lanes kept */
    const __mmask16 first = (__mmask16)((1u << ch->tiles) - 1u);
    for (int i = 0; i < 6; i++) {
        wvec d[6], row[6];
        wino_deinterleave4(_mm512_load_ps(&t[i][0]), _mm512_load_ps(&t[i][16]), _mm512_load_ps(&t[i][32]),
                           _mm512_load_ps(&t[i][48]), &d[0], &d[1], &d[2], &d[3]);
        d[4] = wino_next_lane(d[0], t[i][64]);
        d[5] = wino_next_lane(d[1], t[i][65]);
        wino_bt(d, row);
        for (int j = 0; j < 6; j++)
            _mm512_mask_storeu_ps(dst + (size_t)(i * 6 + j) * cn, first, _mm512_maskz_compress_ps(ch->used, row[j]));
    }
}

static void wino_input_chunks(const cnnc_conv_geometry *g, const float *images, size_t image_stride, int t0, int nt,
                              int c0, int c1, float *v) {
    const int C = g->channels, TW = (g->out_w + 3) / 4, tiles = (g->out_h + 3) / 4 * TW;
    const size_t plane = (size_t)g->height * g->width, cn = (size_t)C * nt;
    _Alignas(64) float t[6][160];
    memset(t, 0, sizeof t);
    for (int u = 0; u < nt;) {
        wino_chunk ch;
        wino_chunk_at(t0 + u, nt - u, tiles, TW, WINO_PIECES, &ch);
        __mmask16 colmask[WINO_PIECES][5];
        for (int s = 0; s < ch.pieces; s++) wino_piece_columns(g, &ch, s, colmask[s]);
        for (int c = c0; c < c1; c++)
            wino_input_chunk(g, images, image_stride, (size_t)c * plane, &ch, colmask, t, v + (size_t)c * nt + u, cn);
        u += ch.tiles;
    }
}

static void wino_output_chunks(const cnnc_conv_geometry *g, int k, const float *m, int t0, int nt, float *out,
                               size_t out_stride, const cnnc_epilogue *e, int k0, int k1) {
    const int P = g->out_h, Q = g->out_w, TW = (Q + 3) / 4, tiles = (P + 3) / 4 * TW;
    const size_t pq = (size_t)P * Q, kn = (size_t)k * nt;
    const int has_residual = e && e->residual;
    for (int u = 0; u < nt;) {
        /* one piece per vector, from lane 0: its lanes are M's tiles as they lie */
        wino_chunk ch;
        wino_chunk_at(t0 + u, nt - u, tiles, TW, 1, &ch);
        const int q0 = 4 * ch.col0[0], ncol = 4 * ch.n[0] < Q - q0 ? 4 * ch.n[0] : Q - q0;
        for (int kk = k0; kk < k1; kk++) {
            const float *mk = m + (size_t)kk * nt + u;
            wvec sum[4][6];
            for (int j = 0; j < 6; j++) {
                wvec col[6], y[4];
                for (int i = 0; i < 6; i++) col[i] = _mm512_maskz_loadu_ps(ch.used, mk + (size_t)(i * 6 + j) * kn);
                wino_at(col, y);
                for (int i = 0; i < 4; i++) sum[i][j] = y[i];
            }
            for (int i = 0; i < 4 && 4 * ch.tr[0] + i < P; i++) {
                wvec y[4], o[4];
                wino_at(sum[i], y);
                wino_interleave4(y[0], y[1], y[2], y[3], o);
                const size_t at = (size_t)kk * pq + (size_t)(4 * ch.tr[0] + i) * Q + q0;
                float *row = out + (size_t)ch.b[0] * out_stride + at;
                const float *rrow = has_residual ? e->residual + (size_t)ch.b[0] * e->residual_stride + at : NULL;
                for (int v16 = 0; 16 * v16 < ncol; v16++) {
                    const int left = ncol - 16 * v16;
                    const __mmask16 keep = (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1u);
                    wvec val = o[v16];
                    if (e && e->bias) val = w_bias(val, e->bias[kk]);
                    if (rrow) val = w_add(val, _mm512_maskz_loadu_ps(keep, rrow + 16 * v16));
                    if (e) val = w_activate(val, e);
                    _mm512_mask_storeu_ps(row + 16 * v16, keep, val);
                }
            }
        }
        u += ch.tiles;
    }
}

#undef WINO_PIECES

#endif /* AVX-512 chunks */

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)

/* ---------------------------------------------------------------------------------------
 * AVX2: the input transform on runs of tiles of one tile row, without gathers
 *
 * Zen 3 runs an 8-lane gather far slower than the loads it replaces: 36 of them per channel
 * and 8 tiles made the input transform cost about half as much as the products. Where its tile
 * rows fill the pieces well (wino_rows_pay), the block goes in pieces of up to 8 tiles
 * of one tile row of one sample (lane l = tile l of the piece). Patch row i of the piece is
 * 4n + 2 consecutive floats of an image row from column 4 * col0 - pad_left: four masked loads
 * (columns outside the image and past the piece read as 0, as the gathers' masks make them) and
 * a 4 x 4 transpose per 128-bit half give every lane its columns 0-3; columns 4 and 5 are
 * columns 0 and 1 one lane on, with floats 32 and 33 of the run in lane 7. Then B^T and B as
 * the gathers' path applies them: the same bits.
 * ------------------------------------------------------------------------------------- */

/* Pieces cost about the same whatever their length, and a tile row of TW tiles takes
 * ceil(TW / 8) of them: the rows pay where they fill at least 70% of their lanes (TW = 6-8,
 * 12-16, 17 and up but 25-27 and alike). 1 thread, Zen 3, input transform: 64 channels of
 * 56x56 (TW 14) 0.50 -> 0.45 ms, 16 of 32x32 (TW 8) 0.031 -> 0.022, but 32 of 16x16 (TW 4,
 * half the lanes) 0.020 -> 0.027. */
static inline int wino_rows_pay(int tw) { return tw * 10 >= 7 * 8 * ((tw + 7) / 8); }

/* The piece at tile t0 + u of a block of nt tiles (u < nt), `tiles` per sample, TW per tile
 * row: up to 8 tiles of tile row tr of sample b from column tile col0, not past the row or the
 * block. */
typedef struct {
    int b, tr, col0, n;
} wino_piece;

static inline wino_piece wino_piece_at(int t0, int u, int nt, int tiles, int tw) {
    const int t = t0 + u, local = t % tiles;
    wino_piece pc = {t / tiles, local / tw, local % tw, 0};
    pc.n = tw - pc.col0 < 8 ? tw - pc.col0 : 8;
    if (pc.n > nt - u) pc.n = nt - u;
    return pc;
}

/* c_j[l] = x[4l + j] (j < 4) for the 32 floats a, b, c, d (x[0..7], x[8..15], ...) */
static inline void wino_deinterleave4_avx2(__m256 a, __m256 b, __m256 c, __m256 d, __m256 *col) {
    const __m256 p0 = _mm256_permute2f128_ps(a, c, 0x20), p1 = _mm256_permute2f128_ps(a, c, 0x31); /* tiles 0|4, 1|5 */
    const __m256 p2 = _mm256_permute2f128_ps(b, d, 0x20), p3 = _mm256_permute2f128_ps(b, d, 0x31); /* tiles 2|6, 3|7 */
    const __m256 t0 = _mm256_unpacklo_ps(p0, p1), t1 = _mm256_unpackhi_ps(p0, p1);
    const __m256 t2 = _mm256_unpacklo_ps(p2, p3), t3 = _mm256_unpackhi_ps(p2, p3);
    col[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    col[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    col[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    col[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

/* v one lane on (lane l gets lane l + 1), `next` into lane 7 */
static inline __m256 wino_next_lane_avx2(__m256 v, float next) {
    const __m256i on = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);
    return _mm256_blend_ps(_mm256_permutevar8x32_ps(v, on), _mm256_set1_ps(next), 0x80);
}

static void wino_input_rows(const cnnc_conv_geometry *g, const float *images, size_t image_stride, int t0, int nt,
                            int c0, int c1, float *v) {
    const int C = g->channels, H = g->height, W = g->width, TW = (g->out_w + 3) / 4;
    const int tiles = (g->out_h + 3) / 4 * TW;
    const size_t plane = (size_t)H * W, cn = (size_t)C * nt;
    for (int u = 0, n; u < nt; u += n) {
        const wino_piece pc = wino_piece_at(t0, u, nt, tiles, TW);
        const int b = pc.b, tr = pc.tr, col0 = pc.col0;
        n = pc.n;
        const int h0 = 4 * tr - g->pad_top, w0 = 4 * col0 - g->pad_left, run = 4 * n + 2;
        /* the run's floats that are image columns: [lo, hi) of [0, run) */
        const int lo = w0 < 0 ? -w0 : 0, hi = W - w0 < run ? W - w0 : run;
        __m256i m[4];
        for (int q = 0; q < 4; q++) {
            uint32_t bits = 0;
            for (int x = 0; x < 8; x++)
                if (8 * q + x >= lo && 8 * q + x < hi) bits |= 1u << x;
            m[q] = w_mask(bits);
        }
        const int has32 = 32 >= lo && 32 < hi, has33 = 33 >= lo && 33 < hi;
        const float *image = images + (size_t)b * image_stride;
        /* whole stores where the vector ends inside the block's row of V; the lanes past the
         * piece are rewritten by the next piece (Zen 3's masked store is slow) */
        const int store_lanes = u + 8 <= nt ? 8 : n;
        for (int c = c0; c < c1; c++) {
            const float *x = image + (size_t)c * plane;
            wvec d[6][6];
            for (int i = 0; i < 6; i++) {
                if (h0 + i < 0 || h0 + i >= H) {
                    for (int j = 0; j < 6; j++) d[i][j] = _mm256_setzero_ps();
                    continue;
                }
                /* the run starts at column w0 of row h0 + i: offsets from the row's start */
                const float *rowp = x + (size_t)(h0 + i) * W;
                const __m256 a = _mm256_maskload_ps(rowp + w0, m[0]), bb = _mm256_maskload_ps(rowp + w0 + 8, m[1]);
                const __m256 cc = _mm256_maskload_ps(rowp + w0 + 16, m[2]), dd = _mm256_maskload_ps(rowp + w0 + 24, m[3]);
                wino_deinterleave4_avx2(a, bb, cc, dd, d[i]);
                d[i][4] = wino_next_lane_avx2(d[i][0], has32 ? rowp[w0 + 32] : 0.0f);
                d[i][5] = wino_next_lane_avx2(d[i][1], has33 ? rowp[w0 + 33] : 0.0f);
            }
            wvec r[6][6];
            for (int j = 0; j < 6; j++) {
                wvec dj[6], col[6];
                for (int i = 0; i < 6; i++) dj[i] = d[i][j];
                wino_bt(dj, col);
                for (int i = 0; i < 6; i++) r[i][j] = col[i];
            }
            float *dst = v + (size_t)c * nt + u;
            for (int i = 0; i < 6; i++) {
                wvec row[6];
                wino_bt(r[i], row);
                for (int j = 0; j < 6; j++) w_store(dst + (size_t)(i * 6 + j) * cn, row[j], store_lanes);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * AVX2: the output transform on runs of tiles, without the lane-by-lane scatter
 *
 * AVX2 has no scatter instruction: storing 16 outputs of 8 tiles lane by lane is 128 scalar
 * stores per output channel. Where tile rows fill the pieces well (wino_rows_pay), the block
 * goes in the input transform's pieces (one per vector, from lane 0, M's tiles as they lie):
 * A^T M A per lane as the scatter path computes it, the four columns of each output row
 * interleaved back (12 shuffles for 32 floats), then the epilogue and plain stores of the
 * row's run (4/2/1-float stores at its end). Same operations per output in the same order: the
 * same bits.
 * ------------------------------------------------------------------------------------- */

/* o[m][x] = float 8m + x of the row where float 4l + j is y_j[l] */
static inline void wino_interleave4_avx2(__m256 y0, __m256 y1, __m256 y2, __m256 y3, __m256 *o) {
    const __m256 a = _mm256_unpacklo_ps(y0, y1), b = _mm256_unpackhi_ps(y0, y1);
    const __m256 c = _mm256_unpacklo_ps(y2, y3), d = _mm256_unpackhi_ps(y2, y3);
    const __m256 e0 = _mm256_shuffle_ps(a, c, 0x44), e1 = _mm256_shuffle_ps(a, c, 0xEE); /* tiles 0|4, 1|5 */
    const __m256 e2 = _mm256_shuffle_ps(b, d, 0x44), e3 = _mm256_shuffle_ps(b, d, 0xEE); /* tiles 2|6, 3|7 */
    o[0] = _mm256_permute2f128_ps(e0, e1, 0x20);
    o[1] = _mm256_permute2f128_ps(e2, e3, 0x20);
    o[2] = _mm256_permute2f128_ps(e0, e1, 0x31);
    o[3] = _mm256_permute2f128_ps(e2, e3, 0x31);
}

static void wino_output_rows(const cnnc_conv_geometry *g, int k, const float *m, int t0, int nt, float *out,
                             size_t out_stride, const cnnc_epilogue *e, int k0, int k1) {
    const int P = g->out_h, Q = g->out_w, TW = (Q + 3) / 4, tiles = (P + 3) / 4 * TW;
    const size_t pq = (size_t)P * Q, kn = (size_t)k * nt;
    const int has_residual = e && e->residual;
    for (int u = 0, n; u < nt; u += n) {
        /* the piece: tiles t0 + u .. t0 + u + n - 1, of tile row tr of sample b from column tile col0 */
        const wino_piece pc = wino_piece_at(t0, u, nt, tiles, TW);
        const int b = pc.b, tr = pc.tr, col0 = pc.col0;
        n = pc.n;
        const int q0 = 4 * col0, ncol = 4 * n < Q - q0 ? 4 * n : Q - q0;
        for (int kk = k0; kk < k1; kk++) {
            const float *mk = m + (size_t)kk * nt + u;
            wvec sum[4][6];
            for (int j = 0; j < 6; j++) {
                wvec col[6], y[4];
                for (int i = 0; i < 6; i++) col[i] = w_load(mk + (size_t)(i * 6 + j) * kn, n);
                wino_at(col, y);
                for (int i = 0; i < 4; i++) sum[i][j] = y[i];
            }
            for (int i = 0; i < 4 && 4 * tr + i < P; i++) {
                wvec y[4], o[4];
                wino_at(sum[i], y);
                wino_interleave4_avx2(y[0], y[1], y[2], y[3], o);
                const size_t at = (size_t)kk * pq + (size_t)(4 * tr + i) * Q + q0;
                float *row = out + (size_t)b * out_stride + at;
                const float *rrow = has_residual ? e->residual + (size_t)b * e->residual_stride + at : NULL;
                for (int v8 = 0; 8 * v8 < ncol; v8++) {
                    const int left = ncol - 8 * v8;
                    wvec val = o[v8];
                    if (e && e->bias) val = w_bias(val, e->bias[kk]);
                    if (rrow) val = w_add(val, w_load(rrow + 8 * v8, left));
                    if (e) val = w_activate(val, e);
                    w_store(row + 8 * v8, val, left);
                }
            }
        }
    }
}

#endif /* AVX2 rows */

/* ---------------------------------------------------------------------------------------
 * The three steps
 * ------------------------------------------------------------------------------------- */

void cnnc_winograd_f4_input(const cnnc_conv_geometry *g, const float *images, size_t image_stride, int t0, int nt,
                            int c0, int c1, float *v) {
#if defined(__AVX512F__)
    wino_input_chunks(g, images, image_stride, t0, nt, c0, c1, v);
    return;
#elif defined(__AVX2__) && defined(__FMA__)
    if (wino_rows_pay((g->out_w + 3) / 4)) {
        wino_input_rows(g, images, image_stride, t0, nt, c0, c1, v);
        return;
    }
#endif
    const int C = g->channels, H = g->height, W = g->width, TW = (g->out_w + 3) / 4;
    const int tiles = (g->out_h + 3) / 4 * TW;
    const size_t plane = (size_t)H * W, cn = (size_t)C * nt;
    for (int u0 = 0, lanes; u0 < nt; u0 += lanes) {
        lanes = wino_group(t0 + u0, nt - u0, tiles, image_stride);
        wino_lanes pl;
        wino_place(&pl, t0 + u0, lanes, tiles, TW, image_stride, 0, g->pad_top, g->pad_left, H, W, 6);
        const float *image = images + (size_t)((t0 + u0) / tiles) * image_stride;
        wmask mask[36];
        windex idx[36];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                mask[i * 6 + j] = w_mask(pl.row_ok[i] & pl.col_ok[j]);
                idx[i * 6 + j] = w_index(pl.base, i * W + j);
            }
        /* per channel: B^T along each column of the patch, then B along each row */
        for (int c = c0; c < c1; c++) {
            const float *x = image + (size_t)c * plane;
            wvec r[6][6];
            for (int j = 0; j < 6; j++) {
                wvec d[6], col[6];
                for (int i = 0; i < 6; i++) d[i] = w_gather(x, mask[i * 6 + j], idx[i * 6 + j]);
                wino_bt(d, col);
                for (int i = 0; i < 6; i++) r[i][j] = col[i];
            }
            float *dst = v + (size_t)c * nt + u0;
            for (int i = 0; i < 6; i++) {
                wvec row[6];
                wino_bt(r[i], row);
                for (int j = 0; j < 6; j++) w_store(dst + (size_t)(i * 6 + j) * cn, row[j], lanes);
            }
        }
    }
}

void cnnc_winograd_f4_multiply(int k, int c, const float *packed, const float *v, float *m, int nt, int k0, int k1) {
    /* M_e = U_e * V_e as a 1x1 convolution of a 1 x nt plane of c channels into rows k0 .. k1 - 1
     * of k: their panels start at row k0 (a multiple of CNNC_PACK_ROWS), k0 * c floats in */
    if (k1 <= k0) return;
    const cnnc_conv_geometry g = {c, 1, nt, 1, 1, 1, 1, 0, 0, 1, 1, 1, nt};
    const size_t set = cnnc_conv_packed_floats(1, k, c);
    for (int e = 0; e < WINO_E; e++)
        cnnc_conv_direct(&g, k1 - k0, packed + (size_t)e * set + (size_t)k0 * c, 1, v + (size_t)e * c * nt, 0,
                         m + ((size_t)e * k + k0) * nt, 0, 0, nt, NULL);
}

void cnnc_winograd_f4_output(const cnnc_conv_geometry *g, int k, const float *m, int t0, int nt, float *out,
                             size_t out_stride, const cnnc_epilogue *e, int k0, int k1) {
#if defined(__AVX512F__)
    if ((g->out_w + 3) / 4 >= WINO_ROW_OUTPUT_TILES) {
        wino_output_chunks(g, k, m, t0, nt, out, out_stride, e, k0, k1);
        return;
    }
#elif defined(__AVX2__) && defined(__FMA__)
    if (wino_rows_pay((g->out_w + 3) / 4)) {
        wino_output_rows(g, k, m, t0, nt, out, out_stride, e, k0, k1);
        return;
    }
#endif
    const int P = g->out_h, Q = g->out_w, TW = (Q + 3) / 4, tiles = (P + 3) / 4 * TW;
    const size_t pq = (size_t)P * Q, kn = (size_t)k * nt;
    const int has_residual = e && e->residual;
    const size_t rstride = has_residual ? e->residual_stride : out_stride;
    const int own_index = rstride != out_stride;
    for (int u0 = 0, lanes; u0 < nt; u0 += lanes) {
        lanes = wino_group(t0 + u0, nt - u0, tiles, out_stride > rstride ? out_stride : rstride);
        wino_lanes pl;
        wino_place(&pl, t0 + u0, lanes, tiles, TW, out_stride, rstride, 0, 0, P, Q, 4);
        const size_t b0 = (size_t)((t0 + u0) / tiles);
        float *sample = out + b0 * out_stride;
        const float *residual = has_residual ? e->residual + b0 * rstride : NULL;
        wmask mask[16];
        windex idx[16], ridx[16];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                mask[i * 4 + j] = w_mask(pl.row_ok[i] & pl.col_ok[j]);
                idx[i * 4 + j] = w_index(pl.base, i * Q + j);
                ridx[i * 4 + j] = own_index ? w_index(pl.rbase, i * Q + j) : idx[i * 4 + j];
            }
        /* per output channel: A^T along each column of M, A along each row, then the epilogue */
        for (int kk = k0; kk < k1; kk++) {
            float *o = sample + (size_t)kk * pq;
            const float *mk = m + (size_t)kk * nt + u0;
            wvec s[4][6];
            for (int j = 0; j < 6; j++) {
                wvec col[6], y[4];
                for (int i = 0; i < 6; i++) col[i] = w_load(mk + (size_t)(i * 6 + j) * kn, lanes);
                wino_at(col, y);
                for (int i = 0; i < 4; i++) s[i][j] = y[i];
            }
            const float *res = residual ? residual + (size_t)kk * pq : NULL;
            for (int i = 0; i < 4; i++) {
                wvec y[4];
                wino_at(s[i], y);
                for (int j = 0; j < 4; j++) {
                    wvec val = y[j];
                    if (e && e->bias) val = w_bias(val, e->bias[kk]);
                    if (res) val = w_add(val, w_gather(res, mask[i * 4 + j], ridx[i * 4 + j]));
                    if (e) val = w_activate(val, e);
                    w_scatter(o, mask[i * 4 + j], idx[i * 4 + j], val);
                }
            }
        }
    }
}

/* The runtime is also compiled as one file (tools/embed_runtime.py): keep these names local. */
#undef WINO_E
#undef WINO_L
#undef WINO_ROW_OUTPUT_TILES
