/* corr2d.c — the textbook single-channel 2-D cross-correlation: a convolution with one image,
 * one input and one output channel, stride 1, no padding, on the same cached oneDNN primitive
 * path as conv_forward. */
#include "onednn.h"

cnb_status odn_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h, int w,
                      int kh, int kw) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_corr2d("corr2d", y, x, k, h, w, kh, kw, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    cnb_conv_desc d = {.n = 1, .c = 1, .h = h, .w = w, .k = 1, .r = kh, .s = kw,
                       .stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 0,
                       .p = h - kh + 1, .q = w - kw + 1};
    return odn_conv_forward(ctx, &d, y, x, k, NULL);
}
