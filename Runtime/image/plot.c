/*
 * plot.c — line plots with axes, ticks, labels and a legend on the RGB canvas, and the
 * training log (the CSV file `cnnc train --log` writes) read back and plotted. See
 * cnnc_image.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "cnnc_image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cnnc_rgb ink = {40, 40, 40}, faint = {225, 225, 225}, guide = {170, 170, 170};

/* Margins of a panel around its plotting area: room for the title, tick labels and axis labels. */
enum { PLOT_LEFT = 64, PLOT_RIGHT = 14, PLOT_TOP = 26, PLOT_BOTTOM = 42 };

void cnnc_plot_area(int x, int y, int w, int h, int *ax, int *ay, int *aw, int *ah) {
    *ax = x + PLOT_LEFT;
    *ay = y + PLOT_TOP;
    *aw = w - PLOT_LEFT - PLOT_RIGHT;
    *ah = h - PLOT_TOP - PLOT_BOTTOM;
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` intervals over span. */
static double nice_step(double span, int target) {
    const double raw = span / target, power = pow(10.0, floor(log10(raw))), f = raw / power;
    return power * (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0);
}

/* Formats a tick value with as many decimals as the step needs. */
static void tick_label(char *buf, size_t size, double v, double step) {
    int decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6) decimals = 6;
    if (fabs(v) < step * 1e-9) v = 0.0;
    snprintf(buf, size, "%.*f", decimals, v);
}

/* The data range over every finite point of every series (x or y). */
static void series_range(const cnnc_series *series, int count, int want_y, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < count; s++)
        for (int i = 0; i < series[s].count; i++) {
            const double x = series[s].x[i], y = series[s].y[i], v = want_y ? y : x;
            if (!isfinite(x) || !isfinite(y)) continue;
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
    if (!(*lo <= *hi)) { *lo = 0.0; *hi = 1.0; }
    if (*hi - *lo < 1e-12) { *lo -= 0.5; *hi += 0.5; }
}

void cnnc_plot_draw(cnnc_image *img, int x, int y, int w, int h, const cnnc_plot *plot,
                    const cnnc_series *series, int count) {
    int ax, ay, aw, ah;
    cnnc_plot_area(x, y, w, h, &ax, &ay, &aw, &ah);
    double x0, x1, y0, y1;
    series_range(series, count, 0, &x0, &x1);
    series_range(series, count, 1, &y0, &y1);
    if (!isnan(plot->y_min)) y0 = plot->y_min;
    if (!isnan(plot->y_max)) y1 = plot->y_max;
    /* widen y to whole ticks so the curve never touches the frame */
    const double ystep = nice_step(y1 - y0, 5), xstep = nice_step(x1 - x0, 6);
    const double top = y1;
    if (isnan(plot->y_min)) y0 = floor(y0 / ystep) * ystep;
    if (isnan(plot->y_max)) y1 = ceil(y1 / ystep) * ystep;
    if (isnan(plot->y_max) && y1 - top < 0.03 * (y1 - y0)) y1 += ystep; /* headroom above the largest value */
    #define PX(v) (ax + (int)lround(((v) - x0) / (x1 - x0) * (aw - 1)))
    #define PY(v) (ay + ah - 1 - (int)lround(((v) - y0) / (y1 - y0) * (ah - 1)))

    /* grid lines and tick labels */
    char label[32];
    for (double v = ceil(y0 / ystep - 1e-9) * ystep; v <= y1 + ystep * 1e-9; v += ystep) {
        cnnc_draw_line(img, ax, PY(v), ax + aw - 1, PY(v), 1, 0, faint);
        cnnc_draw_line(img, ax - 4, PY(v), ax - 1, PY(v), 1, 0, ink);
        tick_label(label, sizeof label, v, ystep);
        cnnc_draw_text(img, ax - 6 - cnnc_text_width(label, 1), PY(v) - 5, label, 1, ink);
    }
    for (double v = ceil(x0 / xstep - 1e-9) * xstep; v <= x1 + xstep * 1e-9; v += xstep) {
        cnnc_draw_line(img, PX(v), ay, PX(v), ay + ah - 1, 1, 0, faint);
        cnnc_draw_line(img, PX(v), ay + ah, PX(v), ay + ah + 3, 1, 0, ink);
        tick_label(label, sizeof label, v, xstep);
        cnnc_draw_text(img, PX(v) - cnnc_text_width(label, 1) / 2, ay + ah + 4, label, 1, ink);
    }
    for (int i = 0; i < plot->vline_count; i++)
        if (plot->vlines[i] >= x0 && plot->vlines[i] <= x1)
            cnnc_draw_line(img, PX(plot->vlines[i]), ay, PX(plot->vlines[i]), ay + ah - 1, 1, 2, guide);

    /* the series, clipped to the plotting area */
    for (int s = 0; s < count; s++) {
        const cnnc_series *e = &series[s];
        int have = 0, px = 0, py = 0;
        for (int i = 0; i < e->count; i++) {
            if (!isfinite(e->x[i]) || !isfinite(e->y[i])) { have = 0; continue; }
            double v = e->y[i] < y0 ? y0 : e->y[i] > y1 ? y1 : e->y[i];
            const int qx = PX(e->x[i]), qy = PY(v);
            if (have) cnnc_draw_line(img, px, py, qx, qy, 2, e->dash, e->color);
            if (e->markers) cnnc_draw_rect(img, qx - 2, qy - 2, 5, 5, e->color);
            px = qx; py = qy; have = 1;
        }
    }
    /* frame, title, axis labels */
    cnnc_draw_frame(img, ax - 1, ay - 1, aw + 2, ah + 2, 1, ink);
    if (plot->title) cnnc_draw_text(img, ax + (aw - cnnc_text_width(plot->title, 2)) / 2, y + 2, plot->title, 2, ink);
    if (plot->x_label) cnnc_draw_text(img, ax + (aw - cnnc_text_width(plot->x_label, 1)) / 2, ay + ah + 18, plot->x_label, 1, ink);
    if (plot->y_label) cnnc_draw_text_vertical(img, x + 2, ay + (ah - cnnc_text_width(plot->y_label, 1)) / 2, plot->y_label, 1, ink);

    /* legend: a short line of each labelled series and its label, top right */
    int rows = 0, widest = 0;
    for (int s = 0; s < count; s++)
        if (series[s].label) {
            rows++;
            if (cnnc_text_width(series[s].label, 1) > widest) widest = cnnc_text_width(series[s].label, 1);
        }
    if (rows == 0) return;
    const int lw = widest + 34, lh = rows * 12 + 6, lx = ax + aw - lw - 6;
    /* top right, or bottom right when fewer points lie there */
    int covered[2] = {0, 0};
    for (int s = 0; s < count; s++)
        for (int i = 0; i < series[s].count; i++) {
            if (!isfinite(series[s].x[i]) || !isfinite(series[s].y[i])) continue;
            const int px = PX(series[s].x[i]), py = PY(series[s].y[i]);
            for (int corner = 0; corner < 2; corner++) {
                const int cy = corner ? ay + ah - lh - 6 : ay + 6;
                covered[corner] += px >= lx - 4 && px < lx + lw + 4 && py >= cy - 4 && py < cy + lh + 4;
            }
        }
    const int ly = covered[1] < covered[0] ? ay + ah - lh - 6 : ay + 6;
    cnnc_draw_rect(img, lx, ly, lw, lh, (cnnc_rgb){255, 255, 255});
    cnnc_draw_frame(img, lx, ly, lw, lh, 1, guide);
    int row = 0;
    for (int s = 0; s < count; s++) {
        if (!series[s].label) continue;
        const int cy = ly + 9 + row * 12;
        cnnc_draw_line(img, lx + 5, cy, lx + 24, cy, 2, series[s].dash, series[s].color);
        if (series[s].markers) cnnc_draw_rect(img, lx + 12, cy - 2, 5, 5, series[s].color);
        cnnc_draw_text(img, lx + 29, cy - 5, series[s].label, 1, ink);
        row++;
    }
    #undef PX
    #undef PY
}

/* ---------------------------------------------------------------------------------------
 * The training log
 * ------------------------------------------------------------------------------------- */

void cnnc_log_table_free(cnnc_log_table *t) {
    if (t == NULL) return;
    free(t->epoch);
    free(t->step);
    free(t->loss);
    free(t->accuracy);
    free(t->lr);
    free(t->test_loss);
    free(t->test_accuracy);
    memset(t, 0, sizeof *t);
}

/* Splits a CSV line in place at commas; returns the number of fields (at most max). */
static int split_fields(char *line, char **fields, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* A field as a number; empty is NaN. Returns 0 for text that is not a number. */
static int parse_number(const char *field, double *v) {
    if (*field == '\0') { *v = NAN; return 1; }
    char *end;
    errno = 0;
    *v = strtod(field, &end);
    return *end == '\0' && errno == 0;
}

cnnc_status cnnc_log_read(const char *path, cnnc_log_table *out, cnnc_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = cnnc_file_open(path, "r", err);
    if (f == NULL) {
        return CNNC_ERR_IO;
    }
    static const char *const names[7] = {"epoch", "step", "loss", "accuracy", "lr", "test_loss", "test_accuracy"};
    int column[7];
    char line[4096];
    char *fields[64];
    cnnc_status s = CNNC_OK;
    if (!fgets(line, sizeof line, f)) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: empty file, expected the header '%s'", path, CNNC_LOG_HEADER);
        fclose(f);
        return CNNC_ERR_FORMAT;
    }
    const int header = split_fields(line, fields, 64);
    for (int k = 0; k < 7; k++) {
        column[k] = -1;
        for (int i = 0; i < header; i++)
            if (strcmp(fields[i], names[k]) == 0) column[k] = i;
        if (column[k] < 0) {
            cnnc_error_set(err, CNNC_ERR_FORMAT, "%s:1: no column '%s' (a log of `cnnc train --log` starts with '%s')", path, names[k],
                           CNNC_LOG_HEADER);
            fclose(f);
            return CNNC_ERR_FORMAT;
        }
    }
    int capacity = 0;
    for (int number = 2; fgets(line, sizeof line, f); number++) {
        if (line[strspn(line, " \t\r\n")] == '\0') continue;
        const int n = split_fields(line, fields, 64);
        double v[7];
        for (int k = 0; k < 7; k++) {
            if (column[k] >= n || !parse_number(fields[column[k]], &v[k]) || (k < 2 && isnan(v[k]))) {
                cnnc_error_set(err, CNNC_ERR_FORMAT, "%s:%d: column '%s': expected a number, got '%s'", path, number, names[k],
                               column[k] < n ? fields[column[k]] : "");
                s = CNNC_ERR_FORMAT;
                break;
            }
        }
        if (s != CNNC_OK) break;
        if (out->count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            int *epoch = realloc(out->epoch, sizeof(int) * (size_t)capacity);
            if (epoch) out->epoch = epoch;
            int64_t *step = realloc(out->step, sizeof(int64_t) * (size_t)capacity);
            if (step) out->step = step;
            double **columns[5] = {&out->loss, &out->accuracy, &out->lr, &out->test_loss, &out->test_accuracy};
            int ok = epoch && step;
            for (int k = 0; k < 5; k++) {
                double *p = realloc(*columns[k], sizeof(double) * (size_t)capacity);
                if (p) *columns[k] = p; else ok = 0;
            }
            if (!ok) {
                cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory at line %d", path, number);
                s = CNNC_ERR_ALLOC;
                break;
            }
        }
        out->epoch[out->count] = (int)v[0];
        out->step[out->count] = (int64_t)v[1];
        out->loss[out->count] = v[2];
        out->accuracy[out->count] = v[3];
        out->lr[out->count] = v[4];
        out->test_loss[out->count] = v[5];
        out->test_accuracy[out->count] = v[6];
        out->count++;
    }
    fclose(f);
    if (s == CNNC_OK && out->count == 0) {
        cnnc_error_set(err, CNNC_ERR_FORMAT, "%s: the log has a header but no rows", path);
        s = CNNC_ERR_FORMAT;
    }
    if (s != CNNC_OK) cnnc_log_table_free(out);
    return s;
}

cnnc_status cnnc_plot_log(const cnnc_log_table *log, int width, int height, cnnc_image *out, cnnc_error *err) {
    const int n = log->count;
    cnnc_status s = cnnc_image_create(out, width, height, 3, err);
    if (s != CNNC_OK) return s;
    cnnc_draw_fill(out, (cnnc_rgb){255, 255, 255});
    double *buf = malloc(sizeof(double) * (size_t)(9 * n + 1));
    if (buf == NULL) {
        cnnc_image_free(out);
        cnnc_error_set(err, CNNC_ERR_ALLOC, "out of memory plotting %d rows", n);
        return CNNC_ERR_ALLOC;
    }
    /* columns: every row's step; the end-of-epoch rows' step, loss, accuracy, test loss, test accuracy */
    double *step = buf, *estep = buf + n, *eloss = buf + 2 * n, *eacc = buf + 3 * n, *tloss = buf + 4 * n,
           *tacc = buf + 5 * n, *sloss = buf + 6 * n, *sacc = buf + 7 * n, *sstep = buf + 8 * n;
    int epochs = 0, steps = 0, tests = 0;
    for (int i = 0; i < n; i++) {
        step[i] = (double)log->step[i];
        if (i + 1 == n || log->epoch[i + 1] > log->epoch[i]) {
            estep[epochs] = step[i];
            eloss[epochs] = log->loss[i];
            eacc[epochs] = 100.0 * log->accuracy[i];
            tloss[epochs] = log->test_loss[i];
            tacc[epochs] = 100.0 * log->test_accuracy[i];
            tests += isfinite(log->test_loss[i]);
            epochs++;
        } else {
            sstep[steps] = step[i];
            sloss[steps] = log->loss[i];
            sacc[steps] = 100.0 * log->accuracy[i];
            steps++;
        }
    }
    const cnnc_rgb light = {140, 180, 225}, blue = {31, 119, 180}, orange = {230, 110, 20};
    for (int panel = 0; panel < 2; panel++) {
        cnnc_series series[3];
        int count = 0;
        if (steps > 0)
            series[count++] = (cnnc_series){sstep, panel ? sacc : sloss, steps, light, "train, running", 0, 0};
        series[count++] = (cnnc_series){estep, panel ? eacc : eloss, epochs, blue, "train, epoch", 1, 0};
        if (tests > 0) series[count++] = (cnnc_series){estep, panel ? tacc : tloss, epochs, orange, "test, epoch", 1, 0};
        cnnc_plot plot = {panel ? "accuracy" : "loss", "step", panel ? "accuracy (%)" : "loss (cross-entropy)", panel ? NAN : 0.0,
                          NAN, estep, epochs > 1 ? epochs - 1 : 0};
        cnnc_plot_draw(out, panel * (width / 2), 0, width / 2, height, &plot, series, count);
    }
    free(buf);
    return CNNC_OK;
}
