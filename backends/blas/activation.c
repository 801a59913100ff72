/* activation.c — element-wise ReLU, tanh, sigmoid and PReLU (one learned slope), forward and
 * backward, as loops the compiler vectorizes (the formulas are in act_math.h). */
#include "act_math.h"
#include "blas_backend.h"
#include "cnb_abi_check.h"

/* ---- element ranges, split across the context's threads --------------------------------- */

/* Elements per thread at least: below this a second thread costs more to wake than it saves. */
#define ACT_GRAIN 16384

typedef struct {
    int act;
    float *y, *dx;
    const float *x, *dy, *yin;
    float slope;
    double dslope[BLAS_MAX_THREADS]; /* PReLU backward: each thread's part of the sum */
} act_job;

static void forward_range(void *p, int thread, size_t lo, size_t hi) {
    (void)thread;
    const act_job *j = p;
    /* y may be x (in place): each element is read before it is written, so no restrict here. */
    float *y = j->y;
    const float *x = j->x;
    switch (j->act) {
    case CNB_ACT_RELU:
        for (size_t i = lo; i < hi; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN stays */
        break;
    case CNB_ACT_TANH:
        for (size_t i = lo; i < hi; i++) y[i] = tanh_inline(x[i]);
        break;
    case CNB_ACT_SIGMOID:
        for (size_t i = lo; i < hi; i++) y[i] = 1.0f / (1.0f + exp_inline(-x[i]));
        break;
    case CNB_ACT_PRELU: {
        const float a = j->slope;
        for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : a * x[i];
        break;
    }
    }
}

static void backward_range(void *p, int thread, size_t lo, size_t hi) {
    act_job *j = p;
    float *dx = j->dx;
    const float *dy = j->dy, *x = j->x, *y = j->yin;
    switch (j->act) {
    case CNB_ACT_RELU:
        for (size_t i = lo; i < hi; i++) {
            float g = dy[i]; /* read unconditionally so the loop vectorizes */
            dx[i] = x[i] <= 0.0f ? 0.0f : g; /* 0 at +-0, dy at NaN */
        }
        break;
    case CNB_ACT_TANH:
        /* (1 - y)(1 + y), not 1 - y*y: near |y| = 1 the rounding of y*y would cancel into a
         * large relative error, while 1 - y is exact there (Sterbenz). */
        for (size_t i = lo; i < hi; i++) dx[i] = dy[i] * ((1.0f - y[i]) * (1.0f + y[i]));
        break;
    case CNB_ACT_SIGMOID:
        for (size_t i = lo; i < hi; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
        break;
    case CNB_ACT_PRELU: {
        /* dslope sums up to millions of products: float products (one rounding each) into 8
         * double partial sums, so the sum itself adds no float-sized error. */
        const float a = j->slope;
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8) {
            float t[8];
            for (int k = 0; k < 8; k++) {
                float xv = x[i + k], g = dy[i + k];
                float ag = a * g, xg = xv * g;
                dx[i + k] = xv > 0.0f ? g : ag;
                t[k] = xv > 0.0f ? 0.0f : xg;
            }
            for (int k = 0; k < 8; k++) acc[k] += (double)t[k];
        }
        double ds = 0.0;
        for (int k = 0; k < 8; k++) ds += acc[k];
        for (; i < hi; i++) {
            float xv = x[i], g = dy[i];
            ds += xv > 0.0f ? 0.0 : (double)xv * (double)g;
            dx[i] = xv > 0.0f ? g : a * g;
        }
        j->dslope[thread] = ds;
        break;
    }
    }
}

/* y and x are (count). slope is one value, read only for PReLU:
 *   relu: y = x < 0 ? 0 : x   tanh: y = tanh(x)   sigmoid: y = 1/(1+exp(-x))
 *   prelu: y = x > 0 ? x : slope*x */
cnb_status blas_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                   const float *x, const float *slope) {
    CNB_CHECK_CTX(ctx);
    if (cnb_check_activation_forward("activation_forward", act, count, y, x, slope, ctx->err,
                                     sizeof ctx->err) != CNB_OK)
        return CNB_ERR_INVALID_ARGUMENT;
    act_job j = {.act = act, .y = y, .x = x, .slope = act == CNB_ACT_PRELU ? *slope : 0.0f};
    blas_parallel(ctx, count, blas_team_parts(ctx, count, ACT_GRAIN), forward_range, &j);
    return CNB_OK;
}

/* dx, dy, x, y are (count); dslope and slope are one value each (PReLU only):
 *   relu: dx = x <= 0 ? 0 : dy           tanh: dx = dy * (1 - y^2)
 *   sigmoid: dx = dy * y * (1 - y)        prelu: dx = x > 0 ? dy : slope*dy,
 *                                                dslope = sum over x <= 0 of x*dy
 * At x == 0 ReLU and PReLU take the x <= 0 branch, as PyTorch does. PReLU's dslope adds the
 * threads' double partial sums in thread order. */
cnb_status blas_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                    float *dslope, const float *dy, const float *x,
                                    const float *y, const float *slope) {
    CNB_CHECK_CTX(ctx);
    if (cnb_check_activation_backward("activation_backward", act, count, dx, dslope, dy, x, y,
                                      slope, ctx->err, sizeof ctx->err) != CNB_OK)
        return CNB_ERR_INVALID_ARGUMENT;
    act_job j = {.act = act, .dx = dx, .dy = dy, .x = x, .yin = y,
                 .slope = act == CNB_ACT_PRELU ? *slope : 0.0f};
    const int parts = blas_team_parts(ctx, count, ACT_GRAIN);
    blas_parallel(ctx, count, parts, backward_range, &j);
    if (act == CNB_ACT_PRELU) {
        double ds = 0.0;
        for (int t = 0; t < parts; t++) ds += j.dslope[t];
        *dslope = (float)ds;
    }
    return CNB_OK;
}
