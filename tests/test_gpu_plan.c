/* test_gpu_plan.c — the host-side logic of the GPU backends, which runs without a device:
 * argument validation, the tiled SGEMM's grid and split-K plan, the implicit-GEMM index maps of
 * the three convolutions (run here as plain GEMMs against direct convolution loops written in
 * this file), the pooling cover ranges, version formatting; and the cudnn backend's descriptor
 * parameters, algorithm rule, per-shape cache and version rules. The plan sources are compiled
 * into this test directly (they are plain C with no CUDA header). */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/cuda/cuda_plan.c"
#include "../backends/cudnn/cudnn_plan.c"
#include "testutil.h"

/* ---- validation ---- */

Test(gpu_plan, conv_validation) {
    char err[256];
    cnb_conv_desc d = tu_conv_desc(64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1);
    cr_expect_eq(cnb_gpu_check_conv("conv_forward", &d, err, sizeof err), CNB_OK, "%s", err);
    cnb_conv_desc bad = d;
    bad.p = 27;
    cr_expect_eq(cnb_gpu_check_conv("conv_forward", &bad, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err, "conv_forward") == err && strstr(err, "28x28"), "message: %s", err);
    bad = d;
    bad.pad_w = -1;
    cr_expect_eq(cnb_gpu_check_conv("f", &bad, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    bad = d;
    bad.stride_h = 0;
    cr_expect_eq(cnb_gpu_check_conv("f", &bad, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err, "stride_h=0"), "message: %s", err);
    bad = tu_conv_desc(1, 1, 2, 2, 1, 5, 5, 1, 1, 0, 0); /* filter larger than the padded input */
    bad.p = bad.q = 1;
    cr_expect_eq(cnb_gpu_check_conv("f", &bad, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(cnb_gpu_check_conv("f", NULL, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    /* 2^31 elements: valid, but past the kernels' 32-bit indexing */
    cnb_conv_desc big = tu_conv_desc(65536, 1, 256, 128, 1, 1, 1, 1, 1, 0, 0);
    cr_expect_eq(cnb_gpu_check_conv("f", &big, err, sizeof err), CNB_ERR_UNSUPPORTED, "%s", err);
}

Test(gpu_plan, pool_gemm_misc_validation) {
    char err[256];
    cnb_pool_desc p = {.mode = CNB_POOL_MAX, .n = 2, .c = 3, .h = 9, .w = 7, .kh = 3, .kw = 3,
                       .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .p = 5, .q = 4};
    cr_expect_eq(cnb_gpu_check_pool("pool_forward", &p, err, sizeof err), CNB_OK, "%s", err);
    cnb_pool_desc bad = p;
    bad.pad_h = 3; /* max pooling: padding must be smaller than the window */
    bad.p = (9 + 6 - 3) / 2 + 1;
    cr_expect_eq(cnb_gpu_check_pool("pool_forward", &bad, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    bad.mode = CNB_POOL_AVG; /* the same padding is fine for an average */
    cr_expect_eq(cnb_gpu_check_pool("pool_forward", &bad, err, sizeof err), CNB_OK, "%s", err);
    bad = p;
    bad.mode = 7;
    cr_expect_eq(cnb_gpu_check_pool("pool_forward", &bad, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    bad = p;
    bad.q = 3;
    cr_expect_eq(cnb_gpu_check_pool("pool_forward", &bad, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);

    cr_expect_eq(cnb_gpu_check_gemm(0, 1, 64, 128, 3136, 3136, 3136, 128, err, sizeof err), CNB_OK,
                 "%s", err);
    cr_expect_eq(cnb_gpu_check_gemm(1, 0, 128, 3136, 64, 128, 3136, 3136, err, sizeof err), CNB_OK,
                 "%s", err);
    cr_expect_eq(cnb_gpu_check_gemm(0, 0, 4, 4, 4, 3, 4, 4, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err, "lda=3"), "message: %s", err);
    cr_expect_eq(cnb_gpu_check_gemm(1, 0, 5, 4, 4, 4, 4, 4, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT, "transposed A stored (k, m): lda must be >= m");
    cr_expect_eq(cnb_gpu_check_gemm(0, 1, 4, 6, 4, 4, 3, 6, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT, "transposed B stored (n, k): ldb must be >= k");
    cr_expect_eq(cnb_gpu_check_gemm(2, 0, 4, 4, 4, 4, 4, 4, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(cnb_gpu_check_gemm(0, 0, 65536, 65536, 4, 4, 65536, 65536, err, sizeof err),
                 CNB_ERR_UNSUPPORTED, "C of 2^32 elements");
    cr_expect_eq(cnb_gpu_check_corr2d(4, 4, 3, 3, err, sizeof err), CNB_OK);
    cr_expect_eq(cnb_gpu_check_corr2d(4, 4, 5, 3, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(cnb_gpu_check_activation("a", CNB_ACT_PRELU, 1, err, sizeof err), CNB_OK);
    cr_expect_eq(cnb_gpu_check_activation("a", 4, 1, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(cnb_gpu_check_activation("a", CNB_ACT_RELU, 0, err, sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(cnb_gpu_check_nchw("b", 64, 32, 784, err, sizeof err), CNB_OK);
    cr_expect_eq(cnb_gpu_check_nchw("b", 64, 0, 784, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
    cr_expect_eq(cnb_gpu_check_softmax("s", 64, 10, err, sizeof err), CNB_OK);
    cr_expect_eq(cnb_gpu_check_softmax("s", 0, 10, err, sizeof err), CNB_ERR_INVALID_ARGUMENT);
}

/* ---- SGEMM tiling ---- */

/* Invariants of any plan: tiles cover the output exactly, slices cover k exactly with none
 * empty, slice length a multiple of the k-step, grid within CUDA's limits, scratch sized. */
static void plan_invariants(const cnb_gemm_plan *p, int m, int n, int k) {
    cr_expect_eq(p->grid_x, (n + CNB_TILE_N - 1) / CNB_TILE_N, "grid_x for n=%d", n);
    /* 32-row tiles exactly when m <= 32: a 64-row tile would be at least half empty */
    cr_expect_eq(p->tile_m, m <= 32 ? CNB_TILE_M_SMALL : CNB_TILE_M, "tile_m for m=%d", m);
    cr_expect_eq(p->grid_y, (m + p->tile_m - 1) / p->tile_m, "grid_y for m=%d", m);
    /* few-tile problems may go up to 2 x 200 SMs (the most the loops below use) */
    int cap = (long long)p->grid_x * p->grid_y <= CNB_FEW_TILES ? 400 : CNB_MAX_SPLITS;
    cr_expect(p->splits >= 1 && p->splits <= cap, "splits %d", p->splits);
    cr_expect_eq(p->k_per_split % CNB_TILE_K, 0, "k_per_split %d", p->k_per_split);
    cr_expect((long long)p->splits * p->k_per_split >= k, "slices %d x %d miss k=%d", p->splits,
              p->k_per_split, k);
    cr_expect((long long)(p->splits - 1) * p->k_per_split < k, "an empty last slice: %d x %d, k=%d",
              p->splits, p->k_per_split, k);
    cr_expect(p->grid_y <= CNB_GRID_YZ_MAX && p->splits <= CNB_GRID_YZ_MAX);
    if (p->splits > 1) {
        cr_expect_eq(p->partial_floats, (size_t)p->splits * m * n);
        cr_expect(p->reduce_blocks >= 1);
    } else {
        cr_expect_eq(p->partial_floats, 0);
    }
}

Test(gpu_plan, gemm_plan_tiles_and_split_k) {
    char err[256];
    cnb_gemm_plan p;
    /* simplecnn fc1 forward: (64, 128) from k = 3136 — two tiles, so split k on 132 SMs */
    cr_assert_eq(cnb_plan_gemm(&p, 64, 128, 3136, 132, err, sizeof err), CNB_OK, "%s", err);
    plan_invariants(&p, 64, 128, 3136);
    cr_expect_gt(p.splits, 1, "few tiles and long k should split (got %d)", p.splits);
    /* at least four k-steps per slice */
    cr_expect_geq(p.k_per_split, 4 * CNB_TILE_K);
    /* the weight gradient of simplecnn.conv1: (32, 9) from k = 64*784 */
    cr_assert_eq(cnb_plan_gemm(&p, 32, 9, 64 * 784, 132, err, sizeof err), CNB_OK);
    plan_invariants(&p, 32, 9, 64 * 784);
    /* one tile: up to twice the SMs (264 on 132), not the 64 of larger problems; each slice
     * still at least four k-steps, and every SM busy */
    cr_expect(p.splits > CNB_MAX_SPLITS && p.splits <= 2 * 132,
              "one tile, k=50176 on 132 SMs: %d slices", p.splits);
    cr_expect_geq(p.splits, 132, "%d slices leave SMs idle", p.splits);
    cr_expect_geq(p.k_per_split, 4 * CNB_TILE_K);
    /* two tiles (m = 64, n = 65): the same cap; three tiles keep 64 */
    cr_assert_eq(cnb_plan_gemm(&p, 64, 65, 64 * 784, 132, err, sizeof err), CNB_OK);
    plan_invariants(&p, 64, 65, 64 * 784);
    cr_expect(p.splits > CNB_MAX_SPLITS && p.splits <= 2 * 132, "two tiles: %d", p.splits);
    cr_assert_eq(cnb_plan_gemm(&p, 64, 129, 64 * 784, 132, err, sizeof err), CNB_OK);
    plan_invariants(&p, 64, 129, 64 * 784);
    cr_expect_eq(p.splits, CNB_MAX_SPLITS, "three tiles: %d", p.splits);
    cr_expect_eq(cnb_plan_max_splits(1, 4), CNB_MAX_SPLITS); /* few SMs: the old cap */
    cr_expect_eq(cnb_plan_max_splits(2, 132), 264);
    cr_expect_eq(cnb_plan_max_splits(3, 132), CNB_MAX_SPLITS);
    cr_expect_eq(cnb_plan_max_splits(1, 100000), CNB_GRID_YZ_MAX);
    /* k at the int boundary: refused, never a slice end that wraps */
    cr_expect_eq(cnb_plan_gemm(&p, 1, 1, INT_MAX, 132, err, sizeof err), CNB_ERR_UNSUPPORTED);
    cr_assert_eq(cnb_plan_gemm(&p, 1, 1, INT_MAX - 2 * CNB_TILE_K, 132, err, sizeof err),
                 CNB_OK, "%s", err);
    plan_invariants(&p, 1, 1, INT_MAX - 2 * CNB_TILE_K);
    /* the last slice's start and a k-step past the end stay within int (the kernel takes
     * the slice's end as min(K, start + k_per_split) in 64 bits) */
    cr_expect((long long)(p.splits - 1) * p.k_per_split + 2 * CNB_TILE_K <= INT_MAX, "%d x %d",
              p.splits, p.k_per_split);
    /* conv forward of simplecnn.conv2: (64, 64*196) — 196 tiles fill 132 SMs, no split */
    cr_assert_eq(cnb_plan_gemm(&p, 64, 64 * 196, 288, 132, err, sizeof err), CNB_OK);
    plan_invariants(&p, 64, 64 * 196, 288);
    cr_expect_eq(p.splits, 1);
    /* short k never splits, whatever the tiles */
    cr_assert_eq(cnb_plan_gemm(&p, 10, 10, 100, 132, err, sizeof err), CNB_OK);
    plan_invariants(&p, 10, 10, 100);
    cr_expect_eq(p.splits, 1);
    /* odd sizes and one SM */
    const int sizes[][3] = {{1, 1, 1}, {65, 63, 17}, {1, 1, 100000}, {3, 70, 129}, {200, 1, 4096}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int sms = 1; sms <= 200; sms *= 7) {
            cr_assert_eq(cnb_plan_gemm(&p, sizes[i][0], sizes[i][1], sizes[i][2], sms, err,
                                       sizeof err),
                         CNB_OK, "%s", err);
            plan_invariants(&p, sizes[i][0], sizes[i][1], sizes[i][2]);
        }
    /* rows beyond a grid's y limit are refused, not silently wrapped */
    cr_expect_eq(cnb_plan_gemm(&p, 65536 * 64 + 1, 1, 1, 132, err, sizeof err),
                 CNB_ERR_UNSUPPORTED);
    /* the plan is a function of its inputs (determinism of the split order) */
    cnb_gemm_plan a, b;
    cnb_plan_gemm(&a, 64, 128, 3136, 132, err, sizeof err);
    cnb_plan_gemm(&b, 64, 128, 3136, 132, err, sizeof err);
    cr_expect(memcmp(&a, &b, sizeof a) == 0);
}

/* The grid-stride loop of the element-wise kernels, run on the host with the launch's
 * variables: at total = INT_MAX the last thread's step past the end must not wrap. */
Test(gpu_plan, grid_stride_loop_ends_at_int_max) {
    struct {
        unsigned x;
    } blockIdx, threadIdx, blockDim = {CNB_EW_THREADS}, gridDim = {CNB_EW_MAX_BLOCKS};
    const long long total = INT_MAX, stride = (long long)CNB_EW_THREADS * CNB_EW_MAX_BLOCKS;
    const unsigned who[][2] = {{0, 0}, {CNB_EW_MAX_BLOCKS - 1, CNB_EW_THREADS - 1}, {17, 3}};
    for (size_t t = 0; t < sizeof who / sizeof who[0]; t++) {
        blockIdx.x = who[t][0];
        threadIdx.x = who[t][1];
        long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x, count = 0, last = -1;
        CNB_GRID_STRIDE(e64, total) {
            cr_assert(e64 > last && e64 < total, "index %lld after %lld", e64, last);
            last = e64;
            count++;
        }
        cr_expect_eq(count, (total - start + stride - 1) / stride, "thread %lld", start);
        cr_expect_geq(last + stride, total, "thread %lld stopped early at %lld", start, last);
    }
}

Test(gpu_plan, block_counts) {
    cr_expect_eq(cnb_plan_blocks(0, 256, 100), 1);
    cr_expect_eq(cnb_plan_blocks(256, 256, 100), 1);
    cr_expect_eq(cnb_plan_blocks(257, 256, 100), 2);
    cr_expect_eq(cnb_plan_blocks((size_t)1 << 40, 256, 100), 100);
    cr_expect_eq(cnb_plan_reduce_blocks(1), 1);
    cr_expect_eq(cnb_plan_reduce_blocks((size_t)1 << 30), CNB_REDUCE_MAX_BLOCKS);
    cr_expect_eq(cnb_plan_reduce_blocks(100000), (100000 + 2047) / 2048);
    cr_expect_eq(cnb_plan_reduce_blocks(256 * 6 * 784), CNB_REDUCE_MAX_BLOCKS);
}

/* ---- implicit-GEMM index maps, run as plain GEMMs on the CPU ---- */

/* The direct convolution's connections (tu_conv_each_connection), independent of the maps. */
typedef struct conv_ref {
    const float *x, *w, *dy;
    double *y, *dx, *dw;
} conv_ref;

static void forward_term(void *user, int yi, int xi, int wi) {
    conv_ref *ref = user;
    ref->y[yi] += (double)ref->x[xi] * ref->w[wi];
}

/* dx and dw by scattering each dy through the forward's connections. */
static void backward_terms(void *user, int yi, int xi, int wi) {
    conv_ref *ref = user;
    double g = ref->dy[yi];
    ref->dx[xi] += g * ref->w[wi];
    ref->dw[wi] += g * ref->x[xi];
}

static void ref_forward(const cnb_conv_desc *d, double *y, const float *x, const float *w) {
    memset(y, 0, sizeof(double) * d->n * d->k * d->p * d->q);
    conv_ref ref = {.x = x, .w = w, .y = y};
    tu_conv_each_connection(d, &ref, forward_term);
}

static void ref_backward(const cnb_conv_desc *d, double *dx, double *dw, const float *dy,
                         const float *x, const float *w) {
    memset(dx, 0, sizeof(double) * d->n * d->c * d->h * d->w);
    memset(dw, 0, sizeof(double) * d->k * d->c * d->r * d->s);
    conv_ref ref = {.x = x, .w = w, .dy = dy, .dx = dx, .dw = dw};
    tu_conv_each_connection(d, &ref, backward_terms);
}

static float *ints(cnb_rng *rng, size_t n) { return tu_small_ints(rng, n, -3, 3, 0.1); }

/* One pass's index maps: its GEMM sizes, its A and B operands and where a result goes. */
typedef struct gemm_maps {
    const char *out_name; /* for messages: "y", "dx", "dw" */
    void (*mnk)(const cnb_conv_geom *g, int *m, int *n, int *k);
    float (*a)(const cnb_conv_geom *g, const float *src, int row, int kk);
    float (*b)(const cnb_conv_geom *g, const float *src, int kk, int col);
    int (*out_index)(const cnb_conv_geom *g, int row, int col);
} gemm_maps;

static const gemm_maps forward_maps = {"y", cnb_conv_forward_mnk, cnb_conv_forward_a,
                                       cnb_conv_forward_b, cnb_conv_forward_y_index};
static const gemm_maps backward_data_maps = {"dx", cnb_conv_backward_data_mnk,
                                             cnb_conv_backward_data_a, cnb_conv_backward_data_b,
                                             cnb_conv_backward_data_dx_index};
static const gemm_maps backward_filter_maps = {
    "dw", cnb_conv_backward_filter_mnk, cnb_conv_backward_filter_a, cnb_conv_backward_filter_b,
    cnb_conv_backward_filter_dw_index};

/* The pass as a plain GEMM in double: out[index] = sum A B, counting the writes per index. */
static void run_maps(const gemm_maps *mp, const cnb_conv_geom *g, const float *a_src,
                     const float *b_src, double *out, int *hits, size_t count, size_t t) {
    int m, n, k;
    mp->mnk(g, &m, &n, &k);
    for (int row = 0; row < m; row++)
        for (int col = 0; col < n; col++) {
            double s = 0;
            for (int kk = 0; kk < k; kk++)
                s += (double)mp->a(g, a_src, row, kk) * mp->b(g, b_src, kk, col);
            int oi = mp->out_index(g, row, col);
            cr_assert(oi >= 0 && (size_t)oi < count, "case %zu: %s index %d out of range", t,
                      mp->out_name, oi);
            out[oi] = s;
            hits[oi]++;
        }
}

/* Outputs that differ from the direct loops or were not written exactly once. */
static size_t count_bad(const double *got, const double *ref, const int *hits, size_t count) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) bad += got[i] != ref[i] || hits[i] != 1;
    return bad;
}

Test(gpu_plan, conv_index_maps_equal_direct_convolution) {
    const cnb_conv_desc cases[] = {
        tu_conv_desc(2, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1),
        tu_conv_desc(2, 6, 12, 12, 12, 5, 5, 1, 1, 0, 0),
        tu_conv_desc(3, 12, 4, 4, 24, 2, 2, 1, 1, 1, 1),
        tu_conv_desc(1, 3, 11, 9, 5, 3, 2, 2, 2, 1, 0),
        tu_conv_desc(2, 3, 17, 12, 5, 3, 5, 2, 1, 1, 2),
        tu_conv_desc(3, 2, 10, 11, 4, 4, 3, 3, 2, 0, 1),
        tu_conv_desc(2, 2, 5, 6, 3, 3, 3, 1, 1, 2, 2),
        tu_conv_desc(4, 8, 9, 9, 16, 1, 1, 1, 1, 0, 0),
        tu_conv_desc(1, 2, 7, 7, 3, 7, 7, 3, 3, 3, 3)};
    cnb_rng rng;
    cnb_rng_seed(&rng, 5);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const cnb_conv_desc *d = &cases[t];
        char err[256];
        cr_assert_eq(cnb_gpu_check_conv("t", d, err, sizeof err), CNB_OK, "case %zu: %s", t, err);
        cnb_conv_geom g;
        cnb_conv_geom_init(&g, d);
        size_t nx = (size_t)d->n * d->c * d->h * d->w, nw = (size_t)d->k * d->c * d->r * d->s,
               ny = (size_t)d->n * d->k * d->p * d->q;
        float *x = ints(&rng, nx), *w = ints(&rng, nw), *dy = ints(&rng, ny);
        double *ry = calloc(ny, sizeof(double)), *rdx = calloc(nx, sizeof(double)),
               *rdw = calloc(nw, sizeof(double));
        double *gy = calloc(ny, sizeof(double)), *gdx = calloc(nx, sizeof(double)),
               *gdw = calloc(nw, sizeof(double));
        int *hits_y = calloc(ny, sizeof(int)), *hits_dx = calloc(nx, sizeof(int)),
            *hits_dw = calloc(nw, sizeof(int));
        ref_forward(d, ry, x, w);
        ref_backward(d, rdx, rdw, dy, x, w);
        /* each pass: y = A B with the maps, each output index written exactly once */
        run_maps(&forward_maps, &g, w, x, gy, hits_y, ny, t);
        run_maps(&backward_data_maps, &g, w, dy, gdx, hits_dx, nx, t);
        run_maps(&backward_filter_maps, &g, dy, x, gdw, hits_dw, nw, t);
        size_t bad = count_bad(gy, ry, hits_y, ny);
        cr_expect_eq(bad, 0, "case %zu: forward map differs at %zu of %zu outputs", t, bad, ny);
        bad = count_bad(gdx, rdx, hits_dx, nx);
        cr_expect_eq(bad, 0, "case %zu: backward-data map differs at %zu of %zu", t, bad, nx);
        bad = count_bad(gdw, rdw, hits_dw, nw);
        cr_expect_eq(bad, 0, "case %zu: backward-filter map differs at %zu of %zu", t, bad, nw);
        free(x), free(w), free(dy), free(ry), free(rdx), free(rdw), free(gy), free(gdx), free(gdw);
        free(hits_y), free(hits_dx), free(hits_dw);
    }
}

Test(gpu_plan, pool_covering_matches_definition) {
    /* input i is covered by output o iff o*stride - pad <= i < o*stride - pad + win */
    for (int win = 1; win <= 4; win++)
        for (int stride = 1; stride <= 3; stride++)
            for (int pad = 0; pad < win; pad++)
                for (int in = win; in <= 9; in++) {
                    int out = (in + 2 * pad - win) / stride + 1;
                    for (int i = 0; i < in; i++) {
                        int lo, hi;
                        cnb_pool_covering(i, pad, win, stride, out, &lo, &hi);
                        for (int o = 0; o < out; o++) {
                            int covers = o * stride - pad <= i && i < o * stride - pad + win;
                            int in_range = o >= lo && o <= hi;
                            cr_assert_eq(covers, in_range,
                                         "win %d stride %d pad %d in %d: input %d output %d: "
                                         "covers %d, range [%d, %d]",
                                         win, stride, pad, in, i, o, covers, lo, hi);
                        }
                    }
                }
}

Test(gpu_plan, version_formats) {
    char buf[32];
    cnb_format_cuda_version(13000, buf, sizeof buf);
    cr_expect_str_eq(buf, "13.0");
    cnb_format_cuda_version(12040, buf, sizeof buf);
    cr_expect_str_eq(buf, "12.4");
    cnb_format_lib_version(91900, buf, sizeof buf);
    cr_expect_str_eq(buf, "9.19.0");
    cnb_format_lib_version(130100, buf, sizeof buf);
    cr_expect_str_eq(buf, "13.1.0");
}

/* NVIDIA's rule: built against x.z, an older x.y (y < z) is not guaranteed to work (refused);
 * a newer minor or another patch level is fine; another major never. One rule for both
 * libraries (10000*major + 100*minor + patch). */
Test(gpu_plan, cudnn_cublas_version_rule) {
    struct {
        long compiled, loaded;
        int want;
        const char *why;
    } cases[] = {
        /* cuDNN */
        {91900, 91900, CNB_VERSION_EQUAL, "cuDNN same"},
        {91900, 90100, CNB_VERSION_REFUSE, "cuDNN older minor (9.1 under a 9.19 build)"},
        {91900, 91800, CNB_VERSION_REFUSE, "cuDNN one minor older"},
        {91900, 91805, CNB_VERSION_REFUSE, "cuDNN older minor, higher patch"},
        {91900, 92000, CNB_VERSION_COMPAT, "cuDNN newer minor"},
        {91900, 92003, CNB_VERSION_COMPAT, "cuDNN newer minor and patch"},
        {91901, 91900, CNB_VERSION_COMPAT, "cuDNN older patch only"},
        {91900, 91902, CNB_VERSION_COMPAT, "cuDNN newer patch only"},
        {91900, 80907, CNB_VERSION_REFUSE, "cuDNN 8 under a cuDNN 9 build"},
        {91900, 100000, CNB_VERSION_REFUSE, "cuDNN 10 under a cuDNN 9 build"},
        /* cuBLAS */
        {130100, 130100, CNB_VERSION_EQUAL, "cuBLAS same"},
        {130100, 130000, CNB_VERSION_REFUSE, "cuBLAS older minor"},
        {130100, 130200, CNB_VERSION_COMPAT, "cuBLAS newer minor"},
        {130100, 130104, CNB_VERSION_COMPAT, "cuBLAS patch only"},
        {130103, 130100, CNB_VERSION_COMPAT, "cuBLAS older patch only"},
        {130100, 120304, CNB_VERSION_REFUSE, "cuBLAS 12 under a 13 build"},
        {120304, 130100, CNB_VERSION_REFUSE, "cuBLAS 13 under a 12 build"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(cnb_cudnn_version_compat(cases[i].compiled, cases[i].loaded), cases[i].want,
                     "%s: compiled %ld loaded %ld", cases[i].why, cases[i].compiled,
                     cases[i].loaded);

    char buf[400];
    cnb_cudnn_version_explain("cuDNN", 91900, 90100, buf, sizeof buf);
    cr_expect(strstr(buf, "9.19.0") && strstr(buf, "9.1.0") && strstr(buf, "older") &&
                  strstr(buf, "not guaranteed"),
              "older minor names both versions and why: %s", buf);
    cnb_cudnn_version_explain("cuBLAS", 130100, 120304, buf, sizeof buf);
    cr_expect(strstr(buf, "cuBLAS") && strstr(buf, "13.1.0") && strstr(buf, "12.3.4") &&
                  strstr(buf, "major"),
              "other major: %s", buf);
    cnb_cudnn_version_explain("cuDNN", 91900, 92001, buf, sizeof buf);
    cr_expect(strstr(buf, "9.20.1") && strstr(buf, "newer minor") && strstr(buf, "supported"),
              "newer minor: %s", buf);
    cnb_cudnn_version_explain("cuBLAS", 130100, 130102, buf, sizeof buf);
    cr_expect(strstr(buf, "patch") && strstr(buf, "supported"), "patch only: %s", buf);
    cnb_cudnn_version_explain("cuDNN", 91900, 91900, buf, sizeof buf);
    cr_expect_str_eq(buf, "cuDNN 9.19.0 (compiled and loaded)");

    /* The CUDA runtime cuDNN was built with (1000*major + 10*minor): majors must agree. */
    cr_expect(cnb_cudnn_cudart_compat(13000, 13020));
    cr_expect(cnb_cudnn_cudart_compat(12080, 12040));
    cr_expect(!cnb_cudnn_cudart_compat(13000, 12090), "cuDNN for CUDA 12 under a CUDA 13 build");
    cr_expect(!cnb_cudnn_cudart_compat(12040, 13000));
}

/* ---- cudnn backend: descriptors, algorithm rule, cache ---- */

Test(gpu_plan, cudnn_descriptor_params) {
    cnb_conv_desc d = tu_conv_desc(64, 32, 14, 14, 64, 3, 3, 1, 2, 1, 0);
    cnb_cudnn_conv_params p;
    cnb_cudnn_conv_params_from(&d, &p);
    int x[4] = {64, 32, 14, 14}, w[4] = {64, 32, 3, 3}, y[4] = {64, 64, d.p, d.q},
        b[4] = {1, 64, 1, 1};
    cr_expect(memcmp(p.x, x, sizeof x) == 0 && memcmp(p.w, w, sizeof w) == 0 &&
              memcmp(p.y, y, sizeof y) == 0 && memcmp(p.bias, b, sizeof b) == 0);
    cr_expect(p.pad[0] == 1 && p.pad[1] == 0 && p.stride[0] == 1 && p.stride[1] == 2 &&
              p.dilation[0] == 1 && p.dilation[1] == 1);
    cnb_pool_desc pd = {.mode = CNB_POOL_MAX, .n = 2, .c = 3, .h = 9, .w = 7, .kh = 3, .kw = 2,
                        .stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 0, .p = 5, .q = 6};
    cnb_cudnn_pool_params pp;
    pd.mode = CNB_POOL_AVG;
    cnb_cudnn_pool_params_from(&pd, &pp);
    cr_expect(pp.window[0] == 3 && pp.window[1] == 2 && pp.pad[0] == 1 && pp.stride[0] == 2 &&
              pp.stride[1] == 1 && pp.y[2] == 5 && pp.y[3] == 6 && pp.x[1] == 3);
    /* Max pooling goes to the argmax kernels (the ABI's first-maximum tie rule), average to
     * cuDNN. */
    cr_expect(cnb_cudnn_pool_uses_cudnn(CNB_POOL_AVG));
    cr_expect(!cnb_cudnn_pool_uses_cudnn(CNB_POOL_MAX));
}

Test(gpu_plan, direct_conv_passes_over_transforms) {
    /* fastest first: WINOGRAD (fwd 6), FFT (fwd 4), IMPLICIT_GEMM (fwd 0) */
    cnb_cudnn_perf perf[] = {
        {.algo = 6, .ok = 1, .time_ms = 0.1f, .deterministic = 1, .fma_math = 1},
        {.algo = 4, .ok = 1, .time_ms = 0.2f, .deterministic = 1, .fma_math = 1},
        {.algo = 0, .ok = 1, .time_ms = 0.3f, .deterministic = 1, .fma_math = 1},
    };
    cr_expect_eq(cnb_cudnn_pick(perf, 3, 0, 0, SIZE_MAX), 0, "default: the fastest, Winograd");
    cnb_cudnn_keep_sums_only(perf, 3, CNB_CUDNN_FWD);
    cr_expect_eq(cnb_cudnn_pick(perf, 3, 0, 0, SIZE_MAX), 2, "direct_conv: IMPLICIT_GEMM");
    /* backward filter: FFT (2) and WINOGRAD_NONFUSED (5) go, ALGO_3 stays */
    cnb_cudnn_perf bwd[] = {{.algo = 2, .ok = 1}, {.algo = 5, .ok = 1}, {.algo = 3, .ok = 1}};
    cnb_cudnn_keep_sums_only(bwd, 3, CNB_CUDNN_BWD_FILTER);
    cr_expect(!bwd[0].ok && !bwd[1].ok && bwd[2].ok);
}

Test(gpu_plan, cudnn_pick_rule) {
    /* cuDNN lists results fastest first */
    cnb_cudnn_perf perf[] = {
        {.algo = 6, .ok = 1, .time_ms = 0.1f, .memory = 1000, .deterministic = 1, .fma_math = 0},
        {.algo = 4, .ok = 0, .time_ms = 0.2f, .memory = 0, .deterministic = 1, .fma_math = 1},
        {.algo = 0, .ok = 1, .time_ms = 0.3f, .memory = 0, .deterministic = 0, .fma_math = 1},
        {.algo = 1, .ok = 1, .time_ms = 0.4f, .memory = 1 << 20, .deterministic = 1, .fma_math = 1},
    };
    cr_expect_eq(cnb_cudnn_pick(perf, 4, 0, 1, SIZE_MAX), 0, "TF32 allowed: the fastest");
    cr_expect_eq(cnb_cudnn_pick(perf, 4, 0, 0, SIZE_MAX), 2, "strict: FMA math only, skip failed");
    cr_expect_eq(cnb_cudnn_pick(perf, 4, 1, 0, SIZE_MAX), 3, "strict + deterministic");
    cr_expect_eq(cnb_cudnn_pick(perf, 4, 1, 0, 1000), -1, "workspace limit leaves nothing");
    cr_expect_eq(cnb_cudnn_pick(perf, 0, 0, 1, SIZE_MAX), -1);
    cr_expect_str_eq(cnb_cudnn_algo_name(CNB_CUDNN_FWD, 1), "IMPLICIT_PRECOMP_GEMM");
    cr_expect_str_eq(cnb_cudnn_algo_name(CNB_CUDNN_BWD_FILTER, 3), "ALGO_3");
    cr_expect_str_eq(cnb_cudnn_algo_name(CNB_CUDNN_BWD_DATA, 5), "WINOGRAD_NONFUSED");
    cr_expect_str_eq(cnb_cudnn_algo_name(CNB_CUDNN_FWD, 99), "?");
    cr_expect_str_eq(cnb_cudnn_algo_name(CNB_CUDNN_FWD, -1), "?");
    cr_expect(cnb_cudnn_algo_sums_products(CNB_CUDNN_FWD, 3) &&
              !cnb_cudnn_algo_sums_products(CNB_CUDNN_FWD, 6) &&
              cnb_cudnn_algo_sums_products(CNB_CUDNN_BWD_FILTER, 3) &&
              !cnb_cudnn_algo_sums_products(CNB_CUDNN_BWD_DATA, 2));
}

/* A scripted cudnnFind (heuristic 0) and *_v7 (heuristic 1) for cnb_cudnn_choose. */
typedef struct fake_query {
    cnb_status status[2];
    const cnb_cudnn_perf *perf[2];
    int count[2];
    int calls[2];
} fake_query;

static cnb_status fake_query_fn(void *user, int heuristic, cnb_cudnn_perf *perf, int max,
                                int *count, char *err, size_t err_len) {
    fake_query *f = user;
    f->calls[heuristic]++;
    *count = 0;
    if (f->status[heuristic] != CNB_OK) {
        snprintf(err, err_len, "%s: CUDNN_STATUS_SCRIPTED (%d)",
                 heuristic ? "cudnnGetConvolutionForwardAlgorithm_v7"
                           : "cudnnFindConvolutionForwardAlgorithm",
                 (int)f->status[heuristic]);
        return f->status[heuristic];
    }
    int n = f->count[heuristic] < max ? f->count[heuristic] : max;
    for (int i = 0; i < n; i++) perf[i] = f->perf[heuristic][i];
    *count = n;
    return CNB_OK;
}

Test(gpu_plan, cudnn_choose_find_heuristics_and_cached_failure) {
    /* Find's measured order (fastest first) and the heuristics' order differ on purpose. */
    const cnb_cudnn_perf find[] = {
        {.algo = 0, .ok = 1, .time_ms = 0.1f, .deterministic = 0, .fma_math = 1, .math_type = 3},
        {.algo = 1, .ok = 1, .time_ms = 0.2f, .deterministic = 1, .fma_math = 1, .math_type = 3},
    };
    const cnb_cudnn_perf heur[] = {
        {.algo = 2, .ok = 1, .time_ms = -1, .deterministic = 0, .fma_math = 1, .math_type = 3},
        {.algo = 6, .ok = 1, .time_ms = -1, .memory = 64, .deterministic = 1, .fma_math = 0,
         .math_type = 0},
        {.algo = 7, .ok = 1, .time_ms = -1, .memory = 128, .deterministic = 1, .fma_math = 1,
         .math_type = 3},
    };
    char err[512], value[200];
    cnb_cudnn_choice c;

    /* not deterministic: Find's fastest acceptable, the heuristics never asked */
    fake_query f = {.perf = {find, heur}, .count = {2, 3}};
    cr_assert_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 0, 0, SIZE_MAX, "fwd", err, sizeof err),
                 CNB_OK, "%s", err);
    cr_expect(c.algo == 0 && c.source == CNB_CUDNN_FROM_FIND && c.time_ms == 0.1f && !c.failed);
    cr_expect(f.calls[0] == 1 && f.calls[1] == 0);

    /* deterministic: no Find at all; the first deterministic acceptable heuristic entry (the
     * FMA one in strict fp32, skipping the TF32 one) */
    f = (fake_query){.perf = {find, heur}, .count = {2, 3}};
    cr_assert_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 1, 0, SIZE_MAX, "fwd", err, sizeof err),
                 CNB_OK, "%s", err);
    cr_expect_eq(f.calls[0], 0, "deterministic mode must not run cudnnFind");
    cr_expect(c.algo == 7 && c.deterministic && c.fma_math && c.workspace == 128 &&
              c.source == CNB_CUDNN_FROM_HEURISTIC_DET && c.time_ms == -1.0f);
    cnb_cudnn_choice_format(CNB_CUDNN_FWD, &c, value, sizeof value);
    cr_expect(strstr(value, "WINOGRAD_NONFUSED") == value && strstr(value, "heuristics") &&
                  strstr(value, "deterministic: no cudnnFind"),
              "%s", value);
    /* deterministic with TF32 allowed: the first deterministic entry, whatever its math */
    f = (fake_query){.perf = {find, heur}, .count = {2, 3}};
    cr_expect_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 1, 1, SIZE_MAX, "fwd", err, sizeof err),
                 CNB_OK);
    cr_expect(c.algo == 6 && c.math_type == 0 && !c.fma_math);

    /* a Find error falls through to the heuristics instead of failing the call */
    f = (fake_query){.status = {CNB_ERR_LIBRARY, CNB_OK}, .perf = {find, heur}, .count = {2, 3}};
    cr_assert_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 0, 0, SIZE_MAX, "fwd", err, sizeof err),
                 CNB_OK, "%s", err);
    cr_expect(f.calls[0] == 1 && f.calls[1] == 1);
    cr_expect(c.algo == 2 && c.source == CNB_CUDNN_FROM_HEURISTIC_ERROR && c.time_ms == -1.0f);
    cnb_cudnn_choice_format(CNB_CUDNN_FWD, &c, value, sizeof value);
    cr_expect(strstr(value, "cudnnFind failed") != NULL, "%s", value);

    /* Find offers nothing acceptable (workspace): the heuristics */
    const cnb_cudnn_perf big[] = {{.algo = 1, .ok = 1, .memory = 4096, .fma_math = 1}};
    f = (fake_query){.perf = {big, heur}, .count = {1, 3}};
    cr_assert_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 0, 0, 1000, "fwd", err, sizeof err),
                 CNB_OK, "%s", err);
    cr_expect(c.algo == 2 && c.source == CNB_CUDNN_FROM_HEURISTIC_NONE);

    /* Find fails and the heuristics offer nothing acceptable: a cached failure that says why */
    f = (fake_query){.status = {CNB_ERR_LIBRARY, CNB_OK}, .perf = {find, big}, .count = {2, 1}};
    cr_expect_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 0, 0, 1000, "conv_forward (n1 c1)", err,
                                  sizeof err),
                 CNB_ERR_UNSUPPORTED);
    cr_expect(c.failed && c.algo == -1);
    cr_expect(strstr(c.failure, "conv_forward (n1 c1)") == c.failure &&
                  strstr(c.failure, "CUDNN_STATUS_SCRIPTED") && strstr(c.failure, "1000 bytes") &&
                  strstr(c.failure, "heuristics: 1 candidates"),
              "%s", c.failure);
    cr_expect_str_eq(err, c.failure);
    cnb_cudnn_choice_format(CNB_CUDNN_FWD, &c, value, sizeof value);
    cr_expect(strstr(value, "cached") != NULL, "%s", value);

    /* deterministic and no deterministic entry: cached failure, Find still not run */
    const cnb_cudnn_perf nondet[] = {{.algo = 0, .ok = 1, .fma_math = 1}};
    f = (fake_query){.perf = {find, nondet}, .count = {2, 1}};
    cr_expect_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 1, 0, SIZE_MAX, "bwd", err, sizeof err),
                 CNB_ERR_UNSUPPORTED);
    cr_expect(c.failed && f.calls[0] == 0 && strstr(c.failure, "deterministic"), "%s",
              c.failure);

    /* heuristics answer "not supported": cached failure too */
    f = (fake_query){.status = {CNB_OK, CNB_ERR_UNSUPPORTED}, .perf = {big, heur},
                     .count = {1, 3}};
    cr_expect_eq(cnb_cudnn_choose(&c, fake_query_fn, &f, 0, 0, 1000, "fwd", err, sizeof err),
                 CNB_ERR_UNSUPPORTED);
    cr_expect(c.failed && strstr(c.failure, "cudnnFind: 1 candidates"), "%s", c.failure);

    /* any other heuristics error is returned as is and not cached (it may be transient) */
    cnb_cudnn_choice untouched = {.algo = -1};
    f = (fake_query){.status = {CNB_ERR_LIBRARY, CNB_ERR_OUT_OF_MEMORY}, .perf = {find, heur},
                     .count = {2, 3}};
    cr_expect_eq(cnb_cudnn_choose(&untouched, fake_query_fn, &f, 0, 0, SIZE_MAX, "fwd", err,
                                  sizeof err),
                 CNB_ERR_OUT_OF_MEMORY);
    cr_expect(untouched.algo == -1 && !untouched.failed);
    cr_expect(strstr(err, "fwd: ") == err && strstr(err, "_v7"), "%s", err);
}

/* A scripted run: the algorithms listed in fail[] fail with status, the others succeed. */
typedef struct fake_run {
    int fail[4], fails;
    cnb_status status;
    int runs, ran[16];
} fake_run;

static cnb_status fake_run_fn(void *user, const cnb_cudnn_choice *c, char *err, size_t len) {
    fake_run *f = user;
    f->ran[f->runs++ % 16] = c->algo;
    for (int i = 0; i < f->fails; i++)
        if (f->fail[i] == c->algo) {
            snprintf(err, len, "cudnnConvolutionForward: CUDNN_STATUS_PLANTED (algo %d)", c->algo);
            return f->status;
        }
    return CNB_OK;
}

/* A chosen algorithm that fails to run gives way to the next acceptable one of the same
 * ranked list, and the new choice is kept; a caller's mistake is not retried; when all fail,
 * the shape becomes a cached failure. */
Test(gpu_plan, cudnn_falls_back_to_the_next_ranked_algorithm) {
    const cnb_cudnn_perf find[] = {
        {.algo = 6, .ok = 1, .time_ms = 0.1f, .fma_math = 1, .math_type = 3},
        {.algo = 5, .ok = 1, .time_ms = 0.15f, .fma_math = 0, .math_type = 1}, /* TF32: never */
        {.algo = 1, .ok = 1, .time_ms = 0.2f, .memory = 256, .fma_math = 1, .math_type = 3},
        {.algo = 4, .ok = 0, .time_ms = 0.3f, .fma_math = 1, .math_type = 3}, /* failed in Find */
        {.algo = 0, .ok = 1, .time_ms = 0.4f, .fma_math = 1, .math_type = 3},
    };
    fake_query q = {.perf = {find, find}, .count = {5, 5}};
    char err[512], value[256];
    cnb_cudnn_choice c;
    cr_assert_eq(cnb_cudnn_choose(&c, fake_query_fn, &q, 0, 0, SIZE_MAX, "fwd", err, sizeof err),
                 CNB_OK, "%s", err);
    cr_assert_eq(c.algo, 6);
    cr_expect_eq(c.ranked_count, 3, "acceptable: 6, 1, 0 (not the TF32 one, not the failed one)");

    /* the planted failure of algorithm 6: the next acceptable (1, with its workspace) runs */
    fake_run r = {.fail = {6}, .fails = 1, .status = CNB_ERR_UNSUPPORTED};
    cr_assert_eq(cnb_cudnn_run_ranked(&c, CNB_CUDNN_FWD, fake_run_fn, &r, "fwd", err, sizeof err),
                 CNB_OK, "%s", err);
    cr_expect(r.runs == 2 && r.ran[0] == 6 && r.ran[1] == 1, "runs %d: %d, %d", r.runs, r.ran[0],
              r.ran[1]);
    cr_expect(c.algo == 1 && c.workspace == 256 && c.fallbacks == 1 && c.time_ms == 0.2f);
    cnb_cudnn_choice_format(CNB_CUDNN_FWD, &c, value, sizeof value);
    cr_expect(strstr(value, "ALGO_1") == NULL && strstr(value, "IMPLICIT_PRECOMP_GEMM") == value &&
                  strstr(value, "1 candidate(s) failed"),
              "%s", value);
    /* cached: the next call starts at the new choice, the failed one is not tried again */
    r.runs = 0;
    cr_assert_eq(cnb_cudnn_run_ranked(&c, CNB_CUDNN_FWD, fake_run_fn, &r, "fwd", err, sizeof err),
                 CNB_OK);
    cr_expect(r.runs == 1 && r.ran[0] == 1);

    /* an invalid argument is the caller's: returned, the choice kept */
    fake_run bad = {.fail = {1}, .fails = 1, .status = CNB_ERR_INVALID_ARGUMENT};
    cr_expect_eq(cnb_cudnn_run_ranked(&c, CNB_CUDNN_FWD, fake_run_fn, &bad, "fwd", err,
                                      sizeof err),
                 CNB_ERR_INVALID_ARGUMENT);
    cr_expect(bad.runs == 1 && c.algo == 1 && !c.failed);

    /* every remaining candidate fails: a cached failure naming the last error */
    fake_run all = {.fail = {1, 0}, .fails = 2, .status = CNB_ERR_LIBRARY};
    cr_expect_eq(cnb_cudnn_run_ranked(&c, CNB_CUDNN_FWD, fake_run_fn, &all, "conv_forward (n1)",
                                      err, sizeof err),
                 CNB_ERR_UNSUPPORTED);
    cr_expect(all.runs == 2 && c.failed && c.algo == -1);
    cr_expect(strstr(c.failure, "conv_forward (n1)") == c.failure &&
                  strstr(c.failure, "3 tried") && strstr(c.failure, "PLANTED (algo 0)"),
              "%s", c.failure);
    cr_expect_str_eq(err, c.failure);
    cr_expect(cnb_cudnn_may_fall_back(CNB_ERR_OUT_OF_MEMORY) &&
              !cnb_cudnn_may_fall_back(CNB_ERR_INTERNAL));
}

/* The forward bias is fused only under IMPLICIT_PRECOMP_GEMM (cuDNN's rule for the identity
 * activation), only with a bias, and never again once refused. */
Test(gpu_plan, cudnn_fused_bias_rule) {
    for (int algo = 0; algo < 8; algo++)
        cr_expect_eq(cnb_cudnn_fuse_bias(algo, 1, 0), algo == 1, "%s",
                     cnb_cudnn_algo_name(CNB_CUDNN_FWD, algo));
    cr_expect_eq(strcmp(cnb_cudnn_algo_name(CNB_CUDNN_FWD, 1), "IMPLICIT_PRECOMP_GEMM"), 0);
    cr_expect(!cnb_cudnn_fuse_bias(1, 0, 0));
    cr_expect(!cnb_cudnn_fuse_bias(1, 1, 1));
}

static int released;
static void count_release(void *p) {
    released++;
    free(p);
}

Test(gpu_plan, cudnn_cache_keys) {
    cnb_cudnn_conv_cache c = {0};
    cnb_conv_desc a = tu_conv_desc(64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1);
    cnb_conv_desc b = a;
    b.n = 32; /* another batch is another shape: descriptors carry n */
    cnb_conv_desc s = a;
    s.stride_w = 2;
    s.q = (28 + 2 - 3) / 2 + 1;
    cr_expect_null(cnb_cudnn_cache_find(&c, &a));
    cnb_cudnn_conv_entry *e = cnb_cudnn_cache_add(&c, &a);
    cr_assert_not_null(e);
    for (int i = 0; i < 3; i++) cr_expect_eq(e->choice[i].algo, -1, "nothing chosen yet");
    e->descs = malloc(8);
    e->choice[CNB_CUDNN_FWD].algo = 1;
    cr_expect_eq(cnb_cudnn_cache_find(&c, &a), e);
    cr_expect_null(cnb_cudnn_cache_find(&c, &b));
    cr_expect_null(cnb_cudnn_cache_find(&c, &s));
    /* growing past the first capacity keeps every entry findable */
    for (int i = 0; i < 40; i++) {
        cnb_conv_desc d = tu_conv_desc(1 + i, 3, 9, 9, 4, 3, 3, 1, 1, 0, 0);
        cr_assert_not_null(cnb_cudnn_cache_add(&c, &d));
    }
    for (int i = 0; i < 40; i++) {
        cnb_conv_desc d = tu_conv_desc(1 + i, 3, 9, 9, 4, 3, 3, 1, 1, 0, 0);
        cnb_cudnn_conv_entry *f = cnb_cudnn_cache_find(&c, &d);
        cr_assert_not_null(f, "entry %d lost after growth", i);
        cr_expect_eq(f->key.n, 1 + i);
    }
    cr_expect_eq(cnb_cudnn_cache_find(&c, &a)->choice[CNB_CUDNN_FWD].algo, 1);
    char key[96], value[200];
    cnb_cudnn_conv_key_format(&a, key, sizeof key);
    cr_expect_str_eq(key, "n64 c1 28x28 k32 3x3 s1x1 p1x1");
    cnb_cudnn_choice ch = {.algo = 1, .workspace = 4096, .deterministic = 1, .fma_math = 1,
                           .time_ms = 0.25f};
    cnb_cudnn_choice_format(CNB_CUDNN_FWD, &ch, value, sizeof value);
    cr_expect(strstr(value, "IMPLICIT_PRECOMP_GEMM") == value && strstr(value, "fma") &&
                  strstr(value, "deterministic") && !strstr(value, "non-deterministic"),
              "%s", value);
    ch.algo = -1;
    cnb_cudnn_choice_format(CNB_CUDNN_FWD, &ch, value, sizeof value);
    cr_expect_str_eq(value, "not used yet");
    released = 0;
    cnb_cudnn_cache_free(&c, count_release);
    cr_expect_eq(released, 1, "only the entry with descriptors is released");
    cr_expect_eq(c.count, 0);
}
