/* test_onednn.c — the oneDNN backend against the naive oracle. The kernel sweeps (random and
 * exact-integer inputs at every layer shape of the five models and at odd shapes, both
 * convolution layout paths: plain nchw and blocked with reorders) are in cpu_checks.inc, shared
 * with test_blas.c; here is what only this backend has: its descriptor-validation messages,
 * info() (versions, ISA, runtime, threads) and the primitive cache (reuse, eviction). If the
 * backend is not built or cannot run here, every test prints "[SKIP-ALL] onednn: <reason>" and
 * is skipped. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* The backend's own layout rule, and both forced layouts, so the reorder path and the plain
 * path are each checked at every shape whatever the rule picks. */
#define CPU_NVARIANTS 3
static const char *const cpu_variants[CPU_NVARIANTS] = {"auto", "plain", "blocked"};

/* Open the oneDNN backend with conv layout `variant` (0: its own rule) and `algo` for
 * CNB_ONEDNN_CONV_ALGO (NULL: unset), or skip the whole test with the reason when it cannot be
 * opened here. */
static void open_with(tu_backend *b, int variant, const cnb_config *cfg, const char *algo) {
    char why[CNB_ERR_LEN];
    if (variant > 0)
        setenv("CNB_ONEDNN_CONV_LAYOUT", cpu_variants[variant], 1);
    else
        unsetenv("CNB_ONEDNN_CONV_LAYOUT");
    if (algo) setenv("CNB_ONEDNN_CONV_ALGO", algo, 1);
    int rc = tu_try_open_cfg(b, "onednn", cfg, why, sizeof why);
    unsetenv("CNB_ONEDNN_CONV_LAYOUT");
    unsetenv("CNB_ONEDNN_CONV_ALGO");
    if (rc != 0) {
        printf("[SKIP-ALL] onednn: %s\n", why);
        fflush(stdout);
        cr_skip_test("onednn: %s", why);
    }
}

/* The shared sweeps hold convolution to the fp32 tolerance and exact mode to bit equality:
 * sums of products, so direct_conv (Winograd has its own tests below). */
static void cpu_open(tu_backend *b, int variant, int threads) {
    cnb_config cfg = {.size = sizeof cfg, .threads = threads, .direct_conv = 1};
    open_with(b, variant, &cfg, NULL);
}

#define CPU_SUITE onednn
#define CPU_LABEL "onednn"
#define CPU_EXACT_ZERO_SHARE 0.25
#define CPU_MAXPOOL_WS_BYTES 1 /* one argmax per output, at least a byte each */
#define CPU_OPTIMIZER_EXACT 0
/* oneDNN adds overlapping avg-pool windows' shares in its own order, and its ReLU backward
 * gives -0 where naive gives +0. */
#define CPU_AVG_BACKWARD_EXACT 0
#define CPU_SIGNED_ZERO_EXACT 0

#include "cpu_checks.inc"

/* ---- validation ------------------------------------------------------------------------------ */

Test(onednn, rejects_bad_descriptors) {
    tu_backend od;
    cpu_open(&od, 0, 2);
    devs m = {.b = &od};
    float *buf = dv(&m, NULL, 1 << 16);
    int32_t labels[4] = {0, 1, 10, 2};
    int32_t *lb = dv_bytes(&m, labels, sizeof labels);

    cnb_conv_desc cd = conv_desc(&edge_convs[1]); /* 1x3x7x7 -> 1x4x7x7 */
    cd.q = 6;
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, buf, buf, buf, NULL), "conv p/q", "7x7");
    cd.q = 7;
    cd.p = 8;
    expect_invalid(&od, od.api->conv_backward_data(od.ctx, &cd, buf, buf, buf),
                   "conv_backward_data p", "expected 7x7");
    expect_invalid(&od, od.api->conv_backward_filter(od.ctx, &cd, buf, buf, buf),
                   "conv_backward_filter p", "expected 7x7");
    cd = conv_desc(&edge_convs[1]);
    cd.pad_w = -1;
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, buf, buf, buf, NULL), "conv pad",
                   "padding");
    cd = conv_desc(&edge_convs[1]);
    cd.stride_h = 0;
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, buf, buf, buf, NULL), "conv stride",
                   "stride_h");
    cd = conv_desc(&edge_convs[1]);
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, NULL, buf, buf, NULL), "conv y NULL",
                   "y is NULL");

    cnb_pool_desc pd = pool_desc(&pool_cases[11]); /* 7x7, 2x2/2 -> 3x3 */
    pd.p = 4;
    expect_invalid(&od, od.api->pool_forward(od.ctx, &pd, buf, buf, buf), "pool p", "expected 3x3");
    pd = pool_desc(&pool_cases[11]);
    pd.mode = 9;
    size_t ws;
    expect_invalid(&od, od.api->pool_workspace_size(od.ctx, &pd, &ws), "pool mode", "mode");
    pd = pool_desc(&pool_cases[11]);
    pd.pad_h = 2; /* pad must be smaller than the 2x2 window for max pooling */
    pd.p = (pd.h + 2 * pd.pad_h - pd.kh) / pd.stride_h + 1;
    expect_invalid(&od, od.api->pool_forward(od.ctx, &pd, buf, buf, buf), "max pool pad",
                   "smaller than");
    pd = pool_desc(&pool_cases[11]);
    expect_invalid(&od, od.api->pool_forward(od.ctx, &pd, buf, buf, NULL),
                   "max pool NULL workspace", "workspace");

    expect_invalid(&od, od.api->gemm(od.ctx, 0, 0, 4, 5, 6, 1.0f, buf, 5, buf, 5, 0.0f, buf, 5),
                   "gemm lda", "lda=5");
    expect_invalid(&od, od.api->gemm(od.ctx, 0, 2, 4, 5, 6, 1.0f, buf, 6, buf, 5, 0.0f, buf, 5),
                   "gemm trans", "trans_b=2");
    expect_invalid(&od, od.api->gemm(od.ctx, 0, 0, 0, 5, 6, 1.0f, buf, 6, buf, 5, 0.0f, buf, 5),
                   "gemm m=0", "m=0");

    expect_invalid(&od, od.api->activation_forward(od.ctx, 7, 10, buf, buf, buf), "act kind",
                   "activation 7");
    expect_invalid(&od, od.api->activation_forward(od.ctx, CNB_ACT_PRELU, 10, buf, buf, NULL),
                   "prelu slope NULL", "slope");

    expect_invalid(&od, od.api->softmax_ce_forward(od.ctx, 4, 10, buf, buf, NULL, buf, lb),
                   "label 10 of 10 (forward)", "label 10");
    expect_invalid(&od, od.api->softmax_ce_backward(od.ctx, 4, 10, buf, buf, lb),
                   "label 10 of 10 (backward)", "label 10");

    cnb_adam_desc ad = {0.001f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    expect_invalid(&od, od.api->adam_step(od.ctx, &ad, 4, buf, buf, buf, buf), "adam step 0",
                   "step=0");
    expect_invalid(&od, od.api->corr2d(od.ctx, buf, buf, buf, 3, 3, 4, 3), "corr2d kernel > input",
                   "larger");
    /* A valid call after the failures still works and the library is not left in a bad state. */
    cd = conv_desc(&edge_convs[1]);
    check(&od, od.api->conv_forward(od.ctx, &cd, buf, buf + 4096, buf + 8192, NULL),
          "conv_forward after failures");
    dv_free(&m);
    tu_close(&od);
}

/* ---- info, threads, cache -------------------------------------------------------------------- */

typedef struct kv {
    char key[64][96];
    char val[64][512];
    int n;
} kv;

static void collect(void *user, const char *key, const char *value) {
    kv *k = user;
    if (k->n >= 64) return;
    snprintf(k->key[k->n], sizeof k->key[0], "%s", key);
    snprintf(k->val[k->n], sizeof k->val[0], "%s", value);
    k->n++;
}

static const char *lookup(const kv *k, const char *key) {
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->key[i], key) == 0) return k->val[i];
    return NULL;
}

Test(onednn, info_reports_versions_isa_threads) {
    tu_backend od;
    cpu_open(&od, 0, 1);
    kv k = {0};
    check(&od, od.api->info(od.ctx, collect, &k), "info");
    const char *keys[] = {"backend", "onednn.compiled", "onednn.loaded", "onednn.isa",
                          "onednn.cpu_runtime", "threads"};
    for (size_t i = 0; i < NCASES(keys); i++)
        cr_expect_not_null(lookup(&k, keys[i]), "info has no \"%s\"", keys[i]);
    if (lookup(&k, "backend")) cr_expect_str_eq(lookup(&k, "backend"), "onednn");
    /* Opened with threads = 1: that is what the backend must report (and use). */
    if (lookup(&k, "threads")) cr_expect_str_eq(lookup(&k, "threads"), "1");
    if (lookup(&k, "onednn.cpu_runtime")) cr_expect_str_eq(lookup(&k, "onednn.cpu_runtime"), "OpenMP");
    if (lookup(&k, "onednn.isa")) cr_expect_str_neq(lookup(&k, "onednn.isa"), "unknown");
    /* compiled "X.Y.Z" and loaded "X.Y.Z[ hash]": the mismatch key appears iff they differ. */
    const char *c = lookup(&k, "onednn.compiled"), *l = lookup(&k, "onednn.loaded");
    if (c && l) {
        int same = strncmp(c, l, strlen(c)) == 0 && (l[strlen(c)] == 0 || l[strlen(c)] == ' ');
        cr_expect_eq(same, lookup(&k, "onednn.version_mismatch") == NULL,
                     "compiled %s, loaded %s, mismatch reported: %s", c, l,
                     lookup(&k, "onednn.version_mismatch") ? "yes" : "no");
    }
    tu_close(&od);
}

/* The same call twice reuses the cached primitives and reorder buffers: bit-identical output,
 * also after other shapes ran in between (and so, across steps, the backend is deterministic
 * for a given thread count, as its info() says). */
Test(onednn, cached_primitives_are_reused_consistently) {
    tu_backend od;
    cpu_open(&od, 0, 2);
    cnb_rng rng;
    cnb_rng_seed(&rng, 909);
    cnb_conv_desc d = conv_desc(&model_convs[1]), d2 = conv_desc(&model_convs[3]);
    size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
           ny = (size_t)d.n * d.k * d.p * d.q;
    size_t nx2 = (size_t)d2.n * d2.c * d2.h * d2.w, nw2 = (size_t)d2.k * d2.c * d2.r * d2.s,
           ny2 = (size_t)d2.n * d2.k * d2.p * d2.q;
    float *x = gen(&rng, nx, 0), *w = gen(&rng, nw, 0), *dy = gen(&rng, ny, 0);
    float *x2 = gen(&rng, nx2, 0), *w2 = gen(&rng, nw2, 0);
    float *first[3] = {host_floats(ny), host_floats(nx), host_floats(nw)};
    float *again[3] = {host_floats(ny), host_floats(nx), host_floats(nw)};
    devs m = {.b = &od};
    float *x_ = dv(&m, x, nx), *w_ = dv(&m, w, nw), *dy_ = dv(&m, dy, ny), *y_ = dv(&m, NULL, ny);
    float *dx_ = dv(&m, NULL, nx), *dw_ = dv(&m, NULL, nw);
    float *x2_ = dv(&m, x2, nx2), *w2_ = dv(&m, w2, nw2), *y2_ = dv(&m, NULL, ny2);
    for (int round = 0; round < 2; round++) {
        float **out = round ? again : first;
        check(&od, od.api->conv_forward(od.ctx, &d, y_, x_, w_, NULL), "conv_forward");
        check(&od, od.api->conv_backward_data(od.ctx, &d, dx_, dy_, w_), "conv_backward_data");
        check(&od, od.api->conv_backward_filter(od.ctx, &d, dw_, dy_, x_), "conv_backward_filter");
        tu_to_host(&od, out[0], y_, ny * sizeof(float));
        tu_to_host(&od, out[1], dx_, nx * sizeof(float));
        tu_to_host(&od, out[2], dw_, nw * sizeof(float));
        /* Another shape in between, so the first one's buffers are not simply still warm. */
        check(&od, od.api->conv_forward(od.ctx, &d2, y2_, x2_, w2_, NULL), "conv_forward other");
        check(&od, od.api->conv_backward_data(od.ctx, &d2, x2_, y2_, w2_),
              "conv_backward_data other");
    }
    tu_expect_equal("conv_forward repeated", again[0], first[0], ny);
    tu_expect_equal("conv_backward_data repeated", again[1], first[1], nx);
    tu_expect_equal("conv_backward_filter repeated", again[2], first[2], nw);
    dv_free(&m);
    free(x), free(w), free(dy), free(x2), free(w2);
    for (int i = 0; i < 3; i++) free(first[i]), free(again[i]);
    tu_close(&od);
}

/* More distinct shapes than the cache holds: evicted entries are rebuilt and stay correct. */
Test(onednn, cache_eviction_keeps_results_right) {
    tu_backend od, nv;
    cpu_open(&od, 0, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 1010);
    enum { SHAPES = 300 }; /* the backend caches 256 ops */
    for (int round = 0; round < 2; round++) {
        for (int t = 0; t < SHAPES; t += round ? 37 : 1) {
            gemm_case g = {"evict", t % 2, (t / 2) % 2, 1 + t % 13, 1 + t / 13, 3 + t % 5,
                           0, 0, 0, 1.0f, 0.0f};
            int lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
            size_t na = (size_t)(g.ta ? g.k : g.m) * lda, nb = (size_t)(g.tb ? g.n : g.k) * ldb,
                   nc = (size_t)g.m * g.n;
            float *a = gen(&rng, na, 1), *bm = gen(&rng, nb, 1), *c0 = gen(&rng, nc, 1);
            float *rc = host_floats(nc), *gc = host_floats(nc);
            gemm_run(&nv, &g, a, bm, c0, rc);
            gemm_run(&od, &g, a, bm, c0, gc);
            char what[64];
            snprintf(what, sizeof what, "gemm shape #%d round %d", t, round);
            tu_expect_equal(what, gc, rc, nc);
            free(a), free(bm), free(c0), free(rc), free(gc);
        }
    }
    tu_close(&nv);
    tu_close(&od);
}

/* ---- convolution algorithms: Winograd, the timed choice, direct_conv ------------------------ */

/* One convolution shape, every direction on backend b: y (with bias), dx, dw into out[3]. */
static void conv_all(tu_backend *b, const cnb_conv_desc *d, const float *x, const float *w,
                     const float *bias, const float *dy, float *out[3]) {
    const size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->k * d->p * d->q,
                 nw = (size_t)d->k * d->c * d->r * d->s;
    devs m = {.b = b};
    float *bx = dv(&m, x, nx), *bw = dv(&m, w, nw), *bb = dv(&m, bias, d->k), *bdy = dv(&m, dy, ny);
    float *by = dv(&m, NULL, ny), *bdx = dv(&m, NULL, nx), *bdw = dv(&m, NULL, nw);
    check(b, b->api->conv_forward(b->ctx, d, by, bx, bw, bb), "conv_forward");
    check(b, b->api->conv_backward_data(b->ctx, d, bdx, bdy, bw), "conv_backward_data");
    check(b, b->api->conv_backward_filter(b->ctx, d, bdw, bdy, bx), "conv_backward_filter");
    tu_to_host(b, out[0], by, ny * sizeof(float));
    tu_to_host(b, out[1], bdx, nx * sizeof(float));
    tu_to_host(b, out[2], bdw, nw * sizeof(float));
    dv_free(&m);
}

static void shape_key(char *buf, size_t len, const char *prefix, const cnb_conv_desc *d) {
    snprintf(buf, len, "%s[n%d c%d %dx%d k%d %dx%d s%dx%d p%dx%d]", prefix, d->n, d->c, d->h,
             d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w);
}

typedef struct algo_run {
    float *ref[3], *got[3];
    size_t count[3];
    kv info;
} algo_run;

/* Naive and onednn (opened with cfg and CNB_ONEDNN_CONV_ALGO=algo) on the same inputs of shape d;
 * onednn's info() after the calls lands in r->info. */
static void run_algo(const cnb_conv_desc *d, const cnb_config *cfg, const char *algo, int exact,
                     uint64_t seed, algo_run *r) {
    tu_backend od, nv;
    open_with(&od, 0, cfg, algo);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    r->count[0] = (size_t)d->n * d->k * d->p * d->q;
    r->count[1] = (size_t)d->n * d->c * d->h * d->w;
    r->count[2] = (size_t)d->k * d->c * d->r * d->s;
    float *x = gen(&rng, r->count[1], exact), *w = gen(&rng, r->count[2], exact);
    float *bias = gen(&rng, d->k, exact), *dy = gen(&rng, r->count[0], exact);
    for (int i = 0; i < 3; i++) r->ref[i] = host_floats(r->count[i]), r->got[i] = host_floats(r->count[i]);
    conv_all(&nv, d, x, w, bias, dy, r->ref);
    conv_all(&od, d, x, w, bias, dy, r->got);
    memset(&r->info, 0, sizeof r->info);
    check(&od, od.api->info(od.ctx, collect, &r->info), "info");
    free(x), free(w), free(bias), free(dy);
    tu_close(&nv);
    tu_close(&od);
}

static void algo_free(algo_run *r) {
    for (int i = 0; i < 3; i++) free(r->ref[i]), free(r->got[i]);
}

static const char *const dir_names[3] = {"conv_forward", "conv_backward_data",
                                         "conv_backward_filter"};

/* Winograd, forced, at simplecnn's conv2 and at odd shapes: within the transform tolerance of
 * cnnbench check (1e-4: Winograd's tile transforms add rounding, cmd_check.c), and reported as
 * a transform in every direction (cnb_abi.h's conv.transforms), which is what makes check relax
 * for it. On exact-integer data it does not reproduce the sums bit for bit: the proof that the
 * transform really ran. */
Test(onednn, winograd_agrees_and_is_reported, .timeout = 120) {
    const cnb_conv_desc shapes[] = {
        {.n = 16, .c = 32, .h = 14, .w = 14, .k = 64, .r = 3, .s = 3, .stride_h = 1,
         .stride_w = 1, .pad_h = 1, .pad_w = 1, .p = 14, .q = 14},
        {.n = 3, .c = 5, .h = 9, .w = 11, .k = 7, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
         .pad_h = 0, .pad_w = 0, .p = 7, .q = 9},
        {.n = 1, .c = 16, .h = 6, .w = 5, .k = 16, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
         .pad_h = 1, .pad_w = 1, .p = 6, .q = 5},
    };
    cnb_config cfg = {.size = sizeof cfg, .threads = 2};
    for (size_t s = 0; s < NCASES(shapes); s++) {
        const cnb_conv_desc *d = &shapes[s];
        algo_run r;
        run_algo(d, &cfg, "winograd", 0, 500 + s, &r);
        char key[128];
        shape_key(key, sizeof key, "conv.transforms", d);
        const char *dirs = lookup(&r.info, key);
        cr_expect_not_null(dirs, "shape %zu: info has no %s", s, key);
        if (dirs) cr_expect_str_eq(dirs, "fwd bwd_data bwd_filter", "shape %zu", s);
        for (int i = 0; i < 3; i++) {
            char what[160];
            snprintf(what, sizeof what, "winograd shape %zu: %s", s, dir_names[i]);
            tu_expect_close(what, r.got[i], r.ref[i], r.count[i], 1e-4);
        }
        algo_free(&r);
    }
    algo_run r;
    run_algo(&shapes[0], &cfg, "winograd", 1, 510, &r);
    size_t differ = 0;
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; j < r.count[i]; j++) differ += r.got[i][j] != r.ref[i][j];
    cr_expect_gt(differ, 0, "Winograd reproduced every integer sum exactly: did it run?");
    algo_free(&r);
}

/* The default: simplecnn conv2 at batch 64 is timed on its first call, the timings and the pick
 * are in info(), a Winograd pick is listed under conv.transforms, and the result is right
 * either way. */
Test(onednn, timed_choice_is_reported_and_right, .timeout = 120) {
    cnb_conv_desc d = conv_desc(&model_convs[1]);
    cnb_config cfg = {.size = sizeof cfg, .threads = 2};
    algo_run r;
    run_algo(&d, &cfg, NULL, 0, 520, &r);
    char key[128], tkey[128];
    shape_key(key, sizeof key, "onednn.conv", &d);
    shape_key(tkey, sizeof tkey, "conv.transforms", &d);
    const char *v = lookup(&r.info, key), *t = lookup(&r.info, tkey);
    cr_assert_not_null(v, "info has no %s", key);
    const char *kinds[3] = {"fwd=", "bwd_data=", "bwd_filter="}, *words[3] = {"fwd", "bwd_data",
                                                                                "bwd_filter"};
    for (int i = 0; i < 3; i++) {
        const char *at = strstr(v, kinds[i]);
        cr_expect_not_null(at, "%s: no %s entry in \"%s\"", key, kinds[i], v);
        if (!at) continue;
        cr_expect(strstr(at, "(timed: direct ") != NULL, "%s: not timed: %s", kinds[i], at);
        int wino = strncmp(at + strlen(kinds[i]), "winograd", 8) == 0;
        int listed = t && strstr(t, words[i]) != NULL;
        cr_expect_eq(wino, listed, "%s picked %s but conv.transforms says \"%s\"", kinds[i],
                     wino ? "winograd" : "direct", t ? t : "(none)");
        char what[160];
        snprintf(what, sizeof what, "timed choice: %s", dir_names[i]);
        tu_expect_close(what, r.got[i], r.ref[i], r.count[i], wino ? 1e-4 : 1e-5);
    }
    cr_expect_str_eq(lookup(&r.info, "warm_up") ? lookup(&r.info, "warm_up") : "", "yes");
    algo_free(&r);
}

/* direct_conv: no Winograd anywhere, nothing timed, integer data exact bit for bit — also when
 * the environment asks for Winograd. Deterministic mode takes oneDNN's convolution_auto. */
Test(onednn, direct_conv_and_deterministic_choices, .timeout = 120) {
    cnb_conv_desc d = conv_desc(&model_convs[1]);
    cnb_config cfg = {.size = sizeof cfg, .threads = 2, .direct_conv = 1};
    algo_run r;
    run_algo(&d, &cfg, "winograd", 1, 530, &r);
    for (int i = 0; i < r.info.n; i++)
        cr_expect(strncmp(r.info.key[i], "conv.transforms[", 16) != 0 &&
                      strncmp(r.info.key[i], "onednn.conv[", 12) != 0,
                  "direct_conv, yet info has %s = %s", r.info.key[i], r.info.val[i]);
    cr_expect_null(lookup(&r.info, "warm_up"), "direct_conv times nothing: no warm-up needed");
    for (int i = 0; i < 3; i++) tu_expect_equal(dir_names[i], r.got[i], r.ref[i], r.count[i]);
    algo_free(&r);

    cnb_config det = {.size = sizeof det, .threads = 2, .deterministic = 1};
    run_algo(&d, &det, NULL, 0, 540, &r);
    char key[128];
    shape_key(key, sizeof key, "onednn.conv", &d);
    const char *v = lookup(&r.info, key);
    cr_expect(v && strstr(v, "convolution_auto") && !strstr(v, "(timed:"),
              "deterministic: %s = %s", key, v ? v : "(none)");
    algo_free(&r);
}
