/* corr2d.c — single-channel 2-D cross-correlation (valid mode, stride 1). One image is too small
 * for an sgemm to pay off, so it is a row-wise multiply-add with contiguous inner loops. */
#include <string.h>

#include "blas_backend.h"

/* y is (h-kh+1, w-kw+1), x is (h, w), k is (kh, kw):
 *   y[i][j] = sum_{a,b} x[i+a][j+b] * k[a][b]
 * Each output row gets kh*kw passes of "row += tap * shifted input row", which vectorize. */
cnb_status blas_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h, int w,
                       int kh, int kw) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_corr2d("corr2d", y, x, k, h, w, kh, kw, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    if (!blas_dims_fit(ctx, "corr2d", "x", h, w, 1, 1)) return CNB_ERR_INVALID_ARGUMENT;
    int oh = h - kh + 1, ow = w - kw + 1;
    for (int i = 0; i < oh; i++) {
        float *restrict yr = y + (size_t)i * ow;
        memset(yr, 0, (size_t)ow * sizeof(float));
        for (int a = 0; a < kh; a++) {
            const float *xr = x + (size_t)(i + a) * w;
            for (int b = 0; b < kw; b++) {
                const float t = k[a * kw + b];
                const float *restrict xs = xr + b;
                for (int j = 0; j < ow; j++) yr[j] += t * xs[j];
            }
        }
    }
    return CNB_OK;
}
