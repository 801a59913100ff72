/* test_blas.c — every kernel of the OpenBLAS backend against the naive oracle, both loaded
 * through the loader as the harness loads them: random inputs (never zeros) at many shapes —
 * batch 1, odd sizes, stride 2, padding, non-square images and filters, and every layer of the
 * five models — plus the exact-integer mode (DESIGN.md §4), GEMM transposes / alpha / beta /
 * leading dimensions, scratch reuse across growing and shrinking shapes, both convolution
 * layouts, thread counts 1 vs 2, info() and argument checks.
 *
 * If the blas backend was not built here, every test prints "[SKIP-ALL] reason" and skips. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compare.h"
#include "testutil.h"

/* Tolerance for random inputs: relative L2 error against the naive oracle, which sums in double
 * and rounds once. A float32 sum of K terms is off by ~sqrt(K) * 2^-24 relative for random
 * signs (OpenBLAS's blocked, multi-accumulator sums do better than one running sum); K runs
 * from 9 (a 3x3 tap sum) to 3,136 (fc1) and ~200,000 (lenet5 conv1's filter gradient, summed
 * over n*p*q). Measured here, the worst case is that filter gradient at 5.5e-7 and everything
 * else is below 4e-7 (tanh/sigmoid through the inline exp: ~1e-8 forward, ~5e-8 backward).
 * 1e-5 leaves a factor of ~20 of room, while any indexing, padding or transpose bug moves the
 * error to 1e-2 or more. */
#define TOL 1e-5

/* ---- plumbing ---------------------------------------------------------------------------- */

static void skip_all(const char *why) {
    printf("[SKIP-ALL] blas backend unavailable: %s\n", why);
    fflush(stdout);
    cr_skip_test("blas backend unavailable: %s", why);
}

/* Open the blas backend with `threads` and the convolution layout `algo` ("auto", "batched",
 * "per-image"; read by create() from CNB_BLAS_CONV). Skip the whole test if the backend was not
 * built here (CMake skips it without OpenBLAS); any other failure to open it is a failure. */
static void open_blas(tu_backend *b, int threads, const char *algo) {
    char why[CNB_ERR_LEN], path[4096];
    snprintf(path, sizeof path, "%s/libcnb_blas.so", cnb_backend_dir());
    if (access(path, F_OK) != 0) skip_all("not built here (no libcnb_blas.so in the backend "
                                          "directory; CMake skips it without OpenBLAS)");
    setenv("CNB_BLAS_CONV", algo, 1);
    int rc = tu_try_open(b, "blas", threads, why, sizeof why);
    unsetenv("CNB_BLAS_CONV");
    if (rc != 0) cr_assert_fail("%s exists but does not open: %s", path, why);
}

/* The three layouts a convolution can take; every convolution check runs all of them. */
#define NALGO 3
static const char *const algos[NALGO] = {"auto", "batched", "per-image"};

typedef struct pair {
    tu_backend ref;       /* naive */
    tu_backend blas[NALGO];
} pair;

static void pair_open(pair *p) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < NALGO; i++) open_blas(&p->blas[i], 2, algos[i]);
    tu_open(&p->ref, "naive", 1);
}

static void pair_close(pair *p) {
    for (int i = 0; i < NALGO; i++) tu_close(&p->blas[i]);
    tu_close(&p->ref);
}

static float *host_floats(size_t count) {
    float *p = malloc((count ? count : 1) * sizeof(float));
    cr_assert_not_null(p);
    return p;
}

/* Random floats in [-1, 1) without exact zeros (a zero input hides a missing term). */
static float *rand_nonzero(cnb_rng *rng, size_t count) {
    float *p = tu_random(rng, count, -1.0f, 1.0f);
    for (size_t i = 0; i < count; i++)
        if (p[i] == 0.0f) p[i] = 0.5f;
    return p;
}

/* Exact mode: integers in [-3, 3], 10% zeros. Every partial sum of products is an integer of
 * magnitude <= 9 * terms; terms stay below 2^24 / 9 ~ 1.8 million in every check here, so each
 * partial sum is exact in float32 whatever the summation order, and results must be identical. */
static float *rand_ints(cnb_rng *rng, size_t count) {
    return tu_small_ints(rng, count, -3, 3, 0.1);
}

static float *gen(cnb_rng *rng, size_t count, int exact) {
    return exact ? rand_ints(rng, count) : rand_nonzero(rng, count);
}

/* Run on device: copy a host array to backend b, and back. */
static float *up(tu_backend *b, const float *host, size_t count) {
    return tu_dev_from(b, host, count);
}
static void down(tu_backend *b, float *host, const float *dev, size_t count) {
    tu_to_host(b, host, dev, count * sizeof(float));
}

/* A reference output proves little if it is mostly zeros (DESIGN.md §4, benchdnn's MISTRUSTED);
 * the inputs of every check below are drawn so that it is not. */
static void expect_trusted(const char *what, const float *ref, size_t count) {
    cnb_compare_stats s;
    cnb_compare(ref, ref, count, 0.0, &s);
    cr_expect(!cnb_compare_mistrusted(&s), "%s: reference output is %.0f%% zeros (MISTRUSTED)",
              what, 100.0 * s.zero_share);
}

static void compare_out(const char *what, const float *got, const float *ref, size_t count,
                        int exact) {
    if (exact) tu_expect_equal(what, got, ref, count);
    else tu_expect_close(what, got, ref, count, TOL);
}

/* ---- convolution ------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int n, c, h, w, k, r, s, sh, sw, ph, pw;
} conv_case;

static cnb_conv_desc conv_desc(const conv_case *cc) {
    cnb_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .r = cc->r,
                       .s = cc->s, .stride_h = cc->sh, .stride_w = cc->sw, .pad_h = cc->ph,
                       .pad_w = cc->pw};
    d.p = (d.h + 2 * d.pad_h - d.r) / d.stride_h + 1;
    d.q = (d.w + 2 * d.pad_w - d.s) / d.stride_w + 1;
    return d;
}

/* Whether every filter tap reads a real pixel for some output; if not, those taps' weight
 * gradients are exactly zero and the zero-share rule does not apply to dweight. */
static int every_tap_sees_the_image(const cnb_conv_desc *d) {
    for (int a = 0; a < d->r; a++) {
        int seen = 0;
        for (int op = 0; op < d->p; op++) {
            int ih = op * d->stride_h - d->pad_h + a;
            seen |= ih >= 0 && ih < d->h;
        }
        if (!seen) return 0;
    }
    for (int b = 0; b < d->s; b++) {
        int seen = 0;
        for (int oq = 0; oq < d->q; oq++) {
            int iw = oq * d->stride_w - d->pad_w + b;
            seen |= iw >= 0 && iw < d->w;
        }
        if (!seen) return 0;
    }
    return 1;
}

/* Forward (with and without bias), backward-data and backward-filter of one shape: naive once,
 * then every blas layout, compared to it. */
static void check_conv(pair *pp, const conv_case *cc, int exact, uint64_t seed) {
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    cnb_conv_desc d = conv_desc(cc);
    const size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.k * d.p * d.q,
                 nw = (size_t)d.k * d.c * d.r * d.s;
    float *x = gen(&rng, nx, exact), *w = gen(&rng, nw, exact), *bias = gen(&rng, d.k, exact);
    float *dy = gen(&rng, ny, exact);
    float *ref_y = host_floats(ny), *ref_y0 = host_floats(ny), *ref_dx = host_floats(nx),
          *ref_dw = host_floats(nw), *got = host_floats(nx > ny ? (nx > nw ? nx : nw)
                                                                : (ny > nw ? ny : nw));
    char what[256];

    /* the oracle */
    tu_backend *r = &pp->ref;
    float *rx = up(r, x, nx), *rw = up(r, w, nw), *rb = up(r, bias, d.k), *rdy = up(r, dy, ny);
    float *ry = up(r, NULL, ny), *rdx = up(r, NULL, nx), *rdw = up(r, NULL, nw);
    tu_check_status(r, r->api->conv_forward(r->ctx, &d, ry, rx, rw, rb), "conv_forward");
    down(r, ref_y, ry, ny);
    tu_check_status(r, r->api->conv_forward(r->ctx, &d, ry, rx, rw, NULL), "conv_forward");
    down(r, ref_y0, ry, ny);
    tu_check_status(r, r->api->conv_backward_data(r->ctx, &d, rdx, rdy, rw),
                    "conv_backward_data");
    down(r, ref_dx, rdx, nx);
    tu_check_status(r, r->api->conv_backward_filter(r->ctx, &d, rdw, rdy, rx),
                    "conv_backward_filter");
    down(r, ref_dw, rdw, nw);
    float *rbufs[] = {rx, rw, rb, rdy, ry, rdx, rdw};
    for (size_t i = 0; i < sizeof rbufs / sizeof rbufs[0]; i++) tu_dev_free(r, rbufs[i]);

    /* y with bias and dweight are dense for every shape; dx and y without bias legitimately
     * hold zeros where stride skips pixels or padding meets a 1x1 filter. */
    snprintf(what, sizeof what, "%s: conv_forward reference", cc->name);
    expect_trusted(what, ref_y, ny);
    snprintf(what, sizeof what, "%s: conv_backward_filter reference", cc->name);
    if (every_tap_sees_the_image(&d)) expect_trusted(what, ref_dw, nw);

    for (int a = 0; a < NALGO; a++) {
        tu_backend *b = &pp->blas[a];
        float *bx = up(b, x, nx), *bw = up(b, w, nw), *bb = up(b, bias, d.k),
              *bdy = up(b, dy, ny);
        /* Outputs start as NaN: a value the kernel fails to write shows up. */
        float *nan_fill = host_floats(nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw));
        for (size_t i = 0; i < (nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)); i++)
            nan_fill[i] = NAN;
        float *by = up(b, nan_fill, ny), *bdx = up(b, nan_fill, nx), *bdw = up(b, nan_fill, nw);
        free(nan_fill);

        tu_check_status(b, b->api->conv_forward(b->ctx, &d, by, bx, bw, bb), "conv_forward");
        down(b, got, by, ny);
        snprintf(what, sizeof what, "%s [%s%s]: conv_forward with bias", cc->name, algos[a],
                 exact ? ", exact" : "");
        compare_out(what, got, ref_y, ny, exact);

        tu_check_status(b, b->api->conv_forward(b->ctx, &d, by, bx, bw, NULL), "conv_forward");
        down(b, got, by, ny);
        snprintf(what, sizeof what, "%s [%s%s]: conv_forward without bias", cc->name, algos[a],
                 exact ? ", exact" : "");
        compare_out(what, got, ref_y0, ny, exact);

        tu_check_status(b, b->api->conv_backward_data(b->ctx, &d, bdx, bdy, bw),
                        "conv_backward_data");
        down(b, got, bdx, nx);
        snprintf(what, sizeof what, "%s [%s%s]: conv_backward_data", cc->name, algos[a],
                 exact ? ", exact" : "");
        compare_out(what, got, ref_dx, nx, exact);

        tu_check_status(b, b->api->conv_backward_filter(b->ctx, &d, bdw, bdy, bx),
                        "conv_backward_filter");
        down(b, got, bdw, nw);
        snprintf(what, sizeof what, "%s [%s%s]: conv_backward_filter", cc->name, algos[a],
                 exact ? ", exact" : "");
        compare_out(what, got, ref_dw, nw, exact);

        float *bbufs[] = {bx, bw, bb, bdy, by, bdx, bdw};
        for (size_t i = 0; i < sizeof bbufs / sizeof bbufs[0]; i++) tu_dev_free(b, bbufs[i]);
    }
    free(x), free(w), free(bias), free(dy), free(ref_y), free(ref_y0), free(ref_dx);
    free(ref_dw), free(got);
}

/* Every convolution layer of the five models at its training batch (DESIGN.md §7). */
static const conv_case model_convs[] = {
    /* name                         n   c   h   w   k  r  s sh sw ph pw */
    {"simplecnn conv1 1->32 3x3 p1", 64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1},
    {"simplecnn conv2 32->64 3x3 p1", 64, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1},
    {"cnn conv1 1->16 5x5 p2", 64, 1, 28, 28, 16, 5, 5, 1, 1, 2, 2},
    {"cnn conv2 16->32 5x5 p2", 64, 16, 14, 14, 32, 5, 5, 1, 1, 2, 2},
    {"network conv1 1->6 5x5", 100, 1, 28, 28, 6, 5, 5, 1, 1, 0, 0},
    {"network conv2 6->12 5x5", 100, 6, 12, 12, 12, 5, 5, 1, 1, 0, 0},
    {"network3 conv1 1->6 5x5", 40, 1, 28, 28, 6, 5, 5, 1, 1, 0, 0},
    {"network3 conv2 6->12 5x5", 40, 6, 12, 12, 12, 5, 5, 1, 1, 0, 0},
    {"network3 conv3 12->24 2x2 p1", 40, 12, 4, 4, 24, 2, 2, 1, 1, 1, 1},
    {"lenet5 conv1 1->6 5x5 p2", 256, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2},
    {"lenet5 conv2 6->16 5x5", 256, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0},
};

/* Shapes that exercise the index arithmetic: batch 1, odd and non-square sizes, stride 2 (also
 * with sizes the stride does not divide), padding larger on one axis, non-square filters,
 * 1x1 (no im2col needed), a filter as large as the padded image, and stride > filter. */
static const conv_case edge_convs[] = {
    /* name                         n  c   h   w   k  r  s sh sw ph pw */
    {"batch 1 3x3 p1", 1, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1},
    {"odd sizes 5x3 filter", 3, 5, 13, 11, 7, 5, 3, 1, 1, 0, 0},
    {"non-square image 17x9", 2, 3, 17, 9, 5, 3, 3, 1, 1, 1, 1},
    {"stride 2 p1", 2, 4, 15, 15, 6, 3, 3, 2, 2, 1, 1},
    {"stride 2 even 16x16", 3, 2, 16, 16, 3, 3, 3, 2, 2, 0, 0},
    {"stride (2,3) pad (1,2)", 2, 3, 14, 19, 4, 3, 4, 2, 3, 1, 2},
    {"1x4 filter pad (0,2)", 2, 3, 7, 12, 5, 1, 4, 1, 1, 0, 2},
    {"4x1 filter stride (3,1)", 2, 3, 13, 6, 5, 4, 1, 3, 1, 1, 0},
    {"1x1 pointwise", 3, 8, 7, 9, 5, 1, 1, 1, 1, 0, 0},
    {"1x1 stride 2", 2, 6, 9, 9, 4, 1, 1, 2, 2, 0, 0},
    {"1x1 pad 1", 2, 3, 5, 4, 2, 1, 1, 1, 1, 1, 1},
    {"filter = image", 2, 2, 5, 6, 3, 5, 6, 1, 1, 0, 0},
    {"filter = image + 1, pad 1", 2, 2, 5, 6, 3, 6, 7, 1, 1, 1, 1},
    {"pad 2 on 3x3 image", 2, 2, 3, 3, 3, 3, 3, 1, 1, 2, 2},
    {"stride 4 > filter 2", 2, 3, 11, 10, 3, 2, 2, 4, 4, 0, 1},
    {"one output pixel", 3, 4, 5, 5, 6, 5, 5, 1, 1, 0, 0},
    /* "same width" (stride 1, q == w) takes a contiguous-run im2col; these vary what it trims */
    {"same width, 5x3 filter pad (0,1)", 2, 3, 9, 7, 4, 5, 3, 1, 1, 0, 1},
    {"same width, one-column image", 2, 2, 6, 1, 3, 3, 3, 1, 1, 1, 1},
    {"same width, pad_h 3 > filter", 2, 2, 4, 5, 3, 3, 3, 1, 1, 3, 1},
    {"same width, 7x7 pad 3 on 5x5", 2, 2, 5, 5, 3, 7, 7, 1, 1, 3, 3},
};

Test(blas_conv, model_layers) {
    pair p;
    pair_open(&p);
    for (size_t i = 0; i < sizeof model_convs / sizeof model_convs[0]; i++)
        check_conv(&p, &model_convs[i], 0, 100 + i);
    pair_close(&p);
}

Test(blas_conv, edge_shapes) {
    pair p;
    pair_open(&p);
    for (size_t i = 0; i < sizeof edge_convs / sizeof edge_convs[0]; i++)
        check_conv(&p, &edge_convs[i], 0, 200 + i);
    pair_close(&p);
}

Test(blas_conv, exact_integers_bit_for_bit) {
    pair p;
    pair_open(&p);
    for (size_t i = 0; i < sizeof model_convs / sizeof model_convs[0]; i++)
        check_conv(&p, &model_convs[i], 1, 300 + i);
    for (size_t i = 0; i < sizeof edge_convs / sizeof edge_convs[0]; i++)
        check_conv(&p, &edge_convs[i], 1, 400 + i);
    pair_close(&p);
}

/* The batched layout splits a batch into chunks of about 2 MB of columns (9 images at
 * simplecnn conv2's shape, so 20 images take 9 + 9 + 2, a partial chunk last, and the filter
 * gradient accumulates over them); an image whose columns alone exceed a chunk (1.6 M floats
 * here) goes one image per chunk. The model layers above split too; these pin the edge cases. */
Test(blas_conv, batch_split_into_chunks) {
    pair p;
    pair_open(&p);
    conv_case partial = {"chunks 9+9+2: 32->64 3x3 p1 14x14", 20, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1};
    conv_case big = {"one image per chunk: 16->4 5x5 p2 64x64", 3, 16, 64, 64, 4, 5, 5, 1, 1, 2, 2};
    check_conv(&p, &partial, 0, 500);
    check_conv(&p, &partial, 1, 501);
    check_conv(&p, &big, 0, 502);
    check_conv(&p, &big, 1, 503);
    pair_close(&p);
}

/* Scratch buffers grow when a larger shape arrives and are reused for smaller ones; a stale or
 * too-small buffer would show up as a mismatch in one of these, run in this order on the same
 * contexts. */
Test(blas_conv, scratch_reuse_growing_then_shrinking) {
    pair p;
    pair_open(&p);
    const conv_case seq[] = {
        {"small first", 2, 2, 6, 6, 3, 3, 3, 1, 1, 1, 1},
        {"grow", 8, 16, 20, 20, 12, 3, 3, 1, 1, 1, 1},
        {"grow more", 16, 24, 18, 18, 20, 5, 5, 1, 1, 2, 2},
        {"shrink", 3, 4, 9, 7, 5, 3, 3, 2, 1, 0, 1},
        {"grow again, other aspect", 4, 8, 11, 31, 6, 3, 5, 1, 2, 1, 2},
        {"tiny", 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) check_conv(&p, &seq[i], 0, 600 + i);
    pair_close(&p);
}

/* ---- corr2d ------------------------------------------------------------------------------ */

Test(blas_corr2d, seed_vector_and_random) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    /* DESIGN.md §4's test vector, exactly. */
    const float X[16] = {0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6};
    const float K[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const float want[4] = {96, 132, 132, 168};
    float *bx = up(&b, X, 16), *bk = up(&b, K, 9), *by = up(&b, NULL, 4), got[4];
    tu_check_status(&b, b.api->corr2d(b.ctx, by, bx, bk, 4, 4, 3, 3), "corr2d");
    down(&b, got, by, 4);
    tu_expect_equal("corr2d seed vector", got, want, 4);
    tu_dev_free(&b, bx), tu_dev_free(&b, bk), tu_dev_free(&b, by);

    const int shapes[][4] = {{28, 28, 3, 3}, {17, 9, 5, 2}, {5, 31, 1, 7}, {6, 6, 6, 6}};
    cnb_rng rng;
    cnb_rng_seed(&rng, 700);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int h = shapes[i][0], w = shapes[i][1], kh = shapes[i][2], kw = shapes[i][3];
        size_t ny = (size_t)(h - kh + 1) * (w - kw + 1);
        float *x = rand_nonzero(&rng, (size_t)h * w), *k = rand_nonzero(&rng, (size_t)kh * kw);
        float *ref = host_floats(ny), *out = host_floats(ny);
        float *rx = up(&r, x, (size_t)h * w), *rk = up(&r, k, (size_t)kh * kw),
              *ry = up(&r, NULL, ny);
        tu_check_status(&r, r.api->corr2d(r.ctx, ry, rx, rk, h, w, kh, kw), "corr2d");
        down(&r, ref, ry, ny);
        float *bx2 = up(&b, x, (size_t)h * w), *bk2 = up(&b, k, (size_t)kh * kw),
              *by2 = up(&b, NULL, ny);
        tu_check_status(&b, b.api->corr2d(b.ctx, by2, bx2, bk2, h, w, kh, kw), "corr2d");
        down(&b, out, by2, ny);
        char what[128];
        snprintf(what, sizeof what, "corr2d %dx%d * %dx%d", h, w, kh, kw);
        tu_expect_close(what, out, ref, ny, TOL);
        tu_dev_free(&r, rx), tu_dev_free(&r, rk), tu_dev_free(&r, ry);
        tu_dev_free(&b, bx2), tu_dev_free(&b, bk2), tu_dev_free(&b, by2);
        free(x), free(k), free(ref), free(out);
    }
    tu_close(&b);
    tu_close(&r);
}

/* ---- bias -------------------------------------------------------------------------------- */

Test(blas_bias, forward_and_backward) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    /* (n, c, hw): conv layers of the models, linear layers (hw = 1), odd sizes */
    const int shapes[][3] = {{64, 32, 784}, {64, 64, 196}, {64, 128, 1}, {64, 10, 1},
                             {1, 3, 5},     {7, 300, 1},   {1000, 10, 1}, {3, 5, 17}};
    cnb_rng rng;
    cnb_rng_seed(&rng, 800);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int n = shapes[i][0], c = shapes[i][1], hw = shapes[i][2];
        size_t cnt = (size_t)n * c * hw;
        for (int exact = 0; exact < 2; exact++) {
            float *y = gen(&rng, cnt, exact), *bias = gen(&rng, c, exact);
            float *ref = host_floats(cnt), *out = host_floats(cnt);
            float *ry = up(&r, y, cnt), *rb = up(&r, bias, c), *by = up(&b, y, cnt),
                  *bb = up(&b, bias, c);
            char what[128];
            tu_check_status(&r, r.api->bias_forward(r.ctx, ry, rb, n, c, hw), "bias_forward");
            tu_check_status(&b, b.api->bias_forward(b.ctx, by, bb, n, c, hw), "bias_forward");
            down(&r, ref, ry, cnt);
            down(&b, out, by, cnt);
            snprintf(what, sizeof what, "bias_forward (%d,%d,%d)%s", n, c, hw,
                     exact ? " exact" : "");
            compare_out(what, out, ref, cnt, 1); /* one float add per value: always exact */
            tu_check_status(&r, r.api->bias_backward(r.ctx, rb, ry, n, c, hw), "bias_backward");
            tu_check_status(&b, b.api->bias_backward(b.ctx, bb, by, n, c, hw), "bias_backward");
            down(&r, ref, rb, c);
            down(&b, out, bb, c);
            snprintf(what, sizeof what, "bias_backward (%d,%d,%d)%s", n, c, hw,
                     exact ? " exact" : "");
            compare_out(what, out, ref, c, exact);
            tu_dev_free(&r, ry), tu_dev_free(&r, rb), tu_dev_free(&b, by), tu_dev_free(&b, bb);
            free(y), free(bias), free(ref), free(out);
        }
    }
    tu_close(&b);
    tu_close(&r);
}

/* ---- pooling ----------------------------------------------------------------------------- */

typedef struct pool_case {
    const char *name;
    int mode, n, c, h, w, kh, kw, sh, sw, ph, pw;
} pool_case;

static const pool_case pool_cases[] = {
    /* name                        mode          n   c   h   w kh kw sh sw ph pw */
    {"simplecnn pool1", CNB_POOL_MAX, 64, 32, 28, 28, 2, 2, 2, 2, 0, 0},
    {"simplecnn pool2", CNB_POOL_MAX, 64, 64, 14, 14, 2, 2, 2, 2, 0, 0},
    {"cnn pool1", CNB_POOL_MAX, 64, 16, 28, 28, 2, 2, 2, 2, 0, 0},
    {"cnn pool2", CNB_POOL_MAX, 64, 32, 14, 14, 2, 2, 2, 2, 0, 0},
    {"network pool1", CNB_POOL_MAX, 100, 6, 24, 24, 2, 2, 2, 2, 0, 0},
    {"network pool2", CNB_POOL_MAX, 100, 12, 8, 8, 2, 2, 2, 2, 0, 0},
    {"network3 pool3 (odd 5x5)", CNB_POOL_MAX, 40, 24, 5, 5, 2, 2, 2, 2, 0, 0},
    {"lenet5 avgpool1", CNB_POOL_AVG, 256, 6, 28, 28, 2, 2, 2, 2, 0, 0},
    {"lenet5 avgpool2", CNB_POOL_AVG, 256, 16, 10, 10, 2, 2, 2, 2, 0, 0},
    {"max batch 1 odd 7x9", CNB_POOL_MAX, 1, 3, 7, 9, 2, 2, 2, 2, 0, 0},
    {"max 3x3 s2 overlap", CNB_POOL_MAX, 2, 3, 11, 12, 3, 3, 2, 2, 0, 0},
    {"max 3x3 s1 p1", CNB_POOL_MAX, 2, 3, 8, 7, 3, 3, 1, 1, 1, 1},
    {"max 3x2 s(2,1) p(1,0)", CNB_POOL_MAX, 3, 2, 9, 6, 3, 2, 2, 1, 1, 0},
    {"max 2x2 s1", CNB_POOL_MAX, 2, 4, 6, 5, 2, 2, 1, 1, 0, 0},
    {"avg 3x3 s2 p1", CNB_POOL_AVG, 2, 3, 9, 10, 3, 3, 2, 2, 1, 1},
    {"avg 2x3 s(1,2) p(1,1)", CNB_POOL_AVG, 2, 3, 7, 8, 2, 3, 1, 2, 1, 1},
    {"avg odd 5x5 floor", CNB_POOL_AVG, 3, 2, 5, 5, 2, 2, 2, 2, 0, 0},
};

/* Forward and backward of one pooling shape. Exact mode uses integers in [-3, 3], which makes
 * ties in most max windows: the first maximum must win in both backends, so forward and the
 * backward scatter match bit for bit. */
static void check_pool(tu_backend *b, tu_backend *r, const pool_case *pc, int exact,
                       uint64_t seed) {
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    cnb_pool_desc d = {.mode = pc->mode, .n = pc->n, .c = pc->c, .h = pc->h, .w = pc->w,
                       .kh = pc->kh, .kw = pc->kw, .stride_h = pc->sh, .stride_w = pc->sw,
                       .pad_h = pc->ph, .pad_w = pc->pw};
    d.p = (d.h + 2 * d.pad_h - d.kh) / d.stride_h + 1;
    d.q = (d.w + 2 * d.pad_w - d.kw) / d.stride_w + 1;
    const size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.c * d.p * d.q;
    float *x = gen(&rng, nx, exact), *dy = gen(&rng, ny, exact);
    float *ref = host_floats(nx), *out = host_floats(nx);
    size_t wsr = 0, wsb = 0;
    tu_check_status(r, r->api->pool_workspace_size(r->ctx, &d, &wsr), "pool_workspace_size");
    tu_check_status(b, b->api->pool_workspace_size(b->ctx, &d, &wsb), "pool_workspace_size");
    if (d.mode == CNB_POOL_MAX)
        cr_expect_geq(wsb, ny * sizeof(int32_t), "%s: blas max-pool workspace %zu < %zu bytes",
                      pc->name, wsb, ny * sizeof(int32_t));
    float *rx = up(r, x, nx), *rdy = up(r, dy, ny), *ry = up(r, NULL, ny), *rdx = up(r, NULL, nx);
    void *rws = wsr ? tu_dev_bytes(r, NULL, wsr) : NULL;
    float *bx = up(b, x, nx), *bdy = up(b, dy, ny), *by = up(b, NULL, ny), *bdx = up(b, NULL, nx);
    void *bws = wsb ? tu_dev_bytes(b, NULL, wsb) : NULL;
    char what[160];

    tu_check_status(r, r->api->pool_forward(r->ctx, &d, ry, rx, rws), "pool_forward");
    tu_check_status(b, b->api->pool_forward(b->ctx, &d, by, bx, bws), "pool_forward");
    down(r, ref, ry, ny);
    down(b, out, by, ny);
    snprintf(what, sizeof what, "%s: pool_forward%s", pc->name, exact ? " exact" : "");
    /* Max pooling only selects: it is exact with any inputs. Avg pooling divides. */
    compare_out(what, out, ref, ny, exact || d.mode == CNB_POOL_MAX);
    if (!exact) expect_trusted(what, ref, ny);

    tu_check_status(r, r->api->pool_backward(r->ctx, &d, rdx, rdy, rx, ry, rws), "pool_backward");
    tu_check_status(b, b->api->pool_backward(b->ctx, &d, bdx, bdy, bx, by, bws), "pool_backward");
    down(r, ref, rdx, nx);
    down(b, out, bdx, nx);
    snprintf(what, sizeof what, "%s: pool_backward%s", pc->name, exact ? " exact" : "");
    /* Max backward routes each dy to one cell: exact unless overlapping windows add. (Its dx is
     * mostly zeros by nature, so the zero-share rule does not apply.) */
    int no_overlap = d.stride_h >= d.kh && d.stride_w >= d.kw;
    compare_out(what, out, ref, nx, exact || (d.mode == CNB_POOL_MAX && no_overlap));

    tu_dev_free(r, rx), tu_dev_free(r, rdy), tu_dev_free(r, ry), tu_dev_free(r, rdx);
    tu_dev_free(b, bx), tu_dev_free(b, bdy), tu_dev_free(b, by), tu_dev_free(b, bdx);
    if (rws) tu_dev_free(r, rws);
    if (bws) tu_dev_free(b, bws);
    free(x), free(dy), free(ref), free(out);
}

Test(blas_pool, random_inputs) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++)
        check_pool(&b, &r, &pool_cases[i], 0, 900 + i);
    tu_close(&b);
    tu_close(&r);
}

Test(blas_pool, exact_integers_with_ties) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++)
        check_pool(&b, &r, &pool_cases[i], 1, 1000 + i);
    tu_close(&b);
    tu_close(&r);
}

/* A hand case for the tie rule, independent of the oracle: in each 2x2 window the first
 * maximum in row-major order must be selected, and backward must route dy there. */
Test(blas_pool, ties_pick_first_maximum) {
    tu_backend b;
    open_blas(&b, 1, "auto");
    cnb_pool_desc d = {CNB_POOL_MAX, 1, 1, 2, 4, 2, 2, 2, 2, 0, 0, 1, 2};
    const float x[8] = {5, 5, 1, 2, /* window 0: 5 5 / 3 5 -> index 0 */
                        3, 5, 2, 2}; /* window 1: 1 2 / 2 2 -> index 3 (row 0, col 3) */
    const float dy[2] = {10, 20};
    const float want_y[2] = {5, 2}, want_dx[8] = {10, 0, 0, 20, 0, 0, 0, 0};
    size_t ws = 0;
    tu_check_status(&b, b.api->pool_workspace_size(b.ctx, &d, &ws), "pool_workspace_size");
    void *bws = tu_dev_bytes(&b, NULL, ws);
    float *bx = up(&b, x, 8), *by = up(&b, NULL, 2), *bdy = up(&b, dy, 2), *bdx = up(&b, NULL, 8);
    float got[8];
    tu_check_status(&b, b.api->pool_forward(b.ctx, &d, by, bx, bws), "pool_forward");
    down(&b, got, by, 2);
    tu_expect_equal("max-pool ties: y", got, want_y, 2);
    tu_check_status(&b, b.api->pool_backward(b.ctx, &d, bdx, bdy, bx, by, bws), "pool_backward");
    down(&b, got, bdx, 8);
    tu_expect_equal("max-pool ties: dx", got, want_dx, 8);
    tu_dev_free(&b, bws), tu_dev_free(&b, bx), tu_dev_free(&b, by), tu_dev_free(&b, bdy);
    tu_dev_free(&b, bdx);
    tu_close(&b);
}

/* ---- gemm / linear layers ---------------------------------------------------------------- */

/* One GEMM with stored matrices padded to lda/ldb/ldc columns. The padding of A and B holds NaN
 * (a kernel that reads it poisons C), and C's padding holds a sentinel that must survive. With
 * beta == 0, C starts as NaN: BLAS semantics say it is not read. */
static void check_gemm(tu_backend *b, tu_backend *r, int ta, int tb, int m, int n, int k,
                       float alpha, float beta, int pad, int exact, uint64_t seed) {
    cnb_rng rng;
    cnb_rng_seed(&rng, seed);
    const int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    const int lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
    const size_t na = (size_t)arows * lda, nb = (size_t)brows * ldb, nc = (size_t)m * ldc;
    float *a = gen(&rng, na, exact), *bm = gen(&rng, nb, exact), *c = gen(&rng, nc, exact);
    for (int i = 0; i < arows; i++)
        for (int j = acols; j < lda; j++) a[(size_t)i * lda + j] = NAN;
    for (int i = 0; i < brows; i++)
        for (int j = bcols; j < ldb; j++) bm[(size_t)i * ldb + j] = NAN;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++)
            if (j >= n) c[(size_t)i * ldc + j] = 12345.0f;
            else if (beta == 0.0f) c[(size_t)i * ldc + j] = NAN;
    float *ref = host_floats(nc), *out = host_floats(nc);
    float *ra = up(r, a, na), *rb = up(r, bm, nb), *rc = up(r, c, nc);
    float *ba = up(b, a, na), *bb = up(b, bm, nb), *bc = up(b, c, nc);
    tu_check_status(r, r->api->gemm(r->ctx, ta, tb, m, n, k, alpha, ra, lda, rb, ldb, beta, rc,
                                    ldc), "gemm");
    tu_check_status(b, b->api->gemm(b->ctx, ta, tb, m, n, k, alpha, ba, lda, bb, ldb, beta, bc,
                                    ldc), "gemm");
    down(r, ref, rc, nc);
    down(b, out, bc, nc);
    char what[160];
    snprintf(what, sizeof what, "gemm %c%c m=%d n=%d k=%d alpha=%g beta=%g pad=%d%s",
             ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, beta, pad, exact ? " exact" : "");
    compare_out(what, out, ref, nc, exact);
    size_t kept = 0;
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++) kept += out[(size_t)i * ldc + j] == 12345.0f;
    cr_expect_eq(kept, (size_t)m * pad, "%s: C's padding columns were written", what);
    tu_dev_free(r, ra), tu_dev_free(r, rb), tu_dev_free(r, rc);
    tu_dev_free(b, ba), tu_dev_free(b, bb), tu_dev_free(b, bc);
    free(a), free(bm), free(c), free(ref), free(out);
}

Test(blas_gemm, transposes_alpha_beta_leading_dimensions) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    const float ab[][2] = {{1.0f, 0.0f}, {0.75f, 0.5f}, {-2.0f, 1.0f}};
    const int dims[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 17, 29}, {64, 33, 100}, {3, 200, 1}};
    uint64_t seed = 1100;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
                for (size_t j = 0; j < sizeof ab / sizeof ab[0]; j++)
                    for (int pad = 0; pad <= 3; pad += 3)
                        check_gemm(&b, &r, ta, tb, dims[i][0], dims[i][1], dims[i][2],
                                   ab[j][0], ab[j][1], pad, 0, seed++);
    tu_close(&b);
    tu_close(&r);
}

/* Every linear layer of the five models, as the harness runs it: forward y = x w^T
 * (gemm N,T), weight gradient dw = dy^T x (T,N), input gradient dx = dy w (N,N); also in exact
 * mode, bit for bit. */
Test(blas_gemm, model_linear_layers) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    const int layers[][3] = {/* batch, in, out */
                             {64, 3136, 128}, {64, 128, 10},  {64, 1568, 10}, {100, 192, 120},
                             {100, 120, 60},  {100, 60, 10},  {40, 96, 120},  {40, 120, 60},
                             {40, 60, 10},    {256, 400, 120}, {256, 120, 84}, {256, 84, 10},
                             {1000, 3136, 128}, {1, 3136, 128}};
    uint64_t seed = 1200;
    for (int exact = 0; exact < 2; exact++) {
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
            int nb = layers[i][0], in = layers[i][1], out = layers[i][2];
            check_gemm(&b, &r, 0, 1, nb, out, in, 1.0f, 0.0f, 0, exact, seed++); /* forward */
            check_gemm(&b, &r, 1, 0, out, in, nb, 1.0f, 0.0f, 0, exact, seed++); /* dW */
            check_gemm(&b, &r, 0, 0, nb, in, out, 1.0f, 0.0f, 0, exact, seed++); /* dX */
        }
    }
    tu_close(&b);
    tu_close(&r);
}

/* ---- activations ------------------------------------------------------------------------- */

Test(blas_activation, forward_and_backward) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    const int acts[] = {CNB_ACT_RELU, CNB_ACT_TANH, CNB_ACT_SIGMOID, CNB_ACT_PRELU};
    const char *names[] = {"relu", "tanh", "sigmoid", "prelu"};
    /* The layers' sizes (relu1 of simplecnn, prelu of lenet5, tanh of lenet5), an odd count
     * that leaves a remainder after any vector width, and 1. */
    const size_t counts[] = {64 * 32 * 784, 256 * 6 * 784, 256 * 16 * 100, 1001, 1};
    cnb_rng rng;
    cnb_rng_seed(&rng, 1300);
    for (size_t ai = 0; ai < 4; ai++) {
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            const int act = acts[ai];
            const size_t n = counts[ci];
            /* Mostly positive inputs keep ReLU's output from being mostly zeros; tanh and
             * sigmoid get a wide range to reach their saturated tails and the polynomial /
             * exp switch of the fast tanh. */
            float *x = act == CNB_ACT_RELU || act == CNB_ACT_PRELU
                           ? tu_random(&rng, n, -0.5f, 1.5f)
                           : tu_random(&rng, n, -12.0f, 12.0f);
            float *dy = rand_nonzero(&rng, n);
            float slope = 0.25f;
            float *ref = host_floats(n), *out = host_floats(n);
            float *rx = up(&r, x, n), *ry = up(&r, NULL, n), *rdy = up(&r, dy, n),
                  *rdx = up(&r, NULL, n), *rs = up(&r, &slope, 1), *rds = up(&r, NULL, 1);
            float *bx = up(&b, x, n), *by = up(&b, NULL, n), *bdy = up(&b, dy, n),
                  *bdx = up(&b, NULL, n), *bs = up(&b, &slope, 1), *bds = up(&b, NULL, 1);
            char what[128];
            tu_check_status(&r, r.api->activation_forward(r.ctx, act, n, ry, rx, rs), "act fwd");
            tu_check_status(&b, b.api->activation_forward(b.ctx, act, n, by, bx, bs), "act fwd");
            down(&r, ref, ry, n);
            down(&b, out, by, n);
            snprintf(what, sizeof what, "%s forward, %zu values", names[ai], n);
            /* relu / prelu are one comparison and at most one multiply: exact */
            compare_out(what, out, ref, n, act == CNB_ACT_RELU || act == CNB_ACT_PRELU);
            if (n > 1) expect_trusted(what, ref, n);
            /* backward from the reference forward output, so both see the same y */
            float *by2 = up(&b, ref, n);
            tu_check_status(&r, r.api->activation_backward(r.ctx, act, n, rdx, rds, rdy, rx, ry,
                                                            rs), "act bwd");
            tu_check_status(&b, b.api->activation_backward(b.ctx, act, n, bdx, bds, bdy, bx, by2,
                                                            bs), "act bwd");
            down(&r, ref, rdx, n);
            down(&b, out, bdx, n);
            snprintf(what, sizeof what, "%s backward, %zu values", names[ai], n);
            compare_out(what, out, ref, n, act == CNB_ACT_RELU || act == CNB_ACT_PRELU);
            if (act == CNB_ACT_PRELU) {
                float ds_ref, ds_got;
                down(&r, &ds_ref, rds, 1);
                down(&b, &ds_got, bds, 1);
                snprintf(what, sizeof what, "prelu dslope, %zu values", n);
                tu_expect_close(what, &ds_got, &ds_ref, 1, TOL);
            }
            float *all[] = {rx, ry, rdy, rdx, rs, rds};
            for (int i = 0; i < 6; i++) tu_dev_free(&r, all[i]);
            float *ball[] = {bx, by, bdy, bdx, bs, bds, by2};
            for (int i = 0; i < 7; i++) tu_dev_free(&b, ball[i]);
            free(x), free(dy), free(ref), free(out);
        }
    }
    tu_close(&b);
    tu_close(&r);
}

/* ---- softmax + cross-entropy ------------------------------------------------------------- */

Test(blas_softmax_ce, forward_and_backward) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    const int shapes[][2] = {{64, 10}, {1, 10}, {1000, 10}, {7, 3}, {5, 1}, {3, 130}};
    cnb_rng rng;
    cnb_rng_seed(&rng, 1400);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int n = shapes[i][0], k = shapes[i][1];
        const size_t cnt = (size_t)n * k;
        float *z = tu_random(&rng, cnt, -8.0f, 8.0f);
        int32_t *lab = malloc((size_t)n * sizeof *lab), *pr = malloc((size_t)n * sizeof *pr),
                *pb = malloc((size_t)n * sizeof *pb);
        cr_assert(lab && pr && pb);
        for (int j = 0; j < n; j++) lab[j] = (int32_t)cnb_rng_below(&rng, (uint32_t)k);
        if (i == 0) /* a tie for the maximum in row 0: the first one must win */
            z[3] = z[7] = 20.0f;
        float *ref = host_floats(cnt), *out = host_floats(cnt), lr, lb;
        float *rz = up(&r, z, cnt), *rp = up(&r, NULL, cnt), *rl = up(&r, NULL, 1),
              *rd = up(&r, NULL, cnt);
        int32_t *rlab = tu_dev_bytes(&r, lab, (size_t)n * 4), *rpred = tu_dev_bytes(&r, NULL, (size_t)n * 4);
        float *bz = up(&b, z, cnt), *bp = up(&b, NULL, cnt), *bl = up(&b, NULL, 1),
              *bd = up(&b, NULL, cnt);
        int32_t *blab = tu_dev_bytes(&b, lab, (size_t)n * 4), *bpred = tu_dev_bytes(&b, NULL, (size_t)n * 4);
        tu_check_status(&r, r.api->softmax_ce_forward(r.ctx, n, k, rp, rl, rpred, rz, rlab),
                        "softmax_ce_forward");
        tu_check_status(&b, b.api->softmax_ce_forward(b.ctx, n, k, bp, bl, bpred, bz, blab),
                        "softmax_ce_forward");
        char what[128];
        down(&r, ref, rp, cnt);
        down(&b, out, bp, cnt);
        snprintf(what, sizeof what, "softmax probs (%d, %d)", n, k);
        tu_expect_close(what, out, ref, cnt, TOL);
        down(&r, &lr, rl, 1);
        down(&b, &lb, bl, 1);
        snprintf(what, sizeof what, "softmax loss (%d, %d)", n, k);
        tu_expect_close(what, &lb, &lr, 1, TOL);
        tu_to_host(&r, pr, rpred, (size_t)n * 4);
        tu_to_host(&b, pb, bpred, (size_t)n * 4);
        for (int j = 0; j < n; j++)
            cr_expect_eq(pb[j], pr[j], "softmax pred (%d, %d) row %d: got %d, expected %d", n, k,
                         j, pb[j], pr[j]);
        if (i == 0) cr_expect_eq(pb[0], 3, "tie in row 0: pred %d, expected the first max 3", pb[0]);
        /* backward from the reference probabilities */
        float *bp2 = up(&b, ref, cnt);
        tu_check_status(&r, r.api->softmax_ce_backward(r.ctx, n, k, rd, rp, rlab),
                        "softmax_ce_backward");
        tu_check_status(&b, b.api->softmax_ce_backward(b.ctx, n, k, bd, bp2, blab),
                        "softmax_ce_backward");
        down(&r, ref, rd, cnt);
        down(&b, out, bd, cnt);
        snprintf(what, sizeof what, "softmax backward (%d, %d)", n, k);
        tu_expect_close(what, out, ref, cnt, TOL);
        float *rf[] = {rz, rp, rl, rd};
        for (int j = 0; j < 4; j++) tu_dev_free(&r, rf[j]);
        tu_dev_free(&r, rlab), tu_dev_free(&r, rpred);
        float *bf[] = {bz, bp, bl, bd, bp2};
        for (int j = 0; j < 5; j++) tu_dev_free(&b, bf[j]);
        tu_dev_free(&b, blab), tu_dev_free(&b, bpred);
        free(z), free(lab), free(pr), free(pb), free(ref), free(out);
    }
    tu_close(&b);
    tu_close(&r);
}

/* ---- optimizers -------------------------------------------------------------------------- */

/* Several steps of SGD (with momentum and weight decay) and Adam on both backends from the
 * same state. Both evaluate the PyTorch formulas in float in the same order, one rounding per
 * operation, so the parameters must agree bit for bit after every step. */
Test(blas_optimizer, sgd_and_adam_match_reference_bit_for_bit) {
    tu_backend b, r;
    open_blas(&b, 2, "auto");
    tu_open(&r, "naive", 1);
    const size_t n = 421642 + 13; /* simplecnn's parameter count plus an odd tail */
    cnb_rng rng;
    cnb_rng_seed(&rng, 1500);
    float *param = rand_nonzero(&rng, n), *grad = rand_nonzero(&rng, n);
    float *zero = calloc(n, sizeof(float)), *ref = host_floats(n), *out = host_floats(n);
    cr_assert_not_null(zero);
    for (int opt = 0; opt < 2; opt++) {
        float *rp = up(&r, param, n), *rv = up(&r, zero, n), *rm = up(&r, zero, n),
              *rg = up(&r, grad, n);
        float *bp = up(&b, param, n), *bv = up(&b, zero, n), *bm = up(&b, zero, n),
              *bg = up(&b, grad, n);
        for (int step = 1; step <= 3; step++) {
            char what[96];
            if (opt == 0) {
                cnb_sgd_desc d = {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f};
                tu_check_status(&r, r.api->sgd_step(r.ctx, &d, n, rp, rv, rg), "sgd_step");
                tu_check_status(&b, b.api->sgd_step(b.ctx, &d, n, bp, bv, bg), "sgd_step");
                snprintf(what, sizeof what, "sgd step %d param", step);
            } else {
                cnb_adam_desc d = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                   .weight_decay = 1e-4f, .step = step};
                tu_check_status(&r, r.api->adam_step(r.ctx, &d, n, rp, rm, rv, rg), "adam_step");
                tu_check_status(&b, b.api->adam_step(b.ctx, &d, n, bp, bm, bv, bg), "adam_step");
                snprintf(what, sizeof what, "adam step %d param", step);
            }
            down(&r, ref, rp, n);
            down(&b, out, bp, n);
            tu_expect_equal(what, out, ref, n);
            down(&r, ref, rv, n);
            down(&b, out, bv, n);
            strcat(what, " (velocity / v)");
            tu_expect_equal(what, out, ref, n);
        }
        tu_dev_free(&r, rp), tu_dev_free(&r, rv), tu_dev_free(&r, rm), tu_dev_free(&r, rg);
        tu_dev_free(&b, bp), tu_dev_free(&b, bv), tu_dev_free(&b, bm), tu_dev_free(&b, bg);
    }
    free(param), free(grad), free(zero), free(ref), free(out);
    tu_close(&b);
    tu_close(&r);
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

Test(blas_threads, one_and_two_threads_agree_and_each_context_keeps_its_count) {
    tu_backend t1, t2, r;
    open_blas(&t1, 1, "auto");
    open_blas(&t2, 2, "auto");
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
        float *bx = up(b, x, nx), *bw = up(b, w, nw), *by = up(b, NULL, ny);
        tu_check_status(b, b->api->conv_forward(b->ctx, &d, by, bx, bw, NULL), "conv_forward");
        down(b, outs[i], by, ny);
        /* The pool size is process-wide: after this context's kernel it must be its own. */
        info_seen s = {0};
        tu_check_status(b, b->api->info(b->ctx, collect_info, &s), "info");
        cr_expect_eq(atoi(s.threads), i + 1, "context %d: info threads=%s", i + 1, s.threads);
        cr_expect_eq(atoi(s.openblas_threads), i + 1,
                     "context with threads=%d: OpenBLAS ran with %s threads", i + 1,
                     s.openblas_threads);
        tu_dev_free(b, bx), tu_dev_free(b, bw), tu_dev_free(b, by);
    }
    float *rx = up(&r, x, nx), *rw = up(&r, w, nw), *ry = up(&r, NULL, ny);
    tu_check_status(&r, r.api->conv_forward(r.ctx, &d, ry, rx, rw, NULL), "conv_forward");
    down(&r, yr, ry, ny);
    tu_expect_close("conv_forward threads=2 vs threads=1", y2, y1, ny, TOL);
    tu_expect_close("conv_forward threads=1 vs naive", y1, yr, ny, TOL);
    tu_expect_close("conv_forward threads=2 vs naive", y2, yr, ny, TOL);
    tu_dev_free(&r, rx), tu_dev_free(&r, rw), tu_dev_free(&r, ry);
    free(x), free(w), free(y1), free(y2), free(yr);
    tu_close(&t1);
    tu_close(&t2);
    tu_close(&r);
}

Test(blas_info, reports_openblas_and_environment) {
    tu_backend b;
    open_blas(&b, 2, "auto");
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

static void expect_invalid(tu_backend *b, cnb_status st, const char *call, const char *needle) {
    const char *msg = b->api->last_error(b->ctx);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "%s: status %d (%s), expected invalid argument",
                 call, st, cnb_status_str(st));
    cr_expect(strstr(msg, needle) != NULL, "%s: message '%s' does not mention '%s'", call, msg,
              needle);
}

Test(blas_args, bad_arguments_are_refused_with_a_message) {
    tu_backend b;
    open_blas(&b, 1, "auto");
    float *buf = up(&b, NULL, 4096);
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
    float *probs = up(&b, NULL, 20);
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
    open_blas(&b, 1, "auto");
    cnb_pool_desc pd = {CNB_POOL_MAX, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2};
    int32_t junk[4] = {0, 5, 99, 3};
    void *ws = tu_dev_bytes(&b, junk, sizeof junk);
    float *dx = up(&b, NULL, 16), *dy = up(&b, NULL, 4);
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
    open_blas(&b, 1, "auto");
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
