/* reduce.cuh — the fixed-order block sum the reductions share (PReLU's slope gradient, the mean
 * loss): every thread's value goes into shared memory and a tree halves it, so the same input
 * always gives the same bits; no atomics. */
#ifndef CNB_REDUCE_CUH
#define CNB_REDUCE_CUH

#include "cuda_compat.h"
#include "cuda_plan.h"

namespace {

/* The sum of v over the block's CNB_REDUCE_THREADS threads, valid in thread 0. Every thread of
 * the block must call it (it holds barriers). */
static __device__ float block_sum(float *part, float v) {
    const int tid = (int)threadIdx.x;
    part[tid] = v;
    __syncthreads();
    for (int half = CNB_REDUCE_THREADS / 2; half > 0; half /= 2) {
        if (tid < half) part[tid] += part[tid + half];
        __syncthreads();
    }
    return part[0];
}

/* out[0] = (sum of in[0..count)) / divisor, one block of CNB_REDUCE_THREADS: thread t sums
 * in[t], in[t + threads], ... in that order, then the tree. */
__global__ void __launch_bounds__(CNB_REDUCE_THREADS)
    sum_to_scalar_kernel(float *out, const float *in, int count, float divisor) {
    __shared__ float part[CNB_REDUCE_THREADS];
    float v = 0.0f;
    CNB_BLOCK_STRIDE(i, count, CNB_REDUCE_THREADS) v += in[i];
    float total = block_sum(part, v);
    if (threadIdx.x == 0) out[0] = __fdiv_rn(total, divisor);
}

} // namespace

#endif /* CNB_REDUCE_CUH */
