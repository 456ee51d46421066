/*
 * batch.c — epoch shuffling, batch assembly and data augmentation.
 *
 * Every random choice is a value of the counter-based generator at a fixed counter of a
 * stream derived from (seed, epoch) or (seed, step, sample position), so a batch never
 * depends on thread scheduling or on earlier batches. The augmentation follows
 * torchvision's RandomCrop(padding), RandomHorizontalFlip and ColorJitter on float images.
 */
#include "internal.h"

#include <math.h>

/* Stream domains, so that shuffling and augmentation with one seed are unrelated:
 * "SHUFFLE" and "AUGMENT" in ASCII. */
#define BATCH_SHUFFLE_DOMAIN UINT64_C(0x53485546464C45)
#define BATCH_AUGMENT_DOMAIN UINT64_C(0x4155474D454E54)

/* The counters of a sample's augmentation stream. */
enum {
    AUG_COUNTER_CROP_Y = 0,
    AUG_COUNTER_CROP_X = 1,
    AUG_COUNTER_FLIP = 2,
    AUG_COUNTER_BRIGHTNESS = 3,
    AUG_COUNTER_CONTRAST = 4,
    AUG_COUNTER_SATURATION = 5,
    AUG_COUNTER_ORDER = 6
};

/* The largest crop padding cnnc_augment_check accepts. */
#define AUG_MAX_PADDING 65535

/* ---------------------------------------------------------------------------------------
 * Shuffling
 * ------------------------------------------------------------------------------------- */

/* Returns a uniform integer in [0, range), range >= 1, without bias: draws below
 * 2^64 mod range are rejected so that the accepted ones are a multiple of range. */
static uint64_t batch_uniform_below(cnnc_rng *r, uint64_t range) {
    uint64_t threshold = (0 - range) % range;
    for (;;) {
        uint64_t x = cnnc_rng_next_u64(r);
        if (x >= threshold) {
            return x % range;
        }
    }
}

void cnnc_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch) {
    if (n <= 0) {
        return;
    }
    cnnc_rng r = {cnnc_rng_hash(seed ^ BATCH_SHUFFLE_DOMAIN, epoch), 0};
    for (int64_t i = 0; i < n; i++) {
        order[i] = i;
    }
    /* Fisher-Yates from the back: position i takes a uniform choice of order[0..i]. */
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)batch_uniform_below(&r, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ---------------------------------------------------------------------------------------
 * Augmentation
 * ------------------------------------------------------------------------------------- */

cnnc_status cnnc_augment_check(const cnnc_augment *aug, int channels, int height, int width,
                               cnnc_error *err) {
    if (channels < 1 || height < 1 || width < 1) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "augmentation of images of %dx%dx%d", channels,
                       height, width);
        return CNNC_ERR_ARGUMENT;
    }
    if (aug->crop_padding < 0 || aug->crop_padding > AUG_MAX_PADDING) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                       "augmentation: crop_padding must be in [0, %d], "
                       "got %d",
                       AUG_MAX_PADDING, aug->crop_padding);
        return CNNC_ERR_ARGUMENT;
    }
    const float jitter[3] = {aug->jitter_brightness, aug->jitter_contrast, aug->jitter_saturation};
    const char *names[3] = {"jitter_brightness", "jitter_contrast", "jitter_saturation"};
    for (int i = 0; i < 3; i++) {
        if (!(jitter[i] >= 0.0f) || !isfinite(jitter[i])) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                           "augmentation: %s must be finite and >= 0, got %g", names[i],
                           (double)jitter[i]);
            return CNNC_ERR_ARGUMENT;
        }
    }
    if (aug->normalize) {
        if (channels > CNNC_AUGMENT_MAX_CHANNELS) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                           "augmentation: normalize describes at most %d channels, the images "
                           "have %d",
                           CNNC_AUGMENT_MAX_CHANNELS, channels);
            return CNNC_ERR_ARGUMENT;
        }
        for (int c = 0; c < channels; c++) {
            if (!(aug->std[c] > 0.0f) || !isfinite(aug->std[c]) || !isfinite(aug->mean[c])) {
                cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                               "augmentation: channel %d needs a finite mean and a positive "
                               "finite std, got mean %g std %g",
                               c, (double)aug->mean[c], (double)aug->std[c]);
                return CNNC_ERR_ARGUMENT;
            }
        }
    }
    return CNNC_OK;
}

/* Returns an integer in [0, range) from the top 32 bits of the stream's value at
 * `counter` (multiply-shift; the bias is below range / 2^32). */
static int aug_below(uint64_t stream, uint64_t counter, uint32_t range) {
    return (int)(((cnnc_rng_hash(stream, counter) >> 32) * range) >> 32);
}

/* Returns a jitter factor uniform in [max(0, 1 - j), 1 + j]. */
static float aug_factor(uint64_t stream, uint64_t counter, float j) {
    float lo = 1.0f - j > 0.0f ? 1.0f - j : 0.0f, hi = 1.0f + j;
    return lo + (hi - lo) * cnnc_rng_uniform(stream, counter);
}

static float aug_clamp01(float x) {
    return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
}

/* The gray level of an RGB pixel, with torchvision's weights. */
static float aug_gray(float r, float g, float b) {
    return 0.2989f * r + 0.587f * g + 0.114f * b;
}

/* Crop with zero padding and optional flip: out[c][y][x] = in[c][y+dy][x'+dx] with
 * x' = W-1-x when flipping, else x; zero where that falls outside the image. */
static void aug_geometry(float *out, const float *in, int channels, int height, int width, int dy,
                         int dx, int flip) {
    size_t plane = (size_t)height * (size_t)width;
    for (int c = 0; c < channels; c++) {
        for (int y = 0; y < height; y++) {
            float *o = out + (size_t)c * plane + (size_t)y * (size_t)width;
            int sy = y + dy;
            if (sy < 0 || sy >= height) {
                memset(o, 0, (size_t)width * sizeof *o);
                continue;
            }
            const float *row = in + (size_t)c * plane + (size_t)sy * (size_t)width;
            for (int x = 0; x < width; x++) {
                int sx = (flip ? width - 1 - x : x) + dx;
                o[x] = sx >= 0 && sx < width ? row[sx] : 0.0f;
            }
        }
    }
}

/* Brightness: scale every value by f. */
static void aug_brightness(float *img, size_t values, float f) {
    for (size_t i = 0; i < values; i++) {
        img[i] = aug_clamp01(img[i] * f);
    }
}

/* Contrast: blend every value with the image's mean gray level. */
static void aug_contrast(float *img, int channels, size_t plane, float f) {
    double sum = 0;
    if (channels == 3) {
        for (size_t i = 0; i < plane; i++) {
            sum += aug_gray(img[i], img[plane + i], img[2 * plane + i]);
        }
        sum /= (double)plane;
    } else {
        size_t values = (size_t)channels * plane;
        for (size_t i = 0; i < values; i++) {
            sum += img[i];
        }
        sum /= (double)values;
    }
    float mean = (float)sum;
    size_t values = (size_t)channels * plane;
    for (size_t i = 0; i < values; i++) {
        img[i] = aug_clamp01(f * img[i] + (1.0f - f) * mean);
    }
}

/* Saturation (3 channels): blend every pixel with its own gray level. */
static void aug_saturation(float *img, size_t plane, float f) {
    for (size_t i = 0; i < plane; i++) {
        float gray = aug_gray(img[i], img[plane + i], img[2 * plane + i]);
        for (int c = 0; c < 3; c++) {
            float *v = img + (size_t)c * plane + i;
            *v = aug_clamp01(f * *v + (1.0f - f) * gray);
        }
    }
}

/* The six orders of brightness (0), contrast (1) and saturation (2). */
static const unsigned char k_aug_orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                                 {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

/* Augments one image; aug has been checked. */
static void aug_apply(float *out, const float *in, int channels, int height, int width,
                      const cnnc_augment *aug, uint64_t stream) {
    int dy = 0, dx = 0, flip = 0;
    if (aug->crop_padding > 0) {
        uint32_t span = 2 * (uint32_t)aug->crop_padding + 1;
        dy = aug_below(stream, AUG_COUNTER_CROP_Y, span) - aug->crop_padding;
        dx = aug_below(stream, AUG_COUNTER_CROP_X, span) - aug->crop_padding;
    }
    if (aug->hflip) {
        flip = cnnc_rng_uniform(stream, AUG_COUNTER_FLIP) < 0.5f;
    }
    aug_geometry(out, in, channels, height, width, dy, dx, flip);

    size_t plane = (size_t)height * (size_t)width, values = (size_t)channels * plane;
    const unsigned char *order = k_aug_orders[aug_below(stream, AUG_COUNTER_ORDER, 6)];
    for (int k = 0; k < 3; k++) {
        if (order[k] == 0 && aug->jitter_brightness > 0.0f) {
            aug_brightness(out, values,
                           aug_factor(stream, AUG_COUNTER_BRIGHTNESS, aug->jitter_brightness));
        } else if (order[k] == 1 && aug->jitter_contrast > 0.0f) {
            aug_contrast(out, channels, plane,
                         aug_factor(stream, AUG_COUNTER_CONTRAST, aug->jitter_contrast));
        } else if (order[k] == 2 && aug->jitter_saturation > 0.0f && channels == 3) {
            aug_saturation(out, plane,
                           aug_factor(stream, AUG_COUNTER_SATURATION, aug->jitter_saturation));
        }
    }

    if (aug->normalize) {
        for (int c = 0; c < channels; c++) {
            float *v = out + (size_t)c * plane;
            for (size_t i = 0; i < plane; i++) {
                v[i] = (v[i] - aug->mean[c]) / aug->std[c];
            }
        }
    }
}

/* The stream of sample `index` of the batch at `step`. */
static uint64_t aug_stream(uint64_t seed, uint64_t step, int64_t index) {
    return cnnc_rng_hash(cnnc_rng_hash(seed ^ BATCH_AUGMENT_DOMAIN, step), (uint64_t)index);
}

cnnc_status cnnc_augment_image(float *out, const float *in, int channels, int height, int width,
                               const cnnc_augment *aug, uint64_t seed, uint64_t step, int64_t index,
                               cnnc_error *err) {
    cnnc_status st = cnnc_augment_check(aug, channels, height, width, err);
    if (st != CNNC_OK) {
        return st;
    }
    aug_apply(out, in, channels, height, width, aug, aug_stream(seed, step, index));
    return CNNC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------------------- */

/* Below this many floats in a batch the samples are processed without threads. */
#define BATCH_PARALLEL_MIN_VALUES 65536

cnnc_status cnnc_dataset_batch(const cnnc_dataset *ds, const int64_t *indices, int n,
                               float *images_out, int32_t *labels_out, const cnnc_augment *aug,
                               uint64_t seed, uint64_t step, cnnc_error *err) {
    if (n < 0) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "batch of %d samples", n);
        return CNNC_ERR_ARGUMENT;
    }
    for (int b = 0; b < n; b++) {
        if (indices[b] < 0 || indices[b] >= ds->count) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                           "index %lld (sample %d of the batch) is outside the data set of "
                           "%lld samples",
                           (long long)indices[b], b, (long long)ds->count);
            return CNNC_ERR_ARGUMENT;
        }
    }
    if (aug != NULL) {
        cnnc_status st = cnnc_augment_check(aug, ds->channels, ds->height, ds->width, err);
        if (st != CNNC_OK) {
            return st;
        }
    }
    size_t sample = cnnc_dataset_sample_size(ds);
    /* Each sample is written by one iteration from its own stream: any thread count gives
     * the same bytes. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((size_t)n * sample >= BATCH_PARALLEL_MIN_VALUES)
#endif
    for (int b = 0; b < n; b++) {
        const float *src = ds->images + (size_t)indices[b] * sample;
        float *dst = images_out + (size_t)b * sample;
        if (aug == NULL) {
            memcpy(dst, src, sample * sizeof *dst);
        } else {
            aug_apply(dst, src, ds->channels, ds->height, ds->width, aug,
                      aug_stream(seed, step, b));
        }
        if (labels_out != NULL) {
            labels_out[b] = ds->labels[indices[b]];
        }
    }
    return CNNC_OK;
}
