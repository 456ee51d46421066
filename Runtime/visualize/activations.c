/*
 * activations.c — `cnnc visualize activations`: every channel's feature map of one layer
 * for one input, as a grid (gray). One scale for the whole layer by default: black is the
 * smaller of 0 and the smallest value, white the largest; per-channel=1 scales every map by
 * its own range. A layer with one value per unit (dense) is one tile of its units, row by
 * row in a square.
 *
 * Options: layer=NAME output=PNG, the input (viz_read_input), [per-channel=1 weights= seed=].
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    viz_options(argc, argv);
    const char *output = viz_option("output", "activations.png");
    const int per_channel = atoi(viz_option("per-channel", "0"));
    viz_model m;
    viz_batch b;
    if (viz_model_open(&m) || viz_read_input(&b)) return 1;
    const int layer = viz_layer(viz_option("layer", ""));
    if (layer < 0) return 1;
    if (b.n != 1) return viz_fail("activations shows one input; %s holds %d (pick one with --index)", viz_option("input", ""), b.n);
    const MODEL(layer_info) *info = MODEL(layer)(layer);
    float *out = malloc(sizeof(float) * (size_t)info->size);
    if (!out) return viz_fail("out of memory");
    if (MODEL(forward_tap)(&m.ctx, &m.trainer, b.x, 1, layer, out) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m.ctx));

    /* the maps: C planes of H x W, or the units as one square plane */
    const int maps = info->rank == 3 ? info->dims[0] : 1;
    int h = info->rank == 3 ? info->dims[1] : 0, w = info->rank == 3 ? info->dims[2] : 0;
    float *planes = out;
    float lo, hi;
    cnnc_range(out, info->size, &lo, &hi);
    lo = fminf(lo, 0.0f);
    if (info->rank != 3) {
        w = (int)ceil(sqrt((double)info->size));
        h = (int)((info->size + w - 1) / w);
        planes = malloc(sizeof(float) * (size_t)h * w);
        if (!planes) return viz_fail("out of memory");
        for (int i = 0; i < h * w; i++) planes[i] = i < info->size ? out[i] : lo;
    }
    cnnc_image *tiles = calloc((size_t)maps, sizeof *tiles);
    cnnc_error err;
    for (int c = 0; c < maps; c++) {
        const float *p = planes + (size_t)c * h * w;
        float a = lo, z = hi;
        if (per_channel) cnnc_range(p, (int64_t)h * w, &a, &z);
        if (cnnc_tile_plane(p, h, w, a, z, CNNC_MAP_GRAY, &tiles[c], &err) != CNNC_OK) return viz_fail("%s", err.message);
    }
    const int scale = cnnc_tile_scale(h, w, 84);
    cnnc_image grid;
    cnnc_grid_layout g;
    if (cnnc_grid(tiles, maps, 0, scale, 2, (cnnc_rgb){64, 96, 160}, &grid, &g, &err) != CNNC_OK) return viz_fail("%s", err.message);
    if (viz_write_png(output, &grid)) return 1;
    printf("wrote %s (%dx%d): layer %s (%s), ", output, grid.width, grid.height, info->name, info->op);
    if (info->rank == 3) printf("%d maps of %dx%d", maps, h, w);
    else printf("%lld units in a %dx%d square", (long long)info->size, w, h);
    printf(", %d columns x %d rows at %dx\n", g.columns, g.rows, scale);
    if (per_channel) printf("normalization: every map from its own smallest (black) to largest (white) value\n");
    else printf("normalization: one scale for the layer: black %.4g, white %.4g (the largest value)\n", lo, hi);
    if (b.labels[0] >= 0) printf("input: data set image %s, label %d\n", viz_option("index", "0"), b.labels[0]);
    for (int c = 0; c < maps; c++) cnnc_image_free(&tiles[c]);
    free(tiles);
    if (planes != out) free(planes);
    free(out);
    cnnc_image_free(&grid);
    viz_batch_free(&b);
    viz_model_close(&m);
    return 0;
}
