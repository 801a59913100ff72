/* test_onednn.c — the oneDNN backend against the naive oracle, kernel by kernel: random inputs
 * at many shapes (batch 1, odd sizes, stride 2, padding, non-square) and at every layer shape
 * of the five models, relative L2 < 1e-5; an exact mode (small sparse integers, every partial
 * sum exact in fp32) where convolution, GEMM and max pooling must be bit-identical to naive;
 * both convolution layout paths (plain nchw and blocked with reorders); descriptor validation,
 * info(), and the primitive cache (reuse, eviction). If the backend is not built or cannot run
 * here, every test prints "[SKIP-ALL] onednn: <reason>" and is skipped. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "testutil.h"

/* fp32 kernels that differ from the double-accumulating oracle only in summation order land
 * near 1e-7; 1e-5 leaves room for long sums (k = 3136) without hiding a wrong index. */
#define TOL 1e-5

/* ---- plumbing ------------------------------------------------------------------------------ */

/* Device buffers of one backend, freed together at the end of a test. */
typedef struct devs {
    tu_backend *b;
    void *p[64];
    int n;
} devs;

static void *dv_bytes(devs *d, const void *host, size_t bytes) {
    cr_assert_lt(d->n, 64, "too many device buffers in one test");
    void *p = tu_dev_bytes(d->b, host, bytes ? bytes : 4);
    d->p[d->n++] = p;
    return p;
}
static float *dv(devs *d, const float *host, size_t count) {
    return dv_bytes(d, host, count * sizeof(float));
}
static void dv_free(devs *d) {
    for (int i = 0; i < d->n; i++) tu_dev_free(d->b, d->p[i]);
    d->n = 0;
}

/* Open the oneDNN backend with a conv layout (NULL: its own rule), or skip the whole test with
 * the reason when it cannot be opened here. */
static void open_onednn(tu_backend *b, const char *layout, int threads) {
    char why[CNB_ERR_LEN];
    if (layout)
        setenv("CNB_ONEDNN_CONV_LAYOUT", layout, 1);
    else
        unsetenv("CNB_ONEDNN_CONV_LAYOUT");
    int rc = tu_try_open(b, "onednn", threads, why, sizeof why);
    unsetenv("CNB_ONEDNN_CONV_LAYOUT");
    if (rc != 0) {
        printf("[SKIP-ALL] onednn: %s\n", why);
        fflush(stdout);
        cr_skip_test("onednn: %s", why);
    }
}

static float *host_floats(size_t count) {
    float *p = malloc((count ? count : 1) * sizeof(float));
    cr_assert_not_null(p);
    return p;
}

/* Inputs: uniform in [-1, 1], or (exact mode) integers in [-3, 3] with a quarter zeros. */
static float *inputs(cnb_rng *rng, size_t count, int exact) {
    return exact ? tu_small_ints(rng, count, -3, 3, 0.25) : tu_random(rng, count, -1.0f, 1.0f);
}

/* Compare got with the oracle's ref: bit for bit in exact mode (where a mostly-zero reference
 * would prove little, so that fails too), else relative L2 < TOL. */
static void agree(const char *what, const float *got, const float *ref, size_t count, int exact) {
    if (exact) {
        cnb_compare_stats s;
        cnb_compare(got, ref, count, 0.0, &s);
        cr_expect(!cnb_compare_mistrusted(&s),
                  "%s: MISTRUSTED, %.0f%% of the reference is zero (inputs too sparse)", what,
                  100.0 * s.zero_share);
        tu_expect_equal(what, got, ref, count);
    } else {
        tu_expect_close(what, got, ref, count, TOL);
    }
}

static void check(tu_backend *b, cnb_status st, const char *what) { tu_check_status(b, st, what); }

/* ---- corr2d ---------------------------------------------------------------------------------- */

Test(onednn, corr2d_seed_vector) {
    tu_backend od;
    open_onednn(&od, NULL, 2);
    devs d = {.b = &od};
    const float x[16] = {0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6};
    const float k[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const float want[4] = {96, 132, 132, 168};
    float *dx = dv(&d, x, 16), *dk = dv(&d, k, 9), *dy = dv(&d, NULL, 4);
    check(&od, od.api->corr2d(od.ctx, dy, dx, dk, 4, 4, 3, 3), "corr2d");
    float y[4];
    tu_to_host(&od, y, dy, sizeof y);
    tu_expect_equal("corr2d seed vector", y, want, 4);
    dv_free(&d);
    tu_close(&od);
}

Test(onednn, corr2d_matches_naive) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 11);
    const int shapes[][4] = {{4, 4, 3, 3}, {28, 28, 5, 5}, {7, 13, 2, 4}, {1, 9, 1, 3}, {6, 6, 6, 6}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int h = shapes[t][0], w = shapes[t][1], kh = shapes[t][2], kw = shapes[t][3];
        size_t ny = (size_t)(h - kh + 1) * (w - kw + 1);
        float *x = inputs(&rng, (size_t)h * w, 1), *k = inputs(&rng, (size_t)kh * kw, 1);
        float *y[2] = {host_floats(ny), host_floats(ny)};
        tu_backend *bs[2] = {&nv, &od};
        for (int i = 0; i < 2; i++) {
            devs d = {.b = bs[i]};
            float *dx = dv(&d, x, (size_t)h * w), *dk = dv(&d, k, (size_t)kh * kw),
                  *dy = dv(&d, NULL, ny);
            check(bs[i], bs[i]->api->corr2d(bs[i]->ctx, dy, dx, dk, h, w, kh, kw), "corr2d");
            tu_to_host(bs[i], y[i], dy, ny * sizeof(float));
            dv_free(&d);
        }
        char what[64];
        snprintf(what, sizeof what, "corr2d %dx%d * %dx%d", h, w, kh, kw);
        tu_expect_equal(what, y[1], y[0], ny);
        free(x), free(k), free(y[0]), free(y[1]);
    }
    tu_close(&nv);
    tu_close(&od);
}

/* ---- convolution ----------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int n, c, h, w, k, r, s, sh, sw, ph, pw;
} conv_case;

/* Every convolution layer of the five models, with the model's batch size. */
static const conv_case model_convs[] = {
    {"simplecnn.conv1", 64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1},
    {"simplecnn.conv2", 64, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1},
    {"cnn.conv1", 64, 1, 28, 28, 16, 5, 5, 1, 1, 2, 2},
    {"cnn.conv2", 64, 16, 14, 14, 32, 5, 5, 1, 1, 2, 2},
    {"network.conv1", 100, 1, 28, 28, 6, 5, 5, 1, 1, 0, 0},
    {"network.conv2", 100, 6, 12, 12, 12, 5, 5, 1, 1, 0, 0},
    {"network3.conv1", 40, 1, 28, 28, 6, 5, 5, 1, 1, 0, 0},
    {"network3.conv2", 40, 6, 12, 12, 12, 5, 5, 1, 1, 0, 0},
    {"network3.conv3", 40, 12, 4, 4, 24, 2, 2, 1, 1, 1, 1},
    {"lenet5.conv1", 256, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2},
    {"lenet5.conv2", 256, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0},
};

/* Shapes that stress indexing: batch 1, odd and non-square sizes, strides, uneven padding,
 * floor-mode leftovers, 1x1 kernels, one input channel with many outputs (the plain path). */
static const conv_case misc_convs[] = {
    {"batch1", 1, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1},
    {"odd", 3, 5, 13, 11, 7, 3, 3, 1, 1, 0, 0},
    {"stride2", 2, 4, 15, 15, 8, 3, 3, 2, 2, 1, 1},
    {"nonsquare_stride_pad", 2, 3, 17, 12, 5, 3, 5, 2, 1, 1, 2},
    {"kernel1x1", 4, 8, 9, 9, 16, 1, 1, 1, 1, 0, 0},
    {"pad_r_minus_1", 2, 2, 5, 6, 3, 3, 3, 1, 1, 2, 2},
    {"stride3_floor", 3, 2, 10, 11, 4, 4, 3, 3, 2, 0, 1},
    {"c1_k32_stride2", 2, 1, 9, 9, 32, 3, 3, 2, 2, 1, 1},
    {"c1_k48_nonsquare", 3, 1, 11, 8, 48, 3, 2, 1, 1, 1, 0},
    {"c17_k3_batch1", 1, 17, 6, 5, 3, 2, 3, 1, 1, 0, 1},
};

static cnb_conv_desc conv_desc(const conv_case *cc) {
    cnb_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .r = cc->r,
                       .s = cc->s, .stride_h = cc->sh, .stride_w = cc->sw, .pad_h = cc->ph,
                       .pad_w = cc->pw};
    d.p = (d.h + 2 * d.pad_h - d.r) / d.stride_h + 1;
    d.q = (d.w + 2 * d.pad_w - d.s) / d.stride_w + 1;
    return d;
}

/* y = conv(x, w) + bias, dx = conv_backward_data(dy, w), dw = conv_backward_filter(dy, x). */
static void conv_run(tu_backend *b, const cnb_conv_desc *d, const float *x, const float *w,
                     const float *bias, const float *dy, float *y, float *dx, float *dw) {
    size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s,
           ny = (size_t)d->n * d->k * d->p * d->q;
    devs m = {.b = b};
    float *x_ = dv(&m, x, nx), *w_ = dv(&m, w, nw), *b_ = dv(&m, bias, d->k), *dy_ = dv(&m, dy, ny);
    float *y_ = dv(&m, NULL, ny), *dx_ = dv(&m, NULL, nx), *dw_ = dv(&m, NULL, nw);
    check(b, b->api->conv_forward(b->ctx, d, y_, x_, w_, b_), "conv_forward");
    check(b, b->api->conv_backward_data(b->ctx, d, dx_, dy_, w_), "conv_backward_data");
    check(b, b->api->conv_backward_filter(b->ctx, d, dw_, dy_, x_), "conv_backward_filter");
    tu_to_host(b, y, y_, ny * sizeof(float));
    tu_to_host(b, dx, dx_, nx * sizeof(float));
    tu_to_host(b, dw, dw_, nw * sizeof(float));
    dv_free(&m);
}

/* Every case through naive and through each given oneDNN context, compared. */
static void conv_cases(const conv_case *cases, size_t ncases, int exact, tu_backend **ods,
                       const char *const *od_names, int nod) {
    tu_backend nv;
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, exact ? 202 : 101);
    for (size_t t = 0; t < ncases; t++) {
        cnb_conv_desc d = conv_desc(&cases[t]);
        size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
               ny = (size_t)d.n * d.k * d.p * d.q;
        float *x = inputs(&rng, nx, exact), *w = inputs(&rng, nw, exact);
        float *bias = inputs(&rng, d.k, exact), *dy = inputs(&rng, ny, exact);
        float *ry = host_floats(ny), *rdx = host_floats(nx), *rdw = host_floats(nw);
        float *gy = host_floats(ny), *gdx = host_floats(nx), *gdw = host_floats(nw);
        conv_run(&nv, &d, x, w, bias, dy, ry, rdx, rdw);
        for (int v = 0; v < nod; v++) {
            conv_run(ods[v], &d, x, w, bias, dy, gy, gdx, gdw);
            char what[160];
            snprintf(what, sizeof what, "conv %s [%s%s] forward", cases[t].name, od_names[v],
                     exact ? ", exact" : "");
            agree(what, gy, ry, ny, exact);
            snprintf(what, sizeof what, "conv %s [%s%s] backward_data", cases[t].name,
                     od_names[v], exact ? ", exact" : "");
            agree(what, gdx, rdx, nx, exact);
            snprintf(what, sizeof what, "conv %s [%s%s] backward_filter", cases[t].name,
                     od_names[v], exact ? ", exact" : "");
            agree(what, gdw, rdw, nw, exact);
        }
        free(x), free(w), free(bias), free(dy);
        free(ry), free(rdx), free(rdw), free(gy), free(gdx), free(gdw);
    }
    tu_close(&nv);
}

/* The backend's own layout rule, and both forced layouts, so the reorder path and the plain
 * path are each checked at every shape whatever the rule picks. */
static void conv_all_layouts(const conv_case *cases, size_t ncases, int exact) {
    tu_backend a, p, b;
    open_onednn(&a, NULL, 2);
    open_onednn(&p, "plain", 2);
    open_onednn(&b, "blocked", 2);
    tu_backend *ods[3] = {&a, &p, &b};
    const char *const names[3] = {"auto", "plain", "blocked"};
    conv_cases(cases, ncases, exact, ods, names, 3);
    tu_close(&b);
    tu_close(&p);
    tu_close(&a);
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

Test(onednn, conv_model_shapes, .timeout = 300) {
    conv_all_layouts(model_convs, NCASES(model_convs), 0);
}
Test(onednn, conv_misc_shapes) { conv_all_layouts(misc_convs, NCASES(misc_convs), 0); }
Test(onednn, conv_model_shapes_exact, .timeout = 300) {
    conv_all_layouts(model_convs, NCASES(model_convs), 1);
}
Test(onednn, conv_misc_shapes_exact) { conv_all_layouts(misc_convs, NCASES(misc_convs), 1); }

Test(onednn, conv_forward_without_bias) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 5);
    const conv_case cases[] = {model_convs[0], model_convs[1], misc_convs[3]};
    for (size_t t = 0; t < NCASES(cases); t++) {
        cnb_conv_desc d = conv_desc(&cases[t]);
        size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
               ny = (size_t)d.n * d.k * d.p * d.q;
        float *x = inputs(&rng, nx, 0), *w = inputs(&rng, nw, 0);
        float *y[2] = {host_floats(ny), host_floats(ny)};
        tu_backend *bs[2] = {&nv, &od};
        for (int i = 0; i < 2; i++) {
            devs m = {.b = bs[i]};
            float *x_ = dv(&m, x, nx), *w_ = dv(&m, w, nw), *y_ = dv(&m, NULL, ny);
            check(bs[i], bs[i]->api->conv_forward(bs[i]->ctx, &d, y_, x_, w_, NULL),
                  "conv_forward(bias NULL)");
            tu_to_host(bs[i], y[i], y_, ny * sizeof(float));
            dv_free(&m);
        }
        char what[96];
        snprintf(what, sizeof what, "conv %s forward without bias", cases[t].name);
        tu_expect_close(what, y[1], y[0], ny, TOL);
        free(x), free(w), free(y[0]), free(y[1]);
    }
    tu_close(&nv);
    tu_close(&od);
}

/* Every linear layer of the five models: (batch, in, out). */
typedef struct linear_case {
    const char *name;
    int batch, in, out;
} linear_case;
static const linear_case model_linears[] = {
    {"simplecnn.fc1", 64, 3136, 128}, {"simplecnn.fc2", 64, 128, 10}, {"cnn.fc", 64, 1568, 10},
    {"network.fc1", 100, 192, 120},   {"network.fc2", 100, 120, 60},  {"network.fc3", 100, 60, 10},
    {"network3.fc1", 40, 96, 120},    {"network3.fc2", 40, 120, 60},  {"network3.fc3", 40, 60, 10},
    {"lenet5.fc1", 256, 400, 120},    {"lenet5.fc2", 256, 120, 84},   {"lenet5.fc3", 256, 84, 10},
};

/* ---- bias ------------------------------------------------------------------------------------ */

Test(onednn, bias_forward_backward) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 7);
    /* (n, c, hw): every bias of the five models — the convolutions' (n, k, p*q) and the
     * linear layers' (batch, out, 1) — then odd and tiny ones. */
    int shapes[64][3];
    size_t nshapes = 0;
    for (size_t t = 0; t < NCASES(model_convs); t++) {
        cnb_conv_desc d = conv_desc(&model_convs[t]);
        shapes[nshapes][0] = d.n, shapes[nshapes][1] = d.k, shapes[nshapes][2] = d.p * d.q;
        nshapes++;
    }
    for (size_t t = 0; t < NCASES(model_linears); t++) {
        shapes[nshapes][0] = model_linears[t].batch, shapes[nshapes][1] = model_linears[t].out;
        shapes[nshapes][2] = 1;
        nshapes++;
    }
    const int misc[][3] = {{1, 3, 5}, {7, 5000, 1}, {3, 7, 13}, {1, 1, 1}, {2, 4097, 3}};
    for (size_t t = 0; t < NCASES(misc); t++) {
        memcpy(shapes[nshapes], misc[t], sizeof misc[t]);
        nshapes++;
    }
    for (size_t t = 0; t < nshapes; t++) {
        int n = shapes[t][0], c = shapes[t][1], hw = shapes[t][2];
        size_t ny = (size_t)n * c * hw;
        float *y0 = inputs(&rng, ny, 0), *bias = inputs(&rng, c, 0), *dy = inputs(&rng, ny, 0);
        float *y[2] = {host_floats(ny), host_floats(ny)}, *db[2] = {host_floats(c), host_floats(c)};
        tu_backend *bs[2] = {&nv, &od};
        for (int i = 0; i < 2; i++) {
            devs m = {.b = bs[i]};
            float *y_ = dv(&m, y0, ny), *b_ = dv(&m, bias, c), *dy_ = dv(&m, dy, ny),
                  *db_ = dv(&m, NULL, c);
            check(bs[i], bs[i]->api->bias_forward(bs[i]->ctx, y_, b_, n, c, hw), "bias_forward");
            check(bs[i], bs[i]->api->bias_backward(bs[i]->ctx, db_, dy_, n, c, hw),
                  "bias_backward");
            tu_to_host(bs[i], y[i], y_, ny * sizeof(float));
            tu_to_host(bs[i], db[i], db_, c * sizeof(float));
            dv_free(&m);
        }
        char what[96];
        snprintf(what, sizeof what, "bias_forward n%d c%d hw%d", n, c, hw);
        tu_expect_close(what, y[1], y[0], ny, TOL);
        snprintf(what, sizeof what, "bias_backward n%d c%d hw%d", n, c, hw);
        tu_expect_close(what, db[1], db[0], c, TOL);
        free(y0), free(bias), free(dy), free(y[0]), free(y[1]), free(db[0]), free(db[1]);
    }
    tu_close(&nv);
    tu_close(&od);
}

/* ---- pooling --------------------------------------------------------------------------------- */

typedef struct pool_case {
    const char *name;
    int mode, n, c, h, w, kh, kw, sh, sw, ph, pw;
} pool_case;

static const pool_case pool_cases[] = {
    {"simplecnn.pool1", CNB_POOL_MAX, 64, 32, 28, 28, 2, 2, 2, 2, 0, 0},
    {"simplecnn.pool2", CNB_POOL_MAX, 64, 64, 14, 14, 2, 2, 2, 2, 0, 0},
    {"cnn.pool1", CNB_POOL_MAX, 64, 16, 28, 28, 2, 2, 2, 2, 0, 0},
    {"cnn.pool2", CNB_POOL_MAX, 64, 32, 14, 14, 2, 2, 2, 2, 0, 0},
    {"network.pool1", CNB_POOL_MAX, 100, 6, 24, 24, 2, 2, 2, 2, 0, 0},
    {"network.pool2", CNB_POOL_MAX, 100, 12, 8, 8, 2, 2, 2, 2, 0, 0},
    {"network3.pool1", CNB_POOL_MAX, 40, 6, 24, 24, 2, 2, 2, 2, 0, 0},
    {"network3.pool2", CNB_POOL_MAX, 40, 12, 8, 8, 2, 2, 2, 2, 0, 0},
    {"network3.pool3_floor", CNB_POOL_MAX, 40, 24, 5, 5, 2, 2, 2, 2, 0, 0},
    {"lenet5.pool1", CNB_POOL_AVG, 256, 6, 28, 28, 2, 2, 2, 2, 0, 0},
    {"lenet5.pool2", CNB_POOL_AVG, 256, 16, 10, 10, 2, 2, 2, 2, 0, 0},
    {"batch1_odd", CNB_POOL_MAX, 1, 1, 7, 7, 2, 2, 2, 2, 0, 0},
    {"overlap3x3s1", CNB_POOL_MAX, 2, 3, 7, 9, 3, 3, 1, 1, 0, 0},
    {"3x3s2pad1", CNB_POOL_MAX, 2, 4, 11, 10, 3, 3, 2, 2, 1, 1},
    {"2x3_s12_pad", CNB_POOL_MAX, 3, 2, 8, 9, 2, 3, 1, 2, 1, 1},
    {"pad2_of_3", CNB_POOL_MAX, 2, 2, 6, 5, 3, 3, 2, 2, 2, 2},
    {"avg_batch1_odd", CNB_POOL_AVG, 1, 1, 7, 7, 2, 2, 2, 2, 0, 0},
    {"avg_overlap3x3s1", CNB_POOL_AVG, 2, 3, 7, 9, 3, 3, 1, 1, 0, 0},
    {"avg_3x3s2pad1", CNB_POOL_AVG, 2, 4, 11, 10, 3, 3, 2, 2, 1, 1},
    {"avg_2x3_s12_pad", CNB_POOL_AVG, 3, 2, 8, 9, 2, 3, 1, 2, 1, 1},
};

static cnb_pool_desc pool_desc(const pool_case *pc) {
    cnb_pool_desc d = {.mode = pc->mode, .n = pc->n, .c = pc->c, .h = pc->h, .w = pc->w,
                       .kh = pc->kh, .kw = pc->kw, .stride_h = pc->sh, .stride_w = pc->sw,
                       .pad_h = pc->ph, .pad_w = pc->pw};
    d.p = (d.h + 2 * d.pad_h - d.kh) / d.stride_h + 1;
    d.q = (d.w + 2 * d.pad_w - d.kw) / d.stride_w + 1;
    return d;
}

static void pool_run(tu_backend *b, const cnb_pool_desc *d, const float *x, const float *dy,
                     float *y, float *dx) {
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
    size_t ws = 0;
    check(b, b->api->pool_workspace_size(b->ctx, d, &ws), "pool_workspace_size");
    devs m = {.b = b};
    float *x_ = dv(&m, x, nx), *dy_ = dv(&m, dy, ny), *y_ = dv(&m, NULL, ny),
          *dx_ = dv(&m, NULL, nx);
    void *ws_ = ws ? dv_bytes(&m, NULL, ws) : NULL;
    check(b, b->api->pool_forward(b->ctx, d, y_, x_, ws_), "pool_forward");
    check(b, b->api->pool_backward(b->ctx, d, dx_, dy_, x_, y_, ws_), "pool_backward");
    tu_to_host(b, y, y_, ny * sizeof(float));
    tu_to_host(b, dx, dx_, nx * sizeof(float));
    dv_free(&m);
}

/* ties: inputs are integers in [0, 2], so most windows hold several equal maxima and the
 * backward must route each gradient to the first one (row-major), as naive does. Sums of
 * integer gradients are exact, so the backward is compared bit for bit too. */
static void pool_check_all(int exact, int ties) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 303 + exact + 2 * ties);
    for (size_t t = 0; t < NCASES(pool_cases); t++) {
        cnb_pool_desc d = pool_desc(&pool_cases[t]);
        if ((exact || ties) && d.mode != CNB_POOL_MAX) continue;
        size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.c * d.p * d.q;
        float *x = ties ? tu_small_ints(&rng, nx, 0, 2, 0.0) : inputs(&rng, nx, exact);
        float *dy = ties ? tu_small_ints(&rng, ny, 1, 4, 0.0) : inputs(&rng, ny, exact);
        float *ry = host_floats(ny), *rdx = host_floats(nx), *gy = host_floats(ny),
              *gdx = host_floats(nx);
        pool_run(&nv, &d, x, dy, ry, rdx);
        pool_run(&od, &d, x, dy, gy, gdx);
        char what[128];
        const char *tag = ties ? " (ties)" : exact ? " (exact)" : "";
        snprintf(what, sizeof what, "pool %s forward%s", pool_cases[t].name, tag);
        if (exact || ties)
            tu_expect_equal(what, gy, ry, ny);
        else
            tu_expect_close(what, gy, ry, ny, TOL);
        snprintf(what, sizeof what, "pool %s backward%s", pool_cases[t].name, tag);
        if (ties)
            tu_expect_equal(what, gdx, rdx, nx);
        else
            tu_expect_close(what, gdx, rdx, nx, TOL);
        free(x), free(dy), free(ry), free(rdx), free(gy), free(gdx);
    }
    tu_close(&nv);
    tu_close(&od);
}

Test(onednn, pool_random) { pool_check_all(0, 0); }
Test(onednn, pool_max_exact) { pool_check_all(1, 0); }
Test(onednn, pool_max_ties_first_wins) { pool_check_all(0, 1); }

Test(onednn, pool_workspace_sizes) {
    tu_backend od;
    open_onednn(&od, NULL, 2);
    cnb_pool_desc mx = pool_desc(&pool_cases[0]), av = pool_desc(&pool_cases[9]);
    size_t wmax = 0, wavg = 1;
    check(&od, od.api->pool_workspace_size(od.ctx, &mx, &wmax), "pool_workspace_size(max)");
    check(&od, od.api->pool_workspace_size(od.ctx, &av, &wavg), "pool_workspace_size(avg)");
    /* Max pooling records one argmax per output (at least a byte each); average needs none. */
    size_t ny = (size_t)mx.n * mx.c * mx.p * mx.q;
    cr_expect_geq(wmax, ny, "max-pool workspace %zu bytes < %zu outputs", wmax, ny);
    cr_expect_eq(wavg, 0, "avg-pool workspace should be 0 bytes, got %zu", wavg);
    tu_close(&od);
}

/* ---- gemm ------------------------------------------------------------------------------------ */

typedef struct gemm_case {
    const char *name;
    int ta, tb, m, n, k, pad_a, pad_b, pad_c; /* pad_*: extra leading-dimension columns */
    float alpha, beta;
} gemm_case;

/* The three GEMMs of a linear layer (batch, in -> out): forward y = x W^T, dW = dy^T x,
 * dx = dy W. */
#define LINEAR(name, batch, in, out)                                      \
    {name ".forward", 0, 1, batch, out, in, 0, 0, 0, 1.0f, 0.0f},         \
    {name ".dweight", 1, 0, out, in, batch, 0, 0, 0, 1.0f, 0.0f},         \
    {name ".dinput", 0, 0, batch, in, out, 0, 0, 0, 1.0f, 0.0f}

static const gemm_case gemm_cases[] = {
    LINEAR("simplecnn.fc1", 64, 3136, 128),
    LINEAR("simplecnn.fc2", 64, 128, 10),
    LINEAR("cnn.fc", 64, 1568, 10),
    LINEAR("network.fc1", 100, 192, 120),
    LINEAR("network.fc2", 100, 120, 60),
    LINEAR("network.fc3", 100, 60, 10),
    LINEAR("network3.fc1", 40, 96, 120),
    LINEAR("network3.fc2", 40, 120, 60),
    LINEAR("network3.fc3", 40, 60, 10),
    LINEAR("lenet5.fc1", 256, 400, 120),
    LINEAR("lenet5.fc2", 256, 120, 84),
    LINEAR("lenet5.fc3", 256, 84, 10),
    {"nn_odd", 0, 0, 7, 5, 3, 0, 0, 0, 1.0f, 0.0f},
    {"nt_odd", 0, 1, 7, 5, 3, 0, 0, 0, 1.0f, 0.0f},
    {"tn_odd", 1, 0, 7, 5, 3, 0, 0, 0, 1.0f, 0.0f},
    {"tt_odd", 1, 1, 7, 5, 3, 0, 0, 0, 1.0f, 0.0f},
    {"nn_ld_alpha_beta", 0, 0, 9, 6, 11, 3, 2, 5, 0.5f, 0.75f},
    {"nt_ld_alpha_beta", 0, 1, 9, 6, 11, 1, 4, 2, -2.0f, 1.0f},
    {"tn_ld_alpha_beta", 1, 0, 9, 6, 11, 2, 1, 3, 1.5f, -0.5f},
    {"tt_ld_alpha_beta", 1, 1, 9, 6, 11, 5, 3, 1, 1.0f, 2.0f},
    {"m1", 0, 1, 1, 17, 33, 0, 0, 0, 1.0f, 0.0f},
    {"n1", 1, 0, 13, 1, 21, 0, 0, 0, 1.0f, 0.0f},
    {"k1", 0, 0, 8, 9, 1, 0, 0, 0, 1.0f, 0.0f},
    {"beta_only_scale", 0, 0, 5, 4, 6, 0, 0, 0, 0.0f, 3.0f},
};

/* Runs one case on b: C starts as c0 (which matters only when beta != 0). */
static void gemm_run(tu_backend *b, const gemm_case *g, const float *a, const float *bm,
                     const float *c0, float *c) {
    int lda = (g->ta ? g->m : g->k) + g->pad_a, ldb = (g->tb ? g->k : g->n) + g->pad_b,
        ldc = g->n + g->pad_c;
    size_t na = (size_t)(g->ta ? g->k : g->m) * lda, nb = (size_t)(g->tb ? g->n : g->k) * ldb,
           nc = (size_t)g->m * ldc;
    devs m = {.b = b};
    float *a_ = dv(&m, a, na), *b_ = dv(&m, bm, nb), *c_ = dv(&m, c0, nc);
    check(b, b->api->gemm(b->ctx, g->ta, g->tb, g->m, g->n, g->k, g->alpha, a_, lda, b_, ldb,
                          g->beta, c_, ldc),
          "gemm");
    tu_to_host(b, c, c_, nc * sizeof(float));
    dv_free(&m);
}

static void gemm_check_all(int exact) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, exact ? 404 : 505);
    for (size_t t = 0; t < NCASES(gemm_cases); t++) {
        const gemm_case *g = &gemm_cases[t];
        int lda = (g->ta ? g->m : g->k) + g->pad_a, ldb = (g->tb ? g->k : g->n) + g->pad_b,
            ldc = g->n + g->pad_c;
        size_t na = (size_t)(g->ta ? g->k : g->m) * lda, nb = (size_t)(g->tb ? g->n : g->k) * ldb,
               nc = (size_t)g->m * ldc;
        float *a = inputs(&rng, na, exact), *bm = inputs(&rng, nb, exact),
              *c0 = inputs(&rng, nc, exact);
        float *rc = host_floats(nc), *gc = host_floats(nc);
        gemm_run(&nv, g, a, bm, c0, rc);
        gemm_run(&od, g, a, bm, c0, gc);
        char what[128];
        snprintf(what, sizeof what, "gemm %s (%c%c m%d n%d k%d)%s", g->name, g->ta ? 'T' : 'N',
                 g->tb ? 'T' : 'N', g->m, g->n, g->k, exact ? " exact" : "");
        /* The whole C, padding columns included: they must come back untouched. */
        if (exact)
            tu_expect_equal(what, gc, rc, nc);
        else
            tu_expect_close(what, gc, rc, nc, TOL);
        free(a), free(bm), free(c0), free(rc), free(gc);
    }
    tu_close(&nv);
    tu_close(&od);
}

Test(onednn, gemm_random) { gemm_check_all(0); }
Test(onednn, gemm_exact) { gemm_check_all(1); }

/* ---- activations ----------------------------------------------------------------------------- */

static const char *act_name(int act) {
    static const char *names[] = {"relu", "tanh", "sigmoid", "prelu"};
    return act >= 0 && act < 4 ? names[act] : "?";
}

Test(onednn, activations) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 606);
    /* Every activation tensor of the five models (each activation is checked at all of them,
     * not only where its model uses it) and odd counts around the 16-wide view PReLU runs on. */
    const size_t counts[] = {
        64 * 32 * 28 * 28, 64 * 64 * 14 * 14, 64 * 128,                 /* simplecnn */
        64 * 16 * 28 * 28, 64 * 32 * 14 * 14,                           /* cnn */
        100 * 6 * 24 * 24, 100 * 12 * 8 * 8, 100 * 120, 100 * 60,       /* network */
        40 * 6 * 24 * 24, 40 * 12 * 8 * 8, 40 * 24 * 5 * 5, 40 * 120, 40 * 60, /* network3 */
        256 * 6 * 28 * 28, 256 * 16 * 10 * 10, 256 * 120, 256 * 84,     /* lenet5 */
        1, 15, 16, 17, 1000, 4097};
    const float slopes[] = {0.25f, -0.1f};
    for (int act = 0; act < 4; act++) {
        for (size_t t = 0; t < NCASES(counts); t++) {
            for (int si = 0; si < (act == CNB_ACT_PRELU ? 2 : 1); si++) {
                size_t n = counts[t];
                float *x = tu_random(&rng, n, -3.0f, 3.0f), *dy = inputs(&rng, n, 0);
                float slope = slopes[si];
                float *y[2] = {host_floats(n), host_floats(n)}, *dx[2] = {host_floats(n),
                                                                         host_floats(n)};
                float ds[2] = {0, 0};
                tu_backend *bs[2] = {&nv, &od};
                for (int i = 0; i < 2; i++) {
                    devs m = {.b = bs[i]};
                    float *x_ = dv(&m, x, n), *dy_ = dv(&m, dy, n), *y_ = dv(&m, NULL, n),
                          *dx_ = dv(&m, NULL, n), *s_ = dv(&m, &slope, 1), *ds_ = dv(&m, NULL, 1);
                    check(bs[i], bs[i]->api->activation_forward(bs[i]->ctx, act, n, y_, x_, s_),
                          "activation_forward");
                    check(bs[i], bs[i]->api->activation_backward(bs[i]->ctx, act, n, dx_, ds_,
                                                                 dy_, x_, y_, s_),
                          "activation_backward");
                    tu_to_host(bs[i], y[i], y_, n * sizeof(float));
                    tu_to_host(bs[i], dx[i], dx_, n * sizeof(float));
                    if (act == CNB_ACT_PRELU) tu_to_host(bs[i], &ds[i], ds_, sizeof(float));
                    dv_free(&m);
                }
                char what[96];
                snprintf(what, sizeof what, "%s forward count %zu slope %g", act_name(act), n,
                         slope);
                tu_expect_close(what, y[1], y[0], n, TOL);
                snprintf(what, sizeof what, "%s backward count %zu slope %g", act_name(act), n,
                         slope);
                tu_expect_close(what, dx[1], dx[0], n, TOL);
                if (act == CNB_ACT_PRELU) {
                    snprintf(what, sizeof what, "prelu dslope count %zu slope %g", n, slope);
                    tu_expect_close(what, &ds[1], &ds[0], 1, TOL);
                }
                free(x), free(dy), free(y[0]), free(y[1]), free(dx[0]), free(dx[1]);
            }
        }
    }
    tu_close(&nv);
    tu_close(&od);
}

/* ---- softmax + cross-entropy ----------------------------------------------------------------- */

static void softmax_run(tu_backend *b, int n, int classes, const float *logits,
                        const int32_t *labels, float *probs, float *loss, int32_t *pred,
                        float *dlogits) {
    size_t nl = (size_t)n * classes;
    devs m = {.b = b};
    float *lg = dv(&m, logits, nl), *pr = dv(&m, NULL, nl), *ls = dv(&m, NULL, 1),
          *dl = dv(&m, NULL, nl);
    int32_t *lb = dv_bytes(&m, labels, n * sizeof(int32_t)), *pd = dv_bytes(&m, NULL, n * sizeof(int32_t));
    check(b, b->api->softmax_ce_forward(b->ctx, n, classes, pr, ls, pd, lg, lb),
          "softmax_ce_forward");
    check(b, b->api->softmax_ce_backward(b->ctx, n, classes, dl, pr, lb), "softmax_ce_backward");
    tu_to_host(b, probs, pr, nl * sizeof(float));
    tu_to_host(b, loss, ls, sizeof(float));
    tu_to_host(b, pred, pd, n * sizeof(int32_t));
    tu_to_host(b, dlogits, dl, nl * sizeof(float));
    dv_free(&m);
}

Test(onednn, softmax_ce) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 707);
    /* (n, classes, logit range): the models' batches, batch 1, odd shapes, one class, and
     * logits far beyond exp's range (stability: loss must stay finite and agree). */
    const struct { int n, classes; float range; } cases[] = {
        {64, 10, 5}, {100, 10, 5}, {40, 10, 5}, {256, 10, 5}, {1, 10, 5},
        {7, 3, 5},   {3, 1, 5},    {64, 10, 120}, {5, 37, 300}};
    for (size_t t = 0; t < NCASES(cases); t++) {
        int n = cases[t].n, k = cases[t].classes;
        size_t nl = (size_t)n * k;
        float *logits = tu_random(&rng, nl, -cases[t].range, cases[t].range);
        int32_t *labels = malloc(n * sizeof(int32_t));
        for (int i = 0; i < n; i++) labels[i] = (int32_t)cnb_rng_below(&rng, (uint32_t)k);
        float *probs[2] = {host_floats(nl), host_floats(nl)}, *dl[2] = {host_floats(nl),
                                                                        host_floats(nl)};
        float loss[2];
        int32_t *pred[2] = {malloc(n * sizeof(int32_t)), malloc(n * sizeof(int32_t))};
        softmax_run(&nv, n, k, logits, labels, probs[0], &loss[0], pred[0], dl[0]);
        softmax_run(&od, n, k, logits, labels, probs[1], &loss[1], pred[1], dl[1]);
        char what[96];
        snprintf(what, sizeof what, "softmax probs n%d classes%d range %g", n, k, cases[t].range);
        tu_expect_close(what, probs[1], probs[0], nl, TOL);
        snprintf(what, sizeof what, "softmax_ce loss n%d classes%d range %g", n, k,
                 cases[t].range);
        cr_expect(isfinite(loss[1]), "%s: not finite (%g)", what, loss[1]);
        /* The loss of a single class is exactly 0: the relative form cannot apply. */
        if (k == 1)
            cr_expect_eq(loss[1], 0.0f, "%s: expected 0, got %g", what, loss[1]);
        else
            tu_expect_close(what, &loss[1], &loss[0], 1, TOL);
        snprintf(what, sizeof what, "softmax_ce dlogits n%d classes%d range %g", n, k,
                 cases[t].range);
        tu_expect_close(what, dl[1], dl[0], nl, TOL);
        for (int i = 0; i < n; i++)
            cr_expect_eq(pred[1][i], pred[0][i], "pred n%d classes%d row %d: naive %d onednn %d",
                         n, k, i, pred[0][i], pred[1][i]);
        free(logits), free(labels), free(probs[0]), free(probs[1]), free(dl[0]), free(dl[1]);
        free(pred[0]), free(pred[1]);
    }
    tu_close(&nv);
    tu_close(&od);
}

Test(onednn, softmax_ce_pred_first_max_and_null_pred) {
    tu_backend od;
    open_onednn(&od, NULL, 2);
    devs m = {.b = &od};
    /* Row 0 ties at classes 1 and 3, row 1 is all equal: the first maximum wins. */
    const float logits[8] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    const int32_t labels[2] = {1, 2};
    float *lg = dv(&m, logits, 8), *pr = dv(&m, NULL, 8), *ls = dv(&m, NULL, 1);
    int32_t *lb = dv_bytes(&m, labels, sizeof labels), *pd = dv_bytes(&m, NULL, 2 * sizeof(int32_t));
    check(&od, od.api->softmax_ce_forward(od.ctx, 2, 4, pr, ls, pd, lg, lb), "softmax_ce_forward");
    int32_t pred[2];
    tu_to_host(&od, pred, pd, sizeof pred);
    cr_expect_eq(pred[0], 1, "row 0: expected the first maximum (1), got %d", pred[0]);
    cr_expect_eq(pred[1], 0, "row 1: expected the first maximum (0), got %d", pred[1]);
    /* pred may be NULL; the loss is still written: row 1 is uniform, so its loss is log 4. */
    check(&od, od.api->softmax_ce_forward(od.ctx, 2, 4, pr, ls, NULL, lg, lb),
          "softmax_ce_forward(pred NULL)");
    float loss;
    tu_to_host(&od, &loss, ls, sizeof loss);
    double lse0 = log(exp(0.5) + 2 * exp(2.0) + exp(-1.0));
    double want = ((lse0 - 2.0) + log(4.0)) / 2.0;
    cr_expect(fabs(loss - want) <= 1e-6 * want, "loss: expected %.9g, got %.9g", want, loss);
    dv_free(&m);
    tu_close(&od);
}

/* ---- optimizers ------------------------------------------------------------------------------ */

/* Five steps from the same state on both backends; params and state compared after each. */
Test(onednn, sgd_and_adam) {
    tu_backend od, nv;
    open_onednn(&od, NULL, 2);
    tu_open(&nv, "naive", 1);
    cnb_rng rng;
    cnb_rng_seed(&rng, 808);
    /* The parameter blocks of simplecnn, lenet5 (slope included) and cnn, a small and a single
     * value (the loops go parallel above 65536 values). */
    const size_t counts[] = {421642, 61707, 28938, 1000, 1};
    const cnb_sgd_desc sgds[] = {{0.01f, 0.9f, 0.0f}, {0.1f, 0.0f, 0.0f}, {0.05f, 0.9f, 1e-4f}};
    const cnb_adam_desc adams[] = {{0.001f, 0.9f, 0.999f, 1e-8f, 0.0f, 0},
                                   {0.01f, 0.8f, 0.99f, 1e-6f, 1e-3f, 0}};
    for (size_t t = 0; t < NCASES(counts); t++) {
        size_t n = counts[t];
        float *p0 = inputs(&rng, n, 0), *zero = calloc(n, sizeof(float));
        float *grads[5];
        for (int s = 0; s < 5; s++) grads[s] = inputs(&rng, n, 0);
        float *hp[2] = {host_floats(n), host_floats(n)}, *hs[2] = {host_floats(n), host_floats(n)},
              *hv[2] = {host_floats(n), host_floats(n)};
        tu_backend *bs[2] = {&nv, &od};
        for (int o = 0; o < (int)(NCASES(sgds) + NCASES(adams)); o++) {
            int is_adam = o >= (int)NCASES(sgds);
            devs m[2] = {{.b = bs[0]}, {.b = bs[1]}};
            float *p_[2], *s_[2], *v_[2], *g_[2];
            for (int i = 0; i < 2; i++) {
                p_[i] = dv(&m[i], p0, n), s_[i] = dv(&m[i], zero, n), v_[i] = dv(&m[i], zero, n);
                g_[i] = dv(&m[i], NULL, n);
            }
            for (int step = 1; step <= 5; step++) {
                for (int i = 0; i < 2; i++) {
                    tu_backend *b = bs[i];
                    check(b, b->api->upload(b->ctx, g_[i], grads[step - 1], n * sizeof(float)),
                          "upload");
                    if (is_adam) {
                        cnb_adam_desc a = adams[o - NCASES(sgds)];
                        a.step = step;
                        check(b, b->api->adam_step(b->ctx, &a, n, p_[i], s_[i], v_[i], g_[i]),
                              "adam_step");
                    } else {
                        check(b, b->api->sgd_step(b->ctx, &sgds[o], n, p_[i], s_[i], g_[i]),
                              "sgd_step");
                    }
                    tu_to_host(b, hp[i], p_[i], n * sizeof(float));
                    tu_to_host(b, hs[i], s_[i], n * sizeof(float));
                    tu_to_host(b, hv[i], v_[i], n * sizeof(float));
                }
                char what[96];
                snprintf(what, sizeof what, "%s #%d count %zu step %d param",
                         is_adam ? "adam" : "sgd", o, n, step);
                tu_expect_close(what, hp[1], hp[0], n, TOL);
                snprintf(what, sizeof what, "%s #%d count %zu step %d %s", is_adam ? "adam" : "sgd",
                         o, n, step, is_adam ? "m" : "velocity");
                if (is_adam || sgds[o].momentum != 0.0f) tu_expect_close(what, hs[1], hs[0], n, TOL);
                if (is_adam) {
                    snprintf(what, sizeof what, "adam #%d count %zu step %d v", o, n, step);
                    tu_expect_close(what, hv[1], hv[0], n, TOL);
                }
            }
            dv_free(&m[0]);
            dv_free(&m[1]);
        }
        free(p0), free(zero);
        for (int s = 0; s < 5; s++) free(grads[s]);
        for (int i = 0; i < 2; i++) free(hp[i]), free(hs[i]), free(hv[i]);
    }
    tu_close(&nv);
    tu_close(&od);
}

/* ---- validation ------------------------------------------------------------------------------ */

/* st must be INVALID_ARGUMENT and the message must contain needle. */
static void expect_invalid(tu_backend *b, cnb_status st, const char *what, const char *needle) {
    const char *msg = b->api->last_error(b->ctx);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "%s: expected invalid argument, got %s (%s)", what,
                 cnb_status_str(st), msg);
    cr_expect(strstr(msg, needle) != NULL, "%s: message \"%s\" does not mention \"%s\"", what,
              msg, needle);
}

Test(onednn, rejects_bad_descriptors) {
    tu_backend od;
    open_onednn(&od, NULL, 2);
    devs m = {.b = &od};
    float *buf = dv(&m, NULL, 1 << 16);
    int32_t labels[4] = {0, 1, 10, 2};
    int32_t *lb = dv_bytes(&m, labels, sizeof labels);

    cnb_conv_desc cd = conv_desc(&misc_convs[0]); /* 1x3x7x7 -> 1x4x7x7 */
    cd.q = 6;
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, buf, buf, buf, NULL), "conv p/q", "7x7");
    cd.q = 7;
    cd.p = 8;
    expect_invalid(&od, od.api->conv_backward_data(od.ctx, &cd, buf, buf, buf),
                   "conv_backward_data p", "expected 7x7");
    expect_invalid(&od, od.api->conv_backward_filter(od.ctx, &cd, buf, buf, buf),
                   "conv_backward_filter p", "expected 7x7");
    cd = conv_desc(&misc_convs[0]);
    cd.pad_w = -1;
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, buf, buf, buf, NULL), "conv pad",
                   "padding");
    cd = conv_desc(&misc_convs[0]);
    cd.stride_h = 0;
    expect_invalid(&od, od.api->conv_forward(od.ctx, &cd, buf, buf, buf, NULL), "conv stride",
                   "stride_h");
    cd = conv_desc(&misc_convs[0]);
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
    cd = conv_desc(&misc_convs[0]);
    check(&od, od.api->conv_forward(od.ctx, &cd, buf, buf + 4096, buf + 8192, NULL),
          "conv_forward after failures");
    dv_free(&m);
    tu_close(&od);
}

/* ---- info, threads, cache -------------------------------------------------------------------- */

typedef struct kv {
    char key[16][48];
    char val[16][256];
    int n;
} kv;

static void collect(void *user, const char *key, const char *value) {
    kv *k = user;
    if (k->n >= 16) return;
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
    open_onednn(&od, NULL, 1);
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
    open_onednn(&od, NULL, 2);
    cnb_rng rng;
    cnb_rng_seed(&rng, 909);
    cnb_conv_desc d = conv_desc(&model_convs[1]), d2 = conv_desc(&model_convs[3]);
    size_t nx = (size_t)d.n * d.c * d.h * d.w, nw = (size_t)d.k * d.c * d.r * d.s,
           ny = (size_t)d.n * d.k * d.p * d.q;
    size_t nx2 = (size_t)d2.n * d2.c * d2.h * d2.w, nw2 = (size_t)d2.k * d2.c * d2.r * d2.s,
           ny2 = (size_t)d2.n * d2.k * d2.p * d2.q;
    float *x = inputs(&rng, nx, 0), *w = inputs(&rng, nw, 0), *dy = inputs(&rng, ny, 0);
    float *x2 = inputs(&rng, nx2, 0), *w2 = inputs(&rng, nw2, 0);
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
    open_onednn(&od, NULL, 2);
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
            float *a = inputs(&rng, na, 1), *bm = inputs(&rng, nb, 1), *c0 = inputs(&rng, nc, 1);
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
