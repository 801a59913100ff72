/* memory.c — the oneDNN backend's "device" memory: the CPU engine works on host memory, so these
 * are aligned host allocations and copies. */
#include <stdlib.h>
#include <string.h>

#include "onednn.h"

cnb_status odn_alloc(cnb_context *ctx, void **ptr, size_t bytes) {
    ODN_CHECK_PTR(ctx, "alloc", ptr);
    *ptr = odn_aligned_alloc(bytes);
    if (!*ptr) return odn_fail(ctx, CNB_ERR_OUT_OF_MEMORY, "alloc: %zu bytes", bytes);
    return CNB_OK;
}

cnb_status odn_free(cnb_context *ctx, void *ptr) {
    (void)ctx;
    free(ptr);
    return CNB_OK;
}

cnb_status odn_upload(cnb_context *ctx, void *dst_device, const void *src_host, size_t bytes) {
    if (bytes == 0) return CNB_OK;
    ODN_CHECK_PTR(ctx, "upload", dst_device);
    ODN_CHECK_PTR(ctx, "upload", src_host);
    memcpy(dst_device, src_host, bytes);
    return CNB_OK;
}

cnb_status odn_download(cnb_context *ctx, void *dst_host, const void *src_device, size_t bytes) {
    if (bytes == 0) return CNB_OK;
    ODN_CHECK_PTR(ctx, "download", dst_host);
    ODN_CHECK_PTR(ctx, "download", src_device);
    memcpy(dst_host, src_device, bytes);
    return CNB_OK;
}

cnb_status odn_synchronize(cnb_context *ctx) {
    if (!ctx) return CNB_ERR_INVALID_ARGUMENT;
    /* Every kernel already waits on the stream before it returns. */
    if (dnnl_stream_wait(ctx->stream) != dnnl_success)
        return odn_fail(ctx, CNB_ERR_LIBRARY, "synchronize: dnnl_stream_wait failed");
    return CNB_OK;
}
