/*
 * dataset.c — labelled image data sets in memory: IDX (MNIST, Fashion-MNIST), CIFAR-10
 * binary, .npy pairs; per-channel statistics and normalization.
 *
 * IDX (http://yann.lecun.com/exdb/mnist/): a magic of two zero bytes, an element type
 * (0x08: unsigned byte) and the number of dimensions, then each dimension as a big-endian
 * u32, then the elements in row-major order. CIFAR-10 binary: records of one label byte and
 * 3072 pixel bytes (32x32 red, then green, then blue).
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Alignment of cnnc_dataset.images. */
#define DS_ALIGNMENT 64

/* The largest label cnnc_dataset_load_npy accepts is DS_MAX_CLASSES - 1. */
#define DS_MAX_CLASSES (1 << 24)

/* CIFAR-10 record layout. */
#define DS_CIFAR_PIXELS 3072
#define DS_CIFAR_RECORD (1 + DS_CIFAR_PIXELS)
#define DS_CIFAR_CLASSES 10

/* Fills the table that maps a byte to its value in [0, 1]. Division, not multiplication by
 * 1/255, so every value is the correctly rounded quotient (as torchvision's ToTensor). */
static void ds_byte_table(float table[256]) {
    for (int i = 0; i < 256; i++) {
        table[i] = (float)i / 255.0f;
    }
}

/* Allocates the arrays of a data set of count samples of C x H x W. */
static cnnc_status ds_allocate(cnnc_dataset *ds, int64_t count, int channels, int height, int width,
                               const char *what, cnnc_error *err) {
    const int64_t shape[4] = {count, channels, height, width};
    uint64_t values = 0;
    if (!cnnc_internal_shape_product(4, shape, SIZE_MAX / sizeof(float), &values) ||
        (uint64_t)count > SIZE_MAX / sizeof(int32_t)) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: %lld samples of %dx%dx%d are too many", what,
                       (long long)count, channels, height, width);
        return CNNC_ERR_ALLOC;
    }
    ds->images = cnnc_aligned_alloc((size_t)values * sizeof(float), DS_ALIGNMENT);
    ds->labels = malloc((size_t)count * sizeof(int32_t));
    if (ds->images == NULL || ds->labels == NULL) {
        cnnc_aligned_free(ds->images);
        free(ds->labels);
        ds->images = NULL;
        ds->labels = NULL;
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: cannot allocate %llu floats for %lld samples",
                       what, (unsigned long long)values, (long long)count);
        return CNNC_ERR_ALLOC;
    }
    ds->count = count;
    ds->channels = channels;
    ds->height = height;
    ds->width = width;
    return CNNC_OK;
}

void cnnc_dataset_free(cnnc_dataset *ds) {
    if (ds == NULL) {
        return;
    }
    cnnc_aligned_free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

size_t cnnc_dataset_sample_size(const cnnc_dataset *ds) {
    return (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
}

/* ---------------------------------------------------------------------------------------
 * IDX
 * ------------------------------------------------------------------------------------- */

/* Checks the header of an IDX file of unsigned bytes with `ndim` dimensions and returns
 * its dims and where the data starts. The data must be exactly as long as the dims say. */
static cnnc_status ds_idx_header(const char *path, const unsigned char *bytes, size_t size,
                                 int ndim, int64_t *dims, size_t *data_offset, cnnc_error *err) {
    const unsigned magic = 0x0800u | (unsigned)ndim;
    if (size < 4) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: file of %zu bytes is too short for an IDX header",
                       path, size);
        return CNNC_ERR_FORMAT;
    }
    unsigned got =
        (unsigned)bytes[0] << 24 | (unsigned)bytes[1] << 16 | (unsigned)bytes[2] << 8 | bytes[3];
    if (bytes[0] != 0 || bytes[1] != 0) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: not an IDX file (magic 0x%08x)", path, got);
        return CNNC_ERR_FORMAT;
    }
    if (bytes[2] != 0x08) {
        cnnc_error_set(err, CNNC_ERR_DTYPE,
                       "%s: expected IDX element type 0x08 (unsigned byte), got 0x%02x", path,
                       bytes[2]);
        return CNNC_ERR_DTYPE;
    }
    if (bytes[3] != ndim) {
        cnnc_error_set(err, CNNC_ERR_FORMAT,
                       "%s: expected an IDX file with %d dimensions (magic 0x%08x), got %d "
                       "(magic 0x%08x)",
                       path, ndim, magic, bytes[3], got);
        return CNNC_ERR_FORMAT;
    }
    size_t header = 4 + 4 * (size_t)ndim;
    if (size < header) {
        cnnc_error_set(err, CNNC_ERR_FORMAT,
                       "%s: truncated IDX header: expected %zu bytes, got %zu", path, header, size);
        return CNNC_ERR_FORMAT;
    }
    for (int i = 0; i < ndim; i++) {
        const unsigned char *p = bytes + 4 + 4 * i;
        dims[i] =
            (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        if (dims[i] == 0 || dims[i] > INT_MAX) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: IDX dimension %d is %lld", path, i,
                           (long long)dims[i]);
            return CNNC_ERR_FORMAT;
        }
    }
    uint64_t want = 0;
    if (!cnnc_internal_shape_product(ndim, dims, SIZE_MAX, &want) || want != size - header) {
        char shape[CNNC_MAX_DIMS * 21 + 3];
        cnnc_internal_format_shape(shape, sizeof shape, ndim, dims);
        cnnc_error_set(err, CNNC_ERR_FORMAT,
                       "%s: IDX data of shape %s needs %llu bytes after the %zu-byte header, "
                       "the file has %zu",
                       path, shape, (unsigned long long)want, header, size - header);
        return CNNC_ERR_FORMAT;
    }
    *data_offset = header;
    return CNNC_OK;
}

cnnc_status cnnc_dataset_load_idx(const char *images_path, const char *labels_path,
                                  cnnc_dataset *out, cnnc_error *err) {
    memset(out, 0, sizeof *out);
    unsigned char *images = NULL, *labels = NULL;
    size_t images_size = 0, labels_size = 0, images_at = 0, labels_at = 0;
    int64_t image_dims[3] = {0, 0, 0}, label_dims[1] = {0};
    cnnc_status st = cnnc_read_file_maybe_gzip(images_path, &images, &images_size, err);
    if (st == CNNC_OK) {
        st = ds_idx_header(images_path, images, images_size, 3, image_dims, &images_at, err);
    }
    if (st == CNNC_OK) {
        st = cnnc_read_file_maybe_gzip(labels_path, &labels, &labels_size, err);
    }
    if (st == CNNC_OK) {
        st = ds_idx_header(labels_path, labels, labels_size, 1, label_dims, &labels_at, err);
    }
    if (st == CNNC_OK && image_dims[0] != label_dims[0]) {
        cnnc_error_set(err, CNNC_ERR_SHAPE, "%s holds %lld images but %s holds %lld labels",
                       images_path, (long long)image_dims[0], labels_path,
                       (long long)label_dims[0]);
        st = CNNC_ERR_SHAPE;
    }
    if (st == CNNC_OK) {
        st = ds_allocate(out, image_dims[0], 1, (int)image_dims[1], (int)image_dims[2], images_path,
                         err);
    }
    if (st == CNNC_OK) {
        float table[256];
        ds_byte_table(table);
        size_t values = (size_t)image_dims[0] * cnnc_dataset_sample_size(out);
        const unsigned char *pixels = images + images_at;
        for (size_t i = 0; i < values; i++) {
            out->images[i] = table[pixels[i]];
        }
        int max_label = 0;
        for (int64_t i = 0; i < out->count; i++) {
            out->labels[i] = labels[labels_at + (size_t)i];
            max_label = out->labels[i] > max_label ? out->labels[i] : max_label;
        }
        out->classes = max_label + 1;
    }
    cnnc_file_free(images);
    cnnc_file_free(labels);
    return st;
}

/* Returns in `path` the first of dir/name.gz and dir/name that exists (of any type: reading
 * it then refuses what is not a regular file, with the reason; opening a FIFO here would
 * block). */
static cnnc_status ds_find_file(const char *dir, const char *name, char *path, size_t size,
                                cnnc_error *err) {
    const char *suffixes[2] = {".gz", ""};
    for (int i = 0; i < 2; i++) {
        int n = snprintf(path, size, "%s/%s%s", dir, name, suffixes[i]);
        if (n < 0 || (size_t)n >= size) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "directory name '%s' is too long", dir);
            return CNNC_ERR_ARGUMENT;
        }
        struct stat info;
        if (stat(path, &info) == 0) {
            return CNNC_OK;
        }
    }
    cnnc_error_set(err, CNNC_ERR_IO, "cannot find %s/%s.gz or %s/%s", dir, name, dir, name);
    return CNNC_ERR_IO;
}

/* Fails with CNNC_ERR_FORMAT when a label is not below `classes`. */
static cnnc_status ds_check_labels(const cnnc_dataset *ds, int classes, const char *path,
                                   cnnc_error *err) {
    for (int64_t i = 0; i < ds->count; i++) {
        if (ds->labels[i] < 0 || ds->labels[i] >= classes) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: label %d of sample %lld is outside [0, %d)",
                           path, (int)ds->labels[i], (long long)i, classes);
            return CNNC_ERR_FORMAT;
        }
    }
    return CNNC_OK;
}

cnnc_status cnnc_dataset_load_fashion_mnist(const char *dir, int train, cnnc_dataset *out,
                                            cnnc_error *err) {
    memset(out, 0, sizeof *out);
    const char *prefix = train ? "train" : "t10k";
    char images_name[64], labels_name[64], images_path[4096], labels_path[4096];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", prefix);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", prefix);
    cnnc_status st = ds_find_file(dir, images_name, images_path, sizeof images_path, err);
    if (st == CNNC_OK) {
        st = ds_find_file(dir, labels_name, labels_path, sizeof labels_path, err);
    }
    if (st == CNNC_OK) {
        st = cnnc_dataset_load_idx(images_path, labels_path, out, err);
    }
    if (st == CNNC_OK) {
        st = ds_check_labels(out, 10, labels_path, err);
        out->classes = 10;
    }
    if (st != CNNC_OK) {
        cnnc_dataset_free(out);
    }
    return st;
}

/* ---------------------------------------------------------------------------------------
 * CIFAR-10
 * ------------------------------------------------------------------------------------- */

/* The files of one CIFAR-10 load. */
#define DS_CIFAR_MAX_FILES 5

typedef struct {
    char path[DS_CIFAR_MAX_FILES][4096];
    unsigned char *bytes[DS_CIFAR_MAX_FILES];
    size_t size[DS_CIFAR_MAX_FILES];
    int count;
} ds_cifar_files;

/* Returns 1 when path names a directory. */
static int ds_is_directory(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

/* Lists the batch files of a CIFAR-10 directory (or its cifar-10-batches-bin child). */
static cnnc_status ds_cifar_list(const char *dir, int train, ds_cifar_files *files,
                                 cnnc_error *err) {
    char sub[4096];
    int n = snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    const char *base = n > 0 && (size_t)n < sizeof sub && ds_is_directory(sub) ? sub : dir;
    files->count = train ? 5 : 1;
    for (int i = 0; i < files->count; i++) {
        char name[32];
        if (train) {
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        } else {
            snprintf(name, sizeof name, "test_batch.bin");
        }
        cnnc_status st = ds_find_file(base, name, files->path[i], sizeof files->path[i], err);
        if (st != CNNC_OK) {
            return st;
        }
    }
    return CNNC_OK;
}

cnnc_status cnnc_dataset_load_cifar10(const char *dir_or_file, int train, cnnc_dataset *out,
                                      cnnc_error *err) {
    memset(out, 0, sizeof *out);
    ds_cifar_files *files = calloc(1, sizeof *files);
    if (files == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory", dir_or_file);
        return CNNC_ERR_ALLOC;
    }
    cnnc_status st = CNNC_OK;
    if (ds_is_directory(dir_or_file)) {
        st = ds_cifar_list(dir_or_file, train, files, err);
    } else if (strlen(dir_or_file) < sizeof files->path[0]) {
        files->count = 1;
        memcpy(files->path[0], dir_or_file, strlen(dir_or_file) + 1);
    } else {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "path '%s' is too long", dir_or_file);
        st = CNNC_ERR_ARGUMENT;
    }
    /* Read every file first: the total count sizes the arrays. */
    int64_t count = 0;
    for (int i = 0; st == CNNC_OK && i < files->count; i++) {
        st = cnnc_read_file_maybe_gzip(files->path[i], &files->bytes[i], &files->size[i], err);
        if (st == CNNC_OK && (files->size[i] == 0 || files->size[i] % DS_CIFAR_RECORD != 0)) {
            cnnc_error_set(err, CNNC_ERR_FORMAT,
                           "%s: size %zu is not a positive multiple of the %d-byte CIFAR-10 "
                           "record",
                           files->path[i], files->size[i], DS_CIFAR_RECORD);
            st = CNNC_ERR_FORMAT;
        }
        count += (int64_t)(files->size[i] / DS_CIFAR_RECORD);
    }
    if (st == CNNC_OK) {
        st = ds_allocate(out, count, 3, 32, 32, dir_or_file, err);
    }
    if (st == CNNC_OK) {
        out->classes = DS_CIFAR_CLASSES;
        float table[256];
        ds_byte_table(table);
        int64_t sample = 0;
        for (int i = 0; st == CNNC_OK && i < files->count; i++) {
            size_t records = files->size[i] / DS_CIFAR_RECORD;
            for (size_t r = 0; r < records; r++, sample++) {
                const unsigned char *rec = files->bytes[i] + r * DS_CIFAR_RECORD;
                if (rec[0] >= DS_CIFAR_CLASSES) {
                    cnnc_error_set(err, CNNC_ERR_FORMAT,
                                   "%s: record %zu has label %d, expected 0 to 9", files->path[i],
                                   r, rec[0]);
                    st = CNNC_ERR_FORMAT;
                    break;
                }
                out->labels[sample] = rec[0];
                float *dst = out->images + (size_t)sample * DS_CIFAR_PIXELS;
                for (size_t k = 0; k < DS_CIFAR_PIXELS; k++) {
                    dst[k] = table[rec[1 + k]];
                }
            }
        }
    }
    for (int i = 0; i < files->count; i++) {
        cnnc_file_free(files->bytes[i]);
    }
    free(files);
    if (st != CNNC_OK) {
        cnnc_dataset_free(out);
    }
    return st;
}

/* ---------------------------------------------------------------------------------------
 * .npy
 * ------------------------------------------------------------------------------------- */

cnnc_status cnnc_dataset_load_npy(const char *x_path, const char *y_path, cnnc_dataset *out,
                                  cnnc_error *err) {
    memset(out, 0, sizeof *out);
    cnnc_array_f32 x;
    cnnc_array_i64 y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    cnnc_status st = cnnc_npy_read_f32(x_path, &x, err);
    if (st == CNNC_OK) {
        st = cnnc_npy_read_i64(y_path, &y, err);
    }
    char shape[CNNC_MAX_DIMS * 21 + 3];
    int64_t dims[4] = {0, 1, 1, 1}; /* N, C, H, W */
    if (st == CNNC_OK) {
        if (x.ndim == 2) {
            dims[0] = x.shape[0];
            dims[1] = x.shape[1];
        } else if (x.ndim == 3) {
            dims[0] = x.shape[0];
            dims[2] = x.shape[1];
            dims[3] = x.shape[2];
        } else if (x.ndim == 4) {
            memcpy(dims, x.shape, sizeof dims);
        } else {
            cnnc_internal_format_shape(shape, sizeof shape, x.ndim, x.shape);
            cnnc_error_set(err, CNNC_ERR_SHAPE,
                           "%s: expected images of shape (N,C,H,W), (N,H,W) or (N,F), got %s",
                           x_path, shape);
            st = CNNC_ERR_SHAPE;
        }
    }
    if (st == CNNC_OK) {
        for (int i = 0; i < 4; i++) {
            if (dims[i] < 1 || dims[i] > INT_MAX) {
                cnnc_internal_format_shape(shape, sizeof shape, x.ndim, x.shape);
                cnnc_error_set(err, CNNC_ERR_SHAPE,
                               "%s: every dimension must be in [1, %d], got shape %s", x_path,
                               INT_MAX, shape);
                st = CNNC_ERR_SHAPE;
                break;
            }
        }
    }
    if (st == CNNC_OK &&
        !((y.ndim == 1 || (y.ndim == 2 && y.shape[1] == 1)) && y.shape[0] == dims[0])) {
        cnnc_internal_format_shape(shape, sizeof shape, y.ndim, y.shape);
        cnnc_error_set(err, CNNC_ERR_SHAPE, "%s: expected labels of shape [%lld], got %s", y_path,
                       (long long)dims[0], shape);
        st = CNNC_ERR_SHAPE;
    }
    int64_t max_label = 0;
    for (size_t i = 0; st == CNNC_OK && i < y.count; i++) {
        if (y.data[i] < 0 || y.data[i] >= DS_MAX_CLASSES) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: label %lld of sample %zu is outside [0, %d)",
                           y_path, (long long)y.data[i], i, DS_MAX_CLASSES);
            st = CNNC_ERR_FORMAT;
        }
        max_label = y.data[i] > max_label ? y.data[i] : max_label;
    }
    if (st == CNNC_OK) {
        out->labels = malloc(y.count * sizeof(int32_t));
        if (out->labels == NULL) {
            cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: cannot allocate %zu labels", y_path, y.count);
            st = CNNC_ERR_ALLOC;
        }
    }
    if (st == CNNC_OK) {
        /* The float array is already 64-byte aligned from cnnc_aligned_alloc: keep it. */
        for (size_t i = 0; i < y.count; i++) {
            out->labels[i] = (int32_t)y.data[i];
        }
        out->images = x.data;
        x.data = NULL;
        out->count = dims[0];
        out->channels = (int)dims[1];
        out->height = (int)dims[2];
        out->width = (int)dims[3];
        out->classes = (int)max_label + 1;
    }
    cnnc_array_f32_free(&x);
    cnnc_array_i64_free(&y);
    if (st != CNNC_OK) {
        cnnc_dataset_free(out);
    }
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Statistics and normalization
 * ------------------------------------------------------------------------------------- */

cnnc_status cnnc_dataset_channel_stats(const cnnc_dataset *ds, float *mean, float *std,
                                       cnnc_error *err) {
    if (ds == NULL || ds->count < 1 || ds->images == NULL || ds->channels < 1) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "channel statistics of an empty data set");
        return CNNC_ERR_ARGUMENT;
    }
    size_t plane = (size_t)ds->height * (size_t)ds->width;
    size_t sample = cnnc_dataset_sample_size(ds);
    double values = (double)ds->count * (double)plane;
    for (int c = 0; c < ds->channels; c++) {
        /* Two passes (mean, then squared deviations); each plane is summed on its own
         * first so the running total adds numbers of similar size. */
        double total = 0;
        for (int64_t n = 0; n < ds->count; n++) {
            const float *x = ds->images + (size_t)n * sample + (size_t)c * plane;
            double s = 0;
            for (size_t i = 0; i < plane; i++) {
                s += x[i];
            }
            total += s;
        }
        double m = total / values;
        double squares = 0;
        for (int64_t n = 0; n < ds->count; n++) {
            const float *x = ds->images + (size_t)n * sample + (size_t)c * plane;
            double s = 0;
            for (size_t i = 0; i < plane; i++) {
                double d = x[i] - m;
                s += d * d;
            }
            squares += s;
        }
        mean[c] = (float)m;
        std[c] = (float)sqrt(squares / values);
    }
    return CNNC_OK;
}

cnnc_status cnnc_dataset_normalize(cnnc_dataset *ds, const float *mean, const float *std,
                                   cnnc_error *err) {
    for (int c = 0; c < ds->channels; c++) {
        if (!(std[c] > 0.0f) || !isfinite(std[c]) || !isfinite(mean[c])) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                           "normalization of channel %d: std must be positive and finite, "
                           "got mean %g std %g",
                           c, (double)mean[c], (double)std[c]);
            return CNNC_ERR_ARGUMENT;
        }
    }
    size_t plane = (size_t)ds->height * (size_t)ds->width;
    size_t sample = cnnc_dataset_sample_size(ds);
    for (int64_t n = 0; n < ds->count; n++) {
        for (int c = 0; c < ds->channels; c++) {
            float *x = ds->images + (size_t)n * sample + (size_t)c * plane;
            for (size_t i = 0; i < plane; i++) {
                x[i] = (x[i] - mean[c]) / std[c];
            }
        }
    }
    return CNNC_OK;
}
