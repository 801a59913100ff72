/* optimizer.c — SGD with momentum and Adam over one flat block of parameters: cpu_optimizer.h's
 * update loops (PyTorch's formulas, in the reference's expression order, so results match the
 * naive backend bit for bit), run on runs of elements split across the context's threads. The
 * loops are inlined here and vectorize under this backend's -fno-math-errno. */
#include "blas_backend.h"
#include "cpu_optimizer.h"

/* Elements per thread at least: below this a second thread costs more to wake than it saves. */
#define OPT_GRAIN 16384

typedef struct {
    float *param, *m, *v;  /* SGD: m is the velocity */
    const float *grad;
    float lr, momentum, weight_decay; /* SGD */
    cpu_adam_step adam;               /* Adam */
} opt_job;

static void sgd_range(void *arg, int thread, size_t lo, size_t hi) {
    (void)thread;
    const opt_job *j = arg;
    cpu_sgd_update(j->param, j->m, j->grad, j->lr, j->momentum, j->weight_decay, lo, hi);
}

static void adam_range(void *arg, int thread, size_t lo, size_t hi) {
    (void)thread;
    const opt_job *j = arg;
    cpu_adam_update(&j->adam, j->param, j->m, j->v, j->grad, lo, hi);
}

/* param, velocity, grad are (count):
 *   g = grad + weight_decay*param;  v = momentum*v + g;  param -= lr*v */
cnb_status blas_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                         float *velocity, const float *grad) {
    cnb_status st = cpu_check_sgd_step(ctx, d, count, param, velocity, grad);
    if (st != CNB_OK) return st;
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
    cnb_status st = cpu_check_adam_step(ctx, d, count, param, m, v, grad);
    if (st != CNB_OK) return st;
    opt_job j = {.param = param, .m = m, .v = v, .grad = grad, .adam = cpu_adam_prepare(d)};
    blas_parallel(ctx, count, blas_team_parts(ctx, count, OPT_GRAIN), adam_range, &j);
    return CNB_OK;
}
