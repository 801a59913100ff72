/* test_naive.c — the naive reference backend against hand-computed values: the corr2d seed
 * vector, small convolutions, pooling (ties included), GEMM in all four transpose combinations,
 * activations, softmax-CE, SGD and Adam; plus its table, info, memory and argument checks.
 * Everything goes through the loader, as the harness uses it. The float64 finite-difference
 * checks of the backward kernels are in test_naive_gradcheck.c. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- a little plumbing: device copies that are freed together at the end of a test ---- */

typedef struct fixture {
    tu_backend b;
    void *dev[64];
    int ndev;
} fixture;

static void fx_open(fixture *f) {
    memset(f, 0, sizeof *f);
    tu_open(&f->b, "naive", 1);
}

static void *fx_bytes(fixture *f, const void *host, size_t bytes) {
    cr_assert_lt(f->ndev, 64, "fixture: too many device buffers");
    void *p = tu_dev_bytes(&f->b, host, bytes);
    f->dev[f->ndev++] = p;
    return p;
}

static float *fx_floats(fixture *f, const float *host, size_t count) {
    return fx_bytes(f, host, count * sizeof(float));
}

static void fx_close(fixture *f) {
    for (int i = 0; i < f->ndev; i++) tu_dev_free(&f->b, f->dev[i]);
    tu_close(&f->b);
}

/* Point-wise |got - want| <= tol * max(1, |want|); prints every mismatch. */
static void expect_near(const char *what, const float *got, const double *want, size_t count,
                        double tol) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        double lim = tol * fmax(1.0, fabs(want[i]));
        if (!(fabs((double)got[i] - want[i]) <= lim)) {
            fprintf(stderr, "%s: [%zu] expected %.9g got %.9g (diff %.3g > %.3g)\n", what, i,
                    want[i], got[i], fabs((double)got[i] - want[i]), lim);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %zu of %zu values off by more than %g", what, bad, count, tol);
}

/* Float32 rounding of a value computed in double is within 2^-24 relative; the hand values
 * below are exact or given to 10+ digits, so 1e-6 separates rounding from a wrong result. */
#define HAND_TOL 1e-6

/* ---- table, info, memory ---- */

Test(naive_table, names_itself_and_serves_version_1) {
    fixture f;
    fx_open(&f);
    const cnb_backend *api = f.b.api;
    cr_expect_eq(api->abi_version, 1u, "abi_version %u", api->abi_version);
    cr_expect_geq(api->struct_size, (uint32_t)CNB_BACKEND_V1_SIZE, "struct_size %u < %zu",
                  api->struct_size, (size_t)CNB_BACKEND_V1_SIZE);
    cr_expect_str_eq(api->name, "naive");
    cr_expect(api->description && *api->description, "empty description");

    cnb_entry_fn entry = (cnb_entry_fn)(uintptr_t)dlsym(f.b.lib.handle, CNB_ENTRY_SYMBOL);
    cr_assert_not_null(entry, "dlsym(%s): %s", CNB_ENTRY_SYMBOL, dlerror());
    cr_expect_null(entry(0), "a harness speaking ABI 0 must be refused");
    const cnb_backend *newer = entry(CNB_ABI_VERSION + 1);
    cr_expect(newer && newer->abi_version == 1u,
              "a newer harness must still get the version-1 table");
    fx_close(&f);
}

typedef struct info_seen {
    char backend[64], threads[16], compiler[256];
    int count;
} info_seen;

static void collect_info(void *user, const char *key, const char *value) {
    info_seen *s = user;
    s->count++;
    if (!strcmp(key, "backend")) snprintf(s->backend, sizeof s->backend, "%s", value);
    if (!strcmp(key, "threads")) snprintf(s->threads, sizeof s->threads, "%s", value);
    if (!strcmp(key, "compiler")) snprintf(s->compiler, sizeof s->compiler, "%s", value);
}

Test(naive_table, info_reports_backend_threads_compiler) {
    fixture f;
    fx_open(&f);
    info_seen s = {0};
    tu_check_status(&f.b, f.b.api->info(f.b.ctx, collect_info, &s), "info");
    cr_expect_str_eq(s.backend, "naive");
    cr_expect_str_eq(s.threads, "1");
    cr_expect(strlen(s.compiler) > 0, "no compiler reported");
    cr_expect_geq(s.count, 3);
    fx_close(&f);
}

Test(naive_memory, alloc_is_64_byte_aligned_and_round_trips) {
    fixture f;
    fx_open(&f);
    const size_t sizes[] = {0, 1, 3, 64, 1000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = NULL;
        tu_check_status(&f.b, f.b.api->alloc(f.b.ctx, &p, sizes[i]), "alloc");
        cr_expect_not_null(p, "alloc(%zu) gave NULL", sizes[i]);
        cr_expect_eq((uintptr_t)p % 64, 0, "alloc(%zu) = %p is not 64-byte aligned", sizes[i], p);
        tu_dev_free(&f.b, p);
    }
    float host[100], back[100];
    for (int i = 0; i < 100; i++) host[i] = (float)i * 0.25f - 7.0f;
    float *dev = fx_floats(&f, host, 100);
    tu_check_status(&f.b, f.b.api->synchronize(f.b.ctx), "synchronize");
    tu_to_host(&f.b, back, dev, sizeof back);
    tu_expect_equal("upload/download round trip", back, host, 100);
    fx_close(&f);
}

/* ---- corr2d ---- */

/* corr2d of x (h x w) with k (kh x kw) must give want, the (h-kh+1) x (w-kw+1) valid
 * correlation, exactly. */
static void expect_corr2d(fixture *f, const float *x, int h, int w, const float *k, int kh,
                          int kw, const float *want, const char *what) {
    const size_t ny = (size_t)(h - kh + 1) * (size_t)(w - kw + 1);
    float *dx = fx_floats(f, x, (size_t)h * w), *dk = fx_floats(f, k, (size_t)kh * kw);
    float *dy = fx_floats(f, NULL, ny), *y = malloc(ny * sizeof *y);
    tu_check_status(&f->b, f->b.api->corr2d(f->b.ctx, dy, dx, dk, h, w, kh, kw), what);
    tu_to_host(&f->b, y, dy, ny * sizeof *y);
    tu_expect_equal(what, y, want, ny);
    free(y);
}

Test(naive_corr2d, seed_vector_from_design) {
    fixture f;
    fx_open(&f);
    const float x[16] = {0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6};
    const float k[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const float want[4] = {96, 132, 132, 168};
    expect_corr2d(&f, x, 4, 4, k, 3, 3, want, "corr2d seed vector");
    fx_close(&f);
}

Test(naive_corr2d, non_square_input_and_kernels) {
    fixture f;
    fx_open(&f);
    /* x is 3x4 = [[1,2,3,4],[5,6,7,8],[9,10,11,12]].
     * k = [[1,2],[3,4]]: y[i][j] = x[i][j] + 2x[i][j+1] + 3x[i+1][j] + 4x[i+1][j+1]
     *   y[0][0] = 1+4+15+24 = 44, then +10 per column step, +40 per row step.
     * k = [[2],[-1]] (2x1): y[i][j] = 2x[i][j] - x[i+1][j]. */
    const float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const float k22[4] = {1, 2, 3, 4}, k21[2] = {2, -1};
    const float want22[6] = {44, 54, 64, 84, 94, 104};
    const float want21[8] = {-3, -2, -1, 0, 1, 2, 3, 4};
    expect_corr2d(&f, x, 3, 4, k22, 2, 2, want22, "corr2d 3x4 * 2x2");
    expect_corr2d(&f, x, 3, 4, k21, 2, 1, want21, "corr2d 3x4 * 2x1");
    fx_close(&f);
}

/* ---- convolution ---- */

static void run_conv_forward(fixture *f, const cnb_conv_desc *d, float *y, const float *x,
                             const float *w, const float *bias) {
    size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s;
    size_t ny = (size_t)d->n * d->k * d->p * d->q;
    float *dx = fx_floats(f, x, nx), *dw = fx_floats(f, w, nw), *dy = fx_floats(f, NULL, ny);
    float *db = bias ? fx_floats(f, bias, (size_t)d->k) : NULL;
    tu_check_status(&f->b, f->b.api->conv_forward(f->b.ctx, d, dy, dx, dw, db), "conv_forward");
    tu_to_host(&f->b, y, dy, ny * sizeof(float));
}

Test(naive_conv, padding_stride2_bias) {
    fixture f;
    fx_open(&f);
    /* x (1,1,3,3) = [[1,2,3],[4,5,6],[7,8,9]], w (1,1,2,2) = [[1,-1],[2,3]], pad 1, stride 2:
     * p = q = (3+2-2)/2+1 = 2. Windows of the zero-padded 5x5 start at (2*oh-1, 2*ow-1):
     *   (0,0): [[0,0],[0,1]] -> 3*1 = 3          (0,1): [[0,0],[2,3]] -> 2*2+3*3 = 13
     *   (1,0): [[0,4],[0,7]] -> -4+3*7 = 17      (1,1): [[5,6],[8,9]] -> 5-6+16+27 = 42 */
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, -1, 2, 3}, bias[1] = {0.5f};
    cnb_conv_desc d = {.n = 1, .c = 1, .h = 3, .w = 3, .k = 1, .r = 2, .s = 2, .stride_h = 2,
                       .stride_w = 2, .pad_h = 1, .pad_w = 1, .p = 2, .q = 2};
    float y[4];
    run_conv_forward(&f, &d, y, x, w, bias);
    const float with_bias[4] = {3.5f, 13.5f, 17.5f, 42.5f};
    tu_expect_equal("conv pad1 stride2 with bias", y, with_bias, 4);
    run_conv_forward(&f, &d, y, x, w, NULL);
    const float no_bias[4] = {3, 13, 17, 42};
    tu_expect_equal("conv pad1 stride2, bias NULL", y, no_bias, 4);
    fx_close(&f);
}

Test(naive_conv, two_images_two_channels_two_filters) {
    fixture f;
    fx_open(&f);
    /* Image 0: channel 0 = [[1,2,3],[4,5,6],[7,8,9]], channel 1 = [[1,0,2],[0,3,0],[4,0,5]];
     * image 1 = 2 * image 0. Filters 2x2, stride 1, no padding, so p = q = 2.
     * Filter 0: ch0 [[1,0],[0,1]] gives x[i][j]+x[i+1][j+1] = 6,8,12,14;
     *           ch1 [[1,1],[1,1]] gives window sums 4,5,7,8;          bias 1 -> 11,14,20,23.
     * Filter 1: ch0 [[0,1],[-1,0]] gives x[i][j+1]-x[i+1][j] = -2,-2,-2,-2;
     *           ch1 [[2,0],[0,-2]] gives 2x[i][j]-2x[i+1][j+1] = -4,0,0,-4; bias -1 -> -7,-3,-3,-7.
     * Image 1: 2*(sum without bias) + bias -> 21,27,39,45 and -13,-5,-5,-13. */
    float x[36];
    const float img[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0, 2, 0, 3, 0, 4, 0, 5};
    for (int i = 0; i < 18; i++) x[i] = img[i], x[18 + i] = 2 * img[i];
    const float w[16] = {1, 0, 0, 1, 1, 1, 1, 1, /* filter 0: ch0, ch1 */
                         0, 1, -1, 0, 2, 0, 0, -2 /* filter 1 */};
    const float bias[2] = {1, -1};
    const float want[16] = {11, 14, 20, 23, -7, -3, -3, -7, 21, 27, 39, 45, -13, -5, -5, -13};
    cnb_conv_desc d = {.n = 2, .c = 2, .h = 3, .w = 3, .k = 2, .r = 2, .s = 2, .stride_h = 1,
                       .stride_w = 1, .pad_h = 0, .pad_w = 0, .p = 2, .q = 2};
    float y[16];
    run_conv_forward(&f, &d, y, x, w, bias);
    tu_expect_equal("conv n2 c2 k2", y, want, 16);
    fx_close(&f);
}

Test(naive_conv, bias_forward_and_backward_by_hand) {
    fixture f;
    fx_open(&f);
    /* y (2,2,3): bias (2) = {10, -1}. dy sums per channel over n and hw. */
    const float y0[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, bias[2] = {10, -1};
    const float want_y[12] = {11, 12, 13, 3, 4, 5, 17, 18, 19, 9, 10, 11};
    float *dy = fx_floats(&f, y0, 12), *db = fx_floats(&f, bias, 2);
    tu_check_status(&f.b, f.b.api->bias_forward(f.b.ctx, dy, db, 2, 2, 3), "bias_forward");
    float y[12];
    tu_to_host(&f.b, y, dy, sizeof y);
    tu_expect_equal("bias_forward", y, want_y, 12);
    /* dbias[0] = 1+2+3+7+8+9 = 30, dbias[1] = 4+5+6+10+11+12 = 48 */
    float *dgrad = fx_floats(&f, y0, 12), *ddb = fx_floats(&f, NULL, 2);
    tu_check_status(&f.b, f.b.api->bias_backward(f.b.ctx, ddb, dgrad, 2, 2, 3), "bias_backward");
    float got[2];
    const float want_db[2] = {30, 48};
    tu_to_host(&f.b, got, ddb, sizeof got);
    tu_expect_equal("bias_backward", got, want_db, 2);
    fx_close(&f);
}

/* ---- pooling ---- */

static void run_pool(fixture *f, const cnb_pool_desc *d, float *y, float *dx, const float *x,
                     const float *dy) {
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
    size_t ws_bytes = 0;
    tu_check_status(&f->b, f->b.api->pool_workspace_size(f->b.ctx, d, &ws_bytes),
                    "pool_workspace_size");
    void *ws = ws_bytes ? fx_bytes(f, NULL, ws_bytes) : NULL;
    float *d_x = fx_floats(f, x, nx), *d_y = fx_floats(f, NULL, ny);
    tu_check_status(&f->b, f->b.api->pool_forward(f->b.ctx, d, d_y, d_x, ws), "pool_forward");
    tu_to_host(&f->b, y, d_y, ny * sizeof(float));
    if (!dx) return;
    float *d_dy = fx_floats(f, dy, ny), *d_dx = fx_floats(f, NULL, nx);
    tu_check_status(&f->b, f->b.api->pool_backward(f->b.ctx, d, d_dx, d_dy, d_x, d_y, ws),
                    "pool_backward");
    tu_to_host(&f->b, dx, d_dx, nx * sizeof(float));
}

/* Runs pool d on x with gradient dy; y and dx must equal the hand values bit for bit. */
static void expect_pool_exact(fixture *f, const cnb_pool_desc *d, const float *x, const float *dy,
                              const float *want_y, const char *fwd_what, const float *want_dx,
                              const char *bwd_what) {
    const size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->c * d->p * d->q;
    float *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
    run_pool(f, d, y, dx, x, dy);
    tu_expect_equal(fwd_what, y, want_y, ny);
    tu_expect_equal(bwd_what, dx, want_dx, nx);
    free(y), free(dx);
}

Test(naive_pool, max_2x2_ties_go_to_the_first_maximum) {
    fixture f;
    fx_open(&f);
    /* Plane 0:                    windows (row-major order inside each):
     *   [[1, 3, 2, 2],            (0,0) 1,3,3,0 -> 3, first at (0,1)
     *    [3, 0, 1, 2],            (0,1) 2,2,1,2 -> 2, first at (0,2)
     *    [5, 6, 7, 8],            (1,0) 5,6,6,4 -> 6, first at (2,1)
     *    [6, 4, 8, 1]]            (1,1) 7,8,8,1 -> 8, first at (2,3)
     * Plane 1 = -plane 0:         (0,0) -> 0 at (1,1); (0,1) -> -1 at (1,2);
     *                             (1,0) -> -4 at (3,1); (1,1) -> -1 at (3,3) */
    float x[32];
    const float p0[16] = {1, 3, 2, 2, 3, 0, 1, 2, 5, 6, 7, 8, 6, 4, 8, 1};
    for (int i = 0; i < 16; i++) x[i] = p0[i], x[16 + i] = -p0[i];
    x[16 + 5] = 0.0f; /* -0 would print oddly; the max is still this cell */
    cnb_pool_desc d = tu_pool_desc(CNB_POOL_MAX, 1, 2, 4, 4, 2, 2, 2, 2, 0, 0); /* 2x2 out */
    const float dy[8] = {10, 20, 30, 40, 1, 2, 3, 4};
    const float want_y[8] = {3, 2, 6, 8, 0, -1, -4, -1};
    float want_dx[32] = {0};
    want_dx[0 * 4 + 1] = 10;
    want_dx[0 * 4 + 2] = 20;
    want_dx[2 * 4 + 1] = 30;
    want_dx[2 * 4 + 3] = 40;
    want_dx[16 + 1 * 4 + 1] = 1;
    want_dx[16 + 1 * 4 + 2] = 2;
    want_dx[16 + 3 * 4 + 1] = 3;
    want_dx[16 + 3 * 4 + 3] = 4;
    expect_pool_exact(&f, &d, x, dy, want_y, "maxpool forward with ties", want_dx,
                      "maxpool backward routes to the first maximum");
    fx_close(&f);
}

Test(naive_pool, max_3x3_stride2_pad1_ignores_padding_and_overlaps_add) {
    fixture f;
    fx_open(&f);
    /* p = q = (3+2-3)/2+1 = 2; every window of this 3x3 input covers the centre.
     * With x = [[1,2,3],[4,9,6],[7,8,5]] every output is 9 and the centre's gradient is the
     * sum of all four dy. With x = -(1..9) the padding must not win (it is not a 0):
     *   (0,0) covers -1,-2,-4,-5 -> -1;  (0,1) -2,-3,-5,-6 -> -2;
     *   (1,0) -4,-5,-7,-8 -> -4;         (1,1) -5,-6,-8,-9 -> -5 */
    cnb_pool_desc d = tu_pool_desc(CNB_POOL_MAX, 1, 1, 3, 3, 3, 3, 2, 2, 1, 1);
    const float x1[9] = {1, 2, 3, 4, 9, 6, 7, 8, 5}, dy[4] = {1, 2, 3, 4};
    const float nines[4] = {9, 9, 9, 9}, want_dx[9] = {0, 0, 0, 0, 10, 0, 0, 0, 0};
    expect_pool_exact(&f, &d, x1, dy, nines, "maxpool 3x3/2 pad 1 forward", want_dx,
                      "maxpool 3x3/2 pad 1 backward (overlaps add)");
    const float x2[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    const float want_y2[4] = {-1, -2, -4, -5}, want_dx2[9] = {1, 2, 0, 3, 4, 0, 0, 0, 0};
    expect_pool_exact(&f, &d, x2, dy, want_y2, "maxpool negative input, padding ignored",
                      want_dx2, "maxpool negative input backward");
    fx_close(&f);
}

Test(naive_pool, avg_counts_padding_in_the_divisor) {
    fixture f;
    fx_open(&f);
    /* x = [[1,2,3],[4,5,6],[7,8,9]], 3x3 window, stride 2, pad 1: every window has 4 real
     * cells and 5 padded ones, and divides by 9:
     *   (0,0) (1+2+4+5)/9 = 12/9, (0,1) 16/9, (1,0) 24/9, (1,1) 28/9.
     * Backward with dy = 9,18,27,36 spreads 1,2,3,4 over each window's real cells:
     *   [[1, 1+2, 2], [1+3, 1+2+3+4, 2+4], [3, 3+4, 4]] */
    cnb_pool_desc d = tu_pool_desc(CNB_POOL_AVG, 1, 1, 3, 3, 3, 3, 2, 2, 1, 1); /* 2x2 out */
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, dy[4] = {9, 18, 27, 36};
    float y[4], dx[9];
    run_pool(&f, &d, y, dx, x, dy);
    const double want_y[4] = {12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9};
    expect_near("avgpool 3x3/2 pad 1 forward", y, want_y, 4, HAND_TOL);
    const float want_dx[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    tu_expect_equal("avgpool 3x3/2 pad 1 backward", dx, want_dx, 9);

    /* 2x2 stride 2 on a 2x5 plane (floor mode drops the last column): (1+2+6+7)/4 = 4,
     * (3+4+8+9)/4 = 6; the dropped column gets no gradient. */
    cnb_pool_desc d2 = tu_pool_desc(CNB_POOL_AVG, 1, 1, 2, 5, 2, 2, 2, 2, 0, 0); /* 1x2 out */
    const float x2[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, dy2[2] = {4, 8};
    const float want_y2[2] = {4, 6}, want_dx2[10] = {1, 1, 2, 2, 0, 1, 1, 2, 2, 0};
    expect_pool_exact(&f, &d2, x2, dy2, want_y2, "avgpool 2x2/2 forward", want_dx2,
                      "avgpool 2x2/2 backward");
    fx_close(&f);
}

/* ---- GEMM ---- */

Test(naive_gemm, all_four_transposes_with_alpha_beta_and_strides) {
    fixture f;
    fx_open(&f);
    /* op(A) = [[1,2,3],[4,5,6]], op(B) = [[7,8],[9,10],[11,12]]:
     *   op(A)op(B) = [[58,64],[139,154]]; with alpha 2, beta 0.5, C = [[1,2],[3,4]]:
     *   C' = [[116.5,129],[279.5,310]].
     * Every matrix is stored with one spare column (value 99 or -7) that must be neither read
     * into the result nor overwritten. */
    const float a_n[8] = {1, 2, 3, 99, 4, 5, 6, 99};        /* (2,3), lda 4 */
    const float a_t[9] = {1, 4, 99, 2, 5, 99, 3, 6, 99};    /* (3,2), lda 3 */
    const float b_n[9] = {7, 8, 99, 9, 10, 99, 11, 12, 99}; /* (3,2), ldb 3 */
    const float b_t[8] = {7, 9, 11, 99, 8, 10, 12, 99};     /* (2,3), ldb 4 */
    const float c0[6] = {1, 2, -7, 3, 4, -7};               /* (2,2), ldc 3 */
    const float want[6] = {116.5f, 129, -7, 279.5f, 310, -7};
    float *da_n = fx_floats(&f, a_n, 8), *da_t = fx_floats(&f, a_t, 9);
    float *db_n = fx_floats(&f, b_n, 9), *db_t = fx_floats(&f, b_t, 8);
    float *dc = fx_floats(&f, c0, 6);
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dc, c0, sizeof c0), "upload");
            cnb_status st = f.b.api->gemm(f.b.ctx, ta, tb, 2, 2, 3, 2.0f, ta ? da_t : da_n,
                                          ta ? 3 : 4, tb ? db_t : db_n, tb ? 4 : 3, 0.5f, dc, 3);
            tu_check_status(&f.b, st, "gemm");
            float c[6];
            tu_to_host(&f.b, c, dc, sizeof c);
            char what[64];
            snprintf(what, sizeof what, "gemm trans_a=%d trans_b=%d", ta, tb);
            tu_expect_equal(what, c, want, 6);
        }
    }
    fx_close(&f);
}

Test(naive_gemm, beta_zero_does_not_read_c) {
    fixture f;
    fx_open(&f);
    /* C starts as NaN: with beta = 0 the result is alpha*A*B alone, as in BLAS. */
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    const float c0[4] = {NAN, NAN, NAN, NAN}, want[4] = {58, 64, 139, 154};
    float *da = fx_floats(&f, a, 6), *db = fx_floats(&f, b, 6), *dc = fx_floats(&f, c0, 4);
    tu_check_status(&f.b, f.b.api->gemm(f.b.ctx, 0, 0, 2, 2, 3, 1.0f, da, 3, db, 2, 0.0f, dc, 2),
                    "gemm");
    float c[4];
    tu_to_host(&f.b, c, dc, sizeof c);
    tu_expect_equal("gemm beta=0 over NaN", c, want, 4);
    fx_close(&f);
}

/* ---- activations ---- */

static void run_act(fixture *f, int act, float slope, const float *x, float *y, size_t count) {
    float *dx = fx_floats(f, x, count), *dy = fx_floats(f, NULL, count);
    float *ds = fx_floats(f, &slope, 1);
    tu_check_status(&f->b, f->b.api->activation_forward(f->b.ctx, act, count, dy, dx, ds),
                    "activation_forward");
    tu_to_host(&f->b, y, dy, count * sizeof(float));
}

Test(naive_activation, forward_against_hand_values_and_libm) {
    fixture f;
    fx_open(&f);
    const float x[5] = {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f};
    float y[5];
    run_act(&f, CNB_ACT_RELU, 0, x, y, 5);
    const float relu[5] = {0, 0, 0, 0.5f, 3};
    tu_expect_equal("relu", y, relu, 5);
    run_act(&f, CNB_ACT_PRELU, 0.25f, x, y, 5);
    const float prelu[5] = {-0.5f, -0.125f, 0, 0.5f, 3};
    tu_expect_equal("prelu slope 0.25", y, prelu, 5);
    /* tanh and the logistic function to 11 digits (from tables / bc -l). */
    run_act(&f, CNB_ACT_TANH, 0, x, y, 5);
    const double tanh_hand[5] = {-0.96402758008, -0.46211715726, 0, 0.46211715726,
                                 0.99505475369};
    expect_near("tanh vs hand", y, tanh_hand, 5, HAND_TOL);
    for (int i = 0; i < 5; i++) {
        float ref = tanhf(x[i]), ulp = nextafterf(fabsf(ref), INFINITY) - fabsf(ref);
        cr_expect_leq(fabsf(y[i] - ref), 2.0f * ulp,
                      "tanh(%g): got %.9g, libm tanhf %.9g (more than 2 ulp apart)", x[i], y[i],
                      ref);
    }
    run_act(&f, CNB_ACT_SIGMOID, 0, x, y, 5);
    const double sig_hand[5] = {0.11920292202, 0.37754066880, 0.5, 0.62245933120,
                                0.95257412682};
    expect_near("sigmoid vs hand", y, sig_hand, 5, HAND_TOL);
    for (int i = 0; i < 5; i++) {
        double ref = 1.0 / (1.0 + exp(-(double)x[i]));
        cr_expect_leq(fabs(y[i] - ref), ldexp(fabs(ref), -23),
                      "sigmoid(%g): got %.9g, libm %.12g", x[i], y[i], ref);
    }
    /* Far tails must saturate, not overflow to NaN. */
    const float tails[2] = {-200.0f, 200.0f};
    float yt[2];
    run_act(&f, CNB_ACT_SIGMOID, 0, tails, yt, 2);
    cr_expect(yt[0] >= 0.0f && yt[0] < 1e-30f && yt[1] == 1.0f, "sigmoid tails: %g %g", yt[0],
              yt[1]);
    fx_close(&f);
}

Test(naive_activation, backward_by_hand) {
    fixture f;
    fx_open(&f);
    /* relu: dx = dy where x > 0; at x == 0 the gradient is 0 (PyTorch's choice).
     * prelu slope 0.25: dx = dy or 0.25*dy; dslope = sum over x <= 0 of x*dy
     *   = (-2)(1) + (-0.5)(2) + 0*3 = -3. */
    const float x[5] = {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f}, dy[5] = {1, 2, 3, 4, 5};
    float slope = 0.25f;
    float *dxx = fx_floats(&f, x, 5), *ddy = fx_floats(&f, dy, 5), *ddx = fx_floats(&f, NULL, 5);
    float *dsl = fx_floats(&f, &slope, 1), *ddsl = fx_floats(&f, NULL, 1);
    float *dyy = fx_floats(&f, NULL, 5);
    float got[5], ds;
    tu_check_status(&f.b, f.b.api->activation_forward(f.b.ctx, CNB_ACT_RELU, 5, dyy, dxx, NULL),
                    "relu forward");
    tu_check_status(&f.b, f.b.api->activation_backward(f.b.ctx, CNB_ACT_RELU, 5, ddx, NULL, ddy,
                                                       dxx, dyy, NULL),
                    "relu backward");
    tu_to_host(&f.b, got, ddx, sizeof got);
    const float want_relu[5] = {0, 0, 0, 4, 5};
    tu_expect_equal("relu backward", got, want_relu, 5);
    tu_check_status(&f.b, f.b.api->activation_forward(f.b.ctx, CNB_ACT_PRELU, 5, dyy, dxx, dsl),
                    "prelu forward");
    tu_check_status(&f.b, f.b.api->activation_backward(f.b.ctx, CNB_ACT_PRELU, 5, ddx, ddsl,
                                                       ddy, dxx, dyy, dsl),
                    "prelu backward");
    tu_to_host(&f.b, got, ddx, sizeof got);
    tu_to_host(&f.b, &ds, ddsl, sizeof ds);
    const float want_prelu[5] = {0.25f, 0.5f, 0.75f, 4, 5};
    tu_expect_equal("prelu backward dx", got, want_prelu, 5);
    cr_expect_eq(ds, -3.0f, "prelu dslope: expected -3 got %.9g", ds);
    /* tanh: dx = dy*(1-y^2); sigmoid: dx = dy*y*(1-y). Given y directly. */
    const float yv[5] = {0.5f, -0.25f, 0.0f, 0.75f, 0.9f};
    float *dyv = fx_floats(&f, yv, 5);
    tu_check_status(&f.b, f.b.api->activation_backward(f.b.ctx, CNB_ACT_TANH, 5, ddx, NULL, ddy,
                                                       dxx, dyv, NULL),
                    "tanh backward");
    tu_to_host(&f.b, got, ddx, sizeof got);
    const double want_tanh[5] = {0.75, 2 * 0.9375, 3, 4 * 0.4375, 5 * 0.19};
    expect_near("tanh backward", got, want_tanh, 5, HAND_TOL);
    tu_check_status(&f.b, f.b.api->activation_backward(f.b.ctx, CNB_ACT_SIGMOID, 5, ddx, NULL,
                                                       ddy, dxx, dyv, NULL),
                    "sigmoid backward");
    tu_to_host(&f.b, got, ddx, sizeof got);
    const double want_sig[5] = {0.25, 2 * -0.3125, 0, 4 * 0.1875, 5 * 0.09};
    expect_near("sigmoid backward", got, want_sig, 5, HAND_TOL);
    fx_close(&f);
}

/* ---- softmax + cross-entropy ---- */

Test(naive_softmax_ce, forward_by_hand_in_long_double) {
    fixture f;
    fx_open(&f);
    /* Row 0: [1,2,3], label 2. Row 1: [0.5,0.5,-1], label 0, a tie (pred must be 0).
     * Row 2: [1000,0,-1000], label 1: loss 1000 in any precision, probs [1,0,0]; a softmax
     * without max-subtraction overflows here.
     * The reference is computed directly in long double (whose exp does not overflow at 1000),
     * per row: loss_i = log(sum_j exp z_j) - z_label, p_j = exp z_j / sum. */
    const float z[9] = {1, 2, 3, 0.5f, 0.5f, -1, 1000, 0, -1000};
    const int32_t labels[3] = {2, 0, 1};
    long double row_loss[3];
    double want_p[9];
    for (int i = 0; i < 3; i++) {
        long double sum = 0;
        for (int j = 0; j < 3; j++) sum += expl((long double)z[i * 3 + j]);
        for (int j = 0; j < 3; j++)
            want_p[i * 3 + j] = (double)(expl((long double)z[i * 3 + j]) / sum);
        row_loss[i] = logl(sum) - z[i * 3 + labels[i]];
    }
    float *dz = fx_floats(&f, z, 9), *dp = fx_floats(&f, NULL, 9), *dl = fx_floats(&f, NULL, 1);
    int32_t *dlab = fx_bytes(&f, labels, sizeof labels);
    int32_t *dpred = fx_bytes(&f, NULL, sizeof labels);
    float p[9], loss;
    int32_t pred[3];

    /* Rows 0 and 1 alone, so the loss (about 0.6) is checked to float precision. */
    tu_check_status(&f.b, f.b.api->softmax_ce_forward(f.b.ctx, 2, 3, dp, dl, dpred, dz, dlab),
                    "softmax_ce_forward n=2");
    tu_to_host(&f.b, &loss, dl, sizeof loss);
    double want_loss2 = (double)((row_loss[0] + row_loss[1]) / 2);
    cr_expect(fabs(loss - want_loss2) <= HAND_TOL * fabs(want_loss2),
              "loss (rows 0-1): expected %.12g (long double) got %.9g", want_loss2, loss);

    tu_check_status(&f.b, f.b.api->softmax_ce_forward(f.b.ctx, 3, 3, dp, dl, dpred, dz, dlab),
                    "softmax_ce_forward n=3");
    tu_to_host(&f.b, p, dp, sizeof p);
    tu_to_host(&f.b, &loss, dl, sizeof loss);
    tu_to_host(&f.b, pred, dpred, sizeof pred);
    double want_loss3 = (double)((row_loss[0] + row_loss[1] + row_loss[2]) / 3);
    expect_near("softmax probs", p, want_p, 9, HAND_TOL);
    cr_expect(isfinite(loss) && fabs(loss - want_loss3) <= HAND_TOL * fabs(want_loss3),
              "loss (rows 0-2): expected %.12g (long double) got %.9g", want_loss3, loss);
    cr_expect(pred[0] == 2 && pred[1] == 0 && pred[2] == 0, "pred: expected 2,0,0 got %d,%d,%d",
              pred[0], pred[1], pred[2]);
    /* pred may be NULL. */
    tu_check_status(&f.b, f.b.api->softmax_ce_forward(f.b.ctx, 3, 3, dp, dl, NULL, dz, dlab),
                    "softmax_ce_forward with pred NULL");

    /* backward: (probs - onehot) / n */
    float *dg = fx_floats(&f, NULL, 9);
    tu_check_status(&f.b, f.b.api->softmax_ce_backward(f.b.ctx, 3, 3, dg, dp, dlab),
                    "softmax_ce_backward");
    float g[9];
    tu_to_host(&f.b, g, dg, sizeof g);
    double want_g[9];
    for (int i = 0; i < 9; i++) want_g[i] = ((double)p[i] - (i % 3 == labels[i / 3])) / 3.0;
    expect_near("softmax_ce_backward", g, want_g, 9, HAND_TOL);
    fx_close(&f);
}

/* ---- optimizers ---- */

Test(naive_optimizer, sgd_momentum_three_steps_by_hand) {
    fixture f;
    fx_open(&f);
    /* lr 0.1, momentum 0.9; grads 0.5, -1, 0.25 over three steps.
     * Element 0 (p = 1), weight_decay 0:
     *   v = 0.5, p = 0.95;  v = 0.45-1 = -0.55, p = 1.005;  v = -0.495+0.25 = -0.245, p = 1.0295
     * Element 1 (p = 2), weight_decay 0.01:
     *   g = 0.52, v = 0.52, p = 1.948
     *   g = -1 + 0.01948 = -0.98052, v = 0.468 - 0.98052 = -0.51252, p = 1.999252
     *   g = 0.25 + 0.01999252 = 0.26999252, v = -0.461268 + 0.26999252 = -0.19127548,
     *   p = 2.018379548
     * Element 0 (p = 1) with weight_decay 0.01, in the second run:
     *   g = 0.51, v = 0.51, p = 0.949
     *   g = -1 + 0.00949 = -0.99051, v = 0.459 - 0.99051 = -0.53151, p = 1.002151
     *   g = 0.25 + 0.01002151 = 0.26002151, v = -0.478359 + 0.26002151 = -0.21833749,
     *   p = 1.023984749 */
    const float grads[3] = {0.5f, -1.0f, 0.25f};
    const float p0[2] = {1, 2}, zero[2] = {0, 0};
    float *dp = fx_floats(&f, p0, 2), *dv = fx_floats(&f, zero, 2), *dg = fx_floats(&f, NULL, 2);
    cnb_sgd_desc plain = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.0f};
    cnb_sgd_desc decay = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
    for (int t = 0; t < 3; t++) {
        float g[2] = {grads[t], grads[t]};
        tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dg, g, sizeof g), "upload");
        tu_check_status(&f.b, f.b.api->sgd_step(f.b.ctx, &plain, 1, dp, dv, dg), "sgd plain");
        tu_check_status(&f.b, f.b.api->sgd_step(f.b.ctx, &decay, 1, dp + 1, dv + 1, dg + 1),
                        "sgd decay");
    }
    float p[2], v[2];
    tu_to_host(&f.b, p, dp, sizeof p);
    tu_to_host(&f.b, v, dv, sizeof v);
    const double want_p[2] = {1.0295, 2.018379548}, want_v[2] = {-0.245, -0.19127548};
    expect_near("sgd params after 3 steps", p, want_p, 2, HAND_TOL);
    expect_near("sgd velocity after 3 steps", v, want_v, 2, HAND_TOL);

    /* The same with decay on element 0 as well, all in one call over count = 2. */
    tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dp, p0, sizeof p0), "upload");
    tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dv, zero, sizeof zero), "upload");
    for (int t = 0; t < 3; t++) {
        float g[2] = {grads[t], grads[t]};
        tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dg, g, sizeof g), "upload");
        tu_check_status(&f.b, f.b.api->sgd_step(f.b.ctx, &decay, 2, dp, dv, dg), "sgd");
    }
    tu_to_host(&f.b, p, dp, sizeof p);
    const double want_p2[2] = {1.023984749, 2.018379548};
    expect_near("sgd with weight decay, count 2", p, want_p2, 2, HAND_TOL);
    fx_close(&f);
}

/* Adam as PyTorch documents it (torch.optim.Adam, "Algorithm"), in double:
 *   g <- g + wd*theta;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 *   mhat = m / (1-b1^t);  vhat = v / (1-b2^t);  theta <- theta - lr * mhat / (sqrt(vhat) + eps) */
static void adam_reference(double *theta, double *m, double *v, const double *g0, size_t n,
                           double lr, double b1, double b2, double eps, double wd, int t) {
    for (size_t i = 0; i < n; i++) {
        double g = g0[i] + wd * theta[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
        theta[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

Test(naive_optimizer, adam_three_steps_against_double_reference) {
    fixture f;
    fx_open(&f);
    enum { N = 64 };
    cnb_rng rng;
    cnb_rng_seed(&rng, 7);
    float *p0 = tu_random(&rng, N, -1, 1);
    float zero[N] = {0};
    float *dp = fx_floats(&f, p0, N), *dm = fx_floats(&f, zero, N), *dv = fx_floats(&f, zero, N);
    float *dg = fx_floats(&f, NULL, N);
    double theta[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) theta[i] = p0[i];
    /* lr 0.01 so three steps move the parameters visibly; the default betas and eps. */
    cnb_adam_desc d = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                       .weight_decay = 0.01f};
    for (int t = 1; t <= 3; t++) {
        float *g = tu_random(&rng, N, -2, 2);
        double gd[N];
        for (int i = 0; i < N; i++) gd[i] = g[i];
        tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dg, g, N * sizeof(float)), "upload");
        d.step = t;
        tu_check_status(&f.b, f.b.api->adam_step(f.b.ctx, &d, N, dp, dm, dv, dg), "adam_step");
        adam_reference(theta, m, v, gd, N, d.lr, d.beta1, d.beta2, d.eps, d.weight_decay, t);
        free(g);
    }
    float p[N], mm[N], vv[N], delta[N], want_delta[N], want_m[N], want_v[N];
    tu_to_host(&f.b, p, dp, sizeof p);
    tu_to_host(&f.b, mm, dm, sizeof mm);
    tu_to_host(&f.b, vv, dv, sizeof vv);
    for (int i = 0; i < N; i++) {
        delta[i] = p[i] - p0[i];
        want_delta[i] = (float)(theta[i] - p0[i]);
        want_m[i] = (float)m[i];
        want_v[i] = (float)v[i];
    }
    /* The backend works in float as PyTorch does: each of the few operations per step rounds
     * at 6e-8, so m and v agree to ~1e-6. The parameter change (about 0.03) is compared rather
     * than the parameter, so a wrong bias correction (a factor of 10 at step 1) cannot hide;
     * its error is float rounding of |p| ~ 1 against a change of 0.03: ~1e-7/0.03 = 3e-6. */
    tu_expect_close("adam m after 3 steps", mm, want_m, N, 1e-6);
    tu_expect_close("adam v after 3 steps", vv, want_v, N, 1e-6);
    tu_expect_close("adam parameter change after 3 steps", delta, want_delta, N, 2e-5);
    free(p0);
    fx_close(&f);
}

/* ---- argument validation ---- */

Test(naive_validation, conv_with_wrong_p_is_rejected_by_name) {
    fixture f;
    fx_open(&f);
    /* simplecnn's conv2 shape: (14 + 2 - 3)/1 + 1 = 14, claimed 13. */
    cnb_conv_desc d = {.n = 1, .c = 2, .h = 14, .w = 14, .k = 2, .r = 3, .s = 3, .stride_h = 1,
                       .stride_w = 1, .pad_h = 1, .pad_w = 1, .p = 13, .q = 14};
    float *buf = fx_floats(&f, NULL, 2 * 14 * 14);
    cnb_status st = f.b.api->conv_forward(f.b.ctx, &d, buf, buf, buf, NULL);
    const char *msg = f.b.api->last_error(f.b.ctx);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "status %d (%s)", st, cnb_status_str(st));
    cr_expect(strstr(msg, "conv_forward") && strstr(msg, "p=13") && strstr(msg, "=14"),
              "message does not name the kernel, p=13 and 14: \"%s\"", msg);
    d.p = 14;
    d.q = 15;
    st = f.b.api->conv_backward_filter(f.b.ctx, &d, buf, buf, buf);
    msg = f.b.api->last_error(f.b.ctx);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "conv_backward_filter") && strstr(msg, "q=15"), "message: \"%s\"",
              msg);
    d.q = 14;
    st = f.b.api->conv_backward_data(f.b.ctx, &d, buf, NULL, buf);
    msg = f.b.api->last_error(f.b.ctx);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "dy") && strstr(msg, "NULL"), "message: \"%s\"", msg);
    d.n = 0;
    st = f.b.api->conv_forward(f.b.ctx, &d, buf, buf, buf, NULL);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "n=0 accepted");
    cr_expect(strstr(f.b.api->last_error(f.b.ctx), ": n=0 must be positive"), "message: \"%s\"",
              f.b.api->last_error(f.b.ctx));
    fx_close(&f);
}

Test(naive_validation, labels_out_of_range_are_rejected_and_nothing_written) {
    fixture f;
    fx_open(&f);
    const float z[6] = {1, 2, 3, 4, 5, 6};
    const float sentinel[6] = {-5, -5, -5, -5, -5, -5};
    const int32_t too_big[2] = {0, 3}, negative[2] = {-1, 0};
    float *dz = fx_floats(&f, z, 6), *dp = fx_floats(&f, sentinel, 6);
    float *dl = fx_floats(&f, sentinel, 1);
    int32_t *dlab = fx_bytes(&f, too_big, sizeof too_big);
    cnb_status st = f.b.api->softmax_ce_forward(f.b.ctx, 2, 3, dp, dl, NULL, dz, dlab);
    const char *msg = f.b.api->last_error(f.b.ctx);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "label 3 of 3 classes accepted");
    cr_expect(strstr(msg, "labels[1]=3"), "message does not name the label: \"%s\"", msg);
    float p[6];
    tu_to_host(&f.b, p, dp, sizeof p);
    tu_expect_equal("probs untouched after a rejected batch", p, sentinel, 6);
    tu_check_status(&f.b, f.b.api->upload(f.b.ctx, dlab, negative, sizeof negative), "upload");
    st = f.b.api->softmax_ce_forward(f.b.ctx, 2, 3, dp, dl, NULL, dz, dlab);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "label -1 accepted");
    cr_expect(strstr(f.b.api->last_error(f.b.ctx), "labels[0]=-1"), "message: \"%s\"",
              f.b.api->last_error(f.b.ctx));
    st = f.b.api->softmax_ce_backward(f.b.ctx, 2, 3, dp, dz, dlab);
    cr_expect_eq(st, CNB_ERR_INVALID_ARGUMENT, "softmax_ce_backward accepted label -1");
    fx_close(&f);
}

Test(naive_validation, other_bad_arguments) {
    fixture f;
    fx_open(&f);
    float *buf = fx_floats(&f, NULL, 64);
    const cnb_backend *api = f.b.api;
    cnb_context *ctx = f.b.ctx;
    /* Each call must fail with CNB_ERR_INVALID_ARGUMENT and a message containing needle. */
#define CASE(expr, needle)                                                                    \
    do {                                                                                      \
        cnb_status st_ = (expr);                                                              \
        cr_expect_eq(st_, CNB_ERR_INVALID_ARGUMENT, "%s returned %s", #expr,                  \
                     cnb_status_str(st_));                                                    \
        cr_expect(strstr(api->last_error(ctx), needle), "%s: message \"%s\" lacks \"%s\"",    \
                  #expr, api->last_error(ctx), needle);                                       \
    } while (0)
    cnb_pool_desc pd = {.mode = CNB_POOL_MAX, .n = 1, .c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2,
                        .stride_h = 2, .stride_w = 2, .p = 2, .q = 3};
    CASE(api->pool_forward(ctx, &pd, buf, buf, NULL), "q=3");
    pd.q = 2;
    pd.mode = 7;
    CASE(api->pool_forward(ctx, &pd, buf, buf, NULL), "mode=7");
    pd.mode = CNB_POOL_MAX;
    pd.pad_h = 2;
    pd.p = 4;
    CASE(api->pool_forward(ctx, &pd, buf, buf, NULL), "smaller than the window");
    CASE(api->gemm(ctx, 0, 0, 2, 2, 3, 1, buf, 2, buf, 2, 0, buf, 2), "lda=2");
    CASE(api->gemm(ctx, 0, 1, 2, 2, 3, 1, buf, 3, buf, 2, 0, buf, 2), "ldb=2");
    CASE(api->gemm(ctx, 2, 0, 2, 2, 3, 1, buf, 3, buf, 2, 0, buf, 2), "trans_a=2");
    CASE(api->gemm(ctx, 0, 0, 0, 2, 3, 1, buf, 3, buf, 2, 0, buf, 2), "m=0");
    CASE(api->activation_forward(ctx, 9, 4, buf, buf, NULL), "unknown activation 9");
    CASE(api->activation_forward(ctx, CNB_ACT_PRELU, 4, buf, buf, NULL), "slope");
    CASE(api->corr2d(ctx, buf, buf, buf, 2, 2, 3, 3), "larger than the input");
    cnb_adam_desc ad = {.lr = 0.001f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 0};
    CASE(api->adam_step(ctx, &ad, 4, buf, buf, buf, buf), "step=0");
    CASE(api->bias_backward(ctx, buf, buf, 1, -3, 1), "c=-3");
    CASE(api->upload(ctx, NULL, buf, 4), "NULL");
#undef CASE
    cr_expect_eq(api->last_error(NULL)[0], '\0', "last_error(NULL) must be \"\"");
    fx_close(&f);
}
