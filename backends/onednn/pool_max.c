/* pool_max.c — max pooling as OpenMP loops over planes instead of oneDNN's primitive. Measured
 * here (2 threads, best of 300 calls, simplecnn's two 2x2 poolings at batch 64, ms): forward
 * 0.50 + 0.26 with the primitive, 0.26 + 0.18 with these loops; backward with ReLU's backward
 * after it 0.74 + 0.39 (primitive + eltwise primitive), 0.34 + 0.17 (loops + eltwise), and
 * 0.26 + 0.12 with ReLU folded in (pool_act_backward). The argmax of each window (an int32
 * index into its plane) goes to the workspace, so the backward is a scatter per plane, and an
 * activation folded into it (pool_act_backward) is applied to the plane while it is in L1.
 * NaN propagates: a window holding NaN yields NaN (its first NaN is the argmax). */
#include <string.h>

#include "cnb_abi_check.h"
#include "onednn.h"

/* Planes per thread at least, so that small layers stay on one thread. */
#define POOL_PAR_MIN_FLOATS 16384

/* v beats the running maximum m: larger, or NaN (cnb_abi.h's rule, PyTorch's max_pool2d: a
 * window holding NaN yields NaN and its gradient goes to the LAST NaN in window order). */
static inline int beats(float v, float m) { return v > m || v != v; }

static void max_plane(const cnb_pool_desc *d, float *restrict y, int32_t *restrict arg,
                      const float *restrict x) {
    for (int oh = 0; oh < d->p; oh++) {
        const int ih0 = oh * d->stride_h - d->pad_h;
        const int ilo = ih0 < 0 ? 0 : ih0, ihi = ih0 + d->kh > d->h ? d->h : ih0 + d->kh;
        for (int ow = 0; ow < d->q; ow++) {
            const int iw0 = ow * d->stride_w - d->pad_w;
            const int jlo = iw0 < 0 ? 0 : iw0, jhi = iw0 + d->kw > d->w ? d->w : iw0 + d->kw;
            int32_t at = ilo * d->w + jlo; /* the first real cell; first maximum wins ties */
            float m = x[at];
            for (int ih = ilo; ih < ihi; ih++)
                for (int iw = jlo; iw < jhi; iw++)
                    if (beats(x[ih * d->w + iw], m)) {
                        at = ih * d->w + iw;
                        m = x[at];
                    }
            y[oh * d->q + ow] = m;
            arg[oh * d->q + ow] = at;
        }
    }
}

/* The 2x2 stride-2 unpadded window of every model here: the four cells in window order. */
static void max_2x2_plane(float *restrict y, int32_t *restrict arg, const float *restrict x,
                          int w, int p, int q) {
    for (int oh = 0; oh < p; oh++) {
        const float *r0 = x + (size_t)(2 * oh) * w, *r1 = r0 + w;
        const int32_t base = 2 * oh * w;
        float *yr = y + (size_t)oh * q;
        int32_t *ar = arg + (size_t)oh * q;
        for (int ow = 0; ow < q; ow++) {
            float m = r0[2 * ow], v;
            int32_t at = base + 2 * ow;
            v = r0[2 * ow + 1];
            if (beats(v, m)) m = v, at = base + 2 * ow + 1;
            v = r1[2 * ow];
            if (beats(v, m)) m = v, at = base + w + 2 * ow;
            v = r1[2 * ow + 1];
            if (beats(v, m)) m = v, at = base + w + 2 * ow + 1;
            yr[ow] = m;
            ar[ow] = at;
        }
    }
}

static int is_2x2_s2(const cnb_pool_desc *d) {
    return d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0;
}

size_t odn_maxpool_workspace_bytes(const cnb_pool_desc *d) {
    return (size_t)d->n * d->c * d->p * d->q * sizeof(int32_t);
}

void odn_maxpool_forward(const cnb_pool_desc *d, float *y, const float *x, int32_t *arg) {
    const long planes = (long)d->n * d->c;
    const int fast = is_2x2_s2(d);
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
#pragma omp parallel for schedule(static) if (planes * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long pl = 0; pl < planes; pl++) {
        if (fast) max_2x2_plane(y + pl * out, arg + pl * out, x + pl * in, d->w, d->p, d->q);
        else max_plane(d, y + pl * out, arg + pl * out, x + pl * in);
    }
}

/* dx = act'(a) * dx over one plane (a: the activation's output, the pooling's input). ReLU's
 * derivative is 0 at a == 0, as PyTorch's. */
static void act_grad_plane(float *restrict dx, const float *restrict a, size_t n, int act) {
    switch (act) {
    case CNB_ACT_RELU:
        for (size_t i = 0; i < n; i++) dx[i] = a[i] <= 0.0f ? 0.0f : dx[i]; /* NaN: dx, as relu */
        break;
    case CNB_ACT_TANH:
        for (size_t i = 0; i < n; i++) dx[i] *= (1.0f - a[i]) * (1.0f + a[i]);
        break;
    case CNB_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) dx[i] *= a[i] * (1.0f - a[i]);
        break;
    default:
        break;
    }
}

/* Returns -1 when every argmax is inside its plane, else the first bad workspace entry. */
long odn_maxpool_backward(const cnb_pool_desc *d, int act, float *dx, const float *dy,
                          const float *a, const int32_t *arg) {
    const long planes = (long)d->n * d->c;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    long bad = -1;
#pragma omp parallel for schedule(static) if (planes * (long)in >= POOL_PAR_MIN_FLOATS)
    for (long pl = 0; pl < planes; pl++) {
        float *restrict dxp = dx + pl * in;
        const float *restrict dyp = dy + pl * out;
        const int32_t *ap = arg + pl * out;
        memset(dxp, 0, in * sizeof(float));
        for (size_t o = 0; o < out; o++) {
            if ((uint32_t)ap[o] >= (uint32_t)in) {
#pragma omp critical(odn_maxpool_bad)
                if (bad < 0 || pl * (long)out + (long)o < bad) bad = pl * (long)out + (long)o;
                break;
            }
            dxp[ap[o]] += dyp[o];
        }
        if (act != CNB_FUSED_ACT_NONE) act_grad_plane(dxp, a + pl * in, in, act);
    }
    return bad;
}
