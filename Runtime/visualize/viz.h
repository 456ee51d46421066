/*
 * viz.h — what the programs of `cnnc visualize` share: key=value options, opening the
 * model, reading inputs (.npy, PNG, a data set image), data sets, pictures of inputs, and
 * the progress line. One program per subcommand (filters.c, activations.c, ...) is built
 * from its file, common.c, the generated model, the runtime and the picture unit.
 *
 * The model is reached through viz_model.h, which `cnnc visualize` writes beside the
 * generated code:
 *   #include "lenet.h"
 *   #define MODEL(name) lenet_##name          (lenet_context, lenet_forward_tap, ...)
 *   #define MODEL_MACRO(name) LENET_##name    (LENET_MAX_BATCH, LENET_NUM_CLASSES, ...)
 *   #define VIZ_NETWORK "lenet"
 *   #define VIZ_C 1, VIZ_H 28, VIZ_W 28       the input's shape, per sample
 *   #define VIZ_TRAINING 1                    compiled with --train (taps and input gradients)
 *   #define VIZ_SCORE_LAYER "logits"          the layer whose values are the class scores
 */
#ifndef CNNC_VIZ_H
#define CNNC_VIZ_H

#include "viz_model.h"

#include "cnnc_image.h"
#include "cnnc_runtime.h"

#include <stdint.h>

#define VIZ_INPUT_SIZE (VIZ_C * VIZ_H * VIZ_W)

/* Keeps argc/argv for viz_option. */
void viz_options(int argc, char **argv);
/* The value of key=value on the command line, or fallback. */
const char *viz_option(const char *key, const char *fallback);
/* Prints "error: <message>" to stderr; returns 1 (the exit status). */
int viz_fail(const char *fmt, ...) CNNC_PRINTF_FORMAT(1, 2);

/* The model: its context, and with VIZ_TRAINING its trainer (whose arena keeps every layer). */
typedef struct {
    MODEL(context) ctx;
#if VIZ_TRAINING
    MODEL(trainer) trainer;
#endif
} viz_model;

/* Creates the model with the weights of weights= (else seeded by seed=). Returns 0 or prints
 * the error and returns 1. */
int viz_model_open(viz_model *m);
void viz_model_close(viz_model *m);

/* A batch of n inputs (n x VIZ_INPUT_SIZE floats) and their labels (-1 when unknown). */
typedef struct {
    int n;
    float *x;
    int32_t *labels;
} viz_batch;

/* Reads the input the options name: input=PATH (.npy of C,H,W or N,C,H,W; or an 8-bit PNG,
 * scaled to [0, 1], resized to VIZ_H x VIZ_W with resize=1), or data=DIR index=I. With
 * index= and an .npy batch, sample I alone. Returns 0 or prints the error and returns 1. */
int viz_read_input(viz_batch *b);
void viz_batch_free(viz_batch *b);

/* Loads the data set of data= (format= fashion-mnist, cifar10 or npy with labels=), its test
 * split, and checks its samples are VIZ_C x VIZ_H x VIZ_W. Returns 0 or prints and returns 1. */
int viz_read_dataset(cnnc_dataset *ds);

/* One input sample as an RGB picture: [0, 1] as black to white when every value lies in
 * [0, 1], else the sample's own smallest to largest value. */
int viz_input_picture(const float *chw, cnnc_image *out);

/* Writes a PNG; returns 0 or prints the error and returns 1. */
int viz_write_png(const char *path, const cnnc_image *img);

/* The progress line of a pass over a data set: redrawn in place on a terminal, else a line
 * at every tenth. */
void viz_progress(const char *what, int64_t done, int64_t total, double started);

#if VIZ_TRAINING
/* The layer called `name`, or prints the error (naming the layers there are) and returns -1. */
int viz_layer(const char *name);
/* The arg max of n scores. */
int viz_argmax(const float *scores, int n);
/* softmax of n scores into p. */
void viz_softmax(const float *scores, int n, float *p);
#endif

#endif /* CNNC_VIZ_H */
