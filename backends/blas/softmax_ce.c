/* softmax_ce.c — softmax + cross-entropy loss (mean over the batch) and its gradient. The loss
 * is taken in log-sum-exp form, loss_i = log(sum_j exp(z_j - max)) + max - z_label, summed in
 * double, which stays accurate where -log(p[label]) of a rounded probability would not. A batch
 * is at most a few thousand rows of ten logits, so plain loops are plenty. */
#include <math.h>

#include "blas_backend.h"

/* probs and logits are (n, classes), labels and pred are (n), loss is one value.
 *   probs[i,j] = exp(z_ij - max_i) / sum_j' exp(z_ij' - max_i)
 *   loss = mean_i (logsumexp(z_i) - z_i,label_i);  pred[i] = first argmax_j z_ij (NaN counts
 * as the maximum, cnb_abi.h's non-finite rule) */
cnb_status blas_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                   float *loss, int32_t *pred, const float *logits,
                                   const int32_t *labels) {
    CNB_CHECK_CTX(ctx);
    const char *fn = "softmax_ce_forward";
    cnb_status st = cnb_check_softmax_ce_forward(fn, n, classes, probs, loss, logits, labels,
                                                 ctx->err, sizeof ctx->err);
    if (st == CNB_OK && !blas_dims_fit(ctx, fn, "logits", n, classes, 1, 1))
        st = CNB_ERR_INVALID_ARGUMENT;
    if (st == CNB_OK) st = cpu_check_labels(ctx, fn, n, classes, labels);
    if (st != CNB_OK) return st;

    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *pr = probs + (size_t)i * classes;
        int argmax = cpu_row_argmax(z, classes);
        const float zmax = z[argmax];         /* subtracted so exp never overflows */
        float sum = 0.0f;
        for (int j = 0; j < classes; j++) {
            pr[j] = expf(z[j] - zmax);
            sum += pr[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < classes; j++) pr[j] *= inv;
        total += log((double)sum) + (double)zmax - (double)z[labels[i]];
        if (pred) pred[i] = argmax;
    }
    *loss = (float)(total / n);
    return CNB_OK;
}

/* dlogits and probs are (n, classes), labels is (n):
 *   dlogits[i,j] = (probs[i,j] - (j == labels[i])) / n */
cnb_status blas_softmax_ce_backward(cnb_context *ctx, int n, int classes, float *dlogits,
                                    const float *probs, const int32_t *labels) {
    CNB_CHECK_CTX(ctx);
    const char *fn = "softmax_ce_backward";
    cnb_status st = cnb_check_softmax_ce_backward(fn, n, classes, dlogits, probs, labels,
                                                  ctx->err, sizeof ctx->err);
    if (st == CNB_OK && !blas_dims_fit(ctx, fn, "probs", n, classes, 1, 1))
        st = CNB_ERR_INVALID_ARGUMENT;
    if (st == CNB_OK) st = cpu_check_labels(ctx, fn, n, classes, labels);
    if (st != CNB_OK) return st;
    const float inv_n = 1.0f / (float)n;
    for (int i = 0; i < n; i++) {
        const float *restrict pr = probs + (size_t)i * classes;
        float *restrict dz = dlogits + (size_t)i * classes;
        for (int j = 0; j < classes; j++) dz[j] = pr[j] * inv_n;
        dz[labels[i]] = (pr[labels[i]] - 1.0f) * inv_n;
    }
    return CNB_OK;
}
