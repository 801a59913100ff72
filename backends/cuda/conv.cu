/* conv.cu — convolution forward, backward-data and backward-filter as implicit GEMMs on the
 * tiled SGEMM (the index maps are in cuda_plan.h), and the bias pair. Nothing here uses
 * atomics: backward data gathers, the weight gradient's long reduction is split into fixed
 * slices summed in order, and the bias gradient is one fixed-order tree per channel. */
#include <math.h>

#include "cuda_kernels.h"
#include "tiled_gemm.cuh"

namespace {

/* y = W col(x) + bias. */
struct ConvForwardOp {
    cnb_conv_geom g;
    float *y;
    const float *x, *w, *bias;
    __device__ float a(int row, int kk) const { return cnb_conv_forward_a(&g, w, row, kk); }
    __device__ float b(int kk, int col) const { return cnb_conv_forward_b(&g, x, kk, col); }
    __device__ void store(int row, int col, float acc) const {
        y[cnb_conv_forward_y_index(&g, row, col)] = bias ? acc + bias[row] : acc;
    }
};

/* dx = W^T gather(dy). */
struct ConvBackwardDataOp {
    cnb_conv_geom g;
    float *dx;
    const float *dy, *w;
    __device__ float a(int row, int kk) const { return cnb_conv_backward_data_a(&g, w, row, kk); }
    __device__ float b(int kk, int col) const {
        return cnb_conv_backward_data_b(&g, dy, kk, col);
    }
    __device__ void store(int row, int col, float acc) const {
        dx[cnb_conv_backward_data_dx_index(&g, row, col)] = acc;
    }
};

/* dW = dy col(x)^T. */
struct ConvBackwardFilterOp {
    cnb_conv_geom g;
    float *dw;
    const float *dy, *x;
    __device__ float a(int row, int kk) const {
        return cnb_conv_backward_filter_a(&g, dy, row, kk);
    }
    __device__ float b(int kk, int col) const {
        return cnb_conv_backward_filter_b(&g, x, kk, col);
    }
    __device__ void store(int row, int col, float acc) const {
        dw[cnb_conv_backward_filter_dw_index(&g, row, col)] = acc;
    }
};

/* y (n,c,hw) += bias (c). */
__global__ void bias_forward_kernel(float *y, const float *bias, int c, int hw, int total) {
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64;
        y[e] = __fadd_rn(y[e], bias[(e / hw) % c]);
    }
}

/* One block per channel: each thread sums a fixed stride of the channel's n*hw values, then a
 * tree halves the block's sums. */
__global__ void __launch_bounds__(CNB_REDUCE_THREADS)
    bias_backward_kernel(float *dbias, const float *dy, int n, int c, int hw) {
    __shared__ float part[CNB_REDUCE_THREADS];
    const int ch = (int)blockIdx.x, tid = (int)threadIdx.x;
    float sum = 0.0f;
    CNB_BLOCK_STRIDE(e64, (long long)n * hw, CNB_REDUCE_THREADS) {
        const int e = (int)e64, b = e / hw, i = e - b * hw;
        sum += dy[(b * c + ch) * hw + i];
    }
    part[tid] = sum;
    __syncthreads();
    for (int half = CNB_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (tid < half) part[tid] += part[tid + half];
        __syncthreads();
    }
    if (tid == 0) dbias[ch] = part[0];
}

} // namespace

extern "C" cudaError_t cnbk_conv_forward(cudaStream_t s, const cnb_conv_geom *g,
                                         const cnb_gemm_plan *plan, float *partial, float *y,
                                         const float *x, const float *weight, const float *bias) {
    ConvForwardOp op{*g, y, x, weight, bias};
    /* A = W is k-contiguous; B's columns are output pixels, contiguous in x along a row. */
    return run_tiled_gemm<ConvForwardOp, true, true>(s, op, plan, partial);
}

extern "C" cudaError_t cnbk_conv_backward_data(cudaStream_t s, const cnb_conv_geom *g,
                                               const cnb_gemm_plan *plan, float *partial,
                                               float *dx, const float *dy, const float *weight) {
    ConvBackwardDataOp op{*g, dx, dy, weight};
    return run_tiled_gemm<ConvBackwardDataOp, true, true>(s, op, plan, partial);
}

extern "C" cudaError_t cnbk_conv_backward_filter(cudaStream_t s, const cnb_conv_geom *g,
                                                 const cnb_gemm_plan *plan, float *partial,
                                                 float *dweight, const float *dy,
                                                 const float *x) {
    ConvBackwardFilterOp op{*g, dweight, dy, x};
    /* Both operands run along (image, pixel) in k: dy and x are contiguous there. */
    return run_tiled_gemm<ConvBackwardFilterOp, true, false>(s, op, plan, partial);
}

extern "C" cudaError_t cnbk_bias_forward(cudaStream_t s, float *y, const float *bias, int n,
                                         int c, int hw) {
    int total = n * c * hw;
    int blocks = cnb_plan_blocks((size_t)total, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(bias_forward_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s, y,
                      bias, c, hw, total);
}

extern "C" cudaError_t cnbk_bias_backward(cudaStream_t s, float *dbias, const float *dy, int n,
                                          int c, int hw) {
    return cnb_launch(bias_backward_kernel, dim3((unsigned)c), dim3(CNB_REDUCE_THREADS), s,
                      dbias, dy, n, c, hw);
}
