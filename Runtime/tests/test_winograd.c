/*
 * test_winograd.c — tests of the Winograd F(4x4, 3x3) steps (winograd.c) against the naive
 * double reference cnnc_conv_reference.
 *
 * A seeded sweep over geometries (1 to 70 channels, planes from 1x1 to 21x40 including 1xN and
 * planes smaller than a tile, padding 0 or 1 on each side), batches of 1 to 4 samples whose
 * input, output and residual lie apart by strides of their own, and epilogues (bias, residual,
 * ReLU / leaky / clip): the outputs must be within Winograd's rounding of the reference, give
 * the same bits for blocks of 32 tiles and of a random size (blocks span samples) shared by 1
 * to 4 parts of the channels and output channels (as threads share a block), and never
 * write past the output or into the gaps between its samples.
 * A second sweep puts NaN into the input, the bias or the residual: every output the reference
 * makes NaN is NaN. A third runs the input gradient of a layer (transposed, turned filters; added
 * into d in through a residual at d in itself) against a double reference. Built plain, with -march=native (AVX-512 row chunks or AVX2 gathers) and under
 * ASan/UBSan; `-mavx2 -mfma` by hand tests the AVX2 path on an AVX-512 machine.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"
#include "sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The whole layer for n samples through the three steps, in blocks of nt tiles over the
 * batch (blocks span samples), V and M in one workspace. With `parts` > 1 each block is done
 * as that many threads sharing it would: the input transform in parts of the channels, the
 * products and output transform in parts of the output channels' panels (in reverse order). */
static void winograd(const cnnc_conv_geometry *g, int k, const float *packed, int n, const float *images,
                     size_t image_stride, float *out, size_t out_stride, const cnnc_epilogue *e, int nt, int parts) {
    const int total = n * ((g->out_h + 3) / 4) * ((g->out_w + 3) / 4), C = g->channels;
    const int panels = (k + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS;
    float *v = malloc(sizeof(float) * cnnc_winograd_f4_workspace_floats(k, C, nt));
    float *m = v + (size_t)36 * C * nt;
    for (int t0 = 0; t0 < total; t0 += nt) {
        const int count = total - t0 < nt ? total - t0 : nt;
        for (int j = 0; j < parts; j++) cnnc_winograd_f4_input(g, images, image_stride, t0, count, C * j / parts, C * (j + 1) / parts, v);
        for (int j = parts - 1; j >= 0; j--) {
            const int k0 = panels * j / parts * CNNC_PACK_ROWS, p1 = panels * (j + 1) / parts * CNNC_PACK_ROWS;
            const int k1 = p1 < k ? p1 : k;
            cnnc_winograd_f4_multiply(k, C, packed, v, m, count, k0, k1);
            cnnc_winograd_f4_output(g, k, m, t0, count, out, out_stride, e, k0, k1);
        }
    }
    free(v);
}

static cnnc_conv_geometry random_geometry(cnnc_rng *rng) {
    cnnc_conv_geometry g = {0};
    g.channels = uniform_int(rng, 0, 3) == 0 ? uniform_int(rng, 21, 70) : uniform_int(rng, 1, 20);
    g.kernel_h = g.kernel_w = 3;
    g.stride_h = g.stride_w = g.dilation_h = g.dilation_w = 1;
    const int pad_t = uniform_int(rng, 0, 1), pad_b = uniform_int(rng, 0, 1);
    const int pad_l = uniform_int(rng, 0, 1), pad_r = uniform_int(rng, 0, 1);
    /* outputs of 1xN, Nx1 and smaller than a tile now and then; rows of up to 18 tiles (AVX2
     * cuts rows of over 8 into pieces) */
    const int shape = uniform_int(rng, 0, 5);
    g.out_h = shape == 0 ? 1 : shape == 2 ? uniform_int(rng, 1, 3) : uniform_int(rng, 1, 19);
    g.out_w = shape == 1 ? 1 : shape == 2 ? uniform_int(rng, 1, 3) : shape == 3 ? uniform_int(rng, 1, 70) : uniform_int(rng, 1, 38);
    g.height = g.out_h + 2 - pad_t - pad_b; /* at least 1 */
    g.width = g.out_w + 2 - pad_l - pad_r;
    g.pad_top = pad_t;
    g.pad_left = pad_l;
    return g;
}

/* |w| * |x| summed over the taps of output (k, p, q): the scale of its rounding error. */
static double magnitude(const cnnc_conv_geometry *g, const float *weights, const float *image, int k, int p, int q) {
    double mag = 0.0;
    for (int c = 0; c < g->channels; c++)
        for (int r = 0; r < 3; r++)
            for (int s = 0; s < 3; s++) {
                const int h = p - g->pad_top + r, w = q - g->pad_left + s;
                if (h < 0 || h >= g->height || w < 0 || w >= g->width) continue;
                mag += fabs((double)weights[(((size_t)k * g->channels + c) * 3 + r) * 3 + s] *
                            image[((size_t)c * g->height + h) * g->width + w]);
            }
    return mag;
}

static void sweep_case(cnnc_rng *rng, int with_nan) {
    cnnc_conv_geometry g = random_geometry(rng);
    const int k = uniform_int(rng, 1, 40), pq = g.out_h * g.out_w, n = uniform_int(rng, 1, 4);
    /* samples of the input, output and residual lie apart by their size plus a gap of their own */
    const size_t image_size = (size_t)g.channels * g.height * g.width, out_size = (size_t)k * pq;
    const size_t is = image_size + (size_t)uniform_int(rng, 0, 3), os = out_size + (size_t)uniform_int(rng, 0, 3);
    const size_t rs = uniform_int(rng, 0, 1) ? os : out_size + (size_t)uniform_int(rng, 0, 5);
    const size_t out_all = (size_t)n * os;
    float *weights = random_floats(rng, (size_t)k * g.channels * 9);
    float *bias = random_floats(rng, (size_t)k);
    float *image = random_floats(rng, (size_t)n * is);
    float *residual = random_floats(rng, (size_t)n * rs);
    float *packed = malloc(sizeof(float) * cnnc_winograd_f4_packed_floats(k, g.channels));
    float *expect = malloc(sizeof(float) * out_all);
    float *got = malloc(sizeof(float) * (out_all + 16));
    float *again = malloc(sizeof(float) * (out_all + 16));
    cnnc_epilogue e = {0};
    if (uniform_int(rng, 0, 1)) e.bias = bias;
    if (uniform_int(rng, 0, 2) == 0) e.residual = residual;
    e.residual_stride = rs;
    e.activation = (cnnc_activation)uniform_int(rng, 0, 3);
    e.alpha = 0.125f;
    e.low = -0.5f;
    e.high = 0.75f;
    if (with_nan) {
        /* a NaN where an activation keeps it: no ReLU (it turns NaN into 0) */
        if (e.activation == CNNC_ACT_RELU || e.activation == CNNC_ACT_LEAKY) e.activation = CNNC_ACT_NONE;
        const int where = uniform_int(rng, 0, 2), b = uniform_int(rng, 0, n - 1);
        if (where == 0) image[(size_t)b * is + (size_t)uniform_int(rng, 0, (int)image_size - 1)] = NAN;
        else if (where == 1) { e.bias = bias; bias[uniform_int(rng, 0, k - 1)] = NAN; }
        else { e.residual = residual; residual[(size_t)b * rs + (size_t)uniform_int(rng, 0, (int)out_size - 1)] = NAN; }
    }
    cnnc_winograd_f4_pack_weights(packed, weights, k, g.channels);
    for (int b = 0; b < n; b++) {
        cnnc_epilogue one = e;
        if (e.residual) one.residual = residual + (size_t)b * rs;
        cnnc_conv_reference(&g, k, weights, image + (size_t)b * is, expect + (size_t)b * os, &one);
    }
    for (size_t i = 0; i < out_all + 16; i++) got[i] = again[i] = 12345.0f;
    const int nt = uniform_int(rng, 1, 37);
    winograd(&g, k, packed, n, image, is, got, os, &e, 32, 1);
    winograd(&g, k, packed, n, image, is, again, os, &e, nt, uniform_int(rng, 1, 4));

    /* the tiles whose 6x6 patch holds a NaN pixel: Winograd spreads it over the whole tile */
    int close = 1, nan_kept = 1, bitwise = memcmp(got, again, sizeof(float) * out_all) == 0, guard = 1;
    for (int i = 0; i < 16; i++) guard &= got[out_all + i] == 12345.0f && again[out_all + i] == 12345.0f;
    for (int b = 0; b < n; b++)
        for (size_t i = out_size; i < os; i++) guard &= got[(size_t)b * os + i] == 12345.0f;
    for (int b = 0; b < n; b++)
    for (int kk = 0; kk < k; kk++)
        for (int p = 0; p < g.out_h; p++)
            for (int q = 0; q < g.out_w; q++) {
                const size_t at = (size_t)b * os + (size_t)kk * pq + (size_t)p * g.out_w + q;
                const float a = got[at], r = expect[at];
                const float *sample = image + (size_t)b * is;
                if (isnan(r)) {
                    if (!isnan(a)) nan_kept = 0;
                    continue;
                }
                if (isnan(a)) {
                    int patch_nan = 0;
                    const int h0 = p / 4 * 4 - g.pad_top, w0 = q / 4 * 4 - g.pad_left;
                    for (int c = 0; c < g.channels; c++)
                        for (int i = 0; i < 6; i++)
                            for (int j = 0; j < 6; j++)
                                if (h0 + i >= 0 && h0 + i < g.height && w0 + j >= 0 && w0 + j < g.width &&
                                    isnan(sample[((size_t)c * g.height + h0 + i) * g.width + w0 + j]))
                                    patch_nan = 1;
                    if (!patch_nan) close = 0;
                    continue;
                }
                double mag = magnitude(&g, weights, sample, kk, p, q);
                if (e.bias) mag += fabs(e.bias[kk]);
                if (e.residual) mag += fabs(e.residual[(size_t)b * rs + (size_t)kk * pq + (size_t)p * g.out_w + q]);
                if (fabs((double)a - r) > 2e-5 * mag + 1e-6) {
                    if (close)
                        printf("  case %d: (%d,%d,%d,%d) winograd %.9g, reference %.9g, error %.3g (magnitude %.3g)\n",
                               g_case, b, kk, p, q, a, r, fabs((double)a - r), mag);
                    close = 0;
                }
            }
    CHECK(close);
    CHECK(nan_kept);
    CHECK(bitwise);
    CHECK(guard);
    if (!close || !nan_kept || !bitwise || !guard)
        printf("  case %d%s: n=%d C=%d K=%d H=%d W=%d pad %d,%d out %dx%d act %d bias %d residual %d nt %d strides %zu %zu %zu\n",
               g_case, with_nan ? " (NaN)" : "", n, g.channels, k, g.height, g.width, g.pad_top, g.pad_left, g.out_h,
               g.out_w, (int)e.activation, e.bias != NULL, e.residual != NULL, nt, is, os, rs);
    free(weights); free(bias); free(image); free(residual); free(packed); free(expect); free(got); free(again);
}

/* The input gradient of a 3x3 stride-1 convolution (C -> K channels, padding PT, PL of 0 to 2,
 * any bottom and right) as the trainer runs it: the full convolution of d out (K channels of
 * P x Q) into d in (C x H x W) with cnnc_winograd_f4_pack_weights_transposed's filters and
 * geometry {K, P, Q, 3, 3, 1, 1, 2 - PT, 2 - PL, 1, 1, H, W}, written whole or added into d in
 * through the residual at d in itself; against the double sum over (k, r, s) of
 * d out[k][h + PT - r][w + PL - s] * w[k][c][r][s]. */
static void input_gradient_case(cnnc_rng *rng) {
    const int C = uniform_int(rng, 1, 40), K = uniform_int(rng, 1, 40), n = uniform_int(rng, 1, 3);
    const int PT = uniform_int(rng, 0, 2), PL = uniform_int(rng, 0, 2);
    const int P = uniform_int(rng, 1, 19), Q = uniform_int(rng, 1, 30);
    const int H = P + 2 - PT - uniform_int(rng, 0, 2 - PT > 0 ? 2 - PT : 0), W = Q + 2 - PL - uniform_int(rng, 0, 2 - PL > 0 ? 2 - PL : 0);
    if (H < 1 || W < 1) return;
    const size_t din = (size_t)C * H * W, dout = (size_t)K * P * Q;
    float *weights = random_floats(rng, (size_t)K * C * 9);
    float *dy = random_floats(rng, (size_t)n * dout);
    float *before = random_floats(rng, (size_t)n * din);
    float *got = malloc(sizeof(float) * (size_t)n * din);
    float *packed = malloc(sizeof(float) * cnnc_winograd_f4_packed_floats(C, K));
    cnnc_winograd_f4_pack_weights_transposed(packed, weights, K, C);
    {
        /* the same bits in pieces of panels, as threads share the transform */
        const size_t floats = cnnc_winograd_f4_packed_floats(C, K);
        float *pieces = malloc(sizeof(float) * floats);
        const int panels = (C + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS, cut = uniform_int(rng, 0, panels);
        cnnc_winograd_f4_pack_panels(pieces, weights, K, C, 1, cut, panels + 5);
        cnnc_winograd_f4_pack_panels(pieces, weights, K, C, 1, -1, cut);
        CHECK(memcmp(pieces, packed, sizeof(float) * floats) == 0);
        float *forward = malloc(sizeof(float) * cnnc_winograd_f4_packed_floats(K, C));
        float *forward_pieces = malloc(sizeof(float) * cnnc_winograd_f4_packed_floats(K, C));
        const int kpanels = (K + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS, kcut = uniform_int(rng, 0, kpanels);
        cnnc_winograd_f4_pack_weights(forward, weights, K, C);
        cnnc_winograd_f4_pack_panels(forward_pieces, weights, K, C, 0, 0, kcut);
        cnnc_winograd_f4_pack_panels(forward_pieces, weights, K, C, 0, kcut, kpanels);
        CHECK(memcmp(forward, forward_pieces, sizeof(float) * cnnc_winograd_f4_packed_floats(K, C)) == 0);
        free(pieces); free(forward); free(forward_pieces);
    }
    const cnnc_conv_geometry full = {K, P, Q, 3, 3, 1, 1, 2 - PT, 2 - PL, 1, 1, H, W};
    const int accumulate = uniform_int(rng, 0, 1);
    memcpy(got, before, sizeof(float) * (size_t)n * din);
    cnnc_epilogue e = {0};
    if (accumulate) { e.residual = got; e.residual_stride = din; }
    winograd(&full, C, packed, n, dy, dout, got, din, &e, uniform_int(rng, 1, 37), uniform_int(rng, 1, 3));
    int close = 1;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    double sum = 0.0, mag = 0.0;
                    for (int k = 0; k < K; k++)
                        for (int r = 0; r < 3; r++)
                            for (int s = 0; s < 3; s++) {
                                const int p = h + PT - r, q = w + PL - s;
                                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                                const double t = (double)dy[(size_t)b * dout + ((size_t)k * P + p) * Q + q] *
                                                 weights[(((size_t)k * C + c) * 3 + r) * 3 + s];
                                sum += t;
                                mag += fabs(t);
                            }
                    const size_t at = (size_t)b * din + ((size_t)c * H + h) * W + w;
                    if (accumulate) { sum += before[at]; mag += fabs(before[at]); }
                    if (fabs(got[at] - sum) > 2e-5 * mag + 1e-6) {
                        if (close)
                            printf("  input gradient case %d: n=%d C=%d K=%d P=%d Q=%d H=%d W=%d pad %d,%d acc %d: (%d,%d,%d,%d) %.9g vs %.9g\n",
                                   g_case, n, C, K, P, Q, H, W, PT, PL, accumulate, b, c, h, w, got[at], sum);
                        close = 0;
                    }
                }
    CHECK(close);
    free(weights); free(dy); free(before); free(got); free(packed);
}

int main(void) {
    cnnc_rng rng;
    rng.seed = 20261206;
    rng.counter = 0;
    for (g_case = 0; g_case < 300; g_case++) sweep_case(&rng, 0);
    for (g_case = 0; g_case < 100; g_case++) sweep_case(&rng, 1);
    for (g_case = 0; g_case < 100; g_case++) input_gradient_case(&rng);
    printf("test_winograd: %d passed, %d failed (seed %llu, micro-kernel rows %d)\n", g_passed, g_failed,
           (unsigned long long)rng.seed, CNNC_PACK_ROWS);
    return g_failed == 0 ? 0 : 1;
}
