/* softmax_ce.c — softmax + cross-entropy loss (mean over the batch) and its gradient. The loss
 * is taken in log-sum-exp form, loss_i = log(sum_j exp(z_j - max)) + max - z_label, in double,
 * which stays accurate where -log(p[label]) of a rounded probability would not. */
#include <math.h>

#include "naive.h"

/* probs and logits are (n, classes), labels and pred are (n), loss is one value.
 *   probs[i,j] = exp(z_ij - max_i) / sum_j' exp(z_ij' - max_i)
 *   loss = mean_i (logsumexp(z_i) - z_i,label_i);  pred[i] = first argmax_j z_ij, where NaN
 * counts as the maximum: a row holding NaN (or +Inf: Inf - Inf) has NaN probs and loss */
cnb_status naive_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                    float *loss, int32_t *pred, const float *logits,
                                    const int32_t *labels) {
    CNB_CHECK_CTX(ctx);
    const char *fn = "softmax_ce_forward";
    cnb_status st = cnb_check_softmax_ce_forward(fn, n, classes, probs, loss, logits, labels,
                                                 ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = cpu_check_labels(ctx, fn, n, classes, labels);
    if (st != CNB_OK) return st;

    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *pr = probs + (size_t)i * classes;
        int argmax = cpu_row_argmax(z, classes);
        double zmax = z[argmax];              /* subtracted so exp never overflows */
        double sum = 0.0;
        for (int j = 0; j < classes; j++) sum += exp(z[j] - zmax);
        for (int j = 0; j < classes; j++) pr[j] = (float)(exp(z[j] - zmax) / sum);
        total += log(sum) + zmax - z[labels[i]];
        if (pred) pred[i] = argmax;
    }
    *loss = (float)(total / n);
    return CNB_OK;
}

/* dlogits and probs are (n, classes), labels is (n):
 *   dlogits[i,j] = (probs[i,j] - (j == labels[i])) / n */
cnb_status naive_softmax_ce_backward(cnb_context *ctx, int n, int classes, float *dlogits,
                                     const float *probs, const int32_t *labels) {
    CNB_CHECK_CTX(ctx);
    const char *fn = "softmax_ce_backward";
    cnb_status st = cnb_check_softmax_ce_backward(fn, n, classes, dlogits, probs, labels,
                                                  ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = cpu_check_labels(ctx, fn, n, classes, labels);
    if (st != CNB_OK) return st;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < classes; j++) {
            double onehot = j == labels[i] ? 1.0 : 0.0;
            dlogits[(size_t)i * classes + j] =
                (float)((probs[(size_t)i * classes + j] - onehot) / n);
        }
    }
    return CNB_OK;
}
