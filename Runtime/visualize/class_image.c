/*
 * class_image.c — `cnnc visualize class-image` (Simonyan, Vedaldi and Zisserman 2014): an
 * input x that maximizes score_k(x) - l2 * |x|^2 by gradient ascent, x += lr * (d score_k /
 * dx - 2 * l2 * x), in inference mode; one image per class, all classes in one batch. Every
 * step may first shift the image by a random offset of up to `jitter` pixels (wrapping
 * around; the gradient is shifted back); every `blur-every` steps a Gaussian blur of sigma
 * `blur` smooths it; after every step it is clipped to `range` (the data's range, 0,1 for
 * images read as x / 255). Starts from zeros or seeded noise.
 *
 * Options: class=K,... output=PNG steps= lr= l2= blur= blur-every= jitter= start=zeros|noise
 * [range=LO,HI seed= weights=].
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K MODEL_MACRO(NUM_CLASSES)

/* dst = src shifted by (dy, dx), wrapping around, per channel plane. */
static void roll(const float *src, float *dst, int dy, int dx) {
    for (int c = 0; c < VIZ_C; c++)
        for (int y = 0; y < VIZ_H; y++)
            for (int x = 0; x < VIZ_W; x++)
                dst[(c * VIZ_H + (y + dy + VIZ_H) % VIZ_H) * VIZ_W + (x + dx + VIZ_W) % VIZ_W] = src[(c * VIZ_H + y) * VIZ_W + x];
}

/* A separable Gaussian blur of every channel plane (edges clamped). */
static void blur(float *x, float sigma, float *tmp) {
    const int radius = (int)ceilf(3.0f * sigma) < 1 ? 1 : (int)ceilf(3.0f * sigma);
    float kernel[64];
    const int r = radius > 31 ? 31 : radius;
    float sum = 0.0f;
    for (int i = -r; i <= r; i++) sum += kernel[i + r] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) kernel[i] /= sum;
    for (int pass = 0; pass < 2; pass++)
        for (int c = 0; c < VIZ_C; c++)
            for (int y = 0; y < VIZ_H; y++)
                for (int xx = 0; xx < VIZ_W; xx++) {
                    float v = 0.0f;
                    for (int i = -r; i <= r; i++) {
                        int yy = pass ? y + i : y, xs = pass ? xx : xx + i;
                        yy = yy < 0 ? 0 : yy >= VIZ_H ? VIZ_H - 1 : yy;
                        xs = xs < 0 ? 0 : xs >= VIZ_W ? VIZ_W - 1 : xs;
                        v += kernel[i + r] * (pass ? tmp : x)[(c * VIZ_H + yy) * VIZ_W + xs];
                    }
                    (pass ? x : tmp)[(c * VIZ_H + y) * VIZ_W + xx] = v;
                }
}

int main(int argc, char **argv) {
    viz_options(argc, argv);
    const char *output = viz_option("output", "class.png"), *range = viz_option("range", NULL);
    const int steps = atoi(viz_option("steps", "200")), blur_every = atoi(viz_option("blur-every", "4"));
    const int jitter = atoi(viz_option("jitter", "0")), noise = strcmp(viz_option("start", "zeros"), "noise") == 0;
    const float lr = (float)atof(viz_option("lr", "0.1")), l2 = (float)atof(viz_option("l2", "0.01"));
    const float sigma = (float)atof(viz_option("blur", "0"));
    const uint64_t seed = strtoull(viz_option("seed", "0"), NULL, 10);
    float lo = -INFINITY, hi = INFINITY;
    if (range) sscanf(range, "%f,%f", &lo, &hi);
    viz_model m;
    if (viz_model_open(&m)) return 1;
    int target[MODEL_MACRO(MAX_BATCH)], n = 0;
    for (const char *p = viz_option("class", "0"); p && n < MODEL_MACRO(MAX_BATCH); p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        target[n++] = atoi(p);
    const size_t size = (size_t)n * VIZ_INPUT_SIZE;
    float *x = cnnc_aligned_alloc(sizeof(float) * size, 64), *shifted = cnnc_aligned_alloc(sizeof(float) * size, 64);
    float *grad = malloc(sizeof(float) * size), *back = malloc(sizeof(float) * size), *tmp = malloc(sizeof(float) * VIZ_INPUT_SIZE);
    float *weights = calloc((size_t)n * K, sizeof(float)), *scores = malloc(sizeof(float) * (size_t)n * K), *first = malloc(sizeof(float) * n);
    float prob[K];
    if (!x || !shifted || !grad || !back || !tmp || !weights || !scores || !first) return viz_fail("out of memory");
    for (int i = 0; i < n; i++) weights[(size_t)i * K + target[i]] = 1.0f;
    /* the start: zeros (clipped into the range), or noise around the range's middle */
    const float mid = range ? 0.5f * (lo + hi) : 0.0f, spread = range ? 0.1f * (hi - lo) : 0.1f;
    for (size_t i = 0; i < size; i++) {
        x[i] = noise ? mid + spread * cnnc_rng_normal(seed, i) : 0.0f;
        x[i] = fminf(fmaxf(x[i], lo), hi);
    }
    cnnc_rng rng = {seed ^ 0x6a69747465720000ull, 0};

    /* gradient ascent */
    for (int step = 0; step <= steps; step++) {
        int dy = 0, dx = 0;
        if (jitter > 0 && step < steps) {
            dy = (int)(cnnc_rng_next_u64(&rng) % (uint64_t)(2 * jitter + 1)) - jitter;
            dx = (int)(cnnc_rng_next_u64(&rng) % (uint64_t)(2 * jitter + 1)) - jitter;
        }
        for (int i = 0; i < n; i++) roll(x + (size_t)i * VIZ_INPUT_SIZE, shifted + (size_t)i * VIZ_INPUT_SIZE, dy, dx);
        if (MODEL(input_grad)(&m.ctx, &m.trainer, shifted, n, weights, scores, grad) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m.ctx));
        if (step == 0)
            for (int i = 0; i < n; i++) first[i] = scores[(size_t)i * K + target[i]];
        if (step == steps) break; /* the last pass only measures (unshifted) */
        for (int i = 0; i < n; i++) roll(grad + (size_t)i * VIZ_INPUT_SIZE, back + (size_t)i * VIZ_INPUT_SIZE, -dy, -dx);
        for (size_t i = 0; i < size; i++) x[i] = fminf(fmaxf(x[i] + lr * (back[i] - 2.0f * l2 * x[i]), lo), hi);
        if (sigma > 0.0f && (step + 1) % blur_every == 0)
            for (int i = 0; i < n; i++) blur(x + (size_t)i * VIZ_INPUT_SIZE, sigma, tmp);
    }

    cnnc_image *tiles = calloc((size_t)n, sizeof *tiles);
    cnnc_error err;
    for (int i = 0; i < n; i++) {
        const float *s = scores + (size_t)i * K, *xi = x + (size_t)i * VIZ_INPUT_SIZE;
        viz_softmax(s, K, prob);
        double norm = 0.0;
        for (int j = 0; j < VIZ_INPUT_SIZE; j++) norm += (double)xi[j] * xi[j];
        printf("class %d: score %.4f (from %.4f at the start), probability %.4f, predicted %d, |x| %.3f\n", target[i], s[target[i]], first[i],
               prob[target[i]], viz_argmax(s, K), sqrt(norm));
        float a = lo, z = hi;
        if (!range) cnnc_range(xi, VIZ_INPUT_SIZE, &a, &z);
        cnnc_status st = VIZ_C == 3 ? cnnc_tile_rgb(xi, VIZ_H, VIZ_W, a, z, &tiles[i], &err)
                                    : cnnc_tile_plane(xi, VIZ_H, VIZ_W, a, z, CNNC_MAP_GRAY, &tiles[i], &err);
        if (st != CNNC_OK) return viz_fail("%s", err.message);
    }
    const int scale = cnnc_tile_scale(VIZ_H, VIZ_W, 112);
    cnnc_image grid;
    cnnc_grid_layout g;
    if (cnnc_grid(tiles, n, 0, scale, 4, (cnnc_rgb){64, 96, 160}, &grid, &g, &err) != CNNC_OK) return viz_fail("%s", err.message);
    if (viz_write_png(output, &grid)) return 1;
    printf("wrote %s (%dx%d): %d image%s after %d steps (lr %g, l2 %g, blur %g every %d, jitter %d, start %s), %d columns at %dx, %s\n",
           output, grid.width, grid.height, n, n == 1 ? "" : "s", steps, lr, l2, sigma, blur_every, jitter, noise ? "noise" : "zeros",
           g.columns, scale, range ? "black to white = the range" : "each from its smallest to largest value");
    for (int i = 0; i < n; i++) cnnc_image_free(&tiles[i]);
    free(tiles);
    cnnc_image_free(&grid);
    free(first);
    free(scores);
    free(weights);
    free(tmp);
    free(back);
    free(grad);
    cnnc_aligned_free(shifted);
    cnnc_aligned_free(x);
    viz_model_close(&m);
    return 0;
}
