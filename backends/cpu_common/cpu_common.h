/* cpu_common.h — host-side code the CPU backends (naive, blas, onednn) share, linked into each
 * as the static library cnb_cpu_common. It holds what no kernel library owns and every CPU
 * backend needs the same: host "device" memory, softmax-CE's label check and argmax, the
 * optimizers' update loops (cpu_optimizer.h), the max-pooling plane loops blas and onednn split
 * over their threads (pool_planes.c), and a backend's boilerplate (the error message,
 * last_error, the start of create, the kernel prototypes, the function table and its entry
 * point). One copy, so the backends cannot drift apart where they mean the same thing.
 *
 * The one rule a backend follows: its struct cnb_context begins with `char err[CPU_ERR_LEN]`,
 * the message for last_error(); CPU_CONTEXT_BEGINS_WITH_ERR checks that where the struct is
 * defined. The shared functions reach the message through it and know nothing else of the
 * context. */
#ifndef CNB_CPU_COMMON_H
#define CNB_CPU_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cnb_abi.h"

#define CPU_ERR_LEN 512

/* Put after the definition of struct cnb_context. */
#define CPU_CONTEXT_BEGINS_WITH_ERR                                                           \
    _Static_assert(offsetof(struct cnb_context, err) == 0 &&                                  \
                       sizeof((struct cnb_context *)0)->err == CPU_ERR_LEN,                   \
                   "struct cnb_context must begin with char err[CPU_ERR_LEN]")

/* The message buffer at the start of ctx (not NULL). */
static inline char *cpu_err(cnb_context *ctx) { return (char *)ctx; }

/* Keep a printf-style message for last_error() and return st; ctx may be NULL. */
cnb_status cpu_fail(cnb_context *ctx, cnb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The message of the last failed call, "" if none failed (or ctx is NULL). */
const char *cpu_last_error(cnb_context *ctx);

/* The start of every CPU backend's create(): out must not be NULL (else "<backend>: create: out
 * is NULL" in err); sets *out = NULL and *threads = cfg->threads, or 0 (the backend's choice)
 * when cfg is NULL or too old to carry the field. */
cnb_status cpu_create_begin(const char *backend, const cnb_config *cfg, cnb_context **out,
                            int *threads, char *err, size_t err_len);

/* Memory: "device" memory is host memory. cpu_host_alloc gives blocks aligned to 64 bytes, and
 * to a page from 4 KiB; a zero-byte request still gets a unique pointer; NULL when out of
 * memory; free() releases it.
 * cpu_alloc is the ABI's alloc on it; upload and download are memcpy; synchronize has nothing
 * to wait for, since every kernel has finished when it returns. */
void *cpu_host_alloc(size_t bytes);
cnb_status cpu_alloc(cnb_context *ctx, void **ptr, size_t bytes);
cnb_status cpu_free(cnb_context *ctx, void *ptr);
cnb_status cpu_upload(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes);
cnb_status cpu_download(cnb_context *ctx, void *dst_host, const void *src_device, size_t bytes);
cnb_status cpu_synchronize(cnb_context *ctx);

/* softmax-CE's labels, checked before anything is written so a bad batch leaves the outputs
 * untouched. cpu_find_bad_label gives the first row whose label is outside [0, classes), or -1;
 * cpu_check_labels says so as "fn: labels[i]=l is outside [0, classes)". */
int cpu_find_bad_label(int n, int classes, const int32_t *labels);
cnb_status cpu_check_labels(cnb_context *ctx, const char *fn, int n, int classes,
                            const int32_t *labels);
/* The prediction of a row of logits: its first NaN if it holds one, else its first maximum
 * (torch.argmax, cnb_abi.h's non-finite rule). */
int cpu_row_argmax(const float *z, int classes);

/* Max pooling, one (h, w) plane at a time (pool_planes.c; each backend splits the planes over
 * its threads). cpu_maxpool_plane writes y (p, q) and each window's argmax (an index into the
 * plane) to arg. cpu_maxpool_backward_plane zeroes dx (h, w), adds dy at the argmaxes and, for
 * act != CNB_FUSED_ACT_NONE, multiplies by the activation's derivative given its output a
 * (pool_act_backward); it returns -1, or the index in the plane's arg of the first entry outside
 * the plane (dx is then incomplete). cpu_act_grad_plane is that last step alone. */
int cpu_pool_is_2x2_s2(const cnb_pool_desc *d);
void cpu_maxpool_plane(const cnb_pool_desc *d, float *y, int32_t *arg, const float *x);
long cpu_maxpool_backward_plane(const cnb_pool_desc *d, int act, float *dx, const float *dy,
                                const int32_t *arg, const float *a);
void cpu_act_grad_plane(float *dx, const float *a, size_t n, int act);
/* Average pooling's forward of one plane (sum of the window's real cells / (kh*kw)), and its
 * backward (dx zeroed, each dy / (kh*kw) added to its window's real cells). */
void cpu_avgpool_plane(const cnb_pool_desc *d, float *y, const float *x);
void cpu_avgpool_backward_plane(const cnb_pool_desc *d, float *dx, const float *dy);

/* The kernels a CPU backend defines as prefix_<slot>, one per slot of cnb_backend. */
#define CPU_DECLARE_KERNELS(prefix)                                                           \
    cnb_status prefix##_corr2d(cnb_context *ctx, float *y, const float *x, const float *k,    \
                               int h, int w, int kh, int kw);                                 \
    cnb_status prefix##_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y,      \
                                     const float *x, const float *weight, const float *bias); \
    cnb_status prefix##_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d,          \
                                           float *dx, const float *dy, const float *weight);  \
    cnb_status prefix##_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d,        \
                                             float *dweight, const float *dy,                 \
                                             const float *x);                                 \
    cnb_status prefix##_conv_bias_act_forward(cnb_context *ctx, const cnb_conv_desc *d,       \
                                              int act, float *y, const float *x,              \
                                              const float *weight, const float *bias);        \
    cnb_status prefix##_bias_forward(cnb_context *ctx, float *y, const float *bias, int n,    \
                                     int c, int hw);                                          \
    cnb_status prefix##_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n, \
                                      int c, int hw);                                         \
    cnb_status prefix##_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d,         \
                                            size_t *bytes);                                   \
    cnb_status prefix##_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y,      \
                                     const float *x, void *workspace);                        \
    cnb_status prefix##_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,    \
                                      const float *dy, const float *x, const float *y,        \
                                      const void *workspace);                                 \
    cnb_status prefix##_pool_act_backward(cnb_context *ctx, const cnb_pool_desc *d, int act,  \
                                          float *dx, const float *dy, const float *x,         \
                                          const float *y, const void *workspace);             \
    cnb_status prefix##_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k, \
                             float alpha, const float *a, int lda, const float *b, int ldb,   \
                             float beta, float *c, int ldc);                                  \
    cnb_status prefix##_activation_forward(cnb_context *ctx, int act, size_t count, float *y, \
                                           const float *x, const float *slope);               \
    cnb_status prefix##_activation_backward(cnb_context *ctx, int act, size_t count,          \
                                            float *dx, float *dslope, const float *dy,        \
                                            const float *x, const float *y,                   \
                                            const float *slope);                              \
    cnb_status prefix##_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs, \
                                           float *loss, int32_t *pred, const float *logits,   \
                                           const int32_t *labels);                            \
    cnb_status prefix##_softmax_ce_backward(cnb_context *ctx, int n, int classes,             \
                                            float *dlogits, const float *probs,               \
                                            const int32_t *labels);                           \
    cnb_status prefix##_sgd_step(cnb_context *ctx, const cnb_sgd_desc *d, size_t count,       \
                                 float *param, float *velocity, const float *grad);           \
    cnb_status prefix##_adam_step(cnb_context *ctx, const cnb_adam_desc *d, size_t count,     \
                                  float *param, float *m, float *v, const float *grad)

/* A CPU backend's version-1 function table and the one exported symbol, cnb_backend_entry,
 * which serves any harness that speaks version 1 or later with it (the harness checks
 * abi_version before touching newer slots). Every slot but alloc, synchronize and the three
 * optional fused slots below is filled alike: prefix_create, prefix_destroy, prefix_info, the kernels
 * above, and cpu_common's last_error, free, upload and download. conv_backward_fn is NULL for a
 * backend whose three backward kernels gain nothing from sharing dy (the harness then calls
 * them one by one); conv_pool_forward_fn (conv_act_pool_forward) is NULL for one whose
 * convolution already writes plain nchw (the harness then runs conv_bias_act_forward and
 * pool_forward), pool_conv_backward_fn (pool_act_conv_backward) likewise (the harness then runs
 * pool_act_backward and conv_backward). */
#define CPU_BACKEND_DEFINE(prefix, name_str, description_str, alloc_fn, synchronize_fn,      \
                           conv_backward_fn, conv_pool_forward_fn, pool_conv_backward_fn)     \
    static const cnb_backend prefix##_table = {                                               \
        .abi_version = CNB_ABI_VERSION, .struct_size = sizeof(cnb_backend),                   \
        .device_kind = CNB_DEVICE_CPU, .name = name_str, .description = description_str,      \
        .create = prefix##_create, .destroy = prefix##_destroy, .info = prefix##_info,        \
        .last_error = cpu_last_error, .alloc = alloc_fn, .free = cpu_free,                    \
        .upload = cpu_upload, .download = cpu_download, .synchronize = synchronize_fn,        \
        .corr2d = prefix##_corr2d, .conv_forward = prefix##_conv_forward,                     \
        .conv_backward_data = prefix##_conv_backward_data,                                    \
        .conv_backward_filter = prefix##_conv_backward_filter,                                \
        .bias_forward = prefix##_bias_forward, .bias_backward = prefix##_bias_backward,       \
        .pool_workspace_size = prefix##_pool_workspace_size,                                  \
        .pool_forward = prefix##_pool_forward, .pool_backward = prefix##_pool_backward,       \
        .gemm = prefix##_gemm, .activation_forward = prefix##_activation_forward,             \
        .activation_backward = prefix##_activation_backward,                                  \
        .softmax_ce_forward = prefix##_softmax_ce_forward,                                    \
        .softmax_ce_backward = prefix##_softmax_ce_backward, .sgd_step = prefix##_sgd_step,   \
        .adam_step = prefix##_adam_step,                                                      \
        .conv_bias_act_forward = prefix##_conv_bias_act_forward,                              \
        .pool_act_backward = prefix##_pool_act_backward,                                      \
        .conv_backward = conv_backward_fn, .conv_act_pool_forward = conv_pool_forward_fn,     \
        .pool_act_conv_backward = pool_conv_backward_fn,                                      \
    };                                                                                        \
    CNB_EXPORT const cnb_backend *cnb_backend_entry(uint32_t harness_abi_version) {          \
        return harness_abi_version < 1 ? NULL : &prefix##_table;                              \
    }

#endif
