/* test_cudnn.c — the cudnn backend (cuDNN 9 + cuBLAS) against the naive oracle on a GPU: every
 * kernel at every layer shape of the five models and at odd shapes in strict fp32 (relative
 * L2 < 1e-5), exact integers bit-identical where the chosen algorithm adds the products itself
 * (GEMM-based and direct convolutions, cuBLAS, max pooling forward and backward: max pooling
 * runs on the argmax kernels, ties to the first maximum), determinism with deterministic = 1
 * (gpu_checks.inc, shared with test_cuda.c); then what only this backend has: the per-shape
 * algorithm cache and its report, the strict-fp32 and deterministic filters (deterministic:
 * heuristics, never cudnnFind), the max-pool workspace, and TF32 when allowed. Without a built backend, a driver or a device, every test
 * prints "[SKIP-ALL] cudnn: <reason>" and is skipped; test_gpu_device.c asserts that reason. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cnb_abi.h"
#include "testutil.h"

/* Which algorithm the backend reported for shape d, direction dir ("fwd", "bwd_data",
 * "bwd_filter"), from its info() entry cudnn.conv[<shape>]. */
typedef struct algo_query {
    char key[160];
    const char *dir;
    char algo[64];
    int found;
} algo_query;

static void algo_collect(void *user, const char *key, const char *value) {
    algo_query *q = user;
    if (strcmp(key, q->key) != 0) return;
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", q->dir);
    const char *p = strstr(value, pat);
    if (!p) return;
    p += strlen(pat);
    size_t n = strcspn(p, " ;");
    if (n >= sizeof q->algo) n = sizeof q->algo - 1;
    memcpy(q->algo, p, n);
    q->algo[n] = '\0';
    q->found = 1;
}

static void conv_key(const cnb_conv_desc *d, char *buf, size_t len) {
    snprintf(buf, len, "cudnn.conv[n%d c%d %dx%d k%d %dx%d s%dx%d p%dx%d]", d->n, d->c, d->h,
             d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w);
}

/* 1 when the algorithm in use sums the products directly (GEMM-based or direct), so integer
 * data must come out exact; FFT and Winograd transform the data and round. An independent
 * list, not the backend's own table. */
static int cudnn_conv_exact(tu_backend *b, const cnb_conv_desc *d, int dir) {
    static const char *const dirs[3] = {"fwd", "bwd_data", "bwd_filter"};
    static const char *const exact_algos[3][5] = {
        {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", NULL},
        {"ALGO_0", "ALGO_1", NULL},
        {"ALGO_0", "ALGO_1", "ALGO_3", NULL}};
    algo_query q = {.dir = dirs[dir]};
    conv_key(d, q.key, sizeof q.key);
    tu_check_status(b, b->api->info(b->ctx, algo_collect, &q), "info");
    cr_assert(q.found, "info() has no %s algorithm under %s", dirs[dir], q.key);
    for (int i = 0; exact_algos[dir][i]; i++)
        if (strcmp(q.algo, exact_algos[dir][i]) == 0) return 1;
    return 0;
}

#define GPU_SUITE cudnn
#define GPU_LABEL "cudnn"
#define GPU_BATCH_CAP 1000000
/* Max pooling runs on backends/cuda's argmax kernels (cuDNN documents no tie rule and its
 * backward finds the maximum again), so ties follow the ABI: the first maximum wins. */
#define GPU_TIES_EXACT 1
#define GPU_CONV_EXACT(b, d, dir) cudnn_conv_exact((b), (d), (dir))
#define GPU_INFO_KEYS                                                                        \
    {"backend", "device.name", "device.compute_capability", "cuda.driver",                  \
     "cuda.runtime.compiled", "cuda.runtime.loaded", "cudnn.compiled", "cudnn.loaded",      \
     "cudnn.version", "cudnn.cudart", "cublas.compiled", "cublas.loaded", "math",          \
     "deterministic", "conv.algorithm", "pooling", NULL}

static void gpu_backend_path(char *buf, size_t len) { snprintf(buf, len, "cudnn"); }

#include "gpu_checks.inc"

/* ---- what only the cudnn backend has ---------------------------------------------------- */

typedef struct conv_report {
    int entries;
    int nondeterministic; /* choices reported "non-deterministic" */
    int non_fma;          /* choices reported with tensor ops allowed */
    int from_find;        /* choices made by cudnnFind (no "from heuristics") */
    char math[256], det[256], pooling[256];
} conv_report;

static void report_collect(void *user, const char *key, const char *value) {
    conv_report *r = user;
    if (strncmp(key, "cudnn.conv[", 11) == 0) {
        r->entries++;
        for (const char *p = value; (p = strstr(p, "non-deterministic")); p++) r->nondeterministic++;
        for (const char *p = value; (p = strstr(p, "tensor ops allowed")); p++) r->non_fma++;
        for (const char *p = value; (p = strstr(p, " ms)")); p++) r->from_find++;
    }
    if (strcmp(key, "math") == 0) snprintf(r->math, sizeof r->math, "%s", value);
    if (strcmp(key, "deterministic") == 0) snprintf(r->det, sizeof r->det, "%s", value);
    if (strcmp(key, "pooling") == 0) snprintf(r->pooling, sizeof r->pooling, "%s", value);
}

/* Shape cc's descriptor, tensor sizes and random inputs x, w, dy drawn from seed. */
typedef struct conv_inputs {
    cnb_conv_desc d;
    size_t nx, nw, ny;
    float *x, *w, *dy;
} conv_inputs;

static conv_inputs conv_inputs_make(const conv_case *cc, uint64_t seed) {
    conv_inputs in = {.d = conv_desc(cc)};
    const cnb_conv_desc *d = &in.d;
    in.nx = (size_t)d->n * d->c * d->h * d->w;
    in.nw = (size_t)d->k * d->c * d->r * d->s;
    in.ny = (size_t)d->n * d->k * d->p * d->q;
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    in.x = inputs(&rng, in.nx, 0);
    in.w = inputs(&rng, in.nw, 0);
    in.dy = inputs(&rng, in.ny, 0);
    return in;
}

static void conv_inputs_free(conv_inputs *in) { free(in->x), free(in->w), free(in->dy); }

/* Runs the three convolutions of shape cc once on b. */
static void run_conv_once(tu_backend *b, const conv_case *cc) {
    conv_inputs in = conv_inputs_make(cc, 600);
    float *y = host_floats(in.ny), *dx = host_floats(in.nx), *dw = host_floats(in.nw);
    conv_run(b, &in.d, in.x, in.w, NULL, in.dy, y, dx, dw);
    conv_inputs_free(&in);
    free(y), free(dx), free(dw);
}

/* One cudnnFind per shape: the same shape twice keeps one entry, a new shape adds one; by
 * default every choice is plain fp32 (FMA). */
Test(cudnn, algorithm_cache_one_entry_per_shape_strict_fp32) {
    tu_backend g;
    open_gpu(&g);
    run_conv_once(&g, &conv_cases[0]);
    run_conv_once(&g, &conv_cases[0]);
    conv_report r = {0};
    check(&g, g.api->info(g.ctx, report_collect, &r), "info");
    cr_expect_eq(r.entries, 1, "one shape used twice: %d cache entries reported", r.entries);
    run_conv_once(&g, &conv_cases[2]);
    memset(&r, 0, sizeof r);
    check(&g, g.api->info(g.ctx, report_collect, &r), "info");
    cr_expect_eq(r.entries, 2, "two shapes: %d cache entries reported", r.entries);
    cr_expect_eq(r.non_fma, 0, "strict fp32, yet %d choices allow tensor ops", r.non_fma);
    cr_expect(strncmp(r.math, "strict fp32", 11) == 0 && strstr(r.math, "CUBLAS_PEDANTIC_MATH"),
              "math: %s", r.math);
    tu_close(&g);
}

Test(cudnn, deterministic_option_restricts_algorithms) {
    tu_backend g;
    cnb_config cfg = {.size = sizeof cfg, .threads = 1, .deterministic = 1};
    open_gpu_cfg(&g, &cfg);
    for (size_t i = 0; i < 4; i++) run_conv_once(&g, &conv_cases[i]);
    conv_report r = {0};
    check(&g, g.api->info(g.ctx, report_collect, &r), "info");
    cr_expect_eq(r.entries, 4, "%d cache entries reported", r.entries);
    cr_expect_eq(r.nondeterministic, 0, "deterministic = 1, yet %d choices are not",
                 r.nondeterministic);
    cr_expect(strncmp(r.det, "yes", 3) == 0, "deterministic: %s", r.det);
    /* cudnnFind ranks by measured time: deterministic mode takes the heuristics' order. */
    cr_expect_eq(r.from_find, 0, "deterministic = 1, yet %d choices came from cudnnFind",
                 r.from_find);
    tu_close(&g);
}

/* Max pooling runs on the argmax kernels: the workspace query reports n*c*p*q int32 indices,
 * average pooling (cuDNN) none; info says why. */
Test(cudnn, max_pool_workspace_is_the_argmax) {
    tu_backend g;
    open_gpu(&g);
    cnb_pool_desc d = {.mode = CNB_POOL_MAX, .n = 2, .c = 3, .h = 8, .w = 8, .kh = 2, .kw = 2,
                       .stride_h = 2, .stride_w = 2, .p = 4, .q = 4};
    size_t ws = 0;
    check(&g, g.api->pool_workspace_size(g.ctx, &d, &ws), "pool_workspace_size (max)");
    cr_expect_eq(ws, (size_t)2 * 3 * 4 * 4 * sizeof(int32_t), "max pool workspace %zu", ws);
    d.mode = CNB_POOL_AVG;
    check(&g, g.api->pool_workspace_size(g.ctx, &d, &ws), "pool_workspace_size (avg)");
    cr_expect_eq(ws, 0, "average pool workspace %zu", ws);
    conv_report r = {0};
    check(&g, g.api->info(g.ctx, report_collect, &r), "info");
    cr_expect(strstr(r.pooling, "first maximum") != NULL, "pooling: %s", r.pooling);
    tu_close(&g);
}

/* TF32 keeps 10 mantissa bits (relative rounding 2^-11 per input): with it allowed, results
 * agree to about 1e-3; 1e-2 relative L2 leaves room for the sums while still failing a wrong
 * index, which is O(1). */
Test(cudnn, tf32_allowed_looser_tolerance) {
    tu_backend g, nv;
    cnb_config cfg = {.size = sizeof cfg, .threads = 1, .allow_tf32 = 1};
    open_gpu_cfg(&g, &cfg);
    tu_open(&nv, "naive", 1);
    conv_report r = {0};
    check(&g, g.api->info(g.ctx, report_collect, &r), "info");
    cr_expect(strstr(r.math, "TF32") != NULL && strstr(r.math, "CUDNN_DEFAULT_MATH") != NULL,
              "math with allow_tf32: %s", r.math);
    conv_inputs in = conv_inputs_make(&conv_cases[1], 700);
    const size_t nx = in.nx, nw = in.nw, ny = in.ny;
    float *y[2] = {host_floats(ny), host_floats(ny)}, *dx[2] = {host_floats(nx), host_floats(nx)},
          *dw[2] = {host_floats(nw), host_floats(nw)};
    conv_run(&nv, &in.d, in.x, in.w, NULL, in.dy, y[0], dx[0], dw[0]);
    conv_run(&g, &in.d, in.x, in.w, NULL, in.dy, y[1], dx[1], dw[1]);
    tu_expect_close("conv_forward with TF32 allowed", y[1], y[0], ny, 1e-2);
    tu_expect_close("conv_backward_data with TF32 allowed", dx[1], dx[0], nx, 1e-2);
    tu_expect_close("conv_backward_filter with TF32 allowed", dw[1], dw[0], nw, 1e-2);
    conv_inputs_free(&in);
    for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]);
    tu_close(&nv);
    tu_close(&g);
}
