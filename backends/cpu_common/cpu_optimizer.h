/* cpu_optimizer.h — SGD with momentum and Adam as torch.optim.SGD and torch.optim.Adam compute
 * them (the formulas in cnb_abi.h), in float like PyTorch, over a range [lo, hi) of the flat
 * parameter block. The loops are static inline so each backend compiles them with its own flags
 * and threading (naive calls them once over the block, blas once per thread's range); the
 * order of each expression is the reference's, so every backend matches it bit for bit. */
#ifndef CNB_CPU_OPTIMIZER_H
#define CNB_CPU_OPTIMIZER_H

#include <math.h>
#include <stddef.h>

#include "cpu_common.h"

/* The argument checks of sgd_step and adam_step: d present, count > 0, every pointer present,
 * and for Adam step >= 1. */
cnb_status cpu_check_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count,
                              const float *param, const float *velocity, const float *grad);
cnb_status cpu_check_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count,
                               const float *param, const float *m, const float *v,
                               const float *grad);

/* g = grad + weight_decay*param;  v = momentum*v + g;  param -= lr*v */
static inline void cpu_sgd_update(float *restrict param, float *restrict velocity,
                                  const float *restrict grad, float lr, float momentum,
                                  float weight_decay, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i] + weight_decay * param[i];
        float v = momentum * velocity[i] + g;
        velocity[i] = v;
        param[i] -= lr * v;
    }
}

/* Adam's per-step constants. PyTorch computes the bias corrections as Python floats (double)
 * and hands them to float kernels. */
typedef struct cpu_adam_step {
    float b1, b2, eps, weight_decay;
    float step_size;             /* lr / (1 - b1^t) */
    float bias_correction2_sqrt; /* sqrt(1 - b2^t) */
} cpu_adam_step;

static inline cpu_adam_step cpu_adam_prepare(const cnb_adam_desc *d) {
    const double bias_correction1 = 1.0 - pow((double)d->beta1, d->step);
    const double bias_correction2 = 1.0 - pow((double)d->beta2, d->step);
    cpu_adam_step s = {.b1 = d->beta1, .b2 = d->beta2, .eps = d->eps,
                       .weight_decay = d->weight_decay,
                       .step_size = (float)((double)d->lr / bias_correction1),
                       .bias_correction2_sqrt = (float)sqrt(bias_correction2)};
    return s;
}

/* g = grad + weight_decay*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 * param -= step_size * m / (sqrt(v) / bias_correction2_sqrt + eps) */
static inline void cpu_adam_update(const cpu_adam_step *s, float *restrict param,
                                   float *restrict m, float *restrict v,
                                   const float *restrict grad, size_t lo, size_t hi) {
    const float b1 = s->b1, b2 = s->b2, eps = s->eps, wd = s->weight_decay;
    const float step_size = s->step_size, bias_correction2_sqrt = s->bias_correction2_sqrt;
    const float one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i] + wd * param[i];
        float mi = b1 * m[i] + one_minus_b1 * g;
        float vi = b2 * v[i] + one_minus_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
        param[i] -= step_size * mi / denom;
    }
}

#endif
