/* im2col.c — lays one image's receptive fields out as GEMM columns (im2col) and adds column
 * gradients back onto the image (col2im), the data movement around the convolution sgemms. */
#include <string.h>

#include "blas_backend.h"

/* The output columns [*lo, *hi) whose input column oq*stride - pad + tap lies inside [0, w);
 * the others read zero padding. */
static void valid_range(int *lo, int *hi, int q, int w, int stride, int pad, int tap) {
    int off = tap - pad; /* input column of output column 0 */
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = off >= w ? 0 : (w - 1 - off) / stride + 1;
    if (h > q) h = q;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* col is (c*r*s, p*q) with row stride ld, x is (c, h, w). Row (ci, a, b) of col holds, for every
 * output pixel (op, oq), x[ci][op*sh - ph + a][oq*sw - pw + b], or 0 outside the image. The
 * inner loops run over contiguous output columns. */
void blas_im2col(float *col, size_t ld, const float *x, const cnb_conv_desc *d) {
    const int c = d->c, h = d->h, w = d->w, r = d->r, s = d->s, p = d->p, q = d->q;
    const int sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w;
    for (int b = 0; b < s; b++) {
        int lo, hi;
        valid_range(&lo, &hi, q, w, sw, pw, b);
        for (int ci = 0; ci < c; ci++) {
            const float *xc = x + (size_t)ci * h * w;
            for (int a = 0; a < r; a++) {
                float *row = col + (size_t)((ci * r + a) * s + b) * ld;
                for (int op = 0; op < p; op++) {
                    float *restrict dst = row + (size_t)op * q;
                    int ih = op * sh - ph + a;
                    if (ih < 0 || ih >= h) {
                        memset(dst, 0, (size_t)q * sizeof(float));
                        continue;
                    }
                    /* src is the input pixel of output column lo (inside the image). */
                    const float *restrict src = xc + (size_t)ih * w + (lo * sw + b - pw);
                    const int len = hi - lo;
                    for (int oq = 0; oq < lo; oq++) dst[oq] = 0.0f;
                    float *restrict mid = dst + lo;
                    if (sw == 1) {
                        for (int j = 0; j < len; j++) mid[j] = src[j];
                    } else {
                        for (int j = 0; j < len; j++) mid[j] = src[(size_t)j * sw];
                    }
                    for (int oq = hi; oq < q; oq++) dst[oq] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of blas_im2col: dx (c, h, w) += every column entry at the pixel it was read from.
 * dx must hold its starting values (zero for a plain col2im). */
void blas_col2im(float *dx, const float *col, size_t ld, const cnb_conv_desc *d) {
    const int c = d->c, h = d->h, w = d->w, r = d->r, s = d->s, p = d->p, q = d->q;
    const int sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w;
    for (int ci = 0; ci < c; ci++) {
        float *dxc = dx + (size_t)ci * h * w;
        for (int a = 0; a < r; a++) {
            for (int b = 0; b < s; b++) {
                int lo, hi;
                valid_range(&lo, &hi, q, w, sw, pw, b);
                const float *row = col + (size_t)((ci * r + a) * s + b) * ld;
                for (int op = 0; op < p; op++) {
                    int ih = op * sh - ph + a;
                    if (ih < 0 || ih >= h) continue;
                    const float *restrict src = row + (size_t)op * q + lo;
                    float *restrict dst = dxc + (size_t)ih * w + (lo * sw + b - pw);
                    const int len = hi - lo;
                    if (sw == 1) {
                        for (int j = 0; j < len; j++) dst[j] += src[j];
                    } else {
                        for (int j = 0; j < len; j++) dst[(size_t)j * sw] += src[j];
                    }
                }
            }
        }
    }
}
