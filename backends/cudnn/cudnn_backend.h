/* cudnn_backend.h — private to the cudnn backend: its context (the shared GPU state, the cuDNN
 * and cuBLAS handles on the same stream, per-shape descriptor and algorithm caches, one
 * grow-only workspace), error helpers for both libraries, and the slots conv.c and ops.c give
 * backend.c. */
#ifndef CNB_CUDNN_BACKEND_H
#define CNB_CUDNN_BACKEND_H

#include <cublas_v2.h>
#include <cudnn.h>

#include "cudnn_plan.h"
#include "gpu_common.h"

/* One cached average pooling shape: its descriptors (created once, reused every step). Max
 * pooling runs on backends/cuda's argmax kernels (ops.c says why). */
typedef struct pool_entry {
    cnb_pool_desc key;
    cudnnPoolingDescriptor_t pool;
    cudnnTensorDescriptor_t x, y;
} pool_entry;

struct cnb_context {
    cnb_gpu_base gpu; /* first: device, stream, scratch, flags, last error */
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    cudnnMathType_t conv_math; /* CUDNN_FMA_MATH (strict fp32) or CUDNN_DEFAULT_MATH (TF32) */
    cnb_cudnn_conv_cache convs;
    pool_entry *pools;
    int pool_count, pool_cap;
    /* Descriptors re-set by each element-wise call (bias, activation, softmax). */
    cudnnTensorDescriptor_t t_a, t_b;
    cudnnActivationDescriptor_t act;
    /* cuDNN's workspace for the chosen algorithms: grows to the largest need, never shrinks. */
    void *workspace;
    size_t workspace_bytes;
    long searches;         /* cudnnFind*Ex calls made (info(): cudnn.searches) */
    size_t cudnn_loaded;   /* cudnnGetVersion() */
    long cudnn_cudart;     /* cudnnGetCudartVersion(): the CUDA runtime cuDNN was built with */
    long cublas_loaded;    /* 10000*major + 100*minor + patch from cublasGetProperty */
};

#define CTX_GPU(ctx) (&(ctx)->gpu)

/* CNB_OK, or keeps "<what>: CUDNN_STATUS_X: text (cuDNN's last message)" and maps the status. */
cnb_status dnn_check(cnb_context *ctx, cudnnStatus_t s, const char *what);
/* CNB_OK when the output shape cuDNN computes (n, c, h, w) is the descriptor's; else
 * CNB_ERR_INTERNAL with "fn: cuDNN computes output (...), the descriptor says (...)". */
cnb_status dnn_check_output_dim(cnb_context *ctx, const char *fn, const int got[4],
                                const int want[4]);
/* CNB_OK, or keeps "<what>: CUBLAS_STATUS_X: text" and maps the status. */
cnb_status blas_check(cnb_context *ctx, cublasStatus_t s, const char *what);
/* At least bytes of workspace in *out (NULL when 0). */
cnb_status dnn_workspace(cnb_context *ctx, size_t bytes, void **out);
/* Sets t to a packed NCHW float tensor. */
cnb_status dnn_set_tensor(cnb_context *ctx, cudnnTensorDescriptor_t t, int n, int c, int h, int w,
                          const char *what);

/* conv.c */
cnb_status dnn_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y, const float *x,
                            const float *weight, const float *bias);
cnb_status dnn_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                  const float *dy, const float *weight);
cnb_status dnn_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                    const float *dy, const float *x);
cnb_status dnn_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c, int hw);
cnb_status dnn_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                             int hw);
cnb_status dnn_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h, int w,
                      int kh, int kw);
void dnn_release_conv_descs(void *descs);
/* Reports one info entry per cached convolution shape: its chosen algorithms. */
void dnn_info_convs(cnb_context *ctx, cnb_info_fn fn, void *user);

/* ops.c */
cnb_status dnn_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes);
cnb_status dnn_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                            void *workspace);
cnb_status dnn_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                             const float *dy, const float *x, const float *y,
                             const void *workspace);
void dnn_release_pools(cnb_context *ctx);
cnb_status dnn_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);
cnb_status dnn_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                  const float *x, const float *slope);
cnb_status dnn_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                   float *dslope, const float *dy, const float *x, const float *y,
                                   const float *slope);
cnb_status dnn_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                  float *loss, int32_t *pred, const float *logits,
                                  const int32_t *labels);

#endif /* CNB_CUDNN_BACKEND_H */
