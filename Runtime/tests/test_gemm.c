/*
 * test_gemm.c — tests of the runtime's matrix multiply (gemm.c) against its naive reference.
 *
 * Odd shapes (1, 3, 17, 63, 129 and blocks' edges), both transposes, overwrite and
 * accumulate, the implicit im2col operands against an explicit im2col matrix, and bitwise
 * independence from how C is split between calls (what makes results independent of the
 * thread count). The Makefile builds it once as the library is built and once with
 * -march=native, so the plain C and the vector micro-kernels are both tested.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"
#include "sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A local CHECK: tests/check.h brings file helpers this program does not use. */

/* The worst |got - want| / (1 + |want|) over m x n elements with leading dimension ld. */
static double worst_error(const float *got, const float *want, int m, int n, int ld) {
    double worst = 0.0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const double e = fabs((double)got[(size_t)i * ld + j] - want[(size_t)i * ld + j]) /
                             (1.0 + fabs((double)want[(size_t)i * ld + j]));
            if (!(e <= worst)) worst = e;
        }
    return worst;
}

/* Float rounding of a k-term sum: about k * 2^-24 relative, far below this. */
static double tolerance(int k) { return 1e-6 * (k + 1); }

static void test_sgemm_shapes(void) {
    static const int sizes[] = {1, 3, 8, 17, 32, 63, 129};
    static const int depths[] = {1, 3, 17, 63, 257, 300};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]), nd = (int)(sizeof depths / sizeof depths[0]);
    cnnc_rng rng;
    rng.seed = 7; rng.counter = 0;
    int failures = 0;
    for (int mi = 0; mi < ns; mi++)
        for (int ni = 0; ni < ns; ni++)
            for (int ki = 0; ki < nd; ki++)
                for (int variant = 0; variant < 8; variant++) {
                    const int m = sizes[mi], n = sizes[ni], k = depths[ki];
                    const int ta = variant & 1, tb = (variant >> 1) & 1, acc = (variant >> 2) & 1;
                    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 5;
                    float *a = random_floats(&rng, (size_t)lda * (ta ? k : m));
                    float *b = random_floats(&rng, (size_t)ldb * (tb ? n : k));
                    float *c = random_floats(&rng, (size_t)ldc * m);
                    float *want = malloc(sizeof(float) * (size_t)ldc * m);
                    memcpy(want, c, sizeof(float) * (size_t)ldc * m);
                    cnnc_sgemm(m, n, k, a, lda, ta, b, ldb, tb, c, ldc, acc);
                    cnnc_sgemm_reference(m, n, k, a, lda, ta, b, ldb, tb, want, ldc, acc);
                    const double e = worst_error(c, want, m, n, ldc);
                    /* the padding between rows is never written */
                    int padding_intact = 1;
                    for (int i = 0; i < m; i++)
                        for (int j = n; j < ldc; j++) padding_intact &= c[(size_t)i * ldc + j] == want[(size_t)i * ldc + j];
                    if (!(e <= tolerance(k)) || !padding_intact) {
                        if (failures++ < 10)
                            printf("sgemm m=%d n=%d k=%d trans_a=%d trans_b=%d accumulate=%d: error %g, padding %s\n",
                                   m, n, k, ta, tb, acc, e, padding_intact ? "intact" : "written");
                    }
                    free(a);
                    free(b);
                    free(c);
                    free(want);
                }
    CHECK(failures == 0);
}

/* Splitting C into blocks of rows and columns (as threads do) gives the same bits. */
static void test_sgemm_split_is_bitwise(void) {
    const int m = 45, n = 131, k = 519;
    cnnc_rng rng;
    rng.seed = 11; rng.counter = 0;
    float *a = random_floats(&rng, (size_t)m * k), *b = random_floats(&rng, (size_t)k * n);
    float *whole = calloc((size_t)m * n, sizeof(float)), *split = calloc((size_t)m * n, sizeof(float));
    cnnc_sgemm(m, n, k, a, k, 0, b, n, 0, whole, n, 0);
    for (int i0 = 0; i0 < m; i0 += 7)
        for (int j0 = 0; j0 < n; j0 += 19) {
            const int mb = m - i0 < 7 ? m - i0 : 7, nb = n - j0 < 19 ? n - j0 : 19;
            cnnc_sgemm(mb, nb, k, a + (size_t)i0 * k, k, 0, b + j0, n, 0, split + (size_t)i0 * n + j0, n, 0);
        }
    CHECK(memcmp(whole, split, sizeof(float) * (size_t)m * n) == 0);
    /* accumulating over two halves of k continues the same chain */
    float *halves = calloc((size_t)m * n, sizeof(float));
    cnnc_sgemm(m, n, 200, a, k, 0, b, n, 0, halves, n, 0);
    cnnc_sgemm(m, n, k - 200, a + 200, k, 0, b + (size_t)200 * n, n, 0, halves, n, 1);
    CHECK(memcmp(whole, halves, sizeof(float) * (size_t)m * n) == 0);
    free(a);
    free(b);
    free(whole);
    free(split);
    free(halves);
}

/* The implicit im2col operands against explicit im2col matrices and the reference, over a
 * batch of 3 images with gaps between samples, in blocks that cross samples. */
static void test_sgemm_conv(void) {
    /* C H W R S stride pad dilation */
    static const int cases[][8] = {
        {1, 5, 5, 3, 3, 1, 1, 1}, {3, 7, 9, 3, 3, 1, 0, 1}, {4, 9, 8, 3, 3, 2, 1, 1}, {2, 11, 10, 5, 5, 1, 2, 1},
        {5, 6, 6, 1, 1, 1, 0, 1}, {3, 10, 13, 3, 3, 1, 2, 2}, {17, 4, 4, 3, 3, 1, 1, 1}, {2, 33, 31, 3, 1, 2, 1, 1},
        {3, 2, 2, 3, 3, 1, 1, 1},
    };
    enum { N = 3, M = 7 };
    cnnc_rng rng;
    rng.seed = 13; rng.counter = 0;
    int failures = 0;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *p = cases[t];
        cnnc_conv_geometry g = {p[0], p[1], p[2], p[3], p[4], p[5], p[5], p[6], p[6], p[7], p[7], 0, 0};
        g.out_h = (g.height + 2 * g.pad_top - g.dilation_h * (g.kernel_h - 1) - 1) / g.stride_h + 1;
        g.out_w = (g.width + 2 * g.pad_left - g.dilation_w * (g.kernel_w - 1) - 1) / g.stride_w + 1;
        const int rows = g.channels * g.kernel_h * g.kernel_w, pq = g.out_h * g.out_w, cols = N * pq;
        const size_t image_stride = (size_t)g.channels * g.height * g.width + 5, c_stride = (size_t)M * pq + 3;
        float *images = random_floats(&rng, N * image_stride);
        /* the explicit im2col of the batch: rows x (N * P*Q) */
        float *col = malloc(sizeof(float) * (size_t)rows * cols);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                col[(size_t)r * cols + j] = cnnc_im2col_at(&g, images + (j / pq) * image_stride, r, j % pq);
        /* forward, in column blocks of 1, 37 and the rest */
        float *a = random_floats(&rng, (size_t)M * rows);
        float *out = calloc(N * c_stride, sizeof(float));
        float *want = calloc((size_t)M * cols, sizeof(float)), *explicit_c = calloc((size_t)M * cols, sizeof(float));
        const int b1 = 1, b2 = cols < 38 ? cols : 38;
        cnnc_sgemm_conv(M, b1, a, rows, 0, &g, images, image_stride, 0, out, c_stride, 0);
        cnnc_sgemm_conv(M, b2 - b1, a, rows, 0, &g, images, image_stride, b1, out, c_stride, 0);
        cnnc_sgemm_conv(M, cols - b2, a, rows, 0, &g, images, image_stride, b2, out, c_stride, 0);
        cnnc_sgemm_reference(M, cols, rows, a, rows, 0, col, cols, 0, want, cols, 0);
        cnnc_sgemm(M, cols, rows, a, rows, 0, col, cols, 0, explicit_c, cols, 0);
        double worst = 0.0;
        int same_bits = 1;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < cols; j++) {
                const float got = out[(j / pq) * c_stride + (size_t)i * pq + j % pq];
                const double e = fabs((double)got - want[(size_t)i * cols + j]) / (1.0 + fabs((double)want[(size_t)i * cols + j]));
                if (!(e <= worst)) worst = e;
                same_bits &= memcmp(&got, &explicit_c[(size_t)i * cols + j], sizeof got) == 0;
            }
        int gaps_zero = 1;
        for (int b = 0; b < N; b++)
            for (size_t u = (size_t)M * pq; u < c_stride; u++) gaps_zero &= out[b * c_stride + u] == 0.0f;
        if ((!(worst <= tolerance(rows)) || !same_bits || !gaps_zero) && failures++ < 10)
            printf("conv case %zu: error %g, bitwise %s, gaps %s\n", t, worst, same_bits ? "equal" : "different",
                   gaps_zero ? "untouched" : "written");
        /* weight gradient: D[M x rows] += E * im2col^T, E's columns the batch's positions, split
         * at rows 1 and at position 5 */
        float *e = random_floats(&rng, N * c_stride), *e_dense = malloc(sizeof(float) * (size_t)M * cols);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < cols; j++) e_dense[(size_t)i * cols + j] = e[(j / pq) * c_stride + (size_t)i * pq + j % pq];
        float *d = random_floats(&rng, (size_t)M * rows), *dwant = malloc(sizeof(float) * (size_t)M * rows);
        memcpy(dwant, d, sizeof(float) * (size_t)M * rows);
        const int k0 = cols < 5 ? cols : 5;
        cnnc_sgemm_conv_weight_grad(M, 1, k0, e, c_stride, &g, images, image_stride, 0, 0, d, rows, 1);
        cnnc_sgemm_conv_weight_grad(M, rows - 1, k0, e, c_stride, &g, images, image_stride, 0, 1, d + 1, rows, 1);
        cnnc_sgemm_conv_weight_grad(M, rows, cols - k0, e, c_stride, &g, images, image_stride, k0, 0, d, rows, 1);
        cnnc_sgemm_reference(M, rows, cols, e_dense, cols, 0, col, cols, 1, dwant, rows, 1);
        if (!(worst_error(d, dwant, M, rows, rows) <= tolerance(cols)) && failures++ < 10)
            printf("weight gradient case %zu: error %g\n", t, worst_error(d, dwant, M, rows, rows));
        /* input gradient of the output gradient e through the filters a: the reference in
         * double, then the col2im path per sample and, for stride 1, the full convolution in
         * column blocks of 1, 37 and the rest (bitwise equal to one block) */
        const size_t hw = (size_t)g.height * g.width, x_stride = (size_t)g.channels * hw + 2;
        double *xwant = calloc(N * x_stride, sizeof(double));
        for (int b = 0; b < N; b++)
            for (int r = 0; r < rows; r++) {
                const int c = r / (g.kernel_h * g.kernel_w), kr = r / g.kernel_w % g.kernel_h, ks = r % g.kernel_w;
                for (int j = 0; j < pq; j++) {
                    const int h = j / g.out_w * g.stride_h - g.pad_top + kr * g.dilation_h;
                    const int w = j % g.out_w * g.stride_w - g.pad_left + ks * g.dilation_w;
                    if (h < 0 || h >= g.height || w < 0 || w >= g.width) continue;
                    double sum = 0.0;
                    for (int i = 0; i < M; i++) sum += (double)a[(size_t)i * rows + r] * e[b * c_stride + (size_t)i * pq + j];
                    xwant[b * x_stride + (size_t)c * hw + (size_t)h * g.width + w] += sum;
                }
            }
        float *xgot = calloc(N * x_stride, sizeof(float));
        for (int b = 0; b < N; b++) cnnc_conv_input_grad_col2im(g.channels, a, rows, M, &g, e + b * c_stride, xgot + b * x_stride);
        double xworst = 0.0;
        for (size_t u = 0; u < N * x_stride; u++) {
            const double err = fabs(xgot[u] - xwant[u]) / (1.0 + fabs(xwant[u]));
            if (!(err <= xworst)) xworst = err;
        }
        if (!(xworst <= tolerance(M * 9)) && failures++ < 10) printf("input gradient (col2im) case %zu: error %g\n", t, xworst);
        if (g.stride_h == 1 && g.stride_w == 1) {
            cnnc_conv_geometry full = {M, g.out_h, g.out_w, g.kernel_h, g.kernel_w, 1, 1,
                                       (g.kernel_h - 1) * g.dilation_h - g.pad_top, (g.kernel_w - 1) * g.dilation_w - g.pad_left,
                                       g.dilation_h, g.dilation_w, g.height, g.width};
            const int xcols = N * (int)hw, x1 = xcols < 38 ? xcols : 38;
            float *whole = calloc(N * x_stride, sizeof(float)), *split = calloc(N * x_stride, sizeof(float));
            cnnc_sgemm_conv_input_grad(g.channels, xcols, a, rows, &full, e, c_stride, 0, whole, x_stride, 1);
            cnnc_sgemm_conv_input_grad(g.channels, 1, a, rows, &full, e, c_stride, 0, split, x_stride, 1);
            cnnc_sgemm_conv_input_grad(g.channels, x1 - 1, a, rows, &full, e, c_stride, 1, split, x_stride, 1);
            cnnc_sgemm_conv_input_grad(g.channels - 1, xcols - x1, a, rows, &full, e, c_stride, x1, split, x_stride, 1);
            cnnc_sgemm_conv_input_grad(1, xcols - x1, a + (size_t)(g.channels - 1) * g.kernel_h * g.kernel_w, rows, &full,
                                       e, c_stride, x1, split + (size_t)(g.channels - 1) * hw, x_stride, 1);
            double fworst = 0.0;
            for (size_t u = 0; u < N * x_stride; u++) {
                const double err = fabs(whole[u] - xwant[u]) / (1.0 + fabs(xwant[u]));
                if (!(err <= fworst)) fworst = err;
            }
            const int same = memcmp(whole, split, sizeof(float) * N * x_stride) == 0;
            if ((!(fworst <= tolerance(M * 9)) || !same) && failures++ < 10)
                printf("input gradient (full convolution) case %zu: error %g, bitwise %s\n", t, fworst,
                       same ? "equal" : "different");
            free(whole);
            free(split);
        }
        free(xwant);
        free(xgot);
        free(images);
        free(col);
        free(a);
        free(out);
        free(want);
        free(explicit_c);
        free(e);
        free(e_dense);
        free(d);
        free(dwant);
    }
    CHECK(failures == 0);
}

static void test_sgemv(void) {
    static const int sizes[] = {1, 3, 15, 16, 17, 63, 129, 400};
    cnnc_rng rng;
    rng.seed = 17; rng.counter = 0;
    int failures = 0;
    for (size_t mi = 0; mi < sizeof sizes / sizeof sizes[0]; mi++)
        for (size_t ki = 0; ki < sizeof sizes / sizeof sizes[0]; ki++) {
            const int m = sizes[mi], k = sizes[ki], lda = k + 2;
            float *a = random_floats(&rng, (size_t)m * lda), *x = random_floats(&rng, (size_t)k);
            float *y = malloc(sizeof(float) * (size_t)m), *want = malloc(sizeof(float) * (size_t)m);
            cnnc_sgemv(m, k, a, lda, x, y);
            cnnc_sgemm_reference(m, 1, k, a, lda, 0, x, 1, 0, want, 1, 0);
            if (!(worst_error(y, want, m, 1, 1) <= tolerance(k)) && failures++ < 10)
                printf("sgemv m=%d k=%d: error %g\n", m, k, worst_error(y, want, m, 1, 1));
            free(a);
            free(x);
            free(y);
            free(want);
        }
    CHECK(failures == 0);
}

int main(void) {
    test_sgemm_shapes();
    test_sgemm_split_is_bitwise();
    test_sgemm_conv();
    test_sgemv();
    printf("gemm (NR %d): %d passed, %d failed\n", cnnc_sgemm_block_columns(), g_passed, g_failed);
    return g_failed != 0;
}
