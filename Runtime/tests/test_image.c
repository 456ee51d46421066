/*
 * test_image.c — tests of the picture unit (Runtime/image): PNG round trips and errors
 * through libpng, resizing, the colour map, the font, tiles and grid layout, plots and the
 * training log reader.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_image.h"
#include "check.h"

#include <math.h>
#include <png.h>

/* An image whose every sample is a function of its position, so round trips show any error. */
static cnnc_image pattern(int w, int h, int channels) {
    cnnc_image img;
    if (cnnc_image_create(&img, w, h, channels, NULL) != CNNC_OK) exit(2);
    for (int i = 0; i < w * h * channels; i++) img.pixels[i] = (uint8_t)(i * 37 + 11);
    return img;
}

static void test_png_round_trips(void) {
    for (int channels = 1; channels <= 4; channels++) {
        cnnc_error err = {CNNC_OK, {0}};
        TMP_PATH(path, "round.png");
        cnnc_image img = pattern(13, 7, channels), back;
        CHECK_STATUS(cnnc_png_write(path, &img, &err), CNNC_OK, &err);
        CHECK_STATUS(cnnc_png_read(path, &back, &err), CNNC_OK, &err);
        CHECK(back.width == 13 && back.height == 7 && back.channels == channels);
        CHECK(back.pixels && memcmp(back.pixels, img.pixels, (size_t)13 * 7 * channels) == 0);
        int w = 0, h = 0, c = 0;
        CHECK_STATUS(cnnc_png_info(path, &w, &h, &c, &err), CNNC_OK, &err);
        CHECK(w == 13 && h == 7 && c == channels);
        /* the file is a real PNG: signature, IHDR first, IEND last */
        size_t size;
        unsigned char *bytes = read_bytes(path, &size);
        CHECK(bytes && size > 57 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(bytes + 12, "IHDR", 4) == 0
              && memcmp(bytes + size - 8, "IEND", 4) == 0);
        free(bytes);
        cnnc_image_free(&img);
        cnnc_image_free(&back);
    }
}

static void test_png_palette_and_errors(void) {
    cnnc_error err = {CNNC_OK, {0}};
    /* a palette image (written with libpng directly) reads as RGB */
    TMP_PATH(palette, "palette.png");
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = 2;
    image.height = 1;
    image.format = PNG_FORMAT_RGB_COLORMAP;
    image.colormap_entries = 2;
    const uint8_t indices[2] = {1, 0}, colors[6] = {10, 20, 30, 200, 100, 50};
    CHECK(png_image_write_to_file(&image, palette, 0, indices, 0, colors));
    cnnc_image img;
    CHECK_STATUS(cnnc_png_read(palette, &img, &err), CNNC_OK, &err);
    CHECK(img.channels == 3 && img.width == 2 && img.pixels[0] == 200 && img.pixels[1] == 100 && img.pixels[2] == 50
          && img.pixels[3] == 10);
    cnnc_image_free(&img);

    /* 16-bit files are refused by name */
    TMP_PATH(deep, "deep.png");
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = 2;
    image.height = 2;
    image.format = PNG_FORMAT_LINEAR_Y;
    const uint16_t samples[4] = {0, 1000, 30000, 65535};
    CHECK(png_image_write_to_file(&image, deep, 0, samples, 0, NULL));
    CHECK_STATUS(cnnc_png_read(deep, &img, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "16-bit PNG files are not supported");
    CHECK(img.pixels == NULL);

    TMP_PATH(missing, "missing.png");
    CHECK_STATUS(cnnc_png_read(missing, &img, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "missing.png': no such file or directory");
    TMP_PATH(text, "text.png");
    write_bytes(text, "hello, this is not a picture", 28);
    CHECK_STATUS(cnnc_png_read(text, &img, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "text.png: not a PNG file");
    /* a truncated PNG */
    cnnc_image p = pattern(40, 40, 3);
    TMP_PATH(cut, "cut.png");
    CHECK_STATUS(cnnc_png_write(cut, &p, &err), CNNC_OK, &err);
    size_t size;
    unsigned char *bytes = read_bytes(cut, &size);
    write_bytes(cut, bytes, size / 2);
    free(bytes);
    CHECK_STATUS(cnnc_png_read(cut, &img, &err), CNNC_ERR_FORMAT, &err);
    cnnc_image_free(&p);
    TMP_PATH(nodir, "no/such/dir.png");
    cnnc_image q = pattern(2, 2, 1);
    CHECK_STATUS(cnnc_png_write(nodir, &q, &err), CNNC_ERR_IO, &err);
    /* Regular files only (issue #14): a FIFO with no reader, a directory and a device are
     * refused at once, for reading and for writing (an alarm turns a block into a failure). */
    alarm(30);
    TMP_PATH(fifo, "picture.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_STATUS(cnnc_png_write(fifo, &q, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "it is a FIFO, not a regular file");
    CHECK_STATUS(cnnc_png_read(fifo, &img, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "it is a FIFO, not a regular file");
    cnnc_log_table t;
    CHECK_STATUS(cnnc_log_read(fifo, &t, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "it is a FIFO, not a regular file");
    TMP_PATH(folder, "folder.png");
    CHECK(mkdir(folder, 0700) == 0);
    CHECK_STATUS(cnnc_png_write(folder, &q, &err), CNNC_ERR_IO, &err);
    CHECK_CONTAINS(err.message, "folder.png'");
    if (access("/dev/null", W_OK) == 0) {
        CHECK_STATUS(cnnc_png_write("/dev/null", &q, &err), CNNC_ERR_IO, &err);
        CHECK_CONTAINS(err.message, "it is a character device, not a regular file");
    }
    alarm(0);
    cnnc_image_free(&q);
    CHECK_STATUS(cnnc_image_create(&img, 0, 5, 3, &err), CNNC_ERR_ARGUMENT, &err);
}

static void test_resize(void) {
    /* 2x1 gray [0, 200] to 4x1: centres at -0.25, 0.25, 0.75, 1.25 of the source -> 0, 50, 150, 200 */
    cnnc_image in, out;
    cnnc_image_create(&in, 2, 1, 1, NULL);
    in.pixels[0] = 0;
    in.pixels[1] = 200;
    CHECK_STATUS(cnnc_image_resize(&in, 4, 1, &out, NULL), CNNC_OK, NULL);
    CHECK(out.pixels[0] == 0 && out.pixels[1] == 50 && out.pixels[2] == 150 && out.pixels[3] == 200);
    cnnc_image_free(&out);
    /* the same size is the identity */
    cnnc_image p = pattern(5, 3, 3);
    CHECK_STATUS(cnnc_image_resize(&p, 5, 3, &out, NULL), CNNC_OK, NULL);
    CHECK(memcmp(out.pixels, p.pixels, 45) == 0);
    cnnc_image_free(&out);
    cnnc_image_free(&p);
    cnnc_image_free(&in);
}

static void test_colour(void) {
    cnnc_rgb lo = cnnc_viridis(0.0f), mid = cnnc_viridis(0.5f), hi = cnnc_viridis(1.0f), q = cnnc_viridis(0.05f);
    CHECK(lo.r == 68 && lo.g == 1 && lo.b == 84);
    CHECK(mid.r == 33 && mid.g == 145 && mid.b == 140);
    CHECK(hi.r == 253 && hi.g == 231 && hi.b == 37);
    CHECK(q.r == 70 && q.g == 19 && q.b == 101); /* halfway between the first two tenths */
    cnnc_rgb below = cnnc_viridis(-3.0f), nan = cnnc_viridis(NAN), above = cnnc_viridis(7.0f);
    CHECK(below.r == 68 && nan.r == 68 && above.r == 253);
    /* brightness rises monotonically (readable in gray) */
    int prev = -1, monotonic = 1;
    for (int i = 0; i <= 100; i++) {
        cnnc_rgb c = cnnc_viridis(i / 100.0f);
        int y = 299 * c.r + 587 * c.g + 114 * c.b;
        if (y < prev) monotonic = 0;
        prev = y;
    }
    CHECK(monotonic);
    CHECK(cnnc_gray(0.0f) == 0 && cnnc_gray(1.0f) == 255 && cnnc_gray(0.5f) == 128 && cnnc_gray(NAN) == 0);
}

static void test_drawing_and_font(void) {
    cnnc_image img;
    cnnc_image_create(&img, 40, 20, 3, NULL);
    cnnc_draw_fill(&img, (cnnc_rgb){255, 255, 255});
    CHECK(cnnc_text_width("ab", 2) == 24);
    CHECK_STR(cnnc_status_string(CNNC_OK), "ok");
    cnnc_draw_text(&img, 0, 0, "1", 1, (cnnc_rgb){0, 0, 0});
    /* '1' has its top pixel at column 2 of row 0 (y = 1 in the cell), the base row full from 1 to 3 */
    CHECK(img.pixels[(1 * 40 + 2) * 3] == 0 && img.pixels[(1 * 40 + 1) * 3] == 255);
    CHECK(img.pixels[(7 * 40 + 1) * 3] == 0 && img.pixels[(7 * 40 + 3) * 3] == 0 && img.pixels[(7 * 40 + 4) * 3] == 255);
    /* drawing clips instead of writing outside */
    cnnc_draw_rect(&img, -5, -5, 100, 100, (cnnc_rgb){1, 2, 3});
    cnnc_draw_line(&img, -10, 5, 100, 5, 3, 0, (cnnc_rgb){9, 9, 9});
    cnnc_draw_text(&img, 35, 15, "xyz", 3, (cnnc_rgb){0, 0, 0});
    CHECK(img.pixels[0] == 1 && img.pixels[(5 * 40 + 20) * 3] == 9);
    /* nearest-neighbour scaling: a 2x1 gray image at 3x is two 3x3 blocks */
    cnnc_image src;
    cnnc_image_create(&src, 2, 1, 1, NULL);
    src.pixels[0] = 50;
    src.pixels[1] = 150;
    cnnc_draw_image(&img, &src, 10, 10, 3);
    CHECK(img.pixels[(12 * 40 + 12) * 3] == 50 && img.pixels[(12 * 40 + 13) * 3] == 150 && img.pixels[(10 * 40 + 15) * 3 + 2] == 150);
    cnnc_image_free(&src);
    cnnc_image_free(&img);
}

static void test_tiles_and_grid(void) {
    const float plane[6] = {-1.0f, 0.0f, 1.0f, 2.0f, 3.0f, NAN};
    cnnc_image tile;
    CHECK_STATUS(cnnc_tile_plane(plane, 2, 3, -1.0f, 3.0f, CNNC_MAP_GRAY, &tile, NULL), CNNC_OK, NULL);
    CHECK(tile.width == 3 && tile.height == 2 && tile.channels == 3);
    CHECK(tile.pixels[0] == 0 && tile.pixels[3] == 64 && tile.pixels[6] == 128 && tile.pixels[12] == 255 && tile.pixels[15] == 0);
    float lo, hi;
    cnnc_range(plane, 6, &lo, &hi);
    CHECK(lo == -1.0f && hi == 3.0f);
    cnnc_image tiles[5];
    for (int i = 0; i < 5; i++) {
        const float v[4] = {(float)i, (float)i, (float)i, (float)i};
        cnnc_tile_plane(v, 2, 2, 0.0f, 4.0f, CNNC_MAP_VIRIDIS, &tiles[i], NULL);
    }
    cnnc_image grid;
    cnnc_grid_layout g;
    CHECK_STATUS(cnnc_grid(tiles, 5, 0, 4, 2, (cnnc_rgb){255, 255, 255}, &grid, &g, NULL), CNNC_OK, NULL);
    CHECK(g.columns == 3 && g.rows == 2 && g.cell_width == 8 && g.cell_height == 8);
    CHECK(grid.width == 2 + 3 * 10 && grid.height == 2 + 2 * 10);
    /* tile 4 is at column 1 of row 1 and is viridis(1): yellow; the unused cell stays background */
    const int x = 2 + 1 * 10 + 3, y = 2 + 1 * 10 + 5;
    CHECK(grid.pixels[(y * grid.width + x) * 3] == 253 && grid.pixels[(y * grid.width + x) * 3 + 2] == 37);
    CHECK(grid.pixels[((2 + 10 + 1) * grid.width + 2 + 20 + 1) * 3] == 255);
    CHECK(cnnc_tile_scale(5, 5, 48) == 10 && cnnc_tile_scale(28, 28, 48) == 2 && cnnc_tile_scale(500, 100, 48) == 1);
    for (int i = 0; i < 5; i++) cnnc_image_free(&tiles[i]);
    cnnc_image_free(&grid);
    cnnc_image_free(&tile);
}

static void test_log_and_plot(void) {
    cnnc_error err = {CNNC_OK, {0}};
    TMP_PATH(path, "log.csv");
    cnnc_log *log;
    CHECK_STATUS(cnnc_log_open(path, 0, &log, &err), CNNC_OK, &err);
    for (int i = 1; i <= 6; i++) {
        const int end = i % 3 == 0;
        cnnc_log_entry row = {(i - 1) / 3 + 1, 10 * i, 2.0 / i, 0.1 * i, 0.01, end ? 1.5 / i : NAN, end ? 0.1 * i : NAN, 100.0, i};
        CHECK_STATUS(cnnc_log_write(log, &row, &err), CNNC_OK, &err);
    }
    cnnc_log_close(log, NULL);
    cnnc_log_table t;
    CHECK_STATUS(cnnc_log_read(path, &t, &err), CNNC_OK, &err);
    CHECK(t.count == 6 && t.epoch[5] == 2 && t.step[2] == 30 && fabs(t.loss[1] - 1.0) < 1e-9 && isnan(t.test_loss[0])
          && fabs(t.test_accuracy[5] - 0.6) < 1e-9);
    cnnc_image img;
    CHECK_STATUS(cnnc_plot_log(&t, 800, 300, &img, &err), CNNC_OK, &err);
    CHECK(img.width == 800 && img.height == 300);
    /* inside the left panel's plotting area there are blue (train) and orange (test) pixels */
    int ax, ay, aw, ah, blue = 0, orange = 0;
    cnnc_plot_area(0, 0, 400, 300, &ax, &ay, &aw, &ah);
    for (int y = ay; y < ay + ah; y++)
        for (int x = ax; x < ax + aw; x++) {
            const uint8_t *p = img.pixels + ((size_t)y * img.width + x) * 3;
            blue += p[0] == 31 && p[1] == 119 && p[2] == 180;
            orange += p[0] == 230 && p[1] == 110 && p[2] == 20;
        }
    CHECK(blue > 20 && orange > 20);
    TMP_PATH(png, "plot.png");
    CHECK_STATUS(cnnc_png_write(png, &img, &err), CNNC_OK, &err);
    cnnc_image_free(&img);
    cnnc_log_table_free(&t);

    write_bytes(path, "epoch,step,loss\n1,2,3\n", 22);
    CHECK_STATUS(cnnc_log_read(path, &t, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "log.csv:1: no column 'accuracy'");
    const char *bad = CNNC_LOG_HEADER "\n1,10,0.5,0.9,0.01,,,1,1\n1,x,0.5,0.9,0.01,,,1,1\n";
    write_bytes(path, bad, strlen(bad));
    CHECK_STATUS(cnnc_log_read(path, &t, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "log.csv:3: column 'step': expected a number, got 'x'");
    write_bytes(path, CNNC_LOG_HEADER "\n", strlen(CNNC_LOG_HEADER) + 1);
    CHECK_STATUS(cnnc_log_read(path, &t, &err), CNNC_ERR_FORMAT, &err);
    CHECK_CONTAINS(err.message, "no rows");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cnnc_runtime_image_test_XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        printf("cannot create a temporary directory\n");
        printf("runtime-image: 0 passed, 1 failed\n");
        return 1;
    }
    test_png_round_trips();
    test_png_palette_and_errors();
    test_resize();
    test_colour();
    test_drawing_and_font();
    test_tiles_and_grid();
    test_log_and_plot();
    remove_temp_dir();
    printf("runtime-image: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
