/* pool.c — average pooling's backward on oneDNN's pooling primitive in plain nchw (dividing by
 * kh*kw: dnnl_pooling_avg_include_padding), its forward and max pooling on the loops of
 * pool_max.c (faster here than the primitive), each recording its argmax in the workspace (its size is what
 * pool_workspace_size reports, so the harness allocates it once per layer). The fused
 * pool_act_backward folds an activation's backward into either backward pass.
 * NaN follows cnb_abi.h: the max loops take NaN as the maximum (the last NaN of a window gets
 * the gradient; oneDNN 2.6's max primitive would skip NaN); the average primitive is plain IEEE
 * arithmetic. */
#include <string.h>

#include "cnb_abi_check.h"
#include "onednn.h"

enum { P_FWD = 0, P_BWD = 1 };

typedef struct pool_mds {
    dnnl_memory_desc_t src, dst;
    dnnl_dims_t strides, kernel, pad;
    dnnl_alg_kind_t alg;
} pool_mds;

static cnb_status pool_make_mds(cnb_context *ctx, const cnb_pool_desc *d, pool_mds *m) {
    memset(m, 0, sizeof *m);
    dnnl_dims_t sd = {d->n, d->c, d->h, d->w}, dd = {d->n, d->c, d->p, d->q};
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->src, 4, sd, dnnl_f32, dnnl_nchw));
    ODN_TRY(ctx, dnnl_memory_desc_init_by_tag(&m->dst, 4, dd, dnnl_f32, dnnl_nchw));
    m->strides[0] = d->stride_h, m->strides[1] = d->stride_w;
    m->kernel[0] = d->kh, m->kernel[1] = d->kw;
    /* Symmetric padding matches the floor-mode output size, as for convolution. */
    m->pad[0] = d->pad_h, m->pad[1] = d->pad_w;
    m->alg = d->mode == CNB_POOL_MAX ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    return CNB_OK;
}

/* The op for a descriptor, with its forward primitive; the backward one is added on first use
 * (inference never needs it). */
static cnb_status pool_op(cnb_context *ctx, const cnb_pool_desc *d, odn_op **out) {
    cnb_pool_desc key; /* all ints, no padding bytes: the struct's bytes are the key */
    memcpy(&key, d, sizeof key);
    odn_op *op = odn_cache_find(ctx, ODN_POOL, &key, sizeof key);
    if (op) return *out = op, CNB_OK;
    cnb_status st = odn_cache_new(ctx, ODN_POOL, &key, sizeof key, &op);
    if (st != CNB_OK) return st;
    pool_mds m;
    dnnl_pooling_desc_t pd;
    dnnl_status_t s;
    if ((st = pool_make_mds(ctx, d, &m)) != CNB_OK) goto fail;
    s = dnnl_pooling_forward_desc_init(&pd, dnnl_forward_training, m.alg, &m.src, &m.dst,
                                       m.strides, m.kernel, m.pad, m.pad);
    if (s != dnnl_success) {
        st = odn_fail_dnnl(ctx, s, "dnnl_pooling_forward_desc_init");
        goto fail;
    }
    int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
    if ((st = odn_prim_init(ctx, &op->prim[P_FWD], &pd, NULL, ids,
                            d->mode == CNB_POOL_MAX ? 3 : 2)) != CNB_OK)
        goto fail;
    if (d->mode == CNB_POOL_MAX)
        op->workspace_bytes = dnnl_memory_desc_get_size(odn_arg_md(&op->prim[P_FWD],
                                                                   DNNL_ARG_WORKSPACE));
    *out = op;
    return CNB_OK;
fail:
    odn_cache_drop(ctx, op);
    return st;
}

cnb_status odn_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    CNB_CHECK_PTR(ctx, "pool_workspace_size", bytes);
    *bytes = 0;
    cnb_status st = cnb_check_pool_desc("pool_workspace_size", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    if (d->mode == CNB_POOL_MAX) {
        *bytes = odn_maxpool_workspace_bytes(d);
        return CNB_OK;
    }
    odn_enter(ctx);
    odn_op *op;
    if ((st = pool_op(ctx, d, &op)) != CNB_OK) return st;
    *bytes = op->workspace_bytes;
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

/* dx = act'(a) * dx in place, a the activation's output (the pooling's input), over planes of
 * the whole tensor: average pooling's backward is a primitive, so this is a second pass. */
static void act_grad(const cnb_pool_desc *d, int act, float *dx, const float *a) {
    const long count = (long)d->n * d->c * d->h * d->w;
    if (act == CNB_FUSED_ACT_NONE) return;
#pragma omp parallel for simd schedule(static) if (count >= 16384)
    for (long i = 0; i < count; i++) {
        float g = dx[i], v = a[i];
        dx[i] = act == CNB_ACT_RELU ? (v <= 0.0f ? 0.0f : g) /* NaN passes g, as relu backward */
                : act == CNB_ACT_TANH ? g * ((1.0f - v) * (1.0f + v)) : g * (v * (1.0f - v));
    }
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
        if (bad >= 0)
            return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                            "%s: workspace entry %ld is outside the %dx%d plane: it was not "
                            "written by pool_forward with this descriptor",
                            fn, bad, d->h, d->w);
        return CNB_OK;
    }
    odn_op *op;
    if ((st = pool_op(ctx, d, &op)) != CNB_OK) return st;
    if (!op->prim[P_BWD].prim) {
        pool_mds m;
        dnnl_pooling_desc_t pd;
        if ((st = pool_make_mds(ctx, d, &m)) != CNB_OK) return st;
        ODN_TRY(ctx, dnnl_pooling_backward_desc_init(&pd, m.alg, &m.src, &m.dst, m.strides,
                                                     m.kernel, m.pad, m.pad));
        int ids[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC, DNNL_ARG_WORKSPACE};
        st = odn_prim_init(ctx, &op->prim[P_BWD], &pd, op->prim[P_FWD].pd, ids,
                           d->mode == CNB_POOL_MAX ? 3 : 2);
        if (st != CNB_OK) {
            /* Drop the whole op so no half-built one stays; the next call rebuilds it. */
            odn_cache_drop(ctx, op);
            return st;
        }
    }
    void *ptrs[3] = {(void *)dy, dx, (void *)workspace};
    if ((st = odn_exec(ctx, &op->prim[P_BWD], ptrs)) != CNB_OK) return st;
    act_grad(d, act, dx, a);
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
