/* cmd_ceiling.c — `cnnbench ceiling`: the machine's fp32 ceiling as each backend reaches it, the
 * GFLOP/s of its own GEMM slot on one large square product. A network's training throughput
 * (images/s x `--show-model`'s FLOP per image) divided by this figure is the share of the
 * machine a backend uses; the per-image work of every model is below it by construction, since
 * convolutions and linear layers are GEMMs or less regular ones and pooling, activations and the
 * optimizer add time without arithmetic.
 *
 * Each figure is checked before it is reported: sampled entries of C are recomputed in double
 * precision on the host, so a fast but wrong kernel cannot set the ceiling. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "loader.h"
#include "machine.h"
#include "options.h"
#include "profiler.h"
#include "results.h"
#include "runctx.h"
#include "util.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };
#define CEIL_SAMPLES 64   /* entries of C checked against a double-precision dot product */
#define CEIL_WARMUP 2

typedef struct ceil_opts {
    char *backends[CNB_MAX_LIST];
    int n_backends;
    int threads, quiet;
    long size, repeats;
    uint64_t seed;
    const char *out;
    const char *models[CNB_MAX_LIST]; /* unused: CNB_TAKE_COMMON_OPTS copies them */
    int n_models;
    const char *dataset, *data;
} ceil_opts;

typedef struct ceil_result {
    const char *name;
    int ok;                 /* 1 measured, 0 skipped or failed (why says which) */
    int failed;             /* a named backend that could not run, or a wrong product */
    int fault;              /* a test's planted fault acted on this backend */
    char why[CNB_ERR_LEN];
    double best_s, median_s, max_rel_err;
    char device[16];
} ceil_result;

static void usage(FILE *f) {
    fprintf(f,
        "usage: cnnbench ceiling [options]\n"
        "\n"
        "Measures the fp32 ceiling of this machine as each backend reaches it: the GFLOP/s of\n"
        "its own GEMM (C = A B, all N x N) at the given threads, best and median of the\n"
        "repeats, after checking sampled entries of C in double precision. Compare a model's\n"
        "training GFLOP/s (`cnnbench bench` prints them; `--show-model` gives FLOP per image)\n"
        "with it to see how much of the machine a backend uses.\n"
        "\n"
        "  --backends LIST   backends (default: every one that loads here except naive, whose\n"
        "                    loops are the reference, not a ceiling)\n"
        "  --size N          matrix order (default 2048; 64 .. 16384)\n"
        "  --repeats N       timed products per backend (default 10)\n"
        "  --threads N       CPU backend threads (default: all cores)\n"
        "  --seed N          seed of the matrices (default 42)\n"
        "  --out FILE        results JSON (kind \"ceiling\"; default: none)\n"
        "  --quiet           only the table\n"
        "\n"
        "Exit status: 0 measured, 1 a named backend could not run or computed a wrong product,\n"
        "2 usage.\n");
}

enum { O_SIZE = 1, O_REPEATS };

static const struct option ceiling_flags[] = {{"size", required_argument, 0, O_SIZE},
                                              {"repeats", required_argument, 0, O_REPEATS},
                                              {0, 0, 0, 0}};

static int on_ceiling_flag(void *user, int id, const char *arg) {
    ceil_opts *o = user;
    if (id == O_SIZE) return cnb_opt_long("cnnbench ceiling", "--size", arg, 64, 16384, &o->size);
    if (id == O_REPEATS)
        return cnb_opt_long("cnnbench ceiling", "--repeats", arg, 1, 1000, &o->repeats);
    return -1;
}

/* Fill a with uniform values in [-1, 1). */
static void fill(float *a, size_t n, cnb_rng *rng) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(2.0 * cnb_rng_uniform(rng) - 1.0);
}

/* Largest |C - A B| over sampled entries, relative to the sum of |products| of that entry (the
 * scale fp32 rounding errors grow with). */
static double check_product(const float *a, const float *b, const float *c, int n, cnb_rng *rng) {
    double worst = 0.0;
    for (int s = 0; s < CEIL_SAMPLES; s++) {
        int i = (int)cnb_rng_below(rng, (uint32_t)n), j = (int)cnb_rng_below(rng, (uint32_t)n);
        if (s < 3) i = j = s == 0 ? 0 : s == 1 ? n / 2 : n - 1; /* corners and the middle too */
        double ref = 0.0, scale = 0.0;
        for (int k = 0; k < n; k++) {
            double p = (double)a[(size_t)i * n + k] * b[(size_t)k * n + j];
            ref += p;
            scale += fabs(p);
        }
        double err = fabs(c[(size_t)i * n + j] - ref) / (scale > 0 ? scale : 1.0);
        if (!(err <= worst)) worst = err; /* NaN propagates as the worst */
    }
    return worst;
}

/* Time one backend; host holds A, B and room for C. */
static void measure(ceil_result *r, const ceil_opts *o, const cnb_config *cfg, float *host[3],
                    int named) {
    cnb_loaded_backend lib;
    cnb_context *ctx = NULL;
    if (cnb_open_backend(r->name, cfg, &lib, &ctx, r->why, sizeof r->why) != 0) {
        r->failed = named;
        return;
    }
    snprintf(r->device, sizeof r->device, "%s", lib.device_kind == CNB_DEVICE_GPU ? "gpu" : "cpu");
    const int n = (int)o->size;
    const size_t bytes = (size_t)n * n * sizeof(float);
    void *d[3] = {NULL, NULL, NULL};
    /* A pass-through proxy: it adds nothing but the planted faults of the tests (CNB_TEST_*). */
    cnb_profiler *px = calloc(1, sizeof *px);
    double *t = calloc((size_t)o->repeats, sizeof *t);
    if (!px || !t) {
        snprintf(r->why, sizeof r->why, "out of memory");
        r->failed = 1;
        free(px);
        free(t);
        cnb_close_backend(&lib, ctx);
        return;
    }
    cnb_profiler_init(px, lib.api, ctx, 0);
    r->fault = cnb_profiler_has_fault(px);
    const cnb_backend *api = cnb_profiler_api(px);
    ctx = cnb_profiler_ctx(px);
    cnb_status st = CNB_OK;
    for (int i = 0; i < 3 && st == CNB_OK; i++) st = api->alloc(ctx, &d[i], bytes);
    for (int i = 0; i < 2 && st == CNB_OK; i++) st = api->upload(ctx, d[i], host[i], bytes);
    /* C = A B in the ABI's row-major terms: m = n = k = N, no transposes. */
#define GEMM() api->gemm(ctx, 0, 0, n, n, n, 1.0f, d[0], n, d[1], n, 0.0f, d[2], n)
    for (int w = 0; w < CEIL_WARMUP && st == CNB_OK; w++) st = GEMM();
    if (st == CNB_OK) st = api->synchronize(ctx);
    for (long k = 0; k < o->repeats && st == CNB_OK; k++) {
        double t0 = cnb_now();
        st = GEMM();
        if (st == CNB_OK) st = api->synchronize(ctx);
        t[k] = cnb_now() - t0;
    }
#undef GEMM
    if (st == CNB_OK) st = api->download(ctx, host[2], d[2], bytes);
    if (st != CNB_OK) {
        snprintf(r->why, sizeof r->why, "gemm: %s", api->last_error(ctx));
        r->failed = 1;
    } else {
        cnb_summary sum;
        cnb_summarize(t, (int)o->repeats, &sum);
        r->best_s = sum.min;
        r->median_s = sum.median;
        cnb_rng rng;
        cnb_rng_seed(&rng, o->seed + 1);
        r->max_rel_err = check_product(host[0], host[1], host[2], n, &rng);
        /* fp32 accumulation over N terms: errors of a few ulp times sqrt(N) are expected. */
        const double tol = 1e-6 * sqrt((double)n) * 8;
        if (!(r->max_rel_err <= tol)) {
            snprintf(r->why, sizeof r->why,
                     "wrong product: relative error %.3g at a sampled entry (tolerance %.3g)",
                     r->max_rel_err, tol);
            r->failed = 1;
        } else {
            r->ok = 1;
        }
    }
    for (int i = 0; i < 3; i++)
        if (d[i]) api->free(ctx, d[i]);
    cnb_context *real_ctx = px->real_ctx;
    cnb_profiler_release(px);
    free(px);
    free(t);
    cnb_close_backend(&lib, real_ctx);
}

static double gflops(const ceil_opts *o, double seconds) {
    return 2.0 * (double)o->size * o->size * o->size / seconds * 1e-9;
}

static void print_table(const ceil_result *r, int nb, const ceil_opts *o, int threads) {
    printf("fp32 ceiling: C = A B, %ld x %ld, %d thread%s, %ld timed products per backend\n",
           o->size, o->size, threads, threads == 1 ? "" : "s", o->repeats);
    printf("  %-8s %14s %14s  %s\n", "backend", "best GFLOP/s", "median GFLOP/s", "checked");
    for (int i = 0; i < nb; i++) {
        if (!r[i].ok) {
            printf("  %-8s %s: %s\n", r[i].name, r[i].failed ? "FAILED" : "SKIPPED", r[i].why);
            continue;
        }
        printf("  %-8s %14.1f %14.1f  %d entries, max relative error %.2g\n", r[i].name,
               gflops(o, r[i].best_s), gflops(o, r[i].median_s), CEIL_SAMPLES, r[i].max_rel_err);
    }
}

static int write_json(const ceil_result *r, int nb, const ceil_opts *o, int argc, char **argv,
                      int threads, const cnb_machine *mc) {
    cJSON *root = cnb_context_json("ceiling", argc, argv, o->seed, threads, mc);
    cJSON_AddNumberToObject(root, "size", (double)o->size);
    cJSON_AddNumberToObject(root, "repeats", (double)o->repeats);
    cJSON_AddStringToObject(root, "operation", "sgemm C = A B, row-major, no transposes");
    cJSON *arr = cJSON_AddArrayToObject(root, "backends");
    for (int i = 0; i < nb; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "backend", r[i].name);
        cJSON_AddStringToObject(b, "status", r[i].ok ? "ok" : r[i].failed ? "failed" : "skipped");
        if (r[i].fault) cJSON_AddBoolToObject(b, "test_fault", 1);
        if (r[i].ok) {
            cJSON_AddStringToObject(b, "device", r[i].device);
            cJSON_AddNumberToObject(b, "gflops_best", gflops(o, r[i].best_s));
            cJSON_AddNumberToObject(b, "gflops_median", gflops(o, r[i].median_s));
            cJSON_AddNumberToObject(b, "max_rel_err", r[i].max_rel_err);
        } else {
            cJSON_AddStringToObject(b, "reason", r[i].why);
        }
        cJSON_AddItemToArray(arr, b);
    }
    char err[CNB_ERR_LEN];
    int rc = cnb_write_json(o->out, root, err, sizeof err);
    cJSON_Delete(root);
    if (rc != 0) fprintf(stderr, "cnnbench ceiling: %s\n", err);
    else if (!o->quiet) printf("results: %s\n", o->out);
    return rc;
}

int cnb_cmd_ceiling(int argc, char **argv) {
    ceil_opts o = {.size = 2048, .repeats = 10, .seed = 42};
    cnb_common_opts co;
    int rc = cnb_parse_options("cnnbench ceiling", argc, argv,
                               CNB_OPT_BACKENDS | CNB_OPT_SEED | CNB_OPT_THREADS | CNB_OPT_OUT |
                                   CNB_OPT_QUIET,
                               ceiling_flags, on_ceiling_flag, &o, usage, &co, NULL);
    if (rc != 0) return rc > 0 ? 0 : EXIT_USAGE;
    CNB_TAKE_COMMON_OPTS(&o, &co);
    const int named = o.n_backends > 0;
    if (!named)
        for (int i = 0; i < cnb_known_backend_count; i++)
            if (strcmp(cnb_known_backends[i], "naive") != 0)
                o.backends[o.n_backends++] = (char *)cnb_known_backends[i];

    cnb_machine mc;
    cnb_machine_probe(&mc);
    const int threads = o.threads > 0 ? o.threads : mc.cores;
    cnb_config cfg = {.size = sizeof cfg, .threads = threads};
    const size_t count = (size_t)o.size * o.size;
    float *host[3];
    for (int i = 0; i < 3; i++) host[i] = cnb_aligned_alloc(count * sizeof(float));
    ceil_result *res = calloc((size_t)o.n_backends, sizeof *res);
    if (!host[0] || !host[1] || !host[2] || !res) {
        fprintf(stderr, "cnnbench ceiling: out of memory for three %ld x %ld matrices\n", o.size,
                o.size);
        for (int i = 0; i < 3; i++) free(host[i]);
        free(res);
        return EXIT_FAIL;
    }
    cnb_rng rng;
    cnb_rng_seed(&rng, o.seed);
    fill(host[0], count, &rng);
    fill(host[1], count, &rng);
    int failed = 0;
    for (int i = 0; i < o.n_backends; i++) {
        res[i].name = o.backends[i];
        if (!o.quiet) fprintf(stderr, "cnnbench ceiling: %s ...\n", res[i].name);
        measure(&res[i], &o, &cfg, host, named);
        failed |= res[i].failed;
    }
    print_table(res, o.n_backends, &o, threads);
    if (o.out && write_json(res, o.n_backends, &o, argc, argv, threads, &mc) != 0) failed = 1;
    for (int i = 0; i < 3; i++) free(host[i]);
    free(res);
    return failed ? EXIT_FAIL : 0;
}
