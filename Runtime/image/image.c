/*
 * image.c — PNG files through libpng, the RGB canvas (rectangles, lines, nearest-neighbour
 * scaling, the built-in font), the viridis colour map, and tensors laid out as tiles and
 * grids. See cnnc_image.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Images and PNG files
 * ------------------------------------------------------------------------------------- */

cnnc_status cnnc_image_create(cnnc_image *img, int width, int height, int channels, cnnc_error *err) {
    memset(img, 0, sizeof *img);
    if (width < 1 || width > 32768 || height < 1 || height > 32768 || channels < 1 || channels > 4) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "image of %dx%d pixels with %d channels: expected 1..32768 pixels a side and 1..4 channels",
                       width, height, channels);
        return CNNC_ERR_ARGUMENT;
    }
    img->pixels = calloc((size_t)width * (size_t)height * (size_t)channels, 1);
    if (img->pixels == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "cannot allocate an image of %dx%dx%d", width, height, channels);
        return CNNC_ERR_ALLOC;
    }
    img->width = width;
    img->height = height;
    img->channels = channels;
    return CNNC_OK;
}

void cnnc_image_free(cnnc_image *img) {
    if (img == NULL) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* Opens `path` for libpng's simplified reader and checks the signature; fills *image. */
static cnnc_status png_begin(const char *path, FILE **file, png_image *image, cnnc_error *err) {
    memset(image, 0, sizeof *image);
    image->version = PNG_IMAGE_VERSION;
    *file = cnnc_file_open(path, "rb", err);
    if (*file == NULL) {
        return CNNC_ERR_IO;
    }
    png_byte signature[8];
    if (fread(signature, 1, 8, *file) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
        fclose(*file);
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: not a PNG file", path);
        return CNNC_ERR_FORMAT;
    }
    rewind(*file);
    if (!png_image_begin_read_from_stdio(image, *file)) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: %s", path, image->message);
        png_image_free(image);
        fclose(*file);
        return CNNC_ERR_FORMAT;
    }
    if (image->format & PNG_FORMAT_FLAG_LINEAR) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: 16-bit PNG files are not supported (8-bit gray, RGB or RGBA only)", path);
        png_image_free(image);
        fclose(*file);
        return CNNC_ERR_FORMAT;
    }
    return CNNC_OK;
}

cnnc_status cnnc_png_info(const char *path, int *width, int *height, int *channels, cnnc_error *err) {
    FILE *file;
    png_image image;
    cnnc_status s = png_begin(path, &file, &image, err);
    if (s != CNNC_OK) return s;
    *width = (int)image.width;
    *height = (int)image.height;
    *channels = (int)PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    png_image_free(&image);
    fclose(file);
    return CNNC_OK;
}

/* The simplified API's 8-bit format for a number of channels. */
static png_uint_32 png_format(int channels) {
    switch (channels) {
    case 1: return PNG_FORMAT_GRAY;
    case 2: return PNG_FORMAT_GA;
    case 3: return PNG_FORMAT_RGB;
    default: return PNG_FORMAT_RGBA;
    }
}

cnnc_status cnnc_png_read(const char *path, cnnc_image *out, cnnc_error *err) {
    memset(out, 0, sizeof *out);
    FILE *file;
    png_image image;
    cnnc_status s = png_begin(path, &file, &image, err);
    if (s != CNNC_OK) return s;
    const int channels = (int)PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    if (image.width > 32768 || image.height > 32768) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: %ux%u pixels is too large (at most 32768 a side)", path,
                       (unsigned)image.width, (unsigned)image.height);
        png_image_free(&image);
        fclose(file);
        return CNNC_ERR_FORMAT;
    }
    s = cnnc_image_create(out, (int)image.width, (int)image.height, channels, err);
    if (s != CNNC_OK) {
        png_image_free(&image);
        fclose(file);
        return s;
    }
    image.format = png_format(channels);
    if (!png_image_finish_read(&image, NULL, out->pixels, 0, NULL)) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: %s", path, image.message);
        png_image_free(&image);
        fclose(file);
        cnnc_image_free(out);
        return CNNC_ERR_FORMAT;
    }
    fclose(file);
    return CNNC_OK;
}

cnnc_status cnnc_png_write(const char *path, const cnnc_image *img, cnnc_error *err) {
    if (img == NULL || img->pixels == NULL || img->channels < 1 || img->channels > 4) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "%s: no image to write", path);
        return CNNC_ERR_ARGUMENT;
    }
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)img->width;
    image.height = (png_uint_32)img->height;
    image.format = png_format(img->channels);
    FILE *file = cnnc_file_open(path, "wb", err);
    if (file == NULL) {
        return CNNC_ERR_IO;
    }
    int written = png_image_write_to_stdio(&image, file, 0, img->pixels, 0, NULL);
    if (fclose(file) != 0 || !written) {
        cnnc_error_set(err, CNNC_ERR_IO, "cannot write '%s': %s", path,
                       written ? "the file could not be closed" : image.message);
        remove(path);
        return CNNC_ERR_IO;
    }
    return CNNC_OK;
}

cnnc_status cnnc_image_resize(const cnnc_image *in, int width, int height, cnnc_image *out, cnnc_error *err) {
    cnnc_status s = cnnc_image_create(out, width, height, in->channels, err);
    if (s != CNNC_OK) return s;
    const int c = in->channels;
    /* each output pixel centre maps to a source position; interpolate its four neighbours */
    for (int y = 0; y < height; y++) {
        double sy = ((double)y + 0.5) * in->height / height - 0.5;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 + 1 < in->height ? y0 + 1 : y0;
        const double fy = sy - y0;
        for (int x = 0; x < width; x++) {
            double sx = ((double)x + 0.5) * in->width / width - 0.5;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 + 1 < in->width ? x0 + 1 : x0;
            const double fx = sx - x0;
            for (int k = 0; k < c; k++) {
                const uint8_t *p = in->pixels;
                const double top = p[((size_t)y0 * in->width + x0) * c + k] * (1 - fx) + p[((size_t)y0 * in->width + x1) * c + k] * fx;
                const double bottom = p[((size_t)y1 * in->width + x0) * c + k] * (1 - fx) + p[((size_t)y1 * in->width + x1) * c + k] * fx;
                out->pixels[((size_t)y * width + x) * c + k] = (uint8_t)lround(top * (1 - fy) + bottom * fy);
            }
        }
    }
    return CNNC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Colour
 * ------------------------------------------------------------------------------------- */

/* viridis at 0, 0.1, ..., 1 (matplotlib's _viridis_data, rounded to 8 bits) */
static const uint8_t viridis_tenths[11][3] = {
    {68, 1, 84},    {72, 36, 117},  {65, 68, 135},  {53, 95, 141},  {42, 120, 142}, {33, 145, 140},
    {34, 168, 132}, {68, 191, 112}, {122, 209, 81}, {189, 223, 38}, {253, 231, 37},
};

static float clamp01(float t) {
    if (!(t > 0.0f)) return 0.0f; /* also NaN */
    return t > 1.0f ? 1.0f : t;
}

cnnc_rgb cnnc_viridis(float t) {
    t = clamp01(t) * 10.0f;
    int i = (int)t;
    if (i > 9) i = 9;
    const float f = t - (float)i;
    cnnc_rgb c;
    c.r = (uint8_t)lroundf(viridis_tenths[i][0] + f * (viridis_tenths[i + 1][0] - viridis_tenths[i][0]));
    c.g = (uint8_t)lroundf(viridis_tenths[i][1] + f * (viridis_tenths[i + 1][1] - viridis_tenths[i][1]));
    c.b = (uint8_t)lroundf(viridis_tenths[i][2] + f * (viridis_tenths[i + 1][2] - viridis_tenths[i][2]));
    return c;
}

uint8_t cnnc_gray(float t) {
    return (uint8_t)lroundf(255.0f * clamp01(t));
}

/* ---------------------------------------------------------------------------------------
 * Drawing
 * ------------------------------------------------------------------------------------- */

void cnnc_draw_pixel(cnnc_image *img, int x, int y, cnnc_rgb c) {
    if (x < 0 || y < 0 || x >= img->width || y >= img->height || img->channels < 3) return;
    uint8_t *p = img->pixels + ((size_t)y * img->width + x) * img->channels;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

void cnnc_draw_rect(cnnc_image *img, int x, int y, int w, int h, cnnc_rgb c) {
    for (int j = y < 0 ? 0 : y; j < y + h && j < img->height; j++)
        for (int i = x < 0 ? 0 : x; i < x + w && i < img->width; i++) cnnc_draw_pixel(img, i, j, c);
}

void cnnc_draw_fill(cnnc_image *img, cnnc_rgb c) {
    cnnc_draw_rect(img, 0, 0, img->width, img->height, c);
}

void cnnc_draw_frame(cnnc_image *img, int x, int y, int w, int h, int thickness, cnnc_rgb c) {
    cnnc_draw_rect(img, x, y, w, thickness, c);
    cnnc_draw_rect(img, x, y + h - thickness, w, thickness, c);
    cnnc_draw_rect(img, x, y, thickness, h, c);
    cnnc_draw_rect(img, x + w - thickness, y, thickness, h, c);
}

void cnnc_draw_line(cnnc_image *img, int x0, int y0, int x1, int y1, int thickness, int dash, cnnc_rgb c) {
    const int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    const int lo = -(thickness - 1) / 2;
    int e = dx + dy, n = 0;
    for (;;) {
        if (dash <= 0 || (n / dash) % 2 == 0) cnnc_draw_rect(img, x0 + lo, y0 + lo, thickness, thickness, c);
        n++;
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

void cnnc_draw_image(cnnc_image *dst, const cnnc_image *src, int x, int y, int scale) {
    if (scale < 1) scale = 1;
    for (int j = 0; j < src->height; j++) {
        for (int i = 0; i < src->width; i++) {
            const uint8_t *p = src->pixels + ((size_t)j * src->width + i) * src->channels;
            const cnnc_rgb c = src->channels >= 3 ? (cnnc_rgb){p[0], p[1], p[2]} : (cnnc_rgb){p[0], p[0], p[0]};
            cnnc_draw_rect(dst, x + i * scale, y + j * scale, scale, scale, c);
        }
    }
}

/* The font: printable ASCII from ' ', 7 rows of 5 columns, 'X' for a set pixel. */
static const char *const font[95][7] = {
    {".....", ".....", ".....", ".....", ".....", ".....", "....."}, /*   */
    {"..X..", "..X..", "..X..", "..X..", "..X..", ".....", "..X.."}, /* ! */
    {".X.X.", ".X.X.", ".....", ".....", ".....", ".....", "....."}, /* " */
    {".X.X.", ".X.X.", "XXXXX", ".X.X.", "XXXXX", ".X.X.", ".X.X."}, /* # */
    {"..X..", ".XXXX", "X.X..", ".XXX.", "..X.X", "XXXX.", "..X.."}, /* $ */
    {"XX...", "XX..X", "...X.", "..X..", ".X...", "X..XX", "...XX"}, /* % */
    {".XX..", "X..X.", "X.X..", ".X...", "X.X.X", "X..X.", ".XX.X"}, /* & */
    {"..X..", "..X..", ".....", ".....", ".....", ".....", "....."}, /* ' */
    {"...X.", "..X..", ".X...", ".X...", ".X...", "..X..", "...X."}, /* ( */
    {".X...", "..X..", "...X.", "...X.", "...X.", "..X..", ".X..."}, /* ) */
    {".....", "..X..", "X.X.X", ".XXX.", "X.X.X", "..X..", "....."}, /* * */
    {".....", "..X..", "..X..", "XXXXX", "..X..", "..X..", "....."}, /* + */
    {".....", ".....", ".....", ".....", ".XX..", "..X..", ".X..."}, /* , */
    {".....", ".....", ".....", "XXXXX", ".....", ".....", "....."}, /* - */
    {".....", ".....", ".....", ".....", ".....", ".XX..", ".XX.."}, /* . */
    {".....", "....X", "...X.", "..X..", ".X...", "X....", "....."}, /* / */
    {".XXX.", "X...X", "X..XX", "X.X.X", "XX..X", "X...X", ".XXX."}, /* 0 */
    {"..X..", ".XX..", "..X..", "..X..", "..X..", "..X..", ".XXX."}, /* 1 */
    {".XXX.", "X...X", "....X", "...X.", "..X..", ".X...", "XXXXX"}, /* 2 */
    {"XXXXX", "...X.", "..X..", "...X.", "....X", "X...X", ".XXX."}, /* 3 */
    {"...X.", "..XX.", ".X.X.", "X..X.", "XXXXX", "...X.", "...X."}, /* 4 */
    {"XXXXX", "X....", "XXXX.", "....X", "....X", "X...X", ".XXX."}, /* 5 */
    {"..XX.", ".X...", "X....", "XXXX.", "X...X", "X...X", ".XXX."}, /* 6 */
    {"XXXXX", "....X", "...X.", "..X..", ".X...", ".X...", ".X..."}, /* 7 */
    {".XXX.", "X...X", "X...X", ".XXX.", "X...X", "X...X", ".XXX."}, /* 8 */
    {".XXX.", "X...X", "X...X", ".XXXX", "....X", "...X.", ".XX.."}, /* 9 */
    {".....", ".XX..", ".XX..", ".....", ".XX..", ".XX..", "....."}, /* : */
    {".....", ".XX..", ".XX..", ".....", ".XX..", "..X..", ".X..."}, /* ; */
    {"...X.", "..X..", ".X...", "X....", ".X...", "..X..", "...X."}, /* < */
    {".....", ".....", "XXXXX", ".....", "XXXXX", ".....", "....."}, /* = */
    {".X...", "..X..", "...X.", "....X", "...X.", "..X..", ".X..."}, /* > */
    {".XXX.", "X...X", "....X", "...X.", "..X..", ".....", "..X.."}, /* ? */
    {".XXX.", "X...X", "....X", ".XX.X", "X.X.X", "X.X.X", ".XXX."}, /* @ */
    {".XXX.", "X...X", "X...X", "XXXXX", "X...X", "X...X", "X...X"}, /* A */
    {"XXXX.", "X...X", "X...X", "XXXX.", "X...X", "X...X", "XXXX."}, /* B */
    {".XXX.", "X...X", "X....", "X....", "X....", "X...X", ".XXX."}, /* C */
    {"XXX..", "X..X.", "X...X", "X...X", "X...X", "X..X.", "XXX.."}, /* D */
    {"XXXXX", "X....", "X....", "XXXX.", "X....", "X....", "XXXXX"}, /* E */
    {"XXXXX", "X....", "X....", "XXXX.", "X....", "X....", "X...."}, /* F */
    {".XXX.", "X...X", "X....", "X.XXX", "X...X", "X...X", ".XXXX"}, /* G */
    {"X...X", "X...X", "X...X", "XXXXX", "X...X", "X...X", "X...X"}, /* H */
    {".XXX.", "..X..", "..X..", "..X..", "..X..", "..X..", ".XXX."}, /* I */
    {"..XXX", "...X.", "...X.", "...X.", "...X.", "X..X.", ".XX.."}, /* J */
    {"X...X", "X..X.", "X.X..", "XX...", "X.X..", "X..X.", "X...X"}, /* K */
    {"X....", "X....", "X....", "X....", "X....", "X....", "XXXXX"}, /* L */
    {"X...X", "XX.XX", "X.X.X", "X.X.X", "X...X", "X...X", "X...X"}, /* M */
    {"X...X", "X...X", "XX..X", "X.X.X", "X..XX", "X...X", "X...X"}, /* N */
    {".XXX.", "X...X", "X...X", "X...X", "X...X", "X...X", ".XXX."}, /* O */
    {"XXXX.", "X...X", "X...X", "XXXX.", "X....", "X....", "X...."}, /* P */
    {".XXX.", "X...X", "X...X", "X...X", "X.X.X", "X..X.", ".XX.X"}, /* Q */
    {"XXXX.", "X...X", "X...X", "XXXX.", "X.X..", "X..X.", "X...X"}, /* R */
    {".XXXX", "X....", "X....", ".XXX.", "....X", "....X", "XXXX."}, /* S */
    {"XXXXX", "..X..", "..X..", "..X..", "..X..", "..X..", "..X.."}, /* T */
    {"X...X", "X...X", "X...X", "X...X", "X...X", "X...X", ".XXX."}, /* U */
    {"X...X", "X...X", "X...X", "X...X", "X...X", ".X.X.", "..X.."}, /* V */
    {"X...X", "X...X", "X...X", "X.X.X", "X.X.X", "X.X.X", ".X.X."}, /* W */
    {"X...X", "X...X", ".X.X.", "..X..", ".X.X.", "X...X", "X...X"}, /* X */
    {"X...X", "X...X", ".X.X.", "..X..", "..X..", "..X..", "..X.."}, /* Y */
    {"XXXXX", "....X", "...X.", "..X..", ".X...", "X....", "XXXXX"}, /* Z */
    {".XXX.", ".X...", ".X...", ".X...", ".X...", ".X...", ".XXX."}, /* [ */
    {".....", "X....", ".X...", "..X..", "...X.", "....X", "....."}, /* \ */
    {".XXX.", "...X.", "...X.", "...X.", "...X.", "...X.", ".XXX."}, /* ] */
    {"..X..", ".X.X.", "X...X", ".....", ".....", ".....", "....."}, /* ^ */
    {".....", ".....", ".....", ".....", ".....", ".....", "XXXXX"}, /* _ */
    {".X...", "..X..", ".....", ".....", ".....", ".....", "....."}, /* ` */
    {".....", ".....", ".XXX.", "....X", ".XXXX", "X...X", ".XXXX"}, /* a */
    {"X....", "X....", "X.XX.", "XX..X", "X...X", "X...X", "XXXX."}, /* b */
    {".....", ".....", ".XXX.", "X....", "X....", "X...X", ".XXX."}, /* c */
    {"....X", "....X", ".XX.X", "X..XX", "X...X", "X...X", ".XXXX"}, /* d */
    {".....", ".....", ".XXX.", "X...X", "XXXXX", "X....", ".XXX."}, /* e */
    {"..XX.", ".X..X", ".X...", "XXX..", ".X...", ".X...", ".X..."}, /* f */
    {".....", ".XXXX", "X...X", "X...X", ".XXXX", "....X", ".XXX."}, /* g */
    {"X....", "X....", "X.XX.", "XX..X", "X...X", "X...X", "X...X"}, /* h */
    {"..X..", ".....", ".XX..", "..X..", "..X..", "..X..", ".XXX."}, /* i */
    {"...X.", ".....", "..XX.", "...X.", "...X.", "X..X.", ".XX.."}, /* j */
    {"X....", "X....", "X..X.", "X.X..", "XX...", "X.X..", "X..X."}, /* k */
    {".XX..", "..X..", "..X..", "..X..", "..X..", "..X..", ".XXX."}, /* l */
    {".....", ".....", "XX.X.", "X.X.X", "X.X.X", "X...X", "X...X"}, /* m */
    {".....", ".....", "X.XX.", "XX..X", "X...X", "X...X", "X...X"}, /* n */
    {".....", ".....", ".XXX.", "X...X", "X...X", "X...X", ".XXX."}, /* o */
    {".....", ".....", "XXXX.", "X...X", "XXXX.", "X....", "X...."}, /* p */
    {".....", ".....", ".XX.X", "X..XX", ".XXXX", "....X", "....X"}, /* q */
    {".....", ".....", "X.XX.", "XX..X", "X....", "X....", "X...."}, /* r */
    {".....", ".....", ".XXX.", "X....", ".XXX.", "....X", "XXXX."}, /* s */
    {".X...", ".X...", "XXX..", ".X...", ".X...", ".X..X", "..XX."}, /* t */
    {".....", ".....", "X...X", "X...X", "X...X", "X..XX", ".XX.X"}, /* u */
    {".....", ".....", "X...X", "X...X", "X...X", ".X.X.", "..X.."}, /* v */
    {".....", ".....", "X...X", "X...X", "X.X.X", "X.X.X", ".X.X."}, /* w */
    {".....", ".....", "X...X", ".X.X.", "..X..", ".X.X.", "X...X"}, /* x */
    {".....", ".....", "X...X", "X...X", ".XXXX", "....X", ".XXX."}, /* y */
    {".....", ".....", "XXXXX", "...X.", "..X..", ".X...", "XXXXX"}, /* z */
    {"...X.", "..X..", "..X..", ".X...", "..X..", "..X..", "...X."}, /* { */
    {"..X..", "..X..", "..X..", "..X..", "..X..", "..X..", "..X.."}, /* | */
    {".X...", "..X..", "..X..", "...X.", "..X..", "..X..", ".X..."}, /* } */
    {".....", ".....", ".X...", "X.X.X", "...X.", ".....", "....."}, /* ~ */
};

/* Whether pixel (col, row) of the glyph for character ch is set; unknown characters are a box. */
static int glyph_pixel(unsigned char ch, int col, int row) {
    if (ch < 32 || ch > 126) return row == 0 || row == 6 || col == 0 || col == 4;
    return font[ch - 32][row][col] == 'X';
}

int cnnc_text_width(const char *text, int scale) {
    return (int)strlen(text) * CNNC_FONT_CELL_WIDTH * scale;
}

/* Letters with a descender sit one row lower in their cell. */
static int glyph_drop(unsigned char ch) {
    return ch == 'g' || ch == 'j' || ch == 'p' || ch == 'q' || ch == 'y' || ch == ',' || ch == ';';
}

void cnnc_draw_text(cnnc_image *img, int x, int y, const char *text, int scale, cnnc_rgb c) {
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, x += CNNC_FONT_CELL_WIDTH * scale)
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (glyph_pixel(*p, col, row))
                    cnnc_draw_rect(img, x + col * scale, y + (row + 1 + glyph_drop(*p)) * scale, scale, scale, c);
}

void cnnc_draw_text_vertical(cnnc_image *img, int x, int y, const char *text, int scale, cnnc_rgb c) {
    /* character k's cell runs upwards from the bottom of the box; font row r becomes column r */
    const int length = cnnc_text_width(text, scale);
    int k = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, k++)
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (glyph_pixel(*p, col, row))
                    cnnc_draw_rect(img, x + (row + 1 + glyph_drop(*p)) * scale, y + length - (k * CNNC_FONT_CELL_WIDTH + col + 1) * scale, scale, scale, c);
}

/* ---------------------------------------------------------------------------------------
 * Tensors as pictures
 * ------------------------------------------------------------------------------------- */

void cnnc_range(const float *x, int64_t n, float *lo, float *hi) {
    int any = 0;
    *lo = *hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        if (!any || x[i] < *lo) *lo = x[i];
        if (!any || x[i] > *hi) *hi = x[i];
        any = 1;
    }
}

/* The position of v between lo and hi (0.5 when they are equal). */
static float level(float v, float lo, float hi) {
    return hi > lo ? (v - lo) / (hi - lo) : 0.5f;
}

cnnc_status cnnc_tile_plane(const float *plane, int h, int w, float lo, float hi, cnnc_colormap map,
                            cnnc_image *out, cnnc_error *err) {
    cnnc_status s = cnnc_image_create(out, w, h, 3, err);
    if (s != CNNC_OK) return s;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float t = level(plane[(size_t)y * w + x], lo, hi);
            const uint8_t g = cnnc_gray(t);
            cnnc_draw_pixel(out, x, y, map == CNNC_MAP_VIRIDIS ? cnnc_viridis(t) : (cnnc_rgb){g, g, g});
        }
    return CNNC_OK;
}

cnnc_status cnnc_tile_rgb(const float *chw, int h, int w, float lo, float hi, cnnc_image *out, cnnc_error *err) {
    cnnc_status s = cnnc_image_create(out, w, h, 3, err);
    if (s != CNNC_OK) return s;
    const size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < 3; k++) out->pixels[i * 3 + k] = cnnc_gray(level(chw[k * plane + i], lo, hi));
    return CNNC_OK;
}

int cnnc_tile_scale(int h, int w, int target) {
    const int side = h > w ? h : w;
    int scale = side > 0 ? (target + side / 2) / side : 1;
    if (scale < 1) scale = 1;
    return scale > 64 ? 64 : scale;
}

cnnc_status cnnc_grid(const cnnc_image *tiles, int count, int columns, int scale, int gap, cnnc_rgb background,
                      cnnc_image *out, cnnc_grid_layout *layout, cnnc_error *err) {
    if (count < 1) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "a grid needs at least one tile");
        return CNNC_ERR_ARGUMENT;
    }
    if (scale < 1) scale = 1;
    if (columns < 1) {
        columns = (int)ceil(sqrt((double)count));
        if (columns < 1) columns = 1;
    }
    if (columns > count) columns = count;
    cnnc_grid_layout g = {columns, (count + columns - 1) / columns, 0, 0, gap, scale};
    for (int i = 0; i < count; i++) {
        if (tiles[i].width * scale > g.cell_width) g.cell_width = tiles[i].width * scale;
        if (tiles[i].height * scale > g.cell_height) g.cell_height = tiles[i].height * scale;
    }
    cnnc_status s = cnnc_image_create(out, gap + columns * (g.cell_width + gap), gap + g.rows * (g.cell_height + gap), 3, err);
    if (s != CNNC_OK) return s;
    cnnc_draw_fill(out, background);
    for (int i = 0; i < count; i++)
        cnnc_draw_image(out, &tiles[i], gap + (i % columns) * (g.cell_width + gap), gap + (i / columns) * (g.cell_height + gap), scale);
    if (layout) *layout = g;
    return CNNC_OK;
}
