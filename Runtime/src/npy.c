/*
 * npy.c — reading and writing NumPy .npy files.
 *
 * A file is the magic "\x93NUMPY", a version (1.0, 2.0 or 3.0), a little-endian header
 * length (u16 for 1.0, u32 otherwise), a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a newline so that the data starts at a multiple of 64 bytes, then
 * the elements. The reader streams the data in chunks and converts it to float32 or int64.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Headers longer than this are rejected (NumPy's own default limit is 10000 bytes). */
#define NPY_MAX_HEADER_BYTES (1u << 20)

/* Alignment of the arrays handed to the caller. */
#define NPY_DATA_ALIGNMENT 64

/* Size of buffers that hold "[d0,...]" for CNNC_MAX_DIMS dims. */
#define SHAPE_TEXT_SIZE (CNNC_MAX_DIMS * 21 + 3)

/* ---------------------------------------------------------------------------------------
 * Element types
 * ------------------------------------------------------------------------------------- */

/* The element types the reader converts. */
typedef enum {
    NPY_F4,
    NPY_F8,
    NPY_I1,
    NPY_U1,
    NPY_B1,
    NPY_I2,
    NPY_U2,
    NPY_I4,
    NPY_U4,
    NPY_I8
} npy_kind;

/* A type code (the descr without its byte-order character). */
typedef struct {
    const char *code;
    npy_kind kind;
    size_t size;
    int is_float;
} npy_dtype;

static const npy_dtype k_npy_dtypes[] = {
    {"f4", NPY_F4, 4, 1}, {"f8", NPY_F8, 8, 1}, {"i1", NPY_I1, 1, 0}, {"u1", NPY_U1, 1, 0},
    {"b1", NPY_B1, 1, 0}, {"i2", NPY_I2, 2, 0}, {"u2", NPY_U2, 2, 0}, {"i4", NPY_I4, 4, 0},
    {"u4", NPY_U4, 4, 0}, {"i8", NPY_I8, 8, 0},
};

/* Reinterprets the low `bits` bits of v as a two's-complement signed value. */
static int64_t to_signed(uint64_t v, unsigned bits) {
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if ((v & sign) == 0) {
        return (int64_t)v;
    }
    uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    return -(int64_t)(~v & mask) - 1;
}

/* Loads one element of an integer kind (or bool) at p. */
static int64_t load_integer(const unsigned char *p, npy_kind kind) {
    switch (kind) {
    case NPY_I1: return to_signed(p[0], 8);
    case NPY_U1: return p[0];
    case NPY_B1: return p[0] != 0;
    case NPY_I2: return to_signed(cnnc_load_le16(p), 16);
    case NPY_U2: return cnnc_load_le16(p);
    case NPY_I4: return to_signed(cnnc_load_le32(p), 32);
    case NPY_U4: return cnnc_load_le32(p);
    case NPY_I8: return to_signed(cnnc_load_le64(p), 64);
    case NPY_F4:
    case NPY_F8: break;
    }
    return 0;
}

/* Converts n elements of `kind` at src to float32. */
static void convert_to_f32(const unsigned char *src, const npy_dtype *dt, size_t n, float *dst) {
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * dt->size;
        switch (dt->kind) {
        case NPY_F4: dst[i] = cnnc_load_le_f32(p); break;
        case NPY_F8: dst[i] = (float)cnnc_load_le_f64(p); break;
        default: dst[i] = (float)load_integer(p, dt->kind); break;
        }
    }
}

/* Converts n elements of an integer kind at src to int64. */
static void convert_to_i64(const unsigned char *src, const npy_dtype *dt, size_t n, int64_t *dst) {
    for (size_t i = 0; i < n; i++) {
        dst[i] = load_integer(src + i * dt->size, dt->kind);
    }
}

/* ---------------------------------------------------------------------------------------
 * Header parsing
 * ------------------------------------------------------------------------------------- */

/* The fields of a header dict. */
typedef struct {
    char descr[16];
    int fortran_order;
    int ndim; /* CNNC_MAX_DIMS + 1 means "too many" */
    int64_t shape[CNNC_MAX_DIMS];
} npy_header;

/* A cursor over the header text; `why` holds the first error. */
typedef struct {
    const unsigned char *p, *end;
    char why[96];
} lit_cursor;

/* Records an error (the first one wins) and returns 0. */
static int lit_fail(lit_cursor *c, const char *why) {
    if (c->why[0] == 0) {
        snprintf(c->why, sizeof c->why, "%s", why);
    }
    return 0;
}

static void lit_skip_ws(lit_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

/* Skips whitespace and consumes ch when it is next; returns whether it was. */
static int lit_accept(lit_cursor *c, char ch) {
    lit_skip_ws(c);
    if (c->p < c->end && *c->p == (unsigned char)ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* Parses a quoted Python string without escapes into buf. */
static int lit_string(lit_cursor *c, char *buf, size_t bufsize) {
    lit_skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) {
        return lit_fail(c, "expected a string");
    }
    unsigned char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p < 0x20 || n + 1 >= bufsize) {
            return lit_fail(c, "unsupported string");
        }
        buf[n++] = (char)*c->p++;
    }
    if (c->p >= c->end) {
        return lit_fail(c, "unterminated string");
    }
    c->p++;
    buf[n] = 0;
    return 1;
}

/* Parses True or False. */
static int lit_bool(lit_cursor *c, int *out) {
    lit_skip_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = 1;
        return 1;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = 0;
        return 1;
    }
    return lit_fail(c, "expected True or False");
}

/* Parses a shape tuple "()", "(5,)", "(2, 3)"; Python 2 "3L" suffixes are accepted. */
static int lit_shape(lit_cursor *c, npy_header *h) {
    h->ndim = 0;
    if (!lit_accept(c, '(')) {
        return lit_fail(c, "expected a tuple for 'shape'");
    }
    while (!lit_accept(c, ')')) {
        lit_skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            return lit_fail(c, "expected a non-negative integer in 'shape'");
        }
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int d = *c->p++ - '0';
            if (v > (INT64_MAX - d) / 10) {
                return lit_fail(c, "dimension too large in 'shape'");
            }
            v = v * 10 + d;
        }
        if (c->p < c->end && *c->p == 'L') {
            c->p++;
        }
        if (h->ndim < CNNC_MAX_DIMS) {
            h->shape[h->ndim] = v;
        }
        if (h->ndim <= CNNC_MAX_DIMS) {
            h->ndim++;
        }
        if (!lit_accept(c, ',')) {
            if (!lit_accept(c, ')')) {
                return lit_fail(c, "expected ',' or ')' in 'shape'");
            }
            break;
        }
    }
    return 1;
}

/* Parses the header dict; each of descr, fortran_order and shape must appear exactly once
 * and no other key may appear. */
static int parse_npy_header(const unsigned char *text, size_t len, npy_header *h, lit_cursor *c) {
    c->p = text;
    c->end = text + len;
    c->why[0] = 0;
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    if (!lit_accept(c, '{')) {
        return lit_fail(c, "expected '{'");
    }
    while (!lit_accept(c, '}')) {
        char key[32];
        if (!lit_string(c, key, sizeof key) ||
            !(lit_accept(c, ':') || lit_fail(c, "expected ':'"))) {
            return 0;
        }
        int ok;
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = 1;
            ok = lit_string(c, h->descr, sizeof h->descr);
        } else if (strcmp(key, "fortran_order") == 0 && !seen_fortran) {
            seen_fortran = 1;
            ok = lit_bool(c, &h->fortran_order);
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = 1;
            ok = lit_shape(c, h);
        } else {
            snprintf(c->why, sizeof c->why, "unexpected or repeated key '%s'", key);
            return 0;
        }
        if (!ok) {
            return 0;
        }
        if (!lit_accept(c, ',')) {
            if (!lit_accept(c, '}')) {
                return lit_fail(c, "expected ',' or '}'");
            }
            break;
        }
    }
    lit_skip_ws(c);
    if (c->p != c->end) {
        return lit_fail(c, "unexpected text after the dict");
    }
    if (!seen_descr || !seen_fortran || !seen_shape) {
        return lit_fail(c, !seen_descr     ? "missing key 'descr'"
                           : !seen_fortran ? "missing key 'fortran_order'"
                                           : "missing key 'shape'");
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------- */

/* Opens path and reads and parses its header; on success *f is positioned at the data. */
static cnnc_status npy_open(const char *path, FILE **f_out, npy_header *h, cnnc_error *err) {
    *f_out = NULL;
    uint64_t file_size;
    FILE *f = cnnc_internal_open_regular(path, &file_size, err);
    if (f == NULL) {
        return CNNC_ERR_IO;
    }
    /* Magic and version, then the header length. */
    unsigned char prefix[12];
    size_t got = fread(prefix, 1, 8, f);
    if (got < 8) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: file of %zu bytes is too small for a npy header",
                       path, got);
        return CNNC_ERR_FORMAT;
    }
    if (memcmp(prefix, "\x93NUMPY", 6) != 0) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: not a npy file (bad magic)", path);
        return CNNC_ERR_FORMAT;
    }
    int major = prefix[6], minor = prefix[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: unsupported npy version %d.%d", path, major,
                       minor);
        return CNNC_ERR_FORMAT;
    }
    size_t len_bytes = major == 1 ? 2 : 4;
    if (fread(prefix + 8, 1, len_bytes, f) != len_bytes) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: truncated npy header length", path);
        return CNNC_ERR_FORMAT;
    }
    uint32_t header_len = major == 1 ? cnnc_load_le16(prefix + 8) : cnnc_load_le32(prefix + 8);
    if (header_len > NPY_MAX_HEADER_BYTES) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT,
                       "%s: npy header length %lu exceeds the limit of %lu bytes", path,
                       (unsigned long)header_len, (unsigned long)NPY_MAX_HEADER_BYTES);
        return CNNC_ERR_FORMAT;
    }
    /* The header text. */
    unsigned char *text = malloc(header_len + 1u);
    if (text == NULL) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory reading the header", path);
        return CNNC_ERR_ALLOC;
    }
    got = fread(text, 1, header_len, f);
    if (got != header_len) {
        free(text);
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: truncated header: expected %lu bytes, got %zu",
                       path, (unsigned long)header_len, got);
        return CNNC_ERR_FORMAT;
    }
    lit_cursor c;
    int ok = parse_npy_header(text, header_len, h, &c);
    free(text);
    if (!ok) {
        fclose(f);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: invalid npy header: %s", path, c.why);
        return CNNC_ERR_FORMAT;
    }
    *f_out = f;
    return CNNC_OK;
}

/* Reads the array at path converting to float32 (want_float) or int64; on success *data is
 * a new aligned buffer of *count elements. */
static cnnc_status npy_read(const char *path, int want_float, npy_header *h, void **data,
                            size_t *count, cnnc_error *err) {
    *data = NULL;
    *count = 0;
    if (path == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "npy read: path and out must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    FILE *f;
    cnnc_status s = npy_open(path, &f, h, err);
    if (s != CNNC_OK) {
        return s;
    }
    /* Check the dtype, layout and shape. */
    const npy_dtype *dt = NULL;
    if (strlen(h->descr) == 3) {
        for (size_t i = 0; i < sizeof k_npy_dtypes / sizeof k_npy_dtypes[0]; i++) {
            if (strcmp(h->descr + 1, k_npy_dtypes[i].code) == 0) {
                dt = &k_npy_dtypes[i];
            }
        }
    }
    char order = h->descr[0];
    if (dt != NULL && dt->size > 1 && order == '>') {
        s = CNNC_ERR_DTYPE;
        cnnc_error_set(err, s, "%s: big-endian arrays are not supported (dtype '%s')", path,
                       h->descr);
    } else if (dt == NULL || (dt->size > 1 ? order != '<' : strchr("<>|=", order) == NULL)) {
        s = CNNC_ERR_DTYPE;
        cnnc_error_set(err, s, "%s: unsupported dtype '%s'", path, h->descr);
    } else if (!want_float && dt->is_float) {
        s = CNNC_ERR_DTYPE;
        cnnc_error_set(err, s, "%s: expected an integer dtype, got '%s'", path, h->descr);
    } else if (h->fortran_order) {
        s = CNNC_ERR_FORMAT;
        cnnc_error_set(err, s, "%s: fortran-order arrays are not supported", path);
    } else if (h->ndim > CNNC_MAX_DIMS) {
        s = CNNC_ERR_SHAPE;
        cnnc_error_set(err, s, "%s: more than %d dimensions are not supported", path,
                       CNNC_MAX_DIMS);
    }
    /* Element count, bounded so that both the file bytes and the output bytes fit size_t. */
    size_t out_size = want_float ? sizeof(float) : sizeof(int64_t);
    size_t widest = dt != NULL && dt->size > out_size ? dt->size : out_size;
    uint64_t n = 0;
    if (s == CNNC_OK && !cnnc_internal_shape_product(h->ndim, h->shape, SIZE_MAX / widest, &n)) {
        char shape[SHAPE_TEXT_SIZE];
        cnnc_internal_format_shape(shape, sizeof shape, h->ndim, h->shape);
        s = CNNC_ERR_FORMAT;
        cnnc_error_set(err, s, "%s: array shape %s is too large", path, shape);
    }
    unsigned char *out = NULL;
    if (s == CNNC_OK) {
        out = cnnc_aligned_alloc((n > 0 ? (size_t)n : 1) * out_size, NPY_DATA_ALIGNMENT);
        if (out == NULL) {
            s = CNNC_ERR_ALLOC;
            cnnc_error_set(err, s, "%s: cannot allocate %llu elements", path,
                           (unsigned long long)n);
        }
    }
    /* Stream the data through a chunk buffer, converting as it goes. */
    unsigned char chunk[1 << 14];
    size_t per_chunk = dt != NULL ? sizeof chunk / dt->size : 0;
    size_t done = 0;
    while (s == CNNC_OK && done < n) {
        size_t m = n - done < per_chunk ? (size_t)n - done : per_chunk;
        size_t got = fread(chunk, 1, m * dt->size, f);
        if (got != m * dt->size) {
            size_t expected = (size_t)n * dt->size, actual = done * dt->size + got;
            if (ferror(f)) {
                char why[128];
                cnnc_internal_errno_text(why, sizeof why, errno);
                s = CNNC_ERR_IO;
                cnnc_error_set(err, s, "cannot read '%s': %s", path, why);
            } else {
                s = CNNC_ERR_FORMAT;
                cnnc_error_set(err, s, "%s: truncated data: expected %zu bytes, got %zu", path,
                               expected, actual);
            }
            break;
        }
        if (want_float) {
            convert_to_f32(chunk, dt, m, (float *)(void *)out + done);
        } else {
            convert_to_i64(chunk, dt, m, (int64_t *)(void *)out + done);
        }
        done += m;
    }
    fclose(f);
    if (s != CNNC_OK) {
        cnnc_aligned_free(out);
        return s;
    }
    *data = out;
    *count = (size_t)n;
    return CNNC_OK;
}

cnnc_status cnnc_npy_read_f32(const char *path, cnnc_array_f32 *out, cnnc_error *err) {
    if (out == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "cnnc_npy_read_f32: out must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    npy_header h;
    void *data;
    size_t count;
    cnnc_status s = npy_read(path, 1, &h, &data, &count, err);
    if (s != CNNC_OK) {
        return s;
    }
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, (size_t)h.ndim * sizeof h.shape[0]);
    out->data = data;
    out->count = count;
    return CNNC_OK;
}

cnnc_status cnnc_npy_read_i64(const char *path, cnnc_array_i64 *out, cnnc_error *err) {
    if (out == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "cnnc_npy_read_i64: out must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    npy_header h;
    void *data;
    size_t count;
    cnnc_status s = npy_read(path, 0, &h, &data, &count, err);
    if (s != CNNC_OK) {
        return s;
    }
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, (size_t)h.ndim * sizeof h.shape[0]);
    out->data = data;
    out->count = count;
    return CNNC_OK;
}

void cnnc_array_f32_free(cnnc_array_f32 *a) {
    if (a != NULL) {
        cnnc_aligned_free(a->data);
        memset(a, 0, sizeof *a);
    }
}

void cnnc_array_i64_free(cnnc_array_i64 *a) {
    if (a != NULL) {
        cnnc_aligned_free(a->data);
        memset(a, 0, sizeof *a);
    }
}

/* ---------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------- */

cnnc_status cnnc_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                               cnnc_error *err) {
    if (path == NULL || ndim < 0 || ndim > CNNC_MAX_DIMS || (ndim > 0 && shape == NULL)) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "cnnc_npy_write_f32: invalid path or ndim %d", ndim);
        return CNNC_ERR_ARGUMENT;
    }
    uint64_t n;
    if (!cnnc_internal_shape_product(ndim, shape, SIZE_MAX / sizeof(float), &n)) {
        char text[SHAPE_TEXT_SIZE];
        cnnc_internal_format_shape(text, sizeof text, ndim, shape);
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "%s: invalid shape %s", path, text);
        return CNNC_ERR_ARGUMENT;
    }
    if (n > 0 && data == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "%s: data must not be NULL", path);
        return CNNC_ERR_ARGUMENT;
    }
    /* The dict as NumPy writes it, e.g. (5,) for one dimension and () for none. */
    char header[512];
    int len =
        snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        len += snprintf(header + len, sizeof header - (size_t)len, "%s%lld", i > 0 ? ", " : "",
                        (long long)shape[i]);
    }
    len += snprintf(header + len, sizeof header - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    /* Pad with spaces and end with '\n' so that 10 prefix bytes + header is a multiple of 64. */
    while ((10 + len + 1) % 64 != 0) {
        header[len++] = ' ';
    }
    header[len++] = '\n';

    FILE *f = cnnc_file_open(path, "wb", err);
    if (f == NULL) {
        return CNNC_ERR_IO;
    }
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    prefix[8] = (unsigned char)(len & 0xFF);
    prefix[9] = (unsigned char)(len >> 8);
    int ok = fwrite(prefix, 1, sizeof prefix, f) == sizeof prefix &&
             fwrite(header, 1, (size_t)len, f) == (size_t)len;
    /* The data, little-endian. */
    unsigned char chunk[1 << 14];
    for (size_t done = 0; ok && done < n;) {
        size_t m = (size_t)n - done < sizeof chunk / 4 ? (size_t)n - done : sizeof chunk / 4;
        for (size_t i = 0; i < m; i++) {
            cnnc_store_le_f32(chunk + 4 * i, data[done + i]);
        }
        ok = fwrite(chunk, 4, m, f) == m;
        done += m;
    }
    int saved_errno = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved_errno = errno;
    }
    if (!ok) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, saved_errno);
        remove(path);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot write '%s': %s", path, why);
        return CNNC_ERR_IO;
    }
    return CNNC_OK;
}
