/*
 * test_runtime.c — tests of the cnnc C runtime.
 *
 * Each test is a function. CHECK and its variants (tests/check.h) count passes and print one
 * line per failure ("file:line: ..."). Test files live in a fresh mkdtemp directory under
 * /tmp that is removed at the end. The last line printed is "runtime: N passed, M failed";
 * the exit status is non-zero when any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_runtime.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* ---------------------------------------------------------------------------------------
 * File helpers
 * ------------------------------------------------------------------------------------- */

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Writes a safetensors file from a header text and `data_len` data bytes (zeros when data
 * is NULL). */
static void write_safetensors_raw(const char *path, const char *header, const void *data,
                                  size_t data_len) {
    size_t header_len = strlen(header);
    unsigned char *buf = calloc(1, 8 + header_len + data_len);
    put_le64(buf, header_len);
    memcpy(buf + 8, header, header_len);
    if (data != NULL) {
        memcpy(buf + 8 + header_len, data, data_len);
    }
    write_bytes(path, buf, 8 + header_len + data_len);
    free(buf);
}

/* Writes a .npy file with version major.0, the given dict (padded like NumPy) and data. */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t data_len) {
    size_t prefix = major == 1 ? 10 : 12;
    size_t len = strlen(dict) + 1;
    while ((prefix + len) % 64 != 0) {
        len++;
    }
    unsigned char *buf = calloc(1, prefix + len + data_len);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) {
        buf[8 + i] = (unsigned char)(len >> (8 * i));
    }
    memset(buf + prefix, ' ', len);
    memcpy(buf + prefix, dict, strlen(dict));
    buf[prefix + len - 1] = '\n';
    if (data_len > 0) {
        memcpy(buf + prefix + len, data, data_len);
    }
    write_bytes(path, buf, prefix + len + data_len);
    free(buf);
}

/* ---------------------------------------------------------------------------------------
 * Status, errors, memory, clock
 * ------------------------------------------------------------------------------------- */

static void test_status_and_errors(void) {
    /* Every code has its own non-empty text. */
    for (int a = CNNC_OK; a <= CNNC_ERR_BATCH; a++) {
        const char *text = cnnc_status_string((cnnc_status)a);
        CHECK(text != NULL && text[0] != 0);
        for (int b = CNNC_OK; b < a; b++) {
            CHECK(strcmp(text, cnnc_status_string((cnnc_status)b)) != 0);
        }
    }
    CHECK_STR(cnnc_status_string(CNNC_OK), "ok");
    CHECK_STR(cnnc_status_string((cnnc_status)99), "unknown status");

    cnnc_error_set(NULL, CNNC_ERR_IO, "ignored %d", 1);
    cnnc_error err;
    cnnc_error_set(&err, CNNC_ERR_SHAPE, "tensor '%s': %d", "x", 3);
    CHECK(err.status == CNNC_ERR_SHAPE);
    CHECK_STR(err.message, "tensor 'x': 3");
    cnnc_error_set(&err, CNNC_ERR_ALLOC, NULL);
    CHECK_STR(err.message, cnnc_status_string(CNNC_ERR_ALLOC));

    /* Long messages are truncated and stay terminated. */
    char long_text[2000];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    cnnc_error_set(&err, CNNC_ERR_FORMAT, "%s", long_text);
    CHECK(strlen(err.message) == CNNC_ERROR_MESSAGE_SIZE - 1);
}

static void test_aligned_alloc(void) {
    for (size_t alignment = sizeof(void *); alignment <= 4096; alignment *= 2) {
        unsigned char *p = cnnc_aligned_alloc(1000, alignment);
        CHECK(p != NULL);
        CHECK((uintptr_t)p % alignment == 0);
        if (p != NULL) {
            memset(p, 0xAB, 1000); /* bytes past 1000 up to the rounded size are ours too */
        }
        cnnc_aligned_free(p);
    }
    unsigned char *q = cnnc_aligned_alloc(1, 64);
    CHECK(q != NULL && (uintptr_t)q % 64 == 0);
    if (q != NULL) {
        memset(q, 0, 64); /* rounded up to the alignment */
    }
    cnnc_aligned_free(q);
    CHECK(cnnc_aligned_alloc(0, 64) == NULL);
    CHECK(cnnc_aligned_alloc(64, 48) == NULL);
    CHECK(cnnc_aligned_alloc(64, sizeof(void *) / 2) == NULL);
    CHECK(cnnc_aligned_alloc(64, 0) == NULL);
    CHECK(cnnc_aligned_alloc(SIZE_MAX - 10, 4096) == NULL);
    cnnc_aligned_free(NULL);
}

static void test_now_seconds(void) {
    double t0 = cnnc_now_seconds();
    double t1 = cnnc_now_seconds();
    CHECK(t0 > 0.0);
    CHECK(t1 >= t0);
    CHECK(t1 - t0 < 10.0);
}

/* ---------------------------------------------------------------------------------------
 * safetensors
 * ------------------------------------------------------------------------------------- */

/* Names and values of the round-trip test; the odd name needs JSON escaping. */
#define ODD_NAME "we\"ird\\name\n\t\x01/\xc3\xa9\xe6\x97\xa5"

/* Writes the round-trip file (5 tensors, 3 metadata entries) to path. */
static cnnc_status write_sample_safetensors(const char *path, float *w, float *bias, float *scale,
                                            float *odd, cnnc_error *err) {
    static const int64_t w_shape[] = {6, 1, 5, 5};
    static const int64_t bias_shape[] = {10};
    static const int64_t empty_shape[] = {0, 3};
    static const int64_t odd_shape[] = {2, 2};
    for (int i = 0; i < 150; i++) {
        w[i] = (float)i * 0.5f - 3.0f;
    }
    for (int i = 0; i < 10; i++) {
        bias[i] = -(float)i / 7.0f;
    }
    *scale = 2.5f;
    odd[0] = -0.0f;
    odd[1] = 1e-38f;
    odd[2] = 3.4e38f;
    odd[3] = (float)INFINITY;
    const cnnc_tensor_f32 tensors[] = {
        {"c1.weight", 4, w_shape, w},  {"fc.bias", 1, bias_shape, bias},
        {"scale", 0, NULL, scale},     {"empty", 2, empty_shape, NULL},
        {ODD_NAME, 2, odd_shape, odd},
    };
    const char *const metadata[] = {
        "format",
        "pt",
        "note",
        "a \"quoted\"\tvalue\\ with\nnewline",
        "\xc3\xbcnic\xc3\xb6"
        "de",
        "\xe2\x9c\x93",
        NULL,
    };
    return cnnc_safetensors_write_f32(path, tensors, 5, metadata, err);
}

static void test_safetensors_round_trip(void) {
    TMP_PATH(path, "round_trip.safetensors");
    float w[150], bias[10], scale, odd[4];
    cnnc_error err = {CNNC_OK, ""};
    CHECK_STATUS(write_sample_safetensors(path, w, bias, &scale, odd, &err), CNNC_OK, &err);

    /* The raw layout: header length a multiple of 8, metadata first, compact JSON. */
    size_t size;
    unsigned char *bytes = read_bytes(path, &size);
    CHECK(bytes != NULL && size > 8);
    if (bytes != NULL) {
        uint64_t n = 0;
        for (int i = 0; i < 8; i++) {
            n |= (uint64_t)bytes[i] << (8 * i);
        }
        CHECK(n % 8 == 0);
        CHECK(size == 8 + n + (150 + 10 + 1 + 4) * 4);
        CHECK(memcmp(bytes + 8, "{\"__metadata__\":{\"format\":\"pt\",", 31) == 0);
        CHECK(bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}');
        uint32_t bits = (uint32_t)bytes[8 + n] | (uint32_t)bytes[9 + n] << 8 |
                        (uint32_t)bytes[10 + n] << 16 | (uint32_t)bytes[11 + n] << 24;
        float first;
        memcpy(&first, &bits, 4);
        CHECK(first == w[0]); /* little-endian data right after the header */
    }
    free(bytes);

    cnnc_safetensors *st = NULL;
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_OK, &err);
    if (st == NULL) {
        return;
    }
    /* Names in file order. */
    CHECK(cnnc_safetensors_count(st) == 5);
    CHECK_STR(cnnc_safetensors_name(st, 0), "c1.weight");
    CHECK_STR(cnnc_safetensors_name(st, 1), "fc.bias");
    CHECK_STR(cnnc_safetensors_name(st, 2), "scale");
    CHECK_STR(cnnc_safetensors_name(st, 3), "empty");
    CHECK_STR(cnnc_safetensors_name(st, 4), ODD_NAME);
    CHECK(cnnc_safetensors_name(st, 5) == NULL);

    /* Views. */
    cnnc_tensor_view v;
    CHECK_STATUS(cnnc_safetensors_get(st, "c1.weight", &v, &err), CNNC_OK, &err);
    CHECK_STR(v.name, "c1.weight");
    CHECK_STR(v.dtype, "F32");
    CHECK(v.ndim == 4 && v.shape[0] == 6 && v.shape[1] == 1 && v.shape[2] == 5 && v.shape[3] == 5);
    CHECK(v.nbytes == 600);
    CHECK_STATUS(cnnc_safetensors_get(st, "empty", &v, &err), CNNC_OK, &err);
    CHECK(v.ndim == 2 && v.shape[0] == 0 && v.shape[1] == 3 && v.nbytes == 0);
    CHECK_STATUS(cnnc_safetensors_get(st, "scale", &v, &err), CNNC_OK, &err);
    CHECK(v.ndim == 0 && v.nbytes == 4);

    /* Data, bit for bit. */
    float w2[150], bias2[10], scale2 = 0, odd2[4];
    static const int64_t w_shape[] = {6, 1, 5, 5}, bias_shape[] = {10}, odd_shape[] = {2, 2};
    static const int64_t empty_shape[] = {0, 3};
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", w2, 4, w_shape, &err), CNNC_OK, &err);
    CHECK(memcmp(w, w2, sizeof w) == 0);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "fc.bias", bias2, 1, bias_shape, &err), CNNC_OK,
                 &err);
    CHECK(memcmp(bias, bias2, sizeof bias) == 0);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "scale", &scale2, 0, NULL, &err), CNNC_OK, &err);
    CHECK(scale2 == 2.5f);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, ODD_NAME, odd2, 2, odd_shape, &err), CNNC_OK, &err);
    CHECK(memcmp(odd, odd2, sizeof odd) == 0);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "empty", NULL, 2, empty_shape, &err), CNNC_OK, &err);

    /* Metadata. */
    CHECK_STR(cnnc_safetensors_metadata(st, "format"), "pt");
    CHECK_STR(cnnc_safetensors_metadata(st, "note"), "a \"quoted\"\tvalue\\ with\nnewline");
    CHECK_STR(cnnc_safetensors_metadata(st, "\xc3\xbcnic\xc3\xb6"
                                            "de"),
              "\xe2\x9c\x93");
    CHECK(cnnc_safetensors_metadata(st, "absent") == NULL);
    CHECK(cnnc_safetensors_metadata_count(st) == 3);
    CHECK_STR(cnnc_safetensors_metadata_key(st, 0), "format");
    CHECK_STR(cnnc_safetensors_metadata_key(st, 1), "note");
    CHECK(cnnc_safetensors_metadata_key(st, 3) == NULL);
    cnnc_safetensors_close(st);
    cnnc_safetensors_close(NULL);

    /* No tensors and no metadata: "{}" padded to 8 bytes. */
    TMP_PATH(empty_path, "no_tensors.safetensors");
    CHECK_STATUS(cnnc_safetensors_write_f32(empty_path, NULL, 0, NULL, &err), CNNC_OK, &err);
    bytes = read_bytes(empty_path, &size);
    CHECK(bytes != NULL && size == 16 && bytes[0] == 8 && memcmp(bytes + 8, "{}      ", 8) == 0);
    free(bytes);
    CHECK_STATUS(cnnc_safetensors_open(empty_path, &st, &err), CNNC_OK, &err);
    CHECK(cnnc_safetensors_count(st) == 0);
    CHECK(cnnc_safetensors_metadata(st, "format") == NULL);
    CHECK_STATUS(cnnc_safetensors_get(st, "x", &v, &err), CNNC_ERR_MISSING, &err);
    cnnc_safetensors_close(st);
}

static void test_safetensors_hand_written(void) {
    TMP_PATH(path, "hand.safetensors");
    cnnc_error err = {CNNC_OK, ""};
    cnnc_safetensors *st = NULL;
    cnnc_tensor_view v;

    /* \u escapes (with a surrogate pair), "\/", whitespace (after the first '{', which must
     * be the first byte), null metadata, unknown nested fields, an empty tensor sharing an
     * offset, a gap, and a header length that leaves the data unaligned. */
    const char *header =
        "{ \"\\u00e9\\ud83d\\ude00\\/x\" : { \"dtype\" : \"F32\", \"shape\" : [ 2 ],\n"
        "     \"data_offsets\" : [ 1 , 9 ], \"extra\": {\"a\": [1, -2.5e3, true, null, \"s\"]} },\n"
        "   \"__metadata__\": null,\n"
        "   \"z\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [1, 1]} }\t  ";
    unsigned char data[9] = {0};
    float values[2] = {1.25f, -7.0f};
    memcpy(data + 1, values, 8);
    write_safetensors_raw(path, header, data, sizeof data);
    CHECK((8 + strlen(header) + 1) % 4 != 0); /* the float data really is unaligned */
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_OK, &err);
    if (st != NULL) {
        CHECK(cnnc_safetensors_count(st) == 2);
        CHECK(cnnc_safetensors_metadata_count(st) == 0);
        const char *name = "\xc3\xa9\xf0\x9f\x98\x80/x";
        CHECK_STR(cnnc_safetensors_name(st, 0), name);
        float got[2] = {0, 0};
        const int64_t shape[] = {2};
        CHECK_STATUS(cnnc_safetensors_read_f32(st, name, got, 1, shape, &err), CNNC_OK, &err);
        CHECK(got[0] == 1.25f && got[1] == -7.0f);
        CHECK_STATUS(cnnc_safetensors_get(st, "z", &v, &err), CNNC_OK, &err);
        CHECK_STR(v.dtype, "U8");
        cnnc_safetensors_close(st);
    }

    /* Every dtype name is known, with its size. */
    write_safetensors_raw(path,
                          "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[8,10]},"
                          "\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[10,18]},"
                          "\"d\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[18,22]},"
                          "\"e\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[22,24]},"
                          "\"f\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[24,25]},"
                          "\"g\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[25,26]},"
                          "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[26,30]}}",
                          NULL, 30);
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_OK, &err);
    if (st != NULL) {
        CHECK(cnnc_safetensors_count(st) == 8);
        CHECK_STATUS(cnnc_safetensors_get(st, "h", &v, &err), CNNC_OK, &err);
        CHECK_STR(v.dtype, "F16");
        CHECK(v.nbytes == 4);
        float dst[2];
        const int64_t shape[] = {2};
        CHECK_STATUS(cnnc_safetensors_read_f32(st, "h", dst, 1, shape, &err), CNNC_ERR_DTYPE, &err);
        CHECK_STR(err.message, "tensor 'h': expected dtype F32, got F16");
        cnnc_safetensors_close(st);
    }
}

static void test_safetensors_read_errors(void) {
    TMP_PATH(path, "errors.safetensors");
    cnnc_error err = {CNNC_OK, ""};
    float w[54] = {0};
    const int64_t shape[] = {6, 1, 3, 3};
    const cnnc_tensor_f32 t = {"c1.weight", 4, shape, w};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &t, 1, NULL, &err), CNNC_OK, &err);
    cnnc_safetensors *st = NULL;
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_OK, &err);
    if (st == NULL) {
        return;
    }
    float dst[150];
    const int64_t want[] = {6, 1, 5, 5};
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", dst, 4, want, &err), CNNC_ERR_SHAPE,
                 &err);
    CHECK(err.status == CNNC_ERR_SHAPE);
    CHECK_STR(err.message, "tensor 'c1.weight': expected shape [6,1,5,5], got [6,1,3,3]");
    const int64_t flat[] = {54};
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", dst, 1, flat, &err), CNNC_ERR_SHAPE,
                 &err);
    CHECK_STR(err.message, "tensor 'c1.weight': expected shape [54], got [6,1,3,3]");
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", dst, 0, NULL, &err), CNNC_ERR_SHAPE,
                 &err);
    CHECK_STR(err.message, "tensor 'c1.weight': expected shape [], got [6,1,3,3]");

    /* Missing tensors. */
    cnnc_tensor_view v;
    CHECK_STATUS(cnnc_safetensors_get(st, "nope", &v, &err), CNNC_ERR_MISSING, &err);
    char expected[600];
    snprintf(expected, sizeof expected, "tensor 'nope' not found in %s", path);
    CHECK_STR(err.message, expected);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "nope", dst, 4, want, &err), CNNC_ERR_MISSING, &err);
    CHECK_STR(err.message, expected);

    /* Bad arguments. */
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", dst, -1, want, &err), CNNC_ERR_ARGUMENT,
                 &err);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", dst, 9, want, &err), CNNC_ERR_ARGUMENT,
                 &err);
    CHECK_STATUS(cnnc_safetensors_read_f32(st, "c1.weight", NULL, 4, shape, &err),
                 CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_safetensors_get(st, NULL, &v, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_safetensors_get(NULL, "x", &v, NULL), CNNC_ERR_ARGUMENT, NULL);
    CHECK(cnnc_safetensors_count(NULL) == 0);
    CHECK(cnnc_safetensors_metadata(NULL, "x") == NULL);
    cnnc_safetensors_close(st);
}

/* A malformed header and the status and message text it must produce. */
typedef struct {
    const char *header;
    size_t data_len;
    cnnc_status status;
    const char *message_part;
} broken_case;

static const broken_case k_broken_headers[] = {
    {"hello world!", 0, CNNC_ERR_FORMAT, "invalid json in header at byte 0: expected '{'"},
    {"", 0, CNNC_ERR_FORMAT, "invalid json in header at byte 0"},
    {"[]", 0, CNNC_ERR_FORMAT, "expected '{'"},
    {"\"a\"", 0, CNNC_ERR_FORMAT, "expected '{'"},
    {"{\"a\": {\"dtype\": \"F32\", \"sha", 0, CNNC_ERR_FORMAT, "unterminated string"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", 8, CNNC_ERR_FORMAT,
     "expected ',' or '}'"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2", 0, CNNC_ERR_FORMAT, "expected ',' or ']'"},
    {"{\"a\": {\"dtype\": \"F33\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, CNNC_ERR_DTYPE,
     "tensor 'a': unknown dtype 'F33'"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, CNNC_ERR_FORMAT,
     "tensor 'a': shape [3] of F32 needs 12 bytes, data_offsets [0,8] hold 8"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, CNNC_ERR_FORMAT,
     "tensor 'a': data_offsets [0,16] exceed the data buffer of 8 bytes"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [100, 108]}}", 8,
     CNNC_ERR_FORMAT, "exceed the data buffer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, CNNC_ERR_FORMAT,
     "tensor 'a': data_offsets [8,0] end before they begin"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
     12, CNNC_ERR_FORMAT, "tensors 'a' and 'b' overlap: data_offsets [0,8] and [4,12]"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
     " \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}}",
     16, CNNC_ERR_FORMAT, "overlap"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
     8, CNNC_ERR_FORMAT, "duplicate tensor name 'a'"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, CNNC_ERR_FORMAT,
     "tensor 'a': missing field 'data_offsets'"},
    {"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, CNNC_ERR_FORMAT,
     "tensor 'a': missing field 'dtype'"},
    {"{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
     4, CNNC_ERR_FORMAT, "duplicate field 'dtype'"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, CNNC_ERR_FORMAT,
     "expected a non-negative integer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.0], \"data_offsets\": [0, 4]}}", 4,
     CNNC_ERR_FORMAT, "expected an integer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [01], \"data_offsets\": [0, 4]}}", 4, CNNC_ERR_FORMAT,
     "leading zero"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 99999999999999999999]}}",
     4, CNNC_ERR_FORMAT, "integer too large"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [9223372036854775808], \"data_offsets\": [0, 4]}}", 4,
     CNNC_ERR_FORMAT, "integer too large"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
     CNNC_ERR_SHAPE, "tensor 'a': more than 8 dimensions are not supported"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296],"
     " \"data_offsets\": [0, 0]}}",
     0, CNNC_ERR_FORMAT, "tensor 'a': shape [4294967296,4294967296,4294967296] is too large"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
     CNNC_ERR_FORMAT, "tensor 'a': data_offsets must have 2 entries"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, CNNC_ERR_FORMAT,
     "tensor 'a': data_offsets must have 2 entries"},
    {"{\"a\": 5}", 0, CNNC_ERR_FORMAT, "expected '{' for a tensor entry"},
    {"{} x", 0, CNNC_ERR_FORMAT, "unexpected text after the header object"},
    {"{\"a\\q\": {}}", 0, CNNC_ERR_FORMAT, "invalid escape in string"},
    {"{\"a\\u12\": {}}", 0, CNNC_ERR_FORMAT, "invalid \\u escape"},
    {"{\"a\\udc00\": {}}", 0, CNNC_ERR_FORMAT, "unpaired surrogate"},
    {"{\"a\\ud800x\": {}}", 0, CNNC_ERR_FORMAT, "unpaired surrogate"},
    {"{\"a\\u0000\": {}}", 0, CNNC_ERR_FORMAT, "\\u0000 is not allowed"},
    {"{\"a\tb\": {}}", 0, CNNC_ERR_FORMAT, "control character in string"},
    {"{\"a\xff\": {}}", 0, CNNC_ERR_FORMAT, "invalid utf-8 in string"},
    {"{\"a\xc0\xaf\": {}}", 0, CNNC_ERR_FORMAT, "invalid utf-8 in string"},
    {"{\"a\xed\xa0\x80\": {}}", 0, CNNC_ERR_FORMAT, "invalid utf-8 in string"},
    {"{\"a\xe2\x82\": {}}", 0, CNNC_ERR_FORMAT, "invalid utf-8 in string"},
    {"{\"a\\", 0, CNNC_ERR_FORMAT, "unterminated string"},
    {"{\"__metadata__\": {\"k\": 1}}", 0, CNNC_ERR_FORMAT,
     "metadata value for 'k' is not a string"},
    {"{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0, CNNC_ERR_FORMAT,
     "duplicate metadata key 'k'"},
    {"{\"__metadata__\": {}, \"__metadata__\": {}}", 0, CNNC_ERR_FORMAT,
     "duplicate '__metadata__' entry"},
    {"{\"__metadata__\": [\"k\"]}", 0, CNNC_ERR_FORMAT, "expected '{' for __metadata__"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4], \"x\": tru}}", 4,
     CNNC_ERR_FORMAT, "unexpected character"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4], \"x\": 1.}}", 4,
     CNNC_ERR_FORMAT, "invalid number"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4], \"x\": [1,]}}", 4,
     CNNC_ERR_FORMAT, "unexpected character"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4],}}", 4, CNNC_ERR_FORMAT,
     "expected a string"},
};

/* Builds "<prefix><n copies of unit><suffix>" as a header. */
static char *repeat_header(const char *prefix, const char *unit, size_t n) {
    size_t p = strlen(prefix), u = strlen(unit);
    char *s = malloc(p + u * n + 1);
    memcpy(s, prefix, p);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + p + i * u, unit, u);
    }
    s[p + u * n] = 0;
    return s;
}

/* Opens path expecting status `want`; checks the handle is NULL and the message starts
 * with the path and contains `part`. */
#define CHECK_OPEN_FAILS(path, want, part) check_open_fails((path), (want), (part), __LINE__)

static void check_open_fails(const char *path, cnnc_status want, const char *part, int line) {
    cnnc_error err = {CNNC_OK, ""};
    cnnc_safetensors *st = (cnnc_safetensors *)&err; /* must be overwritten with NULL */
    cnnc_status s = cnnc_safetensors_open(path, &st, &err);
    check_status(s, want, &err, "cnnc_safetensors_open", __FILE__, line);
    check(st == NULL, "st == NULL after a failed open", __FILE__, line);
    check(err.status == want, "err.status == want", __FILE__, line);
    check_contains(err.message, part, __FILE__, line);
    if (s != CNNC_ERR_IO) {
        check(strncmp(err.message, path, strlen(path)) == 0, "message starts with the path",
              __FILE__, line);
    }
    if (s == CNNC_OK) {
        cnnc_safetensors_close(st);
    }
}

static void test_safetensors_broken_files(void) {
    TMP_PATH(path, "broken.safetensors");

    /* Files too short for the length prefix, and missing files. */
    write_bytes(path, "", 0);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT,
                     "file of 0 bytes is too small for a safetensors header");
    write_bytes(path, "abc", 3);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT, "file of 3 bytes is too small");
    TMP_PATH(missing, "does_not_exist.safetensors");
    CHECK_OPEN_FAILS(missing, CNNC_ERR_IO, "cannot open");
    CHECK_OPEN_FAILS(g_dir, CNNC_ERR_IO, "");

    /* Header lengths beyond the file. */
    unsigned char bytes[100];
    memset(bytes, ' ', sizeof bytes);
    put_le64(bytes, 123456);
    write_bytes(path, bytes, sizeof bytes);
    cnnc_error err = {CNNC_OK, ""};
    cnnc_safetensors *st = NULL;
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_ERR_FORMAT, &err);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: header length 123456 exceeds file size 100", path);
    CHECK_STR(err.message, expected);
    put_le64(bytes, UINT64_MAX);
    write_bytes(path, bytes, sizeof bytes);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT,
                     "header length 18446744073709551615 exceeds file size 100");
    put_le64(bytes, 96);
    write_bytes(path, bytes, sizeof bytes);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT,
                     "header length 96 plus the 8-byte length prefix exceeds file size 100");

    /* Malformed headers. */
    for (size_t i = 0; i < sizeof k_broken_headers / sizeof k_broken_headers[0]; i++) {
        const broken_case *c = &k_broken_headers[i];
        write_safetensors_raw(path, c->header, NULL, c->data_len);
        err.message[0] = 0;
        cnnc_status s = cnnc_safetensors_open(path, &st, &err);
        if (s != c->status || strstr(err.message, c->message_part) == NULL) {
            g_failed++;
            printf("%s:%d: broken header %zu: got status %d, message \"%s\"; expected status %d "
                   "with \"%s\"\n",
                   __FILE__, __LINE__, i, (int)s, err.message, (int)c->status, c->message_part);
        } else {
            g_passed++;
        }
        CHECK(st == NULL);
        cnnc_safetensors_close(st);
    }

    /* Deep nesting: the parser must fail cleanly, never recurse without bound. */
    const size_t depth = 100000;
    char *deep = repeat_header("", "[", depth);
    write_safetensors_raw(path, deep, NULL, 0);
    free(deep);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT, "expected '{'");
    deep = repeat_header("", "{", depth);
    write_safetensors_raw(path, deep, NULL, 0);
    free(deep);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT, "expected a string");
    deep = repeat_header("{\"a\":", "[", depth);
    write_safetensors_raw(path, deep, NULL, 0);
    free(deep);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT, "expected '{' for a tensor entry");
    deep = repeat_header(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":", "[", depth);
    write_safetensors_raw(path, deep, NULL, 4);
    free(deep);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT, "nesting too deep");
    deep = repeat_header("{\"a\":{\"x\":", "{\"k\":", depth);
    write_safetensors_raw(path, deep, NULL, 0);
    free(deep);
    CHECK_OPEN_FAILS(path, CNNC_ERR_FORMAT, "nesting too deep");

    /* Nesting up to the limit inside an unknown field is fine. */
    char *ok_nested = repeat_header(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":", "[", 60);
    size_t len = strlen(ok_nested);
    ok_nested = realloc(ok_nested, len + 60 + 3);
    memset(ok_nested + len, ']', 60);
    memcpy(ok_nested + len + 60, "}}", 3);
    write_safetensors_raw(path, ok_nested, NULL, 4);
    free(ok_nested);
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_OK, &err);
    cnnc_safetensors_close(st);
}

/* Every prefix of a valid file fails; random byte changes never crash (the sanitizer
 * build turns any out-of-bounds access into a failure). */
static void test_safetensors_truncation_and_mutation(void) {
    TMP_PATH(path, "valid.safetensors");
    TMP_PATH(bad, "mutated.safetensors");
    float w[150], bias[10], scale, odd[4];
    cnnc_error err = {CNNC_OK, ""};
    CHECK_STATUS(write_sample_safetensors(path, w, bias, &scale, odd, &err), CNNC_OK, &err);
    size_t size;
    unsigned char *valid = read_bytes(path, &size);
    if (valid == NULL) {
        CHECK(valid != NULL);
        return;
    }
    int prefixes_rejected = 1;
    for (size_t len = 0; len < size; len++) {
        write_bytes(bad, valid, len);
        cnnc_safetensors *st = NULL;
        cnnc_status s = cnnc_safetensors_open(bad, &st, &err);
        if (s != CNNC_ERR_FORMAT || st != NULL) {
            prefixes_rejected = 0;
            printf("%s:%d: prefix of %zu bytes: status %d\n", __FILE__, __LINE__, len, (int)s);
        }
        cnnc_safetensors_close(st);
    }
    CHECK(prefixes_rejected);

    cnnc_rng rng = {7, 0};
    unsigned char *copy = malloc(size);
    int views_in_bounds = 1, opened = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(copy, valid, size);
        int changes = 1 + (int)(cnnc_rng_next_u64(&rng) % 4);
        for (int k = 0; k < changes; k++) {
            /* Mostly header bytes (where the parser works), sometimes the length prefix. */
            size_t at = (size_t)(cnnc_rng_next_u64(&rng) % (size < 400 ? size : 400));
            copy[at] = (unsigned char)cnnc_rng_next_u64(&rng);
        }
        write_bytes(bad, copy, size);
        cnnc_safetensors *st = NULL;
        cnnc_status s = cnnc_safetensors_open(bad, &st, &err);
        if (s != CNNC_OK) {
            continue;
        }
        opened++;
        for (size_t i = 0; i < cnnc_safetensors_count(st); i++) {
            cnnc_tensor_view v;
            if (cnnc_safetensors_get(st, cnnc_safetensors_name(st, i), &v, &err) != CNNC_OK) {
                views_in_bounds = 0;
                continue;
            }
            /* Touch every byte of the view. */
            unsigned sum = 0;
            for (size_t b = 0; b < v.nbytes; b++) {
                sum += ((const unsigned char *)v.data)[b];
            }
            (void)sum;
        }
        cnnc_safetensors_close(st);
    }
    CHECK(views_in_bounds);
    CHECK(opened < 1500); /* most mutations break the file */
    free(copy);
    free(valid);
}

static void test_safetensors_write_errors(void) {
    TMP_PATH(path, "write_errors.safetensors");
    cnnc_error err = {CNNC_OK, ""};
    float data[4] = {1, 2, 3, 4};
    const int64_t shape[] = {4};
    const int64_t negative[] = {-4};
    const int64_t deep[] = {1, 1, 1, 1, 1, 1, 1, 1, 4};

    const cnnc_tensor_f32 dup[] = {
        {"a", 1, shape, data}, {"b", 1, shape, data}, {"a", 1, shape, data}};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, dup, 3, NULL, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STR(err.message, "duplicate tensor name 'a'");
    const cnnc_tensor_f32 reserved = {"__metadata__", 1, shape, data};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &reserved, 1, NULL, &err), CNNC_ERR_ARGUMENT,
                 &err);
    const cnnc_tensor_f32 empty_name = {"", 1, shape, data};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &empty_name, 1, NULL, &err), CNNC_ERR_ARGUMENT,
                 &err);
    const cnnc_tensor_f32 bad_utf8 = {"a\xff", 1, shape, data};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &bad_utf8, 1, NULL, &err), CNNC_ERR_ARGUMENT,
                 &err);
    const cnnc_tensor_f32 too_deep = {"a", 9, deep, data};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &too_deep, 1, NULL, &err), CNNC_ERR_ARGUMENT,
                 &err);
    const cnnc_tensor_f32 neg = {"a", 1, negative, data};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &neg, 1, NULL, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STR(err.message, "tensor 'a': invalid shape [-4]");
    const cnnc_tensor_f32 no_data = {"a", 1, shape, NULL};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &no_data, 1, NULL, &err), CNNC_ERR_ARGUMENT,
                 &err);
    const cnnc_tensor_f32 good = {"a", 1, shape, data};
    const char *const no_value[] = {"k", NULL};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &good, 1, no_value, &err), CNNC_ERR_ARGUMENT,
                 &err);
    CHECK_STR(err.message, "metadata key 'k' has no value");
    const char *const dup_keys[] = {"k", "1", "j", "2", "k", "3", NULL};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &good, 1, dup_keys, &err), CNNC_ERR_ARGUMENT,
                 &err);
    CHECK_STR(err.message, "duplicate metadata key 'k'");
    CHECK_STATUS(cnnc_safetensors_write_f32(NULL, &good, 1, NULL, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_safetensors_write_f32(path, NULL, 1, NULL, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK(access(path, F_OK) != 0); /* nothing was written */

    TMP_PATH(unwritable, "no_such_dir/x.safetensors");
    CHECK_STATUS(cnnc_safetensors_write_f32(unwritable, &good, 1, NULL, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "cannot create");
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &good, 1, NULL, NULL), CNNC_OK, NULL);
}

/* ---------------------------------------------------------------------------------------
 * .npy
 * ------------------------------------------------------------------------------------- */

/* Writes an array, checks the header bytes NumPy would write, and reads it back. */
static void npy_round_trip(const char *name, int ndim, const int64_t *shape, size_t count,
                           const char *shape_text) {
    TMP_PATH(path, name);
    float *data = malloc((count > 0 ? count : 1) * sizeof(float));
    for (size_t i = 0; i < count; i++) {
        data[i] = (float)i * 0.25f - 1.0f;
    }
    if (count > 1) {
        data[1] = -0.0f;
    }
    cnnc_error err = {CNNC_OK, ""};
    CHECK_STATUS(cnnc_npy_write_f32(path, data, ndim, shape, &err), CNNC_OK, &err);

    size_t size;
    unsigned char *bytes = read_bytes(path, &size);
    if (bytes != NULL && size >= 10) {
        size_t header_len = bytes[8] | (size_t)bytes[9] << 8;
        CHECK(memcmp(bytes, "\x93NUMPY\x01\x00", 8) == 0);
        CHECK((10 + header_len) % 64 == 0);
        CHECK(size == 10 + header_len + count * 4);
        CHECK(bytes[10 + header_len - 1] == '\n');
        char expected[128];
        snprintf(expected, sizeof expected,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape_text);
        CHECK(memcmp(bytes + 10, expected, strlen(expected)) == 0);
        for (size_t i = 10 + strlen(expected); i < 10 + header_len - 1; i++) {
            CHECK(bytes[i] == ' ');
        }
    } else {
        CHECK(bytes != NULL && size >= 10);
    }
    free(bytes);

    cnnc_array_f32 a;
    CHECK_STATUS(cnnc_npy_read_f32(path, &a, &err), CNNC_OK, &err);
    CHECK(a.ndim == ndim);
    for (int i = 0; i < ndim && i < a.ndim; i++) {
        CHECK(a.shape[i] == shape[i]);
    }
    CHECK(a.count == count);
    CHECK(a.data != NULL && (uintptr_t)a.data % 64 == 0);
    CHECK(a.data != NULL && memcmp(a.data, data, count * sizeof(float)) == 0);
    cnnc_array_f32_free(&a);
    CHECK(a.data == NULL && a.count == 0);
    free(data);
}

static void test_npy_round_trip(void) {
    const int64_t five[] = {5};
    const int64_t four_d[] = {2, 3, 4, 5};
    const int64_t two_d[] = {2, 3};
    const int64_t empty[] = {0, 4};
    npy_round_trip("scalar.npy", 0, NULL, 1, "()");
    npy_round_trip("vector.npy", 1, five, 5, "(5,)");
    npy_round_trip("matrix.npy", 2, two_d, 6, "(2, 3)");
    npy_round_trip("tensor.npy", 4, four_d, 120, "(2, 3, 4, 5)");
    npy_round_trip("empty.npy", 2, empty, 0, "(0, 4)");

    /* The exact size NumPy gives a (2, 3) float32 file: 128 header bytes plus 24. */
    TMP_PATH(path, "matrix.npy");
    size_t size;
    unsigned char *bytes = read_bytes(path, &size);
    CHECK(size == 128 + 24);
    free(bytes);
}

static void test_npy_conversions(void) {
    TMP_PATH(path, "convert.npy");
    cnnc_error err = {CNNC_OK, ""};
    cnnc_array_f32 f;
    cnnc_array_i64 l;

    /* '<f8' to float32. */
    unsigned char f8[24];
    const double doubles[3] = {1.5, -2.25, 1e10};
    for (int i = 0; i < 3; i++) {
        uint64_t bits;
        memcpy(&bits, &doubles[i], 8);
        put_le64(f8 + 8 * i, bits);
    }
    write_npy_raw(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8, 24);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.ndim == 1 && f.shape[0] == 3 && f.count == 3);
    CHECK(f.data[0] == 1.5f && f.data[1] == -2.25f && f.data[2] == 1e10f);
    cnnc_array_f32_free(&f);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_ERR_DTYPE, &err);
    char expected[700];
    snprintf(expected, sizeof expected, "%s: expected an integer dtype, got '<f8'", path);
    CHECK_STR(err.message, expected);
    CHECK(l.data == NULL && l.count == 0);

    /* '|u1' (2, 2) to both. */
    const unsigned char u1[4] = {0, 1, 128, 255};
    write_npy_raw(path, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", u1, 4);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.ndim == 2 && f.count == 4);
    CHECK(f.data[0] == 0.0f && f.data[1] == 1.0f && f.data[2] == 128.0f && f.data[3] == 255.0f);
    cnnc_array_f32_free(&f);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.count == 4 && l.data[0] == 0 && l.data[1] == 1 && l.data[2] == 128 && l.data[3] == 255);
    cnnc_array_i64_free(&l);

    /* '<i8' including the extremes. */
    unsigned char i8[32];
    put_le64(i8, (uint64_t)-5);
    put_le64(i8 + 8, 0);
    put_le64(i8 + 16, (uint64_t)1 << 40);
    put_le64(i8 + 24, (uint64_t)1 << 63);
    write_npy_raw(path, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", i8, 32);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.count == 4 && l.data[0] == -5 && l.data[1] == 0 && l.data[2] == (int64_t)1 << 40 &&
          l.data[3] == INT64_MIN);
    cnnc_array_i64_free(&l);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.data[0] == -5.0f && f.data[2] == 1099511627776.0f);
    cnnc_array_f32_free(&f);

    /* Narrower integers and bools. */
    const unsigned char i4[8] = {0xF9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    write_npy_raw(path, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", i4, 8);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.count == 2 && l.data[0] == -7 && l.data[1] == 2147483647);
    cnnc_array_i64_free(&l);
    const unsigned char u4[4] = {0x00, 0x28, 0x6B, 0xEE}; /* 4000000000 */
    write_npy_raw(path, 1, "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", u4, 4);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.count == 1 && l.data[0] == 4000000000LL);
    cnnc_array_i64_free(&l);
    const unsigned char i2[4] = {0xD4, 0xFE, 0xFF, 0xFF}; /* -300, -1 */
    write_npy_raw(path, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", i2, 4);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.count == 2 && f.data[0] == -300.0f && f.data[1] == -1.0f);
    cnnc_array_f32_free(&f);
    write_npy_raw(path, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", i2, 4);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.count == 2 && l.data[0] == 65236 && l.data[1] == 65535);
    cnnc_array_i64_free(&l);
    const unsigned char i1[3] = {0x80, 0x7F, 0xFF};
    write_npy_raw(path, 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }", i1, 3);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.count == 3 && l.data[0] == -128 && l.data[1] == 127 && l.data[2] == -1);
    cnnc_array_i64_free(&l);
    const unsigned char b1[3] = {0, 1, 2};
    write_npy_raw(path, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", b1, 3);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.count == 3 && f.data[0] == 0.0f && f.data[1] == 1.0f && f.data[2] == 1.0f);
    cnnc_array_f32_free(&f);

    /* Versions 2.0 and 3.0, key order, double quotes, Python 2 longs, trailing bytes. */
    float values[2] = {0.5f, -8.0f};
    write_npy_raw(path, 2, "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", values, 8);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.count == 2 && f.data[0] == 0.5f && f.data[1] == -8.0f);
    cnnc_array_f32_free(&f);
    write_npy_raw(path, 3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1L, 2L)}",
                  values, 8);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.ndim == 2 && f.shape[0] == 1 && f.shape[1] == 2 && f.data[1] == -8.0f);
    cnnc_array_f32_free(&f);
    unsigned char with_tail[12] = {0};
    memcpy(with_tail, values, 8);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", with_tail,
                  12);
    CHECK_STATUS(cnnc_npy_read_f32(path, &f, &err), CNNC_OK, &err);
    CHECK(f.count == 2 && f.data[1] == -8.0f);
    cnnc_array_f32_free(&f);

    /* A 0-d integer array. */
    const unsigned char seven[8] = {7};
    write_npy_raw(path, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", seven, 8);
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_OK, &err);
    CHECK(l.ndim == 0 && l.count == 1 && l.data[0] == 7);
    cnnc_array_i64_free(&l);
}

/* Reads path expecting `want` and the exact message "<path>: <text>" (or, with
 * exact == 0, a message containing text). */
#define CHECK_NPY_FAILS(path, want, text, exact) \
    check_npy_fails((path), (want), (text), (exact), __LINE__)

static void check_npy_fails(const char *path, cnnc_status want, const char *text, int exact,
                            int line) {
    cnnc_error err = {CNNC_OK, ""};
    cnnc_array_f32 a;
    cnnc_status s = cnnc_npy_read_f32(path, &a, &err);
    check_status(s, want, &err, "cnnc_npy_read_f32", __FILE__, line);
    check(a.data == NULL && a.count == 0 && a.ndim == 0, "array zeroed after failure", __FILE__,
          line);
    if (exact) {
        char expected[700];
        snprintf(expected, sizeof expected, "%s: %s", path, text);
        check_str(err.message, expected, __FILE__, line);
    } else {
        check_contains(err.message, text, __FILE__, line);
    }
    if (s == CNNC_OK) {
        cnnc_array_f32_free(&a);
    }
}

static void test_npy_errors(void) {
    TMP_PATH(path, "bad.npy");
    unsigned char data[24] = {0};

    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data, 24);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "fortran-order arrays are not supported", 1);
    write_npy_raw(path, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data, 24);
    CHECK_NPY_FAILS(path, CNNC_ERR_DTYPE, "big-endian arrays are not supported (dtype '>f4')", 1);
    write_npy_raw(path, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data, 24);
    CHECK_NPY_FAILS(path, CNNC_ERR_DTYPE, "unsupported dtype '<c8'", 1);
    write_npy_raw(path, 1, "{'descr': '|f4', 'fortran_order': False, 'shape': (3,), }", data, 24);
    CHECK_NPY_FAILS(path, CNNC_ERR_DTYPE, "unsupported dtype '|f4'", 1);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "truncated data: expected 24 bytes, got 8", 1);
    write_npy_raw(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (5000,), }", data,
                  24);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "truncated data: expected 40000 bytes, got 24", 1);
    write_npy_raw(path, 1,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", data,
                  4);
    CHECK_NPY_FAILS(path, CNNC_ERR_SHAPE, "more than 8 dimensions are not supported", 1);
    write_npy_raw(path, 1,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                  data, 4);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "array shape [4294967296,4294967296] is too large", 1);

    /* Broken headers. */
    write_npy_raw(path, 1, "hello", data, 4);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "invalid npy header: expected '{'", 1);
    write_npy_raw(path, 1, "{'descr': '<f4', 'shape': (2,), }", data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "invalid npy header: missing key 'fortran_order'", 1);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", data,
                  8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "invalid npy header: unexpected or repeated key 'x'", 1);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}",
                  data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "unexpected or repeated key 'shape'", 0);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "expected True or False", 0);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "expected a non-negative integer in 'shape'", 0);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", data, 24);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "expected ',' or ')' in 'shape'", 0);
    write_npy_raw(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "unexpected text after the dict", 0);
    write_npy_raw(path, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                  data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "expected a string", 0);
    write_npy_raw(path, 1, "{'descr': '<f4", data, 8);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "invalid npy header", 0);

    /* Broken prefixes. */
    write_bytes(path, "", 0);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "file of 0 bytes is too small for a npy header", 1);
    write_bytes(path, "\x93NUM", 4);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "file of 4 bytes is too small for a npy header", 1);
    write_bytes(path, "PK\x03\x04 not a npy file at all", 26);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "not a npy file (bad magic)", 1);
    write_bytes(path, "\x93NUMPY\x04\x00\x10\x00{}", 12);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "unsupported npy version 4.0", 1);
    write_bytes(path, "\x93NUMPY\x01\x00\x76", 9);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "truncated npy header length", 1);
    write_bytes(path, "\x93NUMPY\x01\x00\x76\x00{'descr'", 17);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT, "truncated header: expected 118 bytes, got 7", 1);
    write_bytes(path, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
    CHECK_NPY_FAILS(path, CNNC_ERR_FORMAT,
                    "npy header length 4294967295 exceeds the limit of 1048576 bytes", 1);
    TMP_PATH(missing, "missing.npy");
    CHECK_NPY_FAILS(missing, CNNC_ERR_IO, "cannot open", 0);

    /* Writer arguments. */
    cnnc_error err = {CNNC_OK, ""};
    const int64_t deep[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int64_t negative[] = {-1};
    const int64_t two[] = {2};
    float values[2] = {1, 2};
    TMP_PATH(out, "written.npy");
    CHECK_STATUS(cnnc_npy_write_f32(out, values, 9, deep, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_npy_write_f32(out, values, 1, negative, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_npy_write_f32(out, NULL, 1, two, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_npy_write_f32(out, values, 1, NULL, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK_STATUS(cnnc_npy_write_f32(NULL, values, 1, two, &err), CNNC_ERR_ARGUMENT, &err);
    CHECK(access(out, F_OK) != 0);
    TMP_PATH(unwritable, "no_such_dir/x.npy");
    CHECK_STATUS(cnnc_npy_write_f32(unwritable, values, 1, two, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "cannot create");
    CHECK_STATUS(cnnc_npy_read_f32(out, NULL, &err), CNNC_ERR_ARGUMENT, &err);
    cnnc_array_f32_free(NULL);
    cnnc_array_i64_free(NULL);
}

/* ---------------------------------------------------------------------------------------
 * Random numbers
 * ------------------------------------------------------------------------------------- */

static void test_rng(void) {
    /* With seed -G the key is 0, so the stream is SplitMix64 seeded with 0, whose first
     * outputs are published. */
    const uint64_t minus_gamma = (uint64_t)0 - UINT64_C(0x9E3779B97F4A7C15);
    CHECK(cnnc_rng_hash(minus_gamma, 0) == UINT64_C(0xE220A8397B1DCDAF));
    CHECK(cnnc_rng_hash(minus_gamma, 1) == UINT64_C(0x6E789E6AA1B965F4));
    CHECK(cnnc_rng_hash(minus_gamma, 2) == UINT64_C(0x06C45D188009454F));
    /* Values for small seeds, computed independently in Python. */
    CHECK(cnnc_rng_hash(0, 0) == UINT64_C(0xA706DD2F4D197E6F));
    CHECK(cnnc_rng_hash(0, 1) == UINT64_C(0xB382A305F4414F5E));
    CHECK(cnnc_rng_hash(0, 2) == UINT64_C(0x631A9154FBABF717));
    CHECK(cnnc_rng_hash(42, 0) == UINT64_C(0x57E1FABA65107204));
    CHECK(cnnc_rng_hash(42, 1) == UINT64_C(0xF4ABD143FEB24055));
    CHECK(cnnc_rng_hash(42, 2) == UINT64_C(0x7C816738C12903B2));
    CHECK(cnnc_rng_uniform(42, 0) == 5759482.0f / 16777216.0f);

    /* Pure functions of (seed, counter); different seeds differ. */
    CHECK(cnnc_rng_hash(5, 1000) == cnnc_rng_hash(5, 1000));
    CHECK(cnnc_rng_uniform(5, 1000) == cnnc_rng_uniform(5, 1000));
    CHECK(cnnc_rng_hash(1, 0) != cnnc_rng_hash(2, 0));
    CHECK(cnnc_rng_hash(1, 1) != cnnc_rng_hash(2, 0));

    /* The sequential generator walks the counters. */
    cnnc_rng r = {42, 0};
    CHECK(cnnc_rng_next_u64(&r) == UINT64_C(0x57E1FABA65107204));
    CHECK(cnnc_rng_next_u64(&r) == UINT64_C(0xF4ABD143FEB24055));
    CHECK(r.counter == 2);
    CHECK(cnnc_rng_next_uniform(&r) == cnnc_rng_uniform(42, 2));
    CHECK(r.counter == 3);
    cnnc_rng n = {9, 0};
    int normals_match = 1;
    for (uint64_t c = 0; c < 10; c++) {
        normals_match &= cnnc_rng_next_normal(&n) == cnnc_rng_normal(9, c);
    }
    CHECK(normals_match);
    CHECK(n.counter == 20);

    /* Uniforms lie in [0, 1) with mean 1/2 and variance 1/12. */
    const int samples = 100000;
    cnnc_rng u = {123, 0};
    double sum = 0, sum_sq = 0;
    int in_range = 1;
    for (int i = 0; i < samples; i++) {
        float x = cnnc_rng_next_uniform(&u);
        in_range &= x >= 0.0f && x < 1.0f;
        sum += x;
        sum_sq += (double)x * x;
    }
    double mean = sum / samples, var = sum_sq / samples - mean * mean;
    CHECK(in_range);
    CHECK(fabs(mean - 0.5) < 0.01);
    CHECK(fabs(var - 1.0 / 12.0) < 0.005);

    /* Normals have mean 0 and variance 1; all finite. */
    cnnc_rng g = {2024, 0};
    sum = sum_sq = 0;
    int finite = 1;
    for (int i = 0; i < samples; i++) {
        float x = cnnc_rng_next_normal(&g);
        finite &= isfinite(x) != 0;
        sum += x;
        sum_sq += (double)x * x;
    }
    mean = sum / samples;
    var = sum_sq / samples - mean * mean;
    CHECK(finite);
    CHECK(fabs(mean) < 0.02);
    CHECK(fabs(var - 1.0) < 0.03);
}

/* ---------------------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------
 * The safetensors specification shared with the Swift reader (tests/safetensors_spec.txt,
 * whose header describes the format): every case's file is built, every tensor read as
 * float32, and the verdict (and, when accepted, each tensor's shape and bytes) checked.
 * ------------------------------------------------------------------------------------- */

#define SPEC_PATH "tests/safetensors_spec.txt"

/* Splits `line` at " | " into at most `max` fields (the last takes the rest); returns the
 * count. */
static int spec_fields(char *line, char **fields, int max) {
    int n = 0;
    fields[n++] = line;
    while (n < max) {
        char *bar = strstr(fields[n - 1], " | ");
        if (bar == NULL) {
            break;
        }
        *bar = 0;
        fields[n++] = bar + 3;
    }
    return n;
}

/* Decodes the header field's \xHH escapes into out; returns the length. */
static size_t spec_header(const char *text, unsigned char *out) {
    size_t n = 0;
    for (const char *p = text; *p != 0; p++) {
        unsigned int byte;
        if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%2x", &byte) == 1) {
            out[n++] = (unsigned char)byte;
            p += 3;
        } else {
            out[n++] = (unsigned char)*p;
        }
    }
    return n;
}

/* Reads every tensor of the open file as float32 with its own shape; 1 when all succeed. */
static int spec_read_all(const cnnc_safetensors *st) {
    for (size_t i = 0; i < cnnc_safetensors_count(st); i++) {
        cnnc_error err = {CNNC_OK, ""};
        cnnc_tensor_view v;
        if (cnnc_safetensors_get(st, cnnc_safetensors_name(st, i), &v, &err) != CNNC_OK) {
            return 0;
        }
        float *dst = malloc(v.nbytes + 4);
        cnnc_status s = cnnc_safetensors_read_f32(st, v.name, dst, v.ndim, v.shape, &err);
        free(dst);
        if (s != CNNC_OK) {
            return 0;
        }
    }
    return 1;
}

/* Checks an accepted file against "NAME[d0,...]@OFF ..." (or "-"): count, shapes, bytes. */
static void spec_check_tensors(const char *name, const cnnc_safetensors *st, char *expected,
                               const unsigned char *data) {
    size_t count = 0;
    for (char *item = strtok(expected, " "); item != NULL && strcmp(item, "-") != 0;
         item = strtok(NULL, " ")) {
        count++;
        char *bracket = strchr(item, '['), *at = strrchr(item, '@');
        if (bracket == NULL || at == NULL) {
            printf("%s: case '%s': bad tensor '%s'\n", SPEC_PATH, name, item);
            g_failed++;
            continue;
        }
        *bracket = 0;
        int64_t shape[CNNC_MAX_DIMS];
        int ndim = 0;
        uint64_t elements = 1;
        for (char *d = bracket + 1; *d != ']' && ndim < CNNC_MAX_DIMS;) {
            char *end;
            shape[ndim] = strtoll(d, &end, 10);
            elements *= (uint64_t)shape[ndim++];
            d = *end == ',' ? end + 1 : end;
        }
        size_t offset = (size_t)strtoull(at + 1, NULL, 10);
        cnnc_error err = {CNNC_OK, ""};
        float values[64];
        cnnc_status s = cnnc_safetensors_read_f32(st, item, values, ndim, shape, &err);
        if (s != CNNC_OK || memcmp(values, data + offset, (size_t)elements * 4) != 0) {
            printf("%s: case '%s': tensor '%s' not read as expected: %s\n", SPEC_PATH, name, item,
                   s != CNNC_OK ? err.message : "other bytes");
            g_failed++;
        } else {
            g_passed++;
        }
    }
    CHECK(cnnc_safetensors_count(st) == count);
}

static void test_safetensors_specification(void) {
    FILE *spec = fopen(SPEC_PATH, "r");
    if (spec == NULL) {
        printf("%s: cannot open (run from Runtime/)\n", SPEC_PATH);
        g_failed++;
        return;
    }
    TMP_PATH(path, "spec.safetensors");
    char *line = NULL;
    size_t line_cap = 0;
    int cases = 0;
    while (getline(&line, &line_cap, spec) > 0) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0) {
            continue;
        }
        char *f[6];
        if (spec_fields(line, f, 6) != 6) {
            printf("%s: malformed line '%s'\n", SPEC_PATH, line);
            g_failed++;
            continue;
        }
        cases++;
        size_t data_size = (size_t)strtoull(f[3], NULL, 10);
        unsigned char *file = malloc(8 + strlen(f[5]) + data_size);
        size_t header_size = spec_header(f[5], file + 8);
        uint64_t length = header_size;
        size_t file_size = 8 + header_size + data_size;
        if (strncmp(f[4], "cut:", 4) == 0) {
            file_size = (size_t)strtoull(f[4] + 4, NULL, 10);
        } else if (strcmp(f[4], "auto") != 0) {
            length = strtoull(f[4], NULL, 10);
        }
        put_le64(file, length);
        unsigned char *data = file + 8 + header_size;
        for (size_t i = 0; i < data_size; i++) {
            data[i] = (unsigned char)(37 * i + 11);
        }
        write_bytes(path, file, file_size);
        cnnc_error err = {CNNC_OK, ""};
        cnnc_safetensors *st = NULL;
        int accepted = cnnc_safetensors_open(path, &st, &err) == CNNC_OK && spec_read_all(st);
        int want = strcmp(f[1], "accept") == 0;
        if (accepted != want) {
            printf("%s: case '%s': %s, expected %s%s%s\n", SPEC_PATH, f[0],
                   accepted ? "accepted" : "rejected", f[1], accepted ? "" : ": ",
                   accepted ? "" : err.message);
            g_failed++;
        } else {
            g_passed++;
        }
        if (accepted && want) {
            spec_check_tensors(f[0], st, f[2], data);
        }
        cnnc_safetensors_close(st);
        free(file);
    }
    free(line);
    fclose(spec);
    CHECK(cases > 90);
}

/* ---------------------------------------------------------------------------------------
 * Regular files only (issue #14): the readers refuse a FIFO (opened without blocking), a
 * directory, a device, and a symlink to one, as the Swift side's InputFile does. An alarm
 * turns a reader that blocks on the FIFO into a failed run instead of a hang.
 * ------------------------------------------------------------------------------------- */

/* Runs every file reader of the runtime on `path`; each must fail with CNNC_ERR_IO and a
 * message containing `why`. */
static void check_every_reader_refuses(const char *path, const char *why) {
    cnnc_error err = {CNNC_OK, ""};
    cnnc_safetensors *st = NULL;
    CHECK_STATUS(cnnc_safetensors_open(path, &st, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    CHECK(st == NULL);
    cnnc_array_f32 a;
    CHECK_STATUS(cnnc_npy_read_f32(path, &a, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    cnnc_array_i64 l;
    CHECK_STATUS(cnnc_npy_read_i64(path, &l, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    unsigned char *data = NULL;
    size_t size = 0;
    CHECK_STATUS(cnnc_read_file_maybe_gzip(path, &data, &size, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    CHECK(data == NULL);
}

static void test_readers_take_regular_files_only(void) {
    alarm(30);
    TMP_PATH(fifo, "weights.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    check_every_reader_refuses(fifo, "it is a FIFO, not a regular file");
    char expected[600];
    snprintf(expected, sizeof expected, "cannot read '%s': it is a FIFO, not a regular file", fifo);
    cnnc_error err = {CNNC_OK, ""};
    cnnc_safetensors *st = NULL;
    CHECK_STATUS(cnnc_safetensors_open(fifo, &st, &err), CNNC_ERR_IO, &err);
    CHECK_STR(err.message, expected);

    TMP_PATH(dir, "a_folder.safetensors");
    CHECK(mkdir(dir, 0700) == 0);
    check_every_reader_refuses(dir, "it is a directory");

    if (access("/dev/null", R_OK) == 0) {
        check_every_reader_refuses("/dev/null", "it is a character device, not a regular file");
    }
    /* A symlink to /dev/zero read whole would never end. */
    TMP_PATH(zero, "zero.safetensors");
    if (access("/dev/zero", R_OK) == 0 && symlink("/dev/zero", zero) == 0) {
        check_every_reader_refuses(zero, "it is a character device, not a regular file");
    }

    /* A data set folder whose image file is a FIFO names it, instead of blocking. */
    TMP_PATH(fashion, "fashion");
    CHECK(mkdir(fashion, 0700) == 0);
    char images[700], labels[700];
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", fashion);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", fashion);
    CHECK(mkfifo(images, 0600) == 0);
    write_bytes(labels, "\0\0\x08\x01\0\0\0\0", 8);
    cnnc_dataset ds;
    CHECK_STATUS(cnnc_dataset_load_fashion_mnist(fashion, 1, &ds, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "it is a FIFO, not a regular file");

    /* A missing file is still "cannot open" with the reason. */
    TMP_PATH(missing, "missing.safetensors");
    CHECK_STATUS(cnnc_safetensors_open(missing, &st, &err), CNNC_ERR_IO, &err);
    snprintf(expected, sizeof expected, "cannot open '%s': no such file or directory", missing);
    CHECK_STR(err.message, expected);
    alarm(0);
}

/* The writers create regular files only: a FIFO with no reader fails at once instead of
 * blocking in open (and one with a reader would be refused after fstat), a directory and a
 * device are refused, and nothing but a regular file is truncated. */
static void check_every_writer_refuses(const char *path, const char *why) {
    cnnc_error err = {CNNC_OK, ""};
    const float values[2] = {1.0f, 2.0f};
    const int64_t shape[1] = {2};
    CHECK_STATUS(cnnc_npy_write_f32(path, values, 1, shape, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    cnnc_tensor_f32 t = {"w", 1, shape, values};
    CHECK_STATUS(cnnc_safetensors_write_f32(path, &t, 1, NULL, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    cnnc_log *log = NULL;
    CHECK_STATUS(cnnc_log_open(path, 0, &log, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    CHECK_STATUS(cnnc_log_open(path, 1, &log, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, why);
    CHECK(log == NULL);
    CHECK(cnnc_file_open(path, "wb", &err) == NULL);
    CHECK_CONTAINS(err.message, why);
}

static void test_writers_take_regular_files_only(void) {
    alarm(30);
    TMP_PATH(fifo, "out.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    check_every_writer_refuses(fifo, "it is a FIFO, not a regular file");
    char expected[600];
    snprintf(expected, sizeof expected, "cannot write '%s': it is a FIFO, not a regular file", fifo);
    cnnc_error err = {CNNC_OK, ""};
    CHECK(cnnc_file_open(fifo, "w", &err) == NULL);
    CHECK_STR(err.message, expected);

    TMP_PATH(dir, "a_folder.npy");
    CHECK(mkdir(dir, 0700) == 0);
    check_every_writer_refuses(dir, "a_folder.npy");
    if (access("/dev/null", W_OK) == 0) {
        check_every_writer_refuses("/dev/null", "it is a character device, not a regular file");
    }

    /* A regular file is truncated on "w" and kept on "a". */
    TMP_PATH(plain, "plain.txt");
    write_bytes(plain, "0123456789", 10);
    FILE *f = cnnc_file_open(plain, "a", &err);
    CHECK(f != NULL && fputs("ab", f) >= 0 && fclose(f) == 0);
    size_t size = 0;
    unsigned char *bytes = read_bytes(plain, &size);
    CHECK(size == 12 && memcmp(bytes, "0123456789ab", 12) == 0);
    free(bytes);
    f = cnnc_file_open(plain, "wb", &err);
    CHECK(f != NULL && fputs("x", f) >= 0 && fclose(f) == 0);
    bytes = read_bytes(plain, &size);
    CHECK(size == 1 && bytes[0] == 'x');
    free(bytes);
    f = cnnc_file_open(plain, "r", &err);
    CHECK(f != NULL && fgetc(f) == 'x' && fclose(f) == 0);
    alarm(0);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cnnc_runtime_test_XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        printf("cannot create a temporary directory\n");
        printf("runtime: 0 passed, 1 failed\n");
        return 1;
    }
    test_status_and_errors();
    test_aligned_alloc();
    test_now_seconds();
    test_safetensors_round_trip();
    test_safetensors_hand_written();
    test_safetensors_read_errors();
    test_safetensors_broken_files();
    test_safetensors_truncation_and_mutation();
    test_safetensors_write_errors();
    test_npy_round_trip();
    test_npy_conversions();
    test_npy_errors();
    test_rng();
    test_safetensors_specification();
    test_readers_take_regular_files_only();
    test_writers_take_regular_files_only();
    remove_temp_dir();
    printf("runtime: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
