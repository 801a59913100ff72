/* memory.c — the oneDNN backend's "device" memory: the CPU engine works on host memory, so
 * these are aligned host allocations (page-aligned when large, odn_aligned_alloc) and a wait
 * on the stream; free, upload and download are cpu_common's. */
#include "onednn.h"

cnb_status odn_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    CNB_CHECK_PTR(ctx, "alloc", ptr);
    *ptr = odn_aligned_alloc(bytes);
    if (!*ptr) return cpu_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "alloc: %zu bytes", bytes);
    return CNB_OK;
}

cnb_status odn_synchronize(cnb_context *ctx) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    /* Every kernel already waits on the stream before it returns. */
    if (dnnl_stream_wait(ctx->stream) != dnnl_success)
        return cpu_fail(ctx, CNB_ERR_LIBRARY, "synchronize: dnnl_stream_wait failed");
    return CNB_OK;
}
