/* ops.c — average pooling, activations and softmax with cuDNN, GEMM with cuBLAS, and the
 * cross-entropy loss on top of cuDNN's log-softmax. PReLU, which cuDNN lacks, and max pooling,
 * whose tie rule cuDNN does not document, go to the cuda backend's kernels (gpu_ops.c). */
#include <stdlib.h>
#include <string.h>

#include "cuda_kernels.h"
#include "cuda_plan.h"
#include "cudnn_backend.h"

static const float one = 1.0f, zero = 0.0f;

/* ---- pooling ---- */

static int pool_key_equal(const cnb_pool_desc *a, const cnb_pool_desc *b) {
    return a->mode == b->mode && a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w &&
           a->kh == b->kh && a->kw == b->kw && a->stride_h == b->stride_h &&
           a->stride_w == b->stride_w && a->pad_h == b->pad_h && a->pad_w == b->pad_w &&
           a->p == b->p && a->q == b->q;
}

static void release_pool(pool_entry *e) {
    if (e->pool) cudnnDestroyPoolingDescriptor(e->pool);
    if (e->x) cudnnDestroyTensorDescriptor(e->x);
    if (e->y) cudnnDestroyTensorDescriptor(e->y);
    memset(e, 0, sizeof *e);
}

void dnn_release_pools(cnb_context *ctx) {
    for (int i = 0; i < ctx->pool_count; i++) release_pool(&ctx->pools[i]);
    free(ctx->pools);
    ctx->pools = NULL;
    ctx->pool_count = ctx->pool_cap = 0;
}

#define POOL_TRY(call, what)                                                                 \
    do {                                                                                     \
        if ((st = dnn_check(ctx, (call), (what))) != CNB_OK) goto fail;                      \
    } while (0)

/* The cached descriptors of average pooling shape d (validated), made on first use. */
static cnb_status get_pool(cnb_context *ctx, const cnb_pool_desc *d, const char *fn,
                           pool_entry **out) {
    cnb_status st = cnb_gpu_check_pool(fn, d, ctx->gpu.err, sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    for (int i = 0; i < ctx->pool_count; i++)
        if (pool_key_equal(&ctx->pools[i].key, d)) {
            *out = &ctx->pools[i];
            return CNB_OK;
        }
    if (ctx->pool_count == ctx->pool_cap) {
        int cap = ctx->pool_cap ? 2 * ctx->pool_cap : 8;
        pool_entry *p = realloc(ctx->pools, (size_t)cap * sizeof *p);
        if (!p) return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        ctx->pools = p;
        ctx->pool_cap = cap;
    }
    pool_entry e = {.key = *d};
    cnb_cudnn_pool_params p;
    cnb_cudnn_pool_params_from(d, &p);
    /* The ABI's average divides by kh*kw, padding included (count_include_pad). */
    const cudnnPoolingMode_t mode = CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
    int out_dim[4]; /* n, c, h, w */
    POOL_TRY(cudnnCreatePoolingDescriptor(&e.pool), "cudnnCreatePoolingDescriptor");
    POOL_TRY(cudnnCreateTensorDescriptor(&e.x), "cudnnCreateTensorDescriptor");
    POOL_TRY(cudnnCreateTensorDescriptor(&e.y), "cudnnCreateTensorDescriptor");
    POOL_TRY(cudnnSetPooling2dDescriptor(e.pool, mode, CUDNN_PROPAGATE_NAN, p.window[0],
                                         p.window[1], p.pad[0], p.pad[1], p.stride[0],
                                         p.stride[1]),
             "cudnnSetPooling2dDescriptor");
    POOL_TRY(cudnnSetTensor4dDescriptor(e.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.x[0], p.x[1],
                                        p.x[2], p.x[3]),
             "cudnnSetTensor4dDescriptor (x)");
    POOL_TRY(cudnnSetTensor4dDescriptor(e.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.y[0], p.y[1],
                                        p.y[2], p.y[3]),
             "cudnnSetTensor4dDescriptor (y)");
    POOL_TRY(cudnnGetPooling2dForwardOutputDim(e.pool, e.x, &out_dim[0], &out_dim[1],
                                               &out_dim[2], &out_dim[3]),
             "cudnnGetPooling2dForwardOutputDim");
    st = dnn_check_output_dim(ctx, fn, out_dim, p.y);
    if (st != CNB_OK) goto fail;
    ctx->pools[ctx->pool_count] = e;
    *out = &ctx->pools[ctx->pool_count++];
    return CNB_OK;
fail:
    release_pool(&e);
    return st;
}

/* Max pooling does not go to cuDNN. The ABI (cnb_abi.h, CNB_POOL_MAX) fixes the tie rule "the
 * first maximum in row-major window order wins"; cuDNN documents no tie rule, and its backward
 * rebuilds the argmax from x and y, so a tie may route the gradient elsewhere. The cuda backend's
 * kernels record the first maximum in the argmax workspace during the forward and read it back
 * in the backward, as backends/cuda does (and PyTorch's CUDA max_pool2d, which uses its own
 * kernels with indices rather than cuDNN). Average pooling, which has no ties, stays on cuDNN.
 * The workspace query comes from the same code as the kernels: n*c*p*q int32 indices for max,
 * 0 for average. */
cnb_status dnn_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes) {
    return cnb_gpu_pool_workspace_size(CTX_GPU(ctx), d, bytes);
}

cnb_status dnn_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                            void *workspace) {
    if (d && !cnb_cudnn_pool_uses_cudnn(d->mode))
        return cnb_gpu_pool_forward(CTX_GPU(ctx), d, y, x, workspace);
    pool_entry *e;
    cnb_status st = get_pool(ctx, d, "pool_forward", &e);
    if (st != CNB_OK) return st;
    GPU_CHECK_PTR(CTX_GPU(ctx), "pool_forward", y);
    GPU_CHECK_PTR(CTX_GPU(ctx), "pool_forward", x);
    return dnn_check(ctx, cudnnPoolingForward(ctx->dnn, e->pool, &one, e->x, x, &zero, e->y, y),
                     "cudnnPoolingForward");
}

cnb_status dnn_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                             const float *dy, const float *x, const float *y,
                             const void *workspace) {
    if (d && !cnb_cudnn_pool_uses_cudnn(d->mode))
        return cnb_gpu_pool_backward(CTX_GPU(ctx), d, dx, dy, x, y, workspace);
    pool_entry *e;
    cnb_status st = get_pool(ctx, d, "pool_backward", &e);
    if (st != CNB_OK) return st;
    GPU_CHECK_PTR4(CTX_GPU(ctx), "pool_backward", dx, dy, x, y);
    return dnn_check(ctx,
                     cudnnPoolingBackward(ctx->dnn, e->pool, &one, e->y, y, e->y, dy, e->x, x,
                                          &zero, e->x, dx),
                     "cudnnPoolingBackward");
}

/* ---- GEMM ---- */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the same buffers, operands
 * swapped, the same transpose flags and leading dimensions. */
cnb_status dnn_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc) {
    cnb_status st = cnb_gpu_check_gemm(trans_a, trans_b, m, n, k, lda, ldb, ldc, ctx->gpu.err,
                                       sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    GPU_CHECK_PTR3(CTX_GPU(ctx), "gemm", a, b, c);
    return blas_check(ctx,
                      cublasSgemm(ctx->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a,
                                  lda, &beta, c, ldc),
                      "cublasSgemm");
}

/* ---- activations ---- */

static cudnnActivationMode_t act_mode(int act) {
    return act == CNB_ACT_TANH ? CUDNN_ACTIVATION_TANH : CUDNN_ACTIVATION_SIGMOID;
}

/* The checks of an activation call cuDNN runs (kind, count, the tensor written and the one
 * read, named as in the slot), then the activation descriptor set for act. */
static cnb_status prepare_activation(cnb_context *ctx, const char *fn, int act, size_t count,
                                     const float *out, const char *out_name, const float *in,
                                     const char *in_name) {
    cnb_status st = cnb_gpu_check_activation(fn, act, count, ctx->gpu.err, sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    if (!out) return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                                  out_name);
    if (!in) return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                                 in_name);
    return dnn_check(ctx,
                     cudnnSetActivationDescriptor(ctx->act, act_mode(act), CUDNN_PROPAGATE_NAN,
                                                  0.0),
                     "cudnnSetActivationDescriptor");
}

/* ctx->t_a shaped as the chunk of a count-long vector that starts at off. */
static cnb_status set_chunk(cnb_context *ctx, size_t count, size_t off, const char *fn) {
    size_t len = count - off < CNB_CUDNN_CHUNK ? count - off : CNB_CUDNN_CHUNK;
    return dnn_set_tensor(ctx, ctx->t_a, 1, 1, 1, (int)len, fn);
}

/* NaN: tanh and sigmoid run on cuDNN with CUDNN_PROPAGATE_NAN (IEEE through the formula). ReLU
 * runs on the hand-written kernels: cuDNN documents no rule for its ReLU gradient at NaN or
 * where dy is NaN and x <= 0, and cnb_abi.h fixes both (PyTorch's threshold_backward, which is
 * what PyTorch runs on GPUs too, not cuDNN). */
cnb_status dnn_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                  const float *x, const float *slope) {
    /* cuDNN has no PReLU, and ReLU follows the rule above: the hand-written kernels. */
    if (act == CNB_ACT_PRELU || act == CNB_ACT_RELU)
        return cnb_gpu_activation_forward(CTX_GPU(ctx), act, count, y, x, slope);
    cnb_status st = prepare_activation(ctx, "activation_forward", act, count, y, "y", x, "x");
    for (size_t off = 0; st == CNB_OK && off < count; off += CNB_CUDNN_CHUNK) {
        st = set_chunk(ctx, count, off, "activation_forward");
        if (st == CNB_OK)
            st = dnn_check(ctx,
                           cudnnActivationForward(ctx->dnn, ctx->act, &one, ctx->t_a, x + off,
                                                  &zero, ctx->t_a, y + off),
                           "cudnnActivationForward");
    }
    return st;
}

cnb_status dnn_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                   float *dslope, const float *dy, const float *x, const float *y,
                                   const float *slope) {
    /* PReLU (no cuDNN call), ReLU (the NaN rule above), and a call without both x and y (cuDNN's
     * backward takes both): the hand-written kernels, which need only what their formula uses. */
    if (act == CNB_ACT_PRELU || act == CNB_ACT_RELU || !x || !y)
        return cnb_gpu_activation_backward(CTX_GPU(ctx), act, count, dx, dslope, dy, x, y, slope);
    cnb_status st =
        prepare_activation(ctx, "activation_backward", act, count, dx, "dx", dy, "dy");
    for (size_t off = 0; st == CNB_OK && off < count; off += CNB_CUDNN_CHUNK) {
        st = set_chunk(ctx, count, off, "activation_backward");
        if (st == CNB_OK)
            st = dnn_check(ctx,
                           cudnnActivationBackward(ctx->dnn, ctx->act, &one, ctx->t_a, y + off,
                                                   ctx->t_a, dy + off, ctx->t_a, x + off, &zero,
                                                   ctx->t_a, dx + off),
                           "cudnnActivationBackward");
    }
    return st;
}

/* ---- softmax + cross-entropy ---- */

/* probs from cudnnSoftmaxForward (ACCURATE: max subtracted), log-probabilities from its LOG
 * mode into scratch; the loss (-logp of the label, mean over rows in a fixed order) and the
 * argmax from the hand-written kernel. */
/* cuDNN's softmax (or log-softmax) of every row of t_a. */
static cnb_status softmax_rows(cnb_context *ctx, cudnnSoftmaxAlgorithm_t algo, const float *in,
                               float *out, const char *what) {
    return dnn_check(ctx,
                     cudnnSoftmaxForward(ctx->dnn, algo, CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                                         ctx->t_a, in, &zero, ctx->t_a, out),
                     what);
}

cnb_status dnn_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                  float *loss, int32_t *pred, const float *logits,
                                  const int32_t *labels) {
    cnb_status st = cnb_gpu_check_softmax("softmax_ce_forward", n, classes, ctx->gpu.err,
                                          sizeof ctx->gpu.err);
    if (st != CNB_OK) return st;
    GPU_CHECK_PTR4(CTX_GPU(ctx), "softmax_ce_forward", probs, loss, logits, labels);
    size_t count = (size_t)n * classes;
    void *scratch;
    if ((st = cnb_gpu_scratch(CTX_GPU(ctx), (count + (size_t)n) * sizeof(float), &scratch)) !=
        CNB_OK)
        return st;
    float *logp = scratch, *row_loss = logp + count;
    if ((st = dnn_set_tensor(ctx, ctx->t_a, n, classes, 1, 1, "softmax_ce_forward")) != CNB_OK)
        return st;
    if ((st = softmax_rows(ctx, CUDNN_SOFTMAX_ACCURATE, logits, probs, "cudnnSoftmaxForward")) !=
            CNB_OK ||
        (st = softmax_rows(ctx, CUDNN_SOFTMAX_LOG, logits, logp, "cudnnSoftmaxForward (log)")) !=
            CNB_OK)
        return st;
    return cnb_gpu_check(CTX_GPU(ctx),
                         cnbk_ce_loss_from_logprobs(ctx->gpu.stream, n, classes, loss, pred,
                                                    row_loss, ctx->gpu.flags_dev, probs, logp,
                                                    logits, labels),
                         "softmax_ce_forward");
}
