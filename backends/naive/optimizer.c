/* optimizer.c — SGD with momentum and Adam over one flat block of parameters, written exactly
 * as torch.optim.SGD and torch.optim.Adam compute them (the formulas in cnb_abi.h), in float
 * like PyTorch, with Adam's bias corrections in double from the step count. */
#include <math.h>

#include "naive.h"

/* param, velocity, grad are (count):
 *   g = grad + weight_decay*param;  v = momentum*v + g;  param -= lr*v */
cnb_status naive_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                          float *velocity, const float *grad) {
    NAIVE_CHECK_CTX(ctx);
    NAIVE_CHECK_PTR(ctx, "sgd_step", d);
    if (count == 0) return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "sgd_step: count is 0");
    NAIVE_CHECK_PTR(ctx, "sgd_step", param);
    NAIVE_CHECK_PTR(ctx, "sgd_step", velocity);
    NAIVE_CHECK_PTR(ctx, "sgd_step", grad);
    const float lr = d->lr, mom = d->momentum, wd = d->weight_decay;
    for (size_t i = 0; i < count; i++) {
        float g = grad[i] + wd * param[i];
        velocity[i] = mom * velocity[i] + g;
        param[i] -= lr * velocity[i];
    }
    return CNB_OK;
}

/* param, m, v, grad are (count), t = d->step >= 1:
 *   g = grad + weight_decay*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *   param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
cnb_status naive_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count, float *param,
                           float *m, float *v, const float *grad) {
    NAIVE_CHECK_CTX(ctx);
    NAIVE_CHECK_PTR(ctx, "adam_step", d);
    if (count == 0) return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: count is 0");
    if (d->step < 1)
        return naive_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: step=%d must be >= 1",
                          d->step);
    NAIVE_CHECK_PTR(ctx, "adam_step", param);
    NAIVE_CHECK_PTR(ctx, "adam_step", m);
    NAIVE_CHECK_PTR(ctx, "adam_step", v);
    NAIVE_CHECK_PTR(ctx, "adam_step", grad);
    const float b1 = d->beta1, b2 = d->beta2, eps = d->eps, wd = d->weight_decay;
    /* PyTorch computes these as Python floats (double) and hands them to float kernels. */
    const double bias_correction1 = 1.0 - pow((double)b1, d->step);
    const double bias_correction2 = 1.0 - pow((double)b2, d->step);
    const float step_size = (float)((double)d->lr / bias_correction1);
    const float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    for (size_t i = 0; i < count; i++) {
        float g = grad[i] + wd * param[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / bias_correction2_sqrt + eps;
        param[i] -= step_size * m[i] / denom;
    }
    return CNB_OK;
}
