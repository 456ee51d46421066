/*
 * inflate.c — DEFLATE (RFC 1951) and gzip (RFC 1952) decoding, CRC-32.
 *
 * The decoder reads the input through a 64-bit bit buffer. Past the end of the input it
 * feeds zero bytes and counts them; as soon as a decoded item has used one of those bits the
 * stream is reported truncated, so a damaged stream ends in an error after a bounded amount
 * of work, never in a read out of bounds or an endless loop. Huffman codes are decoded with
 * a 2^10-entry lookup table indexed by the next input bits, and bit by bit (canonical
 * decoding) for the rare longer codes. The output grows geometrically in one buffer.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

/* Codes up to this many bits are decoded with one table lookup. */
#define INFL_FAST_BITS 10

/* The longest Huffman code DEFLATE allows. */
#define INFL_MAX_BITS 15

/* Literal/length codes, distance codes and code-length codes that a block may define. */
#define INFL_MAX_LITLEN_CODES 286
#define INFL_MAX_DIST_CODES 30
#define INFL_CODELEN_CODES 19

/* The largest output a byte of DEFLATE input can produce (a 258-byte match in 2 bits is
 * 1032 bytes per byte); it bounds the buffer reserved from the gzip size field. */
#define INFL_MAX_RATIO 1032

/* ---------------------------------------------------------------------------------------
 * CRC-32 (the polynomial of gzip, zlib and PNG), slice-by-8
 * ------------------------------------------------------------------------------------- */

/* Fills the 8 tables of slice-by-8 CRC-32: table[0] is the classic byte table; table[k][b]
 * is the CRC of byte b followed by k zero bytes. */
static void crc32_fill_tables(uint32_t table[8][256]) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int bit = 0; bit < 8; bit++) {
            c = (c & 1) ? (c >> 1) ^ UINT32_C(0xEDB88320) : c >> 1;
        }
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        for (int k = 1; k < 8; k++) {
            uint32_t prev = table[k - 1][b];
            table[k][b] = (prev >> 8) ^ table[0][prev & 0xFF];
        }
    }
}

uint32_t cnnc_crc32(uint32_t crc, const void *data, size_t size) {
    uint32_t table[8][256];
    crc32_fill_tables(table);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    /* Eight bytes per step: the first four are folded into the register, all eight are
     * looked up in the tables for their distance from the end of the group. */
    while (size >= 8) {
        uint32_t lo = c ^ cnnc_load_le32(p);
        uint32_t hi = cnnc_load_le32(p + 4);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        size -= 8;
    }
    /* The remaining bytes one at a time. */
    while (size-- > 0) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xFF];
    }
    return ~c;
}

/* ---------------------------------------------------------------------------------------
 * Input bits
 * ------------------------------------------------------------------------------------- */

/* Bits are consumed from the low end of `bits`; `count` of them are valid. */
typedef struct {
    const unsigned char *start, *next, *end;
    uint64_t bits;
    unsigned count;
    size_t overrun; /* zero bytes fed after the end of the input */
} infl_bits;

/* Tops the buffer up to at least 56 valid bits. */
static inline void infl_refill(infl_bits *b) {
    if (b->count > 56) {
        return;
    }
    if (b->end - b->next >= 8) {
        /* Load 8 bytes at once and keep the whole ones that fit. The bits loaded above
         * `count` belong to *next and are loaded again, identically, by the next refill. */
        unsigned whole = (63 - b->count) >> 3;
        b->bits |= cnnc_load_le64(b->next) << b->count;
        b->next += whole;
        b->count += 8 * whole;
        return;
    }
    while (b->count <= 56) {
        if (b->next < b->end) {
            b->bits |= (uint64_t)*b->next++ << b->count;
        } else {
            b->overrun++;
        }
        b->count += 8;
    }
}

/* Returns 1 when a bit past the end of the input has been consumed. */
static inline int infl_truncated(const infl_bits *b) {
    return (uint64_t)b->count < 8 * (uint64_t)b->overrun;
}

/* Returns the next n bits (n <= 32; the buffer must hold them) and consumes them. */
static inline uint32_t infl_take(infl_bits *b, unsigned n) {
    uint32_t v = (uint32_t)(b->bits & (((uint64_t)1 << n) - 1));
    b->bits >>= n;
    b->count -= n;
    return v;
}

/* The number of input bytes consumed so far; the partly used byte counts as consumed. */
static size_t infl_position(const infl_bits *b) {
    if (b->count / 8 < b->overrun) {
        return (size_t)(b->end - b->start);
    }
    size_t unused = b->count / 8 - b->overrun;
    return (size_t)(b->next - b->start) - unused;
}

/* ---------------------------------------------------------------------------------------
 * Huffman codes
 * ------------------------------------------------------------------------------------- */

typedef struct {
    /* Entry for the next INFL_FAST_BITS input bits: (length << 9) | symbol, or 0 when the
     * code is longer than INFL_FAST_BITS bits or not assigned. */
    uint16_t fast[1 << INFL_FAST_BITS];
    uint16_t count[INFL_MAX_BITS + 1];          /* number of codes of each length */
    uint16_t symbol[INFL_MAX_LITLEN_CODES + 2]; /* symbols in canonical code order */
} infl_huffman;

/* Reverses the low n bits of v. */
static unsigned infl_reverse(unsigned v, unsigned n) {
    unsigned r = 0;
    for (unsigned i = 0; i < n; i++) {
        r = (r << 1) | ((v >> i) & 1);
    }
    return r;
}

/* Builds the decoder for the code lengths lengths[0..n). Returns NULL on success or the
 * reason the lengths do not form a valid code. A set with no codes at all is accepted (any
 * attempt to decode with it fails), as is, when `allow_single` is set, a set with exactly
 * one code of length 1, as zlib does; other incomplete sets are rejected. */
static const char *infl_build(infl_huffman *h, const unsigned char *lengths, unsigned n,
                              int allow_single) {
    memset(h->count, 0, sizeof h->count);
    for (unsigned s = 0; s < n; s++) {
        h->count[lengths[s]]++;
    }
    h->count[0] = 0;
    int left = 1;
    unsigned used = 0;
    for (unsigned len = 1; len <= INFL_MAX_BITS; len++) {
        left = 2 * left - h->count[len];
        if (left < 0) {
            return "over-subscribed huffman code";
        }
        used += h->count[len];
    }
    if (left > 0 && used > 0 && !(allow_single && used == 1 && h->count[1] == 1)) {
        return "incomplete huffman code";
    }
    /* Canonical order: by length, then by symbol; offsets[len] is where length len starts. */
    uint16_t offsets[INFL_MAX_BITS + 2];
    offsets[1] = 0;
    for (unsigned len = 1; len <= INFL_MAX_BITS; len++) {
        offsets[len + 1] = (uint16_t)(offsets[len] + h->count[len]);
    }
    for (unsigned s = 0; s < n; s++) {
        if (lengths[s] != 0) {
            h->symbol[offsets[lengths[s]]++] = (uint16_t)s;
        }
    }
    /* The lookup table: each short code fills every entry whose low bits are the code
     * (codes are sent most significant bit first, so the table index is reversed). */
    memset(h->fast, 0, sizeof h->fast);
    unsigned code = 0, index = 0;
    for (unsigned len = 1; len <= INFL_FAST_BITS; len++) {
        for (unsigned i = 0; i < h->count[len]; i++, index++, code++) {
            uint16_t entry = (uint16_t)((len << 9) | h->symbol[index]);
            for (unsigned fill = infl_reverse(code, len); fill < (1u << INFL_FAST_BITS);
                 fill += 1u << len) {
                h->fast[fill] = entry;
            }
        }
        code <<= 1;
    }
    return NULL;
}

/* Decodes one symbol; the bit buffer must hold at least INFL_MAX_BITS bits. Returns -1 for
 * a bit sequence that is no code. */
static inline int infl_decode(infl_bits *b, const infl_huffman *h) {
    uint16_t entry = h->fast[b->bits & ((1u << INFL_FAST_BITS) - 1)];
    if (entry != 0) {
        infl_take(b, entry >> 9);
        return entry & 0x1FF;
    }
    /* Canonical decoding, one bit at a time: `first` is the first code of length len,
     * `index` the position of its symbol. */
    unsigned code = 0, first = 0, index = 0;
    for (unsigned len = 1; len <= INFL_MAX_BITS; len++) {
        code |= (unsigned)(b->bits >> (len - 1)) & 1;
        unsigned count = h->count[len];
        if (code - first < count) {
            infl_take(b, len);
            return h->symbol[index + (code - first)];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t size, cap;
} infl_output;

/* Makes room for `more` further bytes; returns 0 when memory is exhausted. */
static int infl_reserve(infl_output *o, size_t more) {
    if (more <= o->cap - o->size) {
        return 1;
    }
    if (more > SIZE_MAX - o->size) {
        return 0;
    }
    size_t need = o->size + more;
    size_t cap = o->cap < 4096 ? 4096 : o->cap;
    while (cap < need) {
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    }
    unsigned char *grown = realloc(o->data, cap);
    if (grown == NULL) {
        return 0;
    }
    o->data = grown;
    o->cap = cap;
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * DEFLATE blocks
 * ------------------------------------------------------------------------------------- */

/* Base values and extra bits of length symbols 257..285 and distance symbols 0..29. */
static const uint16_t k_infl_length_base[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                                15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                                67, 83, 99, 115, 131, 163, 195, 227, 258};
static const unsigned char k_infl_length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t k_infl_dist_base[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const unsigned char k_infl_dist_extra[30] = {0, 0, 0,  0,  1,  1,  2,  2,  3,  3,
                                                    4, 4, 5,  5,  6,  6,  7,  7,  8,  8,
                                                    9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* Order in which a dynamic block sends the code-length code's lengths. */
static const unsigned char k_infl_codelen_order[INFL_CODELEN_CODES] = {
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/* The state of one decoding run; `why` receives the reason of a failure. */
typedef struct {
    infl_bits in;
    infl_output out;
    infl_huffman litlen, dist;
    const char *why;
    char why_buf[96];
} infl_state;

/* Records a failure and returns 0. */
static int infl_fail(infl_state *s, const char *why) {
    s->why = why;
    return 0;
}

/* Copies a stored block; the 3 header bits have been read. */
static int infl_stored(infl_state *s) {
    infl_bits *b = &s->in;
    /* Skip to the byte boundary and hand the unused whole bytes back to the input. */
    infl_take(b, b->count % 8);
    if (b->count / 8 < b->overrun) {
        return infl_fail(s, "unexpected end of data");
    }
    b->next -= b->count / 8 - b->overrun;
    b->bits = 0;
    b->count = 0;
    b->overrun = 0;
    if (b->end - b->next < 4) {
        return infl_fail(s, "unexpected end of data in a stored block header");
    }
    unsigned len = cnnc_load_le16(b->next), nlen = cnnc_load_le16(b->next + 2);
    b->next += 4;
    if (len != (~nlen & 0xFFFFu)) {
        snprintf(s->why_buf, sizeof s->why_buf,
                 "stored block length %u does not match its complement %u", len, nlen);
        return infl_fail(s, s->why_buf);
    }
    if ((size_t)(b->end - b->next) < len) {
        return infl_fail(s, "unexpected end of data in a stored block");
    }
    if (!infl_reserve(&s->out, len)) {
        return infl_fail(s, NULL);
    }
    if (len > 0) {
        memcpy(s->out.data + s->out.size, b->next, len);
    }
    s->out.size += len;
    b->next += len;
    return 1;
}

/* The fixed codes of block type 1 (RFC 1951 section 3.2.6). */
static void infl_fixed_codes(infl_state *s) {
    unsigned char lengths[288];
    for (unsigned i = 0; i < 288; i++) {
        lengths[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    }
    /* Symbols 286, 287 have codes but are invalid; they are caught after decoding. */
    infl_build(&s->litlen, lengths, 288, 0);
    /* Distance symbols 30 and 31 complete the code; they are caught after decoding. */
    for (unsigned i = 0; i < 32; i++) {
        lengths[i] = 5;
    }
    infl_build(&s->dist, lengths, 32, 0);
}

/* Reads the code definitions of a dynamic block (RFC 1951 section 3.2.7). */
static int infl_dynamic_codes(infl_state *s) {
    infl_bits *b = &s->in;
    infl_refill(b);
    unsigned nlen = infl_take(b, 5) + 257, ndist = infl_take(b, 5) + 1, ncode = infl_take(b, 4) + 4;
    if (nlen > INFL_MAX_LITLEN_CODES) {
        snprintf(s->why_buf, sizeof s->why_buf, "too many literal/length codes (%u)", nlen);
        return infl_fail(s, s->why_buf);
    }
    if (ndist > INFL_MAX_DIST_CODES) {
        snprintf(s->why_buf, sizeof s->why_buf, "too many distance codes (%u)", ndist);
        return infl_fail(s, s->why_buf);
    }
    unsigned char lengths[INFL_MAX_LITLEN_CODES + INFL_MAX_DIST_CODES];
    memset(lengths, 0, INFL_CODELEN_CODES);
    for (unsigned i = 0; i < ncode; i++) {
        infl_refill(b);
        lengths[k_infl_codelen_order[i]] = (unsigned char)infl_take(b, 3);
    }
    if (infl_truncated(b)) {
        return infl_fail(s, "unexpected end of data");
    }
    const char *why = infl_build(&s->litlen, lengths, INFL_CODELEN_CODES, 0);
    if (why != NULL) {
        snprintf(s->why_buf, sizeof s->why_buf, "code-length code: %s", why);
        return infl_fail(s, s->why_buf);
    }
    /* The literal/length and distance code lengths form one run-length coded sequence. */
    unsigned total = nlen + ndist;
    for (unsigned i = 0; i < total;) {
        infl_refill(b);
        int sym = infl_decode(b, &s->litlen);
        if (infl_truncated(b)) {
            return infl_fail(s, "unexpected end of data");
        }
        if (sym < 0) {
            return infl_fail(s, "invalid code-length code");
        }
        if (sym < 16) {
            lengths[i++] = (unsigned char)sym;
            continue;
        }
        unsigned repeat;
        unsigned char value = 0;
        if (sym == 16) {
            if (i == 0) {
                return infl_fail(s, "length repeat (code 16) without a previous length");
            }
            value = lengths[i - 1];
            repeat = 3 + infl_take(b, 2);
        } else if (sym == 17) {
            repeat = 3 + infl_take(b, 3);
        } else {
            repeat = 11 + infl_take(b, 7);
        }
        if (repeat > total - i) {
            snprintf(s->why_buf, sizeof s->why_buf,
                     "code lengths overrun the %u literal/length and distance codes", total);
            return infl_fail(s, s->why_buf);
        }
        memset(lengths + i, value, repeat);
        i += repeat;
    }
    if (infl_truncated(b)) {
        return infl_fail(s, "unexpected end of data");
    }
    if (lengths[256] == 0) {
        return infl_fail(s, "missing end-of-block code");
    }
    why = infl_build(&s->litlen, lengths, nlen, 1);
    if (why != NULL) {
        snprintf(s->why_buf, sizeof s->why_buf, "literal/length code: %s", why);
        return infl_fail(s, s->why_buf);
    }
    why = infl_build(&s->dist, lengths + nlen, ndist, 1);
    if (why != NULL) {
        snprintf(s->why_buf, sizeof s->why_buf, "distance code: %s", why);
        return infl_fail(s, s->why_buf);
    }
    return 1;
}

/* Decodes the symbols of a Huffman-coded block up to its end-of-block code. */
static int infl_codes(infl_state *s) {
    infl_bits *b = &s->in;
    infl_output *o = &s->out;
    for (;;) {
        /* One refill covers a whole length/distance pair: at most 15 + 5 + 15 + 13 bits. */
        infl_refill(b);
        if (infl_truncated(b)) {
            return infl_fail(s, "unexpected end of data");
        }
        int sym = infl_decode(b, &s->litlen);
        if (sym < 256) {
            if (sym < 0) {
                return infl_fail(s, "invalid literal/length code");
            }
            if (o->size == o->cap && !infl_reserve(o, 1)) {
                return infl_fail(s, NULL);
            }
            o->data[o->size++] = (unsigned char)sym;
            continue;
        }
        if (sym == 256) {
            return infl_truncated(b) ? infl_fail(s, "unexpected end of data") : 1;
        }
        sym -= 257;
        if (sym >= 29) {
            snprintf(s->why_buf, sizeof s->why_buf, "invalid length symbol %d", sym + 257);
            return infl_fail(s, s->why_buf);
        }
        size_t len = k_infl_length_base[sym] + infl_take(b, k_infl_length_extra[sym]);
        int dsym = infl_decode(b, &s->dist);
        if (dsym < 0 || dsym >= 30) {
            if (infl_truncated(b)) {
                return infl_fail(s, "unexpected end of data");
            }
            if (dsym < 0) {
                return infl_fail(s, "invalid distance code");
            }
            snprintf(s->why_buf, sizeof s->why_buf, "invalid distance symbol %d", dsym);
            return infl_fail(s, s->why_buf);
        }
        size_t dist = k_infl_dist_base[dsym] + infl_take(b, k_infl_dist_extra[dsym]);
        if (infl_truncated(b)) {
            return infl_fail(s, "unexpected end of data");
        }
        if (dist > o->size) {
            snprintf(s->why_buf, sizeof s->why_buf,
                     "distance %zu too far back (only %zu bytes decoded)", dist, o->size);
            return infl_fail(s, s->why_buf);
        }
        if (!infl_reserve(o, len)) {
            return infl_fail(s, NULL);
        }
        /* Copy the match; an overlapping one (dist < len) repeats the last dist bytes. */
        unsigned char *dst = o->data + o->size;
        const unsigned char *src = dst - dist;
        if (dist >= len) {
            memcpy(dst, src, len);
        } else if (dist == 1) {
            memset(dst, src[0], len);
        } else {
            for (size_t i = 0; i < len; i++) {
                dst[i] = src[i];
            }
        }
        o->size += len;
    }
}

/* Decodes one DEFLATE stream starting at s->in.next, appending to s->out. */
static int infl_stream(infl_state *s) {
    for (;;) {
        infl_refill(&s->in);
        unsigned final = infl_take(&s->in, 1);
        unsigned type = infl_take(&s->in, 2);
        if (infl_truncated(&s->in)) {
            return infl_fail(s, "unexpected end of data");
        }
        int ok;
        if (type == 0) {
            ok = infl_stored(s);
        } else if (type == 1) {
            infl_fixed_codes(s);
            ok = infl_codes(s);
        } else if (type == 2) {
            ok = infl_dynamic_codes(s) && infl_codes(s);
        } else {
            ok = infl_fail(s, "invalid block type 3");
        }
        if (!ok) {
            return 0;
        }
        if (final) {
            return 1;
        }
    }
}

/* Reports a failed run: out of memory when s->why is NULL, otherwise malformed data. */
static cnnc_status infl_report(const infl_state *s, const char *name, size_t base,
                               cnnc_error *err) {
    if (s->why == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory after decompressing %zu bytes", name,
                       s->out.size);
        return CNNC_ERR_ALLOC;
    }
    cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: corrupt deflate data near byte %zu: %s", name,
                   base + infl_position(&s->in), s->why);
    return CNNC_ERR_FORMAT;
}

cnnc_status cnnc_inflate(const unsigned char *in, size_t in_size, unsigned char **out,
                         size_t *out_size, size_t *consumed, cnnc_error *err) {
    *out = NULL;
    *out_size = 0;
    infl_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "deflate data: out of memory");
        return CNNC_ERR_ALLOC;
    }
    static const unsigned char empty[1] = {0};
    s->in.start = s->in.next = in != NULL ? in : empty;
    s->in.end = s->in.start + (in != NULL ? in_size : 0);
    if (!infl_stream(s)) {
        cnnc_status st = infl_report(s, "deflate data", 0, err);
        free(s->out.data);
        free(s);
        return st;
    }
    if (consumed != NULL) {
        *consumed = infl_position(&s->in);
    }
    *out = s->out.data != NULL ? s->out.data : malloc(1);
    *out_size = s->out.size;
    free(s);
    if (*out == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "deflate data: out of memory");
        return CNNC_ERR_ALLOC;
    }
    return CNNC_OK;
}

/* ---------------------------------------------------------------------------------------
 * gzip
 * ------------------------------------------------------------------------------------- */

/* gzip header flags. */
#define GZIP_FHCRC 0x02
#define GZIP_FEXTRA 0x04
#define GZIP_FNAME 0x08
#define GZIP_FCOMMENT 0x10
#define GZIP_RESERVED 0xE0

/* Parses the member header at in[pos..); on success stores the offset of the compressed
 * data in *data_pos. Returns NULL or the reason the header is bad. */
static const char *gzip_header(const unsigned char *in, size_t size, size_t pos, size_t *data_pos) {
    if (size - pos < 10) {
        return "truncated gzip header";
    }
    const unsigned char *h = in + pos;
    if (h[0] != 0x1F || h[1] != 0x8B) {
        return "not gzip data (bad magic)";
    }
    if (h[2] != 8) {
        return "unsupported gzip compression method (not deflate)";
    }
    unsigned flags = h[3];
    if (flags & GZIP_RESERVED) {
        return "reserved gzip header flags are set";
    }
    size_t p = pos + 10;
    if (flags & GZIP_FEXTRA) {
        if (size - p < 2) {
            return "truncated gzip header";
        }
        size_t xlen = cnnc_load_le16(in + p);
        p += 2;
        if (size - p < xlen) {
            return "truncated gzip header";
        }
        p += xlen;
    }
    /* The file name and the comment are NUL-terminated. */
    for (unsigned flag = GZIP_FNAME; flag <= GZIP_FCOMMENT; flag <<= 1) {
        if (flags & flag) {
            const unsigned char *nul = memchr(in + p, 0, size - p);
            if (nul == NULL) {
                return "truncated gzip header";
            }
            p = (size_t)(nul - in) + 1;
        }
    }
    if (flags & GZIP_FHCRC) {
        if (size - p < 2) {
            return "truncated gzip header";
        }
        if ((cnnc_crc32(0, in + pos, p - pos) & 0xFFFFu) != cnnc_load_le16(in + p)) {
            return "gzip header checksum mismatch";
        }
        p += 2;
    }
    *data_pos = p;
    return NULL;
}

/* Decompresses gzip data (one or more members); `name` starts the error messages. */
static cnnc_status gzip_decode(const char *name, const unsigned char *in, size_t size,
                               unsigned char **out, size_t *out_size, cnnc_error *err) {
    *out = NULL;
    *out_size = 0;
    infl_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory", name);
        return CNNC_ERR_ALLOC;
    }
    /* Reserve the size the last member's trailer announces (exact for a single member of
     * less than 4 GiB), but never more than the input could expand to. */
    if (size >= 18) {
        size_t hint = cnnc_load_le32(in + size - 4);
        size_t bound = size <= SIZE_MAX / INFL_MAX_RATIO ? size * INFL_MAX_RATIO : SIZE_MAX;
        if (!infl_reserve(&s->out, hint < bound ? hint : bound)) {
            s->why = NULL;
            cnnc_status st = infl_report(s, name, 0, err);
            free(s);
            return st;
        }
    }
    cnnc_status st = CNNC_OK;
    size_t pos = 0;
    for (int member = 0;; member++) {
        size_t data_pos = 0;
        const char *why = gzip_header(in, size, pos, &data_pos);
        if (why != NULL) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: %s at byte %zu", name, why, pos);
            st = CNNC_ERR_FORMAT;
            break;
        }
        size_t begin = s->out.size;
        s->in.start = s->in.next = in + data_pos;
        s->in.end = in + size;
        s->in.bits = 0;
        s->in.count = 0;
        s->in.overrun = 0;
        if (!infl_stream(s)) {
            st = infl_report(s, name, data_pos, err);
            break;
        }
        pos = data_pos + infl_position(&s->in);
        if (size - pos < 8) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: truncated gzip trailer at byte %zu", name,
                           pos);
            st = CNNC_ERR_FORMAT;
            break;
        }
        uint32_t want_crc = cnnc_load_le32(in + pos), want_size = cnnc_load_le32(in + pos + 4);
        size_t produced = s->out.size - begin;
        uint32_t crc = produced > 0 ? cnnc_crc32(0, s->out.data + begin, produced) : 0;
        if (crc != want_crc) {
            cnnc_error_set(err, CNNC_ERR_FORMAT,
                           "%s: crc-32 mismatch in gzip member %d: stored %08x, computed %08x",
                           name, member + 1, (unsigned)want_crc, (unsigned)crc);
            st = CNNC_ERR_FORMAT;
            break;
        }
        if ((uint32_t)produced != want_size) {
            cnnc_error_set(err, CNNC_ERR_FORMAT,
                           "%s: size mismatch in gzip member %d: stored %u, decompressed %zu", name,
                           member + 1, (unsigned)want_size, produced);
            st = CNNC_ERR_FORMAT;
            break;
        }
        pos += 8;
        /* Another member may follow; zero padding after the last one is ignored. */
        if (pos == size || (size - pos >= 2 && in[pos] == 0x1F && in[pos + 1] == 0x8B)) {
            if (pos == size) {
                break;
            }
            continue;
        }
        size_t z = pos;
        while (z < size && in[z] == 0) {
            z++;
        }
        if (z != size) {
            cnnc_error_set(err, CNNC_ERR_FORMAT,
                           "%s: unexpected data after gzip member at byte %zu", name, pos);
            st = CNNC_ERR_FORMAT;
        }
        break;
    }
    if (st != CNNC_OK) {
        free(s->out.data);
        free(s);
        return st;
    }
    *out = s->out.data != NULL ? s->out.data : malloc(1);
    *out_size = s->out.size;
    free(s);
    if (*out == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory", name);
        return CNNC_ERR_ALLOC;
    }
    return CNNC_OK;
}

cnnc_status cnnc_gunzip(const unsigned char *in, size_t in_size, unsigned char **out,
                        size_t *out_size, cnnc_error *err) {
    return gzip_decode("gzip data", in, in_size, out, out_size, err);
}

int cnnc_is_gzip(const unsigned char *data, size_t size) {
    return size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
}

cnnc_status cnnc_read_file_maybe_gzip(const char *path, unsigned char **data, size_t *size,
                                      cnnc_error *err) {
    *data = NULL;
    *size = 0;
    unsigned char *raw = NULL;
    size_t raw_size = 0;
    cnnc_status st = cnnc_internal_read_file(path, &raw, &raw_size, err);
    if (st != CNNC_OK) {
        return st;
    }
    if (!cnnc_is_gzip(raw, raw_size)) {
        *data = raw;
        *size = raw_size;
        return CNNC_OK;
    }
    st = gzip_decode(path, raw, raw_size, data, size, err);
    free(raw);
    return st;
}

void cnnc_file_free(unsigned char *data) {
    free(data);
}
