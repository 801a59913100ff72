/* conv.c — 2-D convolution forward, backward-data and backward-filter as im2col + sgemm, and the
 * bias pair as plain loops.
 *
 * Two ways to arrange the sgemms are implemented:
 *  - batched: the columns of a chunk of images side by side, col (c*r*s, nb*p*q), and one big
 *    sgemm per chunk; its (k, nb*p*q) result is reordered to NCHW (fused with the bias add), and
 *    dy is reordered the other way for the backward passes;
 *  - per image: one image's columns, col (c*r*s, p*q), and one sgemm per image straight into (or
 *    out of) NCHW, no reordering; the columns stay in L2.
 * AUTO takes the faster of the two per pass, measured on this 2-core machine at the simplecnn
 * shapes (batch 64, 2 threads, quiet machine, best of 10; per image vs batched in chunks of
 * 64 / 9 images):
 *   conv2 32->64 forward          3.15 ms vs 4.4 / 2.95 ms
 *   conv2 32->64 backward-data    3.15 ms vs 3.5 / 2.90 ms
 *   conv2 32->64 backward-filter  2.93 ms vs 3.4 / 2.93 ms
 *   conv1 1->32  backward-filter  0.64 ms vs 0.92 / 0.93 ms
 * so forward and backward-data are batched in small chunks (one sgemm per ~2 MB of columns:
 * fewer, larger sgemms than per image, while the columns stay near L2), and backward-filter goes
 * per image (its batched sgemm has a long, thin k x c*r*s output that OpenBLAS handles poorly
 * when c*r*s is small). CNB_BLAS_CONV=batched|per-image forces one layout for every pass (see
 * backend.c); the tests run all three settings. A 1x1 stride-1 unpadded filter reads x as its
 * own columns (no im2col) and always goes per image. */
#include <cblas.h>
#include <string.h>

#include "act_math.h"
#include "blas_backend.h"
#include "cnb_abi_check.h"

/* Chunks of the batched layout keep both the columns and the (k, nb*p*q) result at or below
 * this many floats (2 MB each) unless one image alone needs more: measured faster than whole-
 * batch chunks (see above), and an eval batch of 1000 needs no more scratch than a training
 * batch. */
#define BLAS_CHUNK_FLOATS ((size_t)1 << 19)

/* The ABI's shape rules (cnb_abi_check.h), then this backend's limit: every tensor and one
 * image's columns indexable with an int. */
static cnb_status check_conv_desc(cnb_context *ctx, const char *fn, const cnb_conv_desc *d) {
    cnb_status st = cnb_check_conv_desc(fn, d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    if (!cnb_check_conv_fits_int(fn, d, ctx->err, sizeof ctx->err) ||
        !blas_dims_fit(ctx, fn, "one image's im2col columns", (int64_t)d->c * d->r, d->s, d->p,
                       d->q))
        return CNB_ERR_INVALID_ARGUMENT;
    return CNB_OK;
}

/* A 1x1 filter with stride 1 and no padding reads x as its own columns: no im2col needed. */
static int is_pointwise(const cnb_conv_desc *d) {
    return d->r == 1 && d->s == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
           d->pad_w == 0;
}

/* Images per chunk of the batched layout: as many as fit BLAS_CHUNK_FLOATS for the columns
 * (crs rows) and for the other operand (k rows), at least one. */
static int chunk_images(const cnb_conv_desc *d) {
    size_t pq = (size_t)d->p * d->q, crs = (size_t)d->c * d->r * d->s;
    size_t rows = crs > (size_t)d->k ? crs : (size_t)d->k;
    size_t nb = BLAS_CHUNK_FLOATS / (rows * pq);
    if (nb < 1) nb = 1;
    if (nb > (size_t)d->n) nb = (size_t)d->n;
    return (int)nb;
}

/* ---- batched layout ---------------------------------------------------------------------- */

/* dst[j] = act(src[j] + b), j < n: the fused epilogue, one pass over an output row that the
 * sgemm has just written (still in cache). dst may be src. One loop per activation, each with
 * a constant act, so that every one of them vectorizes. */
static void bias_act_row(float *dst, const float *src, float b, int n, int act) {
    switch (act) {
    case CNB_ACT_RELU:
        for (int j = 0; j < n; j++) dst[j] = fused_act(CNB_ACT_RELU, src[j] + b);
        break;
    case CNB_ACT_TANH:
        for (int j = 0; j < n; j++) dst[j] = fused_act(CNB_ACT_TANH, src[j] + b);
        break;
    case CNB_ACT_SIGMOID:
        for (int j = 0; j < n; j++) dst[j] = fused_act(CNB_ACT_SIGMOID, src[j] + b);
        break;
    default:
        for (int j = 0; j < n; j++) dst[j] = src[j] + b;
        break;
    }
}

/* t (k, nb*pq) -> y (nb, k, pq), adding bias[k] (if any) and applying act on the way. */
static void gather_nchw(float *y, const float *t, const float *bias, int act, int nb, int k,
                        int pq) {
    const size_t ld = (size_t)nb * pq;
    for (int i = 0; i < nb; i++) {
        for (int o = 0; o < k; o++) {
            const float *restrict src = t + (size_t)o * ld + (size_t)i * pq;
            float *restrict dst = y + ((size_t)i * k + o) * pq;
            if (bias || act != CNB_FUSED_ACT_NONE)
                bias_act_row(dst, src, bias ? bias[o] : 0.0f, pq, act);
            else
                memcpy(dst, src, (size_t)pq * sizeof(float));
        }
    }
}

/* dy (nb, k, pq) -> t (k, nb*pq). */
static void scatter_knq(float *t, const float *dy, int nb, int k, int pq) {
    const size_t ld = (size_t)nb * pq;
    for (int i = 0; i < nb; i++)
        for (int o = 0; o < k; o++)
            memcpy(t + (size_t)o * ld + (size_t)i * pq, dy + ((size_t)i * k + o) * pq,
                   (size_t)pq * sizeof(float));
}

/* Each layout function below does images [i0, i1) of one pass on one thread, with that
 * thread's scratch (col: the columns, t: a GEMM operand in (k, m*pq) order). */

static void forward_batched(const cnb_conv_desc *d, float *y, const float *x,
                            const float *weight, const float *bias, int act, float *col, float *t,
                            int i0, int i1) {
    const int k = d->k, crs = d->c * d->r * d->s, pq = d->p * d->q, nb = chunk_images(d);
    const size_t chw = (size_t)d->c * d->h * d->w, kpq = (size_t)k * pq;
    for (int n0 = i0; n0 < i1; n0 += nb) {
        const int m = i1 - n0 < nb ? i1 - n0 : nb, ld = m * pq;
        for (int i = 0; i < m; i++)
            blas_im2col(col + (size_t)i * pq, (size_t)ld, x + (size_t)(n0 + i) * chw, d);
        /* t (k, m*pq) = weight (k, crs) x col (crs, m*pq) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, ld, crs, 1.0f, weight, crs,
                    col, ld, 0.0f, t, ld);
        gather_nchw(y + (size_t)n0 * kpq, t, bias, act, m, k, pq);
    }
}

static void backward_data_batched(const cnb_conv_desc *d, float *dx, const float *dy,
                                  const float *weight, float *col, float *t, int i0, int i1) {
    const int k = d->k, crs = d->c * d->r * d->s, pq = d->p * d->q, nb = chunk_images(d);
    const size_t chw = (size_t)d->c * d->h * d->w, kpq = (size_t)k * pq;
    for (int n0 = i0; n0 < i1; n0 += nb) {
        const int m = i1 - n0 < nb ? i1 - n0 : nb, ld = m * pq;
        scatter_knq(t, dy + (size_t)n0 * kpq, m, k, pq);
        /* dcol (crs, m*pq) = weight^T (crs, k) x t (k, m*pq) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, crs, ld, k, 1.0f, weight, crs, t,
                    ld, 0.0f, col, ld);
        float *dxc = dx + (size_t)n0 * chw;
        memset(dxc, 0, (size_t)m * chw * sizeof(float));
        for (int i = 0; i < m; i++) blas_col2im(dxc + (size_t)i * chw, col + (size_t)i * pq, ld, d);
    }
}

/* dweight (k, crs) = the sum over images [i0, i1): overwritten, not accumulated. */
static void backward_filter_batched(const cnb_conv_desc *d, float *dweight, const float *dy,
                                    const float *x, float *col, float *t, int i0, int i1) {
    const int k = d->k, crs = d->c * d->r * d->s, pq = d->p * d->q, nb = chunk_images(d);
    const size_t chw = (size_t)d->c * d->h * d->w, kpq = (size_t)k * pq;
    for (int n0 = i0; n0 < i1; n0 += nb) {
        const int m = i1 - n0 < nb ? i1 - n0 : nb, ld = m * pq;
        for (int i = 0; i < m; i++)
            blas_im2col(col + (size_t)i * pq, (size_t)ld, x + (size_t)(n0 + i) * chw, d);
        scatter_knq(t, dy + (size_t)n0 * kpq, m, k, pq);
        /* dweight (k, crs) (+)= t (k, m*pq) x col^T (m*pq, crs) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, crs, ld, 1.0f, t, ld, col, ld,
                    n0 == i0 ? 0.0f : 1.0f, dweight, crs);
    }
}

/* ---- per-image layout (col is NULL for a pointwise filter) -------------------------------- */

static void forward_per_image(const cnb_conv_desc *d, float *y, const float *x,
                              const float *weight, const float *bias, int act, float *col, int i0,
                              int i1) {
    const int k = d->k, crs = d->c * d->r * d->s, pq = d->p * d->q;
    const size_t chw = (size_t)d->c * d->h * d->w, kpq = (size_t)k * pq;
    for (int i = i0; i < i1; i++) {
        const float *xi = x + (size_t)i * chw;
        float *yi = y + (size_t)i * kpq;
        if (col) blas_im2col(col, (size_t)pq, xi, d);
        /* y_i (k, pq) = weight (k, crs) x col (crs, pq) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, pq, crs, 1.0f, weight, crs,
                    col ? col : xi, pq, 0.0f, yi, pq);
        if (bias || act != CNB_FUSED_ACT_NONE)
            for (int o = 0; o < k; o++) {
                float *row = yi + (size_t)o * pq;
                bias_act_row(row, row, bias ? bias[o] : 0.0f, pq, act);
            }
    }
}

static void backward_data_per_image(const cnb_conv_desc *d, float *dx, const float *dy,
                                    const float *weight, float *col, int i0, int i1) {
    const int k = d->k, crs = d->c * d->r * d->s, pq = d->p * d->q;
    const size_t chw = (size_t)d->c * d->h * d->w, kpq = (size_t)k * pq;
    for (int i = i0; i < i1; i++) {
        float *dxi = dx + (size_t)i * chw;
        /* dcol (crs, pq) = weight^T (crs, k) x dy_i (k, pq); pointwise: dcol is dx_i itself */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, crs, pq, k, 1.0f, weight, crs,
                    dy + (size_t)i * kpq, pq, 0.0f, col ? col : dxi, pq);
        if (col) {
            memset(dxi, 0, chw * sizeof(float));
            blas_col2im(dxi, col, (size_t)pq, d);
        }
    }
}

/* dweight (k, crs) = the sum over images [i0, i1): overwritten, not accumulated. */
static void backward_filter_per_image(const cnb_conv_desc *d, float *dweight, const float *dy,
                                      const float *x, float *col, int i0, int i1) {
    const int k = d->k, crs = d->c * d->r * d->s, pq = d->p * d->q;
    const size_t chw = (size_t)d->c * d->h * d->w, kpq = (size_t)k * pq;
    for (int i = i0; i < i1; i++) {
        const float *xi = x + (size_t)i * chw;
        if (col) blas_im2col(col, (size_t)pq, xi, d);
        /* dweight (k, crs) (+)= dy_i (k, pq) x col^T (pq, crs) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, crs, pq, 1.0f,
                    dy + (size_t)i * kpq, pq, col ? col : xi, pq, i == i0 ? 0.0f : 1.0f,
                    dweight, crs);
    }
}

/* ---- one pass over the batch, split by image across the context's threads ----------------- */

enum conv_pass { PASS_FORWARD, PASS_BACKWARD_DATA, PASS_BACKWARD_FILTER };

typedef struct {
    const cnb_conv_desc *d;
    int pass, batched;
    int act;                 /* forward: the fused activation, or CNB_FUSED_ACT_NONE */
    float *out;              /* y, dx, or dweight (thread 0's part of it) */
    const float *in, *other; /* forward: x, weight; data: dy, weight; filter: dy, x */
    const float *bias;
    float *col[BLAS_MAX_THREADS], *t[BLAS_MAX_THREADS];
    float *dweight[BLAS_MAX_THREADS]; /* filter: each thread's partial sum; [0] is out */
} conv_job;

static void conv_range(void *arg, int th, size_t lo, size_t hi) {
    const conv_job *j = arg;
    const int i0 = (int)lo, i1 = (int)hi;
    switch (j->pass) {
    case PASS_FORWARD:
        if (j->batched)
            forward_batched(j->d, j->out, j->in, j->other, j->bias, j->act, j->col[th], j->t[th],
                            i0, i1);
        else forward_per_image(j->d, j->out, j->in, j->other, j->bias, j->act, j->col[th], i0, i1);
        break;
    case PASS_BACKWARD_DATA:
        if (j->batched) backward_data_batched(j->d, j->out, j->in, j->other, j->col[th], j->t[th], i0, i1);
        else backward_data_per_image(j->d, j->out, j->in, j->other, j->col[th], i0, i1);
        break;
    default:
        if (j->batched)
            backward_filter_batched(j->d, j->dweight[th], j->in, j->other, j->col[th], j->t[th], i0, i1);
        else backward_filter_per_image(j->d, j->dweight[th], j->in, j->other, j->col[th], i0, i1);
        break;
    }
}

/* Every image of the batch goes to one thread; a filter gradient is each thread's partial sum
 * over its images, added up in thread order afterwards (so the result depends on the thread
 * count only through that order). Scratch is taken here, on the caller's thread. */
static cnb_status run_conv(cnb_context *ctx, conv_job *j) {
    const cnb_conv_desc *d = j->d;
    const size_t crs = (size_t)d->c * d->r * d->s, pq = (size_t)d->p * d->q,
                 kcrs = (size_t)d->k * crs;
    const size_t imgs = j->batched ? (size_t)chunk_images(d) : 1;
    const int parts = blas_team_parts(ctx, (size_t)d->n, 1);
    blas_keep_openblas_serial();
    for (int th = 0; th < parts; th++) {
        cnb_status st;
        j->col[th] = j->t[th] = NULL;
        j->dweight[th] = j->out;
        if (!is_pointwise(d) &&
            (st = blas_scratch(ctx, th, BLAS_SCRATCH_COL, crs * imgs * pq, &j->col[th])) != CNB_OK)
            return st;
        if (j->batched &&
            (st = blas_scratch(ctx, th, BLAS_SCRATCH_GEMM, (size_t)d->k * imgs * pq, &j->t[th])) !=
                CNB_OK)
            return st;
        if (j->pass == PASS_BACKWARD_FILTER && th > 0 &&
            (st = blas_scratch(ctx, th, BLAS_SCRATCH_DWEIGHT, kcrs, &j->dweight[th])) != CNB_OK)
            return st;
    }
    blas_parallel(ctx, (size_t)d->n, parts, conv_range, j);
    if (j->pass == PASS_BACKWARD_FILTER)
        for (int th = 1; th < parts; th++) {
            float *restrict dw = j->out;
            const float *restrict part = j->dweight[th];
            for (size_t i = 0; i < kcrs; i++) dw[i] += part[i];
        }
    return CNB_OK;
}

/* ---- the ABI entry points ---------------------------------------------------------------- */

/* y is (n,k,p,q), x is (n,c,h,w), weight is (k,c,r,s), bias is (k) or NULL:
 *   y[b,o,oh,ow] = bias[o] + sum_{ci,i,j} weight[o,ci,i,j] * x[b,ci, oh*sh-ph+i, ow*sw-pw+j] */
cnb_status blas_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y, const float *x,
                             const float *weight, const float *bias) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_conv_desc(ctx, "conv_forward", d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_forward", y);
    CNB_CHECK_PTR(ctx, "conv_forward", x);
    CNB_CHECK_PTR(ctx, "conv_forward", weight);
    conv_job j = {.d = d, .pass = PASS_FORWARD, .out = y, .in = x, .other = weight, .bias = bias,
                  .act = CNB_FUSED_ACT_NONE,
                  .batched = ctx->conv_algo != BLAS_CONV_PER_IMAGE && !is_pointwise(d)};
    return run_conv(ctx, &j);
}

/* y = act(conv_forward(x, weight, bias)): the bias and the activation are applied in the pass
 * that moves each output chunk from the sgemm's result into y (batched) or right after the
 * image's sgemm (per image), while the output is still in cache. */
cnb_status blas_conv_bias_act_forward(cnb_context *ctx, const cnb_conv_desc *d, int act,
                                      float *y, const float *x, const float *weight,
                                      const float *bias) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_fused_act("conv_bias_act_forward", act, ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = check_conv_desc(ctx, "conv_bias_act_forward", d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_bias_act_forward", y);
    CNB_CHECK_PTR(ctx, "conv_bias_act_forward", x);
    CNB_CHECK_PTR(ctx, "conv_bias_act_forward", weight);
    conv_job j = {.d = d, .pass = PASS_FORWARD, .out = y, .in = x, .other = weight, .bias = bias,
                  .act = act,
                  .batched = ctx->conv_algo != BLAS_CONV_PER_IMAGE && !is_pointwise(d)};
    return run_conv(ctx, &j);
}

/* dx is (n,c,h,w), dy is (n,k,p,q), weight is (k,c,r,s); dx is overwritten. */
cnb_status blas_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                   const float *dy, const float *weight) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_conv_desc(ctx, "conv_backward_data", d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward_data", dx);
    CNB_CHECK_PTR(ctx, "conv_backward_data", dy);
    CNB_CHECK_PTR(ctx, "conv_backward_data", weight);
    conv_job j = {.d = d, .pass = PASS_BACKWARD_DATA, .out = dx, .in = dy, .other = weight,
                  .batched = ctx->conv_algo != BLAS_CONV_PER_IMAGE && !is_pointwise(d)};
    return run_conv(ctx, &j);
}

/* dweight is (k,c,r,s), dy is (n,k,p,q), x is (n,c,h,w); dweight is overwritten with the sum
 * over the batch. */
cnb_status blas_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                     const float *dy, const float *x) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_conv_desc(ctx, "conv_backward_filter", d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward_filter", dweight);
    CNB_CHECK_PTR(ctx, "conv_backward_filter", dy);
    CNB_CHECK_PTR(ctx, "conv_backward_filter", x);
    conv_job j = {.d = d, .pass = PASS_BACKWARD_FILTER, .out = dweight, .in = dy, .other = x,
                  .batched = ctx->conv_algo == BLAS_CONV_BATCHED && !is_pointwise(d)};
    return run_conv(ctx, &j);
}

/* y (n, c, hw) += bias (c), in place. */
cnb_status blas_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c, int hw) {
    CNB_CHECK_CTX(ctx);
    CNB_CHECK_PTR(ctx, "bias_forward", y);
    CNB_CHECK_PTR(ctx, "bias_forward", bias);
    CNB_CHECK_POSITIVE(ctx, "bias_forward", n);
    CNB_CHECK_POSITIVE(ctx, "bias_forward", c);
    CNB_CHECK_POSITIVE(ctx, "bias_forward", hw);
    if (!blas_dims_fit(ctx, "bias_forward", "y", n, c, hw, 1)) return CNB_ERR_INVALID_ARGUMENT;
    if (hw == 1) { /* linear layers: each row of y gets the whole bias vector */
        for (int i = 0; i < n; i++) {
            float *restrict row = y + (size_t)i * c;
            for (int j = 0; j < c; j++) row[j] += bias[j];
        }
        return CNB_OK;
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < c; j++) {
            const float b = bias[j];
            float *restrict plane = y + ((size_t)i * c + j) * hw;
            for (int t = 0; t < hw; t++) plane[t] += b;
        }
    }
    return CNB_OK;
}

/* Sum of v[0..len) in float with 16 independent partial sums (vectorizable without reordering
 * permission) folded into a double, so long rows lose little to rounding. */
static double row_sum(const float *v, int len) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= len; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += v[i + j];
    double s = 0.0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < len; i++) s += v[i];
    return s;
}

typedef struct {
    float *dbias;
    const float *dy;
    int n, c, hw;
} bias_job;

/* Channels [lo, hi) of dbias. */
static void bias_range(void *arg, int thread, size_t lo, size_t hi) {
    (void)thread;
    const bias_job *b = arg;
    for (size_t j = lo; j < hi; j++) {
        double s = 0.0;
        for (int i = 0; i < b->n; i++) s += row_sum(b->dy + ((size_t)i * b->c + j) * b->hw, b->hw);
        b->dbias[j] = (float)s;
    }
}

/* dbias (c) = sum of dy (n, c, hw) over n and hw; overwritten. */
cnb_status blas_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                              int hw) {
    CNB_CHECK_CTX(ctx);
    CNB_CHECK_PTR(ctx, "bias_backward", dbias);
    CNB_CHECK_PTR(ctx, "bias_backward", dy);
    CNB_CHECK_POSITIVE(ctx, "bias_backward", n);
    CNB_CHECK_POSITIVE(ctx, "bias_backward", c);
    CNB_CHECK_POSITIVE(ctx, "bias_backward", hw);
    if (!blas_dims_fit(ctx, "bias_backward", "dy", n, c, hw, 1)) return CNB_ERR_INVALID_ARGUMENT;
    if (hw == 1) {
        /* Column sums of dy (n, c), contiguous over c: float partial sums over blocks of 64
         * rows, folded into double, for blocks of 256 columns kept on the stack. */
        for (int j0 = 0; j0 < c; j0 += 256) {
            const int jn = c - j0 < 256 ? c - j0 : 256;
            double acc[256];
            float part[256];
            for (int j = 0; j < jn; j++) acc[j] = 0.0;
            for (int i0 = 0; i0 < n; i0 += 64) {
                const int i1 = i0 + 64 < n ? i0 + 64 : n;
                for (int j = 0; j < jn; j++) part[j] = 0.0f;
                for (int i = i0; i < i1; i++) {
                    const float *restrict row = dy + (size_t)i * c + j0;
                    for (int j = 0; j < jn; j++) part[j] += row[j];
                }
                for (int j = 0; j < jn; j++) acc[j] += part[j];
            }
            for (int j = 0; j < jn; j++) dbias[j0 + j] = (float)acc[j];
        }
        return CNB_OK;
    }
    /* One channel's sum is one thread's: the same order whatever the thread count. */
    bias_job j = {.dbias = dbias, .dy = dy, .n = n, .c = c, .hw = hw};
    const size_t grain = (size_t)n * hw >= 8192 ? 1 : 8192 / ((size_t)n * hw);
    blas_parallel(ctx, (size_t)c, blas_team_parts(ctx, (size_t)c, grain), bias_range, &j);
    return CNB_OK;
}
