/* activation.c — element-wise ReLU, tanh, sigmoid and PReLU (one learned slope), forward and
 * backward. tanh and sigmoid are evaluated in double and rounded once, so the oracle is as close
 * to the true value as float allows. */
#include <math.h>

#include "cnb_abi_check.h"
#include "naive.h"

/* y and x are (count). slope is one value, read only for PReLU:
 *   relu: y = x < 0 ? 0 : x (NaN stays NaN)   tanh: y = tanh(x)   sigmoid: y = 1/(1+exp(-x))
 *   prelu: y = x > 0 ? x : slope*x */
cnb_status naive_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                    const float *x, const float *slope) {
    CNB_CHECK_CTX(ctx);
    if (cnb_check_activation_forward("activation_forward", act, count, y, x, slope, ctx->err,
                                     sizeof ctx->err) != CNB_OK)
        return CNB_ERR_INVALID_ARGUMENT;
    switch (act) {
    case CNB_ACT_RELU:
        for (size_t i = 0; i < count; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case CNB_ACT_TANH:
        for (size_t i = 0; i < count; i++) y[i] = (float)tanh((double)x[i]);
        break;
    case CNB_ACT_SIGMOID:
        for (size_t i = 0; i < count; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
        break;
    case CNB_ACT_PRELU: {
        const float a = *slope;
        for (size_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : a * x[i];
        break;
    }
    }
    return CNB_OK;
}

/* dx, dy, x, y are (count); dslope and slope are one value each (PReLU only):
 *   relu: dx = x <= 0 ? 0 : dy           tanh: dx = dy * (1 - y^2)
 *   sigmoid: dx = dy * y * (1 - y)        prelu: dx = x > 0 ? dy : slope*dy,
 *                                                dslope = sum over x <= 0 of x*dy
 * At x == 0 ReLU and PReLU take the x <= 0 branch, as PyTorch does; at x = NaN ReLU passes dy
 * and PReLU takes the slope branch (cnb_abi.h's non-finite rule). */
cnb_status naive_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                     float *dslope, const float *dy, const float *x,
                                     const float *y, const float *slope) {
    CNB_CHECK_CTX(ctx);
    if (cnb_check_activation_backward("activation_backward", act, count, dx, dslope, dy, x, y,
                                      slope, ctx->err, sizeof ctx->err) != CNB_OK)
        return CNB_ERR_INVALID_ARGUMENT;
    switch (act) {
    case CNB_ACT_RELU:
        for (size_t i = 0; i < count; i++) {
            float g = dy[i]; /* read unconditionally so the loop vectorizes */
            dx[i] = x[i] <= 0.0f ? 0.0f : g;
        }
        break;
    case CNB_ACT_TANH:
        for (size_t i = 0; i < count; i++) dx[i] = (float)(dy[i] * (1.0 - (double)y[i] * y[i]));
        break;
    case CNB_ACT_SIGMOID:
        for (size_t i = 0; i < count; i++) dx[i] = (float)(dy[i] * ((double)y[i] * (1.0 - y[i])));
        break;
    case CNB_ACT_PRELU: {
        const float a = *slope;
        double ds = 0.0;
        for (size_t i = 0; i < count; i++) {
            if (x[i] > 0.0f) {
                dx[i] = dy[i];
            } else {
                dx[i] = a * dy[i];
                ds += (double)x[i] * dy[i];
            }
        }
        *dslope = (float)ds;
        break;
    }
    }
    return CNB_OK;
}
