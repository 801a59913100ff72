/* conv.c — convolution forward, backward-data and backward-filter, the bias pair and corr2d with
 * cuDNN. Each layer shape gets its descriptors once and, per direction, one algorithm chosen on
 * first use by cnb_cudnn_choose: cudnnFind*AlgorithmEx on the call's own buffers with this
 * backend's workspace (capped at SEARCH_WORKSPACE; no cudaMalloc inside cuDNN), with the *_v7
 * heuristics when Find fails or offers nothing acceptable, and the heuristics alone in
 * deterministic mode; filtered by cnb_cudnn_pick: FMA math only unless TF32 is allowed,
 * deterministic only when asked. The choices, and a shape's failure to find any, are cached
 * with the descriptors and reported by info(); a chosen algorithm that fails to run gives way
 * to the next ranked one (cnb_cudnn_run_ranked). The harness runs every batch size once before
 * it times anything (cnb_trainer_create's warm-up), so the searches, counted in info()'s
 * cudnn.searches, happen outside timed regions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_kernels.h"
#include "cuda_plan.h"
#include "cudnn_backend.h"

/* Largest workspace an algorithm may ask for, and the workspace cudnnFind*Ex gets to try them
 * in: faster algorithms wanting more are skipped. */
#define SEARCH_WORKSPACE ((size_t)256 << 20)

typedef struct conv_descs {
    cudnnTensorDescriptor_t x, y, bias;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} conv_descs;

void dnn_release_conv_descs(void *p) {
    conv_descs *d = p;
    if (!d) return;
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->bias) cudnnDestroyTensorDescriptor(d->bias);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
    free(d);
}

#define DNN_TRY(call, what)                                                                  \
    do {                                                                                     \
        cnb_status st_ = dnn_check(ctx, (call), (what));                                     \
        if (st_ != CNB_OK) {                                                                 \
            st = st_;                                                                        \
            goto fail;                                                                       \
        }                                                                                    \
    } while (0)

static cnb_status make_descs(cnb_context *ctx, const cnb_conv_desc *d, const char *fn,
                             conv_descs **out) {
    cnb_cudnn_conv_params p;
    cnb_cudnn_conv_params_from(d, &p);
    conv_descs *cd = calloc(1, sizeof *cd);
    if (!cd) return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    cnb_status st = CNB_ERR_LIBRARY;
    int out_dim[4]; /* n, c, h, w */
    DNN_TRY(cudnnCreateTensorDescriptor(&cd->x), "cudnnCreateTensorDescriptor");
    DNN_TRY(cudnnCreateTensorDescriptor(&cd->y), "cudnnCreateTensorDescriptor");
    DNN_TRY(cudnnCreateTensorDescriptor(&cd->bias), "cudnnCreateTensorDescriptor");
    DNN_TRY(cudnnCreateFilterDescriptor(&cd->w), "cudnnCreateFilterDescriptor");
    DNN_TRY(cudnnCreateConvolutionDescriptor(&cd->conv), "cudnnCreateConvolutionDescriptor");
    DNN_TRY(cudnnSetTensor4dDescriptor(cd->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.x[0], p.x[1],
                                       p.x[2], p.x[3]),
            "cudnnSetTensor4dDescriptor (x)");
    DNN_TRY(cudnnSetTensor4dDescriptor(cd->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.y[0], p.y[1],
                                       p.y[2], p.y[3]),
            "cudnnSetTensor4dDescriptor (y)");
    DNN_TRY(cudnnSetTensor4dDescriptor(cd->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.bias[0],
                                       p.bias[1], p.bias[2], p.bias[3]),
            "cudnnSetTensor4dDescriptor (bias)");
    DNN_TRY(cudnnSetFilter4dDescriptor(cd->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, p.w[0], p.w[1],
                                       p.w[2], p.w[3]),
            "cudnnSetFilter4dDescriptor");
    DNN_TRY(cudnnSetConvolution2dDescriptor(cd->conv, p.pad[0], p.pad[1], p.stride[0],
                                            p.stride[1], p.dilation[0], p.dilation[1],
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            "cudnnSetConvolution2dDescriptor");
    DNN_TRY(cudnnSetConvolutionMathType(cd->conv, ctx->conv_math), "cudnnSetConvolutionMathType");
    /* cuDNN's own idea of the output shape must be the harness's. */
    DNN_TRY(cudnnGetConvolution2dForwardOutputDim(cd->conv, cd->x, cd->w, &out_dim[0],
                                                  &out_dim[1], &out_dim[2], &out_dim[3]),
            "cudnnGetConvolution2dForwardOutputDim");
    st = dnn_check_output_dim(ctx, fn, out_dim, p.y);
    if (st != CNB_OK) goto fail;
    *out = cd;
    return CNB_OK;
fail:
    dnn_release_conv_descs(cd);
    return st;
}

/* The cached entry of shape d (validated), creating its descriptors on first use. */
static cnb_status get_entry(cnb_context *ctx, const cnb_conv_desc *d, const char *fn,
                            cnb_cudnn_conv_entry **out) {
    cnb_status st = cnb_gpu_check_conv(fn, d, ctx->gpu.err, sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    cnb_cudnn_conv_entry *e = cnb_cudnn_cache_find(&ctx->convs, d);
    if (!e) {
        conv_descs *cd = NULL;
        if ((st = make_descs(ctx, d, fn, &cd)) != CNB_OK) return st;
        e = cnb_cudnn_cache_add(&ctx->convs, d);
        if (!e) {
            dnn_release_conv_descs(cd);
            return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        }
        e->descs = cd;
    }
    *out = e;
    return CNB_OK;
}

/* Copies cuDNN's perf results (any of the three structs: same leading fields) into the
 * library-free form the choice rule takes. */
#define TO_PERF(src, n, dst)                                                                 \
    do {                                                                                     \
        for (int i_ = 0; i_ < (n); i_++) {                                                   \
            (dst)[i_].algo = (int)(src)[i_].algo;                                            \
            (dst)[i_].ok = (src)[i_].status == CUDNN_STATUS_SUCCESS;                         \
            (dst)[i_].time_ms = (src)[i_].time;                                              \
            (dst)[i_].memory = (src)[i_].memory;                                             \
            (dst)[i_].deterministic = (src)[i_].determinism == CUDNN_DETERMINISTIC;          \
            (dst)[i_].fma_math = (src)[i_].mathType == CUDNN_FMA_MATH;                       \
            (dst)[i_].math_type = (int)(src)[i_].mathType;                                   \
        }                                                                                    \
    } while (0)

static const char *const dir_fn[3] = {"conv_forward", "conv_backward_data",
                                      "conv_backward_filter"};

/* One query of cnb_cudnn_choose: cudnnFind*Algorithm (heuristic 0) or cudnnGet*Algorithm_v7
 * (heuristic 1) for one direction of one shape. */
typedef struct query_ctx {
    cnb_context *ctx;
    conv_descs *cd;
    int dir;
    /* the call's buffers, which cudnnFind*Ex runs the candidates on (out is overwritten, then
     * written again by the call itself): fwd x, w -> y; bwd data w, dy -> dx; bwd filter x, dy
     * -> dw */
    const void *in0, *in1;
    void *out;
} query_ctx;

/* One direction's query in query_algos: the *_v7 heuristics or cudnnFind*Ex (run on the call's
 * buffers) over descriptors A, B -> OUT, whose perf records become perf. The three directions
 * differ only in the library's names and types. */
#define QUERY_DIRECTION(PERF_T, DIR, A, B, OUT)                                              \
    do {                                                                                     \
        PERF_T r[CNB_CUDNN_MAX_ALGOS];                                                       \
        st = dnn_check(ctx,                                                                  \
                       heuristic ? cudnnGetConvolution##DIR##Algorithm_v7(                   \
                                       ctx->dnn, cd->A, cd->B, cd->conv, cd->OUT, max, &n, r) \
                                 : cudnnFindConvolution##DIR##AlgorithmEx(                   \
                                       ctx->dnn, cd->A, q->in0, cd->B, q->in1, cd->conv,     \
                                       cd->OUT, q->out, max, &n, r, ws, SEARCH_WORKSPACE),   \
                       heuristic ? "cudnnGetConvolution" #DIR "Algorithm_v7"                 \
                                 : "cudnnFindConvolution" #DIR "AlgorithmEx");               \
        if (st == CNB_OK) TO_PERF(r, n, perf);                                               \
    } while (0)

static cnb_status query_algos(void *user, int heuristic, cnb_cudnn_perf *perf, int max,
                              int *count, char *err, size_t err_len) {
    query_ctx *q = user;
    cnb_context *ctx = q->ctx;
    conv_descs *cd = q->cd;
    if (max > CNB_CUDNN_MAX_ALGOS) max = CNB_CUDNN_MAX_ALGOS;
    int n = 0;
    void *ws = NULL;
    cnb_status st = CNB_OK;
    if (!heuristic) {
        st = dnn_workspace(ctx, SEARCH_WORKSPACE, &ws);
        if (st == CNB_OK) ctx->searches++;
    }
    if (st != CNB_OK) {
        /* no room to search in: the heuristics answer instead */
    } else if (q->dir == CNB_CUDNN_FWD) {
        QUERY_DIRECTION(cudnnConvolutionFwdAlgoPerf_t, Forward, x, w, y);
    } else if (q->dir == CNB_CUDNN_BWD_DATA) {
        QUERY_DIRECTION(cudnnConvolutionBwdDataAlgoPerf_t, BackwardData, w, y, x);
    } else {
        QUERY_DIRECTION(cudnnConvolutionBwdFilterAlgoPerf_t, BackwardFilter, x, y, w);
    }
#undef QUERY_DIRECTION
    if (st != CNB_OK) {
        /* dnn_check kept the library's message (and cleared the runtime's last error). */
        snprintf(err, err_len, "%s", ctx->gpu.err);
        *count = 0;
        return st;
    }
    /* direct_conv: the FFT and Winograd entries are not candidates (cnb_abi.h) */
    if (ctx->gpu.opt.direct_conv) cnb_cudnn_keep_sums_only(perf, n, q->dir);
    *count = n;
    return CNB_OK;
}

/* Chooses direction dir's algorithm for e and caches it (cnb_cudnn_choose has the rule):
 *  - deterministic mode skips cudnnFind and takes the first acceptable deterministic entry of
 *    the *_v7 heuristics. cudnnFind ranks by measured time, so run-to-run timing noise could
 *    pick a different deterministic algorithm, and with it different bits, from one run to the
 *    next; the heuristics rank without running anything, so no timing enters their order;
 *  - otherwise cudnnFind, then the heuristics when Find fails or offers nothing acceptable;
 *  - when nothing is acceptable the failure is cached too, so an unsupported shape fails at
 *    once on later calls instead of rerunning cudnnFind. */
static cnb_status choose(cnb_context *ctx, cnb_cudnn_conv_entry *e, int dir, const void *in0,
                         const void *in1, void *out) {
    conv_descs *cd = e->descs;
    /* Search under the context's math (an earlier call may have left its own on the
     * descriptor). */
    cnb_status st = dnn_check(ctx, cudnnSetConvolutionMathType(cd->conv, ctx->conv_math),
                              "cudnnSetConvolutionMathType");
    if (st != CNB_OK) return st;
    char key[96], what[160];
    cnb_cudnn_conv_key_format(&e->key, key, sizeof key);
    snprintf(what, sizeof what, "%s (%s)", dir_fn[dir], key);
    query_ctx q = {.ctx = ctx, .cd = cd, .dir = dir, .in0 = in0, .in1 = in1, .out = out};
    char msg[sizeof ctx->gpu.err];
    st = cnb_cudnn_choose(&e->choice[dir], query_algos, &q, ctx->gpu.opt.deterministic,
                          ctx->gpu.opt.allow_tf32, SEARCH_WORKSPACE, what, msg, sizeof msg);
    if (st != CNB_OK) cnb_gpu_fail(CTX_GPU(ctx), st, "%s", msg);
    return st;
}

/* One convolution call as cnb_cudnn_run_ranked runs it: the buffers, and the call itself with
 * a given algorithm. */
typedef struct conv_call {
    cnb_context *ctx;
    conv_descs *cd;
    int dir;
    const void *in0, *in1; /* fwd x, w; bwd data w, dy; bwd filter x, dy */
    void *out;             /* y, dx, dw */
    const float *bias;     /* forward only, may be NULL */
    int *no_fused_bias;    /* the entry's note that the fused call was refused */
} conv_call;

static const float one = 1.0f, zero = 0.0f;

/* y = conv(x) + bias in one call: identity activation, z = y with alpha2 = 0. */
static cnb_status forward_fused(cnb_context *ctx, conv_descs *cd, const cnb_cudnn_choice *c,
                                void *ws, const conv_call *k) {
    cnb_status st = dnn_check(ctx,
                              cudnnSetActivationDescriptor(ctx->act, CUDNN_ACTIVATION_IDENTITY,
                                                           CUDNN_NOT_PROPAGATE_NAN, 0.0),
                              "cudnnSetActivationDescriptor (identity)");
    if (st != CNB_OK) return st;
    return dnn_check(ctx,
                     cudnnConvolutionBiasActivationForward(
                         ctx->dnn, &one, cd->x, k->in0, cd->w, k->in1, cd->conv,
                         (cudnnConvolutionFwdAlgo_t)c->algo, ws, c->workspace, &zero, cd->y,
                         k->out, cd->bias, k->bias, ctx->act, cd->y, k->out),
                     "cudnnConvolutionBiasActivationForward");
}

static cnb_status run_forward(cnb_context *ctx, conv_descs *cd, const cnb_cudnn_choice *c,
                              void *ws, const conv_call *k) {
    if (cnb_cudnn_fuse_bias(c->algo, k->bias != NULL, *k->no_fused_bias)) {
        cnb_status st = forward_fused(ctx, cd, c, ws, k);
        if (st != CNB_ERR_UNSUPPORTED) return st;
        *k->no_fused_bias = 1; /* this cuDNN refuses the fusion here: add the bias apart */
    }
    cnb_status st = dnn_check(ctx,
                              cudnnConvolutionForward(ctx->dnn, &one, cd->x, k->in0, cd->w,
                                                      k->in1, cd->conv,
                                                      (cudnnConvolutionFwdAlgo_t)c->algo, ws,
                                                      c->workspace, &zero, cd->y, k->out),
                              "cudnnConvolutionForward");
    if (st != CNB_OK || !k->bias) return st;
    return dnn_check(ctx, cudnnAddTensor(ctx->dnn, &one, cd->bias, k->bias, &one, cd->y, k->out),
                     "cudnnAddTensor (bias)");
}

/* cnb_cudnn_run_fn: the call with c's algorithm, under the math its result reported (always
 * CUDNN_FMA_MATH in strict fp32, where nothing else is accepted) and with its workspace. */
static cnb_status run_call(void *user, const cnb_cudnn_choice *c, char *err, size_t err_len) {
    const conv_call *k = user;
    cnb_context *ctx = k->ctx;
    conv_descs *cd = k->cd;
    void *ws = NULL;
    cnb_status st = dnn_check(ctx, cudnnSetConvolutionMathType(cd->conv,
                                                               (cudnnMathType_t)c->math_type),
                              "cudnnSetConvolutionMathType");
    if (st == CNB_OK) st = dnn_workspace(ctx, c->workspace, &ws);
    if (st == CNB_OK) {
        if (k->dir == CNB_CUDNN_FWD)
            st = run_forward(ctx, cd, c, ws, k);
        else if (k->dir == CNB_CUDNN_BWD_DATA)
            st = dnn_check(ctx,
                           cudnnConvolutionBackwardData(
                               ctx->dnn, &one, cd->w, k->in0, cd->y, k->in1, cd->conv,
                               (cudnnConvolutionBwdDataAlgo_t)c->algo, ws, c->workspace, &zero,
                               cd->x, k->out),
                           "cudnnConvolutionBackwardData");
        else
            st = dnn_check(ctx,
                           cudnnConvolutionBackwardFilter(
                               ctx->dnn, &one, cd->x, k->in0, cd->y, k->in1, cd->conv,
                               (cudnnConvolutionBwdFilterAlgo_t)c->algo, ws, c->workspace,
                               &zero, cd->w, k->out),
                           "cudnnConvolutionBackwardFilter");
    }
    if (st != CNB_OK) snprintf(err, err_len, "%s", ctx->gpu.err);
    return st;
}

/* One call in direction dir on shape d: the entry, its algorithm (chosen on first use), the
 * call, and the next ranked algorithm when the chosen one fails to run. */
static cnb_status conv_run(cnb_context *ctx, const cnb_conv_desc *d, int dir, const void *in0,
                           const void *in1, void *out, const float *bias) {
    cnb_cudnn_conv_entry *e = NULL;
    cnb_status st = get_entry(ctx, d, dir_fn[dir], &e);
    if (st != CNB_OK) return st;
    cnb_cudnn_choice *c = &e->choice[dir];
    if (c->failed) { /* cached: this shape has no acceptable algorithm */
        cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_UNSUPPORTED, "%s", c->failure);
        return CNB_ERR_UNSUPPORTED;
    }
    if (c->algo < 0 && (st = choose(ctx, e, dir, in0, in1, out)) != CNB_OK) return st;
    conv_call k = {.ctx = ctx, .cd = e->descs, .dir = dir, .in0 = in0, .in1 = in1, .out = out,
                   .bias = bias, .no_fused_bias = &c->no_fused_bias};
    char key[96], what[160], msg[sizeof ctx->gpu.err];
    cnb_cudnn_conv_key_format(&e->key, key, sizeof key);
    snprintf(what, sizeof what, "%s (%s)", dir_fn[dir], key);
    st = cnb_cudnn_run_ranked(c, dir, run_call, &k, what, msg, sizeof msg);
    if (st != CNB_OK) cnb_gpu_fail(CTX_GPU(ctx), st, "%s", msg);
    return st;
}

cnb_status dnn_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y, const float *x,
                            const float *weight, const float *bias) {
    GPU_CHECK_PTR3(CTX_GPU(ctx), "conv_forward", y, x, weight);
    return conv_run(ctx, d, CNB_CUDNN_FWD, x, weight, y, bias);
}

cnb_status dnn_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                  const float *dy, const float *weight) {
    GPU_CHECK_PTR3(CTX_GPU(ctx), "conv_backward_data", dx, dy, weight);
    return conv_run(ctx, d, CNB_CUDNN_BWD_DATA, weight, dy, dx, NULL);
}

cnb_status dnn_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                    const float *dy, const float *x) {
    GPU_CHECK_PTR3(CTX_GPU(ctx), "conv_backward_filter", dweight, dy, x);
    return conv_run(ctx, d, CNB_CUDNN_BWD_FILTER, x, dy, dweight, NULL);
}

/* The checks and descriptors of both bias passes: the shape, the two tensors (named for the
 * message), t_a the (n, c, hw) data and t_b the (c) bias. */
static cnb_status bias_prepare(cnb_context *ctx, const char *fn, int n, int c, int hw,
                               const void *p0, const char *name0, const void *p1,
                               const char *name1) {
    cnb_status st = cnb_gpu_check_nchw(fn, n, c, hw, ctx->gpu.err, sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    if (!p0 || !p1)
        return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                            p0 ? name1 : name0);
    if ((st = dnn_set_tensor(ctx, ctx->t_a, n, c, hw, 1, fn)) != CNB_OK) return st;
    return dnn_set_tensor(ctx, ctx->t_b, 1, c, 1, 1, fn);
}

cnb_status dnn_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c, int hw) {
    cnb_status st = bias_prepare(ctx, "bias_forward", n, c, hw, y, "y", bias, "bias");
    if (st != CNB_OK) return st;
    return dnn_check(ctx, cudnnAddTensor(ctx->dnn, &one, ctx->t_b, bias, &one, ctx->t_a, y),
                     "cudnnAddTensor");
}

cnb_status dnn_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                             int hw) {
    /* cuDNN does not document this reduction's order; the deterministic option uses the cuda
     * backend's fixed-order kernel instead. */
    if (ctx->gpu.opt.deterministic) return cnb_gpu_bias_backward(CTX_GPU(ctx), dbias, dy, n, c, hw);
    cnb_status st = bias_prepare(ctx, "bias_backward", n, c, hw, dbias, "dbias", dy, "dy");
    if (st != CNB_OK) return st;
    return dnn_check(ctx,
                     cudnnConvolutionBackwardBias(ctx->dnn, &one, ctx->t_a, dy, &zero, ctx->t_b,
                                                  dbias),
                     "cudnnConvolutionBackwardBias");
}

/* corr2d is a convolution with one image, one channel and one filter. */
cnb_status dnn_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h, int w,
                      int kh, int kw) {
    cnb_status st = cnb_gpu_check_corr2d(h, w, kh, kw, ctx->gpu.err, sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    cnb_conv_desc d = {.n = 1, .c = 1, .h = h, .w = w, .k = 1, .r = kh, .s = kw, .stride_h = 1,
                       .stride_w = 1, .pad_h = 0, .pad_w = 0, .p = h - kh + 1, .q = w - kw + 1};
    return dnn_conv_forward(ctx, &d, y, x, k, NULL);
}

void dnn_info_convs(cnb_context *ctx, cnb_info_fn fn, void *user) {
    static const char *const dir_word[3] = {"fwd", "bwd_data", "bwd_filter"};
    for (int i = 0; i < ctx->convs.count; i++) {
        const cnb_cudnn_conv_entry *e = &ctx->convs.entries[i];
        char key[160], shape[96], value[600], part[180];
        cnb_cudnn_conv_key_format(&e->key, shape, sizeof shape);
        snprintf(key, sizeof key, "cudnn.conv[%s]", shape);
        value[0] = '\0';
        for (int dir = 0; dir < 3; dir++) {
            cnb_cudnn_choice_format(dir, &e->choice[dir], part, sizeof part);
            size_t used = strlen(value);
            snprintf(value + used, sizeof value - used, "%s%s=%s", dir ? "; " : "", dir_word[dir],
                     part);
        }
        fn(user, key, value);
        /* the generic key of cnb_abi.h's info() rule: directions whose results are not sums of
         * products (checks relax exact-integer equality and the fp32 tolerance for them) */
        char dirs[40] = "";
        for (int dir = 0; dir < 3; dir++)
            if (e->choice[dir].algo >= 0 && !cnb_cudnn_algo_sums_products(dir, e->choice[dir].algo))
                snprintf(dirs + strlen(dirs), sizeof dirs - strlen(dirs), "%s%s",
                         dirs[0] ? " " : "", dir_word[dir]);
        if (dirs[0]) {
            snprintf(key, sizeof key, "conv.transforms[%s]", shape);
            fn(user, key, dirs);
        }
    }
}
