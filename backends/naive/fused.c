/* fused.c — the fused slots as the plain composition of the separate kernels they replace:
 * the oracle the fast fused kernels are checked against. */
#include "cnb_abi_check.h"
#include "naive.h"

/* y = act(conv(x, weight) + bias), the activation applied in place on conv_forward's output. */
cnb_status naive_conv_bias_act_forward(cnb_context *ctx, const cnb_conv_desc *d, int act,
                                       float *y, const float *x, const float *weight,
                                       const float *bias) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_fused_act("conv_bias_act_forward", act, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    st = naive_conv_forward(ctx, d, y, x, weight, bias);
    if (st != CNB_OK || act == CNB_FUSED_ACT_NONE) return st;
    return naive_activation_forward(ctx, act, (size_t)d->n * d->k * d->p * d->q, y, y, NULL);
}

/* dx = act'(x) * pool_backward(dy): x is the activation's output, which serves as both of
 * activation_backward's x (ReLU: a > 0 exactly when the pre-activation is) and y (tanh,
 * sigmoid). The element-wise pass runs in place on dx. */
cnb_status naive_pool_act_backward(cnb_context *ctx, const cnb_pool_desc *d, int act, float *dx,
                                   const float *dy, const float *x, const float *y,
                                   const void *workspace) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_fused_act("pool_act_backward", act, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    st = naive_pool_backward(ctx, d, dx, dy, x, y, workspace);
    if (st != CNB_OK || act == CNB_FUSED_ACT_NONE) return st;
    CNB_CHECK_PTR(ctx, "pool_act_backward", x);
    return naive_activation_backward(ctx, act, (size_t)d->n * d->c * d->h * d->w, dx, NULL, dx,
                                     x, x, NULL);
}
