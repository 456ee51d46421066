/*
 * schedule.c — learning-rate schedules: constant, step decay and cosine annealing, each with
 * an optional linear warm-up.
 */
#include "cnnc_runtime.h"

#include <math.h>

cnnc_status cnnc_schedule_check(const cnnc_schedule *s, cnnc_error *err) {
    if (s->kind != CNNC_LR_CONSTANT && s->kind != CNNC_LR_STEP && s->kind != CNNC_LR_COSINE) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: unknown kind %d", (int)s->kind);
        return CNNC_ERR_ARGUMENT;
    }
    if (!isfinite(s->lr)) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: lr must be finite, got %g", s->lr);
        return CNNC_ERR_ARGUMENT;
    }
    if (s->warmup_steps < 0) {
        cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: warmup_steps must be >= 0, got %lld",
                       (long long)s->warmup_steps);
        return CNNC_ERR_ARGUMENT;
    }
    if (s->kind == CNNC_LR_STEP) {
        if (s->step_epochs < 1) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: step_epochs must be >= 1, got %lld",
                           (long long)s->step_epochs);
            return CNNC_ERR_ARGUMENT;
        }
        if (!isfinite(s->gamma)) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: gamma must be finite, got %g",
                           s->gamma);
            return CNNC_ERR_ARGUMENT;
        }
    }
    if (s->kind == CNNC_LR_COSINE) {
        if (s->epochs < 1) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: epochs must be >= 1, got %lld",
                           (long long)s->epochs);
            return CNNC_ERR_ARGUMENT;
        }
        if (!isfinite(s->min_lr)) {
            cnnc_error_set(err, CNNC_ERR_ARGUMENT, "schedule: min_lr must be finite, got %g",
                           s->min_lr);
            return CNNC_ERR_ARGUMENT;
        }
    }
    return CNNC_OK;
}

double cnnc_lr_schedule(const cnnc_schedule *s, int64_t step, int64_t steps_per_epoch) {
    const double pi = 3.14159265358979323846;
    if (step < 0) {
        step = 0;
    }
    if (steps_per_epoch < 1) {
        steps_per_epoch = 1;
    }
    int64_t epoch = step / steps_per_epoch;
    double lr = s->lr;
    switch (s->kind) {
    case CNNC_LR_CONSTANT: break;
    case CNNC_LR_STEP: {
        int64_t every = s->step_epochs < 1 ? 1 : s->step_epochs;
        lr = s->lr * pow(s->gamma, (double)(epoch / every));
        break;
    }
    case CNNC_LR_COSINE: {
        double total = s->epochs < 1 ? 1.0 : (double)s->epochs;
        double t = s->per_step ? (double)step / (double)steps_per_epoch : (double)epoch;
        t = t > total ? total : t;
        lr = s->min_lr + (s->lr - s->min_lr) * (1.0 + cos(pi * t / total)) / 2.0;
        break;
    }
    }
    if (s->warmup_steps > 0 && step < s->warmup_steps) {
        lr *= (double)(step + 1) / (double)s->warmup_steps;
    }
    return lr;
}
