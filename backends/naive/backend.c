/* backend.c — the naive backend's lifecycle (create, destroy, info), its scratch, and the
 * version-1 function table behind the one exported entry symbol. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive.h"

cnb_status naive_scratch(cnb_context *ctx, size_t count, double **out) {
    if (count > ctx->scratch_count) {
        if (count > SIZE_MAX / sizeof(double))
            return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "scratch of %zu doubles overflows",
                            count);
        double *p = malloc(count * sizeof(double));
        if (!p)
            return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of scratch",
                            count * sizeof(double));
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_count = count;
    }
    *out = ctx->scratch;
    return CNB_OK;
}

/* Nothing in cfg changes what the naive backend does: it is single-threaded and deterministic
 * by construction, and has no device. cfg may be NULL. */
static cnb_status naive_create(const cnb_config *cfg, cnb_context **out, char *err,
                               size_t err_len) {
    int threads; /* ignored: one thread */
    cnb_status st = cpu_create_begin("naive", cfg, out, &threads, err, err_len);
    if (st != CNB_OK) return st;
    cnb_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (err && err_len) snprintf(err, err_len, "naive: cannot allocate the context");
        return CNB_ERR_OUT_OF_MEMORY;
    }
    *out = ctx;
    return CNB_OK;
}

static void naive_destroy(cnb_context *ctx) {
    if (!ctx) return;
    free(ctx->scratch);
    free(ctx);
}

static cnb_status naive_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    CNB_CHECK_CTX(ctx);
    CNB_CHECK_PTR(ctx, "info", fn);
    fn(user, "backend", "naive");
    fn(user, "threads", "1");
    fn(user, "accumulation", "double");
#ifdef __VERSION__
    fn(user, "compiler", __VERSION__);
#else
    fn(user, "compiler", "unknown");
#endif
    return CNB_OK;
}

CPU_BACKEND_DEFINE(naive, "naive",
                   "reference kernels: plain loops, double accumulation, one thread", cpu_alloc,
                   cpu_synchronize, NULL, NULL, NULL)
