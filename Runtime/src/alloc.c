/*
 * alloc.c — aligned allocation on top of C11 aligned_alloc.
 */
#include "cnnc_runtime.h"

#include <stdlib.h>

void *cnnc_aligned_alloc(size_t bytes, size_t alignment) {
    if (bytes == 0 || alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) {
        return NULL;
    }
    /* C11 requires the size to be a multiple of the alignment. */
    size_t rem = bytes % alignment;
    if (rem != 0) {
        if (bytes > SIZE_MAX - (alignment - rem)) {
            return NULL;
        }
        bytes += alignment - rem;
    }
    return aligned_alloc(alignment, bytes);
}

void cnnc_aligned_free(void *p) {
    free(p);
}
