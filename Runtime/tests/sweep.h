/*
 * sweep.h — what the kernels' seeded sweep tests (test_gemm.c, test_conv.c, test_depthwise.c,
 * test_winograd.c) share: counting checks and seeded random inputs. Include it once, from the
 * test program's only source file.
 */
#ifndef CNNC_TEST_SWEEP_H
#define CNNC_TEST_SWEEP_H

#include "cnnc_runtime.h"

#include <stdio.h>
#include <stdlib.h>

static int g_passed, g_failed;
static int g_case = -1; /* the sweep case being run, named by a failed check (-1: none) */

/* Counts a check; a failed one prints where, what and the case. */
#define CHECK(cond)                                                                                            \
    ((cond) ? (void)g_passed++                                                                                 \
            : (void)(g_failed++, g_case >= 0 ? printf("%s:%d: case %d: check failed: %s\n", __FILE__, __LINE__, \
                                                      g_case, #cond)                                          \
                                             : printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond)))

/* `count` floats uniform in [-1, 1) from rng, in a new malloc'ed buffer (at least one float). */
static inline float *random_floats(cnnc_rng *rng, size_t count) {
    float *m = malloc(sizeof(float) * (count > 0 ? count : 1));
    for (size_t i = 0; i < count; i++) m[i] = cnnc_rng_next_uniform(rng) * 2.0f - 1.0f;
    return m;
}

/* An int uniform in [lo, hi] from rng. */
static inline int uniform_int(cnnc_rng *rng, int lo, int hi) {
    return lo + (int)(cnnc_rng_next_uniform(rng) * (float)(hi - lo + 1)) % (hi - lo + 1);
}

#endif
