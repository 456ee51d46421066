/*
 * progress.c — the one-line training progress display and the CSV training log.
 *
 * On a terminal the progress line is redrawn in place with '\r'; into a file or pipe it is
 * printed as whole lines every N steps, so logs stay readable. Nothing is printed except to
 * the FILE * the caller passes.
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------------------------- */

int cnnc_format_duration(char *buf, size_t size, double seconds) {
    if (!isfinite(seconds) || seconds < 0 || seconds >= 1e12) {
        return snprintf(buf, size, "-:--:--");
    }
    long long s = (long long)seconds;
    return snprintf(buf, size, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
}

/* Returns the number of decimal digits of v (at least 1). */
static int progress_digits(long long v) {
    int digits = 1;
    while (v >= 10 || v <= -10) {
        v /= 10;
        digits++;
    }
    return digits + (v < 0);
}

int cnnc_progress_format(char *buf, size_t size, int epoch, int epochs, int64_t step, int64_t steps,
                         double loss, double accuracy, double images_per_second,
                         double eta_seconds) {
    char eta[32];
    cnnc_format_duration(eta, sizeof eta, eta_seconds);
    /* Epoch and step are padded to the width of their totals so the line keeps its shape. */
    return snprintf(buf, size,
                    "epoch %*d/%d  step %*lld/%lld  loss %.4f  acc %.2f%%  %.0f img/s  "
                    "eta %s",
                    progress_digits(epochs), epoch, epochs, progress_digits((long long)steps),
                    (long long)step, (long long)steps, loss, 100.0 * accuracy, images_per_second,
                    eta);
}

/* ---------------------------------------------------------------------------------------
 * Progress
 * ------------------------------------------------------------------------------------- */

static double progress_now(const cnnc_progress *p) {
    return p->clock != NULL ? p->clock() : cnnc_now_seconds();
}

void cnnc_progress_init(cnnc_progress *p, int64_t every) {
    memset(p, 0, sizeof *p);
    p->every = every < 1 ? 1 : every;
    p->tty = -1;
    p->min_interval = 0.1;
    p->clock = NULL;
    p->mark = p->last_update = p->epoch_start = progress_now(p);
}

void cnnc_progress_begin(cnnc_progress *p) {
    p->mark = progress_now(p);
}

/* Shows the stored line: in place after '\r' in redraw mode, else as a line. */
static void progress_draw(cnnc_progress *p, FILE *out, double now) {
    p->pending = 0;
    p->last_draw = now;
    if (out == NULL) {
        return;
    }
    int length = (int)strlen(p->line);
    if (p->tty) {
        /* Spaces cover what is left of a longer previous line. */
        int pad = p->drawn_length > length ? p->drawn_length - length : 0;
        fprintf(out, "\r%s%*s", p->line, pad, "");
        p->drawn_length = length;
    } else {
        fprintf(out, "%s\n", p->line);
    }
    fflush(out);
}

void cnnc_progress_update(cnnc_progress *p, FILE *out, int epoch, int epochs, int64_t step,
                          int64_t steps, double loss, double accuracy, int64_t images) {
    double now = progress_now(p);
    if (p->tty < 0) {
        p->tty = out != NULL && isatty(fileno(out));
    }
    if (epoch != p->epoch) {
        /* A new epoch: close the previous one's line and book its time and steps. */
        if (p->epoch != 0) {
            cnnc_progress_finish(p, out);
            p->done_seconds += p->last_update - p->epoch_start;
            p->done_steps += p->step;
        }
        p->epoch = epoch;
        p->epoch_start = p->mark;
        p->loss_sum = p->correct_sum = 0;
        p->images = 0;
        p->last_draw = -INFINITY;
    }
    p->step = step;
    p->mark = p->last_update = now;
    if (images > 0) {
        p->loss_sum += loss * (double)images;
        p->correct_sum += accuracy * (double)images;
        p->images += images;
    }
    double shown_loss = p->images > 0 ? p->loss_sum / (double)p->images : loss;
    double shown_accuracy = p->images > 0 ? p->correct_sum / (double)p->images : accuracy;

    /* Throughput of this epoch; time left from the mean step time of the whole run. */
    double epoch_seconds = now - p->epoch_start;
    double per_second = epoch_seconds > 0 ? (double)p->images / epoch_seconds : 0;
    double spent = p->done_seconds + epoch_seconds;
    int64_t done = p->done_steps + step;
    int64_t left = (steps - step) + (int64_t)(epochs - epoch) * steps;
    double eta = done > 0 && spent > 0 ? spent / (double)done * (double)(left > 0 ? left : 0) : -1;
    cnnc_progress_format(p->line, sizeof p->line, epoch, epochs, step, steps, shown_loss,
                         shown_accuracy, per_second, eta);
    p->pending = 1;

    /* The last step is always shown; others by time (redraw mode) or by count (lines). */
    int show = step >= steps;
    if (p->tty) {
        show |= now - p->last_draw >= p->min_interval;
    } else {
        show |= p->every > 0 && step % p->every == 0;
    }
    if (show) {
        progress_draw(p, out, now);
    }
}

void cnnc_progress_finish(cnnc_progress *p, FILE *out) {
    if (p->pending) {
        progress_draw(p, out, progress_now(p));
    }
    if (p->tty > 0 && p->drawn_length > 0) {
        if (out != NULL) {
            fputc('\n', out);
            fflush(out);
        }
        p->drawn_length = 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * CSV log
 * ------------------------------------------------------------------------------------- */

struct cnnc_log {
    FILE *file;
    char path[]; /* for messages */
};

cnnc_status cnnc_log_open(const char *path, int append, cnnc_log **out, cnnc_error *err) {
    *out = NULL;
    size_t length = strlen(path);
    cnnc_log *log = malloc(sizeof *log + length + 1);
    if (log == NULL) {
        cnnc_error_set(err, CNNC_ERR_ALLOC, "%s: out of memory", path);
        return CNNC_ERR_ALLOC;
    }
    memcpy(log->path, path, length + 1);
    log->file = cnnc_file_open(path, append ? "a" : "w", err);
    if (log->file == NULL) {
        free(log);
        return CNNC_ERR_IO;
    }
    /* In append mode the header goes only into an empty file. */
    long size = 0;
    if (append) {
        size = fseek(log->file, 0, SEEK_END) == 0 ? ftell(log->file) : -1;
    }
    if (size == 0 && (fputs(CNNC_LOG_HEADER "\n", log->file) < 0 || fflush(log->file) != 0)) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot write training log '%s': %s", path, why);
        fclose(log->file);
        free(log);
        return CNNC_ERR_IO;
    }
    *out = log;
    return CNNC_OK;
}

/* Formats v with `format`, or as an empty field when it is NaN. */
static const char *log_field(char *buf, size_t size, const char *format, double v) {
    if (isnan(v)) {
        buf[0] = 0;
    } else {
        snprintf(buf, size, format, v);
    }
    return buf;
}

cnnc_status cnnc_log_write(cnnc_log *log, const cnnc_log_entry *row, cnnc_error *err) {
    if (log == NULL || row == NULL) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "training log: no log or no row");
        return CNNC_ERR_ARGUMENT;
    }
    char f[7][40];
    int n = fprintf(log->file, "%d,%lld,%s,%s,%s,%s,%s,%s,%s\n", row->epoch, (long long)row->step,
                    log_field(f[0], sizeof f[0], "%.6g", row->loss),
                    log_field(f[1], sizeof f[1], "%.6g", row->accuracy),
                    log_field(f[2], sizeof f[2], "%.6g", row->lr),
                    log_field(f[3], sizeof f[3], "%.6g", row->test_loss),
                    log_field(f[4], sizeof f[4], "%.6g", row->test_accuracy),
                    log_field(f[5], sizeof f[5], "%.1f", row->images_per_second),
                    log_field(f[6], sizeof f[6], "%.3f", row->seconds));
    if (n < 0 || fflush(log->file) != 0) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot write training log '%s': %s", log->path, why);
        return CNNC_ERR_IO;
    }
    return CNNC_OK;
}

cnnc_status cnnc_log_close(cnnc_log *log, cnnc_error *err) {
    if (log == NULL) {
        return CNNC_OK;
    }
    cnnc_status st = CNNC_OK;
    if (fclose(log->file) != 0) {
        char why[128];
        cnnc_internal_errno_text(why, sizeof why, errno);
        cnnc_error_set(err, CNNC_ERR_IO, "cannot close training log '%s': %s", log->path, why);
        st = CNNC_ERR_IO;
    }
    free(log);
    return st;
}
