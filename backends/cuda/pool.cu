/* pool.cu — max and average pooling. The forward runs one thread per output; max pooling
 * records each window's argmax (index into the (h, w) plane) in the workspace. The backward
 * runs one thread per input and gathers from the outputs whose window covers it, in row-major
 * output order — the order the naive backend adds in — so overlapping windows need no atomics
 * and dx needs no zeroing. */
#include <math.h>

#include "cuda_kernels.h"

namespace {

/* The positions (ih, iw) of the window whose corner is (h0, w0) that lie inside the image, in
 * row-major order: padding is skipped. */
#define FOR_WINDOW_INSIDE(d, h0, w0, ih, iw)                                                 \
    for (int ih = (h0) < 0 ? 0 : (h0); ih < (h0) + (d).kh && ih < (d).h; ih++)               \
        for (int iw = (w0) < 0 ? 0 : (w0); iw < (w0) + (d).kw && iw < (d).w; iw++)

/* y (n,c,p,q), argmax (n,c,p,q) or NULL, x (n,c,h,w). Ties: the first maximum in row-major
 * window order wins (strict '>'), but a NaN always takes over, so a window holding NaN yields
 * its last NaN (PyTorch's rule, cnb_abi.h); padding is skipped, never a candidate. */
__global__ void pool_forward_kernel(cnb_pool_desc d, float *y, int32_t *argmax, const float *x,
                                    int total) {
    const float window = (float)d.kh * (float)d.kw;
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64;
        int ow = e % d.q, t = e / d.q, oh = t % d.p, plane = t / d.p;
        const float *xp = x + plane * d.h * d.w;
        int h0 = oh * d.stride_h - d.pad_h, w0 = ow * d.stride_w - d.pad_w;
        if (d.mode == CNB_POOL_MAX) {
            int best = -1;
            float best_v = -INFINITY;
            FOR_WINDOW_INSIDE(d, h0, w0, ih, iw) {
                float v = xp[ih * d.w + iw];
                if (best < 0 || v > best_v || v != v) {
                    best = ih * d.w + iw;
                    best_v = v;
                }
            }
            y[e] = best_v;
            argmax[e] = best;
        } else {
            float sum = 0.0f;
            FOR_WINDOW_INSIDE(d, h0, w0, ih, iw) sum += xp[ih * d.w + iw];
            y[e] = __fdiv_rn(sum, window); /* padding counted: always kh*kw */
        }
    }
}

/* dx (n,c,h,w), dy (n,c,p,q), argmax (n,c,p,q) for max pooling. */
__global__ void pool_backward_kernel(cnb_pool_desc d, float *dx, const float *dy,
                                     const int32_t *argmax, int total) {
    const float window = (float)d.kh * (float)d.kw;
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64;
        int iw = e % d.w, t = e / d.w, ih = t % d.h, plane = t / d.h;
        int oh_lo, oh_hi, ow_lo, ow_hi;
        cnb_pool_covering(ih, d.pad_h, d.kh, d.stride_h, d.p, &oh_lo, &oh_hi);
        cnb_pool_covering(iw, d.pad_w, d.kw, d.stride_w, d.q, &ow_lo, &ow_hi);
        const int me = ih * d.w + iw, base = plane * d.p * d.q;
        float sum = 0.0f;
        for (int oh = oh_lo; oh <= oh_hi; oh++) {
            for (int ow = ow_lo; ow <= ow_hi; ow++) {
                int o = base + oh * d.q + ow;
                if (d.mode == CNB_POOL_MAX) {
                    if (argmax[o] == me) sum += dy[o];
                } else {
                    sum += __fdiv_rn(dy[o], window);
                }
            }
        }
        dx[e] = sum;
    }
}

} // namespace

extern "C" cudaError_t cnbk_pool_forward(cudaStream_t s, const cnb_pool_desc *d, float *y,
                                         int32_t *argmax, const float *x) {
    int total = d->n * d->c * d->p * d->q;
    int blocks = cnb_plan_blocks((size_t)total, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(pool_forward_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s, *d,
                      y, argmax, x, total);
}

extern "C" cudaError_t cnbk_pool_backward(cudaStream_t s, const cnb_pool_desc *d, float *dx,
                                          const float *dy, const int32_t *argmax) {
    int total = d->n * d->c * d->h * d->w;
    int blocks = cnb_plan_blocks((size_t)total, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(pool_backward_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s, *d,
                      dx, dy, argmax, total);
}
