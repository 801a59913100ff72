/* corr2d.cu — the textbook single-channel 2-D cross-correlation, valid mode, stride 1: one
 * thread per output, the window summed in row-major order with fused multiply-adds. */
#include <math.h>

#include "cuda_kernels.h"

namespace {

/* y (h-kh+1, w-kw+1), x (h, w), k (kh, kw). */
__global__ void corr2d_kernel(float *y, const float *x, const float *k, int w, int kh, int kw,
                              int oh, int ow) {
    const int total = oh * ow;
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64, i = e / ow, j = e - i * ow;
        float sum = 0.0f;
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++) sum = fmaf(x[(i + a) * w + j + b], k[a * kw + b], sum);
        y[e] = sum;
    }
}

} // namespace

extern "C" cudaError_t cnbk_corr2d(cudaStream_t s, float *y, const float *x, const float *k,
                                   int h, int w, int kh, int kw) {
    int oh = h - kh + 1, ow = w - kw + 1;
    int blocks = cnb_plan_blocks((size_t)oh * ow, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(corr2d_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s, y, x, k,
                      w, kh, kw, oh, ow);
}
