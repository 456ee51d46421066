/*
 * rng.c — the counter-based random number generator.
 *
 * Value `counter` of stream `seed` is the counter-th output of SplitMix64 (Steele, Lea and
 * Flood, "Fast splittable pseudorandom number generators", 2014) started from the state
 * SplitMix64(seed). Hashing the seed first keeps streams of nearby seeds (0, 1, 2, ...)
 * unrelated; a pure function of (seed, counter) makes results independent of threading.
 */
#include "cnnc_runtime.h"

#include <math.h>

/* The SplitMix64 increment, 2^64 divided by the golden ratio. */
#define CNNC_GOLDEN_GAMMA UINT64_C(0x9E3779B97F4A7C15)

/* The SplitMix64 output function (a variant of the MurmurHash3 finalizer). */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t cnnc_rng_hash(uint64_t seed, uint64_t counter) {
    uint64_t key = mix64(seed + CNNC_GOLDEN_GAMMA);
    return mix64(key + (counter + 1) * CNNC_GOLDEN_GAMMA);
}

float cnnc_rng_uniform(uint64_t seed, uint64_t counter) {
    /* 24 bits fill a float mantissa exactly, so the result is < 1 and evenly spaced. */
    return (float)(cnnc_rng_hash(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

/* Box-Muller: maps two uniforms in [0,1) to one standard normal value. */
static float box_muller(float u1, float u2) {
    const double two_pi = 6.283185307179586476925286766559;
    double radius = sqrt(-2.0 * log(1.0 - (double)u1)); /* 1 - u1 is in (0, 1] */
    return (float)(radius * cos(two_pi * (double)u2));
}

float cnnc_rng_normal(uint64_t seed, uint64_t counter) {
    return box_muller(cnnc_rng_uniform(seed, 2 * counter), cnnc_rng_uniform(seed, 2 * counter + 1));
}

uint64_t cnnc_rng_next_u64(cnnc_rng *r) {
    return cnnc_rng_hash(r->seed, r->counter++);
}

float cnnc_rng_next_uniform(cnnc_rng *r) {
    return cnnc_rng_uniform(r->seed, r->counter++);
}

float cnnc_rng_next_normal(cnnc_rng *r) {
    float u1 = cnnc_rng_next_uniform(r);
    float u2 = cnnc_rng_next_uniform(r);
    return box_muller(u1, u2);
}
