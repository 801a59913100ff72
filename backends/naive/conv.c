/* conv.c — 2-D convolution (cross-correlation) forward, backward-data and backward-filter, and
 * the bias pair, as direct loops. Sums run in double (a float*float product is exact in double),
 * so the result is the exact sum rounded once: an oracle whose own error is negligible.
 *
 * Loop order is chosen so the innermost loop runs over output columns with a unit (or constant)
 * stride into a row of doubles, which gcc -O3 vectorizes; the reductions are spread over that
 * row instead of a single scalar chain. */
#include "cnb_abi_check.h"
#include "naive.h"

/* The outputs o in [*lo, *hi) of a dimension of size out whose input index
 * o*stride - pad + off falls inside [0, in): the rest would read zero padding. */
static void valid_outputs(int in, int pad, int off, int stride, int out, int *lo, int *hi) {
    int first = pad - off;         /* need o*stride >= pad - off */
    int last = in - 1 + pad - off; /* need o*stride <= in - 1 + pad - off */
    int l = first <= 0 ? 0 : (first + stride - 1) / stride;
    int h = last < 0 ? 0 : last / stride + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* y is (n,k,p,q), x is (n,c,h,w), weight is (k,c,r,s), bias is (k) or NULL:
 *   y[b,o,oh,ow] = bias[o] + sum_{ci,i,j} weight[o,ci,i,j] * x[b,ci, oh*sh-ph+i, ow*sw-pw+j]
 * with x outside the image read as zero. */
cnb_status naive_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y, const float *x,
                              const float *weight, const float *bias) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_conv_desc("conv_forward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_forward", y);
    CNB_CHECK_PTR(ctx, "conv_forward", x);
    CNB_CHECK_PTR(ctx, "conv_forward", weight);
    const int N = d->n, C = d->c, H = d->h, W = d->w, K = d->k, R = d->r, S = d->s;
    const int P = d->p, Q = d->q, SH = d->stride_h, SW = d->stride_w, PH = d->pad_h,
              PW = d->pad_w;
    double *acc; /* (Q): one output row */
    if ((st = naive_scratch(ctx, (size_t)Q, &acc)) != CNB_OK) return st;

    for (int b = 0; b < N; b++) {
        for (int o = 0; o < K; o++) {
            for (int oh = 0; oh < P; oh++) {
                for (int ow = 0; ow < Q; ow++) acc[ow] = 0.0;
                for (int ci = 0; ci < C; ci++) {
                    for (int i = 0; i < R; i++) {
                        int ih = oh * SH - PH + i;
                        if (ih < 0 || ih >= H) continue;
                        const float *xrow = x + (((size_t)b * C + ci) * H + ih) * W;
                        const float *wrow = weight + (((size_t)o * C + ci) * R + i) * S;
                        for (int j = 0; j < S; j++) {
                            int lo, hi;
                            valid_outputs(W, PW, j, SW, Q, &lo, &hi);
                            double wv = wrow[j];
                            for (int ow = lo; ow < hi; ow++)
                                acc[ow] += wv * xrow[ow * SW - PW + j];
                        }
                    }
                }
                float *yrow = y + (((size_t)b * K + o) * P + oh) * Q;
                double bv = bias ? bias[o] : 0.0;
                for (int ow = 0; ow < Q; ow++) yrow[ow] = (float)(acc[ow] + bv);
            }
        }
    }
    return CNB_OK;
}

/* dx is (n,c,h,w), dy is (n,k,p,q), weight is (k,c,r,s). The adjoint of the forward: every
 * product weight[o,ci,i,j] * x[b,ci,ih,iw] in the forward sends dy[b,o,oh,ow] * weight back to
 * dx[b,ci,ih,iw]. Written as that scatter, one (b,ci) plane of doubles at a time. */
cnb_status naive_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                    const float *dy, const float *weight) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_conv_desc("conv_backward_data", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward_data", dx);
    CNB_CHECK_PTR(ctx, "conv_backward_data", dy);
    CNB_CHECK_PTR(ctx, "conv_backward_data", weight);
    const int N = d->n, C = d->c, H = d->h, W = d->w, K = d->k, R = d->r, S = d->s;
    const int P = d->p, Q = d->q, SH = d->stride_h, SW = d->stride_w, PH = d->pad_h,
              PW = d->pad_w;
    double *plane; /* (H, W): dx of one (b, ci) */
    if ((st = naive_scratch(ctx, (size_t)H * W, &plane)) != CNB_OK) return st;

    for (int b = 0; b < N; b++) {
        for (int ci = 0; ci < C; ci++) {
            for (size_t e = 0; e < (size_t)H * W; e++) plane[e] = 0.0;
            for (int o = 0; o < K; o++) {
                const float *wk = weight + ((size_t)o * C + ci) * R * S;
                for (int oh = 0; oh < P; oh++) {
                    const float *dyrow = dy + (((size_t)b * K + o) * P + oh) * Q;
                    for (int i = 0; i < R; i++) {
                        int ih = oh * SH - PH + i;
                        if (ih < 0 || ih >= H) continue;
                        double *prow = plane + (size_t)ih * W;
                        for (int j = 0; j < S; j++) {
                            int lo, hi;
                            valid_outputs(W, PW, j, SW, Q, &lo, &hi);
                            double wv = wk[i * S + j];
                            for (int ow = lo; ow < hi; ow++)
                                prow[ow * SW - PW + j] += wv * dyrow[ow];
                        }
                    }
                }
            }
            float *dxp = dx + ((size_t)b * C + ci) * H * W;
            for (size_t e = 0; e < (size_t)H * W; e++) dxp[e] = (float)plane[e];
        }
    }
    return CNB_OK;
}

/* dweight is (k,c,r,s), dy is (n,k,p,q), x is (n,c,h,w):
 *   dweight[o,ci,i,j] = sum_{b,oh,ow} dy[b,o,oh,ow] * x[b,ci, oh*sh-ph+i, ow*sw-pw+j]
 * The sum over ow is kept in a row of doubles (one partial sum per column), added up at the end,
 * so the long reduction vectorizes without reordering anything at run time. */
cnb_status naive_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                      const float *dy, const float *x) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_conv_desc("conv_backward_filter", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "conv_backward_filter", dweight);
    CNB_CHECK_PTR(ctx, "conv_backward_filter", dy);
    CNB_CHECK_PTR(ctx, "conv_backward_filter", x);
    const int N = d->n, C = d->c, H = d->h, W = d->w, K = d->k, R = d->r, S = d->s;
    const int P = d->p, Q = d->q, SH = d->stride_h, SW = d->stride_w, PH = d->pad_h,
              PW = d->pad_w;
    double *acc; /* (Q): partial sums per output column */
    if ((st = naive_scratch(ctx, (size_t)Q, &acc)) != CNB_OK) return st;

    for (int o = 0; o < K; o++) {
        for (int ci = 0; ci < C; ci++) {
            for (int i = 0; i < R; i++) {
                int oh_lo, oh_hi;
                valid_outputs(H, PH, i, SH, P, &oh_lo, &oh_hi);
                for (int j = 0; j < S; j++) {
                    int lo, hi;
                    valid_outputs(W, PW, j, SW, Q, &lo, &hi);
                    for (int ow = 0; ow < Q; ow++) acc[ow] = 0.0;
                    for (int b = 0; b < N; b++) {
                        for (int oh = oh_lo; oh < oh_hi; oh++) {
                            int ih = oh * SH - PH + i;
                            const float *dyrow = dy + (((size_t)b * K + o) * P + oh) * Q;
                            const float *xrow = x + (((size_t)b * C + ci) * H + ih) * W;
                            for (int ow = lo; ow < hi; ow++)
                                acc[ow] += (double)dyrow[ow] * xrow[ow * SW - PW + j];
                        }
                    }
                    double sum = 0.0;
                    for (int ow = 0; ow < Q; ow++) sum += acc[ow];
                    dweight[(((size_t)o * C + ci) * R + i) * S + j] = (float)sum;
                }
            }
        }
    }
    return CNB_OK;
}

static cnb_status check_bias_shape(cnb_context *ctx, const char *fn, int n, int c, int hw) {
    CNB_CHECK_POSITIVE(ctx, fn, n);
    CNB_CHECK_POSITIVE(ctx, fn, c);
    CNB_CHECK_POSITIVE(ctx, fn, hw);
    return CNB_OK;
}

/* y is (n,c,hw), in place: y[b,ch,e] += bias[ch]. */
cnb_status naive_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c,
                              int hw) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_bias_shape(ctx, "bias_forward", n, c, hw);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "bias_forward", y);
    CNB_CHECK_PTR(ctx, "bias_forward", bias);
    for (int b = 0; b < n; b++) {
        for (int ch = 0; ch < c; ch++) {
            float *yp = y + ((size_t)b * c + ch) * hw;
            for (int e = 0; e < hw; e++) yp[e] += bias[ch];
        }
    }
    return CNB_OK;
}

/* dbias is (c), dy is (n,c,hw): dbias[ch] = sum_{b,e} dy[b,ch,e]. */
cnb_status naive_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                               int hw) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_bias_shape(ctx, "bias_backward", n, c, hw);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "bias_backward", dbias);
    CNB_CHECK_PTR(ctx, "bias_backward", dy);
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int b = 0; b < n; b++) {
            const float *dyp = dy + ((size_t)b * c + ch) * hw;
            for (int e = 0; e < hw; e++) sum += dyp[e];
        }
        dbias[ch] = (float)sum;
    }
    return CNB_OK;
}
