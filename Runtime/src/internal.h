/*
 * internal.h — helpers shared by the runtime's source files; not part of the public API.
 *
 * Little-endian loads and stores (independent of the host's byte order), whole-file
 * reading, shape formatting, error messages that quote errno, and the kernels' activation on
 * vectors.
 */
#ifndef CNNC_INTERNAL_H
#define CNNC_INTERNAL_H

#include "cnnc_runtime.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

/* act(v) of the epilogue e on a vector, as cnnc_internal_epilogue_row computes it per float:
 * ReLU v > 0 ? v : 0 (NaN gives 0), leaky v > 0 ? v : alpha * v and clip v < low ? low :
 * v > high ? high : v (NaN stays), by ordered comparisons. The kernels (conv.c, depthwise.c,
 * winograd.c) apply their epilogue through these, one width per build (the kernels use the
 * 8-lane one only without AVX-512; clang refuses an unused one in the one-file runtime). */
#if defined(__AVX512F__)
static inline __m512 cnnc_internal_activate16(__m512 v, const cnnc_epilogue *e) {
    switch (e->activation) {
    case CNNC_ACT_NONE:
        break;
    case CNNC_ACT_RELU:
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
        break;
    case CNNC_ACT_LEAKY: {
        const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
        v = _mm512_mask_mov_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->alpha)), pos, v);
        break;
    }
    case CNNC_ACT_CLIP: {
        const __mmask16 lo = _mm512_cmp_ps_mask(v, _mm512_set1_ps(e->low), _CMP_LT_OQ);
        const __mmask16 hi = _mm512_cmp_ps_mask(v, _mm512_set1_ps(e->high), _CMP_GT_OQ);
        v = _mm512_mask_mov_ps(v, hi, _mm512_set1_ps(e->high));
        v = _mm512_mask_mov_ps(v, lo, _mm512_set1_ps(e->low));
        break;
    }
    }
    return v;
}
#elif defined(__AVX2__) && defined(__FMA__)
static inline __m256 cnnc_internal_activate8(__m256 v, const cnnc_epilogue *e) {
    switch (e->activation) {
    case CNNC_ACT_NONE:
        break;
    case CNNC_ACT_RELU:
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

/* The first n lanes of v (0 <= n <= 8) to p, with plain stores of 4, 2 and 1 floats: Zen 3 runs
 * the masked vmaskmovps store far slower (1x1 convolution 16 -> 96 channels at 56x56, 1 thread:
 * 0.39 ms with it, 0.23 without). */
static inline void cnnc_internal_store_part8(float *p, __m256 v, int n) {
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 h = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(p, h);
        h = _mm256_extractf128_ps(v, 1);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)(void *)p, h);
        h = _mm_movehl_ps(h, h);
        p += 2;
        n -= 2;
    }
    if (n >= 1) _mm_store_ss(p, h);
}
#endif

/* Returns 1 on a little-endian host. */
static inline int cnnc_internal_host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Reads a little-endian 16-bit value from p (any alignment). */
static inline uint16_t cnnc_load_le16(const unsigned char *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* Reads a little-endian 32-bit value from p (any alignment). */
static inline uint32_t cnnc_load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Reads a little-endian 64-bit value from p (any alignment). */
static inline uint64_t cnnc_load_le64(const unsigned char *p) {
    return (uint64_t)cnnc_load_le32(p) | ((uint64_t)cnnc_load_le32(p + 4) << 32);
}

/* Writes v to p as 4 little-endian bytes. */
static inline void cnnc_store_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Writes v to p as 8 little-endian bytes. */
static inline void cnnc_store_le64(unsigned char *p, uint64_t v) {
    cnnc_store_le32(p, (uint32_t)v);
    cnnc_store_le32(p + 4, (uint32_t)(v >> 32));
}

/* Reads a little-endian float32 from p (any alignment). */
static inline float cnnc_load_le_f32(const unsigned char *p) {
    uint32_t bits = cnnc_load_le32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Reads a little-endian float64 from p (any alignment). */
static inline double cnnc_load_le_f64(const unsigned char *p) {
    uint64_t bits = cnnc_load_le64(p);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Writes f to p as 4 little-endian bytes. */
static inline void cnnc_store_le_f32(unsigned char *p, float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    cnnc_store_le32(p, bits);
}

/* The largest file read whole into memory (64 GiB), as the Swift side's maxTensorFileSize:
 * a larger one is refused with its size instead of exhausting memory. */
#define CNNC_INTERNAL_MAX_FILE_BYTES ((uint64_t)1 << 36)

/* Opens `path` for reading ("rb") when it is a regular file, or a symlink to one; *out_size
 * is its size. A FIFO (opened without blocking, then refused), a directory, a device or a
 * socket gives NULL with CNNC_ERR_IO in err ("cannot read 'p': it is a FIFO, not a regular
 * file"), as does a file that cannot be opened. */
FILE *cnnc_internal_open_regular(const char *path, uint64_t *out_size, cnnc_error *err);

/* Reads the whole regular file at `path` (cnnc_internal_open_regular), at most
 * CNNC_INTERNAL_MAX_FILE_BYTES and never past the size it had when opened, into a new
 * malloc'ed buffer (*out_bytes, *out_size; the buffer has one extra NUL byte after the data).
 * Errors: CNNC_ERR_IO, CNNC_ERR_ALLOC. */
cnnc_status cnnc_internal_read_file(const char *path, unsigned char **out_bytes, size_t *out_size,
                                    cnnc_error *err);

/* Writes "[d0,d1,...]" (or "[]" for ndim 0) into buf, truncating to bufsize. */
void cnnc_internal_format_shape(char *buf, size_t bufsize, int ndim, const int64_t *shape);

/* Copies the text of strerror(errnum) into buf with a lower-case first letter. */
void cnnc_internal_errno_text(char *buf, size_t bufsize, int errnum);

/* Multiplies the dims of a shape into *out; returns 0 on negative dims or when the product
 * exceeds `limit`. */
int cnnc_internal_shape_product(int ndim, const int64_t *shape, uint64_t limit, uint64_t *out);

/* Stores count finished outputs of one row: o[i] = act(sum[i] (+ bias) (+ res[i])) in the
 * order the generated code used to apply it ((sum + bias) + residual, then the activation),
 * bias and residual skipped when absent (has_bias 0 / res NULL). sum and o may be the same.
 * One loop per case, so each vectorizes without a branch inside; always inlined, so the
 * kernels' short rows (8 to 32 outputs) pay no call and the cases fold per call site. */
#if defined(_OPENMP)
#define CNNC_INDEPENDENT _Pragma("omp simd")
#elif defined(__clang__)
#define CNNC_INDEPENDENT _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define CNNC_INDEPENDENT _Pragma("GCC ivdep")
#else
#define CNNC_INDEPENDENT
#endif
/* The loops below read each element before they write it and never another one: o may be
 * sum or res itself (an input gradient adds into d in through the residual), so they are
 * marked independent for the vectorizer, which cannot prove it (`omp simd` also vectorizes
 * them at gcc's -O2, whose cost model otherwise leaves loops of unknown length scalar). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void cnnc_internal_epilogue_row(float *o, const float *sum, const float *res, int count, int has_bias,
                                              float bias, const cnnc_epilogue *e) {
    if (has_bias && res)
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = sum[i] + bias + res[i];
    else if (has_bias)
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = sum[i] + bias;
    else if (res)
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = sum[i] + res[i];
    else if (o != sum)
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = sum[i];
    if (!e) return;
    switch (e->activation) {
    case CNNC_ACT_NONE:
        break;
    case CNNC_ACT_RELU:
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
        break;
    case CNNC_ACT_LEAKY: {
        const float alpha = e->alpha;
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = o[i] > 0.0f ? o[i] : alpha * o[i];
        break;
    }
    case CNNC_ACT_CLIP: {
        const float low = e->low, high = e->high;
        CNNC_INDEPENDENT for (int i = 0; i < count; i++) o[i] = o[i] < low ? low : (o[i] > high ? high : o[i]);
        break;
    }
    }
}

#endif /* CNNC_INTERNAL_H */
