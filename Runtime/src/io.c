/*
 * io.c — internal helpers: whole-file reading, shape text, errno text, shape products.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

cnnc_status cnnc_internal_read_file(const char *path, unsigned char **out_bytes, size_t *out_size,
                                    cnnc_error *err) {
    *out_bytes = NULL;
    *out_size = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot open '%s': %s", path, why);
        return CNNC_ERR_IO;
    }
    /* Grow the buffer geometrically; this also works for pipes and special files. */
    size_t cap = 1 << 16, size = 0;
    unsigned char *bytes = malloc(cap + 1);
    if (bytes == NULL) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_ALLOC, "cannot allocate %zu bytes to read '%s'", cap, path);
        return CNNC_ERR_ALLOC;
    }
    for (;;) {
        if (size == cap) {
            size_t new_cap = cap <= (SIZE_MAX - 1) / 2 ? cap * 2 : SIZE_MAX - 1;
            unsigned char *grown = new_cap > cap ? realloc(bytes, new_cap + 1) : NULL;
            if (grown == NULL) {
                free(bytes);
                fclose(f);
                cnnc_error_set(err, CNNC_ERR_ALLOC, "cannot allocate %zu bytes to read '%s'",
                               new_cap, path);
                return CNNC_ERR_ALLOC;
            }
            bytes = grown;
            cap = new_cap;
        }
        size_t got = fread(bytes + size, 1, cap - size, f);
        size += got;
        if (got == 0) {
            break;
        }
    }
    int failed = ferror(f);
    int saved_errno = errno;
    fclose(f);
    if (failed) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, saved_errno);
        free(bytes);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot read '%s': %s", path, why);
        return CNNC_ERR_IO;
    }
    bytes[size] = 0;
    *out_bytes = bytes;
    *out_size = size;
    return CNNC_OK;
}

void cnnc_internal_format_shape(char *buf, size_t bufsize, int ndim, const int64_t *shape) {
    if (bufsize == 0) {
        return;
    }
    size_t used = 0;
    buf[0] = 0;
    for (int i = -1; i <= ndim && used < bufsize; i++) {
        int n;
        if (i == -1) {
            n = snprintf(buf + used, bufsize - used, "[");
        } else if (i == ndim) {
            n = snprintf(buf + used, bufsize - used, "]");
        } else {
            n = snprintf(buf + used, bufsize - used, "%s%lld", i > 0 ? "," : "",
                         (long long)shape[i]);
        }
        if (n < 0) {
            return;
        }
        used += (size_t)n;
    }
}

void cnnc_internal_errno_text(char *buf, size_t bufsize, int errnum) {
    if (bufsize == 0) {
        return;
    }
    snprintf(buf, bufsize, "%s", strerror(errnum));
    buf[0] = (char)tolower((unsigned char)buf[0]);
}

int cnnc_internal_shape_product(int ndim, const int64_t *shape, uint64_t limit, uint64_t *out) {
    /* A zero dim makes the product 0 whatever the others are, so look for one first. */
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            return 0;
        }
        if (shape[i] == 0) {
            *out = 0;
            return 1;
        }
    }
    uint64_t product = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (product > limit / d) {
            return 0;
        }
        product *= d;
    }
    if (product > limit) {
        return 0;
    }
    *out = product;
    return 1;
}
