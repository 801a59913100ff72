/* optimizer.c — SGD with momentum and Adam over one flat block of parameters, written exactly
 * as torch.optim.SGD and torch.optim.Adam compute them (the formulas in cnb_abi.h), in float
 * like PyTorch, with Adam's bias corrections in double from the step count. The update loops
 * are cpu_optimizer.h's, run once over the whole block: the blas backend runs the same loops
 * on its threads' ranges. */
#include "cpu_optimizer.h"
#include "naive.h"

/* param, velocity, grad are (count):
 *   g = grad + weight_decay*param;  v = momentum*v + g;  param -= lr*v */
cnb_status naive_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                          float *velocity, const float *grad) {
    cnb_status st = cpu_check_sgd_step(ctx, d, count, param, velocity, grad);
    if (st != CNB_OK) return st;
    cpu_sgd_update(param, velocity, grad, d->lr, d->momentum, d->weight_decay, 0, count);
    return CNB_OK;
}

/* param, m, v, grad are (count), t = d->step >= 1:
 *   g = grad + weight_decay*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *   param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
cnb_status naive_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count, float *param,
                           float *m, float *v, const float *grad) {
    cnb_status st = cpu_check_adam_step(ctx, d, count, param, m, v, grad);
    if (st != CNB_OK) return st;
    const cpu_adam_step s = cpu_adam_prepare(d);
    cpu_adam_update(&s, param, m, v, grad, 0, count);
    return CNB_OK;
}
