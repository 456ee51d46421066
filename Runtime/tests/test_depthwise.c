/*
 * test_depthwise.c — tests of the depthwise convolution (depthwise.c) against its double
 * reference cnnc_conv_depthwise_reference.
 *
 * A seeded sweep over geometries (kernels 1x1 to 7x7 and non-square ones, strides 1 to 3 per
 * axis, pads including asymmetric, "valid" and wider than the kernel, dilation 1 and 2, widths
 * 1 to 40 on both sides of the vector width, channel multipliers 1 to 3) and every epilogue
 * (bias, residual, none / ReLU / leaky / clip), some with NaN in the input or the residual.
 * Each case checks: within rounding of the reference, NaN exactly where the reference has it;
 * in the vector builds, the same bits as one fmaf chain per output over the taps inside the
 * image in (r, s) order followed by the scalar epilogue; the same bits when the planes are
 * split between two calls; nothing written outside the planes asked for.
 * Built plain and with -march=native (the vector paths) and under ASan/UBSan.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"
#include "sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define VECTOR_BUILD 1
#else
#define VECTOR_BUILD 0
#endif

/* The epilogue as cnnc_internal_epilogue_row applies it: (sum + bias) + residual, then the
 * activation. */
static float apply(float v, int k, size_t at, const cnnc_epilogue *e) {
    if (e->bias) v = v + e->bias[k];
    if (e->residual) v = v + e->residual[at];
    switch (e->activation) {
    case CNNC_ACT_NONE: break;
    case CNNC_ACT_RELU: v = v > 0.0f ? v : 0.0f; break;
    case CNNC_ACT_LEAKY: v = v > 0.0f ? v : e->alpha * v; break;
    case CNNC_ACT_CLIP: v = v < e->low ? e->low : (v > e->high ? e->high : v); break;
    }
    return v;
}

/* What the vector paths compute: one fmaf chain per output over the taps inside the image. */
static void fma_chain(const cnnc_conv_geometry *g, int m, int multiplier, const float *weights, const float *image,
                      float *out, const cnnc_epilogue *e) {
    const int H = g->height, W = g->width, P = g->out_h, Q = g->out_w, R = g->kernel_h, S = g->kernel_w;
    for (int k = 0; k < m; k++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                float acc = 0.0f;
                for (int r = 0; r < R; r++)
                    for (int s = 0; s < S; s++) {
                        const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
                        const int c = q * g->stride_w - g->pad_left + s * g->dilation_w;
                        if (h < 0 || h >= H || c < 0 || c >= W) continue;
                        acc = fmaf(weights[((size_t)k * R + r) * S + s], image[((size_t)(k / multiplier) * H + h) * W + c], acc);
                    }
                const size_t at = ((size_t)k * P + p) * Q + q;
                out[at] = apply(acc, k, at, e);
            }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

#define GUARD 37
#define SENTINEL 12345.0f

static void sweep_case(cnnc_rng *rng) {
    cnnc_conv_geometry g;
    const int kernels[4] = {1, 3, 5, 7};
    g.kernel_h = kernels[uniform_int(rng, 0, 3)];
    g.kernel_w = uniform_int(rng, 0, 4) == 0 ? kernels[uniform_int(rng, 0, 3)] : g.kernel_h;
    g.dilation_h = uniform_int(rng, 0, 3) == 0 ? 2 : 1;
    g.dilation_w = uniform_int(rng, 0, 3) == 0 ? 2 : 1;
    g.stride_h = uniform_int(rng, 1, 3);
    g.stride_w = uniform_int(rng, 0, 2) == 0 ? g.stride_h : uniform_int(rng, 1, 3);
    const int span_h = (g.kernel_h - 1) * g.dilation_h, span_w = (g.kernel_w - 1) * g.dilation_w;
    /* pads: same, valid or asymmetric within the kernel's span, sometimes one past it */
    int pad_t = uniform_int(rng, 0, span_h + 1), pad_b = uniform_int(rng, 0, span_h + 1 - pad_t);
    int pad_l = uniform_int(rng, 0, span_w + 1), pad_r = uniform_int(rng, 0, span_w + 1 - pad_l);
    g.height = uniform_int(rng, 1, 20);
    g.width = uniform_int(rng, 1, 40);
    if (g.height + pad_t + pad_b <= span_h) g.height = span_h + 1;
    if (g.width + pad_l + pad_r <= span_w) g.width = span_w + 1;
    g.pad_top = pad_t;
    g.pad_left = pad_l;
    if (uniform_int(rng, 0, 2) == 0) {
        /* "same" padding for the stride (the output ceil(H / SH) x ceil(W / SW), the flat
         * path's shapes): the total pad split either way */
        const int need_h = ((g.height + g.stride_h - 1) / g.stride_h - 1) * g.stride_h + span_h + 1 - g.height;
        const int need_w = ((g.width + g.stride_w - 1) / g.stride_w - 1) * g.stride_w + span_w + 1 - g.width;
        pad_t = need_h > 0 ? uniform_int(rng, 0, need_h) : 0;
        pad_b = need_h > 0 ? need_h - pad_t : 0;
        pad_l = need_w > 0 ? uniform_int(rng, 0, need_w) : 0;
        pad_r = need_w > 0 ? need_w - pad_l : 0;
        g.pad_top = pad_t;
        g.pad_left = pad_l;
    }
    g.out_h = (g.height + pad_t + pad_b - span_h - 1) / g.stride_h + 1;
    g.out_w = (g.width + pad_l + pad_r - span_w - 1) / g.stride_w + 1;
    g.channels = 1;
    const int multiplier = uniform_int(rng, 0, 3) == 0 ? uniform_int(rng, 2, 3) : 1;
    const int channels = uniform_int(rng, 1, 6), m = channels * multiplier, taps = g.kernel_h * g.kernel_w;
    const size_t plane = (size_t)g.height * g.width, pq = (size_t)g.out_h * g.out_w, out_size = (size_t)m * pq;

    float *weights = random_floats(rng, (size_t)m * taps);
    float *bias = random_floats(rng, (size_t)m);
    float *image = random_floats(rng, (size_t)channels * plane);
    float *residual = random_floats(rng, out_size);
    const int nans = uniform_int(rng, 0, 3) == 0;
    if (nans) {
        for (int i = 0; i < 3; i++) image[uniform_int(rng, 0, (int)(channels * plane) - 1)] = NAN;
        residual[uniform_int(rng, 0, (int)out_size - 1)] = NAN;
    }
    cnnc_epilogue e = {NULL, NULL, 0, CNNC_ACT_NONE, 0.1f, -0.5f, 0.75f};
    const int variant = uniform_int(rng, 0, 3);
    if (variant & 1) e.bias = bias;
    if (variant & 2) e.residual = residual;
    e.activation = (cnnc_activation)uniform_int(rng, 0, 3);

    float *ref = malloc(sizeof(float) * out_size);
    cnnc_conv_depthwise_reference(&g, m, multiplier, weights, image, ref, &e);
    float *buffer = malloc(sizeof(float) * (out_size + 2 * GUARD));
    for (size_t i = 0; i < out_size + 2 * GUARD; i++) buffer[i] = SENTINEL;
    float *got = buffer + GUARD;

    /* in two calls, split at a whole input plane */
    const int split = multiplier * uniform_int(rng, 0, channels);
    cnnc_conv_depthwise(&g, split, multiplier, weights, image, got, &e);
    cnnc_epilogue e2 = e;
    if (e.bias) e2.bias = bias + split;
    if (e.residual) e2.residual = residual + (size_t)split * pq;
    cnnc_conv_depthwise(&g, m - split, multiplier, weights + (size_t)split * taps,
                        image + (size_t)(split / multiplier) * plane, got + (size_t)split * pq, &e2);

    int guards_ok = 1;
    for (int i = 0; i < GUARD; i++)
        if (buffer[i] != SENTINEL || buffer[GUARD + out_size + i] != SENTINEL) guards_ok = 0;
    CHECK(guards_ok);

    double worst = 0.0;
    int nan_ok = 1;
    for (size_t i = 0; i < out_size; i++) {
        if (isnan(ref[i]) || isnan(got[i])) {
            if (isnan(ref[i]) != isnan(got[i])) nan_ok = 0;
            continue;
        }
        const double err = fabs((double)got[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
        if (!(err <= worst)) worst = err;
    }
    CHECK(nan_ok);
    CHECK(worst <= 1e-6 * (taps + 2));

    /* in one call: the same bits */
    float *whole = malloc(sizeof(float) * out_size);
    cnnc_conv_depthwise(&g, m, multiplier, weights, image, whole, &e);
    int same = 1;
    for (size_t i = 0; i < out_size; i++)
        if (!same_bits(whole[i], got[i])) same = 0;
    CHECK(same);

    if (VECTOR_BUILD) {
        float *chain = malloc(sizeof(float) * out_size);
        fma_chain(&g, m, multiplier, weights, image, chain, &e);
        int chain_ok = 1;
        for (size_t i = 0; i < out_size; i++)
            if (!same_bits(chain[i], got[i])) chain_ok = 0;
        CHECK(chain_ok);
        free(chain);
    }
    if (!(nan_ok && worst <= 1e-6 * (taps + 2) && guards_ok && same))
        printf("  case %d: %dx%d kernel, stride %dx%d, dilation %dx%d, pads t%d l%d, %dx%d -> %dx%d, m %d x%d, "
               "bias %d residual %d act %d nan %d: worst %g\n",
               g_case, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top,
               g.pad_left, g.height, g.width, g.out_h, g.out_w, m, multiplier, e.bias != NULL, e.residual != NULL,
               (int)e.activation, nans, worst);

    free(whole);
    free(buffer);
    free(ref);
    free(residual);
    free(image);
    free(bias);
    free(weights);
}

/* MobileNetV2's shapes (3x3, pad 1, stride 1 and 2, ReLU6 clip, bias) at one channel each,
 * including a plane wider than the strided path's fast deinterleave block. */
static void mobilenet_case(int size, int stride) {
    cnnc_conv_geometry g = {1, size, size, 3, 3, stride, stride, 1, 1, 1, 1, 0, 0};
    g.out_h = (size + 2 - 3) / stride + 1;
    g.out_w = g.out_h;
    cnnc_rng rng;
    rng.seed = (uint64_t)size * 7 + (uint64_t)stride;
    rng.counter = 0;
    const int m = 3;
    const size_t plane = (size_t)size * size, pq = (size_t)g.out_h * g.out_w;
    float *weights = random_floats(&rng, (size_t)m * 9), *bias = random_floats(&rng, m);
    float *image = random_floats(&rng, (size_t)m * plane);
    float *got = malloc(sizeof(float) * m * pq), *ref = malloc(sizeof(float) * m * pq);
    const cnnc_epilogue e = {bias, NULL, 0, CNNC_ACT_CLIP, 0.0f, 0.0f, 6.0f};
    cnnc_conv_depthwise(&g, m, 1, weights, image, got, &e);
    cnnc_conv_depthwise_reference(&g, m, 1, weights, image, ref, &e);
    double worst = 0.0;
    for (size_t i = 0; i < m * pq; i++) {
        const double err = fabs((double)got[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
        if (!(err <= worst)) worst = err;
    }
    CHECK(worst <= 1e-6 * 11);
    free(ref);
    free(got);
    free(image);
    free(bias);
    free(weights);
}

/* Every narrow plane (widths and heights 1 to 5) with every pair of pads up to 3 before and
 * after and strides 1 to 3: the edges of the strided deinterleave. */
static void narrow_cases(void) {
    cnnc_rng rng;
    rng.seed = 7;
    rng.counter = 0;
    for (int W = 1; W <= 5; W++)
        for (int stride = 1; stride <= 3; stride++)
            for (int pad = 0; pad <= 15; pad++) {
                const int before = pad % 4, after = pad / 4; /* top and left, bottom and right */
                cnnc_conv_geometry g = {1, W, W, 3, 3, stride, stride, before, before, 1, 1, 0, 0};
                if (W + before + after < 3) continue;
                g.out_h = g.out_w = (W + before + after - 3) / stride + 1;
                const size_t pq = (size_t)g.out_h * g.out_w;
                float *weights = random_floats(&rng, 18), *image = random_floats(&rng, (size_t)2 * W * W + 64);
                float *got = malloc(sizeof(float) * 2 * pq), *ref = malloc(sizeof(float) * 2 * pq);
                for (int i = 0; i < 64; i++) image[2 * W * W + i] = NAN; /* past the planes: never read */
                cnnc_conv_depthwise(&g, 2, 1, weights, image, got, NULL);
                cnnc_conv_depthwise_reference(&g, 2, 1, weights, image, ref, NULL);
                double worst = 0.0;
                for (size_t i = 0; i < 2 * pq; i++) {
                    const double err = fabs((double)got[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
                    if (!(err <= worst)) worst = err;
                }
                CHECK(worst <= 1e-6 * 11);
                free(ref);
                free(got);
                free(image);
                free(weights);
            }
}

int main(void) {
    cnnc_rng rng;
    rng.seed = 20261207;
    rng.counter = 0;
    for (g_case = 0; g_case < 2000; g_case++) sweep_case(&rng);
    g_case = -1;
    narrow_cases();
    const int sizes[5] = {7, 14, 28, 56, 112};
    for (int i = 0; i < 5; i++) {
        mobilenet_case(sizes[i], 1);
        mobilenet_case(sizes[i], 2);
    }
    printf("test_depthwise: %d passed, %d failed (seed %llu, %s)\n", g_passed, g_failed,
           (unsigned long long)rng.seed, VECTOR_BUILD ? "vector path" : "plain path");
    return g_failed == 0 ? 0 : 1;
}
