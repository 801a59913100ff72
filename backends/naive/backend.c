/* backend.c — the naive backend's lifecycle (create, destroy, last_error, info), its error
 * helper, and the version-1 function table behind the one exported entry symbol. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive.h"

cnb_status naive_fail(cnb_context *ctx, cnb_status st, const char *fmt, ...) {
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
    }
    return st;
}

cnb_status naive_fail_not_positive(cnb_context *ctx, const char *fn, const char *name,
                                   long long value) {
    if (strncmp(name, "d->", 3) == 0) name += 3;
    return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "%s: %s=%lld must be positive", fn, name,
                      value);
}

cnb_status naive_scratch(cnb_context *ctx, size_t count, double **out) {
    if (count > ctx->scratch_count) {
        if (count > SIZE_MAX / sizeof(double))
            return naive_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "scratch of %zu doubles overflows",
                              count);
        double *p = malloc(count * sizeof(double));
        if (!p)
            return naive_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of scratch",
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
    (void)cfg;
    if (!out) {
        if (err && err_len) snprintf(err, err_len, "naive: create: out is NULL");
        return CNB_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
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

static const char *naive_last_error(cnb_context *ctx) {
    return ctx ? ctx->err : "";
}

static cnb_status naive_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    NAIVE_CHECK_CTX(ctx);
    NAIVE_CHECK_PTR(ctx, "info", fn);
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

static const cnb_backend naive_table = {
    .abi_version = 1,
    .struct_size = sizeof(cnb_backend),
    .device_kind = CNB_DEVICE_CPU,
    .name = "naive",
    .description = "reference kernels: plain loops, double accumulation, one thread",
    .create = naive_create,
    .destroy = naive_destroy,
    .last_error = naive_last_error,
    .info = naive_info,
    .alloc = naive_alloc,
    .free = naive_free,
    .upload = naive_upload,
    .download = naive_download,
    .synchronize = naive_synchronize,
    .corr2d = naive_corr2d,
    .conv_forward = naive_conv_forward,
    .conv_backward_data = naive_conv_backward_data,
    .conv_backward_filter = naive_conv_backward_filter,
    .bias_forward = naive_bias_forward,
    .bias_backward = naive_bias_backward,
    .pool_workspace_size = naive_pool_workspace_size,
    .pool_forward = naive_pool_forward,
    .pool_backward = naive_pool_backward,
    .gemm = naive_gemm,
    .activation_forward = naive_activation_forward,
    .activation_backward = naive_activation_backward,
    .softmax_ce_forward = naive_softmax_ce_forward,
    .softmax_ce_backward = naive_softmax_ce_backward,
    .sgd_step = naive_sgd_step,
    .adam_step = naive_adam_step,
    .conv_bias_act_forward = naive_conv_bias_act_forward,
    .pool_act_backward = naive_pool_act_backward,
};

/* Serves any harness that speaks version 1 or later with the version-1 table; the harness checks
 * abi_version before touching newer slots. */
CNB_EXPORT const cnb_backend *cnb_backend_entry(uint32_t harness_abi_version) {
    if (harness_abi_version < 1) return NULL;
    return &naive_table;
}
