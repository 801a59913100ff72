/* pool.c — max and average pooling, forward and backward, on the plane loops of pool_max.c
 * (cpu_common's, split over oneDNN's OpenMP team) instead of oneDNN 2.6's pooling primitive,
 * which is slower here on plain nchw (pool_max.c has the figures). Max pooling records its argmax
 * in the workspace (its size is what pool_workspace_size reports, so the harness allocates it
 * once per layer); average pooling needs none. The fused pool_act_backward folds an activation's
 * backward into either backward pass, plane by plane while the plane is in L1.
 * NaN follows cnb_abi.h: the max loops take NaN as the maximum (the last NaN of a window gets
 * the gradient; oneDNN 2.6's max primitive would skip NaN); average pooling is plain IEEE
 * arithmetic. */
#include "cnb_abi_check.h"
#include "onednn.h"

cnb_status odn_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    CNB_CHECK_PTR(ctx, "pool_workspace_size", bytes);
    *bytes = 0;
    cnb_status st = cnb_check_pool_desc("pool_workspace_size", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    *bytes = d->mode == CNB_POOL_MAX ? odn_maxpool_workspace_bytes(d) : 0;
    return CNB_OK;
}

cnb_status odn_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                            void *workspace) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_pool_desc("pool_forward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "pool_forward", y);
    CNB_CHECK_PTR(ctx, "pool_forward", x);
    odn_enter(ctx);
    if (d->mode == CNB_POOL_MAX) {
        if (!workspace)
            return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                            "pool_forward: max pooling needs the %zu-byte workspace "
                            "pool_workspace_size reports, got NULL",
                            odn_maxpool_workspace_bytes(d));
        odn_maxpool_forward(d, y, x, workspace);
        return CNB_OK;
    }
    odn_avgpool_forward(d, y, x);
    return CNB_OK;
}

cnb_status odn_bad_workspace(cnb_context *ctx, const char *fn, const cnb_pool_desc *d, long bad) {
    return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                    "%s: workspace entry %ld is outside the %dx%d plane: it was not written by "
                    "pool_forward with this descriptor",
                    fn, bad, d->h, d->w);
}

/* pool_backward with an optional activation folded in (act, a); x and y are not read. */
static cnb_status pool_backward(cnb_context *ctx, const char *fn, const cnb_pool_desc *d, int act,
                                float *dx, const float *dy, const float *a,
                                const void *workspace) {
    cnb_status st = cnb_check_pool_desc(fn, d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, fn, dx);
    CNB_CHECK_PTR(ctx, fn, dy);
    if (act != CNB_FUSED_ACT_NONE) CNB_CHECK_PTR(ctx, fn, a);
    odn_enter(ctx);
    if (d->mode == CNB_POOL_MAX) {
        if (!workspace)
            return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                            "%s: max pooling needs the forward's workspace, got NULL", fn);
        long bad = odn_maxpool_backward(d, act, dx, dy, a, workspace);
        return bad >= 0 ? odn_bad_workspace(ctx, fn, d, bad) : CNB_OK;
    }
    odn_avgpool_backward(d, act, dx, dy, a);
    return CNB_OK;
}

cnb_status odn_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx, const float *dy,
                             const float *x, const float *y, const void *workspace) {
    (void)y;
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    return pool_backward(ctx, "pool_backward", d, CNB_FUSED_ACT_NONE, dx, dy, x, workspace);
}

/* dx = act'(x) * pool_backward(dy), x being the activation's output. */
cnb_status odn_pool_act_backward(cnb_context *ctx, const cnb_pool_desc *d, int act, float *dx,
                                 const float *dy, const float *x, const float *y,
                                 const void *workspace) {
    (void)y;
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_fused_act("pool_act_backward", act, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    return pool_backward(ctx, "pool_act_backward", d, act, dx, dy, x, workspace);
}
