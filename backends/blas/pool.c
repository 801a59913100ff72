/* pool.c — max and average pooling, forward and backward, as plain loops. Max pooling records
 * each window's argmax (an int32 index into its (h, w) plane) in the workspace, so its backward
 * is a scatter that never looks at x again. The 2x2 stride-2 unpadded window of every model here
 * has its own loop; other shapes take the general one. Average pooling divides by kh*kw, padding
 * included (PyTorch's count_include_pad=True). */
#include <math.h>
#include <string.h>

#include "blas_backend.h"
#include "cnb_abi_check.h"

/* The ABI's shape rules (cnb_abi_check.h), then this backend's limit: x and y indexable with an
 * int. */
static cnb_status check_pool_desc(cnb_context *ctx, const char *fn, const cnb_pool_desc *d) {
    cnb_status st = cnb_check_pool_desc(fn, d, ctx->err, sizeof ctx->err);
    if (st == CNB_OK && !cnb_check_pool_fits_int(fn, d, ctx->err, sizeof ctx->err))
        st = CNB_ERR_INVALID_ARGUMENT;
    return st;
}

static int is_2x2_s2(const cnb_pool_desc *d) {
    return d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0;
}

/* The window rows [*lo, *hi) of output o that fall inside [0, in). */
static void window_range(int *lo, int *hi, int o, int stride, int pad, int k, int in) {
    int start = o * stride - pad;
    *lo = start < 0 ? -start : 0;
    *hi = start + k > in ? in - start : k;
}

cnb_status blas_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes) {
    BLAS_CHECK_CTX(ctx);
    cnb_status st = check_pool_desc(ctx, "pool_workspace_size", d);
    if (st != CNB_OK) return st;
    BLAS_CHECK_PTR(ctx, "pool_workspace_size", bytes);
    /* Max: one int32 argmax per output. Avg needs nothing. */
    *bytes = d->mode == CNB_POOL_MAX ? (size_t)d->n * d->c * d->p * d->q * sizeof(int32_t) : 0;
    return CNB_OK;
}

/* One plane of 2x2 stride-2 max pooling: y (p, q), argmax (p, q), x (h, w). The comparisons
 * run in window order with a strict '>', so the first maximum wins a tie. */
static void max_2x2_plane(float *restrict y, int32_t *restrict arg, const float *restrict x,
                          int w, int p, int q) {
    for (int oh = 0; oh < p; oh++) {
        const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
        const int32_t base = 2 * oh * w;
        float *yr = y + (size_t)oh * q;
        int32_t *ar = arg + (size_t)oh * q;
        for (int ow = 0; ow < q; ow++) {
            float m = r0[2 * ow];
            int32_t at = base + 2 * ow;
            float v = r0[2 * ow + 1];
            if (v > m) { m = v; at = base + 2 * ow + 1; }
            v = r1[2 * ow];
            if (v > m) { m = v; at = base + w + 2 * ow; }
            v = r1[2 * ow + 1];
            if (v > m) { m = v; at = base + w + 2 * ow + 1; }
            yr[ow] = m;
            ar[ow] = at;
        }
    }
}

static void avg_2x2_plane(float *restrict y, const float *restrict x, int w, int p, int q) {
    for (int oh = 0; oh < p; oh++) {
        const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
        float *yr = y + (size_t)oh * q;
        for (int ow = 0; ow < q; ow++)
            yr[ow] = ((r0[2 * ow] + r0[2 * ow + 1]) + (r1[2 * ow] + r1[2 * ow + 1])) * 0.25f;
    }
}

/* Any window shape: max records its argmax, avg sums the real cells and divides by kh*kw. */
static void pool_plane_general(const cnb_pool_desc *d, float *restrict y, int32_t *restrict arg,
                               const float *restrict x) {
    const int w = d->w;
    const float window = (float)d->kh * (float)d->kw;
    for (int oh = 0; oh < d->p; oh++) {
        int ilo, ihi;
        window_range(&ilo, &ihi, oh, d->stride_h, d->pad_h, d->kh, d->h);
        const int ih0 = oh * d->stride_h - d->pad_h;
        for (int ow = 0; ow < d->q; ow++) {
            int jlo, jhi;
            window_range(&jlo, &jhi, ow, d->stride_w, d->pad_w, d->kw, d->w);
            const int iw0 = ow * d->stride_w - d->pad_w;
            if (d->mode == CNB_POOL_MAX) {
                int32_t at = (ih0 + ilo) * w + iw0 + jlo; /* the first real cell */
                float m = x[at];
                for (int ih = ih0 + ilo; ih < ih0 + ihi; ih++) {
                    const float *row = x + (size_t)ih * w;
                    for (int iw = iw0 + jlo; iw < iw0 + jhi; iw++) {
                        if (row[iw] > m) {
                            m = row[iw];
                            at = ih * w + iw;
                        }
                    }
                }
                y[(size_t)oh * d->q + ow] = m;
                arg[(size_t)oh * d->q + ow] = at;
            } else {
                float sum = 0.0f;
                for (int ih = ih0 + ilo; ih < ih0 + ihi; ih++) {
                    const float *row = x + (size_t)ih * w;
                    for (int iw = iw0 + jlo; iw < iw0 + jhi; iw++) sum += row[iw];
                }
                y[(size_t)oh * d->q + ow] = sum / window;
            }
        }
    }
}

/* y is (n,c,p,q), x is (n,c,h,w); max pooling writes its argmax (n,c,p,q int32) to workspace. */
cnb_status blas_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                             void *workspace) {
    BLAS_CHECK_CTX(ctx);
    cnb_status st = check_pool_desc(ctx, "pool_forward", d);
    if (st != CNB_OK) return st;
    BLAS_CHECK_PTR(ctx, "pool_forward", y);
    BLAS_CHECK_PTR(ctx, "pool_forward", x);
    const int max = d->mode == CNB_POOL_MAX;
    if (max && !workspace)
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                         "pool_forward: max pooling needs the workspace (pool_workspace_size "
                         "bytes) for its argmax, got NULL");
    const size_t planes = (size_t)d->n * d->c, in = (size_t)d->h * d->w,
                 out = (size_t)d->p * d->q;
    int32_t *arg = workspace;
    const int fast = is_2x2_s2(d);
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * in;
        float *yp = y + pl * out;
        if (fast && max) max_2x2_plane(yp, arg + pl * out, xp, d->w, d->p, d->q);
        else if (fast) avg_2x2_plane(yp, xp, d->w, d->p, d->q);
        else pool_plane_general(d, yp, max ? arg + pl * out : NULL, xp);
    }
    return CNB_OK;
}

/* dx is (n,c,h,w), dy is (n,c,p,q); dx is overwritten. Max: each dy goes to the argmax the
 * forward recorded (x and y are not needed). Avg: each dy is spread as dy/(kh*kw) over the real
 * cells of its window. Overlapping windows (stride < window) add up. Work goes plane by plane so
 * the zeroing and the scatter meet in L1. */
cnb_status blas_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                              const float *dy, const float *x, const float *y,
                              const void *workspace) {
    (void)x;
    (void)y;
    BLAS_CHECK_CTX(ctx);
    cnb_status st = check_pool_desc(ctx, "pool_backward", d);
    if (st != CNB_OK) return st;
    BLAS_CHECK_PTR(ctx, "pool_backward", dx);
    BLAS_CHECK_PTR(ctx, "pool_backward", dy);
    const int max = d->mode == CNB_POOL_MAX;
    if (max && !workspace)
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                         "pool_backward: max pooling needs the forward's workspace (its argmax), "
                         "got NULL");
    const size_t planes = (size_t)d->n * d->c, in = (size_t)d->h * d->w,
                 out = (size_t)d->p * d->q;
    const int32_t *arg = workspace;
    const float window = (float)d->kh * (float)d->kw;
    for (size_t pl = 0; pl < planes; pl++) {
        float *restrict dxp = dx + pl * in;
        const float *restrict dyp = dy + pl * out;
        memset(dxp, 0, in * sizeof(float));
        if (max) {
            const int32_t *ap = arg + pl * out;
            for (size_t o = 0; o < out; o++) {
                /* An index outside the plane means the workspace is not this forward's. */
                if ((uint32_t)ap[o] >= (uint32_t)in)
                    return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                                     "pool_backward: workspace entry %zu is %d, outside the "
                                     "%dx%d plane: it was not written by pool_forward with this "
                                     "descriptor",
                                     pl * out + o, (int)ap[o], d->h, d->w);
                dxp[ap[o]] += dyp[o];
            }
            continue;
        }
        for (int oh = 0; oh < d->p; oh++) {
            int ilo, ihi;
            window_range(&ilo, &ihi, oh, d->stride_h, d->pad_h, d->kh, d->h);
            const int ih0 = oh * d->stride_h - d->pad_h;
            for (int ow = 0; ow < d->q; ow++) {
                int jlo, jhi;
                window_range(&jlo, &jhi, ow, d->stride_w, d->pad_w, d->kw, d->w);
                const int iw0 = ow * d->stride_w - d->pad_w;
                const float g = dyp[(size_t)oh * d->q + ow] / window;
                for (int ih = ih0 + ilo; ih < ih0 + ihi; ih++) {
                    float *row = dxp + (size_t)ih * d->w;
                    for (int iw = iw0 + jlo; iw < iw0 + jhi; iw++) row[iw] += g;
                }
            }
        }
    }
    return CNB_OK;
}
