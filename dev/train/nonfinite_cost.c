/* nonfinite_cost.c — what issue 19's non-finite handling costs per training step.
 *
 *   param-check  the divergence check train.c runs after every optimizer step: bias_backward
 *                over the parameter block as 16 rows plus the tail, and two floats downloaded
 *                (params_diverged), here over `params` values (simplecnn: 421,642);
 *   maxpool      max pooling forward + backward at simplecnn's first pool (64x32x28x28): onednn
 *                scans x for NaN before its primitive;
 *   relu         ReLU forward + backward over the same 1.6M values (onednn: its own loops).
 * Prints the minimum and median over `reps` runs of each (the minimum is the figure to compare on
 * a shared host; run the base commit's backend .so the same way for the before).
 *
 * usage: <build>/dev/train/nonfinite_cost BACKEND|PATH [threads (2)] [params (421642)]
 *        [reps (101)] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "loader.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int reps) {
    qsort(t, (size_t)reps, sizeof *t, by_value);
    printf("  %-12s min %8.3f ms  median %8.3f ms\n", what, t[0] * 1e3, t[reps / 2] * 1e3);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BACKEND|PATH [threads] [params] [reps]\n", argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 4 ? atoi(argv[4]) : 101;
    size_t np = argc > 3 ? (size_t)atol(argv[3]) : 421642;
    if (reps < 1 || np < 16) return 2;
    cnb_config cfg = {.size = sizeof cfg, .threads = threads};
    cnb_loaded_backend lib;
    cnb_context *ctx;
    char err[1024];
    if (cnb_open_backend(argv[1], &cfg, &lib, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const cnb_backend *a = lib.api;
    cnb_pool_desc d = {.mode = CNB_POOL_MAX, .n = 64, .c = 32, .h = 28, .w = 28, .kh = 2, .kw = 2,
                       .stride_h = 2, .stride_w = 2, .p = 14, .q = 14};
    size_t nx = 64 * 32 * 28 * 28, ny = 64 * 32 * 14 * 14, ws = 0, nh = nx > np ? nx : np;
    a->pool_workspace_size(ctx, &d, &ws);
    float *h = malloc(nh * sizeof *h), sums[2];
    double *t = malloc((size_t)reps * sizeof *t);
    if (!h || !t) return 1;
    srand(1);
    for (size_t i = 0; i < nh; i++) h[i] = (float)rand() / (float)RAND_MAX - 0.3f;
    void *p, *s, *x, *y, *dx, *dy, *w, *sl;
    if (a->alloc(ctx, &p, np * 4) || a->alloc(ctx, &s, 8) || a->alloc(ctx, &x, nx * 4) ||
        a->alloc(ctx, &dx, nx * 4) || a->alloc(ctx, &y, ny * 4) || a->alloc(ctx, &dy, ny * 4) ||
        a->alloc(ctx, &w, ws ? ws : 4) || a->alloc(ctx, &sl, 4))
        return 1;
    a->upload(ctx, p, h, np * 4);
    a->upload(ctx, x, h, nx * 4);
    a->upload(ctx, dy, h, ny * 4);
    a->upload(ctx, sl, h, 4);
    printf("%s, %d threads, %d runs each\n", a->name, threads, reps);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        a->bias_backward(ctx, s, p, 16, 1, (int)(np / 16));
        if (np % 16) a->bias_backward(ctx, (float *)s + 1, (float *)p + np / 16 * 16, 1, 1,
                                      (int)(np % 16));
        a->download(ctx, sums, s, sizeof sums);
        t[r] = now() - t0;
    }
    report("param-check", t, reps);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        a->pool_forward(ctx, &d, y, x, w);
        a->pool_backward(ctx, &d, dx, dy, x, y, w);
        a->synchronize(ctx);
        t[r] = now() - t0;
    }
    report("maxpool", t, reps);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        a->activation_forward(ctx, CNB_ACT_RELU, nx, dx, x, sl);
        a->activation_backward(ctx, CNB_ACT_RELU, nx, dx, sl, x, x, dx, sl);
        a->synchronize(ctx);
        t[r] = now() - t0;
    }
    report("relu", t, reps);
    cnb_close_backend(&lib, ctx);
    free(h);
    free(t);
    return 0;
}
