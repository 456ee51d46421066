/*
 * top_images.c — `cnnc visualize top-images`: streams the test split of a data set through
 * the compiled model in batches and keeps the images that activate one unit most (Girshick
 * et al. 2014). For a conv-shaped layer the unit is a channel and an image's value is the
 * channel's largest value over positions; the mosaic shows each image with that position's
 * receptive field framed in red, and the receptive field cropped and enlarged beside it.
 * For a dense layer the unit is one value and each cell is the image.
 *
 * Options: layer=NAME channel=K data=DIR format= output=PNG [count=16 limit=0 weights= seed=].
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One candidate: an image, its value and where (conv layers) it was reached. */
typedef struct {
    float value;
    int64_t index;
    int p, q;
} hit;

/* Inserts h into the descending list top[0..*have) of at most count entries; ties keep the earlier image. */
static void keep(hit *top, int *have, int count, hit h) {
    if (*have == count && !(h.value > top[count - 1].value)) return;
    int i = *have < count ? (*have)++ : count - 1;
    while (i > 0 && h.value > top[i - 1].value) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = h;
}

int main(int argc, char **argv) {
    viz_options(argc, argv);
    const char *output = viz_option("output", "top.png");
    const int channel = atoi(viz_option("channel", "0")), count = atoi(viz_option("count", "16"));
    const int64_t limit = atoll(viz_option("limit", "0"));
    viz_model m;
    cnnc_dataset ds;
    if (viz_model_open(&m) || viz_read_dataset(&ds)) return 1;
    const int layer = viz_layer(viz_option("layer", ""));
    if (layer < 0) return 1;
    const MODEL(layer_info) *info = MODEL(layer)(layer);
    const int conv = info->rank == 3, plane = conv ? info->dims[1] * info->dims[2] : 1;
    if (channel < 0 || channel >= (conv ? info->dims[0] : info->size))
        return viz_fail("channel %d is out of range for layer '%s'", channel, info->name);
    const int64_t total = limit > 0 && limit < ds.count ? limit : ds.count;
    const int B = MODEL_MACRO(MAX_BATCH);
    float *x = cnnc_aligned_alloc(sizeof(float) * (size_t)B * VIZ_INPUT_SIZE, 64);
    float *out = malloc(sizeof(float) * (size_t)B * info->size);
    hit *top = malloc(sizeof(hit) * (size_t)count);
    if (!x || !out || !top) return viz_fail("out of memory");
    int have = 0;
    const double started = cnnc_now_seconds();
    /* the pass over the data set: every image's value of the unit */
    for (int64_t start = 0; start < total; start += B) {
        const int n = (int)(total - start < B ? total - start : B);
        memcpy(x, ds.images + (size_t)start * VIZ_INPUT_SIZE, sizeof(float) * (size_t)n * VIZ_INPUT_SIZE);
        if (MODEL(forward_tap)(&m.ctx, &m.trainer, x, n, layer, out) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m.ctx));
        for (int i = 0; i < n; i++) {
            const float *v = out + (size_t)i * info->size + (conv ? (size_t)channel * plane : (size_t)channel);
            int best = 0;
            for (int j = 1; j < plane; j++)
                if (v[j] > v[best]) best = j;
            keep(top, &have, count, (hit){v[best], start + i, conv ? best / info->dims[2] : 0, conv ? best % info->dims[2] : 0});
        }
        viz_progress("top-images", start + n, total, started);
    }

    /* the mosaic: image (receptive field framed) and the enlarged crop, per hit */
    const int S = cnnc_tile_scale(VIZ_H, VIZ_W, 84);
    cnnc_image *tiles = calloc((size_t)have, sizeof *tiles);
    cnnc_error err;
    const cnnc_rgb red = {230, 30, 30};
    for (int k = 0; k < have; k++) {
        cnnc_image picture;
        if (viz_input_picture(ds.images + (size_t)top[k].index * VIZ_INPUT_SIZE, &picture)) return 1;
        const int width = conv ? 2 * S * VIZ_W + 4 : S * VIZ_W;
        if (cnnc_image_create(&tiles[k], width, S * VIZ_H, 3, &err) != CNNC_OK) return viz_fail("%s", err.message);
        cnnc_draw_fill(&tiles[k], (cnnc_rgb){255, 255, 255});
        cnnc_draw_image(&tiles[k], &picture, 0, 0, S);
        printf("%2d. image %lld (label %d): %.4f", k + 1, (long long)top[k].index, ds.labels[top[k].index], top[k].value);
        if (conv) {
            const int *rf = info->rf;
            int r0 = rf[4] + top[k].p * rf[2], c0 = rf[5] + top[k].q * rf[3], r1 = r0 + rf[0], c1 = c0 + rf[1];
            r0 = r0 < 0 ? 0 : r0;
            c0 = c0 < 0 ? 0 : c0;
            r1 = r1 > VIZ_H ? VIZ_H : r1;
            c1 = c1 > VIZ_W ? VIZ_W : c1;
            printf(" at (%d,%d): rows %d-%d, columns %d-%d", top[k].p, top[k].q, r0, r1 - 1, c0, c1 - 1);
            cnnc_image crop;
            if (cnnc_image_create(&crop, c1 - c0, r1 - r0, 3, &err) != CNNC_OK) return viz_fail("%s", err.message);
            for (int r = r0; r < r1; r++)
                memcpy(crop.pixels + (size_t)(r - r0) * crop.width * 3, picture.pixels + ((size_t)r * VIZ_W + c0) * 3, (size_t)crop.width * 3);
            const int side = crop.width > crop.height ? crop.width : crop.height, cs = S * VIZ_H / side > 0 ? S * VIZ_H / side : 1;
            cnnc_draw_image(&tiles[k], &crop, S * VIZ_W + 4 + (S * VIZ_W - cs * crop.width) / 2, (S * VIZ_H - cs * crop.height) / 2, cs);
            if (r1 - r0 < VIZ_H || c1 - c0 < VIZ_W) cnnc_draw_frame(&tiles[k], c0 * S, r0 * S, (c1 - c0) * S, (r1 - r0) * S, 2, red);
            cnnc_image_free(&crop);
        }
        printf("\n");
        cnnc_image_free(&picture);
    }
    cnnc_image grid;
    cnnc_grid_layout g;
    if (cnnc_grid(tiles, have, 0, 1, 4, (cnnc_rgb){64, 96, 160}, &grid, &g, &err) != CNNC_OK) return viz_fail("%s", err.message);
    if (viz_write_png(output, &grid)) return 1;
    printf("wrote %s (%dx%d): the %d images of %lld that activate %s %d of layer %s most, %d columns x %d rows%s\n", output,
           grid.width, grid.height, have, (long long)total, conv ? "channel" : "unit", channel, info->name, g.columns, g.rows,
           conv ? "; each: the image with the receptive field of the strongest position framed, and that field enlarged" : "");
    for (int k = 0; k < have; k++) cnnc_image_free(&tiles[k]);
    free(tiles);
    cnnc_image_free(&grid);
    free(top);
    free(out);
    cnnc_aligned_free(x);
    cnnc_dataset_free(&ds);
    viz_model_close(&m);
    return 0;
}
