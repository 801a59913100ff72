/* pool.c — max and average pooling, forward and backward. Max pooling records nothing: its
 * backward finds each window's argmax again from x (the readable choice), with the same rule as
 * the forward (first maximum in row-major window order wins, NaN beats every number). Average pooling divides by kh*kw,
 * padding included (PyTorch's count_include_pad=True). */
#include <math.h>

#include "cnb_abi_check.h"
#include "naive.h"

/* Index into the (h, w) plane of the window maximum at output (oh, ow): the first maximum in
 * row-major window order, padding skipped; a NaN always takes over, so a window holding NaN
 * yields its last NaN (PyTorch's max_pool2d). cnb_check_pool_desc guarantees a real value. */
static size_t window_argmax(const cnb_pool_desc *d, const float *plane, int oh, int ow) {
    size_t best = 0;
    float best_v = -INFINITY;
    int found = 0;
    for (int i = 0; i < d->kh; i++) {
        int ih = oh * d->stride_h - d->pad_h + i;
        if (ih < 0 || ih >= d->h) continue;
        for (int j = 0; j < d->kw; j++) {
            int iw = ow * d->stride_w - d->pad_w + j;
            if (iw < 0 || iw >= d->w) continue;
            size_t e = (size_t)ih * d->w + iw;
            /* strict '>': a later tie never wins */
            if (!found || plane[e] > best_v || isnan(plane[e])) {
                best = e;
                best_v = plane[e];
                found = 1;
            }
        }
    }
    return best;
}

/* Sum of the real values in the window at (oh, ow); padding contributes zero. */
static double window_sum(const cnb_pool_desc *d, const float *plane, int oh, int ow) {
    double sum = 0.0;
    for (int i = 0; i < d->kh; i++) {
        int ih = oh * d->stride_h - d->pad_h + i;
        if (ih < 0 || ih >= d->h) continue;
        for (int j = 0; j < d->kw; j++) {
            int iw = ow * d->stride_w - d->pad_w + j;
            if (iw < 0 || iw >= d->w) continue;
            sum += plane[(size_t)ih * d->w + iw];
        }
    }
    return sum;
}

cnb_status naive_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_pool_desc("pool_workspace_size", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "pool_workspace_size", bytes);
    *bytes = 0; /* max pooling recomputes its argmax in the backward pass */
    return CNB_OK;
}

/* y is (n,c,p,q), x is (n,c,h,w). workspace is unused (size 0). */
cnb_status naive_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                              void *workspace) {
    (void)workspace;
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_pool_desc("pool_forward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "pool_forward", y);
    CNB_CHECK_PTR(ctx, "pool_forward", x);
    const double window = (double)d->kh * d->kw;
    for (size_t plane = 0; plane < (size_t)d->n * d->c; plane++) {
        const float *xp = x + plane * d->h * d->w;
        float *yp = y + plane * d->p * d->q;
        for (int oh = 0; oh < d->p; oh++) {
            for (int ow = 0; ow < d->q; ow++) {
                if (d->mode == CNB_POOL_MAX)
                    yp[oh * d->q + ow] = xp[window_argmax(d, xp, oh, ow)];
                else
                    yp[oh * d->q + ow] = (float)(window_sum(d, xp, oh, ow) / window);
            }
        }
    }
    return CNB_OK;
}

/* dx is (n,c,h,w), dy is (n,c,p,q), x is the forward's input; y and workspace are unused.
 * Max: each dy goes to its window's argmax. Avg: each dy is spread as dy/(kh*kw) over the real
 * cells of its window. Overlapping windows (stride < window) add up. */
cnb_status naive_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                               const float *dy, const float *x, const float *y,
                               const void *workspace) {
    (void)y;
    (void)workspace;
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_pool_desc("pool_backward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "pool_backward", dx);
    CNB_CHECK_PTR(ctx, "pool_backward", dy);
    if (d->mode == CNB_POOL_MAX) CNB_CHECK_PTR(ctx, "pool_backward", x);
    const size_t plane_in = (size_t)d->h * d->w, plane_out = (size_t)d->p * d->q;
    const float window = (float)d->kh * (float)d->kw;
    for (size_t e = 0; e < (size_t)d->n * d->c * plane_in; e++) dx[e] = 0.0f;
    for (size_t plane = 0; plane < (size_t)d->n * d->c; plane++) {
        float *dxp = dx + plane * plane_in;
        const float *dyp = dy + plane * plane_out;
        for (int oh = 0; oh < d->p; oh++) {
            for (int ow = 0; ow < d->q; ow++) {
                float g = dyp[oh * d->q + ow];
                if (d->mode == CNB_POOL_MAX) {
                    dxp[window_argmax(d, x + plane * plane_in, oh, ow)] += g;
                    continue;
                }
                for (int i = 0; i < d->kh; i++) {
                    int ih = oh * d->stride_h - d->pad_h + i;
                    if (ih < 0 || ih >= d->h) continue;
                    for (int j = 0; j < d->kw; j++) {
                        int iw = ow * d->stride_w - d->pad_w + j;
                        if (iw < 0 || iw >= d->w) continue;
                        dxp[(size_t)ih * d->w + iw] += g / window;
                    }
                }
            }
        }
    }
    return CNB_OK;
}
