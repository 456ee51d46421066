/*
 * curves.c — `cnnc visualize curves`: the CSV log of `cnnc train --log` as a plot of loss
 * and accuracy against the step (two panels), with the end-of-epoch training and test
 * values marked. Needs no model.
 *
 * Options: log=CSV output=PNG [width=960 height=360].
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *option(int argc, char **argv, const char *key, const char *fallback) {
    const size_t len = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, len) == 0 && argv[i][len] == '=') return argv[i] + len + 1;
    return fallback;
}

int main(int argc, char **argv) {
    const char *path = option(argc, argv, "log", ""), *output = option(argc, argv, "output", "curves.png");
    cnnc_error err;
    cnnc_log_table log;
    cnnc_image img;
    if (cnnc_log_read(path, &log, &err) != CNNC_OK || cnnc_plot_log(&log, atoi(option(argc, argv, "width", "960")),
                                                                    atoi(option(argc, argv, "height", "360")), &img, &err) != CNNC_OK
        || cnnc_png_write(output, &img, &err) != CNNC_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        return 1;
    }
    const int last = log.count - 1;
    printf("wrote %s (%dx%d): %d rows, %d epochs, steps %lld to %lld\n", output, img.width, img.height, log.count, log.epoch[last],
           (long long)log.step[0], (long long)log.step[last]);
    printf("last row: train loss %.4f, train accuracy %.2f%%", log.loss[last], 100.0 * log.accuracy[last]);
    if (isfinite(log.test_accuracy[last])) printf(", test loss %.4f, test accuracy %.2f%%", log.test_loss[last], 100.0 * log.test_accuracy[last]);
    printf("\n");
    cnnc_image_free(&img);
    cnnc_log_table_free(&log);
    return 0;
}
