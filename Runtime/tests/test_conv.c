/*
 * test_conv.c — tests of the convolution kernels (conv.c, and gemm.c's packed-weight entry)
 * against the naive reference cnnc_conv_reference and against each other.
 *
 * A seeded sweep over geometries (channels, sizes, kernels 1x1 to 7x7, pads including
 * asymmetric and "valid", dilation, odd widths below and above the micro-kernel's width) and
 * epilogues (bias, residual, ReLU / leaky / clip). cnnc_conv_direct and
 * cnnc_sgemm_conv_packed must both be within rounding of the double reference, agree with
 * cnnc_sgemm_conv plus the epilogue bit for bit, give the same bits however the positions and
 * rows are split between calls, and never write outside the rows and positions asked for.
 * Built plain and with -march=native (the vector micro-kernels) and under ASan/UBSan.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"
#include "sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The epilogue as the generated code applied it before the kernels did: (sum + bias) +
 * residual, then the activation. */
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


static void sweep_case(cnnc_rng *rng) {
    cnnc_conv_geometry g;
    g.channels = uniform_int(rng, 1, 20);
    g.kernel_h = uniform_int(rng, 1, 4) * 2 - 1; /* 1, 3, 5, 7 */
    g.kernel_w = uniform_int(rng, 0, 3) == 0 ? uniform_int(rng, 1, 7) : g.kernel_h;
    if (g.kernel_h * g.kernel_w > CNNC_CONV_DIRECT_MAX_TAPS) g.kernel_w = 1;
    g.dilation_h = uniform_int(rng, 0, 4) == 0 ? 2 : 1;
    g.dilation_w = uniform_int(rng, 0, 4) == 0 ? 2 : 1;
    const int span_h = (g.kernel_h - 1) * g.dilation_h, span_w = (g.kernel_w - 1) * g.dilation_w;
    g.height = span_h + uniform_int(rng, 1, 20);
    g.width = span_w + uniform_int(rng, 1, 40);
    const int strided = uniform_int(rng, 0, 3) == 0;
    g.stride_h = strided ? uniform_int(rng, 1, 3) : 1;
    g.stride_w = strided ? uniform_int(rng, 1, 3) : 1;
    /* pads: same, valid or asymmetric within the kernel's span */
    const int pad_t = uniform_int(rng, 0, span_h), pad_b = uniform_int(rng, 0, span_h - pad_t);
    const int pad_l = uniform_int(rng, 0, span_w), pad_r = uniform_int(rng, 0, span_w - pad_l);
    g.pad_top = pad_t;
    g.pad_left = pad_l;
    g.out_h = (g.height + pad_t + pad_b - span_h - 1) / g.stride_h + 1;
    g.out_w = (g.width + pad_l + pad_r - span_w - 1) / g.stride_w + 1;
    const int m = uniform_int(rng, 1, 40), crs = g.channels * g.kernel_h * g.kernel_w, pq = g.out_h * g.out_w;
    const int batch = uniform_int(rng, 1, 3);
    const size_t image_size = (size_t)g.channels * g.height * g.width, out_size = (size_t)m * pq;

    float *weights = random_floats(rng, (size_t)m * crs);
    float *bias = random_floats(rng, (size_t)m);
    float *images = random_floats(rng, image_size * batch);
    float *residual = random_floats(rng, out_size * batch);
    float *packed = malloc(sizeof(float) * cnnc_conv_packed_floats(1, m, crs));
    cnnc_conv_pack_weights(packed, weights, 1, m, crs);
    cnnc_epilogue e = {NULL, NULL, out_size, CNNC_ACT_NONE, 0.1f, -0.5f, 0.75f};
    const int variant = uniform_int(rng, 0, 7);
    if (variant & 1) e.bias = bias;
    if (variant & 2) e.residual = residual;
    e.activation = (cnnc_activation)uniform_int(rng, 0, 3);

    /* the im2col product plus the epilogue: what both kernels must reproduce bit for bit */
    float *want = malloc(sizeof(float) * out_size * batch);
    cnnc_sgemm_conv(m, batch * pq, weights, crs, 0, &g, images, image_size, 0, want, out_size, 0);
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < m; k++)
            for (int j = 0; j < pq; j++) {
                const size_t at = (size_t)b * out_size + (size_t)k * pq + j;
                cnnc_epilogue eb = e;
                if (e.residual) eb.residual = residual + (size_t)b * out_size;
                want[at] = apply(want[at], k, (size_t)k * pq + j, &eb);
            }

    /* against the double reference */
    float *ref = malloc(sizeof(float) * out_size * batch);
    double worst = 0.0;
    for (int b = 0; b < batch; b++) {
        cnnc_epilogue eb = e;
        if (e.residual) eb.residual = residual + (size_t)b * out_size;
        cnnc_conv_reference(&g, m, weights, images + (size_t)b * image_size, ref + (size_t)b * out_size, &eb);
    }
    for (size_t i = 0; i < out_size * batch; i++) {
        const double err = fabs((double)want[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
        if (!(err <= worst)) worst = err;
    }
    const int reference_ok = worst <= 1e-6 * (crs + 2);

    /* the packed product, in two column blocks and two row blocks */
    float *got = malloc(sizeof(float) * out_size * batch);
    for (size_t i = 0; i < out_size * batch; i++) got[i] = NAN;
    const int split_rows = m > CNNC_PACK_ROWS ? CNNC_PACK_ROWS * uniform_int(rng, 1, (m - 1) / CNNC_PACK_ROWS) : m;
    const int columns = batch * pq, split_cols = uniform_int(rng, 0, columns);
    for (int part = 0; part < 2; part++) {
        const int r0 = part ? split_rows : 0, rn = part ? m - split_rows : split_rows;
        if (rn <= 0) continue;
        cnnc_epilogue ep = e;
        if (e.bias) ep.bias = bias + r0;
        if (e.residual) ep.residual = residual + (size_t)r0 * pq;
        const float *panel = packed + (size_t)(r0 / CNNC_PACK_ROWS) * crs * CNNC_PACK_ROWS;
        if (split_cols > 0)
            cnnc_sgemm_conv_packed(rn, split_cols, panel, &g, images, image_size, 0, got + (size_t)r0 * pq, out_size, &ep);
        if (columns - split_cols > 0)
            cnnc_sgemm_conv_packed(rn, columns - split_cols, panel, &g, images, image_size, split_cols,
                                   got + (size_t)r0 * pq, out_size, &ep);
    }
    const int packed_ok = memcmp(got, want, sizeof(float) * out_size * batch) == 0;

    /* the direct kernel, the batch at once or a sample at a time, in two position blocks and
     * two row blocks; strided layers on their phase planes (copied in two channel blocks) and
     * weights packed in phase order, twice with other splits (the same bits) */
    int direct_ok = 1;
    if (cnnc_conv_direct_fits(&g)) {
        const int phased = g.stride_h != 1 || g.stride_w != 1;
        const int plane_w = (g.width + g.stride_w - 1) / g.stride_w;
        const size_t phase_size = phased ? cnnc_conv_phase_floats(&g) : image_size;
        const float *input = images, *weights_in_order = packed;
        float *phases = NULL, *phased_packed = NULL;
        if (phased) {
            phases = malloc(sizeof(float) * phase_size * batch);
            for (size_t i = 0; i < phase_size * batch; i++) phases[i] = NAN;
            const int c_split = uniform_int(rng, 0, g.channels);
            for (int b = 0; b < batch; b++) {
                cnnc_conv_phase_split(&g, images + (size_t)b * image_size, phases + (size_t)b * phase_size, 0, c_split);
                cnnc_conv_phase_split(&g, images + (size_t)b * image_size, phases + (size_t)b * phase_size, c_split, g.channels);
            }
            phased_packed = malloc(sizeof(float) * cnnc_conv_packed_floats(1, m, crs));
            cnnc_conv_pack_weights_phased(phased_packed, weights, 1, m, &g);
            input = phases;
            weights_in_order = phased_packed;
        }
        float *again = malloc(sizeof(float) * out_size * batch);
        for (int pass = 0; pass < 2; pass++) {
            float *dst = pass ? again : got;
            for (size_t i = 0; i < out_size * batch; i++) dst[i] = NAN;
            const int flat = g.out_h * plane_w, split = uniform_int(rng, 0, flat), together = (variant & 4) ? !pass : pass;
            const int rows_split = pass ? m : split_rows;
            for (int b = 0; b < (together ? 1 : batch); b++)
                for (int part = 0; part < 2; part++) {
                    const int r0 = part ? rows_split : 0, rn = part ? m - rows_split : rows_split;
                    if (rn <= 0) continue;
                    cnnc_epilogue ep = e;
                    if (e.bias) ep.bias = bias + r0;
                    if (e.residual) ep.residual = residual + (size_t)b * out_size + (size_t)r0 * pq;
                    const float *panel = weights_in_order + (size_t)(r0 / CNNC_PACK_ROWS) * crs * CNNC_PACK_ROWS;
                    float *o = dst + (size_t)b * out_size + (size_t)r0 * pq;
                    const float *x = input + (size_t)b * phase_size;
                    const int samples = together ? batch : 1;
                    cnnc_conv_direct(&g, rn, panel, samples, x, phase_size, o, out_size, 0, split, &ep);
                    cnnc_conv_direct(&g, rn, panel, samples, x, phase_size, o, out_size, split, flat - split, &ep);
                }
        }
        if (!phased) {
            direct_ok = memcmp(got, want, sizeof(float) * out_size * batch) == 0;
        } else {
            /* another order than the im2col product's: within rounding of the reference */
            double err_direct = 0.0;
            for (size_t i = 0; i < out_size * batch; i++) {
                const double err = fabs((double)got[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
                if (!(err <= err_direct)) err_direct = err;
            }
            direct_ok = err_direct <= 1e-6 * (crs + 2);
        }
        direct_ok = direct_ok && memcmp(got, again, sizeof(float) * out_size * batch) == 0;
        free(again);
        free(phases);
        free(phased_packed);
    } else {
        CHECK(g.out_w > (g.width + g.stride_w - 1) / g.stride_w);
    }
    if (!reference_ok || !packed_ok || !direct_ok)
        printf("case %d: C=%d H=%d W=%d K=%d R=%d S=%d stride %dx%d pad t%d b%d l%d r%d dil %dx%d batch %d "
               "variant %d act %d: reference error %g%s%s\n",
               g_case, g.channels, g.height, g.width, m, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, pad_t,
               pad_b, pad_l, pad_r, g.dilation_h, g.dilation_w, batch, variant, (int)e.activation, worst,
               packed_ok ? "" : ", packed product differs from sgemm_conv + epilogue",
               direct_ok ? "" : ", direct differs from sgemm_conv + epilogue (stride 1) or the reference, or between splits");
    CHECK(reference_ok);
    CHECK(packed_ok);
    CHECK(direct_ok);
    free(weights);
    free(bias);
    free(images);
    free(residual);
    free(packed);
    free(want);
    free(ref);
    free(got);
}

static void test_pack_layout(void) {
    /* 10 filters of 3 weights: panels of CNNC_PACK_ROWS rows, zeros past row 9 */
    float w[30], packed[24 * 3];
    for (int i = 0; i < 30; i++) w[i] = (float)(i + 1);
    const size_t count = cnnc_conv_packed_floats(1, 10, 3);
    CHECK(count == (size_t)((10 + CNNC_PACK_ROWS - 1) / CNNC_PACK_ROWS) * CNNC_PACK_ROWS * 3);
    CHECK(count <= 24 * 3);
    cnnc_conv_pack_weights(packed, w, 1, 10, 3);
    int ok = 1;
    for (size_t at = 0; at < count; at++) {
        const size_t panel = at / (3 * CNNC_PACK_ROWS), p = at / CNNC_PACK_ROWS % 3, i = at % CNNC_PACK_ROWS;
        const size_t row = panel * CNNC_PACK_ROWS + i;
        ok &= packed[at] == (row < 10 ? w[row * 3 + p] : 0.0f);
    }
    CHECK(ok);
    CHECK(cnnc_conv_packed_floats(0, 10, 3) == 0);
}

/* A random "same"-width stride-1 geometry (pad_left + pad_right = the kernel's span), the
 * shape the weight-gradient kernel and the transposed input gradient take. */
static cnnc_conv_geometry same_width_geometry(cnnc_rng *rng) {
    cnnc_conv_geometry g;
    g.channels = uniform_int(rng, 1, 20);
    g.kernel_h = uniform_int(rng, 1, 4) * 2 - 1;
    g.kernel_w = uniform_int(rng, 0, 3) == 0 ? uniform_int(rng, 1, 7) : g.kernel_h;
    if (g.kernel_h * g.kernel_w > CNNC_CONV_DIRECT_MAX_TAPS) g.kernel_w = 1;
    g.dilation_h = uniform_int(rng, 0, 4) == 0 ? 2 : 1;
    g.dilation_w = uniform_int(rng, 0, 4) == 0 ? 2 : 1;
    const int span_h = (g.kernel_h - 1) * g.dilation_h, span_w = (g.kernel_w - 1) * g.dilation_w;
    g.height = span_h + uniform_int(rng, 1, 20);
    g.width = uniform_int(rng, 1, 40);
    g.stride_h = g.stride_w = 1;
    g.pad_top = uniform_int(rng, 0, span_h);
    const int pad_b = uniform_int(rng, 0, span_h - g.pad_top);
    g.pad_left = uniform_int(rng, 0, span_w);
    g.out_h = g.height + g.pad_top + pad_b - span_h;
    g.out_w = g.width;
    return g;
}

/* Whether got (m x C*R*S) is start plus the weight gradient of g over `batch` samples of d_out
 * (m x P*Q each) and images (C x H*W each), summed in double, within 1e-5 of the terms'
 * magnitudes. */
static int weight_grad_close(const cnnc_conv_geometry *g, int m, int batch, const float *d_out, const float *images,
                             const float *start, const float *got) {
    const int crs = g->channels * g->kernel_h * g->kernel_w, pq = g->out_h * g->out_w;
    const size_t image_size = (size_t)g->channels * g->height * g->width, out_size = (size_t)m * pq;
    int close = 1;
    for (int i = 0; i < m; i++)
        for (int c = 0; c < g->channels; c++)
            for (int r = 0; r < g->kernel_h; r++)
                for (int s = 0; s < g->kernel_w; s++) {
                    const size_t at = (size_t)i * crs + ((size_t)c * g->kernel_h + r) * g->kernel_w + s;
                    double sum = start[at], mag = fabs(sum);
                    for (int b = 0; b < batch; b++)
                        for (int p = 0; p < g->out_h; p++)
                            for (int q = 0; q < g->out_w; q++) {
                                const int h = p * g->stride_h - g->pad_top + r * g->dilation_h;
                                const int w = q * g->stride_w - g->pad_left + s * g->dilation_w;
                                if (h < 0 || h >= g->height || w < 0 || w >= g->width) continue;
                                const double term = (double)d_out[b * out_size + (size_t)i * pq + (size_t)p * g->out_w + q] *
                                                    images[b * image_size + ((size_t)c * g->height + h) * g->width + w];
                                sum += term;
                                mag += fabs(term);
                            }
                    if (fabs(got[at] - sum) > 1e-5 * mag + 1e-6) close = 0;
                }
    return close;
}

/* cnnc_conv_weight_grad_direct against a double reference, and split by rows, channels and taps;
 * every other case with an output narrower than the input (pad_left + pad_right < span). */
static void weight_grad_case(cnnc_rng *rng) {
    cnnc_conv_geometry g = same_width_geometry(rng);
    if (g_case % 2 == 1) {
        const int span_w = (g.kernel_w - 1) * g.dilation_w;
        g.width += span_w;
        g.pad_left = uniform_int(rng, 0, span_w);
        g.out_w = g.width + g.pad_left + uniform_int(rng, 0, span_w - g.pad_left) - span_w;
    }
    CHECK(cnnc_conv_weight_grad_direct_fits(&g));
    const int m = uniform_int(rng, 1, 20), taps = g.kernel_h * g.kernel_w, crs = g.channels * taps;
    /* a few cases with enough samples for several of the kernel's sample blocks */
    const int batch = g_case % 5 == 2 ? uniform_int(rng, 4, 24) : uniform_int(rng, 1, 3), pq = g.out_h * g.out_w;
    const size_t image_size = (size_t)g.channels * g.height * g.width, out_size = (size_t)m * pq;
    float *images = random_floats(rng, image_size * batch), *d_out = random_floats(rng, out_size * batch);
    float *start = random_floats(rng, (size_t)m * crs);
    float *whole = malloc(sizeof(float) * (size_t)m * crs), *split = malloc(sizeof(float) * (size_t)m * crs);
    memcpy(whole, start, sizeof(float) * (size_t)m * crs);
    memcpy(split, start, sizeof(float) * (size_t)m * crs);
    cnnc_conv_weight_grad_direct(&g, m, d_out, out_size, batch, images, image_size, whole, crs);
    /* rows split at m1, channels split at c1: the same bits */
    const int m1 = uniform_int(rng, 0, m), c1 = uniform_int(rng, 0, g.channels);
    cnnc_conv_geometry left = g, right = g;
    left.channels = c1;
    right.channels = g.channels - c1;
    for (int part = 0; part < 4; part++) {
        const int r0 = part < 2 ? 0 : m1, rows = part < 2 ? m1 : m - m1;
        const cnnc_conv_geometry *gg = part % 2 == 0 ? &left : &right;
        const int ch0 = part % 2 == 0 ? 0 : c1;
        if (rows == 0 || gg->channels == 0) continue;
        cnnc_conv_weight_grad_direct(gg, rows, d_out + (size_t)r0 * pq, out_size, batch,
                                     images + (size_t)ch0 * g.height * g.width, image_size,
                                     split + (size_t)r0 * crs + (size_t)ch0 * taps, crs);
    }
    int same = memcmp(whole, split, sizeof(float) * (size_t)m * crs) == 0;
    /* taps split at t1 (cnnc_conv_weight_grad_direct_taps): the same bits */
    const int t1 = uniform_int(rng, 1, taps);
    memcpy(split, start, sizeof(float) * (size_t)m * crs);
    cnnc_conv_weight_grad_direct_taps(&g, m, 0, t1, d_out, out_size, batch, images, image_size, split, crs);
    if (t1 < taps) cnnc_conv_weight_grad_direct_taps(&g, m, t1, taps, d_out, out_size, batch, images, image_size, split, crs);
    same = same && memcmp(whole, split, sizeof(float) * (size_t)m * crs) == 0;
    const int close = weight_grad_close(&g, m, batch, d_out, images, start, whole);
    CHECK(close);
    CHECK(same);
    if (!close || !same)
        printf("  weight grad case %d: C=%d H=%d W=%d R=%d S=%d pad %d,%d dil %d,%d P=%d m=%d batch %d\n", g_case,
               g.channels, g.height, g.width, g.kernel_h, g.kernel_w, g.pad_top, g.pad_left, g.dilation_h,
               g.dilation_w, g.out_h, m, batch);
    free(images); free(d_out); free(start); free(whole); free(split);
}

/* cnnc_conv_weight_grad_filters against a double reference (padding on any side or none, any
 * stride and dilation, rows past one 16-filter block, channels past one block of pairs), and
 * split by rows, channels and taps: the same bits. */
static void weight_grad_filters_case(cnnc_rng *rng) {
    cnnc_conv_geometry g;
    memset(&g, 0, sizeof g);
    g.channels = uniform_int(rng, 0, 4) == 0 ? uniform_int(rng, 13, 40) : uniform_int(rng, 1, 12);
    g.kernel_h = uniform_int(rng, 1, 5);
    g.kernel_w = uniform_int(rng, 1, 5);
    g.stride_h = uniform_int(rng, 1, 2);
    g.stride_w = uniform_int(rng, 1, 2);
    g.dilation_h = uniform_int(rng, 1, 2);
    g.dilation_w = uniform_int(rng, 1, 2);
    g.height = (g.kernel_h - 1) * g.dilation_h + uniform_int(rng, 1, 20);
    g.width = (g.kernel_w - 1) * g.dilation_w + uniform_int(rng, 1, 20);
    const int padded = uniform_int(rng, 0, 1), pad_bottom = padded ? uniform_int(rng, 0, 2) : 0;
    const int pad_right = padded ? uniform_int(rng, 0, 2) : 0;
    g.pad_top = padded ? uniform_int(rng, 0, 2) : 0;
    g.pad_left = padded ? uniform_int(rng, 0, 2) : 0;
    g.out_h = (g.height + g.pad_top + pad_bottom - (g.kernel_h - 1) * g.dilation_h - 1) / g.stride_h + 1;
    g.out_w = (g.width + g.pad_left + pad_right - (g.kernel_w - 1) * g.dilation_w - 1) / g.stride_w + 1;
    CHECK(cnnc_conv_weight_grad_filters_fits(&g));
    const int m = uniform_int(rng, 1, 40), taps = g.kernel_h * g.kernel_w, crs = g.channels * taps;
    const int batch = uniform_int(rng, 1, 7), pq = g.out_h * g.out_w;
    const size_t image_size = (size_t)g.channels * g.height * g.width, out_size = (size_t)m * pq;
    float *images = random_floats(rng, image_size * batch), *d_out = random_floats(rng, out_size * batch);
    float *start = random_floats(rng, (size_t)m * crs);
    float *whole = malloc(sizeof(float) * (size_t)m * crs), *split = malloc(sizeof(float) * (size_t)m * crs);
    memcpy(whole, start, sizeof(float) * (size_t)m * crs);
    memcpy(split, start, sizeof(float) * (size_t)m * crs);
    cnnc_conv_weight_grad_filters(&g, m, 0, taps, d_out, out_size, batch, images, image_size, whole, crs);
    /* rows split at m1, channels at c1, taps at t1 */
    const int m1 = uniform_int(rng, 0, m), c1 = uniform_int(rng, 0, g.channels), t1 = uniform_int(rng, 1, taps);
    for (int part = 0; part < 8; part++) {
        const int r0 = part & 1 ? m1 : 0, rows = part & 1 ? m - m1 : m1;
        const int ch0 = part & 2 ? c1 : 0, chs = part & 2 ? g.channels - c1 : c1;
        const int ta = part & 4 ? t1 : 0, tb = part & 4 ? taps : t1;
        if (rows == 0 || chs == 0 || ta >= tb) continue;
        cnnc_conv_geometry gg = g;
        gg.channels = chs;
        cnnc_conv_weight_grad_filters(&gg, rows, ta, tb, d_out + (size_t)r0 * pq, out_size, batch,
                                      images + (size_t)ch0 * g.height * g.width, image_size,
                                      split + (size_t)r0 * crs + (size_t)ch0 * taps, crs);
    }
    const int same = memcmp(whole, split, sizeof(float) * (size_t)m * crs) == 0;
    const int close = weight_grad_close(&g, m, batch, d_out, images, start, whole);
    CHECK(close);
    CHECK(same);
    if (!close || !same)
        printf("  weight grad (filters) case %d: C=%d H=%d W=%d R=%d S=%d pad %d,%d stride %d,%d dil %d,%d m=%d batch %d\n",
               g_case, g.channels, g.height, g.width, g.kernel_h, g.kernel_w, g.pad_top, g.pad_left, g.stride_h,
               g.stride_w, g.dilation_h, g.dilation_w, m, batch);
    free(images); free(d_out); free(start); free(whole); free(split);
}

/* The input gradient as a direct convolution of d_out with the transposed, flipped weights
 * (cnnc_conv_pack_weights_transposed), added into d_in through the residual, against a double
 * reference; for two groups. */
static void transposed_input_grad_case(cnnc_rng *rng) {
    cnnc_conv_geometry g = same_width_geometry(rng);
    const int groups = uniform_int(rng, 1, 2), cg = g.channels, kg = uniform_int(rng, 1, 20);
    const int C = groups * cg, K = groups * kg, taps = g.kernel_h * g.kernel_w;
    const int H = g.height, W = g.width, P = g.out_h, Q = g.out_w, batch = uniform_int(rng, 1, 3);
    const cnnc_conv_geometry full = {kg, P, Q, g.kernel_h, g.kernel_w, 1, 1,
                                     (g.kernel_h - 1) * g.dilation_h - g.pad_top, (g.kernel_w - 1) * g.dilation_w - g.pad_left,
                                     g.dilation_h, g.dilation_w, H, W};
    if (!cnnc_conv_direct_fits(&full)) return;
    const size_t in_size = (size_t)C * H * W, out_size = (size_t)K * P * Q;
    float *weights = random_floats(rng, (size_t)K * cg * taps), *d_out = random_floats(rng, out_size * batch);
    float *d_in = random_floats(rng, in_size * batch), *start = malloc(sizeof(float) * in_size * batch);
    memcpy(start, d_in, sizeof(float) * in_size * batch);
    const size_t per_group = cnnc_conv_packed_floats(1, cg, kg * taps);
    float *packed = malloc(sizeof(float) * per_group * groups);
    cnnc_conv_pack_weights_transposed(packed, weights, groups, kg, cg, taps);
    for (int gi = 0; gi < groups; gi++) {
        float *dst = d_in + (size_t)gi * cg * H * W;
        const cnnc_epilogue e = {NULL, dst, in_size, CNNC_ACT_NONE, 0.0f, 0.0f, 0.0f};
        cnnc_conv_direct(&full, cg, packed + (size_t)gi * per_group, batch, d_out + (size_t)gi * kg * P * Q, out_size,
                         dst, in_size, 0, H * Q, &e);
    }
    int close = 1;
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    const int gi = c / cg;
                    const size_t at = b * in_size + ((size_t)c * H + h) * W + w;
                    double sum = 0.0, mag = 0.0;
                    for (int k = gi * kg; k < (gi + 1) * kg; k++)
                        for (int r = 0; r < g.kernel_h; r++)
                            for (int s = 0; s < g.kernel_w; s++) {
                                const int p = h + g.pad_top - r * g.dilation_h, q = w + g.pad_left - s * g.dilation_w;
                                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                                const double term = (double)weights[(((size_t)k * cg + c % cg) * g.kernel_h + r) * g.kernel_w + s] *
                                                    d_out[b * out_size + ((size_t)k * P + p) * Q + q];
                                sum += term;
                                mag += fabs(term);
                            }
                    if (fabs(d_in[at] - (start[at] + sum)) > 1e-5 * (mag + fabs(start[at])) + 1e-6) close = 0;
                }
    CHECK(close);
    if (!close)
        printf("  transposed input grad case %d: CG=%d KG=%d G=%d H=%d W=%d R=%d S=%d pad %d,%d dil %d,%d\n", g_case, cg,
               kg, groups, H, W, g.kernel_h, g.kernel_w, g.pad_top, g.pad_left, g.dilation_h, g.dilation_w);
    free(weights); free(d_out); free(d_in); free(start); free(packed);
}

/* The filters kernel pads a sample's planes on its stack: planes too large for that are refused
 * where padded (the direct kernel takes them) and taken where nothing is padded. */
static void test_filters_fits(void) {
    cnnc_conv_geometry g = {3, 224, 224, 3, 3, 1, 1, 1, 1, 1, 1, 224, 224};
    CHECK(!cnnc_conv_weight_grad_filters_fits(&g));
    g.pad_top = g.pad_left = 0;
    g.out_h = g.out_w = 222;
    CHECK(cnnc_conv_weight_grad_filters_fits(&g));
    g.pad_left = -1;
    CHECK(!cnnc_conv_weight_grad_filters_fits(&g));
}

int main(void) {
    cnnc_rng rng;
    rng.seed = 20261206;
    rng.counter = 0;
    test_pack_layout();
    test_filters_fits();
    for (g_case = 0; g_case < 400; g_case++) sweep_case(&rng);
    for (g_case = 0; g_case < 200; g_case++) weight_grad_case(&rng);
    for (g_case = 0; g_case < 200; g_case++) weight_grad_filters_case(&rng);
    for (g_case = 0; g_case < 200; g_case++) transposed_input_grad_case(&rng);
    printf("test_conv: %d passed, %d failed (seed %llu, micro-kernel rows %d)\n", g_passed, g_failed,
           (unsigned long long)rng.seed, CNNC_PACK_ROWS);
    return g_failed == 0 ? 0 : 1;
}
