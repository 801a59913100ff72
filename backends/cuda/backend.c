/* backend.c — the cuda backend: hand-written CUDA kernels for every slot, one stream per
 * context. Its lifecycle (create checks driver and device first), info(), and the version-1
 * function table behind the one exported entry symbol. Built twice: as libcnb_cuda.so against
 * the CUDA runtime, and with CNB_CUDA_EMU as libcnb_cuda_emu.so, the same code on the CPU
 * emulator (emu/cuda_emu.h) so its kernels are tested on machines without a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_collective.h"
#include "gpu_common.h"

#ifdef CNB_CUDA_EMU
#define BACKEND_NAME "cuda_emu"
#define BACKEND_DESCRIPTION                                                                   \
    "the cuda backend's kernels run on the CPU by an emulator (testing only; slow)"
#else
#define BACKEND_NAME "cuda"
#define BACKEND_DESCRIPTION "hand-written CUDA kernels (implicit-GEMM convolution, tiled SGEMM)"
#endif
#ifndef CNB_CUDA_ARCHS
#define CNB_CUDA_ARCHS "unknown"
#endif

struct cnb_context {
    cnb_gpu_base gpu;
};

static cnb_status cuda_create(const cnb_config *cfg, cnb_context **out, char *err,
                              size_t err_len) {
    char dummy[8];
    if (!err || !err_len) {
        err = dummy;
        err_len = sizeof dummy;
    }
    if (!out) {
        snprintf(err, err_len, "%s: create: out is NULL", BACKEND_NAME);
        return CNB_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    cnb_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, err_len, "%s: cannot allocate the context", BACKEND_NAME);
        return CNB_ERR_OUT_OF_MEMORY;
    }
    cnb_status st = cnb_gpu_base_init(&ctx->gpu, BACKEND_NAME, cfg, err, err_len);
    if (st != CNB_OK) {
        free(ctx);
        return st;
    }
    *out = ctx;
    return CNB_OK;
}

static void cuda_destroy(cnb_context *ctx) {
    if (!ctx) return;
    cnb_gpu_base_release(&ctx->gpu);
    free(ctx);
}

static cnb_status cuda_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    GPU_CHECK_PTR(&ctx->gpu, "info", fn);
    char mismatch[512] = "";
    fn(user, "backend", BACKEND_NAME);
    cnb_gpu_info_device(&ctx->gpu, fn, user, mismatch, sizeof mismatch);
    fn(user, "cuda.architectures", CNB_CUDA_ARCHS);
    fn(user, "conv.algorithm",
       "implicit GEMM on the tiled SGEMM (64x64 tiles, k-steps of 16, 4x4 per thread); "
       "backward data gathers; split-K with an ordered second pass when tiles are few");
    fn(user, "math", "strict fp32 with fused multiply-add; no tensor cores, so allow_tf32 "
                     "changes nothing");
    fn(user, "deterministic",
       "always: no atomics, every reduction in a fixed order (bit-identical run to run on the "
       "same device)");
    if (mismatch[0]) fn(user, "version_mismatch", mismatch);
    return CNB_OK;
}

/* The slots: the context is checked here, the rest is shared with the cudnn backend. */
#include "gpu_slots.inc"
#define GPU(ctx) GPU_SLOT_BASE(ctx)

static cnb_status cuda_corr2d(cnb_context *ctx, float *y, const float *x, const float *k, int h,
                              int w, int kh, int kw) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_corr2d(GPU(ctx), y, x, k, h, w, kh, kw);
}
static cnb_status cuda_conv_forward(cnb_context *ctx, const cnb_conv_desc *d, float *y,
                                    const float *x, const float *weight, const float *bias) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_conv_forward(GPU(ctx), d, y, x, weight, bias);
}
static cnb_status cuda_conv_backward_data(cnb_context *ctx, const cnb_conv_desc *d, float *dx,
                                          const float *dy, const float *weight) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_conv_backward_data(GPU(ctx), d, dx, dy, weight);
}
static cnb_status cuda_conv_backward_filter(cnb_context *ctx, const cnb_conv_desc *d,
                                            float *dweight, const float *dy, const float *x) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_conv_backward_filter(GPU(ctx), d, dweight, dy, x);
}
static cnb_status cuda_bias_forward(cnb_context *ctx, float *y, const float *bias, int n, int c,
                                    int hw) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_bias_forward(GPU(ctx), y, bias, n, c, hw);
}
static cnb_status cuda_bias_backward(cnb_context *ctx, float *dbias, const float *dy, int n,
                                     int c, int hw) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_bias_backward(GPU(ctx), dbias, dy, n, c, hw);
}
static cnb_status cuda_pool_workspace_size(cnb_context *ctx, const cnb_pool_desc *d,
                                           size_t *bytes) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_pool_workspace_size(GPU(ctx), d, bytes);
}
static cnb_status cuda_pool_forward(cnb_context *ctx, const cnb_pool_desc *d, float *y,
                                    const float *x, void *workspace) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_pool_forward(GPU(ctx), d, y, x, workspace);
}
static cnb_status cuda_pool_backward(cnb_context *ctx, const cnb_pool_desc *d, float *dx,
                                     const float *dy, const float *x, const float *y,
                                     const void *workspace) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_pool_backward(GPU(ctx), d, dx, dy, x, y, workspace);
}
static cnb_status cuda_gemm(cnb_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_gemm(GPU(ctx), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                        ldc);
}
static cnb_status cuda_activation_forward(cnb_context *ctx, int act, size_t count, float *y,
                                          const float *x, const float *slope) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_activation_forward(GPU(ctx), act, count, y, x, slope);
}
static cnb_status cuda_activation_backward(cnb_context *ctx, int act, size_t count, float *dx,
                                           float *dslope, const float *dy, const float *x,
                                           const float *y, const float *slope) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_activation_backward(GPU(ctx), act, count, dx, dslope, dy, x, y, slope);
}
static cnb_status cuda_softmax_ce_forward(cnb_context *ctx, int n, int classes, float *probs,
                                          float *loss, int32_t *pred, const float *logits,
                                          const int32_t *labels) {
    REQUIRE_CTX(ctx);
    return cnb_gpu_softmax_ce_forward(GPU(ctx), n, classes, probs, loss, pred, logits, labels);
}

static const cnb_backend cuda_table = {
    .abi_version = 1,
    .struct_size = sizeof(cnb_backend),
    .device_kind = CNB_DEVICE_GPU,
    .name = BACKEND_NAME,
    .description = BACKEND_DESCRIPTION,
    .create = cuda_create,
    .destroy = cuda_destroy,
    .last_error = gpu_slot_last_error,
    .info = cuda_info,
    GPU_SLOTS_MEMORY,
    .corr2d = cuda_corr2d,
    .conv_forward = cuda_conv_forward,
    .conv_backward_data = cuda_conv_backward_data,
    .conv_backward_filter = cuda_conv_backward_filter,
    .bias_forward = cuda_bias_forward,
    .bias_backward = cuda_bias_backward,
    .pool_workspace_size = cuda_pool_workspace_size,
    .pool_forward = cuda_pool_forward,
    .pool_backward = cuda_pool_backward,
    .gemm = cuda_gemm,
    .activation_forward = cuda_activation_forward,
    .activation_backward = cuda_activation_backward,
    .softmax_ce_forward = cuda_softmax_ce_forward,
    GPU_SLOTS_LOSS_OPTIMIZERS_TIMERS_COLLECTIVES,
};

/* Serves any harness that speaks version 1 or later with the version-1 table. */
CNB_EXPORT const cnb_backend *cnb_backend_entry(uint32_t harness_abi_version) {
    if (harness_abi_version < 1) return NULL;
    return &cuda_table;
}
