/* cuda_kernels.h — the launchers of the hand-written kernels, callable from C. Each enqueues its
 * kernels on stream s and returns the launch error; arguments are already validated and
 * planned by the caller (cuda_plan.h), which also provides any scratch the plan asks for.
 * Shared by backends/cuda (every slot) and backends/cudnn (what cuDNN lacks: PReLU, the
 * cross-entropy loss and its gradient, the optimizers). Same names and argument order as the
 * ABI slots: outputs first, then inputs; shapes in comments. */
#ifndef CNB_CUDA_KERNELS_H
#define CNB_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"
#include "cuda_compat.h"
#include "cuda_plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Launches an empty kernel and waits: fails (cudaErrorNoKernelImageForDevice) when this build
 * has no code the device can run. */
cudaError_t cnbk_probe(cudaStream_t s);

/* y (h-kh+1, w-kw+1), x (h, w), k (kh, kw). */
cudaError_t cnbk_corr2d(cudaStream_t s, float *y, const float *x, const float *k, int h, int w,
                        int kh, int kw);

/* Implicit-GEMM convolutions; plan comes from cnb_plan_gemm on the cnb_conv_*_mnk sizes and
 * partial holds plan->partial_floats floats (NULL when plan->splits == 1).
 * y (n,k,p,q), x (n,c,h,w), weight (k,c,r,s), bias (k) or NULL. */
cudaError_t cnbk_conv_forward(cudaStream_t s, const cnb_conv_geom *g, const cnb_gemm_plan *plan,
                              float *partial, float *y, const float *x, const float *weight,
                              const float *bias);
/* dx (n,c,h,w), dy (n,k,p,q), weight (k,c,r,s). */
cudaError_t cnbk_conv_backward_data(cudaStream_t s, const cnb_conv_geom *g,
                                    const cnb_gemm_plan *plan, float *partial, float *dx,
                                    const float *dy, const float *weight);
/* dweight (k,c,r,s), dy (n,k,p,q), x (n,c,h,w). */
cudaError_t cnbk_conv_backward_filter(cudaStream_t s, const cnb_conv_geom *g,
                                      const cnb_gemm_plan *plan, float *partial, float *dweight,
                                      const float *dy, const float *x);
/* y (n,c,hw) += bias (c), in place. */
cudaError_t cnbk_bias_forward(cudaStream_t s, float *y, const float *bias, int n, int c, int hw);
/* dbias (c) = sum of dy (n,c,hw) over n and hw: one block per channel, a fixed-order tree. */
cudaError_t cnbk_bias_backward(cudaStream_t s, float *dbias, const float *dy, int n, int c,
                               int hw);

/* Row-major C (m,n) = alpha op(A) op(B) + beta C; with beta == 0 C is not read. */
cudaError_t cnbk_gemm(cudaStream_t s, const cnb_gemm_plan *plan, float *partial, int trans_a,
                      int trans_b, float alpha, const float *a, int lda, const float *b, int ldb,
                      float beta, float *c, int ldc);

/* y (n,c,p,q), x (n,c,h,w); argmax (n,c,p,q) int32 indices into each (h,w) plane, max only
 * (the pool workspace). */
cudaError_t cnbk_pool_forward(cudaStream_t s, const cnb_pool_desc *d, float *y, int32_t *argmax,
                              const float *x);
/* dx (n,c,h,w) gathered from dy (n,c,p,q): each input sums the outputs whose window holds it
 * (max: only where it was the argmax) in row-major output order — no atomics, no zeroing. */
cudaError_t cnbk_pool_backward(cudaStream_t s, const cnb_pool_desc *d, float *dx,
                               const float *dy, const int32_t *argmax);

/* y, x (count); slope: one value in device memory, PReLU only. */
cudaError_t cnbk_activation_forward(cudaStream_t s, int act, size_t count, float *y,
                                    const float *x, const float *slope);
/* dx, dy, x, y (count). PReLU also writes dslope (one value) through a two-pass sum whose
 * partial holds cnb_plan_reduce_blocks(count) floats. */
cudaError_t cnbk_activation_backward(cudaStream_t s, int act, size_t count, float *dx,
                                     float *dslope, float *partial, const float *dy,
                                     const float *x, const float *y, const float *slope);

/* probs (n,classes), loss (1) = mean of the per-row losses written to row_loss (n floats of
 * scratch), pred (n) or NULL, logits (n,classes), labels (n). A label outside [0, classes)
 * sets *bad_label (device-visible int) and makes that row's loss NaN. */
cudaError_t cnbk_softmax_ce_forward(cudaStream_t s, int n, int classes, float *probs,
                                    float *loss, int32_t *pred, float *row_loss, int *bad_label,
                                    const float *logits, const int32_t *labels);
/* The loss half alone, for a backend whose library computed softmax and log-softmax: loss (1) =
 * mean of -logprobs[i, labels[i]], pred (n) = first argmax of logits (n,classes) or NULL (NaN
 * counts as the maximum). A row of logits holding NaN or +Inf gets NaN probs (n,classes) and a
 * NaN loss whatever the library wrote (cnb_abi.h's non-finite rule). */
cudaError_t cnbk_ce_loss_from_logprobs(cudaStream_t s, int n, int classes, float *loss,
                                       int32_t *pred, float *row_loss, int *bad_label,
                                       float *probs, const float *logprobs, const float *logits,
                                       const int32_t *labels);
/* dlogits (n,classes) = (probs - onehot(labels)) / n. */
cudaError_t cnbk_softmax_ce_backward(cudaStream_t s, int n, int classes, float *dlogits,
                                     int *bad_label, const float *probs, const int32_t *labels);

/* param, velocity, grad (count); the formulas of cnb_sgd_desc. */
cudaError_t cnbk_sgd_step(cudaStream_t s, const cnb_sgd_desc *d, size_t count, float *param,
                          float *velocity, const float *grad);
/* param, m, v, grad (count). step_size = lr / (1 - beta1^t) and bias_correction2_sqrt =
 * sqrt(1 - beta2^t) come from the host (in double, as PyTorch's Python floats). */
cudaError_t cnbk_adam_step(cudaStream_t s, const cnb_adam_desc *d, float step_size,
                           float bias_correction2_sqrt, size_t count, float *param, float *m,
                           float *v, const float *grad);

#ifdef __cplusplus
}
#endif
#endif /* CNB_CUDA_KERNELS_H */
