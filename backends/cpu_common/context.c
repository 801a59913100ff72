/* context.c — the error message every CPU backend keeps at the start of its context. */
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

const char *cpu_last_error(cnb_context *ctx) { return ctx ? cpu_err(ctx) : ""; }
