/*
 * safetensors.c — reading and writing safetensors files.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON and the data buffer.
 * The reader loads the whole file, parses the header with a small JSON parser written for
 * hostile input (every access bounds-checked, nesting limited to JSON_MAX_DEPTH, strings
 * checked for valid UTF-8) and validates every tensor before handing out views into the
 * buffer. The writer emits compact JSON like the reference implementation and pads the
 * header with spaces to a multiple of 8 bytes.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Deepest nesting accepted inside values the reader skips (unknown fields). */
#define JSON_MAX_DEPTH 64

/* Size of buffers that hold "[d0,...]" for CNNC_MAX_DIMS dims. */
#define SHAPE_TEXT_SIZE (CNNC_MAX_DIMS * 21 + 3)

/* ---------------------------------------------------------------------------------------
 * Data types
 * ------------------------------------------------------------------------------------- */

/* A safetensors dtype name and its element size in bytes. */
typedef struct {
    const char *name;
    size_t size;
} dtype_info;

static const dtype_info k_dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},    {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},      {"BOOL", 1},
    {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

/* Returns the table entry for a dtype name, or NULL when unknown. */
static const dtype_info *find_dtype(const char *name) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++) {
        if (strcmp(k_dtypes[i].name, name) == 0) {
            return &k_dtypes[i];
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * The open-file handle
 * ------------------------------------------------------------------------------------- */

/* One tensor of the header. */
typedef struct {
    char *name;
    const dtype_info *dtype;
    int ndim; /* -1 until "shape" is seen */
    int64_t shape[CNNC_MAX_DIMS];
    int has_offsets;
    uint64_t begin, end;
} st_entry;

/* One "__metadata__" entry. */
typedef struct {
    char *key;
    char *value;
} st_meta;

struct cnnc_safetensors {
    char *path;
    unsigned char *file; /* the whole file */
    size_t file_size;
    const unsigned char *data; /* start of the data buffer inside file */
    size_t data_size;
    st_entry *entries; /* header order */
    size_t count, cap;
    const st_entry **by_name; /* sorted by name, for lookup */
    st_meta *meta;            /* header order */
    size_t meta_count, meta_cap;
    const st_meta **meta_by_key; /* sorted by key, for lookup */
};

void cnnc_safetensors_close(cnnc_safetensors *st) {
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < st->count; i++) {
        free(st->entries[i].name);
    }
    for (size_t i = 0; i < st->meta_count; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->entries);
    free(st->by_name);
    free(st->meta);
    free(st->meta_by_key);
    free(st->file);
    free(st->path);
    free(st);
}

/* Grows a dynamic array of `elem` bytes so it holds one more element; returns 0 when out of
 * memory (the array is unchanged). */
static int grow_array(void **items, size_t *cap, size_t count, size_t elem) {
    if (count < *cap) {
        return 1;
    }
    size_t new_cap = *cap == 0 ? 16 : *cap * 2;
    if (new_cap < *cap || new_cap > SIZE_MAX / elem) {
        return 0;
    }
    void *grown = realloc(*items, new_cap * elem);
    if (grown == NULL) {
        return 0;
    }
    *items = grown;
    *cap = new_cap;
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------- */

/* Returns the length of the valid UTF-8 sequence starting at p (before end), or 0 when the
 * bytes there are not valid UTF-8 (overlong forms and surrogates rejected). */
static size_t utf8_sequence_length(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80) {
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0) {
            lo = 0xA0;
        } else if (b == 0xED) {
            hi = 0x9F;
        }
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0) {
            lo = 0x90;
        } else if (b == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if ((size_t)(end - p) < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return len;
}

/* Returns 1 when the NUL-terminated string s is valid UTF-8. */
static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + strlen(s);
    while (p < end) {
        size_t n = utf8_sequence_length(p, end);
        if (n == 0) {
            return 0;
        }
        p += n;
    }
    return 1;
}

/* Appends code point cp as UTF-8 at out; returns the number of bytes written. */
static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------------------------------
 * JSON parsing
 * ------------------------------------------------------------------------------------- */

/* Parser state: a cursor over the header plus the first error. Every parse function
 * returns 1 on success and 0 after recording an error. */
typedef struct {
    const unsigned char *start, *p, *end;
    const char *path;
    cnnc_status status; /* CNNC_OK until the first error */
    cnnc_error *err;
} parser;

static int fail_with(parser *ps, cnnc_status s, const char *fmt, ...) CNNC_PRINTF_FORMAT(3, 4);

/* Records an error of status s whose message is "<path>: <formatted text>". */
static int fail_with(parser *ps, cnnc_status s, const char *fmt, ...) {
    if (ps->status != CNNC_OK) {
        return 0;
    }
    ps->status = s;
    char text[CNNC_ERROR_MESSAGE_SIZE];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    cnnc_error_set(ps->err, s, "%s: %s", ps->path, text);
    return 0;
}

/* Records a JSON syntax error at the cursor. */
static int fail_syntax(parser *ps, const char *why) {
    return fail_with(ps, CNNC_ERR_FORMAT, "invalid json in header at byte %zu: %s",
                     (size_t)(ps->p - ps->start), why);
}

/* Records an allocation failure. */
static int fail_alloc(parser *ps) {
    return fail_with(ps, CNNC_ERR_ALLOC, "out of memory while parsing the header");
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

/* Skips whitespace and returns the next byte without consuming it, or -1 at the end. */
static int peek(parser *ps) {
    skip_ws(ps);
    return ps->p < ps->end ? *ps->p : -1;
}

/* Skips whitespace and consumes `ch`, or fails with `why`. */
static int expect(parser *ps, char ch, const char *why) {
    if (peek(ps) != (unsigned char)ch) {
        return fail_syntax(ps, why);
    }
    ps->p++;
    return 1;
}

/* After a list element: consumes ',' (*done = 0) or `close` (*done = 1); anything else is
 * a syntax error. */
static int list_next(parser *ps, char close, int *done) {
    int next = peek(ps);
    if (next != ',' && next != (unsigned char)close) {
        return fail_syntax(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->p++;
    *done = next != ',';
    return 1;
}

/* Parses 4 hex digits at p into *out; returns 0 when they are not hex. */
static int parse_hex4(const unsigned char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        uint32_t d;
        if (c >= '0' && c <= '9') {
            d = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (uint32_t)(c - 'A' + 10);
        } else {
            return 0;
        }
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* Parses a JSON string. With out non-NULL it stores a new malloc'ed UTF-8 copy with
 * escapes decoded; "\u0000" is rejected because names are C strings. */
static int parse_string(parser *ps, char **out) {
    if (peek(ps) != '"') {
        return fail_syntax(ps, "expected a string");
    }
    /* Find the closing quote first; the decoded text is never longer than the raw text. */
    const unsigned char *open = ps->p, *q = ps->p + 1;
    while (q < ps->end && *q != '"') {
        if (*q == '\\' && ps->end - q < 2) {
            q = ps->end; /* a backslash as the last byte */
            break;
        }
        q += *q == '\\' ? 2 : 1;
    }
    if (q >= ps->end) {
        return fail_syntax(ps, "unterminated string");
    }
    char *s = NULL;
    if (out != NULL) {
        s = malloc((size_t)(q - open));
        if (s == NULL) {
            return fail_alloc(ps);
        }
    }
    char scratch[4];
    size_t n = 0;
    const unsigned char *r = open + 1;
    while (r < q) {
        char *dst = s != NULL ? s + n : scratch;
        if (*r < 0x20) {
            ps->p = r;
            free(s);
            return fail_syntax(ps, "control character in string");
        }
        if (*r != '\\') {
            size_t len = utf8_sequence_length(r, q);
            if (len == 0) {
                ps->p = r;
                free(s);
                return fail_syntax(ps, "invalid utf-8 in string");
            }
            if (s != NULL) {
                memcpy(dst, r, len);
            }
            n += len;
            r += len;
            continue;
        }
        /* An escape; the scan above guarantees r + 1 < q. */
        const unsigned char *escape = r;
        unsigned char e = r[1];
        r += 2;
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            if (q - r < 4 || !parse_hex4(r, &cp)) {
                ps->p = escape;
                free(s);
                return fail_syntax(ps, "invalid \\u escape");
            }
            r += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                ps->p = escape;
                free(s);
                return fail_syntax(ps, "unpaired surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t low;
                if (q - r < 6 || r[0] != '\\' || r[1] != 'u' || !parse_hex4(r + 2, &low) ||
                    low < 0xDC00 || low > 0xDFFF) {
                    ps->p = escape;
                    free(s);
                    return fail_syntax(ps, "unpaired surrogate in \\u escape");
                }
                r += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            if (cp == 0) {
                ps->p = escape;
                free(s);
                return fail_syntax(ps, "\\u0000 is not allowed in strings");
            }
            break;
        }
        default:
            ps->p = escape;
            free(s);
            return fail_syntax(ps, "invalid escape in string");
        }
        n += utf8_encode(cp, dst);
    }
    ps->p = q + 1;
    if (s != NULL) {
        s[n] = 0;
        *out = s;
    }
    return 1;
}

/* Parses a non-negative JSON integer no larger than max. */
static int parse_uint(parser *ps, uint64_t max, uint64_t *out) {
    int c = peek(ps);
    if (c == '-') {
        return fail_syntax(ps, "expected a non-negative integer");
    }
    if (c < '0' || c > '9') {
        return fail_syntax(ps, "expected an integer");
    }
    if (c == '0' && ps->end - ps->p > 1 && ps->p[1] >= '0' && ps->p[1] <= '9') {
        return fail_syntax(ps, "integer with a leading zero");
    }
    uint64_t v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        uint64_t d = (uint64_t)(*ps->p - '0');
        if (v > (max - d) / 10) {
            return fail_syntax(ps, "integer too large");
        }
        v = v * 10 + d;
        ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
        return fail_syntax(ps, "expected an integer");
    }
    *out = v;
    return 1;
}

/* Consumes the literal word (true, false, null) or fails. */
static int skip_literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        return fail_syntax(ps, "unexpected character");
    }
    ps->p += n;
    return 1;
}

/* Consumes a JSON number of any form. */
static int skip_number(parser *ps) {
    const unsigned char *p = ps->p, *end = ps->end;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
        return fail_syntax(ps, "invalid number");
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return fail_syntax(ps, "invalid number");
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return fail_syntax(ps, "invalid number");
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    ps->p = p;
    return 1;
}

/* Consumes any JSON value; `depth` counts the enclosing arrays and objects. */
static int skip_value(parser *ps, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        return fail_syntax(ps, "nesting too deep");
    }
    int c = peek(ps);
    switch (c) {
    case -1: return fail_syntax(ps, "unexpected end of header");
    case '"': return parse_string(ps, NULL);
    case 't': return skip_literal(ps, "true");
    case 'f': return skip_literal(ps, "false");
    case 'n': return skip_literal(ps, "null");
    case '[':
    case '{': {
        int is_object = c == '{';
        char close = is_object ? '}' : ']';
        ps->p++;
        if (peek(ps) == close) {
            ps->p++;
            return 1;
        }
        for (;;) {
            if (is_object && (!parse_string(ps, NULL) || !expect(ps, ':', "expected ':'"))) {
                return 0;
            }
            int done = 0;
            if (!skip_value(ps, depth + 1) || !list_next(ps, close, &done)) {
                return 0;
            }
            if (done) {
                return 1;
            }
        }
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return skip_number(ps);
        }
        return fail_syntax(ps, "unexpected character");
    }
}

/* Parses "[...]" of non-negative integers each at most `max_value`, storing the first
 * `max_count` in values. *count receives the number of entries, capped at max_count + 1 so
 * that the caller can tell "too many". */
static int parse_uint_array(parser *ps, uint64_t *values, int max_count, uint64_t max_value,
                            int *count) {
    *count = 0;
    if (!expect(ps, '[', "expected '['")) {
        return 0;
    }
    if (peek(ps) == ']') {
        ps->p++;
        return 1;
    }
    for (;;) {
        uint64_t v = 0;
        if (!parse_uint(ps, max_value, &v)) {
            return 0;
        }
        if (*count < max_count) {
            values[*count] = v;
        }
        if (*count <= max_count) {
            (*count)++;
        }
        int done = 0;
        if (!list_next(ps, ']', &done)) {
            return 0;
        }
        if (done) {
            return 1;
        }
    }
}

/* Parses the value of `field` in the entry of tensor e; unknown fields are skipped. */
static int parse_tensor_field(parser *ps, st_entry *e, const char *field) {
    if (strcmp(field, "dtype") == 0) {
        if (e->dtype != NULL) {
            return fail_with(ps, CNNC_ERR_FORMAT, "tensor '%s': duplicate field 'dtype'", e->name);
        }
        char *dtype = NULL;
        if (!parse_string(ps, &dtype)) {
            return 0;
        }
        e->dtype = find_dtype(dtype);
        int ok = e->dtype != NULL ||
                 fail_with(ps, CNNC_ERR_DTYPE, "tensor '%s': unknown dtype '%s'", e->name, dtype);
        free(dtype);
        return ok;
    }
    if (strcmp(field, "shape") == 0) {
        if (e->ndim >= 0) {
            return fail_with(ps, CNNC_ERR_FORMAT, "tensor '%s': duplicate field 'shape'", e->name);
        }
        uint64_t dims[CNNC_MAX_DIMS];
        int ndim = 0;
        if (!parse_uint_array(ps, dims, CNNC_MAX_DIMS, INT64_MAX, &ndim)) {
            return 0;
        }
        if (ndim > CNNC_MAX_DIMS) {
            return fail_with(ps, CNNC_ERR_SHAPE,
                             "tensor '%s': more than %d dimensions are not supported", e->name,
                             CNNC_MAX_DIMS);
        }
        e->ndim = ndim;
        for (int i = 0; i < ndim; i++) {
            e->shape[i] = (int64_t)dims[i];
        }
        return 1;
    }
    if (strcmp(field, "data_offsets") == 0) {
        if (e->has_offsets) {
            return fail_with(ps, CNNC_ERR_FORMAT, "tensor '%s': duplicate field 'data_offsets'",
                             e->name);
        }
        uint64_t offsets[2];
        int n = 0;
        if (!parse_uint_array(ps, offsets, 2, UINT64_MAX, &n)) {
            return 0;
        }
        if (n != 2) {
            return fail_with(ps, CNNC_ERR_FORMAT, "tensor '%s': data_offsets must have 2 entries",
                             e->name);
        }
        e->has_offsets = 1;
        e->begin = offsets[0];
        e->end = offsets[1];
        return 1;
    }
    return skip_value(ps, 2);
}

/* Parses the object of tensor `name` (ownership of name passes to st). */
static int parse_tensor(parser *ps, cnnc_safetensors *st, char *name) {
    if (!grow_array((void **)&st->entries, &st->cap, st->count, sizeof(st_entry))) {
        free(name);
        return fail_alloc(ps);
    }
    st_entry *e = &st->entries[st->count++];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->ndim = -1;
    if (!expect(ps, '{', "expected '{' for a tensor entry")) {
        return 0;
    }
    if (peek(ps) == '}') {
        ps->p++;
    } else {
        for (;;) {
            char *field = NULL;
            if (!parse_string(ps, &field)) {
                return 0;
            }
            int ok = expect(ps, ':', "expected ':'") && parse_tensor_field(ps, e, field);
            free(field);
            int done = 0;
            if (!ok || !list_next(ps, '}', &done)) {
                return 0;
            }
            if (done) {
                break;
            }
        }
    }
    const char *missing = e->dtype == NULL  ? "dtype"
                          : e->ndim < 0     ? "shape"
                          : !e->has_offsets ? "data_offsets"
                                            : NULL;
    if (missing != NULL) {
        return fail_with(ps, CNNC_ERR_FORMAT, "tensor '%s': missing field '%s'", name, missing);
    }
    return 1;
}

/* Parses the "__metadata__" value: null or an object of string values. */
static int parse_metadata(parser *ps, cnnc_safetensors *st) {
    if (peek(ps) == 'n') {
        return skip_literal(ps, "null");
    }
    if (!expect(ps, '{', "expected '{' for __metadata__")) {
        return 0;
    }
    if (peek(ps) == '}') {
        ps->p++;
        return 1;
    }
    for (;;) {
        if (!grow_array((void **)&st->meta, &st->meta_cap, st->meta_count, sizeof(st_meta))) {
            return fail_alloc(ps);
        }
        st_meta *m = &st->meta[st->meta_count];
        m->key = m->value = NULL;
        if (!parse_string(ps, &m->key)) {
            return 0;
        }
        st->meta_count++; /* from here close() frees key and value */
        if (!expect(ps, ':', "expected ':'")) {
            return 0;
        }
        if (peek(ps) != '"') {
            return fail_with(ps, CNNC_ERR_FORMAT, "metadata value for '%s' is not a string",
                             m->key);
        }
        int done = 0;
        if (!parse_string(ps, &m->value) || !list_next(ps, '}', &done)) {
            return 0;
        }
        if (done) {
            return 1;
        }
    }
}

/* Parses the whole header object into st. */
static int parse_header(parser *ps, cnnc_safetensors *st) {
    int seen_metadata = 0;
    /* The first byte itself, as the format's reference reader requires: no whitespace and no
     * byte order mark before it (the Swift reader agrees; tests/safetensors_spec.txt). */
    if (ps->p == ps->end || *ps->p != '{') {
        return fail_syntax(ps, "expected '{' at the start of the header");
    }
    ps->p++;
    if (peek(ps) == '}') {
        ps->p++;
    } else {
        for (;;) {
            char *key = NULL;
            if (!parse_string(ps, &key)) {
                return 0;
            }
            if (!expect(ps, ':', "expected ':'")) {
                free(key);
                return 0;
            }
            int ok;
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (seen_metadata) {
                    return fail_with(ps, CNNC_ERR_FORMAT, "duplicate '__metadata__' entry");
                }
                seen_metadata = 1;
                ok = parse_metadata(ps, st);
            } else {
                ok = parse_tensor(ps, st, key);
            }
            int done = 0;
            if (!ok || !list_next(ps, '}', &done)) {
                return 0;
            }
            if (done) {
                break;
            }
        }
    }
    if (peek(ps) != -1) {
        return fail_syntax(ps, "unexpected text after the header object");
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------------------- */

static int compare_entry_names(const void *a, const void *b) {
    return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static int compare_meta_keys(const void *a, const void *b) {
    return strcmp((*(const st_meta *const *)a)->key, (*(const st_meta *const *)b)->key);
}

static int compare_entry_offsets(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    return (x->end > y->end) - (x->end < y->end);
}

/* Checks each tensor's offsets and size, unique names and keys, and that no two tensors
 * share bytes; builds the lookup tables. */
static int validate(parser *ps, cnnc_safetensors *st) {
    /* Offsets inside the buffer and sizes matching shape times dtype. */
    for (size_t i = 0; i < st->count; i++) {
        const st_entry *e = &st->entries[i];
        char shape[SHAPE_TEXT_SIZE];
        cnnc_internal_format_shape(shape, sizeof shape, e->ndim, e->shape);
        unsigned long long b = e->begin, en = e->end;
        if (e->begin > e->end) {
            return fail_with(ps, CNNC_ERR_FORMAT,
                             "tensor '%s': data_offsets [%llu,%llu] end before they begin", e->name,
                             b, en);
        }
        if (e->end > st->data_size) {
            return fail_with(
                ps, CNNC_ERR_FORMAT,
                "tensor '%s': data_offsets [%llu,%llu] exceed the data buffer of %zu bytes",
                e->name, b, en, st->data_size);
        }
        uint64_t elements;
        if (!cnnc_internal_shape_product(e->ndim, e->shape, UINT64_MAX / e->dtype->size,
                                         &elements)) {
            return fail_with(ps, CNNC_ERR_FORMAT, "tensor '%s': shape %s is too large", e->name,
                             shape);
        }
        uint64_t nbytes = elements * e->dtype->size;
        if (nbytes != e->end - e->begin) {
            return fail_with(
                ps, CNNC_ERR_FORMAT,
                "tensor '%s': shape %s of %s needs %llu bytes, data_offsets [%llu,%llu] hold %llu",
                e->name, shape, e->dtype->name, (unsigned long long)nbytes, b, en, en - b);
        }
    }
    /* Unique tensor names. */
    if (st->count > 0) {
        st->by_name = malloc(st->count * sizeof *st->by_name);
        if (st->by_name == NULL) {
            return fail_alloc(ps);
        }
        for (size_t i = 0; i < st->count; i++) {
            st->by_name[i] = &st->entries[i];
        }
        qsort(st->by_name, st->count, sizeof *st->by_name, compare_entry_names);
        for (size_t i = 1; i < st->count; i++) {
            if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0) {
                return fail_with(ps, CNNC_ERR_FORMAT, "duplicate tensor name '%s'",
                                 st->by_name[i]->name);
            }
        }
    }
    /* Unique metadata keys. */
    if (st->meta_count > 0) {
        st->meta_by_key = malloc(st->meta_count * sizeof *st->meta_by_key);
        if (st->meta_by_key == NULL) {
            return fail_alloc(ps);
        }
        for (size_t i = 0; i < st->meta_count; i++) {
            st->meta_by_key[i] = &st->meta[i];
        }
        qsort(st->meta_by_key, st->meta_count, sizeof *st->meta_by_key, compare_meta_keys);
        for (size_t i = 1; i < st->meta_count; i++) {
            if (strcmp(st->meta_by_key[i - 1]->key, st->meta_by_key[i]->key) == 0) {
                return fail_with(ps, CNNC_ERR_FORMAT, "duplicate metadata key '%s'",
                                 st->meta_by_key[i]->key);
            }
        }
    }
    /* No overlap: sorted by begin, each non-empty tensor starts at or after the furthest
     * end seen so far. */
    if (st->count > 1) {
        const st_entry **order = malloc(st->count * sizeof *order);
        if (order == NULL) {
            return fail_alloc(ps);
        }
        for (size_t i = 0; i < st->count; i++) {
            order[i] = &st->entries[i];
        }
        qsort(order, st->count, sizeof *order, compare_entry_offsets);
        const st_entry *furthest = NULL;
        for (size_t i = 0; i < st->count; i++) {
            const st_entry *e = order[i];
            if (e->begin == e->end) {
                continue;
            }
            if (furthest != NULL && e->begin < furthest->end) {
                int r = fail_with(
                    ps, CNNC_ERR_FORMAT,
                    "tensors '%s' and '%s' overlap: data_offsets [%llu,%llu] and [%llu,%llu]",
                    furthest->name, e->name, (unsigned long long)furthest->begin,
                    (unsigned long long)furthest->end, (unsigned long long)e->begin,
                    (unsigned long long)e->end);
                free(order);
                return r;
            }
            if (furthest == NULL || e->end > furthest->end) {
                furthest = e;
            }
        }
        free(order);
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------- */

cnnc_status cnnc_safetensors_open(const char *path, cnnc_safetensors **out, cnnc_error *err) {
    if (out != NULL) {
        *out = NULL;
    }
    if (path == NULL || out == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                       "cnnc_safetensors_open: path and out must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    cnnc_safetensors *st = calloc(1, sizeof *st);
    size_t path_len = strlen(path);
    if (st == NULL || (st->path = malloc(path_len + 1)) == NULL) {
        free(st);
        cnnc_error_set(err, CNNC_ERR_ALLOC, "out of memory opening '%s'", path);
        return CNNC_ERR_ALLOC;
    }
    memcpy(st->path, path, path_len + 1);
    cnnc_status s = cnnc_internal_read_file(path, &st->file, &st->file_size, err);
    if (s != CNNC_OK) {
        cnnc_safetensors_close(st);
        return s;
    }
    /* The 8-byte header length and the header must fit in the file. */
    if (st->file_size < 8) {
        cnnc_error_set(err, CNNC_ERR_FORMAT,
                       "%s: file of %zu bytes is too small for a safetensors header", path,
                       st->file_size);
        cnnc_safetensors_close(st);
        return CNNC_ERR_FORMAT;
    }
    uint64_t header_len = cnnc_load_le64(st->file);
    if (header_len > st->file_size - 8) {
        if (header_len > st->file_size) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: header length %llu exceeds file size %zu",
                           path, (unsigned long long)header_len, st->file_size);
        } else {
            cnnc_error_set(
                err, CNNC_ERR_FORMAT,
                "%s: header length %llu plus the 8-byte length prefix exceeds file size %zu", path,
                (unsigned long long)header_len, st->file_size);
        }
        cnnc_safetensors_close(st);
        return CNNC_ERR_FORMAT;
    }
    st->data = st->file + 8 + header_len;
    st->data_size = st->file_size - 8 - (size_t)header_len;

    parser ps = {st->file + 8, st->file + 8, st->data, path, CNNC_OK, err};
    if (!parse_header(&ps, st) || !validate(&ps, st)) {
        cnnc_safetensors_close(st);
        return ps.status;
    }
    *out = st;
    return CNNC_OK;
}

size_t cnnc_safetensors_count(const cnnc_safetensors *st) {
    return st != NULL ? st->count : 0;
}

const char *cnnc_safetensors_name(const cnnc_safetensors *st, size_t i) {
    return st != NULL && i < st->count ? st->entries[i].name : NULL;
}

/* Binary search of the name table; NULL when absent. */
static const st_entry *find_entry(const cnnc_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->by_name[mid]->name, name);
        if (c == 0) {
            return st->by_name[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

cnnc_status cnnc_safetensors_get(const cnnc_safetensors *st, const char *name,
                                 cnnc_tensor_view *out, cnnc_error *err) {
    if (st == NULL || name == NULL || out == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                       "cnnc_safetensors_get: st, name and out must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    const st_entry *e = find_entry(st, name);
    if (e == NULL) {
        cnnc_error_set(err, CNNC_ERR_MISSING, "tensor '%s' not found in %s", name, st->path);
        return CNNC_ERR_MISSING;
    }
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->dtype = e->dtype->name;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, (size_t)e->ndim * sizeof e->shape[0]);
    out->data = st->data + e->begin;
    out->nbytes = (size_t)(e->end - e->begin);
    return CNNC_OK;
}

cnnc_status cnnc_safetensors_read_f32(const cnnc_safetensors *st, const char *name, float *dst,
                                      int ndim, const int64_t *expected_shape, cnnc_error *err) {
    if (ndim < 0 || ndim > CNNC_MAX_DIMS || (ndim > 0 && expected_shape == NULL)) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                       "cnnc_safetensors_read_f32: invalid expected shape (ndim %d)", ndim);
        return CNNC_ERR_ARGUMENT;
    }
    cnnc_tensor_view v;
    cnnc_status s = cnnc_safetensors_get(st, name, &v, err);
    if (s != CNNC_OK) {
        return s;
    }
    if (strcmp(v.dtype, "F32") != 0) {
        cnnc_error_set(err, CNNC_ERR_DTYPE, "tensor '%s': expected dtype F32, got %s", name,
                       v.dtype);
        return CNNC_ERR_DTYPE;
    }
    int same = v.ndim == ndim;
    for (int i = 0; same && i < ndim; i++) {
        same = v.shape[i] == expected_shape[i];
    }
    if (!same) {
        char want[SHAPE_TEXT_SIZE], got[SHAPE_TEXT_SIZE];
        cnnc_internal_format_shape(want, sizeof want, ndim, expected_shape);
        cnnc_internal_format_shape(got, sizeof got, v.ndim, v.shape);
        cnnc_error_set(err, CNNC_ERR_SHAPE, "tensor '%s': expected shape %s, got %s", name, want,
                       got);
        return CNNC_ERR_SHAPE;
    }
    if (v.nbytes == 0) {
        return CNNC_OK;
    }
    if (dst == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "cnnc_safetensors_read_f32: dst must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    /* The source may be unaligned: copy bytes, then fix the byte order if needed. */
    if (cnnc_internal_host_is_little_endian()) {
        memcpy(dst, v.data, v.nbytes);
    } else {
        const unsigned char *src = v.data;
        for (size_t i = 0; i < v.nbytes / 4; i++) {
            dst[i] = cnnc_load_le_f32(src + 4 * i);
        }
    }
    return CNNC_OK;
}

const char *cnnc_safetensors_metadata(const cnnc_safetensors *st, const char *key) {
    if (st == NULL || key == NULL) {
        return NULL;
    }
    size_t lo = 0, hi = st->meta_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->meta_by_key[mid]->key, key);
        if (c == 0) {
            return st->meta_by_key[mid]->value;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

size_t cnnc_safetensors_metadata_count(const cnnc_safetensors *st) {
    return st != NULL ? st->meta_count : 0;
}

const char *cnnc_safetensors_metadata_key(const cnnc_safetensors *st, size_t i) {
    return st != NULL && i < st->meta_count ? st->meta[i].key : NULL;
}

/* ---------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------- */

/* A growable string; `failed` becomes 1 after an allocation failure. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t n) {
    if (b->failed) {
        return;
    }
    if (n > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (cap < b->len + n + 1) {
            cap = cap <= SIZE_MAX / 2 ? cap * 2 : b->len + n + 1;
        }
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(strbuf *b, const char *s) {
    sb_append(b, s, strlen(s));
}

/* Appends s as a quoted JSON string, escaping quotes, backslashes and control bytes. */
static void sb_json_string(strbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != 0; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
                sb_puts(b, esc);
            } else {
                sb_append(b, (const char *)p, 1);
            }
        }
    }
    sb_puts(b, "\"");
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the first string that occurs twice in `strings` (sorted in place), or NULL. */
static const char *find_duplicate(const char **strings, size_t n) {
    qsort(strings, n, sizeof *strings, compare_strings);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(strings[i - 1], strings[i]) == 0) {
            return strings[i];
        }
    }
    return NULL;
}

/* Checks the arguments of cnnc_safetensors_write_f32 and stores each tensor's element count
 * in counts[i]. */
static cnnc_status check_write_args(const cnnc_tensor_f32 *tensors, size_t count,
                                    const char *const *metadata_kv, uint64_t *counts,
                                    cnnc_error *err) {
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const cnnc_tensor_f32 *t = &tensors[i];
        if (t->name == NULL || t->name[0] == 0 || !utf8_valid(t->name) ||
            strcmp(t->name, "__metadata__") == 0) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                           "tensor %zu: name must be non-empty utf-8 and not '__metadata__'", i);
            return CNNC_ERR_ARGUMENT;
        }
        if (t->ndim < 0 || t->ndim > CNNC_MAX_DIMS || (t->ndim > 0 && t->shape == NULL)) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "tensor '%s': invalid ndim %d", t->name,
                           t->ndim);
            return CNNC_ERR_ARGUMENT;
        }
        /* Byte offsets must fit size_t: count * 4 <= SIZE_MAX - total. */
        if (!cnnc_internal_shape_product(t->ndim, t->shape, ((uint64_t)SIZE_MAX - total) / 4,
                                         &counts[i])) {
            char shape[SHAPE_TEXT_SIZE];
            cnnc_internal_format_shape(shape, sizeof shape, t->ndim, t->shape);
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "tensor '%s': invalid shape %s", t->name, shape);
            return CNNC_ERR_ARGUMENT;
        }
        if (counts[i] > 0 && t->data == NULL) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "tensor '%s': data must not be NULL", t->name);
            return CNNC_ERR_ARGUMENT;
        }
        total += counts[i] * 4;
    }
    for (size_t i = 0; metadata_kv != NULL && metadata_kv[i] != NULL; i += 2) {
        if (metadata_kv[i + 1] == NULL) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "metadata key '%s' has no value",
                           metadata_kv[i]);
            return CNNC_ERR_ARGUMENT;
        }
        if (!utf8_valid(metadata_kv[i]) || !utf8_valid(metadata_kv[i + 1])) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "metadata entry %zu is not valid utf-8", i / 2);
            return CNNC_ERR_ARGUMENT;
        }
    }
    return CNNC_OK;
}

/* Checks that tensor names and metadata keys are unique. */
static cnnc_status check_unique_names(const cnnc_tensor_f32 *tensors, size_t count,
                                      const char *const *metadata_kv, cnnc_error *err) {
    size_t meta_count = 0;
    while (metadata_kv != NULL && metadata_kv[2 * meta_count] != NULL) {
        meta_count++;
    }
    size_t n = count > meta_count ? count : meta_count;
    if (n < 2) {
        return CNNC_OK;
    }
    const char **names = malloc(n * sizeof *names);
    if (names == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "out of memory checking %zu names", n);
        return CNNC_ERR_ALLOC;
    }
    for (size_t i = 0; i < count; i++) {
        names[i] = tensors[i].name;
    }
    const char *dup = find_duplicate(names, count);
    if (dup != NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "duplicate tensor name '%s'", dup);
        free(names);
        return CNNC_ERR_ARGUMENT;
    }
    for (size_t i = 0; i < meta_count; i++) {
        names[i] = metadata_kv[2 * i];
    }
    dup = find_duplicate(names, meta_count);
    free(names);
    if (dup != NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "duplicate metadata key '%s'", dup);
        return CNNC_ERR_ARGUMENT;
    }
    return CNNC_OK;
}

/* Builds the JSON header, padded with spaces to a multiple of 8 bytes. */
static void build_header(strbuf *b, const cnnc_tensor_f32 *tensors, size_t count,
                         const char *const *metadata_kv, const uint64_t *counts) {
    sb_puts(b, "{");
    int first = 1;
    if (metadata_kv != NULL && metadata_kv[0] != NULL) {
        sb_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; metadata_kv[i] != NULL; i += 2) {
            sb_puts(b, i > 0 ? "," : "");
            sb_json_string(b, metadata_kv[i]);
            sb_puts(b, ":");
            sb_json_string(b, metadata_kv[i + 1]);
        }
        sb_puts(b, "}");
        first = 0;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        char num[64];
        sb_puts(b, first ? "" : ",");
        first = 0;
        sb_json_string(b, tensors[i].name);
        sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < tensors[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d > 0 ? "," : "", (long long)tensors[i].shape[d]);
            sb_puts(b, num);
        }
        uint64_t end = offset + counts[i] * 4;
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)end);
        sb_puts(b, num);
        offset = end;
    }
    sb_puts(b, "}");
    while (!b->failed && b->len % 8 != 0) {
        sb_puts(b, " ");
    }
}

/* Writes n floats as little-endian bytes; returns 0 on a write error. */
static int write_floats(FILE *f, const float *data, size_t n) {
    if (n == 0) {
        return 1; /* data may be NULL */
    }
    if (cnnc_internal_host_is_little_endian()) {
        return fwrite(data, sizeof(float), n, f) == n;
    }
    unsigned char chunk[4096];
    while (n > 0) {
        size_t m = n < sizeof chunk / 4 ? n : sizeof chunk / 4;
        for (size_t i = 0; i < m; i++) {
            cnnc_store_le_f32(chunk + 4 * i, data[i]);
        }
        if (fwrite(chunk, 4, m, f) != m) {
            return 0;
        }
        data += m;
        n -= m;
    }
    return 1;
}

cnnc_status cnnc_safetensors_write_f32(const char *path, const cnnc_tensor_f32 *tensors,
                                       size_t count, const char *const *metadata_kv,
                                       cnnc_error *err) {
    if (path == NULL || (count > 0 && tensors == NULL)) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT,
                       "cnnc_safetensors_write_f32: path and tensors must not be NULL");
        return CNNC_ERR_ARGUMENT;
    }
    uint64_t *counts = malloc((count > 0 ? count : 1) * sizeof *counts);
    if (counts == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "out of memory writing '%s'", path);
        return CNNC_ERR_ALLOC;
    }
    cnnc_status s = check_write_args(tensors, count, metadata_kv, counts, err);
    if (s == CNNC_OK) {
        s = check_unique_names(tensors, count, metadata_kv, err);
    }
    strbuf header = {NULL, 0, 0, 0};
    if (s == CNNC_OK) {
        build_header(&header, tensors, count, metadata_kv, counts);
        if (header.failed) {
            cnnc_error_set(err, CNNC_ERR_ALLOC, "out of memory building the header of '%s'", path);
            s = CNNC_ERR_ALLOC;
        }
    }
    if (s != CNNC_OK) {
        free(header.p);
        free(counts);
        return s;
    }
    FILE *f = cnnc_file_open(path, "wb", err);
    if (f == NULL) {
        free(header.p);
        free(counts);
        return CNNC_ERR_IO;
    }
    unsigned char prefix[8];
    cnnc_store_le64(prefix, (uint64_t)header.len);
    int ok = fwrite(prefix, 1, 8, f) == 8 && fwrite(header.p, 1, header.len, f) == header.len;
    for (size_t i = 0; ok && i < count; i++) {
        ok = write_floats(f, tensors[i].data, (size_t)counts[i]);
    }
    int saved_errno = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved_errno = errno;
    }
    free(header.p);
    free(counts);
    if (!ok) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, saved_errno);
        remove(path);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot write '%s': %s", path, why);
        return CNNC_ERR_IO;
    }
    return CNNC_OK;
}
