/* corr2d.c — the textbook single-channel 2-D cross-correlation (valid mode, stride 1), the
 * kernel of DESIGN.md's seed test vector. */
#include "naive.h"

/* y is (h-kh+1, w-kw+1), x is (h, w), k is (kh, kw):
 *   y[i][j] = sum_{a,b} x[i+a][j+b] * k[a][b] */
cnb_status naive_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h, int w,
                        int kh, int kw) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_corr2d("corr2d", y, x, k, h, w, kh, kw, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    int oh = h - kh + 1, ow = w - kw + 1;
    for (int i = 0; i < oh; i++) {
        for (int j = 0; j < ow; j++) {
            double sum = 0.0;
            for (int a = 0; a < kh; a++)
                for (int b = 0; b < kw; b++)
                    sum += (double)x[(size_t)(i + a) * w + (j + b)] * k[a * kw + b];
            y[(size_t)i * ow + j] = (float)sum;
        }
    }
    return CNB_OK;
}
