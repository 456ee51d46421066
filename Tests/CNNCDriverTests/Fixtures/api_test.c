/*
 * api_test.c — tests of the generated C API on the LeNet example (prefix lenet, max batch 2):
 * status codes and messages for bad weights files, wrong batch sizes and bad pointers, and
 * a save/load round trip. Prints "api: N passed, M failed" and exits non-zero on failure.
 * Usage: api_test WORKDIR
 */
#include "lenet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) passed++;                                                      \
        else { failed++; printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

#define CHECK_MESSAGE(ctx, text)                                                 \
    do {                                                                         \
        if (strstr(lenet_last_error(ctx), text)) passed++;                       \
        else { failed++; printf("%s:%d: message '%s' lacks '%s'\n", __FILE__, __LINE__, lenet_last_error(ctx), text); } \
    } while (0)

/* Writes the context's parameters to `path`, skipping `skip`, replacing the shape of
 * `reshape` by {6,1,3,3}, and adding a tensor `extra` when non-NULL. */
static void write_variant(lenet_context *ctx, const char *path, const char *skip, const char *reshape, const char *extra) {
    cnnc_tensor_f32 tensors[LENET_NUM_PARAMETERS + 1];
    static const int64_t small[4] = {6, 1, 3, 3};
    static const int64_t one[1] = {1};
    static const float zero = 0;
    size_t count = 0;
    for (int i = 0; i < LENET_NUM_PARAMETERS; i++) {
        const lenet_parameter_info *p = lenet_parameter(i);
        if (skip && strcmp(p->name, skip) == 0) continue;
        tensors[count].name = p->name;
        tensors[count].ndim = p->ndim;
        tensors[count].shape = reshape && strcmp(p->name, reshape) == 0 ? small : p->shape;
        tensors[count].data = ctx->weights + p->offset;
        count++;
    }
    if (extra) {
        tensors[count].name = extra;
        tensors[count].ndim = 1;
        tensors[count].shape = one;
        tensors[count].data = &zero;
        count++;
    }
    cnnc_error err;
    if (cnnc_safetensors_write_f32(path, tensors, count, NULL, &err) != CNNC_OK) {
        printf("cannot write %s: %s\n", path, err.message);
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    char path[4096];
    float image[2 * LENET_INPUT_IMAGE_SIZE], a[2 * 10], b[2 * 10];
    for (int i = 0; i < 2 * LENET_INPUT_IMAGE_SIZE; i++) image[i] = (float)((i * 37) % 101) / 101.0f;

    lenet_context ctx;
    CHECK(lenet_create(&ctx) == CNNC_OK);
    CHECK(LENET_MAX_BATCH == 2);

    /* Batch bounds and pointers. */
    CHECK(lenet_forward(&ctx, image, a, 0) == CNNC_ERR_BATCH);
    CHECK(lenet_forward(&ctx, image, a, 3) == CNNC_ERR_BATCH);
    CHECK_MESSAGE(&ctx, "batch 3 is outside 1..2");
    CHECK(lenet_forward(&ctx, NULL, a, 1) == CNNC_ERR_ARGUMENT);
    CHECK(lenet_forward(&ctx, image, a, 2) == CNNC_OK);
    CHECK(strcmp(lenet_last_error(&ctx), "") == 0);

    /* Caller-owned regions: misaligned pointers are refused. */
    lenet_context mine;
    char *raw = malloc(LENET_ARENA_BYTES + 64);
    CHECK(lenet_init(&mine, ctx.weights, raw + ((uintptr_t)raw % 64 == 1 ? 2 : 1)) == CNNC_ERR_ARGUMENT);
    free(raw);

    /* Parameter table. */
    CHECK(lenet_parameter(0) != NULL && strcmp(lenet_parameter(0)->name, "c1.weight") == 0);
    CHECK(lenet_parameter(LENET_NUM_PARAMETERS) == NULL);
    CHECK(lenet_parameter_data(&ctx, "logits.bias") != NULL);
    CHECK(lenet_parameter_data(&ctx, "nope.weight") == NULL);

    /* Save, perturb, load: the saved weights come back bit for bit. */
    snprintf(path, sizeof path, "%s/w.safetensors", argv[1]);
    CHECK(lenet_save_weights(&ctx, path) == CNNC_OK);
    CHECK(lenet_init_weights(&ctx, 12345) == CNNC_OK);
    CHECK(lenet_forward(&ctx, image, b, 2) == CNNC_OK);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(lenet_load_weights(&ctx, path) == CNNC_OK);
    CHECK(lenet_forward(&ctx, image, b, 2) == CNNC_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);

    /* Bad files: each names the tensor or the problem. */
    snprintf(path, sizeof path, "%s/missing.safetensors", argv[1]);
    write_variant(&ctx, path, "c1.bias", NULL, NULL);
    CHECK(lenet_load_weights(&ctx, path) == CNNC_ERR_MISSING);
    CHECK_MESSAGE(&ctx, "tensor 'c1.bias' not found");

    snprintf(path, sizeof path, "%s/shape.safetensors", argv[1]);
    write_variant(&ctx, path, NULL, "c1.weight", NULL);
    CHECK(lenet_load_weights(&ctx, path) == CNNC_ERR_SHAPE);
    CHECK_MESSAGE(&ctx, "tensor 'c1.weight': expected shape [6,1,5,5], got [6,1,3,3]");

    snprintf(path, sizeof path, "%s/extra.safetensors", argv[1]);
    write_variant(&ctx, path, NULL, NULL, "c9.weight");
    CHECK(lenet_load_weights(&ctx, path) == CNNC_ERR_UNEXPECTED);
    CHECK_MESSAGE(&ctx, "unexpected tensor 'c9.weight'");

    /* Truncated: the first half of a good file. */
    snprintf(path, sizeof path, "%s/w.safetensors", argv[1]);
    FILE *f = fopen(path, "rb");
    static char bytes[1 << 20];
    size_t size = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/truncated.safetensors", argv[1]);
    f = fopen(path, "wb");
    if (f) { fwrite(bytes, 1, size / 2, f); fclose(f); }
    CHECK(lenet_load_weights(&ctx, path) == CNNC_ERR_FORMAT);

    snprintf(path, sizeof path, "%s/does-not-exist.safetensors", argv[1]);
    CHECK(lenet_load_weights(&ctx, path) == CNNC_ERR_IO);
    CHECK_MESSAGE(&ctx, "does-not-exist.safetensors");

    lenet_destroy(&ctx);
    printf("api: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
