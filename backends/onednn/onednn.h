/* onednn.h — private to the oneDNN backend: the context (one CPU engine, one stream, a cache of
 * primitives keyed by descriptor bytes, one shared scratchpad), error helpers, and the per-family
 * kernel prototypes that backend.c puts into the function table. */
#ifndef CNB_ONEDNN_H
#define CNB_ONEDNN_H

#include <stddef.h>
#include <stdint.h>

#include <dnnl.h>
#include <omp.h>

#include "cnb_abi.h"
#include "cnb_abi_check.h"
#include "cpu_common.h"

#define ODN_MAX_ARGS 8    /* execute arguments of one primitive, scratchpad included */
#define ODN_OP_PRIMS 6    /* primitives one cached op may hold (main ones + boundary reorders) */
#define ODN_OP_BUFS 4     /* scratch tensors one cached op may own (reorder targets) */
#define ODN_KEY_MAX 112   /* bytes of a cache key */
#define ODN_CACHE_MAX 256 /* cached ops; beyond this the least recently used one is dropped */

/* What a cached op computes; part of the key, so equal descriptor bytes of two families never
 * collide. */
typedef enum odn_kind {
    ODN_CONV_FORWARD = 1, /* corr2d is a 1x1-channel convolution and shares this kind */
    ODN_CONV_BACKWARD_DATA,
    ODN_CONV_BACKWARD_FILTER,
    ODN_GEMM,
    ODN_ELTWISE_FORWARD,
    ODN_ELTWISE_BACKWARD,
    ODN_SOFTMAX_CE
} odn_kind;

/* One primitive with a memory object per execute argument. Memory objects are created once with
 * no buffer; each call only points them at the caller's tensors (dnnl_memory_set_data_handle). */
typedef struct odn_prim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int nargs;                      /* arguments the caller supplies, in the order given at init */
    int has_scratchpad;             /* 1: one more argument, the context's shared scratchpad */
    dnnl_exec_arg_t args[ODN_MAX_ARGS];
} odn_prim;

/* A cached op: every primitive and buffer one kernel call of one shape needs. What each slot
 * holds is up to the family that builds it. */
typedef struct odn_op {
    int kind;
    size_t key_len;
    unsigned char key[ODN_KEY_MAX];
    uint64_t last_use;
    odn_prim prim[ODN_OP_PRIMS];
    void *buf[ODN_OP_BUFS];         /* owned, 64-byte aligned, touched once at creation */
    size_t buf_bytes[ODN_OP_BUFS];
    int flags;                      /* family-specific (e.g. which reorders are in use) */
} odn_op;

/* A convolution shape's algorithm, decided on its first call (conv.c). */
typedef struct odn_conv_choice odn_conv_choice;
/* Where a shape's fused backward sums dbias, decided on its first call (conv.c). */
typedef struct odn_bias_choice odn_bias_choice;

struct cnb_context {
    char err[CPU_ERR_LEN];          /* message of the last failed call, "" if none failed yet */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_attr_t attr;     /* scratchpad_mode user: every primitive shares ctx->scratch */
    int threads;                    /* OpenMP threads oneDNN and the loops here run on */
    int conv_layout;                /* odn_conv_layout: how convolutions choose memory formats */
    int direct_conv;                /* cnb_config.direct_conv: never Winograd */
    int deterministic;              /* cnb_config.deterministic: oneDNN's choice, not timing */
    int force_winograd;             /* CNB_ONEDNN_CONV_ALGO=winograd: wherever oneDNN has it */
    odn_conv_choice *choices;       /* per (kind, shape) algorithm choices, in first-use order */
    int choice_count, choice_cap;
    odn_bias_choice *bias_choices;  /* per shape: dbias in the weight-gradient primitive or not */
    int bias_choice_count, bias_choice_cap;
    void *scratch;                  /* the shared scratchpad, grown on demand, never shrunk */
    size_t scratch_bytes;
    double *acc;                    /* per-thread partial sums of the loops here (bias_backward) */
    size_t acc_count;
    float *spare;                   /* the fused block forward's stand-in for an a the caller did
                                     * not keep (conv.c): a chunk's convolution output, or each
                                     * thread's unpacked channel block */
    size_t spare_count;
    odn_op *cache[ODN_CACHE_MAX];
    int cache_count;
    uint64_t clock;                 /* use counter for LRU eviction */
};
CPU_CONTEXT_BEGINS_WITH_ERR;

/* How a convolution picks memory formats. PLAIN: nchw/oihw as the ABI hands them over, no
 * reorders. BLOCKED: format_tag_any, oneDNN picks (nChw16c, OIhw16i16o, ...) and we reorder at
 * the ABI boundary. AUTO: the rule conv.c documents, from measurements at the models' shapes. */
typedef enum odn_conv_layout { ODN_LAYOUT_AUTO = 0, ODN_LAYOUT_PLAIN = 1, ODN_LAYOUT_BLOCKED = 2 } odn_conv_layout;

/* Map a failed dnnl call to a status and keep "what: oneDNN says ..." for last_error(). */
cnb_status odn_fail_dnnl(cnb_context *ctx, dnnl_status_t s, const char *what);

/* Inside an OpenMP parallel region: the contiguous range [lo, hi) of count elements that this
 * thread takes (the element-wise loops and the optimizers split their work this way). */
#define ODN_THREAD_RANGE(count, lo, hi)                                                        \
    const size_t lo = (count) * (size_t)omp_get_thread_num() / (size_t)omp_get_num_threads(), \
                 hi = (count) * (size_t)(omp_get_thread_num() + 1) /                         \
                      (size_t)omp_get_num_threads()

/* Evaluate a dnnl call; on failure record it and return from the enclosing function. */
#define ODN_TRY(ctx, call)                                                              \
    do {                                                                                \
        dnnl_status_t odn_s_ = (call);                                                  \
        if (odn_s_ != dnnl_success) return odn_fail_dnnl((ctx), odn_s_, #call);         \
    } while (0)

/* Make the calling thread's OpenMP team size the context's (cheap; called by every kernel so a
 * second context with another thread count in the same process cannot leak into this one). */
void odn_enter(cnb_context *ctx);

/* Cache. odn_cache_find returns the op stored under (kind, key) or NULL; odn_cache_new returns
 * a zeroed op already keyed and owned by the cache (evicting the least recently used op when
 * full) — the caller fills it, and on a failure calls odn_cache_drop so no half-built op stays. */
odn_op *odn_cache_find(cnb_context *ctx, int kind, const void *key, size_t key_len);
cnb_status odn_cache_new(cnb_context *ctx, int kind, const void *key, size_t key_len, odn_op **out);
void odn_cache_drop(cnb_context *ctx, odn_op *op);
void odn_cache_clear(cnb_context *ctx);

/* Build p from an op descriptor (with the context's attr and an optional forward hint) and make
 * a memory object for each of the nargs argument ids, in that order. */
cnb_status odn_prim_init(cnb_context *ctx, odn_prim *p, const_dnnl_op_desc_t op_desc,
                         const_dnnl_primitive_desc_t hint, const int *arg_ids, int nargs);
/* The same with other attributes (output scales, post-ops); attr must ask for a user
 * scratchpad like ctx->attr does. */
cnb_status odn_prim_init_attr(cnb_context *ctx, odn_prim *p, const_dnnl_op_desc_t op_desc,
                              const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                              const int *arg_ids, int nargs);
/* A reorder primitive from src_md to dst_md (arguments: DNNL_ARG_FROM, DNNL_ARG_TO). */
cnb_status odn_reorder_init(cnb_context *ctx, odn_prim *p, const dnnl_memory_desc_t *src_md,
                            const dnnl_memory_desc_t *dst_md);
/* Run p on the given buffers (one per argument, in init order) and wait for it. */
cnb_status odn_exec(cnb_context *ctx, odn_prim *p, void *const *ptrs);
/* The memory descriptor p chose for an execute argument (e.g. DNNL_ARG_SRC). */
const dnnl_memory_desc_t *odn_arg_md(const odn_prim *p, int arg);
/* Give op->buf[slot] at least bytes (owned by the op, touched once so no step page-faults). */
cnb_status odn_op_buffer(cnb_context *ctx, odn_op *op, int slot, size_t bytes);

/* Host memory helpers shared by the families. */
/* At least count doubles in ctx->acc (contents undefined); grown on the first call of a shape. */
cnb_status odn_acc_reserve(cnb_context *ctx, size_t count);
/* At least count floats in ctx->spare (contents undefined); grown on the first call of a shape. */
cnb_status odn_spare_reserve(cnb_context *ctx, size_t count);

/* conv.c: info() keys for the convolution shapes used so far: onednn.conv[shape] (each
 * direction's algorithm and why) and cnb_abi.h's conv.transforms[shape] */
void odn_conv_info(cnb_context *ctx, cnb_info_fn fn, void *user);

/* memory.c: the stream to wait for */
cnb_status odn_synchronize(cnb_context *ctx);

CPU_DECLARE_KERNELS(odn);
/* conv.c: the fused convolution backward (cnb_abi.h's conv_backward) */
cnb_status odn_conv_backward(cnb_context *ctx, const cnb_conv_desc *d, float *dx, float *dweight,
                             float *dbias, const float *dy, const float *x, const float *weight);
cnb_status odn_conv_act_pool_forward(cnb_context *ctx, const cnb_conv_desc *cd, int act,
                                     const cnb_pool_desc *pd, float *a, float *y,
                                     void *workspace, const float *x, const float *weight,
                                     const float *bias);
cnb_status odn_pool_act_conv_backward(cnb_context *ctx, const cnb_pool_desc *pd, int act,
                                      const cnb_conv_desc *cd, float *dx, float *dweight,
                                      float *dbias, const float *dy, const float *a,
                                      const float *y, const void *workspace, const float *x,
                                      const float *weight);

/* pool_max.c: max pooling loops; the workspace holds one int32 argmax per output */
size_t odn_maxpool_workspace_bytes(const cnb_pool_desc *d);
void odn_maxpool_forward(const cnb_pool_desc *d, float *y, const float *x, int32_t *arg);
void odn_avgpool_forward(const cnb_pool_desc *d, float *y, const float *x);
void odn_avgpool_backward(const cnb_pool_desc *d, int act, float *dx, const float *dy,
                          const float *a);
void odn_act_pool_planes(const cnb_pool_desc *d, int relu, int block, const float *src, float *a,
                         float *y, int32_t *arg, float *spare);
long odn_maxpool_grad_blocked(const cnb_pool_desc *d, int relu, int block, const float *dy,
                              const float *y, const int32_t *arg, float *g);
/* pool.c: the error for workspace entry `bad` outside its plane (not this forward's workspace) */
cnb_status odn_bad_workspace(cnb_context *ctx, const char *fn, const cnb_pool_desc *d, long bad);
/* -1, or the first workspace entry outside its plane (nothing sensible was written then) */
long odn_maxpool_backward(const cnb_pool_desc *d, int act, float *dx, const float *dy,
                          const float *a, const int32_t *arg);
/* y = x < 0 ? 0 : x over count values (y may be x), NaN kept: cnb_abi.h's ReLU, which oneDNN
 * 2.6's eltwise ReLU does not follow (it maps NaN to 0, also as a convolution post-op). */
void odn_relu_forward_loop(const cnb_context *ctx, size_t count, float *y, const float *x);

#endif
