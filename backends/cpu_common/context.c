/* context.c — the start of create(), and the error message every CPU backend keeps at the
 * start of its context. */
#include <stdarg.h>
#include <stdio.h>

#include "cpu_common.h"

cnb_status cpu_fail(cnb_context *ctx, cnb_status st, const char *fmt, ...) {
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cpu_err(ctx), CPU_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return st;
}

cnb_status cpu_create_begin(const char *backend, const cnb_config *cfg, cnb_context **out,
                            int *threads, char *err, size_t err_len) {
    if (!out) {
        if (err && err_len) snprintf(err, err_len, "%s: create: out is NULL", backend);
        return CNB_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    *threads = 0;
    if (cfg && cfg->size >= offsetof(cnb_config, threads) + sizeof cfg->threads)
        *threads = cfg->threads;
    return CNB_OK;
}

const char *cpu_last_error(cnb_context *ctx) { return ctx ? cpu_err(ctx) : ""; }
