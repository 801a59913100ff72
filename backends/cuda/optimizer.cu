/* optimizer.cu — SGD with momentum and Adam over one flat block of parameters, element-wise.
 * Every operation is spelled as a separately rounded intrinsic (no fused multiply-add) in the
 * order torch.optim writes it and the naive backend computes it, so the update is the same
 * float arithmetic as PyTorch's CPU kernel. */
#include <math.h>

#include "cuda_kernels.h"

namespace {

/* g = grad + wd*param;  v = momentum*v + g;  param -= lr*v. */
__global__ void sgd_step_kernel(float lr, float momentum, float wd, size_t count, float *param,
                                float *velocity, const float *grad) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float p = param[i];
        float g = __fadd_rn(grad[i], __fmul_rn(wd, p));
        float v = __fadd_rn(__fmul_rn(momentum, velocity[i]), g);
        velocity[i] = v;
        param[i] = __fsub_rn(p, __fmul_rn(lr, v));
    }
}

/* g = grad + wd*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 * param -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps). */
__global__ void adam_step_kernel(float b1, float b2, float eps, float wd, float step_size,
                                 float bc2_sqrt, size_t count, float *param, float *m, float *v,
                                 const float *grad) {
    const float one_b1 = __fsub_rn(1.0f, b1), one_b2 = __fsub_rn(1.0f, b2);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float p = param[i];
        float g = __fadd_rn(grad[i], __fmul_rn(wd, p));
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_b1, g));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denom = __fadd_rn(__fdiv_rn(sqrtf(vi), bc2_sqrt), eps);
        param[i] = __fsub_rn(p, __fdiv_rn(__fmul_rn(step_size, mi), denom));
    }
}

} // namespace

extern "C" cudaError_t cnbk_sgd_step(cudaStream_t s, const cnb_sgd_desc *d, size_t count,
                                     float *param, float *velocity, const float *grad) {
    int blocks = cnb_plan_blocks(count, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(sgd_step_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s, d->lr,
                      d->momentum, d->weight_decay, count, param, velocity, grad);
}

extern "C" cudaError_t cnbk_adam_step(cudaStream_t s, const cnb_adam_desc *d, float step_size,
                                      float bias_correction2_sqrt, size_t count, float *param,
                                      float *m, float *v, const float *grad) {
    int blocks = cnb_plan_blocks(count, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(adam_step_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS), s,
                      d->beta1, d->beta2, d->eps, d->weight_decay, step_size,
                      bias_correction2_sqrt, count, param, m, v, grad);
}
