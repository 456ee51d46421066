/*
 * adversarial.c — `cnnc visualize adversarial`: the fast gradient sign method (Goodfellow,
 * Shlens and Szegedy 2015), x' = x + epsilon * sign(d loss / dx) with the softmax
 * cross-entropy loss of the true class on the scores, and its iterative form (Kurakin et
 * al. 2017) with steps > 1: x' += alpha * sign(d loss / dx'), then x' is projected back on
 * |x' - x| <= epsilon. Adversarial inputs are clipped to `range` (0,1 for images read as
 * x / 255). d loss / d scores = softmax(scores) - onehot(label) are the weights given to
 * <model>_input_grad, so the gradient is exact, in inference mode.
 *
 * With an input: writes original, perturbation (mid-gray 0, white +epsilon, black -epsilon)
 * and adversarial image per row, and prints the prediction before and after. With
 * mode=dataset: attacks the test split and reports the fraction of the correctly classified
 * images whose prediction flips; the picture shows the first flipped ones.
 *
 * Options: epsilon= steps= alpha= output=PNG, the input or data= mode=dataset, [label=
 * range=LO,HI limit= weights= seed=].
 */
#define _POSIX_C_SOURCE 200809L

#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K MODEL_MACRO(NUM_CLASSES)
#define SHOWN 8 /* flipped examples shown in dataset mode */

static float g_epsilon, g_alpha, g_lo = -INFINITY, g_hi = INFINITY;
static int g_steps, g_scores_layer;

/* Scores (n x K) of n inputs. */
static int predict(viz_model *m, const float *x, int n, float *scores) {
    if (MODEL(forward_tap)(&m->ctx, &m->trainer, x, n, g_scores_layer, scores) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m->ctx));
    return 0;
}

/* adv = the attack on x (n inputs of true classes labels); work: n*K weights and scores, n inputs of gradient. */
static int attack(viz_model *m, const float *x, const int32_t *labels, int n, float *adv, float *weights, float *scores, float *grad) {
    const size_t size = (size_t)n * VIZ_INPUT_SIZE;
    memcpy(adv, x, sizeof(float) * size);
    for (int step = 0; step < g_steps; step++) {
        if (predict(m, adv, n, scores)) return 1;
        for (int i = 0; i < n; i++) {
            viz_softmax(scores + (size_t)i * K, K, weights + (size_t)i * K);
            weights[(size_t)i * K + labels[i]] -= 1.0f;
        }
        if (MODEL(input_grad)(&m->ctx, &m->trainer, adv, n, weights, NULL, grad) != CNNC_OK) return viz_fail("%s", MODEL(last_error)(&m->ctx));
        for (size_t j = 0; j < size; j++) {
            const float sign = grad[j] > 0.0f ? 1.0f : grad[j] < 0.0f ? -1.0f : 0.0f;
            float v = adv[j] + g_alpha * sign;
            v = fminf(fmaxf(v, x[j] - g_epsilon), x[j] + g_epsilon);
            adv[j] = fminf(fmaxf(v, g_lo), g_hi);
        }
    }
    return 0;
}

/* One row of the picture: original, perturbation, adversarial. */
static int row(const float *x, const float *adv, cnnc_image *tiles) {
    float delta[VIZ_INPUT_SIZE];
    for (int j = 0; j < VIZ_INPUT_SIZE; j++) delta[j] = adv[j] - x[j];
    cnnc_error err;
    cnnc_status s = VIZ_C == 3 ? cnnc_tile_rgb(delta, VIZ_H, VIZ_W, -g_epsilon, g_epsilon, &tiles[1], &err)
                               : cnnc_tile_plane(delta, VIZ_H, VIZ_W, -g_epsilon, g_epsilon, CNNC_MAP_GRAY, &tiles[1], &err);
    if (s != CNNC_OK) return viz_fail("%s", err.message);
    return viz_input_picture(x, &tiles[0]) || viz_input_picture(adv, &tiles[2]);
}

static int write_rows(const char *output, cnnc_image *tiles, int rows) {
    cnnc_image grid;
    cnnc_error err;
    const int scale = cnnc_tile_scale(VIZ_H, VIZ_W, 112);
    if (cnnc_grid(tiles, 3 * rows, 3, scale, 4, (cnnc_rgb){255, 255, 255}, &grid, NULL, &err) != CNNC_OK) return viz_fail("%s", err.message);
    if (viz_write_png(output, &grid)) return 1;
    printf("wrote %s (%dx%d): per row original, perturbation (gray 128 = 0, white = +%g, black = -%g), adversarial, at %dx\n", output,
           grid.width, grid.height, g_epsilon, g_epsilon, scale);
    for (int i = 0; i < 3 * rows; i++) cnnc_image_free(&tiles[i]);
    cnnc_image_free(&grid);
    return 0;
}

static const char *method(void) { return g_steps == 1 ? "FGSM" : "iterative FGSM"; }

int main(int argc, char **argv) {
    viz_options(argc, argv);
    const char *output = viz_option("output", NULL), *range = viz_option("range", NULL);
    g_epsilon = (float)atof(viz_option("epsilon", "0.1"));
    g_steps = atoi(viz_option("steps", "1"));
    g_alpha = (float)atof(viz_option("alpha", viz_option("epsilon", "0.1")));
    if (range) sscanf(range, "%f,%f", &g_lo, &g_hi);
    viz_model m;
    if (viz_model_open(&m)) return 1;
    if ((g_scores_layer = viz_layer(VIZ_SCORE_LAYER)) < 0) return 1;
    const int B = MODEL_MACRO(MAX_BATCH);
    float *x = cnnc_aligned_alloc(sizeof(float) * (size_t)B * VIZ_INPUT_SIZE, 64);
    float *adv = cnnc_aligned_alloc(sizeof(float) * (size_t)B * VIZ_INPUT_SIZE, 64);
    float *grad = malloc(sizeof(float) * (size_t)B * VIZ_INPUT_SIZE);
    float *weights = malloc(sizeof(float) * (size_t)B * K), *before = malloc(sizeof(float) * (size_t)B * K);
    float *after = malloc(sizeof(float) * (size_t)B * K);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)B);
    float p[K], q[K];
    if (!x || !adv || !grad || !weights || !before || !after || !labels) return viz_fail("out of memory");

    if (strcmp(viz_option("mode", "input"), "dataset") != 0) {
        viz_batch b;
        if (viz_read_input(&b)) return 1;
        const int n = b.n;
        memcpy(x, b.x, sizeof(float) * (size_t)n * VIZ_INPUT_SIZE);
        if (predict(&m, x, n, before)) return 1;
        const char *given = viz_option("label", NULL);
        for (int i = 0; i < n; i++) labels[i] = given ? atoi(given) : b.labels[i] >= 0 ? b.labels[i] : viz_argmax(before + (size_t)i * K, K);
        if (attack(&m, x, labels, n, adv, weights, after, grad) || predict(&m, adv, n, after)) return 1;
        cnnc_image *tiles = calloc((size_t)3 * n, sizeof *tiles);
        for (int i = 0; i < n; i++) {
            const float *s = before + (size_t)i * K, *t = after + (size_t)i * K;
            viz_softmax(s, K, p);
            viz_softmax(t, K, q);
            const int a = viz_argmax(s, K), z = viz_argmax(t, K);
            printf("input %d (true class %d%s): before: predicted %d (probability %.4f); after %s at epsilon %g: predicted %d (%.4f)%s\n", i,
                   labels[i], given || b.labels[i] >= 0 ? "" : ", taken as the prediction", a, p[a], method(), g_epsilon, z, q[z],
                   a != z ? ", flipped" : "");
            if (row(x + (size_t)i * VIZ_INPUT_SIZE, adv + (size_t)i * VIZ_INPUT_SIZE, tiles + 3 * i)) return 1;
        }
        if (output && write_rows(output, tiles, n)) return 1;
        free(tiles);
        viz_batch_free(&b);
    } else {
        cnnc_dataset ds;
        if (viz_read_dataset(&ds)) return 1;
        const int64_t limit = atoll(viz_option("limit", "0")), total = limit > 0 && limit < ds.count ? limit : ds.count;
        int64_t correct = 0, flipped = 0, still = 0;
        cnnc_image tiles[3 * SHOWN];
        int shown = 0;
        const double started = cnnc_now_seconds();
        /* the pass over the test split: predict, attack, predict again */
        for (int64_t start = 0; start < total; start += B) {
            const int n = (int)(total - start < B ? total - start : B);
            memcpy(x, ds.images + (size_t)start * VIZ_INPUT_SIZE, sizeof(float) * (size_t)n * VIZ_INPUT_SIZE);
            memcpy(labels, ds.labels + start, sizeof(int32_t) * (size_t)n);
            if (predict(&m, x, n, before) || attack(&m, x, labels, n, adv, weights, after, grad) || predict(&m, adv, n, after)) return 1;
            for (int i = 0; i < n; i++) {
                const int a = viz_argmax(before + (size_t)i * K, K), z = viz_argmax(after + (size_t)i * K, K);
                still += z == labels[i];
                if (a != labels[i]) continue;
                correct++;
                if (z == a) continue;
                flipped++;
                if (shown < SHOWN && output) {
                    if (row(x + (size_t)i * VIZ_INPUT_SIZE, adv + (size_t)i * VIZ_INPUT_SIZE, tiles + 3 * shown)) return 1;
                    printf("flipped: image %lld, label %d, predicted %d after the attack\n", (long long)(start + i), labels[i], z);
                    shown++;
                }
            }
            viz_progress("adversarial", start + n, total, started);
        }
        printf("%s, epsilon %g, %d step%s (alpha %g): of %lld test images, %lld classified correctly (%.2f%%); %lld of them flip (%.2f%%); "
               "accuracy under attack %.2f%%\n", method(), g_epsilon, g_steps, g_steps == 1 ? "" : "s", g_alpha, (long long)total,
               (long long)correct, 100.0 * (double)correct / (double)total, (long long)flipped,
               correct ? 100.0 * (double)flipped / (double)correct : 0.0, 100.0 * (double)still / (double)total);
        if (output && shown > 0 && write_rows(output, tiles, shown)) return 1;
        cnnc_dataset_free(&ds);
    }
    free(labels);
    free(after);
    free(before);
    free(weights);
    free(grad);
    cnnc_aligned_free(adv);
    cnnc_aligned_free(x);
    viz_model_close(&m);
    return 0;
}
