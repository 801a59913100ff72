/* optimizer.c — SGD with momentum and Adam over one flat block of parameters, written exactly
 * as torch.optim.SGD and torch.optim.Adam compute them (the formulas in cnb_abi.h), in float
 * like PyTorch, with Adam's bias corrections in double from the step count. The loops are
 * element-wise and vectorize; the order of each expression is the reference's, so results match
 * it bit for bit. */
#include <math.h>

#include "blas_backend.h"

/* param, velocity, grad are (count):
 *   g = grad + weight_decay*param;  v = momentum*v + g;  param -= lr*v */
cnb_status blas_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                         float *velocity, const float *grad) {
    BLAS_CHECK_CTX(ctx);
    BLAS_CHECK_PTR(ctx, "sgd_step", d);
    if (count == 0) return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "sgd_step: count is 0");
    BLAS_CHECK_PTR(ctx, "sgd_step", param);
    BLAS_CHECK_PTR(ctx, "sgd_step", velocity);
    BLAS_CHECK_PTR(ctx, "sgd_step", grad);
    const float lr = d->lr, mom = d->momentum, wd = d->weight_decay;
    float *restrict p = param, *restrict v = velocity;
    const float *restrict g = grad;
    for (size_t i = 0; i < count; i++) {
        float gi = g[i] + wd * p[i];
        float vi = mom * v[i] + gi;
        v[i] = vi;
        p[i] -= lr * vi;
    }
    return CNB_OK;
}

/* param, m, v, grad are (count), t = d->step >= 1:
 *   g = grad + weight_decay*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *   param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
cnb_status blas_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count, float *param,
                          float *m, float *v, const float *grad) {
    BLAS_CHECK_CTX(ctx);
    BLAS_CHECK_PTR(ctx, "adam_step", d);
    if (count == 0) return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: count is 0");
    if (d->step < 1)
        return blas_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: step=%d must be >= 1",
                         d->step);
    BLAS_CHECK_PTR(ctx, "adam_step", param);
    BLAS_CHECK_PTR(ctx, "adam_step", m);
    BLAS_CHECK_PTR(ctx, "adam_step", v);
    BLAS_CHECK_PTR(ctx, "adam_step", grad);
    const float b1 = d->beta1, b2 = d->beta2, eps = d->eps, wd = d->weight_decay;
    /* PyTorch computes these as Python floats (double) and hands them to float kernels. */
    const double bias_correction1 = 1.0 - pow((double)b1, d->step);
    const double bias_correction2 = 1.0 - pow((double)b2, d->step);
    const float step_size = (float)((double)d->lr / bias_correction1);
    const float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    const float one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
    float *restrict p = param, *restrict mm = m, *restrict vv = v;
    const float *restrict gr = grad;
    for (size_t i = 0; i < count; i++) {
        float g = gr[i] + wd * p[i];
        float mi = b1 * mm[i] + one_minus_b1 * g;
        float vi = b2 * vv[i] + one_minus_b2 * g * g;
        mm[i] = mi;
        vv[i] = vi;
        float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
        p[i] -= step_size * mi / denom;
    }
    return CNB_OK;
}
