/* png_tool.c — the tests' independent PNG codec, straight on libpng's simplified API:
 *   png_tool decode IN.png OUT.raw      prints "WIDTH HEIGHT CHANNELS", writes the 8-bit samples
 *   png_tool encode OUT.png W H C IN.raw  writes C-channel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) samples as a PNG */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const png_uint_32 formats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};

int main(int argc, char **argv) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (argc == 4 && strcmp(argv[1], "decode") == 0) {
        if (!png_image_begin_read_from_file(&image, argv[2])) { fprintf(stderr, "%s\n", image.message); return 1; }
        const int channels = (int)PNG_IMAGE_SAMPLE_CHANNELS(image.format);
        image.format = formats[channels];
        const size_t size = PNG_IMAGE_SIZE(image);
        unsigned char *pixels = malloc(size);
        if (!pixels || !png_image_finish_read(&image, NULL, pixels, 0, NULL)) { fprintf(stderr, "%s\n", image.message); return 1; }
        FILE *f = fopen(argv[3], "wb");
        if (!f || fwrite(pixels, 1, size, f) != size || fclose(f) != 0) return 1;
        printf("%u %u %d\n", (unsigned)image.width, (unsigned)image.height, channels);
        return 0;
    }
    if (argc == 7 && strcmp(argv[1], "encode") == 0) {
        image.width = (png_uint_32)atoi(argv[3]);
        image.height = (png_uint_32)atoi(argv[4]);
        image.format = formats[atoi(argv[5])];
        const size_t size = PNG_IMAGE_SIZE(image);
        unsigned char *pixels = malloc(size);
        FILE *f = fopen(argv[6], "rb");
        if (!pixels || !f || fread(pixels, 1, size, f) != size) return 1;
        fclose(f);
        if (!png_image_write_to_file(&image, argv[2], 0, pixels, 0, NULL)) { fprintf(stderr, "%s\n", image.message); return 1; }
        return 0;
    }
    fprintf(stderr, "usage: png_tool decode IN.png OUT.raw | encode OUT.png W H C IN.raw\n");
    return 2;
}
