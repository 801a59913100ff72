/* optimizer.c — SGD with momentum and Adam over the flat parameter block, as plain loops on the
 * same OpenMP team oneDNN uses (no second thread pool). Formulas are PyTorch's, as cnb_abi.h
 * states them. */
#include <math.h>

#include "onednn.h"

/* Below this many parameters one thread is faster than waking the team. */
#define ODN_OPT_PAR_MIN 65536

cnb_status odn_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                        float *velocity, const float *grad) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    CNB_CHECK_PTR(ctx, "sgd_step", d);
    if (count == 0) return CNB_OK;
    CNB_CHECK_PTR(ctx, "sgd_step", param);
    CNB_CHECK_PTR(ctx, "sgd_step", grad);
    if (d->momentum != 0.0f) CNB_CHECK_PTR(ctx, "sgd_step", velocity);
    if (!(d->lr >= 0.0f) || !(d->momentum >= 0.0f) || !(d->weight_decay >= 0.0f))
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "sgd_step: lr=%g, momentum=%g, weight_decay=%g must be >= 0", d->lr,
                        d->momentum, d->weight_decay);
    odn_enter(ctx);
    const float lr = d->lr, mom = d->momentum, wd = d->weight_decay;
    long long cnt = (long long)count;
    if (mom == 0.0f) {
        /* torch.optim.SGD keeps no buffer without momentum: param -= lr * g. */
#pragma omp parallel for simd schedule(static) if (cnt >= ODN_OPT_PAR_MIN)
        for (long long i = 0; i < cnt; i++) param[i] -= lr * (grad[i] + wd * param[i]);
        return CNB_OK;
    }
#pragma omp parallel for simd schedule(static) if (cnt >= ODN_OPT_PAR_MIN)
    for (long long i = 0; i < cnt; i++) {
        float g = grad[i] + wd * param[i];
        float v = mom * velocity[i] + g;
        velocity[i] = v;
        param[i] -= lr * v;
    }
    return CNB_OK;
}

cnb_status odn_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count, float *param,
                         float *m, float *v, const float *grad) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    CNB_CHECK_PTR(ctx, "adam_step", d);
    if (d->step < 1)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "adam_step: step=%d must be >= 1",
                        d->step);
    if (!(d->beta1 >= 0.0f && d->beta1 < 1.0f) || !(d->beta2 >= 0.0f && d->beta2 < 1.0f) ||
        !(d->lr >= 0.0f) || !(d->eps >= 0.0f) || !(d->weight_decay >= 0.0f))
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "adam_step: need 0 <= beta1, beta2 < 1 and lr, eps, weight_decay >= 0 "
                        "(got lr=%g beta1=%g beta2=%g eps=%g weight_decay=%g)",
                        d->lr, d->beta1, d->beta2, d->eps, d->weight_decay);
    if (count == 0) return CNB_OK;
    CNB_CHECK_PTR(ctx, "adam_step", param);
    CNB_CHECK_PTR(ctx, "adam_step", m);
    CNB_CHECK_PTR(ctx, "adam_step", v);
    CNB_CHECK_PTR(ctx, "adam_step", grad);
    odn_enter(ctx);
    /* The bias corrections are per step, computed once in double like PyTorch's Python floats. */
    double bc1 = 1.0 - pow((double)d->beta1, d->step);
    double bc2 = 1.0 - pow((double)d->beta2, d->step);
    const float step_size = (float)(d->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = d->beta1, b2 = d->beta2, eps = d->eps, wd = d->weight_decay;
    long long cnt = (long long)count;
#pragma omp parallel for simd schedule(static) if (cnt >= ODN_OPT_PAR_MIN)
    for (long long i = 0; i < cnt; i++) {
        float g = grad[i] + wd * param[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
    return CNB_OK;
}
