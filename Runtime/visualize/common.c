/*
 * common.c — options, the model, inputs, data sets, pictures of inputs and the progress
 * line, shared by the programs of `cnnc visualize` (see viz.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_argc;
static char **g_argv;

void viz_options(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
}

const char *viz_option(const char *key, const char *fallback) {
    const size_t len = strlen(key);
    for (int i = 1; i < g_argc; i++)
        if (strncmp(g_argv[i], key, len) == 0 && g_argv[i][len] == '=') return g_argv[i] + len + 1;
    return fallback;
}

int viz_fail(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    return 1;
}

int viz_model_open(viz_model *m) {
    const char *weights = viz_option("weights", NULL);
    const uint64_t seed = strtoull(viz_option("seed", "0"), NULL, 10);
    cnnc_status s = MODEL(create)(&m->ctx);
    if (s == CNNC_OK) s = MODEL(init_weights)(&m->ctx, seed);
    if (s == CNNC_OK && weights) s = MODEL(load_weights)(&m->ctx, weights);
#if VIZ_TRAINING
    if (s == CNNC_OK) s = MODEL(trainer_create)(&m->trainer, seed);
#endif
    if (s != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m->ctx));
    return 0;
}

void viz_model_close(viz_model *m) {
#if VIZ_TRAINING
    MODEL(trainer_destroy)(&m->trainer);
#endif
    MODEL(destroy)(&m->ctx);
}

void viz_batch_free(viz_batch *b) {
    free(b->x);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

/* Room for n samples and their labels (unknown). */
static int batch_alloc(viz_batch *b, int n) {
    b->n = n;
    b->x = malloc(sizeof(float) * (size_t)n * VIZ_INPUT_SIZE);
    b->labels = malloc(sizeof(int32_t) * (size_t)n);
    if (!b->x || !b->labels) return viz_fail("out of memory for %d inputs", n);
    for (int i = 0; i < n; i++) b->labels[i] = -1;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *const channel_names[5] = {"", "gray", "gray+alpha", "RGB", "RGBA"};

/* A PNG as one sample: channels checked against the network's, alpha dropped, resized on request. */
static int read_png(const char *path, viz_batch *b) {
    cnnc_error err;
    cnnc_image img, sized;
    if (cnnc_png_read(path, &img, &err) != CNNC_OK) return viz_fail("%s", err.message);
    const int color = img.channels >= 3 ? 3 : 1;
    if (color != VIZ_C) {
        viz_fail("%s is %s (%d channel%s); network '%s' takes %dx%dx%d inputs (%s)", path, channel_names[img.channels],
                 img.channels, img.channels > 1 ? "s" : "", VIZ_NETWORK, VIZ_C, VIZ_H, VIZ_W, VIZ_C == 3 ? "RGB" : VIZ_C == 1 ? "gray" : "not an image");
        cnnc_image_free(&img);
        return 1;
    }
    if (img.width != VIZ_W || img.height != VIZ_H) {
        if (atoi(viz_option("resize", "0")) == 0) {
            viz_fail("%s is %dx%d pixels; network '%s' takes %dx%d (add --resize to resize it)", path, img.width, img.height,
                     VIZ_NETWORK, VIZ_W, VIZ_H);
            cnnc_image_free(&img);
            return 1;
        }
        if (cnnc_image_resize(&img, VIZ_W, VIZ_H, &sized, &err) != CNNC_OK) {
            cnnc_image_free(&img);
            return viz_fail("%s", err.message);
        }
        cnnc_image_free(&img);
        img = sized;
    }
    if (batch_alloc(b, 1)) return 1;
    /* interleaved 8-bit pixels to planar floats in [0, 1] */
    for (int c = 0; c < VIZ_C; c++)
        for (int i = 0; i < VIZ_H * VIZ_W; i++) b->x[c * VIZ_H * VIZ_W + i] = img.pixels[(size_t)i * img.channels + c] / 255.0f;
    cnnc_image_free(&img);
    return 0;
}

static int read_npy(const char *path, viz_batch *b) {
    cnnc_error err;
    cnnc_array_f32 a;
    if (cnnc_npy_read_f32(path, &a, &err) != CNNC_OK) return viz_fail("%s", err.message);
    const int batched = a.ndim == 4;
    if ((a.ndim != 3 && a.ndim != 4) || a.shape[batched] != VIZ_C || a.shape[batched + 1] != VIZ_H || a.shape[batched + 2] != VIZ_W
        || (batched && a.shape[0] < 1)) {
        char shape[128] = "";
        for (int i = 0; i < a.ndim; i++) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), i ? ",%lld" : "%lld", (long long)a.shape[i]);
        cnnc_array_f32_free(&a);
        return viz_fail("%s has shape (%s); network '%s' takes (%d,%d,%d) or (N,%d,%d,%d)", path, shape, VIZ_NETWORK, VIZ_C, VIZ_H,
                        VIZ_W, VIZ_C, VIZ_H, VIZ_W);
    }
    const int n = batched ? (int)a.shape[0] : 1;
    const char *index = viz_option("index", NULL);
    if (index) {
        const int i = atoi(index);
        if (i < 0 || i >= n) {
            cnnc_array_f32_free(&a);
            return viz_fail("--index %d is out of range: %s holds %d input%s", i, path, n, n == 1 ? "" : "s");
        }
        if (batch_alloc(b, 1)) return 1;
        memcpy(b->x, a.data + (size_t)i * VIZ_INPUT_SIZE, sizeof(float) * VIZ_INPUT_SIZE);
    } else {
        if (batch_alloc(b, n)) return 1;
        memcpy(b->x, a.data, sizeof(float) * (size_t)n * VIZ_INPUT_SIZE);
    }
    cnnc_array_f32_free(&a);
    return 0;
}

int viz_read_dataset(cnnc_dataset *ds) {
    const char *format = viz_option("format", "fashion-mnist"), *data = viz_option("data", NULL);
    cnnc_error err;
    cnnc_status s;
    if (strcmp(format, "npy") == 0) s = cnnc_dataset_load_npy(data, viz_option("labels", NULL), ds, &err);
    else if (strcmp(format, "cifar10") == 0) s = cnnc_dataset_load_cifar10(data, 0, ds, &err);
    else s = cnnc_dataset_load_fashion_mnist(data, 0, ds, &err);
    if (s != CNNC_OK) return viz_fail("%s", err.message);
    if (ds->channels != VIZ_C || ds->height != VIZ_H || ds->width != VIZ_W) {
        viz_fail("the data set has samples of %dx%dx%d; network '%s' takes %dx%dx%d", ds->channels, ds->height, ds->width, VIZ_NETWORK,
                 VIZ_C, VIZ_H, VIZ_W);
        cnnc_dataset_free(ds);
        return 1;
    }
    return 0;
}

int viz_read_input(viz_batch *b) {
    memset(b, 0, sizeof *b);
    const char *input = viz_option("input", NULL);
    if (input && ends_with(input, ".npy")) return read_npy(input, b);
    if (input) return read_png(input, b);
    cnnc_dataset ds;
    if (viz_read_dataset(&ds)) return 1;
    const int64_t i = atoll(viz_option("index", "0"));
    if (i < 0 || i >= ds.count) {
        viz_fail("--index %lld is out of range: the data set's test split has %lld images", (long long)i, (long long)ds.count);
        cnnc_dataset_free(&ds);
        return 1;
    }
    if (batch_alloc(b, 1) == 0) {
        memcpy(b->x, ds.images + (size_t)i * VIZ_INPUT_SIZE, sizeof(float) * VIZ_INPUT_SIZE);
        b->labels[0] = ds.labels[i];
    }
    cnnc_dataset_free(&ds);
    return b->x ? 0 : 1;
}

int viz_input_picture(const float *chw, cnnc_image *out) {
    float lo, hi;
    cnnc_range(chw, VIZ_INPUT_SIZE, &lo, &hi);
    if (lo >= 0.0f && hi <= 1.0f) {
        lo = 0.0f;
        hi = 1.0f;
    }
    cnnc_error err;
    cnnc_status s = VIZ_C == 3 ? cnnc_tile_rgb(chw, VIZ_H, VIZ_W, lo, hi, out, &err)
                               : cnnc_tile_plane(chw, VIZ_H, VIZ_W, lo, hi, CNNC_MAP_GRAY, out, &err);
    return s == CNNC_OK ? 0 : viz_fail("%s", err.message);
}

int viz_write_png(const char *path, const cnnc_image *img) {
    cnnc_error err;
    if (cnnc_png_write(path, img, &err) != CNNC_OK) return viz_fail("%s", err.message);
    return 0;
}

void viz_progress(const char *what, int64_t done, int64_t total, double started) {
    static int tty = -1;
    static int64_t shown = -1;
    if (tty < 0) tty = isatty(fileno(stdout));
    const double seconds = cnnc_now_seconds() - started;
    const int tenth = (int)(10 * done / (total > 0 ? total : 1));
    if (!tty && tenth == shown && done < total) return;
    shown = tenth;
    printf("%s%s: %lld/%lld images (%.0f%%), %.0f images/s%s", tty ? "\r" : "", what, (long long)done, (long long)total,
           100.0 * (double)done / (double)total, seconds > 0 ? (double)done / seconds : 0.0, tty && done < total ? "" : "\n");
    fflush(stdout);
}

#if VIZ_TRAINING
int viz_layer(const char *name) {
    const int i = MODEL(layer_index)(name);
    if (i >= 0) return i;
    fprintf(stderr, "error: network '%s' has no layer '%s'; its layers:", VIZ_NETWORK, name);
    for (int k = 0; k < MODEL_MACRO(NUM_LAYERS); k++) fprintf(stderr, "%s %s", k ? "," : "", MODEL(layer)(k)->name);
    fputc('\n', stderr);
    return -1;
}

int viz_argmax(const float *scores, int n) {
    int best = 0;
    for (int k = 1; k < n; k++)
        if (scores[k] > scores[best]) best = k;
    return best;
}

void viz_softmax(const float *scores, int n, float *p) {
    const float top = scores[viz_argmax(scores, n)];
    double sum = 0.0;
    for (int k = 0; k < n; k++) sum += exp((double)scores[k] - top);
    for (int k = 0; k < n; k++) p[k] = (float)(exp((double)scores[k] - top) / sum);
}
#endif
