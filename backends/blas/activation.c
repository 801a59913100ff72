/* activation.c — element-wise ReLU, tanh, sigmoid and PReLU (one learned slope), forward and
 * backward, as loops the compiler vectorizes. tanh and sigmoid use an inline exp (Cephes' expf:
 * Cody-Waite range reduction and a degree-6 polynomial, ~1 ulp) instead of a libm call per
 * element, which would keep the loop scalar. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "blas_backend.h"
#include "cnb_abi_check.h"

/* exp(x) for x clamped to [-87, 88] (outside, the answer is 0 or overflow anyway and the callers
 * below only need the saturated value), and +Inf beyond float's range, so that sigmoid(-Inf)
 * is exactly 0 as IEEE gives it (then dy*y*(1-y) is NaN for an infinite dy, as in naive).
 * Branch-free, so a loop of it vectorizes. */
static inline float exp_inline(float x) {
    const float overflow = x > 88.7228394f ? INFINITY : 0.0f; /* ln(FLT_MAX) */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* NaN passes the clamps; keep it out of the float-to-int conversion below (undefined
     * behaviour) and add it back at the end: nan_or_zero is NaN for NaN, else 0. */
    const float nan_or_zero = x - x;
    x = x == x ? x : 0.0f;
    /* n = round(x / ln 2) by the 1.5*2^23 trick (round to nearest even, no libm call). */
    const float magic = 12582912.0f;
    float fn = (x * 1.44269504088896341f + magic) - magic;
    float r = x - fn * 0.693359375f;   /* ln 2 split in two, so r is exact enough */
    r = r - fn * -2.12194440e-4f;
    float z = r * r;
    float poly = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                   4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    float e = poly * z + r + 1.0f;
    /* times 2^n, built in the exponent field; n is within [-126, 127] after the clamp */
    int32_t n = (int32_t)fn;
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale + nan_or_zero + overflow;
}

/* tanh: odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), else through exp;
 * both are computed and one is selected, to stay branch-free. Cephes' tanhf split. */
static inline float tanh_inline(float x) {
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (exp_inline(ax + ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

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
    BLAS_CHECK_CTX(ctx);
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
    BLAS_CHECK_CTX(ctx);
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
