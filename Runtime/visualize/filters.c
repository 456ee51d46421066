/*
 * filters.c — `cnnc visualize filters`: a conv layer's filters as a grid. One tile per
 * output channel: RGB when the layer has 3 input channels per group, gray when it has 1,
 * else a row of gray tiles (one per input channel) per output channel. Each filter is
 * scaled by its own largest |w|: 0 is mid-gray (128), +max|w| white, -max|w| black.
 *
 * Options: layer=NAME output=PNG [weights= seed= target=48 (tile side in pixels)].
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    viz_options(argc, argv);
    const char *layer = viz_option("layer", ""), *output = viz_option("output", "filters.png");
    char name[256];
    snprintf(name, sizeof name, "%s.weight", layer);
    viz_model m;
    if (viz_model_open(&m)) return 1;
    const MODEL(parameter_info) *info = NULL;
    for (int i = 0; i < MODEL_MACRO(NUM_PARAMETERS); i++)
        if (strcmp(MODEL(parameter)(i)->name, name) == 0) info = MODEL(parameter)(i);
    if (info == NULL || info->ndim != 4) return viz_fail("network '%s' has no conv weight '%s'", VIZ_NETWORK, name);
    const float *w = MODEL(parameter_data)(&m.ctx, name);
    const int K = (int)info->shape[0], C = (int)info->shape[1], R = (int)info->shape[2], S = (int)info->shape[3];
    const int per_row = C == 1 || C == 3 ? 1 : C; /* tiles per output channel */
    const int count = K * per_row;
    cnnc_image *tiles = calloc((size_t)count, sizeof *tiles);
    if (!tiles) return viz_fail("out of memory");
    cnnc_error err;
    double smallest = INFINITY, largest = 0.0;
    /* every filter k: w[k] is (C, R, S), scaled by its own largest |w| */
    for (int k = 0; k < K; k++) {
        const float *f = w + (size_t)k * C * R * S;
        float m_abs = 0.0f;
        for (int i = 0; i < C * R * S; i++) m_abs = fmaxf(m_abs, fabsf(f[i]));
        smallest = fmin(smallest, m_abs);
        largest = fmax(largest, m_abs);
        cnnc_status s = CNNC_OK;
        if (C == 3) s = cnnc_tile_rgb(f, R, S, -m_abs, m_abs, &tiles[k], &err);
        else if (C == 1) s = cnnc_tile_plane(f, R, S, -m_abs, m_abs, CNNC_MAP_GRAY, &tiles[k], &err);
        else
            for (int c = 0; c < C && s == CNNC_OK; c++)
                s = cnnc_tile_plane(f + (size_t)c * R * S, R, S, -m_abs, m_abs, CNNC_MAP_GRAY, &tiles[k * C + c], &err);
        if (s != CNNC_OK) return viz_fail("%s", err.message);
    }
    const int scale = cnnc_tile_scale(R, S, atoi(viz_option("target", "48")));
    cnnc_image grid;
    cnnc_grid_layout g;
    if (cnnc_grid(tiles, count, per_row == 1 ? 0 : per_row, scale, 2, (cnnc_rgb){64, 96, 160}, &grid, &g, &err) != CNNC_OK)
        return viz_fail("%s", err.message);
    if (viz_write_png(output, &grid)) return 1;
    printf("wrote %s (%dx%d): layer %s, %d filters of %dx%dx%d, %s, %d columns x %d rows, each tile %dx%d at %dx\n", output, grid.width,
           grid.height, layer, K, C, R, S, C == 3 ? "one RGB tile each" : C == 1 ? "one gray tile each" : "one row of gray tiles (its input channels) each",
           g.columns, g.rows, S, R, scale);
    printf("normalization: each filter scaled by its own largest |w| (from %.4g to %.4g): 0 is gray 128, +max|w| white, -max|w| black\n",
           smallest, largest);
    for (int i = 0; i < count; i++) cnnc_image_free(&tiles[i]);
    free(tiles);
    cnnc_image_free(&grid);
    viz_model_close(&m);
    return 0;
}
