/* optimizer.c — SGD with momentum and Adam over one flat block of parameters, written exactly
 * as torch.optim.SGD and torch.optim.Adam compute them (the formulas in cnb_abi.h), in float
 * like PyTorch, with Adam's bias corrections in double from the step count. The loops are
 * element-wise and vectorize; the order of each expression is the reference's, so results match
 * it bit for bit. Runs of elements are split across the context's threads. */
#include <math.h>

#include "blas_backend.h"

/* Elements per thread at least: below this a second thread costs more to wake than it saves. */
#define OPT_GRAIN 16384

typedef struct {
    float *param, *m, *v;  /* SGD: m is the velocity */
    const float *grad;
    float lr, momentum, weight_decay;                     /* SGD, and Adam's weight decay */
    float b1, b2, eps, step_size, bias_correction2_sqrt;  /* Adam */
} opt_job;

static void sgd_range(void *arg, int thread, size_t lo, size_t hi) {
    (void)thread;
    const opt_job *j = arg;
    const float lr = j->lr, mom = j->momentum, wd = j->weight_decay;
    float *restrict p = j->param, *restrict v = j->m;
    const float *restrict g = j->grad;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + wd * p[i];
        float vi = mom * v[i] + gi;
        v[i] = vi;
        p[i] -= lr * vi;
    }
}

static void adam_range(void *arg, int thread, size_t lo, size_t hi) {
    (void)thread;
    const opt_job *j = arg;
    const float b1 = j->b1, b2 = j->b2, eps = j->eps, wd = j->weight_decay;
    const float step_size = j->step_size, bias_correction2_sqrt = j->bias_correction2_sqrt;
    const float one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
    float *restrict p = j->param, *restrict mm = j->m, *restrict vv = j->v;
    const float *restrict gr = j->grad;
    for (size_t i = lo; i < hi; i++) {
        float g = gr[i] + wd * p[i];
        float mi = b1 * mm[i] + one_minus_b1 * g;
        float vi = b2 * vv[i] + one_minus_b2 * g * g;
        mm[i] = mi;
        vv[i] = vi;
        float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
        p[i] -= step_size * mi / denom;
    }
}

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
    opt_job j = {.param = param, .m = velocity, .grad = grad, .lr = d->lr,
                 .momentum = d->momentum, .weight_decay = d->weight_decay};
    blas_parallel(ctx, count, blas_team_parts(ctx, count, OPT_GRAIN), sgd_range, &j);
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
    const float b1 = d->beta1, b2 = d->beta2;
    /* PyTorch computes these as Python floats (double) and hands them to float kernels. */
    const double bias_correction1 = 1.0 - pow((double)b1, d->step);
    const double bias_correction2 = 1.0 - pow((double)b2, d->step);
    opt_job j = {.param = param, .m = m, .v = v, .grad = grad, .weight_decay = d->weight_decay,
                 .b1 = b1, .b2 = b2, .eps = d->eps,
                 .step_size = (float)((double)d->lr / bias_correction1),
                 .bias_correction2_sqrt = (float)sqrt(bias_correction2)};
    blas_parallel(ctx, count, blas_team_parts(ctx, count, OPT_GRAIN), adam_range, &j);
    return CNB_OK;
}
