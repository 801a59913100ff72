/* softmax_ce.c — softmax + cross-entropy. probs come from oneDNN's softmax_v2 primitive
 * (accurate algorithm) over the class axis of logits (n, classes). The loss is
 * mean_i (logsumexp(z_i) - z_i,label) in double from the logits, the stable form, never
 * -log(p) of a rounded probability. oneDNN's log-softmax (softmax_log) was tried for it and
 * dropped: its jit log is off by ~1.4e-6 absolute (log-softmax of a single class gives
 * -1.43e-6, not 0), which is 7e-5 relative at a trained model's loss of 0.02 — far outside the
 * 1e-5 agreement. n*classes exps in double are a few microseconds. The backward is one loop. */
#include <math.h>
#include <string.h>

#include "onednn.h"

enum { P_SOFTMAX = 0 };

/* cpu_check_labels with this backend's wording, which its users and tests know. */
static cnb_status labels_check(cnb_context *ctx, const char *fn, int n, int classes,
                               const int32_t *labels) {
    int i = cpu_find_bad_label(n, classes, labels);
    if (i < 0) return CNB_OK;
    return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT, "%s: label %d of row %d is outside [0, %d)", fn,
                    (int)labels[i], i, classes);
}

static cnb_status softmax_op(cnb_context *ctx, int n, int classes, odn_op **out) {
    int key[2] = {n, classes};
    odn_op *op = odn_cache_find(ctx, ODN_SOFTMAX_CE, key, sizeof key);
    if (op) return *out = op, CNB_OK;
    cnb_status st = odn_cache_new(ctx, ODN_SOFTMAX_CE, key, sizeof key, &op);
    if (st != CNB_OK) return st;
    dnnl_memory_desc_t md;
    dnnl_softmax_v2_desc_t sd;
    dnnl_dims_t dims = {n, classes};
    dnnl_status_t s;
    const char *what = "dnnl_memory_desc_init_by_tag";
    int ids[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    if ((s = dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab)) != dnnl_success)
        goto dnnl_fail;
    what = "dnnl_softmax_v2_forward_desc_init";
    if ((s = dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate,
                                               &md, &md, 1)) != dnnl_success)
        goto dnnl_fail;
    if ((st = odn_prim_init(ctx, &op->prim[P_SOFTMAX], &sd, NULL, ids, 2)) != CNB_OK) goto fail;
    *out = op;
    return CNB_OK;
dnnl_fail:
    st = odn_fail_dnnl(ctx, s, what);
fail:
    odn_cache_drop(ctx, op);
    return st;
}

cnb_status odn_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs, float *loss,
                                  int32_t *pred, const float *logits, const int32_t *labels) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    const char *fn = "softmax_ce_forward";
    cnb_status st = cnb_check_softmax_ce_forward(fn, n, classes, probs, loss, logits, labels,
                                                 ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = labels_check(ctx, fn, n, classes, labels);
    if (st != CNB_OK) return st;
    odn_enter(ctx);
    odn_op *op;
    if ((st = softmax_op(ctx, n, classes, &op)) != CNB_OK) return st;
    void *sp[2] = {(void *)logits, probs};
    if ((st = odn_exec(ctx, &op->prim[P_SOFTMAX], sp)) != CNB_OK) return st;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * classes;
        /* The first maximum is also pred: argmax of the logits themselves, so no rounding in
         * exp can create a tie the logits do not have. */
        int best = cpu_row_argmax(row, classes);
        /* A row holding NaN or +Inf has NaN probabilities (Inf - Inf in exp(z - max), as in
         * PyTorch and cnb_abi.h's rule); oneDNN's softmax writes numbers there. */
        if (isnan(row[best]) || row[best] == INFINITY)
            for (int j = 0; j < classes; j++) probs[(size_t)i * classes + j] = NAN;
        double mx = row[best], se = 0.0;
        for (int j = 0; j < classes; j++) se += exp((double)row[j] - mx);
        sum += log(se) + mx - row[labels[i]];
        if (pred) pred[i] = best;
    }
    *loss = (float)(sum / n);
    return CNB_OK;
}

cnb_status odn_softmax_ce_backward(cnb_context *ctx, int n, int classes, float *dlogits,
                                   const float *probs, const int32_t *labels) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    const char *fn = "softmax_ce_backward";
    cnb_status st = cnb_check_softmax_ce_backward(fn, n, classes, dlogits, probs, labels,
                                                  ctx->err, sizeof ctx->err);
    if (st == CNB_OK) st = labels_check(ctx, fn, n, classes, labels);
    if (st != CNB_OK) return st;
    /* d(mean loss)/d logits = (probs - onehot(labels)) / n; a few hundred values, one thread. */
    const float n_f = (float)n;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * classes;
        float *g = dlogits + (size_t)i * classes;
        for (int j = 0; j < classes; j++) g[j] = p[j] / n_f;
        g[labels[i]] = (p[labels[i]] - 1.0f) / n_f;
    }
    return CNB_OK;
}
