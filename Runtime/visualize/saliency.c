/*
 * saliency.c — `cnnc visualize saliency` (Simonyan, Vedaldi and Zisserman 2014): the
 * gradient of a class score (before a final softmax) with respect to the input, in
 * inference mode; the map is |gradient|, the maximum over channels, drawn with viridis
 * beside the image, each map scaled from 0 (dark purple) to its own largest value (yellow).
 *
 * Options: the input (viz_read_input) output=PNG [class=K or K1,K2,... (one per input;
 * default: the predicted class) save-gradient=g.npy weights= seed=].
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K MODEL_MACRO(NUM_CLASSES)

int main(int argc, char **argv) {
    viz_options(argc, argv);
    const char *output = viz_option("output", "saliency.png"), *classes = viz_option("class", NULL);
    const char *save = viz_option("save-gradient", NULL);
    viz_model m;
    viz_batch b;
    if (viz_model_open(&m) || viz_read_input(&b)) return 1;
    const int n = b.n;
    float *x = cnnc_aligned_alloc(sizeof(float) * (size_t)n * VIZ_INPUT_SIZE, 64);
    float *weights = calloc((size_t)n * K, sizeof(float)), *scores = malloc(sizeof(float) * (size_t)n * K);
    float *grad = malloc(sizeof(float) * (size_t)n * VIZ_INPUT_SIZE), *prob = malloc(sizeof(float) * K);
    int *target = malloc(sizeof(int) * (size_t)n);
    if (!x || !weights || !scores || !grad || !prob || !target) return viz_fail("out of memory");
    memcpy(x, b.x, sizeof(float) * (size_t)n * VIZ_INPUT_SIZE);

    /* the classes: given (one for all or one per input), else predicted (a first pass with zero weights) */
    if (classes) {
        const char *p = classes;
        int given = 0;
        for (; given < n && *p; given++) {
            target[given] = atoi(p);
            p = strchr(p, ',');
            if (!p) { given++; break; }
            p++;
        }
        for (int i = given; i < n; i++) target[i] = target[0];
    } else {
        if (MODEL(input_grad)(&m.ctx, &m.trainer, x, n, weights, scores, grad) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m.ctx));
        for (int i = 0; i < n; i++) target[i] = viz_argmax(scores + (size_t)i * K, K);
    }
    for (int i = 0; i < n; i++) weights[(size_t)i * K + target[i]] = 1.0f;
    if (MODEL(input_grad)(&m.ctx, &m.trainer, x, n, weights, scores, grad) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m.ctx));
    if (save) {
        const int64_t shape[4] = {n, VIZ_C, VIZ_H, VIZ_W};
        cnnc_error err;
        if (cnnc_npy_write_f32(save, grad, 4, shape, &err) != CNNC_OK) return viz_fail("%s", err.message);
    }

    /* per input: the picture and the map, max over channels of |gradient| */
    const int plane = VIZ_H * VIZ_W;
    cnnc_image *tiles = calloc((size_t)2 * n, sizeof *tiles);
    float *map = malloc(sizeof(float) * plane);
    cnnc_error err;
    for (int i = 0; i < n; i++) {
        const float *g = grad + (size_t)i * VIZ_INPUT_SIZE;
        int peak = 0;
        for (int j = 0; j < plane; j++) {
            map[j] = 0.0f;
            for (int c = 0; c < VIZ_C; c++) map[j] = fmaxf(map[j], fabsf(g[c * plane + j]));
            if (map[j] > map[peak]) peak = j;
        }
        if (viz_input_picture(x + (size_t)i * VIZ_INPUT_SIZE, &tiles[2 * i])) return 1;
        if (cnnc_tile_plane(map, VIZ_H, VIZ_W, 0.0f, map[peak], CNNC_MAP_VIRIDIS, &tiles[2 * i + 1], &err) != CNNC_OK)
            return viz_fail("%s", err.message);
        const float *s = scores + (size_t)i * K;
        viz_softmax(s, K, prob);
        const int predicted = viz_argmax(s, K);
        printf("input %d: class %d score %.4f (probability %.4f); predicted %d (%.4f)", i, target[i], s[target[i]], prob[target[i]],
               predicted, prob[predicted]);
        if (b.labels[i] >= 0) printf("; label %d", b.labels[i]);
        printf("; largest |d score/d input| %.4g at (%d,%d)\n", map[peak], peak / VIZ_W, peak % VIZ_W);
    }
    const int scale = cnnc_tile_scale(VIZ_H, VIZ_W, 112);
    cnnc_image grid;
    if (cnnc_grid(tiles, 2 * n, 2, scale, 4, (cnnc_rgb){255, 255, 255}, &grid, NULL, &err) != CNNC_OK) return viz_fail("%s", err.message);
    if (viz_write_png(output, &grid)) return 1;
    printf("wrote %s (%dx%d): per input, the image and |gradient| (max over channels) at %dx, viridis from 0 to the map's largest value\n",
           output, grid.width, grid.height, scale);
    if (save) printf("wrote %s: the gradient, (%d,%d,%d,%d) float32\n", save, n, VIZ_C, VIZ_H, VIZ_W);
    for (int i = 0; i < 2 * n; i++) cnnc_image_free(&tiles[i]);
    free(tiles);
    free(map);
    cnnc_image_free(&grid);
    free(target);
    free(prob);
    free(grad);
    free(scores);
    free(weights);
    cnnc_aligned_free(x);
    viz_batch_free(&b);
    viz_model_close(&m);
    return 0;
}
