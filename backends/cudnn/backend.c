/* backend.c — the cudnn backend: cuDNN 9 for convolution, average pooling, activations and
 * softmax, cuBLAS for GEMM, and the cuda backend's kernels for max pooling (the ABI's
 * first-maximum tie rule, which cuDNN does not document) and for what the libraries lack (PReLU,
 * the cross-entropy loss and gradient, the optimizers). Lifecycle (driver and device checked
 * before any library is touched, then the library versions: an older minor than the build, or
 * another major, is refused before any handle is made), versions for info(), the library error
 * helpers, and the version-1 function table. Strict fp32 by default: CUDNN_FMA_MATH for
 * convolutions and CUBLAS_PEDANTIC_MATH (standard fp32 arithmetic, no TF32) for GEMM;
 * cfg->allow_tf32 allows TF32: CUDNN_DEFAULT_MATH (cuDNN's mode permitting TF32 for fp32) and
 * CUBLAS_TF32_TENSOR_OP_MATH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_plan.h"
#include "gpu_collective.h"
#include "cudnn_backend.h"

extern char **environ; /* POSIX; not declared by the C11 headers */

cnb_status dnn_check(cnb_context *ctx, cudnnStatus_t s, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS) return CNB_OK;
    char detail[256] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    cudaGetLastError(); /* a failed library call may leave the runtime's last error set */
    cnb_status st = CNB_ERR_LIBRARY;
    int category = CUDNN_STATUS_CATEGORY(s);
    if (category == CUDNN_STATUS_NOT_SUPPORTED) st = CNB_ERR_UNSUPPORTED;
    if (s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
        s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        st = CNB_ERR_OUT_OF_MEMORY;
    return cnb_gpu_fail(CTX_GPU(ctx), st, "%s: %s (%d)%s%s", what, cudnnGetErrorString(s), (int)s,
                        detail[0] ? ": " : "", detail);
}

cnb_status dnn_check_output_dim(cnb_context *ctx, const char *fn, const int got[4],
                                const int want[4]) {
    if (memcmp(got, want, 4 * sizeof got[0]) == 0) return CNB_OK;
    return cnb_gpu_fail(CTX_GPU(ctx), CNB_ERR_INTERNAL,
                        "%s: cuDNN computes output (%d, %d, %d, %d), the descriptor says "
                        "(%d, %d, %d, %d)",
                        fn, got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3]);
}

cnb_status blas_check(cnb_context *ctx, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return CNB_OK;
    cudaGetLastError();
    cnb_status st = s == CUBLAS_STATUS_ALLOC_FAILED     ? CNB_ERR_OUT_OF_MEMORY
                    : s == CUBLAS_STATUS_NOT_SUPPORTED ? CNB_ERR_UNSUPPORTED
                    : s == CUBLAS_STATUS_INVALID_VALUE ? CNB_ERR_INVALID_ARGUMENT
                                                       : CNB_ERR_LIBRARY;
    return cnb_gpu_fail(CTX_GPU(ctx), st, "%s: %s: %s", what, cublasGetStatusName(s),
                        cublasGetStatusString(s));
}

cnb_status dnn_workspace(cnb_context *ctx, size_t bytes, void **out) {
    *out = NULL;
    if (bytes == 0) return CNB_OK;
    if (bytes > ctx->workspace_bytes) {
        /* Queued convolutions may still use the old workspace. */
        cnb_status st = cnb_gpu_check(CTX_GPU(ctx), cudaStreamSynchronize(ctx->gpu.stream),
                                      "workspace: sync");
        if (st != CNB_OK) return st;
        st = cnb_gpu_realloc(CTX_GPU(ctx), 0, bytes, &ctx->workspace, &ctx->workspace_bytes,
                             "workspace");
        if (st != CNB_OK) return st;
    }
    *out = ctx->workspace;
    return CNB_OK;
}

cnb_status dnn_set_tensor(cnb_context *ctx, cudnnTensorDescriptor_t t, int n, int c, int h, int w,
                          const char *what) {
    (void)what;
    return dnn_check(ctx, cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c,
                                                     h, w),
                     "cudnnSetTensor4dDescriptor");
}

static void format_version(long v, char *buf, size_t len) { cnb_format_lib_version(v, buf, len); }

static long cublas_version_loaded(void) {
    int major = 0, minor = 0, patch = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
        cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
        cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS)
        return 0;
    return 10000L * major + 100L * minor + patch;
}

/* ---- the slots: context check, then the shared GPU code or the library code ---- */
#define GPU_SLOT_KERNEL(name) dnn_##name
#define GPU_SLOT_TARGET(ctx) (ctx)
#include "gpu_slots.inc"

static void cudnn_destroy(cnb_context *ctx) {
    if (!ctx) return;
    if (ctx->gpu.stream) cudaStreamSynchronize(ctx->gpu.stream);
    cnb_cudnn_cache_free(&ctx->convs, dnn_release_conv_descs);
    dnn_release_pools(ctx);
    if (ctx->t_a) cudnnDestroyTensorDescriptor(ctx->t_a);
    if (ctx->t_b) cudnnDestroyTensorDescriptor(ctx->t_b);
    if (ctx->act) cudnnDestroyActivationDescriptor(ctx->act);
    if (ctx->dnn) cudnnDestroy(ctx->dnn);
    if (ctx->blas) cublasDestroy(ctx->blas);
    if (ctx->workspace) cudaFree(ctx->workspace);
    cnb_gpu_base_release(&ctx->gpu);
    free(ctx);
}

/* CNB_OK, or the create error "cudnn: <sentence>" when the loaded library may not work with
 * this build (cnb_cudnn_version_compat). */
static cnb_status check_lib_version(const char *lib, long compiled, long loaded, char *err,
                                    size_t err_len) {
    if (cnb_cudnn_version_compat(compiled, loaded) != CNB_VERSION_REFUSE) return CNB_OK;
    char why[400];
    cnb_cudnn_version_explain(lib, compiled, loaded, why, sizeof why);
    snprintf(err, err_len, "cudnn: %s", why);
    return CNB_ERR_LIBRARY;
}

/* CNB_OK, or the create error for a cuDNN sub-library's cross-library version check (each
 * sub-library checks its own version against those of its dependencies). */
static cnb_status check_sublibrary(cudnnStatus_t s, const char *call, const char *lib,
                                   char *err, size_t err_len) {
    if (s == CUDNN_STATUS_SUCCESS) return CNB_OK;
    char detail[256] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    snprintf(err, err_len,
             "cudnn: %s failed: %s (%d)%s%s: %s does not match the cuDNN sub-libraries it "
             "depends on (a mixed or partial installation; this backend was built against "
             "cuDNN %d.%d.%d); put one complete cuDNN release first in LD_LIBRARY_PATH",
             call, cudnnGetErrorString(s), (int)s, detail[0] ? ": " : "", detail, lib,
             CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
    return CNB_ERR_LIBRARY;
}

/* The library checks of create, before any handle is made: cuDNN's version (the rule of
 * cnb_cudnn_version_compat), its sub-libraries' own checks, the major of the CUDA runtime cuDNN
 * was built with against this build's, and cuBLAS's version when cublasGetProperty gives it. */
static cnb_status check_libraries(cnb_context *ctx, char *err, size_t err_len) {
    ctx->cudnn_loaded = cudnnGetVersion();
    cnb_status st = check_lib_version("cuDNN", CUDNN_VERSION, (long)ctx->cudnn_loaded, err,
                                      err_len);
    if (st != CNB_OK) return st;
    if ((st = check_sublibrary(cudnnGraphVersionCheck(), "cudnnGraphVersionCheck",
                               "libcudnn_graph", err, err_len)) != CNB_OK ||
        (st = check_sublibrary(cudnnOpsVersionCheck(), "cudnnOpsVersionCheck", "libcudnn_ops",
                               err, err_len)) != CNB_OK ||
        (st = check_sublibrary(cudnnCnnVersionCheck(), "cudnnCnnVersionCheck", "libcudnn_cnn",
                               err, err_len)) != CNB_OK)
        return st;
    ctx->cudnn_cudart = (long)cudnnGetCudartVersion();
    if (!cnb_cudnn_cudart_compat(CUDART_VERSION, ctx->cudnn_cudart)) {
        char compiled[32], theirs[32], dnn[32];
        cnb_format_cuda_version(CUDART_VERSION, compiled, sizeof compiled);
        cnb_format_cuda_version((int)ctx->cudnn_cudart, theirs, sizeof theirs);
        format_version((long)ctx->cudnn_loaded, dnn, sizeof dnn);
        snprintf(err, err_len,
                 "cudnn: the loaded cuDNN %s was built with CUDA runtime %s "
                 "(cudnnGetCudartVersion) but this backend with CUDA %s: the CUDA major versions "
                 "must match; install the cuDNN build for CUDA %d (e.g. nvidia-cudnn-cu%d) or "
                 "rebuild",
                 dnn, theirs, compiled, CUDART_VERSION / 1000, CUDART_VERSION / 1000);
        return CNB_ERR_LIBRARY;
    }
    ctx->cublas_loaded = cublas_version_loaded();
    if (ctx->cublas_loaded > 0 &&
        (st = check_lib_version("cuBLAS", CUBLAS_VERSION, ctx->cublas_loaded, err, err_len)) !=
            CNB_OK)
        return st;
    return CNB_OK;
}

static cnb_status cudnn_create(const cnb_config *cfg, cnb_context **out, char *err,
                               size_t err_len) {
    char dummy[8];
    if (!err || !err_len) {
        err = dummy;
        err_len = sizeof dummy;
    }
    cnb_context *ctx = NULL;
    cnb_status st = gpu_slot_new_context("cudnn", cfg, out, &ctx, err, err_len);
    if (st != CNB_OK) return st;
    if ((st = check_libraries(ctx, err, err_len)) != CNB_OK) {
        cudnn_destroy(ctx);
        return st;
    }
    const char *step = NULL;
    cudnnStatus_t ds = cudnnCreate(&ctx->dnn);
    if (ds != CUDNN_STATUS_SUCCESS) step = "cudnnCreate";
    if (!step && (ds = cudnnSetStream(ctx->dnn, ctx->gpu.stream)) != CUDNN_STATUS_SUCCESS)
        step = "cudnnSetStream";
    if (!step && (ds = cudnnCreateTensorDescriptor(&ctx->t_a)) != CUDNN_STATUS_SUCCESS)
        step = "cudnnCreateTensorDescriptor";
    if (!step && (ds = cudnnCreateTensorDescriptor(&ctx->t_b)) != CUDNN_STATUS_SUCCESS)
        step = "cudnnCreateTensorDescriptor";
    if (!step && (ds = cudnnCreateActivationDescriptor(&ctx->act)) != CUDNN_STATUS_SUCCESS)
        step = "cudnnCreateActivationDescriptor";
    if (step) {
        char detail[256] = "";
        cudnnGetLastErrorString(detail, sizeof detail);
        snprintf(err, err_len, "cudnn: %s failed: %s (%d)%s%s", step, cudnnGetErrorString(ds),
                 (int)ds, detail[0] ? ": " : "", detail);
        cudnn_destroy(ctx);
        return CNB_ERR_LIBRARY;
    }
    cublasStatus_t bs = cublasCreate(&ctx->blas);
    if (bs == CUBLAS_STATUS_SUCCESS) {
        step = "cublasSetStream";
        bs = cublasSetStream(ctx->blas, ctx->gpu.stream);
    }
    if (bs == CUBLAS_STATUS_SUCCESS) {
        step = "cublasSetMathMode";
        /* cublas_api.h: only the _PEDANTIC modes ensure standard arithmetic; DEFAULT_MATH
         * promises at least fp32 precision, not fp32 arithmetic. TF32_TENSOR_OP_MATH allows
         * TF32 tensor cores. */
        bs = cublasSetMathMode(ctx->blas, ctx->gpu.opt.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                  : CUBLAS_PEDANTIC_MATH);
    } else {
        step = "cublasCreate";
    }
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, err_len, "cudnn: %s failed: %s: %s", step, cublasGetStatusName(bs),
                 cublasGetStatusString(bs));
        cudnn_destroy(ctx);
        return CNB_ERR_LIBRARY;
    }
    /* cublasGetProperty did not give the loaded version: cublasGetVersion (same encoding as
     * CUBLAS_VERSION) needs the handle; the same rule applies. */
    int blas_version = 0;
    if (ctx->cublas_loaded == 0 &&
        cublasGetVersion(ctx->blas, &blas_version) == CUBLAS_STATUS_SUCCESS) {
        ctx->cublas_loaded = blas_version;
        if (ctx->cublas_loaded > 0 &&
            (st = check_lib_version("cuBLAS", CUBLAS_VERSION, ctx->cublas_loaded, err,
                                    err_len)) != CNB_OK) {
            cudnn_destroy(ctx);
            return st;
        }
    }
    /* cuDNN documents CUDNN_DEFAULT_MATH as the mode that permits TF32 for fp32 data (and
     * CUDNN_FMA_MATH as the one that excludes tensor-core math). */
    ctx->conv_math = ctx->gpu.opt.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    *out = ctx;
    return CNB_OK;
}

static cnb_status cudnn_info(cnb_context *ctx, cnb_info_fn fn, void *user) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    GPU_CHECK_PTR(CTX_GPU(ctx), "info", fn);
    char mismatch[768] = "", compiled[32], loaded[32], buf[400];
    fn(user, "backend", "cudnn");
    cnb_gpu_info_device(CTX_GPU(ctx), fn, user, mismatch, sizeof mismatch);

    /* Versions: create refused an older minor or another major, so what is left here is the
     * same version, a newer minor or a patch difference, all supported; "*.version" says
     * which. */
    format_version(CUDNN_VERSION, compiled, sizeof compiled);
    format_version((long)ctx->cudnn_loaded, loaded, sizeof loaded);
    fn(user, "cudnn.compiled", compiled);
    fn(user, "cudnn.loaded", loaded);
    cnb_cudnn_version_explain("cuDNN", CUDNN_VERSION, (long)ctx->cudnn_loaded, buf, sizeof buf);
    fn(user, "cudnn.version", buf);
    cnb_format_cuda_version((int)ctx->cudnn_cudart, loaded, sizeof loaded);
    fn(user, "cudnn.cudart", loaded); /* the CUDA runtime cuDNN was built with */
    format_version(CUBLAS_VERSION, compiled, sizeof compiled);
    fn(user, "cublas.compiled", compiled);
    if (ctx->cublas_loaded > 0) {
        format_version(ctx->cublas_loaded, loaded, sizeof loaded);
        fn(user, "cublas.loaded", loaded);
        cnb_cudnn_version_explain("cuBLAS", CUBLAS_VERSION, ctx->cublas_loaded, buf, sizeof buf);
        fn(user, "cublas.version", buf);
    } else {
        fn(user, "cublas.loaded", "unknown (cublasGetProperty and cublasGetVersion failed)");
    }
    fn(user, "math",
       ctx->gpu.opt.allow_tf32
           ? "TF32 allowed: convolutions CUDNN_DEFAULT_MATH (cuDNN's mode permitting TF32 for "
             "fp32), GEMM CUBLAS_TF32_TENSOR_OP_MATH (looser tolerance)"
           : "strict fp32: convolutions CUDNN_FMA_MATH (algorithms reporting other math "
             "refused), GEMM CUBLAS_PEDANTIC_MATH (standard fp32 arithmetic, no TF32)");
    /* Environment variables that change cuBLAS/cuDNN math behind the math modes above. */
    for (char **env = environ; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq) continue;
        size_t name_len = (size_t)(eq - *env);
        int emul = strncmp(*env, "CUBLAS_EMULAT", 13) == 0;
        int tf32 = name_len == 20 && strncmp(*env, "NVIDIA_TF32_OVERRIDE", 20) == 0;
        if (!emul && !tf32) continue;
        char key[128];
        snprintf(key, sizeof key, "env.%.*s", (int)(name_len < 100 ? name_len : 100), *env);
        fn(user, key, eq + 1);
    }
    fn(user, "deterministic",
       ctx->gpu.opt.deterministic
           ? "yes: convolution algorithms from the *_v7 heuristics (no cudnnFind: its timing "
             "ranking could change the pick between runs), first CUDNN_DETERMINISTIC entry; max "
             "pooling by the argmax kernels; bias gradient by a fixed-order kernel"
           : "no: fastest cudnnFind algorithm (some use atomics; see cudnn.conv[...])");
    fn(user, "conv.algorithm",
       ctx->gpu.opt.deterministic
           ? "cudnnGet*Algorithm_v7 heuristics once per shape and direction (deterministic: "
             "cudnnFind not used), failures cached, grow-only workspace"
           : "cudnnFind*AlgorithmEx once per shape and direction in a 256 MiB workspace of "
             "this backend's (heuristics *_v7 when Find fails or offers nothing acceptable), "
             "failures cached, the next ranked algorithm when the chosen one fails to run, "
             "grow-only workspace; forward bias fused (identity activation) under "
             "IMPLICIT_PRECOMP_GEMM");
    fn(user, "conv.direct_only",
       ctx->gpu.opt.direct_conv ? "yes (direct_conv): FFT and Winograd results are passed over"
                                : "no: FFT and Winograd may be chosen (see conv.transforms)");
    fn(user, "pooling",
       "max: backends/cuda kernels with an argmax workspace (the ABI's tie rule, first maximum "
       "in row-major window order, which cuDNN does not document); average: cuDNN "
       "CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING");
    fn(user, "custom_kernels",
       "max pooling, PReLU, cross-entropy loss/argmax and gradient, SGD, Adam (backends/cuda "
       "kernels)");
    snprintf(buf, sizeof buf, "%zu", ctx->workspace_bytes);
    fn(user, "cudnn.workspace_bytes", buf);
    snprintf(buf, sizeof buf, "%ld", ctx->searches);
    fn(user, "cudnn.searches", buf);
    dnn_info_convs(ctx, fn, user);
    if (mismatch[0]) fn(user, "version_mismatch", mismatch);
    return CNB_OK;
}

GPU_BACKEND_TABLE("cudnn",
                  "cuDNN 9 (convolution, average pooling, activations, softmax) + cuBLAS (GEMM); "
                  "max pooling by hand-written argmax kernels (the ABI's first-maximum tie rule, "
                  "which cuDNN does not document)",
                  cudnn_create, cudnn_destroy, cudnn_info)
