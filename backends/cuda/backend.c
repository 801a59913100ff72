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

/* The slots: the context is checked here, the rest is shared with the cudnn backend; the layer
 * kernels are the shared GPU code's. */
#define GPU_SLOT_KERNEL(name) cnb_gpu_##name
#define GPU_SLOT_TARGET(ctx) GPU_SLOT_BASE(ctx)
#include "gpu_slots.inc"

static cnb_status cuda_create(const cnb_config *cfg, cnb_context **out, char *err,
                              size_t err_len) {
    cnb_context *ctx = NULL;
    cnb_status st = gpu_slot_new_context(BACKEND_NAME, cfg, out, &ctx, err, err_len);
    if (st == CNB_OK) *out = ctx;
    return st;
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

GPU_BACKEND_TABLE(BACKEND_NAME, BACKEND_DESCRIPTION, cuda_create, cuda_destroy, cuda_info)
