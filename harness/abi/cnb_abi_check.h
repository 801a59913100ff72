/* cnb_abi_check.h — one validator for the descriptors of cnb_abi.h, shared by every backend.
 *
 * Header-only (static inline) and self-contained like cnb_abi.h: a backend includes it from the
 * same harness/abi folder and needs nothing else. Each check writes one line into err (when err
 * is not NULL and err_len > 0) that starts with fn and names the bad field, e.g.
 *   "conv_forward: stride_w=0 must be positive"
 *   "conv_forward: p=13 does not match (h+2*pad_h-r)/stride_h+1=14 (output 13x14, expected 14x14)"
 * and returns CNB_ERR_INVALID_ARGUMENT; or returns CNB_OK and leaves err alone. A backend copies
 * the line into its own last_error() message.
 *
 * The descriptor checks enforce the ABI itself, for every backend:
 *  - every size, kernel and stride field positive, padding >= 0;
 *  - the kernel (pooling window) no larger than the padded input;
 *  - p and q equal to the formula in cnb_abi.h;
 *  - pooling: mode is CNB_POOL_MAX or CNB_POOL_AVG, and max pooling's padding smaller than the
 *    window (so every window holds a real value: a max over padding alone has no answer;
 *    PyTorch goes further and demands pad <= window/2).
 * The activation checks enforce the kind (CNB_ACT_*), count > 0 and exactly the pointers the
 * call reads or writes ("activation_backward: y is NULL").
 * The fits-int checks are a limit of the backends that index tensors with int (blas, cuda): they
 * call them after the descriptor check and pick the status themselves.
 * The corr2d, gemm and softmax-CE checks enforce the pointers and sizes of those calls (softmax-CE's
 * labels live in device memory, so their range is the backend's to check).
 * The CNB_CHECK_* macros are early returns for a backend whose context keeps last_error()'s text
 * in a char array ctx->err (the CPU backends). */
#ifndef CNB_ABI_CHECK_H
#define CNB_ABI_CHECK_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cnb_abi.h"

#if defined(__GNUC__)
#define CNB_CHECK_PRINTF_(f, a) __attribute__((format(printf, f, a)))
#else
#define CNB_CHECK_PRINTF_(f, a)
#endif

/* Formats the message into err (if any) and returns CNB_ERR_INVALID_ARGUMENT. */
static inline cnb_status cnb_check_fail_(char *err, size_t err_len, const char *fmt, ...)
    CNB_CHECK_PRINTF_(3, 4);
static inline cnb_status cnb_check_fail_(char *err, size_t err_len, const char *fmt, ...) {
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return CNB_ERR_INVALID_ARGUMENT;
}

/* Early returns that name the kernel and the argument: "fn: p is NULL", "fn: n=0 must be
 * positive". ctx may be NULL (then no message is kept, only the status returned). */
#define CNB_CHECK_CTX(ctx) \
    do { if (!(ctx)) return CNB_ERR_INVALID_ARGUMENT; } while (0)
#define CNB_CHECK_PTR(ctx, fn, p)                                                              \
    do {                                                                                       \
        if (!(p))                                                                              \
            return cnb_check_fail_((ctx) ? (ctx)->err : NULL, sizeof (ctx)->err,               \
                                   "%s: %s is NULL", (fn), #p);                                \
    } while (0)
#define CNB_CHECK_POSITIVE(ctx, fn, v)                                                         \
    do {                                                                                       \
        if ((v) <= 0)                                                                          \
            return cnb_check_fail_((ctx) ? (ctx)->err : NULL, sizeof (ctx)->err,               \
                                   "%s: %s=%lld must be positive", (fn), #v, (long long)(v));  \
    } while (0)

/* The named fields, in order: the first that is not positive is reported. */
typedef struct cnb_check_field_ {
    const char *name;
    int value;
} cnb_check_field_;

static inline cnb_status cnb_check_positive_(const char *fn, const cnb_check_field_ *f, size_t n,
                                             char *err, size_t err_len) {
    for (size_t i = 0; i < n; i++)
        if (f[i].value <= 0)
            return cnb_check_fail_(err, err_len, "%s: %s=%d must be positive", fn, f[i].name,
                                   f[i].value);
    return CNB_OK;
}

/* Padding of each side >= 0. */
static inline cnb_status cnb_check_pad_(const char *fn, int pad_h, int pad_w, char *err,
                                        size_t err_len) {
    if (pad_h < 0 || pad_w < 0)
        return cnb_check_fail_(err, err_len, "%s: %s=%d is negative (padding must be >= 0)", fn,
                               pad_h < 0 ? "pad_h" : "pad_w", pad_h < 0 ? pad_h : pad_w);
    return CNB_OK;
}

/* The part convolution and pooling share, after the fields are positive and the padding is not
 * negative: a kernel (window) no larger than the padded input, and p, q from the formula in
 * cnb_abi.h. kh_name and kw_name are the kernel's field names ("r" and "s", or "kh" and "kw"). */
static inline cnb_status cnb_check_window_(const char *fn, const char *kh_name,
                                           const char *kw_name, int h, int w, int kh, int kw,
                                           int stride_h, int stride_w, int pad_h, int pad_w,
                                           int p, int q, char *err, size_t err_len) {
    long long padded_h = (long long)h + 2LL * pad_h, padded_w = (long long)w + 2LL * pad_w;
    if (padded_h < kh)
        return cnb_check_fail_(err, err_len,
                               "%s: %s=%d is larger than the padded input h+2*pad_h=%lld", fn,
                               kh_name, kh, padded_h);
    if (padded_w < kw)
        return cnb_check_fail_(err, err_len,
                               "%s: %s=%d is larger than the padded input w+2*pad_w=%lld", fn,
                               kw_name, kw, padded_w);
    long long want_p = (padded_h - kh) / stride_h + 1, want_q = (padded_w - kw) / stride_w + 1;
    if (p != want_p)
        return cnb_check_fail_(err, err_len,
                               "%s: p=%d does not match (h+2*pad_h-%s)/stride_h+1=%lld (output "
                               "%dx%d, expected %lldx%lld)",
                               fn, p, kh_name, want_p, p, q, want_p, want_q);
    if (q != want_q)
        return cnb_check_fail_(err, err_len,
                               "%s: q=%d does not match (w+2*pad_w-%s)/stride_w+1=%lld (output "
                               "%dx%d, expected %lldx%lld)",
                               fn, q, kw_name, want_q, p, q, want_p, want_q);
    return CNB_OK;
}

/* A convolution descriptor as cnb_abi.h defines it (see the list at the top). */
static inline cnb_status cnb_check_conv_desc(const char *fn, const cnb_conv_desc *d, char *err,
                                             size_t err_len) {
    if (!d) return cnb_check_fail_(err, err_len, "%s: descriptor is NULL", fn);
    const cnb_check_field_ f[] = {{"n", d->n}, {"c", d->c}, {"h", d->h}, {"w", d->w},
                                  {"k", d->k}, {"r", d->r}, {"s", d->s},
                                  {"stride_h", d->stride_h}, {"stride_w", d->stride_w}};
    cnb_status st = cnb_check_positive_(fn, f, sizeof f / sizeof f[0], err, err_len);
    if (st == CNB_OK) st = cnb_check_pad_(fn, d->pad_h, d->pad_w, err, err_len);
    if (st == CNB_OK)
        st = cnb_check_window_(fn, "r", "s", d->h, d->w, d->r, d->s, d->stride_h, d->stride_w,
                               d->pad_h, d->pad_w, d->p, d->q, err, err_len);
    return st;
}

/* A pooling descriptor as cnb_abi.h defines it (see the list at the top). */
static inline cnb_status cnb_check_pool_desc(const char *fn, const cnb_pool_desc *d, char *err,
                                             size_t err_len) {
    if (!d) return cnb_check_fail_(err, err_len, "%s: descriptor is NULL", fn);
    if (d->mode != CNB_POOL_MAX && d->mode != CNB_POOL_AVG)
        return cnb_check_fail_(err, err_len, "%s: mode=%d is neither max (%d) nor avg (%d)", fn,
                               d->mode, CNB_POOL_MAX, CNB_POOL_AVG);
    const cnb_check_field_ f[] = {{"n", d->n},   {"c", d->c},   {"h", d->h}, {"w", d->w},
                                  {"kh", d->kh}, {"kw", d->kw},
                                  {"stride_h", d->stride_h}, {"stride_w", d->stride_w}};
    cnb_status st = cnb_check_positive_(fn, f, sizeof f / sizeof f[0], err, err_len);
    if (st == CNB_OK) st = cnb_check_pad_(fn, d->pad_h, d->pad_w, err, err_len);
    if (st != CNB_OK) return st;
    if (d->mode == CNB_POOL_MAX && (d->pad_h >= d->kh || d->pad_w >= d->kw))
        return cnb_check_fail_(err, err_len,
                               "%s: max pooling padding %s=%d must be smaller than the window "
                               "%dx%d",
                               fn, d->pad_h >= d->kh ? "pad_h" : "pad_w",
                               d->pad_h >= d->kh ? d->pad_h : d->pad_w, d->kh, d->kw);
    return cnb_check_window_(fn, "kh", "kw", d->h, d->w, d->kh, d->kw, d->stride_h, d->stride_w,
                             d->pad_h, d->pad_w, d->p, d->q, err, err_len);
}

/* For backends that index with int: 1 when a tensor of a x b x c x d elements (each factor
 * non-negative and below 2^31) has at most INT_MAX elements; else 0 with a message naming fn
 * and the tensor `what`. */
static inline int cnb_check_fits_int(const char *fn, const char *what, int64_t a, int64_t b,
                                     int64_t c, int64_t d, char *err, size_t err_len) {
    /* Each factor is below 2^31, so every partial product checked here stays below 2^62. */
    const int64_t f[4] = {a, b, c, d};
    int64_t prod = 1;
    for (int i = 0; i < 4; i++) {
        prod *= f[i];
        if (prod > INT_MAX) {
            cnb_check_fail_(err, err_len,
                            "%s: %s = %lld x %lld x %lld x %lld elements is more than an int "
                            "indexes (%d)",
                            fn, what, (long long)a, (long long)b, (long long)c, (long long)d,
                            INT_MAX);
            return 0;
        }
    }
    return 1;
}

/* x, y and the weight of a valid convolution each at most INT_MAX elements (as above). */
static inline int cnb_check_conv_fits_int(const char *fn, const cnb_conv_desc *d, char *err,
                                          size_t err_len) {
    return cnb_check_fits_int(fn, "x", d->n, d->c, d->h, d->w, err, err_len) &&
           cnb_check_fits_int(fn, "y", d->n, d->k, d->p, d->q, err, err_len) &&
           cnb_check_fits_int(fn, "weight", d->k, d->c, d->r, d->s, err, err_len);
}

/* x and y of a valid pooling each at most INT_MAX elements (as above). */
static inline int cnb_check_pool_fits_int(const char *fn, const cnb_pool_desc *d, char *err,
                                          size_t err_len) {
    return cnb_check_fits_int(fn, "x", d->n, d->c, d->h, d->w, err, err_len) &&
           cnb_check_fits_int(fn, "y", d->n, d->c, d->p, d->q, err, err_len);
}

/* Activation calls: act is one of CNB_ACT_*, count > 0. */
static inline cnb_status cnb_check_activation_kind(const char *fn, int act, size_t count,
                                                   char *err, size_t err_len) {
    if (act != CNB_ACT_RELU && act != CNB_ACT_TANH && act != CNB_ACT_SIGMOID &&
        act != CNB_ACT_PRELU)
        return cnb_check_fail_(err, err_len, "%s: unknown activation %d", fn, act);
    if (count == 0) return cnb_check_fail_(err, err_len, "%s: count is 0", fn);
    return CNB_OK;
}

/* The named pointers, in order: the first NULL one is reported. */
typedef struct cnb_check_ptr_ {
    const char *name;
    const void *p;
} cnb_check_ptr_;

static inline cnb_status cnb_check_ptrs_(const char *fn, const cnb_check_ptr_ *p, size_t n,
                                         char *err, size_t err_len) {
    for (size_t i = 0; i < n; i++)
        if (!p[i].p) return cnb_check_fail_(err, err_len, "%s: %s is NULL", fn, p[i].name);
    return CNB_OK;
}

/* activation_forward: the kind, y and x, and slope for PReLU. */
static inline cnb_status cnb_check_activation_forward(const char *fn, int act, size_t count,
                                                      const float *y, const float *x,
                                                      const float *slope, char *err,
                                                      size_t err_len) {
    cnb_status st = cnb_check_activation_kind(fn, act, count, err, err_len);
    if (st != CNB_OK) return st;
    const cnb_check_ptr_ p[] = {{"y", y}, {"x", x}, {"slope", slope}};
    return cnb_check_ptrs_(fn, p, act == CNB_ACT_PRELU ? 3 : 2, err, err_len);
}

/* activation_backward: the kind, dx and dy, then what the activation's gradient reads: x for
 * ReLU and PReLU, y for tanh and sigmoid; PReLU also needs slope and dslope. */
static inline cnb_status cnb_check_activation_backward(const char *fn, int act, size_t count,
                                                       const float *dx, const float *dslope,
                                                       const float *dy, const float *x,
                                                       const float *y, const float *slope,
                                                       char *err, size_t err_len) {
    cnb_status st = cnb_check_activation_kind(fn, act, count, err, err_len);
    if (st != CNB_OK) return st;
    cnb_check_ptr_ p[5] = {{"dx", dx}, {"dy", dy}};
    size_t n = 2;
    if (act == CNB_ACT_RELU || act == CNB_ACT_PRELU) p[n++] = (cnb_check_ptr_){"x", x};
    else p[n++] = (cnb_check_ptr_){"y", y};
    if (act == CNB_ACT_PRELU) {
        p[n++] = (cnb_check_ptr_){"slope", slope};
        p[n++] = (cnb_check_ptr_){"dslope", dslope};
    }
    return cnb_check_ptrs_(fn, p, n, err, err_len);
}

/* corr2d: y, x and k, every size positive, and the kernel no larger than the input (valid
 * mode). */
static inline cnb_status cnb_check_corr2d(const char *fn, const float *y, const float *x,
                                          const float *k, int h, int w, int kh, int kw, char *err,
                                          size_t err_len) {
    const cnb_check_ptr_ p[] = {{"y", y}, {"x", x}, {"k", k}};
    const cnb_check_field_ f[] = {{"h", h}, {"w", w}, {"kh", kh}, {"kw", kw}};
    cnb_status st = cnb_check_ptrs_(fn, p, sizeof p / sizeof p[0], err, err_len);
    if (st == CNB_OK) st = cnb_check_positive_(fn, f, sizeof f / sizeof f[0], err, err_len);
    if (st == CNB_OK && (kh > h || kw > w))
        st = cnb_check_fail_(err, err_len, "%s: kernel %dx%d is larger than the input %dx%d", fn,
                             kh, kw, h, w);
    return st;
}

/* gemm: trans_a and trans_b 0 or 1, m, n, k positive, a, b and c present, and each leading
 * dimension at least the columns of its matrix as stored. */
static inline cnb_status cnb_check_gemm(const char *fn, int trans_a, int trans_b, int m, int n,
                                        int k, const float *a, int lda, const float *b, int ldb,
                                        const float *c, int ldc, char *err, size_t err_len) {
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1))
        return cnb_check_fail_(err, err_len, "%s: trans_a=%d, trans_b=%d must each be 0 or 1",
                               fn, trans_a, trans_b);
    const cnb_check_field_ f[] = {{"m", m}, {"n", n}, {"k", k}};
    const cnb_check_ptr_ p[] = {{"a", a}, {"b", b}, {"c", c}};
    cnb_status st = cnb_check_positive_(fn, f, sizeof f / sizeof f[0], err, err_len);
    if (st == CNB_OK) st = cnb_check_ptrs_(fn, p, sizeof p / sizeof p[0], err, err_len);
    if (st != CNB_OK) return st;
    int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (lda < a_cols)
        return cnb_check_fail_(err, err_len,
                               "%s: lda=%d is less than the %d columns of A as stored", fn, lda,
                               a_cols);
    if (ldb < b_cols)
        return cnb_check_fail_(err, err_len,
                               "%s: ldb=%d is less than the %d columns of B as stored", fn, ldb,
                               b_cols);
    if (ldc < n)
        return cnb_check_fail_(err, err_len, "%s: ldc=%d is less than the %d columns of C", fn,
                               ldc, n);
    return CNB_OK;
}

/* softmax_ce_forward: n and classes positive; probs, loss, logits and labels present (pred is
 * optional). */
static inline cnb_status cnb_check_softmax_ce_forward(const char *fn, int n, int classes,
                                                      const float *probs, const float *loss,
                                                      const float *logits,
                                                      const int32_t *labels, char *err,
                                                      size_t err_len) {
    const cnb_check_field_ f[] = {{"n", n}, {"classes", classes}};
    const cnb_check_ptr_ p[] = {{"probs", probs}, {"loss", loss}, {"logits", logits},
                                {"labels", labels}};
    cnb_status st = cnb_check_positive_(fn, f, sizeof f / sizeof f[0], err, err_len);
    return st == CNB_OK ? cnb_check_ptrs_(fn, p, sizeof p / sizeof p[0], err, err_len) : st;
}

/* softmax_ce_backward: n and classes positive; dlogits, probs and labels present. */
static inline cnb_status cnb_check_softmax_ce_backward(const char *fn, int n, int classes,
                                                       const float *dlogits, const float *probs,
                                                       const int32_t *labels, char *err,
                                                       size_t err_len) {
    const cnb_check_field_ f[] = {{"n", n}, {"classes", classes}};
    const cnb_check_ptr_ p[] = {{"dlogits", dlogits}, {"probs", probs}, {"labels", labels}};
    cnb_status st = cnb_check_positive_(fn, f, sizeof f / sizeof f[0], err, err_len);
    return st == CNB_OK ? cnb_check_ptrs_(fn, p, sizeof p / sizeof p[0], err, err_len) : st;
}

/* The activation of a fused slot: CNB_FUSED_ACT_NONE, RELU, TANH or SIGMOID. PReLU is a valid
 * activation that no fused slot takes: CNB_ERR_UNSUPPORTED, so the harness falls back. */
static inline cnb_status cnb_check_fused_act(const char *fn, int act, char *err, size_t err_len) {
    if (act == CNB_FUSED_ACT_NONE || act == CNB_ACT_RELU || act == CNB_ACT_TANH ||
        act == CNB_ACT_SIGMOID)
        return CNB_OK;
    if (act == CNB_ACT_PRELU) {
        cnb_check_fail_(err, err_len, "%s: PReLU is not fused (its slope gradient needs the "
                        "pre-activation); use the separate slots", fn);
        return CNB_ERR_UNSUPPORTED;
    }
    return cnb_check_fail_(err, err_len, "%s: act=%d is not a fused activation", fn, act);
}

#endif /* CNB_ABI_CHECK_H */
