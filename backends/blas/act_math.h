/* act_math.h — the activations' element formulas, inline and branch-free so that the loops
 * calling them vectorize: shared by the separate activation kernels (activation.c) and the
 * fused epilogues of the convolution and pooling (conv.c, pool.c). tanh and sigmoid use an
 * inline exp (Cephes' expf: Cody-Waite range reduction and a degree-6 polynomial, ~1 ulp)
 * instead of a libm call per element, which would keep the loop scalar. */
#ifndef CNB_BLAS_ACT_MATH_H
#define CNB_BLAS_ACT_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cnb_abi.h"

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

/* act(v) for the fused activations (CNB_FUSED_ACT_NONE: v). ReLU keeps NaN (!(v <= 0) holds
 * for it), as PyTorch does. */
static inline float fused_act(int act, float v) {
    switch (act) {
    case CNB_ACT_RELU: return !(v <= 0.0f) ? v : 0.0f;
    case CNB_ACT_TANH: return tanh_inline(v);
    case CNB_ACT_SIGMOID: return 1.0f / (1.0f + exp_inline(-v));
    default: return v;
    }
}

/* g times the activation's derivative, written in terms of its output a. */
static inline float fused_act_grad(int act, float g, float a) {
    switch (act) {
    case CNB_ACT_RELU: return a <= 0.0f ? 0.0f : g; /* NaN passes g, as relu backward */
    case CNB_ACT_TANH: return g * ((1.0f - a) * (1.0f + a)); /* see activation.c */
    case CNB_ACT_SIGMOID: return g * (a * (1.0f - a));
    default: return g;
    }
}

#endif
