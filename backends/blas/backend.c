/* backend.c — the OpenBLAS backend's lifecycle (create, destroy, info), its scratch helpers,
 * and the version-1 function table behind the one exported entry symbol. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas_backend.h"
#include "cnb_abi_check.h"

/* openblas_config.h (pulled in by cblas.h) names the version this file is compiled against. */
#ifndef OPENBLAS_VERSION
#define OPENBLAS_VERSION "unknown"
#endif

cnb_status blas_scratch(cnb_context *ctx, int thread, int slot, size_t count, float **out) {
    blas_scratch_set *set = &ctx->scratch[thread];
    if (count > set->cap[slot]) {
        if (count > SIZE_MAX / sizeof(float) - 64)
            return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "scratch of %zu floats overflows", count);
        size_t bytes = count * sizeof(float);
        float *p = cpu_host_alloc(bytes);
        if (!p)
            return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of scratch",
                            bytes);
        free(set->buf[slot]); /* contents are never carried over: callers refill */
        set->buf[slot] = p;
        set->cap[slot] = count;
    }
    *out = set->buf[slot];
    return CNB_OK;
}

void blas_keep_openblas_serial(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

int blas_dims_fit(cnb_context *ctx, const char *fn, const char *what, int64_t a, int64_t b,
                  int64_t c, int64_t d) {
    return cnb_check_fits_int(fn, what, a, b, c, d, ctx->err, sizeof ctx->err);
}

static void blas_destroy(cnb_context *ctx);

/* The thread count OpenBLAS would have chosen: OPENBLAS_NUM_THREADS when it is a positive number,
 * else the processors it sees. */
static int default_threads(void) {
    const char *v = getenv("OPENBLAS_NUM_THREADS");
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (v && end != v && *end == '\0' && n > 0) return n > BLAS_MAX_THREADS ? BLAS_MAX_THREADS : (int)n;
    n = openblas_get_num_procs();
    return n < 1 ? 1 : n > BLAS_MAX_THREADS ? BLAS_MAX_THREADS : (int)n;
}

/* cfg->threads > 0 is the size of the context's thread team (team.c); 0 takes the count OpenBLAS
 * would have used (default_threads). OpenBLAS itself is set to one thread: the team calls it from
 * each of its threads. cfg may be NULL. */
static cnb_status blas_create(const cnb_config *cfg, cnb_context **out, char *err,
                              size_t err_len) {
    int threads;
    cnb_status st = cpu_create_begin("blas", cfg, out, &threads, err, err_len);
    if (st != CNB_OK) return st;
    if (threads < 0) {
        if (err && err_len)
            snprintf(err, err_len, "blas: create: threads=%d must be 0 (OpenBLAS's choice) or "
                                   "positive", threads);
        return CNB_ERR_INVALID_ARGUMENT;
    }
    if (threads == 0) threads = default_threads();
    if (threads > BLAS_MAX_THREADS) {
        if (err && err_len)
            snprintf(err, err_len, "blas: create: threads=%d is more than this backend runs "
                                   "(%d)", threads, BLAS_MAX_THREADS);
        return CNB_ERR_INVALID_ARGUMENT;
    }
    int conv_algo = BLAS_CONV_AUTO;
    const char *algo = getenv("CNB_BLAS_CONV");
    if (algo && *algo) {
        if (strcmp(algo, "batched") == 0) conv_algo = BLAS_CONV_BATCHED;
        else if (strcmp(algo, "per-image") == 0) conv_algo = BLAS_CONV_PER_IMAGE;
        else if (strcmp(algo, "auto") != 0) {
            if (err && err_len)
                snprintf(err, err_len, "blas: CNB_BLAS_CONV=%s is not one of batched, per-image, "
                                       "auto", algo);
            return CNB_ERR_INVALID_ARGUMENT;
        }
    }
    cnb_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (err && err_len) snprintf(err, err_len, "blas: cannot allocate the context");
        return CNB_ERR_OUT_OF_MEMORY;
    }
    ctx->conv_algo = conv_algo;
    ctx->scratch = calloc((size_t)threads, sizeof *ctx->scratch);
    st = ctx->scratch ? blas_team_start(ctx, threads)
                                 : cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY,
                                            "create: cannot allocate scratch for %d threads",
                                            threads);
    if (st != CNB_OK) {
        if (err && err_len) snprintf(err, err_len, "blas: %s", ctx->err);
        blas_destroy(ctx);
        return st;
    }
    ctx->threads = threads;
    blas_keep_openblas_serial();
    *out = ctx;
    return CNB_OK;
}

static void blas_destroy(cnb_context *ctx) {
    if (!ctx) return;
    blas_team_stop(ctx);
    for (int t = 0; ctx->scratch && t < ctx->threads; t++)
        for (int i = 0; i < BLAS_SCRATCH_COUNT; i++) free(ctx->scratch[t].buf[i]);
    free(ctx->scratch);
    free(ctx);
}

/* Copy s without its leading and trailing blanks (OPENBLAS_VERSION is " OpenBLAS 0.3.21 "). */
static void trim_copy(char *dst, size_t len, const char *s) {
    while (*s == ' ') s++;
    snprintf(dst, len, "%s", s);
    size_t n = strlen(dst);
    while (n > 0 && dst[n - 1] == ' ') dst[--n] = '\0';
}

static cnb_status blas_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    CNB_CHECK_CTX(ctx);
    CNB_CHECK_PTR(ctx, "info", fn);
    char buf[256];
    fn(user, "backend", "blas");
    trim_copy(buf, sizeof buf, OPENBLAS_VERSION);
    fn(user, "openblas.compiled", buf);
    const char *config = openblas_get_config();
    fn(user, "openblas.config", config ? config : "");
    /* The loaded library's version is the second word of its config ("OpenBLAS 0.3.21 ..."), so
     * the harness can compare it with the compiled one. */
    if (config && strncmp(config, "OpenBLAS ", 9) == 0) {
        snprintf(buf, sizeof buf, "OpenBLAS %.*s", (int)strcspn(config + 9, " "), config + 9);
        fn(user, "openblas.loaded", buf);
    }
    const char *core = openblas_get_corename();
    fn(user, "openblas.corename", core ? core : "");
    snprintf(buf, sizeof buf, "%d", openblas_get_num_threads());
    fn(user, "openblas.threads", buf);
    snprintf(buf, sizeof buf, "%d", ctx->threads);
    fn(user, "threads", buf);
    fn(user, "threading",
       "the backend's own threads split each kernel by image, plane, GEMM columns or elements; "
       "OpenBLAS runs single-threaded inside them");
    int par = openblas_get_parallel();
    snprintf(buf, sizeof buf, "%d (%s)", par,
             par == 0 ? "sequential" : par == 1 ? "pthreads" : par == 2 ? "openmp" : "unknown");
    fn(user, "openblas.parallel", buf);
    /* Variables a user may have set on purpose: recorded, never overridden (DESIGN.md §5). */
    static const char *const env_vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
                                           "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE"};
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++) {
        const char *v = getenv(env_vars[i]);
        if (!v) continue;
        snprintf(buf, sizeof buf, "env.%s", env_vars[i]);
        fn(user, buf, v);
    }
    fn(user, "conv.algorithm",
       ctx->conv_algo == BLAS_CONV_BATCHED     ? "im2col + sgemm, batched (forced by CNB_BLAS_CONV)"
       : ctx->conv_algo == BLAS_CONV_PER_IMAGE ? "im2col + sgemm, per image (forced by CNB_BLAS_CONV)"
                                               : "im2col + sgemm: forward and backward-data "
                                                 "batched in ~2 MB chunks, backward-filter per "
                                                 "image");
#ifdef __VERSION__
    fn(user, "compiler", __VERSION__);
#endif
    return CNB_OK;
}

/* OpenBLAS calls are synchronous: nothing to wait for in synchronize. */
CPU_BACKEND_DEFINE(blas, "blas",
                   "OpenBLAS: im2col + sgemm convolution, sgemm linear layers, plain-loop rest",
                   cpu_alloc, cpu_synchronize, NULL, NULL, NULL)
