/*
 * test_data.c — tests of the runtime's training side: gzip/DEFLATE, data sets, shuffling,
 * batches and augmentation, learning-rate schedules, the progress line and the CSV log.
 *
 * Reference streams made by Python's zlib are embedded in tests/test_vectors.h (see
 * tests/make_test_vectors.py); other streams are made here by small stored-block and
 * fixed-Huffman encoders, so no tool is needed at run time. The real Fashion-MNIST files are
 * checked when /usr/share/datasets/fashion-mnist exists. The last line printed is
 * "runtime-data: N passed, M failed"; the exit status is non-zero when any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "test_vectors.h"

/* Where Debian's dataset-fashion-mnist package installs the data set. */
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

/* The text generator of make_test_vectors.py: words chosen by a 31-bit LCG. Returns a
 * malloc'ed buffer of n bytes. */
static unsigned char *pseudo_text(size_t n, uint32_t seed) {
    static const char *const words[16] = {"the",  "quick", "brown", "fox",    "jumps", "over",
                                          "lazy", "dog",   "cnnc",  "tensor", "conv",  "relu",
                                          "pool", "dense", "batch", "epoch"};
    unsigned char *out = malloc(n + 16);
    size_t total = 0;
    uint32_t x = seed;
    while (total < n) {
        x = (x * 1103515245u + 12345u) & 0x7FFFFFFFu;
        const char *w = words[(x >> 16) & 15];
        size_t len = strlen(w);
        memcpy(out + total, w, len);
        total += len;
        out[total++] = (x >> 8) % 10 == 0 ? '\n' : ' ';
        if (total >= n) {
            break;
        }
    }
    return out;
}

/* The text a vector holds. */
static unsigned char *vector_text(const gz_vector *v) {
    if (v->text_seed < 0) {
        unsigned char *t = malloc(v->text_length + 1);
        memcpy(t, "hello hello hello hello, cnnc!\n", v->text_length);
        return t;
    }
    return pseudo_text(v->text_length, (uint32_t)v->text_seed);
}

/* CRC-32 bit by bit, the definition the table-driven one must match. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
        }
    }
    return ~c;
}

/* A growable byte buffer with an LSB-first bit writer, as DEFLATE packs bits. */
typedef struct {
    unsigned char *data;
    size_t size, cap;
    uint64_t bits;
    int count;
} bytes_out;

static void out_byte(bytes_out *o, unsigned char b) {
    if (o->size == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 256;
        o->data = realloc(o->data, o->cap);
    }
    o->data[o->size++] = b;
}

static void out_bytes(bytes_out *o, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out_byte(o, ((const unsigned char *)p)[i]);
    }
}

static void out_le32(bytes_out *o, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        out_byte(o, (unsigned char)(v >> (8 * i)));
    }
}

/* Writes the low n bits of v, least significant first. */
static void put_bits(bytes_out *o, uint32_t v, int n) {
    o->bits |= (uint64_t)v << o->count;
    o->count += n;
    while (o->count >= 8) {
        out_byte(o, (unsigned char)o->bits);
        o->bits >>= 8;
        o->count -= 8;
    }
}

/* Writes a Huffman code of `len` bits, most significant bit first. */
static void put_code(bytes_out *o, uint32_t code, int len) {
    for (int i = len - 1; i >= 0; i--) {
        put_bits(o, (code >> i) & 1, 1);
    }
}

/* Pads to a byte boundary with zero bits. */
static void align_bits(bytes_out *o) {
    if (o->count > 0) {
        put_bits(o, 0, 8 - o->count);
    }
}

/* Encodes data as stored blocks of random sizes (some empty) into o. */
static void deflate_stored(bytes_out *o, const unsigned char *data, size_t n, cnnc_rng *r) {
    size_t pos = 0;
    for (;;) {
        size_t len = cnnc_rng_next_u64(r) % 5 == 0 ? 0 : cnnc_rng_next_u64(r) % 65536;
        if (len > n - pos) {
            len = n - pos;
        }
        int final = pos + len == n && cnnc_rng_next_u64(r) % 2 == 0;
        put_bits(o, (uint32_t) final, 1);
        put_bits(o, 0, 2);
        align_bits(o);
        out_byte(o, (unsigned char)len);
        out_byte(o, (unsigned char)(len >> 8));
        out_byte(o, (unsigned char)~len);
        out_byte(o, (unsigned char)(~len >> 8));
        out_bytes(o, data + pos, len);
        pos += len;
        if (final) {
            return;
        }
    }
}

/* Writes literal/length symbol s with the fixed code (RFC 1951 section 3.2.6). */
static void put_fixed_litlen(bytes_out *o, unsigned s) {
    if (s < 144) {
        put_code(o, 0x30 + s, 8);
    } else if (s < 256) {
        put_code(o, 0x190 + (s - 144), 9);
    } else if (s < 280) {
        put_code(o, s - 256, 7);
    } else {
        put_code(o, 0xC0 + (s - 280), 8);
    }
}

/* Base values and extra bits of length symbols 257..285 and distance symbols 0..29. */
static const unsigned k_len_base[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                        15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                        67, 83, 99, 115, 131, 163, 195, 227, 258};
static const unsigned k_len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const unsigned k_dist_base[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const unsigned k_dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                          6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* Writes a match of length len (3..258) at distance dist (1..32768) with fixed codes. */
static void put_fixed_match(bytes_out *o, unsigned len, unsigned dist) {
    int ls = 28;
    while (k_len_base[ls] > len) {
        ls--;
    }
    put_fixed_litlen(o, 257 + (unsigned)ls);
    put_bits(o, len - k_len_base[ls], (int)k_len_extra[ls]);
    int ds = 29;
    while (k_dist_base[ds] > dist) {
        ds--;
    }
    put_code(o, (uint32_t)ds, 5);
    put_bits(o, dist - k_dist_base[ds], (int)k_dist_extra[ds]);
}

/* Makes a random fixed-Huffman stream of several blocks holding about `target` bytes of
 * literals and matches (lengths 3..258, distances 1..32768, overlapping ones included);
 * *expect receives what it decodes to. */
static void deflate_fixed_random(bytes_out *o, bytes_out *expect, size_t target, cnnc_rng *r) {
    while (expect->size < target) {
        int final = expect->size + 20000 >= target;
        put_bits(o, (uint32_t) final, 1);
        put_bits(o, 1, 2);
        size_t block_end = expect->size + 20000;
        while (expect->size < block_end) {
            uint64_t choice = cnnc_rng_next_u64(r) % 8;
            if (choice < 3 || expect->size == 0) {
                unsigned char lit = (unsigned char)(cnnc_rng_next_u64(r) % 256);
                put_fixed_litlen(o, lit);
                out_byte(expect, lit);
                continue;
            }
            size_t max_dist = expect->size < 32768 ? expect->size : 32768;
            unsigned dist = choice == 3   ? 1 + (unsigned)(cnnc_rng_next_u64(r) % 4)
                            : choice == 4 ? (unsigned)max_dist
                                          : 1 + (unsigned)(cnnc_rng_next_u64(r) % max_dist);
            dist = dist > max_dist ? (unsigned)max_dist : dist;
            unsigned len = choice == 5 ? 258 : 3 + (unsigned)(cnnc_rng_next_u64(r) % 256);
            put_fixed_match(o, len, dist);
            for (unsigned i = 0; i < len; i++) {
                out_byte(expect, expect->data[expect->size - dist]);
            }
        }
        put_fixed_litlen(o, 256);
        if (final) {
            break;
        }
    }
    align_bits(o);
}

/* Wraps a raw DEFLATE stream in a gzip member for `text`; extra header fields by flags. */
static void gzip_member(bytes_out *o, const unsigned char *raw, size_t raw_size,
                        const unsigned char *text, size_t text_size, unsigned flags) {
    size_t start = o->size;
    const unsigned char head[10] = {0x1F, 0x8B, 8, (unsigned char)flags, 0, 0, 0, 0, 0, 3};
    out_bytes(o, head, 10);
    if (flags & 0x04) {
        out_byte(o, 3);
        out_byte(o, 0);
        out_bytes(o, "xyz", 3);
    }
    if (flags & 0x08) {
        out_bytes(o, "name.bin", 9);
    }
    if (flags & 0x10) {
        out_bytes(o, "a comment", 10);
    }
    if (flags & 0x02) {
        uint32_t crc = cnnc_crc32(0, o->data + start, o->size - start);
        out_byte(o, (unsigned char)crc);
        out_byte(o, (unsigned char)(crc >> 8));
    }
    out_bytes(o, raw, raw_size);
    out_le32(o, cnnc_crc32(0, text, text_size));
    out_le32(o, (uint32_t)text_size);
}

/* gzip of data made with stored blocks. */
static void gzip_stored(bytes_out *o, const unsigned char *data, size_t n, uint64_t seed) {
    bytes_out raw = {0};
    cnnc_rng r = {seed, 0};
    deflate_stored(&raw, data, n, &r);
    gzip_member(o, raw.data, raw.size, data, n, 0);
    free(raw.data);
}

/* Checks that gunzip of (in, n) gives exactly (want, want_n). */
#define CHECK_GUNZIP(in, n, want, want_n) check_gunzip((in), (n), (want), (want_n), __LINE__)

static void check_gunzip(const unsigned char *in, size_t n, const unsigned char *want,
                         size_t want_n, int line) {
    unsigned char *got = NULL;
    size_t got_n = 0;
    cnnc_error err = {0};
    cnnc_status st = cnnc_gunzip(in, n, &got, &got_n, &err);
    check_status(st, CNNC_OK, &err, "cnnc_gunzip", __FILE__, line);
    check(st == CNNC_OK && got_n == want_n && (want_n == 0 || memcmp(got, want, want_n) == 0),
          "gunzip output matches", __FILE__, line);
    cnnc_file_free(got);
}

/* Checks that gunzip fails with CNNC_ERR_FORMAT and a message containing `part`. */
#define CHECK_GUNZIP_FAILS(in, n, part) check_gunzip_fails((in), (n), (part), __LINE__)

static void check_gunzip_fails(const unsigned char *in, size_t n, const char *part, int line) {
    unsigned char sentinel = 0;
    unsigned char *got = &sentinel;
    size_t got_n = 7;
    cnnc_error err = {0};
    cnnc_status st = cnnc_gunzip(in, n, &got, &got_n, &err);
    check_status(st, CNNC_ERR_FORMAT, &err, "cnnc_gunzip", __FILE__, line);
    check(got == NULL && got_n == 0, "output cleared on failure", __FILE__, line);
    check_contains(err.message, part, __FILE__, line);
    if (st == CNNC_OK) {
        cnnc_file_free(got);
    }
}

/* Checks that inflate of a raw stream fails with CNNC_ERR_FORMAT mentioning `part`. */
#define CHECK_INFLATE_FAILS(in, n, part) check_inflate_fails((in), (n), (part), __LINE__)

static void check_inflate_fails(const unsigned char *in, size_t n, const char *part, int line) {
    unsigned char *got = NULL;
    size_t got_n = 0;
    cnnc_error err = {0};
    cnnc_status st = cnnc_inflate(in, n, &got, &got_n, NULL, &err);
    check_status(st, CNNC_ERR_FORMAT, &err, "cnnc_inflate", __FILE__, line);
    check_contains(err.message, part, __FILE__, line);
    if (st == CNNC_OK) {
        cnnc_file_free(got);
    }
}

/* ---------------------------------------------------------------------------------------
 * CRC-32 and DEFLATE
 * ------------------------------------------------------------------------------------- */

static void test_crc32(void) {
    CHECK(cnnc_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(cnnc_crc32(0, "", 0) == 0);
    CHECK(cnnc_crc32(0, "a", 1) == 0xE8B7BE43u);
    /* Random buffers of every length up to 40 and a long one, against the bitwise
     * definition; pieces continue each other. */
    unsigned char buf[5000];
    cnnc_rng r = {11, 0};
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (unsigned char)cnnc_rng_next_u64(&r);
    }
    int same = 1;
    for (size_t n = 0; n <= 40; n++) {
        same &= cnnc_crc32(0, buf + 3, n) == crc32_bitwise(buf + 3, n);
    }
    CHECK(same);
    CHECK(cnnc_crc32(0, buf, sizeof buf) == crc32_bitwise(buf, sizeof buf));
    CHECK(cnnc_crc32(cnnc_crc32(0, buf, 1234), buf + 1234, sizeof buf - 1234) ==
          cnnc_crc32(0, buf, sizeof buf));
}

static void test_gzip_vectors(void) {
    size_t count = sizeof k_gz_vectors / sizeof k_gz_vectors[0];
    int seen_types[3] = {0, 0, 0};
    for (size_t i = 0; i < count; i++) {
        const gz_vector *v = &k_gz_vectors[i];
        unsigned char *text = vector_text(v);
        /* The vectors cover every block type, as the generator asserted. */
        CHECK(((v->bytes[v->data_offset] >> 1) & 3) == v->block_type);
        seen_types[v->block_type] = 1;
        CHECK(cnnc_crc32(0, text, v->text_length) == v->crc);
        CHECK_GUNZIP(v->bytes, v->size, text, v->text_length);
        CHECK(cnnc_is_gzip(v->bytes, v->size));
        /* The DEFLATE data alone decodes too and reports where it ends (before the 8-byte
         * trailer). */
        unsigned char *got = NULL;
        size_t got_n = 0, used = 0;
        cnnc_error err = {0};
        CHECK_STATUS(cnnc_inflate(v->bytes + v->data_offset, v->size - v->data_offset, &got, &got_n,
                                  &used, &err),
                     CNNC_OK, &err);
        CHECK(got != NULL && got_n == v->text_length &&
              (got_n == 0 || memcmp(got, text, got_n) == 0));
        CHECK(used == v->size - v->data_offset - 8);
        cnnc_file_free(got);
        free(text);
    }
    CHECK(seen_types[0] && seen_types[1] && seen_types[2]);

    /* The raw level-9 stream followed by unrelated bytes. */
    unsigned char *text = pseudo_text(6000, 2);
    unsigned char raw[sizeof k_raw_dynamic9 + 5];
    memcpy(raw, k_raw_dynamic9, sizeof k_raw_dynamic9);
    memcpy(raw + sizeof k_raw_dynamic9, "tail!", 5);
    unsigned char *got = NULL;
    size_t got_n = 0, used = 0;
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_inflate(raw, sizeof raw, &got, &got_n, &used, &err), CNNC_OK, &err);
    CHECK(got_n == 6000 && memcmp(got, text, 6000) == 0);
    CHECK(used == sizeof k_raw_dynamic9);
    cnnc_file_free(got);
    free(text);
}

static void test_gzip_members_and_headers(void) {
    const gz_vector *a = &k_gz_vectors[1], *b = &k_gz_vectors[2];
    unsigned char *ta = vector_text(a), *tb = vector_text(b);
    size_t both_n = a->text_length + b->text_length;
    unsigned char *both = malloc(both_n);
    memcpy(both, ta, a->text_length);
    memcpy(both + a->text_length, tb, b->text_length);

    /* Two members decode to the concatenation; zero padding after them is ignored. */
    bytes_out two = {0};
    out_bytes(&two, a->bytes, a->size);
    out_bytes(&two, b->bytes, b->size);
    CHECK_GUNZIP(two.data, two.size, both, both_n);
    for (int i = 0; i < 7; i++) {
        out_byte(&two, 0);
    }
    CHECK_GUNZIP(two.data, two.size, both, both_n);
    out_byte(&two, 'x');
    CHECK_GUNZIP_FAILS(two.data, two.size, "unexpected data after gzip member at byte");
    two.size -= 8;
    out_bytes(&two, "\x1f\x8b\x08", 3);
    CHECK_GUNZIP_FAILS(two.data, two.size, "truncated gzip header");

    /* Optional header fields, with a correct and a wrong header CRC. */
    const unsigned char *raw = b->bytes + b->data_offset;
    size_t raw_n = b->size - b->data_offset - 8;
    for (unsigned flags = 0; flags < 32; flags += 2) {
        bytes_out m = {0};
        gzip_member(&m, raw, raw_n, tb, b->text_length, flags);
        CHECK_GUNZIP(m.data, m.size, tb, b->text_length);
        if (flags & 0x02) {
            size_t hcrc_at =
                10 + (flags & 0x04 ? 5 : 0) + (flags & 0x08 ? 9 : 0) + (flags & 0x10 ? 10 : 0);
            m.data[hcrc_at] ^= 1;
            CHECK_GUNZIP_FAILS(m.data, m.size, "gzip header checksum mismatch");
        }
        free(m.data);
    }
    bytes_out m = {0};
    gzip_member(&m, raw, raw_n, tb, b->text_length, 0x08);
    m.data[3] |= 0x20;
    CHECK_GUNZIP_FAILS(m.data, m.size, "reserved gzip header flags are set at byte 0");
    m.data[3] = 0x08;
    m.data[2] = 7;
    CHECK_GUNZIP_FAILS(m.data, m.size, "unsupported gzip compression method");
    m.data[2] = 8;
    m.data[0] = 0x1E;
    CHECK_GUNZIP_FAILS(m.data, m.size, "not gzip data (bad magic)");
    m.data[0] = 0x1F;
    /* An unterminated file name. */
    CHECK_GUNZIP_FAILS(m.data, 15, "truncated gzip header");
    /* Trailer: CRC and size. */
    m.data[m.size - 8] ^= 0x40;
    CHECK_GUNZIP_FAILS(m.data, m.size, "crc-32 mismatch in gzip member 1: stored");
    m.data[m.size - 8] ^= 0x40;
    m.data[m.size - 4] ^= 0x01;
    CHECK_GUNZIP_FAILS(m.data, m.size,
                       "size mismatch in gzip member 1: stored 6001, "
                       "decompressed 6000");
    m.data[m.size - 4] ^= 0x01;
    CHECK_GUNZIP(m.data, m.size, tb, b->text_length);
    CHECK_GUNZIP_FAILS(m.data, m.size - 3, "truncated gzip trailer");
    CHECK_GUNZIP_FAILS((const unsigned char *)"", 0, "truncated gzip header at byte 0");
    CHECK(!cnnc_is_gzip((const unsigned char *)"\x1f", 1));
    free(m.data);
    free(two.data);
    free(both);
    free(ta);
    free(tb);
}

static void test_inflate_round_trips(void) {
    /* Stored blocks of random sizes (including empty ones), about 300 KB. */
    cnnc_rng r = {2024, 0};
    size_t n = 300000;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++) {
        data[i] = (unsigned char)cnnc_rng_next_u64(&r);
    }
    bytes_out gz = {0};
    gzip_stored(&gz, data, n, 5);
    CHECK_GUNZIP(gz.data, gz.size, data, n);
    free(gz.data);

    /* Random fixed-Huffman streams: every length and distance code, overlapping copies,
     * the longest distance. */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        bytes_out raw = {0}, expect = {0};
        cnnc_rng rr = {seed, 0};
        deflate_fixed_random(&raw, &expect, 100000, &rr);
        unsigned char *got = NULL;
        size_t got_n = 0, used = 0;
        cnnc_error err = {0};
        CHECK_STATUS(cnnc_inflate(raw.data, raw.size, &got, &got_n, &used, &err), CNNC_OK, &err);
        CHECK(got_n == expect.size && memcmp(got, expect.data, got_n) == 0);
        CHECK(used == raw.size);
        cnnc_file_free(got);
        bytes_out member = {0};
        gzip_member(&member, raw.data, raw.size, expect.data, expect.size, 0);
        CHECK_GUNZIP(member.data, member.size, expect.data, expect.size);
        free(member.data);
        free(raw.data);
        free(expect.data);
    }
    free(data);
}

static void test_inflate_errors(void) {
    /* Block type 3. */
    CHECK_INFLATE_FAILS((const unsigned char *)"\x07", 1, "invalid block type 3");
    /* Stored: length and complement disagree; data shorter than the length. */
    CHECK_INFLATE_FAILS((const unsigned char *)"\x01\x05\x00\x00\x00", 5,
                        "stored block length 5 does not match its complement 0");
    CHECK_INFLATE_FAILS((const unsigned char *)"\x01\x05\x00\xfa\xff"
                                               "ab",
                        7, "unexpected end of data in a stored block");
    CHECK_INFLATE_FAILS((const unsigned char *)"\x01\x05", 2, "stored block header");
    CHECK_INFLATE_FAILS((const unsigned char *)"", 0, "unexpected end of data");
    /* A non-final block with nothing after it. */
    CHECK_INFLATE_FAILS((const unsigned char *)"\x00\x00\x00\xff\xff", 5, "unexpected end of data");

    /* Fixed codes: a match before any output, length symbol 286, distance symbol 30. */
    bytes_out o = {0};
    put_bits(&o, 1, 1);
    put_bits(&o, 1, 2);
    put_fixed_match(&o, 3, 1);
    put_fixed_litlen(&o, 256);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "distance 1 too far back (only 0 bytes decoded)");
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 1, 2);
    put_fixed_litlen(&o, 'a');
    put_fixed_litlen(&o, 286);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "invalid length symbol 286");
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 1, 2);
    put_fixed_litlen(&o, 'a');
    put_fixed_litlen(&o, 257);
    put_code(&o, 30, 5);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "invalid distance symbol 30");
    /* No end-of-block code: the stream runs out. */
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 1, 2);
    put_fixed_litlen(&o, 'a');
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "unexpected end of data");

    /* Dynamic headers. Code-length code lengths are sent in the order 16, 17, 18, 0, 8, 7,
     * 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15. */
    /* HLIT = 30: 287 literal/length codes. */
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 2, 2);
    put_bits(&o, 30, 5);
    put_bits(&o, 0, 5);
    put_bits(&o, 0, 4);
    put_bits(&o, 0, 32);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "too many literal/length codes (287)");
    /* HDIST = 30: 31 distance codes. */
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 2, 2);
    put_bits(&o, 0, 5);
    put_bits(&o, 30, 5);
    put_bits(&o, 0, 4);
    put_bits(&o, 0, 32);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "too many distance codes (31)");
    /* Three code-length codes of length 1: over-subscribed. */
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 2, 2);
    put_bits(&o, 0, 5);
    put_bits(&o, 0, 5);
    put_bits(&o, 0, 4);
    put_bits(&o, 1, 3);
    put_bits(&o, 1, 3);
    put_bits(&o, 1, 3);
    put_bits(&o, 0, 3);
    put_bits(&o, 0, 16);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "code-length code: over-subscribed huffman code");
    /* One code-length code of length 2: incomplete. */
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 2, 2);
    put_bits(&o, 0, 5);
    put_bits(&o, 0, 5);
    put_bits(&o, 0, 4);
    put_bits(&o, 2, 3);
    put_bits(&o, 0, 9);
    put_bits(&o, 0, 16);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "code-length code: incomplete huffman code");

    /* Code-length code {0: length 1, 18: length 1} (HCLEN 4 sends 16, 17, 18, 0): code 0
     * is symbol 0, code 1 symbol 18. Then 18 with 7 extra bits repeats 11..138 zeros. */
    for (int variant = 0; variant < 3; variant++) {
        o.size = 0;
        put_bits(&o, 1, 1);
        put_bits(&o, 2, 2);
        put_bits(&o, 0, 5); /* 257 literal/length codes */
        put_bits(&o, 0, 5); /* 1 distance code: 258 lengths in all */
        put_bits(&o, 0, 4);
        put_bits(&o, 0, 3); /* 16 */
        put_bits(&o, 0, 3); /* 17 */
        put_bits(&o, 1, 3); /* 18 */
        put_bits(&o, 1, 3); /* 0 */
        if (variant == 0) {
            /* 138 + 120 zeros: no end-of-block code. */
            put_code(&o, 1, 1);
            put_bits(&o, 127, 7);
            put_code(&o, 1, 1);
            put_bits(&o, 109, 7);
        } else if (variant == 1) {
            /* 138 + 138 zeros: more than 258. */
            put_code(&o, 1, 1);
            put_bits(&o, 127, 7);
            put_code(&o, 1, 1);
            put_bits(&o, 127, 7);
        } else {
            /* The stream ends inside the code lengths. */
            put_code(&o, 1, 1);
            put_bits(&o, 127, 7);
        }
        put_bits(&o, 0, 8);
        align_bits(&o);
        const char *want[3] = {"missing end-of-block code",
                               "code lengths overrun the 258 literal/length and distance codes",
                               "unexpected end of data"};
        CHECK_INFLATE_FAILS(o.data, variant == 2 ? o.size - 1 : o.size, want[variant]);
    }
    /* Code-length code {1: length 1, 16: length 1} (HCLEN 18); code 1 is symbol 16,
     * a repeat with nothing before it. */
    o.size = 0;
    put_bits(&o, 1, 1);
    put_bits(&o, 2, 2);
    put_bits(&o, 0, 5);
    put_bits(&o, 0, 5);
    put_bits(&o, 14, 4);
    for (int i = 0; i < 18; i++) {
        put_bits(&o, i == 0 || i == 17 ? 1 : 0, 3);
    }
    put_code(&o, 1, 1);
    put_bits(&o, 0, 16);
    align_bits(&o);
    CHECK_INFLATE_FAILS(o.data, o.size, "length repeat (code 16) without a previous length");
    free(o.data);
}

/* Every truncation of every vector fails with CNNC_ERR_FORMAT, and every single-bit flip
 * either fails with CNNC_ERR_FORMAT or (in fields that carry no data) decodes correctly. */
static void test_gzip_corruption(void) {
    size_t count = sizeof k_gz_vectors / sizeof k_gz_vectors[0];
    for (size_t i = 0; i < count; i++) {
        const gz_vector *v = &k_gz_vectors[i];
        unsigned char *text = vector_text(v);
        int truncations_fail = 1;
        for (size_t n = 0; n < v->size; n++) {
            unsigned char *got = NULL;
            size_t got_n = 0;
            cnnc_error err = {0};
            /* A copy of exactly n bytes, so ASan sees any read past it. */
            unsigned char *part = malloc(n > 0 ? n : 1);
            memcpy(part, v->bytes, n);
            cnnc_status st = cnnc_gunzip(part, n, &got, &got_n, &err);
            truncations_fail &= st == CNNC_ERR_FORMAT && got == NULL;
            cnnc_file_free(got);
            free(part);
        }
        CHECK(truncations_fail);

        int flips_ok = 1, flips_failed = 0;
        unsigned char *copy = malloc(v->size);
        for (size_t bit = 0; bit < 8 * v->size; bit++) {
            memcpy(copy, v->bytes, v->size);
            copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            unsigned char *got = NULL;
            size_t got_n = 0;
            cnnc_error err = {0};
            cnnc_status st = cnnc_gunzip(copy, v->size, &got, &got_n, &err);
            if (st == CNNC_OK) {
                flips_ok &=
                    got_n == v->text_length && (got_n == 0 || memcmp(got, text, got_n) == 0);
            } else {
                flips_ok &= st == CNNC_ERR_FORMAT && got == NULL;
                flips_failed++;
            }
            cnnc_file_free(got);
        }
        CHECK(flips_ok);
        /* Only MTIME, XFL and OS (6 bytes), the FTEXT flag, the file name and padding bits
         * may change without notice. */
        CHECK(flips_failed >= (int)(8 * v->size) - 64 - 8 * (int)(v->data_offset - 10));
        free(copy);
        free(text);
    }

    /* Random bytes as raw DEFLATE, and random bytes after a dynamic block header: every
     * run ends with OK or CNNC_ERR_FORMAT. */
    cnnc_rng r = {77, 0};
    int ends_well = 1;
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = 1 + cnnc_rng_next_u64(&r) % 300;
        unsigned char *buf = malloc(n);
        for (size_t i = 0; i < n; i++) {
            buf[i] = (unsigned char)cnnc_rng_next_u64(&r);
        }
        if (trial % 2 == 0) {
            buf[0] = (unsigned char)((buf[0] & ~7u) | 5u); /* final, dynamic */
        }
        unsigned char *got = NULL;
        size_t got_n = 0;
        cnnc_status st = cnnc_inflate(buf, n, &got, &got_n, NULL, NULL);
        ends_well &= st == CNNC_OK || (st == CNNC_ERR_FORMAT && got == NULL);
        cnnc_file_free(got);
        free(buf);
    }
    CHECK(ends_well);
}

static void test_read_file_maybe_gzip(void) {
    const gz_vector *v = &k_gz_vectors[2];
    unsigned char *text = vector_text(v);
    TMP_PATH(gz_path, "text.gz");
    TMP_PATH(plain_path, "text.txt");
    write_bytes(gz_path, v->bytes, v->size);
    write_bytes(plain_path, text, v->text_length);
    unsigned char *data = NULL;
    size_t size = 0;
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_read_file_maybe_gzip(gz_path, &data, &size, &err), CNNC_OK, &err);
    CHECK(size == v->text_length && memcmp(data, text, size) == 0);
    cnnc_file_free(data);
    CHECK_STATUS(cnnc_read_file_maybe_gzip(plain_path, &data, &size, &err), CNNC_OK, &err);
    CHECK(size == v->text_length && memcmp(data, text, size) == 0);
    cnnc_file_free(data);
    /* A damaged file names itself. */
    unsigned char *bad = malloc(v->size);
    memcpy(bad, v->bytes, v->size);
    bad[v->size / 2] ^= 0x10;
    write_bytes(gz_path, bad, v->size);
    CHECK_STATUS(cnnc_read_file_maybe_gzip(gz_path, &data, &size, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, gz_path);
    CHECK(data == NULL && size == 0);
    TMP_PATH(missing, "missing.gz");
    CHECK_STATUS(cnnc_read_file_maybe_gzip(missing, &data, &size, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "missing.gz");
    free(bad);
    free(text);
}

/* ---------------------------------------------------------------------------------------
 * Data sets
 * ------------------------------------------------------------------------------------- */

/* Writes an IDX file of element type `type` with dims[0..ndim) and `data`, gzipped (with
 * stored blocks) when gz is set. */
static void write_idx(const char *path, unsigned char type, int ndim, const uint32_t *dims,
                      const unsigned char *data, size_t n, int gz) {
    bytes_out file = {0};
    const unsigned char magic[4] = {0, 0, type, (unsigned char)ndim};
    out_bytes(&file, magic, 4);
    for (int i = 0; i < ndim; i++) {
        for (int k = 3; k >= 0; k--) {
            out_byte(&file, (unsigned char)(dims[i] >> (8 * k)));
        }
    }
    out_bytes(&file, data, n);
    if (gz) {
        bytes_out packed = {0};
        gzip_stored(&packed, file.data, file.size, n);
        write_bytes(path, packed.data, packed.size);
        free(packed.data);
    } else {
        write_bytes(path, file.data, file.size);
    }
    free(file.data);
}

/* Makes directory g_dir/name and returns its path in buf. */
static const char *make_dir(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", g_dir, name);
    mkdir(buf, 0700);
    return buf;
}

static void test_idx(void) {
    /* 5 images of 3x4 and their labels, plain and gzipped. */
    unsigned char pixels[60], labels[5] = {3, 0, 7, 7, 1};
    for (int i = 0; i < 60; i++) {
        pixels[i] = (unsigned char)(i * 17 % 256);
    }
    const uint32_t image_dims[3] = {5, 3, 4}, label_dims[1] = {5};
    TMP_PATH(images_plain, "images.idx3");
    TMP_PATH(labels_plain, "labels.idx1");
    TMP_PATH(images_gz, "images.idx3.gz");
    TMP_PATH(labels_gz, "labels.idx1.gz");
    write_idx(images_plain, 8, 3, image_dims, pixels, 60, 0);
    write_idx(labels_plain, 8, 1, label_dims, labels, 5, 0);
    write_idx(images_gz, 8, 3, image_dims, pixels, 60, 1);
    write_idx(labels_gz, 8, 1, label_dims, labels, 5, 1);
    for (int gz = 0; gz < 2; gz++) {
        cnnc_dataset ds;
        cnnc_error err = {0};
        CHECK_STATUS(cnnc_dataset_load_idx(gz ? images_gz : images_plain,
                                           gz ? labels_plain : labels_gz, &ds, &err),
                     CNNC_OK, &err);
        CHECK(ds.count == 5 && ds.channels == 1 && ds.height == 3 && ds.width == 4);
        CHECK(ds.classes == 8);
        CHECK(cnnc_dataset_sample_size(&ds) == 12);
        CHECK(((uintptr_t)ds.images % 64) == 0);
        int pixels_ok = 1, labels_ok = 1;
        for (int i = 0; i < 60; i++) {
            pixels_ok &= ds.images[i] == (float)pixels[i] / 255.0f;
        }
        for (int i = 0; i < 5; i++) {
            labels_ok &= ds.labels[i] == labels[i];
        }
        CHECK(pixels_ok);
        CHECK(labels_ok);
        CHECK(ds.images[0] == 0.0f);
        cnnc_dataset_free(&ds);
        CHECK(ds.images == NULL && ds.labels == NULL && ds.count == 0);
    }
    cnnc_dataset_free(NULL);

    /* Errors name the file and the numbers. */
    cnnc_dataset ds;
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_dataset_load_idx(labels_plain, labels_plain, &ds, &err), CNNC_ERR_FORMAT,
                 &err);
    CHECK_CONTAINS(err.message, "labels.idx1: expected an IDX file with 3 dimensions (magic "
                                "0x00000803), got 1 (magic 0x00000801)");
    CHECK(ds.images == NULL && ds.count == 0);
    CHECK_STATUS(cnnc_dataset_load_idx(images_plain, images_plain, &ds, &err), CNNC_ERR_FORMAT,
                 &err);
    CHECK_CONTAINS(err.message, "expected an IDX file with 1 dimensions (magic 0x00000801)");
    TMP_PATH(other, "other.idx");
    const uint32_t four_labels[1] = {4};
    write_idx(other, 8, 1, four_labels, labels, 4, 0);
    CHECK_STATUS(cnnc_dataset_load_idx(images_plain, other, &ds, &err), CNNC_ERR_SHAPE, &err);
    CHECK_CONTAINS(err.message, "images.idx3 holds 5 images but");
    CHECK_CONTAINS(err.message, "other.idx holds 4 labels");
    write_idx(other, 8, 3, image_dims, pixels, 59, 0);
    CHECK_STATUS(cnnc_dataset_load_idx(other, labels_plain, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "other.idx: IDX data of shape [5,3,4] needs 60 bytes after the "
                                "16-byte header, the file has 59");
    write_idx(other, 8, 3, image_dims, pixels, 60, 0);
    write_bytes(other, "\x00\x00\x08\x03\x00\x00", 6);
    CHECK_STATUS(cnnc_dataset_load_idx(other, labels_plain, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "truncated IDX header: expected 16 bytes, got 6");
    write_bytes(other, "\x00\x00\x08", 3);
    CHECK_STATUS(cnnc_dataset_load_idx(other, labels_plain, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "too short for an IDX header");
    write_idx(other, 0x0D, 3, image_dims, pixels, 60, 0);
    CHECK_STATUS(cnnc_dataset_load_idx(other, labels_plain, &ds, &err), CNNC_ERR_DTYPE, &err);
    CHECK_CONTAINS(err.message, "expected IDX element type 0x08 (unsigned byte), got 0x0d");
    write_bytes(other, "\x01\x00\x08\x03", 4);
    CHECK_STATUS(cnnc_dataset_load_idx(other, labels_plain, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "not an IDX file (magic 0x01000803)");
    const uint32_t zero_dims[3] = {0, 3, 4};
    write_idx(other, 8, 3, zero_dims, pixels, 0, 0);
    CHECK_STATUS(cnnc_dataset_load_idx(other, labels_plain, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "IDX dimension 0 is 0");
    TMP_PATH(missing, "missing.idx");
    CHECK_STATUS(cnnc_dataset_load_idx(missing, labels_plain, &ds, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "missing.idx");
}

static void test_fashion_mnist_layout(void) {
    /* A directory as Debian lays it out, gzipped training files and plain test files. */
    char dir[512];
    make_dir(dir, sizeof dir, "fashion");
    unsigned char pixels[2 * 28 * 28], labels[2] = {9, 0};
    for (size_t i = 0; i < sizeof pixels; i++) {
        pixels[i] = (unsigned char)i;
    }
    const uint32_t image_dims[3] = {2, 28, 28}, label_dims[1] = {2};
    char path[600];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(path, 8, 3, image_dims, pixels, sizeof pixels, 1);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(path, 8, 1, label_dims, labels, 2, 1);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    write_idx(path, 8, 3, image_dims, pixels, sizeof pixels, 0);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx(path, 8, 1, label_dims, labels, 2, 0);
    for (int train = 0; train < 2; train++) {
        cnnc_dataset ds;
        cnnc_error err = {0};
        CHECK_STATUS(cnnc_dataset_load_fashion_mnist(dir, train, &ds, &err), CNNC_OK, &err);
        CHECK(ds.count == 2 && ds.channels == 1 && ds.height == 28 && ds.width == 28);
        CHECK(ds.classes == 10 && ds.labels[0] == 9 && ds.labels[1] == 0);
        CHECK(ds.images[785] == 17.0f / 255.0f);
        cnnc_dataset_free(&ds);
    }
    /* A label of 10 is no Fashion-MNIST class. */
    labels[1] = 10;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    write_idx(path, 8, 1, label_dims, labels, 2, 0);
    cnnc_dataset ds;
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_dataset_load_fashion_mnist(dir, 0, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "label 10 of sample 1 is outside [0, 10)");
    CHECK(ds.images == NULL);
    /* Missing files name both names tried. */
    char empty[512];
    make_dir(empty, sizeof empty, "empty");
    CHECK_STATUS(cnnc_dataset_load_fashion_mnist(empty, 1, &ds, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "train-images-idx3-ubyte.gz or ");
}

static void test_fashion_mnist_real(void) {
    struct stat info;
    if (stat(FASHION_MNIST_DIR, &info) != 0) {
        printf("note: %s not found, real Fashion-MNIST not checked\n", FASHION_MNIST_DIR);
        return;
    }
    /* Counts, the first labels and the pixel sums were read with Python's gzip module. */
    static const int32_t first_train[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const int32_t first_test[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    const long long pixel_sums[2] = {573469082LL, 3431114169LL};
    for (int train = 0; train < 2; train++) {
        cnnc_dataset ds;
        cnnc_error err = {0};
        CHECK_STATUS(cnnc_dataset_load_fashion_mnist(FASHION_MNIST_DIR, train, &ds, &err), CNNC_OK,
                     &err);
        if (ds.images == NULL) {
            continue;
        }
        CHECK(ds.count == (train ? 60000 : 10000));
        CHECK(ds.channels == 1 && ds.height == 28 && ds.width == 28 && ds.classes == 10);
        CHECK(memcmp(ds.labels, train ? first_train : first_test, sizeof first_train) == 0);
        long long sum = 0;
        size_t values = (size_t)ds.count * cnnc_dataset_sample_size(&ds);
        for (size_t i = 0; i < values; i++) {
            sum += (long long)lrintf(ds.images[i] * 255.0f);
        }
        CHECK(sum == pixel_sums[train]);
        int counts[10] = {0};
        for (int64_t i = 0; i < ds.count; i++) {
            counts[ds.labels[i]]++;
        }
        CHECK(counts[0] == (train ? 6000 : 1000) && counts[9] == (train ? 6000 : 1000));
        if (train) {
            /* The well-known statistics of the training set. */
            float mean = 0, std = 0;
            CHECK_STATUS(cnnc_dataset_channel_stats(&ds, &mean, &std, &err), CNNC_OK, &err);
            CHECK(fabs(mean - 3431114169.0 / 255.0 / 47040000.0) < 1e-6);
            CHECK(fabs(std - 0.3530) < 5e-4);
        }
        cnnc_dataset_free(&ds);
    }
}

/* Writes a CIFAR-10 file of `records` records whose label is (first + r) % 10 and pixel k
 * of record r is (r * 7 + k) % 256. */
static void write_cifar(const char *path, int records, int first) {
    unsigned char *buf = malloc((size_t)records * 3073);
    for (int r = 0; r < records; r++) {
        unsigned char *rec = buf + (size_t)r * 3073;
        rec[0] = (unsigned char)((first + r) % 10);
        for (int k = 0; k < 3072; k++) {
            rec[1 + k] = (unsigned char)((r * 7 + k) % 256);
        }
    }
    write_bytes(path, buf, (size_t)records * 3073);
    free(buf);
}

static void test_cifar10(void) {
    cnnc_dataset ds;
    cnnc_error err = {0};
    /* One file. */
    TMP_PATH(one, "one_batch.bin");
    write_cifar(one, 3, 4);
    CHECK_STATUS(cnnc_dataset_load_cifar10(one, 1, &ds, &err), CNNC_OK, &err);
    CHECK(ds.count == 3 && ds.channels == 3 && ds.height == 32 && ds.width == 32);
    CHECK(ds.classes == 10 && ds.labels[0] == 4 && ds.labels[2] == 6);
    /* Pixel k of record 2: red plane first, row-major. */
    CHECK(ds.images[2 * 3072 + 0] == 14.0f / 255.0f);
    CHECK(ds.images[2 * 3072 + 1024 + 33] == (float)((14 + 1024 + 33) % 256) / 255.0f);
    cnnc_dataset_free(&ds);

    /* A directory with the batches in cifar-10-batches-bin. */
    char dir[512], sub[600], path[700];
    make_dir(dir, sizeof dir, "cifar");
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    mkdir(sub, 0700);
    for (int i = 1; i <= 5; i++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", sub, i);
        write_cifar(path, 2, i);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", sub);
    write_cifar(path, 4, 0);
    CHECK_STATUS(cnnc_dataset_load_cifar10(dir, 1, &ds, &err), CNNC_OK, &err);
    CHECK(ds.count == 10);
    CHECK(ds.labels[0] == 1 && ds.labels[1] == 2 && ds.labels[2] == 2 && ds.labels[9] == 6);
    cnnc_dataset_free(&ds);
    CHECK_STATUS(cnnc_dataset_load_cifar10(sub, 0, &ds, &err), CNNC_OK, &err);
    CHECK(ds.count == 4 && ds.labels[3] == 3);
    cnnc_dataset_free(&ds);

    /* A gzipped file. */
    unsigned char *raw = NULL;
    size_t raw_n = 0;
    snprintf(path, sizeof path, "%s/test_batch.bin", sub);
    raw = read_bytes(path, &raw_n);
    bytes_out gz = {0};
    gzip_stored(&gz, raw, raw_n, 9);
    TMP_PATH(gz_path, "test_batch.bin.gz");
    write_bytes(gz_path, gz.data, gz.size);
    CHECK_STATUS(cnnc_dataset_load_cifar10(gz_path, 0, &ds, &err), CNNC_OK, &err);
    CHECK(ds.count == 4 && memcmp(ds.labels, (const int32_t[]){0, 1, 2, 3}, 16) == 0);
    cnnc_dataset_free(&ds);
    free(gz.data);

    /* Errors: a size that is not a whole number of records, a label of 10, a missing
     * batch. */
    write_bytes(one, raw, raw_n - 1);
    CHECK_STATUS(cnnc_dataset_load_cifar10(one, 1, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "size 12291 is not a positive multiple of the 3073-byte "
                                "CIFAR-10 record");
    raw[3073] = 10;
    write_bytes(one, raw, raw_n);
    CHECK_STATUS(cnnc_dataset_load_cifar10(one, 1, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "record 1 has label 10, expected 0 to 9");
    CHECK(ds.images == NULL && ds.count == 0);
    free(raw);
    snprintf(path, sizeof path, "%s/data_batch_4.bin", sub);
    remove(path);
    CHECK_STATUS(cnnc_dataset_load_cifar10(dir, 1, &ds, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "data_batch_4.bin");
}

/* Writes a '<i8' .npy file. */
static void write_npy_i64(const char *path, const int64_t *values, int ndim, const int64_t *shape) {
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i],
                      i + 1 < ndim ? " " : "");
        count *= (size_t)shape[i];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t header = 10 + (size_t)n + 1;
    size_t padded = (header + 63) / 64 * 64;
    bytes_out o = {0};
    out_bytes(&o, "\x93NUMPY\x01\x00", 8);
    out_byte(&o, (unsigned char)(padded - 10));
    out_byte(&o, (unsigned char)((padded - 10) >> 8));
    out_bytes(&o, dict, (size_t)n);
    while (o.size < padded - 1) {
        out_byte(&o, ' ');
    }
    out_byte(&o, '\n');
    for (size_t i = 0; i < count; i++) {
        for (int k = 0; k < 8; k++) {
            out_byte(&o, (unsigned char)((uint64_t)values[i] >> (8 * k)));
        }
    }
    write_bytes(path, o.data, o.size);
    free(o.data);
}

static void test_npy_dataset(void) {
    TMP_PATH(x_path, "x.npy");
    TMP_PATH(y_path, "y.npy");
    float x[4 * 2 * 3 * 5];
    for (int i = 0; i < 120; i++) {
        x[i] = (float)i * 0.5f - 3.0f;
    }
    int64_t y[4] = {2, 0, 4, 1};
    const int64_t y_shape[1] = {4}, y_column[2] = {4, 1};
    cnnc_error err = {0};
    cnnc_dataset ds;

    /* (N, C, H, W), (N, H, W) and (N, F). */
    const int64_t shapes[3][4] = {{4, 2, 3, 5}, {4, 6, 5, 0}, {4, 30, 0, 0}};
    const int ndims[3] = {4, 3, 2};
    const int want_chw[3][3] = {{2, 3, 5}, {1, 6, 5}, {30, 1, 1}};
    for (int k = 0; k < 3; k++) {
        CHECK_STATUS(cnnc_npy_write_f32(x_path, x, ndims[k], shapes[k], &err), CNNC_OK, &err);
        write_npy_i64(y_path, y, k == 2 ? 2 : 1, k == 2 ? y_column : y_shape);
        CHECK_STATUS(cnnc_dataset_load_npy(x_path, y_path, &ds, &err), CNNC_OK, &err);
        CHECK(ds.count == 4 && ds.channels == want_chw[k][0] && ds.height == want_chw[k][1] &&
              ds.width == want_chw[k][2]);
        CHECK(ds.classes == 5);
        CHECK(ds.labels[0] == 2 && ds.labels[2] == 4 && ds.labels[3] == 1);
        CHECK(memcmp(ds.images, x, sizeof x) == 0);
        CHECK(((uintptr_t)ds.images % 64) == 0);
        cnnc_dataset_free(&ds);
    }

    /* Errors. */
    const int64_t x_shape[4] = {4, 2, 3, 5};
    CHECK_STATUS(cnnc_npy_write_f32(x_path, x, 4, x_shape, &err), CNNC_OK, &err);
    y[1] = -1;
    write_npy_i64(y_path, y, 1, y_shape);
    CHECK_STATUS(cnnc_dataset_load_npy(x_path, y_path, &ds, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "y.npy: label -1 of sample 1 is outside [0, 16777216)");
    CHECK(ds.images == NULL);
    y[1] = 0;
    const int64_t three[1] = {3};
    write_npy_i64(y_path, y, 1, three);
    CHECK_STATUS(cnnc_dataset_load_npy(x_path, y_path, &ds, &err), CNNC_ERR_SHAPE, &err);
    CHECK_CONTAINS(err.message, "y.npy: expected labels of shape [4], got [3]");
    const int64_t one_d[1] = {120};
    CHECK_STATUS(cnnc_npy_write_f32(x_path, x, 1, one_d, &err), CNNC_OK, &err);
    write_npy_i64(y_path, y, 1, y_shape);
    CHECK_STATUS(cnnc_dataset_load_npy(x_path, y_path, &ds, &err), CNNC_ERR_SHAPE, &err);
    CHECK_CONTAINS(err.message, "expected images of shape (N,C,H,W), (N,H,W) or (N,F), got "
                                "[120]");
    const int64_t empty[2] = {0, 3};
    CHECK_STATUS(cnnc_npy_write_f32(x_path, x, 2, empty, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_dataset_load_npy(x_path, y_path, &ds, &err), CNNC_ERR_SHAPE, &err);
    CHECK_CONTAINS(err.message, "every dimension must be in [1, ");
    /* Float labels are refused by cnnc_npy_read_i64. */
    CHECK_STATUS(cnnc_npy_write_f32(x_path, x, 4, x_shape, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_npy_write_f32(y_path, x, 1, y_shape, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_dataset_load_npy(x_path, y_path, &ds, &err), CNNC_ERR_DTYPE, &err);
}

static void test_stats_and_normalize(void) {
    /* 2 samples of 2 channels of 1x2: channel 0 holds 1, 2, 3, 4; channel 1 holds 5 only. */
    float images[8] = {1, 2, 5, 5, 3, 4, 5, 5};
    int32_t labels[2] = {0, 1};
    cnnc_dataset ds = {2, 2, 1, 2, images, labels, 2};
    float mean[2], std[2];
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_dataset_channel_stats(&ds, mean, std, &err), CNNC_OK, &err);
    CHECK(mean[0] == 2.5f && mean[1] == 5.0f);
    CHECK(fabsf(std[0] - sqrtf(1.25f)) < 1e-6f && std[1] == 0.0f);
    /* A zero std cannot normalize; the data stays as it was. */
    CHECK_STATUS(cnnc_dataset_normalize(&ds, mean, std, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "normalization of channel 1: std must be positive");
    CHECK(images[0] == 1.0f);
    std[1] = 2.0f;
    CHECK_STATUS(cnnc_dataset_normalize(&ds, mean, std, &err), CNNC_OK, &err);
    CHECK(images[2] == 0.0f && images[3] == 0.0f);
    float m2[2], s2[2];
    CHECK_STATUS(cnnc_dataset_channel_stats(&ds, m2, s2, &err), CNNC_OK, &err);
    CHECK(fabsf(m2[0]) < 1e-6f && fabsf(s2[0] - 1.0f) < 1e-6f);
    cnnc_dataset none = {0, 1, 1, 1, NULL, NULL, 0};
    CHECK_STATUS(cnnc_dataset_channel_stats(&none, m2, s2, &err), CNNC_ERR_ARGUMENT, &err);
}

/* ---------------------------------------------------------------------------------------
 * Shuffling
 * ------------------------------------------------------------------------------------- */

/* Returns 1 when order[0..n) holds every value of 0..n-1 once. */
static int is_permutation(const int64_t *order, int64_t n) {
    char *seen = calloc((size_t)n + 1, 1);
    int ok = 1;
    for (int64_t i = 0; i < n && ok; i++) {
        ok = order[i] >= 0 && order[i] < n && !seen[order[i]];
        if (ok) {
            seen[order[i]] = 1;
        }
    }
    free(seen);
    return ok;
}

static void test_shuffle(void) {
    /* Pinned values, computed from the documented formula in make_test_vectors.py. */
    int64_t order[1000], again[1000];
    cnnc_shuffle(order, 10, 42, 0);
    CHECK(memcmp(order, k_shuffle_10_42_0, sizeof k_shuffle_10_42_0) == 0);
    cnnc_shuffle(order, 10, 42, 1);
    CHECK(memcmp(order, k_shuffle_10_42_1, sizeof k_shuffle_10_42_1) == 0);

    /* A permutation; the same for the same (seed, epoch) whatever order held before. */
    cnnc_shuffle(order, 1000, 7, 3);
    CHECK(is_permutation(order, 1000));
    for (int i = 0; i < 1000; i++) {
        again[i] = -5;
    }
    cnnc_shuffle(again, 1000, 7, 3);
    CHECK(memcmp(order, again, sizeof order) == 0);
    cnnc_shuffle(again, 1000, 7, 4);
    CHECK(is_permutation(again, 1000) && memcmp(order, again, sizeof order) != 0);
    cnnc_shuffle(again, 1000, 8, 3);
    CHECK(memcmp(order, again, sizeof order) != 0);
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        moved += order[i] != i;
    }
    CHECK(moved > 900);

    /* Edge sizes. */
    order[0] = 99;
    cnnc_shuffle(order, 0, 1, 1);
    CHECK(order[0] == 99);
    cnnc_shuffle(order, 1, 1, 1);
    CHECK(order[0] == 0);

    /* All 6 orders of 3 items are about equally likely over 6000 epochs. */
    int counts[6] = {0};
    for (uint64_t epoch = 0; epoch < 6000; epoch++) {
        int64_t o[3];
        cnnc_shuffle(o, 3, 5, epoch);
        counts[o[0] * 2 + (o[1] > o[2])]++;
    }
    int uniform = 1;
    for (int i = 0; i < 6; i++) {
        uniform &= counts[i] > 850 && counts[i] < 1150;
    }
    CHECK(uniform);
}

/* ---------------------------------------------------------------------------------------
 * Batches and augmentation
 * ------------------------------------------------------------------------------------- */

/* A data set of n samples of C x H x W whose values are distinct and in (0, 1). */
static void make_dataset(cnnc_dataset *ds, int64_t n, int c, int h, int w) {
    size_t values = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    ds->count = n;
    ds->channels = c;
    ds->height = h;
    ds->width = w;
    ds->images = cnnc_aligned_alloc(values * sizeof(float), 64);
    ds->labels = malloc((size_t)n * sizeof(int32_t));
    ds->classes = 10;
    for (size_t i = 0; i < values; i++) {
        ds->images[i] = (float)(i + 1) / (float)(values + 2);
    }
    for (int64_t i = 0; i < n; i++) {
        ds->labels[i] = (int32_t)(i % 10);
    }
}

/* Finds the shift (dy, dx) and flip that turn `src` into `out` (C x H x W, zero outside),
 * with |dy|, |dx| <= p. Returns 0 when there is none. */
static int find_geometry(const float *src, const float *out, int c, int h, int w, int p,
                         int *dy_out, int *dx_out, int *flip_out) {
    for (int flip = 0; flip < 2; flip++) {
        for (int dy = -p; dy <= p; dy++) {
            for (int dx = -p; dx <= p; dx++) {
                int match = 1;
                for (int ch = 0; ch < c && match; ch++) {
                    for (int y = 0; y < h && match; y++) {
                        for (int x = 0; x < w && match; x++) {
                            int sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
                            float want = sy >= 0 && sy < h && sx >= 0 && sx < w
                                             ? src[(ch * h + sy) * w + sx]
                                             : 0.0f;
                            match = out[(ch * h + y) * w + x] == want;
                        }
                    }
                }
                if (match) {
                    *dy_out = dy;
                    *dx_out = dx;
                    *flip_out = flip;
                    return 1;
                }
            }
        }
    }
    return 0;
}

static void test_batch_copy(void) {
    cnnc_dataset ds;
    make_dataset(&ds, 20, 3, 4, 5);
    const int64_t idx[4] = {19, 0, 7, 7};
    float out[4 * 60];
    int32_t labels[4];
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 4, out, labels, NULL, 1, 2, &err), CNNC_OK, &err);
    int same = 1;
    for (int b = 0; b < 4; b++) {
        same &= memcmp(out + b * 60, ds.images + idx[b] * 60, 60 * sizeof(float)) == 0;
        same &= labels[b] == ds.labels[idx[b]];
    }
    CHECK(same);
    /* A zeroed augmentation copies too; labels may be omitted. */
    cnnc_augment none;
    memset(&none, 0, sizeof none);
    float out2[4 * 60];
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 4, out2, NULL, &none, 1, 2, &err), CNNC_OK, &err);
    CHECK(memcmp(out, out2, sizeof out) == 0);
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 0, out2, NULL, NULL, 1, 2, &err), CNNC_OK, &err);

    /* Bad indices and sizes are reported before anything is written. */
    const int64_t bad[2] = {3, 20};
    out2[0] = -7.0f;
    CHECK_STATUS(cnnc_dataset_batch(&ds, bad, 2, out2, labels, NULL, 1, 2, &err), CNNC_ERR_ARGUMENT,
                 &err);
    CHECK_CONTAINS(err.message, "index 20 (sample 1 of the batch) is outside the data set of "
                                "20 samples");
    CHECK(out2[0] == -7.0f);
    CHECK_STATUS(cnnc_dataset_batch(&ds, bad, -1, out2, labels, NULL, 1, 2, &err),
                 CNNC_ERR_ARGUMENT, &err);
    cnnc_dataset_free(&ds);
}

static void test_augment_geometry(void) {
    cnnc_dataset ds;
    make_dataset(&ds, 8, 3, 6, 7);
    const size_t sample = 3 * 6 * 7;
    int64_t idx[8];
    for (int i = 0; i < 8; i++) {
        idx[i] = i;
    }
    float *out = malloc(8 * sample * sizeof(float));
    float *back = malloc(8 * sample * sizeof(float));
    cnnc_error err = {0};

    /* Crop with padding 2: each sample is its source shifted by at most 2 with zeros
     * coming in; over many steps every one of the 25 shifts occurs. */
    cnnc_augment crop;
    memset(&crop, 0, sizeof crop);
    crop.crop_padding = 2;
    int shifts[5][5] = {{0}};
    int all_shifted = 1;
    for (uint64_t step = 0; step < 100; step++) {
        CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 8, out, NULL, &crop, 3, step, &err), CNNC_OK,
                     &err);
        for (int b = 0; b < 8; b++) {
            int dy, dx, flip;
            int found = find_geometry(ds.images + b * sample, out + b * sample, 3, 6, 7, 2, &dy,
                                      &dx, &flip);
            all_shifted &= found && !flip;
            if (found) {
                shifts[dy + 2][dx + 2]++;
            }
        }
    }
    CHECK(all_shifted);
    int every_shift = 1;
    for (int i = 0; i < 25; i++) {
        every_shift &= shifts[i / 5][i % 5] > 5;
    }
    CHECK(every_shift);

    /* The offsets follow the documented stream (values computed in Python). */
    cnnc_augment crop4;
    memset(&crop4, 0, sizeof crop4);
    crop4.crop_padding = 4;
    cnnc_dataset big;
    make_dataset(&big, 4, 1, 12, 12);
    float big_out[4 * 144];
    const int64_t four[4] = {0, 1, 2, 3};
    CHECK_STATUS(cnnc_dataset_batch(&big, four, 4, big_out, NULL, &crop4, 7, 3, &err), CNNC_OK,
                 &err);
    int pinned = 1;
    for (int b = 0; b < 4; b++) {
        int dy, dx, flip;
        pinned &=
            find_geometry(big.images + b * 144, big_out + b * 144, 1, 12, 12, 4, &dy, &dx, &flip) &&
            dy == k_crop_offsets_7_3[b][0] && dx == k_crop_offsets_7_3[b][1] && !flip;
    }
    CHECK(pinned);
    cnnc_dataset_free(&big);

    /* Flip: about half the samples are mirrored; flipping again with the same seed and
     * step (the same decisions) restores the source exactly. */
    cnnc_augment flip;
    memset(&flip, 0, sizeof flip);
    flip.hflip = 1;
    int flipped = 0, restored = 1, mirror_or_same = 1;
    for (uint64_t step = 0; step < 100; step++) {
        CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 8, out, NULL, &flip, 9, step, &err), CNNC_OK,
                     &err);
        for (int b = 0; b < 8; b++) {
            int dy, dx, f;
            int found =
                find_geometry(ds.images + b * sample, out + b * sample, 3, 6, 7, 0, &dy, &dx, &f);
            mirror_or_same &= found;
            flipped += found && f;
        }
        cnnc_dataset flipped_ds = ds;
        flipped_ds.images = out;
        CHECK_STATUS(cnnc_dataset_batch(&flipped_ds, idx, 8, back, NULL, &flip, 9, step, &err),
                     CNNC_OK, &err);
        restored &= memcmp(back, ds.images, 8 * sample * sizeof(float)) == 0;
    }
    CHECK(mirror_or_same && restored);
    CHECK(flipped > 320 && flipped < 480);

    /* Crop and flip together: a shift and a mirror (crop first, then flip). */
    cnnc_augment both = crop;
    both.hflip = 1;
    int geometric = 1, some_flipped = 0;
    for (uint64_t step = 0; step < 20; step++) {
        CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 8, out, NULL, &both, 4, step, &err), CNNC_OK,
                     &err);
        for (int b = 0; b < 8; b++) {
            int dy, dx, f;
            geometric &=
                find_geometry(ds.images + b * sample, out + b * sample, 3, 6, 7, 2, &dy, &dx, &f);
            some_flipped += f;
        }
    }
    CHECK(geometric && some_flipped > 0);
    free(out);
    free(back);
    cnnc_dataset_free(&ds);
}

static void test_augment_determinism(void) {
    cnnc_dataset ds;
    make_dataset(&ds, 10, 3, 8, 8);
    const size_t sample = 3 * 64;
    cnnc_augment aug;
    memset(&aug, 0, sizeof aug);
    aug.crop_padding = 3;
    aug.hflip = 1;
    aug.jitter_brightness = 0.4f;
    aug.jitter_contrast = 0.4f;
    aug.jitter_saturation = 0.4f;
    aug.normalize = 1;
    aug.mean[0] = 0.5f;
    aug.mean[1] = 0.4f;
    aug.mean[2] = 0.3f;
    aug.std[0] = 0.2f;
    aug.std[1] = 0.25f;
    aug.std[2] = 0.3f;
    const int64_t a_idx[4] = {0, 1, 2, 3}, b_idx[4] = {9, 1, 5, 3};
    float a[4 * 192], a2[4 * 192], b[4 * 192], c[4 * 192], one[192];
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_dataset_batch(&ds, a_idx, 4, a, NULL, &aug, 5, 6, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_dataset_batch(&ds, a_idx, 4, a2, NULL, &aug, 5, 6, &err), CNNC_OK, &err);
    CHECK(memcmp(a, a2, sizeof a) == 0);
    /* A sample's augmentation depends only on (seed, step, position): the samples at
     * positions 1 and 3 are the same in both batches. */
    CHECK_STATUS(cnnc_dataset_batch(&ds, b_idx, 4, b, NULL, &aug, 5, 6, &err), CNNC_OK, &err);
    CHECK(memcmp(a + sample, b + sample, sample * sizeof(float)) == 0);
    CHECK(memcmp(a + 3 * sample, b + 3 * sample, sample * sizeof(float)) == 0);
    CHECK(memcmp(a, b, sample * sizeof(float)) != 0);
    /* Another step or seed changes it. */
    CHECK_STATUS(cnnc_dataset_batch(&ds, a_idx, 4, c, NULL, &aug, 5, 7, &err), CNNC_OK, &err);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK_STATUS(cnnc_dataset_batch(&ds, a_idx, 4, c, NULL, &aug, 6, 6, &err), CNNC_OK, &err);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* The batch equals augmenting each image on its own. */
    int same = 1;
    for (int k = 0; k < 4; k++) {
        CHECK_STATUS(
            cnnc_augment_image(one, ds.images + b_idx[k] * sample, 3, 8, 8, &aug, 5, 6, k, &err),
            CNNC_OK, &err);
        same &= memcmp(one, b + k * sample, sizeof one) == 0;
    }
    CHECK(same);
    /* Normalized values of images in [0, 1] stay within [(0 - mean) / std, (1 - mean) / std]. */
    int bounded = 1;
    for (int k = 0; k < 4; k++) {
        for (int ch = 0; ch < 3; ch++) {
            for (int i = 0; i < 64; i++) {
                float v = a[k * sample + ch * 64 + i] * aug.std[ch] + aug.mean[ch];
                bounded &= v >= -1e-6f && v <= 1.0f + 1e-6f;
            }
        }
    }
    CHECK(bounded);
    cnnc_dataset_free(&ds);
}

static void test_augment_jitter(void) {
    cnnc_dataset ds;
    make_dataset(&ds, 6, 3, 4, 4);
    const size_t sample = 48;
    const int64_t idx[6] = {0, 1, 2, 3, 4, 5};
    float out[6 * 48];
    cnnc_error err = {0};

    /* Brightness scales every value by one factor in [0.7, 1.3]. */
    cnnc_augment aug;
    memset(&aug, 0, sizeof aug);
    aug.jitter_brightness = 0.3f;
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 6, out, NULL, &aug, 1, 0, &err), CNNC_OK, &err);
    int scaled = 1, factors_differ = 0;
    float first = out[0] / ds.images[0];
    for (int b = 0; b < 6; b++) {
        float f = out[b * sample] / ds.images[b * sample];
        scaled &= f >= 0.7f - 1e-5f && f <= 1.3f + 1e-5f;
        for (size_t i = 0; i < sample; i++) {
            float x = ds.images[b * sample + i], want = x * f > 1.0f ? 1.0f : x * f;
            scaled &= fabsf(out[b * sample + i] - want) < 1e-5f;
        }
        factors_differ |= fabsf(f - first) > 1e-4f;
    }
    CHECK(scaled && factors_differ);

    /* Contrast keeps the mean gray level of an image whose values stay inside [0, 1]: with
     * values in [0.4, 0.6] and factors in [0.5, 1.5] nothing is clamped. */
    cnnc_dataset mid;
    make_dataset(&mid, 6, 3, 4, 4);
    for (size_t i = 0; i < 6 * sample; i++) {
        mid.images[i] = 0.4f + 0.2f * mid.images[i];
    }
    memset(&aug, 0, sizeof aug);
    aug.jitter_contrast = 0.5f;
    CHECK_STATUS(cnnc_dataset_batch(&mid, idx, 6, out, NULL, &aug, 2, 0, &err), CNNC_OK, &err);
    CHECK(memcmp(out, mid.images, sizeof out) != 0);
    int mean_kept = 1;
    for (int b = 0; b < 6; b++) {
        double before = 0, after = 0;
        for (int i = 0; i < 16; i++) {
            const float *s = mid.images + b * sample, *o = out + b * sample;
            before += 0.2989 * s[i] + 0.587 * s[16 + i] + 0.114 * s[32 + i];
            after += 0.2989 * o[i] + 0.587 * o[16 + i] + 0.114 * o[32 + i];
        }
        /* The gray weights add up to 0.9999, so the mean moves by up to 1e-4 * m per pixel. */
        mean_kept &= fabs(before - after) < 16 * 1e-4;
    }
    CHECK(mean_kept);
    cnnc_dataset_free(&mid);

    /* Saturation changes colour images but leaves gray ones (and 1-channel ones) alone. */
    memset(&aug, 0, sizeof aug);
    aug.jitter_saturation = 0.9f;
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 6, out, NULL, &aug, 3, 0, &err), CNNC_OK, &err);
    CHECK(memcmp(out, ds.images, sizeof out) != 0);
    cnnc_dataset gray;
    make_dataset(&gray, 6, 1, 4, 4);
    float gray_out[6 * 16];
    CHECK_STATUS(cnnc_dataset_batch(&gray, idx, 6, gray_out, NULL, &aug, 3, 0, &err), CNNC_OK,
                 &err);
    CHECK(memcmp(gray_out, gray.images, sizeof gray_out) == 0);
    cnnc_dataset_free(&gray);

    /* Normalization alone is (x - mean) / std. */
    memset(&aug, 0, sizeof aug);
    aug.normalize = 1;
    for (int ch = 0; ch < 3; ch++) {
        aug.mean[ch] = 0.1f * (float)(ch + 1);
        aug.std[ch] = 0.5f;
    }
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 6, out, NULL, &aug, 3, 0, &err), CNNC_OK, &err);
    CHECK(out[sample + 16 + 5] == (ds.images[sample + 16 + 5] - 0.2f) / 0.5f);

    /* Invalid settings. */
    memset(&aug, 0, sizeof aug);
    aug.crop_padding = -1;
    CHECK_STATUS(cnnc_dataset_batch(&ds, idx, 6, out, NULL, &aug, 3, 0, &err), CNNC_ERR_ARGUMENT,
                 &err);
    CHECK_CONTAINS(err.message, "crop_padding must be in [0, 65535], got -1");
    aug.crop_padding = 0;
    aug.jitter_contrast = NAN;
    CHECK_STATUS(cnnc_augment_check(&aug, 3, 4, 4, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "jitter_contrast must be finite and >= 0");
    aug.jitter_contrast = 0;
    aug.normalize = 1;
    aug.std[0] = aug.std[1] = aug.std[2] = 1.0f;
    CHECK_STATUS(cnnc_augment_check(&aug, 3, 4, 4, &err), CNNC_OK, &err);
    aug.std[2] = 0.0f;
    CHECK_STATUS(cnnc_augment_check(&aug, 3, 4, 4, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "channel 2 needs a finite mean and a positive finite std");
    CHECK_STATUS(cnnc_augment_check(&aug, 5, 4, 4, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "normalize describes at most 4 channels, the images have 5");
    cnnc_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------
 * Learning-rate schedules
 * ------------------------------------------------------------------------------------- */

static int close_to(double a, double b) {
    return fabs(a - b) <= 1e-12 + 1e-12 * fabs(b);
}

static void test_schedules(void) {
    cnnc_error err = {0};
    cnnc_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = CNNC_LR_CONSTANT;
    s.lr = 0.1;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_OK, &err);
    CHECK(cnnc_lr_schedule(&s, 0, 100) == 0.1 && cnnc_lr_schedule(&s, 123456, 100) == 0.1);

    /* Step: x0.1 every 2 epochs of 10 steps. */
    s.kind = CNNC_LR_STEP;
    s.gamma = 0.1;
    s.step_epochs = 2;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_OK, &err);
    CHECK(close_to(cnnc_lr_schedule(&s, 0, 10), 0.1));
    CHECK(close_to(cnnc_lr_schedule(&s, 19, 10), 0.1));
    CHECK(close_to(cnnc_lr_schedule(&s, 20, 10), 0.01));
    CHECK(close_to(cnnc_lr_schedule(&s, 45, 10), 0.001));
    CHECK(close_to(cnnc_lr_schedule(&s, -5, 10), 0.1));

    /* Cosine from 0.1 to 0.001 over 10 epochs, per epoch and per step. */
    s.kind = CNNC_LR_COSINE;
    s.min_lr = 0.001;
    s.epochs = 10;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_OK, &err);
    CHECK(close_to(cnnc_lr_schedule(&s, 0, 10), 0.1));
    CHECK(close_to(cnnc_lr_schedule(&s, 9, 10), 0.1));
    CHECK(close_to(cnnc_lr_schedule(&s, 50, 10), 0.0505));
    CHECK(close_to(cnnc_lr_schedule(&s, 59, 10), 0.0505));
    CHECK(close_to(cnnc_lr_schedule(&s, 100, 10), 0.001));
    CHECK(close_to(cnnc_lr_schedule(&s, 1000, 10), 0.001));
    CHECK(close_to(cnnc_lr_schedule(&s, 20, 10),
                   0.001 + 0.099 * (1 + cos(3.14159265358979323846 * 0.2)) / 2));
    s.per_step = 1;
    CHECK(close_to(cnnc_lr_schedule(&s, 25, 10),
                   0.001 + 0.099 * (1 + cos(3.14159265358979323846 * 0.25)) / 2));
    CHECK(close_to(cnnc_lr_schedule(&s, 50, 10), 0.0505));

    /* Warm-up over 100 steps multiplies by (step + 1) / 100. */
    s.kind = CNNC_LR_CONSTANT;
    s.warmup_steps = 100;
    CHECK(close_to(cnnc_lr_schedule(&s, 0, 10), 0.001));
    CHECK(close_to(cnnc_lr_schedule(&s, 49, 10), 0.05));
    CHECK(close_to(cnnc_lr_schedule(&s, 99, 10), 0.1));
    CHECK(close_to(cnnc_lr_schedule(&s, 100, 10), 0.1));
    s.kind = CNNC_LR_STEP;
    CHECK(close_to(cnnc_lr_schedule(&s, 24, 1), 0.1 * pow(0.1, 12) * 0.25));

    /* Invalid schedules. */
    s.step_epochs = 0;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "step_epochs must be >= 1, got 0");
    CHECK(isfinite(cnnc_lr_schedule(&s, 10, 0)));
    s.kind = CNNC_LR_COSINE;
    s.epochs = 0;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "epochs must be >= 1, got 0");
    s.epochs = 3;
    s.warmup_steps = -1;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_ERR_ARGUMENT, &err);
    s.warmup_steps = 0;
    s.lr = INFINITY;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_ERR_ARGUMENT, &err);
    s.lr = 0.1;
    s.kind = (cnnc_schedule_kind)9;
    CHECK_STATUS(cnnc_schedule_check(&s, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_CONTAINS(err.message, "unknown kind 9");
}

/* ---------------------------------------------------------------------------------------
 * Progress line and CSV log
 * ------------------------------------------------------------------------------------- */

static double g_fake_now;

static double fake_clock(void) {
    return g_fake_now;
}

/* Returns what was written to f (a tmpfile) as a malloc'ed string. */
static char *file_text(FILE *f) {
    fflush(f);
    long size = ftell(f);
    char *text = calloc((size_t)size + 1, 1);
    rewind(f);
    if (size > 0 && fread(text, 1, (size_t)size, f) != (size_t)size) {
        text[0] = 0;
    }
    return text;
}

static void test_progress_format(void) {
    char buf[200];
    cnnc_format_duration(buf, sizeof buf, 0);
    CHECK_STR(buf, "0:00:00");
    cnnc_format_duration(buf, sizeof buf, 59.99);
    CHECK_STR(buf, "0:00:59");
    cnnc_format_duration(buf, sizeof buf, 3723);
    CHECK_STR(buf, "1:02:03");
    cnnc_format_duration(buf, sizeof buf, 360000);
    CHECK_STR(buf, "100:00:00");
    cnnc_format_duration(buf, sizeof buf, -1);
    CHECK_STR(buf, "-:--:--");
    CHECK(cnnc_format_duration(buf, sizeof buf, NAN) == 7);
    CHECK_STR(buf, "-:--:--");
    cnnc_format_duration(buf, sizeof buf, 1e300);
    CHECK_STR(buf, "-:--:--");

    int n = cnnc_progress_format(buf, sizeof buf, 1, 10, 120, 938, 0.51234, 0.8125, 1234.4, 83);
    CHECK_STR(buf, "epoch  1/10  step 120/938  loss 0.5123  acc 81.25%  1234 img/s  eta 0:01:23");
    CHECK(n == (int)strlen(buf));
    cnnc_progress_format(buf, sizeof buf, 3, 5, 7, 60000, 2.5, 1.0, 0.0, -1);
    CHECK_STR(buf, "epoch 3/5  step     7/60000  loss 2.5000  acc 100.00%  0 img/s  eta -:--:--");
    /* Truncation behaves as snprintf. */
    char small[8];
    CHECK(cnnc_progress_format(small, sizeof small, 1, 1, 1, 1, 0, 0, 0, 0) > 7);
    CHECK_STR(small, "epoch 1");
}

static void test_progress_lines(void) {
    FILE *f = tmpfile();
    if (f == NULL) {
        CHECK(!"tmpfile");
        return;
    }
    cnnc_progress p;
    cnnc_progress_init(&p, 2);
    CHECK(p.every == 2 && p.tty == -1 && p.min_interval == 0.1);
    p.clock = fake_clock;
    g_fake_now = 100;
    cnnc_progress_begin(&p);
    /* Epoch 1: 5 steps of 10 images, one second each: printed at steps 2, 4 and 5. */
    const double losses[5] = {1.0, 0.5, 0.3, 0.2, 0.0}, accs[5] = {0.5, 0.7, 0.8, 1.0, 1.0};
    for (int s = 1; s <= 5; s++) {
        g_fake_now = 100 + s;
        cnnc_progress_update(&p, f, 1, 2, s, 5, losses[s - 1], accs[s - 1], 10);
    }
    CHECK(p.tty == 0);
    cnnc_progress_finish(&p, f);
    /* Evaluation time (105 to 200) is not counted: the next epoch begins at 200. */
    g_fake_now = 200;
    cnnc_progress_begin(&p);
    g_fake_now = 202;
    cnnc_progress_update(&p, f, 2, 2, 1, 5, 2.0, 0.1, 20);
    g_fake_now = 203;
    cnnc_progress_finish(&p, f);
    cnnc_progress_finish(&p, f);
    char *text = file_text(f);
    CHECK_STR(text, "epoch 1/2  step 2/5  loss 0.7500  acc 60.00%  10 img/s  eta 0:00:08\n"
                    "epoch 1/2  step 4/5  loss 0.5000  acc 75.00%  10 img/s  eta 0:00:06\n"
                    "epoch 1/2  step 5/5  loss 0.4000  acc 80.00%  10 img/s  eta 0:00:05\n"
                    "epoch 2/2  step 1/5  loss 2.0000  acc 10.00%  10 img/s  eta 0:00:04\n");
    free(text);
    fclose(f);
}

static void test_progress_redraw(void) {
    FILE *f = tmpfile();
    if (f == NULL) {
        CHECK(!"tmpfile");
        return;
    }
    /* Every update redrawn in place; a shorter line is padded over the longer one. */
    cnnc_progress p;
    cnnc_progress_init(&p, 100);
    p.clock = fake_clock;
    p.tty = 1;
    p.min_interval = 0;
    g_fake_now = 0;
    cnnc_progress_begin(&p);
    g_fake_now = 1;
    cnnc_progress_update(&p, f, 1, 1, 1, 2, 10.0, 0.25, 4);
    g_fake_now = 2;
    cnnc_progress_update(&p, f, 1, 1, 2, 2, 0.0, 0.75, 4);
    cnnc_progress_finish(&p, f);
    char *text = file_text(f);
    CHECK_STR(text, "\repoch 1/1  step 1/2  loss 10.0000  acc 25.00%  4 img/s  eta 0:00:01"
                    "\repoch 1/1  step 2/2  loss 5.0000  acc 50.00%  4 img/s  eta 0:00:00 \n");
    free(text);
    fclose(f);

    /* With min_interval 10 s, steps one second apart: the first and the last are drawn;
     * the next epoch first ends the open line. */
    f = tmpfile();
    cnnc_progress_init(&p, 1);
    p.clock = fake_clock;
    p.tty = 1;
    p.min_interval = 10;
    g_fake_now = 0;
    cnnc_progress_begin(&p);
    for (int s = 1; s <= 4; s++) {
        g_fake_now = s;
        cnnc_progress_update(&p, f, 1, 2, s, 4, 1.0, 0.5, 8);
    }
    g_fake_now = 5;
    cnnc_progress_update(&p, f, 2, 2, 1, 4, 1.0, 0.5, 8);
    cnnc_progress_finish(&p, f);
    text = file_text(f);
    int returns = 0, newlines = 0;
    for (const char *c = text; *c; c++) {
        returns += *c == '\r';
        newlines += *c == '\n';
    }
    CHECK(returns == 3 && newlines == 2);
    CHECK_CONTAINS(text, "step 4/4");
    CHECK_CONTAINS(text, "\n\repoch 2/2  step 1/4");
    free(text);
    fclose(f);
}

static void test_log(void) {
    TMP_PATH(path, "train.csv");
    cnnc_log *log = NULL;
    cnnc_error err = {0};
    CHECK_STATUS(cnnc_log_open(path, 0, &log, &err), CNNC_OK, &err);
    cnnc_log_entry row = {1, 938, 0.5, 0.8125, 0.01, NAN, NAN, 1234.5, 12.3456};
    CHECK_STATUS(cnnc_log_write(log, &row, &err), CNNC_OK, &err);
    /* Each row is flushed at once. */
    size_t size = 0;
    unsigned char *bytes = read_bytes(path, &size);
    CHECK(size == strlen(CNNC_LOG_HEADER "\n1,938,0.5,0.8125,0.01,,,1234.5,12.346\n"));
    free(bytes);
    cnnc_log_entry row2 = {2, 1876, 0.25, 0.9, 0.001, 0.375, 0.875, 2000, 24.5};
    CHECK_STATUS(cnnc_log_write(log, &row2, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_log_close(log, &err), CNNC_OK, &err);
    /* Appending continues the file without a second header. */
    CHECK_STATUS(cnnc_log_open(path, 1, &log, &err), CNNC_OK, &err);
    row.epoch = 3;
    CHECK_STATUS(cnnc_log_write(log, &row, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_log_close(log, &err), CNNC_OK, &err);
    bytes = read_bytes(path, &size);
    char *text = calloc(size + 1, 1);
    memcpy(text, bytes, size);
    CHECK_STR(text, "epoch,step,loss,accuracy,lr,test_loss,test_accuracy,images_per_second,"
                    "seconds\n"
                    "1,938,0.5,0.8125,0.01,,,1234.5,12.346\n"
                    "2,1876,0.25,0.9,0.001,0.375,0.875,2000.0,24.500\n"
                    "3,938,0.5,0.8125,0.01,,,1234.5,12.346\n");
    free(text);
    free(bytes);
    /* Appending to a new file writes the header. */
    TMP_PATH(fresh, "fresh.csv");
    CHECK_STATUS(cnnc_log_open(fresh, 1, &log, &err), CNNC_OK, &err);
    CHECK_STATUS(cnnc_log_close(log, &err), CNNC_OK, &err);
    bytes = read_bytes(fresh, &size);
    CHECK(size == strlen(CNNC_LOG_HEADER) + 1 && memcmp(bytes, CNNC_LOG_HEADER "\n", size) == 0);
    free(bytes);
    /* Errors. */
    TMP_PATH(bad, "no/such/dir.csv");
    CHECK_STATUS(cnnc_log_open(bad, 0, &log, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "cannot create '");
    CHECK_CONTAINS(err.message, "no such file or directory");
    CHECK(log == NULL);
    CHECK_STATUS(cnnc_log_write(NULL, &row, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_log_close(NULL, &err), CNNC_OK, &err);
}

/* ---------------------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------------------- */

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cnnc_runtime_data_test_XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        printf("cannot create a temporary directory\n");
        printf("runtime-data: 0 passed, 1 failed\n");
        return 1;
    }
    test_crc32();
    test_gzip_vectors();
    test_gzip_members_and_headers();
    test_inflate_round_trips();
    test_inflate_errors();
    test_gzip_corruption();
    test_read_file_maybe_gzip();
    test_idx();
    test_fashion_mnist_layout();
    test_fashion_mnist_real();
    test_cifar10();
    test_npy_dataset();
    test_stats_and_normalize();
    test_shuffle();
    test_batch_copy();
    test_augment_geometry();
    test_augment_determinism();
    test_augment_jitter();
    test_schedules();
    test_progress_format();
    test_progress_lines();
    test_progress_redraw();
    test_log();
    remove_temp_dir();
    printf("runtime-data: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
