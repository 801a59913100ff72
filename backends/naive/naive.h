/* naive.h — private to the naive backend: the context, the error helper, the per-family kernel
 * prototypes that backend.c puts into the function table. */
#ifndef CNB_NAIVE_H
#define CNB_NAIVE_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"

struct cnb_context {
    char err[512];        /* message of the last failed call, "" if none failed yet */
    /* Reusable double-precision scratch (accumulator rows, dx planes); grown on demand and kept,
     * so a training step does not allocate once it has warmed up. */
    double *scratch;
    size_t scratch_count;
};

/* Keep a printf-style message for last_error() and return st; ctx may be NULL. */
cnb_status naive_fail(cnb_context *ctx, cnb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At least count doubles of scratch in *out (contents undefined), or CNB_ERR_OUT_OF_MEMORY. */
cnb_status naive_scratch(cnb_context *ctx, size_t count, double **out);

/* Early-return checks that name the kernel and the argument. */
#define NAIVE_CHECK_CTX(ctx) \
    do { if (!(ctx)) return CNB_ERR_INVALID_ARGUMENT; } while (0)
#define NAIVE_CHECK_PTR(ctx, fn, p)                                                      \
    do {                                                                                 \
        if (!(p)) return naive_fail((ctx), CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", (fn), #p); \
    } while (0)
#define NAIVE_CHECK_POSITIVE(ctx, fn, v)                                                 \
    do {                                                                                 \
        if ((v) <= 0) return naive_fail_not_positive((ctx), (fn), #v, (long long)(v));   \
    } while (0)

/* "fn: n=0 must be positive"; a leading "d->" is dropped from the expression's name. */
cnb_status naive_fail_not_positive(cnb_context *ctx, const char *fn, const char *name,
                                   long long value);

/* memory.c */
cnb_status naive_alloc(cnb_context *ctx, void **ptr, size_t bytes);
cnb_status naive_free(cnb_context *ctx, void *ptr);
cnb_status naive_upload(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes);
cnb_status naive_download(cnb_context *ctx, void *dst_host, const void *src_device, size_t bytes);
cnb_status naive_synchronize(cnb_context *ctx);

/* corr2d.c */
cnb_status naive_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h, int w,
                        int kh, int kw);

/* conv.c */
cnb_status naive_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y, const float *x,
                              const float *weight, const float *bias);
cnb_status naive_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                    const float *dy, const float *weight);
cnb_status naive_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                      const float *dy, const float *x);
cnb_status naive_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c, int hw);
cnb_status naive_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                               int hw);

/* pool.c */
cnb_status naive_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes);
cnb_status naive_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                              void *workspace);
cnb_status naive_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                               const float *dy, const float *x, const float *y,
                               const void *workspace);

/* gemm.c */
cnb_status naive_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c,
                      int ldc);

/* activation.c */
cnb_status naive_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                    const float *x, const float *slope);
cnb_status naive_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                     float *dslope, const float *dy, const float *x,
                                     const float *y, const float *slope);

/* softmax_ce.c */
cnb_status naive_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                    float *loss, int32_t *pred, const float *logits,
                                    const int32_t *labels);
cnb_status naive_softmax_ce_backward(cnb_context *ctx, int n, int classes, float *dlogits,
                                     const float *probs, const int32_t *labels);

/* optimizer.c */
cnb_status naive_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                          float *velocity, const float *grad);
cnb_status naive_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count, float *param,
                           float *m, float *v, const float *grad);

/* fused.c: the fused slots as compositions of the kernels above */
cnb_status naive_conv_bias_act_forward(cnb_context *ctx, const cnb_conv_desc *d, int act,
                                       float *y, const float *x, const float *weight,
                                       const float *bias);
cnb_status naive_pool_act_backward(cnb_context *ctx, const cnb_pool_desc *d, int act, float *dx,
                                   const float *dy, const float *x, const float *y,
                                   const void *workspace);

#endif
