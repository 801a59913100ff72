/* pool.c — max and average pooling, forward and backward, on oneDNN pooling primitives in plain
 * nchw. Max pooling records its argmax in the workspace oneDNN asks for (its size is what
 * pool_workspace_size reports, so the harness allocates it once per layer) and the backward
 * scatters through it; average pooling divides by kh*kw (dnnl_pooling_avg_include_padding).
 *
 * NaN: oneDNN 2.6's max pooling skips NaN (a window holding one yields its largest number),
 * where PyTorch and cnb_abi.h's rule yield NaN and send the gradient to the window's last NaN.
 * So the forward first scans x for NaN (one streaming pass, a few percent of the pooling time);
 * only when it finds one do the windows run here as plain loops, and a flag stored after
 * oneDNN's own workspace bytes tells the backward to follow the same way. */
#include <string.h>

#include <omp.h>

#include "cnb_abi_check.h"
#include "onednn.h"

#define NAN_FLAG_BYTES 64 /* after oneDNN's workspace: 1 when the forward took the NaN path */

/* Each thread scans a contiguous range (see relu_forward_loop on `parallel for simd`). */
static int has_nan(const cnb_context *ctx, const float *x, size_t count) {
    int teams = count >= 65536 ? ctx->threads : 1, found = 0;
#pragma omp parallel num_threads(teams) if (teams > 1) reduction(| : found)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t i0 = count * t / nt, i1 = count * (t + 1) / nt;
#pragma omp simd reduction(| : found)
        for (size_t i = i0; i < i1; i++) found |= x[i] != x[i];
    }
    return found;
}

/* The window maximum at (oh, ow) of one (h, w) plane, padding skipped: a value wins when it is
 * greater or NaN, so number ties keep the first and NaN the last (the naive backend's rule). */
static size_t window_argmax(const cnb_pool_desc *d, const float *plane, int oh, int ow) {
    size_t best = 0;
    int found = 0;
    for (int i = 0; i < d->kh; i++) {
        int ih = oh * d->stride_h - d->pad_h + i;
        if (ih < 0 || ih >= d->h) continue;
        for (int j = 0; j < d->kw; j++) {
            int iw = ow * d->stride_w - d->pad_w + j;
            if (iw < 0 || iw >= d->w) continue;
            size_t e = (size_t)ih * d->w + iw;
            if (!found || plane[e] > plane[best] || plane[e] != plane[e]) best = e;
            found = 1;
        }
    }
    return best;
}

/* Max pooling with NaN in x: forward (dx == NULL: y = x at each argmax) or backward (dx zeroed,
 * then each dy added at its window's argmax), planes split across threads. */
static void max_pool_nan(const cnb_context *ctx, const cnb_pool_desc *d, float *y, float *dx,
                         const float *dy, const float *x) {
    const size_t planes = (size_t)d->n * d->c, in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    int teams = planes * in >= 65536 ? ctx->threads : 1;
#pragma omp parallel for num_threads(teams) if (teams > 1) schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * in;
        if (dx) memset(dx + pl * in, 0, in * sizeof(float));
        for (int oh = 0; oh < d->p; oh++)
            for (int ow = 0; ow < d->q; ow++) {
                size_t at = window_argmax(d, xp, oh, ow), o = pl * out + (size_t)oh * d->q + ow;
                if (dx) dx[pl * in + at] += dy[o];
                else y[o] = xp[at];
            }
    }
}

static void set_nan_flag(void *workspace, size_t at, int v) {
    memcpy((char *)workspace + at, &v, sizeof v);
}

static int nan_flag(const void *workspace, size_t at) {
    int v;
    memcpy(&v, (const char *)workspace + at, sizeof v);
    return v;
}

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
    ODN_CHECK_PTR(ctx, "pool_workspace_size", bytes);
    *bytes = 0;
    cnb_status st = cnb_check_pool_desc("pool_workspace_size", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    odn_enter(ctx);
    odn_op *op;
    if ((st = pool_op(ctx, d, &op)) != CNB_OK) return st;
    *bytes = op->workspace_bytes ? op->workspace_bytes + NAN_FLAG_BYTES : 0;
    return CNB_OK;
}

cnb_status odn_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                            void *workspace) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_pool_desc("pool_forward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    ODN_CHECK_PTR(ctx, "pool_forward", y);
    ODN_CHECK_PTR(ctx, "pool_forward", x);
    odn_enter(ctx);
    odn_op *op;
    if ((st = pool_op(ctx, d, &op)) != CNB_OK) return st;
    if (op->workspace_bytes && !workspace)
        return odn_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "pool_forward: max pooling needs the %zu-byte workspace "
                        "pool_workspace_size reports, got NULL",
                        op->workspace_bytes);
    if (op->workspace_bytes) { /* max pooling */
        int nan_path = has_nan(ctx, x, (size_t)d->n * d->c * d->h * d->w);
        set_nan_flag(workspace, op->workspace_bytes, nan_path);
        if (nan_path) {
            max_pool_nan(ctx, d, y, NULL, NULL, x);
            return CNB_OK;
        }
    }
    void *ptrs[3] = {(void *)x, y, workspace};
    return odn_exec(ctx, &op->prim[P_FWD], ptrs);
}

cnb_status odn_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx, const float *dy,
                             const float *x, const float *y, const void *workspace) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    cnb_status st = cnb_check_pool_desc("pool_backward", d, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    ODN_CHECK_PTR(ctx, "pool_backward", dx);
    ODN_CHECK_PTR(ctx, "pool_backward", dy);
    /* y is not read: the workspace the forward wrote already holds each argmax, or says that
     * NaN took the forward to the loops here, which find it again from x. */
    (void)y;
    odn_enter(ctx);
    odn_op *op;
    if ((st = pool_op(ctx, d, &op)) != CNB_OK) return st;
    if (op->workspace_bytes && !workspace)
        return odn_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "pool_backward: max pooling needs the forward's workspace, got NULL");
    if (op->workspace_bytes && nan_flag(workspace, op->workspace_bytes)) {
        ODN_CHECK_PTR(ctx, "pool_backward", x);
        max_pool_nan(ctx, d, NULL, dx, dy, x);
        return CNB_OK;
    }
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
    return odn_exec(ctx, &op->prim[P_BWD], ptrs);
}
