/*
 * io.c — internal helpers: opening and reading the files a caller names (regular files only,
 * size-checked), shape text, errno text, shape products.
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kind of a file that is not a regular one, for messages. */
static const char *file_kind(mode_t mode) {
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "something else";
}

FILE *cnnc_internal_open_regular(const char *path, uint64_t *out_size, cnnc_error *err) {
    *out_size = 0;
    /* O_NONBLOCK: a FIFO with no writer opens at once (and is then refused) instead of
     * blocking in open. It has no effect on a regular file; it is cleared all the same. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot open '%s': %s", path, why);
        return NULL;
    }
    struct stat info;
    if (fstat(fd, &info) != 0) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        close(fd);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot read '%s': %s", path, why);
        return NULL;
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        if (S_ISDIR(info.st_mode)) {
            cnnc_error_set(err, CNNC_ERR_IO, "cannot read '%s': it is a directory", path);
        } else {
            cnnc_error_set(err, CNNC_ERR_IO, "cannot read '%s': it is %s, not a regular file",
                           path, file_kind(info.st_mode));
        }
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        close(fd);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot read '%s': %s", path, why);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        close(fd);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot read '%s': %s", path, why);
        return NULL;
    }
    *out_size = info.st_size > 0 ? (uint64_t)info.st_size : 0;
    return f;
}

/* Creates (or truncates, or appends to) the regular file at `path` for writing. O_NONBLOCK:
 * a FIFO with no reader fails at once with ENXIO instead of blocking in open, and one with a
 * reader is refused after fstat; truncation comes after the check, so nothing but a regular
 * file is ever truncated. */
static FILE *create_regular(const char *path, int append, cnnc_error *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | (append ? O_APPEND : 0),
                  0666);
    if (fd < 0) {
        int saved = errno;
        struct stat info;
        if (saved == ENXIO && stat(path, &info) == 0 && !S_ISREG(info.st_mode)) {
            cnnc_error_set(err, CNNC_ERR_IO, "cannot write '%s': it is %s, not a regular file",
                           path, file_kind(info.st_mode));
        } else {
            char why[128];
            cnnc_internal_errno_text(why, sizeof why, saved);
            cnnc_error_set(err, CNNC_ERR_IO, "cannot create '%s': %s", path, why);
        }
        return NULL;
    }
    struct stat info;
    int flags = -1;
    if (fstat(fd, &info) == 0 && !S_ISREG(info.st_mode)) {
        close(fd);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot write '%s': it is %s, not a regular file", path,
                       file_kind(info.st_mode));
        return NULL;
    }
    FILE *f = NULL;
    if ((append || ftruncate(fd, 0) == 0) && (flags = fcntl(fd, F_GETFL)) != -1 &&
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != -1) {
        f = fdopen(fd, append ? "ab" : "wb");
    }
    if (f == NULL) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        close(fd);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot create '%s': %s", path, why);
    }
    return f;
}

FILE *cnnc_file_open(const char *path, const char *mode, cnnc_error *err) {
    if (mode[0] == 'r') {
        uint64_t size;
        return cnnc_internal_open_regular(path, &size, err);
    }
    return create_regular(path, mode[0] == 'a', err);
}

cnnc_status cnnc_internal_read_file(const char *path, unsigned char **out_bytes, size_t *out_size,
                                    cnnc_error *err) {
    *out_bytes = NULL;
    *out_size = 0;
    uint64_t file_size = 0;
    FILE *f = cnnc_internal_open_regular(path, &file_size, err);
    if (f == NULL) {
        return CNNC_ERR_IO;
    }
    if (file_size > CNNC_INTERNAL_MAX_FILE_BYTES || file_size > (uint64_t)(SIZE_MAX - 1)) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_IO, "'%s' is %llu bytes; the limit is %llu", path,
                       (unsigned long long)file_size,
                       (unsigned long long)CNNC_INTERNAL_MAX_FILE_BYTES);
        return CNNC_ERR_IO;
    }
    /* Exactly the size fstat gave: never past it, however the file grows meanwhile. */
    size_t size = (size_t)file_size;
    unsigned char *bytes = malloc(size + 1);
    if (bytes == NULL) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_ALLOC, "cannot allocate %zu bytes to read '%s'", size, path);
        return CNNC_ERR_ALLOC;
    }
    size_t done = 0;
    while (done < size) {
        size_t got = fread(bytes + done, 1, size - done, f);
        if (got == 0) {
            break;
        }
        done += got;
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
    if (done != size) {
        free(bytes);
        cnnc_error_set(err, CNNC_ERR_IO, "'%s' ended after %zu of %zu bytes while being read",
                       path, done, size);
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
