/* pool.c — max and average pooling, forward and backward, split by plane over the backend's
 * team. Max pooling runs the plane loops the CPU backends share (cpu_common's pool_planes.c:
 * each window's argmax in the workspace, so its backward is a scatter that never looks at x
 * again), and average pooling's plane loops from the same file. The 2x2 stride-2 unpadded
 * window of every model here has its own loop; other shapes take the general one. Average
 * pooling divides by kh*kw, padding included (PyTorch's count_include_pad=True). */
#include "blas_backend.h"
#include "cnb_abi_check.h"

/* The ABI's shape rules (cnb_abi_check.h), then this backend's limit: x and y indexable with an
 * int. */
static cnb_status check_pool_desc(cnb_context *ctx, const char *fn, const cnb_pool_desc *d) {
    cnb_status st = cnb_check_pool_desc(fn, d, ctx->err, sizeof ctx->err);
    if (st == CNB_OK && !cnb_check_pool_fits_int(fn, d, ctx->err, sizeof ctx->err))
        st = CNB_ERR_INVALID_ARGUMENT;
    return st;
}

cnb_status blas_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_pool_desc(ctx, "pool_workspace_size", d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "pool_workspace_size", bytes);
    /* Max: one int32 argmax per output. Avg needs nothing. */
    *bytes = d->mode == CNB_POOL_MAX ? (size_t)d->n * d->c * d->p * d->q * sizeof(int32_t) : 0;
    return CNB_OK;
}

/* ---- split by plane across the context's threads ----------------------------------------- */

typedef struct {
    const cnb_pool_desc *d;
    int max;
    int act;                  /* backward: the activation folded in, or CNB_FUSED_ACT_NONE */
    float *y;                 /* forward */
    const float *x;           /* forward: the input; fused backward: the activation's output */
    int32_t *arg;
    float *dx;                /* backward */
    const float *dy;
    const int32_t *carg;
    size_t bad_at[BLAS_MAX_THREADS]; /* backward: a thread's first out-of-plane argmax entry */
    int32_t bad_value[BLAS_MAX_THREADS];
} pool_job;

/* Planes per thread at least: enough input floats that a part outweighs waking a thread. */
static size_t plane_grain(const cnb_pool_desc *d) {
    const size_t in = (size_t)d->h * d->w;
    return in >= 8192 ? 1 : 8192 / in;
}

static void forward_range(void *p, int thread, size_t lo, size_t hi) {
    (void)thread;
    const pool_job *j = p;
    const cnb_pool_desc *d = j->d;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    for (size_t pl = lo; pl < hi; pl++) {
        const float *xp = j->x + pl * in;
        float *yp = j->y + pl * out;
        if (j->max) cpu_maxpool_plane(d, yp, j->arg + pl * out, xp);
        else cpu_avgpool_plane(d, yp, xp);
    }
}

/* Work goes plane by plane so the zeroing, the scatter and a folded activation's backward meet
 * in L1. */
static void backward_range(void *p, int thread, size_t lo, size_t hi) {
    pool_job *j = p;
    const cnb_pool_desc *d = j->d;
    const size_t in = (size_t)d->h * d->w, out = (size_t)d->p * d->q;
    for (size_t pl = lo; pl < hi; pl++) {
        float *restrict dxp = j->dx + pl * in;
        const float *restrict dyp = j->dy + pl * out;
        const float *a = j->x ? j->x + pl * in : NULL;
        if (j->max) {
            const int32_t *ap = j->carg + pl * out;
            long o = cpu_maxpool_backward_plane(d, j->act, dxp, dyp, ap, a);
            if (o >= 0) {
                j->bad_at[thread] = pl * out + (size_t)o;
                j->bad_value[thread] = ap[o];
                return;
            }
            continue;
        }
        cpu_avgpool_backward_plane(d, dxp, dyp);
        cpu_act_grad_plane(dxp, a, in, j->act);
    }
}

/* y is (n,c,p,q), x is (n,c,h,w); max pooling writes its argmax (n,c,p,q int32) to workspace. */
cnb_status blas_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                             void *workspace) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_pool_desc(ctx, "pool_forward", d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, "pool_forward", y);
    CNB_CHECK_PTR(ctx, "pool_forward", x);
    const int max = d->mode == CNB_POOL_MAX;
    if (max && !workspace)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "pool_forward: max pooling needs the workspace (pool_workspace_size "
                        "bytes) for its argmax, got NULL");
    pool_job j = {.d = d, .y = y, .x = x, .arg = workspace, .max = max};
    const size_t planes = (size_t)d->n * d->c;
    blas_parallel(ctx, planes, blas_team_parts(ctx, planes, plane_grain(d)), forward_range, &j);
    return CNB_OK;
}

/* dx is (n,c,h,w), dy is (n,c,p,q); dx is overwritten. Max: each dy goes to the argmax the
 * forward recorded (x and y are not needed). Avg: each dy is spread as dy/(kh*kw) over the real
 * cells of its window. Overlapping windows (stride < window) add up. */
static cnb_status pool_backward(cnb_context *ctx, const char *fn, const cnb_pool_desc *d,
                                int act, float *dx, const float *dy, const float *x,
                                const void *workspace) {
    CNB_CHECK_CTX(ctx);
    cnb_status st = check_pool_desc(ctx, fn, d);
    if (st != CNB_OK) return st;
    CNB_CHECK_PTR(ctx, fn, dx);
    CNB_CHECK_PTR(ctx, fn, dy);
    if (act != CNB_FUSED_ACT_NONE) CNB_CHECK_PTR(ctx, fn, x);
    const int max = d->mode == CNB_POOL_MAX;
    if (max && !workspace)
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "%s: max pooling needs the forward's workspace (its argmax), got NULL",
                        fn);
    pool_job j = {.d = d, .dx = dx, .dy = dy, .x = x, .carg = workspace, .max = max, .act = act};
    const size_t planes = (size_t)d->n * d->c;
    const int parts = blas_team_parts(ctx, planes, plane_grain(d));
    for (int t = 0; t < parts; t++) j.bad_at[t] = SIZE_MAX;
    blas_parallel(ctx, planes, parts, backward_range, &j);
    for (int t = 0; t < parts; t++) {
        if (j.bad_at[t] == SIZE_MAX) continue;
        /* An index outside the plane means the workspace is not this forward's. */
        return cpu_fail(ctx, CNB_ERR_INVALID_ARGUMENT,
                        "%s: workspace entry %zu is %d, outside the %dx%d plane: it "
                        "was not written by pool_forward with this descriptor",
                        fn, j.bad_at[t], (int)j.bad_value[t], d->h, d->w);
    }
    return CNB_OK;
}

cnb_status blas_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                              const float *dy, const float *x, const float *y,
                              const void *workspace) {
    (void)y;
    return pool_backward(ctx, "pool_backward", d, CNB_FUSED_ACT_NONE, dx, dy, x, workspace);
}

/* pool_backward, then each plane's dx times act'(x) while it is in L1: x is the pooling's input,
 * the activation's output. */
cnb_status blas_pool_act_backward(cnb_context *ctx, const cnb_pool_desc *d, int act, float *dx,
                                  const float *dy, const float *x, const float *y,
                                  const void *workspace) {
    (void)y;
    CNB_CHECK_CTX(ctx);
    cnb_status st = cnb_check_fused_act("pool_act_backward", act, ctx->err, sizeof ctx->err);
    if (st != CNB_OK) return st;
    return pool_backward(ctx, "pool_act_backward", d, act, dx, dy, x, workspace);
}
