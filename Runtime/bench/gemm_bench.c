/*
 * gemm_bench.c — GFLOP/s of cnnc_sgemm on convolution-shaped matrices, against the FMA
 * peak measured in the same run (independent FMA chains in registers). Not a test.
 *
 *   make -C Runtime bench        (builds with -O3 -march=native -fopenmp)
 *
 * Columns: M x N x K as a convolution sees them (K output channels x P*Q positions x
 * C*R*S), one thread; then two threads, each doing half of the columns (as generated code
 * splits work).
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GFLOP/s of one thread doing only FMAs on 16 independent register accumulators. */
static double fma_peak(void) {
#if defined(__AVX512F__)
    typedef __m512 vec;
#define VFMA _mm512_fmadd_ps
#define VSET _mm512_set1_ps
#define LANES 16
#elif defined(__AVX2__) && defined(__FMA__)
    typedef __m256 vec;
#define VFMA _mm256_fmadd_ps
#define VSET _mm256_set1_ps
#define LANES 8
#else
    return 0.0;
#endif
#if defined(LANES)
    vec a0 = VSET(0.f), a1 = VSET(1.f), a2 = VSET(2.f), a3 = VSET(3.f), a4 = VSET(4.f), a5 = VSET(5.f);
    vec a6 = VSET(6.f), a7 = VSET(7.f), a8 = VSET(8.f), a9 = VSET(9.f), a10 = VSET(10.f), a11 = VSET(11.f);
    const vec x = VSET(0.999999f), y = VSET(1e-7f);
    const long iterations = 50000000;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        const double t0 = cnnc_now_seconds();
        for (long it = 0; it < iterations; it++) {
            a0 = VFMA(a0, x, y); a1 = VFMA(a1, x, y); a2 = VFMA(a2, x, y); a3 = VFMA(a3, x, y);
            a4 = VFMA(a4, x, y); a5 = VFMA(a5, x, y); a6 = VFMA(a6, x, y); a7 = VFMA(a7, x, y);
            a8 = VFMA(a8, x, y); a9 = VFMA(a9, x, y); a10 = VFMA(a10, x, y); a11 = VFMA(a11, x, y);
        }
        const double t = cnnc_now_seconds() - t0;
        const double g = 2.0 * LANES * 12 * (double)iterations / t * 1e-9;
        if (g > best) best = g;
    }
    const vec sum = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    float lanes[LANES];
    memcpy(lanes, &sum, sizeof lanes);
    if (lanes[0] == 12345.0f) printf("%g\n", lanes[0]);
    return best;
#endif
}

static double seconds_per_call(int m, int n, int k, const float *a, const float *b, float *c, int threads) {
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        const int calls = 1 + (int)(2e8 / (2.0 * m * n * k));
        const double t0 = cnnc_now_seconds();
        for (int it = 0; it < calls; it++) {
            if (threads == 1) {
                cnnc_sgemm(m, n, k, a, k, 0, b, n, 0, c, n, 0);
            } else {
                /* each thread half the columns, in multiples of the micro-kernel's width */
                const int nr = cnnc_sgemm_block_columns();
                const int half = ((n / 2 + nr - 1) / nr) * nr < n ? ((n / 2 + nr - 1) / nr) * nr : n;
#pragma omp parallel for num_threads(2) schedule(static)
                for (int t = 0; t < 2; t++) {
                    const int j0 = t == 0 ? 0 : half, j1 = t == 0 ? half : n;
                    if (j1 > j0) cnnc_sgemm(m, j1 - j0, k, a, k, 0, b + j0, n, 0, c + j0, n, 0);
                }
            }
        }
        const double t = (cnnc_now_seconds() - t0) / calls;
        if (t < best) best = t;
    }
    return best;
}

int main(void) {
    static const struct { const char *name; int m, n, k; } shapes[] = {
        {"lenet c2 (16x64x150)", 16, 64, 150},
        {"resnet20 stage1 3x3", 16, 1024, 144},
        {"resnet20 stage2 3x3", 32, 256, 288},
        {"resnet20 stage3 3x3", 64, 64, 576},
        {"vgg11 conv2 (16x16)", 128, 256, 576},
        {"vgg11 conv4 (8x8)", 256, 64, 1152},
        {"vgg11 conv6 (4x4)", 512, 16, 2304},
        {"resnet18 layer1 3x3", 64, 3136, 576},
        {"resnet18 layer4 3x3", 512, 49, 4608},
        {"square 256", 256, 256, 256},
        {"square 512", 512, 512, 512},
    };
    const double peak = fma_peak();
    printf("FMA peak, 1 thread: %.1f GFLOP/s (NR %d)\n", peak, cnnc_sgemm_block_columns());
    printf("%-24s %6s %6s %6s %10s %7s %10s %7s\n", "shape", "M", "N", "K", "1 thread", "% peak", "2 threads", "% peak");
    cnnc_rng rng = {1, 0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
        float *c = malloc(sizeof(float) * (size_t)m * n);
        for (size_t i = 0; i < (size_t)m * k; i++) a[i] = cnnc_rng_next_uniform(&rng) - 0.5f;
        for (size_t i = 0; i < (size_t)k * n; i++) b[i] = cnnc_rng_next_uniform(&rng) - 0.5f;
        const double flops = 2.0 * m * n * k;
        const double g1 = flops / seconds_per_call(m, n, k, a, b, c, 1) * 1e-9;
        const double g2 = flops / seconds_per_call(m, n, k, a, b, c, 2) * 1e-9;
        printf("%-24s %6d %6d %6d %10.1f %6.0f%% %10.1f %6.0f%%\n", shapes[s].name, m, n, k, g1, 100 * g1 / peak, g2,
               50 * g2 / peak);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
