/* cnb_abi.h — the one contract between the cnnbench harness and a kernel backend.
 *
 * A backend is a shared object exporting one symbol, CNB_ENTRY_SYMBOL, with the type
 * cnb_entry_fn. The harness calls it with the ABI version it speaks; the backend returns a
 * function table whose first two fields are the ABI version the table follows and the table's
 * size in bytes. Fields are only ever appended; each group below is marked with the version that
 * introduced it, and a caller checks `abi_version >= N` before touching a slot from version N
 * (the way SQLite's sqlite3_vfs grows through iVersion). A group of OPTIONAL slots (a backend
 * may leave them NULL, the harness works without them) is appended without a new version: the
 * table's struct_size tells whether it is there, so older harnesses keep loading newer backends
 * and newer harnesses older ones. A new version is for slots every backend must fill, or for a
 * changed meaning.
 *
 * This header is self-contained: it includes only the C standard library.
 *
 * Conventions (every kernel):
 *  - Tensors are float32, NCHW, contiguous, in device memory obtained from the backend's `alloc`.
 *    For CPU backends device memory is host memory; the harness never dereferences a device
 *    pointer itself, it only uses upload / download.
 *  - Arguments: context first, then the descriptor, then outputs, then inputs.
 *  - Every call returns a cnb_status; on failure the backend keeps a message for last_error().
 *    A backend never exits, aborts or prints: only the program decides to stop.
 *  - Gradients OVERWRITE their destination (beta = 0); nothing accumulates. A gradient all-reduce
 *    therefore slots in between the backward pass and the optimizer step.
 *  - Outputs never alias inputs unless a kernel says so.
 *  - Calls may be asynchronous on a device; download() and synchronize() are the points at which
 *    results are complete.
 *  - Strings the backend returns live as long as they say: name and description as long as the
 *    library is loaded; last_error()'s text until the next call on the same context; the key and
 *    value passed to the info callback only during that callback (copy what you keep).
 *  - Calls on one context take effect in the order they are issued (one queue): an upload into a
 *    buffer that an earlier kernel reads lands after that kernel. upload() has read its source
 *    when it returns (the source may be reused at once) but need not wait for the device copy;
 *    the harness relies on this to queue the next batch before it reads a step's loss.
 *  - Non-finite values (NaN, +-Inf) follow IEEE arithmetic and PyTorch 1.13 (checked against
 *    it), never silently turn into numbers; `cnnbench check` compares NaN positions exactly (a
 *    NaN where naive has a number, or the reverse, is a mismatch; +-Inf must match exactly; the
 *    sign of a zero is not compared). Boundary rules, where a comparison decides:
 *      relu      y = x < 0 ? 0 : x (so relu(NaN) = NaN); dx = x <= 0 ? 0 : dy, so the gradient
 *                at exactly +-0 is 0 and at NaN is dy (PyTorch's threshold_backward).
 *      prelu     y = x > 0 ? x : a*x; dx = x > 0 ? dy : a*dy; dslope = sum over x <= 0 (NaN
 *                included) of x*dy: at +-0 the slope branch, at NaN dslope is NaN.
 *      max pool  scanning the window row-major (padding is never a candidate), a value becomes
 *                the maximum when it is greater than the current one OR is NaN: ties of
 *                numbers keep the FIRST, a window holding NaN yields NaN and its gradient goes
 *                to the LAST NaN (PyTorch's max_pool2d, CPU and CUDA); +Inf beats numbers.
 *      avg pool, tanh, sigmoid, bias, conv, gemm: plain IEEE (NaN in, NaN out; tanh(+-Inf) =
 *                +-1, sigmoid(-Inf) = 0; backward from y as the formulas say).
 *      softmax-CE a row holding NaN or +Inf gives NaN probabilities and a NaN loss (Inf - Inf);
 *                a -Inf logit has probability 0 (loss +Inf when it is the label); pred is the
 *                first NaN of the row if any, else the first maximum (torch.argmax).
 *      sgd, adam IEEE through the formulas below: a NaN/Inf gradient or state reaches param.
 *    A kernel must not use a fast-math mode or a library path that drops these (e.g. a max that
 *    ignores NaN, fminf/fmaxf, -ffinite-math-only); where a library does, the backend fixes the
 *    result up or falls back, and says so in a comment.
 */
#ifndef CNB_ABI_H
#define CNB_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNB_ABI_VERSION 1u          /* the version this header describes */
#define CNB_ABI_MIN_VERSION 1u      /* the oldest table a harness built from it accepts */
#define CNB_ENTRY_SYMBOL "cnb_backend_entry"

/* Status codes: values are stable and never reused. */
typedef enum cnb_status {
    CNB_OK = 0,
    CNB_ERR_INVALID_ARGUMENT = 1, /* a shape, pointer or option the kernel cannot accept */
    CNB_ERR_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
    CNB_ERR_UNSUPPORTED = 3,      /* a valid request this backend does not implement */
    CNB_ERR_NO_DEVICE = 4,        /* no device, no driver, or runtime too old */
    CNB_ERR_LIBRARY = 5,          /* the vendor library returned an error */
    CNB_ERR_INTERNAL = 6          /* a bug in the backend */
} cnb_status;

/* Words for a status code; safe for any value. */
static inline const char *cnb_status_str(int s) {
    switch (s) {
    case CNB_OK: return "ok";
    case CNB_ERR_INVALID_ARGUMENT: return "invalid argument";
    case CNB_ERR_OUT_OF_MEMORY: return "out of memory";
    case CNB_ERR_UNSUPPORTED: return "unsupported";
    case CNB_ERR_NO_DEVICE: return "no device";
    case CNB_ERR_LIBRARY: return "library error";
    case CNB_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

/* Options for create(). `size` is sizeof(cnb_config) as the harness knows it, so the struct
 * can grow the same append-only way as the table. */
typedef struct cnb_config {
    uint32_t size;
    int threads;        /* worker threads for CPU backends; 0 = backend's choice */
    int deterministic;  /* 1: pick deterministic algorithms where the library has them */
    int allow_tf32;     /* 1: GPU backends may use TF32 tensor-core math (looser tolerance) */
    int device_index;   /* which GPU, for device backends */
    /* 1: convolutions only by algorithms that sum the products as the definition does (direct,
     * GEMM-based): no Winograd or FFT, whose transforms add rounding and make results on
     * integer data inexact. 0: a backend may pick such an algorithm where it measures faster,
     * and names the directions in info()'s conv.transforms key. Read only when size covers it. */
    int direct_conv;
} cnb_config;

/* cfg's direct_conv, 0 for a config too old to carry it. */
static inline int cnb_config_direct_conv(const cnb_config *cfg) {
    return cfg && cfg->size >= offsetof(cnb_config, direct_conv) + sizeof cfg->direct_conv &&
           cfg->direct_conv;
}

typedef struct cnb_context cnb_context; /* backend-owned state: handles, caches, workspaces */

/* 2-D convolution (cross-correlation, as in every framework). Output size:
 *   p = (h + 2*pad_h - r) / stride_h + 1,   q = (w + 2*pad_w - s) / stride_w + 1
 * The harness fills p and q; a backend may rely on them. */
typedef struct cnb_conv_desc {
    int n, c, h, w;                 /* input x is (n, c, h, w) */
    int k, r, s;                    /* weight is (k, c, r, s), bias is (k) */
    int stride_h, stride_w;
    int pad_h, pad_w;               /* zero padding on each side */
    int p, q;                       /* output y is (n, k, p, q) */
} cnb_conv_desc;

typedef enum cnb_pool_mode {
    CNB_POOL_MAX = 0, /* ties: the first maximum in row-major order wins; NaN: the last NaN */
    CNB_POOL_AVG = 1  /* divides by kh*kw, padding included (PyTorch's count_include_pad) */
} cnb_pool_mode;

/* Pooling; p and q follow the convolution formula (floor mode) and are filled by the harness. */
typedef struct cnb_pool_desc {
    int mode;                       /* cnb_pool_mode */
    int n, c, h, w;                 /* input x is (n, c, h, w) */
    int kh, kw;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int p, q;                       /* output y is (n, c, p, q) */
} cnb_pool_desc;

typedef enum cnb_activation {
    CNB_ACT_RELU = 0,
    CNB_ACT_TANH = 1,
    CNB_ACT_SIGMOID = 2,
    CNB_ACT_PRELU = 3 /* y = x > 0 ? x : a*x with one learned slope a for the whole tensor */
} cnb_activation;

/* SGD as torch.optim.SGD (dampening 0, nesterov off):
 *   g = grad + weight_decay*param;  v = momentum*v + g  (v starts at 0, so step 1 gives v = g);
 *   param -= lr * v */
typedef struct cnb_sgd_desc {
    float lr, momentum, weight_decay;
} cnb_sgd_desc;

/* Adam as torch.optim.Adam (amsgrad off):
 *   g = grad + weight_decay*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 *   param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   with t = step >= 1 */
typedef struct cnb_adam_desc {
    float lr, beta1, beta2, eps, weight_decay;
    int step;
} cnb_adam_desc;

/* What kind of device a backend's kernels run on (the device_kind field). */
typedef enum cnb_device_kind {
    CNB_DEVICE_UNKNOWN = 0, /* a table from before the field, or a backend that does not say */
    CNB_DEVICE_CPU = 1,     /* host memory and host threads */
    CNB_DEVICE_GPU = 2      /* a discrete accelerator with its own memory (CUDA, ...) */
} cnb_device_kind;

/* Called by info() once per fact: e.g. ("openblas.compiled", "0.3.21"). */
typedef void (*cnb_info_fn)(void *user, const char *key, const char *value);

/* A device-side time stamp (see the timer slots); backend-owned, opaque to the harness. */
typedef struct cnb_timer cnb_timer;

typedef struct cnb_backend {
    /* ---- version 1 ---- */
    uint32_t abi_version;           /* the version this table follows */
    uint32_t struct_size;           /* sizeof(cnb_backend) as the backend was compiled */
    const char *name;               /* short name, e.g. "naive" */
    const char *description;        /* one line */

    /* Lifecycle. On failure create() writes a message into err (the context does not exist yet),
     * e.g. "no CUDA driver found"; that is how a built-but-unusable backend says why. */
    cnb_status (*create)(const cnb_config *cfg, cnb_context **out, char *err, size_t err_len);
    void (*destroy)(cnb_context *ctx);
    const char *(*last_error)(cnb_context *ctx); /* message for the last failed call, or "" */
    /* Library versions (compiled against and loaded), chosen ISA, threads, device name, ...
     * One key has a meaning the harness reads: "conv.transforms[n%d c%d %dx%d k%d %dx%d
     * s%dx%d p%dx%d]" (n, c, h, w, k, r, s, strides, pads of a convolution shape used so far)
     * with the value a space-separated list of "fwd", "bwd_data", "bwd_filter": the directions
     * whose algorithm transforms the data (FFT, Winograd) instead of summing products, so
     * their results are not exact on integer data and carry more rounding. Another: "warm_up"
     * with the value "yes" when the first call of a shape does extra work (an algorithm search
     * by timing), so the harness runs each batch size once before it times anything (it always
     * does for a table with the timer group). */
    cnb_status (*info)(cnb_context *ctx, cnb_info_fn fn, void *user);

    /* Memory. alloc'd memory is aligned to at least 64 bytes and not initialized. */
    cnb_status (*alloc)(cnb_context *ctx, void **ptr, size_t bytes);
    cnb_status (*free)(cnb_context *ctx, void *ptr);
    cnb_status (*upload)(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes);
    cnb_status (*download)(cnb_context *ctx, void *dst_host, const void *src_device, size_t bytes);
    cnb_status (*synchronize)(cnb_context *ctx);

    /* Single-channel 2-D cross-correlation, valid mode, stride 1:
     * y is (h-kh+1, w-kw+1), x is (h, w), k is (kh, kw). */
    cnb_status (*corr2d)(cnb_context *ctx, float *y, const float *x, const float *k,
                         int h, int w, int kh, int kw);

    /* Convolution. bias may be NULL (no bias). */
    cnb_status (*conv_forward)(cnb_context *ctx, const cnb_conv_desc *d, float *y,
                               const float *x, const float *weight, const float *bias);
    cnb_status (*conv_backward_data)(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                     const float *dy, const float *weight);
    cnb_status (*conv_backward_filter)(cnb_context *ctx, const cnb_conv_desc *d, float *dweight,
                                       const float *dy, const float *x);
    /* y (n, c, hw) += bias (c); db (c) = sum of dy over n and hw. Used for convolution (hw = p*q)
     * and linear layers (hw = 1). bias_forward works in place on y. */
    cnb_status (*bias_forward)(cnb_context *ctx, float *y, const float *bias, int n, int c, int hw);
    cnb_status (*bias_backward)(cnb_context *ctx, float *dbias, const float *dy, int n, int c,
                                int hw);

    /* Pooling. workspace is pool_workspace_size() bytes of device memory the harness allocates
     * once per layer (max pooling may record argmax there); it may be NULL when the size is 0.
     * pool_backward receives the forward's x, y and workspace. */
    cnb_status (*pool_workspace_size)(cnb_context *ctx, const cnb_pool_desc *d, size_t *bytes);
    cnb_status (*pool_forward)(cnb_context *ctx, const cnb_pool_desc *d, float *y, const float *x,
                               void *workspace);
    cnb_status (*pool_backward)(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                                const float *dy, const float *x, const float *y,
                                const void *workspace);

    /* Row-major GEMM: C (m, n) = alpha * op(A) * op(B) + beta * C, where op(A) is (m, k) and
     * op(B) is (k, n); trans_* = 1 means the stored matrix is the transpose. lda/ldb/ldc are the
     * row strides of the matrices as stored. */
    cnb_status (*gemm)(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                       float alpha, const float *a, int lda, const float *b, int ldb,
                       float beta, float *c, int ldc);

    /* Element-wise activations over count values. slope points to the single PReLU parameter
     * (device memory) and is ignored by the other activations. Backward gets both x and y (the
     * forward's input and output) and writes dx; for PReLU it also writes dslope (one value,
     * device memory, overwritten); dslope is ignored otherwise. */
    cnb_status (*activation_forward)(cnb_context *ctx, int act, size_t count, float *y,
                                     const float *x, const float *slope);
    cnb_status (*activation_backward)(cnb_context *ctx, int act, size_t count, float *dx,
                                      float *dslope, const float *dy, const float *x,
                                      const float *y, const float *slope);

    /* Softmax + cross-entropy over logits (n, classes) with labels (n) in [0, classes).
     * Writes probs (n, classes), loss (one float: the mean over the batch) and, when pred is not
     * NULL, pred (n) = argmax of each row (first maximum wins). Labels outside the range are an
     * error. All pointers are device memory. */
    cnb_status (*softmax_ce_forward)(cnb_context *ctx, int n, int classes, float *probs,
                                     float *loss, int32_t *pred, const float *logits,
                                     const int32_t *labels);
    /* dlogits = (probs - onehot(labels)) / n: the gradient of the mean loss. */
    cnb_status (*softmax_ce_backward)(cnb_context *ctx, int n, int classes, float *dlogits,
                                      const float *probs, const int32_t *labels);

    /* Optimizer steps over flat arrays of count values (all parameters live in one block).
     * velocity / m / v start at zero, allocated by the harness. */
    cnb_status (*sgd_step)(cnb_context *ctx, const cnb_sgd_desc *d, size_t count, float *param,
                           float *velocity, const float *grad);
    cnb_status (*adam_step)(cnb_context *ctx, const cnb_adam_desc *d, size_t count, float *param,
                            float *m, float *v, const float *grad);

    /* ---- version 1, optional: device timers (present when struct_size covers timer_destroy,
     * see cnb_backend_has_timers) ----
     * For backends whose calls are asynchronous: a host clock read after a call only measures
     * the kernel if the harness synchronizes after it, which adds launch latency and empties the
     * queue. A timer is a marker in the context's stream (as cudaEventRecord), so pairs of them
     * time kernels as the device ran them. A backend fills all four or none; backends whose
     * calls have finished when they return (CPU backends) leave them NULL, and the harness
     * then synchronizes and reads its own clock. */
    /* A new timer, not yet recorded. */
    cnb_status (*timer_create)(cnb_context *ctx, cnb_timer **out);
    /* Places t in the stream after all work issued so far (re-recording moves it); it is
     * reached when that work has finished. Does not wait. */
    cnb_status (*timer_record)(cnb_context *ctx, cnb_timer *t);
    /* Waits until stop is reached, then *ms = milliseconds from start to stop (>= 0; start and
     * stop recorded in that order; the same timer twice gives 0). */
    cnb_status (*timer_elapsed)(cnb_context *ctx, const cnb_timer *start, const cnb_timer *stop,
                                double *ms);
    cnb_status (*timer_destroy)(cnb_context *ctx, cnb_timer *t); /* NULL t is a no-op */

    /* ---- version 1, optional: the device (present when struct_size covers device_kind, see
     * cnb_backend_device_kind) ----
     * Lets the harness tell CPU from GPU backends (CPU:GPU ratios, TF32 tolerances) without
     * knowing their names. */
    uint32_t device_kind;           /* cnb_device_kind */

    /* ---- version 1, optional: device collectives (present when struct_size covers
     * collective_destroy, see cnb_backend_has_collectives) ----
     * For data-parallel training on GPUs (harness/engine/distributed.h): the gradient block is summed
     * across processes on the device (NCCL), so it never crosses to the host. The harness starts
     * the processes (MPI) and carries the communicator's id from rank 0 to the others; the
     * backend does the rest. A backend fills all four or none; without them the harness sums on
     * the host (download, MPI_Allreduce, upload). */
    /* On rank 0: a new communicator id (at most CNB_COLLECTIVE_ID_MAX bytes, *id_bytes set) and
     * the library in words ("NCCL 2.27.3") in library. */
    cnb_status (*collective_id)(cnb_context *ctx, void *id, size_t *id_bytes, char *library,
                                size_t library_len);
    /* On every rank: join the communicator of `ranks` processes as `rank` (0-based), with the id
     * rank 0 made. Collective: every rank calls it. CNB_ERR_UNSUPPORTED when this backend cannot
     * take that many ranks (the harness then sums on the host). */
    cnb_status (*collective_init)(cnb_context *ctx, const void *id, size_t id_bytes, int ranks,
                                  int rank);
    /* buf (count floats, device memory) = the sum over the ranks of scale * buf, in place and in
     * the context's call order (a rank weights its own gradient by scale). Collective. */
    cnb_status (*allreduce_sum)(cnb_context *ctx, float *buf, size_t count, float scale);
    /* Leave the communicator (no-op when none was joined). */
    cnb_status (*collective_destroy)(cnb_context *ctx);

    /* ---- version 1, optional: fused kernels (present when struct_size covers
     * pool_act_backward, see cnb_backend_has_fusion) ----
     * Memory-bound passes over a tensor the kernel beside them has just written, done in the
     * same pass (cuDNN's conv + bias + activation, oneDNN's post-ops). Each equals, within the
     * fp32 tolerance, the composition of the separate slots it replaces; NaN propagates as in
     * those. A backend fills both or none; it returns CNB_ERR_UNSUPPORTED (with a message) for
     * a combination it does not fuse, and the harness then calls the separate slots for that
     * layer. act is CNB_FUSED_ACT_NONE or an activation without a parameter: RELU, TANH or
     * SIGMOID (PReLU's slope gradient needs the pre-activation, which fusion does not keep). */
    /* y (n, k, p, q) = act(conv(x, weight) + bias): conv_forward, then activation_forward in
     * place. bias may be NULL. The pre-activation is not stored. */
    cnb_status (*conv_bias_act_forward)(cnb_context *ctx, const cnb_conv_desc *d, int act,
                                        float *y, const float *x, const float *weight,
                                        const float *bias);
    /* Pooling backward followed by the backward of the activation that produced the pooling's
     * input: dx (n, c, h, w) = act'(x) * pool_backward(dy), where x is the pooling's input,
     * i.e. the activation's OUTPUT a, so act' is written in terms of it: relu: a > 0 ? g : 0
     * (a > 0 exactly when the pre-activation was), tanh: g * (1 - a*a), sigmoid:
     * g * a * (1 - a). x, y and workspace are the pooling forward's, as for pool_backward. */
    cnb_status (*pool_act_backward)(cnb_context *ctx, const cnb_pool_desc *d, int act, float *dx,
                                    const float *dy, const float *x, const float *y,
                                    const void *workspace);

    /* ---- version 1, optional: the fused convolution backward (present when struct_size covers
     * it and the slot is filled, see cnb_backend_has_conv_backward) ----
     * A convolution's three gradients from one read of dy: dweight as conv_backward_filter,
     * dbias as bias_backward over dy viewed as (n, k, p*q) (NULL: the layer has no bias), dx
     * as conv_backward_data (NULL: not wanted, as for the input images). Each equals, within
     * the fp32 tolerance, the separate slot it stands for (a blocked-layout backend reorders dy
     * once and sums dbias inside the weight gradient). CNB_ERR_UNSUPPORTED (with a message)
     * has the harness call the separate slots for that layer; --no-fusion never calls it. */
    cnb_status (*conv_backward)(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                float *dweight, float *dbias, const float *dy, const float *x,
                                const float *weight);

    /* ---- version 1, optional: the fused convolution + activation + pooling forward (present
     * when struct_size covers it and the slot is filled, see cnb_backend_has_conv_pool_forward)
     * ----
     * A convolution block's forward in one call: a (n, k, p, q) = act(conv(x, weight) + bias)
     * as conv_bias_act_forward, then y = pool(a) with workspace as pool_forward (pd's n, c, h,
     * w are cd's n, k, p, q). A blocked-layout backend unpacks its convolution output,
     * activates and pools each plane while it is in cache, instead of a reorder pass, an
     * activation pass and a pooling pass. a may be NULL: the caller does not keep it (an
     * inference pass, or a max pooling whose backward goes through pool_act_conv_backward,
     * which reads y instead), and the backend then need not write the block's biggest tensor
     * at all; y and the workspace are the same either way. Each output equals, within the fp32
     * tolerance, the separate slots' (y and the workspace exactly those of pool_forward on that
     * a). CNB_ERR_UNSUPPORTED (with a message) has the harness call the separate slots for that
     * layer; --no-fusion never calls it. */
    cnb_status (*conv_act_pool_forward)(cnb_context *ctx, const cnb_conv_desc *cd, int act,
                                        const cnb_pool_desc *pd, float *a, float *y,
                                        void *workspace, const float *x, const float *weight,
                                        const float *bias);

    /* ---- version 1, optional: the fused pooling + activation + convolution backward (present
     * when struct_size covers it and the slot is filled, see cnb_backend_has_pool_conv_backward)
     * ----
     * A convolution block's backward in one call, from the gradient dy of the pooling's output:
     * g = act'(a) * pool_backward(dy) as pool_act_backward (a, y and workspace are the pooling
     * forward's: a its input, the activation's output; y its output), then conv_backward of
     * g: dweight, dbias (NULL: no bias), dx (NULL: not wanted). g is not handed back: a
     * blocked-layout backend writes it straight into the layout its convolution kernels read,
     * instead of a plain g and a reorder of it. pd's n, c, h, w are cd's n, k, p, q. Each
     * output equals, within the fp32 tolerance, the separate slots'. For a max pooling, a is
     * NULL when the forward did not keep it, and a backend never needs it there: the gradient
     * reaches only each window's argmax, where a is y. Whether a shape is fused must not depend
     * on a being NULL: CNB_ERR_UNSUPPORTED (with a message) has the harness call the separate
     * slots for that layer (writing a again first when it was not kept); --no-fusion never
     * calls it. */
    cnb_status (*pool_act_conv_backward)(cnb_context *ctx, const cnb_pool_desc *pd, int act,
                                         const cnb_conv_desc *cd, float *dx, float *dweight,
                                         float *dbias, const float *dy, const float *a,
                                         const float *y, const void *workspace, const float *x,
                                         const float *weight);

    /* ---- version 2 fields go below this line ---- */
} cnb_backend;

/* The size of a version-1 table: the end of its last slot. The loader needs at least this. */
#define CNB_BACKEND_V1_SIZE (offsetof(cnb_backend, adam_step) + sizeof(void (*)(void)))
/* The size of a table that carries the timer group: the end of timer_destroy. */
#define CNB_BACKEND_TIMERS_SIZE (offsetof(cnb_backend, timer_destroy) + sizeof(void (*)(void)))

/* The size of a table that carries the collective group: the end of collective_destroy. */
#define CNB_BACKEND_COLLECTIVES_SIZE                                                          \
    (offsetof(cnb_backend, collective_destroy) + sizeof(void (*)(void)))
#define CNB_COLLECTIVE_ID_MAX 256 /* bytes of a communicator id (ncclUniqueId is 128) */

/* 1 when t has the collective group and fills it (the loader refuses a partial group). */
static inline int cnb_backend_has_collectives(const cnb_backend *t) {
    return t->struct_size >= CNB_BACKEND_COLLECTIVES_SIZE && t->collective_id &&
           t->collective_init && t->allreduce_sum && t->collective_destroy;
}

/* The size of a table that carries the fusion group: the end of pool_act_backward. */
#define CNB_BACKEND_FUSION_SIZE \
    (offsetof(cnb_backend, pool_act_backward) + sizeof(void (*)(void)))
/* The size of a table that carries the fused convolution backward. */
#define CNB_BACKEND_CONV_BACKWARD_SIZE \
    (offsetof(cnb_backend, conv_backward) + sizeof(void (*)(void)))
/* The size of a table that carries the fused convolution + activation + pooling forward. */
#define CNB_BACKEND_CONV_POOL_FORWARD_SIZE \
    (offsetof(cnb_backend, conv_act_pool_forward) + sizeof(void (*)(void)))
/* The size of a table that carries the fused pooling + activation + convolution backward. */
#define CNB_BACKEND_POOL_CONV_BACKWARD_SIZE \
    (offsetof(cnb_backend, pool_act_conv_backward) + sizeof(void (*)(void)))
/* The fused slots' "no activation": conv_bias_act_forward is then conv_forward. */
#define CNB_FUSED_ACT_NONE (-1)

/* 1 when t has the timer group and fills it (the loader refuses a table that fills only part). A
 * table whose struct_size ends before the group has none: its bytes there are not read. */
static inline int cnb_backend_has_timers(const cnb_backend *t) {
    return t->struct_size >= CNB_BACKEND_TIMERS_SIZE && t->timer_create && t->timer_record &&
           t->timer_elapsed && t->timer_destroy;
}

/* The table's device kind; CNB_DEVICE_UNKNOWN for a table that ends before the field. */
static inline cnb_device_kind cnb_backend_device_kind(const cnb_backend *t) {
    if (t->struct_size < offsetof(cnb_backend, device_kind) + sizeof t->device_kind)
        return CNB_DEVICE_UNKNOWN;
    return t->device_kind <= CNB_DEVICE_GPU ? (cnb_device_kind)t->device_kind : CNB_DEVICE_UNKNOWN;
}

/* 1 when t has the fusion group and fills it (the loader refuses a half-filled group). */
static inline int cnb_backend_has_fusion(const cnb_backend *t) {
    return t->struct_size >= CNB_BACKEND_FUSION_SIZE && t->conv_bias_act_forward &&
           t->pool_act_backward;
}

/* 1 when t has the fused convolution backward and fills it. */
static inline int cnb_backend_has_conv_backward(const cnb_backend *t) {
    return t->struct_size >= CNB_BACKEND_CONV_BACKWARD_SIZE && t->conv_backward;
}

/* 1 when t has the fused convolution + activation + pooling forward and fills it. */
static inline int cnb_backend_has_conv_pool_forward(const cnb_backend *t) {
    return t->struct_size >= CNB_BACKEND_CONV_POOL_FORWARD_SIZE && t->conv_act_pool_forward;
}

/* 1 when t has the fused pooling + activation + convolution backward and fills it. */
static inline int cnb_backend_has_pool_conv_backward(const cnb_backend *t) {
    return t->struct_size >= CNB_BACKEND_POOL_CONV_BACKWARD_SIZE && t->pool_act_conv_backward;
}

/* The one exported symbol. harness_abi_version is the version the caller speaks; a backend
 * returns a table of that version or older, or NULL if it cannot serve it. */
typedef const cnb_backend *(*cnb_entry_fn)(uint32_t harness_abi_version);

#if defined(_WIN32)
#define CNB_EXPORT __declspec(dllexport)
#else
#define CNB_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
}
#endif
#endif /* CNB_ABI_H */
