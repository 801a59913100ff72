/* gpu_common.h — the host side the cuda and cudnn backends share: finding the driver and the
 * device before anything else (so a machine without them gets one clear line), the state every
 * GPU context has (device, stream, scratch, kernel-raised flags, last error), the memory slots,
 * and the slots served by the hand-written kernels (gpu_ops.c). Each backend's cnb_context
 * starts with a cnb_gpu_base; the cudnn backend adds its library handles after it. */
#ifndef CNB_GPU_COMMON_H
#define CNB_GPU_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"
#include "cuda_compat.h"

typedef struct cnb_gpu_device {
    int index;
    char name[256];
    int cc_major, cc_minor;
    int sm_count;
    size_t total_mem;
    int driver_version;  /* cudaDriverGetVersion: 1000*major + 10*minor */
    int runtime_version; /* cudaRuntimeGetVersion (the libcudart actually loaded) */
} cnb_gpu_device;

/* The options a GPU backend reads, with defaults for a NULL cfg or one from an older harness
 * whose struct ends before a field. */
typedef struct cnb_gpu_options {
    int deterministic, allow_tf32, device_index;
    int direct_conv; /* cnb_config.direct_conv: no FFT or Winograd convolution */
} cnb_gpu_options;
void cnb_gpu_read_config(const cnb_config *cfg, cnb_gpu_options *out);

/* Checks the driver (cudaDriverGetVersion), the devices (cudaGetDeviceCount) and the requested
 * index, then selects the device. On failure writes one line "<backend>: ..." naming the cause
 * and the CUDA error, e.g. "cuda: no CUDA driver found (cudaErrorInsufficientDriver): ...", and
 * returns CNB_ERR_NO_DEVICE (CNB_ERR_INVALID_ARGUMENT for an index past the last device). */
cnb_status cnb_gpu_open_device(const char *backend, int device_index, cnb_gpu_device *dev,
                               char *err, size_t len);

/* "cudaErrorX: text"; always a valid string. */
void cnb_gpu_error_words(cudaError_t e, char *buf, size_t len);

/* Pinned host buffers upload() copies through (gpu_stage.c), used in turn. */
#define CNB_GPU_STAGES 2
/* Uploads larger than this go straight from the caller's memory and wait (initial weights of a
 * huge model): pinning that much for one copy costs more than it saves. */
#define CNB_GPU_STAGE_MAX ((size_t)64 << 20)
typedef struct cnb_gpu_stage {
    void *host;        /* cudaHostAlloc'd, bytes long (NULL until first needed) */
    size_t bytes;
    cudaEvent_t done;  /* recorded after the slot's last copy: reached when it may be reused */
} cnb_gpu_stage;

typedef struct cnb_gpu_base {
    cnb_gpu_device dev;
    cnb_gpu_options opt;
    cudaStream_t stream; /* every kernel and copy goes here, in call order */
    /* Split-K partials, PReLU partials, per-row losses: one call's worth at a time. Grows,
     * never shrinks, so a training step stops allocating once it has warmed up. */
    void *scratch;
    size_t scratch_bytes;
    /* Pinned host memory the kernels write through a mapped pointer: flags[0] = a label was
     * out of range. Checked after every synchronization of the stream. */
    int *flags_host;
    int *flags_dev;
    cnb_gpu_stage stage[CNB_GPU_STAGES];
    int next_stage;
    char err[512];
    void *collective;    /* the joined device communicator (gpu_collective.c), or NULL */
} cnb_gpu_base;

/* Opens the device (cnb_gpu_open_device), creates the stream and the flags. On failure the
 * message is in err and everything made so far is released. */
cnb_status cnb_gpu_base_init(cnb_gpu_base *g, const char *backend, const cnb_config *cfg,
                             char *err, size_t len);
void cnb_gpu_base_release(cnb_gpu_base *g);

/* Keeps a printf-style message for last_error() and returns st. */
cnb_status cnb_gpu_fail(cnb_gpu_base *g, cnb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* CNB_OK for cudaSuccess; otherwise clears the runtime's last error (so a later launch does not
 * report it again), keeps "<what>: cudaErrorX: text" and maps the error to a status. */
cnb_status cnb_gpu_check(cnb_gpu_base *g, cudaError_t e, const char *what);
/* At least bytes of device scratch in *out (NULL when bytes is 0). */
cnb_status cnb_gpu_scratch(cnb_gpu_base *g, size_t bytes, void **out);
/* Replaces *buf (of *buf_bytes) by a new allocation of want bytes: pinned host memory or device
 * memory. On failure both are 0 and the message names what and the size. The caller makes sure
 * no queued work still uses the old buffer. */
cnb_status cnb_gpu_realloc(cnb_gpu_base *g, int pinned, size_t want, void **buf,
                           size_t *buf_bytes, const char *what);
/* Waits for the stream, then reports a flag a kernel raised since the last check. */
cnb_status cnb_gpu_sync_and_check(cnb_gpu_base *g, const char *what);

/* Reports device.*, cuda.driver, cuda.runtime.{compiled,loaded}; appends to mismatch (a
 * buffer of mismatch_len) a sentence when the loaded runtime differs from the compiled one. */
void cnb_gpu_info_device(const cnb_gpu_base *g, cnb_info_fn fn, void *user, char *mismatch,
                         size_t mismatch_len);

#define GPU_CHECK_PTR(g, fn, p)                                                              \
    do {                                                                                     \
        if (!(p))                                                                            \
            return cnb_gpu_fail((g), CNB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", (fn), #p);  \
    } while (0)
/* Three or four tensors of one call (a convolution pass, a loss, an optimizer step), checked in
 * order. */
#define GPU_CHECK_PTR3(g, fn, a, b, c)                                                       \
    do {                                                                                     \
        GPU_CHECK_PTR(g, fn, a);                                                             \
        GPU_CHECK_PTR(g, fn, b);                                                             \
        GPU_CHECK_PTR(g, fn, c);                                                             \
    } while (0)
#define GPU_CHECK_PTR4(g, fn, a, b, c, d)                                                    \
    do {                                                                                     \
        GPU_CHECK_PTR3(g, fn, a, b, c);                                                      \
        GPU_CHECK_PTR(g, fn, d);                                                             \
    } while (0)

/* ---- upload staging (gpu_stage.c) ---- */
/* Creates the slots' events (buffers come on first use); on failure the message is in g->err. */
cnb_status cnb_gpu_stage_init(cnb_gpu_base *g);
/* Waits for the stream, frees the buffers and events. */
void cnb_gpu_stage_release(cnb_gpu_base *g);
/* Copies src into the next slot (after waiting for that slot's previous copy, normally long
 * finished), queues the host-to-device copy on the stream and returns without waiting for it:
 * src may be reused at once. bytes <= CNB_GPU_STAGE_MAX. */
cnb_status cnb_gpu_stage_upload(cnb_gpu_base *g, void *dst_device, const void *src_host,
                                size_t bytes);

/* ---- the memory slots (cudaMalloc / cudaFree / copies on the stream) ---- */
cnb_status cnb_gpu_alloc(cnb_gpu_base *g, void **ptr, size_t bytes);
cnb_status cnb_gpu_free(cnb_gpu_base *g, void *ptr);
cnb_status cnb_gpu_upload(cnb_gpu_base *g, void *dst_device, const void *src_host, size_t bytes);
cnb_status cnb_gpu_download(cnb_gpu_base *g, void *dst_host, const void *src_device,
                            size_t bytes);
cnb_status cnb_gpu_synchronize(cnb_gpu_base *g);

/* ---- the timer slots: a cnb_timer is a cudaEvent_t (timing enabled) recorded on the stream ---- */
cnb_status cnb_gpu_timer_create(cnb_gpu_base *g, cnb_timer **out);
cnb_status cnb_gpu_timer_record(cnb_gpu_base *g, cnb_timer *t);
cnb_status cnb_gpu_timer_elapsed(cnb_gpu_base *g, const cnb_timer *start, const cnb_timer *stop,
                                 double *ms);
cnb_status cnb_gpu_timer_destroy(cnb_gpu_base *g, cnb_timer *t);

/* ---- the slots of the hand-written kernels (gpu_ops.c): validate, plan, launch ---- */
cnb_status cnb_gpu_corr2d(cnb_gpu_base *g, float *y, const float *x, const float *k, int h,
                          int w, int kh, int kw);
cnb_status cnb_gpu_conv_forward(cnb_gpu_base *g, const cnb_conv_desc *d, float *y,
                                const float *x, const float *weight, const float *bias);
cnb_status cnb_gpu_conv_backward_data(cnb_gpu_base *g, const cnb_conv_desc *d, float *dx,
                                      const float *dy, const float *weight);
cnb_status cnb_gpu_conv_backward_filter(cnb_gpu_base *g, const cnb_conv_desc *d,
                                        float *dweight, const float *dy, const float *x);
cnb_status cnb_gpu_bias_forward(cnb_gpu_base *g, float *y, const float *bias, int n, int c,
                                int hw);
cnb_status cnb_gpu_bias_backward(cnb_gpu_base *g, float *dbias, const float *dy, int n, int c,
                                 int hw);
cnb_status cnb_gpu_pool_workspace_size(cnb_gpu_base *g, const cnb_pool_desc *d, size_t *bytes);
cnb_status cnb_gpu_pool_forward(cnb_gpu_base *g, const cnb_pool_desc *d, float *y,
                                const float *x, void *workspace);
cnb_status cnb_gpu_pool_backward(cnb_gpu_base *g, const cnb_pool_desc *d, float *dx,
                                 const float *dy, const float *x, const float *y,
                                 const void *workspace);
cnb_status cnb_gpu_gemm(cnb_gpu_base *g, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                        float *c, int ldc);
cnb_status cnb_gpu_activation_forward(cnb_gpu_base *g, int act, size_t count, float *y,
                                      const float *x, const float *slope);
cnb_status cnb_gpu_activation_backward(cnb_gpu_base *g, int act, size_t count, float *dx,
                                       float *dslope, const float *dy, const float *x,
                                       const float *y, const float *slope);
cnb_status cnb_gpu_softmax_ce_forward(cnb_gpu_base *g, int n, int classes, float *probs,
                                      float *loss, int32_t *pred, const float *logits,
                                      const int32_t *labels);
cnb_status cnb_gpu_softmax_ce_backward(cnb_gpu_base *g, int n, int classes, float *dlogits,
                                       const float *probs, const int32_t *labels);
cnb_status cnb_gpu_sgd_step(cnb_gpu_base *g, const cnb_sgd_desc *d, size_t count, float *param,
                            float *velocity, const float *grad);
cnb_status cnb_gpu_adam_step(cnb_gpu_base *g, const cnb_adam_desc *d, size_t count,
                             float *param, float *m, float *v, const float *grad);

#endif /* CNB_GPU_COMMON_H */
