/* softmax_ce.cu — softmax + cross-entropy (mean over the batch) and its gradient. One thread
 * per row (the models have 10 classes); the per-row losses go to scratch and one block adds
 * them in a fixed order, so the loss is the same bits every run. A label outside
 * [0, classes) cannot be returned as an error without waiting for the device, so the kernel
 * raises a flag the backend checks at its next synchronizing call, and writes NaN for that row's
 * loss (and gradient) so the result cannot pass for a number. */
#include <math.h>

#include "cuda_kernels.h"
#include "reduce.cuh"

namespace {

/* probs (n,classes), row_loss (n), pred (n) or NULL, logits (n,classes), labels (n):
 *   probs = exp(z - max) / sum exp(z - max);  row_loss = log(sum) + max - z[label]. */
__global__ void softmax_ce_forward_kernel(int n, int classes, float *probs, float *row_loss,
                                          int32_t *pred, int *bad_label, const float *logits,
                                          const int32_t *labels) {
    CNB_GRID_STRIDE(i64, n) {
        const int i = (int)i64;
        const float *z = logits + i * classes;
        float *pr = probs + i * classes;
        int argmax = 0;
        float zmax = z[0];
        /* strict '>': the first maximum wins; NaN counts as the maximum, the first NaN wins */
        for (int j = 1; j < classes && zmax == zmax; j++)
            if (z[j] > zmax || z[j] != z[j]) {
                zmax = z[j];
                argmax = j;
            }
        float sum = 0.0f;
        for (int j = 0; j < classes; j++) sum += expf(z[j] - zmax);
        for (int j = 0; j < classes; j++) pr[j] = expf(z[j] - zmax) / sum;
        int label = labels[i];
        if (label < 0 || label >= classes) {
            *bad_label = 1;
            row_loss[i] = NAN;
        } else {
            row_loss[i] = (logf(sum) + zmax) - z[label];
        }
        if (pred) pred[i] = argmax;
    }
}

/* row_loss (n) = -logprobs[i, labels[i]], pred (n) or NULL from logits (n,classes); a row of
 * logits holding NaN or +Inf (Inf - Inf in exp(z - max)) gets NaN probs and loss, which no
 * library documents for its softmax. */
__global__ void ce_loss_from_logprobs_kernel(int n, int classes, float *row_loss, int32_t *pred,
                                             int *bad_label, float *probs,
                                             const float *logprobs, const float *logits,
                                             const int32_t *labels) {
    CNB_GRID_STRIDE(i64, n) {
        const int i = (int)i64;
        const float *z = logits + (size_t)i * classes;
        int argmax = 0;
        for (int j = 1; j < classes && z[argmax] == z[argmax]; j++) /* first NaN wins */
            if (z[j] > z[argmax] || z[j] != z[j]) argmax = j;
        const int poisoned = z[argmax] != z[argmax] || z[argmax] == INFINITY;
        if (poisoned)
            for (int j = 0; j < classes; j++) probs[(size_t)i * classes + j] = NAN;
        int label = labels[i];
        if (label < 0 || label >= classes) {
            *bad_label = 1;
            row_loss[i] = NAN;
        } else {
            row_loss[i] = poisoned ? NAN : -logprobs[i * classes + label];
        }
        if (pred) pred[i] = argmax;
    }
}

/* dlogits (n,classes) = (probs - onehot(labels)) / n. */
__global__ void softmax_ce_backward_kernel(int n, int classes, float *dlogits, int *bad_label,
                                           const float *probs, const int32_t *labels) {
    const int total = n * classes;
    const float rows = (float)n;
    CNB_GRID_STRIDE(e64, total) {
        const int e = (int)e64, i = e / classes, j = e - i * classes;
        int label = labels[i];
        if (label < 0 || label >= classes) {
            *bad_label = 1;
            dlogits[e] = NAN;
            continue;
        }
        float onehot = j == label ? 1.0f : 0.0f;
        dlogits[e] = __fdiv_rn(__fsub_rn(probs[e], onehot), rows);
    }
}

} // namespace

extern "C" cudaError_t cnbk_softmax_ce_forward(cudaStream_t s, int n, int classes, float *probs,
                                               float *loss, int32_t *pred, float *row_loss,
                                               int *bad_label, const float *logits,
                                               const int32_t *labels) {
    int blocks = cnb_plan_blocks((size_t)n, 128, CNB_EW_MAX_BLOCKS);
    cudaError_t e = cnb_launch(softmax_ce_forward_kernel, dim3((unsigned)blocks), dim3(128), s,
                               n, classes, probs, row_loss, pred, bad_label, logits, labels);
    if (e != cudaSuccess) return e;
    return cnb_launch(sum_to_scalar_kernel, dim3(1), dim3(CNB_REDUCE_THREADS), s, loss,
                      (const float *)row_loss, n, (float)n);
}

extern "C" cudaError_t cnbk_ce_loss_from_logprobs(cudaStream_t s, int n, int classes,
                                                  float *loss, int32_t *pred, float *row_loss,
                                                  int *bad_label, float *probs,
                                                  const float *logprobs, const float *logits,
                                                  const int32_t *labels) {
    int blocks = cnb_plan_blocks((size_t)n, 128, CNB_EW_MAX_BLOCKS);
    cudaError_t e = cnb_launch(ce_loss_from_logprobs_kernel, dim3((unsigned)blocks), dim3(128),
                               s, n, classes, row_loss, pred, bad_label, probs, logprobs, logits,
                               labels);
    if (e != cudaSuccess) return e;
    return cnb_launch(sum_to_scalar_kernel, dim3(1), dim3(CNB_REDUCE_THREADS), s, loss,
                      (const float *)row_loss, n, (float)n);
}

extern "C" cudaError_t cnbk_softmax_ce_backward(cudaStream_t s, int n, int classes,
                                                float *dlogits, int *bad_label,
                                                const float *probs, const int32_t *labels) {
    int blocks = cnb_plan_blocks((size_t)n * classes, CNB_EW_THREADS, CNB_EW_MAX_BLOCKS);
    return cnb_launch(softmax_ce_backward_kernel, dim3((unsigned)blocks), dim3(CNB_EW_THREADS),
                      s, n, classes, dlogits, bad_label, probs, labels);
}
