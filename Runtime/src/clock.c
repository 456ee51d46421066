/*
 * clock.c — a monotonic wall clock for timing.
 */
#define _POSIX_C_SOURCE 199309L

#include "cnnc_runtime.h"

#include <time.h>

double cnnc_now_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
