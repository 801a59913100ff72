/* test_blas.c — the OpenBLAS backend against the naive oracle, both loaded through the loader
 * as the harness loads them. The kernel sweeps (random and exact-integer inputs at every layer
 * shape of the five models and at odd shapes, every convolution layout) are in cpu_checks.inc,
 * shared with test_onednn.c; here is what only this backend has: batch chunking and scratch
 * reuse of the batched convolution layout, thread counts 1 vs 2, info(), its argument messages,
 * its max-pool workspace check and aligned allocations.
 *
 * If the blas backend was not built here, every test prints "[SKIP-ALL] reason" and skips. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* The three layouts a convolution can take (read by create() from CNB_BLAS_CONV); every
 * convolution check runs all of them. */
#define CPU_NVARIANTS 3
static const char *const cpu_variants[CPU_NVARIANTS] = {"auto", "batched", "per-image"};

/* Open the blas backend with `threads` and convolution layout `variant`. Skip the whole test if
 * the backend was not built here (CMake skips it without OpenBLAS); any other failure to open
 * it is a failure. */
static void cpu_open(tu_backend *b, int variant, int threads) {
    char why[CNB_ERR_LEN], path[4096];
    snprintf(path, sizeof path, "%s/libcnb_blas.so", cnb_backend_dir());
    if (access(path, F_OK) != 0) {
        const char *reason = "not built here (no libcnb_blas.so in the backend directory; CMake "
                             "skips it without OpenBLAS)";
        printf("[SKIP-ALL] blas backend unavailable: %s\n", reason);
        fflush(stdout);
        cr_skip_test("blas backend unavailable: %s", reason);
    }
    setenv("CNB_BLAS_CONV", cpu_variants[variant], 1);
    int rc = tu_try_open(b, "blas", threads, why, sizeof why);
    unsetenv("CNB_BLAS_CONV");
    if (rc != 0) cr_assert_fail("%s exists but does not open: %s", path, why);
}

#define CPU_SUITE blas
#define CPU_LABEL "blas"
#define CPU_EXACT_ZERO_SHARE 0.1
#define CPU_MAXPOOL_WS_BYTES sizeof(int32_t) /* one int32 argmax per output */
#define CPU_OPTIMIZER_EXACT 1                /* same formulas, same order as naive */
#define CPU_AVG_BACKWARD_EXACT 1
#define CPU_SIGNED_ZERO_EXACT 1

#include "cpu_checks.inc"

/* ---- convolution: the batched layout's chunks and scratch -------------------------------- */

/* The batched layout splits a batch into chunks of about 2 MB of columns (9 images at
 * simplecnn conv2's shape, so 20 images take 9 + 9 + 2, a partial chunk last, and the filter
 * gradient accumulates over them); an image whose columns alone exceed a chunk (1.6 M floats
 * here) goes one image per chunk. The model layers above split too; these pin the edge cases. */
Test(blas_conv, batch_split_into_chunks) {
    cpu_set p;
    cpu_set_open(&p);
    conv_case partial = {"chunks 9+9+2: 32->64 3x3 p1 14x14", 20, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1};
    conv_case big = {"one image per chunk: 16->4 5x5 p2 64x64", 3, 16, 64, 64, 4, 5, 5, 1, 1, 2, 2};
    check_conv(&p, &partial, 0, 500);
    check_conv(&p, &partial, 1, 501);
    check_conv(&p, &big, 0, 502);
    check_conv(&p, &big, 1, 503);
    cpu_set_close(&p);
}

/* Scratch buffers grow when a larger shape arrives and are reused for smaller ones; a stale or
 * too-small buffer would show up as a mismatch in one of these, run in this order on the same
 * contexts. */
Test(blas_conv, scratch_reuse_growing_then_shrinking) {
    cpu_set p;
    cpu_set_open(&p);
    const conv_case seq[] = {
        {"small first", 2, 2, 6, 6, 3, 3, 3, 1, 1, 1, 1},
        {"grow", 8, 16, 20, 20, 12, 3, 3, 1, 1, 1, 1},
        {"grow more", 16, 24, 18, 18, 20, 5, 5, 1, 1, 2, 2},
        {"shrink", 3, 4, 9, 7, 5, 3, 3, 2, 1, 0, 1},
        {"grow again, other aspect", 4, 8, 11, 31, 6, 3, 5, 1, 2, 1, 2},
        {"tiny", 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) check_conv(&p, &seq[i], 0, 600 + i);
    cpu_set_close(&p);
}

/* ---- threads, info ----------------------------------------------------------------------- */

typedef struct info_seen {
    char threads[32], openblas_threads[32], coretype[64], backend[32], compiled[64], core[64];
} info_seen;

static void collect_info(void *user, const char *key, const char *value) {
    info_seen *s = user;
    if (strcmp(key, "threads") == 0) snprintf(s->threads, sizeof s->threads, "%s", value);
    if (strcmp(key, "openblas.threads") == 0)
        snprintf(s->openblas_threads, sizeof s->openblas_threads, "%s", value);
    if (strcmp(key, "env.OPENBLAS_CORETYPE") == 0)
        snprintf(s->coretype, sizeof s->coretype, "%s", value);
    if (strcmp(key, "backend") == 0) snprintf(s->backend, sizeof s->backend, "%s", value);
    if (strcmp(key, "openblas.compiled") == 0)
        snprintf(s->compiled, sizeof s->compiled, "%s", value);
    if (strcmp(key, "openblas.corename") == 0) snprintf(s->core, sizeof s->core, "%s", value);
}

/* The backend threads by itself (team.c) and keeps OpenBLAS single-threaded; two contexts with
 * different counts each keep theirs. */
Test(blas_threads, each_context_keeps_its_count_and_openblas_stays_serial) {
    tu_backend t1, t2, r;
    cpu_open(&t1, 0, 1);
    cpu_open(&t2, 0, 2);
    tu_open(&r, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 1600);
    cnb_conv_desc d = conv_desc(&model_convs[1]); /* simplecnn conv2 */
    const size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.k * d.p * d.q,
                 nw = (size_t)d.k * d.c * d.r * d.s;
    float *x = rand_nonzero(&rng, nx), *w = rand_nonzero(&rng, nw);
    float *y1 = host_floats(ny), *y2 = host_floats(ny), *yr = host_floats(ny);
    tu_backend *bs[2] = {&t1, &t2};
    float *outs[2] = {y1, y2};
    for (int i = 0; i < 2; i++) {
        tu_backend *b = bs[i];
        float *bx = tu_dev_from(b, x, nx), *bw = tu_dev_from(b, w, nw), *by = tu_dev_from(b, NULL, ny);
        tu_check_status(b, b->api->conv_forward(b->ctx, &d, by, bx, bw, NULL), "conv_forward");
        tu_to_host(b, outs[i], by, ny * sizeof(float));
        info_seen s = {0};
        tu_check_status(b, b->api->info(b->ctx, collect_info, &s), "info");
        cr_expect_eq(atoi(s.threads), i + 1, "context %d: info threads=%s", i + 1, s.threads);
        cr_expect_eq(atoi(s.openblas_threads), 1,
                     "context with threads=%d: OpenBLAS ran with %s threads, not 1", i + 1,
                     s.openblas_threads);
        tu_dev_free(b, bx), tu_dev_free(b, bw), tu_dev_free(b, by);
    }
    float *rx = tu_dev_from(&r, x, nx), *rw = tu_dev_from(&r, w, nw), *ry = tu_dev_from(&r, NULL, ny);
    tu_check_status(&r, r.api->conv_forward(r.ctx, &d, ry, rx, rw, NULL), "conv_forward");
    tu_to_host(&r, yr, ry, ny * sizeof(float));
    tu_expect_close("conv_forward threads=2 vs threads=1", y2, y1, ny, TOL);
    tu_expect_close("conv_forward threads=1 vs naive", y1, yr, ny, TOL);
    tu_dev_free(&r, rx), tu_dev_free(&r, rw), tu_dev_free(&r, ry);
    free(x), free(w), free(y1), free(y2), free(yr);
    tu_close(&t1);
    tu_close(&t2);
    tu_close(&r);
}

/* Every kernel the team splits, at 1, 2, 3 and 5 threads, on a batch of 64 and on batches
 * smaller than the thread count. The split hands whole images, planes, channels, GEMM column
 * blocks or element runs to threads, so the plain loops (pooling, PReLU, bias gradient,
 * optimizers) must give one thread's bits. What goes through sgemm, and the two sums across
 * threads (a filter gradient from the threads' partial sums, PReLU's slope gradient), are held
 * to TOL against one thread and, on exact-integer inputs, to the same bits. */
#define THREAD_COUNTS 4
static const int thread_counts[THREAD_COUNTS] = {1, 2, 3, 5};

typedef struct {
    float *y, *dx, *dw, *db, *pool_y, *pool_dx, *act_y, *act_dx, *gemm_c[3], *sgd_p, *adam_p;
    float dslope;
} split_outputs;

/* Sizes of one layer of every family, batch n. */
typedef struct {
    cnb_conv_desc conv;
    cnb_pool_desc pool;
    size_t nx, ny, nw, act;
    int gm[3], gn[3], gk[3], ta[3], tb[3]; /* linear forward, weight gradient, a tall C */
    size_t params;
} split_shapes;

static split_shapes shapes_for(int n) {
    split_shapes s = {0};
    s.conv = conv_desc(&model_convs[1]); /* simplecnn conv2: 32 -> 64, 3x3 pad 1, 14x14 */
    s.conv.n = n;
    s.nx = (size_t)n * s.conv.c * s.conv.h * s.conv.w;
    s.ny = (size_t)n * s.conv.k * s.conv.p * s.conv.q;
    s.nw = (size_t)s.conv.k * s.conv.c * s.conv.r * s.conv.s;
    s.pool = (cnb_pool_desc){CNB_POOL_MAX, n, 64, 14, 14, 2, 2, 2, 2, 0, 0, 7, 7};
    s.act = s.ny;
    const int g[3][5] = {{n, 128, 3136, 0, 1}, {128, 3136, n, 1, 0}, {3136, 40, 72, 1, 1}};
    for (int i = 0; i < 3; i++) {
        s.gm[i] = g[i][0], s.gn[i] = g[i][1], s.gk[i] = g[i][2], s.ta[i] = g[i][3],
        s.tb[i] = g[i][4];
    }
    s.params = 421642; /* simplecnn's parameter count */
    return s;
}

static void run_split(tu_backend *b, const split_shapes *s, float *const in[8], split_outputs *o) {
    const cnb_conv_desc *d = &s->conv;
    float *x = tu_dev_from(b, in[0], s->nx), *w = tu_dev_from(b, in[1], s->nw),
          *dy = tu_dev_from(b, in[2], s->ny), *bias = tu_dev_from(b, in[3], (size_t)d->k);
    float *y = tu_dev_from(b, NULL, s->ny), *dx = tu_dev_from(b, NULL, s->nx),
          *dw = tu_dev_from(b, NULL, s->nw), *db = tu_dev_from(b, NULL, (size_t)d->k);
    tu_check_status(b, b->api->conv_forward(b->ctx, d, y, x, w, bias), "conv_forward");
    tu_check_status(b, b->api->conv_backward_data(b->ctx, d, dx, dy, w), "conv_backward_data");
    tu_check_status(b, b->api->conv_backward_filter(b->ctx, d, dw, dy, x), "conv_backward_filter");
    tu_check_status(b, b->api->bias_backward(b->ctx, db, dy, d->n, d->k, d->p * d->q),
                    "bias_backward");
    tu_to_host(b, o->y, y, s->ny * sizeof(float));
    tu_to_host(b, o->dx, dx, s->nx * sizeof(float));
    tu_to_host(b, o->dw, dw, s->nw * sizeof(float));
    tu_to_host(b, o->db, db, (size_t)d->k * sizeof(float));

    /* pooling and PReLU at the conv output's shape (n, 64, 14, 14), on fixed inputs */
    size_t ws_bytes = 0;
    tu_check_status(b, b->api->pool_workspace_size(b->ctx, &s->pool, &ws_bytes), "ws size");
    void *ws = tu_dev_bytes(b, NULL, ws_bytes);
    const size_t npool = (size_t)s->pool.n * s->pool.c * s->pool.p * s->pool.q;
    float *py = tu_dev_from(b, NULL, npool), *pdx = tu_dev_from(b, NULL, s->ny);
    float *px = tu_dev_from(b, in[6], s->ny), *pdy = tu_dev_from(b, in[4], npool);
    tu_check_status(b, b->api->pool_forward(b->ctx, &s->pool, py, px, ws), "pool_forward");
    tu_check_status(b, b->api->pool_backward(b->ctx, &s->pool, pdx, pdy, px, py, ws),
                    "pool_backward");
    tu_to_host(b, o->pool_y, py, npool * sizeof(float));
    tu_to_host(b, o->pool_dx, pdx, s->ny * sizeof(float));

    float slope = 0.25f, *sl = tu_dev_from(b, &slope, 1), *ds = tu_dev_from(b, NULL, 1);
    float *ay = tu_dev_from(b, NULL, s->act), *adx = tu_dev_from(b, NULL, s->act);
    tu_check_status(b, b->api->activation_forward(b->ctx, CNB_ACT_PRELU, s->act, ay, px, sl),
                    "prelu forward");
    tu_check_status(b, b->api->activation_backward(b->ctx, CNB_ACT_PRELU, s->act, adx, ds, dy,
                                                   px, ay, sl),
                    "prelu backward");
    tu_to_host(b, o->act_y, ay, s->act * sizeof(float));
    tu_to_host(b, o->act_dx, adx, s->act * sizeof(float));
    tu_to_host(b, &o->dslope, ds, sizeof(float));

    /* GEMMs: operands cut from the inputs (each is large enough) */
    for (int i = 0; i < 3; i++) {
        const int m = s->gm[i], n = s->gn[i], k = s->gk[i];
        const int lda = s->ta[i] ? m : k, ldb = s->tb[i] ? k : n;
        float *a = tu_dev_from(b, in[4], (size_t)m * k), *bb = tu_dev_from(b, in[5], (size_t)k * n);
        float *c = tu_dev_from(b, in[6], (size_t)m * n);
        tu_check_status(b, b->api->gemm(b->ctx, s->ta[i], s->tb[i], m, n, k, 0.5f, a, lda, bb, ldb,
                                        i == 2 ? 0.75f : 0.0f, c, n),
                        "gemm");
        tu_to_host(b, o->gemm_c[i], c, (size_t)m * n * sizeof(float));
        tu_dev_free(b, a), tu_dev_free(b, bb), tu_dev_free(b, c);
    }

    /* optimizer steps over a model-sized block */
    float *p = tu_dev_from(b, in[4], s->params), *v = tu_dev_from(b, in[5], s->params),
          *m2 = tu_dev_from(b, in[5], s->params), *g = tu_dev_from(b, in[6], s->params),
          *v2 = tu_dev_from(b, in[7], s->params);
    cnb_sgd_desc sd = {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f};
    tu_check_status(b, b->api->sgd_step(b->ctx, &sd, s->params, p, v, g), "sgd_step");
    tu_to_host(b, o->sgd_p, p, s->params * sizeof(float));
    cnb_adam_desc ad = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 3};
    tu_check_status(b, b->api->adam_step(b->ctx, &ad, s->params, p, m2, v2, g), "adam_step");
    tu_to_host(b, o->adam_p, p, s->params * sizeof(float));

    tu_dev_free(b, p), tu_dev_free(b, v), tu_dev_free(b, m2), tu_dev_free(b, g), tu_dev_free(b, v2);
    tu_dev_free(b, sl), tu_dev_free(b, ds), tu_dev_free(b, ay), tu_dev_free(b, adx);
    tu_dev_free(b, ws), tu_dev_free(b, py), tu_dev_free(b, pdx), tu_dev_free(b, px),
        tu_dev_free(b, pdy);
    tu_dev_free(b, x), tu_dev_free(b, w), tu_dev_free(b, dy), tu_dev_free(b, bias);
    tu_dev_free(b, y), tu_dev_free(b, dx), tu_dev_free(b, dw), tu_dev_free(b, db);
}

static void alloc_outputs(split_outputs *o, const split_shapes *s) {
    o->y = host_floats(s->ny), o->dx = host_floats(s->nx), o->dw = host_floats(s->nw);
    o->db = host_floats((size_t)s->conv.k);
    o->pool_y = host_floats(s->ny / 4), o->pool_dx = host_floats(s->ny);
    o->act_y = host_floats(s->act), o->act_dx = host_floats(s->act);
    for (int i = 0; i < 3; i++) o->gemm_c[i] = host_floats((size_t)s->gm[i] * s->gn[i]);
    o->sgd_p = host_floats(s->params), o->adam_p = host_floats(s->params);
}

static void free_outputs(split_outputs *o) {
    free(o->y), free(o->dx), free(o->dw), free(o->db), free(o->pool_y), free(o->pool_dx);
    free(o->act_y), free(o->act_dx), free(o->sgd_p), free(o->adam_p);
    for (int i = 0; i < 3; i++) free(o->gemm_c[i]);
}

static void check_split(int n, int exact, unsigned seed) {
    const split_shapes s = shapes_for(n);
    const size_t big = s.params > s.ny ? s.params : s.ny;
    const size_t sizes[7] = {s.nx, s.nw, s.ny, (size_t)s.conv.k, big, big, big};
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    float *in[8] = {0};
    for (int i = 0; i < 7; i++)
        in[i] = exact ? tu_small_ints(&rng, sizes[i], -3, 3, 0.5) : rand_nonzero(&rng, sizes[i]);
    in[7] = host_floats(big); /* Adam's second moment: non-negative */
    for (size_t i = 0; i < big; i++) in[7][i] = in[5][i] * in[5][i];
    split_outputs out[THREAD_COUNTS];
    for (int t = 0; t < THREAD_COUNTS; t++) {
        tu_backend b;
        cpu_open(&b, 0, thread_counts[t]);
        alloc_outputs(&out[t], &s);
        run_split(&b, &s, in, &out[t]);
        tu_close(&b);
    }
    for (int t = 1; t < THREAD_COUNTS; t++) {
        char what[128];
        const split_outputs *o = &out[t], *r = &out[0];
#define SAME(field, count)                                                                      \
    do {                                                                                        \
        snprintf(what, sizeof what, "n=%d %s: " #field " at %d threads vs 1", n,                \
                 exact ? "exact" : "random", thread_counts[t]);                                 \
        tu_expect_equal(what, o->field, r->field, (count));                                     \
    } while (0)
        SAME(db, (size_t)s.conv.k);
        SAME(pool_y, s.ny / 4);
        SAME(pool_dx, s.ny);
        SAME(act_y, s.act);
        SAME(act_dx, s.act);
        SAME(sgd_p, s.params);
        SAME(adam_p, s.params);
        /* OpenBLAS's sgemm may round a product differently for another column count (its
         * edge kernels), so sgemm-built results are held to TOL, and to the bits when every
         * partial sum is an exact integer. */
#define SGEMM_BUILT(field, count)                                                               \
    do {                                                                                        \
        snprintf(what, sizeof what, "n=%d %s: " #field " at %d threads vs 1", n,                \
                 exact ? "exact" : "random", thread_counts[t]);                                 \
        if (exact) tu_expect_equal(what, o->field, r->field, (count));                          \
        else tu_expect_close(what, o->field, r->field, (count), TOL);                           \
    } while (0)
        SGEMM_BUILT(y, s.ny);
        SGEMM_BUILT(dx, s.nx);
        SGEMM_BUILT(dw, s.nw);
        for (int i = 0; i < 3; i++) SGEMM_BUILT(gemm_c[i], (size_t)s.gm[i] * s.gn[i]);
#undef SGEMM_BUILT
        if (exact) {
            cr_expect_eq(o->dslope, r->dslope, "n=%d exact: PReLU dslope %.9g at %d threads, %.9g at 1",
                         n, o->dslope, thread_counts[t], r->dslope);
        } else {
            cr_expect(fabsf(o->dslope - r->dslope) <= TOL * fabsf(r->dslope) + 1e-6f,
                      "n=%d: PReLU dslope %.9g at %d threads, %.9g at 1", n, o->dslope,
                      thread_counts[t], r->dslope);
        }
#undef SAME
    }
    for (int t = 0; t < THREAD_COUNTS; t++) free_outputs(&out[t]);
    for (int i = 0; i < 8; i++) free(in[i]);
}

Test(blas_threads, every_split_kernel_gives_one_threads_bits, .timeout = 120) {
    check_split(64, 0, 1700);
    check_split(64, 1, 1701);
    check_split(3, 0, 1702); /* fewer images than threads */
    check_split(1, 1, 1703);
}

/* Idle workers spin for at most about a millisecond, then sleep: a context that sits between
 * calls must not burn a core (another backend in the same process, or the user's own work,
 * would be timed beside it). Measured as this process's CPU time, not as speed. OpenBLAS's own
 * pool, started when the library loads, spins for ~0.1 s before it sleeps (its
 * THREAD_TIMEOUT); the first pause lets that pass. */
Test(blas_threads, idle_workers_sleep) {
    tu_backend b;
    cpu_open(&b, 0, 2);
    struct timespec c0, c1, pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    const size_t n = 1 << 20;
    float *x = tu_dev_from(&b, NULL, n), *y = tu_dev_from(&b, NULL, n);
    tu_check_status(&b, b.api->activation_forward(b.ctx, CNB_ACT_RELU, n, y, x, NULL), "relu");
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    const double cpu_ms = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
    cr_expect_lt(cpu_ms, 50.0, "a 2-thread context used %.1f ms of CPU while idle for 300 ms",
                 cpu_ms);
    tu_dev_free(&b, x), tu_dev_free(&b, y);
    tu_close(&b);
}

/* More threads than the backend runs is refused at create, naming the count. */
Test(blas_threads, too_many_threads_is_refused) {
    tu_backend b;
    char why[CNB_ERR_LEN];
    cr_expect_neq(tu_try_open(&b, "blas", 65, why, sizeof why), 0, "threads=65 opened");
    cr_expect(strstr(why, "threads=65") != NULL, "message: %s", why);
}

Test(blas_info, reports_openblas_and_environment) {
    tu_backend b;
    cpu_open(&b, 0, 2);
    info_seen s = {0};
    tu_check_status(&b, b.api->info(b.ctx, collect_info, &s), "info");
    cr_expect_str_eq(s.backend, "blas");
    cr_expect(strstr(s.compiled, "OpenBLAS") != NULL, "openblas.compiled='%s'", s.compiled);
    cr_expect(s.core[0] != '\0', "openblas.corename is empty");
    cr_expect_eq(atoi(s.threads), 2, "threads=%s, asked for 2", s.threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (ct) cr_expect_str_eq(s.coretype, ct, "env.OPENBLAS_CORETYPE not reported as set");
    else cr_expect_str_eq(s.coretype, "", "env.OPENBLAS_CORETYPE reported but not set");
    tu_close(&b);
}

/* ---- argument checks --------------------------------------------------------------------- */

Test(blas_args, bad_arguments_are_refused_with_a_message) {
    tu_backend b;
    cpu_open(&b, 0, 1);
    float *buf = tu_dev_from(&b, NULL, 4096);
    cnb_conv_desc d = conv_desc(&edge_convs[0]);
    cnb_conv_desc bad = d;
    bad.p += 1;
    expect_invalid(&b, b.api->conv_forward(b.ctx, &bad, buf, buf, buf, NULL), "conv p", "p=");
    bad = d;
    bad.stride_w = 0;
    expect_invalid(&b, b.api->conv_backward_data(b.ctx, &bad, buf, buf, buf), "conv stride",
                   "stride_w");
    bad = d;
    bad.r = 20;
    expect_invalid(&b, b.api->conv_backward_filter(b.ctx, &bad, buf, buf, buf), "conv r",
                   "larger than the padded input");
    expect_invalid(&b, b.api->conv_forward(b.ctx, &d, buf, NULL, buf, NULL), "conv x", "x is NULL");

    cnb_pool_desc pd = {CNB_POOL_MAX, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2};
    expect_invalid(&b, b.api->pool_forward(b.ctx, &pd, buf, buf, NULL), "max pool no workspace",
                   "workspace");
    cnb_pool_desc pbad = pd;
    pbad.pad_h = 2;
    pbad.p = 4;
    expect_invalid(&b, b.api->pool_forward(b.ctx, &pbad, buf, buf, buf), "max pool pad",
                   "padding");
    pbad = pd;
    pbad.mode = 7;
    expect_invalid(&b, b.api->pool_forward(b.ctx, &pbad, buf, buf, buf), "pool mode", "mode=7");

    expect_invalid(&b, b.api->gemm(b.ctx, 0, 0, 4, 4, 4, 1.0f, buf, 3, buf, 4, 0.0f, buf, 4),
                   "gemm lda", "lda=3");
    expect_invalid(&b, b.api->gemm(b.ctx, 0, 2, 4, 4, 4, 1.0f, buf, 4, buf, 4, 0.0f, buf, 4),
                   "gemm trans", "trans_b=2");
    expect_invalid(&b, b.api->activation_forward(b.ctx, 9, 4, buf, buf, NULL), "activation",
                   "unknown activation 9");

    int32_t labels[2] = {1, 10};
    int32_t *dl = tu_dev_bytes(&b, labels, sizeof labels);
    float *probs = tu_dev_from(&b, NULL, 20);
    expect_invalid(&b, b.api->softmax_ce_forward(b.ctx, 2, 10, probs, buf, NULL, buf, dl),
                   "softmax label", "labels[1]=10");
    cnb_adam_desc ad = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 0};
    expect_invalid(&b, b.api->adam_step(b.ctx, &ad, 4, buf, buf, buf, buf), "adam step 0",
                   "step=0");
    tu_dev_free(&b, dl), tu_dev_free(&b, probs), tu_dev_free(&b, buf);
    tu_close(&b);
}

/* A max-pool backward given a workspace that pool_forward did not write must refuse, not
 * scatter out of bounds. */
Test(blas_args, pool_backward_rejects_a_foreign_workspace) {
    tu_backend b;
    cpu_open(&b, 0, 1);
    cnb_pool_desc pd = {CNB_POOL_MAX, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2};
    int32_t junk[4] = {0, 5, 99, 3};
    void *ws = tu_dev_bytes(&b, junk, sizeof junk);
    float *dx = tu_dev_from(&b, NULL, 16), *dy = tu_dev_from(&b, NULL, 4);
    float ones[4] = {1, 1, 1, 1};
    tu_check_status(&b, b.api->upload(b.ctx, dy, ones, sizeof ones), "upload");
    expect_invalid(&b, b.api->pool_backward(b.ctx, &pd, dx, dy, NULL, NULL, ws),
                   "pool_backward junk workspace", "workspace");
    tu_dev_free(&b, ws), tu_dev_free(&b, dx), tu_dev_free(&b, dy);
    tu_close(&b);
}

/* ---- memory ------------------------------------------------------------------------------ */

Test(blas_memory, aligned_allocations_round_trip) {
    tu_backend b;
    cpu_open(&b, 0, 1);
    const size_t sizes[] = {0, 1, 63, 4096, 3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = NULL;
        tu_check_status(&b, b.api->alloc(b.ctx, &p, sizes[i]), "alloc");
        cr_assert_not_null(p, "alloc(%zu) gave NULL", sizes[i]);
        cr_expect_eq((uintptr_t)p % 64, 0u, "alloc(%zu) = %p is not 64-byte aligned", sizes[i], p);
        if (sizes[i] > 0) {
            unsigned char *src = malloc(sizes[i]), *back = malloc(sizes[i]);
            cr_assert(src && back);
            for (size_t j = 0; j < sizes[i]; j++) src[j] = (unsigned char)(j * 31 + i);
            tu_check_status(&b, b.api->upload(b.ctx, p, src, sizes[i]), "upload");
            tu_check_status(&b, b.api->synchronize(b.ctx), "synchronize");
            tu_check_status(&b, b.api->download(b.ctx, back, p, sizes[i]), "download");
            cr_expect_eq(memcmp(src, back, sizes[i]), 0, "round trip of %zu bytes differs",
                         sizes[i]);
            free(src), free(back);
        }
        tu_check_status(&b, b.api->free(b.ctx, p), "free");
    }
    tu_close(&b);
}
