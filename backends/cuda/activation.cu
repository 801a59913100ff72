/* activation.cu — ReLU, tanh, sigmoid and PReLU (one learned slope), forward and backward,
 * element-wise with grid-stride loops. PReLU's slope gradient is a two-pass sum (fixed block
 * count from cnb_plan_reduce_blocks, then one block), so it is the same bits every run. */
#include <math.h>

#include "cuda_kernels.h"
#include "reduce.cuh"

namespace {

/* y = f(x); slope is read only for PReLU. ReLU is x < 0 ? 0 : x, so NaN stays NaN; PReLU's
 * x > 0 takes the identity branch, so +-0 and NaN take the slope's (cnb_abi.h's rule). */
__global__ void activation_forward_kernel(int act, size_t count, float *y, const float *x,
                                          const float *slope) {
    const float a = act == CNB_ACT_PRELU ? *slope : 0.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        switch (act) {
        case CNB_ACT_RELU: y[i] = v < 0.0f ? 0.0f : v; break;
        case CNB_ACT_TANH: y[i] = tanhf(v); break;
        case CNB_ACT_SIGMOID: y[i] = 1.0f / (1.0f + expf(-v)); break;
        default: y[i] = v > 0.0f ? v : __fmul_rn(a, v); break;
        }
    }
}

/* dx = f'(x) dy from x (ReLU: x <= 0 ? 0 : dy, so 0 at +-0 and dy at NaN) or y (tanh: 1 - y^2,
 * sigmoid: y (1 - y)). */
__global__ void activation_backward_kernel(int act, size_t count, float *dx, const float *dy,
                                           const float *x, const float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = dy[i];
        switch (act) {
        case CNB_ACT_RELU: dx[i] = x[i] <= 0.0f ? 0.0f : g; break;
        case CNB_ACT_TANH: {
            /* (1-t)(1+t), not 1-t*t: near |t| = 1 the latter cancels away its precision. */
            float t = y[i];
            dx[i] = g * ((1.0f - t) * (1.0f + t));
            break;
        }
        default: {
            float t = y[i];
            dx[i] = g * (t * (1.0f - t));
            break;
        }
        }
    }
}

/* PReLU backward, first pass: dx = x > 0 ? dy : slope*dy, and each block's share of
 * dslope = sum over x <= 0 of x*dy into partial[blockIdx.x]. */
__global__ void __launch_bounds__(CNB_REDUCE_THREADS)
    prelu_backward_kernel(size_t count, float *dx, float *partial, const float *dy,
                          const float *x, const float *slope) {
    __shared__ float part[CNB_REDUCE_THREADS];
    const float a = *slope;
    float sum = 0.0f;
    for (size_t i = blockIdx.x * (size_t)CNB_REDUCE_THREADS + threadIdx.x; i < count;
         i += (size_t)gridDim.x * CNB_REDUCE_THREADS) {
        float v = x[i], g = dy[i];
        if (v > 0.0f) {
            dx[i] = g;
        } else {
            dx[i] = __fmul_rn(a, g);
            sum += v * g;
        }
    }
    float total = block_sum(part, sum);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

} // namespace

extern "C" cudaError_t cnbk_activation_forward(cudaStream_t s, int act, size_t count, float *y,
                                               const float *x, const float *slope) {
    int blocks = cnb_plan_blocks(count, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(activation_forward_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s,
                      act, count, y, x, slope);
}

extern "C" cudaError_t cnbk_activation_backward(cudaStream_t s, int act, size_t count,
                                                float *dx, float *dslope, float *partial,
                                                const float *dy, const float *x, const float *y,
                                                const float *slope) {
    if (act != CNB_ACT_PRELU) {
        int blocks = cnb_plan_blocks(count, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
        return cnb_launch(activation_backward_kernel, dim3((unsigned)blocks),
                          dim3(CNB_EW_THREADS), s, act, count, dx, dy, x, y);
    }
    int blocks = cnb_plan_reduce_blocks(count);
    cudaError_t e = cnb_launch(prelu_backward_kernel, dim3((unsigned)blocks),
                               dim3(CNB_REDUCE_THREADS), s, count, dx, partial, dy, x, slope);
    if (e != cudaSuccess) return e;
    return cnb_launch(sum_to_scalar_kernel, dim3(1), dim3(CNB_REDUCE_THREADS), s, dslope,
                      (const float *)partial, blocks, 1.0f);
}
