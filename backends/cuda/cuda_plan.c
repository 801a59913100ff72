/* cuda_plan.c — validation and launch geometry for the GPU backends (see cuda_plan.h). Plain
 * C with no CUDA header, so tests/test_gpu_plan.c compiles it and runs it anywhere. */
#include "cuda_plan.h"
#include "cnb_abi_check.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The ABI checks' message formatting (cnb_check_fail_), returning status st. */
#define FAIL(st, err, len, ...) ((void)cnb_check_fail_((err), (len), __VA_ARGS__), (st))

/* The kernels index tensors with int: anything at or past 2^31 elements is refused. */
static int fits_int(long long v) { return v >= 0 && v <= (long long)INT_MAX; }

#define REQUIRE_POSITIVE(fn, name, v)                                                        \
    do {                                                                                     \
        if ((v) <= 0)                                                                        \
            return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len, "%s: %s=%d must be positive", fn, \
                        name, (int)(v));                                                     \
    } while (0)

/* The ABI's rules (cnb_abi_check.h), then the kernels' limit: x, y and the weight under 2^31
 * elements, which also bounds every implicit-GEMM dimension (n*h*w <= x, n*p*q <= y,
 * k*r*s <= weight). A valid descriptor past that is CNB_ERR_UNSUPPORTED. cudnn calls these too. */
cnb_status cnb_gpu_check_conv(const char *fn, const cnb_conv_desc *d, char *err, size_t len) {
    cnb_status st = cnb_check_conv_desc(fn, d, err, len);
    if (st == CNB_OK && !cnb_check_conv_fits_int(fn, d, err, len)) st = CNB_ERR_UNSUPPORTED;
    return st;
}

cnb_status cnb_gpu_check_pool(const char *fn, const cnb_pool_desc *d, char *err, size_t len) {
    cnb_status st = cnb_check_pool_desc(fn, d, err, len);
    if (st == CNB_OK && !cnb_check_pool_fits_int(fn, d, err, len)) st = CNB_ERR_UNSUPPORTED;
    return st;
}

cnb_status cnb_gpu_check_gemm(int trans_a, int trans_b, int m, int n, int k, int lda, int ldb,
                              int ldc, char *err, size_t len) {
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1))
        return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len,
                    "gemm: trans_a=%d, trans_b=%d must each be 0 or 1", trans_a, trans_b);
    REQUIRE_POSITIVE("gemm", "m", m);
    REQUIRE_POSITIVE("gemm", "n", n);
    REQUIRE_POSITIVE("gemm", "k", k);
    int a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    int b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    if (lda < a_cols)
        return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len,
                    "gemm: lda=%d is less than the %d columns of A as stored", lda, a_cols);
    if (ldb < b_cols)
        return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len,
                    "gemm: ldb=%d is less than the %d columns of B as stored", ldb, b_cols);
    if (ldc < n)
        return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len,
                    "gemm: ldc=%d is less than the %d columns of C", ldc, n);
    /* Index of the last element read or written, for the kernels' int arithmetic. */
    if (!fits_int((long long)(a_rows - 1) * lda + a_cols) ||
        !fits_int((long long)(b_rows - 1) * ldb + b_cols) ||
        !fits_int((long long)(m - 1) * ldc + n) || !fits_int((long long)m * n))
        return FAIL(CNB_ERR_UNSUPPORTED, err, len,
                    "gemm: a matrix spans 2^31 or more elements; the kernels index with 32-bit "
                    "integers");
    return CNB_OK;
}

cnb_status cnb_gpu_check_corr2d(int h, int w, int kh, int kw, char *err, size_t len) {
    REQUIRE_POSITIVE("corr2d", "h", h);
    REQUIRE_POSITIVE("corr2d", "w", w);
    REQUIRE_POSITIVE("corr2d", "kh", kh);
    REQUIRE_POSITIVE("corr2d", "kw", kw);
    if (kh > h || kw > w)
        return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len,
                    "corr2d: kernel %dx%d is larger than the input %dx%d", kh, kw, h, w);
    if (!fits_int((long long)h * w))
        return FAIL(CNB_ERR_UNSUPPORTED, err, len, "corr2d: input %dx%d has 2^31 or more "
                    "elements", h, w);
    return CNB_OK;
}

cnb_status cnb_gpu_check_nchw(const char *fn, int n, int c, int hw, char *err, size_t len) {
    REQUIRE_POSITIVE(fn, "n", n);
    REQUIRE_POSITIVE(fn, "c", c);
    REQUIRE_POSITIVE(fn, "hw", hw);
    if (!fits_int((long long)n * c * hw))
        return FAIL(CNB_ERR_UNSUPPORTED, err, len,
                    "%s: tensor (%d, %d, %d) has 2^31 or more elements", fn, n, c, hw);
    return CNB_OK;
}

cnb_status cnb_gpu_check_activation(const char *fn, int act, size_t count, char *err,
                                    size_t len) {
    return cnb_check_activation_kind(fn, act, count, err, len);
}

cnb_status cnb_gpu_check_softmax(const char *fn, int n, int classes, char *err, size_t len) {
    REQUIRE_POSITIVE(fn, "n", n);
    REQUIRE_POSITIVE(fn, "classes", classes);
    if (!fits_int((long long)n * classes))
        return FAIL(CNB_ERR_UNSUPPORTED, err, len,
                    "%s: logits (%d, %d) have 2^31 or more elements", fn, n, classes);
    return CNB_OK;
}

int cnb_plan_blocks(size_t count, int threads, int max_blocks) {
    size_t blocks = (count + (size_t)threads - 1) / (size_t)threads;
    if (blocks < 1) blocks = 1;
    if (blocks > (size_t)max_blocks) blocks = (size_t)max_blocks;
    return (int)blocks;
}

int cnb_plan_reduce_blocks(size_t count) {
    /* At least 8 values per thread before the tree, so small tensors use few blocks. */
    return cnb_plan_blocks(count, CNB_REDUCE_THREADS * 8, CNB_REDUCE_MAX_BLOCKS);
}

static int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

int cnb_plan_max_splits(long long tiles, int sm_count) {
    long long twice_sms = 2LL * (sm_count > 0 ? sm_count : 1);
    if (tiles > CNB_FEW_TILES || twice_sms <= CNB_MAX_SPLITS) return CNB_MAX_SPLITS;
    return twice_sms < CNB_GRID_YZ_MAX ? (int)twice_sms : CNB_GRID_YZ_MAX;
}

cnb_status cnb_plan_gemm(cnb_gemm_plan *p, int m, int n, int k, int sm_count, char *err,
                         size_t len) {
    if (m <= 0 || n <= 0 || k <= 0)
        return FAIL(CNB_ERR_INVALID_ARGUMENT, err, len,
                    "plan_gemm: sizes (%d, %d, %d) must be positive", m, n, k);
    if (k > INT_MAX - 2 * CNB_TILE_K)
        return FAIL(CNB_ERR_UNSUPPORTED, err, len,
                    "plan_gemm: k=%d is within %d of 2^31; the kernels' k-slices index with "
                    "32-bit integers",
                    k, 2 * CNB_TILE_K);
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n = n;
    p->k = k;
    p->tile_m = m <= CNB_TILE_M_SMALL ? CNB_TILE_M_SMALL : CNB_TILE_M;
    p->grid_x = ceil_div(n, CNB_TILE_N);
    p->grid_y = ceil_div(m, p->tile_m);
    if (p->grid_y > CNB_GRID_YZ_MAX)
        return FAIL(CNB_ERR_UNSUPPORTED, err, len,
                    "plan_gemm: %d rows need %d row tiles, more than a grid's %d", m, p->grid_y,
                    CNB_GRID_YZ_MAX);
    p->splits = 1;
    p->k_per_split = ceil_div(k, CNB_TILE_K) * CNB_TILE_K;
    p->partial_floats = 0;
    p->reduce_blocks = 0;

    /* Split only when the tiles leave SMs idle and each slice keeps at least four k-steps of
     * work; then aim at two blocks per SM. A layer with an SM's worth of tiles or more is left
     * alone: the partials would cost more memory traffic than the idle SMs are worth. */
    long long tiles = (long long)p->grid_x * p->grid_y;
    long long sms = sm_count > 0 ? sm_count : 1;
    int k_steps = ceil_div(k, CNB_TILE_K);
    if (tiles < sms && k_steps >= 8) {
        long long want = (2 * sms + tiles - 1) / tiles;
        long long most = k_steps / 4;
        if (want > most) want = most;
        int cap = cnb_plan_max_splits(tiles, sm_count);
        if (want > cap) want = cap;
        /* The partials must stay addressable with int and modest in size (64 Mi floats). */
        while (want > 1 && (!fits_int(want * m * (long long)n) ||
                            want * m * (long long)n > (64LL << 20)))
            want--;
        if (want > 1) {
            int per = ceil_div(k_steps, want) * CNB_TILE_K;
            p->k_per_split = per;
            p->splits = ceil_div(k, per); /* no empty slice at the end */
        }
    }
    if (p->splits > 1) {
        p->partial_floats = (size_t)p->splits * (size_t)m * (size_t)n;
        p->reduce_blocks = cnb_plan_blocks((size_t)m * n, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    }
    return CNB_OK;
}

void cnb_conv_geom_init(cnb_conv_geom *g, const cnb_conv_desc *d) {
    g->n = d->n;
    g->c = d->c;
    g->h = d->h;
    g->w = d->w;
    g->k = d->k;
    g->r = d->r;
    g->s = d->s;
    g->stride_h = d->stride_h;
    g->stride_w = d->stride_w;
    g->pad_h = d->pad_h;
    g->pad_w = d->pad_w;
    g->p = d->p;
    g->q = d->q;
    g->rs = d->r * d->s;
    g->crs = d->c * g->rs;
    g->pq = d->p * d->q;
    g->hw = d->h * d->w;
}

void cnb_format_cuda_version(int v, char *buf, size_t len) {
    snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

void cnb_format_lib_version(long v, char *buf, size_t len) {
    snprintf(buf, len, "%ld.%ld.%ld", v / 10000, (v % 10000) / 100, v % 100);
}
