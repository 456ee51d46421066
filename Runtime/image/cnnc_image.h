/*
 * cnnc_image.h — pictures for `cnnc visualize`: PNG files (through libpng), an RGB canvas
 * with nearest-neighbour scaling, lines, rectangles and a built-in 5x7 bitmap font, the
 * viridis colour map, tensors turned into tiles and grids, line plots with axes, and the
 * reader of the CSV log that `cnnc train --log` writes.
 *
 * A separate unit from cnnc_runtime.c so that ordinary users of the runtime need no libpng:
 * only programs that make pictures compile image.c and plot.c and link -lpng (Debian's
 * libpng-dev). Conventions are the runtime's: functions that can fail return a cnnc_status
 * and fill a cnnc_error (which may be NULL); nothing exits or prints.
 */
#ifndef CNNC_IMAGE_H
#define CNNC_IMAGE_H

#include "cnnc_runtime.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Images and PNG files
 * ------------------------------------------------------------------------------------- */

/* An 8-bit image: `channels` interleaved samples per pixel (1 gray, 2 gray+alpha, 3 RGB,
 * 4 RGBA), rows from the top, `width * channels` bytes per row, no padding. */
typedef struct {
    int width, height, channels;
    uint8_t *pixels;
} cnnc_image;

/* An RGB colour. */
typedef struct {
    uint8_t r, g, b;
} cnnc_rgb;

/* Allocates a zero-filled (black) image. width and height 1..32768, channels 1..4, else
 * CNNC_ERR_ARGUMENT; CNNC_ERR_ALLOC. On failure *img is zeroed. */
cnnc_status cnnc_image_create(cnnc_image *img, int width, int height, int channels, cnnc_error *err);

/* Releases an image's pixels and zeroes it; NULL is allowed. */
void cnnc_image_free(cnnc_image *img);

/* Reads an 8-bit PNG (gray, gray+alpha, RGB, RGBA or palette; palette images become RGB or
 * RGBA) with libpng. The result keeps the file's channels. 16-bit files give
 * CNNC_ERR_FORMAT ("16-bit PNG files are not supported"), a missing file CNNC_ERR_IO, a
 * corrupt one CNNC_ERR_FORMAT with libpng's message. Messages start with the path. */
cnnc_status cnnc_png_read(const char *path, cnnc_image *out, cnnc_error *err);

/* Reads only the size and channels of a PNG (for checks before the real work). */
cnnc_status cnnc_png_info(const char *path, int *width, int *height, int *channels, cnnc_error *err);

/* Writes an image as an 8-bit PNG with libpng (gray, gray+alpha, RGB or RGBA from its
 * channels). A failed write removes the partial file. */
cnnc_status cnnc_png_write(const char *path, const cnnc_image *img, cnnc_error *err);

/* Resizes with bilinear interpolation (pixel centres aligned, as PIL's and OpenCV's
 * default); out receives a new image with the same channels. */
cnnc_status cnnc_image_resize(const cnnc_image *in, int width, int height, cnnc_image *out, cnnc_error *err);

/* ---------------------------------------------------------------------------------------
 * Colour
 * ------------------------------------------------------------------------------------- */

/* Viridis (matplotlib's default colour map, perceptually uniform and readable in gray and
 * by colour-blind readers), piecewise linear through its eleven tenths: 0 is dark purple
 * (68,1,84), 0.5 teal (33,145,140), 1 yellow (253,231,37). t is clamped to [0, 1]; NaN
 * gives 0. */
cnnc_rgb cnnc_viridis(float t);

/* Gray level round(255 * t) with t clamped to [0, 1] (NaN gives 0). */
uint8_t cnnc_gray(float t);

/* How a tile maps values to colours. */
typedef enum {
    CNNC_MAP_GRAY,   /* (v - lo) / (hi - lo) as a gray level */
    CNNC_MAP_VIRIDIS /* (v - lo) / (hi - lo) through viridis */
} cnnc_colormap;

/* ---------------------------------------------------------------------------------------
 * Drawing on an RGB canvas (channels 3). Everything clips at the edges.
 * ------------------------------------------------------------------------------------- */

void cnnc_draw_fill(cnnc_image *img, cnnc_rgb c);
void cnnc_draw_pixel(cnnc_image *img, int x, int y, cnnc_rgb c);
/* A filled rectangle of w x h pixels with its top-left corner at (x, y). */
void cnnc_draw_rect(cnnc_image *img, int x, int y, int w, int h, cnnc_rgb c);
/* The outline of that rectangle, `thickness` pixels wide, inside it. */
void cnnc_draw_frame(cnnc_image *img, int x, int y, int w, int h, int thickness, cnnc_rgb c);
/* A line from (x0, y0) to (x1, y1) inclusive (Bresenham), `thickness` 1 or more; with
 * dash > 0, dash pixels on and dash pixels off. */
void cnnc_draw_line(cnnc_image *img, int x0, int y0, int x1, int y1, int thickness, int dash, cnnc_rgb c);
/* Copies `src` (1 gray, 3 RGB or 4 RGBA channels; alpha is ignored) with its top-left
 * corner at (x, y), every pixel scaled up to scale x scale (nearest neighbour). */
void cnnc_draw_image(cnnc_image *dst, const cnnc_image *src, int x, int y, int scale);

/* The built-in font: 5x7 glyphs in 6x9 cells (printable ASCII; anything else draws a box),
 * every font pixel a scale x scale square. Text starts at the cell's top-left (x, y). */
#define CNNC_FONT_CELL_WIDTH 6
#define CNNC_FONT_CELL_HEIGHT 9
void cnnc_draw_text(cnnc_image *img, int x, int y, const char *text, int scale, cnnc_rgb c);
/* The same, drawn rotated 90 degrees counter-clockwise (reading upwards), for a y-axis
 * label; (x, y) is the top-left of the rotated text's box. */
void cnnc_draw_text_vertical(cnnc_image *img, int x, int y, const char *text, int scale, cnnc_rgb c);
/* Width in pixels of `text` at `scale` (CNNC_FONT_CELL_WIDTH * scale per character). */
int cnnc_text_width(const char *text, int scale);

/* ---------------------------------------------------------------------------------------
 * Tensors as pictures
 * ------------------------------------------------------------------------------------- */

/* One h x w plane (row stride w) as an RGB tile: value v becomes t = (v - lo) / (hi - lo)
 * (0.5 when hi == lo) through `map`. NaN shows as t = 0. */
cnnc_status cnnc_tile_plane(const float *plane, int h, int w, float lo, float hi, cnnc_colormap map,
                            cnnc_image *out, cnnc_error *err);

/* A (3, h, w) tensor as an RGB tile, each channel through t = (v - lo) / (hi - lo) as a
 * level (0.5 when hi == lo). */
cnnc_status cnnc_tile_rgb(const float *chw, int h, int w, float lo, float hi, cnnc_image *out, cnnc_error *err);

/* Smallest and largest finite values of n floats (both 0 when there are none). */
void cnnc_range(const float *x, int64_t n, float *lo, float *hi);

/* The grid layout of cnnc_grid, for callers and tests that need to find a tile. */
typedef struct {
    int columns, rows;
    int cell_width, cell_height; /* the largest tile, scaled */
    int gap;                     /* pixels between cells and around the grid */
    int scale;
} cnnc_grid_layout;

/* Lays `count` tiles out row by row in `columns` columns (0: about square), each scaled by
 * `scale` (nearest neighbour) into cells the size of the largest scaled tile, `gap` pixels
 * of `background` between cells and around the border. Tile i has its top-left corner at
 * x = gap + (i % columns) * (cell_width + gap), y = gap + (i / columns) * (cell_height + gap).
 * layout may be NULL. */
cnnc_status cnnc_grid(const cnnc_image *tiles, int count, int columns, int scale, int gap, cnnc_rgb background,
                      cnnc_image *out, cnnc_grid_layout *layout, cnnc_error *err);

/* The scale that brings the larger side of a tile to about `target` pixels: at least 1,
 * at most 64 (a 5x5 filter with target 48 is drawn at 9x). */
int cnnc_tile_scale(int h, int w, int target);

/* ---------------------------------------------------------------------------------------
 * Line plots
 * ------------------------------------------------------------------------------------- */

/* One line of a plot: `count` points (x[i], y[i]); non-finite points break the line. With
 * markers set, each point also gets a 5x5 square; with dash > 0 the line is dashed. */
typedef struct {
    const double *x, *y;
    int count;
    cnnc_rgb color;
    const char *label; /* in the legend; NULL: not listed */
    int markers;
    int dash;
} cnnc_series;

/* A plot panel: axes with "nice" ticks (1, 2 or 5 times a power of ten) and tick labels,
 * a title above, axis labels, a legend in the top right corner of the plotting area. The
 * axes span the data (y_min/y_max override when not NaN). */
typedef struct {
    const char *title, *x_label, *y_label;
    double y_min, y_max; /* NaN: from the data */
    const double *vlines; /* x positions of dotted vertical guides (epoch ends); may be NULL */
    int vline_count;
} cnnc_plot;

/* Draws a plot into the w x h rectangle at (x, y) of an RGB canvas. The plotting area of
 * a panel, for tests: see cnnc_plot_area. */
void cnnc_plot_draw(cnnc_image *img, int x, int y, int w, int h, const cnnc_plot *plot,
                    const cnnc_series *series, int count);

/* The inner plotting area (inside the axes) of a panel at (x, y, w, h). */
void cnnc_plot_area(int x, int y, int w, int h, int *ax, int *ay, int *aw, int *ah);

/* ---------------------------------------------------------------------------------------
 * The training log (CNNC_LOG_HEADER columns)
 * ------------------------------------------------------------------------------------- */

/* The rows of a log: loss, accuracy, test values are NaN where the field is empty. */
typedef struct {
    int count;
    int *epoch;
    int64_t *step;
    double *loss, *accuracy, *lr, *test_loss, *test_accuracy;
} cnnc_log_table;

/* Reads a CSV log as cnnc_log_write writes it: the header line CNNC_LOG_HEADER (columns
 * found by name, so extra columns are allowed), then rows. A missing column, a malformed
 * number or no rows give CNNC_ERR_FORMAT naming the line. */
cnnc_status cnnc_log_read(const char *path, cnnc_log_table *out, cnnc_error *err);
void cnnc_log_table_free(cnnc_log_table *t);

/* Plots a log as two panels side by side (loss, accuracy in percent) against the step,
 * width x height pixels in all: the training values of every row as a line, the
 * end-of-epoch training and test values as lines with markers, epoch ends as dotted
 * vertical lines. Rows that end an epoch are those whose next row has a higher epoch (and
 * the last row). */
cnnc_status cnnc_plot_log(const cnnc_log_table *log, int width, int height, cnnc_image *out, cnnc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* CNNC_IMAGE_H */
