/*
 * Examples/lenet/main.c — classify Fashion-MNIST (or any 1x28x28 .npy batch) with the C that
 * cnnc generates from Examples/lenet/model.net. Uses only the public API of lenet.h
 * (docs/c-api.md) and the cnnc runtime.
 *
 *   cnnc Examples/lenet/model.net -o build/lenet/lenet.c --batch 16
 *   cc -std=c11 -O3 -march=native -fopenmp -Ibuild/lenet Examples/lenet/main.c \
 *      build/lenet/lenet.c build/lenet/cnnc_runtime.c -lz -lm -o build/lenet/lenet
 *   build/lenet/lenet --idx t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz --count 16
 *   build/lenet/lenet --npy images.npy [--weights lenet.safetensors]
 */
#include "lenet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *const class_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

/* Reads a big-endian 32-bit integer from a gzip stream; returns -1 at end of file. */
static long read_be32(gzFile f) {
    unsigned char b[4];
    if (gzread(f, b, 4) != 4) return -1;
    return (long)b[0] << 24 | (long)b[1] << 16 | (long)b[2] << 8 | (long)b[3];
}

/* Reads up to `count` images of an IDX3 file (gzipped or not) as floats in [0, 1]. */
static float *read_idx_images(const char *path, long *count) {
    gzFile f = gzopen(path, "rb");
    if (!f) { fprintf(stderr, "error: cannot open '%s'\n", path); return NULL; }
    long magic = read_be32(f), n = read_be32(f), rows = read_be32(f), cols = read_be32(f);
    if (magic != 0x803 || rows != 28 || cols != 28 || n < 0) {
        fprintf(stderr, "error: '%s' is not an IDX file of 28x28 images (magic %lx, %ldx%ld)\n", path, magic, rows, cols);
        gzclose(f);
        return NULL;
    }
    if (*count > n) *count = n;
    unsigned char *pixels = malloc((size_t)*count * 784);
    float *images = malloc(sizeof(float) * (size_t)*count * 784);
    if (!pixels || !images || gzread(f, pixels, (unsigned)(*count * 784)) != (int)(*count * 784)) {
        fprintf(stderr, "error: '%s' is truncated\n", path);
        free(pixels); free(images); gzclose(f);
        return NULL;
    }
    for (long i = 0; i < *count * 784; i++) images[i] = pixels[i] / 255.0f;
    free(pixels);
    gzclose(f);
    return images;
}

/* Reads `count` labels of an IDX1 file. */
static unsigned char *read_idx_labels(const char *path, long count) {
    gzFile f = gzopen(path, "rb");
    if (!f) { fprintf(stderr, "error: cannot open '%s'\n", path); return NULL; }
    long magic = read_be32(f), n = read_be32(f);
    unsigned char *labels = malloc((size_t)count);
    if (magic != 0x801 || n < count || !labels || gzread(f, labels, (unsigned)count) != (int)count) {
        fprintf(stderr, "error: '%s' is not an IDX label file with %ld labels\n", path, count);
        free(labels); gzclose(f);
        return NULL;
    }
    gzclose(f);
    return labels;
}

int main(int argc, char **argv) {
    const char *weights = NULL, *npy = NULL, *idx = NULL, *label_path = NULL;
    long count = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--weights") == 0) weights = argv[i + 1];
        else if (strcmp(argv[i], "--npy") == 0) npy = argv[i + 1];
        else if (strcmp(argv[i], "--idx") == 0) idx = argv[i + 1];
        else if (strcmp(argv[i], "--labels") == 0) label_path = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0) count = atol(argv[i + 1]);
        else { fprintf(stderr, "error: unknown option '%s'\n", argv[i]); return 2; }
    }
    if ((argc - 1) % 2 != 0 || (!npy && !idx) || count < 1) {
        fprintf(stderr, "usage: %s (--npy images.npy | --idx images-idx3.gz [--labels labels-idx1.gz] [--count N]) [--weights w.safetensors]\n", argv[0]);
        return 2;
    }

    /* The images: N x 1 x 28 x 28 floats. */
    float *images = NULL;
    cnnc_array_f32 array = {0};
    if (npy) {
        cnnc_error err;
        if (cnnc_npy_read_f32(npy, &array, &err) != CNNC_OK) { fprintf(stderr, "error: %s\n", err.message); return 1; }
        if (array.count % LENET_INPUT_IMAGE_SIZE != 0) {
            fprintf(stderr, "error: '%s' holds %zu floats, not a multiple of 1x28x28\n", npy, array.count);
            return 1;
        }
        images = array.data;
        count = (long)(array.count / LENET_INPUT_IMAGE_SIZE);
    } else {
        images = read_idx_images(idx, &count);
        if (!images) return 1;
    }
    unsigned char *labels = label_path ? read_idx_labels(label_path, count) : NULL;
    if (label_path && !labels) return 1;

    /* The model: regions allocated once; seeded or loaded weights. */
    lenet_context ctx;
    cnnc_status s = lenet_create(&ctx);
    if (s == CNNC_OK && weights) s = lenet_load_weights(&ctx, weights);
    if (s != CNNC_OK) { fprintf(stderr, "error: %s\n", lenet_last_error(&ctx)); return 1; }
    if (!weights) printf("no --weights: using the weights lenet_create starts with (seeded and untrained, or embedded with --embed-weights)\n");

    /* Classify in batches of at most LENET_MAX_BATCH. */
    long correct = 0;
    float logits[LENET_MAX_BATCH * LENET_OUTPUT_LOGITS_SIZE];
    for (long start = 0; start < count; start += LENET_MAX_BATCH) {
        int n = (int)(count - start < LENET_MAX_BATCH ? count - start : LENET_MAX_BATCH);
        s = lenet_forward(&ctx, images + start * LENET_INPUT_IMAGE_SIZE, logits, n);
        if (s != CNNC_OK) { fprintf(stderr, "error: %s\n", lenet_last_error(&ctx)); return 1; }
        for (int b = 0; b < n; b++) {
            int best = 0;
            for (int k = 1; k < 10; k++) if (logits[b * 10 + k] > logits[b * 10 + best]) best = k;
            long i = start + b;
            if (labels) {
                correct += best == labels[i];
                printf("image %ld: predicted %d (%s), label %d (%s)\n", i, best, class_names[best], labels[i], class_names[labels[i]]);
            } else {
                printf("image %ld: predicted %d (%s)\n", i, best, class_names[best]);
            }
        }
    }
    if (labels) printf("accuracy: %ld/%ld = %.1f%%\n", correct, count, 100.0 * (double)correct / (double)count);

    lenet_destroy(&ctx);
    if (npy) cnnc_array_f32_free(&array); else free(images);
    free(labels);
    return 0;
}
