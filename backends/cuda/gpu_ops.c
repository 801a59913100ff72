/* gpu_ops.c — the kernel slots served by the hand-written kernels: check the arguments (the
 * same rules as the naive backend), plan the launch (cuda_plan.c), take scratch, launch on the
 * context's stream. Every slot of the cuda backend lands here; the cudnn backend uses the ones
 * cuDNN has no call for (PReLU, the cross-entropy loss and gradient, the optimizers). */
#include <math.h>

#include "cuda_kernels.h"
#include "cuda_plan.h"
#include "gpu_common.h"

#define VALIDATE(call)                                                                       \
    do {                                                                                     \
        cnb_status st_ = (call);                                                             \
        if (st_ != CNB_OK) return st_;                                                       \
    } while (0)

cnb_status cnb_gpu_corr2d(cnb_gpu_base *g, float *y, const float *x, const float *k, int h,
                          int w, int kh, int kw) {
    VALIDATE(cnb_gpu_check_corr2d(h, w, kh, kw, g->err, sizeof g->err));
    GPU_CHECK_PTR3(g, "corr2d", y, x, k);
    return cnb_gpu_check(g, cnbk_corr2d(g->stream, y, x, k, h, w, kh, kw), "corr2d");
}

/* Plans a GEMM and takes the scratch its split needs. */
static cnb_status plan_gemm_scratch(cnb_gpu_base *g, int m, int n, int k, cnb_gemm_plan *plan,
                                    float **partial) {
    VALIDATE(cnb_plan_gemm(plan, m, n, k, g->dev.sm_count, g->err, sizeof g->err));
    void *p = NULL;
    VALIDATE(cnb_gpu_scratch(g, plan->partial_floats * sizeof(float), &p));
    *partial = p;
    return CNB_OK;
}

/* One convolution pass made ready to launch: the descriptor and the three tensors it touches
 * checked (named in the messages as the slot's arguments are), the geometry, the GEMM plan of
 * the pass (mnk gives its sizes) and the scratch its split needs. */
typedef struct conv_pass {
    cnb_conv_geom geo;
    cnb_gemm_plan plan;
    float *partial;
} conv_pass;

static cnb_status prepare_conv_pass(cnb_gpu_base *g, const char *fn, const cnb_conv_desc *d,
                                    const void *const tensors[3], const char *const names[3],
                                    void (*mnk)(const cnb_conv_geom *, int *, int *, int *),
                                    conv_pass *cp) {
    VALIDATE(cnb_gpu_check_conv(fn, d, g->err, sizeof g->err));
    for (int i = 0; i < 3; i++)
        if (!tensors[i])
            return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, names[i]);
    cnb_conv_geom_init(&cp->geo, d);
    int m, n, k;
    mnk(&cp->geo, &m, &n, &k);
    return plan_gemm_scratch(g, m, n, k, &cp->plan, &cp->partial);
}

cnb_status cnb_gpu_conv_forward(cnb_gpu_base *g, const cnb_conv_desc *d, float *y,
                                const float *x, const float *weight, const float *bias) {
    conv_pass cp;
    VALIDATE(prepare_conv_pass(g, "conv_forward", d, (const void *[]){y, x, weight},
                               (const char *[]){"y", "x", "weight"}, cnb_conv_forward_mnk, &cp));
    return cnb_gpu_check(
        g, cnbk_conv_forward(g->stream, &cp.geo, &cp.plan, cp.partial, y, x, weight, bias),
        "conv_forward");
}

cnb_status cnb_gpu_conv_backward_data(cnb_gpu_base *g, const cnb_conv_desc *d, float *dx,
                                      const float *dy, const float *weight) {
    conv_pass cp;
    VALIDATE(prepare_conv_pass(g, "conv_backward_data", d, (const void *[]){dx, dy, weight},
                               (const char *[]){"dx", "dy", "weight"},
                               cnb_conv_backward_data_mnk, &cp));
    return cnb_gpu_check(
        g, cnbk_conv_backward_data(g->stream, &cp.geo, &cp.plan, cp.partial, dx, dy, weight),
        "conv_backward_data");
}

cnb_status cnb_gpu_conv_backward_filter(cnb_gpu_base *g, const cnb_conv_desc *d,
                                        float *dweight, const float *dy, const float *x) {
    conv_pass cp;
    VALIDATE(prepare_conv_pass(g, "conv_backward_filter", d, (const void *[]){dweight, dy, x},
                               (const char *[]){"dweight", "dy", "x"},
                               cnb_conv_backward_filter_mnk, &cp));
    return cnb_gpu_check(
        g, cnbk_conv_backward_filter(g->stream, &cp.geo, &cp.plan, cp.partial, dweight, dy, x),
        "conv_backward_filter");
}

cnb_status cnb_gpu_bias_forward(cnb_gpu_base *g, float *y, const float *bias, int n, int c,
                                int hw) {
    VALIDATE(cnb_gpu_check_nchw("bias_forward", n, c, hw, g->err, sizeof g->err));
    GPU_CHECK_PTR(g, "bias_forward", y);
    GPU_CHECK_PTR(g, "bias_forward", bias);
    return cnb_gpu_check(g, cnbk_bias_forward(g->stream, y, bias, n, c, hw), "bias_forward");
}

cnb_status cnb_gpu_bias_backward(cnb_gpu_base *g, float *dbias, const float *dy, int n, int c,
                                 int hw) {
    VALIDATE(cnb_gpu_check_nchw("bias_backward", n, c, hw, g->err, sizeof g->err));
    GPU_CHECK_PTR(g, "bias_backward", dbias);
    GPU_CHECK_PTR(g, "bias_backward", dy);
    return cnb_gpu_check(g, cnbk_bias_backward(g->stream, dbias, dy, n, c, hw), "bias_backward");
}

cnb_status cnb_gpu_pool_workspace_size(cnb_gpu_base *g, const cnb_pool_desc *d, size_t *bytes) {
    VALIDATE(cnb_gpu_check_pool("pool_workspace_size", d, g->err, sizeof g->err));
    GPU_CHECK_PTR(g, "pool_workspace_size", bytes);
    /* Max pooling keeps each output's argmax (an int32 index into its plane). */
    *bytes = d->mode == CNB_POOL_MAX
                 ? (size_t)d->n * d->c * d->p * d->q * sizeof(int32_t)
                 : 0;
    return CNB_OK;
}

cnb_status cnb_gpu_pool_forward(cnb_gpu_base *g, const cnb_pool_desc *d, float *y,
                                const float *x, void *workspace) {
    VALIDATE(cnb_gpu_check_pool("pool_forward", d, g->err, sizeof g->err));
    GPU_CHECK_PTR(g, "pool_forward", y);
    GPU_CHECK_PTR(g, "pool_forward", x);
    if (d->mode == CNB_POOL_MAX) GPU_CHECK_PTR(g, "pool_forward (max)", workspace);
    return cnb_gpu_check(
        g, cnbk_pool_forward(g->stream, d, y, d->mode == CNB_POOL_MAX ? workspace : NULL, x),
        "pool_forward");
}

cnb_status cnb_gpu_pool_backward(cnb_gpu_base *g, const cnb_pool_desc *d, float *dx,
                                 const float *dy, const float *x, const float *y,
                                 const void *workspace) {
    (void)x; /* the argmax from the forward says where each gradient goes */
    (void)y;
    VALIDATE(cnb_gpu_check_pool("pool_backward", d, g->err, sizeof g->err));
    GPU_CHECK_PTR(g, "pool_backward", dx);
    GPU_CHECK_PTR(g, "pool_backward", dy);
    if (d->mode == CNB_POOL_MAX) GPU_CHECK_PTR(g, "pool_backward (max)", workspace);
    return cnb_gpu_check(
        g,
        cnbk_pool_backward(g->stream, d, dx, dy,
                           d->mode == CNB_POOL_MAX ? (const int32_t *)workspace : NULL),
        "pool_backward");
}

cnb_status cnb_gpu_gemm(cnb_gpu_base *g, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                        float *c, int ldc) {
    VALIDATE(cnb_gpu_check_gemm(trans_a, trans_b, m, n, k, lda, ldb, ldc, g->err,
                                sizeof g->err));
    GPU_CHECK_PTR3(g, "gemm", a, b, c);
    cnb_gemm_plan plan;
    float *partial;
    VALIDATE(plan_gemm_scratch(g, m, n, k, &plan, &partial));
    return cnb_gpu_check(g,
                         cnbk_gemm(g->stream, &plan, partial, trans_a, trans_b, alpha, a, lda, b,
                                   ldb, beta, c, ldc),
                         "gemm");
}

cnb_status cnb_gpu_activation_forward(cnb_gpu_base *g, int act, size_t count, float *y,
                                      const float *x, const float *slope) {
    VALIDATE(cnb_gpu_check_activation("activation_forward", act, count, g->err, sizeof g->err));
    GPU_CHECK_PTR(g, "activation_forward", y);
    GPU_CHECK_PTR(g, "activation_forward", x);
    if (act == CNB_ACT_PRELU) GPU_CHECK_PTR(g, "activation_forward", slope);
    return cnb_gpu_check(g, cnbk_activation_forward(g->stream, act, count, y, x, slope),
                         "activation_forward");
}

cnb_status cnb_gpu_activation_backward(cnb_gpu_base *g, int act, size_t count, float *dx,
                                       float *dslope, const float *dy, const float *x,
                                       const float *y, const float *slope) {
    VALIDATE(cnb_gpu_check_activation("activation_backward", act, count, g->err,
                                      sizeof g->err));
    GPU_CHECK_PTR(g, "activation_backward", dx);
    GPU_CHECK_PTR(g, "activation_backward", dy);
    if (act == CNB_ACT_RELU || act == CNB_ACT_PRELU) GPU_CHECK_PTR(g, "activation_backward", x);
    if (act == CNB_ACT_TANH || act == CNB_ACT_SIGMOID)
        GPU_CHECK_PTR(g, "activation_backward", y);
    void *partial = NULL;
    if (act == CNB_ACT_PRELU) {
        GPU_CHECK_PTR(g, "activation_backward", slope);
        GPU_CHECK_PTR(g, "activation_backward", dslope);
        VALIDATE(cnb_gpu_scratch(g, (size_t)cnb_plan_reduce_blocks(count) * sizeof(float),
                                 &partial));
    }
    return cnb_gpu_check(g,
                         cnbk_activation_backward(g->stream, act, count, dx, dslope, partial, dy,
                                                  x, y, slope),
                         "activation_backward");
}

cnb_status cnb_gpu_softmax_ce_forward(cnb_gpu_base *g, int n, int classes, float *probs,
                                      float *loss, int32_t *pred, const float *logits,
                                      const int32_t *labels) {
    VALIDATE(cnb_gpu_check_softmax("softmax_ce_forward", n, classes, g->err, sizeof g->err));
    GPU_CHECK_PTR4(g, "softmax_ce_forward", probs, loss, logits, labels);
    void *row_loss;
    VALIDATE(cnb_gpu_scratch(g, (size_t)n * sizeof(float), &row_loss));
    return cnb_gpu_check(g,
                         cnbk_softmax_ce_forward(g->stream, n, classes, probs, loss, pred,
                                                 row_loss, g->flags_dev, logits, labels),
                         "softmax_ce_forward");
}

cnb_status cnb_gpu_softmax_ce_backward(cnb_gpu_base *g, int n, int classes, float *dlogits,
                                       const float *probs, const int32_t *labels) {
    VALIDATE(cnb_gpu_check_softmax("softmax_ce_backward", n, classes, g->err, sizeof g->err));
    GPU_CHECK_PTR3(g, "softmax_ce_backward", dlogits, probs, labels);
    return cnb_gpu_check(g,
                         cnbk_softmax_ce_backward(g->stream, n, classes, dlogits, g->flags_dev,
                                                  probs, labels),
                         "softmax_ce_backward");
}

cnb_status cnb_gpu_sgd_step(cnb_gpu_base *g, const cnb_sgd_desc *d, size_t count, float *param,
                            float *velocity, const float *grad) {
    GPU_CHECK_PTR(g, "sgd_step", d);
    if (count == 0) return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "sgd_step: count is 0");
    GPU_CHECK_PTR3(g, "sgd_step", param, velocity, grad);
    return cnb_gpu_check(g, cnbk_sgd_step(g->stream, d, count, param, velocity, grad),
                         "sgd_step");
}

cnb_status cnb_gpu_adam_step(cnb_gpu_base *g, const cnb_adam_desc *d, size_t count,
                             float *param, float *m, float *v, const float *grad) {
    GPU_CHECK_PTR(g, "adam_step", d);
    if (count == 0) return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "adam_step: count is 0");
    if (d->step < 1)
        return cnb_gpu_fail(g, CNB_ERR_INVALID_ARGUMENT, "adam_step: step=%d must be >= 1",
                            d->step);
    GPU_CHECK_PTR4(g, "adam_step", param, m, v, grad);
    /* PyTorch computes these as Python floats (double) and hands them to float kernels. */
    const double bias_correction1 = 1.0 - pow((double)d->beta1, d->step);
    const double bias_correction2 = 1.0 - pow((double)d->beta2, d->step);
    const float step_size = (float)((double)d->lr / bias_correction1);
    const float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    return cnb_gpu_check(g,
                         cnbk_adam_step(g->stream, d, step_size, bias_correction2_sqrt, count,
                                        param, m, v, grad),
                         "adam_step");
}
