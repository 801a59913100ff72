/* im2col.c — lays one image's receptive fields out as GEMM columns (im2col) and adds column
 * gradients back onto the image (col2im), the data movement around the convolution sgemms. */
#include <stddef.h>
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

/* The common "same" convolution (stride 1, q == w, e.g. 3x3 pad 1 or 5x5 pad 2): output row op
 * of col row (ci, a, b) reads input row op + a - ph from column b - pw on, so with q == w the
 * whole row of col is ONE contiguous run of the input plane, shifted by (a - ph)*w + (b - pw).
 * One memcpy per row replaces p short copies; only the few cells whose column wrapped into the
 * neighbouring input row (they belong to the padding) are zeroed afterwards. */
static int is_same_width(const cnb_conv_desc *d) {
    return d->stride_h == 1 && d->stride_w == 1 && d->q == d->w;
}

/* The output rows [*lo, *hi) of filter row a that read a real input row. */
static void row_range(int *lo, int *hi, const cnb_conv_desc *d, int a) {
    int l = d->pad_h - a, h = d->h + d->pad_h - a;
    *lo = l > 0 ? l : 0;
    *hi = h < d->p ? h : d->p;
}

static void im2col_same_width(float *col, size_t ld, const float *x, const cnb_conv_desc *d) {
    const int c = d->c, h = d->h, w = d->w, r = d->r, s = d->s, p = d->p, q = d->q;
    const int ph = d->pad_h, pw = d->pad_w;
    const size_t pq = (size_t)p * q;
    for (int ci = 0; ci < c; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int a = 0; a < r; a++) {
            int op_lo, op_hi;
            row_range(&op_lo, &op_hi, d, a);
            for (int b = 0; b < s; b++) {
                float *row = col + (size_t)((ci * r + a) * s + b) * ld;
                const int shift = b - pw, cut = shift < 0 ? -shift : shift;
                if (op_lo >= op_hi || cut >= q) {
                    memset(row, 0, pq * sizeof(float));
                    continue;
                }
                /* [t0, t1): the run whose source lies inside the plane (first and last cells
                 * trimmed where they would wrap past the plane's ends). */
                const size_t t0 = (size_t)op_lo * q + (shift < 0 ? cut : 0);
                const size_t t1 = (size_t)op_hi * q - (shift > 0 ? cut : 0);
                const ptrdiff_t src = (ptrdiff_t)t0 + (ptrdiff_t)(a - ph) * w + shift;
                memset(row, 0, t0 * sizeof(float));
                memcpy(row + t0, xc + src, (t1 - t0) * sizeof(float));
                memset(row + t1, 0, (pq - t1) * sizeof(float));
                if (shift < 0) {
                    for (int op = op_lo + 1; op < op_hi; op++)
                        for (int j = 0; j < cut; j++) row[(size_t)op * q + j] = 0.0f;
                } else if (shift > 0) {
                    for (int op = op_lo; op < op_hi - 1; op++)
                        for (int j = q - cut; j < q; j++) row[(size_t)op * q + j] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of im2col_same_width: the wrapped cells of each col row are zeroed (col is scratch)
 * so the row adds onto the plane as one contiguous run. */
static void col2im_same_width(float *dx, float *col, size_t ld, const cnb_conv_desc *d) {
    const int c = d->c, h = d->h, w = d->w, r = d->r, s = d->s, q = d->q;
    const int ph = d->pad_h, pw = d->pad_w;
    for (int ci = 0; ci < c; ci++) {
        float *dxc = dx + (size_t)ci * h * w;
        for (int a = 0; a < r; a++) {
            int op_lo, op_hi;
            row_range(&op_lo, &op_hi, d, a);
            for (int b = 0; b < s; b++) {
                float *row = col + (size_t)((ci * r + a) * s + b) * ld;
                const int shift = b - pw, cut = shift < 0 ? -shift : shift;
                if (op_lo >= op_hi || cut >= q) continue;
                if (shift < 0) {
                    for (int op = op_lo + 1; op < op_hi; op++)
                        for (int j = 0; j < cut; j++) row[(size_t)op * q + j] = 0.0f;
                } else if (shift > 0) {
                    for (int op = op_lo; op < op_hi - 1; op++)
                        for (int j = q - cut; j < q; j++) row[(size_t)op * q + j] = 0.0f;
                }
                const size_t t0 = (size_t)op_lo * q + (shift < 0 ? cut : 0);
                const size_t t1 = (size_t)op_hi * q - (shift > 0 ? cut : 0);
                float *restrict dst = dxc + ((ptrdiff_t)t0 + (ptrdiff_t)(a - ph) * w + shift);
                const float *restrict src = row + t0;
                const size_t len = t1 - t0;
                for (size_t t = 0; t < len; t++) dst[t] += src[t];
            }
        }
    }
}

/* col is (c*r*s, p*q) with row stride ld, x is (c, h, w). Row (ci, a, b) of col holds, for every
 * output pixel (op, oq), x[ci][op*sh - ph + a][oq*sw - pw + b], or 0 outside the image. The
 * inner loops run over contiguous output columns. */
void blas_im2col(float *col, size_t ld, const float *x, const cnb_conv_desc *d) {
    if (is_same_width(d)) {
        im2col_same_width(col, ld, x, d);
        return;
    }
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
 * dx must hold its starting values (zero for a plain col2im). col is scratch and may be
 * clobbered. */
void blas_col2im(float *dx, float *col, size_t ld, const cnb_conv_desc *d) {
    if (is_same_width(d)) {
        col2im_same_width(dx, col, ld, d);
        return;
    }
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
