/*
 * status.c — status texts and the error record filled by every failing function.
 */
#include "cnnc_runtime.h"

#include <stdarg.h>
#include <stdio.h>

const char *cnnc_status_string(cnnc_status s) {
    switch (s) {
    case CNNC_OK: return "ok";
    case CNNC_ERR_IO: return "i/o error";
    case CNNC_ERR_FORMAT: return "malformed file";
    case CNNC_ERR_SHAPE: return "shape mismatch";
    case CNNC_ERR_MISSING: return "missing tensor";
    case CNNC_ERR_UNEXPECTED: return "unexpected tensor";
    case CNNC_ERR_DTYPE: return "unsupported or mismatched dtype";
    case CNNC_ERR_ALLOC: return "out of memory";
    case CNNC_ERR_ARGUMENT: return "invalid argument";
    case CNNC_ERR_BATCH: return "invalid batch size";
    case CNNC_ERR_NUMERIC: return "non-finite value";
    }
    return "unknown status";
}

void cnnc_error_set(cnnc_error *err, cnnc_status s, const char *fmt, ...) {
    if (err == NULL) {
        return;
    }
    err->status = s;
    if (fmt == NULL) {
        snprintf(err->message, sizeof err->message, "%s", cnnc_status_string(s));
        return;
    }
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, args);
    va_end(args);
    if (n < 0) {
        snprintf(err->message, sizeof err->message, "%s", cnnc_status_string(s));
    }
}
